/**
 * Extract a tar archive held in memory into a directory, chroot-style: entry
 * names must be relative and free of `..`, and symlinks met while walking to
 * an entry's parent directory are resolved as if the destination were `/`,
 * so nothing is ever written outside the destination.
 */

import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import tarStream from 'tar-stream';
import { ImageError } from './errors.js';

/** Counts of what an extraction wrote. */
export interface TarStats {
  /** Regular files written. */
  files: number;
  /** Directories created or updated. */
  dirs: number;
  /** Symbolic links created. */
  symlinks: number;
  /** Hard links created. */
  hardlinks: number;
  /** Entries skipped (devices, fifos, ...). */
  skipped: number;
}

const MAX_SYMLINK_HOPS = 40;

/** Options of extractTar. */
export interface ExtractOptions {
  /**
   * Keep entries as the archive says, like `tar --same-owner -p` run as root:
   * owner and group from the header, and the full mode including setuid,
   * setgid and sticky bits (POSIX.1 ustar `mode`). Needs root on the host.
   */
  preserve?: boolean;
}

/** Split a tar entry name into safe relative components; throws ImageError for absolute or `..` names. */
export function safeEntryPath(name: string): string[] {
  if (name.includes('\0')) throw new ImageError(`tar: entry name contains NUL: ${JSON.stringify(name)}`);
  if (name.startsWith('/')) throw new ImageError(`tar: refusing absolute path ${JSON.stringify(name)}`);
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new ImageError(`tar: refusing path with "..": ${JSON.stringify(name)}`);
  return parts;
}

/**
 * Resolve directory components under `root` as if `root` were `/`: symlinks
 * are followed (absolute ones relative to root, `..` clamped at root) and
 * missing directories are created. Returns the host path of the directory.
 */
export async function resolveDirInRoot(root: string, components: string[]): Promise<string> {
  const cur: string[] = [];
  const queue = [...components];
  let hops = 0;
  while (queue.length > 0) {
    const c = queue.shift() as string;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      cur.pop();
      continue;
    }
    const p = path.join(root, ...cur, c);
    let st: fs.Stats | null;
    try {
      st = await fsp.lstat(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      st = null;
    }
    if (st === null) {
      await fsp.mkdir(p, { mode: 0o755 });
      cur.push(c);
    } else if (st.isDirectory()) {
      cur.push(c);
    } else if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw new ImageError(`tar: too many symlinks resolving ${components.join('/')}`);
      const target = await fsp.readlink(p);
      if (target.startsWith('/')) cur.length = 0;
      queue.unshift(...target.split('/'));
    } else {
      throw new ImageError(`tar: ${[...cur, c].join('/')} is not a directory`);
    }
  }
  return path.join(root, ...cur);
}

/** Remove whatever non-directory is at `p` (so a new entry replaces it, like dpkg). */
async function clearForReplace(p: string, display: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = await fsp.lstat(p);
  } catch {
    return;
  }
  if (st.isDirectory()) throw new ImageError(`tar: cannot replace directory ${display} with a non-directory`);
  await fsp.unlink(p);
}

/** Extract a tar archive (Buffer) into `dest` (created if needed); refuses entries escaping it. */
export async function extractTar(tar: Buffer, dest: string, opts: ExtractOptions = {}): Promise<TarStats> {
  const keep = opts.preserve === true;
  const own = async (p: string, h: tarStream.Header): Promise<void> => {
    if (keep) await fsp.lchown(p, h.uid ?? 0, h.gid ?? 0);
  };
  await fsp.mkdir(dest, { recursive: true });
  const root = await fsp.realpath(dest);
  const stats: TarStats = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, skipped: 0 };
  const ex = tarStream.extract();
  ex.end(tar);
  try {
    for await (const entry of ex) {
      const h = entry.header;
      const parts = safeEntryPath(h.name);
      const display = parts.join('/') || '.';
      const type = h.type ?? 'file';
      if (type === 'directory') {
        const dir = await resolveDirInRoot(root, parts);
        if (keep) {
          await own(dir, h);
          await fsp.chmod(dir, (h.mode ?? 0o755) & 0o7777);
        } else if (parts.length > 0) {
          await fsp.chmod(dir, ((h.mode ?? 0o755) & 0o777) | 0o700);
        }
        stats.dirs++;
        entry.resume();
        continue;
      }
      const base = parts[parts.length - 1];
      if (base === undefined) throw new ImageError(`tar: ${type} entry with an empty name`);
      if (type !== 'file' && type !== 'contiguous-file' && type !== 'symlink' && type !== 'link') {
        stats.skipped++;
        entry.resume();
        continue;
      }
      const parent = await resolveDirInRoot(root, parts.slice(0, -1));
      const target = path.join(parent, base);
      await clearForReplace(target, display);
      if (type === 'symlink') {
        const link = h.linkname ?? '';
        if (link === '' || link.includes('\0')) throw new ImageError(`tar: symlink ${display} has a bad target`);
        await fsp.symlink(link, target);
        await own(target, h);
        stats.symlinks++;
        entry.resume();
      } else if (type === 'link') {
        const srcParts = safeEntryPath(h.linkname ?? '');
        const srcBase = srcParts[srcParts.length - 1];
        if (srcBase === undefined) throw new ImageError(`tar: hard link ${display} has an empty target`);
        const src = path.join(await resolveDirInRoot(root, srcParts.slice(0, -1)), srcBase);
        const st = await fsp.lstat(src).catch(() => null);
        if (st === null || !st.isFile()) {
          throw new ImageError(`tar: hard link ${display} -> ${srcParts.join('/')}: target is not an extracted file`);
        }
        await fsp.link(src, target);
        stats.hardlinks++;
        entry.resume();
      } else {
        const mode = keep ? (h.mode ?? 0o644) & 0o7777 : ((h.mode ?? 0o644) & 0o777) | 0o200;
        const fh = await fsp.open(target, 'wx', keep ? 0o600 : mode);
        try {
          for await (const chunk of entry) await fh.write(chunk as Buffer);
          if (keep) await fh.chown(h.uid ?? 0, h.gid ?? 0); // before chmod: chown clears setuid
          await fh.chmod(mode); // the mode given to open() is filtered by the umask
        } finally {
          await fh.close();
        }
        stats.files++;
      }
    }
  } catch (e) {
    ex.destroy();
    if (e instanceof ImageError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code !== undefined && err.syscall !== undefined) throw e; // host I/O error: keep as-is
    throw new ImageError(`tar: corrupt archive: ${err.message}`, { cause: e });
  }
  return stats;
}
