/**
 * Raw disk images: the file's bytes are the disk's bytes. The virtual size
 * is the file size rounded down to whole 512-byte sectors.
 */
import type { SyncFile } from '../host/file-io.js';
import { checkRange, type BlockBackend } from '../devices/virtio/block-backend.js';
import { ImageError } from './errors.js';

/** Sector size of the virtio block protocol (virtio 1.2 §5.2.4: capacity is in 512-byte sectors). */
const SECTOR = 512;
/** Size of the zero buffer used for write-zeroes. */
const ZERO_CHUNK = 1024 * 1024;
/** The qcow2 magic "QFI\xfb" (qcow2 spec, header bytes 0-3). */
const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb] as const;

/** Options for a raw image. */
export interface RawImageOptions {
  /**
   * The format was guessed, not given: refuse writes that would put another
   * format's header in sector 0 (the next probe would trust it).
   */
  probed?: boolean;
}

/** A raw image file as a BlockBackend. */
export class RawImage implements BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  private readonly probed: boolean;

  constructor(private readonly file: SyncFile, opts: RawImageOptions = {}) {
    this.size = Math.floor(file.size() / SECTOR) * SECTOR;
    this.readOnly = !file.writable;
    this.probed = opts.probed ?? false;
  }

  read(offset: number, buf: Uint8Array): void {
    checkRange(offset, buf.length, this.size);
    const n = this.file.pread(buf, offset);
    if (n < buf.length) buf.fill(0, n); // the file shrank underneath us
  }

  write(offset: number, data: Uint8Array): void {
    checkRange(offset, data.length, this.size);
    if (this.readOnly) throw new ImageError(`${this.file.path}: image is read-only`);
    if (this.probed && offset === 0 && data.length >= 4 && QCOW2_MAGIC.every((b, i) => data[i] === b)) {
      throw new ImageError(`${this.file.path}: refusing to write a qcow2 header into an image probed as raw (give format=raw)`);
    }
    this.file.pwrite(data, offset);
  }

  flush(): void { if (!this.readOnly) this.file.fsync(); }

  /** Discard is only a hint; Node has no hole punching, so the data stays. */
  discard(offset: number, len: number): void { checkRange(offset, len, this.size); }

  writeZeroes(offset: number, len: number, _unmap = false): void {
    checkRange(offset, len, this.size);
    if (this.readOnly) throw new ImageError(`${this.file.path}: image is read-only`);
    const zero = new Uint8Array(Math.min(len, ZERO_CHUNK));
    for (let done = 0; done < len; done += zero.length) this.file.pwrite(zero.subarray(0, Math.min(zero.length, len - done)), offset + done);
  }

  close(): void { this.file.close(); }
}
