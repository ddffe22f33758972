/**
 * The JIT engine (src/jit/engine.ts) in process: every program runs on a
 * hart driven by the interpreter and on harts driven by a private `Jit`
 * (threshold 0: translate on first execution; small thresholds: interpret
 * a few times first, so translation happens mid-run), and the whole
 * architectural state (x, f, pc, instret, fcsr, exit fields, reservation)
 * and guest RAM must match after every `run` call.
 *
 * Covered: precise traps inside translated blocks (load/store faults,
 * ecall, illegal instructions and CSR accesses, MMIO exits); exact budgets
 * (in blocks, across chained units); hot loops; random integer and
 * bit-manipulation code and random whole programs (memory, AMOs, branches,
 * calls across pages) under random budgets and tiny code caches; div/rem
 * special cases; FP and F CSRs; the CSR helper (instret, privileged-state
 * changes, FS gating with a CSR file); self-modifying code (a store through
 * the hart drops the page's translations, also from another hart); DMA
 * invalidation (ram.written, and a real virtio-blk read into a code page);
 * unlinking of chained exits and the IBTC under remapping; x0 after AMOs;
 * misaligned and page-straddling accesses and instructions; eviction.
 *
 * Some tests are regressions for bugs found while writing them: the budget
 * at an interpreted block end, the virtio-blk zero-copy read, a cache
 * smaller than one unit, minstret writes, fcvt.d.w with a reserved rm.
 * CPU_SEED=<n> changes the seed of the randomized tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  makeHart, assemble, loadBytes, setX, getX, getF, setPc, step, runToExit, snapshot, ramDiff, li, rv,
  DATA, RAM_BYTES, EBREAK, RA, T0, T1, S0, S1, A0, A1, A2, A3, A4, A5, A6, A7,
  T2, T3, T4, addHart, type TestHart, type Snapshot, type Item, type HartOptions,
} from '../helpers/jit-hart.js';
import { Prng } from '../helpers/prng.js';
import { r, i, u, b, OP, OP_32, OP_IMM, OP_IMM_32, SYSTEM, ECALL } from '../helpers/asm.js';
import type { GuestRam } from '../../src/memory/guest-ram.js';
import { ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, XLATE_ACCESS_FAULT, XLATE_MMIO, type PageTranslator } from '../../src/mmu/tlb.js';
import { CsrFile, MSTATUS_FS } from '../../src/cpu/csr-file.js';
import {
  ExitReason, CAUSE_BREAKPOINT, CAUSE_FETCH_ACCESS, CAUSE_ILLEGAL_INSTRUCTION, CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS, CAUSE_USER_ECALL,
} from '../../src/cpu/hart.js';
import { S } from '../../src/cpu/hart-state.js';
import { jitTotals, type JitOptions } from '../../src/jit/engine.js';
import { VirtioMmio, STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_FEATURES_OK, STATUS_DRIVER_OK } from '../../src/devices/virtio/mmio.js';
import type { DmaMemory } from '../../src/devices/virtio/queue.js';
import { VirtioBlk, VIRTIO_BLK_T_IN, VIRTIO_BLK_S_OK } from '../../src/devices/virtio/blk.js';
import type { BlockBackend } from '../../src/devices/virtio/block-backend.js';

const SEED = Number(process.env['CPU_SEED'] ?? 20261121);
console.log('jit-engine seed', SEED);

/** The JIT configurations every differential test runs (besides the interpreter). */
const JITS: Partial<JitOptions>[] = [{ threshold: 0 }, { threshold: 1 }, { threshold: 3 }];

/** A program: code and data at addresses, initial registers and pc, and the hart's options. */
interface Program {
  code: [number, readonly Item[]][];
  data?: [number, Uint8Array][];
  regs?: [number, bigint][];
  pc: number;
  hart?: HartOptions;
  /** Extra setup (e.g. a CSR file) once the hart exists. */
  init?: (t: TestHart) => void;
}

function build(p: Program, jit?: Partial<JitOptions>): TestHart {
  const t = makeHart(jit, p.hart);
  p.init?.(t);
  for (const [a, items] of p.code) loadBytes(t, a, assemble(a, items));
  for (const [a, bytes] of p.data ?? []) loadBytes(t, a, bytes);
  for (const [reg, v] of p.regs ?? []) setX(t, reg, v);
  setPc(t, p.pc);
  return t;
}

/** Drives one hart and returns the states to compare (one per checkpoint). */
type Script = (t: TestHart) => Snapshot[];

/**
 * Runs `p` under `script` on the interpreter and on each JIT configuration;
 * asserts that every JIT run produced the interpreter's checkpoints and RAM.
 */
function differential(p: Program, script: Script, jits: Partial<JitOptions>[] = JITS): { ref: TestHart; refTrace: Snapshot[]; runs: TestHart[] } {
  const ref = build(p);
  const refTrace = script(ref);
  const runs: TestHart[] = [];
  for (const cfg of jits) {
    const t = build(p, cfg);
    const trace = script(t);
    for (let k = 0; k < Math.min(trace.length, refTrace.length); k++) {
      assert.deepEqual(trace[k], refTrace[k], `${t.name}: checkpoint ${k} differs from the interpreter`);
    }
    assert.equal(trace.length, refTrace.length, `${t.name}: number of checkpoints`);
    assert.equal(ramDiff(ref, t), -1, `${t.name}: guest RAM differs from the interpreter's`);
    assert.ok(t.jit!.stats.unitsCompiled > 0, `${t.name}: nothing was translated`);
    runs.push(t);
  }
  return { ref, refTrace, runs };
}

/** Script: runs to the first exit in slices of `slice`. */
const toExit = (slice = 1000): Script => (t) => [snapshot(t, runToExit(t, slice))];

/**
 * Script: runs to exits; an ecall or illegal instruction is "handled" by
 * the host (checkpoint, then pc moves past it), ebreak or anything else ends.
 */
const handleTraps = (slice = 1000): Script => (t) => {
  const out: Snapshot[] = [], s = t.hart.st.s;
  for (let n = 0; n < 10_000; n++) {
    const exit = runToExit(t, slice);
    out.push(snapshot(t, exit));
    const cause = s[S.EXIT_CAUSE]!;
    if (exit !== ExitReason.EXCEPTION || (cause !== CAUSE_USER_ECALL && cause !== CAUSE_ILLEGAL_INSTRUCTION)) return out;
    setPc(t, t.hart.st.getPc() + s[S.EXIT_ILEN]!);
  }
  throw new Error('too many traps');
};

/** Script: calls `run` with each budget of `budgets` in turn (cycling) until an exit other than BUDGET. */
const withBudgets = (budgets: number[], max = 5000): Script => (t) => {
  const out: Snapshot[] = [];
  for (let n = 0; n < max; n++) {
    const before = t.hart.st.instret, k = budgets[n % budgets.length]!;
    const exit = step(t, k);
    const snap = snapshot(t, exit);
    out.push(snap);
    if (exit !== ExitReason.BUDGET) return out;
    assert.equal(t.hart.st.instret - before, k, `${t.name}: run(${k}) retired ${t.hart.st.instret - before}`);
  }
  throw new Error('program did not finish');
};

const le64 = (...vals: bigint[]): Uint8Array => {
  const b = new Uint8Array(8 * vals.length), dv = new DataView(b.buffer);
  vals.forEach((v, k) => dv.setBigUint64(8 * k, BigInt.asUintN(64, v), true));
  return b;
};

const END = RAM_BYTES; // first address past RAM: accesses there fault with an access fault

test('a load fault in the middle of a translated block is precise', () => {
  // A pointer walks up to the end of RAM; the load at END faults after 8 good iterations.
  const p: Program = {
    pc: 0x1000,
    regs: [[A0, BigInt(END - 64)]],
    code: [[0x1000, [
      'loop:',
      rv.addi(A1, A1, 1),
      rv.slli(A5, A1, 4),
      rv.ld(A2, A0, 0), // faults when a0 = END
      rv.add(A3, A3, A2),
      rv.addi(A0, A0, 8),
      rv.jal(0, 'loop'),
    ]]],
  };
  const { refTrace } = differential(p, toExit());
  const [end] = refTrace;
  assert.equal(end!.exit, ExitReason.EXCEPTION);
  assert.equal(end!.exitCause, CAUSE_LOAD_ACCESS);
  assert.equal(end!.tval, '0x' + END.toString(16));
  assert.equal(end!.pc, '0x1008');
  assert.equal(end!.x[A1], 'x11=0x9'); // written before the fault in the same block
  assert.equal(end!.x[A5], 'x15=0x90');
  assert.equal(end!.instret, 8 * 6 + 2);
  assert.equal(end!.exitIlen, 4);
});

test('a store fault in the middle of a translated block is precise, earlier stores done', () => {
  const p: Program = {
    pc: 0x1000,
    regs: [[A0, BigInt(END - 36)], [S0, BigInt(DATA)]],
    code: [[0x1000, [
      'loop:',
      rv.addi(A1, A1, 3),
      rv.sd(A1, S0, 0), // a store that succeeds, before the faulting one
      rv.addi(S0, S0, 8),
      rv.sw(A1, A0, 4), // faults when a0 + 4 = END
      rv.addi(A0, A0, 8),
      rv.blt(A1, A7, 'loop'), // a7 = 0: never taken
      rv.jal(0, 'loop'),
    ]]],
  };
  const { refTrace, runs } = differential(p, toExit());
  const [end] = refTrace;
  assert.equal(end!.exitCause, CAUSE_STORE_ACCESS);
  assert.equal(end!.tval, '0x' + END.toString(16));
  assert.equal(end!.pc, '0x100c');
  assert.equal(end!.x[A1], 'x11=0xf'); // fifth iteration: written before the fault
  for (const t of runs) {
    assert.equal(getX(t, S0), BigInt(DATA + 40), t.name);
    assert.equal(t.ram.dv.getUint32(DATA + 32, true), 15, `${t.name}: the store before the faulting one is done`);
  }
});

