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
 */
import net from 'node:net';
import { workerData, type MessagePort } from 'node:worker_threads';
import type { Publish, WorkerCommand, WorkerReport } from './port-publisher.js';

const { ports, cell: cellBuffer, port } = workerData as { ports: Publish[]; cell: SharedArrayBuffer; port: MessagePort };
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
  sockets.set(conn, sock);
  sock.setNoDelay(true);
  report({ t: 'open', conn, port: p.port });
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
  const s = sockets.get(m.conn);
  if (s === undefined) return;
  switch (m.t) {
    case 'send':
      if (!s.write(m.data)) report({ t: 'full', conn: m.conn, full: true });
      break;
    case 'end': s.end(); break;
    case 'close': sockets.delete(m.conn); s.destroy(); break;
    case 'pause': if (m.on) s.pause(); else s.resume(); break;
  }
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
  port.on('message', command);
  report({ t: 'ready' });
}

void start();
