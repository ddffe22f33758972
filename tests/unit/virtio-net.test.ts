/**
 * virtio-net against a fake driver (tests/helpers/virtio-driver.ts) and
 * in-memory backends: feature and config negotiation, transmit, receive
 * (with the header the driver expects), drops of oversized frames, the
 * bounded receive backlog and its flow control, transmit congestion, two
 * devices wired back to back, and a malformed ring. Then the host side:
 * the 4-byte big-endian length framing of QEMU's stream netdevs, over a
 * real pair of local sockets, and -device/-netdev option checking.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FakeDriver, FAKE_RAM_BASE } from '../helpers/virtio-driver.js';
import {
  VirtioNet, VIRTIO_NET_F_MAC, VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS, VIRTIO_NET_HDR_LEN, NET_RX_QUEUE_MAX,
} from '../../src/devices/virtio/net.js';
import type { NetBackend } from '../../src/devices/virtio/net-backend.js';
import { STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK, type GuestEntry } from '../../src/devices/virtio/mmio.js';
import {
  FrameDecoder, FramingError, encodeFrame, listenStream, connectStream, openNetdev, hostfwdToPasst, type StreamNetBackend,
} from '../../src/host/net-socket.js';
import { defaultMac, parseMac } from '../../src/vmm/dev-net.js';
import { nodeDeviceServices } from '../../src/host/node-vm-services.js';
import type { DeviceServices } from '../../src/vmm/services.js';
import { buildDevices } from '../../src/vmm/device-builder.js';
import { parseQemuOpts, OptsError } from '../../src/vmm/qemu-opts.js';

const MAC = Uint8Array.from([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
const RX_BUF = VIRTIO_NET_HDR_LEN + 1518; // what Linux posts without mergeable buffers: header + a full VLAN-tagged frame

/** A backend the test drives by hand: records sent frames, injects received ones. */
class TestBackend implements NetBackend {
  onReceive: (frame: Uint8Array) => void = () => {};
  onWritable: () => void = () => {};
  sent: Uint8Array[] = [];
  pausedCalls: boolean[] = [];
  congestAfter = Infinity;
  closed = false;
  send(frame: Uint8Array): boolean { this.sent.push(frame); return this.sent.length < this.congestAfter; }
  setReceivePaused(p: boolean): void { this.pausedCalls.push(p); }
  close(): void { this.closed = true; }
}

/** Two backends joined back to back: what one sends, the other receives. */
function wire(): [NetBackend, NetBackend] {
  const mk = (): NetBackend & { peer?: NetBackend } => ({
    onReceive: () => {}, onWritable: () => {}, setReceivePaused: () => {}, close: () => {},
    send(frame) { this.peer!.onReceive(frame); return true; },
  });
  const a = mk(), b = mk();
  a.peer = b; b.peer = a;
  return [a, b];
}

function frame(n: number, seed = 1): Uint8Array {
  const f = new Uint8Array(n);
  for (let i = 0; i < n; i++) f[i] = (i * 7 + seed) & 0xff;
  return f;
}

function cfgBytes(d: FakeDriver, off: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(d.reg(0x100 + off + i) & 0xff);
  return out;
}

test('virtio-net identifies as device 1 and offers MAC and STATUS (MTU only when configured)', () => {
  const d = new FakeDriver(new VirtioNet({ mac: MAC, backend: new TestBackend() }));
  assert.equal(d.reg(0x008), 1);
  d.setReg(0x14, 0);
  const lo = d.reg(0x10);
  assert.ok(lo & (1 << VIRTIO_NET_F_MAC));
  assert.ok(lo & (1 << VIRTIO_NET_F_STATUS));
  assert.equal(lo & (1 << VIRTIO_NET_F_MTU), 0);
  assert.equal(lo & 0x7, 0, 'no checksum or guest offloads');
  assert.equal(lo & (1 << 15), 0, 'no mergeable receive buffers');
  assert.equal(lo & ((1 << 17) | (1 << 22)), 0, 'no control queue, no multiqueue');
  assert.deepEqual(cfgBytes(d, 0, 6), [...MAC]);
  assert.equal(d.reg(0x100 + 6) & 0xffff, 1, 'link up');
  const m = new FakeDriver(new VirtioNet({ mac: MAC, mtu: 1400, backend: new TestBackend() }));
  m.setReg(0x14, 0);
  assert.ok(m.reg(0x10) & (1 << VIRTIO_NET_F_MTU));
  assert.equal(m.reg(0x100 + 10) & 0xffff, 1400);
});

