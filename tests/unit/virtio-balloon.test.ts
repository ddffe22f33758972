/**
 * virtio-balloon against the fake driver (tests/helpers/virtio-driver.ts):
 * features and config (num_pages from a byte target, actual written by the
 * driver), inflating pages (zeroed in guest RAM and accounted as
 * released, untouched pages left untouched), deflating them, the stats
 * queue (parsing §5.5.6.3 entries, holding and returning the buffer), a
 * PFN outside RAM putting the device into DEVICE_NEEDS_RESET without
 * touching anything, and the -device option checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeDriver, FAKE_RAM_BASE } from '../helpers/virtio-driver.js';
import {
  VirtioBalloon, RamAccounting, parseBalloonStats, BALLOON_PAGE_SIZE, BALLOON_Q_INFLATE, BALLOON_Q_DEFLATE, BALLOON_Q_STATS,
  VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_ID_BALLOON,
  VIRTIO_BALLOON_F_PAGE_POISON, VIRTIO_BALLOON_F_REPORTING,
} from '../../src/devices/virtio/balloon.js';
import { STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_FEATURES_OK, STATUS_DRIVER_OK, STATUS_DEVICE_NEEDS_RESET } from '../../src/devices/virtio/mmio.js';
import type { BalloonControl } from '../../src/vmm/qmp.js';
import { buildDevices } from '../../src/vmm/device-builder.js';
import { nodeDeviceServices } from '../../src/host/node-vm-services.js';
import { parseQemuOpts, OptsError } from '../../src/vmm/qemu-opts.js';

const RAM = 4 * 1024 * 1024;
const PAGES = RAM / BALLOON_PAGE_SIZE;
/** Config offsets (virtio 1.2 §5.5.4) within the MMIO window (config at 0x100). */
const NUM_PAGES = 0x100, ACTUAL = 0x104;
const pfnOf = (addr: number): number => Math.floor(addr / BALLOON_PAGE_SIZE);

/** A PFN array as the driver sends it: le32 each. */
function pfnArray(pfns: number[]): Uint8Array {
  const b = new Uint8Array(4 * pfns.length), dv = new DataView(b.buffer);
  pfns.forEach((p, i) => dv.setUint32(4 * i, p >>> 0, true));
  return b;
}

/** Stats entries as the driver sends them: packed le16 tag, le64 value. */
function statsBuffer(entries: [number, number][]): Uint8Array {
  const b = new Uint8Array(10 * entries.length), dv = new DataView(b.buffer);
  entries.forEach(([tag, val], i) => {
    dv.setUint16(10 * i, tag, true);
    dv.setUint32(10 * i + 2, val % 4294967296, true);
    dv.setUint32(10 * i + 6, Math.floor(val / 4294967296), true);
  });
  return b;
}

function setup(): { dev: VirtioBalloon; drv: FakeDriver; acc: RamAccounting; wakes: { n: number } } {
  const wakes = { n: 0 };
  const dev = new VirtioBalloon({ wake: () => { wakes.n++; } });
  const drv = new FakeDriver(dev, RAM);
  const acc = new RamAccounting(FAKE_RAM_BASE, RAM, drv.mem);
  dev.attach(acc);
  return { dev, drv, acc, wakes };
}

/** Guest page `i` of the fake RAM, for filling and checking. */
function page(drv: FakeDriver, i: number): Uint8Array { return drv.mem.u8.subarray(i * BALLOON_PAGE_SIZE, (i + 1) * BALLOON_PAGE_SIZE); }
/** Picks pages near the top of RAM (the fake driver allocates its rings and buffers from the bottom). */
const TOP = PAGES - 64;

