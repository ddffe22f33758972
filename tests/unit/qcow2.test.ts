/**
 * Disk images against QEMU's own tools: qcow2 images made by `qemu-img
 * create` (several cluster sizes and refcount widths, version 2 and 3),
 * overlays on raw and qcow2 backing files, `qemu-img convert -c`
 * compressed images and zero clusters written by `qemu-io`. tsvm reads
 * them, writes to them (random operations checked against a model), and
 * afterwards `qemu-img check` must find no leaks or corruptions and
 * `qemu-img convert -O raw` must show exactly the data written; backing
 * files stay untouched. Corrupt, truncated and unsupported images fail
 * at open time with a one-line ImageError.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDiskImage, Qcow2Image } from '../../src/images/qcow2.js';
import { RawImage } from '../../src/images/raw-image.js';
import { nodeFileHost } from '../../src/host/file-io.js';
import { ImageError } from '../../src/images/errors.js';
import { SnapshotOverlay, type BlockBackend } from '../../src/devices/virtio/block-backend.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-qcow2-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;

function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const p = (name: string): string => path.join(dir, name);

/** `qemu-img check` as JSON; asserts a clean image. */
function checkClean(file: string): { 'allocated-clusters': number; 'image-end-offset': number } {
  let out: string;
  try { out = qemuImg('check', '--output=json', file); } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    assert.fail(`qemu-img check ${file} failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
  const r = JSON.parse(out) as Record<string, number>;
  assert.equal(r['corruptions'] ?? 0, 0, 'no corruptions');
  assert.equal(r['leaks'] ?? 0, 0, 'no leaked clusters');
  assert.equal(r['check-errors'] ?? 0, 0, 'no check errors');
  return r as unknown as { 'allocated-clusters': number; 'image-end-offset': number };
}

/** The image's contents according to `qemu-img convert -O raw`. */
function qemuRaw(file: string): Buffer {
  const out = p(`conv-${crypto.randomBytes(4).toString('hex')}.raw`);
  qemuImg('convert', '-O', 'raw', file, out);
  const b = fs.readFileSync(out);
  fs.rmSync(out);
  return b;
}

/** A fast seeded generator (32-bit LCG; the pattern only needs to be reproducible). */
class Lcg {
  constructor(private s: number) {}
  /** Uniform-ish integer in [0, n). */
  below(n: number): number { this.s = (Math.imul(this.s, 1103515245) + 12345) >>> 0; return Math.floor((this.s / 4294967296) * n); }
}

function sha(b: Uint8Array): string { return crypto.createHash('sha256').update(b).digest('hex'); }

/** A deterministic pattern, partly compressible, with zero runs. */
function pattern(n: number, seed: number): Buffer {
  const rng = new Lcg(seed), b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4096) {
    const kind = rng.below(4);
    if (kind === 0) continue; // zeros
    for (let j = i; j < Math.min(n, i + 4096); j++) b[j] = kind === 1 ? (j >> 9) & 0xff : rng.below(kind === 2 ? 8 : 256);
  }
  return b;
}

function open(file: string, readOnly = false, format?: 'raw' | 'qcow2'): BlockBackend {
  return openDiskImage(nodeFileHost, file, { readOnly, ...(format ? { format } : {}) });
}

function readAll(img: BlockBackend): Buffer {
  const b = Buffer.alloc(img.size);
  img.read(0, b);
  return b;
}

/**
 * Random writes, write-zeroes, discards and reads over `img`, checked
 * against `model` (the expected contents, updated in place).
 */
function exercise(img: BlockBackend, model: Buffer, seed: number, ops: number): void {
  const rng = new Lcg(seed), size = img.size;
  for (let k = 0; k < ops; k++) {
    const op = rng.below(100), off = rng.below(size / 512) * 512, len = Math.min(size - off, (1 + rng.below(300)) * 512);
    if (op < 55) {
      const d = Buffer.alloc(len);
      for (let i = 0; i < len; i += 512) d.fill(rng.below(256), i, i + 512 - rng.below(256));
      img.write(off, d); d.copy(model, off);
    } else if (op < 70) {
      img.writeZeroes(off, len, rng.below(2) === 1); model.fill(0, off, off + len);
    } else if (op < 80) {
      img.discard(off, len); // contents become unspecified: take what reads back
      const b = Buffer.alloc(len); img.read(off, b); b.copy(model, off);
    } else {
      const b = Buffer.alloc(len); img.read(off, b);
      assert.ok(b.equals(model.subarray(off, off + len)), `op ${k}: read ${off}+${len} differs from the model`);
    }
  }
  assert.ok(readAll(img).equals(model), 'whole disk matches the model');
}

test('qemu-img is installed', () => {
  assert.match(qemuImg('--version'), /qemu-img version/, 'apt-get install qemu-utils');
});

test('a fresh qcow2 reads as zeros; writes are visible to qemu-img and the image checks clean', () => {
  const f = p('fresh.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', f, '64M');
  const img = open(f);
  assert.ok(img instanceof Qcow2Image);
  assert.equal(img.size, 64 * MiB);
  assert.ok(readAll(img).every((b) => b === 0));
  const data = pattern(300_000, 1);
  img.write(12345 * 512, data);
  img.write(64 * MiB - 512, Buffer.alloc(512, 0xee));
  const back = Buffer.alloc(data.length);
  img.read(12345 * 512, back);
  assert.ok(back.equals(data));
  img.flush();
  img.close();
  checkClean(f);
  const raw = qemuRaw(f);
  assert.ok(raw.subarray(12345 * 512, 12345 * 512 + data.length).equals(data));
  assert.equal(raw[64 * MiB - 1], 0xee);
  execFileSync('qemu-io', ['-c', 'read -P 0xee 67108352 512', f], { stdio: 'pipe' });
});

for (const [label, opts, version] of [
  ['64 KiB clusters, 16-bit refcounts (the default)', 'cluster_size=65536', 3],
  ['512-byte clusters', 'cluster_size=512', 3],
  ['512-byte clusters, 64-bit refcounts', 'cluster_size=512,refcount_bits=64', 3],
  ['4 KiB clusters, 1-bit refcounts', 'cluster_size=4096,refcount_bits=1', 3],
  ['2 MiB clusters, 8-bit refcounts', 'cluster_size=2M,refcount_bits=8', 3],
  ['version 2 (compat=0.10)', 'compat=0.10', 2],
] as const) {
  test(`random I/O on a qcow2 image with ${label} matches a model and checks clean`, () => {
    const f = p(`rand-${opts}.qcow2`);
    qemuImg('create', '-q', '-f', 'qcow2', '-o', opts, f, '6M');
    const img = open(f) as Qcow2Image;
    assert.equal(img.header.version, version);
    const model = Buffer.alloc(img.size);
    exercise(img, model, 7, 1200);
    img.close();
    checkClean(f);
    assert.ok(qemuRaw(f).equals(model), 'qemu-img sees what tsvm wrote');
    const again = open(f, true); // reopen read-only
    assert.ok(readAll(again).equals(model));
    again.close();
  });
}

test('the refcount table grows (and moves) when the image outgrows it', () => {
  const f = p('grow.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512,refcount_bits=64', f, '24M');
  const before = fs.readFileSync(f).readUInt32BE(52);
  const img = open(f), chunk = Buffer.alloc(64 * 1024);
  for (let off = 0; off < img.size; off += chunk.length) { chunk.fill((off >> 16) & 0xff); img.write(off, chunk); }
  img.close();
  const hdr = fs.readFileSync(f).subarray(0, 64);
  assert.notEqual(hdr.readUInt32BE(52), before, 'refcount table moved');
  assert.ok(hdr.readUInt32BE(56) > 1, 'refcount table spans several clusters');
  checkClean(f);
  const raw = qemuRaw(f);
  for (let off = 0; off < raw.length; off += 64 * 1024) assert.equal(raw[off + 100], (off >> 16) & 0xff);
});

test('overlays: backing file raw and qcow2 (-F raw|qcow2), copy-on-write, the base stays unchanged', () => {
  const base = p('base.raw'), baseData = pattern(4 * MiB, 3);
  fs.writeFileSync(base, baseData);
  const baseQ = p('base.qcow2');
  qemuImg('convert', '-O', 'qcow2', base, baseQ);
  const baseQSum = sha(fs.readFileSync(baseQ));
  for (const [fmt, backing] of [['raw', base], ['qcow2', baseQ]] as const) {
    const ov = p(`overlay-${fmt}.qcow2`);
    qemuImg('create', '-q', '-f', 'qcow2', '-b', backing, '-F', fmt, ov, '5M'); // bigger than its base
    const img = open(ov);
    const model = Buffer.concat([baseData, Buffer.alloc(MiB)]);
    assert.ok(readAll(img).equals(model), 'reads fall through to the base (zeros past its end)');
    img.write(1000 * 512, Buffer.alloc(512, 0x5a)); // partial cluster: copy-on-write from the base
    Buffer.alloc(512, 0x5a).copy(model, 1000 * 512);
    exercise(img, model, 11, 800);
    img.close();
    checkClean(ov);
    assert.ok(qemuRaw(ov).equals(model));
  }
  assert.ok(fs.readFileSync(base).equals(baseData), 'raw base unchanged');
  assert.equal(sha(fs.readFileSync(baseQ)), baseQSum, 'qcow2 base unchanged');
});

test('a relative backing file name is resolved against the overlay\'s directory', () => {
  const sub = p('rel');
  fs.mkdirSync(path.join(sub, 'disks'), { recursive: true });
  fs.writeFileSync(path.join(sub, 'base.img'), Buffer.alloc(MiB, 0x42));
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', '../base.img', '-F', 'raw', 'disks/top.qcow2'], { cwd: sub });
  const img = open(path.join(sub, 'disks', 'top.qcow2'), true);
  const b = Buffer.alloc(4096);
  img.read(MiB - 4096, b);
  assert.ok(b.every((x) => x === 0x42));
  img.close();
});

test('without a backing format extension the backing file\'s format is probed', () => {
  const base = p('probe-base.qcow2'), ov = p('probe-top.qcow2');
  fs.writeFileSync(p('probe-src.raw'), Buffer.alloc(MiB, 0x3c));
  qemuImg('convert', '-O', 'qcow2', p('probe-src.raw'), base);
  qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', ov);
  const b = fs.readFileSync(ov), at = b.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
  assert.ok(at > 0 && at < 4096, 'backing format extension present');
  b.writeUInt32BE(0x7473766d, at); // an unknown extension type: ignored
  fs.writeFileSync(ov, b);
  const img = open(ov, true), got = Buffer.alloc(4096);
  img.read(4096, got);
  assert.ok(got.every((x) => x === 0x3c), 'qcow2 base recognised by its magic');
  img.close();
});

test('compressed clusters (qemu-img convert -c) read back; overwriting them frees their space cleanly', () => {
  const src = p('comp-src.raw'), data = pattern(3 * MiB, 5);
  fs.writeFileSync(src, data);
  for (const cs of ['512', '4096', '65536']) {
    const f = p(`comp-${cs}.qcow2`);
    qemuImg('convert', '-c', '-O', 'qcow2', '-o', `cluster_size=${cs}`, src, f);
    const img = open(f);
    assert.ok(readAll(img).equals(data), `cluster size ${cs}: decompressed data matches`);
    const model = Buffer.from(data);
    exercise(img, model, 13, 600);
    img.close();
    checkClean(f);
    assert.ok(qemuRaw(f).equals(model));
  }
});

test('zero clusters written by qemu-io read as zeros even over a backing file; tsvm\'s zero clusters read as zeros in QEMU', () => {
  const base = p('zbase.raw');
  fs.writeFileSync(base, Buffer.alloc(2 * MiB, 0x77));
  const f = p('zero.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', f);
  execFileSync('qemu-io', ['-c', 'write -z 0 1M', f], { stdio: 'pipe' });
  const img = open(f);
  const b = readAll(img);
  assert.ok(b.subarray(0, MiB).every((x) => x === 0) && b.subarray(MiB).every((x) => x === 0x77));
  img.writeZeroes(MiB, 512 * 1024, false);
  img.write(MiB + 100, Buffer.from([1, 2, 3]));
  img.close();
  checkClean(f);
  const raw = qemuRaw(f);
  assert.deepEqual([...raw.subarray(MiB + 99, MiB + 104)], [0, 1, 2, 3, 0]);
  assert.ok(raw.subarray(MiB + 512 * 1024).every((x) => x === 0x77));
  assert.equal(raw.subarray(0, MiB + 512 * 1024).filter((x) => x !== 0).length, 3);
});

test('discard and write-zeroes with unmap give whole clusters back', () => {
  const f = p('discard.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', f, '8M');
  const img = open(f);
  img.write(0, pattern(8 * MiB, 9).fill(1, 0, 4096));
  const full = checkClean(f)['allocated-clusters'];
  img.discard(64 * 1024, 3 * MiB); // 48 whole clusters
  img.writeZeroes(4 * MiB, MiB, true); // 16 more
  img.writeZeroes(6 * MiB, MiB, false); // stays allocated (preallocated zero clusters)
  const b = Buffer.alloc(MiB);
  img.read(4 * MiB, b);
  assert.ok(b.every((x) => x === 0));
  img.read(6 * MiB, b);
  assert.ok(b.every((x) => x === 0));
  img.close();
  assert.equal(checkClean(f)['allocated-clusters'], full - 64);
  const raw = qemuRaw(f);
  assert.ok(raw.subarray(4 * MiB, 5 * MiB).every((x) => x === 0) && raw.subarray(6 * MiB, 7 * MiB).every((x) => x === 0));
});

test('probing: qcow2 magic opens as qcow2, anything else as raw; a probed raw image refuses a qcow2 header in sector 0', () => {
  const q = p('probe.qcow2'), r = p('probe.raw');
  qemuImg('create', '-q', '-f', 'qcow2', q, '1M');
  fs.writeFileSync(r, Buffer.alloc(MiB, 1));
  const a = open(q), b = open(r);
  assert.ok(a instanceof Qcow2Image);
  assert.ok(b instanceof RawImage);
  assert.throws(() => b.write(0, fs.readFileSync(q).subarray(0, 512)), /probed as raw/);
  b.write(512, fs.readFileSync(q).subarray(0, 512)); // elsewhere is fine
  a.close(); b.close();
  const explicit = open(r, false, 'raw');
  explicit.write(0, fs.readFileSync(q).subarray(0, 512)); // format=raw given: allowed
  explicit.close();
  const asRaw = open(q, true, 'raw'); // format=raw on a qcow2 file serves its bytes
  assert.equal(asRaw.size, fs.statSync(q).size - (fs.statSync(q).size % 512));
  asRaw.close();
});

test('read-only images refuse writes; snapshot overlays never touch the image', () => {
  const f = p('ro.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', f, '1M');
  const sum = sha(fs.readFileSync(f));
  const ro = open(f, true);
  assert.equal(ro.readOnly, true);
  assert.throws(() => ro.write(0, Buffer.alloc(512)), ImageError);
  ro.close();
  const snap = new SnapshotOverlay(open(f, true));
  snap.write(1000, Buffer.alloc(70_000, 9));
  snap.writeZeroes(2000, 100, true);
  const b = Buffer.alloc(80_000);
  snap.read(0, b);
  assert.equal(b[999], 0); assert.equal(b[1000], 9); assert.equal(b[2050], 0); assert.equal(b[70_999], 9); assert.equal(b[71_000], 0);
  snap.close();
  assert.equal(sha(fs.readFileSync(f)), sum);
});

test('persistent bitmaps: writing clears the auto-clear bit, so QEMU stops trusting them (data intact, no corruption)', () => {
  const f = p('bitmap.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', f, '2M');
  qemuImg('bitmap', '--add', f, 'b0');
  assert.equal(fs.readFileSync(f).readUInt32BE(92) & 1, 1, 'bitmaps auto-clear bit set');
  const img = open(f);
  img.write(65536, Buffer.alloc(4096, 0x61));
  img.close();
  assert.equal(fs.readFileSync(f).readUInt32BE(92), 0, 'auto-clear bits cleared (qcow2 spec, bytes 88-95)');
  let out: string;
  try { out = qemuImg('check', '--output=json', f); } catch (e) { out = (e as { stdout: string }).stdout; } // exit 3: leaks only
  const r = JSON.parse(out) as Record<string, number>;
  assert.equal(r['corruptions'] ?? 0, 0);
  assert.ok(qemuRaw(f).subarray(65536, 65536 + 4096).every((x) => x === 0x61));
});

test('internal snapshots: read-only works, writing is refused at open', () => {
  const f = p('snap.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', f, '1M');
  execFileSync('qemu-io', ['-c', 'write -P 0x33 0 64k', f], { stdio: 'pipe' });
  qemuImg('snapshot', '-c', 's1', f);
  const ro = open(f, true), b = Buffer.alloc(65536);
  ro.read(0, b);
  assert.ok(b.every((x) => x === 0x33));
  ro.close();
  assert.throws(() => open(f), /internal snapshots/);
});

/** Asserts that opening `file` fails with a one-line ImageError matching `re`. */
function openFails(file: string, re: RegExp, readOnly = false, format?: 'raw' | 'qcow2'): void {
  assert.throws(() => open(file, readOnly, format), (e: unknown) => {
    assert.ok(e instanceof ImageError, `expected ImageError, got ${String(e)}`);
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, re);
    return true;
  });
}

/** A copy of a fresh qcow2 with `patch` applied to its bytes. */
function patched(name: string, patch: (b: Buffer) => Buffer | void, createOpts: string[] = []): string {
  const f = p(name);
  qemuImg('create', '-q', '-f', 'qcow2', ...createOpts, f, '4M');
  execFileSync('qemu-io', ['-c', 'write -P 0x11 0 1M', f], { stdio: 'pipe' });
  const b = fs.readFileSync(f);
  fs.writeFileSync(f, patch(b) ?? b);
  return f;
}

test('corrupt, truncated and unsupported images fail at open with one clear line', () => {
  openFails(p('missing.qcow2'), /missing\.qcow2: cannot open: no such file or directory/);
  fs.writeFileSync(p('tiny.qcow2'), Buffer.from('QFI\xfb\0\0\0\x03', 'latin1'));
  openFails(p('tiny.qcow2'), /truncated qcow2 image/);
  fs.writeFileSync(p('notq.img'), Buffer.alloc(4096, 1));
  openFails(p('notq.img'), /not a qcow2 image \(bad magic\)/, false, 'qcow2');
  openFails(patched('v4.qcow2', (b) => { b.writeUInt32BE(4, 4); }), /unsupported qcow2 image: version 4/);
  openFails(patched('cbits.qcow2', (b) => { b.writeUInt32BE(30, 20); }), /cluster_bits 30 outside 9\.\.21/);
  openFails(patched('l1.qcow2', (b) => { b.writeUInt32BE(0, 36); }), /L1 table has 0 entries/);
  openFails(patched('l1off.qcow2', (b) => { b.writeUInt32BE(0x7fff0000, 44); }), /L1 table .* past end of file/);
  openFails(patched('unk.qcow2', (b) => { b.writeUInt32BE(1 << 7, 76); }), /unknown incompatible features 0x0*80/);
  openFails(patched('order.qcow2', (b) => { b.writeUInt32BE(7, 96); }), /refcount_order 7/);
  openFails(patched('trunc.qcow2', (b) => b.subarray(0, b.length - 300_000)), /truncated qcow2 image/);
  openFails(patched('enc.qcow2', (b) => { b.writeUInt32BE(1, 32); }), /encryption/);
  openFails(patched('ext.qcow2', () => {}, ['-o', 'extended_l2=on']), /extended L2 entries/);
  openFails(patched('zstd.qcow2', () => {}, ['-o', 'compression_type=zstd']), /compression type zstd/);
  openFails(patched('datafile.qcow2', (b) => { b.writeUInt32BE(4, 76); }), /external data file/);
  const base = p('gone.raw');
  fs.writeFileSync(base, Buffer.alloc(MiB));
  const ov = p('orphan.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'raw', ov);
  fs.rmSync(base);
  openFails(ov, /orphan\.qcow2: cannot open its backing file: .*gone\.raw: cannot open: no such file/);
  // Dirty or corrupt images may be read, not written.
  const dirty = patched('dirty.qcow2', (b) => { b.writeUInt32BE(1, 76); });
  openFails(dirty, /marked dirty/);
  open(dirty, true).close();
  const corrupt = patched('corrupt.qcow2', (b) => { b.writeUInt32BE(2, 76); });
  openFails(corrupt, /marked corrupt/);
  open(corrupt, true).close();
});

test('a corrupt L2 entry found mid-run is an ImageError for that request only', () => {
  const f = patched('badl2.qcow2', () => {});
  const img = open(f, true) as Qcow2Image;
  const b = fs.readFileSync(f), l1 = Number(b.readBigUInt64BE(40)), l2 = Number(b.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
  img.close();
  const bad = Buffer.from(b);
  bad.writeUInt32BE(0x12345, l2 + 4); // unaligned data cluster offset
  fs.writeFileSync(f, bad);
  const img2 = open(f, true);
  assert.throws(() => img2.read(0, Buffer.alloc(512)), /not cluster-aligned/);
  const ok = Buffer.alloc(512);
  img2.read(2 * MiB, ok); // other clusters still read
  img2.close();
});
