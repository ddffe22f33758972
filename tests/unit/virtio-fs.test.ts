/**
 * virtio-fs through the virtio-mmio transport, driven by a hand-written
 * FUSE client (tests/helpers/fuse-driver.ts) against a real host
 * directory (the passthrough backend on NodeHostOs): configuration space,
 * INIT, every opcode the device serves, and the host side of each change.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VirtioFs, VIRTIO_ID_FS } from '../../src/devices/virtio/fs.js';
import * as P from '../../src/devices/virtio/fs-proto.js';
import { passthroughBackend } from '../../src/vmm/fs-host.js';
import { NodeHostOs } from '../../src/host/node-host-os.js';
import { FuseDriver, cat, u32, u64, str } from '../helpers/fuse-driver.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-vfs-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;

/** A fresh shared directory holding hello.txt and sub/inner.txt, and an initialised device on it. */
function setup(readOnly = false): { f: FuseDriver; dev: VirtioFs; dir: string } {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(tmp, `share${dirs++}-`)));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello, world\n');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'inner.txt'), 'inner');
  const dev = new VirtioFs(passthroughBackend(new NodeHostOs(), dir, readOnly), 'share');
  const f = new FuseDriver(dev);
  const r = f.ok(P.FUSE_INIT, 0, u32(7, 41, 131072, 0xffffffff, 0, ...new Array<number>(11).fill(0)));
  assert.equal(r.body.length, P.INIT_OUT_BYTES);
  return { f, dev, dir };
}

/** LOOKUP `name` in `parent`: [nodeid, mode, size, nlink]. */
function lookup(f: FuseDriver, parent: number, name: string): [number, number, number, number] {
  const r = f.ok(P.FUSE_LOOKUP, parent, str(name));
  return [Number(r.dv.getBigUint64(0, true)), r.dv.getUint32(100, true), Number(r.dv.getBigUint64(48, true)), r.dv.getUint32(104, true)];
}

function open(f: FuseDriver, node: number, flags: number): number {
  return Number(f.ok(P.FUSE_OPEN, node, u32(flags, 0)).dv.getBigUint64(0, true));
}

function read(f: FuseDriver, node: number, fh: number, off: number, size: number): string {
  const r = f.ok(P.FUSE_READ, node, cat(u64(fh, off), u32(size, 0), u64(0), u32(0, 0)), size);
  return Buffer.from(r.body).toString();
}

function write(f: FuseDriver, node: number, fh: number, off: number, data: Uint8Array): number {
  return f.ok(P.FUSE_WRITE, node, cat(u64(fh, off), u32(data.length, 0), u64(0), u32(0, 0), data)).dv.getUint32(0, true);
}

test('virtio-fs is device 26 with two queues, its tag and num_request_queues in the configuration space', () => {
  const dev = new VirtioFs(passthroughBackend(new NodeHostOs(), tmp, true), 'myfs');
  assert.equal(dev.deviceId, VIRTIO_ID_FS);
  assert.equal(dev.numQueues, 2);
  const tag = Buffer.from([0, 1, 2, 3].map((i) => dev.configRead(i, 1))).toString();
  assert.equal(tag, 'myfs');
  assert.equal(dev.configRead(4, 1), 0, 'tag is NUL-padded');
  assert.equal(dev.configRead(36, 4), 1);
  assert.throws(() => new VirtioFs(passthroughBackend(new NodeHostOs(), tmp, true), 'x'.repeat(37)), /1 to 36 bytes/);
  assert.throws(() => new VirtioFs(passthroughBackend(new NodeHostOs(), tmp, true), ''), /1 to 36 bytes/);
});

