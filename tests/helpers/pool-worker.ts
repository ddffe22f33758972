/**
 * A worker thread standing in for a VM's thread over one shared frame pool
 * (tests/unit/mempool-threads.test.ts). `workerData.mode` picks the role:
 * - `churn`: allocates, writes, copies on write, balloons and takes control
 *   runs, concurrently with other workers, with no host at all;
 * - `iso`: a VM that writes and verifies its own data through two fake
 *   TLBs, stops at safe points, drains its RemapLog, and swaps its own
 *   pages out when the pool is empty;
 * - `stuck`: joins a gate and never reaches a safe point;
 * - `polite`: joins a gate and polls it until told to stop;
 * - `idler`: joins a gate idle, leaves idle when told, then polls like `polite`;
 * - `allocator`: joins a gate and allocates and frees frames in a tight
 *   loop (mostly inside the pool's lock), polling the gate between them,
 *   until the test ends it;
 * - `hog`: writes new pages until a fault fails (its swap is full), or
 *   (`hog: false`) rewrites and verifies the pages it already has.
 * Every worker posts one message at the end: `{ ok: true, ... }` or
 * `{ ok: false, error }`.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { FramePool, FRAME_SIZE, FRAME_WORDS, type FramePoolHandle } from '../../src/memory/frame-pool.js';
import { P2m, P2M_SHARED, P2M_FRAME_MASK, type P2mHandle } from '../../src/memory/p2m.js';
import { HostSwap, seededRng, type HostSwapHandle, type Rng } from '../../src/memory/host-swap.js';
import { SafePointGate, RemapLog, type SafePointGateHandle, type RemapLogHandle } from '../../src/memory/safe-point.js';
import { SwapFile, type SwapFileHandle } from '../../src/host/swap-file.js';

/** What every mode receives. */
interface Common { mode: string; seed: number }
/** `churn`: see the file comment. */
export interface ChurnData extends Common { mode: 'churn'; pool: FramePoolHandle; p2m: P2mHandle; ops: number; sharedPages: number; sharedTag: number }
/** `iso`: see the file comment. */
export interface IsoData extends Common {
  mode: 'iso'; pool: FramePoolHandle; p2m: P2mHandle; gate: SafePointGateHandle; log: RemapLogHandle;
  swap: HostSwapHandle; swapFile: SwapFileHandle; ops: number; palette: SharedArrayBuffer; model: SharedArrayBuffer;
}
/** `stuck`, `polite` and `idler`: see the file comment; `ctl` is [ready, index, phase (1: leave idle, 2: stop), progress, exitIdle parked]. */
export interface GateData extends Common { mode: 'stuck' | 'polite' | 'idler'; gate: SafePointGateHandle; ctl: SharedArrayBuffer }

/** `allocator`: see the file comment; `ctl` is [ready, index, -, progress]. */
export interface AllocatorData extends Common { mode: 'allocator'; pool: FramePoolHandle; gate: SafePointGateHandle; ctl: SharedArrayBuffer }

/** `hog`: see the file comment. */
export interface HogData extends Common { mode: 'hog'; hog: boolean; pool: FramePoolHandle; p2m: P2mHandle; swap: HostSwapHandle; swapFile: SwapFileHandle; ops: number }

const data = workerData as ChurnData | IsoData | GateData | HogData | AllocatorData;
const rint = (rng: Rng, n: number): number => Math.floor((rng() / 4294967296) * n);
const nap = new Int32Array(new SharedArrayBuffer(4));
/** The words of a page the churn workers write (see churn). */
const TAG_WORDS = [0, 511, 1023];

