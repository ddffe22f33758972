/**
 * clone(2): new processes and threads.
 *
 *  - fork as glibc issues it (CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|
 *    SIGCHLD): a child process with a copy of the address space (a fresh
 *    RAM holding the touched pages, AddressSpace.copyInto), of the fd
 *    table (sharing the open file descriptions, so offsets are shared as
 *    POSIX requires), the working directory, umask, limits and signal
 *    dispositions.
 *  - CLONE_VM without CLONE_THREAD (vfork; posix_spawn's
 *    CLONE_VM|CLONE_VFORK): a child process running in the parent's address
 *    space until it execs; with CLONE_VFORK the parent sleeps until then
 *    (or until the child exits).
 *  - pthread_create's CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|
 *    CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|
 *    CLONE_CHILD_CLEARTID: a thread with its own hart in the same space.
 *
 * The child starts after the ecall with a0 = 0 (and sp = newsp if given,
 * tp = tls with CLONE_SETTLS). riscv64's argument order is flags, newsp,
 * parent_tid, tls, child_tid. clone3 stays -ENOSYS: glibc falls back to
 * clone. Namespaces are refused with EPERM, CLONE_PIDFD with EINVAL.
 */
import { SysCtx, type SysArgs, type SyscallDef } from './sys-context.js';
import { GuestProcess } from './guest-process.js';
import { GuestMemoryError, type GuestMemory } from '../memory/guest-memory.js';
import type { AddressSpace } from './address-space.js';
import { MAX_TASKS } from './kernel.js';
import { S } from '../cpu/hart-state.js';
import {
  E, u32, CSIGNAL, CLONE_VM, CLONE_FS, CLONE_SIGHAND, CLONE_PIDFD, CLONE_VFORK, CLONE_PARENT, CLONE_THREAD,
  CLONE_NEWNS, CLONE_SETTLS, CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_NEWCGROUP,
  CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
} from './sys-abi.js';

const NAMESPACES = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;

/** The registers a child starts with: the parent's, past the ecall, a0 = 0. */
function copyRegisters(from: GuestProcess, to: GuestProcess): void {
  const src = from.hart.st, dst = to.hart.st;
  dst.x.set(src.x);
  dst.f.set(src.f);
  dst.s.set(src.s);
  dst.instret = src.instret;
  dst.s[S.RES_VALID] = 0;
  dst.setPc(src.getPc() + 4);
  dst.setX(10, 0);
}

/** Creates a task as clone(2) does; returns the child's tid (or BLOCKED: a vfork parent sleeps) or -errno. */
export function cloneTask(c: SysCtx, flags: number, newsp: number, ptid: number, tls: number, ctid: number): number {
  const k = c.kernel;
  if ((flags & CLONE_THREAD) && !(flags & CLONE_SIGHAND)) return -E.EINVAL;
  if ((flags & CLONE_SIGHAND) && !(flags & CLONE_VM)) return -E.EINVAL;
  if ((flags & CLONE_FS) && (flags & CLONE_NEWNS)) return -E.EINVAL;
  if (flags & NAMESPACES) return -E.EPERM;
  if (flags & CLONE_PIDFD) return -E.EINVAL;
  if (k.taskCount() >= MAX_TASKS || k.sandbox?.pidsExhausted(k) === true) return -E.EAGAIN;
  const thread = (flags & CLONE_THREAD) !== 0;
  let image: { ram: GuestMemory; mem: AddressSpace };
  if (flags & CLONE_VM) {
    image = { ram: c.proc.ram, mem: c.mem };
  } else {
    if (k.committedBytes() + c.mem.committedBytes > k.memoryLimit) return -E.ENOMEM;
    let ram: GuestMemory;
    try {
      ram = k.takeRam(c.proc.ram.size, c.proc.opts);
    } catch (e) {
      if (e instanceof RangeError) return -E.ENOMEM; // the host could not reserve another RAM block
      throw e;
    }
    try {
      image = { ram, mem: c.mem.copyInto(ram) };
    } catch (e) {
      if (!(e instanceof GuestMemoryError)) throw e;
      ram.release?.(); // the RAM could not provide the child's pages: fork fails as Linux's does when out of memory
      return -E.ENOMEM;
    }
  }
  const tid = k.allocPid();
  if (tid < 0) return -E.EAGAIN;
  const proc = new GuestProcess(c.proc.opts, thread ? c.proc.pid : tid, image, tid);
  proc.exePath = c.proc.exePath;
  copyRegisters(c.proc, proc);
  if (newsp !== 0) proc.hart.st.setX(2, newsp);
  if (flags & CLONE_SETTLS) proc.hart.st.setX(4, tls);
  const child = new SysCtx(proc, c.host, c.log, c, flags);
  if ((flags & (CLONE_VM | CLONE_VFORK)) === CLONE_VM) {
    child.sig.altEnabled = false; child.sig.altSp = 0; child.sig.altSize = 0; // kernel/fork.c: not on a shared stack
  }
  if (thread) k.addThread(child, c.group);
  else k.addProcess(child, c, flags & CSIGNAL, (flags & CLONE_PARENT) !== 0);
  if (flags & CLONE_CHILD_SETTID) child.mem.write(ctid, u32(tid));
  if (flags & CLONE_CHILD_CLEARTID) child.tidAddress = ctid;
  if (flags & CLONE_PARENT_SETTID) c.mem.write(ptid, u32(tid));
  if ((flags & CLONE_VFORK) && !thread) {
    const g = child.group;
    g.vforkDone = false;
    return k.block(c, { restart: false, killable: true, ready: () => g.vforkDone === true, complete: () => tid });
  }
  return tid;
}

function clone(c: SysCtx, a: SysArgs): number {
  return cloneTask(c, a.u32(0), a.u(1), a.u(2), a.u(3), a.u(4));
}

/** Process-creation syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const cloneSyscalls: SyscallDef[] = [
  { nr: 220, name: 'clone', fn: clone },
];
