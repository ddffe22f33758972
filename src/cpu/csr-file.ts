/**
 * The machine- and supervisor-level CSRs of one hart (privileged spec
 * v1.12, chapters 2-4) plus Sstc's stimecmp and the PMP registers.
 *
 * Values are kept as 32-bit halves (`xxxLo`/`xxxHi`). Reads and writes
 * check the CSR's privilege and read-only bits (csr[9:8], csr[11:10],
 * §2.1). A write that changes translation or interrupt state sets
 * `changed` so the interpreter leaves its fast loop after the instruction.
 */
import type { HartState } from './hart-state.js';
import { S } from './hart-state.js';

/** mstatus bits (privileged spec §3.1.6, Figure 3.7). */
export const MSTATUS_SIE = 1 << 1, MSTATUS_MIE = 1 << 3, MSTATUS_SPIE = 1 << 5, MSTATUS_MPIE = 1 << 7;
export const MSTATUS_SPP = 1 << 8, MSTATUS_MPP_SHIFT = 11, MSTATUS_MPP = 3 << 11, MSTATUS_FS = 3 << 13;
export const MSTATUS_MPRV = 1 << 17, MSTATUS_SUM = 1 << 18, MSTATUS_MXR = 1 << 19, MSTATUS_TVM = 1 << 20;
export const MSTATUS_TW = 1 << 21, MSTATUS_TSR = 1 << 22;
/** Bits of mstatus visible through sstatus (§4.1.1). */
const SSTATUS_MASK = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR | (3 << 9) | (3 << 15);
/** Writable mstatus bits (VS/XS are hard-wired to 0: no V extension, no custom state). */
const MSTATUS_WMASK = MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP |
  MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR;

/** Interrupt bits in mip/mie (§3.1.9). */
export const IRQ_SSI = 1 << 1, IRQ_MSI = 1 << 3, IRQ_STI = 1 << 5, IRQ_MTI = 1 << 7, IRQ_SEI = 1 << 9, IRQ_MEI = 1 << 11;
/** Interrupts that can be delegated to S-mode (mideleg writable bits). */
export const S_INTERRUPTS = IRQ_SSI | IRQ_STI | IRQ_SEI;
const ALL_INTERRUPTS = S_INTERRUPTS | IRQ_MSI | IRQ_MTI | IRQ_MEI;
/** Exceptions that can be delegated (medeleg: all standard causes but ecall-from-M, §3.1.8). */
const MEDELEG_MASK = 0xb3ff;

/** misa for RV64IMAFDC with S and U modes (§3.1.1): MXL=2, extensions A C D F I M S U. */
export const MISA_LO = 0x0014112d, MISA_HI = 0x80000000 | 0;
/** The ISA string the device tree advertises, matching misa and the extensions implemented. */
export const ISA_STRING = 'rv64imafdc_zicntr_zicsr_zifencei_zba_zbb_zbs_sstc';

/** satp modes (§4.1.11, Table 4.3). */
export const SATP_BARE = 0, SATP_SV39 = 8, SATP_SV48 = 9, SATP_SV57 = 10;

/** Number of PMP entries implemented (QEMU 7.2 implements 16). */
export const PMP_COUNT = 16;

/** menvcfg.STCE (Sstc enable) lives in bit 63 (§3.1.18; Sstc spec). */
const MENVCFG_STCE_HI = 1 << 31;

/** The CSR state of one hart. */
export class CsrFile {
  readonly st: HartState;
  readonly hartId: number;
  /** Reads the platform timer (mtime) in ticks. */
  timeTicks: () => number = () => 0;
  /** Set when a write changed privilege/translation/interrupt state. */
  changed = false;
  /** Set when satp or a translation-relevant field changed: the TLBs must be flushed. */
  flushTlb = false;

