/*
 * Runtime shared by the bare-metal privileged-architecture tests: reset
 * code, the HTIF console (tohost/fromhost, riscv-tests convention), the
 * M-mode trap handler with its print/exit services, and an optional
 * S-mode trap handler. See common.h for the conventions. Built with
 * -DMACHINE_VIRT (programs marked "@machine virt"), the console is the
 * virt machine's UART and exit goes through its test finisher instead.
 */
#include "common.h"

#define FRAME 272            /* 32 GPR slots + padding, 16-byte aligned */
#define F(reg) (8 * reg)     /* frame slot of x<reg> */

  .section .text.init, "ax", @progbits
  .globl _start
_start:
  /* Privileged spec §3.7.1: with no PMP entry programmed, QEMU denies S/U
   * accesses; entry 15 (lowest priority) grants RWX on everything, as
   * NAPOT with pmpaddr = all ones. Entries 0-14 stay free for the tests. */
  li t0, -1
  csrw pmpaddr15, t0
  li t0, (0x1f << 56)
  csrw pmpcfg2, t0
  la sp, m_stack_top
  la t0, m_trap_stack_top
  csrw mscratch, t0
  la t0, m_trap_entry
  csrw mtvec, t0
  li t0, MSTATUS_FS          /* FP on (Initial) so that any FP use is legal */
  csrs mstatus, t0
  call test_main
  SVC SVC_EXIT

  .text
/* ---------------------------------------------------------------- console
 * These run in M-mode only (the service handler, or a program's m_hook).
 * They clobber a0 and t0-t5 and use no stack. */
  .globl htif_putchar, htif_puts, htif_puthex

#ifdef MACHINE_VIRT
/* putchar(a0) on the virt machine: NS16550A UART0 at 0x1000_0000; wait for
 * LSR.THRE (bit 5), then write THR. */
htif_putchar:
  li t1, VIRT_UART0
1: lbu t2, 5(t1)
  andi t2, t2, 0x20
  beqz t2, 1b
  sb a0, 0(t1)
  ret
#else
/* putchar(a0): HTIF device 1 (console), command 1 (putchar); the host
 * answers in fromhost, which is then cleared. */
htif_putchar:
  li t0, 0x0101
  slli t0, t0, 48
  andi a0, a0, 0xff
  or t0, t0, a0
  la t1, tohost
1: ld t2, 0(t1)                  /* wait until the host took the previous command */
  bnez t2, 1b
  sd t0, 0(t1)
  la t1, fromhost
2: ld t2, 0(t1)
  beqz t2, 2b
  sd zero, 0(t1)
  ret
#endif

/* puts(a0) */
htif_puts:
  mv t3, ra
  mv t4, a0
1: lbu a0, 0(t4)
  beqz a0, 2f
  call htif_putchar
  addi t4, t4, 1
  j 1b
2: mv ra, t3
  ret

/* puthex(a0): "0x" then the value in lower-case hex without leading zeros. */
htif_puthex:
  mv t3, ra
  mv t4, a0
  li a0, '0'
  call htif_putchar
  li a0, 'x'
  call htif_putchar
  li t5, 60                      /* shift of the current nibble */
1: srl a0, t4, t5                /* skip leading zero nibbles (keep the last) */
  bnez a0, 2f
  beqz t5, 2f
  addi t5, t5, -4
  j 1b
2: srl a0, t4, t5
  andi a0, a0, 0xf
  li t0, 10
  blt a0, t0, 3f
  addi a0, a0, 'a' - '0' - 10
3: addi a0, a0, '0'
  call htif_putchar
  addi t5, t5, -4
  bgez t5, 2b
  mv ra, t3
  ret

#ifdef MACHINE_VIRT
/* exit(a0) on the virt machine: SiFive test finisher at 0x10_0000 --
 * 0x5555 = pass (status 0), (status << 16) | 0x3333 = fail. */
htif_exit:
  li t1, VIRT_TEST
  li t0, 0x5555
  beqz a0, 1f
  slli t0, a0, 16
  li t2, 0x3333
  or t0, t0, t2
