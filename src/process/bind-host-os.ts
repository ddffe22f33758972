/**
 * A container's bind mounts (Docker's `-v HOSTDIR:DIR[:ro]`): guest
 * directory DIR, and everything below it, is host directory HOSTDIR,
 * bypassing the overlay root (overlay-host-os.ts).
 *
 * It is a HostOs wrapper above the overlay. The VFS (vfs.ts) hands it host
 * paths under the root (`mount`, the overlay's upper); a path whose guest
 * part lies at or below a bind's target is rewritten to the same place
 * under the bind's source and goes to the plain host, every other path
 * goes on to the overlay. The VFS resolves symlinks and `..` itself, inside
 * the container's root (a link to "/" in the bound directory means the
 * container's "/"), so the rewritten path never holds a symlink the host
 * could follow out of HOSTDIR except a last component an operation
 * deliberately does not follow; `..` here is folded lexically and cannot
 * climb above a bind's source. A read-only bind refuses every change with
 * EROFS, as a `ro` mount does (mount(2) MS_RDONLY). A rename or link
 * between two mounts is EXDEV (rename(2), link(2)); the mount point itself
 * cannot be removed or renamed (EBUSY).
 */
import { DelegatingHostOs } from './delegating-host-os.js';
import type { HostOs, HostStatfs, StatInfo, HostDirent } from './host-os.js';
import { E, O_ACCMODE, O_RDONLY, O_CREAT, O_EXCL, O_TRUNC, S_IFMT, S_IFDIR, DT_DIR, DT_REG } from './sys-abi.js';

/** One bind mount: host directory `source` seen at guest path `target`. */
export interface BindMount {
  /** The host directory (absolute; the caller makes it canonical with realpath). */
  source: string;
  /** The guest directory it is mounted on (absolute, canonical: no symlinks, `.` or `..`). */
  target: string;
  /** Every change is refused with EROFS. */
  readOnly: boolean;
}

/** access(2)'s W_OK bit (POSIX unistd.h; the kernel's MAY_WRITE, include/linux/fs.h). */
const W_OK = 2;

/** Where a path landed: which bind, and the host path under its source. */
interface Mapped { bind: BindMount; host: string; atMountPoint: boolean }

/** Folds `.`, `..` and empty components of a path below a root; `..` stops at the root. */
export function foldComponents(rel: string): string[] {
  const out: string[] = [];
  for (const c of rel.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop(); else out.push(c);
  }
  return out;
}

/** Checks a guest mount target: null if usable, else a one-line reason. */
export function checkBindTarget(target: string): string | null {
  if (!target.startsWith('/')) return `${target}: the mount point must be an absolute path`;
  if (target.includes('\0')) return 'the mount point must not contain a NUL byte';
  if (foldComponents(target).length === 0) return `${target}: cannot mount over the container's root`;
  return null;
}

/** The HostOs that shows the binds over the root at `mount` (see the file comment). */
export class BindHostOs extends DelegatingHostOs {
  /** The binds, deepest target first (the longest prefix wins), targets folded. */
  private readonly binds: BindMount[];
  /** Host fds opened on files of a read-only bind (fchmod and friends are refused). */
  private readonly roFds = new Set<number>();

  /** Binds `binds` over `inner` (the overlay), whose root the VFS sees at host path `mount`; `host` is the plain host. */
  constructor(inner: HostOs, private readonly host: HostOs, readonly mount: string, binds: readonly BindMount[]) {
    super(inner);
    this.binds = binds.map((b) => ({ ...b, target: '/' + foldComponents(b.target).join('/'), source: b.source.replace(/\/+$/, '') || '/' }))
      .sort((a, b) => b.target.length - a.target.length);
  }

  /** The binds, deepest first. */
  get mounts(): readonly BindMount[] { return this.binds; }

