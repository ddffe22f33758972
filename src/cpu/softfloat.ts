/**
 * IEEE 754-2019 binary32/binary64 add, subtract, multiply, divide, square root and fused
 * multiply-add with the RISC-V flag and NaN rules (F spec §11.3 "NaN Generation and
 * Propagation": every NaN result is the canonical NaN).
 *
 * Each operation reads its operands from HartState registers, writes register rd and returns
 * the accrued fflags. Round-to-nearest-even results come from native binary64 arithmetic;
 * error-free transformations give the exact residual that decides inexactness and the
 * directed-mode correction; operands or results outside the safe exponent range go through
 * exactly scaled slow paths that round with roundPack.
 */
import type { HartState } from './hart-state.js';
import { FFLAG_DZ, FFLAG_NV, RM_RDN } from './hart-state.js';
import {
  CNAN_S, D_SAFE_HI, D_SAFE_LO, FT, SPLIT, UP, finishD, finishS, isNanD, isNanS, isSNanD, isSNanS, packDD,
  pow2, twoProdErr, twoSumErr, unpackD, writeCNanD, writeCNanS, writeZeroD, writeZeroS,
} from './softfloat-core.js';

/** A stand-in residual for operations that cannot produce ties (division, square root). */
const TINY = Number.MIN_VALUE;
/** 2^-60: scale of a sticky stand-in relative to its leading term. */
const STICKY = pow2(-60);
/** 2^-8: stand-in for an addend far below the other operand's last bit. */
const FAR = pow2(-8);
/** 2^-1000: smallest |v| for which the round-to-odd FMA step is free of underflow. */
const RO_MIN = pow2(-1000);

/** Reads register r as a NaN-boxed single's bits (F spec §12.2: improper boxes read as canonical NaN). */
function sBits(f: Int32Array, r: number): number {
  return f[2 * r + 1] === -1 ? f[2 * r]! : CNAN_S;
}

// ---------------------------------------------------------------------------------------------
// Addition and subtraction.

/** FADD.D / FSUB.D (neg = 1 negates rs2): rd = rs1 ± rs2. */
export function addD(st: HartState, rd: number, rs1: number, rs2: number, rm: number, neg: number): number {
  const f = st.f;
  const ahi = f[2 * rs1 + 1]!;
  const bhi = f[2 * rs2 + 1]! ^ (neg << 31);
  const ea = (ahi >>> 20) & 0x7ff;
  const eb = (bhi >>> 20) & 0x7ff;
  if (ea < 0x7fe && eb < 0x7fe) {
    const a = st.fd[rs1]!;
    const b = neg ? -st.fd[rs2]! : st.fd[rs2]!;
    const s = a + b;
    const as = s < 0 ? -s : s;
    if (as < D_SAFE_HI) {
      if (as >= D_SAFE_LO) {
        const bb = s - a; // TwoSum (Knuth): exact error of s
        FT[0] = s;
        FT[1] = (a - (s - bb)) + (b - bb);
        return finishD(st, rd, rm);
      }
      // Sums this small are exact (IEEE 754-2019 §6.3 fixes the sign of an exact zero).
      if (s !== 0) st.fd[rd] = s;
      else writeZeroD(f, rd, rm === RM_RDN ? (ahi | bhi) < 0 : (ahi & bhi) < 0);
      return 0;
    }
  }
  return addDSlow(st, rd, ahi, f[2 * rs1]!, bhi, f[2 * rs2]!, rm);
}

