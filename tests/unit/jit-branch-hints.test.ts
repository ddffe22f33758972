/**
 * The translator's branch hints (src/jit/codegen.ts, wasm-writer.ts
 * moduleBytes; src/host/wasm-features.ts): every hint in a unit's
 * "metadata.code.branch_hint" section points at an `if` of the unit's
 * function body, in increasing order, as the branch-hinting proposal's
 * binary format requires, and there is one per hinted `if` of the listing.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble, rv, A0, A1, A2, A3, RA, type Item } from '../helpers/jit-hart.js';
import { planUnit, FpAccess } from '../../src/jit/block-decoder.js';
import { generateUnit } from '../../src/jit/codegen.js';
import { enableWasmBranchHints } from '../../src/host/wasm-features.js';

/** Reads an unsigned LEB128 at `p.at` of `b`, advancing it. */
function leb(b: Uint8Array, p: { at: number }): number {
  let v = 0, shift = 0;
  for (;;) {
    const x = b[p.at++]!;
    v += (x & 0x7f) * 2 ** shift;
    if ((x & 0x80) === 0) return v;
    shift += 7;
  }
}

/** The hints (offset, value) of function 0 and that function's body (locals included, size excluded). */
function parse(bytes: Uint8Array): { hints: [number, number][]; body: Uint8Array; hintsBeforeCode: boolean } {
  const p = { at: 8 };
  let hints: [number, number][] = [], body: Uint8Array = new Uint8Array(0), sawCode = false, hintsBeforeCode = false;
  while (p.at < bytes.length) {
    const id = bytes[p.at++]!, size = leb(bytes, p), end = p.at + size;
    if (id === 0) {
      const n = leb(bytes, p), name = new TextDecoder().decode(bytes.subarray(p.at, p.at + n));
      p.at += n;
      if (name === 'metadata.code.branch_hint') {
        hintsBeforeCode = !sawCode;
        assert.equal(leb(bytes, p), 1, 'hints for one function');
        assert.equal(leb(bytes, p), 0, 'function 0');
        const count = leb(bytes, p);
        hints = [];
        for (let k = 0; k < count; k++) {
          const off = leb(bytes, p);
          assert.equal(leb(bytes, p), 1, 'a hint is one byte');
          hints.push([off, bytes[p.at++]!]);
        }
      }
    } else if (id === 10) {
      sawCode = true;
      assert.equal(leb(bytes, p), 1);
      const n = leb(bytes, p);
      body = bytes.subarray(p.at, p.at + n);
    }
    p.at = end;
  }
  return { hints, body, hintsBeforeCode };
}

test('branch hints point at the unit\'s if instructions, in order, one per hinted if', () => {
  const items: Item[] = [
    'loop:', rv.ld(A2, A0, 0), rv.sd(A2, A0, 8), rv.lbu(A3, A1, 3), rv.addi(A1, A1, -1), rv.bne(A1, 0, 'loop'),
    rv.jalr(0, RA, 0),
  ];
  const buf = new Uint8Array(3 * 4096);
  buf.set(assemble(0, items), 4096);
  const code = generateUnit(planUnit(new DataView(buf.buffer), 4096, 0, FpAccess.ALL), true);
  const { hints, body, hintsBeforeCode } = parse(code.bytes);
  assert.ok(hintsBeforeCode, 'the hint section comes before the code section');
  const hinted = code.listing!.filter((l) => /^\s*if .*;; (un)?likely$/.test(l)).length;
  assert.ok(hints.length >= 8, `budget check, loads, stores, exits are hinted (${hints.length})`);
  assert.equal(hints.length, hinted, 'one hint per hinted if of the listing');
  let last = -1;
  for (const [off, v] of hints) {
    assert.ok(off > last, 'offsets increase');
    last = off;
    assert.equal(body[off], 0x04, `offset ${off} is an if`);
    assert.ok(v === 0 || v === 1);
  }
  // The budget check at the block's start is the first hint, and says "unlikely".
  assert.equal(hints[0]![1], 0);
  enableWasmBranchHints();
  assert.ok(WebAssembly.validate(code.bytes));
  assert.doesNotThrow(() => new WebAssembly.Module(code.bytes), 'V8 compiles the module with hints enabled');
});
