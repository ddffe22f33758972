/**
 * The drop-in `tsvm-system-riscv64`'s command line
 * (src/cli/qemu-system-args.ts): `tsvm run`'s options pass through
 * unchanged, -h / -version / -M help are texts, and errors read like
 * qemu-system-riscv64's (`NAME: -foo: invalid option`, exit 1), both from
 * the parser and from the launcher, whose value errors (from `tsvm run`'s
 * parser) carry its name too. Booting through it is in
 * tests/workloads/dropin.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseQemuSystemArgs, QemuSystemUsageError } from '../../src/cli/qemu-system-args.js';
import { REPO_ROOT } from '../helpers/toolchain.js';

const LAUNCHER = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'tsvm-system-riscv64.js');

function usageError(argv: string[], message: string): void {
  assert.throws(() => parseQemuSystemArgs(argv, '9.9.9'), (e: unknown) => e instanceof QemuSystemUsageError && e.message === message,
    `${argv.join(' ')}: expected '${message}'`);
}

test("tsvm run's options pass through unchanged, in either spelling", () => {
  const argv = ['-M', 'virt', '-m', '256M', '-smp', '2', '-kernel', 'k', '-initrd', 'i', '-append', 'console=ttyS0 quiet',
    '-bios', 'none', '-nographic', '-no-reboot', '-display', 'none', '-serial', 'mon:stdio', '-monitor', 'none',
    '-drive', 'file=d.img,if=none,id=d0', '-device', 'virtio-blk-device,drive=d0', '-netdev', 'user,id=n0',
    '-qmp', 'unix:/tmp/q,server=on,wait=off', '--machine', 'virt', '-mmu', 'sv48', '-sharing', 'off', '--jit=off', '-jit-threshold', '0'];
  assert.deepEqual(parseQemuSystemArgs(argv, '9.9.9'), { kind: 'run', argv, startPaused: false });
  assert.deepEqual(parseQemuSystemArgs([], '9.9.9'), { kind: 'run', argv: [], startPaused: false }, 'no options: the default guest, as tsvm run');
  assert.deepEqual(parseQemuSystemArgs(['-S', '-qmp', 'unix:/q,server=on,wait=off', '-kernel', 'k'], '9.9.9'),
    { kind: 'run', argv: ['-qmp', 'unix:/q,server=on,wait=off', '-kernel', 'k'], startPaused: true }, '-S with -qmp: paused until cont');
});

test("errors in qemu-system-riscv64's words", () => {
  usageError(['-foo'], '-foo: invalid option');
  usageError(['--foo'], '--foo: invalid option');
  usageError(['-m'], '-m: requires an argument');
  usageError(['-kernel', 'k', '-append'], '-append: requires an argument');
  usageError(['-S', '-kernel', 'k'], '-S: needs -qmp (tsvm has no human monitor; send cont over QMP)');
  usageError(['-s'], '-s: option not supported by tsvm');
  usageError(['-gdb', 'tcp::1234'], '-gdb: option not supported by tsvm');
  usageError(['-cpu', 'rv64'], '-cpu: option not supported by tsvm');
  usageError(['disk.img'], 'disk.img: a disk image without -drive is not supported by tsvm (use -drive file=disk.img,format=raw,if=virtio)');
});

test('-h, -version and -M help are texts, taken where they stand', () => {
  const text = (argv: string[]): string => {
    const r = parseQemuSystemArgs(argv, '9.9.9');
    assert.equal(r.kind, 'text', argv.join(' '));
    return r.kind === 'text' ? r.text : '';
  };
  assert.match(text(['-version']), /^tsvm emulator version 9\.9\.9 \(tsvm-system-riscv64/);
  assert.equal(text(['--version']), text(['-version']));
  const help = text(['-h']);
  assert.match(help, /^usage: tsvm-system-riscv64 \[options\]$/m);
  for (const o of ['-machine', '-m ', '-smp', '-kernel', '-initrd', '-append', '-bios', '-drive', '-device', '-netdev', '-qmp', '-nographic']) {
    assert.ok(help.includes('\n' + o), `help lists ${o}`);
  }
  assert.equal(text(['--help']), help);
  assert.equal(text(['-m', '1G', '-help', '-foo']), help, 'what follows -help is not looked at');
  usageError(['-foo', '-h'], '-foo: invalid option');
  assert.match(text(['-M', 'help']), /^Supported machines are:\nspike +RISC-V Spike board\nvirt +RISC-V VirtIO board/);
  assert.equal(text(['-machine', '?']), text(['-M', 'help']));
});

test('the launcher: one line and exit 1, named tsvm-system-riscv64, for its errors and tsvm run\'s', () => {
  const go = (argv: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, [LAUNCHER, ...argv], { encoding: 'utf8', timeout: 60_000, input: '' });
  for (const [argv, msg] of [
    [['-foo'], 'tsvm-system-riscv64: -foo: invalid option'],
    [['-S'], 'tsvm-system-riscv64: -S: needs -qmp (tsvm has no human monitor; send cont over QMP)'],
    [['-snapshot'], 'tsvm-system-riscv64: -snapshot: option not supported by tsvm'],
    [['-smp'], 'tsvm-system-riscv64: -smp: requires an argument'],
    [['-m', '1'], "tsvm-system-riscv64: invalid -m '1': expected a size from 16M to 3G"],
    [['-M', 'sifive_u'], "tsvm-system-riscv64: unsupported machine type 'sifive_u' (use -M virt or -M spike)"],
    [['-kernel', '/nonexistent/Image'], 'tsvm-system-riscv64: kernel /nonexistent/Image: no such file'],
  ] as const) {
    const r = go([...argv]);
    assert.equal(r.stderr, msg + '\n', `${argv.join(' ')}: stderr`);
    assert.equal(r.status, 1, `${argv.join(' ')}: exit status`);
  }
  const v = go(['-version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^tsvm emulator version \d+\.\d+\.\d+ /);
});
