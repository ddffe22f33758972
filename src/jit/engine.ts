/**
 * The JIT engine: runs a hart by dispatching to translated units, and
 * interprets what is cold or not translatable.
 *
 * - **Hotness.** Each block start (guest-physical address + mode) gets a
 *   record the first time the dispatcher reaches it; the block is
 *   interpreted until it has run `threshold` times, then the unit around it
 *   is translated (block-decoder.ts, codegen.ts) and compiled to a wasm
 *   module sharing guest RAM's memory.
 * - **Cache key.** Host offset of the guest-physical address, and the mode:
 *   privilege, mstatus.FS and whether paging is on. Generated code is
 *   position-independent (pc comes from the hart state), so a page mapped at
 *   several virtual addresses shares one translation, and harts on the same
 *   RAM share the cache.
 * - **Invalidation.** A page with translated code is marked in
 *   `ram.codePages` and loses its cached write permission in every TLB, so
 *   the first store to it takes the slow path, which drops the page's units
 *   (`invalidatePage`). DMA and system calls report writes through
 *   `ram.written`. Translations are physical, so sfence.vma and satp writes
 *   need no flush here: the dispatcher translates pc through the fetch TLB.
 * - **Bound.** The generated wasm bytes are counted; past `cacheBytes` the
 *   oldest units are evicted.
 */
import { run as interpret } from '../cpu/interpreter.js';
import { ExitReason, type ExecEngine, type Hart } from '../cpu/hart.js';
import { S } from '../cpu/hart-state.js';
import { execFp } from '../cpu/exec-fp.js';
import { execAmo } from '../cpu/exec-amo.js';
import { MSTATUS_FS } from '../cpu/csr-file.js';
import { TLB_MASK, PAGE_MASK, TLB_WORDS, TLB_W_X, TLB_W_HOST } from '../mmu/tlb.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { JitConfig } from './jit-config.js';
import { decodeBlock, planUnit, straddles, FpAccess, Term } from './block-decoder.js';
import { hubModuleBytes } from './wasm-writer.js';
import { generateUnit } from './codegen.js';
import {
  LINK_ENTRY_BITS, LINK_ENTRY_MASK, SITE_BITS, EXIT_BUDGET, EXIT_DISPATCH, EXIT_INTERP, SITE_CROSS, SITE_JALR, IBTC_OFF, IBTC_ENTRIES, IBTC_ENTRY,
  IBTC_PC_LO, IBTC_PC_HI, IBTC_LINK, IBTC_MODE, IBTC_PAGE, ibtcIndex, HELPERS, HELPER_TABLE, TYPES, T_UNIT, T_HUB, FN_HUB,
} from './unit-abi.js';

/** JIT settings. */
export interface JitOptions {
  /** Executions of a block before its unit is translated (0: translate on first execution). */
  threshold: number;
  /** Bound on generated code (bytes of wasm), past which the oldest units are evicted. */
  cacheBytes: number;
}

/** A translated unit: one wasm function for some blocks of one page, in one mode. */
interface Unit {
  fn: (st: number, budget: number, entry: number) => number;
  bytes: number;
  page: number;
  /** The next page, when the unit holds an instruction straddling into it (-1 if not): invalidated with either. */
  page2: number;
  mode: number;
  recs: BlockRec[];
  dead: boolean;
  /** Slot in the function table (chained exits tail-call through it). */
  slot: number;
  /** The instance's exports: the exit sites' link globals. */
  exports: WebAssembly.Exports;
  /** Kind of each exit site. */
  sites: number[];
  /** Exit sites of other units linked to this one, as (slot << SITE_BITS) | site (unlinked when it dies). */
  inLinks: Set<number>;
  /** Per exit site: the unit it is linked to now. */
  linkTo: (Unit | null)[];
  /** The block record the unit was translated for (a rebuild starts there again). */
  entryRec: BlockRec;
  /** Per exit site: the page offset of its jalr (-1 for other kinds). */
  siteInsn: number[];
  /** Learned jalr targets the unit was planned with, and targets learned from its jalrs since. */
  builtTargets: number;
  newTargets: number;
}

/** What the dispatcher knows of one block start. */
interface BlockRec {
  /** Host offset of the block's first instruction, and its translation mode. */
  host: number;
  mode: number;
  unit: Unit | null;
  entry: number;
  count: number;
  /** Instructions to interpret while cold (up to and including the block's end). */
  len: number;
  /** Host offset just past the block's last instruction. */
  end: number;
  /** Times a unit translated for this entry was rebuilt to take in learned jalr targets. */
  rebuilds: number;
}

