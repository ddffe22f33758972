/**
 * Seeded random-instruction differential fuzzer: tsvm vs qemu-riscv64,
 * three ways. Every generated program runs under QEMU (the oracle) and
 * under tsvm's interpreter (--jit=off), its JIT translating every block at
 * its first run (--jit-threshold=0) and its JIT with the default threshold
 * (which translates the hot loops); each engine's output is compared with
 * QEMU's, and a mismatch names the engines that differ (a JIT bug when the
 * interpreter agrees with QEMU).
 *
 * Each generated program is a sequence of blocks. A block loads random
 * initial values into x1..x30, f0..f31 and fcsr (x31 is reserved: it holds
 * the address of the block's 512-byte scratch buffer), runs random valid
 * instructions (integer ALU/immediate/shift/W, M, Zba/Zbb/Zbs, loads and
 * stores into the scratch buffer including misaligned and compressed
 * forms, AMOs (all nine, .w and .d, including rd = x0 and rs2 = x0) and
 * LR/SC on aligned scratch addresses, F/D arithmetic, conversions,
 * compares, moves and FMA with random static or dynamic rounding modes,
 * csrrw/csrrs/csrrc on fflags/frm/fcsr, forward branches), groups that set
 * up the M extension's edge cases (division by zero, MIN / -1 in 64 and 32
 * bits, mulh/mulhsu/mulhu with negative operands), and counted loops of
 * 50-200 iterations over a few random groups (with forward branches inside
 * and the counter in a register the body never writes) so that translated
 * code runs hot with back edges,
 * then stores x0..x31, f0..f31, fcsr and the scratch buffer and writes
 * them (raw, 1040 bytes) to stdout with the write syscall. The test
 * compares each tsvm engine with QEMU block by block and, on a mismatch,
 * prints the seed, which engines differ (and whether the interpreter
 * agrees with QEMU, i.e. whether it is a JIT bug), the block, its
 * disassembly and the differing state (as hex).
 *
 * FUZZ_SEED overrides the seed; FUZZ_PROGRAMS, FUZZ_BLOCKS and FUZZ_INSNS
 * the size (default 8 programs x 100 blocks x 60 instruction groups: each
 * program runs four times, and translating everything costs the JIT runs
 * far more than interpreting, so the default keeps the file's run time
 * near what it was with 40 programs and one tsvm run each; raise
 * FUZZ_PROGRAMS for a longer campaign); FUZZ_LOOP_CHANCE the chance of a
 * loop group; FUZZ_ENGINES the tsvm engines, a comma-separated subset of
 * interp,jit0,jit (default all three).
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { compileText } from '../helpers/toolchain.js';
import { requireQemu, requireTsvm, runQemu, runTsvm, type RunResult } from '../helpers/guest-run.js';
import { requireTool } from '../helpers/toolchain.js';

const SEED = parseSeed(process.env['FUZZ_SEED'] ?? '0x7595eed1');
const PROGRAMS = Number(process.env['FUZZ_PROGRAMS'] ?? 8);
const BLOCKS = Number(process.env['FUZZ_BLOCKS'] ?? 100);
/**
 * Chance that a group is a loop (about 0.3 loops per block, 30 per
 * program). Each hot loop costs the JIT a translation and V8 a tier-up of
 * the unit holding it, which dominates the run time of the JIT engines.
 */
const LOOP_CHANCE = Number(process.env['FUZZ_LOOP_CHANCE'] ?? 0.005);
const INSNS = Number(process.env['FUZZ_INSNS'] ?? 60);
const CONCURRENCY = Number(process.env['TSVM_TEST_JOBS'] ?? 2);

/** A way of running tsvm: the fuzzer compares each with QEMU. */
interface Engine { key: string; name: string; flags: string[] }
const ALL_ENGINES: readonly Engine[] = [
  { key: 'interp', name: 'tsvm interpreter (--jit=off)', flags: ['--jit=off'] },
  { key: 'jit0', name: 'tsvm jit (--jit-threshold=0)', flags: ['--jit=on', '--jit-threshold=0'] },
  { key: 'jit', name: 'tsvm jit (default threshold)', flags: ['--jit=on'] },
];
const ENGINES = selectEngines(process.env['FUZZ_ENGINES'] ?? 'interp,jit0,jit');

function selectEngines(list: string): Engine[] {
  const keys = list.split(',').map((k) => k.trim()).filter((k) => k !== '');
  const out = keys.map((k) => {
    const e = ALL_ENGINES.find((x) => x.key === k);
    if (e === undefined) throw new Error(`FUZZ_ENGINES: unknown engine ${JSON.stringify(k)} (expected interp, jit0, jit)`);
    return e;
  });
  if (out.length === 0) throw new Error('FUZZ_ENGINES names no engine');
  return out;
}

