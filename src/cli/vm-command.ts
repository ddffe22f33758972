/**
 * `tsvm vm ...`: the VMs of a running host (docs/api.md), like Docker's
 * container commands: run, ls, stop, kill, pause, resume, rm, console,
 * logs, stats, balloon and qmp.
 */
import type { Duplex } from 'node:stream';
import { parseRunArgs, UsageError } from '../vmm/qemu-config.js';
import { parseSize } from '../vmm/qemu-opts.js';
import { hostRequest, openConsole, type HostReply } from '../host/host-client.js';
import { hostSocketPath } from '../host/host-paths.js';
import { clientFailure, errorOf } from './host-command.js';

/** Exit status for usage errors (as `tsvm run`). */
const EXIT_USAGE = 125;
/** Docker's default detach keys: Ctrl-P then Ctrl-Q. */
const DETACH_1 = 0x10, DETACH_2 = 0x11;

function usage(msg: string): number { process.stderr.write(`tsvm vm: ${msg}\n`); return EXIT_USAGE; }

/** A request whose 4xx/5xx becomes an Error with the host's message. */
async function call(method: string, path: string, body?: unknown): Promise<HostReply> {
  const r = await hostRequest(hostSocketPath(), method, path, body);
  if (r.status >= 400) throw new Error(errorOf(r.body));
  return r;
}

const vmPath = (name: string, rest = ''): string => `/v1/vms/${encodeURIComponent(name)}${rest}`;

/** Runs `f`, turning client failures into messages; returns the exit status. */
async function guarded(f: () => Promise<number>): Promise<number> {
  try { return await f(); } catch (e) { return clientFailure(e); }
}

/** `tsvm vm run --name N [-d] [--network NET] [tsvm run's options...]`. */
export async function vmRun(argv: string[]): Promise<number> {
  let name: string | undefined, detach = false, reservation: string | undefined, shares: number | undefined, network: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--name' || a === '-name') { name = argv[++i]; if (name === undefined) return usage('--name needs a value'); }
    else if (a.startsWith('--name=')) name = a.slice(7);
    else if (a === '-d' || a === '--detach') detach = true;
    else if (a === '--network') { network = argv[++i]; if (network === undefined || network === '') return usage('--network needs a network\'s name (tsvm network create)'); }
    else if (a === '--reservation') { reservation = argv[++i]; if (reservation === undefined || parseSize(reservation) === null) return usage(`--reservation needs a size (e.g. 128M)`); }
    else if (a === '--shares') {
      const v = argv[++i];
      shares = Number(v);
      if (v === undefined || !/^\d+(\.\d+)?$/.test(v)) return usage('--shares needs a number >= 0');
    }
    else rest.push(a);
  }
  if (name === undefined) return usage('vm run needs --name NAME');
  try { parseRunArgs(rest); } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    throw e;
  }
  return guarded(async () => {
    const r = await call('POST', '/v1/vms', { name, args: rest, cwd: process.cwd(), paused: !detach, ...(reservation !== undefined ? { reservation } : {}), ...(shares !== undefined ? { shares } : {}), ...(network !== undefined ? { network } : {}) });
    if (detach) { process.stdout.write(`${name}\n`); return 0; }
    // Attached, like `docker run -it`: the VM was created paused, so no output is missed.
    const stream = await openConsole(hostSocketPath(), name);
    await call('POST', vmPath(name, '/resume'));
    void r;
    return attach(name, stream);
  });
}

/** `tsvm vm console N`. */
export async function vmConsole(name: string): Promise<number> {
  return guarded(async () => attach(name, await openConsole(hostSocketPath(), name)));
}

/**
 * Connects stdin/stdout to a console stream until Ctrl-P Ctrl-Q (detach,
 * status 0), the end of stdin (detach) or the VM's end (its exit status).
 */
function attach(name: string, stream: Duplex): Promise<number> {
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  return new Promise((resolve) => {
    let held = false, done = false;
    const finish = async (detached: boolean): Promise<void> => {
      if (done) return;
      done = true;
      stdin.off('data', onData);
      stdin.pause();
      stdin.unref?.();
      if (raw) { try { stdin.setRawMode(false); } catch { /* not a TTY anymore */ } }
      if (detached) {
        stream.destroy();
        process.stderr.write(`\r\ntsvm: detached from ${name}\r\n`);
        resolve(0);
        return;
      }
      try {
        const s = (await call('GET', vmPath(name, '/stats'))).body as { exit_status: number | null; state: string; reason: string | null };
        if (s.state === 'failed') process.stderr.write(`\r\ntsvm: VM ${name} failed: ${s.reason ?? ''}\r\n`);
        resolve(s.exit_status ?? (s.state === 'failed' ? 1 : 0));
      } catch { resolve(0); }
    };
    const onData = (chunk: Buffer): void => {
      const out: number[] = [];
      for (const c of chunk) {
        if (held) {
          held = false;
          if (c === DETACH_2) { if (out.length) stream.write(Uint8Array.from(out)); void finish(true); return; }
          out.push(DETACH_1);
        }
        if (c === DETACH_1) { held = true; continue; }
        out.push(c);
      }
      if (out.length) stream.write(Uint8Array.from(out));
    };
    stdin.on('data', onData);
    stdin.on('end', () => { void finish(true); });
    stdin.resume();
    stream.on('data', (b: Buffer) => { process.stdout.write(b); });
    stream.on('end', () => { void finish(false); });
    stream.on('error', () => { void finish(false); });
  });
}

