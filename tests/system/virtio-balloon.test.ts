/**
 * virtio-balloon driven over QMP against Debian's kernel: the default
 * guest (whose /init loads virtio_balloon) booted with `-device
 * virtio-balloon-device,... -qmp unix:...,server=on,wait=off`.
 *
 * First boot (QEMU's defaults plus free-page-reporting=on and a 1 s
 * statistics poll): the guest's feature bits show reporting negotiated and
 * PAGE_POISON declined (Debian neither poisons nor zeroes free pages by
 * default); statistics arrive on their own (qom-get guest-stats, which does
 * not ask, sees last-update move); the guest reports free pages after boot
 * and again after a file in tmpfs is deleted, the host overwrites the stale
 * data in them, and a file's checksum survives. `balloon` to 256 MiB below
 * the current size makes Linux inflate; without DEFLATE_ON_OOM the driver
 * takes the pages out of MemTotal. query-balloon follows, and the
 * host-side accounting (pages released and zeroed; the process RSS, which
 * cannot shrink for WebAssembly memory) is reported alongside. Deflating
 * gives the memory back; `poweroff -f` ends with a SHUTDOWN event.
 *
 * Second boot (deflate-on-oom=on, free-page-reporting=on, and the kernel's
 * page_poison=1): PAGE_POISON is negotiated with poison_val 0xaaaaaaaa, so
 * the host leaves the poisoned free pages it is told about as they are
 * (a zero fill would trip the guest's poison check); with the balloon
 * leaving the guest 40 MiB free, writing 100 MiB to tmpfs succeeds because
 * the guest takes pages back from the balloon instead of OOM-killing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConsoleSession } from '../helpers/console-session.js';
import { QmpClient, type QmpMsg } from '../helpers/qmp-client.js';
import { ensureDefaultGuest } from '../../src/images/default-guest.js';

const PROMPT = '~ # ';
const BOOT_MS = 300_000;
const MiB = 1024 * 1024;

/** Resident set size of a process in bytes (/proc/PID/status VmRSS, in kB). */
function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** The balloon's negotiated feature bits as the guest shows them (bit 0 first). */
async function features(s: ConsoleSession): Promise<string> {
  const m = /^[01]{64}$/m.exec(await s.run('cat /sys/bus/virtio/devices/*/features', PROMPT));
  assert.ok(m, 'a 64-bit feature string');
  return m[0];
}

/** QOM guest-stats of balloon0 (does not ask the guest for fresh numbers). */
async function guestStats(q: QmpClient): Promise<{ stats: Record<string, number>; 'last-update': number }> {
  return ret(await q.call({ execute: 'qom-get', arguments: { path: '/machine/peripheral/balloon0', property: 'guest-stats' } })) as never;
}

