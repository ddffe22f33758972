/**
 * The A extension: LR/SC and the AMOs, word and doubleword (unprivileged
 * spec chapter "A" Standard Extension).
 *
 * SC succeeds when the reservation covers the same address and memory still
 * holds the value LR read — the same rule QEMU applies, so results match it
 * exactly on one hart.
 */
import { type Hart, CAUSE_MISALIGNED_LOAD, CAUSE_MISALIGNED_STORE } from './hart.js';
import { S } from './hart-state.js';

/**
 * Executes one AMO-major-opcode instruction. `rd`, `r1`, `r2` are register
 * numbers times two. Returns 0 when done, 1 when a fault was recorded, -1
 * for an illegal encoding.
 */
export function execAmo(h: Hart, insn: number, rd: number, r1: number, r2: number): number {
  const x = h.st.x, s = h.st.s, dv = h.ram.dv;
  const f3 = (insn >>> 12) & 7, f5 = insn >>> 27;
  if (f3 !== 2 && f3 !== 3) return -1;
  const dbl = f3 === 3, size = dbl ? 8 : 4;
  const alo = x[r1]!, ahi = x[r1 + 1]!;
  if (f5 === 0x02) { // LR
    if (((insn >>> 20) & 31) !== 0) return -1;
    if ((alo & (size - 1)) !== 0) { h.raise(CAUSE_MISALIGNED_LOAD, alo, ahi); return 1; }
    const p = h.addrR(alo, ahi, size);
    if (p < 0) return 1;
    const lo = dv.getInt32(p, true), hi = dbl ? dv.getInt32(p + 4, true) : lo >> 31;
    x[rd] = lo; x[rd + 1] = hi;
    s[S.RES_VALID] = 1; s[S.RES_LO] = alo; s[S.RES_HI] = ahi; s[S.RES_VAL_LO] = lo; s[S.RES_VAL_HI] = hi;
    return 0;
  }
  if ((alo & (size - 1)) !== 0) { h.raise(CAUSE_MISALIGNED_STORE, alo, ahi); return 1; }
  if (f5 === 0x03) { // SC
    if (s[S.RES_VALID] !== 1 || s[S.RES_LO] !== alo || s[S.RES_HI] !== ahi) {
      s[S.RES_VALID] = 0; x[rd] = 1; x[rd + 1] = 0; return 0;
    }
    s[S.RES_VALID] = 0;
    const p = h.addrW(alo, ahi, size);
    if (p < 0) return 1;
    const lo = dv.getInt32(p, true), hi = dbl ? dv.getInt32(p + 4, true) : lo >> 31;
    if (lo !== s[S.RES_VAL_LO] || hi !== s[S.RES_VAL_HI]) { x[rd] = 1; x[rd + 1] = 0; return 0; }
    dv.setInt32(p, x[r2]!, true);
    if (dbl) dv.setInt32(p + 4, x[r2 + 1]!, true);
    x[rd] = 0; x[rd + 1] = 0;
    return 0;
  }
  const p = h.addrW(alo, ahi, size);
  if (p < 0) return 1;
  const olo = dv.getInt32(p, true), ohi = dbl ? dv.getInt32(p + 4, true) : olo >> 31;
  const blo = x[r2]!, bhi = dbl ? x[r2 + 1]! : blo >> 31;
  let nlo: number, nhi: number;
  switch (f5) {
    case 0x01: nlo = blo; nhi = bhi; break; // amoswap
    case 0x00: nlo = (olo + blo) | 0; nhi = (ohi + bhi + ((nlo >>> 0) < (olo >>> 0) ? 1 : 0)) | 0; break; // amoadd
    case 0x04: nlo = olo ^ blo; nhi = ohi ^ bhi; break; // amoxor
    case 0x0c: nlo = olo & blo; nhi = ohi & bhi; break; // amoand
    case 0x08: nlo = olo | blo; nhi = ohi | bhi; break; // amoor
    case 0x10: case 0x14: case 0x18: case 0x1c: {
      const unsigned = f5 >= 0x18;
      const ltv = unsigned
        ? ((ohi >>> 0) < (bhi >>> 0) || (ohi === bhi && (olo >>> 0) < (blo >>> 0)))
        : (ohi < bhi || (ohi === bhi && (olo >>> 0) < (blo >>> 0)));
      const wantMin = f5 === 0x10 || f5 === 0x18;
      if (ltv === wantMin) { nlo = olo; nhi = ohi; } else { nlo = blo; nhi = bhi; }
      break;
    }
    default: return -1;
  }
  dv.setInt32(p, nlo, true);
  if (dbl) dv.setInt32(p + 4, nhi, true);
  x[rd] = olo; x[rd + 1] = ohi;
  return 0;
}
