/**
 * Layers (image-spec layer.md): applying a layer tarball to a root
 * filesystem directory with OCI semantics, and making a layer from a
 * directory.
 *
 * applyLayer: plain, gzip or (when node:zlib has it) zstd tar streams;
 * whiteouts `.wh.NAME` remove NAME from the lower layers and the opaque
 * whiteout `.wh..wh..opq` hides every lower entry of its directory
 * (layer.md "Whiteouts"; entries of the same layer are never hidden, in any
 * order); hard links, symlinks, PAX headers (long names, fractional mtimes,
 * big uid/gid); modes, mtimes, and ownership and device nodes/fifos when
 * running as root (skipped and counted otherwise). Extended attributes are
 * counted, not applied (Node has no xattr call). Nothing is ever written
 * outside the destination: names are checked by safeEntryPath and parent
 * directories resolved by resolveDirInRoot as if the destination were `/`.
 *
 * unpackImage: an image's layers applied in order (a root filesystem).
 *
 * layerFromDirectory: a deterministic gzip layer (entries sorted, hard links
 * detected by inode, fixed mtime if asked) with its digest and diff_id
 * (config.md "rootfs": the uncompressed tar's digest).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { ImageError } from '../errors.js';
import { resolveDirInRoot, safeEntryPath } from '../tar.js';
import { DigestCounter } from './digest.js';
import type { OciStore } from './layout.js';
import { MEDIA_TYPE_LAYER_GZIP, type Descriptor } from './types.js';

/** layer.md "Whiteouts": the prefix of a whiteout file's name. */
export const WHITEOUT_PREFIX = '.wh.';
/** layer.md "Opaque Whiteout": the name that hides a directory's lower entries. */
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
/** RFC 1952 2.3.1: gzip's ID1 ID2. */
const GZIP_MAGIC = [0x1f, 0x8b];
/** RFC 8878 3.1.1: the zstd frame magic 0xFD2FB528, little-endian. */
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** Counts of what applyLayer did. */
export interface ApplyStats {
  files: number; dirs: number; symlinks: number; hardlinks: number;
  /** Device nodes and fifos created (as root). */
  devices: number;
  /** Device nodes and fifos skipped (not root), and entries of unknown types. */
  skipped: number;
  whiteouts: number; opaques: number;
  /** Extended attributes present in PAX headers but not applied. */
  xattrsSkipped: number;
}

/** A layer compression, from its first bytes. */
export type Compression = 'none' | 'gzip' | 'zstd';

/** Recognize gzip and zstd by their magic numbers. */
export function detectCompression(head: Uint8Array): Compression {
  if (GZIP_MAGIC.every((b, i) => head[i] === b)) return 'gzip';
  if (ZSTD_MAGIC.every((b, i) => head[i] === b)) return 'zstd';
  return 'none';
}

/** A layer's bytes: a file path, a buffer, or a stream. */
export type LayerSource = string | Uint8Array | AsyncIterable<Uint8Array>;

/** The uncompressed tar stream of a layer (gzip and zstd detected by magic). */
export async function openUncompressed(src: LayerSource): Promise<Readable> {
  let head: Uint8Array;
  let raw: Readable;
  // A path is read as a stream, not by position: it may be a pipe (`load -i <(...)`, /dev/stdin).
  if (typeof src === 'string') src = fs.createReadStream(src);
  if (src instanceof Uint8Array) {
    head = src.subarray(0, 4);
    raw = Readable.from([Buffer.from(src.buffer, src.byteOffset, src.byteLength)]);
  } else {
    const it = src[Symbol.asyncIterator]();
    const first = await it.next();
    head = first.done === true ? new Uint8Array(0) : first.value;
    raw = Readable.from((async function* () {
      if (first.done !== true) yield first.value;
      for (let r = await it.next(); r.done !== true; r = await it.next()) yield r.value;
    })());
  }
  const kind = detectCompression(head);
  if (kind === 'none') return raw;
  let dec: Transform;
  if (kind === 'gzip') dec = zlib.createGunzip();
  else {
    const z = zlib as unknown as { createZstdDecompress?: () => Transform };
    if (typeof z.createZstdDecompress !== 'function') {
      raw.destroy();
      throw new ImageError('zstd layers are not supported (this Node has no zstd in node:zlib)');
    }
    dec = z.createZstdDecompress();
  }
  raw.on('error', (e) => dec.destroy(e));
  dec.on('error', () => raw.destroy());
  return raw.pipe(dec);
}

