/**
 * Differential test: every program in tests/programs, linked static,
 * static-pie and dynamic, runs under tsvm and under qemu-riscv64; stdout
 * and the exit status must be identical. Dynamic programs run inside the
 * cross-glibc sysroot (`tsvm exec --root` / `qemu-riscv64 -L`). The
 * threshold-0 and interpreter passes run the static linkage only: the
 * engines run the same program code in each, and the loader and ld.so
 * paths of the other two do not depend on the engine.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { compile, LIBC_LINKAGES, listPrograms, type Linkage } from '../helpers/toolchain.js';
import { DEFAULT_ENGINE_PASS, ensureSysroot, firstDifference, freshDir, installInRoot, requireQemu, requireTsvm, runQemu, runTsvm, type RunOptions } from '../helpers/guest-run.js';

/** One way of running a program: arguments, environment, stdin, expected exit status. */
interface Case {
  program: string;
  label: string;
  args?: string[];
  env?: Record<string, string>;
  stdin?: string;
  /** The exit status both runs must have (besides being equal). */
  status?: number;
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const program of listPrograms()) {
    if (program === 'env_args.c') {
      out.push({ program, label: 'env_args exit 7', args: ['7', 'two words', ''], env: { TSVM_TEST_VAR: 'value=with=equals', TSVM_TEST_OTHER: 'x' }, status: 7 });
      out.push({ program, label: 'env_args _exit 3', args: ['3', '_exit'], status: 3 });
      out.push({ program, label: 'env_args exit 255', args: ['255'], status: 255 });
      out.push({ program, label: 'env_args exit 256 wraps to 0', args: ['256'], status: 0 });
    } else {
      out.push({ program, label: program.replace(/\.[cS]$/, ''), status: 0 });
    }
  }
  return out;
}

const CONCURRENCY = Number(process.env['TSVM_TEST_JOBS'] ?? 2);

/**
 * Known defects of the oracle (QEMU 7.2), corrected in QEMU's output so
 * that tsvm is held to the specification there:
 *  - ctzw: QEMU 7.2 counts trailing zeros of the whole 64-bit register when
 *    its low word is zero (e.g. ctzw(1 << 63) = 63); the Zbb spec result
 *    is 32 whenever bits 31..0 are all zero.
 */
function correctOracle(program: string, out: Buffer): Buffer {
  if (program !== 'zb.c') return out;
  const fixed = out.toString('latin1').replace(/^(ctzw +([0-9a-f]{16}) -> )([0-9a-f]{16})$/gm, (line, head: string, x: string) =>
    (BigInt('0x' + x) & 0xffffffffn) === 0n ? `${head}${(32).toString(16).padStart(16, '0')}` : line);
  return Buffer.from(fixed, 'latin1');
}

async function runBoth(c: Case, linkage: Linkage): Promise<void> {
  const binary = compile({ sources: [c.program], linkage });
  let programPath = binary;
  let root: string | undefined;
  if (linkage === 'dynamic') {
    root = ensureSysroot();
    programPath = installInRoot(root, binary, `/progs/${path.basename(binary)}`);
  }
  const dirs = [freshDir(root, 'prog-tsvm'), freshDir(root, 'prog-qemu')];
  try {
    const base: RunOptions = { root, args: c.args, env: c.env, stdin: c.stdin, timeoutMs: 240_000 };
    const [tsvm, qemuRaw] = await Promise.all([
      runTsvm(programPath, { ...base, cwd: dirs[0] }),
      runQemu(programPath, { ...base, cwd: dirs[1] }),
    ]);
    const qemu = { ...qemuRaw, stdout: correctOracle(c.program, qemuRaw.stdout) };
    const what = `${c.label} [${linkage}]`;
    assert.ok(!qemu.timedOut, `${what}: qemu timed out`);
    if (c.status !== undefined) assert.equal(qemu.status, c.status, `${what}: qemu exit status (harness problem?) stderr: ${qemu.stderr}`);
    assert.ok(!tsvm.timedOut, `${what}: tsvm timed out after ${Math.round(tsvm.ms)} ms`);
    const tsvmErr = tsvm.stderr.trim().split('\n').slice(-5).join('\n');
    if (!tsvm.stdout.equals(qemu.stdout)) {
      assert.fail(`${what}: stdout differs (tsvm ${tsvm.stdout.length} bytes, qemu ${qemu.stdout.length} bytes), ${firstDifference(tsvm.stdout, qemu.stdout)}\n  tsvm status ${tsvm.status}, stderr: ${tsvmErr}`);
    }
    assert.equal(tsvm.status, qemu.status, `${what}: exit status tsvm ${tsvm.status} vs qemu ${qemu.status}; tsvm stderr: ${tsvmErr}`);
  } finally {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}

describe('guest programs: tsvm vs qemu-riscv64', { concurrency: CONCURRENCY }, () => {
  test('toolchain and emulators are present', () => {
    requireQemu();
    requireTsvm();
  });
  for (const c of cases()) {
    for (const linkage of DEFAULT_ENGINE_PASS ? LIBC_LINKAGES : ['static' as const]) {
      test(`${c.label} [${linkage}]`, { timeout: 300_000 }, () => runBoth(c, linkage));
    }
  }
});
