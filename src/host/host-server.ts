/**
 * The tsvm host: the many-VM daemon behind `tsvm host start`. It serves
 * the JSON HTTP API of docs/api.md on a unix socket (mode 0600), runs each
 * VM on its own worker thread (vm-manager.ts) and reports the host's
 * memory (host-memory.ts). Client mistakes get `{error}` with a 4xx
 * status; nothing a client sends ends the host.
 */
import http from 'node:http';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import { parseSize } from '../vmm/qemu-opts.js';
import { HostMemory } from './host-memory.js';
import { HostApiError, VmManager, epochMs } from './vm-manager.js';
import { CONSOLE_PROTOCOL, hostAnswers } from './host-client.js';
import { ensureSocketDir } from './host-paths.js';
import { TEST_FAULT_ENV } from './vm-worker-protocol.js';
import { ContainerEngine } from './containers/engine.js';
import { VmRuntime } from './containers/vm-runtime.js';
import { ContainerError, defaultContainerDir } from './containers/store.js';
import { containerRoute, containerUpgrade, networkRoute } from './containers/routes.js';
import { defaultImageStoreDir } from '../images/oci/layout.js';

/** Largest request body accepted (bytes of JSON). */
const MAX_BODY = 1 << 20;
/** Largest pool: one shared WebAssembly.Memory, at most 4 GiB on Node 20 (WebAssembly JS API, memory32: 65536 pages of 64 KiB). */
export const MAX_POOL = 4 * 1024 ** 3;
/** Smallest pool. */
const MIN_POOL = 16 * 1024 * 1024;
/** The pool when --pool is not given. */
export const DEFAULT_POOL = 2 * 1024 ** 3;

/** How a host is started. */
export interface HostOptions {
  socket: string;
  /** --pool, bytes. */
  poolBytes: number;
  /** --swap FILE, or null. */
  swapPath: string | null;
  /** --idle-tax, a fraction 0..0.99 (default 0.75). */
  idleTax?: number;
  /** --sample-period, ms (default DEFAULT_HOST_ACTIVITY_PERIOD_MS). */
  activityPeriodMs?: number;
  /** The tsvm CLI script the container runtime runs (`tsvm exec`); default: this process's. */
  tsvmScript?: string;
  /** --default-runtime: the containers' runtime when `create` names none (default process). */
  defaultRuntime?: 'process' | 'vm';
  /** --page-sharing: on runs the page-sharing scanner (default off: sharing pages across VMs is opt-in, a side channel between them). */
  pageSharing?: boolean;
}

/** Parses --pool; an error message or the size in bytes. */
export function parsePoolSize(text: string): number | string {
  const n = parseSize(text);
  if (n === null || n < MIN_POOL || n > MAX_POOL) return `--pool ${text}: expected a size from 16M to 4G (one WebAssembly memory)`;
  return n;
}

type Json = Record<string, unknown>;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Reads a JSON object body (an absent body is `{}`); throws 400 for malformed JSON or a non-object. */
async function readBody(req: http.IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_BODY) throw new HostApiError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) { throw new HostApiError(400, `malformed JSON: ${e instanceof Error ? e.message : String(e)}`); }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HostApiError(400, 'the body must be a JSON object');
  return v as Json;
}

/** A running host. */
export class Host {
  /** The host's options. */
  readonly options: HostOptions;
  /** Its memory accounting. */
  readonly memory: HostMemory;
  /** Its VMs. */
  readonly vms: VmManager;
  /** Its containers (set by start()). */
  containers!: ContainerEngine;
  private readonly server: http.Server;
  private stopping: Promise<void> | null = null;
  /** Resolves when the host has stopped (API `host/stop`, a signal, or `stop()`). */
  readonly stopped: Promise<void>;
  private resolveStopped: () => void = () => {};
  private readonly testFaults = process.env[TEST_FAULT_ENV] === '1';

  private constructor(options: HostOptions) {
    this.options = options;
    this.memory = new HostMemory(options.poolBytes, options.swapPath, { idleTax: options.idleTax, activityPeriodMs: options.activityPeriodMs, pageSharing: options.pageSharing });
    this.vms = new VmManager(this.memory);
    this.stopped = new Promise((r) => { this.resolveStopped = r; });
    this.server = http.createServer((req, res) => { void this.handle(req, res); });
    this.server.on('upgrade', (req: http.IncomingMessage, sock: Duplex, head: Buffer) => this.upgrade(req, sock, head));
    this.server.on('clientError', (_e, sock) => { sock.destroy(); });
  }

