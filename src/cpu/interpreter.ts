/**
 * The RV64GC interpreter: fetch, decode and execute until an exit.
 *
 * Covers RV64I, M, A, Zicsr, Zifencei, Zicntr, Zba, Zbb, Zbs and the F/D
 * loads and stores; other F/D instructions go to `execFp`. Compressed
 * instructions are expanded through RVC_TABLE and run as their 32-bit form.
 *
 * Hot-path rules: no allocation, no closures, no BigInt; registers are
 * 32-bit halves in `x` (x[2i] low, x[2i+1] high), so the decoder computes
 * register fields already doubled.
 */
import { ExitReason, ADDR_SPLIT, ADDR_MMIO, CAUSE_ILLEGAL_INSTRUCTION, CAUSE_BREAKPOINT, CAUSE_USER_ECALL,
  type Hart } from './hart.js';
import { S } from './hart-state.js';
import { RVC_TABLE } from './decode-compressed.js';
import { PAGE_MASK, TLB_INVALID, TLB_MASK, TLB_WORDS, TLB_W_R, TLB_W_W, TLB_W_HOST } from '../mmu/tlb.js';
import { execFp } from './exec-fp.js';
import { execAmo } from './exec-amo.js';
import {
  r64, mul64, mulh64, mulhu64, mulhsu64, divrem64, divremu64, clz64, ctz32, popcount32, bswap32, orcb32,
} from './int64.js';

/** Writes a 64-bit shift-left result of (lo, hi) by n (0..63) into x[rd]. */
function sll64(x: Int32Array, rd: number, lo: number, hi: number, n: number): void {
  if (n === 0) { x[rd] = lo; x[rd + 1] = hi; } else if (n < 32) {
    x[rd + 1] = (hi << n) | (lo >>> (32 - n)); x[rd] = lo << n;
  } else { x[rd + 1] = lo << (n - 32); x[rd] = 0; }
}
/** Logical right shift of (lo, hi) by n into x[rd]. */
function srl64(x: Int32Array, rd: number, lo: number, hi: number, n: number): void {
  if (n === 0) { x[rd] = lo; x[rd + 1] = hi; } else if (n < 32) {
    x[rd] = (lo >>> n) | (hi << (32 - n)); x[rd + 1] = hi >>> n;
  } else { x[rd] = hi >>> (n - 32); x[rd + 1] = 0; }
}
/** Arithmetic right shift of (lo, hi) by n into x[rd]. */
function sra64(x: Int32Array, rd: number, lo: number, hi: number, n: number): void {
  if (n === 0) { x[rd] = lo; x[rd + 1] = hi; } else if (n < 32) {
    x[rd] = (lo >>> n) | (hi << (32 - n)); x[rd + 1] = hi >> n;
  } else { x[rd] = hi >> (n - 32); x[rd + 1] = hi >> 31; }
}
/** Rotate (lo, hi) right by n (0..63) into x[rd]. */
function ror64(x: Int32Array, rd: number, lo: number, hi: number, n: number): void {
  if (n >= 32) { const t = lo; lo = hi; hi = t; n -= 32; }
  if (n === 0) { x[rd] = lo; x[rd + 1] = hi; return; }
  x[rd] = (lo >>> n) | (hi << (32 - n));
  x[rd + 1] = (hi >>> n) | (lo << (32 - n));
}
/** Signed 64-bit a < b. */
function lt64(alo: number, ahi: number, blo: number, bhi: number): boolean {
  return ahi < bhi || (ahi === bhi && (alo >>> 0) < (blo >>> 0));
}
/** Unsigned 64-bit a < b. */
function ltu64(alo: number, ahi: number, blo: number, bhi: number): boolean {
  return (ahi >>> 0) < (bhi >>> 0) || (ahi === bhi && (alo >>> 0) < (blo >>> 0));
}

/** Exit for a failed load: an MMIO exit (recording where the value goes) or an exception. */
function loadExit(h: Hart, p: number, rd: number, kind: number): ExitReason {
  if (p !== ADDR_MMIO) return ExitReason.EXCEPTION;
  h.mmioRd = rd; h.mmioKind = kind;
  return ExitReason.MMIO;
}

