/**
 * How many threads V8 may use for background work (TurboFan compiles of
 * JavaScript and WebAssembly, concurrent GC), so that they do not take the
 * vCPU thread's core.
 *
 * A system VM compiles thousands of small wasm modules while it boots, and
 * V8 re-optimizes each hot one with TurboFan on its worker threads. Node
 * starts 4 workers whatever the host has. On a 2-core host, bursts of 2-4
 * busy workers preempt the main thread, which runs the guest: a Debian boot
 * took 8.2 s with 4 workers, 7.6 s with 2 and 7.3 s with 1 (the process VM's
 * workloads, which compile far less, were unchanged).
 *
 * The worker count is fixed when Node starts (`--v8-pool-size`), so `tsvm
 * run` relaunches itself once with the option when the host has fewer than 5
 * cores and the option was not given: the parent waits for the child,
 * forwards termination signals to it and exits with its status.
 *
 * `tsvm exec` does not relaunch: that costs about 60 ms of every run, a
 * quarter of a short program's. It lowers the scheduling priority of Node's
 * other threads instead (Linux, where each thread has its own nice value),
 * so background compiles use idle CPU and yield to the vCPU thread: busybox
 * gzip of 32 MiB, whose 1 MB of generated wasm keeps TurboFan busy, went from
 * 8.7 to 8.2 s on 2 cores, and the other workloads were unchanged. For the
 * Debian boot the relaunch is better (7.9 s, against 8.2 s with lowered
 * priorities and 9.6 s with neither).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/** Set in the relaunched child's environment (and honoured if a user sets it): do not relaunch. */
export const POOL_ENV = 'TSVM_V8_POOL_SIZE';
/** Node's default worker count (node.1: --v8-pool-size, 4). */
const NODE_DEFAULT_POOL = 4;
/** Signals the parent passes on to the child. */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/** The nice value given to Node's other threads (the lowest priority, os.constants.priority.PRIORITY_LOW). */
export const WORKER_NICE = 19;

/**
 * Lowers the scheduling priority of every thread of this process but the
 * main one (V8's worker threads, which exist from start-up) to WORKER_NICE.
 * Linux only (per-thread nice values through /proc/self/task); elsewhere,
 * or if /proc cannot be read, it does nothing. Returns how many threads it
 * changed.
 */
export function lowerWorkerPriority(): number {
  if (process.platform !== 'linux') return 0;
  let tids: string[];
  try { tids = fs.readdirSync('/proc/self/task'); } catch { return 0; }
  let n = 0;
  for (const t of tids) {
    const tid = Number(t);
    if (!Number.isInteger(tid) || tid === process.pid) continue;
    try { os.setPriority(tid, WORKER_NICE); n++; } catch { /* the thread has exited */ }
  }
  return n;
}

/** Background worker threads for a host with `cores` cores: all but one core, at least 1, at most Node's default. */
export function wantedPoolSize(cores: number): number {
  return Math.max(1, Math.min(NODE_DEFAULT_POOL, cores - 1));
}

/** True when `--v8-pool-size` was already chosen for this process (command line or NODE_OPTIONS). */
function poolChosen(execArgv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  return env[POOL_ENV] !== undefined || execArgv.some((a) => a.startsWith('--v8-pool-size')) ||
    (env.NODE_OPTIONS ?? '').includes('--v8-pool-size');
}

/**
 * When this process should run with fewer V8 workers than it has, runs
 * the same command line in a child Node with `--v8-pool-size` and resolves
 * to the exit status to use (the child's, or 128 + signal number); returns
 * null when this process should go on itself.
 */
export function relaunchWithPoolSize(): Promise<number> | null {
  const want = wantedPoolSize(os.availableParallelism());
  if (want >= NODE_DEFAULT_POOL || poolChosen(process.execArgv, process.env)) return null;
  const script = process.argv[1];
  if (script === undefined) return null;
  const child = spawn(process.execPath, [`--v8-pool-size=${want}`, ...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: 'inherit', env: { ...process.env, [POOL_ENV]: String(want) },
  });
  const forward = (sig: NodeJS.Signals): void => { child.kill(sig); };
  for (const sig of FORWARDED) process.on(sig, forward);
  return new Promise((resolve) => {
    const done = (status: number): void => {
      for (const sig of FORWARDED) process.off(sig, forward);
      resolve(status);
    };
    child.on('error', (e) => {
      process.stderr.write(`tsvm: cannot relaunch node with --v8-pool-size: ${e.message}\n`);
      done(125);
    });
    child.on('exit', (code, signal) => done(code ?? 128 + (signal !== null ? os.constants.signals[signal] : 0)));
  });
}
