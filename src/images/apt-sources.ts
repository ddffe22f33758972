/**
 * Discover the Debian archive mirror that the host's apt is configured with.
 *
 * Reads /etc/apt/sources.list and /etc/apt/sources.list.d/ (one-line `*.list`
 * files and deb822 `*.sources` files) and picks the first http(s) URI whose
 * path ends in `/debian` (security archives are skipped). An explicit mirror
 * or the TSVM_MIRROR environment variable overrides the host configuration.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ImageError } from './errors.js';

/** Minimal read-only file-system view used by mirror discovery (for tests). */
export interface AptFs {
  /** File contents as text, or null when it does not exist or is unreadable. */
  readFile(file: string): string | null;
  /** Entry names in a directory (unsorted), or [] when it does not exist. */
  readDir(dir: string): string[];
}

/** An AptFs backed by node:fs. */
export const nodeAptFs: AptFs = {
  readFile(file: string): string | null {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return null;
    }
  },
  readDir(dir: string): string[] {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  },
};

/** A `deb` source found in apt configuration. */
export interface AptSource {
  /** Archive root URI as written (e.g. `http://host/debian`). */
  uri: string;
  /** Suites (one-line format has exactly one). */
  suites: string[];
}

/** Parse one-line-format sources text (`deb [opts] URI SUITE COMP...`); only `deb` lines. */
export function parseOneLineSources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const hash = raw.indexOf('#');
    let line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === '') continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m || m[1] !== 'deb') continue;
    line = (m[2] ?? '').trim();
    if (line.startsWith('[')) {
      const close = line.indexOf(']');
      if (close < 0) continue; // malformed options: ignore the line like apt would reject it
      line = line.slice(close + 1).trim();
    }
    const words = line.split(/\s+/).filter((w) => w !== '');
    const uri = words[0];
    if (uri === undefined) continue;
    out.push({ uri, suites: words[1] !== undefined ? [words[1]] : [] });
  }
  return out;
}

/** Parse deb822-format sources text (`Types:`/`URIs:`/`Suites:` stanzas); only enabled `deb` stanzas. */
export function parseDeb822Sources(text: string): AptSource[] {
  const out: AptSource[] = [];
  const stanzas: Map<string, string>[] = [];
  let cur = new Map<string, string>();
  let lastKey: string | null = null;
  for (const raw of text.split('\n')) {
    if (raw.startsWith('#')) continue; // comment lines are allowed anywhere in deb822 sources
    if (raw.trim() === '') {
      if (cur.size > 0) stanzas.push(cur);
      cur = new Map();
      lastKey = null;
      continue;
    }
    if ((raw.startsWith(' ') || raw.startsWith('\t')) && lastKey !== null) {
      cur.set(lastKey, `${cur.get(lastKey) ?? ''} ${raw.trim()}`);
      continue;
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) continue;
    lastKey = raw.slice(0, colon).trim().toLowerCase();
    cur.set(lastKey, raw.slice(colon + 1).trim());
  }
  if (cur.size > 0) stanzas.push(cur);
  for (const st of stanzas) {
    const types = (st.get('types') ?? '').split(/\s+/);
    if (!types.includes('deb')) continue;
    const enabled = (st.get('enabled') ?? 'yes').toLowerCase();
    if (enabled === 'no' || enabled === 'false') continue;
    const suites = (st.get('suites') ?? '').split(/\s+/).filter((s) => s !== '');
    for (const uri of (st.get('uris') ?? '').split(/\s+/)) {
      if (uri !== '') out.push({ uri, suites });
    }
  }
  return out;
}

/** True when `uri` is an http(s) URL whose path ends with `/debian` or `/debian/`. */
export function isDebianArchiveUri(uri: string): boolean {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return false;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  return /\/debian\/?$/.test(u.pathname);
}

/** All source files apt reads, in apt's order: sources.list, then sources.list.d sorted. */
export function aptSourceFiles(aptFs: AptFs = nodeAptFs, etcApt = '/etc/apt'): string[] {
  const files = [path.join(etcApt, 'sources.list')];
  const dir = path.join(etcApt, 'sources.list.d');
  const names = aptFs.readDir(dir).filter((n) => n.endsWith('.list') || n.endsWith('.sources'));
  names.sort();
  for (const n of names) files.push(path.join(dir, n));
  return files;
}

/** The first Debian archive mirror in the host apt configuration, without trailing slash, or null. */
export function findHostMirror(aptFs: AptFs = nodeAptFs, etcApt = '/etc/apt'): string | null {
  for (const file of aptSourceFiles(aptFs, etcApt)) {
    const text = aptFs.readFile(file);
    if (text === null) continue;
    const sources = file.endsWith('.sources') ? parseDeb822Sources(text) : parseOneLineSources(text);
    for (const s of sources) {
      if (isDebianArchiveUri(s.uri)) return normalizeMirror(s.uri);
    }
  }
  return null;
}

/** Validate a mirror URL and strip trailing slashes; throws ImageError when it is not http(s). */
export function normalizeMirror(uri: string): string {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new ImageError(`invalid mirror URL: ${JSON.stringify(uri)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ImageError(`mirror URL must be http or https: ${uri}`);
  }
  return u.toString().replace(/\/+$/, '');
}

/** Mirror to use: explicit option, else $TSVM_MIRROR, else host apt config; throws ImageError if none. */
export function resolveMirror(
  explicit?: string,
  env: NodeJS.ProcessEnv = process.env,
  aptFs: AptFs = nodeAptFs,
): string {
  if (explicit !== undefined && explicit !== '') return normalizeMirror(explicit);
  const fromEnv = env['TSVM_MIRROR'];
  if (fromEnv !== undefined && fromEnv !== '') return normalizeMirror(fromEnv);
  const host = findHostMirror(aptFs);
  if (host === null) {
    throw new ImageError(
      'no Debian mirror found in /etc/apt/sources.list{,.d}; pass a mirror URL or set TSVM_MIRROR',
    );
  }
  return host;
}