test('transmit: the header is stripped and the frame goes to the backend', () => {
  const be = new TestBackend();
  const d = new FakeDriver(new VirtioNet({ mac: MAC, backend: be }));
  d.init();
  const f = frame(100);
  // Header and frame in separate descriptors, the frame itself split in two.
  const { head } = d.submit(1, [{ data: new Uint8Array(VIRTIO_NET_HDR_LEN) }, { data: f.subarray(0, 30) }, { data: f.subarray(30) }]);
  assert.deepEqual(d.used(1), [{ id: head, len: 0 }]);
  assert.equal(be.sent.length, 1);
  assert.deepEqual(be.sent[0], f);
  // Header and frame in one descriptor.
  const both = new Uint8Array(VIRTIO_NET_HDR_LEN + 60);
  both.set(frame(60, 9), VIRTIO_NET_HDR_LEN);
  d.submit(1, [{ data: both }]);
  assert.deepEqual(be.sent[1], frame(60, 9));
  // A chain shorter than the header is consumed and dropped.
  d.submit(1, [{ data: new Uint8Array(5) }]);
  assert.equal(be.sent.length, 2);
  assert.equal(d.used(1).length, 2);
  assert.ok(d.irqCount >= 1);
  assert.ok(d.canariesIntact());
});

test('receive: frames wait for buffers and arrive behind a header with num_buffers = 1', () => {
  const be = new TestBackend();
  let wakes = 0;
  const dev = new VirtioNet({ mac: MAC, backend: be, wake: () => { wakes++; } });
  const d = new FakeDriver(dev);
  be.onReceive(frame(64)); // before DRIVER_OK: dropped
  assert.equal(dev.rxDropped, 1);
  d.init();
  be.onReceive(frame(200, 3));
  assert.equal(dev.rxBacklog, 1, 'no receive buffers yet');
  const { head, writeAddrs } = d.submit(0, [{ writeLen: RX_BUF }]);
  assert.deepEqual(d.used(0), [{ id: head, len: VIRTIO_NET_HDR_LEN + 200 }]);
  const got = d.read(writeAddrs[0]!, VIRTIO_NET_HDR_LEN + 200);
  assert.deepEqual([...got.subarray(0, 10)], new Array(10).fill(0), 'no offload information');
  assert.equal(got[10]! | (got[11]! << 8), 1, 'num_buffers');
  assert.deepEqual(got.subarray(VIRTIO_NET_HDR_LEN), frame(200, 3));
  // With a buffer already posted, a frame from the backend is delivered at once and wakes the VMM.
  const w = wakes;
  const second = d.submit(0, [{ writeLen: 4 }, { writeLen: RX_BUF - 4 }], false); // header split across buffers
  be.onReceive(frame(1514, 5));
  assert.deepEqual(d.used(0), [{ id: second.head, len: VIRTIO_NET_HDR_LEN + 1514 }]);
  assert.deepEqual(d.read(second.writeAddrs[1]!, 1514 + VIRTIO_NET_HDR_LEN - 4).subarray(VIRTIO_NET_HDR_LEN - 4), frame(1514, 5));
  assert.equal(wakes, w + 1);
  assert.equal(dev.rxFrames, 2);
  assert.ok(d.canariesIntact());
});

