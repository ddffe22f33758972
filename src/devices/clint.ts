/**
 * SiFive CLINT (core-local interruptor), register-compatible with the
 * RISC-V ACLINT pair QEMU's `virt` board maps at 0x0200_0000: an SSWI-style
 * MSWI device (one `msip` word per hart) at +0x0000 and an MTIMER at +0x4000
 * (`mtimecmp` per hart, then `mtime` at +0xbff8).
 *
 * Layout: SiFive FU540-C000 Manual v1p4, chapter 9 "Core-Local Interruptor
 * (CLINT)", Table 40; RISC-V ACLINT spec v1.0-rc4, sections 2.1 (MTIMER
 * register map) and 3.1 (MSWI register map). `mtime` counts the board's
 * timebase (10 MHz on virt) derived from the Clock; it is kept as a JS
 * number of ticks, exact up to 2^53 ticks (28 years at 10 MHz).
 */
import { readSubword, mergeSubword } from './word-access.js';
import type { Clock, MmioDevice } from './device.js';

/** Per-hart machine-level interrupt lines the CLINT drives (mip.MSIP, mip.MTIP). */
export interface HartIrqs {
  /** Drives mip.MSIP of `hart`. */
  setMsip(hart: number, level: boolean): void;
  /** Drives mip.MTIP of `hart`. */
  setMtip(hart: number, level: boolean): void;
}

/** Size of the CLINT window (FU540 manual Table 40: 0x0200_0000-0x0200_FFFF). */
export const CLINT_SIZE = 0x10000;
/** Offset of msip[0]; 4 bytes per hart (FU540 manual Table 40). */
export const CLINT_MSIP = 0x0000;
/** Offset of mtimecmp[0]; 8 bytes per hart (FU540 manual Table 40). */
export const CLINT_MTIMECMP = 0x4000;
/** Offset of mtime (FU540 manual Table 40; ACLINT MTIMER base 0x4000 + MTIME 0x7ff8). */
export const CLINT_MTIME = 0xbff8;
/** Most harts the register map has room for: msip words up to 0x3fff (ACLINT spec section 3.1: 4095 harts). */
export const CLINT_MAX_HARTS = 4095;
/** The timebase of QEMU virt, 10 MHz (virt.h `RISCV_ACLINT_DEFAULT_TIMEBASE_FREQ`). */
export const CLINT_DEFAULT_TIMEBASE_HZ = 10000000;

/** 2^32, to join and split the two 32-bit halves of a 64-bit register. */
const TWO32 = 4294967296;
/** 2^53: beyond this a tick count is no longer an exact JS number; treated as "never". */
const TWO53 = 9007199254740992;

/** A CLINT for `harts` harts, clocked from a Clock. */
export class Clint implements MmioDevice {
  /** Device name for diagnostics. */
  readonly name = 'clint';

  private readonly nsPerTick: number;
  private readonly originNs: number;
  /** Ticks added to the raw count (changed by guest writes to mtime). */
  private offsetTicks = 0;
  private readonly msip: Uint8Array;
  private readonly cmpLo: Uint32Array;
  private readonly cmpHi: Uint32Array;
  /** mtimecmp as a JS number (hi * 2^32 + lo, rounded above 2^53). */
  private readonly cmp: Float64Array;
  private readonly mtip: Uint8Array;
  /** mtime sampled once per read() call, so an 8-byte read is not torn; NaN when unsampled. */
  private sampled = NaN;

  /** A CLINT serving `harts` harts; mtime starts at 0 now and ticks at `timebaseHz`. */
  constructor(
    readonly harts: number,
    private readonly clock: Clock,
    private readonly irqs: HartIrqs,
    readonly timebaseHz: number = CLINT_DEFAULT_TIMEBASE_HZ,
  ) {
    if (!Number.isInteger(harts) || harts < 1 || harts > CLINT_MAX_HARTS) throw new RangeError(`invalid hart count ${harts}`);
    if (!(timebaseHz > 0)) throw new RangeError(`invalid timebase ${timebaseHz}`);
    this.nsPerTick = 1e9 / timebaseHz;
    this.originNs = clock.monotonicNs();
    this.msip = new Uint8Array(harts);
    this.cmpLo = new Uint32Array(harts).fill(0xffffffff); // reset value is unspecified; all-ones = "no timer"
    this.cmpHi = new Uint32Array(harts).fill(0xffffffff);
    this.cmp = new Float64Array(harts).fill(TWO32 * TWO32);
    this.mtip = new Uint8Array(harts);
  }

  /** Current mtime in ticks (what the `time` CSR reads, and what Sstc's stimecmp compares with). */
  mtimeNow(): number {
    return Math.floor((this.clock.monotonicNs() - this.originNs) / this.nsPerTick) + this.offsetTicks;
  }