1: sw t0, 0(t1)
  j 1b
#else
/* exit(a0): tohost = (a0 << 1) | 1; never returns. */
htif_exit:
  slli a0, a0, 1
  ori a0, a0, 1
  la t1, tohost
1: sd a0, 0(t1)
  j 1b
#endif

/* ---------------------------------------------------------------- M trap */
  .globl m_trap_entry
  .balign 4
m_trap_entry:
  csrrw sp, mscratch, sp
  addi sp, sp, -FRAME
  sd x1, F(1)(sp)
  sd x3, F(3)(sp)
  sd x4, F(4)(sp)
  sd x5, F(5)(sp)
  sd x6, F(6)(sp)
  sd x7, F(7)(sp)
  sd x8, F(8)(sp)
  sd x9, F(9)(sp)
  sd x10, F(10)(sp)
  sd x11, F(11)(sp)
  sd x12, F(12)(sp)
  sd x13, F(13)(sp)
  sd x14, F(14)(sp)
  sd x15, F(15)(sp)
  sd x16, F(16)(sp)
  sd x17, F(17)(sp)
  sd x18, F(18)(sp)
  sd x19, F(19)(sp)
  sd x20, F(20)(sp)
  sd x21, F(21)(sp)
  sd x22, F(22)(sp)
  sd x23, F(23)(sp)
  sd x24, F(24)(sp)
  sd x25, F(25)(sp)
  sd x26, F(26)(sp)
  sd x27, F(27)(sp)
  sd x28, F(28)(sp)
  sd x29, F(29)(sp)
  sd x30, F(30)(sp)
  sd x31, F(31)(sp)
  csrr t0, mscratch
  sd t0, F(2)(sp)
  csrr s0, mcause
  csrr s1, mtval
  csrr s2, mepc
  csrr s3, mstatus
  mv s4, sp                      /* frame */

  /* the program's hook sees every trap first: a0 = mcause, a1 = frame;
   * a non-zero return means "handled": resume at mepc as the hook left it */
  LOADG t0, m_hook
  beqz t0, 1f
  mv a0, s0
  mv a1, s4
  jalr t0
  bnez a0, m_trap_return
1:
  bltz s0, m_unexpected_irq

  /* service ecalls (causes 8, 9, 11 with a7 in the service range); an
   * illegal TO_M_INSN with a7 = SVC_TO_M also counts (TO_M_ILLEGAL, for
   * code whose ecalls are delegated to S) */
  li t0, CAUSE_ILLEGAL
  bne s0, t0, 1f
  li t0, TO_M_INSN             /* mtval = the instruction bits */
  bne s1, t0, m_record
  ld t1, F(17)(s4)
  li t0, SVC_TO_M
  bne t1, t0, m_record
  ld a0, F(10)(s4)
  j m_svc_to_m
1: li t0, CAUSE_USER_ECALL
  beq s0, t0, 2f
  li t0, CAUSE_SUPERVISOR_ECALL
  beq s0, t0, 2f
  li t0, CAUSE_MACHINE_ECALL
  bne s0, t0, m_record
2: ld t1, F(17)(s4)
  li t0, SVC_BASE + 1
  blt t1, t0, m_record
  li t0, SVC_LAST
  bgt t1, t0, m_record
  ld a0, F(10)(s4)
  ld a1, F(11)(s4)
  addi t0, s2, 4
  csrw mepc, t0
  li t0, SVC_PUTS
  bne t1, t0, 3f
  call htif_puts
  j m_trap_return
3: li t0, SVC_PUTHEX
  bne t1, t0, 3f
  call htif_puthex
  j m_trap_return
3: li t0, SVC_KV
  bne t1, t0, 3f
  mv s5, a1
  call htif_puts
  mv a0, s5
  call htif_puthex
  li a0, '\n'
  call htif_putchar
  j m_trap_return
3: li t0, SVC_PUTCHAR
  bne t1, t0, 3f
  call htif_putchar
  j m_trap_return
