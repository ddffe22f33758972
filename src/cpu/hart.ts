/**
 * A RISC-V hart: architectural state, the software TLB, and the memory
 * access path every load, store and fetch goes through.
 *
 * The interpreter (interpreter.ts) drives it. Faults never throw: an access
 * that faults returns -1 after recording the cause and address in the
 * state's exit fields, and the run loop turns that into an exit reason.
 */
import { HartState, S, HART_STATE_BYTES } from './hart-state.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import {
  Tlb, TLB_MASK, TLB_BYTES, TLB_WORDS, TLB_W_R, TLB_W_W, TLB_W_HOST, PAGE_MASK, ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, XLATE_PAGE_FAULT, XLATE_MMIO,
  type PageTranslator,
} from '../mmu/tlb.js';
import type { CsrFile } from './csr-file.js';

/** Why `run` returned (modelled on KVM's exit reasons). */
export const enum ExitReason {
  /** The instruction budget ran out; call `run` again. */
  BUDGET = 0,
  /** A synchronous exception the hart does not handle itself (cause in s[EXIT_CAUSE]). */
  EXCEPTION = 1,
  /** The hart executed WFI and waits for an interrupt. */
  HALT = 2,
  /** A load or store hit device memory; see Hart.mmio* and complete it with completeMmio. */
  MMIO = 3,
  /** The guest asked the machine to power off or reset (set by the VMM's device dispatch). */
  SHUTDOWN = 4,
  /** An ecall from S-mode for the VMM's built-in SBI firmware (like KVM_EXIT_RISCV_SBI). */
  HYPERCALL = 5,
}

/** Exception causes (privileged spec §3.1.15, Table 3.6 "mcause values"). */
export const CAUSE_MISALIGNED_FETCH = 0;
export const CAUSE_FETCH_ACCESS = 1;
export const CAUSE_ILLEGAL_INSTRUCTION = 2;
export const CAUSE_BREAKPOINT = 3;
export const CAUSE_MISALIGNED_LOAD = 4;
export const CAUSE_LOAD_ACCESS = 5;
export const CAUSE_MISALIGNED_STORE = 6;
export const CAUSE_STORE_ACCESS = 7;
export const CAUSE_USER_ECALL = 8;
export const CAUSE_FETCH_PAGE_FAULT = 12;
export const CAUSE_LOAD_PAGE_FAULT = 13;
export const CAUSE_STORE_PAGE_FAULT = 15;

/** Returned by `addrW` when a store straddles two pages (use storeSplit). */
export const ADDR_SPLIT = -2;
/** Returned by `addrR`/`addrW` for device memory: the instruction leaves as an MMIO exit. */
export const ADDR_MMIO = -3;

/**
 * An execution engine for a hart: the JIT (jit/engine.ts) implements it;
 * without one the interpreter runs. `run` has the interpreter's contract.
 */
export interface ExecEngine {
  run(h: Hart, budget: number): ExitReason;
}

/** A hart state in a fresh CPU slot of `ram` (or a private one when the slots are used up). */
export function slotState(ram: GuestMemory): HartState {
  const slot = ram.allocCpuSlot();
  return slot >= 0 ? new HartState(ram.memory.buffer, slot) : new HartState();
}

/** One hart with its TLB, attached to guest RAM through a translator. */
export class Hart {
  readonly st: HartState;
  readonly ram: GuestMemory;
  /** The TLB for data accesses in the current context. */
  tlb: Tlb;
  /** The TLB for instruction fetches in the current context. */
  fetchTlb: Tlb;
  /** One TLB per translation context (system VM: U, S, S+SUM, M), so mode switches need no flush. */
  readonly tlbs: Tlb[];
  translator: PageTranslator;
  /** The privileged CSR file (system VM); null in the process VM, which has user-level CSRs only. */
  csrs: CsrFile | null = null;
  /** Set (system VM) when mstatus.FS is Off: FP instructions are illegal. */
  fpOff = false;
  /** MMIO exit details: physical address, size, direction, data and destination. */
  mmioAddr = 0;
  mmioSize = 0;
  mmioIsWrite = false;
  mmioLo = 0;
  mmioHi = 0;
  /** Destination register*2 and load kind (funct3; +8 for an FP register). */
  mmioRd = 0;
  mmioKind = 0;
  /** Reason the interpreter left early after a CSR write (state must be re-evaluated). */
  csrChanged = false;
  /** Timebase frequency for the `time` CSR, in Hz (QEMU virt: 10 MHz). */
  timebaseHz = 10_000_000;

