/**
 * What a system VM is: the typed configuration `buildVm` (vm-builder.ts)
 * builds from. Front-ends produce it — QEMU's command line
 * (qemu-config.ts), later an API — and nothing in it refers to the host:
 * files are named by path and opened through the VmServices.
 */
import type { MachineKind } from '../machine/board.js';
import type { JitConfig } from '../jit/jit-config.js';
import type { DeviceOptions } from './device-builder.js';
import type { QmpAddress } from './qmp.js';

/** The guest's MMU modes offered in the device tree (privileged spec §12.4-12.6). */
export type MmuType = 'sv39' | 'sv48' | 'sv57';

/** A system VM's configuration. */
export interface VmConfig {
  /** The board: QEMU's `virt`, or `spike` (HTIF, bare-metal programs). */
  machine: MachineKind;
  /** Guest RAM in bytes. */
  memBytes: number;
  /** Number of harts. */
  smp: number;
  /** Kernel path; absent: the default guest (with its initrd, and DEFAULT_APPEND unless `append` is given). */
  kernel?: string;
  /** Initrd path. */
  initrd?: string;
  /** Kernel command line; absent: DEFAULT_APPEND. */
  append?: string;
  /** Firmware: 'default' (the VMM's built-in SBI), 'none' (the kernel runs in M-mode), or a firmware path. */
  bios: string;
  /** The MMU mode the device tree offers. */
  mmu: MmuType;
  /** Debian mirror for building the default guest; absent: the host's apt configuration. */
  mirror?: string;
  /** -device / -drive / -netdev option groups, in command-line order. */
  dev: DeviceOptions;
  /** The QMP endpoint, if any. */
  qmp?: QmpAddress;
  /** The VM's JIT settings (the VM keeps its own copy). */
  jit: JitConfig;
  /**
   * Content-based page sharing for this VM's RAM (`-sharing on|off`; on a
   * host, default on). Sharing across VMs opens timing side channels, so a
   * VM can opt out. `tsvm run` has no pool and ignores it.
   */
  sharing?: boolean;
}

/** The kernel command line when none is given: the console on the UART. */
export const DEFAULT_APPEND = 'console=ttyS0';