  mstatus = 0;
  medeleg = 0; mideleg = 0;
  mie = 0;
  /** Software-writable pending bits (SSIP, STIP, SEIP); device lines are in `hwIp`. */
  mipSw = 0;
  /** Pending bits driven by devices (MSIP, MTIP, MEIP, SEIP line, STIP from Sstc). */
  hwIp = 0;
  mtvecLo = 0; mtvecHi = 0; stvecLo = 0; stvecHi = 0;
  mepcLo = 0; mepcHi = 0; sepcLo = 0; sepcHi = 0;
  mcauseLo = 0; mcauseHi = 0; scauseLo = 0; scauseHi = 0;
  mtvalLo = 0; mtvalHi = 0; stvalLo = 0; stvalHi = 0;
  mscratchLo = 0; mscratchHi = 0; sscratchLo = 0; sscratchHi = 0;
  satpLo = 0; satpHi = 0;
  mcounteren = 0; scounteren = 0; mcountinhibit = 0;
  menvcfgLo = 0; menvcfgHi = 0; senvcfgLo = 0;
  stimecmpLo = -1; stimecmpHi = -1;
  /** Offset added to instret for mcycle/minstret writes. */
  cycleOffset = 0; instretOffset = 0;
  /** PMP configuration bytes and addresses (pmpaddr is 54 bits: two 32-bit halves). */
  readonly pmpcfg = new Uint8Array(PMP_COUNT);
  readonly pmpaddrLo = new Int32Array(PMP_COUNT);
  readonly pmpaddrHi = new Int32Array(PMP_COUNT);
  /** Bumped when PMP changes (the translator caches its "any PMP active" decision). */
  pmpGeneration = 0;
  /** Read result: [lo, hi]. */
  readonly val = new Int32Array(2);

  constructor(st: HartState, hartId: number) {
    this.st = st;
    this.hartId = hartId;
  }

  /** Current privilege (0 U, 1 S, 3 M). */
  get priv(): number { return this.st.s[S.PRIV]!; }

  /** mip as software sees it: device lines OR software bits. */
  get mip(): number { return this.hwIp | this.mipSw; }

  /** True if Sstc's stimecmp is enabled by M-mode (menvcfg.STCE). */
  get stce(): boolean { return (this.menvcfgHi & MENVCFG_STCE_HI) !== 0; }

  /** mstatus's high word: UXL = SXL = 2 (64-bit) and SD summarising FS (§3.1.6.6). */
  private mstatusHi(): number {
    return 0xa | ((this.mstatus & MSTATUS_FS) === MSTATUS_FS ? 0x80000000 | 0 : 0);
  }

  private set(lo: number, hi: number): true { this.val[0] = lo; this.val[1] = hi; return true; }

  /** Counter CSRs (cycle/time/instret/hpm) are readable below M only if enabled (§3.1.11, §4.1.5). */
  private counterAllowed(bit: number): boolean {
    const p = this.priv;
    if (p === 3) return true;
    if (((this.mcounteren >>> bit) & 1) === 0) return false;
    return p === 1 || ((this.scounteren >>> bit) & 1) !== 0;
  }

