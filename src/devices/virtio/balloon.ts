/**
 * virtio-balloon, the traditional memory balloon (virtio 1.2 §5.5): the host
 * sets a target (`num_pages`, in 4 KiB pages) and the guest driver hands that
 * many pages over through the inflate queue, takes them back through the
 * deflate queue, and reports how many it holds in `actual`. Optional
 * features, each a device option (dev-balloon.ts) named as in QEMU:
 *  - VIRTIO_BALLOON_F_STATS_VQ (always offered): the driver keeps one
 *    statistics buffer queued, which the device returns whenever it wants
 *    fresh numbers — on `requestStats()`, on each QMP query-balloon, and
 *    every `statsPollingInterval` seconds when that is set (QEMU's
 *    guest-stats-polling-interval: after each report the device waits the
 *    interval, then asks again; 0, the default, is off).
 *  - VIRTIO_BALLOON_F_DEFLATE_ON_OOM (`deflate-on-oom`, default off, as in
 *    QEMU): Linux then leaves ballooned pages in its managed-page count and,
 *    when it runs out of memory, takes pages back from the balloon (1 MiB
 *    per OOM event) instead of killing a process. Off by default because
 *    then the guest's MemTotal drops as the balloon inflates (the guest
 *    sizes its caches for what it really has) and the host's target holds:
 *    a guest cannot quietly undo it. The many-VM host turns it on for VMs
 *    where a guest OOM is worse than a missed target.
 *  - VIRTIO_BALLOON_F_REPORTING (`free-page-reporting`, default off, as in
 *    QEMU): free page reporting (virtio 1.2 §5.5.6.6). The guest reports
 *    runs of free pages (Linux: 2 MiB or larger, 2 s after they are freed)
 *    as device-writable buffers on reporting_vq; the device hands each whole
 *    4 KiB page in them to the memory backend, which may discard it, and
 *    returns the buffers (used length 0). Buffers that are device-readable,
 *    empty or not page-aligned are ignored (partly: only whole pages count);
 *    a buffer outside guest RAM is a malformed chain (DEVICE_NEEDS_RESET).
 *  - VIRTIO_BALLOON_F_PAGE_POISON (`page-poison`, default on, as in QEMU):
 *    the driver writes `poison_val` (virtio 1.2 §5.5.6.5), the value free
 *    pages hold in the guest. Linux drops REPORTING when the guest poisons
 *    or zeroes free pages (page_poison=1, init_on_free=1) and PAGE_POISON is
 *    not offered; Linux clears PAGE_POISON itself when it does neither
 *    (Debian's default: init_on_free is off, page_poison=1 is opt-in), so
 *    with both offered reporting stays on in every case. While PAGE_POISON
 *    is negotiated, the backend gets `poison_val` as the fill pattern: a
 *    discarded page must read back as it (0 for zeroing guests).
 * Queue numbers follow the negotiated features: inflateq 0, deflateq 1,
 * then statsq, then reporting_vq, each only when negotiated (virtio 1.2
 * §5.5.2 lists them as 0-4 with absent queues skipped, which is what Linux
 * and QEMU do: with STATS_VQ, reporting_vq is queue 3; without, 2).
 *
 * The memory behind RAM is a `BalloonMemory` (balloon-memory.ts): the
 * device validates page numbers and calls inflate/deflate/report on it.
 * Its default, `RamAccounting`, is honest about what a WebAssembly.Memory
 * allows: nothing can be unmapped, so the host process's RSS cannot shrink.
 * It overwrites an inflated or reported page with the fill pattern unless
 * it already holds it (an untouched page is never faulted in), and counts
 * it: zeroed pages are cheap for the host to reclaim by other means (zram
 * or swap compress them to nothing; a snapshot can skip them). A backend
 * over a frame pool (src/memory/p2m.ts) returns the frames for real.
 */
