/**
 * The virtio balloon's memory backend for guest RAM on the host's frame
 * pool (BalloonMemory over a PooledRam's p2m table): an inflated page's
 * frame goes back to the pool's free list at once, where other VMs take it;
 * a reported free page (free page reporting) loses its frame the same way
 * and comes back as a fresh zero page on its next write. Both then read as
 * zero, which is what the guest expects unless it poisons free pages with a
 * non-zero pattern (virtio 1.2 §5.5.6.5): then the page keeps a frame and
 * is overwritten with the pattern instead, as QEMU does.
 */
import { FRAME_SIZE } from '../memory/frame-pool.js';
import { P2M_BALLOONED } from '../memory/p2m.js';
import type { PooledRam } from '../memory/pooled-ram.js';
import type { BalloonMemory } from '../devices/virtio/balloon-memory.js';

/** BalloonMemory over a PooledRam (see the file comment). */
export class PooledBalloon implements BalloonMemory {
  readonly pages: number;
  /** Pages given back to the pool by free page reporting, over the VM's life. */
  reportedFreed = 0;
  private readonly ram: PooledRam;
  private readonly pattern = new Uint8Array(FRAME_SIZE);
  private patternFill = 0;

  constructor(ram: PooledRam) {
    this.ram = ram;
    this.pages = ram.p2m.ramPages;
  }

  /** Overwrites page `i` with the poison pattern `fill` (a non-zero little-endian u32, repeated). */
  private poison(i: number, fill: number): void {
    if (this.patternFill !== fill) {
      new Uint32Array(this.pattern.buffer).fill(fill >>> 0);
      this.patternFill = fill;
    }
    this.ram.write(this.ram.base + i * FRAME_SIZE, this.pattern);
  }

  /** BalloonMemory.inflate: the frame returns to the pool (or the page is poisoned). */
  inflate(i: number, fill: number): boolean {
    if (this.ram.p2m.entry(i) === P2M_BALLOONED) return false;
    if (fill !== 0) { this.poison(i, fill); return true; }
    return this.ram.p2m.balloon(i);
  }

  /** BalloonMemory.deflate: the page is the guest's again (unbacked: it reads zero until written). */
  deflate(i: number, _fill: number): boolean {
    return this.ram.p2m.deflate(i);
  }

  /** BalloonMemory.report: free pages lose their frames (unless poisoned); a page in the balloon stays there. */
  report(first: number, count: number, fill: number): void {
    const p = this.ram.p2m;
    for (let i = first; i < first + count; i++) {
      if (p.entry(i) === P2M_BALLOONED) continue;
      if (fill !== 0) { this.poison(i, fill); continue; }
      if (p.balloon(i)) { p.deflate(i); this.reportedFreed++; }
    }
  }

  /** BalloonMemory.deflateAll: the driver was reset; every ballooned page is the guest's again. */
  deflateAll(): void {
    const p = this.ram.p2m;
    for (let i = 0; i < this.pages; i++) if (p.entry(i) === P2M_BALLOONED) p.deflate(i);
  }
}
