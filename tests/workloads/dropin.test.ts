/**
 * The drop-in binaries against their originals. `tsvm-riscv64` and
 * qemu-riscv64 (the oracle) run the same program with the same options
 * and QEMU_* variables: -L (a dynamically linked program on the cross
 * glibc's sysroot, and Debian's lua5.4 on its own root), -E, -U, -0, -r,
 * -cpu; stdout and the exit status must be identical, including the
 * environment's order, and the exit statuses of binfmt-style use (the
 * program's status, a signal, a missing or non-ELF program, bad options).
 * `tsvm-system-riscv64 -M virt -bios none -nographic -kernel ELF` boots a
 * bare-metal test program exactly as `tsvm run` does.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileText, REPO_ROOT } from '../helpers/toolchain.js';
import { compileBaremetal } from '../helpers/baremetal.js';
import { mirrorConfigured } from '../helpers/mirror.js';
import { QmpClient } from '../helpers/qmp-client.js';
import { DebianArchive } from '../../src/images/debian-archive.js';
import {
  ensureSysroot, firstDifference, guestEnv, isModuleLoadFailure, QEMU_CPU, requireQemu, requireTsvm, runHost, tsvmEnv, TSVM_CLI, type RunResult,
} from '../helpers/guest-run.js';

const USER = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'tsvm-riscv64.js');
const SYSTEM = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'tsvm-system-riscv64.js');

/** Prints argv, the whole environment in order and the uname release; exits with argv[1] (or aborts). */
const PROBE = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/random.h>
extern char **environ;
int main(int argc, char **argv) {
  for (int i = 0; i < argc; i++) printf("argv[%d]=%s\\n", i, argv[i]);
  for (char **e = environ; *e; e++) printf("env %s\\n", *e);
  struct utsname u;
  if (uname(&u) == 0) printf("release %s\\n", u.release);
  unsigned char b[8];
  if (argc > 1 && strcmp(argv[1], "random") == 0 && getrandom(b, 8, 0) == 8) {
    for (int i = 0; i < 8; i++) printf("%02x", b[i]);
    printf("\\n");
  }
  if (argc > 1 && strcmp(argv[1], "abort") == 0) abort();
  return argc > 1 ? atoi(argv[1]) : 0;
}
`;

/** Runs the drop-in with `argv` (Node-load failures from a concurrent rebuild are retried). */
async function runDropin(launcher: string, argv: string[], env: Record<string, string>, cwd: string): Promise<RunResult> {
  requireTsvm();
  for (let attempt = 0; ; attempt++) {
    const r = await runHost(process.execPath, [launcher, ...argv], { env: tsvmEnv(env), cwd, timeoutMs: 240_000 });
    if (!isModuleLoadFailure(r) || attempt >= 2) return r;
    await new Promise((res) => setTimeout(res, 3000));
  }
}

/** Runs tsvm-riscv64 and qemu-riscv64 with the same words and environment (on top of guestEnv()). */
async function runBoth(argv: string[], env: Record<string, string> = {}): Promise<{ tsvm: RunResult; qemu: RunResult }> {
  const qemuBin = requireQemu();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-dropin-'));
  try {
    const [tsvm, qemu] = await Promise.all([runDropin(USER, argv, env, dir), runHost(qemuBin, argv, { env: guestEnv(env), cwd: dir, timeoutMs: 240_000 })]);
    return { tsvm, qemu };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function assertSame(what: string, { tsvm, qemu }: { tsvm: RunResult; qemu: RunResult }): void {
  assert.ok(!tsvm.timedOut, `${what}: tsvm timed out`);
  if (!tsvm.stdout.equals(qemu.stdout)) assert.fail(`${what}: stdout differs, ${firstDifference(tsvm.stdout, qemu.stdout)}\ntsvm stderr: ${tsvm.stderr}`);
  assert.equal(tsvm.status, qemu.status, `${what}: exit status; tsvm stderr: ${tsvm.stderr}; qemu stderr: ${qemu.stderr}`);
}

describe('tsvm-riscv64 against qemu-riscv64', { concurrency: 1 }, () => {
  const probe = (): string => compileText(PROBE, 'c', { name: 'dropin-probe', linkage: 'dynamic' });

  test('-L, -E, -U, -0, -r and -cpu: identical stdout and exit status', { timeout: 300_000 }, async () => {
    const prog = probe(), sysroot = ensureSysroot();
    const both = await runBoth(['-cpu', QEMU_CPU, '-L', sysroot, '-E', 'DROPIN_A=1,DROPIN_B=two words', '-U', 'HOME', '-E', 'LANG=fr',
      '-0', 'argv-zero', '-r', '5.99.0-dropin', prog, '7', 'x y', '-E']);
    const q = both.qemu.stdout.toString();
    assert.equal(both.qemu.status, 7, `qemu: status (stderr: ${both.qemu.stderr})`);
    assert.match(q, /^argv\[0\]=argv-zero\nargv\[1\]=7\nargv\[2\]=x y\nargv\[3\]=-E\nenv LANG=fr\nenv DROPIN_B=two words\nenv DROPIN_A=1\n/, 'qemu: argv and the head of its envlist');
    assert.doesNotMatch(q, /^env HOME=/m, 'qemu: -U HOME');
    assert.match(q, /^release 5\.99\.0-dropin$/m, 'qemu: -r');
    assertSame('probe with options', both);
  });

  test('QEMU_LD_PREFIX, QEMU_SET_ENV, QEMU_UNSET_ENV, QEMU_ARGV0, QEMU_UNAME and QEMU_CPU', { timeout: 300_000 }, async () => {
    const prog = probe();
    const env = { QEMU_LD_PREFIX: ensureSysroot(), QEMU_SET_ENV: 'X1=a,X2=b', QEMU_UNSET_ENV: 'TZ', QEMU_ARGV0: 'zero', QEMU_UNAME: '6.0.0-env', QEMU_CPU };
    const both = await runBoth([prog, '3'], env);
    const q = both.qemu.stdout.toString();
    assert.equal(both.qemu.status, 3, `qemu: status (stderr: ${both.qemu.stderr})`);
    assert.match(q, /^argv\[0\]=zero\nargv\[1\]=3\nenv X2=b\nenv X1=a\n/);
    assert.doesNotMatch(q, /^env TZ=/m);
    assertSame('probe with QEMU_* variables', both);
  });

  test('binfmt-style use: the exit statuses of a program, a signal, a missing or non-ELF program and bad options', { timeout: 300_000 }, async () => {
    const prog = probe(), sysroot = ensureSysroot();
    const expect: Array<[string[], number]> = [
      [['-L', sysroot, prog], 0], [['-L', sysroot, prog, '42'], 42], [['-L', sysroot, prog, '255'], 255],
      [['-L', sysroot, prog, 'abort'], 128 + os.constants.signals.SIGABRT],
      [['/nonexistent/prog'], 1], [['-L', sysroot, '/etc/passwd'], 1], [['-nosuchoption', prog], 1], [[], 1], [['-L'], 1],
    ];
    for (const [argv, status] of expect) {
      const { tsvm, qemu } = await runBoth(argv);
      assert.equal(qemu.status, status, `qemu ${argv.join(' ')}: status (stderr: ${qemu.stderr})`);
      assert.equal(tsvm.status, qemu.status, `tsvm-riscv64 ${argv.join(' ')}: status; stderr: ${tsvm.stderr}`);
    }
  });

  test('-seed repeats the random bytes; -strace -D writes the system calls to a file', { timeout: 300_000 }, async () => {
    const prog = probe(), sysroot = ensureSysroot();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-dropin-seed-'));
    try {
      const bytes = async (extra: string[]): Promise<string> => {
        const r = await runDropin(USER, ['-L', sysroot, ...extra, prog, 'random'], {}, dir);
        assert.equal(r.status, 0, `status (stderr: ${r.stderr})`);
        const m = /^([0-9a-f]{16})$/m.exec(r.stdout.toString());
        assert.ok(m !== null, `random bytes printed: ${r.stdout.toString()}`);
        return m[1]!;
      };
      const a = await bytes(['-seed', '5']);
      assert.equal(await bytes(['-seed', '5']), a, 'the same seed, the same bytes');
      assert.notEqual(await bytes(['-seed', '6']), a, 'another seed, other bytes');
      const log = path.join(dir, 'strace.log');
      await bytes(['-strace', '-D', log]);
      assert.match(fs.readFileSync(log, 'utf8'), /^exit_group\(0\)/m, 'the log file has the system calls');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Debian's lua5.4 under -L ROOT (the interpreter and libraries from the root)", { timeout: 600_000, skip: !mirrorConfigured() && 'no Debian mirror configured' }, async () => {
    // The same root as tests/workloads/dynamic.test.ts.
    const root = path.join(REPO_ROOT, '.cache', 'roots', 'lua5.4');
    await new DebianArchive({ progress: false }).installRoot(['lua5.4'], root);
    const both = await runBoth(['-L', root, path.join(root, 'usr', 'bin', 'lua5.4'), '-e',
      'print(_VERSION, 6 * 7, string.format("%.3f", math.pi), os.getenv("DROPIN")) os.exit(5)'], { DROPIN: 'yes' });
    assert.equal(both.qemu.stdout.toString(), 'Lua 5.4\t42\t3.142\tyes\n', `qemu: lua's output (stderr: ${both.qemu.stderr})`);
    assert.equal(both.qemu.status, 5);
    assertSame('lua5.4 -e', both);
  });
});

