/**
 * OverlayHostOs (src/process/overlay-host-os.ts) over the real host file
 * system (NodeHostOs): lookups through two lowers with OCI whiteouts and an
 * opaque directory, copy-up keeping metadata (also through an fd opened
 * read-only on a lower file), whiteouts for deletions, directory rename and
 * rmdir, and lowers that are never written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeHostOs } from '../../src/host/node-host-os.js';
import { OverlayHostOs } from '../../src/process/overlay-host-os.js';
import { E, O_RDONLY, O_WRONLY, O_CREAT, O_TRUNC } from '../../src/process/sys-abi.js';

/** A snapshot of every path, mode, mtime and content under `dir`. */
function snapshot(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort().map((p) => {
    const full = path.join(dir, p), st = fs.lstatSync(full);
    return `${p} ${st.mode} ${st.mtimeMs} ${st.isFile() ? fs.readFileSync(full, 'utf8') : ''}`;
  });
}

function setup(): { dir: string; l1: string; l2: string; up: string; ov: OverlayHostOs; m: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-overlay-'));
  const l1 = path.join(dir, 'l1'), l2 = path.join(dir, 'l2'), up = path.join(dir, 'up');
  const put = (p: string, c: string | null): void => {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (c === null) fs.mkdirSync(p, { recursive: true }); else fs.writeFileSync(p, c);
  };
  put(path.join(l1, 'a/file'), 'l1 file\n');
  put(path.join(l1, 'a/gone'), 'gone\n');
  put(path.join(l1, 'a/opq/old'), 'old\n');
  put(path.join(l1, 'd/x'), 'x\n');
  put(path.join(l1, 'emptydir'), null);
  put(path.join(l2, 'a/.wh.gone'), '');
  put(path.join(l2, 'a/opq/.wh..wh..opq'), '');
  put(path.join(l2, 'a/opq/new'), 'new\n');
  put(path.join(l2, 'a/file2'), 'l2 file\n');
  fs.mkdirSync(up);
  fs.chmodSync(path.join(l1, 'a/file'), 0o640);
  fs.utimesSync(path.join(l1, 'a/file'), 1_000_000, 1_000_000);
  const host = new NodeHostOs();
  const real = (p: string): string => fs.realpathSync(p);
  const ov = new OverlayHostOs(host, [real(l1), real(l2)], real(up));
  return { dir, l1, l2, up: real(up), ov, m: ov.mount };
}

function names(ov: OverlayHostOs, p: string): string[] {
  const r = ov.readdir(p);
  assert.ok(typeof r !== 'number', `readdir ${p}: ${String(r)}`);
  return r.map((e) => e.name).sort();
}

test('lookups merge the layers: whiteouts and opaque directories hide lower names', () => {
  const { dir, ov, m } = setup();
  try {
    assert.deepEqual(names(ov, m + '/a'), ['file', 'file2', 'opq']);
    assert.deepEqual(names(ov, m + '/a/opq'), ['new']);
    assert.equal(ov.lstat(m + '/a/gone'), -E.ENOENT);
    assert.equal(ov.lstat(m + '/a/opq/old'), -E.ENOENT);
    assert.equal(ov.lstat(m + '/a/.wh.gone'), -E.ENOENT);
    assert.equal(ov.lstat(m + '/a/file/x'), -E.ENOTDIR);
    assert.equal(ov.open(m + '/a/.wh.new', O_WRONLY | O_CREAT, 0o644), -E.EINVAL);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('copy-up keeps mode and times; fchmod through a read-only lower fd copies up; lowers stay unchanged', () => {
  const { dir, l1, l2, up, ov, m } = setup();
  try {
    const before = [snapshot(l1), snapshot(l2)];
    const fd = ov.open(m + '/a/file', O_RDONLY, 0);
    assert.ok(fd >= 0);
    assert.equal(ov.fchmod(fd, 0o600), 0);
    assert.equal(ov.close(fd), 0);
    assert.equal(fs.statSync(path.join(up, 'a/file')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(up, 'a/file')).mtimeMs, 1_000_000_000);
    assert.equal(fs.readFileSync(path.join(up, 'a/file'), 'utf8'), 'l1 file\n');
    const w = ov.open(m + '/a/file2', O_WRONLY | O_TRUNC, 0);
    assert.ok(w >= 0);
    assert.equal(ov.write(w, new TextEncoder().encode('changed\n'), null), 8);
    ov.close(w);
    assert.equal(fs.readFileSync(path.join(up, 'a/file2'), 'utf8'), 'changed\n');
    assert.equal(ov.truncate(m + '/d/x', 1), 0);
    assert.equal(fs.readFileSync(path.join(up, 'd/x'), 'utf8'), 'x');
    assert.deepEqual([snapshot(l1), snapshot(l2)], before);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('deletes leave whiteouts; rmdir needs an empty merge; a renamed directory moves whole and is opaque over a lower one', () => {
  const { dir, l1, l2, up, ov, m } = setup();
  try {
    const before = [snapshot(l1), snapshot(l2)];
    assert.equal(ov.unlink(m + '/a/file'), 0);
    assert.ok(fs.existsSync(path.join(up, 'a/.wh.file')));
    assert.equal(ov.rmdir(m + '/d'), -E.ENOTEMPTY);
    assert.equal(ov.rename(m + '/d', m + '/emptydir'), 0);
    assert.deepEqual(names(ov, m + '/emptydir'), ['x']);
    assert.ok(fs.existsSync(path.join(up, '.wh.d')) && fs.existsSync(path.join(up, 'emptydir/.wh..wh..opq')));
    assert.equal(ov.lstat(m + '/d'), -E.ENOENT);
    assert.equal(ov.unlink(m + '/emptydir/x'), 0);
    assert.deepEqual(names(ov, m + '/emptydir'), []);
    assert.equal(ov.rmdir(m + '/emptydir'), 0);
    assert.ok(fs.existsSync(path.join(up, '.wh.emptydir')));
    assert.equal(ov.lstat(m + '/emptydir'), -E.ENOENT);
    assert.equal(ov.mkdir(m + '/emptydir', 0o755), 0);
    assert.deepEqual(names(ov, m + '/emptydir'), []);
    assert.equal(ov.link(m + '/a/file2', m + '/a/hard'), 0);
    assert.equal(fs.statSync(path.join(up, 'a/hard')).nlink, 2);
    assert.deepEqual(names(ov, m), ['a', 'emptydir']);
    assert.deepEqual([snapshot(l1), snapshot(l2)], before);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});
