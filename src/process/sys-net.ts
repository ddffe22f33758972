/**
 * Socket syscalls over the VM's network namespace (netns.ts), per
 * socket(2), bind(2), listen(2), accept(2), connect(2), send(2), recv(2),
 * shutdown(2), getsockopt(2), unix(7), ip(7), tcp(7) and udp(7).
 *
 * Blocking is the pipes' (sys-io.ts): an O_NONBLOCK socket (or
 * MSG_DONTWAIT) gets EAGAIN (EINPROGRESS for connect); otherwise the task
 * sleeps while other tasks run. When nothing inside the VM could end the
 * wait but published ports are attached, the task waits for the host
 * bridge; with neither, it hangs as on Linux (sleeping the host, not
 * spinning).
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import { OpenFile } from './fd-table.js';
import { raiseSignal } from './sys-signals.js';
import {
  AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM, SOCK_BUFFER, Socket, inetAddr, type SockAddr,
} from './netns.js';
import { E, O_RDWR, O_NONBLOCK, O_CREAT, O_EXCL, O_WRONLY, AT_FDCWD, SIGPIPE } from './sys-abi.js';

/** socket(2) type flags (include/linux/net.h: SOCK_NONBLOCK = O_NONBLOCK, SOCK_CLOEXEC = O_CLOEXEC). */
const SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000, SOCK_TYPE_MASK = 0xf;
/** send/recv flags (include/linux/socket.h). */
const MSG_OOB = 0x1, MSG_PEEK = 0x2, MSG_CTRUNC = 0x8, MSG_TRUNC = 0x20, MSG_DONTWAIT = 0x40, MSG_WAITALL = 0x100,
  MSG_NOSIGNAL = 0x4000, MSG_CMSG_CLOEXEC = 0x40000000;
/** Option levels (include/linux/socket.h, include/uapi/linux/in.h). */
const SOL_SOCKET = 1, IPPROTO_IP = 0, IPPROTO_TCP = 6, IPPROTO_UDP = 17, IPPROTO_IPV6 = 41;
/** SOL_SOCKET options (include/uapi/asm-generic/socket.h). */
const SO_REUSEADDR = 2, SO_TYPE = 3, SO_ERROR = 4, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_PEERCRED = 17,
  SO_ACCEPTCONN = 30, SO_PROTOCOL = 38, SO_DOMAIN = 39;
/** SCM_RIGHTS control message type (include/linux/socket.h). */
const SCM_RIGHTS = 1;
/** IPV6_V6ONLY (include/uapi/linux/in6.h). */
const IPV6_V6ONLY = 26;
/** sizeof(struct sockaddr_in) and sizeof(struct sockaddr_in6) (include/uapi/linux/in.h, in6.h); sun_path size (un.h). */
const SIN_LEN = 16, SIN6_LEN = 28, UNIX_PATH_MAX = 108;
/** How long one wait for the host bridge lasts before the scheduler looks around again (ms). */
const BRIDGE_WAIT_MS = 50;
/** How long a wait nothing inside the VM can end sleeps the host between looks (ns). */
const STUCK_SLEEP_NS = 100_000_000;
/** Sentinel of sleepOn: the wait ended at once, try the operation again. */
const AGAIN = 1;

/** The socket behind fd, or -errno (EBADF, ENOTSOCK). */
function sockOf(c: SysCtx, fd: number): { f: OpenFile; s: Socket } | number {
  const f = c.fds.get(fd);
  if (!f) return -E.EBADF;
  if (f.socket === null) return -E.ENOTSOCK;
  c.kernel.net.pump();
  return { f, s: f.socket };
}

/**
 * The operation would block: EAGAIN for non-blocking calls, else the task
 * sleeps until `ready` (BLOCKED), or AGAIN when it waited already and
 * should try again. Retried as a last resort (no task can run), it waits
 * for the host bridge if there is one, else sleeps the host a while: a
 * wait nothing can end hangs, as on Linux, without spinning.
 */
function sleepOn(c: SysCtx, nonBlocking: boolean, ready: () => boolean, fail = -E.EAGAIN): number {
  if (nonBlocking) return fail;
  const k = c.kernel, ns = k.net;
  if (c.lastResort) {
    if (ns.external) ns.waitExternal(BRIDGE_WAIT_MS); else k.host.sleepNs(STUCK_SLEEP_NS);
    c.lastResort = false;
    if (ready()) return AGAIN;
  }
  if (ns.external) return k.block(c, { restart: true, host: true, polled: true, ready: () => { ns.pump(); return ready(); } });
  return k.block(c, { restart: true, legacy: true, ready });
}

