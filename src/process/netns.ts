/**
 * The network namespace of one process VM (one container): AF_UNIX
 * sockets and AF_INET/AF_INET6 TCP and UDP over a loopback interface only.
 *
 * No packets: a stream connection is a pair of sockets, each with a byte
 * queue (fd-table.ts's Pipe) its peer writes into; a datagram is queued
 * whole on the receiving socket. The only interface is `lo` with
 * 127.0.0.0/8 and ::1 (and INADDR_ANY / :: meaning "this host", as on
 * Linux); any other destination is unreachable (ENETUNREACH).
 *
 * Published ports (`tsvm exec --publish`): a PortBridge, injected by the
 * host, reports connections accepted on the host; each becomes a
 * connection into the namespace's TCP listener on that port, as if from a
 * loopback peer, and `pump()` moves bytes both ways with back-pressure and
 * half-close.
 *
 * A container network (`tsvm network create`, Docker's user-defined
 * bridge): the bridge may also give the namespace an IPv4 address on the
 * network (`address`), which is then local too (bind, getsockname), and
 * reach other containers' addresses: a TCP connect() to an address the
 * bridge `reaches` is dialled through the host (`dial`) and, once the
 * other namespace has a listener for it, becomes a connection whose bytes
 * `pump()` moves like a published port's. Incoming network connections
 * arrive as bridge 'open' events with the dialler's address (`from`) and
 * go to a listener on the namespace's address or on INADDR_ANY, never to
 * one bound to loopback only: loopback stays private. UDP stays inside the
 * namespace. Nothing else reaches the host.
 *
 * Syscall decoding is in sys-net.ts; this file keeps the state.
 */
import { Pipe } from './fd-table.js';
import type { OpenFile } from './fd-table.js';
import { E } from './sys-abi.js';

/** Address families (include/linux/socket.h). */
export const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
/** Socket types (include/linux/net.h). */
export const SOCK_STREAM = 1, SOCK_DGRAM = 2;
/** Socket receive buffer for stream connections (net.core.rmem_default, Documentation/networking/ip-sysctl.rst). */
export const SOCK_BUFFER = 212992;
/** Ephemeral port range (net.ipv4.ip_local_port_range default, Documentation/networking/ip-sysctl.rst). */
const EPHEMERAL_LO = 32768, EPHEMERAL_HI = 60999;
/** Largest listen backlog (net.core.somaxconn default, Documentation/networking/ip-sysctl.rst). */
export const SOMAXCONN = 4096;
/** Largest UDP payload (RFC 768: 65535 minus the 8-byte UDP and 20-byte IPv4 headers). */
const UDP_MAX = 65507;

/** A socket address: an IP address and port, or an AF_UNIX name. */
export interface SockAddr {
  family: number;
  /** 4 (AF_INET) or 16 (AF_INET6) bytes. */
  ip: Uint8Array;
  port: number;
  /** AF_UNIX: sun_path as reported by getsockname (a path with its NUL, or an abstract name); empty: unnamed. */
  unix: Uint8Array;
  /** AF_UNIX: the namespace key of the name ('' unnamed). */
  key: string;
}

/** A queued datagram. */
interface Datagram { data: Uint8Array; from: SockAddr | null; files: OpenFile[] }

/** A new AF_INET/AF_INET6 address. */
export function inetAddr(family: number, ip: Uint8Array, port: number): SockAddr {
  return { family, ip, port, unix: new Uint8Array(0), key: '' };
}

/** The unspecified address of `family` with port 0. */
export function anyAddr(family: number): SockAddr {
  return inetAddr(family, new Uint8Array(family === AF_INET6 ? 16 : 4), 0);
}

const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);
/** True for ::ffff:a.b.c.d (RFC 4291 section 2.5.5.2). */
const isMapped = (b: Uint8Array): boolean => b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

/** The IPv4 address `a` stands for (mapped IPv6 included), or null. */
function v4Of(a: SockAddr): Uint8Array | null {
  if (a.ip.length === 4) return a.ip;
  return isMapped(a.ip) ? a.ip.subarray(12) : null;
}

/** True if `a` is an address of this namespace: loopback (127/8, ::1) or unspecified. */
export function isLocal(a: SockAddr): boolean {
  const v4 = v4Of(a);
  if (v4 !== null) return v4[0] === 127 || isZero(v4);
  return isZero(a.ip) || (a.ip.subarray(0, 15).every((x) => x === 0) && a.ip[15] === 1);
}

