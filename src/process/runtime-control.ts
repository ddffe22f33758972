/**
 * The container runtime's hold on a running process VM (`tsvm exec
 * --control`; the host carries the requests over a unix socket,
 * src/host/runtime-control.ts, and is injected as a ControlChannel):
 *
 *  - `signal`: a signal to the PID namespace's init from its parent
 *    namespace (pid_namespaces(7)): one init has no handler for is ignored,
 *    except SIGKILL and SIGSTOP, which always reach it.
 *  - `exec`: a new process in the SAME VM (Docker's exec): the next pid of
 *    the namespace, a parent outside it (ppid 0), its own session, the VM's
 *    root, mounts, /proc, hostname, network and limits; fds 0-2 are pipes
 *    whose other ends are the request's connection; its exit status ends
 *    the connection. It dies with the namespace (the root's end kills it).
 *    With `tty` it gets its own new pseudo-terminal instead (/dev/pts/N,
 *    sys-tty.ts): it leads its session with that terminal as its
 *    controlling terminal and fds 0-2 on its slave; input feeds the master
 *    (so ^C is SIGINT to its foreground group), the master's output is
 *    stream 1. When it ends (or its connection goes) the terminal hangs up.
 *  - `resize`: a new window size for the terminal of the exec with that pid
 *    (SIGWINCH to its foreground group if it changed).
 *  - `ps`: the process table.
 *
 * The kernel polls the channel (Kernel.poller) every few milliseconds of
 * running and while idle, sleeping on it (Kernel.idleWait).
 */
import { shellStatus, MAX_TASKS, type Kernel } from './kernel.js';
import { SysCtx } from './sys-context.js';
import { GuestProcess } from './guest-process.js';
import { OpenFile, Pipe, PIPE_CAPACITY } from './fd-table.js';
import { execStrings } from './sys-exec.js';
import { E, AT_FDCWD, O_RDONLY, O_WRONLY, O_RDWR, S_IFMT, S_IFDIR, S_IFREG, SIGKILL } from './sys-abi.js';
import { SI_USER, SIG_DFL } from './sys-signals.js';
import { VmTerminal } from './sys-tty.js';
import { INPUT_ROOM } from './pty.js';

/** SIGSTOP (asm-generic/signal.h): like SIGKILL, it reaches init from an ancestor namespace. */
const SIGSTOP = 19;
/** Highest signal number (asm-generic/signal.h _NSIG). */
export const MAX_SIGNAL = 64;
/** Exit statuses of an exec that cannot start (Docker's): not found, cannot be invoked. */
const EXIT_NOT_FOUND = 127, EXIT_CANNOT_INVOKE = 126;
/** access(2) X_OK. */
const X_OK = 1;
/** Output taken from an exec's pipe per poll, per stream. */
const OUT_CHUNK = 65536;
/** Input queued beyond the pipe before the client's connection is paused, bytes. */
const INPUT_HIGH_WATER = 1024 * 1024;
/** USER_HZ: /proc's clock ticks per second (proc(5)). */
const USER_HZ = 100n;

/** What an `exec` request asks for. */
export interface ExecRequest {
  argv: string[];
  /** The whole environment, NAME=VALUE. */
  env: string[];
  /** The starting directory (absolute, inside the container). */
  workdir: string;
  /** The ids it runs as; absent: the container's (its init's). */
  user?: { uid: number; gid: number };
  /** Whether its stdin comes from the connection (else it reads end of file at once). */
  stdin: boolean;
  /** A terminal of its own, with this first window size; absent: pipes. */
  tty?: { cols: number; rows: number };
}

/** A request on the control channel. */
export type ControlRequest = { op: 'signal'; signal: number } | ({ op: 'exec' } & ExecRequest) | { op: 'ps' }
  | { op: 'resize'; pid: number; cols: number; rows: number };

