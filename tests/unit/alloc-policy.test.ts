/**
 * Unit tests for the allocation policy (src/memory/alloc-policy.ts, ESX
 * §5–6): the adjusted shares-per-page ratio against hand-computed values,
 * reclaim order at tax 0 and 75%, the idle-memory-tax experiment of §5.4
 * simulated with the activity sampler, min-funding revocation's fixed
 * point and the reservation and limit bounds on random inputs, the
 * free-memory states and their hysteresis, balloon before swap, deflation
 * by rho, and admission control.
 *
 * Seeded: POLICY_SEED=<n> reproduces a run (the seed is printed).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AllocationPolicy, adjustedSharesPerPage, type PolicyVm, type MemoryState, DEFAULT_IDLE_TAX, DEFAULT_BALLOON_GRACE_MS,
} from '../../src/memory/alloc-policy.js';
import { ActivitySampler, TouchMarks } from '../../src/memory/activity.js';
import { seededRng, type Rng } from '../../src/memory/host-swap.js';

const SEED = Number(process.env.POLICY_SEED ?? 20261206);
console.log(`alloc-policy: POLICY_SEED=${SEED}`);
const nextSeed = seededRng(SEED);

/** Sets a VM's inputs. */
function inputs(v: PolicyVm, allocated: number, activeFraction = 1, balloonSize = 0, swapped = 0): void {
  v.allocated = allocated; v.activeFraction = activeFraction; v.balloonSize = balloonSize; v.swapped = swapped;
}

test('rho matches the paper\'s formula computed by hand', () => {
  // S = 1000, P = 200, f = 0.25: k = 1 / (1 - 0.75) = 4, rho = 1000 / (200 * (0.25 + 4 * 0.75)) = 1000 / 650.
  assert.equal(adjustedSharesPerPage(1000, 200, 0.25, 0.75), 1000 / 650);
  assert.equal(adjustedSharesPerPage(1000, 200, 0.25, 0), 5); // tau = 0: plain shares per page
  assert.equal(adjustedSharesPerPage(1000, 200, 1, 0.75), 5); // all active: no tax
  assert.equal(adjustedSharesPerPage(1000, 200, 0, 0.75), 1.25); // all idle: four times the cost
  assert.equal(adjustedSharesPerPage(1000, 200, 0, 0.5), 2.5); // k = 2
  assert.equal(adjustedSharesPerPage(1000, 0, 0.5, 0.75), Infinity);
  assert.equal(adjustedSharesPerPage(0, 200, 0.5, 0.75), 0);
  // The policy measures f over all guest pages (the limit): 0.125 of 400 pages is 50 active pages,
  // which at P = 200 is f = 0.25 of the allocation; at P = 40 the VM is all active.
  const pol = new AllocationPolicy({ poolFrames: 1000, swapSlots: 1000 });
  assert.equal(pol.idleTax, DEFAULT_IDLE_TAX);
  const v = pol.add({ name: 'a', limit: 400, shares: 1000 });
  inputs(v, 200, 0.125);
  assert.ok(Math.abs(pol.rhoAt(v, 200) - 1000 / 650) < 1e-12);
  assert.equal(pol.rhoAt(v, 40), 1000 / 40);
});

test('at tax 0 reclaim follows shares per page: the lowest first, then to a common ratio', () => {
  const pol = new AllocationPolicy({ poolFrames: 1000, swapSlots: 10_000, idleTax: 0 });
  const a = pol.add({ name: 'a', limit: 400, shares: 100 });
  const b = pol.add({ name: 'b', limit: 400, shares: 200 });
  const c = pol.add({ name: 'c', limit: 400, shares: 300 });
  // Activity does not matter at tax 0.
  inputs(a, 300, 1); inputs(b, 300, 0); inputs(c, 300, 0.5);
  // 30 free frames, 60 wanted (6%): 30 pages to reclaim, all from a (rho 100/300 is the lowest, and 100/270 still is).
  let r = pol.tick(0, 30);
  assert.equal(r.state, 'soft');
  assert.deepEqual([a.target, b.target, c.target], [270, 300, 300]);
  assert.equal(r.reclaimPages, 30);
  // A large reclaim ends with equal shares per page: 100:200:300 over 300 frames.
  const big = new AllocationPolicy({ poolFrames: 10_000, swapSlots: 10_000, idleTax: 0 });
  const [x, y, z] = [100, 200, 300].map((s, i) => big.add({ name: `v${i}`, limit: 400, shares: s }));
  [x!, y!, z!].forEach((v, i) => inputs(v, 300, [0.1, 0.5, 0.9][i]));
  r = big.tick(0, 0); // budget: 900 held + 0 free - 600 (6% of 10000) = 300
  assert.equal(r.state, 'low');
  assert.deepEqual([x!.target, y!.target, z!.target], [50, 100, 150]);
});

