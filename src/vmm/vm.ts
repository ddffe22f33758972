/**
 * The VMM's run loop for a system VM: runs each started hart for a time
 * slice (round-robin on one host thread), dispatches its exits the way a
 * KVM-based VMM does — MMIO to the device bus, HYPERCALL to the built-in
 * SBI, HALT (WFI) to an idle wait — and advances the machine's timers
 * between slices. When every hart waits for an interrupt the host thread
 * sleeps until the next timer deadline or console input, so an idle guest
 * costs almost no host CPU.
 */
import { ExitReason, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS } from '../cpu/hart.js';
import { S, type HartState } from '../cpu/hart-state.js';
import { IRQ_SSI, IRQ_STI } from '../cpu/csr-file.js';
import { SbiFirmware, HSM_STARTED, HSM_STOPPED, type SbiPlatform } from '../machine/sbi.js';
import type { Board } from '../machine/board.js';
import type { VmControl, RunState, BalloonControl, ShutdownCause } from './qmp.js';
import { VmLifecycle, type VmState } from './lifecycle.js';
import type { VmHost } from './services.js';

/** What the VMM's run loop needs from its host (defined with the other host services). */
export type { VmHost } from './services.js';

/** Instructions a hart runs before the VMM looks at timers and other harts. */
const SLICE = 50_000;
/** How often (ms of host time) the loop yields to the host event loop. */
const YIELD_MS = 8;

/** Why the VM stopped. */
export interface VmResult { status: number; reason: 'poweroff' | 'reset' | 'panic' | 'stopped' }

/**
 * A system VM: its board, the built-in SBI, and the run loop. Its lifecycle
 * (lifecycle.ts: created, running, paused, shutdown) is checked: `run`
 * starts it, `pause`/`resume` (QMP stop/cont) move between running and
 * paused, and `stop` (QMP quit, the console escape), a guest poweroff or a
 * kernel panic end it in `shutdown`.
 */
export class Vm implements SbiPlatform, VmControl {
  readonly board: Board;
  readonly sbi: SbiFirmware;
  /** HSM state per hart (SBI spec §9). */
  readonly hsm: Uint8Array;
  /** 1 while a hart sits in WFI with nothing pending. */
  readonly waiting: Uint8Array;
  /** SBI set_timer deadline per hart, in timer ticks (Infinity = none). */
  readonly sbiTimer: Float64Array;
  /** Set when the console showed a kernel panic: the run loop then shuts the VM down (the shutdown's cause, not a state). */
  panicked = false;
  /** The lifecycle state machine. */
  readonly lifecycle = new VmLifecycle();
  /** Whether `run` was called (a VM runs once: shutdown is final). */
  private started = false;
  private readonly host: VmHost;
  private readonly consoleIn: number[] = [];
  private readonly out = new Int32Array(2);
  /** Bytes of an MMIO exit that lands on plain RAM (a device-overlay page). */
  private readonly ramBuf = new Uint8Array(8);
  private readonly ramView = new DataView(this.ramBuf.buffer);

  /**
   * `builtinSbi`: S-mode ecalls are answered by the VMM (the default boot);
   * otherwise guest firmware in M-mode (OpenSBI, or a bare-metal program) handles everything.
   */
  constructor(board: Board, host: VmHost, builtinSbi: boolean) {
    this.board = board;
    this.host = host;
    this.sbi = new SbiFirmware(this);
    const n = board.harts;
    this.hsm = new Uint8Array(n).fill(HSM_STARTED);
    this.waiting = new Uint8Array(n);
    this.sbiTimer = new Float64Array(n).fill(Infinity);
    for (const v of board.vcpus) v.sbiInVmm = builtinSbi;
  }

