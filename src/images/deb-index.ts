/**
 * Parsers for Debian archive indices: the `InRelease`/`Release` file (which
 * lists every index file with its SHA-256 and size) and `Packages` files
 * (one deb822 stanza per binary package). Pure functions over text.
 */

import { ImageError } from './errors.js';
import { splitClearsigned } from './openpgp.js';

/** Checksum and size of one file listed in a Release file. */
export interface ReleaseFile {
  /** Lower-case hex SHA-256. */
  sha256: string;
  /** Size in bytes. */
  size: number;
}

/** A parsed Release / InRelease file. */
export interface Release {
  /** Top-level fields other than the checksum lists (e.g. Codename, Suite, Date). */
  fields: Map<string, string>;
  /** Index path relative to `dists/<suite>/` -> checksum and size, from the SHA256 field. */
  files: Map<string, ReleaseFile>;
}

/** A binary package from a Packages index. */
export interface PackageInfo {
  /** Package name. */
  name: string;
  /** Full version string. */
  version: string;
  /** Architecture (e.g. `riscv64` or `all`). */
  architecture: string;
  /** Path of the .deb relative to the archive root (`pool/...`). */
  filename: string;
  /** Size of the .deb in bytes. */
  size: number;
  /** Lower-case hex SHA-256 of the .deb. */
  sha256: string;
  /** Depends: a list of groups, each a list of alternative package names (versions dropped). */
  depends: string[][];
  /** Pre-Depends, same shape as `depends`. */
  preDepends: string[][];
  /** Virtual package names this package provides (versions dropped). */
  provides: string[];
  /** `Essential: yes` (Debian Policy 3.8); absent in records parsed before this field was kept. */
  essential?: boolean;
  /** The Priority field (Debian Policy 2.5), e.g. `required`; undefined when absent. */
  priority?: string;
}

/** Parse deb822 paragraphs; keys are lower-cased, continuation lines are kept joined by "\n". */
export function parseDeb822(text: string, wanted?: ReadonlySet<string>): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  let cur = new Map<string, string>();
  let lastKey: string | null = null;
  let lastWanted = false;
  let start = 0;
  const n = text.length;
  let lineNo = 0;
  while (start <= n) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = n;
    let line = text.slice(start, end);
    start = end + 1;
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const c0 = line.charCodeAt(0);
    if (line === '' || ((c0 === 0x20 || c0 === 0x09) && line.trim() === '')) {
      if (cur.size > 0 || lastKey !== null) out.push(cur);
      cur = new Map();
      lastKey = null;
      continue;
    }
    if (c0 === 0x20 || c0 === 0x09) {
      if (lastKey === null) throw new ImageError(`deb822 line ${lineNo}: continuation line without a field`);
      if (lastWanted) cur.set(lastKey, `${cur.get(lastKey) ?? ''}\n${line.trim()}`);
      continue;
    }
    if (c0 === 0x23) continue; // '#' comment
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ImageError(`deb822 line ${lineNo}: expected "Field: value", got ${JSON.stringify(line.slice(0, 60))}`);
    lastKey = line.slice(0, colon).toLowerCase();
    lastWanted = wanted === undefined || wanted.has(lastKey);
    if (lastWanted) cur.set(lastKey, line.slice(colon + 1).trim());
  }
  if (cur.size > 0 || lastKey !== null) out.push(cur);
  return out;
}