/** A socket of the namespace. */
export class Socket {
  /** 'new', bound ('bound'), 'listening', or 'connected'. */
  state: 'new' | 'bound' | 'listening' | 'connected' = 'new';
  local: SockAddr | null = null;
  remote: SockAddr | null = null;
  /** Stream: bytes the peer wrote, not yet read. */
  readonly rx = new Pipe();
  /** Stream: SCM_RIGHTS files, each with the rx byte count at which it was sent. */
  rxFiles: Array<{ at: number; files: OpenFile[] }> = [];
  /** Bytes taken from rx so far (positions rxFiles). */
  rxTaken = 0;
  /** Bytes ever written into rx. */
  rxPut = 0;
  /** Datagram: the receive queue and its size in bytes. */
  dgrams: Datagram[] = [];
  dgramBytes = 0;
  /** The connected peer (stream), or the peer a datagram socket is connected to. */
  peer: Socket | null = null;
  /** Listening: connections waiting for accept. */
  backlog: Socket[] = [];
  backlogMax = 0;
  /** The peer will write no more (it shut down writing or closed). */
  eof = false;
  /** The peer is closed: writes fail with EPIPE. */
  peerGone = false;
  /** Local shutdowns. */
  rdShut = false;
  wrShut = false;
  /** Pending error for SO_ERROR and the next call (ECONNREFUSED, ECONNRESET). */
  error = 0;
  reuseAddr = false;
  v6only = false;
  /** Other integer options set with setsockopt (level:name). */
  readonly opts = new Map<string, number>();
  /** True once every fd of it is closed. */
  closed = false;
  /** Set for the namespace side of a published-port connection: the host connection id. */
  bridgeConn = -1;
  /** The pid that created it (for an accepted socket: the listener's), reported to its peer by SO_PEERCRED. */
  pid = 0;

  constructor(readonly family: number, readonly type: number, readonly protocol: number) {}

  /** True for stream sockets. */
  get stream(): boolean { return this.type !== SOCK_DGRAM; }

  /** Stream: takes up to n bytes and any files sent with them. */
  take(n: number, peek: boolean): { data: Uint8Array; files: OpenFile[] } {
    let k = Math.min(n, this.rx.available);
    // Files ride with the first byte sent after them (net/unix/af_unix.c: a read stops at a message with rights).
    const next = this.rxFiles[0];
    if (next !== undefined && next.at > this.rxTaken && next.at < this.rxTaken + k) k = next.at - this.rxTaken;
    if (peek) {
      const all = this.rx.read(this.rx.available), data = all.slice(0, k);
      this.rx.write(all);
      return { data, files: [] };
    }
    const files: OpenFile[] = [];
    if (next !== undefined && next.at === this.rxTaken && k > 0) { this.rxFiles.shift(); files.push(...next.files); }
    const data = this.rx.read(k);
    this.rxTaken += data.length;
    return { data, files };
  }
}

/** An event of the host side of published ports. */
export type BridgeEvent =
  | { t: 'open'; conn: number; port: number; from?: { ip: Uint8Array; port: number } }
  | { t: 'data'; conn: number; data: Uint8Array }
  | { t: 'end'; conn: number }
  | { t: 'close'; conn: number }
  | { t: 'full'; conn: number; full: boolean };

/** The host side of published ports (injected: src/host/port-publisher.ts). */
export interface PortBridge {
  /** Events that arrived since the last call, without waiting. */
  poll(): BridgeEvent[];
  /** Blocks the thread up to `ms` milliseconds or until an event arrives. */
  wait(ms: number): void;
  /** Sends bytes to host connection `conn`. */
  send(conn: number, data: Uint8Array): void;
  /** Half-closes `conn` towards the host (FIN). */
  end(conn: number): void;
  /** Closes `conn` at once (no listener in the namespace: the host client sees the connection closed). */
  close(conn: number): void;
  /** Stops (true) or resumes reading from host connection `conn` (back-pressure). */
  pause(conn: number, on: boolean): void;
  /** A container network: this namespace's IPv4 address on it (4 bytes); absent: loopback only. */
  readonly address?: Uint8Array;
  /** A container network: true if IPv4 address `ip` (4 bytes) is another member's, reached through `dial`. */
  reaches?(ip: Uint8Array): boolean;
  /**
   * A container network: connects to `ip`:`port` of another member from
   * `from` (blocking until it accepts or refuses); the connection id, or
   * -errno (ECONNREFUSED without a listener, ETIMEDOUT, EHOSTUNREACH).
   */
  dial?(ip: Uint8Array, port: number, from: { ip: Uint8Array; port: number }): number;
  /** A container network: a connection that arrived with 'open' found its listener (the dialler's connect() returns 0). */
  accepted?(conn: number): void;
}

