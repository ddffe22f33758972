/**
 * Harts for the JIT tests: one on flat RAM run by the interpreter, one run
 * by a private `Jit` (never a VM's `JitEngines`, which copy the process default, so TSVM_JIT does not
 * change what a test exercises), with helpers to load code, set registers
 * and compare whole architectural states (BigInt, tests only).
 */
import { GuestRam } from '../../src/memory/guest-ram.js';
import { Hart, ExitReason } from '../../src/cpu/hart.js';
import { FlatTranslator } from '../../src/mmu/flat-translator.js';
import type { PageTranslator } from '../../src/mmu/tlb.js';
import { execute } from '../../src/cpu/interpreter.js';
import { S } from '../../src/cpu/hart-state.js';
import { Jit, type JitOptions } from '../../src/jit/engine.js';
import { r, i, s, b, j, u, OP, OP_32, OP_IMM, OP_IMM_32, LOAD, STORE, AMO, LUI, JALR, SYSTEM } from './asm.js';

/** Where test code is placed. */
export const CODE = 0x1000;
/** A data area tests may use (its own pages, away from the code). */
export const DATA = 0x40000;
/** Default RAM size: 512 KiB, identity-mapped at address 0. */
export const RAM_BYTES = 512 * 1024;

/** A hart on its own RAM, with its engine (null: the interpreter). */
export interface TestHart {
  readonly ram: GuestRam;
  readonly hart: Hart;
  readonly jit: Jit | null;
  /** Label for assertion messages. */
  readonly name: string;
}

/** Options for `makeHart`. */
export interface HartOptions {
  /** RAM size (default RAM_BYTES). */
  ramBytes?: number;
  /** The hart's page translator (default: identity over RAM at address 0). */
  translator?: (ram: GuestRam) => PageTranslator;
}

/** A fresh hart on its own RAM; with `jit`, a private engine with those options is attached. */
export function makeHart(jit?: Partial<JitOptions>, o: HartOptions = {}): TestHart {
  const ram = new GuestRam(o.ramBytes ?? RAM_BYTES);
  const hart = new Hart(ram, o.translator?.(ram) ?? new FlatTranslator(ram, 0));
  if (hart.st.base < 0 || hart.tlb.base < 0) throw new Error('test hart has no CPU slot: the JIT would not run it');
  if (jit === undefined) return { ram, hart, jit: null, name: 'interpreter' };
  const opts: JitOptions = { threshold: jit.threshold ?? 0, cacheBytes: jit.cacheBytes ?? 64 * 1024 * 1024 };
  const engine = new Jit(ram, opts);
  engine.attach(hart);
  return { ram, hart, jit: engine, name: `jit(threshold=${opts.threshold}, cacheBytes=${opts.cacheBytes})` };
}

/** Another hart on the same RAM (identity-mapped), run by the same engine as `t`'s. */
export function addHart(t: TestHart): TestHart {
  const hart = new Hart(t.ram, new FlatTranslator(t.ram, 0));
  if (hart.st.base < 0) throw new Error('no CPU slot left');
  t.jit?.attach(hart);
  return { ram: t.ram, hart, jit: t.jit, name: `${t.name} hart 2` };
}

/** Writes 32-bit instruction words (or, in a `number[]` of halves with `half`, 16-bit parcels) at `addr`. */
export function loadCode(t: TestHart, addr: number, words: readonly number[], half = false): void {
  let a = addr;
  for (const w of words) {
    if (half) { t.ram.dv.setUint16(a, w, true); a += 2; } else { t.ram.dv.setUint32(a, w >>> 0, true); a += 4; }
  }
}

/** Sets integer register i from a BigInt (two's complement, 64 bits). */
export function setX(t: TestHart, i: number, v: bigint): void {
  const m = BigInt.asUintN(64, v);
  t.hart.st.x[2 * i] = Number(m & 0xffffffffn) | 0;
  t.hart.st.x[2 * i + 1] = Number(m >> 32n) | 0;
}

/** Integer register i as a signed BigInt. */
export function getX(t: TestHart, i: number): bigint {
  const x = t.hart.st.x;
  return BigInt.asIntN(64, (BigInt(x[2 * i + 1]! >>> 0) << 32n) | BigInt(x[2 * i]! >>> 0));
}

/** Float register i's raw 64 bits as an unsigned BigInt. */
export function getF(t: TestHart, i: number): bigint {
  const f = t.hart.st.f;
  return (BigInt(f[2 * i + 1]! >>> 0) << 32n) | BigInt(f[2 * i]! >>> 0);
}

