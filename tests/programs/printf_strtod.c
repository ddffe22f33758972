/* printf/strtod round trips: %a, %e, %g, %.17g of doubles and floats,
 * strtod/strtof of decimal and hex strings, strtol/strtoul edge cases,
 * and snprintf truncation. */
#include "support/common.h"
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

int main(void) {
    static const double ds[] = {0.0, -0.0, 1.0, -1.5, 0.1, 1.0 / 3.0, 2.0 / 3.0, 1e308, 1.7976931348623157e308,
        2.2250738585072014e-308, 4.9406564584124654e-324, 123456789.125, -9.87654321e-7, 3.141592653589793,
        2.718281828459045, 1e22, 1e23, 5e-324, 0.5, 9007199254740993.0, INFINITY, -INFINITY, NAN};
    for (int i = 0; i < (int)(sizeof ds / sizeof ds[0]); i++) {
        char buf[128];
        double d = ds[i];
        u64 bits;
        memcpy(&bits, &d, 8);
        printf("%016" PRIx64 " %%a=%a %%e=%.10e %%g=%g %%.17g=%.17g %%f=%.3f\n", bits, d, d, d, d, d);
        snprintf(buf, sizeof buf, "%.17g", d);
        double back = strtod(buf, NULL);
        u64 bb;
        memcpy(&bb, &back, 8);
        printf("  roundtrip %s -> %016" PRIx64 " %s\n", buf, bb, bb == bits || (isnan(d) && isnan(back)) ? "same" : "DIFFERENT");
        snprintf(buf, sizeof buf, "%a", d);
        back = strtod(buf, NULL);
        memcpy(&bb, &back, 8);
        printf("  hex roundtrip %s -> %016" PRIx64 "\n", buf, bb);
        float f = (float)d;
        u32 fb;
        memcpy(&fb, &f, 4);
        snprintf(buf, sizeof buf, "%.9g", (double)f);
        float fback = strtof(buf, NULL);
        u32 fbb;
        memcpy(&fbb, &fback, 4);
        printf("  float %08" PRIx32 " %s -> %08" PRIx32 "\n", fb, buf, fbb);
    }
    static const char *const strs[] = {"0", "-0", "1e-400", "1e400", "-1e400", "0x1p-1074", "0x1.fffffffffffffp1023",
        "2.4703282292062327e-324", "2.4703282292062328e-324", "1.00000000000000011102230246251565404236316680908203125",
        "  42.5xyz", "inf", "-nan", "0x1.8p+1", ".5e1", "1_000", "", "nan(123)", "1e+", "4.9e-325"};
    for (int i = 0; i < (int)(sizeof strs / sizeof strs[0]); i++) {
        char *end;
        errno = 0;
        double d = strtod(strs[i], &end);
        int e = errno;
        u64 bits;
        memcpy(&bits, &d, 8);
        if (isnan(d)) bits &= 0xfff8000000000000ull; /* the payload is implementation-defined */
        printf("strtod(\"%s\") = %016" PRIx64 " consumed %d errno %s\n", strs[i], bits, (int)(end - strs[i]), e == ERANGE ? "ERANGE" : e ? "other" : "0");
    }
    static const char *const ints[] = {"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616", "-1", "0x7fffFFFF", "0777", "  +12abc", "z", "-0x10"};
    for (int i = 0; i < (int)(sizeof ints / sizeof ints[0]); i++) {
        char *e1, *e2;
        errno = 0;
        long l = strtol(ints[i], &e1, 0);
        int er1 = errno;
        errno = 0;
        unsigned long ul = strtoul(ints[i], &e2, 0);
        int er2 = errno;
        printf("strtol(\"%s\") = %ld/%d/%d strtoul = %lu/%d/%d\n", ints[i], l, (int)(e1 - ints[i]), er1 == ERANGE, ul, (int)(e2 - ints[i]), er2 == ERANGE);
    }
    {
        char small[8];
        volatile size_t smallsz = sizeof small;
        int n = snprintf(small, smallsz, "%s-%d", "abcdefgh", 12345);
        printf("snprintf truncation n=%d buf=%s\n", n, small);
        printf("[%5d] [%-5d] [%05d] [%+d] [% d] [%x] [%#o] [%#X] [%c] [%10.4s] [%%]\n", 42, 42, 42, 42, 42, 255, 8, 255, 'Q', "truncated");
        printf("[%lld] [%llu] [%hhd] [%hd] [%zu] [%jd]\n", (long long)INT64_MIN, (unsigned long long)UINT64_MAX, (signed char)300, (short)70000, (size_t)12345, (intmax_t)-77);
        printf("[%.0f] [%.0f] [%.0f] [%.1f] [%.20f] [%e] [%G]\n", 0.5, 1.5, 2.5, 0.05, 0.1, 0.0, 1e-10);
    }
    {
        char s[64];
        int a, b; double c; char w[16];
        int n = sscanf("17 -4 2.5e3 word", "%d %d %lf %15s", &a, &b, &c, w);
        snprintf(s, sizeof s, "%d %d %d %.1f %s", n, a, b, c, w);
        printf("sscanf: %s\n", s);
    }
    return 0;
}