/**
 * The count given to a block start found inside a block that is already
 * translated, at threshold 0: it stays interpreted (for about 2^30 runs).
 * Such starts are where a trap handler returned to (an interrupt or a page
 * fault in the middle of straight-line code): every run of the kernel's
 * unrolled SHA-256 made hundreds of them, each of which became a one-block
 * module, and the thousands of modules evicted each other.
 */
const INSIDE_TRANSLATED_COUNT = -(2 ** 30);

/** Counters for reports and tests. */
export interface JitStats {
  unitsCompiled: number;
  blocksCompiled: number;
  bytesCompiled: number;
  compileMs: number;
  invalidations: number;
  evictions: number;
  liveBytes: number;
  /** Returns from generated code to the dispatcher (unchained exits), interpreter steps, interpreted cold blocks. */
  dispatches: number;
  interpSteps: number;
  coldBlocks: number;
  /** Units translated again to take in jalr targets learned since (see learnJalr). */
  rebuilds: number;
}

/** Totals over every engine in this process (for --stats and the benchmarks): counters only, never read by an engine. */
export const jitTotals: JitStats = {
  unitsCompiled: 0, blocksCompiled: 0, bytesCompiled: 0, compileMs: 0, invalidations: 0, evictions: 0, liveBytes: 0,
  dispatches: 0, interpSteps: 0, coldBlocks: 0, rebuilds: 0,
};

/**
 * Most live units (wasm modules). Each V8 module holds its own code-space
 * mappings; a threshold-0 boot of Debian's kernel compiled enough of them to
 * exhaust the process's mappings ("Commit wasm code space Allocation failed").
 */
const MAX_LIVE_UNITS = 6000;

/** Most same-page targets learned per jalr, and most rebuilds per unit entry (see learnJalr). */
const MAX_JALR_TARGETS = 64, MAX_REBUILDS = 6;
/** The site bits of an exit-site cell. */
const SITE_MASK = (1 << SITE_BITS) - 1;

/**
 * The dispatcher's direct-mapped block cache (a boot touches ~80 K blocks;
 * 8 K entries missed often). Entries are DC_WORDS int32s in one array, so a
 * lookup touches one cache line (cold blocks are most of a boot's
 * dispatches, and separate tag, record and count loads each missed):
 * host offset (-1: empty), mode | len << DC_LEN_SHIFT, count, link
 * ((slot << LINK_ENTRY_BITS) | entry, 0 while the block is not translated).
 * The count is the block record's while the entry holds it.
 */
const DC_BITS = 16, DC_SIZE = 1 << DC_BITS, DC_MASK = DC_SIZE - 1;
const DC_WORDS = 4, DC_HOST = 0, DC_MODE_LEN = 1, DC_COUNT = 2, DC_LINK = 3, DC_LEN_SHIFT = 5, DC_MODE_MASK = 31;
/** The direct-mapped cache index of the block at host offset `host` in `mode`. */
function dcIndex(host: number, mode: number): number {
  return ((host >>> 1) ^ (mode << 11)) & DC_MASK;
}

/** Mode bits: privilege (2), mstatus.FS (2), paging on (1). */
const MODE_FS_SHIFT = 2, MODE_PAGING = 16;

/** The engine for all harts on one guest RAM. */
export class Jit implements ExecEngine {
  readonly ram: GuestMemory;
  readonly opts: JitOptions;
  readonly stats: JitStats = {
    unitsCompiled: 0, blocksCompiled: 0, bytesCompiled: 0, compileMs: 0, invalidations: 0, evictions: 0, liveBytes: 0,
    dispatches: 0, interpSteps: 0, coldBlocks: 0, rebuilds: 0,
  };
  /** When set, receives the listing of every unit compiled (for debugging and golden tests). */
  onListing: ((pc: number, listing: string[]) => void) | null = null;
  /** Block records by mode, then host offset (small-integer keys hash fast). */
  private readonly recs: Map<number, BlockRec>[] = Array.from({ length: 32 }, () => new Map<number, BlockRec>());
  private readonly pageRecs = new Map<number, BlockRec[]>();
  private readonly pageUnits = new Map<number, Unit[]>();
  private readonly fifo: Unit[] = [];
  private fifoHead = 0;
  private readonly dc = new Int32Array(DC_SIZE * DC_WORDS).fill(-1);
  /** The record each block-cache entry holds (read only on a miss, to write its count back). */
  private readonly dcRec: (BlockRec | null)[] = new Array<BlockRec | null>(DC_SIZE).fill(null);
  private readonly harts = new Set<Hart>();
  private cur: Hart | null = null;
  /** The budget passed to the unit the dispatcher called last (for exact instret in CSR reads). */
  private entryLeft = 0;
  private readonly imports: WebAssembly.Imports;
  /** The function table units tail-call through (owned by the hub); slot 0 stays empty (a zero link means "not linked"). */
  private readonly table: WebAssembly.Table;
  /**
   * The hub's entry, through which the dispatcher calls every unit: one
   * JS-to-wasm call site and wrapper for all units (calling each unit's own
   * export went through V8's generic wrapper, ~3% of a boot).
   */
  private readonly hubFn: (st: number, budget: number, entry: number, slot: number) => number;
  private readonly slotUnit: (Unit | null)[] = [null];
  /** Learned jalr targets: by RAM page, the same-page targets seen for each jalr (by its page offset). */
  private readonly learned = new Map<number, Map<number, number[]>>();
  private readonly freeSlots: number[] = [];

