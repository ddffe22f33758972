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
 *
 * Threads (docs/memory.md, "Threads"): the table, the counters and the
 * accessed bitmap live in SharedArrayBuffers (when the pool's metadata
 * does); `handle()` / `P2m.attach(pool, handle)` give another thread a
 * view. The ownership rule: the VM's own thread changes its table on its
 * fault path (first write, copy-on-write, swap-in, swapping out its own
 * pages when the pool is empty, the balloon); any other thread (the host:
 * the sharing scanner, cross-VM eviction) changes it only while the VM is
 * stopped at a safe point (src/memory/safe-point.ts), and reports each
 * remap through the VM's RemapLog instead of the VM's own TLB hook. So
 * every entry has one writer at a time and the table needs no lock; the
 * frames' reference counts, shared by all VMs, change under the pool lock.
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

// The counter words (Int32Array `counters`).
const C_PRIVATE = 0, C_SHARED = 1, C_ZERO = 2, C_BALLOONED = 3, C_SWAPPED = 4, C_PAGES_OUT = 5, C_PAGES_IN = 6;
const COUNTER_WORDS = 8;
/**
 * Allocation attempts of one fault. Another VM's thread may take the frame
 * a reclaim freed before this thread does; four rounds make that a rare
 * failure without letting one fault loop without end.
 */
const ALLOC_ROUNDS = 4;

/** Everything another thread needs to view the same table; structured-cloneable. */
export interface P2mHandle {
  /** The VM's name. */
  name: string;
  /** Int32 entries. */
  table: SharedArrayBuffer;
  /** Int32 counters. */
  counters: SharedArrayBuffer;
  /** Uint8 accessed flag per page. */
  touched: SharedArrayBuffer;
}

/** One VM's swap traffic, counted where its pages move. */
export interface P2mSwapCounts {
  /** Pages written to swap since start. */
  pages_out: number;
  /** Pages read back since start. */
  pages_in: number;
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
  /** Why the last frameForRead / frameForWrite failed (per thread: each view has its own). */
  lastError: P2mError | null = null;
  /**
   * Per page: 1 once a TLB fill mapped it since an activity sampler last
   * cleared it (ESX §5.3's statistical sampling of active memory). Plain
   * byte stores: one writer per byte at a time is not needed, a lost
   * update only blurs an estimate.
   */
  readonly touched: Uint8Array;
  /** The counters (C_*): written by whichever thread may change the table (the ownership rule), read by any. */
  private readonly c: Int32Array;

  /**
   * A table of `ramPages` unbacked pages over `pool`; throws RangeError on
   * a bad size (a host configuration error). The fourth argument is
   * `attach`'s: a view of an existing table.
   */
  constructor(pool: FramePool, ramPages: number, name = 'vm', from?: P2mHandle) {
    this.pool = pool;
    this.name = name;
    if (from !== undefined) {
      this.table = new Int32Array(from.table);
      this.c = new Int32Array(from.counters);
      this.touched = new Uint8Array(from.touched);
      return;
    }
    if (!Number.isInteger(ramPages) || ramPages < 1 || ramPages > MAX_P2M_PAGES) {
      throw new RangeError(`${name}: ${ramPages} RAM pages: must be 1..${MAX_P2M_PAGES}`);
    }
    const mk = (bytes: number): ArrayBufferLike => pool.threadShared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    this.table = new Int32Array(mk(ramPages * 4)).fill(P2M_UNBACKED);
    this.c = new Int32Array(mk(COUNTER_WORDS * 4));
    this.touched = new Uint8Array(mk(ramPages));
  }

  /** A view, in this thread, of a table another thread made (`p2m.handle()`), over this thread's view of the same pool. */
  static attach(pool: FramePool, handle: P2mHandle): P2m {
    return new P2m(pool, handle.table.byteLength / 4, handle.name, handle);
  }

  /** The structured-cloneable handle another thread passes to `P2m.attach`; throws for a table over an unshared pool. */
  handle(): P2mHandle {
    if (!this.pool.threadShared) throw new Error(`${this.name}: a table over a pool made with shared: false cannot be passed to another thread`);
    return {
      name: this.name, table: this.table.buffer as SharedArrayBuffer, counters: this.c.buffer as SharedArrayBuffer,
      touched: this.touched.buffer as SharedArrayBuffer,
    };
  }

  /** Guest-physical pages described. */
  get ramPages(): number { return this.table.length; }

  /** The counters, as the host API reports them. */
  stats(): P2mStats {
    const c = this.c;
    return {
      ram_pages: this.table.length, pages_private: c[C_PRIVATE]!, pages_shared: c[C_SHARED]!,
      pages_zero: c[C_ZERO]!, pages_ballooned: c[C_BALLOONED]!, pages_swapped: c[C_SWAPPED]!,
    };
  }

  /** This VM's swap traffic (pages written to swap by `swapOut`, read back by a fault). */
  swapCounts(): P2mSwapCounts {
    return { pages_out: this.c[C_PAGES_OUT]!, pages_in: this.c[C_PAGES_IN]! };
  }

  /** Marks `gpn` accessed (the TLB-fill path; out-of-range pages are ignored). */
  touch(gpn: number): void { this.touched[gpn] = 1; }

  /** Clears `gpn`'s accessed mark (the activity sampler). */
  clearTouched(gpn: number): void { this.touched[gpn] = 0; }

