/**
 * tsvm's image store: an OCI image layout (image-spec image-layout.md) under
 * the user's data directory (defaultImageStoreDir):
 *
 *   oci-layout          {"imageLayoutVersion":"1.0.0"} (image-layout.md "oci-layout file")
 *   index.json          an image index (image-layout.md "index.json file")
 *   blobs/sha256/<hex>  manifests, configs and layers (image-layout.md "Blobs")
 *   .tmp/               blobs being written, and index.json replacements
 *   index.json.lock     the writers' lock (lock.ts)
 *
 * Image names: each named image is one entry of index.json, a manifest (or
 * image index) descriptor with the annotation `org.opencontainers.image.ref.name`
 * set to the full normalized reference (`debian:latest`,
 * `localhost:5000/team/app:1.0`), as containerd does with
 * `io.containerd.image.name`; that value matches the annotations.md ref
 * grammar, so `skopeo inspect oci:DIR:debian:latest` and
 * `umoci unpack --image DIR:debian:latest` address the image. An entry
 * without the annotation is an untagged image (Docker's `<none>`).
 *
 * The interface other modules code against (keep it stable):
 *   - hasBlob(digest), putBlob({digest,size,mediaType?}, bytes | async chunks),
 *     putJson(obj, mediaType) -> Descriptor, readBlob(digest), blobPath(digest):
 *     blobs arrive verified (size and sha256) or not at all;
 *   - setRef(ref, manifestDescriptor): names an image whose blobs are all
 *     present; addImage(ref, {config, layers}): writes config and manifest and names it;
 *   - resolve(ref) -> {manifest, config, desc} (an image index is followed
 *     to its linux/riscv64 manifest); list(); tag(src, dst); removeRef(ref); gc().
 *
 * Blobs in flight: a blob stored but not yet named (a pull between putBlob
 * and setRef) is pinned by its store instance in `.tmp/pins-<pid>-<id>`;
 * gc() in any other instance or process keeps pinned blobs while the pinning
 * process lives, so a concurrent `rmi` cannot delete a pull's blobs.
 *
 * Crash consistency: a blob is renamed into blobs/ only once complete,
 * verified and fsynced; index.json is replaced by rename under an exclusive
 * lock, after checking every blob it names is present. A crash therefore
 * leaves at worst unreferenced blobs and temp files, which gc() removes.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImageError } from '../errors.js';
import { DigestCounter, DigestMismatchError, digestHex, isSha256Digest, sha256Digest, validateDigest } from './digest.js';
import { pidAlive, withLock } from './lock.js';
import { normalizeReference, parseReference, repositoryName } from './reference.js';
import {
  ANNOTATION_REF_NAME, MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, canonicalJson, checkConfig, checkIndex,
  checkManifest, isIndexMediaType, parseJson,
  type Descriptor, type ImageConfig, type ImageIndex, type Manifest,
} from './types.js';

/** image-layout.md "oci-layout file": the only defined version. */
export const IMAGE_LAYOUT_VERSION = '1.0.0';
/** The platform tsvm runs (image-index.md "platform"; config.md "architecture": GOARCH riscv64). */
export const TSVM_PLATFORM = { os: 'linux', architecture: 'riscv64' } as const;

/** The image store directory: $TSVM_DATA, else $XDG_DATA_HOME/tsvm/images, else ~/.local/share/tsvm/images. */
export function defaultImageStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TSVM_DATA) return path.resolve(env.TSVM_DATA);
  const xdg = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(env.HOME || os.homedir(), '.local', 'share');
  return path.join(xdg, 'tsvm', 'images');
}

/** An image resolved to the manifest tsvm runs. */
export interface ResolvedImage {
  /** The normalized name it was found under (null for an untagged image found by ID). */
  ref: string | null;
  /** The index.json entry (a manifest, or an image index). */
  entry: Descriptor;
  /** The linux/riscv64 manifest's descriptor. */
  desc: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  /** The config's digest: the image ID. */
  configDigest: string;
}

