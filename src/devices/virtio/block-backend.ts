/**
 * What the virtio block device reads and writes: a byte-addressed disk of
 * fixed size (a raw file, a qcow2 image, an in-memory overlay). Backends
 * are synchronous; the device calls them while handling a queue kick.
 * Failures are thrown (the device turns them into VIRTIO_BLK_S_IOERR).
 */

/** A virtual disk the block device serves. */
export interface BlockBackend {
  /** Virtual size in bytes. */
  readonly size: number;
  /** True if writes, discards and write-zeroes must be refused. */
  readonly readOnly: boolean;
  /** Fills `buf` with the bytes at `offset` (offset + buf.length <= size). */
  read(offset: number, buf: Uint8Array): void;
  /** Writes `data` at `offset` (offset + data.length <= size). */
  write(offset: number, data: Uint8Array): void;
  /** Makes every completed write stable (fsync). */
  flush(): void;
  /** Hints that a range is unused; its contents become unspecified (may read as old data or zeros). */
  discard(offset: number, len: number): void;
  /** Makes a range read as zeros; `unmap` allows deallocating it. */
  writeZeroes(offset: number, len: number, unmap: boolean): void;
  /** Releases host resources (files); the backend is unusable afterwards. */
  close(): void;
}

/** Checks that [offset, offset+len) lies inside a disk of `size` bytes. */
export function checkRange(offset: number, len: number, size: number): void {
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(len) && offset >= 0 && len >= 0 && offset + len <= size)) {
    throw new RangeError(`disk access ${offset}+${len} outside 0..${size}`);
  }
}

/** Granularity of the snapshot overlay's copy-on-write chunks. */
const OVERLAY_CHUNK = 64 * 1024;

/**
 * `-drive snapshot=on`: every write lands in memory, in 64 KiB chunks
 * copied from the base on first write; the base (opened read-only) is
 * never modified and the overlay disappears when the VM stops.
 */
export class SnapshotOverlay implements BlockBackend {
  readonly size: number;
  readonly readOnly = false;
  private readonly chunks = new Map<number, Uint8Array>();

  constructor(private readonly base: BlockBackend) { this.size = base.size; }

  /** Bytes held in memory by the overlay. */
  get overlayBytes(): number { return this.chunks.size * OVERLAY_CHUNK; }

  read(offset: number, buf: Uint8Array): void {
    checkRange(offset, buf.length, this.size);
    let done = 0;
    while (done < buf.length) {
      const pos = offset + done, idx = Math.floor(pos / OVERLAY_CHUNK), inOff = pos - idx * OVERLAY_CHUNK;
      const n = Math.min(OVERLAY_CHUNK - inOff, buf.length - done);
      const c = this.chunks.get(idx);
      if (c) buf.set(c.subarray(inOff, inOff + n), done);
      else this.base.read(pos, buf.subarray(done, done + n));
      done += n;
    }
  }

  private chunk(idx: number): Uint8Array {
    let c = this.chunks.get(idx);
    if (!c) {
      c = new Uint8Array(OVERLAY_CHUNK);
      const start = idx * OVERLAY_CHUNK;
      this.base.read(start, c.subarray(0, Math.min(OVERLAY_CHUNK, this.size - start)));
      this.chunks.set(idx, c);
    }
    return c;
  }

  write(offset: number, data: Uint8Array): void {
    checkRange(offset, data.length, this.size);
    let done = 0;
    while (done < data.length) {
      const pos = offset + done, idx = Math.floor(pos / OVERLAY_CHUNK), inOff = pos - idx * OVERLAY_CHUNK;
      const n = Math.min(OVERLAY_CHUNK - inOff, data.length - done);
      this.chunk(idx).set(data.subarray(done, done + n), inOff);
      done += n;
    }
  }

  flush(): void { /* nothing is persistent */ }
  discard(offset: number, len: number): void { checkRange(offset, len, this.size); }

  writeZeroes(offset: number, len: number, _unmap = false): void {
    checkRange(offset, len, this.size);
    const zero = new Uint8Array(Math.min(len, OVERLAY_CHUNK));
    for (let done = 0; done < len; done += zero.length) this.write(offset + done, zero.subarray(0, Math.min(zero.length, len - done)));
  }

  close(): void { this.chunks.clear(); this.base.close(); }
}
