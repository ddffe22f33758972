/**
 * Seeded differential test of the F/D execution unit against QEMU (qemu-riscv64).
 *
 * A small static riscv64 harness (compiled once with riscv64-linux-gnu-gcc into a cache dir)
 * reads records (instruction word, frm, f5, f6, f7, x5, f28/x28 presets), patches the
 * instruction into a stub, runs it with frm set and fflags cleared, and writes back fflags, f28,
 * x28 and whether SIGILL was raised. The same records are executed by execFp on a HartState and
 * compared bit for bit. Set FP_SEED to try another seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HartState, S } from '../../src/cpu/hart-state.js';
import { execFp } from '../../src/cpu/exec-fp.js';

const seed = Number(process.env.FP_SEED ?? 0x5eed2024);
console.log('seed', seed);
/** Records per op class (scaled by FP_SCALE, default 1). */
const SCALE = Number(process.env.FP_SCALE ?? 1);

const HARNESS_C = String.raw`
#include <stdio.h>
#include <stdint.h>
#include <signal.h>
#include <setjmp.h>
#include <sys/mman.h>
extern char fp_stub[], fp_slot[];
/* Stub: load f5,f6,f7,x5 and presets for f28/x28, set frm, clear fflags, run the patched
   instruction (rd=28, rs1=5, rs2=6, rs3=7), then store fflags, f28 and x28. */
__asm__(
  ".text\n.option push\n.option norvc\n.balign 4096\n.globl fp_stub\nfp_stub:\n"
  "fld f5, 0(a0)\nfld f6, 8(a0)\nfld f7, 16(a0)\nld t0, 24(a0)\n"
  "fld f28, 48(a0)\nld t3, 56(a0)\nld t1, 32(a0)\nfsrm t1\nfsflags x0\n"
  ".globl fp_slot\nfp_slot:\n.4byte 0x00000013\n"
  "frflags t1\nsd t1, 40(a0)\nfsd f28, 48(a0)\nsd t3, 56(a0)\nret\n.balign 4096\n.option pop\n");
static sigjmp_buf jb;
static void onill(int s) { (void)s; siglongjmp(jb, 1); }
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  if (!in || !out) return 3;
  if (mprotect((void *)((uintptr_t)fp_stub & ~(uintptr_t)4095), 4096, PROT_READ | PROT_WRITE | PROT_EXEC)) return 4;
  struct sigaction sa = {0};
  sa.sa_handler = onill;
  sigaction(SIGILL, &sa, 0);
  uint32_t hdr[2]; uint64_t v[6]; static uint64_t buf[8]; uint32_t cur = 0x13;
  while (fread(hdr, 4, 2, in) == 2 && fread(v, 8, 6, in) == 6) {
    buf[0] = v[0]; buf[1] = v[1]; buf[2] = v[2]; buf[3] = v[3]; buf[4] = hdr[1]; buf[5] = 0; buf[6] = v[4]; buf[7] = v[5];
    if (hdr[0] != cur) { *(volatile uint32_t *)fp_slot = hdr[0]; cur = hdr[0]; __asm__ volatile("fence.i" ::: "memory"); }
    uint64_t o[4] = {0, 0, 0, 0};
    if (sigsetjmp(jb, 1) == 0) { ((void (*)(uint64_t *))(void *)fp_stub)(buf); o[0] = buf[5]; o[1] = buf[6]; o[2] = buf[7]; }
    else o[3] = 1;
    fwrite(o, 8, 4, out);
  }
  fclose(out);
  return 0;
}
`;

const GCC = 'riscv64-linux-gnu-gcc';
const QEMU = 'qemu-riscv64';

/** Fails loudly when a required host tool is missing. */
function requireTool(cmd: string, pkg: string): void {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`fp-qemu differential test needs '${cmd}' (Debian package ${pkg}); it was not found or failed to run. ` +
      'Install it (see scripts/test-all.sh) — this test does not skip.');
  }
}

/** Compiles the harness once into a content-addressed cache directory. */
function buildHarness(): string {
  const hash = createHash('sha256').update(HARNESS_C).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'tsvm-fp-qemu', hash);
  const exe = join(dir, 'harness');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  const src = join(dir, `harness-${process.pid}.c`);
  writeFileSync(src, HARNESS_C);
  const tmpExe = `${exe}.${process.pid}`;
  const r = spawnSync(GCC, ['-O2', '-static', '-o', tmpExe, src], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`compiling the QEMU harness failed:\n${r.stderr}`);
  renameSync(tmpExe, exe);
  return exe;
}

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (xoshiro128**, 32-bit arithmetic only).

