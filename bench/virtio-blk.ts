/**
 * virtio-blk throughput: the default guest's kernel and initramfs booted
 * with a raw image as /dev/vda, in tsvm and in qemu-system-riscv64; inside
 * the guest `dd` writes 256 MiB sequentially (bs=1M, conv=fsync), the page
 * cache is dropped, and `dd` reads it back. Times are measured on the host
 * from sending the command to the next shell prompt.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDefaultGuest } from '../src/images/default-guest.js';
import { ConsoleSession, stripAnsi } from '../tests/helpers/console-session.js';
import { REPO_ROOT } from '../tests/helpers/toolchain.js';

/** One VMM's sequential write and read results. */
export interface BlkRow {
  name: string;
  /** Bytes moved each way. */
  bytes: number;
  writeSeconds: number;
  readSeconds: number;
  /** MiB per second. */
  writeMiBps: number;
  readMiBps: number;
}

const PROMPT = '~ # ';
const BOOT_MS = 600_000;

/** Sends `cmd` and returns the seconds until the next prompt. */
async function timed(s: ConsoleSession, cmd: string, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  s.send(cmd);
  await s.expect(cmd, timeoutMs);
  const out = stripAnsi(await s.expect(PROMPT, timeoutMs));
  const secs = (performance.now() - t0) / 1000;
  if (/error|can't|No such/i.test(out)) throw new Error(`guest command failed: ${cmd}: ${out.trim()}`);
  return secs;
}

/** Boots one VMM with `image` as /dev/vda and times dd both ways. */
async function measure(name: string, cmd: string[], args: string[], mib: number): Promise<BlkRow> {
  const s = new ConsoleSession(args, cmd);
  try {
    await s.expect(PROMPT, BOOT_MS);
    await s.run('cat /sys/block/vda/size', PROMPT, 60_000);
    const limit = 60 * 60_000;
    process.stderr.write(`bench: virtio-blk ${name}: writing ${mib} MiB...\n`);
    const w = await timed(s, `dd if=/dev/zero of=/dev/vda bs=1M count=${mib} conv=fsync 2>/dev/null`, limit);
    await s.run('sync; echo 3 > /proc/sys/vm/drop_caches', PROMPT, 60_000);
    process.stderr.write(`bench: virtio-blk ${name}: reading ${mib} MiB...\n`);
    const r = await timed(s, `dd if=/dev/vda of=/dev/null bs=1M count=${mib} 2>/dev/null`, limit);
    s.send('poweroff -f');
    await Promise.race([s.exited, new Promise((res) => setTimeout(res, 20_000))]);
    return { name, bytes: mib * 1024 * 1024, writeSeconds: w, readSeconds: r, writeMiBps: mib / w, readMiBps: mib / r };
  } finally {
    s.kill();
  }
}

/** Runs the dd benchmark on tsvm and QEMU (each with its own sparse raw image of `mib` + 16 MiB). */
export async function benchVirtioBlk(mib = 256): Promise<BlkRow[]> {
  const g = await ensureDefaultGuest({ progress: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-bench-blk-'));
  const image = (tag: string): string => {
    const f = path.join(dir, `${tag}.raw`);
    const fd = fs.openSync(f, 'w');
    fs.ftruncateSync(fd, (mib + 16) * 1024 * 1024);
    fs.closeSync(fd);
    return f;
  };
  const common = ['-m', '512M', '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0'];
  const cli = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
  try {
    const rows: BlkRow[] = [];
    rows.push(await measure('qemu-system-riscv64', ['qemu-system-riscv64'],
      ['-M', 'virt', '-nographic', ...common, '-drive', `file=${image('qemu')},format=raw,if=virtio`], mib));
    rows.push(await measure('tsvm (JIT)', [process.execPath, cli, 'run'], [...common, '-drive', `file=${image('tsvm')},format=raw,if=virtio`], mib));
    return rows;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Formats the rows as a Markdown table with tsvm's ratio to QEMU. */
export function blkTable(rows: BlkRow[]): string {
  const q = rows.find((r) => r.name.startsWith('qemu'));
  const lines = [
    '| virtio-blk dd, raw image | write MiB/s (s) | read MiB/s (s) | write / QEMU | read / QEMU |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const wr = q ? `${(r.writeMiBps / q.writeMiBps).toFixed(3)}x` : 'n/a', rr = q ? `${(r.readMiBps / q.readMiBps).toFixed(3)}x` : 'n/a';
    lines.push(`| ${r.name} (${r.bytes / 1048576} MiB) | ${r.writeMiBps.toFixed(1)} (${r.writeSeconds.toFixed(1)}) | ${r.readMiBps.toFixed(1)} (${r.readSeconds.toFixed(1)}) | ${wr} | ${rr} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(REPO_ROOT, 'dist', 'bench', 'virtio-blk.js')) {
  const mib = Number(process.argv[2] ?? 256);
  process.stdout.write(`${blkTable(await benchVirtioBlk(mib))}\n`);
}
