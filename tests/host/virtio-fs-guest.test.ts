/**
 * virtio-fs in the default Debian guest (its kernel has CONFIG_VIRTIO_FS=y
 * and CONFIG_FUSE_FS=y), one boot with two shares: a host directory
 * (-fsdev local) and an OCI overlay of two lower layers and an upper
 * (-fsdev overlay). The guest mounts both with `mount -t virtiofs`, reads,
 * creates, writes, renames, unlinks, makes directories, symlinks and hard
 * links, runs ls -l, stat and df, and checksums a large file both ways;
 * the host then finds the changes in the shared directory and in the
 * upper layer (whiteouts for deleted lower files), and the lower layers
 * untouched. The device does not depend on the execution engine, so this
 * runs once (tests/host), not in the three engine passes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConsoleSession } from '../helpers/console-session.js';
import { ensureDefaultGuest } from '../../src/images/default-guest.js';

const PROMPT = '~ # ';
const BOOT_MS = 300_000;
const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-vfs-sys-')));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const md5 = (b: Uint8Array): string => crypto.createHash('md5').update(b).digest('hex');
async function sh(s: ConsoleSession, cmd: string): Promise<string> { return (await s.run(cmd, PROMPT)).replace(/\r/g, ''); }

/** Every file under `root` with its contents (to prove a layer unchanged). */
function tree(root: string): string {
  return JSON.stringify(fs.readdirSync(root, { recursive: true }).map(String).sort().map((p) => {
    const full = path.join(root, p), st = fs.lstatSync(full);
    return [p, st.mode, st.isFile() ? md5(fs.readFileSync(full)) : '', st.mtimeMs];
  }));
}

