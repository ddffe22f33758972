/**
 * virtio-blk through the virtio-mmio transport, driven by the fake driver
 * (tests/helpers/virtio-driver.ts) against an in-memory disk: features
 * and configuration space, reads and writes in several buffer layouts,
 * flush, GET_ID, discard and write zeroes, and every way a request can be
 * refused (IOERR / UNSUPP) or be malformed (DEVICE_NEEDS_RESET). Then the
 * -drive / -device options, with raw and qcow2 files.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeDriver, type FakeBuffer } from '../helpers/virtio-driver.js';
import {
  VirtioBlk, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP,
} from '../../src/devices/virtio/blk.js';
import type { BlockBackend } from '../../src/devices/virtio/block-backend.js';
import { STATUS_DEVICE_NEEDS_RESET } from '../../src/devices/virtio/mmio.js';
import { buildDevices, type DeviceOptions } from '../../src/vmm/device-builder.js';
import { nodeDeviceServices } from '../../src/host/node-vm-services.js';
import { parseQemuOpts, OptsError } from '../../src/vmm/qemu-opts.js';
import { ImageError } from '../../src/images/errors.js';
import '../../src/vmm/dev-blk.js';

const SECTORS = 2048; // a 1 MiB disk

/** An in-memory disk that records what the device asked of it. */
class MemDisk implements BlockBackend {
  readonly data: Uint8Array;
  flushes = 0;
  discards: [number, number][] = [];
  zeroes: [number, number, boolean][] = [];
  failReads = false;
  closed = false;
  constructor(readonly size: number, readonly readOnly = false) {
    this.data = new Uint8Array(size);
    for (let i = 0; i < size; i++) this.data[i] = (i * 13 + (i >> 9)) & 0xff;
  }
  read(o: number, b: Uint8Array): void { if (this.failReads) throw new Error('host read failed'); b.set(this.data.subarray(o, o + b.length)); }
  write(o: number, d: Uint8Array): void { this.data.set(d, o); }
  flush(): void { this.flushes++; }
  discard(o: number, l: number): void { this.discards.push([o, l]); }
  writeZeroes(o: number, l: number, unmap: boolean): void { this.zeroes.push([o, l, unmap]); this.data.fill(0, o, o + l); }
  close(): void { this.closed = true; }
}

function header(type: number, sector: number, len = 16): Uint8Array {
  const h = new Uint8Array(len), dv = new DataView(h.buffer);
  if (len >= 4) dv.setUint32(0, type, true);
  if (len >= 16) { dv.setUint32(8, sector % 4294967296, true); dv.setUint32(12, Math.floor(sector / 4294967296), true); }
  return h;
}

function segment(sector: number, count: number, flags: number): Uint8Array {
  const s = new Uint8Array(16), dv = new DataView(s.buffer);
  dv.setUint32(0, sector, true); dv.setUint32(8, count, true); dv.setUint32(12, flags, true);
  return s;
}

function setup(disk: BlockBackend = new MemDisk(SECTORS * 512), featuresLo: number | null = null, opts = {}): { d: FakeDriver; dev: VirtioBlk } {
  const dev = new VirtioBlk(disk, opts);
  const d = new FakeDriver(dev, 16 * 1024 * 1024);
  d.init(featuresLo);
  return { d, dev };
}

/** Posts one request made of `bufs` (the last must be writable: the status); returns status, used length and writable addresses. */
function request(d: FakeDriver, bufs: FakeBuffer[]): { status: number; len: number; addrs: number[] } {
  const { writeAddrs } = d.submit(0, bufs);
  const used = d.used(0);
  assert.equal(used.length, 1, 'one request completed');
  const last = bufs[bufs.length - 1]!;
  const statusAddr = writeAddrs[writeAddrs.length - 1]! + (last.writeLen ?? 1) - 1;
  return { status: d.read(statusAddr, 1)[0]!, len: used[0]!.len, addrs: writeAddrs };
}

const read = (d: FakeDriver, sector: number, n: number): { status: number; data: Uint8Array; len: number } => {
  const r = request(d, [{ data: header(VIRTIO_BLK_T_IN, sector) }, { writeLen: n }, { writeLen: 1 }]);
  return { status: r.status, len: r.len, data: d.read(r.addrs[0]!, n) };
};
const write = (d: FakeDriver, sector: number, data: Uint8Array): number =>
  request(d, [{ data: header(VIRTIO_BLK_T_OUT, sector) }, { data }, { writeLen: 1 }]).status;

