/**
 * The process VM's virtual address space: a page map from guest virtual
 * pages to 4 KiB frames of guest RAM, with Linux-like mmap/munmap/mprotect/
 * brk semantics. It is the hart's `PageTranslator`, so every guest access
 * (and every host-side copy for a syscall) is checked against it.
 *
 * Frames are allocated on first touch (demand-zero), as Linux does, so a
 * large anonymous reservation costs nothing until it is used.
 *
 * Frame f is guest-physical page `ram.base + f * 4096` of the process's
 * RAM, and every byte access goes through the GuestMemory interface: the
 * TLB fill maps the frame with `hostPage`, system-call copies use `read`,
 * `write` and `hostPage`, zeroing uses `zero`, fork copies page by page.
 * So a process runs on any GuestMemory (GuestRam, PooledRam), never
 * assuming that frame f sits at host offset f * 4096.
 */
import { GuestMemoryError, type GuestMemory } from '../memory/guest-memory.js';
import type { SharedMapping } from './sys-context.js';
import type { Hart } from '../cpu/hart.js';
import { S } from '../cpu/hart-state.js';
import {
  ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, XLATE_PAGE_FAULT, type PageTranslator,
} from '../mmu/tlb.js';

/** Page protection bits, as in mmap(2) (PROT_READ=1, PROT_WRITE=2, PROT_EXEC=4). */
export const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;

const PAGE = 4096;
/** Top of the user address range for Sv39 (privileged spec §4.4: 2^38). */
export const USER_TOP = 0x40_0000_0000;
/** Where top-down mmap placement starts (below the stack area). */
export const MMAP_TOP = 0x3f_f000_0000;
/** Lowest address mmap hands out without MAP_FIXED (Linux mmap_min_addr). */
export const MMAP_MIN = 0x10000;

const UTF8 = new TextDecoder();

/** Linux errno values (asm-generic/errno-base.h). */
export const ENOMEM = 12, EFAULT = 14, EINVAL = 22, EEXIST = 17;

/** One mapped range, in page numbers [start, end). */
interface Vma { start: number; end: number; prot: number; name: string }

/** True for a mapping of anonymous memory: mmap without a file, the heap and the stack. */
function isAnonymous(v: Vma | undefined): boolean {
  return v !== undefined && (v.name === '' || v.name === '[heap]' || v.name === '[stack]');
}

/** Watches the frames a VM's address spaces back (sandbox-limits.ts). */
export interface FrameBudget {
  /** An address space has backed one more frame; throws GuestMemoryError when that is over the limit. */
  frameAdded(): void;
}

/** A guest process's address space. */
export class AddressSpace implements PageTranslator {
  /** The RAM holding this space's frames (guest-physical page f is frame f). */
  readonly ram: GuestMemory;
  grantedPerms = 0;
  /** vpn -> (frame + 1) * 8 + prot; frame + 1 === 0 means not yet backed. */
  private readonly pages = new Map<number, number>();
  /** Sorted, non-overlapping mapped ranges (for placement and /proc/self/maps). */
  private vmas: Vma[] = [];
  private nextFrame = 0;
  /** Told of each frame this space newly backs (a container's memory limit, sandbox-limits.ts); may throw GuestMemoryError. */
  budget: FrameBudget | null = null;
  private readonly freeFrames: number[] = [];
  private readonly maxFrames: number;
  /** Harts running in this space: their TLBs are flushed when a mapping shrinks or changes. */
  readonly harts: Hart[] = [];
  /** Current and initial program break. */
  brkStart = 0;
  brkCur = 0;
  /** Address of the rt_sigreturn trampoline page, 0 until a signal handler first runs. */
  trampoline = 0;
  /** MAP_SHARED mappings of this space (sys-memory.ts), shared by the tasks that share the space. */
  shared: SharedMapping[] = [];

  /** An empty space on `ram` (which it takes over: it answers the RAM's remap notices). */
  constructor(ram: GuestMemory) {
    this.ram = ram;
    this.maxFrames = Math.floor(ram.size / PAGE);
    // A memory whose pages move (PooledRam: a first write leaves the zero frame) drops them from every TLB, and a
    // translated unit that may hold the old page leaves at its next slow store (as the system VM's board does).
    ram.onRemap = (host) => {
      for (const h of this.harts) {
        for (const t of h.tlbs) t.dropHost(host);
        h.st.s[S.JIT_FLUSHED] = 1;
      }
    };
  }

  /** Number of frames in use (resident guest pages). */
  get residentPages(): number { return this.nextFrame - this.freeFrames.length; }

