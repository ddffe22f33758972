/**
 * File descriptor syscalls: openat, close, close_range, dup/dup3, fcntl,
 * ioctl (terminal requests), pipe2, flock and the sync family.
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import { OpenFile, Pipe } from './fd-table.js';
import { mappedFileId, noteFileResize } from './shared-mappings.js';
import { ptyIoctl } from './sys-tty.js';
import {
  E, O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_CLOEXEC, O_NONBLOCK, O_DIRECT,
  O_TMPFILE_BIT, O_DIRECTORY, F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL,
  F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_GETOWN, F_SETOWN, F_GETPIPE_SZ,
  F_SETPIPE_SZ, FD_CLOEXEC, F_UNLCK, SETFL_MASK, S_IFMT, S_IFREG, u32,
} from './sys-abi.js';

function sysOpenat(c: SysCtx, a: SysArgs): number {
  const dirfd = a.i32(0), flags = a.i32(2), mode = a.u32(3) & 0o7777;
  const p = c.str(a.u(1));
  if (typeof p === 'number') return p;
  if (flags & O_TMPFILE_BIT) return -E.EOPNOTSUPP; // glibc's tmpfile() falls back to a named file
  const excl = (flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL);
  const r = c.resolveAt(dirfd, p, !(flags & O_NOFOLLOW) && !excl);
  if (typeof r === 'number') return r;
  if (r.kind === 'virtual' && excl) return -E.EEXIST;
  if (r.kind === 'virtual' && (flags & O_DIRECTORY) && r.node.t !== 'dir' && r.node.t !== 'link') return -E.ENOTDIR;
  const f = c.openResolved(r, flags, mode);
  if (typeof f === 'number') return f;
  const fd = c.fds.install(f, (flags & O_CLOEXEC) !== 0);
  if (fd < 0 && f.refs === 0 && f.hostFd >= 0 && !f.inherited) c.host.close(f.hostFd); // EMFILE: drop the orphan
  return fd;
}

function sysClose(c: SysCtx, a: SysArgs): number {
  return c.fds.close(a.i32(0));
}

/** close_range flags (include/uapi/linux/close_range.h). */
const CLOSE_RANGE_UNSHARE = 2, CLOSE_RANGE_CLOEXEC = 4;

function closeRange(c: SysCtx, a: SysArgs): number {
  const first = a.u32(0), last = a.u32(1), flags = a.u32(2);
  if (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) || first > last) return -E.EINVAL;
  for (const fd of c.fds.list()) {
    if (fd < first || fd > last) continue;
    if (flags & CLOSE_RANGE_CLOEXEC) c.fds.setCloexec(fd, true); else c.fds.close(fd);
  }
  return 0;
}

function dup(c: SysCtx, a: SysArgs): number {
  const f = c.fds.get(a.i32(0));
  return f ? c.fds.install(f) : -E.EBADF;
}

function dup3(c: SysCtx, a: SysArgs): number {
  const oldfd = a.i32(0), newfd = a.i32(1), flags = a.i32(2);
  if (flags & ~O_CLOEXEC) return -E.EINVAL;
  const f = c.fds.get(oldfd);
  if (!f) return -E.EBADF;
  if (oldfd === newfd) return -E.EINVAL;
  return c.fds.installAt(newfd, f, (flags & O_CLOEXEC) !== 0);
}

/** Writes l_type = F_UNLCK into a struct flock (no other process holds locks). */
function getlk(c: SysCtx, addr: number): number {
  const b = c.read(addr, 32); // struct flock (include/uapi/asm-generic/fcntl.h): l_type is the first short
  if (!b) return -E.EFAULT;
  const dv = new DataView(b.buffer), type = dv.getInt16(0, true);
  if (type < 0 || type > F_UNLCK) return -E.EINVAL;
  dv.setInt16(0, F_UNLCK, true);
  return c.write(addr, b) ? 0 : -E.EFAULT;
}

