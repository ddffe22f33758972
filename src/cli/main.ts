#!/usr/bin/env node
/**
 * The tsvm executable. Before the command line parser and the VMs are
 * loaded, it keeps V8's background compiles from taking the vCPU thread's
 * core (host/compiler-threads.ts): `tsvm run` reruns itself with fewer V8
 * worker threads on hosts with few cores (so the relaunching parent stays a
 * small process), and `tsvm exec` lowers their priority. Everything else is
 * in program.ts.
 */
import { lowerWorkerPriority, relaunchWithPoolSize } from '../host/compiler-threads.js';

const command = process.argv[2];
const relaunched = command === 'run' ? relaunchWithPoolSize() : null;
if (relaunched !== null) process.exitCode = await relaunched;
else {
  if (command === 'exec') lowerWorkerPriority();
  await import('./program.js');
}
