/**
 * The activity estimator: what fraction of a VM's guest-physical memory is
 * in active use, measured without the guest's help by statistical sampling
 * (Waldspurger, "Memory Resource Management in VMware ESX Server", OSDI
 * 2002, §5.3). The allocation policy (alloc-policy.ts) taxes idle memory
 * with it.
 *
 * Each sampling period (in units of VM execution time; ESX's default is
 * 30 s) the sampler picks n guest pages uniformly at random (ESX's
 * default: 100) and asks the VM to invalidate every cached translation of
 * them (TLB entries in every hart, translated code that caches the
 * mapping). The next guest access to a sampled page misses, goes through
 * the TLB fill, and the fill marks the page touched. At the end of the
 * period the sampler counts the touched pages t; f = t / n estimates the
 * fraction of memory the guest accessed during the period.
 *
 * Estimates are smoothed over periods (§5.3): a slow exponentially
 * weighted moving average, a fast one, and a version of the fast one that
 * also counts the pages touched so far in the current period. The
 * estimate used is the maximum of the three, so it rises at once when the
 * guest's working set grows and decays slowly when it shrinks: a VM whose
 * idle memory was reclaimed gets it back quickly once it uses it again.
 * The paper does not give the averages' gains; the defaults here
 * (DEFAULT_SLOW_GAIN, DEFAULT_FAST_GAIN) are this project's choice.
 *
 * The sampler allocates nothing after construction: the sample is an
 * Int32Array of n pages, the random source a seeded generator.
 */

import { seededRng, type Rng } from './host-swap.js';

/** Pages sampled per period by default (ESX §5.3: "samples 100 pages for each 30 second period"). */
export const DEFAULT_ACTIVITY_SAMPLES = 100;
/** Sampling period by default, in milliseconds of VM execution time (ESX §5.3: 30 s). */
export const DEFAULT_ACTIVITY_PERIOD_MS = 30_000;
/**
 * Gain of the slow moving average (per period). Not given by the paper:
 * 1/8 makes a drop in activity take about 8 periods (4 minutes at 30 s)
 * to show, which keeps a briefly quiet VM from losing its memory.
 */
export const DEFAULT_SLOW_GAIN = 1 / 8;
/** Gain of the fast moving average (per period). Not given by the paper: 1/2 follows a change within two periods. */
export const DEFAULT_FAST_GAIN = 1 / 2;
/** Most pages one period may sample (the duplicate check is quadratic in it; ESX uses 100). */
export const MAX_ACTIVITY_SAMPLES = 4096;

/**
 * What a VM provides so that its page accesses can be sampled (the TLB
 * wiring implements it; TouchMarks does the bookkeeping half). The sampler
 * calls `invalidate` for each sampled page at the start of a period and
 * `wasTouched` for each at its end (and when `current` is asked for).
 * Neither call may allocate.
 */
export interface ActivityHooks {
  /**
   * Starts tracking guest page `gpn`: clears its touched mark and drops
   * every cached translation of it in every hart of the VM (TLB entries,
   * and translated code that holds its address), so that the guest's next
   * access to it, read, write or fetch, goes through the TLB fill.
   */
  invalidate(gpn: number): void;
  /** Whether the guest accessed page `gpn` (a TLB fill for it ran) since its last `invalidate`. */
  wasTouched(gpn: number): boolean;
}

/** TouchMarks: the page is not being tracked. */
const MARK_NONE = 0;
/** TouchMarks: the page was invalidated and not accessed since. */
const MARK_ARMED = 1;
/** TouchMarks: the page was accessed since it was invalidated. */
const MARK_TOUCHED = 2;

/**
 * The bookkeeping half of ActivityHooks: one byte per guest page. The
 * wiring passes the function that drops a page's cached translations, and
 * calls `noteFill(gpn)` from the TLB fill path (one load and a compare for
 * a page not being sampled).
 */