/** One row of `vm ls`. */
interface LsRow { name: string; state: string; ram_bytes: number; uptime_s: number; reason: string | null }

function fmtBytes(n: number): string {
  return n % 1024 ** 3 === 0 ? `${n / 1024 ** 3}G` : n % 1024 ** 2 === 0 ? `${n / 1024 ** 2}M` : `${n}B`;
}

function fmtUptime(s: number): string {
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.floor(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

/** `tsvm vm ls [--json]`. */
export function vmLs(o: { json?: boolean }): Promise<number> {
  return guarded(async () => {
    const rows = (await call('GET', '/v1/vms')).body as LsRow[];
    if (o.json) { process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`); return 0; }
    const table = [['NAME', 'STATE', 'RAM', 'UPTIME', 'REASON'],
      ...rows.map((r) => [r.name, r.state, fmtBytes(r.ram_bytes), r.state === 'running' || r.state === 'paused' ? fmtUptime(r.uptime_s) : '-', r.reason ?? ''])];
    const w = [0, 1, 2, 3].map((i) => Math.max(...table.map((t) => t[i]!.length)));
    for (const t of table) process.stdout.write(`${t.map((c, i) => (i < 4 ? c.padEnd(w[i]!) : c)).join('  ').trimEnd()}\n`);
    return 0;
  });
}

/** `tsvm vm stop|kill|pause|resume N`. */
export function vmAction(action: 'stop' | 'kill' | 'pause' | 'resume', name: string): Promise<number> {
  return guarded(async () => { await call('POST', vmPath(name, `/${action}`)); process.stdout.write(`${name}\n`); return 0; });
}

/** `tsvm vm rm [-f] N`. */
export function vmRm(name: string, force: boolean): Promise<number> {
  return guarded(async () => { await call('DELETE', vmPath(name, force ? '?force=1' : '')); process.stdout.write(`${name}\n`); return 0; });
}

/** `tsvm vm logs N`: the console output the host kept. */
export function vmLogs(name: string): Promise<number> {
  return guarded(async () => { process.stdout.write((await call('GET', vmPath(name, '/logs'))).raw); return 0; });
}

/** `tsvm vm stats N [--json]`. */
export function vmStats(name: string, o: { json?: boolean }): Promise<number> {
  return guarded(async () => {
    const s = (await call('GET', vmPath(name, '/stats'))).body as Record<string, unknown>;
    if (o.json) { process.stdout.write(`${JSON.stringify(s, null, 2)}\n`); return 0; }
    for (const [k, v] of Object.entries(s)) {
      if (v !== null && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) process.stdout.write(`${`${k}.${k2}`.padEnd(32)}${String(v2)}\n`);
      else process.stdout.write(`${k.padEnd(32)}${String(v)}\n`);
    }
    return 0;
  });
}

/** `tsvm vm balloon N SIZE|auto` (auto: the host's policy sets it again). */
export function vmBalloon(name: string, size: string): Promise<number> {
  if (size === 'auto') return guarded(async () => { await call('POST', vmPath(name, '/balloon'), { size: 'auto' }); process.stdout.write(`${name}\n`); return 0; });
  const bytes = parseSize(size);
  if (bytes === null) return Promise.resolve(usage(`balloon: bad size '${size}' (e.g. 256M)`));
  return guarded(async () => { await call('POST', vmPath(name, '/balloon'), { size: bytes }); process.stdout.write(`${name}\n`); return 0; });
}

/** `tsvm vm qmp N JSON`: one QMP command through the host; prints QMP's reply. */
export function vmQmp(name: string, json: string): Promise<number> {
  let cmd: unknown;
  try { cmd = JSON.parse(json); } catch { return Promise.resolve(usage(`qmp: not JSON: ${json}`)); }
  return guarded(async () => {
    const r = (await call('POST', vmPath(name, '/qmp'), cmd)).body;
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return typeof r === 'object' && r !== null && 'error' in r ? 1 : 0;
  });
}
