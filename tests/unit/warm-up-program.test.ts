/**
 * The process-VM spare's warm-up program (src/process/warm-up-program.ts,
 * src/cli/exec-warm-up.ts): its compressed encodings expand to the
 * instructions they name (the interpreter's own expander as the check),
 * the ELF runs to exit status 0 under qemu-riscv64 (the oracle: a bad
 * header, encoding or system call would end it otherwise) and under tsvm
 * exec, and the spare's in-process run returns 0 twice in one process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expandCompressed, iType, rType, sType } from '../../src/cpu/decode-compressed.js';
import { cAdd, cAddi, cJr, cLdsp, cLi, cMv, cSdsp, warmUpElf } from '../../src/process/warm-up-program.js';
import { warmUpProcessVm } from '../../src/cli/exec-warm-up.js';
import { runQemu, runTsvm } from '../helpers/guest-run.js';

const OP_IMM = 0x13, OP = 0x33, LOAD = 0x03, STORE = 0x23, JALR = 0x67, SP = 2;

test('the compressed encodings expand to the instructions they stand for', () => {
  assert.equal(expandCompressed(cLi(6, 3)), iType(3, 0, 0, 6, OP_IMM), 'c.li t1, 3 = addi t1, zero, 3');
  assert.equal(expandCompressed(cLi(11, -7)), iType(-7, 0, 0, 11, OP_IMM), 'c.li a1, -7');
  assert.equal(expandCompressed(cAddi(8, -1)), iType(-1, 8, 0, 8, OP_IMM), 'c.addi s0, -1');
  assert.equal(expandCompressed(cAddi(10, 31)), iType(31, 10, 0, 10, OP_IMM), 'c.addi a0, 31');
  assert.equal(expandCompressed(cMv(10, 8)), rType(0, 8, 0, 0, 10, OP), 'c.mv a0, s0 = add a0, zero, s0');
  assert.equal(expandCompressed(cAdd(17, 16)), rType(0, 16, 17, 0, 17, OP), 'c.add a7, a6');
  assert.equal(expandCompressed(cJr(1)), iType(0, 1, 0, 0, JALR), 'c.jr ra = jalr zero, 0(ra)');
  for (const off of [0, 8, 40, 264, 504]) {
    assert.equal(expandCompressed(cLdsp(12, off)), iType(off, SP, 3, 12, LOAD), `c.ldsp a2, ${off}(sp)`);
    assert.equal(expandCompressed(cSdsp(10, off)), sType(off, 10, SP, 3, STORE), `c.sdsp a0, ${off}(sp)`);
  }
});

test('the warm-up ELF exits 0 under qemu-riscv64 and under tsvm exec; the spare\'s run returns 0, twice', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-warm-up-'));
  try {
    const file = path.join(dir, 'warm-up');
    fs.writeFileSync(file, warmUpElf(), { mode: 0o755 });
    const q = await runQemu(file);
    assert.deepEqual([q.status, q.stdout.length], [0, 0], `qemu-riscv64: ${q.stderr}`);
    const t = await runTsvm(file);
    assert.deepEqual([t.status, t.stdout.length], [0, 0], `tsvm exec: ${t.stderr}`);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  assert.equal(warmUpProcessVm(), 0);
  assert.equal(warmUpProcessVm(), 0);
});