/** Bytes queued towards the guest before the host connection is paused, and the level it resumes at. */
const BRIDGE_HIGH = SOCK_BUFFER, BRIDGE_LOW = SOCK_BUFFER / 4;

interface BridgeConn { conn: number; proxy: Socket; inner: Socket; paused: boolean; hostFull: boolean; ended: boolean }

/** One network namespace: the sockets' names and ports. */
export class NetNamespace {
  /** Bound AF_UNIX sockets by name key. */
  private readonly unixNames = new Map<string, Socket>();
  /** Bound TCP (key 'tcp:PORT') and UDP ('udp:PORT') sockets. */
  private readonly ports = new Map<string, Socket[]>();
  private nextEphemeral = EPHEMERAL_LO;
  private nextAutobind = 0;
  private bridge: PortBridge | null = null;
  private readonly conns = new Map<number, BridgeConn>();

  /** True if a host bridge can deliver connections (blocked socket calls then wait for it). */
  get external(): boolean { return this.bridge !== null; }

  /** Attaches the host side of published ports. */
  attachBridge(b: PortBridge): void { this.bridge = b; }

  /** True if `a` is an address of this namespace: loopback, unspecified, or its address on a container network. */
  private isOwn(a: SockAddr): boolean {
    if (isLocal(a)) return true;
    const own = this.bridge?.address, v4 = v4Of(a);
    return own !== undefined && v4 !== null && v4.every((x, i) => x === own[i]);
  }

  /** Blocks the host thread up to `ms` for the bridge (no bridge: returns at once). */
  waitExternal(ms: number): void {
    this.bridge?.wait(ms);
    this.pump();
  }

  // ---- names and ports ----

  private portKey(s: Socket, port: number): string {
    return `${s.type === SOCK_DGRAM ? 'udp' : 'tcp'}:${port}`;
  }

  /** True if addresses `a` (of socket s) and `b` (of t) may both take the same port. */
  private overlaps(s: Socket, a: SockAddr, t: Socket, b: SockAddr): boolean {
    const av4 = v4Of(a), bv4 = v4Of(b);
    const aAny = isZero(a.ip), bAny = isZero(b.ip);
    // A v6 socket on :: without IPV6_V6ONLY takes the IPv4 port too (ipv6(7)).
    const aCovers4 = a.ip.length === 4 || (aAny && !s.v6only) || isMapped(a.ip);
    const bCovers4 = b.ip.length === 4 || (bAny && !t.v6only) || isMapped(b.ip);
    const aCovers6 = a.ip.length === 16 && !isMapped(a.ip), bCovers6 = b.ip.length === 16 && !isMapped(b.ip);
    if (aCovers4 && bCovers4) {
      if (aAny || bAny || av4 === null || bv4 === null) return true;
      return av4.every((x, i) => x === bv4[i]);
    }
    if (aCovers6 && bCovers6) return aAny || bAny || a.ip.every((x, i) => x === b.ip[i]);
    return false;
  }

  /** Binds `s` to `a` (port 0: an ephemeral one); 0 or -errno. */
  bindInet(s: Socket, a: SockAddr): number {
    if (s.local !== null) return -E.EINVAL;
    if (!this.isOwn(a)) return -E.EADDRNOTAVAIL;
    let port = a.port;
    if (port === 0) {
      const free = this.ephemeral(s, a);
      if (free < 0) return free;
      port = free;
    } else {
      const others = this.ports.get(this.portKey(s, port)) ?? [];
      for (const t of others) {
        if (!this.overlaps(s, a, t, t.local!)) continue;
        if (s.reuseAddr && t.reuseAddr && t.state !== 'listening') continue;
        return -E.EADDRINUSE;
      }
    }
    s.local = { ...a, port };
    const key = this.portKey(s, port);
    this.ports.set(key, [...(this.ports.get(key) ?? []), s]);
    if (s.state === 'new') s.state = 'bound';
    return 0;
  }

