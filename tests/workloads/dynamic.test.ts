/**
 * Workload: dynamically linked Debian trixie riscv64 programs. lua5.4 and
 * sqlite3 are installed with their dependencies into roots under
 * .cache/roots/ by DebianArchive.installRoot, then run under
 * `tsvm exec --root ROOT /usr/bin/...` and `qemu-riscv64 -L ROOT
 * ROOT/usr/bin/...` on the scripts in tests/workloads/dynamic/; stdout and
 * the exit status must be identical (and match what the scripts are known
 * to produce in a few places, so that a broken oracle cannot pass).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DebianArchive } from '../../src/images/debian-archive.js';
import { REPO_ROOT } from '../helpers/toolchain.js';
import { firstDifference, freshDir, requireQemu, requireTsvm, runQemu, runTsvm, type RunOptions, type RunResult } from '../helpers/guest-run.js';

const SCRIPTS = path.join(REPO_ROOT, 'tests', 'workloads', 'dynamic');
const ROOTS = path.join(REPO_ROOT, '.cache', 'roots');

/** Installs `pkgs` (with dependencies) into .cache/roots/NAME; returns the root. */
async function root(name: string, pkgs: string[]): Promise<string> {
  const dir = path.join(ROOTS, name);
  await new DebianArchive({ progress: false }).installRoot(pkgs, dir);
  return dir;
}

/** Runs `program` in `rootDir` under both emulators in fresh working dirs inside the root, with `files` copied there. */
async function runBoth(rootDir: string, program: string, files: string[], opts: RunOptions): Promise<{ tsvm: RunResult; qemu: RunResult }> {
  const dirs = [freshDir(rootDir, 'dyn-tsvm'), freshDir(rootDir, 'dyn-qemu')];
  try {
    for (const d of dirs) for (const f of files) fs.copyFileSync(path.join(SCRIPTS, f), path.join(d, f));
    const [tsvm, qemu] = await Promise.all([
      runTsvm(program, { ...opts, root: rootDir, cwd: dirs[0] }),
      runQemu(program, { ...opts, root: rootDir, cwd: dirs[1] }),
    ]);
    return { tsvm, qemu };
  } finally {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}

function assertSame(what: string, tsvm: RunResult, qemu: RunResult): void {
  assert.ok(!tsvm.timedOut, `${what}: tsvm timed out`);
  if (!tsvm.stdout.equals(qemu.stdout)) {
    assert.fail(`${what}: stdout differs, ${firstDifference(tsvm.stdout, qemu.stdout)}\ntsvm status ${tsvm.status}, stderr: ${tsvm.stderr.trim().split('\n').slice(-5).join('\n')}`);
  }
  assert.equal(tsvm.status, qemu.status, `${what}: exit status; tsvm stderr: ${tsvm.stderr.trim()}`);
}

describe('dynamically linked Debian programs: tsvm vs qemu-riscv64', { concurrency: 1 }, () => {
  test('lua5.4 script (strings, tables, closures, coroutines, math, float formatting, file io)', { timeout: 300_000 }, async () => {
    requireQemu();
    requireTsvm();
    const r = await root('lua5.4', ['lua5.4']);
    const { tsvm, qemu } = await runBoth(r, '/usr/bin/lua5.4', ['script.lua'], { args: ['script.lua'], env: { TSVM_LUA_VAR: 'from-env' }, timeoutMs: 240_000 });
    const q = qemu.stdout.toString();
    assert.equal(qemu.status, 3, `qemu: lua exit status (stderr: ${qemu.stderr})`);
    assert.match(q, /^finished$/m, 'qemu: the script ran to the end');
    assert.match(q, /^46368 42 msg$/m, 'qemu: fib(24) and pcall');
    assert.match(q, /^1971-01-01 00:00:00 true$/m, 'qemu: os.date');
    assertSame('lua5.4 script.lua', tsvm, qemu);
  });

  test('sqlite3: create, insert, aggregate, window, json, transaction', { timeout: 300_000 }, async () => {
    requireQemu();
    requireTsvm();
    const r = await root('sqlite3', ['sqlite3']);
    const sql = fs.readFileSync(path.join(SCRIPTS, 'queries.sql'));
    const { tsvm, qemu } = await runBoth(r, '/usr/bin/sqlite3', [], { args: ['-bail', 'test.db'], stdin: sql, timeoutMs: 240_000 });
    const q = qemu.stdout.toString();
    assert.equal(qemu.status, 0, `qemu: sqlite3 status (stderr: ${qemu.stderr})`);
    assert.match(q, /^502\|/m, 'qemu: 502 rows inserted');
    assert.match(q, /^integrity_check\nok$/m, 'qemu: integrity check ran');
    assertSame('sqlite3 queries.sql', tsvm, qemu);
  });
});
