/**
 * The host side of a virtio-net device: something that carries Ethernet
 * frames (without any virtio header) to and from a network — a socket to
 * another VMM, a user-mode network stack, or a test loopback. Backends
 * live under src/host/ (or in tests); the device only sees this interface.
 *
 * Flow control goes both ways: `send` reports congestion so the device
 * stops taking the guest's transmit buffers until `onWritable`, and the
 * device can pause reception while the guest has no receive buffers.
 */

/** A network backend for one virtio-net device. */
export interface NetBackend {
  /**
   * Sends one Ethernet frame. Returns false when the backend is congested:
   * the frame was accepted, but the caller should send no more until
   * `onWritable` is called.
   */
  send(frame: Uint8Array): boolean;
  /** Set by the device: called with each frame received from the network (the device may keep the array). */
  onReceive: (frame: Uint8Array) => void;
  /** Set by the device: called when a congested backend can take frames again. */
  onWritable: () => void;
  /** Stops (true) or restarts (false) calls to `onReceive`; a backend without flow control may ignore it. */
  setReceivePaused(paused: boolean): void;
  /** Closes the backend (sockets, helper processes); no callbacks happen afterwards. */
  close(): void;
}

/** A backend connected to nothing: transmitted frames vanish, nothing is received (a NIC with no cable). */
export class NullNetBackend implements NetBackend {
  onReceive: (frame: Uint8Array) => void = () => {};
  onWritable: () => void = () => {};
  /** Frames sent (and dropped). */
  sent = 0;
  send(): boolean { this.sent++; return true; }
  setReceivePaused(): void { /* nothing is ever received */ }
  close(): void { /* nothing to release */ }
}
