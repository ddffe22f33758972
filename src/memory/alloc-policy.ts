/**
 * The allocation policy of a many-VM host (Waldspurger, "Memory Resource
 * Management in VMware ESX Server", OSDI 2002, §5 and §6): who gets how
 * many pool frames, whom to reclaim from, and by which mechanism.
 *
 * Parameters (§6.1). Each VM has a reservation (ESX's min: frames it keeps
 * even when memory is overcommitted), a limit (ESX's max: its configured
 * RAM) and shares (its proportional entitlement).
 *
 * Shares against working sets (§5.1, §5.2). Memory is reclaimed from the
 * VM with the lowest adjusted shares-per-page ratio
 *     rho = S / (P * (f + k * (1 - f))),   k = 1 / (1 - tau)
 * for S shares, P pages allocated of which a fraction f is active, and the
 * idle memory tax rate tau (default 75%, §5.2): an idle page costs k times
 * an active one (4 at 75%), so idle memory goes first; tau = 0 is pure
 * proportional share. The active fraction comes from statistical sampling
 * (activity.ts, §5.3). It is measured over all of the VM's guest pages,
 * so the policy keeps the active pages A = f * limit and, at a candidate
 * allocation P, uses f(P) = min(1, A / P): the denominator becomes
 * min(A, P) + k * max(0, P - A), active pages plus k times idle ones.
 *
 * Targets. Min-funding revocation (§5.1) takes one page at a time from the
 * VM of lowest rho; rho rises as its P falls, so it ends with every VM
 * reclaimed from at one common rho (a water level). `tick` computes that
 * level directly by bisection, then settles the last pages one by one.
 * Each VM's target lies between its reservation and its demand (the
 * pages it holds, has in the balloon, or has in host swap, at most its
 * limit). The frames to share out are the VMs' current allocations plus
 * the free frames minus the high threshold: targets drive free memory
 * above the high threshold (§6.3). Targets are computed in every state,
 * but nothing is reclaimed in the high state. A VM below its target has
 * ballooned pages given back, to the VM of highest rho first; if that
 * makes memory scarce, the soft state reclaims from the VMs above their
 * targets. So a VM whose idle memory was taken, and which becomes active
 * again, gets its share back (§5.2) even when the host is not short.
 *
 * Free-memory states (§6.3): thresholds of 6%, 4%, 2% and 1% of the pool
 * (high, soft, hard, low). Free memory dropping below the soft, hard or
 * low threshold enters that state; a state is left upwards only once free
 * memory exceeds the next higher threshold (the paper's hysteresis: soft
 * is entered below 4% and left above 6%). The search tool could not
 * retrieve §6.3 itself; this reading of its thresholds is ours.
 * - high: no reclamation; balloons of VMs below their targets deflate.
 * - soft: reclaim by ballooning; host swap only where the balloon cannot
 *   keep up: no balloon driver, the balloon at its maximum, or the balloon
 *   short of the target it was given for longer than a grace period (then
 *   swap takes the excess, and the balloon gets a new target and grace
 *   period at the next tick).
 * - hard: reclaim by host swapping (the balloon holds its size; swapped
 *   pages count in the VM's demand, so once the guest touches them and
 *   they come back in, the balloon takes over their reclaim).
 * - low: as hard, and VMs above their target are blocked until they are
 *   not (the host stops their harts).
 *
 * Admission control (§6.2). A VM may start if the pool holds every
 * reservation, its own included, and (unless the host opts out) every page
 * promised has a place: the sum of limits is at most the pool plus the
 * swap slots. ESX asks instead that swap hold every VM's max - min; that
 * rule implies ours, which also counts unreserved pool frames, and both
 * keep the promise of issue 14 point 5 that nothing is lost.
 *
 * How the host drives it: a periodic `tick` on the host's thread. Before
 * it, the host writes each VM's inputs (allocation, active fraction,
 * balloon size, swapped pages); after it, it sends each `balloonTarget` to
 * the VM's virtio-balloon device, asks host swap to evict `swapOut` pages
 * of the VM at the VM's next safe point, and pauses a `blocked` VM. The
 * policy itself touches no VM: it is pure arithmetic, and allocates
 * nothing per tick but its small result object.
 */