/** Layout of a block's data: initial state, output state, scratch buffer. */
const STATE = 528; // 32 x regs, 32 f regs, fcsr, pad
const SCRATCH = 512;
const IN_OFF = -2 * STATE; // relative to x31 (the scratch buffer)
const OUT_OFF = -STATE;
const RECORD = STATE + SCRATCH; // bytes written per block

function parseSeed(s: string): number {
  const n = Number(s);
  if (!Number.isFinite(n)) throw new Error(`FUZZ_SEED must be a number, got ${JSON.stringify(s)}`);
  return n >>> 0;
}

/** Small seeded PRNG (sfc32) with helpers. */
class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number, stream: number) {
    this.a = 0x9e3779b9; this.b = seed >>> 0; this.c = stream >>> 0; this.d = 1;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  int(n: number): number { return this.u32() % n; }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)] as T; }
  chance(p: number): boolean { return this.u32() / 4294967296 < p; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
}

const M64 = (1n << 64n) - 1n;
const INT_SPECIAL: readonly bigint[] = [0n, 1n, M64, 1n << 63n, (1n << 63n) - 1n, 0x80000000n, 0x7fffffffn, 0xffffffffn,
  0xffffffff80000000n, 0x100000000n, 63n, 64n, 31n, 32n, 0x7ff8000000000000n, 0xffffffff7fc00000n, 0x8000000000000001n, M64 - 1n];
const F64_SPECIAL: readonly bigint[] = [0n, 1n << 63n, 0x3ff0000000000000n, 0xbff0000000000000n, 0x7ff0000000000000n, 0xfff0000000000000n,
  0x7ff8000000000000n, 0x7ff4000000000000n, 0xfff8000000000001n, 0x0000000000000001n, 0x000fffffffffffffn, 0x7fefffffffffffffn,
  0x4340000000000000n, 0x41e0000000000000n, 0xc3e0000000000000n, 0x3fe0000000000000n, 0x43f0000000000000n];
const F32_SPECIAL: readonly number[] = [0, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000,
  0xffc00001, 0x00000001, 0x007fffff, 0x7f7fffff, 0x4b000000, 0x4f000000, 0xcf000000, 0x3f000000, 0x5f800000];

function intValue(r: Rng): bigint {
  const k = r.int(100);
  if (k < 30) return r.u64();
  if (k < 50) return BigInt.asUintN(64, BigInt(r.range(-16, 16)));
  if (k < 75) return r.pick(INT_SPECIAL);
  if (k < 90) return BigInt.asUintN(64, BigInt.asIntN(32, BigInt(r.u32())));
  return BigInt.asUintN(64, BigInt(r.range(-2048, 2047)) << BigInt(r.int(64)));
}

function fpValue(r: Rng): bigint {
  const k = r.int(100);
  const box = (w: number): bigint => 0xffffffff00000000n | BigInt(w >>> 0);
  if (k < 20) return r.pick(F64_SPECIAL);
  if (k < 40) return box(r.pick(F32_SPECIAL));
  if (k < 55) return box(r.u32());
  if (k < 70) { // a "nice" double: small exponent range
    return (BigInt(r.int(2)) << 63n) | (BigInt(r.range(1000, 1070)) << 52n) | (r.u64() & 0xfffffffffffffn);
  }
  if (k < 80) { // a nice single, boxed
    return box(((r.int(2) << 31) | (r.range(110, 150) << 23) | (r.u32() & 0x7fffff)) >>> 0);
  }
  if (k < 88) return BigInt(r.u32()); // improperly boxed single
  return r.u64();
}

const RMS = ['rne', 'rtz', 'rdn', 'rup', 'rmm', 'dyn'] as const;
const R_OPS = ['add', 'sub', 'sll', 'slt', 'sltu', 'xor', 'srl', 'sra', 'or', 'and', 'addw', 'subw', 'sllw', 'srlw', 'sraw',
  'mul', 'mulh', 'mulhsu', 'mulhu', 'div', 'divu', 'rem', 'remu', 'mulw', 'divw', 'divuw', 'remw', 'remuw',
  'add.uw', 'sh1add', 'sh2add', 'sh3add', 'sh1add.uw', 'sh2add.uw', 'sh3add.uw', 'andn', 'orn', 'xnor', 'max', 'maxu', 'min', 'minu',
  'rol', 'rolw', 'ror', 'rorw', 'bclr', 'bext', 'binv', 'bset'] as const;