  /** Bytes of guest RAM this space has committed (its frame high-water mark). */
  get committedBytes(): number { return this.nextFrame * PAGE; }

  /**
   * fork(2): a copy of this space in `ram` (a fresh, zeroed RAM of the same
   * size): the same mappings and contents, frames keeping their numbers, so
   * only the touched prefix of frames is copied. MAP_SHARED records are not
   * carried over: in the child those pages are a private copy.
   */
  copyInto(ram: GuestMemory): AddressSpace {
    if (ram.size < this.ram.size) throw new RangeError('fork: the new RAM is smaller than the parent\'s');
    const m = new AddressSpace(ram);
    copyFrames(this.ram, ram, this.nextFrame);
    for (const [vpn, e] of this.pages) m.pages.set(vpn, e);
    m.vmas = this.vmas.map((v) => ({ ...v }));
    m.nextFrame = this.nextFrame;
    for (const f of this.freeFrames) m.freeFrames.push(f);
    m.brkStart = this.brkStart;
    m.brkCur = this.brkCur;
    m.trampoline = this.trampoline;
    return m;
  }

  /**
   * Page-table lookup for the TLB (see PageTranslator): the frame's host
   * page from the RAM (`hostPage`, made private for a write). Writes are
   * cached only where the RAM allows them in place (`lastWritable`).
   */
  translatePage(lo: number, hi: number, access: number): number {
    // frameOf's lookup, inlined: this runs on every TLB miss.
    if (hi < 0 || hi >= 0x40) return XLATE_PAGE_FAULT; // outside the Sv39 user range
    const vpn = hi * 0x100000 + (lo >>> 12);
    const e = this.pages.get(vpn);
    if (e === undefined) return XLATE_PAGE_FAULT;
    const prot = e & 7;
    if ((prot & access) !== access) return XLATE_PAGE_FAULT;
    let frame = Math.floor(e / 8) - 1;
    if (frame < 0) {
      frame = this.allocFrame();
      if (frame < 0) return XLATE_PAGE_FAULT; // out of guest RAM: the guest gets SIGSEGV
      this.pages.set(vpn, (frame + 1) * 8 + prot);
    }
    const ram = this.ram, host = ram.hostPage(ram.base + frame * PAGE, access === ACCESS_WRITE);
    if (host < 0) return XLATE_PAGE_FAULT; // not reached: every frame is RAM
    this.grantedPerms = (prot & PROT_READ ? ACCESS_READ : 0) | (prot & PROT_WRITE && ram.lastWritable ? ACCESS_WRITE : 0) |
      (prot & PROT_EXEC ? ACCESS_EXEC : 0);
    return host;
  }

  /**
   * The frame backing virtual page (lo, hi) for `access` (ACCESS_* bits,
   * 0 for none), allocated on first touch; -1 if the page is unmapped, the
   * access is not allowed or guest RAM is full (the guest gets SIGSEGV).
   */
  private frameOf(lo: number, hi: number, access: number): number {
    if (hi < 0 || hi >= 0x40) return -1; // outside the Sv39 user range
    const vpn = hi * 0x100000 + (lo >>> 12);
    const e = this.pages.get(vpn);
    if (e === undefined) return -1;
    const prot = e & 7;
    if ((prot & access) !== access) return -1;
    let frame = Math.floor(e / 8) - 1;
    if (frame < 0) {
      frame = this.allocFrame();
      if (frame < 0) return -1;
      this.pages.set(vpn, (frame + 1) * 8 + prot);
    }
    return frame;
  }

  private allocFrame(): number {
    const f = this.freeFrames.pop();
    if (f !== undefined) { this.ram.zero(this.ram.base + f * PAGE, PAGE); return f; }
    if (this.nextFrame >= this.maxFrames) return -1;
    const n = this.nextFrame++;
    this.budget?.frameAdded();
    return n;
  }

  private flush(): void { for (const h of this.harts) h.flushTlbs(); }

  /** True if any page in [vpn, vpn+n) is mapped. */
  private anyMapped(vpn: number, n: number): boolean {
    for (const v of this.vmas) if (v.start < vpn + n && v.end > vpn) return true;
    return false;
  }

  /** Finds a free range of n pages, top-down below MMAP_TOP; -1 if none. */
  private findFree(n: number): number {
    let top = MMAP_TOP / PAGE;
    for (let i = this.vmas.length - 1; i >= 0; i--) {
      const v = this.vmas[i]!;
      if (v.start >= top) continue;
      if (v.end <= top - n) return top - n;
      top = Math.min(top, v.start);
    }
    return top - n >= MMAP_MIN / PAGE ? top - n : -1;
  }

