/*
 * Shared definitions for the bare-metal privileged-architecture tests
 * (tests/baremetal/*.S). Every program is linked with common.S, which
 * provides _start, the M- and S-mode trap handlers, the HTIF console and
 * the "service" ecalls below. A program defines `test_main` (entered in
 * M-mode with a stack, mtvec set and PMP entry 15 granting RWX on all of
 * memory); returning from it with a0 = 0 passes, any other a0 fails.
 *
 * Printing from any privilege mode goes through ecall with a7 = SVC_*; the
 * M-mode handler serves it (an S-mode handler installed by s_trap_setup
 * forwards services from U-mode that medeleg delegated to it). A service
 * ecall clobbers a0, a1 and a7 only -- but, being a trap, it also rewrites
 * mepc/mcause/mtval, sets mstatus.MPIE and sets MPP to U (§3.3.2 mret), so
 * M-mode code must read those CSRs before printing.
 *
 * Traps that are not services are recorded (m_last_* / s_last_*), printed
 * as one line ("M-trap from=S cause=0xd tval=0x... epc=0x...") and
 * resumed: at m_resume/s_resume if set (then cleared), at the trapped
 * code's ra for instruction-fetch faults (causes 0, 1, 12), else at
 * epc + 4 (m_quiet/s_quiet suppress the printing). Interrupts are passed
 * to the program's m_hook/s_hook.
 */
#ifndef BAREMETAL_COMMON_H
#define BAREMETAL_COMMON_H

/* Service numbers (a7 for ecall). */
#define SVC_BASE    0x5e7c00
#define SVC_PUTS    (SVC_BASE + 1)   /* a0 = NUL-terminated string (physical = virtual address) */
#define SVC_PUTHEX  (SVC_BASE + 2)   /* a0 = value, printed as 0x... without leading zeros */
#define SVC_KV      (SVC_BASE + 3)   /* a0 = label, a1 = value: prints "label=0x...\n" */
#define SVC_PUTCHAR (SVC_BASE + 4)   /* a0 = byte */
#define SVC_EXIT    (SVC_BASE + 5)   /* a0 = exit status (0 = pass) */
#define SVC_FAIL    (SVC_BASE + 6)   /* a0 = source line: prints "FAIL line N" and exits with status 1 */
#define SVC_TO_M    (SVC_BASE + 7)   /* a0 = address: continue there in M-mode */
#define SVC_LAST    SVC_TO_M

/* mstatus fields (privileged spec §3.1.6). */
#define MSTATUS_SIE   (1 << 1)
#define MSTATUS_MIE   (1 << 3)
#define MSTATUS_SPIE  (1 << 5)
#define MSTATUS_MPIE  (1 << 7)
#define MSTATUS_SPP   (1 << 8)
#define MSTATUS_MPP   (3 << 11)
#define MSTATUS_MPP_S (1 << 11)
#define MSTATUS_MPP_M (3 << 11)
#define MSTATUS_FS    (3 << 13)
#define MSTATUS_MPRV  (1 << 17)
#define MSTATUS_SUM   (1 << 18)
#define MSTATUS_MXR   (1 << 19)
#define MSTATUS_TVM   (1 << 20)
#define MSTATUS_TW    (1 << 21)
#define MSTATUS_TSR   (1 << 22)

/* Interrupt numbers / mip-mie bits (§3.1.9). */
#define IRQ_SSI 1
#define IRQ_MSI 3
#define IRQ_STI 5
#define IRQ_MTI 7
#define IRQ_SEI 9
#define IRQ_MEI 11
#define MIP_SSIP (1 << IRQ_SSI)
#define MIP_MSIP (1 << IRQ_MSI)
#define MIP_STIP (1 << IRQ_STI)
#define MIP_MTIP (1 << IRQ_MTI)
#define MIP_SEIP (1 << IRQ_SEI)
#define MIP_MEIP (1 << IRQ_MEI)

/* Exception causes (§3.1.15, Table 3.6). */
#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS     1
#define CAUSE_ILLEGAL          2
#define CAUSE_BREAKPOINT       3
#define CAUSE_MISALIGNED_LOAD  4
#define CAUSE_LOAD_ACCESS      5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS     7
#define CAUSE_USER_ECALL       8
#define CAUSE_SUPERVISOR_ECALL 9
#define CAUSE_MACHINE_ECALL    11
#define CAUSE_FETCH_PAGE_FAULT 12
#define CAUSE_LOAD_PAGE_FAULT  13
#define CAUSE_STORE_PAGE_FAULT 15

/* CSR numbers the assembler may not know by name. */
#define CSR_MENVCFG  0x30a
#define CSR_STIMECMP 0x14d

/* The CLINT of QEMU's spike machine (hw/riscv/spike.c, hw/intc/riscv_aclint.c). */
#define CLINT_MSIP     0x02000000
#define CLINT_MTIMECMP 0x02004000
#define CLINT_MTIME    0x0200bff8

/* QEMU virt machine devices (hw/riscv/virt.c): UART0 and the test finisher. */
#define VIRT_UART0 0x10000000
#define VIRT_TEST  0x00100000

