/**
 * Unit tests for content-based page sharing (src/memory/page-sharing.ts):
 * identical pages within one VM and across two merge (KSM counters checked
 * exactly), a candidate that changes between its hash and the comparison
 * is not merged (pages_volatile), zero pages merge into the zero frame, a
 * VM with sharing off is never touched, the per-frame sharing cap.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramePool, FRAME_SIZE, FRAME_WORDS, MAX_PAGE_SHARING, ZERO_FRAME } from '../../src/memory/frame-pool.js';
import { P2m, P2M_SHARED, P2M_ZERO_SHARED } from '../../src/memory/p2m.js';
import { PageSharing, hashFrame } from '../../src/memory/page-sharing.js';

/** Page content number `k` (0: all zero). */
function content(k: number): Uint8Array {
  const b = new Uint8Array(FRAME_SIZE);
  if (k !== 0) for (let i = 0; i < FRAME_SIZE; i++) b[i] = (i * 31 + k * 97 + (i >> 8) * k) & 0xff;
  return b;
}

/** Writes content `k` to guest page `gpn`. */
function put(p: P2m, gpn: number, k: number): void {
  const f = p.frameForWrite(gpn);
  assert.ok(f > 0, `frameForWrite: ${p.lastError?.message}`);
  p.pool.u8.set(content(k), p.pool.offset(f));
}

/** Asserts guest page `gpn` holds content `k`. */
function check(p: P2m, gpn: number, k: number): void {
  const f = p.frameForRead(gpn);
  assert.ok(f >= 0);
  assert.deepEqual(p.pool.u8.subarray(p.pool.offset(f), p.pool.offset(f) + FRAME_SIZE), content(k), `${p.name} page ${gpn} holds content ${k}`);
}

test('identical pages within one VM and across two merge onto one read-only frame; the counters are exact', () => {
  const pool = new FramePool({ frames: 32 });
  const a = new P2m(pool, 8, 'a'), b = new P2m(pool, 8, 'b');
  const ks = new PageSharing(pool);
  ks.register(a, true); ks.register(b, true);
  put(a, 0, 1); put(a, 1, 1); put(a, 2, 2); put(a, 3, 3);
  put(b, 0, 1); put(b, 1, 2); put(b, 2, 4); put(b, 3, 0);
  assert.equal(pool.framesUsed, 8);
  assert.equal(ks.scan(16), 16, 'one full pass');
  assert.deepEqual(ks.stats(), { pages_shared: 0, pages_sharing: 0, pages_unshared: 0, pages_volatile: 8, pages_zero: 0, full_scans: 1 },
    'first sight: every page is volatile until its checksum repeats');
  assert.equal(ks.scan(16), 16);
  assert.deepEqual(ks.stats(), { pages_shared: 2, pages_sharing: 3, pages_unshared: 2, pages_volatile: 0, pages_zero: 1, full_scans: 2 });
  assert.deepEqual(a.stats(), { ram_pages: 8, pages_private: 1, pages_shared: 3, pages_zero: 0, pages_ballooned: 0, pages_swapped: 0 });
  assert.deepEqual(b.stats(), { ram_pages: 8, pages_private: 1, pages_shared: 2, pages_zero: 1, pages_ballooned: 0, pages_swapped: 0 });
  assert.deepEqual(ks.vmStats(a), { sharing: true, pages_shared: 2, pages_sharing: 1, pages_unshared: 1, pages_volatile: 0, pages_zero: 0, full_scans: 2 });
  assert.deepEqual(ks.vmStats(b), { sharing: true, pages_shared: 2, pages_sharing: 0, pages_unshared: 1, pages_volatile: 0, pages_zero: 1, full_scans: 2 });
  assert.equal(pool.framesUsed, 4, 'content 1, content 2, and the two unique pages');
  const x = a.entry(0);
  assert.ok((x & P2M_SHARED) !== 0);
  assert.equal(a.entry(1), x);
  assert.equal(b.entry(0), x);
  assert.equal(pool.refcount(x & ~P2M_SHARED), 3);
  assert.equal(b.entry(3), P2M_ZERO_SHARED);
  for (const [p, g, k] of [[a, 0, 1], [a, 1, 1], [a, 2, 2], [a, 3, 3], [b, 0, 1], [b, 1, 2], [b, 2, 4], [b, 3, 0]] as const) check(p, g, k);
  // A third pass changes nothing.
  ks.scan(16);
  assert.deepEqual(ks.stats(), { pages_shared: 2, pages_sharing: 3, pages_unshared: 2, pages_volatile: 0, pages_zero: 1, full_scans: 3 });
  // A write after the merge copies: the others keep the old bytes.
  put(a, 1, 5);
  check(a, 1, 5); check(a, 0, 1); check(b, 0, 1);
  assert.deepEqual(ks.stats().pages_sharing, 2);
});

