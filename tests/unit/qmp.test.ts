/**
 * QMP (src/vmm/qmp.ts) over a fake connection and over a real unix socket
 * (src/host/qmp-server.ts), against a fake VmControl: the greeting,
 * capabilities negotiation, each command, the STOP/RESUME/POWERDOWN/
 * SHUTDOWN events with timestamps, `id` echo, error objects for malformed
 * input and unknown commands (the connection stays usable), the input
 * framing, and -qmp address parsing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  QmpMonitor, JsonSplitter, parseQmpAddress, shutdownCauseOf, QMP_MAX_MESSAGE,
  type QmpConnection, type VmControl, type RunState, type BalloonControl,
} from '../../src/vmm/qmp.js';
import { QmpServer } from '../../src/host/qmp-server.js';
import { VirtioBalloon, RamAccounting } from '../../src/devices/virtio/balloon.js';
import { OptsError } from '../../src/vmm/qemu-opts.js';
import { QmpClient as SocketClient } from '../helpers/qmp-client.js';

type Msg = Record<string, unknown>;
const RAM = 512 * 1024 * 1024;

/** A VM stand-in that records what QMP asked of it. */
class FakeVm implements VmControl {
  state: RunState = 'running';
  calls: string[] = [];
  balloon: BalloonControl | null;
  failNext = false;
  constructor(balloon: BalloonControl | null) { this.balloon = balloon; }
  runState(): RunState {
    if (this.failNext) { this.failNext = false; throw new Error('boom'); }
    return this.state;
  }
  pause(): void { this.calls.push('pause'); this.state = 'paused'; }
  resume(): void { this.calls.push('resume'); this.state = 'running'; }
  powerdown(): void { this.calls.push('powerdown'); }
  reset(): void { this.calls.push('reset'); }
  quit(): void { this.calls.push('quit'); this.state = 'shutdown'; }
}

/** An in-memory connection: what the server sends is parsed and kept. */
class FakeConn implements QmpConnection {
  sent: Msg[] = [];
  raw: string[] = [];
  closed = false;
  private handler: (line: string) => void = () => {};
  private closers: (() => void)[] = [];
  send(line: string): void { this.raw.push(line); this.sent.push(JSON.parse(line) as Msg); }
  onLine(h: (line: string) => void): void { this.handler = h; }
  onClose(h: () => void): void { this.closers.push(h); }
  close(): void { this.closed = true; for (const c of this.closers) c(); }
  /** Sends client text; returns the messages it produced. */
  cmd(text: string | Msg): Msg[] {
    const n = this.sent.length;
    this.handler(typeof text === 'string' ? text : JSON.stringify(text));
    return this.sent.slice(n);
  }
  /** Sends one command and returns its single reply. */
  one(text: string | Msg): Msg {
    const r = this.cmd(text).filter((m) => !('event' in m));
    assert.equal(r.length, 1, `one reply to ${JSON.stringify(text)}`);
    return r[0]!;
  }
}

function balloon(): VirtioBalloon {
  const b = new VirtioBalloon();
  b.attach(new RamAccounting(0x8000_0000, RAM));
  return b;
}

function setup(withBalloon = true): { vm: FakeVm; mon: QmpMonitor; c: FakeConn; b: VirtioBalloon | null } {
  const b = withBalloon ? balloon() : null;
  const vm = new FakeVm(b);
  const mon = new QmpMonitor(vm, { nowUs: () => 1_700_000_000_123_456 });
  const c = new FakeConn();
  mon.attach(c);
  return { vm, mon, c, b };
}

const errClass = (m: Msg): string => (m['error'] as { class: string }).class;
const errDesc = (m: Msg): string => (m['error'] as { desc: string }).desc;

test('greeting, then only qmp_capabilities until negotiated (CommandNotFound, id echoed)', () => {
  const { c, vm } = setup();
  assert.equal(c.sent.length, 1);
  const g = c.sent[0]!['QMP'] as { version: { qemu: Record<string, number>; package: string }; capabilities: unknown[] };
  assert.deepEqual(Object.keys(g.version.qemu).sort(), ['major', 'micro', 'minor']);
  assert.equal(typeof g.version.package, 'string');
  assert.deepEqual(g.capabilities, []);
  const r = c.one({ execute: 'stop', id: 'a1' });
  assert.equal(errClass(r), 'CommandNotFound');
  assert.equal(r['id'], 'a1');
  assert.deepEqual(vm.calls, [], 'nothing ran');
  assert.equal(errClass(c.one({ execute: 'qmp_capabilities', arguments: { enable: ['oob'] } })), 'GenericError', 'oob is not offered');
  assert.deepEqual(c.one({ execute: 'qmp_capabilities', id: 1 }), { return: {}, id: 1 });
  const again = c.one({ execute: 'qmp_capabilities', id: 2 });
  assert.equal(errClass(again), 'CommandNotFound');
  assert.equal(again['id'], 2);
});

