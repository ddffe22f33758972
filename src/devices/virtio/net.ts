/**
 * virtio-net, the network device (virtio 1.2 §5.1), with one receive and
 * one transmit queue and no control queue. It offers only
 * VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS and, when an MTU is configured,
 * VIRTIO_NET_F_MTU — no checksum or segmentation offloads and no
 * mergeable receive buffers — so every frame is a complete Ethernet frame
 * whose virtio_net_hdr carries nothing but num_buffers = 1.
 *
 * Transmit: each chain is a 12-byte header (ignored) followed by the
 * frame, which goes to the backend. Receive: frames from the backend wait
 * in a bounded queue until the driver posts receive buffers; a frame too
 * large for the buffer is dropped and counted. When the queue fills, the
 * backend is asked to pause, so a flow-controlled backend never loses
 * frames; one without flow control loses what does not fit.
 */
import { directEntry, type GuestEntry, type VirtioDevice, type VirtioContext } from './mmio.js';
import { DescChain, VirtqError } from './queue.js';
import type { NetBackend } from './net-backend.js';

/** Device ID of the network device (virtio 1.2 §5: 1). */
export const VIRTIO_ID_NET = 1;
/** Feature bits (virtio 1.2 §5.1.3). */
export const VIRTIO_NET_F_MTU = 3, VIRTIO_NET_F_MAC = 5, VIRTIO_NET_F_STATUS = 16;
/** Link status bit of the `status` config field (virtio 1.2 §5.1.4). */
export const VIRTIO_NET_S_LINK_UP = 1;
/**
 * Size of struct virtio_net_hdr with VIRTIO_F_VERSION_1: flags, gso_type,
 * hdr_len, gso_size, csum_start, csum_offset, num_buffers (virtio 1.2 §5.1.6).
 */
export const VIRTIO_NET_HDR_LEN = 12;
/** Offset of num_buffers in the header (virtio 1.2 §5.1.6). */
const HDR_NUM_BUFFERS = 10;
/** Queue indices: receiveq1 and transmitq1 (virtio 1.2 §5.1.2). */
export const NET_RX_QUEUE = 0, NET_TX_QUEUE = 1;
/**
 * The largest frame carried in either direction: QEMU's NET_BUFSIZE
 * (64 KiB + 4 KiB), which also bounds the frames its socket netdevs exchange.
 */
export const NET_MAX_FRAME = 65536 + 4096;
/** Received frames held while the guest has no receive buffers; more are dropped. */
export const NET_RX_QUEUE_MAX = 256;
/** Backlog at which the backend is paused, and at which it is resumed. */
const RX_PAUSE_AT = 128, RX_RESUME_AT = 32;
/**
 * Config space layout (virtio 1.2 §5.1.4): mac[6] at 0, status at 6,
 * max_virtqueue_pairs at 8, mtu at 10, speed at 12, duplex at 16; 24 bytes
 * with the RSS fields (zero here).
 */
const CFG_MAC = 0, CFG_STATUS = 6, CFG_MAX_VQ_PAIRS = 8, CFG_MTU = 10, CFG_SPEED = 12, CFG_DUPLEX = 16, CFG_SIZE = 24;
/** speed = 0xffffffff and duplex = 0xff mean "unknown" (virtio 1.2 §5.1.4). */
const SPEED_UNKNOWN = 0xffffffff, DUPLEX_UNKNOWN = 0xff;

/** How a virtio-net device is built. */
export interface VirtioNetOptions {
  /** The 6-byte MAC address offered in config space. */
  mac: Uint8Array;
  /** Offer VIRTIO_NET_F_MTU with this MTU (68..65535); undefined = not offered. */
  mtu?: number;
  /** Where frames go and come from. */
  backend: NetBackend;
  /** Wakes the VMM run loop after an asynchronous event (a received frame). */
  wake?: () => void;
  /** Runs work started by the backend (a received frame, a writable socket) that touches guest memory. */
  enter?: GuestEntry;
}

