/**
 * Signals: dispositions (rt_sigaction), the blocked mask, pending signals,
 * the alternate stack, and delivery.
 *
 * Signals come from the guest's own tasks (kill, tgkill and friends,
 * SIGCHLD when a child exits, SIGPIPE from a write to a broken pipe).
 * Dispositions are per process (shared by threads: CLONE_SIGHAND), the
 * blocked mask and the pending set per thread; a signal sent to a process
 * is queued on a thread that does not block it (kernel.ts). After every
 * syscall, and when the scheduler resumes a task, pending unblocked signals
 * are acted on: ignored, fatal (the whole process dies; the root process
 * logs one line), or delivered to the guest's handler through an
 * rt_sigframe laid out as the riscv kernel does (arch/riscv/kernel/signal.c:
 * siginfo, then ucontext with the saved registers in uc_mcontext),
 * returning through a two-instruction trampoline page (one per address
 * space) that calls rt_sigreturn.
 *
 * The run loop advances pc by 4 after each ecall, so redirecting the hart
 * to address A sets pc to A - 4.
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import {
  E, NSIG, SIGKILL, SIGSTOP, SIGCHLD, SIGCONT, SIGURG, SIGWINCH, SIGTSTP, SIGTTIN, SIGTTOU, SIGSEGV, u64,
} from './sys-abi.js';
import { PROT_READ, PROT_EXEC } from './address-space.js';
import { S } from '../cpu/hart-state.js';

/** Returned by a handler that has set a0 itself (rt_sigreturn): handle() leaves a0 alone. */
export const KEEP_REGS = -0x100_0000_0000;

/** sa_flags bits (include/uapi/asm-generic/signal-defs.h). */
export const SA_NOCLDSTOP = 0x1, SA_NOCLDWAIT = 0x2, SA_ONSTACK = 0x08000000, SA_RESTART = 0x10000000, SA_NODEFER = 0x40000000,
  SA_RESETHAND = 0x80000000;
/** SIG_DFL / SIG_IGN handler values. */
export const SIG_DFL = 0, SIG_IGN = 1;
/** sigaltstack ss_flags (include/uapi/linux/signal.h) and MINSIGSTKSZ (asm-generic/signal.h). */
const SS_ONSTACK = 1, SS_DISABLE = 2, MINSIGSTKSZ = 2048;
/** si_code values (include/uapi/asm-generic/siginfo.h). */
export const SI_USER = 0, SI_TKILL = -6, SI_QUEUE = -1, SI_KERNEL = 0x80;
/** rt_sigprocmask `how` (asm-generic/signal-defs.h). */
const SIG_BLOCK = 0, SIG_UNBLOCK = 1, SIG_SETMASK = 2;
/** Kernel sigset_t size for riscv64 (_NSIG / 8). */
const SIGSET_SIZE = 8;

/** rt_sigframe layout (arch/riscv/kernel/signal.c; uapi asm/ucontext.h, asm/sigcontext.h). */
const SIGINFO_SIZE = 128, UC_OFF = 128, UC_SIGMASK = 40, UC_STACK = 16, UC_MCONTEXT = 176;
const SC_FPREGS = 256, SC_FCSR = 256 + 256, FRAME_SIZE = SIGINFO_SIZE + 960;

/** One signal's disposition. */
export interface SigAction { handler: number; flags: number; mask: bigint }

/** The sigset bit of `sig`. */
export const bit = (sig: number): bigint => 1n << BigInt(sig - 1);
/** Signals no mask can block. */
export const UNBLOCKABLE = bit(SIGKILL) | bit(SIGSTOP);
const ALL = (1n << 64n) - 1n;
/** The kernel's SIGRTMIN: every instance of a signal from here on is queued (glibc keeps 32 and 33 for itself). */
const SIGRTMIN_KERNEL = 32;
/** Most real-time signal instances queued per task, an RLIMIT_SIGPENDING-like bound. */
const RT_QUEUE_MAX = 1024;
/** Index of RLIMIT_SIGPENDING in c.rlimits (include/uapi/asm-generic/resource.h). */
const RLIMIT_SIGPENDING = 11;
/** Bytes of siginfo rt_sigqueueinfo takes from the caller (sizeof(struct kernel_siginfo)). */
const KERNEL_SIGINFO_SIZE = 48;

