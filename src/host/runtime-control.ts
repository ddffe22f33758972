/**
 * The control socket of a process VM (`tsvm exec --control PATH`): the
 * Node side of src/process/runtime-control.ts's ControlChannel, through
 * which the container engine signals the container's init, starts
 * processes in it (`exec`) and lists them (`top`). Protocol:
 * runtime-control-protocol.ts.
 *
 * The VM runs synchronously on the main thread, so the socket lives in a
 * worker thread (runtime-control-worker.ts), as published ports do
 * (port-publisher.ts): events come over a MessagePort taken without the
 * event loop (receiveMessageOnPort), and the VM sleeps for them on a
 * shared counter the worker bumps (Atomics.wait/notify). The worker is not
 * waited for at start (the VM runs meanwhile; a client that comes early
 * retries); a socket that cannot be made is one line on stderr.
 */
import fs from 'node:fs';
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { ControlChannel, ControlEvent } from '../process/runtime-control.js';

/** What the worker reports besides ControlEvents. */
export type ControlReport = { t: 'ready' } | { t: 'error'; message: string } | { t: 'done' };

/** Commands to the worker. */
export type ControlCommand =
  | { t: 'reply'; conn: number; body: Record<string, unknown>; end: boolean }
  | { t: 'output'; conn: number; stream: number; data: Uint8Array }
  | { t: 'exit'; conn: number; status: number }
  | { t: 'pause'; conn: number; on: boolean }
  | { t: 'shutdown' };

/** How long the worker may take to flush and close at the end (ms). */
const SHUTDOWN_TIMEOUT_MS = 5_000;
/** Longest unix socket path (sockaddr_un's sun_path is 108 bytes with its NUL, unix(7)). */
export const MAX_SOCKET_PATH = 107;

/** The control channel over a unix socket. */
export class ControlSocket implements ControlChannel {
  private seen = 0;
  /** True once a request has come (the worker must then be let to flush at the end). */
  private used = false;

  private constructor(private readonly worker: Worker, private readonly port: MessagePort, private readonly cell: Int32Array,
    private readonly path: string, private readonly log: (line: string) => void) {}

  /** Starts listening on `path`; the channel, or a one-line error. */
  static start(path: string, log: (line: string) => void): ControlSocket | string {
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) return `--control ${path}: a unix socket path has at most ${MAX_SOCKET_PATH} bytes`;
    const ch = new MessageChannel(), cell = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(new URL('./runtime-control-worker.js', import.meta.url), {
      workerData: { path, cell: cell.buffer, port: ch.port2 }, transferList: [ch.port2],
    });
    worker.unref();
    return new ControlSocket(worker, ch.port1, cell, path, log);
  }

  private take(): ControlReport | ControlEvent | null {
    this.seen = Atomics.load(this.cell, 0);
    const m = receiveMessageOnPort(this.port);
    return m === undefined ? null : (m.message as ControlReport | ControlEvent);
  }

  poll(): ControlEvent[] {
    if (Atomics.load(this.cell, 0) === this.seen) return [];
    const out: ControlEvent[] = [];
    for (let r = this.take(); r !== null; r = this.take()) {
      if (r.t === 'error') this.log(`tsvm: ${r.message}`);
      else if (r.t !== 'ready' && r.t !== 'done') { this.used = true; out.push(r); }
    }
    return out;
  }

  wait(ms: number): void {
    if (ms > 0) Atomics.wait(this.cell, 0, this.seen, ms);
  }

  reply(conn: number, body: Record<string, unknown>, end: boolean): void { this.port.postMessage({ t: 'reply', conn, body, end } satisfies ControlCommand); }
  output(conn: number, stream: number, data: Uint8Array): void { this.port.postMessage({ t: 'output', conn, stream, data } satisfies ControlCommand); }
  exit(conn: number, status: number): void { this.port.postMessage({ t: 'exit', conn, status } satisfies ControlCommand); }
  pause(conn: number, on: boolean): void { this.port.postMessage({ t: 'pause', conn, on } satisfies ControlCommand); }

  /** The VM has ended: lets the worker send what it was given, close every connection and remove the socket. */
  shutdown(): void {
    if (!this.used) {
      // Nobody asked anything: no reply to flush, so no need to wait for a worker that may still be starting.
      void this.worker.terminate();
      try { if (fs.lstatSync(this.path).isSocket()) fs.unlinkSync(this.path); } catch { /* not made yet */ }
      return;
    }
    this.port.postMessage({ t: 'shutdown' } satisfies ControlCommand);
    const end = Date.now() + SHUTDOWN_TIMEOUT_MS;
    while (Date.now() < end) {
      const r = this.take();
      if (r === null) { Atomics.wait(this.cell, 0, this.seen, 50); continue; }
      if (r.t === 'done') break;
    }
    void this.worker.terminate();
  }
}
