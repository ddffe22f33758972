/**
 * The system VM boots Debian's unmodified riscv64 kernel (the default
 * guest: Debian's kernel plus a busybox initramfs built by tsvm) to an
 * interactive shell, with the built-in SBI, with Debian's OpenSBI as
 * -bios, and with two harts; a kernel panic gives a non-zero exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ConsoleSession } from '../helpers/console-session.js';
import { ensureDefaultGuest } from '../../src/images/default-guest.js';

const PROMPT = '~ # ';
const BOOT_MS = 300_000;
const OPENSBI = '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin';

/** Boots, runs a few commands with checked output, powers off; returns the session. */
async function bootAndCheck(args: string[], harts: number, extra?: (s: ConsoleSession) => Promise<void>): Promise<void> {
  const s = new ConsoleSession(args);
  try {
    await s.expect('tsvm-guest: ready', BOOT_MS);
    await s.expect(PROMPT, 60_000);
    await s.run('dmesg -n 1', PROMPT); // keep later kernel messages off the console
    assert.equal(await s.run('uname -m', PROMPT), 'riscv64');
    assert.equal(await s.run('echo $((6*7))', PROMPT), '42');
    assert.equal(await s.run('grep -c ^processor /proc/cpuinfo', PROMPT), String(harts));
    assert.match(await s.run('grep -m1 ^isa /proc/cpuinfo', PROMPT), /rv64imafdc/);
    assert.match(await s.run('cat /proc/cmdline', PROMPT), /console=ttyS0/);
    assert.match(await s.run('date -u +%Y', PROMPT), /^20\d\d$/, 'the Goldfish RTC gives the host time');
    if (extra) await extra(s);
    s.send('poweroff -f');
    assert.equal(await s.exited, 0, 'poweroff gives exit status 0');
  } finally {
    s.kill();
  }
}

test('default guest: Debian kernel boots to a busybox shell and powers off with status 0; virtio-rng feeds /dev/hwrng', { timeout: BOOT_MS + 120_000 }, async () => {
  await ensureDefaultGuest({ progress: false });
  await bootAndCheck(['-m', '512M', '-nographic', '-device', 'virtio-rng-device'], 1, async (s) => {
    assert.equal(await s.run('cat /sys/class/misc/hw_random/rng_current', PROMPT), 'virtio_rng.0');
    assert.equal(await s.run('head -c 64 /dev/hwrng | wc -c', PROMPT), '64');
    const a = await s.run('head -c 16 /dev/hwrng | od -An -tx1', PROMPT), b = await s.run('head -c 16 /dev/hwrng | od -An -tx1', PROMPT);
    assert.notEqual(a, b, 'two reads give different random bytes');
    // User-mode rdtime works under the built-in SBI (scounteren.TM): ping uses it.
    assert.match(await s.run('ip link set lo up; ping -c 1 127.0.0.1 | grep -c "bytes from"', PROMPT), /^1$/);
  });
});

test('the same guest boots through Debian\'s OpenSBI as -bios', { timeout: BOOT_MS + 120_000 }, async () => {
  assert.ok(fs.existsSync(OPENSBI), `${OPENSBI} missing: apt-get install opensbi`);
  const g = await ensureDefaultGuest({ progress: false });
  await bootAndCheck(['-m', '512M', '-bios', OPENSBI, '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0'], 1);
});

test('-smp 2 boots Linux on two harts (SBI HSM)', { timeout: BOOT_MS + 120_000 }, async () => {
  await bootAndCheck(['-m', '512M', '-smp', '2'], 2);
});

test('a guest kernel panic is reported and gives a non-zero exit status', { timeout: BOOT_MS + 60_000 }, async () => {
  const g = await ensureDefaultGuest({ progress: false });
  const s = new ConsoleSession(['-m', '256M', '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0 rdinit=/nonexistent init=/nonexistent']);
  try {
    await s.expect('Kernel panic - not syncing', BOOT_MS);
    const code = await s.exited;
    assert.notEqual(code, 0);
    assert.match(s.stderr, /guest kernel panic/);
  } finally {
    s.kill();
  }
});
