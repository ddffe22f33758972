/**
 * The virtio block device's factories for the device builder:
 *   -drive file=PATH[,format=raw|qcow2][,if=virtio][,readonly=on][,snapshot=on]
 *   -drive file=PATH,if=none,id=ID ... -device virtio-blk-device,drive=ID[,serial=S]
 * The image is opened through the build's host services
 * (`DeviceServices.openDisk`, on Node src/host/node-vm-services.ts);
 * without format= it is probed (qcow2 magic, else raw). snapshot=on opens
 * the image read-only and keeps the guest's writes in memory.
 */
import { VirtioBlk } from '../devices/virtio/blk.js';
import { SnapshotOverlay, type BlockBackend } from '../devices/virtio/block-backend.js';
import type { BuildContext } from './device-builder.js';
import { OptsError, boolProp, type QemuOpts } from './qemu-opts.js';

/** -drive properties tsvm understands (cache, aio and media=disk are accepted for QEMU compatibility). */
const DRIVE_PROPS = new Set(['file', 'format', 'if', 'id', 'readonly', 'snapshot', 'cache', 'aio', 'discard', 'media', 'serial']);
/** -device virtio-blk-device properties. */
const DEVICE_PROPS = new Set(['drive', 'id', 'serial']);

function checkProps(o: QemuOpts, allowed: Set<string>, what: string): void {
  for (const k of o.props.keys()) {
    if (!allowed.has(k)) throw new OptsError(`${what} ${o.text}: unsupported property '${k}' (known: ${[...allowed].join(', ')})`);
  }
}

/** Opens the drive's image and builds the device. */
function makeBlk(drive: QemuOpts, dev: QemuOpts | null, ctx: BuildContext): VirtioBlk {
  checkProps(drive, DRIVE_PROPS, '-drive');
  if (ctx.attachedDrives.has(drive)) throw new OptsError(`-drive ${drive.text} is used by more than one device`);
  ctx.attachedDrives.add(drive);
  const file = drive.props.get('file');
  if (file === undefined || file === '') throw new OptsError(`-drive ${drive.text}: file=PATH is required`);
  const fmt = drive.props.get('format');
  if (fmt !== undefined && fmt !== 'raw' && fmt !== 'qcow2') throw new OptsError(`-drive ${drive.text}: format=${fmt} is not supported (raw or qcow2)`);
  const media = drive.props.get('media');
  if (media !== undefined && media !== 'disk') throw new OptsError(`-drive ${drive.text}: only media=disk is supported`);
  const discardProp = drive.props.get('discard') ?? 'unmap';
  if (!['unmap', 'on', 'ignore', 'off'].includes(discardProp)) throw new OptsError(`-drive ${drive.text}: discard=${discardProp} is not unmap or ignore`);
  const readOnly = boolProp(drive, 'readonly', false), snapshot = boolProp(drive, 'snapshot', false);

  const { backend: image, clusterSize } = ctx.services.openDisk(file, { readOnly: readOnly || snapshot, ...(fmt !== undefined ? { format: fmt } : {}) });
  const backend: BlockBackend = snapshot && !readOnly ? new SnapshotOverlay(image) : image;
  ctx.cleanups.push(() => backend.close());
  const qcow2 = clusterSize !== null;
  const serial = dev?.props.get('serial') ?? drive.props.get('serial');
  return new VirtioBlk(backend, {
    ...(serial !== undefined ? { serial } : {}),
    discard: discardProp === 'unmap' || discardProp === 'on',
    discardGranularity: clusterSize ?? 4096, // raw: one host page
    zeroesMayUnmap: qcow2 && !snapshot,
  });
}

/** Builds the implicit device of a `-drive ...,if=virtio`. */
export function buildVirtioDrive(drive: QemuOpts, ctx: BuildContext): VirtioBlk { return makeBlk(drive, null, ctx); }

/** Builds `-device virtio-blk-device,drive=ID` on a `-drive ...,if=none,id=ID`. */
export function buildBlkDevice(o: QemuOpts, ctx: BuildContext): VirtioBlk {
  checkProps(o, DEVICE_PROPS, '-device');
  const id = o.props.get('drive');
  if (id === undefined) throw new OptsError(`-device ${o.text}: drive=ID is required`);
  const drive = ctx.drive(id);
  if ((drive.props.get('if') ?? 'virtio') !== 'none') throw new OptsError(`-drive ${drive.text} already has its own device (use if=none with -device)`);
  return makeBlk(drive, o, ctx);
}