test('a candidate that changes between its hash and the comparison is not merged, and counts as volatile', () => {
  const pool = new FramePool({ frames: 8 });
  const p = new P2m(pool, 2, 'vm');
  const ks = new PageSharing(pool);
  ks.register(p, true);
  put(p, 0, 1); put(p, 1, 1);
  ks.scan(2); // first sight of both
  assert.equal(ks.scan(1), 1); // page 0: stable, hashed, now the candidate for its hash
  assert.deepEqual([ks.stats().pages_unshared, ks.stats().pages_volatile], [1, 1]);
  put(p, 0, 2); // the guest changes page 0 (private, no fault): its recorded hash is stale
  ks.scan(1); // page 1: same hash as the candidate, but the comparison fails
  check(p, 0, 2); check(p, 1, 1);
  assert.equal(p.stats().pages_shared, 0, 'not merged');
  assert.equal(pool.framesUsed, 2);
  assert.deepEqual(ks.stats(), { pages_shared: 0, pages_sharing: 0, pages_unshared: 1, pages_volatile: 1, pages_zero: 0, full_scans: 2 });
  assert.deepEqual(ks.vmStats(p).pages_volatile, 1);
  ks.scan(2); ks.scan(2);
  assert.equal(p.stats().pages_private, 2, 'different contents stay apart');
  put(p, 0, 1);
  ks.scan(2); ks.scan(2);
  assert.equal(p.stats().pages_shared, 2, 'once equal and stable, they merge');
  check(p, 0, 1); check(p, 1, 1);
});

test('pages written with zeros merge into the canonical zero frame and free their frames', () => {
  const pool = new FramePool({ frames: 8 });
  const p = new P2m(pool, 6);
  const ks = new PageSharing(pool);
  ks.register(p, true);
  for (let g = 0; g < 4; g++) { put(p, g, 7); put(p, g, 0); }
  put(p, 4, 7);
  ks.scan(6); ks.scan(6);
  assert.deepEqual(p.stats(), { ram_pages: 6, pages_private: 1, pages_shared: 0, pages_zero: 4, pages_ballooned: 0, pages_swapped: 0 });
  assert.equal(ks.stats().pages_zero, 4);
  assert.equal(ks.stats().pages_shared, 0, 'the zero frame is not a shared frame');
  assert.equal(pool.framesUsed, 1);
  for (let g = 0; g < 4; g++) assert.equal(p.frameForRead(g), ZERO_FRAME);
  assert.ok(pool.isZero(ZERO_FRAME));
  put(p, 2, 9);
  check(p, 2, 9); check(p, 3, 0);
  assert.equal(p.stats().pages_zero, 3);
});

test('a VM with sharing off is never scanned nor used as a candidate; turning it on merges it', () => {
  const pool = new FramePool({ frames: 16 });
  const a = new P2m(pool, 4, 'a'), b = new P2m(pool, 4, 'b');
  const ks = new PageSharing(pool);
  ks.register(a, true); ks.register(b, false);
  put(a, 0, 1); put(a, 1, 1); put(a, 2, 3);
  put(b, 0, 1); put(b, 1, 3); put(b, 2, 0); put(b, 3, 4); put(b, 1, 4);
  const before = Int32Array.from(b.table);
  const remaps: number[] = [];
  b.onRemap = (g) => remaps.push(g);
  for (let i = 0; i < 5; i++) assert.equal(ks.scan(4), 4, 'only a\'s 4 pages are visited');
  assert.deepEqual(b.table, before, 'b untouched');
  assert.deepEqual(remaps, []);
  assert.deepEqual(ks.vmStats(b), { sharing: false, pages_shared: 0, pages_sharing: 0, pages_unshared: 0, pages_volatile: 0, pages_zero: 0, full_scans: 0 });
  assert.deepEqual(ks.stats(), { pages_shared: 1, pages_sharing: 1, pages_unshared: 1, pages_volatile: 0, pages_zero: 0, full_scans: 5 });
  ks.setSharing(b, true);
  ks.scan(8); ks.scan(8);
  assert.deepEqual(ks.stats(), { pages_shared: 2, pages_sharing: 3, pages_unshared: 1, pages_volatile: 0, pages_zero: 1, full_scans: 7 });
  check(b, 0, 1); check(b, 1, 4); check(b, 2, 0); check(b, 3, 4); check(a, 2, 3);
  ks.setSharing(a, false); ks.setSharing(b, false);
  assert.equal(ks.scan(100), 0);
});

test('no frame gets more than MAX_PAGE_SHARING mappings: the next identical pages start a second shared frame', () => {
  const n = MAX_PAGE_SHARING + 44;
  const pool = new FramePool({ frames: n + 8 });
  const p = new P2m(pool, n);
  const ks = new PageSharing(pool);
  ks.register(p, true);
  for (let g = 0; g < n; g++) put(p, g, 6);
  ks.scan(n); ks.scan(n);
  assert.deepEqual(ks.stats(), { pages_shared: 2, pages_sharing: n - 2, pages_unshared: 0, pages_volatile: 0, pages_zero: 0, full_scans: 2 });
  assert.equal(pool.refcount(p.entry(0) & ~P2M_SHARED), MAX_PAGE_SHARING);
  assert.equal(pool.refcount(p.entry(n - 1) & ~P2M_SHARED), n - MAX_PAGE_SHARING);
  for (let g = 0; g < n; g += 37) check(p, g, 6);
});

