/**
 * The process VM's run loop: runs the hart in slices and dispatches its
 * exits — a system call goes to the syscall layer, a fault ends the process
 * with the signal Linux would send (status 128 + signal number).
 */
import { run } from '../cpu/interpreter.js';
import {
  ExitReason, CAUSE_USER_ECALL, CAUSE_ILLEGAL_INSTRUCTION, CAUSE_BREAKPOINT, CAUSE_MISALIGNED_FETCH,
  CAUSE_MISALIGNED_LOAD, CAUSE_MISALIGNED_STORE,
} from '../cpu/hart.js';
import { S } from '../cpu/hart-state.js';
import type { GuestProcess } from './guest-process.js';

/** Handles the system call the hart stopped on (a7 = number, a0..a5 = args). */
export interface SyscallHandler {
  handle(): void;
  /**
   * Delivers a synchronous signal for a fault at `addr` to a guest handler if
   * one is installed (pc then points at the handler); false if none is.
   */
  deliverFault?(sig: number, addr: number): boolean;
}

/** Signal numbers (asm-generic/signal.h). */
export const SIGILL = 4, SIGTRAP = 5, SIGBUS = 7, SIGSEGV = 11;
/** Signal names for messages. */
export const SIGNAL_NAMES: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE',
  9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM',
};

/** Instructions per slice between checks of the process state. */
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

/**
 * Runs the process until it exits; returns its exit status. `log` gets one
 * line when a fault kills the guest.
 */
export function runProcess(proc: GuestProcess, sys: SyscallHandler, log: (line: string) => void): number {
  const st = proc.hart.st, s = st.s;
  while (proc.exitStatus === null) {
    const r = run(proc.hart, SLICE);
    if (r !== ExitReason.EXCEPTION) continue;
    const cause = s[S.EXIT_CAUSE]!;
    if (cause === CAUSE_USER_ECALL) {
      sys.handle();
      if (proc.exitStatus !== null) break;
      const lo = (s[S.PC_LO]! + 4) | 0;
      if ((lo >>> 0) < 4) s[S.PC_HI] = (s[S.PC_HI]! + 1) | 0;
      s[S.PC_LO] = lo;
      continue;
    }
    const sig = signalForCause(cause);
    const faultAddr = (s[S.EXIT_TVAL_HI]! >>> 0) * 4294967296 + (s[S.EXIT_TVAL_LO]! >>> 0);
    if (sys.deliverFault?.(sig, faultAddr) === true) {
      if (proc.exitStatus !== null) break;
      continue; // the guest's handler runs next
    }
    const pc = hex(s[S.PC_LO]!, s[S.PC_HI]!);
    const what = cause === CAUSE_ILLEGAL_INSTRUCTION
      ? `insn=0x${(s[S.EXIT_INSN]! >>> 0).toString(16)}`
      : `addr=${hex(s[S.EXIT_TVAL_LO]!, s[S.EXIT_TVAL_HI]!)}`;
    log(`tsvm: guest killed by ${SIGNAL_NAMES[sig] ?? 'signal ' + sig} at pc=${pc} ${what}`);
    proc.exitStatus = 128 + sig;
  }
  return proc.exitStatus;
}
