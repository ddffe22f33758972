/**
 * wait4(2) and waitid(2): reaping child processes.
 *
 * The children of a process (of any of its threads) are waited for; a
 * zombie child is reported with its wait status ((code & 0xff) << 8 after
 * exit, the signal number after a fatal signal) and removed unless
 * WNOWAIT. With live children and nothing to report the caller sleeps
 * (restarted after a SA_RESTART handler), or returns 0 with WNOHANG; with
 * no matching children at all, ECHILD. Children whose exit signal is not
 * SIGCHLD ("clone children") are seen only with __WCLONE or __WALL.
 * With WUNTRACED (WSTOPPED) a child that stopped is reported once with
 * status (sig << 8) | 0x7f, with WCONTINUED one continued by SIGCONT with
 * 0xffff (include/uapi/linux/wait.h, bits/waitstatus.h).
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import type { ThreadGroup } from './kernel.js';
import {
  E, SIGCHLD, SIGCONT, u32, WNOHANG, WUNTRACED, WEXITED, WCONTINUED, WNOWAIT, __WNOTHREAD, __WALL, __WCLONE,
} from './sys-abi.js';

/** An internal option bit (above the Linux ones): exits are reported (wait4 always, waitid with WEXITED). */
const WEXITED_IMPLIED = 0x1000_0000; // unused by include/uapi/linux/wait.h (__WNOTHREAD is 0x20000000)
/** waitid idtype values (include/uapi/linux/wait.h). */
const P_ALL = 0, P_PID = 1, P_PGID = 2;
/** si_code values for SIGCHLD (include/uapi/asm-generic/siginfo.h). */
const CLD_EXITED = 1, CLD_KILLED = 2, CLD_STOPPED = 5, CLD_CONTINUED = 6;
/** wait(2) status of a continued child (W_CONTINUED in glibc's bits/waitstatus.h). */
const W_CONTINUED = 0xffff;
/** sizeof(struct rusage) on 64-bit. */
const RUSAGE_SIZE = 144;

/** What a scan of the caller's children found: a child with something to report (and what), or any at all. */
interface Scan { zombie: ThreadGroup | null; any: boolean; event: 'exit' | 'stop' | 'cont' }

/** Looks for a child matching `match` (and the __WCLONE/__WALL rules): a zombie to report, or any at all. */
function scan(c: SysCtx, match: (g: ThreadGroup) => boolean, options: number): Scan {
  let any = false;
  for (const g of c.group.children) {
    if (!match(g)) continue;
    if (!(options & __WALL) && (g.exitSignal === SIGCHLD) === ((options & __WCLONE) !== 0)) continue;
    any = true;
    if (g.waitStatus !== null) {
      if (options & WEXITED_IMPLIED) return { zombie: g, any, event: 'exit' };
      continue;
    }
    if ((options & WUNTRACED) && g.stopReport !== 0) return { zombie: g, any, event: 'stop' };
    if ((options & WCONTINUED) && g.contReport) return { zombie: g, any, event: 'cont' };
  }
  return { zombie: null, any, event: 'exit' };
}

/**
 * The wait itself: reports a zombie through `report` (then reaps it unless
 * WNOWAIT), or 0 with WNOHANG, ECHILD without candidates, or sleeps.
 */
function waitFor(c: SysCtx, match: (g: ThreadGroup) => boolean, options: number,
  report: (g: ThreadGroup, event: Scan['event']) => number): number {
  const s = scan(c, match, options);
  if (!s.any) return -E.ECHILD;
  if (s.zombie !== null) {
    const g = s.zombie, r = report(g, s.event);
    if (r >= 0 && !(options & WNOWAIT)) {
      if (s.event === 'exit') c.kernel.reap(g);
      else if (s.event === 'stop') g.stopReport = 0;
      else g.contReport = false;
    }
    return r;
  }
  if (options & WNOHANG) return 0;
  if (!c.kernel.canSleep(c)) return -E.ECHILD; // unreachable: a live child is another task
  return c.kernel.block(c, {
    restart: true,
    ready: () => { const t = scan(c, match, options); return t.zombie !== null || !t.any; },
  });
}