export class TouchMarks implements ActivityHooks {
  /** One mark per guest page (MARK_NONE, MARK_ARMED or MARK_TOUCHED). */
  readonly marks: Uint8Array;
  private readonly flush: (gpn: number) => void;

  /** Marks for `ramPages` guest pages; `flush(gpn)` drops the page's cached translations in every hart. */
  constructor(ramPages: number, flush: (gpn: number) => void) {
    if (!Number.isInteger(ramPages) || ramPages < 1) throw new RangeError(`touch marks for ${ramPages} pages`);
    this.marks = new Uint8Array(ramPages);
    this.flush = flush;
  }

  /** ActivityHooks: arm `gpn` and drop its cached translations. */
  invalidate(gpn: number): void {
    this.marks[gpn] = MARK_ARMED;
    this.flush(gpn);
  }

  /** ActivityHooks: whether `gpn` was filled since it was armed. */
  wasTouched(gpn: number): boolean {
    return this.marks[gpn] === MARK_TOUCHED;
  }

  /** Called by the TLB fill path for every fill of guest page `gpn`. */
  noteFill(gpn: number): void {
    if (this.marks[gpn] === MARK_ARMED) this.marks[gpn] = MARK_TOUCHED;
  }

  /** Stops tracking every page. */
  clear(): void {
    this.marks.fill(MARK_NONE);
  }
}

/** ActivitySampler options (every field optional). */
export interface ActivitySamplerOptions {
  /** Pages sampled per period (default DEFAULT_ACTIVITY_SAMPLES; capped at the VM's pages). */
  samples?: number;
  /** Period length in ms of VM execution time (default DEFAULT_ACTIVITY_PERIOD_MS). */
  periodMs?: number;
  /** Seed of the page choice (default 1); or pass `rng`. */
  seed?: number;
  /** The random source (uniform 32-bit unsigned integers); overrides `seed`. */
  rng?: Rng;
  /** Gain of the slow average, in (0, 1] (default DEFAULT_SLOW_GAIN). */
  slowGain?: number;
  /** Gain of the fast average, in (0, 1] (default DEFAULT_FAST_GAIN). */
  fastGain?: number;
}

/** One VM's active-memory estimator (ESX §5.3). */
export class ActivitySampler {
  /** Guest pages the VM has. */
  readonly ramPages: number;
  /** Pages sampled per period. */
  readonly samples: number;
  /** Period length, ms of VM execution time. */
  readonly periodMs: number;
  /** Gain of the slow average. */
  readonly slowGain: number;
  /** Gain of the fast average. */
  readonly fastGain: number;
  private readonly hooks: ActivityHooks;
  private readonly rng: Rng;
  private readonly sample: Int32Array;
  private elapsed = 0;
  private started = false;
  private measured = false;
  private slowAvg = 1;
  private fastAvg = 1;
  private last = 1;
  private nPeriods = 0;

  /** A sampler over `ramPages` guest pages, tracking pages through `hooks`; throws RangeError on bad options. */
  constructor(ramPages: number, hooks: ActivityHooks, options: ActivitySamplerOptions = {}) {
    if (!Number.isInteger(ramPages) || ramPages < 1) throw new RangeError(`activity sampler over ${ramPages} pages`);
    const n = options.samples ?? DEFAULT_ACTIVITY_SAMPLES;
    if (!Number.isInteger(n) || n < 1 || n > MAX_ACTIVITY_SAMPLES) throw new RangeError(`activity samples ${n}: must be 1..${MAX_ACTIVITY_SAMPLES}`);
    const period = options.periodMs ?? DEFAULT_ACTIVITY_PERIOD_MS;
    if (!(Number.isFinite(period) && period > 0)) throw new RangeError(`activity period ${period} ms: must be positive`);
    const slow = options.slowGain ?? DEFAULT_SLOW_GAIN, fast = options.fastGain ?? DEFAULT_FAST_GAIN;
    if (!(slow > 0 && slow <= 1) || !(fast > 0 && fast <= 1)) throw new RangeError(`activity gains ${slow}, ${fast}: must be in (0, 1]`);
    this.ramPages = ramPages;
    this.samples = Math.min(n, ramPages);
    this.periodMs = period;
    this.slowGain = slow;
    this.fastGain = fast;
    this.hooks = hooks;
    this.rng = options.rng ?? seededRng(options.seed ?? 1);
    this.sample = new Int32Array(this.samples);
  }

