/**
 * Host network backends for virtio-net, with QEMU's -netdev syntax:
 *
 *  - `socket,id=N,listen=HOST:PORT` / `socket,id=N,connect=HOST:PORT`: a TCP
 *    stream to another VMM (tsvm or QEMU);
 *  - `stream,id=N,server=on|off,addr.type=unix,addr.path=PATH` (or
 *    `addr.type=inet,addr.host=H,addr.port=P`): the same over a unix or
 *    TCP socket (QEMU 7.2's stream netdev);
 *  - `user,id=N[,hostfwd=tcp:HOSTADDR:HOSTPORT-:GUESTPORT]...`: user-mode
 *    networking through Debian's `passt` daemon, which gives the guest
 *    DHCP, DNS and NAT to the host's network; tsvm starts it in qemu mode
 *    on a private unix socket and stops it on exit.
 *
 * All three carry frames the way QEMU's stream netdevs do: each Ethernet
 * frame is preceded by its length as a 4-byte big-endian integer
 * (net/socket.c, net/stream.c; passt's qemu mode uses the same framing).
 *
 * A listening backend serves one peer at a time (frames are dropped while
 * none is connected); a connecting one retries until its peer is up.
 * Problems found after startup (address in use, peer gone) are reported
 * on stderr; the guest keeps running with its link unplugged.
 */
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { NetBackend } from '../devices/virtio/net-backend.js';
import { NET_MAX_FRAME } from '../devices/virtio/net.js';
import { OptsError, boolProp, type QemuOpts } from '../vmm/qemu-opts.js';

/** Bytes of the length prefix before each frame (QEMU's stream framing: a big-endian uint32). */
export const FRAME_PREFIX = 4;
/** Bytes buffered towards the peer before the device is told to stop transmitting. */
const TX_HIGH_WATER = 256 * 1024;
/** How often a connecting backend retries (at first, then after reporting the peer missing), and when it reports. */
const RETRY_MS = 100, RETRY_SLOW_MS = 1000, RETRY_REPORT_MS = 10_000;

/** A stream that does not follow the length-prefix framing. */
export class FramingError extends Error {}

/** Prefixes `frame` with its 4-byte big-endian length. */
export function encodeFrame(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_PREFIX + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length, false);
  out.set(frame, FRAME_PREFIX);
  return out;
}

/** Splits a byte stream into length-prefixed frames; can be paused between frames. */
export class FrameDecoder {
  /** While true, complete frames stay buffered until `drain()`. */
  paused = false;
  private buf: Uint8Array = new Uint8Array(0);
  private off = 0;
  private readonly emit: (frame: Uint8Array) => void;
  private readonly maxFrame: number;

  constructor(emit: (frame: Uint8Array) => void, maxFrame = NET_MAX_FRAME) {
    this.emit = emit;
    this.maxFrame = maxFrame;
  }

  /** Bytes held (partial or undelivered frames). */
  get buffered(): number { return this.buf.length - this.off; }

  /** Adds stream bytes and emits the complete frames; throws FramingError on an impossible length. */
  push(chunk: Uint8Array): void {
    if (this.off >= this.buf.length) { this.buf = chunk; this.off = 0; } else {
      const rest = this.buf.length - this.off, joined = new Uint8Array(rest + chunk.length);
      joined.set(this.buf.subarray(this.off), 0);
      joined.set(chunk, rest);
      this.buf = joined; this.off = 0;
    }
    this.drain();
  }

  /** Emits buffered complete frames until paused or out of data. */
  drain(): void {
    const b = this.buf;
    while (!this.paused && b.length - this.off >= FRAME_PREFIX) {
      const len = ((b[this.off]! << 24) | (b[this.off + 1]! << 16) | (b[this.off + 2]! << 8) | b[this.off + 3]!) >>> 0;
      if (len > this.maxFrame) throw new FramingError(`frame length ${len} exceeds ${this.maxFrame}`);
      if (b.length - this.off < FRAME_PREFIX + len) break;
      const frame = b.subarray(this.off + FRAME_PREFIX, this.off + FRAME_PREFIX + len);
      this.off += FRAME_PREFIX + len;
      if (len > 0) this.emit(frame);
    }
    if (this.off >= this.buf.length) { this.buf = new Uint8Array(0); this.off = 0; }
  }
}

/** Where a stream backend listens or connects. */
export type StreamAddr = { kind: 'inet'; host: string; port: number } | { kind: 'unix'; path: string };

