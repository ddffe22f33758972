/**
 * Runs riscv64 guest programs under tsvm (`node dist/src/cli/main.js exec`)
 * and under qemu-riscv64 (the reference), capturing stdout, stderr and the
 * exit status, and builds the sysroot that dynamically linked programs use.
 *
 * QEMU is run as `qemu-riscv64 -cpu rv64,zba=true,zbb=true,zbs=true`:
 * QEMU 7.2's default rv64 CPU already enables Zba/Zbb/Zbs, but naming them
 * keeps the oracle's ISA pinned to what the tsvm hart implements.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, requireTool } from './toolchain.js';

/** The tsvm command-line entry point (built by `npx tsc -p .`); $TSVM_CLI overrides it. */
export const TSVM_CLI = process.env['TSVM_CLI'] ?? path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** The -cpu argument given to qemu-riscv64. */
export const QEMU_CPU = 'rv64,zba=true,zbb=true,zbs=true';

/** Where ensureSysroot() builds the root for dynamically linked programs. */
export const SYSROOT_DIR = path.join(REPO_ROOT, '.cache', 'sysroot-riscv64');

const CROSS_LIB = '/usr/riscv64-linux-gnu/lib';

/** The outcome of one guest run. */
export interface RunResult {
  /** Bytes the guest wrote to stdout. */
  stdout: Buffer;
  /** Text written to stderr (by the guest or the emulator). */
  stderr: string;
  /** Shell-style exit status: the exit code, or 128 + signal number if the process was killed. */
  status: number;
  /** The signal that killed the host process, if any. */
  signal: NodeJS.Signals | null;
  /** True if the run was killed for exceeding its time limit. */
  timedOut: boolean;
  /** Wall-clock milliseconds. */
  ms: number;
}

/** Options for a guest run. */
export interface RunOptions {
  /** Guest arguments after the program. */
  args?: string[];
  /** Guest root directory (tsvm --root / qemu -L); the program path is then a guest path inside it. */
  root?: string;
  /** Host working directory of the run. */
  cwd?: string;
  /** Extra environment variables on top of guestEnv(). */
  env?: Record<string, string>;
  /** Data for the guest's stdin (default: empty). */
  stdin?: string | Buffer;
  /** Kill the run after this many milliseconds (default 120 s). */
  timeoutMs?: number;
  /** Extra tsvm exec flags, e.g. ['--stats']. */
  tsvmFlags?: string[];
}

/** The deterministic environment every guest run starts from. */
export function guestEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: '/usr/bin:/bin', HOME: '/', LANG: 'C', LC_ALL: 'C', TZ: 'UTC', ...extra };
}

/**
 * The environment for a tsvm process: guestEnv() plus the JIT mode the
 * suite runs in (TSVM_JIT, see scripts/test-all.sh), which tsvm reads and
 * keeps out of the guest's environment.
 */
export function tsvmEnv(extra: Record<string, string> = {}): Record<string, string> {
  const jit = process.env['TSVM_JIT'];
  return { ...guestEnv(), ...(jit !== undefined ? { TSVM_JIT: jit } : {}), ...extra };
}

/**
 * Whether this is the suite's pass with the JIT at its defaults (TSVM_JIT
 * unset or `on`), where parts whose subject is not the engine (linkage
 * variants, kernel limits) run; the threshold-0 and interpreter passes
 * (scripts/test-all.sh) skip them.
 */
export const DEFAULT_ENGINE_PASS = (process.env['TSVM_JIT'] ?? 'on') === 'on';

/** Fails with a clear message unless tsvm's CLI has been built. */
export function requireTsvm(): string {
  if (!fs.existsSync(TSVM_CLI)) throw new Error(`${TSVM_CLI} is missing: build tsvm first (npx tsc -p .)`);
  return TSVM_CLI;
}

/** The qemu-riscv64 binary, or a clear error if it is not installed. */
export function requireQemu(): string {
  return requireTool('qemu-riscv64', 'qemu-user');
}

const SIGNALS = os.constants.signals as Record<string, number>;

/** Spawns a host command and collects its output; never rejects for a non-zero exit. */
export function runHost(cmd: string, argv: string[], opts: { cwd?: string; env?: Record<string, string>; stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { cwd: opts.cwd, env: opts.env ?? guestEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => { /* the guest may exit without reading stdin */ });
    child.stdin.end(opts.stdin ?? '');
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const status = code ?? (signal !== null ? 128 + (SIGNALS[signal] ?? 0) : -1);
      resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), status, signal, timedOut, ms: performance.now() - t0 });
    });
  });
}

