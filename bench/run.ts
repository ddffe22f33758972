/**
 * `npm run bench`: compute workloads under tsvm and qemu-riscv64.
 *
 * Workloads: the project's C benchmarks in bench/*.c (static glibc,
 * -O2) and Debian's busybox-static running `sha256sum` and `gzip -c` on a
 * deterministic 32 MiB text file. For each: the median wall time of 3 runs
 * under tsvm and under QEMU, the guest instruction count (tsvm --stats),
 * tsvm MIPS (instructions / tsvm wall time, process start included), the
 * MIPS tsvm reports for the run loop alone, and speed vs QEMU
 * (qemu_time / tsvm_time). The outputs of both emulators are checked to be
 * identical (by SHA-256). Prints a Markdown table and writes it to
 * bench/results/latest.md.
 *
 * Then the boot benchmark (bench/boot.ts): time to the default guest's
 * first shell prompt, tsvm vs qemu-system-riscv64.
 *
 * Options: --quick (one run each, smaller inputs), --only NAME[,NAME...]
 * (workload names, `boot`, `blk` for virtio-blk dd throughput, `net`).
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DebianArchive } from '../src/images/debian-archive.js';
import { compile, REPO_ROOT } from '../tests/helpers/toolchain.js';
import { QEMU_CPU, guestEnv, requireQemu, requireTsvm } from '../tests/helpers/guest-run.js';
import { benchBoot, bootTable } from './boot.js';
import { benchVirtioBlk, blkTable } from './virtio-blk.js';
import { benchVirtioNet, netTable } from './virtio-net.js';

/** One benchmark: a guest program and its arguments (host paths). */
interface Workload {
  name: string;
  what: string;
  program: string;
  args: string[];
}

/** The measurements of one run. */
interface Sample {
  seconds: number;
  status: number;
  outHash: string;
  outBytes: number;
  instructions: number | null;
  coreMips: number | null;
  stderr: string;
}

/** Result row for one workload. */
interface Row {
  w: Workload;
  tsvm: Sample;
  qemu: Sample;
  sameOutput: boolean;
}

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const onlyIdx = argv.indexOf('--only');
const ONLY = onlyIdx >= 0 ? new Set((argv[onlyIdx + 1] ?? '').split(',')) : null;
const RUNS = QUICK ? 1 : 3;
const INPUT_MIB = QUICK ? 4 : 32;
const BENCH_DIR = path.join(REPO_ROOT, 'bench');
const CACHE = path.join(REPO_ROOT, '.cache', 'bench');

/** Runs a command, hashing its stdout instead of keeping it; measures wall time. */
function measure(cmd: string, args: string[]): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: guestEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const h = crypto.createHash('sha256');
    let outBytes = 0;
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { h.update(b); outBytes += b.length; });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /tsvm: stats: instructions=(\d+) seconds=([\d.]+) mips=([\d.]+)/.exec(stderr);
      resolve({
        seconds,
        status: code ?? (signal !== null ? 128 + (os.constants.signals[signal] ?? 0) : -1),
        outHash: h.digest('hex'),
        outBytes,
        instructions: m ? Number(m[1]) : null,
        coreMips: m ? Number(m[3]) : null,
        stderr,
      });
    });
  });
}

function median(xs: Sample[]): Sample {
  const s = [...xs].sort((a, b) => a.seconds - b.seconds);
  return s[Math.floor(s.length / 2)] as Sample;
}

async function runWorkload(w: Workload): Promise<Row> {
  const cli = requireTsvm();
  const qemu = requireQemu();
  const t: Sample[] = [];
  const q: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    q.push(await measure(qemu, ['-cpu', QEMU_CPU, w.program, ...w.args]));
    t.push(await measure(process.execPath, [cli, 'exec', '--stats', w.program, ...w.args]));
  }
  const tm = median(t), qm = median(q);
  const sameOutput = t.every((s) => s.outHash === qm.outHash && s.status === qm.status);
  return { w, tsvm: tm, qemu: qm, sameOutput };
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

