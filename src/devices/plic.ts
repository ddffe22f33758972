/**
 * SiFive PLIC (platform-level interrupt controller) as on QEMU's `virt`
 * board: 96 sources (0 reserved), priorities 0..7, and two contexts per hart
 * (context 2h = hart h M-mode -> MEIP, 2h+1 = S-mode -> SEIP, QEMU's "MS"
 * hart configuration).
 *
 * Register map and semantics: RISC-V PLIC Specification v1.0.0, chapters
 * "Memory Map", "Interrupt Gateways", "Interrupt Priorities", "Interrupt
 * Pending Bits", "Interrupt Enables", "Priority Thresholds", "Interrupt
 * Claim Process" and "Interrupt Completion".
 *
 * Sources are level-triggered. While a source is not in service its pending
 * bit follows its line (a line that drops before being claimed withdraws its
 * request, as QEMU's PLIC does); a claim clears the pending bit and puts the
 * source in service; a completion takes it out of service, and if the line
 * is still high the source becomes pending again.
 */
import { readSubword, mergeSubword } from './word-access.js';
import type { IrqSink, MmioDevice } from './device.js';

/** Where each context's interrupt notification goes: the hart's MEIP (sMode false) or SEIP (sMode true). */
export interface ExternalIrqs {
  /** Drives mip.MEIP (sMode false) or mip.SEIP (sMode true) of `hart`. */
  setExternal(hart: number, sMode: boolean, level: boolean): void;
}

/** Offset of the source priority array, 4 bytes per source (PLIC spec "Memory Map"). */
export const PLIC_PRIORITY = 0x000000;
/** Offset of the pending bit array (PLIC spec "Memory Map"). */
export const PLIC_PENDING = 0x001000;
/** Offset of context 0's enable bits (PLIC spec "Memory Map"). */
export const PLIC_ENABLE = 0x002000;
/** Stride between contexts' enable bit arrays (PLIC spec "Memory Map"). */
export const PLIC_ENABLE_STRIDE = 0x80;
/** Offset of context 0's priority threshold (PLIC spec "Memory Map"). */
export const PLIC_CONTEXT = 0x200000;
/** Stride between contexts' threshold/claim blocks (PLIC spec "Memory Map"). */
export const PLIC_CONTEXT_STRIDE = 0x1000;
/** Offset of the claim/complete register within a context block (PLIC spec "Memory Map"). */
export const PLIC_CLAIM = 4;
/** Most sources the register map allows, including 0 (PLIC spec "Memory Map": 1..1023). */
export const PLIC_MAX_SOURCES = 1024;
/** Most contexts the register map allows (PLIC spec "Memory Map": 15872). */
export const PLIC_MAX_CONTEXTS = 15872;

/** Options for {@link Plic}. */
export interface PlicOptions {
  /** Number of sources including the reserved source 0 (virt: 96, virt.h `VIRT_IRQCHIP_NUM_SOURCES`). */
  numSources?: number;
  /** Highest priority level (virt: 7, virt.h `VIRT_IRQCHIP_NUM_PRIO`). */
  maxPriority?: number;
}

/** A PLIC with two contexts (M, S) per hart; also the IrqSink of the board's device lines. */
export class Plic implements MmioDevice, IrqSink {
  /** Device name for diagnostics. */
  readonly name = 'plic';
  /** Number of sources including source 0. */
  readonly numSources: number;
  /** Number of contexts (2 per hart). */
  readonly numContexts: number;

  private readonly maxPriority: number;
  /** 32-bit words per bit array. */
  private readonly nWords: number;
  private readonly priority: Uint32Array;
  private readonly level: Uint8Array;
  private readonly pending: Uint32Array;
  /** In-service (claimed, not yet completed) bits. */
  private readonly claimed: Uint32Array;
  /** Enable bits, nWords per context. */
  private readonly enable: Uint32Array;
  private readonly threshold: Uint32Array;
  private readonly outLevel: Uint8Array;

