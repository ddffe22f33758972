/**
 * virtio-fs against bad input and on an overlay: malformed chains
 * (DEVICE_NEEDS_RESET), malformed requests and wrong node ids / handles
 * (errno replies), a guest-made symlink that would lead out of a
 * passthrough share, random requests (seeded), the OCI overlay backend
 * (copy-up, whiteouts, lower layers untouched), and the -fsdev / -device
 * virtio-fs-device options.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VirtioFs } from '../../src/devices/virtio/fs.js';
import * as P from '../../src/devices/virtio/fs-proto.js';
import { STATUS_DEVICE_NEEDS_RESET } from '../../src/devices/virtio/mmio.js';
import { passthroughBackend, overlayBackend } from '../../src/vmm/fs-host.js';
import { NodeHostOs } from '../../src/host/node-host-os.js';
import { buildDevices, type DeviceOptions } from '../../src/vmm/device-builder.js';
import { nodeDeviceServices } from '../../src/host/node-vm-services.js';
import { parseQemuOpts, OptsError } from '../../src/vmm/qemu-opts.js';
import { parseRunArgs } from '../../src/vmm/qemu-config.js';
import { FAKE_RAM_BASE } from '../helpers/virtio-driver.js';
import { Prng } from '../helpers/prng.js';
import { FuseDriver, cat, u32, u64, str } from '../helpers/fuse-driver.js';

const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-vfs-in-')));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

function share(): { f: FuseDriver; dev: VirtioFs; dir: string } {
  const dir = fs.mkdtempSync(path.join(tmp, `s${n++}-`));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello');
  const dev = new VirtioFs(passthroughBackend(new NodeHostOs(), dir, false), 'share');
  const f = new FuseDriver(dev);
  f.ok(P.FUSE_INIT, 0, u32(7, 41, 0, 0));
  return { f, dev, dir };
}

test('chains without a whole in header or without room for the out header mark the device NEEDS_RESET', () => {
  for (const bufs of [[{ data: new Uint8Array(20) }, { writeLen: 64 }], [{ data: new FuseDriver(share().dev).encode(P.FUSE_GETATTR, 1, u32(0, 0, 0, 0)) }, { writeLen: 8 }]]) {
    const { f } = share();
    f.drv.submit(1, bufs);
    assert.ok(f.drv.status & STATUS_DEVICE_NEEDS_RESET);
    assert.ok(f.drv.canariesIntact());
  }
  // A buffer outside guest RAM.
  const { f } = share();
  f.drv.writeDesc(1, 0, FAKE_RAM_BASE + f.drv.mem.size - 8, 64, 0, 0);
  f.drv.publish(1, 0);
  assert.ok(f.drv.status & STATUS_DEVICE_NEEDS_RESET);
  assert.ok(f.drv.canariesIntact());
  // A FORGET on the hiprio queue with a short body is ignored, not fatal.
  const g = share().f;
  assert.equal(g.send(P.FUSE_FORGET, 1, new Uint8Array(3)), 0);
  assert.equal(g.drv.status & STATUS_DEVICE_NEEDS_RESET, 0);
});

test('malformed requests, unknown node ids and handles get errno replies', () => {
  const { f } = share();
  const raw = (req: Uint8Array): number => {
    const { writeAddrs } = f.drv.submit(1, [{ data: req }, { writeLen: 256 }]);
    f.drv.used(1);
    return new DataView(f.drv.read(writeAddrs[0]!, 16).buffer).getInt32(4, true);
  };
  assert.equal(raw(f.encode(P.FUSE_GETATTR, 1, u32(0, 0, 0, 0), 4000)), -P.EINVAL, 'len past the chain');
  assert.equal(raw(f.encode(P.FUSE_GETATTR, 1, u32(0, 0, 0, 0), 12)), -P.EINVAL, 'len shorter than the header');
  assert.equal(f.call(P.FUSE_GETATTR, 1, u32(1)).error, -P.EINVAL, 'short fuse_getattr_in');
  assert.equal(f.call(P.FUSE_GETATTR, 1n << 62n, u32(0, 0, 0, 0)).error, -P.ESTALE);
  assert.equal(f.call(P.FUSE_GETATTR, 777, u32(0, 0, 0, 0)).error, -P.ESTALE);
  assert.equal(f.call(P.FUSE_LOOKUP, 1, new TextEncoder().encode('no-nul')).error, -P.EINVAL);
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('..')).error, -P.EINVAL);
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('a/b')).error, -P.EINVAL);
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('x'.repeat(300))).error, -P.ENAMETOOLONG);
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('hello.txt'), 20).error, -P.ERANGE, 'no room for fuse_entry_out');
  assert.equal(f.call(P.FUSE_READ, 1, cat(u64(99, 0), u32(10, 0), u64(0), u32(0, 0))).error, -P.EBADF);
  const [node] = [Number(f.ok(P.FUSE_LOOKUP, 1, str('hello.txt')).dv.getBigUint64(0, true))];
  const fh = Number(f.ok(P.FUSE_OPEN, node, u32(2, 0)).dv.getBigUint64(0, true));
  assert.equal(f.call(P.FUSE_WRITE, node, cat(u64(fh, 0), u32(100, 0), u64(0), u32(0, 0), new Uint8Array(10))).error, -P.EINVAL, 'size past the data');
  assert.equal(f.call(P.FUSE_WRITE, node, cat(u64(fh, 2 ** 60), u32(1, 0), u64(0), u32(0, 0), new Uint8Array(1))).error, -P.EINVAL, 'offset past 2^53');
  assert.equal(f.call(P.FUSE_READ, node, cat(u64(fh, 0), u32(1 << 30, 0), u64(0), u32(0, 0)), 3).body.length, 3, 'a read is cut to the room');
  assert.equal(f.call(P.FUSE_LINK, 1, cat(u64(12345), str('l'))).error, -P.ESTALE);
  assert.equal(f.drv.status & STATUS_DEVICE_NEEDS_RESET, 0);
});

test('a passthrough share cannot be left through a symlink the guest made', () => {
  const { f, dir } = share();
  const esc = Number(f.ok(P.FUSE_SYMLINK, 1, cat(str('esc'), str('/'))).dv.getBigUint64(0, true));
  assert.equal(f.call(P.FUSE_LOOKUP, esc, str('etc')).error, -18 /* EXDEV */);
  assert.equal(f.call(P.FUSE_CREATE, esc, cat(u32(2, 0o644, 0, 0), str('tsvm-vfs-escape'))).error, -18);
  assert.ok(!fs.existsSync('/tsvm-vfs-escape'));
  fs.symlinkSync('/etc', path.join(dir, 'host-made'));
  const hm = Number(f.ok(P.FUSE_LOOKUP, 1, str('host-made')).dv.getBigUint64(0, true));
  assert.equal(f.call(P.FUSE_OPEN, hm, u32(0, 0)).error, -40 /* ELOOP: O_NOFOLLOW */);
});

