/**
 * Builds and runs the bare-metal privileged-architecture tests in
 * tests/baremetal/: each program is linked with common.S by
 * riscv64-unknown-elf-gcc at 0x8000_0000 (link.ld) and run as a `-kernel`
 * ELF on a spike machine with no firmware, under tsvm
 * (`tsvm run -M spike -bios none`) and under QEMU
 * (`qemu-system-riscv64 -M spike -bios none -nographic`), the oracle.
 * Output goes through HTIF (tohost/fromhost); the exit status follows the
 * riscv-tests convention (tohost = 1: 0, else tohost >> 1).
 *
 * A program whose source contains `@machine virt` is built with
 * -DMACHINE_VIRT and run on the virt machine instead (console on the
 * NS16550A UART, exit through the SiFive test finisher): QEMU 7.2's spike
 * machine has no `time` CSR (its CLINT does not provide rdtime), so Sstc
 * and rdtime can only be compared on virt.
 *
 * Builds are cached in `.cache/baremetal/`, keyed by the SHA-256 of the
 * program, every other file in tests/baremetal (shared code, headers,
 * link.ld), the flags and the compiler version.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, requireTool } from './toolchain.js';
import { requireTsvm, runHost, tsvmEnv, TSVM_CLI, type RunResult } from './guest-run.js';

/** Directory of the bare-metal test sources. */
export const BAREMETAL_DIR = path.join(REPO_ROOT, 'tests', 'baremetal');

/** The bare-metal cross compiler driver (Debian gcc-riscv64-unknown-elf). */
export const BAREMETAL_CC = 'riscv64-unknown-elf-gcc';

/** The ISA the programs are assembled for: what the tsvm hart implements (Debian's gcc 12 knows the Zb* names). */
export const BAREMETAL_MARCH = 'rv64gc_zba_zbb_zbs';

/**
 * QEMU's -cpu for the oracle. QEMU 7.2's default rv64 CPU also has the
 * hypervisor extension (misa.H, extra mstatus/mideleg bits), which tsvm
 * does not implement: `h=false` pins the oracle's misa to RV64IMAFDCSU.
 */
export const QEMU_SYSTEM_CPU = 'rv64,h=false,zba=true,zbb=true,zbs=true,sstc=true';

/** Sources in BAREMETAL_DIR that are not programs. */
const NOT_PROGRAMS = new Set(['common.S']);
const CACHE_DIR = path.join(REPO_ROOT, '.cache', 'baremetal');
/** Bump to invalidate every cached binary after changing the build recipe. */
const RECIPE_VERSION = '1';

