/**
 * virtio-blk, the block device (virtio 1.2 §5.2): one request queue whose
 * requests (read, write, flush, get ID, discard, write zeroes) are served
 * synchronously from a BlockBackend, in order, when the driver kicks.
 *
 * Every request is a 16-byte device-readable header (type, reserved,
 * sector), its data, and a device-writable status byte at the very end
 * (§5.2.6). Requests the driver gets wrong in ways the protocol can report
 * (short header, unaligned length, sectors past the end, writes to a
 * read-only disk) complete with VIRTIO_BLK_S_IOERR or _UNSUPP; a chain
 * without room for the status byte is malformed and throws VirtqError
 * (the transport then sets DEVICE_NEEDS_RESET). Host I/O failures become
 * VIRTIO_BLK_S_IOERR and are counted.
 */
import type { VirtioDevice, VirtioContext } from './mmio.js';
import { VirtqError, QUEUE_MAX, MAX_CHAIN_BYTES, type DescChain, type DmaMemory } from './queue.js';
import type { BlockBackend } from './block-backend.js';

/** Device ID of the block device (virtio 1.2 §5.2.1). */
export const VIRTIO_ID_BLOCK = 2;
/** Feature bits (virtio 1.2 §5.2.3). */
export const VIRTIO_BLK_F_SIZE_MAX = 1, VIRTIO_BLK_F_SEG_MAX = 2, VIRTIO_BLK_F_RO = 5, VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9, VIRTIO_BLK_F_DISCARD = 13, VIRTIO_BLK_F_WRITE_ZEROES = 14;
/** Request types (virtio 1.2 §5.2.6). */
export const VIRTIO_BLK_T_IN = 0, VIRTIO_BLK_T_OUT = 1, VIRTIO_BLK_T_FLUSH = 4, VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_DISCARD = 11, VIRTIO_BLK_T_WRITE_ZEROES = 13;
/** Status byte values (virtio 1.2 §5.2.6). */
export const VIRTIO_BLK_S_OK = 0, VIRTIO_BLK_S_IOERR = 1, VIRTIO_BLK_S_UNSUPP = 2;
/** The protocol's sector size: capacity and sector fields count 512 bytes (§5.2.4, §5.2.6). */
export const SECTOR_SIZE = 512;
/** Request header: le32 type, le32 reserved, le64 sector (§5.2.6). */
const HEADER_BYTES = 16;
/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags (§5.2.6). */
const SEGMENT_BYTES = 16;
/** The unmap flag of a discard/write-zeroes segment (§5.2.6: flags bit 0). */
const SEG_FLAG_UNMAP = 1;
/** Device ID string length for GET_ID (§5.2.6: up to 20 bytes, NUL-padded). */
export const VIRTIO_BLK_ID_BYTES = 20;
/** Largest data segment (size_max) and segment count (seg_max: queue size minus header and status). */
const SIZE_MAX = 64 * 1024, SEG_MAX = QUEUE_MAX - 2;
/** Discard / write-zeroes limits offered in the configuration space. */
const MAX_DISCARD_SECTORS = 2 * 1024 * 1024, MAX_WRITE_ZEROES_SECTORS = 64 * 1024, MAX_DWZ_SEG = 64;
/** Configuration space offsets (§5.2.4 struct virtio_blk_config). */
const CFG_CAPACITY = 0, CFG_SIZE_MAX = 8, CFG_SEG_MAX = 12, CFG_BLK_SIZE = 20, CFG_MAX_DISCARD_SECTORS = 36;
const CFG_MAX_DISCARD_SEG = 40, CFG_DISCARD_ALIGN = 44, CFG_MAX_WZ_SECTORS = 48, CFG_MAX_WZ_SEG = 52, CFG_WZ_MAY_UNMAP = 56;
const CFG_BYTES = 60;