async function workloads(): Promise<Workload[]> {
  const c = (name: string): string => compile({ sources: [path.join(BENCH_DIR, `${name}.c`)], linkage: 'static', name: `bench-${name}` });
  const list: Workload[] = [
    { name: 'crc', what: 'CRC-32 + 64-bit hash (integer)', program: c('crc'), args: QUICK ? ['8'] : [] },
    { name: 'sort', what: 'quicksort, merge sort, qsort', program: c('sort'), args: QUICK ? ['30000'] : [] },
    { name: 'interp', what: 'bytecode interpreter (Dhrystone-like)', program: c('interp'), args: QUICK ? ['3'] : [] },
    { name: 'nbody', what: 'n-body + matrix multiply (FP)', program: c('nbody'), args: QUICK ? ['20000'] : [] },
  ];
  const wantBusybox = ONLY === null || ONLY.has('sha256sum') || ONLY.has('gzip');
  if (wantBusybox) {
    const root = path.join(REPO_ROOT, '.cache', 'roots', 'busybox-static');
    await new DebianArchive({ progress: false }).installRoot(['busybox-static'], root);
    const bb = fs.realpathSync(path.join(root, 'usr', 'bin', 'busybox'));
    const input = inputFile(INPUT_MIB);
    list.push({ name: 'sha256sum', what: `busybox sha256sum, ${INPUT_MIB} MiB`, program: bb, args: ['sha256sum', input] });
    list.push({ name: 'gzip', what: `busybox gzip -c, ${INPUT_MIB} MiB`, program: bb, args: ['gzip', '-c', input] });
  }
  return list.filter((w) => ONLY === null || ONLY.has(w.name));
}

function table(rows: Row[]): string {
  const lines = [
    '| workload | what | guest instructions | tsvm s | qemu s | tsvm MIPS | run-loop MIPS | speed vs QEMU | output |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    const n = r.tsvm.instructions;
    const mips = n !== null ? (n / r.tsvm.seconds / 1e6).toFixed(1) : 'n/a';
    const ok = r.sameOutput ? 'same' : `DIFFERS (tsvm status ${r.tsvm.status}, qemu ${r.qemu.status})`;
    lines.push(`| ${r.w.name} | ${r.w.what} | ${n !== null ? n.toLocaleString('en-US') : 'n/a'} | ${r.tsvm.seconds.toFixed(2)} | ${r.qemu.seconds.toFixed(2)} | ${mips} | ${r.tsvm.coreMips?.toFixed(1) ?? 'n/a'} | ${(r.qemu.seconds / r.tsvm.seconds).toFixed(3)} | ${ok} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const list = (await workloads()).filter((w) => ONLY === null || ONLY.has(w.name));
  const rows: Row[] = [];
  for (const w of list) {
    process.stderr.write(`bench: ${w.name} (${RUNS} run${RUNS > 1 ? 's' : ''} each)...\n`);
    const r = await runWorkload(w);
    if (!r.sameOutput) process.stderr.write(`bench: ${w.name}: tsvm output differs from qemu; tsvm stderr: ${r.tsvm.stderr.trim().split('\n').slice(-3).join(' | ')}\n`);
    rows.push(r);
  }
  const mipsValues = rows.filter((r) => r.tsvm.instructions !== null).map((r) => (r.tsvm.instructions as number) / r.tsvm.seconds / 1e6);
  const geo = mipsValues.length > 0 ? Math.exp(mipsValues.reduce((a, m) => a + Math.log(m), 0) / mipsValues.length) : NaN;
  const speed = rows.map((r) => r.qemu.seconds / r.tsvm.seconds);
  const geoSpeed = speed.length > 0 ? Math.exp(speed.reduce((a, x) => a + Math.log(x), 0) / speed.length) : NaN;
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const header = `# tsvm benchmark${QUICK ? ' (--quick)' : ''}\n\n${new Date().toISOString()} — ${cpu}, ${os.cpus().length} cores, Node ${process.version}, ${RUNS === 1 ? '1 run' : `median of ${RUNS} runs`}; QEMU ${QEMU_CPU}\n`;
  const summary = `**Geometric-mean tsvm MIPS: ${geo.toFixed(1)}** (speed vs QEMU, geometric mean: ${geoSpeed.toFixed(3)})`;
  let bootMd = '';
  if (ONLY === null || ONLY.has('boot')) bootMd = `\n${bootTable(await benchBoot(QUICK ? 1 : 3))}\n`;
  if (ONLY === null || ONLY.has('blk')) bootMd += `\n${blkTable(await benchVirtioBlk(QUICK ? 32 : 256))}\n`;
  if (ONLY === null || ONLY.has('net')) bootMd += `\n${netTable(await benchVirtioNet(QUICK ? 4 : 16, QUICK ? 16 : 64))}\n`;
  const md = `${header}\n${rows.length ? `${table(rows)}\n\n${summary}\n` : ''}${bootMd}`;
  process.stdout.write(md);
  const out = path.join(BENCH_DIR, 'results', 'latest.md');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, md);
  process.stderr.write(`bench: wrote ${path.relative(REPO_ROOT, out)}\n`);
  if (rows.some((r) => !r.sameOutput)) process.exitCode = 1;
}

await main();
