/**
 * virtio-fs backends over the process VM's host services (HostOs): a
 * host directory shared as it is, or an OCI overlay of read-only lower
 * layers and a writable upper (the process VM's OverlayHostOs, so both
 * runtimes see a container's root filesystem through the same code).
 *
 * The device gives share-relative paths ('/' the root); this adapter
 * maps them under the host root. A passthrough share must not let the
 * guest reach outside its directory: the kernel resolves symlinks itself,
 * but a broken or hostile driver could name a path through a symlink the
 * guest made, so the parent of every path is resolved on the host
 * (realpath) and must lie inside the root, and files are opened with
 * O_NOFOLLOW. The overlay resolves paths component by component through
 * its layers (lstat) and refuses a non-directory in the middle, so it
 * needs no such check.
 */
import type { FsAttr, FsBackend, FsDirent, FsStatfs } from '../devices/virtio/fs-backend.js';
import type { HostOs } from '../process/host-os.js';
import { OverlayHostOs } from '../process/overlay-host-os.js';
import { E } from '../process/sys-abi.js';

/** A FsBackend on a HostOs whose tree starts at `root`. */
export class HostOsFsBackend implements FsBackend {
  /**
   * `contain`: check that every path's parent resolves inside the root (a
   * passthrough of a real host directory); `readOnly`: refuse all changes.
   */
  constructor(private readonly os: HostOs, private readonly root: string, readonly readOnly: boolean, private readonly contain: boolean) {}

  /** The host path of share path `p`, or a negative errno when it escapes the root. */
  private host(p: string): string | number {
    if (!p.startsWith('/') || p.split('/').some((c) => c === '..')) return -E.EINVAL;
    const full = p === '/' ? this.root : this.root + p;
    if (!this.contain || p === '/') return full;
    const parent = full.slice(0, full.lastIndexOf('/'));
    const real = this.os.realpath(parent);
    if (typeof real === 'number') return real;
    if (real !== this.root && !real.startsWith(this.root + '/')) return -E.EXDEV;
    return full;
  }

  private with<T>(p: string, f: (h: string) => T | number): T | number {
    const h = this.host(p);
    return typeof h === 'number' ? h : f(h);
  }

  lstat(p: string): FsAttr | number { return this.with(p, (h) => this.os.lstat(h)); }
  fstat(fd: number): FsAttr | number { return this.os.fstat(fd); }
  open(p: string, flags: number, mode: number): number { return this.with(p, (h) => this.os.open(h, flags, mode)); }
  close(fd: number): number { return this.os.close(fd); }
  read(fd: number, buf: Uint8Array, position: number): number { return this.os.read(fd, buf, position); }
  write(fd: number, buf: Uint8Array, position: number): number { return this.os.write(fd, buf, position); }
  readdir(p: string): FsDirent[] | number { return this.with(p, (h) => this.os.readdir(h)); }
  readlink(p: string): string | number { return this.with(p, (h) => this.os.readlink(h)); }
  mkdir(p: string, mode: number): number { return this.with(p, (h) => this.os.mkdir(h, mode)); }
  unlink(p: string): number { return this.with(p, (h) => this.os.unlink(h)); }
  rmdir(p: string): number { return this.with(p, (h) => this.os.rmdir(h)); }
  rename(from: string, to: string): number { return this.with(from, (f) => this.with(to, (t) => this.os.rename(f, t))); }
  symlink(target: string, p: string): number { return this.with(p, (h) => this.os.symlink(target, h)); }
  link(existing: string, p: string): number { return this.with(existing, (e) => this.with(p, (h) => this.os.link(e, h))); }
  chmod(p: string, mode: number): number { return this.with(p, (h) => this.os.chmod(h, mode)); }
  chown(p: string, uid: number, gid: number): number { return this.with(p, (h) => this.os.chown(h, uid, gid, true)); }
  utimes(p: string, a: bigint | null, m: bigint | null): number { return this.with(p, (h) => this.os.utimes(h, a, m, true)); }
  truncate(p: string, len: number): number { return this.with(p, (h) => this.os.truncate(h, len)); }
  ftruncate(fd: number, len: number): number { return this.os.ftruncate(fd, len); }
  fsync(fd: number, dataOnly: boolean): number { return dataOnly ? this.os.fdatasync(fd) : this.os.fsync(fd); }
  statfs(p: string): FsStatfs | number { return this.with(p, (h) => this.os.statfs(h)); }
  access(p: string, mode: number): number { return this.with(p, (h) => this.os.access(h, mode)); }
}

/** A passthrough share of host directory `dir` (a real path, no trailing slash). */
export function passthroughBackend(os: HostOs, dir: string, readOnly: boolean): HostOsFsBackend {
  return new HostOsFsBackend(os, dir, readOnly, true);
}

/** An overlay share: `lowers` (lowest first, never written) under the writable `upper`, with OCI whiteouts. */
export function overlayBackend(os: HostOs, lowers: readonly string[], upper: string): HostOsFsBackend {
  const overlay = new OverlayHostOs(os, lowers, upper);
  return new HostOsFsBackend(overlay, overlay.mount, false, false);
}
