/**
 * The virtio-mmio transport, version 2 (virtio 1.2 §4.2): the register
 * block the guest programs to negotiate features, set up queues and kick
 * the device. A device (blk, net, rng, ...) implements `VirtioDevice` and
 * does not know which transport carries it.
 *
 * A misbehaving driver (bad ring addresses, malformed descriptors) puts
 * the device into DEVICE_NEEDS_RESET (§2.1.2) and raises a configuration
 * change interrupt; the host is never at risk.
 */
import type { MmioDevice, IrqSink } from '../device.js';
import {
  SplitQueue, DescChain, VirtqError, QUEUE_MAX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_RING_EVENT_IDX,
  type DmaMemory,
} from './queue.js';
import { VIRTIO_MMIO_MAGIC, VIRTIO_VENDOR_QEMU } from './mmio-empty.js';

/** Device status bits (virtio 1.2 §2.1). */
export const STATUS_ACKNOWLEDGE = 1, STATUS_DRIVER = 2, STATUS_DRIVER_OK = 4, STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 64, STATUS_FAILED = 128;
/** VIRTIO_F_VERSION_1 is feature bit 32 (§6): bit 0 of the high word. */
export const VIRTIO_F_VERSION_1_HI = 1;
/** InterruptStatus bits (§4.2.2): used buffer, configuration change. */
export const INT_VRING = 1, INT_CONFIG = 2;

/** MMIO register offsets (virtio 1.2 §4.2.2, Table "MMIO Device Register Layout"). */
const R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_VENDOR_ID = 0x00c, R_DEVICE_FEATURES = 0x010;
const R_DEVICE_FEATURES_SEL = 0x014, R_DRIVER_FEATURES = 0x020, R_DRIVER_FEATURES_SEL = 0x024, R_QUEUE_SEL = 0x030;
const R_QUEUE_NUM_MAX = 0x034, R_QUEUE_NUM = 0x038, R_QUEUE_READY = 0x044, R_QUEUE_NOTIFY = 0x050;
const R_INTERRUPT_STATUS = 0x060, R_INTERRUPT_ACK = 0x064, R_STATUS = 0x070;
const R_QUEUE_DESC_LOW = 0x080, R_QUEUE_DESC_HIGH = 0x084, R_QUEUE_DRIVER_LOW = 0x090, R_QUEUE_DRIVER_HIGH = 0x094;
const R_QUEUE_DEVICE_LOW = 0x0a0, R_QUEUE_DEVICE_HIGH = 0x0a4, R_SHM_LEN_LOW = 0x0b0, R_SHM_LEN_HIGH = 0x0b4;
const R_SHM_BASE_LOW = 0x0b8, R_SHM_BASE_HIGH = 0x0bc, R_CONFIG_GENERATION = 0x0fc, R_CONFIG = 0x100;

/**
 * Runs device work the host starts outside the run loop (a received frame,
 * console input, a polling timer) that touches guest memory. The VMM's
 * entry makes sure the host is not changing the VM's memory map at the
 * time (a VM idle at the host's safe point leaves idle for the call);
 * without a host pool it is a plain call.
 */
export type GuestEntry = <T>(work: () => T) => T;
/** The entry of a VM whose memory only its own thread changes: a plain call. */
export const directEntry: GuestEntry = (work) => work();

/** What the transport gives a device. */
export interface VirtioContext {
  /** Guest RAM for DMA (bounds-checked by the queue). */
  readonly mem: DmaMemory;
  /** The device's queues. */
  readonly queues: SplitQueue[];
  /** A reusable chain object for popping requests. */
  readonly chain: DescChain;
  /** Signals used buffers on queue `q` (raises the interrupt if the driver wants one). */
  notifyUsed(q: number): void;
  /** Signals a configuration change. */
  configChanged(): void;
  /** Marks the device broken: DEVICE_NEEDS_RESET (call with the reason). */
  fail(reason: string): void;
  /** The negotiated feature bits (low and high words). */
  readonly featuresLo: number;
  readonly featuresHi: number;
}