  private removeRange(vpn: number, n: number): void {
    const end = vpn + n, out: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= vpn || v.start >= end) { out.push(v); continue; }
      if (v.start < vpn) out.push({ start: v.start, end: vpn, prot: v.prot, name: v.name });
      if (v.end > end) out.push({ start: end, end: v.end, prot: v.prot, name: v.name });
    }
    this.vmas = out;
    for (let p = vpn; p < end; p++) {
      const e = this.pages.get(p);
      if (e === undefined) continue;
      const frame = Math.floor(e / 8) - 1;
      if (frame >= 0) this.freeFrames.push(frame);
      this.pages.delete(p);
    }
  }

  private insertVma(vpn: number, n: number, prot: number, name: string): void {
    this.vmas.push({ start: vpn, end: vpn + n, prot, name });
    this.vmas.sort((a, b) => a.start - b.start);
    for (let p = vpn; p < vpn + n; p++) this.pages.set(p, prot);
  }

  /**
   * Maps `len` bytes of zeroed memory. With `fixed`, at exactly `addr`
   * (replacing what was there unless `noReplace`); otherwise at `addr` if
   * free, else wherever there is room. Returns the address or -errno.
   */
  mmap(addr: number, len: number, prot: number, fixed: boolean, noReplace = false, name = ''): number {
    if (len <= 0 || addr % PAGE !== 0) return -EINVAL;
    const n = Math.ceil(len / PAGE);
    let vpn = addr / PAGE;
    if (fixed) {
      if (addr + n * PAGE > USER_TOP || addr < 0) return -ENOMEM;
      if (this.anyMapped(vpn, n)) {
        if (noReplace) return -EEXIST;
        this.removeRange(vpn, n);
        this.flush();
      }
    } else if (addr === 0 || addr + n * PAGE > USER_TOP || addr < MMAP_MIN || this.anyMapped(vpn, n)) {
      vpn = this.findFree(n);
      if (vpn < 0) return -ENOMEM;
    }
    this.insertVma(vpn, n, prot, name);
    return vpn * PAGE;
  }

  /** Unmaps [addr, addr+len). Returns 0 or -errno. */
  munmap(addr: number, len: number): number {
    if (addr % PAGE !== 0 || len <= 0 || addr < 0 || addr + len > USER_TOP) return -EINVAL;
    this.removeRange(addr / PAGE, Math.ceil(len / PAGE));
    this.flush();
    return 0;
  }

  /** Changes protection of [addr, addr+len); -ENOMEM if part is unmapped. */
  mprotect(addr: number, len: number, prot: number): number {
    if (addr % PAGE !== 0 || len < 0) return -EINVAL;
    const vpn = addr / PAGE, n = Math.ceil(len / PAGE);
    for (let p = vpn; p < vpn + n; p++) if (!this.pages.has(p)) return -ENOMEM;
    // Split VMAs at the boundaries and set the new protection.
    const out: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= vpn || v.start >= vpn + n) { out.push(v); continue; }
      if (v.start < vpn) out.push({ start: v.start, end: vpn, prot: v.prot, name: v.name });
      out.push({ start: Math.max(v.start, vpn), end: Math.min(v.end, vpn + n), prot, name: v.name });
      if (v.end > vpn + n) out.push({ start: vpn + n, end: v.end, prot: v.prot, name: v.name });
    }
    this.vmas = out;
    for (let p = vpn; p < vpn + n; p++) { const e = this.pages.get(p)!; this.pages.set(p, e - (e & 7) + prot); }
    this.flush();
    return 0;
  }

  /**
   * madvise(MADV_DONTNEED) on the private anonymous pages of [addr, addr+len)
   * (mm/madvise.c): their frames are freed, so the next touch of each gets
   * a zero-filled page. Pages of other mappings (named after a file, or in
   * `keep`: MAP_SHARED ones) are left as they are. Returns 0, or -ENOMEM if
   * part of the range is unmapped (the mapped part is still discarded).
   */
  discard(addr: number, len: number, keep: (vpn: number) => boolean): number {
    const vpn = addr / PAGE, end = vpn + Math.ceil(len / PAGE);
    let covered = vpn, freed = false;
    for (const v of this.vmas) if (v.start <= covered && v.end > covered) covered = Math.min(v.end, end);
    // Visit the backed pages: the range may be far larger than what is mapped in it.
    const vpns = end - vpn <= this.pages.size ? Array.from({ length: end - vpn }, (_, i) => vpn + i)
      : [...this.pages.keys()].filter((p) => p >= vpn && p < end);
    for (const p of vpns) {
      const e = this.pages.get(p);
      if (e === undefined) continue;
      const frame = Math.floor(e / 8) - 1;
      if (frame < 0 || keep(p) || !isAnonymous(this.vmaAt(p))) continue;
      this.freeFrames.push(frame);
      this.pages.set(p, e & 7);
      freed = true;
    }
    if (freed) this.flush();
    return covered < end ? -ENOMEM : 0;
  }

  /** The mapping holding page `vpn` (which is mapped). */
  private vmaAt(vpn: number): Vma | undefined {
    return this.vmas.find((v) => v.start <= vpn && vpn < v.end);
  }

  /** Protection of the page holding `addr`, or -1 if it is unmapped. */
  protAt(addr: number): number {
    const e = this.pages.get(Math.floor(addr / PAGE));
    return e === undefined ? -1 : e & 7;
  }

  /** Sets up the heap right after the program image (page aligned). */
  initBrk(addr: number): void {
    this.brkStart = this.brkCur = Math.ceil(addr / PAGE) * PAGE;
  }

  /** brk(2): moves the break; returns the new (or unchanged) break. */
  brk(addr: number): number {
    if (addr < this.brkStart) return this.brkCur;
    const oldTop = Math.ceil(this.brkCur / PAGE) * PAGE, newTop = Math.ceil(addr / PAGE) * PAGE;
    if (newTop > oldTop) {
      if (this.anyMapped(oldTop / PAGE, (newTop - oldTop) / PAGE)) return this.brkCur;
      this.insertVma(oldTop / PAGE, (newTop - oldTop) / PAGE, PROT_READ | PROT_WRITE, '[heap]');
    } else if (newTop < oldTop) {
      this.removeRange(newTop / PAGE, (oldTop - newTop) / PAGE);
      this.flush();
    }
    this.brkCur = addr;
    return addr;
  }

  /**
   * Guest-physical address (in this space's RAM) of guest byte `addr` for
   * `access` (ACCESS_* bits; 0 ignores the protection), its frame allocated
   * on first touch; -1 (EFAULT) if unmapped or not allowed. Ignores the TLB.
   */
  physAddr(addr: number, access: number): number {
    if (addr < 0 || addr >= USER_TOP || !Number.isInteger(addr)) return -1;
    const frame = this.frameOf(addr % 0x100000000 | 0, Math.floor(addr / 0x100000000), access);
    return frame < 0 ? -1 : this.ram.base + frame * PAGE + (addr % PAGE);
  }

  /** Length of the run `physRun` found last. */
  private runLen = 0;

  /**
   * Guest-physical address of `addr` for `access`, and in `runLen` how many
   * of the `len` bytes from there are guest-physically contiguous (whole
   * pages whose frames follow each other), so that one RAM copy serves
   * them; -1 if the first byte faults.
   */
  private physRun(addr: number, len: number, access: number): number {
    const gpa = this.physAddr(addr, access);
    if (gpa < 0) return -1;
    let n = Math.min(len, PAGE - (addr % PAGE));
    while (n < len && this.physAddr(addr + n, access) === gpa + n) n += Math.min(len - n, PAGE);
    this.runLen = n;
    return gpa;
  }

  /** Copies guest memory out; null if any byte is not readable. */
  read(addr: number, len: number): Uint8Array | null {
    return this.copyOut(addr, len, ACCESS_READ);
  }

  /** Copies guest memory out ignoring page protection (read-only access to the frames); null if any page is unmapped. */
  peek(addr: number, len: number): Uint8Array | null {
    return this.copyOut(addr, len, 0);
  }

  /**
   * A page the RAM cannot provide (GuestMemoryError: pool exhausted, swap
   * failure) fails the copy like an unmapped one, as Linux's copy_to_user
   * fails with EFAULT when the fault handler runs out of memory.
   */
  private copyOut(addr: number, len: number, access: number): Uint8Array | null {
    const out = new Uint8Array(len);
    try {
      for (let done = 0; done < len;) {
        const gpa = this.physRun(addr + done, len - done, access), n = this.runLen;
        if (gpa < 0 || !this.ram.read(gpa, out.subarray(done, done + n))) return null;
        done += n;
      }
    } catch (e) {
      if (e instanceof GuestMemoryError) return null;
      throw e;
    }
    return out;
  }

  /** Copies bytes into guest memory; false if any byte is not writable. */
  write(addr: number, data: Uint8Array): boolean {
    return this.copyIn(addr, data, ACCESS_WRITE);
  }

  /** Writes bytes ignoring page protection (the loader filling read-only segments); false if any page is unmapped. */
  poke(addr: number, data: Uint8Array): boolean {
    return this.copyIn(addr, data, 0);
  }

  /** RAM writes drop translated code on the pages they change (GuestMemory.write); a GuestMemoryError fails the copy (see copyOut). */
  private copyIn(addr: number, data: Uint8Array, access: number): boolean {
    try {
      for (let done = 0; done < data.length;) {
        const gpa = this.physRun(addr + done, data.length - done, access), n = this.runLen;
        if (gpa < 0 || !this.ram.write(gpa, data.subarray(done, done + n))) return false;
        done += n;
      }
    } catch (e) {
      if (e instanceof GuestMemoryError) return false;
      throw e;
    }
    return true;
  }

  /** Reads a NUL-terminated string (UTF-8); null on fault (a GuestMemoryError included) or if longer than max. */
  readCString(addr: number, max = 65536): string | null {
    const n = this.cStringLength(addr, max);
    if (n < 0) return null;
    const bytes = this.read(addr, n);
    return bytes === null ? null : UTF8.decode(bytes);
  }

  /** Bytes before the NUL of the string at `addr`; -1 on fault or if there is none in the first `max`. */
  private cStringLength(addr: number, max: number): number {
    const ram = this.ram;
    try {
      for (let n = 0; n < max;) {
        const a = addr + n, gpa = this.physAddr(a, ACCESS_READ);
        if (gpa < 0) return -1;
        const take = Math.min(PAGE - (a % PAGE), max - n);
        const from = ram.hostPage(gpa, false) + (a % PAGE); // GuestMemory.hostPage: the page's bytes in `u8`
        const nul = ram.u8.subarray(from, from + take).indexOf(0);
        if (nul >= 0) return n + nul;
        n += take;
      }
    } catch (e) {
      if (e instanceof GuestMemoryError) return -1;
      throw e;
    }
    return -1;
  }

  /** Reads a 64-bit little-endian value as a JS number (exact below 2^53); null on fault. */
  readU64(addr: number): number | null {
    const b = this.read(addr, 8);
    if (!b) return null;
    const dv = new DataView(b.buffer);
    return dv.getUint32(4, true) * 4294967296 + dv.getUint32(0, true);
  }

  /** Lists mappings in /proc/self/maps form. */
  maps(): string {
    const hex = (v: number): string => v.toString(16).padStart(8, '0');
    return this.vmas.map((v) =>
      `${hex(v.start * PAGE)}-${hex(v.end * PAGE)} ${v.prot & 1 ? 'r' : '-'}${v.prot & 2 ? 'w' : '-'}` +
      `${v.prot & 4 ? 'x' : '-'}p 00000000 00:00 0 ${v.name ? '                          ' + v.name : ''}`,
    ).join('\n') + '\n';
  }
}