// ---- addresses ----

/** Decodes a sockaddr for socket `s`; AF_UNIX path names are resolved (bind: not following a final symlink). */
function readAddr(c: SysCtx, s: Socket, ptr: number, len: number): SockAddr | number {
  if (len < 2 || len > 128) return -E.EINVAL;
  const b = c.read(ptr, len);
  if (!b) return -E.EFAULT;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength), fam = dv.getUint16(0, true);
  if (s.family === AF_UNIX) {
    if (fam !== AF_UNIX) return -E.EINVAL;
    const path = b.subarray(2, Math.min(len, 2 + UNIX_PATH_MAX));
    if (path.length === 0) return { family: AF_UNIX, ip: new Uint8Array(0), port: 0, unix: path, key: '' };
    if (path[0] === 0) return { family: AF_UNIX, ip: new Uint8Array(0), port: 0, unix: path.slice(), key: 'a:' + new TextDecoder('latin1').decode(path) };
    const end = path.indexOf(0), name = path.slice(0, end < 0 ? path.length : end);
    return { family: AF_UNIX, ip: new Uint8Array(0), port: 0, unix: Uint8Array.of(...name, 0), key: 'path:' + new TextDecoder().decode(name) };
  }
  if (s.family === AF_INET) {
    if (len < SIN_LEN) return -E.EINVAL;
    if (fam !== AF_INET) return -E.EAFNOSUPPORT;
    return inetAddr(AF_INET, b.slice(4, 8), dv.getUint16(2, false));
  }
  if (len < 24) return -E.EINVAL; // SIN6_LEN_RFC2133: without sin6_scope_id
  if (fam !== AF_INET6) return -E.EAFNOSUPPORT;
  return inetAddr(AF_INET6, b.slice(8, 24), dv.getUint16(2, false));
}

/** Encodes `a` as a sockaddr. */
function encodeAddr(a: SockAddr | null, family: number): Uint8Array {
  if (family === AF_UNIX) {
    const out = new Uint8Array(2 + (a?.unix.length ?? 0));
    out[0] = AF_UNIX;
    if (a) out.set(a.unix, 2);
    return out;
  }
  const out = new Uint8Array(family === AF_INET ? SIN_LEN : SIN6_LEN), dv = new DataView(out.buffer);
  dv.setUint16(0, family, true);
  if (a) {
    dv.setUint16(2, a.port, false);
    out.set(a.ip, family === AF_INET ? 4 : 8);
  }
  return out;
}

/** Writes `a` to (addrPtr, *lenPtr), truncated to the buffer, and the full length to *lenPtr. */
function writeAddr(c: SysCtx, addrPtr: number, lenPtr: number, a: SockAddr | null, family: number): number {
  if (addrPtr === 0) return 0;
  const lb = c.read(lenPtr, 4);
  if (!lb) return -E.EFAULT;
  const room = new DataView(lb.buffer, lb.byteOffset).getInt32(0, true);
  if (room < 0) return -E.EINVAL;
  const enc = encodeAddr(a, family);
  if (!c.write(addrPtr, enc.subarray(0, Math.min(room, enc.length)))) return -E.EFAULT;
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, enc.length, true);
  return c.write(lenPtr, out) ? 0 : -E.EFAULT;
}

/** The namespace key of an AF_UNIX path name: its host path (bind does not follow a final symlink). */
function unixPathKey(c: SysCtx, a: SockAddr, follow: boolean): { key: string; host: string | null } | number {
  if (!a.key.startsWith('path:')) return { key: a.key, host: null };
  const r = c.resolveAt(AT_FDCWD, a.key.slice(5), follow);
  if (typeof r === 'number') return r;
  if (r.kind !== 'host') return -E.EADDRINUSE;
  return { key: 'p:' + r.host, host: r.host };
}

/** The AF_UNIX socket a name refers to, or -errno (ENOENT: no such file, ECONNREFUSED: nobody bound). */
function unixTarget(c: SysCtx, a: SockAddr): Socket | number {
  const k = unixPathKey(c, a, true);
  if (typeof k === 'number') return k;
  const t = c.kernel.net.unixByName(k.key);
  if (t !== undefined) return t;
  if (k.host !== null && typeof c.host.lstat(k.host) === 'number') return -E.ENOENT;
  return -E.ECONNREFUSED;
}