async function lstatOrNull(p: string): Promise<fs.Stats | null> {
  try {
    return await fsp.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Like resolveDirInRoot, but never creates anything: null if a component is missing or not a directory. */
async function lookupDirInRoot(root: string, components: string[]): Promise<string | null> {
  const cur: string[] = [];
  const queue = [...components];
  let hops = 0;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') { cur.pop(); continue; }
    const p = path.join(root, ...cur, c);
    const st = await lstatOrNull(p);
    if (st === null) return null;
    if (st.isDirectory()) cur.push(c);
    else if (st.isSymbolicLink()) {
      if (++hops > 40) return null;
      const t = await fsp.readlink(p);
      if (t.startsWith('/')) cur.length = 0;
      queue.unshift(...t.split('/'));
    } else return null;
  }
  return path.join(root, ...cur);
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, _o, stderr) => (err ? reject(new ImageError(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve()));
  });
}

interface DirMeta { p: string; parts: string[]; mode: number; uid: number; gid: number; mtime: Date | null }

/** Apply one layer to `dest` (created if needed); see the module comment. */
export async function applyLayer(src: LayerSource, dest: string, opts: { root?: boolean } = {}): Promise<ApplyStats> {
  const asRoot = opts.root ?? process.getuid?.() === 0;
  await fsp.mkdir(dest, { recursive: true });
  const root = await fsp.realpath(dest);
  const stats: ApplyStats = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, devices: 0, skipped: 0, whiteouts: 0, opaques: 0, xattrsSkipped: 0 };
  // Host paths this layer wrote, with their ancestors: whiteouts never hide them (layer.md "Whiteouts").
  const created = new Set<string>();
  const addCreated = (p: string): void => {
    for (let q = p; q.length > root.length && !created.has(q); q = path.dirname(q)) created.add(q);
  };
  const dirs: DirMeta[] = [];
  const stream = await openUncompressed(src);
  const ex = tarStream.extract();
  stream.on('error', (e) => ex.destroy(e));
  stream.pipe(ex);

  const removeTree = (p: string): Promise<void> => fsp.rm(p, { recursive: true, force: true });
  const hideLower = async (dir: string): Promise<void> => {
    for (const name of await fsp.readdir(dir)) {
      const p = path.join(dir, name);
      if (!created.has(p)) await removeTree(p);
      else if ((await lstatOrNull(p))?.isDirectory() === true) await hideLower(p);
    }
  };
  const clear = async (p: string): Promise<void> => {
    const st = await lstatOrNull(p);
    if (st !== null) await removeTree(p);
  };
  const own = async (p: string, uid: number, gid: number): Promise<void> => {
    if (asRoot) await fsp.lchown(p, uid, gid);
  };
  try {
    for await (const entry of ex) {
      const h = entry.header;
      const parts = safeEntryPath(h.name);
      const type = h.type ?? 'file';
      const pax = (h as { pax?: Record<string, string> }).pax ?? {};
      stats.xattrsSkipped += Object.keys(pax).filter((k) => k.startsWith('SCHILY.xattr.')).length;
      const mtime = pax.mtime !== undefined && Number.isFinite(Number(pax.mtime)) ? new Date(Number(pax.mtime) * 1000) : h.mtime ?? null;
      const uid = pax.uid !== undefined ? Number(pax.uid) : h.uid ?? 0;
      const gid = pax.gid !== undefined ? Number(pax.gid) : h.gid ?? 0;
      const mode = (h.mode ?? (type === 'directory' ? 0o755 : 0o644)) & 0o7777;
      const base = parts[parts.length - 1];
      if (base === undefined) { // "./": the root directory's own metadata
        if (type === 'directory') dirs.push({ p: root, parts: [], mode, uid, gid, mtime });
        entry.resume();
        continue;
      }
      const parentParts = parts.slice(0, -1);
      if (base.startsWith(WHITEOUT_PREFIX)) {
        entry.resume();
        const parent = await lookupDirInRoot(root, parentParts);
        if (base === WHITEOUT_OPAQUE) {
          stats.opaques++;
          if (parent !== null) await hideLower(parent);
        } else if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
          stats.skipped++; // other `.wh..wh.` names are reserved (layer.md "Whiteouts")
        } else {
          stats.whiteouts++;
          const name = base.slice(WHITEOUT_PREFIX.length);
          if (parent !== null && name !== '' && name !== '.' && name !== '..' && !created.has(path.join(parent, name))) {
            await removeTree(path.join(parent, name));
          }
        }
        continue;
      }
      const parent = await resolveDirInRoot(root, parentParts);
      const target = path.join(parent, base);
      addCreated(target);
      if (type === 'directory') {
        const st = await lstatOrNull(target);
        if (st === null || !st.isDirectory()) {
          if (st !== null) await removeTree(target);
          await fsp.mkdir(target, { mode: 0o755 });
        }
        dirs.push({ p: target, parts, mode, uid, gid, mtime });
        stats.dirs++;
        entry.resume();
      } else if (type === 'file' || type === 'contiguous-file') {
        await clear(target);
        const fh = await fsp.open(target, 'wx', 0o600);
        try {
          for await (const chunk of entry) await fh.write(chunk as Buffer);
          if (asRoot) await fh.chown(uid, gid);
          await fh.chmod(mode); // after chown, which clears set-user-ID
          if (mtime !== null) await fh.utimes(mtime, mtime);
        } finally {
          await fh.close();
        }
        stats.files++;
      } else if (type === 'symlink') {
        entry.resume();
        const link = h.linkname ?? '';
        if (link === '' || link.includes('\0')) throw new ImageError(`layer: symlink ${parts.join('/')} has a bad target`);
        await clear(target);
        await fsp.symlink(link, target);
        await own(target, uid, gid);
        if (mtime !== null) await fsp.lutimes(target, mtime, mtime);
        stats.symlinks++;
      } else if (type === 'link') {
        entry.resume();
        const srcParts = safeEntryPath(h.linkname ?? '');
        const srcBase = srcParts[srcParts.length - 1];
        if (srcBase === undefined) throw new ImageError(`layer: hard link ${parts.join('/')} has an empty target`);
        const srcDir = await lookupDirInRoot(root, srcParts.slice(0, -1));
        const srcPath = srcDir === null ? null : path.join(srcDir, srcBase);
        const st = srcPath === null ? null : await lstatOrNull(srcPath);
        if (srcPath === null || st === null || st.isDirectory()) {
          throw new ImageError(`layer: hard link ${parts.join('/')} -> ${srcParts.join('/')}: no such file in the layer or below`);
        }
        if (srcPath !== target) {
          await clear(target);
          await fsp.link(srcPath, target);
        }
        stats.hardlinks++;
      } else if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
        entry.resume();
        if (!asRoot) { stats.skipped++; continue; }
        await clear(target);
        const kind = type === 'fifo' ? 'p' : type === 'character-device' ? 'c' : 'b';
        await run('mknod', kind === 'p' ? [target, 'p'] : [target, kind, String(h.devmajor ?? 0), String(h.devminor ?? 0)]);
        await fsp.lchown(target, uid, gid);
        await fsp.chmod(target, mode);
        if (mtime !== null) await fsp.lutimes(target, mtime, mtime);
        stats.devices++;
      } else {
        entry.resume();
        stats.skipped++;
      }
    }
  } catch (e) {
    ex.destroy();
    stream.destroy();
    if (e instanceof ImageError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code !== undefined && err.syscall !== undefined) throw e;
    const zlibErr = err.code !== undefined && err.code.startsWith('Z_');
    throw new ImageError(`layer: corrupt ${zlibErr ? 'compressed stream' : 'tar'}: ${err.message}`, { cause: e });
  }
  // Directory metadata last, deepest first: creating entries inside changes a directory's mtime.
  dirs.sort((a, b) => b.p.length - a.p.length);
  for (const d of dirs) {
    // A later entry may have replaced the directory, or one above it, with a symlink: never follow it.
    if ((await lookupDirInRoot(root, d.parts)) !== d.p || (await lstatOrNull(d.p))?.isDirectory() !== true) continue;
    await own(d.p, d.uid, d.gid);
    // Without root, keep the owner's rwx so later layers can still be applied.
    await fsp.chmod(d.p, asRoot ? d.mode : d.mode | 0o700);
    if (d.mtime !== null) await fsp.utimes(d.p, d.mtime, d.mtime);
  }
  return stats;
}

