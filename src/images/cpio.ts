/**
 * Writer (and a small reader) for `newc` cpio archives, the SVR4 portable
 * ASCII format with magic "070701" that the Linux kernel unpacks as an
 * initramfs. Layout per cpio(5) ("New ASCII Format") and the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst:
 *
 *   header  = "070701" + 13 fields of 8 upper-case hex digits
 *             (ino mode uid gid nlink mtime filesize devmajor devminor
 *              rdevmajor rdevminor namesize check)       -> 110 bytes
 *   name    = path + NUL, padded with NULs so header+name is a multiple of 4
 *   data    = file contents (or a symlink's target), padded to a multiple of 4
 *   ...
 *   trailer = an entry named "TRAILER!!!" with all-zero fields
 *
 * Output is reproducible: uid/gid 0, mtime 0, inode numbers assigned in
 * entry order, entries emitted parents-first in insertion order. Pure: no
 * node: imports.
 */

import { ImageError } from './errors.js';

/** File-type bits of st_mode (cpio(5), "mode" field; same values as <sys/stat.h>). */
export const S_IFMT = 0o170000;
/** Directory type bits. */
export const S_IFDIR = 0o040000;
/** Regular file type bits. */
export const S_IFREG = 0o100000;
/** Symbolic link type bits. */
export const S_IFLNK = 0o120000;
/** Character device type bits. */
export const S_IFCHR = 0o020000;
/** Block device type bits. */
export const S_IFBLK = 0o060000;

/** Magic of the newc format without checksums (cpio(5); buffer-format.rst "070701"). */
const NEWC_MAGIC = '070701';
/** Magic of the same format with a checksum field (buffer-format.rst "070702"); accepted by the reader. */
const CRC_MAGIC = '070702';
/** Header size: 6 magic bytes + 13 fields x 8 hex digits (buffer-format.rst). */
const HEADER_SIZE = 6 + 13 * 8;
/** Name of the end-of-archive marker entry (cpio(5), buffer-format.rst). */
const TRAILER = 'TRAILER!!!';
/** Longest name the kernel's initramfs unpacker accepts, NUL included (init/initramfs.c checks PATH_MAX = 4096). */
const MAX_NAME = 4096;
/** Largest value an 8-hex-digit field can hold. */
const MAX_FIELD = 0xffffffff;

/** One parsed archive member. */
export interface CpioEntry {
  /** Path as stored (no leading "/"). */
  name: string;
  /** Inode number. */
  ino: number;
  /** st_mode: type bits | permission bits. */
  mode: number;
  /** Owner uid. */
  uid: number;
  /** Owner gid. */
  gid: number;
  /** Link count. */
  nlink: number;
  /** Modification time (seconds since the epoch). */
  mtime: number;
  /** Major number of the device holding the file. */
  devMajor: number;
  /** Minor number of the device holding the file. */
  devMinor: number;
  /** Major number of a device node. */
  rdevMajor: number;
  /** Minor number of a device node. */
  rdevMinor: number;
  /** Contents (regular file) or target bytes (symlink); empty otherwise. */
  data: Uint8Array;
  /** The symlink target, for symbolic links. */
  linkTarget?: string;
}

/** An entry queued in a CpioWriter. */
interface Pending {
  name: string;
  mode: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Uint8Array;
}

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** Round up to the next multiple of 4 (cpio(5): newc names and data are 4-byte aligned). */
function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Normalise an archive path: strip leading "/" and "./", reject empty, ".." and NUL. */
export function cpioPath(p: string): string {
  if (p.includes('\0')) throw new ImageError(`cpio: path contains NUL: ${JSON.stringify(p)}`);
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.length === 0) throw new ImageError(`cpio: empty path ${JSON.stringify(p)}`);
  if (parts.includes('..')) throw new ImageError(`cpio: path with "..": ${JSON.stringify(p)}`);
  return parts.join('/');
}

/** Builder of a newc cpio archive; entries are buffered and serialised by finish(). */
export class CpioWriter {
  private readonly entries: Pending[] = [];
  private readonly byName = new Map<string, Pending>();
  private readonly implicitDirs = new Set<string>();

