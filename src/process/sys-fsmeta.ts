/**
 * Filesystem metadata syscalls: stat family, getdents64, readlinkat,
 * access checks, directory and link management, permissions, times,
 * truncate, statfs, and the working directory.
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import type { OpenFile } from './fd-table.js';
import type { Resolved } from './vfs.js';
import type { StatInfo } from './host-os.js';
import { mappedPathId, noteFileResize } from './shared-mappings.js';
import {
  E, AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_EACCESS, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH,
  AT_NO_AUTOMOUNT, O_CREAT, O_EXCL, O_WRONLY, S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, DT_DIR, UTIME_NOW,
  UTIME_OMIT, encodeStat, encodeStatx,
} from './sys-abi.js';

/** statx's synchronisation-type flags, accepted and ignored (include/uapi/linux/fcntl.h). */
const AT_STATX_SYNC_TYPE = 0x6000;

/** The object named by (dirfd, path, flags): an open file (AT_EMPTY_PATH) or a resolved path. */
type Target = { file: OpenFile } | { r: Resolved };

function target(c: SysCtx, dirfd: number, ptr: number, flags: number, follow: boolean): Target | number {
  const p = c.str(ptr);
  if (typeof p === 'number') return p;
  if (p === '' && (flags & AT_EMPTY_PATH)) {
    if (dirfd === AT_FDCWD) {
      const r = c.vfs.resolve(c.vfs.cwd, '.', true);
      return typeof r === 'number' ? r : { r };
    }
    const f = c.fds.get(dirfd);
    return f ? { file: f } : -E.EBADF;
  }
  const r = c.resolveAt(dirfd, p, follow);
  return typeof r === 'number' ? r : { r };
}

function statTarget(c: SysCtx, t: Target, follow: boolean): StatInfo | number {
  return 'file' in t ? c.fstatOf(t.file) : c.statOf(t.r, follow);
}

function newfstatat(c: SysCtx, a: SysArgs): number {
  const flags = a.i32(3);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT)) return -E.EINVAL;
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  const t = target(c, a.i32(0), a.u(1), flags, follow);
  if (typeof t === 'number') return t;
  const st = statTarget(c, t, follow);
  if (typeof st === 'number') return st;
  return c.write(a.u(2), encodeStat(st)) ? 0 : -E.EFAULT;
}

function fstat(c: SysCtx, a: SysArgs): number {
  const f = c.fds.get(a.i32(0));
  if (!f) return -E.EBADF;
  const st = c.fstatOf(f);
  if (typeof st === 'number') return st;
  return c.write(a.u(1), encodeStat(st)) ? 0 : -E.EFAULT;
}

function statx(c: SysCtx, a: SysArgs): number {
  const flags = a.i32(2);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE)) return -E.EINVAL;
  if ((flags & AT_STATX_SYNC_TYPE) === AT_STATX_SYNC_TYPE) return -E.EINVAL;
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  const t = target(c, a.i32(0), a.u(1), flags, follow);
  if (typeof t === 'number') return t;
  const st = statTarget(c, t, follow);
  if (typeof st === 'number') return st;
  return c.write(a.u(4), encodeStatx(st, a.u32(3))) ? 0 : -E.EFAULT;
}

/** linux_dirent64 header size: d_ino, d_off, d_reclen, d_type (include/linux/dirent.h). */
const DIRENT_HDR = 19;

function getdents64(c: SysCtx, a: SysArgs): number {
  const f = c.fds.get(a.i32(0)), addr = a.u(1), count = a.u32(2);
  if (!f || f.kind === 'path') return -E.EBADF;
  if (!f.isDir || f.kind !== 'dir') return -E.ENOTDIR;
  if (f.dirList === null) {
    const list = c.host.readdir(f.hostPath);
    if (typeof list === 'number') return list;
    const self = c.fstatOf(f);
    const selfIno = typeof self === 'number' ? 0n : self.ino;
    let parentIno = selfIno;
    if (!(c.vfs.root !== undefined && f.guestPath === '/')) {
      const p = c.host.stat(f.hostPath + '/..');
      if (typeof p !== 'number') parentIno = p.ino;
    }
    f.dirList = [{ name: '.', ino: selfIno, type: DT_DIR }, { name: '..', ino: parentIno, type: DT_DIR }, ...list];
  }
  const enc = new TextEncoder(), out = new Uint8Array(Math.min(count, 1 << 20)), dv = new DataView(out.buffer);
  let off = 0;
  while (f.pos < f.dirList.length) {
    const e = f.dirList[f.pos]!, name = enc.encode(e.name);
    const reclen = (DIRENT_HDR + name.length + 1 + 7) & ~7;
    if (off + reclen > out.length) {
      if (off === 0) return -E.EINVAL;
      break;
    }
    dv.setBigUint64(off, e.ino, true);
    dv.setBigInt64(off + 8, BigInt(f.pos + 1), true); // d_off: cookie of the next entry
    dv.setUint16(off + 16, reclen, true);
    dv.setUint8(off + 18, e.type);
    out.set(name, off + DIRENT_HDR);
    off += reclen;
    f.pos++;
  }
  return c.write(addr, out.subarray(0, off)) ? off : -E.EFAULT;
}

