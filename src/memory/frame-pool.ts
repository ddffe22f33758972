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
 *
 * Threads (docs/memory.md, "Threads"): every VM runs on a worker thread of
 * its own over one pool. The frames live in the shared wasm memory; the
 * metadata (reference counts, shared marks, the free list, the bump
 * pointer, the counters and a lock word) lives in SharedArrayBuffers, and
 * `handle()` / `FramePool.attach(handle)` give another thread a view of the
 * same pool. Every mutation (alloc, free, ref/unref, the shared mark, runs)
 * holds the pool lock: an Atomics mutex that spins briefly, then sleeps in
 * Atomics.wait (Drepper, "Futexes Are Tricky", 2011, mutex 2). Allocation
 * is on the page-fault slow path, so a lock costs little (docs/memory.md
 * gives the measured cost). Atomics.wait is allowed on Node's main thread
 * but not on a browser's main thread: a pool used there is made with
 * `spinOnlyLock: true`.
 *
 * Control runs: `allocRun(n)` hands out n physically contiguous frames for
 * a VM's hart state, TLBs and JIT areas, which generated code reaches with
 * plain loads inside the pool's memory. Runs come from the bump region;
 * freed runs are kept on a short list for reuse by a run of the same size.
 * Run frames are never shared, swapped or counted as guest pages
 * (`controlStats()`), and their reference count is pinned at
 * CONTROL_FRAME_REF (first frame) and CONTROL_BODY_REF (the rest), so that a
 * stray unref or a freeRun of anything but one live run fails loudly.
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

/**
 * The reference count of the first frame of a live control run (allocRun):
 * above MAX_PAGE_SHARING, so `ref` refuses it, and `unref` of it is a host
 * bug. The run's other frames hold CONTROL_BODY_REF, so `freeRun` can
 * check that it was given exactly one live run.
 */
export const CONTROL_FRAME_REF = 0xffff;
/** The reference count of a live control run's frames after the first. */
export const CONTROL_BODY_REF = 0xfffe;
/**
 * Freed runs kept for reuse; a run freed when the list is full goes back as
 * single frames. A tuning choice: VMs come and go with a few run sizes
 * (harts x CPU_SLOT_BYTES), so a short list catches nearly every reuse.
 */
export const MAX_CACHED_RUNS = 64;
/**
 * Lock attempts spent spinning before sleeping in Atomics.wait. A tuning
 * choice: a critical section is a few dozen instructions, so a holder
 * usually leaves within a few spins; a sleeping holder (descheduled) is
 * waited for without burning a core.
 */
const LOCK_SPINS = 100;

// The metadata words (Int32Array `meta`): the lock, and the mutable state every thread sees.
const M_LOCK = 0, M_FREE_TOP = 1, M_BUMP = 2, M_USED = 3, M_SHARED = 4, M_CONTROL = 5, M_RUN_TOP = 6, M_RUNS_LIVE = 7;
const META_WORDS = 8;

/** The pool's counters, with the names the host API reports. */
export interface FramePoolStats {
  /** Frames the pool can hand out (the zero frame excluded). */
  frames_total: number;
  /** Frames currently referenced by at least one p2m entry. */
  frames_used: number;
  /** Frames available: frames_total - frames_used - frames_control (see `controlStats`). */
  frames_free: number;
  /** Frames currently mapped read-only by the sharing scanner (KSM's pages_shared). */
  frames_shared: number;
  /** Frames ever touched: the bump pointer, the pool's high-water mark (host RSS follows it). */
  frames_high_water: number;
}

/** The control runs' counters (hart state, TLBs, JIT areas): never guest pages. */
export interface ControlStats {
  /** Frames in live runs. */
  frames_control: number;
  /** Live runs. */
  runs_live: number;
  /** Freed runs kept for reuse (their frames count as free). */
  runs_cached: number;
}