import { directEntry, type GuestEntry, type VirtioDevice, type VirtioContext } from './mmio.js';
import { VirtqError } from './queue.js';
import { BALLOON_PAGE_SIZE, RamAccounting, type BalloonMemory } from './balloon-memory.js';

export { BALLOON_PAGE_SIZE, RamAccounting, type BalloonMemory, type RamUsage, type BalloonRam } from './balloon-memory.js';

/** Device ID of the memory balloon (virtio 1.2 §5: 5). */
export const VIRTIO_ID_BALLOON = 5;
/** Feature bits (virtio 1.2 §5.5.3). */
export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0, VIRTIO_BALLOON_F_STATS_VQ = 1, VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
/** Feature bits (virtio 1.2 §5.5.3): FREE_PAGE_HINT (not offered), PAGE_POISON, REPORTING. */
export const VIRTIO_BALLOON_F_FREE_PAGE_HINT = 3, VIRTIO_BALLOON_F_PAGE_POISON = 4, VIRTIO_BALLOON_F_REPORTING = 5;
/** Virtqueue indices (virtio 1.2 §5.5.2): inflateq, deflateq, and statsq when STATS_VQ is negotiated. */
export const BALLOON_Q_INFLATE = 0, BALLOON_Q_DEFLATE = 1, BALLOON_Q_STATS = 2;
/** Balloon page size: PFNs are guest-physical addresses shifted right by 12 (virtio 1.2 §5.5.6). */
export const BALLOON_PAGE_SHIFT = 12;
/** Bytes of one `struct virtio_balloon_stat`: le16 tag + le64 val, packed (virtio 1.2 §5.5.6.3). */
export const BALLOON_STAT_BYTES = 10;
/** Config space offsets (virtio 1.2 §5.5.4): le32 num_pages, actual, free_page_hint_cmd_id, poison_val. */
const CFG_NUM_PAGES = 0, CFG_ACTUAL = 4, CFG_POISON = 12, CFG_BYTES = 16;

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

/** QEMU's names for the same tags, as its `guest-stats` QOM property reports them (hw/virtio/virtio-balloon.c). */
export const QEMU_BALLOON_STAT_NAMES: readonly string[] = [
  'stat-swap-in', 'stat-swap-out', 'stat-major-faults', 'stat-minor-faults', 'stat-free-memory', 'stat-total-memory',
  'stat-available-memory', 'stat-disk-caches', 'stat-htlb-pgalloc', 'stat-htlb-pgfail',
  'stat-oom-kills', 'stat-alloc-stalls', 'stat-async-scans', 'stat-direct-scans', 'stat-async-reclaims', 'stat-direct-reclaims',
];

/** The guest's memory statistics, by name (bytes for memory amounts, counts otherwise). */
export type BalloonStats = Record<string, number>;

/** The latest statistics and when they arrived. */
export interface BalloonStatsSnapshot {
  /** The values, by BALLOON_STAT_NAMES name. */
  stats: BalloonStats;
  /** Host time (ms since the epoch) they arrived. */
  time: number;
  /** Reports received so far. */
  reports: number;
}

/** The device's counters, named for JSON (pages are 4 KiB). */
export interface BalloonCounters {
  /** Pages in the balloon now (the driver's `actual`). */
  pages_ballooned: number;
  /** Pages that went into / came out of the balloon over the VM's life (repeats of a page already there not counted). */
  pages_inflated: number;
  pages_deflated: number;
  /** Whole pages the guest reported free over the VM's life, and the report buffers that carried them. */
  pages_reported: number;
  reports: number;
  /** Statistics buffers received. */
  stats_reports: number;
}

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

/** Arms a one-shot timer; returns its cancel function (the host's timers, injected). */
export type BalloonTimer = (fn: () => void, ms: number) => () => void;