  /** The bind holding host path `path` (under the root) and the path under its source; null if none does. */
  map(path: string): Mapped | null {
    if (path !== this.mount && !path.startsWith(this.mount + '/')) return null;
    const guest = foldComponents(path.slice(this.mount.length));
    const g = '/' + guest.join('/');
    for (const b of this.binds) {
      if (g !== b.target && !g.startsWith(b.target + '/')) continue;
      const rest = g.slice(b.target.length);
      const trailing = path.endsWith('/') && rest !== '' ? '/' : '';
      return { bind: b, host: (b.source === '/' ? '' : b.source) + rest + trailing || '/', atMountPoint: rest === '' };
    }
    return null;
  }

  /** The host path backing `path`: the bound file, or the overlay's answer through `overlayBacking`. */
  backingPath(path: string, overlayBacking: (p: string) => string | null): string | null {
    const m = this.map(path);
    return m === null ? overlayBacking(path) : m.host;
  }

  /** -EROFS if `m` is in a read-only bind, else null. */
  private ro(m: Mapped): number | null { return m.bind.readOnly ? -E.EROFS : null; }

  /** Opens a bound file; on a read-only bind, opening to write, truncate or create is EROFS. */
  override open(path: string, flags: number, mode: number): number {
    const m = this.map(path);
    if (m === null) return this.inner.open(path, flags, mode);
    if (m.bind.readOnly) {
      const exists = typeof this.host.lstat(m.host) !== 'number';
      if (exists && (flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL)) return -E.EEXIST;
      if ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0 || (!exists && (flags & O_CREAT) !== 0)) return -E.EROFS;
    }
    const fd = this.host.open(m.host, flags, mode);
    if (fd >= 0 && m.bind.readOnly) this.roFds.add(fd);
    return fd;
  }

  /** Closes a host fd. */
  override close(fd: number): number {
    this.roFds.delete(fd);
    return this.inner.close(fd);
  }

  /** stat(2) of a bound path. */
  override stat(path: string): StatInfo | number {
    const m = this.map(path);
    return m === null ? this.inner.stat(path) : this.host.stat(m.host);
  }

  /** lstat(2) of a bound path. */
  override lstat(path: string): StatInfo | number {
    const m = this.map(path);
    return m === null ? this.inner.lstat(path) : this.host.lstat(m.host);
  }

  /** Lists a directory; a mount point the directory itself lacks (a bound file) is listed too. */
  override readdir(path: string): HostDirent[] | number {
    const m = this.map(path);
    const list = m === null ? this.inner.readdir(path) : this.host.readdir(m.host);
    if (typeof list === 'number' || (path !== this.mount && !path.startsWith(this.mount + '/'))) return list;
    const dir = '/' + foldComponents(path.slice(this.mount.length)).join('/');
    for (const b of this.binds) {
      const cut = b.target.lastIndexOf('/'), parent = b.target.slice(0, cut) || '/', name = b.target.slice(cut + 1);
      if (parent !== dir || list.some((e) => e.name === name)) continue;
      const st = this.host.lstat(b.source);
      if (typeof st !== 'number') list.push({ name, ino: st.ino, type: (st.mode & S_IFMT) === S_IFDIR ? DT_DIR : DT_REG });
    }
    return list;
  }

  /** readlink(2) of a bound link (the VFS follows it inside the container's root). */
  override readlink(path: string): string | number {
    const m = this.map(path);
    return m === null ? this.inner.readlink(path) : this.host.readlink(m.host);
  }

  /** A bound path is already canonical as the VFS sees it (the VFS resolves links itself). */
  override realpath(path: string): string | number {
    const m = this.map(path);
    if (m === null) return this.inner.realpath(path);
    const st = this.host.lstat(m.host);
    return typeof st === 'number' ? st : this.mount + '/' + foldComponents(path.slice(this.mount.length)).join('/');
  }

  /** access(2); W_OK on a read-only bind is EROFS. */
  override access(path: string, mode: number): number {
    const m = this.map(path);
    if (m === null) return this.inner.access(path, mode);
    const r = this.host.access(m.host, mode);
    return r === 0 && (mode & W_OK) !== 0 && m.bind.readOnly ? -E.EROFS : r;
  }

  /** Runs a change on a bound path (EROFS on a read-only bind), or passes it to the overlay. */
  private change(path: string, onHost: (h: string) => number, onInner: () => number, busyAtMountPoint = false): number {
    const m = this.map(path);
    if (m === null) return onInner();
    if (busyAtMountPoint && m.atMountPoint) return -E.EBUSY;
    return this.ro(m) ?? onHost(m.host);
  }

  /** mkdir(2). */
  override mkdir(path: string, mode: number): number {
    const m = this.map(path);
    if (m !== null && m.atMountPoint) return -E.EEXIST;
    return this.change(path, (h) => this.host.mkdir(h, mode), () => this.inner.mkdir(path, mode));
  }

  /** unlink(2); the mount point is busy. */
  override unlink(path: string): number {
    return this.change(path, (h) => this.host.unlink(h), () => this.inner.unlink(path), true);
  }

  /** rmdir(2); the mount point is busy. */
  override rmdir(path: string): number {
    return this.change(path, (h) => this.host.rmdir(h), () => this.inner.rmdir(path), true);
  }

  /** rename(2) inside one mount; between two mounts EXDEV, of a mount point EBUSY. */
  override rename(from: string, to: string): number {
    const a = this.map(from), b = this.map(to);
    if (a === null && b === null) return this.inner.rename(from, to);
    // A mount point is busy (its parent is in the mount above: same mount, then is_local_mountpoint, fs/namei.c).
    if (a?.atMountPoint === true || b?.atMountPoint === true) return -E.EBUSY;
    if (a === null || b === null || a.bind !== b.bind) return -E.EXDEV;
    return this.ro(a) ?? this.host.rename(a.host, b.host);
  }

  /** link(2) inside one mount; between two mounts EXDEV. */
  override link(existing: string, path: string): number {
    const a = this.map(existing), b = this.map(path);
    if (a === null && b === null) return this.inner.link(existing, path);
    if (a === null || b === null || a.bind !== b.bind) return -E.EXDEV;
    if (b.atMountPoint) return -E.EEXIST;
    return this.ro(a) ?? this.host.link(a.host, b.host);
  }

  /** symlink(2); the link's text is stored as given (the VFS resolves it inside the container). */
  override symlink(target: string, path: string): number {
    const m = this.map(path);
    if (m !== null && m.atMountPoint) return -E.EEXIST;
    return this.change(path, (h) => this.host.symlink(target, h), () => this.inner.symlink(target, path));
  }

  /** chmod(2). */
  override chmod(path: string, mode: number): number {
    return this.change(path, (h) => this.host.chmod(h, mode), () => this.inner.chmod(path, mode));
  }

  /** chown(2). */
  override chown(path: string, uid: number, gid: number, noFollow: boolean): number {
    return this.change(path, (h) => this.host.chown(h, uid, gid, noFollow), () => this.inner.chown(path, uid, gid, noFollow));
  }

  /** utimes. */
  override utimes(path: string, atimeNs: bigint | null, mtimeNs: bigint | null, noFollow: boolean): number {
    return this.change(path, (h) => this.host.utimes(h, atimeNs, mtimeNs, noFollow), () => this.inner.utimes(path, atimeNs, mtimeNs, noFollow));
  }

  /** truncate(2). */
  override truncate(path: string, len: number): number {
    return this.change(path, (h) => this.host.truncate(h, len), () => this.inner.truncate(path, len));
  }

  /** fchmod(2); EROFS on a file of a read-only bind. */
  override fchmod(fd: number, mode: number): number { return this.roFds.has(fd) ? -E.EROFS : this.inner.fchmod(fd, mode); }

  /** fchown(2); EROFS on a file of a read-only bind. */
  override fchown(fd: number, uid: number, gid: number): number { return this.roFds.has(fd) ? -E.EROFS : this.inner.fchown(fd, uid, gid); }

  /** futimes; EROFS on a file of a read-only bind. */
  override futimes(fd: number, atimeNs: bigint | null, mtimeNs: bigint | null): number {
    return this.roFds.has(fd) ? -E.EROFS : this.inner.futimes(fd, atimeNs, mtimeNs);
  }

  /** statfs(2) of the bound directory's filesystem. */
  override statfs(path: string): HostStatfs | number {
    const m = this.map(path);
    return m === null ? this.inner.statfs(path) : this.host.statfs(m.host);
  }
}
