/**
 * Memory-management syscalls over the AddressSpace: brk, mmap (anonymous
 * and file-backed), munmap, mprotect, mremap, msync, madvise, mlock*.
 *
 * A file mapping is a private copy: the file's bytes are copied into the
 * new pages when it is mapped. MAP_SHARED mappings are recorded in
 * c.shared: writes any task of the VM makes to the file are copied into
 * them (shared-mappings.ts), and a writable one is written back to its
 * file on msync, munmap and exit (address spaces never share pages).
 */
import type { SysCtx, SysArgs, SyscallDef, SharedMapping } from './sys-context.js';
import type { OpenFile } from './fd-table.js';
import { USER_TOP, PROT_READ, PROT_WRITE, PROT_EXEC } from './address-space.js';
import { IO_CHUNK } from './sys-io.js';
import { peek, syncMappedFile } from './shared-mappings.js';
import {
  E, MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE, MAP_FIXED, MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE, MREMAP_MAYMOVE, MREMAP_FIXED, O_RDWR, O_RDONLY,
} from './sys-abi.js';

const PAGE = 4096;
/** mremap flag MREMAP_DONTUNMAP (include/uapi/linux/mman.h). */
const MREMAP_DONTUNMAP = 4;
/** madvise advice that discards pages (include/uapi/asm-generic/mman-common.h). */
const MADV_DONTNEED = 4, MADV_DONTNEED_LOCKED = 24;
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

/**
 * Writes the changed bytes of writable shared mappings that overlap
 * [start, end) back to their files, and into the other shared mappings of
 * the same file. Per page only the span that differs from the file is
 * written (a page equal to the file is clean), so an unchanged page of one
 * mapping never overwrites another mapping's change.
 */
export function writeBackShared(c: SysCtx, start: number, end: number): void {
  for (const m of c.shared) {
    if (!m.writable || !m.fileWritable || m.hostFd < 0) continue;
    const s = Math.max(start, m.addr), e = Math.min(end, m.addr + m.len);
    if (s >= e) continue;
    const st = c.host.fstat(m.hostFd);
    if (typeof st === 'number') continue;
    const fileEnd = Number(st.size);
    for (let p = s; p < e; p = Math.floor(p / PAGE) * PAGE + PAGE) {
      const pe = Math.min(e, Math.floor(p / PAGE) * PAGE + PAGE);
      const fpos = m.offset + (p - m.addr);
      if (fpos >= fileEnd) break; // the kernel never extends a file through a mapping
      const data = peek(c, p, Math.min(pe - p, fileEnd - fpos));
      if (!data) continue;
      const cur = new Uint8Array(data.length);
      const got = c.host.read(m.hostFd, cur, fpos);
      let lo = 0, hi = data.length;
      if (got === data.length) {
        while (lo < hi && cur[lo] === data[lo]) lo++;
        while (hi > lo && cur[hi - 1] === data[hi - 1]) hi--;
        if (lo === hi) continue;
      }
      const span = data.subarray(lo, hi);
      const w = c.host.write(m.hostFd, span, fpos + lo);
      if (w > 0) syncMappedFile(c, st.dev, st.ino, fpos + lo, span.subarray(0, w), m);
    }
  }
}

/** Removes [start, end) from the shared-mapping records and returns the removed pieces (host fds stay open). */
function cutShared(c: SysCtx, start: number, end: number): SharedMapping[] {
  const keep: SharedMapping[] = [], cut: SharedMapping[] = [];
  for (const m of c.shared) {
    const mEnd = m.addr + m.len;
    if (mEnd <= start || m.addr >= end) { keep.push(m); continue; }
    if (m.addr < start) keep.push({ ...m, len: start - m.addr });
    if (mEnd > end) keep.push({ ...m, addr: end, len: mEnd - end, offset: m.offset + (end - m.addr) });
    const s = Math.max(start, m.addr), e = Math.min(end, mEnd);
    cut.push({ ...m, addr: s, len: e - s, offset: m.offset + (s - m.addr) });
  }
  c.shared = keep;
  return cut;
}

/** Forgets the shared mappings' parts inside [start, end), closing host fds no record uses any more. */
function dropShared(c: SysCtx, start: number, end: number): void {
  const fds = new Set(cutShared(c, start, end).map((m) => m.hostFd));
  for (const fd of fds) if (fd >= 0 && !c.shared.some((m) => m.hostFd === fd)) c.host.close(fd);
}

