/**
 * Clocks, sleeping and randomness: clock_gettime/getres, gettimeofday,
 * nanosleep, clock_nanosleep, times, getrandom.
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import { E, encodeTimespec, encodeTimeval } from './sys-abi.js';

/** Clock ids (include/uapi/linux/time.h). */
export const CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_PROCESS_CPUTIME_ID = 2,
  CLOCK_THREAD_CPUTIME_ID = 3, CLOCK_MONOTONIC_RAW = 4, CLOCK_REALTIME_COARSE = 5,
  CLOCK_MONOTONIC_COARSE = 6, CLOCK_BOOTTIME = 7, CLOCK_REALTIME_ALARM = 8, CLOCK_BOOTTIME_ALARM = 9,
  CLOCK_TAI = 11;
/** clock_nanosleep flag (include/uapi/linux/time.h). */
const TIMER_ABSTIME = 1;
/** getrandom flags (include/uapi/linux/random.h). */
const GRND_NONBLOCK = 1, GRND_RANDOM = 2, GRND_INSECURE = 4;
/** Clock ticks per second for times(2) (include/asm-generic/param.h USER_HZ). */
const USER_HZ = 100n;
/** Resolution of the coarse clocks: one tick at CONFIG_HZ=250. */
const COARSE_RES_NS = 4_000_000n;

/** Reads clock `id` in ns, or null for an unknown clock. */
export function clockNs(c: SysCtx, id: number): bigint | null {
  switch (id) {
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE: case CLOCK_REALTIME_ALARM: return c.host.realtimeNs();
    case CLOCK_TAI: return c.host.realtimeNs() + 37_000_000_000n; // TAI - UTC since 2017
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_MONOTONIC_COARSE: case CLOCK_BOOTTIME:
    case CLOCK_BOOTTIME_ALARM:
      return c.host.monotonicNs();
    case CLOCK_PROCESS_CPUTIME_ID: case CLOCK_THREAD_CPUTIME_ID: return c.host.cpuTimeNs();
    default:
      // Negative ids name CPU-time clocks of a pid/tid (include/linux/posix-timers.h); pid 0 = self.
      if (id < 0 && ((~id >> 3) === 0 || (~id >> 3) === c.proc.pid) && (id & 3) !== 3) return c.host.cpuTimeNs();
      return null;
  }
}

function clockGettime(c: SysCtx, a: SysArgs): number {
  const ns = clockNs(c, a.i32(0));
  if (ns === null) return -E.EINVAL;
  return c.write(a.u(1), encodeTimespec(ns)) ? 0 : -E.EFAULT;
}

function clockGetres(c: SysCtx, a: SysArgs): number {
  const id = a.i32(0);
  if (clockNs(c, id) === null) return -E.EINVAL;
  if (a.u(1) === 0) return 0;
  const coarse = id === CLOCK_REALTIME_COARSE || id === CLOCK_MONOTONIC_COARSE;
  return c.write(a.u(1), encodeTimespec(coarse ? COARSE_RES_NS : 1n)) ? 0 : -E.EFAULT;
}

function gettimeofday(c: SysCtx, a: SysArgs): number {
  if (a.u(0) !== 0 && !c.write(a.u(0), encodeTimeval(c.host.realtimeNs()))) return -E.EFAULT;
  if (a.u(1) !== 0 && !c.write(a.u(1), new Uint8Array(8))) return -E.EFAULT; // struct timezone: UTC, no DST
  return 0;
}

/**
 * Sleeps until the monotonic `deadline`: other tasks run meanwhile (a
 * signal with a handler ends the sleep with -EINTR, the time left written
 * to `rem` if non-zero); as the only task, the host thread sleeps.
 */
function sleepUntil(c: SysCtx, deadline: bigint, rem: number): number {
  const k = c.kernel;
  if (c.host.monotonicNs() >= deadline) return 0;
  if (!k.canSleep(c)) { k.sleepUntil(deadline); return 0; }
  return k.block(c, {
    restart: false, deadline,
    cancel: () => {
      const left = deadline - c.host.monotonicNs();
      if (rem !== 0) c.write(rem, encodeTimespec(left > 0n ? left : 0n));
    },
  });
}

function nanosleep(c: SysCtx, a: SysArgs): number {
  const ns = c.readTimespec(a.u(0));
  if (ns === null) return -E.EFAULT;
  if (ns < 0n) return -E.EINVAL;
  return sleepUntil(c, c.kernel.deadline(c, ns), a.u(1));
}

function clockNanosleep(c: SysCtx, a: SysArgs): number {
  const id = a.i32(0), flags = a.i32(1);
  if (id === CLOCK_THREAD_CPUTIME_ID) return -E.EINVAL;
  const now = clockNs(c, id);
  if (now === null) return -E.EINVAL;
  const ns = c.readTimespec(a.u(2));
  if (ns === null) return -E.EFAULT;
  if (ns < 0n) return -E.EINVAL;
  if (flags & TIMER_ABSTIME) return sleepUntil(c, c.host.monotonicNs() + (ns - now), 0);
  return sleepUntil(c, c.kernel.deadline(c, ns), a.u(3));
}

function times(c: SysCtx, a: SysArgs): number {
  if (a.u(0) !== 0) {
    const r = c.host.rusage();
    const b = new Uint8Array(32), dv = new DataView(b.buffer); // struct tms: 4 clock_t
    dv.setBigInt64(0, BigInt(r.utimeUs) * USER_HZ / 1_000_000n, true);
    dv.setBigInt64(8, BigInt(r.stimeUs) * USER_HZ / 1_000_000n, true);
    if (!c.write(a.u(0), b)) return -E.EFAULT;
  }
  return Number(c.host.monotonicNs() * USER_HZ / 1_000_000_000n);
}

function getrandom(c: SysCtx, a: SysArgs): number {
  const flags = a.u32(2);
  if (flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) return -E.EINVAL;
  if ((flags & GRND_RANDOM) && (flags & GRND_INSECURE)) return -E.EINVAL;
  const len = Math.min(a.u(1), 0x1ffffff); // drivers/char/random.c caps one call at MAX_RW_COUNT-ish 32 MiB
  const b = new Uint8Array(len);
  c.host.randomFill(b);
  return c.write(a.u(0), b) ? len : -E.EFAULT;
}

/** Time syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const timeSyscalls: SyscallDef[] = [
  { nr: 101, name: 'nanosleep', fn: nanosleep },
  { nr: 113, name: 'clock_gettime', fn: clockGettime },
  { nr: 114, name: 'clock_getres', fn: clockGetres },
  { nr: 115, name: 'clock_nanosleep', fn: clockNanosleep },
  { nr: 153, name: 'times', fn: times },
  { nr: 169, name: 'gettimeofday', fn: gettimeofday },
  { nr: 278, name: 'getrandom', fn: getrandom },
];
