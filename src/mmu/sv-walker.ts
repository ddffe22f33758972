/**
 * The system VM's translator: Sv39/Sv48/Sv57 page-table walks (privileged
 * spec §4.3-4.6), MPRV/SUM/MXR, hardware A/D updates (as QEMU does), PMP,
 * and the physical map (RAM vs MMIO).
 *
 * It fills the hart's TLB; a page is cached only with the permissions
 * already proven (no W until D is set), and never when PMP rules cut
 * through it or it is MMIO.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import type { CsrFile } from '../cpu/csr-file.js';
import { MSTATUS_MPRV, MSTATUS_MPP_SHIFT, MSTATUS_SUM, MSTATUS_MXR, SATP_BARE } from '../cpu/csr-file.js';
import { PmpChecker } from './pmp.js';
import {
  ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, XLATE_PAGE_FAULT, XLATE_ACCESS_FAULT, XLATE_MMIO, type PageTranslator,
} from './tlb.js';


/** PTE bits (§4.3.1, Figure 4.18). */
const PTE_V = 1, PTE_R = 2, PTE_W = 4, PTE_X = 8, PTE_U = 16, PTE_A = 64, PTE_D = 128;
const TWO32 = 4294967296;

/** Answers whether a physical address belongs to a device. */
export interface PhysicalMap {
  isMmio(phys: number): boolean;
}

/** Sv39/48/57 translation over one RAM region plus MMIO. */
export class SvTranslator implements PageTranslator {
  grantedPerms = 0;
  /** When set by the last translation, the TLB must not cache it. */
  noCache = false;
  /** Physical address of the page, for the last MMIO result. */
  mmioPage = 0;
  /** Privilege of the last translation's effective mode (for diagnostics). */
  lastPriv = 0;
  /** Leaf PTE level of the last successful translation (PageTranslator.leafLevel). */
  leafLevel = 0;
  readonly pmp: PmpChecker;
  private readonly ram: GuestMemory;
  private readonly ramBase: number;
  private readonly csrs: CsrFile;
  private readonly phys: PhysicalMap;

  constructor(ram: GuestMemory, ramBase: number, csrs: CsrFile, phys: PhysicalMap) {
    this.ram = ram;
    this.ramBase = ramBase;
    this.csrs = csrs;
    this.phys = phys;
    this.pmp = new PmpChecker(csrs);
  }

  /** Effective privilege for an access (MPRV applies to loads and stores in M-mode, §3.1.6.3). */
  effectivePriv(access: number): number {
    const c = this.csrs, p = c.priv;
    if (p === 3 && access !== ACCESS_EXEC && (c.mstatus & MSTATUS_MPRV)) return (c.mstatus >>> MSTATUS_MPP_SHIFT) & 3;
    return p;
  }

  /**
   * Maps a physical page to a RAM offset, MMIO or an access fault, after
   * PMP checks the actual bytes accessed (`offset`, `size` within the page).
   * The permissions the TLB may cache are narrowed to what PMP allows.
   */
  private physical(page: number, access: number, priv: number, offset: number, size: number): number {
    if (!this.pmp.check(page, page + offset, access, priv, Math.min(size, 4096 - offset))) return XLATE_ACCESS_FAULT;
    if (!this.pmp.uniform) this.noCache = true;
    this.grantedPerms &= this.pmp.allowed;
    if (this.phys.isMmio(page)) { this.mmioPage = page; this.noCache = true; return XLATE_MMIO; }
    const off = page - this.ramBase;
    if (!(off >= 0 && off < this.ram.size)) return XLATE_ACCESS_FAULT;
    const host = this.ram.hostPage(this.ram.base + off, access === ACCESS_WRITE);
    if (host < 0) return XLATE_ACCESS_FAULT;
    if (!this.ram.lastWritable) this.grantedPerms &= ~ACCESS_WRITE; // shared or zero frame: the first write comes back here
    return host;
  }