function describe(a: StreamAddr): string { return a.kind === 'unix' ? a.path : `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`; }

/** Writes one line about a netdev on stderr (the guest console is on stdout). */
function report(label: string, msg: string): void { process.stderr.write(`tsvm: ${label}: ${msg}\n`); }

/** A NetBackend over one stream socket at a time, with QEMU's length-prefix framing. */
export class StreamNetBackend implements NetBackend {
  onReceive: (frame: Uint8Array) => void = () => {};
  onWritable: () => void = () => {};
  /** For messages: `-netdev ID`. */
  readonly label: string;
  /** Frames sent while no peer was connected (dropped). */
  txNoPeer = 0;
  /** Process id of the helper daemon behind this backend (passt), if any. */
  helperPid: number | null = null;
  private sock: net.Socket | null = null;
  private decoder: FrameDecoder | null = null;
  private paused = false;
  private congested = false;
  private corked = false;
  private closed = false;
  private readonly closers: (() => void)[] = [];
  private connectedWaiters: (() => void)[] = [];

  constructor(label: string) { this.label = label; }

  /** Whether a peer is connected. */
  get connected(): boolean { return this.sock !== null; }

  /** Resolves once a peer is connected. */
  waitConnected(): Promise<void> {
    if (this.sock) return Promise.resolve();
    return new Promise((resolve) => this.connectedWaiters.push(resolve));
  }

  /** Registers something to release on close (a server, a timer, a helper process). */
  onClose(f: () => void): void { if (this.closed) f(); else this.closers.push(f); }

  /** Makes `s` the connection to the peer; returns false if one is already connected or the backend is closed. */
  attach(s: net.Socket): boolean {
    if (this.closed || this.sock) return false;
    this.sock = s;
    s.setNoDelay(true);
    const dec = new FrameDecoder((f) => this.onReceive(f));
    dec.paused = this.paused;
    this.decoder = dec;
    s.on('data', (chunk: Buffer) => {
      if (this.sock !== s) return;
      try { dec.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)); } catch (e) {
        if (!(e instanceof FramingError)) throw e;
        report(this.label, `${e.message}: not a QEMU socket netdev peer; disconnecting`);
        s.destroy();
      }
    });
    s.on('drain', () => this.unblock());
    s.on('error', (e: NodeJS.ErrnoException) => { if (this.sock === s && !this.closed) report(this.label, `connection error: ${e.code ?? e.message}`); });
    s.on('close', () => { if (this.sock === s) this.detach(); });
    if (this.paused) s.pause();
    const w = this.connectedWaiters;
    this.connectedWaiters = [];
    for (const f of w) f();
    return true;
  }

  /** Forgets the current connection (the peer went away). */
  private detach(): void {
    this.sock = null;
    this.decoder = null;
    this.unblock();
    this.onDetach();
  }

  /** Called after the peer disconnects (listening backends accept the next one). */
  onDetach: () => void = () => {};

  private unblock(): void {
    if (!this.congested) return;
    this.congested = false;
    if (!this.closed) this.onWritable();
  }

  send(frame: Uint8Array): boolean {
    const s = this.sock;
    if (!s || s.destroyed || !s.writable) { this.txNoPeer++; return true; }
    if (!this.corked) {
      // Frames sent in one burst go out in one write.
      s.cork();
      this.corked = true;
      process.nextTick(() => { this.corked = false; s.uncork(); });
    }
    const prefix = new Uint8Array(FRAME_PREFIX);
    new DataView(prefix.buffer).setUint32(0, frame.length, false);
    s.write(prefix);
    s.write(frame);
    if (s.writableLength >= TX_HIGH_WATER) { this.congested = true; return false; }
    return true;
  }

  setReceivePaused(paused: boolean): void {
    if (this.paused === paused) return;
    this.paused = paused;
    const s = this.sock, dec = this.decoder;
    if (dec) dec.paused = paused;
    if (paused) { s?.pause(); return; }
    try { dec?.drain(); } catch (e) {
      if (!(e instanceof FramingError)) throw e;
      s?.destroy();
      return;
    }
    if (!this.paused) s?.resume();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const s = this.sock;
    this.sock = null;
    s?.destroy();
    for (const f of this.closers.splice(0)) f();
  }
}

