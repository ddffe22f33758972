/**
 * Bind mounts (src/process/bind-host-os.ts, src/host/bind-spec.ts) over a
 * real overlay root on the host file system: the path mapping with
 * adversarial paths (`..`, `.`, doubled and trailing slashes, names that
 * share a prefix, nested binds), resolution through the VFS (symlinks in
 * the bound directory to "/", to "../..", to a host path outside it: all
 * stay in the container's root), read-only binds (EROFS), EXDEV across the
 * mount boundary, EBUSY for the mount point, and the spec parser's errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeHostOs } from '../../src/host/node-host-os.js';
import { SandboxHostOs, checkSandbox } from '../../src/process/sandbox.js';
import { foldComponents, type BindMount } from '../../src/process/bind-host-os.js';
import { Vfs } from '../../src/process/vfs.js';
import { parseBind } from '../../src/host/bind-spec.js';
import { E, O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC } from '../../src/process/sys-abi.js';

interface Setup { dir: string; lower: string; upper: string; vol: string; ro: string; outside: string; os: SandboxHostOs; vfs: Vfs; m: string }

function setup(extra: BindMount[] = []): Setup {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-bind-')));
  const lower = path.join(dir, 'lower'), upper = path.join(dir, 'upper'), vol = path.join(dir, 'vol'), ro = path.join(dir, 'ro'), outside = path.join(dir, 'outside');
  for (const d of [lower, upper, vol, ro, outside, path.join(lower, 'etc'), path.join(lower, 'run'), path.join(lower, 'var')]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(lower, 'etc/marker'), 'container root\n');
  fs.writeFileSync(path.join(lower, 'secret'), 'container secret\n');
  fs.symlinkSync('/run', path.join(lower, 'var/run'));
  fs.writeFileSync(path.join(outside, 'secret'), 'host secret\n');
  fs.writeFileSync(path.join(vol, 'in.txt'), 'from the host\n');
  fs.writeFileSync(path.join(ro, 'r.txt'), 'read only\n');
  fs.symlinkSync('/', path.join(vol, 'rootlink'));
  fs.symlinkSync('../../../../../../../..', path.join(vol, 'uplink'));
  fs.symlinkSync(path.join(outside, 'secret'), path.join(vol, 'hostlink'));
  const binds: BindMount[] = [{ source: vol, target: '/data', readOnly: false }, { source: ro, target: '/ro', readOnly: true }, ...extra];
  const sandbox = { rootLayers: [lower], upper, pidNamespace: false, binds };
  const host = new NodeHostOs();
  assert.equal(checkSandbox(sandbox, host), null);
  const sos = new SandboxHostOs(host, sandbox);
  const vfs = new Vfs(sos, sos.root, { pid: () => 1, exePath: () => '/bin/sh', maps: () => '', fds: () => [] });
  return { dir, lower, upper, vol, ro, outside, os: sos, vfs, m: sos.root! };
}

/** Resolves a guest path as the kernel does; the host path it lands on. */
function host(s: Setup, guest: string, follow = true): string | number {
  const r = s.vfs.resolve('/', guest, follow);
  if (typeof r === 'number') return r;
  assert.equal(r.kind, 'host');
  return r.kind === 'host' ? r.host : -1;
}

/** Reads a guest file through the sandbox's HostOs; its text or -errno. */
function read(s: Setup, guest: string): string | number {
  const h = host(s, guest);
  if (typeof h === 'number') return h;
  const fd = s.os.open(h, O_RDONLY, 0);
  if (fd < 0) return fd;
  const buf = new Uint8Array(4096);
  const n = s.os.read(fd, buf, 0);
  s.os.close(fd);
  return n < 0 ? n : new TextDecoder().decode(buf.subarray(0, n));
}

test('foldComponents: "." and empty components go, ".." never climbs above the root', () => {
  assert.deepEqual(foldComponents('/a/./b//c/'), ['a', 'b', 'c']);
  assert.deepEqual(foldComponents('/../../a/../../b'), ['b']);
  assert.deepEqual(foldComponents('/..'), []);
});