test('tsvm-system-riscv64 -M virt -bios none -nographic -kernel ELF boots as tsvm run does', { timeout: 300_000 }, async () => {
  const elf = compileBaremetal('interrupts').elf;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-dropin-sys-'));
  try {
    const args = ['-M', 'virt', '-bios', 'none', '-nographic', '-kernel', elf];
    const viaDropin = await runDropin(SYSTEM, args, {}, dir);
    const viaRun = await runDropin(TSVM_CLI, ['run', ...args], {}, dir);
    assert.equal(viaRun.status, 0, `tsvm run: status (stderr: ${viaRun.stderr})`);
    assert.match(viaRun.stdout.toString(), /^== done$/m, 'tsvm run: the program ran to its end');
    if (!viaDropin.stdout.equals(viaRun.stdout)) assert.fail(`console differs, ${firstDifference(viaDropin.stdout, viaRun.stdout, ['dropin', 'tsvm run'])}`);
    assert.equal(viaDropin.status, viaRun.status, `exit status; stderr: ${viaDropin.stderr}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tsvm-system-riscv64 -S: the harts wait for QMP cont, then the program runs to its end', { timeout: 300_000 }, async () => {
  const elf = compileBaremetal('interrupts').elf;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-dropin-S-'));
  const sock = path.join(dir, 'qmp.sock');
  try {
    const args = ['-S', '-qmp', `unix:${sock},server=on,wait=off`, '-M', 'virt', '-bios', 'none', '-nographic', '-kernel', elf];
    const run = runDropin(SYSTEM, args, {}, dir);
    const q = await QmpClient.connect(sock, 120_000);
    try {
      assert.ok('QMP' in (await q.next(60_000)), 'the QMP greeting');
      await q.call({ execute: 'qmp_capabilities' });
      const st = await q.call({ execute: 'query-status' });
      assert.deepEqual(st['return'], { running: false, status: 'paused' }, 'paused before cont');
      assert.ok('return' in (await q.call({ execute: 'cont' })), 'cont');
    } finally {
      q.close();
    }
    const r = await run;
    assert.equal(r.status, 0, `status (stderr: ${r.stderr})`);
    assert.match(r.stdout.toString(), /^== done$/m, 'the program ran to its end after cont');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