// ---- creating, naming, connecting ----

/** Installs a new socket description; the fd or -errno. */
function install(c: SysCtx, s: Socket, flags: number): number {
  const f = new OpenFile('socket', O_RDWR | (flags & SOCK_NONBLOCK ? O_NONBLOCK : 0));
  f.socket = s;
  if (s.pid === 0) s.pid = c.group.tgid;
  const fd = c.fds.install(f, (flags & SOCK_CLOEXEC) !== 0);
  if (fd < 0) c.kernel.net.close(s, () => undefined);
  return fd;
}

function checkType(family: number, type: number, protocol: number): number {
  if (family !== AF_UNIX && family !== AF_INET && family !== AF_INET6) return -E.EAFNOSUPPORT;
  // SOCK_SEQPACKET (record boundaries on a connection) is not implemented: ESOCKTNOSUPPORT, as for an unsupported type.
  if (type !== SOCK_STREAM && type !== SOCK_DGRAM) return -E.ESOCKTNOSUPPORT;
  if (protocol !== 0 && (family === AF_UNIX || protocol !== (type === SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP))) return -E.EPROTONOSUPPORT;
  return 0;
}

function socket(c: SysCtx, a: SysArgs): number {
  const family = a.i32(0), raw = a.i32(1), type = raw & SOCK_TYPE_MASK, protocol = a.i32(2);
  if ((raw & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) !== 0) return -E.EINVAL;
  const bad = checkType(family, type, protocol);
  if (bad < 0) return bad;
  const proto = family === AF_UNIX ? 0 : type === SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
  return install(c, new Socket(family, type, proto), raw);
}

function socketpair(c: SysCtx, a: SysArgs): number {
  const family = a.i32(0), raw = a.i32(1), type = raw & SOCK_TYPE_MASK;
  if ((raw & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) !== 0) return -E.EINVAL;
  const bad = checkType(family, type, a.i32(2));
  if (bad < 0) return bad;
  if (family !== AF_UNIX) return -E.EOPNOTSUPP;
  const [x, y] = c.kernel.net.pair(type, 0);
  const fx = install(c, x, raw);
  if (fx < 0) { c.kernel.net.close(y, () => undefined); return fx; }
  const fy = install(c, y, raw);
  if (fy < 0) { c.fds.close(fx); return fy; }
  const out = new Uint8Array(8), dv = new DataView(out.buffer);
  dv.setInt32(0, fx, true); dv.setInt32(4, fy, true);
  if (!c.write(a.u(3), out)) { c.fds.close(fx); c.fds.close(fy); return -E.EFAULT; }
  return 0;
}

function bind(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const s = so.s, ns = c.kernel.net;
  const addr = readAddr(c, s, a.u(1), a.i32(2));
  if (typeof addr === 'number') return addr;
  if (s.family !== AF_UNIX) return ns.bindInet(s, addr);
  if (addr.key === '') return ns.autobindUnix(s);
  if (s.local !== null && s.local.key !== '') return -E.EINVAL;
  const k = unixPathKey(c, addr, false);
  if (typeof k === 'number') return k;
  if (k.host !== null) {
    // The socket's node in the filesystem (an empty file stands for it: the host API cannot make S_IFSOCK nodes).
    const fd = c.host.open(k.host, O_CREAT | O_EXCL | O_WRONLY, 0o777 & ~c.umask);
    if (fd < 0) return fd === -E.EEXIST ? -E.EADDRINUSE : fd;
    c.host.close(fd);
  }
  return ns.bindUnix(s, { ...addr, key: k.key });
}

function listen(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  return typeof so === 'number' ? so : c.kernel.net.listen(so.s, a.i32(1));
}

