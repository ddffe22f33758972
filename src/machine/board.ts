/**
 * A RISC-V board: guest RAM, the MMIO bus with its devices, and one vCPU
 * per hart, wired together. Two layouts:
 * - `virt`: QEMU's virt memory map (CLINT, PLIC, NS16550A UART, Goldfish
 *   RTC, the test finisher), RAM at 0x8000_0000;
 * - `spike`: RAM at 0x8000_0000, CLINT, and HTIF found through the
 *   program's `tohost`/`fromhost` symbols, as the Spike simulator does.
 *
 * The board routes device interrupt lines into the harts' mip bits and
 * answers "is this physical page a device?" for the page-table walker.
 */
import { GuestRam } from '../memory/guest-ram.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { S } from '../cpu/hart-state.js';
import { Hart, slotState } from '../cpu/hart.js';
import { JitEngines, SYSTEM_VM_THRESHOLD } from '../jit/engine.js';
import { defaultJitConfig, type JitConfig } from '../jit/jit-config.js';
import { CsrFile, IRQ_MSI, IRQ_MTI, IRQ_MEI, IRQ_SEI } from '../cpu/csr-file.js';
import { Vcpu } from '../cpu/vcpu.js';
import { warmUpInterpreter } from './warm-up.js';
import { SvTranslator, type PhysicalMap } from '../mmu/sv-walker.js';
import { MmioBus } from '../devices/bus.js';
import { Clint, type HartIrqs } from '../devices/clint.js';
import { Plic, type ExternalIrqs } from '../devices/plic.js';
import { Uart16550 } from '../devices/uart16550.js';
import { GoldfishRtc } from '../devices/goldfish-rtc.js';
import { SifiveTest } from '../devices/syscon.js';
import { Htif } from '../devices/htif.js';
import type { CharBackend, Clock, PowerControl } from '../devices/device.js';
import {
  VIRT_CLINT_BASE, VIRT_CLINT_SIZE, VIRT_PLIC_BASE, VIRT_PLIC_SIZE, VIRT_UART0_BASE, VIRT_UART0_SIZE, VIRT_UART0_IRQ,
  VIRT_RTC_BASE, VIRT_RTC_SIZE, VIRT_RTC_IRQ, VIRT_TEST_BASE, VIRT_TEST_SIZE, VIRT_DRAM_BASE, VIRT_PLIC_NUM_SOURCES,
  VIRT_VIRTIO_COUNT, VIRT_VIRTIO_SIZE, virtioBase, virtioIrq,
} from './virt-map.js';
import { VirtioMmioEmpty } from '../devices/virtio/mmio-empty.js';
import { VirtioMmio, type VirtioDevice } from '../devices/virtio/mmio.js';

/** Board models. */
export type MachineKind = 'virt' | 'spike';

/** How to build a board. */
export interface BoardConfig {
  kind: MachineKind;
  ramBytes: number;
  harts: number;
  console: CharBackend;
  clock: Clock;
  /** For `spike`: addresses of the program's tohost/fromhost symbols. */
  htif?: { tohost: number; fromhost: number };
  /** virtio devices for the virt board's virtio-mmio slots (at most 8). */
  virtio?: VirtioDevice[];
  /** The VM's JIT settings (copied); absent: the process default (defaultJitConfig). */
  jit?: JitConfig;
  /**
   * Guest RAM made by the host (e.g. a PooledRam on the host's frame pool),
   * `ramBytes` long at VIRT_DRAM_BASE with a CPU slot per hart; absent: a
   * GuestRam of its own.
   */
  memory?: GuestMemory;
}

/** What ended the machine, if anything. */
export interface PowerState { off: boolean; reset: boolean; status: number }

/** A board with its RAM, devices and harts. */
export class Board implements PhysicalMap, HartIrqs, ExternalIrqs, PowerControl {
  readonly kind: MachineKind;
  readonly ram: GuestMemory;
  readonly ramBase = VIRT_DRAM_BASE;
  readonly bus = new MmioBus();
  readonly csrs: CsrFile[] = [];
  readonly vcpus: Vcpu[] = [];
  readonly clint: Clint;
  readonly plic: Plic | null = null;
  readonly uart: Uart16550 | null = null;
  readonly rtc: GoldfishRtc | null = null;
  readonly htif: Htif | null = null;
  /** The occupied virtio-mmio transports, in device order. */
  readonly virtio: VirtioMmio[] = [];
  readonly power: PowerState = { off: false, reset: false, status: 0 };
  /** The board's JIT engine (one for its RAM), with the VM's own settings. */
  readonly jit: JitEngines;
  /** RAM pages that also hold device windows (HTIF inside .data): accesses leave as MMIO. */
  private readonly overlayPages = new Set<number>();

