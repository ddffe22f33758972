/**
 * The host's pieces that need no VM: the console log's ring buffer
 * (randomized, seed printed; LOGRING_SEED=<n> reproduces a run), the
 * HostMemory's stats over the pool, a VM's frames freed by its own thread
 * when the host never took it over, and --pool parsing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LogRing } from '../../src/host/vm-manager.js';
import { HostMemory } from '../../src/host/host-memory.js';
import { VmPoolMemory } from '../../src/host/pool-vm.js';
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

test('HostMemory: the stats contract over the pool; a VM\'s pages and control run come and go', () => {
  const m = new HostMemory(64 * 1024 * 1024, null);
  try {
    assert.deepEqual(m.stats(), {
      pool: { frames_total: 16383, frames_used: 0, frames_free: 16383, frames_control: 0 },
      sharing: { pages_shared: 0, pages_sharing: 0, pages_unshared: 0, pages_volatile: 0, pages_zero: 0, full_scans: 0 },
      swap: { pages_out: 0, pages_in: 0, slots_total: 0, slots_used: 0 },
      policy: { state: 'high', idle_tax: 0.75, ticks: 0, swapped_out_by_policy: 0, blocked_vms: 0 },
    });
    // A VM's side of the pool, in this thread (a worker does the same on its own).
    m.addVm('a', 32 * 1024 * 1024);
    assert.deepEqual(m.vmStats('a'), { ram_pages: 8192, pages_private: 0, pages_shared: 0, pages_zero: 0, pages_ballooned: 0, pages_swapped: 0 });
    const vm = new VmPoolMemory(m.handles(), 'a', true);
    const ram = vm.guestMemory(32 * 1024 * 1024, 0x80000000, 1);
    const control = m.stats().pool.frames_control;
    assert.ok(control > 24, `the CPU area is a control run (${control} frames)`);
    assert.ok(ram.write(0x80000000 + 4096 * 10, new Uint8Array(3 * 4096).fill(7)));
    m.attachVm('a', vm.links());
    assert.equal(m.vmStats('a')!.pages_private, 3);
    assert.equal(m.stats().pool.frames_used, 3);
    assert.equal(m.stats().pool.frames_free, 16383 - 3 - control);
    ram.release?.();
    assert.equal(m.stats().pool.frames_used, 3, 'the worker leaves the frames to the host');
    m.removeVm('a');
    assert.deepEqual([m.stats().pool.frames_used, m.stats().pool.frames_control], [0, 0], 'the host freed the pages and the control run');
    assert.equal(m.vmStats('a')!.pages_private, 3, 'the last counters stay for vm stats');
  } finally {
    m.close();
  }
});

test('VmPoolMemory.discard: a VM the host never took over gives its pages and control run back, once', () => {
  const m = new HostMemory(64 * 1024 * 1024, null);
  try {
    for (const releasedFirst of [false, true]) {
      const vm = new VmPoolMemory(m.handles(), 'dropped', true);
      const ram = vm.guestMemory(32 * 1024 * 1024, 0x80000000, 1);
      assert.ok(ram.write(0x80000000, new Uint8Array(5 * 4096).fill(9)));
      assert.equal(m.stats().pool.frames_used, 5);
      assert.ok(m.stats().pool.frames_control > 0);
      if (releasedFirst) ram.release?.(); // a failed build has released it already: the frames are still left to the host
      assert.equal(m.stats().pool.frames_used, 5);
      vm.discard();
      assert.deepEqual([m.stats().pool.frames_used, m.stats().pool.frames_control], [0, 0], `freed (released first: ${releasedFirst})`);
      vm.discard(); // a second discard must not free the control run again (freeRun would throw)
      assert.deepEqual([m.stats().pool.frames_used, m.stats().pool.frames_free], [0, 16383]);
    }
  } finally {
    m.close();
  }
});

test('--pool accepts 16M to 4G', () => {
  assert.equal(parsePoolSize('1G'), 1024 ** 3);
  assert.equal(parsePoolSize('4G'), 4 * 1024 ** 3);
  for (const bad of ['5G', '8M', 'lots', '']) assert.match(String(parsePoolSize(bad)), /--pool .*16M to 4G/);
});

test('a VM that ends with pages in host swap: the worker lets go, the host frees its slots and keeps running', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-units-swap-'));
  const m = new HostMemory(16 * 1024 * 1024, path.join(dir, 'swap'));
  try {
    m.addVm('a', 8 * 1024 * 1024);
    const vm = new VmPoolMemory(m.handles(), 'a', false);
    const ram = vm.guestMemory(8 * 1024 * 1024, 0x80000000, 1);
    assert.ok(ram.write(0x80000000, new Uint8Array(256 * 4096).fill(9)));
    m.attachVm('a', vm.links());
    vm.detach(); // no run loop in this test: out of the gate, it counts as stopped for the host
    assert.equal(await m.host.swapOut('a', 100), 100, 'the policy\'s swap request evicted 100 pages');
    assert.equal(m.vmStats('a')!.pages_swapped, 100);
    assert.equal(m.stats().swap.slots_used, 100);
    ram.release?.(); // the worker ends: no throw for the swapped pages (the host frees them)
    m.removeVm('a');
    assert.deepEqual([m.stats().pool.frames_used, m.stats().swap.slots_used], [0, 0], 'frames and swap slots back');
  } finally {
    m.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
