/**
 * The host's allocation policy at work (issue 14 point 6; docs/memory.md,
 * "Allocation policy"): every POLICY_PERIOD_MS the host feeds the
 * AllocationPolicy (src/memory/alloc-policy.ts) each VM's frames, balloon,
 * swapped pages and active fraction (sampled on the VM's own thread,
 * pool-vm.ts), then carries out what it decides:
 *  - a balloon target changed: sent to the VM's balloon device, as QMP
 *    `balloon` would (the guest's driver inflates or deflates);
 *  - a swap request: the host stops the VM at a safe point and evicts that
 *    many of its pages to host swap (PoolHost.swapOut);
 *  - in the low state, a VM above its target is blocked (ESX §6.3: "the
 *    system ... blocks execution of all VMs that are above their target
 *    allocations"): the host pauses it, and resumes it at the first tick
 *    that no longer blocks it. A VM the policy paused shows as paused with
 *    `policy.blocked` set; one the user paused is left alone.
 * The balloon comes first; swap takes what the balloon cannot (no driver,
 * a balloon at its maximum, or one lagging its target past the grace
 * period) and everything in the hard and low states (ESX §6.3).
 *
 * A balloon size set by hand (`tsvm vm balloon N SIZE`) pins that VM's
 * balloon: the policy leaves it alone until `tsvm vm balloon N auto`.
 */
import { AllocationPolicy, type PolicyTick, type PolicyVm, type MemoryState } from '../memory/alloc-policy.js';
import type { PoolHost } from './pool-host.js';

/**
 * Most of a VM's RAM its balloon may hold: 65%, ESX's default
 * (sched.mem.maxmemctl; Waldspurger §3.2 notes that a balloon is limited
 * so that the guest keeps enough to run), beyond which host swap reclaims.
 */
export const BALLOON_MAX_FRACTION = 0.65;
/** How often the policy runs, ms (ESX re-evaluates its targets periodically; a tuning choice). */
export const POLICY_PERIOD_MS = 1000;

/** Per-VM policy inputs and outputs, as `tsvm vm stats --json` reports them under `policy`. */
export interface VmPolicyStats {
  reservation_pages: number; limit_pages: number; shares: number; active_fraction: number;
  target_pages: number; balloon_target_pages: number; swap_requested_pages: number; balloon_pinned: boolean;
  /** Paused by the policy (low state, above its target) until a tick no longer blocks it. */
  blocked: boolean;
}

/** Host-wide policy state, as `tsvm host stats --json` reports it under `policy`. */
export interface HostPolicyStats { state: MemoryState; idle_tax: number; ticks: number; swapped_out_by_policy: number; blocked_vms: number }

interface Entry { pv: PolicyVm; ramBytes: number; sent: number; pinned: boolean; busy: boolean; blocked: boolean }

/** Sets a VM's balloon to `bytes` of logical memory (QMP balloon's value); rejects on failure. */
export type SetBalloon = (name: string, bytes: number) => Promise<void>;
/** Blocks (pauses, if it runs) or unblocks (resumes, if paused) a VM; resolves true when it changed the VM's state. */
export type SetBlocked = (name: string, blocked: boolean) => Promise<boolean>;

/** The policy loop of one host. */
export class HostPolicy {
  /** The policy's model (targets, state, tax). */
  readonly policy: AllocationPolicy;
  /** Set by the VM manager: how a balloon target reaches a VM. */
  setBalloon: SetBalloon = () => Promise.resolve();
  /** Set by the VM manager: how a blocked VM is paused and resumed. */
  setBlocked: SetBlocked = () => Promise.resolve(false);
  private readonly host: PoolHost;
  private readonly vms = new Map<string, Entry>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private ticks = 0;
  private swappedOut = 0;
  private running = false;
  /** The last tick's result, or null. */
  last: PolicyTick | null = null;

  /** A policy over `host`'s pool; `idleTax` is tau (0..0.99, default 0.75). */
  constructor(host: PoolHost, idleTax?: number) {
    this.host = host;
    const swapSlots = host.swap?.stats().slots_total ?? 0;
    // With host swap, every promised page must fit in pool plus swap (nothing can be lost); without it, only the
    // reservations must fit in the pool (overcommit then rests on sharing and ballooning).
    this.policy = new AllocationPolicy({ poolFrames: host.pool.framesTotal, swapSlots, idleTax, overcommitNeedsSwap: swapSlots > 0 });
  }

