/**
 * Unit tests for the per-VM p2m table (src/memory/p2m.ts): unbacked pages
 * read the zero frame and allocate on first write; copy-on-write of a
 * shared frame (copy with refcount > 1, takeover at refcount 1); the zero
 * frame's COW; ballooning and deflating, with freed frames reused by
 * another VM; remap notifications; the counters; error codes.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramePool, FRAME_SIZE, ZERO_FRAME } from '../../src/memory/frame-pool.js';
import {
  P2m, P2M_BALLOONED, P2M_ERR_NOMEM, P2M_ERR_RANGE, P2M_SHARED, P2M_UNBACKED, P2M_ZERO_SHARED,
} from '../../src/memory/p2m.js';

/** Writes `byte` to offset `at` of guest page `gpn` (through frameForWrite). */
function poke(p: P2m, gpn: number, at: number, byte: number): number {
  const f = p.frameForWrite(gpn);
  assert.ok(f > 0, `frameForWrite(${gpn}) = ${f}: ${p.lastError?.message}`);
  p.pool.u8[p.pool.offset(f) + at] = byte;
  return f;
}

/** Reads offset `at` of guest page `gpn` (through frameForRead). */
function peek(p: P2m, gpn: number, at: number): number {
  const f = p.frameForRead(gpn);
  assert.ok(f >= 0, `frameForRead(${gpn}) = ${f}`);
  return p.pool.u8[p.pool.offset(f) + at]!;
}

const zeroStats = { pages_private: 0, pages_shared: 0, pages_zero: 0, pages_ballooned: 0, pages_swapped: 0 };

test('an unbacked page reads the zero frame, counts nowhere, and its first write allocates a zeroed private frame', () => {
  const pool = new FramePool({ frames: 4 });
  const old = pool.alloc(); pool.u8.fill(0x5a, pool.offset(old), pool.offset(old) + FRAME_SIZE); pool.unref(old); // a dirty frame on the free list
  const p = new P2m(pool, 8, 'vm0');
  const remaps: [number, number][] = [];
  p.onRemap = (g, f) => remaps.push([g, f]);
  assert.equal(p.frameForRead(3), ZERO_FRAME);
  assert.deepEqual(p.stats(), { ram_pages: 8, ...zeroStats });
  const f = poke(p, 3, 10, 0x77);
  assert.equal(f, old, 'the free list is used first');
  assert.equal(peek(p, 3, 10), 0x77);
  assert.equal(peek(p, 3, 11), 0, 'the reused frame was cleared');
  assert.equal(p.entry(3), f);
  assert.ok(p.isWritable(3));
  assert.deepEqual(remaps, [[3, ZERO_FRAME]], 'a read may have cached the zero frame');
  assert.equal(p.frameForWrite(3), f, 'a second write changes nothing');
  assert.deepEqual(p.stats(), { ram_pages: 8, ...zeroStats, pages_private: 1 });
  assert.equal(pool.framesUsed, 1);
});

test('copy-on-write: a write to a frame shared by 3 pages copies it; the last mapping takes the frame over', () => {
  const pool = new FramePool({ frames: 8 });
  const a = new P2m(pool, 4, 'a'), b = new P2m(pool, 4, 'b');
  const remapsA: [number, number][] = [], remapsB: [number, number][] = [];
  a.onRemap = (g, f) => remapsA.push([g, f]);
  b.onRemap = (g, f) => remapsB.push([g, f]);
  const s = poke(a, 0, 100, 0x11);
  poke(a, 1, 100, 0x11);
  poke(b, 2, 100, 0x11);
  remapsA.length = 0; remapsB.length = 0;
  // What the scanner does after comparing: a.0's frame becomes shared, a.1 and b.2 merge into it.
  assert.ok(a.markShared(0));
  assert.ok(a.mergeInto(1, s));
  assert.ok(b.mergeInto(2, s));
  assert.equal(pool.refcount(s), 3);
  assert.equal(pool.framesUsed, 1, 'two frames freed by the merges');
  assert.equal(a.entry(1), s | P2M_SHARED);
  assert.ok(!a.isWritable(0) && !a.isWritable(1) && !b.isWritable(2));
  assert.deepEqual(a.stats(), { ram_pages: 4, ...zeroStats, pages_shared: 2 });
  assert.equal(remapsA.length, 2, 'mark and merge both remap');
  assert.equal(remapsA[0]![1], s);
  assert.equal(remapsB.length, 1);
  remapsA.length = 0;

  const c = poke(a, 1, 200, 0x22);
  assert.notEqual(c, s);
  assert.deepEqual(remapsA, [[1, s]]);
  assert.equal(pool.refcount(s), 2);
  assert.equal(peek(a, 1, 100), 0x11, 'the copy holds the old bytes');
  assert.equal(peek(a, 1, 200), 0x22);
  assert.equal(peek(a, 0, 200), 0, 'the shared frame is unchanged');
  assert.equal(peek(b, 2, 200), 0);
  assert.deepEqual(a.stats(), { ram_pages: 4, ...zeroStats, pages_private: 1, pages_shared: 1 });

  poke(b, 2, 300, 0x33);
  assert.equal(pool.refcount(s), 1);
  assert.ok(pool.isShared(s), 'the last mapping stays read-only until written');
  remapsA.length = 0;
  assert.equal(poke(a, 0, 300, 0x44), s, 'refcount 1: taken over, not copied');
  assert.deepEqual(remapsA, [], 'same frame: nothing to invalidate');
  assert.ok(!pool.isShared(s));
  assert.equal(pool.framesShared, 0);
  assert.equal(peek(b, 2, 300), 0x33);
  assert.equal(peek(a, 0, 300), 0x44);
  assert.deepEqual(a.stats(), { ram_pages: 4, ...zeroStats, pages_private: 2 });
  assert.deepEqual(b.stats(), { ram_pages: 4, ...zeroStats, pages_private: 1 });
  assert.equal(pool.framesUsed, 3);
});

