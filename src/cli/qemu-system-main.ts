/**
 * The drop-in `tsvm-system-riscv64`: qemu-system-riscv64's command line
 * (qemu-system-args.ts) run as `tsvm run` runs it (run-command.ts), with
 * QEMU's messages and exit status 1 for usage errors.
 */
import { parseQemuSystemArgs, QemuSystemUsageError, SYSTEM_NAME } from './qemu-system-args.js';
import { applyJitEnv } from './jit-flags.js';
import { TSVM_VERSION } from './version.js';

/** QEMU's exit status for its own errors (EXIT_FAILURE). */
const EXIT_QEMU_FAILURE = 1;

/** Runs `tsvm-system-riscv64 ARGV...`; resolves to the exit status. */
export async function qemuSystemMain(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const fail = (msg: string): number => { process.stderr.write(`${SYSTEM_NAME}: ${msg}\n`); return EXIT_QEMU_FAILURE; };
  const jitErr = applyJitEnv(env);
  if (jitErr !== null) return fail(jitErr);
  let req;
  try { req = parseQemuSystemArgs(argv, TSVM_VERSION); } catch (e) {
    if (e instanceof QemuSystemUsageError) return fail(e.message);
    throw e;
  }
  if (req.kind === 'text') { process.stdout.write(req.text); return 0; }
  const { runCommand } = await import('./run-command.js');
  return runCommand(req.argv, { usageName: SYSTEM_NAME, usageStatus: EXIT_QEMU_FAILURE, name: SYSTEM_NAME, startPaused: req.startPaused });
}
