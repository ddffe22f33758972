/**
 * Unit tests for the interpreter warm-up (src/machine/warm-up.ts): it must
 * really execute what it claims to (a warm-up whose instructions all fault
 * on fetch warms nothing), and it must be deterministic.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWarmUp } from '../../src/machine/warm-up.js';
import { defaultJitConfig } from '../../src/jit/jit-config.js';

/** Major opcodes (inst[6:2], unprivileged spec Table 70) the interpreter implements. */
const MAJOR = {
  LOAD: 0x00, LOAD_FP: 0x01, MISC_MEM: 0x03, OP_IMM: 0x04, AUIPC: 0x05, OP_IMM_32: 0x06, STORE: 0x08, STORE_FP: 0x09,
  AMO: 0x0b, OP: 0x0c, LUI: 0x0d, OP_32: 0x0e, MADD: 0x10, MSUB: 0x11, NMSUB: 0x12, NMADD: 0x13, OP_FP: 0x14,
  BRANCH: 0x18, JALR: 0x19, JAL: 0x1b, SYSTEM: 0x1c,
};

test('the warm-up retires instructions of every major opcode and every compressed quadrant', () => {
  const r = runWarmUp();
  for (const [name, bit] of Object.entries(MAJOR)) assert.ok((r.retiredOpcodes & (1 << bit)) !== 0, `${name} retired`);
  assert.equal(r.retiredQuadrants, 0b111, 'quadrants 0, 1 and 2');
  // Most of the set is legal; the rest (illegal funct fields, faulting and MMIO accesses) exits on purpose.
  assert.ok(r.retired > 4000 && r.retired < r.runs, `${r.retired} of ${r.runs} retired`);
});

test('the warm-up is deterministic', () => {
  assert.deepEqual(runWarmUp(), runWarmUp());
});

test('the warm-up runs its loop to the end through the JIT engine', () => {
  const r = runWarmUp();
  assert.equal(r.engineLoops, defaultJitConfig().enabled ? 4096 : 0);
});