test('query-status, stop and cont with STOP/RESUME events (only on a state change)', () => {
  const { c, vm } = setup();
  c.one({ execute: 'qmp_capabilities' });
  assert.deepEqual(c.one({ execute: 'query-status', id: 7 }), { return: { running: true, status: 'running' }, id: 7 });
  const stop = c.cmd({ execute: 'stop', id: { any: ['json', 1] } });
  assert.equal(stop.length, 2);
  assert.deepEqual(stop[0], { event: 'STOP', timestamp: { seconds: 1_700_000_000, microseconds: 123_456 } });
  assert.deepEqual(stop[1], { return: {}, id: { any: ['json', 1] } });
  assert.deepEqual(c.one({ execute: 'query-status' }), { return: { running: false, status: 'paused' } });
  assert.equal(c.cmd({ execute: 'stop' }).length, 1, 'already paused: no second STOP');
  const cont = c.cmd({ execute: 'cont' });
  assert.equal(cont[0]!['event'], 'RESUME');
  assert.deepEqual(cont[1], { return: {} });
  assert.equal(c.cmd({ execute: 'cont' }).length, 1, 'already running: no RESUME');
  assert.deepEqual(vm.calls, ['pause', 'resume']);
});

test('system_powerdown (POWERDOWN event), system_reset and quit reach the VM', () => {
  const { c, vm, mon } = setup();
  c.one({ execute: 'qmp_capabilities' });
  const pd = c.cmd({ execute: 'system_powerdown', id: 3 });
  assert.equal(pd[0]!['event'], 'POWERDOWN');
  assert.deepEqual(pd[1], { return: {}, id: 3 });
  assert.deepEqual(c.one({ execute: 'system_reset' }), { return: {} });
  assert.deepEqual(c.one({ execute: 'quit', id: 'q' }), { return: {}, id: 'q' });
  assert.deepEqual(vm.calls, ['powerdown', 'reset', 'quit']);
  assert.equal(errClass(c.one({ execute: 'cont' })), 'GenericError', 'a shut-down VM cannot be resumed');
  const before = c.sent.length;
  mon.shutdown(false, 'host-qmp-quit');
  assert.deepEqual(c.sent[before], {
    event: 'SHUTDOWN', data: { guest: false, reason: 'host-qmp-quit' }, timestamp: { seconds: 1_700_000_000, microseconds: 123_456 },
  });
  mon.close();
  assert.ok(c.closed);
  assert.equal(mon.clients, 0);
});

test('balloon sets the target from bytes; query-balloon reports actual bytes (plus tsvm members)', () => {
  const { c, b } = setup();
  c.one({ execute: 'qmp_capabilities' });
  assert.deepEqual(c.one({ execute: 'balloon', arguments: { value: RAM - 256 * 1024 * 1024 }, id: 1 }), { return: {}, id: 1 });
  assert.equal(b!.targetPages, 65536);
  const q = c.one({ execute: 'query-balloon' })['return'] as Msg;
  assert.equal(q['actual'], RAM, 'no driver yet: the guest has given nothing up');
  assert.deepEqual(q['__tsvm-host'], {
    'total-bytes': RAM, 'released-bytes': 0, 'zeroed-pages': 0, 'released-total-pages': 0, 'reclaimed-total-pages': 0,
    'reported-total-pages': 0,
  });
  assert.equal(q['__tsvm-poison-val'], 0);
  assert.deepEqual(q['__tsvm-counters'], { pages_ballooned: 0, pages_inflated: 0, pages_deflated: 0, pages_reported: 0, reports: 0, stats_reports: 0 });
  assert.equal(errDesc(c.one({ execute: 'balloon', arguments: { value: 0 } })), "Parameter 'value' expects a size");
  assert.match(errDesc(c.one({ execute: 'balloon', arguments: { value: 'x' } })), /Invalid parameter type for 'value', expected: integer/);
  assert.match(errDesc(c.one({ execute: 'balloon', arguments: { value: 1.5 } })), /expected: integer/);
  assert.match(errDesc(c.one({ execute: 'balloon', arguments: {} })), /Parameter 'value' is missing/);
  assert.match(errDesc(c.one({ execute: 'balloon', arguments: { value: 1, extra: 2 } })), /Parameter 'extra' is unexpected/);
  assert.equal(b!.targetPages, 65536, 'rejected commands have no effect');
});