test('by default the balloon offers STATS_VQ, MUST_TELL_HOST and PAGE_POISON but not DEFLATE_ON_OOM or REPORTING (QEMU\'s defaults)', () => {
  const { dev, drv } = setup();
  assert.equal(drv.reg(0x008), VIRTIO_ID_BALLOON);
  drv.setReg(0x14, 0);
  const f = drv.reg(0x10);
  assert.ok(f & (1 << VIRTIO_BALLOON_F_STATS_VQ));
  assert.ok(f & (1 << VIRTIO_BALLOON_F_MUST_TELL_HOST));
  assert.ok(f & (1 << VIRTIO_BALLOON_F_PAGE_POISON));
  assert.equal(f & (1 << VIRTIO_BALLOON_F_DEFLATE_ON_OOM), 0);
  assert.equal(f & (1 << VIRTIO_BALLOON_F_REPORTING), 0);
  assert.equal(dev.numQueues, 3);
  const control: BalloonControl = dev; // the device is what QMP drives
  assert.equal(control.actualBytes(), RAM);
});

test('a byte target becomes num_pages; a change raises a configuration interrupt; actual is read back', () => {
  const { dev, drv, wakes } = setup();
  dev.setTarget(RAM - 1024 * 1024); // before the driver: read at probe time
  assert.equal(dev.targetPages, 256);
  drv.init();
  assert.equal(drv.reg(NUM_PAGES), 256);
  drv.setReg(0x64, 3); // ack
  const irqs = drv.irqCount, w = wakes.n;
  dev.setTarget(RAM - 2 * 1024 * 1024);
  assert.equal(drv.reg(NUM_PAGES), 512);
  assert.ok(drv.irqCount > irqs && (drv.reg(0x60) & 2), 'configuration change interrupt (§4.2.2 InterruptStatus bit 1)');
  assert.ok(wakes.n > w, 'the run loop is woken');
  dev.setTarget(RAM * 4); // above RAM: no balloon
  assert.equal(drv.reg(NUM_PAGES), 0);
  drv.setReg(NUM_PAGES, 77); // driver writes to num_pages are ignored
  assert.equal(drv.reg(NUM_PAGES), 0);
  drv.setReg(ACTUAL, 100);
  assert.equal(drv.reg(ACTUAL), 100);
  assert.equal(dev.actualBytes(), RAM - 100 * BALLOON_PAGE_SIZE);
  drv.transport.write(ACTUAL + 2, 2, 1, 0); // a 16-bit write to the high half
  assert.equal(dev.actual, 100 + 65536);
});

test('inflate zeroes each given page and counts it released; already-zero pages are not written', () => {
  const { dev, drv, acc } = setup();
  drv.init();
  const dirty = [TOP, TOP + 1, TOP + 5], clean = TOP + 9, untouched = TOP + 10;
  for (const i of dirty) page(drv, i).fill(0x5a);
  page(drv, clean).fill(0);
  page(drv, untouched).fill(0x77); // not given to the balloon: must survive
  const pfns = [...dirty, clean].map((i) => pfnOf(FAKE_RAM_BASE) + i);
  drv.submit(BALLOON_Q_INFLATE, [{ data: pfnArray(pfns) }]);
  const used = drv.used(BALLOON_Q_INFLATE);
  assert.equal(used.length, 1);
  assert.equal(used[0]!.len, 0);
  for (const i of [...dirty, clean]) assert.ok(page(drv, i).every((b) => b === 0), `page ${i} zeroed`);
  assert.ok(page(drv, untouched).every((b) => b === 0x77));
  assert.equal(acc.releasedPages, 4);
  assert.equal(acc.zeroedPages, 3, 'the already-zero page was only read');
  assert.equal(dev.inflatedPages, 4);
  for (const i of [...dirty, clean]) assert.ok(acc.isReleased(i));
  // The same PFN again is counted once.
  drv.submit(BALLOON_Q_INFLATE, [{ data: pfnArray([pfns[0]!]) }]);
  assert.equal(acc.releasedPages, 4);
  const u = acc.usage(drv.mem.u8);
  assert.equal(u.releasedBytes, 4 * BALLOON_PAGE_SIZE);
  assert.equal(u.releasedDirtyPages, 0);
  assert.ok(u.nonZeroBytes! >= BALLOON_PAGE_SIZE, 'the untouched page (and the rings) hold data');
  drv.setReg(ACTUAL, 4);
  assert.equal(dev.actualBytes(), RAM - 4 * BALLOON_PAGE_SIZE);
  assert.ok(drv.canariesIntact());
});