function cfg32(d: FakeDriver, off: number): number { return d.reg(0x100 + off); }

test('virtio-blk is device 2 with capacity, size_max, seg_max, blk_size and its features', () => {
  const { d } = setup();
  assert.equal(d.reg(0x008), 2);
  d.setReg(0x14, 0);
  const lo = d.reg(0x10);
  for (const f of [VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES]) {
    assert.ok(lo & (1 << f), `feature ${f} offered`);
  }
  assert.equal(lo & (1 << VIRTIO_BLK_F_RO), 0);
  assert.equal(lo & (1 << 12), 0, 'no multiqueue');
  assert.equal(cfg32(d, 0), SECTORS);
  assert.equal(cfg32(d, 4), 0);
  assert.equal(cfg32(d, 8), 65536, 'size_max');
  assert.equal(cfg32(d, 12), 254, 'seg_max');
  assert.equal(cfg32(d, 20), 512, 'blk_size');
  assert.ok(cfg32(d, 36) > 0 && cfg32(d, 40) > 0, 'max_discard_sectors / seg');
  assert.ok(cfg32(d, 48) > 0 && cfg32(d, 52) > 0, 'max_write_zeroes_sectors / seg');
  const ro = setup(new MemDisk(SECTORS * 512, true)).d;
  ro.setReg(0x14, 0);
  const rlo = ro.reg(0x10);
  assert.ok(rlo & (1 << VIRTIO_BLK_F_RO));
  assert.equal(rlo & ((1 << VIRTIO_BLK_F_DISCARD) | (1 << VIRTIO_BLK_F_WRITE_ZEROES)), 0);
});

test('reads and writes: data and status, used length, several buffer layouts', () => {
  const disk = new MemDisk(SECTORS * 512), { d, dev } = setup(disk);
  const r = read(d, 3, 1024);
  assert.equal(r.status, VIRTIO_BLK_S_OK);
  assert.equal(r.len, 1025, 'data plus status');
  assert.deepEqual(r.data, disk.data.subarray(1536, 2560));
  const data = new Uint8Array(2048).map((_, i) => i * 7);
  assert.equal(write(d, 100, data), VIRTIO_BLK_S_OK);
  assert.deepEqual(disk.data.subarray(51200, 53248), data);
  // Data split over several buffers.
  const w = request(d, [{ data: header(VIRTIO_BLK_T_OUT, 10) }, { data: data.subarray(0, 512) }, { data: data.subarray(512, 1536) }, { writeLen: 1 }]);
  assert.equal(w.status, VIRTIO_BLK_S_OK);
  assert.equal(w.len, 1);
  assert.deepEqual(disk.data.subarray(5120, 6656), data.subarray(0, 1536));
  const s = request(d, [{ data: header(VIRTIO_BLK_T_IN, 10) }, { writeLen: 512 }, { writeLen: 1024 }, { writeLen: 1 }]);
  assert.deepEqual([...d.read(s.addrs[0]!, 512), ...d.read(s.addrs[1]!, 1024)], [...data.subarray(0, 1536)]);
  // Header and data in one buffer; data and status in one buffer.
  const hd = new Uint8Array(16 + 512);
  hd.set(header(VIRTIO_BLK_T_OUT, 20)); hd.fill(0xab, 16);
  assert.equal(request(d, [{ data: hd }, { writeLen: 1 }]).status, VIRTIO_BLK_S_OK);
  assert.ok(disk.data.subarray(20 * 512, 21 * 512).every((b) => b === 0xab));
  const ds = request(d, [{ data: header(VIRTIO_BLK_T_IN, 20) }, { writeLen: 513 }]);
  assert.equal(ds.status, VIRTIO_BLK_S_OK);
  assert.ok(d.read(ds.addrs[0]!, 512).every((b) => b === 0xab));
  // The last sector is readable and writable.
  assert.equal(read(d, SECTORS - 1, 512).status, VIRTIO_BLK_S_OK);
  assert.equal(write(d, SECTORS - 1, new Uint8Array(512)), VIRTIO_BLK_S_OK);
  assert.equal(dev.ioErrors, 0);
  assert.equal(d.status & STATUS_DEVICE_NEEDS_RESET, 0);
  assert.ok(d.canariesIntact());
});

