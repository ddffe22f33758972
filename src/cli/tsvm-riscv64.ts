#!/usr/bin/env node
/**
 * The `tsvm-riscv64` executable: a drop-in for qemu-riscv64 (same options,
 * same QEMU_* variables; docs/dropin.md). As `tsvm exec` does (main.ts),
 * it lowers V8's background threads' priority before loading the VM.
 */
import { lowerWorkerPriority } from '../host/compiler-threads.js';

lowerWorkerPriority();
const { enableWasmBranchHints } = await import('../host/wasm-features.js');
enableWasmBranchHints();
const { qemuUserMain } = await import('./qemu-user-main.js');
// Leave at once when the guest has ended (the reason is in program.ts's exec action).
process.exit(qemuUserMain(process.argv.slice(2), process.env));
