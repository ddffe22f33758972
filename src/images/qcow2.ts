/**
 * qcow2 disk images (QEMU's docs/interop/qcow2.txt), versions 2 and 3, read
 * and write, plus `openDiskImage`, which opens a raw or qcow2 file (probing
 * the format when none is given) as a BlockBackend.
 *
 * Reads follow the L1/L2 tables to standard clusters, zero clusters,
 * compressed (deflate) clusters, or, for unallocated clusters, the backing
 * file (opened read-only; raw or qcow2). Writes allocate clusters (with
 * copy-on-write of partially written clusters from the backing file,
 * zeros or the decompressed cluster) and update metadata write-through in
 * the safe order: refcounts, then data, then L2, then L1. The dirty bit is
 * never set (no lazy refcounts), so the image is consistent whenever tsvm
 * stops, even if it is killed; flush is an fsync. (Against a host crash
 * the order only holds up to the last flush: there is no fsync between
 * metadata updates.)
 */
import type { FileHost, SyncFile } from '../host/file-io.js';
import { checkRange, type BlockBackend } from '../devices/virtio/block-backend.js';
import { ImageError } from './errors.js';
import { RawImage } from './raw-image.js';
import { hasQcow2Magic, readQcow2Header, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, type Qcow2Header } from './qcow2-header.js';
import { Qcow2Refcounts, entryOffset, setEntry } from './qcow2-refcount.js';

/** Disk image formats tsvm reads and writes. */
export type DiskFormat = 'raw' | 'qcow2';
/** Longest backing chain followed (guards against loops). */
const MAX_BACKING_DEPTH = 16;
/** Bytes of L2 tables kept in memory. */
const L2_CACHE_BYTES = 32 * 1024 * 1024;
/** L2 entry bits (qcow2 spec, "L2 table entry"): 63 COPIED, 62 compressed (in the high word); bit 0 reads-as-zero. */
const L2_COPIED = 0x80000000, L2_COMPRESSED = 0x40000000, L2_ZERO = 1;
/** Auto-clear feature field (qcow2 spec, header bytes 88-95). */
const HDR_AUTOCLEAR = 88;
/** Compressed data is counted in 512-byte sectors (qcow2 spec, "Compressed Clusters Descriptor"). */
const SECTOR = 512;

/** What a guest cluster maps to. */
const K_UNALLOC = 0, K_ZERO = 1, K_NORMAL = 2, K_COMPRESSED = 3;

/** Options for opening a disk image. */
export interface OpenImageOptions {
  /** The format; probed from the file's first bytes when absent (qcow2 magic, else raw). */
  format?: DiskFormat;
  /** Open without write access. */
  readOnly: boolean;
}

/** Opens `file` as a BlockBackend; throws ImageError with one line on any problem. */
export function openDiskImage(host: FileHost, file: string, opts: OpenImageOptions, depth = 0): BlockBackend {
  if (depth > MAX_BACKING_DEPTH) throw new ImageError(`${file}: backing chain longer than ${MAX_BACKING_DEPTH} images (a loop?)`);
  const f = host.open(file, !opts.readOnly);
  try {
    let format = opts.format;
    const probed = format === undefined;
    if (format === undefined) {
      const head = new Uint8Array(4);
      f.pread(head, 0);
      format = hasQcow2Magic(head) ? 'qcow2' : 'raw';
    }
    return format === 'qcow2' ? new Qcow2Image(host, f, depth) : new RawImage(f, { probed });
  } catch (e) {
    f.close();
    throw e;
  }
}