/** Polls query-balloon's device counters until `done` holds; returns them. */
async function waitCounters(q: QmpClient, done: (c: Record<string, number>) => boolean, timeoutMs: number): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = ret(await q.call({ execute: 'query-balloon' }))['__tsvm-counters'] as Record<string, number>;
    if (done(c)) return c;
    if (Date.now() > deadline) throw new Error(`balloon counters did not get there: ${JSON.stringify(c)}`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** Waits until the boot's free page reports are done: pages_reported unchanged over 5 s (Linux reports 2 s after freeing). */
async function settled(q: QmpClient): Promise<Record<string, number>> {
  let last = -1;
  for (const deadline = Date.now() + 120_000; ;) {
    const c = ret(await q.call({ execute: 'query-balloon' }))['__tsvm-counters'] as Record<string, number>;
    if (c['pages_reported'] === last) return c;
    if (Date.now() > deadline) throw new Error(`free page reports did not settle: ${JSON.stringify(c)}`);
    last = c['pages_reported']!;
    await new Promise((res) => setTimeout(res, 5000));
  }
}

async function memTotalBytes(s: ConsoleSession): Promise<number> {
  const m = /MemTotal:\s+(\d+) kB/.exec(await s.run('grep MemTotal /proc/meminfo', PROMPT));
  assert.ok(m, 'MemTotal in /proc/meminfo');
  return Number(m[1]) * 1024;
}

const ret = (m: QmpMsg): QmpMsg => {
  assert.ok('return' in m, `QMP error: ${JSON.stringify(m)}`);
  return m['return'] as QmpMsg;
};

/** Polls query-balloon until `done(actual)` holds; returns the last reply. */
async function waitBalloon(q: QmpClient, done: (actual: number) => boolean, timeoutMs: number): Promise<QmpMsg> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = ret(await q.call({ execute: 'query-balloon' }));
    if (done(r['actual'] as number)) return r;
    if (Date.now() > deadline) throw new Error(`balloon did not settle: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

test('Debian negotiates free page reporting and reports freed pages; statistics arrive on their own; QMP balloon lowers MemTotal; deflate restores it', { timeout: BOOT_MS + 300_000 }, async (t) => {
  await ensureDefaultGuest({ progress: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-balloon-'));
  const sock = path.join(dir, 'qmp.sock');
  const s = new ConsoleSession(['-m', '512M', '-device', 'virtio-balloon-device,id=balloon0,guest-stats-polling-interval=1,free-page-reporting=on',
    '-qmp', `unix:${sock},server=on,wait=off`]);
  let q: QmpClient | null = null;
  try {
    await s.expect(PROMPT, BOOT_MS);
    assert.match(await s.run('cat /sys/bus/virtio/devices/*/device', PROMPT), /0x0005/, 'virtio device ID 5');
    q = await QmpClient.connect(sock);
    assert.ok('QMP' in (await q.next()), 'greeting');
    ret(await q.call({ execute: 'qmp_capabilities' }));
    assert.deepEqual(ret(await q.call({ execute: 'query-status' })), { running: true, status: 'running' });

    // Negotiated features, as the guest sees them (virtio 1.2 §5.5.3).
    const bits = await features(s);
    t.diagnostic(`features ${bits.slice(0, 8)}`);
    assert.equal(bits.slice(0, 6), '110001', 'MUST_TELL_HOST, STATS_VQ and REPORTING; no DEFLATE_ON_OOM (off), no FREE_PAGE_HINT; PAGE_POISON offered but declined');
    assert.match(s.output, /Free page reporting enabled/);

    // Statistics every second, without asking: qom-get does not request them.
    const first = await guestStats(q), seen = new Set([first['last-update']]);
    for (const deadline = Date.now() + 60_000; seen.size < 3;) {
      assert.ok(Date.now() < deadline, `statistics did not keep arriving: last-update values ${[...seen].join(', ')}`);
      await new Promise((r) => setTimeout(r, 500));
      seen.add((await guestStats(q))['last-update']);
    }
    const later = await guestStats(q);
    t.diagnostic(`guest-stats last-update ${[...seen].join(' -> ')}`);
    assert.ok(later['last-update'] > first['last-update'], 'the device polled the guest by itself, repeatedly');
    assert.ok(later.stats['stat-total-memory']! > 400 * MiB);

    // Free page reporting: the boot's free memory, then a deleted tmpfs file, come back as reports.
    await waitCounters(q, (c) => c['pages_reported']! > 0, 60_000);
    const booted = await settled(q);
    const zeroedBefore = (ret(await q.call({ execute: 'query-balloon' }))['__tsvm-host'] as Record<string, number>)['zeroed-pages']!;
    // (Commands stay shorter than the 80-column console line, which the guest's echo would wrap.)
    await s.run('dd if=/dev/urandom of=/tmp/keep bs=1M count=4 2>/dev/null', PROMPT);
    const sum = await s.run('md5sum /tmp/keep', PROMPT);
    // 64 MiB of non-zero data in tmpfs, then freed: Debian does not clear freed pages, so they go back to the allocator dirty.
    await s.run('for i in $(seq 16); do cat /tmp/keep; done >/tmp/x', PROMPT, 120_000);
    await s.run('rm /tmp/x', PROMPT);
    const after = await waitCounters(q, (c) => c['pages_reported']! >= booted['pages_reported']! + 4096, 60_000);
    const acct = ret(await q.call({ execute: 'query-balloon' }))['__tsvm-host'] as Record<string, number>;
    t.diagnostic(`reported ${after['pages_reported']} pages in ${after['reports']} reports; the host overwrote ${acct['zeroed-pages']! - zeroedBefore} reported pages holding stale data`);
    assert.ok(acct['zeroed-pages']! - zeroedBefore >= 2048, 'the freed file\'s pages were reported and discarded (zeroed)');
    assert.ok(acct['reported-total-pages']! >= after['pages_reported']!);
    assert.equal(await s.run('md5sum /tmp/keep', PROMPT), sum, 'data in use survives the discards');

    const memBefore = await memTotalBytes(s);
    const current = ret(await q.call({ execute: 'query-balloon' }))['actual'] as number;
    assert.equal(current, 512 * MiB, 'before inflating, the logical size is all of RAM');
    const rssBefore = rssBytes(s.child.pid!);
    const target = current - 256 * MiB;
    ret(await q.call({ execute: 'balloon', arguments: { value: target } }));
    const inflated = await waitBalloon(q, (a) => a <= target, 180_000);
    const memAfter = await memTotalBytes(s);
    const rssAfter = rssBytes(s.child.pid!);
    const host = inflated['__tsvm-host'] as Record<string, number>;
    t.diagnostic(`MemTotal ${(memBefore / MiB).toFixed(1)} -> ${(memAfter / MiB).toFixed(1)} MiB; query-balloon actual ${(inflated['actual'] as number) / MiB} MiB`);
    t.diagnostic(`host: released ${(host['released-bytes']! / MiB).toFixed(1)} MiB, ${host['zeroed-pages']} pages had data and were zeroed; `
      + `tsvm RSS ${(rssBefore / MiB).toFixed(0)} -> ${(rssAfter / MiB).toFixed(0)} MiB (WebAssembly memory cannot be unmapped)`);
    assert.ok(memBefore - memAfter >= 200 * MiB, `MemTotal dropped by ${(memBefore - memAfter) / MiB} MiB`);
    assert.ok(host['released-bytes']! >= 256 * MiB - 4096, 'the host accounts the released pages');
    assert.ok(host['released-bytes']! <= 256 * MiB);

    // Guest statistics arrive over the stats queue (refreshed on each query).
    await new Promise((r) => setTimeout(r, 1000));
    const withStats = ret(await q.call({ execute: 'query-balloon' }));
    const stats = withStats['__tsvm-guest-stats'] as Record<string, number> | undefined;
    assert.ok(stats, 'the guest reported statistics');
    t.diagnostic(`guest stats: ${JSON.stringify(stats)}`);
    assert.ok(Math.abs(stats['total-memory']! - memAfter) <= 4 * MiB, 'the guest reports the lowered total');

    // Deflate: the guest gets its memory back.
    ret(await q.call({ execute: 'balloon', arguments: { value: current } }));
    const deflated = await waitBalloon(q, (a) => a === current, 180_000);
    assert.equal((deflated['__tsvm-host'] as Record<string, number>)['released-bytes'], 0);
    const memRestored = await memTotalBytes(s);
    assert.equal(memRestored, memBefore, 'MemTotal is back');

    s.send('poweroff -f');
    assert.equal(await s.exited, 0);
    const shutdown = await q.event('SHUTDOWN');
    assert.deepEqual(shutdown['data'], { guest: true, reason: 'guest-shutdown' });
  } finally {
    q?.close();
    s.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('deflate-on-oom: a guest short of memory takes pages back from the balloon instead of OOM-killing; page poison keeps reporting on', { timeout: BOOT_MS + 300_000 }, async (t) => {
  await ensureDefaultGuest({ progress: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-balloon-oom-'));
  const sock = path.join(dir, 'qmp.sock');
  const s = new ConsoleSession(['-m', '512M', '-device', 'virtio-balloon-device,id=balloon0,deflate-on-oom=on,free-page-reporting=on',
    '-append', 'console=ttyS0 page_poison=1', '-qmp', `unix:${sock},server=on,wait=off`]);
  let q: QmpClient | null = null;
  try {
    await s.expect(PROMPT, BOOT_MS);
    q = await QmpClient.connect(sock);
    await q.next();
    ret(await q.call({ execute: 'qmp_capabilities' }));
    const bits = await features(s);
    t.diagnostic(`features ${bits.slice(0, 8)}`);
    assert.equal(bits.slice(0, 6), '111011', 'MUST_TELL_HOST, STATS_VQ, DEFLATE_ON_OOM, PAGE_POISON and REPORTING');
    const start = ret(await q.call({ execute: 'query-balloon' }));
    assert.equal(start['__tsvm-poison-val'], 0xaaaaaaaa, 'the guest wrote its poison value (PAGE_POISON 0xaa bytes) to poison_val');

    // The guest reports its poisoned free pages; the host must leave the poison in place.
    const reported = await waitCounters(q, (c) => c['pages_reported']! > 0, 60_000);
    const host = ret(await q.call({ execute: 'query-balloon' }))['__tsvm-host'] as Record<string, number>;
    t.diagnostic(`reported ${reported['pages_reported']} poisoned pages; the host overwrote ${host['zeroed-pages']}`);
    assert.equal(host['zeroed-pages'], 0, 'every reported page already held poison_val: nothing was overwritten');

    // Leave the guest about 40 MiB free, then ask for 100 MiB it cannot reclaim (tmpfs, no swap).
    const MemTotal = await memTotalBytes(s);
    const target = 128 * MiB;
    ret(await q.call({ execute: 'balloon', arguments: { value: target } }));
    await waitBalloon(q, (a) => a <= target, 180_000);
    assert.equal(await memTotalBytes(s), MemTotal, 'with DEFLATE_ON_OOM the ballooned pages stay in MemTotal');
    const out = await s.run('dd if=/dev/zero of=/tmp/big bs=1M count=100 2>/dev/null; echo rc=$?', PROMPT, 300_000);
    assert.match(out, /rc=0/, 'the memory-hungry command succeeded');
    const after = ret(await q.call({ execute: 'query-balloon' }));
    const c = after['__tsvm-counters'] as Record<string, number>;
    t.diagnostic(`after dd: logical size ${(after['actual'] as number) / MiB} MiB, ${c['pages_deflated']} pages deflated by the guest`);
    assert.ok((after['actual'] as number) > target, 'the guest took pages back (actual grew)');
    assert.ok(c['pages_deflated']! > 0);
    assert.equal(await s.run('dmesg | grep -c -i -E "out of memory|killed process|corrupt"', PROMPT), '0', 'no OOM kill, no poison corruption');
    assert.ok(s.child.exitCode === null);
    s.send('poweroff -f');
    assert.equal(await s.exited, 0);
  } finally {
    q?.close();
    s.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('QMP stop/cont pause and resume the guest; quit ends the VM', { timeout: BOOT_MS + 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-qmp-'));
  const sock = path.join(dir, 'qmp.sock');
  const s = new ConsoleSession(['-m', '256M', '-qmp', `unix:${sock},server=on,wait=off`]);
  let q: QmpClient | null = null;
  try {
    await s.expect(PROMPT, BOOT_MS);
    q = await QmpClient.connect(sock);
    await q.next();
    ret(await q.call({ execute: 'qmp_capabilities' }));
    ret(await q.call({ execute: 'stop' }));
    await q.event('STOP');
    assert.deepEqual(ret(await q.call({ execute: 'query-status' })), { running: false, status: 'paused' });
    s.send('echo resumed-$((2+3))');
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(!s.output.includes('resumed-5'), 'a paused guest does not run');
    ret(await q.call({ execute: 'cont' }));
    await q.event('RESUME');
    await s.expect('resumed-5', 30_000);
    const bad = await q.call({ execute: 'no-such-command', id: 1 });
    assert.equal((bad['error'] as QmpMsg)['class'], 'CommandNotFound');
    assert.deepEqual(await q.call({ execute: 'quit', id: 2 }), { return: {}, id: 2 });
    const shutdown = await q.event('SHUTDOWN', 30_000);
    assert.deepEqual(shutdown['data'], { guest: false, reason: 'host-qmp-quit' });
    assert.equal(await s.exited, 0);
    assert.ok(!fs.existsSync(sock), 'the QMP socket is removed at exit');
  } finally {
    q?.close();
    s.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