/** A layer made by layerFromDirectory. */
export interface LayerBlob {
  /** The gzip blob's descriptor (mediaType tar+gzip). */
  desc: Descriptor;
  /** The uncompressed tar's digest, for the config's rootfs.diff_ids. */
  diffId: string;
  /** Bytes of the uncompressed tar. */
  uncompressedSize: number;
}

/** Options of layerFromDirectory: where the blob goes (a store or a file), and fixed metadata. */
export interface LayerFromDirectoryOptions {
  /** Put the blob into this store. */
  store?: OciStore;
  /** Or write it to this file. */
  output?: string;
  /** Give every entry this mtime (for reproducible layers). */
  mtime?: Date;
  /** Give every entry this owner (e.g. 0/0 for a rootfs built without root). */
  uid?: number;
  gid?: number;
}

/** A tar-stream header argument. */
type TarHeader = Partial<tarStream.Header> & { name: string };

class Hasher extends Transform {
  readonly counter = new DigestCounter();
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.counter.update(chunk);
    cb(null, chunk);
  }
}

/** Linux's dev_t encoding (major in bits 8-19, minor in bits 0-7 and 20-31; glibc gnu_dev_major). */
function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  return { devmajor: (rdev >>> 8) & 0xfff, devminor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) };
}

async function packDirectory(pack: tarStream.Pack, dir: string, opts: LayerFromDirectoryOptions): Promise<void> {
  const seen = new Map<string, string>(); // dev:ino -> first name, for hard links
  const add = (h: TarHeader, body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => { pack.entry(h, body ?? Buffer.alloc(0), (e) => (e ? reject(e) : resolve())); });
  const walk = async (rel: string): Promise<void> => {
    const names = (await fsp.readdir(path.join(dir, rel))).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = path.join(dir, r);
      const st = await fsp.lstat(p);
      const h: TarHeader = {
        name: r, mode: st.mode & 0o7777, uid: opts.uid ?? st.uid, gid: opts.gid ?? st.gid, mtime: opts.mtime ?? st.mtime,
      };
      const key = `${st.dev}:${st.ino}`;
      if (!st.isDirectory() && st.nlink > 1 && seen.has(key)) {
        await add({ ...h, type: 'link', linkname: seen.get(key)! });
        continue;
      }
      if (!st.isDirectory() && st.nlink > 1) seen.set(key, r);
      if (st.isDirectory()) {
        await add({ ...h, type: 'directory' });
        await walk(r);
      } else if (st.isFile()) {
        await new Promise<void>((resolve, reject) => {
          const w = pack.entry({ ...h, type: 'file', size: st.size }, (e) => (e ? reject(e) : resolve()));
          const rs = fs.createReadStream(p);
          rs.on('error', reject);
          rs.pipe(w as unknown as NodeJS.WritableStream);
        });
      } else if (st.isSymbolicLink()) {
        await add({ ...h, type: 'symlink', linkname: await fsp.readlink(p) });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await add({ ...h, type: st.isCharacterDevice() ? 'character-device' : 'block-device', ...devNumbers(st.rdev) });
      } else if (st.isFIFO()) {
        await add({ ...h, type: 'fifo' });
      } // sockets have no tar form
    }
  };
  await walk('');
  pack.finalize();
}