const I_OPS = ['addi', 'slti', 'sltiu', 'xori', 'ori', 'andi', 'addiw'] as const;
const SH64 = ['slli', 'srli', 'srai', 'slli.uw', 'rori', 'bclri', 'bexti', 'binvi', 'bseti'] as const;
const SH32 = ['slliw', 'srliw', 'sraiw', 'roriw'] as const;
// ctzw is left out: QEMU 7.2 (the oracle) returns ctz of all 64 bits when the
// low word is zero; tests/programs/zb.c covers ctzw with that corrected.
const UNARY = ['clz', 'clzw', 'ctz', 'cpop', 'cpopw', 'sext.b', 'sext.h', 'zext.h', 'orc.b', 'rev8', 'sext.w', 'zext.w', 'neg', 'not', 'seqz', 'snez'] as const;
const LOADS: readonly [string, number][] = [['lb', 1], ['lbu', 1], ['lh', 2], ['lhu', 2], ['lw', 4], ['lwu', 4], ['ld', 8]];
const STORES: readonly [string, number][] = [['sb', 1], ['sh', 2], ['sw', 4], ['sd', 8]];
const AMOS = ['amoswap', 'amoadd', 'amoxor', 'amoand', 'amoor', 'amomin', 'amomax', 'amominu', 'amomaxu'] as const;
const ORDER = ['', '.aq', '.rl', '.aqrl'] as const;
const F_BIN = ['fadd', 'fsub', 'fmul', 'fdiv'] as const;
const F_NORM = ['fmin', 'fmax', 'fsgnj', 'fsgnjn', 'fsgnjx'] as const;
const F_FMA = ['fmadd', 'fmsub', 'fnmadd', 'fnmsub'] as const;
const F_CMP = ['feq', 'flt', 'fle'] as const;
const BRANCHES = ['beq', 'bne', 'blt', 'bge', 'bltu', 'bgeu'] as const;
const CSRS = ['fflags', 'frm', 'fcsr'] as const;
const DIVS = ['div', 'divu', 'rem', 'remu', 'divw', 'divuw', 'remw', 'remuw'] as const;
const MULS = ['mul', 'mulh', 'mulhsu', 'mulhu', 'mulw'] as const;
const MIN64 = 1n << 63n;
/** Dividends for the division edge cases: MIN (64 and 32 bits, also with junk above a 32-bit MIN), ±1, 0, small. */
const DIVIDENDS: readonly bigint[] = [MIN64, 0xffffffff80000000n, 0x80000000n, 0x1234567880000000n, M64, 1n, 0n, 7n, M64 - 6n, (1n << 63n) - 1n];
/** Divisors: zero (also 32-bit zeros under junk), -1 (64 and 32 bits, also under junk), 1, 2, -2. */
const DIVISORS: readonly bigint[] = [0n, 0x100000000n, 0xdead000000000000n, M64, 0xffffffffn, 0x00000007ffffffffn, 1n, 2n, M64 - 1n];
/** Factors for the high multiplies: negative, MIN, -1, and positive extremes. */
const FACTORS: readonly bigint[] = [M64, MIN64, MIN64 + 1n, M64 - 1n, (1n << 63n) - 1n, 0xffffffff00000000n, 0xffffffffn, 0x80000000n, 2n, 3n, 0n];
/** Loop-closing forms: [counter start given n, step, branch to the loop head]. */
const LOOP_FORMS: readonly [(n: number) => number, number, (c: string, l: string) => string][] = [
  [(n) => n, -1, (c, l) => `bnez ${c}, ${l}`],
  [(n) => -n, 1, (c, l) => `bltz ${c}, ${l}`],
  [(n) => n, -1, (c, l) => `bgtz ${c}, ${l}`],
  [(n) => n, -1, (c, l) => `bne ${c}, x0, ${l}`],
];

/** Generates the instruction groups of one block (a group is never split by a branch). */
class BlockGen {
  private labels = 0;
  /** Registers the current group may read but not write (a loop's counter). */
  private readonly reserved = new Set<string>();
  /** True while generating a loop body (no nested loops, no top-level branches). */
  private inLoop = false;
  constructor(private readonly r: Rng, private readonly blk: number) {}

