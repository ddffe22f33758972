/**
 * Unit tests of guest path resolution: --root confinement (symlinks,
 * `..`, loops), virtual files, and the guest working directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Vfs, lexicalJoin, MAX_LINK_HOPS, resolveGuestPath } from '../../src/process/vfs.js';
import { NodeHostOs } from '../../src/host/node-host-os.js';
import { Harness, NR, tempDir, AT_FDCWD, O_RDONLY, O_WRONLY, O_CREAT } from './syscall-harness.js';

const ENOENT = 2, ENOTDIR = 20, ELOOP = 40;

/** A root with /etc/passwd, /bin, links and loops. */
function makeRoot(): string {
  const root = tempDir('root');
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'inside\n');
  fs.mkdirSync(path.join(root, 'bin'));
  fs.mkdirSync(path.join(root, 'usr/lib'), { recursive: true });
  fs.symlinkSync('/etc/passwd', path.join(root, 'abs-link'));
  fs.symlinkSync('../../../../../../etc/passwd', path.join(root, 'usr/lib/rel-link'));
  fs.symlinkSync('/usr/lib', path.join(root, 'lib'));
  fs.symlinkSync('/loop-b', path.join(root, 'loop-a'));
  fs.symlinkSync('/loop-a', path.join(root, 'loop-b'));
  fs.symlinkSync('self', path.join(root, 'self'));
  fs.symlinkSync('/nowhere', path.join(root, 'dangling'));
  return root;
}

function vfsFor(root: string): Vfs {
  return new Vfs(new NodeHostOs(), root, { pid: () => 77, exePath: () => '/bin/prog', maps: () => 'MAPS\n', fds: () => [0, 1, 2] });
}

/** Reads a whole guest file through openat/read. */
function readGuest(h: Harness, p: string): string | number {
  const fd = h.call(NR.openat, AT_FDCWD, h.str(p), O_RDONLY);
  if (fd < 0) return fd;
  const buf = h.alloc(4096), n = h.call(NR.read, fd, buf, 4096);
  h.call(NR.close, fd);
  return n < 0 ? n : h.text(buf, n);
}

test('lexicalJoin normalises and clamps at /', () => {
  assert.equal(lexicalJoin('/a/b', '../c'), '/a/c');
  assert.equal(lexicalJoin('/a', '../../../x'), '/x');
  assert.equal(lexicalJoin('/a', '/b/./c/'), '/b/c');
  assert.equal(lexicalJoin('/', '.'), '/');
});

test('an absolute symlink to /etc/passwd resolves inside the root', () => {
  const root = makeRoot();
  const h = new Harness({ root });
  assert.equal(readGuest(h, '/abs-link'), 'inside\n');
  const r = vfsFor(root).resolve('/', '/abs-link', true);
  assert.ok(typeof r !== 'number' && r.kind === 'host');
  if (typeof r !== 'number' && r.kind === 'host') {
    assert.equal(r.host, path.join(root, 'etc/passwd'));
    assert.equal(r.guest, '/etc/passwd');
  }
});

test('.. cannot climb out of the root', () => {
  const root = makeRoot();
  const h = new Harness({ root });
  assert.equal(readGuest(h, '../../../etc/passwd'), 'inside\n');
  assert.equal(readGuest(h, '/bin/../../../../etc/passwd'), 'inside\n');
  assert.equal(readGuest(h, '/usr/lib/rel-link'), 'inside\n');
  assert.equal(readGuest(h, '/lib/rel-link'), 'inside\n'); // through a directory symlink
  assert.equal(h.call(NR.chdir, h.str('/../../..')), 0);
  const buf = h.alloc(64), n = h.call(NR.getcwd, buf, 64);
  assert.equal(h.text(buf, n - 1), '/');
});

