/**
 * The default guest of `tsvm run`: Debian's riscv64 kernel plus an
 * initramfs, built here in TypeScript from Debian packages on first use.
 *
 *  - kernel: `linux-image-<ver>` (found through the `linux-image-riscv64`
 *    metapackage), its .deb extracted once into <cache>/kernels/...;
 *  - initramfs (gzip'd newc cpio): busybox-static with a symlink per applet,
 *    /dev/console and /dev/null, the requested modules and their
 *    dependencies decompressed to plain .ko, a modules.dep for them, and an
 *    /init script that mounts the pseudo file systems, loads the modules,
 *    prints `tsvm-guest: ready` and runs a login shell on the console,
 *    powering off when it exits.
 *
 * The result lives in <cache>/guests/default-<kernelver>-<hash>/ (hash of
 * the package checksums, module list and GUEST_FORMAT), written to a temp
 * dir and renamed into place, so a finished guest is reused instantly.
 */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { CpioWriter, S_IFCHR } from './cpio.js';
import { decompress, extractDeb, type Compression } from './deb.js';
import { DebianArchive, defaultCacheDir, type PackageInfo } from './debian-archive.js';
import { ImageError } from './errors.js';
import {
  formatModulesDep,
  normalizeModuleName,
  parseModinfo,
  parseModuleList,
  parseModulesBuiltin,
  parseModulesDep,
  resolveModuleOrder,
} from './modules.js';

/** Modules the default guest loads: the virtio-mmio transport and the virtio devices tsvm provides. */
export const DEFAULT_GUEST_MODULES: readonly string[] = ['virtio_mmio', 'virtio_blk', 'virtio_net', 'virtio_rng', 'virtio_balloon'];

/** The line /init prints on the console once the modules are loaded, just before the shell starts. */
export const GUEST_READY_LINE = 'tsvm-guest: ready';

/** The shell prompt of the default guest (busybox's default for root in ~). */
export const GUEST_PROMPT = '~ # ';

/** Options of ensureDefaultGuest(). */
export interface DefaultGuestOptions {
  /** Debian mirror URL; default $TSVM_MIRROR, else the host apt configuration. */
  mirror?: string;
  /** Cache root; default defaultCacheDir(). */
  cacheDir?: string;
  /** Modules to load at boot (with their dependencies); default DEFAULT_GUEST_MODULES. */
  modules?: string[];
  /** Print download bars and one line per build step on stderr; default true. */
  progress?: boolean;
}

/** A built default guest. */
export interface DefaultGuest {
  /** Path of the kernel Image (Debian's `vmlinux-<ver>`, an uncompressed EFI-stub RISC-V Image). */
  kernel: string;
  /** Path of the gzip-compressed newc initramfs. */
  initrd: string;
  /** Kernel release, e.g. `6.12.107+deb13-riscv64`. */
  kernelVersion: string;
  /** Names of the modules /init loads, in load order (dependencies included). */
  modules: string[];
}

/** Bump when the layout or contents of a built guest change, so old caches are not reused. */
const GUEST_FORMAT = 2;
/** Bump when the layout of an extracted kernel tree changes. */
const KERNEL_TREE_FORMAT = 1;
const GUEST_STAMP = 'guest.json';
const KERNEL_STAMP = '.tsvm-kernel-stamp';
const KERNEL_META = 'linux-image-riscv64';
const BUSYBOX_PKG = 'busybox-static';
const INITRD_NAME = 'initrd.cpio.gz';
/** Device numbers from the kernel's Documentation/admin-guide/devices.txt: 5,1 = /dev/console, 1,3 = /dev/null. */
const DEV_CONSOLE = { major: 5, minor: 1 } as const;
const DEV_NULL = { major: 1, minor: 3 } as const;
/** ELF e_machine of RISC-V (System V gABI machine list; "EM_RISCV 243"). */
const EM_RISCV = 243;

/**
 * Applets assumed when the applet table cannot be found in the busybox binary
 * (a common subset; every one exists in Debian's busybox-static).
 */
