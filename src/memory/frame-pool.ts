/**
 * The machine-memory pool: one shared `WebAssembly.Memory` that every VM of
 * a host draws its RAM from, cut into 4 KiB frames (ESX's "machine pages",
 * Waldspurger, OSDI 2002, §2). Each VM maps its guest-physical pages onto
 * frames through its own p2m table (src/memory/p2m.ts); content-based page
 * sharing, ballooning and host swapping all work by changing p2m entries,
 * and this pool only hands frames out and takes them back.
 *
 * - Frames are bump-allocated from the bottom of the memory, so the host's
 *   RSS follows the pool's high-water mark (Node 20 has no API that gives
 *   pages of a wasm memory back to the OS; a frame freed by one VM is
 *   reused by the next allocation of any VM).
 * - Freed frames go on a LIFO free list: the most recently freed frame is
 *   reused first, while it is still warm in the host's caches.
 * - Every frame has a reference count: the number of p2m entries mapping it
 *   (1 for a private page, more for a page merged by the sharing scanner).
 * - Frame 0 is the canonical zero frame: reserved, never freed, never
 *   written; unbacked, ballooned and merged all-zero pages read it.
 *
 * The limit: a memory32 `WebAssembly.Memory` holds at most 65536 wasm pages
 * of 64 KiB, 4 GiB (WebAssembly JS API, "limits" of memory32; V8 enforces
 * it on Node 20), so one pool holds at most 2^20 frames. memory64 lifts
 * it; it is experimental until Node 24, and
 * JIT-generated code would then use i64 addresses. Until then a host that
 * needs more than 4 GiB of machine memory needs a second pool.
 *
 * Allocation never throws: `alloc` returns -1 when the pool is exhausted,
 * and the caller (the p2m fault path) asks host swap to free a frame.
 */

/** Bytes per frame: the RISC-V base page (privileged spec §4.3, PAGESIZE = 2^12). */
export const FRAME_SIZE = 4096;
/** log2(FRAME_SIZE). */
export const FRAME_SHIFT = 12;
/** Int32 words per frame. */
export const FRAME_WORDS = FRAME_SIZE / 4;
/** Bytes per WebAssembly page (WebAssembly core spec §4.2.8 "Memory Instances": the page size, 65536). */
export const WASM_PAGE_SIZE = 65536;
/** Most wasm pages one memory32 memory can hold: 2^16, 4 GiB (WebAssembly JS API; V8 on Node 20). */
export const MAX_WASM_PAGES = 65536;
/** Most frames one pool can hold, the zero frame included: 4 GiB / 4 KiB = 2^20. */
export const MAX_POOL_FRAMES = (MAX_WASM_PAGES * WASM_PAGE_SIZE) / FRAME_SIZE;
/** The canonical all-zero frame: reserved, never freed, never written. */
export const ZERO_FRAME = 0;
/** Returned by `alloc` when the pool is exhausted. */
export const NO_FRAME = -1;
/**
 * Most p2m entries that may map one frame. Linux KSM caps the same thing
 * (Documentation/admin-guide/mm/ksm.rst, `max_page_sharing`, default 256):
 * a guest that fills its RAM with one repeated page would otherwise make
 * one frame the target of millions of mappings, and every later operation
 * on that frame (evicting it takes one swap-out per mapping) would cost as
 * much. It also keeps the count inside a Uint16Array.
 */
export const MAX_PAGE_SHARING = 256;

/** The pool's counters, with the names the host API reports. */
export interface FramePoolStats {
  /** Frames the pool can hand out (the zero frame excluded). */
  frames_total: number;
  /** Frames currently referenced by at least one p2m entry. */
  frames_used: number;
  /** frames_total - frames_used. */
  frames_free: number;
  /** Frames currently mapped read-only by the sharing scanner (KSM's pages_shared). */
  frames_shared: number;
  /** Frames ever touched: the bump pointer, the pool's high-water mark (host RSS follows it). */
  frames_high_water: number;
}