/** One queued instance of a real-time signal: si_code and sender, or the siginfo given to rt_sigqueueinfo. */
export interface QueuedSignal { code: number; pid: number; uid: number; image: Uint8Array | null }

/**
 * Runs a send through the kernel and returns its result, or -EAGAIN if
 * raiseSignal refused to queue the signal (the kernel's send paths do not
 * pass raiseSignal's result on).
 */
function sendChecked(c: SysCtx, send: () => number): number {
  const k = c.kernel;
  k.raiseRefused = 0;
  const r = send();
  return r < 0 ? r : k.raiseRefused;
}

/** Per-thread signal state; `actions` is shared by the threads of a process. */
export class SignalState {
  /** Dispositions indexed by signal number (shared with CLONE_SIGHAND). */
  readonly actions: SigAction[];
  blocked = 0n;
  pending = 0n;
  /** si_code and sending pid of each pending signal. */
  readonly codes = new Map<number, number>();
  readonly senders = new Map<number, number>();
  /** Queued instances of each pending real-time signal, oldest first (its pending bit stays set while any is left). */
  readonly rtQueue = new Map<number, QueuedSignal[]>();
  altSp = 0;
  altSize = 0;
  altEnabled = false;
  /** Mask to save in the next frame instead of `blocked` (rt_sigsuspend). */
  suspendSaved: bigint | null = null;

  /** Fresh dispositions, or `shared` ones (a thread sharing its process's handlers). */
  constructor(shared?: SigAction[]) {
    this.actions = shared ?? Array.from({ length: NSIG + 1 }, () => ({ handler: SIG_DFL, flags: 0, mask: 0n }));
  }

  /** The state a child process starts with (fork): copied dispositions and mask, nothing pending. */
  forked(shareActions: boolean): SignalState {
    const s = new SignalState(shareActions ? this.actions : this.actions.map((a) => ({ ...a })));
    s.blocked = this.blocked;
    s.altSp = this.altSp; s.altSize = this.altSize; s.altEnabled = this.altEnabled;
    return s;
  }

  /** execve: caught signals revert to their default action; ignored ones stay ignored; no alternate stack. */
  resetForExec(): void {
    this.actions.forEach((a, i) => {
      this.actions[i] = { handler: a.handler === SIG_IGN ? SIG_IGN : SIG_DFL, flags: 0, mask: 0n };
    });
    this.altEnabled = false; this.altSp = 0; this.altSize = 0;
    this.suspendSaved = null;
  }
}

/** Whether a signal's default action ignores it (kernel/signal.c sig_kernel_ignore). */
export function defaultIgnored(sig: number): boolean {
  return sig === SIGCHLD || sig === SIGCONT || sig === SIGURG || sig === SIGWINCH;
}

/** The stop signals (kernel/signal.c SIG_KERNEL_STOP_MASK). */
export const STOP_SIGNALS = bit(SIGSTOP) | bit(SIGTSTP) | bit(SIGTTIN) | bit(SIGTTOU);

/** Whether a signal's default action stops the process. */
export function defaultStops(sig: number): boolean {
  return (STOP_SIGNALS & bit(sig)) !== 0n;
}

/**
 * Acts on the pending, unblocked stop signals of `c` whose action is the
 * default: takes them off and stops its process (kernel.ts stopGroup).
 * Stop signals do not end a sleep: the task stays in its wait, stopped,
 * and sees its wait again once continued (as a restarted syscall).
 */
export function applyStops(c: SysCtx): void {
  const s = c.sig, ready = s.pending & ~s.blocked & STOP_SIGNALS;
  if (ready === 0n) return;
  for (const sig of [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU]) {
    if ((ready & bit(sig)) === 0n || (sig !== SIGSTOP && s.actions[sig]!.handler !== SIG_DFL)) continue;
    s.pending &= ~bit(sig);
    c.kernel.stopGroup(c.group, sig);
  }
}

/**
 * Queues `sig` for the task `c` (acted on after its current syscall, or
 * when it next runs); 0 or -EAGAIN. A standard signal already pending is
 * not queued again; every instance of a real-time one is, with its own
 * siginfo (`image`: the one given to rt_sigqueueinfo), up to RT_QUEUE_MAX
 * (or a lower RLIMIT_SIGPENDING) queued per task, past which the send
 * fails with -EAGAIN, except kill()'s (SI_USER), which stays pending
 * without its siginfo as in Linux.
 */
