/**
 * `-it` is a real terminal (issue 15 points 2 and 5): the course's sequence
 * — pull, images, `run -it --name hello IMAGE SHELL`, start, attach,
 * detach, restart, attach — typed into a REAL pseudo-terminal of the host
 * (python3's pty module, tests/helpers/host-pty.ts), with the process
 * runtime giving the container the process VM's terminal. The local
 * terminal is in raw mode (Ctrl-C is a byte that interrupts the
 * container's foreground job, not tsvm), the window size and its changes
 * reach the container, the detach keys work in raw mode and several
 * viewers see the output. Then Docker's -t without -i and -i without -t,
 * the resize route's errors (container-debian.test.ts has the sequence
 * with `debian` and bash's job control). A failing wait prints what the
 * terminal showed.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTsvm, okTsvm, sleep, type Out } from '../helpers/container-cli.js';
import { TSVM_CLI } from '../helpers/guest-run.js';
import { HostPty, attachThenStty, courseAttachDetach, courseRestartAttach, courseRunIt, hostPtyMissing, showing, sttySize, typed } from '../helpers/host-pty.js';
import { hostRequest } from '../../src/host/host-client.js';
import { detachFilter } from '../../src/cli/container-command.js';
import { checkTty } from '../../src/cli/container-tty.js';
import { parseWindowSize } from '../../src/host/containers/tty.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};
let socket = '';
const noPty = hostPtyMissing();

const tsvm = (args: string[], input = ''): Out => runTsvm(env, args, input);

const ok = (...args: string[]): string => okTsvm(env, args);

function state(ref: string): { Status: string; Running: boolean; ExitCode: number; StartedAt: string } {
  return (JSON.parse(ok('inspect', ref)) as { State: ReturnType<typeof state> }[])[0]!.State;
}

/** `tsvm ARGS` on a new host pty of `cols`x`rows`. */
function onPty(args: string[], cols = 100, rows = 30): HostPty {
  return new HostPty([process.execPath, TSVM_CLI, ...args], env, { cols, rows });
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-container-tty-'));
  socket = path.join(dir, 'host.sock');
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: socket };
  delete env['TSVM_CONTAINERS'];
});

