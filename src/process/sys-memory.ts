/**
 * Memory-management syscalls over the AddressSpace: brk, mmap (anonymous
 * and file-backed), munmap, mprotect, mremap, msync, madvise, mlock*.
 *
 * A file mapping is a private copy: the file's bytes are copied into the
 * new pages when it is mapped. A writable MAP_SHARED mapping is written
 * back to its file on msync, munmap and exit (other processes never share
 * the pages, since the VM runs one process).
 */
import type { SysCtx, SysArgs, SyscallDef, SharedMapping } from './sys-context.js';
import type { OpenFile } from './fd-table.js';
import { USER_TOP, PROT_READ, PROT_WRITE, PROT_EXEC } from './address-space.js';
import { IO_CHUNK } from './sys-io.js';
import {
  E, MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE, MAP_FIXED, MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE, MREMAP_MAYMOVE, MREMAP_FIXED, O_RDWR,
} from './sys-abi.js';

const PAGE = 4096;
/** mremap flag MREMAP_DONTUNMAP (include/uapi/linux/mman.h). */
const MREMAP_DONTUNMAP = 4;
/** msync flags (include/uapi/asm-generic/mman-common.h). */
const MS_ASYNC = 1, MS_INVALIDATE = 2, MS_SYNC = 4;

const pageUp = (n: number): number => Math.ceil(n / PAGE) * PAGE;

/** One mapping as listed by AddressSpace.maps(). */
interface MapInfo { start: number; end: number; prot: number; name: string }

/** Parses AddressSpace.maps() into ranges (the address space exposes no other listing). */
export function listMappings(c: SysCtx): MapInfo[] {
  const out: MapInfo[] = [];
  for (const line of c.mem.maps().split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])p \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (!m) continue;
    const prot = (m[3] === 'r' ? PROT_READ : 0) | (m[4] === 'w' ? PROT_WRITE : 0) | (m[5] === 'x' ? PROT_EXEC : 0);
    out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), prot, name: m[6] ?? '' });
  }
  return out;
}

/** Writes the pages of writable shared mappings that overlap [start, end) back to their files. */
export function writeBackShared(c: SysCtx, start: number, end: number): void {
  for (const m of c.shared) {
    const s = Math.max(start, m.addr), e = Math.min(end, m.addr + m.len);
    if (s >= e) continue;
    const st = c.host.fstat(m.hostFd);
    if (typeof st === 'number') continue;
    const fileEnd = Number(st.size);
    for (let p = s; p < e; p = Math.floor(p / PAGE) * PAGE + PAGE) {
      const pe = Math.min(e, Math.floor(p / PAGE) * PAGE + PAGE);
      const fpos = m.offset + (p - m.addr);
      if (fpos >= fileEnd) break; // the kernel never extends a file through a mapping
      const data = c.read(p, Math.min(pe - p, fileEnd - fpos));
      if (data) c.host.write(m.hostFd, data, fpos);
    }
  }
}

/** Forgets shared mappings that lie entirely inside [start, end). */
function dropShared(c: SysCtx, start: number, end: number): void {
  const keep: SharedMapping[] = [];
  for (const m of c.shared) {
    if (m.addr >= start && m.addr + m.len <= end) c.host.close(m.hostFd); else keep.push(m);
  }
  c.shared = keep;
}

/** Flushes every writable shared mapping (at exit). */
export function flushSharedMappings(c: SysCtx): void {
  writeBackShared(c, 0, USER_TOP);
}

/** Copies [off, off+len) of `f` into guest pages at `addr` (ignoring their protection). */
function fillFromFile(c: SysCtx, f: OpenFile, addr: number, len: number, off: number): number {
  if (f.kind === 'mem') {
    const d = f.data!.subarray(Math.min(off, f.data!.length), Math.min(off + len, f.data!.length));
    return c.mem.poke(addr, d) ? 0 : -E.ENOMEM;
  }
  const st = c.host.fstat(f.hostFd);
  if (typeof st === 'number') return st;
  const avail = Math.max(0, Math.min(len, Number(st.size) - off));
  const buf = new Uint8Array(Math.min(avail, IO_CHUNK));
  for (let done = 0; done < avail;) {
    const n = c.host.read(f.hostFd, buf.subarray(0, Math.min(buf.length, avail - done)), off + done);
    if (n < 0) return n;
    if (n === 0) break;
    if (!c.mem.poke(addr + done, buf.subarray(0, n))) return -E.ENOMEM;
    done += n;
  }
  return 0;
}

