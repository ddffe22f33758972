/**
 * Places the boot payload in guest RAM the way QEMU's virt board does:
 * firmware (if any) at the start of RAM, the kernel at its load address,
 * the initrd and the device tree above it, and tells the caller where the
 * harts must start.
 *
 * Kernel formats: the RISC-V Linux `Image` (its header per the kernel's
 * Documentation/arch/riscv/boot-image-header.rst, including Debian's
 * EFI-stub Image) and ELF64 (`vmlinux`, or bare-metal programs).
 */
import type { GuestMemory } from '../memory/guest-memory.js';

/** A boot payload that cannot be used: one line for the user. */
export class BootError extends Error {}

/** Offsets in the Image header (boot-image-header.rst). */
const IMG_TEXT_OFFSET = 8, IMG_SIZE = 16, IMG_MAGIC = 48, IMG_MAGIC2 = 56;
/** "RISCV\0\0\0" (deprecated magic) and "RSC\x05" (magic2). */
const RISCV_MAGIC = [0x52, 0x49, 0x53, 0x43, 0x56, 0, 0, 0];
const RISCV_MAGIC2 = [0x52, 0x53, 0x43, 0x05];
/** RV64 kernels must sit 2 MiB-aligned (PMD size): QEMU loads them at RAM + 2 MiB. */
export const KERNEL_ALIGN = 0x200000;

/** What was loaded where (guest-physical addresses). */
export interface KernelPlacement {
  entry: number;
  start: number;
  end: number;
  format: 'image' | 'elf';
}

function matches(data: Uint8Array, off: number, magic: number[]): boolean {
  return magic.every((b, k) => data[off + k] === b);
}

function u64(dv: DataView, off: number): number {
  return dv.getUint32(off + 4, true) * 4294967296 + dv.getUint32(off, true);
}

/** True if `data` looks like a RISC-V Linux Image. */
export function isRiscvImage(data: Uint8Array): boolean {
  return data.length >= 64 && (matches(data, IMG_MAGIC2, RISCV_MAGIC2) || matches(data, IMG_MAGIC, RISCV_MAGIC));
}

/**
 * Loads a kernel (Image or ELF) into RAM. An Image goes to `loadAddr`
 * (plus its text_offset when `loadAddr` is the start of RAM); an ELF goes
 * to its physical addresses if they lie in RAM, else it is relocated as a
 * block to `loadAddr`. Throws BootError with a one-line reason.
 */
export function loadKernel(ram: GuestMemory, ramBase: number, data: Uint8Array, name: string, loadAddr: number): KernelPlacement {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const put = (addr: number, bytes: Uint8Array, memsz: number): void => {
    const off = addr - ramBase;
    if (off < 0 || off + memsz > ram.size) {
      throw new BootError(`${name}: does not fit in guest RAM (needs 0x${addr.toString(16)}..0x${(addr + memsz).toString(16)})`);
    }
    ram.write(addr, bytes);
    if (memsz > bytes.length) ram.zero(addr + bytes.length, memsz - bytes.length);
  };
  if (data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46) {
    if (data.length < 64 || data[4] !== 2 || data[5] !== 1) throw new BootError(`${name}: not a little-endian ELF64 file`);
    if (dv.getUint16(18, true) !== 243) throw new BootError(`${name}: ELF is not for RISC-V (e_machine ${dv.getUint16(18, true)})`);
    const phoff = u64(dv, 32), phnum = dv.getUint16(56, true), entryV = u64(dv, 24);
    if (dv.getUint16(54, true) !== 56 || phoff + phnum * 56 > data.length) throw new BootError(`${name}: truncated program headers`);
    const segs: { paddr: number; vaddr: number; off: number; filesz: number; memsz: number }[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = phoff + i * 56;
      if (dv.getUint32(o, true) !== 1) continue; // PT_LOAD
      const seg = { off: u64(dv, o + 8), vaddr: u64(dv, o + 16), paddr: u64(dv, o + 24), filesz: u64(dv, o + 32), memsz: u64(dv, o + 40) };
      if (seg.off + seg.filesz > data.length || seg.filesz > seg.memsz) throw new BootError(`${name}: segment ${i} is truncated`);
      segs.push(seg);
    }
    if (segs.length === 0) throw new BootError(`${name}: ELF has no loadable segments`);
    const inRam = segs.every((s) => s.paddr >= ramBase && s.paddr + s.memsz <= ramBase + ram.size);
    const low = Math.min(...segs.map((s) => s.paddr)), lowV = Math.min(...segs.map((s) => s.vaddr));
    const delta = inRam ? 0 : loadAddr - low;
    let end = 0;
    for (const s of segs) {
      put(s.paddr + delta, data.subarray(s.off, s.off + s.filesz), s.memsz);
      end = Math.max(end, s.paddr + delta + s.memsz);
    }
    // The entry is virtual; map it through the segment that holds it.
    const holder = segs.find((s) => entryV >= s.vaddr && entryV < s.vaddr + s.memsz);
    const entry = holder ? holder.paddr + delta + (entryV - holder.vaddr) : inRam ? entryV : loadAddr + (entryV - lowV);
    return { entry, start: low + delta, end, format: 'elf' };
  }
  if (!isRiscvImage(data)) {
    throw new BootError(`${name}: not a RISC-V kernel (neither an ELF nor a Linux Image with the RSC\\x05 magic)`);
  }
  const textOffset = u64(dv, IMG_TEXT_OFFSET), imageSize = u64(dv, IMG_SIZE);
  if (imageSize !== 0 && imageSize < data.length) throw new BootError(`${name}: corrupt Image header (image_size smaller than the file)`);
  const start = loadAddr === ramBase ? ramBase + (textOffset || KERNEL_ALIGN) : loadAddr;
  const memsz = Math.max(imageSize, data.length);
  put(start, data, memsz);
  return { entry: start, start, end: start + memsz, format: 'image' };
}

/**
 * Chooses addresses for the initrd and the device tree like QEMU's virt
 * board: the DTB in the last 2 MiB-aligned slot below the top of RAM (at
 * most 3 GiB in), the initrd below it. Throws if they do not fit.
 */
export function placeInitrdAndFdt(ramBase: number, ramSize: number, kernelEnd: number, initrdSize: number,
  fdtSize: number): { initrd: number; fdt: number } {
  const top = ramBase + Math.min(ramSize, 0xc0000000);
  const fdt = Math.floor((top - fdtSize) / KERNEL_ALIGN) * KERNEL_ALIGN;
  const initrd = Math.floor((fdt - initrdSize) / 4096) * 4096;
  if (fdt < kernelEnd || initrd < kernelEnd) {
    throw new BootError(`initrd (${initrdSize} bytes) and device tree do not fit in RAM above the kernel; use a larger -m`);
  }
  return { initrd, fdt };
}
