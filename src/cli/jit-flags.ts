/**
 * The JIT's command-line flags (`--jit=on|off`, `--jit-threshold=N`) and
 * the TSVM_JIT environment variable (`off`, `on`, or a threshold such as
 * `0`), which sets the default for every tsvm process, including the ones
 * the test suite starts. They set the process's default JitConfig
 * (src/jit/jit-config.ts), which each VM copies when it is built;
 * `tsvm run` applies its own --jit flags to its VmConfig instead
 * (src/vmm/qemu-config.ts).
 */
import { defaultJitConfig, setDefaultJitConfig, withJitEnv, withJitMode, withJitThreshold, type JitConfig } from '../jit/jit-config.js';

/** Sets the default from `r`, or returns its error message. */
function apply(r: JitConfig | string): string | null {
  if (typeof r === 'string') return r;
  setDefaultJitConfig(r);
  return null;
}

/** Applies `--jit=VALUE` to the process default; returns an error message or null. */
export function setJitMode(v: string): string | null { return apply(withJitMode(defaultJitConfig(), v)); }

/** Applies `--jit-threshold=N` to the process default; returns an error message or null. */
export function setJitThreshold(v: string): string | null { return apply(withJitThreshold(defaultJitConfig(), v)); }

/** Applies TSVM_JIT from the environment to the process default; returns an error message or null. */
export function applyJitEnv(env: NodeJS.ProcessEnv): string | null { return apply(withJitEnv(defaultJitConfig(), env['TSVM_JIT'])); }