test('INIT negotiates 7.31, keeps only offered flags and sets max_write; requests before INIT get EIO', () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(tmp, 'init-')));
  const f = new FuseDriver(new VirtioFs(passthroughBackend(new NodeHostOs(), dir, false), 't'));
  assert.equal(f.call(P.FUSE_GETATTR, 1, u32(0, 0, 0, 0)).error, -P.EIO);
  assert.equal(f.call(P.FUSE_INIT, 0, u32(6, 0, 0, 0)).error, -P.EPROTO);
  const r = f.ok(P.FUSE_INIT, 0, u32(7, 41, 65536, 0xffffffff));
  assert.equal(r.dv.getUint32(0, true), 7);
  assert.equal(r.dv.getUint32(4, true), 31);
  assert.equal(r.dv.getUint32(8, true), 65536);
  assert.equal(r.dv.getUint32(12, true), P.FUSE_INIT_OFFERED);
  assert.equal(r.dv.getUint32(20, true), 1024 * 1024);
  assert.equal(r.dv.getUint16(28, true), 256);
  assert.equal(f.ok(P.FUSE_INIT, 0, u32(7, 31, 0, P.FUSE_ASYNC_READ | (1 << 26))).dv.getUint32(12, true), P.FUSE_ASYNC_READ, 'no DAX (MAP_ALIGNMENT)');
  assert.equal(f.call(P.FUSE_GETATTR, 1, u32(0, 0, 0, 0)).error, 0);
  assert.equal(f.ok(P.FUSE_INIT, 0, u32(8, 0, 0, 0)).body.length, 8, 'a newer major gets only ours back');
});

test('LOOKUP, GETATTR, OPEN, READ, FLUSH, RELEASE of an existing file; ENOENT for a missing one', () => {
  const { f, dev } = setup();
  const [node, mode, size] = lookup(f, 1, 'hello.txt');
  assert.ok(node > 1);
  assert.equal(mode & P.S_IFMT, P.S_IFREG);
  assert.equal(size, 13);
  assert.equal(lookup(f, 1, 'hello.txt')[0], node, 'the same name keeps its node id');
  const ga = f.ok(P.FUSE_GETATTR, node, u32(0, 0, 0, 0));
  assert.equal(Number(ga.dv.getBigUint64(24, true)), 13);
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('nope')).error, -P.ENOENT);
  const fh = open(f, node, P.O_RDONLY);
  assert.equal(read(f, node, fh, 0, 100), 'hello, world\n');
  assert.equal(read(f, node, fh, 7, 5), 'world');
  assert.equal(read(f, node, fh, 100, 5), '');
  const gfh = f.ok(P.FUSE_GETATTR, node, cat(u32(P.FUSE_GETATTR_FH, 0), u64(fh)));
  assert.equal(gfh.dv.getUint32(76, true) & P.S_IFMT, P.S_IFREG);
  f.ok(P.FUSE_FLUSH, node, cat(u64(fh), u32(0, 0), u64(0)));
  assert.equal(dev.openHandles, 1);
  f.ok(P.FUSE_RELEASE, node, cat(u64(fh), u32(0, 0), u64(0)));
  assert.equal(dev.openHandles, 0);
  assert.equal(f.call(P.FUSE_RELEASE, node, cat(u64(fh), u32(0, 0), u64(0))).error, -P.EBADF);
  const [sub] = lookup(f, 1, 'sub');
  assert.equal(lookup(f, sub, 'inner.txt')[2], 5);
});

