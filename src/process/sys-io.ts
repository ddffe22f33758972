/**
 * Data transfer syscalls: read/write and their vectored and positioned
 * forms, lseek, sendfile, and readiness (ppoll, pselect6).
 *
 * Blocking: a read of an empty pipe whose write end is open, or a write to
 * a full pipe whose read end is open, puts the task to sleep while other
 * tasks run (kernel.ts); a read of a terminal or host pipe polls it
 * without blocking while other tasks can run. As the only task, a pipe
 * read returns what is there (0: end of file), a pipe write grows the
 * buffer, and a terminal read blocks the host as qemu-user blocks its
 * thread.
 *
 * Readiness: host files, terminals and devices are always reported ready;
 * in-process pipes are ready when they hold data (or room) or their other
 * end is closed; sockets as sys-net.ts says. When nothing is ready, ppoll/pselect6 sleep until
 * something is or the timeout passes (other tasks run meanwhile); as the
 * only task they sleep the timeout and return 0, or return 0 at once
 * without one, since nothing could ever become ready.
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import type { OpenFile } from './fd-table.js';
import { raiseSignal } from './sys-signals.js';
import { ptyRead, ptyWrite, ptyReadable, ptyHungUp } from './sys-tty.js';
import { noteFileWrite } from './shared-mappings.js';
import { socketRead, socketWrite, socketReadiness } from './sys-net.js';
import {
  E, O_APPEND, SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE, SIGPIPE, S_IFCHR, S_IFMT, devMajorMinor, u64,
} from './sys-abi.js';

/** Largest transfer done with one host call (bounds host buffer sizes). */
export const IO_CHUNK = 1 << 20;
/** Most iovecs per call (include/uapi/linux/uio.h UIO_MAXIOV). */
const UIO_MAXIOV = 1024;

/** True if a short transfer from `f` is worth continuing in a loop (it never blocks). */
function loopable(f: OpenFile): boolean {
  return (f.kind === 'host' && f.seekable) || f.kind === 'mem' || f.kind === 'zero' || f.kind === 'full' ||
    f.kind === 'random';
}

/** Reads at most `n` (<= IO_CHUNK) bytes from `f` at `pos` (null: its offset). */
export function fileRead(c: SysCtx, f: OpenFile, n: number, pos: number | null): Uint8Array | number {
  if (!f.readable) return -E.EBADF;
  if (f.isDir) return -E.EISDIR;
  n = Math.min(n, IO_CHUNK);
  switch (f.kind) {
    case 'host': {
      const buf = new Uint8Array(n);
      if (!f.seekable) {
        if (pos !== null) return -E.ESPIPE;
        if (f.nonBlocking || c.kernel.canSleep(c)) {
          // Take what the host has now; if nothing, EAGAIN for O_NONBLOCK, else sleep polling it while others run.
          const r = c.host.readNonBlocking?.(f.hostFd, buf) ?? -E.ENOSYS;
          if (r >= 0) return buf.subarray(0, r);
          if (r !== -E.EAGAIN && r !== -E.ENOSYS) return r;
          if (r === -E.EAGAIN && f.nonBlocking) return r;
          if (!f.nonBlocking) return c.kernel.block(c, { restart: true, host: true, polled: r === -E.EAGAIN });
        }
        const r = c.host.read(f.hostFd, buf, null, f.nonBlocking);
        return r < 0 ? r : buf.subarray(0, r);
      }
      const implicit = pos === null && f.implicitPos;
      const at = pos ?? f.pos;
      const r = c.host.read(f.hostFd, buf, implicit ? null : at, f.nonBlocking);
      if (r < 0) return r;
      if (pos === null) f.pos += r;
      return buf.subarray(0, r);
    }
    case 'pipe': {
      if (pos !== null) return -E.ESPIPE;
      const p = f.pipe!;
      if (p.available === 0 && p.writers > 0) {
        if (f.nonBlocking) return -E.EAGAIN;
        if (c.kernel.canSleep(c)) {
          return c.kernel.block(c, { restart: true, legacy: true, ready: () => p.available > 0 || p.writers === 0 });
        }
      }
      return p.read(n);
    }
    case 'socket': return pos !== null ? -E.ESPIPE : socketRead(c, f, n);
    case 'pty': return pos !== null ? -E.ESPIPE : ptyRead(c, f, n);
    case 'mem': {
      const d = f.data!, at = pos ?? f.pos;
      const out = at >= d.length ? new Uint8Array(0) : d.slice(at, Math.min(d.length, at + n));
      if (pos === null) f.pos += out.length;
      return out;
    }
    case 'null': return new Uint8Array(0);
    case 'zero': case 'full': return new Uint8Array(n);
    case 'random': { const b = new Uint8Array(n); c.host.randomFill(b); return b; }
    default: return -E.EBADF;
  }
}

