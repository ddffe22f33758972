/**
 * Threshold 0 (`--jit-threshold=0`) unit planning (src/jit/engine.ts,
 * block-decoder.ts planUnit): a start inside a block a live unit already
 * translates (where a trap handler returns to) is interpreted to the
 * block's end instead of becoming a module of its own, and the code after
 * a call joins the caller's unit. Results are compared with the
 * interpreter's.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeHart, assemble, loadBytes, setX, getX, setPc, runToExit, rv, EBREAK, T0, T1, A0, RA, CODE, type TestHart, type Item } from '../helpers/jit-hart.js';

/** Loads `items` at CODE on an interpreter hart and a threshold-0 JIT hart, with registers `regs`, and runs both to the ebreak. */
function both(items: Item[], regs: [number, bigint][]): [TestHart, TestHart] {
  const ts = [makeHart(), makeHart({ threshold: 0 })] as [TestHart, TestHart];
  for (const t of ts) {
    loadBytes(t, CODE, assemble(CODE, items));
    for (const [r, v] of regs) setX(t, r, v);
    setPc(t, CODE);
    runToExit(t);
  }
  return ts;
}

test('threshold 0: an entry in the middle of a translated block is interpreted, not compiled into a unit', () => {
  // a0 += 1, 2, 4, then jump to the next page, which counts t0 down and jumps back through t1
  // into the middle of the first block (at "mid"), as a trap handler's return would. The jalr
  // is in another page, so its target is not learned into a unit (see jit-jalr-learn.test.ts).
  const items: Item[] = [
    rv.addi(A0, A0, 1), rv.addi(A0, A0, 2), 'mid:', rv.addi(A0, A0, 4), rv.jal(0, 'far'),
    ...new Array<number>(1020).fill(rv.addi(0, 0, 0)),
    'far:', rv.addi(T0, T0, -1), rv.beq(T0, 0, 'end'), rv.jalr(0, T1, 0), 'end:', EBREAK,
  ];
  const mid = CODE + 8;
  const [ref, jit] = both(items, [[T0, 3n], [T1, BigInt(mid)]]);
  assert.equal(getX(ref, A0), 7n + 4n + 4n);
  assert.equal(getX(jit, A0), getX(ref, A0));
  assert.equal(getX(jit, T0), 0n);
  assert.equal(jit.jit!.stats.unitsCompiled, 2, 'two units (one per page): the entry at "mid" is inside the first one\'s block');
});

test('threshold 0: the code after a call joins the caller\'s unit', () => {
  // Three calls to a function in the same page; each return lands after its call.
  const items: Item[] = [
    rv.jal(RA, 'f'), rv.addi(A0, A0, 10),
    rv.jal(RA, 'f'), rv.addi(A0, A0, 100),
    rv.jal(RA, 'f'), rv.addi(A0, A0, 1000),
    EBREAK,
    'f:', rv.addi(A0, A0, 1), rv.jalr(0, RA, 0),
  ];
  const [ref, jit] = both(items, []);
  assert.equal(getX(ref, A0), 1113n);
  assert.equal(getX(jit, A0), 1113n);
  // The caller's unit holds its three return points; the function is reached by a direct jal, so it is in it too.
  // (Its return, a jalr into the same page, makes the unit be translated again with the learned targets.)
  const st = jit.jit!.stats;
  assert.equal(st.unitsCompiled - st.rebuilds, 1);
});