test('CREATE, WRITE, FSYNC, SETATTR (size, mode, times), FALLOCATE and LSEEK change the host file', () => {
  const { f, dir } = setup();
  const r = f.ok(P.FUSE_CREATE, 1, cat(u32(2 /* O_RDWR */, 0o640, 0o022, 0), str('new.bin')));
  assert.equal(r.body.length, P.ENTRY_OUT_BYTES + P.OPEN_OUT_BYTES);
  const node = Number(r.dv.getBigUint64(0, true)), fh = Number(r.dv.getBigUint64(P.ENTRY_OUT_BYTES, true));
  assert.equal(fs.statSync(path.join(dir, 'new.bin')).mode & 0o7777, 0o640, 'the mode asked for, whatever the host umask');
  assert.equal(write(f, node, fh, 0, new TextEncoder().encode('abcdef')), 6);
  assert.equal(write(f, node, fh, 10, new TextEncoder().encode('XY')), 2);
  f.ok(P.FUSE_FSYNC, node, cat(u64(fh), u32(1, 0)));
  assert.deepEqual([...fs.readFileSync(path.join(dir, 'new.bin'))], [...Buffer.from('abcdef'), 0, 0, 0, 0, ...Buffer.from('XY')]);
  // SETATTR: fuse_setattr_in valid, padding, fh, size, lock_owner, atime, mtime, ctime, atimensec, mtimensec, ctimensec, mode, unused, uid, gid, unused
  const setattr = (valid: number, size: number, mtime: number, mode: number): ReturnType<FuseDriver['ok']> =>
    f.ok(P.FUSE_SETATTR, node, cat(u32(valid, 0), u64(fh, size, 0, mtime, mtime, 0), u32(0, 123456000, 0, mode, 0, 0, 0, 0)));
  const s1 = setattr(P.FATTR_SIZE | P.FATTR_FH, 3, 0, 0);
  assert.equal(Number(s1.dv.getBigUint64(24, true)), 3);
  assert.equal(fs.readFileSync(path.join(dir, 'new.bin')).toString(), 'abc');
  setattr(P.FATTR_SIZE, 2, 0, 0);
  assert.equal(fs.statSync(path.join(dir, 'new.bin')).size, 2, 'truncate by path too');
  setattr(P.FATTR_MODE, 0, 0, 0o600);
  assert.equal(fs.statSync(path.join(dir, 'new.bin')).mode & 0o7777, 0o600);
  const s3 = setattr(P.FATTR_MTIME | P.FATTR_ATIME, 0, 1_000_000_000, 0);
  assert.equal(s3.dv.getBigUint64(16 + 32, true), 1_000_000_000n);
  assert.equal(s3.dv.getUint32(16 + 52, true), 123456000); // Node sets times to the microsecond
  assert.equal(Math.floor(fs.statSync(path.join(dir, 'new.bin')).mtimeMs / 1000), 1_000_000_000);
  f.ok(P.FUSE_FALLOCATE, node, cat(u64(fh, 0, 8192), u32(0, 0)));
  assert.equal(fs.statSync(path.join(dir, 'new.bin')).size, 8192);
  assert.equal(f.call(P.FUSE_FALLOCATE, node, cat(u64(fh, 0, 10), u32(1, 0))).error, -P.EOPNOTSUPP, 'KEEP_SIZE etc. refused');
  const seek = (off: number, whence: number): ReturnType<FuseDriver['call']> => f.call(P.FUSE_LSEEK, node, cat(u64(fh, off), u32(whence, 0)));
  assert.equal(seek(100, P.SEEK_DATA).dv.getBigUint64(0, true), 100n);
  assert.equal(seek(100, P.SEEK_HOLE).dv.getBigUint64(0, true), 8192n);
  assert.equal(seek(9000, P.SEEK_DATA).error, -P.ENXIO);
  assert.equal(seek(0, 0).error, -P.EINVAL);
  f.ok(P.FUSE_RELEASE, node, cat(u64(fh), u32(0, 0), u64(0)));
  // CREATE with O_EXCL on an existing name.
  assert.equal(f.call(P.FUSE_CREATE, 1, cat(u32(2 | P.O_EXCL, 0o644, 0, 0), str('new.bin'))).error, -P.EEXIST);
});

