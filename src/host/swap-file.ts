/**
 * The Node swap store for host swapping (src/memory/host-swap.ts): one
 * file, slot s at byte s * FRAME_SIZE, written and read with positional
 * synchronous calls. Its size is bounded: a slot past the bound fails with
 * "swap file full" rather than filling the host's disk. Every failure is an
 * error string naming the file, never an exception, so host swap can fail
 * the one VM that needed the page.
 *
 * Several threads use one swap file (one VM per worker thread, and the
 * host's thread): the host creates it (`new SwapFile`), each other thread
 * opens it again with `SwapFile.attach(handle)` and gets its own fd. The
 * slot map (src/memory/host-swap.ts) is shared, so two threads never hold
 * the same slot, and positional I/O on disjoint ranges needs no lock.
 */
import * as fs from 'node:fs';
import { FRAME_SIZE } from '../memory/frame-pool.js';
import { MAX_SWAP_SLOTS, type SwapStore } from '../memory/host-swap.js';

/** The fs calls a swap file makes (tests replace them to provoke short or failed writes). */
export interface SwapFileIo {
  /** Like fs.writeSync(fd, buffer, offset, length, position). */
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Like fs.readSync(fd, buffer, offset, length, position). */
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
}

/** What another thread needs to open the same swap file; structured-cloneable. */
export interface SwapFileHandle {
  /** The file. */
  path: string;
  /** Its byte bound. */
  maxBytes: number;
}

/** A swap store in a file of at most `maxBytes` bytes. */
export class SwapFile implements SwapStore {
  /** The file's path (for messages). */
  readonly path: string;
  /** Slots the file may hold: floor(maxBytes / FRAME_SIZE). */
  readonly capacity: number;
  private readonly maxBytes: number;
  private readonly io: SwapFileIo;
  private fd: number;

  /**
   * Creates (or truncates) `path` as a swap file of at most `maxBytes`
   * bytes, readable by the owner only (it holds guest memory). Throws
   * Error when the file cannot be opened (a host configuration error).
   * `attach` (the fourth argument) opens an existing file without
   * truncating it.
   */
  constructor(path: string, maxBytes: number, io: SwapFileIo = fs, attach = false) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`swap file ${path}: bad size ${maxBytes}`);
    this.path = path;
    this.maxBytes = maxBytes;
    this.capacity = Math.min(Math.floor(maxBytes / FRAME_SIZE), MAX_SWAP_SLOTS);
    this.io = io;
    try {
      this.fd = fs.openSync(path, attach ? 'r+' : 'w+', 0o600);
    } catch (e) {
      throw new Error(`swap file ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Opens, in this thread, the swap file another thread created (`file.handle()`), with an fd of its own; throws like the constructor. */
  static attach(handle: SwapFileHandle, io: SwapFileIo = fs): SwapFile {
    return new SwapFile(handle.path, handle.maxBytes, io, true);
  }

  /** The structured-cloneable handle another thread passes to `SwapFile.attach`. */
  handle(): SwapFileHandle {
    return { path: this.path, maxBytes: this.maxBytes };
  }

  /** Writes one slot; an error message, or null. */
  write(slot: number, bytes: Uint8Array): string | null {
    if (!(slot >= 0 && slot < this.capacity)) return `swap file ${this.path} full (${this.maxBytes} bytes, slot ${slot})`;
    if (this.fd < 0) return `swap file ${this.path}: closed`;
    const pos = slot * FRAME_SIZE;
    let done = 0;
    try {
      while (done < bytes.length) {
        const n = this.io.writeSync(this.fd, bytes, done, bytes.length - done, pos + done);
        if (n <= 0) return `swap file ${this.path}: short write at slot ${slot} (${done} of ${bytes.length} bytes)`;
        done += n;
      }
    } catch (e) {
      return `swap file ${this.path}: write of slot ${slot}: ${(e as Error).message}`;
    }
    return null;
  }

  /** Reads one slot; an error message, or null. */
  read(slot: number, into: Uint8Array): string | null {
    if (!(slot >= 0 && slot < this.capacity)) return `swap file ${this.path}: no slot ${slot}`;
    if (this.fd < 0) return `swap file ${this.path}: closed`;
    const pos = slot * FRAME_SIZE;
    let done = 0;
    try {
      while (done < into.length) {
        const n = this.io.readSync(this.fd, into, done, into.length - done, pos + done);
        if (n <= 0) return `swap file ${this.path}: short read at slot ${slot} (${done} of ${into.length} bytes; truncated?)`;
        done += n;
      }
    } catch (e) {
      return `swap file ${this.path}: read of slot ${slot}: ${(e as Error).message}`;
    }
    return null;
  }

  /** Closes the file (later calls fail with an error string). */
  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