/** Options for a block device. */
export interface VirtioBlkOptions {
  /** Device ID string returned by GET_ID (at most 20 bytes used). */
  serial?: string;
  /** Pass guest discards to the backend (false: accept and ignore them, like QEMU's discard=ignore). */
  discard?: boolean;
  /** Discard granularity in bytes (e.g. the qcow2 cluster size); default 4096. */
  discardGranularity?: number;
  /** Whether write-zeroes with unmap can deallocate (qcow2 yes, raw no). */
  zeroesMayUnmap?: boolean;
}

/** The virtio block device. */
export class VirtioBlk implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly name = 'blk';
  readonly numQueues = 1;
  readonly featuresLo: number;
  readonly featuresHi = 0;
  /** Disk size in 512-byte sectors. */
  readonly capacity: number;
  /** Counters (for tests and benchmarks). */
  requests = 0;
  bytesRead = 0;
  bytesWritten = 0;
  ioErrors = 0;
  /** The last host I/O error message. */
  lastError = '';
  private readonly config = new Uint8Array(CFG_BYTES);
  private readonly id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  private readonly passDiscard: boolean;
  private readonly hdr = new Uint8Array(HEADER_BYTES);
  private readonly hdv = new DataView(this.hdr.buffer);
  private scratch = new Uint8Array(SIZE_MAX);

  constructor(readonly backend: BlockBackend, opts: VirtioBlkOptions = {}) {
    this.capacity = Math.floor(backend.size / SECTOR_SIZE);
    this.passDiscard = opts.discard ?? true;
    let f = (1 << VIRTIO_BLK_F_SIZE_MAX) | (1 << VIRTIO_BLK_F_SEG_MAX) | (1 << VIRTIO_BLK_F_BLK_SIZE) | (1 << VIRTIO_BLK_F_FLUSH);
    f |= backend.readOnly ? 1 << VIRTIO_BLK_F_RO : (1 << VIRTIO_BLK_F_DISCARD) | (1 << VIRTIO_BLK_F_WRITE_ZEROES);
    this.featuresLo = f;
    const dv = new DataView(this.config.buffer);
    dv.setUint32(CFG_CAPACITY, this.capacity % 4294967296, true);
    dv.setUint32(CFG_CAPACITY + 4, Math.floor(this.capacity / 4294967296), true);
    dv.setUint32(CFG_SIZE_MAX, SIZE_MAX, true);
    dv.setUint32(CFG_SEG_MAX, SEG_MAX, true);
    dv.setUint32(CFG_BLK_SIZE, SECTOR_SIZE, true);
    dv.setUint32(CFG_MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS, true);
    dv.setUint32(CFG_MAX_DISCARD_SEG, MAX_DWZ_SEG, true);
    dv.setUint32(CFG_DISCARD_ALIGN, Math.max(1, Math.floor((opts.discardGranularity ?? 4096) / SECTOR_SIZE)), true);
    dv.setUint32(CFG_MAX_WZ_SECTORS, MAX_WRITE_ZEROES_SECTORS, true);
    dv.setUint32(CFG_MAX_WZ_SEG, MAX_DWZ_SEG, true);
    dv.setUint8(CFG_WZ_MAY_UNMAP, opts.zeroesMayUnmap ? 1 : 0);
    const serial = new TextEncoder().encode(opts.serial ?? '');
    this.id.set(serial.subarray(0, VIRTIO_BLK_ID_BYTES));
  }

  configRead(offset: number, size: number): number {
    if (offset < 0 || offset + size > CFG_BYTES) return 0;
    const dv = new DataView(this.config.buffer);
    return size === 1 ? dv.getUint8(offset) : size === 2 ? dv.getUint16(offset, true) : dv.getUint32(offset, true) | 0;
  }

  configWrite(): void { /* writeback is not offered (no VIRTIO_BLK_F_CONFIG_WCE): the space is read-only */ }
  activate(ctx: VirtioContext): void { this.queueNotify(ctx, 0); }
  reset(): void { /* requests complete synchronously: nothing in flight */ }

  /** Serves every available request on the queue, in order. */
  queueNotify(ctx: VirtioContext, q: number): void {
    const queue = ctx.queues[q]!, chain = ctx.chain, mem = ctx.mem;
    while (queue.pop(mem, chain)) {
      const used = this.handle(ctx, chain);
      queue.push(mem, chain.head, used);
    }
    ctx.notifyUsed(q);
  }

  /** Copies device-readable bytes [from, from + dst.length) of the chain into `dst`. */
  private gather(mem: DmaMemory, chain: DescChain, from: number, dst: Uint8Array): void {
    let pos = 0, o = 0;
    for (let i = 0; i < chain.count && o < dst.length; i++) {
      if (chain.writable[i]) break;
      const l = chain.len[i]!;
      if (pos + l > from) {
        const s = Math.max(0, from - pos), take = Math.min(l - s, dst.length - o), at = chain.off[i]! + s;
        dst.set(mem.u8.subarray(at, at + take), o);
        o += take;
      }
      pos += l;
    }
  }

  /** RAM offset of bytes [from, from+len) of the readable or writable part if one buffer holds them all, else -1. */
  private span(chain: DescChain, writable: boolean, from: number, len: number): number {
    let pos = 0;
    for (let i = 0; i < chain.count; i++) {
      if ((chain.writable[i] === 1) !== writable) continue;
      const l = chain.len[i]!;
      if (from >= pos && from < pos + l) return from + len <= pos + l ? chain.off[i]! + (from - pos) : -1;
      pos += l;
    }
    return -1;
  }

  private buffer(n: number): Uint8Array {
    if (this.scratch.length < n) this.scratch = new Uint8Array(Math.min(MAX_CHAIN_BYTES, Math.max(n, 2 * this.scratch.length)));
    return this.scratch.subarray(0, n);
  }

  /** Handles one request; returns the number of bytes written to the chain. */
  private handle(ctx: VirtioContext, chain: DescChain): number {
    const mem = ctx.mem;
    if (chain.writeBytes < 1) throw new VirtqError('virtio-blk request without a device-writable status byte');
    this.requests++;
    const dataIn = chain.writeBytes - 1; // device-writable bytes before the status byte
    let status = VIRTIO_BLK_S_OK, written = 0;
    try {
      if (chain.readBytes < HEADER_BYTES) {
        status = VIRTIO_BLK_S_IOERR;
      } else {
        this.gather(mem, chain, 0, this.hdr);
        const type = this.hdv.getUint32(0, true);
        const secLo = this.hdv.getUint32(8, true), secHi = this.hdv.getUint32(12, true);
        const sector = secHi >= 0x200000 ? Infinity : secHi * 4294967296 + secLo;
        const dataOut = chain.readBytes - HEADER_BYTES;
        switch (type) {
          case VIRTIO_BLK_T_IN: {
            if (dataIn % SECTOR_SIZE !== 0 || !this.inRange(sector, dataIn / SECTOR_SIZE)) { status = VIRTIO_BLK_S_IOERR; break; }
            const at = this.span(chain, true, 0, dataIn);
            if (at >= 0) {
              this.backend.read(sector * SECTOR_SIZE, mem.u8.subarray(at, at + dataIn));
              mem.written?.(at, dataIn);
            } else {
              const buf = this.buffer(dataIn);
              this.backend.read(sector * SECTOR_SIZE, buf);
              chain.write(mem, 0, buf);
            }
            written = dataIn;
            this.bytesRead += dataIn;
            break;
          }
          case VIRTIO_BLK_T_OUT: {
            if (this.backend.readOnly || dataOut % SECTOR_SIZE !== 0 || !this.inRange(sector, dataOut / SECTOR_SIZE)) { status = VIRTIO_BLK_S_IOERR; break; }
            const at = this.span(chain, false, HEADER_BYTES, dataOut);
            let data: Uint8Array;
            if (at >= 0) data = mem.u8.subarray(at, at + dataOut);
            else { data = this.buffer(dataOut); this.gather(mem, chain, HEADER_BYTES, data); }
            this.backend.write(sector * SECTOR_SIZE, data);
            // Without VIRTIO_BLK_F_FLUSH negotiated, completed writes must be stable (§5.2.6.2).
            if ((ctx.featuresLo & (1 << VIRTIO_BLK_F_FLUSH)) === 0) this.backend.flush();
            this.bytesWritten += dataOut;
            break;
          }
          case VIRTIO_BLK_T_FLUSH:
            this.backend.flush();
            break;
          case VIRTIO_BLK_T_GET_ID:
            written = chain.write(mem, 0, this.id.subarray(0, Math.min(VIRTIO_BLK_ID_BYTES, dataIn)));
            break;
          case VIRTIO_BLK_T_DISCARD:
          case VIRTIO_BLK_T_WRITE_ZEROES:
            status = this.discardOrZero(ctx, chain, type, dataOut);
            break;
          default:
            status = VIRTIO_BLK_S_UNSUPP;
        }
      }
    } catch (e) {
      if (e instanceof VirtqError) throw e;
      this.ioErrors++;
      this.lastError = e instanceof Error ? e.message : String(e);
      status = VIRTIO_BLK_S_IOERR;
      written = 0;
    }
    this.hdr[0] = status;
    chain.write(mem, dataIn, this.hdr.subarray(0, 1));
    return written + 1;
  }

  /** True if sectors [sector, sector + n) lie on the disk. */
  private inRange(sector: number, n: number): boolean { return sector + n <= this.capacity; }

  /** DISCARD and WRITE_ZEROES: a list of segments, all validated before any is applied. */
  private discardOrZero(ctx: VirtioContext, chain: DescChain, type: number, dataOut: number): number {
    const zeroes = type === VIRTIO_BLK_T_WRITE_ZEROES;
    const feature = zeroes ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD;
    if ((ctx.featuresLo & (1 << feature)) === 0) return VIRTIO_BLK_S_UNSUPP;
    if (this.backend.readOnly) return VIRTIO_BLK_S_IOERR;
    const n = dataOut / SEGMENT_BYTES;
    if (n < 1 || !Number.isInteger(n) || n > MAX_DWZ_SEG) return VIRTIO_BLK_S_IOERR;
    const segs = new Uint8Array(dataOut), dv = new DataView(segs.buffer);
    this.gather(ctx.mem, chain, HEADER_BYTES, segs);
    const maxSectors = zeroes ? MAX_WRITE_ZEROES_SECTORS : MAX_DISCARD_SECTORS;
    for (let i = 0; i < n; i++) {
      const hi = dv.getUint32(16 * i + 4, true), sector = hi >= 0x200000 ? Infinity : hi * 4294967296 + dv.getUint32(16 * i, true);
      const count = dv.getUint32(16 * i + 8, true), flags = dv.getUint32(16 * i + 12, true);
      // Unknown flags, or unmap on a discard, are unsupported (§5.2.6.2).
      if ((flags & ~SEG_FLAG_UNMAP) !== 0 || (!zeroes && (flags & SEG_FLAG_UNMAP))) return VIRTIO_BLK_S_UNSUPP;
      if (count > maxSectors || !this.inRange(sector, count)) return VIRTIO_BLK_S_IOERR;
    }
    for (let i = 0; i < n; i++) {
      const sector = dv.getUint32(16 * i + 4, true) * 4294967296 + dv.getUint32(16 * i, true);
      const count = dv.getUint32(16 * i + 8, true), unmap = (dv.getUint32(16 * i + 12, true) & SEG_FLAG_UNMAP) !== 0;
      if (zeroes) this.backend.writeZeroes(sector * SECTOR_SIZE, count * SECTOR_SIZE, unmap);
      else if (this.passDiscard) this.backend.discard(sector * SECTOR_SIZE, count * SECTOR_SIZE);
    }
    return VIRTIO_BLK_S_OK;
  }
}
