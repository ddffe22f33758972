/**
 * The control socket's protocol (src/host/runtime-control-protocol.ts):
 * requests are parsed and checked; malformed lines, unknown requests,
 * oversize lines and frames, and bad input frames become one error action
 * (the worker's error reply), never a throw. Also `top`'s rows from the
 * guest's process table (src/host/containers/control-client.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ControlConnection, MAX_FRAME_BYTES, MAX_REQUEST_BYTES, parseControlRequest, signalNumber, type ControlAction,
} from '../../src/host/runtime-control-protocol.js';
import { topRows } from '../../src/host/containers/control-client.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A stdin frame (stream 0) with `payload`. */
function frame(payload: Uint8Array, stream = 0, length = payload.length): Uint8Array {
  const b = new Uint8Array(8 + payload.length);
  b[0] = stream;
  new DataView(b.buffer).setUint32(4, length);
  b.set(payload, 8);
  return b;
}

function errorOf(actions: ControlAction[]): string {
  assert.equal(actions.length, 1, JSON.stringify(actions));
  const a = actions[0]!;
  assert.equal(a.t, 'error');
  return a.t === 'error' ? a.message : '';
}

test('requests: signal by name or number, ps, exec with its defaults', () => {
  assert.deepEqual(parseControlRequest('{"op":"ps"}'), { op: 'ps' });
  assert.deepEqual(parseControlRequest('{"op":"signal","signal":"TERM"}'), { op: 'signal', signal: 15 });
  assert.deepEqual(parseControlRequest('{"op":"signal","signal":"SIGUSR1"}'), { op: 'signal', signal: 10 });
  assert.deepEqual(parseControlRequest('{"op":"signal","signal":9}'), { op: 'signal', signal: 9 });
  assert.deepEqual(parseControlRequest('{"op":"exec","argv":["ps"]}'), { op: 'exec', argv: ['ps'], env: [], workdir: '/', stdin: false });
  assert.deepEqual(parseControlRequest('{"op":"exec","argv":["id"],"env":["A=1"],"workdir":"/tmp","user":"1000:50","stdin":true}'),
    { op: 'exec', argv: ['id'], env: ['A=1'], workdir: '/tmp', stdin: true, user: { uid: 1000, gid: 50 } });
  assert.equal(signalNumber('kill'), 9);
  assert.equal(signalNumber('65'), null);
});

test('exec with a terminal (its size, 80x24 by default) and resize', () => {
  assert.deepEqual(parseControlRequest('{"op":"exec","argv":["sh"],"stdin":true,"tty":true,"cols":132,"rows":43}'),
    { op: 'exec', argv: ['sh'], env: [], workdir: '/', stdin: true, tty: { cols: 132, rows: 43 } });
  assert.deepEqual(parseControlRequest('{"op":"exec","argv":["sh"],"tty":true}'),
    { op: 'exec', argv: ['sh'], env: [], workdir: '/', stdin: false, tty: { cols: 80, rows: 24 } });
  assert.deepEqual(parseControlRequest('{"op":"exec","argv":["sh"],"tty":false}'), { op: 'exec', argv: ['sh'], env: [], workdir: '/', stdin: false });
  assert.deepEqual(parseControlRequest('{"op":"resize","pid":7,"cols":65535,"rows":1}'), { op: 'resize', pid: 7, cols: 65535, rows: 1 });
  const c = new ControlConnection();
  assert.deepEqual(c.push(bytes('{"op":"resize","pid":7,"cols":80,"rows":24}\n')), [{ t: 'request', req: { op: 'resize', pid: 7, cols: 80, rows: 24 } }]);
  assert.deepEqual(c.push(frame(bytes('x'))), [], 'a resize connection carries no frames after it');
});

test('bad requests: a one-line reason each', () => {
  const cases: Array<[string, RegExp]> = [
    ['not json', /malformed request: not JSON/],
    ['[1,2]', /expected a JSON object/],
    ['null', /expected a JSON object/],
    ['{}', /no 'op'/],
    ['{"op":"reboot"}', /unknown request "reboot"/],
    ['{"op":7}', /unknown request 7/],
    ['{"op":"signal"}', /invalid signal null/],
    ['{"op":"signal","signal":"NOPE"}', /invalid signal "NOPE"/],
    ['{"op":"signal","signal":0}', /invalid signal 0/],
    ['{"op":"signal","signal":{"a":1}}', /invalid signal/],
    ['{"op":"exec"}', /'argv'/],
    ['{"op":"exec","argv":[]}', /'argv'/],
    ['{"op":"exec","argv":[1]}', /'argv'/],
    ['{"op":"exec","argv":["a\\u0000b"]}', /NUL/],
    ['{"op":"exec","argv":["ls"],"env":["NOEQUALS"]}', /'env'/],
    ['{"op":"exec","argv":["ls"],"workdir":"relative"}', /'workdir'/],
    ['{"op":"exec","argv":["ls"],"user":"root"}', /'user'/],
    ['{"op":"exec","argv":["ls"],"user":"4294967295"}', /'user' ids/],
    ['{"op":"exec","argv":["ls"],"stdin":"yes"}', /'stdin'/],
    ['{"op":"exec","argv":["sh"],"tty":1}', /'tty' must be true or false/],
    ['{"op":"exec","argv":["sh"],"tty":true,"cols":0}', /'cols' must be a whole number from 1 to 65535/],
    ['{"op":"exec","argv":["sh"],"tty":true,"rows":65536}', /'rows' must be/],
    ['{"op":"exec","argv":["sh"],"tty":true,"cols":2.5}', /'cols' must be/],
    ['{"op":"exec","argv":["sh"],"tty":true,"rows":"24"}', /'rows' must be/],
    ['{"op":"exec","argv":["sh"],"cols":80}', /'cols' and 'rows' need 'tty': true/],
    ['{"op":"resize","cols":80,"rows":24}', /resize: 'pid' must be a process id/],
    ['{"op":"resize","pid":0,"cols":80,"rows":24}', /'pid'/],
    ['{"op":"resize","pid":"7","cols":80,"rows":24}', /'pid'/],
    ['{"op":"resize","pid":7,"rows":24}', /resize: 'cols' must be/],
    ['{"op":"resize","pid":7,"cols":80,"rows":-1}', /resize: 'rows' must be/],
    ['{"op":"resize","pid":7,"cols":80,"rows":null}', /resize: 'rows' must be/],
  ];
  for (const [line, re] of cases) {
    const r = parseControlRequest(line);
    assert.equal(typeof r, 'string', line);
    assert.match(r as string, re, line);
    assert.ok(!(r as string).includes('\n'), 'one line');
    assert.match(errorOf(new ControlConnection().push(bytes(line + '\n'))), re, 'the connection turns it into an error action');
  }
});

