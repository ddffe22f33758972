/**
 * Block formation for the translator: decodes guest code in one physical
 * page into basic blocks and groups the blocks reachable from a hot entry
 * into a unit (one WebAssembly module).
 *
 * A block is a run of instructions the translator handles, ended by a
 * control transfer (branch, jal, jalr), by the next instruction being one
 * the interpreter must run (CSR and other SYSTEM instructions, fence.i,
 * unsupported encodings), by the page end, by the length cap, or by another
 * block's entry point. Blocks never cross a page: the unit is keyed by the
 * physical page, and fetch permission is checked once per page. The one
 * exception is a 32-bit instruction in the page's last two bytes: given the
 * host page `next` that the following virtual page mapped to when the unit
 * was planned, its upper half is read from there (the generated code checks
 * that mapping before running it, and the unit is invalidated with either
 * page), and it ends its block.
 */
import { RVC_TABLE } from '../cpu/decode-compressed.js';

/** How a block ends. */
export const enum Term {
  /** Conditional branch: taken target and fall-through. */
  BRANCH = 0,
  /** jal: direct jump (with link). */
  JAL = 1,
  /** jalr: indirect jump, resolved by the dispatcher. */
  JALR = 2,
  /** Falls through to `end` (page end, length cap, or the next block's entry). */
  FALL = 3,
  /** The instruction at `end` is one the interpreter runs. */
  INTERP = 4,
}

/** Longest block, in instructions (bounds the cost of a side exit's bookkeeping). */
export const MAX_BLOCK_INSNS = 64;
/**
 * Most blocks per unit (the br_table of its dispatch loop; at most
 * 2^LINK_ENTRY_BITS) and most instructions (bounds one compile). Measured
 * (busybox gzip, 32 MiB, run loop): 16/400 9.0 s, 48/1,500 8.7 s, 96/3,000
 * 8.4 s, 192/6,000 8.7 s; the Debian boot was the same at 48 and 96.
 */
export const MAX_UNIT_BLOCKS = 96;
export const MAX_UNIT_INSNS = 3000;

/** Page offset of a 32-bit instruction that straddles into the next page. */
export const STRADDLE_OFF = 4094;

/** True if block `b` ends with an instruction that straddles into the next page. */
export function straddles(b: Block): boolean {
  const n = b.offs.length;
  return n > 0 && b.offs[n - 1] === STRADDLE_OFF && b.lens[n - 1] === 4;
}

/** One decoded basic block. Offsets are byte offsets in the page; targets may lie outside it. */
export interface Block {
  /** Page offset of the first instruction. */
  start: number;
  /** Expanded 32-bit instruction words. */
  insns: number[];
  /** Page offset of each instruction. */
  offs: number[];
  /** Length of each instruction (2 or 4). */
  lens: number[];
  /** Page offset just past the last instruction. */
  end: number;
  term: Term;
  /** Branch/jal target as a page offset (BRANCH, JAL); for INTERP, the offset after that instruction (-1 if unknown). */
  target: number;
  /**
   * For a JALR block: the page offsets its jalr was seen to jump to in this
   * page (learned by the engine) that the unit also holds, so generated code
   * jumps there without leaving the unit. Set by planUnit.
   */
  jalrTargets?: number[];
}

/** Page offsets that jalr instructions of a page were seen to jump to in the same page, by the jalr's page offset. */
export type JalrTargets = ReadonlyMap<number, readonly number[]>;

/** Sign-extended B-type immediate (unprivileged spec §2.5, Figure 2.4). */
export function branchImm(insn: number): number {
  return ((insn >> 31) << 12) | ((insn << 4) & 0x800) | ((insn >>> 20) & 0x7e0) | ((insn >>> 7) & 0x1e);
}

/** Sign-extended J-type immediate (§2.5, Figure 2.4). */
export function jalImm(insn: number): number {
  return ((insn >> 31) << 20) | (insn & 0xff000) | ((insn >>> 9) & 0x800) | ((insn >>> 20) & 0x7fe);
}

/**
 * Which F/D instructions generated code may run, from mstatus.FS
 * (privileged spec §3.1.6.6): an instruction that writes an f register or
 * fcsr must set FS to Dirty, which generated code does not do, so while FS
 * is Initial or Clean only the FP stores (which read f registers and change
 * no FP state) are translated; while FS is Off every F/D instruction must
 * raise an illegal-instruction exception, which the interpreter does.
 * A hart without privileged CSRs (the process VM) has ALL.
 */
export const enum FpAccess {
  /** FS Off: no F/D instruction is translated. */
  NONE = 0,
  /** FS Initial or Clean: FP stores only (setjmp's fsd fs0-fs11, spills of saved registers). */
  STORES = 1,
  /** FS Dirty, or no privileged CSRs: every translatable F/D instruction. */
  ALL = 2,
}