  constructor(cfg: BoardConfig) {
    this.kind = cfg.kind;
    if (cfg.memory !== undefined && (cfg.memory.base !== VIRT_DRAM_BASE || cfg.memory.size !== Math.floor(cfg.ramBytes / 4096) * 4096)) {
      throw new RangeError(`board: the given guest memory is ${cfg.memory.size} bytes at 0x${cfg.memory.base.toString(16)}, not ${cfg.ramBytes} at 0x${VIRT_DRAM_BASE.toString(16)}`);
    }
    this.ram = cfg.memory ?? new GuestRam(cfg.ramBytes, VIRT_DRAM_BASE);
    // A remapped page (copy-on-write, balloon, swap-out, merge) leaves every hart's TLBs; a unit running
    // when its code page was dropped leaves at its next slow store (the flag the JIT's store path checks).
    this.ram.onRemap = (host) => {
      for (const v of this.vcpus) {
        for (const t of v.hart.tlbs) t.dropHost(host);
        v.hart.st.s[S.JIT_FLUSHED] = 1;
      }
    };
    this.jit = new JitEngines(cfg.jit ?? defaultJitConfig(), SYSTEM_VM_THRESHOLD);
    this.clint = new Clint(cfg.harts, cfg.clock, this);
    this.bus.map(VIRT_CLINT_BASE, VIRT_CLINT_SIZE, this.clint);
    if (cfg.kind === 'virt') {
      const plic = new Plic(cfg.harts, this, { numSources: VIRT_PLIC_NUM_SOURCES });
      this.plic = plic;
      this.bus.map(VIRT_PLIC_BASE, VIRT_PLIC_SIZE, plic);
      this.uart = new Uart16550(cfg.console, plic, VIRT_UART0_IRQ);
      this.bus.map(VIRT_UART0_BASE, VIRT_UART0_SIZE, this.uart);
      this.rtc = new GoldfishRtc(cfg.clock, plic, VIRT_RTC_IRQ);
      this.bus.map(VIRT_RTC_BASE, VIRT_RTC_SIZE, this.rtc);
      this.bus.map(VIRT_TEST_BASE, VIRT_TEST_SIZE, new SifiveTest(this));
      // Linux enumerates the slots from the highest address down (the device tree lists them in
      // that order, as QEMU's does), so the first device goes in the last slot and becomes virtio0.
      const devs = cfg.virtio ?? [];
      if (devs.length > VIRT_VIRTIO_COUNT) throw new RangeError(`at most ${VIRT_VIRTIO_COUNT} virtio devices`);
      const ram = this.ram;
      const dma = { u8: ram.u8, dv: ram.dv, base: this.ramBase, size: ram.size,
        hostPage: (gpa: number, write: boolean): number => ram.hostPage(gpa, write),
        epoch: (): number => ram.epoch,
        written: (off: number, len: number): void => ram.written(off, len) };
      for (let i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        const slot = VIRT_VIRTIO_COUNT - 1 - i, dev = devs[i];
        if (dev) {
          const t = new VirtioMmio(dev, dma, plic, virtioIrq(slot));
          this.virtio.push(t);
          this.bus.map(virtioBase(slot), VIRT_VIRTIO_SIZE, t);
        } else {
          this.bus.map(virtioBase(slot), VIRT_VIRTIO_SIZE, new VirtioMmioEmpty());
        }
      }
    } else if (cfg.htif) {
      this.htif = new Htif({
        tohost: cfg.htif.tohost, fromhost: cfg.htif.fromhost, console: cfg.console, power: this,
        memory: { read: (addr, len) => this.readPhys(addr, len), write: (addr, bytes) => this.writePhys(addr, bytes) },
      });
      for (const r of this.htif.regions) {
        this.bus.map(r.base, r.size, r.device);
        this.overlayPages.add(Math.floor(r.base / 4096) * 4096);
      }
    }
    warmUpInterpreter(this.jit.config);
    for (let i = 0; i < cfg.harts; i++) {
      const st = slotState(this.ram);
      const c = new CsrFile(st, i);
      const hart = new Hart(this.ram, new SvTranslator(this.ram, this.ramBase, c, this), st);
      c.timeTicks = () => this.clint.mtimeNow();
      hart.timebaseHz = this.clint.timebaseHz;
      this.csrs.push(c);
      this.vcpus.push(new Vcpu(hart, c));
      this.jit.attach(hart);
    }
  }

  /** Number of harts. */
  get harts(): number { return this.vcpus.length; }

  /** True if the physical page holds device registers (see PhysicalMap). */
  isMmio(page: number): boolean {
    if (this.overlayPages.has(page)) return true;
    if (page >= this.ramBase && page < this.ramBase + this.ram.size) return false; // devices never overlap RAM otherwise
    return this.bus.overlaps(page, 4096);
  }

  /** True if physical [addr, addr+len) is in RAM. */
  inRam(addr: number, len: number): boolean {
    return addr >= this.ramBase && addr + len <= this.ramBase + this.ram.size;
  }

  /** Copies bytes into guest-physical RAM; false if out of range. */
  writePhys(addr: number, data: Uint8Array): boolean {
    return this.ram.write(addr, data);
  }

  /** Copies bytes out of guest-physical RAM; null if out of range. */
  readPhys(addr: number, len: number): Uint8Array | null {
    const out = new Uint8Array(Math.max(0, len));
    return this.ram.read(addr, out) ? out : null;
  }

  private setBit(hart: number, bit: number, level: boolean): void {
    const c = this.csrs[hart];
    if (!c) return;
    if (level) c.hwIp |= bit; else c.hwIp &= ~bit;
  }

  /** CLINT software interrupt line (HartIrqs). */
  setMsip(hart: number, level: boolean): void { this.setBit(hart, IRQ_MSI, level); }
  /** CLINT timer interrupt line (HartIrqs). */
  setMtip(hart: number, level: boolean): void { this.setBit(hart, IRQ_MTI, level); }
  /** PLIC context outputs (ExternalIrqs). */
  setExternal(hart: number, sMode: boolean, level: boolean): void { this.setBit(hart, sMode ? IRQ_SEI : IRQ_MEI, level); }

  /** The guest powered off (test finisher, SBI SRST, HTIF exit). */
  poweroff(status: number): void { this.power.off = true; this.power.status = status; }
  /** The guest asked for a reset. */
  reset(): void { this.power.off = true; this.power.reset = true; }
}
