/**
 * virtio-balloon, the traditional memory balloon (virtio 1.2 §5.5): the host
 * sets a target (`num_pages`, in 4 KiB pages) and the guest driver hands that
 * many pages over through the inflate queue, takes them back through the
 * deflate queue, and reports how many it holds in `actual`. With
 * VIRTIO_BALLOON_F_STATS_VQ the driver also keeps one statistics buffer
 * queued, which the device returns whenever it wants fresh numbers.
 *
 * What "released" means here, honestly: guest RAM is a WebAssembly.Memory,
 * which can only grow — JavaScript has no way to unmap or madvise(DONTNEED)
 * a range of it, so the host process's RSS cannot shrink when the guest
 * inflates the balloon. What the device does:
 *  - each inflated page is checked and, if it holds data, zeroed (a page
 *    that is already all zero is left alone, so an untouched page is never
 *    faulted in by the zeroing), and it is counted as released in the
 *    `RamAccounting`;
 *  - zeroed pages are cheap for the host to reclaim by other means (zram or
 *    swap compresses them to nothing; a later snapshot or migration can
 *    skip them), and tsvm's accounting excludes them from the guest's use;
 *  - deflated pages are handed back and counted as the guest's again.
 * Pages the host OS has never touched (never written by the guest) cost no
 * host memory in the first place; the balloon cannot turn touched pages
 * back into untouched ones.
 *
 * VIRTIO_BALLOON_F_DEFLATE_ON_OOM is deliberately not offered: without it
 * Linux's driver takes ballooned pages out of its managed-page count, so
 * the guest's MemTotal drops as the balloon inflates (and the guest cannot
 * quietly deflate under memory pressure).
 */
import type { VirtioDevice, VirtioContext } from './mmio.js';
import { VirtqError, dmaHost, type DmaMemory } from './queue.js';

/** Device ID of the memory balloon (virtio 1.2 §5: 5). */
export const VIRTIO_ID_BALLOON = 5;
/** Feature bits (virtio 1.2 §5.5.3). */
export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0, VIRTIO_BALLOON_F_STATS_VQ = 1, VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
/** Virtqueue indices (virtio 1.2 §5.5.2): inflateq, deflateq, statsq. */
export const BALLOON_Q_INFLATE = 0, BALLOON_Q_DEFLATE = 1, BALLOON_Q_STATS = 2;
/** Balloon page size: PFNs are guest-physical addresses shifted right by 12 (virtio 1.2 §5.5.6). */
export const BALLOON_PAGE_SHIFT = 12;
/** Bytes per balloon page (virtio 1.2 §5.5.6). */
export const BALLOON_PAGE_SIZE = 1 << BALLOON_PAGE_SHIFT;
/** Bytes of one `struct virtio_balloon_stat`: le16 tag + le64 val, packed (virtio 1.2 §5.5.6.3). */
export const BALLOON_STAT_BYTES = 10;
/** Config space offsets (virtio 1.2 §5.5.4): le32 num_pages, le32 actual. */
const CFG_NUM_PAGES = 0, CFG_ACTUAL = 4, CFG_BYTES = 16;

/**
 * Statistic names by tag: 0-9 from virtio 1.2 §5.5.6.3; 10-15 are later
 * additions in Linux's uapi <linux/virtio_balloon.h> (Linux 6.12 sends them).
 * Unknown tags are kept as `tag-N`.
 */
export const BALLOON_STAT_NAMES: readonly string[] = [
  'swap-in', 'swap-out', 'major-faults', 'minor-faults', 'free-memory', 'total-memory',
  'available-memory', 'disk-caches', 'hugetlb-allocations', 'hugetlb-failures',
  'oom-kills', 'alloc-stalls', 'async-scans', 'direct-scans', 'async-reclaims', 'direct-reclaims',
];

/** The guest's memory statistics, by name (bytes for memory amounts, counts otherwise). */
export type BalloonStats = Record<string, number>;

