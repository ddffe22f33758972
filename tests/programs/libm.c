/* libm on a grid of inputs: exp, log, pow, sin, cos, tan, atan2, sqrt,
 * cbrt, fma, floor/ceil/round/trunc/rint under the rounding modes,
 * lrint, fmod, remainder, frexp/ldexp, nextafter; printed as bit
 * patterns with the fenv exception flags. */
#include "support/common.h"
#include <fenv.h>
#include <math.h>

static u64 bits(double d) { u64 b; memcpy(&b, &d, 8); return b; }

int main(void) {
    static const double xs[] = {0.0, -0.0, 0.5, 1.0, -1.0, 2.0, 3.0, 10.0, 0.1, -7.25, 100.5, 1e-300, 1e300, 710.0, -745.5, 1e-310, INFINITY, -INFINITY, NAN};
    int n = (int)(sizeof xs / sizeof xs[0]);
    for (int i = 0; i < n; i++) {
        double x = xs[i];
        feclearexcept(FE_ALL_EXCEPT);
        printf("x %016" PRIx64 " exp %016" PRIx64 " log %016" PRIx64 " sin %016" PRIx64 " cos %016" PRIx64 " tan %016" PRIx64 " sqrt %016" PRIx64 " cbrt %016" PRIx64 " atan %016" PRIx64 " flags %02x\n",
               bits(x), bits(exp(x)), bits(log(x)), bits(sin(x)), bits(cos(x)), bits(tan(x)), bits(sqrt(x)), bits(cbrt(x)), bits(atan(x)), fetestexcept(FE_ALL_EXCEPT));
        for (int j = 0; j < n; j += 2) {
            double y = xs[j];
            printf("  y %016" PRIx64 " pow %016" PRIx64 " atan2 %016" PRIx64 " fmod %016" PRIx64 " remainder %016" PRIx64 " hypot %016" PRIx64 " fma %016" PRIx64 "\n",
                   bits(y), bits(pow(x, y)), bits(atan2(x, y)), bits(fmod(x, y)), bits(remainder(x, y)), bits(hypot(x, y)), bits(fma(x, y, 0.1)));
        }
    }
    static const int modes[] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD};
    static const double rs[] = {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999999, -3.7, 1e16 + 1, 4503599627370497.0};
    for (int m = 0; m < 4; m++) {
        fesetround(modes[m]);
        for (int i = 0; i < (int)(sizeof rs / sizeof rs[0]); i++) {
            double x = rs[i];
            printf("mode %d x %.17g floor %.1f ceil %.1f round %.1f trunc %.1f rint %.1f nearbyint %.1f lrint %ld llround %lld div %016" PRIx64 "\n",
                   m, x, floor(x), ceil(x), round(x), trunc(x), rint(x), nearbyint(x), lrint(x), llround(x), bits(x / 3.0));
        }
    }
    fesetround(FE_TONEAREST);
    for (int i = 0; i < n; i++) {
        int e;
        double m = frexp(xs[i], &e);
        printf("frexp %016" PRIx64 " -> %016" PRIx64 " %d ldexp %016" PRIx64 " next %016" PRIx64 " %016" PRIx64 " logb %016" PRIx64 " ilogb %d\n",
               bits(xs[i]), bits(m), isfinite(xs[i]) ? e : 0, bits(ldexp(xs[i], -1070)), bits(nextafter(xs[i], 1.0)), bits(nextafter(xs[i], -INFINITY)), bits(logb(xs[i])), isfinite(xs[i]) && xs[i] != 0 ? ilogb(xs[i]) : 0);
    }
    float fs = 0.0f;
    for (int i = 1; i <= 1000; i++) fs += sinf((float)i) / (float)i;
    printf("float series %a expf %a logf %a powf %a\n", (double)fs, (double)expf(1.5f), (double)logf(3.0f), (double)powf(2.0f, 0.5f));
    return 0;
}
