/**
 * Unit tests for the machine-memory pool (src/memory/frame-pool.ts): bump
 * allocation, the LIFO free list, exhaustion without exceptions, reference
 * counts and their cap, the reserved zero frame, the counters.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramePool, FRAME_SIZE, MAX_PAGE_SHARING, MAX_POOL_FRAMES, NO_FRAME, ZERO_FRAME } from '../../src/memory/frame-pool.js';

test('frames are bump-allocated from 1 upwards; frame 0 is the zero frame; the memory is shared with a maximum', () => {
  const pool = new FramePool({ frames: 5 });
  assert.deepEqual([pool.alloc(), pool.alloc(), pool.alloc()], [1, 2, 3]);
  assert.equal(pool.refcount(ZERO_FRAME), 1, 'the zero frame is pinned');
  assert.ok(pool.memory.buffer instanceof SharedArrayBuffer);
  assert.equal(pool.u8.length, 65536, '6 frames fit one wasm page');
  assert.deepEqual(pool.stats(), { frames_total: 5, frames_used: 3, frames_free: 2, frames_shared: 0, frames_high_water: 3 });
});

test('freed frames are reused last-in first-out, before the bump pointer moves', () => {
  const pool = new FramePool({ frames: 8 });
  for (let i = 0; i < 5; i++) pool.alloc();
  pool.unref(2); pool.unref(4); pool.unref(3);
  assert.deepEqual([pool.alloc(), pool.alloc(), pool.alloc(), pool.alloc()], [3, 4, 2, 6]);
  assert.equal(pool.stats().frames_high_water, 6);
});

test('an exhausted pool returns -1 (no exception) and recovers when a frame is freed', () => {
  const pool = new FramePool({ frames: 3 });
  assert.deepEqual([pool.alloc(), pool.alloc(), pool.alloc()], [1, 2, 3]);
  assert.equal(pool.alloc(), NO_FRAME);
  assert.equal(pool.allocZeroed(), NO_FRAME);
  assert.deepEqual(pool.stats(), { frames_total: 3, frames_used: 3, frames_free: 0, frames_shared: 0, frames_high_water: 3 });
  pool.unref(2);
  assert.equal(pool.framesFree, 1);
  assert.equal(pool.alloc(), 2);
});

test('reference counts: a frame is freed only by its last unref; the count is capped at MAX_PAGE_SHARING', () => {
  const pool = new FramePool({ frames: 4 });
  const f = pool.alloc();
  assert.ok(pool.ref(f) && pool.ref(f));
  assert.equal(pool.refcount(f), 3);
  assert.equal(pool.unref(f), 2);
  assert.equal(pool.unref(f), 1);
  assert.equal(pool.framesUsed, 1, 'still used');
  assert.equal(pool.unref(f), 0);
  assert.equal(pool.framesUsed, 0);
  assert.equal(pool.ref(f), false, 'a free frame cannot gain a mapping');
  assert.throws(() => pool.unref(f), /free frame/);
  const g = pool.alloc();
  for (let i = 1; i < MAX_PAGE_SHARING; i++) assert.ok(pool.ref(g));
  assert.equal(pool.refcount(g), MAX_PAGE_SHARING);
  assert.equal(pool.ref(g), false, 'the cap holds');
  assert.equal(pool.refcount(g), MAX_PAGE_SHARING);
});

test('the zero frame is never freed or counted; allocZeroed clears reused frames', () => {
  const pool = new FramePool({ frames: 2 });
  pool.ref(ZERO_FRAME); pool.unref(ZERO_FRAME); pool.unref(ZERO_FRAME);
  assert.equal(pool.refcount(ZERO_FRAME), 1);
  assert.equal(pool.framesUsed, 0);
  const f = pool.alloc();
  pool.u8.fill(0xab, pool.offset(f), pool.offset(f) + FRAME_SIZE);
  assert.ok(!pool.isZero(f));
  pool.unref(f);
  assert.equal(pool.allocZeroed(), f);
  assert.ok(pool.isZero(f), 'a reused frame leaks no old data');
  assert.ok(pool.isZero(ZERO_FRAME));
  assert.ok(pool.alloc() !== ZERO_FRAME);
});

test('shared marks are counted and cleared when the frame is freed; copy and equal work on whole frames', () => {
  const pool = new FramePool({ frames: 4 });
  const a = pool.alloc(), b = pool.alloc();
  pool.u8[pool.offset(a) + FRAME_SIZE - 1] = 7;
  assert.ok(!pool.equal(a, b));
  pool.copy(b, a);
  assert.ok(pool.equal(a, b));
  pool.markShared(a); pool.markShared(a);
  assert.equal(pool.framesShared, 1);
  pool.ref(a);
  pool.unref(a);
  assert.ok(pool.isShared(a));
  pool.unref(a);
  assert.ok(!pool.isShared(a));
  assert.equal(pool.framesShared, 0);
});

test('pool sizes are bounded by the 4 GiB of a memory32 wasm memory', () => {
  assert.throws(() => new FramePool({ frames: MAX_POOL_FRAMES }), /4 GiB/);
  assert.throws(() => new FramePool({ frames: 0 }), RangeError);
});
