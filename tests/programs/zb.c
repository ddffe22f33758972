/* Zba, Zbb and Zbs: every instruction over boundary values. */
#include "support/common.h"

int main(void) {
    /* Zba */
    TEST_RR("add.uw"); TEST_RR("sh1add"); TEST_RR("sh2add"); TEST_RR("sh3add");
    TEST_RR("sh1add.uw"); TEST_RR("sh2add.uw"); TEST_RR("sh3add.uw");
    TEST_RI("slli.uw", 0); TEST_RI("slli.uw", 1); TEST_RI("slli.uw", 31); TEST_RI("slli.uw", 32); TEST_RI("slli.uw", 63);
    TEST_R1("zext.w");
    /* Zbb */
    TEST_RR("andn"); TEST_RR("orn"); TEST_RR("xnor");
    TEST_R1("clz"); TEST_R1("clzw"); TEST_R1("ctz"); TEST_R1("ctzw"); TEST_R1("cpop"); TEST_R1("cpopw");
    TEST_RR("max"); TEST_RR("maxu"); TEST_RR("min"); TEST_RR("minu");
    TEST_R1("sext.b"); TEST_R1("sext.h"); TEST_R1("zext.h");
    TEST_RR("rol"); TEST_RR("rolw"); TEST_RR("ror"); TEST_RR("rorw");
    TEST_RI("rori", 0); TEST_RI("rori", 1); TEST_RI("rori", 31); TEST_RI("rori", 32); TEST_RI("rori", 63);
    TEST_RI("roriw", 0); TEST_RI("roriw", 1); TEST_RI("roriw", 16); TEST_RI("roriw", 31);
    TEST_R1("orc.b"); TEST_R1("rev8");
    /* Zbs */
    TEST_RR("bclr"); TEST_RR("bext"); TEST_RR("binv"); TEST_RR("bset");
    TEST_RI("bclri", 0); TEST_RI("bclri", 31); TEST_RI("bclri", 63);
    TEST_RI("bexti", 0); TEST_RI("bexti", 31); TEST_RI("bexti", 63);
    TEST_RI("binvi", 0); TEST_RI("binvi", 32); TEST_RI("binvi", 63);
    TEST_RI("bseti", 0); TEST_RI("bseti", 31); TEST_RI("bseti", 63);
    return 0;
}