  /** See PageTranslator. */
  translatePage(lo: number, hi: number, access: number, size = 1): number {
    const c = this.csrs, offset = lo & 0xfff;
    const priv = this.effectivePriv(access);
    this.lastPriv = priv;
    this.noCache = false;
    const mode = c.satpHi >>> 28;
    this.leafLevel = 0;
    if (priv === 3 || mode === SATP_BARE) {
      // Bare: physical = virtual; addresses beyond 56 bits fault (§4.1.11; PA is 56 bits in Sv39+).
      if (hi < 0 || hi >= 0x01000000) return XLATE_ACCESS_FAULT;
      this.grantedPerms = ACCESS_READ | ACCESS_WRITE | ACCESS_EXEC;
      return this.physical(hi * TWO32 + ((lo & -4096) >>> 0), access, priv, offset, size);
    }
    const levels = mode - 5; // Sv39: 3, Sv48: 4, Sv57: 5
    const vaBits = 12 + 9 * levels;
    // The address must be sign-extended from bit vaBits-1 (§4.3.2 step 0 / §4.4).
    const top = hi >> (vaBits - 33); // bits above vaBits-1 of the high word, arithmetically shifted
    if (vaBits - 32 < 32 && top !== 0 && top !== -1) return XLATE_PAGE_FAULT;
    const vpnAll = (hi & ((1 << (vaBits - 32)) - 1)) * 1048576 + (lo >>> 12); // VPN as a number < 2^45
    let a = ((c.satpHi & 0xfff) * TWO32 + (c.satpLo >>> 0)) * 4096; // root table (satp.PPN, §4.1.11)
    const dv = this.ram.dv;
    for (let i = levels - 1; i >= 0; i--) {
      // VPN[i] is VA bits 12+9i .. 20+9i (§4.3.1); 32-bit shifts (the float form cost ~70% of a walk).
      const sh = 12 + 9 * i;
      const vpn = sh <= 23 ? (lo >>> sh) & 511 : sh >= 32 ? (hi >>> (sh - 32)) & 511 : ((lo >>> sh) | (hi << (32 - sh))) & 511;
      const pteAddr = a + vpn * 8;
      const pteOff = this.pteOffset(pteAddr);
      if (pteOff < 0) return XLATE_ACCESS_FAULT;
      let pteLo = dv.getInt32(pteOff, true);
      const pteHi = dv.getInt32(pteOff + 4, true);
      if ((pteLo & PTE_V) === 0 || ((pteLo & PTE_R) === 0 && (pteLo & PTE_W) !== 0)) return XLATE_PAGE_FAULT;
      if ((pteHi >>> 22) !== 0) return XLATE_PAGE_FAULT; // bits 63:54 reserved (no Svnapot/Svpbmt)
      const ppn = (pteHi & 0x3fffff) * 4194304 + (pteLo >>> 10);
      if ((pteLo & (PTE_R | PTE_X)) === 0) { // pointer to the next level
        if (i === 0 || (pteLo & (PTE_A | PTE_D | PTE_U)) !== 0) return XLATE_PAGE_FAULT;
        a = ppn * 4096;
        continue;
      }
      // Leaf: permission checks (§4.3.2 step 5).
      if (priv === 0 && (pteLo & PTE_U) === 0) return XLATE_PAGE_FAULT;
      if (priv === 1 && (pteLo & PTE_U) !== 0 && (access === ACCESS_EXEC || (c.mstatus & MSTATUS_SUM) === 0)) {
        return XLATE_PAGE_FAULT;
      }
      const mxr = (c.mstatus & MSTATUS_MXR) !== 0;
      const readable = (pteLo & PTE_R) !== 0 || (mxr && (pteLo & PTE_X) !== 0);
      if (access === ACCESS_READ && !readable) return XLATE_PAGE_FAULT;
      if (access === ACCESS_WRITE && (pteLo & PTE_W) === 0) return XLATE_PAGE_FAULT;
      if (access === ACCESS_EXEC && (pteLo & PTE_X) === 0) return XLATE_PAGE_FAULT;
      // Misaligned superpage: PPN bits below level i must be zero. 9i < 32 up to i = 3 (Sv57's i = 4 uses floats).
      const below = i === 0 ? 0 : i < 4 ? ((pteLo >>> 10) | (pteHi << 22)) & ((1 << (9 * i)) - 1) : ppn % 2 ** (9 * i);
      if (below !== 0) return XLATE_PAGE_FAULT;
      // Hardware A/D update (§4.3.2 step 7, the Svadu-style behaviour QEMU implements).
      const want = PTE_A | (access === ACCESS_WRITE ? PTE_D : 0);
      if ((pteLo & want) !== want) {
        if (!this.pmp.check(Math.floor(pteAddr / 4096) * 4096, pteAddr, ACCESS_WRITE, 1)) return XLATE_ACCESS_FAULT;
        pteLo |= want;
        // The PTE's page may be read-only on the host side (shared, zero): the update makes it private first.
        const w = this.ram.hostPage(this.ram.base + (pteAddr - this.ramBase), true) + (pteAddr % 4096);
        dv.setInt32(w, pteLo, true);
        this.ram.written(w, 8);
      }
      const pagePpn = i === 0 ? ppn : ppn + (i < 4 ? ((lo >>> 12) | (hi << 20)) & ((1 << (9 * i)) - 1) : vpnAll % 2 ** (9 * i));
      this.grantedPerms = (readable ? ACCESS_READ : 0) | ((pteLo & PTE_W) && (pteLo & PTE_D) ? ACCESS_WRITE : 0) |
        ((pteLo & PTE_X) ? ACCESS_EXEC : 0);
      this.leafLevel = i;
      return this.physical(pagePpn * 4096, access, priv, offset, size);
    }
    return XLATE_PAGE_FAULT;
  }

  /** Host offset of a page-table entry, or -1 (not RAM, or PMP denies S-mode reads). */
  private pteOffset(addr: number): number {
    if (!this.pmp.check(Math.floor(addr / 4096) * 4096, addr, ACCESS_READ, 1)) return -1;
    const off = addr - this.ramBase;
    if (!(off >= 0 && off + 8 <= this.ram.size)) return -1;
    const host = this.ram.hostPage(this.ram.base + off, false);
    return host < 0 ? -1 : host + (off % 4096);
  }
}