/** A virtio device model (blk, net, rng, console, balloon). */
export interface VirtioDevice {
  /** Virtio device ID (virtio 1.2 §5: 1 net, 2 block, 3 console, 4 entropy, 5 balloon). */
  readonly deviceId: number;
  /** Short name for diagnostics. */
  readonly name: string;
  /** Number of virtqueues. */
  readonly numQueues: number;
  /** Device-specific feature bits (VERSION_1, INDIRECT_DESC and EVENT_IDX are added by the transport). */
  readonly featuresLo: number;
  readonly featuresHi: number;
  /** Reads the device-specific configuration space. */
  configRead(offset: number, size: number): number;
  /** Writes the device-specific configuration space. */
  configWrite(offset: number, size: number, value: number): void;
  /** The driver set DRIVER_OK: the device may start. */
  activate(ctx: VirtioContext): void;
  /** The driver kicked queue `q`. */
  queueNotify(ctx: VirtioContext, q: number): void;
  /** The driver reset the device. */
  reset(): void;
}

/** One virtio-mmio transport slot with a device behind it. */
export class VirtioMmio implements MmioDevice, VirtioContext {
  readonly name: string;
  readonly device: VirtioDevice;
  readonly mem: DmaMemory;
  readonly queues: SplitQueue[] = [];
  readonly chain = new DescChain();
  private readonly irq: IrqSink;
  private readonly irqLine: number;
  private status = 0;
  private interruptStatus = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverLo = 0;
  private driverHi = 0;
  featuresLo = 0;
  featuresHi = 0;
  private queueSel = 0;
  private configGeneration = 0;
  /** Last error that forced DEVICE_NEEDS_RESET (for diagnostics and tests). */
  lastError = '';

  constructor(device: VirtioDevice, mem: DmaMemory, irq: IrqSink, irqLine: number) {
    this.device = device;
    this.name = `virtio-mmio:${device.name}`;
    this.mem = mem;
    this.irq = irq;
    this.irqLine = irqLine;
    for (let i = 0; i < device.numQueues; i++) this.queues.push(new SplitQueue());
  }

  private offeredLo(): number { return this.device.featuresLo | (1 << VIRTIO_F_RING_INDIRECT_DESC) | (1 << VIRTIO_F_RING_EVENT_IDX); }
  private offeredHi(): number { return this.device.featuresHi | VIRTIO_F_VERSION_1_HI; }

  private updateIrq(): void { this.irq.setIrq(this.irqLine, this.interruptStatus !== 0); }