function connect(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const { f, s } = so, ns = c.kernel.net;
  const addr = readAddr(c, s, a.u(1), a.i32(2));
  if (typeof addr === 'number') {
    // AF_UNSPEC dissolves a datagram socket's association (connect(2)).
    const b = c.read(a.u(1), 2);
    if (b && b[0] === 0 && b[1] === 0 && s.type === SOCK_DGRAM) { s.remote = null; s.peer = null; s.state = s.local ? 'bound' : 'new'; return 0; }
    return addr;
  }
  if (s.family !== AF_UNIX) {
    const r = ns.connectInet(s, addr);
    // A non-blocking TCP connect reports EINPROGRESS even on loopback; it is complete at once (SO_ERROR 0).
    return r === 0 && s.stream && f.nonBlocking ? -E.EINPROGRESS : r;
  }
  const t = unixTarget(c, addr);
  if (typeof t === 'number') return t;
  if (s.type !== SOCK_DGRAM && s.state === 'connected') return -E.EISCONN;
  for (;;) {
    const r = ns.connectUnix(s, t);
    if (r !== -E.EAGAIN) return r;
    const w = sleepOn(c, f.nonBlocking, () => t.closed || t.backlog.length <= t.backlogMax);
    if (w !== AGAIN) return w;
  }
}

function accept(c: SysCtx, a: SysArgs, flags: number): number {
  if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) !== 0) return -E.EINVAL;
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const { f, s } = so;
  if (!s.stream) return -E.EOPNOTSUPP;
  if (s.state !== 'listening') return -E.EINVAL;
  for (;;) {
    const n = s.backlog.shift();
    if (n !== undefined) {
      const fd = install(c, n, flags);
      if (fd < 0) return fd;
      const r = writeAddr(c, a.u(1), a.u(2), n.remote, s.family);
      return r < 0 ? r : fd;
    }
    const w = sleepOn(c, f.nonBlocking, () => s.backlog.length > 0 || s.closed);
    if (w !== AGAIN) return w;
  }
}

function sockName(c: SysCtx, a: SysArgs, peer: boolean): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const s = so.s;
  if (peer && (s.state !== 'connected' || (s.remote === null && s.family !== AF_UNIX))) return -E.ENOTCONN;
  if (peer && s.family === AF_UNIX && s.stream && s.peer === null && !s.peerGone) return -E.ENOTCONN;
  const addr = peer ? s.remote : s.local;
  return writeAddr(c, a.u(1), a.u(2), addr ?? (s.family === AF_UNIX ? null : { ...inetAddr(s.family, new Uint8Array(s.family === AF_INET ? 4 : 16), 0) }), s.family);
}

function shutdown(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const how = a.i32(1);
  if (how < 0 || how > 2) return -E.EINVAL;
  const r = c.kernel.net.shutdown(so.s, how);
  c.kernel.net.pump();
  return r;
}

// ---- data ----

/** A send of `data` (with SCM_RIGHTS `files`) to `to` (null: the peer); bytes sent or -errno. */
export function sockSend(c: SysCtx, f: OpenFile, data: Uint8Array, flags: number, to: SockAddr | null, files: OpenFile[] = []): number {
  const s = f.socket!, ns = c.kernel.net, nb = f.nonBlocking || (flags & MSG_DONTWAIT) !== 0;
  if (flags & MSG_OOB) return -E.EOPNOTSUPP;
  let toUnix: Socket | undefined;
  if (to !== null && s.family === AF_UNIX) {
    const t = unixTarget(c, to);
    if (typeof t === 'number') return t;
    toUnix = t;
  }
  for (;;) {
    let r: number;
    if (s.stream) {
      if (to !== null && s.state !== 'connected') return s.family === AF_UNIX ? -E.EOPNOTSUPP : -E.ENOTCONN;
      const alone = !ns.external && !c.kernel.canSleep(c);
      r = data.length === 0 && s.state === 'connected' && !s.wrShut && !s.peerGone ? 0 : ns.streamWrite(s, data, files, alone);
      if (r === 0 && data.length > 0) {
        const w = sleepOn(c, nb, () => ns.writable(s));
        if (w !== AGAIN) return w;
        continue;
      }
    } else {
      r = ns.dgramSend(s, data, to, toUnix, files);
      if (r === 0 && data.length > 0) {
        const target = toUnix ?? s.peer;
        const w = sleepOn(c, nb, () => target === null || target.closed || target.dgramBytes + data.length <= SOCK_BUFFER);
        if (w !== AGAIN) return w;
        continue;
      }
    }
    if (r === -E.EPIPE && (flags & MSG_NOSIGNAL) === 0) raiseSignal(c, SIGPIPE);
    ns.pump();
    return r;
  }
}

/** A received message: bytes, the sender's address, passed files, and MSG_TRUNC for a cut datagram. */
export interface Received { data: Uint8Array; from: SockAddr | null; files: OpenFile[]; flags: number; full: number }

