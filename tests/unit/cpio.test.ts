/**
 * Unit tests for the newc cpio writer/reader (src/images/cpio.ts): exact
 * header bytes, 4-byte padding for every name/data length, round trips,
 * symlinks, device nodes, implicit parents, errors, and - when `cpio` or
 * `bsdtar` is installed on the host - that a host tool lists the archive.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CpioWriter, parseCpio, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../../src/images/cpio.js';
import { ImageError } from '../../src/images/errors.js';

const te = new TextEncoder();
const td = new TextDecoder();

/** Offsets of every header in a newc archive (walking it independently of parseCpio). */
function headerOffsets(buf: Uint8Array): number[] {
  const out: number[] = [];
  let off = 0;
  for (;;) {
    out.push(off);
    const field = (i: number): number => parseInt(td.decode(buf.subarray(off + 6 + i * 8, off + 14 + i * 8)), 16);
    const namesize = field(11);
    const filesize = field(6);
    const name = td.decode(buf.subarray(off + 110, off + 110 + namesize - 1));
    off = (((off + 110 + namesize + 3) & ~3) + filesize + 3) & ~3;
    if (name === 'TRAILER!!!') break;
  }
  assert.equal(off, buf.length, 'archive ends right after the padded trailer');
  return out;
}

test('cpio: exact bytes of a one-file archive (cpio(5) newc layout)', () => {
  const w = new CpioWriter();
  w.file('a', te.encode('hi'), 0o644);
  const buf = w.finish();
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
  // ino mode uid gid nlink mtime filesize devmaj devmin rdevmaj rdevmin namesize check
  const hdr = '070701' + [1, 0o100644, 0, 0, 1, 0, 2, 0, 0, 0, 0, 2, 0].map(hex).join('');
  assert.equal(td.decode(buf.subarray(0, 110)), hdr);
  assert.deepEqual([...buf.subarray(110, 112)], [0x61, 0]); // "a\0": 110 + 2 = 112, already aligned
  assert.deepEqual([...buf.subarray(112, 116)], [0x68, 0x69, 0, 0]); // "hi" + 2 bytes of padding
  const trailer = '070701' + [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0].map(hex).join('');
  assert.equal(td.decode(buf.subarray(116, 226)), trailer);
  assert.equal(td.decode(buf.subarray(226, 236)), 'TRAILER!!!');
  assert.equal(buf.length, 240); // 226 + 11 = 237 -> padded to 240
  assert.deepEqual([...buf.subarray(236)], [0, 0, 0, 0]);
});

test('cpio: every name and data length is padded to 4 bytes', () => {
  const w = new CpioWriter();
  const files: [string, Uint8Array][] = [];
  for (let nameLen = 1; nameLen <= 9; nameLen++) {
    for (let dataLen = 0; dataLen <= 5; dataLen++) {
      const name = `${'n'.repeat(nameLen)}${dataLen}`;
      const data = Uint8Array.from({ length: dataLen }, (_, i) => (i * 37 + nameLen) & 0xff);
      files.push([name, data]);
      w.file(name, data);
    }
  }
  const buf = w.finish();
  assert.equal(buf.length % 4, 0);
  const offs = headerOffsets(buf);
  assert.equal(offs.length, files.length + 1);
  for (const o of offs) {
    assert.equal(o % 4, 0, `header at ${o} is aligned`);
    assert.equal(td.decode(buf.subarray(o, o + 6)), '070701');
  }
  const parsed = parseCpio(buf);
  assert.equal(parsed.length, files.length);
  for (const [i, [name, data]] of files.entries()) {
    const e = parsed[i];
    assert.ok(e);
    assert.equal(e.name, name);
    assert.deepEqual(e.data, data);
    assert.equal(e.mode, S_IFREG | 0o644);
  }
});

