/**
 * The process runtime's control socket through Docker's verbs: `stop` and
 * `kill` reach the container's PID 1 with init's protection (a signal it
 * has no handler for is ignored, SIGKILL always ends it), `exec` joins the
 * running container (its PID namespace, mounts and /tmp), and `top` shows
 * the guest's process table. Also `tsvm exec --control` answering bad
 * requests with an error while the guest runs on. busybox is the image.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runTsvm, okTsvm, until, type Out } from '../helpers/container-cli.js';
import { TSVM_CLI } from '../helpers/guest-run.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};

const tsvm = (args: string[], input = ''): Out => runTsvm(env, args, input);

const ok = (...args: string[]): string => okTsvm(env, args);

function state(ref: string): { Status: string; ExitCode: number; Running: boolean } {
  return (JSON.parse(ok('inspect', ref)) as Array<{ State: { Status: string; ExitCode: number; Running: boolean } }>)[0]!.State;
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-ctl-'));
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: path.join(dir, 'host.sock') };
  ok('pull', 'busybox');
});

after(() => {
  tsvm(['host', 'stop']);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the control socket through the verbs', () => {
  test('stop: init without a handler ignores SIGTERM, so SIGKILL after -t gives 137; a TERM trap gives its status', async () => {
    ok('run', '-d', '--name', 'sleeper', 'busybox', 'sleep', '100');
    ok('run', '-d', '--name', 'trapper', 'busybox', 'sh', '-c', 'trap "echo bye; exit 7" TERM; echo ready; while true; do sleep 1; done');
    await until(() => ok('logs', 'trapper').includes('ready'), 'the trap to be set');
    const t0 = Date.now();
    assert.equal(ok('stop', '-t', '1', 'sleeper'), 'sleeper\n');
    const took = Date.now() - t0;
    assert.deepEqual([state('sleeper').Status, state('sleeper').ExitCode], ['exited', 137]);
    assert.ok(took >= 1000, `stop waited the timeout before SIGKILL (${took} ms)`);
    assert.equal(ok('stop', '-t', '60', 'trapper'), 'trapper\n');
    assert.deepEqual([state('trapper').Status, state('trapper').ExitCode], ['exited', 7]);
    assert.equal(ok('logs', 'trapper'), 'ready\nbye\n');
    ok('rm', 'sleeper', 'trapper');
  });

  test('kill -s USR1 runs the trap of init; an unhandled HUP is ignored; kill gives 137', async () => {
    ok('run', '-d', '--name', 'sig', 'busybox', 'sh', '-c', 'trap "echo got usr1" USR1; echo ready; while true; do sleep 1; done');
    await until(() => ok('logs', 'sig').includes('ready'), 'the trap to be set');
    assert.equal(ok('kill', '-s', 'USR1', 'sig'), 'sig\n');
    await until(() => ok('logs', 'sig').includes('got usr1'), 'the USR1 trap');
    ok('kill', '-s', 'HUP', 'sig');
    assert.equal(ok('exec', 'sig', 'echo', 'alive'), 'alive\n', 'init ignored the HUP it has no handler for');
    assert.equal(state('sig').Running, true);
    ok('kill', 'sig');
    assert.deepEqual([state('sig').Status, state('sig').ExitCode], ['exited', 137]);
    ok('rm', 'sig');
  });

  test('exec joins the container: ps sees PID 1 and itself, /proc/1/cmdline, /tmp, the exit status, stdin; top', async () => {
    ok('run', '-d', '--name', 'box', 'busybox', 'sh', '-c', 'echo from-main > /tmp/shared; echo ready; exec sleep 300');
    await until(() => ok('logs', 'box').includes('ready'), 'the main process');
    const ps = ok('exec', 'box', 'ps').trim().split('\n');
    assert.match(ps[0]!, /^\s*PID\s+USER\s+(TIME\s+)?COMMAND$/);
    assert.equal(ps.length, 3, `only the container's processes: ${ps.join(' | ')}`);
    assert.match(ps[1]!, /^\s*1\s+(root|0)\s+.*sleep 300$/);
    assert.match(ps[2]!, /^\s*\d+\s+(root|0)\s+.*\bps$/);
    assert.equal(ok('exec', 'box', 'cat', '/proc/1/cmdline'), 'sleep\u0000300\u0000');
    assert.equal(ok('exec', 'box', 'cat', '/tmp/shared'), 'from-main\n', 'the same mounts and /tmp');
    const hostname = (JSON.parse(ok('inspect', 'box')) as Array<{ Config: { Hostname: string } }>)[0]!.Config.Hostname;
    assert.equal(ok('exec', 'box', 'sh', '-c', 'echo $PPID $(hostname)'), `0 ${hostname}\n`, 'its parent is outside the namespace; the container\'s hostname');
    const failing = tsvm(['exec', 'box', 'sh', '-c', 'echo out; echo err >&2; exit 5']);
    assert.deepEqual([failing.status, failing.stdout, failing.stderr], [5, 'out\n', 'err\n']);
    const piped = tsvm(['exec', '-i', 'box', 'sh', '-c', 'read a; read b; echo "[$a|$b]"; exit 4'], 'one\ntwo\n');
    assert.deepEqual([piped.status, piped.stdout], [4, '[one|two]\n']);
    const big = tsvm(['exec', '-i', 'box', 'sh', '-c', 'sleep 1; wc -c'], 'x'.repeat(3 * 1024 * 1024));
    assert.deepEqual([big.status, big.stdout.trim()], [0, String(3 * 1024 * 1024)], 'more input than the pipe and the queue hold (back-pressure)');
    const missing = tsvm(['exec', 'box', 'nosuchcommand']);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /"nosuchcommand": executable file not found/);
    const top = ok('top', 'box').split('\n');
    assert.match(top[0]!, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
    assert.match(top[1]!, /^root\s+1\s+0\s+\d+\s+\S+\s+\?\s+\d\d:\d\d:\d\d\s+sleep 300$/);
    assert.equal(top.filter((l) => l.trim() !== '').length, 2, 'top shows the container\'s one process');
    ok('rm', '-f', 'box');
  });

  test('an exec ends with the container (the namespace dies): 137', async () => {
    ok('run', '-d', '--name', 'short', 'busybox', 'sh', '-c', 'trap "exit 0" USR1; echo ready; while true; do sleep 1; done');
    await until(() => ok('logs', 'short').includes('ready'), 'the main process');
    const child = spawn(process.execPath, [TSVM_CLI, 'exec', 'short', 'sleep', '100'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const done = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
    await until(() => ok('top', 'short').includes('sleep 100'), 'the exec to run');
    ok('kill', '-s', 'USR1', 'short');
    assert.equal(await done, 137, 'the exec was killed with the namespace');
    assert.equal(state('short').ExitCode, 0);
    const refused = tsvm(['exec', 'short', 'true']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /is not running/);
    ok('rm', 'short');
  });
});

/** Sends `bytes` on the control socket; the reply (the whole answer, as text). */
function ask(sock: string, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock, () => { s.end(bytes); });
    let out = '';
    s.on('data', (d: Buffer) => { out += d.toString('latin1'); });
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