  /** A register in x`lo`..x`hi` that is not reserved. */
  private free(lo: number, hi: number): string {
    for (;;) {
      const x = `x${this.r.range(lo, hi)}`;
      if (!this.reserved.has(x)) return x;
    }
  }
  /** A writable integer register x1..x30; often x8..x15 to make RVC forms likely. */
  private rd(): string { return this.r.chance(0.35) ? this.free(8, 15) : this.free(1, 30); }
  /** A source register: any of x0..x31. */
  private rs(): string { return `x${this.r.chance(0.05) ? 0 : this.r.chance(0.03) ? 31 : this.r.range(1, 30)}`; }
  private fr(): string { return `f${this.r.chance(0.35) ? this.r.range(8, 15) : this.r.int(32)}`; }
  private rm(): string { return this.r.pick(RMS); }
  private prec(): string { return this.r.chance(0.5) ? 's' : 'd'; }

  group(): string[] {
    const r = this.r;
    if (!this.inLoop && r.chance(LOOP_CHANCE)) return this.loop();
    if (r.chance(0.03)) return this.mEdge();
    const k = r.int(1000);
    if (k < 150) { // R-type, sometimes rd == rs1 for c.add/c.sub/... encodings
      const d = this.rd();
      return [`${r.pick(R_OPS)} ${d}, ${r.chance(0.3) ? d : this.rs()}, ${this.rs()}`];
    }
    if (k < 230) {
      const d = this.rd();
      const op = r.pick(I_OPS);
      const imm = r.chance(0.5) ? r.range(-32, 31) : r.range(-2048, 2047);
      return [`${op} ${d}, ${r.chance(0.4) ? d : this.rs()}, ${imm}`];
    }
    if (k < 280) return [`${r.pick(SH64)} ${this.rd()}, ${this.rs()}, ${r.int(64)}`];
    if (k < 300) return [`${r.pick(SH32)} ${this.rd()}, ${this.rs()}, ${r.int(32)}`];
    if (k < 340) return [`${r.pick(UNARY)} ${this.rd()}, ${this.rs()}`];
    if (k < 355) return [r.chance(0.5) ? `lui ${this.rd()}, ${r.int(1 << 20)}` : `li ${this.rd()}, ${r.range(-32, 31)}`];
    if (k < 420) { // load from scratch, possibly misaligned
      const [op, size] = r.pick(LOADS);
      return [`${op} ${this.rd()}, ${this.off(size)}(x31)`];
    }
    if (k < 470) {
      const [op, size] = r.pick(STORES);
      return [`${op} ${this.rs()}, ${this.off(size)}(x31)`];
    }
    if (k < 490) { // FP load/store
      const size = r.chance(0.5) ? 4 : 8;
      const op = (r.chance(0.5) ? 'fl' : 'fs') + (size === 4 ? 'w' : 'd');
      return [`${op} ${this.fr()}, ${this.off(size)}(x31)`];
    }
    if (k < 510) { // compressed-friendly memory access through x8..x15
      const a = this.free(8, 15);
      const size = r.chance(0.5) ? 4 : 8;
      const base = r.range(0, (SCRATCH - 128) / 8) * 8;
      const off = r.range(0, 15) * size;
      const v = r.chance(0.2) ? `f${r.range(8, 15)}` : this.free(8, 15);
      const op = v.startsWith('f') ? (r.chance(0.5) ? 'fld' : 'fsd') : (r.chance(0.5) ? 'l' : 's') + (size === 4 ? 'w' : 'd');
      return [`addi ${a}, x31, ${base}`, `${op} ${v}, ${off}(${a})`];
    }
    if (k < 560) { // AMO; rd = x0 (no result) and rs2 = x0 (a zero operand) are made likely
      const a = this.free(1, 30);
      const w = r.chance(0.5) ? 'w' : 'd';
      const off = r.range(0, SCRATCH / 8 - 1) * 8 + (w === 'w' && r.chance(0.5) ? 4 : 0);
      const d = r.chance(0.2) ? 'x0' : this.rd(), v = r.chance(0.2) ? 'x0' : this.rs();
      return [`addi ${a}, x31, ${off}`, `${r.pick(AMOS)}.${w}${r.pick(ORDER)} ${d}, ${v}, (${a})`];
    }
    if (k < 585) return this.lrsc();
    if (k < 620) return [`${r.pick(F_BIN)}.${this.prec()} ${this.fr()}, ${this.fr()}, ${this.fr()}, ${this.rm()}`];
    if (k < 635) return [`fsqrt.${this.prec()} ${this.fr()}, ${this.fr()}, ${this.rm()}`];
    if (k < 665) return [`${r.pick(F_NORM)}.${this.prec()} ${this.fr()}, ${this.fr()}, ${this.fr()}`];
    if (k < 695) return [`${r.pick(F_FMA)}.${this.prec()} ${this.fr()}, ${this.fr()}, ${this.fr()}, ${this.fr()}, ${this.rm()}`];
    if (k < 715) return [`${r.pick(F_CMP)}.${this.prec()} ${this.rd()}, ${this.fr()}, ${this.fr()}`];
    if (k < 725) return [`fclass.${this.prec()} ${this.rd()}, ${this.fr()}`];
    if (k < 760) { // float -> int
      return [`fcvt.${r.pick(['w', 'wu', 'l', 'lu'])}.${this.prec()} ${this.rd()}, ${this.fr()}, ${this.rm()}`];
    }
    if (k < 790) { // int -> float (fcvt.d.w/wu are exact and take no rounding mode)
      const p = this.prec();
      const src = r.pick(['w', 'wu', 'l', 'lu']);
      const exact = p === 'd' && (src === 'w' || src === 'wu');
      return [`fcvt.${p}.${src} ${this.fr()}, ${this.rs()}${exact ? '' : ', ' + this.rm()}`];
    }
    if (k < 805) return [r.chance(0.5) ? `fcvt.s.d ${this.fr()}, ${this.fr()}, ${this.rm()}` : `fcvt.d.s ${this.fr()}, ${this.fr()}`];
    if (k < 840) {
      const op = r.pick(['fmv.x.w', 'fmv.w.x', 'fmv.x.d', 'fmv.d.x']);
      return [op.startsWith('fmv.x') ? `${op} ${this.rd()}, ${this.fr()}` : `${op} ${this.fr()}, ${this.rs()}`];
    }
    if (k < 900) return this.csr();
    if (k < 950) return ['BRANCH'];
    if (k < 960) return [r.pick(['fence', 'fence.i', 'nop', 'fence rw, rw'])];
    return [`auipc ${this.rd()}, ${r.int(1 << 20)}`];
  }

