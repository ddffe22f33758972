/* RV64I integer ALU: register-register, register-immediate, shifts,
 * compares, lui/auipc. */
#include "support/common.h"

int main(void) {
    TEST_RR("add");
    TEST_RR("sub");
    TEST_RR("sll");
    TEST_RR("srl");
    TEST_RR("sra");
    TEST_RR("slt");
    TEST_RR("sltu");
    TEST_RR("xor");
    TEST_RR("or");
    TEST_RR("and");

    TEST_RI("addi", 0); TEST_RI("addi", 1); TEST_RI("addi", -1);
    TEST_RI("addi", 2047); TEST_RI("addi", -2048);
    TEST_RI("slti", 0); TEST_RI("slti", -1); TEST_RI("slti", 2047); TEST_RI("slti", -2048);
    TEST_RI("sltiu", 0); TEST_RI("sltiu", 1); TEST_RI("sltiu", -1); TEST_RI("sltiu", 2047);
    TEST_RI("xori", -1); TEST_RI("xori", 0x555); TEST_RI("xori", -2048);
    TEST_RI("ori", -1); TEST_RI("ori", 0x7ff); TEST_RI("ori", -2048);
    TEST_RI("andi", -1); TEST_RI("andi", 0x7ff); TEST_RI("andi", -2048); TEST_RI("andi", 0);
    TEST_RI("slli", 0); TEST_RI("slli", 1); TEST_RI("slli", 31); TEST_RI("slli", 32); TEST_RI("slli", 63);
    TEST_RI("srli", 0); TEST_RI("srli", 1); TEST_RI("srli", 31); TEST_RI("srli", 32); TEST_RI("srli", 63);
    TEST_RI("srai", 0); TEST_RI("srai", 1); TEST_RI("srai", 31); TEST_RI("srai", 32); TEST_RI("srai", 63);

    u64 r;
#define LUI(imm) __asm__ volatile("lui %0, " #imm : "=r"(r)); printf("lui %s -> %016" PRIx64 "\n", #imm, r)
    LUI(0); LUI(1); LUI(0x7ffff); LUI(0x80000); LUI(0xfffff); LUI(0x12345);
#define AUIPC(imm) __asm__ volatile(".option push\n.option norvc\nauipc %0, " #imm "\nauipc t0, 0\nsub %0, t0, %0\n.option pop" : "=r"(r) : : "t0"); \
    printf("auipc %s -> delta %016" PRIx64 "\n", #imm, r)
    AUIPC(0); AUIPC(1); AUIPC(0x7ffff); AUIPC(0x80000); AUIPC(0xfffff);
    /* x0 as destination must stay zero */
    __asm__ volatile("addi x0, x0, 5\n\tmv %0, x0" : "=r"(r));
    printf("x0 after write -> %016" PRIx64 "\n", r);
    return 0;
}
