/*
 * pmp: physical memory protection (privileged spec v1.12 §3.7). TOR, NA4
 * and NAPOT regions with different R/W/X checked from S, U and M (with
 * MPRV), priority of the lowest-numbered match, partial matches, no match,
 * locked entries (which bind M-mode too and ignore writes) and the WARL
 * legalisation of pmpcfg/pmpaddr.
 *
 * Entry 15 is common.S's catch-all RWX entry; this program uses 0-8 and 14.
 */
#include "common.h"

#define PMP_R     0x01
#define PMP_W     0x02
#define PMP_X     0x04
#define PMP_OFF   0x00
#define PMP_TOR   0x08
#define PMP_NA4   0x10
#define PMP_NAPOT 0x18
#define PMP_L     0x80

/* pmpaddr = base >> 2 | (size / 8 - 1): NAPOT encoding (§3.7.1.2). Clobbers t0, t1. */
.macro NAPOT_ADDR csr, label, size
  la t0, \label
  srli t0, t0, 2
  li t1, (\size / 8) - 1
  or t0, t0, t1
  csrw \csr, t0
.endm
/* pmpaddr = (label + off) >> 2. Clobbers t0. */
.macro ADDR_OF csr, label, off
  la t0, \label
  addi t0, t0, \off
  srli t0, t0, 2
  csrw \csr, t0
.endm

/* Probes address (label + off) from the current mode: a load, a store and
 * (for code pages) a call; each faulting access prints a trap line. */
.macro LOAD label, off
  la t0, \label + \off
  ld t1, 0(t0)
.endm
.macro STORE label, off
  la t0, \label + \off
  sd zero, 0(t0)
.endm
.macro CALL label
  la t0, \label
  jalr t0
.endm

  .text
  .globl test_main
test_main:
  /* §3.7.1 WARL: R = 0 with W = 1 is reserved and bits 6:5 read as zero
   * (QEMU 7.2 keeps both: its output is corrected by the test); pmpaddr
   * holds bits 55:2 only (bits 63:54 read as zero; QEMU 7.2 keeps them). */
  PUTS "== WARL\n"
  li t0, (0x1f << 56) | (0x03 << 16) | (0x61 << 8) | 0x02
  csrw pmpcfg2, t0
  csrr s0, pmpcfg2
  KV pmpcfg2, s0
  srli t0, s0, 16
  andi t0, t0, 0xff
  CHECK_EQ(t0, 0x03)
  li t0, -1
  csrw pmpaddr8, t0
  KVCSR "pmpaddr8 after writing -1", pmpaddr8
  li t0, 0x3fffffffffffff
  csrw pmpaddr8, t0
  csrr s0, pmpaddr8
  CHECK_EQR(s0, t0)
  li t0, (0x1f << 56)
  csrw pmpcfg2, t0

  /* The regions:
   *  0-1: TOR [ro_page, ro_page + 4096): R
   *  2:   NA4 na4_page + 4: no access
   *  3:   NAPOT 4 KiB xo_page: X
   *  4:   NAPOT 4 KiB none_page: no access
   *  5:   NAPOT 8 B   ro_page + 16: R W (shadowed by entry 1: lower number wins) */
  PUTS "== regions\n"
  ADDR_OF pmpaddr0, ro_page, 0
  la t0, ro_page + 4096
  srli t0, t0, 2
  csrw pmpaddr1, t0
  ADDR_OF pmpaddr2, na4_page, 4
  NAPOT_ADDR pmpaddr3, xo_page, 4096
  NAPOT_ADDR pmpaddr4, none_page, 4096
  ADDR_OF pmpaddr5, ro_page, 16
  li t0, ((PMP_NAPOT | PMP_R | PMP_W) << 40) | ((PMP_NAPOT) << 32) | ((PMP_NAPOT | PMP_X) << 24) | ((PMP_NA4) << 16) | ((PMP_TOR | PMP_R) << 8) | PMP_OFF
  csrw pmpcfg0, t0
  csrr s0, pmpcfg0
  KV pmpcfg0, s0
  CHECK_EQR(s0, t0)
  KVCSR pmpaddr3, pmpaddr3

  /* §3.7.1: M-mode ignores unlocked entries ... */
  PUTS "M:\n"
  LOAD ro_page, 0
  STORE ro_page, 0
  la t0, na4_page
  lw t1, 4(t0)
  sw zero, 4(t0)
  LOAD xo_page, 0
  STORE none_page, 64
  CALL none_page
  CALL xo_page
  LOADG t0, m_trap_count
  CHECK_EQ(t0, 0)
  /* ... but §3.7.1.4: an access that an entry matches only in part fails,
   * whatever L, R, W and X say -- in M-mode too. */
  LOAD na4_page, 0
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)

  PUTS "S:\n"
  MRET_TO 1, s_probe
