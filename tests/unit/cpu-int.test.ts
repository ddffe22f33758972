/**
 * Integer instruction classes (RV64I, M, Zba, Zbb, Zbs, *W forms) checked
 * against a BigInt reference model on seeded random and corner operands.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BareHart } from '../helpers/bare-hart.js';
import { Prng } from '../helpers/prng.js';
import { r, i, OP, OP_32, OP_IMM, OP_IMM_32, ECALL } from '../helpers/asm.js';

const SEED = Number(process.env.CPU_SEED ?? 20261121);
console.log('cpu-int seed', SEED);

const M64 = (1n << 64n) - 1n;
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
const s32 = (v: bigint): bigint => BigInt.asIntN(32, v);
const u32 = (v: bigint): bigint => BigInt.asUintN(32, v);
const sx32 = (v: bigint): bigint => s64(s32(v));
const clz = (v: bigint, w: number): bigint => { let n = 0n; for (let k = w - 1; k >= 0; k--) { if ((v >> BigInt(k)) & 1n) break; n++; } return n; };
const ctz = (v: bigint, w: number): bigint => { let n = 0n; for (let k = 0; k < w; k++) { if ((v >> BigInt(k)) & 1n) break; n++; } return n; };
const pop = (v: bigint): bigint => { let n = 0n; while (v) { n += v & 1n; v >>= 1n; } return n; };
const rotr = (v: bigint, n: bigint, w: bigint): bigint => {
  const m = (1n << w) - 1n; v &= m; n %= w; return ((v >> n) | (v << (w - n))) & m;
};
const divS = (a: bigint, b: bigint, w: number): bigint => {
  const min = -(1n << BigInt(w - 1));
  if (b === 0n) return -1n;
  if (a === min && b === -1n) return a;
  return a / b; // BigInt division truncates toward zero, like RISC-V
};
const remS = (a: bigint, b: bigint, w: number): bigint => {
  const min = -(1n << BigInt(w - 1));
  if (b === 0n) return a;
  if (a === min && b === -1n) return 0n;
  return a % b;
};

type Ref = (a: bigint, b: bigint) => bigint;
/** [name, opcode, funct3, funct7, reference on signed 64-bit operands]. */
const RTYPE: [string, number, number, number, Ref][] = [
  ['add', OP, 0, 0, (a, b) => a + b], ['sub', OP, 0, 0x20, (a, b) => a - b],
  ['sll', OP, 1, 0, (a, b) => u64(a) << (u64(b) & 63n)], ['slt', OP, 2, 0, (a, b) => (a < b ? 1n : 0n)],
  ['sltu', OP, 3, 0, (a, b) => (u64(a) < u64(b) ? 1n : 0n)], ['xor', OP, 4, 0, (a, b) => a ^ b],
  ['srl', OP, 5, 0, (a, b) => u64(a) >> (u64(b) & 63n)], ['sra', OP, 5, 0x20, (a, b) => a >> (u64(b) & 63n)],
  ['or', OP, 6, 0, (a, b) => a | b], ['and', OP, 7, 0, (a, b) => a & b],
  ['mul', OP, 0, 1, (a, b) => a * b], ['mulh', OP, 1, 1, (a, b) => (a * b) >> 64n],
  ['mulhsu', OP, 2, 1, (a, b) => (a * u64(b)) >> 64n], ['mulhu', OP, 3, 1, (a, b) => (u64(a) * u64(b)) >> 64n],
  ['div', OP, 4, 1, (a, b) => divS(a, b, 64)], ['divu', OP, 5, 1, (a, b) => (b === 0n ? M64 : u64(a) / u64(b))],
  ['rem', OP, 6, 1, (a, b) => remS(a, b, 64)], ['remu', OP, 7, 1, (a, b) => (b === 0n ? a : u64(a) % u64(b))],
  ['addw', OP_32, 0, 0, (a, b) => sx32(a + b)], ['subw', OP_32, 0, 0x20, (a, b) => sx32(a - b)],
  ['sllw', OP_32, 1, 0, (a, b) => sx32(a << (b & 31n))], ['srlw', OP_32, 5, 0, (a, b) => sx32(u32(a) >> (b & 31n))],
  ['sraw', OP_32, 5, 0x20, (a, b) => s32(a) >> (b & 31n)], ['mulw', OP_32, 0, 1, (a, b) => sx32(a * b)],
  ['divw', OP_32, 4, 1, (a, b) => sx32(divS(s32(a), s32(b), 32))],
  ['divuw', OP_32, 5, 1, (a, b) => (u32(b) === 0n ? -1n : sx32(u32(a) / u32(b)))],
  ['remw', OP_32, 6, 1, (a, b) => sx32(remS(s32(a), s32(b), 32))],
  ['remuw', OP_32, 7, 1, (a, b) => (u32(b) === 0n ? sx32(a) : sx32(u32(a) % u32(b)))],
  // Zba
  ['sh1add', OP, 2, 0x10, (a, b) => (a << 1n) + b], ['sh2add', OP, 4, 0x10, (a, b) => (a << 2n) + b],
  ['sh3add', OP, 6, 0x10, (a, b) => (a << 3n) + b], ['add.uw', OP_32, 0, 0x04, (a, b) => u32(a) + b],
  ['sh1add.uw', OP_32, 2, 0x10, (a, b) => (u32(a) << 1n) + b], ['sh2add.uw', OP_32, 4, 0x10, (a, b) => (u32(a) << 2n) + b],
  ['sh3add.uw', OP_32, 6, 0x10, (a, b) => (u32(a) << 3n) + b],
  // Zbb
  ['andn', OP, 7, 0x20, (a, b) => a & ~b], ['orn', OP, 6, 0x20, (a, b) => a | ~b], ['xnor', OP, 4, 0x20, (a, b) => ~(a ^ b)],
  ['min', OP, 4, 0x05, (a, b) => (a < b ? a : b)], ['minu', OP, 5, 0x05, (a, b) => (u64(a) < u64(b) ? a : b)],
  ['max', OP, 6, 0x05, (a, b) => (a > b ? a : b)], ['maxu', OP, 7, 0x05, (a, b) => (u64(a) > u64(b) ? a : b)],
  ['rol', OP, 1, 0x30, (a, b) => rotr(u64(a), 64n - (u64(b) & 63n), 64n)], ['ror', OP, 5, 0x30, (a, b) => rotr(u64(a), u64(b) & 63n, 64n)],
  ['rolw', OP_32, 1, 0x30, (a, b) => sx32(rotr(u32(a), 32n - (b & 31n), 32n))], ['rorw', OP_32, 5, 0x30, (a, b) => sx32(rotr(u32(a), b & 31n, 32n))],
  // Zbs
  ['bset', OP, 1, 0x14, (a, b) => a | (1n << (u64(b) & 63n))], ['bclr', OP, 1, 0x24, (a, b) => a & ~(1n << (u64(b) & 63n))],
  ['binv', OP, 1, 0x34, (a, b) => a ^ (1n << (u64(b) & 63n))], ['bext', OP, 5, 0x24, (a, b) => (u64(a) >> (u64(b) & 63n)) & 1n],
];

