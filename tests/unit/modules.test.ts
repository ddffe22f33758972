/**
 * Unit tests for kernel-module metadata (src/images/modules.ts): modules.dep
 * parsing, dependency-first load order, builtin skipping, `-`/`_`
 * equivalence, unknown names, cycles, and `.modinfo` parsing from a
 * synthesised ELF64 relocatable.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageError } from '../../src/images/errors.js';
import {
  formatModulesDep,
  moduleName,
  parseModinfo,
  parseModuleList,
  parseModulesBuiltin,
  parseModulesDep,
  resolveModuleOrder,
} from '../../src/images/modules.js';

// Shaped like depmod output: dependencies transitive, the one to load last first.
const DEP = `kernel/drivers/virtio/virtio_mmio.ko.xz:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/net/core/failover.ko.xz:
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz
kernel/drivers/char/hw_random/virtio-rng.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/mbcache.ko.xz kernel/lib/crc16.ko.xz
`;

const BUILTIN = `kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko
`;

test('moduleName strips the suffix and normalises "-" to "_"', () => {
  assert.equal(moduleName('kernel/drivers/char/hw_random/virtio-rng.ko.xz'), 'virtio_rng');
  assert.equal(moduleName('kernel/fs/ext4/ext4.ko'), 'ext4');
  assert.equal(moduleName('a/b/foo-bar.ko.zst'), 'foo_bar');
  assert.equal(moduleName('x.ko.gz'), 'x');
});

test('parseModulesDep reads paths and dependency lists', () => {
  const m = parseModulesDep(DEP);
  assert.equal(m.size, 10);
  assert.deepEqual(m.get('virtio_net'), {
    name: 'virtio_net',
    path: 'kernel/drivers/net/virtio_net.ko.xz',
    deps: ['kernel/drivers/net/net_failover.ko.xz', 'kernel/net/core/failover.ko.xz'],
  });
  assert.deepEqual(m.get('virtio_mmio')?.deps, []);
  assert.equal(m.get('virtio_rng')?.path, 'kernel/drivers/char/hw_random/virtio-rng.ko.xz');
  assert.throws(() => parseModulesDep('no colon here\n'), ImageError);
});

test('resolveModuleOrder: dependencies first, each module once', () => {
  const deps = parseModulesDep(DEP);
  const order = resolveModuleOrder(['virtio_net', 'ext4', 'net_failover', 'virtio-rng', 'virtio_net'], deps).map((m) => m.name);
  assert.deepEqual(order, ['failover', 'net_failover', 'virtio_net', 'crc16', 'mbcache', 'jbd2', 'ext4', 'virtio_rng']);
  for (const [i, n] of order.entries()) {
    for (const d of deps.get(n)?.deps ?? []) assert.ok(order.indexOf(moduleName(d)) < i, `${moduleName(d)} before ${n}`);
  }
  assert.equal(resolveModuleOrder(['virtio_rng'], deps)[0]?.path, 'kernel/drivers/char/hw_random/virtio-rng.ko.xz');
});

test('resolveModuleOrder follows non-transitive dependency lists too', () => {
  const deps = parseModulesDep('c.ko:\nb.ko: c.ko\na.ko: b.ko\n');
  assert.deepEqual(resolveModuleOrder(['a'], deps).map((m) => m.name), ['c', 'b', 'a']);
});

test('resolveModuleOrder skips builtin modules', () => {
  const deps = parseModulesDep(DEP);
  const builtin = parseModulesBuiltin(BUILTIN);
  assert.ok(builtin.has('virtio_ring'));
  const order = resolveModuleOrder(['virtio', 'virtio_ring', 'virtio_console', 'virtio_blk'], deps, builtin);
  assert.deepEqual(order.map((m) => m.name), ['virtio_blk']);
  // A builtin module named as a dependency is skipped as well.
  const withBuiltinDep = parseModulesDep('kernel/x.ko: kernel/drivers/virtio/virtio_ring.ko\n');
  assert.deepEqual(resolveModuleOrder(['x'], withBuiltinDep, builtin).map((m) => m.name), ['x']);
});

test('resolveModuleOrder lists every unknown name in one ImageError', () => {
  const deps = parseModulesDep(DEP);
  assert.throws(
    () => resolveModuleOrder(['virtio_net', 'nosuch', 'also-missing'], deps),
    (e: unknown) => e instanceof ImageError && /nosuch/.test(e.message) && /also-missing/.test(e.message) && !/virtio_net/.test(e.message),
  );
});

test('resolveModuleOrder detects cycles', () => {
  const deps = parseModulesDep('a.ko: b.ko\nb.ko: a.ko\n');
  assert.throws(() => resolveModuleOrder(['a'], deps), /cycle/);
});

test('formatModulesDep output parses back', () => {
  const entries = [
    { path: 'kernel/a.ko', deps: ['kernel/b.ko'] },
    { path: 'kernel/b.ko', deps: [] },
  ];
  const text = formatModulesDep(entries);
  assert.equal(text, 'kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n');
  assert.deepEqual(resolveModuleOrder(['a'], parseModulesDep(text)).map((m) => m.path), ['kernel/b.ko', 'kernel/a.ko']);
  assert.deepEqual([...parseModuleList('kernel/a.ko\n\nkernel/x-y.ko\n')], [['a', 'kernel/a.ko'], ['x_y', 'kernel/x-y.ko']]);
});

/** A minimal ELF64 little-endian relocatable with a .modinfo section holding `strings`. */
function fakeModule(strings: string[]): Uint8Array {
  const shstr = Buffer.from('\0.modinfo\0.shstrtab\0', 'latin1');
  const modinfo = Buffer.from(strings.map((s) => `${s}\0`).join(''), 'latin1');
  const shstrOff = 64;
  const modOff = shstrOff + shstr.length;
  const shoff = (modOff + modinfo.length + 7) & ~7;
  const buf = Buffer.alloc(shoff + 3 * 64);
  buf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0); // ELFMAG, ELFCLASS64, ELFDATA2LSB, EV_CURRENT
  buf.writeUInt16LE(1, 16); // ET_REL
  buf.writeUInt16LE(243, 18); // EM_RISCV
  buf.writeBigUInt64LE(BigInt(shoff), 0x28);
  buf.writeUInt16LE(64, 0x34); // e_ehsize
  buf.writeUInt16LE(64, 0x3a); // e_shentsize
  buf.writeUInt16LE(3, 0x3c); // e_shnum
  buf.writeUInt16LE(2, 0x3e); // e_shstrndx
  buf.set(shstr, shstrOff);
  buf.set(modinfo, modOff);
  const sh = (i: number, name: number, type: number, off: number, size: number): void => {
    const b = shoff + i * 64;
    buf.writeUInt32LE(name, b);
    buf.writeUInt32LE(type, b + 4);
    buf.writeBigUInt64LE(BigInt(off), b + 0x18);
    buf.writeBigUInt64LE(BigInt(size), b + 0x20);
  };
  sh(1, 1, 1, modOff, modinfo.length); // .modinfo, SHT_PROGBITS
  sh(2, 10, 3, shstrOff, shstr.length); // .shstrtab, SHT_STRTAB
  return new Uint8Array(buf);
}

