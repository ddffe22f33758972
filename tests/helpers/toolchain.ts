/**
 * Cross-compiles riscv64 guest programs for the tests, with a content
 * cache in `.cache/programs/` under the repository (key: SHA-256 of the
 * sources, the shared support files, the flags and the compiler version).
 *
 * Linkages:
 *  - `static`: glibc, -static (ET_EXEC, no interpreter).
 *  - `static-pie`: glibc, ET_DYN without interpreter. Debian bookworm's
 *    cross glibc has no rcrt1.o, so the project's own start code
 *    (tests/programs/support/static-pie-start.S) self-relocates.
 *  - `dynamic`: glibc, PIE with PT_INTERP /lib/ld-linux-riscv64-lp64d.so.1.
 *  - `bare`: -nostdlib -static, for assembly programs that use raw syscalls.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** How a guest program is linked. */
export type Linkage = 'static' | 'static-pie' | 'dynamic' | 'bare';

/** The three glibc linkages every test program is built in. */
export const LIBC_LINKAGES: readonly Linkage[] = ['static', 'static-pie', 'dynamic'];

/** Repository root (the directory holding package.json), found from this module's location. */
export const REPO_ROOT: string = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));

/** Source directory of the guest test programs. */
export const PROGRAMS_DIR: string = path.join(REPO_ROOT, 'tests', 'programs');

/** The Linux cross compiler driver. */
export const CROSS_CC = 'riscv64-linux-gnu-gcc';

/** The -march string for all guest code: what the tsvm hart implements. */
export const MARCH = 'rv64gc_zba_zbb_zbs';

const CACHE_DIR = path.join(REPO_ROOT, '.cache', 'programs');
const SUPPORT_DIR = path.join(PROGRAMS_DIR, 'support');
const STATIC_PIE_START = path.join(SUPPORT_DIR, 'static-pie-start.S');
/** Bump to invalidate every cached binary after changing the build recipe. */
const RECIPE_VERSION = '3';

function findRepoRoot(start: string): string {
  for (let d = start; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'tests'))) return d;
    if (path.dirname(d) === d) throw new Error(`cannot find the repository root above ${start}`);
  }
}

const toolCache = new Map<string, string>();

/** Absolute path of a host tool on PATH; throws a clear error (naming the Debian package) if it is missing. */
export function requireTool(name: string, debianPackage: string): string {
  const hit = toolCache.get(name);
  if (hit !== undefined) return hit;
  for (const dir of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      toolCache.set(name, p);
      return p;
    } catch {
      // keep looking
    }
  }
  throw new Error(`${name} not found on PATH: these tests need it (apt-get install ${debianPackage})`);
}

/** The cross compiler, or a clear error if it is not installed. */
export function crossCompiler(): string {
  return requireTool(CROSS_CC, 'gcc-riscv64-linux-gnu');
}

let ccVersion: string | null = null;
function compilerVersion(): string {
  ccVersion ??= execFileSync(crossCompiler(), ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
  return ccVersion;
}

function printFileName(name: string): string {
  const p = execFileSync(crossCompiler(), [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  if (!path.isAbsolute(p) || !fs.existsSync(p)) throw new Error(`${CROSS_CC} cannot find ${name} (libc6-dev-riscv64-cross installed?)`);
  return p;
}

/** What to build. */
export interface CompileRequest {
  /** Source files (.c, .S, .s); paths absolute or relative to tests/programs. */
  sources: string[];
  /** Linkage; default 'static'. */
  linkage?: Linkage;
  /** Extra compiler flags (added after the defaults). */
  flags?: string[];
  /** Base name of the output file; default the first source's name without extension. */
  name?: string;
  /** Optimisation level flag; default -O2. */
  opt?: string;
}

function linkageFlags(linkage: Linkage): { compile: string[]; link: string[]; pre: string[]; post: string[] } {
  switch (linkage) {
    case 'static':
      return { compile: [], link: ['-static'], pre: [], post: ['-lm'] };
    case 'dynamic':
      return { compile: ['-fPIE'], link: ['-pie'], pre: [], post: ['-lm'] };
    case 'bare':
      return { compile: [], link: ['-nostdlib', '-static'], pre: [], post: [] };
    case 'static-pie':
      return {
        compile: ['-fPIE'],
        link: ['-nostdlib', '-nostartfiles', '-Wl,-static', '-Wl,-pie', '-Wl,--no-dynamic-linker'],
        pre: [printFileName('crti.o'), printFileName('crtbeginS.o'), STATIC_PIE_START],
        post: ['-Wl,--start-group', '-lm', '-lc', '-lgcc', '-lgcc_eh', '-Wl,--end-group', printFileName('crtendS.o'), printFileName('crtn.o')],
      };
  }
}

function supportFiles(): string[] {
  return fs.readdirSync(SUPPORT_DIR).sort().map((f) => path.join(SUPPORT_DIR, f));
}

/**
 * Compiles and links a guest program, returning the path of the cached
 * executable. Throws with the compiler's diagnostics on failure.
 */
export function compile(req: CompileRequest): string {
  const linkage = req.linkage ?? 'static';
  const sources = req.sources.map((s) => (path.isAbsolute(s) ? s : path.join(PROGRAMS_DIR, s)));
  const first = sources[0];
  if (first === undefined) throw new Error('compile: no sources');
  const name = req.name ?? path.basename(first).replace(/\.[^.]+$/, '');
  const lf = linkageFlags(linkage);
  const args = [req.opt ?? '-O2', `-march=${MARCH}`, '-mabi=lp64d', '-Wall', `-I${PROGRAMS_DIR}`, ...lf.compile, ...(req.flags ?? [])];

  const h = crypto.createHash('sha256');
  h.update(`recipe ${RECIPE_VERSION}\0${compilerVersion()}\0${linkage}\0${args.join('\0')}\0`);
  for (const f of [...sources, ...supportFiles()]) {
    h.update(path.basename(f) + '\0');
    h.update(fs.readFileSync(f));
  }
  const key = h.digest('hex').slice(0, 20);
  const out = path.join(CACHE_DIR, `${name}.${linkage}.${key}`);
  if (fs.existsSync(out)) return out;

  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const argv = [...args, ...lf.link, '-o', tmp, ...lf.pre, ...sources, ...lf.post];
  const r = spawnSync(crossCompiler(), argv, { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`compiling ${name} (${linkage}) failed:\n${CROSS_CC} ${argv.join(' ')}\n${r.stderr}${r.error ? String(r.error) : ''}`);
  }
  fs.renameSync(tmp, out);
  return out;
}

/**
 * Compiles source text (written to a content-addressed file in the cache)
 * and returns the executable's path; `ext` is 'c' or 'S'.
 */
export function compileText(text: string, ext: 'c' | 'S', req: Omit<CompileRequest, 'sources'> & { name: string }): string {
  const dir = path.join(CACHE_DIR, 'src');
  fs.mkdirSync(dir, { recursive: true });
  const digest = crypto.createHash('sha256').update(text).digest('hex').slice(0, 20);
  const src = path.join(dir, `${req.name}-${digest}.${ext}`);
  if (!fs.existsSync(src)) {
    const tmp = `${src}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, src);
  }
  return compile({ ...req, sources: [src] });
}

/** The top-level test programs in tests/programs (*.c and *.S), sorted by name. */
export function listPrograms(): string[] {
  return fs.readdirSync(PROGRAMS_DIR).filter((f) => /\.(c|S)$/.test(f)).sort();
}
