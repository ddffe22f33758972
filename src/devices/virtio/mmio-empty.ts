/**
 * An unoccupied virtio-mmio transport slot, as on QEMU's virt board: the
 * registers identify a version-2 transport with DeviceID 0 ("no device"),
 * so the guest's virtio_mmio driver probes it and moves on (virtio 1.2
 * §4.2.2 "MMIO Device Register Layout").
 */
import type { MmioDevice } from '../device.js';

/** MagicValue "virt" (little-endian 0x74726976), virtio 1.2 §4.2.2. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
/** Vendor ID QEMU reports ("QEMU" = 0x554d4551). */
export const VIRTIO_VENDOR_QEMU = 0x554d4551;

/** A virtio-mmio slot with no device behind it. */
export class VirtioMmioEmpty implements MmioDevice {
  readonly name = 'virtio-mmio-empty';

  /** Register reads: magic, version 2, device 0, vendor; everything else 0. */
  read(offset: number, _size: number, out: Int32Array): void {
    out[1] = 0;
    out[0] = offset === 0x000 ? VIRTIO_MMIO_MAGIC : offset === 0x004 ? 2 : offset === 0x00c ? VIRTIO_VENDOR_QEMU : 0;
  }

  /** Writes are ignored. */
  write(): void { /* no device: nothing to configure */ }
}