function churn(d: ChurnData): object {
  const pool = FramePool.attach(d.pool);
  const p2m = P2m.attach(pool, d.p2m);
  const pages = p2m.ramPages, rng = seededRng(d.seed);
  // A written page holds its tag in three words (TAG_WORDS), zeros elsewhere; 0 everywhere when it reads zero.
  // Writing three words, not 1024, keeps the workers in the pool's lock often, which is what is under test.
  const model = new Int32Array(pages);
  for (let g = 0; g < d.sharedPages; g++) model[g] = d.sharedTag + g;
  const runs: { first: number; n: number; tag: number }[] = [];
  const c = { writes: 0, cows: 0, nomem: 0, balloons: 0, runs: 0, runsFull: 0 };
  const check = (g: number, op: number): void => {
    const f = p2m.frameForRead(g);
    if (f < 0) throw new Error(`op ${op}: frameForRead(${g}) = ${f}: ${p2m.lastError?.message}`);
    const want = model[g]!;
    for (let i = f * FRAME_WORDS, end = i + FRAME_WORDS; i < end; i++) {
      const w = i - f * FRAME_WORDS, v = TAG_WORDS.includes(w) ? want : 0;
      if (pool.i32[i] !== v) throw new Error(`${p2m.name} op ${op}: page ${g} word ${w} of frame ${f}: ${pool.i32[i]}, want ${v} (entry ${p2m.entry(g)})`);
    }
  };
  for (let op = 0; op < d.ops; op++) {
    // Early on, mostly the shared pages: copy-on-write races with the other workers' on the same frames.
    const g = op < d.ops / 4 && rint(rng, 2) === 0 ? rint(rng, d.sharedPages) : rint(rng, pages);
    const r = rint(rng, 100);
    if (r < 45) {
      const e = p2m.entry(g);
      const cow = e > 0 && (e & P2M_SHARED) !== 0 && (e & P2M_FRAME_MASK) !== 0;
      const f = p2m.frameForWrite(g);
      if (f < 0) { c.nomem++; continue; }
      if (cow) c.cows++;
      const tag = (rng() | 1) & 0x7fffffff;
      for (const w of TAG_WORDS) pool.i32[f * FRAME_WORDS + w] = tag;
      model[g] = tag;
      c.writes++;
    } else if (r < 60) {
      if (rint(rng, 16) === 0) check(g, op);
    } else if (r < 75) {
      // A free and an allocation back to back: the free list under contention.
      if (p2m.balloon(g)) { model[g] = 0; c.balloons++; }
      const f = p2m.frameForWrite(g);
      if (f < 0) { c.nomem++; continue; }
      const tag = (rng() | 1) & 0x7fffffff;
      for (const w of TAG_WORDS) pool.i32[f * FRAME_WORDS + w] = tag;
      model[g] = tag;
    } else if (r < 85) {
      if (p2m.balloon(g)) { model[g] = 0; c.balloons++; }
    } else if (r < 90) {
      p2m.deflate(g);
    } else if (r < 95 && runs.length < 4) {
      const n = 1 + rint(rng, 4), first = pool.allocRun(n);
      if (first < 0) { c.runsFull++; continue; }
      for (let i = first * FRAME_WORDS; i < (first + n) * FRAME_WORDS; i++) if (pool.i32[i] !== 0) throw new Error(`run at ${first} not zeroed`);
      const tag = rng() | 1;
      pool.i32.fill(tag, first * FRAME_WORDS, (first + n) * FRAME_WORDS);
      runs.push({ first, n, tag });
      c.runs++;
    } else if (runs.length > 0) {
      const run = runs.pop()!;
      for (let i = run.first * FRAME_WORDS; i < (run.first + run.n) * FRAME_WORDS; i++) {
        if (pool.i32[i] !== run.tag) throw new Error(`control run at ${run.first} overwritten at word ${i - run.first * FRAME_WORDS}`);
      }
      pool.freeRun(run.first, run.n);
    }
  }
  for (const run of runs) pool.freeRun(run.first, run.n);
  for (let g = 0; g < pages; g++) check(g, d.ops);
  return c;
}

