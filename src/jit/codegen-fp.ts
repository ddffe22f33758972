/**
 * Inline fast paths for F/D instructions in generated code.
 *
 * RISC-V F/D results must be bit-exact and accrue exact fflags; wasm's
 * float arithmetic is IEEE 754 round-to-nearest-even but has no flags. So
 * an arithmetic instruction runs inline only when the flags it could raise
 * are provably nothing new:
 *
 * - fflags.NX is already set (inexactness adds nothing — fflags accrue) and
 *   the rounding mode is RNE (static, or DYN with frm = RNE);
 * - no operand or result is NaN or infinite (which rules out NV, DZ and OF);
 * - the result is normal and not at the smallest normal (no UF: RISC-V
 *   detects tininess after rounding), or it is an exact zero (add/sub).
 *
 * fmadd/fmsub/fnmsub/fnmadd.d compute the exact a*b+c with error-free
 * transformations (Veltkamp/Dekker product, TwoSum) as r + z + tw, where r
 * is a rounded double: r is the correctly rounded fused result when the
 * leftover terms provably cannot cross a rounding boundary; otherwise the
 * interpreter's softfloat runs. Anything that
 * fails a check falls back to the helper, which computes from the
 * untouched operands. Sign injection, moves and int32 conversions raise no
 * flags and are always inline.
 */
import { type Code, Op, I32 } from './wasm-writer.js';
import { S } from '../cpu/hart-state.js';

/** What `emitFpFast` emitted. */
export const enum FpFast {
  /** Nothing: use the helper. */
  NONE = 0,
  /** The whole instruction. */
  DONE = 1,
  /** A fast path leaving an i32 on the stack: 1 if it completed, 0 if the helper must run. */
  COND = 2,
}

/** What the F/D fast paths need from the code generator. */
export interface FpCtx {
  c: Code;
  /** Local holding the hart-state base. */
  st: number;
  /** f64 scratch locals (at least 10) and f32 scratch locals (at least 3). */
  f64: number[];
  f32: number[];
  getX(r: number): void;
  setX(r: number): void;
}

const F_BASE = 256;
const FFLAGS_CELL = 512 + 4 * S.FFLAGS;
const FRM_CELL = 512 + 4 * S.FRM;
/** Smallest normal double and single (IEEE 754 binary64/binary32). */
const MIN_NORMAL_D = 2.2250738585072014e-308, MIN_NORMAL_S = 1.1754943508222875e-38;
/** Veltkamp split constant 2^27 + 1 for binary64. */
const SPLIT = 134217729;

/** Pushes "NX already set and the rounding mode is RNE" (rm 7 = DYN reads frm). */
function flagsOk(x: FpCtx, rm: number): void {
  const c = x.c;
  c.local(Op.local_get, x.st); c.mem(Op.i32_load, FFLAGS_CELL); c.i32(1); c.op(Op.i32_and);
  if (rm === 7) { c.local(Op.local_get, x.st); c.mem(Op.i32_load, FRM_CELL); c.op(Op.i32_eqz); c.op(Op.i32_and); }
}

/** Pushes whether f[r] holds a NaN-boxed single (upper 32 bits all ones, F spec §12.2). */
function boxed(x: FpCtx, r: number): void {
  x.c.local(Op.local_get, x.st); x.c.mem(Op.i32_load, F_BASE + 8 * r + 4); x.c.i32(-1); x.c.op(Op.i32_eq);
}

/** Pushes whether local `l` (f64) is finite with |v| > the smallest normal (or zero when `zeroOk`). */
function normalD(x: FpCtx, l: number, zeroOk: boolean): void {
  const c = x.c;
  c.local(Op.local_get, l); c.op(Op.f64_abs); c.f64(MIN_NORMAL_D); c.op(Op.f64_gt);
  c.local(Op.local_get, l); c.op(Op.f64_abs); c.f64(Infinity); c.op(Op.f64_lt); c.op(Op.i32_and);
  if (zeroOk) { c.local(Op.local_get, l); c.f64(0); c.op(Op.f64_eq); c.op(Op.i32_or); }
}

