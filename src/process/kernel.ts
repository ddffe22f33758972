/**
 * The process VM's kernel: the task table, the process tree, sleeping and
 * waking, and a cooperative round-robin scheduler over the guest tasks,
 * which all run inside this one host thread (run-process.ts drives it).
 *
 * Tasks and processes. A task (SysCtx) is one guest thread with its own
 * hart; a process (ThreadGroup) is the set of threads sharing a thread
 * group id, with a parent, children, a process group and a session. When
 * the last thread of a process exits, the process becomes a zombie that
 * its parent reaps with wait4/waitid; its parent gets its exit signal
 * (SIGCHLD). Orphans are reparented to a virtual init (pid 1, as getppid
 * reports) that reaps them at once, as Linux's init would. The whole VM
 * ends when the root process (the program `tsvm exec` started) ends;
 * processes still running then are killed.
 *
 * Sleeping. A syscall that must wait (a read of an empty pipe, wait4 with
 * live children, a futex wait, a sleep, a vfork parent) calls `block` with
 * a Wait and returns BLOCKED: the task's pc stays on its ecall, so when the
 * wait ends the task simply executes the syscall again ("retries") and
 * this time finds what it waited for; a deadline passed, the retry sees
 * `retryDeadline` behind it. A signal that would run a handler or kill the
 * process ends the wait instead: the syscall fails with EINTR, or is
 * restarted after a SA_RESTART handler. Handlers sleep only if another
 * task could end the wait (`canSleep`); as the only task they behave as
 * the single-process VM always did (block the host for a sleep or for
 * terminal input, read EOF from a pipe nobody else can write).
 *
 * Idling. When no task can run, the kernel sleeps the host until the
 * earliest deadline; tasks waiting for host input (terminal, host pipe)
 * are polled meanwhile, and if nothing else could ever happen one of them
 * is retried as a last resort, doing a blocking host read (not while ports
 * are published: then the kernel keeps polling, sleeping on the bridge). If every task
 * waits for another (a deadlock), the most recent wait that has a
 * single-task meaning is retried as a last resort too.
 */
import type { SysCtx } from './sys-context.js';
import type { HostOs } from './host-os.js';
import type { AddressSpace } from './address-space.js';
import type { Pipe } from './fd-table.js';
import { GuestMemoryError, type GuestMemory } from '../memory/guest-memory.js';
import { newProcessRam, type ProcessOptions } from './guest-process.js';
import { E, SIGCHLD, SIGKILL, signalName } from './sys-abi.js';
import {
  deliverPending, actionableSignal, raiseSignal, applyStops, bit, SA_RESTART, SA_NOCLDWAIT, SA_NOCLDSTOP, STOP_SIGNALS,
  SIG_DFL, SIG_IGN, SI_USER, SI_TKILL, SI_KERNEL,
} from './sys-signals.js';
import { flushSharedMappings } from './sys-memory.js';
import type { SandboxEnforcer } from './sandbox-limits.js';
import { NetNamespace, type Socket } from './netns.js';
import { earliestRealTimer, fireTimers, type IntervalTimer } from './sys-itimer.js';

/** Returned by a handler whose task went to sleep: the syscall is retried (or interrupted) later. */
export const BLOCKED = -0x200_0000_0000;

/** Most tasks (threads, processes and unreaped zombies) the VM holds; beyond that clone fails with EAGAIN. */
export const MAX_TASKS = 256;

/** Instructions a task may run before the scheduler switches to another runnable task. */
export const TIME_SLICE = 100_000;

/** How often a task waiting for host input polls it while other tasks run (ns). */
const HOST_POLL_NS = 2_000_000n;
/** Longest host sleep while tasks wait for host input and others for a deadline (ns). */
const IDLE_POLL_NS = 10_000_000n;
/** RAM blocks of ended address spaces kept for reuse (a fresh WebAssembly.Memory is costly: mapping and GC). */
const RAM_POOL_MAX = 8;
/** Blocks that had more than this committed are not pooled (their pages would stay resident). */
const RAM_POOL_MAX_COMMITTED = 64 * 1024 * 1024;
/** pid of the virtual init that adopts orphans (include/linux/sched.h: the child reaper is pid 1). */
export const INIT_PID = 1;
/** Highest pid handed out before wrapping (include/linux/threads.h PID_MAX_LIMIT on 64-bit). */
const PID_MAX = 4_194_304;
/** Where pid allocation resumes after wrapping (kernel/pid.c RESERVED_PIDS). */
const PID_WRAP = 300;