after(() => {
  tsvm(['host', 'stop']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the detach-key filter holds back a partial sequence; CheckTty; the resize query', () => {
  const keys = Buffer.from([0x10, 0x11]);
  const f = detachFilter(keys);
  const sent: number[] = [];
  const fwd = (b: Buffer): void => { sent.push(...b); };
  assert.equal(f.push(Buffer.from([0x61, 0x10]), fwd), false);
  assert.deepEqual(sent, [0x61], 'Ctrl-P waits for the next key');
  assert.equal(f.push(Buffer.from([0x62]), fwd), false);
  assert.deepEqual(sent, [0x61, 0x10, 0x62], 'not the sequence: Ctrl-P goes through');
  assert.equal(f.push(Buffer.from([0x63, 0x10, 0x10]), fwd), false);
  assert.equal(f.push(Buffer.from([0x11, 0x64]), fwd), true, 'the sequence detaches');
  assert.deepEqual(sent, [0x61, 0x10, 0x62, 0x63, 0x10], 'the bytes before it were forwarded, the sequence was not');
  assert.equal(checkTty(true, true, false), 'the input device is not a TTY');
  assert.equal(checkTty(true, true, true), null);
  assert.equal(checkTty(false, true, false), null);
  assert.equal(checkTty(true, false, false), null);
  assert.deepEqual(parseWindowSize('24', '80'), { rows: 24, cols: 80 });
  for (const [h, w] of [['0', '80'], ['24', '65536'], ['x', '80'], [null, '80'], ['24', null], ['24', '-1'], ['2.5', '80']] as const) {
    assert.throws(() => parseWindowSize(h, w), (e: Error & { status?: number }) => e.status === 400 && /expected the window's/.test(e.message), `${h}x${w}`);
  }
});

describe('the course\'s sequence with busybox on a real pty', { skip: noPty }, () => {
  const PROMPT = /\/ # /;

  test('pull, images', () => {
    assert.match(ok('pull', 'busybox'), /busybox/);
    assert.match(ok('images'), /^busybox\s+latest\s+/m);
    ok('ps'); // starts the host outside the pty (it is a daemon either way)
  });

  test('run -it --name hello busybox /bin/sh: hostname, tty, stty size and a resize, Ctrl-C, exit 3', async () => {
    const p = onPty(['run', '-it', '--name', 'hello', 'busybox', '/bin/sh'], 100, 30);
    await showing(p, () => courseRunIt(p, PROMPT, () => (JSON.parse(ok('inspect', 'hello')) as { Id: string }[])[0]!.Id));
    const s = state('hello');
    assert.equal(s.Status, 'exited');
    assert.equal(s.ExitCode, 3);
  });

  test('start hello (detached), attach in the pty with a second viewer, detach with Ctrl-P Ctrl-Q', async () => {
    assert.equal(ok('start', 'hello'), 'hello\n');
    assert.equal(state('hello').Running, true);
    // a second viewer, without stdin, on pipes
    const viewer = spawn(process.execPath, [TSVM_CLI, 'attach', '--no-stdin', 'hello'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    viewer.stdout.on('data', (d: Buffer) => { seen += d.toString(); });
    const viewerDone = new Promise<number>((resolve) => viewer.on('exit', (c) => resolve(c ?? 128)));
    // the CLI under a shell that shows the terminal's settings after it
    const p = attachThenStty(TSVM_CLI, 'hello', env, 90, 25);
    await showing(p, () => courseAttachDetach(p, async () => {
      assert.equal(await sttySize(p, PROMPT, '25 90'), '25 90', 'attach sent its terminal\'s size');
      for (let i = 0; i < 240 && !seen.includes('attached-42'); i++) await sleep(250);
      assert.match(seen, /attached-42/, 'the second viewer saw the output');
    }));
    assert.equal(state('hello').Running, true, 'detaching leaves it running');
    assert.match(ok('ps'), /Up .*\shello\n/, 'ps lists it');
    viewer.kill();
    await viewerDone;
  });

  test('restart hello, attach again, exit; start -ai', async () => {
    await courseRestartAttach(ok, 'hello', () => onPty(['attach', 'hello']));
    // start -ai: the terminal starts at this pty's size
    const q = onPty(['start', '-ai', 'hello'], 77, 21);
    await showing(q, async () => {
      await q.expect(PROMPT, 'the prompt after start -ai');
      await q.untilRaw();
      assert.equal((await typed(q, 'stty size', PROMPT)).trim(), '21 77');
      q.type('exit 5\r');
      assert.equal(await q.status(), 5);
    });
    ok('rm', 'hello');
  });
});

describe('-t without -i, -i without -t, -it without a terminal, the resize route', () => {
  test('run -t: a terminal for the command, one stream logged as stdout; without -t none', () => {
    ok('pull', 'busybox');
    const t = tsvm(['run', '--name', 'tonly', '-t', 'busybox', 'sh', '-c', 'tty; echo to-stderr >&2']);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^\/dev\/pts\/\d+\r\nto-stderr\r\n$/, 'the pty\'s output (ONLCR), stderr included');
    assert.equal(t.stderr, '');
    const logs = spawnSync(process.execPath, [TSVM_CLI, 'logs', 'tonly'], { env, encoding: 'utf8' });
    assert.match(logs.stdout, /to-stderr/, 'the log has stderr\'s line as stdout');
    assert.equal(logs.stderr, '');
    ok('rm', 'tonly');
    const none = tsvm(['run', '--rm', 'busybox', 'tty']);
    assert.equal(none.status, 1);
    assert.equal(none.stdout, 'not a tty\n');
    const i = tsvm(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'tty; read x; echo "[$x]"'], 'typed\n');
    assert.equal(i.stdout, 'not a tty\n[typed]\n', '-i alone: stdin on a pipe');
  });

  test('run -it and attach with stdin that is not a terminal are refused, as the docker CLI does', () => {
    const before = ok('ps', '-a', '-q');
    const r = tsvm(['run', '-it', '--rm', 'busybox', 'sh'], 'echo hi\n');
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'tsvm: the input device is not a TTY\n');
    assert.equal(ok('ps', '-a', '-q'), before, 'nothing was created');
    ok('run', '-d', '-it', '--name', 'bg', 'busybox', 'sh');
    const a = tsvm(['attach', 'bg'], '');
    assert.equal(a.status, 1);
    assert.equal(a.stderr, 'tsvm: the input device is not a TTY\n');
    ok('rm', '-f', 'bg');
  });

  test('POST /v1/containers/REF/resize: 200 and the new size; 400 for bad values; 409 when not running or without a tty', async () => {
    ok('run', '-d', '-it', '--name', 'sized', 'busybox', 'sh');
    ok('run', '-d', '--name', 'plain', 'busybox', 'sleep', '600');
    const post = async (p: string): Promise<{ status: number; body: unknown }> => hostRequest(socket, 'POST', p);
    const good = await post('/v1/containers/sized/resize?h=50&w=150');
    assert.equal(good.status, 200);
    assert.deepEqual(good.body, { Height: 50, Width: 150 });
    for (const q of ['h=0&w=80', 'h=24', 'w=80', 'h=24&w=x', 'h=24&w=70000']) {
      const b = await post(`/v1/containers/sized/resize?${q}`);
      assert.equal(b.status, 400, q);
      assert.match((b.body as { error: string }).error, /expected the window's (rows|columns)/, q);
    }
    const nt = await post('/v1/containers/plain/resize?h=24&w=80');
    assert.equal(nt.status, 409);
    assert.match((nt.body as { error: string }).error, /has no terminal/);
    ok('stop', '-t', '1', 'sized');
    const stopped = await post('/v1/containers/sized/resize?h=24&w=80');
    assert.equal(stopped.status, 409);
    assert.match((stopped.body as { error: string }).error, /is not running/);
    assert.equal((await post('/v1/containers/nosuch/resize?h=24&w=80')).status, 404);
    ok('rm', '-f', 'sized', 'plain');
  });
});