export function raiseSignal(c: SysCtx, sig: number, code = SI_USER, from = c.proc.pid, image: Uint8Array | null = null): number {
  if (sig < 1 || sig > NSIG) return 0;
  const s = c.sig, b = bit(sig);
  // kernel/signal.c prepare_signal: SIGCONT resumes a stopped process (SIGKILL ends it: kernel.ts next), a stop signal cancels a pending SIGCONT.
  if (sig === SIGCONT) c.kernel.continueGroup(c.group);
  else if (defaultStops(sig)) for (const t of c.group.threads) t.sig.pending &= ~bit(SIGCONT);
  if (s.actions[sig]!.handler === SIG_IGN && sig !== SIGKILL) return 0;
  if (sig < SIGRTMIN_KERNEL) {
    if ((s.pending & b) !== 0n) return 0; // standard signals do not queue: the first one's siginfo stays
    s.pending |= b;
    s.codes.set(sig, code);
    s.senders.set(sig, from);
    return 0;
  }
  const img = image ?? c.kernel.stagedSigInfo;
  if ((s.pending & b) === 0n) s.rtQueue.delete(sig);
  let queued = 0;
  for (const q of s.rtQueue.values()) queued += q.length;
  const lim = c.rlimits[RLIMIT_SIGPENDING]?.[0] ?? BigInt(RT_QUEUE_MAX);
  if (queued >= Math.min(RT_QUEUE_MAX, Number(lim))) {
    // Over the limit (kernel/signal.c __send_signal): kill()'s signal stays pending without its siginfo.
    if ((img ? new DataView(img.buffer, img.byteOffset).getInt32(8, true) : code) !== SI_USER) {
      c.kernel.raiseRefused = -E.EAGAIN;
      return -E.EAGAIN;
    }
    s.pending |= b;
    return 0;
  }
  const q = s.rtQueue.get(sig) ?? [];
  q.push({ code, pid: from, uid: c.id.uid, image: img ? img.slice(0, KERNEL_SIGINFO_SIZE) : null });
  s.rtQueue.set(sig, q);
  s.pending |= b;
  return 0;
}

/**
 * The signal that pending, unblocked signals would make the task act on
 * (run a handler or die), or 0 if all of them would be ignored.
 */
export function actionableSignal(c: SysCtx): number {
  const ready = c.sig.pending & ~c.sig.blocked;
  if (ready === 0n) return 0;
  for (let sig = 1; sig <= NSIG; sig++) {
    if ((ready & bit(sig)) === 0n) continue;
    const h = c.sig.actions[sig]!.handler;
    if (sig === SIGKILL || (h !== SIG_IGN && !(h === SIG_DFL && (defaultIgnored(sig) || defaultStops(sig))))) return sig;
  }
  return 0;
}

/** Terminates the process by signal `sig`. */
function die(c: SysCtx, sig: number): void {
  c.kernel.killGroup(c, sig);
}

/**
 * Takes one pending instance of `sig` off task `c` and returns its siginfo
 * (SIGINFO_SIZE bytes). A standard signal is then no longer pending; a
 * real-time one only once its queue is empty.
 */
function takeSignal(c: SysCtx, sig: number): Uint8Array {
  const s = c.sig, info = new Uint8Array(SIGINFO_SIZE), dv = new DataView(info.buffer);
  let code = s.codes.get(sig) ?? SI_USER, pid = s.senders.get(sig) ?? c.proc.pid, uid = c.id.uid;
  if (sig >= SIGRTMIN_KERNEL) {
    const q = s.rtQueue.get(sig), e = q?.shift();
    if (!q || q.length === 0) { s.rtQueue.delete(sig); s.pending &= ~bit(sig); }
    if (e?.image) {
      info.set(e.image.subarray(0, KERNEL_SIGINFO_SIZE));
      dv.setInt32(0, sig, true);
      return info;
    }
    // No entry: sent by kill() past the queue limit, so its siginfo was lost (kernel/signal.c collect_signal).
    [code, pid, uid] = e ? [e.code, e.pid, e.uid] : [SI_USER, 0, 0];
  } else {
    s.pending &= ~bit(sig);
  }
  // si_signo, si_errno, si_code, then the kill fields si_pid, si_uid.
  dv.setInt32(0, sig, true); dv.setInt32(8, code, true);
  dv.setInt32(16, pid, true); dv.setUint32(20, uid, true);
  return info;
}

