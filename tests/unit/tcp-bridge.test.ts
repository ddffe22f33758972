/**
 * The TCP bridge between a container network's switch and its process
 * members (src/host/tcp-bridge.ts), driven frame by frame: the test plays
 * the VM (it writes the frames a kernel would send and reads the ones the
 * bridge emits) and the process member (a unix socket speaking the relay
 * protocol of network-relay.ts). Checked: proxy ARP, a RST for a member
 * with no socket, the handshake both ways with the MSS option and valid
 * checksums, data within the VM's window and MSS, retransmission of an
 * unacknowledged segment, a probe into a zero window, FIN both ways, and
 * a refused dial. The path through real guests is in
 * tests/host/container-vm.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TcpBridge } from '../../src/host/tcp-bridge.js';
import { NetGateway } from '../../src/host/net-gateway.js';
import { NET_ACK, NET_HEADER_BYTES, decodeNetHeader, encodeNetHeader } from '../../src/host/network-relay.js';

const GW_MAC = Uint8Array.of(2, 0x42, 172, 18, 0, 1), VM_MAC = Uint8Array.of(2, 0x42, 172, 18, 0, 2);
const VM_IP = Uint8Array.of(172, 18, 0, 2), MEMBER_IP = Uint8Array.of(172, 18, 0, 3), GONE_IP = Uint8Array.of(172, 18, 0, 9);
const SYN = 0x02, RST = 0x04, ACK = 0x10, FIN = 0x01, PSH = 0x08;

let dir = '';
let bridge: TcpBridge;
const frames: Uint8Array[] = [];
let wake: (() => void) | null = null;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-bridge-'));
  bridge = new TcpBridge({ dir, isRelay: (ip) => ip === '172.18.0.3' || ip === '172.18.0.9' });
  bridge.attach((f) => { frames.push(f); wake?.(); });
});

after(() => { bridge.close(); fs.rmSync(dir, { recursive: true, force: true }); });

/** A parsed emitted segment. */
interface Seg { dmac: number[]; src: number[]; dst: number[]; sport: number; dport: number; seq: number; ack: number; flags: number; win: number; mss: number | null; data: Buffer }

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/** The one's-complement sum of `b` (RFC 1071), folded. */
function sum(b: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Parses an emitted frame, checking its IPv4 and TCP checksums (a valid one sums to 0xffff). */
function parseSeg(f: Uint8Array): Seg {
  assert.equal(u16(f, 12), 0x0800);
  assert.equal(sum(f.subarray(14, 34)), 0xffff, 'IPv4 header checksum');
  const tcpLen = u16(f, 16) - 20, t = f.subarray(34, 34 + tcpLen);
  assert.equal(sum(t, sum(f.subarray(26, 34)) + 6 + tcpLen), 0xffff, 'TCP checksum with the pseudo-header');
  const doff = (t[12]! >> 4) * 4;
  return {
    dmac: [...f.subarray(0, 6)], src: [...f.subarray(26, 30)], dst: [...f.subarray(30, 34)], sport: u16(t, 0), dport: u16(t, 2),
    seq: u32(t, 4), ack: u32(t, 8), flags: t[13]!, win: u16(t, 14), mss: doff > 20 && t[20] === 2 ? u16(t, 22) : null, data: Buffer.from(t.subarray(doff)),
  };
}

/** The next emitted segment (within `ms`). */
async function next(ms = 3000): Promise<Seg> {
  const end = Date.now() + ms;
  while (frames.length === 0) {
    assert.ok(Date.now() < end, 'no frame from the bridge');
    await new Promise<void>((r) => { wake = r; setTimeout(r, 50); });
  }
  return parseSeg(frames.shift()!);
}

/** A frame from the VM (port `sport`) to `dst`:`dport`, at the MAC the gateway's proxy ARP gives `dst`. */
function vmFrame(dst: Uint8Array, sport: number, dport: number, seq: number, ack: number, flags: number, win: number, data: Uint8Array = new Uint8Array(0), mss?: number): Uint8Array {
  const opt = mss !== undefined ? 4 : 0, tcpLen = 20 + opt + data.length;
  const f = new Uint8Array(14 + 20 + tcpLen);
  f.set([2, 0x42, ...dst], 0); f.set(VM_MAC, 6); f[12] = 8;
  f[14] = 0x45; f[16] = (20 + tcpLen) >> 8; f[17] = (20 + tcpLen) & 0xff; f[22] = 64; f[23] = 6;
  f.set(VM_IP, 26); f.set(dst, 30);
  const t = 34, w32 = (o: number, v: number): void => { f[o] = v >>> 24; f[o + 1] = (v >>> 16) & 0xff; f[o + 2] = (v >>> 8) & 0xff; f[o + 3] = v & 0xff; };
  f[t] = sport >> 8; f[t + 1] = sport & 0xff; f[t + 2] = dport >> 8; f[t + 3] = dport & 0xff;
  w32(t + 4, seq); w32(t + 8, ack); f[t + 12] = ((20 + opt) / 4) << 4; f[t + 13] = flags; f[t + 14] = win >> 8; f[t + 15] = win & 0xff;
  if (mss !== undefined) { f[t + 20] = 2; f[t + 21] = 4; f[t + 22] = mss >> 8; f[t + 23] = mss & 0xff; }
  f.set(data, t + 20 + opt);
  return f;
}

/** A process member's relay socket: records each connection's header and what arrives, and answers with `ack`. */
function member(ip: string, ack: boolean): Promise<{ server: net.Server; conns: Array<{ sock: net.Socket; header: ReturnType<typeof decodeNetHeader>; got: Buffer[]; ended: boolean }> }> {
  const conns: Array<{ sock: net.Socket; header: ReturnType<typeof decodeNetHeader>; got: Buffer[]; ended: boolean }> = [];
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    let head = Buffer.alloc(0);
    const onData = (b: Buffer): void => {
      head = Buffer.concat([head, b]);
      if (head.length < NET_HEADER_BYTES) return;
      sock.off('data', onData);
      const c = { sock, header: decodeNetHeader(head), got: [] as Buffer[], ended: false };
      conns.push(c);
      sock.on('data', (d: Buffer) => c.got.push(d));
      sock.on('end', () => { c.ended = true; });
      if (ack) sock.write(Uint8Array.of(NET_ACK)); else sock.destroy();
    };
    sock.on('data', onData);
  });
  return new Promise((resolve) => server.listen(path.join(dir, ip), () => resolve({ server, conns })));
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), what);
};

