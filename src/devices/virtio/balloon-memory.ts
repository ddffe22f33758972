/**
 * What the virtio balloon (balloon.ts) asks of the memory behind guest RAM,
 * and the default implementation over one contiguous block of RAM.
 *
 * `BalloonMemory` is page-indexed: page `i` is the 4 KiB page at RAM base +
 * i * 4096 (virtio 1.2 §5.5.6: balloon pages are 4 KiB whatever the guest's
 * page size). The device validates every page number before calling, so an
 * implementation sees only 0 <= i < pages. Three calls carry the guest's
 * intent:
 *  - `inflate(i, fill)`: the guest gave page i to the balloon and will not
 *    touch it until it is deflated. The backend may drop the page's
 *    contents and whatever backs it (a p2m table returns its frame to the
 *    pool).
 *  - `deflate(i, fill)`: the guest takes page i back.
 *  - `report(first, count, fill)`: free page reporting (virtio 1.2
 *    §5.5.6.6): the pages are free in the guest right now; the backend may
 *    discard them. The guest reuses them without telling the device.
 * `fill` is the page-poison pattern (virtio 1.2 §5.5.6.5): a 32-bit value,
 * little-endian, repeated over the page, or 0. A page the backend discarded
 * must read back as `fill` the next time the guest uses it; a backend that
 * can only bring pages back as zero must keep (not discard) pages when
 * `fill` is non-zero, as QEMU does for reported pages.
 *
 * `RamAccounting` is the default: guest RAM is one WebAssembly.Memory,
 * which cannot be unmapped, so "discarding" a page means overwriting it
 * with the fill pattern (zero unless poisoned) when it does not already
 * hold it, and counting it. The check reads before it writes, so a page
 * the guest never touched is never faulted in on the host. See balloon.ts
 * for what this does and does not save on the host.
 */

/** Bytes per balloon page (virtio 1.2 §5.5.6: PFNs are addresses shifted right by 12). */
export const BALLOON_PAGE_SIZE = 4096;

/** The memory behind guest RAM, as the balloon uses it (see the file comment). */
export interface BalloonMemory {
  /** Number of 4 KiB pages of guest RAM. */
  readonly pages: number;
  /** Page `i` went into the balloon; true if it was not already there. */
  inflate(i: number, fill: number): boolean;
  /** Page `i` came out of the balloon; true if it was in it. */
  deflate(i: number, fill: number): boolean;
  /** Pages [first, first+count) are free in the guest and may be discarded (they must then read as `fill`). */
  report(first: number, count: number, fill: number): void;
  /** Device reset: the driver forgot its balloon, so every inflated page is the guest's again. */
  deflateAll(): void;
}

/** Guest RAM bytes as the default backend writes them: page 0 at u8[0]. */
export interface BalloonRam {
  readonly u8: Uint8Array;
  /** Told of every write the backend makes (so translated code on those pages is dropped). */
  written?(off: number, len: number): void;
}

/** A snapshot of the host-side accounting of guest RAM. */
export interface RamUsage {
  /** Guest RAM size in bytes. */
  totalBytes: number;
  /** Bytes currently given up by the guest through the balloon (overwritten and excluded). */
  releasedBytes: number;
  /** Pages released and reclaimed over the VM's life. */
  releasedTotalPages: number;
  reclaimedTotalPages: number;
  /** Pages the balloon had to overwrite because they did not hold the fill pattern (the rest already did). */
  zeroedPages: number;
  /** Pages reported free by the guest over the VM's life (free page reporting). */
  reportedTotalPages: number;
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
 * The default BalloonMemory over contiguous guest RAM, in 4 KiB pages:
 * which pages the guest has released through the balloon, counters, and an
 * on-demand scan for pages holding data. "Released" is tsvm's accounting,
 * not an OS-level unmap (WebAssembly memory cannot be unmapped).
 */
export class RamAccounting implements BalloonMemory {
  /** Guest-physical address of the first byte of RAM. */
  readonly base: number;
  /** RAM size in bytes (a multiple of 4 KiB). */
  readonly size: number;
  /** Number of 4 KiB pages. */
  readonly pages: number;
  private readonly released: Uint8Array;
  /** Pages currently released. */
  releasedPages = 0;
  /** Pages released and reclaimed over the VM's life. */
  releasedTotal = 0;
  reclaimedTotal = 0;
  /** Pages the balloon had to overwrite (with zero or the poison pattern). */
  zeroedPages = 0;
  /** Pages reported free over the VM's life. */
  reportedTotal = 0;
  private ram: BalloonRam | null = null;
  private words: Uint32Array | null = null;

