/**
 * The JIT's inline F/D fast paths (src/jit/codegen-fp.ts) against the
 * interpreter's softfloat execution unit (execFp, itself checked against
 * QEMU by tests/diff/fp-qemu.test.ts), bit for bit: result registers and
 * fflags, for random and adversarial operands, with NX preset (the fast
 * path) and clear (the helper), under RNE and other rounding modes.
 *
 * The fused multiply-adds get operands built to land on and near rounding
 * midpoints, where the error-free-transformation shortcut must give way to
 * softfloat. Seeded: set JIT_FP_SEED to vary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestRam } from '../../src/memory/guest-ram.js';
import { Hart } from '../../src/cpu/hart.js';
import { HartState, S } from '../../src/cpu/hart-state.js';
import { FlatTranslator } from '../../src/mmu/flat-translator.js';
import { execFp } from '../../src/cpu/exec-fp.js';
import { Jit } from '../../src/jit/engine.js';
import { Prng } from '../helpers/prng.js';

const SEED = Number(process.env.JIT_FP_SEED ?? 0x3f9d17);
console.log(`# jit-fp: JIT_FP_SEED=${SEED}`);

const CODE = 0x1000, ECALL = 0x00000073;
const opFp = (f5: number, fmt: number, rs2: number, rs1: number, rm: number, rd: number): number =>
  ((f5 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | 0x53) >>> 0;
const fma = (op: number, fmt: number, rs3: number, rs2: number, rs1: number, rm: number, rd: number): number =>
  ((rs3 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | op) >>> 0;

/** One JIT hart (threshold 0) on flat RAM. */
class Rig {
  readonly ram = new GuestRam(1 << 16);
  readonly hart = new Hart(this.ram, new FlatTranslator(this.ram, 0));
  readonly jit = new Jit(this.ram, { threshold: 0, cacheBytes: 64 << 20 });
  readonly ref = new HartState();
  constructor() { this.jit.attach(this.hart); }

  /** Puts `insn; ecall` at CODE (dropping old translations). */
  load(insn: number): void {
    this.jit.flush();
    this.ram.dv.setUint32(CODE, insn, true);
    this.ram.dv.setUint32(CODE + 4, ECALL, true);
  }

  /** Runs the instruction on the JIT and on execFp from the same state; returns a mismatch or null. */
  check(insn: number, f: [number, number][], xs: [number, number], fflags: number, frm: number): string | null {
    const st = this.hart.st;
    for (let i = 0; i < 4; i++) {
      st.f[2 * (i + 1)] = f[i]![0]; st.f[2 * (i + 1) + 1] = f[i]![1];
      this.ref.f[2 * (i + 1)] = f[i]![0]; this.ref.f[2 * (i + 1) + 1] = f[i]![1];
    }
    st.x[20] = xs[0]; st.x[21] = xs[1]; this.ref.x[20] = xs[0]; this.ref.x[21] = xs[1];
    st.x[22] = 0; st.x[23] = 0; this.ref.x[22] = 0; this.ref.x[23] = 0;
    st.s[S.FFLAGS] = fflags; this.ref.s[S.FFLAGS] = fflags;
    st.s[S.FRM] = frm; this.ref.s[S.FRM] = frm;
    st.setPc(CODE);
    this.jit.run(this.hart, 1);
    const refIll = execFp(this.ref, insn) < 0;
    const jitIll = st.getPc() === CODE; // an illegal instruction leaves pc on it
    if (refIll !== jitIll) return `illegal: jit ${jitIll} ref ${refIll}`;
    if (refIll) return null;
    for (let r = 1; r <= 4; r++) {
      if (st.f[2 * r] !== this.ref.f[2 * r] || st.f[2 * r + 1] !== this.ref.f[2 * r + 1]) {
        return `f${r}: jit ${hex(st.f[2 * r + 1]!, st.f[2 * r]!)} ref ${hex(this.ref.f[2 * r + 1]!, this.ref.f[2 * r]!)}`;
      }
    }
    if (st.s[S.FFLAGS] !== this.ref.s[S.FFLAGS]) return `fflags: jit ${st.s[S.FFLAGS]} ref ${this.ref.s[S.FFLAGS]}`;
    if (st.x[22] !== this.ref.x[22] || st.x[23] !== this.ref.x[23]) return `x11: jit ${hex(st.x[23]!, st.x[22]!)} ref ${hex(this.ref.x[23]!, this.ref.x[22]!)}`;
    return null;
  }
}