  private ephemeral(s: Socket, a: SockAddr): number {
    for (let i = 0; i <= EPHEMERAL_HI - EPHEMERAL_LO; i++) {
      const p = this.nextEphemeral;
      this.nextEphemeral = p >= EPHEMERAL_HI ? EPHEMERAL_LO : p + 1;
      const others = this.ports.get(this.portKey(s, p)) ?? [];
      if (!others.some((t) => this.overlaps(s, a, t, t.local!))) return p;
    }
    return -E.EADDRNOTAVAIL;
  }

  /** Binds an unbound inet socket to an ephemeral port on the unspecified address (connect, sendto, listen). */
  autobindInet(s: Socket): number {
    return s.local !== null ? 0 : this.bindInet(s, anyAddr(s.family));
  }

  /** Binds `s` to AF_UNIX name `a`; 0 or -errno. The caller created the filesystem node for a path name. */
  bindUnix(s: Socket, a: SockAddr): number {
    if (s.local !== null && s.local.key !== '') return -E.EINVAL;
    if (this.unixNames.has(a.key)) return -E.EADDRINUSE;
    this.unixNames.set(a.key, s);
    s.local = a;
    if (s.state === 'new') s.state = 'bound';
    return 0;
  }

  /** Gives `s` an abstract name of five hex digits (unix(7) "Autobind feature"). */
  autobindUnix(s: Socket): number {
    for (let i = 0; i < 0x100000; i++) {
      const name = '\0' + (this.nextAutobind++ & 0xfffff).toString(16).padStart(5, '0');
      const key = 'a:' + name;
      if (this.unixNames.has(key)) continue;
      return this.bindUnix(s, { family: AF_UNIX, ip: new Uint8Array(0), port: 0, unix: new TextEncoder().encode(name), key });
    }
    return -E.EADDRINUSE;
  }

  /** The socket bound to AF_UNIX name key `key`. */
  unixByName(key: string): Socket | undefined { return this.unixNames.get(key); }

  /** The socket of type `type` that takes traffic to `a` (listening for streams). */
  private lookupInet(type: number, a: SockAddr): Socket | undefined {
    const key = `${type === SOCK_DGRAM ? 'udp' : 'tcp'}:${a.port}`;
    let best: Socket | undefined;
    const av4 = v4Of(a);
    for (const t of this.ports.get(key) ?? []) {
      if (type !== SOCK_DGRAM && t.state !== 'listening') continue;
      const l = t.local!, lv4 = v4Of(l), any = isZero(l.ip);
      let match: boolean;
      if (av4 !== null || isZero(a.ip)) {
        const want = av4 ?? new Uint8Array([127, 0, 0, 1]);
        match = l.ip.length === 4 || isMapped(l.ip) ? (any || lv4!.every((x, i) => x === want[i])) : any && !t.v6only;
      } else {
        match = l.ip.length === 16 && !isMapped(l.ip) && (any || l.ip.every((x, i) => x === a.ip[i]));
      }
      if (match && (best === undefined || !any)) best = t;
    }
    return best;
  }

  // ---- connections ----

  /** Stream connect of `s` to listener `l`; 0 or -errno. */
  private link(s: Socket, l: Socket, to: SockAddr): number {
    if (l.backlog.length > l.backlogMax && s.family === AF_UNIX) return -E.EAGAIN;
    const inner = new Socket(l.family, l.type, l.protocol);
    inner.state = 'connected';
    inner.pid = l.pid;
    inner.local = s.family === AF_UNIX ? l.local : this.asFamily(l.family, isZero(l.local!.ip) ? to : l.local!, l.local!.port);
    inner.remote = s.family === AF_UNIX ? s.local : this.asFamily(l.family, s.local!, s.local!.port);
    s.remote = s.family === AF_UNIX ? l.local : to;
    inner.peer = s; s.peer = inner;
    s.state = 'connected';
    l.backlog.push(inner);
    return 0;
  }

  /** `a` expressed in `family` (an IPv4 address as ::ffff:a.b.c.d for IPv6 sockets). */
  private asFamily(family: number, a: SockAddr, port: number): SockAddr {
    if (family === AF_INET6 && a.ip.length === 4) {
      const ip = new Uint8Array(16); ip[10] = 0xff; ip[11] = 0xff; ip.set(a.ip, 12);
      return inetAddr(AF_INET6, ip, port);
    }
    if (family === AF_INET && a.ip.length === 16) return inetAddr(AF_INET, v4Of(a) ?? new Uint8Array([127, 0, 0, 1]), port);
    return { ...a, port };
  }