test('the default guest mounts a host directory and an overlay over virtio-fs and changes land on the host', { timeout: BOOT_MS + 240_000 }, async () => {
  await ensureDefaultGuest({ progress: false });
  const share = path.join(dir, 'share'), l1 = path.join(dir, 'l1'), l2 = path.join(dir, 'l2'), up = path.join(dir, 'upper');
  for (const d of [share, l1, l2, up, path.join(l1, 'etc')]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(share, 'hello.txt'), 'hello from the host\n');
  const big = crypto.randomBytes(3 * 1024 * 1024 + 123);
  fs.writeFileSync(path.join(share, 'big.bin'), big);
  fs.writeFileSync(path.join(l1, 'etc', 'motd'), 'lower one\n');
  fs.writeFileSync(path.join(l1, 'base.txt'), 'from l1\n');
  fs.writeFileSync(path.join(l1, 'old.txt'), 'whited out by l2\n');
  fs.writeFileSync(path.join(l2, 'base.txt'), 'from l2\n');
  fs.writeFileSync(path.join(l2, '.wh.old.txt'), '');
  const lowersBefore = tree(l1) + tree(l2);
  const s = new ConsoleSession(['-m', '256M',
    '-fsdev', `local,id=h,path=${share}`, '-device', 'virtio-fs-device,fsdev=h,tag=hostdir',
    '-fsdev', `overlay,id=o,lower=${l1}:${l2},upper=${up}`, '-device', 'virtio-fs-device,fsdev=o,tag=rootfs']);
  const sums: string[] = []; // the guest's md5sum of the file it wrote
  try {
    await s.expect('tsvm-guest: ready', BOOT_MS);
    await s.expect(PROMPT, 60_000);
    s.send('dmesg -n 1');
    await s.expect(PROMPT, 60_000);
    await sh(s, 'stty cols 1000'); // long commands are not wrapped in their echo
    assert.match(await sh(s, 'mkdir -p /mnt/h /mnt/o && mount -t virtiofs hostdir /mnt/h && mount -t virtiofs rootfs /mnt/o; echo rc=$?'), /rc=0/);
    assert.match(await sh(s, 'grep virtiofs /proc/mounts'), /hostdir \/mnt\/h virtiofs[\s\S]*rootfs \/mnt\/o virtiofs/);
    // The host directory.
    assert.match(await sh(s, 'cat /mnt/h/hello.txt'), /^hello from the host$/m);
    assert.equal((await sh(s, 'md5sum /mnt/h/big.bin')).split(/\s/)[0], md5(big));
    await sh(s, 'echo written by the guest > /mnt/h/new.txt && mkdir /mnt/h/d && mv /mnt/h/new.txt /mnt/h/d/renamed.txt');
    await sh(s, 'ln -s renamed.txt /mnt/h/d/sym && ln /mnt/h/d/renamed.txt /mnt/h/d/hard && rm /mnt/h/hello.txt');
    assert.match(await sh(s, 'cat /mnt/h/d/sym'), /^written by the guest$/m);
    assert.match(await sh(s, 'stat -c "%h %s %F" /mnt/h/d/hard'), /^2 21 regular file$/m);
    const ls = await sh(s, 'ls -l /mnt/h/d');
    assert.match(ls, /^lrwxrwxrwx .* sym -> renamed\.txt$/m);
    assert.match(ls, /^-rw-r--r-- +2 .* renamed\.txt$/m);
    assert.match(await sh(s, 'df /mnt/h'), /^hostdir\s+\d+\s+\d+\s+\d+\s+\d+% \/mnt\/h$/m);
    sums.push((await sh(s, 'head -c 2500000 /dev/urandom > /mnt/h/gbig && md5sum /mnt/h/gbig')).split(/\s/)[0]!);
    assert.match(await sh(s, 'chmod 640 /mnt/h/d/renamed.txt && touch -d "2001-02-03 04:05:06" /mnt/h/d/renamed.txt; echo rc=$?'), /rc=0/);
    // The overlay.
    assert.match(await sh(s, 'cat /mnt/o/base.txt /mnt/o/etc/motd'), /^from l2\nlower one$/m);
    assert.equal(await sh(s, 'ls -a /mnt/o | sort | tr "\\n" " "'), '. .. base.txt etc'); // sh() trims
    await sh(s, 'echo appended >> /mnt/o/etc/motd && rm /mnt/o/base.txt && mkdir /mnt/o/new && echo n > /mnt/o/new/file');
    await sh(s, 'mv /mnt/o/etc/motd /mnt/o/etc/motd.moved');
    assert.match(await sh(s, 'cat /mnt/o/etc/motd.moved; ls /mnt/o/etc'), /^lower one\nappended\nmotd\.moved$/m);
    assert.match(await sh(s, 'sync && umount /mnt/h /mnt/o; echo rc=$?'), /rc=0/);
    s.send('poweroff -f');
    assert.equal(await s.exited, 0);
  } finally {
    s.kill();
  }
  // The host directory holds the guest's changes.
  assert.ok(!fs.existsSync(path.join(share, 'hello.txt')));
  assert.equal(fs.readFileSync(path.join(share, 'd', 'renamed.txt'), 'utf8'), 'written by the guest\n');
  assert.equal(fs.readlinkSync(path.join(share, 'd', 'sym')), 'renamed.txt');
  assert.equal(fs.statSync(path.join(share, 'd', 'hard')).ino, fs.statSync(path.join(share, 'd', 'renamed.txt')).ino);
  assert.equal(fs.statSync(path.join(share, 'd', 'renamed.txt')).mode & 0o777, 0o640);
  assert.equal(fs.statSync(path.join(share, 'd', 'renamed.txt')).mtime.getUTCFullYear(), 2001);
  assert.equal(md5(fs.readFileSync(path.join(share, 'gbig'))), sums[0]);
  assert.equal(fs.statSync(path.join(share, 'gbig')).size, 2500000);
  // The upper layer is the container's diff: copy-ups, new files and whiteouts; the lowers are untouched.
  assert.ok(fs.existsSync(path.join(up, '.wh.base.txt')), 'whiteout for the deleted lower file');
  assert.ok(fs.existsSync(path.join(up, 'etc', '.wh.motd')), 'whiteout for the renamed lower file');
  assert.equal(fs.readFileSync(path.join(up, 'etc', 'motd.moved'), 'utf8'), 'lower one\nappended\n');
  assert.equal(fs.readFileSync(path.join(up, 'new', 'file'), 'utf8'), 'n\n');
  assert.equal(tree(l1) + tree(l2), lowersBefore, 'lower layers untouched');
});