/** A free-memory state (ESX §6.3), from plentiful to critical. */
export type MemoryState = 'high' | 'soft' | 'hard' | 'low';

/** High free-memory threshold, in percent of the pool (ESX §6.3: 6%). */
export const FREE_HIGH_PERCENT = 6;
/** Soft free-memory threshold, in percent of the pool (ESX §6.3: 4%). */
export const FREE_SOFT_PERCENT = 4;
/** Hard free-memory threshold, in percent of the pool (ESX §6.3: 2%). */
export const FREE_HARD_PERCENT = 2;
/** Low free-memory threshold, in percent of the pool (ESX §6.3: 1%). */
export const FREE_LOW_PERCENT = 1;
/** The idle memory tax rate by default (ESX §5.2: "defaults to 75%"). */
export const DEFAULT_IDLE_TAX = 0.75;
/** Largest idle tax rate accepted: at 1, k = 1 / (1 - tau) is infinite. */
export const MAX_IDLE_TAX = 0.99;
/**
 * Default shares per page of configured RAM: vSphere's "normal" level is
 * 10 shares per MB of configured memory, 10 / 256 per 4 KiB page; we use
 * it as shares = pages * 10 / 256, so equal-sized VMs get equal shares.
 */
export const DEFAULT_SHARES_PER_PAGE = 10 / 256;
/**
 * How long a balloon may stay short of an inflation target before host
 * swap takes the VM's excess (ms). Not in the paper: 10 s is many
 * times what Linux's virtio-balloon needs to inflate by hundreds of MiB.
 */
export const DEFAULT_BALLOON_GRACE_MS = 10_000;
/** Bisection steps of the water level (each halves its log-space interval; 100 reach double precision). */
const LEVEL_STEPS = 100;

/**
 * The adjusted shares-per-page ratio of ESX §5.2: S / (P * (f + k(1 - f)))
 * with k = 1 / (1 - tau). Infinite for P = 0 and S > 0; 0 for S = 0.
 */
export function adjustedSharesPerPage(shares: number, pages: number, activeFraction: number, tau: number): number {
  if (shares === 0) return 0;
  if (pages <= 0) return Infinity;
  const k = 1 / (1 - tau);
  return shares / (pages * (activeFraction + k * (1 - activeFraction)));
}

/** How a VM is configured (reservation, limit and shares in 4 KiB pages / shares). */
export interface PolicyVmConfig {
  /** For messages. */
  name: string;
  /** Configured RAM in pages: most frames the VM may hold (ESX's max). */
  limit: number;
  /** Frames the VM keeps whatever the pressure (ESX's min); default 0. */
  reservation?: number;
  /** Proportional entitlement; default limit * DEFAULT_SHARES_PER_PAGE. */
  shares?: number;
  /** Whether the guest has a balloon driver (default true; set false until the driver acknowledges a target). */
  hasBalloon?: boolean;
  /** Most pages the balloon may hold; default and cap: limit - reservation. */
  balloonMax?: number;
}

/** One VM as the policy sees it: its configuration, the inputs the host updates, the outputs of the last tick. */
export class PolicyVm {
  /** For messages and the host's requests (changes when the host renames the VM). */
  name: string;
  /** Most frames (configured RAM pages). */
  readonly limit: number;
  /** Guaranteed frames. */
  readonly reservation: number;
  /** Proportional entitlement. */
  readonly shares: number;
  /** Most pages the balloon may hold (at most limit - reservation). */
  readonly balloonMax: number;

  // ---- Inputs, written by the host before each tick ----
  /** Input: frames the VM holds now (its resident pages: private, plus shared mappings). */
  allocated = 0;
  /** Input: fraction of its guest pages in active use (ActivitySampler.activeFraction; 1 if unknown). */
  activeFraction = 1;
  /** Input: pages in its balloon now. */
  balloonSize = 0;
  /** Input: its pages in host swap now. */
  swapped = 0;
  /** Input: whether its guest has a working balloon driver. */
  hasBalloon: boolean;

