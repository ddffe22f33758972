/**
 * Interval timers: setitimer(2) and getitimer(2) (glibc's alarm(3) is a
 * setitimer of ITIMER_REAL). ITIMER_REAL counts CLOCK_MONOTONIC and sends
 * SIGALRM; ITIMER_VIRTUAL and ITIMER_PROF count the process's CPU time and
 * send SIGVTALRM and SIGPROF. This VM's CPU time is the host time its
 * threads have run (kernel.ts ThreadGroup.cpuNs), which does not tell user
 * from system time, so the two count the same. Each process has its own
 * three: a fork's child starts with none, execve keeps them (setitimer(2)).
 *
 * The kernel fires the armed timers when it picks the next task (between
 * time slices: kernel.ts next) and, idle, sleeps no later than the earliest
 * ITIMER_REAL. Like Linux's, a timer whose signal is still pending when it
 * fires again does not queue a second one (kernel/time/itimer.c sends with
 * SEND_SIG_PRIV: si_code SI_KERNEL).
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import type { Kernel, ThreadGroup } from './kernel.js';
import { E, SIGALRM, SIGPROF, SIGVTALRM } from './sys-abi.js';
import { SI_KERNEL } from './sys-signals.js';

/** `which` values (include/uapi/linux/time.h). */
export const ITIMER_REAL = 0, ITIMER_VIRTUAL = 1, ITIMER_PROF = 2;
/** The signal each timer sends (setitimer(2)). */
const TIMER_SIGNALS = [SIGALRM, SIGVTALRM, SIGPROF];
/** sizeof(struct itimerval) on rv64: it_interval then it_value, each a timeval of two 64-bit fields. */
const ITIMERVAL_SIZE = 32;
const US = 1000n;
const S = 1_000_000_000n;

/** An armed timer: when it fires next (ns on its clock) and its period (0n: once). */
export interface IntervalTimer { at: bigint; interval: bigint }

/** Now on timer `which`'s clock for process `g`. */
function clockOf(k: Kernel, g: ThreadGroup, which: number): bigint {
  return which === ITIMER_REAL ? k.host.monotonicNs() : BigInt(Math.round(g.cpuNs));
}

/** Reads a struct itimerval: [interval, value] in ns, or a negative errno. */
function readItimerval(c: SysCtx, addr: number): [bigint, bigint] | number {
  const b = c.read(addr, ITIMERVAL_SIZE);
  if (b === null) return -E.EFAULT;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: bigint[] = [];
  for (const off of [0, 16]) {
    const sec = dv.getBigInt64(off, true), usec = dv.getBigInt64(off + 8, true);
    // kernel/time/itimer.c get_itimerval / timeval_valid: 0 <= tv_usec < 1e6 and tv_sec >= 0.
    if (sec < 0n || usec < 0n || usec >= 1_000_000n) return -E.EINVAL;
    out.push(sec * S + usec * US);
  }
  return [out[0]!, out[1]!];
}

/** Encodes a struct itimerval from ns: a value of 0 means disarmed. */
function itimerval(interval: bigint, value: bigint): Uint8Array {
  const b = new Uint8Array(ITIMERVAL_SIZE), dv = new DataView(b.buffer);
  [interval, value].forEach((ns, i) => {
    // A running timer never reads as 0 (it would mean disarmed): Linux rounds what is left up to 1 us.
    const us = (ns + US - 1n) / US;
    dv.setBigInt64(i * 16, us / 1_000_000n, true);
    dv.setBigInt64(i * 16 + 8, us % 1_000_000n, true);
  });
  return b;
}

/** Timer `which` of `g` as [interval, left] in ns (zeros when disarmed). */
function current(k: Kernel, g: ThreadGroup, which: number): [bigint, bigint] {
  const t = g.itimers[which];
  if (t === null || t === undefined) return [0n, 0n];
  const left = t.at - clockOf(k, g, which);
  return [t.interval, left > 0n ? left : 1n];
}

function getitimer(c: SysCtx, a: SysArgs): number {
  const which = a.i32(0);
  if (which < ITIMER_REAL || which > ITIMER_PROF) return -E.EINVAL;
  const [interval, left] = current(c.kernel, c.group, which);
  return c.write(a.u(1), itimerval(interval, left)) ? 0 : -E.EFAULT;
}

function setitimer(c: SysCtx, a: SysArgs): number {
  const which = a.i32(0);
  if (which < ITIMER_REAL || which > ITIMER_PROF) return -E.EINVAL;
  // A null new value disarms (Linux accepts it since 2.6.x with a warning; glibc never passes one).
  const v = a.u(1) === 0 ? ([0n, 0n] as [bigint, bigint]) : readItimerval(c, a.u(1));
  if (typeof v === 'number') return v;
  const k = c.kernel, g = c.group;
  if (a.u(2) !== 0) {
    const [interval, left] = current(k, g, which);
    if (!c.write(a.u(2), itimerval(interval, left))) return -E.EFAULT;
  }
  const [interval, value] = v;
  g.itimers[which] = value === 0n ? null : { at: clockOf(k, g, which) + value, interval };
  if (g.itimers.some((t) => t !== null)) k.timed.add(g); else k.timed.delete(g);
  return 0;
}

/**
 * Fires the due timers of every process that has one armed (`now`: the
 * monotonic clock); re-arms the periodic ones, disarms the others.
 */
export function fireTimers(k: Kernel, now: bigint): void {
  for (const g of k.timed) {
    if (g.waitStatus !== null || g.threads.length === 0) { k.timed.delete(g); continue; }
    for (let which = ITIMER_REAL; which <= ITIMER_PROF; which++) {
      const t = g.itimers[which];
      if (t === null || t === undefined) continue;
      const clock = which === ITIMER_REAL ? now : clockOf(k, g, which);
      if (clock < t.at) continue;
      const sig = TIMER_SIGNALS[which]!;
      if (k.sandbox?.initIgnores(k, g, sig) !== true) k.sendToGroup(g, sig, SI_KERNEL, 0);
      if (t.interval === 0n) g.itimers[which] = null;
      else t.at = t.at + t.interval > clock ? t.at + t.interval : clock + t.interval; // missed periods are overruns, not signals
    }
    if (g.itimers.every((t) => t === null)) k.timed.delete(g);
  }
}

/** The earliest ITIMER_REAL deadline of any process, or null. */
export function earliestRealTimer(k: Kernel): bigint | null {
  let at: bigint | null = null;
  for (const g of k.timed) {
    const t = g.itimers[ITIMER_REAL];
    if (t !== null && t !== undefined && (at === null || t.at < at)) at = t.at;
  }
  return at;
}

/** Interval-timer syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const itimerSyscalls: SyscallDef[] = [
  { nr: 102, name: 'getitimer', fn: getitimer },
  { nr: 103, name: 'setitimer', fn: setitimer },
];
