/**
 * Coherence of MAP_SHARED file mappings with the file they map.
 *
 * The VM has no host mmap: a shared file mapping is a copy of the file's
 * bytes taken at mmap time (sys-memory.ts). To behave as if the mapping and
 * the file shared one page cache, every change this VM makes to a file
 * (write/pwrite/pwritev/sendfile, the write-back of another mapping,
 * truncate/ftruncate) is copied into the pages of every MAP_SHARED mapping
 * of the same file, identified by its host (st_dev, st_ino), in every
 * address space of the VM. The pages are updated with poke, so read-only
 * mappings see the change too.
 *
 * Truncation: Linux raises SIGBUS on access to whole pages beyond EOF;
 * here the bytes beyond the new EOF read as zero instead (and, as ever,
 * are not written back).
 */
import type { SysCtx, SharedMapping } from './sys-context.js';
import type { OpenFile } from './fd-table.js';
import type { AddressSpace } from './address-space.js';
import { SEEK_CUR } from './sys-abi.js';


/** Copies guest memory out ignoring page protection (read-only access to the frames); null if unmapped. */
export function peek(c: SysCtx, addr: number, len: number): Uint8Array | null {
  return c.mem.peek(addr, len);
}

/** The address spaces of the VM's live tasks that have shared mappings (each once). */
function spacesWithShared(c: SysCtx): AddressSpace[] {
  const out = new Set<AddressSpace>();
  if (c.mem.shared.length > 0) out.add(c.mem);
  for (const t of c.kernel.tasks) if (t.mem.shared.length > 0) out.add(t.mem);
  return [...out];
}

/** True if any address space of the VM has a shared mapping (the cheap test before each file write). */
function anyShared(c: SysCtx): boolean {
  return c.mem.shared.length > 0 || c.kernel.tasks.some((t) => t.mem.shared.length > 0);
}

/** True if `m` maps the file (dev, ino); never true for shared anonymous memory. */
function mapsFile(m: SharedMapping, dev: bigint, ino: bigint): boolean {
  return m.ino >= 0n && m.dev === dev && m.ino === ino;
}

/**
 * Copies `data`, just written to the file (dev, ino) at offset `pos`, into
 * every shared mapping of that file except `except`.
 */
export function syncMappedFile(c: SysCtx, dev: bigint, ino: bigint, pos: number, data: Uint8Array,
  except: SharedMapping | null = null): void {
  const end = pos + data.length;
  for (const mem of spacesWithShared(c)) {
    for (const m of mem.shared) {
      if (m === except || !mapsFile(m, dev, ino)) continue;
      const s = Math.max(pos, m.offset), e = Math.min(end, m.offset + m.len);
      if (s < e) mem.poke(m.addr + (s - m.offset), data.subarray(s - pos, e - pos));
    }
  }
}

/** After `r` > 0 bytes of `data` were written to host file `f`, at `pos` (null: the host fd's own offset). */
export function noteFileWrite(c: SysCtx, f: OpenFile, data: Uint8Array, r: number, pos: number | null): void {
  if (r <= 0 || f.hostFd < 0 || !anyShared(c)) return;
  let at = pos;
  if (at === null) {
    const cur = c.host.lseek(f.hostFd, 0, SEEK_CUR);
    if (cur < 0) return; // the offset is unknown: nothing to update
    at = cur - r;
  }
  const st = c.host.fstat(f.hostFd);
  if (typeof st === 'number') return;
  syncMappedFile(c, st.dev, st.ino, at, data.subarray(0, r));
}

/**
 * After the file (dev, ino) changed size from `oldSize` to `newSize`:
 * zeroes what the mappings show beyond the new EOF (shrink) or of the
 * newly added, zero-filled range (growth).
 */
export function noteFileResize(c: SysCtx, dev: bigint, ino: bigint, oldSize: number, newSize: number): void {
  if (oldSize === newSize) return;
  for (const mem of spacesWithShared(c)) {
    for (const m of mem.shared) {
      if (!mapsFile(m, dev, ino)) continue;
      const s = Math.max(Math.min(oldSize, newSize), m.offset);
      const e = newSize < oldSize ? m.offset + m.len : Math.min(newSize, m.offset + m.len);
      if (s < e) mem.poke(m.addr + (s - m.offset), new Uint8Array(e - s));
    }
  }
}

/** Host (dev, ino, size) of the file behind a host fd, for noteFileResize; null if unknown or nothing is mapped. */
export function mappedFileId(c: SysCtx, hostFd: number): { dev: bigint; ino: bigint; size: number } | null {
  if (hostFd < 0 || !anyShared(c)) return null;
  const st = c.host.fstat(hostFd);
  return typeof st === 'number' ? null : { dev: st.dev, ino: st.ino, size: Number(st.size) };
}

/** Like mappedFileId, for a host path (truncate(2)). */
export function mappedPathId(c: SysCtx, hostPath: string): { dev: bigint; ino: bigint; size: number } | null {
  if (!anyShared(c)) return null;
  const st = c.host.stat(hostPath);
  return typeof st === 'number' ? null : { dev: st.dev, ino: st.ino, size: Number(st.size) };
}