/** Sets pc. */
export function setPc(t: TestHart, pc: number): void { t.hart.st.setPc(pc); }

/** Runs `budget` instructions on the hart's engine (the JIT when attached). */
export function step(t: TestHart, budget: number): ExitReason {
  return execute(t.hart, budget);
}

/** Runs slices of `slice` instructions until an exit other than BUDGET (or `max` instructions in all). */
export function runToExit(t: TestHart, slice = 1000, max = 10_000_000): ExitReason {
  const st = t.hart.st, start = st.instret;
  for (;;) {
    const r = step(t, slice);
    if (r !== ExitReason.BUDGET) return r;
    if (st.instret - start >= max) return r;
  }
}

/** The architectural state, in a form `assert.deepEqual` compares and prints well. */
export interface Snapshot {
  exit: ExitReason | null;
  pc: string;
  instret: number;
  x: string[];
  f: string[];
  fflags: number;
  frm: number;
  exitCause: number;
  tval: string;
  exitIlen: number;
  res: number[];
  /** Whatever else a test's script wants compared (device exits, CSRs). */
  extra?: unknown;
}

const hex = (v: bigint): string => '0x' + BigInt.asUintN(64, v).toString(16);

/**
 * Everything the interpreter's contract defines: registers, pc, instret,
 * fcsr, exit fields and the reservation. The exit fields are only
 * meaningful after an exit other than BUDGET, but both engines start from
 * zeroed slots and write them the same way, so they are always compared.
 */
export function snapshot(t: TestHart, exit: ExitReason | null = null): Snapshot {
  const st = t.hart.st, s = st.s;
  const x: string[] = [], f: string[] = [];
  for (let i = 0; i < 32; i++) { x.push(`x${i}=${hex(getX(t, i))}`); f.push(`f${i}=${hex(getF(t, i))}`); }
  return {
    exit, pc: hex(BigInt(st.getPc())), instret: st.instret, x, f, fflags: s[S.FFLAGS]!, frm: s[S.FRM]!,
    exitCause: s[S.EXIT_CAUSE]!, tval: hex((BigInt(s[S.EXIT_TVAL_HI]! >>> 0) << 32n) | BigInt(s[S.EXIT_TVAL_LO]! >>> 0)),
    exitIlen: s[S.EXIT_ILEN]!, res: [s[S.RES_VALID]!, s[S.RES_LO]!, s[S.RES_HI]!, s[S.RES_VAL_LO]!, s[S.RES_VAL_HI]!],
  };
}

/** Index of the first byte where the guest RAMs of `a` and `b` differ, or -1. */
export function ramDiff(a: TestHart, b: TestHart): number {
  const n = Math.min(a.ram.size, b.ram.size), x = a.ram.u8, y = b.ram.u8;
  if (a.ram.size !== b.ram.size) return n;
  for (let k = 0; k < n; k++) if (x[k] !== y[k]) return k;
  return -1;
}

/**
 * One item of a snippet for `assemble`: a 32-bit word; `{ h }`, a 16-bit
 * parcel (a compressed instruction); a string ending in ':', a label; or a
 * function of the item's address and a label lookup (for branch offsets).
 */
export type Item = number | { h: number } | string | ((pc: number, at: (label: string) => number) => number);

/** Assembles `items` placed at `base` into bytes (two passes: labels, then words). */
export function assemble(base: number, items: readonly Item[]): Uint8Array {
  const labels = new Map<string, number>();
  let pc = base;
  for (const it of items) {
    if (typeof it === 'string') {
      if (!it.endsWith(':') || labels.has(it.slice(0, -1))) throw new Error(`bad or duplicate label ${it}`);
      labels.set(it.slice(0, -1), pc);
    } else pc += typeof it === 'object' ? 2 : 4;
  }
  const at = (l: string): number => {
    const a = labels.get(l);
    if (a === undefined) throw new Error(`unknown label ${l}`);
    return a;
  };
  const out = new Uint8Array(pc - base), dv = new DataView(out.buffer);
  pc = base;
  for (const it of items) {
    if (typeof it === 'string') continue;
    if (typeof it === 'object') { dv.setUint16(pc - base, it.h, true); pc += 2; continue; }
    dv.setUint32(pc - base, (typeof it === 'function' ? it(pc, at) : it) >>> 0, true);
    pc += 4;
  }
  return out;
}

/** Copies assembled bytes into guest RAM at `addr`. */
export function loadBytes(t: TestHart, addr: number, bytes: Uint8Array): void {
  t.ram.u8.set(bytes, addr);
}