/** Parse a Release file's SHA256 list and fields; accepts clearsigned InRelease or plain Release text. */
export function parseRelease(text: string): Release {
  const body = text.trimStart().startsWith('-----BEGIN PGP SIGNED MESSAGE-----')
    ? splitClearsigned(text, 'InRelease').text
    : text;
  const paras = parseDeb822(body);
  const first = paras[0];
  if (first === undefined) throw new ImageError('Release file is empty');
  const files = new Map<string, ReleaseFile>();
  const list = first.get('sha256');
  if (list === undefined) throw new ImageError('Release file has no SHA256 field');
  for (const raw of list.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = /^([0-9a-fA-F]{64})\s+(\d+)\s+(\S+)$/.exec(line);
    if (!m) throw new ImageError(`Release file: malformed SHA256 line ${JSON.stringify(line.slice(0, 100))}`);
    files.set(m[3] as string, { sha256: (m[1] as string).toLowerCase(), size: Number(m[2]) });
  }
  const fields = new Map<string, string>();
  for (const [k, v] of first) {
    if (k === 'sha256' || k === 'md5sum' || k === 'sha1' || k === 'sha512') continue;
    fields.set(k, v);
  }
  return { fields, files };
}

/** Parse a relationship field (`a (>= 1) | b:any, c [amd64]`) into groups of alternative names. */
export function parseRelations(value: string | undefined): string[][] {
  if (value === undefined || value.trim() === '') return [];
  const groups: string[][] = [];
  for (const group of value.split(',')) {
    const alts: string[] = [];
    for (const alt of group.split('|')) {
      const s = alt
        .replace(/\([^)]*\)/g, ' ')
        .replace(/\[[^\]]*\]/g, ' ')
        .replace(/<[^>]*>/g, ' ')
        .trim();
      if (s === '') continue;
      const name = (s.split(/\s+/)[0] ?? '').replace(/:[a-z0-9-]+$/, '');
      if (!/^[a-z0-9][a-z0-9+.-]*$/.test(name)) {
        throw new ImageError(`bad package name ${JSON.stringify(name)} in relation ${JSON.stringify(value.slice(0, 100))}`);
      }
      alts.push(name);
    }
    if (alts.length > 0) groups.push(alts);
  }
  return groups;
}

const PACKAGE_FIELDS: ReadonlySet<string> = new Set([
  'package', 'version', 'architecture', 'filename', 'size', 'sha256', 'depends', 'pre-depends', 'provides',
  'essential', 'priority',
]);

/** Parse a Packages index into PackageInfo records (stanza order); throws ImageError on missing fields. */
export function parsePackages(text: string): PackageInfo[] {
  const out: PackageInfo[] = [];
  for (const st of parseDeb822(text, PACKAGE_FIELDS)) {
    const name = st.get('package');
    const need = (k: string): string => {
      const v = st.get(k);
      if (v === undefined || v === '') {
        throw new ImageError(`Packages stanza ${name ?? '(no Package field)'}: missing ${k} field`);
      }
      return v;
    };
    const sha256 = need('sha256').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new ImageError(`Packages stanza ${name ?? '?'}: bad SHA256`);
    const sizeStr = need('size');
    if (!/^\d+$/.test(sizeStr)) throw new ImageError(`Packages stanza ${name ?? '?'}: bad Size ${JSON.stringify(sizeStr)}`);
    const filename = need('filename');
    if (filename.startsWith('/') || filename.split('/').includes('..')) {
      throw new ImageError(`Packages stanza ${name ?? '?'}: unsafe Filename ${JSON.stringify(filename)}`);
    }
    out.push({
      name: need('package'),
      version: need('version'),
      architecture: need('architecture'),
      filename,
      size: Number(sizeStr),
      sha256,
      depends: parseRelations(st.get('depends')),
      preDepends: parseRelations(st.get('pre-depends')),
      provides: parseRelations(st.get('provides')).flat(),
      essential: st.get('essential')?.toLowerCase() === 'yes',
      priority: st.get('priority')?.toLowerCase(),
    });
  }
  return out;
}

/** Index packages by name; the first stanza wins when a name appears twice. */
export function indexPackages(pkgs: Iterable<PackageInfo>): Map<string, PackageInfo> {
  const m = new Map<string, PackageInfo>();
  for (const p of pkgs) if (!m.has(p.name)) m.set(p.name, p);
  return m;
}