test('proxy ARP: the gateway answers for a process member with the MAC of its address, and takes frames to it; not for an unknown address', () => {
  const gw = new NetGateway({ ip: '172.18.0.1', mac: GW_MAC, prefix: 16, byMac: () => null, byName: () => null, tcp: bridge });
  const arp = (target: Uint8Array): Uint8Array | null => {
    const f = new Uint8Array(42);
    f.fill(0xff, 0, 6); f.set(VM_MAC, 6); f[12] = 8; f[13] = 6;
    f.set([0, 1, 8, 0, 6, 4, 0, 1], 14); f.set(VM_MAC, 22); f.set(VM_IP, 28); f.set(target, 38);
    return gw.handle(f);
  };
  const r = arp(MEMBER_IP);
  assert.ok(r !== null);
  assert.deepEqual([...r.subarray(20, 22)], [0, 2], 'an ARP reply');
  assert.deepEqual([...r.subarray(22, 28)], [2, 0x42, ...MEMBER_IP], 'Docker\'s MAC for the address: 02:42 and its four bytes');
  assert.ok(gw.wants(Uint8Array.of(2, 0x42, ...MEMBER_IP)), 'frames to that MAC are the gateway\'s');
  assert.ok(!gw.wants(Uint8Array.of(2, 0x42, 172, 18, 0, 50)), 'not frames to another member\'s');
  assert.deepEqual([...r.subarray(28, 32)], [...MEMBER_IP], 'for the member\'s address');
  assert.equal(arp(Uint8Array.of(172, 18, 0, 50)), null, 'no answer for an address with no process member');
});