/** Options for a pool. */
export interface FramePoolOptions {
  /** Frames to hand out (the zero frame is added on top); at most MAX_POOL_FRAMES - 1. */
  frames: number;
  /** Back the pool with a shared memory (default true): needed to pass it to workers. */
  shared?: boolean;
}

/** The shared machine-memory pool: frames, reference counts and the zero frame. */
export class FramePool {
  /** The memory holding every frame; frame f occupies bytes [f * FRAME_SIZE, (f + 1) * FRAME_SIZE). */
  readonly memory: WebAssembly.Memory;
  /** Byte view of the whole pool. */
  readonly u8: Uint8Array;
  /** Int32 view of the whole pool (word-wise hashing and comparison). */
  readonly i32: Int32Array;
  /** Frames in the memory, the zero frame included. */
  readonly frameCount: number;
  /** Per frame: the number of p2m entries mapping it (0: free or never used). */
  private readonly refs: Uint16Array;
  /** Per frame: 1 while the sharing scanner has made it a read-only shared frame. */
  private readonly sharedFlag: Uint8Array;
  /** The LIFO free list: frames [0, freeTop) of it, most recently freed last. */
  private readonly freeList: Int32Array;
  private freeTop = 0;
  /** Next never-used frame (bump allocation). */
  private bump = 1;
  private used = 0;
  private shared = 0;
  private control = 0;
  private readonly runFree: { first: number; n: number }[] = [];

