/**
 * `npm run bench`: compute workloads under qemu-riscv64, tsvm with its JIT
 * (the default) and tsvm with the interpreter (`--jit=off`), side by side.
 *
 * Workloads: the project's C benchmarks in bench/*.c (static glibc, -O2,
 * sized by argv[1] so that QEMU needs about a second or more) and Debian's
 * busybox-static running `sha256sum` and `gzip -c` on a deterministic
 * 32 MiB text file. Each workload runs RUNS times per configuration, the
 * three configurations interleaved; medians are reported:
 *
 * - wall seconds of each (process start to exit: for tsvm this includes
 *   Node's startup, ~0.15-0.25 s),
 * - the guest instruction count (tsvm --stats) and MIPS of each
 *   (instructions / wall seconds; QEMU's is that count over its time),
 * - speed ratios (a speed is 1 / time): JIT / QEMU (target >= 0.5) and
 *   JIT / interpreter (target >= 5), each twice: from wall times and from
 *   "core" times, i.e. tsvm's own `seconds=` (the run loop only, without
 *   Node startup and ELF loading; QEMU's side stays its wall time),
 * - the translation cost: the JIT's compile-ms over the JIT run's core
 *   seconds, as a percentage.
 *
 * All three must print the same stdout (compared by SHA-256) and exit with
 * the same status as QEMU in every run, else the row is flagged and the
 * exit status is 1. Prints a Markdown table (ready for docs/benchmarks.md)
 * and writes it to bench/results/latest.md, with the raw samples in
 * bench/results/latest.json.
 *
 * Then the boot benchmark (bench/boot.ts: time to the default guest's first
 * shell prompt, QEMU vs tsvm JIT vs tsvm interpreter) and the virtio ones.
 *
 * Options: --quick (one run each, small inputs, no virtio parts unless
 * named in --only; a few minutes in all),
 * --runs N (runs per configuration; default 3, 1 with --quick),
 * --only NAME[,NAME...] (workload names, `boot`, `blk` for virtio-blk dd
 * throughput, `net` for virtio-net TCP throughput; `memory` for ESX's
 * experiments and `host` for the many-VM host against `tsvm run`
 * (bench/host.ts), both only when named; `containers` for issue 15's
 * container start and memory (bench/containers.ts), `containers-debian`
 * adds `tsvm pull debian` and 8 idle debian containers).
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DebianArchive } from '../src/images/debian-archive.js';
import { compile, REPO_ROOT } from '../tests/helpers/toolchain.js';
import { QEMU_CPU, guestEnv, requireQemu, requireTsvm } from '../tests/helpers/guest-run.js';
import { benchBoot, bootTable, type BootRow } from './boot.js';
import { benchVirtioBlk, blkTable, type BlkRow } from './virtio-blk.js';
import { benchVirtioNet, netTable, type NetRow } from './virtio-net.js';
import { benchMemory, memoryTable, writeMemoryCharts, type MemoryReport } from './memory.js';
import { benchEsx, esxTable, writeEsxCharts, type EsxReport } from './esx.js';
import { benchHost, hostTable, type HostReport } from './host.js';
import { benchContainers, containerTable, type ContainerReport } from './containers.js';

/** One benchmark: a guest program and its arguments (host paths). */
interface Workload {
  name: string;
  what: string;
  program: string;
  args: string[];
}

/** The three configurations every workload runs under. */
type Config = 'qemu' | 'jit' | 'interp';
const CONFIGS: readonly Config[] = ['qemu', 'jit', 'interp'];
const LABEL: Record<Config, string> = { qemu: 'qemu', jit: 'tsvm JIT', interp: 'tsvm --jit=off' };

/** The JIT counters of `tsvm exec --stats`. */
interface JitStats {
  units: number;
  blocks: number;
  wasmBytes: number;
  compileMs: number;
  invalidations: number;
  evictions: number;
}

/** The measurements of one run. */
interface Sample {
  /** Wall seconds, process start to exit. */
  seconds: number;
  status: number;
  outHash: string;
  outBytes: number;
  /** Guest instructions (tsvm --stats), else null. */
  instructions: number | null;
  /** tsvm's run-loop seconds (--stats `seconds=`), else null. */
  coreSeconds: number | null;
  /** JIT counters (tsvm with the JIT on), else null. */
  jit: JitStats | null;
  /** The last lines of stderr. */
  stderrTail: string;
}