const rs = new Uint32Array(4);
{
  let z = seed >>> 0;
  for (let i = 0; i < 4; i++) { // splitmix32 seeding
    z = (z + 0x9e3779b9) >>> 0;
    let t = z;
    t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
    t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
    rs[i] = (t ^ (t >>> 16)) >>> 0;
  }
}
function u32(): number {
  const s0 = rs[0]!, s1 = rs[1]!, s2 = rs[2]!, s3 = rs[3]!;
  const x = Math.imul(s1, 5);
  const res = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
  const t = s1 << 9;
  const n2 = s2 ^ s0, n3 = s3 ^ s1;
  rs[1] = s1 ^ n2;
  rs[0] = s0 ^ n3;
  rs[2] = n2 ^ t;
  rs[3] = (n3 << 11) | (n3 >>> 21);
  return res;
}
/** Uniform integer in [0, n). */
function rnd(n: number): number { return Math.floor((u32() / 4294967296) * n); }
function chance(p: number): boolean { return u32() / 4294967296 < p; }
function pick<T>(xs: readonly T[]): T { return xs[rnd(xs.length)]!; }
/** Random integer in [lo, hi]. */
function range(lo: number, hi: number): number { return lo + rnd(hi - lo + 1); }
/** k random low bits (0 <= k <= 32) as an unsigned number. */
function bits(k: number): number { return k <= 0 ? 0 : k >= 32 ? u32() : u32() >>> (32 - k); }

// ---------------------------------------------------------------------------------------------
// Operand generators. 64-bit values are [lo, hi] int32 pairs.

type W64 = [number, number];
const cvtBuf = new DataView(new ArrayBuffer(8));
function dToW(x: number): W64 { cvtBuf.setFloat64(0, x, true); return [cvtBuf.getInt32(0, true), cvtBuf.getInt32(4, true)]; }
function wToD(w: W64): number { cvtBuf.setInt32(0, w[0], true); cvtBuf.setInt32(4, w[1], true); return cvtBuf.getFloat64(0, true); }
function sToW(x: number): number { cvtBuf.setFloat32(0, x, true); return cvtBuf.getInt32(0, true); }
function wToS(w: number): number { cvtBuf.setInt32(0, w, true); return cvtBuf.getFloat32(0, true); }

/** A random significand of `n` bits (n <= 52) shaped to hit exact results, ties and carries. */
function mantissa(n: number): [number, number] { // [high part, low 32 bits]
  const hiBits = n - 32; // bits above the low word (may be <= 0)
  let hi = hiBits > 0 ? bits(hiBits) : 0;
  let lo = hiBits >= 0 ? u32() : bits(n);
  const mode = rnd(8);
  if (mode < 3) { // short: only the top k bits random
    const k = rnd(n + 1);
    const drop = n - k;
    if (drop >= 32) { lo = 0; hi = hiBits > 0 ? (hi >>> (drop - 32)) << (drop - 32) : 0; } else if (drop > 0) lo = (lo >>> drop) << drop;
  } else if (mode === 3) { // trailing ones
    const k = rnd(n + 1);
    if (k >= 32) { lo = -1; if (hiBits > 0) hi |= (k - 32 >= hiBits ? (2 ** hiBits - 1) : (2 ** (k - 32) - 1)); } else if (k > 0) lo |= (2 ** k - 1);
  } else if (mode === 4) { // all ones / all zeros
    const ones = chance(0.5);
    hi = ones && hiBits > 0 ? 2 ** hiBits - 1 : 0;
    lo = ones ? (n >= 32 ? -1 : 2 ** n - 1) : 0;
  }
  return [hi >>> 0, lo | 0];
}

