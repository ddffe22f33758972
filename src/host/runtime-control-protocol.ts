/**
 * The control socket's protocol (`tsvm exec --control PATH`, docs/api.md
 * "The runtime's control socket"): each connection carries one request, a
 * JSON object on one line; the reply is a JSON object on one line. After
 * an `exec` request's `{"ok":true,...}` reply the connection carries
 * frames (the attach stream's, src/host/containers/frames.ts: an 8-byte
 * header, byte 0 the stream, bytes 4..7 the length, big-endian): the
 * client sends stream 0 (stdin; an empty payload or a half-close ends it),
 * the VM sends 1 (stdout), 2 (stderr) and last 3 (the exit, JSON
 * {"StatusCode": N}). With "tty": true (and "cols"/"rows", the first
 * window size) the exec gets its own terminal and all its output is
 * stream 1; {"op":"resize","pid":N,"cols":C,"rows":R} on a connection of
 * its own resizes it. Bad input is answered with {"error": "..."} and the
 * connection is closed; it never reaches the VM.
 */
import type { ControlRequest } from '../process/runtime-control.js';
import { MAX_SIGNAL } from '../process/runtime-control.js';

/** Longest request line, in bytes (the newline excluded). */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Longest input frame payload, in bytes. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** The stream number of the client's input frames. */
export const STREAM_STDIN = 0;
/** Largest window dimension: struct winsize's fields are unsigned short (tty_ioctl(4), TIOCGWINSZ). */
export const WINSIZE_MAX = 65535;
/** The window size of an exec's terminal when the request gives none: the VT100's 80x24. */
const DEFAULT_COLS = 80, DEFAULT_ROWS = 24;
/** The frame header's size (frames.ts). */
const HEADER = 8;

/** Signal numbers by name (include/uapi/asm-generic/signal.h). */
export const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12,
  PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23,
  XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** A signal given as a number, or a name with or without SIG; null if unknown. */
export function signalNumber(s: string | number): number | null {
  if (typeof s === 'number') return Number.isInteger(s) && s >= 1 && s <= MAX_SIGNAL ? s : null;
  if (/^\d+$/.test(s)) return signalNumber(Number(s));
  const n = s.toUpperCase().replace(/^SIG/, '');
  return SIGNAL_NUMBERS[n] ?? null;
}

/** A window dimension `v` named `k` (1..WINSIZE_MAX), or a one-line reason it is refused. */
function dimension(op: string, k: string, v: unknown): number | string {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= WINSIZE_MAX ? v : `${op}: '${k}' must be a whole number from 1 to ${WINSIZE_MAX}`;
}

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** One request line: the request, or a one-line reason it is refused. */
export function parseControlRequest(line: string): ControlRequest | string {
  let v: unknown;
  try { v = JSON.parse(line); } catch { return 'malformed request: not JSON'; }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'malformed request: expected a JSON object';
  const b = v as Record<string, unknown>;
  switch (b['op']) {
    case 'ps': return { op: 'ps' };
    case 'signal': {
      const s = b['signal'];
      const n = typeof s === 'string' || typeof s === 'number' ? signalNumber(s) : null;
      return n === null ? `signal: invalid signal ${JSON.stringify(s ?? null)}` : { op: 'signal', signal: n };
    }
    case 'exec': {
      const argv = b['argv'], env = b['env'] ?? [], workdir = b['workdir'] ?? '/', user = b['user'], stdin = b['stdin'] ?? false;
      if (!strings(argv) || argv.length === 0 || argv[0] === '') return "exec: 'argv' must be a non-empty array of strings";
      if (argv.some((a) => a.includes('\0'))) return "exec: 'argv' must not hold NUL characters";
      if (!strings(env) || env.some((kv) => !/^[^=\0]+=[^\0]*$/.test(kv))) return "exec: 'env' must be an array of NAME=VALUE strings";
      if (typeof workdir !== 'string' || !workdir.startsWith('/') || workdir.includes('\0')) return "exec: 'workdir' must be an absolute path";
      if (typeof stdin !== 'boolean') return "exec: 'stdin' must be true or false";
      let ids: { uid: number; gid: number } | undefined;
      if (user !== undefined && user !== null) {
        const m = typeof user === 'string' ? /^(\d{1,10})(?::(\d{1,10}))?$/.exec(user) : null;
        if (m === null) return "exec: 'user' must be UID[:GID] (numbers)";
        ids = { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
        if (ids.uid > 0xffff_fffe || ids.gid > 0xffff_fffe) return "exec: 'user' ids must be below 4294967295";
      }
      const tty = b['tty'] ?? false;
      if (typeof tty !== 'boolean') return "exec: 'tty' must be true or false";
      let size: { cols: number; rows: number } | undefined;
      if (tty) {
        const cols = dimension('exec', 'cols', b['cols'] ?? DEFAULT_COLS), rows = dimension('exec', 'rows', b['rows'] ?? DEFAULT_ROWS);
        if (typeof cols === 'string') return cols;
        if (typeof rows === 'string') return rows;
        size = { cols, rows };
      } else if (b['cols'] !== undefined || b['rows'] !== undefined) return "exec: 'cols' and 'rows' need 'tty': true";
      return { op: 'exec', argv, env, workdir, stdin, ...(ids !== undefined ? { user: ids } : {}), ...(size !== undefined ? { tty: size } : {}) };
    }
    case 'resize': {
      const pid = b['pid'];
      if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1) return "resize: 'pid' must be a process id (a whole number from 1)";
      const cols = dimension('resize', 'cols', b['cols']), rows = dimension('resize', 'rows', b['rows']);
      if (typeof cols === 'string') return cols;
      if (typeof rows === 'string') return rows;
      return { op: 'resize', pid, cols, rows };
    }
    case undefined: return "malformed request: no 'op'";
    default: return `unknown request ${JSON.stringify(b['op'])} (expected signal, exec, resize or ps)`;
  }
}