  /** connect(2) of an inet stream socket; 0 or -errno. */
  connectInet(s: Socket, to: SockAddr): number {
    if (!this.isOwn(to)) return this.connectNetwork(s, to);
    if (s.type === SOCK_DGRAM) {
      const r = this.autobindInet(s);
      if (r < 0) return r;
      s.remote = to;
      s.state = 'connected';
      return 0;
    }
    if (s.state === 'connected') return -E.EISCONN;
    if (s.state === 'listening') return -E.EINVAL;
    const l = this.lookupInet(s.type, to);
    if (l === undefined) return -E.ECONNREFUSED;
    const r = this.autobindInet(s);
    if (r < 0) return r;
    // The peer address of a connection to INADDR_ANY is loopback.
    const dst = isZero(to.ip) ? (to.ip.length === 4 ? inetAddr(AF_INET, new Uint8Array([127, 0, 0, 1]), to.port) : inetAddr(AF_INET6, Uint8Array.of(...new Array<number>(15).fill(0), 1), to.port)) : to;
    if (isZero(s.local!.ip)) s.local = { ...this.asFamily(s.family, dst, 0), port: s.local!.port };
    return this.link(s, l, dst);
  }

  /** connect(2) of an AF_UNIX socket to the socket bound at `key`; 0 or -errno. */
  connectUnix(s: Socket, target: Socket | undefined): number {
    if (target === undefined || target.closed) return -E.ECONNREFUSED;
    if (target.type !== s.type) return -E.EPROTOTYPE;
    if (s.type === SOCK_DGRAM) { s.peer = target; s.remote = target.local; s.state = 'connected'; return 0; }
    if (s.state === 'connected') return -E.EISCONN;
    if (target.state !== 'listening') return -E.ECONNREFUSED;
    return this.link(s, target, target.local!);
  }

  /** listen(2). */
  listen(s: Socket, backlog: number): number {
    if (!s.stream) return -E.EOPNOTSUPP;
    if (s.state === 'connected') return -E.EINVAL;
    if (s.family !== AF_UNIX) {
      const r = this.autobindInet(s);
      if (r < 0) return r;
    } else if (s.local === null || s.local.key === '') {
      const r = this.autobindUnix(s);
      if (r < 0) return r;
    }
    s.state = 'listening';
    s.backlogMax = Math.max(0, Math.min(backlog < 0 ? SOMAXCONN : backlog, SOMAXCONN));
    return 0;
  }

  /** A pair of connected sockets (socketpair). */
  pair(type: number, protocol: number): [Socket, Socket] {
    const a = new Socket(AF_UNIX, type, protocol), b = new Socket(AF_UNIX, type, protocol);
    a.peer = b; b.peer = a;
    a.state = b.state = 'connected';
    const unnamed: SockAddr = { family: AF_UNIX, ip: new Uint8Array(0), port: 0, unix: new Uint8Array(0), key: '' };
    a.local = b.local = a.remote = b.remote = unnamed;
    return [a, b];
  }

  // ---- data ----

  /** Stream write: bytes accepted (0: the peer's queue is full), or -errno. */
  streamWrite(s: Socket, data: Uint8Array, files: OpenFile[], grow: boolean): number {
    if (s.error !== 0) { const e = s.error; s.error = 0; return -e; }
    if (s.wrShut || s.peerGone) return -E.EPIPE;
    const p = s.peer;
    if (p === null || s.state !== 'connected') return -E.ENOTCONN;
    const room = grow ? data.length : Math.max(0, SOCK_BUFFER - p.rx.available);
    const n = Math.min(room, data.length);
    if (n === 0) return 0;
    if (files.length > 0) { for (const f of files) f.refs++; p.rxFiles.push({ at: p.rxPut, files }); }
    p.rx.write(data.subarray(0, n));
    p.rxPut += n;
    return n;
  }

  /** True if a stream write would not block. */
  writable(s: Socket): boolean {
    return s.wrShut || s.peerGone || s.error !== 0 || s.peer === null || s.peer.rx.available < SOCK_BUFFER;
  }