function mmap(c: SysCtx, a: SysArgs): number {
  const addr = a.u(0), len = a.u(1), prot = a.i32(2) & (PROT_READ | PROT_WRITE | PROT_EXEC);
  const flags = a.i32(3), fd = a.i32(4), off = a.n(5);
  if (len === 0 || off < 0 || off % PAGE !== 0) return -E.EINVAL;
  if (len > USER_TOP) return -E.ENOMEM;
  const type = flags & MAP_TYPE;
  if (type !== MAP_SHARED && type !== MAP_PRIVATE && type !== MAP_SHARED_VALIDATE) return -E.EINVAL;
  let file: OpenFile | null = null;
  if (!(flags & MAP_ANONYMOUS)) {
    const f = c.fds.get(fd);
    if (!f || f.kind === 'path') return -E.EBADF;
    if (!f.readable) return -E.EACCES;
    if (type !== MAP_PRIVATE && (prot & PROT_WRITE) && !f.writable) return -E.EACCES;
    if (f.kind === 'zero') file = null;
    else if ((f.kind === 'host' && f.seekable && !f.isDir) || f.kind === 'mem') file = f;
    else return -E.ENODEV;
  }
  const noReplace = (flags & MAP_FIXED_NOREPLACE) !== 0;
  const fixed = noReplace || (flags & MAP_FIXED) !== 0;
  if (fixed && addr % PAGE !== 0) return -E.EINVAL;
  if (fixed && !noReplace) { writeBackShared(c, addr, addr + pageUp(len)); dropShared(c, addr, addr + pageUp(len)); }
  const hint = fixed ? addr : Math.floor(addr / PAGE) * PAGE;
  const r = c.mem.mmap(hint, len, prot, fixed, noReplace, file ? file.guestPath : '');
  if (r < 0) return r;
  if (file) {
    const e = fillFromFile(c, file, r, len, off);
    if (e < 0) { c.mem.munmap(r, pageUp(len)); return e; }
    if (type !== MAP_PRIVATE && (prot & PROT_WRITE) && file.kind === 'host' && file.hostPath) {
      const hfd = c.host.open(file.hostPath, O_RDWR, 0);
      if (hfd >= 0) c.shared.push({ addr: r, len: pageUp(len), hostFd: hfd, offset: off });
    }
  }
  return r;
}

function munmap(c: SysCtx, a: SysArgs): number {
  const addr = a.u(0), len = a.u(1);
  if (addr % PAGE !== 0 || len === 0) return -E.EINVAL;
  writeBackShared(c, addr, addr + pageUp(len));
  dropShared(c, addr, addr + pageUp(len));
  return c.mem.munmap(addr, pageUp(len));
}

function mprotect(c: SysCtx, a: SysArgs): number {
  const addr = a.u(0), len = a.u(1), prot = a.i32(2);
  if (addr % PAGE !== 0) return -E.EINVAL;
  if (len === 0) return 0;
  return c.mem.mprotect(addr, pageUp(len), prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
}

/**
 * mremap: shrinking works in place; growing only if the pages after the
 * mapping are free. Otherwise -ENOMEM, on which glibc's realloc falls back
 * to allocate-copy-free.
 */
function mremap(c: SysCtx, a: SysArgs): number {
  const old = a.u(0), oldLen = pageUp(a.u(1)), newLen = pageUp(a.u(2)), flags = a.i32(3);
  if (old % PAGE !== 0 || flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return -E.EINVAL;
  if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)) return -E.EINVAL;
  if (newLen === 0) return -E.EINVAL;
  if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) return -E.ENOMEM;
  const vma = listMappings(c).find((m) => m.start <= old && old < m.end);
  if (!vma || oldLen === 0) return -E.EFAULT;
  if (newLen <= oldLen) {
    if (newLen < oldLen) {
      writeBackShared(c, old + newLen, old + oldLen);
      c.mem.munmap(old + newLen, oldLen - newLen);
    }
    return old;
  }
  const r = c.mem.mmap(old + oldLen, newLen - oldLen, vma.prot, true, true, vma.name);
  return r < 0 ? -E.ENOMEM : old;
}

function msync(c: SysCtx, a: SysArgs): number {
  const addr = a.u(0), len = a.u(1), flags = a.i32(2);
  if (addr % PAGE !== 0 || flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) return -E.EINVAL;
  if ((flags & MS_ASYNC) && (flags & MS_SYNC)) return -E.EINVAL;
  writeBackShared(c, addr, addr + pageUp(len));
  return 0;
}

function madvise(_c: SysCtx, a: SysArgs): number {
  return a.u(0) % PAGE !== 0 ? -E.EINVAL : 0;
}

function mincore(c: SysCtx, a: SysArgs): number {
  const addr = a.u(0), len = a.u(1);
  if (addr % PAGE !== 0) return -E.EINVAL;
  const n = pageUp(len) / PAGE;
  for (let p = 0; p < n; p++) {
    const at = addr + p * PAGE;
    if (!listMappings(c).some((m) => m.start <= at && at < m.end)) return -E.ENOMEM;
  }
  return c.write(a.u(2), new Uint8Array(n).fill(1)) ? 0 : -E.EFAULT;
}

/** Memory syscalls (include/uapi/asm-generic/unistd.h; riscv_flush_icache: arch/riscv/include/uapi/asm/unistd.h). */
export const memorySyscalls: SyscallDef[] = [
  { nr: 214, name: 'brk', fn: (c, a) => c.mem.brk(a.u(0)) },
  { nr: 215, name: 'munmap', fn: munmap },
  { nr: 216, name: 'mremap', fn: mremap },
  { nr: 222, name: 'mmap', fn: mmap },
  { nr: 226, name: 'mprotect', fn: mprotect },
  { nr: 227, name: 'msync', fn: msync },
  { nr: 228, name: 'mlock', fn: () => 0 },
  { nr: 229, name: 'munlock', fn: () => 0 },
  { nr: 230, name: 'mlockall', fn: () => 0 },
  { nr: 231, name: 'munlockall', fn: () => 0 },
  { nr: 232, name: 'mincore', fn: mincore },
  { nr: 233, name: 'madvise', fn: madvise },
  { nr: 259, name: 'riscv_flush_icache', fn: () => 0 },
  { nr: 284, name: 'mlock2', fn: () => 0 },
];
