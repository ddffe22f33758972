/**
 * The process runtime's warm spare (src/host/containers/spare-runtime.ts,
 * src/cli/await-argv.ts): after its first container the host keeps one
 * `tsvm exec --await-argv` child ready, the next container runs in it (its
 * pid becomes the container's), the spare is replaced, a host that dies
 * leaves no runtime behind, and a bad command line on the fd is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { okTsvm, sleep } from '../helpers/container-cli.js';
import { TSVM_CLI } from '../helpers/guest-run.js';
import { hostRequest } from '../../src/host/host-client.js';
import { parseAwaitedArgv } from '../../src/cli/await-argv.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};
let socket = '';

const ok = (...args: string[]): string => okTsvm(env, args);

/** The pids of the host's children that wait as spares. */
function spares(host: number): number[] {
  let kids: string[] = [];
  for (const t of fs.readdirSync(`/proc/${host}/task`)) {
    try { kids.push(...fs.readFileSync(`/proc/${host}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter((k) => k !== '')); } catch { /* gone */ }
  }
  kids = [...new Set(kids)];
  return kids.map(Number).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes('--await-argv'); } catch { return false; }
  });
}

async function until<T>(f: () => T | null, what: string, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-spare-'));
  socket = path.join(dir, 'host.sock');
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: socket };
  ok('pull', 'busybox');
});

after(() => {
  spawnSync(process.execPath, [TSVM_CLI, 'host', 'stop'], { env, timeout: 60_000 });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the next container runs in the warm spare; the spare is replaced; a dead host leaves no runtime', async () => {
  assert.equal(ok('run', '--rm', 'busybox', 'echo', 'first').trim(), 'first');
  const host = (await hostRequest(socket, 'GET', '/v1/host')).body as { pid: number };
  const spare = await until(() => { const s = spares(host.pid); return s.length === 1 ? s[0]! : null; }, 'a spare after the first container');
  const id = ok('run', '-d', '--name', 'warm', 'busybox', 'sleep', '1000').trim();
  const rec = (JSON.parse(ok('inspect', id)) as { State: { Pid: number; Running: boolean } }[])[0]!;
  assert.equal(rec.State.Running, true);
  assert.equal(rec.State.Pid, spare, 'the container runs in the process that waited as the spare');
  const title = fs.readFileSync(`/proc/${spare}/cmdline`, 'utf8');
  assert.match(title, /^tsvm-runtime .*--upper \S+\/upper /, 'the runtime shows its command line as its title');
  const next = await until(() => { const s = spares(host.pid).filter((p) => p !== spare); return s.length === 1 ? s[0]! : null; }, 'a new spare');
  assert.notEqual(next, spare);
  assert.equal(ok('exec', 'warm', 'cat', '/proc/1/cmdline').split('\0')[0], 'sleep', 'the container works: exec reaches its PID 1');
  // The host dies: the next host finds the runtime by the layer in its title and kills it.
  process.kill(host.pid, 'SIGKILL');
  await until(() => { try { process.kill(host.pid, 0); return null; } catch { return true; } }, 'the host to die');
  const after = (JSON.parse(ok('inspect', 'warm')) as { State: { Status: string; ExitCode: number } }[])[0]!;
  assert.equal(after.State.Status, 'exited');
  assert.equal(after.State.ExitCode, 255);
  await until(() => { try { process.kill(spare, 0); return null; } catch { return true; } }, 'the dead host\'s runtime to be killed', 10_000);
  // The old spare had no container: its fd closes with the host and it exits by itself.
  await until(() => { try { process.kill(next, 0); return null; } catch { return true; } }, 'the dead host\'s idle spare to exit', 30_000);
});

test('--await-argv: a bad command line is one line and exit 125; a good one runs', async () => {
  assert.deepEqual(parseAwaitedArgv('["--version"]'), ['--version']);
  for (const bad of ['', 'nope', '[]', '{"a":1}', '[1,2]', '"x"']) assert.equal(typeof parseAwaitedArgv(bad), 'string', bad);
  const run = (line: string | null): Promise<{ status: number; out: string; err: string }> => new Promise((resolve) => {
    const c = spawn(process.execPath, [TSVM_CLI, 'exec', '--await-argv', '3'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env });
    let out = '', err = '';
    c.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const fd = c.stdio[3] as NodeJS.WritableStream;
    if (line === null) fd.end(); else fd.end(line);
    c.on('exit', (code) => resolve({ status: code ?? 128, out, err }));
  });
  for (const [line, re] of [['not json\n', /not JSON/], ['[1]\n', /JSON array of strings/], [null, /closed the fd/]] as const) {
    const r = await run(line);
    assert.equal(r.status, 125, `${String(line)}: ${r.err}`);
    assert.equal(r.err.trim().split('\n').length, 1);
    assert.match(r.err, re);
  }
  const root = path.join(dir, 'images', '.containers', 'rootfs');
  const img = fs.readdirSync(root).find((d) => !d.includes('.tmp'))!;
  const r = await run(`${JSON.stringify(['--root', path.join(root, img), '/bin/busybox', 'echo', 'spare says hi'])}\n`);
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out, 'spare says hi\n');
  const bad = spawnSync(process.execPath, [TSVM_CLI, 'exec', '--await-argv', '1'], { env, encoding: 'utf8' });
  assert.equal(bad.status, 125);
  assert.match(bad.stderr, /file descriptor number above 2/);
});

test('exec --status-fd: the exit status as a line on the fd, then the process ends itself at once (SIGKILL); a bad fd is refused', async () => {
  const root = path.join(dir, 'images', '.containers', 'rootfs');
  const img = fs.readdirSync(root).find((d) => !d.includes('.tmp'))!;
  const run = (script: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; status: string; out: string }> => new Promise((resolve) => {
    const c = spawn(process.execPath, [TSVM_CLI, 'exec', '--status-fd', '3', '--root', path.join(root, img), '/bin/busybox', 'sh', '-c', script],
      { stdio: ['ignore', 'pipe', 'inherit', 'pipe'], env });
    let out = '', status = '';
    c.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    (c.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => { status += d.toString(); });
    c.on('close', (code, signal) => resolve({ code, signal, status, out }));
  });
  for (const [script, line] of [['echo before; exit 7', '7\n'], ['exit 0', '0\n'], ['kill -TERM $$', '143\n']] as const) {
    const r = await run(script);
    assert.equal(r.status, line, `${script}: the status line`);
    assert.equal(r.signal, 'SIGKILL', `${script}: the runtime ended itself`);
    if (script.startsWith('echo')) assert.equal(r.out, 'before\n', 'the output went out before the end');
  }
  const bad = spawnSync(process.execPath, [TSVM_CLI, 'exec', '--status-fd', '2', '/bin/true'], { env, encoding: 'utf8' });
  assert.equal(bad.status, 125);
  assert.match(bad.stderr, /^tsvm: --status-fd 2: expected a file descriptor number above 2\n$/);
});