function normalS(x: FpCtx, l: number, zeroOk: boolean): void {
  const c = x.c;
  c.local(Op.local_get, l); c.op(Op.f32_abs); c.f32(MIN_NORMAL_S); c.op(Op.f32_gt);
  c.local(Op.local_get, l); c.op(Op.f32_abs); c.f32(Infinity); c.op(Op.f32_lt); c.op(Op.i32_and);
  if (zeroOk) { c.local(Op.local_get, l); c.f32(0); c.op(Op.f32_eq); c.op(Op.i32_or); }
}

/** fadd/fsub/fmul/fdiv/fsqrt: the guarded inline form. */
function arith(x: FpCtx, k: number, dbl: boolean, rd: number, rs1: number, rs2: number, rm: number): FpFast {
  const c = x.c, [fa, fb, fr] = dbl ? [x.f64[0]!, x.f64[1]!, x.f64[2]!] : [x.f32[0]!, x.f32[1]!, x.f32[2]!];
  const sqrt = k === 0x0b;
  flagsOk(x, rm);
  if (!dbl) { boxed(x, rs1); c.op(Op.i32_and); if (!sqrt) { boxed(x, rs2); c.op(Op.i32_and); } }
  c.open(Op.if, I32);
  c.local(Op.local_get, x.st); c.mem(dbl ? Op.f64_load : Op.f32_load, F_BASE + 8 * rs1); c.local(Op.local_set, fa);
  if (!sqrt) { c.local(Op.local_get, x.st); c.mem(dbl ? Op.f64_load : Op.f32_load, F_BASE + 8 * rs2); c.local(Op.local_set, fb); }
  c.local(Op.local_get, fa);
  if (!sqrt) c.local(Op.local_get, fb);
  const op = sqrt ? (dbl ? Op.f64_sqrt : Op.f32_sqrt) : k === 0 ? (dbl ? Op.f64_add : Op.f32_add)
    : k === 1 ? (dbl ? Op.f64_sub : Op.f32_sub) : k === 2 ? (dbl ? Op.f64_mul : Op.f32_mul) : (dbl ? Op.f64_div : Op.f32_div);
  c.op(op); c.local(Op.local_set, fr);
  // Exact zeros: x - x and sqrt(±0). A zero product or quotient may have underflowed.
  if (dbl) normalD(x, fr, k <= 1 || sqrt); else normalS(x, fr, k <= 1 || sqrt);
  c.open(Op.if, I32);
  c.local(Op.local_get, x.st); c.local(Op.local_get, fr); c.mem(dbl ? Op.f64_store : Op.f32_store, F_BASE + 8 * rd);
  if (!dbl) { c.local(Op.local_get, x.st); c.i32(-1); c.mem(Op.i32_store, F_BASE + 8 * rd + 4); }
  c.i32(1);
  c.op(Op.else); c.i32(0); c.op(Op.end);
  c.op(Op.else); c.i32(0); c.op(Op.end);
  return FpFast.COND;
}

/** Splits local `v` into hi (local h) and lo (local l) halves of 26/27 bits (Veltkamp). */
function split(x: FpCtx, v: number, h: number, l: number): void {
  const c = x.c, t = x.f64[9]!;
  c.local(Op.local_get, v); c.f64(SPLIT); c.op(Op.f64_mul); c.local(Op.local_set, t);
  c.local(Op.local_get, t); c.local(Op.local_get, t); c.local(Op.local_get, v); c.op(Op.f64_sub); c.op(Op.f64_sub);
  c.local(Op.local_tee, h);
  c.local(Op.local_get, v); c.op(Op.f64_sub); c.op(Op.f64_neg); c.local(Op.local_set, l); // l = v - h
}

/** Pushes |local| < bound. */
function absLt(x: FpCtx, l: number, bound: number): void {
  x.c.local(Op.local_get, l); x.c.op(Op.f64_abs); x.c.f64(bound); x.c.op(Op.f64_lt);
}

