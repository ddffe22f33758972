/**
 * Client for the Debian archive: fetches the signed `InRelease` of a suite,
 * the `Packages` index it vouches for (SHA-256 checked), and .deb files
 * (SHA-256 checked against `Packages`), caching everything on disk, and can
 * resolve dependencies and unpack a set of packages into a root directory.
 *
 * The mirror comes from the explicit option, $TSVM_MIRROR, or the host's apt
 * configuration (see apt-sources.ts). Cache: $TSVM_CACHE_DIR, else
 * $XDG_CACHE_HOME/tsvm, else ~/.cache/tsvm.
 */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { resolveMirror } from './apt-sources.js';
import { decompress, extractDeb, type Compression } from './deb.js';
import { indexPackages, parsePackages, parseRelease, type PackageInfo, type Release } from './deb-index.js';
import { ImageError } from './errors.js';
import { DEBIAN_ARCHIVE_KEYRING, loadKeyring, verifyClearsigned } from './openpgp.js';

/** A binary package record from the Packages index (re-exported from deb-index). */
export type { PackageInfo } from './deb-index.js';

/** Options for DebianArchive. */
export interface DebianArchiveOptions {
  /** Archive root URL; default $TSVM_MIRROR, else the host apt configuration. */
  mirror?: string;
  /** Suite codename; default 'trixie'. */
  suite?: string;
  /** Debian architecture; default 'riscv64'. */
  arch?: string;
  /** Archive component; default 'main'. */
  component?: string;
  /** Cache directory; default from defaultCacheDir(). */
  cacheDir?: string;
  /** Report downloads on stderr (bar on a TTY, else one line each); default true. */
  progress?: boolean;
  /** Keyring for the InRelease signature; default the Debian archive keyring; null skips the check. */
  keyring?: string | null;
  /** Refetch InRelease even if the cached copy is younger than 24 h. */
  refresh?: boolean;
}

/** The verified release metadata of a suite. */
export interface ReleaseInfo {
  /** Parsed InRelease. */
  release: Release;
  /** Cached InRelease file. */
  path: string;
  /** SHA-256 of the InRelease file. */
  sha256: string;
  /** Fingerprints of keys whose signatures verified, or null when not checked (no keyring). */
  signers: string[] | null;
}

/** The verified Packages index file of a suite/architecture. */
export interface IndexFile {
  /** Cached (compressed) Packages file. */
  path: string;
  /** Its path relative to `dists/<suite>/`, as listed in InRelease. */
  releasePath: string;
  /** Its SHA-256 (as listed in InRelease and checked). */
  sha256: string;
}

/** Name of the stamp file installRoot() writes into a finished root. */
export const ROOT_STAMP = '.tsvm-root-stamp';
const INRELEASE_MAX_AGE_MS = 24 * 3600 * 1000;
const IDLE_TIMEOUT_MS = 60_000;
const ATTEMPTS = 3;
const PARSED_INDEX_FORMAT = 2; // 2: records carry essential and priority

