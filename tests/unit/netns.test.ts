/**
 * Unit tests of the process VM's network namespace (src/process/netns.ts,
 * sys-net.ts) through the syscall layer: TCP and UDP over loopback only,
 * IPv6 and v4-mapped peers, AF_UNIX path names, readiness, and the
 * published-port bridge (driven here by a scripted PortBridge; the real
 * Node one is exercised by tests/workloads/exec-publish.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Harness, NR, tempDir } from './syscall-harness.js';
import type { BridgeEvent, PortBridge } from '../../src/process/netns.js';

const N = {
  socket: 198, socketpair: 199, bind: 200, listen: 201, accept: 202, connect: 203, getsockname: 204, getpeername: 205,
  sendto: 206, recvfrom: 207, setsockopt: 208, getsockopt: 209, shutdown: 210, accept4: 242, ppoll: 73, fstat: 80,
} as const;
const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10, SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_NONBLOCK = 0o4000;
const EAGAIN = 11, ENOENT = 2, EADDRINUSE = 98, ENETUNREACH = 101, ECONNREFUSED = 111, EINPROGRESS = 115, ENOTCONN = 107,
  EPIPE = 32, EISCONN = 106;
const SOL_SOCKET = 1, SO_ERROR = 4, SO_TYPE = 3, IPPROTO_IPV6 = 41, IPV6_V6ONLY = 26, POLLIN = 1;

function sin(h: Harness, ip: number[], port: number): number {
  const b = new Uint8Array(16), dv = new DataView(b.buffer);
  dv.setUint16(0, AF_INET, true); dv.setUint16(2, port, false); b.set(ip, 4);
  return h.bytes(b);
}
function sin6(h: Harness, ip: number[], port: number): number {
  const b = new Uint8Array(28), dv = new DataView(b.buffer);
  dv.setUint16(0, AF_INET6, true); dv.setUint16(2, port, false); b.set(ip, 8);
  return h.bytes(b);
}
const V6_LOOPBACK = [...new Array<number>(15).fill(0), 1];

/** getsockname/getpeername: [family, port, address bytes]. */
function nameOf(h: Harness, nr: number, fd: number): [number, number, number[]] {
  const buf = h.alloc(128), len = h.alloc(4);
  h.proc.mem.write(len, Uint8Array.of(128, 0, 0, 0));
  assert.equal(h.call(nr, fd, buf, len), 0);
  const b = h.read(buf, 28), dv = new DataView(b.buffer), fam = dv.getUint16(0, true);
  return [fam, dv.getUint16(2, false), [...(fam === AF_INET ? b.subarray(4, 8) : b.subarray(8, 24))]];
}

/** send(2) with MSG_NOSIGNAL (an EPIPE must not kill the harness's process with SIGPIPE). */
function send(h: Harness, fd: number, s: string): number {
  const b = new TextEncoder().encode(s);
  return h.call(N.sendto, fd, h.bytes(b), b.length, 0x4000, 0, 0);
}
function recv(h: Harness, fd: number, n = 256): string | number {
  const buf = h.alloc(n), r = h.call(N.recvfrom, fd, buf, n, 0, 0, 0);
  return r < 0 ? r : h.text(buf, r);
}

/** A listening TCP socket on 127.0.0.1 and its port. */
function listener(h: Harness, flags = 0): [number, number] {
  const l = h.call(N.socket, AF_INET, SOCK_STREAM | flags, 0);
  assert.equal(h.call(N.bind, l, sin(h, [127, 0, 0, 1], 0), 16), 0);
  assert.equal(h.call(N.listen, l, 16), 0);
  return [l, nameOf(h, N.getsockname, l)[1]];
}

