/* Branches (every condition over boundary values), jal/jalr link values,
 * jalr with odd targets and negative offsets, and the compressed forms
 * c.beqz, c.bnez, c.j, c.jr, c.jalr. */
#include "support/common.h"

#define BR(op, a, b) ({ u64 _t; __asm__ volatile(".option push\n.option norvc\n" \
    "li %0, 1\n\t" op " %1, %2, 1f\n\tli %0, 0\n1:\n.option pop" : "=&r"(_t) : "r"((u64)(a)), "r"((u64)(b))); _t; })

static u64 cbr(int nez, u64 v) {
    register u64 a0 __asm__("a0") = v;
    register u64 a1 __asm__("a1");
    if (nez)
        __asm__ volatile("li a1, 1\n\tc.bnez a0, 1f\n\tli a1, 0\n1:" : "=&r"(a1) : "r"(a0));
    else
        __asm__ volatile("li a1, 1\n\tc.beqz a0, 1f\n\tli a1, 0\n1:" : "=&r"(a1) : "r"(a0));
    return a1;
}

int main(void) {
    static const char *const ops[] = {"beq", "bne", "blt", "bge", "bltu", "bgeu"};
    for (int k = 0; k < 6; k++) {
        printf("%-5s", ops[k]);
        for (int i = 0; i < NVALS; i++) {
            u64 bits = 0;
            for (int j = 0; j < NVALS; j++) {
                u64 t;
                switch (k) {
                case 0: t = BR("beq", VALS[i], VALS[j]); break;
                case 1: t = BR("bne", VALS[i], VALS[j]); break;
                case 2: t = BR("blt", VALS[i], VALS[j]); break;
                case 3: t = BR("bge", VALS[i], VALS[j]); break;
                case 4: t = BR("bltu", VALS[i], VALS[j]); break;
                default: t = BR("bgeu", VALS[i], VALS[j]); break;
                }
                bits |= t << j;
            }
            printf(" %07" PRIx64, bits);
        }
        printf("\n");
    }
    for (int i = 0; i < NVALS; i++) printf("c.beqz %016" PRIx64 " -> %" PRIu64 "  c.bnez -> %" PRIu64 "\n", VALS[i], cbr(0, VALS[i]), cbr(1, VALS[i]));

    u64 d, e;
    /* jal: link = pc + 4 */
    __asm__ volatile(".option push\n.option norvc\nauipc t0, 0\njal t1, 1f\nnop\nnop\n1: sub %0, t1, t0\n.option pop" : "=r"(d) : : "t0", "t1");
    printf("jal link delta %" PRIu64 "\n", d);
    /* jalr to an odd address: the low bit is cleared */
    __asm__ volatile(".option push\n.option norvc\nlla t2, 1f\naddi t2, t2, 1\nauipc t0, 0\njalr t1, 0(t2)\nnop\n1: sub %0, t1, t0\n.option pop" : "=r"(d) : : "t0", "t1", "t2");
    printf("jalr odd link delta %" PRIu64 "\n", d);
    /* jalr with a negative offset, rd == rs1 */
    __asm__ volatile(".option push\n.option norvc\nlla t1, 1f+16\njalr t1, -16(t1)\nli %0, 99\n1: lla t0, 1b\nsub %0, t0, t1\n.option pop" : "=r"(d) : : "t0", "t1");
    printf("jalr rd==rs1 link-to-target %" PRIu64 "\n", d);
    /* backward jumps: a counted loop with jal x0 */
    __asm__ volatile(".option push\n.option norvc\nli %0, 0\nli t0, 10\n2: addi %0, %0, 3\naddi t0, t0, -1\nbeqz t0, 3f\njal x0, 2b\n3:\n.option pop" : "=&r"(d) : : "t0");
    printf("loop sum %" PRIu64 "\n", d);
    /* compressed jumps: c.j forward, c.jr, c.jalr (link = pc + 2) */
    __asm__ volatile("li %0, 1\n\tc.j 1f\n\tli %0, 2\n1:" : "=&r"(d));
    printf("c.j -> %" PRIu64 "\n", d);
    __asm__ volatile("lla t1, 1f\n\tli %0, 1\n\tc.jr t1\n\tli %0, 2\n1:" : "=&r"(d) : : "t1");
    printf("c.jr -> %" PRIu64 "\n", d);
    __asm__ volatile("lla t1, 1f\n\tauipc t0, 0\n\tc.jalr t1\n\tnop\n1: mv %0, ra\n\tsub %1, ra, t0" : "=&r"(e), "=&r"(d) : : "t0", "t1", "ra");
    printf("c.jalr link delta %" PRIu64 "\n", d - 0); /* auipc(4) + c.jalr(2) -> 6 */
    (void)e;
    return 0;
}
