/**
 * Workload: build the default guest from the real Debian archive (mirror from
 * the host apt configuration or $TSVM_MIRROR) and check the result: the
 * kernel is a RISC-V Image, the initrd gunzips to a newc cpio with /init,
 * a RISC-V busybox, /dev/console and the virtio modules with their
 * dependencies in a consistent modules.dep; a second call is a cache hit.
 * When qemu-system-riscv64 is installed, the guest is also booted there as
 * an independent check that it reaches an interactive shell and powers off.
 * Uses the normal tsvm cache, so only the first run downloads and builds.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { mirrorConfigured } from '../helpers/mirror.js';
import { parseCpio, S_IFCHR, S_IFLNK, S_IFMT, S_IFREG, type CpioEntry } from '../../src/images/cpio.js';
import { defaultCacheDir } from '../../src/images/debian-archive.js';
import { DEFAULT_GUEST_MODULES, ensureDefaultGuest, GUEST_READY_LINE, type DefaultGuest } from '../../src/images/default-guest.js';
import { moduleName, parseModinfo, parseModulesBuiltin, parseModulesDep, resolveModuleOrder } from '../../src/images/modules.js';

const EM_RISCV = 243;

const skip = !mirrorConfigured() && 'no Debian mirror configured';

function readInitrd(g: DefaultGuest): Map<string, CpioEntry> {
  const cpio = zlib.gunzipSync(fs.readFileSync(g.initrd));
  return new Map(parseCpio(cpio).map((e) => [e.name, e]));
}

/** modules.builtin of the extracted kernel tree in the cache, if it can be found. */
function builtinModules(ver: string): Set<string> | null {
  const kdir = path.join(defaultCacheDir(), 'kernels');
  for (const d of fs.existsSync(kdir) ? fs.readdirSync(kdir) : []) {
    const f = path.join(kdir, d, 'usr/lib/modules', ver, 'modules.builtin');
    if (fs.existsSync(f)) return parseModulesBuiltin(fs.readFileSync(f, 'utf8'));
  }
  return null;
}

let first: DefaultGuest | null = null;

test('default guest: builds a kernel and a busybox initramfs', { skip, timeout: 900_000 }, async () => {
  const g = await ensureDefaultGuest();
  first = g;
  assert.match(g.kernelVersion, /^\d+\.\d+.*-riscv64$/);

  // Documentation/arch/riscv/boot-image-header.rst: magic "RISCV\0\0\0" at 48, magic2 "RSC\x05" at 56.
  const k = fs.readFileSync(g.kernel);
  assert.ok(k.length > 4 * 1024 * 1024, 'kernel is a few MiB');
  assert.equal(k.toString('latin1', 48, 56), 'RISCV\0\0\0');
  assert.equal(k.toString('latin1', 56, 60), 'RSC\x05');

  const files = readInitrd(g);
  const init = files.get('init');
  assert.ok(init, '/init present');
  assert.equal(init.mode, S_IFREG | 0o755);
  const script = Buffer.from(init.data).toString('utf8');
  assert.ok(script.startsWith('#!/bin/busybox sh\n'));
  assert.equal(script.split('\n').filter((l) => l.includes(GUEST_READY_LINE)).length, 1, 'one ready line');
  for (const m of ['mount -t proc', 'mount -t sysfs', 'mount -t devtmpfs', 'hostname tsvm', 'setsid cttyhack sh', 'poweroff -f']) {
    assert.ok(script.includes(m), `/init does ${m}`);
  }

  const bb = files.get('bin/busybox');
  assert.ok(bb, '/bin/busybox present');
  assert.equal(bb.mode, S_IFREG | 0o755);
  const elf = Buffer.from(bb.data);
  assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'ELF magic');
  assert.equal(elf.readUInt16LE(18), EM_RISCV, 'e_machine is EM_RISCV');
  for (const a of ['sh', 'mount', 'insmod', 'cttyhack', 'setsid', 'poweroff', 'ls', 'cat', 'ip', 'udhcpc']) {
    const l = files.get(`bin/${a}`);
    assert.equal(l?.mode !== undefined && (l.mode & S_IFMT), S_IFLNK, `bin/${a} is a symlink`);
    assert.equal(l?.linkTarget, 'busybox');
  }

  const con = files.get('dev/console');
  assert.equal(con?.mode !== undefined && (con.mode & S_IFMT), S_IFCHR);
  assert.deepEqual([con?.rdevMajor, con?.rdevMinor], [5, 1]);
  const nul = files.get('dev/null');
  assert.deepEqual([nul?.rdevMajor, nul?.rdevMinor], [1, 3]);

  // Modules: all requested (virtio_rng is the file virtio-rng.ko), with their deps, uncompressed.
  const modDir = `lib/modules/${g.kernelVersion}`;
  const depEntry = files.get(`${modDir}/modules.dep`);
  assert.ok(depEntry, 'modules.dep present');
  const deps = parseModulesDep(Buffer.from(depEntry.data).toString('utf8'));
  const builtin = builtinModules(g.kernelVersion) ?? new Set<string>();
  const kos = new Map([...files.keys()].filter((n) => n.startsWith(`${modDir}/`) && n.endsWith('.ko')).map((n) => [moduleName(n), n]));
  for (const m of DEFAULT_GUEST_MODULES) {
    if (builtin.has(m)) continue;
    assert.ok(kos.has(m), `${m}.ko in the initrd`);
    assert.ok(g.modules.includes(m), `${m} in the load list`);
  }
  for (const d of ['failover', 'net_failover']) assert.ok(kos.has(d), `${d}.ko (dependency of virtio_net)`);
  if (builtin.size > 0 && !builtin.has('virtio_ring')) assert.ok(kos.has('virtio_ring'), 'virtio_ring.ko (modular in this kernel)');
  assert.equal(kos.size, g.modules.length, 'exactly the loaded modules are shipped');
  assert.deepEqual(resolveModuleOrder(g.modules, deps).map((m) => m.name), g.modules, 'load order is dependency-first');
  for (const [name, file] of kos) {
    const info = parseModinfo((files.get(file) as CpioEntry).data, file);
    assert.equal(info.name, name);
    for (const d of info.depends) assert.ok(builtin.has(d) || kos.has(d), `${name} needs ${d}: built in or shipped`);
    assert.ok(g.modules.indexOf(name) > Math.max(-1, ...info.depends.map((d) => g.modules.indexOf(d))), `${name} loads after its deps`);
    assert.ok(script.includes(`/${file}'`), `/init insmods ${name}`);
  }
  process.stderr.write(`default guest: kernel ${g.kernelVersion}, initrd ${fs.statSync(g.initrd).size} bytes, modules ${g.modules.join(' ')}\n`);
});