  // ---- SbiPlatform ----
  get hartCount(): number { return this.board.harts; }
  hartState(i: number): HartState { return this.board.vcpus[i]!.hart.st; }
  setTimer(hart: number, ticks: number): void {
    const c = this.board.csrs[hart]!;
    this.sbiTimer[hart] = ticks;
    c.hwIp &= ~IRQ_STI;
  }
  sendIpi(hart: number): void { this.board.csrs[hart]!.mipSw |= IRQ_SSI; }
  clearIpi(hart: number): void { this.board.csrs[hart]!.mipSw &= ~IRQ_SSI; }
  remoteFence(hart: number): void { this.board.vcpus[hart]!.hart.flushTlbs(); }
  hsmStatus(hart: number): number { return this.hsm[hart]!; }
  hartStart(hart: number, addrLo: number, addrHi: number, opaqueLo: number, opaqueHi: number): void {
    const v = this.board.vcpus[hart]!, st = v.hart.st, c = v.csrs;
    st.x.fill(0);
    st.setX(10, hart);
    st.x[22] = opaqueLo; st.x[23] = opaqueHi;
    st.s[S.PC_LO] = addrLo; st.s[S.PC_HI] = addrHi;
    st.s[S.PRIV] = 1;
    c.satpLo = 0; c.satpHi = 0; c.flushTlb = true;
    c.mstatus &= ~0x2; // SIE = 0 (SBI spec §9.1: the hart starts with interrupts disabled)
    c.changed = true;
    this.hsm[hart] = HSM_STARTED;
    this.waiting[hart] = 0;
  }
  hartStop(hart: number): void { this.hsm[hart] = HSM_STOPPED; }
  consoleWrite(bytes: Uint8Array): void { this.consoleOut(bytes); }
  consoleRead(max: number): Uint8Array { return Uint8Array.from(this.consoleIn.splice(0, max)); }
  readPhys(addr: number, len: number): Uint8Array | null { return this.board.readPhys(addr, len); }
  writePhys(addr: number, data: Uint8Array): boolean { return this.board.writePhys(addr, data); }
  systemReset(type: number, reason: number): void {
    if (type === 0) this.board.poweroff(reason === 1 ? 1 : 0); else this.board.reset();
  }

  /** The lifecycle state. */
  get state(): VmState { return this.lifecycle.state; }

  /** Pauses the harts (QMP `stop`): running (or created) -> paused; devices and timers keep their state. */
  pause(): void { this.lifecycle.transition('paused', 'pause'); this.host.wake(); }
  /** Resumes the harts (QMP `cont`): paused -> running. */
  resume(): void { this.lifecycle.transition('running', 'resume'); this.host.wake(); }
  /** Ends the VM from outside (QMP `quit`, console escape): -> shutdown; a VM already shut down stays so. */
  stop(): void {
    if (this.lifecycle.state !== 'shutdown') this.lifecycle.transition('shutdown', 'stop');
    this.host.wake();
  }

  // ---- VmControl (QMP) ----
  /** The memory balloon QMP controls, if the VM has one. */
  balloon: BalloonControl | null = null;
  /** Binds a late virtio-fs share (set by the builder when the VM has one; see fs-late.ts). */
  bindFsdev: ((id: string, options: string) => void) | null = null;
  /** Why the host asked the VM to end (QMP quit/system_powerdown/system_reset), for the SHUTDOWN event. */
  hostRequest: ShutdownCause | null = null;
  /** The QMP run state: the lifecycle's (a VM not yet started reports running, as QEMU without -S does). */
  runState(): RunState {
    const s = this.lifecycle.state;
    return s === 'created' ? 'running' : s;
  }
  /** No guest-visible power button on this board: power off directly (status 0), ending the VM. */
  powerdown(): void { this.hostRequest ??= 'host-qmp-quit'; this.board.poweroff(0); this.stop(); }
  /** No in-place reboot: end the VM as QEMU's -no-reboot does. */
  reset(): void { this.hostRequest ??= 'host-qmp-system-reset'; this.board.reset(); this.stop(); }
  quit(): void { this.hostRequest ??= 'host-qmp-quit'; this.stop(); }

