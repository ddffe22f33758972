/**
 * Turns -device/-drive/-netdev options into virtio device models for the
 * board. Each device kind registers a factory here; the factories get the
 * parsed options and the host services they need (files, sockets), so
 * the devices themselves stay host-independent.
 */
import type { VirtioDevice } from '../devices/virtio/mmio.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import type { ConsolePort } from '../devices/virtio/console.js';
import { OptsError, type QemuOpts } from './qemu-opts.js';
import type { DeviceServices } from './services.js';

/** Parsed device-related command-line options. */
export interface DeviceOptions {
  devices: QemuOpts[];
  drives: QemuOpts[];
  netdevs: QemuOpts[];
}

/** What factories may use while building (backends look up -drive/-netdev by id). */
export interface BuildContext {
  opts: DeviceOptions;
  /** Finds the -drive with id=ID (marking it used). */
  drive(id: string): QemuOpts;
  /** Finds the -netdev with id=ID (marking it used). */
  netdev(id: string): QemuOpts;
  /** Things to close when the VM stops (files, sockets, helper processes). */
  cleanups: (() => void)[];
  /** Wakes the VMM's run loop after an asynchronous device event (e.g. a received frame). */
  wake: () => void;
  /** The host console (the stdio the UART uses), for virtio-console; absent when there is none. */
  console?: ConsolePort;
  /** Host services: disk images and -netdev backends. */
  services: DeviceServices;
}

/** Builds one device from its -device options. */
export type DeviceFactory = (o: QemuOpts, ctx: BuildContext) => VirtioDevice;
/** Builds the implicit device of a `-drive ...,if=virtio`. */
export type DriveFactory = (drive: QemuOpts, ctx: BuildContext) => VirtioDevice;

const deviceFactories = new Map<string, DeviceFactory>();
let virtioDriveFactory: DriveFactory | null = null;

/** Registers a -device driver name (e.g. 'virtio-blk-device'). */
export function registerDevice(name: string, f: DeviceFactory): void { deviceFactories.set(name, f); }
/** Registers what `-drive if=virtio` creates. */
export function registerVirtioDrive(f: DriveFactory): void { virtioDriveFactory = f; }

registerDevice('virtio-rng-device', () => new VirtioRng());

/** Loads the device modules; each registers its factories when imported. */
export async function loadDeviceModules(): Promise<void> {
  await Promise.all([import('./dev-blk.js'), import('./dev-net.js'), import('./dev-balloon.js'), import('./dev-console.js')]);
}

/** Builds the virtio devices in command-line order; throws OptsError on bad options. */
export function buildDevices(opts: DeviceOptions, services: DeviceServices, wake: () => void = () => {}, console?: ConsolePort): { devices: VirtioDevice[]; cleanups: (() => void)[] } {
  const used = new Set<QemuOpts>();
  const byId = (list: QemuOpts[], id: string, what: string): QemuOpts => {
    const o = list.find((x) => x.props.get('id') === id);
    if (!o) throw new OptsError(`no ${what} with id '${id}'`);
    used.add(o);
    return o;
  };
  const ctx: BuildContext = {
    opts, cleanups: [], wake, console, services,
    drive: (id) => byId(opts.drives, id, '-drive'),
    netdev: (id) => byId(opts.netdevs, id, '-netdev'),
  };
  const devices: VirtioDevice[] = [];
  try {
    for (const d of opts.drives) {
      const iface = d.props.get('if') ?? 'virtio';
      if (iface === 'none') continue;
      if (iface !== 'virtio') throw new OptsError(`-drive ${d.text}: only if=virtio or if=none are supported`);
      if (!virtioDriveFactory) throw new OptsError('virtio block devices are not available in this build');
      used.add(d);
      devices.push(virtioDriveFactory(d, ctx));
    }
    for (const d of opts.devices) {
      const f = deviceFactories.get(d.type);
      if (!f) throw new OptsError(`unknown device '${d.type}' (known: ${[...deviceFactories.keys()].sort().join(', ')})`);
      devices.push(f(d, ctx));
    }
    for (const d of opts.drives) if (!used.has(d)) throw new OptsError(`-drive ${d.text} is not used by any device`);
  } catch (e) {
    for (const c of ctx.cleanups) c();
    throw e;
  }
  return { devices, cleanups: ctx.cleanups };
}
