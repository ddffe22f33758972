/**
 * A small QMP client for tests: connects to a unix socket, splits the
 * server's CRLF-terminated messages, and keeps events apart from replies.
 */
import net from 'node:net';

/** A QMP message as parsed JSON. */
export type QmpMsg = Record<string, unknown>;

/** One client connection. */
export class QmpClient {
  readonly sock: net.Socket;
  /** Every message received, in order (replies and events). */
  readonly received: QmpMsg[] = [];
  private buf = '';
  private cursor = 0;
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        this.received.push(JSON.parse(this.buf.slice(0, i)) as QmpMsg);
        this.buf = this.buf.slice(i + 2);
      }
      this.wakeUp();
    });
    sock.on('close', () => { this.closed = true; this.wakeUp(); });
    sock.on('error', () => { /* reported through `closed` */ });
  }

  private wakeUp(): void { const w = this.waiter; this.waiter = null; w?.(); }

  /** Connects to a unix socket path, retrying until `timeoutMs` (the server may still be starting). */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await new Promise<QmpClient>((resolve, reject) => {
          const s = net.createConnection(path, () => { s.removeListener('error', reject); resolve(new QmpClient(s)); });
          s.once('error', reject);
        });
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** The next message not yet taken (reply or event). */
  async next(timeoutMs = 10_000): Promise<QmpMsg> {
    const deadline = Date.now() + timeoutMs;
    while (this.cursor >= this.received.length) {
      if (this.closed) throw new Error('QMP connection closed');
      if (Date.now() > deadline) throw new Error('no QMP message');
      await new Promise<void>((r) => { this.waiter = r; setTimeout(r, 100); });
    }
    return this.received[this.cursor++]!;
  }

  /** Sends raw text. */
  send(text: string): void { this.sock.write(text); }

  /** Sends a command and returns its reply (events on the way are skipped but kept in `received`). */
  async call(cmd: QmpMsg, timeoutMs = 10_000): Promise<QmpMsg> {
    this.send(JSON.stringify(cmd) + '\n');
    for (;;) {
      const m = await this.next(timeoutMs);
      if (!('event' in m)) return m;
    }
  }

  /** Waits for an event named `name` (searching everything received so far, then new messages). */
  async event(name: string, timeoutMs = 10_000): Promise<QmpMsg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.received.find((m) => m['event'] === name);
      if (e) return e;
      if (this.closed) throw new Error(`QMP connection closed before ${name}`);
      if (Date.now() > deadline) throw new Error(`no ${name} event`);
      await new Promise<void>((r) => { this.waiter = r; setTimeout(r, 100); });
    }
  }

  /** Closes the connection. */
  close(): void { this.sock.destroy(); }
}