/** Receives up to `n` bytes; the message or -errno (BLOCKED while asleep). */
export function sockRecv(c: SysCtx, f: OpenFile, n: number, flags: number): Received | number {
  const s = f.socket!, ns = c.kernel.net, nb = f.nonBlocking || (flags & MSG_DONTWAIT) !== 0, peek = (flags & MSG_PEEK) !== 0;
  if (flags & MSG_OOB) return -E.EINVAL;
  for (;;) {
    if (s.stream) {
      if (s.state === 'listening' || (s.state !== 'connected' && !s.eof)) return -E.ENOTCONN;
      if (s.rx.available > 0 && n > 0) {
        // MSG_WAITALL: wait for the whole request unless the stream ends first (recv(2)).
        if ((flags & MSG_WAITALL) && !peek && !nb && s.rx.available < n && !s.eof && !s.rdShut && s.error === 0) {
          const w = sleepOn(c, nb, () => s.rx.available >= n || s.eof || s.error !== 0);
          if (w === AGAIN) continue;
          if (w !== -E.EAGAIN) return w;
        }
        const got = s.take(n, peek);
        ns.pump();
        return { data: got.data, from: s.remote, files: got.files, flags: 0, full: got.data.length };
      }
      if (s.error !== 0) { const e = s.error; s.error = 0; return -e; }
      if (s.eof || s.rdShut || n === 0) return { data: new Uint8Array(0), from: s.remote, files: [], flags: 0, full: 0 };
      const w = sleepOn(c, nb, () => s.rx.available > 0 || s.eof || s.error !== 0 || s.rdShut);
      if (w !== AGAIN) return w;
      continue;
    }
    const d = ns.dgramTake(s, peek);
    if (d !== undefined) {
      const cut = d.data.length > n;
      return { data: d.data.subarray(0, n), from: d.from, files: peek ? [] : d.files, flags: cut ? MSG_TRUNC : 0, full: d.data.length };
    }
    if (s.error !== 0) { const e = s.error; s.error = 0; return -e; }
    if (s.rdShut) return { data: new Uint8Array(0), from: null, files: [], flags: 0, full: 0 };
    const w = sleepOn(c, nb, () => s.dgrams.length > 0 || s.error !== 0 || s.rdShut);
    if (w !== AGAIN) return w;
  }
}

/** read(2) on a socket. */
export function socketRead(c: SysCtx, f: OpenFile, n: number): Uint8Array | number {
  const r = sockRecv(c, f, n, 0);
  if (typeof r === 'number') return r;
  for (const g of r.files) c.fds.unref(g); // read(2) discards passed descriptors
  return r.data;
}

/** write(2) on a socket. */
export function socketWrite(c: SysCtx, f: OpenFile, data: Uint8Array): number {
  if (f.socket!.type === SOCK_DGRAM && f.socket!.state !== 'connected') return f.socket!.family === AF_UNIX ? -E.ENOTCONN : -E.EDESTADDRREQ;
  return sockSend(c, f, data, 0, null);
}

function sendto(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const len = a.u(2);
  if (len > 0x7fff_ffff) return -E.EINVAL;
  const data = c.read(a.u(1), len);
  if (!data) return -E.EFAULT;
  let to: SockAddr | null = null;
  if (a.u(4) !== 0 && !(so.s.stream && so.s.state === 'connected')) {
    const r = readAddr(c, so.s, a.u(4), a.i32(5));
    if (typeof r === 'number') return r;
    to = r;
  }
  return sockSend(c, so.f, data, a.i32(3), to);
}

function recvfrom(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const flags = a.i32(3), r = sockRecv(c, so.f, a.u(2), flags);
  if (typeof r === 'number') return r;
  for (const g of r.files) c.fds.unref(g);
  if (!c.write(a.u(1), r.data)) return -E.EFAULT;
  if (a.u(4) !== 0) {
    // TCP reports no source address: addrlen becomes 0 (net/socket.c __sys_recvfrom, msg_namelen 0); AF_UNIX streams the peer's.
    const w = so.s.stream && so.s.family !== AF_UNIX ? (c.write(a.u(5), new Uint8Array(4)) ? 0 : -E.EFAULT) : writeAddr(c, a.u(4), a.u(5), r.from, so.s.family);
    if (w < 0) return w;
  }
  return flags & MSG_TRUNC ? r.full : r.data.length;
}