test('qom-get/qom-set: the balloon\'s guest-stats and guest-stats-polling-interval at /machine/peripheral/ID', () => {
  const armed: { ms: number; cancelled: boolean }[] = [];
  const b = new VirtioBalloon({
    id: 'balloon0', now: () => 1_700_000_123_000,
    timer: (_fn, ms) => { const t = { ms, cancelled: false }; armed.push(t); return () => { t.cancelled = true; }; },
  });
  b.attach(new RamAccounting(0x8000_0000, RAM));
  const vm = new FakeVm(b), mon = new QmpMonitor(vm), c = new FakeConn();
  mon.attach(c);
  c.one({ execute: 'qmp_capabilities' });
  const get = (path: string, property: string): Msg => c.one({ execute: 'qom-get', arguments: { path, property } });
  assert.equal(get('/machine/peripheral/balloon0', 'guest-stats-polling-interval')['return'], 0);
  const none = get('balloon0', 'guest-stats')['return'] as { stats: Record<string, number>; 'last-update': number };
  assert.equal(none['last-update'], 0, 'no statistics yet');
  assert.equal(none.stats['stat-free-memory'], -1);
  assert.equal(Object.keys(none.stats).length, 16);
  b.stats = { 'free-memory': 123, 'total-memory': 456, 'hugetlb-failures': 7 };
  b.statsTime = 1_700_000_123_456;
  const some = get('/machine/peripheral/balloon0', 'guest-stats')['return'] as { stats: Record<string, number>; 'last-update': number };
  assert.equal(some['last-update'], 1_700_000_123);
  assert.equal(some.stats['stat-free-memory'], 123);
  assert.equal(some.stats['stat-total-memory'], 456);
  assert.equal(some.stats['stat-htlb-pgfail'], 7);
  assert.equal(some.stats['stat-swap-in'], -1);
  assert.deepEqual(c.one({ execute: 'qom-set', arguments: { path: 'balloon0', property: 'guest-stats-polling-interval', value: 3 } }), { return: {} });
  assert.equal(b.statsPollingInterval, 3);
  assert.equal(armed.length, 1, 'a new interval arms the poll timer');
  assert.equal(get('balloon0', 'guest-stats-polling-interval')['return'], 3);
  c.one({ execute: 'qom-set', arguments: { path: 'balloon0', property: 'guest-stats-polling-interval', value: 0 } });
  assert.ok(armed[0]!.cancelled, '0 turns polling off');
  assert.equal(errClass(get('/machine/peripheral/nope', 'guest-stats')), 'DeviceNotFound');
  assert.match(errDesc(get('balloon0', 'bogus')), /Property 'virtio-balloon-device\.bogus' not found/);
  const set = (value: unknown): Msg => c.one({ execute: 'qom-set', arguments: { path: 'balloon0', property: 'guest-stats-polling-interval', value } });
  assert.match(errDesc(set(-1)), /timer value must be greater than zero/);
  assert.match(errDesc(set('2')), /expected: integer/);
  assert.match(errDesc(set(2 ** 40)), /not a whole number of seconds/);
  assert.match(errDesc(c.one({ execute: 'qom-set', arguments: { path: 'balloon0', property: 'guest-stats', value: 1 } })), /not writable/);
  assert.match(errDesc(c.one({ execute: 'qom-get', arguments: { path: 1, property: 'x' } })), /Invalid parameter type for 'path', expected: string/);
  assert.equal(b.statsPollingInterval, 0, 'rejected settings have no effect');
});

test('balloon commands without a balloon device: DeviceNotActive', () => {
  const { c } = setup(false);
  c.one({ execute: 'qmp_capabilities' });
  assert.equal(errClass(c.one({ execute: 'balloon', arguments: { value: 1 } })), 'DeviceNotActive');
  assert.equal(errClass(c.one({ execute: 'query-balloon', id: 5 })), 'DeviceNotActive');
});

