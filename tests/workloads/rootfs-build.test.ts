/**
 * Workload: the root filesystems of the built-in images, built from
 * Debian trixie's riscv64 packages (src/images/rootfs-build.ts) and run on
 * tsvm's process VM, with qemu-riscv64 -L as the oracle:
 * - busybox: `/bin/sh -c 'echo hi; ls /'` gives the same output and status
 *   under tsvm exec and under qemu-riscv64;
 * - debian (mmdebstrap's minbase): every package of the selection is `ii`
 *   in dpkg's database, as dpkg-query reports it both under tsvm and under
 *   qemu-riscv64; `apt-get --version` and `bash -c 'echo ok'` work under
 *   tsvm exec. This build runs dpkg and every maintainer script inside tsvm
 *   and takes many minutes.
 * Needs network access to the mirror of the host's apt configuration (or
 * $TSVM_MIRROR) unless the .debs are cached (see defaultCacheDir). Both
 * roots are built afresh into temporary directories.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mirrorConfigured } from '../helpers/mirror.js';
import { DebianArchive } from '../../src/images/debian-archive.js';
import { buildBusyboxRootfs, buildDebianRootfs, IMAGE_PATH, selectMinbase } from '../../src/images/rootfs-build.js';
import { ImageError } from '../../src/images/errors.js';
import { requireQemu, requireTsvm, runQemu, runTsvm, type RunResult } from '../helpers/guest-run.js';

const noMirror = !mirrorConfigured() && 'no Debian mirror configured';
const notRoot = process.getuid?.() !== 0 && 'the Debian build needs root';

/** A fresh temporary directory; `dest` inside it does not exist yet. */
function tmpBase(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tsvm-rootfs-${tag}-`));
}

/** Compare a tsvm run with the qemu oracle's: same stdout and status. */
function assertSame(tsvm: RunResult, qemu: RunResult, what: string): void {
  assert.equal(qemu.status, 0, `${what}: qemu status (stderr: ${qemu.stderr})`);
  assert.equal(tsvm.stdout.toString('utf8'), qemu.stdout.toString('utf8'), `${what}: stdout (tsvm stderr: ${tsvm.stderr.slice(-500)})`);
  assert.equal(tsvm.status, qemu.status, `${what}: status`);
}

test('busybox rootfs: sh -c "echo hi; ls /" matches qemu-riscv64', { skip: noMirror, timeout: 600_000 }, async () => {
  requireTsvm();
  requireQemu();
  const base = tmpBase('busybox');
  try {
    const dest = path.join(base, 'root');
    const r = await buildBusyboxRootfs(dest);
    assert.equal(r.dir, dest);
    assert.deepEqual(r.config, { Cmd: ['sh'], Env: [`PATH=${IMAGE_PATH}`] });
    assert.deepEqual(r.packages.map((p) => p.name), ['busybox-static']);
    assert.equal(r.cached, false);
    assert.equal(fs.readlinkSync(path.join(dest, 'usr', 'bin', 'sh')), 'busybox');
    assert.match(fs.readFileSync(path.join(dest, 'etc', 'passwd'), 'utf8'), /^root:x:0:0:/);
    assert.equal(fs.statSync(path.join(dest, 'tmp')).mode & 0o7777, 0o1777);
    assert.match(fs.readFileSync(`${dest}.stamp`, 'utf8'), /^busybox-static /m, 'the stamp beside the root records the package set');
    // The guest's view: the same under tsvm and under QEMU.
    const args = ['-c', 'echo hi; ls /'];
    const [tsvm, qemu] = await Promise.all([runTsvm('/bin/sh', { root: dest, args }), runQemu('/bin/sh', { root: dest, args })]);
    assertSame(tsvm, qemu, 'sh -c "echo hi; ls /"');
    assert.match(tsvm.stdout.toString('utf8'), /^hi\nbin\n(.*\n)*usr\nvar\n$/);
    // Building the same package set again reuses the root.
    const again = await buildBusyboxRootfs(dest);
    assert.equal(again.cached, true);
    // A directory that is not a tsvm-built root is never replaced.
    const foreign = path.join(base, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'keep'), 'x');
    await assert.rejects(buildBusyboxRootfs(foreign), (e: unknown) => e instanceof ImageError && /refusing to replace/.test(e.message));
    assert.equal(fs.readFileSync(path.join(foreign, 'keep'), 'utf8'), 'x');
    assert.deepEqual(fs.readdirSync(base).filter((n) => n.includes('.part-')), [], 'no temporary tree left behind');
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

// About 20 minutes on the 2-core CI machine (dpkg configures 77 packages inside tsvm): opt-in, not in test:all.
const notSlow = process.env['TSVM_SLOW_TESTS'] !== '1' && 'the Debian minbase build takes about 20 minutes: TSVM_SLOW_TESTS=1 (npm run test:slow) runs it';
test('debian minbase rootfs: all packages ii (tsvm and qemu agree), apt-get and bash run', { skip: noMirror || notRoot || notSlow, timeout: 5_400_000 }, async () => {
  requireTsvm();
  requireQemu();
  const archive = new DebianArchive({ progress: false });
  const expected = await archive.resolveDeps(selectMinbase(await archive.index()));
  const base = tmpBase('debian');
  try {
    const dest = path.join(base, 'root');
    const t0 = performance.now();
    const r = await buildDebianRootfs(dest);
    const secs = (performance.now() - t0) / 1000;
    process.stderr.write(`# debian minbase rootfs: ${r.packages.length} packages built in ${secs.toFixed(0)} s\n`);
    assert.deepEqual(r.config, { Cmd: ['bash'], Env: [`PATH=${IMAGE_PATH}`] });
    assert.deepEqual(r.packages.map((p) => p.name).sort(), expected.map((p) => p.name).sort());
    for (const n of ['apt', 'dpkg', 'bash', 'base-files', 'perl-base', 'coreutils']) {
      assert.ok(r.packages.some((p) => p.name === n), `${n} selected`);
    }
    // Build-only files are gone; ownership and modes are the packages'.
    assert.ok(!fs.existsSync(path.join(dest, 'usr', 'sbin', 'policy-rc.d')), 'policy-rc.d removed');
    assert.deepEqual(fs.readdirSync(path.join(dest, 'var', 'cache', 'apt', 'archives')).filter((n) => n.endsWith('.deb')), []);
    assert.equal(fs.statSync(path.join(dest, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(fs.statSync(path.join(dest, 'usr', 'bin', 'su')).mode & 0o4000, 0o4000, 'su is setuid');
    assert.match(fs.readFileSync(path.join(dest, 'etc', 'apt', 'sources.list.d', 'debian.sources'), 'utf8'), /^Suites: trixie trixie-updates$/m);
    // dpkg's view of its database, under tsvm and under the QEMU oracle.
    const query = ['-W', '-f', '${db:Status-Abbrev}|${Package}\\n'];
    const env = { PATH: IMAGE_PATH };
    const [tsvm, qemu] = await Promise.all([
      runTsvm('/usr/bin/dpkg-query', { root: dest, args: query, env, timeoutMs: 600_000 }),
      runQemu('/usr/bin/dpkg-query', { root: dest, args: query, env, timeoutMs: 600_000 }),
    ]);
    assertSame(tsvm, qemu, 'dpkg-query -W');
    const lines = tsvm.stdout.toString('utf8').trim().split('\n');
    assert.equal(lines.length, expected.length, 'dpkg lists exactly the selection');
    const notInstalled = lines.filter((l) => !l.startsWith('ii |'));
    assert.deepEqual(notInstalled, [], 'every package is ii');
    // dpkg -l's own listing says ii for each.
    const list = await runTsvm('/usr/bin/dpkg', { root: dest, args: ['-l'], env: { ...env, COLUMNS: '200' }, timeoutMs: 600_000 });
    assert.equal(list.status, 0, list.stderr);
    assert.equal(list.stdout.toString('utf8').split('\n').filter((l) => l.startsWith('ii ')).length, expected.length);
    const apt = await runTsvm('/usr/bin/apt-get', { root: dest, args: ['--version'], env, timeoutMs: 600_000 });
    assert.equal(apt.status, 0, apt.stderr);
    assert.match(apt.stdout.toString('utf8'), /^apt \d+\.\d+/);
    const bash = await runTsvm('/bin/bash', { root: dest, args: ['-c', 'echo ok'], env, timeoutMs: 600_000 });
    assert.equal(bash.status, 0, bash.stderr);
    assert.equal(bash.stdout.toString('utf8'), 'ok\n');
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