test('a shared page left alone by its co-sharers becomes private again at the next visit', () => {
  const pool = new FramePool({ frames: 8 });
  const p = new P2m(pool, 2);
  const ks = new PageSharing(pool);
  ks.register(p, true);
  put(p, 0, 1); put(p, 1, 1);
  ks.scan(2); ks.scan(2);
  assert.equal(ks.stats().pages_shared, 1);
  put(p, 1, 2); // copy-on-write: page 0's frame has one mapping left
  assert.deepEqual(ks.stats(), { pages_shared: 1, pages_sharing: 0, pages_unshared: 0, pages_volatile: 0, pages_zero: 0, full_scans: 2 });
  ks.scan(2);
  assert.deepEqual(p.stats(), { ram_pages: 2, pages_private: 2, pages_shared: 0, pages_zero: 0, pages_ballooned: 0, pages_swapped: 0 });
  assert.equal(ks.stats().pages_shared, 0);
  assert.ok(p.isWritable(0));
  check(p, 0, 1); check(p, 1, 2);
});

test('hashFrame sees a change in any word, and hashes in place', () => {
  const pool = new FramePool({ frames: 2 });
  const f = pool.alloc();
  const base = f * FRAME_WORDS;
  const h0 = hashFrame(pool.i32, base);
  assert.equal(h0, hashFrame(pool.i32, ZERO_FRAME * FRAME_WORDS), 'a zero frame hashes like the zero frame');
  const seen = new Set<number>([h0]);
  for (const w of [0, 1, 2, 511, 1022, 1023]) {
    pool.i32[base + w] = 1;
    const h = hashFrame(pool.i32, base);
    assert.ok(!seen.has(h), `word ${w}`);
    seen.add(h);
    pool.i32[base + w] = 0;
  }
});

test('hashes taken ahead (VMs running) give the same merges as hashing in the scan, seeded', () => {
  const seed = Number(process.env['SHARING_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`hashAhead equivalence: SHARING_SEED=${seed}`);
  let x = seed >>> 0;
  const rnd = (n: number): number => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return (x >>> 8) % n; };
  const worlds = [0, 1].map(() => {
    const pool = new FramePool({ frames: 80 });
    const vms = [new P2m(pool, 24, 'a'), new P2m(pool, 24, 'b'), new P2m(pool, 16, 'c')];
    const ks = new PageSharing(pool);
    for (const p of vms) ks.register(p, true);
    return { pool, vms, ks };
  });
  for (let round = 0; round < 40; round++) {
    const writes = Array.from({ length: rnd(6) }, () => [rnd(3), rnd(16), rnd(5)] as const);
    const budget = 1 + rnd(40);
    worlds.forEach((w, i) => {
      for (const [v, g, k] of writes) put(w.vms[v]!, g, k);
      if (i === 1) w.ks.hashAhead(budget);
      w.ks.scan(budget);
    });
    const [a, b] = worlds;
    assert.deepEqual(b!.ks.stats(), a!.ks.stats(), `round ${round}: the same counters`);
    for (let v = 0; v < 3; v++) assert.deepEqual(Array.from(b!.vms[v]!.table), Array.from(a!.vms[v]!.table), `round ${round}: vm ${v} maps the same frames`);
  }
});

test('a page written after its hash was taken ahead is never merged on that stale hash', () => {
  const pool = new FramePool({ frames: 16 });
  const a = new P2m(pool, 4, 'a'), b = new P2m(pool, 4, 'b');
  const ks = new PageSharing(pool);
  ks.register(a, true); ks.register(b, true);
  put(a, 0, 1); put(b, 0, 1); put(a, 1, 2); put(b, 1, 0);
  ks.scan(8); // first sight: every page volatile; checksums recorded
  ks.hashAhead(8); // identical pages hashed with the "VMs running"...
  put(b, 0, 3); // ...then b's page 0 is written: it no longer equals a's page 0
  put(b, 1, 2); // and b's page 1 now equals a's page 1, after its (zero) hash was taken
  ks.scan(8);
  for (const [p, g, k] of [[a, 0, 1], [b, 0, 3], [a, 1, 2], [b, 1, 2]] as const) check(p, g, k);
  assert.notEqual(a.entry(0), b.entry(0), 'a stale equal hash did not merge pages that differ');
  assert.equal(b.entry(1) & P2M_SHARED, 0, 'a stale zero hash did not merge a page that is no longer zero');
  ks.scan(8); ks.scan(8);
  assert.equal(a.entry(1), b.entry(1), 'fresh hashes merge the pages that became equal');
  for (const [p, g, k] of [[a, 0, 1], [b, 0, 3], [a, 1, 2], [b, 1, 2]] as const) check(p, g, k);
});
