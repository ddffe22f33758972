/**
 * The FUSE wire protocol as virtio-fs carries it (virtio 1.2 §5.11.6;
 * message layouts from Linux include/uapi/linux/fuse.h, protocol 7.31):
 * opcodes, flags, structure sizes and the encoders of the replies the
 * device sends. All fields are little-endian (the guest's byte order on
 * RISC-V; §5.11.6 leaves FUSE in the guest's native order).
 */
import type { FsAttr } from './fs-backend.js';

/** FUSE opcodes (fuse.h enum fuse_opcode). */
export const FUSE_LOOKUP = 1, FUSE_FORGET = 2, FUSE_GETATTR = 3, FUSE_SETATTR = 4, FUSE_READLINK = 5, FUSE_SYMLINK = 6;
export const FUSE_MKNOD = 8, FUSE_MKDIR = 9, FUSE_UNLINK = 10, FUSE_RMDIR = 11, FUSE_RENAME = 12, FUSE_LINK = 13;
export const FUSE_OPEN = 14, FUSE_READ = 15, FUSE_WRITE = 16, FUSE_STATFS = 17, FUSE_RELEASE = 18, FUSE_FSYNC = 20;
export const FUSE_SETXATTR = 21, FUSE_GETXATTR = 22, FUSE_LISTXATTR = 23, FUSE_REMOVEXATTR = 24, FUSE_FLUSH = 25;
export const FUSE_INIT = 26, FUSE_OPENDIR = 27, FUSE_READDIR = 28, FUSE_RELEASEDIR = 29, FUSE_FSYNCDIR = 30;
export const FUSE_ACCESS = 34, FUSE_CREATE = 35, FUSE_INTERRUPT = 36, FUSE_DESTROY = 38, FUSE_BATCH_FORGET = 42;
export const FUSE_FALLOCATE = 43, FUSE_READDIRPLUS = 44, FUSE_RENAME2 = 45, FUSE_LSEEK = 46, FUSE_SYNCFS = 50;

/** The root directory's node id (fuse.h FUSE_ROOT_ID). */
export const FUSE_ROOT_ID = 1;
/** Protocol version the device speaks (fuse.h FUSE_KERNEL_VERSION / a minor with max_pages, 7.28+). */
export const FUSE_KERNEL_VERSION = 7, FUSE_KERNEL_MINOR_VERSION = 31;

/** INIT flags (fuse.h "INIT request/reply flags"). */
export const FUSE_ASYNC_READ = 1 << 0, FUSE_ATOMIC_O_TRUNC = 1 << 3, FUSE_BIG_WRITES = 1 << 5;
export const FUSE_DO_READDIRPLUS = 1 << 13, FUSE_READDIRPLUS_AUTO = 1 << 14, FUSE_PARALLEL_DIROPS = 1 << 18;
export const FUSE_MAX_PAGES = 1 << 22;
/** What the device offers in INIT (no DAX: FUSE_MAP_ALIGNMENT is never set). */
export const FUSE_INIT_OFFERED = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |
  FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES;

/** SETATTR valid bits (fuse.h FATTR_*). */
export const FATTR_MODE = 1 << 0, FATTR_UID = 1 << 1, FATTR_GID = 1 << 2, FATTR_SIZE = 1 << 3, FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5, FATTR_FH = 1 << 6, FATTR_ATIME_NOW = 1 << 7, FATTR_MTIME_NOW = 1 << 8;
/** GETATTR flag: fh is valid (fuse.h FUSE_GETATTR_FH). */
export const FUSE_GETATTR_FH = 1 << 0;
/** FSYNC flag: data only (fuse.h FUSE_FSYNC_FDATASYNC). */
export const FUSE_FSYNC_FDATASYNC = 1 << 0;
/** RENAME2 flags (include/uapi/linux/fs.h RENAME_*). */
export const RENAME_NOREPLACE = 1 << 0;

/** Structure sizes (fuse.h). */
export const IN_HEADER_BYTES = 40, OUT_HEADER_BYTES = 16, ATTR_BYTES = 88, ENTRY_OUT_BYTES = 128, ATTR_OUT_BYTES = 104;
export const OPEN_OUT_BYTES = 16, INIT_OUT_BYTES = 64, KSTATFS_BYTES = 80, WRITE_OUT_BYTES = 8, DIRENT_BYTES = 24;

