/**
 * The many-VM host against `tsvm run` (issue 14 point 10):
 * `npm run bench -- --only host`.
 *
 * The bench starts its own host (`tsvm host start --pool 2G --socket TMP`
 * as a child process) and measures, in interleaved rounds (the order of
 * the two alternates from round to round; medians are reported):
 *
 * 1. Boot: wall time from starting the command to the default guest's
 *    first shell prompt on its stdout, for `tsvm run` (as `npm start` runs
 *    it) and for `tsvm vm run --name X` (attached to the console, as a user
 *    runs it) on the running host (started with `--page-sharing on`), once
 *    as it comes (sharing on) and once with `-sharing off`. All are whole-process timings of the CLI,
 *    Node's start-up included.
 * 2. Compute: guest workloads typed at that prompt, timed twice: by the
 *    guest's clock (/proc/uptime before and after, 10 ms resolution) and
 *    by wall time from sending the line to the next prompt.
 * 3. VM start: the host's own `start_ms` (`tsvm vm stats --json`: from the
 *    API request's arrival to the VM's first instruction), for the host's
 *    first VM, later VMs of the last VM's configuration (built ahead of time
 *    on the idle worker) and VMs of another configuration (built on
 *    demand).
 * 4. Memory: on a fresh host, the host process's RSS (VmRSS of
 *    /proc/PID/status; the VMs' worker threads share it), the pool's
 *    resident pages (the pool's mapping in /proc/PID/smaps) and its
 *    counters, with 0, 1, 2 and 4 idle default guests of 256 MiB after
 *    boot; overhead per VM beyond guest RAM, in two ways (see hostTable).
 *
 * TSVM_JIT is removed from every child's environment: both sides run the
 * JIT with its default threshold.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDefaultGuest } from '../src/images/default-guest.js';
import { hostRequest, hostAnswers } from '../src/host/host-client.js';
import { stripAnsi } from '../tests/helpers/console-session.js';
import { REPO_ROOT } from '../tests/helpers/toolchain.js';

const PROMPT = '~ # ';
const MiB = 1024 * 1024;
/** Bytes per pool frame (RISC-V privileged spec §4.3: 4 KiB pages). */
const FRAME = 4096;
/** The host's pool for the bench: room for four 256 MiB guests, the prebuilt one and slack. */
const POOL = '2G';
const POOL_BYTES = 2 * 1024 * MiB;
const BOOT_TIMEOUT_MS = 10 * 60_000;
const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** One guest workload: a shell line that prints `@T start end` (guest uptime seconds) and what its output must contain. */
interface Workload { name: string; what: string; line: string; expect: string }

function workloads(quick: boolean): Workload[] {
  const mib = quick ? 8 : 32, n = quick ? 20_000 : 50_000;
  const zeros = crypto.createHash('md5').update(Buffer.alloc(mib * MiB)).digest('hex');
  const timed = (body: string): string => `read a x </proc/uptime; ${body}; read b x </proc/uptime; echo "@T $a $b"`;
  return [
    { name: 'md5sum', what: `busybox md5sum of ${mib} MiB from /dev/zero (dd bs=1M)`, line: timed(`dd if=/dev/zero bs=1M count=${mib} 2>/dev/null | md5sum`), expect: zeros },
    { name: 'shell loop', what: `busybox ash loop, ${n.toLocaleString('en-US')} iterations`, line: timed(`i=0; while [ $i -lt ${n} ]; do i=$((i+1)); done; echo "n=$i"`), expect: `n=${n}` },
  ];
}

/** The environment of every child: ours without TSVM_JIT (the JIT's default), with the bench host's socket. */
function childEnv(socket: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TSVM_HOST: socket };
  delete env['TSVM_JIT'];
  return env;
}

