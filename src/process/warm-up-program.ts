/**
 * A tiny static riscv64 Linux program, built in memory, that a warm spare
 * of the process VM runs once before its container arrives (cli/await-argv.ts),
 * so that V8 has compiled the process VM's hot paths (the ELF loader, the
 * interpreter's common instructions, compressed ones included, the load
 * and store paths, the system-call dispatcher and, after enough loop
 * iterations, the JIT's dispatcher and one translated unit) with feedback
 * from the process VM's own objects. The first guest in a Node process ran
 * 2-3 times slower than the second (`busybox true`, in one process); a
 * container's short command is that first guest.
 *
 * The program calls a leaf function in a loop of loads, stores, ALU, M
 * and compressed instructions, then makes a few harmless system calls
 * (brk, getpid, gettid, uname, clock_gettime) and exits with status 0. It
 * touches no file and writes nothing.
 *
 * Encodings: unprivileged ISA chapters 2 (RV32I), 4 (RV64I), 13 (M) and
 * 16 ("C", Table 16.5-16.7 for the compressed formats); Linux's generic
 * system-call numbers (asm-generic/unistd.h); ELF64 gABI headers.
 */
import { bType, iType, jType, rType, sType } from '../cpu/decode-compressed.js';

/** Register numbers (psABI names). */
const ZERO = 0, RA = 1, SP = 2, T0 = 5, T1 = 6, T2 = 7, S0 = 8, A0 = 10, A1 = 11, A2 = 12, A3 = 13, A4 = 14, A5 = 15, A6 = 16, A7 = 17, T3 = 28, T4 = 29, T5 = 30;
/** Major opcodes (unprivileged ISA Table 70). */
const OP_IMM = 0x13, OP_IMM_32 = 0x1b, OP = 0x33, OP_32 = 0x3b, LOAD = 0x03, STORE = 0x23, AUIPC = 0x17, SYSTEM = 0x73;
/** System calls used (asm-generic/unistd.h). */
const SYS_BRK = 214, SYS_GETPID = 172, SYS_GETTID = 178, SYS_UNAME = 160, SYS_CLOCK_GETTIME = 113, SYS_EXIT_GROUP = 94;
/** Loop iterations: past the process VM's JIT threshold (1,000), so the loop is translated once. */
export const WARM_UP_ITERATIONS = 1500;
/** Where the image is loaded, and the ELF and program header sizes (ELF64). */
const BASE = 0x10000, EHDR = 64, PHDR = 56;

/** c.li rd, imm (C1, funct3 010). */
export function cLi(rd: number, imm: number): number { return (0b010 << 13) | (((imm >> 5) & 1) << 12) | (rd << 7) | ((imm & 0x1f) << 2) | 0b01; }
/** c.addi rd, imm (C1, funct3 000). */
export function cAddi(rd: number, imm: number): number { return (((imm >> 5) & 1) << 12) | (rd << 7) | ((imm & 0x1f) << 2) | 0b01; }
/** c.mv rd, rs2 (C2, funct4 1000). */
export function cMv(rd: number, rs2: number): number { return (0b1000 << 12) | (rd << 7) | (rs2 << 2) | 0b10; }
/** c.add rd, rs2 (C2, funct4 1001). */
export function cAdd(rd: number, rs2: number): number { return (0b1001 << 12) | (rd << 7) | (rs2 << 2) | 0b10; }
/** c.jr rs1 (C2, funct4 1000, rs2 0). */
export function cJr(rs1: number): number { return (0b1000 << 12) | (rs1 << 7) | 0b10; }
/** c.ldsp rd, uimm(sp) (C2, funct3 011; uimm[5] at 12, uimm[4:3] at 6:5, uimm[8:6] at 4:2). */
export function cLdsp(rd: number, uimm: number): number {
  return (0b011 << 13) | (((uimm >> 5) & 1) << 12) | (rd << 7) | (((uimm >> 3) & 3) << 5) | (((uimm >> 6) & 7) << 2) | 0b10;
}
/** c.sdsp rs2, uimm(sp) (C2, funct3 111; uimm[5:3] at 12:10, uimm[8:6] at 9:7). */
export function cSdsp(rs2: number, uimm: number): number {
  return (0b111 << 13) | (((uimm >> 3) & 7) << 10) | (((uimm >> 6) & 7) << 7) | (rs2 << 2) | 0b10;
}

