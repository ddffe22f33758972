/**
 * The MMIO bus: maps non-overlapping guest-physical windows to devices and
 * finds the device behind an address. Lookup is a last-hit check followed by
 * a binary search over windows sorted by base; it allocates nothing, and
 * reports the offset within the device through the `offset` field.
 */
import type { MmioDevice } from './device.js';

/** One mapped window. */
export interface MmioRegion {
  /** Guest physical base address. */
  readonly base: number;
  /** Size in bytes. */
  readonly size: number;
  /** The device behind it. */
  readonly device: MmioDevice;
}

/** Guest-physical address space of MMIO devices. */
export class MmioBus {
  /** Offset within the device of the address given to the last successful find()/findIndex(). */
  offset = 0;

  private bases: number[] = [];
  private ends: number[] = [];
  private devices: MmioDevice[] = [];
  private last = -1;

  /** Maps `device` at [base, base + size); throws if the window is invalid or overlaps another. */
  map(base: number, size: number, device: MmioDevice): void {
    if (!Number.isSafeInteger(base) || base < 0) throw new RangeError(`invalid MMIO base ${base}`);
    if (!Number.isSafeInteger(size) || size <= 0 || !Number.isSafeInteger(base + size)) {
      throw new RangeError(`invalid MMIO size ${size} for ${device.name}`);
    }
    const end = base + size;
    let i = 0;
    while (i < this.bases.length && (this.bases[i] ?? 0) < base) i++;
    const prevEnd = i > 0 ? this.ends[i - 1] ?? 0 : 0;
    const nextBase = i < this.bases.length ? this.bases[i] ?? Infinity : Infinity;
    if (prevEnd > base || nextBase < end) {
      const other = prevEnd > base ? this.devices[i - 1] : this.devices[i];
      throw new RangeError(`MMIO window 0x${base.toString(16)}+0x${size.toString(16)} of ${device.name} overlaps ${other?.name ?? '?'}`);
    }
    this.bases.splice(i, 0, base);
    this.ends.splice(i, 0, end);
    this.devices.splice(i, 0, device);
    this.last = -1;
  }

  /** Index of the window holding `addr` (setting `offset`), or -1. */
  findIndex(addr: number): number {
    const l = this.last;
    if (l >= 0 && addr >= (this.bases[l] ?? Infinity) && addr < (this.ends[l] ?? 0)) {
      this.offset = addr - (this.bases[l] ?? 0);
      return l;
    }
    let lo = 0, hi = this.bases.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.bases[mid] ?? Infinity) <= addr) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (found < 0 || addr >= (this.ends[found] ?? 0)) return -1;
    this.last = found;
    this.offset = addr - (this.bases[found] ?? 0);
    return found;
  }

  /** The device holding `addr` (setting `offset`), or null. */
  find(addr: number): MmioDevice | null {
    const i = this.findIndex(addr);
    return i < 0 ? null : this.devices[i] ?? null;
  }

  /** True if any mapped window intersects [base, base + size) (allocation-free). */
  overlaps(base: number, size: number): boolean {
    let lo = 0, hi = this.bases.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.bases[mid] ?? Infinity) < base + size) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return found >= 0 && (this.ends[found] ?? 0) > base;
  }

  /** The device of window `i` (from findIndex). */
  deviceAt(i: number): MmioDevice | undefined {
    return this.devices[i];
  }

  /** Reads `size` bytes at `addr` into out; false if no single window holds the whole access. */
  read(addr: number, size: number, out: Int32Array): boolean {
    const i = this.findIndex(addr);
    if (i < 0 || addr + size > (this.ends[i] ?? 0)) return false;
    (this.devices[i] as MmioDevice).read(this.offset, size, out);
    return true;
  }

  /** Writes `size` bytes (lo, hi) at `addr`; false if no single window holds the whole access. */
  write(addr: number, size: number, lo: number, hi: number): boolean {
    const i = this.findIndex(addr);
    if (i < 0 || addr + size > (this.ends[i] ?? 0)) return false;
    (this.devices[i] as MmioDevice).write(this.offset, size, lo, hi);
    return true;
  }

  /** The mapped windows in address order (allocates; for diagnostics and device-tree building). */
  regions(): MmioRegion[] {
    return this.bases.map((base, i) => ({ base, size: (this.ends[i] ?? base) - base, device: this.devices[i] as MmioDevice }));
  }
}
