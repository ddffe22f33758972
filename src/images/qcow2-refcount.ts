/**
 * qcow2 host cluster management (QEMU's docs/interop/qcow2.txt, "Host
 * cluster management"): the two-level refcount structure, cluster
 * allocation and freeing, and growing the refcount table.
 *
 * Every change is written to the file at once (write-through), ordered so
 * that stopping at any point leaves at worst leaked clusters, never one in
 * use with a refcount of 0: a new refcount block is written before the
 * table entry that points at it, refcounts are raised before anything
 * refers to the cluster, and lowered only after the last reference is gone.
 */
import type { SyncFile } from '../host/file-io.js';
import { ImageError } from './errors.js';

/** Header fields refcount_table_offset (bytes 48-55) and refcount_table_clusters (56-59) (qcow2 spec, "Header"). */
const HDR_REFTABLE_OFFSET = 48;
/** Refcount table entries: bits 9-63 are the block offset, bits 0-8 reserved (qcow2 spec, "Refcount table entry"). */
const OFFSET_MASK_LO = 0xfffffe00;
/** Refcount blocks kept in memory (each one cluster). */
const BLOCK_CACHE = 64;

/** Reads a 64-bit big-endian table entry's offset (bits 9-62), rejecting values past 2^53. */
export function entryOffset(dv: DataView, off: number): number {
  const hi = dv.getUint32(off), lo = dv.getUint32(off + 4);
  if ((hi & 0x7fffffff) >= 0x200000) return -1; // 2^53 and above: not exact in a double
  return (hi & 0x7fffffff) * 4294967296 + ((lo & OFFSET_MASK_LO) >>> 0);
}

/** Writes a table entry (offset plus the top-bit flag) big-endian at `off`. */
export function setEntry(dv: DataView, off: number, offset: number, flag63: boolean): void {
  dv.setUint32(off, (Math.floor(offset / 4294967296) | (flag63 ? 0x80000000 : 0)) >>> 0);
  dv.setUint32(off + 4, offset % 4294967296);
}

/** Refcount bookkeeping for one qcow2 file. */
export class Qcow2Refcounts {
  private readonly cs: number;
  private readonly bits: number;
  /** Refcount entries per block. */
  private readonly perBlock: number;
  private tableOffset: number;
  private table: Uint8Array;
  private tableDv: DataView;
  private readonly blocks = new Map<number, DataView>();
  /** Every cluster below this index is in use. */
  private hint = 0;

  constructor(private readonly file: SyncFile, clusterBits: number, refcountOrder: number, tableOffset: number, tableClusters: number) {
    this.cs = 2 ** clusterBits;
    this.bits = 2 ** refcountOrder;
    this.perBlock = this.cs * 8 / this.bits;
    this.tableOffset = tableOffset;
    this.table = new Uint8Array(tableClusters * this.cs);
    file.pread(this.table, tableOffset); // a short read leaves zeros: unallocated blocks
    this.tableDv = new DataView(this.table.buffer);
  }

  private get tableEntries(): number { return this.table.length / 8; }

  private bad(msg: string): ImageError { return new ImageError(`${this.file.path}: corrupt qcow2 image: ${msg}`); }

  /** Offset of refcount block `t`, 0 if not allocated. */
  private blockOffset(t: number): number {
    if (t >= this.tableEntries) return 0;
    const off = entryOffset(this.tableDv, 8 * t);
    if (off < 0 || off % this.cs !== 0) throw this.bad(`refcount table entry ${t} is invalid`);
    return off;
  }

  /** Refcount block `t` (null if unallocated), cached. */
  private block(t: number): DataView | null {
    let b = this.blocks.get(t);
    if (b) {
      if (this.blocks.size > 1) { this.blocks.delete(t); this.blocks.set(t, b); }
      return b;
    }
    const off = this.blockOffset(t);
    if (off === 0) return null;
    const u8 = new Uint8Array(this.cs);
    if (this.file.pread(u8, off) < this.cs && off >= this.file.size()) throw this.bad(`refcount block ${t} lies past the end of the file`);
    b = new DataView(u8.buffer);
    this.cache(t, b);
    return b;
  }

  private cache(t: number, b: DataView): void {
    this.blocks.set(t, b);
    if (this.blocks.size > BLOCK_CACHE) this.blocks.delete(this.blocks.keys().next().value!);
  }

