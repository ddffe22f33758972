#!/usr/bin/env node
/**
 * The tsvm executable. Before the command line parser and the VMs are
 * loaded, it keeps V8's background compiles from taking the vCPU thread's
 * core (host/compiler-threads.ts): `tsvm run` of a system VM reruns itself with fewer V8
 * worker threads on hosts with few cores (so the relaunching parent stays a
 * small process), and `tsvm exec` lowers their priority. `tsvm exec
 * --await-argv FD` waits for its command line (await-argv.ts). Everything
 * else is in program.ts.
 */
import { lowerWorkerPriority, relaunchWithPoolSize } from '../host/compiler-threads.js';
import { isContainerRun } from './run-kind.js';

const command = process.argv[2];
const runArgs = process.argv.slice(3);
if (command === 'run' && isContainerRun(runArgs)) {
  // A container run is a thin client of the host (run-kind.ts): no relaunch, and none of program.ts's other modules.
  process.exitCode = await (await import('./container-command.js')).containerRun(runArgs);
} else {
  const relaunched = command === 'run' ? relaunchWithPoolSize() : null;
  if (relaunched !== null) process.exitCode = await relaunched;
  else {
    if (command === 'exec') lowerWorkerPriority();
    // A warm spare of the process VM (await-argv.ts) learns its command line once a container starts.
    if (command === 'exec' && process.argv[3] === '--await-argv') process.argv = await (await import('./await-argv.js')).awaitArgv(process.argv[4]);
    await (await import('./program.js')).runProgram();
  }
}