/** Acts on pending unblocked signals; call after the syscall result is in a0. */
export function deliverPending(c: SysCtx): void {
  const s = c.sig;
  for (;;) {
    if (c.proc.exitStatus !== null) return;
    const ready = s.pending & ~s.blocked;
    if (ready === 0n) break;
    let sig = 1;
    while ((ready & bit(sig)) === 0n) sig++;
    const info = takeSignal(c, sig);
    const act = s.actions[sig]!;
    if (act.handler === SIG_IGN && sig !== SIGKILL) continue;
    if (act.handler === SIG_DFL || sig === SIGKILL) {
      if (defaultIgnored(sig)) continue;
      if (sig !== SIGKILL && defaultStops(sig)) { c.kernel.stopGroup(c.group, sig); continue; }
      die(c, sig);
      return;
    }
    if (!buildFrame(c, sig, info, act)) { die(c, SIGSEGV); return; }
  }
  s.suspendSaved = null;
}

/** Maps the trampoline page on first use: `li a7, 139; ecall` (rt_sigreturn). */
function trampoline(c: SysCtx): number {
  if (c.mem.trampoline !== 0) return c.mem.trampoline;
  const at = c.mem.mmap(0, 4096, PROT_READ | PROT_EXEC, false, false, '[sigpage]');
  if (at < 0) return 0;
  const code = new Uint8Array(8), dv = new DataView(code.buffer);
  dv.setUint32(0, 0x08b00893, true); // addi a7, zero, 139 (RV32I ADDI encoding)
  dv.setUint32(4, 0x00000073, true); // ecall
  c.mem.poke(at, code);
  c.mem.trampoline = at;
  return at;
}

/**
 * Builds an rt_sigframe and redirects the hart to the handler; false on
 * fault. `info`: the siginfo taken off the queue, or the si_code of a fault.
 */
function buildFrame(c: SysCtx, sig: number, info: Uint8Array | number, act: SigAction, fault: { addr: number } | null = null): boolean {
  const st = c.proc.hart.st, s = c.sig;
  const tramp = trampoline(c);
  if (tramp === 0) return false;
  let sp = st.getX(2);
  const onAlt = s.altEnabled && sp > s.altSp && sp <= s.altSp + s.altSize;
  if ((act.flags & SA_ONSTACK) && s.altEnabled && !onAlt) sp = s.altSp + s.altSize;
  const frame = Math.floor((sp - FRAME_SIZE) / 16) * 16;
  const b = new Uint8Array(FRAME_SIZE), dv = new DataView(b.buffer);
  // siginfo: the one taken off the queue, or for a fault si_signo, si_code and si_addr.
  if (typeof info !== 'number') b.set(info.subarray(0, SIGINFO_SIZE));
  else {
    dv.setInt32(0, sig, true); dv.setInt32(8, info, true);
    if (fault) dv.setBigUint64(16, BigInt(fault.addr), true); // si_addr
  }
  // ucontext: uc_flags, uc_link = 0; uc_stack; uc_sigmask.
  const uc = UC_OFF;
  dv.setBigUint64(uc + UC_STACK, BigInt(s.altSp), true);
  dv.setInt32(uc + UC_STACK + 8, s.altEnabled ? (onAlt ? SS_ONSTACK : 0) : SS_DISABLE, true);
  dv.setBigUint64(uc + UC_STACK + 16, BigInt(s.altSize), true);
  dv.setBigUint64(uc + UC_SIGMASK, s.suspendSaved ?? s.blocked, true);
  // uc_mcontext.sc_regs: pc, then x1..x31; sc_fpregs: f0..f31 and fcsr.
  const mc = uc + UC_MCONTEXT;
  // After a syscall the guest resumes past its ecall; after a fault, at the faulting instruction.
  const pc = fault ? st.getPc() : st.getPc() + 4;
  dv.setInt32(mc, pc | 0, true); dv.setInt32(mc + 4, Math.floor(pc / 4294967296) | 0, true);
  for (let i = 1; i < 32; i++) {
    dv.setInt32(mc + 8 * i, st.x[2 * i]!, true); dv.setInt32(mc + 8 * i + 4, st.x[2 * i + 1]!, true);
  }
  for (let i = 0; i < 32; i++) {
    dv.setInt32(mc + SC_FPREGS + 8 * i, st.f[2 * i]!, true); dv.setInt32(mc + SC_FPREGS + 8 * i + 4, st.f[2 * i + 1]!, true);
  }
  dv.setUint32(mc + SC_FCSR, (st.s[S.FRM]! << 5) | st.s[S.FFLAGS]!, true);
  if (frame < 0 || !c.write(frame, b)) return false;
  s.suspendSaved = null;
  s.blocked = (s.blocked | act.mask | ((act.flags & SA_NODEFER) ? 0n : bit(sig))) & ~UNBLOCKABLE;
  if (act.flags & SA_RESETHAND) s.actions[sig] = { handler: SIG_DFL, flags: 0, mask: 0n };
  st.setX(10, sig); st.setX(11, frame); st.setX(12, frame + UC_OFF);
  st.setX(2, frame); st.setX(1, tramp);
  st.setPc(fault ? act.handler : act.handler - 4);
  return true;
}

