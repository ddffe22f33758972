/**
 * ESX's overcommit, balloon-versus-swap and idle-memory-tax experiments
 * (Waldspurger, OSDI 2002, §3 and §5.3) on a real tsvm host: each one
 * starts `tsvm host start` as a child process with its own pool and swap
 * file, runs default Debian guests on it through the API (one worker
 * thread per VM, the host's scanner, policy and swap all at work), drives
 * their shells over the console stream, and samples the host's counters.
 * Part of `npm run bench -- --only memory`.
 *
 * - Overcommit: 8 guests of 256 MiB (2 GiB promised) in a 1 GiB pool (with
 *   --quick: 4 in 512 MiB); each
 *   writes DATA_MIB of random data to its RAM-backed root, records its
 *   md5sum, and after every guest has written, checks it again.
 * - Balloon against swap: one 256 MiB guest in a pool with room for
 *   RECLAIM_POOL_MIB, reading a disk of random data over and over (its page
 *   cache wants the whole guest); the host takes the difference once with
 *   the balloon (a hand-set target) and once with host swap (the balloon
 *   pinned at the VM's full size). Throughput is the disk's MB/s per pass.
 * - Idle memory tax: two 384 MiB guests in a 512 MiB pool, one idle (its
 *   page cache full of a disk it read once), one active (re-reading a
 *   240 MiB file in its RAM), at tax 0% and 75%: how the pool settles
 *   between them, and the active guest's throughput.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { hostRequest, openConsole } from '../src/host/host-client.js';

const CLI = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../src/cli/main.js');
const PROMPT = '~ # ';
const MiB = 1024 * 1024;
/** Random data each overcommit guest writes and checks. */
const DATA_MIB = 144;
/** Pool room for the one guest of the balloon-against-swap experiment. */
const RECLAIM_POOL_MIB = 176;
/** Disk the balloon-against-swap guest re-reads. */
const RECLAIM_DISK_MIB = 200;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A host child process on a temporary socket. */
class BenchHost {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-esx-'));
  readonly socket = path.join(this.dir, 'host.sock');
  private child: ChildProcess | null = null;

  async start(args: string[]): Promise<void> {
    const child = spawn(process.execPath, [CLI, 'host', 'start', '--socket', this.socket, '--sample-period', '5', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let err = '';
    child.stderr!.on('data', (b: Buffer) => { err += b.toString(); process.stderr.write(`host: ${b.toString()}`); });
    child.on('exit', (code, sig) => { if (!this.stopping) process.stderr.write(`esx: the host exited (${code ?? sig}) during the experiment\n`); });
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`host exited: ${err}`);
      try { if ((await hostRequest(this.socket, 'GET', '/v1/host')).status === 200) return; } catch { /* not yet */ }
      if (i > 400) throw new Error(`host did not answer: ${err}`);
      await sleep(50);
    }
  }

  async req(method: string, p: string, body?: unknown): Promise<Obj> {
    const r = await hostRequest(this.socket, method, p, body);
    if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as Obj;
  }