const SPECIAL_D: W64[] = [
  [0, 0], [0, -2147483648], [0, 0x7ff00000], [0, 0xfff00000 | 0], [0, 0x7ff80000], [0, 0xfff80000 | 0],
  [1, 0x7ff80000], [1, 0x7ff00000], [-1, 0x7ff7ffff], [0, 0x7ff40000], [5, 0xfff00000 | 0],
  [1, 0], [1, -2147483648], [-1, 0x000fffff], [-1, 0x800fffff | 0], [0, 0x00100000], [0, 0x80100000 | 0],
  [-1, 0x7fefffff], [-1, 0xffefffff | 0], [0, 0x3ff00000], [0, 0xbff00000 | 0], [0, 0x40000000], [0, 0x3ff80000],
  [0, 0x7fe00000], [0, 0x00200000], [0, 0x3ca00000], [-1, 0x3fefffff],
];
const SPECIAL_S: number[] = [
  0, 0x80000000 | 0, 0x7f800000, 0xff800000 | 0, 0x7fc00000, 0xffc00000 | 0, 0x7fc00001, 0x7f800001, 0x7fbfffff,
  0xff800005 | 0, 1, 0x80000001 | 0, 0x007fffff, 0x807fffff | 0, 0x00800000, 0x80800000 | 0, 0x7f7fffff, 0xff7fffff | 0,
  0x3f800000, 0xbf800000 | 0, 0x40000000, 0x3fc00000, 0x7f000000, 0x01000000, 0x33800000, 0x3f7fffff,
];

/** Biased binary64 exponent from a corner-heavy distribution. */
function expD(): number {
  const k = rnd(20);
  if (k < 2) return 0;
  if (k < 4) return range(1, 70);
  if (k < 6) return range(1975, 2046);
  if (k === 6) return 2047;
  if (k < 13) return range(1023 - 40, 1023 + 40);
  return range(1, 2046);
}
/** Biased binary32 exponent from a corner-heavy distribution. */
function expS(): number {
  const k = rnd(20);
  if (k < 2) return 0;
  if (k < 4) return range(1, 30);
  if (k < 6) return range(225, 254);
  if (k === 6) return 255;
  if (k < 13) return range(127 - 20, 127 + 20);
  return range(1, 254);
}
function clampE(e: number, max: number): number { return e < 0 ? 0 : e > max ? max : e; }

/** A binary64 with the given biased exponent (random if undefined). */
function genD(e?: number): W64 {
  if (e === undefined) {
    if (chance(0.08)) return pick(SPECIAL_D);
    e = expD();
  }
  const [mh, ml] = mantissa(52);
  const hi = (chance(0.5) ? -2147483648 : 0) | (e << 20) | (mh & 0xfffff);
  return [ml, hi];
}
/** A binary32 (bits) with the given biased exponent (random if undefined). */
function genSw(e?: number): number {
  if (e === undefined) {
    if (chance(0.08)) return pick(SPECIAL_S);
    e = expS();
  }
  const [, ml] = mantissa(23);
  return (chance(0.5) ? -2147483648 : 0) | (e << 23) | (ml & 0x7fffff);
}
/** A NaN-boxed single register value; occasionally improperly boxed. */
function boxS(w: number): W64 {
  if (chance(0.03)) return [w, pick([0, 0x7fffffff, -2, u32() | 0])];
  return [w, -1];
}
function expOfD(w: W64): number { return (w[1] >>> 20) & 0x7ff; }
function expOfS(w: number): number { return (w >>> 23) & 0xff; }

/** Operand pair for a binary operation, correlated to hit cancellation, ties and range edges. */
function pairD(kind: 'add' | 'mul' | 'div' | 'any'): [W64, W64] {
  const a = genD();
  const k = rnd(10);
  if (k < 4 || kind === 'any') return [a, chance(0.15) ? [a[0], a[1] ^ (chance(0.5) ? -2147483648 : 0)] : genD()];
  const ea = expOfD(a) === 2047 ? range(1, 2046) : expOfD(a);
  const a2: W64 = [a[0], (a[1] & ~0x7ff00000) | (ea << 20)];
  let eb: number;
  if (kind === 'add') eb = k < 7 ? ea + range(-3, 3) : ea - pick([range(50, 56), range(4, 60), range(24, 30)]);
  else {
    const T = pick([range(-1080, -1018), range(1018, 1026), range(-1080, 1026), range(-20, 20)]) + 1023;
    eb = kind === 'mul' ? T - ea + 1023 : ea - T + 1023;
  }
  return [a2, genD(clampE(eb, 2046))];
}
function pairS(kind: 'add' | 'mul' | 'div' | 'any'): [number, number] {
  const a = genSw();
  const k = rnd(10);
  if (k < 4 || kind === 'any') return [a, chance(0.15) ? a ^ (chance(0.5) ? -2147483648 : 0) : genSw()];
  const ea = expOfS(a) === 255 ? range(1, 254) : expOfS(a);
  const a2 = (a & ~0x7f800000) | (ea << 23);
  let eb: number;
  if (kind === 'add') eb = k < 7 ? ea + range(-3, 3) : ea - pick([range(21, 27), range(4, 30), range(10, 14)]);
  else {
    const T = pick([range(-155, -122), range(122, 130), range(-155, 130), range(-10, 10)]) + 127;
    eb = kind === 'mul' ? T - ea + 127 : ea - T + 127;
  }
  return [a2, genSw(clampE(eb, 254))];
}

