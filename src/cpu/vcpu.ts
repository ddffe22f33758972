/**
 * The system VM's vCPU: runs the interpreter with M/S/U privilege, takes
 * traps and interrupts into the guest (privileged spec §3.1.6-3.1.9,
 * §3.3), emulates the privileged instructions (MRET, SRET, WFI,
 * SFENCE.VMA) and returns to the VMM only for what the VMM must handle:
 * MMIO, WFI with nothing pending (HALT), or the end of the time slice.
 *
 * Interrupts are checked between interpreter slices and whenever a CSR
 * write or xRET changes interrupt state, so an enabled interrupt is taken
 * within one slice.
 */
import { execute } from './interpreter.js';
import { ExitReason, CAUSE_ILLEGAL_INSTRUCTION, type Hart } from './hart.js';

/** ecall from S-mode (privileged spec Table 3.6). */
const CAUSE_SUPERVISOR_ECALL = 9;
import { S } from './hart-state.js';
import {
  type CsrFile, MSTATUS_SIE, MSTATUS_MIE, MSTATUS_SPIE, MSTATUS_MPIE, MSTATUS_SPP, MSTATUS_MPP, MSTATUS_MPP_SHIFT,
  MSTATUS_MPRV, MSTATUS_SUM, MSTATUS_FS, MSTATUS_TSR, MSTATUS_TVM, MSTATUS_TW,
  IRQ_STI,
} from './csr-file.js';

/** Interrupt causes in priority order (§3.1.9: MEI, MSI, MTI, SEI, SSI, STI). */
const IRQ_PRIORITY = [11, 3, 7, 9, 1, 5];

/** Privileged instruction encodings (§3.3 and §4.2.1). */
const INSN_MRET = 0x30200073, INSN_SRET = 0x10200073, INSN_WFI = 0x10500073;
const SFENCE_MASK = 0xfe007fff, SFENCE_VMA = 0x12000073;

/** TLB context numbers: one per (effective privilege, SUM). */
const CTX_U = 0, CTX_S = 1, CTX_S_SUM = 2, CTX_M = 3;

/** A hart running with the full privileged architecture. */
export class Vcpu {
  readonly hart: Hart;
  readonly csrs: CsrFile;
  /** Set by the VMM to stop the run loop early (e.g. a device wants attention). */
  kick = false;
  /**
   * When true, ecalls from S-mode leave as ExitReason.HYPERCALL for the
   * VMM's built-in SBI; when false they trap into guest M-mode firmware.
   */
  sbiInVmm = false;

  constructor(hart: Hart, csrs: CsrFile) {
    this.hart = hart;
    this.csrs = csrs;
    hart.csrs = csrs;
    while (hart.tlbs.length < 4) hart.addTlb();
    this.sync();
  }

  /** Applies CSR side effects: TLB flushes, TLB context choice, FS gating, Sstc's STIP. */
  sync(): void {
    const c = this.csrs, h = this.hart;
    if (c.flushTlb) { h.flushTlbs(); c.flushTlb = false; }
    c.changed = false;
    h.csrChanged = false;
    const ctx = (p: number): number => (p === 3 ? CTX_M : p === 1 ? ((c.mstatus & MSTATUS_SUM) ? CTX_S_SUM : CTX_S) : CTX_U);
    const priv = c.priv;
    const dataPriv = priv === 3 && (c.mstatus & MSTATUS_MPRV) ? (c.mstatus >>> MSTATUS_MPP_SHIFT) & 3 : priv;
    h.fetchTlb = h.tlbs[ctx(priv)]!;
    h.tlb = h.tlbs[ctx(dataPriv)]!;
    h.fpOff = (c.mstatus & MSTATUS_FS) === 0;
    this.updateStip();
  }

