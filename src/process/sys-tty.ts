/**
 * The VM's emulated terminal (a pty pair, pty.ts) as the guest sees it:
 * the slave's reads, writes, readiness and ioctls, and job control.
 *
 * `tsvm exec --tty` gives the VM a VmTerminal: fds 0-2 of the first
 * process are its slave (/dev/pts/0), the terminal is the controlling
 * terminal of that process's session, and /dev/tty names it for every
 * process of that session. The runtime drives the master (VmTerminal's
 * input, resize and hangup) and is polled by the kernel (Kernel.poller)
 * while tasks run or sleep.
 *
 * Job control (drivers/tty/tty_jobctrl.c): a process of the terminal's
 * session outside its foreground process group that reads the terminal
 * sends SIGTTIN to its process group (EIO if SIGTTIN is ignored or
 * blocked); one that writes with TOSTOP set, or changes the settings or
 * the foreground group, sends SIGTTOU (unless SIGTTOU is ignored or
 * blocked, then it goes ahead). The call then sleeps until the group is
 * stopped and continued, or is in the foreground, and is tried again.
 * When the master closes, the session leader gets SIGHUP and SIGCONT, the
 * foreground group SIGHUP; reads see end of file and writes fail with EIO.
 */
import type { SysCtx } from './sys-context.js';
import type { OpenFile } from './fd-table.js';
import type { Kernel } from './kernel.js';
import { Pty, TERMIOS_SIZE, TOSTOP, VMIN, VTIME, SIGHUP } from './pty.js';
import { E, SIGCONT, SIGTTIN, SIGTTOU, u32 } from './sys-abi.js';
import { bit, SIG_IGN } from './sys-signals.js';

/** ioctl requests (include/uapi/asm-generic/ioctls.h). */
const TCGETS = 0x5401, TCSETS = 0x5402, TCSETSW = 0x5403, TCSETSF = 0x5404, TCSBRK = 0x5409, TCXONC = 0x540a,
  TCFLSH = 0x540b, TIOCSCTTY = 0x540e, TIOCGPGRP = 0x540f, TIOCSPGRP = 0x5410, TIOCOUTQ = 0x5411, TIOCGWINSZ = 0x5413,
  TIOCSWINSZ = 0x5414, FIONREAD = 0x541b, TIOCNOTTY = 0x5422, TIOCGSID = 0x5429, TCSBRKP = 0x5425;
/** TCFLSH queue selectors (include/uapi/asm-generic/termbits.h TCIFLUSH, TCIOFLUSH). */
const TCIFLUSH = 0, TCIOFLUSH = 2;
/** VTIME's unit: a tenth of a second, in ns (termios(3)). */
const DECISECOND = 100_000_000n;

/** The VM's terminal: a pty whose master the runtime drives, signalling the VM's processes. */
export class VmTerminal {
  /** The line discipline and terminal state. */
  readonly pty: Pty;
  /** The kernel of the VM the slave belongs to (set when the VM's first task is made). */
  kernel: Kernel | null = null;
  /** True once the runtime has let go of it (its exec ended): /dev/pts no longer lists it. */
  closed = false;

  /** A terminal (/dev/pts/`index`) whose output (program output and echoes) goes to `output`. */
  constructor(output: (data: Uint8Array) => void, readonly index = 0) {
    this.pty = new Pty({
      output,
      signal: (sig) => { if (this.kernel !== null && this.pty.fgPgrp !== 0) this.kernel.signalPgrp(this.pty.fgPgrp, sig); },
      now: () => this.kernel?.host.monotonicNs() ?? 0n,
    });
  }

  /** Bytes the user typed. */
  input(data: Uint8Array): void { this.pty.input(data); }

  /** A new window size (columns, rows): SIGWINCH to the foreground group if it changed. */
  resize(cols: number, rows: number): void { this.pty.resize(cols, rows); }

  /** The master closed (tty_vhangup): SIGHUP and SIGCONT to the session leader, SIGHUP to the foreground group. */
  hangup(): void {
    const p = this.pty, k = this.kernel;
    if (p.hungUp) return;
    p.hangup();
    if (k === null) return;
    const leader = p.sid !== 0 ? k.process(p.sid) : undefined;
    if (leader !== undefined && leader.waitStatus === null) {
      k.sendToGroup(leader, SIGHUP, 0, 0);
      k.sendToGroup(leader, SIGCONT, 0, 0);
    }
    if (p.fgPgrp !== 0) k.signalPgrp(p.fgPgrp, SIGHUP);
  }
}

