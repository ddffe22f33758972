/**
 * 64-bit integer arithmetic on 32-bit halves, without BigInt.
 *
 * Results of the wide operations are left in `r64` (low word at 0, high at
 * 1; remainders at 2 and 3) so that no object is allocated per call.
 */

/** Scratch results: [lo, hi, remLo, remHi]. */
export const r64 = new Int32Array(4);

const TWO32 = 4294967296;

/** High 32 bits of the unsigned 32x32-bit product. */
export function mulhu32(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p01 = a0 * b1, p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

/** Low 64 bits of a*b (signedness does not matter): result in r64[0..1]. */
export function mul64(alo: number, ahi: number, blo: number, bhi: number): void {
  r64[0] = Math.imul(alo, blo);
  r64[1] = (mulhu32(alo, blo) + Math.imul(alo, bhi) + Math.imul(ahi, blo)) | 0;
}

/** High 64 bits of the unsigned 128-bit product: result in r64[0..1]. */
export function mulhu64(alo: number, ahi: number, blo: number, bhi: number): void {
  // Four 32x32 partial products, summed in 32-bit columns with carries.
  const ll_hi = mulhu32(alo, blo) >>> 0;
  const lh_lo = Math.imul(alo, bhi) >>> 0, lh_hi = mulhu32(alo, bhi) >>> 0;
  const hl_lo = Math.imul(ahi, blo) >>> 0, hl_hi = mulhu32(ahi, blo) >>> 0;
  const hh_lo = Math.imul(ahi, bhi) >>> 0, hh_hi = mulhu32(ahi, bhi) >>> 0;
  const col1 = ll_hi + lh_lo + hl_lo; // < 3 * 2^32, exact in a double
  const c1 = Math.floor(col1 / TWO32);
  const col2 = lh_hi + hl_hi + hh_lo + c1;
  const c2 = Math.floor(col2 / TWO32);
  r64[0] = col2 | 0;
  r64[1] = (hh_hi + c2) | 0;
}

/** High 64 bits of signed*signed (MULH): result in r64[0..1]. */
export function mulh64(alo: number, ahi: number, blo: number, bhi: number): void {
  mulhu64(alo, ahi, blo, bhi);
  let lo = r64[0]!, hi = r64[1]!;
  if (ahi < 0) { const t = (lo - blo) | 0; hi = (hi - bhi - ((lo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0; lo = t; }
  if (bhi < 0) { const t = (lo - alo) | 0; hi = (hi - ahi - ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0; lo = t; }
  r64[0] = lo; r64[1] = hi;
}

/** High 64 bits of signed a * unsigned b (MULHSU): result in r64[0..1]. */
export function mulhsu64(alo: number, ahi: number, blo: number, bhi: number): void {
  mulhu64(alo, ahi, blo, bhi);
  if (ahi < 0) {
    const lo = r64[0]!, hi = r64[1]!;
    r64[0] = (lo - blo) | 0;
    r64[1] = (hi - bhi - ((lo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
  }
}

/**
 * Unsigned 64/64 division; quotient in r64[0..1], remainder in r64[2..3].
 * The divisor must be non-zero.
 */
export function udivrem64(alo: number, ahi: number, blo: number, bhi: number): void {
  const au = ahi >>> 0, bu = bhi >>> 0;
  if (au < 0x200000 && bu < 0x200000) {
    // Both below 2^53: double division, then an exact correction step.
    const a = au * TWO32 + (alo >>> 0), b = bu * TWO32 + (blo >>> 0);
    let q = Math.floor(a / b);
    let r = a - q * b;
    if (r < 0) { q -= 1; r += b; } else if (r >= b) { q += 1; r -= b; }
    r64[0] = q | 0; r64[1] = Math.floor(q / TWO32) | 0;
    r64[2] = r | 0; r64[3] = Math.floor(r / TWO32) | 0;
    return;
  }
  // Restoring shift-subtract division, one bit at a time (rare path).
  let qlo = 0, qhi = 0, rlo = 0, rhi = 0;
  for (let i = 63; i >= 0; i--) {
    rhi = (rhi << 1) | (rlo >>> 31);
    rlo = (rlo << 1) | ((i >= 32 ? ahi >>> (i - 32) : alo >>> i) & 1);
    // r >= b ?
    if ((rhi >>> 0) > bu || ((rhi >>> 0) === bu && (rlo >>> 0) >= (blo >>> 0))) {
      const t = (rlo - blo) | 0;
      rhi = (rhi - bhi - ((rlo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
      rlo = t;
      if (i >= 32) qhi |= 1 << (i - 32); else qlo |= 1 << i;
    }
  }
  r64[0] = qlo; r64[1] = qhi; r64[2] = rlo; r64[3] = rhi;
}

/**
 * Signed 64-bit division with RISC-V M-extension semantics (spec §13.2,
 * Table 13.1): x/0 = -1 and x%0 = x; MIN/-1 = MIN and MIN%-1 = 0.
 * Quotient in r64[0..1], remainder in r64[2..3].
 */
export function divrem64(alo: number, ahi: number, blo: number, bhi: number): void {
  if (blo === 0 && bhi === 0) { r64[0] = -1; r64[1] = -1; r64[2] = alo; r64[3] = ahi; return; }
  if (blo === -1 && bhi === -1 && alo === 0 && ahi === -2147483648) {
    r64[0] = alo; r64[1] = ahi; r64[2] = 0; r64[3] = 0; return;
  }
  const an = ahi < 0, bn = bhi < 0;
  let xlo = alo, xhi = ahi, ylo = blo, yhi = bhi;
  if (an) { xlo = (-alo) | 0; xhi = (~ahi + (alo === 0 ? 1 : 0)) | 0; }
  if (bn) { ylo = (-blo) | 0; yhi = (~bhi + (blo === 0 ? 1 : 0)) | 0; }
  udivrem64(xlo, xhi, ylo, yhi);
  if (an !== bn) { const l = r64[0]!, h = r64[1]!; r64[0] = (-l) | 0; r64[1] = (~h + (l === 0 ? 1 : 0)) | 0; }
  if (an) { const l = r64[2]!, h = r64[3]!; r64[2] = (-l) | 0; r64[3] = (~h + (l === 0 ? 1 : 0)) | 0; }
}

/** Unsigned 64-bit division with RISC-V semantics: x/0 = 2^64-1, x%0 = x. */
export function divremu64(alo: number, ahi: number, blo: number, bhi: number): void {
  if (blo === 0 && bhi === 0) { r64[0] = -1; r64[1] = -1; r64[2] = alo; r64[3] = ahi; return; }
  udivrem64(alo, ahi, blo, bhi);
}

/** Count leading zeros of a 64-bit value. */
export function clz64(lo: number, hi: number): number {
  return hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
}

/** Count trailing zeros of a 32-bit value (32 for zero). */
export function ctz32(v: number): number {
  return v === 0 ? 32 : 31 - Math.clz32(v & -v);
}

/** Population count of a 32-bit value. */
export function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Reverses the bytes of a 32-bit word. */
export function bswap32(v: number): number {
  return ((v << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) | 0;
}

/** orc.b on one 32-bit word: each non-zero byte becomes 0xff (Zbb). */
export function orcb32(v: number): number {
  let r = 0;
  if (v & 0xff) r |= 0xff;
  if (v & 0xff00) r |= 0xff00;
  if (v & 0xff0000) r |= 0xff0000;
  if (v & 0xff000000) r |= 0xff000000;
  return r | 0;
}