/** struct msghdr offsets on riscv64 (include/linux/socket.h: user_msghdr). */
const MH_NAME = 0, MH_NAMELEN = 8, MH_IOV = 16, MH_IOVLEN = 24, MH_CONTROL = 32, MH_CONTROLLEN = 40, MH_FLAGS = 48, MH_SIZE = 56;
/** struct cmsghdr header size and alignment (CMSG_ALIGN: sizeof(long)). */
const CMSG_HDR = 16, CMSG_ALIGN = 8;
/** Most iovecs per call (include/uapi/linux/uio.h UIO_MAXIOV). */
const UIO_MAXIOV = 1024;

function readMsghdr(c: SysCtx, ptr: number): { dv: DataView; iov: Array<[number, number]> } | number {
  const b = c.read(ptr, MH_SIZE);
  if (!b) return -E.EFAULT;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const cnt = Number(dv.getBigUint64(MH_IOVLEN, true));
  if (cnt > UIO_MAXIOV) return -E.EMSGSIZE;
  const ib = c.read(Number(dv.getBigUint64(MH_IOV, true)), cnt * 16);
  if (!ib) return -E.EFAULT;
  const iv = new DataView(ib.buffer, ib.byteOffset, ib.byteLength), iov: Array<[number, number]> = [];
  for (let i = 0; i < cnt; i++) {
    const len = iv.getBigUint64(16 * i + 8, true);
    if (len > 0x7fff_ffffn) return -E.EINVAL;
    iov.push([Number(iv.getBigUint64(16 * i, true)), Number(len)]);
  }
  return { dv, iov };
}

function sendmsg(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const m = readMsghdr(c, a.u(1));
  if (typeof m === 'number') return m;
  const { dv, iov } = m, total = iov.reduce((t, [, l]) => t + l, 0), data = new Uint8Array(total);
  let off = 0;
  for (const [base, len] of iov) {
    const d = c.read(base, len);
    if (!d) return -E.EFAULT;
    data.set(d, off); off += len;
  }
  let to: SockAddr | null = null;
  const namePtr = Number(dv.getBigUint64(MH_NAME, true));
  if (namePtr !== 0 && !(so.s.stream && so.s.state === 'connected')) {
    const r = readAddr(c, so.s, namePtr, dv.getUint32(MH_NAMELEN, true));
    if (typeof r === 'number') return r;
    to = r;
  }
  const files: OpenFile[] = [];
  const ctl = Number(dv.getBigUint64(MH_CONTROL, true)), ctlLen = Number(dv.getBigUint64(MH_CONTROLLEN, true));
  if (ctl !== 0 && ctlLen >= CMSG_HDR) {
    const cb = c.read(ctl, ctlLen);
    if (!cb) return -E.EFAULT;
    const cv = new DataView(cb.buffer, cb.byteOffset, cb.byteLength);
    for (let p = 0; p + CMSG_HDR <= ctlLen;) {
      const len = Number(cv.getBigUint64(p, true)), level = cv.getInt32(p + 8, true), type = cv.getInt32(p + 12, true);
      if (len < CMSG_HDR || p + len > ctlLen) return -E.EINVAL;
      if (level !== SOL_SOCKET || type !== SCM_RIGHTS || so.s.family !== AF_UNIX) return -E.EINVAL;
      for (let q = p + CMSG_HDR; q + 4 <= p + len; q += 4) {
        const g = c.fds.get(cv.getInt32(q, true));
        if (!g) return -E.EBADF;
        files.push(g);
      }
      p += Math.ceil(len / CMSG_ALIGN) * CMSG_ALIGN;
    }
  }
  return sockSend(c, so.f, data, a.i32(2), to, files);
}