let ccVersion: string | null = null;
function compilerVersion(): string {
  ccVersion ??= execFileSync(requireTool(BAREMETAL_CC, 'gcc-riscv64-unknown-elf'), ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
  return ccVersion;
}

/** The program names (source file names without extension) in tests/baremetal, sorted. */
export function listBaremetalPrograms(): string[] {
  return fs.readdirSync(BAREMETAL_DIR)
    .filter((f) => /\.(S|c)$/.test(f) && !NOT_PROGRAMS.has(f))
    .map((f) => f.replace(/\.(S|c)$/, ''))
    .sort();
}

/** The machines a bare-metal program can run on. */
export type BaremetalMachine = 'spike' | 'virt';

/** A built program: the ELF and the machine it is meant for. */
export interface BaremetalProgram {
  /** Program name (source file name without extension). */
  name: string;
  /** Path of the cached ELF. */
  elf: string;
  /** `-M` value for both emulators. */
  machine: BaremetalMachine;
}

/** Compiler flags for every bare-metal program on `machine`. */
export function baremetalFlags(machine: BaremetalMachine = 'spike'): string[] {
  return [
    ...(machine === 'virt' ? ['-DMACHINE_VIRT'] : []),
    `-march=${BAREMETAL_MARCH}`, '-mabi=lp64d', '-mcmodel=medany', '-O2', '-Wall',
    '-nostdlib', '-nostartfiles', '-static', '-ffreestanding',
    `-I${BAREMETAL_DIR}`, '-T', path.join(BAREMETAL_DIR, 'link.ld'),
  ];
}

/** Builds program `name` (tests/baremetal/NAME.S or NAME.c, plus common.S), cached. */
export function compileBaremetal(name: string): BaremetalProgram {
  const cc = requireTool(BAREMETAL_CC, 'gcc-riscv64-unknown-elf');
  const src = ['S', 'c'].map((e) => path.join(BAREMETAL_DIR, `${name}.${e}`)).find((p) => fs.existsSync(p));
  if (src === undefined) throw new Error(`no tests/baremetal/${name}.S or .c`);
  const machine: BaremetalMachine = fs.readFileSync(src, 'utf8').includes('@machine virt') ? 'virt' : 'spike';
  const flags = baremetalFlags(machine);
  const h = crypto.createHash('sha256');
  h.update(`recipe ${RECIPE_VERSION}\0${compilerVersion()}\0${flags.join('\0')}\0`);
  // every file of the directory is part of the key: programs include shared .h/.inc files
  const shared = fs.readdirSync(BAREMETAL_DIR).sort().map((f) => path.join(BAREMETAL_DIR, f)).filter((f) => f !== src && fs.statSync(f).isFile());
  for (const f of [src, ...shared]) {
    h.update(path.basename(f) + '\0');
    h.update(fs.readFileSync(f));
    h.update('\0');
  }
  const out = path.join(CACHE_DIR, `${name}.${h.digest('hex').slice(0, 20)}.elf`);
  if (fs.existsSync(out)) return { name, elf: out, machine };
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const argv = [...flags, '-o', tmp, src, path.join(BAREMETAL_DIR, 'common.S')];
  const r = spawnSync(cc, argv, { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`compiling ${name} failed:\n${BAREMETAL_CC} ${argv.join(' ')}\n${r.stderr}${r.error ? String(r.error) : ''}`);
  }
  fs.renameSync(tmp, out);
  return { name, elf: out, machine };
}

/** Runs a built program under `tsvm run -M MACHINE -bios none -kernel ELF`. */
export function runBaremetalTsvm(prog: BaremetalProgram, timeoutMs = 60_000): Promise<RunResult> {
  requireTsvm();
  return runHost(process.execPath, [TSVM_CLI, 'run', '-M', prog.machine, '-bios', 'none', '-kernel', prog.elf], { timeoutMs, env: tsvmEnv() });
}

/** The qemu-system-riscv64 binary, or a clear error if it is not installed. */
export function requireQemuSystem(): string {
  return requireTool('qemu-system-riscv64', 'qemu-system-misc');
}

/**
 * Runs a built program under `qemu-system-riscv64 -M MACHINE -bios none
 * -nographic -kernel ELF` (the oracle). Its console goes to a regular file,
 * not a pipe: QEMU's stdio character device is non-blocking and HTIF's
 * putchar drops bytes that a full pipe refuses.
 */
export async function runBaremetalQemu(prog: BaremetalProgram, timeoutMs = 60_000): Promise<RunResult> {
  const argv = ['-M', prog.machine, '-cpu', QEMU_SYSTEM_CPU, '-smp', '1', '-bios', 'none', '-nographic', '-kernel', prog.elf];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-baremetal-'));
  const outPath = path.join(dir, 'console');
  const fd = fs.openSync(outPath, 'w');
  try {
    const r = await new Promise<Omit<RunResult, 'stdout'>>((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn(requireQemuSystem(), argv, { stdio: ['ignore', fd, 'pipe'] });
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
      child.stderr?.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => { clearTimeout(timer); reject(e); });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ stderr: Buffer.concat(err).toString('utf8'), status: code ?? (signal !== null ? 128 + (os.constants.signals[signal] ?? 0) : -1), signal, timedOut, ms: performance.now() - t0 });
      });
    });
    return { ...r, stdout: fs.readFileSync(outPath) };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
