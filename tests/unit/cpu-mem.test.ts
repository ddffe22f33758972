/**
 * Loads/stores (incl. misaligned and page-straddling), branches and jumps,
 * LR/SC and AMOs, compressed instructions, CSRs and illegal encodings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BareHart, CODE, DATA } from '../helpers/bare-hart.js';
import { Prng } from '../helpers/prng.js';
import { r, i, s, b, j, OP_IMM, LOAD, STORE, AMO, JALR, SYSTEM, ECALL } from '../helpers/asm.js';
import { ExitReason, CAUSE_ILLEGAL_INSTRUCTION, CAUSE_USER_ECALL, CAUSE_MISALIGNED_STORE, CAUSE_LOAD_ACCESS } from '../../src/cpu/hart.js';
import { RVC_TABLE, expandCompressed } from '../../src/cpu/decode-compressed.js';

const SEED = Number(process.env.CPU_SEED ?? 20261121);
console.log('cpu-mem seed', SEED);

test('loads sign- and zero-extend every width, at any alignment and across pages', () => {
  const h = new BareHart();
  const bytes = [0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x09];
  for (const base of [DATA, DATA + 3, 0x3ffd]) { // 0x3ffd: an 8-byte load straddles the 0x4000 page boundary
    bytes.forEach((v, k) => { h.ram.u8[base + k] = v; });
    h.set(1, BigInt(base));
    const loads: [number, bigint][] = [
      [0, -0x7fn], [4, 0x81n], [1, BigInt.asIntN(16, 0x9281n)], [5, 0x9281n],
      [2, BigInt.asIntN(32, 0xb4a39281n)], [6, 0xb4a39281n], [3, BigInt.asIntN(64, 0xf8e7d6c5b4a39281n)],
    ];
    for (const [f3, want] of loads) {
      h.exec([i(LOAD, f3, 2, 1, 0), ECALL]);
      assert.equal(h.get(2), want, `load f3=${f3} at 0x${base.toString(16)}`);
    }
  }
});

test('stores write exactly their width, including page-straddling ones', () => {
  const h = new BareHart();
  for (const base of [DATA + 1, 0x4ffe]) {
    h.ram.u8.fill(0xee, base - 4, base + 12);
    h.set(1, BigInt(base)); h.set(2, 0x1122334455667788n);
    h.exec([s(STORE, 3, 1, 2, 0), s(STORE, 2, 1, 2, 8), s(STORE, 1, 1, 2, -2), s(STORE, 0, 1, 2, -3), ECALL]);
    const got = Array.from(h.ram.u8.subarray(base - 4, base + 12));
    assert.deepEqual(got, [0xee, 0x88, 0x88, 0x77, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55]);
  }
});

test('an access outside RAM faults precisely without retiring', () => {
  const h = new BareHart();
  h.set(1, 0x7fff_fff0n); h.set(2, 5n);
  const res = h.exec([i(OP_IMM, 0, 2, 0, 9), i(LOAD, 3, 2, 1, 0x10), ECALL]);
  assert.equal(res.exit, ExitReason.EXCEPTION);
  assert.equal(res.cause, CAUSE_LOAD_ACCESS);
  assert.equal(res.pc, CODE + 4);
  assert.equal(res.tval, 0x8000_0000n);
  assert.equal(h.get(2), 9n, 'the first instruction retired, the faulting one did not write');
});

test('branches compare signed and unsigned 64-bit values', () => {
  const h = new BareHart(), rng = new Prng(SEED);
  const conds: [number, (a: bigint, c: bigint) => boolean][] = [
    [0, (a, c) => a === c], [1, (a, c) => a !== c], [4, (a, c) => a < c], [5, (a, c) => a >= c],
    [6, (a, c) => BigInt.asUintN(64, a) < BigInt.asUintN(64, c)], [7, (a, c) => BigInt.asUintN(64, a) >= BigInt.asUintN(64, c)],
  ];
  for (let k = 0; k < 400; k++) {
    const a = rng.interesting64(), c = k % 5 === 0 ? a : rng.interesting64();
    for (const [f3, ref] of conds) {
      h.set(1, a); h.set(2, c); h.set(3, 0n);
      // branch over "addi x3, x0, 1" when taken
      h.exec([b(f3, 1, 2, 8), i(OP_IMM, 0, 3, 0, 1), ECALL]);
      assert.equal(h.get(3), ref(a, c) ? 0n : 1n, `branch f3=${f3} ${a} ${c}`);
    }
  }
});

test('jal and jalr link the next pc and clear bit 0 of the target', () => {
  const h = new BareHart();
  h.set(5, BigInt(CODE + 13)); // jalr target CODE+12 after clearing bit 0 (offset 0)
  const res = h.exec([j(1, 8), ECALL, i(JALR, 0, 2, 5, 0), ECALL, ECALL]);
  assert.equal(res.cause, CAUSE_USER_ECALL);
  assert.equal(res.pc, CODE + 12);
  assert.equal(h.get(1), BigInt(CODE + 4));
  assert.equal(h.get(2), BigInt(CODE + 12));
});

test('LR/SC succeed only on a matching reservation; AMOs return the old value', () => {
  const h = new BareHart();
  h.set(1, BigInt(DATA)); h.set(2, 77n);
  h.ram.dv.setBigInt64(DATA, -5n, true);
  // lr.d x3,(x1); sc.d x4,x2,(x1); sc.d x5,x2,(x1)  (the second SC has no reservation)
  h.exec([r(AMO, 3, 0x02 << 2, 3, 1, 0), r(AMO, 3, 0x03 << 2, 4, 1, 2), r(AMO, 3, 0x03 << 2, 5, 1, 2), ECALL]);
  assert.equal(h.get(3), -5n);
  assert.equal(h.get(4), 0n);
  assert.equal(h.get(5), 1n);
  assert.equal(h.ram.dv.getBigInt64(DATA, true), 77n);
  const amos: [number, (o: bigint, v: bigint) => bigint][] = [
    [0x00, (o, v) => o + v], [0x01, (_o, v) => v], [0x04, (o, v) => o ^ v], [0x0c, (o, v) => o & v], [0x08, (o, v) => o | v],
    [0x10, (o, v) => (o < v ? o : v)], [0x14, (o, v) => (o > v ? o : v)],
    [0x18, (o, v) => (BigInt.asUintN(64, o) < BigInt.asUintN(64, v) ? o : v)],
    [0x1c, (o, v) => (BigInt.asUintN(64, o) > BigInt.asUintN(64, v) ? o : v)],
  ];
  const rng = new Prng(SEED + 7);
  for (const [f5, ref] of amos) {
    for (let k = 0; k < 50; k++) {
      const old = rng.interesting64(), v = rng.interesting64();
      h.ram.dv.setBigInt64(DATA, old, true); h.set(2, v);
      h.exec([r(AMO, 3, f5 << 2, 3, 1, 2), ECALL]);
      assert.equal(h.get(3), old);
      assert.equal(h.ram.dv.getBigInt64(DATA, true), BigInt.asIntN(64, ref(old, v)), `amo.d ${f5}`);
      // word form: operates on the low 32 bits, result sign-extended
      h.ram.dv.setBigInt64(DATA, old, true);
      h.exec([r(AMO, 2, f5 << 2, 3, 1, 2), ECALL]);
      const o32 = BigInt.asIntN(32, old), v32 = BigInt.asIntN(32, v);
      assert.equal(h.get(3), o32);
      assert.equal(h.ram.dv.getInt32(DATA, true), Number(BigInt.asIntN(32, ref(o32, v32))), `amo.w ${f5}`);
    }
  }
  h.set(1, BigInt(DATA + 4));
  const mis = h.exec([r(AMO, 3, 0, 3, 1, 2), ECALL]);
  assert.equal(mis.cause, CAUSE_MISALIGNED_STORE);
});

test('every compressed encoding expands to a legal 32-bit form or is rejected', () => {
  // Spot checks against hand-assembled equivalents (RVC spec listings).
  assert.equal(expandCompressed(0x4505) >>> 0, i(OP_IMM, 0, 10, 0, 1)); // c.li a0,1
  assert.equal(expandCompressed(0x1141) >>> 0, i(OP_IMM, 0, 2, 2, -16)); // c.addi sp,-16
  assert.equal(expandCompressed(0xe406) >>> 0, s(STORE, 3, 2, 1, 8)); // c.sdsp ra,8(sp)
  assert.equal(expandCompressed(0x60a2) >>> 0, i(LOAD, 3, 1, 2, 8)); // c.ldsp ra,8(sp)
  assert.equal(expandCompressed(0x8082) >>> 0, i(JALR, 0, 0, 1, 0)); // c.jr ra (ret)
  assert.equal(expandCompressed(0x9002) >>> 0, 0x00100073); // c.ebreak
  assert.equal(expandCompressed(0x0000), 0); // the all-zero parcel is illegal
  assert.equal(expandCompressed(0x6001), 0); // c.lui x0? no: c.lui with nzimm=0 is reserved
  assert.equal(expandCompressed(0x2001), 0); // c.addiw with rd=0 is reserved
  assert.equal(expandCompressed(0x4002), 0); // c.lwsp with rd=0 is reserved
  let legal = 0;
  for (let c = 0; c < 65536; c++) {
    const w = RVC_TABLE[c]!;
    if ((c & 3) === 3) { assert.equal(w, 0); continue; }
    if (w === 0) continue;
    legal++;
    assert.equal(w & 3, 3, `expansion of 0x${c.toString(16)} must be a 32-bit instruction`);
  }
  assert.ok(legal > 45000, `legal compressed patterns: ${legal}`);
});

test('compressed code runs: a loop summing 1..10 with c.li/c.addi/c.add/c.bnez', () => {
  const h = new BareHart();
  // c.li a0,0; c.li a1,10; loop: c.add a0,a1; c.addi a1,-1; c.bnez a1,loop; ecall (as two halves)
  const res = h.exec([0x4501, 0x45a9, 0x952e, 0x15fd, 0xfdf5, 0x0073, 0x0000], true);
  assert.equal(res.cause, CAUSE_USER_ECALL);
  assert.equal(h.get(10), 55n);
});

test('illegal encodings trap with the instruction bits in tval; nothing executes', () => {
  const h = new BareHart();
  for (const bad of [0x00000000, 0xffffffff, r(0x33, 0, 0x7f, 1, 2, 3), i(OP_IMM, 1, 1, 2, 0x7ff), r(0x2f, 1, 0, 1, 2, 3)]) {
    h.set(1, 99n);
    const res = h.exec([bad, ECALL]);
    assert.equal(res.exit, ExitReason.EXCEPTION);
    assert.equal(res.cause, CAUSE_ILLEGAL_INSTRUCTION, `0x${bad.toString(16)}`);
    assert.equal(res.pc, CODE);
    assert.equal(h.get(1), 99n);
  }
  const res = h.exec([0x0000, 0x0000], true);
  assert.equal(res.cause, CAUSE_ILLEGAL_INSTRUCTION);
  assert.equal(res.tval, 0n);
});

test('CSRs: fcsr fields alias fflags/frm; counters are read-only; unknown CSRs are illegal', () => {
  const h = new BareHart();
  h.set(1, 0xffn);
  // csrrw x2, fcsr, x1 ; csrr x3, fflags ; csrr x4, frm ; csrrs x5, instret, x0
  const res = h.exec([i(SYSTEM, 1, 2, 1, 0x003), i(SYSTEM, 2, 3, 0, 0x001), i(SYSTEM, 2, 4, 0, 0x002), i(SYSTEM, 2, 5, 0, 0xc02), ECALL]);
  assert.equal(res.cause, CAUSE_USER_ECALL);
  assert.equal(h.get(3), 0x1fn);
  assert.equal(h.get(4), 0x7n);
  assert.ok(h.get(5) >= 3n);
  assert.equal(h.exec([i(SYSTEM, 1, 0, 1, 0xc00), ECALL]).cause, CAUSE_ILLEGAL_INSTRUCTION, 'write to cycle');
  assert.equal(h.exec([i(SYSTEM, 2, 1, 0, 0x300), ECALL]).cause, CAUSE_ILLEGAL_INSTRUCTION, 'mstatus from user level');
});