/** Construction options for the balloon. */
export interface BalloonOptions {
  /** Wakes the VMM's run loop after an interrupt raised outside a guest access (a stats request from a timer). */
  wake?: () => void;
  /** Runs a polling timer's stats request, which touches guest memory. */
  enter?: GuestEntry;
  /** Called when the guest changes `actual` (bytes of logical VM size, as query-balloon reports it). */
  onActualChange?: (actualBytes: number) => void;
  /** Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM (default off; see the file comment). */
  deflateOnOom?: boolean;
  /** Offer VIRTIO_BALLOON_F_REPORTING and its queue (default off). */
  freePageReporting?: boolean;
  /** Offer VIRTIO_BALLOON_F_PAGE_POISON (default on). */
  pagePoison?: boolean;
  /** Seconds between statistics requests; 0 (default) polls only on request. */
  statsPollingInterval?: number;
  /** The host's one-shot timers, for polling; without one, polling is unavailable. */
  timer?: BalloonTimer;
  /** Wall-clock time in ms since the epoch, for statistics timestamps (default Date.now). */
  now?: () => number;
  /** The device's id (-device ...,id=ID), which names it in QOM paths. */
  id?: string;
}

/** The virtio memory balloon. */
export class VirtioBalloon implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_BALLOON;
  readonly name = 'balloon';
  /** inflateq, deflateq, statsq, and reporting_vq when REPORTING is offered. */
  readonly numQueues: number;
  readonly featuresLo: number;
  readonly featuresHi = 0;
  /** The -device id, or null. */
  readonly id: string | null;
  /** Called when the guest changes `actual` (see BalloonOptions). */
  onActualChange: ((actualBytes: number) => void) | null;
  /** The latest statistics the guest reported, or null before the first report. */
  stats: BalloonStats | null = null;
  /** Host time (ms since the epoch) of the latest statistics, and how many reports arrived. */
  statsTime = 0;
  statsReports = 0;
  /** Pages inflated and deflated over the device's life (as the guest sent them, duplicates included). */
  inflatedPages = 0;
  deflatedPages = 0;
  private newlyInflated = 0;
  private newlyDeflated = 0;
  private reportedPages = 0;
  private reportBuffers = 0;
  private backend: BalloonMemory | null = null;
  private ctx: VirtioContext | null = null;
  private readonly wake: () => void;
  private readonly enter: GuestEntry;
  private readonly timer: BalloonTimer | null;
  private readonly now: () => number;
  private pollSeconds = 0;
  private cancelPoll: (() => void) | null = null;
  private targetBytes: number | null = null;
  private numPages = 0;
  private actualPages = 0;
  private poisonVal = 0;
  /** Queue numbers of statsq and reporting_vq for the negotiated features, or -1 (see the file comment). */
  private qStats = -1;
  private qReport = -1;
  /** Head of the stats buffer the device holds, or -1 (virtio 1.2 §5.5.6.3). */
  private statsHead = -1;
  private readonly cfg = new Uint8Array(CFG_BYTES);
  private readonly cfgView = new DataView(this.cfg.buffer);

  constructor(opts: BalloonOptions = {}) {
    this.wake = opts.wake ?? (() => {});
    this.enter = opts.enter ?? directEntry;
    this.onActualChange = opts.onActualChange ?? null;
    this.timer = opts.timer ?? null;
    this.now = opts.now ?? Date.now;
    this.id = opts.id ?? null;
    let f = (1 << VIRTIO_BALLOON_F_MUST_TELL_HOST) | (1 << VIRTIO_BALLOON_F_STATS_VQ);
    if (opts.deflateOnOom) f |= 1 << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
    if (opts.pagePoison ?? true) f |= 1 << VIRTIO_BALLOON_F_PAGE_POISON;
    if (opts.freePageReporting) f |= 1 << VIRTIO_BALLOON_F_REPORTING;
    this.featuresLo = f;
    this.numQueues = opts.freePageReporting ? 4 : 3;
    if (opts.statsPollingInterval) this.statsPollingInterval = opts.statsPollingInterval;
  }

  /** Uses `mem` as the memory behind guest RAM (otherwise a RamAccounting over the transport's RAM is made on activation). */
  attach(mem: BalloonMemory): void {
    this.backend = mem;
    this.recompute();
  }

  /** The memory backend, or null before `attach` or activation. */
  get memory(): BalloonMemory | null { return this.backend; }

  /** The backend when it is the default RamAccounting (its usage is what QMP shows), else null. */
  get accounting(): RamAccounting | null { return this.backend instanceof RamAccounting ? this.backend : null; }

  /** Guest RAM size in bytes, or 0 while unknown. */
  get ramBytes(): number { return (this.backend?.pages ?? 0) * BALLOON_PAGE_SIZE; }

  /** The target in pages the guest is asked to give up (config `num_pages`). */
  get targetPages(): number { return this.numPages; }

  /** Pages the guest reports it holds in the balloon (config `actual`). */
  get actual(): number { return this.actualPages; }

  /** The poison value the driver wrote (config `poison_val`); 0 until it does. */
  get poisonValue(): number { return this.poisonVal; }

  /** The fill pattern discarded pages must read back as: poison_val while PAGE_POISON is negotiated, else 0. */
  get fill(): number {
    return this.ctx && (this.ctx.featuresLo & (1 << VIRTIO_BALLOON_F_PAGE_POISON)) !== 0 ? this.poisonVal : 0;
  }

  /** Counters for JSON reports. */
  counters(): BalloonCounters {
    return {
      pages_ballooned: this.actualPages, pages_inflated: this.newlyInflated, pages_deflated: this.newlyDeflated,
      pages_reported: this.reportedPages, reports: this.reportBuffers, stats_reports: this.statsReports,
    };
  }

  /** The latest guest statistics with their arrival time, or null before the first report. */
  statsSnapshot(): BalloonStatsSnapshot | null {
    return this.stats ? { stats: { ...this.stats }, time: this.statsTime, reports: this.statsReports } : null;
  }

  /**
   * Seconds between statistics requests (QEMU's guest-stats-polling-interval):
   * 0 turns polling off; a change takes effect at once. Throws RangeError
   * for a negative or fractional value, or when there is no timer.
   */
  get statsPollingInterval(): number { return this.pollSeconds; }
  set statsPollingInterval(s: number) {
    if (!Number.isSafeInteger(s) || s < 0 || s > 0xffffffff) throw new RangeError(`guest-stats-polling-interval ${s} is not a whole number of seconds from 0 to 4294967295`);
    if (s > 0 && !this.timer) throw new RangeError('this balloon has no timer, so it cannot poll');
    this.pollSeconds = s;
    this.cancelPoll?.();
    this.cancelPoll = null;
    if (s > 0) this.armPoll(0); // QEMU: a new interval asks at once, then after each report
  }

  /** Stops polling (the VM is going away). */
  close(): void { this.cancelPoll?.(); this.cancelPoll = null; this.pollSeconds = 0; }

  private armPoll(ms: number): void {
    this.cancelPoll?.();
    this.cancelPoll = this.timer!(() => {
      this.cancelPoll = null;
      // No buffer held (no driver yet, or the guest is still refilling): try again after the interval.
      if (!this.enter(() => this.requestStats()) && this.pollSeconds > 0) this.armPoll(this.pollSeconds * 1000);
    }, ms);
  }

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
    this.cfgView.setUint32(CFG_POISON, this.poisonVal, true);
    if (offset < 0 || offset + size > CFG_BYTES) return 0;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.cfg[offset + i]!;
    return v | 0;
  }

  configWrite(offset: number, size: number, value: number): void {
    // The driver writes `actual` (virtio 1.2 §5.5.6.1) and `poison_val` (§5.5.6.5); num_pages and
    // free_page_hint_cmd_id are the device's.
    const field = offset >= CFG_ACTUAL && offset + size <= CFG_ACTUAL + 4 ? CFG_ACTUAL
      : offset >= CFG_POISON && offset + size <= CFG_POISON + 4 && (this.featuresLo & (1 << VIRTIO_BALLOON_F_PAGE_POISON)) ? CFG_POISON : -1;
    if (field < 0) return;
    this.cfgView.setUint32(CFG_ACTUAL, this.actualPages, true);
    this.cfgView.setUint32(CFG_POISON, this.poisonVal, true);
    for (let i = 0; i < size; i++) this.cfg[offset + i] = (value >>> (8 * i)) & 0xff;
    const v = this.cfgView.getUint32(field, true);
    if (field === CFG_POISON) { this.poisonVal = v; return; }
    if (v === this.actualPages) return;
    this.actualPages = v;
    this.onActualChange?.(this.actualBytes());
  }

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    if (!this.backend) this.attach(new RamAccounting(ctx.mem.base, ctx.mem.size));
    if (this.backend instanceof RamAccounting && !this.backend.hasRam) this.backend.bindRam(ctx.mem);
    const stats = (ctx.featuresLo & (1 << VIRTIO_BALLOON_F_STATS_VQ)) !== 0;
    this.qStats = stats ? BALLOON_Q_STATS : -1;
    this.qReport = (ctx.featuresLo & (1 << VIRTIO_BALLOON_F_REPORTING)) !== 0 ? BALLOON_Q_STATS + (stats ? 1 : 0) : -1;
    // The driver may have queued buffers (Linux queues its first stats buffer) before DRIVER_OK.
    for (let q = 0; q < this.numQueues; q++) this.queueNotify(ctx, q);
  }

  reset(): void {
    // After a reset the driver no longer tracks any balloon pages: they are all the guest's again.
    this.backend?.deflateAll();
    this.ctx = null;
    this.statsHead = -1;
    this.qStats = this.qReport = -1;
    this.poisonVal = 0;
    if (this.actualPages !== 0) { this.actualPages = 0; this.onActualChange?.(this.actualBytes()); }
  }

  queueNotify(ctx: VirtioContext, q: number): void {
    if (q === BALLOON_Q_INFLATE || q === BALLOON_Q_DEFLATE) this.pages(ctx, q);
    else if (q === this.qStats) this.statsIn(ctx);
    else if (q === this.qReport) this.reports(ctx);
  }

  /** Processes inflate or deflate requests: arrays of le32 PFNs (virtio 1.2 §5.5.6). */
  private pages(ctx: VirtioContext, q: number): void {
    const queue = ctx.queues[q]!, chain = ctx.chain, mem = ctx.mem, backend = this.backend!, inflate = q === BALLOON_Q_INFLATE;
    const firstPfn = mem.base / BALLOON_PAGE_SIZE, pages = Math.min(backend.pages, Math.floor(mem.size / BALLOON_PAGE_SIZE));
    const fill = this.fill;
    let used = false;
    while (queue.pop(mem, chain)) {
      const bytes = chain.read(mem, 0, chain.readBytes);
      if (bytes.length % 4 !== 0) throw new VirtqError(`balloon: PFN array of ${bytes.length} bytes is not a whole number of le32 PFNs`);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), n = bytes.length / 4;
      const idx = new Int32Array(n);
      // Validate the whole request before changing anything (virtio 1.2 §2.1.2: a bad request resets the device).
      for (let k = 0; k < n; k++) {
        const pfn = dv.getUint32(4 * k, true), i = pfn - firstPfn;
        if (!(i >= 0 && i < pages)) throw new VirtqError(`balloon: ${inflate ? 'inflate' : 'deflate'} PFN 0x${pfn.toString(16)} is outside guest RAM`);
        idx[k] = i;
      }
      for (let k = 0; k < n; k++) {
        if (inflate) { if (backend.inflate(idx[k]!, fill)) this.newlyInflated++; } else if (backend.deflate(idx[k]!, fill)) this.newlyDeflated++;
      }
      if (inflate) this.inflatedPages += n; else this.deflatedPages += n;
      queue.push(mem, chain.head, 0);
      used = true;
    }
    if (used) ctx.notifyUsed(q);
  }

  /**
   * Free page reports (virtio 1.2 §5.5.6.6): each device-writable buffer of
   * a chain is a free range of guest RAM; the whole 4 KiB pages in it go to
   * the backend. The device never reads or writes the buffers itself, so
   * a chain's total length is not capped (Linux sends up to 32 runs of
   * 2-4 MiB at a time, more than MAX_CHAIN_BYTES).
   */
  private reports(ctx: VirtioContext): void {
    const queue = ctx.queues[this.qReport]!, chain = ctx.chain, mem = ctx.mem, backend = this.backend!;
    const pages = Math.min(backend.pages, Math.floor(mem.size / BALLOON_PAGE_SIZE)), fill = this.fill;
    let used = false;
    while (queue.pop(mem, chain, Infinity, false)) { // no copy, so no length cap, and the buffers stay guest-physical (RAM offsets); the queue checked every buffer lies in RAM
      for (let k = 0; k < chain.count; k++) {
        if (!chain.writable[k]) continue; // the driver's ranges are device-writable; anything else is not a report
        const off = chain.off[k]!, first = Math.ceil(off / BALLOON_PAGE_SIZE);
        const end = Math.min(pages, Math.floor((off + chain.len[k]!) / BALLOON_PAGE_SIZE));
        if (end <= first) continue;
        backend.report(first, end - first, fill);
        this.reportedPages += end - first;
      }
      this.reportBuffers++;
      queue.push(mem, chain.head, 0);
      used = true;
    }
    if (used) ctx.notifyUsed(this.qReport);
  }

  /** Takes the driver's stats buffer: parses it and holds it until the next request (virtio 1.2 §5.5.6.3). */
  private statsIn(ctx: VirtioContext): void {
    const queue = ctx.queues[this.qStats]!, chain = ctx.chain;
    let got = false;
    while (queue.pop(ctx.mem, chain)) {
      if (this.statsHead >= 0) {
        // The driver keeps one buffer outstanding; a second one means the first is stale: give it back.
        queue.push(ctx.mem, this.statsHead, 0);
        ctx.notifyUsed(this.qStats);
      }
      this.stats = parseBalloonStats(chain.read(ctx.mem, 0, chain.readBytes));
      this.statsTime = this.now();
      this.statsReports++;
      this.statsHead = chain.head;
      got = true;
    }
    // QEMU's polling: the next request goes out one interval after this report arrived.
    if (got && this.pollSeconds > 0) this.armPoll(this.pollSeconds * 1000);
  }

  /**
   * Asks the guest for fresh statistics by returning the buffer it left
   * with the device; the driver refills and requeues it. False when there
   * is nothing to return (no driver, or a request is already pending).
   */
  requestStats(): boolean {
    const ctx = this.ctx;
    if (!ctx || this.statsHead < 0 || this.qStats < 0) return false;
    const queue = ctx.queues[this.qStats]!;
    if (!queue.ready) return false;
    queue.push(ctx.mem, this.statsHead, 0);
    this.statsHead = -1;
    ctx.notifyUsed(this.qStats);
    this.wake();
    return true;
  }

  /** One line for the end-of-run note: target, actual, released and reported pages and the latest guest statistics. */
  summary(ram?: Uint8Array): string {
    const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
    const parts = [`balloon: target ${mib(this.numPages * BALLOON_PAGE_SIZE)}, guest gave up ${mib(this.actualPages * BALLOON_PAGE_SIZE)}`];
    if (this.reportedPages > 0) parts.push(`guest reported ${mib(this.reportedPages * BALLOON_PAGE_SIZE)} free`);
    const acc = this.accounting;
    if (acc) {
      const u = acc.usage(ram);
      parts.push(`host: ${mib(u.releasedBytes)} released (overwritten, excluded; WebAssembly memory cannot be unmapped, so RSS does not shrink)`);
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