test('R-type integer ops match the reference model (RV64I, M, Zba, Zbb, Zbs)', () => {
  const h = new BareHart(), rng = new Prng(SEED);
  for (const [name, op, f3, f7, ref] of RTYPE) {
    for (let k = 0; k < 300; k++) {
      const a = rng.interesting64(), bv = rng.interesting64();
      h.set(1, a); h.set(2, bv);
      h.exec([r(op, f3, f7, 3, 1, 2), ECALL]);
      assert.equal(h.get(3), s64(ref(a, bv)), `${name}(${a}, ${bv})`);
    }
  }
});

/** [name, opcode, funct3, immediate-field builder, reference(a, imm)]. */
const ITYPE: [string, number, number, (n: number) => number, (a: bigint, imm: number) => bigint][] = [
  ['addi', OP_IMM, 0, (n) => n, (a, n) => a + BigInt(n)], ['slti', OP_IMM, 2, (n) => n, (a, n) => (a < BigInt(n) ? 1n : 0n)],
  ['sltiu', OP_IMM, 3, (n) => n, (a, n) => (u64(a) < u64(BigInt(n)) ? 1n : 0n)],
  ['xori', OP_IMM, 4, (n) => n, (a, n) => a ^ BigInt(n)], ['ori', OP_IMM, 6, (n) => n, (a, n) => a | BigInt(n)],
  ['andi', OP_IMM, 7, (n) => n, (a, n) => a & BigInt(n)],
  ['slli', OP_IMM, 1, (n) => n & 63, (a, n) => a << BigInt(n & 63)],
  ['srli', OP_IMM, 5, (n) => n & 63, (a, n) => u64(a) >> BigInt(n & 63)],
  ['srai', OP_IMM, 5, (n) => 0x400 | (n & 63), (a, n) => a >> BigInt(n & 63)],
  ['addiw', OP_IMM_32, 0, (n) => n, (a, n) => sx32(a + BigInt(n))],
  ['slliw', OP_IMM_32, 1, (n) => n & 31, (a, n) => sx32(a << BigInt(n & 31))],
  ['srliw', OP_IMM_32, 5, (n) => n & 31, (a, n) => sx32(u32(a) >> BigInt(n & 31))],
  ['sraiw', OP_IMM_32, 5, (n) => 0x400 | (n & 31), (a, n) => s32(a) >> BigInt(n & 31)],
  ['slli.uw', OP_IMM_32, 1, (n) => 0x080 | (n & 63), (a, n) => u32(a) << BigInt(n & 63)],
  ['rori', OP_IMM, 5, (n) => 0x600 | (n & 63), (a, n) => rotr(u64(a), BigInt(n & 63), 64n)],
  ['roriw', OP_IMM_32, 5, (n) => 0x600 | (n & 31), (a, n) => sx32(rotr(u32(a), BigInt(n & 31), 32n))],
  ['bseti', OP_IMM, 1, (n) => 0x280 | (n & 63), (a, n) => a | (1n << BigInt(n & 63))],
  ['bclri', OP_IMM, 1, (n) => 0x480 | (n & 63), (a, n) => a & ~(1n << BigInt(n & 63))],
  ['binvi', OP_IMM, 1, (n) => 0x680 | (n & 63), (a, n) => a ^ (1n << BigInt(n & 63))],
  ['bexti', OP_IMM, 5, (n) => 0x480 | (n & 63), (a, n) => (u64(a) >> BigInt(n & 63)) & 1n],
  ['clz', OP_IMM, 1, () => 0x600, (a) => clz(u64(a), 64)], ['ctz', OP_IMM, 1, () => 0x601, (a) => ctz(u64(a), 64)],
  ['cpop', OP_IMM, 1, () => 0x602, (a) => pop(u64(a))], ['sext.b', OP_IMM, 1, () => 0x604, (a) => BigInt.asIntN(8, a)],
  ['sext.h', OP_IMM, 1, () => 0x605, (a) => BigInt.asIntN(16, a)],
  ['clzw', OP_IMM_32, 1, () => 0x600, (a) => clz(u32(a), 32)], ['ctzw', OP_IMM_32, 1, () => 0x601, (a) => ctz(u32(a), 32)],
  ['cpopw', OP_IMM_32, 1, () => 0x602, (a) => pop(u32(a))],
  ['orc.b', OP_IMM, 5, () => 0x287, (a) => { let v = 0n; for (let k = 0n; k < 64n; k += 8n) if ((u64(a) >> k) & 0xffn) v |= 0xffn << k; return v; }],
  ['rev8', OP_IMM, 5, () => 0x6b8, (a) => { let v = 0n; for (let k = 0n; k < 8n; k++) v |= ((u64(a) >> (8n * k)) & 0xffn) << (8n * (7n - k)); return v; }],
];

test('I-type and unary integer ops match the reference model', () => {
  const h = new BareHart(), rng = new Prng(SEED + 1);
  for (const [name, op, f3, field, ref] of ITYPE) {
    for (let k = 0; k < 300; k++) {
      const a = rng.interesting64(), imm = rng.int(4096) - 2048;
      const fld = field(imm);
      h.set(5, a);
      h.exec([i(op, f3, 6, 5, fld), ECALL]);
      const immS = (fld << 20) >> 20;
      assert.equal(h.get(6), s64(ref(a, name.endsWith('i') || name.endsWith('iw') || name === 'addi' ? immS : immS)), `${name}(${a}, ${immS})`);
    }
  }
});

test('zext.h, lui, auipc and x0 stays zero', () => {
  const h = new BareHart();
  h.set(1, -1n);
  h.exec([r(OP_32, 4, 0x04, 2, 1, 0), 0xfffff1b7 /* lui x3, 0xfffff */, 0x00000217 /* auipc x4, 0 */, i(OP_IMM, 0, 0, 1, 5), ECALL]);
  assert.equal(h.get(2), 0xffffn);
  assert.equal(h.get(3), -4096n);
  assert.equal(h.get(4), 0x1008n);
  assert.equal(h.get(0), 0n);
});
