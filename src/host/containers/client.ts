/**
 * The client side of the container routes: starting a host on first use
 * (`tsvm host start -d`, as a user would), JSON requests, the framed logs
 * stream and the attach/exec upgrade.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { errorMessage, hostAnswers, hostListens, hostRequest, openUpgrade } from '../host-client.js';
import { hostSocketPath } from '../host-paths.js';
import { ATTACH_PROTOCOL, FrameReader } from './frames.js';

/** An API error reply: its status and message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

/** The socket of a running host; starts one (`tsvm host start -d`) when none answers. */
export async function ensureHost(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const socket = hostSocketPath(undefined, env);
  if (await hostListens(socket)) return socket;
  const script = process.argv[1]!;
  const child = spawn(process.execPath, [...process.execArgv, script, 'host', 'start', '-d', '--socket', socket], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await new Promise<number>((resolve) => { child.on('exit', (c) => resolve(c ?? 1)); child.on('error', () => resolve(1)); });
  // Another client may have started it meanwhile: that host serves us too.
  if (code !== 0 && !(await hostAnswers(socket))) throw new ApiError(500, `cannot start a tsvm host: ${err.trim().split('\n').pop()?.replace(/^tsvm: /, '') ?? `exit ${code}`}`);
  return socket;
}

/** One JSON request; the reply body, or ApiError for a 4xx/5xx. */
export async function api(socket: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await hostRequest(socket, method, path, body);
  if (r.status >= 400) {
    const b = r.body as { error?: unknown };
    throw new ApiError(r.status, typeof b === 'object' && b !== null && 'error' in b ? String(b.error) : `HTTP ${r.status}`);
  }
  return r.body;
}

/** A framed GET response (logs): calls `on` per frame; resolves at its end. */
export function streamFrames(socket: string, path: string, on: (stream: number, payload: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method: 'GET', path, agent: false }, (res) => {
      if ((res.statusCode ?? 500) >= 400) {
        void errorMessage(res).then((msg) => reject(new ApiError(res.statusCode ?? 500, msg)));
        return;
      }
      const reader = new FrameReader(on);
      res.on('data', (c: Buffer) => reader.push(c));
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens an attach or exec stream (`path` under /v1/containers), `headers` seeing the 101's; rejects with ApiError for the host's refusal. */
export function openAttach(socket: string, path: string, headers?: (h: IncomingHttpHeaders) => void): Promise<Duplex> {
  return openUpgrade(socket, path, ATTACH_PROTOCOL, (status, msg) => new ApiError(status, msg), headers);
}