/** Why a blocked task sleeps and how the sleep ends. */
export interface Wait {
  /** True once the syscall should be retried (polled by the scheduler). */
  ready?: () => boolean;
  /** CLOCK_MONOTONIC ns after which the syscall is retried (and sees `retryDeadline` passed). */
  deadline?: bigint;
  /** On a signal with a handler: restart the syscall if the handler has SA_RESTART (else -EINTR). */
  restart: boolean;
  /** Waits for host input: polled by retrying; retried as a last resort (may block the host) when all else sleeps. */
  host?: boolean;
  /** A host wait that polling ends (a non-blocking read works): it never needs a last-resort blocking read. */
  polled?: boolean;
  /** Has a single-task meaning: on a deadlock it is retried as a last resort. */
  legacy?: boolean;
  /** Instead of a retry, the syscall completes with this result once `ready` (vfork's parent). */
  complete?: () => number;
  /** Only SIGKILL ends the wait early (vfork's parent). */
  killable?: boolean;
  /** Runs when the wait ends without a retry (a signal, the task's death). */
  cancel?: () => void;
}

/** wait(2) status of a process that exited with `code`. */
export const exitedStatus = (code: number): number => (code & 0xff) << 8;
/** The shell-style status (code, or 128 + signal) of a wait(2) status. */
export const shellStatus = (ws: number): number => ((ws & 0x7f) === 0 ? (ws >> 8) & 0xff : 128 + (ws & 0x7f));

/** A process: a thread group with its place in the process tree. */
export class ThreadGroup {
  /** The parent process, or null for the root and for orphans (adopted by the virtual init). */
  parent: ThreadGroup | null = null;
  /** Children, live and zombie (until reaped). */
  readonly children = new Set<ThreadGroup>();
  /** Live threads; the first is the leader. */
  readonly threads: SysCtx[] = [];
  /** The status of exit(2) by the main thread, used if the process ends without exit_group. */
  leaderCode = 0;
  /** Set by exit_group or a fatal signal: the process's wait status. */
  groupStatus: number | null = null;
  /** wait(2) status once every thread has ended (the process is then a zombie until reaped). */
  waitStatus: number | null = null;
  /** True after execve (setpgid by the parent then fails with EACCES). */
  execed = false;
  /** For a CLONE_VFORK child: false until it execs or exits (its parent sleeps until then). */
  vforkDone: boolean | null = null;
  /** True while stopped by a stop signal (its tasks do not run until SIGCONT or SIGKILL). */
  stopped = false;
  /** The stop signal not yet reported to a WUNTRACED wait (0: none). */
  stopReport = 0;
  /** A continue not yet reported to a WCONTINUED wait. */
  contReport = false;
  /** How many times the process has stopped (a wait can tell it was stopped and continued since). */
  stops = 0;
  /** Started by the runtime in the running VM (runtime-control.ts): its parent is outside, as the root's. */
  spawned = false;
  /** Host time its threads have run, in ns (the run loop adds each slice). */
  cpuNs = 0;
  /** Its interval timers by `which` (sys-itimer.ts), null when disarmed; a fork's child starts with none. */
  readonly itimers: (IntervalTimer | null)[] = [null, null, null];
  /** Told the process's wait status once its last thread has ended (runtime-control.ts), or null. */
  onEnd: ((ws: number) => void) | null = null;

  /** A process with id `tgid`, in process group `pgid` and session `sid`, signalling its parent with `exitSignal`. */
  constructor(readonly tgid: number, public pgid: number, public sid: number, readonly exitSignal: number) {}
}

/** The VM-wide process table and scheduler. */
export class Kernel {
  /** Live tasks in round-robin order. */
  readonly tasks: SysCtx[] = [];
  /** Processes by tgid: live ones and zombies. */
  readonly groups = new Map<number, ThreadGroup>();
  /** The process `tsvm exec` started. */
  root!: ThreadGroup;
  /** Once the root process has ended: the VM's shell-style exit status. */
  rootStatus: number | null = null;
  /** The terminal's foreground process group (TIOCGPGRP / TIOCSPGRP). */
  fgPgrp = 0;
  /** Guest instructions retired by all tasks. */
  instructions = 0;
  /** Set by a syscall that wants the scheduler to switch tasks (sched_yield). */
  resched = false;
  /** Most bytes of guest RAM all address spaces together may commit; fork fails with ENOMEM beyond. */
  memoryLimit = 4 * 1024 ** 3;
  /** Processes with an interval timer armed (sys-itimer.ts). */
  readonly timed = new Set<ThreadGroup>();
  /** The container's limits and PID namespace (sandbox-limits.ts), or null outside a container. */
  sandbox: SandboxEnforcer | null = null;
  /** The VM's network namespace: its sockets, loopback only, and published ports (netns.ts). */
  readonly net = new NetNamespace();
  /** The umask the host process has (applied when switching between processes). */
  hostUmask = -1;
  /** Inode numbers handed to pipes, the same in every process of the VM (fstat, /proc/self/fd). */
  readonly pipeInodes = new WeakMap<Pipe, number>();
  /** Inode numbers handed to sockets (fstat, /proc/self/fd). */
  readonly socketInodes = new WeakMap<Socket, number>();
  /** The next pipe inode number (an arbitrary start, far from the host's own small ones). */
  nextPipeInode = 100000;
  /** The siginfo rt_sigqueueinfo is sending, for raiseSignal while the send is under way (sys-signals.ts). */
  stagedSigInfo: Uint8Array | null = null;
  /** Set to -EAGAIN by raiseSignal when it refuses to queue (read by sys-signals.ts's sendChecked). */
  raiseRefused = 0;
  private readonly byTid = new Map<number, SysCtx>();
  private readonly futexes = new WeakMap<AddressSpace, Map<number, SysCtx[]>>();
  private readonly ramPool: GuestMemory[] = [];
  private cursor = 0;
  private seq = 0;
  private nextPid = 0;
  private deadlockWarned = false;
  /**
   * Polls the runtime's input (an emulated terminal's master, sys-tty.ts)
   * without blocking, or null. With one, tasks may always sleep (input can
   * end any wait) and the idle kernel sleeps in short steps polling it.
   */
  poller: (() => void) | null = null;
  /** With a poller: how the idle kernel sleeps up to `ns` (waking early for runtime input); null: a plain host sleep. */
  idleWait: ((ns: number) => void) | null = null;
  private lastPoll = 0n;

