/**
 * A learning Ethernet switch on a unix socket: the virtual switch of a
 * container network (`tsvm network create`) for the vm runtime's microVMs.
 *
 * Each VM on the network has a NIC whose netdev is
 * `stream,server=off,addr.type=unix,addr.path=SOCKET` (net-socket.ts), so
 * every connection is a switch port carrying QEMU's stream framing: a
 * 4-byte big-endian length, then the frame. The switch learns which port
 * each source MAC address came from (IEEE 802.1D's filtering database)
 * and sends a frame with a known unicast destination to that port only;
 * broadcast, multicast and unknown destinations are flooded to every other
 * port. The network's gateway address (net-gateway.ts: ARP, DHCP, DNS)
 * sees broadcasts and the frames sent to its MAC, and its replies go back
 * to the port they answer. A port whose peer reads too slowly has frames dropped, as a
 * switch drops on a full queue, so one stuck VM never stalls the others;
 * a port that breaks the framing is closed.
 */
import fs from 'node:fs';
import net from 'node:net';
import { FrameDecoder, FramingError, encodeFrame } from './net-socket.js';
import type { NetGateway } from './net-gateway.js';

/** Bytes queued towards one port beyond which frames to it are dropped. */
const PORT_QUEUE_BYTES = 1024 * 1024;
/** Entries of the filtering database before it is cleared (a guest sending from random MACs cannot grow it without bound). */
const MAX_MACS = 4096;
/** Ethernet header: destination (6), source (6), type (2) (IEEE 802.3 §3.1.1). */
const ETH_HEADER = 14;

/** A switch port: one VM's connection. */
interface Port { sock: net.Socket; decoder: FrameDecoder }

/** The switch (see the module comment). */
export class NetSwitch {
  private readonly ports = new Set<Port>();
  /** Filtering database: source MAC (12 hex digits) → port. */
  private readonly fdb = new Map<string, Port>();
  /** Frames forwarded, flooded copies included, and frames dropped on full queues. */
  readonly counters = { frames: 0, dropped: 0 };

  private constructor(private readonly server: net.Server, readonly path: string, private readonly gateway: NetGateway | null) {}

  /** Listens on unix socket `path` (a stale socket file there is replaced); `gateway` answers at the network's .1. */
  static async listen(path: string, gateway: NetGateway | null = null): Promise<NetSwitch> {
    fs.rmSync(path, { force: true });
    const server = net.createServer();
    const sw = new NetSwitch(server, path, gateway);
    server.on('connection', (sock) => sw.attach(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => { server.off('error', reject); resolve(); });
    });
    fs.chmodSync(path, 0o600);
    return sw;
  }

  /** Ports connected now. */
  get portCount(): number { return this.ports.size; }

  private attach(sock: net.Socket): void {
    const port: Port = { sock, decoder: new FrameDecoder((frame) => this.forward(port, frame)) };
    this.ports.add(port);
    sock.on('data', (chunk: Buffer) => {
      try { port.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)); } catch (e) {
        if (e instanceof FramingError) sock.destroy(); else throw e;
      }
    });
    const drop = (): void => {
      this.ports.delete(port);
      for (const [mac, p] of this.fdb) if (p === port) this.fdb.delete(mac);
    };
    sock.on('close', drop);
    sock.on('error', () => sock.destroy());
  }

  /** Learns the frame's source and sends it on: to the port of a known unicast destination, else to every other port. */
  private forward(from: Port, frame: Uint8Array): void {
    if (frame.length < ETH_HEADER) return;
    const src = macKey(frame, 6);
    // A group address (bit 0 of the first octet, IEEE 802 §8.2) is never a source.
    if ((frame[6]! & 1) === 0) {
      if (!this.fdb.has(src) && this.fdb.size >= MAX_MACS) this.fdb.clear();
      this.fdb.set(src, from);
    }
    const data = encodeFrame(frame);
    // A known unicast destination is a port's (the gateway and the process members it answers for never send from one).
    const to = (frame[0]! & 1) === 0 ? this.fdb.get(macKey(frame, 0)) : undefined;
    if (to !== undefined) { if (to !== from) this.send(to, data); return; }
    if (this.gateway !== null && this.gateway.wants(frame)) {
      const reply = this.gateway.handle(frame);
      if (reply !== null) this.send(from, encodeFrame(reply));
      if ((frame[0]! & 1) === 0) return; // to the gateway's MAC, or a process member's: for it alone
    }
    for (const p of this.ports) if (p !== from) this.send(p, data);
  }

  /** Sends a frame from the gateway (its TCP bridge): to the port of its destination MAC, or to every port. */
  inject(frame: Uint8Array): void {
    if (frame.length < ETH_HEADER) return;
    const data = encodeFrame(frame);
    const to = (frame[0]! & 1) === 0 ? this.fdb.get(macKey(frame, 0)) : undefined;
    if (to !== undefined) { this.send(to, data); return; }
    for (const p of this.ports) this.send(p, data);
  }

  private send(p: Port, data: Uint8Array): void {
    if (p.sock.writableLength > PORT_QUEUE_BYTES) { this.counters.dropped++; return; }
    this.counters.frames++;
    p.sock.write(data);
  }

  /** Closes every port and the listening socket, and removes the socket file. */
  async close(): Promise<void> {
    for (const p of this.ports) p.sock.destroy();
    this.ports.clear();
    this.fdb.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.path, { force: true });
  }
}

/** The MAC address at `off` of `frame` as 12 hex digits. */
function macKey(frame: Uint8Array, off: number): string {
  let s = '';
  for (let i = off; i < off + 6; i++) s += (frame[i]! < 16 ? '0' : '') + frame[i]!.toString(16);
  return s;
}
