/**
 * A RISC-V hart: architectural state, the software TLB, and the memory
 * access path every load, store and fetch goes through.
 *
 * The interpreter (interpreter.ts) drives it. Faults never throw: an access
 * that faults returns -1 after recording the cause and address in the
 * state's exit fields, and the run loop turns that into an exit reason.
 */
import { HartState, S } from './hart-state.js';
import type { GuestRam } from '../memory/guest-ram.js';
import {
  Tlb, TLB_MASK, PAGE_MASK, ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, XLATE_PAGE_FAULT,
  type PageTranslator,
} from '../mmu/tlb.js';

/** Why `run` returned (modelled on KVM's exit reasons). */
export const enum ExitReason {
  /** The instruction budget ran out; call `run` again. */
  BUDGET = 0,
  /** A synchronous exception the hart does not handle itself (cause in s[EXIT_CAUSE]). */
  EXCEPTION = 1,
  /** The hart executed WFI and waits for an interrupt. */
  HALT = 2,
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

/** One hart with its TLB, attached to guest RAM through a translator. */
export class Hart {
  readonly st: HartState;
  readonly ram: GuestRam;
  readonly tlb = new Tlb();
  translator: PageTranslator;
  /** Timebase frequency for the `time` CSR, in Hz (QEMU virt: 10 MHz). */
  timebaseHz = 10_000_000;

  constructor(ram: GuestRam, translator: PageTranslator, st: HartState = new HartState()) {
    this.ram = ram;
    this.translator = translator;
    this.st = st;
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
    if (t.tagR[i] === (lo & PAGE_MASK) && t.tagHi[i] === hi && off <= 4096 - size) return t.host[i]! + off;
    return this.slowR(lo, hi, size);
  }

  /** Host offset for a write of `size` bytes, -1 on fault, ADDR_SPLIT if it straddles pages. */
  addrW(lo: number, hi: number, size: number): number {
    const t = this.tlb, i = (lo >>> 12) & TLB_MASK, off = lo & 0xfff;
    if (t.tagW[i] === (lo & PAGE_MASK) && t.tagHi[i] === hi && off <= 4096 - size) return t.host[i]! + off;
    return this.slowW(lo, hi, size);
  }

  /** Translates one page through the translator and fills the TLB; -1 on fault (recorded). */
  private fillPage(lo: number, hi: number, access: number): number {
    const tr = this.translator;
    const host = tr.translatePage(lo, hi, access);
    if (host < 0) {
      const cause = access === ACCESS_EXEC
        ? (host === XLATE_PAGE_FAULT ? CAUSE_FETCH_PAGE_FAULT : CAUSE_FETCH_ACCESS)
        : access === ACCESS_WRITE
          ? (host === XLATE_PAGE_FAULT ? CAUSE_STORE_PAGE_FAULT : CAUSE_STORE_ACCESS)
          : (host === XLATE_PAGE_FAULT ? CAUSE_LOAD_PAGE_FAULT : CAUSE_LOAD_ACCESS);
      this.raise(cause, lo, hi);
      return -1;
    }
    this.tlb.fill(lo, hi, host, tr.grantedPerms | access);
    return host;
  }

  private slowR(lo: number, hi: number, size: number): number {
    const off = lo & 0xfff;
    const host = this.fillPage(lo, hi, ACCESS_READ);
    if (host < 0) return -1;
    if (off + size <= 4096) return host + off;
    // Straddles two pages: gather the bytes into the scratch area.
    const nlo = (lo & PAGE_MASK) + 4096 | 0, nhi = nlo === 0 ? (hi + 1) | 0 : hi;
    const host2 = this.fillPage(nlo, nhi, ACCESS_READ);
    if (host2 < 0) return -1;
    const u8 = this.ram.u8, sc = this.ram.scratch, first = 4096 - off;
    for (let k = 0; k < size; k++) u8[sc + k] = k < first ? u8[host + off + k]! : u8[host2 + k - first]!;
    return sc;
  }

  private slowW(lo: number, hi: number, size: number): number {
    const off = lo & 0xfff;
    const host = this.fillPage(lo, hi, ACCESS_WRITE);
    if (host < 0) return -1;
    if (off + size <= 4096) return host + off;
    const nlo = (lo & PAGE_MASK) + 4096 | 0, nhi = nlo === 0 ? (hi + 1) | 0 : hi;
    if (this.fillPage(nlo, nhi, ACCESS_WRITE) < 0) return -1;
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

  /** Host offset of the page holding pc for fetch, or -1 on fault (recorded). */
  fetchPage(lo: number, hi: number): number {
    const t = this.tlb, i = (lo >>> 12) & TLB_MASK;
    if (t.tagX[i] === (lo & PAGE_MASK) && t.tagHi[i] === hi) return t.host[i]!;
    return this.fillPage(lo, hi, ACCESS_EXEC);
  }

  /** Reads 16 bits at an instruction address (for fetches that straddle pages); -1 on fault. */
  fetchHalf(lo: number, hi: number): number {
    const page = this.fetchPage(lo & PAGE_MASK, hi);
    if (page < 0) return -1;
    return this.ram.dv.getUint16(page + (lo & 0xfff), true);
  }

  /** Reads a byte of guest virtual memory for host use (syscalls); -1 on fault. */
  peek8(lo: number, hi: number): number {
    const p = this.addrR(lo, hi, 1);
    return p < 0 ? -1 : this.ram.u8[p]!;
  }

  /**
   * Reads a CSR for the user-level set (Zicsr, Zicntr, F): the value goes
   * to csrVal[0..1]. Returns false if the CSR does not exist here.
   */
  csrRead(csr: number): boolean {
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

  /** Writes a CSR (low word `lo`); returns false if it is absent or read-only. */
  csrWrite(csr: number, lo: number): boolean {
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
