/**
 * Self-modifying code under the JIT: tests/programs/smc.c (code written
 * into mmap'd buffers, patched while hot, patched by itself in its own
 * page, patched next to frequently written data, written by read(),
 * patched by a page-straddling store, replaced by munmap/mmap, MAP_FIXED
 * and mprotect) runs under qemu-riscv64, which handles self-modifying code
 * correctly, and under tsvm three ways: the JIT at a low threshold (32,
 * the process VM's default once; the patched loops never reach today's
 * 1,000), the JIT translating every block at its first run
 * (--jit-threshold=0), and the interpreter (--jit=off). stdout and the exit
 * status must equal QEMU's in every mode, and in the JIT modes `--stats`
 * must report invalidations, so that the test proves the invalidation path
 * ran (a JIT that never translated the patched code would pass the output
 * comparison trivially).
 *
 * The floor is MIN_INVALIDATIONS rather than 1 because the counter also
 * counts the pages released at process exit (the kernel's writes to
 * translated pages when it frees them): any program shows a few dozen.
 * smc.c's first section alone patches a loop that has been translated
 * (40 iterations per call, more than the threshold of 32 that the first
 * mode names) about 1800 times, each patch invalidating its page.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../helpers/toolchain.js';
import { firstDifference, requireQemu, requireTsvm, runQemu, runTsvm, type RunResult } from '../helpers/guest-run.js';

const CONCURRENCY = Number(process.env['TSVM_TEST_JOBS'] ?? 2);
/** Fewest invalidations a JIT run of smc.c must report (see above). */
const MIN_INVALIDATIONS = 1000;

/** One way of running tsvm. */
interface Mode {
  label: string;
  flags: string[];
  /** True if the JIT is on: --stats must show translated units and invalidations. */
  jit: boolean;
}

const MODES: readonly Mode[] = [
  // Explicit --jit=on: the suite also runs with TSVM_JIT=off in the environment.
  { label: 'jit --jit-threshold=32', flags: ['--jit=on', '--jit-threshold=32'], jit: true },
  { label: 'jit --jit-threshold=0', flags: ['--jit=on', '--jit-threshold=0'], jit: true },
  { label: 'interpreter --jit=off', flags: ['--jit=off'], jit: false },
];

/** The JIT counters from `tsvm exec --stats` stderr, or null if the line is missing. */
function jitStats(stderr: string): { units: number; invalidations: number } | null {
  const m = /^tsvm: jit: units=(\d+) .*\binvalidations=(\d+)/m.exec(stderr);
  return m === null ? null : { units: Number(m[1]), invalidations: Number(m[2]) };
}

const tail = (s: string): string => s.trim().split('\n').slice(-5).join('\n');

describe('self-modifying code: tsvm (JIT and interpreter) vs qemu-riscv64', { concurrency: CONCURRENCY }, () => {
  let binary = '';
  let qemu: RunResult | null = null;

  before(async () => {
    requireQemu();
    requireTsvm();
    binary = compile({ sources: ['smc.c'], linkage: 'static' });
    qemu = await runQemu(binary, { timeoutMs: 60_000 });
  });

  test('qemu runs the program to completion (oracle sanity)', () => {
    assert.ok(qemu !== null);
    assert.ok(!qemu.timedOut, 'qemu timed out');
    assert.equal(qemu.status, 0, `qemu exit status; stderr: ${qemu.stderr}`);
    assert.match(qemu.stdout.toString(), /^smc: done$/m);
    assert.match(qemu.stdout.toString(), /^remap: same address every time: yes$/m);
  });

  for (const mode of MODES) {
    test(`smc [${mode.label}]`, { timeout: 180_000 }, async () => {
      assert.ok(qemu !== null);
      const r = await runTsvm(binary, { tsvmFlags: ['--stats', ...mode.flags], timeoutMs: 150_000 });
      const what = `smc [${mode.label}]`;
      assert.ok(!r.timedOut, `${what}: tsvm timed out after ${Math.round(r.ms)} ms`);
      if (!r.stdout.equals(qemu.stdout)) {
        assert.fail(`${what}: stdout differs from qemu (tsvm ${r.stdout.length} bytes, qemu ${qemu.stdout.length} bytes), ` +
          `${firstDifference(r.stdout, qemu.stdout)}\n  tsvm status ${r.status}, stderr: ${tail(r.stderr)}`);
      }
      assert.equal(r.status, qemu.status, `${what}: exit status tsvm ${r.status} vs qemu ${qemu.status}; tsvm stderr: ${tail(r.stderr)}`);
      const stats = jitStats(r.stderr);
      if (mode.jit) {
        assert.ok(stats !== null, `${what}: no 'tsvm: jit: units=...' line in --stats output: ${tail(r.stderr)}`);
        assert.ok(stats.units > 0, `${what}: the JIT translated nothing: ${tail(r.stderr)}`);
        assert.ok(stats.invalidations >= MIN_INVALIDATIONS,
          `${what}: the JIT saw ${stats.invalidations} invalidations (expected at least ${MIN_INVALIDATIONS}): ` +
          `the patched code was not translated before it was overwritten: ${tail(r.stderr)}`);
      } else {
        assert.match(r.stderr, /^tsvm: jit: off$/m, `${what}: --jit=off did not turn the JIT off`);
      }
    });
  }
});
