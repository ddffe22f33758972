/**
 * One VM's worker thread: the host (vm-manager.ts) spawns it ahead of
 * time, it loads the VMM and reports `ready`, then builds and runs the VM
 * a StartMessage describes with buildVm and the Node VM services. The
 * console goes to the host as messages (WorkerConsole), lifecycle requests
 * come back over the same port (vm-worker-protocol.ts). A host-side
 * exception inside the run loop ends this worker's VM only: it is reported
 * as `failed` with the reason, and the worker ends.
 */
import { parentPort } from 'node:worker_threads';
import v8 from 'node:v8';
import { buildVm, type BuiltVm } from '../vmm/vm-builder.js';
import { QmpMonitor, type QmpConnection } from '../vmm/qmp.js';
import { VmStateError } from '../vmm/lifecycle.js';
import type { VmConfig } from '../vmm/vm-config.js';
import type { VmConsole, VmServices } from '../vmm/services.js';
import type { Clock } from '../devices/device.js';
import { nodeDeviceServices, readFile } from './node-vm-services.js';
import { QmpServer } from './qmp-server.js';
import { VmPoolMemory } from './pool-vm.js';
import type { VmPoolHandles } from './pool-host.js';
import { ensureDefaultGuest } from '../images/default-guest.js';
import { warmUpInterpreter } from '../machine/warm-up.js';
import { defaultJitConfig } from '../jit/jit-config.js';
import {
  TEST_FAULT_ENV, configKey, type FromWorker, type SharedFile, type HostVmState, type RequestMessage, type StartMessage, type ToWorker, type VmMemoryStats, type VmThreadMemory, type WorkerStats,
} from './vm-worker-protocol.js';

/** Console output buffered before it is sent to the host without waiting for the next wait/yield. */
const OUTPUT_BATCH = 4096;

/** Epoch ms with sub-ms precision, comparable across threads. */
function epochMs(): number { return performance.timeOrigin + performance.now(); }

const port = parentPort;
if (port === null) throw new Error('vm-worker.ts runs as a worker thread');

function post(m: FromWorker, transfer: ArrayBuffer[] = []): void { port!.postMessage(m, transfer); }

/** The guest console of a VM on a worker: output goes to the host in batches, input comes from it. Also the run loop's VmHost. */
class WorkerConsole implements VmConsole {
  onInput: (bytes: Uint8Array) => void = () => {};
  onQuit: () => void = () => {};
  tap: (bytes: Uint8Array) => void = () => {};
  /** Set by the test-only `fault` request: the next wait or yield throws (a host-side exception in the run loop). */
  fault = false;
  private pending: Uint8Array[] = [];
  private bytes = 0;
  private waker: (() => void) | null = null;

  start(): void {}
  stop(): void { this.flush(); }

  write(bytes: Uint8Array): void {
    this.tap(bytes);
    this.pending.push(bytes.slice());
    this.bytes += bytes.length;
    if (this.bytes >= OUTPUT_BATCH) this.flush();
  }

  /** Sends the buffered output to the host. */
  flush(): void {
    if (this.bytes === 0) return;
    const all = new Uint8Array(this.bytes);
    let o = 0;
    for (const p of this.pending) { all.set(p, o); o += p.length; }
    this.pending = []; this.bytes = 0;
    post({ type: 'output', bytes: all }, [all.buffer]);
  }

  /** Input from the host. */
  input(bytes: Uint8Array): void { this.onInput(bytes); this.wake(); }

  private check(): void {
    if (this.fault) { this.fault = false; throw new Error('test fault injected by the host (TSVM_HOST_TEST_FAULTS)'); }
  }

  wake(): void { const w = this.waker; this.waker = null; w?.(); }

  wait(ms: number): Promise<void> {
    this.flush();
    this.check();
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waker = null; resolve(); }, ms);
      this.waker = () => { clearTimeout(t); resolve(); };
    });
  }

  yield(): Promise<void> {
    this.flush();
    this.check();
    return new Promise((resolve) => setImmediate(resolve));
  }

  now(): number { return performance.now(); }
}

/**
 * The devices' clock: it stands still at 0 until the VM starts, so a VM
 * built ahead of time starts at time 0 like one built on demand (the
 * CLINT counts from the clock's value when it was made).
 */