function fcntl(c: SysCtx, a: SysArgs): number {
  const fd = a.i32(0), cmd = a.i32(1), f = c.fds.get(fd);
  if (!f) return -E.EBADF;
  switch (cmd) {
    case F_DUPFD: case F_DUPFD_CLOEXEC: {
      const min = a.i32(2);
      if (min < 0 || min >= c.fds.maxFds) return -E.EINVAL;
      return c.fds.install(f, cmd === F_DUPFD_CLOEXEC, min);
    }
    case F_GETFD: return c.fds.getCloexec(fd) ? FD_CLOEXEC : 0;
    case F_SETFD: c.fds.setCloexec(fd, (a.i32(2) & FD_CLOEXEC) !== 0); return 0;
    case F_GETFL: return f.flags;
    case F_SETFL:
      if (f.kind === 'path') return -E.EBADF;
      f.flags = (f.flags & ~SETFL_MASK) | (a.i32(2) & SETFL_MASK);
      return 0;
    case F_GETLK: case F_OFD_GETLK:
      if (f.kind === 'path') return -E.EBADF;
      return getlk(c, a.u(2));
    case F_SETLK: case F_SETLKW: case F_OFD_SETLK: case F_OFD_SETLKW:
      // Advisory locks: this process is the only one the VM runs, so every lock is granted.
      if (f.kind === 'path') return -E.EBADF;
      return c.read(a.u(2), 32) ? 0 : -E.EFAULT;
    case F_GETOWN: return 0;
    case F_SETOWN: return 0;
    case F_GETPIPE_SZ: return f.pipe ? f.pipe.capacity : -E.EBADF;
    case F_SETPIPE_SZ: {
      if (!f.pipe) return -E.EBADF;
      const want = a.u(2);
      if (want > 1 << 20) return -E.EPERM; // /proc/sys/fs/pipe-max-size default
      let size = 4096;
      while (size < want) size *= 2;
      if (size < f.pipe.available) return -E.EBUSY;
      f.pipe.capacity = size;
      return size;
    }
    default: return -E.EINVAL;
  }
}

/** ioctl requests (include/uapi/asm-generic/ioctls.h). */
export const TCGETS = 0x5401, TCSETS = 0x5402, TCSETSW = 0x5403, TCSETSF = 0x5404, TCSBRK = 0x5409,
  TCXONC = 0x540a, TCFLSH = 0x540b, TIOCSCTTY = 0x540e, TIOCGPGRP = 0x540f, TIOCSPGRP = 0x5410,
  TIOCOUTQ = 0x5411, TIOCGWINSZ = 0x5413, TIOCSWINSZ = 0x5414, FIONREAD = 0x541b, FIONBIO = 0x5421,
  TIOCNOTTY = 0x5422, TIOCGSID = 0x5429, FIONCLEX = 0x5450, FIOCLEX = 0x5451;

/** struct termios size (include/uapi/asm-generic/termbits.h: 4 flags, c_line, c_cc[NCCS=19]). */
const TERMIOS_SIZE = 36;
/** termbits.h flag bits used below. */
const ICANON = 0o2, ECHO = 0o10;

/** A cooked-mode terminal's termios, as Linux initialises a tty (drivers/tty/tty_io.c tty_std_termios). */
function defaultTermios(): Uint8Array {
  const b = new Uint8Array(TERMIOS_SIZE), dv = new DataView(b.buffer);
  dv.setUint32(0, 0o400 | 0o2000 | 0o40000, true); // c_iflag: ICRNL | IXON | IUTF8
  dv.setUint32(4, 0o1 | 0o4, true); // c_oflag: OPOST | ONLCR
  dv.setUint32(8, 0o17 | 0o60 | 0o200, true); // c_cflag: B38400 | CS8 | CREAD
  dv.setUint32(12, 0o1 | 0o2 | 0o10 | 0o20 | 0o40 | 0o1000 | 0o4000 | 0o100000, true); // c_lflag: ISIG ICANON ECHO ECHOE ECHOK ECHOCTL ECHOKE IEXTEN
  // c_cc (include/asm-generic/termios.h INIT_C_CC): ^C ^\ DEL ^U ^D 0 1 0 ^Q ^S ^Z 0 ^R ^O ^W ^V 0
  b.set([3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0], 17);
  return b;
}