  /** Datagram send to `to` (null: the connected peer). Bytes sent, 0 when the receiver is full, or -errno. */
  dgramSend(s: Socket, data: Uint8Array, to: SockAddr | null, toUnix: Socket | undefined, files: OpenFile[]): number {
    if (s.error !== 0) { const e = s.error; s.error = 0; return -e; }
    if (s.wrShut) return -E.EPIPE;
    let target: Socket | undefined;
    if (s.family === AF_UNIX) {
      target = to === null ? s.peer ?? undefined : toUnix;
      if (to === null && s.peer === null) return -E.ENOTCONN;
      if (target === undefined || target.closed) return -E.ECONNREFUSED;
      if (target.type !== s.type) return -E.EPROTOTYPE;
      if (target.peer !== null && target.peer !== s) return -E.EPERM; // connected elsewhere (unix(7))
    } else {
      const dst = to ?? s.remote;
      if (dst === null) return -E.EDESTADDRREQ;
      if (!this.isOwn(dst)) return -E.ENETUNREACH; // no UDP between containers
      if (data.length > UDP_MAX) return -E.EMSGSIZE;
      const r = this.autobindInet(s);
      if (r < 0) return r;
      target = this.lookupInet(SOCK_DGRAM, dst);
      if (target === undefined) {
        // Loopback answers with ICMP port unreachable: a connected socket reports it on its next call (udp(7)).
        if (to === null) s.error = E.ECONNREFUSED;
        return data.length;
      }
      if (target.remote !== null && !this.sameAddr(target.remote, this.asFamily(target.family, s.local!, s.local!.port))) return data.length;
    }
    if (target.rdShut) return data.length;
    if (target.dgramBytes + data.length > SOCK_BUFFER && target.dgrams.length > 0) return 0;
    for (const f of files) f.refs++;
    const from = s.family === AF_UNIX ? s.local : this.asFamily(target.family, s.local!, s.local!.port);
    target.dgrams.push({ data: data.slice(), from, files });
    target.dgramBytes += data.length;
    return data.length;
  }

  private sameAddr(a: SockAddr, b: SockAddr): boolean {
    return a.port === b.port && a.ip.length === b.ip.length && a.ip.every((x, i) => x === b.ip[i]);
  }

  /** True if a datagram send to the socket's peer would not block. */
  dgramWritable(s: Socket): boolean {
    const t = s.family === AF_UNIX ? s.peer : null;
    return t === null || t.closed || t.dgramBytes < SOCK_BUFFER;
  }

  /** Takes (or peeks at) the next datagram. */
  dgramTake(s: Socket, peek: boolean): Datagram | undefined {
    const d = s.dgrams[0];
    if (d === undefined || peek) return d;
    s.dgrams.shift();
    s.dgramBytes -= d.data.length;
    return d;
  }

  /** shutdown(2) with SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2). */
  shutdown(s: Socket, how: number): number {
    if (s.state !== 'connected' && !(s.state === 'listening' && s.family === AF_UNIX)) return -E.ENOTCONN;
    if (how === 0 || how === 2) s.rdShut = true;
    if (how === 1 || how === 2) {
      s.wrShut = true;
      if (s.stream && s.peer !== null) s.peer.eof = true;
    }
    return 0;
  }

  /** The last fd of `s` closed: frees its name, ends its connection, refuses what waits in its backlog. */
  close(s: Socket, unlinked: (f: OpenFile) => void): void {
    if (s.closed) return;
    s.closed = true;
    if (s.local !== null) {
      if (s.family === AF_UNIX) { if (s.local.key !== '' && this.unixNames.get(s.local.key) === s) this.unixNames.delete(s.local.key); } else {
        const key = this.portKey(s, s.local.port), list = (this.ports.get(key) ?? []).filter((t) => t !== s);
        if (list.length > 0) this.ports.set(key, list); else this.ports.delete(key);
      }
    }
    for (const pending of s.backlog) {
      if (pending.peer !== null) { pending.peer.eof = true; pending.peer.peerGone = true; pending.peer.error = E.ECONNRESET; }
      this.close(pending, unlinked);
    }
    s.backlog = [];
    const p = s.peer;
    if (p !== null && s.stream) {
      p.eof = true; p.peerGone = true;
      p.peer = null;
    }
    s.peer = null;
    for (const r of s.rxFiles) for (const f of r.files) unlinked(f);
    for (const d of s.dgrams) for (const f of d.files) unlinked(f);
    s.rxFiles = []; s.dgrams = [];
  }

  // ---- published ports ----