  /** Reads entry `i` of a refcount block. */
  private entry(dv: DataView, i: number): number {
    const bits = this.bits;
    if (bits < 8) return (dv.getUint8((i * bits) >> 3) >> ((i * bits) & 7)) & ((1 << bits) - 1); // bit 0 is the LSB (spec)
    if (bits === 8) return dv.getUint8(i);
    if (bits === 16) return dv.getUint16(2 * i);
    if (bits === 32) return dv.getUint32(4 * i);
    return dv.getUint32(8 * i) * 4294967296 + dv.getUint32(8 * i + 4);
  }

  /** Sets entry `i`; returns the byte range [start, end) that changed. */
  private setEntryIn(dv: DataView, i: number, v: number): [number, number] {
    const bits = this.bits;
    if (bits < 8) {
      const byte = (i * bits) >> 3, sh = (i * bits) & 7, m = ((1 << bits) - 1) << sh;
      dv.setUint8(byte, (dv.getUint8(byte) & ~m) | ((v << sh) & m));
      return [byte, byte + 1];
    }
    if (bits === 8) { dv.setUint8(i, v); return [i, i + 1]; }
    if (bits === 16) { dv.setUint16(2 * i, v); return [2 * i, 2 * i + 2]; }
    if (bits === 32) { dv.setUint32(4 * i, v); return [4 * i, 4 * i + 4]; }
    dv.setUint32(8 * i, Math.floor(v / 4294967296)); dv.setUint32(8 * i + 4, v % 4294967296);
    return [8 * i, 8 * i + 8];
  }

  /** Refcount of host cluster `c` (0 when no block covers it). */
  get(c: number): number {
    const b = this.block(Math.floor(c / this.perBlock));
    return b ? this.entry(b, c % this.perBlock) : 0;
  }

  /** Sets the refcount of cluster `c`, whose block must exist. */
  private set(c: number, v: number): void {
    const t = Math.floor(c / this.perBlock), b = this.block(t);
    if (!b) throw new Error(`qcow2: refcount block ${t} missing`);
    if (v > 2 ** this.bits - 1) throw new ImageError(`${this.file.path}: refcount overflow for cluster ${c}`);
    const [s, e] = this.setEntryIn(b, c % this.perBlock, v);
    this.file.pwrite(new Uint8Array(b.buffer, s, e - s), this.blockOffset(t) + s);
  }

  /** Lowers the refcount of cluster `c` by one (freeing it at 0). */
  release(c: number): void {
    const v = this.get(c);
    if (v === 0) throw this.bad(`freeing cluster ${c}, whose refcount is already 0`);
    this.set(c, v - 1);
    if (v === 1 && c < this.hint) this.hint = c;
  }

  /**
   * Reads every refcount block once: finds the first free cluster and
   * checks that no cluster in use lies wholly past the end of the file
   * (a truncated image). Throws ImageError.
   */
  scan(fileSize: number): void {
    let firstFree = -1, lastUsed = -1;
    for (let t = 0; t < this.tableEntries; t++) {
      const b = this.block(t);
      if (!b) { if (firstFree < 0) firstFree = t * this.perBlock; continue; }
      const off = this.blockOffset(t);
      if (off >= fileSize) throw new ImageError(`${this.file.path}: truncated qcow2 image (refcount block at 0x${off.toString(16)} past end of file)`);
      for (let i = 0; i < this.perBlock; i++) {
        if (this.entry(b, i) !== 0) lastUsed = t * this.perBlock + i;
        else if (firstFree < 0) firstFree = t * this.perBlock + i;
      }
    }
    if (this.get(0) === 0) throw this.bad('the header cluster has refcount 0');
    if (lastUsed * this.cs >= fileSize) {
      throw new ImageError(`${this.file.path}: truncated qcow2 image (cluster at 0x${(lastUsed * this.cs).toString(16)} is in use but the file ends at 0x${fileSize.toString(16)})`);
    }
    this.hint = firstFree < 0 ? this.tableEntries * this.perBlock : firstFree;
  }

  /** Start of the first run of `n` free clusters at or after the hint (advances the hint). */
  private findFree(n: number): number {
    let run = 0, start = this.hint, firstFree = -1;
    for (let c = this.hint; ; c++) {
      const t = Math.floor(c / this.perBlock);
      if (c % this.perBlock === 0 && run === 0 && !this.block(t) && n <= this.perBlock) {
        if (firstFree < 0) firstFree = c;
        start = c; break; // a whole unallocated block range is free
      }
      if (this.get(c) === 0) {
        if (firstFree < 0) firstFree = c;
        if (run === 0) start = c;
        if (++run === n) break;
      } else run = 0;
    }
    this.hint = firstFree;
    return start;
  }