function readlinkat(c: SysCtx, a: SysArgs): number {
  const size = a.i32(3);
  if (size <= 0) return -E.EINVAL;
  const p = c.str(a.u(1));
  if (typeof p === 'number') return p;
  const r = c.resolveAt(a.i32(0), p, false);
  if (typeof r === 'number') return r;
  let s: string | number;
  if (r.kind === 'host') s = c.host.readlink(r.host);
  else if (r.node.t === 'link') s = r.node.target;
  else if (r.node.t === 'fd') s = c.fdTarget(r.node.fd);
  else s = -E.EINVAL;
  if (typeof s === 'number') return s;
  const b = new TextEncoder().encode(s).subarray(0, size);
  return c.write(a.u(2), b) ? b.length : -E.EFAULT;
}

function faccess(c: SysCtx, dirfd: number, ptr: number, mode: number, flags: number): number {
  if (mode & ~7) return -E.EINVAL; // F_OK/R_OK/W_OK/X_OK (include/linux/fs.h MAY_*)
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH)) return -E.EINVAL;
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  const t = target(c, dirfd, ptr, flags, follow);
  if (typeof t === 'number') return t;
  if ('file' in t) return t.file.hostPath ? c.host.access(t.file.hostPath, mode) : 0;
  if (t.r.kind === 'virtual') {
    const st = c.statOf(t.r, follow);
    return typeof st === 'number' ? st : 0;
  }
  if (!follow) {
    const st = c.host.lstat(t.r.host);
    if (typeof st === 'number') return st;
    if ((st.mode & S_IFMT) === S_IFLNK) return 0;
  }
  return c.host.access(t.r.host, mode);
}

/** Resolves a path for a call that creates or removes the last component (never followed). */
function parentOp(c: SysCtx, dirfd: number, ptr: number): Resolved | number {
  return c.pathAt(dirfd, ptr, false);
}

function hostOnly(r: Resolved, errForVirtual: number): string | number {
  return r.kind === 'host' ? r.host : -errForVirtual;
}

function mkdirat(c: SysCtx, a: SysArgs): number {
  const r = parentOp(c, a.i32(0), a.u(1));
  if (typeof r === 'number') return r;
  const h = hostOnly(r, E.EEXIST);
  return typeof h === 'number' ? h : c.host.mkdir(h, a.u32(2) & 0o7777);
}

function mknodat(c: SysCtx, a: SysArgs): number {
  const mode = a.u32(2), fmt = mode & S_IFMT;
  const r = parentOp(c, a.i32(0), a.u(1));
  if (typeof r === 'number') return r;
  const h = hostOnly(r, E.EEXIST);
  if (typeof h === 'number') return h;
  if (fmt !== 0 && fmt !== S_IFREG) return -E.EPERM; // devices and FIFOs cannot be made from here
  const fd = c.host.open(h, O_CREAT | O_EXCL | O_WRONLY, mode & 0o7777);
  return fd < 0 ? fd : c.host.close(fd);
}

function unlinkat(c: SysCtx, a: SysArgs): number {
  const flags = a.i32(2);
  if (flags & ~AT_REMOVEDIR) return -E.EINVAL;
  const r = parentOp(c, a.i32(0), a.u(1));
  if (typeof r === 'number') return r;
  const h = hostOnly(r, E.EACCES);
  if (typeof h === 'number') return h;
  return flags & AT_REMOVEDIR ? c.host.rmdir(h) : c.host.unlink(h);
}

/** renameat2 flags (include/uapi/linux/fs.h). */
const RENAME_NOREPLACE = 1;