/** Writes `data` (<= IO_CHUNK) to `f` at `pos` (null: its offset); returns bytes written. */
export function fileWrite(c: SysCtx, f: OpenFile, data: Uint8Array, pos: number | null): number {
  if (!f.writable) return -E.EBADF;
  switch (f.kind) {
    case 'host': {
      let r: number;
      if (!f.seekable) {
        if (pos !== null) return -E.ESPIPE;
        r = c.host.write(f.hostFd, data, null);
      } else if (pos !== null) {
        r = c.host.write(f.hostFd, data, pos);
        noteFileWrite(c, f, data, r, pos);
      } else if (f.implicitPos) {
        r = c.host.write(f.hostFd, data, null);
        if (r > 0) f.pos += r;
        noteFileWrite(c, f, data, r, null);
      } else {
        let at = f.pos;
        if (f.flags & O_APPEND) {
          const st = c.host.fstat(f.hostFd);
          if (typeof st === 'number') return st;
          at = Number(st.size);
        }
        r = c.host.write(f.hostFd, data, at);
        if (r >= 0) f.pos = at + r;
        noteFileWrite(c, f, data, r, at);
      }
      if (r === -E.EPIPE) raiseSignal(c, SIGPIPE);
      return r;
    }
    case 'pipe': {
      if (pos !== null) return -E.ESPIPE;
      const p = f.pipe!;
      if (p.readers === 0) { raiseSignal(c, SIGPIPE); return -E.EPIPE; }
      if (data.length === 0) return 0;
      if (p.available >= p.capacity && !f.nonBlocking && c.kernel.canSleep(c)) {
        return c.kernel.block(c, { restart: true, legacy: true, ready: () => p.available < p.capacity || p.readers === 0 });
      }
      const n = f.nonBlocking ? p.write(data, p.capacity) : p.write(data);
      return n === 0 ? -E.EAGAIN : n;
    }
    case 'socket': return pos !== null ? -E.ESPIPE : socketWrite(c, f, data);
    case 'pty': return pos !== null ? -E.ESPIPE : ptyWrite(c, f, data);
    case 'null': case 'zero': case 'random': return data.length;
    case 'full': return -E.ENOSPC;
    default: return -E.EBADF;
  }
}

/** Reads up to `n` bytes into guest memory at `addr`. */
export function readInto(c: SysCtx, f: OpenFile, addr: number, n: number, pos: number | null): number {
  let done = 0;
  do {
    const want = Math.min(n - done, IO_CHUNK);
    const r = fileRead(c, f, want, pos === null ? null : pos + done);
    if (typeof r === 'number') return done > 0 ? done : r;
    if (!c.write(addr + done, r)) return done > 0 ? done : -E.EFAULT;
    done += r.length;
    if (r.length < want || !loopable(f)) break;
  } while (done < n);
  return done;
}

