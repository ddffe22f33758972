/**
 * Unit tests for src/host/compiler-threads.ts: the worker count chosen per
 * core count, the relaunch (`--v8-pool-size` in the child, exit status
 * passed through, SIGTERM forwarded so no child outlives its parent), and
 * the lowered priority of every thread but the main one.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { wantedPoolSize, POOL_ENV } from '../../src/host/compiler-threads.js';

const PROBE = path.resolve('dist/tests/helpers/relaunch-probe.js');

test('one core stays free for the vCPU thread; never fewer than 1 worker or more than 4', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 8, 64].map(wantedPoolSize), [1, 1, 2, 3, 4, 4, 4]);
});

/** Starts the probe without the marker and resolves with its first output line, the process and its exit. */
function startProbe(arg: string): Promise<{ line: { pid: number; execArgv: string[]; arg: string | null };
  exited: Promise<{ code: number | null; signal: string | null }>; parentPid: number; kill: (s: NodeJS.Signals) => void }> {
  const env = { ...process.env };
  delete env[POOL_ENV];
  env.NODE_OPTIONS = (env.NODE_OPTIONS ?? '').replace(/--v8-pool-size=\S+/g, '');
  const p = spawn(process.execPath, [PROBE, arg], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => p.on('exit', (code, signal) => r({ code, signal })));
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ line: JSON.parse(buf.slice(0, nl)), exited, parentPid: p.pid!, kill: (s) => p.kill(s) });
    });
    p.on('error', reject);
  });
}

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

const relaunches = wantedPoolSize(os.availableParallelism()) < 4;

test('on a host with few cores the command reruns with --v8-pool-size, and SIGTERM reaches the child', { skip: !relaunches && 'this host has 5 or more cores: no relaunch' }, async () => {
  const probe = await startProbe('wait');
  const want = wantedPoolSize(os.availableParallelism());
  assert.ok(probe.line.execArgv.includes(`--v8-pool-size=${want}`), JSON.stringify(probe.line.execArgv));
  assert.notEqual(probe.line.pid, probe.parentPid, 'the guest side runs in a child');
  probe.kill('SIGTERM');
  const r = await probe.exited;
  assert.equal(r.code, 128 + os.constants.signals.SIGTERM, 'the parent exits as the child did');
  for (let i = 0; i < 50 && alive(probe.line.pid); i++) await new Promise((res) => setTimeout(res, 20));
  assert.equal(alive(probe.line.pid), false, 'the child is gone');
});

test("the child's exit status is the command's", { skip: !relaunches && 'this host has 5 or more cores: no relaunch' }, async () => {
  const probe = await startProbe('exit7');
  assert.equal((await probe.exited).code, 7);
});

test('no relaunch when the marker is set', async () => {
  const p = spawn(process.execPath, [PROBE, 'exit7'], { env: { ...process.env, [POOL_ENV]: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  assert.equal(code, 7);
  assert.equal(JSON.parse(out).pid, p.pid);
});

test('tsvm exec\'s way: every thread but the main one gets the lowest priority (Linux), the main thread keeps its own', { skip: process.platform !== 'linux' }, async () => {
  const mod = path.resolve('dist/src/host/compiler-threads.js');
  const script = `
    import fs from 'node:fs';
    const { lowerWorkerPriority } = await import(${JSON.stringify(mod)});
    const nice = (t) => Number(fs.readFileSync('/proc/self/task/' + t + '/stat', 'utf8').split(') ')[1].split(' ')[16]);
    const before = Object.fromEntries(fs.readdirSync('/proc/self/task').map((t) => [t, nice(t)]));
    const changed = lowerWorkerPriority();
    const after = Object.fromEntries(fs.readdirSync('/proc/self/task').map((t) => [t, nice(t)]));
    console.log(JSON.stringify({ pid: process.pid, changed, before, after }));`;
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    p.stdout.on('data', (d: Buffer) => { buf += d.toString(); });
    p.on('exit', (code) => (code === 0 ? resolve(buf) : reject(new Error(`exit ${code}`))));
  });
  const r = JSON.parse(out) as { pid: number; changed: number; before: Record<string, number>; after: Record<string, number> };
  const others = Object.keys(r.after).filter((t) => Number(t) !== r.pid);
  assert.ok(others.length >= 1 && r.changed === others.length, `every other thread was changed (${r.changed} of ${others.length})`);
  for (const t of others) assert.equal(r.after[t], 19, `thread ${t}`);
  assert.equal(r.after[String(r.pid)], r.before[String(r.pid)], 'the main thread keeps its priority');
});