test('an ecall and an illegal instruction in the middle of hot blocks are precise', () => {
  const p: Program = {
    pc: 0x1000,
    regs: [[A0, 20n]],
    code: [[0x1000, [
      'loop:',
      rv.addi(A1, A1, 1),
      rv.slli(A2, A1, 2),
      ECALL, // handled by the host: pc += 4
      rv.add(A3, A3, A2),
      rv.xor(A4, A4, A3),
      0xffffffff, // illegal: handled by the host too
      rv.addi(A5, A5, -7),
      rv.csrrs(A6, 0x300, 0), // mstatus does not exist here: illegal (the CSR helper fails its read)
      rv.addi(A6, A6, 1),
      i(SYSTEM, 1, A7, A1, 0xc00), // csrrw a7, cycle, a1: read-only, illegal (the helper's write fails after its read)
      rv.bne(A1, A0, 'loop'),
      EBREAK,
    ]]],
  };
  const { refTrace } = differential(p, handleTraps());
  assert.equal(refTrace.length, 81);
  assert.equal(refTrace[0]!.exitCause, CAUSE_USER_ECALL);
  assert.equal(refTrace[0]!.pc, '0x1008');
  assert.equal(refTrace[1]!.exitCause, CAUSE_ILLEGAL_INSTRUCTION);
  assert.equal(refTrace[1]!.tval, '0xffffffff');
  assert.equal(refTrace[1]!.pc, '0x1014');
  assert.equal(refTrace[2]!.exitCause, CAUSE_ILLEGAL_INSTRUCTION);
  assert.equal(refTrace[2]!.pc, '0x101c');
  assert.equal(refTrace[3]!.pc, '0x1024');
  assert.equal(refTrace[3]!.tval, '0x' + (i(SYSTEM, 1, A7, A1, 0xc00) >>> 0).toString(16));
  const last = refTrace[80]!;
  assert.equal(last.exitCause, CAUSE_BREAKPOINT);
  assert.equal(last.x[A3], 'x13=0x348'); // 4 * (1 + ... + 20)
});

/** A program with loads, stores, calls, compressed instructions and branches. */
const busyItems = (end: Item): Item[] => [
  ...li(S0, DATA),
  'loop:',
  { h: 0x0505 }, // c.addi a0, 1
  { h: 0x862a }, // c.mv a2, a0
  rv.slli(A3, A2, 3),
  rv.sd(A3, S0, 0),
  rv.ld(A4, S0, 0),
  rv.add(A5, A5, A4),
  rv.jal(RA, 'func'),
  rv.addi(A1, A1, -1),
  rv.bne(A1, 0, 'loop'),
  end,
  'func:',
  rv.addi(S1, S1, 3),
  rv.sw(S1, S0, 8),
  rv.lw(A6, S0, 8),
  rv.bltu(A6, A4, 'small'),
  rv.addi(A7, A7, 1),
  'small:',
  rv.jalr(0, RA, 0),
];
const busyProgram: Program = {
  pc: 0x1000,
  regs: [[A1, 25n], [T2, BigInt(RAM_BYTES)]],
  // Ends with a fetch fault past RAM, not ebreak: see the EXIT_INTERP budget test below.
  code: [[0x1000, busyItems(rv.jalr(0, T2, 0))]],
};

test('small budgets stop after exactly that many instructions, in and between translated blocks', () => {
  for (const budgets of [[1], [2], [3], [7], [1, 2, 3, 7, 1, 1, 5, 13, 2, 64, 3], [11, 4, 9]]) {
    const { refTrace } = differential(busyProgram, withBudgets(budgets));
    const end = refTrace[refTrace.length - 1]!;
    assert.equal(end.exitCause, CAUSE_FETCH_ACCESS, `budgets ${budgets.join(',')}`);
    assert.equal(end.instret, 2 + 25 * 14 + 1, 'li, 25 rounds of 14, the final jalr');
  }
  // Chained exits between units of different pages (jal from page to page) stop exactly too.
  differential(manyPages(4), withBudgets([7, 3, 1, 13, 2, 6]));
  // A fresh JIT hart asked for k instructions retires exactly k, whatever the threshold.
  for (const k of [1, 2, 3, 7, 10, 31, 100]) {
    for (const cfg of JITS) {
      const t = build(busyProgram, cfg), ref = build(busyProgram);
      assert.equal(step(t, k), ExitReason.BUDGET);
      step(ref, k);
      assert.equal(t.hart.st.instret, k);
      assert.deepEqual(snapshot(t), snapshot(ref), `${t.name}: run(${k})`);
    }
  }
});

test('run(budget) does not run past its budget at a block that ends at an interpreted instruction', () => {
  // jal to a block that is just a fence.i (only the interpreter runs it): run(1) must stop after the jal.
  const p: Program = { pc: 0x1000, code: [[0x1000, [rv.jal(0, 'r'), 'r:', 0x0000100f /* fence.i */, EBREAK]]] };
  for (const cfg of JITS) {
    const t = build(p, cfg), ref = build(p);
    for (let k = 0; k < 5; k++) { // with a threshold above 0, the unit is translated on a later round
      setPc(t, 0x1000); setPc(ref, 0x1000);
      const before = t.hart.st.instret;
      assert.equal(step(t, 1), step(ref, 1));
      assert.equal(t.hart.st.instret - before, 1, `${t.name}, round ${k}: run(1) retired ${t.hart.st.instret - before}`);
      assert.deepEqual(snapshot(t), snapshot(ref), `${t.name}, round ${k}`);
    }
  }
  // The busy program ending at ebreak (a block ending at an interpreted instruction), run in slices of 1.
  const withEbreak: Program = { ...busyProgram, code: [[0x1000, busyItems(EBREAK)]] };
  differential(withEbreak, withBudgets([1]));
});

test('a hot loop is translated and computes what the interpreter computes', () => {
  // Sum of i * (i / 3) + i % 7 over memory, with the array filled first.
  const n = 3000;
  const p: Program = {
    pc: 0x1000,
    regs: [[A0, BigInt(n)]],
    code: [[0x1000, [
      ...li(S0, DATA),
      rv.addi(T0, 0, 3),
      rv.addi(T1, 0, 7),
      'fill:',
      rv.div(A2, A1, T0),
      rv.mul(A2, A2, A1),
      rv.rem(A3, A1, T1),
      rv.add(A2, A2, A3),
      rv.slli(A4, A1, 3),
      rv.add(A4, A4, S0),
      rv.sd(A2, A4, 0),
      rv.addi(A1, A1, 1),
      rv.bne(A1, A0, 'fill'),
      rv.addi(A1, 0, 0),
      rv.addi(A4, S0, 0),
      'sum:',
      rv.ld(A2, A4, 0),
      rv.add(A5, A5, A2),
      rv.addi(A4, A4, 8),
      rv.addi(A1, A1, 1),
      rv.blt(A1, A0, 'sum'),
      EBREAK,
    ]]],
  };
  let want = 0n;
  for (let k = 0n; k < BigInt(n); k++) want += k * (k / 3n) + k % 7n;
  const { ref, runs } = differential(p, toExit(997), [{ threshold: 0 }, { threshold: 2 }, { threshold: 50 }]);
  assert.equal(getX(ref, A5), want);
  for (const t of runs) {
    assert.equal(getX(t, A5), want);
    assert.ok(t.jit!.stats.blocksCompiled >= 2, `${t.name}: blocks compiled`);
    assert.equal(t.jit!.stats.invalidations, 0, `${t.name}: no code was written`);
  }
});

/** Random translatable integer instructions (RV64IM, Zba, Zbb, Zbs) over registers x0 and x5..x15. */
function randomAlu(rng: Prng): number {
  const reg = (): number => { const k = rng.int(12); return k === 11 ? 0 : 5 + k; };
  const rd = reg(), a = reg(), bb = reg();
  const R: [number, number][] = [
    [0, 0], [0x20, 0], [0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0x20, 5], [0, 6], [0, 7], [1, 0], [1, 1], [1, 2],
    [1, 3], [1, 4], [1, 5], [1, 6], [1, 7], [0x20, 7], [0x20, 6], [0x20, 4], [0x10, 2], [0x10, 4], [0x10, 6],
    [5, 4], [5, 5], [5, 6], [5, 7], [0x30, 1], [0x30, 5], [0x14, 1], [0x24, 1], [0x24, 5], [0x34, 1],
  ];
  const R32: [number, number][] = [
    [0, 0], [0x20, 0], [0, 1], [0, 5], [0x20, 5], [1, 0], [1, 4], [1, 5], [1, 6], [1, 7], [4, 0], [0x10, 2],
    [0x10, 4], [0x10, 6], [0x30, 1], [0x30, 5],
  ];
  const sh = rng.int(64), sh5 = rng.int(32), imm = rng.int(4096) - 2048;
  switch (rng.int(6)) {
    case 0: case 1: { const [f7, f3] = R[rng.int(R.length)]!; return r(OP, f3, f7, rd, a, bb); }
    case 2: {
      if (rng.int(8) === 0) return r(OP_32, 4, 4, rd, a, 0); // zext.h
      const [f7, f3] = R32[rng.int(R32.length)]!; return r(OP_32, f3, f7, rd, a, bb);
    }
    case 3: {
      const forms: [number, number][] = [
        [0, imm], [2, imm], [3, imm], [4, imm], [6, imm], [7, imm], [1, sh], [5, sh], [5, 0x400 | sh], [5, 0x600 | sh],
        [1, 0x280 | sh], [1, 0x480 | sh], [1, 0x680 | sh], [5, 0x480 | sh], [1, 0x600], [1, 0x601], [1, 0x602],
        [1, 0x604], [1, 0x605],
      ];
      const [f3, im] = forms[rng.int(forms.length)]!;
      return i(OP_IMM, f3, rd, a, im);
    }
    case 4: {
      const forms: [number, number][] = [
        [0, imm], [1, sh5], [5, sh5], [5, 0x400 | sh5], [5, 0x600 | sh5], [1, 0x080 | sh], [1, 0x600], [1, 0x601], [1, 0x602],
      ];
      const [f3, im] = forms[rng.int(forms.length)]!;
      return i(OP_IMM_32, f3, rd, a, im);
    }
    default: return u(rng.int(2) === 0 ? 0x37 : 0x17, rd, rng.int(1 << 20)); // lui, auipc
  }
}

test('random integer and bit-manipulation blocks match the interpreter', () => {
  const rng = new Prng(SEED);
  for (let round = 0; round < 40; round++) {
    const body: Item[] = [];
    for (let k = 0, n = 5 + rng.int(40); k < n; k++) body.push(randomAlu(rng));
    const regs: [number, bigint][] = [];
    for (let x = 5; x <= 15; x++) if (x !== A7) regs.push([x, rng.interesting64()]);
    // The loop counter lives in a7 (x17), which the random code never touches.
    const p: Program = {
      pc: 0x1000,
      regs: [...regs, [A7, 4n]],
      code: [[0x1000, ['loop:', ...body, rv.addi(A7, A7, -1), rv.bne(A7, 0, 'loop'), EBREAK]]],
    };
    try {
      differential(p, toExit(), [{ threshold: 0 }, { threshold: 2 }]);
    } catch (e) {
      const words = body.map((w) => '0x' + ((w as number) >>> 0).toString(16).padStart(8, '0'));
      throw new Error(`round ${round} (seed ${SEED}): ${words.join(' ')}\n${(e as Error).message}`, { cause: e });
    }
  }
});

