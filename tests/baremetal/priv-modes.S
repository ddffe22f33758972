/*
 * priv-modes: privilege transitions and trap CSRs (privileged spec v1.12,
 * chapters 3 and 4). M -> S -> U via mret/sret, ecall causes, medeleg
 * delegation, the xPP/xPIE/xIE stacks, privileged instructions and M-level
 * CSRs from lower modes, tval for illegal instructions, the S trap CSRs,
 * counter-enable gating, misa. Prints every trap and the CSR bits it checks.
 */
#include "common.h"

#define MST_STACK (MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP)
#define SST_STACK (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP)

  .text
  .globl test_main
test_main:
  /* §3.1.1: misa -- MXL = 2 (64-bit) and the extensions A C D F I M S U. */
  PUTS "== misa\n"
  csrr s0, misa
  KV misa, s0
  srli t0, s0, 62
  CHECK_EQ(t0, 2)
  li t1, 0x14112d
  and t0, s0, t1
  CHECK_EQR(t0, t1)

  /* §3.3.1: ecall from M-mode -> cause 11, mtval 0. */
  PUTS "== ecall from M\n"
  li a7, 0
  ecall
  CHECK_MTRAP(CAUSE_MACHINE_ECALL)
  LOADG t0, m_last_tval
  CHECK_EQ(t0, 0)

  /* §3.1.6.1, §3.3.2: mret sets MIE = MPIE, MPIE = 1, MPP = U (least
   * privileged supported mode); y = M keeps MPRV. */
  PUTS "== mret M->M\n"
  li t0, MST_STACK
  csrc mstatus, t0
  li t0, MSTATUS_MPP_M
  csrs mstatus, t0
  la t0, 1f
  csrw mepc, t0
  mret
1: csrr s0, mstatus
  li t0, MST_STACK
  and s0, s0, t0
  KV "mstatus.MIE|MPIE|MPP", s0
  CHECK_EQ(s0, MSTATUS_MPIE)
  li t0, MSTATUS_MPP_M | MSTATUS_MPIE
  csrs mstatus, t0
  la t0, 1f
  csrw mepc, t0
  mret
1: csrr s0, mstatus
  li t0, MST_STACK
  and s0, s0, t0
  KV "mstatus.MIE|MPIE|MPP", s0
  CHECK_EQ(s0, MSTATUS_MIE | MSTATUS_MPIE)
  li t0, MSTATUS_MIE
  csrc mstatus, t0

  /* §3.1.6.1: a trap from S into M sets MPP = S, MPIE = MIE, MIE = 0. */
  PUTS "== ecall from S\n"
  li t0, MST_STACK
  csrc mstatus, t0
  li t0, MSTATUS_MPP_S | MSTATUS_MPIE
  csrs mstatus, t0
  la t0, s_ecall
  csrw mepc, t0
  mret
s_ecall:
  li a7, 0
  ecall
  CHECK_MTRAP(CAUSE_SUPERVISOR_ECALL)
  LOADG s0, m_last_mstatus
  li t0, MST_STACK
  and s0, s0, t0
  KV "mstatus.MIE|MPIE|MPP at trap", s0
  CHECK_EQ(s0, MSTATUS_MPP_S | MSTATUS_MPIE)
  TO_M m_after_s_ecall
m_after_s_ecall:
  li t0, MSTATUS_MIE
  csrc mstatus, t0

  /* §3.3.1: ecall from U-mode -> cause 8, MPP = U. */
  PUTS "== ecall from U\n"
  MRET_TO 0, u_ecall
u_ecall:
  li a7, 0
  ecall
  CHECK_MTRAP(CAUSE_USER_ECALL)
  LOADG s0, m_last_mstatus
  li t0, MSTATUS_MPP
  and s0, s0, t0
  CHECK_EQ(s0, 0)
  TO_M m_after_u_ecall
m_after_u_ecall:

  /* §3.3.2, §3.1.6.5, §2.1: from S-mode, mret, M-level CSRs and writes to
   * read-only CSRs are illegal instructions; mtval = the instruction (§3.1.16). */
  PUTS "== privileged instructions from S\n"
  MRET_TO 1, s_illegal
