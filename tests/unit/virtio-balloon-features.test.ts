/**
 * virtio-balloon's optional features against the fake driver
 * (tests/helpers/virtio-driver.ts): the poison_val config field and the
 * fill pattern it sets for discarded pages (PAGE_POISON), free page
 * reporting (queue numbering by negotiated features, whole pages only,
 * malformed buffers: outside RAM, looping, readable, empty, unaligned,
 * longer than the copy cap), the BalloonMemory calls a custom backend
 * sees, and statistics polling on an injected timer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeDriver, FAKE_RAM_BASE } from '../helpers/virtio-driver.js';
import {
  VirtioBalloon, RamAccounting, BALLOON_PAGE_SIZE, BALLOON_Q_INFLATE, BALLOON_Q_DEFLATE, BALLOON_Q_STATS, type BalloonMemory,
  VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_PAGE_POISON, VIRTIO_BALLOON_F_REPORTING,
} from '../../src/devices/virtio/balloon.js';
import { STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_FEATURES_OK, STATUS_DRIVER_OK, STATUS_DEVICE_NEEDS_RESET } from '../../src/devices/virtio/mmio.js';
import { MAX_CHAIN_BYTES } from '../../src/devices/virtio/queue.js';

const RAM = 4 * 1024 * 1024;
const PAGES = RAM / BALLOON_PAGE_SIZE;
/** poison_val in the MMIO window (config at 0x100, field at 12: virtio 1.2 §5.5.4). */
const POISON = 0x10c;
/** Pages near the top of RAM (the fake driver allocates rings and buffers from the bottom). */
const TOP = PAGES - 64;
const DESC_F_NEXT = 1, DESC_F_WRITE = 2;
const ALL = (1 << VIRTIO_BALLOON_F_MUST_TELL_HOST) | (1 << VIRTIO_BALLOON_F_STATS_VQ) | (1 << VIRTIO_BALLOON_F_PAGE_POISON) | (1 << VIRTIO_BALLOON_F_REPORTING);

function page(drv: FakeDriver, i: number): Uint8Array { return drv.mem.u8.subarray(i * BALLOON_PAGE_SIZE, (i + 1) * BALLOON_PAGE_SIZE); }
const pageAddr = (i: number): number => FAKE_RAM_BASE + i * BALLOON_PAGE_SIZE;

function pfnArray(pfns: number[]): Uint8Array {
  const b = new Uint8Array(4 * pfns.length), dv = new DataView(b.buffer);
  pfns.forEach((p, i) => dv.setUint32(4 * i, p >>> 0, true));
  return b;
}

function setup(opts: { reporting?: boolean; poison?: boolean } = {}): { dev: VirtioBalloon; drv: FakeDriver; acc: RamAccounting } {
  const dev = new VirtioBalloon({ freePageReporting: opts.reporting ?? true, pagePoison: opts.poison ?? true });
  const drv = new FakeDriver(dev, RAM);
  const acc = new RamAccounting(FAKE_RAM_BASE, RAM, drv.mem);
  dev.attach(acc);
  return { dev, drv, acc };
}

/** Posts one chain of raw descriptors [addr, len, writable] on queue `q` (descriptors 0..n-1) and kicks. */
function postRaw(drv: FakeDriver, q: number, bufs: [number, number, boolean][]): void {
  bufs.forEach(([addr, len, w], k) => drv.writeDesc(q, k, addr, len, (w ? DESC_F_WRITE : 0) | (k < bufs.length - 1 ? DESC_F_NEXT : 0), k + 1));
  drv.publish(q, 0);
}