test('a page merged into the zero frame counts as pages_zero; writing it allocates a fresh zeroed frame', () => {
  const pool = new FramePool({ frames: 4 });
  const p = new P2m(pool, 4);
  const f = poke(p, 1, 0, 0);
  assert.ok(p.mergeZero(1));
  assert.equal(p.entry(1), P2M_ZERO_SHARED);
  assert.equal(pool.refcount(f), 0, 'its frame went back');
  assert.deepEqual(p.stats(), { ram_pages: 4, ...zeroStats, pages_zero: 1 });
  assert.equal(p.frameForRead(1), ZERO_FRAME);
  poke(p, 1, 5, 9);
  assert.equal(peek(p, 1, 5), 9);
  assert.ok(pool.isZero(ZERO_FRAME), 'the zero frame was never written');
  assert.deepEqual(p.stats(), { ram_pages: 4, ...zeroStats, pages_private: 1 });
});

test('ballooning frees frames at once, another VM reuses them, and a deflated page reads zero again', () => {
  const pool = new FramePool({ frames: 4 });
  const a = new P2m(pool, 4, 'a'), b = new P2m(pool, 4, 'b');
  const frames = [0, 1, 2, 3].map((g) => poke(a, g, 0, 0xa0 + g));
  assert.equal(b.frameForWrite(0), P2M_ERR_NOMEM, 'the pool is full');
  assert.equal(b.lastError?.kind, 'no-memory');
  assert.match(b.lastError!.message, /^b: guest page 0x0: the frame pool is exhausted/);
  assert.equal(a.lastError, null, 'the other VM is not affected');
  const remaps: [number, number][] = [];
  a.onRemap = (g, f) => remaps.push([g, f]);
  assert.ok(a.balloon(1));
  assert.ok(a.balloon(2));
  assert.equal(a.balloon(2), false, 'already ballooned');
  assert.deepEqual(remaps, [[1, frames[1]], [2, frames[2]]]);
  assert.equal(pool.framesFree, 2);
  assert.deepEqual(a.stats(), { ram_pages: 4, ...zeroStats, pages_private: 2, pages_ballooned: 2 });
  assert.equal(a.frameForRead(1), ZERO_FRAME, 'a ballooned page reads zero');
  assert.equal(poke(b, 0, 0, 0xb0), frames[2], 'b reuses the last ballooned frame first');
  assert.equal(poke(b, 1, 0, 0xb1), frames[1]);
  assert.equal(peek(b, 0, 1), 0, 'no data of a leaks to b');
  assert.equal(peek(a, 0, 0), 0xa0);
  assert.equal(peek(a, 3, 0), 0xa3);
  assert.ok(a.deflate(1));
  assert.equal(a.deflate(1), false);
  assert.equal(a.entry(1), P2M_UNBACKED);
  assert.equal(a.entry(2), P2M_BALLOONED);
  assert.deepEqual(a.stats(), { ram_pages: 4, ...zeroStats, pages_private: 2, pages_ballooned: 1 });
  assert.ok(a.balloon(3) && a.balloon(0));
  assert.equal(pool.framesFree, 2);
  // A guest that writes a page it gave away gets it back (deflated implicitly), zero-filled.
  poke(a, 2, 7, 1);
  assert.equal(peek(a, 2, 0), 0);
  assert.deepEqual(a.stats(), { ram_pages: 4, ...zeroStats, pages_private: 1, pages_ballooned: 2 });
});

test('ballooning a shared page drops one mapping only', () => {
  const pool = new FramePool({ frames: 4 });
  const a = new P2m(pool, 2), b = new P2m(pool, 2);
  const s = poke(a, 0, 0, 1);
  poke(b, 0, 0, 1);
  a.markShared(0); b.mergeInto(0, s);
  assert.ok(b.balloon(0));
  assert.equal(pool.refcount(s), 1);
  assert.equal(peek(a, 0, 0), 1);
  assert.ok(a.balloon(0));
  assert.equal(pool.refcount(s), 0);
  assert.equal(pool.framesShared, 0);
  assert.equal(pool.framesUsed, 0);
});

test('out-of-range pages give P2M_ERR_RANGE; sizes are checked; releaseAll returns every frame', () => {
  const pool = new FramePool({ frames: 4 });
  const p = new P2m(pool, 2, 'vm9');
  assert.equal(p.frameForRead(2), P2M_ERR_RANGE);
  assert.equal(p.frameForWrite(-1), P2M_ERR_RANGE);
  assert.equal(p.lastError?.kind, 'range');
  assert.equal(p.balloon(5), false);
  assert.throws(() => new P2m(pool, 0), RangeError);
  assert.throws(() => new P2m(pool, (1 << 24) + 1), RangeError);
  poke(p, 0, 0, 1); poke(p, 1, 0, 1);
  p.releaseAll();
  assert.equal(pool.framesUsed, 0);
  assert.deepEqual(p.stats(), { ram_pages: 2, ...zeroStats });
});
