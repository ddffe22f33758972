/**
 * The engine's side of a process-runtime container's control socket
 * (`tsvm exec --control`, src/host/runtime-control-protocol.ts): signals
 * to the container's init, `exec` of a process in the running container
 * with its streams as frames, and `top`'s table from the guest's process
 * table (Docker's columns).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { PsEntry } from '../../process/runtime-control.js';
import { FrameReader, STREAM_EXIT, STREAM_STDERR, frame } from './frames.js';
import { ContainerError } from './store.js';
import type { OutputSink } from './engine.js';
import { STREAM_STDIN } from '../runtime-control-protocol.js';

/** How long a client retries while the socket is not there yet (the runtime is starting), ms. */
const CONNECT_RETRY_MS = 10_000;
/** Pause between connection attempts, ms. */
const CONNECT_STEP_MS = 25;
/** Longest reply line read, bytes (a `ps` of MAX_TASKS processes fits). */
const MAX_REPLY = 16 * 1024 * 1024;
/** Status of an exec whose container ended under it without a word (killed with the namespace: 128 + SIGKILL). */
const EXIT_KILLED = 137;
/** Status of an exec the runtime refused (Docker's "cannot invoke"). */
const EXIT_CANNOT_INVOKE = 126;

/** The control socket of container `id`: under a per-user directory (mode 0700) of the temporary directory, short as unix(7) wants. */
export function controlPath(id: string): string {
  const dir = path.join(os.tmpdir(), `tsvm-${os.userInfo().uid}`, 'ctl');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return path.join(dir, `${id.slice(0, 16)}.sock`);
}

/** Connects to `sock`, retrying while it is missing or refuses (the runtime is starting). */
function connect(sock: string): Promise<net.Socket> {
  const end = Date.now() + CONNECT_RETRY_MS;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = net.connect(sock);
      s.once('connect', () => { s.removeAllListeners('error'); resolve(s); });
      s.once('error', (e: NodeJS.ErrnoException) => {
        s.destroy();
        if ((e.code === 'ENOENT' || e.code === 'ECONNREFUSED') && Date.now() < end) setTimeout(attempt, CONNECT_STEP_MS);
        else reject(new ContainerError(500, `the container's control socket: ${e.message}`));
      });
    };
    attempt();
  });
}

/** Reads one reply line from `s`; calls `rest` with the bytes after it. */
function replyLine(s: net.Socket, rest?: (b: Buffer) => void): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const fail = (msg: string): void => { cleanup(); s.destroy(); reject(new ContainerError(500, `the container's control socket: ${msg}`)); };
    const onData = (b: Buffer): void => {
      buf = Buffer.concat([buf, b]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) { if (buf.length > MAX_REPLY) fail('reply too long'); return; }
      cleanup();
      let v: unknown;
      try { v = JSON.parse(buf.subarray(0, nl).toString('utf8')); } catch { fail('malformed reply'); return; }
      if (typeof v !== 'object' || v === null) { fail('malformed reply'); return; }
      resolve(v as Record<string, unknown>);
      if (rest !== undefined && buf.length > nl + 1) rest(buf.subarray(nl + 1));
    };
    const onEnd = (): void => fail('closed without a reply (the container ended)');
    const onError = (e: Error): void => fail(e.message);
    const cleanup = (): void => { s.off('data', onData); s.off('end', onEnd); s.off('error', onError); };
    s.on('data', onData);
    s.on('end', onEnd);
    s.on('error', onError);
  });
}

/** One request; its reply (`{error}` replies become a ContainerError with `status`). */
export async function controlRequest(sock: string, req: Record<string, unknown>, status = 500): Promise<Record<string, unknown>> {
  const s = await connect(sock);
  s.write(JSON.stringify(req) + '\n');
  try {
    const r = await replyLine(s);
    if (typeof r['error'] === 'string') throw new ContainerError(status, r['error']);
    return r;
  } finally { s.destroy(); }
}

/** A signal (a name without SIG, or a number) to the container's init; false if init ignored it. */
export async function signalInit(sock: string, signal: string): Promise<boolean> {
  return (await controlRequest(sock, { op: 'signal', signal }, 409))['delivered'] === true;
}

/** A process started in a running container: its output's sinks, its input, its status. */
export interface ExecRun {
  sinks: Set<OutputSink>;
  stdin: { write(b: Buffer): void; end(): void };
  exited: Promise<number>;
  /** Its pid in the container once the runtime has started it; null if it never started. */
  pid: Promise<number | null>;
}

/** What an exec runs: the request's fields (runtime-control-protocol.ts). */
export interface ExecSpec { argv: string[]; env: string[]; workdir: string; user?: string; stdin: boolean; tty?: boolean; cols?: number; rows?: number }

