/**
 * Loads a riscv64 Linux program into a fresh process the way the kernel's
 * binfmt_elf does: PT_LOAD segments (and the PT_INTERP dynamic linker),
 * a stack holding argc, argv, envp and the auxiliary vector, and the
 * initial program break.
 */
import {
  parseElf, ExecError, PT_LOAD, PT_PHDR, PF_R, PF_W, PF_X, ET_DYN, PHDR_SIZE, type ElfImage,
} from './elf.js';
import { PROT_READ, PROT_WRITE, PROT_EXEC, USER_TOP, type AddressSpace } from './address-space.js';
import type { GuestProcess } from './guest-process.js';

const PAGE = 4096;
/** Where a PIE main program is placed (Linux ELF_ET_DYN_BASE: 2/3 of the Sv39 user range). */
export const ET_DYN_BASE = 0x2a_aaaa_a000;
/** Top of the initial stack (one guard page below the end of user space). */
export const STACK_TOP = USER_TOP - PAGE;
/** Size of the stack mapping (the default RLIMIT_STACK, 8 MiB). */
export const STACK_SIZE = 8 * 1024 * 1024;
/** AT_HWCAP for RV64IMAFDC: one bit per single-letter extension (kernel arch/riscv/kernel/cpufeature.c). */
export const HWCAP_RV64GC = 0x112d;

/** Auxiliary vector tags (include/uapi/linux/auxvec.h). */
const AT_NULL = 0, AT_PHDR = 3, AT_PHENT = 4, AT_PHNUM = 5, AT_PAGESZ = 6, AT_BASE = 7, AT_FLAGS = 8,
  AT_ENTRY = 9, AT_UID = 11, AT_EUID = 12, AT_GID = 13, AT_EGID = 14, AT_HWCAP = 16, AT_CLKTCK = 17,
  AT_SECURE = 23, AT_RANDOM = 25, AT_HWCAP2 = 26, AT_EXECFN = 31;

/** What the loader needs from the outside world. */
export interface LoaderHost {
  /** Reads a whole file by guest path; null if it does not exist. */
  readFile(guestPath: string): Uint8Array | null;
  /** Fills a buffer with random bytes (for AT_RANDOM). */
  randomBytes(buf: Uint8Array): void;
  /** Identity to report in the auxv. */
  uid: number; gid: number;
}

/** The result of loading: where things ended up (for auxv and diagnostics). */
export interface LoadInfo {
  entry: number; interpBase: number; phdrAddr: number; sp: number; auxv: number[];
}

function toProt(flags: number): number {
  return (flags & PF_R ? PROT_READ : 0) | (flags & PF_W ? PROT_WRITE : 0) | (flags & PF_X ? PROT_EXEC : 0);
}

/** Maps one image's PT_LOAD segments at `bias`; returns the end of the highest segment. */
function mapSegments(mem: AddressSpace, img: ElfImage, bias: number, name: string): number {
  let top = 0;
  for (const ph of img.phdrs) {
    if (ph.type !== PT_LOAD || ph.memsz === 0) continue;
    const start = bias + ph.vaddr, end = start + ph.memsz;
    const p0 = Math.floor(start / PAGE) * PAGE, p1 = Math.ceil(end / PAGE) * PAGE;
    const prot = toProt(ph.flags);
    // Neighbouring segments may share their boundary pages: merge protections there.
    let a = p0, b = p1;
    const firstProt = mem.protAt(p0);
    if (firstProt >= 0) { mem.mprotect(p0, PAGE, firstProt | prot); a += PAGE; }
    if (b > a) {
      const lastProt = mem.protAt(p1 - PAGE);
      if (lastProt >= 0) { mem.mprotect(p1 - PAGE, PAGE, lastProt | prot); b -= PAGE; }
    }
    if (b > a && mem.mmap(a, b - a, prot, true, true, name) < 0) {
      throw new ExecError(`${name}: cannot map segment at 0x${a.toString(16)}`, 126);
    }
    if (ph.filesz > 0 && !mem.poke(start, img.data.subarray(ph.offset, ph.offset + ph.filesz))) {
      throw new ExecError(`${name}: cannot load segment at 0x${start.toString(16)}`, 126);
    }
    top = Math.max(top, end);
  }
  return top;
}

/** Span [min, max) of an image's PT_LOAD segments, page aligned. */
function span(img: ElfImage): [number, number] {
  let lo = Infinity, hi = 0;
  for (const ph of img.phdrs) {
    if (ph.type !== PT_LOAD) continue;
    lo = Math.min(lo, Math.floor(ph.vaddr / PAGE) * PAGE);
    hi = Math.max(hi, Math.ceil((ph.vaddr + ph.memsz) / PAGE) * PAGE);
  }
  return [lo, hi];
}

