/**
 * Unit tests for host swapping (src/memory/host-swap.ts) and the Node swap
 * file (src/host/swap-file.ts): eviction when the pool is empty, swap-in
 * restoring exact bytes, shared frames evicted last, a failing and a full
 * store failing only the VM that needed a frame and losing nothing, the
 * file store's bound and its short or failed writes and reads.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FramePool, FRAME_SIZE } from '../../src/memory/frame-pool.js';
import { P2m, type P2mError, P2M_ERR_NOMEM, P2M_ERR_SWAP_IN, P2M_SHARED, P2M_SWAPPED_BASE } from '../../src/memory/p2m.js';
import { HostSwap, MemorySwapStore, seededRng, type SwapStore } from '../../src/memory/host-swap.js';
import { PageSharing } from '../../src/memory/page-sharing.js';
import { SwapFile, type SwapFileIo } from '../../src/host/swap-file.js';

/** Page content number `k`. */
function content(k: number): Uint8Array {
  const b = new Uint8Array(FRAME_SIZE);
  for (let i = 0; i < FRAME_SIZE; i++) b[i] = (i * 13 + k * 101 + (i >> 9) * (k + 3)) & 0xff;
  return b;
}

/** Writes content `k` to guest page `gpn`. */
function put(p: P2m, gpn: number, k: number): void {
  const f = p.frameForWrite(gpn);
  assert.ok(f > 0, `frameForWrite(${gpn}): ${p.lastError?.message}`);
  p.pool.u8.set(content(k), p.pool.offset(f));
}

/** Asserts guest page `gpn` reads content `k`. */
function check(p: P2m, gpn: number, k: number): void {
  const f = p.frameForRead(gpn);
  assert.ok(f >= 0, `frameForRead(${gpn}): ${p.lastError?.message}`);
  assert.deepEqual(p.pool.u8.slice(p.pool.offset(f), p.pool.offset(f) + FRAME_SIZE), content(k), `${p.name} page ${gpn} holds content ${k}`);
}

const swapped = (p: P2m, g: number): boolean => p.entry(g) <= P2M_SWAPPED_BASE;
/** The table's last error (a call, so that an earlier assertion does not narrow its type). */
const lastErr = (p: P2m): P2mError | null => p.lastError;

/** A store that fails on demand. */
class FlakyStore implements SwapStore {
  readonly inner: MemorySwapStore;
  failWrites = false;
  failReads = false;
  constructor(capacity: number) { this.inner = new MemorySwapStore(capacity); }
  get capacity(): number { return this.inner.capacity; }
  write(slot: number, bytes: Uint8Array): string | null { return this.failWrites ? 'EIO: i/o error' : this.inner.write(slot, bytes); }
  read(slot: number, into: Uint8Array): string | null { return this.failReads ? 'EIO: i/o error' : this.inner.read(slot, into); }
}

test('an empty pool swaps pages out; every page reads back its exact bytes; the counters add up', () => {
  const pool = new FramePool({ frames: 4 });
  const swap = new HostSwap(pool, new MemorySwapStore(16), seededRng(1));
  const a = new P2m(pool, 8, 'a'), b = new P2m(pool, 4, 'b');
  swap.register(a); swap.register(b);
  const remaps: number[] = [];
  a.onRemap = (g) => remaps.push(g);
  for (let g = 0; g < 8; g++) put(a, g, g + 1);
  assert.equal(pool.framesUsed, 4);
  assert.equal(a.stats().pages_swapped, 4);
  assert.equal(a.stats().pages_private, 4);
  assert.deepEqual(swap.stats(), { pages_out: 4, pages_in: 0, slots_total: 16, slots_used: 4 });
  for (let g = 0; g < 8; g++) if (swapped(a, g)) assert.ok(remaps.includes(g), `page ${g} remapped when swapped out`);
  for (let round = 0; round < 2; round++) for (let g = 0; g < 8; g++) check(a, g, g + 1);
  put(b, 3, 99);
  for (let g = 0; g < 8; g++) check(a, g, g + 1);
  check(b, 3, 99);
  const s = swap.stats(), va = swap.vmStats(a), vb = swap.vmStats(b);
  assert.ok(s.pages_in > 0);
  assert.equal(s.pages_out, va.pages_out + vb.pages_out);
  assert.equal(s.pages_in, va.pages_in + vb.pages_in);
  assert.equal(s.slots_used, a.stats().pages_swapped + b.stats().pages_swapped, 'one slot per swapped page');
  assert.equal(s.pages_out - s.pages_in, s.slots_used);
  assert.equal(pool.framesUsed, a.stats().pages_private + b.stats().pages_private);
  // Ballooning a swapped page releases its slot.
  const g = [0, 1, 2, 3, 4, 5, 6, 7].find((x) => swapped(a, x))!;
  a.balloon(g);
  assert.equal(swap.stats().slots_used, s.slots_used - 1);
});