test('malformed input and unknown commands get error objects; the session keeps working', () => {
  const { c, vm } = setup();
  c.one({ execute: 'qmp_capabilities' });
  const cases: [string, string, RegExp, unknown?][] = [
    ['{ "execute": }', 'GenericError', /^JSON parse error, /],
    ['[1, 2]', 'GenericError', /must be a JSON object/],
    ['42', 'GenericError', /must be a JSON object/],
    ['{"foo": 1, "id": 9}', 'GenericError', /member 'foo' is unexpected/, 9],
    ['{"id": 10}', 'GenericError', /lacks member 'execute'/, 10],
    ['{"execute": 5}', 'GenericError', /'execute' must be a string/],
    ['{"execute": "query-status", "arguments": []}', 'GenericError', /'arguments' must be an object/],
    ['{"execute": "query-status", "arguments": {"x": 1}}', 'GenericError', /Parameter 'x' is unexpected/],
    ['{"exec-oob": "query-status", "id": 11}', 'GenericError', /not supported/, 11],
    ['{"execute": "no-such-command", "id": 12}', 'CommandNotFound', /no-such-command/, 12],
    ['{"execute": "__proto__"}', 'CommandNotFound', /__proto__/],
    ['{"execute": "toString"}', 'CommandNotFound', /toString/],
  ];
  for (const [text, cls, desc, id] of cases) {
    const r = c.one(text);
    assert.equal(errClass(r), cls, text);
    assert.match(errDesc(r), desc, text);
    assert.equal(r['id'], id, `${text}: id`);
  }
  vm.failNext = true;
  assert.match(errDesc(c.one({ execute: 'query-status' })), /internal error: boom/, 'a throwing VM is an error reply, not a crash');
  assert.deepEqual(c.one({ execute: 'query-status' }), { return: { running: true, status: 'running' } });
  assert.match(errDesc(c.one({ execute: 'qu\u00e9ry' })), /qu\u00e9ry/);
  assert.ok(/^[\x20-\x7e]*$/.test(c.raw.at(-1)!) && c.raw.at(-1)!.includes('\\u00e9'), 'the server sends ASCII only');
});

test('events reach only negotiated sessions; query-version and query-commands', () => {
  const { c, mon } = setup();
  const late = new FakeConn();
  mon.attach(late);
  c.one({ execute: 'qmp_capabilities' });
  assert.equal(mon.clients, 2);
  mon.event('RESUME');
  assert.equal(c.sent.at(-1)!['event'], 'RESUME');
  assert.equal(late.sent.length, 1, 'only the greeting: events wait for negotiation');
  const v = c.one({ execute: 'query-version' })['return'] as Msg;
  assert.deepEqual(v, (c.sent[0]!['QMP'] as Msg)['version']);
  const names = (c.one({ execute: 'query-commands' })['return'] as { name: string }[]).map((x) => x.name);
  for (const n of ['qmp_capabilities', 'query-status', 'stop', 'cont', 'system_powerdown', 'system_reset', 'quit', 'balloon', 'query-balloon']) {
    assert.ok(names.includes(n), n);
  }
  late.close();
  assert.equal(mon.clients, 1);
});

test('shutdownCauseOf maps run results and host requests to SHUTDOWN data', () => {
  assert.deepEqual(shutdownCauseOf('poweroff', null), { guest: true, reason: 'guest-shutdown' });
  assert.deepEqual(shutdownCauseOf('reset', null), { guest: true, reason: 'guest-reset' });
  assert.deepEqual(shutdownCauseOf('panic', null), { guest: true, reason: 'guest-panic' });
  assert.deepEqual(shutdownCauseOf('stopped', null), { guest: false, reason: 'host-qmp-quit' });
  assert.deepEqual(shutdownCauseOf('reset', 'host-qmp-system-reset'), { guest: false, reason: 'host-qmp-system-reset' });
});

test('JsonSplitter frames a byte stream like QEMU\'s streaming parser', () => {
  const s = new JsonSplitter();
  assert.deepEqual(s.push('{"execute":"a"}{"execute":"b"}\n'), ['{"execute":"a"}', '{"execute":"b"}']);
  assert.deepEqual(s.push('{"execute":\n "c",'), []);
  assert.deepEqual(s.push(' "arguments": {"x": "}{"}}'), ['{"execute":\n "c", "arguments": {"x": "}{"}}']);
  assert.deepEqual(s.push("{'execute': 'it\\'s \"q\"'}"), ['{"execute": "it\'s \\"q\\""}']);
  assert.deepEqual(JSON.parse(s.push("{'a': 'x\\ny'}")[0]!), { a: 'x\ny' });
  assert.deepEqual(s.push('garbage\n'), ['garbage']);
  assert.deepEqual(s.push('{"execute": "x\u0001'), ['{"execute": "x\u0001'], 'a control character resets the parser');
  assert.deepEqual(s.push('{"execute":"ok"}'), ['{"execute":"ok"}']);
  assert.deepEqual(s.push('}\n'), ['}']);
  assert.deepEqual(s.push('\n\n  \r\n'), []);
  const big = s.push(`{"x":"${'a'.repeat(QMP_MAX_MESSAGE)}"}`);
  assert.ok(big.length >= 1 && big[0]!.length <= QMP_MAX_MESSAGE + 1, 'oversized input is cut');
});