  constructor(readonly host: HostOs, readonly log: (line: string) => void) {}

  /** Registers the root task (its pid is the process id `tsvm exec` chose). */
  addRoot(c: SysCtx): void {
    const pid = c.proc.pid;
    const g = new ThreadGroup(pid, pid, pid, SIGCHLD);
    this.root = g;
    this.groups.set(pid, g);
    this.attach(c, g);
    this.fgPgrp = pid;
    this.nextPid = pid + 1;
    this.hostUmask = c.umask;
    this.memoryLimit = Math.max(this.memoryLimit, 2 * c.proc.opts.memoryBytes);
  }

  /** Registers a process the runtime started in the VM (runtime-control.ts): its own session, no parent in the VM. */
  addSpawned(c: SysCtx): ThreadGroup {
    const pid = c.proc.pid;
    const g = new ThreadGroup(pid, pid, pid, 0);
    g.spawned = true;
    this.groups.set(pid, g);
    this.attach(c, g);
    return g;
  }

  /** Registers a new thread of process `g`. */
  addThread(c: SysCtx, g: ThreadGroup): void {
    this.attach(c, g);
  }

  /** Registers a new process whose parent is `parent` (or its parent with CLONE_PARENT). */
  addProcess(c: SysCtx, parent: SysCtx, exitSignal: number, parentsParent: boolean): ThreadGroup {
    const pg = parent.group;
    const g = new ThreadGroup(c.proc.pid, pg.pgid, pg.sid, exitSignal);
    g.parent = parentsParent ? pg.parent : pg;
    g.parent?.children.add(g);
    this.groups.set(g.tgid, g);
    this.attach(c, g);
    return g;
  }

  private attach(c: SysCtx, g: ThreadGroup): void {
    c.group = g;
    g.threads.push(c);
    this.tasks.push(c);
    this.byTid.set(c.tid, c);
  }

  /** A fresh process or thread id. */
  allocPid(): number {
    for (let tries = 0; tries < PID_MAX; tries++) {
      const p = this.nextPid;
      this.nextPid = p >= PID_MAX - 1 ? PID_WRAP : p + 1;
      if (p <= INIT_PID || this.byTid.has(p) || this.groups.has(p)) continue;
      let used = false;
      for (const g of this.groups.values()) if (g.pgid === p || g.sid === p) { used = true; break; }
      if (!used) return p;
    }
    return -1;
  }

  /** Tasks plus unreaped zombies: what MAX_TASKS limits. */
  taskCount(): number {
    let zombies = 0;
    for (const g of this.groups.values()) if (g.waitStatus !== null) zombies++;
    return this.tasks.length + zombies;
  }

  /** Bytes of guest RAM committed by all live address spaces. */
  committedBytes(): number {
    const seen = new Set<AddressSpace>();
    let n = 0;
    for (const t of this.tasks) if (!seen.has(t.mem)) { seen.add(t.mem); n += t.mem.committedBytes; }
    return n;
  }

  /**
   * A zeroed RAM block of `size` bytes for a new address space: a pooled
   * one, or a fresh one made by `opts.memory` (may throw RangeError).
   */
  takeRam(size: number, opts: ProcessOptions): GuestMemory {
    const i = this.ramPool.findIndex((r) => r.size === size);
    if (i >= 0) return this.ramPool.splice(i, 1)[0]!;
    return newProcessRam(opts, size);
  }

