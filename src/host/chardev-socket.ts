/**
 * `-chardev socket,id=ID,path=PATH,server=on,wait=off` on Node: a unix
 * socket the VMM listens on, serving one client at a time (a second client
 * is refused while one is connected), as QEMU's socket chardev does.
 *
 * Guest output while no client is connected is dropped, as QEMU's socket
 * chardev drops it (tcp_chr_write discards when disconnected), and counted.
 * While a client is connected, output is flow-controlled: once the socket
 * has CHARDEV_HIGH_WATER bytes unsent, `blocked()` holds the guest's
 * transmit buffers in its queue until the socket drains. Client input is
 * paused by the device while the guest has not taken the previous chunk.
 */
import fs from 'node:fs';
import net from 'node:net';
import nodePath from 'node:path';
import { boolProp, OptsError, type QemuOpts } from '../vmm/qemu-opts.js';
import type { ChardevPort } from '../vmm/services.js';

/** Unsent bytes on the client socket above which the guest's output waits (a few virtio buffers' worth). */
export const CHARDEV_HIGH_WATER = 256 * 1024;

const SOCKET_PROPS = new Set(['id', 'path', 'server', 'wait']);

/** A listening unix-socket chardev. */
export class SocketChardev implements ChardevPort {
  /** Guest output bytes dropped because no client was connected. */
  droppedNoClient = 0;
  private sock: net.Socket | null = null;
  private readonly server: net.Server;
  private readonly path: string;
  private readonly inputs = new Set<(b: Uint8Array) => void>();
  private readonly drains = new Set<() => void>();
  private paused = false;
  private closed = false;

  constructor(path: string, label: string) {
    this.path = path;
    this.server = net.createServer((s) => this.accept(s));
    this.server.on('error', (e: NodeJS.ErrnoException) => {
      process.stderr.write(`tsvm: ${label}: cannot listen on ${path}: ${e.code ?? e.message}\n`);
    });
    // A socket file left by an earlier run would make bind fail; anything else is left alone (and bind reports it).
    try { if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path); } catch { /* not there */ }
    this.server.listen(path);
  }

  /** Resolves once the socket is listening. */
  listening(): Promise<void> {
    return this.server.listening ? Promise.resolve() : new Promise((resolve) => this.server.once('listening', () => resolve()));
  }

  /** Whether a client is connected. */
  get connected(): boolean { return this.sock !== null; }

  private accept(s: net.Socket): void {
    if (this.closed || this.sock) { s.destroy(); return; } // one client at a time
    this.sock = s;
    s.on('data', (chunk: Buffer) => {
      const b = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
      for (const l of this.inputs) l(b);
    });
    s.on('drain', () => { for (const d of this.drains) d(); });
    s.on('error', () => { /* the close event follows */ });
    s.on('close', () => {
      if (this.sock !== s) return;
      this.sock = null;
      for (const d of this.drains) d(); // output no longer waits for this client
    });
    if (this.paused) s.pause();
  }

  write(bytes: Uint8Array): void {
    const s = this.sock;
    if (!s || !s.writable) { this.droppedNoClient += bytes.length; return; }
    s.write(bytes.slice());
  }

  blocked(): boolean { return this.sock !== null && this.sock.writableLength >= CHARDEV_HIGH_WATER; }

  onInput(listener: (bytes: Uint8Array) => void): () => void {
    this.inputs.add(listener);
    return () => { this.inputs.delete(listener); };
  }

  onDrain(listener: () => void): () => void {
    this.drains.add(listener);
    return () => { this.drains.delete(listener); };
  }

  pauseInput(paused: boolean): void {
    if (this.paused === paused) return;
    this.paused = paused;
    if (paused) this.sock?.pause(); else this.sock?.resume();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock?.end(); // flush what the guest wrote last (e.g. the agent's exit frame)
    this.sock = null;
    this.server.close();
    try { if (fs.lstatSync(this.path).isSocket()) fs.unlinkSync(this.path); } catch { /* gone */ }
  }
}

/** Opens a -chardev other than stdio; throws OptsError (one line) for unusable options. */
export function openChardev(o: QemuOpts): ChardevPort {
  const where = `-chardev ${o.text}`, id = o.props.get('id') ?? '';
  if (o.type !== 'socket') throw new OptsError(`${where}: unsupported chardev backend '${o.type}' (supported: socket, stdio)`);
  for (const k of o.props.keys()) {
    if (!SOCKET_PROPS.has(k)) throw new OptsError(`${where}: unknown property '${k}' (known: ${[...SOCKET_PROPS].join(', ')})`);
  }
  const path = o.props.get('path');
  if (path === undefined || path === '') throw new OptsError(`${where}: needs path=PATH (a unix socket; host/port are not supported)`);
  if (!boolProp(o, 'server', false)) throw new OptsError(`${where}: only server=on is supported (the VMM listens)`);
  if (boolProp(o, 'wait', true)) throw new OptsError(`${where}: only wait=off is supported (the VM does not wait for a client)`);
  const dir = nodePath.dirname(nodePath.resolve(path));
  if (!fs.existsSync(dir)) throw new OptsError(`${where}: directory ${dir} does not exist`);
  return new SocketChardev(path, `-chardev ${id}`);
}
