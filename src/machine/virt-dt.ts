/**
 * The device tree of tsvm's `virt` board, shaped like the one QEMU 7.2
 * generates for `-M virt` (`hw/riscv/virt.c` `create_fdt*`): same node
 * names, compatibles, `reg`s and interrupt wiring for the devices tsvm
 * emulates (CLINT, PLIC, UART, RTC, test finisher, virtio-mmio). QEMU-only
 * nodes (PCIe, flash, fw-cfg, platform bus, PMU) are left out.
 *
 * Bindings: Linux `Documentation/devicetree/bindings/riscv/cpus.yaml`
 * (riscv,isa, riscv,isa-base, riscv,isa-extensions, mmu-type),
 * `interrupt-controller/riscv,cpu-intc.yaml`, `sifive,plic-1.0.0.yaml`,
 * `timer/sifive,clint.yaml`, `serial/8250.yaml`, `rtc/google,goldfish-rtc`,
 * `power/reset/syscon-poweroff.yaml` / `syscon-reboot.yaml`,
 * `virtio/mmio.yaml`, and the Devicetree Specification v0.4 chapters 3-4
 * (/cpus, /memory, /chosen).
 */
import { FdtBuilder, u64Cells } from './fdt.js';
import {
  VIRT_CLINT_BASE, VIRT_CLINT_SIZE, VIRT_PLIC_BASE, VIRT_PLIC_SIZE, VIRT_PLIC_NDEV, VIRT_UART0_BASE,
  VIRT_UART0_SIZE, VIRT_UART0_IRQ, VIRT_UART0_CLOCK_HZ, VIRT_RTC_BASE, VIRT_RTC_SIZE, VIRT_RTC_IRQ,
  VIRT_TEST_BASE, VIRT_TEST_SIZE, VIRT_VIRTIO_COUNT, VIRT_VIRTIO_SIZE, VIRT_TIMEBASE_HZ, VIRT_MAX_HARTS,
  virtioBase, virtioIrq,
} from './virt-map.js';

/** What the board tells the device tree. */
export interface VirtDtConfig {
  /** Guest physical start of RAM (virt: 0x8000_0000). */
  ramBase: number;
  /** RAM size in bytes. */
  ramSize: number;
  /** Number of harts (hart IDs 0..harts-1). */
  harts: number;
  /** ISA string for `riscv,isa`, e.g. "rv64imafdc_zicsr_zifencei_zba_zbb_zbs". */
  isa: string;
  /** MMU type of every hart. */
  mmuType: 'riscv,sv39' | 'riscv,sv48' | 'riscv,sv57';
  /** Kernel command line (`/chosen/bootargs`). */
  bootargs?: string;
  /** Initrd location [start, end) in guest physical memory. */
  initrd?: { start: number; end: number };
  /** Number of virtio-mmio transports to describe (0..8). */
  virtioSlots: number;
  /** Whether to describe the Goldfish RTC. */
  hasRtc: boolean;
  /** `/chosen/stdout-path`, normally "/soc/serial@10000000". */
  stdoutPath: string;
  /** Optional bytes for `/chosen/rng-seed`. */
  rngSeed?: Uint8Array;
  /** Root `model` string (default "riscv-virtio,qemu", as QEMU). */
  model?: string;
}

/** Path of the UART node, the usual `stdoutPath`. */
export const VIRT_STDOUT_PATH = `/soc/serial@${VIRT_UART0_BASE.toString(16)}`;

/** mip/mie bit of machine software interrupts (RISC-V privileged spec v1.12, section 3.1.9, Table 3.6). */
const IRQ_M_SOFT = 3;
/** mip/mie bit of machine timer interrupts (privileged spec Table 3.6). */
const IRQ_M_TIMER = 7;
/** mip/mie bit of supervisor external interrupts (privileged spec Table 3.6). */
const IRQ_S_EXT = 9;
/** mip/mie bit of machine external interrupts (privileged spec Table 3.6). */
const IRQ_M_EXT = 11;

/** Single-letter extensions that `riscv,isa-extensions` accepts (cpus.yaml / extensions.yaml). */
const SINGLE_LETTER = 'imafdqcbkjpvh';

/**
 * Splits an ISA string into the `riscv,isa-base` and `riscv,isa-extensions`
 * values (RISC-V unprivileged spec chapter "ISA Extension Naming
 * Conventions": single letters first, multi-letter ones separated by '_';
 * 'g' stands for "imafd_zicsr_zifencei").
 */
