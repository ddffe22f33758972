/**
 * The host's side of the shared frame pool (docs/memory.md): one FramePool
 * for every VM on the host, the page-sharing scanner, host swap, and each
 * VM's safe-point gate and remap log.
 *
 * Each VM's worker makes its own p2m table, gate and log on the pool
 * (pool-vm.ts) and hands their handles over when it starts; the host
 * attaches a view of the table whose remaps go to the VM's log. The scanner
 * runs on the host's thread: every SCAN_PERIOD_MS it hashes a budget of
 * pages while the VMs run, stops the VMs that share
 * (SafePointGate.stopAll), compares and merges, and releases them;
 * each VM drains its log before it runs guest code again.
 */
import { FramePool, FRAME_SIZE, type FramePoolHandle } from '../memory/frame-pool.js';
import { P2m, type P2mHandle, type P2mStats } from '../memory/p2m.js';
import { PageSharing, type SharingStats } from '../memory/page-sharing.js';
import { releaseOnHost } from '../memory/pooled-ram.js';
import { HostSwap, seededRng, type HostSwapHandle } from '../memory/host-swap.js';
import { SafePointGate, RemapLog, type SafePointGateHandle, type RemapLogHandle } from '../memory/safe-point.js';
import { SwapFile, type SwapFileHandle } from './swap-file.js';

/** How often the scanner stops the sharing VMs, in ms. */
export const SCAN_PERIOD_MS = 100;
/** Pages scanned per round by default: 2,000 per 100 ms, 20,000 pages (80 MiB) a second. */
export const DEFAULT_SCAN_BUDGET = 2000;
/**
 * The activity sampler's period on a host, ms. ESX's is 30 s (§5.3); a
 * tsvm host uses 10 s so that its policy follows a guest within a minute
 * (`tsvm host start --sample-period`).
 */
export const DEFAULT_HOST_ACTIVITY_PERIOD_MS = 10_000;
/** How long a stop may wait for a VM's safe point before the round is skipped. */
const STOP_TIMEOUT_MS = 2000;

/** What a VM's worker needs to put its RAM on the pool. */
export interface VmPoolHandles {
  pool: FramePoolHandle;
  swap: HostSwapHandle | null;
  swapFile: SwapFileHandle | null;
  /** Seed of the worker's swap-victim sampling (and of its activity sampling). */
  seed: number;
  /** The activity sampler's period, ms of VM execution time (ESX §5.3). */
  activityPeriodMs: number;
}

/** What a VM's worker hands back: its table, gate and log. */
export interface VmPoolLinks {
  p2m: P2mHandle;
  gate: SafePointGateHandle;
  log: RemapLogHandle;
  /** Sharing on for this VM (`-sharing on|off`). */
  sharing: boolean;
  /** The VM's control run, freed by the host with the table (releaseOnHost). */
  run: { first: number; n: number };
  /** Float64 [active fraction, sampling periods completed], written by the VM's thread (ActivitySampler). */
  activity: SharedArrayBuffer;
}

/** Host-wide memory counters: the `pool`, `sharing` and `swap` parts of `tsvm host stats --json`. */
export interface PoolHostStats {
  pool: { frames_total: number; frames_used: number; frames_free: number; frames_shared: number; frames_control: number; frames_high_water: number };
  sharing: SharingStats;
  swap: { pages_out: number; pages_in: number; slots_total: number; slots_used: number };
}

interface VmEntry {
  name: string; p2m: P2m; gate: SafePointGate; log: RemapLog; sharing: boolean; run: { first: number; n: number };
  /** The VM's activity words (VmPoolLinks.activity). */
  activity: Float64Array;
  /** Held stopped for good (its worker is being ended): no scan or eviction waits for it again. */
  halted: boolean;
  /** Its gate's progress when the host last released it. */
  progressMark: number;
  /** What its worker handed over (identifies this VM among VMs of the same name over time). */
  links: VmPoolLinks;
}

/** The pool, sharing and swap of one host. */
export class PoolHost {
  readonly pool: FramePool;
  readonly sharing: PageSharing;
  readonly swap: HostSwap | null;
  private readonly swapFile: SwapFile | null;
  private readonly vms = new Map<string, VmEntry>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private scanning = false;
  private seed = 1;
  /** The host's turn to stop VMs: the scanner, the policy's evictions and kills stop gates one at a time. */
  private turn: Promise<void> = Promise.resolve();
  /** Pages scanned per round (0: sharing off host-wide). */
  scanBudget: number;
  /** The activity sampler's period the VMs get (ms of VM execution time). */
  activityPeriodMs = DEFAULT_HOST_ACTIVITY_PERIOD_MS;
  /** Scan rounds skipped because a VM did not reach a safe point in time. */
  skippedRounds = 0;
  /** Scan rounds put off because a VM had not run since the last one. */
  deferredRounds = 0;

