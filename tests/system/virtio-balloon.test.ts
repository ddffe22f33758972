/**
 * virtio-balloon driven over QMP: the default guest (whose /init loads
 * virtio_balloon) booted with `-device virtio-balloon-device -qmp
 * unix:...,server=on,wait=off`. `balloon` to 256 MiB below the current
 * size makes Linux inflate; since tsvm does not offer DEFLATE_ON_OOM the
 * driver takes the pages out of MemTotal. query-balloon follows, and the
 * host-side accounting (pages released and zeroed; the process RSS, which
 * cannot shrink for WebAssembly memory) is reported alongside. Deflating
 * gives the memory back; `poweroff -f` ends with a SHUTDOWN event.
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

test('QMP balloon lowers the guest\'s MemTotal; query-balloon and host accounting follow; deflate restores it', { timeout: BOOT_MS + 300_000 }, async (t) => {
  await ensureDefaultGuest({ progress: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-balloon-'));
  const sock = path.join(dir, 'qmp.sock');
  const s = new ConsoleSession(['-m', '512M', '-device', 'virtio-balloon-device', '-qmp', `unix:${sock},server=on,wait=off`]);
  let q: QmpClient | null = null;
  try {
    await s.expect(PROMPT, BOOT_MS);
    assert.match(await s.run('cat /sys/bus/virtio/devices/*/device', PROMPT), /0x0005/, 'virtio device ID 5');
    q = await QmpClient.connect(sock);
    assert.ok('QMP' in (await q.next()), 'greeting');
    ret(await q.call({ execute: 'qmp_capabilities' }));
    assert.deepEqual(ret(await q.call({ execute: 'query-status' })), { running: true, status: 'running' });

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
