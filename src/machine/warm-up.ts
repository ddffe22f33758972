/**
 * Warms the host JavaScript engine's type feedback for the interpreter
 * before the first guest runs.
 *
 * V8 optimizes the interpreter's `run` (one large function) as soon as it is
 * hot, with type feedback only for the instruction paths executed so far.
 * When a guest later reaches a path with no feedback (its first `mulh`, its
 * first halfword store, its first MMIO load), the optimized code is thrown
 * away: `run` falls back to baseline code, several times slower, until V8
 * has recompiled it in the background (30-70 ms of compile each time). A
 * Debian boot did this about 25 times.
 *
 * So once per process, before a board's first hart runs, every
 * instruction form the interpreter decodes is executed once or twice on a
 * scratch hart that the guest never sees: its own RAM, CSRs and TLBs,
 * built the way a board builds its harts (the same object shapes). The
 * encodings come from the major-opcode map (unprivileged spec Table 70)
 * and funct fields; operands mix RAM addresses, page-crossing and MMIO
 * addresses, and arbitrary 64-bit values, so load and store fault and MMIO
 * paths are taken too. Exits are ignored: nothing is dispatched and no
 * device is touched. Then, when the JIT is on, a short loop runs through the
 * JIT's dispatcher on the same hart, with the scratch RAM's own engine (it
 * compiles two small units, which count in the process's JIT totals), so
 * the dispatcher is optimized with feedback for its cold, translated and
 * exit paths too.
 *
 * Measured on a Debian boot (2 cores): the interpreter's `run` was compiled
 * by TurboFan 25 times without the warm-up and once with it; background JS
 * compile time fell from 2.1 s to 1.2 s, and the boot from 8.8 s to 8.2 s.
 * The warm-up itself takes 60-100 ms.
 */
import { GuestRam } from '../memory/guest-ram.js';
import { Hart, slotState, ExitReason } from '../cpu/hart.js';
import { CsrFile, MSTATUS_FS } from '../cpu/csr-file.js';
import { Vcpu } from '../cpu/vcpu.js';
import { run } from '../cpu/interpreter.js';
import { rType, iType, sType, bType, jType } from '../cpu/decode-compressed.js';
import { S } from '../cpu/hart-state.js';
import { SvTranslator } from '../mmu/sv-walker.js';
import { JitEngines, SYSTEM_VM_THRESHOLD } from '../jit/engine.js';
import { defaultJitConfig, type JitConfig } from '../jit/jit-config.js';

/** Scratch RAM: 64 KiB at the virt board's RAM base (QEMU hw/riscv/virt.c memmap). */
const RAM_BASE = 0x80000000, RAM_BYTES = 0x10000;
/** Where each instruction is placed, and the data area load/store bases point into. */
const CODE_OFF = 0x1000, DATA_OFF = 0x8000;
/** A page the scratch physical map calls MMIO (the virt board's UART page). */
const MMIO_PAGE = 0x10000000;
/** Major opcodes, inst[6:0] (unprivileged spec Table 70). */
const LOAD = 0x03, LOAD_FP = 0x07, MISC_MEM = 0x0f, OP_IMM = 0x13, AUIPC = 0x17, OP_IMM_32 = 0x1b,
  STORE = 0x23, STORE_FP = 0x27, AMO = 0x2f, OP = 0x33, LUI = 0x37, OP_32 = 0x3b,
  MADD = 0x43, OP_FP = 0x53, BRANCH = 0x63, JALR = 0x67, JAL = 0x6f, SYSTEM = 0x73;
/** CSRs the warm-up may read and write without changing the scratch hart's mode (privileged spec Table 2.2-2.5). */
const SAFE_CSRS = [0x001, 0x002, 0x003, 0xc00, 0xc01, 0xc02, 0x340, 0x140, 0x300, 0x100, 0x304, 0x104, 0x344, 0x144,
  0x305, 0x105, 0x341, 0x141, 0x342, 0x142, 0x343, 0x143, 0xf14, 0x301, 0x180, 0x30a, 0x14d];