  /** The engine that runs this hart (the JIT), or null for the interpreter. */
  engine: ExecEngine | null = null;
  /** Byte offset of this hart's CPU slot in guest RAM's memory (-1: state lives outside, no JIT). */
  readonly slot: number;

  /**
   * A hart on `ram`. Without an explicit `st`, its state and TLBs are put
   * in a CPU slot of `ram`'s memory, where generated code can reach them;
   * an `st` made by `slotState` keeps its slot.
   */
  constructor(ram: GuestMemory, translator: PageTranslator, st?: HartState) {
    this.ram = ram;
    this.translator = translator;
    this.slot = st === undefined ? ram.allocCpuSlot() : st.buffer === ram.memory.buffer ? st.base : -1;
    this.st = st ?? (this.slot >= 0 ? new HartState(ram.memory.buffer, this.slot) : new HartState());
    this.tlbs = [];
    this.tlb = this.fetchTlb = this.addTlb();
  }

  /** Adds a TLB context (in the CPU slot when there is one; up to 4 fit). */
  addTlb(): Tlb {
    const k = this.tlbs.length;
    const t = this.slot >= 0 && k < 4 ? new Tlb(this.ram.memory.buffer, this.slot + HART_STATE_BYTES + k * TLB_BYTES)
      : new Tlb();
    this.tlbs.push(t);
    return t;
  }

  /** Gives the CPU slot back to the RAM (the hart is gone for good). */
  release(): void {
    if (this.slot >= 0) this.ram.freeCpuSlot(this.slot);
  }

  /** Flushes every TLB context (sfence.vma, satp writes, munmap). */
  flushTlbs(): void {
    for (const t of this.tlbs) t.flushAll();
  }

  /** Flushes the translations of virtual address (lo, hi) from every TLB context (sfence.vma rs1≠x0). */
  flushTlbPage(lo: number, hi: number): void {
    for (const t of this.tlbs) t.flushPage(lo, hi);
  }

  /** Records an exception (cause, tval) and returns ExitReason.EXCEPTION. */
  raise(cause: number, tvalLo: number, tvalHi: number): ExitReason {
    const s = this.st.s;
    s[S.EXIT_CAUSE] = cause;
    s[S.EXIT_TVAL_LO] = tvalLo;
    s[S.EXIT_TVAL_HI] = tvalHi;
    s[S.RES_VALID] = 0;
    return ExitReason.EXCEPTION;
  }

  /** Host offset for a read of `size` bytes at (lo, hi), or -1 on fault. */
  addrR(lo: number, hi: number, size: number): number {
    const t = this.tlb, i = (lo >>> 12) & TLB_MASK, off = lo & 0xfff;
    const e = t.e, j = i * TLB_WORDS;
    if (e[j + TLB_W_R] === (lo & PAGE_MASK) && e[j + TLB_W_R + 1] === hi && off <= 4096 - size) return e[j + TLB_W_HOST]! + off;
    return this.slowR(lo, hi, size);
  }

  /** Host offset for a write of `size` bytes, -1 on fault, ADDR_SPLIT if it straddles pages. */
  addrW(lo: number, hi: number, size: number): number {
    const t = this.tlb, i = (lo >>> 12) & TLB_MASK, off = lo & 0xfff;
    const e = t.e, j = i * TLB_WORDS;
    if (e[j + TLB_W_W] === (lo & PAGE_MASK) && e[j + TLB_W_W + 1] === hi && off <= 4096 - size) return e[j + TLB_W_HOST]! + off;
    return this.slowW(lo, hi, size);
  }

