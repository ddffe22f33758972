/**
 * The vm runtime's warm spare (src/host/containers/vm-spare.ts): a host
 * that has started one vm container keeps a microVM booted with no root
 * (`-fsdev late`), hidden from `vm ls`; the next container that fits takes
 * it. Checked from outside, with the CLI and the host's GET /v1/host:
 * - the first container boots cold, then a spare becomes ready and is not
 *   listed;
 * - a warm container's guest has been up longer than the command took (it
 *   booted before), and has the container's hostname, PID 1, pids limit
 *   and writable layer; `start` runs it again on the next spare with the
 *   layer kept;
 * - a detached warm container is listed by `vm ls` under its own name and
 *   answers `exec`;
 * - volumes (-v, -v :ro) go on the spare's late shares;
 * - a container that does not fit the spare (--memory) boots cold while a
 *   spare waits.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { runTsvm, sleep, type Out } from '../helpers/container-cli.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};

/** Runs `tsvm ARGS` to its end (a vm boot may take minutes on a loaded machine). */
const tsvm = (args: string[]): Out => runTsvm(env, args, '', 400_000);

/** Runs `tsvm ARGS`, expecting status 0; its stdout. */
function ok(...args: string[]): string {
  const r = tsvm(args);
  assert.equal(r.status, 0, `tsvm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** What GET /v1/host says of the spare. */
interface HostInfo { spare_vm: 'ready' | 'booting' | 'none'; spare_vm_starts: { warm: number; cold: number } }

/** GET /v1/host on the test's host. */
function hostInfo(): Promise<HostInfo> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: env['TSVM_HOST']!, path: '/v1/host', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => { try { resolve(JSON.parse(body) as HostInfo); } catch (e) { reject(e as Error); } });
    }).on('error', reject);
  });
}

/** Waits until the host has a spare ready (a boot takes seconds to a minute on a loaded machine). */
async function spareReady(): Promise<void> {
  const end = Date.now() + 300_000;
  while ((await hostInfo()).spare_vm !== 'ready') {
    if (Date.now() > end) throw new Error('timed out waiting for a spare VM');
    await sleep(250);
  }
}

/** The names `vm ls --json` lists. */
function vmNames(): string[] {
  return (JSON.parse(ok('vm', 'ls', '--json')) as { name: string }[]).map((v) => v.name);
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-ctr-spare-'));
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: path.join(dir, 'host.sock') };
  delete env['TSVM_SPARE_VM'];
  ok('pull', 'busybox');
});

after(() => {
  tsvm(['host', 'stop']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('vm runtime: a spare VM, booted ahead and hidden, takes the next container that fits; one that does not fit boots cold', { timeout: 1_500_000 }, async () => {
  ok('run', '--rm', '--runtime', 'vm', 'busybox', 'true');
  assert.deepEqual((await hostInfo()).spare_vm_starts, { warm: 0, cold: 1 }, 'the first container boots cold');
  await spareReady();
  assert.deepEqual(vmNames(), [], 'an idle spare is not listed');

  // A warm container: its guest was up before the command started.
  const script = 'cat /f 2>/dev/null; echo data >> /f; hostname; echo $$; cat /sys/fs/cgroup/container/pids.max; cut -d" " -f1 /proc/uptime';
  const t0 = Date.now();
  const first = ok('run', '--name', 'w1', '--runtime', 'vm', '--hostname', 'hw', '--pids-limit', '16', 'busybox', 'sh', '-c', script).trim().split('\n');
  const took = Date.now() - t0;
  console.log(`# a container on the spare: ${took} ms from command to exit`);
  assert.deepEqual(first.slice(0, 3), ['hw', '1', '16'], 'hostname, PID 1 and the pids limit came with the container');
  assert.ok(Number(first[3]) * 1000 > took, `the guest had been up ${first[3]} s, longer than the command's ${took} ms: it booted before`);
  assert.deepEqual((await hostInfo()).spare_vm_starts, { warm: 1, cold: 1 });

  // start: the same layer, on the next spare.
  await spareReady();
  const again = ok('start', '-a', 'w1').trim().split('\n');
  assert.deepEqual(again.slice(0, 3), ['data', 'hw', '1'], 'the file written in the first run is in the layer');
  assert.deepEqual((await hostInfo()).spare_vm_starts, { warm: 2, cold: 1 });
  ok('rm', 'w1');

  // A detached container on a spare is a VM of its own name.
  await spareReady();
  const id = ok('run', '-d', '--name', 'w2', '--runtime', 'vm', 'busybox', 'sleep', '1000').trim();
  assert.deepEqual(vmNames(), ['w2'], 'vm ls lists the container\'s VM by its name, and no spare');
  assert.equal(ok('exec', 'w2', 'hostname').trim(), id.slice(0, 12), 'the default hostname, Docker\'s: the id\'s first 12');
  ok('rm', '-f', 'w2');

  // Volumes go on the spare's late shares: one read-write, one read-only.
  await spareReady();
  const rw = fs.mkdtempSync(path.join(dir, 'rw-')), ro = fs.mkdtempSync(path.join(dir, 'ro-'));
  fs.writeFileSync(path.join(rw, 'in'), 'from the host\n');
  fs.writeFileSync(path.join(ro, 'keep'), 'read me\n');
  const vols = ok('run', '--rm', '--runtime', 'vm', '-v', `${rw}:/data`, '-v', `${ro}:/ro:ro`, 'busybox', 'sh', '-c',
    'cat /data/in /ro/keep; echo from the guest > /data/out; echo no > /ro/keep 2>/dev/null || echo refused');
  assert.equal(vols, 'from the host\nread me\nrefused\n');
  assert.equal(fs.readFileSync(path.join(rw, 'out'), 'utf8'), 'from the guest\n', 'the guest wrote the host directory');
  assert.equal(fs.readFileSync(path.join(ro, 'keep'), 'utf8'), 'read me\n', 'the read-only volume is unchanged');
  assert.deepEqual((await hostInfo()).spare_vm_starts, { warm: 4, cold: 1 }, 'the container with volumes took the spare');

  // --memory does not fit the spare's shape: cold, even with a spare waiting.
  await spareReady();
  const mem = /^MemTotal:\s+(\d+) kB/.exec(ok('run', '--rm', '--runtime', 'vm', '--memory', '128m', 'busybox', 'head', '-1', '/proc/meminfo'));
  assert.ok(mem !== null && Number(mem[1]) <= 128 * 1024, `the guest has at most 128 MiB: ${mem?.[0] ?? 'no MemTotal'}`);
  const info = await hostInfo();
  assert.equal(info.spare_vm_starts.warm, 4, 'no spare was taken');
  assert.equal(info.spare_vm_starts.cold, 2);
  assert.equal(info.spare_vm, 'ready', 'the spare still waits');
});
