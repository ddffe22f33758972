/**
 * The client side of the host's API (docs/api.md): JSON requests over
 * HTTP on the host's unix socket, and the console stream (an HTTP upgrade
 * to raw bytes both ways).
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';

/** No host answers on the socket: one line saying how to start one. */
export class NoHostError extends Error {
  constructor(socket: string, code: string) {
    super(`no tsvm host is running at ${socket} (${code}); start one with 'tsvm host start -d'`);
  }
}

/** A reply: the HTTP status and the body (parsed when it is JSON). */
export interface HostReply { status: number; body: unknown; raw: Buffer }

/** The upgrade protocol name of the console stream. */
export const CONSOLE_PROTOCOL = 'tsvm-console';

/** Error codes that mean nothing listens on the socket. */
const NO_HOST = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK']);

/** Sends one request; `body` is sent as JSON unless it is a string (sent as is). Rejects with NoHostError when no host answers. */
export function hostRequest(socket: string, method: string, path: string, body?: unknown): Promise<HostReply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request({
      // One connection per request: a kept-alive connection the host has since closed would fail with EPIPE.
      socketPath: socket, method, path, agent: false,
      headers: data !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        let parsed: unknown = raw;
        if ((res.headers['content-type'] ?? '').startsWith('application/json')) {
          try { parsed = JSON.parse(raw.toString('utf8')); } catch { parsed = raw.toString('utf8'); }
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, raw });
      });
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => reject(NO_HOST.has(e.code ?? '') ? new NoHostError(socket, e.code!) : e));
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** Whether something accepts connections on `socket` (one connect, no request: the client's cheap check before its first request). */
export function hostListens(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

/** Whether a host answers on `socket`. */
export async function hostAnswers(socket: string): Promise<boolean> {
  try { return (await hostRequest(socket, 'GET', '/v1/host')).status === 200; } catch { return false; }
}

/** The one-line message of a refused request: the body's JSON `error`, else its text. */
export function errorMessage(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      let msg = Buffer.concat(chunks).toString('utf8');
      try { msg = (JSON.parse(msg) as { error?: string }).error ?? msg; } catch { /* not JSON */ }
      resolve(msg);
    });
  });
}

/**
 * Opens an HTTP Upgrade stream (`protocol`) at `path`: resolves to the raw
 * byte stream, or rejects with `refused(status, message)` when the host
 * answers without upgrading.
 */
export function openUpgrade(socket: string, path: string, protocol: string, refused: (status: number, message: string) => Error,
  headers?: (h: http.IncomingHttpHeaders) => void): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method: 'GET', path, agent: false, headers: { connection: 'Upgrade', upgrade: protocol } });
    req.on('upgrade', (res, sock, head) => {
      headers?.(res.headers);
      if (head.length > 0) sock.unshift(head);
      resolve(sock);
    });
    req.on('response', (res) => { void errorMessage(res).then((msg) => reject(refused(res.statusCode ?? 500, msg))); });
    req.on('error', (e: NodeJS.ErrnoException) => reject(NO_HOST.has(e.code ?? '') ? new NoHostError(socket, e.code!) : e));
    req.end();
  });
}

/** Opens VM `name`'s console stream; resolves to the raw byte stream, or rejects with the host's error message. */
export function openConsole(socket: string, name: string): Promise<Duplex> {
  return openUpgrade(socket, `/v1/vms/${encodeURIComponent(name)}/console`, CONSOLE_PROTOCOL,
    (status, msg) => Object.assign(new Error(msg), { status }));
}
