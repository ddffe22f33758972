/**
 * The host's VMs: one worker thread per VM (vm-worker.ts), one idle worker
 * kept ready so that a new VM does not wait for a thread to start and load
 * the VMM, each VM's console log (a bounded ring buffer) and attached
 * console clients, and the lifecycle requests the API makes. Errors for
 * the API are HostApiError with an HTTP status.
 */
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import { parseRunArgs, UsageError } from '../vmm/qemu-config.js';
import { parseQemuOpts } from '../vmm/qemu-opts.js';
import type { VmConfig } from '../vmm/vm-config.js';
import { ensureDefaultGuest } from '../images/default-guest.js';
import type { HostMemory } from './host-memory.js';
import type { VmPoolLinks } from './pool-host.js';
import type {
  FromWorker, HostVmState, RequestMessage, SharedFile, StartMessage, ToWorker, VmMemoryStats, VmThreadMemory, WorkerOp, WorkerStats,
} from './vm-worker-protocol.js';

/** An API error: an HTTP status (4xx for the client's mistakes) and a one-line message. */
export class HostApiError extends Error {
  /** The HTTP status to answer with. */
  readonly status: number;
  constructor(status: number, message: string) { super(message); this.status = status; }
}

/** Bytes of console output the host keeps per VM for `tsvm vm logs`. */
export const LOG_BYTES = 1 << 20;
/** How long `stop` waits for the guest to power off before it ends the VM hard. */
const STOP_GRACE_MS = 10_000;
/** How long a kill waits for the VM to reach a safe point before it ends the thread regardless. */
const KILL_STOP_MS = 2000;
/** VM names: like Docker's container names. */
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/** Epoch ms with sub-ms precision, comparable across threads. */
export function epochMs(): number { return performance.timeOrigin + performance.now(); }

/** A bounded byte log: keeps the last `capacity` bytes written. */
export class LogRing {
  private readonly buf: Uint8Array;
  private start = 0;
  private length = 0;
  constructor(capacity: number) { this.buf = new Uint8Array(capacity); }

  /** Appends bytes, dropping the oldest past the capacity. */
  push(b: Uint8Array): void {
    const cap = this.buf.length;
    if (b.length >= cap) { this.buf.set(b.subarray(b.length - cap)); this.start = 0; this.length = cap; return; }
    let end = (this.start + this.length) % cap;
    for (let o = 0; o < b.length;) {
      const n = Math.min(b.length - o, cap - end);
      this.buf.set(b.subarray(o, o + n), end);
      o += n; end = (end + n) % cap;
    }
    const over = this.length + b.length - cap;
    if (over > 0) { this.start = (this.start + over) % cap; this.length = cap; } else this.length += b.length;
  }

  /** The bytes kept, oldest first. */
  snapshot(): Uint8Array {
    const out = new Uint8Array(this.length), cap = this.buf.length;
    const first = Math.min(this.length, cap - this.start);
    out.set(this.buf.subarray(this.start, this.start + first));
    out.set(this.buf.subarray(0, this.length - first), first);
    return out;
  }
}

/** Start-up timestamps (epoch ms). */
export interface StartTimes { requestedAt: number; workerAt: number; builtAt: number; firstInsnAt: number; prebuilt: boolean }

/** One VM as the host knows it. */
export interface VmRecord {
  /** Its name (a spare container VM is renamed when taken: VmManager.rename). */
  name: string;
  /** Left out of list() (an idle spare container VM). */
  hidden?: boolean;
  state: HostVmState;
  /** Why it failed or ended (failed: the host error; shutdown: poweroff, panic, stopped, killed). */
  reason: string | null;
  /** The guest's exit status once it ended, or null. */
  exitStatus: number | null;
  readonly memBytes: number;
  readonly smp: number;
  /** Epoch ms the VM was created. */
  readonly createdAt: number;
  times: StartTimes | null;
  worker: Worker | null;
  readonly log: LogRing;
  readonly consoles: Set<(b: Uint8Array) => void>;
  readonly pending: Map<number, (r: Extract<FromWorker, { type: 'reply' }>) => void>;
  /** Resolves when the worker has gone. */
  gone: Promise<void>;
  /** Memory counters last reported by the worker. */
  memory: VmMemoryStats;
  /** Its worker thread's own memory, as of the last stats (null before). */
  thread: VmThreadMemory | null;
  /** What its worker put on the pool (set when it started), or null: identifies this VM's entry, not a namesake's. */
  links?: VmPoolLinks | null;
}

