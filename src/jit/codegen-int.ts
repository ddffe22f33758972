/**
 * Code generation for the integer instructions (RV64I, M, Zba, Zbb, Zbs):
 * OP, OP-IMM, OP-32 and OP-IMM-32. Each function pushes the result of one
 * instruction and pops it into rd, through the unit's register locals
 * (`IntCtx`, supplied by codegen.ts). rd is never x0 here: the caller drops
 * instructions whose only effect is a write to x0.
 */
import { Op, I32, I64, type Code } from './wasm-writer.js';
import { L_A, L_LO, L_P, L_T, L_T2, L_T3, L_T4 } from './unit-abi.js';

/** What the integer code generators need from the unit being generated. */
export interface IntCtx {
  c: Code;
  /** Pushes guest register r (0 for x0). */
  getX(r: number): void;
  /** Pops the value on the stack into guest register rd. */
  setX(rd: number): void;
}

/** OP-IMM (addi … srai, and the Zbb/Zbs immediate forms): rd = f(x[r1], imm). */
export function opImm(g: IntCtx, insn: number, rd: number, r1: number, f3: number): void {
  const c = g.c, imm = insn >> 20, sh = imm & 0x3f, f6 = (imm >>> 6) & 0x3f;
  g.getX(r1);
  switch (f3) {
    case 0: if (imm !== 0) { c.i64(imm); c.op(Op.i64_add); } break;
    case 2: c.i64(imm); c.op(Op.i64_lt_s); c.op(Op.i64_extend_i32_u); break;
    case 3: c.i64(imm); c.op(Op.i64_lt_u); c.op(Op.i64_extend_i32_u); break;
    case 4: c.i64(imm); c.op(Op.i64_xor); break;
    case 6: c.i64(imm); c.op(Op.i64_or); break;
    case 7: c.i64(imm); c.op(Op.i64_and); break;
    case 1:
      if (f6 === 0) { c.i64(sh); c.op(Op.i64_shl); }
      else if (f6 === 0x0a) { bit(g, sh); c.op(Op.i64_or); } // bseti
      else if (f6 === 0x12) { bit(g, sh); c.i64(-1); c.op(Op.i64_xor); c.op(Op.i64_and); } // bclri
      else if (f6 === 0x1a) { bit(g, sh); c.op(Op.i64_xor); } // binvi
      else {
        switch (imm & 0xfff) {
          case 0x600: c.op(Op.i64_clz); break;
          case 0x601: c.op(Op.i64_ctz); break;
          case 0x602: c.op(Op.i64_popcnt); break;
          case 0x604: c.op(Op.i64_extend8_s); break;
          default: c.op(Op.i64_extend16_s); break; // 0x605
        }
      }
      break;
    default: // 5
      if (f6 === 0) { c.i64(sh); c.op(Op.i64_shr_u); }
      else if (f6 === 0x10) { c.i64(sh); c.op(Op.i64_shr_s); }
      else if (f6 === 0x18) { c.i64(sh); c.op(Op.i64_rotr); }
      else if ((imm & 0xfff) === 0x287) orcB(g);
      else if ((imm & 0xfff) === 0x6b8) rev8(g);
      else { c.i64(sh); c.op(Op.i64_shr_u); c.i64(1); c.op(Op.i64_and); } // bexti
      break;
  }
  g.setX(rd);
}

/**
 * orc.b (Zbb): each byte becomes 0xff if it was nonzero, else 0. Adding
 * 0x7f to each byte's low 7 bits sets its bit 7 exactly when they are
 * nonzero, with no carry into the next byte; OR-ing the value catches 0x80.
 */
function orcB(g: IntCtx): void {
  const c = g.c;
  c.local(Op.local_tee, L_T); c.i64w(0x7f7f7f7f, 0x7f7f7f7f); c.op(Op.i64_and);
  c.i64w(0x7f7f7f7f, 0x7f7f7f7f); c.op(Op.i64_add); c.local(Op.local_get, L_T); c.op(Op.i64_or);
  c.i64w(0x80808080 | 0, 0x80808080 | 0); c.op(Op.i64_and); c.i64(7); c.op(Op.i64_shr_u); c.i64(0xff); c.op(Op.i64_mul);
}