s_illegal:
  mret
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrr t0, mstatus
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrw mscratch, t0
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrr t0, mhartid
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrw sstatus, zero           /* fine: S-level */
  csrw cycle, zero             /* read-only CSR (csr[11:10] = 3) */
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrr t0, 0x5c0               /* not implemented */
  CHECK_MTRAP(CAUSE_ILLEGAL)
  la t0, 1f                    /* sret in S with TSR = 0 is legal */
  csrw sepc, t0
  li t0, MSTATUS_SPP
  csrs sstatus, t0
  sret
1: TO_M m_after_s_illegal
m_after_s_illegal:

  /* §3.1.6.5: TSR makes sret illegal in S; TVM makes satp and sfence.vma
   * illegal in S; TW makes wfi illegal in S. */
  PUTS "== TSR/TVM/TW\n"
  li t0, MSTATUS_TSR | MSTATUS_TVM | MSTATUS_TW
  csrs mstatus, t0
  MRET_TO 1, s_tsr
s_tsr:
  sret
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrr t0, satp
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrw satp, zero
  CHECK_MTRAP(CAUSE_ILLEGAL)
  sfence.vma
  CHECK_MTRAP(CAUSE_ILLEGAL)
  wfi
  CHECK_MTRAP(CAUSE_ILLEGAL)
  TO_M m_after_tsr
m_after_tsr:
  li t0, MSTATUS_TSR | MSTATUS_TVM | MSTATUS_TW
  csrc mstatus, t0

  /* §3.3.2, §3.3.3: from U-mode, sret/mret/wfi/sfence.vma and S-level CSRs are illegal. */
  PUTS "== privileged instructions from U\n"
  MRET_TO 0, u_illegal
u_illegal:
  sret
  CHECK_MTRAP(CAUSE_ILLEGAL)
  mret
  CHECK_MTRAP(CAUSE_ILLEGAL)
  wfi
  CHECK_MTRAP(CAUSE_ILLEGAL)
  sfence.vma
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrr t0, sstatus
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrw sscratch, t0
  CHECK_MTRAP(CAUSE_ILLEGAL)
  TO_M m_after_u_illegal
m_after_u_illegal:

  /* §3.1.16: mtval holds the faulting instruction's bits for illegal
   * instructions (a 16-bit one included), FP use with mstatus.FS = Off
   * (§3.1.6.6) and ebreak (mtval for breakpoints: printed, QEMU writes 0). */
  PUTS "== illegal instruction mtval in M\n"
  .word 0x1234500b             /* custom-0 opcode: not implemented */
  CHECK_MTRAP(CAUSE_ILLEGAL)
  LOADG t0, m_last_tval
  CHECK_EQ(t0, 0x1234500b)
  .2byte 0x0000                /* the defined illegal 16-bit instruction */
  .2byte 0x0001                /* c.nop, skipped by the epc + 4 resume */
  CHECK_MTRAP(CAUSE_ILLEGAL)
  li t0, MSTATUS_FS
  csrc mstatus, t0
  fadd.d f0, f1, f2
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrr t0, fcsr
  CHECK_MTRAP(CAUSE_ILLEGAL)
  li t0, MSTATUS_FS
  csrs mstatus, t0
  fadd.d f0, f1, f2
  ebreak
  CHECK_MTRAP(CAUSE_BREAKPOINT)

  /* §2.1 (Zicsr §9.1): csrrs/csrrc with rs1 != x0 write the CSR even when
   * the register holds 0, so they are illegal on a read-only CSR; with
   * rs1 = x0 (or uimm = 0) they only read. */
  PUTS "== read-only CSR and csrrs\n"
  LOADG s0, m_trap_count
  csrrs t0, cycle, x0
  csrrsi t0, cycle, 0
  csrrc t0, instret, x0
  LOADG t0, m_trap_count
  CHECK_EQR(t0, s0)
  li t1, 0
  li t0, 1
  STOREG t0, m_quiet, t2
  csrrs t0, cycle, t1
  STOREG zero, m_quiet, t2
  LOADG t0, m_trap_count
  sub t0, t0, s0
  KV "traps from csrrs cycle with rs1 = 0-valued t1", t0  /* QEMU 7.2: none; corrected by the test */

  /* §3.1.6.6: writes to FP registers or fcsr set mstatus.FS to Dirty
   * (and SD); reads from FP registers need not. */
  PUTS "== mstatus.FS\n"
  li s1, MSTATUS_FS
  li s2, (2 << 13)             /* Clean */
  la s3, fp_data
  csrc mstatus, s1
  csrs mstatus, s2
  fld f1, 0(s3)
  csrr s0, mstatus
  and t0, s0, s1
  KV "FS after fld", t0
  srli t0, s0, 63
  KV "SD after fld", t0
  csrc mstatus, s1
  csrs mstatus, s2
  fadd.d f2, f1, f1
  csrr t0, mstatus
  and t0, t0, s1
  KV "FS after fadd.d", t0
  csrc mstatus, s1
  csrs mstatus, s2
  csrwi fflags, 1
  csrr t0, mstatus
  and t0, t0, s1
  KV "FS after csrw fflags", t0
  csrc mstatus, s1
  csrs mstatus, s2
  fmv.d.x f3, s3
  csrr t0, mstatus
  and t0, t0, s1
  KV "FS after fmv.d.x", t0
  csrc mstatus, s1
  csrs mstatus, s2
  csrr t0, mstatus
  srli t0, t0, 63
  KV "SD when Clean", t0
  csrs mstatus, s1

  /* §3.1.6.1 / §3.1.8: traps taken in M-mode are never delegated. */
  PUTS "== medeleg does not apply in M\n"
  li t0, 1 << CAUSE_ILLEGAL
  csrw medeleg, t0
  .word 0x1234500b
  CHECK_MTRAP(CAUSE_ILLEGAL)
  csrw medeleg, zero

  /* §3.1.15, §3.6: accesses where there is no memory or device raise
   * access faults with the address in mtval (bare mode). */
  PUTS "== access faults\n"
  li t0, 0
  jalr t0                      /* nothing at 0 */
  CHECK_MTRAP(CAUSE_FETCH_ACCESS)
  li t0, 0xfff0000000000000
  ld t1, 0(t0)
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)
  sd t1, 8(t0)
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  li t0, CLINT_MSIP            /* device memory is not executable */
  jalr t0
  CHECK_MTRAP(CAUSE_FETCH_ACCESS)
  MRET_TO 1, s_access
