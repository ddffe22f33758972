/**
 * Boot-time benchmark: wall time from starting the VMM to the default
 * guest's first shell prompt, on the same Debian kernel and initramfs, for
 * qemu-system-riscv64 (its default OpenSBI), tsvm with its JIT and tsvm
 * with the interpreter (`--jit=off`), both with tsvm's built-in SBI; and
 * optionally tsvm (JIT) with Debian's OpenSBI as -bios, the firmware QEMU
 * uses. The configurations run interleaved, `runs` rounds; medians are
 * reported. tsvm is given `--jit=on` / `--jit=off` explicitly and
 * TSVM_JIT is removed from its environment, so the JIT runs use its
 * default threshold.
 *
 * Run alone: `node dist/bench/boot.js [runs] [--bios]`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ensureDefaultGuest } from '../src/images/default-guest.js';
import { REPO_ROOT } from '../tests/helpers/toolchain.js';

/** Which engine a boot configuration measures. */
export type BootKind = 'qemu' | 'jit' | 'interp';

/** One boot configuration's median time to the prompt. */
export interface BootRow { name: string; kind: BootKind; seconds: number; runs: number[]; error?: string }

/** Options for benchBoot. */
export interface BootOptions {
  /** Also boot tsvm (JIT) with Debian's OpenSBI as -bios (if installed). */
  withBios?: boolean;
  /** Per-boot limit in milliseconds (default 10 minutes). */
  timeoutMs?: number;
}

const PROMPT = '~ # ';
const OPENSBI = '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin';

/** The environment for the VMMs: ours, without TSVM_JIT (the flags set the mode). */
function vmmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['TSVM_JIT'];
  return env;
}

/** Starts `cmd`, returns seconds until PROMPT appears on stdout, then powers the guest off. */
function timeToPrompt(cmd: string, args: string[], timeoutMs = 600_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: vmmEnv() });
    let buf = '', tail = '', done = false;
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${path.basename(cmd)}: no prompt within ${timeoutMs} ms`)); }, timeoutMs);
    p.stdout.on('data', (d: Buffer) => {
      if (done) return;
      buf = (buf + d.toString('latin1')).slice(-64);
      if (buf.includes(PROMPT)) {
        done = true;
        const s = (performance.now() - t0) / 1000;
        p.stdin.write('poweroff -f\n');
        setTimeout(() => p.kill('SIGKILL'), 20_000).unref();
        p.on('exit', () => { clearTimeout(timer); resolve(s); });
      }
    });
    // Drain stderr (a full pipe would stall the VMM); keep its end for error messages.
    p.stderr.on('data', (d: Buffer) => { tail = (tail + d.toString('latin1')).slice(-400); });
    p.stdin.on('error', () => { /* the VMM may be gone before poweroff is written */ });
    p.on('exit', (code, signal) => {
      if (done) return;
      clearTimeout(timer);
      reject(new Error(`${path.basename(cmd)} exited (${signal ?? code}) before the prompt: ${(buf + tail).trim().split('\n').slice(-3).join(' | ')}`));
    });
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** Runs each configuration `runs` times (interleaved); returns medians. A configuration that fails gets `error`. */
export async function benchBoot(runs: number, opts: BootOptions = {}): Promise<BootRow[]> {
  const g = await ensureDefaultGuest({ progress: false });
  const cli = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
  const common = ['-m', '512M', '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0'];
  const configs: { name: string; kind: BootKind; cmd: string; args: string[] }[] = [
    { name: 'qemu-system-riscv64 (OpenSBI)', kind: 'qemu', cmd: 'qemu-system-riscv64', args: ['-M', 'virt', '-nographic', ...common] },
    { name: 'tsvm, JIT (built-in SBI)', kind: 'jit', cmd: process.execPath, args: [cli, 'run', '--jit=on', ...common] },
    { name: 'tsvm, --jit=off interpreter (built-in SBI)', kind: 'interp', cmd: process.execPath, args: [cli, 'run', '--jit=off', ...common] },
  ];
  if (opts.withBios === true && fs.existsSync(OPENSBI)) {
    configs.push({ name: 'tsvm, JIT (OpenSBI -bios)', kind: 'jit', cmd: process.execPath, args: [cli, 'run', '--jit=on', '-bios', OPENSBI, ...common] });
  }
  const times = configs.map((): number[] => []);
  const errors: (string | undefined)[] = configs.map(() => undefined);
  for (let i = 0; i < runs; i++) {
    for (const [k, c] of configs.entries()) {
      if (errors[k] !== undefined) continue;
      process.stderr.write(`bench: boot ${c.name} run ${i + 1}/${runs}...`);
      try {
        const s = await timeToPrompt(c.cmd, c.args, opts.timeoutMs);
        times[k]!.push(s);
        process.stderr.write(` ${s.toFixed(1)} s\n`);
      } catch (e) {
        errors[k] = e instanceof Error ? e.message : String(e);
        process.stderr.write(` failed: ${errors[k]}\n`);
      }
    }
  }
  return configs.map((c, k) => {
    const sorted = [...times[k]!].sort((a, b) => a - b);
    const row: BootRow = { name: c.name, kind: c.kind, seconds: sorted.length > 0 ? sorted[Math.floor(sorted.length / 2)]! : NaN, runs: times[k]! };
    if (errors[k] !== undefined) row.error = errors[k];
    return row;
  });
}

/**
 * Formats the boot rows as a Markdown table: median seconds, each run,
 * the time ratio to QEMU (tsvm / QEMU, so lower is better) and, for the JIT
 * rows, the speed-up over the interpreter row.
 */
export function bootTable(rows: BootRow[]): string {
  const qemu = rows.find((r) => r.kind === 'qemu')?.seconds ?? NaN;
  const interp = rows.find((r) => r.kind === 'interp')?.seconds ?? NaN;
  const lines = ['| boot to first shell prompt | median s | runs (s) | time / QEMU | JIT speed-up vs interpreter |', '|---|---:|---|---:|---:|'];
  for (const r of rows) {
    const vsQemu = r.kind === 'qemu' ? '1.0x' : Number.isFinite(r.seconds / qemu) ? `${(r.seconds / qemu).toFixed(1)}x` : 'n/a';
    const vsInterp = r.kind === 'jit' && Number.isFinite(interp / r.seconds) ? `${(interp / r.seconds).toFixed(2)}x` : '';
    const runs = r.runs.map((x) => x.toFixed(1)).join(', ') + (r.error !== undefined ? `${r.runs.length > 0 ? '; ' : ''}**failed**: ${r.error.replaceAll('|', '/')}` : '');
    lines.push(`| ${r.name} | ${Number.isFinite(r.seconds) ? r.seconds.toFixed(1) : 'n/a'} | ${runs} | ${vsQemu} | ${vsInterp} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(REPO_ROOT, 'dist', 'bench', 'boot.js')) {
  const runs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1);
  process.stdout.write(`${bootTable(await benchBoot(runs, { withBios: process.argv.includes('--bios') }))}\n`);
}