  /** Sstc: STIP follows (time >= stimecmp) while menvcfg.STCE is set. */
  updateStip(): void {
    const c = this.csrs;
    if (!c.stce) return;
    const cmp = (c.stimecmpHi >>> 0) >= 0x200000 ? Infinity : (c.stimecmpHi >>> 0) * 4294967296 + (c.stimecmpLo >>> 0);
    if (c.timeTicks() >= cmp) c.hwIp |= IRQ_STI; else c.hwIp &= ~IRQ_STI;
  }

  /** The highest-priority interrupt that is pending and enabled now, or -1. */
  pendingInterrupt(): number {
    const c = this.csrs, pend = c.mip & c.mie;
    if (pend === 0) return -1;
    const priv = c.priv;
    const mEnabled = priv < 3 || (c.mstatus & MSTATUS_MIE) !== 0;
    const sEnabled = priv < 1 || (priv === 1 && (c.mstatus & MSTATUS_SIE) !== 0);
    for (const irq of IRQ_PRIORITY) {
      if ((pend & (1 << irq)) === 0) continue;
      const delegated = (c.mideleg & (1 << irq)) !== 0;
      if (delegated ? sEnabled && priv <= 1 : mEnabled) return irq;
    }
    return -1;
  }

  /** Takes a trap (exception or interrupt) at the current pc (§3.1.6.1, §4.1.1). */
  trap(cause: number, interrupt: boolean, tvalLo: number, tvalHi: number): void {
    const c = this.csrs, s = this.hart.st.s;
    const pcLo = s[S.PC_LO]!, pcHi = s[S.PC_HI]!, priv = c.priv;
    const deleg = interrupt ? c.mideleg : c.medeleg;
    s[S.RES_VALID] = 0;
    let base: number, baseHi: number;
    if (priv <= 1 && ((deleg >>> cause) & 1) !== 0) {
      c.sepcLo = pcLo; c.sepcHi = pcHi;
      c.scauseLo = cause; c.scauseHi = interrupt ? 0x80000000 | 0 : 0;
      c.stvalLo = tvalLo; c.stvalHi = tvalHi;
      let m = c.mstatus & ~(MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE);
      if (priv === 1) m |= MSTATUS_SPP;
      if (c.mstatus & MSTATUS_SIE) m |= MSTATUS_SPIE;
      c.mstatus = m;
      s[S.PRIV] = 1;
      base = c.stvecLo; baseHi = c.stvecHi;
    } else {
      c.mepcLo = pcLo; c.mepcHi = pcHi;
      c.mcauseLo = cause; c.mcauseHi = interrupt ? 0x80000000 | 0 : 0;
      c.mtvalLo = tvalLo; c.mtvalHi = tvalHi;
      let m = c.mstatus & ~(MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE);
      m |= priv << MSTATUS_MPP_SHIFT;
      if (c.mstatus & MSTATUS_MIE) m |= MSTATUS_MPIE;
      c.mstatus = m;
      s[S.PRIV] = 3;
      base = c.mtvecLo; baseHi = c.mtvecHi;
    }
    const vectored = (base & 3) === 1;
    let lo = base & ~3;
    if (vectored && interrupt) lo = (lo + 4 * cause) | 0;
    s[S.PC_LO] = lo; s[S.PC_HI] = baseHi;
    this.sync();
  }

  /** Moves pc past the current 4-byte instruction (privileged instructions, completed hypercalls). */
  skip(): void {
    const s = this.hart.st.s, lo = (s[S.PC_LO]! + 4) | 0;
    if ((lo >>> 0) < 4) s[S.PC_HI] = (s[S.PC_HI]! + 1) | 0;
    s[S.PC_LO] = lo;
    this.hart.st.instret++;
  }