  /** Why a VM of this size, reservation and shares may not start (null: it may). */
  admit(name: string, ramBytes: number, reservationBytes: number, shares: number | undefined): string | null {
    return this.policy.admit({ name, limit: pages(ramBytes), reservation: pages(reservationBytes), shares });
  }

  /** Adds an admitted VM (throws RangeError with the refusal otherwise). */
  add(name: string, ramBytes: number, reservationBytes: number, shares: number | undefined): void {
    const limit = pages(ramBytes);
    const pv = this.policy.add({ name, limit, reservation: pages(reservationBytes), shares, balloonMax: Math.floor(limit * BALLOON_MAX_FRACTION) });
    this.vms.set(name, { pv, ramBytes, sent: 0, pinned: false, busy: false, blocked: false });
    if (this.timer === null) {
      this.timer = setInterval(() => { void this.tick(); }, POLICY_PERIOD_MS);
      this.timer.unref();
    }
  }

  /** Forgets a VM that ended. */
  remove(name: string): void {
    const e = this.vms.get(name);
    if (e === undefined) return;
    this.policy.remove(e.pv);
    this.vms.delete(name);
  }

  /** The VM `from` is now called `to` (VmManager.rename). */
  rename(from: string, to: string): void {
    const e = this.vms.get(from);
    if (e === undefined) return;
    this.vms.delete(from);
    e.pv.name = to;
    this.vms.set(to, e);
  }

  /** A hand-set balloon pins the VM's balloon (`auto`: false hands it back to the policy). */
  pin(name: string, pinned: boolean): void {
    const e = this.vms.get(name);
    if (e !== undefined) e.pinned = pinned;
  }

  /** One round: inputs from the pool and the VMs' samplers, the policy's tick, then its balloon targets and swap requests. */
  async tick(): Promise<PolicyTick | null> {
    if (this.running) return null;
    this.running = true;
    try {
      const attached: Entry[] = [];
      for (const [name, e] of this.vms) {
        const s = this.host.vmStats(name), a = this.host.activity(name);
        if (s === null || a === null) continue; // not on the pool yet (starting) or gone
        const pv = e.pv;
        pv.allocated = s.pages_private + s.pages_shared;
        pv.balloonSize = s.pages_ballooned;
        pv.swapped = s.pages_swapped;
        pv.activeFraction = a.fraction;
        pv.hasBalloon = !e.pinned;
        attached.push(e);
      }
      const r = this.policy.tick(performance.now(), this.host.pool.framesFree);
      this.last = r;
      this.ticks++;
      const work: Promise<void>[] = [];
      for (const e of attached) {
        const pv = e.pv, name = pv.name;
        if (!e.pinned && pv.balloonTarget !== e.sent && !e.busy) {
          const target = pv.balloonTarget;
          e.busy = true;
          work.push(this.setBalloon(name, e.ramBytes - target * 4096).then(() => { e.sent = target; }, () => {}).finally(() => { e.busy = false; }));
        }
        if (pv.swapOut > 0) work.push(this.host.swapOut(name, pv.swapOut).then((n) => { this.swappedOut += n; }));
        if (pv.blocked && !e.blocked) {
          work.push(this.setBlocked(name, true).then((paused) => { if (paused) e.blocked = true; }, () => {}));
        } else if (!pv.blocked && e.blocked) {
          e.blocked = false;
          work.push(this.setBlocked(name, false).then(() => {}, () => {}));
        }
      }
      await Promise.all(work);
      return r;
    } finally {
      this.running = false;
    }
  }

  /** One VM's policy view, or null. */
  vmStats(name: string): VmPolicyStats | null {
    const e = this.vms.get(name);
    if (e === undefined) return null;
    const pv = e.pv;
    return {
      reservation_pages: pv.reservation, limit_pages: pv.limit, shares: pv.shares, active_fraction: round3(pv.activeFraction),
      target_pages: pv.target, balloon_target_pages: pv.balloonTarget, swap_requested_pages: pv.swapOut, balloon_pinned: e.pinned,
      blocked: e.blocked,
    };
  }

  /** Host-wide policy state. */
  stats(): HostPolicyStats {
    let blocked = 0;
    for (const e of this.vms.values()) if (e.blocked) blocked++;
    return { state: this.policy.state, idle_tax: this.policy.idleTax, ticks: this.ticks, swapped_out_by_policy: this.swappedOut, blocked_vms: blocked };
  }

  /** Stops the loop (the host is stopping). */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/** Whole 4 KiB pages in `bytes` (RISC-V privileged spec §12.3 base pages). */
function pages(bytes: number): number { return Math.floor(bytes / 4096); }

function round3(x: number): number { return Math.round(x * 1000) / 1000; }
