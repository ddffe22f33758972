/**
 * The memory core across threads (docs/memory.md, "Threads"): VMs on real
 * worker_threads over one frame pool (src/memory/frame-pool.ts), the host
 * on this thread stopping them at safe points (src/memory/safe-point.ts)
 * to scan for sharing and evict across VMs, each VM draining its RemapLog
 * into its own fake TLBs. The worker is tests/helpers/pool-worker.ts.
 *
 * Seeded: MEMPOOL_SEED=<n> reproduces a run's choices (the seed is
 * printed); thread interleavings differ from run to run, which is the
 * point: the invariants must hold under every one.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FramePool, FRAME_SIZE, FRAME_WORDS, NO_FRAME } from '../../src/memory/frame-pool.js';
import { P2m, P2M_SHARED, P2M_FRAME_MASK, P2M_SWAPPED_BASE, P2M_BALLOONED, P2M_UNBACKED, P2M_ZERO_SHARED } from '../../src/memory/p2m.js';
import { HostSwap, seededRng } from '../../src/memory/host-swap.js';
import { PageSharing } from '../../src/memory/page-sharing.js';
import { SafePointGate, RemapLog } from '../../src/memory/safe-point.js';
import { SwapFile } from '../../src/host/swap-file.js';
import type { ChurnData, IsoData, GateData, HogData, AllocatorData } from '../helpers/pool-worker.js';

const SEED = Number(process.env.MEMPOOL_SEED ?? 20261214);
console.log(`mempool-threads: MEMPOOL_SEED=${SEED}`);
const WORKER = new URL('../helpers/pool-worker.js', import.meta.url);

/** Runs a worker; resolves with its one message (a worker error rejects). */
function start(data: ChurnData | IsoData | GateData | HogData | AllocatorData): { worker: Worker; done: Promise<Record<string, unknown>> } {
  const worker = new Worker(WORKER, { workerData: data });
  const done = new Promise<Record<string, unknown>>((resolve, reject) => {
    worker.once('message', (m: Record<string, unknown>) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited (${code}) without a result`)));
  });
  done.catch(() => { /* awaited by the test, or a worker it terminated on purpose */ });
  return { worker, done };
}

/**
 * The tables, the pool's reference counts and the counters agree: each
 * mapped frame's count is its number of entries, no private frame is
 * mapped twice (by one VM or two), used = frames mapped, shared marks =
 * shared frames, used + free + control = total, and each table's counters
 * match its entries. Call with every VM stopped (or finished).
 */
function checkInvariants(pool: FramePool, vms: P2m[], what: string): void {
  const refs = new Map<number, number>(), privateOwner = new Map<number, string>(), shared = new Set<number>();
  for (const p of vms) {
    const c = { pages_private: 0, pages_shared: 0, pages_zero: 0, pages_ballooned: 0, pages_swapped: 0 };
    for (let g = 0; g < p.ramPages; g++) {
      const e = p.entry(g);
      if (e === P2M_UNBACKED) continue;
      if (e === P2M_BALLOONED) { c.pages_ballooned++; continue; }
      if (e <= P2M_SWAPPED_BASE) { c.pages_swapped++; continue; }
      if (e === P2M_ZERO_SHARED) { c.pages_zero++; continue; }
      const f = e & P2M_FRAME_MASK;
      refs.set(f, (refs.get(f) ?? 0) + 1);
      if ((e & P2M_SHARED) !== 0) { c.pages_shared++; shared.add(f); continue; }
      c.pages_private++;
      const other = privateOwner.get(f);
      assert.equal(other, undefined, `${what}: private frame ${f} mapped by ${other} and ${p.name} page ${g}`);
      privateOwner.set(f, `${p.name} page ${g}`);
    }
    assert.deepEqual(p.stats(), { ram_pages: p.ramPages, ...c }, `${what}: ${p.name} counters`);
  }
  for (const [f, n] of refs) assert.equal(pool.refcount(f), n, `${what}: refcount of frame ${f}`);
  for (const f of privateOwner.keys()) assert.equal(refs.get(f), 1, `${what}: private frame ${f} has one mapping`);
  const s = pool.stats(), ctl = pool.controlStats();
  assert.equal(s.frames_used, refs.size, `${what}: frames used = frames mapped`);
  assert.equal(s.frames_shared, shared.size, `${what}: shared marks = shared frames`);
  assert.equal(s.frames_used + s.frames_free + ctl.frames_control, s.frames_total, `${what}: used + free + control = total`);
}

test(`workers allocate, write, copy on write, balloon and take runs concurrently on one pool; refcounts and the free list stay exact (MEMPOOL_SEED=${SEED})`, async () => {
  const VMS = 4, PAGES = 64, SHARED = 16, TAG = 0x5a000000;
  const pool = new FramePool({ frames: 240 });
  const vms: P2m[] = [];
  for (let v = 0; v < VMS; v++) vms.push(new P2m(pool, PAGES, `vm${v}`));
  // Pages [0, SHARED) hold the same bytes in every VM and are merged up front, so the workers' first writes race on COW.
  for (let g = 0; g < SHARED; g++) {
    const fs0 = vms.map((p) => { const f = p.frameForWrite(g); for (const w of [0, 511, 1023]) pool.i32[f * FRAME_WORDS + w] = TAG + g; return f; });
    assert.ok(vms[0]!.markShared(g));
    for (let v = 1; v < VMS; v++) assert.ok(vms[v]!.mergeInto(g, fs0[0]!));
    assert.equal(pool.refcount(fs0[0]!), VMS);
  }
  checkInvariants(pool, vms, 'after the merges');
  const runs = vms.map((p, v) => start({ mode: 'churn', seed: SEED + v, pool: pool.handle(), p2m: p.handle(), ops: 200000, sharedPages: SHARED, sharedTag: TAG }));
  const results = await Promise.all(runs.map((r) => r.done));
  for (const [v, r] of results.entries()) assert.equal(r.ok, true, `vm${v}: ${String(r.error)}`);
  console.log(`mempool-threads churn: ${JSON.stringify(results)} ${JSON.stringify(pool.stats())}`);
  const cows = results.reduce((n, r) => n + Number(r.cows), 0);
  assert.ok(cows >= SHARED, `copy-on-write ran (${cows})`);
  assert.ok(results.every((r) => Number(r.runs) > 0), 'every worker took control runs');
  assert.deepEqual(pool.controlStats().runs_live, 0, 'every run was given back');
  checkInvariants(pool, vms, 'after the workers');
  // The free list holds exactly the unmapped frames, once each: allocate them all.
  const free = pool.framesFree, mapped = new Set<number>();
  for (const p of vms) for (let g = 0; g < PAGES; g++) { const e = p.entry(g); if (e > 0) mapped.add(e & P2M_FRAME_MASK); }
  const got = new Set<number>();
  for (let f = pool.alloc(); f !== NO_FRAME; f = pool.alloc()) {
    assert.ok(!mapped.has(f), `free frame ${f} is mapped`);
    assert.ok(!got.has(f), `frame ${f} handed out twice`);
    got.add(f);
  }
  assert.equal(got.size, free, 'frames_free frames could be allocated');
  assert.equal(pool.framesFree, 0);
});

test(`threaded isolation: VM workers read back only their own data while the host scans and evicts across them at safe points (MEMPOOL_SEED=${SEED})`, async () => {
  const VMS = 3, PAGES = 48, FRAMES = 96;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-poolmt-'));
  const pool = new FramePool({ frames: FRAMES });
  const file = new SwapFile(path.join(dir, 'swap'), VMS * PAGES * FRAME_SIZE);
  const swap = new HostSwap(pool, file, seededRng(SEED));
  const ks = new PageSharing(pool);
  const rng = seededRng(SEED ^ 0x1234567);
  // A small palette (page 0 all zeros) makes pages identical within and across VMs.
  const palette = new Uint8Array(new SharedArrayBuffer(6 * FRAME_SIZE));
  for (let k = 1; k < 6; k++) for (let i = 0; i < FRAME_SIZE; i += 8) palette[k * FRAME_SIZE + i + k] = rng() & 0xff;
  const gates: SafePointGate[] = [], hostViews: P2m[] = [], models: Uint8Array[] = [], runs: ReturnType<typeof start>[] = [];
  for (let v = 0; v < VMS; v++) {
    const p2m = new P2m(pool, PAGES, `vm${v}`);
    const gate = new SafePointGate(`vm${v}`), log = new RemapLog(64);
    const model = new Uint8Array(new SharedArrayBuffer(PAGES * FRAME_SIZE));
    // The host's view: its remaps go to the VM's log, never to the VM's TLBs directly.
    p2m.onRemap = (g, f) => log.push(g, f);
    swap.register(p2m);
    ks.register(p2m, true);
    gates.push(gate); hostViews.push(p2m); models.push(model);
    runs.push(start({
      mode: 'iso', seed: SEED + v, pool: pool.handle(), p2m: p2m.handle(), gate: gate.handle(), log: log.handle(),
      swap: swap.handle(), swapFile: file.handle(), ops: 6000, palette: palette.buffer as SharedArrayBuffer, model: model.buffer as SharedArrayBuffer,
    }));
  }
  let finished = 0, stops = 0, evicted = 0, maxSharing = 0, maxZero = 0, failure: string | null = null;
  const all = Promise.all(runs.map((r, v) => r.done.then((m) => { if (m.ok !== true) failure ??= `vm${v}: ${String(m.error)}`; return m; }).finally(() => { finished++; })));
  all.catch(() => { /* reported below */ });
  try {
    while (finished < VMS) {
      if (failure !== null) assert.fail(failure); // a VM read someone else's data (or failed): stop at once
      await SafePointGate.stopAll(gates, 10000);
      try {
        checkInvariants(pool, hostViews, `stop ${stops}`);
        ks.scan(1 + (rng() % (2 * PAGES)));
        const s = ks.stats();
        maxSharing = Math.max(maxSharing, s.pages_sharing); maxZero = Math.max(maxZero, s.pages_zero);
        evicted += swap.evict(1 + (rng() % 6));
        checkInvariants(pool, hostViews, `stop ${stops} after scan and evict`);
      } finally {
        SafePointGate.releaseAll(gates);
      }
      stops++;
      await new Promise((r) => setTimeout(r, 1));
    }
    const results = await all;
    for (const [v, r] of results.entries()) assert.equal(r.ok, true, `vm${v}: ${String(r.error)}`);
    console.log(`mempool-threads isolation: stops ${stops}, evicted ${evicted}, max pages_sharing ${maxSharing}, max pages_zero ${maxZero}, ${JSON.stringify(results)} ${JSON.stringify(swap.stats())}`);
    checkInvariants(pool, hostViews, 'at the end');
    // Every VM's pages, read on this thread (swapped ones swapped in here), are its own data.
    for (const [v, p] of hostViews.entries()) {
      for (let g = 0; g < PAGES; g++) {
        const f = p.frameForRead(g);
        assert.ok(f >= 0, `vm${v} page ${g}: ${p.lastError?.message}`);
        assert.deepEqual(pool.u8.subarray(f * FRAME_SIZE, (f + 1) * FRAME_SIZE), models[v]!.subarray(g * FRAME_SIZE, (g + 1) * FRAME_SIZE), `vm${v} page ${g}`);
      }
    }
    assert.ok(stops > 10, `the host stopped the VMs repeatedly (${stops})`);
    assert.ok(maxSharing > 0 && maxZero > 0, `pages were merged across and within VMs (pages_sharing ${maxSharing}, pages_zero ${maxZero})`);
    assert.ok(evicted > 0, `the host evicted across VMs (${evicted})`);
    assert.ok(results.reduce((n, r) => n + Number(r.remapsDrained) + Number(r.flushes), 0) > 0, 'the VMs drained host remaps');
    assert.ok(results.reduce((n, r) => n + Number(r.pages_in), 0) > 0, 'the VMs swapped pages in on their own threads');
  } finally {
    for (const r of runs) await r.worker.terminate();
    file.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a hart that never reaches a safe point makes the stop fail after its timeout, and the other harts run on', async () => {
  const gate = new SafePointGate('vm-stuck');
  const ctlStuck = new Int32Array(new SharedArrayBuffer(16)), ctlPolite = new Int32Array(new SharedArrayBuffer(16));
  const stuck = start({ mode: 'stuck', seed: SEED, gate: gate.handle(), ctl: ctlStuck.buffer as SharedArrayBuffer });
  const polite = start({ mode: 'polite', seed: SEED, gate: gate.handle(), ctl: ctlPolite.buffer as SharedArrayBuffer });
  try {
    for (const ctl of [ctlStuck, ctlPolite]) {
      while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await assert.rejects(gate.stop(300), /vm-stuck: 1 hart thread\(s\) did not reach a safe point within 300 ms/);
    assert.equal(gate.stopping, false, 'a failed stop releases the gate');
    // The polite hart was released: it makes progress again.
    const before = Atomics.load(ctlPolite, 3);
    while (Atomics.load(ctlPolite, 3) === before) await new Promise((r) => setTimeout(r, 1));
    // The host gives up on the stuck thread: ends it and takes it out of the gate; now a stop succeeds.
    await stuck.worker.terminate();
    gate.leave(Atomics.load(ctlStuck, 1));
    await gate.stop(10000);
    const parkedAt = Atomics.load(ctlPolite, 3), progressAt = gate.progress;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(Atomics.load(ctlPolite, 3), parkedAt, 'a stopped hart makes no progress');
    assert.equal(gate.progress, progressAt, "the gate's progress count stands still while the VM is held");
    assert.equal(gate.idle, false, 'a parked hart is not idle');
    gate.release();
    // The host defers its next stop until the VM has run (PoolHost.scanRound): the count grows once it runs.
    while (gate.progress === progressAt) await new Promise((r) => setTimeout(r, 1));
    Atomics.store(ctlPolite, 2, 1);
    const r = await polite.done;
    assert.equal(r.ok, true);
  } finally {
    await stuck.worker.terminate();
    await polite.worker.terminate();
  }
});

test('an idle hart counts as stopped, and leaving idle during a stop parks it until the release', async () => {
  const gate = new SafePointGate('vm-idle');
  const ctl = new Int32Array(new SharedArrayBuffer(32));
  const idler = start({ mode: 'idler', seed: SEED, gate: gate.handle(), ctl: ctl.buffer as SharedArrayBuffer });
  try {
    while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 1));
    await gate.stop(10000); // succeeds at once: the only hart is idle
    Atomics.store(ctl, 2, 1);
    Atomics.notify(ctl, 2);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(Atomics.load(ctl, 3), 0, 'the hart left idle but did not run: it is parked in exitIdle');
    gate.release();
    while (Atomics.load(ctl, 3) === 0) await new Promise((r) => setTimeout(r, 1));
    assert.equal(Atomics.load(ctl, 4), 1, 'exitIdle reported that it parked (drain the RemapLog)');
    Atomics.store(ctl, 2, 2);
    assert.equal((await idler.done).ok, true);
  } finally {
    await idler.worker.terminate();
  }
});

test('a full swap file stops only the VM whose fault needs a slot; the other VM thread runs on untouched', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-poolmt-full-'));
  try {
    const pool = new FramePool({ frames: 16 });
    const file = new SwapFile(path.join(dir, 'swap'), 2 * FRAME_SIZE);
    const swap = new HostSwap(pool, file, seededRng(SEED));
    const hog = new P2m(pool, 64, 'hog'), modest = new P2m(pool, 8, 'modest');
    for (let g = 0; g < 8; g++) pool.i32[modest.frameForWrite(g) * FRAME_WORDS] = g + 1000;
    const common = { seed: SEED, pool: pool.handle(), swap: swap.handle(), swapFile: file.handle(), ops: 200000 };
    const a = start({ mode: 'hog', hog: true, p2m: hog.handle(), ...common });
    const b = start({ mode: 'hog', hog: false, p2m: modest.handle(), ...common });
    const [ra, rb] = await Promise.all([a.done, b.done]);
    assert.equal(ra.ok, true, String(ra.error));
    assert.equal(rb.ok, true, `the other VM ran on: ${String(rb.error)}`);
    assert.equal(ra.written, 8 + 2, 'the hog got the 8 free frames, then swapped 2 of its own pages out');
    assert.equal(ra.kind, 'swap-full');
    assert.match(String(ra.message), /^hog: guest page 0xa: host swap is full \(2 slots\)$/);
    assert.deepEqual(modest.stats().pages_swapped, 0, 'the hog evicted none of the other VM\'s pages');
    assert.deepEqual(swap.vmStats(hog), { pages_out: 2, pages_in: 0, pages_swapped: 2 });
    checkInvariants(pool, [hog, modest], 'after the hog failed');
    file.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a VM thread ended while the host holds it at a safe point never leaves the pool locked (how the host kills a VM)', async () => {
  for (let round = 0; round < 6; round++) {
    const pool = new FramePool({ frames: 64 });
    const gate = new SafePointGate(`vm-kill-${round}`);
    const ctl = new Int32Array(new SharedArrayBuffer(16));
    const w = start({ mode: 'allocator', seed: SEED, pool: pool.handle(), gate: gate.handle(), ctl: ctl.buffer as SharedArrayBuffer });
    while (Atomics.load(ctl, 3) < 1000) await new Promise((r) => setTimeout(r, 1));
    await gate.stop(10000); // what PoolHost.haltVm does before the worker is terminated
    await w.worker.terminate();
    const meta = new Int32Array(pool.handle().meta);
    assert.equal(Atomics.load(meta, 0), 0, `round ${round}: the pool's lock word is free after the kill`);
    const f = pool.alloc();
    assert.ok(f >= 0, 'the host allocates from the pool after the kill');
    pool.unref(f);
    assert.equal(pool.stats().frames_used, 0, 'the killed thread held no frame');
  }
});