/** The virtio network device. */
export class VirtioNet implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_NET;
  readonly name = 'net';
  readonly numQueues = 2;
  readonly featuresLo: number;
  readonly featuresHi = 0;
  readonly backend: NetBackend;
  /** Frames and bytes delivered to the guest. */
  rxFrames = 0;
  rxBytes = 0;
  /** Received frames dropped: the device was not running or the backlog was full. */
  rxDropped = 0;
  /** Received frames dropped because they did not fit the guest's buffer. */
  rxTooBig = 0;
  /** Frames and bytes the guest transmitted. */
  txFrames = 0;
  txBytes = 0;
  /** Transmit chains without a complete header, or frames over NET_MAX_FRAME. */
  txDropped = 0;
  private readonly config = new Uint8Array(CFG_SIZE);
  private readonly wake: () => void;
  private readonly enter: GuestEntry;
  private ctx: VirtioContext | null = null;
  private readonly rxQueue: Uint8Array[] = [];
  private rxPaused = false;
  private txBlocked = false;
  private readonly rxChain = new DescChain();
  private readonly txChain = new DescChain();
  private readonly rxHeader = new Uint8Array(VIRTIO_NET_HDR_LEN);

  constructor(opts: VirtioNetOptions) {
    if (opts.mac.length !== 6) throw new RangeError('virtio-net: a MAC address has 6 bytes');
    this.backend = opts.backend;
    this.wake = opts.wake ?? (() => {});
    this.enter = opts.enter ?? directEntry;
    let f = (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_NET_F_STATUS);
    const dv = new DataView(this.config.buffer);
    this.config.set(opts.mac, CFG_MAC);
    dv.setUint16(CFG_STATUS, VIRTIO_NET_S_LINK_UP, true);
    dv.setUint16(CFG_MAX_VQ_PAIRS, 1, true);
    if (opts.mtu !== undefined) {
      // 68 is the minimum IPv4 MTU (RFC 791); the field is 16 bits (§5.1.4).
      if (!Number.isInteger(opts.mtu) || opts.mtu < 68 || opts.mtu > 65535) throw new RangeError(`virtio-net: bad MTU ${opts.mtu}`);
      dv.setUint16(CFG_MTU, opts.mtu, true);
      f |= 1 << VIRTIO_NET_F_MTU;
    }
    dv.setUint32(CFG_SPEED, SPEED_UNKNOWN, true);
    this.config[CFG_DUPLEX] = DUPLEX_UNKNOWN;
    this.featuresLo = f;
    // Without VIRTIO_NET_F_MRG_RXBUF the device sets num_buffers to 1 (§5.1.6.4.1).
    new DataView(this.rxHeader.buffer).setUint16(HDR_NUM_BUFFERS, 1, true);
    this.backend.onReceive = (frame) => this.receive(frame);
    this.backend.onWritable = () => { this.txBlocked = false; if (this.enter(() => this.guard(() => this.transmit()))) this.wake(); };
  }

  /** The MAC address in config space. */
  get mac(): Uint8Array { return this.config.slice(CFG_MAC, CFG_MAC + 6); }

  /** Received frames waiting for guest buffers. */
  get rxBacklog(): number { return this.rxQueue.length; }

  configRead(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | (this.config[offset + i] ?? 0);
    return v | 0;
  }

  configWrite(): void { /* the MAC is read-only without VIRTIO_NET_F_CTRL_MAC_ADDR (§5.1.4.2) */ }

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.transmit();
    this.deliver();
  }

  queueNotify(ctx: VirtioContext, q: number): void {
    this.ctx = ctx;
    if (q === NET_RX_QUEUE) this.deliver();
    else if (q === NET_TX_QUEUE) this.transmit();
  }

  reset(): void {
    this.ctx = null;
    this.rxQueue.length = 0;
    this.txBlocked = false;
    this.setPaused(false);
  }

  /** Runs `f` outside the transport's register path: a malformed ring fails the device. Returns whether `f` did any work. */
  private guard(f: () => number): boolean {
    const ctx = this.ctx;
    if (!ctx) return false;
    try { return f() > 0; } catch (e) {
      if (e instanceof VirtqError) { ctx.fail(e.message); this.ctx = null; return true; }
      throw e;
    }
  }

  private setPaused(p: boolean): void {
    if (this.rxPaused === p) return;
    this.rxPaused = p;
    this.backend.setReceivePaused(p);
  }

  /** A frame from the backend: queue it and hand it to the guest if it has buffers. */
  private receive(frame: Uint8Array): void {
    if (!this.ctx || this.rxQueue.length >= NET_RX_QUEUE_MAX) { this.rxDropped++; return; }
    this.rxQueue.push(frame);
    if (this.enter(() => this.guard(() => this.deliver()))) this.wake();
    if (this.rxQueue.length >= RX_PAUSE_AT) this.setPaused(true);
  }

  /** Copies queued frames into the guest's receive buffers; returns how many were delivered. */
  private deliver(): number {
    const ctx = this.ctx;
    if (!ctx) return 0;
    const q = ctx.queues[NET_RX_QUEUE]!, mem = ctx.mem, chain = this.rxChain, pending = this.rxQueue;
    let n = 0, taken = 0;
    while (taken < pending.length && q.pop(mem, chain)) {
      let placed = false;
      while (taken < pending.length) {
        const f = pending[taken++]!;
        if (VIRTIO_NET_HDR_LEN + f.length > chain.writeBytes) { this.rxTooBig++; continue; }
        chain.write(mem, 0, this.rxHeader);
        chain.write(mem, VIRTIO_NET_HDR_LEN, f);
        q.push(mem, chain.head, VIRTIO_NET_HDR_LEN + f.length);
        this.rxFrames++; this.rxBytes += f.length; n++;
        placed = true;
        break;
      }
      // Every remaining frame was too large: give the unused buffer back (it was not pushed).
      if (!placed) q.lastAvail = (q.lastAvail - 1) & 0xffff;
    }
    if (taken > 0) pending.splice(0, taken);
    if (n > 0) ctx.notifyUsed(NET_RX_QUEUE);
    if (this.rxPaused && pending.length <= RX_RESUME_AT) this.setPaused(false);
    return n;
  }

  /** Sends the guest's queued transmit chains to the backend; returns how many were consumed. */
  private transmit(): number {
    const ctx = this.ctx;
    if (!ctx || this.txBlocked) return 0;
    const q = ctx.queues[NET_TX_QUEUE]!, mem = ctx.mem, chain = this.txChain;
    let n = 0;
    while (!this.txBlocked && q.pop(mem, chain)) {
      const len = chain.readBytes - VIRTIO_NET_HDR_LEN;
      const frame = len > 0 && len <= NET_MAX_FRAME ? chain.read(mem, VIRTIO_NET_HDR_LEN, len) : null;
      q.push(mem, chain.head, 0);
      n++;
      if (!frame) { this.txDropped++; continue; }
      this.txFrames++; this.txBytes += len;
      if (!this.backend.send(frame)) this.txBlocked = true;
    }
    if (n > 0) ctx.notifyUsed(NET_TX_QUEUE);
    return n;
  }
}