/** The program's ELF image (see the module comment). */
export function warmUpElf(): Uint8Array {
  const code: number[] = []; // bytes
  const at = (): number => code.length;
  const w32 = (x: number): void => { for (let i = 0; i < 4; i++) code.push((x >>> (8 * i)) & 0xff); };
  const w16 = (x: number): void => { code.push(x & 0xff, (x >> 8) & 0xff); };
  const addi = (rd: number, rs1: number, imm: number): void => w32(iType(imm, rs1, 0, rd, OP_IMM));
  const op = (f7: number, f3: number, rd: number, rs1: number, rs2: number): void => w32(rType(f7, rs2, rs1, f3, rd, OP));
  const ecall = (nr: number): void => { addi(A7, ZERO, nr); w32(SYSTEM); };

  // func: a0 = (a0 * t1 + a1) ^ t0; returns with c.jr ra.
  const func = at();
  op(1, 0, A0, A0, T1); // mul
  op(0, 0, A0, A0, A1); // add
  op(0, 4, A0, A0, T0); // xor
  w16(cJr(RA));

  const start = at();
  w16(cLi(T1, 3));
  w16(cLi(A1, 7));
  addi(T0, ZERO, 0x55);
  addi(S0, ZERO, WARM_UP_ITERATIONS);
  addi(SP, SP, -512);
  const loop = at();
  w16(cMv(A0, S0));
  w32(jType(func - at(), RA)); // jal ra, func
  w16(cSdsp(A0, 8));
  w16(cLdsp(A2, 8));
  w32(sType(16, A2, SP, 2, STORE)); w32(iType(16, SP, 2, A3, LOAD)); // sw, lw
  w32(sType(20, A3, SP, 1, STORE)); w32(iType(20, SP, 5, A4, LOAD)); // sh, lhu
  w32(sType(24, A4, SP, 0, STORE)); w32(iType(24, SP, 4, A5, LOAD)); // sb, lbu
  w32(sType(32, A5, SP, 3, STORE)); w32(iType(32, SP, 3, A6, LOAD)); // sd, ld
  w32(iType(3, A6, 1, A7, OP_IMM)); // slli
  w32(iType(1, A7, 5, A7, OP_IMM)); // srli
  w32(iType(0x400 | 1, A7, 5, A7, OP_IMM)); // srai
  op(0x20, 0, A7, A7, A6); // sub
  op(0, 7, A7, A7, T0); // and
  op(0, 6, A7, A7, A1); // or
  op(0, 3, T2, A7, A6); // sltu
  op(0, 2, T2, A7, A6); // slt
  w32(iType(1, A7, 0, A7, OP_IMM_32)); // addiw
  w32(rType(0, A6, A7, 0, A7, OP_32)); // addw
  op(1, 5, T3, A6, T1); // divu
  op(1, 7, T4, A6, T1); // remu
  w16(cAdd(A7, A6));
  w32(AUIPC | (T5 << 7)); // auipc t5, 0
  w16(cAddi(S0, -1));
  w32(bType(loop - at(), ZERO, S0, 1)); // bne s0, zero, loop

  addi(A0, ZERO, 0); ecall(SYS_BRK);
  ecall(SYS_GETPID);
  ecall(SYS_GETTID);
  addi(A0, SP, 64); ecall(SYS_UNAME);
  addi(A0, ZERO, 1); addi(A1, SP, 48); ecall(SYS_CLOCK_GETTIME); // CLOCK_MONOTONIC
  addi(A0, ZERO, 0); ecall(SYS_EXIT_GROUP);

  const size = EHDR + PHDR + code.length;
  const elf = new Uint8Array(size);
  const dv = new DataView(elf.buffer);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0); // ELFMAG, ELFCLASS64, ELFDATA2LSB, EV_CURRENT
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 243, true); // EM_RISCV
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, BigInt(BASE + EHDR + PHDR + start), true); // e_entry
  dv.setBigUint64(32, BigInt(EHDR), true); // e_phoff
  dv.setUint32(48, 0x5, true); // e_flags: EF_RISCV_RVC | EF_RISCV_FLOAT_ABI_DOUBLE (psABI)
  dv.setUint16(52, EHDR, true); dv.setUint16(54, PHDR, true); dv.setUint16(56, 1, true);
  const p = EHDR;
  dv.setUint32(p, 1, true); dv.setUint32(p + 4, 5, true); // PT_LOAD, PF_R | PF_X
  dv.setBigUint64(p + 16, BigInt(BASE), true); dv.setBigUint64(p + 24, BigInt(BASE), true);
  dv.setBigUint64(p + 32, BigInt(size), true); dv.setBigUint64(p + 40, BigInt(size), true);
  dv.setBigUint64(p + 48, 0x1000n, true);
  elf.set(code, EHDR + PHDR);
  return elf;
}
