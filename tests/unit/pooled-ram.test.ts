/**
 * The guest-memory interface (src/memory/guest-memory.ts) on both
 * implementations, and harts running on a PooledRam: reads of untouched
 * pages see the zero frame without taking one; a page the sharing scanner
 * merged is read through the shared frame and copied on the first write,
 * whether the store comes from the interpreter or from translated code
 * (whose inline TLB lookup holds the frame's addend); a merged code page
 * keeps running, and a store into it takes a private copy and runs the
 * new code; a tight loop whose cached load read the zero frame reads its
 * own copy-on-write. Runs under every engine (TSVM_JIT picks the hart's
 * engine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestRam } from '../../src/memory/guest-ram.js';
import { PooledRam } from '../../src/memory/pooled-ram.js';
import { FramePool, ZERO_FRAME } from '../../src/memory/frame-pool.js';
import { PageSharing } from '../../src/memory/page-sharing.js';
import { P2M_UNBACKED } from '../../src/memory/p2m.js';
import type { GuestMemory } from '../../src/memory/guest-memory.js';
import { Hart, ExitReason } from '../../src/cpu/hart.js';
import { FlatTranslator } from '../../src/mmu/flat-translator.js';
import { execute } from '../../src/cpu/interpreter.js';
import { Jit } from '../../src/jit/engine.js';
import { S } from '../../src/cpu/hart-state.js';
import { defaultJitConfig } from '../../src/jit/jit-config.js';
import { i, s, u, b, j, LOAD, STORE, OP_IMM, LUI, ECALL } from '../helpers/asm.js';
import { Prng } from '../helpers/prng.js';

const BASE = 0x40000000, PAGE = 4096; // below 2^31: li's sign extension keeps the addresses
const SEED = Number(process.env['POOLED_SEED'] ?? 20261206);

function memories(): [string, GuestMemory][] {
  const pool = new FramePool({ frames: 512 });
  return [['GuestRam', new GuestRam(64 * PAGE, BASE)], ['PooledRam', new PooledRam(pool, 64 * PAGE, BASE, 2, 'conf')]];
}

test(`guest memory: reads and writes across page boundaries, bounds, zero (seed ${SEED})`, () => {
  const rnd = new Prng(SEED);
  for (const [name, m] of memories()) {
    const data = new Uint8Array(3 * PAGE + 123).map(() => rnd.int(256));
    const at = BASE + 5 * PAGE - 77;
    assert.ok(m.write(at, data), name);
    const back = new Uint8Array(data.length);
    assert.ok(m.read(at, back), name);
    assert.deepEqual(back, data, `${name}: round trip across 4 pages`);
    assert.equal(m.write(BASE + 64 * PAGE - 2, new Uint8Array(4)), false, `${name}: a write past the end is refused`);
    assert.equal(m.read(BASE - 1, new Uint8Array(2)), false, `${name}: a read before RAM is refused`);
    const probe = new Uint8Array(2);
    assert.ok(m.read(BASE + 64 * PAGE - 2, probe) && probe.every((x) => x === 0), `${name}: the refused write changed nothing`);
    assert.ok(m.zero(at + 10, PAGE));
    assert.ok(m.read(at, back));
    assert.ok(back.subarray(10, 10 + PAGE).every((x) => x === 0) && back[9] === data[9] && back[10 + PAGE] === data[10 + PAGE], `${name}: zero clears exactly its range`);
    assert.equal(m.hostPage(BASE + 64 * PAGE, false), -1, `${name}: past the end is not RAM`);
  }
});

test('PooledRam: an untouched page reads the zero frame without a frame; the first write takes one', () => {
  const pool = new FramePool({ frames: 64 });
  const m = new PooledRam(pool, 16 * PAGE, BASE, 1, 'lazy');
  const used = pool.framesUsed;
  assert.equal(m.hostPage(BASE + 3 * PAGE + 8, false), ZERO_FRAME * PAGE);
  assert.equal(m.lastWritable, false, 'the zero frame is never writable');
  assert.equal(pool.framesUsed, used, 'a read takes no frame');
  const h = m.hostPage(BASE + 3 * PAGE, true);
  assert.ok(h > 0 && m.lastWritable);
  assert.equal(pool.framesUsed, used + 1);
  assert.equal(m.p2m.stats().pages_private, 1);
  m.release();
  assert.equal(pool.framesUsed, 0);
});

test('PooledRam: a loader-style write leaves all-zero whole pages unbacked and fills fresh pages over stale frames exactly', () => {
  const pool = new FramePool({ frames: 64 });
  // A frame freed with stale bytes in it: the next VM's whole-page write takes it without the zero fill.
  const old = new PooledRam(pool, 16 * PAGE, BASE, 1, 'old');
  assert.ok(old.write(BASE, new Uint8Array(8 * PAGE).fill(0xa5)));
  old.release();
  const m = new PooledRam(pool, 16 * PAGE, BASE, 1, 'load');
  const used = pool.framesUsed;
  const img = new Uint8Array(4 * PAGE + 100);
  img.fill(7, 0, PAGE); // page 0: data; pages 1 and 2: zero; page 3: one byte at its end; then a partial page of zeros
  img[4 * PAGE - 1] = 9;
  assert.ok(m.write(BASE + 2 * PAGE, img));
  const e = (k: number): number => m.p2m.entry(2 + k);
  assert.ok(e(0) > 0 && e(3) > 0, 'pages with data get frames');
  assert.equal(e(1), P2M_UNBACKED, 'an all-zero whole page stays unbacked');
  assert.equal(e(2), P2M_UNBACKED);
  assert.ok(e(4) > 0, 'a partial page takes a (zeroed) frame as before');
  assert.equal(pool.framesUsed, used + 3);
  const back = new Uint8Array(6 * PAGE);
  assert.ok(m.read(BASE + 2 * PAGE, back));
  const want = new Uint8Array(6 * PAGE); want.set(img);
  assert.deepEqual(back, want, 'the guest reads exactly the image, zeros after it, no stale bytes');
  // Zeros written over a page that holds data are stored, not skipped.
  assert.ok(m.write(BASE + 2 * PAGE, new Uint8Array(PAGE)));
  assert.ok(m.read(BASE + 2 * PAGE, back.subarray(0, PAGE)) && back.subarray(0, PAGE).every((x) => x === 0));
  assert.ok(e(0) > 0);
  // An unaligned source takes the copying path and still round-trips.
  const raw = new Uint8Array(2 * PAGE + 1); raw.fill(3, 1);
  assert.ok(m.write(BASE + 10 * PAGE, raw.subarray(1)));
  const b2 = new Uint8Array(2 * PAGE);
  assert.ok(m.read(BASE + 10 * PAGE, b2) && b2.every((x) => x === 3));
  m.release();
  assert.equal(pool.framesUsed, 0);
});

/** A hart on a PooledRam, run by the engine TSVM_JIT selects (threshold 0 when the JIT is on, so the code is translated at once). */
function pooledHart(): { m: PooledRam; pool: FramePool; sharing: PageSharing; hart: Hart; engine: string } {
  const pool = new FramePool({ frames: 256 });
  const m = new PooledRam(pool, 32 * PAGE, BASE, 1, 'hart');
  const sharing = new PageSharing(pool);
  sharing.register(m.p2m, true);
  const hart = new Hart(m, new FlatTranslator(m, BASE));
  m.onRemap = (host) => { for (const t of hart.tlbs) t.dropHost(host); };
  const cfg = defaultJitConfig();
  let engine = 'interpreter';
  if (cfg.enabled) { new Jit(m, { threshold: 0, cacheBytes: 1 << 24 }).attach(hart); engine = 'jit'; }
  return { m, pool, sharing, hart, engine };
}

