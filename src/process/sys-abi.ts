/**
 * Linux riscv64 user ABI facts the syscall layer needs: errno values, flag
 * bits, and writers for the structures it fills in. riscv64 uses the
 * asm-generic definitions throughout (include/uapi/asm-generic/*.h).
 */

/** Linux errno numbers (include/uapi/asm-generic/errno-base.h, errno.h). */
export const E = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9,
  ECHILD: 10, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, ENOTBLK: 15, EBUSY: 16, EEXIST: 17,
  EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25,
  ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, EDOM: 33,
  ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40,
  ENOMSG: 42, EIDRM: 43, ENOSTR: 60, ENODATA: 61, ETIME: 62, EPROTO: 71, EBADMSG: 74,
  EOVERFLOW: 75, EBADFD: 77, EILSEQ: 84, ENOTSOCK: 88, EDESTADDRREQ: 89, EMSGSIZE: 90,
  EPROTOTYPE: 91, ENOPROTOOPT: 92, EPROTONOSUPPORT: 93, ESOCKTNOSUPPORT: 94, EOPNOTSUPP: 95, EAFNOSUPPORT: 97,
  EADDRINUSE: 98, EADDRNOTAVAIL: 99, ENETDOWN: 100, ENETUNREACH: 101, ECONNABORTED: 103,
  ECONNRESET: 104, ENOBUFS: 105, EISCONN: 106, ENOTCONN: 107, ETIMEDOUT: 110,
  ECONNREFUSED: 111, EHOSTUNREACH: 113, EALREADY: 114, EINPROGRESS: 115, ESTALE: 116,
  EDQUOT: 122, ECANCELED: 125,
} as const;

/** Host error codes that are spelled differently from a Linux errno name. */
const ERRNO_ALIASES: Record<string, number> = { EWOULDBLOCK: 11, ENOTSUP: 95, EDEADLOCK: 35 };

/** Maps an errno name (as in Node's `err.code`) to the Linux number; EIO when unknown. */
export function errnoFromCode(code: string | undefined): number {
  if (code === undefined) return E.EIO;
  const v = (E as Record<string, number>)[code] ?? ERRNO_ALIASES[code];
  return v ?? E.EIO;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(E).map(([k, v]) => [v, k]));

/** The symbolic name of a Linux errno (for --trace), or its number. */
export function errnoName(e: number): string {
  return ERRNO_NAMES.get(e) ?? String(e);
}

/** openat(2) flags (include/uapi/asm-generic/fcntl.h, octal). */
export const O_ACCMODE = 0o3, O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200,
  O_NOCTTY = 0o400, O_TRUNC = 0o1000, O_APPEND = 0o2000, O_NONBLOCK = 0o4000, O_DSYNC = 0o10000,
  O_ASYNC = 0o20000, O_DIRECT = 0o40000, O_LARGEFILE = 0o100000, O_DIRECTORY = 0o200000,
  O_NOFOLLOW = 0o400000, O_NOATIME = 0o1000000, O_CLOEXEC = 0o2000000, O_SYNC_BIT = 0o4000000,
  O_PATH = 0o10000000, O_TMPFILE_BIT = 0o20000000;

/** Names of the open flags for --trace, in strace's order. */
export const OPEN_FLAG_NAMES: ReadonlyArray<[number, string]> = [
  [O_CREAT, 'O_CREAT'], [O_EXCL, 'O_EXCL'], [O_NOCTTY, 'O_NOCTTY'], [O_TRUNC, 'O_TRUNC'],
  [O_APPEND, 'O_APPEND'], [O_NONBLOCK, 'O_NONBLOCK'], [O_DSYNC, 'O_DSYNC'], [O_ASYNC, 'O_ASYNC'],
  [O_DIRECT, 'O_DIRECT'], [O_LARGEFILE, 'O_LARGEFILE'], [O_DIRECTORY, 'O_DIRECTORY'],
  [O_NOFOLLOW, 'O_NOFOLLOW'], [O_NOATIME, 'O_NOATIME'], [O_CLOEXEC, 'O_CLOEXEC'],
  [O_SYNC_BIT, '__O_SYNC'], [O_PATH, 'O_PATH'], [O_TMPFILE_BIT, '__O_TMPFILE'],
];