  /** A PLIC for `harts` harts notifying `out`. */
  constructor(readonly harts: number, private readonly out: ExternalIrqs, opts: PlicOptions = {}) {
    const n = opts.numSources ?? 96;
    if (!Number.isInteger(n) || n < 2 || n > PLIC_MAX_SOURCES) throw new RangeError(`invalid PLIC source count ${n}`);
    if (!Number.isInteger(harts) || harts < 1 || harts * 2 > PLIC_MAX_CONTEXTS) throw new RangeError(`invalid hart count ${harts}`);
    this.numSources = n;
    this.numContexts = harts * 2;
    this.maxPriority = opts.maxPriority ?? 7;
    this.nWords = (n + 31) >> 5;
    this.priority = new Uint32Array(n);
    this.level = new Uint8Array(n);
    this.pending = new Uint32Array(this.nWords);
    this.claimed = new Uint32Array(this.nWords);
    this.enable = new Uint32Array(this.nWords * this.numContexts);
    this.threshold = new Uint32Array(this.numContexts);
    this.outLevel = new Uint8Array(this.numContexts);
  }

  /** Drives source `irq`'s line (level-triggered); out-of-range sources and source 0 are ignored. */
  setIrq(irq: number, level: boolean): void {
    if (irq <= 0 || irq >= this.numSources) return;
    const v = level ? 1 : 0;
    if (this.level[irq] === v) return;
    this.level[irq] = v;
    const w = irq >> 5;
    const bit = 1 << (irq & 31);
    if ((this.claimed[w] ?? 0) & bit) return; // in service: the gateway holds further requests
    const p = this.pending[w] ?? 0;
    this.pending[w] = level ? p | bit : p & ~bit;
    this.updateOutputs();
  }

  /** Whether source `irq` is pending (for tests and diagnostics). */
  isPending(irq: number): boolean {
    return (((this.pending[irq >> 5] ?? 0) >>> (irq & 31)) & 1) === 1;
  }

  /** Reads 1, 2, 4 or 8 bytes (8 = two 32-bit registers). */
  read(offset: number, size: number, out: Int32Array): void {
    if (size === 8) {
      out[0] = this.readWord(offset);
      out[1] = this.readWord(offset + 4);
    } else {
      out[0] = readSubword(this.readWord(offset & ~3), offset, size);
      out[1] = 0;
    }
  }

  /** Writes 1, 2, 4 or 8 bytes (8 = two 32-bit registers; narrower writes merge into the word). */
  write(offset: number, size: number, lo: number, hi: number): void {
    if (size === 8) {
      this.writeWord(offset, lo);
      this.writeWord(offset + 4, hi);
    } else if (size === 4) {
      this.writeWord(offset, lo);
    } else {
      const base = offset & ~3;
      // Merge with a side-effect-free view of the word (never a claim).
      const cur = (base & (PLIC_CONTEXT_STRIDE - 1)) === PLIC_CLAIM && base >= PLIC_CONTEXT ? 0 : this.readWord(base);
      this.writeWord(base, mergeSubword(cur, offset, size, lo));
    }
  }

  private readWord(off: number): number {
    if (off < PLIC_PENDING) {
      const src = off >> 2;
      return src < this.numSources ? this.priority[src] ?? 0 : 0;
    }
    if (off < PLIC_ENABLE) {
      const w = (off - PLIC_PENDING) >> 2;
      return w < this.nWords ? this.pending[w] ?? 0 : 0;
    }
    if (off < PLIC_CONTEXT) {
      const ctx = Math.floor((off - PLIC_ENABLE) / PLIC_ENABLE_STRIDE);
      const w = ((off - PLIC_ENABLE) % PLIC_ENABLE_STRIDE) >> 2;
      return ctx < this.numContexts && w < this.nWords ? this.enable[ctx * this.nWords + w] ?? 0 : 0;
    }
    const ctx = Math.floor((off - PLIC_CONTEXT) / PLIC_CONTEXT_STRIDE);
    if (ctx >= this.numContexts) return 0;
    const reg = (off - PLIC_CONTEXT) % PLIC_CONTEXT_STRIDE;
    if (reg === 0) return this.threshold[ctx] ?? 0;
    if (reg === PLIC_CLAIM) return this.claim(ctx);
    return 0;
  }