  notifyUsed(q: number): void {
    const queue = this.queues[q];
    if (!queue || !queue.shouldNotify(this.mem)) return;
    this.interruptStatus |= INT_VRING;
    this.updateIrq();
  }

  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) | 0;
    this.interruptStatus |= INT_CONFIG;
    this.updateIrq();
  }

  fail(reason: string): void {
    this.lastError = reason;
    if (this.status & STATUS_DEVICE_NEEDS_RESET) return;
    this.status |= STATUS_DEVICE_NEEDS_RESET;
    for (const q of this.queues) q.ready = false;
    this.configChanged();
  }

  private doReset(): void {
    this.status = 0; this.interruptStatus = 0; this.driverLo = this.driverHi = 0;
    this.featuresLo = this.featuresHi = 0; this.queueSel = 0; this.lastError = '';
    for (const q of this.queues) q.reset();
    this.device.reset();
    this.updateIrq();
  }

  /** Register reads (MmioDevice). */
  read(offset: number, size: number, out: Int32Array): void {
    out[1] = 0;
    if (offset >= R_CONFIG) { out[0] = this.device.configRead(offset - R_CONFIG, size); return; }
    const q = this.queues[this.queueSel];
    let v: number;
    switch (offset) {
      case R_MAGIC: v = VIRTIO_MMIO_MAGIC; break;
      case R_VERSION: v = 2; break;
      case R_DEVICE_ID: v = this.device.deviceId; break;
      case R_VENDOR_ID: v = VIRTIO_VENDOR_QEMU; break;
      case R_DEVICE_FEATURES: v = this.deviceFeaturesSel === 0 ? this.offeredLo() : this.deviceFeaturesSel === 1 ? this.offeredHi() : 0; break;
      case R_QUEUE_NUM_MAX: v = q ? QUEUE_MAX : 0; break;
      case R_QUEUE_READY: v = q?.ready ? 1 : 0; break;
      case R_INTERRUPT_STATUS: v = this.interruptStatus; break;
      case R_STATUS: v = this.status; break;
      case R_SHM_LEN_LOW: case R_SHM_LEN_HIGH: v = -1; break; // no shared memory regions (§4.2.2)
      case R_SHM_BASE_LOW: case R_SHM_BASE_HIGH: v = -1; break;
      case R_CONFIG_GENERATION: v = this.configGeneration; break;
      default: v = 0;
    }
    out[0] = v;
  }

  /** Register writes (MmioDevice); all registers are 32-bit, so the high word is unused. */
  write(offset: number, size: number, lo: number, _hi = 0): void {
    if (offset >= R_CONFIG) { this.device.configWrite(offset - R_CONFIG, size, lo); return; }
    const q = this.queues[this.queueSel];
    const setAddr = (field: 'descAddr' | 'availAddr' | 'usedAddr', high: boolean): void => {
      if (!q || q.ready) return; // writes while ready are ignored (§4.2.2.2)
      const cur = q[field];
      q[field] = high ? (lo >>> 0) * 4294967296 + (cur % 4294967296) : Math.floor(cur / 4294967296) * 4294967296 + (lo >>> 0);
    };
    switch (offset) {
      case R_DEVICE_FEATURES_SEL: this.deviceFeaturesSel = lo >>> 0; break;
      case R_DRIVER_FEATURES_SEL: this.driverFeaturesSel = lo >>> 0; break;
      case R_DRIVER_FEATURES:
        if (this.status & STATUS_FEATURES_OK) break;
        if (this.driverFeaturesSel === 0) this.driverLo = lo & this.offeredLo();
        else if (this.driverFeaturesSel === 1) this.driverHi = lo & this.offeredHi();
        break;
      case R_QUEUE_SEL: this.queueSel = lo >>> 0; break;
      case R_QUEUE_NUM: if (q && !q.ready) q.num = lo >>> 0; break;
      case R_QUEUE_READY:
        if (!q) break;
        if ((lo & 1) === 0) { q.ready = false; break; }
        try {
          q.validate(this.mem);
          q.eventIdx = (this.featuresLo & (1 << VIRTIO_F_RING_EVENT_IDX)) !== 0;
          q.indirect = (this.featuresLo & (1 << VIRTIO_F_RING_INDIRECT_DESC)) !== 0;
          q.ready = true;
        } catch (e) {
          if (e instanceof VirtqError) this.fail(e.message); else throw e;
        }
        break;
      case R_QUEUE_NOTIFY: {
        const n = lo & 0xffff;
        if ((this.status & STATUS_DRIVER_OK) === 0 || (this.status & STATUS_DEVICE_NEEDS_RESET) || !this.queues[n]) break;
        try { this.device.queueNotify(this, n); } catch (e) {
          if (e instanceof VirtqError) this.fail(e.message); else throw e;
        }
        break;
      }
      case R_INTERRUPT_ACK: this.interruptStatus &= ~lo; this.updateIrq(); break;
      case R_STATUS: {
        if (lo === 0) { this.doReset(); break; }
        const was = this.status;
        let nv = (lo & 0xff) | (was & STATUS_DEVICE_NEEDS_RESET);
        if ((nv & STATUS_FEATURES_OK) && !(was & STATUS_FEATURES_OK)) {
          // Legacy-free transport: the driver must accept VERSION_1 (§6.1).
          if ((this.driverHi & VIRTIO_F_VERSION_1_HI) === 0) nv &= ~STATUS_FEATURES_OK;
          else { this.featuresLo = this.driverLo; this.featuresHi = this.driverHi; }
        }
        this.status = nv;
        if ((nv & STATUS_DRIVER_OK) && !(was & STATUS_DRIVER_OK)) {
          try { this.device.activate(this); } catch (e) {
            if (e instanceof VirtqError) this.fail(e.message); else throw e;
          }
        }
        break;
      }
      case R_QUEUE_DESC_LOW: setAddr('descAddr', false); break;
      case R_QUEUE_DESC_HIGH: setAddr('descAddr', true); break;
      case R_QUEUE_DRIVER_LOW: setAddr('availAddr', false); break;
      case R_QUEUE_DRIVER_HIGH: setAddr('availAddr', true); break;
      case R_QUEUE_DEVICE_LOW: setAddr('usedAddr', false); break;
      case R_QUEUE_DEVICE_HIGH: setAddr('usedAddr', true); break;
      default: break;
    }
  }

  /** Whether the driver has finished setup (DRIVER_OK) and the device is healthy. */
  get live(): boolean { return (this.status & STATUS_DRIVER_OK) !== 0 && (this.status & STATUS_DEVICE_NEEDS_RESET) === 0; }
}