function rand64(): W64 { return [u32() | 0, u32() | 0]; }

/** FMA triple: product near range edges, addend near the product (cancellation) or anywhere. */
/** Replaces the significand with 1.0, 1.1…1, 1.0…01 or 1.1…10 (products just off powers of two). */
function edgeMantD(w: W64): W64 {
  const k = rnd(5);
  if (k === 4 || expOfD(w) === 0) return w;
  const hi = w[1] & ~0xfffff;
  return [[0, -1, 1, -2][k]!, hi | [0, 0xfffff, 0, 0xfffff][k]!];
}
function edgeMantS(w: number): number {
  const k = rnd(5);
  if (k === 4 || expOfS(w) === 0) return w;
  return (w & ~0x7fffff) | [0, 0x7fffff, 1, 0x7ffffe][k]!;
}
function tripleD(): [W64, W64, W64] {
  if (chance(0.15)) { // product near ±½ ulp of the addend, operands possibly at extreme exponents
    const c = genD(range(60, 2040));
    const T = expOfD(c) - range(51, 56);
    const ea = pick([range(1, 130), range(1900, 2046), range(900, 1100)]);
    return [edgeMantD(genD(ea)), edgeMantD(genD(clampE(T - ea + 1023, 2046))), c];
  }
  const [a, b] = pairD(chance(0.5) ? 'mul' : 'any');
  const k = rnd(10);
  if (k < 3) return [a, b, genD()];
  const pe = clampE(expOfD(a) + expOfD(b) - 1023, 2046);
  if (k < 7) return [a, b, genD(clampE(pe + pick([range(-3, 3), range(-60, 60), range(-110, 110), range(50, 56), range(-56, -50), range(104, 108)]), 2046))];
  const p = wToD(a) * wToD(b);
  if (!Number.isFinite(p)) return [a, b, genD()];
  const c = dToW(-p);
  if (chance(0.7)) c[0] = (c[0] ^ bits(rnd(20))) | 0; // perturb low bits
  return [a, b, c];
}
function tripleS(): [number, number, number] {
  if (chance(0.15)) {
    const c = genSw(range(30, 250));
    const T = expOfS(c) - range(22, 27);
    const ea = pick([range(1, 30), range(220, 254), range(100, 150)]);
    return [edgeMantS(genSw(ea)), edgeMantS(genSw(clampE(T - ea + 127, 254))), c];
  }
  const [a, b] = pairS(chance(0.5) ? 'mul' : 'any');
  const k = rnd(10);
  if (k < 3) return [a, b, genSw()];
  const pe = clampE(expOfS(a) + expOfS(b) - 127, 254);
  if (k < 7) return [a, b, genSw(clampE(pe + pick([range(-3, 3), range(-30, 30), range(-50, 50), range(21, 27), range(-27, -21), range(46, 50)]), 254))];
  const p = Math.fround(wToS(a) * wToS(b));
  if (!Number.isFinite(p)) return [a, b, genSw()];
  return [a, b, sToW(-p) ^ bits(rnd(10))];
}