const FALLBACK_APPLETS = (
  '[ [[ ash awk basename cat chmod chown chroot clear cmp cp cttyhack cut date dd df dirname dmesg du echo env expr ' +
  'false find free getty grep gunzip gzip halt head hexdump hostname id ifconfig insmod ip kill killall less ln ' +
  'ls lsmod mdev mkdir mknod modprobe more mount mv nc nslookup od pidof ping poweroff printf ps pwd readlink ' +
  'reboot rm rmdir rmmod route sed seq setsid sh sha256sum md5sum sleep sort stat stty swapoff swapon sync ' +
  'tail tar tee test time top touch tr true udhcpc umount uname uptime vi watch wc wget which xargs xz yes zcat'
).split(' ');

const inFlight = new Map<string, Promise<DefaultGuest>>();

/** One progress line on stderr. */
function step(on: boolean, msg: string): void {
  if (on) process.stderr.write(`tsvm: default guest: ${msg}\n`);
}

/** A warning on stderr (shown even without progress). */
function warn(msg: string): void {
  process.stderr.write(`tsvm: default guest: warning: ${msg}\n`);
}

/** Human-readable byte count. */
function human(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A file-name-safe form of a package version or name. */
function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9.+_-]+/g, '_');
}

/** A fresh sibling temp path for atomic creation of `dest`. */
function tmpPath(dest: string): string {
  return `${dest}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
}

/** Move a finished temp dir into place; if another process won the race with a valid result, drop ours. */
async function publishDir(tmp: string, dest: string, valid: () => Promise<boolean>): Promise<void> {
  try {
    await fsp.rename(tmp, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await valid())) {
      await fsp.rm(tmp, { recursive: true, force: true });
      return;
    }
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      // A stale, unstamped leftover: replace it.
      await fsp.rm(dest, { recursive: true, force: true });
      await fsp.rename(tmp, dest);
      return;
    }
    throw e;
  }
}

/** The versioned kernel package behind the `linux-image-riscv64` metapackage. */
async function kernelPackage(archive: DebianArchive): Promise<PackageInfo> {
  const index = await archive.index();
  const meta = await archive.package(KERNEL_META);
  for (const group of [...meta.preDepends, ...meta.depends]) {
    for (const alt of group) {
      if (alt.startsWith('linux-image-') && alt !== KERNEL_META && index.has(alt)) return index.get(alt) as PackageInfo;
    }
  }
  throw new ImageError(`${KERNEL_META} ${meta.version} depends on no linux-image-<version> package in the index`);
}

/** The kernel release of a `linux-image-<release>` package. */
function kernelRelease(pkg: PackageInfo): string {
  const ver = pkg.name.slice('linux-image-'.length);
  if (!/^[A-Za-z0-9][A-Za-z0-9.+_-]*$/.test(ver)) throw new ImageError(`unexpected kernel package name ${pkg.name}`);
  return ver;
}

/** Extract the kernel .deb once into <cache>/kernels/<pkg>_<version>_<sha>/; returns that directory. */
async function ensureKernelTree(archive: DebianArchive, pkg: PackageInfo, cacheDir: string, ver: string, progress: boolean): Promise<string> {
  const dir = path.join(cacheDir, 'kernels', `${safeName(pkg.name)}_${safeName(pkg.version)}_${pkg.sha256.slice(0, 16)}`);
  const stamp = `tsvm-kernel ${KERNEL_TREE_FORMAT} ${pkg.name} ${pkg.version} ${pkg.sha256}\n`;
  const valid = async (): Promise<boolean> => (await fsp.readFile(path.join(dir, KERNEL_STAMP), 'utf8').catch(() => null)) === stamp;
  if (await valid()) return dir;
  const deb = await archive.fetchPackage(pkg);
  step(progress, `extracting ${path.basename(deb)} (once)`);
  await fsp.mkdir(path.dirname(dir), { recursive: true });
  const tmp = tmpPath(dir);
  try {
    await extractDeb(deb, tmp);
    for (const f of [`boot/vmlinux-${ver}`, `usr/lib/modules/${ver}/modules.order`]) {
      if (!fs.existsSync(path.join(tmp, f))) throw new ImageError(`${path.basename(deb)}: no ${f}`);
    }
    await fsp.writeFile(path.join(tmp, KERNEL_STAMP), stamp);
    await publishDir(tmp, dir, valid);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** The applet names of a busybox binary, read from its sorted, NUL-separated applet table; null if not found. */
export function busyboxApplets(elf: Uint8Array): string[] | null {
  // busybox's build (applets/applet_tables.c) emits `applet_names` as "[\0[[\0acpid\0...\0\0",
  // sorted with strcmp; "[" and "[[" always come first when test is enabled.
  const start = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength).indexOf(Buffer.from('[\0[[\0', 'latin1'));
  if (start < 0) return null;
  const names: string[] = [];
  let i = start;
  while (i < elf.length && elf[i] !== 0) {
    let e = i;
    while (e < elf.length && elf[e] !== 0) e++;
    names.push(Buffer.from(elf.subarray(i, e)).toString('latin1'));
    i = e + 1;
  }
  const ok = names.length >= 20 && names.every((n, k) => /^[a-z0-9_.[-]+$/.test(n) && (k === 0 || (names[k - 1] as string) < n));
  return ok ? names : null;
}

/** Bytes of a module file, decompressed according to its suffix. */
async function readModule(file: string): Promise<Buffer> {
  const data = await fsp.readFile(file);
  const kind: Compression = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zst' : file.endsWith('.gz') ? 'gz' : 'none';
  return decompress(data, kind, path.basename(file));
}

/** The resolved module set of a guest: load order and the files to put in the initramfs. */
interface ModulePlan {
  /** Load order. */
  order: { name: string; path: string }[];
  /** Relative `.ko` path -> uncompressed contents. */
  files: Map<string, Buffer>;
  /** modules.dep text for the initramfs. */
  modulesDep: string;
}

/**
 * Resolve the requested modules against an extracted kernel tree. Debian's
 * kernel package ships no modules.dep (depmod runs at install time), so one
 * is computed from each module's `.modinfo` `depends=` (plus `softdep=pre:`
 * entries that name a module directly, or `crypto-<alg>` as `<alg>[_generic]`).
 */
async function planModules(modDir: string, request: readonly string[], ver: string, progress: boolean): Promise<ModulePlan> {
  const onDisk = parseModuleList(await fsp.readFile(path.join(modDir, 'modules.order'), 'utf8'));
  const builtinText = await fsp.readFile(path.join(modDir, 'modules.builtin'), 'utf8').catch(() => '');
  const builtin = parseModulesBuiltin(builtinText);
  const koPath = (rel: string): string => rel.replace(/\.ko(\.xz|\.zst|\.gz)?$/, '.ko');
  const locate = (rel: string): string | null => {
    for (const s of ['.xz', '.zst', '.gz', '']) {
      const f = path.join(modDir, koPath(rel) + s);
      if (fs.existsSync(f)) return f;
    }
    return null;
  };
  const wanted: string[] = [];
  for (const raw of request) {
    const n = normalizeModuleName(raw);
    if (builtin.has(n)) step(progress, `module ${n} is built into ${ver}`);
    else if (!onDisk.has(n) || locate(onDisk.get(n) as string) === null) warn(`module ${n} is not in kernel ${ver}; skipped`);
    else wanted.push(n);
  }
  step(progress, `resolving ${wanted.length} modules and their dependencies`);
  const direct = new Map<string, string[]>();
  const files = new Map<string, Buffer>();
  const relOf = new Map<string, string>();
  const queue = [...wanted];
  while (queue.length > 0) {
    const n = queue.shift() as string;
    if (direct.has(n)) continue;
    const rel = onDisk.get(n);
    const file = rel === undefined ? null : locate(rel);
    if (rel === undefined || file === null) throw new ImageError(`kernel ${ver}: module ${n} is missing from the package`);
    const bytes = await readModule(file);
    const info = parseModinfo(bytes, path.basename(file));
    const deps: string[] = [];
    for (const d of info.depends) {
      if (builtin.has(d)) continue;
      if (!onDisk.has(d)) throw new ImageError(`kernel ${ver}: module ${n} depends on ${d}, which is not in the package`);
      deps.push(d);
    }
    for (const s of info.softPre) {
      const alg = s.startsWith('crypto-') ? s.slice('crypto-'.length) : null;
      const candidates = alg === null ? [s] : [`${alg}_generic`, alg];
      const hit = candidates.map(normalizeModuleName).find((c) => builtin.has(c) || onDisk.has(c));
      if (hit !== undefined && !builtin.has(hit) && !deps.includes(hit)) deps.push(hit);
    }
    direct.set(n, deps);
    relOf.set(n, koPath(rel));
    files.set(koPath(rel), bytes);
    queue.push(...deps);
  }
  // modules.dep lists each module's dependencies transitively, the one to load last first.
  const closure = (n: string): string[] => {
    const seen: string[] = [];
    const walk = (m: string): void => {
      for (const d of direct.get(m) ?? []) {
        if (seen.includes(d) || d === n) continue;
        walk(d);
        if (!seen.includes(d)) seen.push(d);
      }
    };
    walk(n);
    return seen.reverse();
  };
  const entries = [...direct.keys()].map((n) => ({ path: relOf.get(n) as string, deps: closure(n).map((d) => relOf.get(d) as string) }));
  const modulesDep = formatModulesDep(entries);
  const order = resolveModuleOrder(wanted, parseModulesDep(modulesDep), builtin);
  return { order, files, modulesDep };
}

/** Shell-quote a string for the /init script. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The /init script: mounts, module loading, ready line, console shell, poweroff. */
function initScript(ver: string, order: readonly { name: string; path: string }[]): string {
  const lines = [
    '#!/bin/busybox sh',
    '# tsvm default guest /init (generated by tsvm, src/images/default-guest.ts)',
    'export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=linux',
    '/bin/busybox mount -t proc -o nosuid,nodev,noexec proc /proc',
    'mount -t sysfs -o nosuid,nodev,noexec sysfs /sys',
    'mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev',
    'mkdir -p /dev/pts /dev/shm',
    'mount -t devpts -o gid=5,mode=0620 devpts /dev/pts 2>/dev/null',
    'mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run',
    'mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp',
    ...order.map((m) => `insmod ${shq(`/lib/modules/${ver}/${m.path}`)} || echo ${shq(`tsvm-guest: insmod ${m.name} failed`)}`),
    'hostname tsvm',
    'ip link set lo up 2>/dev/null',
    `echo ${shq(GUEST_READY_LINE)}`,
    'cd /root',
    '# setsid: new session; cttyhack: reopen the real console tty (e.g. ttyS0) as the controlling tty, for job control',
    'setsid cttyhack sh -l',
    'sync',
    'poweroff -f',
    '',
  ];
  return lines.join('\n');
}

/** Small configuration files of the guest root. */
function etcFiles(): [string, string, number][] {
  return [
    ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', 0o644],
    ['etc/group', 'root:x:0:\ntty:x:5:\n', 0o644],
    ['etc/hostname', 'tsvm\n', 0o644],
    ['etc/hosts', '127.0.0.1 localhost\n127.0.1.1 tsvm\n', 0o644],
    ['etc/profile', `export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nexport PS1=${shq(GUEST_PROMPT)}\n`, 0o644],
  ];
}

/** Inputs that determine a guest's contents; their hash names its cache dir. */
interface GuestInputs {
  format: number;
  kernel: { name: string; version: string; sha256: string };
  busybox: { name: string; version: string; sha256: string };
  modules: string[];
}

/** Contents of guest.json. */
interface GuestStamp extends DefaultGuest {
  inputs: GuestInputs;
  initrdSha256: string;
}

/** Read a guest dir's stamp and check its files exist; null if absent or broken. */
async function readStamp(dir: string): Promise<GuestStamp | null> {
  try {
    const s = JSON.parse(await fsp.readFile(path.join(dir, GUEST_STAMP), 'utf8')) as GuestStamp;
    if (s.inputs?.format !== GUEST_FORMAT || typeof s.kernelVersion !== 'string' || !Array.isArray(s.modules)) return null;
    const kernel = path.join(dir, path.basename(s.kernel));
    const initrd = path.join(dir, path.basename(s.initrd));
    if (!fs.existsSync(kernel) || !fs.existsSync(initrd)) return null;
    return { ...s, kernel, initrd };
  } catch {
    return null;
  }
}

/** The public view of a stamp. */
function guestOf(s: GuestStamp): DefaultGuest {
  return { kernel: s.kernel, initrd: s.initrd, kernelVersion: s.kernelVersion, modules: [...s.modules] };
}

/** The most recently built guest for the same module request (offline fallback), or null. */
async function newestBuilt(guestsDir: string, request: readonly string[]): Promise<GuestStamp | null> {
  let best: { s: GuestStamp; t: number } | null = null;
  for (const n of await fsp.readdir(guestsDir).catch(() => [] as string[])) {
    if (!n.startsWith('default-') || n.includes('.tmp-')) continue;
    const dir = path.join(guestsDir, n);
    const s = await readStamp(dir);
    if (s === null || JSON.stringify(s.inputs.modules) !== JSON.stringify(request)) continue;
    const t = (await fsp.stat(path.join(dir, GUEST_STAMP))).mtimeMs;
    if (best === null || t > best.t) best = { s, t };
  }
  return best?.s ?? null;
}

/**
 * Build (first time) or find (afterwards) the default guest: Debian's
 * riscv64 kernel and a busybox initramfs. Throws ImageError on archive,
 * download or package problems; when the archive cannot be reached, a
 * previously built guest with the same module list is used instead.
 */
export async function ensureDefaultGuest(opts: DefaultGuestOptions = {}): Promise<DefaultGuest> {
  const cacheDir = path.resolve(opts.cacheDir ?? defaultCacheDir());
  const request = [...new Set((opts.modules ?? DEFAULT_GUEST_MODULES).map(normalizeModuleName))];
  const key = JSON.stringify([cacheDir, opts.mirror ?? null, request]);
  const running = inFlight.get(key);
  if (running !== undefined) {
    const g = await running.catch(() => null);
    if (g !== null && fs.existsSync(g.kernel) && fs.existsSync(g.initrd)) return { ...g, modules: [...g.modules] };
  }
  const p = buildOrFind(cacheDir, request, opts);
  inFlight.set(key, p);
  p.catch(() => inFlight.delete(key));
  return p.then((g) => ({ ...g, modules: [...g.modules] }));
}

async function buildOrFind(cacheDir: string, request: string[], opts: DefaultGuestOptions): Promise<DefaultGuest> {
  const progress = opts.progress ?? true;
  const guestsDir = path.join(cacheDir, 'guests');
  let archive: DebianArchive;
  let kernelPkg: PackageInfo;
  let bbPkg: PackageInfo;
  try {
    archive = new DebianArchive({ ...(opts.mirror !== undefined ? { mirror: opts.mirror } : {}), cacheDir, progress });
    kernelPkg = await kernelPackage(archive);
    bbPkg = await archive.package(BUSYBOX_PKG);
  } catch (e) {
    if (!(e instanceof ImageError)) throw e;
    const old = await newestBuilt(guestsDir, request);
    if (old === null) throw e;
    process.stderr.write(`tsvm: ${e.message}; using the default guest built earlier (kernel ${old.kernelVersion})\n`);
    return guestOf(old);
  }
  const ver = kernelRelease(kernelPkg);
  const inputs: GuestInputs = {
    format: GUEST_FORMAT,
    kernel: { name: kernelPkg.name, version: kernelPkg.version, sha256: kernelPkg.sha256 },
    busybox: { name: bbPkg.name, version: bbPkg.version, sha256: bbPkg.sha256 },
    modules: request,
  };
  const hash = crypto.createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
  const dir = path.join(guestsDir, `default-${safeName(ver)}-${hash}`);
  const have = await readStamp(dir);
  if (have !== null) return guestOf(have);

  const t0 = Date.now();
  step(progress, `building for kernel ${ver} with ${BUSYBOX_PKG} ${bbPkg.version}`);
  const kdir = await ensureKernelTree(archive, kernelPkg, cacheDir, ver, progress);
  const bbDeb = await archive.fetchPackage(bbPkg);
  await fsp.mkdir(guestsDir, { recursive: true });
  const tmp = tmpPath(dir);
  try {
    await fsp.mkdir(tmp, { recursive: true });
    step(progress, `unpacking ${path.basename(bbDeb)}`);
    const bbRoot = path.join(tmp, 'busybox-root');
    await extractDeb(bbDeb, bbRoot);
    const bbFile = ['usr/bin/busybox', 'bin/busybox'].map((f) => path.join(bbRoot, f)).find((f) => fs.existsSync(f));
    if (bbFile === undefined) throw new ImageError(`${path.basename(bbDeb)}: no busybox binary`);
    const busybox = await fsp.readFile(bbFile);
    if (busybox.length < 20 || busybox.readUInt32BE(0) !== 0x7f454c46 || busybox.readUInt16LE(18) !== EM_RISCV) {
      throw new ImageError(`${path.basename(bbDeb)}: busybox is not a RISC-V ELF binary`);
    }
    const udhcpcScript = await fsp.readFile(path.join(bbRoot, 'usr/share/doc/busybox-static/examples/udhcp/simple.script')).catch(() => null);

    const plan = await planModules(path.join(kdir, 'usr/lib/modules', ver), request, ver, progress);

    step(progress, `writing initramfs (busybox, ${plan.order.length} modules)`);
    const cpio = new CpioWriter();
    for (const d of ['bin', 'dev', 'etc', 'lib', 'mnt', 'proc', 'root', 'run', 'sys', 'usr', 'var']) cpio.dir(d, d === 'root' ? 0o700 : 0o755);
    cpio.dir('tmp', 0o1777);
    cpio.symlink('sbin', 'bin');
    cpio.symlink('usr/bin', '../bin');
    cpio.symlink('usr/sbin', '../bin');
    cpio.node('dev/console', S_IFCHR | 0o600, DEV_CONSOLE.major, DEV_CONSOLE.minor);
    cpio.node('dev/null', S_IFCHR | 0o666, DEV_NULL.major, DEV_NULL.minor);
    cpio.file('bin/busybox', busybox, 0o755);
    let applets = busyboxApplets(busybox);
    if (applets === null) {
      warn('applet table not found in busybox; linking a fixed list of common applets');
      applets = FALLBACK_APPLETS;
    }
    for (const a of applets) {
      if (a === 'busybox' || a === 'linuxrc' || a.includes('/')) continue;
      cpio.symlink(`bin/${a}`, 'busybox');
    }
    for (const [f, text, mode] of etcFiles()) cpio.file(f, Buffer.from(text), mode);
    cpio.dir('var/run', 0o755);
    if (udhcpcScript !== null) {
      cpio.file('usr/share/udhcpc/default.script', udhcpcScript, 0o755);
      cpio.file('etc/udhcpc/default.script', udhcpcScript, 0o755); // where Debian's busybox udhcpc looks by default
    }
    const modRoot = `lib/modules/${ver}`;
    for (const m of plan.order) cpio.file(`${modRoot}/${m.path}`, plan.files.get(m.path) as Buffer, 0o644);
    cpio.file(`${modRoot}/modules.dep`, Buffer.from(plan.modulesDep), 0o644);
    cpio.file('init', Buffer.from(initScript(ver, plan.order)), 0o755);
    const archiveBytes = cpio.finish();
    const initrd = zlib.gzipSync(archiveBytes, { level: 9 });

    await fsp.rm(bbRoot, { recursive: true, force: true });
    await fsp.writeFile(path.join(tmp, INITRD_NAME), initrd);
    const kernelName = `vmlinux-${ver}`;
    const kernelSrc = path.join(kdir, 'boot', kernelName);
    await fsp.link(kernelSrc, path.join(tmp, kernelName)).catch(() => fsp.copyFile(kernelSrc, path.join(tmp, kernelName)));
    const stamp: GuestStamp = {
      kernel: path.join(dir, kernelName),
      initrd: path.join(dir, INITRD_NAME),
      kernelVersion: ver,
      modules: plan.order.map((m) => m.name),
      inputs,
      initrdSha256: crypto.createHash('sha256').update(initrd).digest('hex'),
    };
    await fsp.writeFile(path.join(tmp, GUEST_STAMP), JSON.stringify(stamp, null, 2) + '\n');
    await publishDir(tmp, dir, async () => (await readStamp(dir)) !== null);
    step(progress, `initramfs ${human(initrd.length)} (${human(archiveBytes.length)} uncompressed), built in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${dir}`);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
  const done = await readStamp(dir);
  if (done === null) throw new ImageError(`default guest in ${dir} is incomplete after building it`);
  return guestOf(done);
}
