/**
 * futex(2) between the threads (and CLONE_VM children) of an address
 * space: FUTEX_WAIT/_BITSET sleep on a word while it holds the expected
 * value, FUTEX_WAKE/_BITSET, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE and
 * FUTEX_WAKE_OP wake them (the queues live in kernel.ts, keyed by address
 * space and address, so private and shared futexes behave alike; memory is
 * never shared between processes with separate address spaces). PI
 * futexes are not implemented (-ENOSYS).
 *
 * A waiter that is the only task could never be woken: without a timeout
 * the wait returns -EINTR instead of hanging forever, with one it sleeps
 * the timeout and returns -ETIMEDOUT. A signal ends a wait with -EINTR.
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import { E } from './sys-abi.js';

/** futex operations and flags (include/uapi/linux/futex.h). */
const FUTEX_WAIT = 0, FUTEX_WAKE = 1, FUTEX_REQUEUE = 3, FUTEX_CMP_REQUEUE = 4, FUTEX_WAKE_OP = 5,
  FUTEX_WAIT_BITSET = 9, FUTEX_WAKE_BITSET = 10, FUTEX_CMD_MASK = 0x7f, FUTEX_CLOCK_REALTIME = 256;
/** FUTEX_WAKE_OP operations and comparisons (include/uapi/linux/futex.h FUTEX_OP_*). */
const OP_SET = 0, OP_ADD = 1, OP_OR = 2, OP_ANDN = 3, OP_XOR = 4, OP_ARG_SHIFT = 8;
const CMP_EQ = 0, CMP_NE = 1, CMP_LT = 2, CMP_LE = 3, CMP_GT = 4, CMP_GE = 5;

/** FUTEX_WAIT and FUTEX_WAIT_BITSET. */
function wait(c: SysCtx, a: SysArgs, bitset: boolean): number {
  const k = c.kernel, addr = a.u(0);
  if (c.futexAddr !== -1) {
    // Retried after sleeping: woken, timed out, or (spuriously) neither.
    if (c.futexWoken) { c.futexAddr = -1; c.futexWoken = false; return 0; }
    const dl = c.retryDeadline;
    if ((dl !== null && c.host.monotonicNs() >= dl) || !k.canSleep(c)) { k.futexCancel(c); return dl !== null ? -E.ETIMEDOUT : -E.EINTR; }
    return k.block(c, { restart: false, deadline: dl ?? undefined, ready: () => c.futexWoken, legacy: true, cancel: () => k.futexCancel(c) });
  }
  const bits = bitset ? a.u32(5) : 0xffffffff;
  if (bits === 0) return -E.EINVAL;
  if (addr % 4 !== 0) return -E.EINVAL;
  const v = c.readI32(addr);
  if (v === null) return -E.EFAULT;
  if (v !== a.i32(2)) return -E.EAGAIN;
  let deadline: bigint | undefined;
  if (a.u(3) !== 0) {
    const ns = c.readTimespec(a.u(3));
    if (ns === null) return -E.EFAULT;
    if (ns < 0n) return -E.EINVAL;
    const now = c.host.monotonicNs();
    if (!bitset) deadline = now + ns; // FUTEX_WAIT: relative
    else if (a.i32(1) & FUTEX_CLOCK_REALTIME) deadline = now + (ns - c.host.realtimeNs());
    else deadline = ns;
    if (now >= deadline) return -E.ETIMEDOUT;
  }
  if (!k.canSleep(c)) {
    if (deadline === undefined) return -E.EINTR;
    k.sleepUntil(deadline);
    return -E.ETIMEDOUT;
  }
  k.futexEnqueue(c, addr, bits | 0);
  return k.block(c, { restart: false, deadline, ready: () => c.futexWoken, legacy: true, cancel: () => k.futexCancel(c) });
}

/** FUTEX_WAKE_OP: updates the word at uaddr2, wakes on uaddr, and on uaddr2 if the old value compares true. */
function wakeOp(c: SysCtx, a: SysArgs): number {
  const addr2 = a.u(4), enc = a.i32(5);
  if (addr2 % 4 !== 0) return -E.EINVAL;
  const old = c.readI32(addr2);
  if (old === null) return -E.EFAULT;
  let op = (enc >>> 28) & 7;
  const cmp = (enc >>> 24) & 15;
  let oparg = (enc << 8) >> 20;
  const cmparg = (enc << 20) >> 20;
  if (op & OP_ARG_SHIFT) { op &= ~OP_ARG_SHIFT; oparg = 1 << (oparg & 31); }
  let nv: number;
  switch (op) {
    case OP_SET: nv = oparg; break;
    case OP_ADD: nv = (old + oparg) | 0; break;
    case OP_OR: nv = old | oparg; break;
    case OP_ANDN: nv = old & ~oparg; break;
    case OP_XOR: nv = old ^ oparg; break;
    default: return -E.ENOSYS;
  }
  let hit: boolean;
  switch (cmp) {
    case CMP_EQ: hit = old === cmparg; break;
    case CMP_NE: hit = old !== cmparg; break;
    case CMP_LT: hit = old < cmparg; break;
    case CMP_LE: hit = old <= cmparg; break;
    case CMP_GT: hit = old > cmparg; break;
    case CMP_GE: hit = old >= cmparg; break;
    default: return -E.ENOSYS;
  }
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, nv, true);
  if (!c.write(addr2, b)) return -E.EFAULT;
  let n = c.kernel.futexWake(c.mem, a.u(0), a.i32(2), -1);
  if (hit) n += c.kernel.futexWake(c.mem, addr2, a.u32(3), -1);
  return n;
}

function futex(c: SysCtx, a: SysArgs): number {
  const op = a.i32(1) & FUTEX_CMD_MASK, k = c.kernel;
  switch (op) {
    case FUTEX_WAIT: return wait(c, a, false);
    case FUTEX_WAIT_BITSET: return wait(c, a, true);
    case FUTEX_WAKE: return a.u(0) % 4 !== 0 ? -E.EINVAL : k.futexWake(c.mem, a.u(0), Math.max(0, a.i32(2)), -1);
    case FUTEX_WAKE_BITSET: {
      if (a.u32(5) === 0) return -E.EINVAL;
      return a.u(0) % 4 !== 0 ? -E.EINVAL : k.futexWake(c.mem, a.u(0), Math.max(0, a.i32(2)), a.u32(5) | 0);
    }
    case FUTEX_REQUEUE: case FUTEX_CMP_REQUEUE: {
      if (a.i32(2) < 0 || a.i32(3) < 0) return -E.EINVAL;
      if (op === FUTEX_CMP_REQUEUE) {
        const v = c.readI32(a.u(0));
        if (v === null) return -E.EFAULT;
        if (v !== a.i32(5)) return -E.EAGAIN;
      }
      return k.futexRequeue(c.mem, a.u(0), a.u(4), a.i32(2), a.i32(3)); // val2 travels in the timeout argument
    }
    case FUTEX_WAKE_OP: return wakeOp(c, a);
    default: return -E.ENOSYS;
  }
}

/** futex (include/uapi/asm-generic/unistd.h number). */
export const futexSyscalls: SyscallDef[] = [
  { nr: 98, name: 'futex', fn: futex },
];
