/**
 * Guest RAM: one contiguous block of host memory, allocated once.
 *
 * It is backed by a `WebAssembly.Memory` so that the JIT's generated
 * modules import the very same bytes. Untouched pages cost no host memory:
 * the block is mapped lazily by the host OS.
 *
 * Layout of the memory: guest RAM [0, size), a small scratch area, then the
 * CPU area: fixed-size slots, each holding one hart's register state and
 * its TLBs, so generated code reaches registers and TLB tags with plain
 * loads at constant offsets. The guest never reaches past `size`: every
 * translation yields a RAM page.
 *
 * The RAM also tracks which pages hold translated code (`codePages`), so
 * that any writer (stores through the TLB slow path, virtio DMA, the
 * process VM's system calls) can tell the JIT to drop stale translations.
 */

import { inRam, notifyCodeWrites, CpuSlots, type CodeWriteHook, type GuestMemory } from './guest-memory.js';

export type { CodeWriteHook } from './guest-memory.js';

/** WebAssembly page size (WebAssembly core spec §2.2.2 "Memories"). */
const WASM_PAGE = 65536;

/**
 * Bytes reserved past the end of guest RAM for the translation path's
 * scratch use (cross-page accesses are gathered there).
 */
export const RAM_SCRATCH_BYTES = 64;

/** Bytes of one CPU slot: hart state (768) + 4 TLB contexts (4 x 16 KiB) + the JIT's indirect-branch cache (10 KiB), rounded up. */
export const CPU_SLOT_BYTES = 96 * 1024;
/** CPU slots per RAM block: harts (system VM) or threads (process VM) that can run translated code. */
export const CPU_SLOTS = 64;

/** A block of guest-physical RAM with typed views: guest page n is host page n (see GuestMemory). */
export class GuestRam implements GuestMemory {
  /** The WebAssembly memory that owns the bytes. */
  readonly memory: WebAssembly.Memory;
  /** Byte view. */
  readonly u8: Uint8Array;
  /** Little-endian multi-byte access. */
  readonly dv: DataView;
  /** Usable size in bytes (a multiple of 4 KiB). */
  readonly size: number;
  /** Guest-physical address of RAM's first byte (0 for the process VM, whose addresses are host offsets). */
  readonly base: number;
  /** Always 0: the mapping is fixed. */
  readonly epoch = 0;
  /** Always true: every RAM page is writable in place. */
  readonly lastWritable = true;
  /** Never called: the mapping is fixed (see GuestMemory.onRemap). */
  onRemap: ((hostPage: number) => void) | null = null;
  /** Offset of the scratch area (just past guest RAM). */
  readonly scratch: number;
  /** Offset of the CPU area (hart-state slots). */
  readonly cpuArea: number;
  /** Per 4 KiB page: non-zero while translated code depends on the page's bytes. */
  readonly codePages: Uint8Array;
  /** Called (once per page) when a page in `codePages` is written. */
  onCodeWrite: CodeWriteHook | null = null;
  private readonly slots: CpuSlots;

  /** Allocates `size` bytes of guest RAM (rounded down to 4 KiB) at guest-physical `base`. */
  constructor(size: number, base = 0) {
    this.base = base;
    if (!Number.isInteger(size) || size <= 0) throw new RangeError(`invalid RAM size ${size}`);
    this.size = Math.floor(size / 4096) * 4096;
    this.scratch = this.size;
    this.cpuArea = Math.ceil((this.size + RAM_SCRATCH_BYTES) / 4096) * 4096;
    const pages = Math.ceil((this.cpuArea + CPU_SLOTS * CPU_SLOT_BYTES) / WASM_PAGE);
    if (pages > 65536) throw new RangeError(`RAM size ${size} exceeds 4 GiB`);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.u8 = new Uint8Array(this.memory.buffer);
    this.dv = new DataView(this.memory.buffer);
    this.codePages = new Uint8Array(this.size / 4096);
    this.slots = new CpuSlots(this.u8, this.cpuArea, CPU_SLOTS, CPU_SLOT_BYTES);
  }

  /** See GuestMemory.hostPage: the identity mapping. */
  hostPage(gpa: number, _write: boolean): number {
    const off = gpa - this.base;
    return off >= 0 && off < this.size ? off - (off % 4096) : -1;
  }

  /** See GuestMemory.read. */
  read(gpa: number, dst: Uint8Array): boolean {
    if (!inRam(this, gpa, dst.length)) return false;
    const off = gpa - this.base;
    dst.set(this.u8.subarray(off, off + dst.length));
    return true;
  }

  /** See GuestMemory.write. */
  write(gpa: number, src: Uint8Array): boolean {
    if (!inRam(this, gpa, src.length)) return false;
    const off = gpa - this.base;
    this.u8.set(src, off);
    this.written(off, src.length);
    return true;
  }

  /** See GuestMemory.zero. */
  zero(gpa: number, len: number): boolean {
    if (!inRam(this, gpa, len)) return false;
    const off = gpa - this.base;
    this.u8.fill(0, off, off + len);
    this.written(off, len);
    return true;
  }

  /** Reserves a CPU slot; returns its byte offset, or -1 when all are taken. */
  allocCpuSlot(): number { return this.slots.alloc(); }

  /** Returns a slot taken by allocCpuSlot. */
  freeCpuSlot(off: number): void { this.slots.free(off); }

  /**
   * Notes that [off, off+len) of RAM was written by something other than
   * a translated or interpreted store (DMA, system calls, loaders): pages
   * holding translated code are reported to `onCodeWrite`.
   */
  written(off: number, len: number): void { notifyCodeWrites(this.codePages, this.onCodeWrite, off, len); }
}
