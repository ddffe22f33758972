/**
 * tsvm's built-in SBI firmware: the paravirtual "hypercall" interface a
 * RISC-V kernel uses in S-mode (RISC-V SBI specification v2.0). The vCPU
 * leaves with ExitReason.HYPERCALL on an S-mode ecall; the VMM calls
 * `handle`, which reads a7 (EID), a6 (FID) and a0..a5, writes the result
 * (a0 = error, a1 = value) and moves pc past the ecall.
 *
 * Implemented: Base, Legacy (0x00-0x08), TIME, IPI, RFENCE, HSM, SRST, DBCN.
 */
import type { HartState } from '../cpu/hart-state.js';

/** Extension IDs (SBI spec v2.0, chapters 4-12). */
export const EID_BASE = 0x10, EID_TIME = 0x54494d45, EID_IPI = 0x735049, EID_RFENCE = 0x52464e43;
export const EID_HSM = 0x48534d, EID_SRST = 0x53525354, EID_DBCN = 0x4442434e;
/** Legacy extensions 0x00-0x08 (SBI spec chapter 5). */
export const EID_LEGACY_SET_TIMER = 0, EID_LEGACY_PUTCHAR = 1, EID_LEGACY_GETCHAR = 2, EID_LEGACY_CLEAR_IPI = 3;
export const EID_LEGACY_SEND_IPI = 4, EID_LEGACY_REMOTE_FENCE_I = 5, EID_LEGACY_SFENCE_VMA = 6;
export const EID_LEGACY_SFENCE_VMA_ASID = 7, EID_LEGACY_SHUTDOWN = 8;

/** Standard SBI error codes (SBI spec §3.2, Table 1). */
export const SBI_SUCCESS = 0, SBI_ERR_FAILED = -1, SBI_ERR_NOT_SUPPORTED = -2, SBI_ERR_INVALID_PARAM = -3;
export const SBI_ERR_INVALID_ADDRESS = -5, SBI_ERR_ALREADY_AVAILABLE = -6, SBI_ERR_ALREADY_STOPPED = -8;

/** HSM hart states (SBI spec §9, Table 22). */
export const HSM_STARTED = 0, HSM_STOPPED = 1, HSM_START_PENDING = 2;

/** Spec version 2.0: major in bits 30:24 (SBI spec §4.1). */
const SPEC_VERSION = 2 << 24;
/** Implementation ID: 0-11 are assigned (§4.9); tsvm uses an unassigned value, ASCII "TS". */
export const SBI_IMPL_ID_TSVM = 0x5453;

/** What the SBI needs from the machine. */
export interface SbiPlatform {
  readonly hartCount: number;
  /** State of hart i (its registers). */
  hartState(i: number): HartState;
  /** Program the supervisor timer of hart i: raise STIP when time >= ticks; clear it now. */
  setTimer(hart: number, ticks: number): void;
  /** Raise a supervisor software interrupt (SSIP) on hart i. */
  sendIpi(hart: number): void;
  /** Clear SSIP on hart i (legacy clear_ipi). */
  clearIpi(hart: number): void;
  /** Flush TLBs / instruction caches of hart i. */
  remoteFence(hart: number): void;
  /** HSM: state of hart i. */
  hsmStatus(hart: number): number;
  /** HSM: start hart i in S-mode at `addr` with a0 = hartid, a1 = opaque. */
  hartStart(hart: number, addrLo: number, addrHi: number, opaqueLo: number, opaqueHi: number): void;
  /** HSM: stop the calling hart. */
  hartStop(hart: number): void;
  /** Console output / input (DBCN and legacy calls). */
  consoleWrite(bytes: Uint8Array): void;
  consoleRead(max: number): Uint8Array;
  /** Guest physical memory access for DBCN buffers; null/false on a bad address. */
  readPhys(addr: number, len: number): Uint8Array | null;
  writePhys(addr: number, data: Uint8Array): boolean;
  /** SRST / legacy shutdown: type 0 shutdown, 1 cold reboot, 2 warm reboot; reason 1 = system failure. */
  systemReset(type: number, reason: number): void;
}

const A0 = 20, A1 = 22, A2 = 24, A6 = 32, A7 = 34; // x10..x17 as indices into x (2 per register)

/** The SBI implementation. */
export class SbiFirmware {
  private readonly p: SbiPlatform;
  /** Count of calls per EID, for diagnostics. */
  readonly calls = new Map<number, number>();

  constructor(platform: SbiPlatform) { this.p = platform; }