/** Writes `n` bytes from guest memory at `addr`. */
export function writeFrom(c: SysCtx, f: OpenFile, addr: number, n: number, pos: number | null): number {
  if (!f.writable) return -E.EBADF;
  let done = 0;
  do {
    const want = Math.min(n - done, IO_CHUNK);
    const data = c.read(addr + done, want);
    if (!data) return done > 0 ? done : -E.EFAULT;
    const r = fileWrite(c, f, data, pos === null ? null : pos + done);
    if (r < 0) return done > 0 ? done : r;
    done += r;
    if (r < want) break;
  } while (done < n);
  return done;
}

function fileOf(c: SysCtx, fd: number): OpenFile | number {
  return c.fds.get(fd) ?? -E.EBADF;
}

function sysRead(c: SysCtx, a: SysArgs): number {
  const f = fileOf(c, a.i32(0));
  return typeof f === 'number' ? f : readInto(c, f, a.u(1), a.u(2), null);
}

function sysWrite(c: SysCtx, a: SysArgs): number {
  const f = fileOf(c, a.i32(0));
  return typeof f === 'number' ? f : writeFrom(c, f, a.u(1), a.u(2), null);
}

function positioned(c: SysCtx, a: SysArgs, write: boolean): number {
  const f = fileOf(c, a.i32(0));
  if (typeof f === 'number') return f;
  const pos = a.n(3);
  if (pos < 0) return -E.EINVAL;
  if (f.kind === 'pipe' || f.kind === 'socket' || f.kind === 'pty' || (f.kind === 'host' && !f.seekable)) return -E.ESPIPE;
  return write ? writeFrom(c, f, a.u(1), a.u(2), pos) : readInto(c, f, a.u(1), a.u(2), pos);
}

/** Reads an iovec array: [base, len] pairs, or -errno. */
function readIov(c: SysCtx, addr: number, cnt: number): Array<[number, number]> | number {
  if (cnt < 0 || cnt > UIO_MAXIOV) return -E.EINVAL;
  const b = c.read(addr, cnt * 16);
  if (!b) return -E.EFAULT;
  const dv = new DataView(b.buffer), out: Array<[number, number]> = [];
  for (let i = 0; i < cnt; i++) {
    const len = dv.getBigUint64(16 * i + 8, true);
    if (len > 0x7fff_ffffn) return -E.EINVAL;
    out.push([Number(dv.getBigUint64(16 * i, true)), Number(len)]);
  }
  return out;
}

function vectored(c: SysCtx, fd: number, iovAddr: number, cnt: number, pos: number | null, write: boolean): number {
  const f = fileOf(c, fd);
  if (typeof f === 'number') return f;
  if (pos !== null && (pos < 0 || f.kind === 'pipe' || f.kind === 'socket' || f.kind === 'pty' || (f.kind === 'host' && !f.seekable))) return pos < 0 ? -E.EINVAL : -E.ESPIPE;
  const iov = readIov(c, iovAddr, cnt);
  if (typeof iov === 'number') return iov;
  const total = iov.reduce((s, [, l]) => s + l, 0);
  if (write && total > IO_CHUNK * 16) {
    // Too big to gather: write buffer by buffer.
    let done = 0;
    for (const [base, len] of iov) {
      if (len === 0) continue;
      const r = writeFrom(c, f, base, len, pos === null ? null : pos + done);
      if (r < 0) return done > 0 ? done : r;
      done += r;
      if (r < len) break;
    }
    return done;
  }
  if (write) {
    // Gather into one buffer so a terminal or pipe sees a single write.
    const buf = new Uint8Array(total);
    let off = 0;
    for (const [base, len] of iov) {
      const d = c.read(base, len);
      if (!d) return -E.EFAULT;
      buf.set(d, off); off += len;
    }
    let done = 0;
    do {
      const r = fileWrite(c, f, buf.subarray(done, Math.min(total, done + IO_CHUNK)), pos === null ? null : pos + done);
      if (r < 0) return done > 0 ? done : r;
      done += r;
      if (r === 0) break;
    } while (done < total);
    return done;
  }
  if (!loopable(f)) {
    // One host read (at most IO_CHUNK bytes), scattered over the buffers.
    const r = fileRead(c, f, Math.min(total, IO_CHUNK), pos);
    if (typeof r === 'number') return r;
    let off = 0;
    for (const [base, len] of iov) {
      if (off >= r.length) break;
      const part = r.subarray(off, Math.min(r.length, off + len));
      if (!c.write(base, part)) return off > 0 ? off : -E.EFAULT;
      off += part.length;
    }
    return r.length;
  }
  let done = 0;
  for (const [base, len] of iov) {
    if (len === 0) continue;
    const r = readInto(c, f, base, len, pos === null ? null : pos + done);
    if (r < 0) return done > 0 ? done : r;
    done += r;
    if (r < len) break;
  }
  return done;
}

