/**
 * Execution unit for the RISC-V F and D extensions (unprivileged spec chapters "F" §11 and
 * "D" §12): decodes one OP-FP / FMADD / FMSUB / FNMSUB / FNMADD instruction, executes it on a
 * HartState and accrues fflags. Bit-exact with QEMU's softfloat-based RISC-V target.
 */
import type { HartState } from './hart-state.js';
import { S } from './hart-state.js';
import { addD, addS, divD, divS, fmaD, fmaS, mulD, mulS, sqrtD, sqrtS } from './softfloat.js';
import {
  classD, classS, cmpD, cmpS, cvtDFromInt, cvtDFromS, cvtIntFromD, cvtIntFromS, cvtSFromD, cvtSFromInt,
  minMaxD, minMaxS,
} from './softfloat-conv.js';
import { CNAN_S } from './softfloat-core.js';

/** Major opcodes (unprivileged spec Table 24.1, "RISC-V base opcode map"). */
const OP_FP = 0x53;
const OP_FMADD = 0x43;
const OP_FMSUB = 0x47;
const OP_FNMSUB = 0x4b;
const OP_FNMADD = 0x4f;

/** Resolves an instruction rm field (F spec §11.2, Table 11.1): 7 = DYN reads frm; 5, 6 and invalid frm are illegal. */
function resolveRm(st: HartState, rm: number): number {
  if (rm === 7) rm = st.s[S.FRM]!;
  return rm >>> 0 < 5 ? rm : -1;
}

/** Writes a 64-bit value (lo, hi) to integer register rd, ignoring x0. */
function setX(st: HartState, rd: number, lo: number, hi: number): void {
  if (rd === 0) return;
  st.x[2 * rd] = lo;
  st.x[2 * rd + 1] = hi;
}