test('default guest: a second call reuses the cache', { skip, timeout: 120_000 }, async () => {
  const g1 = first ?? (await ensureDefaultGuest({ progress: false }));
  const before = fs.statSync(g1.initrd).mtimeMs;
  const t0 = Date.now();
  const g2 = await ensureDefaultGuest({ progress: false });
  assert.deepEqual(g2, g1);
  assert.ok(Date.now() - t0 < 5000, `cache hit took ${Date.now() - t0} ms`);
  assert.equal(fs.statSync(g2.initrd).mtimeMs, before, 'not rebuilt');
});

test('default guest: extra modules bring their dependencies; unknown ones are skipped', { skip, timeout: 600_000 }, async () => {
  const g = await ensureDefaultGuest({ modules: ['virtio-blk', 'ext4', 'no_such_module_xyz'], progress: false });
  assert.ok(!g.modules.includes('no_such_module_xyz'));
  for (const m of ['virtio_blk', 'jbd2', 'mbcache', 'crc16', 'ext4']) assert.ok(g.modules.includes(m), `${m} loaded`);
  assert.ok(g.modules.indexOf('jbd2') < g.modules.indexOf('ext4'));
  assert.ok(g.modules.indexOf('mbcache') < g.modules.indexOf('ext4'));
  const files = readInitrd(g);
  assert.ok([...files.keys()].some((n) => n.endsWith('/kernel/fs/ext4/ext4.ko')));
  if (first !== null) assert.notEqual(g.initrd, first.initrd, 'a different module list is a different guest');
});

/** The qemu binary and its OpenSBI firmware, if both are installed. */
function qemuAvailable(): boolean {
  const r = spawnSync('qemu-system-riscv64', ['--version'], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

test('default guest: boots under qemu-system-riscv64 to a shell', { skip: skip || (!qemuAvailable() && 'qemu-system-riscv64 not installed'), timeout: 300_000 }, async () => {
  const g = first ?? (await ensureDefaultGuest({ progress: false }));
  const qemu = spawn('qemu-system-riscv64', [
    '-M', 'virt', '-m', '512M', '-smp', '1', '-nographic', '-no-reboot',
    '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0 quiet',
    '-device', 'virtio-rng-device', '-device', 'virtio-balloon-device',
    '-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-device,netdev=n0',
  ], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const waitFor = (re: RegExp, ms: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const tick = (): void => {
        if (re.test(out)) resolve();
        else if (Date.now() - t0 > ms || qemu.exitCode !== null) reject(new Error(`timed out waiting for ${re}; console:\n${out.slice(-3000)}`));
        else setTimeout(tick, 100);
      };
      tick();
    });
  qemu.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
  qemu.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
  const exited = new Promise<number | null>((r) => qemu.on('exit', (code) => r(code)));
  try {
    await waitFor(new RegExp(GUEST_READY_LINE), 240_000);
    await waitFor(/~ # /, 30_000);
    qemu.stdin.write('echo sum=$((6*7)); tty; cat /proc/modules | wc -l; sleep 30 &\n');
    await waitFor(/sum=42/, 30_000);
    await waitFor(/\/dev\/ttyS0/, 30_000);
    qemu.stdin.write('jobs; kill %1; echo host=$(hostname); ls /sys/bus/virtio/drivers | tr "\\n" " "; echo; exit\n');
    await waitFor(/host=tsvm/, 30_000);
    await waitFor(/\[1\]\+\s+Running\s+sleep 30/, 30_000);
    await waitFor(/reboot: Power down/, 60_000);
    assert.equal(await exited, 0);
    assert.doesNotMatch(out, /tsvm-guest: insmod \S+ failed/, 'all modules loaded');
    for (const d of ['virtio_net', 'virtio_rng', 'virtio_balloon']) assert.ok(out.includes(d), `${d} driver registered`);
  } finally {
    if (qemu.exitCode === null) qemu.kill('SIGKILL');
  }
});