test('receive: a frame larger than the buffer is dropped and counted; the buffer takes the next frame', () => {
  const be = new TestBackend();
  const dev = new VirtioNet({ mac: MAC, backend: be });
  const d = new FakeDriver(dev);
  d.init();
  be.onReceive(frame(3000));
  be.onReceive(frame(80, 2));
  const { head } = d.submit(0, [{ writeLen: RX_BUF }]);
  assert.deepEqual(d.used(0), [{ id: head, len: VIRTIO_NET_HDR_LEN + 80 }]);
  assert.equal(dev.rxTooBig, 1);
  // Only an oversized frame queued: the buffer stays with the device, unused, for the next one.
  be.onReceive(frame(5000));
  const next = d.submit(0, [{ writeLen: RX_BUF }]);
  assert.deepEqual(d.used(0), []);
  assert.equal(dev.rxTooBig, 2);
  be.onReceive(frame(42, 4));
  assert.deepEqual(d.used(0), [{ id: next.head, len: VIRTIO_NET_HDR_LEN + 42 }]);
});

test('receive backlog is bounded; the backend is paused at half and resumed once drained', () => {
  const be = new TestBackend();
  const dev = new VirtioNet({ mac: MAC, backend: be });
  const d = new FakeDriver(dev, 8 * 1024 * 1024);
  d.init(null, 256);
  for (let i = 0; i < NET_RX_QUEUE_MAX + 44; i++) be.onReceive(frame(60, i));
  assert.equal(dev.rxBacklog, NET_RX_QUEUE_MAX);
  assert.equal(dev.rxDropped, 44);
  assert.deepEqual(be.pausedCalls, [true]);
  for (let i = 0; i < 250; i++) d.submit(0, [{ writeLen: RX_BUF }], false);
  d.setReg(0x50, 0);
  assert.equal(d.used(0).length, 250);
  assert.equal(dev.rxBacklog, NET_RX_QUEUE_MAX - 250);
  assert.deepEqual(be.pausedCalls, [true, false]);
});

test('transmit stops while the backend is congested and resumes on onWritable', () => {
  const be = new TestBackend();
  be.congestAfter = 2;
  const d = new FakeDriver(new VirtioNet({ mac: MAC, backend: be }));
  d.init();
  for (let i = 0; i < 5; i++) d.submit(1, [{ data: new Uint8Array(VIRTIO_NET_HDR_LEN) }, { data: frame(50, i) }], false);
  d.setReg(0x50, 1);
  assert.equal(be.sent.length, 2, 'stopped after the congested send');
  assert.equal(d.used(1).length, 2);
  be.congestAfter = Infinity;
  be.onWritable();
  assert.equal(be.sent.length, 5);
  assert.deepEqual(be.sent.map((f) => f[0]), [0, 1, 2, 3, 4].map((i) => frame(50, i)[0]));
  assert.equal(d.used(1).length, 3);
});

test('two devices back to back exchange frames both ways', () => {
  const [a, b] = wire();
  const da = new FakeDriver(new VirtioNet({ mac: MAC, backend: a })), db = new FakeDriver(new VirtioNet({ mac: MAC, backend: b }));
  da.init(); db.init();
  const rxa = da.submit(0, [{ writeLen: RX_BUF }]), rxb = db.submit(0, [{ writeLen: RX_BUF }]);
  const pkt = (n: number, s: number): Uint8Array => { const c = new Uint8Array(VIRTIO_NET_HDR_LEN + n); c.set(frame(n, s), VIRTIO_NET_HDR_LEN); return c; };
  da.submit(1, [{ data: pkt(300, 1) }]);
  db.submit(1, [{ data: pkt(900, 2) }]);
  assert.deepEqual(db.used(0), [{ id: rxb.head, len: VIRTIO_NET_HDR_LEN + 300 }]);
  assert.deepEqual(db.read(rxb.writeAddrs[0]!, VIRTIO_NET_HDR_LEN + 300).subarray(VIRTIO_NET_HDR_LEN), frame(300, 1));
  assert.deepEqual(da.used(0), [{ id: rxa.head, len: VIRTIO_NET_HDR_LEN + 900 }]);
  assert.deepEqual(da.read(rxa.writeAddrs[0]!, VIRTIO_NET_HDR_LEN + 900).subarray(VIRTIO_NET_HDR_LEN), frame(900, 2));
});