s_access:
  li t0, 0x10
  ld t1, 0(t0)
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)
  TO_M m_after_access
m_after_access:

  /* §4.1.11: satp holds MODE, ASID (QEMU: all 16 bits, ASIDLEN = 16) and
   * the root PPN; M-mode is not translated, so it can be written freely. */
  PUTS "== satp fields\n"
  li t0, (8 << 60) | (0xffff << 44) | 0x80123
  csrw satp, t0
  csrr s0, satp
  csrw satp, zero
  KV "satp with ASID 0xffff", s0

  /* Zifencei §3.1: after stores to instruction memory, fence.i makes them
   * visible to instruction fetch. */
  PUTS "== fence.i\n"
  la s1, smc_code
  li t0, 0x00100513            /* addi a0, zero, 1 */
  sw t0, 0(s1)
  li t0, 0x00008067            /* ret */
  sw t0, 4(s1)
  fence.i
  jalr s1
  mv s0, a0
  li t0, 0x00200513            /* addi a0, zero, 2 */
  sw t0, 0(s1)
  fence.i
  jalr s1
  slli s0, s0, 4
  or s0, s0, a0
  KV "results before and after rewriting", s0
  CHECK_EQ(s0, 0x12)

  /* §3.1.8: medeleg delegates U ecalls, breakpoints and illegal
   * instructions to S; traps from U/S then go to stvec with scause/stval/sepc. */
  PUTS "== delegation to S\n"
  li t0, (1 << CAUSE_USER_ECALL) | (1 << CAUSE_BREAKPOINT) | (1 << CAUSE_ILLEGAL)
  csrw medeleg, t0
  csrr s0, medeleg
  KV medeleg, s0
  CHECK_EQR(s0, t0)
  call s_trap_setup
  MRET_TO 0, u_deleg
u_deleg:
  li a7, 0
  ecall
  CHECK_STRAP(CAUSE_USER_ECALL)
  LOADG t0, s_last_sstatus
  andi t0, t0, MSTATUS_SPP
  CHECK_EQ(t0, 0)
  ebreak
  CHECK_STRAP(CAUSE_BREAKPOINT)
  .word 0x1234500b
  CHECK_STRAP(CAUSE_ILLEGAL)
  LOADG t0, s_last_tval
  CHECK_EQ(t0, 0x1234500b)
  sret
  CHECK_STRAP(CAUSE_ILLEGAL)
  csrr t0, mstatus
  CHECK_STRAP(CAUSE_ILLEGAL)
  TO_M m_deleg_s