/** si_code for a fault on an unmapped address (include/uapi/asm-generic/siginfo.h SEGV_MAPERR). */
export const SEGV_MAPERR = 1;

/**
 * For the run loop: delivers a synchronous fault signal (SIGSEGV, SIGBUS,
 * SIGILL, ...) raised at the current pc. Returns true if a guest handler
 * now runs (pc points at it; do not advance pc). Returns false if the
 * signal is fatal (default action, ignored or blocked as the kernel forces
 * it then) -- the caller ends the process as it does today.
 */
export function deliverFault(c: SysCtx, sig: number, addr: number, code = SEGV_MAPERR): boolean {
  const act = c.sig.actions[sig];
  if (!act || act.handler === SIG_DFL || act.handler === SIG_IGN || (c.sig.blocked & bit(sig)) !== 0n) return false;
  return buildFrame(c, sig, code, act, { addr });
}

function rtSigreturn(c: SysCtx): number {
  const st = c.proc.hart.st, s = c.sig;
  const frame = st.getX(2);
  const b = c.read(frame, FRAME_SIZE);
  if (!b) { die(c, SIGSEGV); return KEEP_REGS; }
  const dv = new DataView(b.buffer), uc = UC_OFF, mc = uc + UC_MCONTEXT;
  s.blocked = dv.getBigUint64(uc + UC_SIGMASK, true) & ~UNBLOCKABLE;
  const ssFlags = dv.getInt32(uc + UC_STACK + 8, true);
  if (!(ssFlags & SS_DISABLE)) {
    s.altSp = Number(dv.getBigUint64(uc + UC_STACK, true)); s.altSize = Number(dv.getBigUint64(uc + UC_STACK + 16, true));
    s.altEnabled = true;
  }
  for (let i = 1; i < 32; i++) { st.x[2 * i] = dv.getInt32(mc + 8 * i, true); st.x[2 * i + 1] = dv.getInt32(mc + 8 * i + 4, true); }
  for (let i = 0; i < 32; i++) {
    st.f[2 * i] = dv.getInt32(mc + SC_FPREGS + 8 * i, true); st.f[2 * i + 1] = dv.getInt32(mc + SC_FPREGS + 8 * i + 4, true);
  }
  const fcsr = dv.getUint32(mc + SC_FCSR, true);
  st.s[S.FFLAGS] = fcsr & 0x1f; st.s[S.FRM] = (fcsr >>> 5) & 7;
  const pc = dv.getUint32(mc + 4, true) * 4294967296 + dv.getUint32(mc, true);
  st.setPc(pc - 4);
  return KEEP_REGS;
}