/** rev8 (Zbb, RV64): byte swap, by swapping bytes within halfwords, halfwords within words, then the words. */
function rev8(g: IntCtx): void {
  const c = g.c;
  for (const [sh, lo] of [[8, 0x00ff00ff], [16, 0x0000ffff]] as const) {
    c.local(Op.local_tee, L_T); c.i64(sh); c.op(Op.i64_shr_u); c.i64w(lo, lo); c.op(Op.i64_and);
    c.local(Op.local_get, L_T); c.i64w(lo, lo); c.op(Op.i64_and); c.i64(sh); c.op(Op.i64_shl); c.op(Op.i64_or);
  }
  c.i64(32); c.op(Op.i64_rotr);
}

/** Pushes the i64 constant 1 << n (n in 0..63). */
function bit(g: IntCtx, n: number): void {
  if (n < 32) g.c.i64w(n === 31 ? 0x80000000 | 0 : 1 << n, 0);
  else g.c.i64w(0, n === 63 ? 0x80000000 | 0 : 1 << (n - 32));
}

/** OP (the base ALU, M, Zba, Zbb and Zbs register forms): rd = f(x[r1], x[r2]). */
export function op(g: IntCtx, insn: number, rd: number, r1: number, r2: number, f3: number): void {
  const c = g.c, key = (insn >>> 22 & 0x3f8) | f3;
  const ab = (): void => { g.getX(r1); g.getX(r2); };
  switch (key) {
    case 0x000: ab(); c.op(Op.i64_add); break;
    case 0x100: ab(); c.op(Op.i64_sub); break;
    case 0x001: ab(); c.op(Op.i64_shl); break; // wasm masks the count to 6 bits, as RV64 does
    case 0x002: ab(); c.op(Op.i64_lt_s); c.op(Op.i64_extend_i32_u); break;
    case 0x003: ab(); c.op(Op.i64_lt_u); c.op(Op.i64_extend_i32_u); break;
    case 0x004: ab(); c.op(Op.i64_xor); break;
    case 0x005: ab(); c.op(Op.i64_shr_u); break;
    case 0x105: ab(); c.op(Op.i64_shr_s); break;
    case 0x006: ab(); c.op(Op.i64_or); break;
    case 0x007: ab(); c.op(Op.i64_and); break;
    case 0x008: ab(); c.op(Op.i64_mul); break;
    case 0x009: case 0x00a: case 0x00b: mulh(g, r1, r2, key); break;
    case 0x00c: div(g, r1, r2, true, false); break;
    case 0x00d: div(g, r1, r2, false, false); break;
    case 0x00e: div(g, r1, r2, true, true); break;
    case 0x00f: div(g, r1, r2, false, true); break;
    case 0x107: g.getX(r1); g.getX(r2); c.i64(-1); c.op(Op.i64_xor); c.op(Op.i64_and); break; // andn
    case 0x106: g.getX(r1); g.getX(r2); c.i64(-1); c.op(Op.i64_xor); c.op(Op.i64_or); break; // orn
    case 0x104: ab(); c.op(Op.i64_xor); c.i64(-1); c.op(Op.i64_xor); break; // xnor
    case 0x082: case 0x084: case 0x086: // sh1add, sh2add, sh3add
      g.getX(r1); c.i64(f3 >>> 1); c.op(Op.i64_shl); g.getX(r2); c.op(Op.i64_add); break;
    case 0x02c: case 0x02d: case 0x02e: case 0x02f: { // min, minu, max, maxu
      ab(); g.getX(r1); g.getX(r2);
      c.op(key === 0x02c ? Op.i64_lt_s : key === 0x02d ? Op.i64_lt_u : key === 0x02e ? Op.i64_gt_s : Op.i64_gt_u);
      c.op(Op.select);
      break;
    }
    case 0x181: ab(); c.op(Op.i64_rotl); break; // rol
    case 0x185: ab(); c.op(Op.i64_rotr); break; // ror
    case 0x0a1: g.getX(r1); c.i64(1); g.getX(r2); c.op(Op.i64_shl); c.op(Op.i64_or); break; // bset
    case 0x121: g.getX(r1); c.i64(1); g.getX(r2); c.op(Op.i64_shl); c.i64(-1); c.op(Op.i64_xor); c.op(Op.i64_and); break;
    case 0x125: ab(); c.op(Op.i64_shr_u); c.i64(1); c.op(Op.i64_and); break; // bext
    default: g.getX(r1); c.i64(1); g.getX(r2); c.op(Op.i64_shl); c.op(Op.i64_xor); break; // 0x1a1 binv
  }
  g.setX(rd);
}