  private stopping = false;

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.child;
    if (c !== null && c.exitCode === null) {
      await hostRequest(this.socket, 'POST', '/v1/host/stop', {}).catch(() => null);
      const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
      await new Promise((r) => c.once('exit', r));
      clearTimeout(t);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A guest's shell over the host's console stream. */
class Shell {
  private out = '';
  private constructor(private readonly sock: Duplex) { sock.on('data', (b: Buffer) => { this.out += b.toString('latin1'); }); }
  static async open(host: BenchHost, name: string): Promise<Shell> { return new Shell(await openConsole(host.socket, name)); }
  /** Waits for `re` in the output since the last call; returns the match. */
  async expect(re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.out);
      if (m) { this.out = this.out.slice(m.index + m[0].length); return m; }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; output: ${this.out.slice(-400)}`);
      await sleep(100);
    }
  }
  /** Runs `cmd`; resolves with the text of `marker`'s match (which must not match the command's own echo: print it with shell arithmetic). */
  async run(cmd: string, marker: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    this.sock.write(`${cmd}\n`);
    return this.expect(marker, timeoutMs);
  }
  close(): void { this.sock.destroy(); }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts VM `name` with `args` and waits for its shell. */
async function bootVm(h: BenchHost, name: string, args: string[], extra: Obj = {}): Promise<Shell> {
  await h.req('POST', '/v1/vms', { name, args, cwd: process.cwd(), ...extra });
  const sh = await Shell.open(h, name);
  sh.close(); // the log holds the boot: wait on it, then attach for the commands
  for (let t = 0; ; t += 500) {
    const log = (await hostRequest(h.socket, 'GET', `/v1/vms/${name}/logs`)).raw.toString('latin1');
    if (log.includes(PROMPT)) break;
    if (t > 600_000) throw new Error(`${name} did not boot`);
    await sleep(500);
  }
  return Shell.open(h, name);
}

/** A disk file of `mib` MiB of random bytes. */
function randomDisk(dir: string, mib: number): string {
  const p = path.join(dir, `disk-${mib}.img`);
  const fd = fs.openSync(p, 'w');
  for (let i = 0; i < mib; i++) fs.writeSync(fd, crypto.randomBytes(MiB));
  fs.closeSync(fd);
  return p;
}

// ---- Overcommit ----

/** One overcommit sample. */
export interface OvercommitSample { t: number; framesUsed: number; pagesOut: number; pagesIn: number; ballooned: number; state: string }
/** The overcommit experiment's result. */
export interface OvercommitResult { vms: number; promisedMiB: number; poolMiB: number; dataMiB: number; ok: number; bad: string[]; seconds: number; samples: OvercommitSample[] }

/** The overcommit experiment alone. */
export async function overcommit(n: number, poolMiB: number): Promise<OvercommitResult> {
  const h = new BenchHost();
  const samples: OvercommitSample[] = [];
  const t0 = performance.now();
  let timer: ReturnType<typeof setInterval> | null = null;
  try {
    await h.start(['--pool', `${poolMiB}M`, '--swap', path.join(h.dir, 'swap')]);
    timer = setInterval(() => {
      void (async () => {
        const s = await h.req('GET', '/v1/host/stats');
        let ballooned = 0;
        for (let k = 0; k < n; k++) ballooned += ((await h.req('GET', `/v1/vms/vm${k}/stats`).catch(() => ({}))) as Obj)['pages_ballooned'] ?? 0;
        samples.push({ t: (performance.now() - t0) / 1000, framesUsed: s['pool'].frames_used, pagesOut: s['swap'].pages_out, pagesIn: s['swap'].pages_in, ballooned, state: s['policy']?.state ?? '?' });
      })().catch(() => {});
    }, 2000);
    const shells = await Promise.all(Array.from({ length: n }, (_, k) => bootVm(h, `vm${k}`, ['-m', '256M'])));
    // The initramfs root is a tmpfs limited to half the RAM: the data goes to a tmpfs of its own.
    const wrote = await Promise.all(shells.map((sh) => sh.run(`mkdir -p /data && mount -t tmpfs -o size=${DATA_MIB + 8}m tmpfs /data && dd if=/dev/urandom of=/data/d bs=1M count=${DATA_MIB} 2>/dev/null && [ $(wc -c < /data/d) = ${DATA_MIB * MiB} ] && md5sum /data/d > /root/d.md5 && echo WROTE-OK$((6*7)) || echo WROTE-BAD$((6*7))`, /WROTE-(OK|BAD)42/, 900_000)));
    const checks = await Promise.all(shells.map((sh) => sh.run('md5sum -c /root/d.md5 >/dev/null 2>&1 && echo CHECK-OK$((6*7)) || echo CHECK-BAD$((6*7))', /CHECK-(OK|BAD)42/, 900_000)));
    const bad = checks.map((m, k) => (m[1] === 'OK' && wrote[k]![1] === 'OK' ? null : `vm${k}`)).filter((x): x is string => x !== null);
    for (const sh of shells) sh.close();
    return { vms: n, promisedMiB: n * 256, poolMiB, dataMiB: DATA_MIB, ok: n - bad.length, bad, seconds: (performance.now() - t0) / 1000, samples };
  } finally {
    if (timer) clearInterval(timer);
    await h.stop();
  }
}

// ---- Balloon against swap ----

/** Throughput of the re-read workload under one reclaim mechanism. */
export interface ReclaimRun { mode: 'balloon' | 'swap'; mbPerS: number[]; pagesOut: number; pagesIn: number; ballooned: number }

/** The balloon-against-swap experiment with one reclaim mechanism: `passes` re-reads of the guest's disk, MB/s each. */
export async function reclaimRun(mode: 'balloon' | 'swap', passes: number): Promise<ReclaimRun> {
  const h = new BenchHost();
  try {
    const disk = randomDisk(h.dir, RECLAIM_DISK_MIB);
    // The pool holds the guest's RECLAIM_POOL_MIB plus the policy's 6% free target.
    const poolMiB = Math.ceil(RECLAIM_POOL_MIB / 0.94) + 16;
    await h.start(['--pool', `${poolMiB}M`, '--swap', path.join(h.dir, 'swap')]);
    const sh = await bootVm(h, 'g', ['-m', '256M', '-drive', `file=${disk},format=raw,if=virtio`]);
    // balloon: the guest gives up (256 - RECLAIM_POOL_MIB) MiB; swap: the balloon is pinned at none, the host swaps.
    await h.req('POST', '/v1/vms/g/balloon', { size: mode === 'balloon' ? `${RECLAIM_POOL_MIB}M` : '256M' });
    await sleep(3000);
    const mbPerS: number[] = [];
    for (let i = 0; i < passes; i++) {
      const t = performance.now();
      await sh.run('dd if=/dev/vda of=/dev/null bs=1M 2>/dev/null; echo PASS-$?', /PASS-(\d+)/, 900_000);
      mbPerS.push(RECLAIM_DISK_MIB / ((performance.now() - t) / 1000));
    }
    const s = await h.req('GET', '/v1/host/stats'), v = await h.req('GET', '/v1/vms/g/stats');
    sh.close();
    return { mode, mbPerS, pagesOut: s['swap'].pages_out, pagesIn: s['swap'].pages_in, ballooned: v['pages_ballooned'] };
  } finally {
    await h.stop();
  }
}

// ---- Idle memory tax ----

/** One sample of the two guests' frames. */
export interface TaxSample { t: number; idle: number; active: number; free: number }
/** The idle-memory-tax experiment at one tax rate. */
export interface TaxRun { taxPercent: number; samples: TaxSample[]; passesPerMin: number; finalIdleMiB: number; finalActiveMiB: number }

/** The idle-memory-tax experiment at one rate. */
export async function taxRun(taxPercent: number, measureSeconds: number): Promise<TaxRun> {
  const h = new BenchHost();
  const samples: TaxSample[] = [];
  let timer: ReturnType<typeof setInterval> | null = null;
  try {
    const disk = randomDisk(h.dir, 300);
    await h.start(['--pool', '512M', '--swap', path.join(h.dir, 'swap'), '--idle-tax', String(taxPercent)]);
    const idle = await bootVm(h, 'idle', ['-m', '384M', '-drive', `file=${disk},format=raw,if=virtio`]);
    await idle.run('dd if=/dev/vda of=/dev/null bs=1M 2>/dev/null; echo READ-$?', /READ-(\d+)/, 900_000); // fills its page cache, then idles
    idle.close();
    const active = await bootVm(h, 'active', ['-m', '384M']);
    const ws = await active.run('mkdir -p /ws && mount -t tmpfs -o size=250m tmpfs /ws && dd if=/dev/urandom of=/ws/f bs=1M count=240 2>/dev/null && echo WS-OK$((6*7)) || echo WS-BAD$((6*7))', /WS-(OK|BAD)42/, 900_000);
    if (ws[1] !== 'OK') throw new Error('the active guest could not write its working set');
    const t0 = performance.now();
    const frames = async (name: string): Promise<number> => { const v = await h.req('GET', `/v1/vms/${name}/stats`); return v['pages_private'] + v['pages_shared']; };
    timer = setInterval(() => {
      void (async () => {
        const s = await h.req('GET', '/v1/host/stats');
        samples.push({ t: (performance.now() - t0) / 1000, idle: await frames('idle'), active: await frames('active'), free: s['pool'].frames_free });
      })().catch(() => {});
    }, 2000);
    let passes = 0;
    while (performance.now() - t0 < measureSeconds * 1000) {
      await active.run('md5sum /ws/f >/dev/null; echo SUM-$?', /SUM-(\d+)/, 900_000);
      passes++;
    }
    const elapsed = (performance.now() - t0) / 1000;
    active.close();
    const last = samples.at(-1) ?? { idle: 0, active: 0 };
    return { taxPercent, samples, passesPerMin: (passes * 60) / elapsed, finalIdleMiB: (last.idle * 4096) / MiB, finalActiveMiB: (last.active * 4096) / MiB };
  } finally {
    if (timer) clearInterval(timer);
    await h.stop();
  }
}

/** All three experiments' results. */
export interface EsxReport { overcommit: OvercommitResult; reclaim: ReclaimRun[]; tax: TaxRun[] }

/** Runs the three experiments (`quick`: fewer guests and shorter runs). */
export async function benchEsx(quick: boolean): Promise<EsxReport> {
  const overcommitResult = quick ? await overcommit(4, 512) : await overcommit(8, 1024);
  const reclaim = [await reclaimRun('balloon', quick ? 2 : 4), await reclaimRun('swap', quick ? 2 : 4)];
  const tax = [await taxRun(0, quick ? 60 : 120), await taxRun(75, quick ? 60 : 120)];
  return { overcommit: overcommitResult, reclaim, tax };
}

const f1 = (x: number): string => x.toFixed(1);

/** The three experiments as markdown tables. */
export function esxTable(r: EsxReport): string {
  const o = r.overcommit;
  const peak = o.samples.reduce((m, s) => Math.max(m, s.framesUsed), 0);
  const last = o.samples.at(-1);
  const lines = [
    `### Overcommit: ${o.vms} guests of 256 MiB (${o.promisedMiB} MiB promised) in a ${o.poolMiB} MiB pool`, '',
    '| guests | data per guest | data checks passed | peak frames used | pages swapped out | pages swapped in | pages ballooned (end) | seconds |',
    '|---|---|---|---|---|---|---|---|',
    `| ${o.vms} | ${o.dataMiB} MiB | ${o.ok} of ${o.vms}${o.bad.length ? ` (failed: ${o.bad.join(', ')})` : ''} | ${peak} (${f1((peak * 4096) / MiB)} MiB) | ${last?.pagesOut ?? 0} | ${last?.pagesIn ?? 0} | ${last?.ballooned ?? 0} | ${f1(o.seconds)} |`,
    '', `### Balloon against host swap: one 256 MiB guest, the host takes back ${256 - RECLAIM_POOL_MIB} MiB`, '',
    '| reclaimed by | MB/s per pass (re-reading a 200 MiB disk) | median MB/s | pages swapped out | pages swapped in | pages ballooned |',
    '|---|---|---|---|---|---|',
    ...r.reclaim.map((x) => `| ${x.mode} | ${x.mbPerS.map(f1).join(', ')} | ${f1(median(x.mbPerS))} | ${x.pagesOut} | ${x.pagesIn} | ${x.ballooned} |`),
    '', '### Idle memory tax: two 384 MiB guests in a 512 MiB pool, one idle, one active', '',
    '| tax | idle guest holds (MiB, end) | active guest holds (MiB, end) | active guest: md5sum passes of 240 MiB per minute |',
    '|---|---|---|---|',
    ...r.tax.map((x) => `| ${x.taxPercent}% | ${f1(x.finalIdleMiB)} | ${f1(x.finalActiveMiB)} | ${f1(x.passesPerMin)} |`),
  ];
  return lines.join('\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
}

/** One line of a chart: its label and (seconds, MiB) points. */
interface Series { label: string; points: [number, number][] }

/** An SVG line chart of MiB over time. */
function mibChart(title: string, series: Series[]): string {
  const W = 640, H = 320, L = 56, B = 40, T = 24, R = 150;
  const tMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const vMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const step = vMax > 1000 ? 256 : vMax > 400 ? 128 : 64, top = Math.ceil(vMax / step) * step;
  const x = (t: number): number => L + ((W - L - R) * t) / tMax;
  const y = (v: number): number => H - B - ((H - B - T) * v) / top;
  const colors = ['#1b6ca8', '#d1495b', '#edae49', '#00798c', '#6a4c93'];
  const grid = Array.from({ length: top / step + 1 }, (_, k) => k * step)
    .map((v) => `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v}</text>`).join('');
  const lines = series.map((s, k) => {
    const c = colors[k % colors.length]!, last = s.points.at(-1);
    return `<polyline fill="none" stroke="${c}" stroke-width="2" points="${s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')}"/>` +
      `<text x="${W - R + 6}" y="${(T + 16 * k + 10).toFixed(1)}" font-size="12" fill="${c}">${s.label}${last ? ` (${last[1].toFixed(0)})` : ''}</text>`;
  }).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">\n<rect width="${W}" height="${H}" fill="white"/>${grid}\n` +
    `<text x="${L}" y="14" font-size="13">${title}</text>\n` +
    `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/><text x="${(L + W - R) / 2}" y="${H - 8}" font-size="12" text-anchor="middle">seconds (${tMax.toFixed(0)} s)</text>\n` +
    `<text x="14" y="${T + (H - B - T) / 2}" font-size="12" transform="rotate(-90 14 ${T + (H - B - T) / 2})" text-anchor="middle">MiB</text>\n${lines}\n</svg>\n`;
}

const pagesMiB = (pages: number): number => (pages * 4096) / MiB;

/** Writes the overcommit and idle-tax charts under docs/ (memory-overcommit.svg, memory-idle-tax.svg). */
export function writeEsxCharts(r: EsxReport, docsDir: string): string[] {
  const o = r.overcommit.samples;
  const files: [string, string][] = [
    ['memory-overcommit.svg', mibChart(`${r.overcommit.vms} guests of 256 MiB in a ${r.overcommit.poolMiB} MiB pool`, [
      { label: 'pool frames used', points: o.map((s) => [s.t, pagesMiB(s.framesUsed)]) },
      { label: 'in balloons', points: o.map((s) => [s.t, pagesMiB(s.ballooned)]) },
      { label: 'swapped out (total)', points: o.map((s) => [s.t, pagesMiB(s.pagesOut)]) },
      { label: 'swapped in (total)', points: o.map((s) => [s.t, pagesMiB(s.pagesIn)]) },
    ])],
    ['memory-idle-tax.svg', mibChart('idle and active guest, 512 MiB pool', r.tax.flatMap((t) => [
      { label: `active, tax ${t.taxPercent}%`, points: t.samples.map((s): [number, number] => [s.t, pagesMiB(s.active)]) },
      { label: `idle, tax ${t.taxPercent}%`, points: t.samples.map((s): [number, number] => [s.t, pagesMiB(s.idle)]) },
    ]))],
  ];
  return files.map(([name, svg]) => { const f = path.join(docsDir, name); fs.writeFileSync(f, svg); return f; });
}