function iso(d: IsoData): object {
  const pool = FramePool.attach(d.pool);
  const p2m = P2m.attach(pool, d.p2m);
  const gate = SafePointGate.attach(d.gate), log = RemapLog.attach(d.log);
  const swap = HostSwap.attach(pool, d.swap, SwapFile.attach(d.swapFile), seededRng(d.seed));
  swap.register(p2m);
  const pages = p2m.ramPages, rng = seededRng(d.seed ^ 0x5bd1e995);
  const model = new Uint8Array(d.model), palette = new Uint8Array(d.palette), paletteN = palette.length / FRAME_SIZE;
  const harts = [0, 1].map(() => ({ read: new Int32Array(pages).fill(-1), write: new Int32Array(pages).fill(-1) }));
  const invalidate = (g: number): void => { for (const h of harts) { h.read[g] = -1; h.write[g] = -1; } };
  const flushAll = (): void => { for (const h of harts) { h.read.fill(-1); h.write.fill(-1); } };
  p2m.onRemap = invalidate; // this thread's own remaps (copy-on-write, its own evictions)
  const pi = gate.join(), ci = log.addConsumer();
  if (pi < 0 || ci < 0) throw new Error('no gate or log slot');
  const c = { writes: 0, cows: 0, stops: 0, remapsDrained: 0, flushes: 0, nomemWaits: 0, checks: 0 };
  const drain = (): void => {
    const n = log.drain(ci, invalidate, flushAll);
    if (n < 0) c.flushes++; else c.remapsDrained += n;
  };
  /** A frame from frameForRead/Write; when the pool is empty and none of its own pages can go, waits (idle) for the host to evict. */
  const resident = (g: number, write: boolean, op: number): number => {
    for (let tries = 0; ; tries++) {
      const f = write ? p2m.frameForWrite(g) : p2m.frameForRead(g);
      if (f >= 0) return f;
      if (p2m.lastError?.kind !== 'no-memory' || tries === 2000) throw new Error(`op ${op}: page ${g}: ${p2m.lastError?.message}`);
      c.nomemWaits++;
      gate.enterIdle(pi);
      Atomics.wait(nap, 0, 0, 1);
      if (gate.exitIdle(pi)) c.stops++;
      drain();
    }
  };
  const writeFrame = (g: number, op: number): number => {
    const tlb = harts[rint(rng, 2)]!;
    let f = tlb.write[g]!;
    if (f < 0) {
      const e = p2m.entry(g);
      if (e > 0 && (e & P2M_SHARED) !== 0 && (e & P2M_FRAME_MASK) !== 0) c.cows++;
      f = resident(g, true, op);
      tlb.write[g] = f; tlb.read[g] = f;
    }
    return f;
  };
  const check = (g: number, op: number): void => {
    const tlb = harts[rint(rng, 2)]!;
    let f = tlb.read[g]!;
    if (f < 0) { f = resident(g, false, op); tlb.read[g] = f; }
    const base = f * FRAME_SIZE, mb = g * FRAME_SIZE;
    for (let i = 0; i < FRAME_SIZE; i++) {
      if (pool.u8[base + i] !== model[mb + i]) throw new Error(`${p2m.name} op ${op}: page ${g} byte ${i}: read ${pool.u8[base + i]}, wrote ${model[mb + i]} (entry ${p2m.entry(g)}, frame ${f})`);
    }
    c.checks++;
  };
  try {
    for (let op = 0; op < d.ops; op++) {
      if (gate.poll(pi)) { c.stops++; drain(); } // the safe point: between "instructions"
      const g = rint(rng, pages), r = rint(rng, 100);
      if (r < 30) {
        const k = rint(rng, paletteN), f = writeFrame(g, op);
        const src = palette.subarray(k * FRAME_SIZE, (k + 1) * FRAME_SIZE);
        pool.u8.set(src, f * FRAME_SIZE);
        model.set(src, g * FRAME_SIZE);
        c.writes++;
      } else if (r < 45) {
        const f = writeFrame(g, op);
        const at = rint(rng, FRAME_SIZE - 16), n = 1 + rint(rng, 16);
        for (let i = 0; i < n; i++) { const b = rint(rng, 256); pool.u8[f * FRAME_SIZE + at + i] = b; model[g * FRAME_SIZE + at + i] = b; }
        c.writes++;
      } else if (r < 49) {
        p2m.balloon(g);
        model.fill(0, g * FRAME_SIZE, (g + 1) * FRAME_SIZE);
      } else if (r < 51) {
        p2m.deflate(g);
      } else {
        check(g, op);
      }
    }
    if (gate.poll(pi)) { c.stops++; drain(); }
    for (let g = 0; g < pages; g++) check(g, d.ops);
  } finally {
    gate.leave(pi); // also on failure: the host must not wait for a VM that stopped for good
    log.removeConsumer(ci);
  }
  return { ...c, ...p2m.swapCounts() };
}

