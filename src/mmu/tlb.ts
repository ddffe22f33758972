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
  /**
   * Level of the leaf PTE of the last successful translation: 0 for a 4 KiB
   * page, i for a superpage of 2^(12 + 9i) bytes (privileged spec §4.3.2).
   * The TLB still caches 4 KiB pieces; the level tells `flushPage` which
   * pieces one `sfence.vma vaddr` covers. Absent: 0.
   */
  leafLevel?: number;
}

/**
 * Layout of one TLB entry (TLB_ENTRY_BYTES, entry-major so one entry is one
 * cache line): three 64-bit tags — the page-aligned virtual address for
 * reads, writes and fetches, low word first; a low word of TLB_INVALID means
 * "not cached for this kind" — then the host offset of the page, and the
 * addend: host offset minus the page's virtual address (mod 2^32), so
 * generated code gets an access's host address with one add to the
 * address's low word (QEMU's TLB entries hold the same kind of addend).
 * Generated code compares a tag with one i64 load (QEMU's TLB compares the
 * same way: page address and "does not cross the page" in one test).
 */
export const TLB_ENTRY_BYTES = 32;
/** log2(TLB_ENTRY_BYTES). */
export const TLB_ENTRY_SHIFT = 5;
/** Byte offsets inside an entry (generated code reads them directly). */
export const TLB_OFF_R = 0, TLB_OFF_W = 8, TLB_OFF_X = 16, TLB_OFF_HOST = 24, TLB_OFF_ADDEND = 28;
/** Bytes one TLB occupies when it lives in a CPU slot. */
export const TLB_BYTES = TLB_ENTRY_BYTES * TLB_SIZE;
/** Int32 word indexes inside an entry, for the JS side (`Tlb.e[i * TLB_WORDS + ...]`). */
export const TLB_WORDS = TLB_ENTRY_BYTES / 4, TLB_W_R = 0, TLB_W_W = 2, TLB_W_X = 4, TLB_W_HOST = 6, TLB_W_ADDEND = 7;

/** Bits in a TLB's superpage filter (Tlb.superSeen). */
const SUPER_FILTER_BITS = 4096;

/**
 * The filter bit of the level-`level` superpage holding address (lo, hi):
 * a level-l leaf spans 2^(12 + 9l) bytes (privileged spec §4.3.2 / §4.4).
 */
function superHash(level: number, lo: number, hi: number): number {
  const bits = 12 + 9 * level;
  const page = bits < 32 ? (lo >>> bits) ^ (hi << (32 - bits)) ^ (hi >>> bits) : hi >>> (bits - 32);
  return (Math.imul(page ^ (level << 24), 0x9e3779b1) >>> 20) & (SUPER_FILTER_BITS - 1);
}

/** The TLB arrays, allocated once (inside guest RAM's CPU area when the JIT may read them). */
export class Tlb {
  /** The entries as int32 words (TLB_WORDS per entry; see TLB_ENTRY_BYTES). */
  readonly e: Int32Array;
  /** Byte offset of this TLB in the WebAssembly memory `buffer`, or -1 when it has its own buffer. */
  readonly base: number;
  /** Leaf level of each entry's translation (0: a 4 KiB page; see PageTranslator.leafLevel). */
  private readonly level = new Uint8Array(TLB_SIZE);
  /** Entries whose level is above 0. */
  private superEntries = 0;
  /**
   * A filter of the superpages some entry has held since the last time none
   * did: bit `superHash(level, page)` is set while an entry may hold a piece
   * of that superpage. `flushPage` scans the entries only when the flushed
   * address's superpage at some level hits the filter. Linux flushes single
   * user pages (`update_mmu_cache`) while the TLB holds pieces of the
   * kernel's linear-map superpages: most flushes skip the scan.
   */
  private readonly superSeen = new Int32Array(SUPER_FILTER_BITS / 32);
  /** Bit l set while an entry of leaf level l may be present (same lifetime as superSeen). */
  private superLevels = 0;

  /** A TLB in `buffer` at `byteOffset` (TLB_BYTES long), or in a fresh buffer. */
  constructor(buffer?: ArrayBuffer, byteOffset = 0) {
    const b = buffer ?? new ArrayBuffer(TLB_BYTES);
    this.base = buffer === undefined ? -1 : byteOffset;
    this.e = new Int32Array(b, byteOffset, TLB_BYTES / 4);
    this.flushAll();
  }