  /** Host monotonic time (ns, the Clock's base) at which mtime will reach `ticks`; Infinity if out of range. */
  ticksToNs(ticks: number): number {
    if (ticks >= TWO53) return Infinity;
    return this.originNs + (ticks - this.offsetTicks) * this.nsPerTick;
  }

  /**
   * Earliest mtimecmp of a hart whose timer has not fired yet, as host
   * monotonic ns (may be in the past: call update()); Infinity if none.
   */
  nextDeadlineNs(): number {
    let best = Infinity;
    for (let h = 0; h < this.harts; h++) {
      if (this.mtip[h]) continue;
      const t = this.ticksToNs(this.cmp[h] ?? Infinity);
      if (t < best) best = t;
    }
    return best;
  }

  /** Re-evaluates every hart's MTIP (mtime >= mtimecmp) against the current time. */
  update(): void {
    const now = this.mtimeNow();
    for (let h = 0; h < this.harts; h++) this.evalHart(h, now);
  }

  /** The current msip bit of `hart`. */
  msipOf(hart: number): boolean {
    return this.msip[hart] === 1;
  }

  /** Reads 1, 2, 4 or 8 bytes; 8-byte reads are two 32-bit halves sampled at one instant. */
  read(offset: number, size: number, out: Int32Array): void {
    this.sampled = NaN;
    if (size === 8) {
      out[0] = this.readWord(offset);
      out[1] = this.readWord(offset + 4);
    } else {
      out[0] = readSubword(this.readWord(offset & ~3), offset, size);
      out[1] = 0;
    }
  }

  /** Writes 1, 2, 4 or 8 bytes; narrower-than-word writes merge into the word. */
  write(offset: number, size: number, lo: number, hi: number): void {
    this.sampled = NaN;
    if (size === 8) {
      if (offset === CLINT_MTIME) {
        this.setMtime((hi >>> 0) * TWO32 + (lo >>> 0));
      } else {
        this.writeWord(offset, lo);
        this.writeWord(offset + 4, hi);
      }
    } else if (size === 4) {
      this.writeWord(offset, lo);
    } else {
      const base = offset & ~3;
      this.writeWord(base, mergeSubword(this.readWord(base), offset, size, lo));
    }
    if (offset + size > CLINT_MTIMECMP) this.update();
  }

  private now(): number {
    if (Number.isNaN(this.sampled)) this.sampled = this.mtimeNow();
    return this.sampled;
  }

  private readWord(off: number): number {
    if (off < CLINT_MTIMECMP) {
      const h = (off - CLINT_MSIP) >> 2;
      return h < this.harts ? this.msip[h] ?? 0 : 0;
    }
    if (off === CLINT_MTIME) return this.now() >>> 0;
    if (off === CLINT_MTIME + 4) return Math.floor(this.now() / TWO32) >>> 0;
    const h = (off - CLINT_MTIMECMP) >> 3;
    if (h >= this.harts) return 0;
    return (off & 4 ? this.cmpHi[h] : this.cmpLo[h]) ?? 0;
  }

  private writeWord(off: number, v: number): void {
    if (off < CLINT_MTIMECMP) {
      const h = (off - CLINT_MSIP) >> 2;
      if (h >= this.harts) return;
      const bit = v & 1; // msip bits 31:1 are hardwired to zero (FU540 manual section 9.2)
      if (bit !== this.msip[h]) {
        this.msip[h] = bit;
        this.irqs.setMsip(h, bit === 1);
      }
      return;
    }
    if (off === CLINT_MTIME) {
      this.setMtime(Math.floor(this.now() / TWO32) * TWO32 + (v >>> 0));
      return;
    }
    if (off === CLINT_MTIME + 4) {
      this.setMtime((v >>> 0) * TWO32 + (this.now() >>> 0));
      return;
    }
    const h = (off - CLINT_MTIMECMP) >> 3;
    if (h >= this.harts) return;
    if (off & 4) this.cmpHi[h] = v;
    else this.cmpLo[h] = v;
    this.cmp[h] = (this.cmpHi[h] ?? 0) * TWO32 + (this.cmpLo[h] ?? 0);
  }

  private setMtime(ticks: number): void {
    this.offsetTicks += ticks - this.mtimeNow();
    this.sampled = NaN;
  }

  private evalHart(h: number, now: number): void {
    const level = now >= (this.cmp[h] ?? Infinity) ? 1 : 0;
    if (level !== this.mtip[h]) {
      this.mtip[h] = level;
      this.irqs.setMtip(h, level === 1);
    }
  }
}