  /** The guest memory is a shared WebAssembly.Memory (a host's frame pool): generated modules declare it so. */
  private readonly sharedMemory: boolean;

  constructor(ram: GuestMemory, opts: JitOptions) {
    this.ram = ram;
    this.sharedMemory = typeof SharedArrayBuffer !== 'undefined' && ram.memory.buffer instanceof SharedArrayBuffer;
    this.opts = opts;
    ram.onCodeWrite = (page) => this.invalidatePage(page);
    const helpers: Record<string, WebAssembly.ImportValue> = {
      ldSlow: (lo: number, hi: number, size: number): number => this.cur!.addrR(lo, hi, size),
      stSlow: (lo: number, hi: number, size: number): number => this.cur!.addrW(lo, hi, size),
      stSplit: (lo: number, hi: number, size: number, vlo: number, vhi: number): void => {
        this.cur!.storeSplit(lo, hi, size, vlo, vhi);
      },
      fp: (insn: number): number => this.fpHelper(insn),
      amo: (insn: number): number => this.amo(insn),
      csr: (insn: number, budgetNow: number): number => this.csr(insn, budgetNow),
    };
    // The hub imports the JS helpers once; units call its thunks through the helper table (see hubModuleBytes).
    const viaHub = HELPERS.filter((_, i) => i !== FN_HUB);
    const hub = new WebAssembly.Instance(new WebAssembly.Module(hubModuleBytes(256, TYPES, viaHub, T_UNIT, T_HUB)), { h: helpers });
    this.table = hub.exports['tab'] as WebAssembly.Table;
    this.hubFn = hub.exports['hub'] as Jit['hubFn'];
    const fns = new WebAssembly.Table({ element: 'anyfunc', initial: HELPER_TABLE.min });
    HELPERS.forEach((im, i) => fns.set(i, hub.exports[im.name] as (...a: unknown[]) => unknown));
    this.imports = { m: { mem: ram.memory }, h: { fns } };
  }

  /** The F/D helper of translated code (a field, so tests can wrap it to count calls). */
  fpHelper = (insn: number): number => execFp(this.cur!.st, insn);

  /** Lets `h` run here: its TLBs will lose write permission to code pages. */
  attach(h: Hart): void {
    this.harts.add(h);
    h.engine = this;
  }

  /** Forgets a hart that will not run again. */
  detach(h: Hart): void {
    this.harts.delete(h);
  }

  /** An AMO through the interpreter's unit; a failed one leaves the reservation as it was (it is re-executed). */
  private amo(insn: number): number {
    const h = this.cur!, s = h.st.s, x = h.st.x;
    const v = s[S.RES_VALID]!, lo = s[S.RES_LO]!, hi = s[S.RES_HI]!;
    x[0] = 0; x[1] = 0; // execAmo reads x0 from memory and writes it when rd is x0 (the interpreter re-zeroes it per instruction)
    const r = execAmo(h, insn, (insn >>> 6) & 0x3e, (insn >>> 14) & 0x3e, (insn >>> 19) & 0x3e);
    x[0] = 0; x[1] = 0;
    if (r !== 0) { s[S.RES_VALID] = v; s[S.RES_LO] = lo; s[S.RES_HI] = hi; }
    return r;
  }

