/**
 * Host swapping ("double paging", Waldspurger, OSDI 2002, §3.1 and §3.3):
 * when the frame pool is empty, the host writes some VM's page to a swap
 * store and tags its p2m entry SWAPPED; the next access reads it back into
 * a fresh frame. It is the last resort: the balloon comes first, because
 * the guest knows better than the host which of its pages are idle.
 *
 * Victims are chosen by random sampling, as in ESX (§3.3: a randomized
 * page replacement policy, which cannot fall into the pathological
 * patterns an LRU-like host policy meets against a guest's own LRU):
 * SWAP_SAMPLE_PAGES random pages across every registered VM, weighted by
 * size, and the first one holding a frame of its own is evicted. Shared
 * frames are evicted last: swapping out one mapping of a frame shared by
 * n pages frees nothing until all n are out, so they are taken only when
 * no private page remains anywhere, and then every mapping of one frame.
 *
 * The store is injected by the platform (`SwapStore`: a file on Node,
 * src/host/swap-file.ts; memory or IndexedDB-backed in a browser). Its
 * calls are synchronous and return an error string instead of throwing.
 * Nothing is lost on failure: the page stays resident when a write fails,
 * and stays swapped (its slot kept) when a read fails; only the VM that
 * needed the frame gets the error (`P2m.lastError`), other VMs run on.
 *
 * Threads (docs/memory.md, "Threads"): the slot map and the host-wide
 * counters live in SharedArrayBuffers, changed under the pool lock;
 * `handle()` / `HostSwap.attach(pool, handle, store, rng)` give another
 * thread its own HostSwap over the same slots with its own store (a
 * SwapFile opened again on the same file: slots are disjoint, so the
 * threads' positional reads and writes never overlap). A VM's thread
 * registers only its own table: its reclaims then evict only its own pages
 * (safe: it is on its own fault path), and its swap-ins read through its
 * own store. The host's thread registers every VM and evicts across them
 * (`evict`) only while they are all stopped at a safe point.
 */

import { FramePool, FRAME_SIZE } from './frame-pool.js';
import { P2m, P2M_SHARED, P2M_FRAME_MASK, P2M_MAX_SLOT, type FrameReclaimer, type ReclaimFailure } from './p2m.js';

/**
 * Random pages examined per eviction before falling back to a sweep. A
 * tuning choice: with a fraction p of the sampled pages private, all 16
 * miss with probability (1-p)^16 (under 1% once p > 25%).
 */
export const SWAP_SAMPLE_PAGES = 16;
/**
 * Most swap slots one host swap manages: 2^24 slots, 64 GiB. The slot map
 * (4 bytes per slot) is allocated up front; the cap stops a platform store
 * reporting a huge capacity from making the host allocate a huge map.
 */
export const MAX_SWAP_SLOTS = Math.min(1 << 24, P2M_MAX_SLOT + 1);
/**
 * Most victim rounds one reclaim may take. Each round frees a frame (a
 * private page) or every mapping of one shared frame, so two suffice; the
 * cap stops a guest that keeps its pages shared and unshared from making
 * one allocation loop without end.
 */
const MAX_RECLAIM_ROUNDS = 4;

/** A platform's synchronous swap store: FRAME_SIZE-byte slots. */
export interface SwapStore {
  /** Slots the store can hold. */
  readonly capacity: number;
  /** Writes `bytes` (FRAME_SIZE long) to `slot`; an error message, or null on success. */
  write(slot: number, bytes: Uint8Array): string | null;
  /** Reads `slot` into `into` (FRAME_SIZE long); an error message, or null on success. */
  read(slot: number, into: Uint8Array): string | null;
}

/** A uniform random 32-bit unsigned integer per call (seeded by the caller, so runs reproduce). */
export type Rng = () => number;

