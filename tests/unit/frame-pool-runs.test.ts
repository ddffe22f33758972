/**
 * Single-thread unit tests of the pool's threading additions: contiguous
 * control runs (allocRun/freeRun), handles and attached views, the
 * RemapLog ring, the SafePointGate with no hart threads, a thread-local
 * reclaim that must not evict frames shared with VMs it does not see, and
 * a swap file opened a second time. The cross-thread behaviour is in
 * tests/unit/mempool-threads.test.ts.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FramePool, FRAME_SIZE, NO_FRAME, CONTROL_FRAME_REF, CONTROL_BODY_REF, MAX_CACHED_RUNS } from '../../src/memory/frame-pool.js';
import { P2m, P2M_ERR_NOMEM } from '../../src/memory/p2m.js';
import { HostSwap, MemorySwapStore, seededRng } from '../../src/memory/host-swap.js';
import { SafePointGate, RemapLog } from '../../src/memory/safe-point.js';
import { SwapFile } from '../../src/host/swap-file.js';

test('allocRun: contiguous zeroed frames from the bump region, counted as control, never handed out by alloc', () => {
  const pool = new FramePool({ frames: 40 });
  assert.equal(pool.alloc(), 1);
  const run = pool.allocRun(24); // one hart's 96 KiB (CPU_SLOT_BYTES) is 24 frames
  assert.equal(run, 2);
  assert.equal(pool.refcount(run), CONTROL_FRAME_REF);
  for (let f = run + 1; f < run + 24; f++) assert.equal(pool.refcount(f), CONTROL_BODY_REF);
  assert.deepEqual(pool.controlStats(), { frames_control: 24, runs_live: 1, runs_cached: 0 });
  assert.deepEqual(pool.stats(), { frames_total: 40, frames_used: 1, frames_free: 15, frames_shared: 0, frames_high_water: 25 });
  assert.equal(pool.ref(run + 3), false, 'a run frame cannot be mapped');
  assert.throws(() => pool.unref(run + 3), /unref of control frame/);
  const got: number[] = [];
  for (let f = pool.alloc(); f !== NO_FRAME; f = pool.alloc()) got.push(f);
  assert.deepEqual(got, Array.from({ length: 15 }, (_, i) => 26 + i), 'alloc takes only frames past the run');
  assert.equal(pool.allocRun(1), NO_FRAME, 'an exhausted pool has no run either');
  assert.throws(() => pool.allocRun(0), RangeError);
  assert.throws(() => pool.allocRun(1.5), RangeError);
});

test('freeRun: a freed run is reused by a run of the same size (zeroed again); bad frees throw; a full pool breaks cached runs up', () => {
  const pool = new FramePool({ frames: 20 });
  const a = pool.allocRun(4), b = pool.allocRun(2);
  assert.deepEqual([a, b], [1, 5]);
  pool.u8.fill(0xab, a * FRAME_SIZE, (a + 4) * FRAME_SIZE);
  assert.throws(() => pool.freeRun(a, 5), /not one live run/, 'a range past the run');
  assert.throws(() => pool.freeRun(a + 1, 3), /not one live run/, 'a range inside the run');
  assert.throws(() => pool.freeRun(a, 3), /not one live run/, 'a range short of the run');
  pool.freeRun(a, 4);
  assert.deepEqual(pool.controlStats(), { frames_control: 2, runs_live: 1, runs_cached: 1 });
  assert.equal(pool.framesFree, 18, 'a cached run counts as free');
  assert.throws(() => pool.freeRun(a, 4), /not one live run/, 'a double free');
  assert.equal(pool.allocRun(3), 7, 'another size comes from the bump region');
  const again = pool.allocRun(4);
  assert.equal(again, a, 'the same size reuses the cached run');
  assert.ok(pool.u8.subarray(a * FRAME_SIZE, (a + 4) * FRAME_SIZE).every((x) => x === 0), 'a reused run is zeroed');
  pool.freeRun(again, 4);
  // 11 frames past the bump pointer, then the cached run's 4 frames, as single frames.
  const got: number[] = [];
  for (let f = pool.alloc(); f !== NO_FRAME; f = pool.alloc()) got.push(f);
  assert.equal(got.length, 15);
  assert.deepEqual(got.slice(11).sort((x, y) => x - y), [1, 2, 3, 4]);
  assert.deepEqual(pool.controlStats(), { frames_control: 5, runs_live: 2, runs_cached: 0 });
  const s = pool.stats();
  assert.equal(s.frames_used + s.frames_free + pool.controlStats().frames_control, s.frames_total);
});

test('freeRun beyond MAX_CACHED_RUNS returns the frames as single frames', () => {
  const pool = new FramePool({ frames: MAX_CACHED_RUNS + 2 });
  const runs: number[] = [];
  for (let i = 0; i < MAX_CACHED_RUNS + 1; i++) runs.push(pool.allocRun(1));
  for (const r of runs) pool.freeRun(r, 1);
  assert.deepEqual(pool.controlStats(), { frames_control: 0, runs_live: 0, runs_cached: MAX_CACHED_RUNS });
  assert.equal(pool.alloc(), runs[MAX_CACHED_RUNS], 'the run that did not fit went to the free list');
});

test('handle/attach: a second view of a pool and of a table sees and makes the same changes', () => {
  const pool = new FramePool({ frames: 8 });
  const p = new P2m(pool, 4, 'vm0');
  const pool2 = FramePool.attach(pool.handle());
  const p2 = P2m.attach(pool2, p.handle());
  assert.equal(p2.name, 'vm0');
  assert.equal(p2.ramPages, 4);
  const f = p2.frameForWrite(1);
  pool2.u8[f * FRAME_SIZE] = 7;
  assert.equal(p.entry(1), f);
  assert.equal(pool.u8[f * FRAME_SIZE], 7);
  assert.deepEqual(p.stats(), p2.stats());
  assert.equal(pool.framesUsed, 1);
  assert.equal(pool.alloc(), f + 1, 'both views share the bump pointer');
  p.touch(2);
  assert.equal(p2.wasTouched(2), true);
  assert.equal(p2.wasTouched(1), false);
  p2.clearTouched(2);
  assert.equal(p.wasTouched(2), false);
  const unshared = new FramePool({ frames: 2, shared: false });
  assert.throws(() => unshared.handle(), /shared: false/);
  assert.throws(() => new P2m(unshared, 2).handle(), /shared: false/);
});

test('RemapLog: each consumer sees the entries pushed since it joined, once; past the ring it flushes everything', () => {
  const log = new RemapLog(5);
  assert.equal(log.capacity, 8);
  const a = log.addConsumer();
  log.push(3, 30);
  const b = log.addConsumer();
  log.push(4, 40);
  const seen: number[][] = [];
  let flushes = 0;
  const hook = (g: number, f: number): void => { seen.push([g, f]); };
  assert.equal(log.drain(a, hook, () => flushes++), 2);
  assert.deepEqual(seen, [[3, 30], [4, 40]]);
  assert.equal(log.drain(a, hook, () => flushes++), 0, 'drained entries are not seen again');
  seen.length = 0;
  assert.equal(log.drain(b, hook, () => flushes++), 1);
  assert.deepEqual(seen, [[4, 40]]);
  for (let i = 0; i < 9; i++) log.push(i, i);
  assert.equal(log.drain(a, hook, () => flushes++), -1, 'nine entries overflow a ring of eight');
  assert.equal(flushes, 1);
  log.removeConsumer(b);
  assert.equal(log.addConsumer(), b, 'a removed consumer slot is reused');
});

test('SafePointGate: with no hart threads, or only idle and departed ones, a stop succeeds at once; polls see the request', async () => {
  const gate = new SafePointGate('vm0');
  await gate.stop(1000);
  gate.release();
  const i = gate.join(), j = gate.join();
  assert.deepEqual([i, j], [0, 1]);
  assert.equal(gate.poll(i), false, 'no request: poll returns at once');
  gate.enterIdle(i);
  gate.leave(j);
  await gate.stop(1000);
  assert.equal(gate.stopping, true);
  gate.release();
  assert.equal(gate.exitIdle(i), false, 'no stop in progress: exitIdle does not park');
  const seq = gate.request();
  assert.equal(gate.pending(seq), 1, 'a running hart has not acknowledged');
  gate.release();
  await assert.rejects(gate.stop(20), /vm0: 1 hart thread\(s\) did not reach a safe point within 20 ms/);
});

test('a thread-local reclaim evicts only its own pages, and never swaps out mappings of a frame shared with VMs it does not see', () => {
  const pool = new FramePool({ frames: 4 });
  const a = new P2m(pool, 4, 'a'), b = new P2m(pool, 4, 'b');
  const fa = a.frameForWrite(0);
  pool.u8[fa * FRAME_SIZE] = 9;
  const fb = b.frameForWrite(0);
  pool.u8[fb * FRAME_SIZE] = 9;
  assert.ok(a.markShared(0) && b.mergeInto(0, fa));
  a.frameForWrite(1); b.frameForWrite(1); b.frameForWrite(2);
  assert.equal(pool.framesFree, 0);
  // VM a's thread: a HostSwap that sees only a.
  const local = new HostSwap(pool, new MemorySwapStore(8), seededRng(1));
  local.register(a);
  assert.ok(a.frameForWrite(2) > 0, 'its own private page 1 went out');
  assert.equal(local.vmStats(a).pages_out, 1);
  assert.ok(a.entry(1) < 0 && b.entry(1) > 0 && b.entry(2) > 0, 'b kept its private pages');
  assert.ok(a.balloon(2));
  assert.ok(b.frameForWrite(3) > 0, 'b took the frame a gave back');
  assert.equal(a.frameForWrite(3), P2M_ERR_NOMEM, 'a has only a frame shared with b left');
  assert.match(a.lastError!.message, /shared with VMs this thread may not touch/);
  assert.equal(pool.refcount(fa), 2, 'the shared frame was left alone');
  assert.ok(a.entry(0) > 0, 'a still maps it');
  assert.equal(local.stats().pages_out, 1);
});

test('SwapFile.attach opens the same file without truncating it; each view has its own fd', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-swapattach-'));
  try {
    const file = new SwapFile(path.join(dir, 'swap'), 4 * FRAME_SIZE);
    const page = new Uint8Array(FRAME_SIZE).fill(0x5c);
    assert.equal(file.write(2, page), null);
    const other = SwapFile.attach(file.handle());
    assert.equal(other.capacity, 4);
    const back = new Uint8Array(FRAME_SIZE);
    assert.equal(other.read(2, back), null);
    assert.deepEqual(back, page);
    assert.equal(other.write(1, page), null);
    other.close();
    assert.equal(file.read(1, back), null, 'closing one view leaves the other open');
    assert.match(other.read(1, back)!, /closed/);
    file.close();
    assert.throws(() => SwapFile.attach({ path: path.join(dir, 'missing'), maxBytes: FRAME_SIZE }), /swap file .*missing/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