test('MKDIR, SYMLINK, READLINK, LINK, MKNOD, RENAME, RENAME2, UNLINK and RMDIR', () => {
  const { f, dir } = setup();
  const mk = f.ok(P.FUSE_MKDIR, 1, cat(u32(0o750, 0o022), str('d')));
  const d = Number(mk.dv.getBigUint64(0, true));
  assert.ok(fs.statSync(path.join(dir, 'd')).isDirectory());
  assert.equal(fs.statSync(path.join(dir, 'd')).mode & 0o777, 0o750);
  const sl = f.ok(P.FUSE_SYMLINK, d, cat(str('ln'), str('../hello.txt')));
  const ln = Number(sl.dv.getBigUint64(0, true));
  assert.equal(sl.dv.getUint32(100, true) & P.S_IFMT, P.S_IFLNK);
  assert.equal(fs.readlinkSync(path.join(dir, 'd', 'ln')), '../hello.txt');
  assert.equal(Buffer.from(f.ok(P.FUSE_READLINK, ln).body).toString(), '../hello.txt');
  const [hello] = lookup(f, 1, 'hello.txt');
  const lk = f.ok(P.FUSE_LINK, d, cat(u64(hello), str('hard')));
  assert.equal(lk.dv.getUint32(104, true), 2, 'nlink 2');
  assert.equal(fs.statSync(path.join(dir, 'd', 'hard')).ino, fs.statSync(path.join(dir, 'hello.txt')).ino);
  f.ok(P.FUSE_MKNOD, d, cat(u32(P.S_IFREG | 0o604, 0, 0, 0), str('plain')));
  assert.equal(fs.statSync(path.join(dir, 'd', 'plain')).mode & 0o7777, 0o604);
  assert.equal(f.call(P.FUSE_MKNOD, d, cat(u32(0o010644, 0, 0, 0), str('fifo'))).error, -P.EPERM);
  // RENAME the directory: node ids under it follow.
  const [inner] = lookup(f, d, 'plain');
  f.ok(P.FUSE_RENAME, 1, cat(u64(1), str('d'), str('e')));
  assert.ok(fs.existsSync(path.join(dir, 'e', 'plain')) && !fs.existsSync(path.join(dir, 'd')));
  assert.equal(f.ok(P.FUSE_GETATTR, inner, u32(0, 0, 0, 0)).dv.getUint32(76, true) & 0o7777, 0o604, 'node under a renamed dir still works');
  assert.equal(f.call(P.FUSE_RENAME2, d, cat(u64(1), u32(P.RENAME_NOREPLACE, 0), str('plain'), str('hello.txt'))).error, -P.EEXIST);
  assert.equal(f.call(P.FUSE_RENAME2, d, cat(u64(1), u32(2, 0), str('plain'), str('hello.txt'))).error, -P.EINVAL, 'RENAME_EXCHANGE');
  f.ok(P.FUSE_RENAME2, d, cat(u64(1), u32(P.RENAME_NOREPLACE, 0), str('plain'), str('moved')));
  assert.ok(fs.existsSync(path.join(dir, 'moved')));
  assert.equal(f.call(P.FUSE_RENAME, 1, cat(u64(1), str('e'), str('e/x'))).error, -P.EINVAL, 'no slash in names');
  assert.equal(f.call(P.FUSE_RMDIR, 1, str('e')).error, -39 /* ENOTEMPTY */);
  f.ok(P.FUSE_UNLINK, d, str('ln'));
  f.ok(P.FUSE_UNLINK, d, str('hard'));
  f.ok(P.FUSE_RMDIR, 1, str('e'));
  assert.ok(!fs.existsSync(path.join(dir, 'e')));
  assert.equal(f.call(P.FUSE_GETATTR, d, u32(0, 0, 0, 0)).error, -P.ENOENT, 'a deleted directory\'s node id');
  assert.equal(f.call(P.FUSE_UNLINK, 1, str('e')).error, -P.ENOENT);
});

test('OPENDIR, READDIR and READDIRPLUS list every entry across several calls; RELEASEDIR and FSYNCDIR', () => {
  const { f, dir, dev } = setup();
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(dir, `file-${i}`), String(i));
  const fh = Number(f.ok(P.FUSE_OPENDIR, 1, u32(0, 0)).dv.getBigUint64(0, true));
  const names = (plus: boolean): string[] => {
    const out: string[] = [];
    let off = 0;
    for (;;) {
      const r = f.ok(plus ? P.FUSE_READDIRPLUS : P.FUSE_READDIR, 1, cat(u64(fh, off), u32(512, 0), u64(0), u32(0, 0)), 512);
      if (r.body.length === 0) return out;
      let at = 0;
      while (at < r.body.length) {
        if (plus) {
          const nodeid = r.dv.getBigUint64(at, true);
          at += P.ENTRY_OUT_BYTES;
          const nm = Buffer.from(r.body.subarray(at + 24, at + 24 + r.dv.getUint32(at + 16, true))).toString();
          assert.equal(nodeid === 0n, nm === '.' || nm === '..', `nodeid of ${nm}`);
        }
        const n = r.dv.getUint32(at + 16, true);
        out.push(Buffer.from(r.body.subarray(at + 24, at + 24 + n)).toString());
        off = Number(r.dv.getBigUint64(at + 8, true));
        at += P.direntSize(n);
      }
    }
  };
  const expected = ['.', '..', 'hello.txt', 'sub', ...Array.from({ length: 40 }, (_, i) => `file-${i}`)].sort();
  assert.deepEqual(names(false).sort(), expected);
  const before = dev.liveNodes;
  assert.deepEqual(names(true).sort(), expected);
  assert.equal(dev.liveNodes, before + 42, 'READDIRPLUS looked every entry up');
  f.ok(P.FUSE_FSYNCDIR, 1, cat(u64(fh), u32(0, 0)));
  f.ok(P.FUSE_RELEASEDIR, 1, cat(u64(fh), u32(0, 0), u64(0)));
  assert.equal(f.call(P.FUSE_READDIR, 1, cat(u64(fh, 0), u32(512, 0), u64(0), u32(0, 0))).error, -P.EBADF);
  const [hello] = lookup(f, 1, 'hello.txt');
  assert.equal(f.call(P.FUSE_OPENDIR, hello, u32(0, 0)).error, -P.ENOTDIR);
});