/** Make a gzip layer of `dir`'s contents, into opts.store or opts.output; see the module comment. */
export async function layerFromDirectory(dir: string, opts: LayerFromDirectoryOptions): Promise<LayerBlob> {
  if (opts.store === undefined && opts.output === undefined) throw new ImageError('layerFromDirectory: give a store or an output file');
  if (!(await fsp.stat(dir).catch(() => null))?.isDirectory()) throw new ImageError(`layerFromDirectory: ${dir} is not a directory`);
  const out = opts.store !== undefined ? opts.store.tempPath('layer') : opts.output!;
  const pack = tarStream.pack();
  const raw = new Hasher();
  const gz = new Hasher();
  const packing = packDirectory(pack, dir, opts).catch((e: unknown) => { pack.destroy(e as Error); });
  try {
    await pipeline(pack as unknown as AsyncIterable<Buffer>, raw, zlib.createGzip(), gz, fs.createWriteStream(out, { flags: 'w', mode: 0o644 }));
    await packing;
  } catch (e) {
    await fsp.rm(out, { force: true });
    throw e;
  }
  const desc: Descriptor = { mediaType: MEDIA_TYPE_LAYER_GZIP, digest: gz.counter.digest(), size: gz.counter.size };
  const blob: LayerBlob = { desc, diffId: raw.counter.digest(), uncompressedSize: raw.counter.size };
  if (opts.store !== undefined) await opts.store.adoptTempFile(out, desc);
  return blob;
}

/** Apply every layer of the image `ref` (its linux/riscv64 manifest), in order, to `dest`. */
export async function unpackImage(store: OciStore, ref: string, dest: string, opts: { root?: boolean } = {}): Promise<ApplyStats[]> {
  const img = await store.resolve(ref);
  const out: ApplyStats[] = [];
  for (const l of img.manifest.layers) out.push(await applyLayer(store.blobPath(l.digest), dest, opts));
  return out;
}
