/**
 * The host's HTTP API (docs/api.md), route by route, against a real host
 * process and real Debian guests: every route answers, every bad request
 * (malformed JSON, unknown VM, bad sizes, wrong state, bad options) gets a
 * 4xx with a message and the host keeps serving, and a host-side fault in
 * one VM's worker (the test-only x-fault route, enabled by
 * TSVM_HOST_TEST_FAULTS=1) ends that VM alone while another keeps running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { hostRequest, openConsole, type HostReply } from '../../src/host/host-client.js';
import { startTestHost, waitForLog, waitUntil } from '../helpers/host-process.js';
import { TEST_FAULT_ENV } from '../../src/host/vm-worker-protocol.js';

const PROMPT = '~ # ';
const BOOT_MS = 240_000;
const MiB = 1024 * 1024;

type Obj = Record<string, unknown>;
const obj = (r: HostReply): Obj => r.body as Obj;

/** Asserts a 4xx JSON error with a message. */
function assertClientError(r: HostReply, status: number, match?: RegExp): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  const e = obj(r)['error'];
  assert.equal(typeof e, 'string');
  assert.ok((e as string).length > 0);
  if (match) assert.match(e as string, match);
}

test('the host API: every route, bad requests, and a worker fault that ends one VM only', { timeout: BOOT_MS + 120_000 }, async () => {
  const h = await startTestHost({ [TEST_FAULT_ENV]: '1' }, ['--page-sharing', 'on']);
  const sock = h.socket;
  const req = (method: string, p: string, body?: unknown): Promise<HostReply> => hostRequest(sock, method, p, body);
  try {
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600, 'socket mode 0600');
    const info = await req('GET', '/v1/host');
    assert.equal(info.status, 200);
    assert.equal(obj(info)['pid'], h.child.pid);

    const hs = obj(await req('GET', '/v1/host/stats'));
    assert.deepEqual(Object.keys(hs['pool'] as Obj).sort(), ['frames_control', 'frames_free', 'frames_total', 'frames_used']);
    assert.deepEqual(Object.keys(hs['sharing'] as Obj).sort(), ['full_scans', 'pages_shared', 'pages_sharing', 'pages_unshared', 'pages_volatile', 'pages_zero']);
    assert.deepEqual(Object.keys(hs['swap'] as Obj).sort(), ['pages_in', 'pages_out', 'slots_total', 'slots_used']);
    assert.equal((hs['pool'] as Obj)['frames_total'], 1024 * MiB / 4096 - 1); // one frame of the pool is the zero page

    assert.deepEqual((await req('GET', '/v1/vms')).body, []);

    // Bad requests to create a VM.
    assertClientError(await req('POST', '/v1/vms', '{"name": "x",'), 400, /malformed JSON/);
    assertClientError(await req('POST', '/v1/vms', '[1,2]'), 400, /JSON object/);
    assertClientError(await req('POST', '/v1/vms', { name: 'bad name!' }), 400, /bad VM name/);
    assertClientError(await req('POST', '/v1/vms', { name: 'x', args: '-m 1G' }), 400, /array of strings/);
    assertClientError(await req('POST', '/v1/vms', { name: 'x', args: ['-m', '5G'] }), 400, /invalid -m/);
    assertClientError(await req('POST', '/v1/vms', { name: 'x', args: ['-frobnicate'] }), 400, /unknown option/);
    assertClientError(await req('POST', '/v1/vms', { name: 'x', args: ['-kernel', '/nonexistent/vmlinux'] }), 400, /no such file/);
    assertClientError(await req('POST', '/v1/vms', { name: 'x', paused: 'yes' }), 400, /paused/);
    // Unknown routes, methods and VMs.
    assertClientError(await req('GET', '/v2/vms'), 404, /no route/);
    assertClientError(await req('GET', '/v1/vms/x/frob'), 404, /no route/);
    assertClientError(await req('PUT', '/v1/vms'), 405);
    assertClientError(await req('GET', '/v1/vms/%ZZ'), 400, /percent-encoding/);
    for (const [m, p] of [['GET', '/v1/vms/nope'], ['GET', '/v1/vms/nope/stats'], ['GET', '/v1/vms/nope/logs'], ['POST', '/v1/vms/nope/pause'],
      ['POST', '/v1/vms/nope/resume'], ['POST', '/v1/vms/nope/stop'], ['POST', '/v1/vms/nope/kill'], ['DELETE', '/v1/vms/nope'],
      ['POST', '/v1/vms/nope/qmp'], ['POST', '/v1/vms/nope/balloon']] as const) {
      assertClientError(await req(m, p, m === 'POST' ? { size: '1M', execute: 'query-status' } : undefined), 404, /no VM named 'nope'/);
    }
    await assert.rejects(openConsole(sock, 'nope'), /no VM named 'nope'/);
    assert.equal((await req('GET', '/v1/host')).status, 200, 'the host still serves after the bad requests');
    assert.deepEqual((await req('GET', '/v1/vms')).body, [], 'no VM was left behind by the failed creations');

    // Two VMs in parallel.
    const cx = await req('POST', '/v1/vms', { name: 'x', args: ['-m', '128M'] });
    assert.equal(cx.status, 201, JSON.stringify(cx.body));
    assert.equal(obj(cx)['state'], 'running');
    assert.equal(typeof obj(cx)['start_ms'], 'number');
    console.log(`VM x: start_ms ${String(obj(cx)['start_ms'])} (${JSON.stringify(obj(cx)['start'])})`);
    const cy = await req('POST', '/v1/vms', { name: 'y', args: ['-m', '128M'] });
    assert.equal(cy.status, 201, JSON.stringify(cy.body));
    console.log(`VM y: start_ms ${String(obj(cy)['start_ms'])} (${JSON.stringify(obj(cy)['start'])})`);
    assertClientError(await req('POST', '/v1/vms', { name: 'x', args: [] }), 409, /already exists/);
    const ls = (await req('GET', '/v1/vms')).body as Obj[];
    assert.deepEqual(ls.map((v) => v['name']), ['x', 'y']);
    assert.equal(ls[0]!['ram_bytes'], 128 * MiB);
    assert.equal(obj(await req('GET', '/v1/host/stats'))['vms'], 2);

    await Promise.all([waitForLog(sock, 'x', PROMPT, BOOT_MS), waitForLog(sock, 'y', PROMPT, BOOT_MS)]);
    // The two identical guests share pages through the host's scanner (their workers stop at safe points for it).
    await waitUntil(async () => ((obj(await req('GET', '/v1/host/stats'))['sharing'] as Obj)['pages_sharing'] as number) > 1000, 120_000, 'the scanner to merge pages of x and y');
    const sx = obj(await req('GET', '/v1/vms/x/stats')), sy = obj(await req('GET', '/v1/vms/y/stats'));
    assert.ok((sx['pages_shared'] as number) > 0 && (sy['pages_shared'] as number) > 0, `both VMs map shared frames: ${JSON.stringify([sx, sy])}`);
    const vs = obj(await req('GET', '/v1/vms/x/stats'));
    for (const k of ['state', 'ram_pages', 'pages_private', 'pages_shared', 'pages_zero', 'pages_ballooned', 'pages_swapped']) assert.ok(k in vs, k);
    assert.equal(vs['ram_pages'], 128 * MiB / 4096);
    const th = vs['thread'] as Obj;
    assert.ok((th['heap_used_bytes'] as number) > 0 && (th['heap_used_bytes'] as number) <= (th['heap_total_bytes'] as number), `the worker's heap: ${JSON.stringify(th)}`);
    assert.ok((th['jit_live_bytes'] as number) > 0 && (th['jit_live_bytes'] as number) <= (th['jit_cache_bytes'] as number), `a booted guest has live translated code under the cap: ${JSON.stringify(th)}`);
    assert.equal(obj(await req('GET', '/v1/vms/x'))['state'], 'running');

    // Wrong states.
    assertClientError(await req('POST', '/v1/vms/x/resume'), 409, /running/);
    assert.equal(obj(await req('POST', '/v1/vms/x/pause'))['state'], 'paused');
    assertClientError(await req('POST', '/v1/vms/x/pause'), 409, /paused/);
    assert.deepEqual(obj(await req('POST', '/v1/vms/x/qmp', { execute: 'query-status' }))['return'], { running: false, status: 'paused' });
    assert.equal(obj(await req('POST', '/v1/vms/x/resume'))['state'], 'running');
    assertClientError(await req('DELETE', '/v1/vms/x'), 409, /stop it first/);

    // QMP through the host: QMP's own replies, errors included; malformed JSON is the API's 400.
    assert.deepEqual(obj(await req('POST', '/v1/vms/x/qmp', { execute: 'query-status' }))['return'], { running: true, status: 'running' });
    const nf = obj(await req('POST', '/v1/vms/x/qmp', { execute: 'no-such-command', id: 7 }));
    assert.equal((nf['error'] as Obj)['class'], 'CommandNotFound');
    assert.equal(nf['id'], 7);
    assertClientError(await req('POST', '/v1/vms/x/qmp', '{execute'), 400, /malformed JSON/);

    // The balloon: bad sizes, then a real inflation the guest performs.
    assertClientError(await req('POST', '/v1/vms/x/balloon', { size: 'lots' }), 400, /bad balloon size/);
    assertClientError(await req('POST', '/v1/vms/x/balloon', { size: -5 }), 400, /bad balloon size/);
    assertClientError(await req('POST', '/v1/vms/x/balloon', { size: '1G' }), 400, /more than the VM's RAM/);
    assertClientError(await req('POST', '/v1/vms/x/balloon', '{"size":'), 400, /malformed JSON/);
    // The guest first writes 48 MiB and frees it: its free memory then holds frames, which the inflating balloon
    // takes back (a balloon made of pages the guest never touched would free no frame, and the check below would
    // depend on which free pages Linux hands the balloon).
    const churn = await openConsole(sock, 'x');
    let churnOut = '';
    churn.on('data', (d: Buffer) => { churnOut += d.toString('latin1'); });
    churn.write('dd if=/dev/urandom of=/root/churn bs=1M count=48 2>/dev/null; rm /root/churn; echo churned-$((40+2))\n');
    await waitUntil(() => Promise.resolve(churnOut.includes('churned-42')), 120_000, 'x to write and free 48 MiB');
    churn.destroy();
    const used0 = ((obj(await req('GET', '/v1/host/stats'))['pool'] as Obj)['frames_used'] as number);
    const b = await req('POST', '/v1/vms/x/balloon', { size: '96M' });
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(obj(b)['target_bytes'], 96 * MiB);
    await waitUntil(async () => obj(await req('GET', '/v1/vms/x/stats'))['pages_ballooned'] === 32 * MiB / 4096, 60_000, 'x to give 32 MiB to the balloon');
    // The ballooned pages' frames went back to the pool (the p2m table maps them as ballooned).
    const hs2 = obj(await req('GET', '/v1/host/stats')), used1 = (hs2['pool'] as Obj)['frames_used'] as number;
    assert.ok(used1 < used0, `frames in use fell when x ballooned: ${used0} -> ${used1}`);
    // And back: the guest deflates, its pages come back (unbacked until written), and it keeps working (the console below).
    assert.equal((await req('POST', '/v1/vms/x/balloon', { size: '128M' })).status, 200);
    await waitUntil(async () => obj(await req('GET', '/v1/vms/x/stats'))['pages_ballooned'] === 0, 60_000, 'x to deflate its balloon');

    // The console stream: bytes both ways.
    const con = await openConsole(sock, 'x');
    let seen = '';
    con.on('data', (d: Buffer) => { seen += d.toString('latin1'); });
    con.write('echo api-$((6*7))\n');
    await waitUntil(async () => seen.includes('api-42'), 30_000, 'the console echo');
    con.destroy();
    assert.match((await req('GET', '/v1/vms/x/logs')).raw.toString('latin1'), /api-42/);

    // A host-side exception in x's worker: x fails with the reason, y keeps running.
    const f = await req('POST', '/v1/vms/x/x-fault');
    assert.equal(f.status, 200, JSON.stringify(f.body));
    await waitUntil(async () => obj(await req('GET', '/v1/vms/x'))['state'] === 'failed', 30_000, 'x to fail');
    assert.match(String(obj(await req('GET', '/v1/vms/x/stats'))['reason']), /test fault/);
    assert.equal(obj(await req('GET', '/v1/vms/y'))['state'], 'running');
    const cony = await openConsole(sock, 'y');
    let seenY = '';
    cony.on('data', (d: Buffer) => { seenY += d.toString('latin1'); });
    cony.write('echo still-$((40+2))\n');
    await waitUntil(async () => seenY.includes('still-42'), 30_000, 'y to answer after x failed');
    cony.destroy();
    assertClientError(await req('POST', '/v1/vms/x/pause'), 409, /failed/);

    // Stop y (the guest powers off), then remove both.
    const st = await req('POST', '/v1/vms/y/stop');
    assert.equal(st.status, 200, JSON.stringify(st.body));
    assert.equal(obj(st)['state'], 'shutdown');
    assertClientError(await req('POST', '/v1/vms/y/stop'), 409, /shutdown/);
    assertClientError(await req('POST', '/v1/vms/y/resume'), 409, /shutdown/);
    await assert.rejects(openConsole(sock, 'y'), /shutdown/);
    assert.equal((await req('DELETE', '/v1/vms/y')).status, 200);
    assertClientError(await req('GET', '/v1/vms/y'), 404);
    assert.equal((await req('DELETE', '/v1/vms/x?force=1')).status, 200);
    assert.deepEqual((await req('GET', '/v1/vms')).body, []);

    // Stopping the host removes its socket.
    assert.equal((await req('POST', '/v1/host/stop')).status, 202);
    assert.equal(await h.exited, 0);
    assert.equal(fs.existsSync(sock), false, 'socket removed');
  } finally {
    h.child.kill('SIGKILL');
    fs.rmSync(h.dir, { recursive: true, force: true });
  }
});
