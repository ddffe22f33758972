/**
 * V8 options for the WebAssembly the JIT generates, set before the first
 * module is compiled.
 *
 * Branch hints: translated units mark their rarely taken `if`s (the budget
 * check, TLB misses, failed slow paths, invalidation checks) with the
 * branch-hinting proposal's "metadata.code.branch_hint" section (see
 * jit/codegen.ts). Node 20's V8 reads that section only with
 * `--experimental-wasm-branch-hinting`; with it, TurboFan moves the unlikely
 * arms out of line and allocates registers for the likely path (process-VM
 * workloads: sort 2.69 -> 2.57 s, the bytecode interpreter 3.22 -> 3.05 s).
 * Without the option the section is ignored, so the generated code means the
 * same either way.
 */
import v8 from 'node:v8';

/** The V8 option that makes TurboFan use wasm branch hints. */
export const BRANCH_HINT_FLAG = '--experimental-wasm-branch-hinting';

/** Turns on V8's use of wasm branch hints for modules compiled from now on. */
export function enableWasmBranchHints(): void {
  v8.setFlagsFromString(BRANCH_HINT_FLAG);
}