/** Parses a stats buffer: packed {le16 tag; le64 val} entries (virtio 1.2 §5.5.6.3); a trailing partial entry is ignored. */
export function parseBalloonStats(buf: Uint8Array): BalloonStats {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength), out: BalloonStats = {};
  for (let o = 0; o + BALLOON_STAT_BYTES <= buf.length; o += BALLOON_STAT_BYTES) {
    const tag = dv.getUint16(o, true);
    const val = dv.getUint32(o + 6, true) * 4294967296 + dv.getUint32(o + 2, true);
    out[BALLOON_STAT_NAMES[tag] ?? `tag-${tag}`] = val;
  }
  return out;
}

/** A snapshot of the host-side accounting of guest RAM. */
export interface RamUsage {
  /** Guest RAM size in bytes. */
  totalBytes: number;
  /** Bytes currently given up by the guest through the balloon (zeroed and excluded). */
  releasedBytes: number;
  /** Pages released and reclaimed over the VM's life. */
  releasedTotalPages: number;
  reclaimedTotalPages: number;
  /** Pages the balloon had to zero because they held data (the rest were already zero). */
  zeroedPages: number;
  /**
   * Only with a scan: bytes of guest RAM that are not all zero — a lower
   * bound on what the guest has touched (touched pages the guest later zeroed
   * are still resident on the host but read as zero).
   */
  nonZeroBytes?: number;
  /** Only with a scan: released pages the guest wrote to after giving them up (a driver bug). */
  releasedDirtyPages?: number;
}

/**
 * Host-side accounting of one board's guest RAM in 4 KiB pages: which pages
 * the guest has released through the balloon, plus an on-demand scan for
 * pages holding data. Released pages are zeroed by the balloon; WebAssembly
 * memory cannot be unmapped, so the host's RSS does not shrink (see the file
 * comment) — "released" is tsvm's accounting, not an OS-level unmap.
 */
export class RamAccounting {
  /** Guest-physical address of the first byte of RAM. */
  readonly base: number;
  /** RAM size in bytes (a multiple of 4 KiB). */
  readonly size: number;
  /** Number of 4 KiB pages. */
  readonly pages: number;
  private readonly released: Uint8Array;
  /** Pages currently released. */
  releasedPages = 0;
  /** Pages released and reclaimed over the VM's life, and pages the balloon had to zero. */
  releasedTotal = 0;
  reclaimedTotal = 0;
  zeroedPages = 0;

  constructor(base: number, size: number) {
    this.base = base;
    this.pages = Math.floor(size / BALLOON_PAGE_SIZE);
    this.size = this.pages * BALLOON_PAGE_SIZE;
    this.released = new Uint8Array(this.pages);
  }

  /** Page index of guest-physical page frame number `pfn`, or -1 if it is not in RAM. */
  pageOfPfn(pfn: number): number {
    const i = pfn - this.base / BALLOON_PAGE_SIZE;
    return Number.isInteger(i) && i >= 0 && i < this.pages ? i : -1;
  }

  /** Whether page `i` is currently released. */
  isReleased(i: number): boolean { return this.released[i] === 1; }

  /** Marks page `i` released; true if it was not already. */
  release(i: number): boolean {
    if (this.released[i] !== 0) return false;
    this.released[i] = 1; this.releasedPages++; this.releasedTotal++;
    return true;
  }

  /** Marks page `i` the guest's again; true if it was released. */
  reclaim(i: number): boolean {
    if (this.released[i] !== 1) return false;
    this.released[i] = 0; this.releasedPages--; this.reclaimedTotal++;
    return true;
  }

  /** Returns every released page to the guest (device reset: the driver no longer tracks them). */
  reclaimAll(): void {
    this.reclaimedTotal += this.releasedPages;
    this.released.fill(0);
    this.releasedPages = 0;
  }