test('out-of-range sectors, unaligned lengths and short headers complete with IOERR', () => {
  const disk = new MemDisk(SECTORS * 512), { d } = setup(disk);
  const before = disk.data.slice();
  assert.equal(read(d, SECTORS, 512).status, VIRTIO_BLK_S_IOERR, 'first sector past the end');
  assert.equal(read(d, SECTORS - 1, 1024).status, VIRTIO_BLK_S_IOERR, 'runs past the end');
  assert.equal(read(d, 2 ** 40, 512).status, VIRTIO_BLK_S_IOERR, 'huge sector');
  assert.equal(read(d, 2 ** 63, 512).status, VIRTIO_BLK_S_IOERR, 'sector beyond 2^53');
  assert.equal(read(d, 0, 100).status, VIRTIO_BLK_S_IOERR, 'not a multiple of 512');
  assert.equal(write(d, SECTORS - 1, new Uint8Array(1024)), VIRTIO_BLK_S_IOERR);
  assert.equal(write(d, 0, new Uint8Array(513)), VIRTIO_BLK_S_IOERR);
  assert.equal(request(d, [{ data: header(VIRTIO_BLK_T_IN, 0, 8) }, { writeLen: 513 }]).status, VIRTIO_BLK_S_IOERR, '8-byte header');
  assert.equal(request(d, [{ writeLen: 1 }]).status, VIRTIO_BLK_S_IOERR, 'no header at all');
  assert.deepEqual(disk.data, before, 'nothing written');
  assert.equal(d.status & STATUS_DEVICE_NEEDS_RESET, 0, 'still healthy');
  assert.equal(read(d, 0, 512).status, VIRTIO_BLK_S_OK);
});

test('a read-only disk fails writes, discards and write-zeroes with IOERR and is not modified', () => {
  const disk = new MemDisk(SECTORS * 512, true), { d } = setup(disk);
  const before = disk.data.slice();
  assert.equal(write(d, 0, new Uint8Array(512).fill(1)), VIRTIO_BLK_S_IOERR);
  for (const t of [VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES]) {
    const st = request(d, [{ data: header(t, 0) }, { data: segment(0, 8, 0) }, { writeLen: 1 }]).status;
    assert.notEqual(st, VIRTIO_BLK_S_OK);
  }
  assert.deepEqual(disk.data, before);
  assert.equal(read(d, 0, 512).status, VIRTIO_BLK_S_OK);
});

test('flush reaches the backend; without VIRTIO_BLK_F_FLUSH every write is flushed', () => {
  const disk = new MemDisk(SECTORS * 512), { d } = setup(disk);
  assert.equal(request(d, [{ data: header(VIRTIO_BLK_T_FLUSH, 0) }, { writeLen: 1 }]).status, VIRTIO_BLK_S_OK);
  assert.equal(disk.flushes, 1);
  write(d, 0, new Uint8Array(512));
  assert.equal(disk.flushes, 1, 'writeback cache: no flush per write');
  const disk2 = new MemDisk(SECTORS * 512);
  d.setReg(0x14, 0);
  const all = d.reg(0x10);
  const { d: d2 } = setup(disk2, all & ~(1 << VIRTIO_BLK_F_FLUSH));
  write(d2, 0, new Uint8Array(512));
  assert.equal(disk2.flushes, 1, 'writethrough: flushed before completion');
});

test('GET_ID returns the serial, NUL-padded to 20 bytes', () => {
  const { d } = setup(undefined, null, { serial: 'tsvm-disk-0' });
  const r = request(d, [{ data: header(VIRTIO_BLK_T_GET_ID, 0) }, { writeLen: 20 }, { writeLen: 1 }]);
  assert.equal(r.status, VIRTIO_BLK_S_OK);
  assert.equal(r.len, 21);
  assert.equal(Buffer.from(d.read(r.addrs[0]!, 20)).toString('latin1'), 'tsvm-disk-0'.padEnd(20, '\0'));
  const long = setup(undefined, null, { serial: 'x'.repeat(30) }).d;
  const r2 = request(long, [{ data: header(VIRTIO_BLK_T_GET_ID, 0) }, { writeLen: 20 }, { writeLen: 1 }]);
  assert.equal(Buffer.from(long.read(r2.addrs[0]!, 20)).toString(), 'x'.repeat(20));
});