3: li t0, SVC_EXIT
  bne t1, t0, 3f
  j htif_exit
3: li t0, SVC_FAIL
  bne t1, t0, 3f
  mv s5, a0
  la a0, str_fail
  call htif_puts
  mv a0, s5
  call htif_puthex
  li a0, '\n'
  call htif_putchar
  li a0, 1
  j htif_exit
3: /* SVC_TO_M */
m_svc_to_m:
  csrw mepc, a0
  li t0, MSTATUS_MPP
  csrs mstatus, t0
  j m_trap_return

m_record:
  /* an ordinary exception: record it, print it, resume after it */
  STOREG s0, m_last_cause, t0
  STOREG s1, m_last_tval, t0
  STOREG s2, m_last_epc, t0
  STOREG s3, m_last_mstatus, t0
  LOADG t1, m_trap_count
  addi t1, t1, 1
  STOREG t1, m_trap_count, t0
  LOADG t1, m_quiet
  bnez t1, m_resume_point
  la a0, str_mtrap
  call htif_puts
  srli a0, s3, 11
  andi a0, a0, 3
  la t1, mode_letters
  add t1, t1, a0
  lbu a0, 0(t1)
  call htif_putchar
  la a0, str_cause
  call htif_puts
  mv a0, s0
  call htif_puthex
  la a0, str_tval
  call htif_puts
  mv a0, s1
  call htif_puthex
  la a0, str_epc
  call htif_puts
  mv a0, s2
  call htif_puthex
  li a0, '\n'
  call htif_putchar
m_resume_point:
  la t1, m_resume
  ld t0, 0(t1)
  beqz t0, 4f
  sd zero, 0(t1)
  csrw mepc, t0
  j m_trap_return
4: li t0, CAUSE_MISALIGNED_FETCH
  beq s0, t0, 5f
  li t0, CAUSE_FETCH_ACCESS
  beq s0, t0, 5f
  li t0, CAUSE_FETCH_PAGE_FAULT
  beq s0, t0, 5f
  addi t0, s2, 4
  csrw mepc, t0
  j m_trap_return
5: ld t0, F(1)(s4)               /* fetch faults: back to the caller's ra */
  csrw mepc, t0
  j m_trap_return

m_unexpected_irq:
  la a0, str_irq
  call htif_puts
  mv a0, s0
  call htif_puthex
  li a0, '\n'
  call htif_putchar
  li a0, 2
  j htif_exit

  .globl m_trap_return
m_trap_return:
  mv sp, s4
  ld x1, F(1)(sp)
  ld x3, F(3)(sp)
  ld x4, F(4)(sp)
  ld x5, F(5)(sp)
  ld x6, F(6)(sp)
  ld x7, F(7)(sp)
  ld x8, F(8)(sp)
  ld x9, F(9)(sp)
  ld x10, F(10)(sp)
  ld x11, F(11)(sp)
  ld x12, F(12)(sp)
  ld x13, F(13)(sp)
  ld x14, F(14)(sp)
  ld x15, F(15)(sp)
  ld x16, F(16)(sp)
  ld x17, F(17)(sp)
  ld x18, F(18)(sp)
  ld x19, F(19)(sp)
  ld x20, F(20)(sp)
  ld x21, F(21)(sp)
  ld x22, F(22)(sp)
  ld x23, F(23)(sp)
  ld x24, F(24)(sp)
  ld x25, F(25)(sp)
  ld x26, F(26)(sp)
  ld x27, F(27)(sp)
  ld x28, F(28)(sp)
  ld x29, F(29)(sp)
  ld x30, F(30)(sp)
  ld x31, F(31)(sp)
  addi sp, sp, FRAME
  csrrw sp, mscratch, sp
  mret

/* ---------------------------------------------------------------- S trap
 * s_trap_setup (call from M-mode): stvec = s_trap_entry, sscratch = the S
 * trap stack. s_trap_entry runs in S-mode; it forwards service ecalls
 * delegated from U-mode to M-mode, passes interrupts to s_hook, and
 * records, prints and resumes other exceptions like the M handler. */
  .globl s_trap_setup
