/**
 * Preloaded (`node --import`) into a tsvm process by the exit test in
 * tests/diff/stress.test.ts: it leaves host work pending in the event
 * loop, as V8's queued background compiles do on a loaded host. If tsvm
 * waited for the loop to drain after the guest ended, the timer would fire
 * and the process would end with status 99 instead of the guest's status.
 * (Nothing may import this module: importing it arms the timer.)
 */

/** How long the pending work lasts (ms). */
const PENDING_MS = 30_000;

setTimeout(() => {
  process.stderr.write('pending-work-probe: tsvm waited for pending host work after the guest ended\n');
  process.exit(99);
}, PENDING_MS);