/**
 * Starts `spec` in the container behind `sock`. Output goes to the sinks as
 * it comes; a refusal (not found: 127, else 126) is one line on stderr and
 * that status; a container that ends under it gives 137.
 */
export function startExec(sock: string, spec: ExecSpec): ExecRun {
  const sinks = new Set<OutputSink>();
  let socket: net.Socket | null = null;
  let pending: Buffer[] = [];
  let inputEnded = false;
  const send = (b: Buffer): void => { if (socket !== null) { if (!socket.destroyed) socket.write(b); } else pending.push(b); };
  const stdin = {
    write: (b: Buffer): void => { if (!inputEnded && b.length > 0) send(frame(STREAM_STDIN, b)); },
    end: (): void => { if (!inputEnded) { inputEnded = true; send(frame(STREAM_STDIN, Buffer.alloc(0))); } },
  };
  const out = (stream: number, data: Buffer): void => { for (const s of sinks) s.write(stream, data); };
  let started: (pid: number | null) => void = () => undefined;
  const pid = new Promise<number | null>((resolve) => { started = resolve; });
  const exited = (async (): Promise<number> => {
    let s: net.Socket;
    try { s = await connect(sock); } catch (e) {
      out(STREAM_STDERR, Buffer.from(`tsvm: exec: ${(e as Error).message}\n`));
      return EXIT_CANNOT_INVOKE;
    }
    s.write(JSON.stringify({ op: 'exec', ...spec }) + '\n');
    let status: number | null = null;
    const reader = new FrameReader((stream, payload) => {
      if (stream === STREAM_EXIT) {
        try { status = (JSON.parse(payload.toString('utf8')) as { StatusCode: number }).StatusCode; } catch { status = EXIT_KILLED; }
      } else out(stream, payload);
    });
    const closed = new Promise<void>((resolve) => { s.on('close', () => resolve()); s.on('error', () => undefined); });
    let reply: Record<string, unknown>;
    try { reply = await replyLine(s, (rest) => reader.push(rest)); } catch (e) {
      out(STREAM_STDERR, Buffer.from(`tsvm: exec: ${(e as Error).message}\n`));
      return EXIT_KILLED;
    }
    if (typeof reply['error'] === 'string') {
      s.destroy();
      out(STREAM_STDERR, Buffer.from(`tsvm: ${reply['error']}\n`));
      return typeof reply['status'] === 'number' ? reply['status'] : EXIT_CANNOT_INVOKE;
    }
    started(typeof reply['pid'] === 'number' ? reply['pid'] : null);
    s.on('data', (b: Buffer) => reader.push(b));
    socket = s;
    for (const b of pending) s.write(b);
    pending = [];
    await closed;
    return status ?? EXIT_KILLED;
  })();
  void exited.then(() => started(null)); // a no-op once it has started
  return { sinks, stdin, exited, pid };
}

/** `top`'s titles (Docker's, from `ps -ef`). */
export const TOP_TITLES = ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'];

/** User names by uid from the container's /etc/passwd (its writable layer's copy first). */
export function userNames(layers: string[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const dir of layers) {
    let text: string;
    try { text = fs.readFileSync(path.join(dir, 'etc', 'passwd'), 'utf8'); } catch { continue; }
    for (const line of text.split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && /^\d+$/.test(f[2]!) && !m.has(Number(f[2]))) m.set(Number(f[2]), f[0]!);
    }
    break;
  }
  return m;
}

const two = (n: number): string => String(n).padStart(2, '0');

/** `top`'s rows (ps -ef's columns) for the guest's process table, at time `now` (ms). */
export function topRows(procs: PsEntry[], names: Map<number, string>, now: number): string[][] {
  return procs.map((p) => {
    const started = new Date(p.start), today = new Date(now);
    // ps(1) STIME: HH:MM for a process started today, else the month and day.
    const stime = started.toDateString() === today.toDateString()
      ? `${two(started.getHours())}:${two(started.getMinutes())}`
      : `${started.toLocaleString('en-US', { month: 'short' })}${two(started.getDate())}`;
    const secs = Math.floor(p.cpu / 1000);
    const time = `${two(Math.floor(secs / 3600))}:${two(Math.floor(secs / 60) % 60)}:${two(secs % 60)}`;
    const elapsed = Math.max(1, now - p.start);
    const c = Math.min(99, Math.floor((p.cpu / elapsed) * 100)); // ps(1) C: CPU time / elapsed time, percent
    const cmd = p.cmdline.length > 0 ? p.cmdline.join(' ') : `[${p.comm}]`;
    return [names.get(p.uid) ?? String(p.uid), String(p.pid), String(p.ppid), String(c), stime, '?', time, cmd];
  });
}