  /**
   * The current accounting; with `ram` (the byte view of guest RAM, page 0
   * at index 0) also scans every page for data — O(RAM size), so only for
   * reports, not for every query.
   */
  usage(ram?: Uint8Array): RamUsage {
    const u: RamUsage = {
      totalBytes: this.size, releasedBytes: this.releasedPages * BALLOON_PAGE_SIZE,
      releasedTotalPages: this.releasedTotal, reclaimedTotalPages: this.reclaimedTotal, zeroedPages: this.zeroedPages,
    };
    if (ram) {
      let nonZero = 0, dirty = 0;
      const words = wordsOf(ram);
      for (let i = 0; i < this.pages; i++) {
        if (!pageIsZero(ram, words, i * BALLOON_PAGE_SIZE)) { nonZero++; if (this.released[i]) dirty++; }
      }
      u.nonZeroBytes = nonZero * BALLOON_PAGE_SIZE;
      u.releasedDirtyPages = dirty;
    }
    return u;
  }
}

/** A 32-bit view of `u8` when it is 4-byte aligned (for fast zero checks), else null. */
function wordsOf(u8: Uint8Array): Uint32Array | null {
  return u8.byteOffset % 4 === 0 ? new Uint32Array(u8.buffer, u8.byteOffset, Math.floor(u8.byteLength / 4)) : null;
}

/** Whether the 4 KiB page at byte offset `off` is all zero (reads only: never faults a host page in for writing). */
function pageIsZero(u8: Uint8Array, words: Uint32Array | null, off: number): boolean {
  if (words) {
    for (let w = off >> 2, end = w + BALLOON_PAGE_SIZE / 4; w < end; w++) if (words[w] !== 0) return false;
    return true;
  }
  for (let k = off, end = off + BALLOON_PAGE_SIZE; k < end; k++) if (u8[k] !== 0) return false;
  return true;
}

/** Construction options for the balloon. */
export interface BalloonOptions {
  /** Wakes the VMM's run loop after an interrupt raised outside a guest access (a stats request from a timer). */
  wake?: () => void;
  /** Called when the guest changes `actual` (bytes of logical VM size, as query-balloon reports it). */
  onActualChange?: (actualBytes: number) => void;
}

