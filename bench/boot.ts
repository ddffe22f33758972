/**
 * Boot-time benchmark: wall time from starting the VMM to the default
 * guest's first shell prompt, for tsvm and qemu-system-riscv64 on the same
 * Debian kernel and initramfs (tsvm with its built-in SBI and with
 * Debian's OpenSBI as -bios; QEMU with its default OpenSBI).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ensureDefaultGuest } from '../src/images/default-guest.js';
import { REPO_ROOT } from '../tests/helpers/toolchain.js';

/** One boot configuration's median time to the prompt. */
export interface BootRow { name: string; seconds: number; runs: number[] }

const PROMPT = '~ # ';
const OPENSBI = '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin';

/** Starts `cmd`, returns seconds until PROMPT appears on stdout, then powers the guest off. */
function timeToPrompt(cmd: string, args: string[], timeoutMs = 600_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '', done = false;
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${cmd}: no prompt within ${timeoutMs} ms`)); }, timeoutMs);
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
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** Runs each configuration `runs` times; returns medians. */
export async function benchBoot(runs: number): Promise<BootRow[]> {
  const g = await ensureDefaultGuest({ progress: false });
  const cli = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
  const common = ['-m', '512M', '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0'];
  const configs: [string, string, string[]][] = [
    ['qemu-system-riscv64 (OpenSBI)', 'qemu-system-riscv64', ['-M', 'virt', '-nographic', ...common]],
    ['tsvm (built-in SBI)', 'node', [cli, 'run', ...common]],
    ['tsvm (OpenSBI -bios)', 'node', [cli, 'run', '-bios', OPENSBI, ...common]],
  ];
  const rows: BootRow[] = [];
  for (const [name, cmd, args] of configs) {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`bench: boot ${name} run ${i + 1}/${runs}...\n`);
      times.push(await timeToPrompt(cmd, args));
    }
    const sorted = [...times].sort((a, b) => a - b);
    rows.push({ name, seconds: sorted[Math.floor(sorted.length / 2)]!, runs: times });
  }
  return rows;
}

/** Formats the boot rows as a Markdown table with the ratio to QEMU. */
export function bootTable(rows: BootRow[]): string {
  const qemu = rows.find((r) => r.name.startsWith('qemu'))?.seconds ?? NaN;
  const lines = ['| boot to first shell prompt | median s | runs (s) | tsvm / QEMU |', '|---|---:|---|---:|'];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${r.seconds.toFixed(1)} | ${r.runs.map((x) => x.toFixed(1)).join(', ')} | ${(r.seconds / qemu).toFixed(1)}x |`);
  }
  return lines.join('\n');
}
