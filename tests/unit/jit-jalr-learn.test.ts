/**
 * Learned jalr targets (src/jit/engine.ts learnJalr, block-decoder.ts
 * planUnit, codegen.ts jalrInUnit): when a translated jalr jumps to a block
 * in its own page, the engine remembers the target and translates the unit
 * again with it, so the next jumps there stay inside the unit (a switch's
 * jump table, a function's returns). Results are compared with the
 * interpreter's, and the listings show which targets the final unit
 * dispatches to itself.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { i, OP_IMM } from '../helpers/asm.js';
import {
  makeHart, assemble, loadBytes, setX, getX, setPc, runToExit, li, rv, EBREAK, T0, T1, A0, A1, A4, A5, A6, S0, RA, CODE,
  type TestHart, type Item,
} from '../helpers/jit-hart.js';

const andi = (rd: number, rs: number, imm: number): number => i(OP_IMM, 7, rd, rs, imm);

/** Runs `items` (at CODE) with registers `regs` on the interpreter and on a JIT with `threshold`; returns both and the JIT's listings. */
function both(items: Item[], regs: [number, bigint][], threshold: number): { ref: TestHart; jit: TestHart; listings: string[][] } {
  const ref = makeHart(), jit = makeHart({ threshold });
  const listings: string[][] = [];
  jit.jit!.onListing = (_pc, l) => { listings.push(l); };
  for (const t of [ref, jit]) {
    loadBytes(t, CODE, assemble(CODE, items));
    for (const [r, v] of regs) setX(t, r, v);
    setPc(t, CODE);
    runToExit(t, 97);
  }
  return { ref, jit, listings };
}

/** The page offsets the last listing's in-unit jalr dispatch covers, or [] if it has none. */
function inUnitTargets(listing: string[]): string[] {
  const line = listing.find((l) => l.includes(';; jalr in unit:'));
  return line === undefined ? [] : line.split('jalr in unit:')[1]!.trim().split(' ');
}

// A switch over 4 handlers (8 bytes apart) through jalr. For the first 400 iterations only
// handlers 0 and 3 run; then all four do (1 and 2 lie between the learned targets: the
// dispatch table's miss path must take them to the IBTC, which learns them too).
const SWITCH: Item[] = [
  rv.jal(0, 'start'),
  'h0:', rv.addi(A0, A0, 1), rv.jal(0, 'next'),
  'h1:', rv.xor(A0, A0, A1), rv.jal(0, 'next'),
  'h2:', rv.add(A0, A0, A0), rv.jal(0, 'next'),
  'h3:', rv.addi(A0, A0, -3), rv.jal(0, 'next'),
  'start:', ...li(S0, CODE + 4),
  'loop:',
  rv.blt(A1, A6, 'phase1'),
  andi(T0, A1, 3), rv.jal(0, 'go'),
  'phase1:', andi(T0, A1, 1), rv.slli(T1, T0, 1), rv.add(T0, T0, T1), // 0 or 3
  'go:', rv.slli(T0, T0, 3), rv.add(T0, T0, S0), rv.jalr(0, T0, 0),
  'next:', rv.addi(A1, A1, 1), rv.bne(A1, A4, 'loop'),
  EBREAK,
];

test('a switch through a jump table in one page: the handlers join the dispatching unit, and results match the interpreter', () => {
  const { ref, jit, listings } = both(SWITCH, [[A4, 1000n], [A6, 400n]], 8);
  assert.equal(getX(ref, A1), 1000n);
  assert.equal(getX(jit, A0), getX(ref, A0));
  assert.equal(getX(jit, A1), 1000n);
  const st = jit.jit!.stats;
  assert.ok(st.rebuilds >= 2, `the unit was rebuilt for both phases (${st.rebuilds} rebuilds)`);
  assert.ok(st.rebuilds <= 6, 'rebuilds are bounded');
  // The last unit with the dispatch covers all four handlers (page offsets 0x4, 0xc, 0x14, 0x1c).
  const last = [...listings].reverse().find((l) => inUnitTargets(l).length > 0);
  assert.ok(last !== undefined, 'some unit dispatches its jalr to its own blocks');
  assert.deepEqual(inUnitTargets(last), ['+0x4', '+0xc', '+0x14', '+0x1c']);
});

test('a switch through a jump table matches the interpreter at threshold 0 and under small slices', () => {
  for (const threshold of [0, 1, 50]) {
    const { ref, jit } = both(SWITCH, [[A4, 700n], [A6, 200n]], threshold);
    assert.equal(getX(jit, A0), getX(ref, A0), `threshold ${threshold}`);
    assert.equal(jit.hart.st.instret, ref.hart.st.instret, `threshold ${threshold}: same instruction count`);
  }
});

test('returns of a function in the same page land in the caller\'s unit after learning', () => {
  // A loop calling f from three places; f's return (jalr ra) goes to three return points.
  const items: Item[] = [
    'loop:',
    rv.jal(RA, 'f'), rv.addi(A0, A0, 10),
    rv.jal(RA, 'f'), rv.addi(A0, A0, 100),
    rv.jal(RA, 'f'), rv.addi(A0, A0, 1000),
    rv.addi(A1, A1, 1), rv.bne(A1, A4, 'loop'),
    EBREAK,
    'f:', rv.add(A5, A5, A0), rv.jalr(0, RA, 0),
  ];
  const { ref, jit, listings } = both(items, [[A4, 300n]], 4);
  assert.equal(getX(jit, A0), getX(ref, A0));
  assert.equal(getX(jit, A5), getX(ref, A5));
  const last = [...listings].reverse().find((l) => inUnitTargets(l).length > 0);
  assert.ok(last !== undefined, 'the return is dispatched inside a unit');
  assert.deepEqual(inUnitTargets(last), ['+0x4', '+0xc', '+0x14'], 'all three return points');
});

test('a jalr to another page learns nothing (no rebuilds)', () => {
  const items: Item[] = [...li(S0, CODE + 0x1000), 'loop:', rv.jalr(RA, S0, 0), rv.addi(A1, A1, 1), rv.bne(A1, A4, 'loop'), EBREAK];
  const far: Item[] = [rv.addi(A0, A0, 3), rv.jalr(0, RA, 0)];
  const ref = makeHart(), jit = makeHart({ threshold: 2 });
  for (const t of [ref, jit]) {
    loadBytes(t, CODE, assemble(CODE, items));
    loadBytes(t, CODE + 0x1000, assemble(CODE + 0x1000, far));
    setX(t, A4, 200n);
    setPc(t, CODE);
    runToExit(t);
  }
  assert.equal(getX(jit, A0), 600n);
  assert.equal(getX(jit, A0), getX(ref, A0));
  assert.equal(jit.jit!.stats.rebuilds, 0);
});
