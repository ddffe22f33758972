/**
 * The contract between generated units (codegen.ts), the engine that runs
 * them (engine.ts) and the hub (wasm-writer.ts): exit codes, the hart-state
 * cells units read and write, the imported helpers, the wasm locals, the
 * indirect-branch cache in each CPU slot, and how links and exit sites are
 * encoded.
 */
import { I32, I64, F32, F64, type FuncType, type FuncImport, type TableImport } from './wasm-writer.js';
import { S, HART_STATE_BYTES } from '../cpu/hart-state.js';
import { TLB_BYTES } from '../mmu/tlb.js';
import { CPU_SLOT_BYTES } from '../memory/guest-ram.js';

/** The block at pc needs more budget than is left: the interpreter finishes the slice. */
export const EXIT_BUDGET = 0;
/** Continue at pc through the dispatcher (indirect jump, another page, another unit). */
export const EXIT_DISPATCH = 1;
/**
 * The interpreter must execute the instruction at pc (not translated, or its
 * slow path failed), and the rest of its block: the site cell holds how many
 * instructions, so translated code is re-entered at a block start.
 */
export const EXIT_INTERP = 2;
/** Internal: the exit tail-calls the linked unit (never returned). */
export const EXIT_CHAIN = 3;

/** Byte offsets in the hart state (hart-state.ts layout: x at 0, f at 256, scalars at 512). */
export const F_BASE = 256;
export const PC_OFF = 512 + 4 * S.PC_LO;
export const TLB_CELL = 512 + 4 * S.JIT_TLB;
export const FLUSHED_CELL = 512 + 4 * S.JIT_FLUSHED;
export const BUDGET_CELL = 512 + 4 * S.JIT_BUDGET;
export const FTLB_CELL = 512 + 4 * S.JIT_FTLB;
export const SITE_CELL = 512 + 4 * S.JIT_SITE;
export const FFLAGS_CELL = 512 + 4 * S.FFLAGS;
export const FRM_CELL = 512 + 4 * S.FRM;

/** Indices of the helpers in the helper table (in `HELPERS` order). */
export const FN_LD_SLOW = 0, FN_ST_SLOW = 1, FN_ST_SPLIT = 2, FN_FP = 3, FN_AMO = 4, FN_HUB = 5, FN_CSR = 6;

/** Types: 0 = (i32 i32 i32) -> i32 (slow paths and the unit function), 1 = stSplit, 2 = (i32) -> i32. */
export const TYPES: FuncType[] = [
  { params: [I32, I32, I32], results: [I32] },
  { params: [I32, I32, I32, I32, I32], results: [] },
  { params: [I32], results: [I32] },
  { params: [I32, I32, I32, I32], results: [I32] },
  { params: [I32, I32], results: [I32] },
];
/** Type indices of a unit's function and of the hub's entry. */
export const T_UNIT = 0, T_HUB = 3;
/**
 * The helpers units call, by index in the helper table ("h"."fns", built by
 * the engine from the hub's exports): the hub's entry and thunks of the
 * engine's JS functions (module and name are what the hub imports).
 */
export const HELPERS: FuncImport[] = [
  { module: 'h', name: 'ldSlow', type: 0 },
  { module: 'h', name: 'stSlow', type: 0 },
  { module: 'h', name: 'stSplit', type: 1 },
  { module: 'h', name: 'fp', type: 2 },
  { module: 'h', name: 'amo', type: 2 },
  { module: 'h', name: 'hub', type: 3 },
  { module: 'h', name: 'csr', type: 4 },
];

/** The helper table as units import it. */
export const HELPER_TABLE: TableImport = { module: 'h', name: 'fns', min: HELPERS.length };

/** Returned by the store slow path for a store that straddles two pages (cpu/hart.ts ADDR_SPLIT). */
export const ADDR_SPLIT = -2;

