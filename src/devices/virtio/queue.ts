/**
 * The split virtqueue (virtio 1.2 §2.7): plain data — size, ring addresses
 * and indices — plus the device side's pop/push. It never owns memory; the
 * guest RAM view is passed in.
 *
 * Every descriptor the driver provides is validated before use: addresses
 * and lengths must lie inside guest RAM, chains are bounded (so loops are
 * caught), indirect tables must be well-formed and not nested, and
 * device-writable buffers must follow the device-readable ones. A violation
 * is reported as a `VirtqError`; the transport then marks the device
 * DEVICE_NEEDS_RESET instead of touching anything outside the guest.
 */

/** Descriptor flags (virtio 1.2 §2.7.5). */
export const VIRTQ_DESC_F_NEXT = 1, VIRTQ_DESC_F_WRITE = 2, VIRTQ_DESC_F_INDIRECT = 4;
/** Feature bits handled by the queue itself (virtio 1.2 §6). */
export const VIRTIO_F_RING_INDIRECT_DESC = 28, VIRTIO_F_RING_EVENT_IDX = 29;
/** Largest queue size tsvm offers (virtio 1.2 §2.7: at most 32768). */
export const QUEUE_MAX = 256;
/**
 * Cap on one chain's total length: a guest cannot make the host hold more
 * than this for one request (stops a descriptor claiming gigabytes).
 */
export const MAX_CHAIN_BYTES = 16 * 1024 * 1024;

/** A malformed ring or descriptor chain: the device must be reset. */
export class VirtqError extends Error {}

/**
 * Guest RAM as seen by device DMA: RAM at guest-physical `base`, `size`
 * bytes, in the views `u8`/`dv`. Without `hostPage` the RAM is one
 * contiguous block at offset 0 of the views; with it, each 4 KiB page is
 * wherever `hostPage` says (GuestMemory.hostPage), and a buffer is split
 * into page-contiguous segments.
 */
export interface DmaMemory {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  /** Guest-physical address of RAM's first byte. */
  readonly base: number;
  /** Usable bytes. */
  readonly size: number;
  /** Host offset of the page holding `gpa` (made private first for `write`), or negative when it is not RAM; optional. */
  hostPage?(gpa: number, write: boolean): number;
  /** The memory's remap count (GuestMemory.epoch); optional. */
  epoch?(): number;
  /** Told of every device write to host bytes [off, off+len) (so stale translated code is dropped); optional. */
  written?(off: number, len: number): void;
}

/** Host offset of the `len` bytes at `gpa` (a ring field or descriptor: naturally aligned, so inside one page). */
export function dmaHost(mem: DmaMemory, gpa: number, len: number, write: boolean): number {
  const off = gpa - mem.base;
  if (!(off >= 0 && len >= 0 && off + len <= mem.size)) throw new VirtqError(`0x${gpa.toString(16)}+${len} outside guest RAM`);
  if (mem.hostPage === undefined) return off;
  return mem.hostPage(gpa, write) + (gpa % 4096);
}

/** Most segments one chain can have: every descriptor, plus one per page of the longest chain, plus one split per descriptor. */
export const MAX_CHAIN_SEGS = 2 * (QUEUE_MAX + 1) + MAX_CHAIN_BYTES / 4096;

/** One descriptor chain popped from the available ring, held in arrays allocated once. */
export class DescChain {
  /** Head descriptor index (what goes back in the used ring). */
  head = 0;
  /** Number of segments (a buffer whose pages are not contiguous on the host is several). */
  count = 0;
  /** Host offset, length and direction of each segment. */
  readonly off = new Float64Array(MAX_CHAIN_SEGS);
  readonly len = new Uint32Array(MAX_CHAIN_SEGS);
  readonly writable = new Uint8Array(MAX_CHAIN_SEGS);
  /** Total device-readable and device-writable bytes. */
  readBytes = 0;
  writeBytes = 0;

  /** Copies up to `n` device-readable bytes starting at `from` into a new array. */
  read(mem: DmaMemory, from: number, n: number): Uint8Array {
    const out = new Uint8Array(Math.max(0, Math.min(n, this.readBytes - from)));
    let pos = 0, o = 0;
    for (let i = 0; i < this.count && o < out.length; i++) {
      if (this.writable[i]) break;
      const l = this.len[i]!;
      if (pos + l > from) {
        const s = Math.max(0, from - pos), take = Math.min(l - s, out.length - o);
        out.set(mem.u8.subarray(this.off[i]! + s, this.off[i]! + s + take), o);
        o += take;
      }
      pos += l;
    }
    return out;
  }

  /** Copies `data` into the device-writable part starting at byte `from`; returns bytes written. */
  write(mem: DmaMemory, from: number, data: Uint8Array): number {
    let pos = 0, o = 0;
    for (let i = 0; i < this.count && o < data.length; i++) {
      if (!this.writable[i]) continue;
      const l = this.len[i]!;
      if (pos + l > from) {
        const s = Math.max(0, from - pos), take = Math.min(l - s, data.length - o);
        mem.u8.set(data.subarray(o, o + take), this.off[i]! + s);
        mem.written?.(this.off[i]! + s, take);
        o += take;
      }
      pos += l;
    }
    return o;
  }
}