/** One configuration's runs of a workload and their medians. */
interface Measured {
  samples: Sample[];
  /** Median wall seconds. */
  seconds: number;
  /** Median run-loop seconds (tsvm only). */
  coreSeconds: number | null;
  /** Median compile milliseconds (tsvm JIT only). */
  compileMs: number | null;
  /** Guest instruction count (tsvm only; the first run's). */
  instructions: number | null;
}

/** Result row for one workload. */
interface Row {
  w: Workload;
  m: Record<Config, Measured>;
  /** Empty if every run of every configuration matched QEMU's first run. */
  problems: string[];
  /** Other irregularities that do not make the outputs differ. */
  notes: string[];
}

function usage(msg: string): never {
  process.stderr.write(`bench: ${msg}\nusage: npm run bench -- [--quick] [--runs N] [--only NAME[,NAME...]]\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const onlyIdx = argv.indexOf('--only');
const ONLY = onlyIdx >= 0 ? new Set((argv[onlyIdx + 1] ?? '').split(',').filter((s) => s !== '')) : null;
const PARTS = ['crc', 'sort', 'interp', 'nbody', 'sha256sum', 'gzip', 'boot', 'blk', 'net', 'memory', 'host', 'containers', 'containers-debian'];
const unknown = [...(ONLY ?? [])].filter((n) => !PARTS.includes(n));
if (unknown.length > 0) usage(`--only: unknown ${unknown.join(', ')} (expected some of ${PARTS.join(', ')})`);
const runsIdx = argv.indexOf('--runs');
const RUNS = runsIdx >= 0 ? Number(argv[runsIdx + 1]) : QUICK ? 1 : 3;
if (!Number.isInteger(RUNS) || RUNS < 1) usage(`--runs ${argv[runsIdx + 1] ?? ''}: expected a positive whole number`);
const INPUT_MIB = QUICK ? 4 : 32;
const BENCH_DIR = path.join(REPO_ROOT, 'bench');
const CACHE = path.join(REPO_ROOT, '.cache', 'bench');

const STATS_RE = /tsvm: stats: instructions=(\d+) seconds=([\d.]+) mips=([\d.]+)/;
const JIT_RE = /tsvm: jit: units=(\d+) blocks=(\d+) wasm-bytes=(\d+) compile-ms=([\d.]+) invalidations=(\d+) evictions=(\d+)/;

/** Runs a command, hashing its stdout instead of keeping it; measures wall time and parses tsvm --stats. */
function measure(cmd: string, args: string[]): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: guestEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const h = crypto.createHash('sha256');
    let outBytes = 0;
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { h.update(b); outBytes += b.length; });
    child.stderr.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-16384); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const s = STATS_RE.exec(stderr), j = JIT_RE.exec(stderr);
      resolve({
        seconds,
        status: code ?? (signal !== null ? 128 + (os.constants.signals[signal] ?? 0) : -1),
        outHash: h.digest('hex'),
        outBytes,
        instructions: s ? Number(s[1]) : null,
        coreSeconds: s ? Number(s[2]) : null,
        jit: j ? {
          units: Number(j[1]), blocks: Number(j[2]), wasmBytes: Number(j[3]),
          compileMs: Number(j[4]), invalidations: Number(j[5]), evictions: Number(j[6]),
        } : null,
        stderrTail: stderrSummary(stderr),
      });
    });
  });
}

/** The informative part of a run's stderr: its error lines if any (e.g. a stack trace's message), else its last lines. */
function stderrSummary(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^(at |Node\.js v)/.test(l));
  const errs = lines.filter((l) => /^\w*Error\b|^tsvm: (?!stats:|jit:)/.test(l));
  return (errs.length > 0 ? errs : lines).slice(-3).join(' | ');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function medianOrNull(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length === xs.length && v.length > 0 ? median(v) : null;
}

function summarize(samples: Sample[]): Measured {
  return {
    samples,
    seconds: median(samples.map((s) => s.seconds)),
    coreSeconds: medianOrNull(samples.map((s) => s.coreSeconds)),
    compileMs: medianOrNull(samples.map((s) => s.jit?.compileMs ?? null)),
    instructions: samples[0]?.instructions ?? null,
  };
}

/** The command line of one configuration. */
function commandFor(c: Config, w: Workload): [string, string[]] {
  if (c === 'qemu') return [requireQemu(), ['-cpu', QEMU_CPU, w.program, ...w.args]];
  return [process.execPath, [requireTsvm(), 'exec', '--stats', `--jit=${c === 'jit' ? 'on' : 'off'}`, w.program, ...w.args]];
}

async function runWorkload(w: Workload): Promise<Row> {
  const samples: Record<Config, Sample[]> = { qemu: [], jit: [], interp: [] };
  for (let i = 0; i < RUNS; i++) {
    const line: string[] = [];
    for (const c of CONFIGS) {
      const [cmd, args] = commandFor(c, w);
      const s = await measure(cmd, args);
      samples[c].push(s);
      line.push(`${LABEL[c]} ${s.seconds.toFixed(2)} s${s.coreSeconds !== null ? ` (core ${s.coreSeconds.toFixed(2)})` : ''}`);
    }
    process.stderr.write(`bench: ${w.name} run ${i + 1}/${RUNS}: ${line.join(', ')}\n`);
  }
  const ref = samples.qemu[0]!;
  const problems: string[] = [];
  for (const c of CONFIGS) {
    for (const s of samples[c]) {
      const bad: string[] = [];
      if (s.status !== ref.status) bad.push(`status ${s.status} (qemu ${ref.status})`);
      if (s.outHash !== ref.outHash) bad.push(`stdout differs (${s.outBytes} bytes, qemu ${ref.outBytes})`);
      if (c !== 'qemu' && s.instructions === null) bad.push('no --stats line');
      if (bad.length > 0) {
        problems.push(`${LABEL[c]}: ${bad.join(', ')}`);
        process.stderr.write(`bench: ${w.name}: ${LABEL[c]}: ${bad.join(', ')}; stderr: ${s.stderrTail}\n`);
        break;
      }
    }
  }
  const m = { qemu: summarize(samples.qemu), jit: summarize(samples.jit), interp: summarize(samples.interp) };
  const notes: string[] = [];
  if (m.jit.instructions !== null && m.interp.instructions !== null && m.jit.instructions !== m.interp.instructions) {
    // Not an output difference, but the two tsvm engines should retire the same instructions.
    notes.push(`instruction counts differ: JIT ${m.jit.instructions}, interpreter ${m.interp.instructions}`);
    process.stderr.write(`bench: ${w.name}: ${notes[notes.length - 1]!}\n`);
  }
  return { w, m, problems, notes };
}

/** A deterministic text file of `mib` MiB (words and numbers, gzip-compressible like real text). */
function inputFile(mib: number): string {
  const file = path.join(CACHE, `input-${mib}M.txt`);
  if (fs.existsSync(file) && fs.statSync(file).size === mib * 1024 * 1024) return file;
  fs.mkdirSync(CACHE, { recursive: true });
  const syll = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'to', 'vu', 'ze', 'qu', 'ab', 'th', 'ex', 'yo', 'bi', 'dra', 'gon'];
  let s = 12345;
  const rnd = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const buf = Buffer.alloc(mib * 1024 * 1024);
  let off = 0, line = 0;
  while (off < buf.length) {
    let text = `${line++} `;
    for (let k = 2 + (rnd() % 10); k > 0; k--) text += syll[rnd() % syll.length]! + syll[rnd() % syll.length]! + (rnd() % 5 === 0 ? ` ${rnd() % 100000} ` : ' ');
    off += buf.write(text + '\n', off, 'latin1');
  }
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, buf);
  fs.renameSync(tmp, file);
  return file;
}

/**
 * The workloads. The C programs' sizes (argv[1]) are chosen so that QEMU
 * takes about a second or more on the project's 2-core machine, so Node's
 * startup does not dominate tsvm's wall time; --quick uses small ones.
 */
async function workloads(): Promise<Workload[]> {
  const c = (name: string): string => compile({ sources: [path.join(BENCH_DIR, `${name}.c`)], linkage: 'static', name: `bench-${name}` });
  const sized = (name: string, what: string, full: number, quick: number): Workload => {
    const n = QUICK ? quick : full;
    return { name, what: `${what}, N=${n.toLocaleString('en-US')}`, program: c(name), args: [String(n)] };
  };
  const want = (name: string): boolean => ONLY === null || ONLY.has(name);
  const list: Workload[] = [];
  if (want('crc')) list.push(sized('crc', 'CRC-32 + 64-bit hash (integer)', 1200, 8));
  if (want('sort')) list.push(sized('sort', 'quicksort, merge sort, qsort', 1_500_000, 30_000));
  if (want('interp')) list.push(sized('interp', 'bytecode interpreter (Dhrystone-like)', 250, 3));
  if (want('nbody')) list.push(sized('nbody', 'n-body + matrix multiply (FP)', 800_000, 20_000));
  if (want('sha256sum') || want('gzip')) {
    const root = path.join(REPO_ROOT, '.cache', 'roots', 'busybox-static');
    await new DebianArchive({ progress: false }).installRoot(['busybox-static'], root);
    const bb = fs.realpathSync(path.join(root, 'usr', 'bin', 'busybox'));
    const input = inputFile(INPUT_MIB);
    if (want('sha256sum')) list.push({ name: 'sha256sum', what: `busybox sha256sum, ${INPUT_MIB} MiB`, program: bb, args: ['sha256sum', input] });
    if (want('gzip')) list.push({ name: 'gzip', what: `busybox gzip -c, ${INPUT_MIB} MiB`, program: bb, args: ['gzip', '-c', input] });
  }
  return list;
}

function geomean(xs: (number | null)[]): number {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x) && x > 0);
  return v.length > 0 ? Math.exp(v.reduce((a, x) => a + Math.log(x), 0) / v.length) : NaN;
}

const fmt = (x: number | null, digits: number): string => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits));

/** Per-row derived figures: MIPS, speed ratios (wall and core) and the translation share. */
function derive(r: Row): {
  mips: Record<Config, number | null>;
  jitQemuWall: number; jitQemuCore: number | null;
  jitInterpWall: number; jitInterpCore: number | null;
  interpQemuWall: number; compilePct: number | null;
} {
  const { qemu, jit, interp } = r.m;
  const n = jit.instructions ?? interp.instructions;
  const mips = (m: Measured): number | null => (n !== null ? n / m.seconds / 1e6 : null);
  return {
    mips: { qemu: mips(qemu), jit: mips(jit), interp: mips(interp) },
    jitQemuWall: qemu.seconds / jit.seconds,
    jitQemuCore: jit.coreSeconds !== null && jit.coreSeconds > 0 ? qemu.seconds / jit.coreSeconds : null,
    jitInterpWall: interp.seconds / jit.seconds,
    jitInterpCore: jit.coreSeconds !== null && interp.coreSeconds !== null && jit.coreSeconds > 0 ? interp.coreSeconds / jit.coreSeconds : null,
    interpQemuWall: qemu.seconds / interp.seconds,
    compilePct: jit.compileMs !== null && jit.coreSeconds !== null && jit.coreSeconds > 0 ? (jit.compileMs / 1000 / jit.coreSeconds) * 100 : null,
  };
}

function table(rows: Row[]): string {
  const lines = [
    '| workload | what | guest instructions | qemu s | JIT s | interp s | qemu MIPS | JIT MIPS | interp MIPS | JIT / QEMU (wall) | JIT / QEMU (core) | JIT / interp (wall) | JIT / interp (core) | translate % | output |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  const ds = rows.map(derive);
  rows.forEach((r, i) => {
    const d = ds[i]!;
    const n = r.m.jit.instructions ?? r.m.interp.instructions;
    const ok = (r.problems.length === 0 ? 'same' : `**DIFFERS**: ${r.problems.join('; ')}`) + r.notes.map((x) => ` (${x})`).join('');
    lines.push(`| ${r.w.name} | ${r.w.what} | ${n !== null ? n.toLocaleString('en-US') : 'n/a'} | ` +
      `${r.m.qemu.seconds.toFixed(2)} | ${r.m.jit.seconds.toFixed(2)} | ${r.m.interp.seconds.toFixed(2)} | ` +
      `${fmt(d.mips.qemu, 0)} | ${fmt(d.mips.jit, 1)} | ${fmt(d.mips.interp, 1)} | ` +
      `${fmt(d.jitQemuWall, 3)} | ${fmt(d.jitQemuCore, 3)} | ${fmt(d.jitInterpWall, 2)} | ${fmt(d.jitInterpCore, 2)} | ` +
      `${fmt(d.compilePct, 1)} | ${ok} |`);
  });
  if (rows.length > 1) {
    const g = (f: (d: ReturnType<typeof derive>) => number | null, digits: number): string => fmt(geomean(ds.map(f)), digits);
    lines.push(`| **geometric mean** | ${rows.length} workloads | | | | | ${g((d) => d.mips.qemu, 0)} | ${g((d) => d.mips.jit, 1)} | ${g((d) => d.mips.interp, 1)} | ` +
      `**${g((d) => d.jitQemuWall, 3)}** | ${g((d) => d.jitQemuCore, 3)} | **${g((d) => d.jitInterpWall, 2)}** | ${g((d) => d.jitInterpCore, 2)} | ` +
      `${g((d) => d.compilePct, 1)} | |`);
  }
  return lines.join('\n');
}

function summary(rows: Row[]): string {
  const ds = rows.map(derive);
  const jq = geomean(ds.map((d) => d.jitQemuWall)), jqc = geomean(ds.map((d) => d.jitQemuCore));
  const ji = geomean(ds.map((d) => d.jitInterpWall)), jic = geomean(ds.map((d) => d.jitInterpCore));
  const iq = geomean(ds.map((d) => d.interpQemuWall));
  const verdict = (x: number, target: number): string => (x >= target ? `meets the ${target} target` : `below the ${target} target`);
  return [
    `Speeds are 1 / time, so "JIT / QEMU" = qemu s / JIT s and "JIT / interp" = interp s / JIT s. ` +
      `*wall*: process start to exit (tsvm's includes Node's startup, ~0.15-0.25 s); ` +
      `*core*: tsvm's own run-loop seconds from \`--stats\` (no Node startup or ELF loading) against QEMU's wall time. ` +
      `MIPS = guest instructions (counted by tsvm) / wall seconds. ` +
      `translate % = JIT compile-ms / the JIT run's core seconds.`,
    '',
    `**JIT / QEMU, geometric mean: ${fmt(jq, 3)} wall, ${fmt(jqc, 3)} core** (${verdict(jq, 0.5)} on wall time). ` +
      `**JIT / interpreter: ${fmt(ji, 2)} wall, ${fmt(jic, 2)} core** (${verdict(ji, 5)} on wall time). ` +
      `Interpreter / QEMU: ${fmt(iq, 3)} wall.`,
  ].join('\n');
}