  /**
   * Once no task uses `mem` (its last user exited or exec'd): zeroes the
   * frames it touched and keeps its RAM for reuse, or gives the RAM back to
   * its owner (GuestMemory.release) when the pool of blocks is full.
   */
  releaseMemory(mem: AddressSpace): void {
    if (this.tasks.some((t) => t.mem === mem) || this.ramPool.includes(mem.ram)) return;
    const used = mem.committedBytes;
    if (this.ramPool.length < RAM_POOL_MAX && used <= RAM_POOL_MAX_COMMITTED) {
      try {
        mem.ram.zero(mem.ram.base, used);
        this.ramPool.push(mem.ram);
        return;
      } catch (e) {
        if (!(e instanceof GuestMemoryError)) throw e; // a page that cannot be had: the block is not reused
      }
    }
    mem.ram.release?.();
  }

  /** The last task using `c`'s address space leaves it (exit, execve): writes back its shared mappings and closes their files. */
  dropMappings(c: SysCtx): void {
    flushSharedMappings(c);
    const fds = new Set(c.shared.map((m) => m.hostFd));
    for (const fd of fds) if (fd >= 0) this.host.close(fd);
    c.shared = [];
  }

  /** The task with thread id `tid`, if live. */
  task(tid: number): SysCtx | undefined { return this.byTid.get(tid); }

  /** The process with id `pid` (live or zombie). */
  process(pid: number): ThreadGroup | undefined { return this.groups.get(pid); }

  /** True if a task other than `c` uses `c`'s address space (a thread or a CLONE_VM child). */
  sharesMemory(c: SysCtx, mem = c.mem): boolean {
    return this.tasks.some((t) => t !== c && t.mem === mem);
  }

  /** getppid(2) for task `c`. */
  ppid(c: SysCtx): number {
    if (c.group === this.root || c.group.spawned) return c.id.ppid;
    return c.group.parent?.tgid ?? INIT_PID;
  }

  // ---- sleeping ----

  /** True if task `c` may sleep: another task or a timer could end its wait, and it is not being retried as a last resort. */
  canSleep(c: SysCtx): boolean {
    return (this.tasks.length > 1 || this.poller !== null || this.timed.size > 0) && !c.lastResort;
  }

  /** Puts `c` to sleep on `w`; the handler returns the BLOCKED this gives. Call only if canSleep(c). */
  block(c: SysCtx, w: Wait): number {
    c.wait = w;
    c.blockSeq = ++this.seq;
    if (w.host === true) c.pollAt = this.host.monotonicNs() + HOST_POLL_NS;
    return BLOCKED;
  }

  /** The absolute deadline of a wait for `ns`: the one saved when the task is retrying, else from now. */
  deadline(c: SysCtx, ns: bigint): bigint {
    return c.retryDeadline ?? this.host.monotonicNs() + ns;
  }

  /**
   * Blocks the host until the monotonic clock reaches `deadline`. With a
   * host bridge (published ports, a container network) it sleeps on the
   * bridge a step at a time and moves its traffic, so that a connection to
   * this VM is taken (or refused) while its processes sleep.
   */
  sleepUntil(deadline: bigint): void {
    const STEP = 1_000_000_000_000n; // keep each host sleep within the timer's range
    for (let left = deadline - this.host.monotonicNs(); left > 0n; left = deadline - this.host.monotonicNs()) {
      if (this.net.external) this.net.waitExternal(Number(left > IDLE_POLL_NS ? IDLE_POLL_NS : left) / 1e6);
      else this.host.sleepNs(Number(left > STEP ? STEP : left));
    }
  }

  // ---- scheduling ----

  /** The next task to run (round robin), waking sleepers whose wait ended; null if none can run now. */
  next(): SysCtx | null {
    let now = -1n;
    if (this.poller !== null) {
      now = this.host.monotonicNs();
      if (now - this.lastPoll >= HOST_POLL_NS) { this.lastPoll = now; this.poller(); }
    }
    if (this.timed.size > 0) { if (now < 0n) now = this.host.monotonicNs(); fireTimers(this, now); }
    for (let i = 1; i <= this.tasks.length; i++) {
      const idx = (this.cursor + i) % this.tasks.length;
      const c = this.tasks[idx]!;
      if (c.sig.pending !== 0n) applyStops(c);
      if (c.group.stopped && (c.sig.pending & bit(SIGKILL)) === 0n) continue;
      if (c.wait !== null) {
        if (now < 0n) now = this.host.monotonicNs();
        if (!this.wake(c, now)) continue;
        if (c.dead) return this.next(); // a signal killed it: that may have ended other waits, look again
      }
      this.cursor = this.tasks.indexOf(c);
      return c;
    }
    return null;
  }