  /**
   * Starts a host on `options.socket`. Refuses (one-line Error) when another
   * host answers there; removes a stale socket file first.
   */
  static async start(options: HostOptions): Promise<Host> {
    const sock = options.socket;
    ensureSocketDir(sock);
    if (fs.existsSync(sock)) {
      if (await hostAnswers(sock)) throw new Error(`a tsvm host is already running at ${sock}`);
      const st = fs.lstatSync(sock);
      if (!st.isSocket()) throw new Error(`${sock} exists and is not a socket`);
      fs.unlinkSync(sock);
    }
    const host = new Host(options);
    const script = options.tsvmScript ?? process.argv[1]!;
    host.containers = await ContainerEngine.open(defaultContainerDir(process.env), defaultImageStoreDir(process.env),
      { execPath: process.execPath, args: [...process.execArgv, script] }, (line) => { process.stderr.write(`tsvm host: ${line}\n`); },
      new VmRuntime(host.vms, (line) => { process.stderr.write(`tsvm host: ${line}\n`); }), options.defaultRuntime ?? 'process');
    const old = process.umask(0o177); // the socket is created 0600
    try {
      await new Promise<void>((resolve, reject) => {
        host.server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${sock}: ${e.code ?? e.message}`)));
        host.server.listen(sock, resolve);
      });
    } finally {
      process.umask(old);
    }
    fs.chmodSync(sock, 0o600);
    host.vms.prefetchDefaultGuest();
    return host;
  }

  /** Stops every VM, closes the API and removes the socket. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.server.close();
      await this.containers.closeAll();
      await this.vms.closeAll();
      this.memory.close();
      this.server.closeAllConnections();
      try { fs.unlinkSync(this.options.socket); } catch { /* already gone */ }
      this.resolveStopped();
    })();
    return this.stopping;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const at = epochMs();
    try {
      await this.route(req, res, at);
    } catch (e) {
      const status = e instanceof HostApiError || e instanceof ContainerError ? e.status : 500;
      const msg = e instanceof Error ? e.message : String(e);
      if (!res.headersSent) send(res, status, { error: msg });
      else res.destroy();
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, at: number): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://host');
    let parts: string[];
    try { parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent); } catch {
      throw new HostApiError(400, `bad percent-encoding in ${url.pathname}`);
    }
    const method = req.method ?? 'GET';
    const bad = (): never => { throw new HostApiError(404, `no route ${method} ${url.pathname}`); };
    const only = (m: string): void => { if (method !== m) throw new HostApiError(405, `${url.pathname} takes ${m}, not ${method}`); };
    if (parts[0] !== 'v1') bad();
    const vms = this.vms;
    if (parts[1] === 'host' && parts.length === 2) {
      only('GET');
      send(res, 200, { pid: process.pid, socket: this.options.socket, pool_bytes: this.options.poolBytes, swap: this.options.swapPath, vms: vms.list().length, idle_worker: vms.idleState(),
        spare_vm: this.containers?.vm?.spares.state() ?? 'none', spare_vm_starts: this.containers?.vm?.spares.counts ?? { warm: 0, cold: 0 } });
    } else if (parts[1] === 'host' && parts[2] === 'stats' && parts.length === 3) {
      only('GET');
      await vms.refreshMemory();
      send(res, 200, { ...this.memory.stats(), vms: vms.list().length });
    } else if (parts[1] === 'host' && parts[2] === 'stop' && parts.length === 3) {
      only('POST');
      await readBody(req);
      send(res, 202, { stopping: true });
      void this.stop();
    } else if (parts[1] === 'vms' && parts.length === 2) {
      if (method === 'GET') { send(res, 200, vms.list()); return; }
      only('POST');
      const b = await readBody(req);
      if (b['paused'] !== undefined && typeof b['paused'] !== 'boolean') throw new HostApiError(400, "'paused' must be true or false");
      const rv = b['reservation'], sh = b['shares'];
      const reservationBytes = rv === undefined ? undefined : typeof rv === 'number' && Number.isSafeInteger(rv) && rv >= 0 ? rv : typeof rv === 'string' ? parseSize(rv) : null;
      if (reservationBytes === null) throw new HostApiError(400, `bad reservation ${JSON.stringify(rv)} (a size such as 128M, or bytes)`);
      if (sh !== undefined && !(typeof sh === 'number' && Number.isFinite(sh) && sh >= 0)) throw new HostApiError(400, `bad shares ${JSON.stringify(sh)} (a number >= 0)`);
      const net = b['network'];
      if (net !== undefined && (typeof net !== 'string' || net === '')) throw new HostApiError(400, "'network' must be a network's name");
      let args = b['args'] ?? [];
      const networks = this.containers.networks, name = b['name'];
      if (typeof net === 'string') {
        // A NIC on the network's switch (its gateway's DHCP gives the address); the VM leaves the network when it ends.
        if (!Array.isArray(args) || typeof name !== 'string') throw new HostApiError(400, "'name' and 'args' are needed");
        if (vms.list().some((v) => v.name === name)) throw new HostApiError(409, `a VM named ${name} exists`);
        args = [...args, ...await networks.attachVm(net, name)];
      }
      let rec;
      try { rec = await vms.create(name, args, b['cwd'], b['paused'] === true, at, { reservationBytes, shares: sh as number | undefined }); } catch (e) {
        if (typeof net === 'string') networks.leaveVm(name as string);
        throw e;
      }
      if (typeof net === 'string') void rec.gone.then(() => networks.leaveVm(rec.name));
      send(res, 201, await vms.stats(rec.name));
    } else if (parts[1] === 'vms' && parts.length >= 3) {
      const name = parts[2]!;
      const action = parts.length === 4 ? parts[3]! : parts.length === 3 ? '' : bad();
      switch (action) {
        case '':
          if (method === 'DELETE') {
            const force = ['1', 'true'].includes(url.searchParams.get('force') ?? '');
            await vms.remove(name, force);
            send(res, 200, { removed: name });
            return;
          }
          only('GET');
          send(res, 200, vms.summary(vms.get(name)));
          return;
        case 'stats': only('GET'); send(res, 200, await vms.stats(name)); return;
        case 'logs': {
          only('GET');
          const log = Buffer.from(vms.get(name).log.snapshot());
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': log.length });
          res.end(log);
          return;
        }
        case 'stop': case 'kill': case 'pause': case 'resume': {
          only('POST');
          await readBody(req);
          vms.get(name);
          if (action === 'stop') await vms.stop(name);
          else if (action === 'kill') await vms.kill(name);
          else if (action === 'pause') await vms.pause(name);
          else await vms.resume(name);
          send(res, 200, vms.summary(vms.get(name)));
          return;
        }
        case 'balloon': {
          only('POST');
          const b = await readBody(req);
          const v = b['size'];
          if (v === 'auto') { // hand the balloon back to the host's policy
            vms.get(name);
            this.memory.policy.pin(name, false);
            send(res, 200, { name, target_bytes: null, policy: true });
            return;
          }
          const bytes = typeof v === 'number' ? (Number.isSafeInteger(v) && v > 0 ? v : null) : typeof v === 'string' ? parseSize(v) : null;
          const rec = vms.get(name);
          if (bytes === null) throw new HostApiError(400, `bad balloon size ${JSON.stringify(v)} (a size such as 256M, or bytes)`);
          if (bytes > rec.memBytes) throw new HostApiError(400, `balloon size ${bytes} is more than the VM's RAM (${rec.memBytes} bytes)`);
          const r = await vms.request(name, 'qmp', { execute: 'balloon', arguments: { value: bytes } });
          const q = r.result as { error?: { desc: string } };
          if (q.error) throw new HostApiError(409, `balloon: ${q.error.desc}`);
          this.memory.policy.pin(name, true); // a size set by hand stands until `auto`
          send(res, 200, { name, target_bytes: bytes });
          return;
        }
        case 'qmp': {
          only('POST');
          const b = await readBody(req);
          vms.get(name);
          send(res, 200, (await vms.request(name, 'qmp', b)).result);
          return;
        }
        case 'x-fault':
          if (!this.testFaults) bad();
          only('POST');
          await readBody(req);
          await vms.request(name, 'fault');
          send(res, 200, { armed: name });
          return;
        default: bad();
      }
    } else if (parts[1] === 'containers') {
      await containerRoute(this.containers, { readBody, send }, method, parts.slice(2), url, req, res);
    } else if (parts[1] === 'networks') {
      await networkRoute(this.containers, { readBody, send }, method, parts.slice(2), url, req, res);
    } else bad();
  }