/** fmadd.d family (negProduct, negAddend per the opcode): the guarded error-free form. */
function fmaD(x: FpCtx, insn: number, rd: number, rs1: number, rs2: number, rm: number): FpFast {
  const c = x.c, rs3 = insn >>> 27, op = insn & 0x7f;
  const negP = op === 0x4b || op === 0x4f, negC = op === 0x47 || op === 0x4f;
  const [a, b, cc, p, ah, al, bh, bl, e] = x.f64 as [number, number, number, number, number, number, number, number, number];
  const s = ah, t = al, w = bh; // reused after the product error is known
  flagsOk(x, rm);
  c.open(Op.if, I32);
  c.local(Op.local_get, x.st); c.mem(Op.f64_load, F_BASE + 8 * rs1); if (negP) c.op(Op.f64_neg); c.local(Op.local_set, a);
  c.local(Op.local_get, x.st); c.mem(Op.f64_load, F_BASE + 8 * rs2); c.local(Op.local_set, b);
  c.local(Op.local_get, x.st); c.mem(Op.f64_load, F_BASE + 8 * rs3); if (negC) c.op(Op.f64_neg); c.local(Op.local_set, cc);
  c.local(Op.local_get, a); c.local(Op.local_get, b); c.op(Op.f64_mul); c.local(Op.local_set, p);
  // Ranges where the split and the product error are exact: |a|,|b| < 2^995, 2^-960 < |p| < 2^1000, |c| < 2^1000 (or 0).
  absLt(x, a, 2 ** 995); absLt(x, b, 2 ** 995); c.op(Op.i32_and);
  absLt(x, p, 2 ** 1000); c.op(Op.i32_and);
  c.local(Op.local_get, p); c.op(Op.f64_abs); c.f64(2 ** -960); c.op(Op.f64_gt); c.op(Op.i32_and);
  absLt(x, cc, 2 ** 1000); c.op(Op.i32_and);
  c.local(Op.local_get, cc); c.op(Op.f64_abs); c.f64(2 ** -960); c.op(Op.f64_gt);
  c.local(Op.local_get, cc); c.f64(0); c.op(Op.f64_eq); c.op(Op.i32_or); c.op(Op.i32_and);
  c.open(Op.if, I32);
  split(x, a, ah, al); split(x, b, bh, bl);
  // e = ((ah*bh - p) + ah*bl + al*bh) + al*bl: the exact error of p = fl(a*b)
  c.local(Op.local_get, ah); c.local(Op.local_get, bh); c.op(Op.f64_mul); c.local(Op.local_get, p); c.op(Op.f64_sub);
  c.local(Op.local_get, ah); c.local(Op.local_get, bl); c.op(Op.f64_mul); c.op(Op.f64_add);
  c.local(Op.local_get, al); c.local(Op.local_get, bh); c.op(Op.f64_mul); c.op(Op.f64_add);
  c.local(Op.local_get, al); c.local(Op.local_get, bl); c.op(Op.f64_mul); c.op(Op.f64_add);
  c.local(Op.local_set, e);
  // s + t = p + c exactly (TwoSum)
  c.local(Op.local_get, p); c.local(Op.local_get, cc); c.op(Op.f64_add); c.local(Op.local_set, s);
  const bb = bl, tw = al;
  c.local(Op.local_get, s); c.local(Op.local_get, p); c.op(Op.f64_sub); c.local(Op.local_set, bb);
  c.local(Op.local_get, p); c.local(Op.local_get, s); c.local(Op.local_get, bb); c.op(Op.f64_sub); c.op(Op.f64_sub);
  c.local(Op.local_get, cc); c.local(Op.local_get, bb); c.op(Op.f64_sub); c.op(Op.f64_add); c.local(Op.local_set, t);
  // w = fl(t + e); exact when its TwoSum error is zero
  c.local(Op.local_get, t); c.local(Op.local_get, e); c.op(Op.f64_add); c.local(Op.local_set, w);
  c.local(Op.local_get, w); c.local(Op.local_get, t); c.op(Op.f64_sub); c.local(Op.local_set, bb);
  c.local(Op.local_get, t); c.local(Op.local_get, w); c.local(Op.local_get, bb); c.op(Op.f64_sub); c.op(Op.f64_sub);
  c.local(Op.local_get, e); c.local(Op.local_get, bb); c.op(Op.f64_sub); c.op(Op.f64_add); c.local(Op.local_set, tw);
  // r = fl(s + w), z = its exact error (TwoSum). The exact result is r + z + tw. r is the
  // correctly rounded fused result when tw == 0, or when |z| + |tw| stays below half the
  // spacing around r (a quarter ulp below a power of two), so tw cannot move the rounding.
  const z = e;
  c.local(Op.local_get, s); c.local(Op.local_get, w); c.op(Op.f64_add); c.local(Op.local_set, p);
  c.local(Op.local_get, p); c.local(Op.local_get, s); c.op(Op.f64_sub); c.local(Op.local_set, bb);
  c.local(Op.local_get, s); c.local(Op.local_get, p); c.local(Op.local_get, bb); c.op(Op.f64_sub); c.op(Op.f64_sub);
  c.local(Op.local_get, w); c.local(Op.local_get, bb); c.op(Op.f64_sub); c.op(Op.f64_add); c.local(Op.local_set, z);
  c.local(Op.local_get, tw); c.f64(0); c.op(Op.f64_eq);
  c.local(Op.local_get, z); c.op(Op.f64_abs); c.local(Op.local_get, tw); c.op(Op.f64_abs); c.op(Op.f64_add);
  // half = 2^(E - 1023 - 53), or 2^(E - 1023 - 54) when r is a power of two (E: r's biased exponent)
  c.local(Op.local_get, p); c.op(Op.i64_reinterpret_f64); c.i64(52); c.op(Op.i64_shr_u); c.i64(0x7ff); c.op(Op.i64_and);
  c.i64(53); c.op(Op.i64_sub);
  c.local(Op.local_get, p); c.op(Op.i64_reinterpret_f64); c.i64w(-1, 0xfffff); c.op(Op.i64_and); c.op(Op.i64_eqz);
  c.op(Op.i64_extend_i32_u); c.op(Op.i64_sub);
  c.i64(52); c.op(Op.i64_shl); c.op(Op.f64_reinterpret_i64);
  c.op(Op.f64_lt);
  c.local(Op.local_get, p); c.op(Op.f64_abs); c.f64(2 ** -960); c.op(Op.f64_gt); c.op(Op.i32_and);
  c.op(Op.i32_or);
  normalD(x, p, false); c.op(Op.i32_and);
  absLt(x, s, Infinity); c.op(Op.i32_and);
  c.open(Op.if, I32);
  c.local(Op.local_get, x.st); c.local(Op.local_get, p); c.mem(Op.f64_store, F_BASE + 8 * rd);
  c.i32(1);
  c.op(Op.else); c.i32(0); c.op(Op.end);
  c.op(Op.else); c.i32(0); c.op(Op.end);
  c.op(Op.else); c.i32(0); c.op(Op.end);
  return FpFast.COND;
}

