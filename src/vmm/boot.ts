/**
 * Builds a bootable machine from a configuration, following a real
 * computer's boot chain:
 * - built-in SBI (default): the VMM is the firmware; the kernel starts in
 *   S-mode at RAM + 2 MiB with a0 = hartid, a1 = DTB, and the M-mode
 *   state a firmware would leave (delegation, counters, Sstc, PMP);
 * - `-bios FILE` (e.g. OpenSBI fw_dynamic/fw_jump): firmware at the start
 *   of RAM in M-mode, the kernel at the next 2 MiB boundary, a2 pointing
 *   at a fw_dynamic_info block;
 * - `-bios none`: the kernel ELF runs directly in M-mode.
 */
import { Board, type MachineKind } from '../machine/board.js';
import { loadKernel, placeInitrdAndFdt, BootError, KERNEL_ALIGN, isRiscvImage, type KernelPlacement } from '../machine/boot-loader.js';
import { buildVirtDeviceTree } from '../machine/virt-dt.js';
import { findElfSymbols } from '../machine/elf-symbols.js';
import { ISA_STRING, IRQ_SSI, IRQ_STI, IRQ_SEI } from '../cpu/csr-file.js';
import { S } from '../cpu/hart-state.js';
import type { CharBackend, Clock } from '../devices/device.js';
import type { VirtioDevice } from '../devices/virtio/mmio.js';
import { VIRT_VIRTIO_COUNT } from '../machine/virt-map.js';
import type { JitConfig } from '../jit/jit-config.js';
import type { GuestMemory } from '../memory/guest-memory.js';

/** A file given to the VM (bytes plus a name for messages). */
export interface BootFile { name: string; data: Uint8Array }

/** Everything needed to assemble a machine. */
export interface BootConfig {
  kind: MachineKind;
  ramBytes: number;
  harts: number;
  /** 'builtin' = the VMM's SBI; 'none' = run the kernel in M-mode; or firmware to run in M-mode. */
  bios: 'builtin' | 'none' | BootFile;
  kernel: BootFile;
  initrd?: BootFile;
  append?: string;
  mmuType?: 'sv39' | 'sv48' | 'sv57';
  console: CharBackend;
  clock: Clock;
  /** virtio devices for the virt board, in command-line order. */
  virtio?: VirtioDevice[];
  /** The VM's JIT settings; absent: the process default. */
  jit?: JitConfig;
  /** Guest RAM made by the host (see BoardConfig.memory); absent: the board's own. */
  memory?: GuestMemory;
}

/** The assembled machine and how it boots. */
export interface BootedMachine {
  board: Board;
  builtinSbi: boolean;
  kernel: KernelPlacement;
  fdtAddr: number;
  /** Harts that start in the SBI HSM STOPPED state (built-in SBI boots hart 0 only). */
  stoppedHarts: number[];
}

/** fw_dynamic_info (OpenSBI include/sbi/fw_dynamic.h): magic "OSBI", version 2, next_addr, next_mode, options, boot_hart. */
const FW_DYNAMIC_INFO_MAGIC = 0x4942534f, FW_DYNAMIC_INFO_VERSION = 2, NEXT_MODE_S = 1;
/** Exceptions a firmware delegates to S-mode: everything but ecalls from S/M (§3.1.8). */
const MEDELEG_LINUX = 0xb1ff;