/** One row of list(). */
export interface ImageSummary {
  /** Normalized reference, or null for an untagged image. */
  ref: string | null;
  /** Repository name (`<none>` when untagged). */
  repository: string;
  /** Tag (`<none>` when untagged or digest-only). */
  tag: string;
  /** The index.json entry's digest (the manifest digest). */
  digest: string;
  /** Image ID (config digest). */
  id: string;
  /** The config's `created` time, if any. */
  created: string | null;
  /** Bytes of the config and layers as stored. */
  size: number;
}

/** What gc() removed. */
export interface GcResult { blobs: number; bytes: number; tempFiles: number }

const IMAGE_ID_RE = /^(?:sha256:)?([0-9a-f]{4,64})$/;

function blobKind(mediaType: string | undefined): string {
  if (mediaType === undefined) return 'blob';
  if (mediaType.includes('layer') || mediaType.includes('rootfs')) return 'layer';
  if (mediaType.includes('config')) return 'image config';
  if (mediaType.includes('index') || mediaType.includes('list')) return 'image index';
  if (mediaType.includes('manifest')) return 'manifest';
  return 'blob';
}

function refOf(d: Descriptor): string | null {
  return d.annotations?.[ANNOTATION_REF_NAME] ?? null;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** An OCI image layout on disk (see the module comment). */
export class OciStore {
  /** Blobs this instance stored that no name refers to yet (see pin()). */
  private readonly pins = new Set<string>();
  private readonly pinFile: string;
  private pinWrites: Promise<void> = Promise.resolve();

  private constructor(
    /** The layout's directory. */
    readonly dir: string,
  ) {
    this.pinFile = path.join(this.tmpDir, `pins-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  }

  /**
   * Protect blobs from gc() in other store instances (and processes) until
   * they are named: putBlob pins what it stores, setRefs unpins what it names.
   * Pins live in `.tmp/pins-<pid>-<id>` and die with their process.
   */
  async pin(digests: Iterable<string>): Promise<void> {
    for (const d of digests) this.pins.add(d);
    await this.savePins();
  }

  /** Drop pins (a failed pull or load that discards its blobs). */
  async unpin(digests: Iterable<string>): Promise<void> {
    let changed = false;
    for (const d of digests) changed = this.pins.delete(d) || changed;
    if (changed) await this.savePins();
  }

  private savePins(): Promise<void> {
    const write = async (): Promise<void> => {
      if (this.pins.size === 0) {
        await fsp.rm(this.pinFile, { force: true });
        return;
      }
      await fsp.writeFile(`${this.pinFile}.new`, [...this.pins].join('\n') + '\n');
      await fsp.rename(`${this.pinFile}.new`, this.pinFile);
    };
    this.pinWrites = this.pinWrites.then(write, write);
    return this.pinWrites;
  }

  /** Digests pinned by other live store instances. */
  private async othersPins(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const name of await fsp.readdir(this.tmpDir)) {
      const m = /^pins-(\d+)-[0-9a-f]+$/.exec(name);
      if (m === null || path.join(this.tmpDir, name) === this.pinFile || !pidAlive(Number(m[1]))) continue;
      const text = await fsp.readFile(path.join(this.tmpDir, name), 'utf8').catch(() => '');
      for (const d of text.split('\n')) if (d !== '') out.add(d);
    }
    return out;
  }

  /** Open (creating if needed) the store at `dir` (default: defaultImageStoreDir()). */
  static async open(dir: string = defaultImageStoreDir()): Promise<OciStore> {
    const store = new OciStore(path.resolve(dir));
    await fsp.mkdir(path.join(store.dir, 'blobs', 'sha256'), { recursive: true });
    await fsp.mkdir(store.tmpDir, { recursive: true });
    const layoutFile = path.join(store.dir, 'oci-layout');
    let layout: unknown = null;
    try {
      layout = parseJson(await fsp.readFile(layoutFile), `${layoutFile}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (layout === null) {
      await store.writeAtomic(layoutFile, Buffer.from(JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION })));
    } else if ((layout as { imageLayoutVersion?: unknown }).imageLayoutVersion !== IMAGE_LAYOUT_VERSION) {
      throw new ImageError(`${layoutFile}: unsupported imageLayoutVersion (expected ${IMAGE_LAYOUT_VERSION})`);
    }
    if (!fs.existsSync(store.indexFile)) {
      await withLock(store.lockFile, async () => {
        if (!fs.existsSync(store.indexFile)) await store.writeIndex({ schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: [] });
      });
    }
    return store;
  }

  /** Where blobs and index.json replacements are written before their rename. */
  get tmpDir(): string { return path.join(this.dir, '.tmp'); }
  private get indexFile(): string { return path.join(this.dir, 'index.json'); }
  private get lockFile(): string { return path.join(this.dir, 'index.json.lock'); }

  private tempName(prefix: string): string {
    return path.join(this.tmpDir, `${prefix}-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  }

  /** A fresh temp file path inside the store (same file system as the blobs, for rename). */
  tempPath(prefix = 'tmp'): string { return this.tempName(prefix); }

  /** Write `data` to `file` atomically: temp file, fsync, rename, fsync the directory. */
  private async writeAtomic(file: string, data: Buffer): Promise<void> {
    const tmp = this.tempName('write');
    const fh = await fsp.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await fsp.rename(tmp, file);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await fsyncDir(path.dirname(file));
  }

  /** The path of a blob (which may not exist). */
  blobPath(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  /** True if the blob is present (blobs are only ever present complete and verified). */
  async hasBlob(digest: string): Promise<boolean> {
    try {
      return (await fsp.stat(this.blobPath(digest))).isFile();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /**
   * Store a blob: stream it to a temp file in the store, verify its size and
   * sha256, fsync and rename it into place. On a mismatch the temp file is
   * deleted and DigestMismatchError thrown. If the blob is already present
   * `data` is not read.
   */
  async putBlob(desc: { digest: string; size: number; mediaType?: string }, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    validateDigest(desc.digest);
    const what = blobKind(desc.mediaType);
    if (await this.hasBlob(desc.digest)) return;
    const tmp = this.tempName('blob');
    const fh = await fsp.open(tmp, 'wx', 0o644);
    const counter = new DigestCounter();
    let ok = false;
    try {
      const chunks: AsyncIterable<Uint8Array> | Uint8Array[] = data instanceof Uint8Array ? [data] : data;
      for await (const chunk of chunks) {
        counter.update(chunk);
        if (counter.size > desc.size) throw new DigestMismatchError(`${what} ${desc.digest} (size)`, `${desc.size} bytes`, `more`);
        await fh.write(chunk);
      }
      if (counter.size !== desc.size) throw new DigestMismatchError(`${what} ${desc.digest} (size)`, `${desc.size} bytes`, `${counter.size} bytes`);
      const got = counter.digest();
      if (got !== desc.digest) throw new DigestMismatchError(what, desc.digest, got);
      await fh.sync();
      ok = true;
    } finally {
      await fh.close();
      if (!ok) await fsp.rm(tmp, { force: true });
    }
    try {
      await this.pin([desc.digest]); // before the blob appears, so no gc can see it unpinned
      await fsp.rename(tmp, this.blobPath(desc.digest));
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await fsyncDir(path.dirname(this.blobPath(desc.digest)));
  }

  /**
   * Adopt a file already in tmpDir whose digest and size the caller computed
   * while writing it (layerFromDirectory): re-verified, then renamed into place.
   */
  async adoptTempFile(file: string, desc: Descriptor): Promise<void> {
    try {
      const counter = new DigestCounter();
      for await (const chunk of fs.createReadStream(file)) counter.update(chunk as Buffer);
      const got = counter.digest();
      if (got !== desc.digest || counter.size !== desc.size) throw new DigestMismatchError(blobKind(desc.mediaType), desc.digest, got);
      const fh = await fsp.open(file, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.pin([desc.digest]);
      await fsp.rename(file, this.blobPath(desc.digest));
      await fsyncDir(path.dirname(this.blobPath(desc.digest)));
    } finally {
      await fsp.rm(file, { force: true });
    }
  }

  /** Store a JSON document as canonical bytes; returns its descriptor. */
  async putJson(obj: unknown, mediaType: string): Promise<Descriptor> {
    const bytes = canonicalJson(obj);
    const desc: Descriptor = { mediaType, digest: sha256Digest(bytes), size: bytes.length };
    await this.putBlob(desc, bytes);
    return desc;
  }

  /** Read a whole blob; throws an ImageError if it is missing. */
  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await fsp.readFile(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ImageError(`blob ${digest} is not in the image store`);
      throw e;
    }
  }

  /** Read a JSON blob, re-checking its digest (manifests and configs are small). */
  async readJson(digest: string, what: string): Promise<unknown> {
    const data = await this.readBlob(digest);
    const got = sha256Digest(data);
    if (got !== digest) throw new DigestMismatchError(what, digest, got);
    return parseJson(data, what);
  }

  /** index.json as it is now (a reader never sees a half-written one: it is replaced by rename). */
  async readIndex(): Promise<ImageIndex> {
    return checkIndex(parseJson(await fsp.readFile(this.indexFile), this.indexFile), this.indexFile);
  }

  private async writeIndex(idx: ImageIndex): Promise<void> {
    await this.writeAtomic(this.indexFile, Buffer.from(JSON.stringify(idx, null, 2) + '\n'));
  }

  /** Run `fn` on index.json under the store's lock; its result is written back atomically if it returns true. */
  async updateIndex<T>(fn: (idx: ImageIndex) => Promise<T | false> | T | false): Promise<T | false> {
    return withLock(this.lockFile, async () => {
      const idx = await this.readIndex();
      const r = await fn(idx);
      if (r !== false) await this.writeIndex(idx);
      return r;
    });
  }

  /** The manifest of `entry` tsvm runs: the entry itself, or an image index's linux/riscv64 entry. */
  async platformManifest(entry: Descriptor, what: string): Promise<{ desc: Descriptor; manifest: Manifest }> {
    let desc = entry;
    if (isIndexMediaType(entry.mediaType)) {
      const idx = checkIndex(await this.readJson(entry.digest, `${what} image index`), `${what} image index`);
      const pick = idx.manifests.find((m) => m.platform?.os === TSVM_PLATFORM.os && m.platform.architecture === TSVM_PLATFORM.architecture);
      if (pick === undefined) {
        const have = idx.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : '?')).join(', ');
        throw new ImageError(`${what} has no linux/riscv64 image (it has: ${have || 'none'})`);
      }
      desc = pick;
    }
    return { desc, manifest: checkManifest(await this.readJson(desc.digest, `${what} manifest`), `${what} manifest`) };
  }

  /** Throw unless `desc` (manifest or index) and every blob it needs are present. */
  private async checkComplete(desc: Descriptor, what: string): Promise<void> {
    if (!(await this.hasBlob(desc.digest))) throw new ImageError(`${what}: manifest ${desc.digest} is not in the store`);
    const { manifest } = await this.platformManifest(desc, what);
    for (const d of [manifest.config, ...manifest.layers]) {
      if (!(await this.hasBlob(d.digest))) throw new ImageError(`${what}: blob ${d.digest} is not in the store`);
    }
  }

  /** Name (or add untagged, with ref null) several images at once, atomically; every blob must be present. */
  async setRefs(items: { ref: string | null; desc: Descriptor }[]): Promise<void> {
    const named = items.map((it) => ({ ref: it.ref === null ? null : normalizeReference(it.ref), desc: it.desc }));
    await this.updateIndex(async (idx) => {
      for (const it of named) {
        await this.checkComplete(it.desc, it.ref ?? it.desc.digest);
        if (it.ref === null && idx.manifests.some((m) => m.digest === it.desc.digest)) continue;
        const entry: Descriptor = { mediaType: it.desc.mediaType, digest: it.desc.digest, size: it.desc.size };
        if (it.ref !== null) entry.annotations = { [ANNOTATION_REF_NAME]: it.ref };
        idx.manifests = idx.manifests.filter((m) => refOf(m) !== it.ref || (it.ref === null && m.digest !== it.desc.digest));
        // A named image replaces an untagged entry of the same manifest.
        if (it.ref !== null) idx.manifests = idx.manifests.filter((m) => refOf(m) !== null || m.digest !== it.desc.digest);
        idx.manifests.push(entry);
      }
      return true;
    });
    const referenced: string[] = [];
    for (const it of items) {
      referenced.push(it.desc.digest);
      const pm = await this.platformManifest(it.desc, it.desc.digest).catch(() => null);
      if (pm !== null) referenced.push(pm.desc.digest, pm.manifest.config.digest, ...pm.manifest.layers.map((l) => l.digest));
    }
    await this.unpin(referenced);
  }

  /** Name an image: `desc` is a manifest (or image index) descriptor whose blobs are all present. */
  async setRef(ref: string, desc: Descriptor): Promise<void> {
    await this.setRefs([{ ref, desc }]);
  }

  /** Write `config` and a manifest for `layers` (already stored), and name the image; returns the manifest descriptor. */
  async addImage(ref: string | null, image: { config: ImageConfig; layers: Descriptor[]; annotations?: Record<string, string> }): Promise<Descriptor> {
    if (image.config.rootfs.diff_ids.length !== image.layers.length) throw new ImageError('addImage: the config has a diff_id per layer');
    for (const l of image.layers) if (!(await this.hasBlob(l.digest))) throw new ImageError(`addImage: layer ${l.digest} is not in the store`);
    const configDesc = await this.putJson(image.config, MEDIA_TYPE_CONFIG);
    const manifest: Manifest = {
      schemaVersion: 2, mediaType: MEDIA_TYPE_MANIFEST, config: configDesc,
      layers: image.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    if (image.annotations) manifest.annotations = image.annotations;
    const desc = await this.putJson(manifest, MEDIA_TYPE_MANIFEST);
    await this.setRefs([{ ref, desc }]);
    return desc;
  }

  /** The index.json entries that `ref` names: a reference, or an image ID (config digest) prefix. */
  private async findEntries(idx: ImageIndex, ref: string): Promise<{ entries: Descriptor[]; byName: boolean }> {
    let norm: string | null = null;
    try {
      norm = normalizeReference(ref);
    } catch {
      // not a name: maybe an image ID
    }
    if (norm !== null) {
      const hit = idx.manifests.filter((m) => refOf(m) === norm);
      if (hit.length > 0) return { entries: hit, byName: true };
      const parsed = parseReference(ref);
      if (parsed.digest !== null) {
        const repo = repositoryName(parsed);
        const byDigest = idx.manifests.filter((m) => m.digest === parsed.digest && refOf(m) !== null && repositoryName(parseReference(refOf(m)!)) === repo);
        if (byDigest.length > 0) return { entries: byDigest.slice(0, 1), byName: true };
      }
    }
    const m = IMAGE_ID_RE.exec(ref);
    if (m !== null) {
      const prefix = m[1]!;
      const out: Descriptor[] = [];
      const ids = new Set<string>();
      for (const e of idx.manifests) {
        const id = await this.imageId(e).catch(() => null);
        if (id !== null && (digestHex(id).startsWith(prefix) || digestHex(e.digest).startsWith(prefix))) { out.push(e); ids.add(id); }
      }
      if (ids.size > 1) throw new ImageError(`image ID prefix ${ref} is ambiguous`);
      if (out.length > 0) return { entries: out, byName: false };
    }
    throw new ImageError(`No such image: ${ref}`);
  }

  private async imageId(entry: Descriptor): Promise<string> {
    return (await this.platformManifest(entry, entry.digest)).manifest.config.digest;
  }

  /** Resolve a name or image ID to its linux/riscv64 manifest and config. */
  async resolve(ref: string): Promise<ResolvedImage> {
    const { entries } = await this.findEntries(await this.readIndex(), ref);
    const entry = entries[0]!;
    const what = refOf(entry) ?? ref;
    const { desc, manifest } = await this.platformManifest(entry, what);
    const config = checkConfig(await this.readJson(manifest.config.digest, `${what} config`), `${what} config`);
    return { ref: refOf(entry), entry, desc, manifest, config, configDigest: manifest.config.digest };
  }

  /** Every image in the store, one row per name (and one per untagged image). */
  async list(): Promise<ImageSummary[]> {
    const idx = await this.readIndex();
    const rows: ImageSummary[] = [];
    for (const e of idx.manifests) {
      const ref = refOf(e);
      let manifest: Manifest;
      let config: ImageConfig;
      try {
        manifest = (await this.platformManifest(e, ref ?? e.digest)).manifest;
        config = checkConfig(await this.readJson(manifest.config.digest, 'image config'));
      } catch {
        continue; // an index entry without a riscv64 image: not runnable here, not listed
      }
      let repository = '<none>';
      let tag = '<none>';
      if (ref !== null) {
        const p = parseReference(ref);
        repository = repositoryName(p);
        tag = p.tag ?? '<none>';
      }
      const size = manifest.config.size + manifest.layers.reduce((s, l) => s + l.size, 0);
      rows.push({ ref, repository, tag, digest: e.digest, id: manifest.config.digest, created: config.created ?? null, size });
    }
    return rows;
  }

  /** Give the image `src` the additional name `dst`. */
  async tag(src: string, dst: string): Promise<void> {
    const { entries } = await this.findEntries(await this.readIndex(), src);
    const e = entries[0]!;
    await this.setRef(dst, { mediaType: e.mediaType, digest: e.digest, size: e.size });
  }

  /**
   * Remove a name (or, given an image ID, the image's only name or untagged
   * entry); the blobs stay until gc(). Returns the removed entries' refs.
   */
  async removeRef(ref: string, opts: { force?: boolean } = {}): Promise<(string | null)[]> {
    const removed: (string | null)[] = [];
    await this.updateIndex(async (idx) => {
      const { entries, byName } = await this.findEntries(idx, ref);
      if (!byName && entries.filter((e) => refOf(e) !== null).length > 1 && opts.force !== true) {
        throw new ImageError(`unable to delete ${ref} (must be forced): image is referenced in multiple repositories`);
      }
      idx.manifests = idx.manifests.filter((m) => !entries.includes(m));
      removed.push(...entries.map(refOf));
      return true;
    });
    return removed;
  }

  /** Every digest index.json reaches (entries, image index children, configs and layers). */
  private async liveDigests(idx: ImageIndex): Promise<Set<string>> {
    const live = new Set<string>();
    const mark = async (d: Descriptor): Promise<void> => {
      live.add(d.digest);
      if (!(await this.hasBlob(d.digest))) return;
      if (isIndexMediaType(d.mediaType)) {
        const child = checkIndex(await this.readJson(d.digest, 'image index'));
        for (const m of child.manifests) await mark(m);
      } else if (blobKind(d.mediaType) === 'manifest') {
        const m = checkManifest(await this.readJson(d.digest, 'manifest'));
        for (const x of [m.config, ...m.layers]) live.add(x.digest);
      }
    };
    for (const e of idx.manifests) await mark(e);
    return live;
  }

  /** Delete the given blobs unless index.json reaches them (undoing a failed load). */
  async discardBlobs(digests: Iterable<string>): Promise<void> {
    await withLock(this.lockFile, async () => {
      const live = await this.liveDigests(await this.readIndex());
      const list = [...digests];
      for (const d of list) if (!live.has(d)) await fsp.rm(this.blobPath(d), { force: true });
      await this.unpin(list);
    });
  }

  /** Delete every blob no index.json entry reaches, and temp files of dead writers. */
  async gc(): Promise<GcResult> {
    const result: GcResult = { blobs: 0, bytes: 0, tempFiles: 0 };
    await withLock(this.lockFile, async () => {
      const live = await this.liveDigests(await this.readIndex());
      for (const d of await this.othersPins()) live.add(d);
      const blobDir = path.join(this.dir, 'blobs', 'sha256');
      for (const name of await fsp.readdir(blobDir)) {
        const digest = `sha256:${name}`;
        if (isSha256Digest(digest) && live.has(digest)) continue;
        const p = path.join(blobDir, name);
        const st = await fsp.lstat(p).catch(() => null);
        if (st === null) continue;
        await fsp.rm(p, { force: true, recursive: true });
        result.blobs++;
        result.bytes += st.size;
      }
      for (const name of await fsp.readdir(this.tmpDir)) {
        const pid = Number(/^[a-z]+-(\d+)-/.exec(name)?.[1] ?? NaN);
        if (pid === process.pid || pidAlive(pid)) continue;
        await fsp.rm(path.join(this.tmpDir, name), { force: true, recursive: true });
        result.tempFiles++;
      }
    });
    return result;
  }
}