test('discard and write zeroes: segments, flags and limits', () => {
  const disk = new MemDisk(SECTORS * 512), { d } = setup(disk);
  const dz = (t: number, ...segs: Uint8Array[]): number =>
    request(d, [{ data: header(t, 0) }, ...segs.map((s) => ({ data: s })), { writeLen: 1 }]).status;
  assert.equal(dz(VIRTIO_BLK_T_DISCARD, segment(8, 16, 0), segment(100, 4, 0)), VIRTIO_BLK_S_OK);
  assert.deepEqual(disk.discards, [[4096, 8192], [51200, 2048]]);
  assert.equal(dz(VIRTIO_BLK_T_WRITE_ZEROES, segment(2, 3, 1)), VIRTIO_BLK_S_OK);
  assert.deepEqual(disk.zeroes, [[1024, 1536, true]]);
  assert.equal(read(d, 2, 1536).data.every((b) => b === 0), true);
  assert.equal(dz(VIRTIO_BLK_T_DISCARD, segment(0, 1, 1)), VIRTIO_BLK_S_UNSUPP, 'unmap flag on a discard');
  assert.equal(dz(VIRTIO_BLK_T_WRITE_ZEROES, segment(0, 1, 2)), VIRTIO_BLK_S_UNSUPP, 'unknown flag');
  assert.equal(dz(VIRTIO_BLK_T_DISCARD, segment(SECTORS - 1, 2, 0)), VIRTIO_BLK_S_IOERR, 'past the end');
  assert.equal(dz(VIRTIO_BLK_T_DISCARD, new Uint8Array(8)), VIRTIO_BLK_S_IOERR, 'truncated segment');
  assert.equal(dz(VIRTIO_BLK_T_WRITE_ZEROES, segment(0, 8, 0), segment(SECTORS, 1, 0)), VIRTIO_BLK_S_IOERR, 'one bad segment fails all');
  assert.equal(disk.zeroes.length, 1, 'nothing applied from the failed request');
  assert.equal(dz(99), VIRTIO_BLK_S_UNSUPP, 'unknown request type');
  // Not negotiated -> unsupported.
  d.setReg(0x14, 0);
  const all = d.reg(0x10);
  const { d: d2 } = setup(new MemDisk(SECTORS * 512), all & ~((1 << VIRTIO_BLK_F_DISCARD) | (1 << VIRTIO_BLK_F_WRITE_ZEROES)));
  for (const t of [VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES]) {
    assert.equal(request(d2, [{ data: header(t, 0) }, { data: segment(0, 1, 0) }, { writeLen: 1 }]).status, VIRTIO_BLK_S_UNSUPP);
  }
  // discard=ignore: accepted, not passed on.
  const quiet = new MemDisk(SECTORS * 512), { d: d3 } = setup(quiet, null, { discard: false });
  assert.equal(request(d3, [{ data: header(VIRTIO_BLK_T_DISCARD, 0) }, { data: segment(0, 8, 0) }, { writeLen: 1 }]).status, VIRTIO_BLK_S_OK);
  assert.equal(quiet.discards.length, 0);
});

test('a host I/O error fails only that request; a chain without a status byte resets the device', () => {
  const disk = new MemDisk(SECTORS * 512), { d, dev } = setup(disk);
  disk.failReads = true;
  assert.equal(read(d, 0, 512).status, VIRTIO_BLK_S_IOERR);
  assert.equal(dev.ioErrors, 1);
  assert.match(dev.lastError, /host read failed/);
  disk.failReads = false;
  assert.equal(read(d, 0, 512).status, VIRTIO_BLK_S_OK);
  d.submit(0, [{ data: header(VIRTIO_BLK_T_IN, 0) }]);
  assert.ok(d.status & STATUS_DEVICE_NEEDS_RESET, 'no device-writable byte: DEVICE_NEEDS_RESET');
  assert.match(d.transport.lastError, /status byte/);
  assert.ok(d.canariesIntact());
});

// ---- -drive / -device options ----

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-blk-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function opts(drives: string[], devices: string[] = []): DeviceOptions {
  return { drives: drives.map((t) => parseQemuOpts(t, 'file')), devices: devices.map((t) => parseQemuOpts(t)), netdevs: [] };
}

function rawFile(name: string, fill: number, size = 1024 * 1024): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, Buffer.alloc(size, fill));
  return f;
}