  /** Moves events and bytes between the host bridge and the namespace. Cheap without a bridge. */
  pump(): void {
    const b = this.bridge;
    if (b === null) return;
    for (const ev of b.poll()) {
      if (ev.t === 'open') { this.bridgeOpen(b, ev.conn, ev.port, ev.from); continue; }
      const c = this.conns.get(ev.conn);
      if (c === undefined) continue;
      switch (ev.t) {
        case 'data':
          if (!c.proxy.closed && !c.proxy.wrShut && !c.inner.closed && !c.inner.rdShut) {
            c.inner.rx.write(ev.data); c.inner.rxPut += ev.data.length;
          }
          break;
        case 'end': c.proxy.wrShut = true; c.inner.eof = true; break;
        case 'close':
          c.proxy.wrShut = true; c.inner.eof = true; c.inner.peerGone = true; c.hostFull = false;
          this.close(c.proxy, () => undefined);
          this.conns.delete(ev.conn);
          break;
        case 'full': c.hostFull = ev.full; break;
      }
    }
    for (const c of this.conns.values()) {
      if (!c.hostFull && c.proxy.rx.available > 0) {
        b.send(c.conn, c.proxy.take(c.proxy.rx.available, false).data);
      }
      const queued = c.inner.rx.available;
      if (!c.paused && queued > BRIDGE_HIGH) { c.paused = true; b.pause(c.conn, true); }
      else if (c.paused && queued < BRIDGE_LOW) { c.paused = false; b.pause(c.conn, false); }
      if (!c.ended && c.proxy.eof && c.proxy.rx.available === 0) { c.ended = true; b.end(c.conn); }
      if (c.ended && c.inner.closed) { this.close(c.proxy, () => undefined); this.conns.delete(c.conn); }
    }
  }

  private bridgeOpen(b: PortBridge, conn: number, port: number, from?: { ip: Uint8Array; port: number }): void {
    const proxy = new Socket(AF_INET, SOCK_STREAM, 0);
    // A published port arrives on loopback; a network connection on the namespace's network address.
    const own = from !== undefined ? b.address : undefined;
    const to = inetAddr(AF_INET, own ?? new Uint8Array([127, 0, 0, 1]), port);
    const l = this.lookupInet(SOCK_STREAM, to);
    if (l === undefined || l.backlog.length > l.backlogMax) { b.close(conn); return; }
    // The proxy stands for the remote end: the dialler's address, or (published port) an ephemeral loopback port.
    if (from !== undefined) proxy.local = inetAddr(AF_INET, from.ip, from.port);
    else if (this.autobindInet(proxy) < 0) { b.close(conn); return; } else proxy.local = { ...to, port: proxy.local!.port };
    this.link(proxy, l, to);
    const inner = proxy.peer!;
    inner.bridgeConn = conn;
    this.conns.set(conn, { conn, proxy, inner, paused: false, hostFull: false, ended: false });
    if (from !== undefined) b.accepted?.(conn);
  }

  /** connect(2) of a stream socket to another container's address on the network (see the file comment); 0 or -errno. */
  private connectNetwork(s: Socket, to: SockAddr): number {
    const b = this.bridge, ip = v4Of(to), own = b?.address;
    if (b === null || own === undefined || ip === null || b.reaches?.(ip) !== true || b.dial === undefined) return -E.ENETUNREACH;
    if (s.type === SOCK_DGRAM) return -E.ENETUNREACH; // no UDP between containers
    if (s.state === 'connected') return -E.EISCONN;
    if (s.state === 'listening') return -E.EINVAL;
    const r = s.local !== null ? 0 : this.bindInet(s, inetAddr(s.family, s.family === AF_INET6 ? this.asFamily(AF_INET6, inetAddr(AF_INET, own, 0), 0).ip : own, 0));
    if (r < 0) return r;
    const conn = b.dial(ip, to.port, { ip: own, port: s.local!.port });
    if (conn < 0) return conn;
    // The proxy is the remote end of the connection, in this namespace: its bytes go to the host connection.
    const proxy = new Socket(s.family, SOCK_STREAM, 0);
    proxy.state = 'connected';
    proxy.local = to;
    proxy.remote = s.local;
    proxy.peer = s; s.peer = proxy;
    s.remote = to;
    s.state = 'connected';
    this.conns.set(conn, { conn, proxy, inner: s, paused: false, hostFull: false, ended: false });
    return 0;
  }
}

/** An OpenFile's socket, for sys-net.ts and readiness. */
export const socketOf = (f: OpenFile): Socket | null => f.socket;