test('a receive buffer outside guest RAM fails the device, never the host', () => {
  const be = new TestBackend();
  const d = new FakeDriver(new VirtioNet({ mac: MAC, backend: be }));
  d.init();
  d.writeDesc(0, 0, FAKE_RAM_BASE + d.mem.size - 16, 2048, 2, 0);
  d.publish(0, 0);
  assert.doesNotThrow(() => be.onReceive(frame(100)));
  assert.ok(d.status & STATUS_DEVICE_NEEDS_RESET);
  assert.ok(d.canariesIntact());
  // A reset brings it back.
  d.init();
  assert.ok(d.status & STATUS_DRIVER_OK);
  assert.equal(d.status & STATUS_DEVICE_NEEDS_RESET, 0);
});

test('frame decoder: 4-byte big-endian lengths, any chunking, pausing, impossible lengths', () => {
  const frames = [frame(1), frame(60, 2), frame(1514, 3), frame(9000, 4)];
  const stream = new Uint8Array(frames.reduce((n, f) => n + 4 + f.length, 0));
  let o = 0;
  for (const f of frames) { stream.set(encodeFrame(f), o); o += 4 + f.length; }
  assert.deepEqual([...encodeFrame(frame(3)).subarray(0, 4)], [0, 0, 0, 3]);
  assert.deepEqual([...encodeFrame(new Uint8Array(0x10203)).subarray(0, 4)], [0, 1, 2, 3]);
  for (const step of [1, 3, 4, 7, 1000, stream.length]) {
    const got: Uint8Array[] = [];
    const dec = new FrameDecoder((f) => got.push(f.slice()));
    for (let i = 0; i < stream.length; i += step) dec.push(stream.subarray(i, i + step));
    assert.deepEqual(got, frames, `chunks of ${step}`);
    assert.equal(dec.buffered, 0);
  }
  const got: Uint8Array[] = [];
  const dec = new FrameDecoder((f) => { got.push(f); if (got.length === 2) dec.paused = true; });
  dec.push(stream);
  assert.equal(got.length, 2);
  dec.paused = false;
  dec.drain();
  assert.equal(got.length, 4);
  const bad = new FrameDecoder(() => {});
  assert.throws(() => bad.push(Uint8Array.from([0x7f, 0, 0, 0])), FramingError);
});

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('socket backends: listen and connect on a unix socket carry frames both ways, with flow control', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-net-test-'));
  const sock = path.join(dir, 'net.sock');
  const client = connectStream({ kind: 'unix', path: sock }, 'client'); // before the server: it retries
  const server = listenStream({ kind: 'unix', path: sock }, 'server');
  try {
    await Promise.all([client.waitConnected(), server.waitConnected()]);
    const atServer: Uint8Array[] = [], atClient: Uint8Array[] = [];
    server.onReceive = (f) => atServer.push(f.slice());
    client.onReceive = (f) => atClient.push(f.slice());
    const big = frame(65536, 7);
    for (let i = 0; i < 50; i++) client.send(frame(100 + i, i));
    client.send(big);
    server.send(frame(1514, 1));
    await until(() => atServer.length === 51 && atClient.length === 1, 'frames delivered');
    for (let i = 0; i < 50; i++) assert.deepEqual(atServer[i], frame(100 + i, i));
    assert.deepEqual(atServer[50], big);
    assert.deepEqual(atClient[0], frame(1514, 1));
    // Paused reception holds frames until resumed.
    server.setReceivePaused(true);
    client.send(frame(70, 70));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(atServer.length, 51);
    server.setReceivePaused(false);
    await until(() => atServer.length === 52, 'frame after resume');
    assert.deepEqual(atServer[51], frame(70, 70));
  } finally {
    client.close(); server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('socket backends: a listening backend speaks the framing to a raw TCP peer and takes the next peer after a disconnect', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  const be: StreamNetBackend = listenStream({ kind: 'inet', host: '127.0.0.1', port }, 'listener');
  try {
    const got: Uint8Array[] = [];
    be.onReceive = (f) => got.push(f.slice());
    const raw = async (): Promise<{ s: net.Socket; data: () => Buffer }> => {
      for (;;) {
        const s = net.connect(port, '127.0.0.1');
        const ok = await new Promise<boolean>((r) => { s.once('connect', () => r(true)); s.once('error', () => r(false)); });
        if (ok) { let buf = Buffer.alloc(0); s.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); }); return { s, data: () => buf }; }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const p1 = await raw();
    await be.waitConnected();
    // Two frames written in awkward pieces: 2 bytes of prefix, then the rest.
    const wire1 = Buffer.concat([Buffer.from(encodeFrame(frame(10, 1))), Buffer.from(encodeFrame(frame(20, 2)))]);
    p1.s.write(wire1.subarray(0, 2));
    await new Promise((r) => setTimeout(r, 20));
    p1.s.write(wire1.subarray(2));
    await until(() => got.length === 2, 'raw frames');
    assert.deepEqual(got, [frame(10, 1), frame(20, 2)]);
    be.send(frame(33, 3));
    await until(() => p1.data().length === 37, 'framed bytes at the raw peer');
    assert.deepEqual(p1.data(), Buffer.concat([Buffer.from([0, 0, 0, 33]), Buffer.from(frame(33, 3))]));
    p1.s.destroy();
    await until(() => !be.connected, 'disconnect noticed');
    const p2 = await raw();
    await be.waitConnected();
    p2.s.write(encodeFrame(frame(5, 5)));
    await until(() => got.length === 3, 'frame from the second peer');
    p2.s.destroy();
  } finally {
    be.close();
  }
});