/** Flags F_SETFL may change (fs/fcntl.c SETFL_MASK). */
export const SETFL_MASK = O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_ASYNC;

/** *at(2) constants (include/uapi/linux/fcntl.h). */
export const AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EACCESS = 0x200, AT_REMOVEDIR = 0x200,
  AT_SYMLINK_FOLLOW = 0x400, AT_NO_AUTOMOUNT = 0x800, AT_EMPTY_PATH = 0x1000;

/** fcntl(2) commands (include/uapi/asm-generic/fcntl.h, include/uapi/linux/fcntl.h). */
export const F_DUPFD = 0, F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4, F_GETLK = 5, F_SETLK = 6,
  F_SETLKW = 7, F_SETOWN = 8, F_GETOWN = 9, F_OFD_GETLK = 36, F_OFD_SETLK = 37, F_OFD_SETLKW = 38,
  F_DUPFD_CLOEXEC = 1030, F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032, F_ADD_SEALS = 1033,
  F_GET_SEALS = 1034, FD_CLOEXEC = 1, F_UNLCK = 2;

/** File type bits of st_mode (include/uapi/linux/stat.h). */
export const S_IFMT = 0o170000, S_IFSOCK = 0o140000, S_IFLNK = 0o120000, S_IFREG = 0o100000,
  S_IFBLK = 0o060000, S_IFDIR = 0o040000, S_IFCHR = 0o020000, S_IFIFO = 0o010000;

/** linux_dirent64 d_type values (include/linux/fs_types.h / dirent.h). */
export const DT_UNKNOWN = 0, DT_FIFO = 1, DT_CHR = 2, DT_DIR = 4, DT_BLK = 6, DT_REG = 8, DT_LNK = 10,
  DT_SOCK = 12;

/** d_type for an st_mode. */
export function dtFromMode(mode: number): number {
  return (mode & S_IFMT) >>> 12; // DT_* == S_IF* >> 12 by construction (fs_types.h)
}

/** lseek whence (include/uapi/linux/fs.h). */
export const SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2, SEEK_DATA = 3, SEEK_HOLE = 4;

/** mmap flags (include/uapi/asm-generic/mman-common.h, mman.h, linux/mman.h). */
export const MAP_SHARED = 0x1, MAP_PRIVATE = 0x2, MAP_SHARED_VALIDATE = 0x3, MAP_TYPE = 0xf,
  MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_GROWSDOWN = 0x100, MAP_DENYWRITE = 0x800,
  MAP_EXECUTABLE = 0x1000, MAP_LOCKED = 0x2000, MAP_NORESERVE = 0x4000, MAP_POPULATE = 0x8000,
  MAP_NONBLOCK = 0x10000, MAP_STACK = 0x20000, MAP_HUGETLB = 0x40000, MAP_FIXED_NOREPLACE = 0x100000,
  MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2;

/** utimensat special nanosecond values (include/uapi/linux/stat.h). */
export const UTIME_NOW = (1 << 30) - 1, UTIME_OMIT = (1 << 30) - 2;

/** Signals (include/uapi/asm-generic/signal.h). */
export const SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGILL = 4, SIGTRAP = 5, SIGABRT = 6, SIGBUS = 7,
  SIGFPE = 8, SIGKILL = 9, SIGUSR1 = 10, SIGSEGV = 11, SIGUSR2 = 12, SIGPIPE = 13, SIGALRM = 14,
  SIGTERM = 15, SIGSTKFLT = 16, SIGCHLD = 17, SIGCONT = 18, SIGSTOP = 19, SIGTSTP = 20, SIGTTIN = 21,
  SIGTTOU = 22, SIGURG = 23, SIGXCPU = 24, SIGXFSZ = 25, SIGVTALRM = 26, SIGPROF = 27, SIGWINCH = 28,
  SIGIO = 29, SIGPWR = 30, SIGSYS = 31, NSIG = 64;