  /** Allocates `n` contiguous clusters with refcount 1; returns the byte offset of the first. */
  alloc(n: number): number {
    let start: number;
    for (;;) {
      start = this.findFree(n);
      const t0 = Math.floor(start / this.perBlock), t1 = Math.floor((start + n - 1) / this.perBlock);
      let missing = -1;
      for (let t = t0; t <= t1 && missing < 0; t++) if (this.blockOffset(t) === 0) missing = t;
      if (missing < 0) break;
      this.createBlock(missing);
    }
    for (let c = start; c < start + n; c++) this.set(c, 1);
    if (this.hint >= start && this.hint < start + n) this.hint = start + n;
    return start * this.cs;
  }

  /**
   * Creates refcount block `t`. Its range holds no block, so every cluster
   * in it is free: the block goes in the range's first cluster and counts
   * itself.
   */
  private createBlock(t: number): void {
    if (t >= this.tableEntries) { this.growTable(t); if (this.blockOffset(t) !== 0) return; }
    const c = t * this.perBlock, b = new DataView(new ArrayBuffer(this.cs));
    this.setEntryIn(b, 0, 1);
    this.file.pwrite(new Uint8Array(b.buffer), c * this.cs);
    this.cache(t, b);
    setEntry(this.tableDv, 8 * t, c * this.cs, false);
    this.file.pwrite(this.table.subarray(8 * t, 8 * t + 8), this.tableOffset + 8 * t);
  }

  /** True if refcount block `t` is missing (in the table as it is now). */
  private lacks(t: number): boolean { return t >= this.tableEntries || this.blockOffset(t) === 0; }

  /**
   * Moves the refcount table to a bigger one covering block `need`. The new
   * table and the blocks that count it go in fresh clusters at the end of
   * the file; the header is switched over last and the old table freed.
   */
  private growTable(need: number): void {
    const cs = this.cs, E = this.perBlock, perCluster = cs / 8;
    const P = Math.ceil(this.file.size() / cs);
    let entries = Math.max(need + 1, this.tableEntries * 2), T: number, B = 0;
    for (;;) {
      entries = Math.ceil(entries / perCluster) * perCluster;
      T = entries / perCluster;
      for (;;) { // blocks needed to count [P, P + B + T)
        let count = 0;
        for (let t = Math.floor(P / E); t <= Math.floor((P + B + T - 1) / E); t++) if (this.lacks(t)) count++;
        if (count === B) break;
        B = count;
      }
      const last = Math.floor((P + B + T - 1) / E);
      if (last < entries) break;
      entries = last + 1;
    }
    if (T * cs > 8 * 1024 * 1024) throw new ImageError(`${this.file.path}: refcount table would exceed 8 MiB`);
    const table = new Uint8Array(T * cs);
    table.set(this.table);
    const tdv = new DataView(table.buffer);
    let k = 0;
    for (let t = Math.floor(P / E); t <= Math.floor((P + B + T - 1) / E); t++) {
      if (!this.lacks(t)) continue;
      const blockCluster = P + k++, b = new DataView(new ArrayBuffer(cs));
      for (let c = Math.max(P, t * E); c < Math.min(P + B + T, (t + 1) * E); c++) this.setEntryIn(b, c - t * E, 1);
      this.file.pwrite(new Uint8Array(b.buffer), blockCluster * cs);
      this.cache(t, b);
      setEntry(tdv, 8 * t, blockCluster * cs, false);
    }
    for (let c = P; c < P + B + T; c++) { // area clusters counted by blocks that already exist
      const t = Math.floor(c / E);
      if (!this.lacks(t)) this.set(c, 1);
    }
    const newOffset = (P + B) * cs;
    this.file.pwrite(table, newOffset);
    const hdr = new Uint8Array(12), hdv = new DataView(hdr.buffer);
    setEntry(hdv, 0, newOffset, false);
    hdv.setUint32(8, T);
    this.file.pwrite(hdr, HDR_REFTABLE_OFFSET);
    const oldOffset = this.tableOffset, oldClusters = this.table.length / cs;
    this.table = table; this.tableDv = tdv; this.tableOffset = newOffset;
    for (let i = 0; i < oldClusters; i++) this.release(oldOffset / cs + i);
  }
}