/** What a connection's bytes amount to. */
export type ControlAction =
  | { t: 'request'; req: ControlRequest }
  | { t: 'error'; message: string }
  | { t: 'stdin'; data: Uint8Array }
  | { t: 'stdin-end' };

/**
 * The server's reading of one connection: the request line, then (after an
 * exec) input frames. After an `error` action the connection must be
 * answered and closed; later bytes are ignored.
 */
export class ControlConnection {
  private buf = new Uint8Array(0);
  private state: 'request' | 'frames' | 'done' = 'request';
  private inputEnded = false;

  /** Feeds bytes from the client; the actions they complete. */
  push(chunk: Uint8Array): ControlAction[] {
    if (this.state === 'done') return [];
    const all = new Uint8Array(this.buf.length + chunk.length);
    all.set(this.buf, 0);
    all.set(chunk, this.buf.length);
    this.buf = all;
    const out: ControlAction[] = [];
    if (this.state === 'request') {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) {
        if (this.buf.length > MAX_REQUEST_BYTES) return this.fail(out, `request longer than ${MAX_REQUEST_BYTES} bytes`);
        return out;
      }
      if (nl > MAX_REQUEST_BYTES) return this.fail(out, `request longer than ${MAX_REQUEST_BYTES} bytes`);
      const line = new TextDecoder('utf-8', { fatal: false }).decode(this.buf.subarray(0, nl));
      this.buf = this.buf.slice(nl + 1);
      const req = parseControlRequest(line);
      if (typeof req === 'string') return this.fail(out, req);
      out.push({ t: 'request', req });
      if (req.op !== 'exec') { this.state = 'done'; return out; }
      this.state = 'frames';
    }
    while (this.buf.length >= HEADER && !this.inputEnded) {
      const view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
      const stream = this.buf[0]!, n = view.getUint32(4);
      if (stream !== STREAM_STDIN) return this.fail(out, `input frame of stream ${stream}: expected ${STREAM_STDIN} (stdin)`);
      if (n > MAX_FRAME_BYTES) return this.fail(out, `input frame longer than ${MAX_FRAME_BYTES} bytes`);
      if (this.buf.length < HEADER + n) break;
      const data = this.buf.slice(HEADER, HEADER + n);
      this.buf = this.buf.slice(HEADER + n);
      if (n === 0) { this.inputEnded = true; out.push({ t: 'stdin-end' }); } else out.push({ t: 'stdin', data });
    }
    return out;
  }

  /** The client half-closed: its input ends (and a request cut short is refused). */
  end(): ControlAction[] {
    if (this.state === 'request') return this.fail([], this.buf.length === 0 ? 'no request' : 'request not ended by a newline');
    if (this.state === 'frames' && !this.inputEnded) { this.inputEnded = true; return [{ t: 'stdin-end' }]; }
    return [];
  }

  private fail(out: ControlAction[], message: string): ControlAction[] {
    this.state = 'done';
    this.buf = new Uint8Array(0);
    out.push({ t: 'error', message });
    return out;
  }
}