function renameat2(c: SysCtx, a: SysArgs, flags: number): number {
  if (flags & ~RENAME_NOREPLACE) return -E.EINVAL; // RENAME_EXCHANGE / RENAME_WHITEOUT unsupported
  const from = parentOp(c, a.i32(0), a.u(1));
  if (typeof from === 'number') return from;
  const to = parentOp(c, a.i32(2), a.u(3));
  if (typeof to === 'number') return to;
  const hf = hostOnly(from, E.EACCES), ht = hostOnly(to, E.EACCES);
  if (typeof hf === 'number') return hf;
  if (typeof ht === 'number') return ht;
  if (flags & RENAME_NOREPLACE) {
    const st = c.host.lstat(ht);
    if (typeof st !== 'number') return -E.EEXIST;
  }
  return c.host.rename(hf, ht);
}

function symlinkat(c: SysCtx, a: SysArgs): number {
  const t = c.str(a.u(0));
  if (typeof t === 'number') return t;
  if (t === '') return -E.ENOENT;
  const r = parentOp(c, a.i32(1), a.u(2));
  if (typeof r === 'number') return r;
  const h = hostOnly(r, E.EEXIST);
  return typeof h === 'number' ? h : c.host.symlink(t, h);
}

function linkat(c: SysCtx, a: SysArgs): number {
  const flags = a.i32(4);
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return -E.EINVAL;
  const t = target(c, a.i32(0), a.u(1), flags, (flags & AT_SYMLINK_FOLLOW) !== 0);
  if (typeof t === 'number') return t;
  let from: string;
  if ('file' in t) {
    if (!t.file.hostPath) return -E.ENOENT;
    from = t.file.hostPath;
  } else {
    if (t.r.kind !== 'host') return -E.EXDEV;
    from = t.r.host;
    if ((flags & AT_SYMLINK_FOLLOW) && c.vfs.root === undefined) {
      const real = c.host.realpath(from);
      if (typeof real === 'string') from = real;
    }
  }
  const to = parentOp(c, a.i32(2), a.u(3));
  if (typeof to === 'number') return to;
  const ht = hostOnly(to, E.EEXIST);
  return typeof ht === 'number' ? ht : c.host.link(from, ht);
}

function fchmodat(c: SysCtx, dirfd: number, ptr: number, mode: number, flags: number): number {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -E.EINVAL;
  if (flags & AT_SYMLINK_NOFOLLOW) return -E.EOPNOTSUPP; // Linux cannot chmod a symlink
  const t = target(c, dirfd, ptr, flags, true);
  if (typeof t === 'number') return t;
  if ('file' in t) return fchmodFile(c, t.file, mode);
  const h = hostOnly(t.r, E.EPERM);
  return typeof h === 'number' ? h : c.host.chmod(h, mode & 0o7777);
}

function fchmodFile(c: SysCtx, f: OpenFile, mode: number): number {
  if (f.hostFd >= 0) return c.host.fchmod(f.hostFd, mode & 0o7777);
  return f.hostPath ? c.host.chmod(f.hostPath, mode & 0o7777) : -E.EPERM;
}

function fchownat(c: SysCtx, a: SysArgs): number {
  const flags = a.i32(4);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -E.EINVAL;
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  const t = target(c, a.i32(0), a.u(1), flags, follow);
  if (typeof t === 'number') return t;
  const uid = a.i32(2), gid = a.i32(3);
  if ('file' in t) return fchownFile(c, t.file, uid, gid);
  const h = hostOnly(t.r, E.EPERM);
  return typeof h === 'number' ? h : c.host.chown(h, uid, gid, !follow);
}

function fchownFile(c: SysCtx, f: OpenFile, uid: number, gid: number): number {
  if (f.hostFd >= 0) return c.host.fchown(f.hostFd, uid, gid);
  return f.hostPath ? c.host.chown(f.hostPath, uid, gid, f.noFollow) : -E.EPERM;
}

