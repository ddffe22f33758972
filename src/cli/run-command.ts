/**
 * `tsvm run`: the system VM, with the command line people know from
 * qemu-system-riscv64:
 *   tsvm run [-M virt|spike] [-m 512M] [-smp N] [-kernel K] [-initrd I]
 *            [-append "..."] [-bios PATH|none|default] [-nographic]
 * With no -kernel it boots the default guest (Debian's kernel and busybox,
 * built on first use). tsvm's exit status is the guest's poweroff status.
 *
 * The command only wires things together: QEMU's options become a
 * VmConfig (vmm/qemu-config.ts), the VM is built from it with the Node host
 * services (vmm/vm-builder.ts, host/node-vm-services.ts) and run, and the
 * result becomes messages and an exit status.
 */
import { parseRunArgs, UsageError } from '../vmm/qemu-config.js';
import { buildVm, VmSetupError, type BuiltVm } from '../vmm/vm-builder.js';
import { OptsError } from '../vmm/qemu-opts.js';
import type { VmConfig } from '../vmm/vm-config.js';
import { BootError } from '../machine/boot-loader.js';
import { ImageError } from '../images/errors.js';
import { nodeVmServices } from '../host/node-vm-services.js';

/** Exit status for tsvm's own usage errors. */
export const EXIT_USAGE = 125;

/** How messages are named and usage errors end: `tsvm run`'s, or the drop-in tsvm-system-riscv64's (QEMU's). */
export interface RunStyle {
  /** Prefix of usage errors. */
  usageName: string;
  /** Exit status of a usage error. */
  usageStatus: number;
  /** Prefix of other messages. */
  name: string;
  /** Build the VM paused, until QMP's `cont` (qemu-system-riscv64's -S). */
  startPaused?: boolean;
}

/** `tsvm run`'s own style. */
const TSVM_RUN: RunStyle = { usageName: 'tsvm run', usageStatus: EXIT_USAGE, name: 'tsvm' };

/** Runs the VM; returns tsvm's exit status. */
export async function runCommand(argv: string[], style: RunStyle = TSVM_RUN): Promise<number> {
  let config: VmConfig;
  try { config = parseRunArgs(argv); } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`${style.usageName}: ${e.message}\n`); return style.usageStatus; }
    throw e;
  }
  let built: BuiltVm;
  try {
    built = await buildVm(config, nodeVmServices());
  } catch (e) {
    if (e instanceof OptsError) { process.stderr.write(`${style.usageName}: ${e.message}\n`); return style.usageStatus; }
    if (e instanceof BootError || e instanceof ImageError || e instanceof RangeError || e instanceof VmSetupError) {
      process.stderr.write(`${style.name}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  if (style.startPaused === true) built.vm.pause();
  if (built.qmp && config.qmp?.wait) {
    process.stderr.write(`${style.name}: waiting for a QMP client to connect\n`);
    await built.qmp.listener.waitForClient();
  }
  const result = await built.run();
  if (result.reason === 'panic') process.stderr.write('\ntsvm: guest kernel panic\n');
  if (result.reason === 'reset') process.stderr.write(built.vm.hostRequest === 'host-qmp-system-reset' ? '\ntsvm: system_reset: tsvm cannot reboot in place; stopping\n' : '\ntsvm: guest requested a reset; stopping\n');
  if (result.reason === 'stopped') process.stdout.write('\r\ntsvm: terminated\r\n');
  return result.status;
}
