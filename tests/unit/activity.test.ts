/**
 * Unit tests for the activity estimator (src/memory/activity.ts, ESX §5.3):
 * a synthetic VM with a software TLB touches a random fraction of its pages
 * each period; the sampler, seeing only TLB fills of the pages it
 * invalidated, converges to that fraction within bounds derived from the
 * binomial variance, follows an increase at once and a decrease slowly.
 *
 * Seeded: ACTIVITY_SEED=<n> reproduces a run (the seed is printed).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActivitySampler, TouchMarks, DEFAULT_ACTIVITY_SAMPLES, DEFAULT_FAST_GAIN, DEFAULT_SLOW_GAIN, type ActivityHooks,
} from '../../src/memory/activity.js';
import { seededRng, type Rng } from '../../src/memory/host-swap.js';

const SEED = Number(process.env.ACTIVITY_SEED ?? 20261206);
console.log(`activity: ACTIVITY_SEED=${SEED}`);
/** Independent seeds for the workloads and the samplers, derived from SEED (adjacent mulberry32 seeds give correlated streams). */
const nextSeed = seededRng(SEED);

/** A VM with a software TLB over its pages: an access to a page not cached is a fill. */
class FakeVm {
  readonly cached: Uint8Array;
  readonly marks: TouchMarks;
  private readonly order: Int32Array;
  constructor(readonly pages: number, private readonly rng: Rng, flush = true) {
    this.cached = new Uint8Array(pages).fill(1); // everything warm: only invalidated pages can be seen
    this.marks = new TouchMarks(pages, (g) => { if (flush) this.cached[g] = 0; });
    this.order = new Int32Array(pages);
    for (let i = 0; i < pages; i++) this.order[i] = i;
  }
  access(g: number): void {
    if (this.cached[g] === 0) { this.cached[g] = 1; this.marks.noteFill(g); }
  }
  /** Touches a uniformly random `fraction` of the pages (a partial Fisher-Yates shuffle). */
  touchFraction(fraction: number): void {
    const o = this.order, n = Math.round(fraction * this.pages);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor((this.rng() / 4294967296) * (this.pages - i));
      const t = o[i]!; o[i] = o[j]!; o[j] = t;
      this.access(o[i]!);
    }
  }
}

/** Standard deviation of an EWMA of gain g over binomial(n, f)/n samples, in steady state. */
function ewmaSd(f: number, n: number, g: number): number {
  return Math.sqrt((f * (1 - f)) / n * (g / (2 - g)));
}

test(`the estimate converges to the true active fraction within binomial bounds (ACTIVITY_SEED=${SEED})`, () => {
  const f = 0.3, periods = 400, n = DEFAULT_ACTIVITY_SAMPLES;
  const vm = new FakeVm(4096, seededRng(nextSeed()));
  const s = new ActivitySampler(vm.pages, vm.marks, { seed: nextSeed() });
  s.start();
  assert.equal(s.activeFraction(), 1, 'an unmeasured VM counts as fully active');
  let sum = 0;
  const sdFast = ewmaSd(f, n, DEFAULT_FAST_GAIN), sdSlow = ewmaSd(f, n, DEFAULT_SLOW_GAIN);
  for (let p = 0; p < periods; p++) {
    vm.touchFraction(f);
    s.endPeriod();
    sum += s.lastPeriod;
    if (p >= 40) { // past the warm-up of the slow average (seeded by the first period)
      // The estimate is the max of the averages: within 5 standard deviations of the noisier (fast) one.
      assert.ok(Math.abs(s.activeFraction() - f) <= 5 * sdFast, `period ${p}: estimate ${s.activeFraction()} vs ${f} (5 sd = ${5 * sdFast})`);
      assert.ok(Math.abs(s.slow - f) <= 5 * sdSlow, `period ${p}: slow average ${s.slow} vs ${f} (5 sd = ${5 * sdSlow})`);
    }
  }
  assert.equal(s.periods, periods);
  // Unbiased: the mean of the per-period estimates t/n is within 4 standard errors of f.
  const mean = sum / periods, se = Math.sqrt((f * (1 - f)) / (n * periods));
  assert.ok(Math.abs(mean - f) <= 4 * se, `mean estimate ${mean} vs ${f} (4 se = ${4 * se})`);
});