test('the mapping: a bound path goes to the host directory, adversarial paths stay on their side', () => {
  const s = setup();
  try {
    const b = s.os.bindOs!;
    assert.equal(b.map(s.m + '/data')?.host, s.vol);
    assert.equal(b.map(s.m + '/data/in.txt')?.host, s.vol + '/in.txt');
    assert.equal(b.map(s.m + '/data/./x//y/')?.host, s.vol + '/x/y/');
    assert.equal(b.map(s.m + '/data/../etc/marker'), null, '.. out of the bind is the overlay');
    assert.equal(b.map(s.m + '/data/a/../../../../..'), null);
    assert.equal(b.map(s.m + '/data/../../..' + s.outside)?.host, undefined, 'no way up to a host path');
    assert.equal(b.map(s.m + '/database'), null, 'a name sharing the prefix is not the mount');
    assert.equal(b.map(s.m + '/dat'), null);
    assert.equal(b.map(s.vol + '/in.txt'), null, 'a path outside the root is not mapped');
    assert.equal(b.map(s.m + '/etc/../data/in.txt')?.host, s.vol + '/in.txt');
    assert.equal(b.map(s.m + '/data/' + '../'.repeat(50) + 'data/x')?.host, s.vol + '/x');
    for (const p of ['/data/in.txt', '/data/..', '/data/a/../..', '/database', '/ro/r.txt']) {
      const m = b.map(s.m + p);
      if (m !== null) assert.ok(m.host === s.vol || m.host.startsWith(s.vol + '/') || m.host === s.ro || m.host.startsWith(s.ro + '/'), `${p} -> ${m.host}`);
    }
  } finally { fs.rmSync(s.dir, { recursive: true, force: true }); }
});

test('through the VFS: files are shared both ways, symlinks in the bind resolve inside the container', () => {
  const s = setup();
  try {
    assert.equal(read(s, '/data/in.txt'), 'from the host\n');
    const h = host(s, '/data/new.txt');
    assert.equal(typeof h, 'string');
    const fd = s.os.open(h as string, O_WRONLY | O_CREAT, 0o644);
    assert.ok(fd >= 0);
    assert.equal(s.os.write(fd, new TextEncoder().encode('from the guest\n'), 0), 15);
    s.os.close(fd);
    assert.equal(fs.readFileSync(path.join(s.vol, 'new.txt'), 'utf8'), 'from the guest\n');
    assert.equal(fs.existsSync(path.join(s.upper, 'data/new.txt')), false, 'bypasses the overlay');
    // A link to "/" in the bind is the container's "/", never the host's.
    assert.equal(read(s, '/data/rootlink/etc/marker'), 'container root\n');
    assert.equal(read(s, '/data/rootlink/secret'), 'container secret\n');
    assert.equal(read(s, '/data/rootlink' + s.outside + '/secret'), -E.ENOENT);
    assert.equal(read(s, '/data/uplink/secret'), 'container secret\n');
    assert.equal(read(s, '/data/uplink/data/in.txt'), 'from the host\n');
    assert.equal(read(s, '/data/hostlink'), -E.ENOENT, 'an absolute host path is resolved in the container root');
    assert.equal(read(s, '/data/../../../secret'), 'container secret\n');
    assert.equal(read(s, '/data/../..' + s.outside + '/secret'), -E.ENOENT);
    // The mount point shows in its parent's listing (made in the writable layer).
    const list = s.os.readdir(s.m);
    assert.ok(typeof list !== 'number' && list.some((e) => e.name === 'data'));
    assert.ok(fs.statSync(path.join(s.upper, 'data')).isDirectory());
  } finally { fs.rmSync(s.dir, { recursive: true, force: true }); }
});

