/**
 * The host's pieces that need no VM: the console log's ring buffer
 * (randomized, seed printed; LOGRING_SEED=<n> reproduces a run), the
 * HostMemory report's shape and INTERIM arithmetic, and --pool parsing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogRing } from '../../src/host/vm-manager.js';
import { HostMemory } from '../../src/host/host-memory.js';
import { parsePoolSize } from '../../src/host/host-server.js';
import { Prng } from '../helpers/prng.js';

const SEED = Number(process.env.LOGRING_SEED ?? Date.now() % 1_000_000);
console.log(`host-units: LOGRING_SEED=${SEED}`);

test(`LogRing keeps exactly the last CAPACITY bytes written (LOGRING_SEED=${SEED})`, () => {
  const rnd = new Prng(SEED);
  for (const cap of [1, 7, 64, 1000]) {
    const ring = new LogRing(cap);
    let all: number[] = [];
    for (let i = 0; i < 300; i++) {
      const n = rnd.int(3) === 0 ? rnd.int(cap * 3 + 1) : rnd.int(Math.max(1, cap >> 1) + 1);
      const chunk = Uint8Array.from({ length: n }, () => rnd.int(256));
      ring.push(chunk);
      all = all.concat([...chunk]).slice(-cap);
      assert.deepEqual([...ring.snapshot()], all, `capacity ${cap}, push ${i} (${n} bytes)`);
    }
  }
});

test('HostMemory: the stats contract, pool arithmetic and per-VM counters', () => {
  const m = new HostMemory(64 * 1024 * 1024, null);
  assert.deepEqual(m.stats(), {
    pool: { frames_total: 16384, frames_used: 0, frames_free: 16384 },
    sharing: { pages_shared: 0, pages_sharing: 0, pages_unshared: 0, full_scans: 0 },
    swap: { pages_out: 0, pages_in: 0 },
  });
  m.addVm('a', 32 * 1024 * 1024);
  m.addVm('b', 48 * 1024 * 1024); // overcommit: 80 MiB promised in a 64 MiB pool
  assert.equal(m.stats().pool.frames_used, 20480);
  assert.equal(m.stats().pool.frames_free, 0);
  m.update('b', { ...m.vmStats('b')!, pages_ballooned: 8192 });
  assert.equal(m.stats().pool.frames_used, 12288);
  assert.equal(m.stats().pool.frames_free, 4096);
  assert.equal(m.vmStats('a')!.ram_pages, 8192);
  m.removeVm('a');
  assert.equal(m.vmStats('a'), null);
  assert.equal(m.stats().pool.frames_used, 4096);
});

test('--pool accepts 16M to 4G', () => {
  assert.equal(parsePoolSize('1G'), 1024 ** 3);
  assert.equal(parsePoolSize('4G'), 4 * 1024 ** 3);
  for (const bad of ['5G', '8M', 'lots', '']) assert.match(String(parsePoolSize(bad)), /--pool .*16M to 4G/);
});
