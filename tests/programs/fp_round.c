/* F and D arithmetic, fsqrt, fused multiply-add and conversions under all
 * five rounding modes, each given statically in the instruction and
 * dynamically through frm; every result is printed with the fflags it
 * accrued (flags cleared before each operation). */
#include "support/common.h"

#define RMS(X) X(rne) X(rtz) X(rdn) X(rup) X(rmm)
static const char *const RM_NAMES[5] = {"rne", "rtz", "rdn", "rup", "rmm"};

/* --- instruction wrappers: one function per (instruction, rounding mode) --- */
#define BIN(fn, insn, mvi, mvo, rm) static u64 fn##_##rm(u64 a, u64 b, u64 c, u64 *fl) { u64 r; (void)c; \
    __asm__ volatile(mvi " ft0, %2\n\t" mvi " ft1, %3\n\tcsrw fflags, zero\n\t" insn " ft2, ft0, ft1, " #rm "\n\t" mvo " %0, ft2\n\tfrflags %1" \
    : "=r"(r), "=r"(*fl) : "r"(a), "r"(b) : "ft0", "ft1", "ft2"); return r; }
#define UN(fn, insn, mvi, mvo, rm) static u64 fn##_##rm(u64 a, u64 b, u64 c, u64 *fl) { u64 r; (void)b; (void)c; \
    __asm__ volatile(mvi " ft0, %2\n\tcsrw fflags, zero\n\t" insn " ft2, ft0, " #rm "\n\t" mvo " %0, ft2\n\tfrflags %1" \
    : "=r"(r), "=r"(*fl) : "r"(a) : "ft0", "ft2"); return r; }
#define TER(fn, insn, mvi, mvo, rm) static u64 fn##_##rm(u64 a, u64 b, u64 c, u64 *fl) { u64 r; \
    __asm__ volatile(mvi " ft0, %2\n\t" mvi " ft1, %3\n\t" mvi " ft3, %4\n\tcsrw fflags, zero\n\t" insn " ft2, ft0, ft1, ft3, " #rm "\n\t" mvo " %0, ft2\n\tfrflags %1" \
    : "=r"(r), "=r"(*fl) : "r"(a), "r"(b), "r"(c) : "ft0", "ft1", "ft2", "ft3"); return r; }
/* float -> int: result in an integer register */
#define F2I(fn, insn, mvi, rm) static u64 fn##_##rm(u64 a, u64 b, u64 c, u64 *fl) { u64 r; (void)b; (void)c; \
    __asm__ volatile(mvi " ft0, %2\n\tcsrw fflags, zero\n\t" insn " %0, ft0, " #rm "\n\tfrflags %1" \
    : "=r"(r), "=r"(*fl) : "r"(a) : "ft0"); return r; }
/* int -> float */
#define I2F(fn, insn, mvo, rm) static u64 fn##_##rm(u64 a, u64 b, u64 c, u64 *fl) { u64 r; (void)b; (void)c; \
    __asm__ volatile("csrw fflags, zero\n\t" insn " ft2, %2, " #rm "\n\t" mvo " %0, ft2\n\tfrflags %1" \
    : "=r"(r), "=r"(*fl) : "r"(a) : "ft2"); return r; }

