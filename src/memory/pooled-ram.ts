/**
 * Guest RAM on the host's frame pool (see docs/memory.md): each guest page
 * is mapped through the VM's p2m table to a pool frame, the zero frame, a
 * shared frame or a swap slot. It implements GuestMemory, so the TLB fill,
 * the page walker, virtio DMA and the loaders work on it unchanged:
 *
 * - `hostPage(gpa, false)` returns the frame a read sees (unbacked and
 *   ballooned pages read the zero frame, a swapped page is read back) and
 *   sets `lastWritable` only for a private frame, so the TLB caches writes
 *   only where a write may land in place;
 * - `hostPage(gpa, true)` makes the page private first (allocation,
 *   copy-on-write or swap-in) — the TLB's write miss;
 * - every p2m remap (COW, balloon, swap-out, merge) drops that frame's
 *   translated code and reaches `onRemap`, which the board points at every
 *   hart's TLBs.
 *
 * The CPU area (hart state, TLBs, the JIT's caches) and the scratch area
 * sit in one contiguous run of pool frames owned by this VM, outside guest
 * RAM: generated code reaches them with plain loads, as with GuestRam.
 */
import { FRAME_SIZE, NO_FRAME, ZERO_FRAME, type FramePool } from './frame-pool.js';
import { P2m, P2M_FRAME_MASK, P2M_UNBACKED } from './p2m.js';
import { TouchMarks } from './activity.js';
import { CPU_SLOT_BYTES } from './guest-ram.js';
import { copyPaged, inRam, notifyCodeWrites, CpuSlots, GuestMemoryError, MEM_NOT_RAM, type CodeWriteHook, type GuestMemory } from './guest-memory.js';

/** A VM's guest RAM mapped onto a shared frame pool. */
export class PooledRam implements GuestMemory {
  /** The pool's memory (shared by every VM on the pool). */
  readonly memory: WebAssembly.Memory;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly base: number;
  readonly size: number;
  readonly scratch: number;
  /** Host offset of the first CPU slot. */
  readonly cpuArea: number;
  /** Per pool frame: translated code of this VM depends on it. */
  readonly codePages: Uint8Array;
  onCodeWrite: CodeWriteHook | null = null;
  onRemap: ((hostPage: number) => void) | null = null;
  lastWritable = false;
  epoch = 0;
  /** A read mapped the zero frame since the TLBs last dropped it (see applyRemap). */
  private zeroMapped = false;
  /** The VM's physical-to-machine table. */
  readonly p2m: P2m;
  /** The pool the frames come from. */
  readonly pool: FramePool;
  /** The activity sampler's marks (ESX §5.3): every TLB fill of a page notes it; `invalidate` drops its translations. */
  readonly touches: TouchMarks;
  private readonly runFirst: number;
  private readonly runFrames: number;
  private readonly slots: CpuSlots;
  private released = false;

  /**
   * `size` bytes of RAM at guest-physical `base` on `pool`, with
   * `cpuSlots` CPU slots, mapped by `p2m` (a table the host made, attached
   * in this thread) or a new table. Throws RangeError when the pool cannot
   * hold the CPU area (a host configuration error).
   */
  constructor(pool: FramePool, size: number, base: number, cpuSlots: number, name = 'vm', p2m?: P2m) {
    if (!Number.isInteger(size) || size < FRAME_SIZE) throw new RangeError(`invalid RAM size ${size}`);
    this.pool = pool;
    this.memory = pool.memory;
    this.u8 = new Uint8Array(pool.memory.buffer);
    this.dv = new DataView(pool.memory.buffer);
    this.base = base;
    this.size = Math.floor(size / FRAME_SIZE) * FRAME_SIZE;
    if (p2m !== undefined && p2m.ramPages !== this.size / FRAME_SIZE) throw new RangeError(`${name}: the p2m table has ${p2m.ramPages} pages, not ${this.size / FRAME_SIZE}`);
    this.p2m = p2m ?? new P2m(pool, this.size / FRAME_SIZE, name);
    // One frame for the scratch area, then the slots (CPU_SLOT_BYTES is a multiple of 4 KiB).
    this.runFrames = 1 + (cpuSlots * CPU_SLOT_BYTES) / FRAME_SIZE;
    this.runFirst = pool.allocRun(this.runFrames);
    if (this.runFirst === NO_FRAME) throw new RangeError(`${name}: the pool has no room for the VM's CPU area (${this.runFrames} frames)`);
    this.scratch = this.runFirst * FRAME_SIZE;
    this.cpuArea = this.scratch + FRAME_SIZE;
    this.u8.fill(0, this.scratch, this.scratch + this.runFrames * FRAME_SIZE);
    this.slots = new CpuSlots(this.u8, this.cpuArea, cpuSlots, CPU_SLOT_BYTES);
    this.codePages = new Uint8Array(pool.frameCount);
    this.p2m.onRemap = (_gpn, oldFrame) => this.applyRemap(oldFrame);
    this.touches = new TouchMarks(this.p2m.ramPages, (gpn) => this.dropTranslations(gpn));
  }

  /**
   * A p2m entry stopped mapping `frame`: drops what the JIT knows of it
   * (the frame may be reused) and every TLB entry holding it. The table's
   * remap hook calls it; so does the VM's thread for each remap the host
   * made while the VM was stopped (RemapLog.drain).
   */
  applyRemap(frame: number): void {
    this.epoch++;
    this.onCodeWrite?.(frame);
    if (frame === ZERO_FRAME) {
      // Every first write to a page remaps it from the zero frame: drop the TLBs' zero-frame entries only if a
      // read may have cached one since the last drop (a Debian boot: 21k first writes, a few hundred zero reads).
      if (!this.zeroMapped) return;
      this.zeroMapped = false;
    }
    this.onRemap?.(frame * FRAME_SIZE);
  }