test('TCP over loopback: ephemeral port, connect, accept, both names, data both ways, EOF, ECONNREFUSED after close', () => {
  const h = new Harness();
  const [l, port] = listener(h);
  assert.ok(port >= 32768 && port <= 60999, `ephemeral port ${port} in ip_local_port_range`);
  const c = h.call(N.socket, AF_INET, SOCK_STREAM, 0);
  assert.equal(h.call(N.connect, c, sin(h, [127, 0, 0, 1], port), 16), 0);
  assert.equal(h.call(N.connect, c, sin(h, [127, 0, 0, 1], port), 16), -EISCONN);
  const s = h.call(N.accept, l, 0, 0);
  assert.ok(s > c);
  assert.deepEqual(nameOf(h, N.getpeername, s), nameOf(h, N.getsockname, c));
  assert.deepEqual(nameOf(h, N.getpeername, c), [AF_INET, port, [127, 0, 0, 1]]);
  assert.equal(send(h, c, 'ping'), 4);
  assert.equal(recv(h, s), 'ping');
  assert.equal(h.call(NR.write, s, h.bytes(new TextEncoder().encode('pong')), 4), 4);
  assert.equal(recv(h, c), 'pong');
  assert.equal(h.call(NR.close, c), 0);
  assert.equal(recv(h, s), '', 'EOF once the peer closed');
  assert.equal(send(h, s, 'x'), -EPIPE);
  assert.equal(h.call(NR.close, s), 0);
  assert.equal(h.call(NR.close, l), 0);
  const c2 = h.call(N.socket, AF_INET, SOCK_STREAM, 0);
  assert.equal(h.call(N.connect, c2, sin(h, [127, 0, 0, 1], port), 16), -ECONNREFUSED);
});

test('only loopback is reachable: other destinations give ENETUNREACH, other local addresses EADDRNOTAVAIL', () => {
  const h = new Harness();
  const c = h.call(N.socket, AF_INET, SOCK_STREAM, 0);
  assert.equal(h.call(N.connect, c, sin(h, [10, 0, 2, 2], 80), 16), -ENETUNREACH);
  assert.equal(h.call(N.connect, c, sin(h, [8, 8, 8, 8], 53), 16), -ENETUNREACH);
  const u = h.call(N.socket, AF_INET, SOCK_DGRAM, 0);
  assert.equal(h.call(N.sendto, u, h.bytes(Uint8Array.of(1)), 1, 0, sin(h, [192, 168, 1, 1], 53), 16), -ENETUNREACH);
  assert.equal(h.call(N.bind, u, sin(h, [192, 168, 1, 1], 0), 16), -99 /* EADDRNOTAVAIL */);
  const c6 = h.call(N.socket, AF_INET6, SOCK_STREAM, 0);
  assert.equal(h.call(N.connect, c6, sin6(h, [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1], 80), 28), -ENETUNREACH);
});

test('EADDRINUSE, SO_REUSEADDR does not share a listening port, a closed port is free again', () => {
  const h = new Harness();
  const [l, port] = listener(h);
  const b = h.call(N.socket, AF_INET, SOCK_STREAM, 0), one = h.bytes(Uint8Array.of(1, 0, 0, 0));
  assert.equal(h.call(N.bind, b, sin(h, [0, 0, 0, 0], port), 16), -EADDRINUSE, 'INADDR_ANY overlaps 127.0.0.1');
  assert.equal(h.call(N.setsockopt, b, SOL_SOCKET, 2 /* SO_REUSEADDR */, one, 4), 0);
  assert.equal(h.call(N.bind, b, sin(h, [127, 0, 0, 1], port), 16), -EADDRINUSE);
  const u = h.call(N.socket, AF_INET, SOCK_DGRAM, 0);
  assert.equal(h.call(N.bind, u, sin(h, [127, 0, 0, 1], port), 16), 0, 'UDP ports are separate');
  h.call(NR.close, l);
  assert.equal(h.call(N.bind, b, sin(h, [127, 0, 0, 1], port), 16), 0);
});