  // ---- Outputs of the last tick ----
  /** Output: the frames the VM is entitled to (reclaimed toward outside the high state). */
  target = 0;
  /** Output: the balloon size to ask the guest for (pages). */
  balloonTarget = 0;
  /** Output: pages host swap should evict from this VM now. */
  swapOut = 0;
  /** Output: the VM should not run until it is at its target (low state only). */
  blocked = false;
  /** Output: rho at its target (for stats). */
  rho = 0;

  /** Since when (tick time, ms) the balloon has been short of an inflation target it was given; -1 when it is not. */
  lagSince = -1;
  // Scratch of the water-filling.
  /** @internal floor of this tick's target. */ lo = 0;
  /** @internal ceiling of this tick's target (the VM's demand). */ hi = 0;
  /** @internal active pages. */ active = 0;

  /** A VM from a validated configuration (see AllocationPolicy.add). */
  constructor(cfg: Required<PolicyVmConfig>) {
    this.name = cfg.name;
    this.limit = cfg.limit;
    this.reservation = cfg.reservation;
    this.shares = cfg.shares;
    this.hasBalloon = cfg.hasBalloon;
    this.balloonMax = cfg.balloonMax;
  }
}

/** AllocationPolicy options. */
export interface AllocationPolicyOptions {
  /** Frames of the pool (FramePool.framesTotal). */
  poolFrames: number;
  /** Slots of host swap (0: none). */
  swapSlots?: number;
  /** Idle memory tax rate tau in [0, MAX_IDLE_TAX] (default DEFAULT_IDLE_TAX). */
  idleTax?: number;
  /** Grace period of a lagging balloon, ms (default DEFAULT_BALLOON_GRACE_MS). */
  balloonGraceMs?: number;
  /** Whether admission requires every promised page to fit in pool plus swap (default true). */
  overcommitNeedsSwap?: boolean;
}

/** The host-wide result of a tick (per-VM results are on each PolicyVm). */
export interface PolicyTick {
  /** The free-memory state after this tick's free count. */
  state: MemoryState;
  /** Free frames the tick saw. */
  freeFrames: number;
  /** Frames being reclaimed in all (sum over VMs of allocated - target, where positive; 0 in the high state). */
  reclaimPages: number;
  /** Pages of balloon to give back in all (sum of balloonSize - balloonTarget, where positive). */
  deflatePages: number;
  /** Pages to swap out in all. */
  swapOutPages: number;
}

/** The allocation policy of one host: per-VM targets, balloon targets, swap requests, and admission control. */
export class AllocationPolicy {
  /** Frames of the pool. */
  readonly poolFrames: number;
  /** Slots of host swap. */
  readonly swapSlots: number;
  /** Grace period of a lagging balloon, ms. */
  readonly balloonGraceMs: number;
  /** Whether admission requires every promised page to fit in pool plus swap. */
  readonly overcommitNeedsSwap: boolean;
  /** Free frames at the high threshold (the free memory targets aim for). */
  readonly highFrames: number;
  /** Free frames at the soft threshold. */
  readonly softFrames: number;
  /** Free frames at the hard threshold. */
  readonly hardFrames: number;
  /** Free frames at the low threshold. */
  readonly lowFrames: number;
  private tau: number;
  private k: number;
  private st: MemoryState = 'high';
  private readonly list: PolicyVm[] = [];

