/**
 * virtio-console (virtio 1.2 §5.3) with a single port and no
 * VIRTIO_CONSOLE_F_MULTIPORT: queue 0 (receiveq) carries host input to the
 * guest, queue 1 (transmitq) guest output to the host. Linux's
 * virtio_console driver makes port 0 of such a device the hvc0 console, so
 * `console=hvc0` puts the kernel console and the shell on it.
 *
 * Host input arrives asynchronously (`pushInput`); it is kept in a bounded
 * buffer until the driver has queued receive buffers, so keystrokes typed
 * before the driver attaches are delivered once it does.
 *
 * Optional features: VIRTIO_CONSOLE_F_SIZE when the host terminal size is
 * known (config cols/rows), VIRTIO_CONSOLE_F_EMERG_WRITE (single characters
 * written to config emerg_wr go straight to the host).
 */
import { directEntry, type GuestEntry, type VirtioDevice, type VirtioContext } from './mmio.js';
import { VirtqError } from './queue.js';

/** Device ID of the console (virtio 1.2 §5: 3). */
export const VIRTIO_ID_CONSOLE = 3;
/** Feature bits (virtio 1.2 §5.3.3). */
export const VIRTIO_CONSOLE_F_SIZE = 0, VIRTIO_CONSOLE_F_MULTIPORT = 1, VIRTIO_CONSOLE_F_EMERG_WRITE = 2;
/** Queues of port 0 (virtio 1.2 §5.3.2): receiveq, transmitq. */
export const CONSOLE_Q_RX = 0, CONSOLE_Q_TX = 1;
/** Config layout (virtio 1.2 §5.3.4): le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr. */
const CFG_COLS = 0, CFG_ROWS = 2, CFG_MAX_NR_PORTS = 4, CFG_EMERG_WR = 8, CFG_BYTES = 12;
/** Host input kept while the guest has no receive buffers (as much as the UART path keeps). */
export const CONSOLE_INPUT_MAX = 65536;

/** Where the console's output goes (the host console, or a -chardev). */
export interface ConsoleSink {
  /** Sends guest output bytes to the host. */
  write(bytes: Uint8Array): void;
  /** True while the sink wants no more output: the device leaves transmit buffers queued until `resumeOutput()`. */
  blocked?(): boolean;
}

/**
 * The host console as a device backend: output, input subscription and
 * (optionally) the terminal size. A VMM gives this to virtio-console (and
 * may share it with the UART).
 */
export interface ConsolePort extends ConsoleSink {
  /** Subscribes to host console input; returns the unsubscribe function. */
  onInput(listener: (bytes: Uint8Array) => void): () => void;
  /** The host terminal's size, or null when unknown (then F_SIZE is not offered). */
  size?(): { cols: number; rows: number } | null;
  /** Subscribes to terminal size changes; returns the unsubscribe function. */
  onResize?(listener: () => void): () => void;
  /** Subscribes to the end of a `blocked()` spell (output may flow again); returns the unsubscribe function. */
  onDrain?(listener: () => void): () => void;
  /** Stops (true) or restarts (false) host input, so that input waiting for the guest stays within CONSOLE_INPUT_MAX. */
  pauseInput?(paused: boolean): void;
}

/** Construction options. */
export interface ConsoleOptions {
  /** Initial terminal size; when given, VIRTIO_CONSOLE_F_SIZE is offered. */
  size?: { cols: number; rows: number } | null;
  /** Wakes the VMM's run loop after input raised an interrupt outside a guest access. */
  wake?: () => void;
  /** Runs host input's delivery, which touches guest memory. */
  enter?: GuestEntry;
  /** Called when every byte of pending host input has reached the guest. */
  inputDrained?: () => void;
}