function rtSigaction(c: SysCtx, a: SysArgs): number {
  const sig = a.i32(0), act = a.u(1), old = a.u(2);
  if (a.u(3) !== SIGSET_SIZE || sig < 1 || sig > NSIG) return -E.EINVAL;
  if (act !== 0 && (sig === SIGKILL || sig === SIGSTOP)) return -E.EINVAL;
  const cur = c.sig.actions[sig]!;
  let next: SigAction | null = null;
  if (act !== 0) {
    const b = c.read(act, 24);
    if (!b) return -E.EFAULT;
    const dv = new DataView(b.buffer);
    next = { handler: Number(dv.getBigUint64(0, true)), flags: Number(dv.getBigUint64(8, true) & 0xffffffffn), mask: dv.getBigUint64(16, true) };
  }
  if (old !== 0) {
    const o = new Uint8Array(24), dv = new DataView(o.buffer);
    dv.setBigUint64(0, BigInt(cur.handler), true); dv.setBigUint64(8, BigInt(cur.flags >>> 0), true);
    dv.setBigUint64(16, cur.mask, true);
    if (!c.write(old, o)) return -E.EFAULT;
  }
  if (next) {
    c.sig.actions[sig] = next;
    if (next.handler === SIG_IGN || (next.handler === SIG_DFL && defaultIgnored(sig))) {
      c.sig.pending &= ~bit(sig);
      c.sig.rtQueue.delete(sig);
    }
  }
  return 0;
}

function rtSigprocmask(c: SysCtx, a: SysArgs): number {
  const how = a.i32(0), set = a.u(1), old = a.u(2);
  if (a.u(3) !== SIGSET_SIZE) return -E.EINVAL;
  let next: bigint | null = null;
  if (set !== 0) {
    const v = c.readBig(set);
    if (v === null) return -E.EFAULT;
    if (how === SIG_BLOCK) next = c.sig.blocked | v;
    else if (how === SIG_UNBLOCK) next = c.sig.blocked & ~v;
    else if (how === SIG_SETMASK) next = v;
    else return -E.EINVAL;
  }
  if (old !== 0 && !c.write(old, u64(c.sig.blocked))) return -E.EFAULT;
  if (next !== null) c.sig.blocked = next & ~UNBLOCKABLE & ALL;
  return 0;
}

function sigaltstack(c: SysCtx, a: SysArgs): number {
  const ss = a.u(0), oss = a.u(1), s = c.sig, sp = c.proc.hart.st.getX(2);
  const onAlt = s.altEnabled && sp > s.altSp && sp <= s.altSp + s.altSize;
  if (oss !== 0) {
    const o = new Uint8Array(24), dv = new DataView(o.buffer);
    dv.setBigUint64(0, BigInt(s.altSp), true);
    dv.setInt32(8, s.altEnabled ? (onAlt ? SS_ONSTACK : 0) : SS_DISABLE, true);
    dv.setBigUint64(16, BigInt(s.altSize), true);
    if (!c.write(oss, o)) return -E.EFAULT;
  }
  if (ss !== 0) {
    const b = c.read(ss, 24);
    if (!b) return -E.EFAULT;
    if (onAlt) return -E.EPERM;
    const dv = new DataView(b.buffer), flags = dv.getInt32(8, true);
    if (flags & ~(SS_DISABLE | SS_ONSTACK | (1 << 31))) return -E.EINVAL;
    if (flags & SS_DISABLE) { s.altEnabled = false; s.altSp = 0; s.altSize = 0; return 0; }
    const size = Number(dv.getBigUint64(16, true));
    if (size < MINSIGSTKSZ) return -E.ENOMEM;
    s.altSp = Number(dv.getBigUint64(0, true)); s.altSize = size; s.altEnabled = true;
  }
  return 0;
}

function kill(c: SysCtx, a: SysArgs): number {
  const pid = a.i32(0), sig = a.i32(1);
  if (sig < 0 || sig > NSIG) return -E.EINVAL;
  return c.kernel.kill(c, pid, sig);
}

function tgkill(c: SysCtx, a: SysArgs): number {
  const tgid = a.i32(0), tid = a.i32(1), sig = a.i32(2);
  if (tgid <= 0 || tid <= 0 || sig < 0 || sig > NSIG) return -E.EINVAL;
  return sendChecked(c, () => c.kernel.killThread(c, tgid, tid, sig));
}

function tkill(c: SysCtx, a: SysArgs): number {
  const tid = a.i32(0), sig = a.i32(1);
  if (tid <= 0 || sig < 0 || sig > NSIG) return -E.EINVAL;
  return sendChecked(c, () => c.kernel.killThread(c, -1, tid, sig));
}

