/**
 * Root filesystems for tsvm's built-in images, made from Debian's riscv64
 * packages (every .deb verified by the archive client, debian-archive.ts):
 *
 * - buildBusyboxRootfs: `busybox-static` unpacked, an applet symlink for each
 *   applet in /usr/bin (so /bin/sh), and a minimal /etc.
 * - buildDebianRootfs: what `mmdebstrap --variant=minbase` makes: every
 *   package with `Essential: yes` or `Priority: required`, plus `apt`, with
 *   their dependencies. Like debootstrap's first stage, their data.tar
 *   members are unpacked by hand so that dpkg and a shell exist; then dpkg
 *   itself, running inside tsvm's process VM (rootfs-tsvm.ts, never on the
 *   host), unpacks every package again to register it (/var/lib/dpkg/status,
 *   info/*.list, md5sums, maintainer scripts) and runs the maintainer scripts
 *   (`dpkg --unpack`, then `dpkg --configure --pending`), with a policy-rc.d
 *   that forbids starting services.
 *
 * Both build into a temporary sibling of `dest` and rename it into place, so
 * a failed build leaves nothing behind. A finished root is recorded in
 * `<dest>.stamp` (outside the root, so it is not part of the image) with its
 * package set; building the same set again returns the existing root.
 *
 * Ownership: the files must belong to root and to the system users the
 * packages name, so the Debian build needs to run as root on the host (it
 * fails with a clear message otherwise). The busybox root only has root's
 * files; built by another user they are owned by that user, which an image
 * layer records as 0:0 anyway.
 */

import * as crypto from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { busyboxApplets } from './default-guest.js';
import { extractDeb } from './deb.js';
import { DebianArchive, type PackageInfo } from './debian-archive.js';
import { ImageError } from './errors.js';
import { runInRoot, tailLines, type GuestRun } from './rootfs-tsvm.js';

/** The image configuration a root filesystem implies (OCI image-spec config `config` fields). */
export interface RootfsConfig {
  /** Default command. */
  Cmd: string[];
  /** Environment, KEY=VALUE. */
  Env: string[];
}

/** A finished root filesystem. */
export interface RootfsResult {
  /** The root directory (`dest`, resolved). */
  dir: string;
  /** The image config fields it implies. */
  config: RootfsConfig;
  /** The packages in it (resolved selection, install order). */
  packages: PackageInfo[];
  /** True when an earlier build of the same package set was reused. */
  cached: boolean;
}

/** Options shared by the builders. */
export interface RootfsOptions {
  /** Suite codename; default 'trixie'. */
  suite?: 'trixie';
  /** Archive root URL; default $TSVM_MIRROR or the host's apt configuration. */
  mirror?: string;
  /** Show a progress bar on stderr (only when it is a TTY); default false. */
  progress?: boolean;
  /** Cache directory of the archive client; default defaultCacheDir(). */
  cacheDir?: string;
  /** Host command that starts tsvm (see rootfs-tsvm.ts); default this Node.js and dist/src/cli/main.js. */
  tsvm?: string[];
  /** Archive keyring (null: signature not checked); default the Debian archive keyring. */
  keyring?: string | null;
}

/** Docker's PATH for Debian and busybox images. */
export const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Format of the `<dest>.stamp` file. */
const STAMP_HEADER = 'tsvm-rootfs 1';
/** Parallel downloads of .deb files. */
const DOWNLOADS = 4;
/** Where the .debs go inside the root while dpkg installs them (apt's cache directory). */
const DEB_DIR = 'var/cache/apt/archives';
/** policy-rc.d exit status 101: "action forbidden by policy" (invoke-rc.d(8), Debian Policy 9.3.3). */
const POLICY_RC_D = '#!/bin/sh\n# tsvm image build: no services start inside the build.\nexit 101\n';

/** The guest environment for dpkg and maintainer scripts (what mmdebstrap sets). */
function dpkgEnv(): Record<string, string> {
  return {
    PATH: IMAGE_PATH,
    HOME: '/root',
    LC_ALL: 'C.UTF-8',
    LANGUAGE: 'C.UTF-8',
    LANG: 'C.UTF-8',
    DEBIAN_FRONTEND: 'noninteractive',
    DEBCONF_NONINTERACTIVE_SEEN: 'true',
  };
}

/** The minbase selection: names of every `Essential: yes` or `Priority: required` package, plus `apt`, sorted. */
export function selectMinbase(index: ReadonlyMap<string, PackageInfo>): string[] {
  const names = new Set<string>(['apt']);
  for (const p of index.values()) {
    if (p.essential === true || p.priority === 'required') names.add(p.name);
  }
  return [...names].sort();
}

/** The stamp text recording a package set. */
function stampText(kind: string, pkgs: PackageInfo[]): string {
  return [STAMP_HEADER, kind, ...pkgs.map((p) => `${p.name} ${p.version} ${p.architecture} ${p.sha256}`).sort()].join('\n') + '\n';
}