test('-device virtio-net-device: netdev lookup, default and explicit MACs, one device per netdev, clear errors', () => {
  const opened: string[] = [];
  const backends: TestBackend[] = [];
  // The netdev opener is a host service of the build: this one records the ids and hands out test backends.
  const services: DeviceServices = {
    ...nodeDeviceServices,
    openNetdev: (nd) => { opened.push(nd.props.get('id')!); const b = new TestBackend(); backends.push(b); return b; },
  };
  {
    const opts = (devices: string[], netdevs: string[]): Parameters<typeof buildDevices>[0] => ({
      devices: devices.map((d) => parseQemuOpts(d)), drives: [], netdevs: netdevs.map((n) => parseQemuOpts(n)),
    });
    const built = buildDevices(opts(['virtio-net-device,netdev=a', 'virtio-net-device,netdev=b,mac=02:00:00:00:00:07,host_mtu=1400', 'virtio-net-device,netdev=c'],
      ['socket,id=a,listen=:1', 'user,id=b', 'user,id=c']), services);
    assert.deepEqual(opened, ['a', 'b', 'c']);
    const nets = built.devices as VirtioNet[];
    assert.deepEqual([...nets[0]!.mac], [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    assert.deepEqual([...nets[1]!.mac], [0x02, 0, 0, 0, 0, 7]);
    assert.ok(nets[1]!.featuresLo & (1 << VIRTIO_NET_F_MTU));
    assert.deepEqual([...nets[2]!.mac], [...defaultMac(2)]);
    for (const c of built.cleanups) c();
    assert.ok(backends.every((b) => b.closed), 'cleanups close the backends');
    const bad: [string[], string[], RegExp][] = [
      [['virtio-net-device'], [], /needs netdev=ID/],
      [['virtio-net-device,netdev=zz'], ['user,id=a'], /no -netdev with id 'zz'/],
      [['virtio-net-device,netdev=a,mac=52:54:00:12:34'], ['user,id=a'], /not a MAC address/],
      [['virtio-net-device,netdev=a,mac=01:00:5e:00:00:01'], ['user,id=a'], /multicast/],
      [['virtio-net-device,netdev=a,host_mtu=20'], ['user,id=a'], /host_mtu=20/],
      [['virtio-net-device,netdev=a,speed=10'], ['user,id=a'], /unknown property 'speed'/],
      [['virtio-net-device,netdev=a', 'virtio-net-device,netdev=a'], ['user,id=a'], /already used/],
    ];
    for (const [devs, nds, re] of bad) {
      assert.throws(() => buildDevices(opts(devs, nds), services), (e: unknown) => e instanceof OptsError && re.test(e.message) && !e.message.includes('\n'), devs.join(' '));
    }
    assert.deepEqual(parseMac('52:54:00:AB:cd:0f') && [...parseMac('52:54:00:AB:cd:0f')!], [0x52, 0x54, 0, 0xab, 0xcd, 0x0f]);
  }
});

/** A DHCPDISCOVER from `mac` (RFC 2131 §4.4.1) in an Ethernet/IPv4/UDP broadcast frame. */
function dhcpDiscover(mac: Uint8Array, xid: number): Uint8Array {
  const bootp = new Uint8Array(300); // BOOTP's minimum message size (RFC 951, RFC 1542 §2.1)
  const bv = new DataView(bootp.buffer);
  bootp[0] = 1; bootp[1] = 1; bootp[2] = 6; // BOOTREQUEST, Ethernet, 6-byte hardware address
  bv.setUint32(4, xid); bv.setUint16(10, 0x8000); // xid, broadcast flag
  bootp.set(mac, 28); // chaddr
  bv.setUint32(236, 0x63825363); // magic cookie (RFC 2132 §2)
  bootp.set([53, 1, 1, 255], 240); // option 53 DHCP message type = DISCOVER, end
  const f = new Uint8Array(14 + 20 + 8 + bootp.length), v = new DataView(f.buffer);
  f.fill(0xff, 0, 6); f.set(mac, 6); v.setUint16(12, 0x0800); // Ethernet: broadcast, IPv4
  f[14] = 0x45; v.setUint16(16, 20 + 8 + bootp.length); f[22] = 64; f[23] = 17; // IPv4 header: UDP, TTL 64
  f.fill(0xff, 30, 34); // 0.0.0.0 -> 255.255.255.255
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(24, ~sum & 0xffff);
  v.setUint16(34, 68); v.setUint16(36, 67); v.setUint16(38, 8 + bootp.length); // UDP 68 -> 67, no checksum
  f.set(bootp, 42);
  return f;
}

test('-netdev user starts passt, which answers a DHCPDISCOVER with an offer; close stops it', { skip: !fs.existsSync('/usr/bin/passt') && 'passt is not installed' }, async () => {
  const be = openNetdev(parseQemuOpts('user,id=u0')) as StreamNetBackend;
  try {
    await be.waitConnected();
    const mac = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x99]), xid = 0x1badcafe;
    let offer: Uint8Array | null = null;
    be.onReceive = (f) => {
      const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
      if (f.length < 42 + 240 || v.getUint16(12) !== 0x0800 || f[23] !== 17) return;
      const udp = 14 + (f[14]! & 15) * 4;
      if (v.getUint16(udp) === 67 && v.getUint32(udp + 8 + 4) === xid) offer = f.slice(udp + 8);
    };
    be.send(dhcpDiscover(mac, xid));
    await until(() => offer !== null, 'DHCPOFFER from passt');
    const o = offer! as Uint8Array;
    assert.equal(o[0], 2, 'BOOTREPLY');
    assert.deepEqual([...o.subarray(28, 34)], [...mac]);
    const yiaddr = [...o.subarray(16, 20)];
    assert.notDeepEqual(yiaddr, [0, 0, 0, 0], 'an address is offered');
    let i = 240, type = 0;
    while (i < o.length && o[i] !== 255) { if (o[i] === 53) type = o[i + 2]!; i += o[i] === 0 ? 1 : 2 + o[i + 1]!; }
    assert.equal(type, 2, 'DHCPOFFER');
  } finally {
    be.close();
  }
  const pid = be.helperPid;
  assert.ok(pid !== null);
  const alive = (): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
  await until(() => !alive(), 'passt exits after close');
});

