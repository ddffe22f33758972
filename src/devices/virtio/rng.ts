/**
 * virtio-rng, the entropy device (virtio 1.2 §5.4): every device-writable
 * buffer the driver queues is filled from the host's cryptographic RNG
 * (Web Crypto's getRandomValues, available in Node and browsers).
 */
import type { VirtioDevice, VirtioContext } from './mmio.js';

/** Device ID of the entropy device (virtio 1.2 §5: 4). */
export const VIRTIO_ID_RNG = 4;
/** getRandomValues fills at most 65536 bytes per call (Web Crypto API). */
const RNG_CHUNK = 65536;

/** The virtio entropy source. */
export class VirtioRng implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_RNG;
  readonly name = 'rng';
  readonly numQueues = 1;
  readonly featuresLo = 0;
  readonly featuresHi = 0;
  /** Bytes handed to the guest so far. */
  bytesServed = 0;
  private readonly buf = new Uint8Array(RNG_CHUNK);

  configRead(): number { return 0; }
  configWrite(): void { /* no configuration space */ }
  activate(ctx: VirtioContext): void { this.queueNotify(ctx, 0); }
  reset(): void { /* stateless */ }

  /** Fills each queued buffer with random bytes. */
  queueNotify(ctx: VirtioContext, q: number): void {
    const queue = ctx.queues[q]!, chain = ctx.chain;
    while (queue.pop(ctx.mem, chain)) {
      const n = Math.min(chain.writeBytes, RNG_CHUNK);
      const bytes = this.buf.subarray(0, n);
      globalThis.crypto.getRandomValues(bytes);
      const written = chain.write(ctx.mem, 0, bytes);
      this.bytesServed += written;
      queue.push(ctx.mem, chain.head, written);
    }
    ctx.notifyUsed(q);
  }
}