  /** Console output sink for SBI console calls (set by the owner of the VM). */
  consoleOut: (bytes: Uint8Array) => void = () => {};

  /** Delivers host console input to the guest (UART, HTIF, or SBI getchar). */
  input(bytes: Uint8Array): void {
    const b = this.board;
    if (b.uart) b.uart.pushInput(bytes);
    else if (b.htif) b.htif.pushInput(bytes);
    for (const x of bytes) if (this.consoleIn.length < 65536) this.consoleIn.push(x);
    for (let i = 0; i < this.waiting.length; i++) this.waiting[i] = 0;
  }

  /** Performs the MMIO access hart `i` stopped on, then completes its instruction. */
  private mmio(i: number): void {
    const v = this.board.vcpus[i]!, h = v.hart, b = this.board, addr = h.mmioAddr, size = h.mmioSize;
    // An access the bus does not claim on a device-overlay page (HTIF inside a program's .data) is plain RAM.
    const buf = this.ramBuf.subarray(0, size), bv = this.ramView;
    if (h.mmioIsWrite) {
      if (!b.bus.write(addr, size, h.mmioLo, h.mmioHi)) {
        for (let k = 0; k < size; k++) buf[k] = k < 4 ? h.mmioLo >>> (8 * k) : h.mmioHi >>> (8 * (k - 4));
        if (!b.ram.write(addr, buf)) { v.trap(CAUSE_STORE_ACCESS, false, addr | 0, Math.floor(addr / 4294967296)); return; }
      }
      h.completeMmio(0, 0);
    } else {
      const o = this.out;
      o[0] = 0; o[1] = 0;
      if (!b.bus.read(addr, size, o)) {
        if (!b.ram.read(addr, buf)) { v.trap(CAUSE_LOAD_ACCESS, false, addr | 0, Math.floor(addr / 4294967296)); return; }
        o[0] = size >= 4 ? bv.getInt32(0, true) : size === 2 ? bv.getUint16(0, true) : buf[0]!;
        o[1] = size === 8 ? bv.getInt32(4, true) : 0;
      }
      h.completeMmio(o[0]!, o[1]!);
    }
  }

  /** Advances timers: CLINT (MTIP), RTC alarm, Sstc STIP and SBI timers; wakes harts with work. */
  private tick(): void {
    const b = this.board;
    b.clint.update();
    b.rtc?.update();
    const now = b.clint.mtimeNow();
    for (let i = 0; i < b.harts; i++) {
      const c = b.csrs[i]!, v = b.vcpus[i]!;
      if (now >= this.sbiTimer[i]!) { c.hwIp |= IRQ_STI; this.sbiTimer[i] = Infinity; }
      v.updateStip();
      if (this.waiting[i] && (c.mip & c.mie) !== 0) this.waiting[i] = 0;
    }
  }

  /** Host ns of the earliest timer that can wake a hart (Infinity if none). */
  private nextDeadlineNs(): number {
    const b = this.board;
    let t = Math.min(b.clint.nextDeadlineNs(), b.rtc?.nextDeadlineNs() ?? Infinity);
    for (let i = 0; i < b.harts; i++) {
      const c = b.csrs[i]!;
      t = Math.min(t, b.clint.ticksToNs(this.sbiTimer[i]!));
      if (c.stce) {
        const cmp = (c.stimecmpHi >>> 0) >= 0x200000 ? Infinity : (c.stimecmpHi >>> 0) * 4294967296 + (c.stimecmpLo >>> 0);
        if ((c.hwIp & IRQ_STI) === 0) t = Math.min(t, b.clint.ticksToNs(cmp));
      }
    }
    return t;
  }

  // Read through methods: a QMP command or the console can change the state at any await in run().
  private isRunning(): boolean { return this.lifecycle.state === 'running'; }
  private isPaused(): boolean { return this.lifecycle.state === 'paused'; }

