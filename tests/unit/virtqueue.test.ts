/**
 * The virtio-mmio transport and split virtqueue against a fake driver:
 * negotiation, a working device (virtio-rng), and a seeded fuzz test that
 * feeds malformed rings. A misbehaving driver may only ever put the device
 * into DEVICE_NEEDS_RESET: no exception escapes, nothing outside guest RAM
 * is touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeDriver, FAKE_RAM_BASE } from '../helpers/virtio-driver.js';
import { VirtioRng } from '../../src/devices/virtio/rng.js';
import { STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK } from '../../src/devices/virtio/mmio.js';
import { Prng } from '../helpers/prng.js';
import { VirtioBlk } from '../../src/devices/virtio/blk.js';
import { VirtioNet } from '../../src/devices/virtio/net.js';
import { NullNetBackend } from '../../src/devices/virtio/net-backend.js';
import type { BlockBackend } from '../../src/devices/virtio/block-backend.js';
import type { VirtioDevice } from '../../src/devices/virtio/mmio.js';

/** A 1 MiB disk in memory for the fuzz test. */
class MemDisk implements BlockBackend {
  readonly size = 1 << 20;
  readonly readOnly = false;
  readonly bytes = new Uint8Array(this.size);
  read(offset: number, buf: Uint8Array): void { buf.set(this.bytes.subarray(offset, offset + buf.length)); }
  write(offset: number, data: Uint8Array): void { this.bytes.set(data, offset); }
  flush(): void { /* memory is always stable */ }
  discard(): void { /* contents become unspecified: keep them */ }
  writeZeroes(offset: number, len: number): void { this.bytes.fill(0, offset, offset + len); }
  close(): void { /* nothing to release */ }
}

test('transport identifies a version-2 device and negotiates VERSION_1', () => {
  const d = new FakeDriver(new VirtioRng());
  assert.equal(d.reg(0x000), 0x74726976);
  assert.equal(d.reg(0x004), 2);
  assert.equal(d.reg(0x008), 4);
  d.init();
  assert.ok(d.status & STATUS_DRIVER_OK);
  assert.equal(d.status & STATUS_DEVICE_NEEDS_RESET, 0);
});

test('a driver that refuses VERSION_1 cannot set FEATURES_OK', () => {
  const d = new FakeDriver(new VirtioRng());
  d.setReg(0x70, 1); d.setReg(0x70, 3);
  d.setReg(0x24, 1); d.setReg(0x20, 0); // no feature bits in the high word
  d.setReg(0x70, 3 | 8);
  assert.equal(d.status & 8, 0);
});

test('virtio-rng fills writable buffers and interrupts', () => {
  const d = new FakeDriver(new VirtioRng());
  d.init();
  const { head, writeAddrs } = d.submit(0, [{ writeLen: 64 }, { writeLen: 100 }]);
  const used = d.used(0);
  assert.deepEqual(used, [{ id: head, len: 164 }]);
  const bytes = d.read(writeAddrs[0]!, 64);
  assert.ok(bytes.some((b) => b !== 0), 'random bytes written');
  assert.ok(d.irqCount >= 1);
  assert.ok(d.canariesIntact());
});

test('malformed chains put the device into DEVICE_NEEDS_RESET, never outside RAM', () => {
  const cases: [string, (d: FakeDriver) => void][] = [
    ['buffer outside RAM', (d) => { d.writeDesc(0, 0, FAKE_RAM_BASE + d.mem.size - 8, 64, 2, 0); d.publish(0, 0); }],
    ['buffer below RAM', (d) => { d.writeDesc(0, 0, FAKE_RAM_BASE - 4096, 64, 2, 0); d.publish(0, 0); }],
    ['descriptor loop', (d) => { const a = d.alloc(16); d.writeDesc(0, 0, a, 16, 2 | 1, 1); d.writeDesc(0, 1, a, 16, 2 | 1, 0); d.publish(0, 0); }],
    ['next out of range', (d) => { const a = d.alloc(16); d.writeDesc(0, 0, a, 16, 2 | 1, 999); d.publish(0, 0); }],
    ['head out of range', (d) => { d.setAvailIdx(0, 1); d.mem.dv.setUint16(0, 0, true); d.publish(0, 500); }],
    ['readable after writable', (d) => { const a = d.alloc(32); d.writeDesc(0, 0, a, 16, 2 | 1, 1); d.writeDesc(0, 1, a + 16, 16, 0, 0); d.publish(0, 0); }],
    ['nested indirect', (d) => { const t = d.alloc(32); d.mem.dv.setUint16(t - FAKE_RAM_BASE + 12, 4, true); d.mem.dv.setUint32(t - FAKE_RAM_BASE + 8, 16, true); d.writeDesc(0, 0, t, 32, 4, 0); d.publish(0, 0); }],
    ['indirect length not a multiple of 16', (d) => { const t = d.alloc(40); d.writeDesc(0, 0, t, 40, 4, 0); d.publish(0, 0); }],
    ['huge length', (d) => { d.writeDesc(0, 0, FAKE_RAM_BASE, 0xffffffff, 2, 0); d.publish(0, 0); }],
    ['available index jumps past the queue size', (d) => { d.setAvailIdx(0, 1000); d.setReg(0x50, 0); }],
  ];
  for (const [name, poison] of cases) {
    const d = new FakeDriver(new VirtioRng());
    d.init();
    assert.doesNotThrow(() => poison(d), name);
    assert.ok(d.status & STATUS_DEVICE_NEEDS_RESET, `${name}: DEVICE_NEEDS_RESET`);
    assert.ok(d.transport.lastError.length > 0, name);
    assert.ok(d.canariesIntact(), `${name}: nothing written outside guest RAM`);
    // A reset brings the device back.
    d.init();
    assert.equal(d.status & STATUS_DEVICE_NEEDS_RESET, 0, `${name}: reset clears the error`);
  }
});