  /**
   * A pool of `poolBytes` (at most 4 GiB, see docs/memory.md), with host
   * swap to `swapPath` bounded at `swapBytes` when given. Throws
   * RangeError for a bad pool size and a one-line Error for a swap file
   * that cannot be created.
   */
  constructor(poolBytes: number, swapPath: string | null, swapBytes: number, scanBudget = DEFAULT_SCAN_BUDGET) {
    this.pool = new FramePool({ frames: Math.floor(poolBytes / FRAME_SIZE) - 1 });
    this.sharing = new PageSharing(this.pool);
    this.swapFile = swapPath !== null ? new SwapFile(swapPath, swapBytes) : null;
    this.swap = this.swapFile !== null ? new HostSwap(this.pool, this.swapFile, seededRng(0x5eed)) : null;
    this.scanBudget = scanBudget;
  }

  /** The handles a new VM's worker attaches to. */
  handles(): VmPoolHandles {
    return { pool: this.pool.handle(), swap: this.swap?.handle() ?? null, swapFile: this.swapFile?.handle() ?? null, seed: this.seed++, activityPeriodMs: this.activityPeriodMs };
  }

  /** Takes a started VM's table, gate and log: its pages join the scanner (if it shares) and host swap. */
  addVm(name: string, links: VmPoolLinks): void {
    const log = RemapLog.attach(links.log);
    const p2m = P2m.attach(this.pool, links.p2m);
    p2m.onRemap = (gpn, old) => log.push(gpn, old); // the host changes the table only while the VM is stopped
    const e: VmEntry = {
      name, p2m, gate: SafePointGate.attach(links.gate), log, sharing: links.sharing, run: links.run, halted: false, progressMark: -1, links,
      activity: new Float64Array(links.activity),
    };
    this.vms.set(name, e);
    this.sharing.register(p2m, links.sharing);
    this.swap?.register(p2m);
    if (this.timer === null && this.scanBudget > 0) {
      this.timer = setInterval(() => { void this.scanRound(); }, SCAN_PERIOD_MS);
      this.timer.unref();
    }
  }

  /**
   * Forgets a VM whose worker has ended, and frees its frames: the pages of
   * its table (swap slots too) and its control run. The host's thread does
   * it on its own thread, so the scanner never reads a table as it is
   * freed.
   */
  removeVm(name: string): void {
    const e = this.vms.get(name);
    if (e === undefined) return;
    this.vms.delete(name);
    this.sharing.unregister(e.p2m);
    // The scan itself is synchronous on this thread, so this never runs inside one; a round waiting for its
    // stop sees the VM gone and skips the scan. The table's swapped pages give their slots back through the
    // host's swap (its reclaimer), so it leaves host swap only after.
    releaseOnHost(this.pool, e.p2m, e.run);
    this.swap?.unregister(e.p2m);
  }

  /** The VM `from` is now called `to` (VmManager.rename); a scan round that listed it by its old name skips it. */
  renameVm(from: string, to: string): void {
    const e = this.vms.get(from);
    if (e === undefined) return;
    this.vms.delete(from);
    e.name = to;
    this.vms.set(to, e);
  }