/** A VM's share of the host's memory (issue 14 point 6): its reservation (bytes) and shares. */
export interface VmLimits { reservationBytes?: number; shares?: number }

/** One line of `vm ls --json`. */
export interface VmSummary {
  name: string; state: HostVmState; ram_bytes: number; smp: number; uptime_s: number; reason: string | null; exit_status: number | null;
}

/** A pre-spawned worker, the promise of its `ready`, and whether it was given a VM to build ahead of time. */
interface IdleWorker { worker: Worker; ready: Promise<void>; isReady: boolean; offered: boolean }

/** The VMs of one host. */
export class VmManager {
  private readonly vms = new Map<string, VmRecord>();
  private readonly memory: HostMemory;
  private idle: IdleWorker | null = null;
  private nextId = 1;
  private closing = false;
  private defaultGuest: Promise<{ kernel: string; initrd: string }> | null = null;
  private readonly files = new Map<string, { mtimeMs: number; size: number; bytes: SharedArrayBuffer }>();
  /** The configuration idle workers build ahead of time, or null. */
  private template: VmConfig | null = null;

  constructor(memory: HostMemory) {
    this.memory = memory;
    memory.policy.setBalloon = async (name, bytes) => {
      const r = await this.request(name, 'qmp', { execute: 'balloon', arguments: { value: bytes } });
      const q = r.result as { error?: { desc: string } };
      if (q.error) throw new Error(q.error.desc);
    };
    memory.policy.setBlocked = async (name, blocked) => {
      const rec = this.vms.get(name);
      if (rec === undefined || rec.state !== (blocked ? 'running' : 'paused')) return false; // ended, or paused by the user
      await this.request(name, blocked ? 'pause' : 'resume');
      return true;
    };
    this.prespawn();
  }

  /**
   * Resolves the default guest and reads its files ahead of the first
   * `vm run` (off the start path). A failure is reported when a VM needs
   * the default guest.
   */
  prefetchDefaultGuest(): void {
    void this.configFor([], process.cwd()).then((c) => {
      this.template ??= c;
      this.offerPrebuild();
    }, () => {});
  }

  /** The default guest's files (built on first use; the result is kept for the host's life). */
  private async resolveDefaultGuest(mirror: string | undefined): Promise<{ kernel: string; initrd: string }> {
    this.defaultGuest ??= ensureDefaultGuest({ mirror, progress: false }).then((g) => ({ kernel: g.kernel, initrd: g.initrd }));
    try { return await this.defaultGuest; } catch (e) {
      this.defaultGuest = null;
      throw e;
    }
  }