/** One split virtqueue's state (what the transport registers configure). */
export class SplitQueue {
  /** Queue size chosen by the driver (QueueNum). */
  num = QUEUE_MAX;
  ready = false;
  /** Guest-physical addresses of the descriptor table, driver (avail) and device (used) areas. */
  descAddr = 0;
  availAddr = 0;
  usedAddr = 0;
  /** Next available-ring index the device will consume. */
  lastAvail = 0;
  /** The device's used-ring index (free-running u16). */
  usedIdx = 0;
  /** Used index at the last interrupt (for EVENT_IDX suppression). */
  private signalledUsed = 0;
  eventIdx = false;
  indirect = false;

  /** Returns the queue to its reset state (virtio 1.2 §2.1 device reset). */
  reset(): void {
    this.num = QUEUE_MAX; this.ready = false;
    this.descAddr = this.availAddr = this.usedAddr = 0;
    this.lastAvail = this.usedIdx = this.signalledUsed = 0;
  }

  private ramOffset(mem: DmaMemory, addr: number, len: number, what: string): number {
    const off = addr - mem.base;
    if (!(off >= 0 && len >= 0 && off + len <= mem.size)) {
      throw new VirtqError(`${what} 0x${addr.toString(16)}+${len} outside guest RAM`);
    }
    return off;
  }

  /** An indirect descriptor table, copied out of guest RAM (at most QUEUE_MAX descriptors). */
  private readonly indirect16 = new Uint8Array(16 * QUEUE_MAX);
  private readonly indirectView = new DataView(this.indirect16.buffer);

  /** Copies guest-physical [addr, addr + dst.length) (checked to be RAM) into `dst`, page by page. */
  private copyOut(mem: DmaMemory, addr: number, dst: Uint8Array): void {
    for (let o = 0; o < dst.length;) {
      const a = addr + o, take = Math.min(4096 - (a % 4096), dst.length - o), h = dmaHost(mem, a, take, false);
      dst.set(mem.u8.subarray(h, h + take), o);
      o += take;
    }
  }

  /** Appends buffer [addr, addr+len) to `chain` as page-contiguous host segments. */
  private addBuffer(mem: DmaMemory, chain: DescChain, addr: number, len: number, writable: boolean, translate: boolean): void {
    this.ramOffset(mem, addr, len, 'buffer');
    const w = writable ? 1 : 0;
    if (mem.hostPage === undefined || len === 0 || !translate) {
      const k = chain.count++;
      chain.off[k] = addr - mem.base; chain.len[k] = len; chain.writable[k] = w;
      return;
    }
    for (let o = 0; o < len;) {
      const a = addr + o, inPage = a % 4096, take = Math.min(4096 - inPage, len - o);
      const host = mem.hostPage(a, writable) + inPage, k = chain.count;
      if (k > 0 && chain.writable[k - 1] === w && chain.off[k - 1]! + chain.len[k - 1]! === host && o > 0) chain.len[k - 1]! += take;
      else { chain.off[k] = host; chain.len[k] = take; chain.writable[k] = w; chain.count++; }
      o += take;
    }
  }

  /** Checks the ring addresses once the driver marks the queue ready. */
  validate(mem: DmaMemory): void {
    if (this.num === 0 || this.num > QUEUE_MAX || (this.num & (this.num - 1)) !== 0) throw new VirtqError(`bad queue size ${this.num}`);
    this.ramOffset(mem, this.descAddr, 16 * this.num, 'descriptor table');
    this.ramOffset(mem, this.availAddr, 6 + 2 * this.num, 'available ring');
    this.ramOffset(mem, this.usedAddr, 6 + 8 * this.num, 'used ring');
    if (this.descAddr % 16 || this.availAddr % 2 || this.usedAddr % 4) throw new VirtqError('misaligned ring');
  }

  /** True if the driver has made buffers available that the device has not consumed. */
  hasWork(mem: DmaMemory): boolean {
    if (!this.ready) return false;
    const availIdx = mem.dv.getUint16(dmaHost(mem, this.availAddr + 2, 2, false), true);
    return availIdx !== this.lastAvail;
  }

