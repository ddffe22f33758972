/**
 * `tsvm exec -it CONTAINER CMD` gives the exec'd process a terminal of its
 * own (issue 15 point 2): on the process runtime a second pseudo-terminal
 * of the container's process VM, typed into through a REAL host pty
 * (python3's pty module, tests/helpers/host-pty.ts). A detached busybox
 * container runs `sleep 1000`; `exec -it cx sh` in it: `tty` names a pty,
 * `stty size` is the outer terminal's and follows a resize, Ctrl-C
 * interrupts a `sleep 100` and the shell survives, `ps` shows PID 1 and the
 * shell, `exit 4` is the status; detaching (Ctrl-P Ctrl-Q) leaves the
 * shell running, as docker exec does. Then `exec -t` without -i, Docker's
 * "the input device is not a TTY", and the exec-resize route's errors.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTsvm, okTsvm, sleep, type Out } from '../helpers/container-cli.js';
import { TSVM_CLI } from '../helpers/guest-run.js';
import { HostPty, courseExecDetach, courseExecIt, hostPtyMissing, showing } from '../helpers/host-pty.js';
import { hostRequest } from '../../src/host/host-client.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};
let socket = '';
const noPty = hostPtyMissing();

const tsvm = (args: string[], input = ''): Out => runTsvm(env, args, input);

const ok = (...args: string[]): string => okTsvm(env, args);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-exec-tty-'));
  socket = path.join(dir, 'host.sock');
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: socket };
  delete env['TSVM_CONTAINERS'];
});

after(() => {
  tsvm(['rm', '-f', 'cx']);
  tsvm(['host', 'stop']);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('exec -it on the process runtime, busybox on a real pty', { skip: noPty }, () => {
  const PROMPT = /\/ # /;

  test('run -d --name cx busybox sleep 1000', () => {
    ok('pull', 'busybox');
    assert.match(ok('run', '-d', '--name', 'cx', 'busybox', 'sleep', '1000'), /^[0-9a-f]{64}\n$/);
  });

  test('exec -it cx sh: tty, stty size and a resize, Ctrl-C, ps, exit 4', async () => {
    const p = new HostPty([process.execPath, TSVM_CLI, 'exec', '-it', 'cx', 'sh'], env, { cols: 100, rows: 30 });
    await showing(p, () => courseExecIt(p, PROMPT, /^\s*1\s+.*sleep 1000\s*$/m));
    assert.match(ok('ps'), /\scx\n/, 'the container still runs');
  });

  test('exec -it cx sh, detach with Ctrl-P Ctrl-Q: the client exits 0 and the shell goes on; --detach-keys', async () => {
    const p = new HostPty([process.execPath, TSVM_CLI, 'exec', '-it', 'cx', 'sh'], env, { cols: 80, rows: 24 });
    const shell = await showing(p, () => courseExecDetach(p, PROMPT, () => ok('exec', 'cx', 'ps', '-o', 'pid,args')));
    ok('exec', 'cx', 'kill', '-9', shell);
    const bad = tsvm(['exec', '-it', '--detach-keys', 'ctrl-', 'cx', 'sh']);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /--detach-keys ctrl-: expected keys such as ctrl-p,ctrl-q/);
  });

  test('exec -t cx tty without -i prints /dev/pts/N; two at once get different ones', async () => {
    const r = tsvm(['exec', '-t', 'cx', 'tty']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\/dev\/pts\/\d+\r?\n$/, 'stdout is the terminal (one stream, ONLCR)');
    const plain = tsvm(['exec', 'cx', 'tty']);
    assert.equal(plain.stdout.trim(), 'not a tty', 'without -t: pipes');
    assert.equal(plain.status, 1);
    // A second exec while one holds a terminal gets another /dev/pts number.
    const first = spawn(process.execPath, [TSVM_CLI, 'exec', '-t', 'cx', 'sh', '-c', 'tty; sleep 5'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let firstOut = '';
    first.stdout.on('data', (d: Buffer) => { firstOut += d.toString(); });
    const firstDone = new Promise<number>((resolve) => first.on('exit', (c) => resolve(c ?? 128)));
    for (let i = 0; i < 200 && !firstOut.includes('\n'); i++) await sleep(100);
    const second = tsvm(['exec', '-t', 'cx', 'tty']);
    assert.equal(await firstDone, 0);
    const a = firstOut.trim(), b = second.stdout.trim();
    assert.match(a, /^\/dev\/pts\/\d+$/);
    assert.match(b, /^\/dev\/pts\/\d+$/);
    assert.notEqual(a, b, 'two live execs, two terminals');
  });

  test('-it with stdin not a terminal: the input device is not a TTY', () => {
    const r = tsvm(['exec', '-it', 'cx', 'sh'], 'echo hi\n');
    assert.equal(r.status, 1, 'the docker CLI\'s status for it');
    assert.match(r.stderr, /the input device is not a TTY/);
  });

  test('exec-resize: an unknown exec, a bad id, bad sizes', async () => {
    const post = async (q: string): Promise<{ status: number; body: string }> => {
      const res = await hostRequest(socket, 'POST', `/v1/containers/cx/exec-resize?${q}`);
      return { status: res.status, body: JSON.stringify(res.body) };
    };
    const unknown = await post(`id=${'a'.repeat(64)}&h=24&w=80`);
    assert.equal(unknown.status, 404, unknown.body);
    assert.match(unknown.body, /no running exec with a terminal/);
    const badId = await post('id=xyz&h=24&w=80');
    assert.equal(badId.status, 400, badId.body);
    assert.match(badId.body, /expected an exec id/);
    for (const q of ['h=0&w=80', 'h=24&w=65536', 'h=x&w=80', 'w=80']) {
      const r = await post(`id=${'a'.repeat(64)}&${q}`);
      assert.equal(r.status, 400, `${q}: ${r.body}`);
      assert.match(r.body, /expected the window's/);
    }
    const noSuch = await hostRequest(socket, 'POST', `/v1/containers/nosuch/exec-resize?id=${'a'.repeat(64)}&h=24&w=80`);
    assert.equal(noSuch.status, 404, JSON.stringify(noSuch.body));
  });
});