/** The tsvm cache directory: $TSVM_CACHE_DIR, $XDG_CACHE_HOME/tsvm, or ~/.cache/tsvm. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const own = env['TSVM_CACHE_DIR'];
  if (own !== undefined && own !== '') return path.resolve(own);
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg !== undefined && xdg !== '') return path.join(path.resolve(xdg), 'tsvm');
  return path.join(os.homedir(), '.cache', 'tsvm');
}

/** SHA-256 (hex) of a file's contents. */
export async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Human-readable byte count. */
function human(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** One-line description of a (network) error, including undici's cause. */
function describe(e: unknown): string {
  const err = e as Error & { cause?: { message?: string; code?: string } };
  const cause = err.cause?.code ?? err.cause?.message;
  return cause !== undefined ? `${err.message} (${cause})` : err.message;
}

/** One-line notice on stderr. */
function notice(msg: string): void {
  process.stderr.write(`tsvm: ${msg}\n`);
}

/** Expected checksum of a download. */
interface Expect {
  sha256?: string;
  size?: number;
}

/** A download that failed for network reasons (after retries) or with an HTTP error status. */
export class DownloadError extends ImageError {}

/** Thrown for HTTP statuses, so callers can fall back (e.g. by-hash 404). */
class HttpStatusError extends DownloadError {
  constructor(readonly status: number, url: string) {
    super(`GET ${url}: HTTP ${status}`);
  }
}

/** Client for one suite/architecture of a Debian archive. */
export class DebianArchive {
  /** Archive root URL (no trailing slash). */
  readonly mirror: string;
  /** Suite codename. */
  readonly suite: string;
  /** Architecture. */
  readonly arch: string;
  /** Component. */
  readonly component: string;
  /** Cache directory root. */
  readonly cacheDir: string;
  private readonly progress: boolean;
  private readonly keyring: string | null;
  private readonly refresh: boolean;
  private releaseP: Promise<ReleaseInfo> | null = null;
  private indexFileP: Promise<IndexFile> | null = null;
  private indexP: Promise<Map<string, PackageInfo>> | null = null;
  private providers: Map<string, PackageInfo[]> | null = null;

  /** Create a client; throws ImageError if no mirror can be determined. */
  constructor(opts: DebianArchiveOptions = {}) {
    this.mirror = resolveMirror(opts.mirror);
    this.suite = opts.suite ?? 'trixie';
    this.arch = opts.arch ?? 'riscv64';
    this.component = opts.component ?? 'main';
    this.cacheDir = opts.cacheDir ?? defaultCacheDir();
    this.progress = opts.progress ?? true;
    this.keyring = opts.keyring === undefined ? DEBIAN_ARCHIVE_KEYRING : opts.keyring;
    this.refresh = opts.refresh ?? false;
    for (const [k, v] of [['suite', this.suite], ['arch', this.arch], ['component', this.component]] as const) {
      if (!/^[a-z0-9][a-z0-9.+-]*$/.test(v)) throw new ImageError(`invalid ${k}: ${JSON.stringify(v)}`);
    }
  }

  /** Directory of this mirror+suite's cached metadata. */
  private distsDir(): string {
    const key = this.mirror.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9.-]+/g, '_');
    return path.join(this.cacheDir, 'debian', 'dists', key, this.suite);
  }

  /** The suite's InRelease: cached (< 24 h) or fetched, signature-checked, suite-checked. */
  release(): Promise<ReleaseInfo> {
    this.releaseP ??= this.loadRelease().catch((e: unknown) => {
      this.releaseP = null; // let a later call retry
      throw e;
    });
    return this.releaseP;
  }

  private async loadRelease(): Promise<ReleaseInfo> {
    const file = path.join(this.distsDir(), 'InRelease');
    const url = `${this.mirror}/dists/${this.suite}/InRelease`;
    const st = await fsp.stat(file).catch(() => null);
    if (st !== null && !this.refresh && Date.now() - st.mtimeMs < INRELEASE_MAX_AGE_MS) {
      try {
        return await this.checkRelease(file);
      } catch (e) {
        if (!(e instanceof ImageError)) throw e;
        notice(`cached InRelease rejected (${e.message}); fetching it again`);
      }
    }
    let checked: ReleaseInfo | null = null;
    try {
      await this.download(url, file, {}, `${this.suite} InRelease`, async (tmp) => {
        checked = { ...(await this.checkRelease(tmp)), path: file };
      });
    } catch (e) {
      if (st === null || !(e instanceof DownloadError)) throw e;
      notice(`${e.message}; using cached InRelease`);
    }
    return checked ?? this.checkRelease(file);
  }

  /** Verify and parse an InRelease file. */
  private async checkRelease(file: string): Promise<ReleaseInfo> {
    const bytes = await fsp.readFile(file);
    const what = `InRelease of ${this.suite}`;
    let signers: string[] | null = null;
    let text: string;
    if (this.keyring !== null) {
      const keys = loadKeyring(this.keyring);
      if (keys === null) {
        notice(`keyring ${this.keyring} not found; InRelease signature not checked`);
        text = bytes.toString('utf8');
      } else {
        const v = verifyClearsigned(bytes, keys, what);
        signers = v.signers;
        text = v.message.text;
      }
    } else {
      text = bytes.toString('utf8');
    }
    const release = parseRelease(text);
    const codename = release.fields.get('codename');
    const suite = release.fields.get('suite');
    if (codename !== this.suite && suite !== this.suite) {
      throw new ImageError(`${what}: it is for ${codename ?? suite ?? 'an unnamed suite'}, not ${this.suite}`);
    }
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
    return { release, path: file, sha256, signers };
  }

  /** The Packages index file for this arch: cached by InRelease hash, else fetched and checked. */
  indexFile(): Promise<IndexFile> {
    this.indexFileP ??= this.loadIndexFile().catch((e: unknown) => {
      this.indexFileP = null; // let a later call retry
      throw e;
    });
    return this.indexFileP;
  }

  private async loadIndexFile(): Promise<IndexFile> {
    const rel = await this.release();
    const base = `${this.component}/binary-${this.arch}/Packages`;
    const choice = (['.xz', '.gz', ''] as const).find((ext) => rel.release.files.has(base + ext));
    if (choice === undefined) {
      throw new ImageError(`InRelease of ${this.suite} lists no ${base}{.xz,.gz} (is ${this.arch} in this suite?)`);
    }
    const releasePath = base + choice;
    const entry = rel.release.files.get(releasePath) as { sha256: string; size: number };
    const dir = path.join(this.cacheDir, 'debian', 'indices');
    const prefix = `${this.suite}_${this.component}_${this.arch}_`;
    const file = path.join(dir, `${prefix}${rel.sha256}_Packages${choice}`);
    if (!(await this.cachedOk(file, entry))) {
      const dists = `${this.mirror}/dists/${this.suite}`;
      const byHash = `${dists}/${this.component}/binary-${this.arch}/by-hash/SHA256/${entry.sha256}`;
      const plain = `${dists}/${releasePath}`;
      const label = `${this.suite}/${this.arch} ${path.basename(releasePath)}`;
      if (rel.release.fields.get('acquire-by-hash') === 'yes') {
        try {
          await this.download(byHash, file, entry, label);
        } catch (e) {
          if (!(e instanceof HttpStatusError && e.status === 404)) throw e;
          await this.download(plain, file, entry, label);
        }
      } else {
        await this.download(plain, file, entry, label);
      }
      // Drop indices cached for older InRelease files of the same suite/arch.
      for (const n of await fsp.readdir(dir).catch(() => [] as string[])) {
        if (n.startsWith(prefix) && !n.startsWith(path.basename(file)) && !n.includes('.part-')) {
          await fsp.rm(path.join(dir, n), { force: true });
        }
      }
    }
    return { path: file, releasePath, sha256: entry.sha256 };
  }

  /** All packages of the suite/arch by name (verified index). */
  index(): Promise<Map<string, PackageInfo>> {
    this.indexP ??= this.loadIndex().catch((e: unknown) => {
      this.indexP = null; // let a later call retry
      throw e;
    });
    return this.indexP;
  }

  private async loadIndex(): Promise<Map<string, PackageInfo>> {
    const f = await this.indexFile();
    // Parsed form of the verified index, so later runs skip decompressing and parsing it.
    const jsonFile = `${f.path}.json`;
    const cached = await this.readParsedIndex(jsonFile, f.sha256);
    if (cached !== null) return indexPackages(cached);
    const ext = path.extname(f.path);
    const kind: Compression = ext === '.xz' ? 'xz' : ext === '.gz' ? 'gz' : 'none';
    const text = (await decompress(await fsp.readFile(f.path), kind, f.releasePath)).toString('utf8');
    let pkgs: PackageInfo[];
    try {
      pkgs = parsePackages(text);
    } catch (e) {
      throw new ImageError(`${f.releasePath}: ${(e as Error).message}`, { cause: e });
    }
    const tmp = `${jsonFile}.part-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    try {
      await fsp.writeFile(tmp, JSON.stringify({ format: PARSED_INDEX_FORMAT, sha256: f.sha256, packages: pkgs }));
      await fsp.rename(tmp, jsonFile);
    } catch {
      await fsp.rm(tmp, { force: true }); // the parsed cache is optional
    }
    return indexPackages(pkgs);
  }

  /** Read the parsed-index cache if it is intact and belongs to the index with `sha256`, else null. */
  private async readParsedIndex(file: string, sha256: string): Promise<PackageInfo[] | null> {
    let data: unknown;
    try {
      data = JSON.parse(await fsp.readFile(file, 'utf8'));
    } catch {
      return null;
    }
    const d = data as { format?: unknown; sha256?: unknown; packages?: unknown };
    if (d.format !== PARSED_INDEX_FORMAT || d.sha256 !== sha256 || !Array.isArray(d.packages)) return null;
    for (const p of d.packages as Partial<PackageInfo>[]) {
      if (
        typeof p.name !== 'string' || typeof p.filename !== 'string' || typeof p.sha256 !== 'string' ||
        typeof p.size !== 'number' || !Array.isArray(p.depends) || !Array.isArray(p.preDepends) || !Array.isArray(p.provides)
      ) {
        return null;
      }
    }
    return d.packages as PackageInfo[];
  }

  /** The package record for `name`; throws ImageError when the suite has no such package. */
  async package(name: string): Promise<PackageInfo> {
    const pkg = (await this.index()).get(name);
    if (pkg === undefined) throw new ImageError(`no package ${JSON.stringify(name)} in ${this.suite}/${this.component}/${this.arch}`);
    return pkg;
  }

  /** Download (or reuse from cache) the .deb of `name`; returns the path of the verified file. */
  async fetchDeb(name: string): Promise<string> {
    return this.fetchPackage(await this.package(name));
  }

  /** Download (or reuse from cache) the .deb of a package record; returns the verified file's path. */
  async fetchPackage(pkg: PackageInfo): Promise<string> {
    const file = path.join(this.cacheDir, 'debian', ...pkg.filename.split('/'));
    const expect = { sha256: pkg.sha256, size: pkg.size };
    if (await this.cachedOk(file, expect)) return file;
    await this.download(`${this.mirror}/${pkg.filename}`, file, expect, path.basename(pkg.filename));
    return file;
  }

  /** True if `file` exists with the expected size and hash; removes it (with a notice) if corrupt. */
  private async cachedOk(file: string, expect: Expect): Promise<boolean> {
    const st = await fsp.stat(file).catch(() => null);
    if (st === null) return false;
    if ((expect.size === undefined || st.size === expect.size) && (expect.sha256 === undefined || (await sha256File(file)) === expect.sha256)) {
      return true;
    }
    notice(`cached ${file} is corrupt; fetching it again`);
    await fsp.rm(file, { force: true });
    return false;
  }

  /**
   * Fetch `url` into `dest` atomically: stream to a temp file while hashing,
   * check size and SHA-256, run `check` on the temp file, then rename.
   */
  private async download(url: string, dest: string, expect: Expect, label: string, check?: (tmp: string) => Promise<unknown>): Promise<void> {
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.part-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.fetchTo(url, tmp, expect, label);
          break;
        } catch (e) {
          const retryable = !(e instanceof ImageError) || (e instanceof HttpStatusError && e.status >= 500);
          if (!retryable || attempt >= ATTEMPTS) {
            if (e instanceof ImageError) throw e;
            throw new DownloadError(`GET ${url}: ${describe(e)}`, { cause: e });
          }
          if (this.progress) notice(`retrying ${label} (${describe(e)})`);
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
      if (check) await check(tmp);
      await fsp.rename(tmp, dest);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  /** One GET attempt into `tmp`, with hashing, fsync and progress reporting. */
  private async fetchTo(url: string, tmp: string, expect: Expect, label: string): Promise<void> {
    const ctl = new AbortController();
    let idle = setTimeout(() => ctl.abort(new Error('download stalled')), IDLE_TIMEOUT_MS);
    const res = await fetch(url, { signal: ctl.signal, redirect: 'follow' }).catch((e: unknown) => {
      clearTimeout(idle);
      throw e;
    });
    if (!res.ok || res.body === null) {
      clearTimeout(idle);
      await res.body?.cancel().catch(() => undefined);
      throw new HttpStatusError(res.status, url);
    }
    const total = expect.size ?? Number(res.headers.get('content-length') ?? '0');
    const tty = this.progress && process.stderr.isTTY === true;
    const bar = tty
      ? new cliProgress.SingleBar(
          { format: `tsvm: ${label} [{bar}] {percentage}% {done}/{size}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        )
      : null;
    if (bar) bar.start(total || 1, 0, { done: human(0), size: total ? human(total) : '?' });
    else if (this.progress) notice(`downloading ${label}${total ? ` (${human(total)})` : ''}`);
    const hash = crypto.createHash('sha256');
    const fh = await fsp.open(tmp, 'w', 0o644);
    let got = 0;
    try {
      for await (const chunk of res.body) {
        clearTimeout(idle);
        idle = setTimeout(() => ctl.abort(new Error('download stalled')), IDLE_TIMEOUT_MS);
        hash.update(chunk);
        got += chunk.length;
        if (expect.size !== undefined && got > expect.size) {
          throw new ImageError(`${label}: server sent more than the expected ${expect.size} bytes`);
        }
        await fh.write(chunk);
        bar?.update(got, { done: human(got) });
      }
      await fh.sync();
    } finally {
      clearTimeout(idle);
      bar?.stop();
      await fh.close();
    }
    if (expect.size !== undefined && got !== expect.size) {
      throw new ImageError(`size mismatch for ${label}: expected ${expect.size} bytes, got ${got} (file removed)`);
    }
    const sha = hash.digest('hex');
    if (expect.sha256 !== undefined && sha !== expect.sha256) {
      throw new ImageError(`SHA-256 mismatch for ${label}: expected ${expect.sha256}, got ${sha} (file removed)`);
    }
  }

  /** Map virtual package name -> real packages providing it. */
  private async providerMap(): Promise<Map<string, PackageInfo[]>> {
    if (this.providers) return this.providers;
    const m = new Map<string, PackageInfo[]>();
    for (const p of (await this.index()).values()) {
      for (const v of p.provides) {
        const list = m.get(v);
        if (list) list.push(p);
        else m.set(v, [p]);
      }
    }
    this.providers = m;
    return m;
  }

  /**
   * `names` plus everything they transitively Depend/Pre-Depend on, in
   * discovery order. Version constraints are ignored; an already-chosen
   * package (or one it Provides) satisfies a group, else the first
   * alternative that exists (real package, then a provider) is taken.
   */
  async resolveDeps(names: string[]): Promise<PackageInfo[]> {
    const index = await this.index();
    const providers = await this.providerMap();
    const order: PackageInfo[] = [];
    const chosen = new Set<string>();
    const satisfied = new Set<string>();
    const add = (p: PackageInfo): void => {
      if (chosen.has(p.name)) return;
      chosen.add(p.name);
      satisfied.add(p.name);
      for (const v of p.provides) satisfied.add(v);
      order.push(p);
    };
    const lookup = (n: string): PackageInfo | undefined => index.get(n) ?? providers.get(n)?.[0];
    for (const n of names) {
      const p = lookup(n);
      if (p === undefined) throw new ImageError(`no package ${JSON.stringify(n)} in ${this.suite}/${this.component}/${this.arch}`);
      add(p);
    }
    for (let i = 0; i < order.length; i++) {
      const p = order[i] as PackageInfo;
      for (const group of [...p.preDepends, ...p.depends]) {
        if (group.some((alt) => satisfied.has(alt))) continue;
        let pick: PackageInfo | undefined;
        for (const alt of group) if ((pick = index.get(alt))) break;
        if (pick === undefined) for (const alt of group) if ((pick = providers.get(alt)?.[0])) break;
        if (pick === undefined) {
          throw new ImageError(`unresolvable dependency "${group.join(' | ')}" of ${p.name} in ${this.suite}/${this.arch}`);
        }
        add(pick);
      }
    }
    return order;
  }

  /**
   * Resolve `names` with dependencies, fetch and unpack them all into
   * `destDir` (with merged-/usr symlinks bin, sbin, lib -> usr/...). A stamp
   * file records the package set, so repeating the same call is a no-op.
   */
  async installRoot(names: string[], destDir: string): Promise<PackageInfo[]> {
    const pkgs = await this.resolveDeps(names);
    const stamp = ['tsvm-root 1', ...pkgs.map((p) => `${p.name} ${p.version} ${p.architecture} ${p.sha256}`).sort()].join('\n') + '\n';
    const stampFile = path.join(destDir, ROOT_STAMP);
    const old = await fsp.readFile(stampFile, 'utf8').catch(() => null);
    if (old === stamp) return pkgs;
    const debs: string[] = [];
    for (const p of pkgs) debs.push(await this.fetchPackage(p));
    await fsp.mkdir(destDir, { recursive: true });
    await fsp.rm(stampFile, { force: true });
    await fsp.mkdir(path.join(destDir, 'usr'), { recursive: true });
    for (const d of ['bin', 'sbin', 'lib']) {
      const link = path.join(destDir, d);
      if ((await fsp.lstat(link).catch(() => null)) === null) {
        await fsp.mkdir(path.join(destDir, 'usr', d), { recursive: true });
        await fsp.symlink(`usr/${d}`, link);
      }
    }
    for (const deb of debs) await extractDeb(deb, destDir);
    const tmp = `${stampFile}.part-${process.pid}`;
    await fsp.writeFile(tmp, stamp);
    await fsp.rename(tmp, stampFile);
    return pkgs;
  }
}