  /** Ends `c`'s wait if it is over; true if the task can run now. */
  private wake(c: SysCtx, now: bigint): boolean {
    const w = c.wait!;
    const sig = actionableSignal(c);
    if (sig !== 0 && (w.killable !== true || sig === SIGKILL)) {
      this.interrupt(c, sig);
      return true;
    }
    const timedOut = w.deadline !== undefined && now >= w.deadline;
    if (w.ready?.() === true || timedOut || (w.host === true && now >= c.pollAt)) {
      c.wait = null;
      if (w.complete) { this.complete(c, w.complete()); return true; }
      c.retryDeadline = w.deadline ?? null;
      return true;
    }
    return false;
  }

  /** A signal ends `c`'s wait: the syscall fails with EINTR or is restarted after a SA_RESTART handler. */
  private interrupt(c: SysCtx, sig: number): void {
    const w = c.wait!;
    c.wait = null;
    c.retryDeadline = null;
    w.cancel?.();
    const st = c.proc.hart.st, act = c.sig.actions[sig]!;
    const handled = sig !== SIGKILL && act.handler !== SIG_DFL && act.handler !== SIG_IGN;
    if (w.restart && handled && (act.flags & SA_RESTART) !== 0) {
      st.setPc(st.getPc() - 4); // the frame saves pc + 4: the ecall itself, which runs again after the handler
      this.finishSyscall(c);
    } else {
      this.complete(c, -E.EINTR);
    }
  }

  /** Finishes `c`'s pending syscall with `result` in a0. */
  private complete(c: SysCtx, result: number): void {
    c.wait = null;
    c.proc.hart.st.setX(10, result);
    this.finishSyscall(c);
  }

  /** After a syscall's result is in a0: acts on pending signals, then moves pc past the ecall. */
  private finishSyscall(c: SysCtx): void {
    deliverPending(c);
    if (!c.dead) { const st = c.proc.hart.st; st.setPc(st.getPc() + 4); }
  }

  /** Acts on signals other tasks sent to `c` while it was not in a syscall (before it runs again). */
  deliverAsync(c: SysCtx): void {
    if (actionableSignal(c) === 0) return;
    const st = c.proc.hart.st;
    st.setPc(st.getPc() - 4); // a frame saves pc + 4 (after a syscall): here, the interrupted pc
    this.finishSyscall(c);
  }

  /** Called when the scheduler runs `c` next: applies its umask to the host. */
  switchTo(c: SysCtx): void {
    if (c.umask !== this.hostUmask) { this.host.umask(c.umask); this.hostUmask = c.umask; }
  }

  /** No task can run: sleeps the host until something may change, or resolves a deadlock. */
  idle(): void {
    const now = this.host.monotonicNs();
    let earliest: bigint | null = null, hostWaiter: SysCtx | null = null, legacy: SysCtx | null = null;
    for (const c of this.tasks) {
      const w = c.wait;
      if (w === null || c.group.stopped) continue;
      if (w.deadline !== undefined && (earliest === null || w.deadline < earliest)) earliest = w.deadline;
      if (w.host === true && (hostWaiter === null || c.blockSeq < hostWaiter.blockSeq)) hostWaiter = c;
      if (w.legacy === true && (legacy === null || c.blockSeq > legacy.blockSeq)) legacy = c;
    }
    const timer = this.timed.size > 0 ? earliestRealTimer(this) : null;
    if (timer !== null && (earliest === null || timer < earliest)) earliest = timer;
    if (this.poller !== null || this.tasks.every((t) => t.group.stopped)) {
      // Input from the runtime (or a signal from it) may end any wait: sleep a step, poll, look again.
      const d = earliest !== null && earliest - now < IDLE_POLL_NS ? earliest - now : IDLE_POLL_NS;
      if (d > 0n) {
        // Published ports: sleep on the bridge (it pumps what came); else on the runtime's input.
        if (this.net.external) this.net.waitExternal(Number(d) / 1e6);
        else if (this.idleWait !== null) this.idleWait(Number(d));
        else this.host.sleepNs(Number(d));
      }
      for (const c of this.tasks) if (c.wait?.host === true) c.pollAt = 0n;
      if (this.poller !== null) { this.lastPoll = this.host.monotonicNs(); this.poller(); }
      return;
    }
    if (hostWaiter !== null) {
      // With published ports a host connection may come at any time: keep polling (sleeping on the
      // bridge) rather than block the host in one task's read, unless a read cannot be polled.
      const ext = this.net.external;
      let needy: SysCtx | null = hostWaiter;
      if (ext) {
        needy = null;
        for (const c of this.tasks) {
          if (c.wait?.host === true && c.wait.polled !== true && (needy === null || c.blockSeq < needy.blockSeq)) needy = c;
        }
      }
      if (earliest === null && needy !== null) { this.lastResort(needy); return; }
      const d = earliest === null ? IDLE_POLL_NS : earliest - now;
      if (d > 0n) {
        const ns = Number(d < IDLE_POLL_NS ? d : IDLE_POLL_NS);
        if (ext) this.net.waitExternal(ns / 1e6); else this.host.sleepNs(ns);
      }
      for (const c of this.tasks) if (c.wait?.host === true) c.pollAt = 0n;
      return;
    }
    if (earliest !== null) { this.sleepUntil(earliest); return; }
    if (legacy !== null) { this.lastResort(legacy); return; }
    if (!this.deadlockWarned) {
      this.deadlockWarned = true;
      this.log('tsvm: every task waits for another (deadlock); their waits fail with EINTR');
    }
    for (const c of [...this.tasks]) if (c.wait !== null && !c.dead) { const w = c.wait; w.cancel?.(); this.complete(c, -E.EINTR); }
  }