test('seeded fuzz: random rings and descriptors never escape guest RAM or throw', () => {
  const seed = Number(process.env.VIRTQ_SEED ?? 424242);
  console.log('virtqueue fuzz seed', seed);
  const rng = new Prng(seed);
  let needsReset = 0, served = 0;
  for (let round = 0; round < 400; round++) {
    const dev = new VirtioRng();
    const d = new FakeDriver(dev, 1024 * 1024);
    d.init(null, [1, 2, 8, 16][rng.int(4)]!);
    for (let k = 0; k < 8; k++) {
      if (rng.int(4) !== 0) { // mostly well-formed traffic, with malformed rings mixed in
        assert.doesNotThrow(() => d.submit(0, [{ writeLen: 1 + rng.int(512) }, { writeLen: rng.int(64) }]));
        continue;
      }
      const n = 1 + rng.int(4);
      for (let i = 0; i < n; i++) {
        const pick = rng.int(10);
        const addr = pick < 6 ? FAKE_RAM_BASE + rng.int(d.mem.size) : pick < 8 ? Number(rng.next64() % 0x1_0000_0000n) * (rng.int(3) + 1) : FAKE_RAM_BASE + d.mem.size - rng.int(64);
        const len = rng.int(4) === 0 ? Number(rng.next64() & 0xffffffffn) : rng.int(8192);
        d.writeDesc(0, rng.int(16), addr, len, rng.int(8), rng.int(20));
      }
      if (rng.int(5) === 0) d.setAvailIdx(0, rng.int(65536)); else d.publish(0, rng.int(20), false);
      assert.doesNotThrow(() => d.setReg(0x50, 0), `seed ${seed} round ${round}`);
    }
    if (dev.bytesServed > 0) served++;
    if (d.status & STATUS_DEVICE_NEEDS_RESET) needsReset++;
    assert.ok(d.canariesIntact(), `seed ${seed} round ${round}: write outside guest RAM`);
  }
  console.log(`fuzz rounds: 400, ended in DEVICE_NEEDS_RESET: ${needsReset}, rounds where the device served data: ${served}`);
  assert.ok(needsReset > 0 && served > 0, 'the fuzzer exercised both outcomes');
});

test('seeded fuzz over virtio-blk and virtio-net: malformed rings never throw or touch memory outside RAM', () => {
  const seed = Number(process.env.VIRTQ_SEED ?? 424242) + 1;
  console.log('virtqueue device fuzz seed', seed);
  const rng = new Prng(seed);
  const makers: [string, () => { dev: VirtioDevice; inject?: () => void }][] = [
    ['blk', () => ({ dev: new VirtioBlk(new MemDisk()) })],
    ['net', () => {
      const backend = new NullNetBackend();
      const dev = new VirtioNet({ mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56), backend });
      return { dev, inject: () => backend.onReceive(new Uint8Array(60 + rng.int(1500)).fill(0xab)) };
    }],
  ];
  for (const [name, make] of makers) {
    let needsReset = 0;
    for (let round = 0; round < 150; round++) {
      const { dev, inject } = make();
      const d = new FakeDriver(dev, 1024 * 1024);
      d.init(null, [2, 8, 16][rng.int(3)]!);
      for (let k = 0; k < 8; k++) {
        const q = rng.int(dev.numQueues);
        if (rng.int(3) !== 0) {
          // Plausible traffic: a readable header/frame followed by writable space.
          const hdr = new Uint8Array(16);
          new DataView(hdr.buffer).setUint32(0, rng.int(12), true);
          new DataView(hdr.buffer).setUint32(8, rng.int(4096), true);
          assert.doesNotThrow(() => d.submit(q, [{ data: hdr }, { writeLen: 512 * (1 + rng.int(4)) }, { writeLen: 1 }]), `${name} round ${round}`);
        } else {
          for (let i = 0, n = 1 + rng.int(4); i < n; i++) {
            const addr = rng.int(4) === 0 ? Number(rng.next64() % 0x1_0000_0000n) : FAKE_RAM_BASE + rng.int(d.mem.size);
            d.writeDesc(q, rng.int(16), addr, rng.int(4) === 0 ? Number(rng.next64() & 0xffffffffn) : rng.int(8192), rng.int(8), rng.int(20));
          }
          if (rng.int(5) === 0) d.setAvailIdx(q, rng.int(65536)); else d.publish(q, rng.int(20), false);
          assert.doesNotThrow(() => d.setReg(0x50, q), `${name} seed ${seed} round ${round}`);
        }
        if (inject) assert.doesNotThrow(inject, `${name} receive, round ${round}`);
      }
      if (d.status & STATUS_DEVICE_NEEDS_RESET) needsReset++;
      assert.ok(d.canariesIntact(), `${name} seed ${seed} round ${round}: write outside guest RAM`);
    }
    console.log(`${name}: 150 rounds, ${needsReset} ended in DEVICE_NEEDS_RESET`);
    assert.ok(needsReset > 0, `${name}: the fuzzer reached malformed rings`);
  }
});
