/**
 * virtio-blk in the default guest: a raw image and a qcow2 overlay (on a
 * raw base) as two drives. The guest sees them as /dev/vda and /dev/vdb in
 * command-line order, reads known patterns with dd/hexdump/md5sum, writes
 * new data with dd and sync, and powers off; on the host the raw file holds
 * the new bytes, `qemu-img check` finds the overlay clean, qemu-img sees
 * the guest's writes, and the base image is unchanged. A third run uses
 * snapshot=on and -device virtio-blk-device with a read-only drive.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConsoleSession } from '../helpers/console-session.js';
import { ensureDefaultGuest } from '../../src/images/default-guest.js';

const PROMPT = '~ # ';
const BOOT_MS = 300_000;
const MiB = 1024 * 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-blk-sys-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A disk image: `marker` at offset 0, then a position-dependent pattern. */
function disk(size: number, marker: string, salt: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(((i >>> 2) * 2654435761 + salt) >>> 0, i);
  b.write(marker.padEnd(32, '.'), 0, 'latin1');
  return b;
}
const md5 = (b: Uint8Array): string => crypto.createHash('md5').update(b).digest('hex');
const sha = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
/** Runs a guest command; its output with CRLF line ends made LF. */
async function sh(s: ConsoleSession, cmd: string): Promise<string> { return (await s.run(cmd, PROMPT)).replace(/\r/g, ''); }