  /**
   * Executes MRET/SRET/WFI/SFENCE.VMA when legal at the current privilege.
   * Returns 1 if handled, 2 if a WFI should halt, 0 if it is illegal here.
   */
  private privileged(insn: number): number {
    const c = this.csrs, s = this.hart.st.s, priv = c.priv;
    if (insn === INSN_MRET && priv === 3) {
      const mpp = (c.mstatus >>> MSTATUS_MPP_SHIFT) & 3;
      let m = c.mstatus & ~(MSTATUS_MPP | MSTATUS_MIE);
      if (c.mstatus & MSTATUS_MPIE) m |= MSTATUS_MIE;
      m |= MSTATUS_MPIE;
      if (mpp !== 3) m &= ~MSTATUS_MPRV;
      c.mstatus = m;
      s[S.PRIV] = mpp;
      s[S.PC_LO] = c.mepcLo; s[S.PC_HI] = c.mepcHi;
      this.hart.st.instret++;
      this.sync();
      return 1;
    }
    if (insn === INSN_SRET && (priv === 3 || (priv === 1 && (c.mstatus & MSTATUS_TSR) === 0))) {
      const spp = (c.mstatus & MSTATUS_SPP) ? 1 : 0;
      let m = c.mstatus & ~(MSTATUS_SPP | MSTATUS_SIE | MSTATUS_MPRV);
      if (c.mstatus & MSTATUS_SPIE) m |= MSTATUS_SIE;
      m |= MSTATUS_SPIE;
      c.mstatus = m;
      s[S.PRIV] = spp;
      s[S.PC_LO] = c.sepcLo; s[S.PC_HI] = c.sepcHi;
      this.hart.st.instret++;
      this.sync();
      return 1;
    }
    if (insn === INSN_WFI && (priv === 3 || (priv === 1 && (c.mstatus & MSTATUS_TW) === 0))) {
      this.skip();
      return (c.mip & c.mie) !== 0 ? 1 : 2;
    }
    if ((insn & SFENCE_MASK) === SFENCE_VMA && (priv === 3 || (priv === 1 && (c.mstatus & MSTATUS_TVM) === 0))) {
      // rs1 = x0 flushes everything; otherwise only the translations of the address in rs1 (§4.2.1).
      // The ASID in rs2 is ignored: the TLB has no ASIDs, so flushing that address for every ASID is a superset.
      const rs1 = (insn >>> 15) & 31, x = this.hart.st.x;
      if (rs1 === 0) this.hart.flushTlbs();
      else this.hart.flushTlbPage(x[2 * rs1]!, x[2 * rs1 + 1]!);
      this.skip();
      return 1;
    }
    return 0;
  }

  /**
   * Runs up to `budget` instructions. Returns BUDGET when the slice is used
   * up (or `kick` was set), HALT on WFI with nothing pending, MMIO for a
   * device access the VMM must perform (then call hart.completeMmio).
   */
  run(budget: number): ExitReason {
    const h = this.hart, st = h.st, s = st.s;
    this.kick = false;
    while (budget > 0 && !this.kick) {
      if (h.csrChanged || this.csrs.changed || this.csrs.flushTlb) this.sync();
      const irq = this.pendingInterrupt();
      if (irq >= 0) { this.trap(irq, true, 0, 0); budget--; continue; }
      const before = st.instret;
      const r = execute(h, budget);
      budget -= st.instret - before;
      if (r === ExitReason.BUDGET) continue;
      if (r === ExitReason.MMIO) return r;
      if (r === ExitReason.EXCEPTION) {
        const cause = s[S.EXIT_CAUSE]!;
        if (cause === CAUSE_SUPERVISOR_ECALL && this.sbiInVmm) return ExitReason.HYPERCALL;
        if (cause === CAUSE_ILLEGAL_INSTRUCTION && s[S.EXIT_ILEN] === 4) {
          const k = this.privileged(s[S.EXIT_INSN]!);
          if (k === 1) continue;
          if (k === 2) return ExitReason.HALT;
        }
        this.trap(cause, false, s[S.EXIT_TVAL_LO]!, s[S.EXIT_TVAL_HI]!);
        budget--;
        continue;
      }
      return r;
    }
    return ExitReason.BUDGET;
  }
}
