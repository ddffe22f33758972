/**
 * Builds a system VM from a VmConfig with the host's VmServices: the
 * virtio devices (device-builder.ts), the kernel, initrd and firmware
 * (read through the services; the default guest when there is no kernel),
 * the board (boot.ts), the Vm and its QMP monitor. `BuiltVm.run` then
 * connects the console, runs the VM to its end and releases what the
 * build opened.
 *
 * Errors while building (the build has released what it opened):
 * OptsError for unusable -device/-drive/-netdev options; BootError for
 * unusable kernel, initrd or firmware files; RangeError when the board
 * cannot be made (RAM, too many devices); VmSetupError when a host
 * resource (the QMP endpoint) cannot be set up; and whatever the services
 * throw (e.g. ImageError for a disk image or the default guest).
 */
import { bootMachine, type BootFile } from './boot.js';
import { Vm, type VmResult } from './vm.js';
import { buildDevices } from './device-builder.js';
import { QmpMonitor, shutdownCauseOf } from './qmp.js';
import { DEFAULT_APPEND, type VmConfig } from './vm-config.js';
import { HostFileError, type QmpListener, type VmServices } from './services.js';
import { BootError } from '../machine/boot-loader.js';
import { HSM_STOPPED } from '../machine/sbi.js';
import { VIRT_DRAM_BASE } from '../machine/virt-map.js';
import { VirtioBalloon, RamAccounting } from '../devices/virtio/balloon.js';
import { PooledRam } from '../memory/pooled-ram.js';
import { PooledBalloon } from './pooled-balloon.js';
import { VirtioFs } from '../devices/virtio/fs.js';
import { LateFsBackend } from './fs-late.js';
import { bindLateFsdev } from './dev-fs.js';
import type { ConsolePort } from '../devices/virtio/console.js';
import type { GuestEntry } from '../devices/virtio/mmio.js';

/** A host resource the VM needs could not be set up (one line). */
export class VmSetupError extends Error {}

/** The line Linux prints when it panics (kernel/panic.c), which ends the VM with status 1. */
const PANIC_LINE = 'Kernel panic - not syncing';
/** Console bytes kept to find PANIC_LINE across writes. */
const PANIC_TAIL = 256;

/** Reads a boot file through the services; a failure is a BootError naming it (`kernel PATH: no such file`). */
function readBootFile(services: VmServices, path: string, what: string): BootFile {
  try {
    return { name: path, data: services.readFile(path) };
  } catch (e) {
    if (e instanceof HostFileError) throw new BootError(`${what} ${path}: ${e.reason}`);
    throw e;
  }
}

/** A built VM, ready to run once. */
export class BuiltVm {
  /** The VM (board, harts, lifecycle). */
  readonly vm: Vm;
  /** The configuration it was built from. */
  readonly config: VmConfig;
  /** The QMP monitor and its endpoint, when the config asks for one. */
  readonly qmp: { monitor: QmpMonitor; listener: QmpListener } | null;
  private readonly services: VmServices;
  private readonly cleanups: (() => void)[];
  private readonly inputListeners: Set<(b: Uint8Array) => void>;

  constructor(vm: Vm, config: VmConfig, services: VmServices, cleanups: (() => void)[],
    inputListeners: Set<(b: Uint8Array) => void>, qmp: BuiltVm['qmp']) {
    this.vm = vm; this.config = config; this.services = services; this.cleanups = cleanups;
    this.inputListeners = inputListeners; this.qmp = qmp;
  }

  /**
   * Connects the console (input, Ctrl-A x, panic detection), runs the VM
   * until it ends, then releases the build's host resources and ends the
   * QMP sessions with SHUTDOWN. A host error in the run loop is rethrown
   * after that (QMP sees cause host-error).
   */
  async run(): Promise<VmResult> {
    const vm = this.vm, console = this.services.console;
    let tail = '';
    const text = new TextDecoder();
    console.tap = (bytes) => {
      tail = (tail + text.decode(bytes)).slice(-PANIC_TAIL);
      if (tail.includes(PANIC_LINE)) vm.panicked = true;
    };
    console.onInput = (b) => { vm.input(b); for (const l of this.inputListeners) l(b); };
    console.onQuit = () => { vm.stop(); };
    console.start();
    let result: VmResult | undefined;
    try {
      result = await vm.run();
    } finally {
      console.stop();
      this.release();
      if (this.qmp) {
        const cause = shutdownCauseOf(result?.reason ?? 'stopped', vm.hostRequest ?? (result ? null : 'host-error'));
        this.qmp.monitor.shutdown(cause.guest, cause.reason);
        await this.qmp.listener.close();
      }
    }
    return result;
  }