/** A CLI child with its console on pipes: waits for text, sends lines. */
class Session {
  readonly child: ChildProcess;
  private out = '';
  private cursor = 0;
  private err = '';
  private waiters: (() => void)[] = [];
  private exitCode: number | null = null;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.child.stdout!.on('data', (d: Buffer) => { this.out += d.toString('latin1'); this.notify(); });
    this.child.stderr!.on('data', (d: Buffer) => { this.err = (this.err + d.toString('latin1')).slice(-2000); });
    this.child.stdin!.on('error', () => { /* gone before the last line was written */ });
    this.child.on('exit', (code, sig) => { this.exitCode = code ?? (sig !== null ? 128 : 1); this.notify(); });
  }

  private notify(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  /** Waits until `text` appears after the previous match; returns the output in between (escape sequences removed). */
  async expect(text: string | RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.out.slice(this.cursor);
      const m = typeof text === 'string' ? (rest.includes(text) ? { i: rest.indexOf(text), n: text.length } : null)
        : ((r) => (r ? { i: r.index, n: r[0].length } : null))(text.exec(rest));
      if (m !== null) { this.cursor += m.i + m.n; return stripAnsi(rest.slice(0, m.i + m.n)); }
      if (this.exitCode !== null || Date.now() > deadline) {
        this.child.kill('SIGKILL');
        const tail = stripAnsi(this.out.slice(-300) + this.err.slice(-300)).trim().split('\n').slice(-3).join(' / ');
        throw new Error(`${this.exitCode !== null ? `exited (${this.exitCode})` : 'timed out'} waiting for ${String(text)}: ${tail}`);
      }
      await new Promise<void>((r) => { const t = setTimeout(r, 1000); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  send(line: string): void { this.child.stdin!.write(`${line}\n`); }

  /** Powers the guest off and waits for the process to end (killed after 30 s). */
  async poweroff(): Promise<void> {
    if (this.exitCode === null) {
      const gone = new Promise((r) => this.child.once('exit', r));
      this.send('poweroff -f');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
      await gone;
      clearTimeout(t);
    }
  }
}

/** The configurations compared: `tsvm run`, and `tsvm vm run` with page sharing on (the bench's host opts in) and off. */
type SideName = 'run' | 'host' | 'hostNoSharing';
const SIDES: readonly SideName[] = ['run', 'host', 'hostNoSharing'];
const SIDE_LABEL: Record<SideName, string> = { run: 'tsvm run', host: 'tsvm vm run', hostNoSharing: 'tsvm vm run -sharing off' };

/** One side's measurements in one round. */
interface Side { bootS: number; wallS: number[]; guestS: number[] }

/** Boots one guest through `args`, runs the workloads at its prompt, powers it off. */
async function bootAndCompute(args: string[], env: NodeJS.ProcessEnv, work: Workload[]): Promise<Side> {
  const t0 = performance.now();
  const s = new Session(args, env);
  try {
    await s.expect(PROMPT, BOOT_TIMEOUT_MS);
    const bootS = (performance.now() - t0) / 1000;
    s.send('dmesg -n 1');
    await s.expect(PROMPT, 60_000);
    const wallS: number[] = [], guestS: number[] = [];
    for (const w of work) {
      const t1 = performance.now();
      s.send(w.line);
      const out = await s.expect(/@T (\d+\.\d+) (\d+\.\d+)/, 10 * 60_000);
      await s.expect(PROMPT, 60_000);
      wallS.push((performance.now() - t1) / 1000);
      const m = /@T (\d+\.\d+) (\d+\.\d+)/.exec(out)!;
      guestS.push(Number(m[2]) - Number(m[1]));
      if (!out.includes(w.expect)) throw new Error(`${w.name}: expected ${w.expect} in the guest's output: ${out.trim().slice(-200)}`);
    }
    return { bootS, wallS, guestS };
  } finally {
    await s.poweroff();
  }
}

/** A host started by the bench, in the foreground as a child process. */
class BenchHost {
  readonly socket: string;
  readonly env: NodeJS.ProcessEnv;
  readonly child: ChildProcess;
  private err = '';
  pid = 0;

  constructor(readonly dir: string) {
    this.socket = path.join(dir, 'host.sock');
    this.env = childEnv(this.socket);
    this.child = spawn(process.execPath, [CLI, 'host', 'start', '--pool', POOL, '--socket', this.socket, '--page-sharing', 'on'], { stdio: ['ignore', 'ignore', 'pipe'], env: this.env });
    this.child.stderr!.on('data', (d: Buffer) => { this.err = (this.err + d.toString()).slice(-1000); });
  }

  /** Waits until the host answers and its idle worker holds a VM built ahead of time, then `settleMs` more. */
  async ready(settleMs: number): Promise<void> {
    const deadline = Date.now() + 120_000;
    while (!(await hostAnswers(this.socket))) {
      if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`the host did not start: ${this.err.trim()}`);
      await sleep(100);
    }
    this.pid = (await this.get('/v1/host') as { pid: number }).pid;
    await this.settle(settleMs);
  }

  /** Waits for the idle worker to have its next VM ahead of time (`prebuilt`), then `ms` for it to finish building. */
  async settle(ms: number): Promise<void> {
    const deadline = Date.now() + 120_000;
    while ((await this.get('/v1/host') as { idle_worker: string }).idle_worker !== 'prebuilt' && Date.now() < deadline) await sleep(200);
    await sleep(ms);
  }

  async get(p: string): Promise<unknown> { return this.call('GET', p); }

  async call(method: string, p: string, body?: unknown): Promise<unknown> {
    const r = await hostRequest(this.socket, method, p, body);
    if (r.status >= 400) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** Stops the host (API, then SIGKILL after 30 s) and removes its directory. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const gone = new Promise((r) => this.child.once('exit', r));
      try { await this.call('POST', '/v1/host/stop'); } catch { this.child.kill('SIGKILL'); }
      const t = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
      await gone;
      clearTimeout(t);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A VM's start-up as the host reports it, and the API round trip the bench saw (null when the CLI made the request). */
export interface StartSample {
  first: boolean; vm: string; prebuilt: boolean;
  startMs: number; requestToWorkerMs: number; buildMs: number; roundTripMs: number | null;
}

/** Reads a VM's start-up figures from its stats. */
async function startOf(h: BenchHost, vm: string, first: boolean, roundTripMs: number | null): Promise<StartSample> {
  const s = await h.get(`/v1/vms/${vm}/stats`) as { start_ms: number; start: { request_to_worker_ms: number; worker_to_built_ms: number; prebuilt: boolean } };
  return { first, vm, prebuilt: s.start.prebuilt, startMs: s.start_ms, requestToWorkerMs: s.start.request_to_worker_ms, buildMs: s.start.worker_to_built_ms, roundTripMs };
}

/** Creates a running VM through the API; returns the round trip in ms (request to the 201 reply). */
async function createVm(h: BenchHost, name: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  await h.call('POST', '/v1/vms', { name, args, paused: false });
  return performance.now() - t0;
}

/** The host's memory with `vms` idle guests. */
export interface MemorySample {
  vms: number;
  /** VmRSS of the host process, KiB. */
  rssKiB: number;
  /** Resident KiB of the pool's mapping (smaps). */
  poolKiB: number;
  framesUsed: number;
  framesControl: number;
  /** Summed over the VMs (their stats' `thread`): V8 heap in use, and the JIT's live WebAssembly bytes. */
  heapKiB: number;
  jitKiB: number;
}

/** VmRSS of `pid` and the resident KiB of its pool (the read-write anonymous mapping of exactly the pool's size). */
function readRss(pid: number): { rssKiB: number; poolKiB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (rss === null) throw new Error(`/proc/${pid}/status: no VmRSS`);
  let poolKiB = -1, inPool = false;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) /.exec(line);
    if (m !== null) { inPool = m[3] === 'rw-p' && parseInt(m[2]!, 16) - parseInt(m[1]!, 16) === POOL_BYTES; continue; }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (inPool && r !== null) { if (poolKiB >= 0) throw new Error('two mappings of the pool\'s size in smaps'); poolKiB = Number(r[1]); }
  }
  if (poolKiB < 0) throw new Error(`no mapping of ${POOL_BYTES} bytes in /proc/${pid}/smaps`);
  return { rssKiB: Number(rss[1]), poolKiB };
}

async function memorySample(h: BenchHost, vms: number): Promise<MemorySample> {
  let heap = 0, jit = 0;
  for (let k = 1; k <= vms; k++) {
    const t = (await h.get(`/v1/vms/mem${k}/stats`) as { thread: { heap_used_bytes: number; jit_live_bytes: number } | null }).thread;
    heap += t?.heap_used_bytes ?? 0; jit += t?.jit_live_bytes ?? 0;
  }
  const st = await h.get('/v1/host/stats') as { pool: { frames_used: number; frames_control: number } };
  return { vms, ...readRss(h.pid), framesUsed: st.pool.frames_used, framesControl: st.pool.frames_control, heapKiB: heap / 1024, jitKiB: jit / 1024 };
}

/** Polls a VM's console log until the prompt. */
async function waitPrompt(h: BenchHost, vm: string): Promise<void> {
  const deadline = Date.now() + BOOT_TIMEOUT_MS;
  for (;;) {
    const r = await hostRequest(h.socket, 'GET', `/v1/vms/${vm}/logs`);
    if (r.raw.toString('latin1').includes(PROMPT)) return;
    if (Date.now() > deadline) throw new Error(`${vm}: no prompt within ${BOOT_TIMEOUT_MS} ms`);
    await sleep(500);
  }
}

/** The host report. */
export interface HostReport {
  runs: number;
  workloads: { name: string; what: string }[];
  sides: Record<SideName, Side[]>;
  starts: StartSample[];
  memory: MemorySample[];
  /** Seconds each memory sample waited after the last guest's prompt. */
  idleS: number;
}

/** Runs the host bench: `runs` interleaved rounds (`quick`: small workloads, memory with 0, 1 and 2 guests). */
export async function benchHost(runs: number, quick: boolean): Promise<HostReport> {
  await ensureDefaultGuest({ progress: false });
  const work = workloads(quick);
  const report: HostReport = { runs, workloads: work.map((w) => ({ name: w.name, what: w.what })), sides: { run: [], host: [], hostNoSharing: [] }, starts: [], memory: [], idleS: quick ? 5 : 15 };
  const log = (s: string): void => { process.stderr.write(`bench: host: ${s}\n`); };
  const fmtSide = (x: Side): string => `boot ${x.bootS.toFixed(1)} s, ${x.guestS.map((g, i) => `${work[i]!.name} ${g.toFixed(2)} s`).join(', ')}`;

  // 1-3: boot, compute and start-up, `tsvm run` and `tsvm vm run` interleaved on one host.
  let h = new BenchHost(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-bench-host-')));
  try {
    await h.ready(3000);
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? SIDES : [...SIDES].reverse();
      for (const side of order) {
        log(`round ${i + 1}/${runs}: ${SIDE_LABEL[side]}...`);
        if (side === 'run') {
          const x = await bootAndCompute(['run'], h.env, work);
          report.sides.run.push(x);
          log(`  ${SIDE_LABEL[side]}: ${fmtSide(x)}`);
        } else {
          await h.settle(3000); // the next VM is built ahead of time, as on a host that has been idle a moment
          const vm = `${side === 'host' ? 'boot' : 'noshare'}${i + 1}`;
          const x = await bootAndCompute(['vm', 'run', '--name', vm, ...(side === 'host' ? [] : ['-sharing', 'off'])], h.env, work);
          report.sides[side].push(x);
          const st = await startOf(h, vm, report.starts.length === 0, null);
          report.starts.push(st);
          await h.call('DELETE', `/v1/vms/${vm}?force=1`);
          log(`  ${SIDE_LABEL[side]}: ${fmtSide(x)}; start_ms ${st.startMs}${st.prebuilt ? ' (prebuilt)' : ''}`);
        }
      }
    }
    // More starts of the same configuration, each on a host that has had a moment to build the next VM.
    for (let k = 1; k <= (quick ? 2 : 5); k++) {
      await h.settle(3000);
      const vm = `start${k}`;
      const rt = await createVm(h, vm, []);
      report.starts.push(await startOf(h, vm, false, rt));
      await h.call('DELETE', `/v1/vms/${vm}?force=1`);
    }
  } finally {
    await h.stop();
  }

  // 4: memory on a fresh host, 0, 1, 2 (and 4) idle guests of 256 MiB.
  h = new BenchHost(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-bench-host-')));
  try {
    await h.ready(5000);
    report.memory.push(await memorySample(h, 0));
    log(`memory: 0 VMs: RSS ${(report.memory[0]!.rssKiB / 1024).toFixed(0)} MiB`);
    const counts = quick ? [1, 2] : [1, 2, 4];
    for (let k = 1; k <= counts[counts.length - 1]!; k++) {
      const vm = `mem${k}`;
      const rt = await createVm(h, vm, ['-m', '256M']);
      report.starts.push(await startOf(h, vm, false, rt));
      await waitPrompt(h, vm);
      if (counts.includes(k)) {
        await h.settle(report.idleS * 1000);
        const m = await memorySample(h, k);
        report.memory.push(m);
        log(`memory: ${k} VMs: RSS ${(m.rssKiB / 1024).toFixed(0)} MiB, pool resident ${(m.poolKiB / 1024).toFixed(0)} MiB, frames used ${m.framesUsed}`);
      }
    }
  } finally {
    await h.stop();
  }
  return report;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

const f = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const list = (xs: number[], d: number): string => xs.map((x) => x.toFixed(d)).join(', ');

/** The tables: boot and compute with ratios, start-up, memory and the overhead per VM. */
export function hostTable(r: HostReport): string {
  const out: string[] = [];
  const run = r.sides.run, host = r.sides.host, off = r.sides.hostNoSharing;
  out.push('| measure | `tsvm run` median s | `tsvm vm run` median s | host / run (time) | `tsvm vm run -sharing off` median s | sharing off / run (time) | runs: run; host; sharing off (s) |',
    '|---|---:|---:|---:|---:|---:|---|');
  const row = (name: string, pick: (x: Side) => number): void => {
    const a = run.map(pick), b = host.map(pick), c = off.map(pick);
    out.push(`| ${name} | ${f(median(a), 2)} | ${f(median(b), 2)} | ${f(median(b) / median(a), 3)} | ${f(median(c), 2)} | ${f(median(c) / median(a), 3)} | ` +
      `${list(a, 2)}; ${list(b, 2)}; ${list(c, 2)} |`);
  };
  row('boot to the first shell prompt (whole CLI process)', (x) => x.bootS);
  r.workloads.forEach((w, i) => {
    row(`${w.name}: ${w.what}, guest clock`, (x) => x.guestS[i]!);
    row(`${w.name}, wall (line sent to the next prompt)`, (x) => x.wallS[i]!);
  });
  out.push('', 'All run the default Debian guest with 512 MiB (`tsvm run` with no options, as `npm start` runs it; ' +
    '`tsvm vm run --name X` with no options, so the host adds its balloon, and page sharing is on (the host is started with `--page-sharing on`); and the same with `-sharing off`). ' +
    'The ratios are of times (below 1.05 is within 5%).', '');

  out.push('| VM start (`start_ms`: API request to the first instruction) | VMs | median ms | min-max ms | request to worker, median ms | build, median ms | API round trip, median ms |', '|---|---:|---:|---|---:|---:|---:|');
  const groups: [string, (s: StartSample) => boolean][] = [
    ["the host's first VM (default guest, built ahead of time)", (s) => s.first],
    ["later VMs of the last VM's configuration (built ahead of time)", (s) => !s.first && s.prebuilt],
    ['later VMs of another configuration (built on demand)', (s) => !s.first && !s.prebuilt],
  ];
  for (const [name, pred] of groups) {
    const g = r.starts.filter(pred);
    if (g.length === 0) continue;
    const st = g.map((s) => s.startMs), rt = g.map((s) => s.roundTripMs).filter((x): x is number => x !== null);
    out.push(`| ${name} | ${g.length} | ${f(median(st), 1)} | ${f(Math.min(...st), 1)}-${f(Math.max(...st), 1)} | ${f(median(g.map((s) => s.requestToWorkerMs)), 1)} | ` +
      `${f(median(g.map((s) => s.buildMs)), 1)} | ${rt.length > 0 ? f(median(rt), 1) : 'n/a'} |`);
  }
  out.push('', 'The API round trip is the bench\'s POST /v1/vms to its 201 reply (a VM started with `-d`); for the VMs booted with ' +
    '`tsvm vm run` (attached) the CLI made the request. The boot rounds alternate the default configuration and `-sharing off`, ' +
    'so there most VMs are built on demand; the VMs of 256 MiB for the memory table started while the others ran.', '');

  const base = r.memory.find((m) => m.vms === 0);
  out.push('| idle guests of 256 MiB | host RSS MiB | pool resident MiB | pool frames used (guest pages) MiB | control frames MiB | RSS outside the pool MiB | overhead per VM: (ΔRSS − Δguest frames) / VMs, MiB | overhead per VM: (ΔRSS outside the pool + Δcontrol frames) / VMs, MiB | the same, per VM added since the previous row, MiB | of which per VM: V8 heap in use, MiB | of which per VM: JIT live wasm, MiB |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  /** KiB outside the pool plus the control frames, from `p` to `m`, per VM added. */
  const strict = (m: MemorySample, p: MemorySample): number =>
    (m.rssKiB - m.poolKiB - (p.rssKiB - p.poolKiB) + ((m.framesControl - p.framesControl) * FRAME) / 1024) / (m.vms - p.vms);
  r.memory.forEach((m, k) => {
    const mib = (kib: number): string => f(kib / 1024, 1);
    const frames = (n: number): string => f((n * FRAME) / MiB, 1);
    const prev = k > 0 ? r.memory[k - 1]! : undefined;
    let a = '', b = '';
    if (base !== undefined && m.vms > 0) {
      a = mib((m.rssKiB - base.rssKiB - ((m.framesUsed - base.framesUsed) * FRAME) / 1024) / m.vms);
      b = mib(strict(m, base));
    }
    const c = prev !== undefined && m.vms > prev.vms ? mib(strict(m, prev)) : '';
    out.push(`| ${m.vms} | ${mib(m.rssKiB)} | ${mib(m.poolKiB)} | ${frames(m.framesUsed)} | ${frames(m.framesControl)} | ${mib(m.rssKiB - m.poolKiB)} | ${a} | ${b} | ${c} | ${m.vms > 0 ? mib(m.heapKiB / m.vms) : ''} | ${m.vms > 0 ? mib(m.jitKiB / m.vms) : ''} |`);
  });
  out.push('', `Each sample is taken ${r.idleS} s after the last guest's prompt, once the host's idle worker holds the next VM ` +
    '(so every row, 0 VMs included, has that one prebuilt VM: its worker and the kernel and initrd it loaded). ' +
    'RSS is VmRSS of the host process (its VM worker threads share it); "pool resident" is the Rss of the pool\'s mapping ' +
    'in /proc/PID/smaps (the shared WebAssembly.Memory: pages ever touched, as the pool never gives pages back to the OS); ' +
    '"guest frames" are the pool\'s frames_used (pages mapped by the VMs, shared frames once). ' +
    'The first overhead column is ΔRSS minus Δframes_used × 4 KiB: the workers (V8 isolate, VMM code, JIT code and caches, ' +
    'device buffers), the control frames (hart state, TLBs, JIT areas) and any pool frames freed since they were touched ' +
    '(pages merged by the sharing scanner or reported free by the guest; the pool keeps them for reuse). ' +
    'The second leaves those freed frames out: RSS outside the pool, plus the control frames. ' +
    'The last two columns are parts of it that the VMs report (`thread` in their stats): each worker\'s V8 heap in use, ' +
    'and the WebAssembly bytes of its JIT\'s live translated code (V8\'s machine code for them is several times larger). ' +
    'Firecracker: at most 5 MiB per microVM.');
  return out.join('\n');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(REPO_ROOT, 'dist', 'bench', 'host.js')) {
  const runs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1);
  process.stdout.write(`${hostTable(await benchHost(runs, process.argv.includes('--quick')))}\n`);
}