/**
 * True if the translator handles `insn` (expanded form) under `fp` (see
 * FpAccess); an instruction it does not handle ends the block and the
 * interpreter runs it.
 */
export function translatable(insn: number, fp: FpAccess): boolean {
  const f3 = (insn >>> 12) & 7;
  switch ((insn >>> 2) & 31) {
    case 0x04: { // OP-IMM
      const imm = insn >> 20, f6 = (imm >>> 6) & 0x3f;
      if (f3 === 1) {
        return f6 === 0 || f6 === 0x0a || f6 === 0x12 || f6 === 0x1a ||
          ((imm & 0xfff) >= 0x600 && (imm & 0xfff) <= 0x605 && (imm & 0xfff) !== 0x603);
      }
      if (f3 === 5) return f6 === 0 || f6 === 0x10 || f6 === 0x18 || f6 === 0x12 || (imm & 0xfff) === 0x287 || (imm & 0xfff) === 0x6b8;
      return true;
    }
    case 0x0c: // OP
      switch ((insn >>> 22 & 0x3f8) | f3) {
        case 0x000: case 0x100: case 0x001: case 0x002: case 0x003: case 0x004: case 0x005: case 0x105:
        case 0x006: case 0x007: case 0x008: case 0x009: case 0x00a: case 0x00b: case 0x00c: case 0x00d:
        case 0x00e: case 0x00f: case 0x107: case 0x106: case 0x104: case 0x082: case 0x084: case 0x086:
        case 0x02c: case 0x02d: case 0x02e: case 0x02f: case 0x181: case 0x185: case 0x0a1: case 0x121:
        case 0x125: case 0x1a1:
          return true;
        default: return false;
      }
    case 0x06: { // OP-IMM-32
      const imm = insn >> 20, f7 = (imm >>> 5) & 0x7f;
      if (f3 === 0) return true;
      if (f3 === 1) return f7 === 0 || ((imm >>> 6) & 0x3f) === 0x02 || (imm & 0xfff) === 0x600 ||
        (imm & 0xfff) === 0x601 || (imm & 0xfff) === 0x602;
      if (f3 === 5) return f7 === 0 || f7 === 0x20 || f7 === 0x30;
      return false;
    }
    case 0x0e: // OP-32
      switch ((insn >>> 22 & 0x3f8) | f3) {
        case 0x000: case 0x100: case 0x001: case 0x005: case 0x105: case 0x008: case 0x00c: case 0x00d:
        case 0x00e: case 0x00f: case 0x020: case 0x082: case 0x084: case 0x086: case 0x181: case 0x185:
          return true;
        case 0x024: return ((insn >>> 20) & 31) === 0; // zext.h
        default: return false;
      }
    case 0x00: return f3 !== 7; // LOAD
    case 0x08: return f3 <= 3; // STORE
    case 0x01: return fp === FpAccess.ALL && (f3 === 2 || f3 === 3); // LOAD-FP
    case 0x09: return fp !== FpAccess.NONE && (f3 === 2 || f3 === 3); // STORE-FP
    case 0x14: case 0x10: case 0x11: case 0x12: case 0x13: return fp === FpAccess.ALL; // OP-FP, FMA (through a helper)
    case 0x0b: return f3 === 2 || f3 === 3; // AMO (through a helper)
    case 0x03: return f3 === 0; // fence (fence.i goes to the interpreter)
    case 0x18: return f3 !== 2 && f3 !== 3; // BRANCH
    case 0x1b: case 0x0d: case 0x05: return true; // JAL, LUI, AUIPC
    case 0x19: return f3 === 0; // JALR
    case 0x1c: // SYSTEM: the Zicsr instructions (inline for fflags/frm/fcsr, else through a helper); not ecall/xret/wfi/sfence
      return f3 !== 0 && f3 !== 4;
    default: return false; // other SYSTEM instructions and the rest
  }
}

/**
 * Reads the instruction at page offset `off`: [expanded insn, length], or
 * [0, 0] if it cannot be decoded here. One that straddles the page end
 * takes its upper half from host page `next` (if it is not -1).
 */
function fetchAt(dv: DataView, page: number, off: number, out: number[], next: number): void {
  const lo = dv.getUint16(page + off, true);
  if ((lo & 3) !== 3) { out[0] = RVC_TABLE[lo]!; out[1] = out[0] === 0 ? 0 : 2; return; }
  if (off > 4092) { // straddles the page end
    if (off === STRADDLE_OFF && next >= 0) { out[0] = lo | (dv.getUint16(next, true) << 16); out[1] = 4; return; }
    out[0] = 0; out[1] = 0; return;
  }
  out[0] = dv.getInt32(page + off, true); out[1] = 4;
}

/**
 * Decodes the block at page offset `start` of the page at host offset
 * `page`. `leaders` are other blocks' entries: reaching one ends the block.
 * `next` is the host page of the following virtual page, or -1.
 */