class StartClock implements Clock {
  private t0 = -1;
  /** Starts the clock (once). */
  start(): void { if (this.t0 < 0) this.t0 = performance.now(); }
  monotonicNs(): number { return this.t0 < 0 ? 0 : (performance.now() - this.t0) * 1e6; }
  realtimeNs(): number { return Date.now() * 1e6; }
}

/** A VM's guest memory and its counters. */
export interface VmMemory {
  /** The built VM whose RAM this is. */
  built: BuiltVm;
  /** Its RAM on the host's pool. */
  pool: VmPoolMemory;
  /** The memory fields of `tsvm vm stats --json`. */
  stats(): VmMemoryStats;
}

/**
 * The one place a VM's guest memory is created: its RAM goes on the host's
 * frame pool (pool-vm.ts), with its p2m table, safe-point gate and remap
 * log, which the host attaches to when the VM starts.
 */
export async function createVmMemory(config: VmConfig, services: VmServices, pool: VmPoolHandles, name: string): Promise<VmMemory> {
  const mem = new VmPoolMemory(pool, name, config.sharing ?? true);
  let built: BuiltVm;
  try { built = await buildVm(config, { ...services, guestMemory: mem.guestMemory }); } catch (e) {
    mem.discard(); // the host never sees this VM: its frames would be lost to the pool
    throw e;
  }
  mem.attach(built.vm);
  return {
    built, pool: mem,
    stats: () => mem.ram!.p2m.stats(),
  };
}

/** What this worker thread holds beyond guest RAM: its isolate's heap and the JIT's translated code. */
function threadMemory(built: BuiltVm): VmThreadMemory {
  const h = v8.getHeapStatistics(), board = built.vm.board;
  return {
    heap_used_bytes: h.used_heap_size, heap_total_bytes: h.total_heap_size, external_bytes: h.external_memory,
    jit_live_bytes: board.jit.statsFor(board.ram)?.liveBytes ?? 0, jit_cache_bytes: board.jit.config.cacheBytes,
  };
}

/** Answers QMP commands from the host through the VM's own QMP monitor (one negotiated session). */
class QmpBridge {
  private handler: (line: string) => void = () => {};
  private captured: unknown = null;

  constructor(monitor: QmpMonitor) {
    const conn: QmpConnection = {
      send: (line) => {
        const m = JSON.parse(line) as Record<string, unknown>;
        if (Object.hasOwn(m, 'return') || Object.hasOwn(m, 'error')) this.captured = m;
      },
      onLine: (h) => { this.handler = h; },
      onClose: () => {},
      close: () => {},
    };
    monitor.attach(conn);
    this.execute({ execute: 'qmp_capabilities' });
  }

  /** Runs one QMP command object; returns QMP's reply (`{return}` or `{error}`). The monitor answers synchronously. */
  execute(cmd: unknown): unknown {
    this.captured = null;
    this.handler(JSON.stringify(cmd));
    return this.captured ?? { error: { class: 'GenericError', desc: 'no reply from the QMP monitor' } };
  }
}

let memory: VmMemory | null = null;
let qmp: QmpBridge | null = null;
const workerConsole = new WorkerConsole();
let ended = false;

function stateOf(): HostVmState {
  if (memory === null) return 'starting';
  return memory.built.vm.state;
}

function reply(req: RequestMessage, r: { ok: boolean; error?: string; conflict?: boolean; result?: unknown }): void {
  post({ type: 'reply', id: req.id, state: stateOf(), ...r });
}