  /**
   * Runs until the guest powers off or the VM is stopped; returns the exit
   * status. Starts the VM (created -> running; one paused before it started
   * stays paused) and leaves it shut down.
   */
  async run(): Promise<VmResult> {
    const life = this.lifecycle;
    if (this.started) throw new Error(`Vm.run: the VM has already been run (it is ${life.state})`);
    this.started = true;
    if (life.state === 'created') life.transition('running', 'run');
    try {
      return await this.loop();
    } catch (e) {
      // A host-side failure (e.g. GuestMemoryError: no frame for a guest page) ends this VM; the caller reports it.
      if (life.state !== 'shutdown') this.stop();
      throw e;
    }
  }

  /**
   * Called once per run-loop round, between slices, when no hart is inside
   * guest code: the host's safe point (it may block there while it remaps
   * this VM's pages, then deliver the remaps).
   */
  safePoint: (() => void) | null = null;
  /** Told when the loop starts (true) and ends (false) a wait with every hart idle, so the host need not wait for a safe point. */
  idleHook: ((idle: boolean) => void) | null = null;

  private idling = false;

  private async idleWait(ms: number): Promise<void> {
    this.idleHook?.(true);
    this.idling = true;
    try { await this.host.wait(ms); } finally { this.idling = false; this.idleHook?.(false); }
  }

  /**
   * Runs work the host starts outside the run loop that touches guest
   * memory (device callbacks, monitor commands). While the loop waits idle
   * the host counts the VM as stopped and may be changing its memory map:
   * the call leaves idle first (waiting while the host holds the VM) and
   * goes back after.
   */
  external<T>(work: () => T): T {
    const hook = this.idleHook;
    if (!this.idling || hook === null) return work();
    this.idling = false;
    hook(false);
    try { return work(); } finally { hook(true); this.idling = true; }
  }

  private async loop(): Promise<VmResult> {
    const b = this.board, host = this.host, life = this.lifecycle;
    let lastYield = host.now();
    while (true) {
      this.safePoint?.();
      if (this.isPaused() && !b.power.off) { await this.idleWait(1000); lastYield = host.now(); continue; }
      let running = 0;
      for (let i = 0; i < b.harts && !b.power.off && this.isRunning(); i++) {
        if (this.hsm[i] !== HSM_STARTED || this.waiting[i]) continue;
        running++;
        const v = b.vcpus[i]!;
        const r = v.run(SLICE);
        if (r === ExitReason.MMIO) this.mmio(i);
        else if (r === ExitReason.HYPERCALL) { this.sbi.handle(i); if (this.hsm[i] === HSM_STARTED) v.skip(); }
        else if (r === ExitReason.HALT) this.waiting[i] = 1;
        if (b.power.off || this.panicked || !this.isRunning()) break;
      }
      if (b.power.off) { this.stop(); return { status: b.power.status, reason: b.power.reset ? 'reset' : 'poweroff' }; }
      if (this.panicked) { this.stop(); return { status: 1, reason: 'panic' }; }
      if (life.state === 'shutdown') return { status: 0, reason: 'stopped' };
      this.tick();
      const now = host.now();
      if (running === 0 && this.waiting.some((w, i) => w === 1 && this.hsm[i] === HSM_STARTED)) {
        const dl = this.nextDeadlineNs();
        const ms = Number.isFinite(dl) ? Math.max(0, (dl - now * 1e6) / 1e6) : 1000;
        if (ms > 0.05) await this.idleWait(Math.min(ms, 1000));
        lastYield = host.now();
        this.tick();
      } else if (running === 0) {
        await this.idleWait(50); // every hart stopped: nothing can run until input or an external event
        lastYield = host.now();
      } else if (now - lastYield >= YIELD_MS) {
        await host.yield();
        lastYield = host.now();
      }
    }
  }
}