test('at tax 75% an idle VM is reclaimed before an active one with equal shares; at tax 0 both equally', () => {
  for (const tau of [0, 0.75]) {
    const pol = new AllocationPolicy({ poolFrames: 1000, swapSlots: 1000, idleTax: tau });
    const active = pol.add({ name: 'active', limit: 500, shares: 1000 });
    const idle = pol.add({ name: 'idle', limit: 500, shares: 1000 });
    inputs(active, 300, 0.6); inputs(idle, 300, 0.04); // 300 and 20 active pages
    pol.tick(0, 10); // 50 pages to reclaim
    if (tau === 0) {
      assert.deepEqual([active.target, idle.target], [275, 275], 'tax 0: equal shares, equal pages');
    } else {
      assert.deepEqual([active.target, idle.target], [300, 250], 'tax 75%: all from the idle VM');
      assert.ok(idle.rho < active.rho);
    }
  }
});

/** The pool of the simulation: free frames, and host swap's fault-time eviction (random pages of every VM, as HostSwap). */
class SimPool {
  readonly vms: SimVm[] = [];
  constructor(public free: number, private readonly rng: Rng) {}
  evictOne(): void {
    for (;;) {
      const vm = this.vms[Math.floor((this.rng() / 4294967296) * this.vms.length)]!;
      if (vm.swapPage(Math.floor((this.rng() / 4294967296) * vm.pages))) return;
    }
  }
}

/** One simulated guest for the §5.4 experiment: pages, a balloon, a software TLB and an activity sampler. */
class SimVm {
  static readonly UNBACKED = 0; static readonly RESIDENT = 1; static readonly BALLOONED = 2; static readonly SWAPPED = 3;
  readonly page: Uint8Array;
  readonly cached: Uint8Array;
  readonly marks: TouchMarks;
  readonly sampler: ActivitySampler;
  resident = 0; ballooned = 0; swapped = 0;
  constructor(readonly name: string, readonly pages: number, readonly pool: SimPool, private readonly rng: Rng) {
    this.page = new Uint8Array(pages);
    this.cached = new Uint8Array(pages);
    this.marks = new TouchMarks(pages, (g) => { this.cached[g] = 0; });
    this.sampler = new ActivitySampler(pages, this.marks, { seed: nextSeed() });
    this.sampler.start();
  }
  /** A guest write to page g: faults in a frame if it has none (host swap evicts a random page when the pool is empty). */
  touch(g: number): void {
    const s = this.page[g]!;
    if (s === SimVm.BALLOONED) return; // the guest does not use pages it gave to the balloon
    if (s !== SimVm.RESIDENT) {
      if (this.pool.free === 0) this.pool.evictOne();
      this.pool.free--; this.resident++;
      if (s === SimVm.SWAPPED) this.swapped--;
      this.page[g] = SimVm.RESIDENT;
    }
    if (this.cached[g] === 0) { this.cached[g] = 1; this.marks.noteFill(g); }
  }
  /** The guest's balloon driver: inflates from the top of RAM (freeing frames of resident pages), deflates likewise. */
  balloonTo(target: number): void {
    for (let g = this.pages - 1; g >= 0 && this.ballooned < target; g--) {
      const s = this.page[g]!;
      if (s === SimVm.BALLOONED) continue;
      if (s === SimVm.RESIDENT) { this.resident--; this.pool.free++; }
      if (s === SimVm.SWAPPED) this.swapped--;
      this.page[g] = SimVm.BALLOONED; this.cached[g] = 0; this.ballooned++;
    }
    for (let g = 0; g < this.pages && this.ballooned > target; g++) {
      if (this.page[g] === SimVm.BALLOONED) { this.page[g] = SimVm.UNBACKED; this.ballooned--; }
    }
  }
  /** Host swap: n random resident pages out. */
  swapOut(n: number): void {
    for (let tries = 0; n > 0 && this.resident > 0 && tries < 100 * this.pages; tries++) {
      if (this.swapPage(Math.floor((this.rng() / 4294967296) * this.pages))) n--;
    }
  }
  /** Swaps page g out if it is resident. */
  swapPage(g: number): boolean {
    if (this.page[g] !== SimVm.RESIDENT) return false;
    this.page[g] = SimVm.SWAPPED; this.cached[g] = 0;
    this.resident--; this.swapped++; this.pool.free++;
    return true;
  }
  report(v: PolicyVm): void {
    v.allocated = this.resident; v.balloonSize = this.ballooned; v.swapped = this.swapped;
    v.activeFraction = this.sampler.activeFraction();
  }
}