/** Executes one F/D instruction; returns 0, or -1 for an illegal encoding. Does not touch pc. */
export function execFp(st: HartState, insn: number): number {
  const op = insn & 0x7f;
  const rd = (insn >>> 7) & 31;
  const rm0 = (insn >>> 12) & 7;
  const rs1 = (insn >>> 15) & 31;
  const rs2 = (insn >>> 20) & 31;
  const fmt = (insn >>> 25) & 3; // 0 = S, 1 = D; H (2) and Q (3) are not implemented
  if (fmt > 1) return -1;
  const dbl = fmt === 1;
  let flags: number;
  if (op !== OP_FP) {
    let negP: number, negC: number;
    switch (op) {
      case OP_FMADD: negP = 0; negC = 0; break;
      case OP_FMSUB: negP = 0; negC = 1; break;
      case OP_FNMSUB: negP = 1; negC = 0; break;
      case OP_FNMADD: negP = 1; negC = 1; break;
      default: return -1;
    }
    const rm = resolveRm(st, rm0);
    if (rm < 0) return -1;
    const rs3 = insn >>> 27;
    flags = dbl ? fmaD(st, rd, rs1, rs2, rs3, rm, negP, negC) : fmaS(st, rd, rs1, rs2, rs3, rm, negP, negC);
  } else {
    const f = st.f;
    switch (insn >>> 27) { // funct5
      case 0x00: case 0x01: case 0x02: case 0x03: { // FADD, FSUB, FMUL, FDIV
        const rm = resolveRm(st, rm0);
        if (rm < 0) return -1;
        const k = insn >>> 27;
        if (k < 2) flags = dbl ? addD(st, rd, rs1, rs2, rm, k) : addS(st, rd, rs1, rs2, rm, k);
        else if (k === 2) flags = dbl ? mulD(st, rd, rs1, rs2, rm) : mulS(st, rd, rs1, rs2, rm);
        else flags = dbl ? divD(st, rd, rs1, rs2, rm) : divS(st, rd, rs1, rs2, rm);
        break;
      }
      case 0x0b: { // FSQRT
        if (rs2 !== 0) return -1;
        const rm = resolveRm(st, rm0);
        if (rm < 0) return -1;
        flags = dbl ? sqrtD(st, rd, rs1, rm) : sqrtS(st, rd, rs1, rm);
        break;
      }
      case 0x04: { // FSGNJ, FSGNJN, FSGNJX (pure bit operations, no flags)
        if (rm0 > 2) return -1;
        if (dbl) {
          const ahi = f[2 * rs1 + 1]!, bhi = f[2 * rs2 + 1]!;
          const sb = rm0 === 0 ? bhi : rm0 === 1 ? ~bhi : ahi ^ bhi;
          f[2 * rd] = f[2 * rs1]!;
          f[2 * rd + 1] = (ahi & 0x7fffffff) | (sb & -2147483648);
        } else {
          const aw = f[2 * rs1 + 1] === -1 ? f[2 * rs1]! : CNAN_S;
          const bw = f[2 * rs2 + 1] === -1 ? f[2 * rs2]! : CNAN_S;
          const sb = rm0 === 0 ? bw : rm0 === 1 ? ~bw : aw ^ bw;
          f[2 * rd] = (aw & 0x7fffffff) | (sb & -2147483648);
          f[2 * rd + 1] = -1;
        }
        return 0;
      }
      case 0x05: // FMIN, FMAX
        if (rm0 > 1) return -1;
        flags = dbl ? minMaxD(st, rd, rs1, rs2, rm0 === 1) : minMaxS(st, rd, rs1, rs2, rm0 === 1);
        break;
      case 0x08: { // FCVT.S.D (fmt S, rs2 1) and FCVT.D.S (fmt D, rs2 0)
        if (rs2 !== (dbl ? 0 : 1)) return -1;
        const rm = resolveRm(st, rm0);
        if (rm < 0) return -1;
        flags = dbl ? cvtDFromS(st, rd, rs1) : cvtSFromD(st, rd, rs1, rm);
        break;
      }
      case 0x14: // FLE (0), FLT (1), FEQ (2)
        if (rm0 > 2) return -1;
        flags = dbl ? cmpD(st, rd, rs1, rs2, rm0) : cmpS(st, rd, rs1, rs2, rm0);
        break;
      case 0x18: { // FCVT.{W,WU,L,LU}.fmt
        if (rs2 > 3) return -1;
        const rm = resolveRm(st, rm0);
        if (rm < 0) return -1;
        flags = dbl ? cvtIntFromD(st, rd, rs1, rs2, rm) : cvtIntFromS(st, rd, rs1, rs2, rm);
        break;
      }
      case 0x1a: { // FCVT.fmt.{W,WU,L,LU}
        if (rs2 > 3) return -1;
        const rm = resolveRm(st, rm0);
        if (rm < 0) return -1;
        flags = dbl ? cvtDFromInt(st, rd, rs1, rs2, rm) : cvtSFromInt(st, rd, rs1, rs2, rm);
        break;
      }
      case 0x1c: // FMV.X.W / FMV.X.D (rm 0), FCLASS (rm 1)
        if (rs2 !== 0 || rm0 > 1) return -1;
        if (rm0 === 0) {
          const lo = f[2 * rs1]!;
          setX(st, rd, lo, dbl ? f[2 * rs1 + 1]! : lo >> 31); // FMV.X.W sign-extends (F spec §11.9)
        } else if (dbl) {
          setX(st, rd, classD(f[2 * rs1 + 1]!, f[2 * rs1]!), 0);
        } else {
          setX(st, rd, classS(f[2 * rs1 + 1] === -1 ? f[2 * rs1]! : CNAN_S), 0);
        }
        return 0;
      case 0x1e: // FMV.W.X / FMV.D.X
        if (rs2 !== 0 || rm0 !== 0) return -1;
        f[2 * rd] = st.x[2 * rs1]!;
        f[2 * rd + 1] = dbl ? st.x[2 * rs1 + 1]! : -1;
        return 0;
      default:
        return -1;
    }
  }
  if (flags !== 0) st.s[S.FFLAGS] = st.s[S.FFLAGS]! | flags;
  return 0;
}
