/**
 * Contracts between emulated devices and the rest of the machine.
 *
 * A device never sees the hart: the vCPU exits on an MMIO access (as KVM
 * does), the VMM finds the device on the bus and calls `read`/`write`.
 * Devices raise interrupts through `IrqSink` lines, get time from a
 * `Clock`, and talk to the host through small backend interfaces, so the
 * same devices can later run in a browser.
 */

/** A memory-mapped device occupying [base, base + size) of guest physical space. */
export interface MmioDevice {
  /** Short name for diagnostics and the device tree. */
  readonly name: string;
  /**
   * Reads `size` bytes (1, 2, 4 or 8) at `offset`; writes the value into
   * out[0] (low 32 bits) and out[1] (high 32 bits).
   */
  read(offset: number, size: number, out: Int32Array): void;
  /** Writes `size` bytes at `offset`; the value is (lo, hi). */
  write(offset: number, size: number, lo: number, hi: number): void;
}

/** A level-triggered interrupt input (a PLIC source, or a hart's mip bit). */
export interface IrqSink {
  /** Drives interrupt line `irq` to `level`. */
  setIrq(irq: number, level: boolean): void;
}

/** Monotonic time source for timers and RTCs. */
export interface Clock {
  /** Nanoseconds since an arbitrary origin, monotonic. */
  monotonicNs(): number;
  /** Nanoseconds since the Unix epoch (wall clock), for RTCs. */
  realtimeNs(): number;
}

/** Where a character device's output goes and its input comes from. */
export interface CharBackend {
  /** Sends bytes from the guest to the host. */
  write(bytes: Uint8Array): void;
}

/** Receives a machine-level request from a device (poweroff/reset via syscon, HTIF exit). */
export interface PowerControl {
  /** Guest asked to power off with an exit status. */
  poweroff(status: number): void;
  /** Guest asked to reset. */
  reset(): void;
}
