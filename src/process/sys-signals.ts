/**
 * Signals: dispositions (rt_sigaction), the blocked mask, pending signals,
 * the alternate stack, and delivery.
 *
 * Signals only arise synchronously inside this single-threaded VM (kill,
 * tgkill and friends aimed at the process itself, SIGPIPE from a write to
 * a broken pipe). After every syscall, pending unblocked signals are acted
 * on: ignored, fatal (exit status 128+sig, one log line), or delivered to
 * the guest's handler through an rt_sigframe laid out as the riscv kernel
 * does (arch/riscv/kernel/signal.c: siginfo, then ucontext with the saved
 * registers in uc_mcontext), returning through a two-instruction trampoline
 * page that calls rt_sigreturn.
 *
 * The run loop advances pc by 4 after each ecall, so redirecting the hart
 * to address A sets pc to A - 4.
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import {
  E, NSIG, SIGKILL, SIGSTOP, SIGCHLD, SIGCONT, SIGURG, SIGWINCH, SIGTSTP, SIGTTIN, SIGTTOU, SIGSEGV,
  signalName, u64,
} from './sys-abi.js';
import { PROT_READ, PROT_EXEC } from './address-space.js';
import { S } from '../cpu/hart-state.js';

/** Returned by a handler that has set a0 itself (rt_sigreturn): handle() leaves a0 alone. */
export const KEEP_REGS = -0x100_0000_0000;

/** sa_flags bits (include/uapi/asm-generic/signal-defs.h). */
const SA_ONSTACK = 0x08000000, SA_NODEFER = 0x40000000, SA_RESETHAND = 0x80000000;
/** SIG_DFL / SIG_IGN handler values. */
const SIG_DFL = 0, SIG_IGN = 1;
/** sigaltstack ss_flags (include/uapi/linux/signal.h) and MINSIGSTKSZ (asm-generic/signal.h). */
const SS_ONSTACK = 1, SS_DISABLE = 2, MINSIGSTKSZ = 2048;
/** si_code values (include/uapi/asm-generic/siginfo.h). */
export const SI_USER = 0, SI_TKILL = -6, SI_QUEUE = -1;
/** rt_sigprocmask `how` (asm-generic/signal-defs.h). */
const SIG_BLOCK = 0, SIG_UNBLOCK = 1, SIG_SETMASK = 2;
/** Kernel sigset_t size for riscv64 (_NSIG / 8). */
const SIGSET_SIZE = 8;

/** rt_sigframe layout (arch/riscv/kernel/signal.c; uapi asm/ucontext.h, asm/sigcontext.h). */
const SIGINFO_SIZE = 128, UC_OFF = 128, UC_SIGMASK = 40, UC_STACK = 16, UC_MCONTEXT = 176;
const SC_FPREGS = 256, SC_FCSR = 256 + 256, FRAME_SIZE = SIGINFO_SIZE + 960;

/** One signal's disposition. */
interface SigAction { handler: number; flags: number; mask: bigint }

const bit = (sig: number): bigint => 1n << BigInt(sig - 1);
const UNBLOCKABLE = bit(SIGKILL) | bit(SIGSTOP);
const ALL = (1n << 64n) - 1n;

/** Per-process signal state. */
export class SignalState {
  readonly actions: SigAction[] = Array.from({ length: NSIG + 1 }, () => ({ handler: SIG_DFL, flags: 0, mask: 0n }));
  blocked = 0n;
  pending = 0n;
  readonly codes = new Map<number, number>();
  altSp = 0;
  altSize = 0;
  altEnabled = false;
  /** Mask to save in the next frame instead of `blocked` (rt_sigsuspend). */
  suspendSaved: bigint | null = null;
  /** Address of the rt_sigreturn trampoline page, 0 until first needed. */
  trampoline = 0;
}

/** Whether a signal's default action ignores it (stop signals, too, as nothing can stop the VM). */
function defaultIgnored(sig: number): boolean {
  return sig === SIGCHLD || sig === SIGCONT || sig === SIGURG || sig === SIGWINCH || sig === SIGSTOP ||
    sig === SIGTSTP || sig === SIGTTIN || sig === SIGTTOU;
}

/** Queues `sig` for the process (delivered after the current syscall). */
export function raiseSignal(c: SysCtx, sig: number, code = SI_USER): void {
  if (sig < 1 || sig > NSIG) return;
  const a = c.sig.actions[sig]!;
  if (a.handler === SIG_IGN && sig !== SIGKILL) return;
  c.sig.pending |= bit(sig);
  c.sig.codes.set(sig, code);
}

/** Terminates the process by signal `sig`. */
function die(c: SysCtx, sig: number): void {
  c.proc.exitStatus = 128 + sig;
  c.log(`tsvm: uncaught signal ${sig} (${signalName(sig)}), exit status ${128 + sig}`);
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
    s.pending &= ~bit(sig);
    const code = s.codes.get(sig) ?? SI_USER;
    const act = s.actions[sig]!;
    if (act.handler === SIG_IGN && sig !== SIGKILL) continue;
    if (act.handler === SIG_DFL || sig === SIGKILL) {
      if (defaultIgnored(sig)) continue;
      die(c, sig);
      return;
    }
    if (!buildFrame(c, sig, code, act)) { die(c, SIGSEGV); return; }
  }
  s.suspendSaved = null;
}