test('a read-only bind refuses every change with EROFS and reads as usual', () => {
  const s = setup();
  try {
    const f = s.m + '/ro/r.txt', n = s.m + '/ro/new';
    assert.equal(read(s, '/ro/r.txt'), 'read only\n');
    assert.equal(s.os.open(f, O_WRONLY, 0), -E.EROFS);
    assert.equal(s.os.open(f, O_RDWR, 0), -E.EROFS);
    assert.equal(s.os.open(f, O_RDONLY | O_TRUNC, 0), -E.EROFS);
    assert.equal(s.os.open(n, O_RDONLY | O_CREAT, 0o644), -E.EROFS);
    assert.equal(s.os.open(f, O_WRONLY | O_CREAT | O_EXCL, 0o644), -E.EEXIST);
    assert.equal(s.os.mkdir(n, 0o755), -E.EROFS);
    assert.equal(s.os.unlink(f), -E.EROFS);
    assert.equal(s.os.symlink('/x', n), -E.EROFS);
    assert.equal(s.os.rename(f, s.m + '/ro/moved'), -E.EROFS);
    assert.equal(s.os.link(f, n), -E.EROFS);
    assert.equal(s.os.chmod(f, 0o777), -E.EROFS);
    assert.equal(s.os.chown(f, 0, 0, true), -E.EROFS);
    assert.equal(s.os.truncate(f, 0), -E.EROFS);
    assert.equal(s.os.utimes(f, 0n, 0n, false), -E.EROFS);
    assert.equal(s.os.access(f, 2), -E.EROFS);
    assert.equal(s.os.access(f, 4), 0);
    const fd = s.os.open(f, O_RDONLY, 0);
    assert.ok(fd >= 0);
    assert.equal(s.os.fchmod(fd, 0o777), -E.EROFS);
    assert.equal(s.os.futimes(fd, 0n, 0n), -E.EROFS);
    s.os.close(fd);
    assert.equal(fs.readFileSync(path.join(s.ro, 'r.txt'), 'utf8'), 'read only\n');
    assert.deepEqual(fs.readdirSync(s.ro), ['r.txt']);
  } finally { fs.rmSync(s.dir, { recursive: true, force: true }); }
});

test('rename and link across the mount boundary are EXDEV; the mount point is busy', () => {
  const s = setup();
  try {
    const inBind = s.m + '/data/in.txt';
    assert.equal(s.os.rename(inBind, s.m + '/moved'), -E.EXDEV);
    assert.equal(s.os.rename(s.m + '/etc/marker', s.m + '/data/marker'), -E.EXDEV);
    assert.equal(s.os.rename(inBind, s.m + '/ro/x'), -E.EXDEV, 'between two binds');
    assert.equal(s.os.link(inBind, s.m + '/l'), -E.EXDEV);
    assert.equal(s.os.rename(inBind, s.m + '/data/renamed.txt'), 0, 'inside one bind');
    assert.ok(fs.existsSync(path.join(s.vol, 'renamed.txt')));
    assert.equal(s.os.rmdir(s.m + '/data'), -E.EBUSY);
    assert.equal(s.os.rename(s.m + '/data', s.m + '/elsewhere'), -E.EBUSY);
    assert.equal(s.os.rename(s.m + '/etc', s.m + '/data'), -E.EBUSY);
    assert.equal(s.os.rename(s.m + '/data/', s.m + '/data/'), -E.EBUSY);
    assert.equal(s.os.mkdir(s.m + '/data', 0o755), -E.EEXIST);
  } finally { fs.rmSync(s.dir, { recursive: true, force: true }); }
});

