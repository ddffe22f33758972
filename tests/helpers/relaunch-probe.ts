/**
 * A stand-in for `tsvm run` in tests/unit/compiler-threads.test.ts: it calls
 * relaunchWithPoolSize the way the CLI does. The process that goes on prints
 * one JSON line (its pid and Node options) and then waits until killed; a
 * parent that relaunched exits with the status the helper returns.
 */
import { relaunchWithPoolSize } from '../../src/host/compiler-threads.js';

const relaunched = relaunchWithPoolSize();
if (relaunched !== null) {
  process.exitCode = await relaunched;
} else {
  process.stdout.write(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, arg: process.argv[2] ?? null }) + '\n');
  if (process.argv[2] === 'exit7') process.exit(7);
  setInterval(() => {}, 1000);
}
