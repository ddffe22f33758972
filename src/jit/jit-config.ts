/**
 * The JIT settings of one VM (`JitConfig`), the parsing of their textual
 * forms (`--jit=on|off`, `--jit-threshold=N`, TSVM_JIT) and the process's
 * default.
 *
 * A VM takes its own copy of a JitConfig when its board or root process is
 * built (VmConfig.jit, BoardConfig.jit, ProcessOptions.jit); changing the
 * default later does not change a VM that exists. The default is the one
 * piece of process-wide state here, on purpose: it is what TSVM_JIT and
 * `tsvm exec`'s flags set for the whole tsvm process, and what the test
 * helper (tests/helpers/jit-env.ts) sets for in-process VMs.
 */

/** JIT settings of one VM. */
export interface JitConfig {
  /** Whether hot blocks are translated to WebAssembly at all. */
  readonly enabled: boolean;
  /** Runs of a block before it is translated (0: at first run); null: the VM kind's default. */
  readonly threshold: number | null;
  /** Bound on generated code (bytes of wasm), past which the oldest units are evicted. */
  readonly cacheBytes: number;
}

/** Largest threshold accepted (a block would need this many runs to be translated). */
export const MAX_JIT_THRESHOLD = 1_000_000_000;

/** The built-in settings: on, the VM kind's threshold, 64 MiB of generated code (docs/jit.md). */
export const BUILTIN_JIT_CONFIG: JitConfig = Object.freeze({ enabled: true, threshold: null, cacheBytes: 64 * 1024 * 1024 });

let processDefault: JitConfig = BUILTIN_JIT_CONFIG;

/** A copy of the process's default settings, for a VM being built without explicit ones. */
export function defaultJitConfig(): JitConfig { return { ...processDefault }; }

/** Sets the process's default (TSVM_JIT, `tsvm exec --jit`); VMs already built keep theirs. */
export function setDefaultJitConfig(c: JitConfig): void { processDefault = Object.freeze({ ...c }); }

/** `cfg` with `--jit=VALUE` applied, or an error message. */
export function withJitMode(cfg: JitConfig, v: string): JitConfig | string {
  if (v === 'on') return { ...cfg, enabled: true };
  if (v === 'off') return { ...cfg, enabled: false };
  return `--jit ${v}: expected on or off`;
}

/** `cfg` with `--jit-threshold=N` applied, or an error message. */
export function withJitThreshold(cfg: JitConfig, v: string): JitConfig | string {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_JIT_THRESHOLD) return `--jit-threshold ${v}: expected a whole number from 0 to ${MAX_JIT_THRESHOLD}`;
  return { ...cfg, threshold: n };
}

/** `cfg` with a TSVM_JIT value applied (`off`, `on` or a threshold, which also turns the JIT on), or an error message. */
export function withJitEnv(cfg: JitConfig, v: string | undefined): JitConfig | string {
  if (v === undefined || v === '') return cfg;
  if (v === 'on' || v === 'off') return withJitMode(cfg, v);
  const t = withJitThreshold(cfg, v);
  if (typeof t === 'string') return `TSVM_JIT=${v}: expected on, off or a threshold`;
  return { ...t, enabled: true };
}