/** What the channel reports to the VM. */
export type ControlEvent =
  | { t: 'request'; conn: number; req: ControlRequest }
  | { t: 'stdin'; conn: number; data: Uint8Array }
  | { t: 'stdin-end'; conn: number }
  | { t: 'closed'; conn: number };

/** One row of `ps`. */
export interface PsEntry {
  pid: number; ppid: number; uid: number; gid: number;
  /** proc(5) state: R running, S sleeping, T stopped. */
  state: string;
  /** Start time, ms since the epoch. */
  start: number;
  /** CPU time used, ms. */
  cpu: number;
  /** argv (empty for a process that has none). */
  cmdline: string[];
  /** The thread name. */
  comm: string;
}

/** The host side of the control channel (src/host/runtime-control.ts). */
export interface ControlChannel {
  /** Events that arrived since the last poll (never blocks). */
  poll(): ControlEvent[];
  /** Sleeps up to `ms` or until an event arrives. */
  wait(ms: number): void;
  /** Replies to the request on `conn` with one JSON object; `end` closes the connection after it. */
  reply(conn: number, body: Record<string, unknown>, end: boolean): void;
  /** Output of an exec (stream 1 stdout, 2 stderr). */
  output(conn: number, stream: number, data: Uint8Array): void;
  /** An exec's end: its status, then the connection closes. */
  exit(conn: number, status: number): void;
  /** Stops (`on`) or resumes reading the connection's input (back-pressure). */
  pause(conn: number, on: boolean): void;
}

/** A running exec: its process and the VM ends of its pipes. */
interface Session {
  conn: number;
  stdin: Pipe; out: Pipe; err: Pipe;
  /** Input not yet taken by the pipe, and its size in bytes. */
  queued: Uint8Array[];
  queuedBytes: number;
  /** The connection's input is paused. */
  paused: boolean;
  /** The client ended its input: close the pipe once `queued` has gone in. */
  inputEnded: boolean;
  /** Our end of the input pipe is closed. */
  inputClosed: boolean;
  /** The connection is gone: output is dropped. */
  gone: boolean;
  /** The shell-style status once the process has ended. */
  status: number | null;
  /** Its process id. */
  pid: number;
  /** Its own terminal (a `tty` exec), whose master takes the input instead of `stdin`. */
  term: VmTerminal | null;
}

/** The runtime's control of kernel `k`'s VM (see the module comment). */
export class RuntimeControl {
  private readonly sessions = new Map<number, Session>();

  /** Takes requests from `channel` for the VM of `k` (whose root task exists). */
  constructor(private readonly k: Kernel, private readonly channel: ControlChannel) {
    const prev = k.poller;
    k.poller = prev === null ? () => this.pump() : () => { prev(); this.pump(); };
    k.idleWait = (ns) => { channel.wait(ns / 1e6); };
  }

  /** Handles what arrived and moves the execs' input and output. */
  pump(): void {
    for (const ev of this.channel.poll()) this.event(ev);
    for (const s of this.sessions.values()) this.move(s);
  }

  private event(ev: ControlEvent): void {
    if (ev.t === 'request') { this.request(ev.conn, ev.req); return; }
    const s = this.sessions.get(ev.conn);
    if (s === undefined) return;
    if (ev.t === 'stdin') {
      if (s.inputEnded) return;
      s.queued.push(ev.data);
      s.queuedBytes += ev.data.length;
      if (s.queuedBytes > INPUT_HIGH_WATER && !s.paused) { s.paused = true; this.channel.pause(s.conn, true); }
      return;
    }
    if (ev.t === 'stdin-end') { s.inputEnded = true; return; }
    // The client went away: its output has nowhere to go (writers get EPIPE), its input ends.
    s.gone = true;
    s.inputEnded = true;
    s.queued = [];
    s.queuedBytes = 0;
    if (s.status !== null) this.finish(s);
  }