  /** Starts the idle worker the next VM will use. */
  private prespawn(): void {
    if (this.closing || this.idle !== null) return;
    const worker = new Worker(new URL('./vm-worker.js', import.meta.url));
    const ready = new Promise<void>((resolve, reject) => {
      worker.once('message', (m: FromWorker) => { if (m.type === 'ready') resolve(); });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`VM worker exited before it was ready (code ${code})`)));
    });
    const idle: IdleWorker = { worker, ready, isReady: false, offered: false };
    ready.then(() => { idle.isReady = true; this.offerPrebuild(); }, () => { if (this.idle === idle) this.idle = null; });
    worker.unref();
    this.idle = idle;
  }

  /**
   * Gives the ready idle worker the VM to build ahead of time: the last
   * configuration started that holds no host resources (at first, the
   * default `vm run`). A VM asked for with the same configuration then
   * only has to start its run loop.
   */
  private offerPrebuild(): void {
    const idle = this.idle, config = this.template;
    if (idle === null || !idle.isReady || idle.offered || config === null || this.closing) return;
    idle.offered = true;
    idle.worker.postMessage({ type: 'prebuild', config, files: this.filesFor(config), pool: this.memory.handles() } satisfies ToWorker);
  }

  /** The idle worker: none, starting (loading the VMM), ready, or prebuilt (building or holding the next VM). */
  idleState(): 'none' | 'starting' | 'ready' | 'prebuilt' {
    const idle = this.idle;
    return idle === null ? 'none' : idle.offered ? 'prebuilt' : idle.isReady ? 'ready' : 'starting';
  }

  /** The boot files the host shares with a worker for `config`. */
  private filesFor(config: VmConfig): SharedFile[] {
    const files: SharedFile[] = [];
    if (config.machine === 'virt') {
      for (const p of [config.kernel, config.initrd]) { const f = p !== undefined ? this.sharedFile(p) : null; if (f) files.push(f); }
    }
    return files;
  }

  /** The record for `name`; throws 404. */
  get(name: string): VmRecord {
    const r = this.vms.get(name);
    if (!r) throw new HostApiError(404, `no VM named '${name}'`);
    return r;
  }

  /** Every VM, in creation order. */
  list(): VmSummary[] { return [...this.vms.values()].filter((r) => r.hidden !== true).map((r) => this.summary(r)); }

  /**
   * Gives VM `from` the name `to`, which must be free (409): a spare
   * container VM becomes its container's. Its memory policy and pool
   * entries follow it; requests already sent are answered as before.
   */
  rename(from: string, to: string): void {
    if (!NAME_RE.test(to)) throw new HostApiError(400, `bad VM name ${JSON.stringify(to)} (letters, digits, '_', '.', '-'; at most 64)`);
    const rec = this.get(from);
    if (from === to) return;
    if (this.vms.has(to)) throw new HostApiError(409, `a VM named '${to}' already exists`);
    this.vms.delete(from);
    rec.name = to;
    this.vms.set(to, rec);
    this.memory.renameVm(from, to);
  }

  /** The ls line of one VM. */
  summary(r: VmRecord): VmSummary {
    const live = r.state === 'running' || r.state === 'paused' || r.state === 'created' || r.state === 'starting';
    return {
      name: r.name, state: r.state, ram_bytes: r.memBytes, smp: r.smp,
      uptime_s: live ? Math.round((Date.now() - r.createdAt) / 100) / 10 : 0, reason: r.reason, exit_status: r.exitStatus,
    };
  }

  /** Reads a boot file once per change and shares its bytes with the workers. */
  private sharedFile(p: string): SharedFile | null {
    let st: fs.Stats;
    try { st = fs.statSync(p); } catch { return null; } // the worker reports the missing file
    if (!st.isFile()) return null;
    let e = this.files.get(p);
    if (!e || e.mtimeMs !== st.mtimeMs || e.size !== st.size) {
      const data = fs.readFileSync(p);
      const bytes = new SharedArrayBuffer(data.length);
      new Uint8Array(bytes).set(data);
      e = { mtimeMs: st.mtimeMs, size: st.size, bytes };
      this.files.set(p, e);
    }
    return { path: p, bytes: e.bytes };
  }

  /** Parses `tsvm run`'s options into the config a worker gets: paths made absolute, the default guest resolved, a balloon added. */
  private async configFor(args: string[], cwd: string): Promise<VmConfig> {
    let config: VmConfig;
    try { config = parseRunArgs(args); } catch (e) {
      if (e instanceof UsageError) throw new HostApiError(400, e.message);
      throw e;
    }
    const abs = (p: string): string => path.resolve(cwd, p);
    if (config.kernel !== undefined) config.kernel = abs(config.kernel);
    if (config.initrd !== undefined) config.initrd = abs(config.initrd);
    if (config.bios !== 'default' && config.bios !== 'none') config.bios = abs(config.bios);
    for (const d of config.dev.drives) { const f = d.props.get('file'); if (f !== undefined) d.props.set('file', abs(f)); }
    if (config.qmp) config.qmp = config.qmp.kind === 'unix' ? { ...config.qmp, path: abs(config.qmp.path), wait: false } : { ...config.qmp, wait: false };
    if (config.kernel === undefined) {
      let g: { kernel: string; initrd: string };
      try { g = await this.resolveDefaultGuest(config.mirror); } catch (e) {
        throw new HostApiError(500, `default guest: ${e instanceof Error ? e.message : String(e)}`);
      }
      config.kernel = g.kernel;
      config.initrd ??= g.initrd;
    }
    // The host sets each VM's balloon target (issue 14 point 4): every virt VM gets a balloon unless it has one,
    // one the guest may deflate rather than kill a process when the policy has asked for too much.
    if (config.machine === 'virt' && !config.dev.devices.some((d) => d.type.startsWith('virtio-balloon'))) {
      config.dev.devices.push(parseQemuOpts('virtio-balloon-device,deflate-on-oom=on'));
    }
    return config;
  }

  /**
   * Creates and starts a VM from `tsvm run`'s options; resolves once its
   * run loop starts (or rejects: 400 bad options or files, 409 name taken).
   * `hidden`: left out of list() (a spare container VM, until renamed).
   */
  async create(name: unknown, args: unknown, cwd: unknown, paused: boolean, requestedAt: number, limits: VmLimits = {}, hidden = false): Promise<VmRecord> {
    if (typeof name !== 'string' || !NAME_RE.test(name)) throw new HostApiError(400, `bad VM name ${JSON.stringify(name)} (letters, digits, '_', '.', '-'; at most 64)`);
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new HostApiError(400, "'args' must be an array of strings");
    if (cwd !== undefined && (typeof cwd !== 'string' || !path.isAbsolute(cwd))) throw new HostApiError(400, "'cwd' must be an absolute path");
    if (this.closing) throw new HostApiError(503, 'the host is stopping');
    if (this.vms.has(name)) throw new HostApiError(409, `a VM named '${name}' already exists`);
    const rec: VmRecord = {
      name, state: 'starting', reason: null, exitStatus: null, memBytes: 0, smp: 1, createdAt: Date.now(), times: null, worker: null,
      log: new LogRing(LOG_BYTES), consoles: new Set(), pending: new Map(), gone: Promise.resolve(),
      memory: { ram_pages: 0, pages_private: 0, pages_shared: 0, pages_zero: 0, pages_ballooned: 0, pages_swapped: 0 }, thread: null,
    };
    if (hidden) rec.hidden = true;
    this.vms.set(name, rec); // reserves the name while the config is resolved
    let config: VmConfig;
    try { config = await this.configFor(args as string[], (cwd as string | undefined) ?? process.cwd()); } catch (e) {
      this.vms.delete(name);
      throw e;
    }
    Object.assign(rec, { memBytes: config.memBytes, smp: config.smp });
    const reservation = limits.reservationBytes ?? 0;
    if (reservation > config.memBytes) {
      this.vms.delete(name);
      throw new HostApiError(400, `reservation ${reservation} bytes is more than the VM's RAM (${config.memBytes} bytes)`);
    }
    const refused = this.memory.admit(name, config.memBytes, reservation, limits.shares);
    if (refused !== null) {
      this.vms.delete(name);
      throw new HostApiError(409, `admission: ${refused}`);
    }
    const files = this.filesFor(config);
    if (config.machine === 'virt' && config.dev.drives.length === 0 && config.dev.netdevs.length === 0 && !config.dev.chardevs?.length && (config.dev.fsdevs ?? []).length === 0 && config.qmp === undefined) {
      this.template = config;
    }
    let idle = this.idle;
    if (idle === null) { this.prespawn(); idle = this.idle!; }
    this.idle = null;
    try { await idle.ready; } catch (e) {
      this.vms.delete(name);
      this.prespawn();
      throw new HostApiError(500, e instanceof Error ? e.message : String(e));
    }
    const worker = idle.worker;
    rec.worker = worker;
    worker.ref();
    this.memory.addVm(name, config.memBytes, reservation, limits.shares);
    const started = new Promise<void>((resolve, reject) => {
      rec.gone = new Promise<void>((gone) => {
        worker.on('message', (m: FromWorker) => this.onMessage(rec, m, resolve, reject));
        worker.on('error', (e) => this.fail(rec, `host error in the VM's worker: ${e.message}`));
        worker.on('exit', (code) => {
          if (rec.state !== 'shutdown' && rec.state !== 'failed') this.fail(rec, `the VM's worker exited unexpectedly (code ${code})`);
          reject(new HostApiError(500, rec.reason ?? 'the VM ended while starting'));
          rec.worker = null;
          this.memory.removeVm(rec.name);
          for (const [, p] of rec.pending) p({ type: 'reply', id: 0, ok: false, error: `VM '${rec.name}' is ${rec.state}`, conflict: true, state: rec.state });
          rec.pending.clear();
          gone();
        });
      });
    });
    const msg: StartMessage = { type: 'start', name, config, files, requestedAt, paused, pool: this.memory.handles() };
    worker.postMessage(msg);
    try { await started; } catch (e) {
      if (e instanceof HostApiError && e.status === 400) this.vms.delete(name); // the build failed: nothing to keep
      throw e;
    } finally {
      setImmediate(() => this.prespawn());
    }
    return rec;
  }

  private onMessage(rec: VmRecord, m: FromWorker, started: () => void, startFailed: (e: Error) => void): void {
    switch (m.type) {
      case 'started':
        rec.state = m.state === 'created' ? 'running' : m.state;
        rec.times = { requestedAt: m.requestedAt, workerAt: m.workerAt, builtAt: m.builtAt, firstInsnAt: m.firstInsnAt, prebuilt: m.prebuilt };
        rec.links = m.links;
        this.memory.attachVm(rec.name, m.links);
        started();
        break;
      case 'output':
        rec.log.push(m.bytes);
        for (const c of rec.consoles) c(m.bytes);
        break;
      case 'reply': {
        if (m.state !== 'starting') rec.state = m.state === 'created' ? 'running' : m.state;
        const p = rec.pending.get(m.id);
        rec.pending.delete(m.id);
        p?.(m);
        break;
      }
      case 'exit':
        rec.state = 'shutdown';
        rec.reason ??= m.reason;
        rec.exitStatus = m.status;
        break;
      case 'failed':
        this.fail(rec, m.reason);
        if (m.buildError) startFailed(new HostApiError(400, m.reason));
        break;
      case 'ready': break;
    }
  }

  /** Marks the VM failed with `reason` (the first reason wins) and ends its worker. */
  private fail(rec: VmRecord, reason: string): void {
    if (rec.state === 'failed' || rec.state === 'shutdown') return;
    rec.state = 'failed';
    rec.reason = reason;
    const w = rec.worker;
    if (w) setTimeout(() => { void this.endWorker(rec, w); }, 2000).unref();
  }

  /**
   * Ends a VM's worker: first the host holds the VM stopped at a safe point
   * (PoolHost.haltVm), so the thread is never ended inside the pool's lock,
   * then it terminates the thread. A VM that does not reach a safe point in
   * time is ended anyway, and the host says so.
   */
  private async endWorker(rec: VmRecord, w: Worker): Promise<void> {
    const name = rec.name, links = rec.links ?? null;
    // Only this VM's own entry: a VM whose build failed shares its name with the next one created under it.
    if (links !== null && !await this.memory.host.haltVm(name, links, KILL_STOP_MS) && this.memory.host.has(name)) {
      process.stderr.write(`tsvm host: VM '${name}' did not reach a safe point within ${KILL_STOP_MS} ms; ending its thread anyway\n`);
    }
    await w.terminate();
  }

  /** Sends an operation to the VM's worker and waits for its reply; 409 when the VM has no running worker. */
  async request(name: string, op: WorkerOp, qmp?: unknown): Promise<Extract<FromWorker, { type: 'reply' }>> {
    const rec = this.get(name);
    const w = rec.worker;
    if (w === null || rec.state === 'shutdown' || rec.state === 'failed') throw new HostApiError(409, `VM '${name}' is ${rec.state}`);
    const id = this.nextId++;
    const reply = new Promise<Extract<FromWorker, { type: 'reply' }>>((resolve) => rec.pending.set(id, resolve));
    const msg: RequestMessage = { type: 'request', id, op, ...(qmp !== undefined ? { qmp } : {}) };
    w.postMessage(msg satisfies ToWorker);
    const r = await reply;
    if (!r.ok) throw new HostApiError(r.conflict ? 409 : 400, r.error ?? `${op} failed`);
    return r;
  }

  /** Pauses a running VM (409 otherwise). */
  async pause(name: string): Promise<void> {
    const rec = this.get(name);
    if (rec.state !== 'running') throw new HostApiError(409, `cannot pause VM '${name}': it is ${rec.state}`);
    await this.request(name, 'pause');
  }

  /** Resumes a paused VM (409 otherwise). */
  async resume(name: string): Promise<void> {
    const rec = this.get(name);
    if (rec.state !== 'paused') throw new HostApiError(409, `cannot resume VM '${name}': it is ${rec.state}`);
    await this.request(name, 'resume');
  }

  /** Stops a VM gracefully (the guest powers off; after STOP_GRACE_MS it is ended hard); resolves when it has ended. */
  async stop(name: string): Promise<void> {
    const rec = this.get(name);
    if (rec.worker === null || rec.state === 'shutdown' || rec.state === 'failed') throw new HostApiError(409, `VM '${name}' is ${rec.state}`);
    await this.request(name, 'stop');
    const t = setTimeout(() => { this.kill(name, 'stopped (hard, after the grace period)').catch(() => { /* it ended meanwhile */ }); }, STOP_GRACE_MS);
    await rec.gone;
    clearTimeout(t);
  }

  /** Ends a VM at once (its worker is terminated). */
  async kill(name: string, reason = 'killed'): Promise<void> {
    const rec = this.get(name);
    const w = rec.worker;
    if (w === null) throw new HostApiError(409, `VM '${name}' is ${rec.state}`);
    if (rec.state !== 'failed') { rec.state = 'shutdown'; rec.reason = reason; }
    await this.endWorker(rec, w);
    await rec.gone;
  }

  /** Removes a VM that has ended (409 if it still runs, unless `force`, which kills it first). */
  async remove(name: string, force: boolean): Promise<void> {
    const rec = this.get(name);
    if (rec.worker !== null) {
      if (!force) throw new HostApiError(409, `VM '${name}' is ${rec.state}: stop it first, or remove it with force`);
      await this.kill(name);
    }
    for (const c of rec.consoles) c(new Uint8Array(0));
    this.vms.delete(name);
  }

  /** A VM's stats: state, memory counters (fresh from its worker when it runs) and start-up times. */
  async stats(name: string): Promise<Record<string, unknown>> {
    const rec = this.get(name);
    if (rec.worker !== null && rec.state !== 'starting' && rec.state !== 'failed' && rec.state !== 'shutdown') {
      try {
        const r = (await this.request(name, 'stats')).result as WorkerStats;
        rec.memory = r.memory;
        rec.thread = r.thread;
        this.memory.update(name, rec.memory);
      } catch { /* it ended meanwhile: the last counters stand */ }
    }
    const t = rec.times;
    return {
      name: rec.name, state: rec.state, reason: rec.reason, exit_status: rec.exitStatus,
      ram_bytes: rec.memBytes, smp: rec.smp, uptime_s: this.summary(rec).uptime_s,
      ...(this.memory.vmStats(name) ?? rec.memory), // HostMemory's view while the VM holds memory; its last counters after
      policy: this.memory.vmPolicy(name),
      thread: rec.thread,
      start_ms: t ? round(t.firstInsnAt - t.requestedAt) : null,
      start: t ? {
        request_to_worker_ms: round(t.workerAt - t.requestedAt), worker_to_built_ms: round(t.builtAt - t.workerAt),
        built_to_first_insn_ms: round(t.firstInsnAt - t.builtAt), prebuilt: t.prebuilt,
      } : null,
    };
  }

  /** Refreshes every running VM's memory counters (for the host stats). */
  async refreshMemory(): Promise<void> {
    await Promise.all([...this.vms.values()].filter((r) => r.state === 'running' || r.state === 'paused').map((r) => this.stats(r.name).catch(() => null)));
  }

  /** Sends console input to the VM. */
  input(name: string, bytes: Uint8Array): void {
    const rec = this.get(name);
    rec.worker?.postMessage({ type: 'input', bytes } satisfies ToWorker);
  }

  /** Stops every VM (gracefully, then hard) and the idle worker. */
  async closeAll(): Promise<void> {
    this.closing = true;
    const idle = this.idle;
    this.idle = null;
    if (idle) await idle.worker.terminate();
    await Promise.all([...this.vms.values()].filter((r) => r.worker !== null).map(async (r) => {
      try { await this.stop(r.name); } catch { if (r.worker) await this.kill(r.name).catch(() => {}); }
    }));
  }
}

function round(ms: number): number { return Math.round(ms * 100) / 100; }