function utimensat(c: SysCtx, a: SysArgs): number {
  const dirfd = a.i32(0), ptr = a.u(1), times = a.u(2), flags = a.i32(3);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -E.EINVAL;
  let at: bigint | null, mt: bigint | null;
  const now = c.host.realtimeNs();
  if (times === 0) { at = now; mt = now; } else {
    const b = c.read(times, 32);
    if (!b) return -E.EFAULT;
    const dv = new DataView(b.buffer), v: Array<bigint | null> = [];
    for (let i = 0; i < 2; i++) {
      const s = dv.getBigInt64(16 * i, true), ns = dv.getBigInt64(16 * i + 8, true);
      if (ns === BigInt(UTIME_NOW)) v.push(now);
      else if (ns === BigInt(UTIME_OMIT)) v.push(null);
      else if (ns < 0n || ns >= 1_000_000_000n) return -E.EINVAL;
      else v.push(s * 1_000_000_000n + ns);
    }
    at = v[0]!; mt = v[1]!;
    if (at === null && mt === null) return 0;
  }
  if (ptr === 0) {
    // utimensat(fd, NULL, ...) is futimens(fd).
    const f = c.fds.get(dirfd);
    if (!f) return -E.EBADF;
    if (f.hostFd >= 0) return c.host.futimes(f.hostFd, at, mt);
    return f.hostPath ? c.host.utimes(f.hostPath, at, mt, false) : -E.EPERM;
  }
  const follow = !(flags & AT_SYMLINK_NOFOLLOW);
  const t = target(c, dirfd, ptr, flags, follow);
  if (typeof t === 'number') return t;
  if ('file' in t) return t.file.hostFd >= 0 ? c.host.futimes(t.file.hostFd, at, mt) : -E.EPERM;
  const h = hostOnly(t.r, E.EPERM);
  return typeof h === 'number' ? h : c.host.utimes(h, at, mt, !follow);
}

function truncate(c: SysCtx, a: SysArgs): number {
  const len = a.n(1);
  if (len < 0) return -E.EINVAL;
  const r = c.pathAt(AT_FDCWD, a.u(0), true);
  if (typeof r === 'number') return r;
  const h = hostOnly(r, E.EACCES);
  if (typeof h === 'number') return h;
  const id = mappedPathId(c, h);
  const res = c.host.truncate(h, len);
  if (res === 0 && id) noteFileResize(c, id.dev, id.ino, id.size, len);
  return res;
}

/** Filesystem magic numbers (include/uapi/linux/magic.h). */
const PROC_SUPER_MAGIC = 0x9fa0, TMPFS_MAGIC = 0x01021994;
/** statfs f_flags: ST_VALID (include/linux/statfs.h). */
const ST_VALID = 0x20;

function statfsAt(c: SysCtx, hostPath: string | null, guest: string, addr: number): number {
  const b = new Uint8Array(120), dv = new DataView(b.buffer); // struct statfs (include/uapi/asm-generic/statfs.h)
  if (hostPath === null) {
    dv.setBigInt64(0, BigInt(guest.startsWith('/proc') ? PROC_SUPER_MAGIC : TMPFS_MAGIC), true);
    dv.setBigInt64(8, 4096n, true);
  } else {
    const s = c.host.statfs(hostPath);
    if (typeof s === 'number') return s;
    dv.setBigInt64(0, s.type, true); dv.setBigInt64(8, s.bsize, true);
    dv.setBigUint64(16, s.blocks, true); dv.setBigUint64(24, s.bfree, true); dv.setBigUint64(32, s.bavail, true);
    dv.setBigUint64(40, s.files, true); dv.setBigUint64(48, s.ffree, true);
    dv.setBigInt64(72, s.bsize, true); // f_frsize
  }
  dv.setBigInt64(64, 255n, true); // f_namelen: NAME_MAX
  dv.setBigInt64(80, BigInt(ST_VALID), true);
  return c.write(addr, b) ? 0 : -E.EFAULT;
}

function statfs(c: SysCtx, a: SysArgs): number {
  const r = c.pathAt(AT_FDCWD, a.u(0), true);
  if (typeof r === 'number') return r;
  return statfsAt(c, r.kind === 'host' ? r.host : null, r.guest, a.u(1));
}

function fstatfs(c: SysCtx, a: SysArgs): number {
  const f = c.fds.get(a.i32(0));
  if (!f) return -E.EBADF;
  const hp = f.hostPath || (f.kind === 'host' ? '/' : null);
  return statfsAt(c, hp, f.guestPath, a.u(1));
}

function getcwd(c: SysCtx, a: SysArgs): number {
  const b = new TextEncoder().encode(c.vfs.cwd + '\0');
  if (a.u(1) < b.length) return -E.ERANGE;
  return c.write(a.u(0), b) ? b.length : -E.EFAULT;
}

