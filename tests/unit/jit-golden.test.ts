/**
 * Golden listings of the JIT's code generator (src/jit/codegen.ts): a few
 * representative guest snippets are assembled into a page, planned into a
 * unit (planUnit) and translated (generateUnit with a listing); the listing
 * must equal tests/golden/jit/<name>.txt, and the module must validate.
 *
 * The snippets: an arithmetic loop whose back edge chains inside the unit,
 * loads and stores with the inline TLB fast path, conditional branches and
 * jumps to blocks outside the unit, div/rem with their RISC-V special
 * cases, F/D operations (a guarded inline fast path and the helper), an
 * AMO and CSR accesses through helpers (with their exits to the
 * interpreter), and a block ending at an instruction only the interpreter
 * runs (ecall).
 *
 * To regenerate the golden files after an intended codegen change, run
 *   npx tsc -p . && UPDATE_GOLDEN=1 node --test dist/tests/unit/jit-golden.test.js
 * which writes the files in the source tree (tests/golden/jit/, found from
 * the repository root, not dist/) instead of comparing; review the diff.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/toolchain.js';
import { assemble, rv, A0, A1, A2, A3, A4, A5, RA, T0, S0, type Item } from '../helpers/jit-hart.js';
import { r, i, b, OP, OP_32, SYSTEM, ECALL } from '../helpers/asm.js';
import { planUnit, translatable, FpAccess, Term, type Block } from '../../src/jit/block-decoder.js';
import { generateUnit } from '../../src/jit/codegen.js';

const GOLDEN_DIR = path.join(REPO_ROOT, 'tests', 'golden', 'jit');
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

/** Host offset of the test page in the buffer (not 0, so a page-relative bug would show). */
const PAGE_HOST = 0x2000;

/** Assembles `items` at page offset `at` of a fresh page and plans the unit from `entry`. */
function plan(items: readonly Item[], at = 0, entry = at, fp = FpAccess.ALL, learned?: Map<number, number[]>): Block[] {
  const buf = new Uint8Array(PAGE_HOST + 2 * 4096);
  buf.set(assemble(at, items), PAGE_HOST + at);
  return planUnit(new DataView(buf.buffer), PAGE_HOST, entry, fp, false, undefined, -1, learned);
}