test('a SYN to a process member with no socket gets a RST (connection refused)', async () => {
  frames.length = 0;
  assert.ok(bridge.handle(vmFrame(GONE_IP, 40000, 80, 1000, 0, SYN, 64240, undefined, 1460)));
  const s = await next();
  assert.equal(s.flags, RST | ACK);
  assert.equal(s.ack, 1001, 'acknowledges the SYN');
  assert.deepEqual([s.src, s.dst, s.sport, s.dport], [[...GONE_IP], [...VM_IP], 80, 40000]);
});

test('VM to process member: handshake, data both ways within the window and MSS, retransmission, zero window, FIN both ways', async () => {
  frames.length = 0;
  const m = await member('172.18.0.3', true);
  const isn = 5000;
  bridge.handle(vmFrame(MEMBER_IP, 41000, 8080, isn, 0, SYN, 64240, undefined, 1000));
  const synAck = await next();
  assert.equal(synAck.flags, SYN | ACK);
  assert.equal(synAck.ack, isn + 1);
  assert.equal(synAck.mss, 1460, 'the bridge offers a 1460-byte MSS');
  assert.deepEqual(synAck.dmac, [...VM_MAC]);
  assert.equal(m.conns.length, 1);
  assert.deepEqual([[...m.conns[0]!.header.fromIp], m.conns[0]!.header.fromPort, m.conns[0]!.header.port], [[...VM_IP], 41000, 8080], 'the header names the VM\'s end');
  let mySeq = isn + 1;
  const their = synAck.seq + 1;
  bridge.handle(vmFrame(MEMBER_IP, 41000, 8080, mySeq, their, ACK | PSH, 2000, Buffer.from('hello')));
  mySeq += 5;
  const ack1 = await next();
  assert.equal(ack1.ack, mySeq, 'the data is acknowledged');
  await until(() => Buffer.concat(m.conns[0]!.got).toString() === 'hello', 'the member received the bytes');

  // 3000 bytes from the member: the VM's window (2000) and MSS (1000) cut them.
  const payload = Buffer.alloc(3000, 7);
  m.conns[0]!.sock.write(payload);
  const a = await next(), b = await next();
  assert.deepEqual([a.seq, a.data.length, b.seq, b.data.length], [their, 1000, their + 1000, 1000], 'two MSS segments fill the window');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(frames.length, 0, 'nothing beyond the window');
  // Only the first is acknowledged: the window opens by 1000, one more segment goes; then silence retransmits the oldest.
  bridge.handle(vmFrame(MEMBER_IP, 41000, 8080, mySeq, their + 1000, ACK, 2000));
  const c = await next();
  assert.deepEqual([c.seq, c.data.length], [their + 2000, 1000]);
  const again = await next(2000);
  assert.deepEqual([again.seq, again.data.length], [their + 1000, 1000], 'the oldest unacknowledged segment is sent again after the timeout');
  // Everything acknowledged, window shut: the member's next bytes wait, then a one-byte probe goes.
  bridge.handle(vmFrame(MEMBER_IP, 41000, 8080, mySeq, their + 3000, ACK, 0));
  m.conns[0]!.sock.write(Buffer.from('xyz'));
  const probe = await next(2000);
  assert.deepEqual([probe.seq, probe.data.toString()], [their + 3000, 'x'], 'a one-byte probe into the zero window');
  bridge.handle(vmFrame(MEMBER_IP, 41000, 8080, mySeq, their + 3001, ACK, 5000));
  const rest = await next();
  assert.deepEqual([rest.seq, rest.data.toString()], [their + 3001, 'yz'], 'the rest once the window opens');
  frames.length = 0;
  // The VM's FIN: the member sees its end; the member's end: the bridge's FIN.
  bridge.handle(vmFrame(MEMBER_IP, 41000, 8080, mySeq, their + 3003, FIN | ACK, 5000));
  const finAck = await next();
  assert.equal(finAck.ack, mySeq + 1, 'the FIN is acknowledged');
  await until(() => m.conns[0]!.ended, 'the member read its end of file');
  m.conns[0]!.sock.end();
  const fin = await next();
  assert.equal(fin.flags & FIN, FIN);
  assert.equal(fin.seq, their + 3003);
  bridge.handle(vmFrame(MEMBER_IP, 41000, 8080, mySeq + 1, their + 3004, ACK, 5000));
  // The connection is gone: a stray segment now gets a RST.
  await new Promise((r) => setTimeout(r, 50));
  frames.length = 0;
  bridge.handle(vmFrame(MEMBER_IP, 41000, 8080, mySeq + 1, their + 3004, ACK | PSH, 5000, Buffer.from('late')));
  assert.equal((await next()).flags & RST, RST);
  m.server.close();
});

