/**
 * NS16550A UART, as on QEMU's `virt` board (register stride 1, i.e.
 * `reg-shift` 0). Register semantics follow the National Semiconductor
 * PC16550D datasheet ("PC16550D UART with FIFOs", June 1995), section 8
 * "Registers", Tables I-IV.
 *
 * Transmission is instantaneous: a byte written to THR goes straight to the
 * CharBackend, so THR and the transmitter are always empty (LSR.THRE and
 * LSR.TEMT stay set) and the THR-empty interrupt re-arms right after each
 * write. Received bytes wait in a bounded host-side queue whose first 16
 * bytes play the part of the receiver FIFO. The character-timeout interrupt
 * is reported as soon as the FIFO holds data below its trigger level (no
 * four-character-time wait), and no line-status errors are ever raised:
 * input that overflows the host queue is dropped before it reaches the line.
 * OUT2 does not gate the interrupt output (as on QEMU, not as on a PC).
 */
import type { CharBackend, IrqSink, MmioDevice } from './device.js';

// Register offsets (PC16550D Table II "Register Addresses").
/** RBR (read) / THR (write) / DLL (DLAB=1). */
const REG_DATA = 0;
/** IER / DLM (DLAB=1). */
const REG_IER = 1;
/** IIR (read) / FCR (write). */
const REG_IIR_FCR = 2;
/** Line control register. */
const REG_LCR = 3;
/** Modem control register. */
const REG_MCR = 4;
/** Line status register. */
const REG_LSR = 5;
/** Modem status register. */
const REG_MSR = 6;
/** Scratch register. */
const REG_SCR = 7;

// IER bits (PC16550D section 8.4 "Interrupt Enable Register").
/** ERBFI: received data available (and FIFO timeout). */
const IER_RDA = 0x01;
/** ETBEI: transmitter holding register empty. */
const IER_THRE = 0x02;
/** EDSSI: modem status. */
const IER_MSI = 0x08;
/** IER bits 7:4 are always zero. */
const IER_MASK = 0x0f;

// IIR values (PC16550D Table IV "Interrupt Control Functions").
/** Bit 0 set: no interrupt pending. */
const IIR_NONE = 0x01;
/** Received data available (FIFO at or above trigger, or non-FIFO mode). */
const IIR_RDA = 0x04;
/** Character timeout: data in the FIFO below its trigger level. */
const IIR_TIMEOUT = 0x0c;
/** Transmitter holding register empty. */
const IIR_THRE = 0x02;
/** Modem status changed. */
const IIR_MSI = 0x00;
/** Bits 7:6 set when FCR0 (FIFO enable) is set (PC16550D section 8.5). */
const IIR_FIFO_BITS = 0xc0;

// FCR bits (PC16550D section 8.6 "FIFO Control Register").
/** FCR0: enable both FIFOs. */
const FCR_ENABLE = 0x01;
/** FCR1: clear the receiver FIFO. */
const FCR_CLEAR_RX = 0x02;
/** FCR7:6: receiver trigger level 1/4/8/14 bytes. */
const FCR_TRIGGER_SHIFT = 6;
/** Receiver FIFO trigger levels indexed by FCR7:6 (PC16550D section 8.6). */
const RX_TRIGGER = [1, 4, 8, 14] as const;

/** LCR7: divisor latch access bit (PC16550D section 8.1). */
const LCR_DLAB = 0x80;

// MCR bits (PC16550D section 8.7 "Modem Control Register"); bits 7:5 are zero.
/** MCR0: DTR. */
const MCR_DTR = 0x01;
/** MCR1: RTS. */
const MCR_RTS = 0x02;
/** MCR2: OUT1. */
const MCR_OUT1 = 0x04;
/** MCR3: OUT2. */
const MCR_OUT2 = 0x08;
/** MCR4: local loopback. */
const MCR_LOOP = 0x10;
/** Writable MCR bits. */
const MCR_MASK = 0x1f;

// LSR bits (PC16550D section 8.8 "Line Status Register").
/** LSR0: data ready. */
const LSR_DR = 0x01;
/** LSR5: transmitter holding register empty. */
const LSR_THRE = 0x20;
/** LSR6: transmitter empty. */
const LSR_TEMT = 0x40;

