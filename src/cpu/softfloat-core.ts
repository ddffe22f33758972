/**
 * Core of the software IEEE 754-2019 binary32/binary64 arithmetic used by the
 * RISC-V F and D extensions: exact rounding of an unrounded significand to
 * either format under the five RISC-V rounding modes, and the shared fast-path
 * finishers that correct a round-to-nearest-even native result for the other
 * modes.
 *
 * Conventions: a double register lives in an Int32Array as (lo, hi) words at
 * indices (2i, 2i+1); a single is NaN-boxed in the low word with the high word
 * all ones (F spec §12.2 "NaN Boxing of Narrower Values").
 * Tininess is detected after rounding, as RISC-V requires (F spec §11.4 "Subnormal Arithmetic";
 * IEEE 754-2019 §7.5), and underflow is flagged only for inexact tiny results.
 */
import type { HartState } from './hart-state.js';
import { FFLAG_NX, FFLAG_OF, FFLAG_UF, RM_RDN, RM_RNE, RM_RTZ, RM_RUP } from './hart-state.js';

/** 2^32, the weight of a high word. */
export const TWO32 = 4294967296;
/** 2^52, the implicit bit of a binary64 significand (IEEE 754-2019 §3.4). */
export const TWO52 = 4503599627370496;

/** 2^n for n in [-1074, 1023], indexed by n + 1074; built by exact doubling/halving. */
export const POW2 = new Float64Array(2098);
POW2[1074] = 1;
for (let i = 1075; i < 2098; i++) POW2[i] = POW2[i - 1]! * 2;
for (let i = 1073; i >= 0; i--) POW2[i] = POW2[i + 1]! / 2;

/** Exact 2^n for n in [-1074, 1023]. */
export function pow2(n: number): number {
  return POW2[n + 1074]!;
}

/** x * 2^n, exact whenever the result is a normal double or zero. */
export function ldexp(x: number, n: number): number {
  while (n > 1023) { x *= POW2[2097]!; n -= 1023; }
  while (n < -1022) { x *= POW2[52]!; n += 1022; }
  return x * POW2[n + 1074]!;
}

/** Smallest double magnitude handled by the direct fast-path finisher: 2^-1021. */
export const D_SAFE_LO = pow2(-1021);
/** Largest (exclusive) double magnitude for the fast-path finisher: 2^1023. */
export const D_SAFE_HI = pow2(1023);
/** Smallest single magnitude handled by the direct fast-path finisher: 2^-125. */
export const S_SAFE_LO = pow2(-125);
/** Largest (exclusive) single magnitude for the fast-path finisher: 2^127. */
export const S_SAFE_HI = pow2(127);

/** Canonical NaN of binary32 (F spec §11.3: 0x7fc00000). */
export const CNAN_S = 0x7fc00000;
/** High word of the canonical NaN of binary64 (D spec §12.3: 0x7ff8000000000000). */
export const CNAN_D_HI = 0x7ff80000;

/** Scratch for bit reinterpretation, allocated once. */
const scratch = new ArrayBuffer(8);
const sf64 = new Float64Array(scratch);
const si32 = new Int32Array(scratch);

/** Veltkamp splitter 2^27 + 1 for binary64 (Dekker 1971). */
export const SPLIT = 134217729;