  /**
   * A Zicsr instruction for generated code (the interpreter's semantics):
   * 0 done, 1 done and privileged state changed, -1 illegal (nothing changed).
   */
  private csr(insn: number, budgetNow: number): number {
    const h = this.cur!, st = h.st, x = st.x;
    const f3 = (insn >>> 12) & 7, csr = insn >>> 20, rs1 = (insn >>> 15) & 31, rd = (insn >>> 7) & 31, op = f3 & 3;
    x[0] = 0; x[1] = 0;
    const wlo = f3 >= 4 ? rs1 : x[2 * rs1]!, whi = f3 >= 4 ? 0 : x[2 * rs1 + 1]!;
    const retired = this.entryLeft - budgetNow; // instructions since the dispatcher's call, not yet in instret
    st.instret += retired;
    const ok = h.csrRead(csr);
    if (!ok) { st.instret -= retired; return -1; }
    const oldLo = h.csrVal[0]!, oldHi = h.csrVal[1]!;
    if (op === 1 || rs1 !== 0) {
      const nlo = op === 1 ? wlo : op === 2 ? oldLo | wlo : oldLo & ~wlo;
      const nhi = op === 1 ? whi : op === 2 ? oldHi | whi : oldHi & ~whi;
      if (!h.csrWrite(csr, nlo, nhi)) { st.instret -= retired; return -1; }
    }
    st.instret -= retired;
    if (rd !== 0) { x[2 * rd] = oldLo; x[2 * rd + 1] = oldHi; }
    return h.csrChanged ? 1 : 0;
  }

  /** The translation mode of `h` now (part of the cache key). */
  private modeOf(h: Hart): number {
    const c = h.csrs;
    if (c === null) return 0;
    return c.priv | (((c.mstatus & MSTATUS_FS) >>> 13) << MODE_FS_SHIFT) | ((c.satpHi >>> 28) !== 0 ? MODE_PAGING : 0);
  }

  /** Runs up to `budget` instructions (the interpreter's `run` contract). */
  run(h: Hart, budget: number): ExitReason {
    const st = h.st, s = st.s, base = st.base;
    if (base < 0 || h.tlb.base < 0) return interpret(h, budget);
    this.cur = h;
    let left = budget, pending = -1;
    while (left > 0) {
      const pcLo = s[S.PC_LO]!, pcHi = s[S.PC_HI]!;
      const t = h.fetchTlb, i = (pcLo >>> 12) & TLB_MASK;
      let host: number;
      const e = t.e, j = i * TLB_WORDS;
      if (e[j + TLB_W_X] === (pcLo & PAGE_MASK) && e[j + TLB_W_X + 1] === pcHi) host = e[j + TLB_W_HOST]! + (pcLo & 0xfff);
      else {
        const p = h.fetchPage(pcLo, pcHi);
        if (p < 0 || (pcLo & 1) !== 0) { // let the interpreter raise the fetch fault exactly
          const before = st.instret, r = interpret(h, 1);
          left -= st.instret - before;
          if (r !== ExitReason.BUDGET || h.csrChanged) return r;
          continue;
        }
        host = p + (pcLo & 0xfff);
      }
      const mode = this.modeOf(h);
      // A jalr exit (jalr sites are never linked): learn its target; this may rebuild the unit that left.
      if (pending >= 0 && this.learnJalr(pending, host, mode, pcLo, pcHi)) pending = -1;
      const dc = this.dc, di = dcIndex(host, mode), d = di * DC_WORDS;
      if (dc[d + DC_HOST] !== host || (dc[d + DC_MODE_LEN]! & DC_MODE_MASK) !== mode) this.dcFill(host, mode);
      let link = dc[d + DC_LINK]!;
      if (link === 0) {
        const n = dc[d + DC_COUNT]! + 1;
        dc[d + DC_COUNT] = n;
        if (n > this.opts.threshold) {
          const rec = this.dcRec[di]!;
          rec.count = n;
          this.translate(rec, host, mode, pcLo, pcHi);
          link = dc[d + DC_LINK]!;
        }
      }
      if (link !== 0) {
        if (pending >= 0) this.link(pending, link, host);
        // Fill the hart's indirect-branch cache for this pc (jalr exits look it up).
        const e = base + IBTC_OFF + ibtcIndex(pcLo) * IBTC_ENTRY, dv = this.ram.dv;
        dv.setInt32(e + IBTC_PC_LO, pcLo, true); dv.setInt32(e + IBTC_PC_HI, pcHi, true);
        dv.setInt32(e + IBTC_LINK, link, true);
        dv.setInt32(e + IBTC_MODE, mode + 1, true); dv.setInt32(e + IBTC_PAGE, host & PAGE_MASK, true);
      }
      pending = -1;
      if (link !== 0) {
        s[S.JIT_TLB] = h.tlb.base;
        s[S.JIT_FTLB] = h.fetchTlb.base;
        s[S.JIT_FLUSHED] = 0;
        s[S.JIT_SITE] = -1;
        this.entryLeft = left;
        const code = this.hubFn(base, left, link & LINK_ENTRY_MASK, link >>> LINK_ENTRY_BITS);
        const rem = s[S.JIT_BUDGET]!;
        st.instret += left - rem;
        left = rem;
        if (h.csrChanged) return ExitReason.BUDGET; // a CSR write changed privileged state: the vCPU re-evaluates
        if (code === EXIT_DISPATCH) { pending = s[S.JIT_SITE]!; jitTotals.dispatches++; continue; }
        if (code === EXIT_INTERP) jitTotals.interpSteps++;
        if (left <= 0) break;
        const n = code === EXIT_INTERP ? Math.min(left, s[S.JIT_SITE]!) : left;
        const before = st.instret, r = interpret(h, n);
        left -= st.instret - before;
        if (r !== ExitReason.BUDGET || h.csrChanged) return r;
        if (code === EXIT_BUDGET) break;
      } else {
        jitTotals.coldBlocks++;
        const len = dc[d + DC_MODE_LEN]! >>> DC_LEN_SHIFT;
        const before = st.instret, r = interpret(h, left < len ? left : len, pcLo & PAGE_MASK, pcHi, host & PAGE_MASK);
        left -= st.instret - before;
        if (r !== ExitReason.BUDGET || h.csrChanged) return r;
      }
    }
    return ExitReason.BUDGET;
  }