  private request(conn: number, req: ControlRequest): void {
    if (req.op === 'ps') { this.channel.reply(conn, { ok: true, processes: this.ps() }, true); return; }
    if (req.op === 'signal') { this.channel.reply(conn, this.signal(req.signal), true); return; }
    if (req.op === 'resize') { this.channel.reply(conn, this.resize(req.pid, req.cols, req.rows), true); return; }
    const r = this.exec(conn, req);
    if (r !== null) this.channel.reply(conn, { error: r.why, status: r.status }, true);
  }

  /** A signal from outside the namespace to its init. */
  private signal(sig: number): Record<string, unknown> {
    const g = this.k.root, t = g.threads[0];
    if (t === undefined || g.waitStatus !== null) return { error: 'the container has ended' };
    if (!(Number.isInteger(sig) && sig >= 1 && sig <= MAX_SIGNAL)) return { error: `invalid signal ${sig}` };
    const handled = (t.sig.actions[sig]?.handler ?? SIG_DFL) !== SIG_DFL;
    // kernel/signal.c sig_task_ignored: SIGNAL_UNKILLABLE init drops signals it left at SIG_DFL,
    // except SIGKILL and SIGSTOP from an ancestor namespace.
    if (this.k.sandbox?.limits.pidNamespace === true && !handled && sig !== SIGKILL && sig !== SIGSTOP) return { ok: true, delivered: false };
    this.k.sendToGroup(g, sig, SI_USER, 0); // si_pid 0: the sender is outside the namespace
    return { ok: true, delivered: true };
  }

  /** A new window size for the terminal of the exec with process id `pid`. */
  private resize(pid: number, cols: number, rows: number): Record<string, unknown> {
    const s = [...this.sessions.values()].find((x) => x.pid === pid && x.status === null);
    if (s === undefined) return { error: `no running exec with pid ${pid}` };
    if (s.term === null) return { error: `the exec with pid ${pid} has no terminal (started without tty)` };
    s.term.resize(cols, rows);
    return { ok: true };
  }

  /** The live processes, in pid order. */
  ps(): PsEntry[] {
    const out: PsEntry[] = [];
    const nowMono = this.k.host.monotonicNs(), nowWall = Number(this.k.host.realtimeNs() / 1_000_000n);
    for (const g of [...this.k.groups.values()].sort((a, b) => a.tgid - b.tgid)) {
      const t = g.threads[0];
      if (t === undefined || g.waitStatus !== null) continue;
      const agoMs = Number((nowMono / 10_000_000n - t.startTicks) * 1000n / USER_HZ);
      const argv = t.cmdline().split('\0');
      argv.pop();
      out.push({
        pid: g.tgid, ppid: this.k.ppid(t), uid: t.id.euid, gid: t.id.egid,
        state: g.stopped ? 'T' : g.threads.some((x) => x.wait === null) ? 'R' : 'S',
        start: nowWall - agoMs, cpu: Math.round(g.cpuNs / 1e6), cmdline: argv, comm: t.comm,
      });
    }
    return out;
  }

