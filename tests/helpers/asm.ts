/**
 * A tiny RV64 instruction encoder for unit tests: just the base formats
 * (R, I, S, B, U, J) so tests can build instruction words by name.
 */

/** R-type: funct7 | rs2 | rs1 | funct3 | rd | opcode. */
export function r(op: number, f3: number, f7: number, rd: number, rs1: number, rs2: number): number {
  return ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
}
/** I-type with a 12-bit signed immediate. */
export function i(op: number, f3: number, rd: number, rs1: number, imm: number): number {
  return (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
}
/** S-type store. */
export function s(op: number, f3: number, rs1: number, rs2: number, imm: number): number {
  return ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op) >>> 0;
}
/** B-type branch with a byte offset. */
export function b(f3: number, rs1: number, rs2: number, off: number): number {
  return ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7) | 0x63) >>> 0;
}
/** U-type (lui/auipc) with the upper 20 bits given as a number. */
export function u(op: number, rd: number, imm20: number): number {
  return (((imm20 & 0xfffff) << 12) | (rd << 7) | op) >>> 0;
}
/** J-type jal with a byte offset. */
export function j(rd: number, off: number): number {
  return ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) |
    (((off >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) >>> 0;
}

export const OP_IMM = 0x13, OP = 0x33, OP_IMM_32 = 0x1b, OP_32 = 0x3b, LOAD = 0x03, STORE = 0x23, AMO = 0x2f;
export const LUI = 0x37, AUIPC = 0x17, JALR = 0x67, SYSTEM = 0x73;
/** ecall, used to end a test sequence (the hart exits with cause 8). */
export const ECALL = 0x00000073;
