/**
 * What the Linux syscall layer needs from the host operating system.
 *
 * Everything is synchronous (the VM is one thread that blocks in syscalls
 * like a real process). Flags, modes and errors use the guest's Linux
 * vocabulary: open flags are asm-generic O_* values, and every call that
 * can fail returns a negative Linux errno instead of throwing. Paths are
 * host paths; the guest-path view (--root) lives in vfs.ts.
 */
import type { StatInfo } from './sys-abi.js';

/** File metadata as the host reports it (defined with the struct encoders). */
export type { StatInfo } from './sys-abi.js';

/** One directory entry with its inode and d_type (DT_*). */
export interface HostDirent { name: string; ino: bigint; type: number }

/** Filesystem statistics (struct statfs fields the host can supply). */
export interface HostStatfs {
  type: bigint; bsize: bigint; blocks: bigint; bfree: bigint; bavail: bigint; files: bigint; ffree: bigint;
}

/** Process resource usage (getrusage). */
export interface HostRusage {
  utimeUs: number; stimeUs: number; maxRssKb: number; minflt: number; majflt: number;
  inblock: number; oublock: number; nvcsw: number; nivcsw: number;
}

/** System-wide information (sysinfo). */
export interface HostSysinfo {
  uptimeSec: number; loads: [number, number, number]; totalRam: number; freeRam: number; sharedRam: number;
  bufferRam: number; totalSwap: number; freeSwap: number; procs: number;
}

/** Numeric identity of the host process (qemu-user passes these through). */
export interface HostIdentity { uid: number; gid: number; euid: number; egid: number; groups: number[]; ppid: number }

/** uname(2) strings. */
export interface HostUname { nodename: string; release: string; version: string }

/** The host services used by the syscall layer. Errors are negative Linux errnos. */
export interface HostOs {
  /** Opens `path` with Linux O_* `flags`; returns a host fd. */
  open(path: string, flags: number, mode: number): number;
  /** Closes a host fd. */
  close(fd: number): number;
  /**
   * Reads into `buf` at `position` (null: the fd's own offset); returns bytes
   * read. A host fd that reports EAGAIN is retried after a short sleep unless
   * `nonBlocking` (then -EAGAIN is returned).
   */
  read(fd: number, buf: Uint8Array, position: number | null, nonBlocking?: boolean): number;
  /**
   * Reads what a terminal or pipe fd has now without blocking, leaving the
   * fd's own blocking mode alone: bytes read (0 at end of file), -EAGAIN if
   * nothing is there yet, or -ENOSYS if the host cannot tell (then only a
   * blocking read is possible). Optional.
   */
  readNonBlocking?(fd: number, buf: Uint8Array): number;
  /** Writes `buf` at `position` (null: the fd's own offset); returns bytes written (EAGAIN is retried). */
  write(fd: number, buf: Uint8Array, position: number | null): number;
  /**
   * lseek(2) on an inherited host fd (stdio), moving the offset it shares
   * with other processes; returns the new offset, or -ENOSYS if the host
   * cannot seek that fd (the syscall layer then keeps its own offset).
   */
  lseek(fd: number, offset: number, whence: number): number;
  /** stat(2) following symlinks. */
  stat(path: string): StatInfo | number;
  /** lstat(2). */
  lstat(path: string): StatInfo | number;
  /** fstat(2). */
  fstat(fd: number): StatInfo | number;
  /** Lists a directory in the host's order, without "." and "..". */
  readdir(path: string): HostDirent[] | number;
  /** readlink(2): the raw target bytes as a string. */
  readlink(path: string): string | number;
  /** realpath(3). */
  realpath(path: string): string | number;
  /** access(2) with R_OK/W_OK/X_OK bits. */
  access(path: string, mode: number): number;
  /** mkdir(2). */
  mkdir(path: string, mode: number): number;
  /** unlink(2). */
  unlink(path: string): number;
  /** rmdir(2). */
  rmdir(path: string): number;
  /** rename(2), replacing `to`. */
  rename(from: string, to: string): number;
  /** symlink(2): creates `path` pointing at `target`. */
  symlink(target: string, path: string): number;
  /** link(2). */
  link(existing: string, path: string): number;
  /** chmod(2). */
  chmod(path: string, mode: number): number;
  /** fchmod(2). */
  fchmod(fd: number, mode: number): number;
  /** chown(2) or, with `noFollow`, lchown(2); -1 leaves an id unchanged. */
  chown(path: string, uid: number, gid: number, noFollow: boolean): number;
  /** fchown(2); -1 leaves an id unchanged. */
  fchown(fd: number, uid: number, gid: number): number;
  /** Sets atime/mtime in ns since the epoch (null = leave unchanged). */
  utimes(path: string, atimeNs: bigint | null, mtimeNs: bigint | null, noFollow: boolean): number;
  /** Like utimes, on an open fd. */
  futimes(fd: number, atimeNs: bigint | null, mtimeNs: bigint | null): number;
  /** truncate(2). */
  truncate(path: string, len: number): number;
  /** ftruncate(2). */
  ftruncate(fd: number, len: number): number;
  /** fsync(2). */
  fsync(fd: number): number;
  /** fdatasync(2). */
  fdatasync(fd: number): number;
  /** statfs(2) of the filesystem holding `path`. */
  statfs(path: string): HostStatfs | number;
  /** True if the host fd is a terminal. */
  isatty(fd: number): boolean;
  /** Terminal window size of a tty fd, or null. */
  terminalSize(fd: number): { rows: number; cols: number } | null;
  /** Puts a tty fd into raw (non-canonical, no echo) mode or back; false if unsupported. */
  setRawMode(fd: number, raw: boolean): boolean;
  /** CLOCK_REALTIME in ns. */
  realtimeNs(): bigint;
  /** CLOCK_MONOTONIC in ns. */
  monotonicNs(): bigint;
  /** CPU time used by this process, ns. */
  cpuTimeNs(): bigint;
  /** Fills `buf` with cryptographically random bytes. */
  randomFill(buf: Uint8Array): void;
  /** Blocks the thread for `ns` nanoseconds. */
  sleepNs(ns: number): void;
  /** Sets the file creation mask of the host process; returns the previous one. */
  umask(mask: number): number;
  /** The host's current working directory. */
  cwd(): string;
  /** The host process's ids and parent pid. */
  identity(): HostIdentity;
  /** The host process's resource limits [soft, hard] by RLIMIT_* index, or null if unknown. */
  rlimits(): Array<[bigint, bigint]> | null;
  /** CPUs the host process may run on (what qemu-user's sched_getaffinity reports). */
  cpuCount(): number;
  /** The host's uname strings. */
  uname(): HostUname;
  /** The text of /proc/self/mounts (proc_pid_mounts(5)) in a container (sandbox.ts); absent: the file does not exist. */
  mountTable?(): string;
  /** sethostname(2): changes the nodename uname reports (a container's own, sandbox.ts); absent: -EPERM. */
  setHostname?(name: string): number;
  /** sysinfo(2) figures of the host. */
  sysinfo(): HostSysinfo;
  /** Resource usage of the host process (the VM). */
  rusage(): HostRusage;
}