typedef u64 (*opfn)(u64, u64, u64, u64 *);
#define ALLRM(KIND, fn, ...) KIND(fn, __VA_ARGS__, rne) KIND(fn, __VA_ARGS__, rtz) KIND(fn, __VA_ARGS__, rdn) \
    KIND(fn, __VA_ARGS__, rup) KIND(fn, __VA_ARGS__, rmm) KIND(fn, __VA_ARGS__, dyn) \
    static const opfn fn[6] = {fn##_rne, fn##_rtz, fn##_rdn, fn##_rup, fn##_rmm, fn##_dyn};

ALLRM(BIN, fadd_d, "fadd.d", "fmv.d.x", "fmv.x.d")
ALLRM(BIN, fsub_d, "fsub.d", "fmv.d.x", "fmv.x.d")
ALLRM(BIN, fmul_d, "fmul.d", "fmv.d.x", "fmv.x.d")
ALLRM(BIN, fdiv_d, "fdiv.d", "fmv.d.x", "fmv.x.d")
ALLRM(UN, fsqrt_d, "fsqrt.d", "fmv.d.x", "fmv.x.d")
ALLRM(BIN, fadd_s, "fadd.s", "fmv.w.x", "fmv.x.w")
ALLRM(BIN, fsub_s, "fsub.s", "fmv.w.x", "fmv.x.w")
ALLRM(BIN, fmul_s, "fmul.s", "fmv.w.x", "fmv.x.w")
ALLRM(BIN, fdiv_s, "fdiv.s", "fmv.w.x", "fmv.x.w")
ALLRM(UN, fsqrt_s, "fsqrt.s", "fmv.w.x", "fmv.x.w")
ALLRM(TER, fmadd_d, "fmadd.d", "fmv.d.x", "fmv.x.d")
ALLRM(TER, fmsub_d, "fmsub.d", "fmv.d.x", "fmv.x.d")
ALLRM(TER, fnmadd_d, "fnmadd.d", "fmv.d.x", "fmv.x.d")
ALLRM(TER, fnmsub_d, "fnmsub.d", "fmv.d.x", "fmv.x.d")
ALLRM(TER, fmadd_s, "fmadd.s", "fmv.w.x", "fmv.x.w")
ALLRM(TER, fmsub_s, "fmsub.s", "fmv.w.x", "fmv.x.w")
ALLRM(TER, fnmadd_s, "fnmadd.s", "fmv.w.x", "fmv.x.w")
ALLRM(TER, fnmsub_s, "fnmsub.s", "fmv.w.x", "fmv.x.w")
ALLRM(UN, fcvt_s_d, "fcvt.s.d", "fmv.d.x", "fmv.x.w")
ALLRM(F2I, fcvt_w_d, "fcvt.w.d", "fmv.d.x")
ALLRM(F2I, fcvt_wu_d, "fcvt.wu.d", "fmv.d.x")
ALLRM(F2I, fcvt_l_d, "fcvt.l.d", "fmv.d.x")
ALLRM(F2I, fcvt_lu_d, "fcvt.lu.d", "fmv.d.x")
ALLRM(F2I, fcvt_w_s, "fcvt.w.s", "fmv.w.x")
ALLRM(F2I, fcvt_wu_s, "fcvt.wu.s", "fmv.w.x")
ALLRM(F2I, fcvt_l_s, "fcvt.l.s", "fmv.w.x")
ALLRM(F2I, fcvt_lu_s, "fcvt.lu.s", "fmv.w.x")
ALLRM(I2F, fcvt_s_w, "fcvt.s.w", "fmv.x.w")
ALLRM(I2F, fcvt_s_wu, "fcvt.s.wu", "fmv.x.w")
ALLRM(I2F, fcvt_s_l, "fcvt.s.l", "fmv.x.w")
ALLRM(I2F, fcvt_s_lu, "fcvt.s.lu", "fmv.x.w")
ALLRM(I2F, fcvt_d_l, "fcvt.d.l", "fmv.x.d")
ALLRM(I2F, fcvt_d_lu, "fcvt.d.lu", "fmv.x.d")

/* operands: doubles (bit patterns) */
static const u64 DV[] = {
    0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull, 0xbff0000000000000ull,
    0x4008000000000000ull, 0x3fb999999999999aull, 0x3fd5555555555555ull, 0xc004000000000000ull,
    0x7fefffffffffffffull, 0x0010000000000000ull, 0x000fffffffffffffull, 0x0000000000000001ull,
    0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull, 0x7ff4000000000000ull,
    0x4340000000000001ull, 0x3ff0000000000001ull, 0x41dfffffffe00000ull, 0xc3e0000000000000ull,
    0x43f0000000000000ull, 0x3fe0000000000000ull, 0xbff8000000000000ull, 0x4415af1d78b58c40ull,
};
/* operands: singles */
static const u64 SV[] = {
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x40400000, 0x3dcccccd, 0x3eaaaaab, 0xc0200000,
    0x7f7fffff, 0x00800000, 0x007fffff, 0x00000001, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000,
    0x4b800001, 0x3f800001, 0x4effffff, 0xdf000000, 0x5f800000, 0x3f000000, 0xbfc00000, 0x4f800000,
};
#define NDV ((int)(sizeof DV / sizeof DV[0]))
#define NSV ((int)(sizeof SV / sizeof SV[0]))

static void set_frm(int rm) { __asm__ volatile("fsrm %0" : : "r"((u64)rm)); }

/* Runs one operation under the 5 static modes and under dyn with frm set
 * to each mode; prints static results and whether dyn agreed. */
static void run(const char *name, const opfn *fn, u64 a, u64 b, u64 c, int nargs, int width) {
    u64 r[5], f[5];
    printf("%-10s", name);
    if (width == 32) {
        printf(" %08" PRIx64, a & 0xffffffffu);
        if (nargs > 1) printf(" %08" PRIx64, b & 0xffffffffu);
        if (nargs > 2) printf(" %08" PRIx64, c & 0xffffffffu);
    } else {
        printf(" %016" PRIx64, a);
        if (nargs > 1) printf(" %016" PRIx64, b);
        if (nargs > 2) printf(" %016" PRIx64, c);
    }
    printf(" ->");
    for (int m = 0; m < 5; m++) {
        set_frm(0);
        r[m] = fn[m](a, b, c, &f[m]);
        printf(" %016" PRIx64 "/%02" PRIx64, r[m], f[m]);
    }
    for (int m = 0; m < 5; m++) {
        u64 fl, v;
        set_frm(m);
        v = fn[5](a, b, c, &fl);
        if (v != r[m] || fl != f[m]) printf(" dyn-%s:%016" PRIx64 "/%02" PRIx64, RM_NAMES[m], v, fl);
    }
    set_frm(0);
    printf("\n");
}

int main(void) {
    for (int i = 0; i < NDV; i++) {
        for (int j = 0; j < NDV; j++) {
            run("fadd.d", fadd_d, DV[i], DV[j], 0, 2, 64);
            run("fsub.d", fsub_d, DV[i], DV[j], 0, 2, 64);
            run("fmul.d", fmul_d, DV[i], DV[j], 0, 2, 64);
            run("fdiv.d", fdiv_d, DV[i], DV[j], 0, 2, 64);
        }
        run("fsqrt.d", fsqrt_d, DV[i], 0, 0, 1, 64);
        run("fcvt.s.d", fcvt_s_d, DV[i], 0, 0, 1, 64);
        run("fcvt.w.d", fcvt_w_d, DV[i], 0, 0, 1, 64);
        run("fcvt.wu.d", fcvt_wu_d, DV[i], 0, 0, 1, 64);
        run("fcvt.l.d", fcvt_l_d, DV[i], 0, 0, 1, 64);
        run("fcvt.lu.d", fcvt_lu_d, DV[i], 0, 0, 1, 64);
    }
    for (int i = 0; i < NSV; i++) {
        for (int j = 0; j < NSV; j++) {
            run("fadd.s", fadd_s, SV[i], SV[j], 0, 2, 32);
            run("fsub.s", fsub_s, SV[i], SV[j], 0, 2, 32);
            run("fmul.s", fmul_s, SV[i], SV[j], 0, 2, 32);
            run("fdiv.s", fdiv_s, SV[i], SV[j], 0, 2, 32);
        }
        run("fsqrt.s", fsqrt_s, SV[i], 0, 0, 1, 32);
        run("fcvt.w.s", fcvt_w_s, SV[i], 0, 0, 1, 32);
        run("fcvt.wu.s", fcvt_wu_s, SV[i], 0, 0, 1, 32);
        run("fcvt.l.s", fcvt_l_s, SV[i], 0, 0, 1, 32);
        run("fcvt.lu.s", fcvt_lu_s, SV[i], 0, 0, 1, 32);
    }
    /* fused multiply-add over a subset of triples */
    for (int i = 0; i < NDV; i += 2)
        for (int j = 1; j < NDV; j += 3)
            for (int k = 0; k < NDV; k += 4) {
                run("fmadd.d", fmadd_d, DV[i], DV[j], DV[k], 3, 64);
                run("fmsub.d", fmsub_d, DV[i], DV[j], DV[k], 3, 64);
                run("fnmadd.d", fnmadd_d, DV[i], DV[j], DV[k], 3, 64);
                run("fnmsub.d", fnmsub_d, DV[i], DV[j], DV[k], 3, 64);
                run("fmadd.s", fmadd_s, SV[i], SV[j], SV[k], 3, 32);
                run("fmsub.s", fmsub_s, SV[i], SV[j], SV[k], 3, 32);
                run("fnmadd.s", fnmadd_s, SV[i], SV[j], SV[k], 3, 32);
                run("fnmsub.s", fnmsub_s, SV[i], SV[j], SV[k], 3, 32);
            }
    /* the fma cases that only an unfused multiply-add gets wrong */
    run("fmadd.d", fmadd_d, 0x3ff0000000000001ull, 0x3ff0000000000001ull, 0xbff0000000000002ull, 3, 64);
    run("fmadd.d", fmadd_d, 0x7ff0000000000000ull, 0x0000000000000000ull, 0x7ff8000000000000ull, 3, 64);
    run("fmadd.s", fmadd_s, 0x3f800001, 0x3f800001, 0xbf800002, 3, 32);
    /* integer -> float */
    for (int i = 0; i < NVALS; i++) {
        run("fcvt.s.w", fcvt_s_w, VALS[i], 0, 0, 1, 64);
        run("fcvt.s.wu", fcvt_s_wu, VALS[i], 0, 0, 1, 64);
        run("fcvt.s.l", fcvt_s_l, VALS[i], 0, 0, 1, 64);
        run("fcvt.s.lu", fcvt_s_lu, VALS[i], 0, 0, 1, 64);
        run("fcvt.d.l", fcvt_d_l, VALS[i], 0, 0, 1, 64);
        run("fcvt.d.lu", fcvt_d_lu, VALS[i], 0, 0, 1, 64);
    }
    return 0;
}
