/**
 * The host side of the guest agent (docs/vm-agent.md): connects to the
 * VM's agent channel (a `-chardev socket` unix socket behind the
 * virtio-console the agent serves on /dev/hvc0), waits for READY, and
 * starts processes with stdin/stdout/stderr streams, resize, signals and
 * an exit promise.
 *
 * A guest is not trusted: the FrameDecoder checks every frame, and a frame
 * that breaks the protocol (an unknown type, a bad length, a process id
 * the host never started) makes the client report an AgentProtocolError,
 * fail every pending process with it and close the socket.
 */
import net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import {
  AgentProtocolError, FrameDecoder, FrameType, decodeReady, encodeFrame, encodeResize, encodeStart, readU32, u32Payload,
  type Frame, type ReadyInfo,
} from './frame.js';

/** Largest stdin chunk per frame (one virtio-console input buffer's worth keeps the guest's tty buffer small). */
export const STDIN_CHUNK = 4096;
/** How often connect() retries while the socket does not exist yet, in ms. */
const CONNECT_RETRY_MS = 50;

/** Options of run() and exec(). */
export interface RunOptions {
  /** Environment, `K=V`; default a PATH, HOME=/root and (with tty) TERM=xterm. */
  env?: string[];
  /** Working directory; default '/'. */
  cwd?: string;
  /** Numeric user id; default 0. */
  uid?: number;
  /** Numeric group id; default 0. */
  gid?: number;
  /** A pty as controlling terminal; default false. */
  tty?: boolean;
  /** Initial terminal rows with tty; default 24. */
  rows?: number;
  /** Initial terminal columns with tty; default 80. */
  cols?: number;
  /** run() only: the process is PID 1 of a new PID namespace that later exec()s join; default false. */
  pidNs?: boolean;
}

/** A process in the guest. */
export interface AgentProcess {
  /** The host-chosen process id on the channel. */
  readonly id: number;
  /** Its stdin (end() closes it in the guest; with a tty, bytes are keystrokes). */
  readonly stdin: Writable;
  /** Its stdout (everything, with a tty). */
  readonly stdout: PassThrough;
  /** Its stderr (empty with a tty). */
  readonly stderr: PassThrough;
  /** Resolves with the guest pid once it runs; rejects if it could not start. */
  readonly pid: Promise<number>;
  /** Resolves with the exit status (N, or 128+signal); rejects on a protocol error or a lost channel. */
  readonly exit: Promise<number>;
  /** Sets the terminal size (tty only; the guest sees SIGWINCH). */
  resize(rows: number, cols: number): void;
  /** Sends a signal (a number or a name like 'SIGTERM'); to the process group with a tty. */
  signal(sig: number | string): void;
}

interface ProcState {
  proc: AgentProcess;
  started: (pid: number) => void;
  exited: (code: number) => void;
  fail: (e: Error) => void;
}

/** Default environment of a process. */
function defaultEnv(tty: boolean): string[] {
  const env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'];
  if (tty) env.push('TERM=xterm');
  return env;
}

/** A signal's number; throws a one-line Error for an unknown name. */
export function signalNumber(sig: number | string): number {
  if (typeof sig === 'number') return sig;
  const name = sig.toUpperCase().startsWith('SIG') ? sig.toUpperCase() : `SIG${sig.toUpperCase()}`;
  const n = (osConstants.signals as Record<string, number | undefined>)[name];
  if (n === undefined) throw new Error(`unknown signal '${sig}'`);
  return n;
}

