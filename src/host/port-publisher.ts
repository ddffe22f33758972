/**
 * Published ports of a process VM (`tsvm exec --publish`, Docker's `-p`):
 * the Node side of netns.ts's PortBridge.
 *
 * The process VM runs synchronously on the main thread, so Node's event
 * loop does not turn while it runs. The host sockets therefore live in a
 * worker thread (port-publisher-worker.ts) that listens on each
 * HOSTADDR:HOSTPORT and relays every accepted connection's events over a
 * MessagePort; the VM takes them without the event loop
 * (receiveMessageOnPort) and sleeps for them on a shared counter the
 * worker bumps after each message (Atomics.wait/notify).
 */
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { BridgeEvent, PortBridge } from '../process/netns.js';
import type { Publish } from './publish-spec.js';

export type { Publish } from './publish-spec.js';

/** Messages from the worker: a BridgeEvent, or its start-up and shut-down reports. */
export type WorkerReport = BridgeEvent | { t: 'ready' } | { t: 'error'; message: string } | { t: 'done' };

/** Messages to the worker. */
export type WorkerCommand =
  | { t: 'send'; conn: number; data: Uint8Array }
  | { t: 'end'; conn: number }
  | { t: 'close'; conn: number }
  | { t: 'pause'; conn: number; on: boolean }
  | { t: 'shutdown' };

/** How long the worker may take to start listening, and to flush at shutdown (ms). */
const START_TIMEOUT_MS = 15_000, SHUTDOWN_TIMEOUT_MS = 5_000;

/** The bridge between a VM's namespace and its published host ports. */
export class PortPublisher implements PortBridge {
  private seen = 0;
  private readonly pending: BridgeEvent[] = [];

  private constructor(private readonly worker: Worker, private readonly port: MessagePort, private readonly cell: Int32Array) {}

  /** Starts listening on every published port; the publisher, or a one-line error (a busy port, a bad address). */
  static start(ports: Publish[]): PortPublisher | string {
    const ch = new MessageChannel(), cell = new Int32Array(new SharedArrayBuffer(4));
    // workerData is cloned; a SharedArrayBuffer's clone shares its memory.
    const worker = new Worker(new URL('./port-publisher-worker.js', import.meta.url), {
      workerData: { ports, cell: cell.buffer, port: ch.port2 }, transferList: [ch.port2],
    });
    const pub = new PortPublisher(worker, ch.port1, cell);
    const end = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < end) {
      const r = pub.take();
      if (r === null) { Atomics.wait(pub.cell, 0, pub.seen, 50); continue; }
      if (r.t === 'ready') { pub.worker.unref(); return pub; }
      if (r.t === 'error') { void pub.worker.terminate(); return r.message; }
      if (r.t !== 'done') pub.pending.push(r);
    }
    void pub.worker.terminate();
    return 'publishing ports: the listener did not start';
  }

  private take(): WorkerReport | null {
    this.seen = Atomics.load(this.cell, 0);
    const m = receiveMessageOnPort(this.port);
    return m === undefined ? null : (m.message as WorkerReport);
  }

  private post(cmd: WorkerCommand): void { this.port.postMessage(cmd); }

  poll(): BridgeEvent[] {
    if (this.pending.length === 0 && Atomics.load(this.cell, 0) === this.seen) return [];
    const out = this.pending.splice(0);
    for (let r = this.take(); r !== null; r = this.take()) {
      if (r.t !== 'ready' && r.t !== 'error' && r.t !== 'done') out.push(r);
    }
    return out;
  }

  wait(ms: number): void {
    if (this.pending.length === 0 && ms > 0) Atomics.wait(this.cell, 0, this.seen, ms);
  }

  send(conn: number, data: Uint8Array): void { this.post({ t: 'send', conn, data }); }
  end(conn: number): void { this.post({ t: 'end', conn }); }
  close(conn: number): void { this.post({ t: 'close', conn }); }
  pause(conn: number, on: boolean): void { this.post({ t: 'pause', conn, on }); }

  /** The VM has ended: lets the worker flush what it was given and close every host socket, then stops it. */
  shutdown(): void {
    this.post({ t: 'shutdown' });
    const end = Date.now() + SHUTDOWN_TIMEOUT_MS;
    while (Date.now() < end) {
      const r = this.take();
      if (r === null) { Atomics.wait(this.cell, 0, this.seen, 50); continue; }
      if (r.t === 'done') break;
    }
    void this.worker.terminate();
  }
}
