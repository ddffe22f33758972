/* Loads and stores of every width, signed and unsigned, at every alignment
 * (misaligned accesses included), FP loads/stores, and negative offsets. */
#include "support/common.h"

static unsigned char buf[96] __attribute__((aligned(16)));

static void fill(void) {
    for (int i = 0; i < (int)sizeof buf; i++) buf[i] = (unsigned char)(0x80 + i * 7);
}

static void dump(const char *what, int off) {
    printf("%s @%2d:", what, off);
    for (int i = 0; i < 32; i++) printf(" %02x", buf[i]);
    printf("\n");
}

#define LD(op, off) ({ u64 _r; __asm__ volatile(op " %0, 0(%1)" : "=r"(_r) : "r"(buf + (off)) : "memory"); _r; })
#define ST(op, off, v) __asm__ volatile(op " %0, 0(%1)" : : "r"((u64)(v)), "r"(buf + (off)) : "memory")

int main(void) {
    static const char *const lds[] = {"lb", "lbu", "lh", "lhu", "lw", "lwu", "ld"};
    for (int off = 0; off < 16; off++) {
        fill();
        printf("lb  @%2d %016" PRIx64 "\n", off, LD("lb", off));
        printf("lbu @%2d %016" PRIx64 "\n", off, LD("lbu", off));
        printf("lh  @%2d %016" PRIx64 "\n", off, LD("lh", off));
        printf("lhu @%2d %016" PRIx64 "\n", off, LD("lhu", off));
        printf("lw  @%2d %016" PRIx64 "\n", off, LD("lw", off));
        printf("lwu @%2d %016" PRIx64 "\n", off, LD("lwu", off));
        printf("ld  @%2d %016" PRIx64 "\n", off, LD("ld", off));
    }
    (void)lds;
    for (int off = 0; off < 16; off++) {
        fill(); ST("sb", off, 0x1122334455667788ull); dump("sb", off);
        fill(); ST("sh", off, 0x1122334455667788ull); dump("sh", off);
        fill(); ST("sw", off, 0x1122334455667788ull); dump("sw", off);
        fill(); ST("sd", off, 0x1122334455667788ull); dump("sd", off);
    }
    /* FP loads/stores, including misaligned, and NaN-boxing of flw */
    for (int off = 0; off < 12; off += 3) {
        u64 r;
        fill();
        __asm__ volatile("flw ft0, 0(%1)\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(buf + off) : "ft0", "memory");
        printf("flw @%2d boxed %016" PRIx64 "\n", off, r);
        __asm__ volatile("fld ft0, 0(%1)\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(buf + off) : "ft0", "memory");
        printf("fld @%2d %016" PRIx64 "\n", off, r);
        __asm__ volatile("fmv.d.x ft1, %0\n\tfsw ft1, 0(%1)" : : "r"(0xa5a5a5a5deadbeefull), "r"(buf + off + 1) : "ft1", "memory");
        dump("fsw", off + 1);
        __asm__ volatile("fmv.d.x ft1, %0\n\tfsd ft1, 0(%1)" : : "r"(0x0102030405060708ull), "r"(buf + off + 2) : "ft1", "memory");
        dump("fsd", off + 2);
    }
    /* negative and large immediate offsets */
    {
        u64 r;
        fill();
        __asm__ volatile("ld %0, -8(%1)" : "=r"(r) : "r"(buf + 24) : "memory");
        printf("ld -8 %016" PRIx64 "\n", r);
        __asm__ volatile("lw %0, -3(%1)" : "=r"(r) : "r"(buf + 24) : "memory");
        printf("lw -3 %016" PRIx64 "\n", r);
        __asm__ volatile("lhu %0, 2000(%1)" : "=r"(r) : "r"(buf + 40 - 2000) : "memory");
        printf("lhu 2000 %016" PRIx64 "\n", r);
        __asm__ volatile("sd %0, -2048(%1)" : : "r"(0xcafef00dull), "r"(buf + 2048 + 8) : "memory");
        dump("sd -2048", 8);
    }
    /* a load into x0 is performed but discarded */
    {
        u64 r;
        __asm__ volatile("lw x0, 0(%1)\n\tmv %0, x0" : "=r"(r) : "r"(buf) : "memory");
        printf("lw x0 -> %016" PRIx64 "\n", r);
    }
    return 0;
}
