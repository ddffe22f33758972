/**
 * The host's policy loop (src/host/host-policy.ts) over a real PoolHost:
 * two VMs' tables on one pool, filled until the pool is short, with their
 * activity words set as their samplers would. The tick must send balloon
 * targets to the idle VM first (the idle memory tax), leave a hand-set
 * balloon alone, and carry out swap requests at the VM's safe point,
 * evicting only that VM's pages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PoolHost } from '../../src/host/pool-host.js';
import { HostPolicy, BALLOON_MAX_FRACTION } from '../../src/host/host-policy.js';
import { P2m } from '../../src/memory/p2m.js';
import { SafePointGate, RemapLog } from '../../src/memory/safe-point.js';

const MiB = 1024 * 1024;
const PAGES = 3000;

/** A VM's table on the host's pool, registered as a worker would; returns its table and activity words. */
function addVm(host: PoolHost, name: string): { p2m: P2m; activity: Float64Array } {
  const p2m = new P2m(host.pool, PAGES, name);
  const gate = new SafePointGate(name), log = new RemapLog();
  const activity = new Float64Array(new SharedArrayBuffer(16));
  activity[0] = 1;
  host.addVm(name, { p2m: p2m.handle(), gate: gate.handle(), log: log.handle(), sharing: false, run: { first: 0, n: 0 }, activity: activity.buffer as SharedArrayBuffer });
  return { p2m, activity };
}

function write(p2m: P2m, pages: number, pool: PoolHost['pool']): void {
  for (let g = 0; g < pages; g++) {
    const f = p2m.frameForWrite(g);
    assert.ok(f >= 0, `${p2m.name} page ${g}: ${p2m.lastError?.message}`);
    pool.i32[f * 1024] = g + 1; // distinct contents
  }
}

test('the policy loop balloons the idle VM first, leaves a pinned balloon alone, and swaps only the VM it names', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-policy-'));
  const host = new PoolHost(16 * MiB, path.join(dir, 'swap'), 32 * MiB, 0);
  try {
    const policy = new HostPolicy(host, 0.75);
    const sent: { name: string; bytes: number }[] = [];
    policy.setBalloon = (name, bytes) => { sent.push({ name, bytes }); return Promise.resolve(); };
    const ramBytes = PAGES * 4096;
    assert.equal(policy.admit('a', ramBytes, 0, undefined), null, 'overcommit within pool plus swap is admitted');
    assert.match(policy.admit('big', 64 * MiB, 0, undefined) ?? '', /more than the pool's .* frames plus .* swap slots/, 'a promise beyond pool plus swap is refused');
    policy.add('a', ramBytes, 0, undefined);
    policy.add('b', ramBytes, 0, undefined);
    const a = addVm(host, 'a'), b = addVm(host, 'b');
    a.activity[0] = 0.1; // idle (as its sampler would report)
    b.activity[0] = 1;
    // Fill the pool to below the soft threshold (4% free).
    write(a.p2m, 2000, host.pool);
    write(b.p2m, host.pool.framesFree - Math.floor(host.pool.framesTotal * 0.03), host.pool);
    const r = await policy.tick();
    assert.ok(r !== null);
    assert.equal(r.state, 'soft', `free ${host.pool.framesFree} of ${host.pool.framesTotal}`);
    const toA = sent.filter((s) => s.name === 'a'), toB = sent.filter((s) => s.name === 'b');
    assert.equal(toA.length, 1, 'the idle VM gets a balloon target');
    const aPages = (ramBytes - toA[0]!.bytes) / 4096;
    assert.ok(aPages > 0 && aPages <= Math.floor(PAGES * BALLOON_MAX_FRACTION), `idle VM's balloon ${aPages} pages, within the 65% cap`);
    assert.ok(toB.every((s) => (ramBytes - s.bytes) / 4096 < aPages), 'the active VM is asked for less than the idle one');
    assert.equal(policy.vmStats('a')!.balloon_target_pages, aPages);
    assert.equal(host.vmStats('a')!.pages_swapped + host.vmStats('b')!.pages_swapped, 0, 'soft state with a working balloon: no swapping');

    // A hand-set balloon pins the VM: the policy sends it nothing, and reclaims by host swap instead.
    policy.pin('a', true);
    sent.length = 0;
    // The pressure stands: a's balloon has not inflated.
    const r2 = await policy.tick();
    assert.ok(r2 !== null);
    assert.equal(sent.filter((s) => s.name === 'a').length, 0, 'no balloon target for a pinned VM');
    assert.ok(host.vmStats('a')!.pages_swapped > 0, 'the pinned idle VM was swapped instead');
    assert.equal(host.vmStats('b')!.pages_swapped, 0, 'the active VM kept its pages');
    assert.equal(policy.stats().swapped_out_by_policy, host.vmStats('a')!.pages_swapped);
    assert.ok(host.pool.framesFree > r.freeFrames, 'swapping freed frames');
    // Every page of a still reads back its contents (swapped ones come back in through the host's swap).
    host.swap!.register(a.p2m);
    for (let g = 0; g < 2000; g++) {
      const f = a.p2m.frameForRead(g);
      assert.ok(f >= 0);
      assert.equal(host.pool.i32[f * 1024], g + 1, `a page ${g}`);
    }
  } finally {
    host.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('in the low state the policy blocks (pauses) a VM above its target, and unblocks it once swapping has brought it down', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-policy-'));
  const host = new PoolHost(16 * MiB, path.join(dir, 'swap'), 32 * MiB, 0);
  try {
    const policy = new HostPolicy(host, 0.75);
    const calls: string[] = [];
    let paused = new Set<string>();
    policy.setBlocked = (name, blocked) => {
      calls.push(`${blocked ? 'block' : 'unblock'} ${name}`);
      const had = paused.has(name);
      paused = new Set(paused);
      if (blocked) paused.add(name); else paused.delete(name);
      return Promise.resolve(blocked !== had);
    };
    const ramBytes = PAGES * 4096;
    policy.add('a', ramBytes, 0, undefined);
    policy.add('b', ramBytes, 0, undefined);
    const a = addVm(host, 'a'), b = addVm(host, 'b');
    policy.pin('a', true); policy.pin('b', true); // no balloons: reclaim by swap only
    a.activity[0] = 0.05;
    b.activity[0] = 1;
    // Fill the pool until under 1% is free: the low state.
    write(a.p2m, 2000, host.pool);
    write(b.p2m, host.pool.framesFree - Math.floor(host.pool.framesTotal * 0.005), host.pool);
    const r = await policy.tick();
    assert.ok(r !== null);
    assert.equal(r.state, 'low', `free ${host.pool.framesFree} of ${host.pool.framesTotal}`);
    const blocked = [...paused];
    assert.ok(blocked.length > 0, `some VM above its target is blocked: ${JSON.stringify(r)}`);
    for (const n of blocked) assert.equal(policy.vmStats(n)!.blocked, true, `${n} shows as blocked`);
    assert.equal(policy.stats().blocked_vms, blocked.length);
    // The tick also swapped: once the VMs are within their targets, the next ticks unblock them.
    for (let k = 0; k < 5 && paused.size > 0; k++) await policy.tick();
    assert.equal(paused.size, 0, `every blocked VM was resumed: ${calls.join(', ')}`);
    assert.ok(calls.filter((c) => c.startsWith('unblock')).length === blocked.length, calls.join(', '));
    assert.equal(policy.stats().blocked_vms, 0);
  } finally {
    host.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
