/**
 * The process runtime's isolation (`tsvm exec --lower/--upper/--hostname/
 * --pid-ns/--memory-limit/--pids-limit/--cpus`), with Debian trixie's
 * busybox-static (riscv64) as the container's userland:
 * - file operations through an overlay of two lower layers (one with OCI
 *   whiteouts and an opaque directory) print exactly what qemu-riscv64
 *   prints running the same script on a flattened copy of the layers;
 *   the lowers are byte-for-byte unchanged afterwards and the upper holds
 *   the OCI layer diff (copied-up files, whiteouts, opaque markers);
 * - a PID namespace (pid 1, children from 2, getppid 0, init immune to
 *   signals it has no handler for), the hostname;
 * - the limits: memory (exit 137, a second VM alongside unaffected), pids
 *   (fork fails with EAGAIN), cpus;
 * - bad option values: one line, exit 125.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { DebianArchive } from '../../src/images/debian-archive.js';
import { REPO_ROOT } from '../helpers/toolchain.js';
import { QEMU_CPU, TSVM_CLI, firstDifference, guestEnv, tsvmEnv, requireQemu, requireTsvm, runHost, type RunResult } from '../helpers/guest-run.js';

const ROOT = path.join(REPO_ROOT, '.cache', 'roots', 'busybox-static');

let work = '';
let base = '';
let bb = '';

/** Writes `files` (path -> content; content null: a directory) under `dir`. */
function writeTree(dir: string, files: Record<string, string | null>): void {
  for (const [p, c] of Object.entries(files)) {
    const full = path.join(dir, p);
    if (c === null) { fs.mkdirSync(full, { recursive: true }); continue; }
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, c);
  }
}

/** A digest of every path, type, mode, size and content under `dir`. */
function treeDigest(dir: string): string {
  const h = crypto.createHash('sha256');
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name), st = fs.lstatSync(p);
      h.update(`${path.relative(dir, p)} ${st.mode} ${st.size} ${st.mtimeMs}\n`);
      if (st.isSymbolicLink()) h.update(fs.readlinkSync(p));
      else if (st.isDirectory()) walk(p);
      else h.update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** Runs `tsvm exec FLAGS /bin/busybox ARGS...`. */
function tsvm(flags: string[], args: string[], timeoutMs = 120_000): Promise<RunResult> {
  return runHost(process.execPath, [TSVM_CLI, 'exec', ...flags, '/bin/busybox', ...args], { env: tsvmEnv(), timeoutMs });
}

/** The layers: `base` is busybox's root, l1 a data layer, l2 one with whiteouts and an opaque directory over it. */
const L1: Record<string, string | null> = {
  'w/keep': 'keep\n', 'w/gone': 'gone\n', 'w/over': 'lower over\n', 'w/dir/x': 'x\n', 'w/dir/y': 'y\n',
  'w/dir/sub/z': 'z\n', 'w/opq/old': 'old\n', 'w/empty': null,
};
const L2: Record<string, string | null> = {
  'w/.wh.gone': '', 'w/over': 'upper over\n', 'w/opq/.wh..wh..opq': '', 'w/opq/new': 'new\n',
};
/** The same tree flattened by hand with OCI semantics. */
const FLAT: Record<string, string | null> = {
  'w/keep': 'keep\n', 'w/over': 'upper over\n', 'w/dir/x': 'x\n', 'w/dir/y': 'y\n', 'w/dir/sub/z': 'z\n',
  'w/opq/new': 'new\n', 'w/empty': null,
};

/** Ordinary file operations on the tree under `w` (relative paths: the container starts in "/"). */
const SCRIPT = [
  'find w | sort', 'cat w/keep w/over w/opq/new', 'ls w/gone; echo gone=$?', 'ls -A w/opq',
  'echo more >> w/keep; cat w/keep', 'chmod 600 w/dir/x; stat -c "%a %s %n" w/dir/x',
  'rm w/dir/y; ls -A w/dir', 'rm -r w/opq; ls -A w', 'mkdir w/opq; ls -A w/opq; echo again > w/opq/f; ls -A w/opq',
  'mv w/dir w/dir2; find w | sort; cat w/dir2/sub/z', 'ln w/keep w/keep2; cat w/keep2; stat -c %h w/keep',
  'touch -d "2020-01-02 03:04:05" w/over; stat -c %Y w/over', 'truncate -s 3 w/over; cat w/over; echo',
  'ln -s keep w/lnk; cat w/lnk; readlink w/lnk', 'mv w/keep2 w/renamed; cat w/renamed; ls w/keep2; echo keep2=$?',
  'rmdir w/empty; ls -A w', 'mkdir w/empty; ls -A w/empty; rmdir w/dir2; echo rmdir=$?',
  'echo x > w/new; mv w/new w/over; cat w/over', 'ls -la w/lnk | cut -c1-10',
].join('; echo --; ');