/** Options for a pool. */
export interface FramePoolOptions {
  /** Frames to hand out (the zero frame is added on top); at most MAX_POOL_FRAMES - 1. */
  frames: number;
  /** Back the pool with a shared memory (default true): needed to pass it to workers. */
  shared?: boolean;
  /** Never sleep in Atomics.wait for the lock, only spin (a browser's main thread may not block). */
  spinOnlyLock?: boolean;
}

/** Everything another thread needs to view the same pool; structured-cloneable (postMessage, workerData). */
export interface FramePoolHandle {
  /** The shared memory holding the frames. */
  memory: WebAssembly.Memory;
  /** Frames in the memory, the zero frame included. */
  frameCount: number;
  /** The metadata words (lock, free-list top, bump pointer, counters). */
  meta: SharedArrayBuffer;
  /** Uint16 reference count per frame. */
  refs: SharedArrayBuffer;
  /** Uint8 shared mark per frame. */
  sharedFlag: SharedArrayBuffer;
  /** Int32 free list. */
  freeList: SharedArrayBuffer;
  /** Int32 (first, n) pairs of the cached runs. */
  runs: SharedArrayBuffer;
}

/** Options for `FramePool.attach`. */
export interface FramePoolAttachOptions {
  /** Never sleep in Atomics.wait for the lock, only spin (a browser's main thread may not block). */
  spinOnlyLock?: boolean;
}