  /** Add a directory (parents are added implicitly with mode 0755); re-adding an implicit one sets its mode. */
  dir(path: string, mode = 0o755): void {
    const name = cpioPath(path);
    const old = this.byName.get(name);
    if (old !== undefined && this.implicitDirs.has(name)) {
      old.mode = S_IFDIR | (mode & 0o7777);
      this.implicitDirs.delete(name);
      return;
    }
    this.add(name, S_IFDIR | (mode & 0o7777), EMPTY, 0, 0);
  }

  /** Add a regular file with the given permission bits. */
  file(path: string, data: Uint8Array, mode = 0o644): void {
    if (data.length > MAX_FIELD) throw new ImageError(`cpio: ${path} is too large for newc (${data.length} bytes)`);
    this.add(cpioPath(path), S_IFREG | (mode & 0o7777), data, 0, 0);
  }

  /** Add a symbolic link `path` -> `target` (mode 0777, as symlink permissions are ignored). */
  symlink(path: string, target: string): void {
    if (target === '' || target.includes('\0')) throw new ImageError(`cpio: bad symlink target for ${path}: ${JSON.stringify(target)}`);
    this.add(cpioPath(path), S_IFLNK | 0o777, encoder.encode(target), 0, 0);
  }

  /** Add a device node; `mode` may carry S_IFBLK for a block device, otherwise a character device is made. */
  node(path: string, mode: number, major: number, minor: number): void {
    const type = (mode & S_IFMT) === S_IFBLK ? S_IFBLK : S_IFCHR;
    if ((mode & S_IFMT) !== 0 && (mode & S_IFMT) !== type) throw new ImageError(`cpio: ${path}: node() makes only device nodes`);
    for (const v of [major, minor]) {
      if (!Number.isInteger(v) || v < 0 || v > MAX_FIELD) throw new ImageError(`cpio: ${path}: bad device number ${v}`);
    }
    this.add(cpioPath(path), type | (mode & 0o7777), EMPTY, major, minor);
  }

  /** True if an entry (explicit or implicit directory) exists at `path`. */
  has(path: string): boolean {
    return this.byName.has(cpioPath(path));
  }

  /** Number of entries queued so far (implicit directories included, trailer excluded). */
  get size(): number {
    return this.entries.length;
  }

  /** Queue an entry after making sure its parent directories exist. */
  private add(name: string, mode: number, data: Uint8Array, rdevMajor: number, rdevMinor: number): void {
    if (encoder.encode(name).length + 1 > MAX_NAME) throw new ImageError(`cpio: path too long: ${name.slice(0, 80)}...`);
    if (this.byName.has(name)) throw new ImageError(`cpio: duplicate entry ${name}`);
    const slash = name.lastIndexOf('/');
    if (slash > 0) {
      const parent = name.slice(0, slash);
      const p = this.byName.get(parent);
      if (p === undefined) {
        this.add(parent, S_IFDIR | 0o755, EMPTY, 0, 0);
        this.implicitDirs.add(parent);
      } else if ((p.mode & S_IFMT) !== S_IFDIR) {
        throw new ImageError(`cpio: ${parent} is not a directory (adding ${name})`);
      }
    }
    const e: Pending = { name, mode, rdevMajor, rdevMinor, data };
    this.entries.push(e);
    this.byName.set(name, e);
  }