/**
 * Copies frames [0, frames) of `src` into the same frames of `dst` (fork),
 * through the GuestMemory interface: runs of pages that are contiguous in
 * both memories (all of them for two GuestRams) move in one copy. Host
 * offsets are only trusted if no `hostPage` call remapped a page while a
 * run was gathered (GuestMemory.epoch); gathering again finds the pages it
 * made private in place, and a run that keeps moving goes page by page.
 */
function copyFrames(src: GuestMemory, dst: GuestMemory, frames: number): void {
  for (let f = 0; f < frames;) {
    let n = 0;
    for (let attempt = 0; attempt < 3 && n === 0; attempt++) {
      const e0 = src.epoch, e1 = dst.epoch;
      const s0 = src.hostPage(src.base + f * PAGE, false), d0 = dst.hostPage(dst.base + f * PAGE, true);
      let k = 1;
      while (f + k < frames && src.hostPage(src.base + (f + k) * PAGE, false) === s0 + k * PAGE &&
        dst.hostPage(dst.base + (f + k) * PAGE, true) === d0 + k * PAGE) k++;
      if (src.epoch !== e0 || dst.epoch !== e1) continue;
      dst.u8.set(src.u8.subarray(s0, s0 + k * PAGE), d0);
      dst.written(d0, k * PAGE);
      n = k;
    }
    if (n === 0) { // still moving: one page through a buffer (read and write each hold one page at a time)
      const buf = new Uint8Array(PAGE);
      src.read(src.base + f * PAGE, buf);
      dst.write(dst.base + f * PAGE, buf);
      n = 1;
    }
    f += n;
  }
}