  /** Releases the host resources the devices opened (files, sockets, helper processes). */
  private release(): void {
    for (const c of this.cleanups.splice(0)) c();
  }
}

/** Builds the VM `config` describes, using `services` for everything on the host. */
export async function buildVm(config: VmConfig, services: VmServices): Promise<BuiltVm> {
  const console = services.console;
  const inputListeners = new Set<(b: Uint8Array) => void>();
  const consolePort: ConsolePort = {
    write: (b) => console.write(b),
    onInput: (l) => { inputListeners.add(l); return () => { inputListeners.delete(l); }; },
  };
  let vmRef: Vm | null = null; // device work from the event loop enters the VM through Vm.external once it exists
  const enter: GuestEntry = (work) => (vmRef !== null ? vmRef.external(work) : work());
  const built = buildDevices(config.dev, services, () => console.wake(), consolePort, enter);
  const cleanups = built.cleanups;
  const fail = (e: unknown): never => {
    for (const c of cleanups) c();
    throw e;
  };
  let vm: Vm;
  try {
    let kernelPath = config.kernel, initrdPath = config.initrd, append = config.append;
    if (kernelPath === undefined) {
      const g = await services.defaultGuest(config.mirror);
      kernelPath = g.kernel;
      initrdPath ??= g.initrd;
      append ??= DEFAULT_APPEND;
    }
    const bios = config.bios === 'default' ? 'builtin' as const : config.bios === 'none' ? 'none' as const : readBootFile(services, config.bios, 'firmware');
    const memory = services.guestMemory?.(config.memBytes, VIRT_DRAM_BASE, config.smp);
    if (memory?.release) { const m = memory; cleanups.push(() => m.release!()); }
    const booted = bootMachine({
      kind: config.machine, ramBytes: config.memBytes, harts: config.smp, bios,
      kernel: readBootFile(services, kernelPath, 'kernel'), initrd: initrdPath !== undefined ? readBootFile(services, initrdPath, 'initrd') : undefined,
      append: append ?? DEFAULT_APPEND, mmuType: config.mmu, console, clock: services.clock, virtio: built.devices, jit: config.jit, memory,
    });
    vm = new Vm(booted.board, console, booted.builtinSbi);
    vmRef = vm;
    for (const h of booted.stoppedHarts) vm.hsm[h] = HSM_STOPPED;
    vm.consoleOut = (b) => console.write(b);
    const balloon = built.devices.find((d): d is VirtioBalloon => d instanceof VirtioBalloon);
    if (balloon) {
      const ram = booted.board.ram;
      balloon.attach(ram instanceof PooledRam ? new PooledBalloon(ram) : new RamAccounting(booted.board.ramBase, ram.size));
      vm.balloon = balloon;
    }
    const late = new Map(built.devices.flatMap((d) => (d instanceof VirtioFs && d.backend instanceof LateFsBackend ? [[d.backend.id, d.backend] as const] : [])));
    const fileHost = services.fileHost;
    if (late.size > 0 && fileHost !== undefined) {
      vm.bindFsdev = (id, options) => {
        const share = late.get(id);
        if (share === undefined) throw new Error(`fsdev '${id}' not found (late fsdevs: ${[...late.keys()].join(', ')})`);
        bindLateFsdev(share, options, fileHost);
      };
    }
  } catch (e) {
    return fail(e);
  }
  let qmp: BuiltVm['qmp'] = null;
  if (config.qmp) {
    const monitor = new QmpMonitor(vm);
    try {
      qmp = { monitor, listener: await services.listenQmp(config.qmp, monitor) };
    } catch (e) {
      return fail(new VmSetupError(e instanceof Error ? e.message : String(e), { cause: e }));
    }
  }
  return new BuiltVm(vm, config, services, cleanups, inputListeners, qmp);
}