/**
 * Whether this host process has run the warm-up. Module-level on purpose,
 * the one such flag the core keeps: the warm-up trains V8 (its inline
 * caches and compiled code are per process, shared by every VM in it), not
 * any VM, so it is due once per process however many VMs are built.
 */
let warmed = false;


/** funct7 values of OP / OP-32 instructions (M, Zba, Zbb, Zbs), plus one that is illegal (unprivileged spec ch. 13, 28). */
const OP_F7 = [0x00, 0x01, 0x04, 0x05, 0x10, 0x14, 0x20, 0x24, 0x30, 0x34, 0x7f];
/** imm[11:6] of OP-IMM shift-like forms (slli/srli/srai, slli.uw, Zbb, Zbs), plus one illegal value. */
const SHIFT_HI6 = [0x00, 0x02, 0x0a, 0x10, 0x12, 0x18, 0x1a, 0x3f];
/** funct7 values of OP-FP for S and D (unprivileged spec ch. 20-21), plus illegal ones. */
const FP_F7 = [0x00, 0x01, 0x04, 0x05, 0x08, 0x09, 0x0c, 0x0d, 0x10, 0x11, 0x14, 0x15, 0x20, 0x21, 0x2c, 0x2d,
  0x50, 0x51, 0x60, 0x61, 0x68, 0x69, 0x70, 0x71, 0x78, 0x79, 0x02, 0x7f];

/** Iterations of the engine warm-up loop: more than the system VM's translation threshold, so its blocks are translated. */
const LOOP_COUNT = 4096;
/** Where the engine warm-up loop goes (its own page). */
const LOOP_OFF = 0x2000;

/**
 * A loop for the JIT engine's dispatcher: `LOOP_COUNT` times, load, add,
 * store and call a function that returns (a JALR the translated code looks
 * up), then `ebreak`. The doubleword at x8 ends up LOOP_COUNT higher.
 */
function loopProgram(): number[] {
  return [
    LOOP_COUNT | (5 << 7) | LUI, // lui x5, LOOP_COUNT >> 12 (x5 = LOOP_COUNT, a multiple of 4096)
    iType(0, 8, 3, 6, LOAD), // loop: ld x6, 0(x8)
    iType(1, 6, 0, 6, OP_IMM), // addi x6, x6, 1
    sType(0, 6, 8, 3, STORE), // sd x6, 0(x8)
    jType(16, 1), // jal x1, func
    iType(-1, 5, 0, 5, OP_IMM), // addi x5, x5, -1
    bType(-20, 0, 5, 1), // bne x5, x0, loop
    0x00100073, // ebreak
    iType(0, 1, 0, 0, JALR), // func: jalr x0, 0(x1)
  ];
}