test('random requests never crash the host or write outside guest RAM', () => {
  const seed = Number(process.env['TSVM_SEED'] ?? Date.now() % 1_000_000);
  console.log(`virtio-fs fuzz seed ${seed}`);
  const rng = new Prng(seed), ops = [1, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 22, 25, 26, 27, 28, 29, 30, 34, 35, 38, 43, 44, 45, 46, 99];
  const { f } = share();
  for (let i = 0; i < 400; i++) {
    const body = new Uint8Array(rng.int(120));
    for (let k = 0; k < body.length; k++) body[k] = rng.int(4) === 0 ? 0 : rng.int(256);
    const op = ops[rng.int(ops.length)]!;
    if (op === P.FUSE_INIT || op === P.FUSE_DESTROY) continue;
    const r = f.call(op, rng.int(4), body, rng.int(300));
    assert.ok(r.error <= 0 && r.error > -200, `seed ${seed}: errno ${r.error}`);
    if (rng.int(8) === 0) assert.equal(f.send(rng.int(2) ? P.FUSE_FORGET : P.FUSE_BATCH_FORGET, rng.int(6), body), 0, 'forgets get no reply');
  }
  assert.equal(f.drv.status & STATUS_DEVICE_NEEDS_RESET, 0);
  assert.ok(f.drv.canariesIntact(), `seed ${seed}`);
});