/** Runs until the ecall at the end (cause 8 or 11, an exception exit). */
function run(h: Hart): void {
  for (let n = 0; n < 1000; n++) {
    const r = execute(h, 1000);
    if (r === ExitReason.EXCEPTION) { assert.ok([8, 11].includes(h.st.s[S.EXIT_CAUSE]!), `an ecall ended the program (cause ${h.st.s[S.EXIT_CAUSE]})`); return; }
    assert.equal(r, ExitReason.BUDGET);
  }
  assert.fail('the program did not reach its ecall');
}

const A0 = 10, A1 = 11, A2 = 12, T0 = 5;
const CODE = BASE + 0x1000, D1 = BASE + 0x8000, D2 = BASE + 0x9000;

/** lui+addi a (sign-extended) 32-bit value into rd. */
function li(rd: number, v: number): number[] {
  const hi = ((v + 0x800) >> 12) & 0xfffff, lo = (v << 20) >> 20;
  return [u(LUI, rd, hi), i(OP_IMM, 0, rd, rd, lo)];
}

function put32(m: GuestMemory, at: number, words: number[]): void {
  const b = new Uint8Array(4 * words.length), dv = new DataView(b.buffer);
  words.forEach((w, k) => dv.setUint32(4 * k, w >>> 0, true));
  assert.ok(m.write(at, b));
}
function get64(m: GuestMemory, at: number): number {
  const b = new Uint8Array(8);
  assert.ok(m.read(at, b));
  return Number(new DataView(b.buffer).getBigInt64(0, true));
}

