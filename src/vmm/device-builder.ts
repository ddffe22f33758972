/**
 * Turns -device/-drive/-netdev/-fsdev options into virtio device models for the
 * board. The device kinds are a constant table of factories; each build
 * gets its own BuildContext (the parsed options, the host services — disk
 * images, sockets — and the build's bookkeeping), so the devices stay
 * host-independent and two VMs built in one process share nothing.
 */
import { directEntry, type GuestEntry, type VirtioDevice } from '../devices/virtio/mmio.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import type { ConsolePort } from '../devices/virtio/console.js';
import { OptsError, type QemuOpts } from './qemu-opts.js';
import { buildBlkDevice, buildVirtioDrive } from './dev-blk.js';
import { buildNet } from './dev-net.js';
import { buildBalloon } from './dev-balloon.js';
import { buildConsole } from './dev-console.js';
import { buildFsDevice } from './dev-fs.js';
import type { DeviceServices } from './services.js';

/** Parsed device-related command-line options. */
export interface DeviceOptions {
  devices: QemuOpts[];
  drives: QemuOpts[];
  netdevs: QemuOpts[];
  /** -chardev backends (absent when none was given). */
  chardevs?: QemuOpts[];
  /** -fsdev groups (virtio-fs backends); absent: none. */
  fsdevs?: QemuOpts[];
}

/** What factories may use while building (backends look up -drive/-netdev by id). */
export interface BuildContext {
  opts: DeviceOptions;
  /** Finds the -drive with id=ID (marking it used). */
  drive(id: string): QemuOpts;
  /** Finds the -netdev with id=ID (marking it used). */
  netdev(id: string): QemuOpts;
  /** Finds the -fsdev with id=ID (absent in contexts built without -fsdev support). */
  fsdev?(id: string): QemuOpts;
  /** Things to close when the VM stops (files, sockets, helper processes). */
  cleanups: (() => void)[];
  /** Wakes the VMM's run loop after an asynchronous device event (e.g. a received frame). */
  wake: () => void;
  /** Runs device work the host starts outside the run loop (see GuestEntry). */
  enter: GuestEntry;
  /** The host console (the stdio the UART uses), for virtio-console; absent when there is none. */
  console?: ConsolePort;
  /** Host services: disk images and -netdev backends. */
  services: DeviceServices;
  /** Drives already attached to a device in this build (each may back only one). */
  attachedDrives: Set<QemuOpts>;
  /** Netdev ids already given a device in this build (a netdev has one peer). */
  claimedNetdevs: Set<string>;
  /** Chardev ids already given a device in this build (a chardev has one frontend). */
  claimedChardevs?: Set<string>;
}

/** Builds one device from its -device options. */
export type DeviceFactory = (o: QemuOpts, ctx: BuildContext) => VirtioDevice;
/** Builds the implicit device of a `-drive ...,if=virtio`. */
export type DriveFactory = (drive: QemuOpts, ctx: BuildContext) => VirtioDevice;

/** The -device driver names tsvm knows, and their factories. */
export const DEVICE_FACTORIES: ReadonlyMap<string, DeviceFactory> = new Map<string, DeviceFactory>([
  ['virtio-balloon-device', buildBalloon],
  ['virtio-blk-device', buildBlkDevice],
  ['virtio-console-device', buildConsole],
  ['virtio-fs-device', buildFsDevice],
  ['virtio-net-device', buildNet],
  ['virtio-rng-device', () => new VirtioRng()],
]);

/** What `-drive if=virtio` creates. */
export const VIRTIO_DRIVE_FACTORY: DriveFactory = buildVirtioDrive;

/** Builds the virtio devices in command-line order; throws OptsError on bad options. */
export function buildDevices(opts: DeviceOptions, services: DeviceServices, wake: () => void = () => {}, console?: ConsolePort, enter: GuestEntry = directEntry): { devices: VirtioDevice[]; cleanups: (() => void)[] } {
  const used = new Set<QemuOpts>();
  const byId = (list: QemuOpts[], id: string, what: string): QemuOpts => {
    const o = list.find((x) => x.props.get('id') === id);
    if (!o) throw new OptsError(`no ${what} with id '${id}'`);
    used.add(o);
    return o;
  };
  const ctx: BuildContext = {
    opts, cleanups: [], wake, enter, console, services, attachedDrives: new Set(), claimedNetdevs: new Set(), claimedChardevs: new Set(),
    drive: (id) => byId(opts.drives, id, '-drive'),
    netdev: (id) => byId(opts.netdevs, id, '-netdev'),
    fsdev: (id) => byId(opts.fsdevs ?? [], id, '-fsdev'),
  };
  const devices: VirtioDevice[] = [];
  try {
    for (const d of opts.drives) {
      const iface = d.props.get('if') ?? 'virtio';
      if (iface === 'none') continue;
      if (iface !== 'virtio') throw new OptsError(`-drive ${d.text}: only if=virtio or if=none are supported`);
      used.add(d);
      devices.push(VIRTIO_DRIVE_FACTORY(d, ctx));
    }
    for (const d of opts.devices) {
      const f = DEVICE_FACTORIES.get(d.type);
      if (!f) throw new OptsError(`unknown device '${d.type}' (known: ${[...DEVICE_FACTORIES.keys()].sort().join(', ')})`);
      devices.push(f(d, ctx));
    }
    for (const d of opts.drives) if (!used.has(d)) throw new OptsError(`-drive ${d.text} is not used by any device`);
  } catch (e) {
    for (const c of ctx.cleanups) c();
    throw e;
  }
  return { devices, cleanups: ctx.cleanups };
}