test('an overlay share: lower layers merged with whiteouts, changes copied up to the upper, lowers untouched', () => {
  const base = fs.mkdtempSync(path.join(tmp, 'ov-')), l1 = path.join(base, 'l1'), l2 = path.join(base, 'l2'), up = path.join(base, 'up');
  for (const d of [l1, l2, up, path.join(l1, 'dir')]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(l1, 'a.txt'), 'old a');
  fs.writeFileSync(path.join(l1, 'gone.txt'), 'hidden');
  fs.writeFileSync(path.join(l1, 'dir', 'b.txt'), 'b');
  fs.writeFileSync(path.join(l2, 'a.txt'), 'new a');
  fs.writeFileSync(path.join(l2, '.wh.gone.txt'), '');
  const snapshot = (): string => JSON.stringify([l1, l2].map((l) => fs.readdirSync(l, { recursive: true }).sort().map((p) => [p, fs.statSync(path.join(l, String(p))).mtimeMs])));
  const before = snapshot();
  const f = new FuseDriver(new VirtioFs(overlayBackend(new NodeHostOs(), [l1, l2], up), 'root'));
  f.ok(P.FUSE_INIT, 0, u32(7, 31, 0, 0));
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('gone.txt')).error, -P.ENOENT, 'whited out in l2');
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('.wh.gone.txt')).error, -P.ENOENT, 'whiteouts are invisible');
  const a = Number(f.ok(P.FUSE_LOOKUP, 1, str('a.txt')).dv.getBigUint64(0, true));
  const afh = Number(f.ok(P.FUSE_OPEN, a, u32(0, 0)).dv.getBigUint64(0, true));
  assert.equal(Buffer.from(f.ok(P.FUSE_READ, a, cat(u64(afh, 0), u32(100, 0), u64(0), u32(0, 0))).body).toString(), 'new a');
  const fh = Number(f.ok(P.FUSE_OPENDIR, 1, u32(0, 0)).dv.getBigUint64(0, true));
  const list = f.ok(P.FUSE_READDIR, 1, cat(u64(fh, 0), u32(4096, 0), u64(0), u32(0, 0)), 4096);
  const names: string[] = [];
  for (let at = 0; at < list.body.length; at += P.direntSize(list.dv.getUint32(at + 16, true))) {
    names.push(Buffer.from(list.body.subarray(at + 24, at + 24 + list.dv.getUint32(at + 16, true))).toString());
  }
  assert.deepEqual(names.sort(), ['.', '..', 'a.txt', 'dir']);
  // Write into a lower file: copied up.
  const dir = Number(f.ok(P.FUSE_LOOKUP, 1, str('dir')).dv.getBigUint64(0, true));
  const b = Number(f.ok(P.FUSE_LOOKUP, dir, str('b.txt')).dv.getBigUint64(0, true));
  const bfh = Number(f.ok(P.FUSE_OPEN, b, u32(P.O_WRONLY | P.O_TRUNC, 0)).dv.getBigUint64(0, true));
  f.ok(P.FUSE_WRITE, b, cat(u64(bfh, 0), u32(7, 0), u64(0), u32(0, 0), new TextEncoder().encode('changed')));
  f.ok(P.FUSE_RELEASE, b, cat(u64(bfh), u32(0, 0), u64(0)));
  assert.equal(fs.readFileSync(path.join(up, 'dir', 'b.txt'), 'utf8'), 'changed');
  // Delete a lower file, create, rename, mkdir.
  f.ok(P.FUSE_UNLINK, 1, str('a.txt'));
  assert.ok(fs.existsSync(path.join(up, '.wh.a.txt')), 'a whiteout in the upper');
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('a.txt')).error, -P.ENOENT);
  f.ok(P.FUSE_CREATE, dir, cat(u32(1, 0o644, 0, 0), str('c.txt')));
  f.ok(P.FUSE_RENAME, dir, cat(u64(1), str('c.txt'), str('c2.txt')));
  f.ok(P.FUSE_MKDIR, 1, cat(u32(0o755, 0), str('newdir')));
  assert.ok(fs.existsSync(path.join(up, 'c2.txt')) && fs.statSync(path.join(up, 'newdir')).isDirectory());
  assert.equal(snapshot(), before, 'lower layers untouched');
  assert.equal(fs.readFileSync(path.join(l1, 'dir', 'b.txt'), 'utf8'), 'b');
});