/** Listens on `addr` and serves one peer at a time (like QEMU's listening socket netdev). */
export function listenStream(addr: StreamAddr, label: string): StreamNetBackend {
  const b = new StreamNetBackend(label);
  const server = net.createServer((s) => {
    if (!b.attach(s)) s.destroy(); // one peer at a time
  });
  server.on('error', (e: NodeJS.ErrnoException) => report(label, `cannot listen on ${describe(addr)}: ${e.code ?? e.message}`));
  if (addr.kind === 'unix') {
    // A socket file left by an earlier run would make bind fail; anything else is left alone (and bind reports it).
    try { if (fs.lstatSync(addr.path).isSocket()) fs.unlinkSync(addr.path); } catch { /* not there */ }
    server.listen(addr.path);
  } else {
    server.listen(addr.port, addr.host);
  }
  b.onClose(() => server.close());
  return b;
}

/** Connects to `addr`, retrying until the peer accepts (like QEMU's connecting socket netdev, but patient). */
export function connectStream(addr: StreamAddr, label: string, giveUp?: () => string | null): StreamNetBackend {
  const b = new StreamNetBackend(label);
  const started = Date.now();
  let reported = false, timer: NodeJS.Timeout | null = null, stopped = false;
  const attempt = (): void => {
    timer = null;
    if (stopped) return;
    const s = addr.kind === 'unix' ? net.connect(addr.path) : net.connect(addr.port, addr.host);
    const onError = (e: NodeJS.ErrnoException): void => {
      s.destroy();
      if (stopped) return;
      const why = giveUp?.();
      if (why) { report(label, why); return; }
      if (!reported && Date.now() - started >= RETRY_REPORT_MS) {
        reported = true;
        report(label, `cannot connect to ${describe(addr)} (${e.code ?? e.message}); still trying`);
      }
      timer = setTimeout(attempt, reported ? RETRY_SLOW_MS : RETRY_MS);
    };
    s.once('error', onError);
    s.once('connect', () => {
      s.off('error', onError);
      if (stopped || !b.attach(s)) { s.destroy(); return; }
      if (reported) report(label, `connected to ${describe(addr)}`);
    });
  };
  b.onDetach = () => { if (!stopped) report(label, `peer at ${describe(addr)} disconnected`); };
  b.onClose(() => { stopped = true; if (timer) clearTimeout(timer); });
  attempt();
  return b;
}

/** Parses `HOST:PORT` (HOST may be empty or [IPv6]); throws OptsError. */
export function parseHostPort(text: string, where: string, emptyHost: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new OptsError(`${where}: '${text}' is not HOST:PORT with a port from 1 to 65535`);
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? emptyHost : host, port };
}

function checkKeys(o: QemuOpts, allowed: string[], where: string, hint = ''): void {
  for (const k of o.props.keys()) {
    if (!allowed.includes(k)) throw new OptsError(`${where}: unsupported option '${k}' (supported: ${allowed.join(', ')})${hint}`);
  }
}

function openSocket(o: QemuOpts, label: string, where: string): NetBackend {
  checkKeys(o, ['id', 'listen', 'connect'], where, '; multicast and UDP sockets are not implemented');
  const listen = o.props.get('listen'), connect = o.props.get('connect');
  if ((listen === undefined) === (connect === undefined)) throw new OptsError(`${where}: give exactly one of listen=HOST:PORT or connect=HOST:PORT`);
  if (listen !== undefined) return listenStream({ kind: 'inet', ...parseHostPort(listen, where, '0.0.0.0') }, label);
  return connectStream({ kind: 'inet', ...parseHostPort(connect!, where, '127.0.0.1') }, label);
}

function openStream(o: QemuOpts, label: string, where: string): NetBackend {
  const server = boolProp(o, 'server', false);
  const type = o.props.get('addr.type');
  let addr: StreamAddr;
  if (type === 'unix') {
    checkKeys(o, ['id', 'server', 'addr.type', 'addr.path'], where);
    const p = o.props.get('addr.path');
    if (!p) throw new OptsError(`${where}: addr.type=unix needs addr.path=PATH`);
    addr = { kind: 'unix', path: p };
  } else if (type === 'inet') {
    checkKeys(o, ['id', 'server', 'addr.type', 'addr.host', 'addr.port'], where);
    const host = o.props.get('addr.host') ?? '', port = o.props.get('addr.port');
    if (port === undefined) throw new OptsError(`${where}: addr.type=inet needs addr.host=HOST,addr.port=PORT`);
    addr = { kind: 'inet', ...parseHostPort(`${host.includes(':') ? `[${host}]` : host}:${port}`, where, server ? '0.0.0.0' : '127.0.0.1') };
  } else {
    throw new OptsError(`${where}: needs addr.type=unix or addr.type=inet`);
  }
  return server ? listenStream(addr, label) : connectStream(addr, label);
}