  /** Translates one page through the translator and fills the TLB; -1 on fault (recorded). */
  private fillPage(lo: number, hi: number, access: number, size = 1): number {
    const tr = this.translator, epoch = this.ram.epoch;
    const host = tr.translatePage(lo, hi, access, size);
    // The fill remapped guest RAM (copy-on-write, swap): translated code that called it may hold a dropped
    // frame's addend in a loop's one-page load cache (jit/unit-abi.ts L_CTAG), so it leaves after the store.
    if (this.ram.epoch !== epoch) this.st.s[S.JIT_FLUSHED] = 1;
    if (host === XLATE_MMIO) return ADDR_MMIO;
    if (host < 0) {
      const cause = access === ACCESS_EXEC
        ? (host === XLATE_PAGE_FAULT ? CAUSE_FETCH_PAGE_FAULT : CAUSE_FETCH_ACCESS)
        : access === ACCESS_WRITE
          ? (host === XLATE_PAGE_FAULT ? CAUSE_STORE_PAGE_FAULT : CAUSE_STORE_ACCESS)
          : (host === XLATE_PAGE_FAULT ? CAUSE_LOAD_PAGE_FAULT : CAUSE_LOAD_ACCESS);
      this.raise(cause, lo, hi);
      return -1;
    }
    let perms = tr.grantedPerms | access;
    if (this.ram.codePages[host >>> 12] !== 0) {
      // Translated code depends on this page: a write drops it first (as QEMU's
      // TLB_NOTDIRTY), and the write permission is not cached while code remains.
      if (access === ACCESS_WRITE && this.ram.onCodeWrite !== null) {
        this.ram.onCodeWrite(host >>> 12);
        this.st.s[S.JIT_FLUSHED] = 1;
      }
      if (this.ram.codePages[host >>> 12] !== 0) perms &= ~ACCESS_WRITE;
    }
    if (tr.noCache !== true) (access === ACCESS_EXEC ? this.fetchTlb : this.tlb).fill(lo, hi, host, perms, tr.leafLevel ?? 0);
    return host;
  }

  /** Records an MMIO access at virtual (lo, hi) whose page translated to device memory. */
  private mmio(lo: number, size: number, write: boolean): number {
    this.mmioAddr = (this.translator.mmioPage ?? 0) + (lo & 0xfff);
    this.mmioSize = size;
    this.mmioIsWrite = write;
    return ADDR_MMIO;
  }

  private slowR(lo: number, hi: number, size: number, retry = 0): number {
    const off = lo & 0xfff;
    const host = this.fillPage(lo, hi, ACCESS_READ, size);
    if (host === ADDR_MMIO) return this.mmio(lo, size, false);
    if (host < 0) return -1;
    if (off + size <= 4096) return host + off;
    // Straddles two pages: gather the bytes into the scratch area.
    const nlo = (lo & PAGE_MASK) + 4096 | 0, nhi = nlo === 0 ? (hi + 1) | 0 : hi;
    const epoch = this.ram.epoch;
    const host2 = this.fillPage(nlo, nhi, ACCESS_READ, size - (4096 - off));
    if (host2 === ADDR_MMIO) { this.raise(CAUSE_LOAD_ACCESS, lo, hi); return -1; }
    if (host2 < 0) return -1;
    if (this.ram.epoch !== epoch && retry < 4) return this.slowR(lo, hi, size, retry + 1); // filling the second page may have evicted the first
    const u8 = this.ram.u8, sc = this.ram.scratch, first = 4096 - off;
    for (let k = 0; k < size; k++) u8[sc + k] = k < first ? u8[host + off + k]! : u8[host2 + k - first]!;
    return sc;
  }

  private slowW(lo: number, hi: number, size: number): number {
    const off = lo & 0xfff;
    const host = this.fillPage(lo, hi, ACCESS_WRITE, size);
    if (host === ADDR_MMIO) return this.mmio(lo, size, true);
    if (host < 0) return -1;
    if (off + size <= 4096) return host + off;
    const nlo = (lo & PAGE_MASK) + 4096 | 0, nhi = nlo === 0 ? (hi + 1) | 0 : hi;
    const host2 = this.fillPage(nlo, nhi, ACCESS_WRITE, size - (4096 - off));
    if (host2 === ADDR_MMIO) { this.raise(CAUSE_STORE_ACCESS, lo, hi); return -1; }
    if (host2 < 0) return -1;
    return ADDR_SPLIT;
  }

  /** Completes a store that straddles two pages (both already checked writable). */
  storeSplit(lo: number, hi: number, size: number, vlo: number, vhi: number): void {
    for (let k = 0; k < size; k++) {
      const alo = (lo + k) | 0, ahi = (alo >>> 0) < (lo >>> 0) ? (hi + 1) | 0 : hi;
      const p = this.addrW(alo, ahi, 1);
      this.ram.u8[p] = k < 4 ? vlo >>> (8 * k) : vhi >>> (8 * (k - 4));
    }
  }