  /** Loads the block cache entry for (host, mode) from its record (made if new), writing back the count of the one it replaces. */
  private dcFill(host: number, mode: number): void {
    const i = dcIndex(host, mode), d = i * DC_WORDS, dc = this.dc;
    const old = this.dcRec[i];
    if (old !== null && old !== undefined) old.count = dc[d + DC_COUNT]!;
    const rec = this.recs[mode]!.get(host) ?? this.newRec(host, mode);
    this.dcRec[i] = rec;
    dc[d + DC_HOST] = host;
    dc[d + DC_MODE_LEN] = mode | (rec.len << DC_LEN_SHIFT);
    dc[d + DC_COUNT] = rec.count;
    dc[d + DC_LINK] = this.recLink(rec);
  }

  /** The link of `rec`'s translation ((slot << LINK_ENTRY_BITS) | entry), or 0. */
  private recLink(rec: BlockRec): number {
    const u = rec.unit;
    return u === null || u.dead ? 0 : (u.slot << LINK_ENTRY_BITS) | rec.entry;
  }

  /** Refreshes the block cache entry of `rec` (if it holds it) after its translation or count changed. */
  private dcUpdate(rec: BlockRec): void {
    const i = dcIndex(rec.host, rec.mode);
    if (this.dcRec[i] !== rec) return;
    const d = i * DC_WORDS;
    this.dc[d + DC_COUNT] = rec.count;
    this.dc[d + DC_LINK] = this.recLink(rec);
  }

  private newRec(host: number, mode: number): BlockRec {
    const b = decodeBlock(this.ram.dv, host & PAGE_MASK, host & 0xfff, this.fpAccess(mode));
    const len = Math.max(1, b.insns.length + (b.term === Term.INTERP ? 1 : 0));
    const rec: BlockRec = { host, mode, unit: null, entry: 0, count: 0, len, end: (host & PAGE_MASK) + b.end, rebuilds: 0 };
    this.recs[mode]!.set(host, rec);
    const page = host >>> 12;
    let list = this.pageRecs.get(page);
    if (list === undefined) { list = []; this.pageRecs.set(page, list); }
    list.push(rec);
    return rec;
  }

  /**
   * Links exit site `cell` ((slot << SITE_BITS) | site) of the unit that just left
   * to the translated block `link` ((slot << LINK_ENTRY_BITS) | entry) reached from it,
   * at host offset `host`: the next time, that exit tail-calls its unit directly
   * (block chaining across units).
   */
  private link(cell: number, link: number, host: number): void {
    const src = this.slotUnit[cell >>> SITE_BITS], site = cell & ((1 << SITE_BITS) - 1);
    const unit = this.slotUnit[link >>> LINK_ENTRY_BITS];
    if (unit === null || unit === undefined) return;
    if (src === null || src === undefined || src.dead || src.mode !== unit.mode) return;
    const kind = src.sites[site];
    if (kind === undefined || kind === SITE_JALR) return; // jalr exits use the IBTC
    const g = src.exports;
    (g[`l${site}`] as WebAssembly.Global).value = link;
    if (kind === SITE_CROSS) (g[`p${site}`] as WebAssembly.Global).value = host & PAGE_MASK;
    src.linkTo[site] = unit;
    unit.inLinks.add(cell);
  }