/** Records a new MAP_SHARED mapping of host file `f` (or of anonymous memory if `f` is null). */
function recordShared(c: SysCtx, f: OpenFile | null, addr: number, len: number, off: number, writable: boolean): void {
  if (!f) {
    c.shared.push({ addr, len, offset: 0, hostFd: -1, hostPath: '', fileWritable: false, writable, dev: -1n, ino: -1n });
    return;
  }
  const st = c.host.fstat(f.hostFd);
  if (typeof st === 'number') return;
  let hostFd = f.hostPath ? c.host.open(f.hostPath, f.writable ? O_RDWR : O_RDONLY, 0) : -1;
  if (hostFd >= 0) {
    const st2 = c.host.fstat(hostFd); // the path may name another file by now
    if (typeof st2 === 'number' || st2.dev !== st.dev || st2.ino !== st.ino) { c.host.close(hostFd); hostFd = -1; }
  }
  c.shared.push({
    addr, len, offset: off, hostFd: hostFd < 0 ? -1 : hostFd, hostPath: hostFd < 0 ? '' : f.hostPath,
    fileWritable: f.writable, writable, dev: st.dev, ino: st.ino,
  });
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
  return fillFromHostFd(c, f.hostFd, addr, len, off);
}

/** Copies [off, off+len) of the host file `hostFd` (as far as it extends) into guest pages at `addr`. */
function fillFromHostFd(c: SysCtx, hostFd: number, addr: number, len: number, off: number): number {
  const st = c.host.fstat(hostFd);
  if (typeof st === 'number') return st;
  const avail = Math.max(0, Math.min(len, Number(st.size) - off));
  const buf = new Uint8Array(Math.min(avail, IO_CHUNK));
  for (let done = 0; done < avail;) {
    const n = c.host.read(hostFd, buf.subarray(0, Math.min(buf.length, avail - done)), off + done);
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
  }
  if (type !== MAP_PRIVATE && (!file || file.kind === 'host')) recordShared(c, file, r, pageUp(len), off, (prot & PROT_WRITE) !== 0);
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
  const end = addr + pageUp(len);
  const over = c.shared.filter((m) => m.addr < end && m.addr + m.len > addr);
  // A shared mapping of a file opened read-only can never become writable (no VM_MAYWRITE).
  if ((prot & PROT_WRITE) && over.some((m) => m.ino >= 0n && !m.fileWritable)) return -E.EACCES;
  const r = c.mem.mprotect(addr, pageUp(len), prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
  if (r === 0 && (prot & PROT_WRITE)) for (const m of over) m.writable = true;
  return r;
}

/** Unmaps [addr, addr+len) (page aligned), writing back and forgetting the shared mappings there. */
function unmapRange(c: SysCtx, addr: number, len: number): void {
  writeBackShared(c, addr, addr + len);
  dropShared(c, addr, addr + len);
  c.mem.munmap(addr, len);
}

/**
 * The mapping holding [addr, addr+len) for mremap: adjacent pieces with the
 * same protection and name are merged, as Linux merges VMAs. -EFAULT if
 * addr is unmapped or the range is not inside one mapping; -EINVAL for a
 * zero length (Linux only lets shared mappings be duplicated that way).
 */
function remapSource(c: SysCtx, addr: number, len: number): MapInfo | number {
  const maps = listMappings(c);
  const i = maps.findIndex((m) => m.start <= addr && addr < m.end);
  if (i < 0) return -E.EFAULT;
  const v = { ...maps[i]! };
  for (let j = i + 1; j < maps.length; j++) {
    const n = maps[j]!;
    if (n.start !== v.end || n.prot !== v.prot || n.name !== v.name) break;
    v.end = n.end;
  }
  if (len === 0) return -E.EINVAL;
  return addr + len > v.end ? -E.EFAULT : v;
}

/**
 * Copies `len` bytes of pages from `from` to `to` (both mapped), ignoring
 * protection. All-zero pages are not written, so they stay demand-zero at
 * the destination. False if a destination page cannot be backed.
 */
function copyPages(c: SysCtx, from: number, to: number, len: number): boolean {
  for (let o = 0; o < len; o += PAGE) {
    const data = peek(c, from + o, PAGE);
    if (!data) continue;
    const words = new Uint32Array(data.buffer);
    let zero = true;
    for (let i = 0; i < words.length && zero; i++) zero = words[i] === 0;
    if (!zero && !c.mem.poke(to + o, data)) return false;
  }
  return true;
}

/**
 * After a shared mapping at [addr, addr+oldLen) grew to newLen: extends the
 * record ending at addr+oldLen and fills the new pages from its file.
 */
function growShared(c: SysCtx, addr: number, oldLen: number, newLen: number): void {
  const m = c.shared.find((s) => s.addr < addr + oldLen && s.addr + s.len === addr + oldLen);
  if (!m) return;
  m.len += newLen - oldLen;
  if (m.hostFd >= 0) fillFromHostFd(c, m.hostFd, addr + oldLen, newLen - oldLen, m.offset + (addr + oldLen - m.addr));
}

/**
 * Moves the mapping [old, old+oldLen) (described by `v`) to a new range of
 * newLen bytes: at `fixedAt` if not null, else wherever there is room. The
 * contents and shared-mapping records move along; the old range is
 * unmapped, or with `dontUnmap` left mapped with fresh zero pages.
 */
function moveMapping(c: SysCtx, old: number, oldLen: number, newLen: number, v: MapInfo,
  fixedAt: number | null, dontUnmap: boolean): number {
  const to = c.mem.mmap(fixedAt ?? 0, newLen, v.prot, fixedAt !== null, false, v.name);
  if (to < 0) return -E.ENOMEM;
  const keep = Math.min(oldLen, newLen);
  if (!copyPages(c, old, to, keep)) { c.mem.munmap(to, newLen); return -E.ENOMEM; }
  if (newLen < oldLen) unmapRange(c, old + newLen, oldLen - newLen);
  for (const m of cutShared(c, old, old + keep)) c.shared.push({ ...m, addr: to + (m.addr - old) });
  if (newLen > oldLen) growShared(c, to, oldLen, newLen);
  c.mem.munmap(old, keep);
  if (dontUnmap) c.mem.mmap(old, keep, v.prot, true, false, v.name);
  return to;
}

/**
 * mremap (mm/mremap.c): shrinking works in place; growing in place if the
 * pages after the mapping are free, else (with MREMAP_MAYMOVE) by moving
 * the mapping, as do MREMAP_FIXED (to new_address, replacing what is
 * there) and MREMAP_DONTUNMAP (private anonymous mappings only, whose old
 * range then reads as zero). Growing a MAP_PRIVATE file mapping fills the
 * new pages with zeros, not file data (its file offset is not tracked).
 */
function mremap(c: SysCtx, a: SysArgs): number {
  const old = a.u(0), newLen = pageUp(a.u(2)), flags = a.i32(3), target = a.u(4);
  let oldLen = pageUp(a.u(1));
  const dontUnmap = (flags & MREMAP_DONTUNMAP) !== 0;
  if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return -E.EINVAL;
  if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)) return -E.EINVAL;
  if (dontUnmap && (!(flags & MREMAP_MAYMOVE) || a.u(1) !== a.u(2))) return -E.EINVAL;
  if (old % PAGE !== 0 || newLen === 0) return -E.EINVAL;
  if (newLen > USER_TOP) return -E.ENOMEM;
  if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
    const fixed = (flags & MREMAP_FIXED) !== 0;
    if (fixed) {
      if (target % PAGE !== 0 || target > USER_TOP - newLen) return -E.EINVAL;
      if (old + oldLen > target && target + newLen > old) return -E.EINVAL;
      unmapRange(c, target, newLen);
    }
    if (oldLen > newLen) { unmapRange(c, old + newLen, oldLen - newLen); oldLen = newLen; }
    const v = remapSource(c, old, oldLen);
    if (typeof v === 'number') return v;
    if (dontUnmap && (!(v.name === '' || v.name.startsWith('[')) || c.shared.some((m) => m.addr < old + oldLen && m.addr + m.len > old))) {
      return -E.EINVAL; // not private anonymous memory
    }
    return moveMapping(c, old, oldLen, newLen, v, fixed ? target : null, dontUnmap);
  }
  if (oldLen >= newLen) {
    if (oldLen > newLen) unmapRange(c, old + newLen, oldLen - newLen);
    return old;
  }
  const v = remapSource(c, old, oldLen);
  if (typeof v === 'number') return v;
  if (old + oldLen === v.end && c.mem.mmap(old + oldLen, newLen - oldLen, v.prot, true, true, v.name) >= 0) {
    growShared(c, old, oldLen, newLen);
    return old;
  }
  return (flags & MREMAP_MAYMOVE) ? moveMapping(c, old, oldLen, newLen, v, null, false) : -E.ENOMEM;
}