/** Exact error of p = RN(a*b) (Dekker TwoProduct); needs no overflow/underflow in the split. */
export function twoProdErr(a: number, b: number, p: number): number {
  let c = SPLIT * a;
  const ah = c - (c - a);
  const al = a - ah;
  c = SPLIT * b;
  const bh = c - (c - b);
  const bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

/** Exact error of s = RN(a+b) (Knuth TwoSum); valid for all finite non-overflowing sums. */
export function twoSumErr(a: number, b: number, s: number): number {
  const bb = s - a;
  return (a - (s - bb)) + (b - bb);
}

/** Writes ±0 as a double into f at register rd. */
export function writeZeroD(f: Int32Array, rd: number, neg: boolean): void {
  f[2 * rd] = 0;
  f[2 * rd + 1] = neg ? -2147483648 : 0;
}

/** Writes ±0 as a NaN-boxed single into f at register rd. */
export function writeZeroS(f: Int32Array, rd: number, neg: boolean): void {
  f[2 * rd] = neg ? -2147483648 : 0;
  f[2 * rd + 1] = -1;
}

/** Writes the canonical binary64 NaN to register rd. */
export function writeCNanD(f: Int32Array, rd: number): void {
  f[2 * rd] = 0;
  f[2 * rd + 1] = CNAN_D_HI;
}

/** Writes the canonical binary32 NaN, NaN-boxed, to register rd. */
export function writeCNanS(f: Int32Array, rd: number): void {
  f[2 * rd] = CNAN_S;
  f[2 * rd + 1] = -1;
}

/** True when (hi, lo) encodes a binary64 NaN (IEEE 754-2019 §3.4: exponent all ones, fraction ≠ 0). */
export function isNanD(hi: number, lo: number): boolean {
  return (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | lo) !== 0;
}

/** True when (hi, lo) encodes a signalling binary64 NaN (§6.2.1: quiet bit = fraction MSB clear). */
export function isSNanD(hi: number, lo: number): boolean {
  return isNanD(hi, lo) && (hi & 0x80000) === 0;
}

/** True when w encodes a binary32 NaN. */
export function isNanS(w: number): boolean {
  return (w & 0x7fffffff) > 0x7f800000;
}

/** True when w encodes a signalling binary32 NaN. */
export function isSNanS(w: number): boolean {
  return (w & 0x7fffffff) > 0x7f800000 && (w & 0x400000) === 0;
}

/**
 * Float temporaries that carry doubles between functions without boxing them (a double passed
 * as an argument or returned from a call that is not inlined costs a heap allocation):
 * FT[0] is a value, FT[1] its exact residual.
 */
export const FT = new Float64Array(2);

/** Results of unpackD/unpackS: UP[0] = significand in [2^52, 2^53), UP[1] = exponent. */
export const UP = new Float64Array(2);

/** Unpacks a finite nonzero binary64 into UP (significand normalized to [2^52, 2^53), exponent). */
export function unpackD(hi: number, lo: number): void {
  const e = (hi >>> 20) & 0x7ff;
  let m = (hi & 0xfffff) * TWO32 + (lo >>> 0);
  if (e !== 0) {
    UP[0] = m + TWO52;
    UP[1] = e - 1075;
    return;
  }
  const top = hi & 0xfffff;
  const len = top !== 0 ? 64 - Math.clz32(top) : 32 - Math.clz32(lo);
  const sh = 53 - len;
  m *= POW2[sh + 1074]!;
  UP[0] = m;
  UP[1] = -1074 - sh;
}

/** Unpacks a finite nonzero binary32 into UP (significand normalized to [2^52, 2^53), exponent). */
export function unpackS(w: number): void {
  const e = (w >>> 23) & 0xff;
  const m = w & 0x7fffff;
  if (e !== 0) {
    UP[0] = (m + 0x800000) * 536870912; // * 2^29
    UP[1] = e - 150 - 29;
    return;
  }
  const sh = 53 - (32 - Math.clz32(m));
  UP[0] = m * POW2[sh + 1074]!;
  UP[1] = -149 - sh;
}

/** Category of the discarded part left by the last shiftRound: 0 none, 1 < ½, 2 = ½, 3 > ½. */
let restCat = 0;

/** Rounds M + frac (M integer < 2^53, frac in [0,1)) right-shifted by `shift` bits to an integer. */
function shiftRound(M: number, frac: number, shift: number, rm: number, sign: number): number {
  let q: number;
  let cat: number;
  if (shift === 0) {
    q = M;
    cat = frac === 0 ? 0 : frac < 0.5 ? 1 : frac === 0.5 ? 2 : 3;
  } else {
    const pw = POW2[shift + 1074]!;
    q = Math.floor(M / pw);
    const r = M - q * pw;
    const half = pw * 0.5;
    cat = r > half ? 3 : r === half ? (frac === 0 ? 2 : 3) : r === 0 && frac === 0 ? 0 : 1;
  }
  restCat = cat;
  if (cat === 0) return q;
  switch (rm) {
    case RM_RNE: return cat === 3 || (cat === 2 && q % 2 === 1) ? q + 1 : q;
    case RM_RTZ: return q;
    case RM_RDN: return sign ? q + 1 : q;
    case RM_RUP: return sign ? q : q + 1;
    default: return cat >= 2 ? q + 1 : q; // RMM: ties away from zero
  }
}

/** Writes the overflow result for rm (IEEE 754-2019 §7.4) and returns OF|NX. */
function packOverflow(f: Int32Array, i: number, sign: number, dbl: boolean, rm: number): number {
  const toInf = rm === RM_RNE || rm === 4 || (rm === RM_RUP && !sign) || (rm === RM_RDN && sign !== 0);
  const s = sign ? -2147483648 : 0;
  if (dbl) {
    f[i] = toInf ? 0 : -1;
    f[i + 1] = s | (toInf ? 0x7ff00000 : 0x7fefffff);
  } else {
    f[i] = s | (toInf ? 0x7f800000 : 0x7f7fffff);
    f[i + 1] = -1;
  }
  return FFLAG_OF | FFLAG_NX;
}

/**
 * Rounds (-1)^sign * (M + frac) * 2^E, M an integer in [2^52, 2^53) and frac in [0,1) (only its
 * relation to 0 and ½ matters), to binary64 (dbl) or binary32; writes (lo, hi) at f[i], f[i+1]
 * and returns the NX/UF/OF flags.
 */
export function roundPack(f: Int32Array, i: number, sign: number, M: number, frac: number, E: number, dbl: boolean, rm: number): number {
  const p = dbl ? 53 : 24; // precision (IEEE 754-2019 Table 3.5)
  const emin = dbl ? -1022 : -126;
  const emax = dbl ? 1023 : 127;
  const base = 53 - p;
  let e = E + 52;
  const s = sign ? -2147483648 : 0;
  let flags = 0;
  if (e >= emin) {
    let q = shiftRound(M, frac, base, rm, sign);
    if (restCat !== 0) flags = FFLAG_NX;
    if (q === POW2[p + 1074]) { q = POW2[p - 1 + 1074]!; e++; }
    if (e > emax) return packOverflow(f, i, sign, dbl, rm);
    if (dbl) {
      const h = Math.floor(q / TWO32);
      f[i] = (q - h * TWO32) | 0;
      f[i + 1] = s | (((e + 1022) << 20) + h);
    } else {
      f[i] = s | (((e + 126) << 23) + q);
      f[i + 1] = -1;
    }
    return flags;
  }
  let shift = base + (emin - e);
  if (shift > 55) shift = 55;
  const q = shiftRound(M, frac, shift, rm, sign);
  if (restCat !== 0) {
    flags = FFLAG_NX;
    // Tiny after rounding unless rounding to p bits with unbounded exponent reaches 2^emin.
    let tiny = true;
    if (e === emin - 1) tiny = shiftRound(M, frac, base, rm, sign) < POW2[p + 1074]!;
    if (tiny) flags |= FFLAG_UF;
  }
  if (dbl) {
    const h = Math.floor(q / TWO32);
    f[i] = (q - h * TWO32) | 0;
    f[i + 1] = s | h;
  } else {
    f[i] = s | q;
    f[i + 1] = -1;
  }
  return flags;
}

/**
 * Rounds (-1)^sign * (h + l) * 2^E where h > 0 is a normal double equal to RN(h + l) and l is the
 * exact remainder (or any value with the same sign and the same position relative to ½ ulp(h));
 * writes the result at f[i] and returns the flags.
 */
export function packDD(f: Int32Array, i: number, sign: number, h: number, l: number, E: number, dbl: boolean, rm: number): number {
  sf64[0] = h;
  const hw = si32[1]!;
  let s = ((hw >>> 20) & 0x7ff) - 1075;
  if (l < 0 && (hw & 0xfffff) === 0 && si32[0] === 0) s--;
  const M = ldexp(h, -s);
  const fr = ldexp(l, -s); // in [-1, ½]
  if (fr >= 0) return roundPack(f, i, sign, M, fr, E + s, dbl, rm);
  // Borrow one unit: the fraction becomes 1 + fr, which may not be representable, so pass a
  // stand-in with the same relation to 0 and ½.
  const frac = fr === -1 ? 0 : fr > -0.5 ? 0.75 : fr === -0.5 ? 0.5 : 0.25;
  return roundPack(f, i, sign, M - 1, frac, E + s, dbl, rm);
}

/**
 * Fast-path finisher for binary64: r = FT[0] = RN(exact) with D_SAFE_LO <= |r| < D_SAFE_HI (or
 * e = 0), e = FT[1] the exact residual exact - r (or a value of the same sign when no tie is
 * possible). Applies rm, writes register rd and returns NX or 0.
 */
export function finishD(st: HartState, rd: number, rm: number): number {
  const r = FT[0]!;
  const e = FT[1]!;
  st.fd[rd] = r;
  if (e === 0) return 0;
  if (rm !== RM_RNE) {
    const pos = r > 0;
    let adj = 0;
    switch (rm) {
      case RM_RTZ: if ((e > 0) !== pos) adj = -1; break;
      case RM_RDN: if (e < 0) adj = pos ? -1 : 1; break;
      case RM_RUP: if (e > 0) adj = pos ? 1 : -1; break;
      default: if ((e > 0) === pos && (r + 2 * e) - r === 2 * e) adj = 1; // RMM tie
    }
    if (adj !== 0) bumpMag(st.f, 2 * rd, adj);
  }
  return FFLAG_NX;
}

/** Adds adj (±1) to the magnitude bits of the 64-bit value at f[i], f[i+1]. */
function bumpMag(f: Int32Array, i: number, adj: number): void {
  const lo = f[i]!;
  if (adj > 0) {
    const n = (lo + 1) | 0;
    f[i] = n;
    if (n === 0) f[i + 1] = (f[i + 1]! + 1) | 0;
  } else {
    f[i] = (lo - 1) | 0;
    if (lo === 0) f[i + 1] = (f[i + 1]! - 1) | 0;
  }
}

/**
 * Finisher for binary32 results computed in binary64: exact = d + t with d = FT[0] = RN53(exact)
 * ≠ 0 a normal double and t = FT[1] the exact remainder (or same-sign stand-in). Rounds to
 * binary32 under rm, writes register rd (NaN-boxed) and returns the flags.
 */
export function finishS(st: HartState, rd: number, rm: number): number {
  const d = FT[0]!;
  const t = FT[1]!;
  let r = Math.fround(d);
  const ar = r < 0 ? -r : r;
  if (!(ar >= S_SAFE_LO && ar < S_SAFE_HI)) {
    return d < 0 ? packDD(st.f, 2 * rd, 1, -d, -t, 0, false, rm) : packDD(st.f, 2 * rd, 0, d, t, 0, false, rm);
  }
  const diff = d - r;
  let dir: number;
  let tie = false;
  if (diff === 0) {
    if (t === 0) {
      st.fs[2 * rd] = r;
      st.f[2 * rd + 1] = -1;
      return 0;
    }
    dir = t;
  } else {
    const nb = r + 2 * diff;
    if (Math.fround(nb) === nb) { // d is a binary32 midpoint
      if (t === 0) { tie = true; dir = diff; } else if ((t > 0) === (diff > 0)) { r = nb; dir = -diff; } else dir = diff;
    } else dir = diff;
  }
  st.fs[2 * rd] = r;
  st.f[2 * rd + 1] = -1;
  if (rm !== RM_RNE) {
    const pos = r > 0;
    let adj = 0;
    switch (rm) {
      case RM_RTZ: if ((dir > 0) !== pos) adj = -1; break;
      case RM_RDN: if (dir < 0) adj = pos ? -1 : 1; break;
      case RM_RUP: if (dir > 0) adj = pos ? 1 : -1; break;
      default: if (tie && (dir > 0) === pos) adj = 1;
    }
    if (adj !== 0) st.f[2 * rd] = st.f[2 * rd]! + adj;
  }
  return FFLAG_NX;
}