test('parseQmpAddress: unix and tcp servers, wait defaulting to on, legacy flags', () => {
  assert.deepEqual(parseQmpAddress('unix:/tmp/q.sock,server=on,wait=off'), { kind: 'unix', path: '/tmp/q.sock', wait: false });
  assert.deepEqual(parseQmpAddress('unix:/tmp/a,,b,server'), { kind: 'unix', path: '/tmp/a,b', wait: true });
  assert.deepEqual(parseQmpAddress('unix:/tmp/q,server,nowait'), { kind: 'unix', path: '/tmp/q', wait: false });
  assert.deepEqual(parseQmpAddress('tcp:127.0.0.1:4444,server=on,wait=off'), { kind: 'tcp', host: '127.0.0.1', port: 4444, wait: false });
  assert.deepEqual(parseQmpAddress('tcp::4444,server=on'), { kind: 'tcp', host: '', port: 4444, wait: true });
  for (const bad of ['unix:/tmp/q', 'unix:/tmp/q,server=off', 'unix:,server=on', 'stdio', 'tcp:x:99999,server=on', 'unix:/q,server=on,bogus=1']) {
    assert.throws(() => parseQmpAddress(bad), OptsError, bad);
  }
});

test('over a real unix socket: greeting, negotiation, commands, events, errors, several clients, cleanup', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-qmp-'));
  const sockPath = path.join(dir, 'qmp.sock');
  const vm = new FakeVm(balloon());
  const mon = new QmpMonitor(vm);
  fs.writeFileSync(path.join(dir, 'plain'), 'x');
  await assert.rejects(QmpServer.listen({ kind: 'unix', path: path.join(dir, 'plain'), wait: false }, mon), /not a socket/);
  const server = await QmpServer.listen(parseQmpAddress(`unix:${sockPath},server=on,wait=off`), mon);
  try {
    const first = server.waitForClient();
    const a = await SocketClient.connect(sockPath);
    await first;
    const g = await a.next();
    assert.ok('QMP' in g);
    assert.equal(errClass(await a.call({ execute: 'query-status', id: 1 })), 'CommandNotFound');
    assert.deepEqual(await a.call({ execute: 'qmp_capabilities' }), { return: {} });
    // Malformed JSON, then a valid command split across writes and one spanning lines: the connection survives.
    a.send('{"execute": oops}\n');
    assert.equal(errClass(await a.next()), 'GenericError');
    a.send('{"execute": "query-');
    a.send('status", "id": "split"}\n{"execute":\n"quer');
    assert.deepEqual(await a.next(), { return: { running: true, status: 'running' }, id: 'split' });
    a.send('y-status"}');
    assert.deepEqual(await a.next(), { return: { running: true, status: 'running' } });
    assert.equal(errClass(await a.call({ execute: 'nope' })), 'CommandNotFound');
    const b = await SocketClient.connect(sockPath);
    await b.next();
    await b.call({ execute: 'qmp_capabilities' });
    a.send('{"execute": "stop"}\n');
    const ev = await a.next();
    assert.equal(ev['event'], 'STOP');
    const ts = ev['timestamp'] as { seconds: number; microseconds: number };
    assert.ok(Math.abs(ts.seconds - Date.now() / 1000) < 60 && ts.microseconds >= 0 && ts.microseconds < 1e6);
    assert.deepEqual(await a.next(), { return: {} });
    assert.equal((await b.next())['event'], 'STOP', 'events go to every negotiated client');
    assert.deepEqual(await a.call({ execute: 'balloon', arguments: { value: RAM / 2 } }), { return: {} });
    assert.equal(((await a.call({ execute: 'query-balloon' }))['return'] as Msg)['actual'], RAM);
    b.sock.destroy(); // a client vanishing does not disturb the others
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await a.call({ execute: 'quit', id: 99 }), { return: {}, id: 99 });
    mon.shutdown(false, 'host-qmp-quit');
    assert.deepEqual((await a.next())['data'], { guest: false, reason: 'host-qmp-quit' });
    const closed = new Promise<void>((r) => a.sock.on('close', () => r()));
    await server.close();
    await closed;
    assert.ok(!fs.existsSync(sockPath), 'the socket file is removed');
    assert.deepEqual(vm.calls, ['pause', 'quit']);
    // A stale socket file left by a dead server is replaced.
    const stale = net.createServer().listen(sockPath);
    await new Promise((r) => stale.once('listening', r));
    const s2 = await QmpServer.listen({ kind: 'unix', path: sockPath, wait: false }, mon);
    const c = await SocketClient.connect(sockPath);
    assert.ok('QMP' in (await c.next()));
    c.sock.destroy();
    await s2.close();
    stale.close();
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
