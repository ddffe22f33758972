/**
 * Published ports of the process VM (`tsvm exec --publish`, issue 15's
 * "a network that reaches only loopback, unless -p publishes a port"),
 * with Debian trixie's busybox-static (riscv64):
 * - `busybox httpd -f` inside the VM, fetched from the host with curl
 *   through the published port, a large file with a half-closing client
 *   (back-pressure and half-close), while a second httpd on an unpublished
 *   port answers inside the VM (busybox wget) and is unreachable from the
 *   host; a shell blocked reading its stdin pipe beside it does not hold
 *   the published port up;
 * - the VM cannot reach a host-only service (ECONNREFUSED: its loopback is
 *   its own) nor any other network (ENETUNREACH);
 * - bad --publish syntax and a busy host port: one line, exit 125.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { DebianArchive } from '../../src/images/debian-archive.js';
import { REPO_ROOT, requireTool } from '../helpers/toolchain.js';
import { TSVM_CLI, tsvmEnv, requireTsvm, runHost } from '../helpers/guest-run.js';

const ROOT = path.join(REPO_ROOT, '.cache', 'roots', 'busybox-static');
/** How long the guest's httpd may take to start answering (a loaded CI machine, three JIT passes). */
const START_MS = 120_000;

let work = '';
let bb = '';
let curl = '';

/** A host TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** curl's output, exit status and stderr. */
async function fetch(url: string): Promise<{ status: number; body: string; err: string }> {
  const r = await runHost(curl, ['-sS', '-m', '20', url], { timeoutMs: 30_000 });
  return { status: r.status, body: r.stdout.toString(), err: r.stderr };
}

/** Retries `url` until it answers (the guest is starting). */
async function fetchWhenUp(url: string, child: ChildProcess): Promise<string> {
  const end = Date.now() + START_MS;
  let last = '';
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`tsvm exited with ${child.exitCode} before answering`);
    const r = await fetch(url);
    if (r.status === 0) return r.body;
    last = r.err;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`${url} never answered: ${last}`);
}

/** A raw HTTP/1.0 request that half-closes after sending; resolves with the whole response. */
function halfClosedGet(port: number, p: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => {
      s.end(`GET ${p} HTTP/1.0\r\nHost: x\r\n\r\n`);
    });
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('end', () => { s.destroy(); resolve(Buffer.concat(chunks)); });
    s.on('error', reject);
    s.setTimeout(60_000, () => { s.destroy(); reject(new Error('half-closed GET timed out')); });
  });
}

function startTsvm(args: string[], stdin: number | 'ignore' = 'ignore'): { child: ChildProcess; stderr: () => string; stdout: () => string } {
  const child = spawn(process.execPath, [TSVM_CLI, 'exec', ...args], { env: tsvmEnv(), stdio: [stdin, 'pipe', 'pipe'] });
  let err = '', out = '';
  child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  return { child, stderr: () => err, stdout: () => out };
}