/** A connection to one VM's agent. */
export class AgentClient {
  /** What the agent said in its READY frame. */
  ready: ReadyInfo | null = null;
  /** Why the channel failed (a protocol error or a lost connection), once it has. */
  failure: Error | null = null;
  private readonly sock: net.Socket;
  private readonly decoder: FrameDecoder;
  private readonly procs = new Map<number, ProcState>();
  private nextId = 1;
  private readyWaiters: ((r: ReadyInfo) => void)[] = [];
  private failWaiters: ((e: Error) => void)[] = [];
  private configWaiter: { id: number; resolve: (r: ReadyInfo) => void; reject: (e: Error) => void } | null = null;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    this.decoder = new FrameDecoder((f) => this.onFrame(f));
    sock.on('data', (chunk: Buffer) => {
      if (this.failure) return;
      try { this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)); } catch (e) {
        this.fail(e instanceof Error ? e : new Error(String(e)));
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => this.fail(new Error(`agent channel: ${e.code ?? e.message}`)));
    sock.on('close', () => this.fail(new Error('agent channel closed')));
  }

  /** Connects to the agent socket at `path` (retrying until it exists) and waits for READY; rejects after `timeoutMs`. */
  static async connect(path: string, timeoutMs = 120_000): Promise<AgentClient> {
    const deadline = Date.now() + timeoutMs;
    let sock: net.Socket | null = null;
    while (sock === null) {
      sock = await new Promise<net.Socket | null>((resolve) => {
        const s = net.connect(path);
        s.once('connect', () => { s.removeAllListeners('error'); resolve(s); });
        s.once('error', () => { s.destroy(); resolve(null); });
      });
      if (sock === null) {
        if (Date.now() > deadline) throw new Error(`agent channel ${path}: no VM listening`);
        await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
      }
    }
    const c = new AgentClient(sock);
    const left = Math.max(1, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        c.waitReady(),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`agent channel ${path}: no READY from the agent within ${timeoutMs} ms`)), left); }),
      ]);
    } catch (e) {
      c.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return c;
  }

  /** Resolves with the agent's READY (at once if it has come). */
  waitReady(): Promise<ReadyInfo> {
    if (this.ready) return Promise.resolve(this.ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => { this.readyWaiters.push(resolve); this.failWaiters.push(reject); });
  }

  /** Resolves with the error that ends the channel. */
  failed(): Promise<Error> {
    if (this.failure) return Promise.resolve(this.failure);
    return new Promise((resolve) => this.failWaiters.push(resolve));
  }

  /** Starts the container's main process: when it exits the agent flushes its output and powers the VM off. */
  run(argv: string[], opts: RunOptions = {}): AgentProcess { return this.start(argv, opts, true); }

  /** Starts an additional process in the same container. */
  exec(argv: string[], opts: RunOptions = {}): AgentProcess { return this.start(argv, opts, false); }

  /**
   * Gives a spare VM's agent (booted without `tsvm.root`) its container:
   * `args` are the container's `tsvm.*` kernel arguments. Resolves with the
   * agent's new READY; rejects with the agent's error, or when the channel fails.
   */
  configure(args: string): Promise<ReadyInfo> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.configWaiter !== null) return Promise.reject(new Error('agent: a configuration is already pending'));
    const id = this.nextId++; // the agent echoes it in its answer (never a process's id)
    return new Promise<ReadyInfo>((resolve, reject) => {
      this.configWaiter = { id, resolve, reject };
      this.failWaiters.push(reject);
      this.send(FrameType.CONFIG, id, new TextEncoder().encode(args));
    });
  }

  /** Asks the agent to sync and power the VM off. */
  shutdown(): void { this.send(FrameType.SHUTDOWN, 0); }

  /** Closes the channel (processes keep running in the guest). */
  close(): void { this.fail(new Error('agent channel closed by the host')); }

  private send(type: number, id: number, payload?: Uint8Array): void {
    if (this.failure) return;
    this.sock.write(encodeFrame(type, id, payload));
  }

  private start(argv: string[], opts: RunOptions, main: boolean): AgentProcess {
    const tty = opts.tty ?? false;
    const payload = encodeStart({
      argv, env: opts.env ?? defaultEnv(tty), cwd: opts.cwd ?? '/', uid: opts.uid ?? 0, gid: opts.gid ?? 0,
      tty, rows: opts.rows ?? 24, cols: opts.cols ?? 80, main, pidNs: main && opts.pidNs === true,
    });
    const id = this.nextId++;
    let started!: (pid: number) => void, exited!: (code: number) => void, rejectPid!: (e: Error) => void, rejectExit!: (e: Error) => void;
    const pid = new Promise<number>((res, rej) => { started = res; rejectPid = rej; });
    const exit = new Promise<number>((res, rej) => { exited = res; rejectExit = rej; });
    pid.catch(() => {}); // callers may only await exit
    const stdout = new PassThrough(), stderr = new PassThrough();
    const send = (type: number, p?: Uint8Array): void => this.send(type, id, p);
    const stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (let o = 0; o < chunk.length; o += STDIN_CHUNK) send(FrameType.STDIN, new Uint8Array(chunk.subarray(o, o + STDIN_CHUNK)));
        cb();
      },
      final: (cb) => { send(FrameType.STDIN); cb(); },
    });
    const proc: AgentProcess = {
      id, stdin, stdout, stderr, pid, exit,
      resize: (rows, cols) => send(FrameType.RESIZE, encodeResize(rows, cols)),
      signal: (sig) => send(FrameType.SIGNAL, u32Payload(signalNumber(sig))),
    };
    const finishStreams = (): void => { stdout.end(); stderr.end(); };
    this.procs.set(id, {
      proc,
      started,
      exited: (code) => { finishStreams(); exited(code); },
      fail: (e) => { finishStreams(); rejectPid(e); rejectExit(e); },
    });
    if (this.failure) { this.procs.get(id)!.fail(this.failure); this.procs.delete(id); return proc; }
    send(FrameType.START, payload);
    return proc;
  }

  private onFrame(f: Frame): void {
    if (f.type === FrameType.READY) {
      this.ready = decodeReady(f.payload);
      for (const w of this.readyWaiters.splice(0)) w(this.ready);
      const c = this.configWaiter;
      if (c !== null && f.id === c.id) { this.configWaiter = null; c.resolve(this.ready); }
      return;
    }
    const st = this.procs.get(f.id);
    if (!st) {
      if (f.type === FrameType.ERROR && this.configWaiter !== null && f.id === this.configWaiter.id) {
        const c = this.configWaiter;
        this.configWaiter = null;
        c.reject(new Error(`agent: ${new TextDecoder().decode(f.payload)}`));
        return;
      }
      if (f.type === FrameType.ERROR && f.id === 0) { process.stderr.write(`tsvm: agent: ${new TextDecoder().decode(f.payload)}\n`); return; }
      throw new AgentProtocolError(`agent protocol error: frame type 0x${f.type.toString(16)} for process ${f.id}, which the host did not start`);
    }
    switch (f.type) {
      case FrameType.STARTED: st.started(readU32(f.payload)); break;
      case FrameType.STDOUT: st.proc.stdout.write(Buffer.from(f.payload)); break;
      case FrameType.STDERR: st.proc.stderr.write(Buffer.from(f.payload)); break;
      case FrameType.EXIT: this.procs.delete(f.id); st.exited(readU32(f.payload)); break;
      case FrameType.ERROR: this.procs.delete(f.id); st.fail(new Error(`agent: ${new TextDecoder().decode(f.payload)}`)); break;
      default: throw new AgentProtocolError(`agent protocol error: unexpected frame type 0x${f.type.toString(16)}`);
    }
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.sock.destroy();
    for (const st of this.procs.values()) st.fail(e);
    this.procs.clear();
    this.readyWaiters = [];
    for (const w of this.failWaiters.splice(0)) w(e);
  }
}
