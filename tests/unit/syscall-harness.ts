/**
 * Test harness for the syscall layer: a GuestProcess with a scratch page
 * range, a LinuxSyscalls on the real host (NodeHostOs), and helpers to put
 * strings in guest memory and issue syscalls through the registers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestProcess } from '../../src/process/guest-process.js';
import { LinuxSyscalls } from '../../src/process/syscalls.js';
import { NodeHostOs } from '../../src/host/node-host-os.js';
import type { GuestMemory } from '../../src/memory/guest-memory.js';
import type { VmTerminal } from '../../src/process/sys-tty.js';
import type { SysCtx } from '../../src/process/sys-context.js';
import { BLOCKED } from '../../src/process/kernel.js';

/** Guest address of the scratch area the helpers allocate from. */
export const SCRATCH = 0x100000;
const SCRATCH_LEN = 0x100000;

/** A syscall-level test fixture. */
export class Harness {
  readonly proc: GuestProcess;
  readonly sys: LinuxSyscalls;
  readonly log: string[] = [];
  private next = SCRATCH;

  /** `memory` makes the process's RAM blocks (default GuestRam). */
  constructor(opts: { root?: string; trace?: boolean; exePath?: string; memory?: (bytes: number) => GuestMemory; terminal?: VmTerminal } = {}) {
    this.proc = new GuestProcess({
      memoryBytes: 32 << 20, root: opts.root, trace: opts.trace ?? false, memory: opts.memory, ...(opts.terminal ? { terminal: opts.terminal } : {}),
    }, 4242);
    this.proc.exePath = opts.exePath ?? '/bin/prog';
    this.proc.mem.mmap(SCRATCH, SCRATCH_LEN, 3, true);
    this.sys = new LinuxSyscalls(this.proc, new NodeHostOs(), (l) => this.log.push(l));
  }

  /** Allocates `n` zeroed bytes of guest memory (16-byte aligned). */
  alloc(n: number): number {
    const at = this.next;
    this.next += Math.ceil(Math.max(n, 1) / 16) * 16;
    return at;
  }

  /** Places a NUL-terminated string in guest memory; returns its address. */
  str(s: string): number {
    const b = new TextEncoder().encode(s + '\0'), at = this.alloc(b.length);
    this.proc.mem.write(at, b);
    return at;
  }

  /** Places raw bytes in guest memory. */
  bytes(b: Uint8Array): number {
    const at = this.alloc(b.length);
    this.proc.mem.write(at, b);
    return at;
  }

  /** Reads guest memory. */
  read(addr: number, n: number): Uint8Array {
    const b = this.proc.mem.read(addr, n);
    if (!b) throw new Error(`cannot read guest 0x${addr.toString(16)}`);
    return b;
  }

  /** Reads a guest string of known length. */
  text(addr: number, n: number): string {
    return new TextDecoder().decode(this.read(addr, n));
  }

  /** Issues syscall `nr` with arguments; returns a0 as a signed number. */
  call(nr: number, ...args: number[]): number {
    const st = this.proc.hart.st;
    st.setX(17, nr);
    for (let i = 0; i < 6; i++) st.setX(10 + i, args[i] ?? 0);
    this.sys.handle();
    return st.getX(10);
  }

  /** Reads a little-endian signed 32-bit value. */
  i32(addr: number): number {
    return new DataView(this.read(addr, 4).buffer).getInt32(0, true);
  }

  /** Reads a little-endian 64-bit value as a number. */
  u64(addr: number): number {
    return Number(new DataView(this.read(addr, 8).buffer).getBigUint64(0, true));
  }
}

const made: string[] = [];
process.on('exit', () => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }); });

/** A fresh temporary directory (real path), removed when the test process exits. */
export function tempDir(tag: string): string {
  const d = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `tsvm-${tag}-`)));
  made.push(d);
  return d;
}

/** Syscall numbers used by the tests (include/uapi/asm-generic/unistd.h). */
export const NR = {
  getcwd: 17, dup: 23, dup3: 24, fcntl: 25, ioctl: 29, mkdirat: 34, unlinkat: 35, symlinkat: 36,
  renameat: 38, faccessat: 48, chdir: 49, openat: 56, close: 57, pipe2: 59, getdents64: 61, lseek: 62,
  read: 63, write: 64, writev: 66, pread64: 67, readlinkat: 78, newfstatat: 79, fstat: 80, exit: 93,
  exit_group: 94, set_tid_address: 96, clock_gettime: 113, kill: 129, tgkill: 131, rt_sigaction: 134,
  rt_sigprocmask: 135, rt_sigreturn: 139, uname: 160, getpid: 172, socket: 198, brk: 214, munmap: 215,
  mmap: 222, madvise: 233, riscv_hwprobe: 258, prlimit64: 261, getrandom: 278, rseq: 293, statx: 291, clone3: 435,
} as const;

/** Constants used by the tests. */
export const AT_FDCWD = -100, O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_TRUNC = 0o1000,
  O_CLOEXEC = 0o2000000, O_DIRECTORY = 0o200000, O_NONBLOCK = 0o4000;

/** Issues syscall `nr` as task `c`; returns a0, or BLOCKED if the task went to sleep. */
export function callAs(h: Harness, c: SysCtx, nr: number, ...args: number[]): number {
  h.sys.current = c;
  const st = c.proc.hart.st;
  st.setX(17, nr);
  for (let i = 0; i < 6; i++) st.setX(10 + i, args[i] ?? 0);
  h.sys.handle();
  return c.wait !== null ? BLOCKED : st.getX(10);
}
