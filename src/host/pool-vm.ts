/**
 * A VM's side of the host's shared frame pool, on the VM's worker thread
 * (pool-host.ts is the host's side): the VM's guest RAM is a PooledRam on
 * the pool, with its p2m table, safe-point gate and remap log made here and
 * handed to the host; host swap writes through this thread's own view of
 * the swap file.
 *
 * The run loop's safe point polls the gate once per round. When the host
 * has stopped the VM to scan or evict, the poll blocks until the host
 * releases it, then the VM applies every remap the host logged (drops the
 * TLB entries and translated code of the frames it no longer maps) before
 * it runs guest code again. A VM whose harts all wait counts as stopped.
 */
import { FramePool } from '../memory/frame-pool.js';
import { HostSwap, seededRng } from '../memory/host-swap.js';
import { PooledRam, releaseOnHost } from '../memory/pooled-ram.js';
import { SafePointGate, RemapLog } from '../memory/safe-point.js';
import { ActivitySampler } from '../memory/activity.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { Vm } from '../vmm/vm.js';
import { SwapFile } from './swap-file.js';
import type { VmPoolHandles, VmPoolLinks } from './pool-host.js';

/** How often the activity sampler's clock advances, ms (at most the period). */
const SAMPLE_TICK_MS = 1000;

/** One VM's guest memory on the host's pool. */
export class VmPoolMemory {
  readonly pool: FramePool;
  readonly swap: HostSwap | null;
  readonly gate: SafePointGate;
  readonly log = new RemapLog();
  /** The VM's RAM, once the build has made it. */
  ram: PooledRam | null = null;
  private readonly name: string;
  private readonly sharing: boolean;
  private readonly participant: number;
  private readonly consumer: number;
  /** Float64 [active fraction, periods]: what the host's policy reads. */
  private readonly activity = new Float64Array(new SharedArrayBuffer(16));
  private readonly activityPeriodMs: number;
  private readonly seed: number;
  private sampleTimer: ReturnType<typeof setInterval> | null = null;

  /** Attaches this thread to the host's pool (and swap); `sharing`: the VM's pages may be merged with other pages. */
  constructor(h: VmPoolHandles, name: string, sharing: boolean) {
    this.pool = FramePool.attach(h.pool);
    this.swap = h.swap !== null && h.swapFile !== null ? HostSwap.attach(this.pool, h.swap, SwapFile.attach(h.swapFile), seededRng(h.seed)) : null;
    this.name = name;
    this.sharing = sharing;
    this.gate = new SafePointGate(name);
    this.participant = this.gate.join();
    this.consumer = this.log.addConsumer();
    this.activityPeriodMs = h.activityPeriodMs;
    this.seed = h.seed;
    this.activity[0] = 1; // unmeasured: fully active (never taxed)
  }

  /** VmServices.guestMemory: the VM's RAM on the pool. */
  guestMemory = (bytes: number, base: number, cpuSlots: number): GuestMemory => {
    const ram = new PooledRam(this.pool, bytes, base, cpuSlots, this.name);
    this.swap?.register(ram.p2m);
    ram.releasedByHost = true; // the host frees the frames once this thread is gone (PoolHost.removeVm)
    ram.onRelease = () => { this.stopSampling(); this.swap?.forget(ram.p2m); this.detach(); }; // the host frees its swap slots with its frames
    this.ram = ram;
    return ram;
  };

  /** Hooks the VM's run loop: the gate at each safe point, idle waits, and the remaps the host logged. */
  attach(vm: Vm): void {
    const ram = this.ram;
    if (ram === null) throw new Error(`${this.name}: the VM was built without pool memory`);
    const board = vm.board;
    const flushAll = (): void => {
      for (const v of board.vcpus) v.hart.flushTlbs();
      board.jit.for(ram)?.flush();
    };
    const drain = (): void => { this.log.drain(this.consumer, (_gpn, old) => ram.applyRemap(old), flushAll); };
    vm.safePoint = () => { if (this.gate.poll(this.participant)) drain(); };
    vm.idleHook = (idle) => {
      if (idle) this.gate.enterIdle(this.participant);
      else { this.gate.exitIdle(this.participant); drain(); }
    };
    this.startSampling(vm, ram);
  }

  /**
   * Estimates the VM's active memory (ESX §5.3) for the host's policy: a
   * sampler over the RAM's touch marks, advanced by the time the VM runs
   * (a paused or ended VM's clock stands still), in ticks between slices.
   */
  private startSampling(vm: Vm, ram: PooledRam): void {
    const sampler = new ActivitySampler(ram.p2m.ramPages, ram.touches, { periodMs: this.activityPeriodMs, seed: this.seed });
    const tickMs = Math.min(SAMPLE_TICK_MS, this.activityPeriodMs);
    this.sampleTimer = setInterval(() => {
      if (vm.state !== 'running') return;
      sampler.advance(tickMs);
      this.activity[0] = sampler.activeFraction();
      this.activity[1] = sampler.periods;
    }, tickMs);
    this.sampleTimer.unref();
  }

  private stopSampling(): void {
    if (this.sampleTimer !== null) clearInterval(this.sampleTimer);
    this.sampleTimer = null;
  }

  /** The handles the host attaches to (after the build). */
  links(): VmPoolLinks {
    if (this.ram === null) throw new Error(`${this.name}: no pool memory yet`);
    return {
      p2m: this.ram.p2m.handle(), gate: this.gate.handle(), log: this.log.handle(), sharing: this.sharing, run: this.ram.controlRun,
      activity: this.activity.buffer as SharedArrayBuffer,
    };
  }

  /**
   * Frees the frames of a VM the host never took over (one built ahead of
   * time and then dropped for another configuration, or a build that
   * failed): no other thread knows its table, so this thread frees its
   * pages and control run itself. The VM must not run.
   */
  discard(): void {
    const ram = this.ram;
    if (ram === null || this.discarded) return;
    this.discarded = true;
    releaseOnHost(this.pool, ram.p2m, ram.controlRun); // its swapped pages' slots go back through this thread's swap
    ram.release(); // then it leaves the swap and the gate (releasedByHost: release itself frees nothing)
  }
  private discarded = false;

  /** Leaves the gate (the VM ended: the host no longer waits for it; it touches no guest memory after this). */
  detach(): void {
    if (this.left) return;
    this.left = true;
    this.gate.leave(this.participant);
  }
  private left = false;
}
