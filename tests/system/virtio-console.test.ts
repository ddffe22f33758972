/**
 * virtio-console as the guest console: the default guest booted with
 * `-device virtio-console-device -append console=hvc0` runs its shell on
 * hvc0 — input and output go through the virtio queues, and nothing goes
 * through the UART.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsoleSession } from '../helpers/console-session.js';
import { ensureDefaultGuest } from '../../src/images/default-guest.js';

const PROMPT = '~ # ';
const BOOT_MS = 300_000;

test('-device virtio-console-device with console=hvc0 gives the shell on hvc0', { timeout: BOOT_MS + 120_000 }, async () => {
  await ensureDefaultGuest({ progress: false });
  const s = new ConsoleSession(['-m', '256M', '-device', 'virtio-console-device,chardev=stdio', '-append', 'console=hvc0']);
  try {
    // With console=hvc0 alone there is no console when the kernel starts /init (hvc0 appears
    // once /init has loaded virtio_mmio), so /init's own messages are lost; busybox cttyhack
    // then finds hvc0 in /sys/class/tty/console/active and starts the shell there.
    await s.expect(PROMPT, BOOT_MS);
    assert.equal(await s.run('tty', PROMPT), '/dev/hvc0');
    assert.equal(await s.run('cat /sys/class/tty/console/active', PROMPT), 'hvc0');
    assert.match(await s.run('cat /proc/consoles', PROMPT), /^hvc0\s/m);
    assert.match(await s.run('cat /sys/bus/virtio/devices/*/device', PROMPT), /0x0003/, 'virtio device ID 3');
    assert.equal(await s.run('echo $((6*7)) hvc', PROMPT), '42 hvc');
    // The 8250 driver counts the bytes it sent: the UART carried none of this session.
    assert.match(await s.run('cat /proc/tty/driver/serial', PROMPT), /^0: uart:16550A .*tx:0 /m);
    s.send('poweroff -f');
    assert.equal(await s.exited, 0);
  } finally {
    s.kill();
  }
});

test('with console=ttyS0 a virtio console can sit next to the UART console', { timeout: BOOT_MS + 120_000 }, async () => {
  const s = new ConsoleSession(['-m', '256M', '-device', 'virtio-console-device']);
  try {
    await s.expect('tsvm-guest: ready', BOOT_MS);
    await s.expect(PROMPT, 60_000);
    assert.equal(await s.run('tty', PROMPT), '/dev/ttyS0');
    assert.match(await s.run('ls /dev/hvc0', PROMPT), /^\/dev\/hvc0$/);
    // Guest output written to hvc0 reaches the same host console.
    assert.match(await s.run('echo via-$((1+1))-hvc > /dev/hvc0; sleep 1', PROMPT), /via-2-hvc/);
    s.send('poweroff -f');
    assert.equal(await s.exited, 0);
  } finally {
    s.kill();
  }
});