/** Runs one of the system-VM parts, turning a failure into a note in the report instead of losing the rest. */
async function part<T>(name: string, heading: string, f: () => Promise<T>, fmtTable: (x: T) => string): Promise<string> {
  try {
    return `\n## ${heading}\n\n${fmtTable(await f())}\n`;
  } catch (e) {
    process.stderr.write(`bench: ${name} failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
    return `\n${name}: **failed**: ${e instanceof Error ? e.message : String(e)}\n`;
  }
}

async function main(): Promise<void> {
  requireTsvm();
  const list = await workloads();
  const rows: Row[] = [];
  for (const w of list) {
    process.stderr.write(`bench: ${w.name}: ${RUNS} run${RUNS > 1 ? 's' : ''} each of ${CONFIGS.map((c) => LABEL[c]).join(', ')}...\n`);
    rows.push(await runWorkload(w));
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const header = `# tsvm benchmark${QUICK ? ' (--quick)' : ''}\n\n${new Date().toISOString()} — ${cpu}, ${os.cpus().length} cores, ` +
    `Node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, ` +
    `${RUNS === 1 ? '1 run' : `median of ${RUNS} runs`}; QEMU -cpu ${QEMU_CPU}; tsvm JIT with its default threshold\n` +
    (QUICK ? '\n*--quick: small inputs, so start-up and translation dominate; for checking the harness, not for the ratios.*\n' : '');
  const json: { date: string; quick: boolean; runs: number; rows: unknown[]; boot?: BootRow[]; blk?: BlkRow[]; net?: NetRow[]; memory?: MemoryReport; esx?: EsxReport; host?: HostReport; containers?: ContainerReport } = {
    date: new Date().toISOString(), quick: QUICK, runs: RUNS,
    rows: rows.map((r) => ({ name: r.w.name, what: r.w.what, program: r.w.program, args: r.w.args, problems: r.problems, notes: r.notes, ...r.m, derived: derive(r) })),
  };
  const sys: string[] = [];
  if (ONLY === null || ONLY.has('boot')) {
    sys.push(await part('boot', `System VM: start to the default guest's first shell prompt${RUNS > 1 ? `, median of ${RUNS}` : ''}`, async () => {
      json.boot = await benchBoot(RUNS, { withBios: !QUICK });
      if (json.boot.some((r) => r.error !== undefined)) process.exitCode = 1;
      return json.boot;
    }, bootTable));
  }
  // The virtio throughput parts boot two or three more guests each: --quick leaves them out unless named in --only.
  if (QUICK && ONLY === null) process.stderr.write('bench: --quick: leaving out blk and net (name them in --only to run them)\n');
  if (QUICK ? ONLY?.has('blk') === true : ONLY === null || ONLY.has('blk')) sys.push(await part('virtio-blk', 'virtio-blk (tsvm with its JIT)', async () => (json.blk = await benchVirtioBlk(QUICK ? 32 : 256)), blkTable));
  if (QUICK ? ONLY?.has('net') === true : ONLY === null || ONLY.has('net')) sys.push(await part('virtio-net', 'virtio-net (tsvm with its JIT)', async () => (json.net = await benchVirtioNet(QUICK ? 4 : 16, QUICK ? 16 : 64)), netTable));
  // The memory experiments boot up to 8 guests at a time: only when named in --only.
  if (ONLY?.has('memory') === true) {
    sys.push(await part('memory', 'Memory: page sharing across identical guests (ESX §4)', async () => {
      const r = await benchMemory(QUICK);
      json.memory = r;
      for (const f of writeMemoryCharts(r, path.join(REPO_ROOT, 'docs'))) process.stderr.write(`bench: wrote ${path.relative(REPO_ROOT, f)}\n`);
      return r;
    }, memoryTable));
    sys.push(await part('esx', 'Memory: overcommit, balloon against swap, idle memory tax (ESX §3, §5.3) on a tsvm host', async () => {
      const r = await benchEsx(QUICK);
      json.esx = r;
      for (const f of writeEsxCharts(r, path.join(REPO_ROOT, 'docs'))) process.stderr.write(`bench: wrote ${path.relative(REPO_ROOT, f)}\n`);
      return r;
    }, esxTable));
  }
  // The host against `tsvm run`: starts its own hosts and boots 2 x RUNS + 4 guests: only when named in --only.
  if (ONLY?.has('host') === true) {
    sys.push(await part('host', `The many-VM host against \`tsvm run\`${RUNS > 1 ? `, median of ${RUNS}` : ''}`, async () => (json.host = await benchHost(RUNS, QUICK)), hostTable));
  }
  // Containers (issue 15 point 6): a private host and data directory; the debian image's parts only when named.
  if (ONLY?.has('containers') === true || ONLY?.has('containers-debian') === true) {
    sys.push(await part('containers', `Containers: \`tsvm run --rm busybox true\` and idle memory${RUNS > 1 ? `, median of ${RUNS}` : ''}`,
      async () => (json.containers = await benchContainers(RUNS, ONLY.has('containers-debian'))), containerTable));
  }
  const compute = rows.length > 0 ? `## Process VM: qemu-riscv64 vs tsvm exec (JIT) vs tsvm exec --jit=off\n\n${table(rows)}\n\n${summary(rows)}\n` : '';
  const md = `${[header, compute, ...sys].map((x) => x.trim()).filter((x) => x !== '').join('\n\n')}\n`;
  process.stdout.write(md);
  const dir = path.join(BENCH_DIR, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'latest.md'), md);
  fs.writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  process.stderr.write(`bench: wrote ${path.relative(REPO_ROOT, path.join(dir, 'latest.md'))} and latest.json\n`);
  if (rows.some((r) => r.problems.length > 0)) process.exitCode = 1;
}

await main();
