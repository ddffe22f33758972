/**
 * SiFive test finisher ("sifive,test0"/"sifive,test1", also a "syscon"),
 * as on QEMU's `virt` board at 0x0010_0000. A 32-bit write to offset 0
 * carries a command in bits 15:0 and, for FAIL, an exit status in bits
 * 31:16. Command values: QEMU `include/hw/misc/sifive_test.h`
 * (`FINISHER_FAIL` 0x3333, `FINISHER_PASS` 0x5555, `FINISHER_RESET` 0x7777);
 * the status-in-bits-31:16 exit code follows QEMU's `hw/misc/sifive_test.c`.
 * Linux drives it through the `syscon-poweroff` / `syscon-reboot` nodes.
 */
import type { MmioDevice, PowerControl } from './device.js';

/** Command: fail, exit status in bits 31:16 (QEMU sifive_test.h `FINISHER_FAIL`). */
export const FINISHER_FAIL = 0x3333;
/** Command: pass / power off with status 0 (QEMU sifive_test.h `FINISHER_PASS`). */
export const FINISHER_PASS = 0x5555;
/** Command: reset the machine (QEMU sifive_test.h `FINISHER_RESET`). */
export const FINISHER_RESET = 0x7777;
/** Size of the device window (QEMU virt.c `VIRT_TEST`). */
export const SYSCON_SIZE = 0x1000;

/** The SiFive test finisher: turns writes into poweroff/reset requests. */
export class SifiveTest implements MmioDevice {
  /** Device name for diagnostics. */
  readonly name = 'sifive-test';

  /** A finisher reporting to `power`. */
  constructor(private readonly power: PowerControl) {}

  /** Reads as zero. */
  read(_offset: number, _size: number, out: Int32Array): void {
    out[0] = 0;
    out[1] = 0;
  }

  /** Acts on 4- or 8-byte writes at offset 0 (the low word); other writes are ignored. */
  write(offset: number, size: number, lo: number, _hi: number): void {
    if (offset !== 0 || size < 4) return;
    const cmd = lo & 0xffff;
    const status = (lo >>> 16) & 0xffff;
    if (cmd === FINISHER_FAIL) this.power.poweroff(status);
    else if (cmd === FINISHER_PASS) this.power.poweroff(0);
    else if (cmd === FINISHER_RESET) this.power.reset();
  }
}