/** A 64-bit integer biased to conversion edges (precision boundaries, midpoints, extremes). */
function genInt(): W64 {
  const k = rnd(10);
  if (k < 2) {
    return pick<W64>([[0, 0], [1, 0], [-1, -1], [0x7fffffff, 0], [-2147483648, -1], [-2147483648, 0], [-1, 0], [0, 1],
      [-1, 0x1fffff], [0, 0x200000], [1, 0x200000], [-1, 0x7fffffff], [0, -2147483648], [0x1000001, 0], [0xffffff, 0],
      [0x1000000, 0], [3, 0x200000], [0x80000000 | 0, 0x7fffffff], [0x7fffffff, 0x80000000 | 0]]);
  }
  // Choose a bit length and a shape relative to 24- and 53-bit precision.
  const L = range(1, 64);
  const p = pick([24, 53, 0]);
  const v = new Uint8Array(64);
  v[L - 1] = 1;
  for (let i = 0; i < L - 1; i++) v[i] = rnd(2);
  if (p !== 0 && L > p) {
    const cut = L - p - 1; // round bit position
    const shape = rnd(4);
    if (shape === 0) { v[cut] = 1; for (let i = 0; i < cut; i++) v[i] = 0; } // exact midpoint
    else if (shape === 1) { for (let i = 0; i <= cut; i++) v[i] = 0; } // exact
    else if (shape === 2) { v[cut] = 1; for (let i = 0; i < cut; i++) v[i] = i === 0 ? 1 : 0; } // just above
  }
  let lo = 0, hi = 0;
  for (let i = 0; i < 32; i++) lo |= v[i]! << i;
  for (let i = 0; i < 32; i++) hi |= v[i + 32]! << i;
  if (chance(0.4)) { lo = ~lo; hi = ~hi; if ((lo = (lo + 1) | 0) === 0) hi = (hi + 1) | 0; } // negate
  return [lo | 0, hi | 0];
}
/** A 32-bit integer in the low word (random upper word, which the W forms must ignore). */
function genInt32(): W64 {
  const [lo] = genInt();
  const v = chance(0.5) ? lo : (genInt()[0] >> rnd(8));
  return [v | 0, chance(0.5) ? (v >> 31) : u32() | 0];
}