function hex(hi: number, lo: number): string {
  return '0x' + (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

const scratch = new DataView(new ArrayBuffer(8));
function bitsOf(v: number): [number, number] {
  scratch.setFloat64(0, v, true);
  return [scratch.getInt32(0, true), scratch.getInt32(4, true)];
}
function boxS(v: number): [number, number] {
  scratch.setFloat32(0, v, true);
  return [scratch.getInt32(0, true), -1];
}

/** Doubles that stress the guards: specials, boundaries, small integers, random bit patterns, random normals. */
function double(p: Prng): number {
  switch (p.int(8)) {
    case 0: return [0, -0, Infinity, -Infinity, NaN, 2.2250738585072014e-308, -2.2250738585072014e-308, 5e-324,
      1.7976931348623157e308, 1, -1, 0.5, 3][p.int(13)]!;
    case 1: return (p.int(2001) - 1000) * 2 ** (p.int(40) - 20);
    case 2: { scratch.setBigUint64(0, p.next64(), true); return scratch.getFloat64(0, true); }
    case 3: return (1 + p.int(1 << 30) / 2 ** 30) * 2 ** (p.int(2100) - 1075) * (p.int(2) ? 1 : -1);
    default: return (1 + Number(p.next64() >> 11n) / 2 ** 53) * 2 ** (p.int(64) - 32) * (p.int(2) ? 1 : -1);
  }
}

test('inline F/D arithmetic equals softfloat (results and fflags)', () => {
  const p = new Prng(SEED), rig = new Rig();
  const bad: string[] = [];
  const ops: [string, number][] = [];
  for (const [name, f5] of [['fadd', 0], ['fsub', 1], ['fmul', 2], ['fdiv', 3]] as const) {
    for (const rm of [0, 7]) { ops.push([`${name}.d rm${rm}`, opFp(f5, 1, 2, 1, rm, 4)]); ops.push([`${name}.s rm${rm}`, opFp(f5, 0, 2, 1, rm, 4)]); }
  }
  ops.push(['fsqrt.d', opFp(0x0b, 1, 0, 1, 7, 4)], ['fsqrt.s', opFp(0x0b, 0, 0, 1, 0, 4)]);
  for (const rm of [0, 1, 2]) ops.push([`fsgnj.d ${rm}`, opFp(0x04, 1, 2, 1, rm, 4)]);
  for (const rm of [0, 1, 2]) ops.push([`fcmp.d ${rm}`, opFp(0x14, 1, 2, 1, rm, 11)]);
  ops.push(['fmv.x.d', opFp(0x1c, 1, 0, 1, 0, 11)], ['fmv.d.x', opFp(0x1e, 1, 0, 10, 0, 4)]);
  ops.push(['fcvt.d.w', opFp(0x1a, 1, 0, 10, 7, 4)], ['fcvt.d.wu', opFp(0x1a, 1, 1, 10, 7, 4)]);
  for (const [name, insn] of ops) {
    rig.load(insn);
    for (let k = 0; k < 10000 && bad.length < 10; k++) {
      const single = (insn >>> 25 & 3) === 0;
      const f: [number, number][] = [0, 1, 2, 3].map(() => single ? (p.int(10) === 0 ? bitsOf(double(p)) : boxS(double(p))) : bitsOf(double(p)));
      const xs = bitsOf(double(p));
      const fflags = p.int(4) === 0 ? p.int(32) : 1 | (p.int(2) ? 0 : p.int(32));
      const frm = p.int(5) === 0 ? p.int(5) : 0;
      const m = rig.check(insn, f, xs, fflags, frm);
      if (m !== null) bad.push(`${name} #${k}: ${m} (operands ${f.map(([lo, hi]) => hex(hi, lo)).join(' ')})`);
    }
  }
  assert.deepEqual(bad, [], `JIT_FP_SEED=${SEED}`);
});

test('inline fused multiply-add equals softfloat, including operands at rounding midpoints', () => {
  const p = new Prng(SEED + 1), rig = new Rig();
  const bad: string[] = [];
  let n = 0;
  for (const op of [0x43, 0x47, 0x4b, 0x4f]) {
    for (const rm of [0, 7]) {
      rig.load(fma(op, 1, 3, 2, 1, rm, 4));
      for (let k = 0; k < 80000 && bad.length < 10; k++, n++) {
        let a: number, b: number, c: number;
        const kind = p.int(4);
        if (kind === 0) { a = double(p); b = double(p); c = double(p); } else {
          // a*b has up to 2*27 significant bits: c = -round(a*b) + a small multiple of the
          // product's ulp puts the exact sum on or next to a midpoint.
          a = (1 + p.int(1 << 26) / 2 ** 26) * 2 ** (p.int(20) - 10);
          b = (1 + p.int(1 << 26) / 2 ** 26) * 2 ** (p.int(20) - 10);
          const prod = a * b, ulp = 2 ** (Math.floor(Math.log2(Math.abs(prod))) - 52);
          c = kind === 1 ? -prod + (p.int(9) - 4) * ulp / 2 : kind === 2 ? (p.int(2001) - 1000) * ulp / 4 : prod * 2 ** (p.int(120) - 60);
        }
        const fflags = p.int(8) === 0 ? 0 : 1;
        const m = rig.check(fma(op, 1, 3, 2, 1, rm, 4), [bitsOf(a), bitsOf(b), bitsOf(c), [0, 0]], [0, 0], fflags, p.int(6) === 0 ? 1 : 0);
        if (m !== null) bad.push(`op 0x${op.toString(16)} rm${rm} #${k}: ${m} (a=${a} b=${b} c=${c})`);
      }
    }
  }
  assert.ok(n >= 100000 || bad.length > 0);
  assert.deepEqual(bad, [], `JIT_FP_SEED=${SEED}`);
});