  /** A policy for a pool of `poolFrames` frames; throws RangeError on bad options. */
  constructor(options: AllocationPolicyOptions) {
    const { poolFrames } = options;
    const swapSlots = options.swapSlots ?? 0;
    if (!Number.isInteger(poolFrames) || poolFrames < 1) throw new RangeError(`pool of ${poolFrames} frames`);
    if (!Number.isInteger(swapSlots) || swapSlots < 0) throw new RangeError(`swap of ${swapSlots} slots`);
    const grace = options.balloonGraceMs ?? DEFAULT_BALLOON_GRACE_MS;
    if (!(Number.isFinite(grace) && grace >= 0)) throw new RangeError(`balloon grace period ${grace} ms`);
    this.poolFrames = poolFrames;
    this.swapSlots = swapSlots;
    this.balloonGraceMs = grace;
    this.overcommitNeedsSwap = options.overcommitNeedsSwap ?? true;
    // Integer arithmetic (pool frames < 2^20), so that 6% of 100 frames is 6, not 7.
    this.highFrames = Math.ceil((poolFrames * FREE_HIGH_PERCENT) / 100);
    this.softFrames = Math.ceil((poolFrames * FREE_SOFT_PERCENT) / 100);
    this.hardFrames = Math.ceil((poolFrames * FREE_HARD_PERCENT) / 100);
    this.lowFrames = Math.ceil((poolFrames * FREE_LOW_PERCENT) / 100);
    this.tau = DEFAULT_IDLE_TAX;
    this.k = 1 / (1 - this.tau);
    this.idleTax = options.idleTax ?? DEFAULT_IDLE_TAX;
  }

  /** The idle memory tax rate tau. */
  get idleTax(): number { return this.tau; }
  /** Sets tau (in [0, MAX_IDLE_TAX]); throws RangeError otherwise. */
  set idleTax(tau: number) {
    if (!(tau >= 0 && tau <= MAX_IDLE_TAX)) throw new RangeError(`idle memory tax ${tau}: must be 0..${MAX_IDLE_TAX}`);
    this.tau = tau;
    this.k = 1 / (1 - tau);
  }

  /** The free-memory state as of the last tick. */
  get state(): MemoryState { return this.st; }
  /** The VMs, in the order added. */
  get vms(): readonly PolicyVm[] { return this.list; }

  /**
   * Whether a VM with this configuration may start: null if so, else a
   * one-line reason (an admission refusal, or a bad configuration).
   */
  admit(cfg: PolicyVmConfig): string | null {
    const bad = validate(cfg);
    if (bad !== null) return bad;
    const res = cfg.reservation ?? 0;
    let reserved = 0, promised = 0;
    for (const v of this.list) { reserved += v.reservation; promised += v.limit; }
    if (reserved + res > this.poolFrames) {
      return `${cfg.name}: cannot reserve ${res} pages: ${reserved} of the pool's ${this.poolFrames} frames are reserved`;
    }
    if (this.overcommitNeedsSwap && promised + cfg.limit > this.poolFrames + this.swapSlots) {
      return `${cfg.name}: ${cfg.limit} more pages would promise ${promised + cfg.limit}, more than the pool's ${this.poolFrames} frames plus ${this.swapSlots} swap slots`;
    }
    return null;
  }

  /** Adds a VM that `admit` accepts; throws RangeError with admit's reason otherwise. */
  add(cfg: PolicyVmConfig): PolicyVm {
    const why = this.admit(cfg);
    if (why !== null) throw new RangeError(why);
    const res = cfg.reservation ?? 0;
    const vm = new PolicyVm({
      name: cfg.name, limit: cfg.limit, reservation: res,
      shares: cfg.shares ?? cfg.limit * DEFAULT_SHARES_PER_PAGE,
      hasBalloon: cfg.hasBalloon ?? true,
      balloonMax: Math.min(cfg.balloonMax ?? cfg.limit - res, cfg.limit - res),
    });
    this.list.push(vm);
    return vm;
  }