test('a connection: the request split across chunks, then stdin frames, EOF by an empty frame or a half-close', () => {
  const c = new ControlConnection();
  assert.deepEqual(c.push(bytes('{"op":"exec",')), []);
  const line = bytes('"argv":["cat"],"stdin":true}\n');
  const a = c.push(new Uint8Array([...line, ...frame(bytes('hel'))]));
  assert.equal(a.length, 2);
  assert.equal(a[0]!.t, 'request');
  assert.deepEqual(a[1], { t: 'stdin', data: bytes('hel') });
  const f = frame(bytes('lo'));
  assert.deepEqual(c.push(f.subarray(0, 5)), [], 'half a header waits');
  assert.deepEqual(c.push(f.subarray(5)), [{ t: 'stdin', data: bytes('lo') }]);
  assert.deepEqual(c.push(frame(new Uint8Array(0))), [{ t: 'stdin-end' }]);
  assert.deepEqual(c.end(), [], 'input already ended');
  const d = new ControlConnection();
  d.push(bytes('{"op":"exec","argv":["cat"]}\n'));
  assert.deepEqual(d.end(), [{ t: 'stdin-end' }]);
  const ps = new ControlConnection();
  assert.equal(ps.push(bytes('{"op":"ps"}\n{"op":"ps"}\n')).length, 1, 'one request a connection');
});

test('oversize and bad input: an error, then nothing', () => {
  const big = new ControlConnection();
  assert.match(errorOf(big.push(new Uint8Array(MAX_REQUEST_BYTES + 1).fill(0x61))), /longer than/);
  assert.deepEqual(big.push(bytes('{"op":"ps"}\n')), [], 'after an error the connection is done');
  const longLine = new ControlConnection();
  assert.match(errorOf(longLine.push(bytes(`{"op":"ps","pad":"${'x'.repeat(MAX_REQUEST_BYTES)}"}\n`))), /longer than/);
  const cut = new ControlConnection();
  cut.push(bytes('{"op":"ps"}'));
  assert.match(errorOf(cut.end()), /not ended by a newline/);
  assert.match(errorOf(new ControlConnection().end()), /no request/);
  const stream = new ControlConnection();
  stream.push(bytes('{"op":"exec","argv":["cat"],"stdin":true}\n'));
  assert.match(errorOf(stream.push(frame(bytes('x'), 1))), /stream 1/);
  const huge = new ControlConnection();
  huge.push(bytes('{"op":"exec","argv":["cat"],"stdin":true}\n'));
  assert.match(errorOf(huge.push(frame(new Uint8Array(0), 0, MAX_FRAME_BYTES + 1))), /longer than/);
  const junk = new ControlConnection();
  assert.match(errorOf(junk.push(new Uint8Array([0xff, 0xfe, 0x00, 0x0a]))), /malformed request/);
});

test('top rows: Docker\'s columns from the process table', () => {
  const now = Date.UTC(2026, 11, 7, 12, 0, 0);
  const rows = topRows([
    { pid: 1, ppid: 0, uid: 0, gid: 0, state: 'S', start: now - 7_200_000, cpu: 3_723_000, cmdline: ['sleep', '300'], comm: 'sleep' },
    { pid: 9, ppid: 1, uid: 1000, gid: 1000, state: 'R', start: now - 1000, cpu: 500, cmdline: [], comm: 'kworker' },
  ], new Map([[0, 'root']]), now);
  assert.equal(rows.length, 2);
  assert.deepEqual([rows[0]![0], rows[0]![1], rows[0]![2], rows[0]![3], rows[0]![5], rows[0]![6], rows[0]![7]], ['root', '1', '0', '51', '?', '01:02:03', 'sleep 300']);
  assert.match(rows[0]![4]!, /^\d\d:\d\d$|^[A-Z][a-z]{2}\d\d$/);
  assert.deepEqual([rows[1]![0], rows[1]![3], rows[1]![6], rows[1]![7]], ['1000', '50', '00:00:00', '[kworker]']);
});
