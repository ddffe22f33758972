/**
 * Content-based page sharing (Waldspurger, OSDI 2002, §4.2; Linux KSM,
 * Documentation/admin-guide/mm/ksm.rst): a rate-limited scanner finds
 * pages with identical contents, within one VM and across VMs, and maps
 * them all onto one read-only frame; a later write copies (p2m.ts, COW).
 *
 * Each call of `scan(budget)` visits `budget` guest pages, round-robin over
 * the registered p2m tables whose VM opted in (KSM's MADV_MERGEABLE; a VM
 * with sharing off is never scanned). For each private page:
 * 1. Hash the frame (hashFrame: 32 bits, no allocation).
 * 2. If the hash differs from the one recorded at the page's last visit,
 *    the page is changing: record the hash, count it `volatile`, move on
 *    (KSM's checksum test: merging a page about to change only costs a
 *    copy-on-write fault).
 * 3. An all-zero page merges into the canonical zero frame (KSM's
 *    use_zero_pages; ESX §4.2 found zero pages the main source of sharing).
 * 4. A hint table of shared frames by hash (ESX's "shared" hash-table
 *    entries, KSM's stable tree): a hit is compared in full, then merged.
 * 5. A hint table of unique candidate pages by hash (ESX's "hint" entries,
 *    KSM's unstable tree, emptied after every full scan as KSM does): a hit
 *    is compared in full; if equal, the candidate's frame becomes shared
 *    and this page merges into it; if the candidate changed since it was
 *    hashed, the candidate is volatile and this page takes its place.
 * A hash match alone never merges: every merge follows a full comparison.
 *
 * The hint tables are direct-mapped and allocated once: a colliding entry
 * replaces the older one, so a guest crafting hash collisions loses merges
 * (its own) but cannot grow host memory or lengthen a lookup.
 *
 * The scanner runs while no hart of a VM it scans is inside guest code (at
 * a safe point, or on the VMs' own thread); each remap is reported through
 * the table's `onRemap`. The hashing, most of a round's work, may be done
 * before that with the VMs running (`hashAhead`, as KSM hashes pages while
 * their process runs): a hash that went stale in between only loses or
 * delays a merge, as every merge is confirmed by a full comparison in
 * `scan`.
 */

import { FramePool, FRAME_WORDS, ZERO_FRAME } from './frame-pool.js';
import { P2m, P2M_SHARED, P2M_FRAME_MASK } from './p2m.js';

/** Pages one scan visits by default (ksm.rst, `pages_to_scan`: default 100, every `sleep_millisecs` = 20 ms). */
export const DEFAULT_PAGES_TO_SCAN = 100;
/**
 * Most hint-table slots (2^22: 4 M entries, 28 bytes each, 112 MiB): the tables
 * are sized from the pool, never from the guests, so no guest can grow
 * them; this caps what a misconfigured host allocates.
 */
const MAX_HINT_BITS = 22;
/** Fewest hint-table slots. */
const MIN_HINT_BITS = 10;

// Per-page scanner state (low two bits), and the flag saying the page's checksum is recorded.
const ST_NONE = 0, ST_VOLATILE = 1, ST_UNSHARED = 2, ST_MASK = 3, ST_HASHED = 4;

/**
 * A 32-bit hash of the FRAME_WORDS int32 words of `w` from word `base`:
 * MurmurHash3 x86_32's block mixing and finalizer (Austin Appleby, public
 * domain) over two interleaved lanes. Not cryptographic: a match is only
 * a hint, always confirmed by a full comparison (KSM uses xxhash likewise).
 */