test('-netdev option checking and hostfwd translation for passt', () => {
  const bad: [string, RegExp][] = [
    ['socket,id=a', /exactly one of listen/],
    ['socket,id=a,listen=:1,connect=:2', /exactly one of listen/],
    ['socket,id=a,connect=127.0.0.1:99999', /port from 1 to 65535/],
    ['socket,id=a,connect=127.0.0.1', /HOST:PORT/],
    ['socket,id=a,mcast=230.0.0.1:1234', /unsupported option 'mcast'/],
    ['stream,id=a,server=on', /addr.type=unix or addr.type=inet/],
    ['stream,id=a,addr.type=unix', /addr.path/],
    ['stream,id=a,addr.type=inet,addr.host=127.0.0.1', /addr.port/],
    ['stream,id=a,server=maybe,addr.type=unix,addr.path=/x', /not on\/off/],
    ['user,id=a,net=10.0.2.0/24', /unsupported option 'net'/],
    ['user,id=a,hostfwd=tcp:127.0.0.1:80', /hostfwd=/],
    ['user,id=a,hostfwd=tcp:localhost:8080-:80', /not an IP address/],
    ['tap,id=a,ifname=tap0', /unsupported netdev type 'tap'/],
    ['user,id=a,hostfwd=tcp::1-:2,hostfwd=tcp::3', /hostfwd=tcp::3 is not/],
    ['socket,id=a,listen=:1,listen=:2', /property 'listen' given twice/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => openNetdev(parseQemuOpts(text)), (e: unknown) => e instanceof OptsError && re.test(e.message), text);
  }
  assert.deepEqual(hostfwdToPasst('tcp:127.0.0.1:8080-:80', 'x'), ['--tcp-ports', '127.0.0.1/8080:80']);
  assert.deepEqual(hostfwdToPasst('tcp::2222-10.0.2.15:22', 'x'), ['--tcp-ports', '2222:22']);
  assert.deepEqual(hostfwdToPasst('udp::5353-:53', 'x'), ['--udp-ports', '5353:53']);
  assert.deepEqual(hostfwdToPasst(':127.0.0.1:1-:2', 'x'), ['--tcp-ports', '127.0.0.1/1:2']);
  // hostfwd may repeat, as in QEMU (each rule in turn); any other key given twice is an error.
  const o = parseQemuOpts('user,id=a,hostfwd=tcp::1-:2,hostfwd=udp::3-:4');
  assert.deepEqual(o.repeats.get('hostfwd'), ['tcp::1-:2', 'udp::3-:4']);
  assert.equal(o.props.get('hostfwd'), 'tcp::1-:2');
});

test('receive: a frame from the backend is delivered inside the VMM\'s entry (GuestEntry), never around it', () => {
  const be = new TestBackend();
  let inside = false, entries = 0;
  const enter: GuestEntry = (work) => { entries++; inside = true; try { return work(); } finally { inside = false; } };
  const dev = new VirtioNet({ mac: MAC, backend: be, enter });
  const d = new FakeDriver(dev);
  d.init();
  const { head } = d.submit(0, [{ writeLen: RX_BUF }]);
  // Every guest address the device touches is translated inside the entry (the VMM's hostPage hook counts those outside).
  let outside = 0, inside2 = 0;
  (d.mem as { hostPage?: (gpa: number, write: boolean) => number }).hostPage = (gpa) => {
    if (inside) inside2++; else outside++;
    return (gpa - FAKE_RAM_BASE) & ~4095;
  };
  be.onReceive(frame(100, 1));
  assert.equal(entries, 1, 'the frame entered the VM once');
  assert.deepEqual(d.used(0), [{ id: head, len: VIRTIO_NET_HDR_LEN + 100 }]);
  assert.equal(outside, 0, 'no guest access outside the entry');
  assert.ok(inside2 > 0, 'the delivery went through hostPage');
});