/** Special operands and overflow-range sums for addD. */
function addDSlow(st: HartState, rd: number, ahi: number, alo: number, bhi: number, blo: number, rm: number): number {
  const f = st.f;
  const ea = (ahi >>> 20) & 0x7ff;
  const eb = (bhi >>> 20) & 0x7ff;
  if (ea === 0x7ff || eb === 0x7ff) {
    if (isNanD(ahi, alo) || isNanD(bhi, blo)) {
      writeCNanD(f, rd);
      return isSNanD(ahi, alo) || isSNanD(bhi, blo) ? FFLAG_NV : 0;
    }
    if (ea === 0x7ff && eb === 0x7ff && (ahi ^ bhi) < 0) { writeCNanD(f, rd); return FFLAG_NV; } // ∞ - ∞ (§7.2)
    f[2 * rd] = 0;
    f[2 * rd + 1] = ea === 0x7ff ? ahi : bhi;
    return 0;
  }
  const az = (ahi & 0x7fffffff) === 0 && alo === 0;
  const bz = (bhi & 0x7fffffff) === 0 && blo === 0;
  if (az || bz) {
    if (az && bz) writeZeroD(f, rd, rm === RM_RDN ? (ahi | bhi) < 0 : (ahi & bhi) < 0);
    else if (az) { f[2 * rd] = blo; f[2 * rd + 1] = bhi; } else { f[2 * rd] = alo; f[2 * rd + 1] = ahi; }
    return 0;
  }
  unpackD(ahi, alo);
  const ma = UP[0]!, Ea = UP[1]!;
  unpackD(bhi, blo);
  const mb = UP[0]!, Eb = UP[1]!;
  const Em = Ea > Eb ? Ea : Eb;
  let a = Ea - Em < -60 ? FAR : ma * pow2(Ea - Em);
  let b = Eb - Em < -60 ? FAR : mb * pow2(Eb - Em);
  if (ahi < 0) a = -a;
  if (bhi < 0) b = -b;
  const s = a + b;
  const t = twoSumErr(a, b, s);
  if (s === 0) { writeZeroD(f, rd, rm === RM_RDN); return 0; }
  return s < 0 ? packDD(f, 2 * rd, 1, -s, -t, Em, true, rm) : packDD(f, 2 * rd, 0, s, t, Em, true, rm);
}