/** Major number of the memory devices /dev/null, zero, full, random, urandom (Documentation/admin-guide/devices.txt: 1 char). */
const MEM_MAJOR = 1;

/**
 * lseek on a host fd that is not a regular file: Linux's memory devices
 * (drivers/char/mem.c: null_lseek, and noop-style seeks for zero, full and
 * the random devices) accept any seek and report offset 0; pipes, sockets
 * and terminals (no_llseek) fail with ESPIPE.
 */
function hostCharSeek(c: SysCtx, hostFd: number): number {
  const st = c.host.fstat(hostFd);
  if (typeof st === 'number') return st;
  return (st.mode & S_IFMT) === S_IFCHR && devMajorMinor(st.rdev)[0] === MEM_MAJOR ? 0 : -E.ESPIPE;
}

function lseek(c: SysCtx, a: SysArgs): number {
  const f = fileOf(c, a.i32(0));
  if (typeof f === 'number') return f;
  const off = a.n(1), whence = a.i32(2);
  if (whence < SEEK_SET || whence > SEEK_HOLE) return -E.EINVAL;
  switch (f.kind) {
    case 'pipe': case 'socket': case 'pty': return -E.ESPIPE;
    case 'path': return -E.EBADF;
    case 'null': case 'zero': case 'full': case 'random': return 0;
    case 'host': if (!f.seekable) return hostCharSeek(c, f.hostFd); break;
    default: break;
  }
  if (f.implicitPos && f.kind === 'host') {
    // An inherited fd: move the offset the host kernel keeps (shared with the parent).
    const r = c.host.lseek(f.hostFd, off, whence);
    if (r !== -E.ENOSYS) return r;
  }
  let size = 0;
  if (whence >= SEEK_END) {
    if (f.kind === 'dir') return -E.EINVAL;
    if (f.kind === 'mem') size = f.data!.length;
    else {
      const st = c.host.fstat(f.hostFd);
      if (typeof st === 'number') return st;
      size = Number(st.size);
    }
  }
  let next: number;
  switch (whence) {
    case SEEK_SET: next = off; break;
    case SEEK_CUR: next = f.pos + off; break;
    case SEEK_END: next = size + off; break;
    case SEEK_DATA: if (off >= size) return -E.ENXIO; next = off; break;
    default: if (off >= size) return -E.ENXIO; next = size; break; // SEEK_HOLE: only the implicit hole at EOF
  }
  if (next < 0) return -E.EINVAL;
  if (f.kind === 'dir' && next === 0 && f.hostPath !== '') f.dirList = null; // rewinddir re-reads
  f.pos = next;
  f.implicitPos = false;
  return next;
}

function sendfile(c: SysCtx, a: SysArgs): number {
  const out = fileOf(c, a.i32(0)), inp = fileOf(c, a.i32(1));
  if (typeof out === 'number') return out;
  if (typeof inp === 'number') return inp;
  if (!inp.readable || !out.writable) return -E.EBADF;
  const offPtr = a.u(2), count = a.u(3);
  let pos: number | null = null;
  if (offPtr !== 0) {
    const v = c.readBig(offPtr, true);
    if (v === null) return -E.EFAULT;
    if (v < 0n) return -E.EINVAL;
    pos = Number(v);
  }
  let done = 0;
  while (done < count) {
    const want = Math.min(count - done, IO_CHUNK);
    const d = fileRead(c, inp, want, pos === null ? null : pos + done);
    if (typeof d === 'number') { if (done === 0) return d; break; }
    if (d.length === 0) break;
    const w = fileWrite(c, out, d, null);
    if (w < 0) { if (done === 0) return w; break; }
    done += w;
    if (w < d.length || d.length < want || !loopable(inp)) break;
  }
  if (pos !== null && !c.write(offPtr, u64(pos + done))) return -E.EFAULT;
  return done;
}