// MSR bits (PC16550D section 8.9 "Modem Status Register").
/** MSR0: delta CTS. */
const MSR_DCTS = 0x01;
/** MSR1: delta DSR. */
const MSR_DDSR = 0x02;
/** MSR2: trailing edge of RI. */
const MSR_TERI = 0x04;
/** MSR3: delta DCD. */
const MSR_DDCD = 0x08;
/** MSR3:0, the delta bits cleared by reading MSR. */
const MSR_DELTAS = 0x0f;
/** MSR4: CTS. */
const MSR_CTS = 0x10;
/** MSR5: DSR. */
const MSR_DSR = 0x20;
/** MSR6: RI. */
const MSR_RI = 0x40;
/** MSR7: DCD. */
const MSR_DCD = 0x80;

/** Depth of the 16550's receiver FIFO (PC16550D section 1 "Features"). */
export const UART_FIFO_DEPTH = 16;
/** Default capacity of the host-side input queue, in bytes. */
export const UART_DEFAULT_INPUT_CAPACITY = 64 * 1024;

/** Options for {@link Uart16550}. */
export interface Uart16550Options {
  /** Bytes of pending guest input kept before further input is dropped (default 64 KiB). */
  inputCapacity?: number;
}

/** An NS16550A UART with 16-byte FIFOs, byte-wide registers at stride 1. */
export class Uart16550 implements MmioDevice {
  /** Device name for diagnostics. */
  readonly name = 'uart16550';

  private readonly rxBuf: Uint8Array;
  private rxHead = 0;
  private rxCount = 0;
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private dll = 0;
  private dlm = 0;
  private fifoEnabled = false;
  private rxTrigger = 1;
  /** MSR status bits 7:4 as last computed, and the sticky delta bits 3:0. */
  private msr = MSR_CTS | MSR_DSR | MSR_DCD;
  /** THR-empty interrupt condition (PC16550D Table IV: set when THR empties, reset by an IIR read or a THR write). */
  private thrIpending = false;
  private irqLevel = false;

  /** A UART writing to `backend` and driving line `irqLine` of `irq`. */
  constructor(
    private readonly backend: CharBackend,
    private readonly irq: IrqSink,
    private readonly irqLine: number,
    opts: Uart16550Options = {},
  ) {
    const cap = opts.inputCapacity ?? UART_DEFAULT_INPUT_CAPACITY;
    if (!Number.isInteger(cap) || cap < UART_FIFO_DEPTH) throw new RangeError(`invalid UART input capacity ${cap}`);
    this.rxBuf = new Uint8Array(cap);
  }

  /** True while received bytes wait for the guest to read them. */
  get hasInput(): boolean {
    return this.rxCount > 0;
  }

  /** Free space in the input queue, in bytes. */
  get inputSpace(): number {
    return this.rxBuf.length - this.rxCount;
  }

