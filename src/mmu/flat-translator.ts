/**
 * The identity translation used when paging is off (satp.MODE = Bare,
 * privileged spec §4.1.11): guest address = physical address, with RAM
 * occupying [base, base + size).
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import { ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, XLATE_ACCESS_FAULT, type PageTranslator } from './tlb.js';

/** Bare (untranslated) addressing over one RAM region. */
export class FlatTranslator implements PageTranslator {
  grantedPerms = 0;
  /** Physical base address of RAM (e.g. 0x8000_0000 on the virt board). */
  readonly base: number;
  private readonly ram: GuestMemory;

  constructor(ram: GuestMemory, base: number) {
    this.ram = ram;
    this.base = base;
  }

  /** Maps the page at (lo, hi) into RAM, or reports an access fault. */
  translatePage(lo: number, hi: number, access: number): number {
    const addr = (hi >>> 0) * 4294967296 + ((lo & -4096) >>> 0);
    const off = addr - this.base;
    if (hi < 0 || off < 0 || off >= this.ram.size) return XLATE_ACCESS_FAULT;
    const host = this.ram.hostPage(this.ram.base + off, access === ACCESS_WRITE);
    if (host < 0) return XLATE_ACCESS_FAULT;
    this.grantedPerms = ACCESS_READ | (this.ram.lastWritable ? ACCESS_WRITE : 0) | ACCESS_EXEC;
    return host;
  }
}
