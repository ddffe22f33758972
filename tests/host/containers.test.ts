/**
 * Docker's container verbs on the process runtime (src/cli/container-command.ts,
 * src/host/containers): every verb's normal path and its errors, with a
 * private image store, container directory and host socket. The host is
 * started by the first verb (no set-up step). busybox is the image.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTsvm, okTsvm, refused, sleep, until, type Out } from '../helpers/container-cli.js';
import { TSVM_CLI } from '../helpers/guest-run.js';
import { hostRequest } from '../../src/host/host-client.js';
import { parseDetachKeys } from '../../src/cli/container-command.js';
import { isContainerRun } from '../../src/cli/run-kind.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};
let socket = '';

const tsvm = (args: string[], input = ''): Out => runTsvm(env, args, input);

const ok = (...args: string[]): string => okTsvm(env, args);

function inspect(ref: string): { Id: string; Name: string; State: { Status: string; ExitCode: number; OOMKilled: boolean; Running: boolean; Pid: number }; Config: { Hostname: string; PortBindings: string[] }; Image: string } {
  const arr = JSON.parse(ok('inspect', ref)) as unknown[];
  assert.equal(arr.length, 1);
  return arr[0] as ReturnType<typeof inspect>;
}

/** A tsvm process whose output is collected as it runs. */
function background(args: string[]): { out: () => string; err: () => string; write: (s: string | Buffer) => void; end: () => void; done: Promise<number> } {
  const child = spawn(process.execPath, [TSVM_CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdin.on('error', () => {});
  const done = new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? 128 + (s !== null ? os.constants.signals[s] : 0))));
  return { out: () => out, err: () => err, write: (s) => child.stdin.write(s), end: () => child.stdin.end(), done };
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-containers-'));
  socket = path.join(dir, 'host.sock');
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: socket };
  ok('pull', 'busybox');
});

