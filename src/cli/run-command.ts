/**
 * `tsvm run`: the system VM, with the command line people know from
 * qemu-system-riscv64:
 *   tsvm run [-M virt|spike] [-m 512M] [-smp N] [-kernel K] [-initrd I]
 *            [-append "..."] [-bios PATH|none|default] [-nographic]
 * With no -kernel it boots the default guest (Debian's kernel and busybox,
 * built on first use). tsvm's exit status is the guest's poweroff status.
 */
import fs from 'node:fs';
import { bootMachine, type BootFile } from '../vmm/boot.js';
import { Vm, type VmResult } from '../vmm/vm.js';
import { BootError } from '../machine/boot-loader.js';
import { HostConsole, hostClock } from '../host/console.js';
import { HSM_STOPPED } from '../machine/sbi.js';
import { parseSize } from './size.js';
import { ensureDefaultGuest } from '../images/default-guest.js';
import { ImageError } from '../images/errors.js';
import type { MachineKind } from '../machine/board.js';
import { parseQemuOpts, OptsError, type QemuOpts } from '../vmm/qemu-opts.js';
import { buildDevices, type DeviceOptions } from '../vmm/device-builder.js';
import { QmpMonitor, parseQmpAddress, shutdownCauseOf, type QmpAddress } from '../vmm/qmp.js';
import { QmpServer } from '../host/qmp-server.js';
import { nodeDeviceServices } from '../host/node-vm-services.js';
import { VirtioBalloon, RamAccounting } from '../devices/virtio/balloon.js';
import type { ConsolePort } from '../devices/virtio/console.js';
import { setJitMode, setJitThreshold } from './jit-flags.js';

/** Exit status for tsvm's own usage errors. */
export const EXIT_USAGE = 125;

/** Parsed `tsvm run` options. */
export interface RunOptions {
  machine: MachineKind;
  memBytes: number;
  smp: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  bios: string; // 'default' | 'none' | path
  mmu: 'sv39' | 'sv48' | 'sv57';
  mirror?: string;
  /** -device / -drive / -netdev option groups. */
  dev: DeviceOptions;
  /** -qmp address (unix:PATH,server=on,wait=off). */
  qmp?: QmpAddress;
}

/** A usage error: one line, exit status 125. */
export class UsageError extends Error {}

const DEFAULT_APPEND = 'console=ttyS0';

/** Parses QEMU-style arguments; throws UsageError. */
export function parseRunArgs(argv: string[]): RunOptions {
  const o: RunOptions = {
    machine: 'virt', memBytes: 512 * 1024 * 1024, smp: 1, bios: 'default', mmu: 'sv39',
    dev: { devices: [], drives: [], netdevs: [] },
  };
  const opts = (text: string, implicit = 'type'): QemuOpts => {
    try { return parseQemuOpts(text, implicit); } catch (e) {
      if (e instanceof OptsError) throw new UsageError(e.message);
      throw e;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`option ${a} needs an argument`);
      return v;
    };
    const jm = /^--?(jit|jit-threshold)(?:=(.*))?$/.exec(a);
    if (jm !== null) {
      const v = jm[2] ?? val();
      const e = jm[1] === 'jit' ? setJitMode(v) : setJitThreshold(v);
      if (e !== null) throw new UsageError(e);
      continue;
    }
    switch (a.replace(/^--/, '-')) {
      case '-M': case '-machine': {
        const m = val().split(',')[0]!;
        if (m !== 'virt' && m !== 'spike') throw new UsageError(`unsupported machine type '${m}' (use -M virt or -M spike)`);
        o.machine = m;
        break;
      }
      case '-m': {
        const v = val(), n = parseSize(v.replace(/^size=/, ''), 'M');
        if (n === null || n < 16 * 1024 * 1024 || n > 3 * 1024 ** 3) throw new UsageError(`invalid -m '${v}': expected a size from 16M to 3G`);
        o.memBytes = n;
        break;
      }
      case '-smp': {
        const v = val(), n = Number(v.replace(/^cpus=/, '').split(',')[0]);
        if (!Number.isInteger(n) || n < 1 || n > 8) throw new UsageError(`invalid -smp '${v}': expected 1 to 8 harts`);
        o.smp = n;
        break;
      }
      case '-kernel': o.kernel = val(); break;
      case '-initrd': o.initrd = val(); break;
      case '-append': o.append = val(); break;
      case '-bios': o.bios = val(); break;
      case '-mmu': {
        const v = val();
        if (v !== 'sv39' && v !== 'sv48' && v !== 'sv57') throw new UsageError(`invalid -mmu '${v}': sv39, sv48 or sv57`);
        o.mmu = v;
        break;
      }
      case '-mirror': o.mirror = val(); break;
      case '-device': o.dev.devices.push(opts(val())); break;
      case '-drive': o.dev.drives.push(opts(val(), 'file')); break;
      case '-netdev': o.dev.netdevs.push(opts(val())); break;
      case '-qmp': {
        try { o.qmp = parseQmpAddress(val()); } catch (e) {
          if (e instanceof OptsError) throw new UsageError(e.message);
          throw e;
        }
        break;
      }
      case '-nographic': break; // the console is always on stdio
      case '-no-reboot': break;
      case '-display': case '-serial': case '-monitor': val(); break; // accepted for QEMU compatibility; stdio only
      default: throw new UsageError(`unknown option '${a}'`);
    }
  }
  if (o.machine === 'spike' && o.kernel === undefined) throw new UsageError('-M spike needs -kernel PROGRAM.elf');
  return o;
}