function chdirTo(c: SysCtx, r: Resolved): number {
  const st = c.statOf(r, true);
  if (typeof st === 'number') return st;
  if ((st.mode & S_IFMT) !== S_IFDIR) return -E.ENOTDIR;
  if (r.kind === 'host') {
    const ok = c.host.access(r.host, 1);
    if (ok < 0) return ok;
  }
  c.vfs.setCwd(r);
  return 0;
}

function chdir(c: SysCtx, a: SysArgs): number {
  const r = c.pathAt(AT_FDCWD, a.u(0), true);
  return typeof r === 'number' ? r : chdirTo(c, r);
}

function fchdir(c: SysCtx, a: SysArgs): number {
  const f = c.fds.get(a.i32(0));
  if (!f) return -E.EBADF;
  if (!f.isDir) return -E.ENOTDIR;
  if (f.hostPath) return chdirTo(c, { kind: 'host', host: f.hostPath, guest: f.guestPath });
  c.vfs.cwd = f.guestPath;
  return 0;
}

function umask(c: SysCtx, a: SysArgs): number {
  const old = c.umask;
  c.umask = a.u32(0) & 0o777;
  c.host.umask(c.umask);
  c.kernel.hostUmask = c.umask;
  for (const t of c.kernel.tasks) if (t.vfs === c.vfs) t.umask = c.umask; // CLONE_FS: threads share it
  return old;
}

/** Extended attributes are not supported: every xattr call reports EOPNOTSUPP, as on a filesystem without them. */
const XATTR_CALLS = ['setxattr', 'lsetxattr', 'fsetxattr', 'getxattr', 'lgetxattr', 'fgetxattr', 'listxattr',
  'llistxattr', 'flistxattr', 'removexattr', 'lremovexattr', 'fremovexattr'];

/** Filesystem metadata syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const fsMetaSyscalls: SyscallDef[] = [
  ...XATTR_CALLS.map((name, i) => ({ nr: 5 + i, name, fn: (): number => -E.EOPNOTSUPP })), // 5..16
  { nr: 17, name: 'getcwd', fn: getcwd },
  { nr: 33, name: 'mknodat', fn: mknodat },
  { nr: 34, name: 'mkdirat', fn: mkdirat },
  { nr: 35, name: 'unlinkat', fn: unlinkat },
  { nr: 36, name: 'symlinkat', fn: symlinkat },
  { nr: 37, name: 'linkat', fn: linkat },
  { nr: 38, name: 'renameat', fn: (c, a) => renameat2(c, a, 0) },
  { nr: 43, name: 'statfs', fn: statfs },
  { nr: 44, name: 'fstatfs', fn: fstatfs },
  { nr: 45, name: 'truncate', fn: truncate },
  { nr: 48, name: 'faccessat', fn: (c, a) => faccess(c, a.i32(0), a.u(1), a.i32(2), 0) },
  { nr: 49, name: 'chdir', fn: chdir },
  { nr: 50, name: 'fchdir', fn: fchdir },
  { nr: 51, name: 'chroot', fn: () => -E.EPERM },
  { nr: 52, name: 'fchmod', fn: (c, a) => { const f = c.fds.get(a.i32(0)); return f ? fchmodFile(c, f, a.u32(1)) : -E.EBADF; } },
  { nr: 53, name: 'fchmodat', fn: (c, a) => fchmodat(c, a.i32(0), a.u(1), a.u32(2), 0) },
  { nr: 54, name: 'fchownat', fn: fchownat },
  { nr: 55, name: 'fchown', fn: (c, a) => { const f = c.fds.get(a.i32(0)); return f ? fchownFile(c, f, a.i32(1), a.i32(2)) : -E.EBADF; } },
  { nr: 61, name: 'getdents64', fn: getdents64 },
  { nr: 78, name: 'readlinkat', fn: readlinkat },
  { nr: 79, name: 'newfstatat', fn: newfstatat },
  { nr: 80, name: 'fstat', fn: fstat },
  { nr: 88, name: 'utimensat', fn: utimensat },
  { nr: 166, name: 'umask', fn: umask },
  { nr: 276, name: 'renameat2', fn: (c, a) => renameat2(c, a, a.u32(4)) },
  { nr: 291, name: 'statx', fn: statx },
  { nr: 439, name: 'faccessat2', fn: (c, a) => faccess(c, a.i32(0), a.u(1), a.i32(2), a.i32(3)) },
  { nr: 452, name: 'fchmodat2', fn: (c, a) => fchmodat(c, a.i32(0), a.u(1), a.u32(2), a.i32(3)) },
];