export function splitIsa(isa: string): { base: string; extensions: string[] } {
  const m = /^rv(32|64)([a-z]*)((?:_[a-z][a-z0-9]*)*)$/.exec(isa.toLowerCase());
  if (!m) throw new Error(`malformed ISA string "${isa}"`);
  const xlen = m[1] ?? '64';
  const letters = m[2] ?? '';
  const multi = (m[3] ?? '').split('_').filter((s) => s.length > 0);
  if (!letters.startsWith('i') && !letters.startsWith('g') && !letters.startsWith('e')) {
    throw new Error(`ISA string "${isa}" has no base (i, e or g)`);
  }
  const ext: string[] = [];
  const add = (e: string): void => { if (!ext.includes(e)) ext.push(e); };
  for (const c of letters) {
    if (c === 'g') { for (const e of ['i', 'm', 'a', 'f', 'd', 'zicsr', 'zifencei']) add(e); }
    else if (SINGLE_LETTER.includes(c) || c === 'e') add(c);
    else if (c === 's' || c === 'u') continue; // legacy "su" suffix (old QEMU strings): privilege modes, not extensions
    else throw new Error(`unknown single-letter extension "${c}" in "${isa}"`);
  }
  for (const e of multi) add(e);
  return { base: `rv${xlen}${letters.startsWith('e') ? 'e' : 'i'}`, extensions: ext };
}