  /** An offset into the scratch buffer for an access of `size` bytes (misaligned a third of the time). */
  private off(size: number): number {
    const max = SCRATCH - size;
    return this.r.chance(0.33) ? this.r.range(0, max) : this.r.range(0, Math.floor(max / size)) * size;
  }

  private lrsc(): string[] {
    const r = this.r;
    const a = this.free(1, 30);
    const w = r.chance(0.5) ? 'w' : 'd';
    const off = r.range(0, SCRATCH / 8 - 1) * 8;
    if (r.chance(0.15)) return [`addi ${a}, x31, ${off}`, `sc.${w}${r.pick(ORDER)} ${this.rd()}, ${this.rs()}, (${a})`]; // no reservation: fails
    const other = (): string => { let x; do x = this.rd(); while (x === a); return x; };
    const out = [`addi ${a}, x31, ${off}`, `lr.${w}${r.pick(ORDER)} ${other()}, (${a})`];
    for (let i = r.int(3); i > 0; i--) out.push(`${r.pick(['add', 'xor', 'sub', 'addw'])} ${other()}, ${this.rs()}, ${this.rs()}`);
    out.push(`sc.${w}${r.pick(ORDER)} ${r.chance(0.1) ? 'x0' : this.rd()}, ${this.rs()}, (${a})`);
    return out;
  }

  /** An M-extension edge case: operands loaded with li, then one divide/remainder or multiply. */
  private mEdge(): string[] {
    const r = this.r;
    const a = this.free(1, 30);
    let b: string;
    do b = this.free(1, 30); while (b === a);
    const hex = (v: bigint): string => `0x${v.toString(16)}`;
    if (r.chance(0.5)) {
      const x = r.chance(0.8) ? r.pick(DIVIDENDS) : intValue(r), y = r.chance(0.8) ? r.pick(DIVISORS) : intValue(r);
      return [`li ${a}, ${hex(x)}`, `li ${b}, ${hex(y)}`, `${r.pick(DIVS)} ${this.rd()}, ${a}, ${b}`];
    }
    const x = r.chance(0.7) ? r.pick(FACTORS) : intValue(r), y = r.chance(0.7) ? r.pick(FACTORS) : intValue(r);
    return [`li ${a}, ${hex(x)}`, `li ${b}, ${hex(y)}`, `${r.pick(MULS)} ${this.rd()}, ${a}, ${b}`];
  }

