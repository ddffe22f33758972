/**
 * The drop-in `tsvm-riscv64`: qemu-riscv64's command line
 * (qemu-user-args.ts) run on the process VM (exec-command.ts). Its own
 * errors are one line and exit status 1, as QEMU's; otherwise the exit
 * status is the program's.
 */
import fs from 'node:fs';
import { execCommand } from './exec-command.js';
import { parseQemuUserArgs, QemuUserUsageError, USER_NAME } from './qemu-user-args.js';
import { applyJitEnv, setJitMode } from './jit-flags.js';
import { TSVM_VERSION } from './version.js';

/** Guest RAM backing the process, as `tsvm exec`'s default --memory. */
const MEMORY_BYTES = 1024 ** 3;

/** QEMU's exit status for its own errors (EXIT_FAILURE). */
export const EXIT_QEMU_FAILURE = 1;

/** Runs `tsvm-riscv64 ARGV...`; returns the exit status. */
export function qemuUserMain(argv: string[], env: NodeJS.ProcessEnv): number {
  const fail = (msg: string): number => { process.stderr.write(`${USER_NAME}: ${msg}\n`); return EXIT_QEMU_FAILURE; };
  const jitErr = applyJitEnv(env);
  if (jitErr !== null) return fail(jitErr);
  let req;
  try { req = parseQemuUserArgs(argv, env, TSVM_VERSION); } catch (e) {
    if (e instanceof QemuUserUsageError) return fail(e.message);
    throw e;
  }
  if (req.kind === 'text') { process.stdout.write(req.text); return 0; }
  const r = req.run;
  if (r.oneInsnPerTb) setJitMode('off');
  let log: ((line: string) => void) | undefined;
  if (r.logFile !== undefined) {
    let fd: number;
    try { fd = fs.openSync(r.logFile, 'w'); } catch (e) {
      return fail(`-D ${r.logFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    log = (line) => { fs.writeSync(fd, line + '\n'); };
  }
  return execCommand(r.program, r.args, {
    trace: r.strace, memoryBytes: MEMORY_BYTES,
    qemuUser: {
      ldPrefix: r.ldPrefix, argv0: r.argv0, envp: r.envp, unameRelease: r.unameRelease, seed: r.seed, log,
      loadFailureStatus: EXIT_QEMU_FAILURE, name: USER_NAME,
    },
  });
}
