/*
 * misaligned: misaligned data accesses and jump targets (unprivileged spec
 * §2.6, A extension §8.2-8.4; privileged spec v1.12 §3.1.15, §3.6.3.3).
 * QEMU 7.2 (TCG) performs misaligned integer and FP loads/stores in
 * hardware without trapping -- which the spec allows -- so tsvm must too;
 * misaligned LR and AMOs raise address-misaligned exceptions. With C, jump
 * targets need only 2-byte alignment.
 */
#include "common.h"

#define TV 0x40000000

/* Prints "label: cause=... tval-buf=..." for the last M trap ("label: no
 * trap" if none was recorded) and keeps the record for CHECK_MTRAP; tval is
 * printed relative to s0. */
.macro PRINT_MTRAP label
  PUTS "\label: "
  LOADG t5, m_last_cause
  bltz t5, .Lnotrap\@
  KV "cause", t5
  LOADG t5, m_last_tval
  sub t5, t5, s0
  KV "  tval-buf", t5
  j .Ldone\@
.Lnotrap\@:
  PUTS "no trap\n"
.Ldone\@:
.endm

/* A misaligned AMO raises store/AMO address-misaligned (6); QEMU 7.2
 * reports load address-misaligned (4), which the test corrects. A
 * misaligned SC raises it too (A §8.2); QEMU 7.2 just fails the SC when it
 * holds no reservation for that address (also corrected by the test). */
.macro check_amo_trap line
  LOADG t5, m_last_cause
  li t6, CAUSE_MISALIGNED_LOAD
  beq t5, t6, .Lamo_ok\@
  check_eq t5, CAUSE_MISALIGNED_STORE, \line
.Lamo_ok\@:
  li t5, -1
  STOREG t5, m_last_cause, t6
.endm
#define CHECK_AMO_TRAP check_amo_trap __LINE__

  .text
  .globl test_main
test_main:
  PUTS "== M-mode\n"
  call access_all
  PUTS "== S-mode\n"
  MRET_TO 1, s_access
s_access:
  call access_all
  TO_M m_amo
m_amo:

  /* A §8.2/§8.4: LR and AMOs need natural alignment (no Zam): misaligned
   * ones raise load (4) or store/AMO (6) address-misaligned exceptions,
   * with mtval = the address, and leave memory alone. */
  PUTS "== LR/SC/AMO\n"
  la s0, buf_amo
  li t0, 0x1122334455667788
  sd t0, 0(s0)
  sd t0, 8(s0)
  li t0, 1
  STOREG t0, m_quiet, t1
  li t3, 5
  addi t1, s0, 2
  lr.w t2, (t1)
  PRINT_MTRAP "lr.w +2"
  CHECK_MTRAP(CAUSE_MISALIGNED_LOAD)
  addi t1, s0, 4
  lr.d t2, (t1)
  PRINT_MTRAP "lr.d +4"
  CHECK_MTRAP(CAUSE_MISALIGNED_LOAD)
  addi t1, s0, 1
  amoadd.w t2, t3, (t1)
  PRINT_MTRAP "amoadd.w +1"
  CHECK_AMO_TRAP
  addi t1, s0, 4
  amoswap.d t2, t3, (t1)
  PRINT_MTRAP "amoswap.d +4"
  CHECK_AMO_TRAP
  addi t1, s0, 6
  amomaxu.w t2, t3, (t1)
  PRINT_MTRAP "amomaxu.w +6"
  CHECK_AMO_TRAP
  li t2, 7
  addi t1, s0, 2
  sc.w t2, t3, (t1)            /* no reservation */
  PRINT_MTRAP "sc.w +2"
  KV "sc.w +2 rd", t2
  li t5, -1
  STOREG t5, m_last_cause, t6
  lr.w t4, (s0)                /* with a reservation on the aligned word */
  li t2, 7
  addi t1, s0, 2
  sc.w t2, t3, (t1)
  PRINT_MTRAP "sc.w +2 after lr.w"
  KV "sc.w +2 after lr.w rd", t2
  li t5, -1
  STOREG t5, m_last_cause, t6
  STOREG zero, m_quiet, t1
  ld t0, 0(s0)
  KV "buf_amo[0]", t0
  ld t0, 8(s0)
  KV "buf_amo[1]", t0
  addi t1, s0, 8               /* aligned: fine */
  amoadd.w t2, t3, (t1)
  KV "amoadd.w aligned old", t2

  /* §2.5 with C (§16.1): IALIGN = 16, so 2-byte aligned targets do not
   * trap; jalr clears bit 0 of the target. */
  PUTS "== jump targets\n"
  li s1, 0
  la t0, target2
  jalr t0
  KV "jalr to 4n+2", s1
  CHECK_EQ(s1, 2)
  la t0, target2
  addi t0, t0, 1               /* odd: bit 0 ignored */
  jalr t0
  CHECK_EQ(s1, 4)
  la t0, target2
  csrw mepc, t0                /* mret to 4n+2, staying in M */
  li t0, MSTATUS_MPP_M
  csrs mstatus, t0
  la ra, 1f
  mret
1: CHECK_EQ(s1, 6)

  /* §4.3.2 and §3.1.16: a misaligned access crossing into a page that
   * faults; the faulting page's address is reported. Sv39 with the image
   * identity-mapped; at TV: page 0 RW (A = D = 0), page 1 invalid, page 2 R,
   * page 3 RW. */
  PUTS "== page-crossing accesses (Sv39)\n"
  la t0, pt_l2
  la t1, pages_end