/** Every instruction word the warm-up executes (deterministic). */
function encodings(): number[] {
  const w: number[] = [];
  for (const op of [OP, OP_32]) for (const f7 of OP_F7) for (let f3 = 0; f3 < 8; f3++) w.push(rType(f7, 7, 6, f3, 5, op));
  for (const op of [OP_IMM, OP_IMM_32]) {
    for (let f3 = 0; f3 < 8; f3++) {
      if (f3 !== 1 && f3 !== 5) { w.push(rType(0, 0, 6, f3, 5, op) | (0x123 << 20), rType(0, 0, 6, f3, 5, op) | (0xfff << 20)); continue; }
      // imm[11:6] selects the operation, imm[5:0] is a shamt or (Zbb) a sub-selector.
      for (const hi6 of SHIFT_HI6) for (const lo6 of [0, 1, 2, 4, 5, 7, 24, 31, 32, 56, 63]) w.push(rType(0, 0, 6, f3, 5, op) | (((hi6 << 6) | lo6) << 20));
    }
  }
  for (let f3 = 0; f3 < 8; f3++) {
    for (const base of [6, 7, 8, 9]) {
      w.push(rType(0, 0, base, f3, 5, LOAD), rType(0, 10, base, f3, 0, STORE), rType(0, 0, base, f3, 5, LOAD_FP), rType(0, 10, base, f3, 0, STORE_FP));
    }
    w.push(rType(0, 7, 6, f3, 4, BRANCH), rType(0, 6, 6, f3, 4, BRANCH), rType(0, 11, 10, f3, 4, BRANCH), rType(0, 10, 11, f3, 4, BRANCH));
    w.push(rType(0, 0, 0, f3, 0, MISC_MEM), rType(0, 0, 6, f3, 1, JALR), rType(0, 0, 10, f3, 1, JALR));
  }
  w.push(rType(0x7f, 31, 31, 0, 5, LUI), rType(0x40, 3, 3, 0, 5, AUIPC), rType(0, 8, 0, 0, 1, JAL), rType(0x7f, 31, 31, 0, 0, JAL));
  for (const f5 of [0, 1, 2, 3, 4, 8, 12, 16, 20, 24, 28]) {
    for (let f3 = 0; f3 < 8; f3++) for (const base of [6, 8]) w.push(rType(f5 << 2, 10, base, f3, 5, AMO));
  }
  for (const f7 of FP_F7) for (let f3 = 0; f3 < 8; f3++) for (const rs2 of [0, 1, 2, 3]) w.push(rType(f7, rs2, 6, f3, 5, OP_FP));
  for (let k = 0; k < 4; k++) for (let fmt = 0; fmt < 4; fmt++) for (let f3 = 0; f3 < 8; f3++) w.push(rType((7 << 2) | fmt, 7, 6, f3, 5, MADD + 4 * k));
  for (const f12 of [0, 1, 0x102, 0x105, 0x302, 0x7b2]) w.push(rType(0, 0, 0, 0, 0, SYSTEM) | (f12 << 20));
  w.push(rType(0x09, 7, 6, 0, 0, SYSTEM), rType(0x09, 0, 0, 0, 0, SYSTEM));
  for (const csr of SAFE_CSRS) {
    for (let f3 = 1; f3 < 8; f3++) if (f3 !== 4) w.push(rType(0, 0, f3 < 4 ? 0 : 1, f3, 5, SYSTEM) | (csr << 20), rType(0, 0, 0, f3, 0, SYSTEM) | (csr << 20));
  }
  // Compressed: a spread of every quadrant's encodings (they run as their 32-bit expansion).
  for (let h = 0; h < 0x10000; h += 37) if ((h & 3) !== 3) w.push(h);
  return w;
}

/** What one warm-up run did (tests check it really executes what it claims to). */
export interface WarmUpReport {
  /** Interpreter calls made. */
  runs: number;
  /** Calls that retired their instruction without an exit. */
  retired: number;
  /** Bit (inst[6:2]) set for each 32-bit major opcode some instruction of which retired. */
  retiredOpcodes: number;
  /** Bit q set for each compressed quadrant (inst[1:0]) some instruction of which retired. */
  retiredQuadrants: number;
  /** The loop's counter after the JIT engine ran it (LOOP_COUNT when it ran to the end); 0 when the JIT is off. */
  engineLoops: number;
}

/**
 * Runs the warm-up once per process (later calls return at once). Costs
 * 60-100 ms; changes no guest-visible state (only its scratch hart and RAM,
 * and the process's JIT counters).
 */
export function warmUpInterpreter(jit: JitConfig = defaultJitConfig()): void {
  if (warmed) return;
  warmed = true;
  runWarmUp(jit);
}