function ioctl(c: SysCtx, a: SysArgs): number {
  const fd = a.i32(0), req = a.u32(1), arg = a.u(2), f = c.fds.get(fd);
  if (!f || f.kind === 'path') return -E.EBADF;
  switch (req) {
    case FIONBIO: {
      const v = c.readI32(arg);
      if (v === null) return -E.EFAULT;
      f.flags = v ? f.flags | O_NONBLOCK : f.flags & ~O_NONBLOCK;
      return 0;
    }
    case FIOCLEX: c.fds.setCloexec(fd, true); return 0;
    case FIONCLEX: c.fds.setCloexec(fd, false); return 0;
    case FIONREAD: {
      let n = 0;
      if (f.kind === 'pty') return ptyIoctl(c, f, req, arg);
      if (f.pipe) n = f.pipe.available;
      else if (f.socket) n = f.socket.stream ? f.socket.rx.available : f.socket.dgrams[0]?.data.length ?? 0; // SIOCINQ (tcp(7), udp(7))
      else if (f.kind === 'host' && f.seekable) {
        const st = c.host.fstat(f.hostFd);
        if (typeof st !== 'number' && (st.mode & S_IFMT) === S_IFREG) n = Math.max(0, Number(st.size) - f.pos);
      } else if (!f.isTty) return -E.ENOTTY;
      return c.write(arg, u32(n)) ? 0 : -E.EFAULT;
    }
    default: break;
  }
  if (f.kind === 'pty') return ptyIoctl(c, f, req, arg);
  if (!f.isTty) return -E.ENOTTY;
  switch (req) {
    case TCGETS: return c.write(arg, c.termios ?? defaultTermios()) ? 0 : -E.EFAULT;
    case TCSETS: case TCSETSW: case TCSETSF: {
      const t = c.read(arg, TERMIOS_SIZE);
      if (!t) return -E.EFAULT;
      c.termios = t;
      const lflag = new DataView(t.buffer).getUint32(12, true);
      const raw = (lflag & ICANON) === 0 || (lflag & ECHO) === 0;
      if (raw !== c.ttyRaw && c.host.setRawMode(f.hostFd, raw)) c.ttyRaw = raw;
      return 0;
    }
    case TIOCGWINSZ: {
      let ws = c.winsize;
      if (!ws) {
        const sz = c.host.terminalSize(f.hostFd) ?? { rows: 24, cols: 80 };
        ws = new Uint8Array(8);
        const dv = new DataView(ws.buffer);
        dv.setUint16(0, sz.rows, true); dv.setUint16(2, sz.cols, true); // struct winsize: ws_row, ws_col, ws_xpixel, ws_ypixel
      }
      return c.write(arg, ws) ? 0 : -E.EFAULT;
    }
    case TIOCSWINSZ: {
      const ws = c.read(arg, 8);
      if (!ws) return -E.EFAULT;
      c.winsize = ws;
      return 0;
    }
    case TIOCGPGRP: return c.write(arg, u32(c.kernel.fgPgrp)) ? 0 : -E.EFAULT;
    case TIOCGSID: return c.write(arg, u32(c.kernel.root.sid)) ? 0 : -E.EFAULT;
    case TIOCSPGRP: {
      const pg = c.readI32(arg);
      return pg === null ? -E.EFAULT : c.kernel.setForeground(c, pg);
    }
    case TIOCOUTQ: return c.write(arg, u32(0)) ? 0 : -E.EFAULT;
    case TIOCSCTTY: case TIOCNOTTY: case TCSBRK: case TCXONC: case TCFLSH: return 0;
    default: return -E.ENOTTY;
  }
}