  /** Creates a pool of `frames` frames plus the zero frame; throws RangeError on a bad size (a host configuration error). */
  constructor(opts: FramePoolOptions) {
    const n = opts.frames;
    if (!Number.isInteger(n) || n < 1 || n > MAX_POOL_FRAMES - 1) {
      throw new RangeError(`frame pool of ${n} frames: must be 1..${MAX_POOL_FRAMES - 1} (a memory32 wasm memory holds at most 4 GiB)`);
    }
    this.frameCount = n + 1;
    const pages = Math.ceil((this.frameCount * FRAME_SIZE) / WASM_PAGE_SIZE);
    // Fixed size (initial = maximum): the OS commits pages lazily, and a memory that never grows keeps every view valid.
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: opts.shared ?? true });
    this.u8 = new Uint8Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
    this.refs = new Uint16Array(this.frameCount);
    this.sharedFlag = new Uint8Array(this.frameCount);
    this.freeList = new Int32Array(this.frameCount);
    this.refs[ZERO_FRAME] = 1; // pinned: never reaches 0, never on the free list
  }

  /** Frames the pool can hand out (the zero frame excluded). */
  get framesTotal(): number { return this.frameCount - 1; }
  /** Frames referenced by at least one mapping. */
  get framesUsed(): number { return this.used; }
  /** Frames available to `alloc`. */
  get framesFree(): number { return this.frameCount - 1 - this.used - this.control - this.runFree.reduce((a, r) => a + r.n, 0); }
  /** Frames marked shared (read-only, merged by the scanner). */
  get framesShared(): number { return this.shared; }

  /** The counters, as the host API reports them. */
  stats(): FramePoolStats {
    return {
      frames_total: this.framesTotal, frames_used: this.used, frames_free: this.framesFree,
      frames_shared: this.shared, frames_high_water: this.bump - 1,
    };
  }

  /**
   * Takes a frame with reference count 1, or returns NO_FRAME (-1) when
   * the pool is exhausted. The content is unspecified (a reused frame
   * holds another VM's old data): use `allocZeroed` unless every byte will
   * be overwritten.
   */
  alloc(): number {
    let f: number;
    if (this.freeTop > 0) f = this.freeList[--this.freeTop]!;
    else if (this.bump < this.frameCount) f = this.bump++;
    else return NO_FRAME;
    this.refs[f] = 1;
    this.used++;
    return f;
  }

  /** Like `alloc`, but the frame reads as zeros (never-used frames already do; reused ones are cleared). */
  allocZeroed(): number {
    const fromFreeList = this.freeTop > 0;
    const f = this.alloc();
    if (f > 0 && fromFreeList) this.u8.fill(0, f * FRAME_SIZE, (f + 1) * FRAME_SIZE);
    return f;
  }

  /**
   * Adds a mapping of frame `f`; false (and no change) when it already has
   * MAX_PAGE_SHARING mappings or is free. The zero frame is not counted.
   */
  ref(f: number): boolean {
    if (f === ZERO_FRAME) return true;
    const r = this.refs[f]!;
    if (r === 0 || r >= MAX_PAGE_SHARING) return false;
    this.refs[f] = r + 1;
    return true;
  }

  /** Drops a mapping of frame `f`; at zero the frame goes on the free list. Returns the new count. */
  unref(f: number): number {
    if (f === ZERO_FRAME) return 1;
    const r = this.refs[f]!;
    if (r === 0) throw new Error(`frame pool: unref of free frame ${f}`); // a host bug, never guest-triggered
    this.refs[f] = r - 1;
    if (r === 1) {
      if (this.sharedFlag[f] !== 0) { this.sharedFlag[f] = 0; this.shared--; }
      this.freeList[this.freeTop++] = f;
      this.used--;
    }
    return r - 1;
  }

  /** The number of mappings of frame `f` (0: free). */
  refcount(f: number): number { return this.refs[f]!; }

  /** Marks frame `f` as a read-only shared frame (the scanner merged pages into it). */
  markShared(f: number): void {
    if (f === ZERO_FRAME || this.sharedFlag[f] !== 0) return;
    this.sharedFlag[f] = 1;
    this.shared++;
  }

  /** Clears the shared mark of frame `f` (its last mapping took it over as a private frame). */
  unmarkShared(f: number): void {
    if (this.sharedFlag[f] === 0) return;
    this.sharedFlag[f] = 0;
    this.shared--;
  }

  /** Whether frame `f` is marked shared. */
  isShared(f: number): boolean { return this.sharedFlag[f] !== 0; }

  /**
   * Takes `n` physically contiguous frames from the never-used region (a
   * VM's CPU area: hart state, TLBs and JIT caches, which generated code
   * reaches with plain loads). Returns the first frame, or NO_FRAME. Runs
   * are not guest pages: they are never shared, swapped or counted in
   * `frames_used`, only in `frames_control`.
   */
  allocRun(n: number): number {
    const i = this.runFree.findIndex((r) => r.n === n);
    if (i >= 0) { const r = this.runFree.splice(i, 1)[0]!; this.control += n; return r.first; }
    if (!Number.isInteger(n) || n < 1 || this.bump + n > this.frameCount) return NO_FRAME;
    const f = this.bump;
    this.bump += n;
    this.control += n;
    return f;
  }

  /** Returns a run taken by allocRun (kept for a later run of the same size). */
  freeRun(first: number, n: number): void {
    this.runFree.push({ first, n });
    this.control -= n;
  }

  /** Frames held by control runs (allocRun). */
  get framesControl(): number { return this.control; }

  /** Byte offset of frame `f` in the memory (what a TLB fill adds). */
  offset(f: number): number { return f * FRAME_SIZE; }

  /** Copies frame `src` over frame `dst`. */
  copy(dst: number, src: number): void {
    this.u8.copyWithin(dst * FRAME_SIZE, src * FRAME_SIZE, (src + 1) * FRAME_SIZE);
  }

  /** Whether frames `a` and `b` hold the same bytes (word-wise full comparison). */
  equal(a: number, b: number): boolean {
    const w = this.i32;
    let i = a * FRAME_WORDS, j = b * FRAME_WORDS;
    const end = i + FRAME_WORDS;
    for (; i < end; i++, j++) if (w[i] !== w[j]) return false;
    return true;
  }

  /** Whether frame `f` is all zeros. */
  isZero(f: number): boolean {
    const w = this.i32;
    for (let i = f * FRAME_WORDS, end = i + FRAME_WORDS; i < end; i++) if (w[i] !== 0) return false;
    return true;
  }
}