/**
 * Emits an inline form of the F/D instruction `insn` when there is one
 * (see FpFast). Integer registers go through ctx.getX/setX.
 */
export function emitFpFast(x: FpCtx, insn: number): FpFast {
  const c = x.c, op = insn & 0x7f, fmt = (insn >>> 25) & 3, rm = (insn >>> 12) & 7;
  const rd = (insn >>> 7) & 31, rs1 = (insn >>> 15) & 31, rs2 = (insn >>> 20) & 31;
  if (fmt > 1) return FpFast.NONE;
  const dbl = fmt === 1;
  if (op !== 0x53) return dbl && (rm === 0 || rm === 7) ? fmaD(x, insn, rd, rs1, rs2, rm) : FpFast.NONE;
  const f5 = insn >>> 27;
  switch (f5) {
    case 0x00: case 0x01: case 0x02: case 0x03:
      return rm === 0 || rm === 7 ? arith(x, f5, dbl, rd, rs1, rs2, rm) : FpFast.NONE;
    case 0x0b:
      return rs2 === 0 && (rm === 0 || rm === 7) ? arith(x, f5, dbl, rd, rs1, rs2, rm) : FpFast.NONE;
    case 0x04: { // fsgnj.d / fsgnjn.d / fsgnjx.d: bit operations, no flags
      if (!dbl || rm > 2) return FpFast.NONE;
      const sign = (): void => c.i64w(0, 0x80000000 | 0);
      c.local(Op.local_get, x.st);
      c.local(Op.local_get, x.st); c.mem(Op.i64_load, F_BASE + 8 * rs1);
      if (rm === 2) {
        c.local(Op.local_get, x.st); c.mem(Op.i64_load, F_BASE + 8 * rs2); sign(); c.op(Op.i64_and); c.op(Op.i64_xor);
      } else {
        c.i64w(-1, 0x7fffffff); c.op(Op.i64_and);
        c.local(Op.local_get, x.st); c.mem(Op.i64_load, F_BASE + 8 * rs2);
        if (rm === 1) { c.i64(-1); c.op(Op.i64_xor); }
        sign(); c.op(Op.i64_and); c.op(Op.i64_or);
      }
      c.mem(Op.i64_store, F_BASE + 8 * rd);
      return FpFast.DONE;
    }
    case 0x1c: // fmv.x.d (rs2 = 0, rm = 0)
      if (!dbl || rm !== 0 || rs2 !== 0) return FpFast.NONE;
      c.local(Op.local_get, x.st); c.mem(Op.i64_load, F_BASE + 8 * rs1); x.setX(rd);
      return FpFast.DONE;
    case 0x1e: // fmv.d.x
      if (!dbl || rm !== 0 || rs2 !== 0) return FpFast.NONE;
      c.local(Op.local_get, x.st); x.getX(rs1); c.mem(Op.i64_store, F_BASE + 8 * rd);
      return FpFast.DONE;
    case 0x1a: { // fcvt.d.w / fcvt.d.wu: every int32 is a double exactly (no flags in any valid rounding mode)
      if (!dbl || rs2 > 1 || rm === 5 || rm === 6) return FpFast.NONE; // rm 5, 6 are reserved: illegal (helper)
      const store = (): void => {
        c.local(Op.local_get, x.st); x.getX(rs1); c.op(Op.i32_wrap_i64);
        c.op(rs2 === 0 ? Op.f64_convert_i32_s : Op.f64_convert_i32_u);
        c.mem(Op.f64_store, F_BASE + 8 * rd);
      };
      if (rm !== 7) { store(); return FpFast.DONE; }
      // DYN: only when frm holds a valid mode (F spec §11.2: frm 5-7 make the instruction illegal)
      c.local(Op.local_get, x.st); c.mem(Op.i32_load, FRM_CELL); c.i32(5); c.op(Op.i32_lt_u);
      c.open(Op.if, I32); store(); c.i32(1); c.op(Op.else); c.i32(0); c.op(Op.end);
      return FpFast.COND;
    }
    case 0x14: { // feq/flt/fle.d: inline unless an operand is NaN (then flags may be raised)
      if (!dbl || rm > 2) return FpFast.NONE;
      const [fa, fb] = [x.f64[0]!, x.f64[1]!];
      c.local(Op.local_get, x.st); c.mem(Op.f64_load, F_BASE + 8 * rs1); c.local(Op.local_tee, fa);
      c.local(Op.local_get, fa); c.op(Op.f64_eq);
      c.local(Op.local_get, x.st); c.mem(Op.f64_load, F_BASE + 8 * rs2); c.local(Op.local_tee, fb);
      c.local(Op.local_get, fb); c.op(Op.f64_eq); c.op(Op.i32_and);
      c.open(Op.if, I32);
      c.local(Op.local_get, fa); c.local(Op.local_get, fb);
      c.op(rm === 2 ? Op.f64_eq : rm === 1 ? Op.f64_lt : Op.f64_le);
      c.op(Op.i64_extend_i32_u); x.setX(rd);
      c.i32(1);
      c.op(Op.else); c.i32(0); c.op(Op.end);
      return FpFast.COND;
    }
    default: return FpFast.NONE;
  }
}