/**
 * Division with RISC-V's results for the cases where wasm traps (M spec
 * §13.2, Table 13.1): x/0 = -1 (all ones), x%0 = x, MIN/-1 = MIN, MIN%-1 = 0.
 */
function div(g: IntCtx, r1: number, r2: number, signed: boolean, rem: boolean): void {
  const c = g.c;
  g.getX(r1); c.local(Op.local_set, L_T);
  g.getX(r2); c.local(Op.local_tee, L_T2);
  c.op(Op.i64_eqz);
  c.open(Op.if, I64);
  if (rem) c.local(Op.local_get, L_T); else c.i64(-1);
  c.op(Op.else);
  if (signed && !rem) {
    // MIN / -1 overflows: the result is MIN (= the dividend).
    c.local(Op.local_get, L_T2); c.i64(-1); c.op(Op.i64_eq);
    c.local(Op.local_get, L_T); c.i64w(0, 0x80000000 | 0); c.op(Op.i64_eq); c.op(Op.i32_and);
    c.open(Op.if, I64);
    c.local(Op.local_get, L_T);
    c.op(Op.else);
    c.local(Op.local_get, L_T); c.local(Op.local_get, L_T2); c.op(Op.i64_div_s);
    c.op(Op.end);
  } else {
    // rem_s of MIN by -1 is 0 in wasm (no trap), as RISC-V wants.
    c.local(Op.local_get, L_T); c.local(Op.local_get, L_T2);
    c.op(signed ? (rem ? Op.i64_rem_s : Op.i64_div_s) : (rem ? Op.i64_rem_u : Op.i64_div_u));
  }
  c.op(Op.end);
}

/** mulh (0x009), mulhsu (0x00a), mulhu (0x00b): the high 64 bits of the 128-bit product from 32-bit partial products. */
function mulh(g: IntCtx, r1: number, r2: number, key: number): void {
  const c = g.c;
  g.getX(r1); c.local(Op.local_set, L_T);
  g.getX(r2); c.local(Op.local_set, L_T2);
  const lo32 = (l: number): void => { c.local(Op.local_get, l); c.i64w(-1, 0); c.op(Op.i64_and); };
  const hi32 = (l: number): void => { c.local(Op.local_get, l); c.i64(32); c.op(Op.i64_shr_u); };
  // T3 = lo(a)*hi(b), T4 = hi(a)*lo(b)
  lo32(L_T); hi32(L_T2); c.op(Op.i64_mul); c.local(Op.local_set, L_T3);
  hi32(L_T); lo32(L_T2); c.op(Op.i64_mul); c.local(Op.local_set, L_T4);
  // A = (lo(a)*lo(b) >> 32) + lo(T3) + lo(T4): the middle column, below 3 * 2^32
  lo32(L_T); lo32(L_T2); c.op(Op.i64_mul); c.i64(32); c.op(Op.i64_shr_u);
  lo32(L_T3); c.op(Op.i64_add); lo32(L_T4); c.op(Op.i64_add); c.local(Op.local_set, L_A);
  // high = hi(a)*hi(b) + hi(T3) + hi(T4) + hi(A)
  hi32(L_T); hi32(L_T2); c.op(Op.i64_mul);
  hi32(L_T3); c.op(Op.i64_add); hi32(L_T4); c.op(Op.i64_add); hi32(L_A); c.op(Op.i64_add);
  if (key !== 0x00b) {
    // Signed corrections: subtract b when a < 0; for mulh also a when b < 0.
    c.local(Op.local_get, L_T2); c.i64(0); c.local(Op.local_get, L_T); c.i64(0); c.op(Op.i64_lt_s); c.op(Op.select);
    c.op(Op.i64_sub);
    if (key === 0x009) {
      c.local(Op.local_get, L_T); c.i64(0); c.local(Op.local_get, L_T2); c.i64(0); c.op(Op.i64_lt_s); c.op(Op.select);
      c.op(Op.i64_sub);
    }
  }
}