m_deleg_s:
  /* §4.1.1: a trap into S sets SPP = S, SPIE = SIE, SIE = 0; sret sets
   * SIE = SPIE, SPIE = 1, SPP = U. Delegated traps leave M's CSRs alone. */
  LOADG s5, m_trap_count
  MRET_TO 1, s_deleg
s_deleg:
  li t0, MSTATUS_SPIE | MSTATUS_SPP
  csrc sstatus, t0
  csrsi sstatus, MSTATUS_SIE
  ebreak
  CHECK_STRAP(CAUSE_BREAKPOINT)
  csrr s1, sstatus
  LOADG s0, s_last_sstatus
  li t0, SST_STACK
  and s0, s0, t0
  and s1, s1, t0
  KV "sstatus.SIE|SPIE|SPP at trap", s0
  KV "sstatus.SIE|SPIE|SPP after sret", s1
  CHECK_EQ(s0, MSTATUS_SPIE | MSTATUS_SPP)
  CHECK_EQ(s1, MSTATUS_SIE | MSTATUS_SPIE)
  csrci sstatus, MSTATUS_SIE
  mret                         /* illegal in S: delegated */
  CHECK_STRAP(CAUSE_ILLEGAL)
  csrr t0, mepc                /* M CSR from S: illegal, delegated */
  CHECK_STRAP(CAUSE_ILLEGAL)
  LOADG t0, m_trap_count
  CHECK_EQR(t0, s5)            /* none of these reached M */
  li a7, 0
  ecall                        /* S ecall: not delegated */
  CHECK_MTRAP(CAUSE_SUPERVISOR_ECALL)
  TO_M m_deleg_ecall_s
m_deleg_ecall_s:
  /* §3.1.8: ecall from S can be delegated to S itself (the S handler
   * cannot print then: its own service ecalls would come back to it) */
  li t0, 1 << CAUSE_SUPERVISOR_ECALL
  csrw medeleg, t0
  li t0, 1
  STOREG t0, s_quiet, t1
  MRET_TO 1, s_deleg_ecall
s_deleg_ecall:
  li a7, 0
  ecall
  TO_M_ILLEGAL m_after_deleg   /* ecalls go to S now */
m_after_deleg:
  csrw medeleg, zero
  STOREG zero, s_quiet, t1
  LOADG s0, s_last_cause
  KV "S ecall delegated to S: scause", s0
  CHECK_STRAP(CAUSE_SUPERVISOR_ECALL)

  /* §4.1.7-§4.1.10: sscratch, sepc (bit 0 always 0 with IALIGN = 16),
   * scause and stval hold what S-mode writes. §4.1.3: sie/sip only expose
   * delegated interrupts. §4.1.1: sstatus shows a subset of mstatus. */
  PUTS "== S-mode CSRs\n"
  li t0, (1 << IRQ_SSI) | (1 << IRQ_STI) | (1 << IRQ_SEI)
  csrw mideleg, t0
  KVCSR mideleg, mideleg
  MRET_TO 1, s_csrs
s_csrs:
  li t0, 0x0123456789abcdef
  csrw sscratch, t0
  csrr s0, sscratch
  KV sscratch, s0
  CHECK_EQR(s0, t0)
  li t0, -1                    /* bit 0 reads as 0; bit 1 is kept (IALIGN = 16) */
  csrw sepc, t0
  csrr s0, sepc
  KV sepc, s0                  /* QEMU 7.2 keeps bit 0: its output is corrected by the test */
  li t0, -2
  and s0, s0, t0
  CHECK_EQ(s0, -2)
  li t0, 0x800000000000000d
  csrw scause, t0
  KVCSR scause, scause
  li t0, 0xfedcba9876543210
  csrw stval, t0
  csrr s0, stval
  KV stval, s0
  CHECK_EQR(s0, t0)
  li t0, -1
  csrw sie, t0
  csrr s0, sie
  KV sie, s0
  CHECK_EQ(s0, 0x222)
  csrw sie, zero
  li t0, 0xffffffff
  csrs sstatus, t0
  csrr s0, sstatus
  li t0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR
  and s0, s0, t0
  KV "sstatus after setting bits 31:0", s0
  CHECK_EQR(s0, t0)
  csrc sstatus, t0
  li t0, MSTATUS_MPP | MSTATUS_MIE | MSTATUS_MPRV | MSTATUS_TVM
  csrs sstatus, t0             /* M-only bits: not visible through sstatus */
  TO_M m_after_s_csrs
