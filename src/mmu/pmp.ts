/**
 * Physical memory protection checks (privileged spec §3.7).
 *
 * Entries are checked in order; the first one that matches decides. An
 * M-mode access that matches nothing (or an unlocked entry) succeeds; an
 * S/U access that matches nothing fails, even when no entry is active
 * (§3.7.1: PMP entries are implemented, so firmware must program them —
 * QEMU 7.2 behaves the same).
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
  /** ACCESS_* bits the deciding entry allows (all for an M-mode access no locked entry covers). */
  allowed = 0;
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
    // Byte addresses as doubles: exact below 2^53, and physical memory here lies far below that.
    const byteAddr = (k: number): number => ((c.pmpaddrHi[k]! >>> 0) * 4294967296 + (c.pmpaddrLo[k]! >>> 0)) * 4;
    for (let k = 0; k < PMP_COUNT; k++) {
      const cfg = c.pmpcfg[k]!, a = (cfg >>> PMP_A_SHIFT) & 3;
      if (a === A_OFF) { this.lo[k] = 0; this.hi[k] = 0; continue; }
      this.active++;
      if (a === A_TOR) { this.lo[k] = k === 0 ? 0 : byteAddr(k - 1); this.hi[k] = byteAddr(k); }
      else if (a === A_NA4) { this.lo[k] = byteAddr(k); this.hi[k] = byteAddr(k) + 4; }
      else { // NAPOT: the number of trailing ones gives the size 2^(ones+3) (§3.7.1, Table 3.11)
        const lo = c.pmpaddrLo[k]!, hi = c.pmpaddrHi[k]!;
        const ones = ~lo !== 0 ? 31 - Math.clz32(~lo & (lo + 1)) : 32 + (~hi !== 0 ? 31 - Math.clz32(~hi & (hi + 1)) : 32);
        const baseLo = ones >= 32 ? 0 : lo & ~((2 ** ones - 1) | 0);
        const baseHi = ones >= 32 ? hi & ~((2 ** (ones - 32) - 1) | 0) : hi;
        this.lo[k] = ((baseHi >>> 0) * 4294967296 + (baseLo >>> 0)) * 4;
        this.hi[k] = this.lo[k]! + 2 ** (ones + 3);
      }
    }
  }

  /**
   * May `priv` perform `access` of `size` bytes at physical address `phys`
   * (within the 4 KiB page `page`)? Sets `uniform` (one decision holds for
   * the whole page) and `allowed` (the ACCESS_* bits the deciding entry
   * grants this privilege, for the TLB).
   */
  check(page: number, phys: number, access: number, priv: number, size = 1): boolean {
    const c = this.csrs;
    if (this.generation !== c.pmpGeneration) this.refresh();
    this.uniform = true;
    this.allowed = ACCESS_READ | ACCESS_WRITE | ACCESS_EXEC;
    if (this.active === 0) { if (priv === 3) return true; this.allowed = 0; return false; }
    const end = phys + size;
    for (let k = 0; k < PMP_COUNT; k++) {
      const lo = this.lo[k]!, hi = this.hi[k]!;
      if (hi <= lo) continue;
      if (lo < page + 4096 && hi > page && (lo > page || hi < page + 4096)) this.uniform = false;
      if (end <= lo || phys >= hi) continue;
      // The first entry matching any byte decides; a partial match fails (§3.7.1.2).
      if (phys < lo || end > hi) { this.allowed = 0; return false; }
      const cfg = c.pmpcfg[k]!;
      if (priv === 3 && (cfg & PMP_L) === 0) return true;
      this.allowed = (cfg & PMP_R ? ACCESS_READ : 0) | (cfg & PMP_W ? ACCESS_WRITE : 0) | (cfg & PMP_X ? ACCESS_EXEC : 0);
      return (this.allowed & access) !== 0;
    }
    if (priv === 3) return true;
    this.allowed = 0;
    return false;
  }
}
