/**
 * The drop-in `tsvm-riscv64`'s command line (src/cli/qemu-user-args.ts):
 * QEMU 7.2's options and QEMU_* variables, QEMU's envlist order for the
 * guest environment, the options refused with one line, and the HostOs
 * that applies -L, -r and -seed (src/process/qemu-user-host-os.ts). The
 * launcher itself is run for its usage errors and texts; the programs it
 * runs are compared with qemu-riscv64 in tests/workloads/dropin.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_LD_PREFIX, parseQemuUserArgs, QemuUserUsageError, type QemuUserRequest, type QemuUserRun,
} from '../../src/cli/qemu-user-args.js';
import { QemuUserHostOs } from '../../src/process/qemu-user-host-os.js';
import { NodeHostOs } from '../../src/host/node-host-os.js';
import { REPO_ROOT } from '../helpers/toolchain.js';

const LAUNCHER = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'tsvm-riscv64.js');

function run(argv: string[], env: Record<string, string> = {}): QemuUserRun {
  const r: QemuUserRequest = parseQemuUserArgs(argv, env, '9.9.9');
  assert.equal(r.kind, 'run');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.run;
}

function usageError(argv: string[], pattern: RegExp, env: Record<string, string> = {}): void {
  assert.throws(() => parseQemuUserArgs(argv, env, '9.9.9'), (e: unknown) => e instanceof QemuUserUsageError && pattern.test(e.message),
    `${argv.join(' ')}: expected a usage error matching ${pattern}`);
}

test('the program, its arguments, and options only before it', () => {
  const r = run(['-L', '/sys', './prog', '-L', 'x', '--', 'y']);
  assert.equal(r.program, './prog');
  assert.deepEqual(r.args, ['-L', 'x', '--', 'y']);
  assert.equal(r.ldPrefix, '/sys');
  assert.equal(run(['--', '-prog']).program, '-prog', '-- ends the options');
  assert.equal(run(['--L', '/a', 'p']).ldPrefix, '/a', '--opt means -opt');
  assert.equal(run(['p']).ldPrefix, DEFAULT_LD_PREFIX, "Debian's default prefix");
});

test('QEMU_* variables apply first; the command line overrides them', () => {
  const env = { QEMU_LD_PREFIX: '/env', QEMU_ARGV0: 'from-env', QEMU_STRACE: '', QEMU_UNAME: '9.0', QEMU_RAND_SEED: '0x10' };
  const r = run(['p'], env);
  assert.equal(r.ldPrefix, '/env');
  assert.equal(r.argv0, 'from-env');
  assert.equal(r.strace, true, 'QEMU_STRACE set (even empty) turns -strace on');
  assert.equal(r.unameRelease, '9.0');
  assert.equal(r.seed, 16);
  const o = run(['-L', '/cmd', '-0', 'cmd', 'p'], env);
  assert.equal(o.ldPrefix, '/cmd');
  assert.equal(o.argv0, 'cmd');
});

test("the guest environment in QEMU's envlist order, with -E, -U, QEMU_SET_ENV and QEMU_UNSET_ENV", () => {
  // envlist_setenv puts each entry at the head: the host's order comes out reversed.
  assert.deepEqual(run(['p'], { A: '1', B: '2', TSVM_JIT: 'off' }).envp, ['B=2', 'A=1'], "reversed, without tsvm's TSVM_JIT");
  assert.deepEqual(run(['-E', 'C=3,D=4', '-U', 'A', 'p'], { A: '1', B: '2' }).envp, ['D=4', 'C=3', 'B=2']);
  assert.deepEqual(run(['-E', 'A=9', 'p'], { A: '1', B: '2' }).envp, ['A=9', 'B=2'], 'replacing moves the entry to the head');
  assert.deepEqual(run(['-E', 'X=1', '-E', 'X=2', 'p']).envp, ['X=2'], 'the last change wins');
  assert.deepEqual(run(['p'], { QEMU_SET_ENV: 'K=v', QEMU_UNSET_ENV: 'B', B: '2' }).envp,
    ['K=v', 'QEMU_UNSET_ENV=B', 'QEMU_SET_ENV=K=v'], 'the QEMU_* variables themselves stay, as in QEMU');
  usageError(['-E', 'novalue', 'p'], /-E 'novalue': expected var=value/);
  usageError(['-U', 'A=1', 'p'], /-U 'A=1'/);
});

test('accepted options: -cpu rv64 with its extensions, -s and -p at their only values, -B, -seed, -d strace, -singlestep, -D', () => {
  run(['-cpu', 'rv64,zba=true,zbb=true,zbs=true', 'p']);
  run(['-cpu', 'rv64', '-s', '8M', '-s', '8388608', '-s', '0x800000', '-p', '4096', '-B', '0x10000', 'p']);
  assert.equal(run(['-d', 'strace', 'p']).strace, true);
  assert.equal(run(['-singlestep', 'p']).oneInsnPerTb, true);
  assert.equal(run(['-one-insn-per-tb', 'p']).oneInsnPerTb, true);
  assert.equal(run(['-D', '/tmp/log', 'p']).logFile, '/tmp/log');
  assert.equal(run(['-seed', '42', 'p']).seed, 42);
  assert.equal(run(['-seed', '0x100000001', 'p']).seed, 0, 'a 64-bit seed folds to 32 bits');
});

test('refused options name themselves in one line', () => {
  usageError(['-g', '1234', 'p'], /^-g: not supported by tsvm: tsvm has no gdbstub$/);
  usageError(['p'], /^-g: not supported/, { QEMU_GDB: '1234' });
  usageError(['-R', '1G', 'p'], /^-R: not supported/);
  usageError(['-trace', 'x', 'p'], /^-trace: not supported/);
  usageError(['-plugin', 'x.so', 'p'], /^-plugin: not supported/);
  usageError(['-dfilter', '0x1..0x2', 'p'], /^-dfilter: not supported/);
  usageError(['-s', '1M', 'p'], /^-s: not supported by tsvm: the guest stack is fixed at 8388608 bytes$/);
  usageError(['-s', 'x', 'p'], /^-s 'x': expected a stack size$/);
  usageError(['-p', '8192', 'p'], /^-p: not supported/);
  usageError(['-p', '1000', 'p'], /^page size must be a power of two$/);
  usageError(['-d', 'in_asm', 'p'], /^-d: not supported by tsvm: log item 'in_asm' \(only strace\)$/);
  usageError(['-d', 'bogus', 'p'], /^-d 'bogus': unknown log item/);
  usageError(['-cpu', 'sifive-u54', 'p'], /^unable to find CPU model 'sifive-u54'$/);
  usageError(['-cpu', 'rv64,v=true', 'p'], /^-cpu: not supported by tsvm: .*not 'v'$/);
  usageError(['-cpu', 'rv64,c=false', 'p'], /^-cpu: not supported by tsvm: 'c' cannot be turned off$/);
  usageError(['-seed', 'abc', 'p'], /^Invalid seed number$/);
});

test("QEMU's own usage errors", () => {
  usageError(['-foo', 'p'], /^unknown option 'foo'$/);
  usageError(['-L'], /^missing argument for option 'L'$/);
  usageError([], /^no user program specified$/);
  usageError(['-E', 'A=1'], /^no user program specified$/);
});

test('-h, -version, -cpu help and -d help are texts; -h stops at once', () => {
  const t = (argv: string[], env: Record<string, string> = {}): string => {
    const r = parseQemuUserArgs(argv, env, '9.9.9');
    assert.equal(r.kind, 'text', argv.join(' '));
    return r.kind === 'text' ? r.text : '';
  };
  const help = t(['-h']);
  assert.match(help, /^usage: tsvm-riscv64 \[options\] program \[arguments\.\.\.\]$/m);
  for (const o of ['-g port', '-L path', '-s size', '-cpu model', '-E var=value', '-U var', '-0 argv0', '-r uname', '-B address',
    '-R size', '-d item', '-dfilter', '-D logfile', '-p pagesize', '-singlestep', '-strace', '-seed', '-trace', '-plugin', '-version']) {
    assert.ok(help.includes('\n' + o), `help lists ${o}`);
  }
  assert.match(help, /^-L path +QEMU_LD_PREFIX +set the elf interpreter prefix/m);
  assert.equal(t(['-h', '-foo']), help, 'nothing after -h is parsed');
  assert.equal(t(['-version']), 'tsvm-riscv64 version 9.9.9 (tsvm; qemu-riscv64 7.2 command line)\n');
  assert.match(t(['p'], { QEMU_VERSION: '' }), /version 9\.9\.9/);
  assert.match(t(['-cpu', 'help']), /^ {2}rv64 /m);
  assert.match(t(['-d', 'help']), /^strace /m);
});

test('QemuUserHostOs: the prefix as QEMU path() applies it, remembered per path', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-dropin-prefix-'));
  try {
    const prefix = path.join(dir, 'prefix'), host = path.join(dir, 'host');
    fs.mkdirSync(path.join(prefix, host), { recursive: true });
    fs.mkdirSync(host, { recursive: true });
    fs.writeFileSync(path.join(prefix, host, 'both'), 'prefix');
    fs.writeFileSync(path.join(host, 'both'), 'host');
    fs.writeFileSync(path.join(host, 'only-host'), 'host');
    fs.symlinkSync('nowhere', path.join(prefix, host, 'dangling'));
    const h = new QemuUserHostOs(new NodeHostOs(), { prefix: prefix + '/' });
    assert.equal(h.prefixed(path.join(host, 'both')), path.join(prefix, host, 'both'));
    assert.equal(h.prefixed(path.join(host, 'only-host')), path.join(host, 'only-host'));
    assert.equal(h.prefixed(path.join(host, 'dangling')), path.join(host, 'dangling'), 'access(F_OK) follows symlinks');
    assert.equal(h.prefixed('relative/both'), 'relative/both', 'relative paths are left alone');
    const st = h.stat(path.join(host, 'both'));
    assert.ok(typeof st !== 'number' && Number(st.size) === 6, 'stat goes to the prefix copy (6 bytes)');
    fs.writeFileSync(path.join(prefix, host, 'only-host'), 'late');
    assert.equal(h.prefixed(path.join(host, 'only-host')), path.join(host, 'only-host'), 'a miss is remembered, as QEMU does');
    const none = new QemuUserHostOs(new NodeHostOs(), {});
    assert.equal(none.prefixed(path.join(host, 'both')), path.join(host, 'both'), 'no prefix: paths as given');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('QemuUserHostOs: -r sets the uname release; -seed makes random bytes repeat', () => {
  const inner = new NodeHostOs();
  const u = new QemuUserHostOs(inner, { unameRelease: '1.2.3-test' }).uname();
  assert.equal(u.release, '1.2.3-test');
  assert.equal(u.nodename, inner.uname().nodename);
  const bytes = (seed: number): Uint8Array => { const b = new Uint8Array(64); new QemuUserHostOs(inner, { seed }).randomFill(b); return b; };
  assert.deepEqual(bytes(7), bytes(7));
  assert.notDeepEqual(bytes(7), bytes(8));
  assert.ok(new Set(bytes(7)).size > 16, 'the bytes vary');
});

test('the launcher: one line and exit 1 for usage errors, texts on stdout with exit 0', () => {
  const go = (argv: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, [LAUNCHER, ...argv], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env['PATH'] ?? '' } });
  for (const [argv, msg] of [[['-foo'], "tsvm-riscv64: unknown option 'foo'"], [[], 'tsvm-riscv64: no user program specified'],
    [['-g', '1', 'p'], 'tsvm-riscv64: -g: not supported by tsvm: tsvm has no gdbstub'],
    [['/nonexistent/prog'], 'tsvm-riscv64: Error while loading /nonexistent/prog: No such file or directory']] as const) {
    const r = go([...argv]);
    assert.equal(r.status, 1, `${argv.join(' ')}: exit status`);
    assert.equal(r.stderr, msg + '\n');
    assert.equal(r.stdout, '');
  }
  const v = go(['-version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^tsvm-riscv64 version \d+\.\d+\.\d+ /);
});