/* Page-table entry bits (§4.3.1, Figure 4.18). */
#define PTE_V (1 << 0)
#define PTE_R (1 << 1)
#define PTE_W (1 << 2)
#define PTE_X (1 << 3)
#define PTE_U (1 << 4)
#define PTE_G (1 << 5)
#define PTE_A (1 << 6)
#define PTE_D (1 << 7)

#ifdef __ASSEMBLER__

/* Tests are written without compressed instructions unless they ask for
 * them, so that every trapping instruction is 4 bytes long. */
.option norvc

/* Calls service `svc` (a7); clobbers a0, a1, a7. */
.macro SVC svc
  li a7, \svc
  ecall
.endm

/* Prints a string literal. Clobbers a0, a1, a7. */
.macro PUTS str
  .pushsection .rodata.str, "aMS", @progbits, 1
.Lputs_str\@: .asciz "\str"
  .popsection
  la a0, .Lputs_str\@
  SVC SVC_PUTS
.endm

/* Prints "label=0x<reg>\n". `reg` may be any register but a7. Clobbers a0, a1, a7. */
.macro KV label, reg
  .pushsection .rodata.str, "aMS", @progbits, 1
.Lkv_str\@: .asciz "\label="
  .popsection
  mv a1, \reg
  la a0, .Lkv_str\@
  SVC SVC_KV
.endm

/* Reads CSR `csr` into t6 and prints "csr=0x...\n". Clobbers t6, a0, a1, a7. */
.macro KVCSR label, csr
  csrr t6, \csr
  KV "\label", t6
.endm

/* A failed check ends the test with SVC_FAIL; built with -DCHECK_NONFATAL
 * (for debugging by hand) it only prints "FAIL line N" and goes on. */
#ifdef CHECK_NONFATAL
#define SVC_CHECK_FAILED SVC_KV
#define CHECK_FAIL_ARGS la a0, str_check_failed
#else
#define SVC_CHECK_FAILED SVC_FAIL
#define CHECK_FAIL_ARGS
#endif

/* Fails the test (from any mode) unless reg == imm. Uses t6; the failing line is reported. */
.macro check_eq reg, imm, line
  li t6, \imm
  beq \reg, t6, .Lcheck_ok\@
  li a1, \line
  li a0, \line
  CHECK_FAIL_ARGS
  SVC SVC_CHECK_FAILED
.Lcheck_ok\@:
.endm

/* Fails the test unless reg1 == reg2. */
.macro check_eqr reg1, reg2, line
  beq \reg1, \reg2, .Lcheckr_ok\@
  li a1, \line
  li a0, \line
  CHECK_FAIL_ARGS
  SVC SVC_CHECK_FAILED
.Lcheckr_ok\@:
.endm

#define CHECK_EQ(reg, imm) check_eq reg, imm, __LINE__
#define CHECK_EQR(reg1, reg2) check_eqr reg1, reg2, __LINE__

/* Loads the 64-bit global `sym` into reg. */
.macro LOADG reg, sym
  la \reg, \sym
  ld \reg, 0(\reg)
.endm

/* Stores reg into the 64-bit global `sym`, using `tmp` for the address. */
.macro STOREG reg, sym, tmp
  la \tmp, \sym
  sd \reg, 0(\tmp)
.endm

/* Fails unless the last M-mode trap had cause `cause` (and clears the record). Uses t5, t6. */
.macro check_mtrap cause, line
  LOADG t5, m_last_cause
  check_eq t5, \cause, \line
  li t5, -1
  STOREG t5, m_last_cause, t6
.endm
#define CHECK_MTRAP(cause) check_mtrap cause, __LINE__

/* Fails unless the last S-mode trap had cause `cause` (and clears the record). Uses t5, t6. */
.macro check_strap cause, line
  LOADG t5, s_last_cause
  check_eq t5, \cause, \line
  li t5, -1
  STOREG t5, s_last_cause, t6
.endm
#define CHECK_STRAP(cause) check_strap cause, __LINE__

/* From M-mode: continue at `label` in privilege mode `mpp` (0 U, 1 S) via mret,
 * with mstatus.MPIE = 0. Clobbers t0. */
.macro MRET_TO mpp, label
  li t0, MSTATUS_MPP | MSTATUS_MPIE
  csrc mstatus, t0
  li t0, (\mpp << 11)
  csrs mstatus, t0
  la t0, \label
  csrw mepc, t0
  mret
.endm

/* From S- or U-mode (or M): continue at `label` in M-mode. */
.macro TO_M label
  la a0, \label
  SVC SVC_TO_M
.endm

/* The same through an illegal instruction (custom-0 opcode, TO_M_INSN),
 * for code whose ecalls medeleg sends to S. */
#define TO_M_INSN 0x7e57000b
.macro TO_M_ILLEGAL label
  la a0, \label
  li a7, SVC_TO_M
  .word TO_M_INSN
.endm

#endif /* __ASSEMBLER__ */
#endif /* BAREMETAL_COMMON_H */