test('process member to VM: the dial becomes a SYN; a RST refuses it, a SYN-ACK gives the ACK byte and data flows', async () => {
  frames.length = 0;
  await bridge.listen('172.18.0.2');
  const dial = (): Promise<{ sock: net.Socket; first: Promise<Buffer | null> }> => new Promise((resolve) => {
    const sock = net.connect({ path: path.join(dir, '172.18.0.2'), allowHalfOpen: true }, () => {
      sock.write(encodeNetHeader(MEMBER_IP, 50000, 80));
      const first = new Promise<Buffer | null>((r) => { sock.once('data', (b: Buffer) => r(b)); sock.once('close', () => r(null)); sock.once('end', () => r(null)); });
      resolve({ sock, first });
    });
  });
  const refused = await dial();
  const syn = await next();
  assert.equal(syn.flags, SYN);
  assert.deepEqual([syn.dmac, syn.src, syn.sport, syn.dst, syn.dport], [[...VM_MAC], [...MEMBER_IP], 50000, [...VM_IP], 80]);
  assert.equal(syn.mss, 1460);
  bridge.handle(vmFrame(MEMBER_IP, 80, 50000, 0, syn.seq + 1, RST | ACK, 0));
  assert.equal(await refused.first, null, 'the dial is refused: the socket closes without the ACK byte');

  const ok = await dial();
  const syn2 = await next();
  bridge.handle(vmFrame(MEMBER_IP, 80, 50000, 9000, syn2.seq + 1, SYN | ACK, 64240, undefined, 1460));
  const firstByte = await ok.first;
  assert.deepEqual(firstByte === null ? null : [...firstByte.subarray(0, 1)], [NET_ACK], 'the member\'s connect() succeeds');
  const ackOfSynAck = await next();
  assert.deepEqual([ackOfSynAck.flags, ackOfSynAck.ack], [ACK, 9001]);
  ok.sock.write('GET /');
  const data = await next();
  assert.deepEqual([data.seq, data.data.toString()], [syn2.seq + 1, 'GET /']);
  const got: Buffer[] = [];
  ok.sock.on('data', (b: Buffer) => got.push(b));
  bridge.handle(vmFrame(MEMBER_IP, 80, 50000, 9001, syn2.seq + 6, ACK | PSH, 64240, Buffer.from('200 OK')));
  await until(() => Buffer.concat(got).toString() === '200 OK', 'the VM\'s reply reached the member');
  assert.equal((await next()).ack, 9007, 'the VM\'s bytes are acknowledged');
  bridge.unlisten('172.18.0.2');
  const reset = await next();
  assert.equal(reset.flags & RST, RST, 'the VM leaving resets its connections');
  assert.equal(fs.existsSync(path.join(dir, '172.18.0.2')), false, 'and its socket is gone');
});