  /**
   * A counted loop of 50-200 iterations over 1-6 random groups (forward
   * branches inside it stay inside it). The counter is reserved while the
   * body is generated, so no group writes it.
   */
  private loop(): string[] {
    const r = this.r;
    const head = `.Ll${this.blk}_${this.labels++}`;
    const n = r.range(50, 200);
    const ctr = r.chance(0.4) ? this.free(8, 15) : this.free(1, 30);
    const [start, step, close] = r.pick(LOOP_FORMS);
    this.reserved.add(ctr);
    this.inLoop = true;
    const out = [`li ${ctr}, ${start(n)}`, `${head}:`];
    for (let i = r.range(1, 6); i > 0; i--) {
      if (r.chance(0.2)) {
        const skip = `.Ls${this.blk}_${this.labels++}`;
        out.push(`${r.pick(BRANCHES)} ${this.rs()}, ${this.rs()}, ${skip}`, ...this.plainGroup(), `${skip}:`);
      } else {
        out.push(...this.plainGroup());
      }
    }
    out.push(`addi ${ctr}, ${ctr}, ${step}`, close(ctr, head));
    this.inLoop = false;
    this.reserved.delete(ctr);
    return out;
  }

  /** A group that is not a top-level branch (for loop bodies). */
  private plainGroup(): string[] {
    for (;;) {
      const g = this.group();
      if (g[0] !== 'BRANCH') return g;
    }
  }

  private csr(): string[] {
    const r = this.r;
    const csr = r.pick(CSRS);
    const t = this.rd();
    switch (r.int(6)) {
      case 0: // csrrw with a value that keeps frm valid (0..3 via the mask; 4 comes from csrrwi)
        if (csr === 'fflags') return [`csrrw ${this.rd()}, fflags, ${this.rs()}`];
        return [`andi ${t}, ${this.rs()}, ${csr === 'frm' ? 3 : 0x7f}`, `csrrw ${this.rd()}, ${csr}, ${t}`];
      case 1: // csrrs: only fflags bits may be set
        if (csr === 'fflags') return [`csrrs ${this.rd()}, fflags, ${this.rs()}`];
        if (csr === 'frm') return [`csrrs ${this.rd()}, frm, x0`];
        return [`andi ${t}, ${this.rs()}, 0x1f`, `csrrs ${this.rd()}, fcsr, ${t}`];
      case 2: return [`csrrc ${this.rd()}, ${csr}, ${this.rs()}`];
      case 3: return [`csrrwi ${this.rd()}, ${csr}, ${csr === 'frm' ? r.int(5) : r.int(32)}`];
      case 4: return [csr === 'frm' ? `csrrci ${this.rd()}, frm, ${r.int(8)}` : `csrrsi ${this.rd()}, ${csr}, ${r.int(32)}`];
      default: return [`csrrci ${this.rd()}, ${csr}, ${r.int(32)}`];
    }
  }

  /** The block body: groups with forward branches/jumps resolved to labels between groups. */
  body(n: number): string[] {
    const groups: string[][] = [];
    for (let i = 0; i < n; i++) groups.push(this.group());
    const pending = new Map<number, string[]>(); // group index -> labels placed before it
    const lines: string[] = [];
    groups.forEach((g, i) => {
      for (const l of pending.get(i) ?? []) lines.push(`${l}:`);
      if (g[0] === 'BRANCH') {
        const label = `.Lb${this.blk}_${this.labels++}`;
        const target = Math.min(n, i + 1 + this.r.int(4));
        pending.set(target, [...(pending.get(target) ?? []), label]);
        lines.push(this.r.chance(0.8) ? `${this.r.pick(BRANCHES)} ${this.rs()}, ${this.rs()}, ${label}` : `jal ${this.rd()}, ${label}`);
      } else {
        lines.push(...g);
      }
    });
    for (const l of pending.get(n) ?? []) lines.push(`${l}:`);
    return lines;
  }
}

/** A generated program: assembly text plus what is needed to explain a mismatch. */
interface FuzzProgram { index: number; seed: number; asm: string; init: bigint[][] }