after(() => {
  tsvm(['host', 'stop']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('tsvm run tells a container from the system VM by its first argument', () => {
  for (const a of [['busybox'], ['-it', 'busybox', 'sh'], ['-d', 'x'], ['--rm', 'x'], ['--name=n', 'x'], ['-e', 'A=1', 'x']]) assert.ok(isContainerRun(a), a.join(' '));
  for (const a of [[], ['-kernel', 'k'], ['-M', 'virt'], ['-m', '256M'], ['-append', 'x'], ['-nographic'], ['-drive', 'file=x'], ['-frobnicate']]) assert.ok(!isContainerRun(a), a.join(' '));
  assert.deepEqual([...(parseDetachKeys('ctrl-p,ctrl-q') as Buffer)], [0x10, 0x11]);
  assert.equal(typeof parseDetachKeys('ctrl-pp'), 'string');
});

describe('containers', () => {
  test('run: the first verb starts the host; output and Docker exit codes (0, N, 126, 127, 125)', () => {
    assert.ok(!fs.existsSync(socket), 'no host before the first verb');
    const r = tsvm(['run', '--rm', 'busybox', 'echo', 'hello']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'hello\n');
    assert.ok(fs.existsSync(socket), 'the host was started on first use');
    assert.equal(tsvm(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 7']).status, 7);
    // Without -i the container's stdin is at end of file (Docker gives it /dev/null), and what the client has on stdin stays there.
    const noStdin = runTsvm(env, ['run', '--rm', 'busybox', 'cat'], 'not for the container\n', 60_000);
    assert.deepEqual([noStdin.status, noStdin.stdout], [0, ''], `cat without -i (${noStdin.stderr})`);
    refused(tsvm(['run', '--rm', 'busybox', 'nosuchcommand']), 127, /nosuchcommand: No such file or directory/);
    refused(tsvm(['run', '--rm', 'busybox', '/etc/passwd']), 126, /\/etc\/passwd: not an ELF executable/);
    refused(tsvm(['run', '--rm', '--runtime', 'vm', '--memory', '32m', 'busybox', 'true']), 125, /the vm runtime needs at least 64 MiB/);
    assert.equal(ok('ps', '-a', '-q'), '', '--rm removed every container');
  });

  test('PID 1, the hostname (the short id by default), -e, -w, -u', () => {
    const r = tsvm(['run', '--name', 'ident', 'busybox', 'sh', '-c', 'echo $$ $(hostname) $HOSTNAME $FOO; pwd']);
    assert.equal(r.status, 0, r.stderr);
    const id = inspect('ident').Id;
    assert.equal(r.stdout, `1 ${id.slice(0, 12)} ${id.slice(0, 12)}\n/\n`);
    assert.equal(inspect('ident').Config.Hostname, id.slice(0, 12));
    const r2 = tsvm(['run', '--rm', '--hostname', 'box', '-e', 'FOO=bar', '-w', '/work/dir', '-u', '1000:50', 'busybox', 'sh', '-c', 'echo $(hostname) $FOO; pwd; id -u; id -g']);
    assert.equal(r2.stdout, 'box bar\n/work/dir\n1000\n50\n', r2.stderr);
    refused(tsvm(['run', '--rm', '-u', 'nobodyhere', 'busybox', 'true']), 125, /unable to find user nobodyhere/);
    ok('rm', 'ident');
  });

  test('a file written in a container survives stop and start, and is gone after rm', async () => {
    const id = ok('run', '-d', '--name', 'keep', 'busybox', 'sh', '-c', 'cat /note 2>/dev/null || echo none; echo kept > /note; echo ready; while true; do sleep 1; done').trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await until(() => ok('logs', 'keep').includes('ready'), 'the container to write its file');
    assert.equal(inspect('keep').State.Status, 'running');
    // rm of a running container is refused (exit 1, like docker) and changes nothing
    refused(tsvm(['rm', 'keep']), 1, /container .* is running: stop the container before removing it or use -f/);
    assert.equal(inspect('keep').State.Running, true);
    assert.equal(ok('stop', '-t', '1', 'keep'), 'keep\n');
    const st = inspect('keep').State;
    assert.equal(st.Status, 'exited');
    assert.equal(st.ExitCode, 137, 'init (sh without a trap) ignored SIGTERM: SIGKILL after the timeout, 128+9');
    ok('start', 'keep');
    await until(() => ok('logs', 'keep').split('ready').length === 3, 'the second run');
    assert.equal(ok('logs', 'keep').split('\n').filter((l) => l === 'none' || l === 'kept').join(','), 'none,kept', 'the second run saw the file');
    assert.equal(ok('exec', 'keep', 'cat', '/note'), 'kept\n');
    const upper = path.join(dir, 'images', '.containers', id, 'upper');
    assert.ok(fs.existsSync(path.join(upper, 'note')), 'the file is in the container\'s own layer');
    assert.equal(ok('rm', '-f', 'keep'), 'keep\n');
    assert.ok(!fs.existsSync(path.join(dir, 'images', '.containers', id)), 'rm deleted the layer');
    refused(tsvm(['inspect', 'keep']), 1, /no such container: keep/);
    const fresh = tsvm(['run', '--rm', 'busybox', 'sh', '-c', 'cat /note || echo gone']);
    assert.equal(fresh.stdout, 'gone\n');
  });

  test('kill -s SIG reaches init, which ignores what it has no handler for; KILL gives 128+9; a stopped container and bad signals are refused', async () => {
    ok('run', '-d', '--name', 'victim', 'busybox', 'sleep', '600');
    refused(tsvm(['kill', '-s', 'NOSUCH', 'victim']), 1, /invalid signal: NOSUCH/);
    assert.equal(ok('kill', '-s', 'HUP', 'victim'), 'victim\n');
    assert.equal(ok('exec', 'victim', 'echo', 'alive'), 'alive\n');
    assert.equal(inspect('victim').State.Running, true, 'sleep, as init, has no HUP handler: the signal is ignored');
    ok('kill', '-s', 'KILL', 'victim');
    await until(() => inspect('victim').State.Status === 'exited', 'the kill');
    assert.equal(inspect('victim').State.ExitCode, 137);
    refused(tsvm(['kill', 'victim']), 1, /is not running/);
    ok('restart', 'victim');
    assert.equal(inspect('victim').State.Status, 'running');
    ok('kill', 'victim');
    await until(() => inspect('victim').State.Status === 'exited', 'SIGKILL');
    assert.equal(inspect('victim').State.ExitCode, 137);
    ok('rm', 'victim');
  });

  test('-p publishes a port on 127.0.0.1: busybox httpd in a container, fetched with curl; bad -p is refused', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    ok('run', '-d', '--name', 'web', '-p', `${port}:8080`, 'busybox', 'sh', '-c', 'mkdir -p /www && echo hello-from-web > /www/index.html && httpd -f -p 8080 -h /www');
    assert.deepEqual(inspect('web').Config.PortBindings, [`${port}:8080`]);
    let body = '';
    await until(() => {
      const r = spawnSync('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${port}/index.html`], { encoding: 'utf8' });
      body = r.stdout;
      return r.status === 0 && body.length > 0;
    }, 'the published port to answer');
    assert.equal(body, 'hello-from-web\n');
    ok('rm', '-f', 'web');
    refused(tsvm(['run', '--rm', '-p', 'nope', 'busybox', 'true']), 125, /nope/);
  });

  test('an OOM under --memory gives 137 and State.OOMKilled; a neighbour is unaffected', () => {
    const r = tsvm(['run', '--name', 'hog', '--memory', '24m', 'busybox', 'sh', '-c', 'x=a; while true; do x="$x$x"; done']);
    assert.equal(r.status, 137, r.stderr);
    const s = inspect('hog').State;
    assert.equal(s.OOMKilled, true);
    assert.equal(s.ExitCode, 137);
    assert.equal(tsvm(['run', '--rm', 'busybox', 'echo', 'fine']).stdout, 'fine\n');
    ok('rm', 'hog');
  });

  test('bad input: one line, the right exit code, and the store unchanged', () => {
    ok('create', '--name', 'taken', 'busybox', 'true');
    const before = ok('ps', '-a', '-q');
    const unknown = tsvm(['run', 'nosuchimage', 'true']);
    assert.equal(unknown.status, 125);
    assert.match(unknown.stderr, /^Unable to find image 'nosuchimage' locally\ntsvm: pull nosuchimage: no such image: [^\n]*\n$/, 'docker\'s notice, then one line');
    refused(tsvm(['run', '--name', 'taken', 'busybox', 'true']), 125, /name "\/taken" is already in use/);
    refused(tsvm(['create', '--name', 'bad name', 'busybox']), 125, /invalid container name/);
    refused(tsvm(['run', '--memory', 'lots', 'busybox', 'true']), 125, /--memory lots/);
    refused(tsvm(['run', '-p', 'eighty', 'busybox', 'true']), 125, /-p eighty/);
    refused(tsvm(['run', '--runtime', 'kata', 'busybox', 'true']), 125, /--runtime kata/);
    refused(tsvm(['run', '--bogus', 'busybox']), 125, /unknown option '--bogus'/);
    refused(tsvm(['stop', 'nosuch']), 1, /no such container: nosuch/);
    refused(tsvm(['logs', 'nosuch']), 1, /no such container/);
    refused(tsvm(['logs', '--tail', 'x', 'taken']), 1, /--tail x/);
    refused(tsvm(['exec', '-i', 'taken', 'true']), 1, /is not running/);
    refused(tsvm(['attach', 'taken']), 1, /cannot attach to a stopped container/);
    refused(tsvm(['top', 'taken']), 1, /is not running/);
    assert.equal(ok('ps', '-a', '-q'), before, 'no container was added or removed');
    // recorded, not yet used: -p and -v
    ok('create', '--name', 'ports', '-p', '8080:80', '-v', '/tmp:/data:ro', 'busybox');
    assert.deepEqual(inspect('ports').Config.PortBindings, ['8080:80']);
    ok('rm', 'taken', 'ports');
  });

  test('logs: --tail, -t, -f until the container ends; ps columns; top; stats; inspect', async () => {
    ok('run', '-d', '--name', 'chatty', 'busybox', 'sh', '-c', 'trap "echo last; exit 0" USR1; for i in 1 2 3; do echo line $i; done; echo oops >&2; sleep 600 & wait');
    await until(() => ok('logs', 'chatty').includes('line 3'), 'output');
    assert.equal(ok('logs', '--tail', '3', 'chatty'), 'line 2\nline 3\n', 'the last 3 entries of both streams (the third is stderr)');
    assert.equal(tsvm(['logs', 'chatty']).stderr, 'oops\n');
    assert.match(ok('logs', '-t', '--tail', '2', 'chatty'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line 3\n$/);
    const ps = ok('ps').split('\n');
    assert.match(ps[0]!, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
    assert.match(ps[1]!, /^[0-9a-f]{12}\s+busybox:latest\s+"sh -c trap "echo la…"\s+.* ago\s+Up .*chatty$/);
    const top = ok('top', 'chatty').split('\n');
    assert.match(top[0]!, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
    assert.match(top[1]!, /^root\s+1\s+0\s.*sh -c trap "echo last; exit 0" USR1; for i/, 'the guest\'s PID 1');
    assert.match(top[2]!, /^root\s+\d+\s+1\s.*sleep 600$/, 'its child');
    assert.match(ok('stats', '--no-stream', 'chatty'), /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+PIDS\n[0-9a-f]{12}\s+chatty\s+[\d.]+%\s+[\d.]+[kMG]?B \/ -\s+2\n$/, 'sh and its sleep');
    const follow = background(['logs', '-f', 'chatty']);
    await until(() => follow.out().includes('line 3'), 'logs -f to show the log');
    ok('kill', '-s', 'USR1', 'chatty');
    assert.equal(await follow.done, 0);
    assert.equal(follow.out(), 'line 1\nline 2\nline 3\nlast\n', '-f ends when the container does');
    assert.equal(inspect('chatty').State.ExitCode, 0);
    assert.match(ok('ps', '-a'), /Exited \(0\) .* ago\s+chatty/);
    assert.equal(ok('ps').split('\n').filter((l) => l.includes('chatty')).length, 0, 'ps without -a lists running ones only');
    ok('rm', 'chatty');
  });

  test('attach: two clients at once, stdin, detach with Ctrl-P Ctrl-Q; start -a -i', async () => {
    ok('run', '-d', '-i', '--name', 'echoer', 'busybox', 'sh', '-c', 'while read l; do echo got $l; done; echo bye');
    const a = background(['attach', 'echoer']);
    const b = background(['attach', '--no-stdin', 'echoer']);
    await sleep(1500);
    a.write('one\n');
    await until(() => a.out().includes('got one') && b.out().includes('got one'), 'both clients to see the output');
    a.write(Buffer.from([0x10, 0x11]));
    assert.equal(await a.done, 0);
    assert.match(a.err(), /read escape sequence/);
    assert.equal(inspect('echoer').State.Running, true, 'detaching leaves it running');
    ok('stop', '-t', '1', 'echoer');
    assert.equal(await b.done, 137, 'the other client ends with the container, and its status (init ignored SIGTERM)');
    // start -a -i: stdin to the command, the command's status as tsvm's
    const r = tsvm(['start', '-a', '-i', 'echoer'], 'two\n');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'got two\nbye\n');
    const piped = tsvm(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'read x; echo "[$x]"; exit 3'], 'abc\n');
    assert.equal(piped.stdout, '[abc]\n');
    assert.equal(piped.status, 3);
    ok('rm', 'echoer');
  });

  test('commit: the container\'s layer becomes an image; a container of it sees the file', () => {
    ok('run', '--name', 'builder', 'busybox', 'sh', '-c', 'echo baked > /etc/recipe; rm /etc/group');
    const id = ok('commit', 'builder', 'baked:v1').trim();
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.match(ok('images'), /^baked\s+v1\s+/m);
    assert.equal(tsvm(['run', '--rm', 'baked:v1', 'sh', '-c', 'cat /etc/recipe; test -e /etc/group || echo no-group']).stdout, 'baked\nno-group\n');
    refused(tsvm(['commit', 'nosuch', 'x:y']), 1, /no such container/);
    ok('rm', 'builder');
  });

  test('a host that dies leaves its running containers exited when the next one starts', async () => {
    ok('run', '-d', '--name', 'orphan', 'busybox', 'sleep', '600');
    const pid = inspect('orphan').State.Pid;
    const host = (await hostRequest(socket, 'GET', '/v1/host')).body as { pid: number };
    process.kill(host.pid, 'SIGKILL');
    await until(() => { try { process.kill(host.pid, 0); return false; } catch { return true; } }, 'the host to die');
    const s = inspect('orphan').State; // this verb starts a new host
    assert.equal(s.Status, 'exited');
    assert.equal(s.ExitCode, 255);
    await until(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, 'the orphaned runtime to be ended', 10_000);
    ok('start', 'orphan');
    assert.equal(inspect('orphan').State.Running, true, 'it starts again under the new host');
    ok('rm', '-f', 'orphan');
  });
});