  /**
   * After unit `cell >>> SITE_BITS` left through exit site `cell` to host
   * offset `host` in `mode`: if that was a jalr, returns true, and when the
   * target lies in the unit's own page, remembers it for that jalr. When the
   * unit's jalrs have learned as many new targets as it was planned with
   * (at least one), the unit is translated again from its entry with them,
   * so those jumps stay inside it (a bytecode interpreter's switch, a
   * function's returns); at most MAX_REBUILDS times per entry, so the
   * rebuilds stay logarithmic and bounded.
   */
  private learnJalr(cell: number, host: number, mode: number, pcLo: number, pcHi: number): boolean {
    const src = this.slotUnit[cell >>> SITE_BITS], site = cell & SITE_MASK;
    if (src === null || src === undefined || src.dead || src.sites[site] !== SITE_JALR) return false;
    if (host >>> 12 !== src.page || mode !== src.mode) return true;
    const at = src.siteInsn[site]!, off = host & 0xfff;
    let page = this.learned.get(src.page);
    if (page === undefined) { page = new Map(); this.learned.set(src.page, page); }
    let seen = page.get(at);
    if (seen === undefined) { seen = []; page.set(at, seen); }
    if (seen.includes(off) || seen.length >= MAX_JALR_TARGETS) return true;
    seen.push(off);
    const rec = src.entryRec;
    if (++src.newTargets >= Math.max(1, src.builtTargets) && rec.rebuilds < MAX_REBUILDS) {
      rec.rebuilds++;
      this.stats.rebuilds++; jitTotals.rebuilds++;
      this.kill(src);
      this.translate(rec, rec.host, rec.mode, pcLo, pcHi, true);
    }
    return true;
  }

  /** Which F/D instructions are translated in `mode` (see FpAccess): all when FS is Dirty or there are no privileged CSRs. */
  private fpAccess(mode: number): FpAccess {
    if (this.cur === null || this.cur.csrs === null) return FpAccess.ALL;
    const fs = (mode >>> MODE_FS_SHIFT) & 3; // mstatus.FS: 0 Off, 1 Initial, 2 Clean, 3 Dirty (privileged spec §3.1.6.6)
    return fs === 3 ? FpAccess.ALL : fs === 0 ? FpAccess.NONE : FpAccess.STORES;
  }

  /**
   * The host page the fetch TLB maps the virtual page after pc's to, or -1
   * (no walk: after the interpreter has run a straddling instruction, its
   * second page is in the fetch TLB).
   */
  private nextPageHost(pcLo: number, pcHi: number): number {
    const lo = ((pcLo & PAGE_MASK) + 4096) | 0, hi = lo === 0 ? (pcHi + 1) | 0 : pcHi;
    return this.cur!.fetchTlb.fetchHost(lo, hi);
  }

  /** Marks RAM page `page` as holding translated code `u` (its stores take the slow path, which invalidates). */
  private addCodePage(page: number, u: Unit): void {
    let units = this.pageUnits.get(page);
    if (units === undefined) { units = []; this.pageUnits.set(page, units); }
    units.push(u);
    if (this.ram.codePages[page] === 0) {
      this.ram.codePages[page] = 1;
      for (const h of this.harts) for (const tl of h.tlbs) tl.dropWrite(page * 4096);
    }
  }