/** The virtio memory balloon. */
export class VirtioBalloon implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_BALLOON;
  readonly name = 'balloon';
  readonly numQueues = 3;
  readonly featuresLo = (1 << VIRTIO_BALLOON_F_MUST_TELL_HOST) | (1 << VIRTIO_BALLOON_F_STATS_VQ);
  readonly featuresHi = 0;
  /** Called when the guest changes `actual` (see BalloonOptions). */
  onActualChange: ((actualBytes: number) => void) | null;
  /** The latest statistics the guest reported, or null before the first report. */
  stats: BalloonStats | null = null;
  /** Host time (Date.now()) of the latest statistics, and how many reports arrived. */
  statsTime = 0;
  statsReports = 0;
  /** Pages inflated and deflated over the device's life (as the guest sent them, duplicates included). */
  inflatedPages = 0;
  deflatedPages = 0;
  private acc: RamAccounting | null = null;
  private ctx: VirtioContext | null = null;
  private readonly wake: () => void;
  private targetBytes: number | null = null;
  private numPages = 0;
  private actualPages = 0;
  /** Head of the stats buffer the device holds, or -1 (virtio 1.2 §5.5.6.3). */
  private statsHead = -1;
  private readonly cfg = new Uint8Array(CFG_BYTES);
  private readonly cfgView = new DataView(this.cfg.buffer);
  private words: Uint32Array | null = null;
  private wordsOf: Uint8Array | null = null;

  constructor(opts: BalloonOptions = {}) {
    this.wake = opts.wake ?? (() => {});
    this.onActualChange = opts.onActualChange ?? null;
  }

  /** Uses the board's RAM accounting (otherwise one is created from the transport's RAM on activation). */
  attach(acc: RamAccounting): void {
    this.acc = acc;
    this.recompute();
  }

  /** The RAM accounting in use, or null before `attach` or activation. */
  get accounting(): RamAccounting | null { return this.acc; }

  /** Guest RAM size in bytes, or 0 while unknown. */
  get ramBytes(): number { return this.acc?.size ?? 0; }

  /** The target in pages the guest is asked to give up (config `num_pages`). */
  get targetPages(): number { return this.numPages; }

  /** Pages the guest reports it holds in the balloon (config `actual`). */
  get actual(): number { return this.actualPages; }

  /**
   * Sets the VM's target logical size in bytes, as QMP `balloon` does:
   * num_pages = (RAM - target) / 4 KiB, a target above RAM meaning none.
   */
  setTarget(bytes: number): void {
    this.targetBytes = Math.max(0, bytes);
    this.recompute();
  }

  /** The logical size of the VM in bytes (RAM minus the balloon), as QMP `query-balloon` reports it. */
  actualBytes(): number { return Math.max(0, this.ramBytes - this.actualPages * BALLOON_PAGE_SIZE); }

  private recompute(): void {
    const ram = this.ramBytes;
    const pages = this.targetBytes === null || ram === 0 ? 0 : Math.floor((ram - Math.min(this.targetBytes, ram)) / BALLOON_PAGE_SIZE);
    if (pages === this.numPages) return;
    this.numPages = pages;
    if (this.ctx) this.ctx.configChanged(); // virtio 1.2 §5.5.6: the driver re-reads num_pages on a config change
    this.wake();
  }

  configRead(offset: number, size: number): number {
    this.cfgView.setUint32(CFG_NUM_PAGES, this.numPages, true);
    this.cfgView.setUint32(CFG_ACTUAL, this.actualPages, true);
    if (offset < 0 || offset + size > CFG_BYTES) return 0;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.cfg[offset + i]!;
    return v | 0;
  }

  configWrite(offset: number, size: number, value: number): void {
    // Only `actual` is written by the driver (virtio 1.2 §5.5.6.1); num_pages is the device's.
    if (offset < CFG_ACTUAL || offset + size > CFG_ACTUAL + 4) return;
    this.cfgView.setUint32(CFG_ACTUAL, this.actualPages, true);
    for (let i = 0; i < size; i++) this.cfg[offset + i] = (value >>> (8 * i)) & 0xff;
    const actual = this.cfgView.getUint32(CFG_ACTUAL, true);
    if (actual === this.actualPages) return;
    this.actualPages = actual;
    this.onActualChange?.(this.actualBytes());
  }

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    if (!this.acc) this.attach(new RamAccounting(ctx.mem.base, ctx.mem.size));
    // The driver may have queued buffers (Linux queues its first stats buffer) before DRIVER_OK.
    for (let q = 0; q < this.numQueues; q++) this.queueNotify(ctx, q);
  }

  reset(): void {
    // After a reset the driver no longer tracks any balloon pages: they are all the guest's again.
    this.acc?.reclaimAll();
    this.ctx = null;
    this.statsHead = -1;
    if (this.actualPages !== 0) { this.actualPages = 0; this.onActualChange?.(this.actualBytes()); }
  }

  queueNotify(ctx: VirtioContext, q: number): void {
    if (q === BALLOON_Q_INFLATE || q === BALLOON_Q_DEFLATE) this.pages(ctx, q);
    else if (q === BALLOON_Q_STATS) this.statsIn(ctx);
  }

  /** Processes inflate or deflate requests: arrays of le32 PFNs (virtio 1.2 §5.5.6). */
  private pages(ctx: VirtioContext, q: number): void {
    const queue = ctx.queues[q]!, chain = ctx.chain, acc = this.acc!, inflate = q === BALLOON_Q_INFLATE;
    const mem = ctx.mem;
    let used = false;
    while (queue.pop(mem, chain)) {
      const bytes = chain.read(mem, 0, chain.readBytes);
      if (bytes.length % 4 !== 0) throw new VirtqError(`balloon: PFN array of ${bytes.length} bytes is not a whole number of le32 PFNs`);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), n = bytes.length / 4;
      const idx = new Int32Array(n);
      // Validate the whole request before changing anything (virtio 1.2 §2.1.2: a bad request resets the device).
      for (let k = 0; k < n; k++) {
        const pfn = dv.getUint32(4 * k, true), i = acc.pageOfPfn(pfn);
        if (i < 0) throw new VirtqError(`balloon: ${inflate ? 'inflate' : 'deflate'} PFN 0x${pfn.toString(16)} is outside guest RAM`);
        idx[k] = i;
      }
      for (let k = 0; k < n; k++) {
        const i = idx[k]!;
        if (inflate) {
          if (acc.release(i)) this.zeroPage(mem, i);
        } else {
          acc.reclaim(i);
        }
      }
      if (inflate) this.inflatedPages += n; else this.deflatedPages += n;
      queue.push(mem, chain.head, 0);
      used = true;
    }
    if (used) ctx.notifyUsed(q);
  }

  /** Zeroes RAM page `i` unless it already is zero (so untouched host pages stay untouched). */
  private zeroPage(mem: DmaMemory, i: number): void {
    const gpa = i * BALLOON_PAGE_SIZE + this.acc!.base, rel = gpa - mem.base;
    if (rel < 0 || rel + BALLOON_PAGE_SIZE > mem.size) return;
    if (this.wordsOf !== mem.u8) { this.wordsOf = mem.u8; this.words = wordsOf(mem.u8); }
    if (pageIsZero(mem.u8, this.words, dmaHost(mem, gpa, BALLOON_PAGE_SIZE, false))) return;
    const off = dmaHost(mem, gpa, BALLOON_PAGE_SIZE, true);
    mem.u8.fill(0, off, off + BALLOON_PAGE_SIZE);
    mem.written?.(off, BALLOON_PAGE_SIZE);
    this.acc!.zeroedPages++;
  }

  /** Takes the driver's stats buffer: parses it and holds it until the next request (virtio 1.2 §5.5.6.3). */
  private statsIn(ctx: VirtioContext): void {
    if ((ctx.featuresLo & (1 << VIRTIO_BALLOON_F_STATS_VQ)) === 0) return;
    const queue = ctx.queues[BALLOON_Q_STATS]!, chain = ctx.chain;
    while (queue.pop(ctx.mem, chain)) {
      if (this.statsHead >= 0) {
        // The driver keeps one buffer outstanding; a second one means the first is stale: give it back.
        queue.push(ctx.mem, this.statsHead, 0);
        ctx.notifyUsed(BALLOON_Q_STATS);
      }
      this.stats = parseBalloonStats(chain.read(ctx.mem, 0, chain.readBytes));
      this.statsTime = Date.now();
      this.statsReports++;
      this.statsHead = chain.head;
    }
  }

  /**
   * Asks the guest for fresh statistics by returning the buffer it left
   * with the device; the driver refills and requeues it. False when there
   * is nothing to return (no driver, or a request is already pending).
   */
  requestStats(): boolean {
    const ctx = this.ctx;
    if (!ctx || this.statsHead < 0) return false;
    const queue = ctx.queues[BALLOON_Q_STATS]!;
    if (!queue.ready) return false;
    queue.push(ctx.mem, this.statsHead, 0);
    this.statsHead = -1;
    ctx.notifyUsed(BALLOON_Q_STATS);
    this.wake();
    return true;
  }

  /** One line for the end-of-run note: target, actual, released pages and the latest guest statistics. */
  summary(ram?: Uint8Array): string {
    const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
    const parts = [`balloon: target ${mib(this.numPages * BALLOON_PAGE_SIZE)}, guest gave up ${mib(this.actualPages * BALLOON_PAGE_SIZE)}`];
    if (this.acc) {
      const u = this.acc.usage(ram);
      parts.push(`host: ${mib(u.releasedBytes)} released (zeroed, excluded; WebAssembly memory cannot be unmapped, so RSS does not shrink)`);
      if (u.nonZeroBytes !== undefined) parts.push(`${mib(u.nonZeroBytes)} of RAM holds data`);
    }
    const s = this.stats;
    if (s) {
      const m = (k: string): string => (s[k] !== undefined ? mib(s[k]) : '?');
      parts.push(`guest stats: total ${m('total-memory')}, free ${m('free-memory')}, available ${m('available-memory')}`);
    }
    return parts.join('; ');
  }
}