  /** `ram`: the RAM bytes to overwrite; without it, the balloon binds the transport's RAM on activation. */
  constructor(base: number, size: number, ram?: BalloonRam) {
    this.base = base;
    this.pages = Math.floor(size / BALLOON_PAGE_SIZE);
    this.size = this.pages * BALLOON_PAGE_SIZE;
    this.released = new Uint8Array(this.pages);
    if (ram) this.bindRam(ram);
  }

  /** Uses `ram` (page 0 at u8[0]) for overwriting discarded pages. */
  bindRam(ram: BalloonRam): void {
    if (this.ram === ram) return;
    this.ram = ram;
    this.words = wordsOf(ram.u8);
  }

  /** Whether a RAM view is bound. */
  get hasRam(): boolean { return this.ram !== null; }

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

  inflate(i: number, fill: number): boolean {
    if (!this.release(i)) return false;
    this.discard(i, fill);
    return true;
  }

  deflate(i: number, _fill: number): boolean { return this.reclaim(i); }

  report(first: number, count: number, fill: number): void {
    this.reportedTotal += count;
    for (let i = first, end = first + count; i < end; i++) if (this.released[i] === 0) this.discard(i, fill);
  }

  deflateAll(): void { this.reclaimAll(); }

  /** Makes page `i` hold the fill pattern unless it already does (so untouched host pages stay untouched). */
  private discard(i: number, fill: number): void {
    const ram = this.ram;
    if (!ram) return;
    const off = i * BALLOON_PAGE_SIZE;
    if (off + BALLOON_PAGE_SIZE > ram.u8.length || pageHolds(ram.u8, this.words, off, fill)) return;
    if (fill === 0) ram.u8.fill(0, off, off + BALLOON_PAGE_SIZE);
    else if (this.words) this.words.fill(fill >>> 0, off >> 2, (off + BALLOON_PAGE_SIZE) >> 2); // Uint32Array: little-endian on every JS host that runs WebAssembly
    else for (let k = 0; k < BALLOON_PAGE_SIZE; k++) ram.u8[off + k] = (fill >>> (8 * (k & 3))) & 0xff;
    ram.written?.(off, BALLOON_PAGE_SIZE);
    this.zeroedPages++;
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
      reportedTotalPages: this.reportedTotal,
    };
    if (ram) {
      let nonZero = 0, dirty = 0;
      const words = wordsOf(ram);
      for (let i = 0; i < this.pages; i++) {
        if (!pageHolds(ram, words, i * BALLOON_PAGE_SIZE, 0)) { nonZero++; if (this.released[i]) dirty++; }
      }
      u.nonZeroBytes = nonZero * BALLOON_PAGE_SIZE;
      u.releasedDirtyPages = dirty;
    }
    return u;
  }
}

/** A 32-bit view of `u8` when it is 4-byte aligned (for fast page checks), else null. */
function wordsOf(u8: Uint8Array): Uint32Array | null {
  return u8.byteOffset % 4 === 0 ? new Uint32Array(u8.buffer, u8.byteOffset, Math.floor(u8.byteLength / 4)) : null;
}

/** Whether the 4 KiB page at byte offset `off` is the 32-bit little-endian pattern `fill` repeated (reads only). */
function pageHolds(u8: Uint8Array, words: Uint32Array | null, off: number, fill: number): boolean {
  const f = fill >>> 0;
  if (words) {
    for (let w = off >> 2, end = w + BALLOON_PAGE_SIZE / 4; w < end; w++) if (words[w] !== f) return false;
    return true;
  }
  for (let k = 0; k < BALLOON_PAGE_SIZE; k++) if (u8[off + k] !== ((f >>> (8 * (k & 3))) & 0xff)) return false;
  return true;
}