test('-drive if=virtio and if=none + -device virtio-blk-device build block devices', () => {
  const a = rawFile('a.raw', 1), b = rawFile('b.raw', 2);
  const built = buildDevices(opts([`file=${a},format=raw,if=virtio`, `file=${b},if=none,id=d1,readonly=on`], ['virtio-blk-device,drive=d1,serial=second']), nodeDeviceServices);
  assert.equal(built.devices.length, 2);
  const [da, db] = built.devices as VirtioBlk[];
  assert.ok(da instanceof VirtioBlk && db instanceof VirtioBlk);
  assert.equal(da.capacity, 2048);
  assert.equal(da.backend.readOnly, false);
  assert.equal(db.backend.readOnly, true);
  const fd = new FakeDriver(db, 1024 * 1024);
  fd.init();
  const r = request(fd, [{ data: header(VIRTIO_BLK_T_GET_ID, 0) }, { writeLen: 20 }, { writeLen: 1 }]);
  assert.equal(Buffer.from(fd.read(r.addrs[0]!, 6)).toString(), 'second');
  for (const c of built.cleanups) c();
});

test('snapshot=on keeps guest writes in memory; the file is never modified', () => {
  const f = rawFile('snap.raw', 7);
  const built = buildDevices(opts([`file=${f},format=raw,snapshot=on`]), nodeDeviceServices);
  const dev = built.devices[0] as VirtioBlk, d = new FakeDriver(dev, 1024 * 1024);
  d.init();
  assert.equal(write(d, 0, new Uint8Array(512).fill(9)), VIRTIO_BLK_S_OK);
  assert.ok(read(d, 0, 512).data.every((x) => x === 9));
  for (const c of built.cleanups) c();
  assert.ok(fs.readFileSync(f).every((x) => x === 7));
});

test('a qcow2 drive written through the device checks clean in qemu-img', () => {
  const f = path.join(dir, 'dev.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', f, '4M']);
  const built = buildDevices(opts([`file=${f}`]), nodeDeviceServices); // format probed
  const dev = built.devices[0] as VirtioBlk, d = new FakeDriver(dev, 4 * 1024 * 1024);
  d.init();
  const data = new Uint8Array(128 * 1024).map((_, i) => i & 0xff);
  assert.equal(write(d, 77, data), VIRTIO_BLK_S_OK);
  assert.equal(request(d, [{ data: header(VIRTIO_BLK_T_WRITE_ZEROES, 0) }, { data: segment(1024, 2048, 1) }, { writeLen: 1 }]).status, VIRTIO_BLK_S_OK);
  assert.equal(request(d, [{ data: header(VIRTIO_BLK_T_FLUSH, 0) }, { writeLen: 1 }]).status, VIRTIO_BLK_S_OK);
  assert.deepEqual(read(d, 77, data.length).data, data);
  for (const c of built.cleanups) c();
  execFileSync('qemu-img', ['check', '-q', f]);
  execFileSync('qemu-io', ['-c', `read -P 0 512K 1M`, '-c', `read -v ${77 * 512} 16`, f], { stdio: 'pipe' });
});

test('bad -drive / -device options are OptsErrors; a missing image is a one-line ImageError', () => {
  const f = rawFile('c.raw', 0);
  const fails = (o: DeviceOptions, re: RegExp, type: typeof OptsError | typeof ImageError = OptsError): void => {
    assert.throws(() => buildDevices(o, nodeDeviceServices), (e: unknown) => {
      assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
      assert.doesNotMatch((e as Error).message, /\n/);
      assert.match((e as Error).message, re);
      return true;
    });
  };
  fails(opts([`file=${f},format=vmdk`]), /format=vmdk is not supported/);
  fails(opts([`file=${f},bogus=1`]), /unsupported property 'bogus'/);
  fails(opts(['format=raw']), /file=PATH is required/);
  fails(opts([`file=${f},readonly=maybe`]), /not on\/off/);
  fails(opts([`file=${path.join(dir, 'nope.raw')}`]), /nope\.raw: cannot open: no such file or directory/, ImageError);
  fails(opts([`file=${f},if=none,id=x`], ['virtio-blk-device']), /drive=ID is required/);
  fails(opts([`file=${f},if=none,id=x`], ['virtio-blk-device,drive=y']), /no -drive with id 'y'/);
  fails(opts([`file=${f},if=none,id=x`], ['virtio-blk-device,drive=x', 'virtio-blk-device,drive=x']), /more than one device/);
  fails(opts([`file=${f},id=x`], ['virtio-blk-device,drive=x']), /already has its own device/);
  fails(opts([`file=${f},if=none,id=x`], ['virtio-blk-device,drive=x,queue-size=4']), /unsupported property 'queue-size'/);
});
