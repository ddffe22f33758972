/**
 * `tsvm host start|stop|stats`: the many-VM host (src/host/host-server.ts)
 * in the foreground or as a background daemon, and its client side.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Host, DEFAULT_POOL, parsePoolSize } from '../host/host-server.js';
import { hostAnswers, hostRequest, NoHostError } from '../host/host-client.js';
import { ensureSocketDir, hostSocketPath } from '../host/host-paths.js';

/** Exit status for usage errors (as `tsvm run`). */
const EXIT_USAGE = 125;
/** How long `-d` and `host stop` wait for the host to answer or go away. */
const WAIT_MS = 30_000;
/** Poll interval while waiting for the host. */
const POLL_MS = 25;

/** Options of `tsvm host start`. */
export interface HostStartOptions { pool?: string; swap?: string; socket?: string; detach?: boolean; idleTax?: string; samplePeriod?: string; defaultRuntime?: string; pageSharing?: string }

function fail(msg: string, code = 1): number { process.stderr.write(`tsvm: ${msg}\n`); return code; }

/** Reports a client-side failure (no host, or an API error); returns the exit status. */
export function clientFailure(e: unknown): number {
  if (e instanceof NoHostError) return fail(e.message);
  return fail(e instanceof Error ? e.message : String(e));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `tsvm host start`; returns the exit status (the foreground host returns when it is stopped). */
export async function hostStart(o: HostStartOptions): Promise<number> {
  const pool = o.pool === undefined ? DEFAULT_POOL : parsePoolSize(o.pool);
  if (typeof pool === 'string') return fail(pool, EXIT_USAGE);
  const socket = hostSocketPath(o.socket);
  const swap = o.swap !== undefined ? path.resolve(o.swap) : null;
  if (swap !== null && !fs.existsSync(path.dirname(swap))) return fail(`--swap ${o.swap}: no directory ${path.dirname(swap)}`, EXIT_USAGE);
  const tax = o.idleTax === undefined ? undefined : Number(o.idleTax);
  if (tax !== undefined && !(/^\d+(\.\d+)?$/.test(o.idleTax!) && tax <= 99)) return fail(`--idle-tax ${o.idleTax}: expected a percentage from 0 to 99`, EXIT_USAGE);
  const period = o.samplePeriod === undefined ? undefined : Number(o.samplePeriod);
  if (period !== undefined && !(/^\d+(\.\d+)?$/.test(o.samplePeriod!) && period >= 0.1 && period <= 3600)) return fail(`--sample-period ${o.samplePeriod}: expected seconds from 0.1 to 3600`, EXIT_USAGE);
  const rt = o.defaultRuntime;
  if (rt !== undefined && rt !== 'process' && rt !== 'vm') return fail(`--default-runtime ${rt}: expected process or vm`, EXIT_USAGE);
  const sharing = o.pageSharing;
  if (sharing !== undefined && sharing !== 'on' && sharing !== 'off') return fail(`--page-sharing ${sharing}: expected on or off`, EXIT_USAGE);
  if (o.detach) return daemonize(socket, o);
  let host: Host;
  try {
    host = await Host.start({ socket, poolBytes: pool, swapPath: swap, idleTax: tax === undefined ? undefined : tax / 100, activityPeriodMs: period === undefined ? undefined : period * 1000, defaultRuntime: rt, pageSharing: sharing === undefined ? undefined : sharing === 'on' });
  } catch (e) { return fail((e as Error).message); }
  process.stderr.write(`tsvm host: listening on ${socket} (pid ${process.pid})\n`);
  // A bug in one request's handling must not take the other VMs down with the host: log it and go on.
  process.on('unhandledRejection', (e) => { process.stderr.write(`tsvm host: internal error: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`); });
  const onSignal = (): void => { void host.stop(); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await host.stopped;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.stderr.write('tsvm host: stopped\n');
  // Leave at once rather than wait for V8's background compiles of VM code (see program.ts `exec`).
  process.exit(0);
}

/** Starts the host as a detached process, waits until its socket answers, prints its path. */
async function daemonize(socket: string, o: HostStartOptions): Promise<number> {
  if (await hostAnswers(socket)) return fail(`a tsvm host is already running at ${socket}`);
  ensureSocketDir(socket);
  const logPath = path.join(path.dirname(socket), `${path.basename(socket)}.log`);
  const log = fs.openSync(logPath, 'a', 0o600);
  const script = process.argv[1]!;
  const args = [...process.execArgv, script, 'host', 'start', '--socket', socket];
  if (o.pool !== undefined) args.push('--pool', o.pool);
  if (o.swap !== undefined) args.push('--swap', path.resolve(o.swap));
  if (o.idleTax !== undefined) args.push('--idle-tax', o.idleTax);
  if (o.samplePeriod !== undefined) args.push('--sample-period', o.samplePeriod);
  if (o.defaultRuntime !== undefined) args.push('--default-runtime', o.defaultRuntime);
  if (o.pageSharing !== undefined) args.push('--page-sharing', o.pageSharing);
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exited: number | null = null;
  child.on('exit', (code) => { exited = code ?? 1; });
  child.unref();
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (exited !== null) {
      const tail = fs.readFileSync(logPath, 'utf8').trim().split('\n').pop() ?? '';
      return fail(`the host did not start: ${tail.replace(/^tsvm: /, '')} (log: ${logPath})`);
    }
    if (await hostAnswers(socket)) {
      process.stdout.write(`${socket}\n`);
      return 0;
    }
    await sleep(POLL_MS);
  }
  return fail(`the host did not answer on ${socket} within ${WAIT_MS / 1000} s (log: ${logPath})`);
}

/** `tsvm host stop`: stops every VM and the host, waits until its socket is gone. */
export async function hostStop(o: { socket?: string }): Promise<number> {
  const socket = hostSocketPath(o.socket);
  try {
    const r = await hostRequest(socket, 'POST', '/v1/host/stop');
    if (r.status >= 400) return fail(errorOf(r.body));
  } catch (e) { return clientFailure(e); }
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline && fs.existsSync(socket)) await sleep(POLL_MS);
  process.stdout.write('tsvm host: stopped\n');
  return 0;
}

/** The `error` of an API reply body. */
export function errorOf(body: unknown): string {
  if (typeof body === 'object' && body !== null && 'error' in body) return String((body as { error: unknown }).error);
  return String(body);
}

/** `tsvm host stats [--json]`. */
export async function hostStats(o: { socket?: string; json?: boolean }): Promise<number> {
  const socket = hostSocketPath(o.socket);
  let body: unknown;
  try {
    const r = await hostRequest(socket, 'GET', '/v1/host/stats');
    if (r.status >= 400) return fail(errorOf(r.body));
    body = r.body;
  } catch (e) { return clientFailure(e); }
  if (o.json) { process.stdout.write(`${JSON.stringify(body, null, 2)}\n`); return 0; }
  const s = body as Record<string, Record<string, number>>;
  const rows: [string, string, number][] = [];
  for (const part of ['pool', 'sharing', 'swap']) for (const [k, v] of Object.entries(s[part] ?? {})) rows.push([part, k, v]);
  const w = Math.max(...rows.map((r) => `${r[0]}.${r[1]}`.length));
  for (const [p, k, v] of rows) process.stdout.write(`${`${p}.${k}`.padEnd(w)}  ${v}\n`);
  process.stdout.write(`${'vms'.padEnd(w)}  ${String((body as { vms?: number }).vms ?? 0)}\n`);
  return 0;
}