function recvmsg(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const m = readMsghdr(c, a.u(1));
  if (typeof m === 'number') return m;
  const { dv, iov } = m, flags = a.i32(2), total = iov.reduce((t, [, l]) => t + l, 0);
  const r = sockRecv(c, so.f, total, flags);
  if (typeof r === 'number') return r;
  let off = 0;
  for (const [base, len] of iov) {
    if (off >= r.data.length) break;
    const part = r.data.subarray(off, Math.min(r.data.length, off + len));
    if (!c.write(base, part)) return -E.EFAULT;
    off += part.length;
  }
  const hdr = new Uint8Array(dv.buffer, dv.byteOffset, MH_SIZE).slice(), hv = new DataView(hdr.buffer);
  let outFlags = r.flags;
  const namePtr = Number(dv.getBigUint64(MH_NAME, true));
  if (namePtr !== 0) {
    const enc = encodeAddr(r.from, so.s.family), room = dv.getUint32(MH_NAMELEN, true);
    const show = so.s.stream && so.s.family !== AF_UNIX ? 0 : enc.length;
    if (show > 0 && !c.write(namePtr, enc.subarray(0, Math.min(room, enc.length)))) return -E.EFAULT;
    hv.setUint32(MH_NAMELEN, show, true);
  }
  const ctl = Number(dv.getBigUint64(MH_CONTROL, true)), ctlLen = Number(dv.getBigUint64(MH_CONTROLLEN, true));
  let used = 0;
  if (r.files.length > 0) {
    const fit = ctl === 0 ? 0 : Math.max(0, Math.floor((ctlLen - CMSG_HDR) / 4));
    const fds: number[] = [];
    for (const g of r.files) {
      const fd = fds.length < fit ? c.fds.install(g, (flags & MSG_CMSG_CLOEXEC) !== 0) : -1;
      if (fd >= 0) fds.push(fd); else outFlags |= MSG_CTRUNC;
      // The queue held one reference per file (netns.ts streamWrite/dgramSend); an installed fd holds its own.
      c.fds.unref(g);
    }
    if (fds.length > 0) {
      const len = CMSG_HDR + 4 * fds.length, cm = new Uint8Array(len), cv = new DataView(cm.buffer);
      cv.setBigUint64(0, BigInt(len), true); cv.setInt32(8, SOL_SOCKET, true); cv.setInt32(12, SCM_RIGHTS, true);
      fds.forEach((fd, i) => cv.setInt32(CMSG_HDR + 4 * i, fd, true));
      if (!c.write(ctl, cm)) return -E.EFAULT;
      used = Math.ceil(len / CMSG_ALIGN) * CMSG_ALIGN;
    }
  }
  hv.setBigUint64(MH_CONTROLLEN, BigInt(Math.min(used, ctlLen)), true);
  hv.setInt32(MH_FLAGS, outFlags, true);
  if (!c.write(a.u(1), hdr)) return -E.EFAULT;
  return flags & MSG_TRUNC ? r.full : r.data.length;
}

// ---- options ----

function setsockopt(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const s = so.s, level = a.i32(1), name = a.i32(2), len = a.i32(4);
  if (level !== SOL_SOCKET && level !== IPPROTO_IP && level !== IPPROTO_IPV6 && level !== IPPROTO_TCP && level !== IPPROTO_UDP) return -E.ENOPROTOOPT;
  if ((level === IPPROTO_TCP && (s.family === AF_UNIX || !s.stream)) || (level === IPPROTO_IPV6 && s.family !== AF_INET6)) return -E.ENOPROTOOPT;
  if (len < 0) return -E.EINVAL;
  const b = c.read(a.u(3), Math.min(len, 4));
  if (!b) return -E.EFAULT;
  const v = len >= 4 ? new DataView(b.buffer, b.byteOffset).getInt32(0, true) : len > 0 ? b[0]! : 0;
  if (level === SOL_SOCKET && name === SO_REUSEADDR) s.reuseAddr = v !== 0;
  if (level === IPPROTO_IPV6 && name === IPV6_V6ONLY) {
    if (s.local !== null) return -E.EINVAL;
    s.v6only = v !== 0;
  }
  s.opts.set(`${level}:${name}`, v);
  return 0;
}

