/**
 * Guest RAM: one contiguous block of host memory, allocated once.
 *
 * It is backed by a `WebAssembly.Memory` so that a later JIT's generated
 * modules can import the very same bytes. Untouched pages cost no host
 * memory: the block is mapped lazily by the host OS.
 */

/** WebAssembly page size (WebAssembly core spec §2.2.2 "Memories"). */
const WASM_PAGE = 65536;

/**
 * Bytes reserved past the end of guest RAM for the translation path's
 * scratch use (cross-page accesses are gathered there).
 */
export const RAM_SCRATCH_BYTES = 64;

/** A block of guest-physical RAM with typed views. */
export class GuestRam {
  /** The WebAssembly memory that owns the bytes. */
  readonly memory: WebAssembly.Memory;
  /** Byte view. */
  readonly u8: Uint8Array;
  /** Little-endian multi-byte access. */
  readonly dv: DataView;
  /** Usable size in bytes (a multiple of 4 KiB). */
  readonly size: number;
  /** Offset of the scratch area (just past guest RAM). */
  readonly scratch: number;

  /** Allocates `size` bytes of guest RAM (rounded up to 64 KiB). */
  constructor(size: number) {
    if (!Number.isInteger(size) || size <= 0) throw new RangeError(`invalid RAM size ${size}`);
    const pages = Math.ceil((size + RAM_SCRATCH_BYTES) / WASM_PAGE);
    if (pages > 65536) throw new RangeError(`RAM size ${size} exceeds 4 GiB`);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.u8 = new Uint8Array(this.memory.buffer);
    this.dv = new DataView(this.memory.buffer);
    this.size = Math.floor(size / 4096) * 4096;
    this.scratch = this.u8.length - RAM_SCRATCH_BYTES;
  }
}
