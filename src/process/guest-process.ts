/**
 * One guest Linux process of the process VM: a hart, its address space and
 * the process-level state the syscall layer works on. The run loop lives in
 * `runProcess` (run-process.ts); the syscalls in the syscall layer.
 */
import { GuestRam } from '../memory/guest-ram.js';
import { Hart } from '../cpu/hart.js';
import { AddressSpace } from './address-space.js';

/** Options that shape a process VM. */
export interface ProcessOptions {
  /** Guest RAM in bytes (backs all touched pages of the process). */
  memoryBytes: number;
  /** Guest root directory (`--root`), or undefined for the host's `/`. */
  root?: string;
  /** Print an strace-like line per syscall to stderr. */
  trace: boolean;
}

/** A guest process: hart + address space + identity. */
export class GuestProcess {
  readonly ram: GuestRam;
  readonly mem: AddressSpace;
  readonly hart: Hart;
  readonly opts: ProcessOptions;
  /** The program path as the guest sees it (for /proc/self/exe, AT_EXECFN). */
  exePath = '';
  /** Set by exit/exit_group or a fatal signal: the host exit status. */
  exitStatus: number | null = null;
  /** Fake process identity, stable like qemu-user's (the host's pid). */
  pid: number;

  constructor(opts: ProcessOptions, pid: number) {
    this.opts = opts;
    this.ram = new GuestRam(opts.memoryBytes);
    this.mem = new AddressSpace(this.ram);
    this.hart = new Hart(this.ram, this.mem);
    this.mem.tlbs.push(this.hart.tlb);
    this.pid = pid;
  }
}