s_trap_setup:
  la t0, s_trap_entry
  csrw stvec, t0
  la t0, s_trap_stack_top
  csrw sscratch, t0
  ret

  .globl s_trap_entry
  .balign 4
s_trap_entry:
  csrrw sp, sscratch, sp
  addi sp, sp, -FRAME
  sd x1, F(1)(sp)
  sd x3, F(3)(sp)
  sd x4, F(4)(sp)
  sd x5, F(5)(sp)
  sd x6, F(6)(sp)
  sd x7, F(7)(sp)
  sd x8, F(8)(sp)
  sd x9, F(9)(sp)
  sd x10, F(10)(sp)
  sd x11, F(11)(sp)
  sd x12, F(12)(sp)
  sd x13, F(13)(sp)
  sd x14, F(14)(sp)
  sd x15, F(15)(sp)
  sd x16, F(16)(sp)
  sd x17, F(17)(sp)
  sd x18, F(18)(sp)
  sd x19, F(19)(sp)
  sd x20, F(20)(sp)
  sd x21, F(21)(sp)
  sd x22, F(22)(sp)
  sd x23, F(23)(sp)
  sd x24, F(24)(sp)
  sd x25, F(25)(sp)
  sd x26, F(26)(sp)
  sd x27, F(27)(sp)
  sd x28, F(28)(sp)
  sd x29, F(29)(sp)
  sd x30, F(30)(sp)
  sd x31, F(31)(sp)
  csrr t0, sscratch
  sd t0, F(2)(sp)
  csrr s0, scause
  csrr s1, stval
  csrr s2, sepc
  csrr s3, sstatus
  mv s4, sp

  LOADG t0, s_hook
  beqz t0, 1f
  mv a0, s0
  mv a1, s4
  jalr t0
  bnez a0, s_trap_return
1:
  bltz s0, s_unexpected_irq
  /* forward U-mode service ecalls */
  li t0, CAUSE_USER_ECALL
  bne s0, t0, s_record
  ld t1, F(17)(s4)
  li t0, SVC_BASE + 1
  blt t1, t0, s_record
  li t0, SVC_LAST
  bgt t1, t0, s_record
  addi t0, s2, 4
  csrw sepc, t0
  ld a0, F(10)(s4)
  ld a1, F(11)(s4)
  ld a7, F(17)(s4)
  ecall
  j s_trap_return

s_record:
  STOREG s0, s_last_cause, t0
  STOREG s1, s_last_tval, t0
  STOREG s2, s_last_epc, t0
  STOREG s3, s_last_sstatus, t0
  LOADG t1, s_trap_count
  addi t1, t1, 1
  STOREG t1, s_trap_count, t0
  LOADG t1, s_quiet
  bnez t1, s_resume_point
  la a0, str_strap
  SVC SVC_PUTS
  srli a0, s3, 8
  andi a0, a0, 1
  la t1, mode_letters
  add t1, t1, a0
  lbu a0, 0(t1)
  SVC SVC_PUTCHAR
  la a0, str_cause
  SVC SVC_PUTS
  mv a0, s0
  SVC SVC_PUTHEX
  la a0, str_tval
  SVC SVC_PUTS
  mv a0, s1
  SVC SVC_PUTHEX
  la a0, str_epc
  SVC SVC_PUTS
  mv a0, s2
  SVC SVC_PUTHEX
  li a0, '\n'
  SVC SVC_PUTCHAR
s_resume_point:
  la t1, s_resume
  ld t0, 0(t1)
  beqz t0, 4f
  sd zero, 0(t1)
  csrw sepc, t0
  j s_trap_return
4: li t0, CAUSE_MISALIGNED_FETCH
  beq s0, t0, 5f
  li t0, CAUSE_FETCH_ACCESS
  beq s0, t0, 5f
  li t0, CAUSE_FETCH_PAGE_FAULT
  beq s0, t0, 5f
  addi t0, s2, 4
  csrw sepc, t0
  j s_trap_return