/** A qcow2 image as a BlockBackend. */
export class Qcow2Image implements BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  /** The parsed header. */
  readonly header: Qcow2Header;
  private readonly cs: number;
  private readonly l2Entries: number;
  private readonly l1: Uint8Array;
  private readonly l1dv: DataView;
  private readonly l2cache = new Map<number, DataView>();
  private readonly l2CacheMax: number;
  private readonly refs: Qcow2Refcounts;
  private readonly backing: BlockBackend | null = null;
  // Result of the last lookup (avoids an object per cluster).
  private mHi = 0;
  private mLo = 0;
  private mHost = 0;
  // Last decompressed cluster.
  private compHi = -1;
  private compLo = -1;
  private compData: Uint8Array | null = null;

  /** Opens the qcow2 image in `file` (which it then owns); throws ImageError. */
  constructor(private readonly host: FileHost, private readonly file: SyncFile, depth = 0) {
    const h = readQcow2Header(file), name = file.path, fileSize = file.size();
    this.header = h;
    this.size = h.size;
    this.cs = h.clusterSize;
    this.l2Entries = h.clusterSize / 8;
    this.l2CacheMax = Math.max(16, Math.floor(L2_CACHE_BYTES / h.clusterSize));
    this.readOnly = !file.writable;
    if (!this.readOnly) {
      const hint = 'open it with readonly=on, or repair it with qemu-img check -r all';
      if (h.incompatible & INCOMPAT_DIRTY) throw new ImageError(`${name}: qcow2 image is marked dirty (lazy refcounts); ${hint}`);
      if (h.incompatible & INCOMPAT_CORRUPT) throw new ImageError(`${name}: qcow2 image is marked corrupt; ${hint}`);
      if (h.nbSnapshots > 0) throw new ImageError(`${name}: qcow2 image has internal snapshots, which tsvm only opens read-only (readonly=on or snapshot=on)`);
    }
    this.l1 = new Uint8Array(h.l1Size * 8);
    file.pread(this.l1, h.l1TableOffset);
    this.l1dv = new DataView(this.l1.buffer);
    for (let i = 0; i < h.l1Size; i++) {
      const off = entryOffset(this.l1dv, 8 * i);
      if (off < 0 || off % this.cs !== 0) throw new ImageError(`${name}: corrupt qcow2 image: L1 entry ${i} is invalid`);
      if (off >= fileSize) throw new ImageError(`${name}: truncated qcow2 image (L2 table at 0x${off.toString(16)} past end of file, ${fileSize} bytes)`);
    }
    this.refs = new Qcow2Refcounts(file, h.clusterBits, h.refcountOrder, h.refcountTableOffset, h.refcountTableClusters);
    this.refs.scan(fileSize);
    if (h.backingFile !== undefined) {
      const fmt = h.backingFormat;
      if (fmt !== undefined && fmt !== 'raw' && fmt !== 'qcow2') throw new ImageError(`${name}: backing file format '${fmt}' is not supported (raw or qcow2)`);
      const path = host.resolveBacking(name, h.backingFile);
      try {
        this.backing = openDiskImage(host, path, { readOnly: true, ...(fmt !== undefined ? { format: fmt } : {}) }, depth + 1);
      } catch (e) {
        if (e instanceof ImageError) throw new ImageError(`${name}: cannot open its backing file: ${e.message}`, { cause: e });
        throw e;
      }
    }
    if (!this.readOnly && (h.autoclearLo | h.autoclearHi) !== 0) {
      // We maintain none of the auto-clear features (e.g. bitmaps): clear them before writing (qcow2 spec, bytes 88-95).
      this.file.pwrite(new Uint8Array(8), HDR_AUTOCLEAR);
    }
  }

  private corrupt(msg: string): ImageError { return new ImageError(`${this.file.path}: corrupt qcow2 image: ${msg}`); }

  /** The L2 table for L1 index `i`: null if unallocated and !alloc. */
  private l2Table(i: number, alloc: boolean): DataView | null {
    const cached = this.l2cache.get(i);
    if (cached && !alloc) return cached;
    const l1Hi = this.l1dv.getUint32(8 * i), off = entryOffset(this.l1dv, 8 * i);
    if (off < 0 || off % this.cs !== 0) throw this.corrupt(`L1 entry ${i} is invalid`);
    if (off === 0) {
      if (!alloc) return null;
      const at = this.refs.alloc(1), table = new Uint8Array(this.cs);
      this.file.pwrite(table, at);
      this.setL1(i, at);
      return this.cacheL2(i, new DataView(table.buffer));
    }
    if (alloc && (l1Hi & L2_COPIED) === 0) { // only accurate with refcount 1 (qcow2 spec, "L1 table entry" bit 63)
      if (this.refs.get(off / this.cs) !== 1) throw new ImageError(`${this.file.path}: shared L2 table (internal snapshot) cannot be written`);
      this.setL1(i, off);
    }
    if (cached) return cached;
    const table = new Uint8Array(this.cs);
    this.file.pread(table, off);
    return this.cacheL2(i, new DataView(table.buffer));
  }

  private setL1(i: number, off: number): void {
    setEntry(this.l1dv, 8 * i, off, true);
    this.file.pwrite(this.l1.subarray(8 * i, 8 * i + 8), this.header.l1TableOffset + 8 * i);
  }

  private cacheL2(i: number, dv: DataView): DataView {
    this.l2cache.set(i, dv);
    if (this.l2cache.size > this.l2CacheMax) this.l2cache.delete(this.l2cache.keys().next().value!);
    return dv;
  }

  /** Classifies L2 entry `idx` of `t` (sets mHi/mLo/mHost). */
  private decode(t: DataView, idx: number): number {
    const hi = t.getUint32(8 * idx), lo = t.getUint32(8 * idx + 4);
    this.mHi = hi; this.mLo = lo; this.mHost = 0;
    if (hi & L2_COMPRESSED) return K_COMPRESSED;
    // Standard Cluster Descriptor: host offset in bits 9-55 (qcow2 spec); bits 53-55 would exceed a double's precision.
    if ((hi & 0x00e00000) !== 0) throw this.corrupt(`L2 entry points past 2^53`);
    const host = (hi & 0x00ffffff) * 4294967296 + ((lo & 0xfffffe00) >>> 0);
    if (host % this.cs !== 0) throw this.corrupt(`data cluster offset 0x${host.toString(16)} is not cluster-aligned`);
    this.mHost = host;
    if (this.header.version === 3 && (lo & L2_ZERO)) return K_ZERO;
    return host === 0 ? K_UNALLOC : K_NORMAL;
  }

  /** Looks up guest cluster `vc` (sets mHi/mLo/mHost). */
  private lookup(vc: number): number {
    const t = this.l2Table(Math.floor(vc / this.l2Entries), false);
    if (!t) { this.mHi = this.mLo = this.mHost = 0; return K_UNALLOC; }
    return this.decode(t, vc % this.l2Entries);
  }

  /** Reads the backing file at `pos` into `out` (zeros past its end or without one). */
  private readBacking(pos: number, out: Uint8Array): void {
    const b = this.backing;
    const n = b ? Math.max(0, Math.min(out.length, b.size - pos)) : 0;
    if (n > 0) b!.read(pos, out.subarray(0, n));
    out.fill(0, n);
  }

  /** Host byte range [start, start+len) of a compressed cluster descriptor. */
  private compressedSpan(hi: number, lo: number): [number, number] {
    const xh = 62 - (this.header.clusterBits - 8) - 32; // offset bits in the high word (spec: x = 62 - (cluster_bits - 8))
    const offHi = hi & ((1 << xh) - 1);
    if (offHi >= 0x200000) throw this.corrupt('compressed cluster offset past 2^53');
    const off = offHi * 4294967296 + lo, sectors = ((hi & 0x3fffffff) >>> xh) + 1;
    return [off, sectors * SECTOR - (off % SECTOR)];
  }

  /** The decompressed contents of a compressed cluster (cached). */
  private decompress(hi: number, lo: number): Uint8Array {
    if (this.compData && hi === this.compHi && lo === this.compLo) return this.compData;
    const [off, len] = this.compressedSpan(hi, lo);
    const raw = new Uint8Array(len);
    this.file.pread(raw, off);
    let out: Uint8Array;
    try { out = this.host.inflateRaw(raw, this.cs); } catch (e) {
      throw this.corrupt(`compressed cluster at 0x${off.toString(16)}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (out.length < this.cs) throw this.corrupt(`compressed cluster at 0x${off.toString(16)} inflates to ${out.length} bytes, not ${this.cs}`);
    this.compHi = hi; this.compLo = lo; this.compData = out;
    return out;
  }

  read(offset: number, buf: Uint8Array): void {
    checkRange(offset, buf.length, this.size);
    const cs = this.cs;
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done, vc = Math.floor(pos / cs), inOff = pos - vc * cs;
      let n = Math.min(cs - inOff, buf.length - done);
      const kind = this.lookup(vc);
      if (kind === K_NORMAL) {
        const host = this.mHost + inOff;
        // Merge following clusters that continue the same host run into one read.
        for (let next = vc + 1; done + n < buf.length && this.lookup(next) === K_NORMAL && this.mHost === host - inOff + (next - vc) * cs; next++) {
          n += Math.min(cs, buf.length - done - n);
        }
        const out = buf.subarray(done, done + n), got = this.file.pread(out, host);
        out.fill(0, got); // a cluster past the end of the file reads as zeros
      } else if (kind === K_COMPRESSED) {
        buf.set(this.decompress(this.mHi, this.mLo).subarray(inOff, inOff + n), done);
      } else if (kind === K_ZERO) {
        buf.fill(0, done, done + n);
      } else {
        this.readBacking(pos, buf.subarray(done, done + n));
      }
      done += n;
    }
  }

  /** Full current contents of guest cluster `vc` whose entry was just decoded as `kind`. */
  private clusterContents(vc: number, kind: number, hi: number, lo: number, host: number): Uint8Array {
    const c = new Uint8Array(this.cs), start = vc * this.cs;
    if (kind === K_NORMAL) this.file.pread(c, host);
    else if (kind === K_COMPRESSED) c.set(this.decompress(hi, lo));
    else if (kind === K_UNALLOC) this.readBacking(start, c.subarray(0, Math.min(this.cs, this.size - start)));
    return c;
  }

  /** Drops the reference an old L2 entry held on its host clusters (after the entry was overwritten). */
  private releaseEntry(kind: number, hi: number, lo: number, host: number): void {
    if (kind === K_COMPRESSED) {
      const [off, len] = this.compressedSpan(hi, lo);
      for (let c = Math.floor(off / this.cs); c <= Math.floor((off + len - 1) / this.cs); c++) this.refs.release(c);
    } else if (host !== 0) {
      this.refs.release(host / this.cs);
    }
  }

  /** Stores L2 entry `idx` (host offset, COPIED, zero flag) in memory and in the file. */
  private setL2(i: number, t: DataView, idx: number, host: number, zero: boolean): void {
    setEntry(t, 8 * idx, host, host !== 0);
    if (zero) t.setUint32(8 * idx + 4, (t.getUint32(8 * idx + 4) | L2_ZERO) >>> 0);
    this.file.pwrite(new Uint8Array(t.buffer, 8 * idx, 8), entryOffset(this.l1dv, 8 * i) + 8 * idx);
  }

  /** True if the standard cluster just decoded belongs to this L2 entry alone (COPIED, or refcount 1). */
  private owned(): boolean {
    return (this.mHi & L2_COPIED) !== 0 || this.refs.get(this.mHost / this.cs) === 1;
  }

  private checkWritable(): void {
    if (this.readOnly) throw new ImageError(`${this.file.path}: image is read-only`);
  }

  write(offset: number, data: Uint8Array): void {
    this.checkWritable();
    checkRange(offset, data.length, this.size);
    const cs = this.cs;
    let done = 0;
    while (done < data.length) {
      const pos = offset + done, vc = Math.floor(pos / cs), inOff = pos - vc * cs;
      const n = Math.min(cs - inOff, data.length - done), piece = data.subarray(done, done + n);
      const i = Math.floor(vc / this.l2Entries), idx = vc % this.l2Entries;
      const t = this.l2Table(i, true)!;
      const kind = this.decode(t, idx), hi = this.mHi, lo = this.mLo, host = this.mHost;
      if (kind === K_NORMAL && this.owned()) {
        this.file.pwrite(piece, host + inOff);
        if ((hi & L2_COPIED) === 0) this.setL2(i, t, idx, host, false);
      } else if (kind === K_ZERO && host !== 0 && this.owned()) {
        // A preallocated zero cluster: fill it, then clear the zero flag.
        const c = new Uint8Array(cs);
        c.set(piece, inOff);
        this.file.pwrite(c, host);
        this.setL2(i, t, idx, host, false);
      } else {
        // Copy-on-write into a new cluster, then point the entry at it and drop the old reference.
        let c = piece;
        if (n !== cs) { c = this.clusterContents(vc, kind, hi, lo, host); c.set(piece, inOff); }
        const at = this.refs.alloc(1);
        this.file.pwrite(c, at);
        this.setL2(i, t, idx, at, false);
        this.releaseEntry(kind, hi, lo, host);
      }
      done += n;
    }
  }

  flush(): void { if (!this.readOnly) this.file.fsync(); }

  /** Guest clusters wholly inside [offset, offset+len) (the disk's partial last cluster counts if covered to the end). */
  private wholeClusters(offset: number, len: number): [number, number] {
    const end = offset + len;
    return [Math.ceil(offset / this.cs), end === this.size ? Math.ceil(end / this.cs) : Math.floor(end / this.cs)];
  }

  /**
   * Deallocates whole clusters in the range: without a backing file they
   * become unallocated (zeros); with one, version 3 marks them zero and
   * version 2 keeps them. Partial clusters are left alone.
   */
  discard(offset: number, len: number): void {
    this.checkWritable();
    checkRange(offset, len, this.size);
    const [first, last] = this.wholeClusters(offset, len);
    if (this.backing && this.header.version === 2) return;
    for (let vc = first; vc < last; vc++) {
      const i = Math.floor(vc / this.l2Entries), idx = vc % this.l2Entries;
      const t = this.l2Table(i, false);
      if (!t) { vc = (i + 1) * this.l2Entries - 1; continue; }
      const kind = this.decode(t, idx), hi = this.mHi, lo = this.mLo, host = this.mHost;
      if (kind === K_UNALLOC || (kind === K_ZERO && host === 0)) continue;
      this.setL2(i, this.l2Table(i, true)!, idx, 0, this.backing !== null);
      this.releaseEntry(kind, hi, lo, host);
    }
  }

  writeZeroes(offset: number, len: number, unmap: boolean): void {
    this.checkWritable();
    checkRange(offset, len, this.size);
    const [first, last] = this.wholeClusters(offset, len);
    if (first >= last) { this.write(offset, new Uint8Array(len)); return; }
    const head = first * this.cs - offset, tailStart = Math.min(this.size, last * this.cs);
    if (head > 0) this.write(offset, new Uint8Array(head));
    if (offset + len > tailStart) this.write(tailStart, new Uint8Array(offset + len - tailStart));
    const zero = this.header.version === 3 ? null : new Uint8Array(this.cs);
    for (let vc = first; vc < last; vc++) {
      const i = Math.floor(vc / this.l2Entries), idx = vc % this.l2Entries;
      const t0 = this.l2Table(i, false);
      const kind = t0 ? this.decode(t0, idx) : K_UNALLOC, hi = this.mHi, lo = this.mLo, host = this.mHost;
      if ((kind === K_UNALLOC && !this.backing) || kind === K_ZERO) continue; // already reads as zeros
      if (zero) { this.write(vc * this.cs, zero.subarray(0, Math.min(this.cs, this.size - vc * this.cs))); continue; }
      const t = this.l2Table(i, true)!;
      if (kind === K_NORMAL && !unmap && this.owned()) { this.setL2(i, t, idx, host, true); continue; } // keep the allocation
      this.setL2(i, t, idx, 0, true);
      this.releaseEntry(kind, hi, lo, host);
    }
  }

  close(): void {
    this.l2cache.clear();
    this.compData = null;
    this.file.close();
    this.backing?.close();
  }
}