  /** Retries `c`'s syscall in its single-task form (it may block the host). */
  private lastResort(c: SysCtx): void {
    const w = c.wait!;
    c.wait = null;
    c.retryDeadline = w.deadline ?? null;
    c.lastResort = true;
  }

  // ---- exit ----

  /** exit(2): ends the calling thread; the process ends with its last thread. */
  exitThread(c: SysCtx, code: number): void {
    const g = c.group;
    if (c.tid === g.tgid) g.leaderCode = code & 0xff;
    c.proc.exitStatus = code & 0xff;
    this.teardown(c);
    if (g.threads.length === 0) this.processEnded(g, g.groupStatus ?? exitedStatus(g.leaderCode), c);
  }

  /** exit_group(2): ends every thread of the caller's process. */
  exitGroup(c: SysCtx, code: number): void {
    this.endProcess(c.group, exitedStatus(code), c);
  }

  /** A fatal signal ends `c`'s process (the root process logs it unless `quiet`). */
  killGroup(c: SysCtx, sig: number, quiet = false): void {
    if (c.group === this.root && !quiet) this.log(`tsvm: uncaught signal ${sig} (${signalName(sig)}), exit status ${128 + sig}`);
    this.endProcess(c.group, sig & 0x7f, c);
  }

  /** Ends every thread of `g` with wait status `ws`. */
  private endProcess(g: ThreadGroup, ws: number, last: SysCtx): void {
    if (g.groupStatus !== null || g.waitStatus !== null) return;
    g.groupStatus = ws;
    const status = shellStatus(ws);
    for (const t of [...g.threads]) { t.proc.exitStatus = status; this.teardown(t); }
    this.processEnded(g, ws, last);
  }

  /** Removes a task from the scheduler: CLONE_CHILD_CLEARTID, its futex wait, its TLB. */
  private teardown(c: SysCtx): void {
    if (c.dead) return;
    c.dead = true;
    const w = c.wait;
    c.wait = null;
    w?.cancel?.();
    this.futexCancel(c);
    if (c.tidAddress !== 0 && this.sharesMemory(c)) {
      // kernel/fork.c mm_release: clear the tid word and wake a joiner.
      if (c.mem.write(c.tidAddress, new Uint8Array(4))) this.futexWake(c.mem, c.tidAddress, 1, -1);
    }
    c.proc.release();
    const i = this.tasks.indexOf(c);
    if (i >= 0) { this.tasks.splice(i, 1); if (i <= this.cursor && this.cursor > 0) this.cursor--; }
    this.byTid.delete(c.tid);
    const gi = c.group.threads.indexOf(c);
    if (gi >= 0) c.group.threads.splice(gi, 1);
  }

  /** The last thread of `g` is gone: release what it held, reparent its children, notify or be reaped. */
  private processEnded(g: ThreadGroup, ws: number, last: SysCtx): void {
    g.waitStatus = ws;
    g.onEnd?.(ws);
    if (!this.sharesMemory(last)) {
      this.dropMappings(last);
      this.releaseMemory(last.mem);
    }
    if (!this.tasks.some((t) => t.fds === last.fds)) last.fds.closeAll();
    if (g.vforkDone === false) g.vforkDone = true;
    for (const ch of g.children) {
      ch.parent = null;
      if (ch.waitStatus !== null) this.reap(ch);
    }
    g.children.clear();
    if (g === this.root) { this.rootStatus = shellStatus(ws); return; }
    const p = g.parent;
    if (p === null || p.waitStatus !== null) { this.reap(g); return; }
    const pt = p.threads[0];
    const act = pt?.sig.actions[SIGCHLD];
    if (g.exitSignal === SIGCHLD && act !== undefined && (act.handler === SIG_IGN || (act.flags & SA_NOCLDWAIT) !== 0)) {
      this.reap(g); // a parent ignoring SIGCHLD leaves no zombies (kernel/exit.c do_notify_parent)
      return;
    }
    if (g.exitSignal !== 0) this.sendToGroup(p, g.exitSignal, CLD_CODE, g.tgid);
  }