/** Executes the warm-up set on a fresh scratch hart (see the module comment). */
export function runWarmUp(jit: JitConfig = defaultJitConfig()): WarmUpReport {
  const jits = new JitEngines(jit, SYSTEM_VM_THRESHOLD); // a scratch engine of the warm-up's own
  const report: WarmUpReport = { runs: 0, retired: 0, retiredOpcodes: 0, retiredQuadrants: 0, engineLoops: 0 };
  const ram = new GuestRam(RAM_BYTES), st = slotState(ram), c = new CsrFile(st, 0);
  const h = new Hart(ram, new SvTranslator(ram, RAM_BASE, c, { isMmio: (p) => p === MMIO_PAGE }), st);
  c.timeTicks = () => 0;
  const v = new Vcpu(h, c);
  jits.attach(h); // as the board does, so the scratch hart has the same shape (nothing runs it)
  // One PMP entry granting S and U mode everything (NAPOT over all addresses, RWX), as firmware sets up (§3.7).
  st.s[S.PRIV] = 3;
  c.write(0x3b0, -1, 0x3fffff);
  c.write(0x3a0, 0x1f, 0);
  const x = st.x, s = st.s, f = st.f, dv = ram.dv;
  let seed = 0x2545f491;
  const rnd = (): number => (seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x297a2d39) | 0);
  const words = encodings();
  for (let pass = 0; pass < 3; pass++) {
    for (let k = 0; k < words.length; k++) {
      const w = words[k]!;
      for (let i = 1; i < 32; i++) {
        // pass 0: RAM addresses (loads and stores succeed); pass 1: arbitrary values; pass 2: zeros.
        x[2 * i] = pass === 0 ? RAM_BASE + DATA_OFF + i * 64 : pass === 1 ? rnd() : 0;
        x[2 * i + 1] = pass === 1 ? rnd() : 0;
        f[2 * i] = rnd(); f[2 * i + 1] = (k & 1) !== 0 ? -1 : rnd(); // NaN-boxed singles and raw doubles
      }
      // Bases x8 and x9: a page-crossing access and an MMIO access; x10, x11: small signed values.
      x[16] = RAM_BASE + DATA_OFF + 0xffd; x[17] = 0; x[18] = MMIO_PAGE + (k & 0xff); x[19] = 0;
      x[20] = (k & 7) - 4; x[21] = x[20] >> 31; x[22] = k; x[23] = 0;
      c.mstatus |= MSTATUS_FS;
      s[S.PRIV] = (k & 1) !== 0 ? 3 : 1;
      v.sync();
      const at = (k % 3) === 2 ? 0xffe : CODE_OFF; // some straddle a page end
      if (at === 0xffe) { dv.setUint16(at, w & 0xffff, true); dv.setUint16(at + 2, w >>> 16, true); } else dv.setInt32(at, w, true);
      s[S.PC_LO] = RAM_BASE + at; s[S.PC_HI] = 0;
      // As the JIT's dispatcher calls it (the code page already translated), and as the vCPU does;
      // a budget of 1.5 runs two instructions with a budget that is not a small integer.
      const before = st.instret;
      if (pass === 0) run(h, 1, (RAM_BASE + at) & ~0xfff, 0, at & ~0xfff); else run(h, pass === 1 ? 1 : 1.5);
      h.csrChanged = false;
      report.runs++;
      if (st.instret !== before) {
        report.retired++;
        if ((w & 3) === 3) report.retiredOpcodes |= 1 << ((w >>> 2) & 31); else report.retiredQuadrants |= 1 << (w & 3);
      }
    }
  }
  // The JIT's dispatcher (`Jit.run`) the same way: cold blocks, translation, chained and unchained exits.
  // instret starts above 2^32, where a long boot's count soon is (it stops being a small integer).
  const eng = jits.for(ram);
  if (eng !== null) {
    loopProgram().forEach((w, k) => dv.setInt32(LOOP_OFF + 4 * k, w, true));
    dv.setInt32(DATA_OFF, 0, true); dv.setInt32(DATA_OFF + 4, 0, true);
    x[16] = RAM_BASE + DATA_OFF; x[17] = 0;
    s[S.PRIV] = 3; s[S.PC_LO] = RAM_BASE + LOOP_OFF; s[S.PC_HI] = 0;
    st.instret = 2 ** 33;
    v.sync();
    for (let k = 0; k < 64 && eng.run(h, 10_000) === ExitReason.BUDGET; k++) { h.csrChanged = false; v.sync(); }
    report.engineLoops = dv.getInt32(DATA_OFF, true);
    eng.detach(h);
  }
  h.release();
  return report;
}