/** True if `sig` is ignored or blocked by task `c` (is_ignored in tty_jobctrl.c). */
function ignoredOrBlocked(c: SysCtx, sig: number): boolean {
  return c.sig.actions[sig]!.handler === SIG_IGN || (c.sig.blocked & bit(sig)) !== 0n;
}

/**
 * __tty_check_change: 0 if `c` may go ahead, -EIO, or BLOCKED after sending
 * `sig` (SIGTTIN or SIGTTOU) to its background process group.
 */
function jobControl(c: SysCtx, t: VmTerminal, sig: number): number {
  const p = t.pty, g = c.group;
  if (p.sid === 0 || g.sid !== p.sid || p.fgPgrp === 0 || g.pgid === p.fgPgrp || p.hungUp) return 0;
  if (ignoredOrBlocked(c, sig)) return sig === SIGTTOU ? 0 : -E.EIO;
  const k = c.kernel;
  k.signalPgrp(g.pgid, sig);
  if (!k.canSleep(c)) return -E.EIO;
  const stops = g.stops;
  return k.block(c, {
    restart: true,
    ready: () => (g.stops !== stops && !g.stopped) || p.fgPgrp === g.pgid || p.hungUp || g.sid !== p.sid,
  });
}

/** The terminal of a 'pty' description (one exists only when there is a terminal). */
function terminalOf(c: SysCtx, f: OpenFile): VmTerminal {
  return f.terminal ?? c.tty.pty!;
}

/** read(2) of the slave: canonical lines, or VMIN/VTIME in non-canonical mode. */
export function ptyRead(c: SysCtx, f: OpenFile, n: number): Uint8Array | number {
  const t = terminalOf(c, f), p = t.pty, k = c.kernel;
  const jc = jobControl(c, t, SIGTTIN);
  if (jc !== 0) return jc;
  const empty = new Uint8Array(0);
  const sleep = (ready: () => boolean, deadline?: bigint): Uint8Array | number => {
    if (f.nonBlocking) return -E.EAGAIN;
    if (!k.canSleep(c)) return empty;
    return k.block(c, { restart: true, ready: () => ready() || p.hungUp, deadline });
  };
  if (p.canonical) {
    if (p.lineReady() || p.hungUp) return p.read(n);
    return sleep(() => p.lineReady() || !p.canonical);
  }
  const vmin = p.cc(VMIN), vtime = BigInt(p.cc(VTIME));
  const avail = p.rawCount;
  if (p.hungUp || (vmin === 0 && vtime === 0n)) return avail > 0 || p.hungUp || !f.nonBlocking ? p.read(n) : -E.EAGAIN;
  const want = Math.min(Math.max(vmin, 1), n);
  if (avail >= want) return p.read(n);
  if (vtime === 0n) return avail > 0 && f.nonBlocking ? p.read(n) : sleep(() => p.rawCount >= want || p.canonical);
  if (vmin === 0) {
    // A timed read: at most VTIME tenths of a second for the first byte.
    const deadline = k.deadline(c, vtime * DECISECOND);
    if (k.host.monotonicNs() >= deadline) return empty;
    return sleep(() => p.rawCount > 0 || p.canonical, deadline);
  }
  // VMIN > 0 and VTIME > 0: an inter-byte timer started by the first byte.
  if (avail === 0) return sleep(() => p.rawCount > 0 || p.canonical);
  const deadline = p.lastInput + vtime * DECISECOND;
  if (k.host.monotonicNs() >= deadline) return p.read(n);
  return sleep(() => p.rawCount >= want || p.canonical, deadline);
}

/** write(2) to the slave: output processing to the master; EIO after a hangup. */
export function ptyWrite(c: SysCtx, f: OpenFile, data: Uint8Array): number {
  const t = terminalOf(c, f), p = t.pty;
  if (p.hungUp) return -E.EIO;
  if (p.lflag & TOSTOP) {
    const jc = jobControl(c, t, SIGTTOU);
    if (jc !== 0) return jc;
  }
  p.write(data);
  return data.length;
}

/** poll(2) readiness of the slave: POLLIN when a read would not sleep, POLLOUT always, POLLHUP after a hangup. */
export function ptyReadable(c: SysCtx, f: OpenFile): boolean {
  const p = terminalOf(c, f).pty;
  if (p.hungUp) return true;
  return p.canonical ? p.lineReady() : p.rawCount >= Math.max(1, p.cc(VMIN)) || (p.cc(VMIN) === 0 && p.rawCount > 0);
}

/** True once the master has closed. */
export function ptyHungUp(c: SysCtx, f: OpenFile): boolean { return terminalOf(c, f).pty.hungUp; }

/** The terminal's session leader check for ioctls that need it to be the caller's controlling terminal. */
function isCtty(c: SysCtx, t: VmTerminal): boolean { return t.pty.sid !== 0 && t.pty.sid === c.group.sid; }