m_after_s_csrs:
  csrr s0, mstatus
  li t0, MSTATUS_MIE | MSTATUS_MPRV | MSTATUS_TVM
  and s0, s0, t0
  KV "mstatus M-only bits after sstatus write", s0
  CHECK_EQ(s0, 0)
  csrw mideleg, zero

  /* §3.1.6.1 (v1.12): an xRET to a mode below M clears MPRV; sret works in M. */
  PUTS "== xRET clears MPRV\n"
  li t0, MSTATUS_MPRV
  csrs mstatus, t0
  MRET_TO 1, s_mprv1
s_mprv1:
  li a7, 0
  ecall
  CHECK_MTRAP(CAUSE_SUPERVISOR_ECALL)
  LOADG s0, m_last_mstatus
  li t0, MSTATUS_MPRV
  and s0, s0, t0
  KV "MPRV after mret to S", s0  /* QEMU 7.2 keeps MPRV: corrected by the test */
  TO_M m_mprv2
m_mprv2:
  li t0, MSTATUS_MPRV
  csrc mstatus, t0
  li t0, MSTATUS_SPP
  csrs mstatus, t0
  la t0, s_mprv2
  csrw sepc, t0
  li t0, MSTATUS_MPRV
  csrs mstatus, t0             /* MPP is U here: no effect without memory accesses */
  sret
s_mprv2:
  li a7, 0
  ecall
  CHECK_MTRAP(CAUSE_SUPERVISOR_ECALL)
  LOADG s0, m_last_mstatus
  li t0, MSTATUS_MPRV
  and s0, s0, t0
  KV "MPRV after sret to S", s0
  TO_M m_after_mprv
m_after_mprv:
  li t0, MSTATUS_MPRV
  csrc mstatus, t0

  /* §3.1.11, §4.1.5: mcounteren gates cycle/time/instret below M,
   * scounteren additionally gates them in U. (QEMU 7.2's spike machine has
   * no time CSR at all, so rdtime is tested on virt, in interrupts.S.) */
  PUTS "== counter enables\n"
  csrw mcounteren, zero
  csrw scounteren, zero
  MRET_TO 1, s_cnt0
s_cnt0:
  rdcycle t0
  CHECK_MTRAP(CAUSE_ILLEGAL)
  rdinstret t0
  CHECK_MTRAP(CAUSE_ILLEGAL)
  TO_M m_cnt1
m_cnt1:
  li t0, 5
  csrw mcounteren, t0
  KVCSR mcounteren, mcounteren
  MRET_TO 1, s_cnt1
s_cnt1:
  LOADG s0, m_trap_count
  rdcycle t0
  rdinstret t0
  csrr t0, scounteren          /* S-level CSR */
  LOADG t0, m_trap_count
  CHECK_EQR(t0, s0)
  li t0, 1
  csrw scounteren, t0
  KVCSR scounteren, scounteren
  TO_M m_cnt2
m_cnt2:
  PUTS "U: CY enabled in both, IR only in mcounteren\n"
  MRET_TO 0, u_cnt2
u_cnt2:
  LOADG s0, m_trap_count
  rdcycle t0
  LOADG t0, m_trap_count
  CHECK_EQR(t0, s0)
  rdinstret t0
  CHECK_MTRAP(CAUSE_ILLEGAL)
  TO_M m_cnt3
m_cnt3:
  PUTS "U: scounteren = 5, mcounteren = 0\n"
  csrw mcounteren, zero
  li t0, 5
  csrw scounteren, t0
  MRET_TO 0, u_cnt3
u_cnt3:
  rdcycle t0
  CHECK_MTRAP(CAUSE_ILLEGAL)
  rdinstret t0
  CHECK_MTRAP(CAUSE_ILLEGAL)
  TO_M m_done
m_done:
  PUTS "== done\n"
  li a0, 0
  SVC SVC_EXIT

  .data
  .balign 8
fp_data: .double 1.5
  .balign 64
smc_code: .space 64