/** Generates the unit, checks it, and compares (or, with UPDATE_GOLDEN=1, writes) its listing. */
function golden(name: string, blocks: Block[]): void {
  const code = generateUnit(blocks, true);
  assert.ok(code.listing !== null, 'a listing was asked for');
  assert.ok(WebAssembly.validate(code.bytes), `${name}: the module validates`);
  assert.deepEqual(generateUnit(blocks, false).bytes, code.bytes, `${name}: the listing does not change the code`);
  assert.equal(generateUnit(blocks, false).listing, null);
  const text = code.listing.join('\n') + '\n';
  const file = path.join(GOLDEN_DIR, `${name}.txt`);
  if (UPDATE) {
    fs.mkdirSync(GOLDEN_DIR, { recursive: true });
    fs.writeFileSync(file, text);
    return;
  }
  assert.ok(fs.existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1 to create it`);
  const want = fs.readFileSync(file, 'utf8');
  if (text !== want) assert.fail(`${name}: listing differs from ${file} (UPDATE_GOLDEN=1 regenerates it)\n${firstDiff(want, text)}`);
}

/** Where two listings first differ, with a little context. */
function firstDiff(want: string, got: string): string {
  const a = want.split('\n'), b = got.split('\n');
  let k = 0;
  while (k < a.length && k < b.length && a[k] === b[k]) k++;
  const ctx = (l: string[]): string => l.slice(Math.max(0, k - 3), k + 4).map((s, j) => `  ${Math.max(0, k - 3) + j + 1}: ${s}`).join('\n');
  return `first difference at line ${k + 1}\nexpected:\n${ctx(a)}\nactual:\n${ctx(b)}`;
}

const shape = (blocks: Block[]): [number, number, Term][] => blocks.map((b) => [b.start, b.insns.length, b.term]);

test('golden: arithmetic loop whose back edge chains inside the unit', () => {
  const blocks = plan([
    'loop:',
    rv.addi(A0, A0, 1),
    rv.add(A2, A2, A0),
    rv.addi(A1, A1, -1),
    rv.bne(A1, 0, 'loop'),
    rv.jalr(0, RA, 0),
  ]);
  assert.deepEqual(shape(blocks), [[0, 4, Term.BRANCH], [16, 1, Term.JALR]]);
  assert.equal(blocks[0]!.target, 0);
  golden('loop-add', blocks);
});

test('golden: loads and stores with the inline TLB fast path', () => {
  const blocks = plan([
    rv.ld(A2, A0, 0),
    rv.lw(A3, A0, 8),
    rv.lbu(A5, A1, -1),
    rv.add(A4, A2, A3),
    rv.sd(A4, A0, 16),
    rv.sb(A4, A1, 3),
    rv.jalr(0, RA, 0),
  ], 0x40);
  assert.deepEqual(shape(blocks), [[0x40, 7, Term.JALR]]);
  golden('load-store', blocks);
});

test('golden: conditional branches and a jump to blocks outside the unit', () => {
  const blocks = plan([
    rv.addi(A0, A0, 4),
    b(4, A0, A1, -0x204), // blt a0, a1 to page offset -0x100: the previous page
    rv.addi(A2, A2, 1),
    rv.beq(A0, 0, 'in'),
    { h: 0x0505 }, // c.addi a0, 1
    { h: 0x0001 }, // c.nop
    'in:',
    rv.jalAbs(0, 0x2100), // page offset 0x2100: two pages on
  ], 0x100);
  // Blocks come in address order (forward jumps become forward wasm branches).
  assert.deepEqual(shape(blocks), [[0x100, 2, Term.BRANCH], [0x108, 2, Term.BRANCH], [0x110, 2, Term.FALL], [0x114, 1, Term.JAL]]);
  assert.equal(blocks[0]!.target, -0x100, 'the first branch leaves the page backwards');
  assert.equal(blocks[3]!.target, 0x2100, 'the jal leaves the page forwards');
  golden('branch-chain', blocks);
});

test('golden: div/rem and mulh with the RISC-V special cases', () => {
  const blocks = plan([
    rv.div(A2, A0, A1),
    rv.divu(A3, A0, A1),
    rv.rem(A4, A0, A1),
    rv.remu(A5, A0, A1),
    rv.divw(A2, A2, A1),
    rv.remw(A3, A3, A1),
    r(OP_32, 5, 1, A4, A4, A1), // divuw
    r(OP, 1, 1, A5, A0, A1), // mulh
    r(OP, 2, 1, A2, A0, A1), // mulhsu
    r(OP, 3, 1, A3, A0, A1), // mulhu
    rv.jalr(0, RA, 0),
  ]);
  assert.deepEqual(shape(blocks), [[0, 11, Term.JALR]]);
  golden('mul-div', blocks);
});

/** fld rd, imm(rs) (F/D spec: LOAD-FP, width 3). */
const fld = (rd: number, rs: number, imm: number): number => i(0x07, 3, rd, rs, imm);
/** fsd rs2, imm(rs1) (STORE-FP, width 3). */
const fsd = (rs2: number, rs1: number, imm: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | ((imm & 0x1f) << 7) | 0x27) >>> 0;

test('golden: F/D operations (a guarded inline fast path, the helper), FP loads and stores inline', () => {
  const items: Item[] = [
    fld(1, A0, 0),
    rv.fp(0x01, 7, 2, 1, 1), // fadd.d f2, f1, f1 (inline when NX is set and frm is RNE, else the helper)
    rv.fp(0x61, 1, A2, 2, 2), // fcvt.l.d a2, f2, rtz (integer destination: reloaded)
    rv.fp(0x69, 7, 3, A3, 2), // fcvt.d.l f3, a3 (integer source: spilled)
    fsd(3, A0, 8),
    rv.jalr(0, RA, 0),
  ];
  const blocks = plan(items);
  assert.deepEqual(shape(blocks), [[0, 6, Term.JALR]]);
  golden('fp-helper', blocks);
  // FS Off: the first FP instruction ends the block for the interpreter (which raises the exception).
  assert.deepEqual(shape(plan(items, 0, 0, FpAccess.NONE))[0], [0, 0, Term.INTERP]);
  assert.equal(translatable(fld(1, A0, 0), FpAccess.NONE), false);
  assert.equal(translatable(fsd(1, A0, 0), FpAccess.NONE), false);
  // FS Initial or Clean: loads and arithmetic would make FS Dirty, so they go to the interpreter; stores do not.
  assert.deepEqual(shape(plan(items, 0, 0, FpAccess.STORES))[0], [0, 0, Term.INTERP]);
  assert.equal(translatable(fld(1, A0, 0), FpAccess.STORES), false);
  assert.equal(translatable(fsd(1, A0, 0), FpAccess.STORES), true);
});

test('FS Clean: setjmp\'s run of fsd stays in one block, and the first fld ends it', () => {
  // glibc's __sigsetjmp saves fs0-fs11 with fsd while the kernel has left FS Clean: each store used to be
  // a one-instruction trip through the interpreter (12 per setjmp in busybox ash's evaluation loop).
  const saves: Item[] = [];
  for (let k = 0; k < 12; k++) saves.push(fsd(8 + (k < 2 ? k : k + 16 - 2), A0, 8 * k)); // fs0, fs1, fs2-fs11 (f8, f9, f18-f27)
  const items: Item[] = [...saves, rv.addi(A1, A1, 1), fld(8, A0, 0), rv.jalr(0, RA, 0)];
  assert.deepEqual(shape(plan(items, 0, 0, FpAccess.STORES)), [[0, 13, Term.INTERP], [56, 1, Term.JALR]], 'the interpreter runs the fld; the code after it joins the unit');
  assert.deepEqual(shape(plan(items, 0, 0, FpAccess.ALL)), [[0, 15, Term.JALR]]);
});

test('golden: an AMO and CSR accesses through helpers, and a block ending at an instruction the interpreter runs', () => {
  const blocks = plan([
    rv.addi(A0, A0, 8),
    rv.amo(0, 8, A2, A0, A1), // amoadd.d a2, a1, (a0)
    rv.amo(1, 4, 0, A0, A3), // amoswap.w x0, a3, (a0)
    rv.csrrs(A5, 0x001, 0), // frflags a5: an F CSR, inline
    rv.csrrs(A4, 0xc02, 0), // rdinstret a4: the CSR helper (exits to the interpreter if illegal)
    i(SYSTEM, 1, 0, A4, 0x304), // csrw mie, a4: the helper, and an exit if privileged state changed
    ECALL, // the interpreter runs it
    rv.addi(A0, A0, 1),
  ]);
  // The code after the ecall joins the unit, so the dispatcher finds it translated after the interpreter's step.
  assert.deepEqual(shape(blocks), [[0, 6, Term.INTERP], [28, 1, Term.INTERP]]);
  assert.equal(blocks[0]!.end, 24, 'the exit is at the ecall');
  golden('amo-csr-exit', blocks);
});

test('golden: a jalr with learned targets in its page dispatches to them inside the unit', () => {
  // A switch: t0 = handler address; the jalr at 0x0c was seen to jump to 0x10, 0x18 and 0x28
  // (0x20 is a handler too, never seen: it is left to the IBTC).
  const blocks = plan([
    'loop:',
    rv.slli(T0, A0, 3),
    rv.add(T0, T0, S0),
    rv.addi(A0, A0, 1),
    rv.jalr(0, T0, 0),
    rv.addi(A1, A1, 1), rv.jal(0, 'loop'),
    rv.addi(A1, A1, 2), rv.jal(0, 'loop'),
    rv.addi(A1, A1, 3), rv.jal(0, 'loop'),
    rv.addi(A1, A1, 4), rv.jal(0, 'loop'),
  ], 0, 0, FpAccess.ALL, new Map([[0x0c, [0x10, 0x18, 0x28]]]));
  assert.deepEqual(shape(blocks), [[0, 4, Term.JALR], [0x10, 2, Term.JAL], [0x18, 2, Term.JAL], [0x28, 2, Term.JAL]]);
  assert.deepEqual(blocks[0]!.jalrTargets, [0x10, 0x18, 0x28]);
  golden('jalr-in-unit', blocks);
});

test('golden: the first loads of a tight loop check a one-page cache of their own before the TLB', () => {
  const blocks = plan([
    'loop:',
    rv.lbu(A2, A0, 0),
    rv.lw(A3, A0, 4),
    rv.ld(A4, A0, 8), // a third load: the TLB only
    rv.add(A5, A5, A2),
    rv.add(A5, A5, A3),
    rv.addi(A0, A0, 1),
    rv.bne(A0, A1, 'loop'),
    rv.jalr(0, RA, 0),
  ], 0x200);
  assert.deepEqual(shape(blocks), [[0x200, 7, Term.BRANCH], [0x21c, 1, Term.JALR]]);
  golden('loop-load-cache', blocks);
});

test('every golden file belongs to a test', () => {
  if (UPDATE) return;
  const names = fs.readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.txt')).sort();
  assert.deepEqual(names, ['amo-csr-exit.txt', 'branch-chain.txt', 'fp-helper.txt', 'jalr-in-unit.txt', 'load-store.txt', 'loop-add.txt', 'loop-load-cache.txt', 'mul-div.txt']);
});