s_probe:
  call probe_all
  TO_M m_u
m_u:
  PUTS "U:\n"
  MRET_TO 0, u_probe
u_probe:
  call probe_all
  TO_M m_mprv

  /* §3.1.6.3: with MPRV = 1 and MPP = S, M-mode loads and stores are
   * checked as S-mode accesses; fetches are not. */
m_mprv:
  PUTS "M with MPRV, MPP = S:\n"
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MSTATUS_MPP_S | MSTATUS_MPRV
  csrs mstatus, t0
  la t0, ro_page
  sd zero, 0(t0)               /* store access fault, taken in M; the mret leaves MPP = U, MPRV = 1 */
  li t0, MSTATUS_MPRV
  csrc mstatus, t0
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  li t0, MSTATUS_MPP_S | MSTATUS_MPRV
  csrs mstatus, t0
  CALL xo_page                 /* fetch: not affected by MPRV */
  li t0, MSTATUS_MPRV
  csrc mstatus, t0

  /* §3.7.1: with entries programmed, an S/U access that matches none fails;
   * an M access that matches none succeeds. Entry 15 off, entry 14 = the
   * first 2 MiB of RAM (the image), RWX. */
  PUTS "== no matching entry\n"
  li t0, 0x80000000 >> 2 | ((0x200000 / 8) - 1)
  csrw pmpaddr14, t0
  li t0, (PMP_NAPOT | PMP_R | PMP_W | PMP_X) << 48
  csrw pmpcfg2, t0
  li t0, 0x80400000
  li t1, 0x1234
  sd t1, 0(t0)                 /* M: fine */
  MRET_TO 1, s_nomatch
s_nomatch:
  li t0, 0x80400000
  ld t1, 0(t0)
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)
  li t0, 0x80400000
  jalr t0
  CHECK_MTRAP(CAUSE_FETCH_ACCESS)
  TO_M m_locked
m_locked:
  li t0, (0x1f << 56)
  csrw pmpcfg2, t0
  csrw pmpaddr14, zero

  /* §3.7.2 (and §4.3.2 steps 2, 8): with paging, PMP checks the implicit
   * page-table reads as S-mode accesses and the final physical access;
   * failures are access faults with stval = the virtual address.
   * Sv39: VA 0x4000_0000 -> megapage at PA 0x8040_0000 through pt_l1, which
   * entry 9 covers; entry 10 covers the megapage's first 4 KiB. */
  PUTS "== PMP under paging\n"
  la t0, pt_root
  li t1, (0x80000000 >> 12 << 10) | 0xcf     /* V R W X A D */
  sd t1, 16(t0)
  la t1, pt_l1
  srli t1, t1, 2
  ori t1, t1, 1
  sd t1, 8(t0)
  la t0, pt_l1
  li t1, (0x80400000 >> 12 << 10) | 0xc7     /* V R W A D */
  sd t1, 0(t0)
  li t0, 0x80400000
  li t1, 0x4242
  sd t1, 0(t0)
  NAPOT_ADDR pmpaddr9, pt_l1, 4096
  li t0, 0x80400000 >> 2 | ((4096 / 8) - 1)
  csrw pmpaddr10, t0
  li t0, (0x1f << 56) | ((PMP_NAPOT | PMP_R) << 16) | (PMP_NAPOT << 8)
  csrw pmpcfg2, t0
  la t0, pt_root
  srli t0, t0, 12
  li t1, 8 << 60
  or t0, t0, t1
  csrw satp, t0
  sfence.vma
  MRET_TO 1, s_paging
s_paging:
  li t0, 0x40000008
  ld t1, 0(t0)                 /* the walk reads pt_l1: denied */
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)
  TO_M m_paging2
m_paging2:
  li t0, (0x1f << 56) | ((PMP_NAPOT | PMP_R) << 16) | ((PMP_NAPOT | PMP_R) << 8)
  csrw pmpcfg2, t0
  MRET_TO 1, s_paging2
s_paging2:
  li t0, 0x40000000
  ld s0, 0(t0)
  KV "load through the megapage", s0
  CHECK_EQ(s0, 0x4242)
  li t0, 0x40000000
  sd zero, 0(t0)               /* PTE allows it, PMP does not */
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  li t0, 0x40001000            /* the next 4 KiB are outside entry 10 */
  LOADG s1, m_trap_count
  sd zero, 0(t0)
  LOADG t0, m_trap_count
  CHECK_EQR(t0, s1)
  TO_M m_paging_done