/** ABI register numbers used by the JIT tests. */
export const RA = 1, SP = 2, T0 = 5, T1 = 6, T2 = 7, S0 = 8, S1 = 9, A0 = 10, A1 = 11, A2 = 12, A3 = 13, A4 = 14,
  A5 = 15, A6 = 16, A7 = 17, T3 = 28, T4 = 29;

/** ebreak (the hart exits with cause 3); tests use it to mark the end of a program. */
export const EBREAK = 0x00100073;

/** Named instructions (built on tests/helpers/asm.ts); label operands give `Item` functions for `assemble`. */
export const rv = {
  addi: (rd: number, rs: number, imm: number): number => i(OP_IMM, 0, rd, rs, imm),
  slli: (rd: number, rs: number, sh: number): number => i(OP_IMM, 1, rd, rs, sh),
  add: (rd: number, a: number, b: number): number => r(OP, 0, 0, rd, a, b),
  sub: (rd: number, a: number, b: number): number => r(OP, 0, 0x20, rd, a, b),
  xor: (rd: number, a: number, b: number): number => r(OP, 4, 0, rd, a, b),
  mul: (rd: number, a: number, b: number): number => r(OP, 0, 1, rd, a, b),
  div: (rd: number, a: number, b: number): number => r(OP, 4, 1, rd, a, b),
  divu: (rd: number, a: number, b: number): number => r(OP, 5, 1, rd, a, b),
  rem: (rd: number, a: number, b: number): number => r(OP, 6, 1, rd, a, b),
  remu: (rd: number, a: number, b: number): number => r(OP, 7, 1, rd, a, b),
  divw: (rd: number, a: number, b: number): number => r(OP_32, 4, 1, rd, a, b),
  remw: (rd: number, a: number, b: number): number => r(OP_32, 6, 1, rd, a, b),
  lui: (rd: number, imm20: number): number => u(LUI, rd, imm20),
  lb: (rd: number, rs: number, imm: number): number => i(LOAD, 0, rd, rs, imm),
  lw: (rd: number, rs: number, imm: number): number => i(LOAD, 2, rd, rs, imm),
  ld: (rd: number, rs: number, imm: number): number => i(LOAD, 3, rd, rs, imm),
  lbu: (rd: number, rs: number, imm: number): number => i(LOAD, 4, rd, rs, imm),
  sb: (rs2: number, rs1: number, imm: number): number => s(STORE, 0, rs1, rs2, imm),
  sh: (rs2: number, rs1: number, imm: number): number => s(STORE, 1, rs1, rs2, imm),
  sw: (rs2: number, rs1: number, imm: number): number => s(STORE, 2, rs1, rs2, imm),
  sd: (rs2: number, rs1: number, imm: number): number => s(STORE, 3, rs1, rs2, imm),
  jalr: (rd: number, rs: number, imm: number): number => i(JALR, 0, rd, rs, imm),
  /** AMO word/doubleword: funct5 (0 add, 1 swap, 2 lr, 3 sc, ...), size 4 or 8. */
  amo: (f5: number, size: 4 | 8, rd: number, addr: number, src: number): number =>
    r(AMO, size === 8 ? 3 : 2, f5 << 2, rd, addr, src),
  /** An OP-FP instruction: funct7, rm, rd, rs1, rs2. */
  fp: (f7: number, rm: number, rd: number, rs1: number, rs2: number): number => r(0x53, rm, f7, rd, rs1, rs2),
  csrrs: (rd: number, csr: number, rs: number): number => i(SYSTEM, 2, rd, rs, csr),
  beq: (a: number, bb: number, label: string): Item => (pc, at) => b(0, a, bb, at(label) - pc),
  bne: (a: number, bb: number, label: string): Item => (pc, at) => b(1, a, bb, at(label) - pc),
  blt: (a: number, bb: number, label: string): Item => (pc, at) => b(4, a, bb, at(label) - pc),
  bltu: (a: number, bb: number, label: string): Item => (pc, at) => b(6, a, bb, at(label) - pc),
  jal: (rd: number, label: string): Item => (pc, at) => j(rd, at(label) - pc),
  /** jal to an absolute address. */
  jalAbs: (rd: number, target: number): Item => (pc) => j(rd, target - pc),
};

/** lui + addi loading a sign-extended 32-bit constant into rd. */
export function li(rd: number, v: number): number[] {
  const hi = ((v + 0x800) >> 12) & 0xfffff, lo = (v << 20) >> 20;
  return [u(LUI, rd, hi), i(OP_IMM_32, 0, rd, rd, lo)];
}