/** FADD.S / FSUB.S (neg = 1 negates rs2). */
export function addS(st: HartState, rd: number, rs1: number, rs2: number, rm: number, neg: number): number {
  const f = st.f;
  const aw = sBits(f, rs1);
  const bw = sBits(f, rs2) ^ (neg << 31);
  if ((aw & 0x7f800000) !== 0x7f800000 && (bw & 0x7f800000) !== 0x7f800000) {
    const a = st.fs[2 * rs1]!;
    const b = neg ? -st.fs[2 * rs2]! : st.fs[2 * rs2]!;
    const s = a + b;
    if (s !== 0) {
      const bb = s - a;
      FT[0] = s;
      FT[1] = (a - (s - bb)) + (b - bb);
      return finishS(st, rd, rm);
    }
    writeZeroS(f, rd, rm === RM_RDN ? (aw | bw) < 0 : (aw & bw) < 0);
    return 0;
  }
  if (isNanS(aw) || isNanS(bw)) {
    writeCNanS(f, rd);
    return isSNanS(aw) || isSNanS(bw) ? FFLAG_NV : 0;
  }
  const ai = (aw & 0x7fffffff) === 0x7f800000;
  const bi = (bw & 0x7fffffff) === 0x7f800000;
  if (ai && bi && (aw ^ bw) < 0) { writeCNanS(f, rd); return FFLAG_NV; }
  f[2 * rd] = ai ? aw : bw;
  f[2 * rd + 1] = -1;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Multiplication.

/** FMUL.D. */
export function mulD(st: HartState, rd: number, rs1: number, rs2: number, rm: number): number {
  const f = st.f;
  const ahi = f[2 * rs1 + 1]!;
  const bhi = f[2 * rs2 + 1]!;
  const ea = (ahi >>> 20) & 0x7ff;
  const eb = (bhi >>> 20) & 0x7ff;
  // Unbiased exponents in [-960, 990] and their sum in [-960, 1020]: the product is normal,
  // below 2^1022, and Dekker's TwoProduct is exact.
  if (ea >= 63 && ea <= 2013 && eb >= 63 && eb <= 2013 && ea + eb >= 1086 && ea + eb <= 3066) {
    const a = st.fd[rs1]!;
    const b = st.fd[rs2]!;
    const p = a * b;
    let c = SPLIT * a; // Dekker TwoProduct with Veltkamp splitting
    const ah = c - (c - a), al = a - ah;
    c = SPLIT * b;
    const bh = c - (c - b), bl = b - bh;
    FT[0] = p;
    FT[1] = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    return finishD(st, rd, rm);
  }
  return mulDSlow(st, rd, ahi, f[2 * rs1]!, bhi, f[2 * rs2]!, rm);
}

/** Special operands and extreme exponents for mulD. */
function mulDSlow(st: HartState, rd: number, ahi: number, alo: number, bhi: number, blo: number, rm: number): number {
  const f = st.f;
  const sign = (ahi ^ bhi) < 0;
  const ea = (ahi >>> 20) & 0x7ff;
  const eb = (bhi >>> 20) & 0x7ff;
  const az = (ahi & 0x7fffffff) === 0 && alo === 0;
  const bz = (bhi & 0x7fffffff) === 0 && blo === 0;
  if (ea === 0x7ff || eb === 0x7ff) {
    if (isNanD(ahi, alo) || isNanD(bhi, blo)) {
      writeCNanD(f, rd);
      return isSNanD(ahi, alo) || isSNanD(bhi, blo) ? FFLAG_NV : 0;
    }
    if (az || bz) { writeCNanD(f, rd); return FFLAG_NV; } // ∞ × 0 (§7.2)
    f[2 * rd] = 0;
    f[2 * rd + 1] = sign ? (0xfff00000 | 0) : 0x7ff00000;
    return 0;
  }
  if (az || bz) { writeZeroD(f, rd, sign); return 0; }
  unpackD(ahi, alo);
  const ma = UP[0]!, Ea = UP[1]!;
  unpackD(bhi, blo);
  const mb = UP[0]!;
  const p = ma * mb;
  return packDD(f, 2 * rd, sign ? 1 : 0, p, twoProdErr(ma, mb, p), Ea + UP[1]!, true, rm);
}

/** FMUL.S: the product of two singles is exact in binary64. */
export function mulS(st: HartState, rd: number, rs1: number, rs2: number, rm: number): number {
  const f = st.f;
  const aw = sBits(f, rs1);
  const bw = sBits(f, rs2);
  if ((aw & 0x7f800000) !== 0x7f800000 && (bw & 0x7f800000) !== 0x7f800000) {
    const p = st.fs[2 * rs1]! * st.fs[2 * rs2]!;
    if (p !== 0) {
      FT[0] = p;
      FT[1] = 0;
      return finishS(st, rd, rm);
    }
    writeZeroS(f, rd, (aw ^ bw) < 0);
    return 0;
  }
  if (isNanS(aw) || isNanS(bw)) {
    writeCNanS(f, rd);
    return isSNanS(aw) || isSNanS(bw) ? FFLAG_NV : 0;
  }
  if ((aw & 0x7fffffff) === 0 || (bw & 0x7fffffff) === 0) { writeCNanS(f, rd); return FFLAG_NV; }
  f[2 * rd] = ((aw ^ bw) & -2147483648) | 0x7f800000;
  f[2 * rd + 1] = -1;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Division.

/** FDIV.D. */
export function divD(st: HartState, rd: number, rs1: number, rs2: number, rm: number): number {
  const f = st.f;
  const ahi = f[2 * rs1 + 1]!;
  const bhi = f[2 * rs2 + 1]!;
  const ea = (ahi >>> 20) & 0x7ff;
  const eb = (bhi >>> 20) & 0x7ff;
  // Unbiased exponents in [-960, 990], difference in [-1019, 990]: the quotient is normal and
  // the remainder a - q*b is exact (a quotient in the normal range is never a midpoint).
  if (ea >= 63 && ea <= 2013 && eb >= 63 && eb <= 2013 && ea - eb >= -1019 && ea - eb <= 990) {
    const a = st.fd[rs1]!;
    const b = st.fd[rs2]!;
    const q = a / b;
    const p = q * b;
    let c = SPLIT * q;
    const qh = c - (c - q), ql = q - qh;
    c = SPLIT * b;
    const bh = c - (c - b), bl = b - bh;
    const rem = (a - p) - (((qh * bh - p) + qh * bl + ql * bh) + ql * bl); // exact a - q*b
    FT[0] = q;
    FT[1] = rem === 0 ? 0 : (rem > 0) === (b > 0) ? TINY : -TINY;
    return finishD(st, rd, rm);
  }
  return divDSlow(st, rd, ahi, f[2 * rs1]!, bhi, f[2 * rs2]!, rm);
}

/** Special operands and extreme exponents for divD. */
function divDSlow(st: HartState, rd: number, ahi: number, alo: number, bhi: number, blo: number, rm: number): number {
  const f = st.f;
  const sign = (ahi ^ bhi) < 0;
  const ea = (ahi >>> 20) & 0x7ff;
  const eb = (bhi >>> 20) & 0x7ff;
  const az = (ahi & 0x7fffffff) === 0 && alo === 0;
  const bz = (bhi & 0x7fffffff) === 0 && blo === 0;
  if (ea === 0x7ff || eb === 0x7ff) {
    if (isNanD(ahi, alo) || isNanD(bhi, blo)) {
      writeCNanD(f, rd);
      return isSNanD(ahi, alo) || isSNanD(bhi, blo) ? FFLAG_NV : 0;
    }
    if (ea === 0x7ff && eb === 0x7ff) { writeCNanD(f, rd); return FFLAG_NV; } // ∞/∞
    if (ea === 0x7ff) { f[2 * rd] = 0; f[2 * rd + 1] = sign ? (0xfff00000 | 0) : 0x7ff00000; return 0; }
    writeZeroD(f, rd, sign); // x/∞
    return 0;
  }
  if (bz) {
    if (az) { writeCNanD(f, rd); return FFLAG_NV; } // 0/0
    f[2 * rd] = 0;
    f[2 * rd + 1] = sign ? (0xfff00000 | 0) : 0x7ff00000;
    return FFLAG_DZ; // §7.3 division by zero
  }
  if (az) { writeZeroD(f, rd, sign); return 0; }
  unpackD(ahi, alo);
  const ma = UP[0]!, Ea = UP[1]!;
  unpackD(bhi, blo);
  const mb = UP[0]!;
  const q = ma / mb;
  const p = q * mb;
  const rem = (ma - p) - twoProdErr(q, mb, p);
  const l = rem === 0 ? 0 : rem > 0 ? q * STICKY : -q * STICKY;
  return packDD(f, 2 * rd, sign ? 1 : 0, q, l, Ea - UP[1]!, true, rm);
}

/** FDIV.S. */
export function divS(st: HartState, rd: number, rs1: number, rs2: number, rm: number): number {
  const f = st.f;
  const aw = sBits(f, rs1);
  const bw = sBits(f, rs2);
  const sign = (aw ^ bw) < 0;
  const ax = aw & 0x7fffffff;
  const bx = bw & 0x7fffffff;
  if (ax < 0x7f800000 && bx < 0x7f800000 && ax !== 0 && bx !== 0) {
    const a = st.fs[2 * rs1]!;
    const b = st.fs[2 * rs2]!;
    const q = a / b;
    const p = q * b;
    let c = SPLIT * q;
    const qh = c - (c - q), ql = q - qh;
    c = SPLIT * b;
    const bh = c - (c - b), bl = b - bh;
    const rem = (a - p) - (((qh * bh - p) + qh * bl + ql * bh) + ql * bl);
    FT[0] = q;
    FT[1] = rem === 0 ? 0 : (rem > 0) === (b > 0) ? (q > 0 ? q : -q) * STICKY : (q > 0 ? -q : q) * STICKY;
    return finishS(st, rd, rm);
  }
  if (isNanS(aw) || isNanS(bw)) {
    writeCNanS(f, rd);
    return isSNanS(aw) || isSNanS(bw) ? FFLAG_NV : 0;
  }
  if ((ax === 0x7f800000 && bx === 0x7f800000) || (ax === 0 && bx === 0)) { writeCNanS(f, rd); return FFLAG_NV; }
  if (ax === 0x7f800000 || bx === 0) {
    f[2 * rd] = (sign ? -2147483648 : 0) | 0x7f800000;
    f[2 * rd + 1] = -1;
    return ax === 0x7f800000 ? 0 : FFLAG_DZ;
  }
  writeZeroS(f, rd, sign); // 0/x or x/∞
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Square root (IEEE 754-2019 §5.4.1; never overflows or underflows).

/** FSQRT.D. */
export function sqrtD(st: HartState, rd: number, rs1: number, rm: number): number {
  const f = st.f;
  const hi = f[2 * rs1 + 1]!;
  const lo = f[2 * rs1]!;
  const e = (hi >>> 20) & 0x7ff;
  if (hi > 0 && e >= 63 && e <= 2022) { // positive, unbiased exponent in [-960, 999]
    const a = st.fd[rs1]!;
    const r = Math.sqrt(a);
    const p = r * r;
    const c = SPLIT * r;
    const rh = c - (c - r), rl = r - rh;
    const rem = (a - p) - (((rh * rh - p) + 2 * (rh * rl)) + rl * rl); // exact a - r*r
    FT[0] = r;
    FT[1] = rem === 0 ? 0 : rem > 0 ? TINY : -TINY;
    return finishD(st, rd, rm);
  }
  if (isNanD(hi, lo)) { writeCNanD(f, rd); return isSNanD(hi, lo) ? FFLAG_NV : 0; }
  if ((hi & 0x7fffffff) === 0 && lo === 0) { f[2 * rd] = 0; f[2 * rd + 1] = hi; return 0; } // ±0
  if (hi < 0) { writeCNanD(f, rd); return FFLAG_NV; } // negative, including -∞
  if (e === 0x7ff) { f[2 * rd] = 0; f[2 * rd + 1] = hi; return 0; } // +∞
  // Scale by an even power of two into [1, 4): exact, and the root scales back exactly.
  unpackD(hi, lo);
  const E = UP[1]! + 52;
  const odd = E & 1;
  const a = UP[0]! * pow2(odd - 52);
  const r = Math.sqrt(a);
  const p = r * r;
  const rem = (a - p) - twoProdErr(r, r, p);
  FT[0] = r * pow2((E - odd) / 2);
  FT[1] = rem === 0 ? 0 : rem > 0 ? TINY : -TINY;
  return finishD(st, rd, rm);
}

/** FSQRT.S. */
export function sqrtS(st: HartState, rd: number, rs1: number, rm: number): number {
  const f = st.f;
  const w = sBits(f, rs1);
  if (w > 0 && w < 0x7f800000) {
    const a = st.fs[2 * rs1]!;
    const r = Math.sqrt(a);
    const p = r * r;
    const c = SPLIT * r;
    const rh = c - (c - r), rl = r - rh;
    const rem = (a - p) - (((rh * rh - p) + 2 * (rh * rl)) + rl * rl);
    FT[0] = r;
    FT[1] = rem === 0 ? 0 : rem > 0 ? r * STICKY : -r * STICKY;
    return finishS(st, rd, rm);
  }
  if (isNanS(w)) { writeCNanS(f, rd); return isSNanS(w) ? FFLAG_NV : 0; }
  if ((w & 0x7fffffff) === 0 || w === 0x7f800000) { f[2 * rd] = w; f[2 * rd + 1] = -1; return 0; }
  writeCNanS(f, rd);
  return FFLAG_NV;
}

// ---------------------------------------------------------------------------------------------
// Fused multiply-add: a single rounding of a*b + c (F spec §11.6).

/** Inputs a, b, c of fmaCore (typed-array slots avoid boxing doubles across calls). */
const FMA_IN = new Float64Array(3);
/** Scratch for stepping v to its odd neighbour. */
const roBuf = new ArrayBuffer(8);
const roF = new Float64Array(roBuf);
const roI = new Int32Array(roBuf);

/**
 * RN(a*b + c) for finite a, b ≠ 0 (in FMA_IN) by Boldo–Melquiond's round-to-odd emulation
 * (IEEE TC 57(4), 2008): FT[0] gets the result, FT[1] the residual (exact when a tie is
 * possible, else a same-sign stand-in). Returns 0, or 1 when an intermediate would underflow.
 */
function fmaCore(): number {
  const a = FMA_IN[0]!, b = FMA_IN[1]!, c = FMA_IN[2]!;
  const p = a * b;
  let t = SPLIT * a;
  const ah = t - (t - a), al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b), bl = b - bh;
  const pe = ((ah * bh - p) + ah * bl + al * bh) + al * bl; // p + pe = a*b exactly
  const s = p + c;
  let bb = s - p;
  const se = (p - (s - bb)) + (c - bb); // s + se = p + c exactly
  const v = se + pe;
  bb = v - se;
  const ve = (se - (v - bb)) + (pe - bb); // v + ve = se + pe exactly
  if (ve === 0) {
    const r = s + v;
    bb = r - s;
    FT[0] = r;
    FT[1] = (s - (r - bb)) + (v - bb);
    return 0;
  }
  if ((v < 0 ? -v : v) < RO_MIN) return 1;
  // Round v to odd: if its last bit is even, step one ulp towards ve.
  let vo = v;
  roF[0] = v;
  const lo = roI[0]!;
  if ((lo & 1) === 0) {
    if ((ve > 0) === (v > 0)) roI[0] = lo + 1; // away from zero (no carry: lo is even)
    else {
      if (lo === 0) roI[1] = roI[1]! - 1;
      roI[0] = lo - 1;
    }
    vo = roF[0]!;
  }
  const r = s + vo;
  bb = r - s;
  const e1 = (s - (r - bb)) + (vo - bb);
  FT[0] = r;
  FT[1] = e1 !== 0 ? e1 : (v - vo) + ve;
  return 0;
}

/** FMADD.D family: rd = (±rs1*rs2) ± rs3, negP/negC (0 or 1) negating the product/addend. */
export function fmaD(st: HartState, rd: number, rs1: number, rs2: number, rs3: number, rm: number, negP: number, negC: number): number {
  const f = st.f;
  const ahi = f[2 * rs1 + 1]! ^ (negP << 31);
  const bhi = f[2 * rs2 + 1]!;
  const chi = f[2 * rs3 + 1]! ^ (negC << 31);
  const ea = (ahi >>> 20) & 0x7ff;
  const eb = (bhi >>> 20) & 0x7ff;
  const ec = (chi >>> 20) & 0x7ff;
  // Unbiased product exponents in [-900, 990], sum in [-900, 1020], |c| < 2^1022.
  if (ea >= 123 && ea <= 2013 && eb >= 123 && eb <= 2013 && ea + eb >= 1146 && ea + eb <= 3066 && ec <= 0x7fc) {
    FMA_IN[0] = negP ? -st.fd[rs1]! : st.fd[rs1]!;
    FMA_IN[1] = st.fd[rs2]!;
    FMA_IN[2] = negC ? -st.fd[rs3]! : st.fd[rs3]!;
    if (fmaCore() === 0) {
      const r = FT[0]!;
      const ar = r < 0 ? -r : r;
      if (ar >= D_SAFE_LO && ar < D_SAFE_HI) return finishD(st, rd, rm);
      if (r === 0) { writeZeroD(f, rd, rm === RM_RDN); return 0; }
    }
  }
  return fmaDSlow(st, rd, ahi, f[2 * rs1]!, bhi, f[2 * rs2]!, chi, f[2 * rs3]!, rm);
}

/** Special operands, extreme exponents and over/underflowing results for fmaD. */
function fmaDSlow(st: HartState, rd: number, ahi: number, alo: number, bhi: number, blo: number,
  chi: number, clo: number, rm: number): number {
  const f = st.f;
  const ps = (ahi ^ bhi) < 0;
  const ea = (ahi >>> 20) & 0x7ff;
  const eb = (bhi >>> 20) & 0x7ff;
  const ec = (chi >>> 20) & 0x7ff;
  const az = (ahi & 0x7fffffff) === 0 && alo === 0;
  const bz = (bhi & 0x7fffffff) === 0 && blo === 0;
  const cz = (chi & 0x7fffffff) === 0 && clo === 0;
  if (ea === 0x7ff || eb === 0x7ff || ec === 0x7ff) {
    const aInf = (ahi & 0x7fffffff) === 0x7ff00000 && alo === 0;
    const bInf = (bhi & 0x7fffffff) === 0x7ff00000 && blo === 0;
    const infZero = (aInf && bz) || (bInf && az);
    if (isNanD(ahi, alo) || isNanD(bhi, blo) || isNanD(chi, clo)) {
      writeCNanD(f, rd);
      // RISC-V raises NV for ∞×0 even when the addend is a quiet NaN (F spec §11.6).
      return isSNanD(ahi, alo) || isSNanD(bhi, blo) || isSNanD(chi, clo) || infZero ? FFLAG_NV : 0;
    }
    if (infZero) { writeCNanD(f, rd); return FFLAG_NV; }
    if (ea === 0x7ff || eb === 0x7ff) {
      if (ec === 0x7ff && (chi < 0) !== ps) { writeCNanD(f, rd); return FFLAG_NV; }
      f[2 * rd] = 0;
      f[2 * rd + 1] = ps ? (0xfff00000 | 0) : 0x7ff00000;
      return 0;
    }
    f[2 * rd] = 0;
    f[2 * rd + 1] = chi;
    return 0;
  }
  if (az || bz) {
    if (cz) writeZeroD(f, rd, ps === (chi < 0) ? ps : rm === RM_RDN);
    else { f[2 * rd] = clo; f[2 * rd + 1] = chi; }
    return 0;
  }
  unpackD(ahi, alo);
  const ma = UP[0]!, Ea = UP[1]!;
  unpackD(bhi, blo);
  const mb = UP[0]!;
  const EP = Ea + UP[1]!;
  if (cz) {
    const p = ma * mb;
    return packDD(f, 2 * rd, ps ? 1 : 0, p, twoProdErr(ma, mb, p), EP, true, rm);
  }
  unpackD(chi, clo);
  const mc = UP[0]!, Ec = UP[1]!;
  const cs = chi < 0;
  const d = Ec - EP;
  if (d > 200) { // the product is far below the addend's last bit: it only acts as a sticky bit
    const l = ps === cs ? mc * STICKY : -mc * STICKY;
    return packDD(f, 2 * rd, cs ? 1 : 0, mc, l, Ec, true, rm);
  }
  let c = d < -200 ? pow2(-100) : mc * pow2(d);
  if (cs) c = -c;
  FMA_IN[0] = ps ? -ma : ma;
  FMA_IN[1] = mb;
  FMA_IN[2] = c;
  fmaCore(); // cannot underflow at these scales
  const r = FT[0]!;
  const e = FT[1]!;
  if (r === 0) { writeZeroD(f, rd, rm === RM_RDN); return 0; }
  return r < 0 ? packDD(f, 2 * rd, 1, -r, -e, EP, true, rm) : packDD(f, 2 * rd, 0, r, e, EP, true, rm);
}

/** FMADD.S family: the product of singles is exact in binary64, so TwoSum gives the exact sum. */
export function fmaS(st: HartState, rd: number, rs1: number, rs2: number, rs3: number, rm: number, negP: number, negC: number): number {
  const f = st.f;
  const aw = sBits(f, rs1) ^ (negP << 31);
  const bw = sBits(f, rs2);
  const cw = sBits(f, rs3) ^ (negC << 31);
  if ((aw & 0x7f800000) !== 0x7f800000 && (bw & 0x7f800000) !== 0x7f800000 && (cw & 0x7f800000) !== 0x7f800000) {
    const a = negP ? -st.fs[2 * rs1]! : st.fs[2 * rs1]!;
    const c = negC ? -st.fs[2 * rs3]! : st.fs[2 * rs3]!;
    const p = a * st.fs[2 * rs2]!;
    const s = p + c;
    if (s !== 0) {
      const bb = s - p;
      FT[0] = s;
      FT[1] = (p - (s - bb)) + (c - bb);
      return finishS(st, rd, rm);
    }
    const pz = p === 0;
    const pneg = (aw ^ bw) < 0;
    writeZeroS(f, rd, pz && c === 0 && pneg === (cw < 0) ? pneg : rm === RM_RDN);
    return 0;
  }
  const ax = aw & 0x7fffffff, bx = bw & 0x7fffffff, cx = cw & 0x7fffffff;
  const infZero = (ax === 0x7f800000 && bx === 0) || (bx === 0x7f800000 && ax === 0);
  if (isNanS(aw) || isNanS(bw) || isNanS(cw)) {
    writeCNanS(f, rd);
    return isSNanS(aw) || isSNanS(bw) || isSNanS(cw) || infZero ? FFLAG_NV : 0;
  }
  if (infZero) { writeCNanS(f, rd); return FFLAG_NV; }
  const ps = (aw ^ bw) < 0;
  if (ax === 0x7f800000 || bx === 0x7f800000) {
    if (cx === 0x7f800000 && (cw < 0) !== ps) { writeCNanS(f, rd); return FFLAG_NV; }
    f[2 * rd] = (ps ? -2147483648 : 0) | 0x7f800000;
    f[2 * rd + 1] = -1;
    return 0;
  }
  f[2 * rd] = cw; // c = ±∞, finite product
  f[2 * rd + 1] = -1;
  return 0;
}