  /** Handles the ecall of hart `hart`; the caller then advances pc by 4. */
  handle(hart: number): void {
    const st = this.p.hartState(hart), x = st.x;
    const eid = x[A7]! >>> 0, fid = x[A6]! >>> 0;
    this.calls.set(eid, (this.calls.get(eid) ?? 0) + 1);
    const ret = (err: number, vlo = 0, vhi = 0): void => {
      x[A0] = err; x[A0 + 1] = err < 0 ? -1 : 0; x[A1] = vlo; x[A1 + 1] = vhi;
    };
    const num = (i: number): number => (x[i + 1]! >>> 0) * 4294967296 + (x[i]! >>> 0);
    const mask = (maskIdx: number, baseIdx: number, fn: (h: number) => void): number => {
      const baseLo = x[baseIdx]!, baseHi = x[baseIdx + 1]!;
      if (baseLo === -1 && baseHi === -1) { for (let h = 0; h < this.p.hartCount; h++) fn(h); return SBI_SUCCESS; }
      const base = num(baseIdx), m = num(maskIdx);
      for (let b = 0; b < 53; b++) {
        if (Math.floor(m / 2 ** b) % 2 === 0) continue;
        const h = base + b;
        if (h >= this.p.hartCount) return SBI_ERR_INVALID_PARAM;
        fn(h);
      }
      return SBI_SUCCESS;
    };
    switch (eid) {
      case EID_BASE:
        switch (fid) {
          case 0: return ret(SBI_SUCCESS, SPEC_VERSION);
          case 1: return ret(SBI_SUCCESS, SBI_IMPL_ID_TSVM);
          case 2: return ret(SBI_SUCCESS, 0x00010000); // tsvm SBI 1.0
          case 3: return ret(SBI_SUCCESS, this.probe(num(A0)) ? 1 : 0);
          case 4: case 5: case 6: return ret(SBI_SUCCESS, 0); // mvendorid, marchid, mimpid
          default: return ret(SBI_ERR_NOT_SUPPORTED);
        }
      case EID_TIME:
        if (fid !== 0) return ret(SBI_ERR_NOT_SUPPORTED);
        this.p.setTimer(hart, num(A0));
        return ret(SBI_SUCCESS);
      case EID_IPI:
        if (fid !== 0) return ret(SBI_ERR_NOT_SUPPORTED);
        return ret(mask(A0, A1, (h) => this.p.sendIpi(h)));
      case EID_RFENCE:
        if (fid > 6) return ret(SBI_ERR_NOT_SUPPORTED);
        return ret(mask(A0, A1, (h) => this.p.remoteFence(h)));
      case EID_HSM: return this.hsm(hart, fid, ret, num);
      case EID_SRST:
        if (fid !== 0) return ret(SBI_ERR_NOT_SUPPORTED);
        if (num(A0) > 2 || num(A1) > 1 && num(A1) < 0xe0000000) return ret(SBI_ERR_INVALID_PARAM);
        this.p.systemReset(num(A0), num(A1));
        return ret(SBI_SUCCESS);
      case EID_DBCN: {
        if (fid === 2) { this.p.consoleWrite(Uint8Array.of(x[A0]! & 0xff)); return ret(SBI_SUCCESS); }
        if (fid > 2) return ret(SBI_ERR_NOT_SUPPORTED);
        const n = Math.min(num(A0), 1 << 20), addr = num(A1) + num(A2) * 4294967296;
        if (fid === 0) {
          const data = this.p.readPhys(addr, n);
          if (data === null) return ret(SBI_ERR_INVALID_PARAM);
          this.p.consoleWrite(data);
          return ret(SBI_SUCCESS, n);
        }
        const got = this.p.consoleRead(n);
        if (!this.p.writePhys(addr, got)) return ret(SBI_ERR_INVALID_PARAM);
        return ret(SBI_SUCCESS, got.length);
      }
      // Legacy extensions return their value in a0 only (SBI spec §5).
      case EID_LEGACY_SET_TIMER: this.p.setTimer(hart, num(A0)); x[A0] = 0; x[A0 + 1] = 0; return;
      case EID_LEGACY_PUTCHAR: this.p.consoleWrite(Uint8Array.of(x[A0]! & 0xff)); x[A0] = 0; x[A0 + 1] = 0; return;
      case EID_LEGACY_GETCHAR: {
        const got = this.p.consoleRead(1);
        x[A0] = got.length ? got[0]! : -1; x[A0 + 1] = got.length ? 0 : -1; return;
      }
      case EID_LEGACY_CLEAR_IPI: this.p.clearIpi(hart); x[A0] = 0; x[A0 + 1] = 0; return;
      case EID_LEGACY_SEND_IPI: case EID_LEGACY_REMOTE_FENCE_I: case EID_LEGACY_SFENCE_VMA:
      case EID_LEGACY_SFENCE_VMA_ASID: {
        // a0 holds a pointer to an unsigned long hart mask.
        const bytes = this.p.readPhys(num(A0), 8);
        const m = bytes === null ? 0 : new DataView(bytes.buffer).getUint32(0, true);
        for (let h = 0; h < this.p.hartCount && h < 32; h++) {
          if ((m >>> h) & 1) { if (eid === EID_LEGACY_SEND_IPI) this.p.sendIpi(h); else this.p.remoteFence(h); }
        }
        x[A0] = 0; x[A0 + 1] = 0; return;
      }
      case EID_LEGACY_SHUTDOWN: this.p.systemReset(0, 0); return;
      default: return ret(SBI_ERR_NOT_SUPPORTED);
    }
  }

  /** True for the extensions implemented here. */
  probe(eid: number): boolean {
    return [EID_BASE, EID_TIME, EID_IPI, EID_RFENCE, EID_HSM, EID_SRST, EID_DBCN].includes(eid) || eid <= 8;
  }

  private hsm(hart: number, fid: number, ret: (e: number, lo?: number, hi?: number) => void,
    num: (i: number) => number): void {
    const x = this.p.hartState(hart).x;
    switch (fid) {
      case 0: { // hart_start(hartid, start_addr, opaque)
        const target = num(A0);
        if (target >= this.p.hartCount) return ret(SBI_ERR_INVALID_PARAM);
        if (this.p.hsmStatus(target) !== HSM_STOPPED) return ret(SBI_ERR_ALREADY_AVAILABLE);
        this.p.hartStart(target, x[A1]!, x[A1 + 1]!, x[A2]!, x[A2 + 1]!);
        return ret(SBI_SUCCESS);
      }
      case 1: this.p.hartStop(hart); return ret(SBI_SUCCESS);
      case 2: {
        const target = num(A0);
        if (target >= this.p.hartCount) return ret(SBI_ERR_INVALID_PARAM);
        return ret(SBI_SUCCESS, this.p.hsmStatus(target));
      }
      case 3: return ret(SBI_ERR_NOT_SUPPORTED); // hart_suspend: not offered (Linux falls back to WFI)
      default: return ret(SBI_ERR_NOT_SUPPORTED);
    }
  }
}