/** A double near integer-conversion edges. */
function cvtSourceD(): W64 {
  if (chance(0.3)) return genD();
  const base = pick([0, 1, 2, 3, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 52, 2 ** 53, 2 ** 63, 2 ** 64, rnd(1000), u32(), u32() * 2 ** rnd(33)]);
  const frac = pick([0, 0, 0.5, -0.5, 0.25, 0.75, -0.25, 1e-9, -1e-9, 0.4999999999, 0.5000000001, 1.5, -1, 1, -1024, 1024, 2048, -2048]);
  const x = (base + frac) * (chance(0.4) ? -1 : 1);
  return dToW(x);
}
function cvtSourceS(): number {
  if (chance(0.3)) return genSw();
  const base = pick([0, 1, 2, 3, 2 ** 31, 2 ** 32, 2 ** 23, 2 ** 24, 2 ** 63, 2 ** 64, rnd(1000), rnd(1 << 24), u32()]);
  const frac = pick([0, 0, 0.5, -0.5, 0.25, 0.75, 1e-3, -1e-3, 1.5, -1, 1, 128, -128, 256, -256]);
  return sToW(Math.fround((base + frac) * (chance(0.4) ? -1 : 1)));
}
/** A double shaped for FCVT.S.D: binary32 range edges and binary32 midpoints. */
function narrowSourceD(): W64 {
  const k = rnd(10);
  if (k < 2) return genD();
  const e = pick([range(1023 - 160, 1023 - 120), range(1023 + 120, 1023 + 130), range(1023 - 130, 1023 + 130), range(1023 - 150, 1023 - 148)]);
  const w = genD(e);
  if (chance(0.4)) { // force a binary32 (normal-range) midpoint, or just off it
    w[0] = (w[0] & ~0x3fffffff) | 0x10000000 | (chance(0.5) ? 0 : bits(rnd(28)));
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// Op table.

interface OpClass { name: string; count: number; insn: (fmt: number) => number; usesRm: boolean; gen: (dbl: boolean) => [W64, W64, W64, W64]; fixedRm?: number }

const RD = 28, RS1 = 5, RS2 = 6, RS3 = 7;
function opfp(funct5: number, fmt: number, rs2: number, rm: number): number {
  return ((funct5 << 27) | (fmt << 25) | (rs2 << 20) | (RS1 << 15) | (rm << 12) | (RD << 7) | 0x53) >>> 0;
}
function r4(op: number, fmt: number, rm: number): number {
  return ((RS3 << 27) | (fmt << 25) | (RS2 << 20) | (RS1 << 15) | (rm << 12) | (RD << 7) | op) >>> 0;
}

const binGen = (kind: 'add' | 'mul' | 'div' | 'any') => (dbl: boolean): [W64, W64, W64, W64] => {
  if (dbl) { const [a, b] = pairD(kind); return [a, b, rand64(), rand64()]; }
  const [a, b] = pairS(kind);
  return [boxS(a), boxS(b), rand64(), rand64()];
};
const unGen = (dbl: boolean): [W64, W64, W64, W64] => [dbl ? genD() : boxS(genSw()), rand64(), rand64(), rand64()];

const OPS: OpClass[] = [
  { name: 'fadd', count: 4000, insn: (f) => opfp(0x00, f, RS2, 0), usesRm: true, gen: binGen('add') },
  { name: 'fsub', count: 4000, insn: (f) => opfp(0x01, f, RS2, 0), usesRm: true, gen: binGen('add') },
  { name: 'fmul', count: 4000, insn: (f) => opfp(0x02, f, RS2, 0), usesRm: true, gen: binGen('mul') },
  { name: 'fdiv', count: 4000, insn: (f) => opfp(0x03, f, RS2, 0), usesRm: true, gen: binGen('div') },
  { name: 'fsqrt', count: 3000, insn: (f) => opfp(0x0b, f, 0, 0), usesRm: true, gen: unGen },
  { name: 'fsgnj', count: 500, insn: (f) => opfp(0x04, f, RS2, 0), usesRm: false, gen: binGen('any') },
  { name: 'fsgnjn', count: 500, insn: (f) => opfp(0x04, f, RS2, 1), usesRm: false, gen: binGen('any') },
  { name: 'fsgnjx', count: 500, insn: (f) => opfp(0x04, f, RS2, 2), usesRm: false, gen: binGen('any') },
  { name: 'fmin', count: 1500, insn: (f) => opfp(0x05, f, RS2, 0), usesRm: false, gen: binGen('any') },
  { name: 'fmax', count: 1500, insn: (f) => opfp(0x05, f, RS2, 1), usesRm: false, gen: binGen('any') },
  { name: 'fle', count: 1500, insn: (f) => opfp(0x14, f, RS2, 0), usesRm: false, gen: binGen('any') },
  { name: 'flt', count: 1500, insn: (f) => opfp(0x14, f, RS2, 1), usesRm: false, gen: binGen('any') },
  { name: 'feq', count: 1500, insn: (f) => opfp(0x14, f, RS2, 2), usesRm: false, gen: binGen('any') },
  { name: 'fclass', count: 1000, insn: (f) => opfp(0x1c, f, 0, 1), usesRm: false, gen: unGen },
  ...(['w', 'wu', 'l', 'lu'] as const).map((k, i): OpClass => ({
    name: `fcvt.${k}.fmt`, count: 2500, insn: (f) => opfp(0x18, f, i, 0), usesRm: true,
    gen: (dbl) => [dbl ? cvtSourceD() : boxS(cvtSourceS()), rand64(), rand64(), rand64()],
  })),
  ...(['w', 'wu', 'l', 'lu'] as const).map((k, i): OpClass => ({
    name: `fcvt.fmt.${k}`, count: 2500, insn: (f) => opfp(0x1a, f, i, 0), usesRm: true,
    gen: () => [rand64(), rand64(), rand64(), i < 2 ? genInt32() : genInt()],
  })),
  { name: 'fcvt.s.d|d.s', count: 3000, insn: (f) => opfp(0x08, f, f === 0 ? 1 : 0, 0), usesRm: true,
    gen: (dbl) => [dbl ? boxS(genSw()) : narrowSourceD(), rand64(), rand64(), rand64()] },
  { name: 'fmv.x.fmt', count: 300, insn: (f) => opfp(0x1c, f, 0, 0), usesRm: false,
    gen: (dbl) => [dbl ? genD() : boxS(genSw()), rand64(), rand64(), rand64()] },
  { name: 'fmv.fmt.x', count: 300, insn: (f) => opfp(0x1e, f, 0, 0), usesRm: false, gen: () => [rand64(), rand64(), rand64(), rand64()] },
  ...([['fmadd', 0x43], ['fmsub', 0x47], ['fnmsub', 0x4b], ['fnmadd', 0x4f]] as const).map(([n, op]): OpClass => ({
    name: n, count: 4000, insn: (f) => r4(op, f, 0), usesRm: true,
    gen: (dbl) => {
      if (dbl) { const [a, b, c] = tripleD(); return [a, b, c, rand64()]; }
      const [a, b, c] = tripleS();
      return [boxS(a), boxS(b), boxS(c), rand64()];
    },
  })),
];

/** A random OP-FP/R4 encoding used only to compare legality (SIGILL vs not). */
function fuzzInsn(): number {
  const op = chance(0.7) ? 0x53 : pick([0x43, 0x47, 0x4b, 0x4f]);
  const fmt = chance(0.8) ? rnd(2) : rnd(4);
  const rm = rnd(8);
  if (op !== 0x53) return (r4(op, fmt, rm)) >>> 0;
  const f5 = chance(0.8) ? pick([0x00, 0x01, 0x02, 0x03, 0x0b, 0x04, 0x05, 0x08, 0x14, 0x18, 0x1a, 0x1c, 0x1e]) : rnd(32);
  const rs2 = chance(0.5) ? rnd(4) : rnd(8);
  return opfp(f5, fmt, rs2, rm);
}

// ---------------------------------------------------------------------------------------------

interface Rec { cls: string; insn: number; frm: number; f5: W64; f6: W64; f7: W64; x5: W64; f28: W64; x28: W64; legalityOnly: boolean }

function buildRecords(): Rec[] {
  const recs: Rec[] = [];
  for (const oc of OPS) {
    for (const dbl of [false, true]) {
      const n = Math.max(1, Math.round(oc.count * SCALE));
      for (let i = 0; i < n; i++) {
        let insn = oc.insn(dbl ? 1 : 0);
        let frm = rnd(8);
        if (oc.usesRm) {
          const k = rnd(100);
          let rm: number;
          if (k < 70) rm = rnd(5);
          else if (k < 96) { rm = 7; frm = rnd(5); } else if (k < 98) rm = 5 + rnd(2);
          else { rm = 7; frm = 5 + rnd(3); }
          insn = (insn & ~(7 << 12)) | (rm << 12);
        }
        const [f5, f6, f7, x5] = oc.gen(dbl);
        recs.push({ cls: `${oc.name}.${dbl ? 'd' : 's'}`, insn: insn >>> 0, frm, f5, f6, f7, x5, f28: rand64(), x28: rand64(), legalityOnly: false });
      }
    }
  }
  for (let i = 0; i < Math.round(3000 * SCALE); i++) {
    recs.push({ cls: 'legality', insn: fuzzInsn(), frm: rnd(8), f5: genD(), f6: genD(), f7: genD(), x5: genInt(), f28: rand64(), x28: rand64(), legalityOnly: true });
  }
  // Group by instruction word so the harness re-patches its stub rarely.
  recs.sort((a, b) => a.insn - b.insn);
  return recs;
}

const REC_IN = 56;
const REC_OUT = 32;

function hex64(w: W64): string {
  return (w[1] >>> 0).toString(16).padStart(8, '0') + (w[0] >>> 0).toString(16).padStart(8, '0');
}

test('F/D execution matches qemu-riscv64 bit for bit', (t) => {
  requireTool(GCC, 'gcc-riscv64-linux-gnu');
  requireTool(QEMU, 'qemu-user');
  const exe = buildHarness();
  const recs = buildRecords();
  const input = Buffer.alloc(recs.length * REC_IN);
  recs.forEach((r, i) => {
    const o = i * REC_IN;
    input.writeUInt32LE(r.insn, o);
    input.writeUInt32LE(r.frm, o + 4);
    const ws = [r.f5, r.f6, r.f7, r.x5, r.f28, r.x28];
    ws.forEach((w, j) => { input.writeInt32LE(w[0], o + 8 + 8 * j); input.writeInt32LE(w[1], o + 12 + 8 * j); });
  });
  const dir = join(tmpdir(), 'tsvm-fp-qemu');
  const inPath = join(dir, `in-${process.pid}.bin`);
  const outPath = join(dir, `out-${process.pid}.bin`);
  writeFileSync(inPath, input);
  const run = spawnSync(QEMU, [exe, inPath, outPath], { encoding: 'utf8', timeout: 120000 });
  assert.equal(run.status, 0, `qemu harness failed: ${run.error?.message ?? ''} ${run.stderr}`);
  const out = readFileSync(outPath);
  assert.equal(out.length, recs.length * REC_OUT, 'harness produced a short output');

  const st = new HartState();
  const mismatches = new Map<string, string[]>();
  const counts = new Map<string, number>();
  const cover = new Map<string, number[]>(); // per class: records raising NX, UF, OF, DZ, NV; illegal
  recs.forEach((r, i) => {
    counts.set(r.cls, (counts.get(r.cls) ?? 0) + 1);
    st.f[2 * RS1] = r.f5[0]; st.f[2 * RS1 + 1] = r.f5[1];
    st.f[2 * RS2] = r.f6[0]; st.f[2 * RS2 + 1] = r.f6[1];
    st.f[2 * RS3] = r.f7[0]; st.f[2 * RS3 + 1] = r.f7[1];
    st.x[2 * RS1] = r.x5[0]; st.x[2 * RS1 + 1] = r.x5[1];
    st.f[2 * RD] = r.f28[0]; st.f[2 * RD + 1] = r.f28[1];
    st.x[2 * RD] = r.x28[0]; st.x[2 * RD + 1] = r.x28[1];
    st.s[S.FRM] = r.frm;
    st.s[S.FFLAGS] = 0;
    const ill = execFp(st, r.insn) < 0 ? 1 : 0;
    const o = i * REC_OUT;
    const qIll = out.readUInt32LE(o + 24);
    let bad = ill !== qIll;
    const qf: W64 = [out.readInt32LE(o + 8), out.readInt32LE(o + 12)];
    const qx: W64 = [out.readInt32LE(o + 16), out.readInt32LE(o + 20)];
    const qfl = out.readUInt32LE(o);
    const mf: W64 = [st.f[2 * RD]!, st.f[2 * RD + 1]!];
    const mx: W64 = [st.x[2 * RD]!, st.x[2 * RD + 1]!];
    if (!r.legalityOnly) {
      const c = cover.get(r.cls) ?? [0, 0, 0, 0, 0, 0];
      for (let b = 0; b < 5; b++) if (qfl & (1 << b)) c[b]!++;
      if (qIll) c[5]!++;
      cover.set(r.cls, c);
    }
    if (!bad && !ill && !r.legalityOnly) {
      bad = qfl !== st.s[S.FFLAGS] || qf[0] !== mf[0] || qf[1] !== mf[1] || qx[0] !== mx[0] || qx[1] !== mx[1];
    }
    if (bad) {
      const list = mismatches.get(r.cls) ?? [];
      if (list.length < 8) {
        list.push(`insn=${r.insn.toString(16).padStart(8, '0')} rm=${(r.insn >>> 12) & 7} frm=${r.frm} f5=${hex64(r.f5)} f6=${hex64(r.f6)} ` +
          `f7=${hex64(r.f7)} x5=${hex64(r.x5)} | qemu: ill=${qIll} fl=${qfl} f28=${hex64(qf)} x28=${hex64(qx)} | ` +
          `tsvm: ill=${ill} fl=${st.s[S.FFLAGS]} f28=${hex64(mf)} x28=${hex64(mx)}`);
      }
      mismatches.set(r.cls, list);
      counts.set(`${r.cls}!`, (counts.get(`${r.cls}!`) ?? 0) + 1);
    }
  });
  try { unlinkSync(inPath); unlinkSync(outPath); } catch { /* best effort */ }
  console.log(`compared ${recs.length} records; per class (QEMU side) records raising NX/UF/OF/DZ/NV and illegal:`);
  console.log([...cover].sort().map(([k, c]) => `${k}:${counts.get(k)}:${c.join('/')}`).join('  '));
  const report: string[] = [];
  for (const [cls, list] of mismatches) report.push(`${cls}: ${counts.get(`${cls}!`)} of ${counts.get(cls)} mismatched\n  ${list.join('\n  ')}`);
  if (report.length) t.diagnostic(report.join('\n'));
  assert.equal(report.length, 0, `mismatches (seed ${seed}):\n${report.join('\n')}`);
});
