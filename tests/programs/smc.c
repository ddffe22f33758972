/*
 * Self-modifying code. Instructions are written into mmap'd RWX buffers,
 * made visible with fence.i (or __builtin___clear_cache) and executed:
 *  1. a hot loop whose first instruction is patched thousands of times
 *     (immediates, opcodes, jumps and branches, compressed pairs);
 *  2. functions that patch their own later instructions in their own page
 *     (sw before the loop, sh and amoadd.w inside the loop itself);
 *  3. code sharing its page with data that is written all the time;
 *  4. code replaced by munmap + mmap at the same address, MAP_FIXED over
 *     it, mprotect RW -> RX, and mremap to another address;
 *  5. code written by the kernel (read() from a pipe);
 *  6. a misaligned store straddling a page boundary onto code;
 *  7. drivers patching a callee with every kind of store (sw/c.sw, sh, sb,
 *     sd/c.sd, fsd, amoswap/amoadd .w/.d with rd = x0, lr/sc) and calling
 *     it with jal and jalr, in the next page or their own;
 *  8. another thread patching code this thread has translated;
 *  9. fork, with the child patching its copy.
 * Every section prints what it computed; the output is compared with
 * qemu-riscv64 (which handles self-modifying code) under tsvm's
 * interpreter and its JIT (tests/diff/jit-smc.test.ts, and with the other
 * programs by tests/diff/programs.test.ts).
 *
 * The generated code is built from hand-encoded RV64I/A instructions (and,
 * for section 7, templates assembled below and copied), so that the
 * program does not depend on the compiler's code layout. Loops inside the
 * generated functions make their blocks hot (the JIT's default threshold is
 * 32 runs), so the patched code has been translated before it is
 * overwritten.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

typedef uint32_t u32;
typedef uint64_t u64;

#define PAGE 4096

enum { ZERO = 0, RA = 1, T0 = 5, T1 = 6, T2 = 7, A0 = 10, A1 = 11, A2 = 12, T3 = 28 };

/* Instruction encoders (unprivileged spec, chapter 2 and 14). */
static u32 itype(u32 op, u32 f3, u32 rd, u32 rs1, int imm) {
  return ((u32)(imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
static u32 stype(u32 f3, u32 rs1, u32 rs2, int imm) {
  return ((u32)((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((u32)(imm & 0x1f) << 7) | 0x23;
}
static u32 rtype(u32 f7, u32 f3, u32 rd, u32 rs1, u32 rs2) {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x33;
}
static u32 ADDI(u32 rd, u32 rs1, int imm) { return itype(0x13, 0, rd, rs1, imm); }
static u32 XORI(u32 rd, u32 rs1, int imm) { return itype(0x13, 4, rd, rs1, imm); }
static u32 SLLI(u32 rd, u32 rs1, int sh) { return itype(0x13, 1, rd, rs1, sh & 63); }
static u32 LD(u32 rd, u32 rs1, int imm) { return itype(0x03, 3, rd, rs1, imm); }
static u32 SD(u32 rs2, u32 rs1, int imm) { return stype(3, rs1, rs2, imm); }
static u32 SH(u32 rs2, u32 rs1, int imm) { return stype(1, rs1, rs2, imm); }
static u32 ADD(u32 rd, u32 rs1, u32 rs2) { return rtype(0, 0, rd, rs1, rs2); }
static u32 MUL(u32 rd, u32 rs1, u32 rs2) { return rtype(1, 0, rd, rs1, rs2); }
static u32 AUIPC(u32 rd, u32 imm20) { return (imm20 << 12) | (rd << 7) | 0x17; }
static u32 LUI(u32 rd, u32 imm20) { return (imm20 << 12) | (rd << 7) | 0x37; }
static u32 RET(void) { return itype(0x67, 0, ZERO, RA, 0); }
static u32 FENCE_I(void) { return 0x0000100f; }
/* amoadd.w rd, rs2, (rs1) */
static u32 AMOADD_W(u32 rd, u32 rs2, u32 rs1) { return (rs2 << 20) | (rs1 << 15) | (2 << 12) | (rd << 7) | 0x2f; }
/* bne rs1, rs2, off (off relative to this instruction) */
static u32 BNE(u32 rs1, u32 rs2, int off) {
  return ((u32)((off >> 12) & 1) << 31) | ((u32)((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (1 << 12) |
         ((u32)((off >> 1) & 0xf) << 8) | ((u32)((off >> 11) & 1) << 7) | 0x63;
}
/* jal rd, off (off relative to this instruction) */
static u32 JAL(u32 rd, long off) {
  u32 o = (u32)off;
  return (((o >> 20) & 1) << 31) | (((o >> 1) & 0x3ff) << 21) | (((o >> 11) & 1) << 20) | (((o >> 12) & 0xff) << 12) |
         (rd << 7) | 0x6f;
}
/* c.addi rd, imm (imm in -32..31, not 0) */
static uint16_t C_ADDI(u32 rd, int imm) {
  return (uint16_t)((((u32)imm >> 5) & 1) << 12 | rd << 7 | ((u32)imm & 0x1f) << 2 | 1);
}

static void fence_i(void) { __asm__ volatile("fence.i" ::: "memory"); }

static void *map_rwx(void *hint, size_t len, int fixed) {
  void *p = mmap(hint, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | (fixed ? MAP_FIXED : 0), -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    _exit(2);
  }
  return p;
}

static u64 mix(u64 acc, u64 v) { return (acc ^ v) * 0x100000001b3ull + 0x9e37; }

typedef long (*fn1)(long);
typedef long (*fn2)(long, long);
typedef long (*fn3)(long, long, long);

/*
 * 1. A hot loop whose first body instruction is overwritten between calls:
 * new immediates, another opcode, a jump or a data-dependent branch over
 * the next instruction (the block structure changes), and two compressed
 * instructions in place of one 4-byte instruction.
 */
static u32 hot_variant(int i) {
  int k = (i * 37) % 4001 - 2000;
  switch (i % 6) {
  case 1: return XORI(A0, A0, k);
  case 2: return JAL(ZERO, 8); /* skip the addi after it */
  case 3: return BNE(A0, ZERO, 8); /* skip it when a0 != 0 */
  case 4: {
    int k1 = i % 31 - 15, k2 = i % 29 - 14;
    return (u32)C_ADDI(A0, k1 == 0 ? 7 : k1) | (u32)C_ADDI(A0, k2 == 0 ? -9 : k2) << 16;
  }
  default: return ADDI(A0, A0, k);
  }
}

static void patch_hot(void) {
  u32 *code = map_rwx(NULL, PAGE, 0);
  code[0] = ADDI(T0, ZERO, 40);
  code[1] = ADDI(A0, A0, 0); /* patched: the loop head */
  code[2] = ADDI(A0, A0, 3);
  code[3] = ADDI(T0, T0, -1);
  code[4] = BNE(T0, ZERO, -12);
  code[5] = RET();
  fence_i();
  fn1 f = (fn1)(void *)code;
  u64 acc = 0;
  long r = 0;
  for (int i = 0; i < 2400; i++) {
    if (i % 4 != 3) { /* patched before most calls; every fourth call reuses the translation */
      code[1] = hot_variant(i / 4 * 3 + i % 4);
      if (i % 8 == 0) fence_i();
      else __builtin___clear_cache((char *)code, (char *)(code + 6));
    }
    r = f(i - 1200);
    acc = mix(acc, (u64)r);
    if (i % 400 == 399) printf("patch_hot: i=%d last=%ld acc=%016llx\n", i, r, (unsigned long long)acc);
  }
  munmap(code, PAGE);
}

/*
 * 2. Functions in one RWX page that patch their own later instructions
 * (with fence.i before reaching them): a store before the loop, and a
 * halfword store or an amoadd.w on the instruction inside the loop itself.
 */
static void patch_self(void) {
  u32 *page = map_rwx(NULL, PAGE, 0);
  /* f(x, word): stores `word` over the loop body, then runs it 40 times. */
  u32 *a = page;
  a[0] = AUIPC(T0, 0);
  a[1] = stype(2, T0, A1, 16); /* sw a1, 16(t0) */
  a[2] = FENCE_I();
  a[3] = ADDI(T1, ZERO, 40);
  a[4] = ADDI(A0, A0, 0); /* offset 16: patched */
  a[5] = ADDI(T1, T1, -1);
  a[6] = BNE(T1, ZERO, -8);
  a[7] = RET();
  /* g(x, n, half): the loop body's upper halfword (imm << 4 | rs1 >> 1) is rewritten every iteration. */
  u32 *b = page + 64;
  b[0] = AUIPC(T0, 0);
  b[1] = ADDI(T2, T0, 18);
  b[2] = SH(A2, T2, 0);
  b[3] = FENCE_I();
  b[4] = ADDI(A0, A0, 0); /* offset 16: patched, loop head */
  b[5] = ADDI(A2, A2, 16);
  b[6] = SH(A2, T2, 0);
  b[7] = FENCE_I();
  b[8] = ADDI(A1, A1, -1);
  b[9] = BNE(A1, ZERO, -20);
  b[10] = RET();
  /* h(x, n): the loop body's immediate is incremented by amoadd.w zero, t3, (t2) every iteration. */
  u32 *c = page + 128;
  c[0] = AUIPC(T0, 0);
  c[1] = ADDI(T2, T0, 12);
  c[2] = LUI(T3, 0x100); /* 1 << 20: +1 in the I-type immediate */
  c[3] = ADDI(A0, A0, 0); /* offset 12: patched, loop head */
  c[4] = AMOADD_W(ZERO, T3, T2);
  c[5] = FENCE_I();
  c[6] = ADDI(A1, A1, -1);
  c[7] = BNE(A1, ZERO, -16);
  c[8] = RET();
  fence_i();

  fn2 fa = (fn2)(void *)a;
  fn3 fb = (fn3)(void *)b;
  fn2 fc = (fn2)(void *)c;
  u64 acc = 0;
  long r = 0;
  for (int i = 0; i < 200; i++) {
    int k = (i * 91) % 4095 - 2047;
    r = fa(i, (long)(i % 3 == 0 ? XORI(A0, A0, k) : ADDI(A0, A0, k)));
    acc = mix(acc, (u64)r);
  }
  printf("patch_self store-before: last=%ld acc=%016llx\n", r, (unsigned long long)acc);
  acc = 0;
  for (int i = 0; i < 12; i++) {
    long half = ((long)((i * 301) % 4096) << 4) | (A0 >> 1);
    r = fb(i * 1000, 24 + 2 * i, half);
    acc = mix(acc, (u64)r);
    fence_i();
    printf("patch_self halfword: i=%d r=%ld word=%08x\n", i, r, b[4]);
  }
  printf("patch_self halfword: acc=%016llx\n", (unsigned long long)acc);
  acc = 0;
  for (int i = 0; i < 12; i++) {
    c[3] = ADDI(A0, A0, (i * 373) % 4096 - 2048);
    fence_i();
    r = fc(-i, 24 + 2 * i);
    acc = mix(acc, (u64)r);
    printf("patch_self amoadd: i=%d r=%ld word=%08x\n", i, r, c[3]);
  }
  printf("patch_self amoadd: acc=%016llx\n", (unsigned long long)acc);
  munmap(page, PAGE);
}

/*
 * 3. Code sharing its page with data that is written all the time: by the
 * generated code itself (a counter next to it) and by the C caller. The
 * loop's immediate is also patched now and then.
 */
static void code_and_data(void) {
  u32 *code = map_rwx(NULL, 2 * PAGE, 0);
  volatile u64 *near = (volatile u64 *)(void *)((char *)code + 2048); /* same page as the code */
  volatile u64 *far = (volatile u64 *)(void *)((char *)code + PAGE); /* the next page: data only */
  /* f(ptr, n): n times { *ptr += K; sum += *ptr }; returns sum. */
  code[0] = ADDI(T1, ZERO, 0);
  code[1] = LD(T0, A0, 0); /* loop head */
  code[2] = ADDI(T0, T0, 3); /* patched */
  code[3] = SD(T0, A0, 0);
  code[4] = ADD(T1, T1, T0);
  code[5] = ADDI(A1, A1, -1);
  code[6] = BNE(A1, ZERO, -20);
  code[7] = ADDI(A0, T1, 0);
  code[8] = RET();
  fence_i();
  fn2 f = (fn2)(void *)code;
  u64 acc = 0;
  for (int i = 0; i < 30; i++) {
    for (int j = 0; j < 64; j++) near[j % 16 + 1] += (u64)(i * j); /* C stores near the code */
    for (int j = 0; j < 64; j++) far[j % 16] += (u64)(i + j);
    acc = mix(acc, (u64)f((long)(uintptr_t)near, 20 + i % 7));
    acc = mix(acc, (u64)f((long)(uintptr_t)far, 40));
    if (i % 5 == 4) {
      code[2] = ADDI(T0, T0, i - 15);
      fence_i();
    }
  }
  u64 sum = 0;
  for (int j = 0; j < 17; j++) sum += near[j] * (u64)(j + 1) + far[j];
  printf("code_and_data: near0=%llu far0=%llu sum=%016llx acc=%016llx\n", (unsigned long long)near[0],
         (unsigned long long)far[0], (unsigned long long)sum, (unsigned long long)acc);
  munmap(code, 2 * PAGE);
}

/* Writes one of two different functions (different lengths and block shapes) at `code`. */
static void write_variant(u32 *code, int v, int k) {
  if (v % 2 == 0) {
    code[0] = ADDI(T0, ZERO, 40);
    code[1] = ADDI(A0, A0, k);
    code[2] = ADDI(T0, T0, -1);
    code[3] = BNE(T0, ZERO, -8);
    code[4] = RET();
  } else {
    code[0] = XORI(A0, A0, k);
    code[1] = SLLI(A0, A0, 3);
    code[2] = ADDI(T1, ZERO, 7);
    code[3] = MUL(A0, A0, T1);
    code[4] = RET();
  }
}

static long call_hot(u32 *code, int calls) {
  fn1 f = (fn1)(void *)code;
  long r = 0;
  for (int i = 0; i < calls; i++) r += f(i);
  return r;
}

/* 4. Replacing code by munmap + mmap at the same address, MAP_FIXED over it, mprotect RW -> RX, and mremap. */
static void remap(void) {
  u32 *code = map_rwx(NULL, PAGE, 0);
  int same = 1;
  for (int round = 0; round < 24; round++) {
    write_variant(code, round, round * 11 - 100);
    fence_i();
    long r = call_hot(code, 50);
    printf("remap munmap+mmap: round=%d r=%ld\n", round, r);
    munmap(code, PAGE);
    u32 *again = map_rwx(code, PAGE, 1);
    if (again != code) same = 0;
    code = again;
  }
  for (int round = 0; round < 12; round++) {
    write_variant(code, round + 1, round * 5 + 1);
    fence_i();
    long r = call_hot(code, 50);
    u32 *again = map_rwx(code, PAGE, 1); /* MAP_FIXED replaces the mapping: fresh zero page */
    if (again != code) same = 0;
    printf("remap MAP_FIXED: round=%d r=%ld fresh=%08x\n", round, r, again[0]);
    code = again;
  }
  for (int round = 0; round < 12; round++) {
    if (mprotect(code, PAGE, PROT_READ | PROT_WRITE) != 0) perror("mprotect rw");
    write_variant(code, round, 300 - round * 17);
    if (mprotect(code, PAGE, PROT_READ | PROT_EXEC) != 0) perror("mprotect rx");
    __builtin___clear_cache((char *)code, (char *)code + 64);
    printf("remap mprotect: round=%d r=%ld\n", round, call_hot(code, 50));
  }
  /* mremap: the translated code moves to another address, and new code appears at the old one. */
  if (mprotect(code, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) perror("mprotect rwx");
  u32 *dest = map_rwx(NULL, PAGE, 0);
  write_variant(code, 0, 77);
  fence_i();
  long r1 = call_hot(code, 50);
  u32 *moved = mremap(code, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
  if (moved == MAP_FAILED) {
    perror("mremap");
    _exit(2);
  }
  fence_i();
  long r2 = call_hot(moved, 50);
  u32 *again = map_rwx(code, PAGE, 1);
  if (again != code) same = 0;
  write_variant(again, 1, 5);
  fence_i();
  long r3 = call_hot(again, 50), r4 = call_hot(moved, 50);
  printf("remap mremap: old=%ld moved=%ld new-at-old=%ld moved-again=%ld at-dest=%s\n", r1, r2, r3, r4,
         moved == dest ? "yes" : "no");
  munmap(moved, PAGE);
  printf("remap: same address every time: %s\n", same ? "yes" : "no");
  munmap(code, PAGE);
}

/* 5. Code written into a hot buffer by the kernel: read() from a pipe. */
static void via_read(void) {
  u32 *code = map_rwx(NULL, PAGE, 0);
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    return;
  }
  for (int round = 0; round < 16; round++) {
    u32 insns[5];
    write_variant(insns, round, round * 13 - 77);
    if (write(fds[1], insns, sizeof insns) != (ssize_t)sizeof insns) perror("write");
    if (read(fds[0], code, sizeof insns) != (ssize_t)sizeof insns) perror("read");
    fence_i();
    printf("via_read: round=%d r=%ld\n", round, call_hot(code, 50));
  }
  close(fds[0]);
  close(fds[1]);
  munmap(code, PAGE);
}

/*
 * 6. A misaligned store straddling a page boundary whose second half lands
 * on code: sd at page+4092 rewrites the addi at page+4096 (4-byte
 * instruction), and sw at page+4094 rewrites a c.addi at page+4096.
 */
static void split_store(void) {
  char *two = map_rwx(NULL, 2 * PAGE, 0);
  u32 *code = (u32 *)(void *)(two + PAGE);
  code[0] = ADDI(A0, A0, 1);
  code[1] = RET();
  fence_i();
  fn1 f = (fn1)(void *)code;
  u64 acc = 0;
  for (int i = 0; i < 30; i++) {
    u64 v = ((u64)ADDI(A0, A0, i * 60 - 900) << 32) | (u64)(0x1000u + (unsigned)i);
    __asm__ volatile("sd %0, 0(%1)" : : "r"(v), "r"(two + PAGE - 4) : "memory");
    fence_i();
    long r = 0;
    for (int j = 0; j < 100; j++) r += f(j);
    acc = mix(acc, (u64)r);
  }
  printf("split_store sd: acc=%016llx word=%08x\n", (unsigned long long)acc, code[0]);
  /* c.addi a0, k; c.jr ra */
  uint16_t *half = (uint16_t *)(void *)code;
  half[0] = C_ADDI(A0, 1);
  half[1] = 0x8082;
  fence_i();
  acc = 0;
  for (int i = 0; i < 30; i++) {
    int k = i % 31 - 15;
    if (k == 0) k = 31;
    u32 v = ((u32)C_ADDI(A0, k) << 16) | 0x5a5au;
    __asm__ volatile("sw %0, 0(%1)" : : "r"(v), "r"(two + PAGE - 2) : "memory");
    fence_i();
    long r = 0;
    for (int j = 0; j < 100; j++) r += f(j);
    acc = mix(acc, (u64)r);
  }
  printf("split_store sw: acc=%016llx half=%04x\n", (unsigned long long)acc, half[0]);
  munmap(two, 2 * PAGE);
}

/*
 * 7. Drivers (assembled below, copied into an RWX page) that patch a callee
 * with every kind of store — sw/c.sw, sh, sb, sd/c.sd, fsd, amoswap.w,
 * amoadd.w, amoadd.d (all with rd = x0) and an lr.w/sc.w pair — then
 * fence.i and call it, alternately with a direct jal (patched in by
 * smc_store_kinds; chained across units by the JIT) and a jalr (the JIT's
 * indirect-branch cache). The callee lives in the next page, or in the
 * driver's own page. Driver ABI: a0 = accumulator, a1 = iterations,
 * a2 = address of the callee's first instruction, a3 = its current word
 * (zero-extended), a4 = mask: patch only when (a1 & a4) == 0.
 */
__asm__(
    "  .pushsection .rodata.smc_templates, \"a\"\n"
    "  .option push\n"
    "  .option norelax\n"
    "  .macro SMC_HEAD\n"
    "  mv a7, ra\n"
    "  lui t3, 0x100\n" /* 1 << 20: +1 in the I-type immediate */
    "  .endm\n"
    "  .macro SMC_GATE\n"
    "1: and t2, a1, a4\n"
    "  bnez t2, 3f\n"
    "  .endm\n"
    "  .macro SMC_TAIL name\n"
    "  fence.i\n"
    "3: andi t2, a1, 16\n"
    "  beqz t2, 4f\n"
    "  jalr ra, 0(a2)\n"
    "  j 5f\n"
    "  .globl smc_call_\\name\n"
    "smc_call_\\name:\n"
    "4: .word 0x000000ef\n" /* jal ra, callee: patched */
    "5: addi a1, a1, -1\n"
    "  bnez a1, 1b\n"
    "  jr a7\n"
    "  .globl smc_end_\\name\n"
    "smc_end_\\name:\n"
    "  .endm\n"
    "  .balign 4\n"
    "  .globl smc_tpl_sw\n"
    "smc_tpl_sw: SMC_HEAD\n"
    "  mv a5, a3\n"
    "  SMC_GATE\n"
    "  add a5, a5, t3\n"
    "  sw a5, 0(a2)\n" /* c.sw */
    "  SMC_TAIL sw\n"
    "  .balign 4\n"
    "  .globl smc_tpl_sh\n"
    "smc_tpl_sh: SMC_HEAD\n"
    "  srli t1, a3, 16\n"
    "  SMC_GATE\n"
    "  addi t1, t1, 16\n"
    "  sh t1, 2(a2)\n"
    "  SMC_TAIL sh\n"
    "  .balign 4\n"
    "  .globl smc_tpl_sb\n"
    "smc_tpl_sb: SMC_HEAD\n"
    "  srli t1, a3, 24\n"
    "  SMC_GATE\n"
    "  addi t1, t1, 1\n"
    "  sb t1, 3(a2)\n"
    "  SMC_TAIL sb\n"
    "  .balign 4\n"
    "  .globl smc_tpl_sd\n"
    "smc_tpl_sd: SMC_HEAD\n"
    "  ld a5, 0(a2)\n"
    "  SMC_GATE\n"
    "  add a5, a5, t3\n"
    "  sd a5, 0(a2)\n" /* c.sd: the callee word and the ret after it */
    "  SMC_TAIL sd\n"
    "  .balign 4\n"
    "  .globl smc_tpl_fsd\n"
    "smc_tpl_fsd: SMC_HEAD\n"
    "  ld t1, 0(a2)\n"
    "  SMC_GATE\n"
    "  add t1, t1, t3\n"
    "  fmv.d.x ft0, t1\n"
    "  fsd ft0, 0(a2)\n"
    "  SMC_TAIL fsd\n"
    "  .balign 4\n"
    "  .globl smc_tpl_amoswap\n"
    "smc_tpl_amoswap: SMC_HEAD\n"
    "  mv t1, a3\n"
    "  SMC_GATE\n"
    "  add t1, t1, t3\n"
    "  amoswap.w zero, t1, (a2)\n"
    "  SMC_TAIL amoswap\n"
    "  .balign 4\n"
    "  .globl smc_tpl_amoadd\n"
    "smc_tpl_amoadd: SMC_HEAD\n"
    "  SMC_GATE\n"
    "  amoadd.w.aq zero, t3, (a2)\n"
    "  SMC_TAIL amoadd\n"
    "  .balign 4\n"
    "  .globl smc_tpl_amoaddd\n"
    "smc_tpl_amoaddd: SMC_HEAD\n"
    "  SMC_GATE\n"
    "  amoadd.d.aqrl zero, t3, (a2)\n"
    "  SMC_TAIL amoaddd\n"
    "  .balign 4\n"
    "  .globl smc_tpl_sc\n"
    "smc_tpl_sc: SMC_HEAD\n"
    "  SMC_GATE\n"
    "2: lr.w t1, (a2)\n"
    "  add t1, t1, t3\n"
    "  sc.w t2, t1, (a2)\n"
    "  bnez t2, 2b\n"
    "  SMC_TAIL sc\n"
    "  .option pop\n"
    "  .popsection\n");

#define SMC_TPL(n) extern const char smc_tpl_##n[], smc_call_##n[], smc_end_##n[];
SMC_TPL(sw) SMC_TPL(sh) SMC_TPL(sb) SMC_TPL(sd) SMC_TPL(fsd) SMC_TPL(amoswap) SMC_TPL(amoadd) SMC_TPL(amoaddd) SMC_TPL(sc)

struct tpl {
  const char *name, *start, *call, *end;
};
#define TPL(n) {#n, smc_tpl_##n, smc_call_##n, smc_end_##n}
static const struct tpl TEMPLATES[] = {TPL(sw),      TPL(sh),     TPL(sb),      TPL(sd), TPL(fsd),
                                       TPL(amoswap), TPL(amoadd), TPL(amoaddd), TPL(sc)};

typedef long (*drv_t)(long, long, long, long, long);

static void store_kinds(void) {
  char *x = map_rwx(NULL, 2 * PAGE, 0);
  const int ntpl = (int)(sizeof TEMPLATES / sizeof TEMPLATES[0]);
  for (int where = 0; where < 2; where++) {
    /* where 0: the callee in the next page; 1: in the driver's own page */
    u32 *callee = (u32 *)(void *)(where == 0 ? x + PAGE : x + PAGE - 256);
    for (int t = 0; t < ntpl; t++) {
      const struct tpl *tp = &TEMPLATES[t];
      char *drv = x + 256 * t;
      size_t len = (size_t)(tp->end - tp->start);
      if (len > 256) {
        printf("store_kinds: template %s too long (%zu)\n", tp->name, len);
        _exit(3);
      }
      memcpy(drv, tp->start, len);
      char *site = drv + (tp->call - tp->start);
      u32 jal = JAL(RA, (char *)callee - site);
      memcpy(site, &jal, 4);
      fence_i();
      static const long reps[3][2] = {{48, 0}, {240, 7}, {192, 31}}; /* iterations, mask */
      for (int rep = where; rep < 3; rep++) {
        int k = t * 7 + rep * 3;
        callee[0] = ADDI(A0, A0, k);
        callee[1] = RET();
        fence_i();
        long r = ((drv_t)(void *)drv)(rep * 1000 + t, reps[rep][0], (long)(uintptr_t)callee, (long)callee[0], reps[rep][1]);
        printf("store_kinds %s %s: rep=%d r=%ld word=%08x next=%08x\n", where == 0 ? "other-page" : "same-page", tp->name,
               rep, r, callee[0], callee[1]);
      }
    }
  }
  munmap(x, 2 * PAGE);
}

/*
 * 8. Another thread patches code this thread has translated: the thread
 * first writes data in the code's page (caching write access to it), the
 * main thread then runs the code hot, and the thread patches it; the main
 * thread must run the new code after fence.i.
 */
static volatile int phase;
static u32 *shared_code;

static void wait_phase(int p) {
  while (__atomic_load_n(&phase, __ATOMIC_ACQUIRE) != p) sched_yield();
}

static void *patcher(void *arg) {
  int round = (int)(intptr_t)arg;
  volatile u64 *data = (volatile u64 *)(void *)((char *)shared_code + 2048);
  data[round % 8] += (u64)round; /* the page is written (not yet code) */
  __atomic_store_n(&phase, 1, __ATOMIC_RELEASE);
  wait_phase(2);
  shared_code[1] = ADDI(A0, A0, round * 17 - 99);
  data[(round + 1) % 8] += 1;
  fence_i();
  long r = call_hot(shared_code, 40); /* the patcher runs it too */
  __atomic_store_n(&phase, 3, __ATOMIC_RELEASE);
  return (void *)(intptr_t)r;
}

static void threads(void) {
  shared_code = map_rwx(NULL, PAGE, 0);
  write_variant(shared_code, 0, 5);
  fence_i();
  for (int round = 0; round < 8; round++) {
    phase = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, patcher, (void *)(intptr_t)round) != 0) {
      printf("threads: pthread_create failed\n");
      return;
    }
    wait_phase(1);
    long before = call_hot(shared_code, 60);
    __atomic_store_n(&phase, 2, __ATOMIC_RELEASE);
    wait_phase(3);
    fence_i();
    long after = call_hot(shared_code, 60);
    void *ret;
    pthread_join(t, &ret);
    printf("threads: round=%d before=%ld after=%ld patcher=%ld\n", round, before, after, (long)(intptr_t)ret);
  }
  u64 sum = 0;
  for (int j = 0; j < 8; j++) sum += ((volatile u64 *)(void *)((char *)shared_code + 2048))[j] * (u64)(j + 1);
  printf("threads: data=%llu\n", (unsigned long long)sum);
  munmap(shared_code, PAGE);
}

/*
 * 9. fork: the child patches its copy of translated code; the parent's
 * copy must keep the old code, then the parent patches its own.
 */
static void forked(void) {
  u32 *code = map_rwx(NULL, PAGE, 0);
  write_variant(code, 0, 21);
  fence_i();
  printf("fork: parent before=%ld\n", call_hot(code, 60));
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    code[1] = ADDI(A0, A0, -21);
    fence_i();
    printf("fork: child patched=%ld\n", call_hot(code, 60));
    write_variant(code, 1, 3);
    fence_i();
    printf("fork: child rewritten=%ld\n", call_hot(code, 60));
    fflush(stdout);
    _exit(0);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  printf("fork: child status=%d parent unchanged=%ld\n", status, call_hot(code, 60));
  code[1] = ADDI(A0, A0, 100);
  fence_i();
  printf("fork: parent patched=%ld\n", call_hot(code, 60));
  munmap(code, PAGE);
}

int main(void) {
  patch_hot();
  patch_self();
  code_and_data();
  remap();
  via_read();
  split_store();
  store_kinds();
  threads();
  forked();
  printf("smc: done\n");
  return 0;
}
