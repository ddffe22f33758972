/**
 * The per-VM physical-to-machine table (Xen's p2m, ESX's pmap: Waldspurger,
 * OSDI 2002, §2): one Int32 entry per guest-physical page, saying which
 * frame of the shared pool (src/memory/frame-pool.ts) holds the page, or
 * why none does. Changing an entry behind the guest's back is the single
 * mechanism behind page sharing, ballooning and host swapping.
 *
 * Entry encoding (`table[gpn]`):
 * - `f` (>= 0, P2M_SHARED clear): a private frame; the guest may read and
 *   write it (reference count 1).
 * - `f | P2M_SHARED`: a read-only frame merged by the sharing scanner; a
 *   write copies it first (copy-on-write), or takes it over when this is
 *   its last mapping. `ZERO_FRAME | P2M_SHARED` is a page the guest wrote
 *   and the scanner then found all-zero (`pages_zero`).
 * - P2M_UNBACKED: never written (or deflated); reads as zero, the first
 *   write allocates a frame.
 * - P2M_BALLOONED: given to the balloon; reads as zero, holds no frame.
 * - `P2M_SWAPPED_BASE - slot`: swapped out to host swap slot `slot`.
 *
 * A TLB fill reads the entry: a private frame is mapped read-write; for
 * anything else it calls `frameForRead` and maps the result read-only, and
 * a write miss calls `frameForWrite`. Whenever an entry stops pointing at
 * the frame a read may have cached, `onRemap(gpn, oldFrame)` is called so
 * that every hart can drop its TLB entries and translated code for it.
 *
 * Faults are return values (negative codes) with the reason in
 * `lastError`, never exceptions: a VM whose page cannot be made resident
 * is stopped by its caller, and other VMs are not affected.
 */

import { FramePool, ZERO_FRAME, MAX_POOL_FRAMES } from './frame-pool.js';

/** Entry: never written; reads as zero, the first write allocates. */
export const P2M_UNBACKED = -1;
/** Entry: given to the balloon; reads as zero, holds no frame. */
export const P2M_BALLOONED = -2;
/** Entry for swap slot s: P2M_SWAPPED_BASE - s (every entry at or below this is swapped). */
export const P2M_SWAPPED_BASE = -16;
/** Flag on a frame entry: the frame is shared and mapped read-only (copy-on-write). */
export const P2M_SHARED = 0x40000000;
/** Mask of the frame number in a frame entry (frames < MAX_POOL_FRAMES = 2^20). */
export const P2M_FRAME_MASK = MAX_POOL_FRAMES - 1;
/** The entry of a page merged into the canonical zero frame. */
export const P2M_ZERO_SHARED = ZERO_FRAME | P2M_SHARED;
/**
 * Most guest-physical pages one table may describe: 2^24 pages, 64 GiB of
 * guest RAM (overcommitted onto a pool of at most 4 GiB). The table is
 * allocated up front; the cap stops a VM configuration (coming from an API
 * client) from making the host allocate an arbitrarily large table.
 */
export const MAX_P2M_PAGES = 1 << 24;
/** Largest swap slot an entry can encode. */
export const P2M_MAX_SLOT = P2M_SWAPPED_BASE + 0x7fffffff;

/** frameForRead / frameForWrite: no frame could be allocated (the pool is empty and swapping freed none). */
export const P2M_ERR_NOMEM = -1;
/** frameForRead / frameForWrite: the page is swapped out and reading it back failed. */
export const P2M_ERR_SWAP_IN = -2;
/** Any gpn argument: outside the table. */
export const P2M_ERR_RANGE = -3;

/** Why a page could not be made resident. */
export type P2mErrorKind = 'no-memory' | 'swap-full' | 'swap-write' | 'swap-read' | 'range';

/** The reason for the last failed frameForRead / frameForWrite of a table. */
export interface P2mError {
  /** What failed. */
  kind: P2mErrorKind;
  /** The guest page that could not be made resident. */
  gpn: number;
  /** One line for the VM's log, naming the VM and the page. */
  message: string;
}

/** What a reclaimer reports when it cannot free a frame. */
export interface ReclaimFailure {
  /** What failed. */
  kind: P2mErrorKind;
  /** One line saying why. */
  message: string;
}

/** Told that guest page `gpn` no longer maps `oldFrame` (drop TLB entries and translated code for it). */
export type RemapHook = (gpn: number, oldFrame: number) => void;