test('symlink loops give ELOOP', () => {
  const root = makeRoot();
  const h = new Harness({ root });
  assert.equal(readGuest(h, '/loop-a'), -ELOOP);
  assert.equal(readGuest(h, '/self'), -ELOOP);
  assert.equal(readGuest(h, '/self/x'), -ELOOP);
  const v = vfsFor(root);
  assert.equal(v.resolve('/', '/loop-a/x', true), -ELOOP);
  // Not following the last component is fine: lstat sees the link itself.
  const st = h.alloc(128);
  assert.equal(h.call(NR.newfstatat, AT_FDCWD, h.str('/loop-a'), st, 0x100 /* AT_SYMLINK_NOFOLLOW */), 0);
});

test('a chain of exactly MAX_LINK_HOPS links resolves; one more is ELOOP', () => {
  const root = makeRoot();
  for (let i = 0; i < MAX_LINK_HOPS + 1; i++) fs.symlinkSync(i === 0 ? '/etc/passwd' : `/c${i - 1}`, path.join(root, `c${i}`));
  const v = vfsFor(root);
  const ok = v.resolve('/', `/c${MAX_LINK_HOPS - 1}`, true);
  assert.ok(typeof ok !== 'number' && ok.guest === '/etc/passwd');
  assert.equal(v.resolve('/', `/c${MAX_LINK_HOPS}`, true), -ELOOP);
});

test('missing and non-directory components', () => {
  const root = makeRoot();
  const v = vfsFor(root);
  assert.equal(v.resolve('/', '/nope/x', true), -ENOENT);
  assert.equal(v.resolve('/', '/etc/passwd/x', true), -ENOTDIR);
  // A missing last component resolves (for O_CREAT); a dangling link is followed to its target.
  const d = v.resolve('/', '/dangling', true);
  assert.ok(typeof d !== 'number' && d.kind === 'host' && d.host === path.join(root, 'nowhere'));
  const h = new Harness({ root });
  const fd = h.call(NR.openat, AT_FDCWD, h.str('/dangling'), O_WRONLY | O_CREAT, 0o644);
  assert.ok(fd >= 3);
  assert.ok(fs.existsSync(path.join(root, 'nowhere')));
});

test('files created in the root stay in the root', () => {
  const root = makeRoot();
  const h = new Harness({ root });
  const fd = h.call(NR.openat, AT_FDCWD, h.str('/../../new-file'), O_WRONLY | O_CREAT, 0o644);
  assert.ok(fd >= 3);
  assert.equal(h.call(NR.write, fd, h.str('data'), 4), 4);
  assert.equal(fs.readFileSync(path.join(root, 'new-file'), 'utf8'), 'data');
  assert.equal(h.call(NR.mkdirat, AT_FDCWD, h.str('/../d'), 0o755), 0);
  assert.ok(fs.statSync(path.join(root, 'd')).isDirectory());
});

test('virtual files: /proc/self/exe, /proc/self/maps, /dev/null and /dev/zero under a root', () => {
  const root = makeRoot();
  const h = new Harness({ root, exePath: '/bin/prog' });
  const buf = h.alloc(256);
  const n = h.call(NR.readlinkat, AT_FDCWD, h.str('/proc/self/exe'), buf, 256);
  assert.equal(h.text(buf, n), '/bin/prog');
  const m = readGuest(h, '/proc/self/maps');
  assert.equal(typeof m, 'string');
  assert.match(m as string, /^[0-9a-f]+-[0-9a-f]+ /);
  assert.equal(readGuest(h, '/dev/null'), '');
  const fd = h.call(NR.openat, AT_FDCWD, h.str('/dev/zero'), O_RDONLY);
  h.proc.mem.write(buf, new Uint8Array([9, 9, 9]));
  assert.equal(h.call(NR.read, fd, buf, 3), 3);
  assert.deepEqual([...h.read(buf, 3)], [0, 0, 0]);
  const wfd = h.call(NR.openat, AT_FDCWD, h.str('/dev/null'), O_WRONLY);
  assert.equal(h.call(NR.write, wfd, buf, 3), 3);
  // /proc/self/fd/N names the guest's open files.
  const pf = h.call(NR.openat, AT_FDCWD, h.str('/etc/passwd'), O_RDONLY);
  const k = h.call(NR.readlinkat, AT_FDCWD, h.str(`/proc/self/fd/${pf}`), buf, 256);
  assert.equal(h.text(buf, k), '/etc/passwd');
  assert.equal(readGuest(h, `/proc/self/fd/${pf}`), 'inside\n');
  assert.equal(readGuest(h, '/proc/self/fd/99'), -ENOENT);
});