  /** Removes a zombie from the process table. */
  reap(g: ThreadGroup): void {
    this.groups.delete(g.tgid);
    g.parent?.children.delete(g);
  }

  /** execve by `c`: the other threads of its process end; `c` takes over the process id. */
  execKillOthers(c: SysCtx): void {
    for (const t of [...c.group.threads]) if (t !== c) { t.proc.exitStatus = 0; this.teardown(t); }
    if (c.tid !== c.group.tgid) {
      this.byTid.delete(c.tid);
      c.proc.tid = c.group.tgid;
      this.byTid.set(c.tid, c);
    }
  }

  /** Kills every process still running (the root process has ended). */
  shutdown(): void {
    for (const g of [...this.groups.values()]) {
      const t = g.threads[0];
      if (t !== undefined && g.waitStatus === null) this.endProcess(g, SIGKILL, t);
    }
  }

  // ---- signals between tasks ----

  /** Sends `sig` to every live process of process group `pgid` (a terminal's signals, sys-tty.ts). */
  signalPgrp(pgid: number, sig: number): void {
    for (const g of [...this.groups.values()]) {
      if (g.pgid === pgid && g.waitStatus === null && this.sandbox?.initIgnores(this, g, sig) !== true) this.sendToGroup(g, sig, SI_KERNEL, 0);
    }
  }

  /** A stop signal `sig` stops process `g`; its parent is told (SIGCHLD, CLD_STOPPED) unless it set SA_NOCLDSTOP. */
  stopGroup(g: ThreadGroup, sig: number): void {
    if (g.stopped || g.waitStatus !== null || g.groupStatus !== null) return;
    g.stopped = true;
    g.stops++;
    g.stopReport = sig;
    g.contReport = false;
    this.notifyParent(g, CLD_STOPPED);
  }

  /** SIGCONT resumes a stopped process `g` (its parent gets SIGCHLD, CLD_CONTINUED); pending stop signals are dropped. */
  continueGroup(g: ThreadGroup): void {
    for (const t of g.threads) t.sig.pending &= ~STOP_SIGNALS;
    if (!g.stopped) return;
    g.stopped = false;
    g.stopReport = 0;
    g.contReport = true;
    this.notifyParent(g, CLD_CONTINUED);
  }

  private notifyParent(g: ThreadGroup, code: number): void {
    const p = g.parent;
    const act = p?.threads[0]?.sig.actions[SIGCHLD];
    if (p === null || act === undefined || (act.flags & SA_NOCLDSTOP) !== 0) return;
    this.sendToGroup(p, SIGCHLD, code, g.tgid);
  }

  /** Queues `sig` for process `g` on a thread that does not block it. */
  sendToGroup(g: ThreadGroup, sig: number, code: number, from: number): void {
    const b = bit(sig);
    const t = g.threads.find((x) => (x.sig.blocked & b) === 0n) ?? g.threads[0];
    if (t !== undefined) raiseSignal(t, sig, code, from);
  }

  /** kill(2) from `c`: pid > 0 one process, 0 the caller's process group, -1 all others, < -1 a group. */
  kill(c: SysCtx, pid: number, sig: number, code = SI_USER): number {
    let targets: ThreadGroup[];
    if (pid > 0) {
      const g = this.byTid.get(pid)?.group ?? this.groups.get(pid);
      targets = g ? [g] : [];
    } else if (pid === -1) {
      targets = [...this.groups.values()].filter((g) => g !== c.group && g.waitStatus === null);
    } else {
      const pg = pid === 0 ? c.group.pgid : -pid;
      targets = [...this.groups.values()].filter((g) => g.pgid === pg);
    }
    if (targets.length === 0) return -E.ESRCH;
    if (sig !== 0) for (const g of targets) if (this.sandbox?.initIgnores(this, g, sig) !== true) this.sendToGroup(g, sig, code, c.proc.pid);
    return 0;
  }

  /** tgkill/tkill: `sig` to thread `tid` (of process `tgid`, or any with -1). */
  killThread(c: SysCtx, tgid: number, tid: number, sig: number): number {
    const t = this.byTid.get(tid);
    if (t === undefined || (tgid !== -1 && t.group.tgid !== tgid)) return -E.ESRCH;
    if (sig !== 0 && this.sandbox?.initIgnores(this, t.group, sig) !== true) raiseSignal(t, sig, SI_TKILL, c.proc.pid);
    return 0;
  }

  // ---- process groups and sessions ----

  /** The process `pid` names for a pgid/sid call (0: the caller's). */
  private target(c: SysCtx, pid: number): ThreadGroup | undefined {
    if (pid === 0) return c.group;
    const g = this.groups.get(pid);
    return g !== undefined && g.waitStatus === null ? g : undefined;
  }