function msync(c: SysCtx, a: SysArgs): number {
  const addr = a.u(0), len = a.u(1), flags = a.i32(2);
  if (addr % PAGE !== 0 || flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) return -E.EINVAL;
  if ((flags & MS_ASYNC) && (flags & MS_SYNC)) return -E.EINVAL;
  const end = addr + pageUp(len);
  writeBackShared(c, addr, end);
  // Unmapped parts of the range are skipped, but reported (mm/msync.c).
  let at = addr;
  for (const m of listMappings(c)) {
    if (m.end <= at) continue;
    if (m.start > at || at >= end) break;
    at = m.end;
  }
  return at < end ? -E.ENOMEM : 0;
}

/**
 * madvise: MADV_DONTNEED (and MADV_DONTNEED_LOCKED) zero-fill the private
 * anonymous pages of the range on their next touch, as Linux does
 * (mm/madvise.c; allocators count on it to return memory that reads as
 * zero). Other advice is a hint, accepted and ignored.
 */
function madvise(c: SysCtx, a: SysArgs): number {
  const addr = a.u(0), len = a.u(1), advice = a.i32(2);
  if (addr % PAGE !== 0) return -E.EINVAL;
  if (advice !== MADV_DONTNEED && advice !== MADV_DONTNEED_LOCKED) return 0;
  if (len === 0) return 0;
  if (addr + len > 2 ** 64) return -E.EINVAL; // the range wraps (mm/madvise.c)
  const shared = c.shared;
  return c.mem.discard(addr, len, (vpn) => shared.some((m) => m.addr <= vpn * PAGE && vpn * PAGE < m.addr + m.len));
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
