/**
 * The messages between the host (vm-manager.ts) and one VM's worker thread
 * (vm-worker.ts), over the worker's MessagePort. Everything here is plain
 * data (structured-clone safe): a VmConfig, boot-file bytes in
 * SharedArrayBuffers, console bytes, requests with ids and their replies.
 */
import type { VmConfig } from '../vmm/vm-config.js';
import type { P2mStats } from '../memory/p2m.js';
import type { VmPoolHandles, VmPoolLinks } from './pool-host.js';

/** The states the host reports for a VM: the lifecycle's, plus `starting` (being built) and `failed` (a host error ended it). */
export type HostVmState = 'starting' | 'created' | 'running' | 'paused' | 'shutdown' | 'failed';

/** A boot file the host has already read, shared with the worker instead of read again. */
export interface SharedFile { path: string; bytes: SharedArrayBuffer }

/** Per-VM memory counters (the `tsvm vm stats --json` memory fields; pages are 4 KiB): the VM's p2m counters. */
export type VmMemoryStats = P2mStats;

/** The host memory a VM's worker thread holds beyond guest RAM (`tsvm vm stats --json`, `thread`). */
export interface VmThreadMemory {
  /** Its V8 isolate's heap: in use and reserved (v8.getHeapStatistics in the worker). */
  heap_used_bytes: number;
  heap_total_bytes: number;
  /** Memory outside the heap that its JS objects hold (ArrayBuffers not shared with the pool). */
  external_bytes: number;
  /** WebAssembly bytes of the JIT's live translated units (compiled machine code is a multiple of it). */
  jit_live_bytes: number;
  /** The JIT's cap on them (JitConfig.cacheBytes). */
  jit_cache_bytes: number;
}

/** A worker's reply to `stats`. */
export interface WorkerStats { memory: VmMemoryStats; thread: VmThreadMemory }

/** Host -> worker: build and run this VM. */
export interface StartMessage {
  type: 'start';
  name: string;
  config: VmConfig;
  files: SharedFile[];
  /** Epoch ms (performance.timeOrigin + now) the API request arrived. */
  requestedAt: number;
  /** Start paused (the VM is built, its harts do not run until resumed). */
  paused: boolean;
  /** The host's frame pool (and swap) the VM's RAM goes on. */
  pool: VmPoolHandles;
}

/**
 * Host -> worker: build this VM now, ahead of a StartMessage that may ask
 * for the same configuration (then only its run loop has to start). Only
 * configurations that hold no host resources (no -drive, -netdev, -qmp).
 */
export interface PrebuildMessage { type: 'prebuild'; config: VmConfig; files: SharedFile[]; pool: VmPoolHandles }

/** Host -> worker: console input for the guest. */
export interface InputMessage { type: 'input'; bytes: Uint8Array }

/** The operations a request can ask of the worker. */
export type WorkerOp = 'pause' | 'resume' | 'stop' | 'stats' | 'qmp' | 'fault';

/** Host -> worker: an operation with an id; the worker answers with a ReplyMessage of the same id. */
export interface RequestMessage { type: 'request'; id: number; op: WorkerOp; qmp?: unknown }

/** Host -> worker messages. */
export type ToWorker = StartMessage | PrebuildMessage | InputMessage | RequestMessage;

/** Worker -> host: the worker has loaded its modules and waits for a StartMessage. */
export interface ReadyMessage { type: 'ready' }
/** Worker -> host: the VM was built and its run loop is about to execute its first instruction. */
export interface StartedMessage {
  type: 'started'; state: HostVmState; requestedAt: number; workerAt: number; builtAt: number; firstInsnAt: number;
  /** Whether the VM had been built ahead of time (a PrebuildMessage with the same configuration). */
  prebuilt: boolean;
  /** The VM's p2m table, safe-point gate and remap log on the host's pool. */
  links: VmPoolLinks;
}
/** Worker -> host: guest console output. */
export interface OutputMessage { type: 'output'; bytes: Uint8Array }
/** Worker -> host: the answer to a RequestMessage. */
export interface ReplyMessage { type: 'reply'; id: number; ok: boolean; error?: string; conflict?: boolean; state: HostVmState; result?: unknown }
/** Worker -> host: the VM ended (guest poweroff, panic, stop). */
export interface ExitMessage { type: 'exit'; status: number; reason: string }
/** Worker -> host: the VM could not be built, or a host error ended it. */
export interface FailedMessage { type: 'failed'; reason: string; buildError: boolean }

/** Worker -> host messages. */
export type FromWorker = ReadyMessage | StartedMessage | OutputMessage | ReplyMessage | ExitMessage | FailedMessage;

/** A canonical text of a configuration, to tell whether a prebuilt VM is the one asked for. */
export function configKey(config: VmConfig): string {
  return JSON.stringify(config, (_k, v: unknown) => (v instanceof Map ? [...v.entries()] : v));
}

/** Set in a host's environment to accept the test-only `fault` operation (a worker then throws in its run loop). Never reachable from a guest. */
export const TEST_FAULT_ENV = 'TSVM_HOST_TEST_FAULTS';
