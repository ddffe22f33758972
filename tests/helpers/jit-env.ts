/**
 * Preloaded into every test process (NODE_OPTIONS=--import, see
 * scripts/test-all.sh) so that in-process VMs follow TSVM_JIT the way the
 * tsvm CLI does: `off`, `on`, or a threshold such as `0`; and so that V8
 * reads the translator's branch hints there too, as it does under the CLI.
 */
import { applyJitEnv } from '../../src/cli/jit-flags.js';
import { enableWasmBranchHints } from '../../src/host/wasm-features.js';

enableWasmBranchHints();
const err = applyJitEnv(process.env);
if (err !== null) throw new Error(err);