test('shared frames are evicted last: while private pages remain, only they are swapped out', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const pool = new FramePool({ frames: 3 });
    const swap = new HostSwap(pool, new MemorySwapStore(16), seededRng(seed));
    const ks = new PageSharing(pool);
    const a = new P2m(pool, 12, 'a');
    swap.register(a); ks.register(a, true);
    put(a, 0, 1); put(a, 1, 1); put(a, 2, 2);
    ks.scan(12); ks.scan(12);
    const x = a.entry(0);
    assert.ok((x & P2M_SHARED) !== 0 && a.entry(1) === x);
    put(a, 3, 3); // the pool is full: X (pages 0, 1), page 2, page 3
    for (let g = 4; g < 12; g++) {
      put(a, g, g);
      assert.ok(a.entry(0) === x && a.entry(1) === x, `seed ${seed}, write ${g}: the shared frame stays while private pages remain`);
    }
    assert.equal(swap.stats().pages_out, 8, 'one private victim per write');
    assert.deepEqual(a.stats(), { ram_pages: 12, pages_private: 2, pages_shared: 2, pages_zero: 0, pages_ballooned: 0, pages_swapped: 8 });
    for (let g = 2; g < 12; g++) check(a, g, g);
    check(a, 0, 1); check(a, 1, 1);
  }
});

test('when only shared frames remain, a reclaim swaps out every mapping of one of them (not one the requester maps)', () => {
  const pool = new FramePool({ frames: 4 });
  const swap = new HostSwap(pool, new MemorySwapStore(16), seededRng(3));
  const ks = new PageSharing(pool);
  const a = new P2m(pool, 6, 'a');
  ks.register(a, true);
  for (let k = 0; k < 3; k++) { put(a, 2 * k, k + 1); put(a, 2 * k + 1, k + 1); ks.scan(6); ks.scan(6); }
  assert.equal(a.stats().pages_shared, 6);
  assert.equal(pool.framesUsed, 3);
  const pinned = new P2m(pool, 1, 'pinned'); // not registered with host swap: never a victim
  put(pinned, 0, 9);
  swap.register(a);
  const remaps: number[] = [];
  a.onRemap = (g) => remaps.push(g);
  put(a, 0, 7); // copy-on-write of frame 1: the pool is full of shared frames
  const out = [0, 1, 2, 3, 4, 5].filter((g) => swapped(a, g));
  assert.ok(out.join() === '2,3' || out.join() === '4,5', `evicted ${out.join()}`);
  assert.deepEqual(remaps.filter((g) => g !== 0), out);
  assert.equal(swap.stats().pages_out, 2);
  assert.deepEqual(a.stats(), { ram_pages: 6, pages_private: 1, pages_shared: 3, pages_zero: 0, pages_ballooned: 0, pages_swapped: 2 });
  assert.equal(pool.framesUsed, 4);
  check(a, 0, 7); check(a, 1, 1);
  for (let g = 2; g < 6; g++) check(a, g, (g >> 1) + 1);
  check(pinned, 0, 9);
});

