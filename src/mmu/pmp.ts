/**
 * Physical memory protection checks (privileged spec §3.7).
 *
 * Entries are checked in order; the first one that matches decides. An
 * M-mode access that matches nothing (or an unlocked entry) succeeds. An
 * S/U access with no active entry at all succeeds too (QEMU 7.2's
 * behaviour when firmware programs no rules); otherwise an S/U access that
 * matches nothing fails.
 */
import type { CsrFile } from '../cpu/csr-file.js';
import { PMP_COUNT } from '../cpu/csr-file.js';
import { ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC } from './tlb.js';

/** pmpcfg fields (§3.7.1, Figure 3.27). */
const PMP_R = 1, PMP_W = 2, PMP_X = 4, PMP_A_SHIFT = 3, PMP_L = 0x80;
const A_OFF = 0, A_TOR = 1, A_NA4 = 2;

/** Result fields of `pmpCheck` (kept on the checker to avoid allocation). */
export class PmpChecker {
  /** True if the decision holds for the whole 4 KiB page checked. */
  uniform = true;
  private readonly lo = new Float64Array(PMP_COUNT);
  private readonly hi = new Float64Array(PMP_COUNT);
  private generation = -1;
  private active = 0;
  private readonly csrs: CsrFile;

  constructor(csrs: CsrFile) { this.csrs = csrs; }

  /** Recomputes each entry's [lo, hi) byte range after a PMP CSR write. */
  private refresh(): void {
    const c = this.csrs;
    this.generation = c.pmpGeneration;
    this.active = 0;
    for (let k = 0; k < PMP_COUNT; k++) {
      const cfg = c.pmpcfg[k]!, a = (cfg >>> PMP_A_SHIFT) & 3, addr = c.pmpaddr[k]!;
      if (a === A_OFF) { this.lo[k] = 0; this.hi[k] = 0; continue; }
      this.active++;
      if (a === A_TOR) { this.lo[k] = k === 0 ? 0 : c.pmpaddr[k - 1]! * 4; this.hi[k] = addr * 4; }
      else if (a === A_NA4) { this.lo[k] = addr * 4; this.hi[k] = addr * 4 + 4; }
      else { // NAPOT: the number of trailing ones gives the size 2^(ones+3)
        let ones = 0, v = addr;
        while (v % 2 === 1 && ones < 54) { ones++; v = Math.floor(v / 2); }
        const size = 2 ** (ones + 3);
        this.lo[k] = (addr - (2 ** ones - 1)) * 4; this.hi[k] = this.lo[k]! + size;
      }
    }
  }

  /**
   * May `priv` perform `access` on the page at physical address `page`
   * (4 KiB aligned), at byte `phys` within it? Sets `uniform`.
   */
  check(page: number, phys: number, access: number, priv: number): boolean {
    const c = this.csrs;
    if (this.generation !== c.pmpGeneration) this.refresh();
    this.uniform = true;
    if (this.active === 0) return true;
    for (let k = 0; k < PMP_COUNT; k++) {
      const lo = this.lo[k]!, hi = this.hi[k]!;
      if (hi <= lo) continue;
      if (lo < page + 4096 && hi > page && (lo > page || hi < page + 4096)) this.uniform = false;
      if (phys < lo || phys >= hi) continue;
      const cfg = c.pmpcfg[k]!;
      if (priv === 3 && (cfg & PMP_L) === 0) return true;
      const need = access === ACCESS_READ ? PMP_R : access === ACCESS_WRITE ? PMP_W : access === ACCESS_EXEC ? PMP_X : PMP_R;
      return (cfg & need) !== 0;
    }
    return priv === 3;
  }
}