function handleRequest(req: RequestMessage): void {
  const m = memory;
  if (m === null || qmp === null) { reply(req, { ok: false, conflict: true, error: 'the VM is still starting' }); return; }
  const vm = m.built.vm;
  try {
    switch (req.op) {
      case 'pause': vm.pause(); break;
      case 'resume': vm.resume(); break;
      case 'stop':
        // Graceful: what QMP system_powerdown does (tsvm's virt board has no guest-visible power button, see VmControl.powerdown).
        if (vm.state === 'shutdown') throw new VmStateError('shutdown', 'shutdown', 'stop');
        vm.powerdown();
        break;
      case 'stats': reply(req, { ok: true, result: { memory: m.stats(), thread: threadMemory(m.built) } satisfies WorkerStats }); return;
      case 'qmp': { const b = qmp; reply(req, { ok: true, result: vm.external(() => b.execute(req.qmp)) }); return; } // a monitor command may read or write guest memory
      case 'fault':
        if (process.env[TEST_FAULT_ENV] !== '1') { reply(req, { ok: false, error: `fault injection is off (set ${TEST_FAULT_ENV}=1 in the host's environment)` }); return; }
        workerConsole.fault = true;
        workerConsole.wake();
        break;
    }
    reply(req, { ok: true });
  } catch (e) {
    reply(req, { ok: false, conflict: e instanceof VmStateError, error: e instanceof Error ? e.message : String(e) });
  }
}

/** The Node VM services of this worker's VM: boot files from the host's shared copies, the console to the host. */
function servicesFor(files: SharedFile[], clock: Clock): VmServices {
  const shared = new Map(files.map((f) => [f.path, new Uint8Array(f.bytes)]));
  return {
    ...nodeDeviceServices,
    console: workerConsole,
    clock,
    readFile: (path) => shared.get(path) ?? readFile(path),
    defaultGuest: async (mirror) => {
      const g = await ensureDefaultGuest({ mirror, progress: false });
      return { kernel: g.kernel, initrd: g.initrd };
    },
    listenQmp: (addr, monitor) => QmpServer.listen(addr, monitor),
  };
}

/** A VM built ahead of time, its configuration's key and its clock. */
interface Prebuilt { key: string; clock: StartClock; memory: Promise<VmMemory | null> }
let prebuilt: Prebuilt | null = null;

/** Builds `config` ahead of time (a failure just means the VM is built on demand). */
function prebuild(config: VmConfig, files: SharedFile[], pool: VmPoolHandles): void {
  const clock = new StartClock();
  prebuilt = { key: configKey(config), clock, memory: createVmMemory(config, servicesFor(files, clock), pool, 'vm').catch(() => null) };
}

/** Builds (or takes the prebuilt) VM and runs it; reports started, then exit or failed. */
async function start(msg: StartMessage): Promise<void> {
  const workerAt = epochMs();
  let mem: VmMemory | null = null, clock = new StartClock();
  const pre = prebuilt;
  prebuilt = null;
  if (pre !== null && pre.key === configKey(msg.config)) {
    mem = await pre.memory;
    clock = pre.clock;
  }
  const wasPrebuilt = mem !== null;
  if (mem === null) {
    // A different VM was built ahead: let it finish, then drop it. It holds no host resources, but its RAM is on the pool.
    if (pre !== null) (await pre.memory)?.pool.discard();
    try {
      mem = await createVmMemory(msg.config, servicesFor(msg.files, clock), msg.pool, msg.name);
    } catch (e) {
      post({ type: 'failed', reason: e instanceof Error ? e.message : String(e), buildError: true });
      finish();
      return;
    }
  }
  memory = mem;
  const built = mem.built;
  qmp = new QmpBridge(new QmpMonitor(built.vm));
  if (msg.paused) built.vm.pause();
  const builtAt = epochMs();
  clock.start();
  post({ type: 'started', state: stateOf(), requestedAt: msg.requestedAt, workerAt, builtAt, firstInsnAt: epochMs(), prebuilt: wasPrebuilt, links: mem.pool.links() });
  try {
    const r = await built.run();
    post({ type: 'exit', status: r.status, reason: r.reason });
  } catch (e) {
    workerConsole.flush();
    post({ type: 'failed', reason: e instanceof Error ? e.message : String(e), buildError: false });
  }
  finish();
}

/** Lets the worker end once its last messages are out. */
function finish(): void {
  ended = true;
  setImmediate(() => port!.close());
}

port.on('message', (m: ToWorker) => {
  if (ended) return;
  if (m.type === 'start') void start(m);
  else if (m.type === 'prebuild') prebuild(m.config, m.files, m.pool);
  else if (m.type === 'input') workerConsole.input(m.bytes);
  else handleRequest(m);
});
// The interpreter's warm-up (machine/warm-up.ts, once per thread) runs while the worker is idle, not on a VM's start path.
warmUpInterpreter(defaultJitConfig());
post({ type: 'ready' });