test('nested binds: the deepest wins; a target through an image symlink is resolved in the root', () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-bind-n-')));
  const inner = path.join(dir, 'inner'), sock = path.join(dir, 'sock');
  fs.mkdirSync(inner); fs.mkdirSync(sock);
  fs.writeFileSync(path.join(inner, 'f'), 'inner\n');
  const s = setup([{ source: inner, target: '/data/sub', readOnly: false }, { source: sock, target: '/var/run/x', readOnly: false }]);
  try {
    assert.equal(read(s, '/data/sub/f'), 'inner\n');
    assert.ok(fs.statSync(path.join(s.vol, 'sub')).isDirectory(), 'the nested mount point is made in the bind above it');
    assert.equal(s.os.rename(s.m + '/data/sub/f', s.m + '/data/f'), -E.EXDEV);
    // /var/run is a link to /run in the image: the bind lands on /run/x, as Docker resolves the destination.
    const h = host(s, '/var/run/x');
    assert.equal(typeof h === 'string' ? s.os.bindOs!.map(h)?.host : h, sock);
    assert.equal(s.os.bindOs!.mounts.find((b) => b.source === sock)?.target, '/run/x');
  } finally {
    fs.rmSync(s.dir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('/proc/self/mounts lists the root and each bind, ro or rw, with octal escapes', () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-bind-m-')));
  const spaced = path.join(dir, 'a b');
  fs.mkdirSync(spaced);
  const s = setup([{ source: spaced, target: '/with space', readOnly: false }]);
  try {
    const lines = s.os.mountTable().trimEnd().split('\n');
    assert.equal(lines[0], 'overlay / overlay rw,relatime 0 0');
    assert.ok(lines.includes(`${s.vol} /data none rw,bind 0 0`), lines.join('|'));
    assert.ok(lines.includes(`${s.ro} /ro none ro,bind 0 0`));
    assert.ok(lines.includes(`${dir}/a\\040b /with\\040space none rw,bind 0 0`));
    const vfs = new Vfs(s.os, s.m, { pid: () => 1, exePath: () => '/bin/sh', maps: () => '', fds: () => [], mounts: () => s.os.mountTable() });
    for (const p of ['/proc/self/mounts', '/proc/mounts', '/proc/1/mounts']) {
      const r = vfs.resolve('/', p, true);
      assert.ok(typeof r !== 'number' && r.kind === 'virtual' && r.node.t === 'file' && new TextDecoder().decode(r.node.content()) === s.os.mountTable(), p);
    }
    assert.equal(s.vfs.resolve('/', '/proc/self/mounts', true), -E.ENOENT, 'no table: no file');
  } finally {
    fs.rmSync(s.dir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('checkSandbox refuses unusable binds with one line', () => {
  const s = setup();
  try {
    const h = new NodeHostOs();
    const base = { rootLayers: [s.lower], upper: s.upper, pidNamespace: false };
    assert.match(checkSandbox({ ...base, binds: [{ source: path.join(s.dir, 'nope'), target: '/x', readOnly: false }] }, h) ?? '', /is not a directory/);
    assert.match(checkSandbox({ ...base, binds: [{ source: s.upper, target: '/x', readOnly: false }] }, h) ?? '', /overlaps the container's layers/);
    assert.match(checkSandbox({ ...base, binds: [{ source: s.dir, target: '/x', readOnly: false }] }, h) ?? '', /overlaps/);
    assert.match(checkSandbox({ ...base, binds: [{ source: s.vol, target: '/', readOnly: false }] }, h) ?? '', /root/);
    assert.match(checkSandbox({ ...base, binds: [{ source: s.vol, target: '/a', readOnly: false }, { source: s.ro, target: '/a/', readOnly: false }] }, h) ?? '', /duplicate mount point/);
    assert.match(checkSandbox({ pidNamespace: false, binds: [{ source: s.vol, target: '/a', readOnly: false }] }, h) ?? '', /needs an overlay root/);
  } finally { fs.rmSync(s.dir, { recursive: true, force: true }); }
});

test('parseBind: Docker forms that are not bind mounts of a host directory get one-line reasons', () => {
  assert.deepEqual(parseBind('/h:/c'), { source: '/h', target: '/c', readOnly: false });
  assert.deepEqual(parseBind('/h:/c:ro'), { source: '/h', target: '/c', readOnly: true });
  assert.deepEqual(parseBind('/h:/c:rw'), { source: '/h', target: '/c', readOnly: false });
  assert.match(parseBind('data:/c') as string, /named volumes are not supported/);
  assert.match(parseBind('./data:/c') as string, /named volumes are not supported/);
  assert.match(parseBind('/c') as string, /anonymous volumes are not supported/);
  assert.match(parseBind('/h:c') as string, /must be an absolute path/);
  assert.match(parseBind('/h:/c:rx') as string, /invalid mode: rx/);
  assert.match(parseBind('/h:/') as string, /root/);
  assert.match(parseBind('/h:/c:ro:z') as string, /expected HOSTDIR:DIR/);
  assert.match(parseBind(':/c') as string, /empty host directory/);
});