/** Device options with -fsdev groups. */
function opts(fsdevs: string[], devices: string[]): DeviceOptions {
  return { devices: devices.map((d) => parseQemuOpts(d)), drives: [], netdevs: [], fsdevs: fsdevs.map((d) => parseQemuOpts(d)) };
}

test('-fsdev local|overlay with -device virtio-fs-device build the device; bad options are one-line errors', () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'opt-')), up = path.join(dir, 'up'), lo = path.join(dir, 'lo');
  fs.mkdirSync(up); fs.mkdirSync(lo);
  fs.writeFileSync(path.join(dir, 'file'), '');
  const built = buildDevices(opts([`local,id=a,path=${dir},readonly=on`, `overlay,id=b,lower=${lo}:${lo},upper=${up}`],
    ['virtio-fs-device,fsdev=a,tag=one', 'virtio-fs-device,fsdev=b,tag=two']), nodeDeviceServices);
  assert.deepEqual(built.devices.map((d) => [d.name, (d as VirtioFs).tag, (d as VirtioFs).backend.readOnly]), [['fs', 'one', true], ['fs', 'two', false]]);
  const bad: [string[], string[], RegExp][] = [
    [[`local,id=a,path=${dir}/missing`], ['virtio-fs-device,fsdev=a,tag=t'], /no such directory/],
    [[`local,id=a,path=${dir}/file`], ['virtio-fs-device,fsdev=a,tag=t'], /not a directory/],
    [['local,id=a'], ['virtio-fs-device,fsdev=a,tag=t'], /path=DIR is required/],
    [[`nfs,id=a,path=${dir}`], ['virtio-fs-device,fsdev=a,tag=t'], /unknown fsdev type 'nfs'/],
    [[`local,id=a,path=${dir},security_model=mapped-xattr`], ['virtio-fs-device,fsdev=a,tag=t'], /security_model/],
    [[`overlay,id=a,upper=${up}`], ['virtio-fs-device,fsdev=a,tag=t'], /lower=DIR/],
    [[`local,id=a,path=${dir}`], ['virtio-fs-device,fsdev=zz,tag=t'], /no -fsdev with id 'zz'/],
    [[`local,id=a,path=${dir}`], ['virtio-fs-device,fsdev=a'], /tag=TAG is required/],
    [[`local,id=a,path=${dir}`], [`virtio-fs-device,fsdev=a,tag=${'t'.repeat(37)}`], /longer than 36 bytes/],
    [[`local,id=a,path=${dir},cache=always`], ['virtio-fs-device,fsdev=a,tag=t'], /unsupported property 'cache'/],
  ];
  for (const [fsd, devs, re] of bad) {
    assert.throws(() => buildDevices(opts(fsd, devs), nodeDeviceServices), (e: unknown) => e instanceof OptsError && re.test(e.message) && !e.message.includes('\n'), re.source);
  }
  assert.throws(() => buildDevices(opts([`local,id=a,path=${dir}`], ['virtio-fs-device,fsdev=a,tag=t']), { ...nodeDeviceServices, fileHost: undefined }), /no file services/);
  const cfg = parseRunArgs(['-fsdev', `local,id=a,path=${dir}`, '-device', 'virtio-fs-device,fsdev=a,tag=t']);
  assert.equal(cfg.dev.fsdevs?.[0]?.props.get('path'), dir);
});