/**
 * A random program: an outer loop over segments of random ALU code, loads,
 * stores and AMOs on a data area (x18 = base, x20 = address), forward
 * branches, and calls to random functions in another page (jal there,
 * jalr back). x0 and x5..x15 are the random code's registers.
 */
/** The size of the largest unit `p` compiles (threshold 0). */
function maxUnitBytes(p: Program): number {
  const t = build(p, { threshold: 0 }), jit = t.jit!;
  let last = 0, max = 0;
  jit.onListing = (): void => { max = Math.max(max, jit.stats.bytesCompiled - last); last = jit.stats.bytesCompiled; };
  runToExit(t);
  return max;
}

function randomProgram(rng: Prng): Program {
  const BASE = 18, ADDR = 20, COUNT = 19, ENDR = 21, FNS = 0x3000;
  const reg = (): number => { const k = rng.int(12); return k === 11 ? 0 : 5 + k; };
  const fns: [number, Item[]][] = [];
  for (let k = 0; k < 4; k++) {
    const body: Item[] = [];
    for (let n = 1 + rng.int(5); n > 0; n--) body.push(randomAlu(rng));
    fns.push([FNS + 0x100 * k, [...body, rv.jalr(0, RA, 0)]]);
  }
  const items: Item[] = [...li(BASE, DATA), 'outer:'];
  let label = 0;
  for (let seg = 0; seg < 10; seg++) {
    for (let n = rng.int(5); n > 0; n--) items.push(randomAlu(rng));
    switch (rng.int(5)) {
      case 0: case 1: { // load or store
        items.push(i(OP_IMM, 7, ADDR, reg(), 0x3f8), rv.add(ADDR, ADDR, BASE));
        const off = rng.int(2) === 0 ? 0 : rng.int(8);
        items.push(rng.int(2) === 0 ? i(0x03, rng.int(7), reg(), ADDR, off) : ((): number => {
          const f3 = rng.int(4), rs2 = reg();
          return ((((off >> 5) & 0x7f) << 25) | (rs2 << 20) | (ADDR << 15) | (f3 << 12) | ((off & 0x1f) << 7) | 0x23) >>> 0;
        })());
        break;
      }
      case 2: { // AMO (aligned)
        items.push(i(OP_IMM, 7, ADDR, reg(), 0x3f8), rv.add(ADDR, ADDR, BASE));
        const f5 = [0, 1, 4, 8, 12, 16, 20, 24, 28][rng.int(9)]!;
        items.push(rv.amo(f5, rng.int(2) === 0 ? 4 : 8, reg(), ADDR, reg()));
        break;
      }
      case 3: { // forward branch over a few instructions
        const l = `f${label++}`;
        const f3 = [0, 1, 4, 5, 6, 7][rng.int(6)]!, r1 = reg(), r2 = reg(); // drawn now: the item is evaluated per build
        items.push((pc, at) => b(f3, r1, r2, at(l) - pc));
        for (let n = 1 + rng.int(3); n > 0; n--) items.push(randomAlu(rng));
        items.push(`${l}:`);
        break;
      }
      default: items.push(rv.jalAbs(RA, FNS + 0x100 * rng.int(4))); break;
    }
  }
  items.push(rv.addi(COUNT, COUNT, -1), rv.bne(COUNT, 0, 'outer'), rv.jalr(0, ENDR, 0));
  const regs: [number, bigint][] = [[COUNT, 6n], [ENDR, BigInt(END)]];
  for (let x = 5; x <= 15; x++) regs.push([x, rng.interesting64()]);
  const data = new Uint8Array(0x410);
  for (let k = 0; k < data.length; k++) data[k] = rng.int(256);
  return { pc: 0x1000, regs, data: [[DATA, data]], code: [[0x1000, items], ...fns] };
}

test('random programs (ALU, memory, AMOs, branches, calls across pages) match the interpreter under random budgets', () => {
  const rng = new Prng(SEED ^ 0x5eed);
  let evictions = 0;
  for (let round = 0; round < 25; round++) {
    const p = randomProgram(rng);
    const budgets: number[] = [];
    for (let k = 0; k < 8; k++) budgets.push(1 + rng.int(rng.int(2) === 0 ? 8 : 60));
    try {
      differential(p, withBudgets(budgets, 100_000), [{ threshold: 0 }, { threshold: 2 }]);
      // A cache a little bigger than the biggest unit: eviction, slot reuse and unlinking all the time.
      const { runs } = differential(p, toExit(1 + rng.int(500)), [{ threshold: 0 }, { threshold: 0, cacheBytes: maxUnitBytes(p) + 1 }]);
      evictions += runs[1]!.jit!.stats.evictions;
    } catch (e) {
      throw new Error(`round ${round} (seed ${SEED}), budgets ${budgets.join(',')}: ${(e as Error).message}`, { cause: e });
    }
  }
  assert.ok(evictions > 100, `the small caches evicted (${evictions})`);
});

test('division and remainder special cases (x/0, MIN/-1) in translated code', () => {
  const MIN = -0x8000000000000000n;
  const cases: [bigint, bigint][] = [[7n, 0n], [-7n, 0n], [MIN, -1n], [MIN, 1n], [-7n, 2n], [7n, -2n], [0x80000000n, -1n],
    [-0x80000000n, -1n], [0xffffffff80000000n, 0xffffffffffffffffn], [5n, 0x100000000n]];
  for (const [x, y] of cases) {
    const p: Program = {
      pc: 0x1000,
      regs: [[A0, x], [A1, y]],
      code: [[0x1000, [
        rv.div(A2, A0, A1), rv.divu(A3, A0, A1), rv.rem(A4, A0, A1), rv.remu(A5, A0, A1),
        rv.divw(A6, A0, A1), rv.remw(A7, A0, A1), r(OP_32, 5, 1, T0, A0, A1), r(OP_32, 7, 1, T1, A0, A1),
        EBREAK,
      ]]],
    };
    const { ref } = differential(p, toExit(), [{ threshold: 0 }]);
    if (y === 0n) {
      assert.equal(getX(ref, A2), -1n);
      assert.equal(getX(ref, A4), x);
    }
    if (x === MIN && y === -1n) {
      assert.equal(getX(ref, A2), MIN);
      assert.equal(getX(ref, A4), 0n);
    }
  }
});

test('F/D instructions through the helper: results, fflags, and integer sources and destinations', () => {
  const FADD_D = 0x01, FDIV_D = 0x0d, FSQRT_D = 0x2d, FCVT_D_L = 0x69, FCVT_L_D = 0x61, FMV_D_X = 0x79, FMV_X_D = 0x71;
  const FLT_D = 0x51, FMADD_D = (rd: number, a: number, bb: number, c: number): number => ((c << 27) | (1 << 25) | (bb << 20) | (a << 15) | (7 << 12) | (rd << 7) | 0x43) >>> 0;
  const fld = (rd: number, rs: number, imm: number): number => i(0x07, 3, rd, rs, imm);
  const fsd = (rs2: number, rs1: number, imm: number): number => ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | ((imm & 0x1f) << 7) | 0x27) >>> 0;
  const p: Program = {
    pc: 0x1000,
    regs: [[A0, 1n], [A1, 60n]],
    data: [[DATA, le64(0x3ff8000000000000n /* 1.5 */)]],
    code: [[0x1000, [
      ...li(S0, DATA),
      fld(3, S0, 0),
      'loop:',
      rv.fp(FCVT_D_L, 7, 1, A0, 2), // f1 = (double) a0
      rv.fp(FDIV_D, 7, 2, 1, 3), // f2 = f1 / 1.5 (inexact)
      rv.fp(FSQRT_D, 7, 4, 2, 0),
      FMADD_D(5, 4, 4, 2),
      rv.fp(FADD_D, 7, 6, 6, 5),
      rv.fp(FCVT_L_D, 1, A2, 6, 2), // a2 = (long) f6, round towards zero
      rv.fp(FLT_D, 1, A3, 2, 1), // a3 = f2 < f1
      rv.fp(FCVT_L_D, 1, 0, 6, 2), // rd = x0: nothing written
      rv.fp(FMV_D_X, 0, 7, 0, 0), // f7 = x0 = 0
      rv.fp(FMV_X_D, 0, A4, 6, 0), // a4 = bits of f6
      fsd(6, S0, 8),
      rv.add(A5, A5, A2),
      rv.addi(A0, A0, 1),
      rv.bne(A0, A1, 'loop'),
      rv.fp(FDIV_D, 7, 8, 1, 7), // 59 / 0: DZ
      rv.csrrs(A6, 1, 0), // frflags: ends the block, runs in the interpreter
      EBREAK,
    ]]],
  };
  const { ref, runs } = differential(p, toExit());
  assert.equal(getF(ref, 7), 0n);
  assert.equal(getX(ref, A6) & 0x9n, 0x9n); // DZ and NX accrued
  for (const t of runs) assert.equal(getF(t, 7), 0n, `${t.name}: fmv.d.x from x0`);
});

/** Loop page, patcher page: the loop is translated, then a store through the hart rewrites its first instruction. */
const smcProgram: Program = {
  pc: 0x5000,
  regs: [[A1, 10n], [T0, 0x1000n], [T1, BigInt(rv.addi(A0, A0, 100))]],
  code: [
    [0x1000, [
      'loop:',
      rv.addi(A0, A0, 1), // patched to addi a0, a0, 100
      rv.addi(A1, A1, -1),
      rv.bne(A1, 0, 'loop'),
      rv.jalAbs(0, 0x5008),
    ]],
    [0x5000, [
      rv.sw(0, T0, 2032), // a store into the code page before it holds translated code: write permission is cached
      rv.jalAbs(0, 0x1000),
      // 0x5008: patch once, then run the loop again
      rv.bne(A5, 0, 'done'),
      rv.addi(A5, 0, 1),
      rv.sw(T1, T0, 0),
      rv.addi(A1, 0, 10),
      rv.jalAbs(0, 0x1000),
      'done:',
      EBREAK,
    ]],
  ],
};

test('self-modifying code: a store through the hart drops the translation and the new instruction runs', () => {
  const { ref, runs } = differential(smcProgram, toExit());
  assert.equal(getX(ref, A0), 1010n);
  for (const t of runs) {
    assert.equal(getX(t, A0), 1010n, t.name);
    assert.ok(t.jit!.stats.invalidations >= 1, `${t.name}: invalidations`);
  }
  // The same, stepping in small slices (the patch lands between run calls and inside them).
  differential(smcProgram, withBudgets([3, 5, 1, 8]));
});