function pipe2(c: SysCtx, a: SysArgs): number {
  const flags = a.i32(1);
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT)) return -E.EINVAL;
  const p = new Pipe();
  const st = flags & O_NONBLOCK;
  const r = new OpenFile('pipe', O_RDONLY | st, -1, '', '', p);
  const w = new OpenFile('pipe', O_WRONLY | st, -1, '', '', p);
  p.readers = 1; p.writers = 1;
  const cloexec = (flags & O_CLOEXEC) !== 0;
  const rfd = c.fds.install(r, cloexec);
  if (rfd < 0) return rfd;
  const wfd = c.fds.install(w, cloexec);
  if (wfd < 0) { c.fds.close(rfd); p.writers = 0; return wfd; }
  const out = new Uint8Array(8), dv = new DataView(out.buffer);
  dv.setInt32(0, rfd, true); dv.setInt32(4, wfd, true);
  if (!c.write(a.u(0), out)) { c.fds.close(rfd); c.fds.close(wfd); return -E.EFAULT; }
  return 0;
}

/** fd check shared by calls that only need a valid, non-O_PATH fd. */
function anyFd(c: SysCtx, fd: number): OpenFile | number {
  const f = c.fds.get(fd);
  return !f || f.kind === 'path' ? -E.EBADF : f;
}

function syncFd(c: SysCtx, a: SysArgs, data: boolean): number {
  const f = anyFd(c, a.i32(0));
  if (typeof f === 'number') return f;
  if (f.hostFd < 0) return f.pipe || f.kind !== 'host' && f.kind !== 'dir' ? -E.EINVAL : 0;
  return data ? c.host.fdatasync(f.hostFd) : c.host.fsync(f.hostFd);
}

function ftruncate(c: SysCtx, a: SysArgs): number {
  const f = anyFd(c, a.i32(0)), len = a.n(1);
  if (typeof f === 'number') return f;
  if (len < 0) return -E.EINVAL;
  if (f.kind !== 'host' || !f.seekable) return -E.EINVAL;
  if (!f.writable) return -E.EINVAL;
  const id = mappedFileId(c, f.hostFd);
  const r = c.host.ftruncate(f.hostFd, len);
  if (r === 0 && id) noteFileResize(c, id.dev, id.ino, id.size, len);
  return r;
}

function fadvise(c: SysCtx, a: SysArgs): number {
  const f = anyFd(c, a.i32(0));
  if (typeof f === 'number') return f;
  if (f.pipe) return -E.ESPIPE;
  return a.i32(3) < 0 || a.i32(3) > 5 ? -E.EINVAL : 0; // POSIX_FADV_* 0..5 (include/uapi/linux/fadvise.h)
}

/** File-descriptor syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const fileSyscalls: SyscallDef[] = [
  { nr: 23, name: 'dup', fn: dup },
  { nr: 24, name: 'dup3', fn: dup3 },
  { nr: 25, name: 'fcntl', fn: fcntl },
  { nr: 29, name: 'ioctl', fn: ioctl },
  { nr: 32, name: 'flock', fn: (c, a) => { const f = anyFd(c, a.i32(0)); return typeof f === 'number' ? f : 0; } },
  { nr: 46, name: 'ftruncate', fn: ftruncate },
  { nr: 47, name: 'fallocate', fn: (c, a) => { const f = anyFd(c, a.i32(0)); return typeof f === 'number' ? f : -E.EOPNOTSUPP; } },
  { nr: 56, name: 'openat', fn: sysOpenat },
  { nr: 57, name: 'close', fn: sysClose },
  { nr: 59, name: 'pipe2', fn: pipe2 },
  { nr: 81, name: 'sync', fn: () => 0 },
  { nr: 82, name: 'fsync', fn: (c, a) => syncFd(c, a, false) },
  { nr: 83, name: 'fdatasync', fn: (c, a) => syncFd(c, a, true) },
  { nr: 84, name: 'sync_file_range', fn: (c, a) => syncFd(c, a, true) },
  { nr: 223, name: 'fadvise64', fn: fadvise },
  { nr: 267, name: 'syncfs', fn: (c, a) => { const f = anyFd(c, a.i32(0)); return typeof f === 'number' ? f : 0; } },
  { nr: 436, name: 'close_range', fn: closeRange },
];