  /** The slow moving average of f (1 until the first period completes). */
  get slow(): number { return this.slowAvg; }
  /** The fast moving average of f (1 until the first period completes). */
  get fast(): number { return this.fastAvg; }
  /** f = t / n of the last completed period (1 until one completes). */
  get lastPeriod(): number { return this.last; }
  /** Completed periods. */
  get periods(): number { return this.nPeriods; }
  /** The pages of the current period's sample (read-only view; for tests and stats). */
  get sampledPages(): Int32Array { return this.sample; }

  /** Picks the first period's pages and invalidates them (called by `advance` if not called before). */
  start(): void {
    this.pick();
    this.started = true;
    this.elapsed = 0;
  }

  /**
   * Accounts `ms` more of VM execution time; ends the period when it is
   * complete (and starts the next). Returns whether a period ended. Time
   * beyond one period is dropped: accesses in it cannot be told apart.
   */
  advance(ms: number): boolean {
    if (!this.started) { this.start(); return false; }
    if (ms > 0) this.elapsed += ms;
    if (this.elapsed < this.periodMs) return false;
    this.endPeriod();
    return true;
  }

  /** Ends the current period now: counts its touched pages, updates the averages, starts the next period. */
  endPeriod(): void {
    if (!this.started) { this.start(); return; }
    const f = this.touchedSoFar() / this.samples;
    if (this.measured) {
      this.slowAvg += this.slowGain * (f - this.slowAvg);
      this.fastAvg += this.fastGain * (f - this.fastAvg);
    } else { // the first measurement seeds both averages
      this.slowAvg = f; this.fastAvg = f; this.measured = true;
    }
    this.last = f;
    this.nPeriods++;
    this.pick();
    this.elapsed = 0;
  }

  /** Pages of the current sample touched so far this period. */
  touchedSoFar(): number {
    const s = this.sample, h = this.hooks;
    let t = 0;
    for (let i = 0; i < s.length; i++) if (h.wasTouched(s[i]!)) t++;
    return t;
  }

  /** The fast average as it would be if the period ended now: it sees a rise within the period. */
  current(): number {
    if (!this.started) return this.fastAvg;
    const f = this.touchedSoFar() / this.samples;
    return this.measured ? this.fastAvg + this.fastGain * (f - this.fastAvg) : f;
  }

  /**
   * The estimated fraction of the VM's guest pages in active use: the
   * maximum of the slow average, the fast average and `current()` (§5.3).
   * 1 until the first period completes (an unmeasured VM is not taxed).
   */
  activeFraction(): number {
    if (!this.measured) return 1;
    return Math.max(this.slowAvg, this.fastAvg, this.current());
  }

  /** Chooses this period's pages (uniformly, without repeats) and invalidates them. */
  private pick(): void {
    const s = this.sample, n = s.length, pages = this.ramPages, rng = this.rng;
    if (n === pages) {
      for (let i = 0; i < n; i++) s[i] = i;
    } else {
      for (let i = 0; i < n; i++) {
        let g: number;
        do g = Math.floor((rng() / 4294967296) * pages); while (this.hasSample(g, i));
        s[i] = g;
      }
    }
    for (let i = 0; i < n; i++) this.hooks.invalidate(s[i]!);
  }

  private hasSample(g: number, count: number): boolean {
    const s = this.sample;
    for (let j = 0; j < count; j++) if (s[j] === g) return true;
    return false;
  }
}
