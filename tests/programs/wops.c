/* RV64I *W instructions: 32-bit results sign-extended to 64 bits. */
#include "support/common.h"

int main(void) {
    TEST_RR("addw");
    TEST_RR("subw");
    TEST_RR("sllw");
    TEST_RR("srlw");
    TEST_RR("sraw");
    TEST_RI("addiw", 0); TEST_RI("addiw", 1); TEST_RI("addiw", -1); TEST_RI("addiw", 2047); TEST_RI("addiw", -2048);
    TEST_RI("slliw", 0); TEST_RI("slliw", 1); TEST_RI("slliw", 16); TEST_RI("slliw", 31);
    TEST_RI("srliw", 0); TEST_RI("srliw", 1); TEST_RI("srliw", 16); TEST_RI("srliw", 31);
    TEST_RI("sraiw", 0); TEST_RI("sraiw", 1); TEST_RI("sraiw", 16); TEST_RI("sraiw", 31);
    /* sext.w is addiw rd, rs, 0 */
    TEST_R1("sext.w");
    return 0;
}