/** The active workload: touches every page it has, faulting in at most 40 new ones per period. */
function workHard(vm: SimVm): void {
  let faults = 0;
  for (let g = 0; g < vm.pages; g++) {
    if (vm.page[g] !== SimVm.RESIDENT && vm.page[g] !== SimVm.BALLOONED && ++faults > 40) break;
    vm.touch(g);
  }
}

/** What idleTaxExperiment measured (allocations in frames). */
interface TaxRun {
  /** Average allocations over the last 50 periods of the first phase. */
  active: number; idle: number;
  /** The once-idle VM's allocation 40 periods after it woke up. */
  wokeAfter40: number;
  /** Average allocations over the last 50 periods with both VMs active. */
  bothActive: number; bothWoken: number;
  states: Set<MemoryState>;
}

/**
 * ESX §5.4's experiment in simulation: two VMs with equal shares in a pool
 * smaller than both; one idle after touching 600 pages at boot (then 5% of
 * its pages per period), one touching all of its pages every period,
 * faulting in at most 40 new pages per period. A fault on an empty pool
 * evicts a random page (host swap); a blocked VM does not run. The policy
 * ticks once per period, and its balloon targets and swap requests are
 * carried out at once. After 400 periods the idle VM wakes up and works as
 * hard as the other for 100 more.
 */
function idleTaxExperiment(tau: number): TaxRun {
  const POOL = 1000, RAM = 800, PERIODS = 400, WOKEN = 100;
  const pool = new SimPool(POOL, seededRng(nextSeed()));
  const pol = new AllocationPolicy({ poolFrames: POOL, swapSlots: 2 * RAM, idleTax: tau });
  const rng = seededRng(nextSeed());
  const active = new SimVm('active', RAM, pool, seededRng(nextSeed()));
  const idle = new SimVm('idle', RAM, pool, seededRng(nextSeed()));
  pool.vms.push(active, idle);
  const pa = pol.add({ name: 'active', limit: RAM }), pi = pol.add({ name: 'idle', limit: RAM });
  for (let g = 0; g < 600; g++) idle.touch(g); // boot
  const run: TaxRun = { active: 0, idle: 0, wokeAfter40: 0, bothActive: 0, bothWoken: 0, states: new Set() };
  for (let p = 0; p < PERIODS + WOKEN; p++) {
    if (!pi.blocked) {
      if (p < PERIODS) for (let i = 0; i < RAM / 20; i++) idle.touch(Math.floor((rng() / 4294967296) * RAM));
      else workHard(idle);
    }
    if (!pa.blocked) workHard(active);
    // Sampling periods are VM execution time (§5.3): a blocked VM's period does not advance.
    if (!pa.blocked) active.sampler.endPeriod();
    if (!pi.blocked) idle.sampler.endPeriod();
    active.report(pa); idle.report(pi);
    const r = pol.tick(p * 1000, pool.free);
    run.states.add(r.state);
    active.balloonTo(pa.balloonTarget); idle.balloonTo(pi.balloonTarget);
    active.swapOut(pa.swapOut); idle.swapOut(pi.swapOut);
    assert.ok(pool.free >= 0 && active.resident + idle.resident + pool.free === POOL, 'frames are conserved');
    if (p >= PERIODS - 50 && p < PERIODS) { run.active += active.resident / 50; run.idle += idle.resident / 50; }
    if (p === PERIODS + 40) run.wokeAfter40 = idle.resident;
    if (p >= PERIODS + WOKEN - 50) { run.bothActive += active.resident / 50; run.bothWoken += idle.resident / 50; }
  }
  return run;
}