function readFile(path: string, what: string): BootFile {
  try {
    return { name: path, data: fs.readFileSync(path) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BootError(`${what} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : 'cannot read'}`);
  }
}

/** Runs the VM; returns tsvm's exit status. */
export async function runCommand(argv: string[]): Promise<number> {
  let opts: RunOptions;
  try { opts = parseRunArgs(argv); } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`tsvm run: ${e.message}\n`); return EXIT_USAGE; }
    throw e;
  }
  const console = new HostConsole();
  const inputListeners = new Set<(b: Uint8Array) => void>();
  const consolePort: ConsolePort = {
    write: (b) => console.write(b),
    onInput: (l) => { inputListeners.add(l); return () => { inputListeners.delete(l); }; },
  };
  let vm: Vm;
  let cleanups: (() => void)[] = [];
  try {
    let built;
    try { built = buildDevices(opts.dev, nodeDeviceServices, () => console.wake(), consolePort); } catch (e) {
      if (e instanceof OptsError) { process.stderr.write(`tsvm run: ${e.message}\n`); return EXIT_USAGE; }
      throw e;
    }
    cleanups = built.cleanups;
    let kernelPath = opts.kernel, initrdPath = opts.initrd, append = opts.append;
    if (kernelPath === undefined) {
      const g = await ensureDefaultGuest({ mirror: opts.mirror });
      kernelPath = g.kernel;
      initrdPath ??= g.initrd;
      append ??= DEFAULT_APPEND;
    }
    const bios = opts.bios === 'default' ? 'builtin' as const : opts.bios === 'none' ? 'none' as const : readFile(opts.bios, 'firmware');
    const booted = bootMachine({
      kind: opts.machine, ramBytes: opts.memBytes, harts: opts.smp, bios,
      kernel: readFile(kernelPath, 'kernel'), initrd: initrdPath !== undefined ? readFile(initrdPath, 'initrd') : undefined,
      append: append ?? DEFAULT_APPEND, mmuType: opts.mmu, console, clock: hostClock, virtio: built.devices,
    });
    vm = new Vm(booted.board, console, booted.builtinSbi);
    for (const h of booted.stoppedHarts) vm.hsm[h] = HSM_STOPPED;
    vm.consoleOut = (b) => console.write(b);
    const balloon = built.devices.find((d): d is VirtioBalloon => d instanceof VirtioBalloon);
    if (balloon) { balloon.attach(new RamAccounting(booted.board.ramBase, booted.board.ram.size)); vm.balloon = balloon; }
  } catch (e) {
    for (const c of cleanups) c();
    if (e instanceof BootError || e instanceof ImageError) { process.stderr.write(`tsvm: ${e.message}\n`); return 1; }
    if (e instanceof RangeError) { process.stderr.write(`tsvm: ${e.message}\n`); return 1; }
    throw e;
  }
  // Kernel panic detection on the console: Linux prints this line and then hangs or reboots.
  let tail = '';
  console.tap = (bytes) => {
    tail = (tail + new TextDecoder().decode(bytes)).slice(-256);
    if (tail.includes('Kernel panic - not syncing')) vm.panicked = true;
  };
  console.onInput = (b) => { vm.input(b); for (const l of inputListeners) l(b); };
  console.onQuit = () => { vm.stop(); };
  let qmp: { monitor: QmpMonitor; server: QmpServer } | null = null;
  if (opts.qmp) {
    const monitor = new QmpMonitor(vm);
    try {
      qmp = { monitor, server: await QmpServer.listen(opts.qmp, monitor) };
    } catch (e) {
      for (const c of cleanups) c();
      process.stderr.write(`tsvm: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
    if (opts.qmp.wait) {
      process.stderr.write('tsvm: waiting for a QMP client to connect\n');
      await qmp.server.waitForClient();
    }
  }
  console.start();
  let result: VmResult | undefined;
  try {
    result = await vm.run();
  } finally {
    console.stop();
    for (const c of cleanups) c();
    if (qmp) {
      const cause = shutdownCauseOf(result?.reason ?? 'stopped', vm.hostRequest ?? (result ? null : 'host-error'));
      qmp.monitor.shutdown(cause.guest, cause.reason);
      await qmp.server.close();
    }
  }
  if (!result) return 1;
  if (result.reason === 'panic') process.stderr.write('\ntsvm: guest kernel panic\n');
  if (result.reason === 'reset') process.stderr.write(vm.hostRequest === 'host-qmp-system-reset' ? '\ntsvm: system_reset: tsvm cannot reboot in place; stopping\n' : '\ntsvm: guest requested a reset; stopping\n');
  if (result.reason === 'stopped') process.stdout.write('\r\ntsvm: terminated\r\n');
  return result.status;
}