  /** Reads CSR `csr` at the current privilege into `val`; false = illegal instruction. */
  read(csr: number): boolean {
    if (((csr >>> 8) & 3) > this.priv) return false;
    const s = this.st.s;
    switch (csr) {
      case 0x001: if (this.fsOff()) return false; return this.set(s[S.FFLAGS]!, 0);
      case 0x002: if (this.fsOff()) return false; return this.set(s[S.FRM]!, 0);
      case 0x003: if (this.fsOff()) return false; return this.set((s[S.FRM]! << 5) | s[S.FFLAGS]!, 0);
      case 0xc00: case 0xb00: if (csr === 0xc00 && !this.counterAllowed(0)) return false; return this.setNum(this.st.instret + this.cycleOffset);
      case 0xc01: if (!this.counterAllowed(1)) return false; return this.setNum(this.timeTicks());
      case 0xc02: case 0xb02: if (csr === 0xc02 && !this.counterAllowed(2)) return false; return this.setNum(this.st.instret + this.instretOffset);
      case 0x100: return this.set(this.mstatus & SSTATUS_MASK, this.mstatusHi() & (0x80000000 | 0x3));
      case 0x104: return this.set(this.mie & this.mideleg, 0);
      case 0x105: return this.set(this.stvecLo, this.stvecHi);
      case 0x106: return this.set(this.scounteren, 0);
      case 0x10a: return this.set(this.senvcfgLo, 0);
      case 0x140: return this.set(this.sscratchLo, this.sscratchHi);
      case 0x141: return this.set(this.sepcLo, this.sepcHi);
      case 0x142: return this.set(this.scauseLo, this.scauseHi);
      case 0x143: return this.set(this.stvalLo, this.stvalHi);
      case 0x144: return this.set(this.mip & this.mideleg, 0);
      case 0x14d:
        if (this.priv === 1 && (!this.stce || (this.mcounteren & 2) === 0)) return false;
        return this.set(this.stimecmpLo, this.stimecmpHi);
      case 0x180:
        if (this.priv === 1 && (this.mstatus & MSTATUS_TVM)) return false;
        return this.set(this.satpLo, this.satpHi);
      case 0xf11: case 0xf12: case 0xf13: case 0xf15: return this.set(0, 0);
      case 0xf14: return this.set(this.hartId, 0);
      case 0x300: return this.set(this.mstatus, this.mstatusHi());
      case 0x301: return this.set(MISA_LO, MISA_HI);
      case 0x302: return this.set(this.medeleg, 0);
      case 0x303: return this.set(this.mideleg, 0);
      case 0x304: return this.set(this.mie, 0);
      case 0x305: return this.set(this.mtvecLo, this.mtvecHi);
      case 0x306: return this.set(this.mcounteren, 0);
      case 0x30a: return this.set(this.menvcfgLo, this.menvcfgHi);
      case 0x320: return this.set(this.mcountinhibit, 0);
      case 0x340: return this.set(this.mscratchLo, this.mscratchHi);
      case 0x341: return this.set(this.mepcLo, this.mepcHi);
      case 0x342: return this.set(this.mcauseLo, this.mcauseHi);
      case 0x343: return this.set(this.mtvalLo, this.mtvalHi);
      case 0x344: return this.set(this.mip, 0);
      default:
        if (csr >= 0xc03 && csr <= 0xc1f) return this.counterAllowed(csr - 0xc00) ? this.set(0, 0) : false;
        if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f)) return this.set(0, 0);
        if (csr === 0x3a0 || csr === 0x3a2) { // pmpcfg0/2: 8 entries each on RV64 (§3.7.1)
          const base = (csr - 0x3a0) * 4;
          let lo = 0, hi = 0;
          for (let k = 0; k < 4; k++) { lo |= this.pmpcfg[base + k]! << (8 * k); hi |= this.pmpcfg[base + 4 + k]! << (8 * k); }
          return this.set(lo, hi);
        }
        if (csr >= 0x3b0 && csr < 0x3b0 + PMP_COUNT) return this.set(this.pmpaddrLo[csr - 0x3b0]!, this.pmpaddrHi[csr - 0x3b0]!);
        return false;
    }
  }

  private setNum(v: number): true { return this.set(v | 0, Math.floor(v / 4294967296) | 0); }

  private fsOff(): boolean { return (this.mstatus & MSTATUS_FS) === 0; }

  /** Writes CSR `csr` with (lo, hi); false = illegal instruction (absent, read-only, or privilege). */
  write(csr: number, lo: number, hi: number): boolean {
    if (((csr >>> 8) & 3) > this.priv || (csr >>> 10) === 3) return false;
    const s = this.st.s;
    switch (csr) {
      case 0x001: if (this.fsOff()) return false; s[S.FFLAGS] = lo & 0x1f; this.dirtyFs(); return true;
      case 0x002: if (this.fsOff()) return false; s[S.FRM] = lo & 7; this.dirtyFs(); return true;
      case 0x003: if (this.fsOff()) return false; s[S.FFLAGS] = lo & 0x1f; s[S.FRM] = (lo >>> 5) & 7; this.dirtyFs(); return true;
      case 0x100: this.writeMstatus((this.mstatus & ~SSTATUS_MASK) | (lo & SSTATUS_MASK)); return true;
      case 0x104: this.mie = (this.mie & ~this.mideleg) | (lo & this.mideleg); this.changed = true; return true;
      case 0x105: this.stvecLo = lo & ~2; this.stvecHi = hi; return true; // MODE >= 2 reserved: keep bit 1 clear
      case 0x106: this.scounteren = lo; return true;
      case 0x10a: this.senvcfgLo = lo & 1; return true; // FIOM only
      case 0x140: this.sscratchLo = lo; this.sscratchHi = hi; return true;
      case 0x141: this.sepcLo = lo & ~1; this.sepcHi = hi; return true;
      case 0x142: this.scauseLo = lo; this.scauseHi = hi; return true;
      case 0x143: this.stvalLo = lo; this.stvalHi = hi; return true;
      case 0x144: { // sip: only SSIP is writable from S (§4.1.3)
        const m = this.mideleg & IRQ_SSI;
        this.mipSw = (this.mipSw & ~m) | (lo & m); this.changed = true; return true;
      }
      case 0x14d:
        if (this.priv === 1 && (!this.stce || (this.mcounteren & 2) === 0)) return false;
        this.stimecmpLo = lo; this.stimecmpHi = hi; this.changed = true; return true;
      case 0x180: {
        if (this.priv === 1 && (this.mstatus & MSTATUS_TVM)) return false;
        const mode = hi >>> 28;
        if (mode !== SATP_BARE && mode !== SATP_SV39 && mode !== SATP_SV48 && mode !== SATP_SV57) return true; // WARL: no effect
        this.satpLo = lo; this.satpHi = hi; // MODE[63:60] | ASID[59:44] (16 bits, as QEMU) | PPN[43:0]
        this.flushTlb = true; this.changed = true;
        return true;
      }
      case 0x300: this.writeMstatus(lo); return true;
      case 0x301: return true; // misa is WARL and fixed here
      case 0x302: this.medeleg = lo & MEDELEG_MASK; return true;
      case 0x303: this.mideleg = lo & S_INTERRUPTS; this.changed = true; return true;
      case 0x304: this.mie = lo & ALL_INTERRUPTS; this.changed = true; return true;
      case 0x305: this.mtvecLo = lo & ~2; this.mtvecHi = hi; return true;
      case 0x306: this.mcounteren = lo; return true;
      case 0x30a: this.menvcfgLo = lo & 1; this.menvcfgHi = hi & MENVCFG_STCE_HI; this.changed = true; return true;
      case 0x320: this.mcountinhibit = lo & ~2; return true;
      case 0x340: this.mscratchLo = lo; this.mscratchHi = hi; return true;
      case 0x341: this.mepcLo = lo & ~1; this.mepcHi = hi; return true;
      case 0x342: this.mcauseLo = lo; this.mcauseHi = hi; return true;
      case 0x343: this.mtvalLo = lo; this.mtvalHi = hi; return true;
      case 0x344: { // mip: SSIP, STIP (unless Sstc drives it), SEIP are writable (§3.1.9)
        const m = IRQ_SSI | IRQ_SEI | (this.stce ? 0 : IRQ_STI);
        this.mipSw = (this.mipSw & ~m) | (lo & m); this.changed = true; return true;
      }
      case 0xb00: this.cycleOffset = this.num(lo, hi) - this.st.instret; return true;
      case 0xb02: this.instretOffset = this.num(lo, hi) - this.st.instret; return true;
      default:
        if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0x323 && csr <= 0x33f)) return true; // hpm: read-only zero
        if (csr === 0x3a0 || csr === 0x3a2) {
          const base = (csr - 0x3a0) * 4;
          for (let k = 0; k < 8; k++) {
            if (this.pmpcfg[base + k]! & 0x80) continue; // locked (§3.7.1.3)
            let b = (k < 4 ? lo >>> (8 * k) : hi >>> (8 * (k - 4))) & 0x9f;
            if ((b & 3) === 2) b &= ~3; // R=0,W=1 is reserved: clear both (WARL)
            this.pmpcfg[base + k] = b;
          }
          this.pmpGeneration++; this.flushTlb = true; this.changed = true;
          return true;
        }
        if (csr >= 0x3b0 && csr < 0x3b0 + PMP_COUNT) {
          const k = csr - 0x3b0;
          if (this.pmpcfg[k]! & 0x80) return true;
          // A locked TOR entry also locks the pmpaddr below it (§3.7.1.3).
          const above = this.pmpcfg[k + 1];
          if (above !== undefined && (above & 0x80) && ((above >>> 3) & 3) === 1) return true;
          this.pmpaddrLo[k] = lo; this.pmpaddrHi[k] = hi & 0x3fffff; // 54 bits (§3.7.1, Figure 3.26)
          this.pmpGeneration++; this.flushTlb = true; this.changed = true;
          return true;
        }
        return false;
    }
  }

  private num(lo: number, hi: number): number { return (hi >>> 0) * 4294967296 + (lo >>> 0); }

  /** Writes mstatus, noting changes that affect translation or interrupts. */
  writeMstatus(v: number): void {
    let nv = (this.mstatus & ~MSTATUS_WMASK) | (v & MSTATUS_WMASK);
    if (((nv >>> MSTATUS_MPP_SHIFT) & 3) === 2) nv &= ~MSTATUS_MPP; // MPP=2 is reserved (WARL -> U)
    const diff = nv ^ this.mstatus;
    if (diff & (MSTATUS_MXR)) this.flushTlb = true;
    this.mstatus = nv;
    this.changed = true;
  }

  /** Marks the FP state dirty (mstatus.FS = 3, §3.1.6.6). */
  dirtyFs(): void { this.mstatus |= MSTATUS_FS; }
}
