/**
 * Workload: `od` and `wc`, the two applets of issue 13, from Debian trixie's
 * riscv64 busybox-static and coreutils, under `tsvm exec --root` and
 * `qemu-riscv64 -L` on the same regular file and on a pipe. stdout, the exit
 * status and (for busybox's error) stderr must be identical, and match what
 * each implementation is known to print, so that a broken oracle cannot pass.
 *
 * What issue 13 saw was not a difference between the emulators: busybox
 * 1.37 rejects `-t x1z` itself (bb_strtou reads "1z" as out of range) and
 * pads `wc` columns to a fixed width of 9 when it prints more than one
 * count, under QEMU as under tsvm. The dump with a `>text<` column and the
 * unpadded `2000 8893 FILE` are GNU coreutils' od and wc, which sizes its
 * columns from st_size of regular files and uses width 7 for pipes. They
 * appear under qemu-riscv64 when a root without /usr/bin/od or wc runs them
 * through a shell: `-L` falls back to the host's file system for a path the
 * root lacks, and the host's x86-64 coreutils runs natively. tsvm's --root
 * confines the guest (the shell reports "not found"); the coreutils half of
 * this test is the real comparison of the stat family on files and pipes.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DebianArchive } from '../../src/images/debian-archive.js';
import { REPO_ROOT } from '../helpers/toolchain.js';
import { firstDifference, freshDir, requireQemu, requireTsvm, runQemu, runTsvm, type RunResult } from '../helpers/guest-run.js';

const ROOTS = path.join(REPO_ROOT, '.cache', 'roots');
const LINES = 2000;

/** The input: LINES numbered lines (the file's size sets GNU wc's column width). */
function input(): string {
  return Array.from({ length: LINES }, (_, i) => `${i} x`).join('\n') + '\n';
}

/** Runs `argv` in `root` under both emulators, in fresh directories holding f.txt and h.txt; stdin is a pipe. */
async function both(root: string, argv: string[], stdin = ''): Promise<{ tsvm: RunResult; qemu: RunResult }> {
  const dirs = [freshDir(root, 'odwc-tsvm'), freshDir(root, 'odwc-qemu')];
  try {
    for (const d of dirs) {
      fs.writeFileSync(path.join(d, 'f.txt'), input());
      fs.writeFileSync(path.join(d, 'h.txt'), 'hello world\n');
    }
    const [prog, ...args] = argv as [string, ...string[]];
    const [tsvm, qemu] = await Promise.all([
      runTsvm(prog, { root, args, cwd: dirs[0], stdin, timeoutMs: 120_000 }),
      runQemu(prog, { root, args, cwd: dirs[1], stdin, timeoutMs: 120_000 }),
    ]);
    return { tsvm, qemu };
  } finally {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}

function assertSame(what: string, r: { tsvm: RunResult; qemu: RunResult }, stderrToo = false): string {
  assert.ok(!r.tsvm.timedOut, `${what}: tsvm timed out`);
  if (!r.tsvm.stdout.equals(r.qemu.stdout)) assert.fail(`${what}: stdout differs, ${firstDifference(r.tsvm.stdout, r.qemu.stdout)}`);
  assert.equal(r.tsvm.status, r.qemu.status, `${what}: exit status; tsvm stderr: ${r.tsvm.stderr.trim()}`);
  if (stderrToo) assert.equal(r.tsvm.stderr, r.qemu.stderr, `${what}: stderr`);
  return r.qemu.stdout.toString();
}

const size = Buffer.byteLength(input());

describe('od and wc (issue 13): tsvm vs qemu-riscv64', { concurrency: 1 }, () => {
  let busybox = '';
  let coreutils = '';
  before(async () => {
    requireQemu();
    requireTsvm();
    const archive = new DebianArchive({ progress: false });
    busybox = path.join(ROOTS, 'busybox-static');
    await archive.installRoot(['busybox-static'], busybox);
    coreutils = path.join(ROOTS, 'coreutils');
    await archive.installRoot(['coreutils'], coreutils);
  });

  test('busybox od -t x1z: busybox itself refuses the type string, under both', { timeout: 300_000 }, async () => {
    const r = await both(busybox, ['/usr/bin/busybox', 'od', '-A', 'x', '-t', 'x1z', 'h.txt']);
    assertSame('busybox od -t x1z', r, true);
    assert.equal(r.qemu.status, 1);
    assert.match(r.qemu.stderr, /invalid type string 'x1z'; 4294967295-byte integral type is not supported/);
    const ok = assertSame('busybox od -t x1', await both(busybox, ['/usr/bin/busybox', 'od', '-A', 'x', '-t', 'x1', 'h.txt']));
    assert.match(ok, /^000000 68 65 6c 6c 6f 20 77 6f 72 6c 64 0a\n00000c\n$/);
  });

  test('busybox wc pads every column to 9 on files and pipes, under both', { timeout: 300_000 }, async () => {
    const file = assertSame('busybox wc -l -c FILE', await both(busybox, ['/usr/bin/busybox', 'wc', '-l', '-c', 'f.txt']));
    assert.equal(file, `${String(LINES).padStart(9)} ${String(size).padStart(9)} f.txt\n`);
    const pipe = assertSame('busybox wc -l -c <pipe', await both(busybox, ['/usr/bin/busybox', 'wc', '-l', '-c'], input()));
    assert.equal(pipe, `${String(LINES).padStart(9)} ${String(size).padStart(9)}\n`);
  });

  test('coreutils od -t x1z prints the >text< column', { timeout: 300_000 }, async () => {
    const out = assertSame('od -t x1z', await both(coreutils, ['/usr/bin/od', '-A', 'x', '-t', 'x1z', 'h.txt']));
    assert.equal(out, '000000 68 65 6c 6c 6f 20 77 6f 72 6c 64 0a              >hello world.<\n00000c\n');
  });

  test('coreutils wc sizes its columns from st_size for a file and uses width 7 for a pipe', { timeout: 300_000 }, async () => {
    const file = assertSame('wc -l -c FILE', await both(coreutils, ['/usr/bin/wc', '-l', '-c', 'f.txt']));
    const w = String(size).length;
    assert.equal(file, `${String(LINES).padStart(w)} ${size} f.txt\n`);
    const pipe = assertSame('wc -l -c <pipe', await both(coreutils, ['/usr/bin/wc', '-l', '-c'], input()));
    assert.equal(pipe, `${String(LINES).padStart(7)} ${String(size).padStart(7)}\n`);
  });
});