test(`§5.4 in simulation: with equal shares the active VM ends with more memory at tax 75%, about equal at tax 0 (POLICY_SEED=${SEED})`, () => {
  const flat = idleTaxExperiment(0);
  const taxed = idleTaxExperiment(0.75);
  const f = (x: number): string => x.toFixed(0);
  console.log(`alloc-policy: tax 0: active ${f(flat.active)}, idle ${f(flat.idle)} frames; tax 75%: active ${f(taxed.active)}, idle ${f(taxed.idle)} frames; ` +
    `tax 75%, idle VM woken: ${f(taxed.wokeAfter40)} after 40 periods, then ${f(taxed.bothActive)} and ${f(taxed.bothWoken)}`);
  // Tax 0: rho = S / P, equal shares: equal pages, 470 each of the 940 the targets hand out (1000 less 6%).
  assert.ok(Math.abs(flat.active - flat.idle) <= 30, `tax 0: ${flat.active} vs ${flat.idle}`);
  // Tax 75%: the idle VM's ~40 active pages cost 1, its idle pages 4; equal rho means
  // P_a = 40 + 4 (P_i - 40) and P_a + P_i = 940: P_i = 212, P_a = 728.
  assert.ok(Math.abs(taxed.active - 728) <= 40 && Math.abs(taxed.idle - 212) <= 40, `tax 75%: ${taxed.active} vs ${taxed.idle}`);
  assert.ok(taxed.active > flat.active + 150, 'the tax moves memory to the active VM');
  assert.ok(taxed.states.has('soft') || taxed.states.has('hard'), 'the experiment ran under pressure');
  // The idle VM wakes up: its estimate rises at once and it ramps up to its full share (ESX §5.2).
  assert.ok(taxed.wokeAfter40 > 400, `40 periods after waking: ${taxed.wokeAfter40} frames`);
  assert.ok(Math.abs(taxed.bothActive - taxed.bothWoken) <= 60, `both active: ${taxed.bothActive} vs ${taxed.bothWoken}`);
});

test(`random inputs: targets respect reservations and limits and are min-funding revocation's fixed point (POLICY_SEED=${SEED})`, () => {
  const rng = seededRng(nextSeed());
  const rnd = (n: number): number => Math.floor((rng() / 4294967296) * n);
  for (let round = 0; round < 300; round++) {
    const poolFrames = 200 + rnd(5000);
    const pol = new AllocationPolicy({ poolFrames, swapSlots: 1 << 20, idleTax: [0, 0.5, 0.75, 0.9][rnd(4)]!, balloonGraceMs: rnd(3) * 1000 });
    const n = 1 + rnd(6);
    const vms: PolicyVm[] = [];
    for (let i = 0; i < n; i++) {
      const limit = 1 + rnd(2000);
      const reservation = rnd(3) === 0 ? 0 : rnd(Math.min(limit, Math.floor(poolFrames / n)) + 1);
      vms.push(pol.add({
        name: `v${i}`, limit, reservation, shares: rnd(4) === 0 ? undefined : rnd(5000),
        hasBalloon: rnd(5) !== 0, balloonMax: rnd(3) === 0 ? rnd(limit) : undefined,
      }));
    }
    for (let t = 0; t < 5; t++) {
      for (const v of vms) inputs(v, rnd(v.limit + 1), rng() / 4294967296, rnd(v.limit / 2 + 1), rnd(v.limit / 4 + 1));
      const free = rnd(poolFrames / 5 + 1);
      const r = pol.tick(t * 1500, free);
      let sumT = 0, sumLo = 0, sumHi = 0, held = 0;
      for (const v of vms) {
        const demand = Math.min(v.limit, v.allocated + v.balloonSize + v.swapped);
        const floor = Math.min(demand, v.reservation);
        const msg = `round ${round} tick ${t} ${v.name}: ${JSON.stringify({ ...v })}`;
        assert.ok(v.target >= floor && v.target <= demand && v.target <= v.limit, `target within bounds: ${msg}`);
        assert.ok(v.target >= Math.min(v.reservation, demand), `reservation kept: ${msg}`);
        assert.ok(v.balloonTarget >= 0 && v.balloonTarget <= v.limit - v.reservation && v.balloonTarget <= v.balloonMax, `balloon bounds: ${msg}`);
        if (!v.hasBalloon) assert.equal(v.balloonTarget, 0, msg);
        assert.ok(v.swapOut >= 0 && v.swapOut <= Math.max(0, v.allocated - v.target), `swap takes only the excess: ${msg}`);
        assert.ok(v.allocated - v.swapOut >= Math.min(v.reservation, v.allocated), `swap keeps the reservation: ${msg}`);
        if (r.state === 'high') assert.ok(v.swapOut === 0 && v.balloonTarget <= v.balloonSize && !v.blocked, `nothing reclaimed in high: ${msg}`);
        sumT += v.target; sumLo += floor; sumHi += demand; held += v.allocated;
      }
      const budget = held + free - pol.highFrames;
      assert.equal(sumT, Math.min(sumHi, Math.max(sumLo, budget)), `targets add up to the budget (round ${round})`);
      // No page would do better elsewhere: a VM holding more than its floor values its last page at least
      // as much as any VM below its demand values one more.
      for (const i of vms) {
        const floorI = Math.min(i.limit, i.allocated + i.balloonSize + i.swapped, i.reservation);
        if (i.target <= floorI) continue;
        for (const j of vms) {
          if (j === i || j.target >= Math.min(j.limit, j.allocated + j.balloonSize + j.swapped)) continue;
          assert.ok(pol.rhoAt(i, i.target) >= pol.rhoAt(j, j.target + 1) * (1 - 1e-9),
            `round ${round}: ${i.name} (rho ${pol.rhoAt(i, i.target)}) keeps a page ${j.name} values more (${pol.rhoAt(j, j.target + 1)})`);
        }
      }
    }
  }
});