/** Address of the program headers once loaded (PT_PHDR, else the segment holding e_phoff). */
function phdrAddress(img: ElfImage, bias: number): number {
  const pp = img.phdrs.find((p) => p.type === PT_PHDR);
  if (pp) return pp.vaddr + bias;
  for (const ph of img.phdrs) {
    if (ph.type === PT_LOAD && img.phoff >= ph.offset && img.phoff + img.phnum * PHDR_SIZE <= ph.offset + ph.filesz) {
      return ph.vaddr + (img.phoff - ph.offset) + bias;
    }
  }
  return 0;
}

/**
 * Loads `path` (already read as `data`) with its interpreter into `proc`,
 * builds the initial stack and sets pc/sp. Throws ExecError on bad input.
 */
export function loadProgram(proc: GuestProcess, host: LoaderHost, path: string, data: Uint8Array,
  argv: string[], envp: string[]): LoadInfo {
  const mem = proc.mem;
  const img = parseElf(data, path);
  const [lo, hi] = span(img);
  const bias = img.type === ET_DYN ? ET_DYN_BASE - lo : 0;
  if (img.type === ET_DYN && hi - lo > ET_DYN_BASE) throw new ExecError(`${path}: image too large`, 126);
  const top = mapSegments(mem, img, bias, path);
  mem.initBrk(top);

  let entry = img.entry + bias, interpBase = 0;
  if (img.interp !== null) {
    const idata = host.readFile(img.interp);
    if (idata === null) throw new ExecError(`${path}: interpreter ${img.interp} not found`, 127);
    const iimg = parseElf(idata, img.interp);
    if (iimg.interp !== null) throw new ExecError(`${img.interp}: the interpreter has an interpreter itself`, 126);
    const [ilo, ihi] = span(iimg);
    const base = iimg.type === ET_DYN ? mem.mmap(0, ihi - ilo, 0, false) : 0;
    if (base < 0) throw new ExecError(`${img.interp}: no room to load the interpreter`, 126);
    if (iimg.type === ET_DYN) mem.munmap(base, ihi - ilo);
    const ibias = iimg.type === ET_DYN ? base - ilo : 0;
    mapSegments(mem, iimg, ibias, img.interp);
    interpBase = iimg.type === ET_DYN ? base : 0;
    entry = iimg.entry + ibias;
  }

  // ---- the initial stack (kernel fs/binfmt_elf.c create_elf_tables layout) ----
  if (mem.mmap(STACK_TOP - STACK_SIZE, STACK_SIZE, PROT_READ | PROT_WRITE, true, false, '[stack]') < 0) {
    throw new ExecError(`${path}: cannot map the stack`, 126);
  }
  const enc = new TextEncoder();
  let sp = STACK_TOP;
  const pushBytes = (b: Uint8Array): number => { sp -= b.length; mem.write(sp, b); return sp; };
  const pushStr = (s: string): number => pushBytes(enc.encode(s + '\0'));
  const execfn = pushStr(path);
  const envAddrs = envp.map(pushStr);
  const argAddrs = argv.map(pushStr);
  const rnd = new Uint8Array(16);
  host.randomBytes(rnd);
  const randomAddr = pushBytes(rnd);
  const phdrAddr = phdrAddress(img, bias);
  const auxv = [
    AT_PHDR, phdrAddr, AT_PHENT, PHDR_SIZE, AT_PHNUM, img.phnum, AT_PAGESZ, PAGE, AT_BASE, interpBase,
    AT_FLAGS, 0, AT_ENTRY, img.entry + bias, AT_UID, host.uid, AT_EUID, host.uid, AT_GID, host.gid,
    AT_EGID, host.gid, AT_HWCAP, HWCAP_RV64GC, AT_HWCAP2, 0, AT_CLKTCK, 100, AT_SECURE, 0,
    AT_RANDOM, randomAddr, AT_EXECFN, execfn, AT_NULL, 0,
  ];
  const words = 1 + argAddrs.length + 1 + envAddrs.length + 1 + auxv.length;
  sp = Math.floor((sp - words * 8) / 16) * 16; // the ABI wants sp 16-byte aligned at argc (psABI "Process initialization")
  const block = new Uint8Array(words * 8), dv = new DataView(block.buffer);
  let o = 0;
  const put = (v: number): void => {
    dv.setUint32(o, v % 4294967296 >>> 0, true); dv.setUint32(o + 4, Math.floor(v / 4294967296) >>> 0, true); o += 8;
  };
  put(argAddrs.length);
  for (const a of argAddrs) put(a);
  put(0);
  for (const e of envAddrs) put(e);
  put(0);
  for (const v of auxv) put(v);
  mem.write(sp, block);

  const st = proc.hart.st;
  st.x.fill(0);
  st.setX(2, sp);
  st.setPc(entry);
  proc.exePath = path;
  return { entry, interpBase, phdrAddr, sp, auxv };
}