test('tsvm exec --control: bad requests get an error reply, the guest runs on', async () => {
  assert.ok(fs.existsSync(path.join(dir, 'images', '.containers', 'rootfs')), 'the busybox image is unpacked');
  const lower = path.join(dir, 'images', '.containers', 'rootfs', fs.readdirSync(path.join(dir, 'images', '.containers', 'rootfs'))[0]!);
  const upper = fs.mkdtempSync(path.join(dir, 'upper-'));
  const sock = path.join(dir, 'c.sock');
  const child = spawn(process.execPath, [TSVM_CLI, 'exec', '--lower', lower, '--upper', upper, '--pid-ns', '--control', sock, '--env', 'PATH=/bin',
    '--', 'sh', '-c', 'trap "exit 9" USR2; while true; do sleep 1; done'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const done = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
  await until(() => fs.existsSync(sock), 'the control socket');
  assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
  const errorOf = (reply: string): string => (JSON.parse(reply) as { error: string }).error;
  assert.match(errorOf(await ask(sock, 'not json\n')), /malformed request/);
  assert.match(errorOf(await ask(sock, '{"op":"reboot"}\n')), /unknown request "reboot"/);
  assert.match(errorOf(await ask(sock, '{"op":"exec","argv":[]}\n')), /'argv'/);
  assert.match(errorOf(await ask(sock, '{"op":"signal","signal":"NOPE"}\n')), /invalid signal/);
  assert.match(errorOf(await ask(sock, Buffer.alloc(70_000, 0x61))), /longer than/);
  assert.match(errorOf(await ask(sock, '{"op":"ps"}')), /not ended by a newline/);
  const ps = JSON.parse(await ask(sock, '{"op":"ps"}\n')) as { processes: Array<{ pid: number; ppid: number; cmdline: string[] }> };
  assert.deepEqual(ps.processes[0]!.cmdline.slice(0, 2), ['sh', '-c']);
  assert.deepEqual([ps.processes[0]!.pid, ps.processes[0]!.ppid], [1, 0]);
  assert.deepEqual(JSON.parse(await ask(sock, '{"op":"signal","signal":"USR2"}\n')), { ok: true, delivered: true });
  assert.equal(await done, 9, 'the trap ran: the guest lived through the bad requests');
  assert.ok(!fs.existsSync(sock), 'the socket is removed at the end');
});
