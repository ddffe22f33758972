/**
 * Board devices of the virt machine, driven through their MMIO interface:
 * UART 16550A, CLINT, PLIC, Goldfish RTC, SiFive test finisher, HTIF, and
 * the MMIO bus.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CharBackend, Clock, IrqSink, MmioDevice, PowerControl } from '../../src/devices/device.js';
import { Uart16550 } from '../../src/devices/uart16550.js';
import { Clint, type HartIrqs } from '../../src/devices/clint.js';
import { Plic, type ExternalIrqs } from '../../src/devices/plic.js';
import { GoldfishRtc } from '../../src/devices/goldfish-rtc.js';
import { SifiveTest } from '../../src/devices/syscon.js';
import { Htif, type GuestMemory } from '../../src/devices/htif.js';
import { MmioBus } from '../../src/devices/bus.js';

const out = new Int32Array(2);
/** Reads `size` bytes at `off`, returning the low word unsigned. */
function rd(dev: MmioDevice, off: number, size = 4): number {
  dev.read(off, size, out);
  return (out[0] ?? 0) >>> 0;
}
/** Reads 8 bytes as an exact JS number (values below 2^53). */
function rd64(dev: MmioDevice, off: number): number {
  dev.read(off, 8, out);
  return ((out[1] ?? 0) >>> 0) * 2 ** 32 + ((out[0] ?? 0) >>> 0);
}
function wr(dev: MmioDevice, off: number, v: number, size = 4): void {
  dev.write(off, size, v | 0, 0);
}
function wr64(dev: MmioDevice, off: number, v: number): void {
  dev.write(off, 8, (v % 2 ** 32) | 0, Math.floor(v / 2 ** 32) | 0);
}

class Lines implements IrqSink {
  readonly level = new Map<number, boolean>();
  changes = 0;
  setIrq(irq: number, level: boolean): void { this.level.set(irq, level); this.changes++; }
  get(irq: number): boolean { return this.level.get(irq) ?? false; }
}
class Sink implements CharBackend {
  readonly bytes: number[] = [];
  write(b: Uint8Array): void { this.bytes.push(...b); }
  get text(): string { return String.fromCharCode(...this.bytes); }
}
class FakeClock implements Clock {
  constructor(public mono = 1_000_000, public real = 5_000_000_000) {}
  monotonicNs(): number { return this.mono; }
  realtimeNs(): number { return this.real; }
  advance(ns: number): void { this.mono += ns; this.real += ns; }
}
class Power implements PowerControl {
  readonly events: string[] = [];
  poweroff(status: number): void { this.events.push(`off ${status}`); }
  reset(): void { this.events.push('reset'); }
}

// UART register offsets (PC16550D Table II).
const THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

test('UART: reset state, scratch and divisor latch (DLAB)', () => {
  const irq = new Lines();
  const tx = new Sink();
  const u = new Uart16550(tx, irq, 10);
  assert.equal(rd(u, LSR, 1), 0x60, 'LSR: THRE|TEMT');
  assert.equal(rd(u, IIR, 1), 0x01, 'IIR: no interrupt');
  assert.equal(rd(u, MSR, 1), 0xb0, 'MSR: CTS|DSR|DCD');
  assert.equal(rd(u, IER, 1), 0);
  wr(u, SCR, 0xa5, 1);
  assert.equal(rd(u, SCR, 1), 0xa5);
  wr(u, LCR, 0x83, 1); // DLAB + 8N1
  wr(u, 0, 0x12, 1);
  wr(u, 1, 0x34, 1);
  assert.equal(rd(u, 0, 1), 0x12, 'DLL');
  assert.equal(rd(u, 1, 1), 0x34, 'DLM');
  assert.equal(tx.bytes.length, 0, 'DLL write is not a transmit');
  wr(u, LCR, 0x03, 1);
  assert.equal(rd(u, IER, 1), 0, 'IER unchanged by DLM writes');
  wr(u, THR, 0x41, 1);
  wr(u, THR + 8, 0x42, 1); // offsets decode modulo 8
  assert.equal(tx.text, 'AB');
  assert.equal(rd(u, LCR, 1), 0x03);
  assert.equal(irq.changes, 0, 'no interrupt without IER');
});

test('UART: receive FIFO, trigger levels, timeout and data-available IIR', () => {
  const irq = new Lines();
  const u = new Uart16550(new Sink(), irq, 10);
  assert.equal(u.hasInput, false);
  wr(u, FCR, 0xc1, 1); // FIFO on, trigger 14
  wr(u, IER, 0x01, 1);
  u.pushInput(new TextEncoder().encode('hello'));
  assert.equal(u.hasInput, true);
  assert.equal(rd(u, LSR, 1) & 1, 1, 'LSR.DR');
  assert.equal(rd(u, IIR, 1), 0xcc, 'below trigger: character timeout, FIFO bits set');
  assert.equal(irq.get(10), true);
  u.pushInput(new Uint8Array(10).fill(0x2e));
  assert.equal(rd(u, IIR, 1), 0xc4, 'at/above trigger: data available');
  let s = '';
  while (rd(u, LSR, 1) & 1) s += String.fromCharCode(rd(u, THR, 1));
  assert.equal(s, 'hello..........');
  assert.equal(irq.get(10), false);
  assert.equal(rd(u, IIR, 1), 0xc1);
  assert.equal(u.hasInput, false);
  // Non-FIFO mode: any byte is "data available".
  wr(u, FCR, 0x00, 1);
  u.pushInput(Uint8Array.of(0x31));
  assert.equal(rd(u, IIR, 1), 0x04);
  // FCR bit 1 clears the 16 bytes of the receiver FIFO, not the rest of the queue.
  wr(u, FCR, 0x01, 1); // enabling the FIFO clears it too
  assert.equal(u.hasInput, false);
  u.pushInput(new Uint8Array(20).map((_, i) => 0x40 + i));
  wr(u, FCR, 0x03, 1);
  assert.equal(rd(u, THR, 1), 0x40 + 16);
});

test('UART: THR-empty interrupt, IIR priority, loopback, bounded input', () => {
  const irq = new Lines();
  const tx = new Sink();
  const u = new Uart16550(tx, irq, 10, { inputCapacity: 64 * 1024 });
  wr(u, IER, 0x02, 1);
  assert.equal(irq.get(10), true, 'enabling ETBEI with THR empty interrupts at once');
  assert.equal(rd(u, IIR, 1), 0x02);
  assert.equal(irq.get(10), false, 'reading IIR clears THRE');
  assert.equal(rd(u, IIR, 1), 0x01);
  wr(u, THR, 0x58, 1);
  assert.equal(irq.get(10), true, 'THR empties again after a write');
  wr(u, IER, 0x03, 1);
  u.pushInput(Uint8Array.of(1));
  assert.equal(rd(u, IIR, 1), 0x04, 'received data outranks THRE');
  rd(u, THR, 1);
  assert.equal(rd(u, IIR, 1), 0x02);
  // Loopback: transmit feeds receive, MSR mirrors MCR.
  wr(u, IER, 0x00, 1);
  wr(u, MCR, 0x10 | 0x01 | 0x02, 1);
  assert.equal(rd(u, MSR, 1) & 0xf0, 0x30, 'CTS<-RTS, DSR<-DTR, RI/DCD low');
  wr(u, THR, 0x77, 1);
  assert.equal(tx.text, 'X', 'looped byte does not reach the backend');
  assert.equal(rd(u, THR, 1), 0x77);
  wr(u, MCR, 0x00, 1);
  assert.equal(rd(u, MSR, 1) & 0x0b, 0x08, 'leaving loopback: DCD changed (delta bits)');
  assert.equal(rd(u, MSR, 1) & 0x0f, 0, 'delta bits clear on read');
  // Modem-status interrupt.
  wr(u, IER, 0x08, 1);
  wr(u, MCR, 0x10, 1);
  assert.equal(rd(u, IIR, 1), 0x00);
  rd(u, MSR, 1);
  assert.equal(rd(u, IIR, 1), 0x01);
  wr(u, MCR, 0, 1);
  rd(u, MSR, 1);
  // The host queue holds 64 KiB; extra input is dropped.
  assert.equal(u.pushInput(new Uint8Array(70000)), 65536);
  assert.equal(u.inputSpace, 0);
  assert.equal(u.pushInput(Uint8Array.of(1)), 0);
});

class HartLines implements HartIrqs {
  readonly msip = new Map<number, boolean>();
  readonly mtip = new Map<number, boolean>();
  setMsip(h: number, l: boolean): void { this.msip.set(h, l); }
  setMtip(h: number, l: boolean): void { this.mtip.set(h, l); }
}

test('CLINT: msip, mtime at 10 MHz, mtimecmp via 32-bit halves and 64-bit accesses', () => {
  const clk = new FakeClock();
  const lines = new HartLines();
  const c = new Clint(2, clk, lines);
  assert.equal(rd64(c, 0xbff8), 0);
  clk.advance(1000);
  assert.equal(c.mtimeNow(), 10, '1 us = 10 ticks');
  assert.equal(rd(c, 0xbff8), 10);
  assert.equal(rd(c, 0xbffc), 0);
  assert.equal(c.nextDeadlineNs(), Infinity, 'mtimecmp resets to all-ones');
  // msip
  wr(c, 0x4, 0xffffffff);
  assert.equal(lines.msip.get(1), true);
  assert.equal(rd(c, 0x4), 1, 'only bit 0 is writable');
  wr(c, 0x4, 0);
  assert.equal(lines.msip.get(1), false);
  assert.equal(rd(c, 0x8), 0, 'msip beyond the harts reads 0');
  // mtimecmp[1] = 50 via halves: high first, then low.
  wr(c, 0x4008 + 4, 0);
  assert.equal(lines.mtip.get(1) ?? false, false, 'cmp = 0xffff_ffff still ahead');
  wr(c, 0x4008, 50);
  assert.equal(rd64(c, 0x4008), 50);
  assert.equal(lines.mtip.get(1) ?? false, false);
  assert.equal(c.nextDeadlineNs(), clk.mono + 40 * 100, 'deadline in host ns');
  clk.advance(3999);
  c.update();
  assert.equal(lines.mtip.get(1) ?? false, false, 'tick 49');
  clk.advance(1);
  c.update();
  assert.equal(lines.mtip.get(1), true, 'tick 50 >= mtimecmp');
  assert.equal(lines.mtip.get(0) ?? false, false, 'hart 0 untouched');
  assert.equal(c.nextDeadlineNs(), Infinity, 'fired timers need no wake-up');
  // A 64-bit write moves the deadline out again and drops MTIP at once.
  wr64(c, 0x4008, 2 ** 33 + 7);
  assert.equal(lines.mtip.get(1), false);
  assert.equal(rd(c, 0x4008), 7);
  assert.equal(rd(c, 0x400c), 2);
  // Writing the low half alone keeps the high half.
  wr(c, 0x4008, 0);
  assert.equal(rd64(c, 0x4008), 2 ** 33);
  // Writing mtime: 64-bit, then 32-bit high half.
  wr64(c, 0xbff8, 2 ** 33 + 100);
  assert.equal(rd64(c, 0xbff8), 2 ** 33 + 100);
  assert.equal(lines.mtip.get(1), true, 'mtime jumped past mtimecmp');
  clk.advance(500);
  assert.equal(c.mtimeNow(), 2 ** 33 + 105);
  wr(c, 0xbffc, 0);
  assert.equal(rd64(c, 0xbff8), 105, 'high half replaced, low half kept');
  assert.equal(lines.mtip.get(1), false);
  // Byte access to mtimecmp merges into the word.
  wr(c, 0x4000 + 1, 0x12, 1);
  assert.equal(rd(c, 0x4000) & 0xff00, 0x1200);
  assert.equal(rd(c, 0x4000 + 1, 1), 0x12);
});

class Contexts implements ExternalIrqs {
  readonly level = new Map<string, boolean>();
  setExternal(h: number, s: boolean, l: boolean): void { this.level.set(`${h}${s ? 'S' : 'M'}`, l); }
  get(k: string): boolean { return this.level.get(k) ?? false; }
}

test('PLIC: priorities, pending, claim/complete, thresholds, two contexts', () => {
  const ctx = new Contexts();
  const p = new Plic(2, ctx);
  const prio = (src: number): number => 4 * src;
  const enable = (c: number): number => 0x2000 + 0x80 * c;
  const threshold = (c: number): number => 0x200000 + 0x1000 * c;
  const claim = (c: number): number => threshold(c) + 4;
  wr(p, prio(10), 3);
  wr(p, prio(11), 5);
  wr(p, prio(12), 99);
  assert.equal(rd(p, prio(12)), 7, 'priority is WARL 0..7');
  wr(p, prio(0), 5);
  assert.equal(rd(p, prio(0)), 0, 'source 0 does not exist');
  wr(p, enable(1), (1 << 10) | (1 << 11) | 1);
  assert.equal(rd(p, enable(1)), (1 << 10) | (1 << 11), 'source 0 enable is hardwired 0');
  wr(p, enable(1) + 8, 0xffffffff);
  assert.equal(rd(p, enable(1) + 8), 0xffffffff, 'sources 64..95');
  wr(p, enable(1) + 12, 0xffffffff);
  assert.equal(rd(p, enable(1) + 12), 0, 'no sources past 95');
  wr(p, enable(1) + 8, 0);

  p.setIrq(10, true);
  assert.equal(rd(p, 0x1000), 1 << 10, 'pending bit');
  assert.equal(ctx.get('0S'), true, 'hart 0 S context (context 1) notified');
  assert.equal(ctx.get('0M'), false);
  p.setIrq(11, true);
  assert.equal(rd(p, claim(1)), 11, 'highest priority first');
  assert.equal(rd(p, claim(1)), 10);
  assert.equal(rd(p, claim(1)), 0, 'nothing left');
  assert.equal(ctx.get('0S'), false);
  assert.equal(rd(p, 0x1000), 0);
  // Completing a source whose line is still high makes it pending again.
  wr(p, claim(1), 11);
  assert.equal(p.isPending(11), true);
  assert.equal(ctx.get('0S'), true);
  // Equal priorities: the lower ID wins.
  wr(p, prio(11), 3);
  wr(p, claim(1), 10);
  assert.equal(rd(p, claim(1)), 10);
  wr(p, claim(1), 10);
  // Threshold: only priorities strictly above it notify (and are claimable).
  wr(p, prio(10), 1); wr(p, prio(11), 1);
  wr(p, threshold(1), 1);
  assert.equal(rd(p, threshold(1)), 1);
  assert.equal(ctx.get('0S'), false);
  assert.equal(rd(p, claim(1)), 0);
  wr(p, threshold(1), 0);
  assert.equal(ctx.get('0S'), true);
  // Priority 0 never interrupts.
  wr(p, prio(10), 0); wr(p, prio(11), 0);
  assert.equal(ctx.get('0S'), false);
  wr(p, prio(10), 2); wr(p, prio(11), 2);

  // A second context (hart 1 M-mode, context 2) enabled for source 10 too.
  wr(p, enable(2), 1 << 10);
  assert.equal(ctx.get('1M'), true);
  assert.equal(rd(p, claim(2)), 10, 'claimed by context 2');
  assert.equal(ctx.get('1M'), false);
  assert.equal(rd(p, claim(1)), 11, 'context 1 no longer sees 10');
  // Completion of a source not enabled for the completing context is ignored.
  wr(p, claim(3), 10);
  assert.equal(p.isPending(10), false, 'still in service');
  p.setIrq(10, false);
  wr(p, claim(2), 10);
  assert.equal(p.isPending(10), false, 'line low at completion: not pending');
  // A level that drops before the claim withdraws the request.
  p.setIrq(11, false);
  wr(p, claim(1), 11);
  p.setIrq(11, true);
  assert.equal(ctx.get('0S'), true);
  p.setIrq(11, false);
  assert.equal(ctx.get('0S'), false);
  assert.equal(rd(p, claim(1)), 0);
  // Contexts past the last hart read as zero.
  assert.equal(rd(p, threshold(4)), 0);
  p.setIrq(200, true); // out of range: ignored
});

test('Goldfish RTC: time latch, setting the time, alarm and interrupt', () => {
  const clk = new FakeClock(0, 3 * 2 ** 32 + 1234);
  const irq = new Lines();
  const r = new GoldfishRtc(clk, irq, 11);
  assert.equal(rd(r, 0x00), 1234, 'TIME_LOW');
  clk.advance(2 ** 32);
  assert.equal(rd(r, 0x04), 3, 'TIME_HIGH latched at the TIME_LOW read');
  rd(r, 0x00);
  assert.equal(rd(r, 0x04), 4);
  // Set the time (Linux writes TIME_HIGH, then TIME_LOW).
  wr(r, 0x04, 0);
  wr(r, 0x00, 1_000_000);
  assert.equal(r.nowNs(), 1_000_000);
  clk.advance(500);
  assert.equal(rd(r, 0x00), 1_000_500);
  // Alarm 1 ms later.
  wr(r, 0x10, 1);
  assert.equal(rd(r, 0x10), 1);
  wr(r, 0x0c, 0);
  wr(r, 0x08, 2_000_500);
  assert.equal(rd(r, 0x18), 1, 'ALARM_STATUS: armed');
  assert.equal(rd(r, 0x08), 2_000_500);
  assert.equal(r.nextDeadlineNs(), clk.mono + 1_000_000);
  clk.advance(999_999);
  r.update();
  assert.equal(irq.get(11), false);
  clk.advance(1);
  r.update();
  assert.equal(irq.get(11), true, 'alarm fired');
  assert.equal(rd(r, 0x18), 0, 'disarmed after firing');
  assert.equal(r.nextDeadlineNs(), Infinity);
  wr(r, 0x1c, 1);
  assert.equal(irq.get(11), false, 'CLEAR_INTERRUPT');
  // An alarm in the past fires at once; CLEAR_ALARM disarms a future one.
  wr(r, 0x08, 5);
  assert.equal(irq.get(11), true);
  wr(r, 0x1c, 1);
  wr(r, 0x0c, 1);
  wr(r, 0x08, 0);
  assert.equal(rd(r, 0x18), 1);
  wr(r, 0x14, 1);
  assert.equal(rd(r, 0x18), 0);
  // Interrupt disabled: the alarm fires silently.
  wr(r, 0x10, 0);
  wr(r, 0x0c, 0);
  wr(r, 0x08, 5);
  assert.equal(irq.get(11), false);
});

test('SiFive test finisher: pass, fail with status, reset', () => {
  const pw = new Power();
  const t = new SifiveTest(pw);
  wr(t, 0, 0x5555);
  wr(t, 0, (3 << 16) | 0x3333);
  wr(t, 0, 0x7777);
  wr(t, 0, 0x1234); // unknown: ignored
  wr(t, 4, 0x5555); // other offsets: ignored
  t.write(0, 8, (0xff << 16) | 0x3333, 0);
  assert.deepEqual(pw.events, ['off 0', 'off 3', 'reset', 'off 255']);
  assert.equal(rd(t, 0), 0);
});

class Ram implements GuestMemory {
  readonly u8 = new Uint8Array(0x2000);
  constructor(readonly base: number) {}
  read(addr: number, len: number): Uint8Array | null {
    const o = addr - this.base;
    return o >= 0 && o + len <= this.u8.length ? this.u8.slice(o, o + len) : null;
  }
  write(addr: number, bytes: Uint8Array): boolean {
    const o = addr - this.base;
    if (o < 0 || o + bytes.length > this.u8.length) return false;
    this.u8.set(bytes, o);
    return true;
  }
  u64(addr: number, v?: number): number {
    const dv = new DataView(this.u8.buffer);
    if (v !== undefined) dv.setBigUint64(addr - this.base, BigInt(v), true);
    return Number(dv.getBigUint64(addr - this.base, true));
  }
}

test('HTIF: exit codes, console putchar/getchar, syscall proxy write/exit', () => {
  const ram = new Ram(0x80000000);
  const con = new Sink();
  const pw = new Power();
  const TOHOST = 0x80001000, FROMHOST = 0x80001040;
  const h = new Htif({ tohost: TOHOST, fromhost: FROMHOST, console: con, power: pw, memory: ram });
  const bus = new MmioBus();
  for (const r of h.regions) bus.map(r.base, r.size, r.device);
  const store64 = (addr: number, hi: number, lo: number): void => { assert.ok(bus.write(addr, 8, lo | 0, hi | 0)); };
  const load64 = (addr: number): [number, number] => { assert.ok(bus.read(addr, 8, out)); return [(out[1] ?? 0) >>> 0, (out[0] ?? 0) >>> 0]; };

  // putchar: device 1, command 1.
  store64(TOHOST, 0x01010000, 0x68);
  assert.equal(con.text, 'h');
  assert.deepEqual(load64(TOHOST), [0, 0], 'host clears tohost');
  assert.deepEqual(load64(FROMHOST), [0x01010000, 0x168], 'acknowledged through fromhost');
  store64(FROMHOST, 0, 0);
  // getchar: answered once input is there and fromhost is free.
  store64(TOHOST, 0x01000000, 0);
  assert.deepEqual(load64(FROMHOST), [0, 0]);
  h.pushInput(Uint8Array.of(0x6b));
  assert.deepEqual(load64(FROMHOST), [0x01000000, 0x16b]);
  store64(FROMHOST, 0, 0);

  // Syscall proxy: SYS_write(1, buf, 6) through a magic_mem block.
  const MAGIC = 0x80000100, BUF = 0x80000200;
  ram.write(BUF, new TextEncoder().encode('hello\n'));
  [64, 1, BUF, 6].forEach((v, i) => ram.u64(MAGIC + 8 * i, v));
  store64(TOHOST, 0, MAGIC);
  assert.equal(con.text, 'hhello\n');
  assert.equal(ram.u64(MAGIC), 6, 'return value in magic_mem[0]');
  assert.deepEqual(load64(FROMHOST), [0, 1]);
  store64(FROMHOST, 0, 0);
  // Bad fd: -EBADF.
  [64, 5, BUF, 6].forEach((v, i) => ram.u64(MAGIC + 8 * i, v));
  store64(TOHOST, 0, MAGIC);
  const dv = new DataView(ram.u8.buffer);
  assert.equal(dv.getBigInt64(MAGIC - ram.base, true), -9n, '-EBADF');
  store64(FROMHOST, 0, 0);
  // SYS_exit(7).
  [93, 7, 0, 0].forEach((v, i) => ram.u64(MAGIC + 8 * i, v));
  store64(TOHOST, 0, MAGIC);
  // Exit through tohost bit 0: 1 = pass, (21 << 1) | 1 = fail 21; RV32-style 32-bit stores.
  store64(TOHOST, 0, 1);
  assert.ok(bus.write(TOHOST + 4, 4, 0, 0));
  assert.ok(bus.write(TOHOST, 4, (21 << 1) | 1, 0));
  assert.deepEqual(pw.events, ['off 7', 'off 0', 'off 21']);
  assert.throws(() => new Htif({ tohost: 0x1000, fromhost: 0x1004, console: con, power: pw, memory: ram }), /overlap/);
});

class Dev implements MmioDevice {
  readonly log: string[] = [];
  constructor(readonly name: string) {}
  read(offset: number, size: number, o: Int32Array): void { this.log.push(`r${offset}/${size}`); o[0] = offset; o[1] = 0; }
  write(offset: number, size: number, lo: number): void { this.log.push(`w${offset}/${size}=${lo}`); }
}

test('MMIO bus: lookup, offsets, last-hit cache, overlap rejection', () => {
  const bus = new MmioBus();
  const a = new Dev('a'), b = new Dev('b'), c = new Dev('c');
  bus.map(0x10000000, 0x100, b);
  bus.map(0x2000000, 0x10000, a);
  bus.map(0x10001000, 0x1000, c);
  bus.map(0x10000100, 0x10, new Dev('adjacent')); // touching b's end is fine
  assert.equal(bus.find(0x2000000), a);
  assert.equal(bus.offset, 0);
  assert.equal(bus.find(0x200bff8), a);
  assert.equal(bus.offset, 0xbff8);
  assert.equal(bus.find(0x10000005), b);
  assert.equal(bus.offset, 5);
  assert.equal(bus.find(0x10000005), b, 'cached');
  assert.equal(bus.find(0x10001fff), c);
  assert.equal(bus.offset, 0xfff);
  for (const miss of [0, 0x1ffffff, 0x2010000, 0x10000110, 0x10002000, 2 ** 40]) {
    assert.equal(bus.find(miss), null, `0x${miss.toString(16)} is unmapped`);
  }
  assert.equal(bus.findIndex(0x10000001), 1);
  assert.equal(bus.deviceAt(1), b);
  assert.ok(bus.read(0x10000004, 1, out));
  assert.equal(out[0], 4);
  assert.ok(bus.write(0x10001008, 4, 9, 0));
  assert.deepEqual(c.log, ['w8/4=9']);
  assert.equal(bus.read(0x100000fe, 4, out), false, 'access straddling the window end');
  assert.equal(bus.write(0x3000000, 4, 0, 0), false);
  for (const [base, size] of [[0x10000000, 0x100], [0x100000f0, 0x20], [0x2008000, 4], [0x1ffff00, 0x200], [0x1000000, 0x20000000]] as const) {
    assert.throws(() => bus.map(base, size, new Dev('x')), /overlaps/, `0x${base.toString(16)}+0x${size.toString(16)}`);
  }
  assert.throws(() => bus.map(0x100, 0, new Dev('x')), /invalid/);
  assert.equal(bus.overlaps(0x10000000 - 0x1000, 0x1000), false, 'page just below b');
  assert.equal(bus.overlaps(0x10000000 - 0x1000, 0x1001), true);
  assert.equal(bus.overlaps(0x2008000, 0x1000), true, 'inside a');
  assert.equal(bus.overlaps(0x10000000 + 0x110, 0x10), false, 'gap between adjacent and c');
  assert.equal(bus.overlaps(0, 2 ** 40), true);
  assert.deepEqual(bus.regions().map((r) => r.device.name), ['a', 'b', 'adjacent', 'c']);
});