/** How long a poll with nothing else to run waits for the host bridge before looking again (ms). */
const BRIDGE_WAIT_MS = 50;

/** poll(2) event bits (include/uapi/asm-generic/poll.h). */
const POLLIN = 0x1, POLLPRI = 0x2, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20,
  POLLRDNORM = 0x40, POLLWRNORM = 0x100;

/** The poll events currently true for `f`. */
function readiness(c: SysCtx, f: OpenFile): number {
  if (f.socket) return socketReadiness(c, f.socket);
  if (f.kind === 'pty') {
    if (ptyHungUp(c, f)) return POLLHUP | (f.readable ? POLLIN | POLLRDNORM : 0);
    return (f.readable && ptyReadable(c, f) ? POLLIN | POLLRDNORM : 0) | (f.writable ? POLLOUT | POLLWRNORM : 0);
  }
  if (f.kind === 'pipe' && f.pipe) {
    const p = f.pipe;
    if (f.readable) return (p.available > 0 ? POLLIN | POLLRDNORM : 0) | (p.writers === 0 ? POLLHUP : 0);
    return p.readers === 0 ? POLLERR : p.available < p.capacity ? POLLOUT | POLLWRNORM : 0;
  }
  let ev = 0;
  if (f.readable) ev |= POLLIN | POLLRDNORM;
  if (f.writable) ev |= POLLOUT | POLLWRNORM;
  return ev;
}

/**
 * Nothing was ready: sleeps until `anyReady` or the optional timespec
 * timeout (BLOCKED), or, as the only task, sleeps the timeout; 0 means
 * report nothing ready now.
 */
function idleWait(c: SysCtx, tsAddr: number, anyReady: () => boolean): number {
  const k = c.kernel;
  let deadline: bigint | undefined;
  if (tsAddr !== 0) {
    const ns = c.readTimespec(tsAddr);
    if (ns === null) return -E.EFAULT;
    if (ns < 0n) return -E.EINVAL;
    deadline = k.deadline(c, ns);
    if (c.host.monotonicNs() >= deadline) return 0;
  }
  const ns = k.net;
  if (ns.external) {
    // Published ports: a host connection may end the wait at any time (netns.ts).
    if (c.lastResort) {
      const left = deadline === undefined ? BRIDGE_WAIT_MS : Number(deadline - c.host.monotonicNs()) / 1e6;
      ns.waitExternal(Math.max(0, Math.min(BRIDGE_WAIT_MS, left)));
      c.lastResort = false;
    }
    return k.block(c, { restart: false, deadline, ready: () => { ns.pump(); return anyReady(); }, host: true, polled: true });
  }
  if (!k.canSleep(c)) {
    if (deadline !== undefined) k.sleepUntil(deadline);
    return 0;
  }
  return k.block(c, { restart: false, deadline, ready: anyReady, legacy: true });
}

function ppoll(c: SysCtx, a: SysArgs): number {
  const addr = a.u(0), n = a.u(1);
  if (n > c.fds.maxFds) return -E.EINVAL;
  const b = c.read(addr, n * 8);
  if (!b) return -E.EFAULT;
  const dv = new DataView(b.buffer);
  const scan = (): number => {
    let ready = 0;
    for (let i = 0; i < n; i++) {
      const fd = dv.getInt32(8 * i, true), events = dv.getInt16(8 * i + 4, true) & 0xffff;
      let rev = 0;
      if (fd >= 0) {
        const f = c.fds.get(fd);
        rev = f ? readiness(c, f) & (events | POLLERR | POLLHUP) : POLLNVAL;
      }
      dv.setInt16(8 * i + 6, rev, true);
      if (rev !== 0) ready++;
    }
    return ready;
  };
  const ready = scan();
  if (ready === 0) {
    const w = idleWait(c, a.u(2), () => scan() > 0);
    if (w !== 0) return w;
  }
  return c.write(addr, b) ? ready : -E.EFAULT;
}

