/**
 * The sandbox's limits, enforced by the process VM's kernel and run loop
 * (the process runtime's cgroup): the container's memory (all its address
 * spaces together; beyond it the whole container is killed with SIGKILL,
 * status 137, as docker reports a cgroup OOM kill), its number of tasks
 * (clone fails with EAGAIN beyond it, as the pids controller makes fork
 * fail), its CPU share, and the PID namespace's protection of its init
 * (pid_namespaces(7): only signals init has a handler for reach it from
 * inside the namespace).
 */
import type { Kernel } from './kernel.js';
import type { ThreadGroup } from './kernel.js';
import type { SandboxLimits } from './sandbox.js';
import { SIGKILL } from './sys-abi.js';
import type { FrameBudget } from './address-space.js';
import { GuestMemoryError } from '../memory/guest-memory.js';
import { SIG_DFL } from './sys-signals.js';

/** Longest single throttling sleep (ns), so a long slice is paid back in steps. */
const MAX_THROTTLE_NS = 100_000_000;

/** Per-VM state of the limits. */
export class SandboxEnforcer implements FrameBudget {
  private lastNs = -1n;
  private kernel: Kernel | null = null;
  /** True once the memory limit has been exceeded (the container is then killed). */
  oomKilled = false;

  /** Limits `limits`; attach() gives it the VM's kernel. */
  constructor(readonly limits: SandboxLimits) {}

  /** Enforces the limits on the VM of kernel `k`. */
  attach(k: Kernel): void {
    this.kernel = k;
    k.sandbox = this;
    const cap = this.limits.memoryLimitBytes;
    if (cap !== undefined) k.memoryLimit = Math.min(k.memoryLimit, cap); // fork beyond the cap fails with ENOMEM
  }

  /**
   * A frame was newly backed: over the memory limit, the process touching it
   * dies at once (GuestMemoryError, caught by the run loop) and afterSlice
   * kills the rest of the container.
   */
  frameAdded(): void {
    const cap = this.limits.memoryLimitBytes, k = this.kernel;
    if (cap === undefined || k === null || this.oomKilled || k.committedBytes() <= cap) return;
    this.oomKilled = true;
    throw new GuestMemoryError(`container memory limit of ${cap} bytes reached`);
  }

  /** True if clone must fail with EAGAIN: the container has as many tasks as it may. */
  pidsExhausted(k: Kernel): boolean {
    const n = this.limits.pidsLimit;
    return n !== undefined && k.taskCount() >= n;
  }

  /**
   * True if a signal sent by a process of the container to `g` is dropped:
   * `g` is the namespace's init and has no handler for `sig` (the kernel's
   * sig_task_ignored for SIGNAL_UNKILLABLE; SIGKILL cannot have one).
   */
  initIgnores(k: Kernel, g: ThreadGroup, sig: number): boolean {
    if (!this.limits.pidNamespace || g !== k.root || sig === 0) return false;
    if (sig === SIGKILL) return true;
    const t = g.threads[0];
    const h = t?.sig.actions[sig]?.handler ?? SIG_DFL;
    return h === SIG_DFL;
  }

  /** After each scheduler slice: the memory limit (OOM kill), then the CPU share (a sleep). */
  afterSlice(k: Kernel): void {
    const cap = this.limits.memoryLimitBytes;
    if (cap !== undefined && k.rootStatus === null && (this.oomKilled || k.committedBytes() > cap)) {
      // Like a cgroup OOM kill of the container's init: everything dies, docker reports 137.
      this.oomKilled = true;
      const t = k.root.threads[0];
      k.log(`tsvm: container killed: out of memory (limit ${cap} bytes)`);
      if (t !== undefined) k.killGroup(t, SIGKILL, true);
      else k.rootStatus = 128 + SIGKILL;
      k.shutdown();
    }
    const cpus = this.limits.cpus;
    if (cpus === undefined || cpus >= 1) return;
    const now = k.host.monotonicNs();
    if (this.lastNs >= 0n) {
      // The slice ran for (now - lastNs); idle for that much times (1 - cpus) / cpus.
      const ran = Number(now - this.lastNs);
      let owe = (ran * (1 - cpus)) / cpus;
      while (owe > 0) { const s = Math.min(owe, MAX_THROTTLE_NS); k.host.sleepNs(s); owe -= s; }
    }
    this.lastNs = k.host.monotonicNs();
  }
}
