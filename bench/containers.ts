/**
 * Containers (issue 15 point 6): `npm run bench -- --only containers`.
 *
 * The bench uses a private data directory and host socket in a temporary
 * directory (Debian's packages come from the usual cache), starts its own
 * host with `tsvm host start -d`, pulls `busybox`, and measures:
 *
 * 1. Start: whole-process wall time of `tsvm run --rm busybox true` from
 *    the command to its exit, for each runtime the host accepts, in
 *    interleaved rounds (medians). The vm runtime twice: on the host's warm
 *    spare VM, and
 *    cold with `--memory 256m`, the spare's own size given explicitly,
 *    which the spare does not take (vm-spare.ts). With the vm runtime,
 *    every timed command waits, off the clock, until the host's spare is
 *    ready, so the next spare's boot never runs beside a measurement. For context, the same rounds time
 *    `node -e 0` (Node's own start-up, the floor of any tsvm command),
 *    `tsvm exec --root ROOT /bin/busybox true` (the process VM alone, no
 *    host) and `qemu-riscv64 -L ROOT ROOT/bin/busybox true` (QEMU's user
 *    mode on the same unpacked image).
 * 2. Memory (on a host restarted with TSVM_SPARE_VM=0, so no spare boots
 *    while it is measured): with 4 idle containers (`sleep 600`) per runtime, the host's
 *    RSS growth and the proportional set size (Pss of
 *    /proc/PID/smaps_rollup) of each container's runtime process, i.e. the
 *    memory each container costs the host.
 * 3. With `--only containers-debian` as well: the time to `tsvm pull
 *    debian` into the empty store (the package cache may be warm: said in
 *    the table), and the host memory of 8 idle `debian` containers per
 *    runtime; in the vm runtime twice, with the host's page sharing on and
 *    then off (`tsvm host start --page-sharing on`, then without), each time with the
 *    pool's frames in use and the frames sharing saved (pages_sharing and
 *    zero pages), once the scanner has made two full passes (or 3 min).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostRequest } from '../src/host/host-client.js';
import { REPO_ROOT } from '../tests/helpers/toolchain.js';

const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
/** Idle containers per runtime for the memory part. */
const IDLE = 4;
/** Idle debian containers (the issue's eight). */
const IDLE_DEBIAN = 8;
/** Seconds an idle container is left to settle before it is measured. */
const SETTLE_S = 3;

/** One timed command line of the start part. */
export interface StartRow { what: string; cmd: string; seconds: number[]; error?: string }
/** The memory of idle containers of one runtime. */
export interface MemoryRow {
  runtime: string; image: string; containers: number; hostRssGrowthKiB: number; pssKiB: number[]; error?: string;
  /** vm runtime: the host's page sharing, the pool's frames the containers took, and the frames sharing saved (KiB). */
  sharing?: 'on' | 'off'; poolGrowthKiB?: number; sharedSavedKiB?: number;
}
/** The container report. */
export interface ContainerReport {
  runs: number;
  pullBusyboxS: number;
  pullDebianS?: number;
  start: StartRow[];
  memory: MemoryRow[];
}

/** The environment of every child: the bench's data dir and host socket, the JIT's defaults. */
function benchEnv(dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TSVM_DATA: path.join(dir, 'data'), TSVM_HOST: path.join(dir, 'host.sock') };
  delete env['TSVM_JIT'];
  return env;
}

