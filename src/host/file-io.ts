/**
 * Synchronous host file access for disk images: the `SyncFile` and
 * `FileHost` interfaces the image formats (src/images/raw-image.ts,
 * qcow2.ts) are written against, and their node:fs / node:zlib
 * implementation. Every failure is an `ImageError` with one line naming the
 * file, so callers can report it as-is.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ImageError } from '../images/errors.js';

/** An open file with positional, synchronous I/O. */
export interface SyncFile {
  /** The path the file was opened with (for messages). */
  readonly path: string;
  /** Whether the file was opened for writing. */
  readonly writable: boolean;
  /** Current length in bytes. */
  size(): number;
  /** Reads up to buf.length bytes at `pos`; returns the count (less only at end of file). */
  pread(buf: Uint8Array, pos: number): number;
  /** Writes all of `data` at `pos` (extending the file if needed). */
  pwrite(data: Uint8Array, pos: number): void;
  /** Commits written data to stable storage. */
  fsync(): void;
  /** Sets the file length. */
  ftruncate(len: number): void;
  /** Closes the descriptor (later calls fail). */
  close(): void;
}

/** Host services the image formats need: opening files, naming backing files, inflating. */
export interface FileHost {
  /** Opens `file` read-only or read-write; throws ImageError. */
  open(file: string, writable: boolean): SyncFile;
  /** Resolves a backing-file name stored in `image` (relative names are relative to its directory). */
  resolveBacking(image: string, name: string): string;
  /** Decompresses raw deflate data (RFC 1951) into at most `outLen` bytes; throws ImageError on bad data. */
  inflateRaw(data: Uint8Array, outLen: number): Uint8Array;
}

/** One-line text for a Node error code. */
function why(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT': return 'no such file or directory';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'EROFS': return 'read-only file system';
    case 'ENOSPC': return 'no space left on device';
    case 'EIO': return 'input/output error';
    default: return code ?? (e instanceof Error ? e.message.split('\n')[0]! : String(e));
  }
}

/** A SyncFile over a node:fs descriptor. */
class NodeFile implements SyncFile {
  private fd: number;
  constructor(readonly path: string, readonly writable: boolean, fd: number) { this.fd = fd; }

  size(): number {
    try { return fs.fstatSync(this.fd).size; } catch (e) { throw new ImageError(`${this.path}: stat failed: ${why(e)}`, { cause: e }); }
  }

  pread(buf: Uint8Array, pos: number): number {
    let done = 0;
    try {
      while (done < buf.length) {
        const n = fs.readSync(this.fd, buf, done, buf.length - done, pos + done);
        if (n === 0) break;
        done += n;
      }
    } catch (e) { throw new ImageError(`${this.path}: read failed at ${pos}: ${why(e)}`, { cause: e }); }
    return done;
  }

  pwrite(data: Uint8Array, pos: number): void {
    let done = 0;
    try {
      while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done, pos + done);
    } catch (e) { throw new ImageError(`${this.path}: write failed at ${pos}: ${why(e)}`, { cause: e }); }
  }

  fsync(): void {
    try { fs.fsyncSync(this.fd); } catch (e) { throw new ImageError(`${this.path}: fsync failed: ${why(e)}`, { cause: e }); }
  }

  ftruncate(len: number): void {
    try { fs.ftruncateSync(this.fd, len); } catch (e) { throw new ImageError(`${this.path}: truncate failed: ${why(e)}`, { cause: e }); }
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    try { fs.closeSync(fd); } catch { /* already closed */ }
  }
}

/** FileHost on Node.js (node:fs, node:path, node:zlib). */
export const nodeFileHost: FileHost = {
  open(file: string, writable: boolean): SyncFile {
    let fd: number;
    try { fd = fs.openSync(file, writable ? 'r+' : 'r'); } catch (e) { throw new ImageError(`${file}: cannot open: ${why(e)}`, { cause: e }); }
    try {
      if (!fs.fstatSync(fd).isFile()) throw new ImageError(`${file}: not a regular file`);
    } catch (e) {
      fs.closeSync(fd);
      throw e instanceof ImageError ? e : new ImageError(`${file}: cannot open: ${why(e)}`, { cause: e });
    }
    return new NodeFile(file, writable, fd);
  },
  resolveBacking(image: string, name: string): string {
    return path.isAbsolute(name) ? name : path.join(path.dirname(image), name);
  },
  inflateRaw(data: Uint8Array, outLen: number): Uint8Array {
    try {
      // Z_SYNC_FLUSH: the stream may end without its final block being marked (and may be followed by other data).
      const out = zlib.inflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: outLen });
      return new Uint8Array(out.buffer, out.byteOffset, out.length);
    } catch (e) {
      throw new ImageError(`bad compressed data: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, { cause: e });
    }
  },
};
