/**
 * The one guest-memory interface (in the style of rust-vmm's GuestMemory):
 * everything that touches guest-physical RAM goes through it — the page
 * walker and the TLB fill (`hostPage`), virtio DMA, the loaders, QMP and
 * the debugger (`read`/`write`), and the process VM (its frames are the
 * guest-physical pages of its RAM: src/process/address-space.ts).
 *
 * Two implementations:
 * - `GuestRam` (guest-ram.ts): one contiguous block, guest-physical page n
 *   at host page n. `tsvm exec` and `tsvm run` use it.
 * - `PooledRam` (pooled-ram.ts): pages mapped through a per-VM p2m table
 *   onto a host-wide frame pool (sharing, ballooning, swapping). The many-VM
 *   host uses it.
 *
 * "Host offset" means a byte offset in `memory` (the WebAssembly memory that
 * translated code imports). A TLB entry holds a host page offset, so a hit
 * costs one add whichever implementation is behind it.
 */

/** `hostPage` result: the address is not guest RAM. */
export const MEM_NOT_RAM = -1;

/** Receives notice that guest code in a page may have changed (the JIT's invalidation hook). */
export type CodeWriteHook = (page: number) => void;

/**
 * The host could not provide a guest page (pool exhausted and nothing to
 * reclaim, or the swap file failed). It ends the VM that needed the page,
 * never the host: the run loop catches it.
 */
export class GuestMemoryError extends Error {}

/** Guest-physical RAM as the VM's components see it. */
export interface GuestMemory {
  /** The WebAssembly memory holding the RAM's pages and the CPU area (translated code imports it). */
  readonly memory: WebAssembly.Memory;
  /** Byte view of the whole memory (indexed by host offset). */
  readonly u8: Uint8Array;
  /** Little-endian view of the whole memory (indexed by host offset). */
  readonly dv: DataView;
  /** Guest-physical address of RAM's first byte. */
  readonly base: number;
  /** RAM size in bytes (a multiple of 4 KiB). */
  readonly size: number;
  /** Host offset of the scratch area (cross-page accesses are gathered there; RAM_SCRATCH_BYTES long). */
  readonly scratch: number;
  /** Per host page: non-zero while translated code depends on the page's bytes. */
  readonly codePages: Uint8Array;
  /** Called (once per page) when a page in `codePages` is written. */
  onCodeWrite: CodeWriteHook | null;
  /**
   * Called when a RAM page stops being mapped at host page offset
   * `hostPage` (copy-on-write, balloon, swap-out, merge): every TLB entry
   * holding it must go. Never called by GuestRam, whose mapping is fixed.
   */
  onRemap: ((hostPage: number) => void) | null;
  /**
   * Counts remaps (see onRemap). A caller holding host offsets across
   * several `hostPage` calls (an access straddling two pages, a DMA chain)
   * checks it did not move: a later call may have evicted an earlier page.
   */
  readonly epoch: number;
  /**
   * After `hostPage(gpa, false)`: whether the TLB may also cache writes to
   * that page (false for a shared, zero or otherwise read-only mapping,
   * whose first write must come back through `hostPage(gpa, true)`).
   */
  readonly lastWritable: boolean;
  /**
   * Host offset of the (4 KiB-aligned) RAM page holding guest-physical
   * address `gpa`, made private first when `write` is set; MEM_NOT_RAM
   * when `gpa` is not RAM. Throws GuestMemoryError when the host cannot
   * provide the page.
   */
  hostPage(gpa: number, write: boolean): number;
  /** Copies guest-physical [gpa, gpa + dst.length) into `dst`; false (nothing copied) when it is not all RAM. */
  read(gpa: number, dst: Uint8Array): boolean;
  /** Copies `src` to guest-physical `gpa` (translated code on those pages is dropped); false when it is not all RAM. */
  write(gpa: number, src: Uint8Array): boolean;
  /** Makes guest-physical [gpa, gpa + len) read as zero; false when it is not all RAM. */
  zero(gpa: number, len: number): boolean;
  /** Reports a write to host bytes [host, host + len) made outside the TLB (DMA): pages with translated code are dropped. */
  written(host: number, len: number): void;
  /** Reserves a CPU slot (hart state, TLBs, JIT cache); returns its host offset, or -1 when all are taken. */
  allocCpuSlot(): number;
  /** Returns a slot taken by allocCpuSlot. */
  freeCpuSlot(off: number): void;
  /** Gives the memory back to its owner (a pool) once the VM has ended; optional. */
  release?(): void;
}

/** Whether [gpa, gpa + len) lies in `mem`'s RAM. */
export function inRam(mem: GuestMemory, gpa: number, len: number): boolean {
  const off = gpa - mem.base;
  return len >= 0 && off >= 0 && off + len <= mem.size;
}

/**
 * Page-by-page copy between guest-physical memory and `buf` (read when
 * `toGuest` is false), for memories whose pages are not contiguous.
 */
export function copyPaged(mem: GuestMemory, gpa: number, buf: Uint8Array, toGuest: boolean): boolean {
  if (!inRam(mem, gpa, buf.length)) return false;
  const u8 = mem.u8;
  for (let o = 0; o < buf.length;) {
    const a = gpa + o, inPage = a % 4096, take = Math.min(4096 - inPage, buf.length - o);
    const host = mem.hostPage(a, toGuest) + inPage;
    if (toGuest) { u8.set(buf.subarray(o, o + take), host); mem.written(host, take); }
    else buf.set(u8.subarray(host, host + take), o);
    o += take;
  }
  return true;
}

/** Tells `hook` of every page in host bytes [host, host + len) that holds translated code (GuestMemory.written). */
export function notifyCodeWrites(codePages: Uint8Array, hook: CodeWriteHook | null, host: number, len: number): void {
  if (hook === null || len <= 0) return;
  const last = Math.min(Math.floor((host + len - 1) / 4096), codePages.length - 1);
  for (let p = Math.max(0, Math.floor(host / 4096)); p <= last; p++) if (codePages[p] !== 0) hook(p);
}

/** The CPU slots of a memory's CPU area: `count` slots of `slotBytes` from host offset `base`, handed out zeroed. */
export class CpuSlots {
  private readonly used: Uint8Array;
  private readonly u8: Uint8Array;
  private readonly base: number;
  private readonly slotBytes: number;

  constructor(u8: Uint8Array, base: number, count: number, slotBytes: number) {
    this.u8 = u8; this.base = base; this.slotBytes = slotBytes;
    this.used = new Uint8Array(count);
  }

  /** Reserves a slot; returns its host offset, or -1 when all are taken. */
  alloc(): number {
    const i = this.used.indexOf(0);
    if (i < 0) return -1;
    this.used[i] = 1;
    const off = this.base + i * this.slotBytes;
    this.u8.fill(0, off, off + this.slotBytes);
    return off;
  }

  /** Returns a slot taken by alloc (anything else is ignored). */
  free(off: number): void {
    const i = (off - this.base) / this.slotBytes;
    if (Number.isInteger(i) && i >= 0 && i < this.used.length) this.used[i] = 0;
  }
}