test('two drives (raw and a qcow2 overlay): guest reads and writes, host sees the data, qemu-img check is clean', { timeout: BOOT_MS + 180_000 }, async () => {
  await ensureDefaultGuest({ progress: false });
  const rawData = disk(8 * MiB, 'TSVM-RAW-DISK-A', 1), baseData = disk(6 * MiB, 'TSVM-BASE-DISK-B', 2);
  const raw = path.join(dir, 'a.raw'), base = path.join(dir, 'base.raw'), ov = path.join(dir, 'b.qcow2');
  fs.writeFileSync(raw, rawData);
  fs.writeFileSync(base, baseData);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', ov, '8M'], { cwd: dir });
  const baseSum = sha(base);
  const s = new ConsoleSession(['-m', '256M', '-drive', `file=${raw},format=raw,if=virtio`, '-drive', `file=${ov},format=qcow2`]);
  try {
    await s.expect('tsvm-guest: ready', BOOT_MS);
    await s.expect(PROMPT, 60_000);
    // Kernel messages on the console (e.g. "hrtimer: interrupt took ..." on a loaded host) could land inside the
    // echo of a command that sh() waits for: keep them off the console.
    s.send('dmesg -n 1');
    await s.expect(PROMPT, 60_000);
    assert.equal(await sh(s, 'cat /sys/block/vda/size /sys/block/vdb/size'), '16384\n16384');
    // The first -drive is /dev/vda.
    assert.match(await sh(s, 'dd if=/dev/vda bs=32 count=1 2>/dev/null; echo'), /^TSVM-RAW-DISK-A\.+$/m);
    assert.match(await sh(s, 'dd if=/dev/vdb bs=32 count=1 2>/dev/null; echo'), /^TSVM-BASE-DISK-B\.+$/m);
    const hex = await sh(s, 'dd if=/dev/vda bs=16 skip=4096 count=1 2>/dev/null | hexdump -C');
    const want = [...rawData.subarray(65536, 65552)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    assert.ok(hex.replace(/\s+/g, ' ').includes(want.slice(0, 23)), `hexdump shows the pattern: ${hex}`);
    // Whole-disk reads (multi-segment requests) match the host's view.
    assert.equal((await sh(s, 'md5sum /dev/vda')).split(/\s/)[0], md5(rawData));
    const vdbWant = Buffer.concat([baseData, Buffer.alloc(2 * MiB)]);
    assert.equal((await sh(s, 'md5sum /dev/vdb')).split(/\s/)[0], md5(vdbWant));
    // Writes: aligned to vda, unaligned (copy-on-write of partial clusters) to vdb.
    await sh(s, 'yes tsvm-vda | head -c 65536 > /tmp/w');
    await sh(s, 'dd if=/tmp/w of=/dev/vda bs=4096 seek=256 conv=fsync');
    await sh(s, 'printf OVERLAY-WRITE | dd of=/dev/vdb bs=1 seek=70000');
    await sh(s, 'dd if=/tmp/w of=/dev/vdb bs=4096 seek=1700');
    await sh(s, 'sync; echo 3 > /proc/sys/vm/drop_caches');
    assert.match(await sh(s, 'dd if=/dev/vdb bs=1 skip=70000 count=13 2>/dev/null; echo'), /^OVERLAY-WRITE$/m);
    assert.match(await sh(s, 'dd if=/dev/vda bs=1 skip=1048576 count=9 2>/dev/null'), /^tsvm-vda$/m);
    s.send('poweroff -f');
    assert.equal(await s.exited, 0);
  } finally {
    s.kill();
  }
  const written = Buffer.from('tsvm-vda\n'.repeat(7282), 'latin1').subarray(0, 65536);
  const rawAfter = fs.readFileSync(raw);
  assert.ok(rawAfter.subarray(MiB, MiB + 65536).equals(written), 'the raw file holds the guest\'s write');
  assert.ok(rawAfter.subarray(0, MiB).equals(rawData.subarray(0, MiB)) && rawAfter.subarray(MiB + 65536).equals(rawData.subarray(MiB + 65536)));
  execFileSync('qemu-img', ['check', '-q', ov]);
  const conv = path.join(dir, 'b-conv.raw');
  execFileSync('qemu-img', ['convert', '-O', 'raw', ov, conv]);
  const expect = Buffer.from(vdbWantAfter(baseData, written));
  assert.ok(fs.readFileSync(conv).equals(expect), 'qemu-img sees the overlay as base + the guest\'s writes');
  assert.equal(sha(base), baseSum, 'the base image is unchanged');
});

/** The overlay's expected contents after the guest's two writes. */
function vdbWantAfter(baseData: Buffer, written: Buffer): Buffer {
  const b = Buffer.concat([baseData, Buffer.alloc(2 * MiB)]);
  b.write('OVERLAY-WRITE', 70000, 'latin1');
  written.copy(b, 1700 * 4096);
  return b;
}

test('snapshot=on and a read-only -device virtio-blk-device drive leave the files untouched', { timeout: BOOT_MS + 120_000 }, async () => {
  const a = path.join(dir, 'snap.raw'), r = path.join(dir, 'ro.raw');
  fs.writeFileSync(a, disk(2 * MiB, 'SNAPSHOT-DISK', 3));
  fs.writeFileSync(r, disk(MiB, 'READONLY-DISK', 4));
  const sa = sha(a), sr = sha(r);
  const s = new ConsoleSession(['-m', '256M', '-drive', `file=${a},format=raw,snapshot=on`,
    '-drive', `file=${r},format=raw,if=none,id=ro0,readonly=on`, '-device', 'virtio-blk-device,drive=ro0,serial=tsvm-ro']);
  try {
    await s.expect('tsvm-guest: ready', BOOT_MS);
    await s.expect(PROMPT, 60_000);
    await sh(s, 'printf CHANGED | dd of=/dev/vda conv=fsync 2>/dev/null');
    await sh(s, 'echo 3 > /proc/sys/vm/drop_caches');
    assert.match(await sh(s, 'dd if=/dev/vda bs=7 count=1 2>/dev/null; echo'), /^CHANGED$/m, 'the guest sees its write');
    assert.equal(await sh(s, 'cat /sys/block/vdb/ro'), '1');
    assert.equal(await sh(s, 'cat /sys/block/vdb/serial'), 'tsvm-ro');
    assert.match(await sh(s, 'dd if=/dev/zero of=/dev/vdb count=1 conv=fsync; echo rc=$?'), /rc=1/);
    s.send('poweroff -f');
    assert.equal(await s.exited, 0);
  } finally {
    s.kill();
  }
  assert.equal(sha(a), sa, 'snapshot=on: the image is unchanged');
  assert.equal(sha(r), sr, 'readonly=on: the image is unchanged');
});

test('a missing or corrupt image is one line on stderr and a non-zero exit', { timeout: 120_000 }, async () => {
  const bad = path.join(dir, 'bad.qcow2');
  fs.writeFileSync(bad, Buffer.from('QFI\xfb\0\0\0\x09' + '\0'.repeat(200), 'latin1'));
  for (const [arg, re] of [[`file=${path.join(dir, 'none.img')}`, /none\.img: cannot open: no such file or directory/], [`file=${bad}`, /unsupported qcow2 image: version 9/]] as const) {
    const s = new ConsoleSession(['-m', '256M', '-drive', arg]);
    const code = await s.exited;
    assert.notEqual(code, 0);
    assert.match(s.stderr, re);
    assert.equal(s.stderr.trim().split('\n').length, 1, `one line: ${s.stderr}`);
  }
});