test('IPv6: a listener on :: takes IPv4 clients as ::ffff:127.0.0.1 unless IPV6_V6ONLY; ::1 works', () => {
  const h = new Harness();
  const l = h.call(N.socket, AF_INET6, SOCK_STREAM, 0);
  assert.equal(h.call(N.bind, l, sin6(h, new Array<number>(16).fill(0), 0), 28), 0);
  assert.equal(h.call(N.listen, l, 4), 0);
  const port = nameOf(h, N.getsockname, l)[1];
  const c4 = h.call(N.socket, AF_INET, SOCK_STREAM, 0);
  assert.equal(h.call(N.connect, c4, sin(h, [127, 0, 0, 1], port), 16), 0);
  const s4 = h.call(N.accept, l, 0, 0);
  const [fam, cport, ip] = nameOf(h, N.getpeername, s4);
  assert.deepEqual([fam, ip], [AF_INET6, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]]);
  assert.equal(cport, nameOf(h, N.getsockname, c4)[1]);
  const c6 = h.call(N.socket, AF_INET6, SOCK_STREAM, 0);
  assert.equal(h.call(N.connect, c6, sin6(h, V6_LOOPBACK, port), 28), 0);
  const s6 = h.call(N.accept, l, 0, 0);
  assert.deepEqual(nameOf(h, N.getpeername, s6)[2], V6_LOOPBACK);
  const only = h.call(N.socket, AF_INET6, SOCK_STREAM, 0);
  assert.equal(h.call(N.setsockopt, only, IPPROTO_IPV6, IPV6_V6ONLY, h.bytes(Uint8Array.of(1, 0, 0, 0)), 4), 0);
  assert.equal(h.call(N.bind, only, sin6(h, new Array<number>(16).fill(0), port + 1), 28), 0);
  assert.equal(h.call(N.listen, only, 4), 0);
  const c = h.call(N.socket, AF_INET, SOCK_STREAM, 0);
  assert.equal(h.call(N.connect, c, sin(h, [127, 0, 0, 1], port + 1), 16), -ECONNREFUSED);
});

