/* Explicit RVC encodings: c.li, c.lui, c.addi, c.addiw, c.addi16sp,
 * c.addi4spn, c.slli, c.srli, c.srai, c.andi, c.mv, c.add, c.sub, c.xor,
 * c.or, c.and, c.addw, c.subw, the c.lw/c.ld/c.sw/c.sd register and sp
 * forms, c.fld/c.fsd/c.fldsp/c.fsdsp. */
#include "support/common.h"

/* two-register compressed op on a0 (rd/rs1) and a1 (rs2) */
#define C2(op, x, y) ({ register u64 _a __asm__("a0") = (x); register u64 _b __asm__("a1") = (y); \
    __asm__ volatile(op " a0, a1" : "+r"(_a) : "r"(_b)); _a; })
/* register-immediate compressed op on a0 */
#define CI(op, x, imm) ({ register u64 _a __asm__("a0") = (x); \
    __asm__ volatile(op " a0, %1" : "+r"(_a) : "i"(imm)); _a; })

#define T2(op) for (int i = 0; i < NVALS; i++) for (int j = 0; j < NVALS; j += 3) \
    printf("%-7s %016" PRIx64 " %016" PRIx64 " -> %016" PRIx64 "\n", op, VALS[i], VALS[j], C2(op, VALS[i], VALS[j]))
#define TI(op, imm) for (int i = 0; i < NVALS; i++) \
    printf("%-7s %016" PRIx64 " %4d -> %016" PRIx64 "\n", op, VALS[i], (int)(imm), CI(op, VALS[i], imm))

static u64 mem[8] __attribute__((aligned(16)));

int main(void) {
    u64 r;
#define CLI(imm) __asm__ volatile("c.li %0, " #imm : "=r"(r)); printf("c.li %s -> %016" PRIx64 "\n", #imm, r)
    CLI(0); CLI(31); CLI(-32); CLI(-1);
#define CLUI(imm) __asm__ volatile("c.lui %0, " #imm : "=r"(r)); printf("c.lui %s -> %016" PRIx64 "\n", #imm, r)
    CLUI(1); CLUI(0x1f); CLUI(0xfffe0); CLUI(0xfffff);
    TI("c.addi", 1); TI("c.addi", -32); TI("c.addi", 31);
    TI("c.addiw", 0); TI("c.addiw", 1); TI("c.addiw", -1); TI("c.addiw", 31);
    TI("c.slli", 1); TI("c.slli", 31); TI("c.slli", 32); TI("c.slli", 63);
    TI("c.srli", 1); TI("c.srli", 32); TI("c.srli", 63);
    TI("c.srai", 1); TI("c.srai", 32); TI("c.srai", 63);
    TI("c.andi", 0); TI("c.andi", -1); TI("c.andi", 31); TI("c.andi", -32);
    T2("c.mv"); T2("c.add"); T2("c.sub"); T2("c.xor"); T2("c.or"); T2("c.and"); T2("c.addw"); T2("c.subw");

    /* c.addi16sp / c.addi4spn: relative to sp, print the deltas */
    __asm__ volatile("mv t0, sp\n\tc.addi16sp sp, -64\n\tsub %0, t0, sp\n\tc.addi16sp sp, 64" : "=r"(r) : : "t0", "memory");
    printf("c.addi16sp -64 delta %" PRIu64 "\n", r);
    __asm__ volatile("c.addi4spn a0, sp, 1020\n\tsub %0, a0, sp" : "=r"(r) : : "a0");
    printf("c.addi4spn 1020 delta %" PRIu64 "\n", r);

    /* register-based compressed loads/stores */
    for (int i = 0; i < 8; i++) mem[i] = 0x8899aabbccddeeffull ^ ((u64)i * 0x0101010101010101ull);
    {
        u64 v;
#define CLOAD(insn, off) __asm__ volatile("mv a2, %1\n\t" insn " a3, " #off "(a2)\n\tmv %0, a3" : "=r"(v) : "r"(mem) : "a2", "a3", "memory")
#define CSTORE(insn, off, x) __asm__ volatile("mv a2, %1\n\tmv a3, %0\n\t" insn " a3, " #off "(a2)" : : "r"((u64)(x)), "r"(mem) : "a2", "a3", "memory")
        CLOAD("c.lw", 12); printf("c.lw %016" PRIx64 "\n", v);
        CLOAD("c.ld", 16); printf("c.ld %016" PRIx64 "\n", v);
        CSTORE("c.sw", 4, 0xfedcba9876543210ull);
        CSTORE("c.sd", 24, 0xfedcba9876543210ull);
        for (int i = 0; i < 8; i++) printf("mem[%d] %016" PRIx64 "\n", i, mem[i]);
        __asm__ volatile("mv a2, %1\n\tc.fld fa0, 8(a2)\n\tfmv.x.d %0, fa0" : "=r"(v) : "r"(mem) : "a2", "fa0", "memory");
        printf("c.fld %016" PRIx64 "\n", v);
        __asm__ volatile("mv a2, %1\n\tfmv.d.x fa1, %0\n\tc.fsd fa1, 40(a2)" : : "r"(0x400921fb54442d18ull), "r"(mem) : "a2", "fa1", "memory");
        printf("c.fsd %016" PRIx64 "\n", mem[5]);
    }
    /* sp-based compressed loads/stores on a private stack area */
    __asm__ volatile(
        "c.addi16sp sp, -32\n\t"
        "li t0, -2\n\t"
        "c.swsp t0, 4(sp)\n\t"
        "c.sdsp t0, 8(sp)\n\t"
        "li t1, 0x1234\n\t"
        "c.sdsp t1, 16(sp)\n\t"
        "c.lwsp t2, 4(sp)\n\t"
        "c.ldsp t1, 16(sp)\n\t"
        "fmv.d.x ft0, t1\n\t"
        "c.fsdsp ft0, 24(sp)\n\t"
        "c.fldsp ft1, 8(sp)\n\t"
        "fmv.x.d %0, ft1\n\t"
        "add %0, %0, t2\n\t"
        "c.ldsp t2, 24(sp)\n\t"
        "add %0, %0, t2\n\t"
        "c.addi16sp sp, 32" : "=r"(r) : : "t0", "t1", "t2", "ft0", "ft1", "memory");
    printf("sp-relative sum %016" PRIx64 "\n", r);
    /* c.nop and c.ebreak-free paths: c.nop does nothing */
    __asm__ volatile("li %0, 7\n\tc.nop\n\tc.addi %0, 1" : "=r"(r));
    printf("c.nop -> %" PRIu64 "\n", r);
    return 0;
}