/** Linux errnos the device answers with (include/uapi/asm-generic/errno-base.h, errno.h). */
export const EPERM = 1, ENOENT = 2, EIO = 5, ENXIO = 6, EBADF = 9, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22;
export const EFBIG = 27, EROFS = 30, ERANGE = 34, ENAMETOOLONG = 36, ENOSYS = 38, EPROTO = 71, EOPNOTSUPP = 95, ESTALE = 116;

/** File type bits (include/uapi/linux/stat.h). */
export const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000;
/** Directory entry type of a directory (include/linux/fs_types.h DT_DIR). */
export const DT_DIR = 4;
/** asm-generic open flags (include/uapi/asm-generic/fcntl.h). */
export const O_ACCMODE = 3, O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0o100, O_EXCL = 0o200, O_TRUNC = 0o1000;
export const O_APPEND = 0o2000, O_NOFOLLOW = 0o400000;
/** lseek whence values for holes (include/uapi/linux/fs.h SEEK_DATA, SEEK_HOLE). */
export const SEEK_DATA = 3, SEEK_HOLE = 4;
/** Longest name component (include/uapi/linux/limits.h NAME_MAX). */
export const NAME_MAX = 255;

const NS = 1_000_000_000n;

/** Writes struct fuse_attr at `off` (fuse.h: ino, size, blocks, a/m/ctime, their nsec, mode, nlink, uid, gid, rdev, blksize, flags). */
export function putAttr(dv: DataView, off: number, a: FsAttr): void {
  dv.setBigUint64(off, BigInt.asUintN(64, a.ino), true);
  dv.setBigUint64(off + 8, BigInt.asUintN(64, a.size), true);
  dv.setBigUint64(off + 16, BigInt.asUintN(64, a.blocks), true);
  const times = [a.atimeNs, a.mtimeNs, a.ctimeNs];
  for (let i = 0; i < 3; i++) {
    let s = times[i]! / NS, r = times[i]! % NS;
    if (r < 0n) { r += NS; s -= 1n; }
    dv.setBigUint64(off + 24 + 8 * i, BigInt.asUintN(64, s), true);
    dv.setUint32(off + 48 + 4 * i, Number(r), true);
  }
  dv.setUint32(off + 60, a.mode >>> 0, true);
  dv.setUint32(off + 64, a.nlink >>> 0, true);
  dv.setUint32(off + 68, a.uid >>> 0, true);
  dv.setUint32(off + 72, a.gid >>> 0, true);
  dv.setUint32(off + 76, Number(BigInt.asUintN(32, a.rdev)), true);
  dv.setUint32(off + 80, a.blksize >>> 0, true);
}

/** Seconds the guest may cache entries and attributes (fuse_entry_out entry_valid/attr_valid). */
export const VALID_SECONDS = 1;

/** Writes struct fuse_entry_out at `off`: nodeid, generation, entry/attr validity, then the attributes. */
export function putEntry(dv: DataView, off: number, nodeid: number, a: FsAttr): void {
  dv.setUint32(off, nodeid >>> 0, true);
  dv.setUint32(off + 4, Math.floor(nodeid / 4294967296), true);
  dv.setUint32(off + 16, VALID_SECONDS, true); // entry_valid
  dv.setUint32(off + 24, VALID_SECONDS, true); // attr_valid
  putAttr(dv, off + 40, a);
}

/** Size of a fuse_dirent with an `n`-byte name, padded to 8 bytes (fuse.h FUSE_DIRENT_ALIGN). */
export function direntSize(n: number): number { return (DIRENT_BYTES + n + 7) & ~7; }

/** Writes struct fuse_dirent at `off`: ino, off (the next entry's cookie), namelen, type, name. */
export function putDirent(u8: Uint8Array, dv: DataView, off: number, ino: bigint, next: number, type: number, name: Uint8Array): void {
  dv.setBigUint64(off, BigInt.asUintN(64, ino), true);
  dv.setUint32(off + 8, next >>> 0, true);
  dv.setUint32(off + 16, name.length, true);
  dv.setUint32(off + 20, type, true);
  u8.set(name, off + DIRENT_BYTES);
}