function programSeed(p: number): number {
  return (Math.imul(SEED ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(p + 1, 0x85ebca77)) >>> 0;
}

function generate(p: number): FuzzProgram {
  const seed = programSeed(p);
  const r = new Rng(seed, p);
  const text: string[] = ['\t.text', '\t.globl _start', '_start:'];
  const data: string[] = ['\t.data', '\t.balign 16'];
  const init: bigint[][] = [];
  for (let b = 0; b < BLOCKS; b++) {
    // initial state: slots 0..31 x regs (0 and 31 unused), 32..63 f regs, 64 fcsr, 65 pad
    const st: bigint[] = [0n];
    for (let i = 1; i <= 30; i++) st.push(intValue(r));
    st.push(0n);
    for (let i = 0; i < 32; i++) st.push(fpValue(r));
    st.push(BigInt((r.int(5) << 5) | r.int(32)), 0n);
    init.push(st);
    data.push(`fz_data_${b}:`);
    for (const v of st) data.push(`\t.quad 0x${v.toString(16)}`);
    data.push(`\t.zero ${STATE}`);
    data.push(`fz_scratch_${b}:`);
    for (let i = 0; i < SCRATCH / 8; i++) data.push(`\t.quad 0x${(r.chance(0.3) ? intValue(r) : r.u64()).toString(16)}`);

    text.push(`fz_blk_${b}:`, `\tla x31, fz_scratch_${b}`);
    text.push(`\tld x1, ${IN_OFF + 64 * 8}(x31)`, '\tfscsr x1');
    for (let i = 0; i < 32; i++) text.push(`\tfld f${i}, ${IN_OFF + (32 + i) * 8}(x31)`);
    for (let i = 1; i <= 30; i++) text.push(`\tld x${i}, ${IN_OFF + i * 8}(x31)`);
    text.push(`fz_body_${b}:`);
    text.push(...new BlockGen(r, b).body(INSNS).map((l) => (l.endsWith(':') ? l : `\t${l}`)));
    text.push(`fz_end_${b}:`);
    for (let i = 1; i <= 31; i++) text.push(`\tsd x${i}, ${OUT_OFF + i * 8}(x31)`);
    for (let i = 0; i < 32; i++) text.push(`\tfsd f${i}, ${OUT_OFF + (32 + i) * 8}(x31)`);
    text.push('\tfrcsr x1', `\tsd x1, ${OUT_OFF + 64 * 8}(x31)`, `\tli x1, ${b}`, `\tsd x1, ${OUT_OFF}(x31)`);
    text.push('\tli a7, 64', '\tli a0, 1', `\taddi a1, x31, ${OUT_OFF}`, `\tli a2, ${RECORD}`, '\tecall');
  }
  text.push('\tli a7, 93', '\tli a0, 0', '\tecall');
  const asm = `/* tsvm fuzz program ${p}, seed ${SEED} (program seed ${seed}) */\n${text.join('\n')}\n${data.join('\n')}\n`;
  return { index: p, seed, asm, init };
}

const hex = (v: bigint): string => v.toString(16).padStart(16, '0');

function slot(buf: Buffer, block: number, i: number): bigint {
  return buf.readBigUInt64LE(block * RECORD + i * 8);
}

function slotName(i: number): string {
  if (i < 32) return `x${i}`;
  if (i < 64) return `f${i - 32}`;
  return 'fcsr';
}

/** Disassembly of one block's random body (objdump between fz_body_N and fz_end_N). */
function disassemble(binary: string, block: number): string {
  try {
    const nm = execFileSync(requireTool('riscv64-linux-gnu-nm', 'binutils-riscv64-linux-gnu'), [binary], { encoding: 'utf8' });
    const addr = (sym: string): string | undefined => nm.split('\n').find((l) => l.endsWith(` ${sym}`))?.split(' ')[0];
    const start = addr(`fz_body_${block}`);
    const stop = addr(`fz_end_${block}`);
    if (start === undefined || stop === undefined) return '(symbols not found)';
    const out = execFileSync(requireTool('riscv64-linux-gnu-objdump', 'binutils-riscv64-linux-gnu'),
      ['-d', '-M', 'numeric', `--start-address=0x${start}`, `--stop-address=0x${stop}`, binary], { encoding: 'utf8' });
    return out.split('\n').filter((l) => /^\s+[0-9a-f]+:/.test(l)).join('\n');
  } catch (e) {
    return `(objdump failed: ${(e as Error).message})`;
  }
}

/**
 * Compares an engine's output with QEMU's block by block; returns a report
 * of the first differing block (naming the engine), or null.
 */
function compare(prog: FuzzProgram, binary: string, engine: Engine, tsvm: RunResult, qemu: RunResult): string | null {
  const nq = Math.floor(qemu.stdout.length / RECORD);
  const nt = Math.floor(tsvm.stdout.length / RECORD);
  const name = engine.name, k = engine.key.padEnd(6);
  for (let b = 0; b < nq; b++) {
    const head = `FUZZ_SEED=${SEED} program ${prog.index} (program seed ${prog.seed}) block ${b}`;
    if (b >= nt) {
      return `${head}: ${name} stopped before writing this block (status ${tsvm.status}, stderr: ${tsvm.stderr.trim().split('\n').slice(-3).join(' | ')})\n` +
        `disassembly:\n${disassemble(binary, b)}`;
    }
    const qa = qemu.stdout.subarray(b * RECORD, (b + 1) * RECORD);
    const ta = tsvm.stdout.subarray(b * RECORD, (b + 1) * RECORD);
    if (qa.equals(ta)) continue;
    const diffs: string[] = [];
    for (let i = 1; i <= 64; i++) {
      if (i === 31) continue; // the reserved scratch base
      const q = slot(qemu.stdout, b, i), t = slot(tsvm.stdout, b, i);
      if (q !== t) diffs.push(`  ${slotName(i).padEnd(4)} ${k} ${hex(t)}  qemu ${hex(q)}  (initial ${hex(prog.init[b]?.[i] ?? 0n)})`);
    }
    for (let off = 0; off < SCRATCH; off += 8) {
      const q = qemu.stdout.readBigUInt64LE(b * RECORD + STATE + off), t = tsvm.stdout.readBigUInt64LE(b * RECORD + STATE + off);
      if (q !== t) diffs.push(`  scratch+${off.toString().padEnd(3)} ${k} ${hex(t)}  qemu ${hex(q)}`);
    }
    return `${head}: ${name}: state differs from qemu\n${diffs.join('\n')}\ndisassembly of the block:\n${disassemble(binary, b)}`;
  }
  if (nt > nq) return `FUZZ_SEED=${SEED} program ${prog.index}: ${name} wrote ${nt} blocks, qemu ${nq}`;
  if (tsvm.status !== qemu.status) return `FUZZ_SEED=${SEED} program ${prog.index}: exit status ${name} ${tsvm.status} vs qemu ${qemu.status}; stderr: ${tsvm.stderr.trim()}`;
  return null;
}

/**
 * The failure report for one program: which engines differ from QEMU and
 * what that points to, then each differing engine's first differing block
 * (an engine whose output equals an engine already reported says so).
 */
function verdict(prog: FuzzProgram, binary: string, runs: { engine: Engine; run: RunResult }[], qemu: RunResult): string | null {
  const reports = runs.map((x) => ({ ...x, report: compare(prog, binary, x.engine, x.run, qemu) }));
  const bad = reports.filter((x) => x.report !== null);
  if (bad.length === 0) return null;
  const good = reports.filter((x) => x.report === null).map((x) => x.engine.name);
  const interp = reports.find((x) => x.engine.key === 'interp');
  const badNames = bad.map((x) => x.engine.name).join(', ');
  let summary: string;
  if (interp !== undefined && interp.report === null) summary = `JIT mismatch: ${badNames} differ(s) from qemu; the interpreter agrees with qemu`;
  else if (good.length === 0) summary = `every tsvm engine differs from qemu (${badNames}): not JIT-specific`;
  else summary = `${badNames} differ(s) from qemu; ${good.join(', ')} agree(s) with qemu`;
  const parts: string[] = [];
  bad.forEach((x, i) => {
    const same = bad.slice(0, i).find((y) => y.run.status === x.run.status && y.run.stdout.equals(x.run.stdout));
    parts.push(same !== undefined ? `${x.engine.name}: output identical to ${same.engine.name}'s` : x.report!);
  });
  return `FUZZ_SEED=${SEED} program ${prog.index}: ${summary}\n\n${parts.join('\n\n')}`;
}

describe(`random-instruction fuzz (FUZZ_SEED=${SEED}, ${PROGRAMS} programs x ${BLOCKS} blocks x ${INSNS} groups; ` +
  `qemu vs ${ENGINES.map((e) => e.key).join(', ')})`, { concurrency: CONCURRENCY }, () => {
  before(() => {
    console.log(`fuzz: FUZZ_SEED=${SEED} (0x${SEED.toString(16)}); set FUZZ_SEED to reproduce or vary`);
  });
  test('emulators are present', () => {
    requireQemu();
    requireTsvm();
  });
  for (let p = 0; p < PROGRAMS; p++) {
    test(`fuzz program ${p}`, { timeout: 240_000 }, async () => {
      const prog = generate(p);
      const binary = compileText(prog.asm, 'S', { name: `fuzz-${SEED}-${p}`, linkage: 'bare', opt: '-O0' });
      const [qemu, ...runs] = await Promise.all([
        runQemu(binary, { timeoutMs: 200_000 }),
        ...ENGINES.map((e) => runTsvm(binary, { tsvmFlags: e.flags, timeoutMs: 200_000 })),
      ]);
      assert.ok(qemu !== undefined);
      assert.equal(qemu.status, 0, `qemu failed on fuzz program ${p} (generator bug?): status ${qemu.status} ${qemu.stderr}`);
      assert.equal(qemu.stdout.length, BLOCKS * RECORD, `qemu output size for program ${p}`);
      const report = verdict(prog, binary, ENGINES.map((engine, i) => ({ engine, run: runs[i]! })), qemu);
      if (report !== null) assert.fail(report);
    });
  }
});