test('the working directory is a guest path; dir fds anchor relative lookups', () => {
  const root = makeRoot();
  const h = new Harness({ root });
  assert.equal(h.call(NR.chdir, h.str('/lib')), 0); // a symlink to /usr/lib
  const buf = h.alloc(256);
  const n = h.call(NR.getcwd, buf, 256);
  assert.equal(h.text(buf, n - 1), '/usr/lib');
  assert.equal(readGuest(h, 'rel-link'), 'inside\n');
  const dfd = h.call(NR.openat, AT_FDCWD, h.str('/etc'), O_RDONLY);
  const st = h.alloc(128);
  assert.equal(h.call(NR.newfstatat, dfd, h.str('passwd'), st, 0), 0);
  assert.equal(h.call(NR.newfstatat, dfd, h.str('../../etc/passwd'), st, 0), 0);
});

test('the initial cwd with a root is the host cwd inside it, else /', () => {
  const root = makeRoot();
  const host = new NodeHostOs();
  const saved = process.cwd();
  try {
    process.chdir(path.join(root, 'usr'));
    assert.equal(Vfs.initialCwd(host, root), '/usr');
    process.chdir(path.dirname(root));
    assert.equal(Vfs.initialCwd(host, root), '/');
  } finally {
    process.chdir(saved);
  }
  assert.equal(resolveGuestPath(host, root, '/', '/abs-link'), path.join(root, 'etc/passwd'));
  assert.equal(resolveGuestPath(host, root, '/', '/loop-a'), null);
});

test('without a root, guest paths are host paths', () => {
  const dir = tempDir('noroot');
  fs.writeFileSync(path.join(dir, 'f'), 'host file');
  const h = new Harness();
  assert.equal(readGuest(h, path.join(dir, 'f')), 'host file');
  const v = new Vfs(new NodeHostOs(), undefined, { pid: () => 1, exePath: () => '/x', maps: () => '', fds: () => [] });
  const r = v.resolve(dir, 'f', true);
  assert.ok(typeof r !== 'number' && r.kind === 'host' && r.host === path.join(dir, 'f'));
});

test('/dev/pts lists the VM\'s emulated terminals; /dev/pts/N is char 136:N, a missing one ENOENT', () => {
  const v = new Vfs(new NodeHostOs(), makeRoot(), { pid: () => 1, exePath: () => '/x', maps: () => '', fds: () => [], pty: () => [0, 2] });
  const dir = v.resolve('/', '/dev/pts', true);
  assert.ok(typeof dir !== 'number' && dir.kind === 'virtual' && dir.node.t === 'dir');
  assert.deepEqual(typeof dir !== 'number' && dir.kind === 'virtual' && dir.node.t === 'dir' ? dir.node.entries : null, ['0', '2']);
  assert.equal(v.resolve('/', '/dev/pts/1', true), -ENOENT, 'no terminal 1');
  assert.equal(v.resolve('/', '/dev/pts/x', true), -ENOENT);
  const two = v.resolve('/', '/dev/pts/2', true);
  assert.ok(typeof two !== 'number' && two.kind === 'virtual' && two.node.t === 'pty');
  if (typeof two === 'number' || two.kind !== 'virtual') return;
  const st = v.virtualStat(two.node);
  assert.equal(st.rdev, (136n << 8n) | 2n, 'char 136:2 (devpts)');
  assert.notEqual(st.ino, v.virtualStat({ t: 'pty', name: 'pts', n: 0 }).ino, 'each terminal its own inode (ttyname compares them)');
  const none = new Vfs(new NodeHostOs(), makeRoot(), { pid: () => 1, exePath: () => '/x', maps: () => '', fds: () => [], pty: () => [] });
  const tty = none.resolve('/', '/dev/tty', true);
  assert.ok(typeof tty !== 'number' && tty.kind !== 'virtual', 'without terminals /dev/tty is the host\'s');
});
