/**
 * The host side of `-qmp`: a listening socket (unix or TCP) whose clients
 * each get a QMP session on the VM's QmpMonitor. Input is framed into JSON
 * texts by the protocol's JsonSplitter (so newline-delimited JSON and
 * multi-line JSON both work); output messages end with CRLF, as the QMP
 * specification requires.
 *
 * Unlike QEMU's single-client chardev, any number of clients may be
 * connected at once; each negotiates capabilities on its own and receives
 * events once in command mode.
 */
import fs from 'node:fs';
import net from 'node:net';
import { JsonSplitter, type QmpAddress, type QmpConnection, type QmpMonitor } from '../vmm/qmp.js';

/** A QMP listener. */
export class QmpServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly unixPath: string | null;
  private firstClient: Promise<void>;
  private gotClient: () => void = () => {};
  private closed = false;

  private constructor(server: net.Server, unixPath: string | null) {
    this.server = server;
    this.unixPath = unixPath;
    this.firstClient = new Promise((resolve) => { this.gotClient = resolve; });
  }

  /**
   * Listens on `addr` and attaches every client to `monitor`. A stale unix
   * socket file at the path is replaced (as QEMU does); any other existing
   * file is an error. Rejects with an Error whose message is one line.
   */
  static async listen(addr: QmpAddress, monitor: QmpMonitor): Promise<QmpServer> {
    const server = net.createServer();
    const qs = new QmpServer(server, addr.kind === 'unix' ? addr.path : null);
    server.on('connection', (sock) => qs.accept(sock, monitor));
    if (addr.kind === 'unix') {
      let st: fs.Stats | null = null;
      try { st = fs.lstatSync(addr.path); } catch { /* does not exist */ }
      if (st && !st.isSocket()) throw new Error(`-qmp: ${addr.path} exists and is not a socket`);
      if (st) fs.unlinkSync(addr.path);
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`-qmp: cannot listen on ${describe(addr)}: ${e.code ?? e.message}`)));
      if (addr.kind === 'unix') server.listen(addr.path, resolve);
      else server.listen(addr.port, addr.host === '' ? undefined : addr.host, resolve);
    });
    server.on('error', () => { /* later accept errors: keep serving */ });
    return qs;
  }

  /** The bound TCP port (for tcp:HOST:0), or null for a unix socket. */
  get port(): number | null {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a.port : null;
  }

  /** Resolves when the first client has connected (for wait=on). */
  waitForClient(): Promise<void> { return this.firstClient; }

  private accept(sock: net.Socket, monitor: QmpMonitor): void {
    if (this.closed) { sock.destroy(); return; }
    this.sockets.add(sock);
    this.gotClient();
    sock.setEncoding('utf8'); // the spec: input is UTF-8
    const splitter = new JsonSplitter();
    let lineHandler: (line: string) => void = () => {};
    const closeHandlers: (() => void)[] = [];
    let gone = false;
    const finish = (): void => {
      if (gone) return;
      gone = true;
      this.sockets.delete(sock);
      for (const h of closeHandlers) h();
    };
    const conn: QmpConnection = {
      send: (line) => { if (!sock.destroyed && sock.writable) sock.write(`${line}\r\n`); },
      onLine: (h) => { lineHandler = h; },
      onClose: (h) => { closeHandlers.push(h); },
      close: () => { sock.end(); },
    };
    sock.on('data', (chunk: string) => { for (const m of splitter.push(chunk)) lineHandler(m); });
    sock.on('error', () => { sock.destroy(); finish(); });
    sock.on('close', finish);
    sock.on('end', () => { sock.end(); });
    monitor.attach(conn);
  }

  /** Stops listening, closes the clients after their pending output, and removes the unix socket file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ended = [...this.sockets].map((s) => new Promise<void>((resolve) => {
      if (s.destroyed) { resolve(); return; }
      s.once('close', () => resolve());
      s.end();
      setTimeout(() => { s.destroy(); resolve(); }, 1000).unref();
    }));
    await Promise.all([new Promise<void>((resolve) => this.server.close(() => resolve())), ...ended]);
    if (this.unixPath !== null) { try { fs.unlinkSync(this.unixPath); } catch { /* already gone */ } }
  }
}

function describe(addr: QmpAddress): string {
  return addr.kind === 'unix' ? `unix:${addr.path}` : `tcp:${addr.host}:${addr.port}`;
}