test('self-modifying code: a store into the running block itself takes effect at the next instruction', () => {
  const p: Program = {
    pc: 0x1000,
    regs: [[T0, 0x1000n], [T1, BigInt(rv.addi(A0, A0, 100))], [A1, 8n]],
    code: [[0x1000, [
      'top:',
      rv.addi(A2, A2, 1),
      rv.sw(T1, T0, 16), // rewrites the addi at 0x1010, a few instructions on in the same block
      rv.addi(A3, A3, 1),
      rv.addi(A3, A3, 1),
      rv.addi(A0, A0, 1), // 0x1010
      rv.addi(A1, A1, -1),
      rv.bne(A1, 0, 'top'),
      EBREAK,
    ]]],
  };
  const { ref, runs } = differential(p, toExit());
  assert.equal(getX(ref, A0), 800n);
  for (const t of runs) assert.ok(t.jit!.stats.invalidations >= 1, t.name);
});

/** A loop at 0x3000 adding `step` to a0 `n` times, then ebreak. */
const addLoop = (stepBy: number): Uint8Array => assemble(0x3000, [
  'loop:', rv.addi(A0, A0, stepBy), rv.addi(A1, A1, -1), rv.bne(A1, 0, 'loop'), EBREAK,
]);

/** Restarts the add loop: a0 = 0, a1 = n, pc = 0x3000. */
function restart(t: TestHart, n: number): void {
  setX(t, A0, 0n); setX(t, A1, BigInt(n)); setPc(t, 0x3000);
}

test('ram.written after a host write drops the page\'s units; the next run executes the new code', () => {
  for (const cfg of JITS) {
    const t = makeHart(cfg), jit = t.jit!;
    loadBytes(t, 0x3000, addLoop(1));
    restart(t, 50);
    assert.equal(runToExit(t), ExitReason.EXCEPTION);
    assert.equal(getX(t, A0), 50n);
    assert.ok(jit.stats.unitsCompiled >= 1 && t.ram.codePages[3] === 1, `${t.name}: the loop page holds translated code`);
    const units = jit.stats.unitsCompiled, inv = jit.stats.invalidations;
    // A host-side writer (a loader, a system call, DMA) rewrites the code and reports it.
    loadBytes(t, 0x3000, addLoop(5));
    t.ram.written(0x3000, 16);
    assert.equal(jit.stats.invalidations, inv + 1);
    assert.equal(t.ram.codePages[3], 0, 'the page no longer holds translated code');
    assert.equal(jit.stats.liveBytes, 0, 'the old unit is gone');
    restart(t, 50);
    assert.equal(runToExit(t), ExitReason.EXCEPTION);
    assert.equal(getX(t, A0), 250n, `${t.name}: the new code ran`);
    assert.ok(jit.stats.unitsCompiled > units, 'the new code was translated');
    // A write to a page without translated code is not an invalidation.
    t.ram.written(0x20000, 4096);
    assert.equal(jit.stats.invalidations, inv + 1);
  }
});

// ---- virtio-blk DMA into a code page -------------------------------------

/** A RAM disk holding `image` at sector 0. */
class RamDisk implements BlockBackend {
  readonly size = 64 * 1024;
  readonly readOnly = true;
  readonly data = new Uint8Array(this.size);
  constructor(image: Uint8Array) { this.data.set(image); }
  read(o: number, b: Uint8Array): void { b.set(this.data.subarray(o, o + b.length)); }
  write(): void { throw new Error('read-only'); }
  flush(): void { /* nothing to flush */ }
  discard(): void { /* ignored */ }
  writeZeroes(): void { throw new Error('read-only'); }
  close(): void { /* nothing to release */ }
}

/**
 * The driver side of one virtio-blk queue whose rings and buffers live in
 * the test hart's guest RAM, and whose device DMA reports writes through
 * `ram.written`, as the Board's DMA object does (src/machine/board.ts).
 */
class RamBlkDriver {
  readonly transport: VirtioMmio;
  private readonly dv: DataView;
  private readonly out = new Int32Array(2);
  private availIdx = 0;
  private static readonly DESC = 0x60000;
  private static readonly AVAIL = 0x60800;
  private static readonly USED = 0x60c00;
  private static readonly QSIZE = 8;