/** Frees frames for a table whose allocation failed, and holds swapped pages (src/memory/host-swap.ts). */
export interface FrameReclaimer {
  /** Frees at least one pool frame without touching (requester, exceptGpn); null on success. */
  reclaim(requester: P2m, exceptGpn: number): ReclaimFailure | null;
  /** Reads swap slot `slot` into frame `frame` and releases the slot; an error message or null. */
  swapIn(requester: P2m, slot: number, frame: number): string | null;
  /** Releases swap slot `slot` whose page was dropped (ballooned, VM torn down). */
  releaseSlot(slot: number): void;
}

/** Per-VM counters, with the names the host API reports. A page never touched counts in none of them. */
export interface P2mStats {
  /** Guest-physical pages described by the table. */
  ram_pages: number;
  /** Pages holding a frame of their own. */
  pages_private: number;
  /** Pages mapping a non-zero frame shared by the scanner (read-only, copy-on-write). */
  pages_shared: number;
  /** Pages the guest wrote that the scanner then merged into the canonical zero frame. */
  pages_zero: number;
  /** Pages given to the balloon. */
  pages_ballooned: number;
  /** Pages swapped out to host swap. */
  pages_swapped: number;
}

/** One VM's guest-physical to machine-frame table. */
export class P2m {
  /** The pool all frames come from. */
  readonly pool: FramePool;
  /** The entries (see the file comment for the encoding). */
  readonly table: Int32Array;
  /** The VM's name, for messages. */
  readonly name: string;
  /** Called when an entry stops mapping a frame a read may have cached. */
  onRemap: RemapHook | null = null;
  /** Host swap, when attached (src/memory/host-swap.ts registers itself). */
  reclaimer: FrameReclaimer | null = null;
  /** Why the last frameForRead / frameForWrite failed. */
  lastError: P2mError | null = null;
  private nPrivate = 0;
  private nShared = 0;
  private nZero = 0;
  private nBallooned = 0;
  private nSwapped = 0;

  /** A table of `ramPages` unbacked pages over `pool`; throws RangeError on a bad size (a host configuration error). */
  constructor(pool: FramePool, ramPages: number, name = 'vm') {
    if (!Number.isInteger(ramPages) || ramPages < 1 || ramPages > MAX_P2M_PAGES) {
      throw new RangeError(`${name}: ${ramPages} RAM pages: must be 1..${MAX_P2M_PAGES}`);
    }
    this.pool = pool;
    this.name = name;
    this.table = new Int32Array(ramPages).fill(P2M_UNBACKED);
  }

  /** Guest-physical pages described. */
  get ramPages(): number { return this.table.length; }

  /** The counters, as the host API reports them. */
  stats(): P2mStats {
    return {
      ram_pages: this.table.length, pages_private: this.nPrivate, pages_shared: this.nShared,
      pages_zero: this.nZero, pages_ballooned: this.nBallooned, pages_swapped: this.nSwapped,
    };
  }

  /** The raw entry of `gpn` (P2M_UNBACKED outside the table). */
  entry(gpn: number): number {
    return gpn >= 0 && gpn < this.table.length ? this.table[gpn]! : P2M_UNBACKED;
  }

  /** Whether a write to `gpn` may go straight to its frame (a private frame; the TLB may cache it writable). */
  isWritable(gpn: number): boolean {
    const e = this.entry(gpn);
    return e >= 0 && (e & P2M_SHARED) === 0;
  }

  /**
   * The frame a read of `gpn` sees: its own or shared frame; the zero frame
   * for unbacked and ballooned pages; a swapped page is read back first.
   * Negative on failure (P2M_ERR_*, reason in `lastError`).
   */
  frameForRead(gpn: number): number {
    if (!(gpn >= 0 && gpn < this.table.length)) return this.rangeError(gpn);
    const e = this.table[gpn]!;
    if (e >= 0) return e & P2M_FRAME_MASK;
    if (e > P2M_SWAPPED_BASE) return ZERO_FRAME; // unbacked or ballooned
    return this.swapInPage(gpn, e);
  }