  /**
   * Finishes the instruction that left with ExitReason.MMIO: for a load,
   * (lo, hi) is the device's value, extended per the load kind into the
   * destination register; then pc moves past the instruction.
   */
  completeMmio(lo: number, hi: number): void {
    const st = this.st, s = st.s;
    if (!this.mmioIsWrite) {
      const rd = this.mmioRd, k = this.mmioKind;
      let vlo = lo, vhi = hi;
      switch (k) {
        case 0: vlo = (lo << 24) >> 24; vhi = vlo >> 31; break; // lb
        case 1: vlo = (lo << 16) >> 16; vhi = vlo >> 31; break; // lh
        case 2: vhi = lo >> 31; break; // lw
        case 4: vlo = lo & 0xff; vhi = 0; break; // lbu
        case 5: vlo = lo & 0xffff; vhi = 0; break; // lhu
        case 6: vhi = 0; break; // lwu
        case 10: vhi = -1; break; // flw: NaN-boxed
        default: break; // ld, fld
      }
      if (k >= 8) { st.f[rd] = vlo; st.f[rd + 1] = vhi; if (this.csrs !== null) this.csrs.dirtyFs(); }
      else if (rd !== 0) { st.x[rd] = vlo; st.x[rd + 1] = vhi; }
    }
    const ilen = s[S.EXIT_ILEN]!, nlo = (s[S.PC_LO]! + ilen) | 0;
    if ((nlo >>> 0) < (ilen >>> 0)) s[S.PC_HI] = (s[S.PC_HI]! + 1) | 0;
    s[S.PC_LO] = nlo;
    st.instret++;
  }

  /** Host offset of the page holding pc for fetch, or -1 on fault (recorded). */
  fetchPage(lo: number, hi: number): number {
    const cached = this.fetchTlb.fetchHost(lo, hi);
    if (cached >= 0) return cached;
    const host = this.fillPage(lo, hi, ACCESS_EXEC);
    if (host === ADDR_MMIO) { this.raise(CAUSE_FETCH_ACCESS, lo, hi); return -1; }
    return host;
  }

  /** Reads 16 bits at an instruction address (for fetches that straddle pages); -1 on fault. */
  fetchHalf(lo: number, hi: number): number {
    const page = this.fetchPage(lo & PAGE_MASK, hi);
    if (page < 0) return -1;
    return this.ram.dv.getUint16(page + (lo & 0xfff), true);
  }

  /**
   * Reads a CSR for the user-level set (Zicsr, Zicntr, F): the value goes
   * to csrVal[0..1]. Returns false if the CSR does not exist here.
   */
  csrRead(csr: number): boolean {
    const c = this.csrs;
    if (c !== null) {
      if (!c.read(csr)) return false;
      this.csrVal[0] = c.val[0]!; this.csrVal[1] = c.val[1]!;
      return true;
    }
    const s = this.st.s, v = this.csrVal;
    switch (csr) {
      case 0x001: v[0] = s[S.FFLAGS]!; v[1] = 0; return true; // fflags
      case 0x002: v[0] = s[S.FRM]!; v[1] = 0; return true; // frm
      case 0x003: v[0] = (s[S.FRM]! << 5) | s[S.FFLAGS]!; v[1] = 0; return true; // fcsr
      case 0xc00: case 0xc02: { // cycle, instret (Zicntr)
        const n = this.st.instret;
        v[0] = n | 0; v[1] = Math.floor(n / 4294967296) | 0; return true;
      }
      case 0xc01: { // time (Zicntr), ticking at the timebase frequency
        const t = Math.floor(globalThis.performance.now() * (this.timebaseHz / 1000));
        v[0] = t | 0; v[1] = Math.floor(t / 4294967296) | 0; return true;
      }
      default: return false;
    }
  }

  /** Writes a CSR with (lo, hi); returns false if it is absent, read-only or not allowed. */
  csrWrite(csr: number, lo: number, hi: number): boolean {
    const c = this.csrs;
    if (c !== null) {
      if (!c.write(csr, lo, hi)) return false;
      if (c.changed) this.csrChanged = true;
      return true;
    }
    const s = this.st.s;
    switch (csr) {
      case 0x001: s[S.FFLAGS] = lo & 0x1f; return true;
      case 0x002: s[S.FRM] = lo & 7; return true;
      case 0x003: s[S.FFLAGS] = lo & 0x1f; s[S.FRM] = (lo >>> 5) & 7; return true;
      default: return false;
    }
  }

  /** CSR read result: [lo, hi]. */
  readonly csrVal = new Int32Array(2);
}