  /** Whether `gpn` was accessed since its mark was last cleared. */
  wasTouched(gpn: number): boolean { return this.touched[gpn] === 1; }

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
   * The frame a caller that overwrites all of page `gpn` writes to: like
   * frameForWrite, but an unbacked page gets a frame without the zero fill
   * (the loaders write whole kernel and initrd pages this way).
   */
  frameForOverwrite(gpn: number): number {
    if (!(gpn >= 0 && gpn < this.table.length) || this.table[gpn] !== P2M_UNBACKED) return this.frameForWrite(gpn);
    const nf = this.allocFrame(gpn, false);
    if (nf < 0) return nf;
    this.table[gpn] = nf; this.c[C_PRIVATE]!++;
    this.remap(gpn, ZERO_FRAME); // a read may have cached the zero frame
    return nf;
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
          t[gpn] = nf; this.c[C_ZERO]!--; this.c[C_PRIVATE]!++;
          this.remap(gpn, ZERO_FRAME);
          return nf;
        }
        if (this.pool.refcount(f) === 1) return this.takeOver(gpn, f);
        const nf = this.allocFrame(gpn, false);
        if (nf < 0) return nf;
        if (this.pool.refcount(f) === 1) { this.pool.unref(nf); continue; } // the reclaim evicted the other sharers
        this.pool.copy(nf, f);
        this.pool.unref(f);
        t[gpn] = nf; this.c[C_SHARED]!--; this.c[C_PRIVATE]!++;
        this.remap(gpn, f);
        return nf;
      }
      if (e > P2M_SWAPPED_BASE) { // unbacked, or ballooned (the guest reused a page it gave away: deflate it)
        const nf = this.allocFrame(gpn, true);
        if (nf < 0) return nf;
        if (e === P2M_BALLOONED) this.c[C_BALLOONED]!--;
        t[gpn] = nf; this.c[C_PRIVATE]!++;
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
      if (f === ZERO_FRAME) this.c[C_ZERO]!--;
      else if ((e & P2M_SHARED) !== 0) this.c[C_SHARED]!--;
      else this.c[C_PRIVATE]!--;
      this.table[gpn] = P2M_BALLOONED;
      this.c[C_BALLOONED]!++;
      if (f !== ZERO_FRAME) { this.pool.unref(f); this.remap(gpn, f); }
      return true;
    }
    if (e <= P2M_SWAPPED_BASE) {
      this.reclaimer?.releaseSlot(P2M_SWAPPED_BASE - e);
      this.c[C_SWAPPED]!--;
    }
    this.table[gpn] = P2M_BALLOONED;
    this.c[C_BALLOONED]!++;
    return true;
  }

  /** Takes `gpn` back from the balloon: unbacked again (reads zero, the next write allocates). False unless it was ballooned. */
  deflate(gpn: number): boolean {
    if (this.entry(gpn) !== P2M_BALLOONED) return false;
    this.table[gpn] = P2M_UNBACKED;
    this.c[C_BALLOONED]!--;
    return true;
  }

  // ---- Used by the sharing scanner (src/memory/page-sharing.ts) ----

  /** Makes the private frame of `gpn` a read-only shared frame (the first page of a merge). False if not private. */
  markShared(gpn: number): boolean {
    const e = this.entry(gpn);
    if (e <= 0 || (e & P2M_SHARED) !== 0) return false;
    this.table[gpn] = e | P2M_SHARED;
    this.pool.markShared(e);
    this.c[C_PRIVATE]!--; this.c[C_SHARED]!++;
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
    this.c[C_PRIVATE]!--; this.c[C_SHARED]!++;
    this.remap(gpn, e);
    return true;
  }

  /** Maps the private page `gpn` (found all-zero by the caller) onto the zero frame and frees its frame. */
  mergeZero(gpn: number): boolean {
    const e = this.entry(gpn);
    if (e <= 0 || (e & P2M_SHARED) !== 0) return false;
    this.table[gpn] = P2M_ZERO_SHARED;
    this.pool.unref(e);
    this.c[C_PRIVATE]!--; this.c[C_ZERO]!++;
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
    if ((e & P2M_SHARED) !== 0) this.c[C_SHARED]!--; else this.c[C_PRIVATE]!--;
    this.table[gpn] = P2M_SWAPPED_BASE - slot;
    this.c[C_SWAPPED]!++; this.c[C_PAGES_OUT]!++;
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
    const c = this.c; c[C_PRIVATE] = 0; c[C_SHARED] = 0; c[C_ZERO] = 0; c[C_BALLOONED] = 0; c[C_SWAPPED] = 0;
  }

  // ---- Internals ----

  private takeOver(gpn: number, f: number): number {
    this.pool.unmarkShared(f);
    this.table[gpn] = f;
    this.c[C_SHARED]!--; this.c[C_PRIVATE]!++;
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
    this.c[C_SWAPPED]!--; this.c[C_PRIVATE]!++; this.c[C_PAGES_IN]!++;
    return f;
  }

  /** A frame for `gpn`, reclaiming (swapping out some other page) when the pool is empty; P2M_ERR_NOMEM on failure. */
  private allocFrame(gpn: number, zeroed: boolean): number {
    const pool = this.pool;
    let f = zeroed ? pool.allocZeroed() : pool.alloc();
    if (f >= 0) return f;
    const r = this.reclaimer;
    if (r === null) return this.fail('no-memory', gpn, `the frame pool is exhausted (${pool.framesTotal} frames) and no host swap is attached`, P2M_ERR_NOMEM);
    for (let round = 0; round < ALLOC_ROUNDS; round++) {
      const why = r.reclaim(this, gpn);
      if (why !== null) return this.fail(why.kind, gpn, why.message, P2M_ERR_NOMEM);
      f = zeroed ? pool.allocZeroed() : pool.alloc();
      if (f >= 0) return f; // else another VM's thread took the frame first
    }
    return this.fail('no-memory', gpn, `the frame pool is exhausted after ${ALLOC_ROUNDS} reclaims (other VMs took the frames freed)`, P2M_ERR_NOMEM);
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