test('cpio: round trip of directories, files, symlinks and device nodes', () => {
  const w = new CpioWriter();
  w.dir('/bin');
  w.file('/bin/busybox', te.encode('\x7fELF...'), 0o755);
  w.symlink('/bin/sh', 'busybox');
  w.node('/dev/console', S_IFCHR | 0o600, 5, 1);
  w.node('dev/null', 0o666, 1, 3);
  w.node('dev/vda', S_IFBLK | 0o660, 254, 0);
  w.dir('tmp', 0o1777);
  w.file('init', te.encode('#!/bin/sh\n'), 0o755);
  const entries = parseCpio(w.finish());
  const by = new Map(entries.map((e) => [e.name, e]));
  assert.deepEqual(
    entries.map((e) => e.name),
    ['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'dev/null', 'dev/vda', 'tmp', 'init'],
    'parents first, insertion order, leading "/" stripped',
  );
  const dev = by.get('dev');
  assert.equal(dev?.mode, S_IFDIR | 0o755, 'implicit parent directory');
  assert.equal(dev.nlink, 2);
  const sh = by.get('bin/sh');
  assert.equal(sh?.mode, S_IFLNK | 0o777);
  assert.equal(sh.linkTarget, 'busybox');
  assert.equal(sh.data.length, 'busybox'.length);
  const con = by.get('dev/console');
  assert.equal(con?.mode, S_IFCHR | 0o600);
  assert.deepEqual([con.rdevMajor, con.rdevMinor], [5, 1]);
  assert.equal(con.data.length, 0);
  assert.equal(by.get('dev/null')?.mode, S_IFCHR | 0o666, 'node() defaults to a character device');
  const vda = by.get('dev/vda');
  assert.equal((vda?.mode ?? 0) & S_IFMT, S_IFBLK);
  assert.deepEqual([vda?.rdevMajor, vda?.rdevMinor], [254, 0]);
  assert.equal(by.get('tmp')?.mode, S_IFDIR | 0o1777, 'sticky bit kept');
  assert.equal(td.decode(by.get('init')?.data), '#!/bin/sh\n');
  for (const e of entries) {
    assert.equal(e.mtime, 0, 'reproducible mtime');
    assert.equal(e.uid, 0);
    assert.equal(e.gid, 0);
    if ((e.mode & S_IFMT) !== S_IFDIR) assert.equal(e.nlink, 1);
  }
  const inos = entries.map((e) => e.ino);
  assert.equal(new Set(inos).size, inos.length, 'unique inode numbers');
  assert.ok(inos.every((i) => i > 0));
});

test('cpio: explicit dir() after an implicit parent sets its mode; output is deterministic', () => {
  const make = (): Uint8Array => {
    const w = new CpioWriter();
    w.file('root/.profile', te.encode('x'));
    w.dir('root', 0o700);
    return w.finish();
  };
  const a = make();
  assert.deepEqual(a, make());
  const root = parseCpio(a).find((e) => e.name === 'root');
  assert.equal(root?.mode, S_IFDIR | 0o700);
});

test('cpio: bad input is rejected with ImageError', () => {
  const w = new CpioWriter();
  w.file('a', te.encode('1'));
  assert.throws(() => w.file('a', te.encode('2')), ImageError, 'duplicate');
  assert.throws(() => w.file('../etc/passwd', te.encode('')), ImageError);
  assert.throws(() => w.file('/', te.encode('')), ImageError);
  assert.throws(() => w.file('x\0y', te.encode('')), ImageError);
  assert.throws(() => w.file('a/b', te.encode('')), ImageError, 'parent is a file');
  assert.throws(() => w.symlink('l', ''), ImageError);
  assert.throws(() => w.node('dev/x', S_IFREG | 0o644, 1, 1), ImageError);
  assert.throws(() => w.node('dev/x', 0o644, -1, 1), ImageError);

  const good = w.finish();
  const bad = good.slice();
  bad[0] = 0x31;
  assert.throws(() => parseCpio(bad), /bad magic/);
  assert.throws(() => parseCpio(good.subarray(0, 60)), /truncated/);
  assert.throws(() => parseCpio(good.subarray(0, 116)), /truncated|TRAILER/);
  const badHex = good.slice();
  badHex[10] = 0x47; // 'G'
  assert.throws(() => parseCpio(badHex), /bad header field/);
});

/** The first host tool able to list a newc archive, or null. */
function hostLister(): { cmd: string; args: string[] } | null {
  for (const t of [{ cmd: 'cpio', args: ['-it', '--quiet'] }, { cmd: 'bsdtar', args: ['-tf', '-'] }]) {
    const r = spawnSync(t.cmd, ['--version'], { encoding: 'utf8' });
    if (r.error === undefined && r.status === 0) return t;
  }
  return null;
}

const lister = hostLister();

test('cpio: the host tool lists the archive', { skip: lister === null && 'neither cpio nor bsdtar installed' }, () => {
  const t = lister as { cmd: string; args: string[] };
  const w = new CpioWriter();
  w.file('bin/busybox', new Uint8Array(1001).fill(7), 0o755);
  w.symlink('bin/sh', 'busybox');
  w.node('dev/console', S_IFCHR | 0o600, 5, 1);
  w.file('lib/modules/x/kernel/a-b.ko', new Uint8Array(3));
  const r = spawnSync(t.cmd, t.args, { input: w.finish(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const names = r.stdout.split('\n').filter((l) => l !== '').map((l) => l.replace(/^\.\//, '').replace(/\/$/, ''));
  assert.deepEqual(names, ['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'lib', 'lib/modules', 'lib/modules/x', 'lib/modules/x/kernel', 'lib/modules/x/kernel/a-b.ko']);
});
