/**
 * RISC-V F/D conversions, comparisons, minimum/maximum and classification
 * (F spec §11.6–11.9, D spec §12.5), with QEMU-compatible flag behaviour.
 */
import type { HartState } from './hart-state.js';
import { FFLAG_NV, FFLAG_NX, RM_RDN, RM_RNE, RM_RTZ, RM_RUP } from './hart-state.js';
import {
  CNAN_S, FT, TWO32, TWO52, UP, finishD, finishS, isNanD, isNanS, isSNanD, isSNanS, roundPack, unpackD,
  writeCNanD, writeCNanS, writeZeroS,
} from './softfloat-core.js';

/** Integer conversion kinds, in the order of the rs2 field of FCVT (F spec §11.7). */
export const CVT_W = 0;
/** Unsigned 32-bit integer kind. */
export const CVT_WU = 1;
/** Signed 64-bit integer kind. */
export const CVT_L = 2;
/** Unsigned 64-bit integer kind. */
export const CVT_LU = 3;

/** 2^63 and 2^64 as doubles. */
const TWO63 = 9223372036854775808;
const TWO64 = 18446744073709551616;

/**
 * Converts x = FT[0] (a JS NaN for any NaN input) to integer kind `kind` under rm and writes
 * x[rd]. Out-of-range and NaN inputs saturate with NV only (F spec Table 11.4); NaN gives the
 * maximum. Rounding to an integral value follows IEEE 754-2019 §5.9.
 */
function toInt(st: HartState, rd: number, kind: number, rm: number): number {
  const x = FT[0]!;
  let n = NaN;
  let flags = 0;
  if (x === x) {
    switch (rm) {
      case RM_RNE: {
        const t = x < 0 ? -x : x;
        n = t < TWO52 ? (t + TWO52) - TWO52 : t; // native RNE at the units place
        if (x < 0) n = -n;
        break;
      }
      case RM_RTZ: n = Math.trunc(x); break;
      case RM_RDN: n = Math.floor(x); break;
      case RM_RUP: n = Math.ceil(x); break;
      default: {
        const t = x < 0 ? -x : x;
        const fl = Math.floor(t);
        n = t - fl >= 0.5 ? fl + 1 : fl; // RMM: ties away from zero
        if (x < 0) n = -n;
      }
    }
    if (n !== x) flags = FFLAG_NX;
  }
  let lo: number;
  let hi: number;
  switch (kind) {
    case CVT_W:
      if (n !== n || n > 2147483647) { lo = 0x7fffffff; flags = FFLAG_NV; } else if (n < -2147483648) { lo = -2147483648; flags = FFLAG_NV; } else lo = n | 0;
      hi = lo >> 31;
      break;
    case CVT_WU: // 32-bit results are sign-extended (F spec §11.7)
      if (n === 0) lo = 0;
      else if (n !== n || n > 4294967295) { lo = -1; flags = FFLAG_NV; } else if (n < 0) { lo = 0; flags = FFLAG_NV; } else lo = n | 0;
      hi = lo >> 31;
      break;
    case CVT_L:
      if (n !== n || n >= TWO63) { lo = -1; hi = 0x7fffffff; flags = FFLAG_NV; } else if (n < -TWO63) { lo = 0; hi = -2147483648; flags = FFLAG_NV; } else {
        const h = Math.floor(n / TWO32);
        lo = (n - h * TWO32) | 0;
        hi = h | 0;
      }
      break;
    default:
      if (n === 0) { lo = 0; hi = 0; } else if (n !== n || n >= TWO64) { lo = -1; hi = -1; flags = FFLAG_NV; } else if (n < 0) { lo = 0; hi = 0; flags = FFLAG_NV; } else {
        const h = Math.floor(n / TWO32);
        lo = (n - h * TWO32) | 0;
        hi = h | 0;
      }
  }
  if (rd !== 0) {
    st.x[2 * rd] = lo;
    st.x[2 * rd + 1] = hi;
  }
  return flags;
}

/** FCVT.{W,WU,L,LU}.D: integer register rd from double register rs1. */
export function cvtIntFromD(st: HartState, rd: number, rs1: number, kind: number, rm: number): number {
  FT[0] = st.fd[rs1]!; // any NaN reads as a JS NaN
  return toInt(st, rd, kind, rm);
}

