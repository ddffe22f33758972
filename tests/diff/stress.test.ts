/**
 * Stress: dynamically linked PIE programs (glibc: atomics, qsort, strtod,
 * malloc churn, setjmp, file I/O with unlink, signals) run many times under
 * `tsvm exec --root` while the host is loaded by busy processes at normal
 * priority, each run compared with qemu-riscv64's output and exit status.
 *
 * This is where issue 13's intermittent failure lived: tsvm exec lowers the
 * priority of V8's worker threads (host/compiler-threads.ts), and when the
 * guest had ended the process waited for the event loop to drain, which in
 * Node means waiting for every queued background task (TurboFan tier-up of
 * the JIT's wasm units). With the cores taken by normal-priority work those
 * nice-19 threads barely ran, and tsvm sat for minutes after the guest's
 * last write. A run that does not finish within RUN_TIMEOUT_MS fails here.
 *
 * The order of the runs is shuffled with a printed seed (STRESS_SEED);
 * STRESS_ROUNDS sets how many times each program runs. The load makes this
 * a JIT test: it runs in the suite's JIT-default pass only.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prepareDynamicPrograms, type DynamicProgram } from '../helpers/dynamic-programs.js';
import { compile } from '../helpers/toolchain.js';
import { Prng } from '../helpers/prng.js';
import {
  ensureSysroot, firstDifference, freshDir, mapLimit, requireQemu, requireTsvm, runHost, runTsvm,
  TSVM_CLI, tsvmEnv,
} from '../helpers/guest-run.js';

const PROGRAMS = ['atomics.c', 'qsort.c', 'printf_strtod.c', 'malloc.c', 'setjmp.c', 'fileio.c', 'signals.c'];
const ROUNDS = Number(process.env['STRESS_ROUNDS'] ?? 2);
const SEED = Number(process.env['STRESS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
/** Generous: a run takes seconds even on a loaded 2-core host; the hang took minutes. */
const RUN_TIMEOUT_MS = 150_000;
const jitMode = process.env['TSVM_JIT'];
const inJitPass = jitMode === undefined || jitMode === 'on';

/** Starts `n` busy processes at normal priority (the load); returns them. */
function startLoad(n: number): ChildProcess[] {
  return Array.from({ length: n }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

describe('tsvm exec under load', { concurrency: 1 }, () => {
  let root = '';
  const programs: DynamicProgram[] = [];
  let load: ChildProcess[] = [];

  before(async () => {
    if (!inJitPass) return;
    requireQemu();
    requireTsvm();
    root = ensureSysroot();
    programs.push(...await prepareDynamicPrograms(root, PROGRAMS, 'stress'));
  });

  after(() => { for (const p of load) p.kill('SIGKILL'); });

  test('glibc programs give QEMU\'s output on every run, and every run ends', { skip: !inJitPass && `TSVM_JIT=${jitMode}: the stress runs in the JIT-default pass`, timeout: 900_000 * Math.max(2, ROUNDS) }, async () => {
    process.stdout.write(`# stress: STRESS_SEED=${SEED} STRESS_ROUNDS=${ROUNDS}\n`);
    const rng = new Prng(SEED);
    const runs = Array.from({ length: ROUNDS }, () => programs).flat();
    for (let i = runs.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [runs[i], runs[j]] = [runs[j]!, runs[i]!];
    }
    // With the two runs, one more busy process than there are cores: every core has normal-priority work.
    load = startLoad(Math.max(1, os.availableParallelism() - 1));
    const failures: string[] = [];
    let done = 0;
    await mapLimit(runs, 2, async (p, i) => {
      const before = failures.length;
      const cwd = freshDir(root, 'stress');
      try {
        const r = await runTsvm(p.guest, { root, cwd, timeoutMs: RUN_TIMEOUT_MS });
        const tail = r.stderr.trim().split('\n').slice(-3).join(' | ');
        if (r.timedOut) failures.push(`run ${i} ${p.name}: no exit within ${RUN_TIMEOUT_MS / 1000} s (stdout ${r.stdout.length} bytes; qemu ${p.ref.stdout.length})`);
        else if (!r.stdout.equals(p.ref.stdout)) failures.push(`run ${i} ${p.name}: stdout differs, ${firstDifference(r.stdout, p.ref.stdout)}; status ${r.status}; stderr: ${tail}`);
        else if (r.status !== p.ref.status) failures.push(`run ${i} ${p.name}: status ${r.status}, qemu ${p.ref.status}; stderr: ${tail}`);
      } finally {
        fs.rmSync(cwd, { recursive: true, force: true });
      }
      done++;
      if (failures.length > before) process.stdout.write(`# stress: ${failures[failures.length - 1]!}\n`);
      if (done % 20 === 0 || done === runs.length) process.stdout.write(`# stress: ${done} of ${runs.length} runs, ${failures.length} failed\n`);
    });
    for (const p of load) p.kill('SIGKILL');
    load = [];
    assert.deepEqual(failures, [], `${failures.length} of ${runs.length} runs failed (STRESS_SEED=${SEED})`);
  });

  test('tsvm exec ends when the guest ends, whatever host work is still pending', async () => {
    requireTsvm();
    const prog = compile({ sources: ['env_args.c'], linkage: 'static' });
    const probe = path.resolve('dist/tests/helpers/pending-work-probe.js');
    const t = await runHost(process.execPath, ['--import', probe, TSVM_CLI, 'exec', prog, '7'], { env: tsvmEnv(), timeoutMs: 120_000 });
    assert.ok(!t.stderr.includes('pending-work-probe'), `tsvm outlived its guest: ${t.stderr.trim()}`);
    assert.equal(t.status, 7, `the guest's exit status; stderr: ${t.stderr.trim()}`);
  });
});
