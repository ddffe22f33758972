/**
 * The VMM's host services on Node (`VmServices`, src/vmm/services.ts):
 * disk images through node:fs (file-io.ts), -netdev backends through
 * node:net and passt (net-socket.ts), -chardev sockets (chardev-socket.ts), the console on stdio (console.ts),
 * the QMP socket (qmp-server.ts) and the default guest (images/).
 */
import fs from 'node:fs';
import { openDiskImage, Qcow2Image } from '../images/qcow2.js';
import { ensureDefaultGuest } from '../images/default-guest.js';
import { nodeFileHost } from './file-io.js';
import { NodeHostOs } from './node-host-os.js';
import { openNetdev } from './net-socket.js';
import { openChardev } from './chardev-socket.js';
import { HostConsole, hostClock } from './console.js';
import { QmpServer } from './qmp-server.js';
import { HostFileError, type DeviceServices, type DiskImage, type DiskOpenOptions, type VmServices } from '../vmm/services.js';

/** Opens a -drive image with node:fs (qcow2 or raw); throws ImageError. */
function openDisk(file: string, opts: DiskOpenOptions): DiskImage {
  const image = openDiskImage(nodeFileHost, file, { readOnly: opts.readOnly, ...(opts.format !== undefined ? { format: opts.format } : {}) });
  return { backend: image, clusterSize: image instanceof Qcow2Image ? image.header.clusterSize : null };
}

/** The device services on Node: disk images, -netdev and -chardev backends, and virtio-fs shares' files. */
export const nodeDeviceServices: DeviceServices = { openDisk, openNetdev, openChardev, fileHost: new NodeHostOs() };

/** Reads a whole file; throws HostFileError with the reason in a few words. */
export function readFile(path: string): Uint8Array {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HostFileError(path, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : 'cannot read');
  }
}

/** Every service a system VM needs, on Node, with the console on stdio. */
export function nodeVmServices(): VmServices {
  return {
    ...nodeDeviceServices,
    console: new HostConsole(),
    clock: hostClock,
    readFile,
    defaultGuest: async (mirror) => {
      const g = await ensureDefaultGuest({ mirror });
      return { kernel: g.kernel, initrd: g.initrd };
    },
    listenQmp: (addr, monitor) => QmpServer.listen(addr, monitor),
  };
}