function hogRole(d: HogData): object {
  const pool = FramePool.attach(d.pool);
  const p2m = P2m.attach(pool, d.p2m);
  const swap = HostSwap.attach(pool, d.swap, SwapFile.attach(d.swapFile), seededRng(d.seed));
  swap.register(p2m);
  if (d.hog) {
    for (let g = 0; g < p2m.ramPages; g++) {
      const f = p2m.frameForWrite(g);
      if (f < 0) return { written: g, code: f, kind: p2m.lastError?.kind, message: p2m.lastError?.message };
      pool.i32[f * FRAME_WORDS] = g + 1;
    }
    return { written: p2m.ramPages };
  }
  // Pages [0, ramPages) were written by the test with word 0 = gpn + 1000; rewrite and verify them.
  const rng = seededRng(d.seed), model = new Int32Array(p2m.ramPages);
  for (let g = 0; g < model.length; g++) model[g] = g + 1000;
  for (let op = 0; op < d.ops; op++) {
    const g = rint(rng, model.length);
    if (rint(rng, 2) === 0) {
      const f = p2m.frameForWrite(g);
      if (f < 0) throw new Error(`op ${op}: page ${g}: ${p2m.lastError?.message}`);
      model[g] = rng() | 0;
      pool.i32[f * FRAME_WORDS] = model[g]!;
    } else {
      const f = p2m.frameForRead(g);
      if (f < 0 || pool.i32[f * FRAME_WORDS] !== model[g]) throw new Error(`op ${op}: page ${g} reads ${f < 0 ? p2m.lastError?.message : pool.i32[f * FRAME_WORDS]}, want ${model[g]}`);
    }
  }
  return { ops: d.ops };
}

function allocatorRole(d: AllocatorData): never {
  const pool = FramePool.attach(d.pool), gate = SafePointGate.attach(d.gate), ctl = new Int32Array(d.ctl);
  const i = gate.join();
  Atomics.store(ctl, 1, i);
  Atomics.store(ctl, 0, 1);
  for (;;) {
    gate.poll(i); // the safe point: outside the pool's lock
    const f = pool.alloc();
    if (f >= 0) pool.unref(f);
    Atomics.add(ctl, 3, 1);
  }
}

function gateRole(d: GateData): object {
  const gate = SafePointGate.attach(d.gate), ctl = new Int32Array(d.ctl);
  const i = gate.join();
  if (d.mode === 'idler') gate.enterIdle(i);
  Atomics.store(ctl, 1, i);
  Atomics.store(ctl, 0, 1);
  Atomics.notify(ctl, 0);
  if (d.mode === 'stuck') {
    for (;;) { /* guest code that never returns to the run loop; the test terminates this thread */ }
  }
  if (d.mode === 'idler') {
    while (Atomics.load(ctl, 2) === 0) Atomics.wait(ctl, 2, 0);
    Atomics.store(ctl, 4, gate.exitIdle(i) ? 1 : 0);
    Atomics.add(ctl, 3, 1);
  }
  while (Atomics.load(ctl, 2) !== 2 && (d.mode === 'idler' || Atomics.load(ctl, 2) === 0)) {
    gate.poll(i);
    Atomics.add(ctl, 3, 1);
  }
  gate.leave(i);
  return { index: i };
}

try {
  const out = data.mode === 'churn' ? churn(data) : data.mode === 'iso' ? iso(data) : data.mode === 'hog' ? hogRole(data) : data.mode === 'allocator' ? allocatorRole(data) : gateRole(data);
  parentPort!.postMessage({ ok: true, ...out });
} catch (e) {
  parentPort!.postMessage({ ok: false, error: (e as Error).message });
}