  /** Forgets a VM (stopped): its reservation is released. */
  remove(vm: PolicyVm): void {
    const i = this.list.indexOf(vm);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** rho of `vm` if it held `pages` frames (its active pages as of its last input). */
  rhoAt(vm: PolicyVm, pages: number): number {
    if (vm.shares === 0) return 0;
    if (pages <= 0) return Infinity;
    return vm.shares / this.cost(activePages(vm), pages);
  }

  /**
   * One round of the policy at time `nowMs` (the host's clock, ms) with
   * `freeFrames` free pool frames: updates the state, then every VM's
   * target, balloon target, swap request and blocked flag.
   */
  tick(nowMs: number, freeFrames: number): PolicyTick {
    const free = Math.max(0, Math.floor(freeFrames));
    const state = this.updateState(free);
    const vms = this.list;
    let held = 0;
    for (const v of vms) {
      const alloc = clampInt(v.allocated, 0, v.limit);
      v.active = activePages(v);
      v.hi = Math.min(v.limit, alloc + clampInt(v.balloonSize, 0, v.limit) + clampInt(v.swapped, 0, v.limit));
      v.lo = Math.min(v.hi, v.reservation);
      held += alloc;
    }
    this.waterFill(held + free - this.highFrames);
    const reclaiming = state !== 'high';
    const out: PolicyTick = { state, freeFrames: free, reclaimPages: 0, deflatePages: 0, swapOutPages: 0 };
    for (const v of vms) {
      const alloc = clampInt(v.allocated, 0, v.limit);
      const balloon = clampInt(v.balloonSize, 0, v.limit);
      const excess = alloc - v.target;
      const canBalloon = v.hasBalloon && v.balloonMax > 0;
      // The balloon lags when it has been short of the target it was given for longer than the grace period.
      if (v.lagSince >= 0 && balloon >= v.balloonTarget) v.lagSince = -1; // it caught up
      const lagging = v.lagSince >= 0 && nowMs - v.lagSince > this.balloonGraceMs;
      let swap = 0;
      if (reclaiming && excess > 0) {
        if (state === 'hard' || state === 'low' || !canBalloon || lagging) swap = excess;
        else swap = excess - Math.min(excess, Math.max(0, v.balloonMax - balloon)); // what the balloon cannot take (at its maximum)
        out.reclaimPages += excess;
      }
      // The balloon target makes the guest give up what swap does not take: it stays put while
      // inflation frees frames, and grows while the guest gives pages that held none. In the
      // high state it only deflates: a VM below its target gets pages back, and the pressure
      // that follows reclaims them from the VMs above theirs.
      const want = reclaiming || excess < 0 ? balloon + excess - swap : balloon;
      v.balloonTarget = canBalloon ? clampInt(want, 0, v.balloonMax) : 0;
      if (v.balloonTarget <= balloon) v.lagSince = -1; // no inflation asked for
      else if (v.lagSince < 0) v.lagSince = nowMs; // a new one: its grace period starts
      v.swapOut = swap;
      v.blocked = state === 'low' && excess > 0;
      v.rho = this.rhoAt(v, v.target);
      if (balloon > v.balloonTarget) out.deflatePages += balloon - v.balloonTarget;
      out.swapOutPages += swap;
    }
    return out;
  }

  // ---- Internals ----

  /** Active pages plus k times idle pages, for `active` active pages of `pages`. */
  private cost(active: number, pages: number): number {
    return pages <= active ? pages : active + this.k * (pages - active);
  }

  /** Pages whose cost is `c` (the inverse of cost). */
  private pagesForCost(active: number, c: number): number {
    return c <= active ? c : active + (c - active) / this.k;
  }

  /** The allocation of `v` at water level `level` (a rho), within [lo, hi]. */
  private pagesAtLevel(v: PolicyVm, level: number): number {
    if (v.shares === 0) return v.lo;
    const p = this.pagesForCost(v.active, v.shares / level);
    return p < v.lo ? v.lo : p > v.hi ? v.hi : p;
  }

  /**
   * Sets every target in [lo, hi] so that they sum to `budget` (clamped to
   * [sum lo, sum hi]), all VMs that are not at a bound sharing one rho:
   * min-funding revocation's fixed point (§5.1).
   */
  private waterFill(budget: number): void {
    const vms = this.list;
    let sumLo = 0, sumHi = 0;
    for (const v of vms) { sumLo += v.lo; sumHi += v.hi; }
    if (budget <= sumLo) { for (const v of vms) v.target = v.lo; return; }
    if (budget >= sumHi) { for (const v of vms) v.target = v.hi; return; }
    // Bracket the level: at `low` every VM is at hi, at `high` every VM is at or below max(lo, 1).
    let low = Infinity, high = 0;
    for (const v of vms) {
      if (v.shares === 0) continue;
      if (v.hi > 0) low = Math.min(low, v.shares / this.cost(v.active, v.hi));
      high = Math.max(high, v.shares / this.cost(v.active, Math.max(v.lo, 1)));
    }
    if (high === 0) { // no VM has shares: every rho is 0, so fill in order
      let left = budget - sumLo;
      for (const v of vms) { const give = Math.min(v.hi - v.lo, left); v.target = v.lo + give; left -= give; }
      return;
    }
    if (!(low < Infinity)) low = high; // every VM with shares has hi = 0: no level moves anyone
    let a = Math.log(low) - 1, b = Math.log(high) + 1; // a: sum >= budget; b: sum <= budget
    for (let i = 0; i < LEVEL_STEPS && b - a > 1e-12; i++) {
      const m = (a + b) / 2, level = Math.exp(m);
      let sum = 0;
      for (const v of vms) sum += this.pagesAtLevel(v, level);
      if (sum >= budget) a = m; else b = m;
    }
    const level = Math.exp(a);
    let total = 0;
    for (const v of vms) { v.target = Math.floor(this.pagesAtLevel(v, level)); total += v.target; }
    // Whole pages: give the few left over one at a time to the VM that values a page most (highest rho),
    // or take back one at a time from the VM of lowest rho (rounding never leaves more than one per VM).
    while (total < budget) {
      let best: PolicyVm | null = null, bestRho = -1;
      for (const v of vms) {
        if (v.target >= v.hi) continue;
        const r = this.rhoAt(v, v.target + 1);
        if (r > bestRho) { bestRho = r; best = v; }
      }
      if (best === null) break;
      best.target++; total++;
    }
    while (total > budget) {
      let worst: PolicyVm | null = null, worstRho = Infinity;
      for (const v of vms) {
        if (v.target <= v.lo) continue;
        const r = this.rhoAt(v, v.target);
        if (r < worstRho) { worstRho = r; worst = v; }
      }
      if (worst === null) break;
      worst.target--; total--;
    }
  }

  /** The state machine of §6.3: down when free drops below a threshold, up only above the next higher one. */
  private updateState(free: number): MemoryState {
    let s = this.st;
    for (;;) {
      if (s === 'high') { if (free < this.softFrames) { s = 'soft'; continue; } break; }
      if (s === 'soft') {
        if (free < this.hardFrames) { s = 'hard'; continue; }
        if (free >= this.highFrames) { s = 'high'; continue; }
        break;
      }
      if (s === 'hard') {
        if (free < this.lowFrames) { s = 'low'; continue; }
        if (free >= this.softFrames) { s = 'soft'; continue; }
        break;
      }
      if (free >= this.hardFrames) { s = 'hard'; continue; } // low
      break;
    }
    this.st = s;
    return s;
  }
}

/** Active pages of `vm`: its active fraction of its guest pages. */
function activePages(vm: PolicyVm): number {
  const f = vm.activeFraction;
  return (f > 0 ? (f < 1 ? f : 1) : 0) * vm.limit;
}

/** `x` as an integer within [lo, hi] (NaN gives lo). */
function clampInt(x: number, lo: number, hi: number): number {
  const n = Math.floor(x);
  return n > lo ? (n < hi ? n : hi) : lo;
}

/** A one-line reason why a VM configuration is invalid, or null. */
function validate(cfg: PolicyVmConfig): string | null {
  const { name, limit } = cfg;
  const res = cfg.reservation ?? 0;
  if (!Number.isInteger(limit) || limit < 1) return `${name}: limit of ${limit} pages: must be a positive integer`;
  if (!Number.isInteger(res) || res < 0 || res > limit) return `${name}: reservation of ${res} pages: must be 0..${limit} (the limit)`;
  if (cfg.shares !== undefined && !(Number.isFinite(cfg.shares) && cfg.shares >= 0)) return `${name}: shares ${cfg.shares}: must be a finite number >= 0`;
  if (cfg.balloonMax !== undefined && !(Number.isInteger(cfg.balloonMax) && cfg.balloonMax >= 0)) return `${name}: balloon maximum ${cfg.balloonMax}: must be an integer >= 0`;
  return null;
}