/** Builds the DTB for the virt board described by `cfg`. */
export function buildVirtDeviceTree(cfg: VirtDtConfig): Uint8Array {
  if (!Number.isInteger(cfg.harts) || cfg.harts < 1 || cfg.harts > VIRT_MAX_HARTS) throw new RangeError(`invalid hart count ${cfg.harts}`);
  if (!Number.isInteger(cfg.virtioSlots) || cfg.virtioSlots < 0 || cfg.virtioSlots > VIRT_VIRTIO_COUNT) {
    throw new RangeError(`invalid virtio slot count ${cfg.virtioSlots}`);
  }
  const { base: isaBase, extensions } = splitIsa(cfg.isa);
  const fdt = new FdtBuilder();
  const reg = (base: number, size: number): number[] => [...u64Cells(base), ...u64Cells(size)];

  // Phandles, allocated up front so nodes can refer forward.
  const cpuPh: number[] = [];
  const intcPh: number[] = [];
  for (let h = 0; h < cfg.harts; h++) { cpuPh.push(fdt.allocPhandle()); intcPh.push(fdt.allocPhandle()); }
  const plicPh = fdt.allocPhandle();
  const testPh = fdt.allocPhandle();

  fdt.beginNode('');
  fdt.propU32('#address-cells', 2);
  fdt.propU32('#size-cells', 2);
  fdt.propString('compatible', 'riscv-virtio');
  fdt.propString('model', cfg.model ?? 'riscv-virtio,qemu');

  fdt.beginNode('chosen');
  if (cfg.bootargs !== undefined) fdt.propString('bootargs', cfg.bootargs);
  fdt.propString('stdout-path', cfg.stdoutPath);
  if (cfg.initrd) {
    if (!(cfg.initrd.end >= cfg.initrd.start)) throw new RangeError('initrd end before start');
    fdt.propU64('linux,initrd-start', cfg.initrd.start);
    fdt.propU64('linux,initrd-end', cfg.initrd.end);
  }
  if (cfg.rngSeed) fdt.prop('rng-seed', cfg.rngSeed);
  fdt.endNode();

  // syscon-poweroff / syscon-reboot on the test finisher (QEMU virt.c create_fdt_reset).
  fdt.beginNode('poweroff');
  fdt.propU32('value', 0x5555); // FINISHER_PASS (QEMU sifive_test.h)
  fdt.propU32('offset', 0);
  fdt.propU32('regmap', testPh);
  fdt.propString('compatible', 'syscon-poweroff');
  fdt.endNode();
  fdt.beginNode('reboot');
  fdt.propU32('value', 0x7777); // FINISHER_RESET (QEMU sifive_test.h)
  fdt.propU32('offset', 0);
  fdt.propU32('regmap', testPh);
  fdt.propString('compatible', 'syscon-reboot');
  fdt.endNode();

  fdt.beginNode(`memory@${cfg.ramBase.toString(16)}`);
  fdt.propString('device_type', 'memory');
  fdt.propCells('reg', reg(cfg.ramBase, cfg.ramSize));
  fdt.endNode();

  fdt.beginNode('cpus');
  fdt.propU32('#address-cells', 1);
  fdt.propU32('#size-cells', 0);
  fdt.propU32('timebase-frequency', VIRT_TIMEBASE_HZ);
  for (let h = 0; h < cfg.harts; h++) {
    fdt.beginNode(`cpu@${h.toString(16)}`);
    fdt.propU32('phandle', cpuPh[h] ?? 0);
    fdt.propString('device_type', 'cpu');
    fdt.propU32('reg', h);
    fdt.propString('status', 'okay');
    fdt.propString('compatible', 'riscv');
    fdt.propString('riscv,isa', cfg.isa);
    fdt.propString('riscv,isa-base', isaBase);
    fdt.propStrings('riscv,isa-extensions', extensions);
    fdt.propString('mmu-type', cfg.mmuType);
    fdt.beginNode('interrupt-controller');
    fdt.propU32('#interrupt-cells', 1);
    fdt.propEmpty('interrupt-controller');
    fdt.propString('compatible', 'riscv,cpu-intc');
    fdt.propU32('phandle', intcPh[h] ?? 0);
    fdt.endNode();
    fdt.endNode();
  }
  fdt.beginNode('cpu-map');
  fdt.beginNode('cluster0');
  for (let h = 0; h < cfg.harts; h++) {
    fdt.beginNode(`core${h}`);
    fdt.propU32('cpu', cpuPh[h] ?? 0);
    fdt.endNode();
  }
  fdt.endNode();
  fdt.endNode();
  fdt.endNode(); // cpus

  fdt.beginNode('soc');
  fdt.propU32('#address-cells', 2);
  fdt.propU32('#size-cells', 2);
  fdt.propString('compatible', 'simple-bus');
  fdt.propEmpty('ranges');

  if (cfg.hasRtc) {
    fdt.beginNode(`rtc@${VIRT_RTC_BASE.toString(16)}`);
    fdt.propU32('interrupts', VIRT_RTC_IRQ);
    fdt.propU32('interrupt-parent', plicPh);
    fdt.propCells('reg', reg(VIRT_RTC_BASE, VIRT_RTC_SIZE));
    fdt.propString('compatible', 'google,goldfish-rtc');
    fdt.endNode();
  }

  fdt.beginNode(`serial@${VIRT_UART0_BASE.toString(16)}`);
  fdt.propU32('interrupts', VIRT_UART0_IRQ);
  fdt.propU32('interrupt-parent', plicPh);
  fdt.propU32('clock-frequency', VIRT_UART0_CLOCK_HZ);
  fdt.propCells('reg', reg(VIRT_UART0_BASE, VIRT_UART0_SIZE));
  fdt.propString('compatible', 'ns16550a');
  fdt.endNode();

  fdt.beginNode(`test@${VIRT_TEST_BASE.toString(16)}`);
  fdt.propU32('phandle', testPh);
  fdt.propCells('reg', reg(VIRT_TEST_BASE, VIRT_TEST_SIZE));
  fdt.propStrings('compatible', ['sifive,test1', 'sifive,test0', 'syscon']);
  fdt.endNode();

  // Highest address first, as QEMU's tree lists them: Linux probes in tree order,
  // so the transport at the highest address becomes virtio0 (QEMU gives it the first -device).
  for (let i = cfg.virtioSlots - 1; i >= 0; i--) {
    fdt.beginNode(`virtio_mmio@${virtioBase(i).toString(16)}`);
    fdt.propU32('interrupts', virtioIrq(i));
    fdt.propU32('interrupt-parent', plicPh);
    fdt.propCells('reg', reg(virtioBase(i), VIRT_VIRTIO_SIZE));
    fdt.propString('compatible', 'virtio,mmio');
    fdt.endNode();
  }

  const plicIrqs: number[] = [];
  const clintIrqs: number[] = [];
  for (let h = 0; h < cfg.harts; h++) {
    const ph = intcPh[h] ?? 0;
    plicIrqs.push(ph, IRQ_M_EXT, ph, IRQ_S_EXT); // contexts 2h (M) and 2h+1 (S)
    clintIrqs.push(ph, IRQ_M_SOFT, ph, IRQ_M_TIMER);
  }

  fdt.beginNode(`plic@${VIRT_PLIC_BASE.toString(16)}`);
  fdt.propU32('phandle', plicPh);
  fdt.propU32('riscv,ndev', VIRT_PLIC_NDEV);
  fdt.propCells('reg', reg(VIRT_PLIC_BASE, VIRT_PLIC_SIZE));
  fdt.propCells('interrupts-extended', plicIrqs);
  fdt.propEmpty('interrupt-controller');
  fdt.propStrings('compatible', ['sifive,plic-1.0.0', 'riscv,plic0']);
  fdt.propU32('#address-cells', 0);
  fdt.propU32('#interrupt-cells', 1);
  fdt.endNode();

  fdt.beginNode(`clint@${VIRT_CLINT_BASE.toString(16)}`);
  fdt.propCells('interrupts-extended', clintIrqs);
  fdt.propCells('reg', reg(VIRT_CLINT_BASE, VIRT_CLINT_SIZE));
  fdt.propStrings('compatible', ['sifive,clint0', 'riscv,clint0']);
  fdt.endNode();

  fdt.endNode(); // soc
  fdt.endNode(); // root
  return fdt.finish();
}