  /**
   * Translates the unit around `rec` (reached at pc pcHi:pcLo) and installs
   * it; at threshold 0, returns null instead when pc lies inside a block a
   * live unit already translates (see INSIDE_TRANSLATED_COUNT).
   */
  private translate(rec: BlockRec, host: number, mode: number, pcLo: number, pcHi: number, rebuild = false): Unit | null {
    const pageOff = host & PAGE_MASK, page = host >>> 12;
    if (this.opts.threshold === 0 && !rebuild) {
      for (const r of this.pageRecs.get(page) ?? []) {
        if (r.mode === mode && r.host < host && host < r.end && r.unit !== null && !r.unit.dead) {
          rec.count = INSIDE_TRANSLATED_COUNT;
          this.dcUpdate(rec);
          return null;
        }
      }
    }
    const t0 = globalThis.performance.now();
    // At threshold 0, blocks other units already hold are not translated again, and return points
    // after calls join the caller's unit (fewer, larger modules). Otherwise a unit takes every block
    // reachable from its entry, even those other units hold: bigger units keep hot paths inside one
    // function (the bytecode interpreter bench: 4.6 s with sharing, 3.2 s without).
    const t0mode = this.opts.threshold === 0, translated = new Set<number>();
    if (t0mode) for (const r of this.pageRecs.get(page) ?? []) {
      if (r.unit !== null && !r.unit.dead && r.mode === mode) translated.add(r.host - pageOff);
    }
    const next = this.nextPageHost(pcLo, pcHi);
    const fp = this.fpAccess(mode);
    const blocks = planUnit(this.ram.dv, pageOff, host & 0xfff, fp, t0mode, translated, next, this.learned.get(page));
    const page2 = blocks.some(straddles) ? next >>> 12 : -1;
    const code = generateUnit(blocks, this.onListing !== null, mode, fp === FpAccess.ALL, next, this.sharedMemory);
    const module = new WebAssembly.Module(code.bytes);
    const inst = new WebAssembly.Instance(module, this.imports);
    const slot = this.freeSlots.pop() ?? this.slotUnit.length;
    if (slot >= this.table.length) this.table.grow(this.table.length);
    const fn = inst.exports['f'] as Unit['fn'];
    const unit: Unit = {
      fn, bytes: code.bytes.length, page, page2, mode, recs: [], dead: false, slot, exports: inst.exports, sites: code.sites,
      inLinks: new Set(), linkTo: [], entryRec: rec, siteInsn: code.siteInsn, newTargets: 0,
      builtTargets: blocks.reduce((n, b) => n + (b.jalrTargets?.length ?? 0), 0),
    };
    this.slotUnit[slot] = unit;
    this.table.set(slot, fn);
    (inst.exports['u'] as WebAssembly.Global).value = slot;
    blocks.forEach((b, i) => {
      const bh = pageOff + b.start;
      const r = bh === rec.host ? rec : this.recs[mode]!.get(bh) ?? this.newRec(bh, mode);
      if (r.unit === null) { r.unit = unit; r.entry = i; unit.recs.push(r); this.dcUpdate(r); }
    });
    this.addCodePage(page, unit);
    if (page2 >= 0 && page2 !== page) this.addCodePage(page2, unit);
    this.fifo.push(unit);
    const st = this.stats;
    st.unitsCompiled++; st.blocksCompiled += blocks.length; st.bytesCompiled += unit.bytes; st.liveBytes += unit.bytes;
    jitTotals.unitsCompiled++; jitTotals.blocksCompiled += blocks.length; jitTotals.bytesCompiled += unit.bytes;
    if (code.listing !== null) this.onListing!(host, code.listing);
    // Evict the oldest units past the bound, never the one just made (it is about to run).
    while ((st.liveBytes > this.opts.cacheBytes || this.fifo.length - this.fifoHead > MAX_LIVE_UNITS) &&
      this.fifoHead < this.fifo.length - 1) this.evict(this.fifo[this.fifoHead++]!);
    if (this.fifoHead > 1024 && this.fifoHead * 2 > this.fifo.length) { this.fifo.splice(0, this.fifoHead); this.fifoHead = 0; }
    const ms = globalThis.performance.now() - t0;
    st.compileMs += ms;
    jitTotals.compileMs += ms;
    return unit;
  }

  /** Drops a unit: its blocks go back to being interpreted (and may heat up again). */
  private kill(u: Unit): void {
    if (u.dead) return;
    u.dead = true;
    this.stats.liveBytes -= u.bytes;
    for (const cell of u.inLinks) {
      const src = this.slotUnit[cell >>> SITE_BITS], site = cell & ((1 << SITE_BITS) - 1);
      if (src !== null && src !== undefined && !src.dead && src.linkTo[site] === u) {
        (src.exports[`l${site}`] as WebAssembly.Global).value = 0;
        src.linkTo[site] = null;
      }
    }
    u.inLinks.clear();
    // Drop the IBTC entries that point at it.
    const dv = this.ram.dv;
    for (const h of this.harts) {
      if (h.st.base < 0) continue;
      for (let i = 0; i < IBTC_ENTRIES; i++) {
        const e = h.st.base + IBTC_OFF + i * IBTC_ENTRY;
        if ((dv.getInt32(e + IBTC_LINK, true) >>> LINK_ENTRY_BITS) === u.slot) dv.setInt32(e + IBTC_MODE, 0, true);
      }
    }
    this.table.set(u.slot, null);
    this.slotUnit[u.slot] = null;
    this.freeSlots.push(u.slot);
    for (const r of u.recs) if (r.unit === u) { r.unit = null; r.count = 0; this.dcUpdate(r); }
    this.dropCodePage(u.page, u);
    if (u.page2 >= 0 && u.page2 !== u.page) this.dropCodePage(u.page2, u);
  }