1: sd zero, 0(t0)
  addi t0, t0, 8
  bltu t0, t1, 1b
  la t0, pt_l2
  li t1, (0x80000000 >> 12 << 10) | PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D
  sd t1, 16(t0)                /* [2]: identity gigapage */
  la t1, pt_l1
  srli t1, t1, 2
  ori t1, t1, PTE_V
  sd t1, 8(t0)                 /* [1]: TV */
  la t0, pt_l1
  la t1, pt_l0
  srli t1, t1, 2
  ori t1, t1, PTE_V
  sd t1, 0(t0)
  la t0, pt_l0
  la t1, pg0
  srli t1, t1, 2
  ori t1, t1, PTE_V | PTE_R | PTE_W
  sd t1, 0(t0)
  la t1, pg2
  srli t1, t1, 2
  ori t1, t1, PTE_V | PTE_R | PTE_A | PTE_D
  sd t1, 16(t0)
  la t1, pg3
  srli t1, t1, 2
  ori t1, t1, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D
  sd t1, 24(t0)
  la t0, pg2 + 4088
  li t1, 0x0102030405060708
  sd t1, 0(t0)
  la t0, pg3
  li t1, 0x1112131415161718
  sd t1, 0(t0)
  li t0, (1 << CAUSE_LOAD_PAGE_FAULT) | (1 << CAUSE_STORE_PAGE_FAULT)
  csrw medeleg, t0
  call s_trap_setup
  la t0, pt_l2
  srli t0, t0, 12
  li t1, 8 << 60
  or t0, t0, t1
  csrw satp, t0
  sfence.vma
  MRET_TO 1, s_cross
s_cross:
  li t0, TV + 0x2ffc           /* R page -> RW page: fine */
  ld s0, 0(t0)
  KV "ld across pages 2|3", s0
  li t0, TV + 0x2ffe
  lw s0, 0(t0)
  KV "lw across pages 2|3", s0
  li t0, TV + 0xffc            /* RW page -> invalid page */
  ld s0, 0(t0)
  CHECK_STRAP(CAUSE_LOAD_PAGE_FAULT)
  li t0, TV + 0xffa
  sd zero, 0(t0)
  CHECK_STRAP(CAUSE_STORE_PAGE_FAULT)
  li t0, TV + 0x2ffc           /* store starting in the R page */
  sd zero, 0(t0)
  CHECK_STRAP(CAUSE_STORE_PAGE_FAULT)
  li t0, TV + 0xff8            /* aligned: page 0 itself is fine */
  ld s0, 0(t0)
  TO_M m_cross_done
m_cross_done:
  csrw satp, zero
  sfence.vma
  la t0, pg3
  ld t1, 0(t0)
  KV "pg3 after the faulting store", t1
  la t0, pg2 + 4088
  ld t1, 0(t0)
  KV "pg2 end", t1
  PUTS "== done\n"
  li a0, 0
  SVC SVC_EXIT

/* Misaligned loads and stores of every width from the current mode. */
access_all:
  mv s11, ra
  la s0, buf
  li t0, 0x8f8e8d8c8b8a8988    /* bytes 0x88, 0x89, ... */
  li t1, 0x0808080808080808
  sd t0, 0(s0)
  add t0, t0, t1
  sd t0, 8(s0)
  add t0, t0, t1
  sd t0, 16(s0)
  lh t0, 1(s0)
  KV "lh  +1", t0
  lhu t0, 3(s0)
  KV "lhu +3", t0
  lw t0, 1(s0)
  KV "lw  +1", t0
  lw t0, 2(s0)
  KV "lw  +2", t0
  lwu t0, 7(s0)
  KV "lwu +7", t0
  ld t0, 1(s0)
  KV "ld  +1", t0
  ld t0, 4(s0)
  KV "ld  +4", t0
  ld t0, 7(s0)
  KV "ld  +7", t0
  fld f1, 3(s0)
  fmv.x.d t0, f1
  KV "fld +3", t0
  flw f2, 5(s0)
  fmv.x.w t0, f2
  KV "flw +5", t0
  .option push
  .option rvc
  addi a5, s0, 1
  c.lw a4, 0(a5)               /* compressed load, misaligned */
  c.ld a3, 8(a5)
  .option pop
  KV "c.lw +1", a4
  KV "c.ld +9", a3
  li t0, 0x0123456789abcdef
  sh t0, 17(s0)
  sw t0, 19(s0)
  sd t0, 9(s0)
  fsd f1, 1(s0)
  fsw f2, 21(s0)
  ld t0, 0(s0)
  KV "buf[0]", t0
  ld t0, 8(s0)
  KV "buf[1]", t0
  ld t0, 16(s0)
  KV "buf[2]", t0
  ld t0, 24(s0)
  KV "buf[3]", t0
  LOADG t0, m_trap_count
  CHECK_EQ(t0, 0)
  mv ra, s11
  ret

/* target2 sits at 4n + 2; s1 += 2 there. */
  .balign 4
  .option push
  .option rvc
  c.nop
target2:
  addi s1, s1, 2               /* a 4-byte instruction at 4n + 2 */
  ret
  .option pop
  .balign 4

  .data
  .balign 8
buf:     .space 32
buf_amo: .space 16

  .section .pages, "aw", @nobits
  .balign 4096
pt_l2: .space 4096
pt_l1: .space 4096
pt_l0: .space 4096
pg0:   .space 4096
pg1:   .space 4096
pg2:   .space 4096
pg3:   .space 4096
pages_end:
