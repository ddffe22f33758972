/**
 * The worker thread of runtime-control.ts: listens on the control socket
 * (a unix socket, mode 0600), reads each connection's request
 * (runtime-control-protocol.ts), answers bad input itself, and relays
 * requests and exec input to the VM thread as events on a MessagePort,
 * bumping a shared counter after each so the VM can sleep on it. The VM's
 * replies, output and exit statuses come back as commands.
 */
import fs from 'node:fs';
import net from 'node:net';
import { workerData, type MessagePort } from 'node:worker_threads';
import type { ControlEvent } from '../process/runtime-control.js';
import { ControlConnection, type ControlAction } from './runtime-control-protocol.js';
import type { ControlCommand, ControlReport } from './runtime-control.js';
import { STREAM_STDERR, exitFrame, frame } from './containers/frames.js';

const { path, cell: cellBuffer, port } = workerData as { path: string; cell: SharedArrayBuffer; port: MessagePort };
const cell = new Int32Array(cellBuffer);
const sockets = new Map<number, net.Socket>();
let nextConn = 1;
let shuttingDown = false;

/** Posts a report and wakes the VM thread. */
function report(r: ControlReport | ControlEvent, transfer: ArrayBuffer[] = []): void {
  port.postMessage(r, transfer);
  Atomics.add(cell, 0, 1);
  Atomics.notify(cell, 0);
}

function accepted(sock: net.Socket): void {
  if (shuttingDown) { sock.destroy(); return; }
  const conn = nextConn++;
  sockets.set(conn, sock);
  const parser = new ControlConnection();
  let requested = false;
  const act = (actions: ControlAction[]): void => {
    for (const a of actions) {
      if (a.t === 'request') { requested = true; report({ t: 'request', conn, req: a.req }); continue; }
      if (a.t === 'stdin') { report({ t: 'stdin', conn, data: a.data }, [a.data.buffer as ArrayBuffer]); continue; }
      if (a.t === 'stdin-end') { report({ t: 'stdin-end', conn }); continue; }
      if (!requested) { sock.end(JSON.stringify({ error: a.message }) + '\n'); continue; }
      // Bad input in an exec's stream: its input ends; the process goes on.
      sock.write(frame(STREAM_STDERR, Buffer.from(`tsvm: control: ${a.message}\n`)));
      report({ t: 'stdin-end', conn });
    }
  };
  sock.on('data', (b: Buffer) => { act(parser.push(new Uint8Array(b))); });
  sock.on('end', () => { act(parser.end()); });
  sock.on('error', () => undefined); // 'close' follows
  sock.on('close', () => {
    if (sockets.delete(conn) && requested) report({ t: 'closed', conn });
    finishIfIdle();
  });
}

function finishIfIdle(): void {
  if (shuttingDown && sockets.size === 0) { report({ t: 'done' }); port.close(); }
}

function command(m: ControlCommand): void {
  if (m.t === 'shutdown') {
    shuttingDown = true;
    server.close();
    try { fs.unlinkSync(path); } catch { /* gone */ }
    for (const s of sockets.values()) s.end();
    setTimeout(() => { for (const s of sockets.values()) s.destroy(); }, 2000).unref();
    finishIfIdle();
    return;
  }
  const s = sockets.get(m.conn);
  if (s === undefined || s.destroyed) return;
  switch (m.t) {
    case 'reply': s.write(JSON.stringify(m.body) + '\n'); if (m.end) s.end(); break;
    case 'output': s.write(frame(m.stream, m.data)); break;
    case 'exit': s.end(exitFrame(m.status)); break;
    case 'pause': if (m.on) s.pause(); else s.resume(); break;
  }
}

const server = net.createServer({ allowHalfOpen: true }, accepted);
server.on('error', (e) => { report({ t: 'error', message: `control socket ${path}: ${e.message}` }); });
// A socket left by an earlier run of this container is replaced; anything else at the path is an error.
try { if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path); } catch { /* none */ }
server.listen(path, () => {
  try { fs.chmodSync(path, 0o600); } catch { /* listen made it; its mode stays the umask's */ }
  report({ t: 'ready' });
});
port.on('message', command);
