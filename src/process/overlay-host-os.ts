/**
 * The container's root filesystem: an overlay of read-only lower layers
 * and one writable upper layer, with overlayfs semantics
 * (Documentation/filesystems/overlayfs.rst) and the OCI image spec's layer
 * representation of deletions (image-spec layer.md "Whiteouts").
 *
 * It is a HostOs wrapper: the VFS is given the upper directory as its root
 * (`mount`), and every path under it is mapped here to the layer that
 * holds it. A name is looked up in the upper, then in each lower from the
 * highest; `.wh.NAME` in a layer hides NAME in the layers below it, and a
 * directory holding `.wh..wh..opq` hides the same directory in the layers
 * below. The first change to a lower file (open for writing, truncate,
 * chmod, chown, utimes, link, rename) copies it up with its metadata;
 * deleting a name that a lower layer has leaves a whiteout. The upper is
 * therefore an OCI layer diff as it stands (a later `commit` can tar it).
 * The guest never sees `.wh.` names and cannot create them. Lower layers
 * are never written. Symlinks are resolved by the VFS (vfs.ts), inside the
 * root, from the lstat and readlink answers given here.
 */
import { DelegatingHostOs } from './delegating-host-os.js';
import type { HostOs, HostDirent, HostStatfs, StatInfo } from './host-os.js';
import {
  E, S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, O_ACCMODE, O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW,
} from './sys-abi.js';

/** Prefix of a whiteout name (OCI image-spec layer.md "Whiteouts"). */
export const WHITEOUT_PREFIX = '.wh.';
/** The opaque-directory marker (OCI image-spec layer.md "Opaque Whiteout"). */
export const OPAQUE_MARKER = '.wh..wh..opq';
/** Bytes copied per read during copy-up. */
const COPY_CHUNK = 1 << 16;

/** Where a name was found: its path in each layer that has it, topmost first (one path unless a directory). */
interface Found { paths: string[]; layers: number[]; st: StatInfo }

/** Splits a mount-relative path into components. */
function comps(rel: string): string[] {
  return rel.split('/').filter((c) => c !== '' && c !== '.');
}

/** The overlay root as a HostOs (see the file comment). */
export class OverlayHostOs extends DelegatingHostOs {
  /** Layer directories, topmost first: the upper, then the lowers from the highest. */
  private readonly layers: string[];
  /** Host fds opened on a lower-layer file, with the file's mount-relative path (fchmod etc. copy it up). */
  private readonly lowerFds = new Map<number, string>();

  /**
   * An overlay of `lowers` (lowest first, never written) under `upper`
   * (writable), seen at `upper`'s path. All must be real directory paths.
   */
  constructor(inner: HostOs, readonly lowers: readonly string[], readonly upper: string) {
    super(inner);
    this.layers = [upper, ...[...lowers].reverse()];
  }

  /** The path the VFS uses as the root. */
  get mount(): string { return this.upper; }

  /** The mount-relative path of `path` ('/' for the root), or null if outside the overlay. */
  private rel(path: string): string | null {
    if (path === this.upper) return '/';
    if (!path.startsWith(this.upper + '/')) return null;
    return '/' + comps(path.slice(this.upper.length)).join('/');
  }

  private isDir(st: StatInfo): boolean { return (st.mode & S_IFMT) === S_IFDIR; }

  private exists(p: string): boolean { return typeof this.inner.lstat(p) !== 'number'; }