/** Exit for a failed store: an MMIO exit carrying the data, or an exception. */
function storeExit(h: Hart, p: number, lo: number, hi: number): ExitReason {
  if (p !== ADDR_MMIO) return ExitReason.EXCEPTION;
  h.mmioLo = lo; h.mmioHi = hi;
  return ExitReason.MMIO;
}

/**
 * Runs up to `budget` instructions. Returns why it stopped; pc and the
 * exit fields in `h.st.s` describe the stop. On EXCEPTION, pc is the
 * faulting instruction's address and s[EXIT_ILEN] its length.
 * A caller that has just translated pc for fetch may pass its page
 * (`pageLo`, `pageHi`: pc's page; `pageHost`: its host offset) to save the
 * first fetch-TLB lookup (the JIT's dispatcher, once per cold block).
 */
export function run(h: Hart, budget: number, pageLo: number = TLB_INVALID, pageHi = 0, pageHost = 0): ExitReason {
  const st = h.st, x = st.x, s = st.s, f = st.f;
  const dv = h.ram.dv, u8 = h.ram.u8;
  const rvc = RVC_TABLE;
  let pcLo = s[S.PC_LO]!, pcHi = s[S.PC_HI]!;
  let fpTag = pageLo, fpHi = pageHi, fpBase = pageHost;
  const start = budget;
  let exit: ExitReason = ExitReason.BUDGET;
  let ilen = 4, raw = 0;

  loop: while (budget > 0) {
    budget--;
    x[0] = 0; x[1] = 0;
    // ---- fetch (the current page's host offset is cached in fpBase) ----
    if ((pcLo & PAGE_MASK) !== fpTag || pcHi !== fpHi) {
      const base = h.fetchPage(pcLo, pcHi);
      if (base < 0) { exit = ExitReason.EXCEPTION; ilen = 0; break; }
      fpTag = pcLo & PAGE_MASK; fpHi = pcHi; fpBase = base;
    }
    const po = pcLo & 0xfff;
    let insn: number;
    if (po <= 0xffc) {
      raw = dv.getInt32(fpBase + po, true);
      if ((raw & 3) !== 3) { raw &= 0xffff; insn = rvc[raw]!; ilen = 2; if (insn === 0) { exit = ExitReason.EXCEPTION; break; } } else { insn = raw; ilen = 4; }
    } else {
      raw = dv.getUint16(fpBase + po, true);
      if ((raw & 3) !== 3) { insn = rvc[raw]!; ilen = 2; if (insn === 0) { exit = ExitReason.EXCEPTION; break; } } else {
        const nlo = (pcLo + 2) | 0, nhi = (nlo >>> 0) < (pcLo >>> 0) ? (pcHi + 1) | 0 : pcHi;
        const upper = h.fetchHalf(nlo, nhi);
        if (upper < 0) { exit = ExitReason.EXCEPTION; ilen = 0; break; }
        raw = insn = raw | (upper << 16); ilen = 4;
      }
    }
    const rd = (insn >>> 6) & 0x3e, r1 = (insn >>> 14) & 0x3e, r2 = (insn >>> 19) & 0x3e;
    let nlo = (pcLo + ilen) | 0, nhi = pcHi;
    if ((nlo >>> 0) < ilen) nhi = (nhi + 1) | 0;

    switch ((insn >>> 2) & 31) { // major opcode bits 6:2 (a dense 0..31 range: a jump table)
      case 0x04: { // OP-IMM
        const alo = x[r1]!, ahi = x[r1 + 1]!, imm = insn >> 20;
        switch ((insn >>> 12) & 7) {
          case 0: { const lo = (alo + imm) | 0; x[rd] = lo; x[rd + 1] = (ahi + (imm >> 31) + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0; break; }
          case 1: {
            const f6 = imm >>> 6 & 0x3f, sh = imm & 0x3f;
            if (f6 === 0) sll64(x, rd, alo, ahi, sh);
            else if (f6 === 0x0a) { // bseti (Zbs)
              x[rd] = sh < 32 ? alo | (1 << sh) : alo; x[rd + 1] = sh >= 32 ? ahi | (1 << (sh - 32)) : ahi;
            } else if (f6 === 0x12) { // bclri
              x[rd] = sh < 32 ? alo & ~(1 << sh) : alo; x[rd + 1] = sh >= 32 ? ahi & ~(1 << (sh - 32)) : ahi;
            } else if (f6 === 0x1a) { // binvi
              x[rd] = sh < 32 ? alo ^ (1 << sh) : alo; x[rd + 1] = sh >= 32 ? ahi ^ (1 << (sh - 32)) : ahi;
            } else if ((imm & 0xfff) === 0x600) { x[rd] = clz64(alo, ahi); x[rd + 1] = 0; } // clz
            else if ((imm & 0xfff) === 0x601) { x[rd] = alo !== 0 ? ctz32(alo) : 32 + ctz32(ahi); x[rd + 1] = 0; } // ctz
            else if ((imm & 0xfff) === 0x602) { x[rd] = popcount32(alo) + popcount32(ahi); x[rd + 1] = 0; } // cpop
            else if ((imm & 0xfff) === 0x604) { const v = (alo << 24) >> 24; x[rd] = v; x[rd + 1] = v >> 31; } // sext.b
            else if ((imm & 0xfff) === 0x605) { const v = (alo << 16) >> 16; x[rd] = v; x[rd + 1] = v >> 31; } // sext.h
            else { exit = ExitReason.EXCEPTION; break loop; }
            break;
          }
          case 2: x[rd] = lt64(alo, ahi, imm, imm >> 31) ? 1 : 0; x[rd + 1] = 0; break; // slti
          case 3: x[rd] = ltu64(alo, ahi, imm, imm >> 31) ? 1 : 0; x[rd + 1] = 0; break; // sltiu
          case 4: x[rd] = alo ^ imm; x[rd + 1] = ahi ^ (imm >> 31); break;
          case 5: {
            const f6 = imm >>> 6 & 0x3f, sh = imm & 0x3f;
            if (f6 === 0) srl64(x, rd, alo, ahi, sh);
            else if (f6 === 0x10) sra64(x, rd, alo, ahi, sh);
            else if (f6 === 0x18) ror64(x, rd, alo, ahi, sh); // rori
            else if (f6 === 0x12) { x[rd] = ((sh < 32 ? alo >>> sh : ahi >>> (sh - 32)) & 1); x[rd + 1] = 0; } // bexti
            else if ((imm & 0xfff) === 0x287) { x[rd] = orcb32(alo); x[rd + 1] = orcb32(ahi); } // orc.b
            else if ((imm & 0xfff) === 0x6b8) { const t = bswap32(ahi); x[rd + 1] = bswap32(alo); x[rd] = t; } // rev8
            else { exit = ExitReason.EXCEPTION; break loop; }
            break;
          }
          case 6: x[rd] = alo | imm; x[rd + 1] = ahi | (imm >> 31); break;
          default: x[rd] = alo & imm; x[rd + 1] = ahi & (imm >> 31); break;
        }
        break;
      }
      case 0x0c: { // OP
        const alo = x[r1]!, ahi = x[r1 + 1]!, blo = x[r2]!, bhi = x[r2 + 1]!;
        switch ((insn >>> 22 & 0x3f8) | ((insn >>> 12) & 7)) { // funct7 << 3 | funct3
          case 0x000: { const lo = (alo + blo) | 0; x[rd] = lo; x[rd + 1] = (ahi + bhi + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0; break; }
          case 0x100: { const lo = (alo - blo) | 0; x[rd] = lo; x[rd + 1] = (ahi - bhi - ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0; break; }
          case 0x001: sll64(x, rd, alo, ahi, blo & 63); break;
          case 0x002: x[rd] = lt64(alo, ahi, blo, bhi) ? 1 : 0; x[rd + 1] = 0; break;
          case 0x003: x[rd] = ltu64(alo, ahi, blo, bhi) ? 1 : 0; x[rd + 1] = 0; break;
          case 0x004: x[rd] = alo ^ blo; x[rd + 1] = ahi ^ bhi; break;
          case 0x005: srl64(x, rd, alo, ahi, blo & 63); break;
          case 0x105: sra64(x, rd, alo, ahi, blo & 63); break;
          case 0x006: x[rd] = alo | blo; x[rd + 1] = ahi | bhi; break;
          case 0x007: x[rd] = alo & blo; x[rd + 1] = ahi & bhi; break;
          // M extension (funct7 = 1)
          case 0x008: mul64(alo, ahi, blo, bhi); x[rd] = r64[0]!; x[rd + 1] = r64[1]!; break;
          case 0x009: mulh64(alo, ahi, blo, bhi); x[rd] = r64[0]!; x[rd + 1] = r64[1]!; break;
          case 0x00a: mulhsu64(alo, ahi, blo, bhi); x[rd] = r64[0]!; x[rd + 1] = r64[1]!; break;
          case 0x00b: mulhu64(alo, ahi, blo, bhi); x[rd] = r64[0]!; x[rd + 1] = r64[1]!; break;
          case 0x00c: divrem64(alo, ahi, blo, bhi); x[rd] = r64[0]!; x[rd + 1] = r64[1]!; break;
          case 0x00d: divremu64(alo, ahi, blo, bhi); x[rd] = r64[0]!; x[rd + 1] = r64[1]!; break;
          case 0x00e: divrem64(alo, ahi, blo, bhi); x[rd] = r64[2]!; x[rd + 1] = r64[3]!; break;
          case 0x00f: divremu64(alo, ahi, blo, bhi); x[rd] = r64[2]!; x[rd + 1] = r64[3]!; break;
          // Zbb logic-with-negate
          case 0x107: x[rd] = alo & ~blo; x[rd + 1] = ahi & ~bhi; break; // andn
          case 0x106: x[rd] = alo | ~blo; x[rd + 1] = ahi | ~bhi; break; // orn
          case 0x104: x[rd] = ~(alo ^ blo); x[rd + 1] = ~(ahi ^ bhi); break; // xnor
          // Zba shNadd (funct7 = 0x10)
          case 0x082: case 0x084: case 0x086: {
            const n = ((insn >>> 12) & 7) >>> 1;
            const slo = alo << n, shi = (ahi << n) | (alo >>> (32 - n));
            const lo = (slo + blo) | 0; x[rd] = lo; x[rd + 1] = (shi + bhi + ((lo >>> 0) < (slo >>> 0) ? 1 : 0)) | 0; break;
          }
          // Zbb min/max (funct7 = 0x05)
          case 0x02c: if (lt64(alo, ahi, blo, bhi)) { x[rd] = alo; x[rd + 1] = ahi; } else { x[rd] = blo; x[rd + 1] = bhi; } break;
          case 0x02d: if (ltu64(alo, ahi, blo, bhi)) { x[rd] = alo; x[rd + 1] = ahi; } else { x[rd] = blo; x[rd + 1] = bhi; } break;
          case 0x02e: if (lt64(alo, ahi, blo, bhi)) { x[rd] = blo; x[rd + 1] = bhi; } else { x[rd] = alo; x[rd + 1] = ahi; } break;
          case 0x02f: if (ltu64(alo, ahi, blo, bhi)) { x[rd] = blo; x[rd + 1] = bhi; } else { x[rd] = alo; x[rd + 1] = ahi; } break;
          // Zbb rotates (funct7 = 0x30)
          case 0x181: ror64(x, rd, alo, ahi, (64 - (blo & 63)) & 63); break; // rol
          case 0x185: ror64(x, rd, alo, ahi, blo & 63); break; // ror
          // Zbs (funct7 = 0x14 bset, 0x24 bclr/bext, 0x34 binv)
          case 0x0a1: { const n = blo & 63; x[rd] = n < 32 ? alo | (1 << n) : alo; x[rd + 1] = n >= 32 ? ahi | (1 << (n - 32)) : ahi; break; }
          case 0x121: { const n = blo & 63; x[rd] = n < 32 ? alo & ~(1 << n) : alo; x[rd + 1] = n >= 32 ? ahi & ~(1 << (n - 32)) : ahi; break; }
          case 0x125: { const n = blo & 63; x[rd] = (n < 32 ? alo >>> n : ahi >>> (n - 32)) & 1; x[rd + 1] = 0; break; }
          case 0x1a1: { const n = blo & 63; x[rd] = n < 32 ? alo ^ (1 << n) : alo; x[rd + 1] = n >= 32 ? ahi ^ (1 << (n - 32)) : ahi; break; }
          default: exit = ExitReason.EXCEPTION; break loop;
        }
        break;
      }
      case 0x00: { // LOAD
        const imm = insn >> 20, blo = x[r1]!;
        const alo = (blo + imm) | 0, ahi = (x[r1 + 1]! + (imm >> 31) + ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
        const f3 = (insn >>> 12) & 7;
        if (f3 === 7) { exit = ExitReason.EXCEPTION; break loop; }
        // The data TLB's hit test inline (Hart.addrR does it too, and the rest on a miss).
        const size = 1 << (f3 & 3), te = h.tlb.e, tj = ((alo >>> 12) & TLB_MASK) * TLB_WORDS;
        let p: number;
        if (te[tj + TLB_W_R] === (alo & PAGE_MASK) && te[tj + TLB_W_R + 1] === ahi && (alo & 0xfff) <= 4096 - size) {
          p = te[tj + TLB_W_HOST]! + (alo & 0xfff);
        } else {
          p = h.addrR(alo, ahi, size);
          if (p < 0) { exit = loadExit(h, p, rd, f3); ilen = -ilen; break loop; }
        }
        if (f3 === 3) { x[rd] = dv.getInt32(p, true); x[rd + 1] = dv.getInt32(p + 4, true); } // ld
        else if (f3 === 2 || f3 === 6) { const v = dv.getInt32(p, true); x[rd] = v; x[rd + 1] = f3 === 2 ? v >> 31 : 0; } // lw / lwu
        else if (f3 === 0 || f3 === 4) { // lb / lbu
          const v = u8[p]!; if (f3 === 0) { x[rd] = (v << 24) >> 24; x[rd + 1] = (v << 24) >> 31; } else { x[rd] = v; x[rd + 1] = 0; }
        } else { // lh / lhu
          const v = dv.getUint16(p, true); if (f3 === 1) { x[rd] = (v << 16) >> 16; x[rd + 1] = (v << 16) >> 31; } else { x[rd] = v; x[rd + 1] = 0; }
        }
        break;
      }
      case 0x08: { // STORE
        const imm = ((insn >> 25) << 5) | ((insn >>> 7) & 0x1f), blo = x[r1]!;
        const alo = (blo + imm) | 0, ahi = (x[r1 + 1]! + (imm >> 31) + ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
        const f3 = (insn >>> 12) & 7;
        if (f3 > 3) { exit = ExitReason.EXCEPTION; break loop; }
        const size = 1 << f3, te = h.tlb.e, tj = ((alo >>> 12) & TLB_MASK) * TLB_WORDS;
        const p = te[tj + TLB_W_W] === (alo & PAGE_MASK) && te[tj + TLB_W_W + 1] === ahi && (alo & 0xfff) <= 4096 - size
          ? te[tj + TLB_W_HOST]! + (alo & 0xfff) : h.addrW(alo, ahi, size);
        if (p >= 0) {
          if (f3 === 3) { dv.setInt32(p, x[r2]!, true); dv.setInt32(p + 4, x[r2 + 1]!, true); }
          else if (f3 === 2) dv.setInt32(p, x[r2]!, true);
          else if (f3 === 0) u8[p] = x[r2]!;
          else dv.setInt16(p, x[r2]!, true);
        } else if (p === ADDR_SPLIT) h.storeSplit(alo, ahi, size, x[r2]!, x[r2 + 1]!);
        else { exit = storeExit(h, p, x[r2]!, x[r2 + 1]!); ilen = -ilen; break loop; }
        break;
      }
      case 0x18: { // BRANCH
        const alo = x[r1]!, ahi = x[r1 + 1]!, blo = x[r2]!, bhi = x[r2 + 1]!;
        let taken: boolean;
        switch ((insn >>> 12) & 7) {
          case 0: taken = alo === blo && ahi === bhi; break;
          case 1: taken = alo !== blo || ahi !== bhi; break;
          case 4: taken = lt64(alo, ahi, blo, bhi); break;
          case 5: taken = !lt64(alo, ahi, blo, bhi); break;
          case 6: taken = ltu64(alo, ahi, blo, bhi); break;
          case 7: taken = !ltu64(alo, ahi, blo, bhi); break;
          default: exit = ExitReason.EXCEPTION; break loop;
        }
        if (taken) {
          const imm = ((insn >> 31) << 12) | ((insn << 4) & 0x800) | ((insn >>> 20) & 0x7e0) | ((insn >>> 7) & 0x1e);
          nlo = (pcLo + imm) | 0;
          nhi = (pcHi + (imm >> 31) + ((nlo >>> 0) < (pcLo >>> 0) ? 1 : 0)) | 0;
        }
        break;
      }
      case 0x1b: { // JAL
        const imm = ((insn >> 31) << 20) | (insn & 0xff000) | ((insn >>> 9) & 0x800) | ((insn >>> 20) & 0x7fe);
        x[rd] = nlo; x[rd + 1] = nhi;
        nlo = (pcLo + imm) | 0;
        nhi = (pcHi + (imm >> 31) + ((nlo >>> 0) < (pcLo >>> 0) ? 1 : 0)) | 0;
        break;
      }
      case 0x19: { // JALR
        if (((insn >>> 12) & 7) !== 0) { exit = ExitReason.EXCEPTION; break loop; }
        const imm = insn >> 20, blo = x[r1]!;
        const tlo = (blo + imm) | 0, thi = (x[r1 + 1]! + (imm >> 31) + ((tlo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
        x[rd] = nlo; x[rd + 1] = nhi;
        nlo = tlo & ~1; nhi = thi;
        break;
      }
      case 0x0d: x[rd] = insn & 0xfffff000; x[rd + 1] = insn >> 31; break; // LUI
      case 0x05: { // AUIPC
        const imm = insn & 0xfffff000, lo = (pcLo + imm) | 0;
        x[rd] = lo; x[rd + 1] = (pcHi + (imm >> 31) + ((lo >>> 0) < (pcLo >>> 0) ? 1 : 0)) | 0;
        break;
      }
      case 0x06: { // OP-IMM-32
        const alo = x[r1]!, imm = insn >> 20, f3 = (insn >>> 12) & 7, sh = imm & 0x1f;
        let v: number;
        if (f3 === 0) v = (alo + imm) | 0; // addiw
        else if (f3 === 1) {
          const f7 = (imm >>> 5) & 0x7f;
          if (f7 === 0) v = alo << sh; // slliw
          else if ((imm >>> 6 & 0x3f) === 0x02) { // slli.uw (Zba): shamt is 6 bits
            const n = imm & 0x3f; sll64(x, rd, alo, 0, n); break;
          } else if ((imm & 0xfff) === 0x600) v = Math.clz32(alo); // clzw
          else if ((imm & 0xfff) === 0x601) v = ctz32(alo); // ctzw
          else if ((imm & 0xfff) === 0x602) v = popcount32(alo); // cpopw
          else { exit = ExitReason.EXCEPTION; break loop; }
        } else if (f3 === 5) {
          const f7 = (imm >>> 5) & 0x7f;
          if (f7 === 0) v = alo >>> sh; else if (f7 === 0x20) v = alo >> sh;
          else if (f7 === 0x30) v = sh === 0 ? alo : (alo >>> sh) | (alo << (32 - sh)); // roriw
          else { exit = ExitReason.EXCEPTION; break loop; }
        } else { exit = ExitReason.EXCEPTION; break loop; }
        x[rd] = v; x[rd + 1] = v >> 31;
        break;
      }
      case 0x0e: { // OP-32
        const alo = x[r1]!, blo = x[r2]!;
        let v = 0, w64 = false;
        switch ((insn >>> 22 & 0x3f8) | ((insn >>> 12) & 7)) {
          case 0x000: v = (alo + blo) | 0; break;
          case 0x100: v = (alo - blo) | 0; break;
          case 0x001: v = alo << (blo & 31); break;
          case 0x005: v = alo >>> (blo & 31); break;
          case 0x105: v = alo >> (blo & 31); break;
          case 0x008: v = Math.imul(alo, blo); break; // mulw
          case 0x00c: v = blo === 0 ? -1 : (alo === -2147483648 && blo === -1) ? alo : (alo / blo) | 0; break; // divw
          case 0x00d: v = blo === 0 ? -1 : ((alo >>> 0) / (blo >>> 0)) | 0; break; // divuw
          case 0x00e: v = blo === 0 ? alo : (alo === -2147483648 && blo === -1) ? 0 : (alo % blo) | 0; break; // remw
          case 0x00f: v = blo === 0 ? alo : ((alo >>> 0) % (blo >>> 0)) | 0; break; // remuw
          case 0x020: { // add.uw (Zba)
            const bh = x[r2 + 1]!, lo = (alo + blo) | 0;
            x[rd] = lo; x[rd + 1] = (bh + ((lo >>> 0) < (alo >>> 0) ? 1 : 0)) | 0; w64 = true; break;
          }
          case 0x024: // zext.h (Zbb, rs2 = 0)
            if (((insn >>> 20) & 31) !== 0) { exit = ExitReason.EXCEPTION; break loop; }
            x[rd] = alo & 0xffff; x[rd + 1] = 0; w64 = true; break;
          case 0x082: case 0x084: case 0x086: { // shNadd.uw (Zba)
            const n = ((insn >>> 12) & 7) >>> 1, bh = x[r2 + 1]!;
            const slo = alo << n, shi = alo >>> (32 - n);
            const lo = (slo + blo) | 0; x[rd] = lo; x[rd + 1] = (shi + bh + ((lo >>> 0) < (slo >>> 0) ? 1 : 0)) | 0;
            w64 = true; break;
          }
          case 0x181: { const n = blo & 31; v = n === 0 ? alo : (alo << n) | (alo >>> (32 - n)); break; } // rolw
          case 0x185: { const n = blo & 31; v = n === 0 ? alo : (alo >>> n) | (alo << (32 - n)); break; } // rorw
          default: exit = ExitReason.EXCEPTION; break loop;
        }
        if (!w64) { x[rd] = v; x[rd + 1] = v >> 31; }
        break;
      }
      case 0x01: { // LOAD-FP: flw / fld
        const f3 = (insn >>> 12) & 7;
        if ((f3 !== 2 && f3 !== 3) || h.fpOff) { exit = ExitReason.EXCEPTION; break loop; }
        const imm = insn >> 20, blo = x[r1]!;
        const alo = (blo + imm) | 0, ahi = (x[r1 + 1]! + (imm >> 31) + ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
        const p = h.addrR(alo, ahi, f3 === 3 ? 8 : 4);
        if (p < 0) { exit = loadExit(h, p, rd, f3 + 8); ilen = -ilen; break loop; }
        if (h.csrs !== null) h.csrs.dirtyFs();
        f[rd] = dv.getInt32(p, true);
        f[rd + 1] = f3 === 3 ? dv.getInt32(p + 4, true) : -1; // NaN-box singles (F spec §12.2)
        break;
      }
      case 0x09: { // STORE-FP: fsw / fsd
        const f3 = (insn >>> 12) & 7;
        if ((f3 !== 2 && f3 !== 3) || h.fpOff) { exit = ExitReason.EXCEPTION; break loop; }
        const imm = ((insn >> 25) << 5) | ((insn >>> 7) & 0x1f), blo = x[r1]!;
        const alo = (blo + imm) | 0, ahi = (x[r1 + 1]! + (imm >> 31) + ((alo >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
        const size = f3 === 3 ? 8 : 4;
        const p = h.addrW(alo, ahi, size);
        if (p >= 0) { dv.setInt32(p, f[r2]!, true); if (size === 8) dv.setInt32(p + 4, f[r2 + 1]!, true); }
        else if (p === ADDR_SPLIT) h.storeSplit(alo, ahi, size, f[r2]!, f[r2 + 1]!);
        else { exit = storeExit(h, p, f[r2]!, f[r2 + 1]!); ilen = -ilen; break loop; }
        break;
      }
      case 0x14: case 0x10: case 0x11: case 0x12: case 0x13: // OP-FP and fused multiply-add
        if (h.fpOff || execFp(st, insn) < 0) { exit = ExitReason.EXCEPTION; break loop; }
        if (h.csrs !== null) h.csrs.dirtyFs();
        break;
      case 0x0b: { // AMO
        const r = execAmo(h, insn, rd, r1, r2);
        if (r !== 0) { exit = ExitReason.EXCEPTION; if (r > 0) ilen = -ilen; break loop; }
        break;
      }
      case 0x03: { // MISC-MEM: fence, fence.i (Zifencei) — no-ops for one interpreter hart
        const f3 = (insn >>> 12) & 7;
        if (f3 !== 0 && f3 !== 1) { exit = ExitReason.EXCEPTION; break loop; }
        break;
      }
      case 0x1c: { // SYSTEM
        const f3 = (insn >>> 12) & 7;
        if (f3 === 0) {
          if (insn === 0x00000073) { // ecall: cause 8/9/11 for U/S/M (privileged spec Table 3.6)
            exit = ExitReason.EXCEPTION; h.raise(CAUSE_USER_ECALL + s[S.PRIV]!, 0, 0); ilen = -ilen; break loop;
          }
          // ebreak: tval 0, as QEMU writes (the spec allows 0 or the pc).
          if (insn === 0x00100073) { exit = ExitReason.EXCEPTION; h.raise(CAUSE_BREAKPOINT, 0, 0); ilen = -ilen; break loop; }
          exit = ExitReason.EXCEPTION; break loop;
        }
        if (f3 === 4) { exit = ExitReason.EXCEPTION; break loop; }
        const csr = insn >>> 20, rs1 = (insn >>> 15) & 31;
        const op = f3 & 3, useImm = f3 >= 4;
        const wlo = useImm ? rs1 : x[r1]!, whi = useImm ? 0 : x[r1 + 1]!;
        const writes = op === 1 || rs1 !== 0;
        const retired = start - budget - 1; // make instret exact for the CSR read and write (minstret/mcycle offsets)
        st.instret += retired;
        const ok = h.csrRead(csr);
        if (!ok) { st.instret -= retired; exit = ExitReason.EXCEPTION; break loop; }
        const oldLo = h.csrVal[0]!, oldHi = h.csrVal[1]!;
        if (writes) {
          const nlo2 = op === 1 ? wlo : op === 2 ? oldLo | wlo : oldLo & ~wlo;
          const nhi2 = op === 1 ? whi : op === 2 ? oldHi | whi : oldHi & ~whi;
          if (!h.csrWrite(csr, nlo2, nhi2)) { st.instret -= retired; exit = ExitReason.EXCEPTION; break loop; }
        }
        st.instret -= retired;
        x[rd] = oldLo; x[rd + 1] = oldHi;
        if (h.csrChanged) { pcLo = nlo; pcHi = nhi; break loop; } // re-evaluate modes, TLBs and interrupts
        break;
      }
      default:
        exit = ExitReason.EXCEPTION; break loop;
    }
    pcLo = nlo; pcHi = nhi;
  }

  // ---- exit bookkeeping ----
  // Every exit runs these same operations, so V8 has type feedback for them
  // all: an operation first reached after V8 optimized this function (an MMIO
  // exit's) deoptimized it on every such exit, without re-optimizing
  // (6 K deopts in a boot).
  x[0] = 0; x[1] = 0;
  const mmio = exit === ExitReason.MMIO;
  s[mmio ? S.EXIT_ILEN : S.EXIT_SCRATCH] = 0 - ilen; // MMIO: the access's instruction marked itself with ilen < 0
  budget += mmio ? 1 : 0; // an MMIO access retires when the VMM completes it
  if (exit === ExitReason.EXCEPTION) {
    if (ilen > 0) h.raise(CAUSE_ILLEGAL_INSTRUCTION, raw, 0); // decode failure: tval = instruction bits
    else if (ilen === 0) ilen = 4; // fetch fault (recorded by the fetch path)
    else ilen = -ilen; // fault recorded by the executing instruction
    s[S.EXIT_ILEN] = ilen;
    s[S.EXIT_INSN] = raw;
    budget++; // the faulting instruction did not retire
  }
  s[S.PC_LO] = pcLo; s[S.PC_HI] = pcHi;
  st.instret += start - budget;
  return exit;
}

/** Runs `h` for up to `budget` instructions on its engine (the JIT) if it has one, else on the interpreter. */
export function execute(h: Hart, budget: number): ExitReason {
  return h.engine !== null ? h.engine.run(h, budget) : run(h, budget);
}