test('a failing store fails only the VM that needed a frame, with a clear error, and loses nothing', () => {
  const pool = new FramePool({ frames: 2 });
  const store = new FlakyStore(8);
  const swap = new HostSwap(pool, store, seededRng(11));
  const a = new P2m(pool, 4, 'a'), b = new P2m(pool, 4, 'b');
  swap.register(a); swap.register(b);
  put(a, 0, 1); put(a, 1, 2);
  store.failWrites = true;
  assert.equal(b.frameForWrite(0), P2M_ERR_NOMEM);
  assert.equal(b.lastError?.kind, 'swap-write');
  assert.match(b.lastError!.message, /^b: guest page 0x0: swap-out of a page 0x[01] failed: EIO: i\/o error$/);
  assert.equal(a.lastError, null);
  check(a, 0, 1); check(a, 1, 2);
  assert.deepEqual(a.stats(), { ram_pages: 4, pages_private: 2, pages_shared: 0, pages_zero: 0, pages_ballooned: 0, pages_swapped: 0 });
  assert.deepEqual(swap.stats(), { pages_out: 0, pages_in: 0, slots_total: 8, slots_used: 0 });
  store.failWrites = false;
  put(b, 0, 3);
  const out = swapped(a, 0) ? 0 : 1;
  assert.ok(swapped(a, out));
  store.failReads = true;
  assert.equal(a.frameForRead(out), P2M_ERR_SWAP_IN);
  assert.equal(lastErr(a)?.kind, 'swap-read');
  assert.match(lastErr(a)!.message, new RegExp(`^a: guest page 0x${out}: swap-in from slot 0 failed: EIO: i/o error$`));
  assert.ok(swapped(a, out), 'still swapped: the slot keeps the bytes');
  assert.equal(a.frameForWrite(out), P2M_ERR_SWAP_IN);
  assert.equal(pool.framesUsed, a.stats().pages_private + b.stats().pages_private, 'the frame taken for the failed read went back');
  store.failReads = false;
  check(a, out, out + 1);
  check(a, 1 - out, 2 - out);
  check(b, 0, 3);
});

test('a full store fails the VM that needed a frame; freeing memory later brings every page back', () => {
  const pool = new FramePool({ frames: 2 });
  const swap = new HostSwap(pool, new MemorySwapStore(1), seededRng(5));
  const a = new P2m(pool, 4, 'a'), b = new P2m(pool, 2, 'b');
  swap.register(a); swap.register(b);
  put(a, 0, 1); put(a, 1, 2); put(a, 2, 3); // the third write swaps one page out: the store is full
  assert.equal(swap.stats().slots_used, 1);
  assert.equal(a.frameForWrite(3), P2M_ERR_NOMEM);
  assert.equal(a.lastError?.kind, 'swap-full');
  assert.equal(a.lastError?.message, 'a: guest page 0x3: host swap is full (1 slots)');
  assert.equal(b.frameForWrite(0), P2M_ERR_NOMEM, 'b cannot grow either');
  assert.equal(b.frameForRead(1), 0, 'but b still reads');
  const out = [0, 1, 2].find((g) => swapped(a, g))!;
  const resident = [0, 1, 2].filter((g) => g !== out);
  for (const g of resident) check(a, g, g + 1);
  assert.equal(a.frameForRead(out), P2M_ERR_NOMEM, 'swap-in needs a frame too');
  assert.equal(a.lastError?.kind, 'swap-full');
  a.balloon(resident[0]!);
  check(a, out, out + 1);
  check(a, resident[1]!, resident[1]! + 1);
  assert.equal(swap.stats().slots_used, 0);
});

