/**
 * The Linux syscall layer of the process VM (riscv64, asm-generic numbers).
 *
 * On `ecall` the run loop calls `handle()`: it reads the number from a7
 * and the arguments from a0..a5, dispatches through a table indexed by
 * number, and writes the result to a0 (a negative errno on failure, as the
 * kernel ABI does). Then pending signals are acted on. The run loop
 * advances pc by 4 afterwards and stops once `proc.exitStatus` is set.
 *
 * Handlers live in sys-*.ts by area. An unknown or unimplemented number
 * returns -ENOSYS and logs `tsvm: unsupported syscall N (name)` once per
 * number, except for the calls in QUIET_ENOSYS, which glibc and common
 * tools probe and fall back from.
 *
 * One LinuxSyscalls serves every task of the VM: the scheduler makes a
 * task `current` before running it (run-process.ts). A handler that puts
 * its task to sleep returns BLOCKED: a0 is left alone and the pc stays on
 * the ecall, which runs again when the task wakes (kernel.ts).
 *
 * Sockets are the VM's own network namespace (sys-net.ts, netns.ts).
 * Not available: clone3 (glibc falls back to clone), epoll, inotify,
 * timers and signalfd/eventfd; all return -ENOSYS.
 */
import type { GuestProcess } from './guest-process.js';
import type { Kernel } from './kernel.js';
import { BLOCKED } from './kernel.js';
import type { HostOs } from './host-os.js';
import { SysCtx, SysArgs, type Handler, type SyscallDef } from './sys-context.js';
import { E } from './sys-abi.js';
import { syscallName } from './sys-names.js';
import { formatTrace } from './sys-trace.js';
import { ioSyscalls } from './sys-io.js';
import { fileSyscalls } from './sys-files.js';
import { fsMetaSyscalls } from './sys-fsmeta.js';
import { memorySyscalls } from './sys-memory.js';
import { timeSyscalls } from './sys-time.js';
import { itimerSyscalls } from './sys-itimer.js';
import { processSyscalls } from './sys-process.js';
import { signalSyscalls, deliverPending, deliverFault, KEEP_REGS } from './sys-signals.js';
import { cloneSyscalls } from './sys-clone.js';
import { execSyscalls } from './sys-exec.js';
import { waitSyscalls } from './sys-wait.js';
import { futexSyscalls } from './sys-futex.js';
import { netSyscalls } from './sys-net.js';

/**
 * Calls answered with -ENOSYS without a warning: glibc and common programs
 * probe them and fall back (numbers from include/uapi/asm-generic/unistd.h).
 */
export const QUIET_ENOSYS: ReadonlySet<number> = new Set([
  283, // membarrier: glibc/libstdc++ probe it
  285, // copy_file_range: coreutils and others fall back to read/write
  293, // rseq: glibc registers it at startup if available
  435, // clone3: glibc falls back to clone
  437, // openat2: callers fall back to openat
  424, 434, 438, // pidfd_send_signal, pidfd_open, pidfd_getfd
  444, 445, 446, // landlock_*
  425, // io_uring_setup
]);

/** Highest syscall number the table covers. */
const TABLE_SIZE = 512;

/** Registers (x numbers) of the syscall ABI: a7 holds the number, a0..a5 the arguments. */
const REG_A0 = 10, REG_A7 = 17;

/** The syscall dispatcher for the tasks of one VM. */
export class LinuxSyscalls {
  /** The task whose syscalls are handled now (the scheduler switches it). */
  current: SysCtx;
  /** The VM's process table and scheduler. */
  readonly kernel: Kernel;
  private readonly table: Array<SyscallDef | undefined> = new Array<SyscallDef | undefined>(TABLE_SIZE);
  private readonly args = new SysArgs();

  /** A VM whose root task is `proc` (already loaded). */
  constructor(proc: GuestProcess, readonly host: HostOs, readonly log: (line: string) => void) {
    this.current = new SysCtx(proc, host, log);
    this.kernel = this.current.kernel;
    const all = [ioSyscalls, fileSyscalls, fsMetaSyscalls, memorySyscalls, timeSyscalls, itimerSyscalls, processSyscalls, signalSyscalls,
      cloneSyscalls, execSyscalls, waitSyscalls, futexSyscalls, netSyscalls];
    for (const group of all) for (const d of group) this.table[d.nr] = d;
  }

  /** State the handlers use for the current task (fd table, VFS, signals, ...). */
  get ctx(): SysCtx { return this.current; }

  /** The current task's process. */
  get proc(): GuestProcess { return this.current.proc; }

  /** Registers or replaces a handler (for tests and later extensions). */
  define(nr: number, name: string, fn: Handler): void {
    this.table[nr] = { nr, name, fn };
  }

  /** True if syscall `nr` has a handler. */
  has(nr: number): boolean {
    return this.table[nr] !== undefined;
  }

  /**
   * Offers a synchronous fault (e.g. SIGSEGV at the faulting pc, `addr` =
   * the bad address) to the guest's signal handler. True: the handler is
   * now set up to run at pc (the run loop continues without advancing pc);
   * false: the fault is fatal.
   */
  deliverFault(sig: number, addr: number): boolean {
    return deliverFault(this.ctx, sig, addr);
  }

  /** Executes the syscall the current task's registers describe. */
  handle(): void {
    const c = this.current, x = c.proc.hart.st.x, a = this.args;
    const nrLo = x[2 * REG_A7]!, nrHi = x[2 * REG_A7 + 1]!;
    for (let i = 0; i < 6; i++) { a.lo[i] = x[2 * (REG_A0 + i)]!; a.hi[i] = x[2 * (REG_A0 + i) + 1]!; }
    const nr = nrHi === 0 && nrLo >= 0 && nrLo < TABLE_SIZE ? nrLo : -1;
    const def = nr >= 0 ? this.table[nr] : undefined;
    const trace = c.proc.opts.trace;
    // execve replaces the memory the arguments point into: format its line first.
    const pre = trace && (nr === 221 || nr === 281) ? formatTrace(c, def?.name ?? '', a, undefined) : null;
    let r: number;
    if (def) {
      r = def.fn(c, a);
    } else {
      r = -E.ENOSYS;
      if (!QUIET_ENOSYS.has(nr)) {
        const shown = nr >= 0 ? nr : c.proc.hart.st.getX(REG_A7);
        c.warnOnce(nr, `tsvm: unsupported syscall ${shown} (${syscallName(shown)})`);
      }
    }
    if (r === BLOCKED) return; // asleep: retried (and traced) when it wakes
    c.retryDeadline = null;
    c.lastResort = false;
    const st = c.proc.hart.st; // execve may have replaced the hart
    if (trace) {
      const name = def?.name ?? syscallName(nr);
      const exiting = c.proc.exitStatus !== null && (name === 'exit' || name === 'exit_group');
      const shown = exiting ? undefined : r === KEEP_REGS ? st.getX(REG_A0) : r;
      const line = pre !== null && r === 0 ? pre.replace(/ = \?$/, ` = ${shown ?? '?'}`) : formatTrace(c, name, a, shown);
      this.log(this.kernel.tasks.length > 1 || c.group !== this.kernel.root ? `[pid ${c.tid}] ${line}` : line);
    }
    if (r !== KEEP_REGS) st.setX(REG_A0, r);
    if (c.sig.pending !== 0n) deliverPending(c);
  }
}
