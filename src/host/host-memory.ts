/**
 * The host's machine memory, as `tsvm host stats --json` and the memory
 * fields of `tsvm vm stats --json` report it (issue 14 point 7's stable
 * contract; pages and frames are 4 KiB). One object per host, over the
 * shared frame pool (pool-host.ts): every VM's guest RAM is on it, with
 * the sharing scanner and host swap (docs/memory.md).
 */
import { PoolHost, type VmPoolHandles, type VmPoolLinks } from './pool-host.js';
import { HostPolicy, type HostPolicyStats, type VmPolicyStats } from './host-policy.js';
import type { VmMemoryStats } from './vm-worker-protocol.js';

/** Bytes of one pool frame (= one guest page; RISC-V privileged spec §12.3 base pages). */
export const FRAME_BYTES = 4096;
/** The swap file's bound, as a multiple of the pool (a host that swaps more than this is thrashing). */
export const SWAP_PER_POOL = 2;

/** The `pool` part of host stats. */
export interface PoolStats { frames_total: number; frames_used: number; frames_free: number; frames_control: number }
/** The `sharing` part of host stats (KSM's counter names, Documentation/admin-guide/mm/ksm.rst). */
export interface SharingStats { pages_shared: number; pages_sharing: number; pages_unshared: number; pages_volatile: number; pages_zero: number; full_scans: number }
/** The `swap` part of host stats. */
export interface SwapStats { pages_out: number; pages_in: number; slots_total: number; slots_used: number }
/** `tsvm host stats --json`. */
export interface HostMemoryStats { pool: PoolStats; sharing: SharingStats; swap: SwapStats; policy: HostPolicyStats }

/** Host memory options (`tsvm host start`). */
export interface HostMemoryOptions {
  /** The idle memory tax, 0..0.99 (default 0.75). */
  idleTax?: number;
  /** The activity sampler's period, ms (default DEFAULT_HOST_ACTIVITY_PERIOD_MS). */
  activityPeriodMs?: number;
  /** Page sharing host-wide, opt-in (default off: the scanner never runs, whatever each VM's `-sharing` says). */
  pageSharing?: boolean;
}

/** The host's memory: the pool, and each VM's table on it. */
export class HostMemory {
  /** Pool size in bytes (--pool). */
  readonly poolBytes: number;
  /** The swap file's path (--swap), or null. */
  readonly swapPath: string | null;
  /** The pool, the scanner and swap. */
  readonly host: PoolHost;
  /** The allocation policy's loop (balloon targets, swap requests, admission). */
  readonly policy: HostPolicy;
  private readonly ramPages = new Map<string, number>();
  private readonly last = new Map<string, VmMemoryStats>();

  /** A pool of `poolBytes`, swapping to `swapPath` (bounded at SWAP_PER_POOL pools) when given. */
  constructor(poolBytes: number, swapPath: string | null, opts: HostMemoryOptions = {}) {
    this.poolBytes = poolBytes;
    this.swapPath = swapPath;
    this.host = new PoolHost(poolBytes, swapPath, SWAP_PER_POOL * poolBytes);
    if (opts.pageSharing !== true) this.host.scanBudget = 0;
    if (opts.activityPeriodMs !== undefined) this.host.activityPeriodMs = opts.activityPeriodMs;
    this.policy = new HostPolicy(this.host, opts.idleTax);
  }

  /** Why a VM may not start on this host (admission control, ESX §6.2), or null. */
  admit(name: string, ramBytes: number, reservationBytes: number, shares: number | undefined): string | null {
    return this.policy.admit(name, ramBytes, reservationBytes, shares);
  }

  /** What a worker needs to put a VM's RAM on the pool. */
  handles(): VmPoolHandles { return this.host.handles(); }

  /** Registers an admitted VM of `ramBytes` bytes of RAM (before its worker has built it) with the policy. */
  addVm(name: string, ramBytes: number, reservationBytes = 0, shares?: number): void {
    this.policy.add(name, ramBytes, reservationBytes, shares);
    this.ramPages.set(name, Math.floor(ramBytes / FRAME_BYTES));
  }

  /** The VM's worker built it on the pool: its table joins the scanner and swap. */
  attachVm(name: string, links: VmPoolLinks): void { this.host.addVm(name, links); }

  /** Records a VM's latest counters (kept after the VM ends). */
  update(name: string, s: VmMemoryStats): void { this.last.set(name, { ...s }); }

  /** The VM's worker has ended: its frames go back to the pool. */
  removeVm(name: string): void {
    const s = this.vmStats(name);
    if (s !== null) this.last.set(name, s);
    this.host.removeVm(name);
    this.policy.remove(name);
    this.ramPages.delete(name);
  }

  /** The VM `from` is now called `to` (VmManager.rename): its policy entry, pool entry and counters follow. */
  renameVm(from: string, to: string): void {
    this.policy.rename(from, to);
    this.host.renameVm(from, to);
    const pages = this.ramPages.get(from);
    if (pages !== undefined) { this.ramPages.delete(from); this.ramPages.set(to, pages); }
    const last = this.last.get(from);
    if (last !== undefined) { this.last.delete(from); this.last.set(to, last); }
  }

  /** A VM's memory counters (live from its table while it holds memory, else its last ones), or null for an unknown VM. */
  vmStats(name: string): VmMemoryStats | null {
    const s = this.host.vmStats(name);
    if (s !== null) {
      return { ram_pages: s.ram_pages, pages_private: s.pages_private, pages_shared: s.pages_shared, pages_zero: s.pages_zero, pages_ballooned: s.pages_ballooned, pages_swapped: s.pages_swapped };
    }
    const l = this.last.get(name);
    if (l !== undefined) return { ...l };
    const pages = this.ramPages.get(name);
    return pages === undefined ? null : { ram_pages: pages, pages_private: 0, pages_shared: 0, pages_zero: 0, pages_ballooned: 0, pages_swapped: 0 };
  }

  /** The host stats contract. */
  stats(): HostMemoryStats {
    const s = this.host.stats();
    return {
      pool: { frames_total: s.pool.frames_total, frames_used: s.pool.frames_used, frames_free: s.pool.frames_free, frames_control: s.pool.frames_control },
      sharing: {
        pages_shared: s.sharing.pages_shared, pages_sharing: s.sharing.pages_sharing, pages_unshared: s.sharing.pages_unshared,
        pages_volatile: s.sharing.pages_volatile, pages_zero: s.sharing.pages_zero, full_scans: s.sharing.full_scans,
      },
      swap: { pages_out: s.swap.pages_out, pages_in: s.swap.pages_in, slots_total: s.swap.slots_total, slots_used: s.swap.slots_used },
      policy: this.policy.stats(),
    };
  }

  /** A VM's policy view (reservation, shares, active fraction, targets), or null. */
  vmPolicy(name: string): VmPolicyStats | null { return this.policy.vmStats(name); }

  /** Stops the scanner and the policy, and closes the swap file (the host is stopping). */
  close(): void { this.policy.close(); this.host.close(); }
}