  /** getpgid(2). */
  getpgid(c: SysCtx, pid: number): number {
    const g = this.target(c, pid);
    return g ? g.pgid : -E.ESRCH;
  }

  /** getsid(2). */
  getsid(c: SysCtx, pid: number): number {
    const g = this.target(c, pid);
    return g ? g.sid : -E.ESRCH;
  }

  /** setpgid(2) (kernel/sys.c rules: self or a child in the same session, not a session leader). */
  setpgid(c: SysCtx, pid: number, pgid: number): number {
    if (pid < 0 || pgid < 0) return -E.EINVAL;
    const g = this.target(c, pid);
    if (g === undefined || (g !== c.group && g.parent !== c.group)) return -E.ESRCH;
    if (g !== c.group && g.execed) return -E.EACCES;
    const want = pgid === 0 ? g.tgid : pgid;
    if (g.sid !== c.group.sid) return -E.EPERM;
    if (g.sid === g.tgid) return want === g.pgid ? 0 : -E.EPERM;
    if (want !== g.tgid && ![...this.groups.values()].some((o) => o.pgid === want && o.sid === g.sid && o.waitStatus === null)) {
      return -E.EPERM;
    }
    g.pgid = want;
    return 0;
  }

  /** setsid(2): fails for a process group leader. */
  setsid(c: SysCtx): number {
    const g = c.group;
    if ([...this.groups.values()].some((o) => o.pgid === g.tgid && o.waitStatus === null)) return -E.EPERM;
    g.sid = g.pgid = g.tgid;
    return g.tgid;
  }

  /** TIOCSPGRP: makes `pgid` the terminal's foreground group (it must exist in the caller's session). */
  setForeground(c: SysCtx, pgid: number): number {
    if (pgid < 0) return -E.EINVAL;
    if (![...this.groups.values()].some((g) => g.pgid === pgid && g.sid === c.group.sid && g.waitStatus === null)) {
      return -E.EPERM;
    }
    this.fgPgrp = pgid;
    return 0;
  }

  // ---- futexes (private to an address space) ----

  private futexQueue(mem: AddressSpace, addr: number, create: boolean): SysCtx[] | undefined {
    let m = this.futexes.get(mem);
    if (m === undefined) {
      if (!create) return undefined;
      m = new Map();
      this.futexes.set(mem, m);
    }
    let q = m.get(addr);
    if (q === undefined && create) { q = []; m.set(addr, q); }
    return q;
  }

  /** Queues `c` as a waiter on the futex word at `addr` with `bits` (FUTEX_WAIT_BITSET). */
  futexEnqueue(c: SysCtx, addr: number, bits: number): void {
    this.futexQueue(c.mem, addr, true)!.push(c);
    c.futexAddr = addr;
    c.futexBits = bits;
    c.futexWoken = false;
  }

  /** Removes `c` from the futex queue it waits in, if any. */
  futexCancel(c: SysCtx): void {
    if (c.futexAddr < 0) return;
    const q = this.futexQueue(c.mem, c.futexAddr, false);
    const i = q?.indexOf(c) ?? -1;
    if (q !== undefined && i >= 0) q.splice(i, 1);
    c.futexAddr = -1;
    c.futexWoken = false;
  }

  /** Wakes up to `n` waiters on `addr` whose bitset meets `bits`; returns how many. */
  futexWake(mem: AddressSpace, addr: number, n: number, bits: number): number {
    const q = this.futexQueue(mem, addr, false);
    if (q === undefined) return 0;
    let woke = 0;
    for (let i = 0; i < q.length && woke < n;) {
      const t = q[i]!;
      if ((t.futexBits & bits) === 0) { i++; continue; }
      q.splice(i, 1);
      t.futexWoken = true;
      woke++;
    }
    return woke;
  }

  /** FUTEX_REQUEUE: wakes up to `n` waiters on `from`, moves up to `move` others to `to`; returns the total. */
  futexRequeue(mem: AddressSpace, from: number, to: number, n: number, move: number): number {
    const woke = this.futexWake(mem, from, n, -1);
    const q = this.futexQueue(mem, from, false);
    if (q === undefined || from === to) return woke;
    let moved = 0;
    while (q.length > 0 && moved < move) {
      const t = q.shift()!;
      this.futexQueue(mem, to, true)!.push(t);
      t.futexAddr = to;
      moved++;
    }
    return woke + moved;
  }
}

/** si_code of SIGCHLD for an exited child (include/uapi/asm-generic/siginfo.h CLD_EXITED). */
const CLD_CODE = 1;
/** si_code of SIGCHLD for a stopped and a continued child (siginfo.h CLD_STOPPED, CLD_CONTINUED). */
const CLD_STOPPED = 5, CLD_CONTINUED = 6;