const SIG_NAMES = ['', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE',
  'SIGKILL', 'SIGUSR1', 'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD',
  'SIGCONT', 'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM',
  'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS'];

/** A signal's name (SIGRTMIN+n for real-time ones). */
export function signalName(sig: number): string {
  if (sig >= 32 && sig <= NSIG) return `SIGRT_${sig - 32}`;
  return SIG_NAMES[sig] ?? String(sig);
}

/** Host-side view of a file's metadata, with nanosecond times (from stat/statx). */
export interface StatInfo {
  dev: bigint; ino: bigint; mode: number; nlink: number; uid: number; gid: number; rdev: bigint;
  size: bigint; blksize: number; blocks: bigint;
  atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint; birthtimeNs: bigint;
}

const NS = 1_000_000_000n;

/** Splits nanoseconds since the epoch into (seconds, nanoseconds) with a non-negative remainder. */
export function splitNs(ns: bigint): [bigint, number] {
  let s = ns / NS, r = ns % NS;
  if (r < 0n) { r += NS; s -= 1n; }
  return [s, Number(r)];
}

/** Size of struct stat on riscv64 (include/uapi/asm-generic/stat.h). */
export const STAT_SIZE = 128;

/** Encodes struct stat (asm-generic/stat.h) for `st`. */
export function encodeStat(st: StatInfo): Uint8Array {
  const b = new Uint8Array(STAT_SIZE), dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt.asUintN(64, st.dev), true); // st_dev
  dv.setBigUint64(8, BigInt.asUintN(64, st.ino), true); // st_ino
  dv.setUint32(16, st.mode >>> 0, true); // st_mode
  dv.setUint32(20, st.nlink >>> 0, true); // st_nlink
  dv.setUint32(24, st.uid >>> 0, true); // st_uid
  dv.setUint32(28, st.gid >>> 0, true); // st_gid
  dv.setBigUint64(32, BigInt.asUintN(64, st.rdev), true); // st_rdev; 40: __pad1
  dv.setBigInt64(48, BigInt.asIntN(64, st.size), true); // st_size
  dv.setInt32(56, st.blksize | 0, true); // st_blksize; 60: __pad2
  dv.setBigInt64(64, BigInt.asIntN(64, st.blocks), true); // st_blocks
  const times = [st.atimeNs, st.mtimeNs, st.ctimeNs];
  for (let i = 0; i < 3; i++) {
    const [s, ns] = splitNs(times[i]!);
    dv.setBigInt64(72 + 16 * i, s, true);
    dv.setBigUint64(80 + 16 * i, BigInt(ns), true);
  }
  return b;
}

/** glibc's dev_t encoding -> (major, minor) (glibc sysdeps/unix/sysv/linux/sys/sysmacros.h). */
export function devMajorMinor(dev: bigint): [number, number] {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return [major >>> 0, minor >>> 0];
}