/** Maps the trampoline page on first use: `li a7, 139; ecall` (rt_sigreturn). */
function trampoline(c: SysCtx): number {
  if (c.sig.trampoline !== 0) return c.sig.trampoline;
  const at = c.mem.mmap(0, 4096, PROT_READ | PROT_EXEC, false, false, '[sigpage]');
  if (at < 0) return 0;
  const code = new Uint8Array(8), dv = new DataView(code.buffer);
  dv.setUint32(0, 0x08b00893, true); // addi a7, zero, 139 (RV32I ADDI encoding)
  dv.setUint32(4, 0x00000073, true); // ecall
  c.mem.poke(at, code);
  c.sig.trampoline = at;
  return at;
}

/** Builds an rt_sigframe and redirects the hart to the handler; false on fault. */
function buildFrame(c: SysCtx, sig: number, code: number, act: SigAction, fault: { addr: number } | null = null): boolean {
  const st = c.proc.hart.st, s = c.sig;
  const tramp = trampoline(c);
  if (tramp === 0) return false;
  let sp = st.getX(2);
  const onAlt = s.altEnabled && sp > s.altSp && sp <= s.altSp + s.altSize;
  if ((act.flags & SA_ONSTACK) && s.altEnabled && !onAlt) sp = s.altSp + s.altSize;
  const frame = Math.floor((sp - FRAME_SIZE) / 16) * 16;
  const b = new Uint8Array(FRAME_SIZE), dv = new DataView(b.buffer);
  // siginfo: si_signo, si_errno, si_code, then the kill fields si_pid, si_uid.
  dv.setInt32(0, sig, true); dv.setInt32(8, code, true);
  if (fault) dv.setBigUint64(16, BigInt(fault.addr), true); // si_addr
  else { dv.setInt32(16, c.proc.pid, true); dv.setUint32(20, c.id.uid, true); }
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
    if (next.handler === SIG_IGN || (next.handler === SIG_DFL && defaultIgnored(sig))) c.sig.pending &= ~bit(sig);
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

/** Sends `sig` to the process itself; 0 checks existence only. */
function sendSelf(c: SysCtx, sig: number, code: number): number {
  if (sig < 0 || sig > NSIG) return -E.EINVAL;
  if (sig !== 0) raiseSignal(c, sig, code);
  return 0;
}

function kill(c: SysCtx, a: SysArgs): number {
  const pid = a.i32(0), sig = a.i32(1), me = c.proc.pid;
  if (pid === me || pid === 0 || pid === -1 || pid === -me) return sendSelf(c, sig, SI_USER);
  return sig < 0 || sig > NSIG ? -E.EINVAL : -E.ESRCH;
}

function tgkill(c: SysCtx, a: SysArgs): number {
  const tgid = a.i32(0), tid = a.i32(1), sig = a.i32(2), me = c.proc.pid;
  if (tgid <= 0 || tid <= 0) return -E.EINVAL;
  if (tgid !== me || tid !== me) return -E.ESRCH;
  return sendSelf(c, sig, SI_TKILL);
}

function tkill(c: SysCtx, a: SysArgs): number {
  const tid = a.i32(0), sig = a.i32(1);
  if (tid <= 0) return -E.EINVAL;
  if (tid !== c.proc.pid) return -E.ESRCH;
  return sendSelf(c, sig, SI_TKILL);
}

function rtSigqueueinfo(c: SysCtx, a: SysArgs): number {
  if (a.i32(0) !== c.proc.pid) return -E.ESRCH;
  return sendSelf(c, a.i32(1), SI_QUEUE);
}

function rtSigpending(c: SysCtx, a: SysArgs): number {
  if (a.u(1) > SIGSET_SIZE) return -E.EINVAL;
  return c.write(a.u(0), u64(c.sig.pending & c.sig.blocked).subarray(0, a.u(1))) ? 0 : -E.EFAULT;
}

/**
 * rt_sigsuspend: installs the temporary mask and lets a pending signal run.
 * With nothing pending, nothing could ever arrive, so it returns -EINTR at
 * once instead of sleeping forever.
 */
function rtSigsuspend(c: SysCtx, a: SysArgs): number {
  if (a.u(1) !== SIGSET_SIZE) return -E.EINVAL;
  const m = c.readBig(a.u(0));
  if (m === null) return -E.EFAULT;
  const s = c.sig;
  if ((s.pending & ~(m & ~UNBLOCKABLE)) !== 0n) {
    s.suspendSaved = s.blocked;
    s.blocked = m & ~UNBLOCKABLE;
  }
  return -E.EINTR;
}

/** rt_sigtimedwait: takes a pending signal from `set`, else -EAGAIN (after sleeping the timeout). */
function rtSigtimedwait(c: SysCtx, a: SysArgs): number {
  if (a.u(3) !== SIGSET_SIZE) return -E.EINVAL;
  const set = c.readBig(a.u(0));
  if (set === null) return -E.EFAULT;
  const hit = c.sig.pending & set;
  if (hit === 0n) {
    if (a.u(2) !== 0) {
      const ns = c.readTimespec(a.u(2));
      if (ns === null) return -E.EFAULT;
      if (ns < 0n) return -E.EINVAL;
      c.host.sleepNs(Number(ns));
    }
    return -E.EAGAIN;
  }
  let sig = 1;
  while ((hit & bit(sig)) === 0n) sig++;
  c.sig.pending &= ~bit(sig);
  if (a.u(1) !== 0) {
    const info = new Uint8Array(SIGINFO_SIZE), dv = new DataView(info.buffer);
    dv.setInt32(0, sig, true); dv.setInt32(8, c.sig.codes.get(sig) ?? SI_USER, true);
    dv.setInt32(16, c.proc.pid, true); dv.setUint32(20, c.id.uid, true);
    if (!c.write(a.u(1), info)) return -E.EFAULT;
  }
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
