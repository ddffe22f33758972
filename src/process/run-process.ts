/**
 * The process VM's run loop: a cooperative round-robin scheduler over the
 * guest tasks (kernel.ts). Each turn runs one task's hart for a time slice
 * of instructions (a long one while it is the only runnable task, so a
 * single process pays nothing for the scheduler) and dispatches its exits:
 * a system call goes to the syscall layer (the task may go to sleep in
 * it); a fault is offered to the guest's signal handler, else it kills the
 * process with the signal Linux would send; a page the guest memory cannot
 * provide (GuestMemoryError) kills the process with SIGKILL. The loop ends
 * when the root process ends; its status (exit code, or 128 + signal) is
 * returned.
 */
import { execute } from '../cpu/interpreter.js';
import {
  ExitReason, CAUSE_USER_ECALL, CAUSE_ILLEGAL_INSTRUCTION, CAUSE_BREAKPOINT, CAUSE_MISALIGNED_FETCH,
  CAUSE_MISALIGNED_LOAD, CAUSE_MISALIGNED_STORE,
} from '../cpu/hart.js';
import { S, type HartState } from '../cpu/hart-state.js';
import type { GuestProcess } from './guest-process.js';
import type { SysCtx } from './sys-context.js';
import type { LinuxSyscalls } from './syscalls.js';
import { TIME_SLICE } from './kernel.js';
import { GuestMemoryError } from '../memory/guest-memory.js';
import { SIGKILL } from './sys-abi.js';

/** Signal numbers (asm-generic/signal.h). */
export const SIGILL = 4, SIGTRAP = 5, SIGBUS = 7, SIGSEGV = 11;
/** Signal names for messages. */
export const SIGNAL_NAMES: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE',
  9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM',
};

/** Instructions per slice while a task is the only runnable one. */
const SLICE = 1 << 20;

/** Maps a synchronous exception cause to the signal Linux delivers for it. */
export function signalForCause(cause: number): number {
  switch (cause) {
    case CAUSE_ILLEGAL_INSTRUCTION: return SIGILL;
    case CAUSE_BREAKPOINT: return SIGTRAP;
    case CAUSE_MISALIGNED_FETCH: case CAUSE_MISALIGNED_LOAD: case CAUSE_MISALIGNED_STORE: return SIGBUS;
    default: return SIGSEGV;
  }
}

function hex(lo: number, hi: number): string {
  return '0x' + ((hi >>> 0) * 4294967296 + (lo >>> 0)).toString(16);
}

/** Advances pc past the 4-byte ecall. */
function skipEcall(st: HartState): void {
  const s = st.s, lo = (s[S.PC_LO]! + 4) | 0;
  if ((lo >>> 0) < 4) s[S.PC_HI] = (s[S.PC_HI]! + 1) | 0;
  s[S.PC_LO] = lo;
}

/** Runs task `c` for up to `slice` instructions, or until it sleeps, exits or yields. */
function runTask(c: SysCtx, sys: LinuxSyscalls, log: (line: string) => void, slice: number): void {
  const k = c.kernel;
  sys.current = c;
  k.switchTo(c);
  if (c.sig.pending !== 0n) {
    k.deliverAsync(c);
    if (c.dead || c.group.stopped) return;
  }
  let budget = slice;
  while (budget > 0) {
    const hart = c.proc.hart, st = hart.st, s = st.s;
    const before = st.instret;
    const r = execute(hart, budget);
    const used = st.instret - before;
    k.instructions += used;
    budget -= used > 0 ? used : 1;
    if (r !== ExitReason.EXCEPTION) continue;
    const cause = s[S.EXIT_CAUSE]!;
    if (cause === CAUSE_USER_ECALL) {
      sys.handle();
      if (c.dead || c.wait !== null || k.rootStatus !== null) return; // a sleeping task stays on its ecall
      if (c.group.stopped) { skipEcall(c.proc.hart.st); return; } // a stop signal: the rest waits for SIGCONT
      skipEcall(c.proc.hart.st); // execve may have replaced the hart
      if (k.resched) { k.resched = false; return; }
      continue;
    }
    const sig = signalForCause(cause);
    const faultAddr = (s[S.EXIT_TVAL_HI]! >>> 0) * 4294967296 + (s[S.EXIT_TVAL_LO]! >>> 0);
    if (sys.deliverFault(sig, faultAddr)) {
      if (c.dead) return;
      continue; // the guest's handler runs next
    }
    const pc = hex(s[S.PC_LO]!, s[S.PC_HI]!);
    const what = cause === CAUSE_ILLEGAL_INSTRUCTION
      ? `insn=0x${(s[S.EXIT_INSN]! >>> 0).toString(16)}`
      : `addr=${hex(s[S.EXIT_TVAL_LO]!, s[S.EXIT_TVAL_HI]!)}`;
    const who = k.tasks.length > 1 || c.group !== k.root ? ` (pid ${c.tid})` : '';
    log(`tsvm: guest${who} killed by ${SIGNAL_NAMES[sig] ?? 'signal ' + sig} at pc=${pc} ${what}`);
    k.killGroup(c, sig, true);
    return;
  }
}

/**
 * Runs the VM until its root process (`proc`, the task `sys` was made for)
 * ends; returns its status. Processes still running then are killed.
 */
export function runProcess(_proc: GuestProcess, sys: LinuxSyscalls, log: (line: string) => void): number {
  const k = sys.kernel;
  while (k.rootStatus === null) {
    const c = k.next();
    if (c === null) { k.idle(); continue; }
    const t0 = k.host.monotonicNs();
    try {
      runTask(c, sys, log, k.tasks.length > 1 ? TIME_SLICE : SLICE);
      c.group.cpuNs += Number(k.host.monotonicNs() - t0);
    } catch (e) {
      // The RAM could not provide a page (a pool-backed memory with nothing left to reclaim): that
      // process ends as by the OOM killer, the others and the host go on.
      if (!(e instanceof GuestMemoryError)) throw e;
      log(`tsvm: guest (pid ${c.tid}) killed: ${e.message}`);
      k.killGroup(c, SIGKILL, true);
    }
    k.sandbox?.afterSlice(k);
    k.net.pump(); // published ports: bytes the slice wrote go out, host connections come in
  }
  k.shutdown();
  return k.rootStatus;
}