/** Finds an executable on $PATH (and the sbin directories); null if absent. */
function findProgram(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/sbin', '/bin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); if (fs.statSync(p).isFile()) return p; } catch { /* next */ }
  }
  return null;
}

/** uid:gid of the `nobody` account (passt refuses to keep root and switches to it). */
function nobodyIds(): { uid: number; gid: number } {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === 'nobody' && f[2] && f[3]) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch { /* fall through */ }
  return { uid: 65534, gid: 65534 }; // Debian's nobody/nogroup (base-passwd)
}

/**
 * Turns QEMU's `hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` into
 * passt's `-t`/`-u` argument (`[ADDR/]PORT:GUESTPORT`). passt forwards to the
 * address it assigned the guest, so GUESTADDR is not used.
 */
export function hostfwdToPasst(rule: string, where: string): string[] {
  const m = /^(tcp|udp|):([^:]*):(\d+)-([^:]*):(\d+)$/.exec(rule);
  const hp = m ? Number(m[3]) : NaN, gp = m ? Number(m[5]) : NaN;
  if (!m || !(hp >= 1 && hp <= 65535) || !(gp >= 1 && gp <= 65535)) {
    throw new OptsError(`${where}: hostfwd=${rule} is not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`);
  }
  if (m[2] && net.isIP(m[2]) === 0) throw new OptsError(`${where}: hostfwd host address '${m[2]}' is not an IP address`);
  return [m[1] === 'udp' ? '--udp-ports' : '--tcp-ports', `${m[2] ? `${m[2]}/` : ''}${hp}:${gp}`];
}

function openUser(o: QemuOpts, label: string, where: string): NetBackend {
  checkKeys(o, ['id', 'hostfwd', 'ipv4', 'ipv6'], where, '; the network is provided by passt, which gives the guest the host\'s addresses');
  const args = ['--foreground', '--one-off', '--quiet'];
  for (const fwd of o.repeats.get('hostfwd') ?? []) args.push(...hostfwdToPasst(fwd, where));
  const v4 = boolProp(o, 'ipv4', true), v6 = boolProp(o, 'ipv6', true);
  if (!v4 && !v6) throw new OptsError(`${where}: ipv4=off and ipv6=off leave no network`);
  if (!v6) args.push('--ipv4-only');
  if (!v4) args.push('--ipv6-only');
  const passt = findProgram('passt');
  if (!passt) throw new OptsError(`${where}: user networking needs passt (Debian: apt-get install passt)`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-passt-'));
  const sockPath = path.join(dir, 'passt.socket');
  if (process.getuid?.() === 0) {
    // passt drops root for `nobody`, so the socket directory must be that user's.
    const { uid, gid } = nobodyIds();
    fs.chownSync(dir, uid, gid);
    args.push('--runas', `${uid}:${gid}`);
  }
  args.push('--socket', sockPath);
  let child: ChildProcess | null = spawn(passt, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let errText = '', exited: string | null = null;
  child.stderr?.on('data', (d: Buffer) => { errText = (errText + d.toString()).slice(-4000); });
  child.on('error', (e) => { exited = `cannot start passt: ${e.message}`; });
  child.on('exit', (code, sig) => {
    child = null;
    const lines = errText.split('\n').filter((l) => l.trim() && !/syslog/.test(l));
    exited = `passt exited (${sig ?? `status ${code}`})${lines.length ? `: ${lines.slice(-3).join(' / ')}` : ''}`;
  });
  const kill = (): void => { child?.kill('SIGTERM'); };
  process.once('exit', kill);
  const b = connectStream({ kind: 'unix', path: sockPath }, label, () => exited);
  b.helperPid = child.pid ?? null;
  b.onDetach = () => report(label, exited ?? 'passt closed the connection');
  b.onClose(() => {
    kill();
    process.off('exit', kill);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return b;
}

/** Opens a -netdev of type socket, stream or user; throws OptsError for bad options. */
export function openNetdev(o: QemuOpts): NetBackend {
  const id = o.props.get('id') ?? '';
  const where = `-netdev ${o.text}`, label = `-netdev ${id}`;
  switch (o.type) {
    case 'socket': return openSocket(o, label, where);
    case 'stream': return openStream(o, label, where);
    case 'user': return openUser(o, label, where);
    default: throw new OptsError(`${where}: unsupported netdev type '${o.type}' (supported: socket, stream, user)`);
  }
}