/** Assembles the machine; throws BootError for unusable inputs. */
export function bootMachine(cfg: BootConfig): BootedMachine {
  const k = cfg.kernel.data;
  let htif: { tohost: number; fromhost: number } | undefined;
  if (cfg.kind === 'spike') {
    const syms = findElfSymbols(k, ['tohost', 'fromhost']);
    const tohost = syms.get('tohost'), fromhost = syms.get('fromhost');
    if (tohost === undefined) throw new BootError(`${cfg.kernel.name}: no 'tohost' symbol (needed for -M spike's HTIF)`);
    htif = { tohost, fromhost: fromhost ?? tohost + 64 };
  }
  const board = new Board({ kind: cfg.kind, ramBytes: cfg.ramBytes, harts: cfg.harts, console: cfg.console, clock: cfg.clock, htif, virtio: cfg.virtio, jit: cfg.jit, memory: cfg.memory });
  const base = board.ramBase;
  let kernelAt = base + KERNEL_ALIGN;
  let firmwareEnd = base;
  if (typeof cfg.bios === 'object') {
    const fwData = cfg.bios.data;
    if (fwData.length === 0) throw new BootError(`${cfg.bios.name}: empty firmware file`);
    let fwEnd: number;
    if (fwData[0] === 0x7f && fwData[1] === 0x45 && fwData[2] === 0x4c && fwData[3] === 0x46) {
      const fw = loadKernel(board.ram, base, fwData, cfg.bios.name, base);
      fwEnd = fw.end;
    } else { // a raw firmware binary (e.g. OpenSBI fw_dynamic.bin) runs from the start of RAM, like QEMU's -bios
      if (isRiscvImage(fwData)) throw new BootError(`${cfg.bios.name}: expected firmware, found a Linux Image`);
      if (!board.writePhys(base, fwData)) throw new BootError(`${cfg.bios.name}: firmware larger than guest RAM`);
      fwEnd = base + fwData.length;
    }
    firmwareEnd = fwEnd;
    const fw = { end: fwEnd };
    kernelAt = Math.ceil(Math.max(fw.end, base + 1) / KERNEL_ALIGN) * KERNEL_ALIGN;
  } else if (cfg.bios === 'none') {
    kernelAt = base;
  }
  // Raw Image files are loaded by their own text_offset; ELF at its physical addresses when they lie in RAM.
  const kernel = loadKernel(board.ram, base, k, cfg.kernel.name, kernelAt === base + KERNEL_ALIGN && cfg.bios !== 'none' ? base : kernelAt);
  if (typeof cfg.bios === 'object' && kernel.start < firmwareEnd) {
    throw new BootError(`${cfg.kernel.name}: overlaps the firmware (ends at 0x${firmwareEnd.toString(16)})`);
  }

  // Device tree and initrd, above the kernel.
  let fdtAddr = 0;
  if (cfg.kind === 'virt') {
    const probe = buildVirtDeviceTree(dtConfig(cfg, board, undefined));
    const initrdSize = cfg.initrd?.data.length ?? 0;
    if (initrdSize > board.ram.size) {
      throw new BootError(`${cfg.initrd!.name}: initrd (${initrdSize} bytes) is larger than guest RAM (${board.ram.size} bytes)`);
    }
    const place = placeInitrdAndFdt(base, board.ram.size, kernel.end, initrdSize, probe.length + 4096);
    const initrd = cfg.initrd ? { start: place.initrd, end: place.initrd + initrdSize } : undefined;
    if (cfg.initrd) board.writePhys(place.initrd, cfg.initrd.data);
    const dtb = buildVirtDeviceTree(dtConfig(cfg, board, initrd));
    board.writePhys(place.fdt, dtb);
    fdtAddr = place.fdt;
  }

  const stoppedHarts: number[] = [];
  const builtinSbi = cfg.bios === 'builtin';
  board.vcpus.forEach((v, i) => {
    const st = v.hart.st, c = v.csrs;
    st.x.fill(0);
    st.setX(10, i);
    st.setX(11, fdtAddr);
    if (builtinSbi) {
      // The state a firmware leaves for an S-mode kernel.
      c.medeleg = MEDELEG_LINUX;
      c.mideleg = IRQ_SSI | IRQ_STI | IRQ_SEI;
      c.mcounteren = -1;
      // Linux enables user access to `time` (scounteren.TM) only in its SBI PMU driver, which the
      // built-in SBI does not offer; without TM, U-mode rdtime (vDSO clock_gettime, ping) traps.
      c.scounteren = 0x2;
      c.menvcfgHi = 0x80000000 | 0; // STCE: Sstc's stimecmp usable from S-mode
      c.pmpaddrLo[0] = -1; c.pmpaddrHi[0] = 0x3fffff; c.pmpcfg[0] = 0x1f; c.pmpGeneration++; // NAPOT over all memory, RWX
      st.s[S.PRIV] = 1;
      st.setPc(kernel.entry);
      if (i !== 0) stoppedHarts.push(i);
    } else if (typeof cfg.bios === 'object') {
      st.s[S.PRIV] = 3;
      st.setPc(base);
      const info = fdtAddr - 64;
      st.setX(12, info);
      if (i === 0) {
        const b = new Uint8Array(48), dv = new DataView(b.buffer);
        const w = (o: number, v: number): void => { dv.setUint32(o, v >>> 0, true); dv.setUint32(o + 4, Math.floor(v / 4294967296), true); };
        w(0, FW_DYNAMIC_INFO_MAGIC); w(8, FW_DYNAMIC_INFO_VERSION); w(16, kernel.entry); w(24, NEXT_MODE_S); w(32, 0); w(40, 0);
        board.writePhys(info, b);
      }
    } else {
      st.s[S.PRIV] = 3;
      st.setPc(kernel.entry);
    }
    c.changed = true; c.flushTlb = true;
  });
  return { board, builtinSbi, kernel, fdtAddr, stoppedHarts };
}

function dtConfig(cfg: BootConfig, board: Board, initrd: { start: number; end: number } | undefined): Parameters<typeof buildVirtDeviceTree>[0] {
  return {
    ramBase: board.ramBase, ramSize: board.ram.size, harts: cfg.harts, isa: ISA_STRING,
    mmuType: `riscv,${cfg.mmuType ?? 'sv39'}` as 'riscv,sv39' | 'riscv,sv48' | 'riscv,sv57',
    bootargs: cfg.append, initrd, virtioSlots: VIRT_VIRTIO_COUNT, hasRtc: true, stdoutPath: '/soc/serial@10000000',
  };
}