function getsockopt(c: SysCtx, a: SysArgs): number {
  const so = sockOf(c, a.i32(0));
  if (typeof so === 'number') return so;
  const s = so.s, level = a.i32(1), name = a.i32(2), lenPtr = a.u(4);
  const lb = c.read(lenPtr, 4);
  if (!lb) return -E.EFAULT;
  const room = new DataView(lb.buffer, lb.byteOffset).getInt32(0, true);
  if (room < 0) return -E.EINVAL;
  let out: Uint8Array;
  const int = (v: number): Uint8Array => { const o = new Uint8Array(4); new DataView(o.buffer).setInt32(0, v, true); return o; };
  if (level === SOL_SOCKET) {
    switch (name) {
      case SO_TYPE: out = int(s.type); break;
      case SO_ERROR: out = int(s.error); s.error = 0; break;
      case SO_DOMAIN: out = int(s.family); break;
      case SO_PROTOCOL: out = int(s.protocol); break;
      case SO_ACCEPTCONN: out = int(s.state === 'listening' ? 1 : 0); break;
      case SO_REUSEADDR: out = int(s.reuseAddr ? 1 : 0); break;
      case SO_SNDBUF: case SO_RCVBUF: {
        const set = s.opts.get(`${level}:${name}`);
        out = int(set !== undefined ? 2 * set : SOCK_BUFFER); // the kernel doubles the value set (socket(7))
        break;
      }
      case SO_PEERCRED: {
        if (s.family !== AF_UNIX || s.peer === null) return -E.ENOTCONN;
        const o = new Uint8Array(12), dv = new DataView(o.buffer);
        dv.setInt32(0, s.peer.pid, true); dv.setUint32(4, c.id.euid, true); dv.setUint32(8, c.id.egid, true);
        out = o;
        break;
      }
      default: out = int(s.opts.get(`${level}:${name}`) ?? 0);
    }
  } else if (level === IPPROTO_IPV6 && s.family === AF_INET6 && name === IPV6_V6ONLY) {
    out = int(s.v6only ? 1 : 0);
  } else if (level === IPPROTO_TCP || level === IPPROTO_IP || level === IPPROTO_IPV6 || level === IPPROTO_UDP) {
    if (level === IPPROTO_TCP && (s.family === AF_UNIX || !s.stream)) return -E.EOPNOTSUPP;
    out = int(s.opts.get(`${level}:${name}`) ?? 0);
  } else {
    return -E.ENOPROTOOPT;
  }
  const n = Math.min(room, out.length);
  if (!c.write(a.u(3), out.subarray(0, n))) return -E.EFAULT;
  const nb = new Uint8Array(4);
  new DataView(nb.buffer).setInt32(0, n, true);
  return c.write(lenPtr, nb) ? 0 : -E.EFAULT;
}

// ---- readiness ----

/** poll(2) event bits (include/uapi/asm-generic/poll.h). */
const POLLIN = 0x1, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10, POLLRDNORM = 0x40, POLLWRNORM = 0x100, POLLRDHUP = 0x2000;

/** The poll events currently true for socket `s` (net/ipv4/tcp.c tcp_poll, net/unix/af_unix.c unix_poll). */
export function socketReadiness(c: SysCtx, s: Socket): number {
  const ns = c.kernel.net;
  ns.pump();
  let ev = s.error !== 0 ? POLLERR : 0;
  if (s.state === 'listening') return ev | (s.backlog.length > 0 ? POLLIN | POLLRDNORM : 0);
  if (s.stream) {
    if (s.state !== 'connected') return ev | POLLOUT | POLLWRNORM | POLLHUP;
    if (s.rx.available > 0 || s.eof || s.rdShut) ev |= POLLIN | POLLRDNORM;
    if (s.eof) ev |= POLLRDHUP;
    if ((s.eof && s.wrShut) || s.peerGone) ev |= POLLHUP;
    if (ns.writable(s)) ev |= POLLOUT | POLLWRNORM;
    return ev;
  }
  if (s.dgrams.length > 0 || s.rdShut) ev |= POLLIN | POLLRDNORM;
  if (ns.dgramWritable(s)) ev |= POLLOUT | POLLWRNORM;
  return ev;
}

/** Socket syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const netSyscalls: SyscallDef[] = [
  { nr: 198, name: 'socket', fn: socket },
  { nr: 199, name: 'socketpair', fn: socketpair },
  { nr: 200, name: 'bind', fn: bind },
  { nr: 201, name: 'listen', fn: listen },
  { nr: 202, name: 'accept', fn: (c, a) => accept(c, a, 0) },
  { nr: 203, name: 'connect', fn: connect },
  { nr: 204, name: 'getsockname', fn: (c, a) => sockName(c, a, false) },
  { nr: 205, name: 'getpeername', fn: (c, a) => sockName(c, a, true) },
  { nr: 206, name: 'sendto', fn: sendto },
  { nr: 207, name: 'recvfrom', fn: recvfrom },
  { nr: 208, name: 'setsockopt', fn: setsockopt },
  { nr: 209, name: 'getsockopt', fn: getsockopt },
  { nr: 210, name: 'shutdown', fn: shutdown },
  { nr: 211, name: 'sendmsg', fn: sendmsg },
  { nr: 212, name: 'recvmsg', fn: recvmsg },
  { nr: 242, name: 'accept4', fn: (c, a) => accept(c, a, a.i32(3)) },
];