  /** Queues host input for the guest; returns how many bytes were accepted (the rest are dropped). */
  pushInput(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.rxBuf.length - this.rxCount);
    for (let k = 0; k < n; k++) this.rxEnqueue(bytes[k] ?? 0);
    if (n > 0) this.updateIrq();
    return n;
  }

  /** Reads the register at `offset` (only the low 3 address bits decode, as in QEMU). */
  read(offset: number, _size: number, out: Int32Array): void {
    out[0] = this.readReg(offset & 7);
    out[1] = 0;
  }

  /** Writes the low byte of `lo` to the register at `offset`. */
  write(offset: number, _size: number, lo: number, _hi: number): void {
    this.writeReg(offset & 7, lo & 0xff);
  }

  private readReg(reg: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case REG_DATA: {
        if (dlab) return this.dll;
        if (this.rxCount === 0) return 0;
        const b = this.rxBuf[this.rxHead] ?? 0;
        this.rxHead = this.rxHead + 1 === this.rxBuf.length ? 0 : this.rxHead + 1;
        this.rxCount--;
        this.updateIrq();
        return b;
      }
      case REG_IER:
        return dlab ? this.dlm : this.ier;
      case REG_IIR_FCR: {
        const id = this.pendingIid();
        if (id === IIR_THRE) {
          this.thrIpending = false; // Table IV: reading IIR resets the THRE interrupt when it is the source
          this.updateIrq();
        }
        return id | (this.fifoEnabled ? IIR_FIFO_BITS : 0);
      }
      case REG_LCR:
        return this.lcr;
      case REG_MCR:
        return this.mcr;
      case REG_LSR:
        return (this.rxCount > 0 ? LSR_DR : 0) | LSR_THRE | LSR_TEMT;
      case REG_MSR: {
        const v = this.msr;
        this.msr &= ~MSR_DELTAS;
        if (v & MSR_DELTAS) this.updateIrq();
        return v;
      }
      case REG_SCR:
        return this.scr;
      default:
        return 0; // unreachable: reg is 0..7
    }
  }

  private writeReg(reg: number, v: number): void {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (reg) {
      case REG_DATA:
        if (dlab) { this.dll = v; return; }
        this.transmit(v);
        return;
      case REG_IER: {
        if (dlab) { this.dlm = v; return; }
        const old = this.ier;
        this.ier = v & IER_MASK;
        // Enabling ETBEI while THR is empty raises the THRE interrupt at once.
        if ((this.ier & IER_THRE) && !(old & IER_THRE)) this.thrIpending = true;
        this.updateIrq();
        return;
      }
      case REG_IIR_FCR: {
        const enable = (v & FCR_ENABLE) !== 0;
        // Changing FCR0 clears both FIFOs (PC16550D section 8.6); FCR1 clears the receiver FIFO.
        if (enable !== this.fifoEnabled || (enable && (v & FCR_CLEAR_RX))) this.clearRxFifo();
        this.fifoEnabled = enable;
        this.rxTrigger = enable ? RX_TRIGGER[(v >> FCR_TRIGGER_SHIFT) & 3] ?? 1 : 1;
        this.updateIrq();
        return;
      }
      case REG_LCR:
        this.lcr = v;
        return;
      case REG_MCR:
        this.mcr = v & MCR_MASK;
        this.updateModemStatus();
        return;
      case REG_LSR:
      case REG_MSR:
        return; // read-only here (factory test use only, PC16550D section 8.8)
      case REG_SCR:
        this.scr = v;
        return;
      default:
    }
  }

  private transmit(b: number): void {
    if (this.mcr & MCR_LOOP) {
      // Loopback: the transmitter output feeds the receiver (PC16550D section 8.7, MCR4).
      if (this.rxCount < this.rxBuf.length) this.rxEnqueue(b);
    } else {
      this.backend.write(Uint8Array.of(b));
    }
    // THR empties immediately, so the THRE interrupt condition is set again.
    this.thrIpending = true;
    this.updateIrq();
  }

  private rxEnqueue(b: number): void {
    let tail = this.rxHead + this.rxCount;
    if (tail >= this.rxBuf.length) tail -= this.rxBuf.length;
    this.rxBuf[tail] = b;
    this.rxCount++;
  }

  /** Drops the bytes that sit in the 16-byte receiver FIFO (the front of the input queue). */
  private clearRxFifo(): void {
    const n = Math.min(this.rxCount, UART_FIFO_DEPTH);
    this.rxHead = (this.rxHead + n) % this.rxBuf.length;
    this.rxCount -= n;
  }

  /** Recomputes MSR bits 7:4 from the modem lines (or, in loopback, from MCR) and latches deltas. */
  private updateModemStatus(): void {
    let status: number;
    if (this.mcr & MCR_LOOP) {
      // Loopback wiring (PC16550D section 8.7): RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
      status = (this.mcr & MCR_RTS ? MSR_CTS : 0) | (this.mcr & MCR_DTR ? MSR_DSR : 0)
        | (this.mcr & MCR_OUT1 ? MSR_RI : 0) | (this.mcr & MCR_OUT2 ? MSR_DCD : 0);
    } else {
      status = MSR_CTS | MSR_DSR | MSR_DCD; // a "connected" modem, as QEMU reports
    }
    const changed = (this.msr ^ status) & 0xf0;
    let delta = 0;
    if (changed & MSR_CTS) delta |= MSR_DCTS;
    if (changed & MSR_DSR) delta |= MSR_DDSR;
    if ((changed & MSR_RI) && !(status & MSR_RI)) delta |= MSR_TERI;
    if (changed & MSR_DCD) delta |= MSR_DDCD;
    this.msr = status | (this.msr & MSR_DELTAS) | delta;
    this.updateIrq();
  }

  /** Highest-priority pending interrupt identification (PC16550D Table IV), IIR_NONE if none. */
  private pendingIid(): number {
    if ((this.ier & IER_RDA) && this.rxCount > 0) {
      const inFifo = Math.min(this.rxCount, UART_FIFO_DEPTH);
      return !this.fifoEnabled || inFifo >= this.rxTrigger ? IIR_RDA : IIR_TIMEOUT;
    }
    if ((this.ier & IER_THRE) && this.thrIpending) return IIR_THRE;
    if ((this.ier & IER_MSI) && (this.msr & MSR_DELTAS)) return IIR_MSI;
    return IIR_NONE;
  }

  private updateIrq(): void {
    const level = this.pendingIid() !== IIR_NONE;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.setIrq(this.irqLine, level);
    }
  }
}