  /** Starts an exec's process; null, or a one-line reason it cannot and the status that gives. */
  private exec(conn: number, req: ExecRequest): { why: string; status: number } | null {
    const k = this.k, root = k.root.threads[0];
    const no = (why: string, status = EXIT_CANNOT_INVOKE): { why: string; status: number } => ({ why, status });
    if (root === undefined || k.root.waitStatus !== null || k.rootStatus !== null) return no('the container has ended');
    if (req.argv.length === 0) return no('exec needs a command');
    if (k.taskCount() >= MAX_TASKS || k.sandbox?.pidsExhausted(k) === true) return no('cannot start a process: the container has as many as it may');
    const pid = k.allocPid();
    if (pid < 0) return no('cannot start a process: no free pid');
    const s: Session = {
      conn, stdin: new Pipe(), out: new Pipe(), err: new Pipe(), queued: [], queuedBytes: 0, paused: false, inputEnded: !req.stdin, inputClosed: false, gone: false, status: null,
      pid, term: null,
    };
    const fds = root.fds.fresh();
    if (req.tty !== undefined) {
      // A new pty (the lowest free /dev/pts number, as devpts gives): its slave on fds 0-2, one description.
      const terms = root.tty.terminals;
      let n = 0;
      while (terms.some((t) => t.index === n && !t.closed)) n++;
      const term = new VmTerminal((d) => { if (!s.gone) this.channel.output(conn, 1, d); }, n);
      term.kernel = k;
      term.pty.cols = req.tty.cols; term.pty.rows = req.tty.rows;
      s.term = term;
      const f = new OpenFile('pty', O_RDWR, -1, `/dev/pts/${n}`);
      f.isTty = true;
      f.terminal = term;
      for (let fd = 0; fd < 3; fd++) fds.install(f);
    } else {
      fds.install(new OpenFile('pipe', O_RDONLY, -1, '', '', s.stdin));
      fds.install(new OpenFile('pipe', O_WRONLY, -1, '', '', s.out));
      fds.install(new OpenFile('pipe', O_WRONLY, -1, '', '', s.err));
      s.stdin.readers = 1; s.stdin.writers = 1; // the guest's end, ours
      s.out.writers = 1; s.out.readers = 1;
      s.err.writers = 1; s.err.readers = 1;
    }
    const u = req.user;
    const id = { ...root.id, ppid: 0, ...(u !== undefined ? { uid: u.uid, euid: u.uid, gid: u.gid, egid: u.gid, groups: [u.gid] } : {}) };
    // It starts in init's image (as a vfork child would) and replaces it at once with the program.
    const proc = new GuestProcess(root.proc.opts, pid, { ram: root.proc.ram, mem: root.mem }, pid);
    const c = new SysCtx(proc, root.host, root.log, root, 0, { fds, id });
    const g = k.addSpawned(c);
    const fail = (why: string, status = EXIT_CANNOT_INVOKE): { why: string; status: number } => {
      k.exitGroup(c, status); // it never ran: its fds close, it is reaped at once (no parent in the VM)
      return no(why, status);
    };
    const wd = c.resolveAt(AT_FDCWD, req.workdir, true);
    const wst = typeof wd === 'number' || wd.kind !== 'host' ? -E.ENOENT : c.host.stat(wd.host);
    if (typeof wd === 'number' || typeof wst === 'number' || (wst.mode & S_IFMT) !== S_IFDIR) return fail(`chdir to ${req.workdir}: no such directory`);
    c.vfs.setCwd(wd);
    const prog = this.findProgram(c, req.argv[0]!, req.env);
    if (prog === null) return fail(`exec: "${req.argv[0]!}": executable file not found in $PATH`, EXIT_NOT_FOUND);
    const r = execStrings(c, AT_FDCWD, prog, req.argv, req.env, 0);
    if (r === -E.ENOENT) return fail(`exec: "${req.argv[0]!}": no such file or directory`, EXIT_NOT_FOUND);
    if (r < 0) return fail(`exec: "${req.argv[0]!}": ${r === -E.ENOMEM ? 'out of memory' : r === -E.EACCES ? 'permission denied' : 'cannot run it'} (errno ${-r})`);
    const st = c.proc.hart.st;
    st.setPc(st.getPc() + 4); // execStrings leaves pc one ecall before the entry point
    g.onEnd = (ws) => { s.status = shellStatus(ws); };
    if (s.term !== null) {
      // It leads its own session (addSpawned): the new terminal becomes that session's controlling terminal.
      s.term.pty.sid = g.sid; s.term.pty.fgPgrp = g.pgid;
      root.tty.terminals.push(s.term);
    }
    this.sessions.set(conn, s);
    this.channel.reply(conn, { ok: true, pid }, false);
    return null;
  }