/** True if Node failed to load tsvm's modules (e.g. dist/ was being rebuilt), before any guest code ran. */
export function isModuleLoadFailure(r: RunResult): boolean {
  return r.status === 1 && r.stdout.length === 0 &&
    /SyntaxError: The requested module|ERR_MODULE_NOT_FOUND|Cannot find module|SyntaxError: Unexpected end of input/.test(r.stderr);
}

/**
 * Runs `tsvm exec [--root ROOT] PROGRAM ARGS...`; `program` is a guest path
 * when a root is given. A run in which Node could not load tsvm's modules
 * (dist/ rebuilt concurrently) is retried, at most twice.
 */
export async function runTsvm(program: string, opts: RunOptions = {}): Promise<RunResult> {
  const cli = requireTsvm();
  const argv = [cli, 'exec', ...(opts.tsvmFlags ?? [])];
  if (opts.root !== undefined) argv.push('--root', opts.root);
  argv.push(program, ...(opts.args ?? []));
  for (let attempt = 0; ; attempt++) {
    const r = await runHost(process.execPath, argv, { cwd: opts.cwd, env: tsvmEnv(opts.env), stdin: opts.stdin, timeoutMs: opts.timeoutMs });
    if (!isModuleLoadFailure(r) || attempt >= 2) return r;
    await new Promise((res) => setTimeout(res, 3000));
  }
}

/** Runs the program under qemu-riscv64 (`-L ROOT` and the guest path as argv[0] when a root is given). */
export function runQemu(program: string, opts: RunOptions = {}): Promise<RunResult> {
  const qemu = requireQemu();
  const argv = ['-cpu', QEMU_CPU];
  let hostProgram = program;
  if (opts.root !== undefined) {
    argv.push('-L', opts.root, '-0', program);
    hostProgram = path.join(opts.root, program);
  }
  argv.push(hostProgram, ...(opts.args ?? []));
  return runHost(qemu, argv, { cwd: opts.cwd, env: guestEnv(opts.env), stdin: opts.stdin, timeoutMs: opts.timeoutMs });
}

/**
 * Builds (once) `.cache/sysroot-riscv64/`: a root whose lib/ holds copies
 * of the cross glibc's shared objects, so that dynamically linked programs
 * run under `tsvm exec --root` and `qemu-riscv64 -L`. Returns its path.
 */
export function ensureSysroot(): string {
  const stamp = path.join(SYSROOT_DIR, '.complete');
  if (fs.existsSync(stamp)) return SYSROOT_DIR;
  if (!fs.existsSync(path.join(CROSS_LIB, 'libc.so.6'))) {
    throw new Error(`${CROSS_LIB}/libc.so.6 is missing (apt-get install libc6-riscv64-cross)`);
  }
  const tmp = `${SYSROOT_DIR}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  for (const d of ['lib', 'progs', 'tmp', 'etc']) fs.mkdirSync(path.join(tmp, d), { recursive: true });
  for (const f of fs.readdirSync(CROSS_LIB)) {
    if (!/\.so(\.|$)/.test(f)) continue;
    const src = path.join(CROSS_LIB, f);
    if (!fs.statSync(src).isFile()) continue;
    fs.copyFileSync(src, path.join(tmp, 'lib', f));
  }
  fs.writeFileSync(path.join(tmp, '.complete'), 'sysroot built from ' + CROSS_LIB + '\n');
  try {
    fs.renameSync(tmp, SYSROOT_DIR);
  } catch (e) {
    // another test process won the race; use its copy
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(stamp)) throw e;
  }
  return SYSROOT_DIR;
}

/** Copies a host file into `root` at `guestPath` (atomically, executable); returns the guest path. */
export function installInRoot(root: string, hostFile: string, guestPath: string): string {
  const dest = path.join(root, guestPath);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  fs.copyFileSync(hostFile, tmp);
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, dest);
  return guestPath;
}

/** A fresh, empty working directory inside `root` (or the OS temp dir); returns its host path. */
export function freshDir(root: string | undefined, prefix: string): string {
  const base = root !== undefined ? path.join(root, 'tmp') : os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, `${prefix}-`));
}

/** Describes where two outputs first differ: line number and both lines (for assertion messages). */
export function firstDifference(a: string | Buffer, b: string | Buffer, labels: [string, string] = ['tsvm', 'qemu']): string {
  const la = a.toString().split('\n');
  const lb = b.toString().split('\n');
  const n = Math.max(la.length, lb.length);
  for (let i = 0; i < n; i++) {
    if (la[i] !== lb[i]) {
      const show = (s: string | undefined): string => (s === undefined ? '<end of output>' : JSON.stringify(s.length > 300 ? s.slice(0, 300) + '...' : s));
      return `first difference at line ${i + 1}:\n  ${labels[0]}: ${show(la[i])}\n  ${labels[1]}: ${show(lb[i])}`;
    }
  }
  return 'outputs are identical';
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