/** Local indices. */
export const L_ST = 0, L_BUDGET = 1, L_ENTRY = 2, L_PCBASE = 3;
/** Guest register r (1..31) lives in local 3 + r. */
export const regLocal = (r: number): number => 3 + r;
export const L_A = 35, L_T = 36, L_T2 = 37, L_T3 = 38, L_T4 = 39, L_NPC = 40;
export const L_LO = 41, L_P = 42, L_TLB = 43, L_CODE = 44, L_B = 45, L_FTLB = 46, L_Q = 47, L_A32 = 48;
export const L_F64 = [49, 50, 51, 52, 53, 54, 55, 56, 57, 58], L_F32 = [59, 60, 61];
/**
 * One-page caches of the first loads in a unit's loop bodies (codegen.ts
 * hostAddr): the page each last hit in the data TLB, and that entry's
 * addend. They live for one call of the unit (the prologue sets the tags to
 * -1, which no page equals): nothing a unit runs between its entry and its
 * exit changes a mapping or a read permission (satp, mstatus, sfence.vma,
 * mmap and munprotect all end the call first; a store whose slow path
 * remapped guest RAM, such as a copy-on-write from the zero frame, sets
 * JIT_FLUSHED and the unit leaves right after it).
 */
export const L_CTAG = [62, 63], L_CADD = [64, 65];
export const LOCALS: [number, number][] = [[38, I64], [8, I32], [10, F64], [3, F32], [2, I64], [2, I32]];

/**
 * The indirect-branch target cache in each hart's CPU slot, after the hart
 * state and its four TLBs: IBTC_ENTRIES entries of IBTC_ENTRY bytes —
 * target pc (lo, hi), link ((slot << LINK_ENTRY_BITS) | entry), mode + 1, host page.
 */
export const IBTC_OFF = HART_STATE_BYTES + 4 * TLB_BYTES;
export const IBTC_ENTRIES = 512, IBTC_ENTRY = 20;
/** log2(IBTC_ENTRIES): the index is the top IBTC_BITS bits of pc.lo * IBTC_HASH. */
export const IBTC_BITS = 9;
/**
 * Fibonacci hashing's multiplier (2^32 / golden ratio). A multiplicative hash
 * keeps pcs that differ only in a few bits apart; the earlier xor-fold
 * `lo >>> 1 ^ lo >>> 9` sent 0x105d6 and 0x107d4 (a call and its return in
 * the bytecode-interpreter bench) to one entry, 4 M dispatcher trips per run.
 */
export const IBTC_HASH = 0x9e3779b1 | 0;

if (IBTC_OFF + IBTC_ENTRIES * IBTC_ENTRY > CPU_SLOT_BYTES || 1 << IBTC_BITS !== IBTC_ENTRIES) throw new Error('jit: the IBTC does not fit the CPU slot');

/** The IBTC entry index of a pc whose low word is `lo` (the generated code computes the same). */
export function ibtcIndex(lo: number): number {
  return Math.imul(lo, IBTC_HASH) >>> (32 - IBTC_BITS);
}
export const IBTC_PC_LO = 0, IBTC_PC_HI = 4, IBTC_LINK = 8, IBTC_MODE = 12, IBTC_PAGE = 16;

/** A link is (table slot << LINK_ENTRY_BITS) | entry block; an exit-site cell is (slot << SITE_BITS) | site. */
export const LINK_ENTRY_BITS = 9, SITE_BITS = 10;
/** The entry-block bits of a link. */
export const LINK_ENTRY_MASK = (1 << LINK_ENTRY_BITS) - 1;

/** Global 0 of every unit: its table slot, set by the engine after instantiation. */
export const G_SLOT = 0;
/** Kinds of chainable exit sites. */
export const SITE_PAGE = 0, SITE_CROSS = 1, SITE_JALR = 2;

/** The generated module and, when asked for, its listing. */
export interface UnitCode {
  bytes: Uint8Array<ArrayBuffer>;
  listing: string[] | null;
  /** Kind of each exit site (SITE_*); site k owns the exported globals l{k} (link), p{k} (page), a{k}/b{k} (jalr target). */
  sites: number[];
  /** Per exit site: the page offset of its jalr (SITE_JALR), else -1. */
  siteInsn: number[];
}
