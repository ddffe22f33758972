/**
 * The JIT's command-line flags (`--jit=on|off`, `--jit-threshold=N`) and
 * the TSVM_JIT environment variable (`off`, `on`, or a threshold such as
 * `0`), which sets the default for every tsvm process, including the ones
 * the test suite starts.
 */
import { jitConfig, jitTotals } from '../jit/engine.js';

/** Largest threshold accepted (a block would need this many runs to be translated). */
const MAX_THRESHOLD = 1_000_000_000;

/** Applies `--jit=VALUE`; returns an error message or null. */
export function setJitMode(v: string): string | null {
  if (v === 'on') jitConfig.enabled = true;
  else if (v === 'off') jitConfig.enabled = false;
  else return `--jit ${v}: expected on or off`;
  return null;
}

/** Applies `--jit-threshold=N`; returns an error message or null. */
export function setJitThreshold(v: string): string | null {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_THRESHOLD) return `--jit-threshold ${v}: expected a whole number from 0 to ${MAX_THRESHOLD}`;
  jitConfig.threshold = n;
  return null;
}

/** Applies TSVM_JIT from the environment; returns an error message or null. */
export function applyJitEnv(env: NodeJS.ProcessEnv): string | null {
  const v = env['TSVM_JIT'];
  if (v === undefined || v === '') return null;
  if (v === 'on' || v === 'off') return setJitMode(v);
  const e = setJitThreshold(v);
  if (e !== null) return `TSVM_JIT=${v}: expected on, off or a threshold`;
  jitConfig.enabled = true;
  return null;
}

/** One line of JIT counters for --stats: units, blocks, wasm bytes, compile time, invalidations, evictions, dispatcher counts, rebuilds. */
export function jitStatsLine(): string {
  const t = jitTotals;
  if (!jitConfig.enabled) return 'tsvm: jit: off';
  return `tsvm: jit: units=${t.unitsCompiled} blocks=${t.blocksCompiled} wasm-bytes=${t.bytesCompiled} ` +
    `compile-ms=${t.compileMs.toFixed(1)} invalidations=${t.invalidations} evictions=${t.evictions} ` +
    `dispatches=${t.dispatches} interp-steps=${t.interpSteps} cold-blocks=${t.coldBlocks} rebuilds=${t.rebuilds}`;
}