/** FCVT.{W,WU,L,LU}.S: integer register rd from single register rs1. */
export function cvtIntFromS(st: HartState, rd: number, rs1: number, kind: number, rm: number): number {
  FT[0] = st.f[2 * rs1 + 1] === -1 ? st.fs[2 * rs1]! : NaN;
  return toInt(st, rd, kind, rm);
}

/** Reads integer register rs1 as kind into FT: FT[0] = RN(value), FT[1] = exact residual. */
function readInt(st: HartState, rs1: number, kind: number): void {
  const lo = st.x[2 * rs1]!;
  const hi = st.x[2 * rs1 + 1]!;
  FT[1] = 0;
  if (kind === CVT_W) { FT[0] = lo; return; }
  if (kind === CVT_WU) { FT[0] = lo >>> 0; return; }
  const h = (kind === CVT_L ? hi : hi >>> 0) * TWO32;
  const l = lo >>> 0;
  const v = h + l;
  FT[0] = v;
  FT[1] = l - (v - h);
}

/** FCVT.D.{W,WU,L,LU}. */
export function cvtDFromInt(st: HartState, rd: number, rs1: number, kind: number, rm: number): number {
  readInt(st, rs1, kind);
  if (FT[1] === 0) { st.fd[rd] = FT[0]!; return 0; } // +0 for zero (IEEE 754-2019 §5.4.1)
  return finishD(st, rd, rm);
}

/** FCVT.S.{W,WU,L,LU}. */
export function cvtSFromInt(st: HartState, rd: number, rs1: number, kind: number, rm: number): number {
  readInt(st, rs1, kind);
  if (FT[0] === 0) { writeZeroS(st.f, rd, false); return 0; }
  return finishS(st, rd, rm);
}

/** FCVT.S.D: narrowing with rounding (D spec §12.5). */
export function cvtSFromD(st: HartState, rd: number, rs1: number, rm: number): number {
  const f = st.f;
  const hi = f[2 * rs1 + 1]!;
  const lo = f[2 * rs1]!;
  const e = (hi >>> 20) & 0x7ff;
  if (e >= 898 && e <= 1149) { // unbiased [-125, 126]
    FT[0] = st.fd[rs1]!;
    FT[1] = 0;
    return finishS(st, rd, rm);
  }
  if (e === 0x7ff) {
    if (isNanD(hi, lo)) { writeCNanS(f, rd); return isSNanD(hi, lo) ? FFLAG_NV : 0; }
    f[2 * rd] = (hi & -2147483648) | 0x7f800000;
    f[2 * rd + 1] = -1;
    return 0;
  }
  if ((hi & 0x7fffffff) === 0 && lo === 0) { writeZeroS(f, rd, hi < 0); return 0; }
  unpackD(hi, lo);
  return roundPack(f, 2 * rd, hi < 0 ? 1 : 0, UP[0]!, 0, UP[1]!, false, rm);
}

/** FCVT.D.S: widening is exact; NaNs become the canonical NaN. */
export function cvtDFromS(st: HartState, rd: number, rs1: number): number {
  const f = st.f;
  const w = f[2 * rs1 + 1] === -1 ? f[2 * rs1]! : CNAN_S;
  if (isNanS(w)) { writeCNanD(f, rd); return isSNanS(w) ? FFLAG_NV : 0; }
  st.fd[rd] = st.fs[2 * rs1]!;
  return 0;
}

/** Writes 0/1 to integer register rd. */
function setBool(st: HartState, rd: number, v: boolean): void {
  if (rd === 0) return;
  st.x[2 * rd] = v ? 1 : 0;
  st.x[2 * rd + 1] = 0;
}

/** FLE.D (op 0), FLT.D (op 1), FEQ.D (op 2): FEQ is quiet, FLT/FLE signal on any NaN (§11.8). */
export function cmpD(st: HartState, rd: number, rs1: number, rs2: number, op: number): number {
  const f = st.f;
  const ahi = f[2 * rs1 + 1]!, alo = f[2 * rs1]!, bhi = f[2 * rs2 + 1]!, blo = f[2 * rs2]!;
  if (isNanD(ahi, alo) || isNanD(bhi, blo)) {
    setBool(st, rd, false);
    return op !== 2 || isSNanD(ahi, alo) || isSNanD(bhi, blo) ? FFLAG_NV : 0;
  }
  const a = st.fd[rs1]!, b = st.fd[rs2]!;
  setBool(st, rd, op === 0 ? a <= b : op === 1 ? a < b : a === b);
  return 0;
}