function buffer(bytes: number, shared: boolean): ArrayBufferLike {
  return shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
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
  /** Whether the metadata is in SharedArrayBuffers (the pool can be attached from other threads). */
  readonly threadShared: boolean;
  /** The metadata words (M_*). */
  private readonly meta: Int32Array;
  /** Per frame: the number of p2m entries mapping it (0: free or never used; CONTROL_*_REF: in a run). */
  private readonly refs: Uint16Array;
  /** Per frame: 1 while the sharing scanner has made it a read-only shared frame. */
  private readonly sharedFlag: Uint8Array;
  /** The LIFO free list: frames [0, meta[M_FREE_TOP]) of it, most recently freed last. */
  private readonly freeList: Int32Array;
  /** Cached runs: (first, n) pairs, meta[M_RUN_TOP] of them. */
  private readonly runs: Int32Array;
  private readonly spinOnly: boolean;
  /** Set by `take`: the frame came from the free list (its content is stale). */
  private reused = false;

  /**
   * Creates a pool of `frames` frames plus the zero frame; throws RangeError
   * on a bad size (a host configuration error). The second argument is
   * `attach`'s: a view of an existing pool.
   */
  constructor(opts: FramePoolOptions, from?: FramePoolHandle) {
    this.spinOnly = opts.spinOnlyLock ?? false;
    if (from !== undefined) {
      this.memory = from.memory;
      this.frameCount = from.frameCount;
      this.threadShared = true;
      this.meta = new Int32Array(from.meta);
      this.refs = new Uint16Array(from.refs);
      this.sharedFlag = new Uint8Array(from.sharedFlag);
      this.freeList = new Int32Array(from.freeList);
      this.runs = new Int32Array(from.runs);
    } else {
      const n = opts.frames;
      if (!Number.isInteger(n) || n < 1 || n > MAX_POOL_FRAMES - 1) {
        throw new RangeError(`frame pool of ${n} frames: must be 1..${MAX_POOL_FRAMES - 1} (a memory32 wasm memory holds at most 4 GiB)`);
      }
      this.frameCount = n + 1;
      const pages = Math.ceil((this.frameCount * FRAME_SIZE) / WASM_PAGE_SIZE);
      const shared = opts.shared ?? true;
      // Fixed size (initial = maximum): the OS commits pages lazily, and a memory that never grows keeps every view valid.
      this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
      this.threadShared = shared;
      this.meta = new Int32Array(buffer(META_WORDS * 4, shared));
      this.refs = new Uint16Array(buffer(this.frameCount * 2, shared));
      this.sharedFlag = new Uint8Array(buffer(this.frameCount, shared));
      this.freeList = new Int32Array(buffer(this.frameCount * 4, shared));
      this.runs = new Int32Array(buffer(MAX_CACHED_RUNS * 8, shared));
      this.meta[M_BUMP] = 1;
      this.refs[ZERO_FRAME] = 1; // pinned: never reaches 0, never on the free list
    }
    this.u8 = new Uint8Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
  }

  /** A view, in this thread, of the pool another thread made (`pool.handle()`). */
  static attach(handle: FramePoolHandle, opts: FramePoolAttachOptions = {}): FramePool {
    return new FramePool({ frames: handle.frameCount - 1, spinOnlyLock: opts.spinOnlyLock }, handle);
  }

  /** The structured-cloneable handle another thread passes to `FramePool.attach`; throws for a pool made with `shared: false`. */
  handle(): FramePoolHandle {
    if (!this.threadShared) throw new Error('frame pool: a pool made with shared: false cannot be passed to another thread');
    return {
      memory: this.memory, frameCount: this.frameCount, meta: this.meta.buffer as SharedArrayBuffer,
      refs: this.refs.buffer as SharedArrayBuffer, sharedFlag: this.sharedFlag.buffer as SharedArrayBuffer,
      freeList: this.freeList.buffer as SharedArrayBuffer, runs: this.runs.buffer as SharedArrayBuffer,
    };
  }

  /** Frames the pool can hand out (the zero frame excluded). */
  get framesTotal(): number { return this.frameCount - 1; }
  /** Frames referenced by at least one mapping. */
  get framesUsed(): number { return Atomics.load(this.meta, M_USED); }
  /** Frames available to `alloc` (frames of cached runs included). */
  get framesFree(): number { return this.frameCount - 1 - Atomics.load(this.meta, M_USED) - Atomics.load(this.meta, M_CONTROL); }
  /** Frames marked shared (read-only, merged by the scanner). */
  get framesShared(): number { return Atomics.load(this.meta, M_SHARED); }

  /** The counters, as the host API reports them. */
  stats(): FramePoolStats {
    return {
      frames_total: this.framesTotal, frames_used: this.framesUsed, frames_free: this.framesFree,
      frames_shared: this.framesShared, frames_high_water: Atomics.load(this.meta, M_BUMP) - 1,
    };
  }

  /** The control runs' counters. */
  controlStats(): ControlStats {
    return {
      frames_control: Atomics.load(this.meta, M_CONTROL), runs_live: Atomics.load(this.meta, M_RUNS_LIVE),
      runs_cached: Atomics.load(this.meta, M_RUN_TOP),
    };
  }

  // ---- The lock ----

  /**
   * Takes the pool lock (0: free, 1: held, 2: held with sleepers). Exposed
   * for state that shares it (host swap's slot map); hold it briefly, never
   * across a call that takes it again (it is not reentrant).
   */
  lock(): void {
    if (Atomics.compareExchange(this.meta, M_LOCK, 0, 1) !== 0) this.lockSlow();
  }

  /** Releases the pool lock, waking one sleeper if there is one. */
  unlock(): void {
    if (Atomics.sub(this.meta, M_LOCK, 1) !== 1) {
      Atomics.store(this.meta, M_LOCK, 0);
      Atomics.notify(this.meta, M_LOCK, 1);
    }
  }

  private lockSlow(): void {
    const m = this.meta;
    // One thread only: the holder is this thread, in a call that took the lock twice (a host bug; spinning would hang).
    if (!this.threadShared) throw new Error('frame pool: lock taken twice (it is not reentrant)');
    for (let i = 0; i < LOCK_SPINS; i++) {
      if (Atomics.load(m, M_LOCK) === 0 && Atomics.compareExchange(m, M_LOCK, 0, 1) === 0) return;
    }
    if (this.spinOnly) {
      while (Atomics.compareExchange(m, M_LOCK, 0, 1) !== 0) { /* spin: this thread may not block */ }
      return;
    }
    let c = Atomics.exchange(m, M_LOCK, 2);
    while (c !== 0) {
      Atomics.wait(m, M_LOCK, 2);
      c = Atomics.exchange(m, M_LOCK, 2);
    }
  }

  // ---- Frames ----

  /**
   * Takes a frame with reference count 1, or returns NO_FRAME (-1) when
   * the pool is exhausted. The content is unspecified (a reused frame
   * holds another VM's old data): use `allocZeroed` unless every byte will
   * be overwritten.
   */
  alloc(): number {
    this.lock();
    const f = this.take();
    this.unlock();
    return f;
  }

  /** Like `alloc`, but the frame reads as zeros (never-used frames already do; reused ones are cleared). */
  allocZeroed(): number {
    this.lock();
    const f = this.take();
    const clear = this.reused;
    this.unlock();
    if (f > 0 && clear) this.u8.fill(0, f * FRAME_SIZE, (f + 1) * FRAME_SIZE);
    return f;
  }

  /** alloc's body, under the lock: the free list, else the bump pointer, else a cached run broken up. */
  private take(): number {
    const m = this.meta;
    for (;;) {
      let f: number;
      const top = m[M_FREE_TOP]!;
      if (top > 0) { f = this.freeList[top - 1]!; m[M_FREE_TOP] = top - 1; this.reused = true; }
      else if (m[M_BUMP]! < this.frameCount) { f = m[M_BUMP]!; m[M_BUMP] = f + 1; this.reused = false; }
      else if (m[M_RUN_TOP]! > 0) { this.breakCachedRun(); continue; }
      else return NO_FRAME;
      this.refs[f] = 1;
      m[M_USED]!++;
      return f;
    }
  }

  /** Moves the last cached run's frames to the free list (under the lock; single frames are wanted more). */
  private breakCachedRun(): void {
    const m = this.meta, k = m[M_RUN_TOP]! - 1;
    const first = this.runs[2 * k]!, n = this.runs[2 * k + 1]!;
    m[M_RUN_TOP] = k;
    let top = m[M_FREE_TOP]!;
    for (let f = first + n - 1; f >= first; f--) this.freeList[top++] = f;
    m[M_FREE_TOP] = top;
  }

  /**
   * Adds a mapping of frame `f`; false (and no change) when it already has
   * MAX_PAGE_SHARING mappings or is free. The zero frame is not counted.
   */
  ref(f: number): boolean {
    if (f === ZERO_FRAME) return true;
    this.lock();
    const r = this.refs[f]!;
    const ok = r !== 0 && r < MAX_PAGE_SHARING;
    if (ok) this.refs[f] = r + 1;
    this.unlock();
    return ok;
  }

  /** Drops a mapping of frame `f`; at zero the frame goes on the free list. Returns the new count. */
  unref(f: number): number {
    if (f === ZERO_FRAME) return 1;
    this.lock();
    const r = this.refs[f]!;
    if (r === 0 || r >= CONTROL_BODY_REF) {
      this.unlock();
      throw new Error(`frame pool: unref of ${r === 0 ? 'free' : 'control'} frame ${f}`); // a host bug, never guest-triggered
    }
    this.refs[f] = r - 1;
    if (r === 1) {
      const m = this.meta;
      if (this.sharedFlag[f] !== 0) { this.sharedFlag[f] = 0; m[M_SHARED]!--; }
      this.freeList[m[M_FREE_TOP]!] = f;
      m[M_FREE_TOP]!++;
      m[M_USED]!--;
    }
    this.unlock();
    return r - 1;
  }

  /** The number of mappings of frame `f` (0: free; CONTROL_FRAME_REF or CONTROL_BODY_REF: in a control run). */
  refcount(f: number): number { return Atomics.load(this.refs, f); }

  /** Marks frame `f` as a read-only shared frame (the scanner merged pages into it). */
  markShared(f: number): void {
    if (f === ZERO_FRAME) return;
    this.lock();
    if (this.sharedFlag[f] === 0) { this.sharedFlag[f] = 1; this.meta[M_SHARED]!++; }
    this.unlock();
  }

  /** Clears the shared mark of frame `f` (its last mapping took it over as a private frame). */
  unmarkShared(f: number): void {
    this.lock();
    if (this.sharedFlag[f] !== 0) { this.sharedFlag[f] = 0; this.meta[M_SHARED]!--; }
    this.unlock();
  }

  /** Whether frame `f` is marked shared. */
  isShared(f: number): boolean { return Atomics.load(this.sharedFlag, f) !== 0; }

  // ---- Control runs ----

  /**
   * Takes `n` physically contiguous frames for a VM's control area (hart
   * state, TLBs, JIT areas) and returns the first, or NO_FRAME when no run
   * of that size is free. The frames read as zeros. A cached run of the
   * same size is reused first; else the run comes from the bump region.
   * Throws RangeError for a bad `n` (a host bug).
   */
  allocRun(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > this.frameCount - 1) throw new RangeError(`frame pool: run of ${n} frames`);
    const m = this.meta;
    this.lock();
    let first = NO_FRAME, reused = false;
    const cached = m[M_RUN_TOP]!;
    for (let k = 0; k < cached; k++) {
      if (this.runs[2 * k + 1] !== n) continue;
      first = this.runs[2 * k]!;
      this.runs[2 * k] = this.runs[2 * (cached - 1)]!; // fill the hole with the last entry
      this.runs[2 * k + 1] = this.runs[2 * (cached - 1) + 1]!;
      m[M_RUN_TOP] = cached - 1;
      reused = true;
      break;
    }
    if (first < 0 && m[M_BUMP]! + n <= this.frameCount) { // frames above the bump pointer were never handed out
      first = m[M_BUMP]!;
      m[M_BUMP] = first + n;
    }
    if (first >= 0) {
      this.refs[first] = CONTROL_FRAME_REF;
      this.refs.fill(CONTROL_BODY_REF, first + 1, first + n);
      m[M_CONTROL] = m[M_CONTROL]! + n;
      m[M_RUNS_LIVE]!++;
    }
    this.unlock();
    if (reused) this.u8.fill(0, first * FRAME_SIZE, (first + n) * FRAME_SIZE);
    return first;
  }

  /**
   * Gives back a run from `allocRun(n)`: kept for reuse by a run of the
   * same size, or (the list full) returned as single frames. Throws when
   * [first, first + n) is not a live run's frames (a host bug).
   */
  freeRun(first: number, n: number): void {
    if (!Number.isInteger(first) || !Number.isInteger(n) || n < 1 || first < 1 || first + n > this.frameCount) {
      throw new RangeError(`frame pool: freeRun(${first}, ${n}) outside the pool`);
    }
    const m = this.meta;
    this.lock();
    let ok = this.refs[first] === CONTROL_FRAME_REF && (first + n === this.frameCount || this.refs[first + n] !== CONTROL_BODY_REF);
    for (let f = first + 1; ok && f < first + n; f++) ok = this.refs[f] === CONTROL_BODY_REF;
    if (!ok) { this.unlock(); throw new Error(`frame pool: freeRun(${first}, ${n}): not one live run`); } // a host bug
    this.refs.fill(0, first, first + n);
    m[M_CONTROL] = m[M_CONTROL]! - n;
    m[M_RUNS_LIVE]!--;
    const k = m[M_RUN_TOP]!;
    if (k < MAX_CACHED_RUNS) {
      this.runs[2 * k] = first; this.runs[2 * k + 1] = n;
      m[M_RUN_TOP] = k + 1;
    } else {
      let top = m[M_FREE_TOP]!;
      for (let f = first + n - 1; f >= first; f--) this.freeList[top++] = f;
      m[M_FREE_TOP] = top;
    }
    this.unlock();
  }

  // ---- Contents ----

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