/** A progress display: one bar whose label changes per stage; null when not wanted. */
class Progress {
  private readonly bar: cliProgress.SingleBar | null;
  private started = false;

  constructor(want: boolean) {
    this.bar = want && process.stderr.isTTY === true
      ? new cliProgress.SingleBar(
          { format: 'tsvm: {stage} [{bar}] {value}/{total} {item}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        )
      : null;
  }

  /** Begin a stage of `total` steps. */
  stage(stage: string, total: number): void {
    if (this.bar === null) return;
    if (this.started) this.bar.stop();
    this.bar.start(Math.max(total, 1), 0, { stage: stage.padEnd(9), item: '' });
    this.started = true;
  }

  /** One step done. */
  tick(item: string): void {
    this.bar?.increment(1, { item });
  }

  /** Remove the bar. */
  stop(): void {
    if (this.bar !== null && this.started) this.bar.stop();
    this.started = false;
  }
}

/** Whether `dest` may be built into: absent, an empty directory, or an earlier build (stamp present). */
async function checkDest(dest: string, stampFile: string): Promise<void> {
  const st = await fsp.lstat(dest).catch(() => null);
  if (st === null) return;
  if (!st.isDirectory()) throw new ImageError(`${dest}: exists and is not a directory`);
  if ((await fsp.readdir(dest)).length === 0) return;
  if ((await fsp.stat(stampFile).catch(() => null)) === null) {
    throw new ImageError(`${dest}: not empty and not a root filesystem tsvm built; refusing to replace it`);
  }
}

/**
 * Build into a temporary sibling of `dest` with `fill`, then put it in place
 * of `dest` and write the stamp; the temporary tree is removed on failure.
 */
async function buildAtomically(dest: string, stamp: string, fill: (tmp: string) => Promise<void>): Promise<boolean> {
  const stampFile = `${dest}.stamp`;
  if ((await fsp.readFile(stampFile, 'utf8').catch(() => null)) === stamp && (await fsp.stat(dest).catch(() => null))?.isDirectory()) {
    return true;
  }
  await checkDest(dest, stampFile);
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  await removeAbandonedParts(dest);
  const tmp = `${dest}.part-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    await fsp.mkdir(tmp, { mode: 0o755 });
    await fill(tmp);
    await fsp.rm(stampFile, { force: true });
    await fsp.rm(dest, { recursive: true, force: true });
    await fsp.rename(tmp, dest);
    await fsp.writeFile(`${stampFile}.part-${process.pid}`, stamp);
    await fsp.rename(`${stampFile}.part-${process.pid}`, stampFile);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
  return false;
}

/** Removes temporary trees of `dest` (`DEST.part-PID-…`) whose builder no longer runs (it was killed before its cleanup). */
export async function removeAbandonedParts(dest: string): Promise<void> {
  const prefix = `${path.basename(dest)}.part-`;
  for (const n of await fsp.readdir(path.dirname(dest)).catch(() => [] as string[])) {
    const pid = n.startsWith(prefix) ? Number(/^(\d+)-/.exec(n.slice(prefix.length))?.[1]) : NaN;
    if (Number.isInteger(pid) && pid > 0 && !processRuns(pid)) await fsp.rm(path.join(path.dirname(dest), n), { recursive: true, force: true });
  }
}

/** Whether process `pid` exists (kill(2) with signal 0: ESRCH when it does not). */
function processRuns(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code !== 'ESRCH'; }
}

/** Create the merged-/usr layout (bin, sbin, lib -> usr/...) Debian trixie uses. */
async function mergedUsr(root: string): Promise<void> {
  for (const d of ['bin', 'sbin', 'lib']) {
    await fsp.mkdir(path.join(root, 'usr', d), { recursive: true, mode: 0o755 });
    await fsp.symlink(`usr/${d}`, path.join(root, d));
  }
}

/** Whether this process runs as root on the host. */
function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Fetch every package (verified, cached by the archive client), a few at a time; returns the .deb paths in order. */
async function fetchAll(archive: DebianArchive, pkgs: PackageInfo[], progress: Progress): Promise<string[]> {
  progress.stage('download', pkgs.length);
  const out: string[] = new Array<string>(pkgs.length).fill('');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pkgs.length) {
      const i = next++;
      const p = pkgs[i] as PackageInfo;
      out[i] = await archive.fetchPackage(p);
      progress.tick(p.name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DOWNLOADS, pkgs.length) }, worker));
  return out;
}

/**
 * Build the busybox image's root: busybox-static unpacked, a symlink in
 * /usr/bin for each applet (so /bin/sh), a minimal /etc (passwd, group),
 * and the usual empty directories. Cmd is `sh`, like Docker's busybox.
 */
export async function buildBusyboxRootfs(dest: string, opts: RootfsOptions = {}): Promise<RootfsResult> {
  const dir = path.resolve(dest);
  const archive = new DebianArchive({ mirror: opts.mirror, suite: opts.suite, cacheDir: opts.cacheDir, progress: opts.progress ?? false, keyring: opts.keyring });
  const packages = await archive.resolveDeps(['busybox-static']);
  const config: RootfsConfig = { Cmd: ['sh'], Env: [`PATH=${IMAGE_PATH}`] };
  const progress = new Progress(opts.progress ?? false);
  const cached = await buildAtomically(dir, stampText('busybox', packages), async (root) => {
    const debs = await fetchAll(archive, packages, progress);
    progress.stage('unpack', debs.length);
    await mergedUsr(root);
    for (const [i, deb] of debs.entries()) {
      await extractDeb(deb, root, { preserve: isRoot() });
      progress.tick(packages[i]?.name ?? '');
    }
    progress.stop();
    const busybox = path.join(root, 'usr', 'bin', 'busybox');
    const applets = busyboxApplets(await fsp.readFile(busybox));
    if (applets === null || !applets.includes('sh')) throw new ImageError(`${busybox}: no applet table with sh found`);
    for (const a of applets) {
      if (a === 'busybox' || a.includes('/')) continue;
      const link = path.join(root, 'usr', 'bin', a);
      if ((await fsp.lstat(link).catch(() => null)) === null) await fsp.symlink('busybox', link);
    }
    for (const [d, mode] of [['etc', 0o755], ['root', 0o700], ['tmp', 0o1777], ['home', 0o755], ['var', 0o755], ['dev', 0o755], ['proc', 0o555], ['sys', 0o555]] as const) {
      await fsp.mkdir(path.join(root, d), { recursive: true });
      await fsp.chmod(path.join(root, d), mode);
    }
    // The account databases (passwd(5), group(5)) as Docker's busybox image has them.
    await fsp.writeFile(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n', { mode: 0o644 });
    await fsp.writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n', { mode: 0o644 });
  });
  progress.stop();
  return { dir, config, packages, cached };
}

/** Fail with the guest's own words when a guest run did not exit 0. */
function checkRun(run: GuestRun, what: string): void {
  if (run.status === 0) return;
  const why = tailLines(run.stderr, 3) || tailLines(run.stdout, 3) || 'no output';
  throw new ImageError(`${what} failed inside tsvm (exit ${run.status}): ${why}`);
}

/** The apt sources of the image: the build's mirror and suite (deb822, sources.list(5)). */
function aptSources(mirror: string, suite: string): string {
  return [
    'Types: deb',
    `URIs: ${mirror}`,
    `Suites: ${suite} ${suite}-updates`,
    'Components: main',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
  ].join('\n');
}

/**
 * Build a Debian minbase root (mmdebstrap --variant=minbase): the Essential
 * and required packages plus apt, registered with dpkg and configured by
 * dpkg running inside tsvm. Needs root on the host. Cmd is `bash`, like
 * Docker's debian image.
 */
export async function buildDebianRootfs(dest: string, opts: RootfsOptions = {}): Promise<RootfsResult> {
  const dir = path.resolve(dest);
  if (!isRoot()) {
    throw new ImageError('building the debian image needs root on the host: its files belong to root and system users, and ownership cannot be kept otherwise');
  }
  const suite = opts.suite ?? 'trixie';
  const archive = new DebianArchive({ mirror: opts.mirror, suite, cacheDir: opts.cacheDir, progress: false, keyring: opts.keyring });
  const selection = selectMinbase(await archive.index());
  const packages = await archive.resolveDeps(selection);
  const config: RootfsConfig = { Cmd: ['bash'], Env: [`PATH=${IMAGE_PATH}`] };
  const progress = new Progress(opts.progress ?? false);
  const run = (root: string, prog: string, args: string[], onLine?: (l: string) => void): Promise<GuestRun> =>
    runInRoot(root, prog, args, { env: dpkgEnv(), onLine, tsvm: opts.tsvm });
  try {
    const cached = await buildAtomically(dir, stampText(`debian ${suite} minbase`, packages), async (root) => {
      const debs = await fetchAll(archive, packages, progress);
      // Stage 1 (debootstrap's "extract"): data.tar of every package, by hand.
      progress.stage('extract', debs.length);
      await mergedUsr(root);
      for (const [i, deb] of debs.entries()) {
        await extractDeb(deb, root, { preserve: true });
        progress.tick(packages[i]?.name ?? '');
      }
      await prepareDpkg(root);
      // The .debs inside the root, for dpkg in the guest to read.
      const inRoot: string[] = [];
      await fsp.mkdir(path.join(root, DEB_DIR, 'partial'), { recursive: true });
      for (const deb of debs) {
        const name = path.basename(deb);
        await fsp.copyFile(deb, path.join(root, DEB_DIR, name));
        inRoot.push(`/${DEB_DIR}/${name}`);
      }
      // Stage 2: dpkg registers and unpacks every package, running the preinst scripts.
      progress.stage('unpack', packages.length);
      const forces = ['--force-depends', '--force-unsafe-io', '--force-confnew'];
      const onDpkgLine = (prefix: string) => (line: string): void => {
        const m = new RegExp(`^${prefix} ([^ :]+)`).exec(line);
        if (m) progress.tick(m[1] as string);
      };
      checkRun(await run(root, '/usr/bin/dpkg', [...forces, '--unpack', ...inRoot], onDpkgLine('Unpacking')), 'dpkg --unpack');
      // Stage 3: configure everything, in dpkg's dependency order.
      progress.stage('configure', packages.length);
      checkRun(await run(root, '/usr/bin/dpkg', [...forces, '--configure', '--pending'], onDpkgLine('Setting up')), 'dpkg --configure');
      progress.stop();
      await finish(root, archive.mirror, suite);
      await checkInstalled(root, packages, run);
    });
    return { dir, config, packages, cached };
  } finally {
    progress.stop();
  }
}

/** Set up what dpkg needs before its first run in the new root (as debootstrap and mmdebstrap do). */
async function prepareDpkg(root: string): Promise<void> {
  const dpkg = path.join(root, 'var', 'lib', 'dpkg');
  for (const d of ['info', 'updates', 'triggers', 'alternatives']) await fsp.mkdir(path.join(dpkg, d), { recursive: true });
  for (const f of ['status', 'available']) await fsp.writeFile(path.join(dpkg, f), '', { flag: 'a' });
  // The account databases, from base-passwd's masters (debootstrap does the same), so dpkg can resolve owners by name.
  for (const db of ['passwd', 'group']) {
    const target = path.join(root, 'etc', db);
    if ((await fsp.lstat(target).catch(() => null)) !== null) continue;
    const master = path.join(root, 'usr', 'share', 'base-passwd', `${db}.master`);
    if ((await fsp.stat(master).catch(() => null)) === null) throw new ImageError(`base-passwd's ${db}.master is missing from the root`);
    await fsp.copyFile(master, target);
    await fsp.chmod(target, 0o644);
  }
  await fsp.writeFile(path.join(root, 'usr', 'sbin', 'policy-rc.d'), POLICY_RC_D, { mode: 0o755 });
  await fsp.chmod(path.join(root, 'usr', 'sbin', 'policy-rc.d'), 0o755);
}

/** Tidy the configured root: remove build-only files, add apt sources. */
async function finish(root: string, mirror: string, suite: string): Promise<void> {
  await fsp.rm(path.join(root, 'usr', 'sbin', 'policy-rc.d'), { force: true });
  for (const n of await fsp.readdir(path.join(root, DEB_DIR))) {
    if (n.endsWith('.deb')) await fsp.rm(path.join(root, DEB_DIR, n), { force: true });
  }
  for (const f of ['var/lib/dpkg/status-old', 'var/lib/dpkg/available-old', 'var/cache/debconf/config.dat-old', 'var/cache/debconf/templates.dat-old']) {
    await fsp.rm(path.join(root, f), { force: true });
  }
  const sources = path.join(root, 'etc', 'apt', 'sources.list.d');
  await fsp.mkdir(sources, { recursive: true });
  await fsp.writeFile(path.join(sources, 'debian.sources'), aptSources(mirror, suite), { mode: 0o644 });
}

/** Ask dpkg (inside tsvm) that every package of the selection is installed (`ii`) and nothing else is there. */
async function checkInstalled(root: string, packages: PackageInfo[], run: (root: string, prog: string, args: string[]) => Promise<GuestRun>): Promise<void> {
  const q = await run(root, '/usr/bin/dpkg-query', ['-W', '-f', '${db:Status-Abbrev}${Package}\\n']);
  checkRun(q, 'dpkg-query');
  const state = new Map<string, string>();
  for (const line of q.stdout.split('\n')) {
    if (line.trim() === '') continue;
    state.set(line.slice(3).replace(/:[a-z0-9-]+$/, ''), line.slice(0, 3).trim());
  }
  const bad = packages.filter((p) => state.get(p.name) !== 'ii').map((p) => `${p.name} (${state.get(p.name) ?? 'absent'})`);
  if (bad.length > 0) throw new ImageError(`packages not installed after configuration: ${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ', ...' : ''}`);
  if (state.size !== packages.length) {
    const extra = [...state.keys()].filter((n) => !packages.some((p) => p.name === n));
    throw new ImageError(`dpkg lists ${state.size} packages, expected ${packages.length} (extra: ${extra.join(', ')})`);
  }
}
