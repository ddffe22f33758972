/**
 * Goldfish RTC (Android emulator "goldfish" timer/RTC) as on QEMU's `virt`
 * board. Time is nanoseconds since the Unix epoch, taken from the Clock's
 * wall clock plus an offset the guest may set.
 *
 * Register map: the Goldfish timer register definitions published in Linux's
 * `include/clocksource/timer-goldfish.h` ("goldfish timer doc" below), which
 * `google,goldfish-rtc` shares: TIME_LOW 0x00 (reading it latches the high
 * half), TIME_HIGH 0x04, ALARM_LOW 0x08 (writing it arms the alarm),
 * ALARM_HIGH 0x0c, IRQ_ENABLED 0x10, CLEAR_ALARM 0x14, ALARM_STATUS 0x18,
 * CLEAR_INTERRUPT 0x1c.
 *
 * Times near 2^60 ns are beyond exact JS numbers, so the RTC's resolution is
 * that of a double at the current epoch (256 ns), which an RTC never notices.
 */
import type { Clock, IrqSink, MmioDevice } from './device.js';

/** Read: low 32 bits of the time, latching the high half (goldfish timer doc). */
export const RTC_TIME_LOW = 0x00;
/** High 32 bits of the time latched by the last TIME_LOW read (goldfish timer doc). */
export const RTC_TIME_HIGH = 0x04;
/** Write: low 32 bits of the alarm, and arm it (goldfish timer doc). */
export const RTC_ALARM_LOW = 0x08;
/** High 32 bits of the next alarm (goldfish timer doc). */
export const RTC_ALARM_HIGH = 0x0c;
/** Alarm interrupt enable (goldfish timer doc). */
export const RTC_IRQ_ENABLED = 0x10;
/** Write: disarm the alarm (goldfish timer doc). */
export const RTC_CLEAR_ALARM = 0x14;
/** Read: 1 while the alarm is armed (goldfish timer doc). */
export const RTC_ALARM_STATUS = 0x18;
/** Write: clear the pending interrupt (goldfish timer doc). */
export const RTC_CLEAR_INTERRUPT = 0x1c;

/** 2^32, to join and split the halves of 64-bit registers. */
const TWO32 = 4294967296;

/** A Goldfish RTC raising line `irqLine` of `irq` when its alarm fires. */
export class GoldfishRtc implements MmioDevice {
  /** Device name for diagnostics. */
  readonly name = 'goldfish-rtc';

  /** Guest time minus host wall-clock time, in ns. */
  private offsetNs = 0;
  private timeHighLatch = 0;
  /** High half written to TIME_HIGH, used by the next TIME_LOW write. */
  private timeHighWrite = 0;
  private alarmLow = 0;
  private alarmHigh = 0;
  private alarmArmed = false;
  /** The armed alarm as guest ns since the epoch. */
  private alarmNs = 0;
  private irqEnabled = false;
  private irqPending = false;
  private irqLevel = false;

  /** An RTC on `clock`, interrupting through `irq` line `irqLine`. */
  constructor(private readonly clock: Clock, private readonly irq: IrqSink, private readonly irqLine: number) {}

  /** The guest's current time, ns since the Unix epoch. */
  nowNs(): number {
    return this.clock.realtimeNs() + this.offsetNs;
  }

  /** Host monotonic ns (the Clock's base) at which the armed alarm fires; Infinity when disarmed. */
  nextDeadlineNs(): number {
    if (!this.alarmArmed) return Infinity;
    return this.clock.monotonicNs() + (this.alarmNs - this.nowNs());
  }

  /** Fires the alarm if its time has come (the VMM calls this when the deadline passes). */
  update(): void {
    if (this.alarmArmed && this.nowNs() >= this.alarmNs) {
      this.alarmArmed = false;
      this.irqPending = true;
      this.updateIrq();
    }
  }

  /** Reads a 32-bit register (other sizes read the same word). */
  read(offset: number, _size: number, out: Int32Array): void {
    out[1] = 0;
    switch (offset) {
      case RTC_TIME_LOW: {
        const t = this.nowNs();
        const hi = Math.floor(t / TWO32);
        this.timeHighLatch = hi >>> 0;
        out[0] = t - hi * TWO32;
        return;
      }
      case RTC_TIME_HIGH: out[0] = this.timeHighLatch; return;
      case RTC_ALARM_LOW: out[0] = this.alarmLow; return;
      case RTC_ALARM_HIGH: out[0] = this.alarmHigh; return;
      case RTC_IRQ_ENABLED: out[0] = this.irqEnabled ? 1 : 0; return;
      case RTC_ALARM_STATUS: out[0] = this.alarmArmed ? 1 : 0; return;
      default: out[0] = 0;
    }
  }

  /** Writes a 32-bit register. */
  write(offset: number, _size: number, lo: number, _hi: number): void {
    const v = lo >>> 0;
    switch (offset) {
      case RTC_TIME_LOW: // set the time: TIME_HIGH first, then TIME_LOW (as Linux's rtc-goldfish does)
        this.offsetNs = this.timeHighWrite * TWO32 + v - this.clock.realtimeNs();
        return;
      case RTC_TIME_HIGH:
        this.timeHighWrite = v;
        return;
      case RTC_ALARM_LOW:
        this.alarmLow = v;
        this.alarmNs = this.alarmHigh * TWO32 + v;
        this.alarmArmed = true;
        this.update(); // an alarm already in the past fires at once
        return;
      case RTC_ALARM_HIGH:
        this.alarmHigh = v;
        return;
      case RTC_IRQ_ENABLED:
        this.irqEnabled = (v & 1) !== 0;
        this.updateIrq();
        return;
      case RTC_CLEAR_ALARM:
        this.alarmArmed = false;
        return;
      case RTC_CLEAR_INTERRUPT:
        this.irqPending = false;
        this.updateIrq();
        return;
      default:
    }
  }

  private updateIrq(): void {
    const level = this.irqPending && this.irqEnabled;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq.setIrq(this.irqLine, level);
    }
  }
}
