/* M extension: multiply high parts, division by zero, signed overflow,
 * and the W forms. */
#include "support/common.h"

int main(void) {
    TEST_RR("mul");
    TEST_RR("mulh");
    TEST_RR("mulhsu");
    TEST_RR("mulhu");
    TEST_RR("div");
    TEST_RR("divu");
    TEST_RR("rem");
    TEST_RR("remu");
    TEST_RR("mulw");
    TEST_RR("divw");
    TEST_RR("divuw");
    TEST_RR("remw");
    TEST_RR("remuw");
    /* the rd == rs1 == rs2 aliasing case */
    for (int i = 0; i < NVALS; i++) {
        u64 x = VALS[i];
        __asm__ volatile("mulh %0, %0, %0" : "+r"(x));
        printf("mulh-alias %016" PRIx64 " -> %016" PRIx64 "\n", VALS[i], x);
    }
    return 0;
}