/** The child selection of wait4's pid argument. */
function byPid(c: SysCtx, pid: number): (g: ThreadGroup) => boolean {
  if (pid > 0) return (g) => g.tgid === pid;
  if (pid === -1) return () => true;
  const pg = pid === 0 ? c.group.pgid : -pid;
  return (g) => g.pgid === pg;
}

function wait4(c: SysCtx, a: SysArgs): number {
  const pid = a.i32(0), statusPtr = a.u(1), options = a.i32(2), rusage = a.u(3);
  if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WALL | __WCLONE)) return -E.EINVAL;
  if (pid === -0x80000000) return -E.ESRCH; // INT_MIN cannot be negated (kernel/exit.c)
  return waitFor(c, byPid(c, pid), options | WEXITED_IMPLIED, (g, ev) => {
    const ws = ev === 'exit' ? g.waitStatus! : ev === 'stop' ? (g.stopReport << 8) | 0x7f : W_CONTINUED;
    if (statusPtr !== 0 && !c.write(statusPtr, u32(ws))) return -E.EFAULT;
    if (rusage !== 0 && !c.write(rusage, new Uint8Array(RUSAGE_SIZE))) return -E.EFAULT;
    return g.tgid;
  });
}

function waitid(c: SysCtx, a: SysArgs): number {
  const idtype = a.i32(0), id = a.i32(1), infop = a.u(2), options = a.i32(3), rusage = a.u(4);
  if (options & ~(WNOHANG | WNOWAIT | WEXITED | WUNTRACED | WCONTINUED | __WNOTHREAD | __WALL | __WCLONE)) return -E.EINVAL;
  if (!(options & (WEXITED | WUNTRACED | WCONTINUED))) return -E.EINVAL;
  let match: (g: ThreadGroup) => boolean;
  switch (idtype) {
    case P_ALL: match = () => true; break;
    case P_PID: if (id <= 0) return -E.EINVAL; match = (g) => g.tgid === id; break;
    case P_PGID: {
      if (id < 0) return -E.EINVAL;
      const pg = id === 0 ? c.group.pgid : id;
      match = (g) => g.pgid === pg;
      break;
    }
    default: return -E.EINVAL;
  }
  const info = (g: ThreadGroup | null, ev: Scan['event']): boolean => {
    if (infop === 0) return true;
    const b = new Uint8Array(32), dv = new DataView(b.buffer); // siginfo_t for SIGCHLD: signo, errno, code, pid, uid, status
    if (g !== null) {
      const ws = g.waitStatus ?? 0, killed = (ws & 0x7f) !== 0;
      dv.setInt32(0, SIGCHLD, true);
      dv.setInt32(8, ev === 'stop' ? CLD_STOPPED : ev === 'cont' ? CLD_CONTINUED : killed ? CLD_KILLED : CLD_EXITED, true);
      dv.setInt32(16, g.tgid, true);
      dv.setUint32(20, c.id.uid, true);
      dv.setInt32(24, ev === 'stop' ? g.stopReport : ev === 'cont' ? SIGCONT : killed ? ws & 0x7f : (ws >> 8) & 0xff, true);
    }
    return c.write(infop, b);
  };
  let reported = false;
  const r = waitFor(c, match, options & WEXITED ? options | WEXITED_IMPLIED : options, (g, ev) => {
    reported = true;
    if (!info(g, ev)) return -E.EFAULT;
    if (rusage !== 0 && !c.write(rusage, new Uint8Array(RUSAGE_SIZE))) return -E.EFAULT;
    return 0;
  });
  if (r === 0 && !reported && !info(null, 'exit')) return -E.EFAULT; // nothing to report: a zeroed siginfo
  return r;
}

/** Process-reaping syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const waitSyscalls: SyscallDef[] = [
  { nr: 95, name: 'waitid', fn: waitid },
  { nr: 260, name: 'wait4', fn: wait4 },
];