export function hashFrame(w: Int32Array, base: number): number {
  let h1 = 0x9747b28c, h2 = 0x2f2b8a61;
  for (let i = base, end = base + FRAME_WORDS; i < end; i += 2) {
    let k1 = Math.imul(w[i]!, 0xcc9e2d51);
    k1 = Math.imul((k1 << 15) | (k1 >>> 17), 0x1b873593);
    h1 ^= k1; h1 = (h1 << 13) | (h1 >>> 19); h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
    let k2 = Math.imul(w[i + 1]!, 0xcc9e2d51);
    k2 = Math.imul((k2 << 15) | (k2 >>> 17), 0x1b873593);
    h2 ^= k2; h2 = (h2 << 13) | (h2 >>> 19); h2 = (Math.imul(h2, 5) + 0xe6546b64) | 0;
  }
  let h = h1 ^ Math.imul(h2, 0x85ebca6b) ^ (FRAME_WORDS * 4);
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Host-wide sharing counters, with KSM's names and meanings (ksm.rst, "KSM daemon sysfs interface"). */
export interface SharingStats {
  /** How many shared frames are in use (KSM: pages_shared). */
  pages_shared: number;
  /** How many more sites share them: the frames saved (KSM: pages_sharing). */
  pages_sharing: number;
  /** Pages scanned, unique, kept as merge candidates (KSM: pages_unshared). */
  pages_unshared: number;
  /** Pages changing too fast to be candidates (KSM: pages_volatile). */
  pages_volatile: number;
  /** Pages merged into the canonical zero frame (KSM: ksm_zero_pages). */
  pages_zero: number;
  /** Completed passes over every VM with sharing on (KSM: full_scans). */
  full_scans: number;
}

/**
 * One VM's sharing counters. A frame shared between two VMs counts in the
 * `pages_shared` of both, so per-VM values do not sum to the host's.
 */
export interface VmSharingStats {
  /** Whether the VM opted in. */
  sharing: boolean;
  /** Distinct shared frames this VM maps. */
  pages_shared: number;
  /** This VM's further pages mapping those frames (its pages on shared frames minus pages_shared). */
  pages_sharing: number;
  /** This VM's pages that were unique, stable candidates at their last visit. */
  pages_unshared: number;
  /** This VM's pages that were changing at their last visit. */
  pages_volatile: number;
  /** This VM's pages merged into the zero frame. */
  pages_zero: number;
  /** Completed passes over this VM. */
  full_scans: number;
}

interface ScanVm {
  p2m: P2m;
  sharing: boolean;
  /** Per page: the hash recorded at its last visit. */
  checksum: Uint32Array;
  /** Per page: ST_* state. */
  state: Uint8Array;
  unshared: number;
  volatile: number;
  fullScans: number;
}

/** The content-based page-sharing scanner over the p2m tables of one pool. */
export class PageSharing {
  /** The pool whose frames are merged. */
  readonly pool: FramePool;
  private readonly vms: ScanVm[] = [];
  private readonly zeroHash: number;
  private readonly hintMask: number;
  // Shared-frame hints: frame and hash per slot (-1: empty).
  private readonly stableFrame: Int32Array;
  private readonly stableHash: Uint32Array;
  // Candidate-page hints: valid while unstableGen[slot] === gen.
  private readonly unstableGen: Uint32Array;
  private readonly unstableHash: Uint32Array;
  private readonly unstableVm: Int32Array;
  private readonly unstableGpn: Int32Array;
  private readonly unstableFrame: Int32Array;
  private gen = 1;
  /** Per frame: the stamp of the last vmStats count that met it. */
  private readonly stamp: Uint32Array;
  private stampGen = 0;
  private cursorVm = 0;
  private cursorGpn = 0;
  private unshared = 0;
  private volatile = 0;
  private fullScans = 0;
  // Hashes computed by hashAhead for the next aheadN visits: the p2m entry each was computed from, and the hash.
  private aheadEntry = new Int32Array(0);
  private aheadHash = new Uint32Array(0);
  private aheadN = 0;
  /** Bumped whenever the order of visits changes (a VM registered, unregistered, or sharing switched). */
  private layout = 0;
  private aheadLayout = -1;

  /** A scanner for `pool`, with hint tables sized from its frame count (or 2^hintBits slots). */
  constructor(pool: FramePool, hintBits?: number) {
    this.pool = pool;
    const want = hintBits ?? Math.ceil(Math.log2(pool.frameCount));
    const bits = Math.max(MIN_HINT_BITS, Math.min(MAX_HINT_BITS, want | 0));
    const n = 1 << bits;
    this.hintMask = n - 1;
    this.stableFrame = new Int32Array(n).fill(-1);
    this.stableHash = new Uint32Array(n);
    this.unstableGen = new Uint32Array(n);
    this.unstableHash = new Uint32Array(n);
    this.unstableVm = new Int32Array(n);
    this.unstableGpn = new Int32Array(n);
    this.unstableFrame = new Int32Array(n);
    this.stamp = new Uint32Array(pool.frameCount);
    this.zeroHash = hashFrame(pool.i32, ZERO_FRAME * FRAME_WORDS);
  }

  /** Registers a VM's table; it is scanned only while `sharing` is on. */
  register(p2m: P2m, sharing: boolean): void {
    if (p2m.pool !== this.pool) throw new Error(`${p2m.name}: registered with the page sharing of another pool`);
    if (this.find(p2m) !== undefined) { this.setSharing(p2m, sharing); return; }
    const n = p2m.ramPages;
    this.vms.push({ p2m, sharing, checksum: new Uint32Array(n), state: new Uint8Array(n), unshared: 0, volatile: 0, fullScans: 0 });
    this.layout++;
  }

  /** Forgets a VM (torn down): its states leave the counters, its candidates the hint table. */
  unregister(p2m: P2m): void {
    const i = this.vms.findIndex((v) => v.p2m === p2m);
    if (i < 0) return;
    this.forget(this.vms[i]!);
    this.vms.splice(i, 1);
    if (this.cursorVm > i) this.cursorVm--;
    else if (this.cursorVm === i) this.cursorGpn = 0;
    this.gen++; // candidate hints hold VM indexes, now shifted
    this.layout++;
  }

  /** Turns sharing on or off for a VM (off: never scanned again; pages already merged stay merged until written). */
  setSharing(p2m: P2m, on: boolean): void {
    const v = this.find(p2m);
    if (v === undefined || v.sharing === on) return;
    v.sharing = on;
    this.layout++;
    if (!on) { this.forget(v); this.gen++; }
  }

  /** Host-wide counters (every VM of the pool must be registered, with sharing on or off). */
  stats(): SharingStats {
    let mapped = 0, zero = 0;
    for (const v of this.vms) { const s = v.p2m.stats(); mapped += s.pages_shared; zero += s.pages_zero; }
    const frames = this.pool.framesShared;
    return {
      pages_shared: frames, pages_sharing: mapped - frames, pages_unshared: this.unshared,
      pages_volatile: this.volatile, pages_zero: zero, full_scans: this.fullScans,
    };
  }

  /** One VM's counters (a pass over its table to count distinct shared frames: not for hot paths). */
  vmStats(p2m: P2m): VmSharingStats {
    const v = this.find(p2m);
    const s = p2m.stats();
    const t = p2m.table, stamp = this.stamp;
    const g = ++this.stampGen;
    let frames = 0;
    for (let i = 0; i < t.length; i++) {
      const e = t[i]!;
      if (e < 0 || (e & P2M_SHARED) === 0) continue;
      const f = e & P2M_FRAME_MASK;
      if (f === ZERO_FRAME || stamp[f] === g) continue;
      stamp[f] = g;
      frames++;
    }
    return {
      sharing: v?.sharing ?? false, pages_shared: frames, pages_sharing: s.pages_shared - frames,
      pages_unshared: v?.unshared ?? 0, pages_volatile: v?.volatile ?? 0, pages_zero: s.pages_zero, full_scans: v?.fullScans ?? 0,
    };
  }

  /**
   * Visits up to `budgetPages` guest pages (the rate limit: the host calls
   * this periodically, KSM's pages_to_scan per sleep_millisecs). Returns the
   * pages visited (0 when no VM has sharing on).
   */
  scan(budgetPages: number = DEFAULT_PAGES_TO_SCAN): number {
    const vms = this.vms;
    const ahead = this.aheadLayout === this.layout ? this.aheadN : 0;
    this.aheadN = 0;
    if (!vms.some((v) => v.sharing)) return 0;
    let visited = 0;
    while (visited < budgetPages) {
      if (this.cursorVm >= vms.length) this.endPass();
      const v = vms[this.cursorVm]!;
      if (!v.sharing) { this.cursorVm++; this.cursorGpn = 0; continue; }
      this.visit(this.cursorVm, this.cursorGpn, visited < ahead ? visited : -1);
      visited++;
      if (++this.cursorGpn >= v.state.length) {
        v.fullScans++;
        this.cursorGpn = 0;
        this.cursorVm++;
      }
    }
    while (this.cursorVm < vms.length && !vms[this.cursorVm]!.sharing) this.cursorVm++;
    if (this.cursorVm >= vms.length) this.endPass(); // count a pass as soon as it is complete
    return visited;
  }

  /**
   * Hashes the pages the next `scan(budgetPages)` will visit, in its order,
   * without changing any state, so that it can run while the VMs do: a
   * frame read while the guest writes it gives some hash, and `scan` uses
   * a hash only if the page still maps the frame it was computed from, and
   * merges only after a full comparison.
   */
  hashAhead(budgetPages: number = DEFAULT_PAGES_TO_SCAN): void {
    const vms = this.vms, pool = this.pool;
    this.aheadN = 0;
    if (!vms.some((v) => v.sharing)) return;
    if (this.aheadEntry.length < budgetPages) {
      this.aheadEntry = new Int32Array(budgetPages);
      this.aheadHash = new Uint32Array(budgetPages);
    }
    let vi = this.cursorVm, gpn = this.cursorGpn, n = 0;
    while (n < budgetPages) {
      if (vi >= vms.length) { vi = 0; gpn = 0; }
      const v = vms[vi]!;
      if (!v.sharing) { vi++; gpn = 0; continue; }
      const e = v.p2m.table[gpn]!;
      this.aheadEntry[n] = e;
      let f = e;
      if (e >= 0 && (e & P2M_SHARED) !== 0) {
        f = e & P2M_FRAME_MASK;
        if (f === ZERO_FRAME || pool.refcount(f) > 1) f = -1; // visit will not hash it
      }
      this.aheadHash[n] = f >= 0 ? hashFrame(pool.i32, f * FRAME_WORDS) : 0;
      n++;
      if (++gpn >= v.state.length) { gpn = 0; vi++; }
    }
    this.aheadN = n;
    this.aheadLayout = this.layout;
  }

  // ---- Internals ----

  private find(p2m: P2m): ScanVm | undefined {
    for (const v of this.vms) if (v.p2m === p2m) return v;
    return undefined;
  }

  private endPass(): void {
    this.cursorVm = 0;
    this.cursorGpn = 0;
    this.fullScans++;
    this.gen++; // empties the candidate table (KSM drops its unstable tree after each full scan)
  }

  /** Removes a VM's page states from the counters. */
  private forget(v: ScanVm): void {
    this.unshared -= v.unshared;
    this.volatile -= v.volatile;
    v.unshared = 0; v.volatile = 0;
    v.state.fill(0);
  }

  private setState(v: ScanVm, gpn: number, s: number): void {
    const st = v.state[gpn]!, old = st & ST_MASK;
    if (old === s) return;
    if (old === ST_VOLATILE) { v.volatile--; this.volatile--; } else if (old === ST_UNSHARED) { v.unshared--; this.unshared--; }
    if (s === ST_VOLATILE) { v.volatile++; this.volatile++; } else if (s === ST_UNSHARED) { v.unshared++; this.unshared++; }
    v.state[gpn] = (st & ~ST_MASK) | s;
  }

  /** Visits one page; `ahead` is its index in the hashAhead arrays, or -1. */
  private visit(vi: number, gpn: number, ahead: number): void {
    const v = this.vms[vi]!, p2m = v.p2m, pool = this.pool;
    let e = p2m.table[gpn]!;
    const mapped = e;
    if (e < 0) { this.setState(v, gpn, ST_NONE); return; } // unbacked, ballooned or swapped
    if ((e & P2M_SHARED) !== 0) {
      const sf = e & P2M_FRAME_MASK;
      // Already merged; a shared frame whose other mappings went away becomes private again, and a candidate.
      if (sf === ZERO_FRAME || pool.refcount(sf) > 1 || !p2m.unshareLonely(gpn)) { this.setState(v, gpn, ST_NONE); return; }
      e = sf;
    }
    const f = e;
    const h = ahead >= 0 && this.aheadEntry[ahead] === mapped ? this.aheadHash[ahead]! : hashFrame(pool.i32, f * FRAME_WORDS);
    const st = v.state[gpn]!;
    if ((st & ST_HASHED) === 0 || v.checksum[gpn] !== h) {
      v.checksum[gpn] = h;
      v.state[gpn] = st | ST_HASHED;
      this.setState(v, gpn, ST_VOLATILE);
      return;
    }
    if (h === this.zeroHash && pool.isZero(f)) {
      p2m.mergeZero(gpn);
      this.setState(v, gpn, ST_NONE);
      return;
    }
    const slot = h & this.hintMask;
    const sf = this.stableFrame[slot]!;
    if (sf > 0 && this.stableHash[slot] === h && pool.isShared(sf) && pool.equal(sf, f) && p2m.mergeInto(gpn, sf)) {
      this.setState(v, gpn, ST_NONE);
      return;
    }
    if (this.unstableGen[slot] === this.gen && this.unstableHash[slot] === h) {
      const qi = this.unstableVm[slot]!, qg = this.unstableGpn[slot]!, qf = this.unstableFrame[slot]!;
      const q = this.vms[qi];
      if (q !== undefined && q.sharing && !(qi === vi && qg === gpn) && q.p2m.table[qg] === qf) {
        if (pool.equal(qf, f)) {
          q.p2m.markShared(qg);
          p2m.mergeInto(gpn, qf);
          this.setState(q, qg, ST_NONE);
          this.setState(v, gpn, ST_NONE);
          this.stableFrame[slot] = qf;
          this.stableHash[slot] = h;
          this.unstableGen[slot] = 0;
          return;
        }
        if (hashFrame(pool.i32, qf * FRAME_WORDS) === h) { this.setState(v, gpn, ST_UNSHARED); return; } // a true collision: keep the older candidate
        this.setState(q, qg, ST_VOLATILE); // the candidate changed since it was hashed
      }
    }
    this.unstableGen[slot] = this.gen;
    this.unstableHash[slot] = h;
    this.unstableVm[slot] = vi;
    this.unstableGpn[slot] = gpn;
    this.unstableFrame[slot] = f;
    this.setState(v, gpn, ST_UNSHARED);
  }
}