test('free-memory states switch at 6/4/2/1% of the pool, and move up only past the next higher threshold', () => {
  const pol = new AllocationPolicy({ poolFrames: 1000 });
  assert.deepEqual([pol.highFrames, pol.softFrames, pol.hardFrames, pol.lowFrames], [60, 40, 20, 10]);
  const steps: Array<[number, MemoryState]> = [
    [100, 'high'], [45, 'high'], [40, 'high'], [39, 'soft'], [59, 'soft'], [60, 'high'], [19, 'hard'], [39, 'hard'],
    [40, 'soft'], [9, 'low'], [19, 'low'], [20, 'hard'], [10, 'hard'], [9, 'low'], [100, 'high'], [0, 'low'],
  ];
  for (const [free, want] of steps) assert.equal(pol.tick(0, free).state, want, `free ${free}`);
});

test('balloon first; host swap only for what the balloon cannot take, after the grace period, or in hard and low', () => {
  const mk = (cfg: { hasBalloon?: boolean; balloonMax?: number } = {}): [AllocationPolicy, PolicyVm, PolicyVm] => {
    const pol = new AllocationPolicy({ poolFrames: 1000, swapSlots: 1000, idleTax: 0 });
    const v = pol.add({ name: 'v', limit: 600, shares: 100, ...cfg });
    const w = pol.add({ name: 'w', limit: 600, shares: 1000 });
    inputs(v, 500); inputs(w, 400);
    return [pol, v, w];
  };
  // Soft: 35 free, 25 to reclaim, from v (lowest rho): by balloon, no swap.
  let [pol, v] = mk();
  let r = pol.tick(0, 35);
  assert.equal(r.state, 'soft');
  assert.deepEqual([v.target, v.balloonTarget, v.swapOut, v.blocked], [475, 25, 0, false]);
  // The balloon lags: still none after the grace period, then host swap takes the excess.
  assert.equal(pol.tick(DEFAULT_BALLOON_GRACE_MS, 35).swapOutPages, 0);
  assert.equal(v.swapOut, 0);
  r = pol.tick(DEFAULT_BALLOON_GRACE_MS + 1, 35);
  assert.equal(r.state, 'soft');
  assert.deepEqual([v.swapOut, v.balloonTarget], [25, 0], 'swap takes the excess; the balloon is not asked for it too');
  // The balloon delivered: at target, the grace clock resets.
  inputs(v, 475, 1, 25); r = pol.tick(DEFAULT_BALLOON_GRACE_MS + 2, 60);
  assert.deepEqual([r.state, v.swapOut, v.lagSince], ['high', 0, -1]);
  // A guest that gave the balloon pages without frames: the target grows until frames come back.
  [pol, v] = mk();
  pol.tick(0, 35);
  inputs(v, 500, 1, 25); // 25 pages in the balloon, none of them held a frame
  pol.tick(1000, 35);
  assert.deepEqual([v.balloonTarget, v.swapOut], [50, 0]);
  // The balloon at its maximum: swap takes the rest.
  [pol, v] = mk({ balloonMax: 10 });
  pol.tick(0, 35);
  assert.deepEqual([v.balloonTarget, v.swapOut], [10, 15]);
  // No balloon driver: all by swap.
  [pol, v] = mk({ hasBalloon: false });
  pol.tick(0, 35);
  assert.deepEqual([v.balloonTarget, v.swapOut], [0, 25]);
  // Hard: swap at once (the balloon target stays); low: and the VM is blocked.
  [pol, v] = mk();
  r = pol.tick(0, 15);
  assert.equal(r.state, 'hard');
  assert.deepEqual([v.target, v.balloonTarget, v.swapOut, v.blocked], [455, 0, 45, false], 'swap takes it all; the balloon holds');
  r = pol.tick(1, 5);
  assert.equal(r.state, 'low');
  assert.deepEqual([v.swapOut, v.blocked], [55, true]);
});