  constructor(t: TestHart, disk: BlockBackend) {
    const ram = t.ram;
    const dma: DmaMemory = { u8: ram.u8, dv: ram.dv, base: 0, size: ram.size, written: (off, len) => ram.written(off, len) };
    this.dv = ram.dv;
    this.transport = new VirtioMmio(new VirtioBlk(disk), dma, { setIrq: () => undefined }, 1);
    const set = (off: number, v: number): void => this.transport.write(off, 4, v | 0, 0);
    const get = (off: number): number => { this.transport.read(off, 4, this.out); return this.out[0]! >>> 0; };
    set(0x70, 0);
    set(0x70, STATUS_ACKNOWLEDGE);
    set(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    set(0x14, 0); const lo = get(0x10);
    set(0x14, 1); const hi = get(0x10);
    set(0x24, 0); set(0x20, lo);
    set(0x24, 1); set(0x20, hi);
    set(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    set(0x30, 0); set(0x38, RamBlkDriver.QSIZE);
    set(0x80, RamBlkDriver.DESC); set(0x84, 0); set(0x90, RamBlkDriver.AVAIL); set(0x94, 0); set(0xa0, RamBlkDriver.USED); set(0xa4, 0);
    set(0x44, 1);
    set(0x70, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    assert.equal(get(0x70) & 64, 0, 'device does not need a reset');
  }

  /** Reads the disk from sector 0 into guest RAM at `bufs` (one descriptor each, [addr, len]); returns the status byte. */
  readInto(bufs: [number, number][]): number {
    const HDR = 0x61000, STATUS = 0x61100, dv = this.dv;
    dv.setUint32(HDR, VIRTIO_BLK_T_IN, true); dv.setUint32(HDR + 4, 0, true); dv.setBigUint64(HDR + 8, 0n, true);
    dv.setUint8(STATUS, 0xff);
    const chain: [number, number, number][] = [[HDR, 16, 0], ...bufs.map(([a, l]): [number, number, number] => [a, l, 2]), [STATUS, 1, 2]];
    chain.forEach(([addr, len, flags], k) => {
      const d = RamBlkDriver.DESC + 16 * k, last = k === chain.length - 1;
      dv.setBigUint64(d, BigInt(addr), true); dv.setUint32(d + 8, len, true);
      dv.setUint16(d + 12, flags | (last ? 0 : 1), true); dv.setUint16(d + 14, last ? 0 : k + 1, true);
    });
    const a = RamBlkDriver.AVAIL;
    dv.setUint16(a + 4 + 2 * (this.availIdx % RamBlkDriver.QSIZE), 0, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    dv.setUint16(a + 2, this.availIdx, true);
    this.transport.write(0x50, 4, 0, 0); // QueueNotify
    assert.equal(dv.getUint16(RamBlkDriver.USED + 2, true), this.availIdx, 'request completed');
    return dv.getUint8(STATUS);
  }
}

/** Translates the add loop, reads a new loop over it from a virtio-blk disk (buffers `layout`), and runs it again. */
function blkOverCode(cfg: Partial<JitOptions>, layout: [number, number][]): { t: TestHart; invBefore: number } {
  const t = makeHart(cfg), jit = t.jit!;
  const image = new Uint8Array(512);
  image.set(addLoop(9));
  const drv = new RamBlkDriver(t, new RamDisk(image));
  loadBytes(t, 0x3000, addLoop(1));
  restart(t, 40);
  assert.equal(runToExit(t), ExitReason.EXCEPTION);
  assert.equal(getX(t, A0), 40n);
  assert.equal(t.ram.codePages[3], 1, `${t.name}: the loop was translated`);
  const invBefore = jit.stats.invalidations;
  assert.equal(drv.readInto(layout), VIRTIO_BLK_S_OK);
  assert.deepEqual(t.ram.u8.slice(0x3000, 0x3010), addLoop(9), 'the disk data landed on the code');
  restart(t, 40);
  assert.equal(runToExit(t), ExitReason.EXCEPTION);
  return { t, invBefore };
}

test('a virtio-blk read scattered over a code page invalidates it (DescChain.write -> ram.written)', () => {
  for (const cfg of JITS) {
    const { t, invBefore } = blkOverCode(cfg, [[0x3000, 256], [0x3100, 256]]);
    assert.ok(t.jit!.stats.invalidations > invBefore, `${t.name}: the DMA invalidated the page`);
    assert.equal(getX(t, A0), 360n, `${t.name}: the code read from disk ran`);
  }
});

test('a virtio-blk read into one contiguous buffer over a code page invalidates it', () => {
  for (const cfg of JITS) {
    const { t, invBefore } = blkOverCode(cfg, [[0x3000, 512]]);
    assert.ok(t.jit!.stats.invalidations > invBefore, `${t.name}: the DMA invalidated the page`);
    assert.equal(getX(t, A0), 360n, `${t.name}: the code read from disk ran`);
  }
});

// ---- AMOs and x0 -----------------------------------------------------------

test('x0 stays zero after AMOs and LR with rd = x0, and AMOs read x0 as zero', () => {
  const p: Program = {
    pc: 0x1000,
    regs: [[A0, BigInt(DATA)], [A1, 3n], [S0, 6n]],
    data: [[DATA, le64(5n, 0x1122334455667788n)]],
    code: [[0x1000, [
      'loop:',
      rv.amo(0, 4, 0, A0, A1), // amoadd.w x0, a1, (a0): execAmo writes the old value to x[0] in memory
      rv.add(A3, A3, 0), // reads x0
      rv.amo(1, 4, A2, A0, 0), // amoswap.w a2, x0, (a0): must store 0
      rv.amo(0, 4, A4, A0, A1), // amoadd.w a4, a1, (a0): a4 = 0
      rv.addi(A5, A0, 8),
      rv.amo(2, 8, 0, A5, 0), // lr.d x0, (a5)
      rv.amo(3, 8, A6, A5, 0), // sc.d a6, x0, (a5): stores 0 (x0), a6 = 0
      rv.add(A7, A7, 0),
      rv.sd(A1, A5, 0), // restore the doubleword for the next round
      rv.addi(S0, S0, -1),
      rv.bne(S0, 0, 'loop'),
      EBREAK,
    ]]],
  };
  const { ref, runs } = differential(p, withBudgets([1000]));
  for (const t of [ref, ...runs]) {
    assert.equal(getX(t, 0), 0n, `${t.name}: x0`);
    assert.equal(getX(t, A2), 6n, `${t.name}: amoswap read 3 + 3 (the first round read 5 + 3)`);
    assert.equal(getX(t, A4), 0n, `${t.name}: amoswap stored x0 = 0`);
    assert.equal(getX(t, A3), 0n, `${t.name}: add a3, a3, x0`);
    assert.equal(getX(t, A6), 0n, `${t.name}: sc.d succeeded`);
    assert.equal(t.ram.dv.getUint32(DATA, true), 3, `${t.name}: memory after the last amoadd`);
  }
  // x0 must read 0 at every stop, wherever a slice ends.
  for (const cfg of JITS) {
    const t = build(p, cfg);
    for (let k = 0; k < 30; k++) {
      const exit = step(t, [3, 5, 7, 11][k % 4]!);
      assert.equal(getX(t, 0), 0n, `${t.name}: x0 after slice ${k}`);
      if (exit !== ExitReason.BUDGET) break;
    }
  }
});

// ---- eviction ---------------------------------------------------------------

/** 16 pages, each with a short block jumping to the next; the last loops back `rounds` times. */
function manyPages(rounds: number): Program {
  const code: [number, Item[]][] = [];
  const first = 0x10000, pages = 16;
  for (let k = 0; k < pages; k++) {
    const base = first + k * 0x1000, last = k === pages - 1;
    code.push([base, [
      rv.addi(A0, A0, k + 1),
      rv.slli(A2, A0, (k % 5) + 1),
      rv.xor(A3, A3, A2),
      rv.mul(A4, A3, A0),
      rv.add(A5, A5, A4),
      ...(last
        ? [rv.addi(A1, A1, -1), rv.beq(A1, 0, 'out'), rv.jalAbs(0, first), 'out:', rv.jalr(0, T2, 0)]
        : [rv.jalAbs(0, base + 0x1000)]),
    ]]);
  }
  return { pc: first, regs: [[A1, BigInt(rounds)], [T2, BigInt(END)]], code };
}

test('a small code cache evicts old units and results stay correct', () => {
  // Size one unit of this program for each threshold, then allow about three.
  const cacheFor = (threshold: number): number => {
    const probe = build(manyPages(20), { threshold });
    runToExit(probe);
    return 3 * Math.ceil(probe.jit!.stats.bytesCompiled / probe.jit!.stats.unitsCompiled) + 10;
  };
  const c0 = cacheFor(0), c2 = cacheFor(2);
  const { runs } = differential(manyPages(20), toExit(333), [{ threshold: 0, cacheBytes: c0 }, { threshold: 2, cacheBytes: c2 }]);
  const bound = [c0, c2];
  for (const t of runs) {
    const st = t.jit!.stats;
    assert.ok(st.evictions > 0, `${t.name}: evictions`);
    const cacheBytes = bound[runs.indexOf(t)]!;
    assert.ok(st.liveBytes <= cacheBytes, `${t.name}: live bytes ${st.liveBytes} within the bound`);
    assert.ok(st.unitsCompiled > 16, `${t.name}: evicted units were translated again`);
  }
});

test('a unit larger than the whole code cache still runs correctly (and self-modifying code is still seen)', () => {
  const p: Program = {
    pc: 0x1000,
    regs: [[T0, 0x1000n], [T1, BigInt(rv.addi(A0, A0, 100))], [A1, 3n]],
    code: [[0x1000, [
      'loop:',
      rv.addi(A0, A0, 1), // patched to addi a0, a0, 100 on the first iteration
      rv.sw(T1, T0, 0),
      rv.addi(A1, A1, -1),
      rv.bne(A1, 0, 'loop'),
      EBREAK,
    ]]],
  };
  const { ref } = differential(p, toExit(), [{ threshold: 0, cacheBytes: 1 }]);
  assert.equal(getX(ref, A0), 201n);
});

test('a unit that jumps through the IBTC to its own entry survives a code cache smaller than one unit', () => {
  const p: Program = {
    pc: 0x1000,
    regs: [[T0, 0x1000n], [A1, 5n]],
    code: [[0x1000, ['top:', rv.addi(A0, A0, 1), rv.addi(A1, A1, -1), rv.beq(A1, 0, 'out'), rv.jalr(0, T0, 0), 'out:', EBREAK]]],
  };
  const { ref } = differential(p, toExit(), [{ threshold: 0, cacheBytes: 1 }]);
  assert.equal(getX(ref, A0), 5n);
});

// ---- chaining across units, the IBTC, and remapped pages -------------------

test('a linked exit into another unit is unlinked when that unit\'s page is rewritten', () => {
  const callee = (k: number): Uint8Array => assemble(0x2000, [rv.addi(A0, A0, k), rv.jalr(0, RA, 0)]);
  for (const cfg of JITS) {
    const t = makeHart(cfg), jit = t.jit!;
    loadBytes(t, 0x1000, assemble(0x1000, [
      'loop:', rv.jalAbs(RA, 0x2000), rv.jalAbs(RA, 0x2000), rv.addi(A1, A1, -1), rv.bne(A1, 0, 'loop'), rv.jalr(0, T2, 0),
    ]));
    setX(t, T2, BigInt(END));
    loadBytes(t, 0x2000, callee(1));
    setX(t, A1, 30n); setPc(t, 0x1000);
    assert.equal(runToExit(t), ExitReason.EXCEPTION);
    assert.equal(getX(t, A0), 60n);
    // The callee changes (as a loader would write it); the caller's unit stays, its links must not.
    loadBytes(t, 0x2000, callee(7));
    t.ram.written(0x2000, 8);
    assert.equal(t.ram.codePages[1], 1, `${t.name}: the caller's page still holds translated code`);
    setX(t, A0, 0n); setX(t, A1, 30n); setPc(t, 0x1000);
    assert.equal(runToExit(t), ExitReason.EXCEPTION);
    assert.equal(getX(t, A0), 420n, `${t.name}: both call sites reach the new callee`);
    assert.ok(jit.stats.invalidations >= 1);
  }
});

/** Identity over RAM except for remapped virtual pages, and device pages (MMIO). */
class RemapTranslator implements PageTranslator {
  grantedPerms = 0;
  mmioPage = 0;
  readonly map = new Map<number, number>();
  readonly mmio = new Set<number>();
  constructor(private readonly ram: GuestRam) {}
  translatePage(lo: number, hi: number): number {
    const vpn = lo >>> 12;
    if (hi !== 0) return XLATE_ACCESS_FAULT;
    if (this.mmio.has(vpn)) { this.mmioPage = vpn * 4096; return XLATE_MMIO; }
    const ppn = this.map.get(vpn) ?? vpn;
    if (ppn * 4096 >= this.ram.size) return XLATE_ACCESS_FAULT;
    this.grantedPerms = ACCESS_READ | ACCESS_WRITE | ACCESS_EXEC;
    return ppn * 4096;
  }
}

const remap = (t: TestHart): RemapTranslator => t.hart.translator as RemapTranslator;

/**
 * Script: runs to the first exit in slices of `slice`; then maps virtual
 * page `vpn` to physical page `ppn`, flushes the TLBs (what sfence.vma
 * does), sets register `reg` and pc again, and runs to the exit once more.
 */
const remapBetweenRuns = (vpn: number, ppn: number, reg: [number, bigint], pc: number, slice: number): Script => (t) => {
  const out = [snapshot(t, runToExit(t, slice))];
  remap(t).map.set(vpn, ppn);
  t.hart.flushTlbs();
  setX(t, reg[0], reg[1]); setPc(t, pc);
  out.push(snapshot(t, runToExit(t, slice)));
  return out;
};

test('loads in a tight loop with a one-page cache: a walk over pages, accesses crossing into a page mapped elsewhere, a remap between runs', () => {
  // Virtual page 0x41 maps to physical 0x45 (not next to 0x40), later to 0x46. The loop's 8-byte load crosses
  // from 0x40fff into it; its 1-byte load does not. Each page holds different bytes, so reading the wrong one shows.
  const page = (seed: number): Uint8Array => Uint8Array.from({ length: 4096 }, (_, k) => (k * seed + 7) & 0xff);
  const p: Program = {
    pc: 0x1000,
    hart: { translator: (ram) => { const tr = new RemapTranslator(ram); tr.map.set(0x41, 0x45); return tr; } },
    regs: [[S0, 0x40f00n], [A0, 0x41100n], [T2, BigInt(END)]],
    data: [[0x40000, page(3)], [0x41000, page(5)], [0x45000, page(11)], [0x46000, page(13)]],
    code: [[0x1000, [
      'loop:',
      rv.ld(A2, S0, 0),
      rv.lbu(A3, S0, 0),
      rv.add(A4, A4, A2),
      rv.xor(A5, A5, A3),
      rv.addi(S0, S0, 1),
      rv.bne(S0, A0, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  // Slices long enough that one call of the unit runs through the page crossing (its cache is per call).
  const { refTrace } = differential(p, remapBetweenRuns(0x41, 0x46, [S0, 0x40f00n], 0x1000, 5000));
  assert.notEqual(refTrace[0]!.x[A4], refTrace[1]!.x[A4], 'the remap changed what the loop read');
});

test('chained jal and IBTC jalr exits to a remapped page follow the new mapping (no stale chain)', () => {
  // Virtual page 0x30 holds a function; physical pages 0x31 and 0x32 hold two versions of it.
  const fn = (k: number): Item[] => [rv.addi(A0, A0, k), rv.jalr(0, RA, 0)];
  const p: Program = {
    pc: 0x1000,
    hart: { translator: (ram) => { const tr = new RemapTranslator(ram); tr.map.set(0x30, 0x31); return tr; } },
    regs: [[T0, 0x30000n], [T2, BigInt(END)], [A1, 20n]],
    code: [
      [0x1000, ['loop:', rv.jalAbs(RA, 0x30000), rv.jalr(RA, T0, 0), rv.addi(A1, A1, -1), rv.bne(A1, 0, 'loop'), rv.jalr(0, T2, 0)]],
      [0x31000, fn(1)],
      [0x32000, fn(100)],
    ],
  };
  const script: Script = (t) => {
    const out = [snapshot(t, runToExit(t))];
    remap(t).map.set(0x30, 0x32);
    t.hart.flushTlbs(); // what sfence.vma does
    setX(t, A1, 20n); setPc(t, 0x1000);
    out.push(snapshot(t, runToExit(t)));
    return out;
  };
  const { refTrace, runs } = differential(p, script);
  assert.equal(refTrace[0]!.x[A0], 'x10=0x28');
  assert.equal(refTrace[1]!.x[A0], 'x10=0xfc8'); // 40 + 40 * 100
  for (const t of runs) assert.equal(t.jit!.stats.invalidations, 0, `${t.name}: remapping is not a code write`);
});

test('computed jumps through many targets (IBTC hits, misses and collisions) match the interpreter', () => {
  // 96 stubs, 64 bytes apart over 2 pages; the loop calls stub (i * 37) % 96 through jalr.
  const stubs: [number, Item[]][] = [];
  for (let k = 0; k < 96; k++) stubs.push([0x10000 + 64 * k, [rv.addi(A0, A0, k + 1), rv.xor(A2, A2, A0), rv.jalr(0, RA, 0)]]);
  const p: Program = {
    pc: 0x1000,
    regs: [[A1, 0n], [A3, 96n], [A4, 600n], [T2, BigInt(END)]],
    code: [...stubs, [0x1000, [
      ...li(S0, 0x10000),
      'loop:',
      rv.addi(T0, A1, 0),
      r(OP, 0, 1, T0, T0, A6), // t0 = i * 37 (a6 = 37)
      rv.remu(T0, T0, A3),
      rv.slli(T0, T0, 6),
      rv.add(T0, T0, S0),
      rv.jalr(RA, T0, 0),
      rv.addi(A1, A1, 1),
      rv.bne(A1, A4, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  p.regs!.push([A6, 37n]);
  const { refTrace } = differential(p, toExit(777));
  assert.equal(refTrace[0]!.exitCause, CAUSE_FETCH_ACCESS);
});

// ---- more exits to the interpreter and the VMM ------------------------------

test('F CSR accesses translated inline (fflags, frm, fcsr; register and immediate forms) match the interpreter', () => {
  const csr = (f3: number, rd: number, rs1: number, c: number): number => i(SYSTEM, f3, rd, rs1, c);
  const p: Program = {
    pc: 0x1000,
    regs: [[A1, 0x35n], [A4, 0x0an], [A6, 2n], [A0, 40n], [T2, BigInt(END)]],
    code: [[0x1000, [
      ...li(T0, 0x3fb99999), rv.slli(T0, T0, 32), rv.fp(0x79, 0, 2, T0, 0), // f2 = 0.1 (roughly)
      'loop:',
      csr(1, A2, A1, 3), // csrrw a2, fcsr, a1
      csr(2, A3, A4, 1), // csrrs a3, fflags, a4
      csr(3, A5, A6, 2), // csrrc a5, frm, a6
      csr(5, A7, 3, 2), // csrrwi a7, frm, 3
      csr(6, T3, 0x11, 1), // csrrsi t3, fflags, 0x11
      csr(7, T4, 2, 3), // csrrci t4, fcsr, 2
      rv.fp(0x01, 7, 1, 1, 2), // fadd.d f1, f1, f2 (dynamic rounding: frm)
      csr(2, S1, 0, 3), // frcsr s1
      rv.add(S0, S0, S1), rv.add(S0, S0, A2), rv.add(S0, S0, T4),
      csr(1, 0, 0, 1), // fsflags x0: clears the flags
      rv.addi(A1, A1, 37), rv.addi(A4, A4, 5), rv.addi(A6, A6, 1),
      rv.addi(A0, A0, -1),
      rv.bne(A0, 0, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  differential(p, toExit(333));
});

test('instret and cycle reads in translated code (the CSR helper) are exact', () => {
  const p: Program = {
    pc: 0x1000,
    regs: [[A0, 50n], [T2, BigInt(END)]],
    code: [[0x1000, [
      'loop:',
      rv.addi(A1, A1, 1),
      rv.slli(A2, A1, 1),
      rv.csrrs(A3, 0xc02, 0), // rdinstret: ends the block
      rv.add(A4, A4, A3),
      rv.csrrs(A5, 0xc00, 0), // rdcycle
      rv.sub(A6, A5, A3),
      rv.add(A7, A7, A6),
      rv.bne(A1, A0, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  const { refTrace } = differential(p, toExit(100_000));
  assert.equal(refTrace[0]!.x[A7], 'x17=0x64', 'each cycle read is 2 after the instret read (an add in between)');
});

test('MMIO loads and stores in the middle of translated blocks leave exact MMIO exits', () => {
  const MMIO = 0x70000;
  const p: Program = {
    pc: 0x1000,
    hart: { translator: (ram) => { const tr = new RemapTranslator(ram); tr.mmio.add(MMIO >>> 12); return tr; } },
    regs: [[S1, BigInt(MMIO)], [A0, 12n], [T2, BigInt(END)]],
    code: [[0x1000, [
      'loop:',
      rv.addi(A1, A1, 1),
      rv.lw(A2, S1, 4), // MMIO load
      rv.add(A3, A3, A2),
      rv.sd(A3, S1, 16), // MMIO store
      rv.lbu(A4, S1, 1),
      rv.xor(A5, A5, A4),
      rv.bne(A1, A0, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  const script: Script = (t) => {
    const out: Snapshot[] = [], h = t.hart;
    for (let n = 0; n < 1000; n++) {
      const exit = runToExit(t, 10_000);
      out.push({ ...snapshot(t, exit), extra: [h.mmioAddr, h.mmioSize, h.mmioIsWrite ? 1 : 0, h.mmioLo, h.mmioHi] });
      if (exit !== ExitReason.MMIO) return out;
      h.completeMmio(h.mmioIsWrite ? 0 : (h.mmioAddr * 7 + n) | 0, -n);
    }
    throw new Error('no end');
  };
  const { refTrace } = differential(p, script);
  assert.equal(refTrace.length, 12 * 3 + 1);
  assert.equal(refTrace[0]!.exit, ExitReason.MMIO);
  assert.equal(refTrace[0]!.pc, '0x1004');
  assert.deepEqual((refTrace[1]!.extra as number[]).slice(0, 3), [MMIO + 16, 8, 1]);
});

test('misaligned and page-straddling loads and stores in translated code', () => {
  const base = DATA + 0xffd; // an 8-byte access here straddles a page boundary
  const bytes = new Uint8Array(64);
  for (let k = 0; k < 64; k++) bytes[k] = (k * 29 + 3) & 0xff;
  const p: Program = {
    pc: 0x1000,
    regs: [[S0, BigInt(base)], [A0, 40n], [T2, BigInt(END)]],
    data: [[DATA + 0xfe0, bytes]],
    code: [[0x1000, [
      'loop:',
      rv.ld(A2, S0, 0), // straddles
      rv.lw(A3, S0, -2), // misaligned, in one page
      rv.add(A2, A2, A3),
      rv.sd(A2, S0, 4), // straddles (0x...1001)
      rv.sw(A3, S0, 2), // straddles
      i(0x03, 1, A4, S0, 3), // lh: 0x...1000, aligned
      rv.sb(A4, S0, -9),
      rv.add(A5, A5, A2),
      rv.addi(A1, A1, 1),
      rv.bne(A1, A0, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  differential(p, toExit(500));
});

/** The nops before an instruction at 0x...ffe: c.addi a0, 1 then six c.nop (from 0x...ff0). */
const STRADDLE_LEAD: Item[] = [{ h: 0x0505 }, { h: 0x0001 }, { h: 0x0001 }, { h: 0x0001 }, { h: 0x0001 }, { h: 0x0001 }, { h: 0x0001 }];

/** Script `inner`, also recording in `steps` the JIT's exits to the interpreter during it, by hart name. */
const countingInterp = (inner: Script, steps: Map<string, number>): Script => (t) => {
  const before = jitTotals.interpSteps;
  const out = inner(t);
  steps.set(t.name, jitTotals.interpSteps - before);
  return out;
};

test('an instruction straddling two pages, in a hot loop, is translated (with its second page)', () => {
  const p: Program = {
    pc: 0x1ff0,
    regs: [[A1, 30n], [T2, BigInt(END)]],
    code: [[0x1ff0, [
      'top:',
      ...STRADDLE_LEAD,
      rv.addi(A2, A2, 5), // at 0x1ffe: straddles into page 0x2000
      rv.addi(A1, A1, -1),
      rv.bne(A1, 0, 'top'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  const steps = new Map<string, number>();
  const { ref, runs } = differential(p, countingInterp(toExit(100), steps));
  assert.equal(getX(ref, A2), 150n);
  assert.equal(getX(ref, A0), 30n);
  // Translated after the interpreter's first run of it has put page 0x2000 in the fetch TLB (threshold > 0).
  for (const t of runs) if (t.jit!.opts.threshold > 0) assert.ok(steps.get(t.name)! <= 2, `${t.name}: ${steps.get(t.name)} exits to the interpreter`);
});

test('a straddling instruction follows a remapping of its second page', () => {
  // Virtual 0x2fff0..0x2ffff is identity-mapped; virtual page 0x30 maps to physical 0x31, later 0x32. The two
  // physical pages hold different upper halves of the straddling addi (immediates 5 and 100) and the same tail.
  const version = (imm: number): Uint8Array => assemble(0x2fff0, [
    'top:', ...STRADDLE_LEAD, rv.addi(A2, A2, imm), rv.addi(A1, A1, -1), rv.bne(A1, 0, 'top'), rv.jalr(0, T2, 0),
  ]);
  const v5 = version(5), v100 = version(100);
  const p: Program = {
    pc: 0x2fff0,
    hart: { translator: (ram) => { const tr = new RemapTranslator(ram); tr.map.set(0x30, 0x31); return tr; } },
    regs: [[A1, 30n], [T2, BigInt(END)]],
    code: [],
    data: [[0x2fff0, v5.subarray(0, 16)], [0x31000, v5.subarray(16)], [0x32000, v100.subarray(16)]],
  };
  const { refTrace } = differential(p, remapBetweenRuns(0x30, 0x32, [A1, 30n], 0x2fff0, 100));
  assert.equal(refTrace[0]!.x[A2], 'x12=0x96'); // 30 * 5
  assert.equal(refTrace[1]!.x[A2], 'x12=0xc4e'); // 150 + 30 * 100
});

test('a store into the second page of a straddling instruction invalidates its translation', () => {
  // Half way, the loop rewrites the straddling addi's upper half (in page 0x2000): immediate 5 becomes 100.
  const p: Program = {
    pc: 0x1ff0,
    regs: [[A1, 30n], [A3, 15n], [T0, 0x2000n], [T1, BigInt(rv.addi(A2, A2, 100) >>> 16)], [T2, BigInt(END)]],
    code: [[0x1ff0, [
      'top:',
      ...STRADDLE_LEAD,
      rv.addi(A2, A2, 5), // at 0x1ffe
      rv.addi(A1, A1, -1),
      rv.bne(A1, A3, 'skip'),
      rv.sh(T1, T0, 0),
      'skip:',
      rv.bne(A1, 0, 'top'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  const { ref, runs } = differential(p, toExit(100));
  assert.equal(getX(ref, A2), 1575n); // 15 * 5 + 15 * 100
  for (const t of runs) assert.ok(t.jit!.stats.invalidations >= 1, `${t.name}: the store invalidated nothing`);
});

test('two harts sharing one JIT: one hart\'s store into shared code is seen by the other', () => {
  const code: Item[] = [
    'loop:',
    rv.addi(A0, A0, 1), // the patcher rewrites it to addi a0, a0, 100
    rv.addi(A1, A1, -1),
    rv.bne(A1, 0, 'loop'),
    rv.beq(A5, 0, 'skip'),
    rv.sw(T1, T0, 0),
    'skip:',
    rv.addi(A1, 0, 20),
    rv.addi(A6, A6, -1),
    rv.bne(A6, 0, 'loop'),
    rv.jalr(0, T2, 0),
  ];
  const setup = (t: TestHart, patcher: boolean): void => {
    setX(t, A1, 20n); setX(t, A6, 4n); setX(t, T2, BigInt(END)); setX(t, T0, 0x1000n);
    setX(t, T1, BigInt(rv.addi(A0, A0, 100))); setX(t, A5, patcher ? 1n : 0n); setPc(t, 0x1000);
  };
  const trace = (jit?: Partial<JitOptions>): Snapshot[] => {
    const a = makeHart(jit), b = addHart(a);
    loadBytes(a, 0x1000, assemble(0x1000, code));
    setup(a, true); setup(b, false);
    const out: Snapshot[] = [];
    let doneA = false, doneB = false;
    for (let n = 0; n < 10_000 && !(doneA && doneB); n++) {
      if (!doneA) { const r = step(a, 17); out.push(snapshot(a, r)); doneA = r !== ExitReason.BUDGET; }
      if (!doneB) { const r = step(b, 23); out.push(snapshot(b, r)); doneB = r !== ExitReason.BUDGET; }
    }
    assert.ok(doneA && doneB);
    if (a.jit !== null) assert.ok(a.jit.stats.invalidations >= 1, `${a.name}: the patch invalidated`);
    return out;
  };
  const ref = trace();
  for (const cfg of JITS) assert.deepEqual(trace(cfg), ref, `jit ${JSON.stringify(cfg)}`);
});

test('with privileged CSRs, FP code is translated once the interpreter has made FS Dirty', () => {
  const p: Program = {
    pc: 0x1000,
    init: (t) => { const c = new CsrFile(t.hart.st, 0); c.mstatus = 1 << 13; t.hart.csrs = c; }, // FS = Initial, U-mode (cycle/instret: not allowed)
    regs: [[A0, 30n], [T2, BigInt(END)]],
    code: [[0x1000, [
      'loop:',
      rv.addi(A1, A1, 3),
      rv.fp(0x69, 7, 1, A1, 2), // fcvt.d.l f1, a1
      rv.fp(0x01, 7, 2, 2, 1), // fadd.d f2, f2, f1
      rv.fp(0x61, 1, A2, 2, 2), // fcvt.l.d a2, f2
      rv.csrrs(A3, 1, 0), // frflags a3 (translated only while FS is Dirty)
      rv.add(A4, A4, A2),
      rv.addi(A0, A0, -1),
      rv.bne(A0, 0, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  const { runs } = differential(p, toExit(1000));
  for (const t of runs) assert.equal(t.hart.csrs!.mstatus & MSTATUS_FS, MSTATUS_FS, `${t.name}: FS is Dirty`);
});

test('with FS Clean, FP stores are translated and leave FS Clean (setjmp saving fs0-fs11)', () => {
  const iterations = 40;
  const fsd = (rs2: number, rs1: number, imm: number): number =>
    ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | ((imm & 0x1f) << 7) | 0x27) >>> 0; // STORE-FP, width 3
  const fsw = (rs2: number, rs1: number, imm: number): number => (fsd(rs2, rs1, imm) & ~(7 << 12)) | (2 << 12); // width 2
  const p: Program = {
    pc: 0x1000,
    init: (t) => {
      const c = new CsrFile(t.hart.st, 0); c.mstatus = 2 << 13; t.hart.csrs = c; // FS = Clean (privileged spec §3.1.6.6), U-mode
      for (let r = 8; r < 10; r++) { t.hart.st.f[2 * r] = 0x11111111 * r; t.hart.st.f[2 * r + 1] = 0x01010101 * r; }
    },
    regs: [[A0, BigInt(DATA)], [A1, BigInt(iterations)], [T2, BigInt(END)]],
    code: [[0x1000, [
      'loop:',
      fsd(8, A0, 0), fsd(9, A0, 8), fsw(8, A0, 16),
      rv.addi(A0, A0, 24),
      rv.addi(A1, A1, -1),
      rv.bne(A1, 0, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  const steps = new Map<string, number>();
  const { runs } = differential(p, countingInterp(toExit(1000), steps));
  for (const t of runs) {
    assert.equal(t.hart.csrs!.mstatus & MSTATUS_FS, 2 << 13, `${t.name}: FS is still Clean`);
    assert.equal(t.ram.dv.getUint32(DATA + 24 * (iterations - 1) + 8, true), 0x11111111 * 9, `${t.name}: the last fsd of f9`);
    // Before FpAccess.STORES, each store was its own trip through the interpreter: 3 per iteration.
    if (t.jit !== null) assert.ok(steps.get(t.name)! < iterations, `${t.name}: ${steps.get(t.name)} exits to the interpreter for ${iterations} iterations`);
  }
});

/** Gives the hart a CSR file in M-mode (system VM); FS as given. */
const machineMode = (fs = 0) => (t: TestHart): void => {
  const c = new CsrFile(t.hart.st, 0);
  c.mstatus = fs << 13;
  t.hart.csrs = c;
  t.hart.st.s[S.PRIV] = 3;
};

test('CSR writes that change privileged state leave translated code where the interpreter stops', () => {
  const p: Program = {
    pc: 0x1000,
    init: machineMode(),
    regs: [[A0, 40n], [T2, BigInt(END)]],
    code: [[0x1000, [
      'loop:',
      rv.addi(A1, A1, 1),
      i(SYSTEM, 1, A2, A1, 0x340), // csrrw a2, mscratch, a1 (no privileged change)
      rv.add(A3, A3, A2),
      rv.csrrs(A4, 0x304, 0), // csrr a4, mie
      i(OP_IMM, 7, A5, A1, 3),
      rv.bne(A5, 0, 'skip'),
      i(SYSTEM, 1, 0, A1, 0x304), // csrw mie, a1: changes interrupt state, the vCPU must re-evaluate
      'skip:',
      rv.csrrs(A6, 0xb02, 0), // csrr a6, minstret
      rv.add(A7, A7, A6),
      rv.addi(A0, A0, -1),
      rv.bne(A0, 0, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  // As the vCPU does: after a run that ends with csrChanged, note it and clear it.
  const script: Script = (t) => {
    const out: Snapshot[] = [], h = t.hart;
    for (let n = 0; n < 10_000; n++) {
      const r = step(t, 50);
      if (h.csrChanged) {
        out.push({ ...snapshot(t, r), extra: ['changed', h.csrs!.mie, h.csrs!.mscratchLo] });
        h.csrChanged = false; h.csrs!.changed = false;
      }
      if (r !== ExitReason.BUDGET) { out.push({ ...snapshot(t, r), extra: [h.csrs!.mie, h.csrs!.mscratchLo] }); return out; }
    }
    throw new Error('no end');
  };
  const { refTrace } = differential(p, script);
  assert.equal(refTrace.length, 11, 'ten mie writes, then the end');
  assert.equal(refTrace[0]!.pc, '0x101c', 'stopped right after the csrw');
});

test('a minstret write followed by a read gives the same value however the run is sliced', () => {
  const p: Program = {
    pc: 0x1000,
    init: machineMode(),
    code: [[0x1000, [
      rv.addi(A1, A1, 1), rv.addi(A1, A1, 1), rv.addi(A1, A1, 1), rv.addi(A1, A1, 1), rv.addi(A1, A1, 1),
      i(SYSTEM, 1, 0, 0, 0xb02), // csrw minstret, x0
      rv.csrrs(A0, 0xb02, 0), // csrr a0, minstret
      EBREAK,
    ]]],
  };
  for (const cfg of [undefined, { threshold: 0 }]) {
    const whole = build(p, cfg), sliced = build(p, cfg);
    runToExit(whole, 100);
    runToExit(sliced, 1);
    assert.equal(getX(whole, A0), getX(sliced, A0), whole.name);
  }
});

// ---- F/D inline fast paths ----------------------------------------------------

const f64FromBits = (v: bigint): number => { const dv = new DataView(new ArrayBuffer(8)); dv.setBigUint64(0, v, true); return dv.getFloat64(0, true); };
const f64bits = (v: number): bigint => { const dv = new DataView(new ArrayBuffer(8)); dv.setFloat64(0, v, true); return dv.getBigUint64(0, true); };
const BOX = 0xffffffff00000000n;

/** An interesting F register value: doubles and NaN-boxed singles near special cases, and some unboxed singles. */
function interestingF(rng: Prng): bigint {
  const doubles = [0n, 1n << 63n, 0x3ff0000000000000n, 0xbff0000000000000n, 0x3ff8000000000000n, 0x3fb999999999999an,
    0x7fefffffffffffffn, 0x0010000000000000n, 0x000fffffffffffffn, 1n, 0x7ff0000000000000n, 0xfff0000000000000n,
    0x7ff8000000000000n, 0x7ff0000000000001n, 0x3ff0000000000001n, 0x4340000000000000n, 0x41dfffffffc00000n,
    0xc1e0000000000000n, 0x43e0000000000000n, 0x0010000000000001n, 0x001fffffffffffffn];
  const singles = [0n, 0x80000000n, 0x3f800000n, 0xbf800000n, 0x00800000n, 0x007fffffn, 1n, 0x7f7fffffn, 0x7f800000n,
    0x7fc00000n, 0x7f800001n, 0x3dcccccdn, 0x4f000000n, 0x3f800001n, 0x00800001n];
  const mant = (): bigint => rng.next64() & ((1n << 52n) - 1n);
  switch (rng.int(8)) {
    case 0: return doubles[rng.int(doubles.length)]!;
    case 1: return BOX | singles[rng.int(singles.length)]!;
    case 2: return (BigInt(rng.int(2)) << 63n) | (BigInt(0x3c0 + rng.int(0x80)) << 52n) | mant(); // near 1
    case 3: return (BigInt(rng.int(2)) << 63n) | (BigInt(rng.int(3) === 0 ? rng.int(3) : 0x7fc + rng.int(3)) << 52n) | mant(); // tiny or huge
    case 4: return BOX | (BigInt(rng.int(2)) << 31n) | (BigInt(0x70 + rng.int(0x20)) << 23n) | (rng.next64() & 0x7fffffn);
    case 5: return BOX | (BigInt(rng.int(2)) << 31n) | (BigInt(rng.int(2) === 0 ? rng.int(3) : 0xfd + rng.int(2)) << 23n) | (rng.next64() & 0x7fffffn);
    case 6: return rng.next64() & ~(1n << 63n); // unboxed as a single, a random double
    default: return f64bits((rng.int(2000) - 1000) / (1 + rng.int(7)));
  }
}

/** A random valid F/D instruction over f0..f7 and x5..x10 (rm valid; frm is kept valid by the program). */
function randomFp(rng: Prng): number {
  const f = (): number => rng.int(8), x = (): number => 5 + rng.int(6), fmt = rng.int(2);
  const rm = (): number => [0, 0, 7, 7, 1, 2, 3, 4][rng.int(8)]!;
  const opfp = (f5: number, r2: number, m: number, rd: number, rs1: number): number =>
    ((f5 << 27) | (fmt << 25) | (r2 << 20) | (rs1 << 15) | (m << 12) | (rd << 7) | 0x53) >>> 0;
  switch (rng.int(16)) {
    case 0: case 1: case 2: return opfp(rng.int(4), f(), rm(), f(), f()); // fadd, fsub, fmul, fdiv
    case 3: return opfp(0x0b, 0, rm(), f(), f()); // fsqrt
    case 4: return opfp(0x04, f(), rng.int(3), f(), f()); // fsgnj[n|x]
    case 5: return opfp(0x05, f(), rng.int(2), f(), f()); // fmin, fmax
    case 6: return opfp(0x08, 1 - fmt, rm(), f(), f()); // fcvt.s.d / fcvt.d.s
    case 7: return opfp(0x14, f(), rng.int(3), x(), f()); // fle, flt, feq
    case 8: return opfp(0x1c, 0, rng.int(2), x(), f()); // fmv.x.*, fclass
    case 9: return opfp(0x1e, 0, 0, f(), x()); // fmv.*.x
    case 10: return opfp(0x18, rng.int(4), rm(), x(), f()); // fcvt.{w,wu,l,lu}.*
    case 11: return opfp(0x1a, rng.int(4), rm(), f(), x()); // fcvt.*.{w,wu,l,lu}
    case 12: case 13: { // fmadd, fmsub, fnmsub, fnmadd
      const op = [0x43, 0x47, 0x4b, 0x4f][rng.int(4)]!;
      return ((f() << 27) | (fmt << 25) | (f() << 20) | (f() << 15) | (rm() << 12) | (f() << 7) | op) >>> 0;
    }
    case 14: return i(SYSTEM, 5, 0, [0, 1, 1, 0x1f, 0x10][rng.int(5)]!, 0x001); // csrwi fflags: NX on or off
    default: return i(SYSTEM, 5, 0, [0, 0, 0, 1, 2, 3, 4][rng.int(7)]!, 0x002); // csrwi frm (valid modes)
  }
}

test('random F/D instruction sequences (inline fast paths and the helper) match the interpreter bit for bit', () => {
  const rng = new Prng(SEED ^ 0xf10a7);
  for (let round = 0; round < 60; round++) {
    const body: number[] = [];
    for (let k = 0, n = 4 + rng.int(30); k < n; k++) body.push(randomFp(rng));
    const fregs: bigint[] = [];
    for (let k = 0; k < 8; k++) fregs.push(interestingF(rng));
    const regs: [number, bigint][] = [[17, 3n], [18, BigInt(END)]];
    for (let x = 5; x <= 10; x++) regs.push([x, rng.interesting64()]);
    const fflags = rng.int(2) === 0 ? 1 : rng.int(32), frm = [0, 0, 0, 1, 2, 3, 4][rng.int(7)]!;
    const p: Program = {
      pc: 0x1000,
      regs,
      init: (t) => {
        fregs.forEach((v, k) => { t.hart.st.f[2 * k] = Number(v & 0xffffffffn) | 0; t.hart.st.f[2 * k + 1] = Number(v >> 32n) | 0; });
        t.hart.st.s[S.FFLAGS] = fflags; t.hart.st.s[S.FRM] = frm;
      },
      code: [[0x1000, ['loop:', ...body, rv.addi(17, 17, -1), rv.bne(17, 0, 'loop'), rv.jalr(0, 18, 0)]]],
    };
    try {
      differential(p, toExit(), [{ threshold: 0 }, { threshold: 1 }]);
    } catch (e) {
      const words = body.map((w) => '0x' + (w >>> 0).toString(16).padStart(8, '0'));
      throw new Error(`round ${round} (seed ${SEED}): fflags ${fflags} frm ${frm} f ${fregs.map((v) => v.toString(16)).join(' ')}\n`
        + `${words.join(' ')}\n${(e as Error).message}`, { cause: e });
    }
  }
});

test('fused multiply-add on near-tie and cancelling operands: inline results equal softfloat\'s', () => {
  // A table of (a, b, c) triples; each round computes the four FMA forms (rm RNE, with NX set so the
  // inline path is taken when it can be) and stores the results and fflags next to the operands.
  const rng = new Prng(SEED ^ 0xf3a);
  const N = 1500, TABLE = 0x10000, OUT = 0x30000;
  const tbl = new Uint8Array(24 * N), dv = new DataView(tbl.buffer);
  const pow2 = (k: number): number => 2 ** k, unit = (): number => Number(rng.next64() >> 11n) / 2 ** 53;
  for (let n = 0; n < N; n++) {
    let a: number, b: number, c: number;
    const k1 = 1 + rng.int(52), k2 = rng.int(3) === 0 ? 53 - k1 : 1 + rng.int(52);
    const sa = pow2(rng.int(41) - 20), sb = pow2(rng.int(41) - 20), sg = (): number => (rng.int(2) === 0 ? 1 : -1);
    switch (rng.int(4)) {
      case 0: // a*b has a tie bit; c nudges it (or cancels the leading part)
        a = sg() * (1 + pow2(-k1)) * sa; b = sg() * (1 + pow2(-k2)) * sb;
        c = [0, pow2(-54 - rng.int(150)), -pow2(-54 - rng.int(150)), -a * b, -(a * b) + pow2(-60), -pow2(-k1) * sa * sb,
          -1 * sa * sb][rng.int(7)]! * (rng.int(2) === 0 ? 1 : sa * sb);
        break;
      case 1: // c almost cancels the product
        a = sg() * (1 + rng.int(1 << 30) / 2 ** 30) * sa; b = sg() * (1 + rng.int(1 << 30) / 2 ** 30) * sb;
        c = -(a * b) * (1 + sg() * pow2(-40 - rng.int(14)));
        break;
      case 2: // random magnitudes, including ones outside the inline path's ranges
        a = f64FromBits(interestingF(rng)); b = f64FromBits(interestingF(rng)); c = f64FromBits(interestingF(rng));
        break;
      default:
        a = sg() * unit() * pow2(rng.int(200) - 100); b = sg() * unit() * pow2(rng.int(200) - 100);
        c = sg() * unit() * pow2(rng.int(200) - 100);
        break;
    }
    dv.setFloat64(24 * n, a, true); dv.setFloat64(24 * n + 8, b, true); dv.setFloat64(24 * n + 16, c, true);
  }
  const fma = (op: number, rd: number): number => ((3 << 27) | (1 << 25) | (2 << 20) | (1 << 15) | (0 << 12) | (rd << 7) | op) >>> 0;
  const fld = (rd: number, rs: number, imm: number): number => i(0x07, 3, rd, rs, imm);
  const fsd = (rs2: number, rs1: number, imm: number): number =>
    ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | ((imm & 0x1f) << 7) | 0x27) >>> 0;
  const p: Program = {
    pc: 0x1000,
    regs: [[S0, BigInt(TABLE)], [S1, BigInt(OUT)], [A0, BigInt(N)], [T2, BigInt(END)]],
    data: [[TABLE, tbl]],
    code: [[0x1000, [
      'loop:',
      i(SYSTEM, 5, 0, 1, 0x001), // csrwi fflags, NX
      fld(1, S0, 0), fld(2, S0, 8), fld(3, S0, 16),
      fma(0x43, 4), fma(0x47, 5), fma(0x4b, 6), fma(0x4f, 7),
      fsd(4, S1, 0), fsd(5, S1, 8), fsd(6, S1, 16), fsd(7, S1, 24),
      rv.csrrs(A2, 0x001, 0), rv.sd(A2, S1, 32),
      rv.addi(S0, S0, 24), rv.addi(S1, S1, 40),
      rv.addi(A0, A0, -1),
      rv.bne(A0, 0, 'loop'),
      rv.jalr(0, T2, 0),
    ]]],
  };
  // Count the helper's calls: some FMAs must take the inline path, some the helper.
  let helperCalls = 0;
  const countHelper: Program = {
    ...p,
    init: (t) => {
      const j = t.jit as unknown as { fpHelper: (insn: number) => number } | null;
      if (j === null) return;
      const fp = j.fpHelper;
      j.fpHelper = (insn: number): number => { helperCalls++; return fp(insn); };
    },
  };
  differential(countHelper, toExit(100_000), [{ threshold: 0 }]);
  console.log(`jit-engine: FMA helper calls ${helperCalls} of ${4 * N} (the rest inline)`);
  assert.ok(helperCalls > 0 && helperCalls < 4 * N * 0.9, `FMA helper calls: ${helperCalls} of ${4 * N}`);
});

test('fcvt.d.w with a reserved rounding mode is an illegal instruction in translated code too', () => {
  for (const [rm, frm] of [[5, 0], [6, 0], [7, 5]] as const) {
    const p: Program = {
      pc: 0x1000,
      regs: [[A0, 7n]],
      init: (t) => { t.hart.st.s[S.FRM] = frm; },
      code: [[0x1000, [rv.fp(0x69, rm, 1, A0, 0), EBREAK]]], // fcvt.d.w f1, a0
    };
    const { refTrace } = differential(p, toExit(), [{ threshold: 0 }]);
    assert.equal(refTrace[0]!.exitCause, CAUSE_ILLEGAL_INSTRUCTION);
  }
});