  /** Serialise all entries plus the TRAILER!!! record into one archive. */
  finish(): Uint8Array {
    let total = 0;
    const sizeOf = (name: string, dataLen: number): number => pad4(HEADER_SIZE + encoder.encode(name).length + 1) + pad4(dataLen);
    for (const e of this.entries) total += sizeOf(e.name, e.data.length);
    total += sizeOf(TRAILER, 0);
    const out = new Uint8Array(total);
    let off = 0;
    let ino = 1;
    const put = (name: string, f: Omit<CpioEntry, 'name' | 'data' | 'linkTarget'>, data: Uint8Array): void => {
      const nameBytes = encoder.encode(name);
      const fields = [f.ino, f.mode, f.uid, f.gid, f.nlink, f.mtime, data.length, f.devMajor, f.devMinor, f.rdevMajor, f.rdevMinor, nameBytes.length + 1, 0];
      let h = NEWC_MAGIC;
      for (const v of fields) h += v.toString(16).toUpperCase().padStart(8, '0');
      out.set(encoder.encode(h), off);
      out.set(nameBytes, off + HEADER_SIZE); // the NUL and padding are already zero
      off += pad4(HEADER_SIZE + nameBytes.length + 1);
      out.set(data, off);
      off += pad4(data.length);
    };
    for (const e of this.entries) {
      // Directories get nlink 2 ("." and the parent's entry); everything else 1, so the
      // kernel's unpacker never treats two entries as hard links of each other.
      const nlink = (e.mode & S_IFMT) === S_IFDIR ? 2 : 1;
      put(e.name, { ino: ino++, mode: e.mode, uid: 0, gid: 0, nlink, mtime: 0, devMajor: 0, devMinor: 0, rdevMajor: e.rdevMajor, rdevMinor: e.rdevMinor }, e.data);
    }
    put(TRAILER, { ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, devMajor: 0, devMinor: 0, rdevMajor: 0, rdevMinor: 0 }, EMPTY);
    if (off !== total) throw new Error(`cpio: internal size mismatch (${off} != ${total})`);
    return out;
  }
}

/**
 * Parse a newc ("070701"/"070702") archive up to its TRAILER!!! entry.
 * Throws ImageError on bad magic, bad hex, truncation or a missing trailer.
 */
export function parseCpio(buf: Uint8Array): CpioEntry[] {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const ascii = (a: number, b: number): string => {
    let s = '';
    for (let i = a; i < b; i++) s += String.fromCharCode(buf[i] as number);
    return s;
  };
  const out: CpioEntry[] = [];
  let off = 0;
  for (;;) {
    if (off + HEADER_SIZE > buf.length) throw new ImageError(`cpio: truncated header at offset ${off} (no ${TRAILER})`);
    const magic = ascii(off, off + 6);
    if (magic !== NEWC_MAGIC && magic !== CRC_MAGIC) throw new ImageError(`cpio: bad magic ${JSON.stringify(magic)} at offset ${off}`);
    const f: number[] = [];
    for (let i = 0; i < 13; i++) {
      const hex = ascii(off + 6 + i * 8, off + 14 + i * 8);
      if (!/^[0-9A-Fa-f]{8}$/.test(hex)) throw new ImageError(`cpio: bad header field ${JSON.stringify(hex)} at offset ${off}`);
      f.push(parseInt(hex, 16));
    }
    const [ino, mode, uid, gid, nlink, mtime, filesize, devMajor, devMinor, rdevMajor, rdevMinor, namesize] = f as [
      number, number, number, number, number, number, number, number, number, number, number, number,
    ];
    if (namesize < 1) throw new ImageError(`cpio: zero name size at offset ${off}`);
    const nameStart = off + HEADER_SIZE;
    const dataStart = off + pad4(HEADER_SIZE + namesize);
    const end = dataStart + pad4(filesize);
    if (nameStart + namesize > buf.length || dataStart + filesize > buf.length) throw new ImageError(`cpio: truncated entry at offset ${off}`);
    if (buf[nameStart + namesize - 1] !== 0) throw new ImageError(`cpio: name not NUL-terminated at offset ${off}`);
    const name = decoder.decode(buf.subarray(nameStart, nameStart + namesize - 1));
    if (name === TRAILER) return out;
    const data = buf.slice(dataStart, dataStart + filesize);
    const entry: CpioEntry = { name, ino, mode, uid, gid, nlink, mtime, devMajor, devMinor, rdevMajor, rdevMinor, data };
    if ((mode & S_IFMT) === S_IFLNK) entry.linkTarget = decoder.decode(data);
    out.push(entry);
    off = Math.min(end, buf.length);
  }
}