/** Runs a command to its end; its wall seconds, or throws with its stderr's last line. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 600_000): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 64 << 20 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')}: exit ${r.status ?? r.signal}: ${(r.stderr?.toString() ?? '').trim().split('\n').pop() ?? ''}`);
  return s;
}

/** The tsvm CLI to its end; its stdout (throws on a non-zero exit). */
function tsvm(env: NodeJS.ProcessEnv, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 30 * 60_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`tsvm ${args.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  return r.stdout;
}

/** Pss KiB of a process (smaps_rollup), summed with its descendants'. */
function pssTree(pid: number): number {
  let kib = 0;
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    kib += Number(m?.[1] ?? 0);
  } catch { return 0; }
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    let kids: string;
    try { kids = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8'); } catch { continue; }
    for (const k of kids.trim().split(/\s+/)) if (k !== '') kib += pssTree(Number(k));
  }
  return kib;
}

/** VmRSS KiB of a process. */
function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** The host daemon's pid (GET /v1/host). */
async function hostPid(env: NodeJS.ProcessEnv): Promise<number> {
  const r = await hostRequest(env['TSVM_HOST']!, 'GET', '/v1/host');
  const pid = (r.body as { pid?: unknown } | null)?.pid;
  if (typeof pid !== 'number') throw new Error('GET /v1/host: no pid');
  return pid;
}

/** The host's pool and sharing counters (GET /v1/host/stats). */
async function poolStats(env: NodeJS.ProcessEnv): Promise<{ used: number; saved: number; scans: number }> {
  const r = await hostRequest(env['TSVM_HOST']!, 'GET', '/v1/host/stats');
  const b = r.body as { pool: { frames_used: number }; sharing: { pages_sharing: number; pages_zero: number; full_scans: number } };
  return { used: b.pool.frames_used, saved: b.sharing.pages_sharing + b.sharing.pages_zero, scans: b.sharing.full_scans };
}

/** Longest wait for the page-sharing scanner's two full passes over idle vm containers. */
const SCAN_WAIT_MS = 180_000;
/** KiB per pool frame (4 KiB pages). */
const FRAME_KIB = 4;

/** Starts `n` idle containers of `image` on `runtime`, measures them, removes them; `sharing`: the host's page sharing (vm runtime). */
async function idleMemory(env: NodeJS.ProcessEnv, runtime: string, image: string, n: number, argv: string[], sharing?: 'on' | 'off'): Promise<MemoryRow> {
  const host = await hostPid(env);
  const before = rssKiB(host);
  const pool0 = await poolStats(env);
  const names: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const name = `idle-${runtime}-${image}-${i}`;
      tsvm(env, 'run', '-d', '--name', name, '--runtime', runtime, image, ...argv);
      names.push(name);
    }
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    let pool: { used: number; saved: number; scans: number } | null = null;
    if (sharing !== undefined) {
      // Two full passes of the scanner over every container (with sharing off, the same wait: the guests settle alike).
      const scans = (await poolStats(env)).scans, t0 = Date.now();
      while (Date.now() - t0 < SCAN_WAIT_MS && (sharing === 'off' || (await poolStats(env)).scans < scans + 2)) await new Promise((r) => setTimeout(r, 2000));
      pool = await poolStats(env);
    }
    const pss = names.map((name) => {
      const rec = (JSON.parse(tsvm(env, 'inspect', name)) as { State: { Pid: number; Running: boolean } }[])[0]!;
      if (!rec.State.Running) throw new Error(`${name} is not running`);
      return rec.State.Pid > 0 && rec.State.Pid !== host ? pssTree(rec.State.Pid) : 0;
    });
    const row: MemoryRow = { runtime, image, containers: n, hostRssGrowthKiB: rssKiB(host) - before, pssKiB: pss };
    if (pool !== null) Object.assign(row, { sharing, poolGrowthKiB: (pool.used - pool0.used) * FRAME_KIB, sharedSavedKiB: (pool.saved - pool0.saved) * FRAME_KIB });
    return row;
  } catch (e) {
    return { runtime, image, containers: n, hostRssGrowthKiB: 0, pssKiB: [], error: (e as Error).message };
  } finally {
    for (const name of names) { try { tsvm(env, 'rm', '-f', name); } catch { /* reported above */ } }
  }
}

/** Stops the bench's host and starts another with `args`, and `extraEnv` in its environment. */
async function restartHost(env: NodeJS.ProcessEnv, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  spawnSync(process.execPath, [CLI, 'host', 'stop'], { env, stdio: 'ignore', timeout: 60_000 });
  const started = spawn(process.execPath, [CLI, 'host', 'start', '-d', ...args], { env: { ...env, ...extraEnv }, stdio: 'ignore' });
  await new Promise((r) => started.once('exit', r));
}

/** Waits (up to 5 min) until the host has a spare VM ready; false if none came. */
async function spareReady(env: NodeJS.ProcessEnv): Promise<boolean> {
  const end = Date.now() + 300_000;
  while (Date.now() < end) {
    const r = await hostRequest(env['TSVM_HOST']!, 'GET', '/v1/host');
    if ((r.body as { spare_vm?: string } | null)?.spare_vm === 'ready') return true;
    await new Promise((res) => setTimeout(res, 250));
  }
  return false;
}

/** Whether the host runs containers on `runtime` (a create that is refused says no). */
function accepts(env: NodeJS.ProcessEnv, runtime: string): boolean {
  const r = spawnSync(process.execPath, [CLI, 'create', '--name', `probe-${runtime}`, '--runtime', runtime, 'busybox', 'true'], { env, encoding: 'utf8' });
  if (r.status !== 0) return false;
  tsvm(env, 'rm', `probe-${runtime}`);
  return true;
}

/** Runs the container bench: `runs` interleaved rounds; `debian`: also the debian image's parts. */
export async function benchContainers(runs: number, debian: boolean): Promise<ContainerReport> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-bench-ctr-'));
  const env = benchEnv(dir);
  const log = (s: string): void => { process.stderr.write(`bench: containers: ${s}\n`); };
  try {
    const started = spawn(process.execPath, [CLI, 'host', 'start', '-d'], { env, stdio: 'ignore' });
    await new Promise((r) => started.once('exit', r));
    const pullBusyboxS = timed(process.execPath, [CLI, 'pull', 'busybox'], env);
    log(`pull busybox ${pullBusyboxS.toFixed(2)} s`);
    const lower = (JSON.parse(tsvm(env, 'inspect', tsvm(env, 'create', 'busybox', 'true').trim())) as { Id: string; LowerDir: string }[])[0]!;
    tsvm(env, 'rm', lower.Id);
    const root = lower.LowerDir;
    const runtimes = ['process', 'vm'].filter((rt) => accepts(env, rt));
    log(`runtimes: ${runtimes.join(', ')}`);
    // The host keeps a spare VM once it has started a vm container: one, not timed, before the rounds.
    if (runtimes.includes('vm')) tsvm(env, 'run', '--rm', '--runtime', 'vm', 'busybox', 'true');
    const lines: { what: string; cmd: string; file: string; args: string[] }[] = [
      { what: 'Node start-up alone', cmd: 'node -e 0', file: process.execPath, args: ['-e', '0'] },
      { what: 'qemu-riscv64 on the unpacked image', cmd: 'qemu-riscv64 -L ROOT ROOT/bin/busybox true', file: 'qemu-riscv64', args: ['-L', root, path.join(root, 'bin', 'busybox'), 'true'] },
      { what: 'the process VM alone', cmd: 'tsvm exec --root ROOT /bin/busybox true', file: process.execPath, args: [CLI, 'exec', '--root', root, '/bin/busybox', 'true'] },
      ...runtimes.map((rt) => ({ what: `container, ${rt} runtime${rt === 'vm' ? ', warm spare VM' : ''}`, cmd: `tsvm run --rm${rt === 'process' ? '' : ` --runtime ${rt}`} busybox true`, file: process.execPath, args: [CLI, 'run', '--rm', '--runtime', rt, 'busybox', 'true'] })),
      ...runtimes.filter((rt) => rt === 'vm').map(() => ({ what: 'container, vm runtime, cold boot', cmd: 'tsvm run --rm --runtime vm --memory 256m busybox true', file: process.execPath, args: [CLI, 'run', '--rm', '--runtime', 'vm', '--memory', '256m', 'busybox', 'true'] })),
    ];
    const start: StartRow[] = lines.map((l) => ({ what: l.what, cmd: l.cmd, seconds: [] }));
    for (let round = 0; round < runs; round++) {
      const order = round % 2 === 0 ? lines.map((_, i) => i) : lines.map((_, i) => lines.length - 1 - i);
      for (const i of order) {
        const row = start[i]!;
        if (row.error !== undefined) continue;
        // With the vm runtime, every row waits (off the clock) for the host's spare VM: the next spare's boot after a warm
        // start would otherwise run beside the rows that follow it.
        if (runtimes.includes('vm') && !await spareReady(env)) { row.error = 'no spare VM became ready in 5 min'; continue; }
        try { row.seconds.push(timed(lines[i]!.file, lines[i]!.args, env)); } catch (e) { row.error = (e as Error).message; }
      }
      log(`round ${round + 1}/${runs}: ${start.map((r) => `${r.cmd.split(' ').slice(0, 3).join(' ')} ${r.seconds.at(-1)?.toFixed(3) ?? r.error}`).join('; ')}`);
    }
    await restartHost(env, [], { TSVM_SPARE_VM: '0' });
    const memory: MemoryRow[] = [];
    for (const rt of runtimes) memory.push(await idleMemory(env, rt, 'busybox', IDLE, ['sleep', '600']));
    const report: ContainerReport = { runs, pullBusyboxS, start, memory };
    if (debian) {
      report.pullDebianS = timed(process.execPath, [CLI, 'pull', 'debian'], env, 3 * 3600_000);
      log(`pull debian ${report.pullDebianS.toFixed(0)} s`);
      if (runtimes.includes('process')) memory.push(await idleMemory(env, 'process', 'debian', IDLE_DEBIAN, ['sleep', 'infinity']));
      if (runtimes.includes('vm')) {
        await restartHost(env, ['--page-sharing', 'on'], { TSVM_SPARE_VM: '0' });
        memory.push(await idleMemory(env, 'vm', 'debian', IDLE_DEBIAN, ['sleep', 'infinity'], 'on'));
        await restartHost(env, [], { TSVM_SPARE_VM: '0' });
        memory.push(await idleMemory(env, 'vm', 'debian', IDLE_DEBIAN, ['sleep', 'infinity'], 'off'));
      }
    }
    return report;
  } finally {
    spawnSync(process.execPath, [CLI, 'host', 'stop'], { env, stdio: 'ignore', timeout: 60_000 });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The Markdown tables of a container report. */
export function containerTable(r: ContainerReport): string {
  const ms = (s: number): string => Number.isNaN(s) ? '—' : `${(s * 1000).toFixed(0)} ms`;
  const goal: Record<string, string> = { 'container, process runtime': '≤ 150 ms', 'container, vm runtime, warm spare VM': '≤ 2 s', 'container, vm runtime, cold boot': '≤ 2 s' };
  const out = ['| what | command | median | min | max | goal |', '|---|---|---:|---:|---:|---|'];
  for (const row of r.start) {
    out.push(`| ${row.what} | \`${row.cmd}\` | ${row.error !== undefined ? `failed: ${row.error}` : ms(median(row.seconds))} | ${ms(Math.min(...row.seconds))} | ${ms(Math.max(...row.seconds))} | ${goal[row.what] ?? ''} |`);
  }
  out.push('', `Pull: \`tsvm pull busybox\` ${r.pullBusyboxS.toFixed(2)} s${r.pullDebianS !== undefined ? `; \`tsvm pull debian\` ${r.pullDebianS.toFixed(0)} s (into an empty store; the package cache in ~/.cache/tsvm may be warm)` : ''}.`, '');
  const mib = (k: number | undefined): string => k === undefined ? '' : `${(k / 1024).toFixed(1)} MiB`;
  out.push('| runtime | image | page sharing | idle containers | host RSS growth | Pss per container (median) | pool frames taken | saved by sharing |', '|---|---|---|---:|---:|---:|---:|---:|');
  for (const m of r.memory) {
    out.push(m.error !== undefined ? `| ${m.runtime} | ${m.image} | ${m.sharing ?? ''} | ${m.containers} | failed: ${m.error} | | | |`
      : `| ${m.runtime} | ${m.image} | ${m.sharing ?? ''} | ${m.containers} | ${mib(m.hostRssGrowthKiB)} | ${mib(median(m.pssKiB))} | ${mib(m.poolGrowthKiB)} | ${mib(m.sharedSavedKiB)} |`);
  }
  return out.join('\n');
}