test('deflate hands pages back; the accounting follows', () => {
  const { drv, acc } = setup();
  drv.init();
  const base = pfnOf(FAKE_RAM_BASE) + TOP;
  drv.submit(BALLOON_Q_INFLATE, [{ data: pfnArray([base, base + 1, base + 2]) }, { data: pfnArray([base + 3]) }]);
  assert.equal(acc.releasedPages, 4);
  drv.submit(BALLOON_Q_DEFLATE, [{ data: pfnArray([base + 1, base + 3, base + 40]) }]); // base+40 was never inflated
  assert.equal(drv.used(BALLOON_Q_DEFLATE).length, 1);
  assert.equal(acc.releasedPages, 2);
  assert.ok(!acc.isReleased(TOP + 1) && acc.isReleased(TOP + 2));
  assert.equal(acc.reclaimedTotal, 2);
  // The guest may use deflated pages again; a released page that is written shows up in a scan.
  page(drv, TOP + 1).fill(1);
  page(drv, TOP + 2).fill(1); // still released: a driver bug, visible to the host
  assert.equal(acc.usage(drv.mem.u8).releasedDirtyPages, 1);
});

test('a device reset returns every released page to the guest', () => {
  const { dev, drv, acc } = setup();
  drv.init();
  drv.submit(BALLOON_Q_INFLATE, [{ data: pfnArray([pfnOf(FAKE_RAM_BASE) + TOP]) }]);
  drv.setReg(ACTUAL, 1);
  assert.equal(acc.releasedPages, 1);
  drv.setReg(0x70, 0);
  assert.equal(acc.releasedPages, 0);
  assert.equal(dev.actual, 0);
});

test('a PFN outside guest RAM puts the device into DEVICE_NEEDS_RESET and changes nothing', () => {
  for (const bad of [0, pfnOf(FAKE_RAM_BASE) - 1, pfnOf(FAKE_RAM_BASE) + PAGES, 0xffffffff]) {
    const { drv, acc } = setup();
    drv.init();
    page(drv, TOP).fill(9);
    drv.submit(BALLOON_Q_INFLATE, [{ data: pfnArray([pfnOf(FAKE_RAM_BASE) + TOP, bad]) }]);
    assert.ok(drv.status & STATUS_DEVICE_NEEDS_RESET, `PFN 0x${bad.toString(16)}`);
    assert.match(drv.transport.lastError, /PFN 0x[0-9a-f]+ is outside guest RAM/);
    assert.equal(acc.releasedPages, 0, 'the request is validated before any page is released');
    assert.ok(page(drv, TOP).every((b) => b === 9));
    assert.ok(drv.canariesIntact());
  }
  const { drv } = setup();
  drv.init();
  drv.submit(BALLOON_Q_DEFLATE, [{ data: Uint8Array.of(1, 2, 3) }]); // not a whole le32
  assert.ok(drv.status & STATUS_DEVICE_NEEDS_RESET);
});

