/**
 * Berkeley HTIF (host-target interface) as implemented by Spike's front-end
 * server (riscv-isa-sim `fesvr/htif.cc`, `device.cc`, `syscall.cc`) and used
 * by riscv-tests, riscv-pk and OpenSBI's HTIF console.
 *
 * The guest writes a 64-bit command to `tohost`: device in bits 63:56,
 * command in bits 55:48, payload in bits 47:0; the host clears `tohost`
 * when it has taken the command and answers, when a device answers, by
 * writing `fromhost` in the same format. Supported:
 * - device 0 (syscall proxy), command 0: payload bit 0 set = exit with code
 *   payload >> 1 (so 1 = pass, exit 0); bit 0 clear = payload points to a
 *   `magic_mem` block of 8 little-endian u64 (number, arg0, arg1, ...):
 *   SYS_write (64) to fd 1 or 2 goes to the console, SYS_exit (93) exits;
 *   the result goes to magic_mem[0] and fromhost gets 1.
 * - device 1 (bcd console), command 1 = putchar(payload & 0xff); command 0 =
 *   getchar, answered with (1, 0, 0x100 | ch) once input is available.
 *
 * Placement (tsvm's choice): `tohost` and `fromhost` are two separate 8-byte
 * MMIO windows at the addresses of the ELF's `tohost`/`fromhost` symbols
 * (`regions`), so they need not be adjacent and no neighbouring RAM is
 * shadowed. Commands are carried out synchronously when the low word of
 * `tohost` is written (by an 8-byte store or a 4-byte store at offset 0);
 * a 4-byte store to the high word only sets it for the next command, so
 * 32-bit code must store the high word first unless it is zero.
 */
import type { CharBackend, MmioDevice, PowerControl } from './device.js';

/** Guest physical memory as the syscall proxy sees it. */
export interface GuestMemory {
  /** Copies `len` bytes at guest physical `addr`; null if not RAM. */
  read(addr: number, len: number): Uint8Array | null;
  /** Stores `bytes` at guest physical `addr`; false if not RAM. */
  write(addr: number, bytes: Uint8Array): boolean;
}

/** An MMIO window the board maps on its bus. */
export interface HtifRegion {
  /** Guest physical base address. */
  readonly base: number;
  /** Size in bytes. */
  readonly size: number;
  /** The device serving it. */
  readonly device: MmioDevice;
}

/** Where the HTIF registers are and what they talk to. */
export interface HtifConfig {
  /** Address of the ELF's `tohost` symbol. */
  tohost: number;
  /** Address of the ELF's `fromhost` symbol. */
  fromhost: number;
  /** Console output (putchar, SYS_write). */
  console: CharBackend;
  /** Exit requests. */
  power: PowerControl;
  /** Guest RAM, for the syscall proxy. */
  memory: GuestMemory;
}

/** Size of each HTIF register window (a 64-bit register). */
export const HTIF_REG_SIZE = 8;
/** Syscall-proxy device (fesvr `syscall_t`, registered as device 0). */
export const HTIF_DEV_SYSCALL = 0;
/** Console device (fesvr `bcd_t`, registered as device 1). */
export const HTIF_DEV_CONSOLE = 1;
/** Console command: read a character (fesvr `bcd_t` command 0). */
export const HTIF_CONSOLE_GETC = 0;
/** Console command: write a character (fesvr `bcd_t` command 1). */
export const HTIF_CONSOLE_PUTC = 1;
/** riscv-pk/newlib `SYS_write` (Linux asm-generic/unistd.h number 64). */
export const SYS_WRITE = 64;
/** riscv-pk/newlib `SYS_exit` (Linux asm-generic/unistd.h number 93). */
export const SYS_EXIT = 93;

/** 2^32. */
const TWO32 = 4294967296;
/** Size of riscv-tests' magic_mem: 8 u64 words (riscv-tests `benchmarks/common/syscalls.c`). */
const MAGIC_MEM_BYTES = 64;
/** Largest SYS_write the proxy copies in one call. */
const MAX_WRITE = 1 << 20;
/** EBADF (Linux asm-generic/errno-base.h). */
const EBADF = 9;
/** ENOSYS (Linux asm-generic/errno.h). */
const ENOSYS = 38;
/** Console input bytes kept for getchar before further input is dropped. */
const INPUT_CAPACITY = 4096;

/** One of the two HTIF register windows. */
class HtifPort implements MmioDevice {
  constructor(readonly name: string, private readonly htif: Htif, private readonly isTohost: boolean) {}

  read(offset: number, size: number, out: Int32Array): void {
    const lo = this.isTohost ? this.htif.tohostLo : this.htif.fromhostLo;
    const hi = this.isTohost ? this.htif.tohostHi : this.htif.fromhostHi;
    if (size === 8) { out[0] = lo; out[1] = hi; return; }
    const word = offset >= 4 ? hi : lo;
    const shift = (offset & 3) * 8;
    out[0] = size === 4 ? word : (word >>> shift) & (size === 2 ? 0xffff : 0xff);
    out[1] = 0;
  }

  write(offset: number, size: number, lo: number, hi: number): void {
    // narrower stores to HTIF registers are used by no HTIF client and are ignored
    if (size === 8 || size === 4) this.htif.store(this.isTohost, offset, size, lo, hi);
  }
}

/** The HTIF host side: two MMIO registers plus the syscall proxy and console. */
export class Htif {
  /** Low word of tohost. */
  tohostLo = 0;
  /** High word of tohost. */
  tohostHi = 0;
  /** Low word of fromhost. */
  fromhostLo = 0;
  /** High word of fromhost. */
  fromhostHi = 0;
  /** The MMIO windows to map: tohost, then fromhost. */
  readonly regions: readonly HtifRegion[];

