/**
 * The RV64C decoder: expands every 16-bit compressed instruction into the
 * 32-bit instruction it stands for (RISC-V unprivileged spec, chapter
 * "C" Standard Extension, RVC instruction set listings for RV64).
 *
 * The expansion is computed once for all 65536 patterns into `RVC_TABLE`;
 * the interpreter then executes the 32-bit form. A table entry of 0 marks a
 * reserved or illegal encoding (the all-zero word is itself defined illegal).
 */

const OP_LOAD = 0x03, OP_LOAD_FP = 0x07, OP_IMM = 0x13, OP_IMM_32 = 0x1b;
const OP_STORE = 0x23, OP_STORE_FP = 0x27, OP = 0x33, OP_LUI = 0x37, OP_32 = 0x3b;
const OP_BRANCH = 0x63, OP_JALR = 0x67, OP_JAL = 0x6f;

function bit(v: number, n: number): number { return (v >>> n) & 1; }
function bits(v: number, hi: number, lo: number): number { return (v >>> lo) & ((1 << (hi - lo + 1)) - 1); }
/** Sign-extends the low `n` bits of v. */
function sext(v: number, n: number): number { return (v << (32 - n)) >> (32 - n); }

/** I-type encoding (also used by the interpreter warm-up, machine/warm-up.ts). */
export function iType(imm: number, rs1: number, f3: number, rd: number, op: number): number {
  return ((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
/** S-type encoding. */
export function sType(imm: number, rs2: number, rs1: number, f3: number, op: number): number {
  return (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op;
}
/** R-type encoding. */
export function rType(f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number): number {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
/** B-type encoding (conditional branch; `imm` is the byte offset). */
export function bType(imm: number, rs2: number, rs1: number, f3: number): number {
  return (bit(imm, 12) << 31) | (bits(imm, 10, 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (bits(imm, 4, 1) << 8) | (bit(imm, 11) << 7) | OP_BRANCH;
}
/** J-type encoding (jal; `imm` is the byte offset). */
export function jType(imm: number, rd: number): number {
  return (bit(imm, 20) << 31) | (bits(imm, 10, 1) << 21) | (bit(imm, 11) << 20) | (bits(imm, 19, 12) << 12) |
    (rd << 7) | OP_JAL;
}

/** Expands one 16-bit instruction; returns 0 for reserved/illegal ones. */
export function expandCompressed(c: number): number {
  const op = c & 3, f3 = bits(c, 15, 13);
  const rdp = bits(c, 4, 2) + 8, rs1p = bits(c, 9, 7) + 8; // rd'/rs2' and rs1' (x8..x15)
  const rd = bits(c, 11, 7), rs2 = bits(c, 6, 2);
  const imm6 = sext((bit(c, 12) << 5) | bits(c, 6, 2), 6);
  if (op === 0) {
    switch (f3) {
      case 0: { // C.ADDI4SPN
        const u = (bits(c, 12, 11) << 4) | (bits(c, 10, 7) << 6) | (bit(c, 6) << 2) | (bit(c, 5) << 3);
        return u === 0 ? 0 : iType(u, 2, 0, rdp, OP_IMM);
      }
      case 1: return iType((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6), rs1p, 3, rdp, OP_LOAD_FP); // C.FLD
      case 2: return iType((bits(c, 12, 10) << 3) | (bit(c, 6) << 2) | (bit(c, 5) << 6), rs1p, 2, rdp, OP_LOAD); // C.LW
      case 3: return iType((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6), rs1p, 3, rdp, OP_LOAD); // C.LD
      case 4: return 0; // reserved
      case 5: return sType((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6), rdp, rs1p, 3, OP_STORE_FP); // C.FSD
      case 6: return sType((bits(c, 12, 10) << 3) | (bit(c, 6) << 2) | (bit(c, 5) << 6), rdp, rs1p, 2, OP_STORE); // C.SW
      default: return sType((bits(c, 12, 10) << 3) | (bits(c, 6, 5) << 6), rdp, rs1p, 3, OP_STORE); // C.SD
    }
  }
  if (op === 1) {
    switch (f3) {
      case 0: return iType(imm6, rd, 0, rd, OP_IMM); // C.ADDI / C.NOP / hints
      case 1: return rd === 0 ? 0 : iType(imm6, rd, 0, rd, OP_IMM_32); // C.ADDIW
      case 2: return iType(imm6, 0, 0, rd, OP_IMM); // C.LI
      case 3: {
        if (rd === 2) { // C.ADDI16SP
          const v = sext((bit(c, 12) << 9) | (bit(c, 6) << 4) | (bit(c, 5) << 6) | (bits(c, 4, 3) << 7) | (bit(c, 2) << 5), 10);
          return v === 0 ? 0 : iType(v, 2, 0, 2, OP_IMM);
        }
        if (imm6 === 0) return 0; // C.LUI with nzimm = 0 is reserved
        return ((imm6 << 12) | (rd << 7) | OP_LUI) | 0; // C.LUI
      }
      case 4: {
        const sh = (bit(c, 12) << 5) | bits(c, 6, 2);
        switch (bits(c, 11, 10)) {
          case 0: return iType(sh, rs1p, 5, rs1p, OP_IMM); // C.SRLI
          case 1: return iType(0x400 | sh, rs1p, 5, rs1p, OP_IMM); // C.SRAI
          case 2: return iType(imm6, rs1p, 7, rs1p, OP_IMM); // C.ANDI
          default: {
            const k = bits(c, 6, 5);
            if (bit(c, 12) === 0) {
              if (k === 0) return rType(0x20, rdp, rs1p, 0, rs1p, OP); // C.SUB
              if (k === 1) return rType(0, rdp, rs1p, 4, rs1p, OP); // C.XOR
              if (k === 2) return rType(0, rdp, rs1p, 6, rs1p, OP); // C.OR
              return rType(0, rdp, rs1p, 7, rs1p, OP); // C.AND
            }
            if (k === 0) return rType(0x20, rdp, rs1p, 0, rs1p, OP_32); // C.SUBW
            if (k === 1) return rType(0, rdp, rs1p, 0, rs1p, OP_32); // C.ADDW
            return 0; // reserved
          }
        }
      }
      case 5: { // C.J
        const off = sext((bit(c, 12) << 11) | (bit(c, 11) << 4) | (bits(c, 10, 9) << 8) | (bit(c, 8) << 10) |
          (bit(c, 7) << 6) | (bit(c, 6) << 7) | (bits(c, 5, 3) << 1) | (bit(c, 2) << 5), 12);
        return jType(off, 0);
      }
      default: { // C.BEQZ / C.BNEZ
        const off = sext((bit(c, 12) << 8) | (bits(c, 11, 10) << 3) | (bits(c, 6, 5) << 6) | (bits(c, 4, 3) << 1) |
          (bit(c, 2) << 5), 9);
        return bType(off, 0, rs1p, f3 === 6 ? 0 : 1);
      }
    }
  }
  if (op === 2) {
    switch (f3) {
      case 0: return iType((bit(c, 12) << 5) | bits(c, 6, 2), rd, 1, rd, OP_IMM); // C.SLLI
      case 1: return iType((bit(c, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6), 2, 3, rd, OP_LOAD_FP); // C.FLDSP
      case 2: // C.LWSP
        return rd === 0 ? 0 : iType((bit(c, 12) << 5) | (bits(c, 6, 4) << 2) | (bits(c, 3, 2) << 6), 2, 2, rd, OP_LOAD);
      case 3: // C.LDSP
        return rd === 0 ? 0 : iType((bit(c, 12) << 5) | (bits(c, 6, 5) << 3) | (bits(c, 4, 2) << 6), 2, 3, rd, OP_LOAD);
      case 4:
        if (bit(c, 12) === 0) {
          if (rs2 === 0) return rd === 0 ? 0 : iType(0, rd, 0, 0, OP_JALR); // C.JR
          return rType(0, rs2, 0, 0, rd, OP); // C.MV
        }
        if (rs2 === 0) {
          if (rd === 0) return 0x00100073; // C.EBREAK -> EBREAK
          return iType(0, rd, 0, 1, OP_JALR); // C.JALR
        }
        return rType(0, rs2, rd, 0, rd, OP); // C.ADD
      case 5: return sType((bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6), rs2, 2, 3, OP_STORE_FP); // C.FSDSP
      case 6: return sType((bits(c, 12, 9) << 2) | (bits(c, 8, 7) << 6), rs2, 2, 2, OP_STORE); // C.SWSP
      default: return sType((bits(c, 12, 10) << 3) | (bits(c, 9, 7) << 6), rs2, 2, 3, OP_STORE); // C.SDSP
    }
  }
  return 0; // op === 3 is not a compressed instruction
}

/** The expansion of every 16-bit pattern (0 = illegal), built once. */
export const RVC_TABLE: Int32Array = (() => {
  const t = new Int32Array(65536);
  for (let c = 0; c < 65536; c++) t[c] = (c & 3) === 3 ? 0 : expandCompressed(c);
  return t;
})();