  private writeWord(off: number, v: number): void {
    if (off < PLIC_PENDING) {
      const src = off >> 2;
      if (src === 0 || src >= this.numSources) return; // source 0 does not exist
      this.priority[src] = Math.min(v >>> 0, this.maxPriority); // WARL
      this.updateOutputs();
      return;
    }
    if (off < PLIC_ENABLE) return; // pending bits are read-only
    if (off < PLIC_CONTEXT) {
      const ctx = Math.floor((off - PLIC_ENABLE) / PLIC_ENABLE_STRIDE);
      const w = ((off - PLIC_ENABLE) % PLIC_ENABLE_STRIDE) >> 2;
      if (ctx >= this.numContexts || w >= this.nWords) return;
      let m = w === 0 ? v & ~1 : v; // source 0's enable bit is hardwired to 0
      const top = this.numSources - w * 32; // bits at or above numSources do not exist
      if (top < 32) m &= (1 << top) - 1;
      this.enable[ctx * this.nWords + w] = m;
      this.updateOutputs();
      return;
    }
    const ctx = Math.floor((off - PLIC_CONTEXT) / PLIC_CONTEXT_STRIDE);
    if (ctx >= this.numContexts) return;
    const reg = (off - PLIC_CONTEXT) % PLIC_CONTEXT_STRIDE;
    if (reg === 0) {
      this.threshold[ctx] = Math.min(v >>> 0, this.maxPriority);
      this.updateOutputs();
    } else if (reg === PLIC_CLAIM) {
      this.complete(ctx, v >>> 0);
    }
  }

  /** Highest-priority pending, enabled source above the context's threshold (lowest ID on ties), or 0. */
  private best(ctx: number): number {
    const thr = this.threshold[ctx] ?? 0;
    const eBase = ctx * this.nWords;
    let bestSrc = 0;
    let bestPrio = thr;
    for (let w = 0; w < this.nWords; w++) {
      let bits = (this.pending[w] ?? 0) & (this.enable[eBase + w] ?? 0);
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const src = (w << 5) | b;
        const prio = this.priority[src] ?? 0;
        if (prio > bestPrio) { bestPrio = prio; bestSrc = src; }
      }
    }
    return bestSrc;
  }

  private claim(ctx: number): number {
    const src = this.best(ctx);
    if (src !== 0) {
      const w = src >> 5;
      const bit = 1 << (src & 31);
      this.pending[w] = (this.pending[w] ?? 0) & ~bit;
      this.claimed[w] = (this.claimed[w] ?? 0) | bit;
      this.updateOutputs();
    }
    return src;
  }

  private complete(ctx: number, src: number): void {
    if (src === 0 || src >= this.numSources) return;
    const w = src >> 5;
    const bit = 1 << (src & 31);
    // A completion for a source not enabled for this context is silently ignored (PLIC spec "Interrupt Completion").
    if (!((this.enable[ctx * this.nWords + w] ?? 0) & bit)) return;
    if (!((this.claimed[w] ?? 0) & bit)) return;
    this.claimed[w] = (this.claimed[w] ?? 0) & ~bit;
    if (this.level[src]) this.pending[w] = (this.pending[w] ?? 0) | bit;
    this.updateOutputs();
  }

  private updateOutputs(): void {
    for (let ctx = 0; ctx < this.numContexts; ctx++) {
      const level = this.best(ctx) !== 0 ? 1 : 0;
      if (level !== this.outLevel[ctx]) {
        this.outLevel[ctx] = level;
        this.out.setExternal(ctx >> 1, (ctx & 1) === 1, level === 1);
      }
    }
  }
}