  private readonly input = new Uint8Array(INPUT_CAPACITY);
  private inHead = 0;
  private inCount = 0;
  private getcPending = 0;

  /** An HTIF at the given symbol addresses. */
  constructor(private readonly cfg: HtifConfig) {
    const a = cfg.tohost, b = cfg.fromhost;
    if (a < b + HTIF_REG_SIZE && b < a + HTIF_REG_SIZE) throw new RangeError('tohost and fromhost overlap');
    this.regions = [
      { base: a, size: HTIF_REG_SIZE, device: new HtifPort('htif-tohost', this, true) },
      { base: b, size: HTIF_REG_SIZE, device: new HtifPort('htif-fromhost', this, false) },
    ];
  }

  /** Queues console input for HTIF getchar; returns how many bytes were accepted. */
  pushInput(bytes: Uint8Array): number {
    let n = 0;
    while (n < bytes.length && this.inCount < INPUT_CAPACITY) {
      this.input[(this.inHead + this.inCount) % INPUT_CAPACITY] = bytes[n++] ?? 0;
      this.inCount++;
    }
    this.answerGetc();
    return n;
  }

  /** A guest 4- or 8-byte store to one of the registers (called by the port windows). */
  store(isTohost: boolean, offset: number, size: number, lo: number, hi: number): void {
    const lowWritten = size === 8 || offset === 0;
    if (isTohost) {
      if (size === 8) { this.tohostLo = lo; this.tohostHi = hi; }
      else if (offset === 0) this.tohostLo = lo;
      else this.tohostHi = lo;
      if (lowWritten && (this.tohostLo | this.tohostHi) !== 0) this.execute();
    } else {
      if (size === 8) { this.fromhostLo = lo; this.fromhostHi = hi; }
      else if (offset === 0) this.fromhostLo = lo;
      else this.fromhostHi = lo;
      this.answerGetc(); // the guest took the previous answer: the next may go out
    }
  }

  private execute(): void {
    const hi = this.tohostHi >>> 0, lo = this.tohostLo >>> 0;
    this.tohostLo = 0; // taken: the host clears tohost (fesvr htif_t::run)
    this.tohostHi = 0;
    const dev = hi >>> 24;
    const cmd = (hi >>> 16) & 0xff;
    const payload = (hi & 0xffff) * TWO32 + lo;
    if (dev === HTIF_DEV_SYSCALL && cmd === 0) {
      if (lo & 1) this.cfg.power.poweroff(Math.floor(payload / 2));
      else this.syscall(payload);
    } else if (dev === HTIF_DEV_CONSOLE && cmd === HTIF_CONSOLE_PUTC) {
      this.cfg.console.write(Uint8Array.of(lo & 0xff));
      // Acknowledge unless an answer is still unread (OpenSBI and riscv-pk accept PUTC answers).
      if ((this.fromhostLo | this.fromhostHi) === 0) this.respond(HTIF_DEV_CONSOLE, HTIF_CONSOLE_PUTC, 0x100 | (lo & 0xff));
    } else if (dev === HTIF_DEV_CONSOLE && cmd === HTIF_CONSOLE_GETC) {
      this.getcPending++;
      this.answerGetc();
    }
    // other devices/commands are taken (tohost cleared) and ignored
  }

  private syscall(addr: number): void {
    const mem = this.cfg.memory;
    const block = mem.read(addr, MAGIC_MEM_BYTES);
    if (!block || block.length < MAGIC_MEM_BYTES) { this.respond(HTIF_DEV_SYSCALL, 0, 1); return; }
    const dv = new DataView(block.buffer, block.byteOffset, MAGIC_MEM_BYTES);
    const u64 = (i: number): number => dv.getUint32(i * 8 + 4, true) * TWO32 + dv.getUint32(i * 8, true);
    const which = u64(0);
    let ret: number;
    if (which === SYS_WRITE) {
      const fd = u64(1), buf = u64(2), len = Math.min(u64(3), MAX_WRITE);
      if (fd !== 1 && fd !== 2) ret = -EBADF;
      else {
        const bytes = len === 0 ? new Uint8Array(0) : mem.read(buf, len);
        if (bytes) { if (len > 0) this.cfg.console.write(bytes); ret = len; }
        else ret = -14; // EFAULT (Linux asm-generic/errno-base.h)
      }
    } else if (which === SYS_EXIT) {
      this.cfg.power.poweroff(dv.getInt32(8, true));
      return;
    } else {
      ret = -ENOSYS;
    }
    const out = new Uint8Array(8);
    const odv = new DataView(out.buffer);
    odv.setUint32(0, ret >>> 0, true); // two's complement for negative results
    odv.setUint32(4, ret < 0 ? 0xffffffff : Math.floor(ret / TWO32), true);
    mem.write(addr, out);
    this.respond(HTIF_DEV_SYSCALL, 0, 1);
  }

  private answerGetc(): void {
    if (this.getcPending === 0 || this.inCount === 0 || (this.fromhostLo | this.fromhostHi) !== 0) return;
    const ch = this.input[this.inHead] ?? 0;
    this.inHead = (this.inHead + 1) % INPUT_CAPACITY;
    this.inCount--;
    this.getcPending--;
    this.respond(HTIF_DEV_CONSOLE, HTIF_CONSOLE_GETC, 0x100 | ch);
  }

  private respond(dev: number, cmd: number, data: number): void {
    this.fromhostLo = data | 0;
    this.fromhostHi = ((dev << 24) | (cmd << 16)) | 0;
  }
}