  /**
   * The frame a write to `gpn` goes to, made private first: allocated for
   * an unbacked (or ballooned) page, copied for a shared frame, taken over
   * when this is the shared frame's last mapping, read back for a swapped
   * page. Negative on failure (P2M_ERR_*, reason in `lastError`).
   */
  frameForWrite(gpn: number): number {
    if (!(gpn >= 0 && gpn < this.table.length)) return this.rangeError(gpn);
    const t = this.table;
    // At most two rounds: a reclaim that evicts the other mappings of a shared frame turns a copy into a takeover.
    for (let round = 0; round < 2; round++) {
      const e = t[gpn]!;
      if (e >= 0) {
        if ((e & P2M_SHARED) === 0) return e;
        const f = e & P2M_FRAME_MASK;
        if (f === ZERO_FRAME) {
          const nf = this.allocFrame(gpn, true);
          if (nf < 0) return nf;
          t[gpn] = nf; this.nZero--; this.nPrivate++;
          this.remap(gpn, ZERO_FRAME);
          return nf;
        }
        if (this.pool.refcount(f) === 1) return this.takeOver(gpn, f);
        const nf = this.allocFrame(gpn, false);
        if (nf < 0) return nf;
        if (this.pool.refcount(f) === 1) { this.pool.unref(nf); continue; } // the reclaim evicted the other sharers
        this.pool.copy(nf, f);
        this.pool.unref(f);
        t[gpn] = nf; this.nShared--; this.nPrivate++;
        this.remap(gpn, f);
        return nf;
      }
      if (e > P2M_SWAPPED_BASE) { // unbacked, or ballooned (the guest reused a page it gave away: deflate it)
        const nf = this.allocFrame(gpn, true);
        if (nf < 0) return nf;
        if (e === P2M_BALLOONED) this.nBallooned--;
        t[gpn] = nf; this.nPrivate++;
        this.remap(gpn, ZERO_FRAME); // a read may have cached the zero frame
        return nf;
      }
      return this.swapInPage(gpn, e);
    }
    return this.fail('no-memory', gpn, 'copy-on-write did not settle', P2M_ERR_NOMEM); // unreachable: round 2 takes the frame over
  }

  /**
   * Gives `gpn` to the balloon: its frame goes back to the pool at once
   * (or loses one of its mappings, if shared), a swap slot is released.
   * False when it already was ballooned or is out of range.
   */
  balloon(gpn: number): boolean {
    if (!(gpn >= 0 && gpn < this.table.length)) return false;
    const e = this.table[gpn]!;
    if (e === P2M_BALLOONED) return false;
    if (e >= 0) {
      const f = e & P2M_FRAME_MASK;
      if (f === ZERO_FRAME) this.nZero--;
      else if ((e & P2M_SHARED) !== 0) this.nShared--;
      else this.nPrivate--;
      this.table[gpn] = P2M_BALLOONED;
      this.nBallooned++;
      if (f !== ZERO_FRAME) { this.pool.unref(f); this.remap(gpn, f); }
      return true;
    }
    if (e <= P2M_SWAPPED_BASE) {
      this.reclaimer?.releaseSlot(P2M_SWAPPED_BASE - e);
      this.nSwapped--;
    }
    this.table[gpn] = P2M_BALLOONED;
    this.nBallooned++;
    return true;
  }

  /** Takes `gpn` back from the balloon: unbacked again (reads zero, the next write allocates). False unless it was ballooned. */
  deflate(gpn: number): boolean {
    if (this.entry(gpn) !== P2M_BALLOONED) return false;
    this.table[gpn] = P2M_UNBACKED;
    this.nBallooned--;
    return true;
  }

  // ---- Used by the sharing scanner (src/memory/page-sharing.ts) ----

  /** Makes the private frame of `gpn` a read-only shared frame (the first page of a merge). False if not private. */
  markShared(gpn: number): boolean {
    const e = this.entry(gpn);
    if (e <= 0 || (e & P2M_SHARED) !== 0) return false;
    this.table[gpn] = e | P2M_SHARED;
    this.pool.markShared(e);
    this.nPrivate--; this.nShared++;
    this.remap(gpn, e); // drop cached write permission
    return true;
  }

  /**
   * Maps the private page `gpn` onto shared frame `target` (the caller has
   * compared the contents) and frees its own frame. False (no change) if
   * `gpn` is not private, `target` not shared, or `target` is at MAX_PAGE_SHARING.
   */
  mergeInto(gpn: number, target: number): boolean {
    const e = this.entry(gpn);
    if (e <= 0 || (e & P2M_SHARED) !== 0 || e === target || !this.pool.isShared(target)) return false;
    if (!this.pool.ref(target)) return false;
    this.table[gpn] = target | P2M_SHARED;
    this.pool.unref(e);
    this.nPrivate--; this.nShared++;
    this.remap(gpn, e);
    return true;
  }

  /** Maps the private page `gpn` (found all-zero by the caller) onto the zero frame and frees its frame. */
  mergeZero(gpn: number): boolean {
    const e = this.entry(gpn);
    if (e <= 0 || (e & P2M_SHARED) !== 0) return false;
    this.table[gpn] = P2M_ZERO_SHARED;
    this.pool.unref(e);
    this.nPrivate--; this.nZero++;
    this.remap(gpn, e);
    return true;
  }