test('a hart on PooledRam: merged data pages are read shared and copied on the first store', () => {
  const { m, pool, sharing, hart, engine } = pooledHart();
  // a0 = D1, a1 = D2; t0 = ld 0(a0); sd a2(=1234) -> 0(a0); a2 = ld 0(a1); ecall
  put32(m, CODE, [...li(A0, D1 | 0), ...li(A1, D2 | 0), ...li(A2, 1234), i(LOAD, 3, T0, A0, 0), s(STORE, 3, A0, A2, 0), i(LOAD, 3, A2, A1, 0), ECALL]);
  put32(m, D1, [77, 0]); put32(m, D2, [77, 0]); // two identical data pages
  hart.st.setPc(CODE);
  run(hart); // warm: the TLB caches both pages writable, the JIT translates the code
  assert.equal(get64(m, D1), 1234);
  put32(m, D1, [77, 0]);
  // Merge: D1 and D2 now map one read-only shared frame; the hart's TLB entries for them are dropped.
  for (let k = 0; k < 4; k++) sharing.scan(1000);
  const g1 = (D1 - BASE) / PAGE, g2 = (D2 - BASE) / PAGE;
  assert.equal(m.p2m.entry(g1), m.p2m.entry(g2), `${engine}: the scanner merged the two data pages`);
  const used = pool.framesUsed;
  hart.st.setPc(CODE);
  run(hart);
  assert.equal(Number(hart.st.x[2 * T0]), 77, `${engine}: the load read the shared frame`);
  assert.equal(get64(m, D1), 1234, `${engine}: the store landed in the writer's page`);
  assert.equal(get64(m, D2), 77, `${engine}: the other page still holds the old value`);
  assert.equal(Number(hart.st.x[2 * A2]), 77, `${engine}: and the hart reads it so`);
  assert.notEqual(m.p2m.entry(g1), m.p2m.entry(g2), `${engine}: copy-on-write split them`);
  assert.equal(pool.framesUsed, used + 1, `${engine}: the copy took one frame`);
});

test('a hart on PooledRam: a merged code page keeps running; a store into it runs the new code', () => {
  const { m, sharing, hart, engine } = pooledHart();
  const C2 = CODE + 0x4000;
  // Two identical code pages; the program at CODE sets a0 = 5 and ecalls.
  const prog = [...li(A0, 5), ECALL];
  put32(m, CODE, prog); put32(m, C2, prog);
  hart.st.setPc(CODE);
  run(hart);
  assert.equal(Number(hart.st.x[2 * A0]), 5);
  for (let k = 0; k < 4; k++) sharing.scan(1000);
  assert.equal(m.p2m.entry((CODE - BASE) / PAGE), m.p2m.entry((C2 - BASE) / PAGE), `${engine}: the code pages merged`);
  hart.st.setPc(CODE);
  run(hart);
  assert.equal(Number(hart.st.x[2 * A0]), 5, `${engine}: the merged page runs`);
  // The program rewrites its own first instruction pair (li a0, 9) through a store, then runs again.
  const patch = li(A0, 9);
  const writer = [...li(A1, CODE | 0), ...li(A2, patch[0]!), s(STORE, 2, A1, A2, 0), ...li(A2, patch[1]!), s(STORE, 2, A1, A2, 4), ECALL];
  const W = CODE + 0x2000;
  put32(m, W, writer);
  hart.st.setPc(W);
  run(hart);
  hart.st.setPc(CODE);
  run(hart);
  assert.equal(Number(hart.st.x[2 * A0]), 9, `${engine}: the patched code ran`);
  hart.st.setPc(C2);
  run(hart);
  assert.equal(Number(hart.st.x[2 * A0]), 5, `${engine}: the other copy is unchanged`);
});

test('a hart on PooledRam: a page another hart read as the zero frame shows the first write made elsewhere', () => {
  const { m, hart, engine } = pooledHart();
  const other = new Hart(m, new FlatTranslator(m, BASE));
  const prev = m.onRemap!;
  m.onRemap = (host) => { prev(host); for (const t of other.tlbs) t.dropHost(host); };
  // Both harts run: a0 = ld 0(D1); ecall. D1 was never written: both read it through the zero frame.
  put32(m, CODE, [...li(A1, D1 | 0), i(LOAD, 3, A0, A1, 0), ECALL]);
  for (const h of [hart, other]) { h.st.setPc(CODE); run(h); assert.equal(Number(h.st.x[2 * A0]), 0); }
  // The first hart stores 99 (the page leaves the zero frame); the second, whose TLB held the zero frame, reads again.
  put32(m, CODE + 0x100, [...li(A1, D1 | 0), ...li(A2, 99), s(STORE, 3, A1, A2, 0), ECALL]);
  hart.st.setPc(CODE + 0x100);
  run(hart);
  other.st.setPc(CODE);
  run(other);
  assert.equal(Number(other.st.x[2 * A0]), 99, `${engine}: the other hart sees the write, not the zero frame`);
});

test('a hart on PooledRam: a tight loop that reads a zero-frame page and then writes it reads back its own writes', () => {
  const { m, hart, engine } = pooledHart();
  const D3 = BASE + 0xa000; // never touched: reads map the zero frame until the first write copies it
  // a0 = D3, a1 = 5; t0 = ld 0(a0) (the TLB maps the zero frame); j loop
  // loop: a2 = ld 0(a0); a2 += 1; sd a2 -> 0(a0); a1 -= 1; bnez a1, loop; ecall
  put32(m, CODE, [...li(A0, D3 | 0), ...li(A1, 5), i(LOAD, 3, T0, A0, 0), j(0, 4),
    i(LOAD, 3, A2, A0, 0), i(OP_IMM, 0, A2, A2, 1), s(STORE, 3, A0, A2, 0), i(OP_IMM, 0, A1, A1, -1), b(1, A1, 0, -16), ECALL]);
  hart.st.setPc(CODE);
  run(hart);
  assert.equal(get64(m, D3), 5, `${engine}: every iteration read the value the one before wrote`);
});