describe('container sandbox on the process VM (busybox-static)', { concurrency: 1 }, () => {
  before(async () => {
    requireTsvm();
    const archive = new DebianArchive({ progress: false });
    await archive.installRoot(['busybox-static'], ROOT);
    bb = fs.realpathSync(path.join(ROOT, 'usr', 'bin', 'busybox'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-sandbox-'));
    base = path.join(work, 'base');
    // A copy of the busybox root: the test checks that the lowers are never written.
    fs.cpSync(ROOT, base, { recursive: true, verbatimSymlinks: true });
  });
  after(() => { if (work !== '') fs.rmSync(work, { recursive: true, force: true }); });

  test('overlay: file operations match qemu-riscv64 on a flattened tree; lowers unchanged; upper is an OCI diff', async () => {
    const l1 = path.join(work, 'l1'), l2 = path.join(work, 'l2'), up = path.join(work, 'up'), flat = path.join(work, 'flat');
    writeTree(l1, L1); writeTree(l2, L2); writeTree(flat, FLAT); fs.mkdirSync(up);
    for (const d of [l1, l2, flat]) for (const f of ['w/over', 'w/keep']) {
      if (fs.existsSync(path.join(d, f))) fs.utimesSync(path.join(d, f), 1e9, 1e9);
    }
    const before = [base, l1, l2].map(treeDigest);
    const t = await tsvm(['--lower', base, '--lower', l1, '--lower', l2, '--upper', up], ['sh', '-c', SCRIPT]);
    requireQemu();
    const q = await runHost('qemu-riscv64', ['-cpu', QEMU_CPU, bb, 'sh', '-c', SCRIPT], { cwd: flat, env: guestEnv() });
    assert.equal(q.status, 0, q.stderr);
    assert.equal(t.status, q.status, t.stderr);
    assert.ok(t.stdout.equals(q.stdout), firstDifference(t.stdout, q.stdout));
    assert.match(t.stdout.toString(), /^w\nw\/dir\n[^]*upper over\n[^]*keep\nmore\n/, 'the script ran');
    assert.equal(t.stderr, q.stderr);
    assert.deepEqual([base, l1, l2].map(treeDigest), before, 'a lower layer was written');
    const has = (p: string): boolean => fs.existsSync(path.join(up, p));
    // Deleted and renamed-away lower names are whiteouts; the directory re-made over a whiteout is opaque.
    for (const p of ['w/.wh.dir', 'w/opq/.wh..wh..opq', 'w/keep', 'w/dir2/sub/z', 'w/dir2/.wh.y', 'w/opq/f']) assert.ok(has(p), `upper lacks ${p}`);
    assert.ok(!has('w/gone') && !has('w/.wh.gone'), 'a name hidden by a lower whiteout needs none in the upper');
    assert.equal(fs.readFileSync(path.join(up, 'w/keep'), 'utf8'), 'keep\nmore\n');
  });

  test('overlay: the guest never sees or makes .wh. names, and symlinks stay inside the root', async () => {
    const up = path.join(work, 'up-wh');
    fs.mkdirSync(up);
    fs.writeFileSync(path.join(up, '.wh.sbin'), '');
    fs.symlinkSync('/../../../../etc/hostname', path.join(up, 'esc'));
    const r = await tsvm(['--lower', base, '--upper', up], ['sh', '-c', 'ls -A /; ls /sbin; echo sbin=$?; echo x > /.wh.y; echo wh=$?; cat /esc; echo esc=$?']);
    const out = r.stdout.toString();
    assert.doesNotMatch(out, /\.wh\./);
    assert.match(out, /sbin=1\n/);
    assert.doesNotMatch(out, /^sbin$/m);
    assert.match(out, /wh=1\n/);
    assert.match(out, /esc=1\n/);
    assert.ok(!fs.existsSync(path.join(up, '.wh.y')));
  });

  test('PID namespace and hostname: pid 1, children from 2, ppid 0, init ignores unhandled signals', async () => {
    const up = path.join(work, 'up-pid');
    fs.mkdirSync(up);
    const r = await tsvm(['--lower', base, '--upper', up, '--pid-ns', '--hostname', 'box-7'],
      ['sh', '-c', 'echo $$; cut -d" " -f1,4 /proc/self/stat; sh -c "echo \\$\\$ \\$PPID"; hostname; uname -n; ' +
        'sh -c "kill -TERM 1; kill -KILL 1; echo sent=\\$?"; echo alive']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString(), '1\n2 1\n3 1\nbox-7\nbox-7\nsent=0\nalive\n');
    const n = await tsvm(['--lower', base, '--upper', up], ['sh', '-c', 'echo $$']);
    assert.notEqual(n.stdout.toString(), '1\n', 'without --pid-ns the pid is the host\'s');
  });

  test('sethostname changes the container\'s name only; outside a container it is EPERM', async () => {
    const up = path.join(work, 'up-uts');
    fs.mkdirSync(up);
    const r = await tsvm(['--lower', base, '--upper', up, '--hostname', 'first'], ['sh', '-c', 'hostname; hostname second; echo rc=$?; uname -n']);
    assert.equal(r.stdout.toString(), 'first\nrc=0\nsecond\n', r.stderr);
    assert.equal(os.hostname() === 'second', false);
    const h = await runHost(process.execPath, [TSVM_CLI, 'exec', '--root', base, '/bin/busybox', 'sh', '-c', 'hostname second; echo rc=$?'], { env: tsvmEnv() });
    assert.equal(h.stdout.toString(), 'rc=1\n');
    assert.match(h.stderr, /Operation not permitted/);
  });

  test('PID namespace: when init ends on a signal it handles, the rest of the container is killed', async () => {
    const up = path.join(work, 'up-init');
    fs.mkdirSync(up);
    // `sleep 1000` would keep the run past the 120 s limit if it outlived pid 1.
    const r = await tsvm(['--lower', base, '--upper', up, '--pid-ns'],
      ['sh', '-c', 'trap "echo got; exit 3" TERM; sleep 1000 & sh -c "kill -TERM 1"; wait; echo not-reached']);
    assert.equal(r.timedOut, false);
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout.toString(), 'got\n');
  });

  test('PID namespace: /proc and busybox ps list exactly the container\'s processes', async () => {
    const up = path.join(work, 'up-ps');
    fs.mkdirSync(up);
    const r = await tsvm(['--lower', base, '--upper', up, '--pid-ns'],
      ['sh', '-c', 'sleep 30 & sh -c "sleep 30; true" & ' +
        // Wait until the second job has forked its sleep (a grep whose parent is pid 3 shows up).
        'until grep -l "^PPid:.3\\$" /proc/[0-9]*/status >/dev/null 2>&1; do sleep 0.1; done; ' +
        'ps -o pid,ppid,comm,args; ls /proc; cat /proc/2/cmdline | tr "\\0" " "; echo; ' +
        'grep -E "^(Pid|PPid|State)" /proc/3/status']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.toString().split('\n');
    // The shell (1), its jobs `sleep 30` (2) and `sh -c` (3), that one's `sleep 30`, and ps itself (a
    // fork of the shell that runs the applet without exec, so it shows the shell's argv, as on Linux).
    assert.equal(lines[0]?.trim().split(/\s+/).join(' '), 'PID PPID COMMAND COMMAND');
    const rows = lines.slice(1, 6).map((l) => l.trim().split(/\s+/));
    const ids = rows.map((x) => x.slice(0, 3).join(' '));
    assert.deepEqual(ids.slice(0, 3), ['1 0 busybox', '2 1 sleep', '3 1 sh'], lines.join('\n'));
    const grandchild = rows.find((x) => x[1] === '3' && x[2] === 'sleep');
    assert.ok(grandchild !== undefined, lines.join('\n'));
    assert.ok(rows.some((x) => x[1] === '1' && x[2] === 'busybox' && x[0] !== '1'), 'ps lists itself');
    assert.match(lines[2] ?? '', /sleep 30$/);
    // /proc: the four, `ls` itself and self (ls sorts the names as text).
    const listed = lines.slice(6, 12);
    for (const n of ['1', '2', '3', grandchild[0]!, 'self']) assert.ok(listed.includes(n), `${n} not in ${listed.join(' ')}`);
    assert.match(lines.slice(12).join('\n'), /^sleep 30 \nState:\t[RS] \(\w+\)\nPid:\t3\nPPid:\t1\n/);
  });

  test('own /dev (with the std links) and /tmp: a second container does not see the first one\'s files', async () => {
    const up1 = path.join(work, 'up-dev1'), up2 = path.join(work, 'up-dev2');
    fs.mkdirSync(up1); fs.mkdirSync(up2);
    const a = await tsvm(['--lower', base, '--upper', up1], ['sh', '-c', 'ls /dev | tr "\\n" " "; echo; readlink /dev/stdout; echo to-err > /dev/stderr; ' +
      'echo mine > /tmp/f; cat /tmp/f; head -c 4 /dev/zero | od -An -tx1; head -c 8 /dev/urandom | wc -c']);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(a.stdout.toString(), 'fd full null random stderr stdin stdout tty urandom zero \n/proc/self/fd/1\nmine\n 00 00 00 00\n8\n');
    assert.equal(a.stderr, 'to-err\n');
    assert.equal(fs.readFileSync(path.join(up1, 'tmp', 'f'), 'utf8'), 'mine\n');
    assert.equal(fs.statSync(path.join(up1, 'tmp')).mode & 0o7777, 0o1777);
    const b = await tsvm(['--lower', base, '--upper', up2], ['sh', '-c', 'ls -A /tmp; echo n=$?']);
    assert.equal(b.stdout.toString(), 'n=0\n');
  });

  test('--memory-limit: the container is OOM-killed (137), a VM alongside goes on', async () => {
    const up = path.join(work, 'up-mem');
    fs.mkdirSync(up);
    const loop = 'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; echo done';
    const [hog, other] = await Promise.all([
      tsvm(['--lower', base, '--upper', up, '--memory-limit', '32M'], ['sh', '-c', 'echo start; dd if=/dev/zero of=/dev/null bs=64M count=1; echo after']),
      tsvm(['--lower', base, '--upper', up, '--memory-limit', '64M'], ['sh', '-c', loop]),
    ]);
    assert.equal(hog.status, 137, hog.stderr);
    assert.equal(hog.stdout.toString(), 'start\n');
    assert.match(hog.stderr, /out of memory/);
    assert.equal(other.status, 0, other.stderr);
    assert.equal(other.stdout.toString(), 'done\n');
    const ok = await tsvm(['--lower', base, '--upper', up, '--memory-limit', '128M'], ['sh', '-c', 'dd if=/dev/zero of=/dev/null bs=16M count=1 2>/dev/null; echo after']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout.toString(), 'after\n');
  });

  test('--pids-limit: fork beyond it fails with EAGAIN; --cpus below 1 still runs to completion', async () => {
    const up = path.join(work, 'up-pids');
    fs.mkdirSync(up);
    const r = await tsvm(['--lower', base, '--upper', up, '--pids-limit', '2'], ['sh', '-c', 'ls / >/dev/null; echo a=$?; (ls / | cat >/dev/null); echo b=$?']);
    assert.equal(r.stdout.toString(), 'a=0\nb=2\n');
    assert.match(r.stderr, /can't fork: Resource temporarily unavailable/);
    const c = await tsvm(['--lower', base, '--upper', up, '--cpus', '0.5'], ['sh', '-c', 'i=0; while [ $i -lt 500 ]; do i=$((i+1)); done; echo $i']);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout.toString(), '500\n');
  });

  test('bad sandbox options: one line and exit 125', async () => {
    const up = path.join(work, 'up-bad');
    fs.mkdirSync(up);
    const cases: Array<[string[], RegExp]> = [
      [['--memory-limit', '0'], /--memory-limit 0: expected a size/],
      [['--pids-limit', '-1'], /--pids-limit -1: expected a whole number/],
      [['--cpus', '0'], /--cpus 0: expected a number greater than 0/],
      [['--lower', path.join(work, 'missing'), '--upper', up], /lower directory .*missing: not a directory/],
      [['--lower', base], /--lower needs --upper/],
      [['--lower', base, '--upper', path.join(base, 'usr')], /overlaps lower directory/],
      [['--hostname', 'a b'], /hostname "a b": expected/],
      [['--root', base, '--lower', base, '--upper', up], /--root cannot be combined/],
    ];
    for (const [flags, re] of cases) {
      const r = await tsvm(flags, ['true']);
      assert.equal(r.status, 125, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