  /** Runs `fn` in the host's turn to stop VMs (one stop at a time: a gate has one controller). */
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.turn.then(fn);
    this.turn = p.then(() => {}, () => {});
    return p;
  }

  /**
   * Stops the VMs named (those registered and not halted) at a safe point,
   * runs `fn` with them stopped, and releases them. Returns false (and
   * counts a skipped round) when one did not stop within STOP_TIMEOUT_MS
   * or one ended while the host waited; `fn` then does not run.
   */
  withStopped(names: readonly string[], fn: (vms: readonly { name: string; p2m: P2m }[]) => void): Promise<boolean> {
    return this.inTurn(async () => {
      const entries = names.map((n) => this.vms.get(n)).filter((e): e is VmEntry => e !== undefined && !e.halted);
      if (entries.length === 0) return true;
      const gates = entries.map((v) => v.gate);
      try {
        await SafePointGate.stopAll(gates, STOP_TIMEOUT_MS);
      } catch {
        this.skippedRounds++;
        return false;
      }
      try {
        // A VM that ended (or was halted) while we waited is not touched: the round is skipped.
        if (!entries.every((v) => this.vms.get(v.name) === v && !v.halted)) { this.skippedRounds++; return false; }
        fn(entries);
        return true;
      } finally {
        for (const v of entries) v.progressMark = v.gate.progress;
        SafePointGate.releaseAll(gates);
      }
    });
  }

  /** One scanner round: stop the sharing VMs at a safe point, scan, release. */
  async scanRound(): Promise<void> {
    if (this.scanning) return;
    const entries = [...this.vms.values()].filter((v) => v.sharing && !v.halted);
    if (entries.length === 0) return;
    // A VM that has not run since the last round is not stopped again yet: on a loaded host a thread woken by
    // the release may not be scheduled before the next round's request, and would never run (starvation).
    if (!entries.every((v) => this.ranSince(v))) { this.deferredRounds++; return; }
    const sharers = entries.map((v) => v.name);
    this.scanning = true;
    try {
      // The round's hashing runs with the VMs running; they stop only for the comparisons and merges.
      this.sharing.hashAhead(this.scanBudget);
      await this.withStopped(sharers, () => { this.sharing.scan(this.scanBudget); });
    } finally {
      this.scanning = false;
    }
  }

  /**
   * Stops a VM at a safe point and keeps it stopped, so that its worker can
   * be ended without holding the pool's lock (a worker ended inside an
   * allocation would leave the lock taken for every other VM). Resolves
   * true once it is held, false when it did not stop within `timeoutMs`
   * (the caller ends it anyway) or is not on the pool.
   */
  haltVm(name: string, links: VmPoolLinks, timeoutMs: number = STOP_TIMEOUT_MS): Promise<boolean> {
    return this.inTurn(async () => {
      const e = this.vms.get(name);
      if (e === undefined || e.links !== links) return false; // gone, or another VM of the same name
      if (e.halted) return true;
      e.halted = true; // from now on no scan or eviction includes it
      try {
        await e.gate.stop(timeoutMs);
        return true;
      } catch {
        return false;
      }
    });
  }

  /** Host-wide counters. */
  stats(): PoolHostStats {
    const p = this.pool.stats(), c = this.pool.controlStats(), s = this.swap?.stats();
    return {
      pool: { frames_total: p.frames_total, frames_used: p.frames_used, frames_free: p.frames_free, frames_shared: p.frames_shared, frames_control: c.frames_control, frames_high_water: p.frames_high_water },
      sharing: this.sharing.stats(),
      swap: { pages_out: s?.pages_out ?? 0, pages_in: s?.pages_in ?? 0, slots_total: s?.slots_total ?? 0, slots_used: s?.slots_used ?? 0 },
    };
  }

  /** A VM's estimated active fraction and completed sampling periods (1 and 0 until measured), or null. */
  activity(name: string): { fraction: number; periods: number } | null {
    const e = this.vms.get(name);
    return e === undefined ? null : { fraction: e.activity[0]!, periods: e.activity[1]! };
  }

  /**
   * The policy's swap request: evicts up to `pages` of VM `name`'s pages at
   * a safe point. Resolves to the pages swapped out (0 without host swap,
   * or when the VM did not stop in time).
   */
  async swapOut(name: string, pages: number): Promise<number> {
    const swap = this.swap;
    if (swap === null || pages <= 0) return 0;
    let n = 0;
    await this.withStopped([name], (vms) => { for (const v of vms) n += swap.evictFrom(v.p2m, pages); });
    return n;
  }

  /** Whether VM `name` ran guest code since `mark` (its gate's progress then), or waits idle. */
  private ranSince(e: VmEntry): boolean {
    return e.gate.progress !== e.progressMark || e.gate.idle;
  }

  /** Whether VM `name` is on the pool (its worker has started it and not yet ended). */
  has(name: string): boolean { return this.vms.has(name); }

  /** One VM's p2m counters (read from the shared table; exact while it is stopped, close while it runs). */
  vmStats(name: string): (P2mStats & { pages_sharing: number }) | null {
    const e = this.vms.get(name);
    if (e === undefined) return null;
    return { ...e.p2m.stats(), pages_sharing: this.sharing.vmStats(e.p2m).pages_sharing };
  }

  /** Stops the scanner and closes the swap file (the VMs have ended). */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.swapFile?.close();
  }
}