test(`an increase shows within the period and fully in a few periods; a decrease shows slowly (ACTIVITY_SEED=${SEED})`, () => {
  const vm = new FakeVm(4096, seededRng(nextSeed()));
  const s = new ActivitySampler(vm.pages, vm.marks, { seed: nextSeed() });
  s.start();
  for (let p = 0; p < 60; p++) { vm.touchFraction(0.1); s.endPeriod(); }
  assert.ok(s.activeFraction() < 0.2, `settled near 0.1: ${s.activeFraction()}`);

  // Up to 0.8: the current period counts before it ends (fast average + this period's touches so far).
  vm.touchFraction(0.8);
  assert.ok(s.activeFraction() > 0.3, `within the first period of the increase: ${s.activeFraction()} (expected ~0.45)`);
  s.endPeriod();
  for (let p = 0; p < 2; p++) { vm.touchFraction(0.8); s.endPeriod(); }
  assert.ok(s.activeFraction() > 0.6, `three periods after the increase: ${s.activeFraction()} (expected ~0.71)`);
  assert.ok(s.slow < 0.5, `the slow average alone would lag: ${s.slow}`);

  for (let p = 0; p < 60; p++) { vm.touchFraction(0.8); s.endPeriod(); }
  assert.ok(Math.abs(s.activeFraction() - 0.8) < 0.1, `settled near 0.8: ${s.activeFraction()}`);
  // Down to 0.1: the slow average holds the estimate up.
  for (let p = 0; p < 3; p++) { vm.touchFraction(0.1); s.endPeriod(); }
  assert.ok(s.fast < 0.35, `the fast average follows the drop: ${s.fast}`);
  assert.ok(s.activeFraction() > 0.45, `three periods after the decrease the estimate is still high: ${s.activeFraction()} (expected ~0.57)`);
  for (let p = 0; p < 60; p++) { vm.touchFraction(0.1); s.endPeriod(); }
  assert.ok(s.activeFraction() < 0.2, `sixty periods after the decrease: ${s.activeFraction()}`);
});

test('a page counts as touched only through a fill after its invalidation', () => {
  // A VM whose invalidate does not drop cached translations: the sampler can see nothing.
  const stale = new FakeVm(1024, seededRng(nextSeed()), false);
  const s1 = new ActivitySampler(stale.pages, stale.marks, { seed: SEED });
  s1.start();
  for (let p = 0; p < 5; p++) { stale.touchFraction(0.5); s1.endPeriod(); }
  assert.equal(s1.activeFraction(), 0);

  // Accesses before the period starts do not count; accesses after it do.
  const vm = new FakeVm(1024, seededRng(nextSeed()));
  const s2 = new ActivitySampler(vm.pages, vm.marks, { samples: 1024, seed: SEED });
  s2.start(); // samples every page: all invalidated
  for (let g = 0; g < 256; g++) vm.access(g);
  assert.equal(s2.touchedSoFar(), 256);
  s2.endPeriod();
  assert.equal(s2.lastPeriod, 0.25);
  for (let g = 0; g < 256; g++) vm.access(g); // the new period invalidated every page again
  assert.equal(s2.touchedSoFar(), 256);
});

test(`each period samples distinct pages in range, into one buffer; advance ends periods by execution time (ACTIVITY_SEED=${SEED})`, () => {
  const invalidated: number[] = [];
  const hooks: ActivityHooks = { invalidate: (g) => { invalidated.push(g); }, wasTouched: () => false };
  const s = new ActivitySampler(500, hooks, { samples: 100, periodMs: 30_000, seed: SEED });
  const buf = s.sampledPages;
  assert.equal(s.advance(10_000), false); // starts the first period
  assert.equal(invalidated.length, 100);
  assert.deepEqual([...buf].sort((a, b) => a - b), [...invalidated].sort((a, b) => a - b));
  assert.equal(new Set(buf).size, 100, 'no page twice in a period');
  assert.ok(buf.every((g) => g >= 0 && g < 500));
  assert.equal(s.advance(10_000), false);
  assert.equal(s.advance(19_999), false);
  assert.equal(s.advance(1), true);
  assert.equal(s.periods, 1);
  assert.equal(invalidated.length, 200);
  assert.equal(s.sampledPages, buf, 'the sample buffer is reused');
  assert.equal(s.advance(90_000), true); // a long pause ends one period, not three
  assert.equal(s.periods, 2);
  // More samples than pages: every page, once.
  const small = new ActivitySampler(10, hooks, { samples: 100 });
  small.start();
  assert.deepEqual([...small.sampledPages], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('bad options are RangeErrors with the value in the message', () => {
  const hooks: ActivityHooks = { invalidate: () => undefined, wasTouched: () => false };
  assert.throws(() => new ActivitySampler(0, hooks), /0 pages/);
  assert.throws(() => new ActivitySampler(10, hooks, { samples: 0 }), /samples 0/);
  assert.throws(() => new ActivitySampler(10, hooks, { periodMs: -1 }), /period -1/);
  assert.throws(() => new ActivitySampler(10, hooks, { fastGain: 2 }), /gains/);
  assert.throws(() => new TouchMarks(-1, () => undefined), RangeError);
});
