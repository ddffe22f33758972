/**
 * The virtio-fs device's factory for the device builder. QEMU serves
 * virtio-fs only through vhost-user and an external virtiofsd; tsvm serves
 * it in-process, with a syntax close to QEMU's -fsdev:
 *   -fsdev local,id=ID,path=DIR[,readonly=on][,security_model=passthrough|none]
 *   -fsdev overlay,id=ID,lower=DIR1[:DIR2...],upper=DIR
 *   -fsdev late,id=ID   (no tree until the host binds one: fs-late.ts)
 *   -device virtio-fs-device,fsdev=ID,tag=TAG
 * `lower` lists the read-only layers lowest first (like the layers of an
 * OCI image); changes land in `upper` with OCI whiteouts for deletions.
 * The guest mounts it with `mount -t virtiofs TAG DIR`. Files are reached
 * through the build's host services (`DeviceServices.fileHost`).
 */
import { VirtioFs, VIRTIO_FS_TAG_BYTES } from '../devices/virtio/fs.js';
import type { FsBackend } from '../devices/virtio/fs-backend.js';
import type { HostOs } from '../process/host-os.js';
import { S_IFDIR, S_IFMT } from '../process/sys-abi.js';
import type { BuildContext } from './device-builder.js';
import { passthroughBackend, overlayBackend } from './fs-host.js';
import { LateFsBackend } from './fs-late.js';
import { OptsError, boolProp, parseQemuOpts, type QemuOpts } from './qemu-opts.js';

/** -fsdev properties per backend type, and -device virtio-fs-device properties. */
const LOCAL_PROPS = new Set(['id', 'path', 'readonly', 'security_model']);
const OVERLAY_PROPS = new Set(['id', 'lower', 'upper']);
const LATE_PROPS = new Set(['id']);
const DEVICE_PROPS = new Set(['fsdev', 'tag', 'id']);

function checkProps(o: QemuOpts, allowed: Set<string>, what: string): void {
  for (const k of o.props.keys()) {
    if (!allowed.has(k)) throw new OptsError(`${what} ${o.text}: unsupported property '${k}' (known: ${[...allowed].join(', ')})`);
  }
}

/** The real path of `dir`, which must be a host directory; throws a one-line OptsError. */
function hostDir(os: HostOs, dir: string | undefined, what: string, key: string): string {
  if (dir === undefined || dir === '') throw new OptsError(`${what}: ${key}=DIR is required`);
  const real = os.realpath(dir);
  const st = typeof real === 'number' ? real : os.stat(real);
  if (typeof real === 'number' || typeof st === 'number') throw new OptsError(`${what}: ${key}=${dir}: no such directory`);
  if ((st.mode & S_IFMT) !== S_IFDIR) throw new OptsError(`${what}: ${key}=${dir}: not a directory`);
  return real;
}

/** Opens the backend an -fsdev describes. */
function openFsdev(fsdev: QemuOpts, os: HostOs): FsBackend {
  const what = `-fsdev ${fsdev.text}`, type = fsdev.type;
  if (type === 'local') {
    checkProps(fsdev, LOCAL_PROPS, '-fsdev');
    const model = fsdev.props.get('security_model') ?? 'passthrough';
    if (model !== 'passthrough' && model !== 'none') throw new OptsError(`${what}: security_model=${model} is not supported (passthrough or none)`);
    return passthroughBackend(os, hostDir(os, fsdev.props.get('path'), what, 'path'), boolProp(fsdev, 'readonly', false));
  }
  if (type === 'overlay') {
    checkProps(fsdev, OVERLAY_PROPS, '-fsdev');
    const lower = fsdev.props.get('lower');
    if (lower === undefined || lower === '') throw new OptsError(`${what}: lower=DIR[:DIR...] is required`);
    const lowers = lower.split(':').map((d) => hostDir(os, d, what, 'lower'));
    return overlayBackend(os, lowers, hostDir(os, fsdev.props.get('upper'), what, 'upper'));
  }
  if (type === 'late') {
    checkProps(fsdev, LATE_PROPS, '-fsdev');
    return new LateFsBackend(fsdev.props.get('id') ?? '');
  }
  throw new OptsError(`${what}: unknown fsdev type '${type}' (local, overlay or late)`);
}

/**
 * Binds late share `late` to the tree `options` describe (-fsdev syntax
 * without the id: `overlay,lower=...,upper=...` or `local,path=...`);
 * throws a one-line OptsError for bad options, an Error for a share
 * already bound.
 */
export function bindLateFsdev(late: LateFsBackend, options: string, os: HostOs): void {
  const o = parseQemuOpts(options);
  if (o.props.has('id')) throw new OptsError(`'${options}': give the fsdev's id apart, not in its options`);
  if (o.type !== 'local' && o.type !== 'overlay') throw new OptsError(`'${options}': a late fsdev binds a local or overlay tree`);
  late.bind(openFsdev(o, os));
}

/** Builds `-device virtio-fs-device,fsdev=ID,tag=TAG` on its -fsdev. */
export function buildFsDevice(o: QemuOpts, ctx: BuildContext): VirtioFs {
  checkProps(o, DEVICE_PROPS, '-device');
  const id = o.props.get('fsdev'), tag = o.props.get('tag');
  if (id === undefined) throw new OptsError(`-device ${o.text}: fsdev=ID is required`);
  if (tag === undefined || tag === '') throw new OptsError(`-device ${o.text}: tag=TAG is required`);
  if (new TextEncoder().encode(tag).length > VIRTIO_FS_TAG_BYTES) throw new OptsError(`-device ${o.text}: tag is longer than ${VIRTIO_FS_TAG_BYTES} bytes`);
  if (ctx.fsdev === undefined) throw new OptsError(`-device ${o.text}: no -fsdev with id '${id}'`);
  const fsdev = ctx.fsdev(id);
  const os = ctx.services.fileHost;
  if (os === undefined) throw new OptsError(`-device ${o.text}: this host has no file services for virtio-fs`);
  return new VirtioFs(openFsdev(fsdev, os), tag);
}