  /**
   * Pops the next available chain into `chain`. Returns false when the
   * ring is empty; throws VirtqError for a malformed chain. `maxBytes` caps
   * the chain's total length (MAX_CHAIN_BYTES; a device that never copies
   * the buffers, like the balloon's free page reports, may allow more).
   * Without `translate` the buffers are kept as RAM offsets (gpa - base):
   * for a device that hands guest-physical ranges on without touching them.
   */
  pop(mem: DmaMemory, chain: DescChain, maxBytes = MAX_CHAIN_BYTES, translate = true): boolean {
    if (!this.ready) return false;
    const dv = mem.dv;
    const availIdx = dv.getUint16(dmaHost(mem, this.availAddr + 2, 2, false), true);
    if (availIdx === this.lastAvail) return false;
    if (((availIdx - this.lastAvail) & 0xffff) > this.num) throw new VirtqError('available index moved by more than the queue size');
    const head = dv.getUint16(dmaHost(mem, this.availAddr + 4 + 2 * (this.lastAvail % this.num), 2, false), true);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (this.eventIdx) { // avail_event
      const ae = dmaHost(mem, this.usedAddr + 4 + 8 * this.num, 2, true);
      dv.setUint16(ae, this.lastAvail, true);
      mem.written?.(ae, 2);
    }
    if (head >= this.num) throw new VirtqError(`head index ${head} out of range`);
    // Translating a later buffer may evict an earlier one's page (host swap): then translate the chain again.
    for (let round = 0; ; round++) {
      const epoch = mem.epoch?.() ?? 0;
      this.walk(mem, chain, head, maxBytes, translate);
      if ((mem.epoch?.() ?? 0) === epoch || round >= 3) return true;
    }
  }

  /** Reads the chain starting at descriptor `head` into `chain`; throws VirtqError when it is malformed. */
  private walk(mem: DmaMemory, chain: DescChain, head: number, maxBytes: number, translate: boolean): void {
    const dv = mem.dv;
    chain.head = head; chain.count = 0; chain.readBytes = 0; chain.writeBytes = 0;
    let tableSize = this.num, i = head, inIndirect = false, seen = 0, total = 0, descs = 0;
    for (;;) {
      if (++seen > tableSize) throw new VirtqError('descriptor chain loops or is too long');
      // Ring descriptors are 16-byte aligned (validate), so each lies in one page; an indirect table was copied out.
      const tv = inIndirect ? this.indirectView : dv, d = inIndirect ? 16 * i : dmaHost(mem, this.descAddr + 16 * i, 16, false);
      const addr = tv.getUint32(d + 4, true) * 4294967296 + tv.getUint32(d, true);
      const len = tv.getUint32(d + 8, true), flags = tv.getUint16(d + 12, true), next = tv.getUint16(d + 14, true);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.indirect) throw new VirtqError('indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC');
        if (inIndirect) throw new VirtqError('nested indirect descriptor table');
        if (flags & VIRTQ_DESC_F_NEXT) throw new VirtqError('indirect descriptor with NEXT set');
        if (len === 0 || len % 16 !== 0 || len / 16 > QUEUE_MAX) throw new VirtqError(`bad indirect table length ${len}`);
        this.ramOffset(mem, addr, len, 'indirect table');
        this.copyOut(mem, addr, this.indirect16.subarray(0, len));
        tableSize = len / 16; i = 0; inIndirect = true; seen = 0;
        continue;
      }
      const writable = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      if (!writable && chain.writeBytes > 0) throw new VirtqError('device-readable buffer after a device-writable one');
      if (++descs > QUEUE_MAX + 1) throw new VirtqError('descriptor chain too long');
      total += len;
      if (total > maxBytes) throw new VirtqError(`descriptor chain longer than ${maxBytes} bytes`);
      this.addBuffer(mem, chain, addr, len, writable, translate);
      if (writable) chain.writeBytes += len; else chain.readBytes += len;
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) return;
      if (next >= tableSize) throw new VirtqError(`next index ${next} out of range`);
      i = next;
    }
  }

  /** Returns a chain to the driver through the used ring with `written` bytes. */
  push(mem: DmaMemory, head: number, written: number): void {
    const dv = mem.dv, elem = this.usedAddr + 4 + 8 * (this.usedIdx % this.num);
    // The element's two words separately: a 4-byte-aligned used ring may put an element across a page boundary.
    const id = dmaHost(mem, elem, 4, true), len = dmaHost(mem, elem + 4, 4, true);
    dv.setUint32(id, head, true);
    dv.setUint32(len, written, true);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    const idx = dmaHost(mem, this.usedAddr + 2, 2, true);
    dv.setUint16(idx, this.usedIdx, true);
    mem.written?.(id, 4);
    mem.written?.(len, 4);
    mem.written?.(idx, 2);
  }

  /** Whether the driver wants an interrupt for the buffers used since the last one (§2.7.10). */
  shouldNotify(mem: DmaMemory): boolean {
    const old = this.signalledUsed, now = this.usedIdx;
    if (old === now) return false;
    this.signalledUsed = now;
    if (this.eventIdx) {
      const usedEvent = mem.dv.getUint16(dmaHost(mem, this.availAddr + 4 + 2 * this.num, 2, false), true);
      return ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
    }
    return (mem.dv.getUint16(dmaHost(mem, this.availAddr, 2, false), true) & 1) === 0; // VIRTQ_AVAIL_F_NO_INTERRUPT
  }
}
