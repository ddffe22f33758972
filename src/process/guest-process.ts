/**
 * One guest task (a thread; a single-threaded process is one task) of the
 * process VM: a hart, the address space it runs in and the identity the
 * syscall layer works on. Threads and CLONE_VM children share `ram` and
 * `mem` with their parent; a forked child gets a copy; execve replaces
 * them. The run loop lives in `runProcess` (run-process.ts); the syscalls
 * in the syscall layer.
 */
import { GuestRam } from '../memory/guest-ram.js';
import type { VmTerminal } from './sys-tty.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { Hart } from '../cpu/hart.js';
import { AddressSpace, type FrameBudget } from './address-space.js';
import { JitEngines, PROCESS_VM_THRESHOLD } from '../jit/engine.js';
import { defaultJitConfig, type JitConfig } from '../jit/jit-config.js';

/** Options that shape a process VM. */
export interface ProcessOptions {
  /** Guest RAM in bytes (backs all touched pages of one process). */
  memoryBytes: number;
  /** Told of every frame an address space of the VM newly backs (a container's memory limit), if any. */
  frameBudget?: FrameBudget;
  /** Guest root directory (`--root`), or undefined for the host's `/`. */
  root?: string;
  /** Print an strace-like line per syscall to stderr. */
  trace: boolean;
  /** The VM's JIT settings; absent: the process default (defaultJitConfig) when the root task is made. */
  jit?: JitConfig;
  /** The VM's JIT engines, shared by all its tasks (made with the root task; callers leave it unset). */
  jitEngines?: JitEngines;
  /**
   * Makes the RAM of a new address space (`bytes` long, zeroed); absent: a
   * GuestRam. The process VM reaches it only through the GuestMemory
   * interface, so any implementation serves (e.g. a PooledRam on a host's pool).
   */
  memory?: (bytes: number) => GuestMemory;
  /** An emulated terminal (`tsvm exec --tty`): the first process's stdio and controlling terminal; absent: the host's fds. */
  terminal?: VmTerminal;
}

/** A new RAM block for an address space of a VM with options `opts` (may throw RangeError). */
export function newProcessRam(opts: ProcessOptions, bytes: number): GuestMemory {
  return opts.memory !== undefined ? opts.memory(bytes) : new GuestRam(bytes);
}

/** A guest task: hart + address space + identity. */
export class GuestProcess {
  /** Guest RAM backing `mem` (shared by the tasks that share `mem`). */
  ram: GuestMemory;
  /** The address space (shared by threads and CLONE_VM children). */
  mem: AddressSpace;
  /** This task's hart (registers and TLB). */
  hart: Hart;
  readonly opts: ProcessOptions;
  /** The program path as the guest sees it (for /proc/self/exe, AT_EXECFN). */
  exePath = '';
  /** Set once the task has ended (exit, exit_group or a fatal signal): a shell-style status. */
  exitStatus: number | null = null;
  /** The process id (thread group id); the root process gets a stable fake one like qemu-user's (the host's pid). */
  pid: number;
  /** The thread id (equal to `pid` for a process's main thread). */
  tid: number;

  /** A task with a fresh address space, or one sharing `image` (a thread or CLONE_VM child). */
  constructor(opts: ProcessOptions, pid: number, image?: { ram: GuestMemory; mem: AddressSpace }, tid = pid) {
    // The root task of a VM makes the VM's engines (with its own copy of the settings); every later
    // task gets its parent's opts, and so the same engines.
    this.opts = opts.jitEngines ? opts : { ...opts, jitEngines: new JitEngines(opts.jit ?? defaultJitConfig(), PROCESS_VM_THRESHOLD) };
    this.ram = image?.ram ?? newProcessRam(opts, opts.memoryBytes);
    this.mem = image?.mem ?? new AddressSpace(this.ram);
    if (opts.frameBudget !== undefined) this.mem.budget = opts.frameBudget;
    this.hart = new Hart(this.ram, this.mem);
    // Fetches get a TLB of their own: in a shared one, every data page that maps to a code page's
    // entry evicts its fetch translation (sort's arrays vs. qsort calling cmp through jalr: 14 K
    // dispatcher trips per 300 K elements, each a failed IBTC check).
    this.hart.fetchTlb = this.hart.addTlb();
    this.mem.harts.push(this.hart);
    this.jitEngines.attach(this.hart);
    this.pid = pid;
    this.tid = tid;
  }

  /** The VM's JIT engines. */
  get jitEngines(): JitEngines { return this.opts.jitEngines!; }

  /** Unregisters this task's hart from its address space (the task exits or leaves the space). */
  detach(): void {
    const i = this.mem.harts.indexOf(this.hart);
    if (i >= 0) this.mem.harts.splice(i, 1);
  }

  /** Frees this task's hart slot (the task is gone and its hart will not run again). */
  release(): void {
    this.detach();
    this.jitEngines.detach(this.hart);
    this.hart.release();
  }

  /** Takes over the freshly loaded image of `other` (execve's point of no return). */
  adopt(other: GuestProcess): void {
    this.release();
    other.detach();
    this.ram = other.ram;
    this.mem = other.mem;
    this.hart = other.hart;
    this.mem.harts.push(this.hart);
    this.exePath = other.exePath;
  }
}