/** A seeded Rng: mulberry32 (Tommy Ettinger, public domain), small and good enough for sampling. */
export function seededRng(seed: number): Rng {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A swap store in memory (tests; a browser host without persistent storage). */
export class MemorySwapStore implements SwapStore {
  /** Slots the store can hold. */
  readonly capacity: number;
  private readonly bytes: Uint8Array;

  /** A store of `capacity` slots, allocated once. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0 || capacity > MAX_SWAP_SLOTS) throw new RangeError(`swap store of ${capacity} slots`);
    this.capacity = capacity;
    this.bytes = new Uint8Array(capacity * FRAME_SIZE);
  }

  /** Writes one slot. */
  write(slot: number, bytes: Uint8Array): string | null {
    if (!(slot >= 0 && slot < this.capacity)) return `swap full: slot ${slot} beyond ${this.capacity} slots`;
    if (bytes.length !== FRAME_SIZE) return `swap write of ${bytes.length} bytes`;
    this.bytes.set(bytes, slot * FRAME_SIZE);
    return null;
  }

  /** Reads one slot. */
  read(slot: number, into: Uint8Array): string | null {
    if (!(slot >= 0 && slot < this.capacity)) return `no swap slot ${slot}`;
    into.set(this.bytes.subarray(slot * FRAME_SIZE, (slot + 1) * FRAME_SIZE));
    return null;
  }
}

/** Host-wide swap counters. */
export interface HostSwapStats {
  /** Pages written to swap since start. */
  pages_out: number;
  /** Pages read back since start. */
  pages_in: number;
  /** Slots the store offers (capped at MAX_SWAP_SLOTS). */
  slots_total: number;
  /** Slots holding a swapped page. */
  slots_used: number;
}

/** One VM's swap counters. */
export interface VmSwapStats {
  /** This VM's pages written to swap since start. */
  pages_out: number;
  /** This VM's pages read back since start. */
  pages_in: number;
  /** This VM's pages in swap now. */
  pages_swapped: number;
}

/** Everything another thread needs for a HostSwap over the same slots; structured-cloneable. */
export interface HostSwapHandle {
  /** The slot-map words (free-list top, bump, counters). */
  meta: SharedArrayBuffer;
  /** Int32 free slots. */
  slotFree: SharedArrayBuffer;
}

// The slot-map words (Int32Array `meta`).
const S_TOP = 0, S_BUMP = 1, S_PAGES_OUT = 2, S_PAGES_IN = 3, S_SLOTS = 4;
const SLOT_META_WORDS = 5;

interface VmRecord { p2m: P2m }

/** Host swap over one frame pool and one store: victim selection, swap-out, swap-in, slots. */
export class HostSwap implements FrameReclaimer {
  /** The pool whose frames are reclaimed. */
  readonly pool: FramePool;
  /** Where pages go. */
  readonly store: SwapStore;
  private readonly rng: Rng;
  private readonly vms: VmRecord[] = [];
  private readonly byP2m = new Map<P2m, VmRecord>();
  /** A frame's bytes on their way to or from the store (allocated once; also keeps shared memory away from the store). */
  private readonly staging = new Uint8Array(FRAME_SIZE);
  /** The shared slot-map words (S_*). */
  private readonly meta: Int32Array;
  private readonly slotFree: Int32Array;
  private readonly slots: number;
  // The victim found by pickVictim.
  private victimVm: VmRecord | null = null;
  private victimGpn = -1;
  private victimShared = -1;

  /**
   * Host swap for `pool` into `store`, sampling victims with `rng`. The
   * fourth argument is `attach`'s: the slot map of an existing HostSwap.
   */
  constructor(pool: FramePool, store: SwapStore, rng: Rng, from?: HostSwapHandle) {
    this.pool = pool;
    this.store = store;
    this.rng = rng;
    if (from !== undefined) {
      this.meta = new Int32Array(from.meta);
      this.slotFree = new Int32Array(from.slotFree);
      this.slots = this.meta[S_SLOTS]!;
      if (store.capacity < this.slots) throw new RangeError(`host swap: a store of ${store.capacity} slots attached to a swap of ${this.slots}`);
      return;
    }
    this.slots = Math.max(0, Math.min(store.capacity | 0, MAX_SWAP_SLOTS));
    const mk = (bytes: number): ArrayBufferLike => pool.threadShared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    this.meta = new Int32Array(mk(SLOT_META_WORDS * 4));
    this.slotFree = new Int32Array(mk(this.slots * 4));
    this.meta[S_SLOTS] = this.slots;
  }

  /** A HostSwap in this thread over the slots of another thread's (`swap.handle()`), writing through this thread's `store`. */
  static attach(pool: FramePool, handle: HostSwapHandle, store: SwapStore, rng: Rng): HostSwap {
    return new HostSwap(pool, store, rng, handle);
  }

  /** The structured-cloneable handle another thread passes to `HostSwap.attach`. */
  handle(): HostSwapHandle {
    if (!this.pool.threadShared) throw new Error('host swap: a swap over a pool made with shared: false cannot be passed to another thread');
    return { meta: this.meta.buffer as SharedArrayBuffer, slotFree: this.slotFree.buffer as SharedArrayBuffer };
  }

  /** Makes `p2m`'s pages candidates for eviction and lets it reclaim frames. */
  register(p2m: P2m): void {
    if (p2m.pool !== this.pool) throw new Error(`${p2m.name}: registered with the host swap of another pool`);
    if (this.byP2m.has(p2m)) return;
    const rec: VmRecord = { p2m };
    this.vms.push(rec);
    this.byP2m.set(p2m, rec);
    p2m.reclaimer = this;
  }

  /** Forgets a VM being torn down (call after `p2m.releaseAll()`, which releases its slots). */
  unregister(p2m: P2m): void {
    const rec = this.byP2m.get(p2m);
    if (rec === undefined) return;
    if (p2m.stats().pages_swapped !== 0) throw new Error(`${p2m.name}: unregistered from host swap with pages still swapped`);
    this.byP2m.delete(p2m);
    this.vms.splice(this.vms.indexOf(rec), 1);
    p2m.reclaimer = null;
  }

  /**
   * Forgets a VM whose table another thread frees (a VM's worker: the host
   * frees the table, swap slots included, once the worker has gone).
   */
  forget(p2m: P2m): void {
    const rec = this.byP2m.get(p2m);
    if (rec === undefined) return;
    this.byP2m.delete(p2m);
    this.vms.splice(this.vms.indexOf(rec), 1);
    p2m.reclaimer = null;
  }

  /** Host-wide counters. */
  stats(): HostSwapStats {
    const m = this.meta;
    return {
      pages_out: Atomics.load(m, S_PAGES_OUT), pages_in: Atomics.load(m, S_PAGES_IN), slots_total: this.slots,
      slots_used: Atomics.load(m, S_BUMP) - Atomics.load(m, S_TOP),
    };
  }

  /** One VM's counters (kept in its table, so any thread's view reports them). */
  vmStats(p2m: P2m): VmSwapStats {
    return { ...p2m.swapCounts(), pages_swapped: p2m.stats().pages_swapped };
  }

  /** FrameReclaimer: frees at least one frame, never touching (requester, exceptGpn). */
  reclaim(requester: P2m, exceptGpn: number): ReclaimFailure | null {
    for (let round = 0; this.pool.framesFree === 0; round++) {
      if (round === MAX_RECLAIM_ROUNDS) return { kind: 'no-memory', message: `the frame pool is exhausted after ${round} rounds of swapping` };
      const why = this.evictOne(requester, exceptGpn);
      if (why !== null) return why;
    }
    return null;
  }

  /**
   * Swaps out up to `pages` pages whose eviction frees a frame, chosen as
   * for a reclaim (a host policy shrinking the pool's use ahead of need;
   * shared frames are left alone). Returns how many pages went out; stops
   * at the first failure or when no such page remains.
   */
  evict(pages: number): number {
    let n = 0;
    while (n < pages && this.pickVictim(null, -1)) {
      const rec = this.victimVm!;
      if (this.evictPage(rec, this.victimGpn) !== null) break;
      n++;
    }
    return n;
  }

  /**
   * Swaps out up to `pages` of one VM's pages whose eviction frees a frame
   * (the allocation policy's swap request for that VM; the host calls it
   * with the VM stopped at a safe point). Returns how many went out.
   */
  evictFrom(p2m: P2m, pages: number): number {
    const rec = this.byP2m.get(p2m);
    if (rec === undefined) throw new Error(`${p2m.name}: not registered with this host swap`);
    const only = [rec];
    let n = 0;
    while (n < pages && this.pickVictim(null, -1, only)) {
      if (this.evictPage(rec, this.victimGpn) !== null) break;
      n++;
    }
    return n;
  }

  /** FrameReclaimer: reads slot `slot` into `frame` and releases the slot. */
  swapIn(_requester: P2m, slot: number, frame: number): string | null {
    const buf = this.staging;
    const err = this.store.read(slot, buf);
    if (err !== null) return err;
    this.pool.u8.set(buf, this.pool.offset(frame));
    this.releaseSlot(slot);
    Atomics.add(this.meta, S_PAGES_IN, 1);
    return null;
  }

  /** FrameReclaimer: releases a slot (LIFO: the next swap-out reuses it), under the pool lock. */
  releaseSlot(slot: number): void {
    const m = this.meta;
    this.pool.lock();
    if (!(slot >= 0 && slot < m[S_BUMP]!)) { this.pool.unlock(); throw new Error(`host swap: release of unused slot ${slot}`); } // a host bug
    this.slotFree[m[S_TOP]!] = slot;
    m[S_TOP]!++;
    this.pool.unlock();
  }

  // ---- Internals ----

  /** One round of a reclaim: a private victim, else every mapping of one shared frame. */
  private evictOne(except: P2m | null, exceptGpn: number): ReclaimFailure | null {
    if (this.pickVictim(except, exceptGpn)) return this.evictPage(this.victimVm!, this.victimGpn);
    const f = this.victimShared;
    if (f < 0) return { kind: 'no-memory', message: `the frame pool is exhausted (${this.pool.framesTotal} frames) and no other page can be swapped out` };
    // Every mapping must be in a registered table (on a VM's thread, its own): else swapping them out frees nothing.
    let mapped = 0;
    for (const rec of this.vms) {
      const t = rec.p2m.table;
      for (let g = 0; g < t.length; g++) { const e = t[g]!; if (e >= 0 && (e & P2M_FRAME_MASK) === f) mapped++; }
    }
    if (mapped < this.pool.refcount(f)) return { kind: 'no-memory', message: `the frame pool is exhausted (${this.pool.framesTotal} frames) and the only pages left to swap out are shared with VMs this thread may not touch` };
    for (const rec of this.vms) {
      const t = rec.p2m.table;
      for (let g = 0; g < t.length; g++) {
        const e = t[g]!;
        if (e < 0 || (e & P2M_FRAME_MASK) !== f) continue;
        const why = this.evictPage(rec, g);
        if (why !== null) return why;
        if (this.pool.refcount(f) === 0) return null;
      }
    }
    return null;
  }

  /**
   * Finds a page whose eviction frees a frame (its frame has no other
   * mapping): SWAP_SAMPLE_PAGES random samples, then a sweep from a random
   * start, over `vms` (every registered VM by default). Sets
   * victimVm/victimGpn and returns true; else false, with
   * victimShared the least-mapped shared frame that (except, exceptGpn)
   * does not map, or -1.
   */
  private pickVictim(except: P2m | null, exceptGpn: number, vms: readonly VmRecord[] = this.vms): boolean {
    const pool = this.pool;
    this.victimVm = null; this.victimGpn = -1; this.victimShared = -1;
    let total = 0;
    for (const rec of vms) total += rec.p2m.table.length;
    if (total === 0) return false;
    const ex = except === null ? -1 : except.entry(exceptGpn);
    const avoid = ex >= 0 ? ex & P2M_FRAME_MASK : -1; // a shared frame the requester maps cannot be freed for it
    for (let s = 0; s < SWAP_SAMPLE_PAGES; s++) {
      let k = Math.floor((this.rng() / 4294967296) * total);
      for (const rec of vms) {
        const t = rec.p2m.table;
        if (k >= t.length) { k -= t.length; continue; }
        const e = t[k]!;
        if (e > 0 && (e & P2M_FRAME_MASK) !== 0 && pool.refcount(e & P2M_FRAME_MASK) === 1 && !(rec.p2m === except && k === exceptGpn)) {
          this.victimVm = rec; this.victimGpn = k;
          return true;
        }
        break;
      }
    }
    // The sweep: every page once, from a random start.
    let bestRefs = Infinity;
    const start = Math.floor((this.rng() / 4294967296) * total);
    let vi = 0, g = start;
    while (g >= vms[vi]!.p2m.table.length) { g -= vms[vi]!.p2m.table.length; vi++; }
    for (let n = 0; n < total; n++) {
      const rec = vms[vi]!, t = rec.p2m.table;
      const e = t[g]!;
      if (e > 0) {
        const f = e & P2M_FRAME_MASK;
        if (f !== 0 && !(rec.p2m === except && g === exceptGpn)) {
          const r = pool.refcount(f);
          if (r === 1) { this.victimVm = rec; this.victimGpn = g; return true; }
          if ((e & P2M_SHARED) !== 0 && f !== avoid && r < bestRefs) { bestRefs = r; this.victimShared = f; }
        }
      }
      if (++g === t.length) { g = 0; vi = (vi + 1) % vms.length; }
    }
    return false;
  }

  /** Writes page `gpn` of `rec` to a fresh slot and tags it swapped; the page stays resident on failure. */
  private evictPage(rec: VmRecord, gpn: number): ReclaimFailure | null {
    const p2m = rec.p2m, pool = this.pool;
    const f = p2m.entry(gpn) & P2M_FRAME_MASK;
    const slot = this.allocSlot();
    if (slot < 0) return { kind: 'swap-full', message: `host swap is full (${this.slots} slots)` };
    const buf = this.staging;
    buf.set(pool.u8.subarray(pool.offset(f), pool.offset(f) + FRAME_SIZE));
    const err = this.store.write(slot, buf);
    if (err !== null) {
      this.releaseSlot(slot);
      return { kind: 'swap-write', message: `swap-out of ${p2m.name} page 0x${gpn.toString(16)} failed: ${err}` };
    }
    if (p2m.swapOut(gpn, slot) < 0) { this.releaseSlot(slot); return { kind: 'no-memory', message: `${p2m.name} page 0x${gpn.toString(16)} cannot be swapped out` }; }
    Atomics.add(this.meta, S_PAGES_OUT, 1);
    return null;
  }

  /** A free slot, or -1; under the pool lock (every thread's HostSwap shares the map). */
  private allocSlot(): number {
    const m = this.meta;
    let slot = -1;
    this.pool.lock();
    const top = m[S_TOP]!;
    if (top > 0) { slot = this.slotFree[top - 1]!; m[S_TOP] = top - 1; }
    else if (m[S_BUMP]! < this.slots) { slot = m[S_BUMP]!; m[S_BUMP] = slot + 1; }
    this.pool.unlock();
    return slot;
  }
}