/** Builds a dev_t from (major, minor) in glibc's encoding. */
export function makeDev(major: number, minor: number): bigint {
  const ma = BigInt(major), mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/** statx mask bits (include/uapi/linux/stat.h). */
export const STATX_BASIC_STATS = 0x7ff, STATX_BTIME = 0x800;

/** Encodes struct statx (include/uapi/linux/stat.h, 256 bytes). */
export function encodeStatx(st: StatInfo, mask: number): Uint8Array {
  const b = new Uint8Array(256), dv = new DataView(b.buffer);
  const have = STATX_BASIC_STATS | (st.birthtimeNs > 0n ? STATX_BTIME : 0);
  void mask; // the kernel may return more than asked; report everything we have
  dv.setUint32(0, have, true); // stx_mask
  dv.setUint32(4, st.blksize >>> 0, true); // stx_blksize
  dv.setUint32(16, st.nlink >>> 0, true); // stx_nlink
  dv.setUint32(20, st.uid >>> 0, true);
  dv.setUint32(24, st.gid >>> 0, true);
  dv.setUint16(28, st.mode & 0xffff, true); // stx_mode
  dv.setBigUint64(32, BigInt.asUintN(64, st.ino), true);
  dv.setBigUint64(40, BigInt.asUintN(64, st.size), true);
  dv.setBigUint64(48, BigInt.asUintN(64, st.blocks), true);
  const ts = (off: number, ns: bigint): void => {
    const [s, n] = splitNs(ns);
    dv.setBigInt64(off, s, true); dv.setUint32(off + 8, n, true);
  };
  ts(64, st.atimeNs); ts(80, st.birthtimeNs); ts(96, st.ctimeNs); ts(112, st.mtimeNs);
  const [rma, rmi] = devMajorMinor(st.rdev), [dma, dmi] = devMajorMinor(st.dev);
  dv.setUint32(128, rma, true); dv.setUint32(132, rmi, true);
  dv.setUint32(136, dma, true); dv.setUint32(140, dmi, true);
  return b;
}

/** Encodes a struct timespec {tv_sec i64; tv_nsec i64}. */
export function encodeTimespec(ns: bigint): Uint8Array {
  const b = new Uint8Array(16), dv = new DataView(b.buffer);
  const [s, n] = splitNs(ns);
  dv.setBigInt64(0, s, true); dv.setBigInt64(8, BigInt(n), true);
  return b;
}

/** Encodes a struct timeval {tv_sec i64; tv_usec i64}. */
export function encodeTimeval(ns: bigint): Uint8Array {
  const b = new Uint8Array(16), dv = new DataView(b.buffer);
  const [s, n] = splitNs(ns);
  dv.setBigInt64(0, s, true); dv.setBigInt64(8, BigInt(Math.floor(n / 1000)), true);
  return b;
}

/** Little-endian 64-bit encoding of a JS integer or bigint. */
export function u64(v: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
  return b;
}

/** Little-endian 32-bit encoding. */
export function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

/** clone(2) flags (include/uapi/linux/sched.h). */
export const CSIGNAL = 0xff, CLONE_VM = 0x100, CLONE_FS = 0x200, CLONE_FILES = 0x400, CLONE_SIGHAND = 0x800,
  CLONE_PIDFD = 0x1000, CLONE_PTRACE = 0x2000, CLONE_VFORK = 0x4000, CLONE_PARENT = 0x8000,
  CLONE_THREAD = 0x10000, CLONE_NEWNS = 0x20000, CLONE_SYSVSEM = 0x40000, CLONE_SETTLS = 0x80000,
  CLONE_PARENT_SETTID = 0x100000, CLONE_CHILD_CLEARTID = 0x200000, CLONE_DETACHED = 0x400000,
  CLONE_UNTRACED = 0x800000, CLONE_CHILD_SETTID = 0x1000000, CLONE_NEWCGROUP = 0x2000000,
  CLONE_NEWUTS = 0x4000000, CLONE_NEWIPC = 0x8000000, CLONE_NEWUSER = 0x10000000, CLONE_NEWPID = 0x20000000,
  CLONE_NEWNET = 0x40000000, CLONE_IO = 0x80000000;

/** wait4/waitid options (include/uapi/linux/wait.h). */
export const WNOHANG = 1, WUNTRACED = 2, WSTOPPED = 2, WEXITED = 4, WCONTINUED = 8, WNOWAIT = 0x01000000,
  __WNOTHREAD = 0x20000000, __WALL = 0x40000000, __WCLONE = 0x80000000;
