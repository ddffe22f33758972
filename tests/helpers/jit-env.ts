/**
 * Preloaded into every test process (NODE_OPTIONS=--import, see
 * scripts/test-all.sh) so that in-process VMs follow TSVM_JIT the way the
 * tsvm CLI does: `off`, `on`, or a threshold such as `0`.
 */
import { applyJitEnv } from '../../src/cli/jit-flags.js';

const err = applyJitEnv(process.env);
if (err !== null) throw new Error(err);
