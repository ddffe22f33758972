/**
 * Console and host-integration behaviour of `tsvm run`: an idle guest
 * sleeps the host thread (near 0% CPU), `Ctrl-A x` quits from a terminal
 * as in QEMU, and an ELF kernel boots through OpenSBI's fw_jump.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConsoleSession, TSVM_CLI } from '../helpers/console-session.js';
import { ensureDefaultGuest } from '../../src/images/default-guest.js';

const PROMPT = '~ # ';
const BOOT_MS = 300_000;

/** CPU seconds (user + system) a process has used, from /proc/PID/stat (fields 14, 15; in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

test('an idle guest (in WFI) costs the host almost no CPU', { timeout: BOOT_MS + 60_000 }, async () => {
  const s = new ConsoleSession(['-m', '256M']);
  try {
    await s.expect(PROMPT, BOOT_MS);
    await s.run('sleep 8', PROMPT, 60_000); // let post-boot kernel work settle
    const c0 = cpuSeconds(s.child.pid!), t0 = Date.now();
    await new Promise((r) => setTimeout(r, 6000));
    const share = (cpuSeconds(s.child.pid!) - c0) / ((Date.now() - t0) / 1000);
    console.log(`idle guest host CPU: ${(share * 100).toFixed(1)}% of one core`);
    assert.ok(share < 0.15, `idle CPU share ${share}`);
    s.send('poweroff -f');
    assert.equal(await s.exited, 0);
  } finally {
    s.kill();
  }
});

test('Ctrl-A x quits the VM from a terminal (raw mode), like QEMU', { timeout: BOOT_MS + 60_000 }, async () => {
  // python3's pty module gives tsvm a real terminal, so the raw-mode path runs.
  const script = 'import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)';
  const s = new ConsoleSession(['-m', '256M'], ['python3', '-c', script, 'node', TSVM_CLI, 'run']);
  try {
    await s.expect(PROMPT, BOOT_MS);
    s.child.stdin!.write('echo raw-$((1+2))\r');
    await s.expect('raw-3', 30_000);
    s.child.stdin!.write('\x01x');
    const code = await s.exited;
    assert.equal(code, 0);
    assert.match(s.output, /tsvm: terminated/);
  } finally {
    s.kill();
  }
});

test('an ELF kernel boots through Debian\'s OpenSBI fw_jump', { timeout: BOOT_MS + 60_000 }, async () => {
  const fwJump = '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf';
  assert.ok(fs.existsSync(fwJump), `${fwJump} missing: apt-get install opensbi`);
  const g = await ensureDefaultGuest({ progress: false });
  // Wrap Debian's Image in an ELF64 with one PT_LOAD at 0x8020_0000 (fw_jump's FW_JUMP_ADDR).
  const image = fs.readFileSync(g.kernel);
  const memsz = Math.max(image.readUInt32LE(16), image.length);
  const hdr = Buffer.alloc(0x1000);
  hdr.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  hdr.writeUInt16LE(2, 16); hdr.writeUInt16LE(243, 18); hdr.writeUInt32LE(1, 20);
  hdr.writeBigUInt64LE(0x80200000n, 24); hdr.writeBigUInt64LE(64n, 32);
  hdr.writeUInt16LE(64, 52); hdr.writeUInt16LE(56, 54); hdr.writeUInt16LE(1, 56); hdr.writeUInt16LE(64, 58);
  hdr.writeUInt32LE(1, 64); hdr.writeUInt32LE(7, 68); hdr.writeBigUInt64LE(0x1000n, 72);
  hdr.writeBigUInt64LE(0x80200000n, 80); hdr.writeBigUInt64LE(0x80200000n, 88);
  hdr.writeBigUInt64LE(BigInt(image.length), 96); hdr.writeBigUInt64LE(BigInt(memsz), 104); hdr.writeBigUInt64LE(0x1000n, 112);
  const elf = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-elf-')), 'vmlinux.elf');
  fs.writeFileSync(elf, Buffer.concat([hdr, image]));
  const s = new ConsoleSession(['-m', '512M', '-bios', fwJump, '-kernel', elf, '-initrd', g.initrd, '-append', 'console=ttyS0']);
  try {
    await s.expect('OpenSBI', 60_000);
    await s.expect(PROMPT, BOOT_MS);
    assert.equal(await s.run('uname -s', PROMPT), 'Linux');
    s.send('poweroff -f');
    assert.equal(await s.exited, 0);
  } finally {
    s.kill();
  }
});
