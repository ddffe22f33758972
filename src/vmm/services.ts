/**
 * The host services a VM is built and run with. The VMM never reaches the
 * host itself (no node: modules, no src/host imports — eslint.config.js
 * enforces it): files, disk images, network backends, the console, the
 * clock and the run loop's waits are passed in as one `VmServices` value.
 * src/host/node-vm-services.ts implements them on Node; tests and other
 * hosts (a browser tab, a worker) bring their own.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import type { BlockBackend } from '../devices/virtio/block-backend.js';
import type { NetBackend } from '../devices/virtio/net-backend.js';
import type { CharBackend, Clock } from '../devices/device.js';
import type { ConsolePort } from '../devices/virtio/console.js';
import type { QemuOpts } from './qemu-opts.js';
import type { HostOs } from '../process/host-os.js';
import type { QmpAddress, QmpMonitor } from './qmp.js';

/** What the VMM's run loop needs from its host: waits, yields and a clock. */
export interface VmHost {
  /** Waits up to `ms` milliseconds, returning early when input arrives. */
  wait(ms: number): Promise<void>;
  /** Lets the host's event loop run (console input, signals). */
  yield(): Promise<void>;
  /** Host monotonic time in ms. */
  now(): number;
  /** Ends a pending `wait` early (an asynchronous device event arrived). */
  wake(): void;
}

/** How a -drive image is opened. */
export interface DiskOpenOptions {
  /** Open read-only (readonly=on or snapshot=on). */
  readOnly: boolean;
  /** The format=; absent: probe (qcow2 magic, else raw). */
  format?: 'raw' | 'qcow2';
}

/** An opened disk image. */
export interface DiskImage {
  /** The image as the block device's backend. */
  backend: BlockBackend;
  /** The qcow2 cluster size in bytes, or null for a raw image. */
  clusterSize: number | null;
}

/** Opens the host side of one -netdev; throws OptsError for unusable options (one line). */
export type NetdevOpener = (netdev: QemuOpts) => NetBackend;

/** The host side of a -chardev: a byte stream a device (virtio-console) can use, closed with the VM. */
export interface ChardevPort extends ConsolePort {
  /** Releases the backend (closes its socket). */
  close(): void;
}

/** The host services device factories use (-drive images, -netdev backends, -chardev backends, -fsdev shares). */
export interface DeviceServices {
  /** Opens a -drive image; throws a one-line error naming the file. */
  openDisk(file: string, opts: DiskOpenOptions): DiskImage;
  /** Opens a -netdev backend. */
  openNetdev: NetdevOpener;
  /** Opens a -chardev backend other than stdio; throws OptsError for unusable options. Absent: no chardev backends. */
  openChardev?(chardev: QemuOpts): ChardevPort;
  /** Host file services for virtio-fs shares (-fsdev); absent: virtio-fs is unavailable. */
  fileHost?: HostOs;
}

/** The guest console on the host: output for the UART, input and escape handlers, and the run loop's waits. */
export interface VmConsole extends CharBackend, VmHost {
  /** Receives guest-bound input bytes. */
  onInput: (bytes: Uint8Array) => void;
  /** Called when the user asks to quit (QEMU's `Ctrl-A x`). */
  onQuit: () => void;
  /** Sees every byte of guest output (e.g. for panic detection). */
  tap: (bytes: Uint8Array) => void;
  /** Starts reading host input. */
  start(): void;
  /** Stops reading host input and restores the terminal. */
  stop(): void;
}

/** A listening QMP endpoint. */
export interface QmpListener {
  /** Resolves when the first client has connected. */
  waitForClient(): Promise<void>;
  /** Closes the endpoint and its sessions. */
  close(): Promise<void>;
}

/** The guest files the default guest provides (built on first use by the host). */
export interface DefaultGuestFiles { kernel: string; initrd: string }

/** A host file that could not be read: `reason` is one line (e.g. 'no such file'). */
export class HostFileError extends Error {
  /** Why the read failed, in a few words. */
  readonly reason: string;
  constructor(path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.reason = reason;
  }
}

/** Everything a system VM needs from its host. */
export interface VmServices extends DeviceServices {
  /** The guest console and the run loop's waits. */
  console: VmConsole;
  /** Time for the devices (CLINT, RTC). */
  clock: Clock;
  /** Reads a whole file (kernel, initrd, firmware); throws HostFileError. */
  readFile(path: string): Uint8Array;
  /** Finds (building on first use) the default guest's kernel and initrd. */
  defaultGuest(mirror?: string): Promise<DefaultGuestFiles>;
  /** Listens for QMP clients on `addr`; rejects with a one-line Error. */
  listenQmp(addr: QmpAddress, monitor: QmpMonitor): Promise<QmpListener>;
  /**
   * Makes the VM's guest RAM: `bytes` at guest-physical `base` with `cpuSlots`
   * CPU slots (a PooledRam on the host's frame pool). Absent: the board
   * allocates a GuestRam of its own, as `tsvm run` does.
   */
  guestMemory?(bytes: number, base: number, cpuSlots: number): GuestMemory;
}