/** FLE.S / FLT.S / FEQ.S (op as for cmpD). */
export function cmpS(st: HartState, rd: number, rs1: number, rs2: number, op: number): number {
  const f = st.f;
  const aw = f[2 * rs1 + 1] === -1 ? f[2 * rs1]! : CNAN_S;
  const bw = f[2 * rs2 + 1] === -1 ? f[2 * rs2]! : CNAN_S;
  if (isNanS(aw) || isNanS(bw)) {
    setBool(st, rd, false);
    return op !== 2 || isSNanS(aw) || isSNanS(bw) ? FFLAG_NV : 0;
  }
  const a = st.fs[2 * rs1]!, b = st.fs[2 * rs2]!;
  setBool(st, rd, op === 0 ? a <= b : op === 1 ? a < b : a === b);
  return 0;
}

/** FMIN.D / FMAX.D: IEEE 754-2019 §9.6 minimumNumber/maximumNumber, -0 < +0 (F spec §11.6). */
export function minMaxD(st: HartState, rd: number, rs1: number, rs2: number, isMax: boolean): number {
  const f = st.f;
  const ahi = f[2 * rs1 + 1]!, alo = f[2 * rs1]!, bhi = f[2 * rs2 + 1]!, blo = f[2 * rs2]!;
  const flags = isSNanD(ahi, alo) || isSNanD(bhi, blo) ? FFLAG_NV : 0;
  const an = isNanD(ahi, alo), bn = isNanD(bhi, blo);
  let pickA: boolean;
  if (an || bn) {
    if (an && bn) { writeCNanD(f, rd); return flags; }
    pickA = bn;
  } else {
    const a = st.fd[rs1]!, b = st.fd[rs2]!;
    pickA = isMax ? a > b || (a === b && ahi >= 0) : a < b || (a === b && ahi < 0);
  }
  f[2 * rd] = pickA ? alo : blo;
  f[2 * rd + 1] = pickA ? ahi : bhi;
  return flags;
}

/** FMIN.S / FMAX.S. */
export function minMaxS(st: HartState, rd: number, rs1: number, rs2: number, isMax: boolean): number {
  const f = st.f;
  const aw = f[2 * rs1 + 1] === -1 ? f[2 * rs1]! : CNAN_S;
  const bw = f[2 * rs2 + 1] === -1 ? f[2 * rs2]! : CNAN_S;
  const flags = isSNanS(aw) || isSNanS(bw) ? FFLAG_NV : 0;
  const an = isNanS(aw), bn = isNanS(bw);
  let pickA: boolean;
  if (an || bn) {
    if (an && bn) { writeCNanS(f, rd); return flags; }
    pickA = bn;
  } else {
    const a = st.fs[2 * rs1]!, b = st.fs[2 * rs2]!;
    pickA = isMax ? a > b || (a === b && aw >= 0) : a < b || (a === b && aw < 0);
  }
  f[2 * rd] = pickA ? aw : bw;
  f[2 * rd + 1] = -1;
  return flags;
}

/** FCLASS.D mask (F spec Table 11.5): bit 0 -∞ … bit 7 +∞, bit 8 sNaN, bit 9 qNaN. */
export function classD(hi: number, lo: number): number {
  const neg = hi < 0;
  const e = (hi >>> 20) & 0x7ff;
  const m = (hi & 0xfffff) | lo;
  if (e === 0x7ff) return m === 0 ? (neg ? 1 : 0x80) : (hi & 0x80000) !== 0 ? 0x200 : 0x100;
  if (e === 0) return m === 0 ? (neg ? 0x8 : 0x10) : neg ? 0x4 : 0x20;
  return neg ? 0x2 : 0x40;
}

/** FCLASS.S mask for binary32 bits w. */
export function classS(w: number): number {
  const neg = w < 0;
  const e = (w >>> 23) & 0xff;
  const m = w & 0x7fffff;
  if (e === 0xff) return m === 0 ? (neg ? 1 : 0x80) : (w & 0x400000) !== 0 ? 0x200 : 0x100;
  if (e === 0) return m === 0 ? (neg ? 0x8 : 0x10) : neg ? 0x4 : 0x20;
  return neg ? 0x2 : 0x40;
}
