/* F/D details: NaN-boxing of single values in 64-bit registers, fmin/fmax
 * with signalling and quiet NaNs and signed zeros, compare flags, fcvt
 * saturation, fclass of every class, sign injection, fmv sign extension
 * and the exact conversions. fflags are printed after every operation. */
#include "support/common.h"

#define FL() ({ u64 _f; __asm__ volatile("frflags %0" : "=r"(_f)); _f; })
#define CLR() __asm__ volatile("csrw fflags, zero")

/* two singles in, single out; inputs given as raw 64-bit register images */
#define SS2(insn, a, b) ({ u64 _r; __asm__ volatile("fmv.d.x ft0, %1\n\tfmv.d.x ft1, %2\n\t" insn " ft2, ft0, ft1\n\tfmv.x.d %0, ft2" \
    : "=r"(_r) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1", "ft2"); _r; })
#define DD2(insn, a, b) SS2(insn, a, b)
/* compare: integer out */
#define CMP(insn, a, b) ({ u64 _r; __asm__ volatile("fmv.d.x ft0, %1\n\tfmv.d.x ft1, %2\n\t" insn " %0, ft0, ft1" \
    : "=r"(_r) : "r"((u64)(a)), "r"((u64)(b)) : "ft0", "ft1"); _r; })
#define F1I(insn, a) ({ u64 _r; __asm__ volatile("fmv.d.x ft0, %1\n\t" insn " %0, ft0" : "=r"(_r) : "r"((u64)(a)) : "ft0"); _r; })
#define F1F(insn, a) ({ u64 _r; __asm__ volatile("fmv.d.x ft0, %1\n\t" insn " ft2, ft0\n\tfmv.x.d %0, ft2" : "=r"(_r) : "r"((u64)(a)) : "ft0", "ft2"); _r; })
#define I1F(insn, a) ({ u64 _r; __asm__ volatile(insn " ft2, %1\n\tfmv.x.d %0, ft2" : "=r"(_r) : "r"((u64)(a)) : "ft2"); _r; })
#define BOX(x) (0xffffffff00000000ull | (u64)(u32)(x))

/* singles, NaN-boxed, plus improperly boxed images */
static const u64 S[] = {
    BOX(0x00000000), BOX(0x80000000), BOX(0x3f800000), BOX(0xbf800000), BOX(0x7f800000), BOX(0xff800000),
    BOX(0x7fc00000), BOX(0xffc00001), BOX(0x7f800001), BOX(0xff900000), BOX(0x00000001), BOX(0x807fffff),
    BOX(0x7f7fffff), BOX(0x40490fdb),
    0x000000003f800000ull, 0x7fffffff3f800000ull, 0xfffffffe40000000ull, 0x7ff8000000000000ull,
};
static const u64 D[] = {
    0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull, 0xbff0000000000000ull,
    0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull, 0xfff8000000000001ull,
    0x7ff0000000000001ull, 0xfff4000000000000ull, 0x0000000000000001ull, 0x800fffffffffffffull,
    0x7fefffffffffffffull, 0x400921fb54442d18ull, 0xffffffff3f800000ull,
};
#define NS ((int)(sizeof S / sizeof S[0]))
#define ND ((int)(sizeof D / sizeof D[0]))

