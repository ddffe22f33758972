/**
 * `tsvm demo`: the quick-start job. Fetches Debian's riscv64 busybox-static
 * (verified against the archive) and runs a few of its applets on tsvm's
 * process VM, showing what a real foreign binary does here.
 */
import path from 'node:path';
import fs from 'node:fs';
import { DebianArchive, defaultCacheDir } from '../images/debian-archive.js';
import { ImageError } from '../images/errors.js';
import { execCommand } from './exec-command.js';

/** Runs the demo; returns the exit status. */
export async function demoCommand(opts: { mirror?: string }): Promise<number> {
  const root = path.join(defaultCacheDir(), 'roots', 'busybox-static');
  try {
    const archive = new DebianArchive(opts.mirror !== undefined ? { mirror: opts.mirror } : {});
    await archive.installRoot(['busybox-static'], root);
  } catch (e) {
    if (e instanceof ImageError) { process.stderr.write(`tsvm: ${e.message}\n`); return 1; }
    throw e;
  }
  const bb = path.join(root, 'bin', 'busybox');
  if (!fs.existsSync(bb)) { process.stderr.write(`tsvm: ${bb} missing after install\n`); return 1; }
  const runs: string[][] = [
    ['uname', '-m', '-s'],
    ['echo', 'Hello from Debian riscv64 busybox, running on tsvm'],
    ['sh', '-c', 'i=0; s=0; while [ $i -lt 1000 ]; do s=$((s+i)); i=$((i+1)); done; echo "sum 0..999 = $s"'],
    ['sha256sum', bb],
    ['date', '-u', '-d', '@0'],
  ];
  let status = 0;
  for (const argv of runs) {
    process.stdout.write(`\n$ busybox ${argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
    const rc = execCommand(bb, argv, { trace: false, memoryBytes: 256 * 1024 * 1024 });
    if (rc !== 0) { process.stdout.write(`(exit status ${rc})\n`); status = rc; }
  }
  return status;
}
