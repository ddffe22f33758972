/**
 * The JIT's generated WebAssembly means the same whichever V8 tier runs it,
 * and a process VM run does not depend on host timing.
 *
 * Issue 13's intermittent SIGSEGV (address 0xc0, pc in ld.so or libc) came
 * only on a loaded host, which shifts when V8's background compiles finish:
 * every unit starts in Liftoff and is replaced by TurboFan code (with the
 * branch hints of host/wasm-features.ts) when it is hot and the compile has
 * finished, possibly while the guest runs. Here the glibc programs of the
 * stress test (tests/diff/stress.test.ts) run, dynamically linked, under
 * V8 configurations that pin that choice: TurboFan only, Liftoff only,
 * tier-up after the least execution (so units change tier mid-run), and no
 * background threads at all. Each run must give qemu-riscv64's output and
 * status, and every configuration must retire exactly the same number of
 * guest instructions with the same JIT counters (`tsvm exec --stats`): the
 * guest's path may not depend on which tier ran, nor on when.
 *
 * V8 options are the host Node's; this runs in the suite's JIT-default pass.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { prepareDynamicPrograms, type DynamicProgram } from '../helpers/dynamic-programs.js';
import {
  ensureSysroot, firstDifference, freshDir, mapLimit, requireQemu, requireTsvm, runHost,
  TSVM_CLI, tsvmEnv,
} from '../helpers/guest-run.js';

const PROGRAMS = ['atomics.c', 'qsort.c', 'printf_strtod.c', 'malloc.c', 'setjmp.c', 'fileio.c', 'signals.c'];
/** V8 configurations (Node options of the tsvm process); the first is the reference for the counts. */
const CONFIGS: { name: string; flags: string[] }[] = [
  { name: 'default', flags: [] },
  { name: 'TurboFan only', flags: ['--no-liftoff'] },
  { name: 'Liftoff only', flags: ['--liftoff-only'] },
  { name: 'earliest tier-up', flags: ['--wasm-tiering-budget=1'] },
  { name: 'no background threads', flags: ['--single-threaded'] },
];
const jitMode = process.env['TSVM_JIT'];
const inJitPass = jitMode === undefined || jitMode === 'on';

/** The run's `--stats` lines without the timings: instructions retired and the JIT's counters. */
function counts(stderr: string): string {
  const insns = /tsvm: stats: instructions=(\d+)/.exec(stderr)?.[1];
  const jit = /tsvm: jit: (.*)/.exec(stderr)?.[1]?.replace(/ compile-ms=[\d.]+/, '');
  assert.ok(insns !== undefined && jit !== undefined, `no --stats lines in: ${stderr.trim()}`);
  return `instructions=${insns} ${jit}`;
}

describe('the JIT under every V8 tier', { concurrency: 1 }, () => {
  let root = '';
  const programs: DynamicProgram[] = [];

  before(async () => {
    if (!inJitPass) return;
    requireQemu();
    requireTsvm();
    root = ensureSysroot();
    programs.push(...await prepareDynamicPrograms(root, PROGRAMS, 'tiers'));
  });

  test('QEMU\'s output, and the same instructions and JIT counters, in every configuration', {
    skip: !inJitPass && `TSVM_JIT=${jitMode}: V8's tiers matter to the JIT-default pass`, timeout: 1_800_000,
  }, async () => {
    const failures: string[] = [];
    await mapLimit(programs, 1, async (p) => { // one tsvm at a time: each has a core to itself
      let reference: string | null = null;
      for (const cfg of CONFIGS) {
        const cwd = freshDir(root, 'tiers');
        try {
          const argv = [...cfg.flags, TSVM_CLI, 'exec', '--stats', '--root', root, p.guest];
          const r = await runHost(process.execPath, argv, { cwd, env: tsvmEnv(), timeoutMs: 300_000 });
          const tail = r.stderr.trim().split('\n').slice(-3).join(' | ');
          if (r.timedOut) { failures.push(`${p.name} (${cfg.name}): no exit`); continue; }
          if (!r.stdout.equals(p.ref.stdout)) { failures.push(`${p.name} (${cfg.name}): stdout differs, ${firstDifference(r.stdout, p.ref.stdout)}; stderr: ${tail}`); continue; }
          if (r.status !== p.ref.status) { failures.push(`${p.name} (${cfg.name}): status ${r.status}, qemu ${p.ref.status}; stderr: ${tail}`); continue; }
          const c = counts(r.stderr);
          reference ??= c;
          if (c !== reference) failures.push(`${p.name} (${cfg.name}): ${c}; ${CONFIGS[0]!.name}: ${reference}`);
        } finally {
          fs.rmSync(cwd, { recursive: true, force: true });
        }
      }
    });
    assert.deepEqual(failures, [], `${failures.length} of ${programs.length * CONFIGS.length} runs differ`);
  });
});