test('STATFS, ACCESS, xattrs (ENOSYS), unknown opcodes (ENOSYS), FORGET, BATCH_FORGET and DESTROY', () => {
  const { f, dev } = setup();
  const st = f.ok(P.FUSE_STATFS, 1);
  assert.ok(st.dv.getBigUint64(0, true) > 0n, 'blocks');
  assert.ok(st.dv.getUint32(40, true) > 0, 'bsize');
  assert.equal(st.dv.getUint32(44, true), 255);
  f.ok(P.FUSE_ACCESS, 1, u32(4, 0));
  assert.equal(f.call(P.FUSE_GETXATTR, 1, cat(u32(100, 0), str('user.x'))).error, -P.ENOSYS);
  assert.equal(f.call(P.FUSE_LISTXATTR, 1, u32(100, 0)).error, -P.ENOSYS);
  assert.equal(f.call(99, 1).error, -P.ENOSYS);
  assert.equal(f.call(P.FUSE_SYNCFS, 1, u64(0)).error, 0);
  const [a] = lookup(f, 1, 'hello.txt');
  lookup(f, 1, 'hello.txt');
  const [b] = lookup(f, 1, 'sub');
  const n0 = dev.liveNodes;
  assert.equal(f.send(P.FUSE_FORGET, a, u64(1)), 0, 'FORGET has no reply');
  assert.equal(dev.liveNodes, n0, 'one lookup left');
  assert.equal(f.send(P.FUSE_BATCH_FORGET, 0, cat(u32(2, 0), u64(a, 1), u64(b, 1))), 0);
  assert.equal(dev.liveNodes, n0 - 2);
  assert.equal(f.call(P.FUSE_GETATTR, a, u32(0, 0, 0, 0)).error, -P.ESTALE);
  const [c] = lookup(f, 1, 'hello.txt');
  open(f, c, P.O_RDONLY);
  assert.equal(dev.openHandles, 1);
  f.ok(P.FUSE_DESTROY, 0);
  assert.equal(dev.openHandles, 0);
  assert.equal(dev.liveNodes, 1, 'only the root is left');
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('hello.txt')).error, -P.EIO, 'a destroyed session needs INIT again');
});

test('a read-only share refuses every change with EROFS but serves reads', () => {
  const { f, dir } = setup(true);
  const [node] = lookup(f, 1, 'hello.txt');
  assert.equal(read(f, node, open(f, node, P.O_RDONLY), 0, 5), 'hello');
  assert.equal(f.call(P.FUSE_OPEN, node, u32(P.O_WRONLY, 0)).error, -P.EROFS);
  assert.equal(f.call(P.FUSE_OPEN, node, u32(P.O_TRUNC, 0)).error, -P.EROFS);
  assert.equal(f.call(P.FUSE_CREATE, 1, cat(u32(2, 0o644, 0, 0), str('x'))).error, -P.EROFS);
  assert.equal(f.call(P.FUSE_MKDIR, 1, cat(u32(0o755, 0), str('x'))).error, -P.EROFS);
  assert.equal(f.call(P.FUSE_UNLINK, 1, str('hello.txt')).error, -P.EROFS);
  assert.equal(f.call(P.FUSE_RENAME, 1, cat(u64(1), str('hello.txt'), str('y'))).error, -P.EROFS);
  assert.equal(f.call(P.FUSE_SETATTR, node, cat(u32(P.FATTR_MODE, 0), u64(0, 0, 0, 0, 0, 0), u32(0, 0, 0, 0o777, 0, 0, 0, 0))).error, -P.EROFS);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['hello.txt', 'sub']);
});