  /** Forgets that RAM page `page` holds unit `u` (the page stops being a code page with its last unit). */
  private dropCodePage(page: number, u: Unit): void {
    const units = this.pageUnits.get(page);
    if (units === undefined) return;
    const i = units.indexOf(u);
    if (i >= 0) units.splice(i, 1);
    if (units.length === 0) { this.pageUnits.delete(page); this.ram.codePages[page] = 0; }
  }

  private evict(u: Unit): void {
    if (u.dead) return;
    this.stats.evictions++;
    jitTotals.evictions++;
    this.kill(u);
  }

  /** Guest code in RAM page `page` changed: drop its units and what the dispatcher knew of its blocks. */
  invalidatePage(page: number): void {
    const units = this.pageUnits.get(page);
    if (units === undefined && this.ram.codePages[page] === 0 && !this.pageRecs.has(page) && !this.learned.has(page)) return;
    this.stats.invalidations++;
    jitTotals.invalidations++;
    if (units !== undefined) for (const u of [...units]) this.kill(u);
    this.ram.codePages[page] = 0;
    this.learned.delete(page);
    const list = this.pageRecs.get(page);
    if (list !== undefined) {
      for (const r of list) {
        const di = dcIndex(r.host, r.mode);
        this.recs[r.mode]!.delete(r.host);
        if (this.dcRec[di] === r) { this.dc[di * DC_WORDS + DC_HOST] = -1; this.dcRec[di] = null; }
      }
      this.pageRecs.delete(page);
    }
  }

  /** Drops every translation (e.g. for tests). */
  flush(): void {
    for (const page of [...this.pageUnits.keys()]) this.invalidatePage(page);
  }
}

/**
 * Default thresholds, measured (docs/jit.md): a booting kernel runs most of
 * its code a few hundred or thousand times, where compiling costs more than
 * it saves (Debian's kernel to the first prompt: 47 s at 32, 18 s at 500,
 * 12 s at 3,000 and at 10,000, 21 s at 100,000, against 36 s interpreted,
 * on a loaded 2-core machine). User programs too: the compute benches ran as
 * fast or faster at 500 and 1,000 as at 32 (crc 2.09 s at 32, 1.60 s at 500,
 * 1.57 s at 1,000), and `busybox true` spent 115 ms compiling at 32 and
 * 30 ms at 1,000.
 */
export const PROCESS_VM_THRESHOLD = 1000, SYSTEM_VM_THRESHOLD = 3000;

/**
 * The JIT engines of one VM: one per guest RAM (the harts on a RAM share
 * its engine), made on first use with the VM's own JitConfig. A board holds
 * one; a process VM one for all its tasks (forked children get RAM, and so
 * an engine, of their own).
 */
export class JitEngines {
  /** The VM's settings (its own copy). */
  readonly config: JitConfig;
  /** The VM kind's threshold, used when the config names none. */
  readonly defaultThreshold: number;
  private readonly byRam = new WeakMap<GuestMemory, Jit>();

  constructor(config: JitConfig, defaultThreshold = PROCESS_VM_THRESHOLD) {
    this.config = Object.freeze({ ...config });
    this.defaultThreshold = defaultThreshold;
  }

  /** The engine shared by the harts on `ram` (created on first use), or null when the JIT is off. */
  for(ram: GuestMemory): Jit | null {
    if (!this.config.enabled) return null;
    let j = this.byRam.get(ram);
    if (j === undefined) {
      j = new Jit(ram, { threshold: this.config.threshold ?? this.defaultThreshold, cacheBytes: this.config.cacheBytes });
      this.byRam.set(ram, j);
    }
    return j;
  }

  /** Attaches the engine (if the JIT is on) to `h`. */
  attach(h: Hart): void { this.for(h.ram)?.attach(h); }

  /** The counters of the engine on `ram`, or null when none was made. */
  statsFor(ram: GuestMemory): JitStats | null { return this.byRam.get(ram)?.stats ?? null; }

  /** Detaches `h` from its engine (the hart will not run again). */
  detach(h: Hart): void { this.byRam.get(h.ram)?.detach(h); }
}