test('parseModinfo reads name, depends, softdep and repeated keys', () => {
  const elf = fakeModule([
    'alias=fs-ext4',
    'alias=fs-ext3',
    'softdep=pre: crypto-crc32c post: foo',
    'depends=jbd2,mbcache,crc16',
    'intree=Y',
    'name=ext4',
    'vermagic=6.12.107+deb13-riscv64 SMP mod_unload modversions riscv',
  ]);
  const info = parseModinfo(elf);
  assert.equal(info.name, 'ext4');
  assert.deepEqual(info.depends, ['jbd2', 'mbcache', 'crc16']);
  assert.deepEqual(info.softPre, ['crypto-crc32c']);
  assert.deepEqual(info.fields.get('alias'), ['fs-ext4', 'fs-ext3']);
  const none = parseModinfo(fakeModule(['depends=', 'name=virtio-mmio']));
  assert.deepEqual(none.depends, []);
  assert.equal(none.name, 'virtio_mmio');
});

test('parseModinfo rejects non-modules', () => {
  assert.throws(() => parseModinfo(new Uint8Array(100)), /not an ELF/);
  const elf = fakeModule(['name=x']);
  const noModinfo = elf.slice();
  noModinfo[64 + 1] = 0x58; // rename ".modinfo" -> "Xmodinfo" in .shstrtab
  assert.throws(() => parseModinfo(noModinfo), /no \.modinfo/);
  const truncated = elf.subarray(0, elf.length - 64);
  assert.throws(() => parseModinfo(truncated), ImageError);
});
