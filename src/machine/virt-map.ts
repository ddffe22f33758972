/**
 * Memory map, interrupt numbers and clock rates of QEMU's `virt` board as of
 * QEMU 7.2. Source of the facts: `hw/riscv/virt.c` (`virt_memmap[]`, the
 * `create_fdt_*` functions) and `include/hw/riscv/virt.h` of QEMU 7.2,
 * cross-checked against `qemu-system-riscv64 -M virt` `info mtree`,
 * `info qtree` and its `dumpdtb` output.
 */

/** Debug module window (virt.c `VIRT_DEBUG`). */
export const VIRT_DEBUG_BASE = 0x0;
/** Size of the debug module window (virt.c `VIRT_DEBUG`). */
export const VIRT_DEBUG_SIZE = 0x100;

/** Boot ROM holding the reset vector (virt.c `VIRT_MROM`). */
export const VIRT_MROM_BASE = 0x1000;
/** Size of the boot ROM (virt.c `VIRT_MROM`: 0xf000 in 7.2). */
export const VIRT_MROM_SIZE = 0xf000;

/** SiFive test finisher / syscon (virt.c `VIRT_TEST`). */
export const VIRT_TEST_BASE = 0x100000;
/** Size of the test finisher window (virt.c `VIRT_TEST`). */
export const VIRT_TEST_SIZE = 0x1000;

/** Goldfish RTC (virt.c `VIRT_RTC`). */
export const VIRT_RTC_BASE = 0x101000;
/** Size of the RTC window (virt.c `VIRT_RTC`). */
export const VIRT_RTC_SIZE = 0x1000;

/** CLINT: ACLINT SSWI at +0 and MTIMER at +0x4000 (virt.c `VIRT_CLINT`). */
export const VIRT_CLINT_BASE = 0x2000000;
/** Size of the CLINT window (virt.c `VIRT_CLINT`). */
export const VIRT_CLINT_SIZE = 0x10000;

/** PLIC (virt.c `VIRT_PLIC`). */
export const VIRT_PLIC_BASE = 0xc000000;
/**
 * Size of the PLIC window: `VIRT_PLIC_SIZE(VIRT_CPUS_MAX * 2)` =
 * 0x200000 + 1024 contexts * 0x1000 (virt.h), independent of the hart count.
 */
export const VIRT_PLIC_SIZE = 0x600000;
/** PLIC interrupt sources including the reserved source 0 (virt.h `VIRT_IRQCHIP_NUM_SOURCES`). */
export const VIRT_PLIC_NUM_SOURCES = 96;
/** Highest PLIC priority level (virt.h `VIRT_IRQCHIP_NUM_PRIO`); priority registers hold 0..7. */
export const VIRT_PLIC_NUM_PRIORITIES = 7;
/**
 * `riscv,ndev` as tsvm emits it: sources 1..95, i.e. the number of sources
 * excluding the reserved 0 (DT binding `sifive,plic-1.0.0`). QEMU 7.2 itself
 * emits 96 here (`VIRT_IRQCHIP_NUM_SOURCES`, one too many).
 */
export const VIRT_PLIC_NDEV = VIRT_PLIC_NUM_SOURCES - 1;

/** NS16550A UART 0 (virt.c `VIRT_UART0`). */
export const VIRT_UART0_BASE = 0x10000000;
/** Size of the UART window (virt.c `VIRT_UART0`). */
export const VIRT_UART0_SIZE = 0x100;
/** UART 0's PLIC source (virt.h `UART0_IRQ`). */
export const VIRT_UART0_IRQ = 10;
/** UART input clock, 3.6864 MHz (virt.c `create_fdt_uart`: "clock-frequency" 0x384000). */
export const VIRT_UART0_CLOCK_HZ = 0x384000;

/** Goldfish RTC's PLIC source (virt.h `RTC_IRQ`). */
export const VIRT_RTC_IRQ = 11;

/** First virtio-mmio transport (virt.c `VIRT_VIRTIO`). */
export const VIRT_VIRTIO_BASE = 0x10001000;
/** Size of, and stride between, virtio-mmio transports (virt.c `VIRT_VIRTIO`). */
export const VIRT_VIRTIO_SIZE = 0x1000;
/** Number of virtio-mmio transports (virt.h `VIRTIO_COUNT`). */
export const VIRT_VIRTIO_COUNT = 8;
/** PLIC source of virtio-mmio transport 0; transport i uses VIRTIO_IRQ + i (virt.h `VIRTIO_IRQ`). */
export const VIRT_VIRTIO_IRQ = 1;

/** Start of RAM (virt.c `VIRT_DRAM`). */
export const VIRT_DRAM_BASE = 0x80000000;

/** Frequency of `mtime` / the `time` CSR (virt.h `RISCV_ACLINT_DEFAULT_TIMEBASE_FREQ`). */
export const VIRT_TIMEBASE_HZ = 10000000;

/** Maximum harts of the board (virt.h `VIRT_CPUS_MAX` = 1 << 9); 2 PLIC contexts each fill the PLIC window. */
export const VIRT_MAX_HARTS = 512;

/** Base address of virtio-mmio transport `i` (0-based). */
export function virtioBase(i: number): number {
  return VIRT_VIRTIO_BASE + i * VIRT_VIRTIO_SIZE;
}

/** PLIC source of virtio-mmio transport `i` (0-based). */
export function virtioIrq(i: number): number {
  return VIRT_VIRTIO_IRQ + i;
}