function pselect6(c: SysCtx, a: SysArgs): number {
  const n = a.i32(0);
  if (n < 0 || n > c.fds.maxFds) return -E.EINVAL;
  const bytes = Math.ceil(n / 64) * 8;
  const sets: Array<Uint8Array | null> = [];
  for (let k = 0; k < 3; k++) {
    const p = a.u(1 + k);
    if (p === 0) { sets.push(null); continue; }
    const s = c.read(p, bytes);
    if (!s) return -E.EFAULT;
    sets.push(s);
  }
  const outs = sets.map((s) => (s ? new Uint8Array(s.length) : null));
  /** Fills `outs`; returns the ready count, or -EBADF. */
  const scan = (): number => {
    let ready = 0;
    for (const o of outs) o?.fill(0);
    for (let fd = 0; fd < n; fd++) {
      const m = 1 << (fd & 7), byte = fd >> 3;
      const want = sets.map((s) => (s ? (s[byte]! & m) !== 0 : false));
      if (!want[0] && !want[1] && !want[2]) continue;
      const f = c.fds.get(fd);
      if (!f) return -E.EBADF;
      const ev = readiness(c, f);
      if (want[0] && (ev & (POLLIN | POLLHUP | POLLERR))) { outs[0]![byte]! |= m; ready++; }
      if (want[1] && (ev & (POLLOUT | POLLERR))) { outs[1]![byte]! |= m; ready++; }
      if (want[2] && (ev & POLLPRI)) { outs[2]![byte]! |= m; ready++; }
    }
    return ready;
  };
  const ready = scan();
  if (ready < 0) return ready;
  if (ready === 0) {
    const w = idleWait(c, a.u(4), () => scan() !== 0);
    if (w !== 0) return w;
  }
  for (let k = 0; k < 3; k++) {
    const o = outs[k];
    if (o && !c.write(a.u(1 + k), o)) return -E.EFAULT;
  }
  return ready;
}

/** I/O syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const ioSyscalls: SyscallDef[] = [
  { nr: 62, name: 'lseek', fn: lseek },
  { nr: 63, name: 'read', fn: sysRead },
  { nr: 64, name: 'write', fn: sysWrite },
  { nr: 65, name: 'readv', fn: (c, a) => vectored(c, a.i32(0), a.u(1), a.i32(2), null, false) },
  { nr: 66, name: 'writev', fn: (c, a) => vectored(c, a.i32(0), a.u(1), a.i32(2), null, true) },
  { nr: 67, name: 'pread64', fn: (c, a) => positioned(c, a, false) },
  { nr: 68, name: 'pwrite64', fn: (c, a) => positioned(c, a, true) },
  { nr: 69, name: 'preadv', fn: (c, a) => vectored(c, a.i32(0), a.u(1), a.i32(2), a.n(3), false) },
  { nr: 70, name: 'pwritev', fn: (c, a) => vectored(c, a.i32(0), a.u(1), a.i32(2), a.n(3), true) },
  { nr: 71, name: 'sendfile', fn: sendfile },
  { nr: 72, name: 'pselect6', fn: pselect6 },
  { nr: 73, name: 'ppoll', fn: ppoll },
  { nr: 286, name: 'preadv2', fn: (c, a) => vectored(c, a.i32(0), a.u(1), a.i32(2), a.n(3) === -1 ? null : a.n(3), false) },
  { nr: 287, name: 'pwritev2', fn: (c, a) => vectored(c, a.i32(0), a.u(1), a.i32(2), a.n(3) === -1 ? null : a.n(3), true) },
];