  /** A shared page whose frame has no other mapping left becomes private again (no remap: same frame, more permission). */
  unshareLonely(gpn: number): boolean {
    const e = this.entry(gpn);
    if (e < 0 || (e & P2M_SHARED) === 0) return false;
    const f = e & P2M_FRAME_MASK;
    if (f === ZERO_FRAME || this.pool.refcount(f) !== 1) return false;
    this.takeOver(gpn, f);
    return true;
  }

  // ---- Used by host swap (src/memory/host-swap.ts) ----

  /**
   * Tags resident page `gpn` as swapped to `slot` (the caller has already
   * written the frame there) and drops its mapping of the frame. Returns
   * the old frame, or -1 (no change) for a page without a non-zero frame.
   */
  swapOut(gpn: number, slot: number): number {
    const e = this.entry(gpn);
    if (e < 0 || (e & P2M_FRAME_MASK) === ZERO_FRAME || !(slot >= 0 && slot <= P2M_MAX_SLOT)) return -1;
    const f = e & P2M_FRAME_MASK;
    if ((e & P2M_SHARED) !== 0) this.nShared--; else this.nPrivate--;
    this.table[gpn] = P2M_SWAPPED_BASE - slot;
    this.nSwapped++;
    this.pool.unref(f);
    this.remap(gpn, f);
    return f;
  }

  /** Drops every page (VM teardown): frames back to the pool, swap slots released; no remap calls. */
  releaseAll(): void {
    const t = this.table;
    for (let g = 0; g < t.length; g++) {
      const e = t[g]!;
      if (e >= 0) this.pool.unref(e & P2M_FRAME_MASK);
      else if (e <= P2M_SWAPPED_BASE) this.reclaimer?.releaseSlot(P2M_SWAPPED_BASE - e);
    }
    t.fill(P2M_UNBACKED);
    this.nPrivate = 0; this.nShared = 0; this.nZero = 0; this.nBallooned = 0; this.nSwapped = 0;
  }

  // ---- Internals ----

  private takeOver(gpn: number, f: number): number {
    this.pool.unmarkShared(f);
    this.table[gpn] = f;
    this.nShared--; this.nPrivate++;
    return f;
  }

  private swapInPage(gpn: number, e: number): number {
    const r = this.reclaimer;
    const slot = P2M_SWAPPED_BASE - e;
    if (r === null) return this.fail('swap-read', gpn, `swapped to slot ${slot} but no host swap is attached`, P2M_ERR_SWAP_IN);
    const f = this.allocFrame(gpn, false);
    if (f < 0) return f;
    const err = r.swapIn(this, slot, f);
    if (err !== null) {
      this.pool.unref(f);
      return this.fail('swap-read', gpn, `swap-in from slot ${slot} failed: ${err}`, P2M_ERR_SWAP_IN);
    }
    this.table[gpn] = f;
    this.nSwapped--; this.nPrivate++;
    return f;
  }

  /** A frame for `gpn`, reclaiming (swapping out some other page) when the pool is empty; P2M_ERR_NOMEM on failure. */
  private allocFrame(gpn: number, zeroed: boolean): number {
    const pool = this.pool;
    let f = zeroed ? pool.allocZeroed() : pool.alloc();
    if (f >= 0) return f;
    const r = this.reclaimer;
    if (r === null) return this.fail('no-memory', gpn, `the frame pool is exhausted (${pool.framesTotal} frames) and no host swap is attached`, P2M_ERR_NOMEM);
    const why = r.reclaim(this, gpn);
    if (why !== null) return this.fail(why.kind, gpn, why.message, P2M_ERR_NOMEM);
    f = zeroed ? pool.allocZeroed() : pool.alloc();
    if (f < 0) return this.fail('no-memory', gpn, 'the frame pool is exhausted after a reclaim', P2M_ERR_NOMEM);
    return f;
  }

  private rangeError(gpn: number): number {
    return this.fail('range', gpn, `guest page ${gpn} is outside RAM (${this.table.length} pages)`, P2M_ERR_RANGE);
  }

  private fail(kind: P2mErrorKind, gpn: number, why: string, code: number): number {
    const page = Number.isInteger(gpn) && gpn >= 0 ? `0x${gpn.toString(16)}` : String(gpn);
    this.lastError = { kind, gpn, message: `${this.name}: guest page ${page}: ${why}` };
    return code;
  }

  private remap(gpn: number, oldFrame: number): void {
    const h = this.onRemap;
    if (h !== null) h(gpn, oldFrame);
  }
}