int main(void) {
    static const char *const s2[] = {"fmin.s", "fmax.s", "fsgnj.s", "fsgnjn.s", "fsgnjx.s", "fadd.s"};
    static const char *const d2[] = {"fmin.d", "fmax.d", "fsgnj.d", "fsgnjn.d", "fsgnjx.d", "fadd.d"};
    static const char *const sc[] = {"feq.s", "flt.s", "fle.s"};
    static const char *const dc[] = {"feq.d", "flt.d", "fle.d"};
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < NS; j++) {
            u64 r[6], f[6], c[3], cf[3];
            CLR(); r[0] = SS2("fmin.s", S[i], S[j]); f[0] = FL();
            CLR(); r[1] = SS2("fmax.s", S[i], S[j]); f[1] = FL();
            CLR(); r[2] = SS2("fsgnj.s", S[i], S[j]); f[2] = FL();
            CLR(); r[3] = SS2("fsgnjn.s", S[i], S[j]); f[3] = FL();
            CLR(); r[4] = SS2("fsgnjx.s", S[i], S[j]); f[4] = FL();
            CLR(); r[5] = SS2("fadd.s", S[i], S[j]); f[5] = FL();
            CLR(); c[0] = CMP("feq.s", S[i], S[j]); cf[0] = FL();
            CLR(); c[1] = CMP("flt.s", S[i], S[j]); cf[1] = FL();
            CLR(); c[2] = CMP("fle.s", S[i], S[j]); cf[2] = FL();
            printf("S %016" PRIx64 " %016" PRIx64 ":", S[i], S[j]);
            for (int k = 0; k < 6; k++) printf(" %s=%016" PRIx64 "/%02" PRIx64, s2[k], r[k], f[k]);
            for (int k = 0; k < 3; k++) printf(" %s=%" PRIu64 "/%02" PRIx64, sc[k], c[k], cf[k]);
            printf("\n");
        }
    for (int i = 0; i < ND; i++)
        for (int j = 0; j < ND; j++) {
            u64 r[6], f[6], c[3], cf[3];
            CLR(); r[0] = DD2("fmin.d", D[i], D[j]); f[0] = FL();
            CLR(); r[1] = DD2("fmax.d", D[i], D[j]); f[1] = FL();
            CLR(); r[2] = DD2("fsgnj.d", D[i], D[j]); f[2] = FL();
            CLR(); r[3] = DD2("fsgnjn.d", D[i], D[j]); f[3] = FL();
            CLR(); r[4] = DD2("fsgnjx.d", D[i], D[j]); f[4] = FL();
            CLR(); r[5] = DD2("fadd.d", D[i], D[j]); f[5] = FL();
            CLR(); c[0] = CMP("feq.d", D[i], D[j]); cf[0] = FL();
            CLR(); c[1] = CMP("flt.d", D[i], D[j]); cf[1] = FL();
            CLR(); c[2] = CMP("fle.d", D[i], D[j]); cf[2] = FL();
            printf("D %016" PRIx64 " %016" PRIx64 ":", D[i], D[j]);
            for (int k = 0; k < 6; k++) printf(" %s=%016" PRIx64 "/%02" PRIx64, d2[k], r[k], f[k]);
            for (int k = 0; k < 3; k++) printf(" %s=%" PRIu64 "/%02" PRIx64, dc[k], c[k], cf[k]);
            printf("\n");
        }
    /* fclass, moves, exact conversions, per value */
    for (int i = 0; i < NS; i++) {
        u64 cls, mx, cvd, fl;
        cls = F1I("fclass.s", S[i]);
        mx = F1I("fmv.x.w", S[i]);
        CLR(); cvd = F1F("fcvt.d.s", S[i]); fl = FL();
        printf("fclass.s %016" PRIx64 " -> %03" PRIx64 " fmv.x.w %016" PRIx64 " fcvt.d.s %016" PRIx64 "/%02" PRIx64 "\n", S[i], cls, mx, cvd, fl);
    }
    for (int i = 0; i < ND; i++) {
        u64 cls, mx, cvs, fl;
        cls = F1I("fclass.d", D[i]);
        mx = F1I("fmv.x.d", D[i]);
        CLR(); cvs = F1F("fcvt.s.d", D[i]); fl = FL();
        printf("fclass.d %016" PRIx64 " -> %03" PRIx64 " fmv.x.d %016" PRIx64 " fcvt.s.d %016" PRIx64 "/%02" PRIx64 "\n", D[i], cls, mx, cvs, fl);
    }
    for (int i = 0; i < NVALS; i++) {
        u64 a, b, c, d;
        a = I1F("fmv.w.x", VALS[i]);
        b = I1F("fmv.d.x", VALS[i]);
        CLR(); c = I1F("fcvt.d.w", VALS[i]);
        d = I1F("fcvt.d.wu", VALS[i]);
        printf("fmv.w.x %016" PRIx64 " -> %016" PRIx64 " fmv.d.x %016" PRIx64 " fcvt.d.w %016" PRIx64 " fcvt.d.wu %016" PRIx64 " fl %02" PRIx64 "\n", VALS[i], a, b, c, d, FL());
    }
    /* fcvt to integer: saturation and NaN (dynamic rounding, frm = rne) */
    {
        static const u64 cv[] = {0x7ff8000000000000ull, 0x7ff0000000000000ull, 0xfff0000000000000ull, 0x41e0000000000000ull,
            0xc1e0000000200000ull, 0x43e0000000000000ull, 0xc3e0000000000001ull, 0x43f0000000000000ull, 0xbff0000000000000ull,
            0xbfe0000000000000ull, 0x41efffffffe00000ull, 0x41f0000000000000ull, 0x8000000000000000ull, 0x3fefffffffffffffull};
        for (int i = 0; i < (int)(sizeof cv / sizeof cv[0]); i++) {
            u64 r[4], f[4];
            CLR(); r[0] = F1I("fcvt.w.d", cv[i]); f[0] = FL();
            CLR(); r[1] = F1I("fcvt.wu.d", cv[i]); f[1] = FL();
            CLR(); r[2] = F1I("fcvt.l.d", cv[i]); f[2] = FL();
            CLR(); r[3] = F1I("fcvt.lu.d", cv[i]); f[3] = FL();
            printf("fcvt-sat %016" PRIx64 ": w %016" PRIx64 "/%02" PRIx64 " wu %016" PRIx64 "/%02" PRIx64 " l %016" PRIx64 "/%02" PRIx64 " lu %016" PRIx64 "/%02" PRIx64 "\n",
                   cv[i], r[0], f[0], r[1], f[1], r[2], f[2], r[3], f[3]);
        }
    }
    /* flw/fsw keep raw bits; fsw of an improperly boxed value stores the low word */
    {
        u32 w = 0;
        u64 v = 0x123456787fa00000ull, back;
        __asm__ volatile("fmv.d.x ft0, %1\n\tfsw ft0, 0(%2)\n\tflw ft1, 0(%2)\n\tfmv.x.d %0, ft1" : "=r"(back) : "r"(v), "r"(&w) : "ft0", "ft1", "memory");
        printf("fsw/flw raw %08" PRIx32 " reload %016" PRIx64 "\n", w, back);
    }
    return 0;
}