m_paging_done:
  csrw satp, zero
  sfence.vma
  li t0, (0x1f << 56)
  csrw pmpcfg2, t0

  /* §3.7.1.3: a locked entry applies to M-mode too and ignores writes to
   * its pmpcfg and pmpaddr; a locked TOR entry also locks the pmpaddr below
   * it. Entries 6-7: TOR [lock_page, lock_page + 4096), R, locked.
   * Entry 8: NA4 lock_page2 + 8, R, locked. */
  PUTS "== locked entries\n"
  ADDR_OF pmpaddr6, lock_page, 0
  la t0, lock_page + 4096
  srli t0, t0, 2
  csrw pmpaddr7, t0
  ADDR_OF pmpaddr8, lock_page2, 8
  li t0, (0x1f << 56) | (PMP_L | PMP_NA4 | PMP_R)
  csrw pmpcfg2, t0
  csrr t0, pmpcfg0
  li t1, 0xffff << 48
  not t1, t1
  and t0, t0, t1
  li t1, ((PMP_L | PMP_TOR | PMP_R) << 56) | (PMP_OFF << 48)
  or t0, t0, t1
  csrw pmpcfg0, t0
  KVCSR pmpcfg0, pmpcfg0
  KVCSR pmpcfg2, pmpcfg2
  LOAD lock_page, 8
  STORE lock_page, 8           /* M-mode store: access fault */
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  la t0, lock_page2
  lw t1, 8(t0)
  sw zero, 8(t0)
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  sw zero, 4(t0)               /* outside the NA4 word: fine */
  sw zero, 12(t0)
  LOADG t0, m_trap_count
  mv s1, t0
  /* writes that must be ignored */
  csrr s2, pmpaddr6
  csrr s3, pmpaddr7
  csrr s4, pmpaddr8
  la t0, lock_page + 2048      /* (values that would not lock M out if taken) */
  srli t0, t0, 2
  csrw pmpaddr6, t0            /* below a locked TOR entry */
  csrw pmpaddr7, t0
  la t0, lock_page2 + 16
  srli t0, t0, 2
  csrw pmpaddr8, t0
  li t0, (0x1f << 56) | (PMP_NA4 | PMP_R | PMP_W)
  csrw pmpcfg2, t0             /* entry 8 is locked: unchanged */
  csrr s5, pmpaddr6
  KV "pmpaddr6 unchanged", s5
  CHECK_EQR(s5, s2)
  csrr s5, pmpaddr7
  KV "pmpaddr7 unchanged", s5
  CHECK_EQR(s5, s3)
  csrr s5, pmpaddr8
  KV "pmpaddr8 unchanged", s5
  CHECK_EQR(s5, s4)
  KVCSR pmpcfg2, pmpcfg2
  STORE lock_page, 8           /* still locked */
  CHECK_MTRAP(CAUSE_STORE_ACCESS)

  PUTS "== done\n"
  li a0, 0
  SVC SVC_EXIT

/* The probes run from S and U: each faulting one is printed by the M handler. */
probe_all:
  mv s11, ra
  LOAD ro_page, 0              /* TOR R: ok */
  LOAD ro_page, 4088
  STORE ro_page, 0             /* store access fault (7) */
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  STORE ro_page, 16            /* entry 1 wins over entry 5's RW */
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  la t0, na4_page              /* neighbours of the NA4 word: ok (entry 15) */
  lw t1, 0(t0)
  lw t1, 8(t0)
  lw t1, 4(t0)                 /* the NA4 word: load access fault (5) */
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)
  sw zero, 4(t0)
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  lh t1, 6(t0)
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)
  LOAD na4_page, 0             /* 8 bytes, partly in the NA4 word: fails (§3.7.1.4) */
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)
  CALL xo_page                 /* NAPOT X: fetch ok */
  CHECK_EQ(a0, 0x0a0a)
  LOAD xo_page, 0
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)
  STORE xo_page, 0
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  LOAD none_page, 8
  CHECK_MTRAP(CAUSE_LOAD_ACCESS)
  STORE none_page, 4088
  CHECK_MTRAP(CAUSE_STORE_ACCESS)
  CALL none_page               /* instruction access fault (1) */
  CHECK_MTRAP(CAUSE_FETCH_ACCESS)
  mv ra, s11
  ret

/* Code pages for the X and no-access regions. */
  .balign 4096
xo_page:
  li a0, 0x0a0a
  ret
  .balign 4096
none_page:
  li a0, 0x0b0b
  ret
  .balign 4096

  .section .pages, "aw", @nobits
  .balign 4096
ro_page:    .space 4096
na4_page:   .space 4096
lock_page:  .space 4096
lock_page2: .space 4096
pt_root:    .space 4096
pt_l1:      .space 4096