  /** Installs a translation for the page at (lo, hi), from a leaf PTE at `level` (0: a 4 KiB page). */
  fill(lo: number, hi: number, hostOff: number, perms: number, level = 0): void {
    const i = (lo >>> 12) & TLB_MASK, tag = lo & PAGE_MASK, e = this.e, j = i * TLB_WORDS;
    if (this.level[i] !== 0) this.superEntries--;
    if (level !== 0) {
      this.superEntries++;
      const b = superHash(level, lo, hi);
      this.superSeen[b >>> 5]! |= 1 << (b & 31);
      this.superLevels |= 1 << level;
    }
    this.level[i] = level;
    e[j + TLB_W_R] = perms & ACCESS_READ ? tag : TLB_INVALID; e[j + TLB_W_R + 1] = hi;
    e[j + TLB_W_W] = perms & ACCESS_WRITE ? tag : TLB_INVALID; e[j + TLB_W_W + 1] = hi;
    e[j + TLB_W_X] = perms & ACCESS_EXEC ? tag : TLB_INVALID; e[j + TLB_W_X + 1] = hi;
    e[j + TLB_W_HOST] = hostOff;
    e[j + TLB_W_ADDEND] = (hostOff - tag) | 0;
  }

  /** Host offset of the page holding (lo, hi) if it is cached for fetch, else -1 (no walk). */
  fetchHost(lo: number, hi: number): number {
    const e = this.e, j = ((lo >>> 12) & TLB_MASK) * TLB_WORDS;
    return e[j + TLB_W_X] === (lo & PAGE_MASK) && e[j + TLB_W_X + 1] === hi ? e[j + TLB_W_HOST]! : -1;
  }

  /** Drops every cached translation. */
  flushAll(): void {
    const e = this.e;
    for (let j = 0; j < e.length; j += TLB_WORDS) { e[j + TLB_W_R] = TLB_INVALID; e[j + TLB_W_W] = TLB_INVALID; e[j + TLB_W_X] = TLB_INVALID; }
    this.level.fill(0);
    this.superEntries = 0;
    this.forgetSuper();
  }

  /** Empties the superpage filter (no entry holds a superpage piece). */
  private forgetSuper(): void {
    this.superSeen.fill(0);
    this.superLevels = 0;
  }

  /**
   * Drops the translations `sfence.vma` with rs1 = (lo, hi) must drop
   * (privileged spec §4.2.1): the entry for that page, and every piece of a
   * superpage that covers it (each piece sits in its own entry).
   */
  flushPage(lo: number, hi: number): void {
    this.drop((lo >>> 12) & TLB_MASK);
    if (this.superEntries === 0) { if (this.superLevels !== 0) this.forgetSuper(); return; }
    let hit = false;
    for (let l = 1, m = this.superLevels >>> 1; m !== 0; l++, m >>>= 1) {
      if ((m & 1) === 0) continue;
      const b = superHash(l, lo, hi);
      if ((this.superSeen[b >>> 5]! & (1 << (b & 31))) !== 0) { hit = true; break; }
    }
    if (!hit) return;
    const lv = this.level, e = this.e;
    for (let i = 0; i < TLB_SIZE; i++) {
      const l = lv[i]!;
      if (l === 0) continue;
      // The entry's page address: from any tag still valid (drop invalidates all three; a level is non-zero only while one is).
      const j = i * TLB_WORDS;
      const w = e[j + TLB_W_R] !== TLB_INVALID ? TLB_W_R : e[j + TLB_W_W] !== TLB_INVALID ? TLB_W_W : TLB_W_X;
      const tlo = e[j + w]!, thi = e[j + w + 1]!;
      const bits = 12 + 9 * l; // the superpage spans 2^bits bytes
      const same = bits < 32 ? thi === hi && ((tlo ^ lo) >>> bits) === 0 : (thi ^ hi) >>> (bits - 32) === 0;
      if (same) this.drop(i);
    }
  }

  private drop(i: number): void {
    const e = this.e, j = i * TLB_WORDS;
    e[j + TLB_W_R] = TLB_INVALID; e[j + TLB_W_W] = TLB_INVALID; e[j + TLB_W_X] = TLB_INVALID;
    if (this.level[i] !== 0) { this.level[i] = 0; this.superEntries--; }
  }

  /**
   * Drops every entry that maps the page at host offset `hostPage` (its
   * p2m mapping changed: copy-on-write, balloon, swap-out, merge).
   */
  dropHost(hostPage: number): void {
    const e = this.e;
    for (let i = 0, j = 0; i < TLB_SIZE; i++, j += TLB_WORDS) {
      if (e[j + TLB_W_HOST] === hostPage && (e[j + TLB_W_R] !== TLB_INVALID || e[j + TLB_W_W] !== TLB_INVALID || e[j + TLB_W_X] !== TLB_INVALID)) this.drop(i);
    }
  }

  /** Drops the cached write permission of every entry that maps the RAM page at host offset `hostPage`. */
  dropWrite(hostPage: number): void {
    const e = this.e;
    for (let j = 0; j < e.length; j += TLB_WORDS) if (e[j + TLB_W_HOST] === hostPage) e[j + TLB_W_W] = TLB_INVALID;
  }
}
