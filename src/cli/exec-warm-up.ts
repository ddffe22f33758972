/**
 * The warm-up run of a process-VM spare (await-argv.ts): the in-memory
 * program of src/process/warm-up-program.ts, run once through the same
 * loader, interpreter, JIT and system-call layer as `tsvm exec`, so the
 * container's own first program finds them compiled by V8. It touches no
 * file and writes nothing; any failure is ignored (the spare then starts
 * cold, as before). TSVM_WARM_UP=0 turns it off (for measurements).
 */
import crypto from 'node:crypto';
import { GuestProcess } from '../process/guest-process.js';
import { loadProgram } from '../process/loader.js';
import { runProcess } from '../process/run-process.js';
import { LinuxSyscalls } from '../process/syscalls.js';
import { NodeHostOs } from '../host/node-host-os.js';
import { warmUpElf } from '../process/warm-up-program.js';

/** Guest RAM of the warm-up process (its size changes no object shape). */
const WARM_UP_RAM = 64 * 1024 * 1024;

/** Runs the warm-up program; its exit status, or -1 if it was off or failed. */
export function warmUpProcessVm(): number {
  if (process.env['TSVM_WARM_UP'] === '0') return -1;
  const quiet = (): void => {};
  try {
    const proc = new GuestProcess({ memoryBytes: WARM_UP_RAM, trace: false }, process.pid);
    loadProgram(proc, { readFile: () => null, randomBytes: (b) => { crypto.randomFillSync(b); }, uid: 0, gid: 0 }, '/warm-up', warmUpElf(), ['warm-up'], []);
    return runProcess(proc, new LinuxSyscalls(proc, new NodeHostOs(), quiet), quiet);
  } catch { return -1; }
}