export function decodeBlock(dv: DataView, page: number, start: number, fp: FpAccess, leaders?: Set<number>, next = -1): Block {
  const b: Block = { start, insns: [], offs: [], lens: [], end: start, term: Term.FALL, target: 0 };
  const cur = [0, 0];
  let off = start;
  for (;;) {
    if (off >= 4096) { b.term = Term.FALL; break; }
    if (off !== start && leaders !== undefined && leaders.has(off)) { b.term = Term.FALL; break; }
    if (b.insns.length >= MAX_BLOCK_INSNS) { b.term = Term.FALL; break; }
    fetchAt(dv, page, off, cur, next);
    const insn = cur[0]!, len = cur[1]!;
    if (len === 0 || !translatable(insn, fp)) {
      b.term = Term.INTERP;
      b.target = len === 0 ? -1 : off + len; // where execution continues after the interpreter's step
      break;
    }
    b.insns.push(insn); b.offs.push(off); b.lens.push(len);
    off += len;
    const major = (insn >>> 2) & 31;
    if (major === 0x18) { b.term = Term.BRANCH; b.target = b.offs[b.offs.length - 1]! + branchImm(insn); break; }
    if (major === 0x1b) { b.term = Term.JAL; b.target = b.offs[b.offs.length - 1]! + jalImm(insn); break; }
    if (major === 0x19) { b.term = Term.JALR; break; }
  }
  b.end = off;
  return b;
}

/** True when the block ends in a call: a jal or jalr that writes a link register (rd != x0). */
function isCall(b: Block): boolean {
  const last = b.insns[b.insns.length - 1];
  return last !== undefined && ((last >>> 7) & 31) !== 0;
}

/**
 * Plans a unit from the hot entry at `entry`: every block reachable from it
 * through direct branches and fall-throughs that stay in the page, split so
 * that no block runs into another's entry. With `callReturns` (threshold 0),
 * the instruction after each call is a leader too, so the callee's return
 * lands in this unit instead of making a unit of its own. `translated`
 * holds the blocks other units translate (they are not translated again).
 * `learned` maps a jalr's page offset to the same-page targets it was seen
 * to jump to: they are followed like direct branch targets, so an indirect
 * jump to one of them (a switch's jump table, a return) stays in the unit.
 * Returns the blocks in address order. `nextPage` is the host page of the
 * following virtual page, or -1.
 */
export function planUnit(dv: DataView, page: number, entry: number, fp: FpAccess, callReturns = false,
  translated?: Set<number>, nextPage = -1, learned?: JalrTargets): Block[] {
  const leaders = new Set<number>([entry]);
  const queue = [entry];
  // Blocks other units already translate are not translated again: this unit's blocks stop at
  // them and jump there through chainable exits (as each QEMU TB is translated once).
  const stops = new Set<number>(leaders);
  if (translated !== undefined) for (const t of translated) if (t !== entry) stops.add(t);
  let insns = 0;
  // Discover leaders breadth-first (blocks decoded here may be split later).
  for (let qi = 0; qi < queue.length && leaders.size < MAX_UNIT_BLOCKS && insns < MAX_UNIT_INSNS; qi++) {
    const b = decodeBlock(dv, page, queue[qi]!, fp, stops, nextPage);
    insns += b.insns.length;
    const next: number[] = [];
    if (b.term === Term.BRANCH) next.push(b.target, b.end);
    else if (b.term === Term.JAL) {
      next.push(b.target);
      if (callReturns && isCall(b)) next.push(b.end); // where the callee returns to
    } else if (b.term === Term.JALR) {
      if (callReturns && isCall(b)) next.push(b.end);
      const seen = learned?.get(b.offs[b.offs.length - 1]!);
      if (seen !== undefined) next.push(...seen);
    } else if (b.term === Term.FALL) next.push(b.end);
    else if (b.term === Term.INTERP && b.target >= 0) next.push(b.target); // the code after an ecall, sret, …
    for (const t of next) {
      if (t < 0 || t >= 4096 || leaders.has(t) || stops.has(t) || leaders.size >= MAX_UNIT_BLOCKS) continue;
      leaders.add(t);
      stops.add(t);
      queue.push(t);
    }
  }
  const blocks: Block[] = [];
  for (const l of queue) if (leaders.has(l) && !blocks.some((b) => b.start === l)) blocks.push(decodeBlock(dv, page, l, fp, stops, nextPage));
  if (learned !== undefined) {
    for (const b of blocks) {
      const seen = b.term === Term.JALR ? learned.get(b.offs[b.offs.length - 1]!) : undefined;
      const held = seen?.filter((t) => leaders.has(t));
      if (held !== undefined && held.length > 0) b.jalrTargets = held;
    }
  }
  // Address order: forward branches become forward wasm branches (codegen.ts).
  return blocks.sort((a, b) => a.start - b.start);
}