test('stats: the buffer queued before DRIVER_OK is parsed on activation, held, and returned on request', () => {
  const { dev, drv, wakes } = setup();
  drv.init();
  // Re-enter the "features OK, not yet DRIVER_OK" state, queue the stats buffer as Linux does in
  // init_vqs (its kick is ignored before DRIVER_OK), then set DRIVER_OK.
  drv.setReg(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
  const mib = 1024 * 1024;
  drv.submit(BALLOON_Q_STATS, [{ data: statsBuffer([[4, 100 * mib], [5, 480 * mib], [6, 300 * mib], [2, 7], [12, 3], [99, 5]]) }]);
  assert.equal(dev.stats, null);
  drv.setReg(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  assert.deepEqual(dev.stats, {
    'free-memory': 100 * mib, 'total-memory': 480 * mib, 'available-memory': 300 * mib, 'major-faults': 7, 'async-scans': 3, 'tag-99': 5,
  });
  assert.equal(dev.statsReports, 1);
  assert.equal(drv.used(BALLOON_Q_STATS).length, 0, 'the device holds the buffer (§5.5.6.3)');
  const w = wakes.n;
  assert.equal(dev.requestStats(), true);
  assert.ok(wakes.n > w);
  const u = drv.used(BALLOON_Q_STATS);
  assert.equal(u.length, 1);
  assert.equal(dev.requestStats(), false, 'nothing to return until the driver requeues');
  drv.submit(BALLOON_Q_STATS, [{ data: statsBuffer([[4, 50 * mib], [0, 2 ** 40 + 5]]) }]);
  assert.deepEqual(dev.stats, { 'free-memory': 50 * mib, 'swap-in': 2 ** 40 + 5 });
  assert.equal(dev.statsReports, 2);
  assert.match(dev.summary(drv.mem.u8), /guest stats: total \?, free 50\.0 MiB/);
});

test('stats are ignored when the driver did not negotiate STATS_VQ', () => {
  const { dev, drv } = setup();
  drv.init(1 << VIRTIO_BALLOON_F_MUST_TELL_HOST);
  drv.submit(BALLOON_Q_STATS, [{ data: statsBuffer([[4, 1]]) }]);
  assert.equal(dev.stats, null);
  assert.equal(dev.requestStats(), false);
});

test('parseBalloonStats ignores a trailing partial entry', () => {
  const b = new Uint8Array(25);
  b.set(statsBuffer([[5, 1234], [7, 99]]));
  assert.deepEqual(parseBalloonStats(b), { 'total-memory': 1234, 'disk-caches': 99 });
});

test('without attach, the device sizes its accounting from the transport on activation', () => {
  const dev = new VirtioBalloon();
  assert.equal(dev.actualBytes(), 0);
  dev.setTarget(RAM / 2);
  const drv = new FakeDriver(dev, RAM);
  drv.init();
  assert.equal(dev.ramBytes, RAM);
  assert.equal(drv.reg(NUM_PAGES), PAGES / 2);
});

test('-device virtio-balloon-device options', () => {
  const build = (text: string): ReturnType<typeof buildDevices> => buildDevices({ devices: [parseQemuOpts(text)], drives: [], netdevs: [] }, nodeDeviceServices);
  const ok = build('virtio-balloon-device,id=b0,guest-stats-polling-interval=2,deflate-on-oom=on,free-page-reporting=on,page-poison=off');
  const dev = ok.devices[0];
  assert.ok(dev instanceof VirtioBalloon);
  assert.equal(dev.id, 'b0');
  assert.equal(dev.statsPollingInterval, 2);
  assert.equal(dev.featuresLo, (1 << VIRTIO_BALLOON_F_MUST_TELL_HOST) | (1 << VIRTIO_BALLOON_F_STATS_VQ) | (1 << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | (1 << VIRTIO_BALLOON_F_REPORTING));
  assert.equal(dev.numQueues, 4, 'reporting_vq');
  for (const c of ok.cleanups) c();
  assert.equal(dev.statsPollingInterval, 0, 'the cleanup stops polling');
  assert.throws(() => build('virtio-balloon-device,bogus=1'), OptsError);
  assert.throws(() => build('virtio-balloon-device,deflate-on-oom=maybe'), /deflate-on-oom=maybe is not on\/off/);
  assert.throws(() => build('virtio-balloon-device,free-page-reporting=2'), OptsError);
  assert.throws(() => build('virtio-balloon-device,guest-stats-polling-interval=x'), OptsError);
  assert.throws(() => build('virtio-balloon-device,guest-stats-polling-interval=-1'), OptsError);
  assert.throws(() => buildDevices({ devices: [parseQemuOpts('virtio-balloon-device'), parseQemuOpts('virtio-balloon-device')], drives: [], netdevs: [] }, nodeDeviceServices), OptsError);
});
