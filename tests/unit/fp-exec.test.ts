/**
 * Hand-picked corner cases for the F/D execution unit (execFp): rounding modes, ties,
 * tininess after rounding, overflow per rounding mode, NaN boxing and canonical NaNs,
 * minimumNumber/maximumNumber, quiet vs signalling compares, integer-conversion saturation,
 * fused multiply-add without double rounding, and illegal encodings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FFLAG_DZ, FFLAG_NV, FFLAG_NX, FFLAG_OF, FFLAG_UF, HartState, RM_DYN, RM_RDN, RM_RMM, RM_RNE, RM_RTZ, RM_RUP, S,
} from '../../src/cpu/hart-state.js';
import { execFp } from '../../src/cpu/exec-fp.js';

const NX = FFLAG_NX, UF = FFLAG_UF, OF = FFLAG_OF, DZ = FFLAG_DZ, NV = FFLAG_NV;
const RD = 10, A = 1, B = 2, C = 3, XA = 5;

/** OP-FP encoding: funct5, fmt (0 = S, 1 = D), rs2 field, rm field. */
function opfp(funct5: number, fmt: number, rs2: number, rm: number, rs1 = A, rd = RD): number {
  return ((funct5 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | 0x53) >>> 0;
}
/** R4 (fused multiply-add) encoding. */
function r4(op: number, fmt: number, rm: number): number {
  return ((C << 27) | (fmt << 25) | (B << 20) | (A << 15) | (rm << 12) | (RD << 7) | op) >>> 0;
}
const D = 1, SG = 0;
const FADD = 0x00, FSUB = 0x01, FMUL = 0x02, FDIV = 0x03, FSQRT = 0x0b, FSGNJ = 0x04, FMINMAX = 0x05;
const FCVT_FF = 0x08, FCMP = 0x14, FCVT_XF = 0x18, FCVT_FX = 0x1a, FMV_X = 0x1c, FMV_F = 0x1e;
const FMADD = 0x43, FMSUB = 0x47, FNMSUB = 0x4b, FNMADD = 0x4f;

const st = new HartState();
function set64(arr: Int32Array, i: number, hex: string): void {
  const h = hex.padStart(16, '0');
  arr[2 * i] = parseInt(h.slice(8), 16) | 0;
  arr[2 * i + 1] = parseInt(h.slice(0, 8), 16) | 0;
}
function get64(arr: Int32Array, i: number): string {
  return (arr[2 * i + 1]! >>> 0).toString(16).padStart(8, '0') + (arr[2 * i]! >>> 0).toString(16).padStart(8, '0');
}
/** A single NaN-boxed into a 64-bit register image. */
const box = (w: string): string => `ffffffff${w.padStart(8, '0')}`;

interface Case { name: string; insn: number; f?: string[]; x?: string; frm?: number; wantF?: string; wantX?: string; flags: number }

function runCase(c: Case): void {
  st.f.fill(0x55555555);
  st.x.fill(0);
  (c.f ?? []).forEach((v, i) => set64(st.f, [A, B, C][i]!, v));
  if (c.x !== undefined) set64(st.x, XA, c.x);
  st.s[S.FFLAGS] = 0;
  st.s[S.FRM] = c.frm ?? RM_RNE;
  st.setPc(0x1000);
  assert.equal(execFp(st, c.insn), 0, `${c.name}: unexpectedly illegal`);
  if (c.wantF !== undefined) assert.equal(get64(st.f, RD), c.wantF.padStart(16, '0'), `${c.name}: f result`);
  if (c.wantX !== undefined) assert.equal(get64(st.x, RD), c.wantX.padStart(16, '0'), `${c.name}: x result`);
  assert.equal(st.s[S.FFLAGS], c.flags, `${c.name}: fflags`);
  assert.equal(st.getPc(), 0x1000, `${c.name}: pc must not change`);
}

const ONE = '3ff0000000000000';
const HALF_ULP1 = '3ca0000000000000'; // 2^-53
const MAXD = '7fefffffffffffff';
const MINN = '0010000000000000';
const MAXSUB = '000fffffffffffff';
const CNAND = '7ff8000000000000';
const CNANS = box('7fc00000');
const SNAND = '7ff0000000000001';

test('binary64 add: ties under every rounding mode, exact zero signs, ∞ - ∞', () => {
  const cases: Case[] = [
    { name: '1 + 2^-53 RNE', insn: opfp(FADD, D, B, RM_RNE), f: [ONE, HALF_ULP1], wantF: ONE, flags: NX },
    { name: '1 + 2^-53 RMM', insn: opfp(FADD, D, B, RM_RMM), f: [ONE, HALF_ULP1], wantF: '3ff0000000000001', flags: NX },
    { name: '1 + 2^-53 RUP', insn: opfp(FADD, D, B, RM_RUP), f: [ONE, HALF_ULP1], wantF: '3ff0000000000001', flags: NX },
    { name: '1 + 2^-53 RDN', insn: opfp(FADD, D, B, RM_RDN), f: [ONE, HALF_ULP1], wantF: ONE, flags: NX },
    { name: '1 + 2^-53 RTZ', insn: opfp(FADD, D, B, RM_RTZ), f: [ONE, HALF_ULP1], wantF: ONE, flags: NX },
    { name: '-1 - 2^-53 RDN', insn: opfp(FSUB, D, B, RM_RDN), f: ['bff0000000000000', HALF_ULP1], wantF: 'bff0000000000001', flags: NX },
    { name: '1 - 2^-53 exact', insn: opfp(FSUB, D, B, RM_RNE), f: [ONE, HALF_ULP1], wantF: '3fefffffffffffff', flags: 0 },
    { name: '1 + -1 RNE', insn: opfp(FADD, D, B, RM_RNE), f: [ONE, 'bff0000000000000'], wantF: '0000000000000000', flags: 0 },
    { name: '1 + -1 RDN', insn: opfp(FADD, D, B, RM_RDN), f: [ONE, 'bff0000000000000'], wantF: '8000000000000000', flags: 0 },
    { name: '-0 + -0', insn: opfp(FADD, D, B, RM_RNE), f: ['8000000000000000', '8000000000000000'], wantF: '8000000000000000', flags: 0 },
    { name: '+0 - +0 RDN', insn: opfp(FSUB, D, B, RM_RDN), f: ['0', '0'], wantF: '8000000000000000', flags: 0 },
    { name: 'subnormal sum exact', insn: opfp(FADD, D, B, RM_RUP), f: [MAXSUB, '0000000000000001'], wantF: MINN, flags: 0 },
    { name: '∞ - ∞', insn: opfp(FSUB, D, B, RM_RNE), f: ['7ff0000000000000', '7ff0000000000000'], wantF: CNAND, flags: NV },
    { name: 'qNaN payload is not propagated', insn: opfp(FADD, D, B, RM_RNE), f: ['7ff8000000000123', ONE], wantF: CNAND, flags: 0 },
    { name: 'sNaN + 1', insn: opfp(FADD, D, B, RM_RNE), f: [SNAND, ONE], wantF: CNAND, flags: NV },
  ];
  cases.forEach(runCase);
});

test('binary64 overflow result depends on rounding mode and sign', () => {
  const ov = (name: string, rm: number, a: string, want: string): Case =>
    ({ name, insn: opfp(FADD, D, B, rm), f: [a, a], wantF: want, flags: OF | NX });
  const NMAX = 'ffefffffffffffff';
  [
    ov('max+max RNE', RM_RNE, MAXD, '7ff0000000000000'), ov('max+max RTZ', RM_RTZ, MAXD, MAXD),
    ov('max+max RDN', RM_RDN, MAXD, MAXD), ov('max+max RUP', RM_RUP, MAXD, '7ff0000000000000'),
    ov('max+max RMM', RM_RMM, MAXD, '7ff0000000000000'),
    ov('-max-max RUP', RM_RUP, NMAX, NMAX), ov('-max-max RDN', RM_RDN, NMAX, 'fff0000000000000'),
    ov('-max-max RTZ', RM_RTZ, NMAX, NMAX),
  ].forEach(runCase);
});

test('binary64 underflow: tininess after rounding, UF only when inexact', () => {
  [
    // (1 - 2^-53) * 2^-1022: tiny even after rounding to 53 bits; the subnormal result rounds up to 2^-1022.
    { name: 'tiny, rounds to min normal', insn: opfp(FMUL, D, B, RM_RNE), f: ['3fefffffffffffff', MINN], wantF: MINN, flags: UF | NX },
    // (1 + 2^-52)(1 - 2^-52) 2^-1022 = (1 - 2^-104) 2^-1022 rounds to 2^-1022 at 53 bits: not tiny.
    { name: 'not tiny after rounding', insn: opfp(FMUL, D, B, RM_RNE), f: ['3ff0000000000001', MAXSUB], wantF: MINN, flags: NX },
    { name: 'same product RTZ is tiny', insn: opfp(FMUL, D, B, RM_RTZ), f: ['3ff0000000000001', MAXSUB], wantF: MAXSUB, flags: UF | NX },
    { name: 'exact subnormal product', insn: opfp(FMUL, D, B, RM_RNE), f: ['3fe0000000000000', '0000000000000002'], wantF: '0000000000000001', flags: 0 },
    { name: 'min subnormal / 2 ties to 0', insn: opfp(FMUL, D, B, RM_RNE), f: ['3fe0000000000000', '0000000000000001'], wantF: '0000000000000000', flags: UF | NX },
    { name: 'min subnormal / 2 RUP', insn: opfp(FMUL, D, B, RM_RUP), f: ['3fe0000000000000', '0000000000000001'], wantF: '0000000000000001', flags: UF | NX },
    { name: '-min subnormal * 0.75 RMM', insn: opfp(FMUL, D, B, RM_RMM), f: ['3fe8000000000000', '8000000000000001'], wantF: '8000000000000001', flags: UF | NX },
    { name: '2^-1000 * 2^-1000 RDN', insn: opfp(FMUL, D, B, RM_RDN), f: ['0170000000000000', '0170000000000000'], wantF: '0000000000000000', flags: UF | NX },
  ].forEach(runCase);
});

test('binary64 divide and square root', () => {
  [
    { name: '1/0', insn: opfp(FDIV, D, B, RM_RNE), f: [ONE, '0'], wantF: '7ff0000000000000', flags: DZ },
    { name: '-1/+0', insn: opfp(FDIV, D, B, RM_RNE), f: ['bff0000000000000', '0'], wantF: 'fff0000000000000', flags: DZ },
    { name: '0/0', insn: opfp(FDIV, D, B, RM_RNE), f: ['0', '8000000000000000'], wantF: CNAND, flags: NV },
    { name: '∞/∞', insn: opfp(FDIV, D, B, RM_RNE), f: ['7ff0000000000000', 'fff0000000000000'], wantF: CNAND, flags: NV },
    { name: '∞/0 is exact', insn: opfp(FDIV, D, B, RM_RNE), f: ['7ff0000000000000', '0'], wantF: '7ff0000000000000', flags: 0 },
    { name: '1/3 RNE', insn: opfp(FDIV, D, B, RM_RNE), f: [ONE, '4008000000000000'], wantF: '3fd5555555555555', flags: NX },
    { name: '1/3 RUP', insn: opfp(FDIV, D, B, RM_RUP), f: [ONE, '4008000000000000'], wantF: '3fd5555555555556', flags: NX },
    { name: 'max / 0.5 overflows', insn: opfp(FDIV, D, B, RM_RTZ), f: [MAXD, '3fe0000000000000'], wantF: MAXD, flags: OF | NX },
    { name: 'sqrt 2', insn: opfp(FSQRT, D, 0, RM_RNE), f: ['4000000000000000'], wantF: '3ff6a09e667f3bcd', flags: NX },
    { name: 'sqrt 2 RUP (RN is already above)', insn: opfp(FSQRT, D, 0, RM_RUP), f: ['4000000000000000'], wantF: '3ff6a09e667f3bcd', flags: NX },
    { name: 'sqrt 2 RDN', insn: opfp(FSQRT, D, 0, RM_RDN), f: ['4000000000000000'], wantF: '3ff6a09e667f3bcc', flags: NX },
    { name: 'sqrt 4', insn: opfp(FSQRT, D, 0, RM_RDN), f: ['4010000000000000'], wantF: '4000000000000000', flags: 0 },
    { name: 'sqrt min subnormal', insn: opfp(FSQRT, D, 0, RM_RNE), f: ['0000000000000001'], wantF: '1e60000000000000', flags: 0 },
    { name: 'sqrt -0', insn: opfp(FSQRT, D, 0, RM_RNE), f: ['8000000000000000'], wantF: '8000000000000000', flags: 0 },
    { name: 'sqrt -1', insn: opfp(FSQRT, D, 0, RM_RNE), f: ['bff0000000000000'], wantF: CNAND, flags: NV },
    { name: 'sqrt -∞', insn: opfp(FSQRT, D, 0, RM_RNE), f: ['fff0000000000000'], wantF: CNAND, flags: NV },
    { name: 'sqrt sNaN', insn: opfp(FSQRT, D, 0, RM_RNE), f: [SNAND], wantF: CNAND, flags: NV },
  ].forEach(runCase);
});

test('fused multiply-add: single rounding, zero signs, ∞×0 with a quiet NaN addend', () => {
  [
    // (1 + 2^-52)(1 - 2^-53) - 1 = 2^-53 - 2^-105, exact only when fused.
    { name: 'fmadd exact residual', insn: r4(FMADD, D, RM_RNE), f: ['3ff0000000000001', '3fefffffffffffff', 'bff0000000000000'], wantF: '3c9ffffffffffffe', flags: 0 },
    // (1 + 2^-52)^2 - 1 = 2^-51 + 2^-104 fused (a separate multiply would give 2^-51).
    { name: 'fmsub keeps the low product bits', insn: r4(FMSUB, D, RM_RUP), f: ['3ff0000000000001', '3ff0000000000001', ONE], wantF: '3cc0000000000001', flags: NX },
    { name: 'fnmadd 1*1 + -1 is +0', insn: r4(FNMADD, D, RM_RNE), f: [ONE, ONE, 'bff0000000000000'], wantF: '0000000000000000', flags: 0 },
    { name: 'fnmsub 1*1 - 1 RDN is -0', insn: r4(FNMSUB, D, RM_RDN), f: [ONE, ONE, ONE], wantF: '8000000000000000', flags: 0 },
    { name: '0*x + -0', insn: r4(FMADD, D, RM_RNE), f: ['0', ONE, '8000000000000000'], wantF: '0000000000000000', flags: 0 },
    { name: '-0*x + -0', insn: r4(FMADD, D, RM_RNE), f: ['8000000000000000', ONE, '8000000000000000'], wantF: '8000000000000000', flags: 0 },
    { name: '∞*0 + qNaN raises NV', insn: r4(FMADD, D, RM_RNE), f: ['7ff0000000000000', '0', CNAND], wantF: CNAND, flags: NV },
    { name: 'qNaN*0 + 1 is quiet', insn: r4(FMADD, D, RM_RNE), f: [CNAND, '0', ONE], wantF: CNAND, flags: 0 },
    { name: '∞*1 - ∞', insn: r4(FMSUB, D, RM_RNE), f: ['7ff0000000000000', ONE, '7ff0000000000000'], wantF: CNAND, flags: NV },
    { name: 'tiny product + min normal RDN', insn: r4(FMADD, D, RM_RDN), f: ['0000000000000001', 'bfe0000000000000', MINN], wantF: MAXSUB, flags: UF | NX },
    // (1 + 2^-23)(1 - 2^-23) 2^-24 + 1 = 1 + 2^-24 - 2^-70: rounding the exact sum to binary64
    // first would give the midpoint 1 + 2^-24, which RMM would round away.
    { name: 'fmadd.s avoids double rounding', insn: r4(FMADD, SG, RM_RMM),
      f: [box('3f800001'), box('337ffffe'), box('3f800000')], wantF: box('3f800000'), flags: NX },
    { name: 'fmadd.s exact midpoint RMM', insn: r4(FMADD, SG, RM_RMM),
      f: [box('3f800000'), box('33800000'), box('3f800000')], wantF: box('3f800001'), flags: NX },
  ].forEach(runCase);
});

test('binary32: NaN boxing, canonical NaN, sign injection, moves', () => {
  const bad = '00000000bf800000'; // not NaN-boxed: reads as the canonical NaN
  [
    { name: 'fadd.s non-boxed', insn: opfp(FADD, SG, B, RM_RNE), f: [bad, box('3f800000')], wantF: CNANS, flags: 0 },
    { name: 'fadd.s 1 + 2^-24 tie', insn: opfp(FADD, SG, B, RM_RNE), f: [box('3f800000'), box('33800000')], wantF: box('3f800000'), flags: NX },
    { name: 'fadd.s 1 + 2^-24 RMM', insn: opfp(FADD, SG, B, RM_RMM), f: [box('3f800000'), box('33800000')], wantF: box('3f800001'), flags: NX },
    { name: 'fmul.s overflow RDN', insn: opfp(FMUL, SG, B, RM_RDN), f: [box('7f000000'), box('40800000')], wantF: box('7f7fffff'), flags: OF | NX },
    { name: 'fmul.s subnormal tie', insn: opfp(FMUL, SG, B, RM_RNE), f: [box('00000003'), box('3f000000')], wantF: box('00000002'), flags: UF | NX },
    { name: 'fdiv.s 1/3', insn: opfp(FDIV, SG, B, RM_RNE), f: [box('3f800000'), box('40400000')], wantF: box('3eaaaaab'), flags: NX },
    { name: 'fsqrt.s 2 RTZ', insn: opfp(FSQRT, SG, 0, RM_RTZ), f: [box('40000000')], wantF: box('3fb504f3'), flags: NX },
    { name: 'fsgnj.s non-boxed rs1', insn: opfp(FSGNJ, SG, B, 0), f: [bad, box('80000000')], wantF: box('ffc00000'), flags: 0 },
    { name: 'fsgnjn.s', insn: opfp(FSGNJ, SG, B, 1), f: [box('3f800000'), box('3f800000')], wantF: box('bf800000'), flags: 0 },
    { name: 'fsgnjx.s', insn: opfp(FSGNJ, SG, B, 2), f: [box('bf800000'), box('80000000')], wantF: box('3f800000'), flags: 0 },
    { name: 'fsgnjx.d keeps sNaN', insn: opfp(FSGNJ, D, B, 2), f: [SNAND, 'bff0000000000000'], wantF: 'fff0000000000001', flags: 0 },
    { name: 'fmv.x.w sign-extends, no box check', insn: opfp(FMV_X, SG, 0, 0), f: ['0000000080000001'], wantX: 'ffffffff80000001', flags: 0 },
    { name: 'fmv.x.d', insn: opfp(FMV_X, D, 0, 0), f: ['7ff0000000000001'], wantX: '7ff0000000000001', flags: 0 },
    { name: 'fmv.w.x boxes', insn: opfp(FMV_F, SG, 0, 0, XA), x: '123456789abcdef0', wantF: box('9abcdef0'), flags: 0 },
    { name: 'fmv.d.x', insn: opfp(FMV_F, D, 0, 0, XA), x: '123456789abcdef0', wantF: '123456789abcdef0', flags: 0 },
    { name: 'fcvt.d.s non-boxed', insn: opfp(FCVT_FF, D, 0, RM_RNE), f: [bad], wantF: CNAND, flags: 0 },
    { name: 'fcvt.d.s sNaN', insn: opfp(FCVT_FF, D, 0, RM_RNE), f: [box('7f800001')], wantF: CNAND, flags: NV },
    { name: 'fcvt.d.s subnormal', insn: opfp(FCVT_FF, D, 0, RM_RNE), f: [box('00000001')], wantF: '36a0000000000000', flags: 0 },
    { name: 'fcvt.s.d overflow', insn: opfp(FCVT_FF, SG, 1, RM_RNE), f: ['4830000000000000'], wantF: box('7f800000'), flags: OF | NX },
    { name: 'fcvt.s.d overflow RTZ', insn: opfp(FCVT_FF, SG, 1, RM_RTZ), f: ['c830000000000000'], wantF: box('ff7fffff'), flags: OF | NX },
    { name: 'fcvt.s.d 2^-150 ties to 0', insn: opfp(FCVT_FF, SG, 1, RM_RNE), f: ['3690000000000000'], wantF: box('00000000'), flags: UF | NX },
    { name: 'fcvt.s.d 2^-150 RUP', insn: opfp(FCVT_FF, SG, 1, RM_RUP), f: ['3690000000000000'], wantF: box('00000001'), flags: UF | NX },
    { name: 'fcvt.s.d double subnormal RDN', insn: opfp(FCVT_FF, SG, 1, RM_RDN), f: ['8000000000000001'], wantF: box('80000001'), flags: UF | NX },
    { name: 'fcvt.s.d sNaN', insn: opfp(FCVT_FF, SG, 1, RM_RNE), f: [SNAND], wantF: CNANS, flags: NV },
    { name: 'fclass.s non-boxed is qNaN', insn: opfp(FMV_X, SG, 0, 1), f: [bad], wantX: '0000000000000200', flags: 0 },
  ].forEach(runCase);
});

test('min/max (minimumNumber), compares and classification', () => {
  [
    { name: 'fmin sNaN, 1', insn: opfp(FMINMAX, D, B, 0), f: [SNAND, ONE], wantF: ONE, flags: NV },
    { name: 'fmax qNaN, qNaN', insn: opfp(FMINMAX, D, B, 1), f: ['7ff8000000000005', 'fff8000000000000'], wantF: CNAND, flags: 0 },
    { name: 'fmin +0, -0', insn: opfp(FMINMAX, D, B, 0), f: ['0', '8000000000000000'], wantF: '8000000000000000', flags: 0 },
    { name: 'fmax -0, +0', insn: opfp(FMINMAX, D, B, 1), f: ['8000000000000000', '0'], wantF: '0000000000000000', flags: 0 },
    { name: 'fmax.s 1, qNaN', insn: opfp(FMINMAX, SG, B, 1), f: [box('3f800000'), box('7fc00000')], wantF: box('3f800000'), flags: 0 },
    { name: 'feq qNaN quiet', insn: opfp(FCMP, D, B, 2), f: [CNAND, CNAND], wantX: '0', flags: 0 },
    { name: 'feq sNaN signals', insn: opfp(FCMP, D, B, 2), f: [SNAND, ONE], wantX: '0', flags: NV },
    { name: 'flt qNaN signals', insn: opfp(FCMP, D, B, 1), f: [CNAND, ONE], wantX: '0', flags: NV },
    { name: 'fle -0 <= +0', insn: opfp(FCMP, D, B, 0), f: ['8000000000000000', '0'], wantX: '1', flags: 0 },
    { name: 'flt -0 < +0 is false', insn: opfp(FCMP, D, B, 1), f: ['8000000000000000', '0'], wantX: '0', flags: 0 },
    { name: 'feq.s', insn: opfp(FCMP, SG, B, 2), f: [box('3f800000'), box('3f800000')], wantX: '1', flags: 0 },
  ].forEach(runCase);
  const cls: [string, number][] = [['fff0000000000000', 0], ['bff0000000000000', 1], ['800fffffffffffff', 2], ['8000000000000000', 3],
    ['0', 4], ['0000000000000001', 5], [ONE, 6], ['7ff0000000000000', 7], [SNAND, 8], [CNAND, 9]];
  for (const [v, bit] of cls) runCase({ name: `fclass.d ${v}`, insn: opfp(FMV_X, D, 0, 1), f: [v], wantX: (1 << bit).toString(16), flags: 0 });
});

test('integer conversions: rounding, saturation and flags', () => {
  const toInt = (name: string, kind: number, rm: number, v: string, want: string, flags: number, fmt = D): Case =>
    ({ name, insn: opfp(FCVT_XF, fmt, kind, rm), f: [v], wantX: want, flags });
  const fromInt = (name: string, kind: number, rm: number, x: string, want: string, flags: number, fmt = D): Case =>
    ({ name, insn: opfp(FCVT_FX, fmt, kind, rm, XA), x, wantF: want, flags });
  [
    toInt('w NaN', 0, RM_RNE, CNAND, '000000007fffffff', NV),
    toInt('w -NaN is still max', 0, RM_RNE, 'fff8000000000000', '000000007fffffff', NV),
    toInt('w -∞', 0, RM_RNE, 'fff0000000000000', 'ffffffff80000000', NV),
    toInt('w 2^31', 0, RM_RNE, '41e0000000000000', '000000007fffffff', NV),
    toInt('w 2^31 - 0.5 RNE rounds up, then saturates', 0, RM_RNE, '41dfffffffe00000', '000000007fffffff', NV),
    toInt('w 2^31 - 0.5 RTZ', 0, RM_RTZ, '41dfffffffe00000', '000000007fffffff', NX),
    toInt('w -0.5 RNE', 0, RM_RNE, 'bfe0000000000000', '0000000000000000', NX),
    toInt('w 2.5 RNE', 0, RM_RNE, '4004000000000000', '0000000000000002', NX),
    toInt('w 2.5 RMM', 0, RM_RMM, '4004000000000000', '0000000000000003', NX),
    toInt('w -2.5 RMM', 0, RM_RMM, 'c004000000000000', 'fffffffffffffffd', NX),
    toInt('w -2.5 RDN', 0, RM_RDN, 'c004000000000000', 'fffffffffffffffd', NX),
    toInt('w 0.49999999999999994 RMM', 0, RM_RMM, '3fdfffffffffffff', '0000000000000000', NX),
    toInt('wu -1', 1, RM_RNE, 'bff0000000000000', '0000000000000000', NV),
    toInt('wu -0.5 RTZ', 1, RM_RTZ, 'bfe0000000000000', '0000000000000000', NX),
    toInt('wu -0', 1, RM_RTZ, '8000000000000000', '0000000000000000', 0),
    toInt('wu 2^32-1 sign-extends', 1, RM_RNE, '41efffffffe00000', 'ffffffffffffffff', 0),
    toInt('wu NaN', 1, RM_RNE, CNAND, 'ffffffffffffffff', NV),
    toInt('l 2^63', 2, RM_RNE, '43e0000000000000', '7fffffffffffffff', NV),
    toInt('l -2^63', 2, RM_RNE, 'c3e0000000000000', '8000000000000000', 0),
    toInt('l -1.5 RUP', 2, RM_RUP, 'bff8000000000000', 'ffffffffffffffff', NX),
    toInt('lu 2^64', 3, RM_RNE, '43f0000000000000', 'ffffffffffffffff', NV),
    toInt('lu -∞', 3, RM_RNE, 'fff0000000000000', '0000000000000000', NV),
    toInt('lu 2^64 - 2^11', 3, RM_RNE, '43efffffffffffff', 'fffffffffffff800', 0),
    toInt('w.s 1.5 RNE', 0, RM_RNE, box('3fc00000'), '0000000000000002', NX, SG),
    toInt('w.s non-boxed', 0, RM_RNE, '000000003f800000', '000000007fffffff', NV, SG),
    fromInt('d.l 2^53+1 RNE', 2, RM_RNE, '0020000000000001', '4340000000000000', NX),
    fromInt('d.l 2^53+1 RUP', 2, RM_RUP, '0020000000000001', '4340000000000001', NX),
    fromInt('d.l -1', 2, RM_RNE, 'ffffffffffffffff', 'bff0000000000000', 0),
    fromInt('d.lu 2^64-1', 3, RM_RNE, 'ffffffffffffffff', '43f0000000000000', NX),
    fromInt('d.lu 2^64-1 RTZ', 3, RM_RTZ, 'ffffffffffffffff', '43efffffffffffff', NX),
    fromInt('d.w ignores the upper word', 0, RM_RNE, '12345678ffffffff', 'bff0000000000000', 0),
    fromInt('d.wu', 1, RM_RNE, '00000000ffffffff', '41efffffffe00000', 0),
    fromInt('s.w 2^24+1 RNE', 0, RM_RNE, '0000000001000001', box('4b800000'), NX, SG),
    fromInt('s.w 2^24+1 RMM', 0, RM_RMM, '0000000001000001', box('4b800001'), NX, SG),
    fromInt('s.w 0', 0, RM_RDN, '0', box('00000000'), 0, SG),
    // 2^60 + 2^36 + 1: a binary32 midpoint after the binary64 rounding of the integer alone
    fromInt('s.l no double rounding', 2, RM_RNE, '1000001000000001', box('5d800001'), NX, SG),
    fromInt('s.lu 2^64-1', 3, RM_RNE, 'ffffffffffffffff', box('5f800000'), NX, SG),
  ].forEach(runCase);
});

test('dynamic rounding mode, accrued flags, x0 destination', () => {
  runCase({ name: 'DYN uses frm=RUP', insn: opfp(FADD, D, B, RM_DYN), frm: RM_RUP, f: [ONE, HALF_ULP1], wantF: '3ff0000000000001', flags: NX });
  st.s[S.FFLAGS] = DZ;
  set64(st.f, A, ONE); set64(st.f, B, '4008000000000000');
  assert.equal(execFp(st, opfp(FDIV, D, B, RM_RNE)), 0);
  assert.equal(st.s[S.FFLAGS], DZ | NX, 'flags accrue');
  st.s[S.FFLAGS] = 0;
  set64(st.f, A, CNAND);
  assert.equal(execFp(st, opfp(FCMP, D, B, 1, A, 0)), 0);
  assert.equal(get64(st.x, 0), '0000000000000000', 'x0 is never written');
  assert.equal(st.s[S.FFLAGS], NV, 'flags still set for rd = x0');
  assert.equal(execFp(st, opfp(FCVT_XF, D, 0, RM_RNE, A, 0)), 0);
  assert.equal(get64(st.x, 0), '0000000000000000');
});

test('illegal encodings return -1', () => {
  const ill = (name: string, insn: number, frm = RM_RNE): void => {
    st.s[S.FRM] = frm;
    assert.equal(execFp(st, insn), -1, name);
  };
  ill('rm = 5', opfp(FADD, D, B, 5));
  ill('rm = 6', opfp(FMUL, SG, B, 6));
  ill('DYN with frm = 5', opfp(FADD, D, B, RM_DYN), 5);
  ill('DYN with frm = 7', r4(FMADD, D, RM_DYN), 7);
  ill('fcvt.d.s with rm = 5', opfp(FCVT_FF, D, 0, 5));
  ill('fmt = H', opfp(FADD, 2, B, RM_RNE));
  ill('fmt = Q', r4(FMADD, 3, RM_RNE));
  ill('fsqrt rs2 != 0', opfp(FSQRT, D, 1, RM_RNE));
  ill('fsgnj rm = 3', opfp(FSGNJ, D, B, 3));
  ill('fmin rm = 2', opfp(FMINMAX, D, B, 2));
  ill('fle rm = 3', opfp(FCMP, SG, B, 3));
  ill('fcvt.s.d with rs2 = 0', opfp(FCVT_FF, SG, 0, RM_RNE));
  ill('fcvt.d.s with rs2 = 1', opfp(FCVT_FF, D, 1, RM_RNE));
  ill('fcvt.w.d rs2 = 4', opfp(FCVT_XF, D, 4, RM_RNE));
  ill('fmv.x.w rs2 = 1', opfp(FMV_X, SG, 1, 0));
  ill('fclass rm = 2', opfp(FMV_X, D, 0, 2));
  ill('fmv.w.x rm = 1', opfp(FMV_F, SG, 0, 1));
  ill('unknown funct5', opfp(0x06, D, B, 0));
  ill('not an FP opcode', 0x00000013);
  // Sign injection has no rm field: an invalid frm does not matter.
  st.s[S.FRM] = 7;
  assert.equal(execFp(st, opfp(FSGNJ, D, B, 0)), 0);
});