  /** See GuestMemory.hostPage. */
  hostPage(gpa: number, write: boolean): number {
    const off = gpa - this.base;
    if (!(off >= 0 && off < this.size)) return MEM_NOT_RAM;
    const gpn = Math.floor(off / FRAME_SIZE), p = this.p2m;
    const f = write ? p.frameForWrite(gpn) : p.frameForRead(gpn);
    if (f < 0) {
      const e = p.lastError;
      throw new GuestMemoryError(`${p.name}: guest page 0x${(this.base + gpn * FRAME_SIZE).toString(16)}: ${e?.message ?? 'no memory'}`);
    }
    this.lastWritable = write || p.isWritable(gpn);
    if (f === ZERO_FRAME) this.zeroMapped = true;
    this.touches.noteFill(gpn);
    return f * FRAME_SIZE;
  }

  /** Drops every TLB entry for guest page `gpn` (not its translated code), so the next access refills and marks it touched. */
  dropTranslations(gpn: number): void {
    const e = this.p2m.entry(gpn);
    this.onRemap?.((e >= 0 ? e & P2M_FRAME_MASK : 0) * FRAME_SIZE); // a page that is not mapped reads the zero frame
  }

  /** See GuestMemory.read. */
  read(gpa: number, dst: Uint8Array): boolean { return copyPaged(this, gpa, dst, false); }

  /**
   * See GuestMemory.write. A whole page over a never-written page (the
   * loaders' kernel and initrd) skips the zero fill, and an all-zero one
   * stays unbacked (it reads as zero either way): a 31 MiB Debian kernel
   * has 2,058 all-zero pages of 7,610.
   */
  write(gpa: number, src: Uint8Array): boolean {
    if (!inRam(this, gpa, src.length)) return false;
    const words = (src.byteOffset & 3) === 0 ? new Int32Array(src.buffer, src.byteOffset, src.length >> 2) : null;
    for (let o = 0; o < src.length;) {
      const a = gpa + o, inPage = a % FRAME_SIZE, take = Math.min(FRAME_SIZE - inPage, src.length - o);
      const gpn = Math.floor((a - this.base) / FRAME_SIZE);
      if (take === FRAME_SIZE && this.p2m.entry(gpn) === P2M_UNBACKED) {
        if (words === null || !zeroWords(words, o >> 2)) {
          const f = this.p2m.frameForOverwrite(gpn);
          if (f < 0) throw new GuestMemoryError(`${this.p2m.name}: guest page 0x${(this.base + gpn * FRAME_SIZE).toString(16)}: ${this.p2m.lastError?.message ?? 'no memory'}`);
          this.u8.set(src.subarray(o, o + take), f * FRAME_SIZE);
          this.written(f * FRAME_SIZE, take);
        }
      } else {
        const host = this.hostPage(a, true) + inPage;
        this.u8.set(src.subarray(o, o + take), host);
        this.written(host, take);
      }
      o += take;
    }
    return true;
  }

  /** See GuestMemory.zero: pages that already read as zero are left unbacked. */
  zero(gpa: number, len: number): boolean {
    if (!inRam(this, gpa, len)) return false;
    for (let o = 0; o < len;) {
      const a = gpa + o, inPage = a % FRAME_SIZE, take = Math.min(FRAME_SIZE - inPage, len - o);
      const host = this.hostPage(a, false);
      if (host !== 0) { // not the zero frame: clear in a private copy
        const w = this.hostPage(a, true) + inPage;
        this.u8.fill(0, w, w + take);
        this.written(w, take);
      }
      o += take;
    }
    return true;
  }

  /** See GuestMemory.written. */
  written(host: number, len: number): void { notifyCodeWrites(this.codePages, this.onCodeWrite, host, len); }

  /** See GuestMemory.allocCpuSlot. */
  allocCpuSlot(): number { return this.slots.alloc(); }

  /** See GuestMemory.freeCpuSlot. */
  freeCpuSlot(off: number): void { this.slots.free(off); }

  /** Called first thing in `release` (e.g. to take the table out of the sharing scanner). */
  onRelease: (() => void) | null = null;
  /**
   * When set, `release` leaves the frames to the host, which frees them from
   * its own thread once the VM's thread is gone (releaseOnHost), so that
   * it never frees a table its scanner may be reading.
   */
  releasedByHost = false;

  /** The VM's control run (CPU area and scratch): first frame and length. */
  get controlRun(): { first: number; n: number } { return { first: this.runFirst, n: this.runFrames }; }

  /** Gives every frame (RAM and CPU area) back to the pool; the VM must not run again. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease?.();
    if (this.releasedByHost) return;
    this.p2m.releaseAll();
    this.pool.freeRun(this.runFirst, this.runFrames);
  }
}

/** Frees a VM's frames from the host's thread (see PooledRam.releasedByHost): its table's pages and its control run. */
export function releaseOnHost(pool: FramePool, p2m: P2m, run: { first: number; n: number }): void {
  p2m.releaseAll();
  pool.freeRun(run.first, run.n);
}

/** Whether the page's words from `first` (FRAME_SIZE / 4 of them) are all zero. */
function zeroWords(w: Int32Array, first: number): boolean {
  for (let i = first, end = first + FRAME_SIZE / 4; i < end; i++) if (w[i] !== 0) return false;
  return true;
}