  /** The console stream: `GET /v1/vms/NAME/console` with `Upgrade: tsvm-console`. */
  private upgrade(req: http.IncomingMessage, sock: Duplex, head: Buffer): void {
    const reject = (status: number, msg: string): void => {
      const body = JSON.stringify({ error: msg });
      sock.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    };
    if (containerUpgrade(this.containers, req, sock, head)) return;
    const m = /^\/v1\/vms\/([^/?]+)\/console$/.exec(req.url ?? '');
    if (m === null) { reject(404, `no route ${req.method ?? ''} ${req.url ?? ''}`); return; }
    if ((req.headers.upgrade ?? '').toLowerCase() !== CONSOLE_PROTOCOL) { reject(400, `upgrade to ${CONSOLE_PROTOCOL} only`); return; }
    let name: string;
    try { name = decodeURIComponent(m[1]!); } catch { reject(400, `bad percent-encoding in ${req.url ?? ''}`); return; }
    let rec;
    try { rec = this.vms.get(name); } catch (e) { reject(404, (e as Error).message); return; }
    if (rec.worker === null) { reject(409, `VM '${name}' is ${rec.state}`); return; }
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${CONSOLE_PROTOCOL}\r\nconnection: Upgrade\r\n\r\n`);
    const out = (b: Uint8Array): void => { if (b.length === 0) sock.end(); else if (!sock.destroyed) sock.write(b); };
    rec.consoles.add(out);
    const toGuest = (b: Buffer): void => { try { this.vms.input(name, new Uint8Array(b)); } catch { sock.end(); } };
    if (head.length > 0) toGuest(head);
    sock.on('data', toGuest);
    const done = (): void => { rec.consoles.delete(out); };
    sock.on('close', done);
    sock.on('error', () => { done(); sock.destroy(); });
    void rec.gone.then(() => { done(); sock.end(); });
  }
}
