/* A extension: LR/SC success and failure, and every AMO in W and D width
 * with the aq/rl variants, printing old values and memory afterwards. */
#include "support/common.h"

static u64 cell[4] __attribute__((aligned(16)));

#define AMO(op, init, src) do { \
    cell[0] = (init); cell[1] = 0x1111111111111111ull; u64 _old; \
    __asm__ volatile(op " %0, %2, (%1)" : "=&r"(_old) : "r"(cell), "r"((u64)(src)) : "memory"); \
    printf("%-14s %016" PRIx64 " %016" PRIx64 " -> old %016" PRIx64 " mem %016" PRIx64 " %016" PRIx64 "\n", op, (u64)(init), (u64)(src), _old, cell[0], cell[1]); \
} while (0)

#define AMO_ALL(base) do { for (int i = 0; i < NVALS; i += 2) for (int j = 1; j < NVALS; j += 3) AMO(base, VALS[i], VALS[j]); } while (0)

int main(void) {
    AMO_ALL("amoswap.w"); AMO_ALL("amoadd.w"); AMO_ALL("amoxor.w"); AMO_ALL("amoand.w"); AMO_ALL("amoor.w");
    AMO_ALL("amomin.w"); AMO_ALL("amomax.w"); AMO_ALL("amominu.w"); AMO_ALL("amomaxu.w");
    AMO_ALL("amoswap.d"); AMO_ALL("amoadd.d"); AMO_ALL("amoxor.d"); AMO_ALL("amoand.d"); AMO_ALL("amoor.d");
    AMO_ALL("amomin.d"); AMO_ALL("amomax.d"); AMO_ALL("amominu.d"); AMO_ALL("amomaxu.d");
    AMO("amoadd.w.aq", 5, 7); AMO("amoadd.w.rl", 5, 7); AMO("amoadd.w.aqrl", 5, 7);
    AMO("amoswap.d.aq", 5, 7); AMO("amomax.d.rl", -5, 7); AMO("amominu.d.aqrl", -5, 7);
    /* amo with rd = x0 */
    cell[0] = 10;
    __asm__ volatile("amoadd.d x0, %1, (%0)" : : "r"(cell), "r"((u64)32) : "memory");
    printf("amoadd.d x0 -> mem %016" PRIx64 "\n", cell[0]);
    /* amo on the upper word of a doubleword */
    cell[0] = 0x00000001ffffffffull;
    {
        u64 old;
        __asm__ volatile("amoadd.w %0, %2, (%1)" : "=&r"(old) : "r"((char *)cell + 4), "r"((u64)0x7fffffff) : "memory");
        printf("amoadd.w upper -> old %016" PRIx64 " mem %016" PRIx64 "\n", old, cell[0]);
    }

    /* LR/SC: success */
    for (int w = 0; w < 2; w++) {
        u64 val, fail;
        cell[0] = 0x80000000fffffff0ull;
        if (w)
            __asm__ volatile("lr.d %0, (%2)\n\taddi %0, %0, 1\n\tsc.d %1, %0, (%2)" : "=&r"(val), "=&r"(fail) : "r"(cell) : "memory");
        else
            __asm__ volatile("lr.w %0, (%2)\n\taddi %0, %0, 1\n\tsc.w %1, %0, (%2)" : "=&r"(val), "=&r"(fail) : "r"(cell) : "memory");
        printf("lr/sc.%c val %016" PRIx64 " sc-result %" PRIu64 " mem %016" PRIx64 "\n", w ? 'd' : 'w', val, fail, cell[0]);
    }
    /* SC after a successful SC (reservation consumed) must fail */
    {
        u64 a, b, v;
        cell[0] = 1;
        __asm__ volatile("lr.d %2, (%3)\n\tsc.d %0, %4, (%3)\n\tsc.d %1, %5, (%3)" : "=&r"(a), "=&r"(b), "=&r"(v) : "r"(cell), "r"((u64)2), "r"((u64)3) : "memory");
        printf("sc twice: %" PRIu64 " %" PRIu64 " mem %016" PRIx64 "\n", a, b, cell[0]);
    }
    /* SC to a different address than the LR must fail */
    {
        u64 a, v;
        cell[0] = 1; cell[2] = 5;
        __asm__ volatile("lr.d %1, (%2)\n\tsc.d %0, %4, (%3)" : "=&r"(a), "=&r"(v) : "r"(cell), "r"(cell + 2), "r"((u64)9) : "memory");
        printf("sc other addr: %" PRIu64 " mem %016" PRIx64 " %016" PRIx64 "\n", a, cell[0], cell[2]);
        __asm__ volatile("sc.d %0, %2, (%1)" : "=&r"(a) : "r"(cell), "r"((u64)9) : "memory"); /* clear any reservation */
    }
    /* a CAS loop built from LR/SC */
    {
        u64 sum = 0;
        cell[0] = 0;
        for (int i = 1; i <= 100; i++) {
            u64 old, tmp, fail;
            __asm__ volatile("1: lr.d.aq %0, (%3)\n\tadd %1, %0, %4\n\tsc.d.rl %2, %1, (%3)\n\tbnez %2, 1b"
                             : "=&r"(old), "=&r"(tmp), "=&r"(fail) : "r"(cell), "r"((u64)i) : "memory");
            sum += old;
        }
        printf("cas loop: mem %" PRIu64 " sum-of-old %" PRIu64 "\n", cell[0], sum);
    }
    /* lr.w sign-extends */
    {
        u64 v;
        cell[0] = 0x12345678deadbeefull;
        __asm__ volatile("lr.w %0, (%1)" : "=r"(v) : "r"(cell) : "memory");
        printf("lr.w sext %016" PRIx64 "\n", v);
        __asm__ volatile("sc.w %0, zero, (%1)" : "=r"(v) : "r"(cell) : "memory");
        printf("sc.w zero result %" PRIu64 " mem %016" PRIx64 "\n", v, cell[0]);
    }
    return 0;
}
