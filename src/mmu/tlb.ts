/**
 * The software TLB: the one translation path every guest memory access
 * takes. A direct-mapped cache from guest virtual page to host offset in
 * guest RAM, with separate read/write/execute tags so that a permission is
 * cached only once it has been checked (a page that is readable but not yet
 * dirty keeps an invalid write tag, so the first write takes the slow path).
 *
 * On a miss the hart asks its `PageTranslator`: the process VM's page map,
 * or (system VM) the Sv39/48/57 page-table walker.
 */

/** log2 of the number of TLB entries. */
export const TLB_BITS = 9;
/** Number of TLB entries. */
export const TLB_SIZE = 1 << TLB_BITS;
/** Index mask. */
export const TLB_MASK = TLB_SIZE - 1;
/** Base page size, 4 KiB (privileged spec §4.3 "Sv32": PAGESIZE = 2^12). */
export const PAGE_SIZE = 4096;
/** Mask selecting the page-aligned part of an address's low word. */
export const PAGE_MASK = -4096;
/** A tag that never equals a page-aligned address. */
export const TLB_INVALID = 1;

/** Access kinds, also the permission bits a translation grants. */
export const ACCESS_READ = 1;
export const ACCESS_WRITE = 2;
export const ACCESS_EXEC = 4;

/** Translator results below zero. */
export const XLATE_PAGE_FAULT = -1;
export const XLATE_ACCESS_FAULT = -2;
/** The page is device memory (system VM): the access leaves the vCPU as an MMIO exit. */
export const XLATE_MMIO = -3;

/**
 * Fills TLB misses: maps the page holding a guest virtual address to a
 * host offset in guest RAM.
 */
export interface PageTranslator {
  /**
   * Translates the page containing virtual address (lo, hi) for an
   * `access` of `size` bytes (PMP checks the bytes themselves).
   * Returns the page's host byte offset in RAM, or XLATE_PAGE_FAULT /
   * XLATE_ACCESS_FAULT. On success `grantedPerms` says which accesses the
   * TLB may cache for this page.
   */
  translatePage(lo: number, hi: number, access: number, size?: number): number;
  /** Permissions (ACCESS_* bits) granted by the last successful translation. */
  grantedPerms: number;
  /** When true after a translation, the TLB must not cache it (MMIO, sub-page PMP). */
  noCache?: boolean;
  /** Physical page address of the last translation that returned XLATE_MMIO. */
  mmioPage?: number;
}

/** Bytes one TLB occupies when it lives in a CPU slot: five arrays of TLB_SIZE int32. */
export const TLB_BYTES = 5 * 4 * TLB_SIZE;
/** Byte offsets of the five arrays inside a TLB block (generated code reads them directly). */
export const TLB_OFF_R = 0, TLB_OFF_W = 4 * TLB_SIZE, TLB_OFF_X = 8 * TLB_SIZE, TLB_OFF_HI = 12 * TLB_SIZE,
  TLB_OFF_HOST = 16 * TLB_SIZE;

/** The TLB arrays, allocated once (inside guest RAM's CPU area when the JIT may read them). */
export class Tlb {
  /** Page-aligned low word of the cached address, per access kind. */
  readonly tagR: Int32Array;
  readonly tagW: Int32Array;
  readonly tagX: Int32Array;
  /** High word of the cached address (shared by the three tags). */
  readonly tagHi: Int32Array;
  /** Host offset of the page in guest RAM. */
  readonly host: Int32Array;
  /** Byte offset of this TLB in the WebAssembly memory `buffer`, or -1 when it has its own buffer. */
  readonly base: number;

  /** A TLB in `buffer` at `byteOffset` (TLB_BYTES long), or in a fresh buffer. */
  constructor(buffer?: ArrayBuffer, byteOffset = 0) {
    const b = buffer ?? new ArrayBuffer(TLB_BYTES);
    this.base = buffer === undefined ? -1 : byteOffset;
    this.tagR = new Int32Array(b, byteOffset + TLB_OFF_R, TLB_SIZE).fill(TLB_INVALID);
    this.tagW = new Int32Array(b, byteOffset + TLB_OFF_W, TLB_SIZE).fill(TLB_INVALID);
    this.tagX = new Int32Array(b, byteOffset + TLB_OFF_X, TLB_SIZE).fill(TLB_INVALID);
    this.tagHi = new Int32Array(b, byteOffset + TLB_OFF_HI, TLB_SIZE);
    this.host = new Int32Array(b, byteOffset + TLB_OFF_HOST, TLB_SIZE);
  }

  /** Installs a translation for the page at (lo, hi). */
  fill(lo: number, hi: number, hostOff: number, perms: number): void {
    const i = (lo >>> 12) & TLB_MASK, tag = lo & PAGE_MASK;
    this.tagR[i] = perms & ACCESS_READ ? tag : TLB_INVALID;
    this.tagW[i] = perms & ACCESS_WRITE ? tag : TLB_INVALID;
    this.tagX[i] = perms & ACCESS_EXEC ? tag : TLB_INVALID;
    this.tagHi[i] = hi;
    this.host[i] = hostOff;
  }

  /** Drops every cached translation. */
  flushAll(): void {
    this.tagR.fill(TLB_INVALID);
    this.tagW.fill(TLB_INVALID);
    this.tagX.fill(TLB_INVALID);
  }

  /** Drops the cached write permission of every entry that maps the RAM page at host offset `hostPage`. */
  dropWrite(hostPage: number): void {
    const h = this.host, w = this.tagW;
    for (let i = 0; i < TLB_SIZE; i++) if (h[i] === hostPage && w[i] !== TLB_INVALID) w[i] = TLB_INVALID;
  }
}