/** ioctl(2) on the slave. */
export function ptyIoctl(c: SysCtx, f: OpenFile, req: number, arg: number): number {
  const t = terminalOf(c, f), p = t.pty, k = c.kernel;
  switch (req) {
    case TCGETS: return c.write(arg, p.termios) ? 0 : -E.EFAULT;
    case TCSETS: case TCSETSW: case TCSETSF: {
      const jc = jobControl(c, t, SIGTTOU);
      if (jc !== 0) return jc;
      const tio = c.read(arg, TERMIOS_SIZE);
      if (!tio) return -E.EFAULT;
      if (req === TCSETSF) p.read(p.available);
      p.setTermios(tio);
      return 0;
    }
    case TIOCGWINSZ: {
      const ws = new Uint8Array(8), dv = new DataView(ws.buffer);
      dv.setUint16(0, p.rows, true); dv.setUint16(2, p.cols, true); // struct winsize: ws_row, ws_col, ws_xpixel, ws_ypixel
      return c.write(arg, ws) ? 0 : -E.EFAULT;
    }
    case TIOCSWINSZ: {
      const ws = c.read(arg, 8);
      if (!ws) return -E.EFAULT;
      const dv = new DataView(ws.buffer);
      p.resize(dv.getUint16(2, true), dv.getUint16(0, true));
      return 0;
    }
    case FIONREAD: return c.write(arg, u32(p.available)) ? 0 : -E.EFAULT;
    case TIOCGPGRP:
      if (!isCtty(c, t)) return -E.ENOTTY;
      return c.write(arg, u32(p.fgPgrp)) ? 0 : -E.EFAULT;
    case TIOCGSID:
      if (!isCtty(c, t)) return -E.ENOTTY;
      return c.write(arg, u32(p.sid)) ? 0 : -E.EFAULT;
    case TIOCSPGRP: {
      if (!isCtty(c, t)) return -E.ENOTTY;
      const jc = jobControl(c, t, SIGTTOU);
      if (jc !== 0) return jc;
      const pg = c.readI32(arg);
      if (pg === null) return -E.EFAULT;
      if (pg < 0) return -E.EINVAL;
      if (![...k.groups.values()].some((g) => g.pgid === pg && g.sid === p.sid && g.waitStatus === null)) return -E.EPERM;
      p.fgPgrp = pg;
      return 0;
    }
    case TIOCSCTTY: {
      const g = c.group;
      if (p.sid === g.sid) return 0;
      if (g.sid !== g.tgid || p.sid !== 0) return -E.EPERM; // only a session leader, only a terminal with no session
      p.sid = g.sid; p.fgPgrp = g.pgid;
      return 0;
    }
    case TIOCNOTTY: {
      if (!isCtty(c, t)) return -E.ENOTTY;
      if (c.group.sid === c.group.tgid) {
        // The session leader gives up its terminal (disassociate_ctty): its foreground group is hung up.
        if (p.fgPgrp !== 0) { k.signalPgrp(p.fgPgrp, SIGHUP); k.signalPgrp(p.fgPgrp, SIGCONT); }
        p.sid = 0; p.fgPgrp = 0;
      }
      return 0;
    }
    case TCFLSH: {
      if (arg === TCIFLUSH || arg === TCIOFLUSH) p.read(p.available);
      return arg >= 0 && arg <= 2 ? 0 : -E.EINVAL;
    }
    case TIOCOUTQ: return c.write(arg, u32(0)) ? 0 : -E.EFAULT;
    case TCSBRK: case TCSBRKP: case TCXONC: return 0;
    default: return -E.ENOTTY;
  }
}

/**
 * Opening /dev/tty (`n` null) or /dev/pts/`n` by `c`: the terminal, or
 * -errno. /dev/tty is the caller's controlling terminal (ENXIO if it has
 * none); a session leader without one that opens a slave that is no
 * session's, without O_NOCTTY, acquires it.
 */
export function ptyOpen(c: SysCtx, n: number | null, noctty: boolean): VmTerminal | number {
  const g = c.group, all = c.tty.terminals;
  if (n === null) return all.find((x) => x.pty.sid !== 0 && x.pty.sid === g.sid) ?? -E.ENXIO;
  const t = all.find((x) => x.index === n && !x.closed);
  if (t === undefined) return -E.ENXIO;
  const p = t.pty;
  if (!noctty && p.sid === 0 && g.sid === g.tgid && !all.some((x) => x.pty.sid === g.sid)) { p.sid = g.sid; p.fgPgrp = g.pgid; }
  return t;
}