  /** `name` as the program to run: a path as given, else the first executable file of the environment's PATH. */
  private findProgram(c: SysCtx, name: string, env: string[]): string | null {
    if (name.includes('/')) return name;
    const path = env.find((kv) => kv.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
    for (const dir of path.split(':')) {
      if (dir === '') continue;
      const p = `${dir}/${name}`;
      const r = c.resolveAt(AT_FDCWD, p, true);
      if (typeof r === 'number' || r.kind !== 'host') continue;
      const st = c.host.stat(r.host);
      if (typeof st !== 'number' && (st.mode & S_IFMT) === S_IFREG && c.host.access(r.host, X_OK) === 0) return p;
    }
    return null;
  }

  /** Feeds queued input to the pipe, sends its output, and once it has ended, its status. */
  private move(s: Session): void {
    if (s.term !== null) { this.moveTerminal(s, s.term); return; }
    while (s.queued.length > 0 && s.stdin.readers > 0 && s.stdin.available < PIPE_CAPACITY) {
      const d = s.queued[0]!, n = s.stdin.write(d, PIPE_CAPACITY);
      s.queuedBytes -= n;
      if (n === d.length) s.queued.shift(); else { s.queued[0] = d.subarray(n); break; }
    }
    if (s.stdin.readers === 0) { s.queued = []; s.queuedBytes = 0; }
    if (s.paused && s.queuedBytes <= INPUT_HIGH_WATER / 2 && !s.gone) { s.paused = false; this.channel.pause(s.conn, false); }
    if (s.inputEnded && s.queued.length === 0) this.closeInput(s);
    for (const [stream, p] of [[1, s.out], [2, s.err]] as const) {
      while (p.available > 0) {
        const d = p.read(OUT_CHUNK);
        if (!s.gone) this.channel.output(s.conn, stream, d);
      }
    }
    if (s.status !== null) this.finish(s);
  }

  /** A terminal exec: queued input to the master as the line discipline has room (INPUT_ROOM), then its status. */
  private moveTerminal(s: Session, t: VmTerminal): void {
    while (s.queued.length > 0 && !t.pty.hungUp) {
      const room = INPUT_ROOM - t.pty.queued;
      if (room <= 0) break;
      const d = s.queued[0]!, n = Math.min(room, d.length);
      t.input(d.subarray(0, n));
      s.queuedBytes -= n;
      if (n === d.length) s.queued.shift(); else s.queued[0] = d.subarray(n);
    }
    if (t.pty.hungUp) { s.queued = []; s.queuedBytes = 0; }
    if (s.paused && s.queuedBytes <= INPUT_HIGH_WATER / 2 && !s.gone) { s.paused = false; this.channel.pause(s.conn, false); }
    // The client went: the terminal hangs up (SIGHUP to the session), as a closed pty master does.
    if (s.gone) t.hangup();
    if (s.status !== null) this.finish(s);
  }

  /** The exec has ended: its status, then its connection closes; the pipes lose their VM ends. */
  private finish(s: Session): void {
    if (!s.gone) this.channel.exit(s.conn, s.status ?? 128 + SIGKILL);
    if (s.term !== null) {
      // Its terminal hangs up (what is left of its session gets SIGHUP) and leaves /dev/pts.
      s.term.hangup();
      s.term.closed = true;
      const terms = this.k.root.threads[0]?.tty.terminals ?? [], i = terms.indexOf(s.term);
      if (i >= 0) terms.splice(i, 1);
    }
    s.out.readers = 0; s.err.readers = 0;
    this.closeInput(s);
    s.queued = [];
    this.sessions.delete(s.conn);
  }

  private closeInput(s: Session): void {
    if (!s.inputClosed) { s.inputClosed = true; s.stdin.writers--; }
  }

  /** The VM has ended (its processes were killed): sends what is left and every exec's status. */
  close(): void {
    for (const s of [...this.sessions.values()]) {
      this.move(s);
      if (this.sessions.has(s.conn)) { s.status ??= 128 + SIGKILL; this.finish(s); }
    }
  }
}