describe('tsvm exec --publish', () => {
  before(async () => {
    requireTsvm();
    curl = requireTool('curl', 'curl');
    await new DebianArchive({ progress: false }).installRoot(['busybox-static'], ROOT);
    bb = fs.realpathSync(path.join(ROOT, 'usr', 'bin', 'busybox'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-publish-'));
  });
  after(() => { if (work !== '') fs.rmSync(work, { recursive: true, force: true }); });

  test('busybox httpd behind a published port: curl, a 1 MB half-closed GET, an unpublished port reachable only inside', { timeout: START_MS + 120_000 }, async () => {
    const www = path.join(work, 'www');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'index.html'), 'hello from the container\n');
    const big = crypto.randomBytes(1 << 20);
    fs.writeFileSync(path.join(www, 'big.bin'), big);
    const hostPort = await freePort(), unpublished = await freePort();
    // A second httpd on `unpublished` (not published); wget inside the VM saves what it answers into the published docroot.
    const script = `${bb} httpd -f -p ${unpublished} -h ${www} & sleep 1; ` +
      `${bb} wget -q -O ${www}/inside.txt http://127.0.0.1:${unpublished}/index.html; ` +
      `exec ${bb} httpd -f -p 8080 -h ${www}`;
    const { child, stderr } = startTsvm(['--publish', `127.0.0.1:${hostPort}:8080`, bb, 'sh', '-c', script]);
    try {
      assert.equal(await fetchWhenUp(`http://127.0.0.1:${hostPort}/index.html`, child), 'hello from the container\n');
      assert.equal((await fetch(`http://127.0.0.1:${hostPort}/inside.txt`)).body, 'hello from the container\n',
        'the unpublished httpd answered on the VM\'s own loopback');
      const bad = await fetch(`http://127.0.0.1:${unpublished}/index.html`);
      assert.notEqual(bad.status, 0, 'the unpublished port is not reachable from the host');
      assert.match(bad.err, /Connection refused|Couldn't connect/);
      const resp = await halfClosedGet(hostPort, '/big.bin');
      const head = resp.indexOf('\r\n\r\n');
      assert.match(resp.subarray(0, head).toString(), /^HTTP\/1\.[01] 200/);
      const body = resp.subarray(head + 4);
      assert.equal(body.length, big.length);
      assert.ok(body.equals(big), 'the 1 MB body arrives intact');
      const again = await fetch(`http://127.0.0.1:${hostPort}/index.html`);
      assert.equal(again.body, 'hello from the container\n', 'the listener keeps serving');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    assert.doesNotMatch(stderr(), /cannot publish|uncaught|killed/);
  });

  test('a shell blocked reading its stdin pipe does not hold up the published httpd beside it', { timeout: START_MS + 60_000 }, async () => {
    const www = path.join(work, 'www2');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'index.html'), 'beside a reader\n');
    const hostPort = await freePort();
    // stdin is a FIFO (a pipe the VM can poll; opened read-write so opening does not wait for a writer).
    const fifo = path.join(work, 'stdin.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const fifoFd = fs.openSync(fifo, fs.constants.O_RDWR);
    const { child, stdout } = startTsvm(['-p', `${hostPort}:8080`, bb, 'sh', '-c', `${bb} httpd -f -p 8080 -h ${www} & read x; echo "got $x"`], fifoFd);
    try {
      assert.equal(await fetchWhenUp(`http://127.0.0.1:${hostPort}/index.html`, child), 'beside a reader\n');
      assert.equal((await fetch(`http://127.0.0.1:${hostPort}/index.html`)).body, 'beside a reader\n');
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      fs.writeSync(fifoFd, 'bye\n');
      assert.equal(await exited, 0);
      assert.equal(stdout(), 'got bye\n');
      const after = await fetch(`http://127.0.0.1:${hostPort}/index.html`);
      assert.notEqual(after.status, 0, 'the host port is closed once the VM has ended');
    } finally {
      fs.closeSync(fifoFd);
      if (child.exitCode === null) { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); }
    }
  });

  test('the VM reaches neither a host-only service (ECONNREFUSED) nor another network (ENETUNREACH)', { timeout: 120_000 }, async () => {
    let hostConnections = 0;
    const server = net.createServer((s) => { hostConnections++; s.end('host only\n'); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const refused = await runHost(process.execPath, [TSVM_CLI, 'exec', bb, 'nc', '127.0.0.1', String(port)], { env: tsvmEnv(), timeoutMs: 60_000 });
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /Connection refused/);
      const unreach = await runHost(process.execPath, [TSVM_CLI, 'exec', bb, 'nc', '10.0.2.2', '80'], { env: tsvmEnv(), timeoutMs: 60_000 });
      assert.equal(unreach.status, 1);
      assert.match(unreach.stderr, /Network is unreachable/);
      assert.equal(hostConnections, 0, 'nothing reached the host service');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('bad --publish syntax and a busy host port: one line, exit 125', { timeout: 60_000 }, async () => {
    for (const spec of ['8080', '1.2.3.4:x:80', '8080:80/udp']) {
      const r = await runHost(process.execPath, [TSVM_CLI, 'exec', '--publish', spec, bb, 'true'], { env: tsvmEnv(), timeoutMs: 30_000 });
      assert.equal(r.status, 125, spec);
      assert.match(r.stderr, /^tsvm: invalid --publish '[^']*': [^\n]*\n$/);
    }
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const r = await runHost(process.execPath, [TSVM_CLI, 'exec', '-p', `${port}:80`, bb, 'true'], { env: tsvmEnv(), timeoutMs: 30_000 });
      assert.equal(r.status, 125);
      assert.equal(r.stderr, `tsvm: cannot publish 127.0.0.1:${port}: port is already allocated\n`);
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  });
});