test('the swap file: slots round-trip; the size bound gives "swap file full"; short and failed I/O give errors', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-swap-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'swap');
  const sf = new SwapFile(file, 3 * FRAME_SIZE + 100);
  assert.equal(sf.capacity, 3);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'guest memory is private to the owner');
  const into = new Uint8Array(FRAME_SIZE);
  assert.equal(sf.write(2, content(2)), null);
  assert.equal(sf.write(0, content(5)), null);
  assert.equal(sf.read(2, into), null);
  assert.deepEqual(into, content(2));
  assert.equal(sf.read(0, into), null);
  assert.deepEqual(into, content(5));
  assert.equal(sf.write(3, content(1)), `swap file ${file} full (${3 * FRAME_SIZE + 100} bytes, slot 3)`);
  assert.ok(fs.statSync(file).size <= 3 * FRAME_SIZE, 'the bound holds on disk');
  fs.truncateSync(file, 2 * FRAME_SIZE + 100);
  assert.match(sf.read(2, into) ?? '', /short read at slot 2 \(100 of 4096 bytes; truncated\?\)$/);
  sf.close();
  assert.match(sf.write(0, content(1)) ?? '', /closed$/);

  let calls = 0;
  const shortIo: SwapFileIo = {
    writeSync: (fd, buf, off, len, pos) => (++calls === 1 ? fs.writeSync(fd, buf, off, 1000, pos) : 0),
    readSync: (fd, buf, off, len, pos) => fs.readSync(fd, buf, off, len, pos),
  };
  const sf2 = new SwapFile(path.join(dir, 'swap2'), 4 * FRAME_SIZE, shortIo);
  assert.equal(sf2.write(1, content(1)), `swap file ${path.join(dir, 'swap2')}: short write at slot 1 (1000 of 4096 bytes)`);
  sf2.close();
  const failIo: SwapFileIo = {
    writeSync: () => { throw new Error('EIO: i/o error, write'); },
    readSync: () => { throw new Error('EIO: i/o error, read'); },
  };
  const sf3 = new SwapFile(path.join(dir, 'swap3'), 4 * FRAME_SIZE, failIo);
  assert.match(sf3.write(0, content(1)) ?? '', /write of slot 0: EIO: i\/o error, write$/);
  assert.match(sf3.read(0, into) ?? '', /read of slot 0: EIO: i\/o error, read$/);
  sf3.close();
  if (fs.existsSync('/dev/full')) {
    const full = new SwapFile('/dev/full', 4 * FRAME_SIZE);
    assert.match(full.write(0, content(1)) ?? '', /ENOSPC/);
    full.close();
  }
  assert.throws(() => new SwapFile(path.join(dir, 'no', 'such', 'dir'), FRAME_SIZE), /swap file .*ENOENT/);
});

test('host swap over a swap file: a VM larger than the pool keeps its data, and a failed write loses nothing', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-swap-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  let failing = false;
  const io: SwapFileIo = {
    writeSync: (fd, buf, off, len, pos) => (failing ? fs.writeSync(fd, buf, off, Math.min(len, 512), pos) && 0 : fs.writeSync(fd, buf, off, len, pos)),
    readSync: (fd, buf, off, len, pos) => fs.readSync(fd, buf, off, len, pos),
  };
  const sf = new SwapFile(path.join(dir, 'swap'), 64 * FRAME_SIZE, io);
  t.after(() => sf.close());
  const pool = new FramePool({ frames: 3 });
  const swap = new HostSwap(pool, sf, seededRng(9));
  const a = new P2m(pool, 10, 'a');
  swap.register(a);
  for (let g = 0; g < 10; g++) put(a, g, 40 + g);
  for (let g = 9; g >= 0; g--) check(a, g, 40 + g);
  failing = true; // a truncated write: 512 bytes, then nothing
  const victim = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].find((g) => swapped(a, g))!;
  assert.equal(a.frameForRead(victim), P2M_ERR_NOMEM);
  assert.equal(a.lastError?.kind, 'swap-write');
  assert.match(a.lastError!.message, /short write at slot \d+ \(0 of 4096 bytes\)/);
  failing = false;
  for (let g = 0; g < 10; g++) check(a, g, 40 + g);
});