/** rt_sigqueueinfo: sends `sig` with the caller's siginfo (si_signo set to sig), as sigqueue(3) does. */
function rtSigqueueinfo(c: SysCtx, a: SysArgs): number {
  const pid = a.i32(0), sig = a.i32(1);
  if (sig < 0 || sig > NSIG) return -E.EINVAL;
  const raw = c.read(a.u(2), SIGINFO_SIZE);
  if (!raw) return -E.EFAULT;
  const code = new DataView(raw.buffer).getInt32(8, true);
  // Only the kernel may name kill() or tkill() as the origin to another process.
  if ((code >= 0 || code === SI_TKILL) && pid !== c.proc.tid) return -E.EPERM;
  if (pid <= 0) return -E.ESRCH;
  c.kernel.stagedSigInfo = raw; // raiseSignal queues this siginfo (kernel.kill has no parameter for it)
  try {
    return sendChecked(c, () => c.kernel.kill(c, pid, sig, code));
  } finally {
    c.kernel.stagedSigInfo = null;
  }
}

function rtSigpending(c: SysCtx, a: SysArgs): number {
  if (a.u(1) > SIGSET_SIZE) return -E.EINVAL;
  return c.write(a.u(0), u64(c.sig.pending & c.sig.blocked).subarray(0, a.u(1))) ? 0 : -E.EFAULT;
}

/**
 * rt_sigsuspend: installs the temporary mask and sleeps until a signal
 * arrives that runs a handler (then -EINTR, the handler running with the
 * temporary mask saved in its frame) or kills the process. As the only
 * task, nothing could ever send one, so it returns -EINTR at once instead
 * of sleeping forever.
 */
function rtSigsuspend(c: SysCtx, a: SysArgs): number {
  if (a.u(1) !== SIGSET_SIZE) return -E.EINVAL;
  const m = c.readBig(a.u(0));
  if (m === null) return -E.EFAULT;
  const s = c.sig, mask = m & ~UNBLOCKABLE;
  const old = s.suspendSaved ?? s.blocked;
  s.suspendSaved = old;
  s.blocked = mask;
  if (actionableSignal(c) !== 0) return -E.EINTR; // deliverPending runs it, saving the old mask in the frame
  if (!c.kernel.canSleep(c)) { s.blocked = old; s.suspendSaved = null; return -E.EINTR; }
  return c.kernel.block(c, { restart: false, legacy: true });
}

/** rt_sigtimedwait: takes a pending signal from `set`, else sleeps until one comes or the timeout passes (-EAGAIN). */
function rtSigtimedwait(c: SysCtx, a: SysArgs): number {
  if (a.u(3) !== SIGSET_SIZE) return -E.EINVAL;
  const set = c.readBig(a.u(0));
  if (set === null) return -E.EFAULT;
  const hit = c.sig.pending & set;
  if (hit === 0n) {
    let deadline: bigint | undefined;
    if (a.u(2) !== 0) {
      const ns = c.readTimespec(a.u(2));
      if (ns === null) return -E.EFAULT;
      if (ns < 0n) return -E.EINVAL;
      deadline = c.kernel.deadline(c, ns);
      if (c.host.monotonicNs() >= deadline) return -E.EAGAIN;
    }
    if (!c.kernel.canSleep(c)) {
      if (deadline !== undefined) c.kernel.sleepUntil(deadline);
      return -E.EAGAIN;
    }
    return c.kernel.block(c, { restart: false, deadline, legacy: true, ready: () => (c.sig.pending & set) !== 0n });
  }
  let sig = 1;
  while ((hit & bit(sig)) === 0n) sig++;
  const info = takeSignal(c, sig);
  if (a.u(1) !== 0 && !c.write(a.u(1), info)) return -E.EFAULT;
  return sig;
}

/** Signal syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const signalSyscalls: SyscallDef[] = [
  { nr: 129, name: 'kill', fn: kill },
  { nr: 130, name: 'tkill', fn: tkill },
  { nr: 131, name: 'tgkill', fn: tgkill },
  { nr: 132, name: 'sigaltstack', fn: sigaltstack },
  { nr: 133, name: 'rt_sigsuspend', fn: rtSigsuspend },
  { nr: 134, name: 'rt_sigaction', fn: rtSigaction },
  { nr: 135, name: 'rt_sigprocmask', fn: rtSigprocmask },
  { nr: 136, name: 'rt_sigpending', fn: rtSigpending },
  { nr: 137, name: 'rt_sigtimedwait', fn: rtSigtimedwait },
  { nr: 138, name: 'rt_sigqueueinfo', fn: rtSigqueueinfo },
  { nr: 139, name: 'rt_sigreturn', fn: rtSigreturn },
];