/** OP-IMM-32 (addiw, the W shifts, slli.uw, clzw/ctzw/cpopw, roriw): results sign-extended from 32 bits. */
export function opImm32(g: IntCtx, insn: number, rd: number, r1: number, f3: number): void {
  const c = g.c, imm = insn >> 20, sh = imm & 0x1f, f7 = (imm >>> 5) & 0x7f;
  if (f3 === 1 && ((imm >>> 6) & 0x3f) === 0x02) { // slli.uw
    g.getX(r1); c.i64w(-1, 0); c.op(Op.i64_and); c.i64(imm & 0x3f); c.op(Op.i64_shl); g.setX(rd); return;
  }
  g.getX(r1); c.op(Op.i32_wrap_i64);
  if (f3 === 0) { if (imm !== 0) { c.i32(imm); c.op(Op.i32_add); } }
  else if (f3 === 1) {
    if (f7 === 0) { c.i32(sh); c.op(Op.i32_shl); }
    else if ((imm & 0xfff) === 0x600) c.op(Op.i32_clz);
    else if ((imm & 0xfff) === 0x601) c.op(Op.i32_ctz);
    else c.op(Op.i32_popcnt);
  } else if (f7 === 0) { c.i32(sh); c.op(Op.i32_shr_u); }
  else if (f7 === 0x20) { c.i32(sh); c.op(Op.i32_shr_s); }
  else { c.i32(sh); c.op(Op.i32_rotr); } // roriw
  c.op(Op.i64_extend_i32_s);
  g.setX(rd);
}

/** OP-32 (addw … sraw, the M W forms, add.uw, shNadd.uw, rolw/rorw, zext.h). */
export function op32(g: IntCtx, insn: number, rd: number, r1: number, r2: number, f3: number): void {
  const c = g.c, key = (insn >>> 22 & 0x3f8) | f3;
  switch (key) {
    case 0x020: // add.uw
      g.getX(r1); c.i64w(-1, 0); c.op(Op.i64_and); g.getX(r2); c.op(Op.i64_add); g.setX(rd); return;
    case 0x024: g.getX(r1); c.i64(0xffff); c.op(Op.i64_and); g.setX(rd); return; // zext.h
    case 0x082: case 0x084: case 0x086: // shNadd.uw
      g.getX(r1); c.i64w(-1, 0); c.op(Op.i64_and); c.i64(f3 >>> 1); c.op(Op.i64_shl);
      g.getX(r2); c.op(Op.i64_add); g.setX(rd); return;
    case 0x00c: case 0x00d: case 0x00e: case 0x00f: div32(g, r1, r2, key); g.setX(rd); return;
    default: break;
  }
  g.getX(r1); c.op(Op.i32_wrap_i64); g.getX(r2); c.op(Op.i32_wrap_i64);
  switch (key) {
    case 0x000: c.op(Op.i32_add); break;
    case 0x100: c.op(Op.i32_sub); break;
    case 0x001: c.op(Op.i32_shl); break;
    case 0x005: c.op(Op.i32_shr_u); break;
    case 0x105: c.op(Op.i32_shr_s); break;
    case 0x008: c.op(Op.i32_mul); break;
    case 0x181: c.op(Op.i32_rotl); break;
    default: c.op(Op.i32_rotr); break; // 0x185
  }
  c.op(Op.i64_extend_i32_s);
  g.setX(rd);
}

/** divw/divuw/remw/remuw with the RISC-V results for /0 and overflow (M spec §13.2). */
function div32(g: IntCtx, r1: number, r2: number, key: number): void {
  const c = g.c, signed = key === 0x00c || key === 0x00e, rem = key >= 0x00e;
  g.getX(r1); c.op(Op.i32_wrap_i64); c.local(Op.local_set, L_LO);
  g.getX(r2); c.op(Op.i32_wrap_i64); c.local(Op.local_tee, L_P);
  c.op(Op.i32_eqz);
  c.open(Op.if, I32);
  if (rem) c.local(Op.local_get, L_LO); else c.i32(-1);
  c.op(Op.else);
  if (signed && !rem) {
    c.local(Op.local_get, L_P); c.i32(-1); c.op(Op.i32_eq);
    c.local(Op.local_get, L_LO); c.i32(0x80000000 | 0); c.op(Op.i32_eq); c.op(Op.i32_and);
    c.open(Op.if, I32);
    c.local(Op.local_get, L_LO);
    c.op(Op.else);
    c.local(Op.local_get, L_LO); c.local(Op.local_get, L_P); c.op(Op.i32_div_s);
    c.op(Op.end);
  } else {
    c.local(Op.local_get, L_LO); c.local(Op.local_get, L_P);
    c.op(signed ? (rem ? Op.i32_rem_s : Op.i32_div_s) : (rem ? Op.i32_rem_u : Op.i32_div_u));
  }
  c.op(Op.end);
  c.op(Op.i64_extend_i32_s);
}
