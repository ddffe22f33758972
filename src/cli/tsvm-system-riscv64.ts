#!/usr/bin/env node
/**
 * The `tsvm-system-riscv64` executable: a drop-in for qemu-system-riscv64
 * (docs/dropin.md). As `tsvm run` does (main.ts), it first reruns itself
 * with fewer V8 worker threads on hosts with few cores.
 */
import { relaunchWithPoolSize } from '../host/compiler-threads.js';

const relaunched = relaunchWithPoolSize();
if (relaunched !== null) process.exitCode = await relaunched;
else {
  const { enableWasmBranchHints } = await import('../host/wasm-features.js');
  enableWasmBranchHints();
  const { qemuSystemMain } = await import('./qemu-system-main.js');
  process.exitCode = await qemuSystemMain(process.argv.slice(2), process.env);
}
