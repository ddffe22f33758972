/**
 * The worker thread of port-publisher.ts: listens on each published
 * HOSTADDR:HOSTPORT and relays every accepted host connection to the VM's
 * namespace as events (open, data, end, close, full) on a MessagePort,
 * bumping a shared counter after each so the VM thread can sleep on it.
 *
 * Back-pressure both ways: the VM pauses a host socket while the guest
 * has not read what came before, and the worker reports `full` while a
 * host socket's write buffer is over its high-water mark (until `drain`).
 * Half-close: sockets allow half-open connections, so a host FIN becomes
 * the guest's end of file while the guest may still reply, and the guest's
 * shutdown(SHUT_WR) or close becomes a FIN to the host.
 *
 * On a container network (network-relay.ts) it also listens on the
 * container's unix socket in the network's directory, named by its
 * address: each connection there starts with a header (the dialler's IPv4
 * address and port, the destination port) and becomes an 'open' event
 * with the dialler's address; once the VM's listener has it (`accepted`),
 * one ACK byte goes back. A `dial` connects to another member's socket,
 * sends the header and waits for that byte: the dialler's connect()
 * succeeds, or, if the socket closes first, is refused.
 */
import fs from 'node:fs';
import net from 'node:net';
import { workerData, type MessagePort } from 'node:worker_threads';
import type { Publish, WorkerCommand, WorkerReport } from './port-publisher.js';
import { NET_ACK, NET_HEADER_BYTES, decodeNetHeader, type NetworkAttachment } from './network-relay.js';

const { ports, cell: cellBuffer, port, network } = workerData as { ports: Publish[]; cell: SharedArrayBuffer; port: MessagePort; network?: NetworkAttachment };
const cell = new Int32Array(cellBuffer);
const sockets = new Map<number, net.Socket>();
const servers: net.Server[] = [];
let nextConn = 1;
let shuttingDown = false;

/** Posts a report and wakes the VM thread. */
function report(r: WorkerReport, transfer: ArrayBuffer[] = []): void {
  port.postMessage(r, transfer);
  Atomics.add(cell, 0, 1);
  Atomics.notify(cell, 0);
}

function accepted(sock: net.Socket, p: Publish): void {
  if (shuttingDown) { sock.destroy(); return; }
  const conn = nextConn++;
  sock.setNoDelay(true);
  report({ t: 'open', conn, port: p.port });
  track(sock, conn);
}

/** Relays a connection's events to the VM as connection `conn`. */
function track(sock: net.Socket, conn: number): void {
  sockets.set(conn, sock);
  sock.on('data', (b: Buffer) => {
    const data = new Uint8Array(b.length);
    data.set(b);
    report({ t: 'data', conn, data }, [data.buffer]);
  });
  sock.on('end', () => report({ t: 'end', conn }));
  sock.on('drain', () => report({ t: 'full', conn, full: false }));
  sock.on('error', () => undefined); // 'close' follows
  sock.on('close', () => {
    if (sockets.delete(conn)) report({ t: 'close', conn });
    finishIfIdle();
  });
}

function finishIfIdle(): void {
  if (shuttingDown && sockets.size === 0) { report({ t: 'done' }); port.close(); }
}

function command(m: WorkerCommand): void {
  if (m.t === 'shutdown') {
    shuttingDown = true;
    for (const s of servers) s.close();
    for (const s of sockets.values()) s.end();
    setTimeout(() => { for (const s of sockets.values()) s.destroy(); }, 2000).unref();
    finishIfIdle();
    return;
  }
  if (m.t === 'dial') { dial(m.req, m.path, m.header); return; }
  const s = sockets.get(m.conn);
  if (s === undefined) return;
  switch (m.t) {
    case 'send':
      if (!s.write(m.data)) report({ t: 'full', conn: m.conn, full: true });
      break;
    case 'end': s.end(); break;
    case 'close': sockets.delete(m.conn); s.destroy(); break;
    case 'pause': if (m.on) s.pause(); else s.resume(); break;
    case 'accepted': s.write(Uint8Array.of(NET_ACK)); break;
  }
}

/** Reports data that came in one chunk with a header or an ACK byte. */
function reportRest(conn: number, rest: Buffer): void {
  if (rest.length === 0) return;
  const data = new Uint8Array(rest.length);
  data.set(rest);
  report({ t: 'data', conn, data }, [data.buffer]);
}

/** A connection to this container's network socket: its header, then an 'open' with the dialler's address. */
function acceptedNet(sock: net.Socket): void {
  if (shuttingDown) { sock.destroy(); return; }
  let got = Buffer.alloc(0);
  const onHeader = (b: Buffer): void => {
    got = Buffer.concat([got, b]);
    if (got.length < NET_HEADER_BYTES) return;
    sock.off('data', onHeader);
    const h = decodeNetHeader(got);
    const conn = nextConn++;
    report({ t: 'open', conn, port: h.port, from: { ip: h.fromIp, port: h.fromPort } });
    track(sock, conn);
    reportRest(conn, got.subarray(NET_HEADER_BYTES));
  };
  sock.on('data', onHeader);
  sock.on('error', () => undefined);
}

/** Connects to another member's socket for request `req`: 'dialed' with the connection, or with why it failed. */
function dial(req: number, path: string, header: Uint8Array): void {
  const sock = net.connect({ path, allowHalfOpen: true });
  let done = false;
  const fail = (why: 'refused' | 'unreachable'): void => {
    if (done) return;
    done = true;
    sock.destroy();
    report({ t: 'dialed', req, conn: -1, error: why });
  };
  const onData = (b: Buffer): void => {
    if (done) return;
    done = true;
    sock.off('data', onData);
    if (b[0] !== NET_ACK) { sock.destroy(); report({ t: 'dialed', req, conn: -1, error: 'refused' }); return; }
    const conn = nextConn++;
    sock.setNoDelay(true);
    report({ t: 'dialed', req, conn });
    track(sock, conn);
    reportRest(conn, b.subarray(1));
  };
  sock.on('connect', () => sock.write(header));
  sock.on('data', onData);
  sock.on('error', (e: NodeJS.ErrnoException) => fail(e.code === 'ENOENT' ? 'unreachable' : 'refused'));
  // Half-open sockets: the other side's close without an ACK arrives as an end, not a close.
  sock.on('end', () => fail('refused'));
  sock.on('close', () => fail('refused'));
}

/** Listens on every published port; reports ready, or the first error (the others are closed). */
async function start(): Promise<void> {
  for (const p of ports) {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (s) => accepted(s, p));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: p.hostAddr, port: p.hostPort, exclusive: true }, () => resolve());
      });
    } catch (e) {
      for (const s of servers) s.close();
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'port is already allocated'
        : code === 'EADDRNOTAVAIL' ? 'address not available on this host'
          : code === 'EACCES' ? 'permission denied' : (e as Error).message;
      report({ t: 'error', message: `cannot publish ${p.hostAddr}:${p.hostPort}: ${why}` });
      return;
    }
    server.on('error', () => undefined);
    servers.push(server);
  }
  if (network !== undefined) {
    const server = net.createServer({ allowHalfOpen: true }, acceptedNet);
    try {
      fs.rmSync(network.socket, { force: true });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(network.socket, () => resolve());
      });
    } catch (e) {
      for (const s of servers) s.close();
      report({ t: 'error', message: `cannot join the network at ${network.socket}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
      return;
    }
    server.on('error', () => undefined);
    servers.push(server);
  }
  port.on('message', command);
  report({ t: 'ready' });
}

void start();