/** The single-port virtio console. */
export class VirtioConsole implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_CONSOLE;
  readonly name = 'console';
  readonly numQueues = 2;
  readonly featuresLo: number;
  readonly featuresHi = 0;
  /** Bytes sent to and received from the guest so far. */
  bytesIn = 0;
  bytesOut = 0;
  /** Host input dropped because the guest was not reading and the buffer was full. */
  bytesDropped = 0;
  private readonly sink: ConsoleSink;
  private readonly wake: () => void;
  private readonly enter: GuestEntry;
  private readonly inputDrained: () => void;
  private ctx: VirtioContext | null = null;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private cols = 0;
  private rows = 0;
  private readonly cfg = new Uint8Array(CFG_BYTES);
  private readonly cfgView = new DataView(this.cfg.buffer);

  constructor(sink: ConsoleSink, opts: ConsoleOptions = {}) {
    this.sink = sink;
    this.wake = opts.wake ?? (() => {});
    this.enter = opts.enter ?? directEntry;
    this.inputDrained = opts.inputDrained ?? (() => {});
    let f = 1 << VIRTIO_CONSOLE_F_EMERG_WRITE;
    if (opts.size) { f |= 1 << VIRTIO_CONSOLE_F_SIZE; this.cols = opts.size.cols; this.rows = opts.size.rows; }
    this.featuresLo = f;
  }

  /** Queues host input for the guest; returns the bytes accepted (the rest is dropped: the buffer is full). */
  pushInput(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, CONSOLE_INPUT_MAX - this.pendingBytes);
    this.bytesDropped += bytes.length - n;
    if (n > 0) { this.pending.push(bytes.slice(0, n)); this.pendingBytes += n; }
    const ctx = this.ctx;
    if (ctx) {
      try {
        if (this.enter(() => this.deliver(ctx))) this.wake();
      } catch (e) {
        if (e instanceof VirtqError) ctx.fail(e.message); else throw e;
      }
    }
    return n;
  }

  /** Sends transmit buffers left queued while the sink was blocked (call when it drains). */
  resumeOutput(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    try {
      if (this.enter(() => this.transmit(ctx))) this.wake();
    } catch (e) {
      if (e instanceof VirtqError) ctx.fail(e.message); else throw e;
    }
  }

  /** Host input bytes waiting for guest receive buffers. */
  get pendingInput(): number { return this.pendingBytes; }

  /** Sets the terminal size (only meaningful when F_SIZE is offered) and tells the driver (§5.3.6). */
  resize(cols: number, rows: number): void {
    if ((this.featuresLo & (1 << VIRTIO_CONSOLE_F_SIZE)) === 0 || (cols === this.cols && rows === this.rows)) return;
    this.cols = cols; this.rows = rows;
    if (this.ctx) { this.ctx.configChanged(); this.wake(); }
  }

  configRead(offset: number, size: number): number {
    const sized = (this.featuresLo & (1 << VIRTIO_CONSOLE_F_SIZE)) !== 0;
    this.cfgView.setUint16(CFG_COLS, sized ? this.cols : 0, true);
    this.cfgView.setUint16(CFG_ROWS, sized ? this.rows : 0, true);
    this.cfgView.setUint32(CFG_MAX_NR_PORTS, 1, true);
    this.cfgView.setUint32(CFG_EMERG_WR, 0, true);
    if (offset < 0 || offset + size > CFG_BYTES) return 0;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.cfg[offset + i]!;
    return v | 0;
  }

  configWrite(offset: number, _size: number, value: number): void {
    // emerg_wr: the driver writes one character for immediate output (virtio 1.2 §5.3.4, §5.3.6.1).
    if (offset === CFG_EMERG_WR && (this.featuresLo & (1 << VIRTIO_CONSOLE_F_EMERG_WRITE)) !== 0) {
      this.sink.write(Uint8Array.of(value & 0xff));
      this.bytesOut++;
    }
  }

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.transmit(ctx);
    this.deliver(ctx);
    // Linux reads cols/rows only on a configuration change: announce the initial size.
    if (this.featuresLo & (1 << VIRTIO_CONSOLE_F_SIZE)) ctx.configChanged();
  }

  reset(): void { this.ctx = null; }

  queueNotify(ctx: VirtioContext, q: number): void {
    if (q === CONSOLE_Q_TX) this.transmit(ctx);
    else if (q === CONSOLE_Q_RX) this.deliver(ctx);
  }

  /** Sends every queued transmit buffer to the host (virtio 1.2 §5.3.6.2), stopping while the sink is blocked; true if any was used. */
  private transmit(ctx: VirtioContext): boolean {
    const queue = ctx.queues[CONSOLE_Q_TX]!, chain = ctx.chain;
    let used = false;
    while (!(this.sink.blocked?.() ?? false) && queue.pop(ctx.mem, chain)) {
      const data = chain.read(ctx.mem, 0, chain.readBytes);
      if (data.length) { this.sink.write(data); this.bytesOut += data.length; }
      queue.push(ctx.mem, chain.head, 0);
      used = true;
    }
    if (used) ctx.notifyUsed(CONSOLE_Q_TX);
    return used;
  }

  /** Fills the guest's receive buffers with pending input; true if any buffer was used. */
  private deliver(ctx: VirtioContext): boolean {
    const queue = ctx.queues[CONSOLE_Q_RX]!, chain = ctx.chain;
    let used = false;
    while (this.pendingBytes > 0 && queue.pop(ctx.mem, chain)) {
      let written = 0;
      while (this.pending.length > 0 && written < chain.writeBytes) {
        const head = this.pending[0]!;
        const n = chain.write(ctx.mem, written, head.subarray(0, chain.writeBytes - written));
        written += n;
        if (n === head.length) this.pending.shift(); else this.pending[0] = head.subarray(n);
        this.pendingBytes -= n;
        if (n === 0) break;
      }
      this.bytesIn += written;
      queue.push(ctx.mem, chain.head, written);
      used = true;
    }
    if (used) ctx.notifyUsed(CONSOLE_Q_RX);
    if (used && this.pendingBytes === 0) this.inputDrained();
    return used;
  }
}
