/**
 * `tsvm host` and `tsvm vm` end to end, as a user runs them: the "no host"
 * message, `host start -d` (socket 0600, a stale socket replaced, a second
 * host refused), the default Debian guest booting under `vm run -d` to its
 * prompt in `vm logs`, `vm console` attached through a pipe and detached
 * with Ctrl-P Ctrl-Q, pause/resume/stats/balloon/stop/rm, and `host stop`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TSVM_CLI } from '../helpers/console-session.js';
import { hostRequest } from '../../src/host/host-client.js';
import { hostSocketPath } from '../../src/host/host-paths.js';

const PROMPT = '~ # ';
const BOOT_MS = 240_000;

test('the socket path: --socket, then TSVM_HOST, then $XDG_RUNTIME_DIR/tsvm, then a per-user temporary directory', () => {
  assert.equal(hostSocketPath('/a/b.sock', { TSVM_HOST: '/c/d.sock' }), '/a/b.sock');
  assert.equal(hostSocketPath(undefined, { TSVM_HOST: '/c/d.sock', XDG_RUNTIME_DIR: '/run/user/7' }), '/c/d.sock');
  assert.equal(hostSocketPath(undefined, { XDG_RUNTIME_DIR: '/run/user/7' }), '/run/user/7/tsvm/host.sock');
  assert.equal(hostSocketPath(undefined, {}), path.join(os.tmpdir(), `tsvm-${os.userInfo().uid}`, 'host.sock'));
});

test('tsvm host and tsvm vm from the command line, with the default Debian guest', { timeout: BOOT_MS + 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-cli-test-'));
  const sock = path.join(dir, 'host.sock');
  const env = { ...process.env, TSVM_HOST: sock };
  const tsvm = (...args: string[]): { status: number; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [TSVM_CLI, ...args], { env, encoding: 'utf8', timeout: 120_000 });
    return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
  };
  let hostPid: number | null = null;
  try {
    // No host: one clear line, a non-zero status.
    const none = tsvm('vm', 'ls');
    assert.equal(none.status, 1);
    assert.equal(none.stderr.trim().split('\n').length, 1);
    assert.match(none.stderr, new RegExp(`no tsvm host is running at ${sock}.*tsvm host start -d`));
    assert.equal(tsvm('host', 'stats').status, 1);
    const badPool = tsvm('host', 'start', '-d', '--pool', '9G');
    assert.equal(badPool.status, 125);
    assert.match(badPool.stderr, /--pool 9G: expected a size from 16M to 4G/);
    assert.equal(tsvm('host', 'start', '--swap', path.join(dir, 'no', 'swapfile')).status, 125);
    assert.equal(fs.existsSync(sock), false, 'no host was started');

    // A stale socket file (its server was killed) is replaced.
    const stale = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)})`]);
    while (!fs.existsSync(sock)) await new Promise((r) => setTimeout(r, 20));
    stale.kill('SIGKILL');
    await new Promise((r) => stale.once('exit', r));
    assert.ok(fs.existsSync(sock), 'the stale socket file is left behind');

    const start = tsvm('host', 'start', '-d', '--pool', '512M');
    assert.equal(start.status, 0, start.stderr);
    assert.equal(start.stdout.trim(), sock);
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600, 'socket mode 0600');
    hostPid = ((await hostRequest(sock, 'GET', '/v1/host')).body as { pid: number }).pid;
    const again = tsvm('host', 'start', '-d');
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already running/);
    const hs = JSON.parse(tsvm('host', 'stats', '--json').stdout) as { pool: { frames_total: number } };
    assert.equal(hs.pool.frames_total, 512 * 1024 * 1024 / 4096 - 1); // one frame of the pool is the zero page
    assert.match(tsvm('host', 'stats').stdout, /pool\.frames_total\s+131071/);

    // Usage errors are caught before the host is asked.
    assert.equal(tsvm('vm', 'run', '-d', '-m', '256M').status, 125, 'no --name');
    assert.equal(tsvm('vm', 'run', '--name', 'q', '-d', '-bogus').status, 125);
    const nok = tsvm('vm', 'run', '--name', 'q', '-d', '-kernel', 'missing-vmlinux');
    assert.equal(nok.status, 1);
    assert.match(nok.stderr, new RegExp(`${path.resolve('missing-vmlinux')}: no such file`), 'relative paths resolve in the CLI\'s directory');

    // The default guest boots to its prompt.
    const run = tsvm('vm', 'run', '--name', 'g', '-d', '-m', '256M');
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'g');
    const deadline = Date.now() + BOOT_MS;
    while (!tsvm('vm', 'logs', 'g').stdout.includes(PROMPT)) {
      assert.ok(Date.now() < deadline, `no prompt in vm logs: ${tsvm('vm', 'logs', 'g').stdout.slice(-1000)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.match(tsvm('vm', 'ls').stdout, /^NAME\s+STATE\s+RAM\s+UPTIME[^\n]*\ng\s+running\s+256M\s+\d/);
    const lsj = JSON.parse(tsvm('vm', 'ls', '--json').stdout) as { name: string; state: string }[];
    assert.deepEqual(lsj.map((v) => [v.name, v.state]), [['g', 'running']]);

    // A second VM with the same options is built ahead of time by the host's idle worker: only its run loop has to start.
    const idleDeadline = Date.now() + 60_000;
    while (((await hostRequest(sock, 'GET', '/v1/host')).body as { idle_worker: string }).idle_worker !== 'prebuilt') {
      assert.ok(Date.now() < idleDeadline, 'the idle worker never took the next VM to build');
      await new Promise((r) => setTimeout(r, 200));
    }
    const runH = tsvm('vm', 'run', '--name', 'h', '-d', '-m', '256M');
    assert.equal(runH.status, 0, runH.stderr);
    const hs0 = JSON.parse(tsvm('vm', 'stats', 'h', '--json').stdout) as { start: { prebuilt: boolean }; start_ms: number };
    console.log(`vm h: start_ms ${hs0.start_ms} ${JSON.stringify(hs0.start)}`);
    assert.equal(hs0.start.prebuilt, true);

    // Attach through a pipe, run a command, detach with Ctrl-P Ctrl-Q: the VM keeps running.
    const con = spawn(process.execPath, [TSVM_CLI, 'vm', 'console', 'g'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    con.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
    con.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const conExit = new Promise<number>((r) => con.on('exit', (c) => r(c ?? 128)));
    con.stdin.write('echo cli-$((5*5))\n');
    const until = Date.now() + 30_000;
    while (!out.includes('cli-25') && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /cli-25/);
    con.stdin.write('\x10\x11');
    assert.equal(await conExit, 0);
    assert.match(err, /detached from g/);
    assert.match(tsvm('vm', 'ls').stdout, /g\s+running/);

    // Pause, resume, stats, balloon.
    assert.equal(tsvm('vm', 'pause', 'g').status, 0);
    assert.match(tsvm('vm', 'ls').stdout, /g\s+paused/);
    const twice = tsvm('vm', 'pause', 'g');
    assert.equal(twice.status, 1);
    assert.match(twice.stderr, /cannot pause VM 'g': it is paused/);
    assert.equal(tsvm('vm', 'resume', 'g').status, 0);
    const vs = JSON.parse(tsvm('vm', 'stats', 'g', '--json').stdout) as Record<string, unknown>;
    assert.equal(vs['state'], 'running');
    assert.equal(vs['ram_pages'], 65536);
    assert.equal(typeof vs['start_ms'], 'number');
    console.log(`vm g: start_ms ${String(vs['start_ms'])} ${JSON.stringify(vs['start'])}`);
    assert.equal(tsvm('vm', 'balloon', 'g', 'much').status, 125);
    assert.equal(tsvm('vm', 'balloon', 'g', '192M').status, 0);
    const q = tsvm('vm', 'qmp', 'g', '{"execute":"query-status"}');
    assert.equal(q.status, 0);
    assert.match(q.stdout, /"status":"running"/);
    // The fault route exists only on a host started with TSVM_HOST_TEST_FAULTS=1.
    assert.equal((await hostRequest(sock, 'POST', '/v1/vms/g/x-fault')).status, 404);

    // The prebuilt VM boots like any other; kill ends it at once.
    const hDeadline = Date.now() + BOOT_MS;
    while (!tsvm('vm', 'logs', 'h').stdout.includes(PROMPT)) {
      assert.ok(Date.now() < hDeadline, `no prompt from h: ${tsvm('vm', 'logs', 'h').stdout.slice(-1000)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.match(tsvm('vm', 'logs', 'h').stdout, /^\[ {4}0\.000000\] Linux version/);
    assert.equal(tsvm('vm', 'kill', 'h').status, 0);
    assert.match(tsvm('vm', 'ls').stdout, /h\s+shutdown\s+256M\s+-\s+killed/);
    assert.equal(tsvm('vm', 'rm', 'h').status, 0);

    // rm refuses a running VM; stop powers it off; rm then removes it.
    const rm1 = tsvm('vm', 'rm', 'g');
    assert.equal(rm1.status, 1);
    assert.match(rm1.stderr, /stop it first/);
    assert.equal(tsvm('vm', 'stop', 'g').status, 0);
    assert.match(tsvm('vm', 'ls').stdout, /g\s+shutdown/);
    assert.match(tsvm('vm', 'logs', 'g').stdout, /cli-25/, 'the log outlives the VM');
    assert.equal(tsvm('vm', 'rm', 'g').status, 0);
    const gone = tsvm('vm', 'stats', 'g');
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /no VM named 'g'/);

    // host stop: the socket goes away, clients get the "no host" message again.
    const stop = tsvm('host', 'stop');
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal(fs.existsSync(sock), false);
    assert.match(tsvm('vm', 'ls').stderr, /no tsvm host is running/);
    hostPid = null;
  } finally {
    if (hostPid !== null) { try { process.kill(hostPid, 'SIGKILL'); } catch { /* gone */ } }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