5: ld t0, F(1)(s4)
  csrw sepc, t0
  j s_trap_return

s_unexpected_irq:
  la a0, str_sirq
  SVC SVC_PUTS
  mv a0, s0
  SVC SVC_PUTHEX
  li a0, 3
  SVC SVC_EXIT

  .globl s_trap_return
s_trap_return:
  mv sp, s4
  ld x1, F(1)(sp)
  ld x3, F(3)(sp)
  ld x4, F(4)(sp)
  ld x5, F(5)(sp)
  ld x6, F(6)(sp)
  ld x7, F(7)(sp)
  ld x8, F(8)(sp)
  ld x9, F(9)(sp)
  ld x10, F(10)(sp)
  ld x11, F(11)(sp)
  ld x12, F(12)(sp)
  ld x13, F(13)(sp)
  ld x14, F(14)(sp)
  ld x15, F(15)(sp)
  ld x16, F(16)(sp)
  ld x17, F(17)(sp)
  ld x18, F(18)(sp)
  ld x19, F(19)(sp)
  ld x20, F(20)(sp)
  ld x21, F(21)(sp)
  ld x22, F(22)(sp)
  ld x23, F(23)(sp)
  ld x24, F(24)(sp)
  ld x25, F(25)(sp)
  ld x26, F(26)(sp)
  ld x27, F(27)(sp)
  ld x28, F(28)(sp)
  ld x29, F(29)(sp)
  ld x30, F(30)(sp)
  ld x31, F(31)(sp)
  addi sp, sp, FRAME
  csrrw sp, sscratch, sp
  sret

/* ---------------------------------------------------------------- data */
  .section .rodata.str, "aMS", @progbits, 1
str_mtrap: .asciz "M-trap from="
str_strap: .asciz "S-trap from="
str_cause: .asciz " cause="
str_tval:  .asciz " tval="
str_epc:   .asciz " epc="
str_fail:  .asciz "FAIL line "
  .globl str_check_failed
str_check_failed: .asciz "FAIL line="
str_irq:   .asciz "unexpected M interrupt, cause="
str_sirq:  .asciz "unexpected S interrupt, cause="
mode_letters: .ascii "USHM"

  .data
  .balign 8
  .globl m_hook, s_hook, m_resume, s_resume, m_trap_count, s_trap_count, m_quiet, s_quiet
  .globl m_last_cause, m_last_tval, m_last_epc, m_last_mstatus
  .globl s_last_cause, s_last_tval, s_last_epc, s_last_sstatus
m_hook:         .dword 0   /* function(a0 = mcause, a1 = frame) -> a0 != 0 if handled */
s_hook:         .dword 0
m_resume:       .dword 0   /* one-shot resume address for the next M-mode exception */
s_resume:       .dword 0
m_trap_count:   .dword 0
m_quiet:        .dword 0   /* non-zero: M-mode exceptions are recorded but not printed */
s_trap_count:   .dword 0
s_quiet:        .dword 0   /* non-zero: S-mode exceptions are recorded but not printed */
m_last_cause:   .dword -1
m_last_tval:    .dword 0
m_last_epc:     .dword 0
m_last_mstatus: .dword 0
s_last_cause:   .dword -1
s_last_tval:    .dword 0
s_last_epc:     .dword 0
s_last_sstatus: .dword 0

/* HTIF registers: found by QEMU and tsvm through these symbols (.size needed by QEMU). */
  .section .tohost, "aw", @progbits
  .balign 64
  .globl tohost
tohost: .dword 0
  .size tohost, 8
  .balign 64
  .globl fromhost
fromhost: .dword 0
  .size fromhost, 8

/* stacks */
  .section .pages, "aw", @nobits
  .balign 4096
  .globl m_stack_top, m_trap_stack_top, s_trap_stack_top
  .space 8192
m_stack_top:
  .space 4096
m_trap_stack_top:
  .space 4096
s_trap_stack_top:
