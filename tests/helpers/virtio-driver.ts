/**
 * A fake virtio driver for tests: it plays the guest's part against a
 * VirtioMmio transport — feature negotiation, queue setup, posting
 * descriptor chains and reading the used ring — so devices can be tested
 * without booting a kernel. Its RAM window sits inside a larger buffer
 * with canary bytes around it, so tests can prove a device never writes
 * outside guest memory.
 */
import { VirtioMmio, STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_FEATURES_OK, STATUS_DRIVER_OK, type VirtioDevice } from '../../src/devices/virtio/mmio.js';
import type { DmaMemory } from '../../src/devices/virtio/queue.js';
import type { IrqSink } from '../../src/devices/device.js';

/** Guest-physical base of the fake RAM window. */
export const FAKE_RAM_BASE = 0x8000_0000;
const CANARY = 0xa5;
const GUARD = 4096;

/** One buffer of a chain to post: data the device reads, or space it writes. */
export interface FakeBuffer { data?: Uint8Array; writeLen?: number }

/** The fake driver and its RAM. */
export class FakeDriver {
  readonly backing: Uint8Array;
  readonly mem: DmaMemory;
  readonly transport: VirtioMmio;
  irqLevel = false;
  irqCount = 0;
  private next = 0x10000; // bump allocator (offset in the window)
  private readonly queues: { desc: number; avail: number; used: number; num: number; nextDesc: number; availIdx: number; usedSeen: number }[] = [];
  private readonly out = new Int32Array(2);

  constructor(device: VirtioDevice, ramSize = 4 * 1024 * 1024) {
    this.backing = new Uint8Array(ramSize + 2 * GUARD).fill(CANARY);
    const window = this.backing.subarray(GUARD, GUARD + ramSize);
    window.fill(0);
    this.mem = { u8: window, dv: new DataView(window.buffer, window.byteOffset, window.byteLength), base: FAKE_RAM_BASE, size: ramSize };
    const irq: IrqSink = { setIrq: (_n, level) => { if (level && !this.irqLevel) this.irqCount++; this.irqLevel = level; } };
    this.transport = new VirtioMmio(device, this.mem, irq, 1);
  }

  /** True if every byte outside the RAM window is still the canary. */
  canariesIntact(): boolean {
    const b = this.backing;
    for (let i = 0; i < GUARD; i++) if (b[i] !== CANARY || b[b.length - 1 - i] !== CANARY) return false;
    return true;
  }

  /** Allocates `n` bytes of guest RAM (aligned); returns the guest-physical address. */
  alloc(n: number, align = 16): number {
    this.next = Math.ceil(this.next / align) * align;
    const a = this.next;
    this.next += n;
    if (this.next > this.mem.size) throw new Error('fake RAM exhausted');
    return FAKE_RAM_BASE + a;
  }

  /** Register read. */
  reg(off: number): number { this.transport.read(off, 4, this.out); return this.out[0]! >>> 0; }
  /** Register write. */
  setReg(off: number, v: number): void { this.transport.write(off, 4, v | 0, 0); }

  /** Device status register. */
  get status(): number { return this.reg(0x70); }

  /** Runs the driver initialisation sequence (virtio 1.2 §3.1.1) with `queueSize`-entry queues. */
  init(featuresLo: number | null = null, queueSize = 16): void {
    this.setReg(0x70, 0);
    this.setReg(0x70, STATUS_ACKNOWLEDGE);
    this.setReg(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    this.setReg(0x14, 0); const lo = this.reg(0x10);
    this.setReg(0x14, 1); const hi = this.reg(0x10);
    this.setReg(0x24, 0); this.setReg(0x20, featuresLo ?? lo);
    this.setReg(0x24, 1); this.setReg(0x20, hi);
    this.setReg(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    for (let q = 0; q < this.transport.device.numQueues; q++) {
      const desc = this.alloc(16 * queueSize), avail = this.alloc(6 + 2 * queueSize, 2), used = this.alloc(6 + 8 * queueSize, 4);
      this.setReg(0x30, q); this.setReg(0x38, queueSize);
      this.setReg(0x80, desc); this.setReg(0x84, 0); this.setReg(0x90, avail); this.setReg(0x94, 0); this.setReg(0xa0, used); this.setReg(0xa4, 0);
      this.setReg(0x44, 1);
      this.queues[q] = { desc, avail, used, num: queueSize, nextDesc: 0, availIdx: 0, usedSeen: 0 };
    }
    this.setReg(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  }

  /** Writes descriptor `i` of queue `q` raw (for malformed-ring tests). */
  writeDesc(q: number, i: number, addr: number, len: number, flags: number, next: number): void {
    const d = this.queues[q]!.desc - FAKE_RAM_BASE + 16 * i, dv = this.mem.dv;
    dv.setUint32(d, addr >>> 0, true); dv.setUint32(d + 4, Math.floor(addr / 4294967296), true);
    dv.setUint32(d + 8, len >>> 0, true); dv.setUint16(d + 12, flags, true); dv.setUint16(d + 14, next, true);
  }

  /** Makes descriptor `head` available on queue `q` and optionally kicks the device. */
  publish(q: number, head: number, kick = true): void {
    const Q = this.queues[q]!, a = Q.avail - FAKE_RAM_BASE, dv = this.mem.dv;
    dv.setUint16(a + 4 + 2 * (Q.availIdx % Q.num), head, true);
    Q.availIdx = (Q.availIdx + 1) & 0xffff;
    dv.setUint16(a + 2, Q.availIdx, true);
    if (kick) this.setReg(0x50, q);
  }

  /** Sets the raw available index (for malformed-ring tests). */
  setAvailIdx(q: number, idx: number): void {
    this.mem.dv.setUint16(this.queues[q]!.avail - FAKE_RAM_BASE + 2, idx & 0xffff, true);
  }

  /** Posts a well-formed chain; returns its head and the addresses of writable buffers. */
  submit(q: number, bufs: FakeBuffer[], kick = true): { head: number; writeAddrs: number[] } {
    const Q = this.queues[q]!, head = Q.nextDesc, writeAddrs: number[] = [];
    bufs.forEach((b, k) => {
      const i = (head + k) % Q.num, len = b.data ? b.data.length : b.writeLen ?? 0;
      const addr = this.alloc(Math.max(1, len));
      if (b.data) this.mem.u8.set(b.data, addr - FAKE_RAM_BASE); else writeAddrs.push(addr);
      const last = k === bufs.length - 1;
      this.writeDesc(q, i, addr, len, (b.data ? 0 : 2) | (last ? 0 : 1), (i + 1) % Q.num);
    });
    Q.nextDesc = (head + bufs.length) % Q.num;
    this.publish(q, head, kick);
    return { head, writeAddrs };
  }

  /** Returns used elements not yet seen on queue `q`. */
  used(q: number): { id: number; len: number }[] {
    const Q = this.queues[q]!, u = Q.used - FAKE_RAM_BASE, dv = this.mem.dv, out: { id: number; len: number }[] = [];
    const idx = dv.getUint16(u + 2, true);
    while (Q.usedSeen !== idx) {
      const slot = u + 4 + 8 * (Q.usedSeen % Q.num);
      out.push({ id: dv.getUint32(slot, true), len: dv.getUint32(slot + 4, true) });
      Q.usedSeen = (Q.usedSeen + 1) & 0xffff;
    }
    return out;
  }

  /** Reads `n` bytes of guest RAM at a guest-physical address. */
  read(addr: number, n: number): Uint8Array { return this.mem.u8.slice(addr - FAKE_RAM_BASE, addr - FAKE_RAM_BASE + n); }
}