test('with memory plentiful, balloons deflate toward zero, the VM of highest rho first; nothing is reclaimed', () => {
  const pol = new AllocationPolicy({ poolFrames: 1000, swapSlots: 1000, idleTax: 0 });
  const a = pol.add({ name: 'a', limit: 500, shares: 1000 });
  const b = pol.add({ name: 'b', limit: 500, shares: 1000 });
  inputs(a, 50, 1, 50); inputs(b, 90, 1, 10); // rho: a 20, b 11.1
  let r = pol.tick(0, 80); // high; 20 frames above the high threshold, 160 to share: 80 each, all 30 more to a
  assert.equal(r.state, 'high');
  assert.deepEqual([a.target, b.target], [80, 80]);
  assert.deepEqual([a.balloonTarget, b.balloonTarget], [20, 10], 'a deflates by 30; b, above its target, keeps its balloon');
  assert.deepEqual([r.deflatePages, r.reclaimPages, r.swapOutPages, b.swapOut], [30, 0, 0, 0]);
  // Had a used its 30 pages, free would drop: in soft, b is brought to its target by its balloon.
  inputs(a, 80, 1, 20); r = pol.tick(1, 30);
  assert.equal(r.state, 'soft');
  assert.deepEqual([a.target, b.target], [70, 70]); // 170 held + 30 free - 60
  assert.deepEqual([a.balloonTarget, b.balloonTarget, r.reclaimPages, r.swapOutPages], [30, 30, 30, 0]);
  r = pol.tick(2, 500); // plenty: every balloon to zero
  assert.deepEqual([r.state, a.balloonTarget, b.balloonTarget, r.deflatePages], ['high', 0, 0, 30]);
});

test('admission: reservations must fit the pool, promised pages the pool plus swap; bad configurations are refused', () => {
  const pol = new AllocationPolicy({ poolFrames: 1000, swapSlots: 500 });
  const a = pol.add({ name: 'a', limit: 800, reservation: 600 });
  assert.match(pol.admit({ name: 'b', limit: 500, reservation: 401 })!, /^b: cannot reserve 401 pages: 600 of the pool's 1000 frames are reserved$/);
  assert.equal(pol.admit({ name: 'b', limit: 700, reservation: 400 }), null);
  assert.match(pol.admit({ name: 'b', limit: 701 })!, /promise 1501, more than the pool's 1000 frames plus 500 swap slots/);
  assert.throws(() => pol.add({ name: 'b', limit: 701 }), RangeError);
  pol.remove(a);
  assert.equal(pol.admit({ name: 'b', limit: 1500, reservation: 1000 }), null);
  const loose = new AllocationPolicy({ poolFrames: 1000, overcommitNeedsSwap: false });
  loose.add({ name: 'x', limit: 5000 });
  assert.equal(loose.admit({ name: 'y', limit: 5000 }), null);
  for (const [cfg, re] of [
    [{ name: 'z', limit: 0 }, /limit of 0 pages/],
    [{ name: 'z', limit: 1.5 }, /limit of 1.5 pages/],
    [{ name: 'z', limit: 10, reservation: 11 }, /reservation of 11 pages: must be 0..10/],
    [{ name: 'z', limit: 10, shares: -1 }, /shares -1/],
    [{ name: 'z', limit: 10, shares: NaN }, /shares NaN/],
    [{ name: 'z', limit: 10, balloonMax: -3 }, /balloon maximum -3/],
  ] as const) assert.match(loose.admit(cfg)!, re);
  assert.throws(() => new AllocationPolicy({ poolFrames: 0 }), /pool of 0 frames/);
  assert.throws(() => new AllocationPolicy({ poolFrames: 10, idleTax: 1 }), /idle memory tax 1/);
  assert.throws(() => new AllocationPolicy({ poolFrames: 10, swapSlots: -1 }), /swap of -1 slots/);
});
