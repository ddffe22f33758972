/**
 * A HostOs that forwards every call to another one: the base of the
 * sandbox's wrappers (overlay root, hostname, pid namespace identity),
 * which override only what they change.
 */
import { E } from './sys-abi.js';
import type { HostOs, HostDirent, HostStatfs, HostRusage, HostSysinfo, HostIdentity, HostUname, StatInfo } from './host-os.js';

/** Forwards every HostOs call to `inner`. */
export class DelegatingHostOs implements HostOs {
  /** Wraps `inner`. */
  constructor(protected readonly inner: HostOs) {}

  /** Forwards open. */
  open(path: string, flags: number, mode: number): number { return this.inner.open(path, flags, mode); }

  /** Forwards close. */
  close(fd: number): number { return this.inner.close(fd); }

  /** Forwards read. */
  read(fd: number, buf: Uint8Array, position: number | null, nonBlocking?: boolean): number { return this.inner.read(fd, buf, position, nonBlocking); }

  /** Forwards readNonBlocking (ENOSYS if the inner host lacks it). */
  readNonBlocking(fd: number, buf: Uint8Array): number { return this.inner.readNonBlocking ? this.inner.readNonBlocking(fd, buf) : -E.ENOSYS; }

  /** Forwards write. */
  write(fd: number, buf: Uint8Array, position: number | null): number { return this.inner.write(fd, buf, position); }

  /** Forwards lseek. */
  lseek(fd: number, offset: number, whence: number): number { return this.inner.lseek(fd, offset, whence); }

  /** Forwards stat. */
  stat(path: string): StatInfo | number { return this.inner.stat(path); }

  /** Forwards lstat. */
  lstat(path: string): StatInfo | number { return this.inner.lstat(path); }

  /** Forwards fstat. */
  fstat(fd: number): StatInfo | number { return this.inner.fstat(fd); }

  /** Forwards readdir. */
  readdir(path: string): HostDirent[] | number { return this.inner.readdir(path); }

  /** Forwards readlink. */
  readlink(path: string): string | number { return this.inner.readlink(path); }

  /** Forwards realpath. */
  realpath(path: string): string | number { return this.inner.realpath(path); }

  /** Forwards access. */
  access(path: string, mode: number): number { return this.inner.access(path, mode); }

  /** Forwards mkdir. */
  mkdir(path: string, mode: number): number { return this.inner.mkdir(path, mode); }

  /** Forwards unlink. */
  unlink(path: string): number { return this.inner.unlink(path); }

  /** Forwards rmdir. */
  rmdir(path: string): number { return this.inner.rmdir(path); }

  /** Forwards rename. */
  rename(from: string, to: string): number { return this.inner.rename(from, to); }

  /** Forwards symlink. */
  symlink(target: string, path: string): number { return this.inner.symlink(target, path); }

  /** Forwards link. */
  link(existing: string, path: string): number { return this.inner.link(existing, path); }

  /** Forwards chmod. */
  chmod(path: string, mode: number): number { return this.inner.chmod(path, mode); }

  /** Forwards fchmod. */
  fchmod(fd: number, mode: number): number { return this.inner.fchmod(fd, mode); }

  /** Forwards chown. */
  chown(path: string, uid: number, gid: number, noFollow: boolean): number { return this.inner.chown(path, uid, gid, noFollow); }

  /** Forwards fchown. */
  fchown(fd: number, uid: number, gid: number): number { return this.inner.fchown(fd, uid, gid); }

  /** Forwards utimes. */
  utimes(path: string, atimeNs: bigint | null, mtimeNs: bigint | null, noFollow: boolean): number { return this.inner.utimes(path, atimeNs, mtimeNs, noFollow); }

  /** Forwards futimes. */
  futimes(fd: number, atimeNs: bigint | null, mtimeNs: bigint | null): number { return this.inner.futimes(fd, atimeNs, mtimeNs); }

  /** Forwards truncate. */
  truncate(path: string, len: number): number { return this.inner.truncate(path, len); }

  /** Forwards ftruncate. */
  ftruncate(fd: number, len: number): number { return this.inner.ftruncate(fd, len); }

  /** Forwards fsync. */
  fsync(fd: number): number { return this.inner.fsync(fd); }

  /** Forwards fdatasync. */
  fdatasync(fd: number): number { return this.inner.fdatasync(fd); }

  /** Forwards statfs. */
  statfs(path: string): HostStatfs | number { return this.inner.statfs(path); }

  /** Forwards isatty. */
  isatty(fd: number): boolean { return this.inner.isatty(fd); }

  /** Forwards terminalSize. */
  terminalSize(fd: number): { rows: number; cols: number } | null { return this.inner.terminalSize(fd); }

  /** Forwards setRawMode. */
  setRawMode(fd: number, raw: boolean): boolean { return this.inner.setRawMode(fd, raw); }

  /** Forwards realtimeNs. */
  realtimeNs(): bigint { return this.inner.realtimeNs(); }

  /** Forwards monotonicNs. */
  monotonicNs(): bigint { return this.inner.monotonicNs(); }

  /** Forwards cpuTimeNs. */
  cpuTimeNs(): bigint { return this.inner.cpuTimeNs(); }

  /** Forwards randomFill. */
  randomFill(buf: Uint8Array): void { return this.inner.randomFill(buf); }

  /** Forwards sleepNs. */
  sleepNs(ns: number): void { return this.inner.sleepNs(ns); }

  /** Forwards umask. */
  umask(mask: number): number { return this.inner.umask(mask); }

  /** Forwards cwd. */
  cwd(): string { return this.inner.cwd(); }

  /** Forwards identity. */
  identity(): HostIdentity { return this.inner.identity(); }

  /** Forwards rlimits. */
  rlimits(): Array<[bigint, bigint]> | null { return this.inner.rlimits(); }

  /** Forwards cpuCount. */
  cpuCount(): number { return this.inner.cpuCount(); }

  /** Forwards uname. */
  uname(): HostUname { return this.inner.uname(); }

  /** Forwards mountTable (absent from the inner host: no table, an empty string is never shown). */
  mountTable(): string { return this.inner.mountTable?.() ?? ''; }

  /** Forwards setHostname (EPERM if the inner host lacks it). */
  setHostname(name: string): number { return this.inner.setHostname ? this.inner.setHostname(name) : -E.EPERM; }

  /** Forwards sysinfo. */
  sysinfo(): HostSysinfo { return this.inner.sysinfo(); }

  /** Forwards rusage. */
  rusage(): HostRusage { return this.inner.rusage(); }

}
