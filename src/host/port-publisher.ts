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
 *
 * On a container network (network-relay.ts) the same bridge gives the
 * namespace its address and dials the other members.
 */
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { BridgeEvent, PortBridge } from '../process/netns.js';
import type { Publish } from './publish-spec.js';
import { E } from '../process/sys-abi.js';
import { encodeNetHeader, inSubnet, ipText, type NetworkAttachment } from './network-relay.js';

export type { Publish } from './publish-spec.js';

/** Messages from the worker: a BridgeEvent, or its start-up and shut-down reports. */
export type WorkerReport = BridgeEvent | { t: 'ready' } | { t: 'error'; message: string } | { t: 'done' }
  | { t: 'dialed'; req: number; conn: number; error?: 'refused' | 'unreachable' };

/** Messages to the worker. */
export type WorkerCommand =
  | { t: 'send'; conn: number; data: Uint8Array }
  | { t: 'end'; conn: number }
  | { t: 'close'; conn: number }
  | { t: 'pause'; conn: number; on: boolean }
  | { t: 'accepted'; conn: number }
  | { t: 'dial'; req: number; path: string; header: Uint8Array }
  | { t: 'shutdown' };

/** How long the worker may take to start listening, and to flush at shutdown (ms). */
const START_TIMEOUT_MS = 15_000, SHUTDOWN_TIMEOUT_MS = 5_000;
/** How long a connect() to another container waits for its VM to take the connection (ms); then ETIMEDOUT. */
const DIAL_TIMEOUT_MS = 20_000;

/** The bridge between a VM's namespace and its published host ports. */
export class PortPublisher implements PortBridge {
  private seen = 0;
  private readonly pending: BridgeEvent[] = [];
  private nextReq = 1;
  /** The namespace's address on its container network, if it has one. */
  readonly address?: Uint8Array;

  private constructor(private readonly worker: Worker, private readonly port: MessagePort, private readonly cell: Int32Array,
    private readonly network?: NetworkAttachment) {
    if (network !== undefined) this.address = network.address;
  }

  /** Starts listening on every published port (and the network socket); the publisher, or a one-line error (a busy port, a bad address). */
  static start(ports: Publish[], network?: NetworkAttachment): PortPublisher | string {
    const ch = new MessageChannel(), cell = new Int32Array(new SharedArrayBuffer(4));
    // workerData is cloned; a SharedArrayBuffer's clone shares its memory.
    const worker = new Worker(new URL('./port-publisher-worker.js', import.meta.url), {
      workerData: { ports, cell: cell.buffer, port: ch.port2, network }, transferList: [ch.port2],
    });
    const pub = new PortPublisher(worker, ch.port1, cell, network);
    const end = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < end) {
      const r = pub.take();
      if (r === null) { Atomics.wait(pub.cell, 0, pub.seen, 50); continue; }
      if (r.t === 'ready') { pub.worker.unref(); return pub; }
      if (r.t === 'error') { void pub.worker.terminate(); return r.message; }
      if (r.t !== 'done' && r.t !== 'dialed') pub.pending.push(r);
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
      if (r.t !== 'ready' && r.t !== 'error' && r.t !== 'done' && r.t !== 'dialed') out.push(r);
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
  accepted(conn: number): void { this.post({ t: 'accepted', conn }); }

  /** Another address of the network's subnet (not this one): connect() goes through `dial`. */
  reaches(ip: Uint8Array): boolean {
    const n = this.network;
    return n !== undefined && inSubnet(n, ip) && !ip.every((x, i) => x === n.address[i]);
  }

  /** Dials `ip`:`port` on the network, blocking until the other VM takes or refuses it; the connection id or -errno. */
  dial(ip: Uint8Array, port: number, from: { ip: Uint8Array; port: number }): number {
    const n = this.network;
    if (n === undefined) return -E.ENETUNREACH;
    const req = this.nextReq++;
    this.post({ t: 'dial', req, path: `${n.dir}/${ipText(ip)}`, header: encodeNetHeader(from.ip, from.port, port) });
    const end = Date.now() + DIAL_TIMEOUT_MS;
    while (Date.now() < end) {
      const r = this.take();
      if (r === null) { Atomics.wait(this.cell, 0, this.seen, 50); continue; }
      if (r.t === 'dialed' && r.req === req) {
        if (r.error === 'unreachable') return -E.EHOSTUNREACH;
        return r.error === 'refused' ? -E.ECONNREFUSED : r.conn;
      }
      if (r.t !== 'ready' && r.t !== 'error' && r.t !== 'done' && r.t !== 'dialed') this.pending.push(r);
    }
    return -E.ETIMEDOUT;
  }

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