/** Driver setup up to FEATURES_OK with `features`, then the poison value, then DRIVER_OK (Linux's probe order). */
function initWithPoison(drv: FakeDriver, features: number, poison: number): void {
  drv.init(features);
  drv.setReg(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
  drv.setReg(POISON, poison);
  drv.setReg(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
}

test('poison_val: written by the driver, read back, cleared by reset; ignored when PAGE_POISON is not offered', () => {
  const { dev, drv } = setup();
  drv.init(ALL);
  assert.equal(drv.reg(POISON), 0);
  drv.setReg(POISON, 0xaaaaaaaa | 0);
  assert.equal(drv.reg(POISON), 0xaaaaaaaa);
  assert.equal(dev.poisonValue, 0xaaaaaaaa);
  assert.equal(dev.fill, 0xaaaaaaaa, 'negotiated: discarded pages must read back as poison_val');
  drv.transport.write(POISON + 1, 1, 0x55, 0); // a byte write to the second byte
  assert.equal(dev.poisonValue, 0xaaaa55aa);
  drv.setReg(0x70, 0);
  assert.equal(dev.poisonValue, 0);
  drv.init(ALL & ~(1 << VIRTIO_BALLOON_F_PAGE_POISON)); // the driver did not accept PAGE_POISON (Linux without poisoning)
  drv.setReg(POISON, 0x11111111);
  assert.equal(dev.fill, 0, 'not negotiated: discarded pages read back as zero');

  const off = setup({ poison: false });
  assert.equal(off.drv.reg(0x10) & (1 << VIRTIO_BALLOON_F_PAGE_POISON), 0);
  off.drv.init();
  off.drv.setReg(POISON, 0x12345678);
  assert.equal(off.drv.reg(POISON), 0, 'poison_val is not writable without the feature');
});

test('inflate with PAGE_POISON fills pages with poison_val (pages already holding it are only read)', () => {
  const { drv, acc } = setup();
  initWithPoison(drv, ALL, 0xaaaaaaaa | 0);
  page(drv, TOP).fill(0x5a);
  page(drv, TOP + 1).fill(0xaa);
  page(drv, TOP + 2).fill(0x77);
  drv.submit(BALLOON_Q_INFLATE, [{ data: pfnArray([pageAddr(TOP) / BALLOON_PAGE_SIZE, pageAddr(TOP + 1) / BALLOON_PAGE_SIZE]) }]);
  assert.ok(page(drv, TOP).every((b) => b === 0xaa));
  assert.ok(page(drv, TOP + 1).every((b) => b === 0xaa));
  assert.equal(acc.zeroedPages, 1, 'only the page that did not hold the pattern was written');
  assert.ok(page(drv, TOP + 2).every((b) => b === 0x77), 'other pages are untouched');
  assert.ok(drv.canariesIntact());
});

test('reporting_vq follows the negotiated features: queue 3 with STATS_VQ, queue 2 without', () => {
  for (const [features, q] of [[ALL, 3], [ALL & ~(1 << VIRTIO_BALLOON_F_STATS_VQ), 2]] as const) {
    const { dev, drv } = setup();
    assert.equal(dev.numQueues, 4);
    drv.init(features);
    page(drv, TOP).fill(0x33);
    postRaw(drv, q, [[pageAddr(TOP), BALLOON_PAGE_SIZE, true]]);
    assert.deepEqual(drv.used(q), [{ id: 0, len: 0 }], `queue ${q}: the buffer comes back with nothing written`);
    assert.equal(dev.counters().pages_reported, 1);
    assert.ok(page(drv, TOP).every((b) => b === 0), 'discarded to zero');
    assert.equal(dev.stats, null, 'not mistaken for a stats buffer');
  }
});

test('free page reports: whole pages in device-writable buffers; empty, readable and partial pages are ignored', () => {
  const { dev, drv, acc } = setup();
  drv.init(ALL);
  for (let i = TOP; i < TOP + 16; i++) page(drv, i).fill(0x42);
  postRaw(drv, 3, [
    [pageAddr(TOP), 8 * BALLOON_PAGE_SIZE, true], // 8 whole pages
    [pageAddr(TOP + 8) + 100, 3 * BALLOON_PAGE_SIZE, true], // unaligned: only pages TOP+9 and TOP+10 are whole
    [pageAddr(TOP + 12), 0, true], // empty
  ]);
  assert.equal(drv.used(3).length, 1);
  assert.deepEqual(dev.counters(), { pages_ballooned: 0, pages_inflated: 0, pages_deflated: 0, pages_reported: 10, reports: 1, stats_reports: 0 });
  assert.equal(acc.reportedTotal, 10);
  for (let i = TOP; i < TOP + 8; i++) assert.ok(page(drv, i).every((b) => b === 0), `page ${i} discarded`);
  assert.ok(page(drv, TOP + 8).every((b) => b === 0x42), 'a partly reported page keeps its data');
  assert.ok(page(drv, TOP + 9).every((b) => b === 0) && page(drv, TOP + 10).every((b) => b === 0));
  assert.ok(page(drv, TOP + 11).every((b) => b === 0x42), 'the partial tail page keeps its data');
  assert.ok(page(drv, TOP + 12).every((b) => b === 0x42), 'an empty buffer reports nothing');
  // A chain of only device-readable buffers reports nothing but is returned.
  postRaw(drv, 3, [[pageAddr(TOP + 13), 2 * BALLOON_PAGE_SIZE, false]]);
  assert.equal(drv.used(3).length, 1);
  assert.ok(page(drv, TOP + 13).every((b) => b === 0x42));
  assert.equal(dev.counters().pages_reported, 10);
  assert.equal(dev.counters().reports, 2);
  // A page in the balloon that is also reported stays in the balloon (and is not written again).
  drv.submit(BALLOON_Q_INFLATE, [{ data: pfnArray([pageAddr(TOP + 14) / BALLOON_PAGE_SIZE]) }]);
  const zeroed = acc.zeroedPages;
  page(drv, TOP + 14).fill(0x66); // a driver bug, but the device must not hide it by rewriting the page
  postRaw(drv, 3, [[pageAddr(TOP + 14), BALLOON_PAGE_SIZE, true]]);
  assert.ok(acc.isReleased(TOP + 14));
  assert.equal(acc.zeroedPages, zeroed);
  assert.equal(acc.usage(drv.mem.u8).releasedDirtyPages, 1);
  assert.ok(drv.canariesIntact());
});

test('free page reports with poison: discarded pages read back as poison_val', () => {
  const { drv } = setup();
  initWithPoison(drv, ALL, 0xaaaaaaaa | 0);
  page(drv, TOP).fill(0);
  page(drv, TOP + 1).fill(0x99);
  postRaw(drv, 3, [[pageAddr(TOP), 2 * BALLOON_PAGE_SIZE, true]]);
  assert.equal(drv.used(3).length, 1);
  assert.ok(page(drv, TOP).every((b) => b === 0xaa) && page(drv, TOP + 1).every((b) => b === 0xaa));
});

test('malformed reports: buffers outside RAM or looping chains reset the device and report nothing; the host survives', () => {
  const bad: [string, [number, number, boolean][]][] = [
    ['past the end of RAM', [[pageAddr(PAGES - 1), 2 * BALLOON_PAGE_SIZE, true]]],
    ['below RAM', [[FAKE_RAM_BASE - BALLOON_PAGE_SIZE, BALLOON_PAGE_SIZE, true]]],
    ['a huge length', [[pageAddr(TOP), 0xffffffff, true]]],
    ['an address beyond 4 GiB', [[2 ** 40, BALLOON_PAGE_SIZE, true]]],
    ['a good buffer then a bad one', [[pageAddr(TOP), BALLOON_PAGE_SIZE, true], [0, BALLOON_PAGE_SIZE, true]]],
  ];
  for (const [what, bufs] of bad) {
    const { dev, drv } = setup();
    drv.init(ALL);
    page(drv, TOP).fill(0x42);
    postRaw(drv, 3, bufs);
    assert.ok(drv.status & STATUS_DEVICE_NEEDS_RESET, what);
    assert.match(drv.transport.lastError, /0x[0-9a-f]+\+\d+ outside guest RAM/, what);
    assert.equal(dev.counters().pages_reported, 0, `${what}: nothing reported`);
    assert.ok(page(drv, TOP).every((b) => b === 0x42), `${what}: nothing discarded`);
    assert.ok(drv.canariesIntact());
  }
  const { dev, drv } = setup();
  drv.init(ALL);
  drv.writeDesc(3, 0, pageAddr(TOP), BALLOON_PAGE_SIZE, DESC_F_WRITE | DESC_F_NEXT, 1);
  drv.writeDesc(3, 1, pageAddr(TOP + 1), BALLOON_PAGE_SIZE, DESC_F_WRITE | DESC_F_NEXT, 0); // loops back
  drv.publish(3, 0);
  assert.ok(drv.status & STATUS_DEVICE_NEEDS_RESET);
  assert.match(drv.transport.lastError, /loops/);
  assert.equal(dev.counters().pages_reported, 0);
  // A readable buffer after a writable one is a malformed chain too (virtio 1.2 §2.7.4.2).
  const r = setup();
  r.drv.init(ALL);
  postRaw(r.drv, 3, [[pageAddr(TOP), BALLOON_PAGE_SIZE, true], [pageAddr(TOP + 1), BALLOON_PAGE_SIZE, false]]);
  assert.ok(r.drv.status & STATUS_DEVICE_NEEDS_RESET);
});

/** A BalloonMemory that records the calls it gets. */
class RecordingMemory implements BalloonMemory {
  readonly pages = PAGES;
  calls: string[] = [];
  inflate(i: number, fill: number): boolean { this.calls.push(`inflate ${i} ${fill.toString(16)}`); return true; }
  deflate(i: number, fill: number): boolean { this.calls.push(`deflate ${i} ${fill.toString(16)}`); return true; }
  report(first: number, count: number, fill: number): void { this.calls.push(`report ${first}+${count} ${fill.toString(16)}`); }
  deflateAll(): void { this.calls.push('deflateAll'); }
}

test('a custom BalloonMemory sees page indices, counts and the fill; reports may exceed the copy cap', () => {
  const dev = new VirtioBalloon({ freePageReporting: true });
  const drv = new FakeDriver(dev, RAM);
  const mem = new RecordingMemory();
  dev.attach(mem);
  assert.equal(dev.accounting, null, 'QMP shows RamAccounting usage only for the default backend');
  assert.equal(dev.memory, mem);
  initWithPoison(drv, ALL, 0x5a5a5a5a);
  drv.submit(BALLOON_Q_INFLATE, [{ data: pfnArray([pageAddr(7) / BALLOON_PAGE_SIZE]) }]);
  drv.submit(BALLOON_Q_DEFLATE, [{ data: pfnArray([pageAddr(7) / BALLOON_PAGE_SIZE]) }]);
  // Five overlapping views of all of RAM: 20 MiB in one chain, more than the 16 MiB a copying device accepts.
  const whole: [number, number, boolean][] = Array.from({ length: 5 }, () => [FAKE_RAM_BASE, RAM, true]);
  assert.ok(5 * RAM > MAX_CHAIN_BYTES);
  postRaw(drv, 3, whole);
  assert.equal(drv.status & STATUS_DEVICE_NEEDS_RESET, 0, drv.transport.lastError);
  drv.setReg(0x70, 0);
  assert.deepEqual(mem.calls, ['deflateAll' /* the driver's initial reset */, 'inflate 7 5a5a5a5a', 'deflate 7 5a5a5a5a', ...whole.map(() => `report 0+${PAGES} 5a5a5a5a`), 'deflateAll']);
  assert.deepEqual(dev.counters(), { pages_ballooned: 0, pages_inflated: 1, pages_deflated: 1, pages_reported: 5 * PAGES, reports: 1, stats_reports: 0 });
});

test('statistics polling: asks at once, then one interval after each report; retries while no buffer is held', () => {
  const armed: { fn: () => void; ms: number; live: boolean }[] = [];
  const timer = (fn: () => void, ms: number): (() => void) => {
    const t = { fn, ms, live: true };
    armed.push(t);
    return () => { t.live = false; };
  };
  const fire = (): number => { const t = armed.filter((x) => x.live).pop()!; t.live = false; t.fn(); return t.ms; };
  const dev = new VirtioBalloon({ timer, statsPollingInterval: 2, now: () => 42 });
  const drv = new FakeDriver(dev, RAM);
  assert.equal(armed.filter((x) => x.live).length, 1);
  assert.equal(fire(), 0, 'the first request goes out at once');
  assert.equal(armed.filter((x) => x.live)[0]!.ms, 2000, 'no driver yet: retry after the interval');
  drv.init();
  drv.setReg(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
  drv.submit(BALLOON_Q_STATS, [{ data: Uint8Array.of(4, 0, 1, 0, 0, 0, 0, 0, 0, 0) }]); // free-memory = 1
  drv.setReg(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  assert.deepEqual(dev.statsSnapshot(), { stats: { 'free-memory': 1 }, time: 42, reports: 1 });
  const live = armed.filter((x) => x.live);
  assert.equal(live.length, 1, 'one timer at a time');
  assert.equal(live[0]!.ms, 2000);
  assert.equal(fire(), 2000);
  assert.deepEqual(drv.used(BALLOON_Q_STATS).map((u) => u.len), [0], 'the held buffer goes back to the guest');
  assert.equal(armed.filter((x) => x.live).length, 0, 'the next request waits for the report');
  drv.submit(BALLOON_Q_STATS, [{ data: Uint8Array.of(4, 0, 2, 0, 0, 0, 0, 0, 0, 0) }]);
  assert.equal(dev.statsSnapshot()!.stats['free-memory'], 2);
  assert.equal(armed.filter((x) => x.live).length, 1);
  dev.statsPollingInterval = 0;
  assert.equal(armed.filter((x) => x.live).length, 0, 'off');
  assert.throws(() => { new VirtioBalloon().statsPollingInterval = 1; }, /no timer/);
  assert.throws(() => { dev.statsPollingInterval = 1.5; }, RangeError);
});
