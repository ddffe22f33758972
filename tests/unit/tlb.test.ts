/**
 * Unit tests for the software TLB (src/mmu/tlb.ts): what `sfence.vma` with
 * an address must drop when entries hold 4 KiB pieces of superpages
 * (privileged spec §4.2.1), including the superpage filter that lets most
 * flushes skip the scan of every entry; and the addend generated code uses.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tlb, TLB_SIZE, TLB_MASK, TLB_WORDS, TLB_W_ADDEND, TLB_W_HOST, ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC } from '../../src/mmu/tlb.js';

const RWX = ACCESS_READ | ACCESS_WRITE | ACCESS_EXEC;
const MEGA = 0x200000, GIGA = 0x40000000;

/** Is (lo, hi) cached for fetch? */
const cached = (t: Tlb, lo: number, hi: number): boolean => t.fetchHost(lo, hi) >= 0;

test('sfence.vma inside a megapage drops every cached piece of it, and only those', () => {
  const t = new Tlb();
  const mega = 0xc0000000 | 0, hi = -1; // a kernel-half megapage at 0xffffffff_c0000000
  for (let k = 0; k < 8; k++) t.fill((mega + k * 0x1000 * 37) | 0, hi, 0x100000 + k * 0x1000, RWX, 1);
  t.fill(0x10000, 0, 0x5000, RWX, 0); // a user 4 KiB page
  t.fill((mega + MEGA + 0x3000) | 0, hi, 0x9000, RWX, 1); // a piece of the next megapage
  t.flushPage(0x20000, 0); // an unrelated user page: nothing else goes
  for (let k = 0; k < 8; k++) assert.ok(cached(t, (mega + k * 0x1000 * 37) | 0, hi), `piece ${k} kept`);
  assert.ok(cached(t, 0x10000, 0));
  t.flushPage((mega + 0x1ff000) | 0, hi); // the megapage's last 4 KiB, not itself cached
  for (let k = 0; k < 8; k++) assert.ok(!cached(t, (mega + k * 0x1000 * 37) | 0, hi), `piece ${k} dropped`);
  assert.ok(cached(t, 0x10000, 0), 'the 4 KiB page stays');
  assert.ok(cached(t, (mega + MEGA + 0x3000) | 0, hi), 'the next megapage stays');
});

test('sfence.vma inside a gigapage drops its pieces; the filter forgets after a full flush', () => {
  const t = new Tlb();
  t.fill(GIGA + 0x5000, 0, 0x2000, RWX, 2);
  t.fill(GIGA + 0x3ff000, 0, 0x3000, RWX, 2);
  t.flushPage(GIGA + 0x20000000, 0);
  assert.ok(!cached(t, GIGA + 0x5000, 0) && !cached(t, GIGA + 0x3ff000, 0));
  t.fill(GIGA + 0x5000, 0, 0x2000, RWX, 2);
  t.flushAll();
  t.fill(GIGA + 0x5000, 0, 0x2000, RWX, 0); // now a 4 KiB mapping: a flush elsewhere in the old gigapage keeps it
  t.flushPage(GIGA + 0x20000000, 0);
  assert.ok(cached(t, GIGA + 0x5000, 0));
});

test('every one of many megapages is found by a flush of any address inside it', () => {
  const t = new Tlb();
  // 256 megapages (a 512 MiB linear map), one piece each, in distinct entries.
  for (let m = 0; m < 256; m++) t.fill((0x80000000 + m * MEGA + (m % 512) * 0x1000) | 0, -1, m * 0x1000, RWX, 1);
  for (let m = 0; m < 255; m += 17) {
    t.flushPage((0x80000000 + m * MEGA + 0x1ff000) | 0, -1);
    assert.ok(!cached(t, (0x80000000 + m * MEGA + (m % 512) * 0x1000) | 0, -1), `megapage ${m} dropped`);
    assert.ok(cached(t, (0x80000000 + (m + 1) * MEGA + ((m + 1) % 512) * 0x1000) | 0, -1), `megapage ${m + 1} kept`);
  }
  assert.equal(TLB_SIZE >= 256, true);
});

test('an entry\'s addend plus an address\'s low word is the host offset of that address (what generated code adds)', () => {
  const t = new Tlb();
  for (const [lo, hi, host] of [[0x10000, 0, 0x5000], [0xfffff000 | 0, 0, 0x7000], [0xc0123000 | 0, -1, 0x3ff000], [0x2000, 1, 0]] as const) {
    t.fill(lo, hi, host, RWX);
    const j = ((lo >>> 12) & TLB_MASK) * TLB_WORDS;
    for (const off of [0, 1, 0x7ff, 0xfff]) {
      assert.equal((t.e[j + TLB_W_ADDEND]! + ((lo + off) | 0)) | 0, host + off, `0x${(lo >>> 0).toString(16)} + 0x${off.toString(16)}`);
    }
    assert.equal(t.e[j + TLB_W_HOST], host, 'the host offset is kept as well');
  }
});