  /** Looks `rel` up through the layers from layer index `from`: -ENOENT, -ENOTDIR or where it is. */
  private lookup(rel: string, from = 0): Found | number {
    let dirs = this.layers.slice(from);
    let idx = dirs.map((_, i) => i + from);
    let top: StatInfo | number = this.inner.lstat(dirs[0]!);
    if (typeof top === 'number') return top;
    const cs = comps(rel);
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]!;
      if (c.startsWith(WHITEOUT_PREFIX)) return -E.ENOENT;
      const next: string[] = [], nextIdx: number[] = [];
      let st0: StatInfo | null = null;
      for (let j = 0; j < dirs.length; j++) {
        const d = dirs[j]!, p = d + '/' + c, st = this.inner.lstat(p);
        if (typeof st !== 'number') {
          if (st0 === null) st0 = st;
          else if (!this.isDir(st)) break; // a non-directory below a directory is hidden
          next.push(p); nextIdx.push(idx[j]!);
          if (!this.isDir(st) || this.exists(p + '/' + OPAQUE_MARKER)) break;
        }
        if (this.exists(d + '/' + WHITEOUT_PREFIX + c)) break; // hidden in the layers below d
      }
      if (st0 === null) return -E.ENOENT;
      if (i + 1 < cs.length && !this.isDir(st0)) return -E.ENOTDIR;
      dirs = next; idx = nextIdx; top = st0;
    }
    return { paths: dirs, layers: idx, st: top };
  }

  /** The mount-relative parent and last name of `rel` (not the root). */
  private split(rel: string): [string, string] {
    const cs = comps(rel);
    const name = cs.pop() ?? '';
    return ['/' + cs.join('/'), name];
  }

  /** Copies `rel` (found at `f`) into the upper with its metadata, parents first; 0 or -errno. */
  private copyUp(rel: string, f?: Found): number {
    const found = f ?? this.lookup(rel);
    if (typeof found === 'number') return found;
    if (found.layers[0] === 0) return 0;
    const [parent] = this.split(rel);
    const pr = this.copyUp(parent);
    if (pr < 0) return pr;
    const src = found.paths[0]!, dst = this.upper + rel, st = found.st;
    const fmt = st.mode & S_IFMT;
    let r: number;
    if (fmt === S_IFDIR) {
      r = this.inner.mkdir(dst, 0o700);
      // The lower directory's contents stay visible through the merge unless hidden; nothing to copy.
    } else if (fmt === S_IFLNK) {
      const t = this.inner.readlink(src);
      r = typeof t === 'number' ? t : this.inner.symlink(t, dst);
    } else if (fmt === S_IFREG) {
      r = this.copyData(src, dst);
    } else {
      return -E.EPERM; // device nodes and fifos cannot be made through the host services
    }
    if (r < 0) return r;
    if (fmt !== S_IFLNK) this.inner.chmod(dst, st.mode & 0o7777);
    this.inner.chown(dst, st.uid, st.gid, true); // fails quietly when not privileged
    this.inner.utimes(dst, st.atimeNs, st.mtimeNs, true);
    return 0;
  }

  private copyData(src: string, dst: string): number {
    const inFd = this.inner.open(src, O_RDONLY | O_NOFOLLOW, 0);
    if (inFd < 0) return inFd;
    const outFd = this.inner.open(dst, O_WRONLY | O_CREAT | O_EXCL, 0o600);
    if (outFd < 0) { this.inner.close(inFd); return outFd; }
    const buf = new Uint8Array(COPY_CHUNK);
    let r = 0;
    for (let pos = 0; ; ) {
      const n = this.inner.read(inFd, buf, pos);
      if (n < 0) { r = n; break; }
      if (n === 0) break;
      const w = this.inner.write(outFd, buf.subarray(0, n), pos);
      if (w < 0) { r = w; break; }
      pos += n;
    }
    this.inner.close(inFd);
    this.inner.close(outFd);
    return r;
  }

  /** Copies a directory tree up entirely (before a rename of the directory). */
  private copyUpTree(rel: string): number {
    const r = this.copyUp(rel);
    if (r < 0) return r;
    const list = this.readdir(this.upper + rel);
    if (typeof list === 'number') return list;
    for (const e of list) {
      const child = (rel === '/' ? '' : rel) + '/' + e.name;
      const f = this.lookup(child);
      if (typeof f === 'number') return f;
      const cr = this.isDir(f.st) ? this.copyUpTree(child) : this.copyUp(child, f);
      if (cr < 0) return cr;
    }
    return 0;
  }

  /** Gets the parent of a new name `rel` ready in the upper and clears a whiteout there; true if one was cleared. */
  private prepareCreate(rel: string): number | boolean {
    const [parent, name] = this.split(rel);
    if (name.startsWith(WHITEOUT_PREFIX)) return -E.EINVAL;
    const pf = this.lookup(parent);
    if (typeof pf === 'number') return pf;
    if (!this.isDir(pf.st)) return -E.ENOTDIR;
    const r = this.copyUp(parent, pf);
    if (r < 0) return r;
    const wh = this.upper + (parent === '/' ? '' : parent) + '/' + WHITEOUT_PREFIX + name;
    if (!this.exists(wh)) return false;
    const u = this.inner.unlink(wh);
    return u < 0 ? u : true;
  }

  /** Leaves a whiteout for `rel` if a lower layer still shows it. */
  private whiteoutIfLower(rel: string): number {
    if (typeof this.lookup(rel, 1) === 'number') return 0;
    const [parent, name] = this.split(rel);
    const r = this.copyUp(parent);
    if (r < 0) return r;
    const fd = this.inner.open(this.upper + (parent === '/' ? '' : parent) + '/' + WHITEOUT_PREFIX + name, O_WRONLY | O_CREAT | O_TRUNC, 0);
    return fd < 0 ? fd : this.inner.close(fd);
  }

  /** Makes upper directory `rel` opaque. */
  private markOpaque(rel: string): number {
    const fd = this.inner.open(this.upper + rel + '/' + OPAQUE_MARKER, O_WRONLY | O_CREAT | O_TRUNC, 0);
    return fd < 0 ? fd : this.inner.close(fd);
  }

  /** Removes the upper copy of an (empty in the merge) directory: its whiteouts, markers, then itself. */
  private removeUpperDir(rel: string): number {
    const p = this.upper + rel;
    const list = this.inner.readdir(p);
    if (typeof list === 'number') return list === -E.ENOENT ? 0 : list;
    for (const e of list) {
      if (!e.name.startsWith(WHITEOUT_PREFIX)) return -E.ENOTEMPTY;
      const u = this.inner.unlink(p + '/' + e.name);
      if (u < 0) return u;
    }
    return this.inner.rmdir(p);
  }

  /** The path an operation on `path` uses: the topmost layer's, or -errno (a trailing slash demands a directory). */
  private top(path: string, rel: string): string | number {
    const f = this.lookup(rel);
    if (typeof f === 'number') return f;
    if (path.endsWith('/') && !this.isDir(f.st)) return -E.ENOTDIR;
    return f.paths[0]!;
  }

  /** Makes directory `rel` (mode `mode`, umask aside) in the upper unless the merge has it; 0 or -errno. */
  ensureDir(rel: string, mode: number): number {
    if (typeof this.lookup(rel) !== 'number') return 0;
    const r = this.mkdir(this.upper + rel, mode);
    return r < 0 ? r : this.inner.chmod(this.upper + rel, mode);
  }

  /** The host path backing guest-visible `path` (the loader reads executables there), or null. */
  backingPath(path: string): string | null {
    const rel = this.rel(path);
    if (rel === null) return path;
    const t = this.top(path, rel);
    return typeof t === 'number' ? null : t;
  }

  /** Opens through the merge; writing opens copy the file up first, creating ones make it in the upper. */
  override open(path: string, flags: number, mode: number): number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.open(path, flags, mode);
    const f = this.lookup(rel);
    if (typeof f === 'number') {
      if (f !== -E.ENOENT || (flags & O_CREAT) === 0) return f;
      const p = this.prepareCreate(rel);
      if (typeof p === 'number') return p;
      return this.inner.open(this.upper + rel, flags, mode);
    }
    const writing = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
    if (writing && !this.isDir(f.st)) {
      if ((flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL)) return -E.EEXIST;
      const r = this.copyUp(rel, f);
      if (r < 0) return r;
      return this.inner.open(this.upper + rel, flags, mode);
    }
    const fd = this.inner.open(path.endsWith('/') ? f.paths[0]! + '/' : f.paths[0]!, flags, mode);
    if (fd >= 0 && f.layers[0] !== 0) this.lowerFds.set(fd, rel);
    return fd;
  }

  /** Closes and forgets a lower-file fd. */
  override close(fd: number): number {
    this.lowerFds.delete(fd);
    return this.inner.close(fd);
  }

  /** stat(2) of the topmost copy (the VFS has already followed symlinks inside the root). */
  override stat(path: string): StatInfo | number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.stat(path);
    const t = this.top(path, rel);
    return typeof t === 'number' ? t : this.inner.stat(t);
  }

  /** lstat(2) of the topmost copy. */
  override lstat(path: string): StatInfo | number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.lstat(path);
    const t = this.top(path, rel);
    return typeof t === 'number' ? t : this.inner.lstat(t);
  }

  /** The merged listing: every layer's names down to an opaque directory, less whiteouts and their targets. */
  override readdir(path: string): HostDirent[] | number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.readdir(path);
    const f = this.lookup(rel);
    if (typeof f === 'number') return f;
    if (!this.isDir(f.st)) return -E.ENOTDIR;
    const seen = new Set<string>(), hidden = new Set<string>(), out: HostDirent[] = [];
    for (const p of f.paths) {
      const list = this.inner.readdir(p);
      if (typeof list === 'number') return list;
      const whiteouts: string[] = [];
      for (const e of list) {
        if (e.name.startsWith(WHITEOUT_PREFIX)) {
          if (e.name !== OPAQUE_MARKER) whiteouts.push(e.name.slice(WHITEOUT_PREFIX.length));
          continue;
        }
        if (seen.has(e.name) || hidden.has(e.name)) continue;
        seen.add(e.name);
        out.push(e);
      }
      for (const w of whiteouts) hidden.add(w);
    }
    return out;
  }

  /** readlink(2) of the topmost copy. */
  override readlink(path: string): string | number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.readlink(path);
    const t = this.top(path, rel);
    return typeof t === 'number' ? t : this.inner.readlink(t);
  }

  /** The overlay's paths are already canonical (the VFS resolves links itself). */
  override realpath(path: string): string | number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.realpath(path);
    const t = this.top(path, rel);
    return typeof t === 'number' ? t : this.upper + (rel === '/' ? '' : rel);
  }

  /** access(2) on the topmost copy. */
  override access(path: string, mode: number): number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.access(path, mode);
    const t = this.top(path, rel);
    return typeof t === 'number' ? t : this.inner.access(t, mode);
  }

  /** mkdir(2) in the upper; over a whiteout, the new directory is opaque. */
  override mkdir(path: string, mode: number): number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.mkdir(path, mode);
    if (rel === '/') return -E.EEXIST;
    if (typeof this.lookup(rel) !== 'number') return -E.EEXIST;
    const p = this.prepareCreate(rel);
    if (typeof p === 'number') return p;
    const r = this.inner.mkdir(this.upper + rel, mode);
    if (r < 0 || !p) return r;
    return this.markOpaque(rel);
  }

  /** unlink(2): removes the upper copy and whites out a lower one. */
  override unlink(path: string): number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.unlink(path);
    const f = this.lookup(rel);
    if (typeof f === 'number') return f;
    if (this.isDir(f.st)) return -E.EISDIR;
    if (f.layers[0] === 0) {
      const r = this.inner.unlink(this.upper + rel);
      if (r < 0) return r;
    }
    return this.whiteoutIfLower(rel);
  }

  /** rmdir(2) of a directory that is empty in the merge. */
  override rmdir(path: string): number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.rmdir(path);
    if (rel === '/') return -E.EBUSY;
    const f = this.lookup(rel);
    if (typeof f === 'number') return f;
    if (!this.isDir(f.st)) return -E.ENOTDIR;
    const list = this.readdir(path);
    if (typeof list === 'number') return list;
    if (list.length > 0) return -E.ENOTEMPTY;
    if (f.layers[0] === 0) {
      const r = this.removeUpperDir(rel);
      if (r < 0) return r;
    }
    return this.whiteoutIfLower(rel);
  }

  /** rename(2): the source (a whole directory tree) is copied up, moved in the upper and whited out below. */
  override rename(from: string, to: string): number {
    const rf = this.rel(from), rt = this.rel(to);
    if (rf === null && rt === null) return this.inner.rename(from, to);
    if (rf === null || rt === null) return -E.EXDEV;
    const f = this.lookup(rf);
    if (typeof f === 'number') return f;
    if (rf === rt) return 0;
    const fromDir = this.isDir(f.st);
    if (fromDir && (rt + '/').startsWith(rf + '/')) return -E.EINVAL;
    const t = this.lookup(rt);
    if (typeof t !== 'number') {
      const toDir = this.isDir(t.st);
      if (fromDir && !toDir) return -E.ENOTDIR;
      if (!fromDir && toDir) return -E.EISDIR;
      if (toDir) {
        const list = this.readdir(to);
        if (typeof list === 'number') return list;
        if (list.length > 0) return -E.ENOTEMPTY;
        if (t.layers[0] === 0) { const r = this.removeUpperDir(rt); if (r < 0) return r; }
      }
    } else if (t !== -E.ENOENT) {
      return t;
    }
    const cr = fromDir ? this.copyUpTree(rf) : this.copyUp(rf, f);
    if (cr < 0) return cr;
    const p = this.prepareCreate(rt);
    if (typeof p === 'number') return p;
    const r = this.inner.rename(this.upper + rf, this.upper + rt);
    if (r < 0) return r;
    if (fromDir && typeof this.lookup(rt, 1) !== 'number') {
      const m = this.markOpaque(rt);
      if (m < 0) return m;
    }
    return this.whiteoutIfLower(rf);
  }

  /** symlink(2) in the upper. */
  override symlink(target: string, path: string): number {
    const rel = this.rel(path);
    if (rel === null) return this.inner.symlink(target, path);
    if (typeof this.lookup(rel) !== 'number') return -E.EEXIST;
    const p = this.prepareCreate(rel);
    return typeof p === 'number' ? p : this.inner.symlink(target, this.upper + rel);
  }

  /** link(2): the existing file is copied up and linked in the upper. */
  override link(existing: string, path: string): number {
    const re = this.rel(existing), rp = this.rel(path);
    if (re === null && rp === null) return this.inner.link(existing, path);
    if (re === null || rp === null) return -E.EXDEV;
    const f = this.lookup(re);
    if (typeof f === 'number') return f;
    if (typeof this.lookup(rp) !== 'number') return -E.EEXIST;
    const c = this.copyUp(re, f);
    if (c < 0) return c;
    const p = this.prepareCreate(rp);
    return typeof p === 'number' ? p : this.inner.link(this.upper + re, this.upper + rp);
  }

  /** Copies `path` up for a metadata or data change; the upper path, or -errno. */
  private forChange(path: string): string | number {
    const rel = this.rel(path);
    if (rel === null) return path;
    const f = this.lookup(rel);
    if (typeof f === 'number') return f;
    const r = this.copyUp(rel, f);
    return r < 0 ? r : this.upper + rel;
  }

  /** Copies a lower file open on `fd` up before a metadata change through the fd; the upper path, or null. */
  private fdChange(fd: number): string | null {
    const rel = this.lowerFds.get(fd);
    if (rel === undefined) return null;
    return this.copyUp(rel) < 0 ? null : this.upper + rel;
  }

  /** chmod(2) after copy-up. */
  override chmod(path: string, mode: number): number {
    const p = this.forChange(path);
    return typeof p === 'number' ? p : this.inner.chmod(p, mode);
  }

  /** fchmod(2); a lower file is copied up and changed there. */
  override fchmod(fd: number, mode: number): number {
    const p = this.fdChange(fd);
    return p === null ? this.inner.fchmod(fd, mode) : this.inner.chmod(p, mode);
  }

  /** chown(2) after copy-up. */
  override chown(path: string, uid: number, gid: number, noFollow: boolean): number {
    const p = this.forChange(path);
    return typeof p === 'number' ? p : this.inner.chown(p, uid, gid, noFollow);
  }

  /** fchown(2); a lower file is copied up and changed there. */
  override fchown(fd: number, uid: number, gid: number): number {
    const p = this.fdChange(fd);
    return p === null ? this.inner.fchown(fd, uid, gid) : this.inner.chown(p, uid, gid, true);
  }

  /** utimes after copy-up. */
  override utimes(path: string, atimeNs: bigint | null, mtimeNs: bigint | null, noFollow: boolean): number {
    const p = this.forChange(path);
    return typeof p === 'number' ? p : this.inner.utimes(p, atimeNs, mtimeNs, noFollow);
  }

  /** futimes; a lower file is copied up and changed there. */
  override futimes(fd: number, atimeNs: bigint | null, mtimeNs: bigint | null): number {
    const p = this.fdChange(fd);
    return p === null ? this.inner.futimes(fd, atimeNs, mtimeNs) : this.inner.utimes(p, atimeNs, mtimeNs, true);
  }

  /** truncate(2) after copy-up. */
  override truncate(path: string, len: number): number {
    const p = this.forChange(path);
    return typeof p === 'number' ? p : this.inner.truncate(p, len);
  }

  /** statfs(2) of the upper's filesystem. */
  override statfs(path: string): HostStatfs | number {
    return this.inner.statfs(this.rel(path) === null ? path : this.upper);
  }
}