test('non-blocking: accept EAGAIN, connect EINPROGRESS with SO_ERROR 0, ppoll sees the pending connection', () => {
  const h = new Harness();
  const [l, port] = listener(h, SOCK_NONBLOCK);
  assert.equal(h.call(N.accept4, l, 0, 0, 0), -EAGAIN);
  const pfd = h.bytes(Uint8Array.of(l, 0, 0, 0, POLLIN, 0, 0, 0));
  const zero = h.bytes(new Uint8Array(16));
  assert.equal(h.call(N.ppoll, pfd, 1, zero, 0, 8), 0);
  const c = h.call(N.socket, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  assert.equal(h.call(N.connect, c, sin(h, [127, 0, 0, 1], port), 16), -EINPROGRESS);
  assert.equal(h.call(N.ppoll, pfd, 1, zero, 0, 8), 1);
  assert.equal(h.read(pfd + 6, 1)[0], POLLIN);
  const v = h.alloc(4), len = h.bytes(Uint8Array.of(4, 0, 0, 0));
  h.proc.mem.write(v, Uint8Array.of(9, 9, 9, 9));
  assert.equal(h.call(N.getsockopt, c, SOL_SOCKET, SO_ERROR, v, len), 0);
  assert.equal(h.i32(v), 0);
  assert.equal(h.call(N.getsockopt, c, SOL_SOCKET, SO_TYPE, v, len), 0);
  assert.equal(h.i32(v), SOCK_STREAM);
  const s = h.call(N.accept4, l, 0, 0, SOCK_NONBLOCK);
  assert.ok(s >= 0);
  assert.equal(recv(h, s), -EAGAIN, 'nothing to read yet');
});

test('UDP: datagrams with the sender address; a connected socket learns ECONNREFUSED from a closed port', () => {
  const h = new Harness();
  const r = h.call(N.socket, AF_INET, SOCK_DGRAM, 0), s = h.call(N.socket, AF_INET, SOCK_DGRAM, 0);
  assert.equal(h.call(N.bind, r, sin(h, [127, 0, 0, 1], 0), 16), 0);
  const port = nameOf(h, N.getsockname, r)[1];
  const to = sin(h, [127, 0, 0, 1], port);
  for (const m of ['one', 'two']) assert.equal(h.call(N.sendto, s, h.bytes(new TextEncoder().encode(m)), m.length, 0, to, 16), 3);
  const buf = h.alloc(16), from = h.alloc(16), flen = h.bytes(Uint8Array.of(16, 0, 0, 0));
  assert.equal(h.call(N.recvfrom, r, buf, 16, 0, from, flen), 3);
  assert.equal(h.text(buf, 3), 'one');
  assert.equal(new DataView(h.read(from, 4).buffer).getUint16(2, false), nameOf(h, N.getsockname, s)[1]);
  assert.equal(recv(h, r), 'two');
  h.call(NR.close, r);
  assert.equal(h.call(N.connect, s, to, 16), 0);
  assert.equal(send(h, s, 'lost'), 4);
  assert.equal(send(h, s, 'again'), -ECONNREFUSED);
});

test('AF_UNIX path names: the node is created, EADDRINUSE, ENOENT and ECONNREFUSED, fstat says S_IFSOCK', () => {
  const h = new Harness(), dir = tempDir('netns'), p = path.join(dir, 'sock');
  const un = (pathname: string): [number, number] => {
    const b = new Uint8Array(110), enc = new TextEncoder().encode(pathname);
    b[0] = AF_UNIX; b.set(enc, 2);
    return [h.bytes(b), 2 + enc.length + 1];
  };
  const l = h.call(N.socket, AF_UNIX, SOCK_STREAM, 0);
  assert.equal(h.call(N.bind, l, ...un(p)), 0);
  assert.ok(fs.existsSync(p), 'bind makes the filesystem node');
  const l2 = h.call(N.socket, AF_UNIX, SOCK_STREAM, 0);
  assert.equal(h.call(N.bind, l2, ...un(p)), -EADDRINUSE);
  const c = h.call(N.socket, AF_UNIX, SOCK_STREAM, 0);
  assert.equal(h.call(N.connect, c, ...un(p)), -ECONNREFUSED, 'bound but not listening');
  assert.equal(h.call(N.connect, c, ...un(path.join(dir, 'none'))), -ENOENT);
  assert.equal(h.call(N.listen, l, 1), 0);
  assert.equal(h.call(NR.chdir, h.str(dir)), 0);
  assert.equal(h.call(N.connect, c, ...un('sock')), 0, 'a relative name reaches the same socket');
  const s = h.call(N.accept, l, 0, 0);
  assert.equal(send(h, c, 'over unix'), 9);
  assert.equal(recv(h, s), 'over unix');
  const st = h.alloc(128);
  assert.equal(h.call(N.fstat, s, st), 0);
  assert.equal(h.i32(st + 16) & 0o170000, 0o140000);
  assert.equal(h.call(N.getpeername, l, h.alloc(16), h.bytes(Uint8Array.of(16, 0, 0, 0))), -ENOTCONN);
  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, '');
  assert.equal(h.call(N.connect, h.call(N.socket, AF_UNIX, SOCK_STREAM, 0), ...un(file)), -ECONNREFUSED);
});

/** A PortBridge the test scripts: events to deliver, and what the namespace did. */
class ScriptedBridge implements PortBridge {
  events: BridgeEvent[] = [];
  readonly sent: string[] = [];
  readonly calls: string[] = [];
  poll(): BridgeEvent[] { return this.events.splice(0); }
  wait(): void { /* events are queued by the test before each step */ }
  send(conn: number, data: Uint8Array): void { this.sent.push(`${conn}:${new TextDecoder().decode(data)}`); }
  end(conn: number): void { this.calls.push(`end ${conn}`); }
  close(conn: number): void { this.calls.push(`close ${conn}`); }
  pause(conn: number, on: boolean): void { this.calls.push(`pause ${conn} ${on}`); }
}

