/**
 * The host's machine memory, as `tsvm host stats --json` and the memory
 * fields of `tsvm vm stats --json` report it (issue 14 point 7's stable
 * contract; pages and frames are 4 KiB). One object per host: it owns the
 * pool's size and the swap file's path, and it is told about each VM's
 * RAM and latest counters.
 *
 * INTERIM: the shared frame pool (src/memory/frame-pool.ts, p2m.ts, see
 * docs/memory.md) is not wired into the VMs yet: each VM's worker still
 * allocates its own guest RAM (vm-worker.ts createVmMemory). Until it is,
 * this reports from what exists: the --pool size as frames_total, the
 * running VMs' RAM as frames_used (every configured page counted, so it
 * can exceed the pool), and zeros for sharing and swap. The JSON shape is
 * already the final one.
 */
import type { VmMemoryStats } from './vm-worker-protocol.js';

/** Bytes of one pool frame (= one guest page; RISC-V privileged spec §12.3 base pages). */
export const FRAME_BYTES = 4096;

/** The `pool` part of host stats. */
export interface PoolStats { frames_total: number; frames_used: number; frames_free: number }
/** The `sharing` part of host stats (KSM's counter names, Documentation/admin-guide/mm/ksm.rst). */
export interface SharingStats { pages_shared: number; pages_sharing: number; pages_unshared: number; full_scans: number }
/** The `swap` part of host stats. */
export interface SwapStats { pages_out: number; pages_in: number }
/** `tsvm host stats --json`. */
export interface HostMemoryStats { pool: PoolStats; sharing: SharingStats; swap: SwapStats }

/** The host's memory accounting. */
export class HostMemory {
  /** Pool size in bytes (--pool). */
  readonly poolBytes: number;
  /** The swap file's path (--swap), or null. */
  readonly swapPath: string | null;
  private readonly vms = new Map<string, VmMemoryStats>();

  constructor(poolBytes: number, swapPath: string | null) {
    this.poolBytes = poolBytes;
    this.swapPath = swapPath;
  }

  /** Registers a VM of `ramBytes` bytes of RAM (its counters until the worker reports). */
  addVm(name: string, ramBytes: number): void {
    this.vms.set(name, {
      ram_pages: Math.floor(ramBytes / FRAME_BYTES), pages_private: 0, pages_shared: 0, pages_zero: 0, pages_ballooned: 0, pages_swapped: 0,
    });
  }

  /** Records a VM's latest counters (from its worker). */
  update(name: string, s: VmMemoryStats): void { if (this.vms.has(name)) this.vms.set(name, { ...s }); }

  /** The VM's memory has been released (the VM ended). */
  removeVm(name: string): void { this.vms.delete(name); }

  /** A VM's memory counters, or null for an unknown or ended VM. */
  vmStats(name: string): VmMemoryStats | null {
    const s = this.vms.get(name);
    return s ? { ...s } : null;
  }

  /** The host stats contract. */
  stats(): HostMemoryStats {
    const total = Math.floor(this.poolBytes / FRAME_BYTES);
    let used = 0;
    for (const s of this.vms.values()) used += s.ram_pages - s.pages_ballooned; // INTERIM: configured RAM, not touched frames
    return {
      pool: { frames_total: total, frames_used: used, frames_free: Math.max(0, total - used) },
      sharing: { pages_shared: 0, pages_sharing: 0, pages_unshared: 0, full_scans: 0 },
      swap: { pages_out: 0, pages_in: 0 },
    };
  }
}