test('published ports: a host connection reaches the listener as a loopback peer; bytes, half-close and back-pressure', () => {
  const h = new Harness(), b = new ScriptedBridge(), ns = h.sys.kernel.net;
  ns.attachBridge(b);
  b.events.push({ t: 'open', conn: 1, port: 8080 });
  ns.pump();
  assert.deepEqual(b.calls, ['close 1'], 'nothing listens on 8080 yet: the host connection is closed');
  const l = h.call(N.socket, AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  assert.equal(h.call(N.bind, l, sin6(h, new Array<number>(16).fill(0), 8080), 28), 0);
  assert.equal(h.call(N.listen, l, 4), 0);
  b.events.push({ t: 'open', conn: 2, port: 8080 }, { t: 'data', conn: 2, data: new TextEncoder().encode('GET /') });
  const s = h.call(N.accept4, l, 0, 0, SOCK_NONBLOCK);
  assert.ok(s >= 0);
  assert.deepEqual(nameOf(h, N.getpeername, s)[2], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
  assert.equal(recv(h, s), 'GET /');
  assert.equal(recv(h, s), -EAGAIN);
  b.events.push({ t: 'end', conn: 2 });
  assert.equal(recv(h, s), '', 'the host half-closed: EOF');
  assert.equal(send(h, s, 'HTTP/1.0 200'), 12, 'the guest can still answer');
  ns.pump();
  assert.deepEqual(b.sent, ['2:HTTP/1.0 200']);
  b.events.push({ t: 'full', conn: 2, full: true });
  ns.pump();
  assert.equal(send(h, s, ' more'), 5);
  ns.pump();
  assert.deepEqual(b.sent, ['2:HTTP/1.0 200'], 'nothing goes out while the host socket is full');
  b.events.push({ t: 'full', conn: 2, full: false });
  ns.pump();
  assert.deepEqual(b.sent, ['2:HTTP/1.0 200', '2: more']);
  assert.equal(h.call(N.shutdown, s, 1), 0);
  ns.pump();
  assert.deepEqual(b.calls, ['close 1', 'end 2']);
  // Back-pressure towards the host: a guest that does not read pauses the host socket.
  b.events.push({ t: 'open', conn: 3, port: 8080 }, { t: 'data', conn: 3, data: new Uint8Array(300_000) });
  const s3 = h.call(N.accept4, l, 0, 0, 0);
  ns.pump();
  assert.deepEqual(b.calls.slice(2), ['pause 3 true']);
  const big = h.alloc(300_000);
  assert.equal(h.call(N.recvfrom, s3, big, 300_000, 0, 0, 0), 300_000);
  ns.pump();
  assert.deepEqual(b.calls.slice(2), ['pause 3 true', 'pause 3 false']);
  h.call(NR.close, s3);
  ns.pump();
  assert.deepEqual(b.calls.slice(4), ['end 3']);
});

test('socketpair: stream data and shutdown; datagrams keep boundaries', () => {
  const h = new Harness(), sv = h.alloc(8);
  assert.equal(h.call(N.socketpair, AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const a = h.i32(sv), b = h.i32(sv + 4);
  assert.equal(send(h, a, 'abc'), 3);
  assert.equal(send(h, a, 'def'), 3);
  assert.equal(recv(h, b), 'abcdef');
  assert.equal(h.call(N.shutdown, a, 1), 0);
  assert.equal(recv(h, b), '');
  assert.equal(h.call(N.socketpair, AF_INET, SOCK_STREAM, 0, sv), -95 /* EOPNOTSUPP */);
  assert.equal(h.call(N.socketpair, AF_UNIX, SOCK_DGRAM, 0, sv), 0);
  const x = h.i32(sv), y = h.i32(sv + 4);
  assert.equal(send(h, x, '12'), 2);
  assert.equal(send(h, x, '345'), 3);
  assert.equal(recv(h, y), '12');
  assert.equal(recv(h, y), '345');
});
