/**
 * Loading image archives into the store, and `docker import`.
 *
 * load() reads a tarball (optionally gzip-compressed, as `docker load`
 * accepts) and detects its form:
 *   - an OCI archive: a tar of an image layout (image-layout.md), with
 *     `oci-layout`, `index.json` and `blobs/sha256/*`;
 *   - Docker >= 25's `docker save`: the same layout plus a `manifest.json`
 *     whose Config and Layers point into `blobs/sha256/`;
 *   - the classic `docker save` form (docker's image spec, "Combined Image
 *     JSON + Filesystem Changeset Format"): `manifest.json`
 *     [{Config, RepoTags, Layers}], `<id>.json` configs, `<id>/layer.tar`
 *     layers and `repositories` (old archives link duplicate layers with
 *     symlinks, which are followed inside the archive).
 * Every digest that can be checked is: each blob against its name, each
 * config against its name (`<hex>.json`), and each layer's uncompressed
 * digest against the config's rootfs.diff_ids (config.md "rootfs"). Images
 * are named only once everything verified, in one index.json update; on any
 * failure the blobs this load added are removed again, so the store is
 * exactly as it was.
 *
 * Names: manifest.json's RepoTags when present; otherwise an index entry's
 * `io.containerd.image.name` (Docker >= 25, containerd), else its
 * `org.opencontainers.image.ref.name` read as a reference (tsvm writes the
 * full reference there; umoci and skopeo write what they were given, often
 * a bare name such as `base`, which becomes `base:latest`); an entry with
 * no name, or one that is not a valid reference, loads untagged.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import tarStream from 'tar-stream';
import { ImageError } from '../errors.js';
import { safeEntryPath } from '../tar.js';
import { DigestCounter, DigestMismatchError, digestHex, isSha256Digest, sha256Digest } from './digest.js';
import { detectCompression, openUncompressed, type LayerSource } from './layer-apply.js';
import { TSVM_PLATFORM, type OciStore } from './layout.js';
import { normalizeReference } from './reference.js';
import {
  ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_TAR,
  MEDIA_TYPE_MANIFEST, checkConfig, checkIndex, checkManifest, parseJson,
  type Descriptor, type ImageConfig, type Manifest,
} from './types.js';

/** Archive members up to this size are kept in memory (configs, manifests); larger ones go to temp files. */
const IN_MEMORY_MAX = 1 << 20;
/** Most links followed to find an archive member. */
const MAX_LINK_HOPS = 16;

/** One image a load added. */
export interface LoadedImage { ref: string | null; id: string; digest: string }

type Member = { data: Buffer } | { file: string; size: number; digest: string };

/** Digest of a layer's uncompressed tar (its diff_id), from a file. */
export async function uncompressedDigest(file: string, what: string): Promise<string> {
  const c = new DigestCounter();
  try {
    for await (const chunk of await openUncompressed(file)) c.update(chunk as Buffer);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(`${what}: corrupt compressed layer: ${(e as Error).message}`);
  }
  return c.digest();
}

class LoadSession {
  readonly members = new Map<string, Member>();
  readonly links = new Map<string, string>();
  readonly newBlobs = new Set<string>();
  readonly temps: string[] = [];
  private readonly diffIds = new Map<string, string>();
  private readonly adopted = new Map<string, Descriptor>();

  constructor(readonly store: OciStore) {}

  /** Store a blob if new, remembering it so a failed load can remove it. */
  async put(desc: Descriptor, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    if (await this.store.hasBlob(desc.digest)) return;
    await this.store.putBlob(desc, data);
    this.newBlobs.add(desc.digest);
  }

  async read(source: LayerSource): Promise<void> {
    const ex = tarStream.extract();
    const stream = await openUncompressed(source);
    stream.on('error', (e) => ex.destroy(e));
    stream.pipe(ex);
    try {
      for await (const entry of ex) {
        const h = entry.header;
        const name = safeEntryPath(h.name).join('/');
        const type = h.type ?? 'file';
        if (type === 'symlink' || type === 'link') {
          const target = type === 'symlink' ? path.posix.join(path.posix.dirname(name), h.linkname ?? '') : safeEntryPath(h.linkname ?? '').join('/');
          if (target.startsWith('..')) throw new ImageError(`archive link ${name} points outside the archive`);
          this.links.set(name, target);
          entry.resume();
          continue;
        }
        if (type !== 'file' && type !== 'contiguous-file') { entry.resume(); continue; }
        const blob = /^blobs\/sha256\/([0-9a-f]+)$/.exec(name);
        if (blob !== null && isSha256Digest(`sha256:${blob[1]}`)) {
          const digest = `sha256:${blob[1]}`;
          if (await this.store.hasBlob(digest)) { entry.resume(); continue; }
          try {
            await this.put({ mediaType: '', digest, size: h.size ?? 0 }, entry as unknown as AsyncIterable<Uint8Array>);
          } catch (e) {
            if (e instanceof DigestMismatchError) throw new DigestMismatchError(`archive file ${name}`, e.expected, e.got);
            throw e;
          }
          continue;
        }
        if ((h.size ?? 0) <= IN_MEMORY_MAX) {
          const chunks: Buffer[] = [];
          for await (const c of entry) chunks.push(c as Buffer);
          this.members.set(name, { data: Buffer.concat(chunks) });
        } else {
          const file = this.store.tempPath('load');
          this.temps.push(file);
          const c = new DigestCounter();
          const fh = await fsp.open(file, 'wx', 0o644);
          try {
            for await (const chunk of entry) { c.update(chunk as Buffer); await fh.write(chunk as Buffer); }
          } finally {
            await fh.close();
          }
          this.members.set(name, { file, size: c.size, digest: c.digest() });
        }
      }
    } catch (e) {
      ex.destroy();
      stream.destroy();
      if (e instanceof ImageError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (err.code !== undefined && err.syscall !== undefined) throw e;
      throw new ImageError(`the archive is truncated or corrupt: ${err.message}`, { cause: e });
    }
  }

  private follow(name: string): string {
    let n = path.posix.normalize(name).replace(/^\.\//, '');
    for (let hops = 0; this.links.has(n); hops++) {
      if (hops > MAX_LINK_HOPS) throw new ImageError(`archive member ${name}: too many links`);
      n = this.links.get(n)!;
    }
    return n;
  }

  /** The blob digest an archive path names, if it is a stored `blobs/sha256/<hex>` member. */
  private blobOf(name: string): string | null {
    const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(this.follow(name));
    return m === null ? null : `sha256:${m[1]}`;
  }

  /** A small member's bytes (a config or manifest). */
  async bytes(name: string): Promise<Buffer> {
    const blob = this.blobOf(name);
    if (blob !== null) {
      if (!(await this.store.hasBlob(blob))) throw new ImageError(`archive: ${name} is missing`);
      return this.store.readBlob(blob);
    }
    const m = this.members.get(this.follow(name));
    if (m === undefined) throw new ImageError(`archive: ${name} is missing`);
    return 'data' in m ? m.data : fsp.readFile(m.file);
  }

  /** Check a layer blob's diff_id (once per load). */
  async checkDiffId(layer: Descriptor, expected: string | undefined, what: string): Promise<void> {
    let got = this.diffIds.get(layer.digest);
    if (got === undefined) {
      got = await uncompressedDigest(this.store.blobPath(layer.digest), what);
      this.diffIds.set(layer.digest, got);
    }
    if (got !== expected) throw new DigestMismatchError(`${what} (diff_id)`, expected ?? 'none', got);
  }

  /** A layer member as a stored blob: in blobs/ already, or a member moved into the store. */
  async layer(name: string, what: string): Promise<Descriptor> {
    const blob = this.blobOf(name);
    if (blob !== null) {
      if (!(await this.store.hasBlob(blob))) throw new ImageError(`archive: ${what} (${name}) is missing`);
      const st = await fsp.stat(this.store.blobPath(blob));
      return { mediaType: await this.layerMediaType(this.store.blobPath(blob)), digest: blob, size: st.size };
    }
    const key = this.follow(name);
    const done = this.adopted.get(key);
    if (done !== undefined) return done;
    const m = this.members.get(key);
    if (m === undefined) throw new ImageError(`archive: ${what} (${name}) is missing`);
    let desc: Descriptor;
    if ('data' in m) {
      desc = { mediaType: detectCompression(m.data) === 'gzip' ? MEDIA_TYPE_LAYER_GZIP : MEDIA_TYPE_LAYER_TAR, digest: sha256Digest(m.data), size: m.data.length };
      await this.put(desc, m.data);
    } else {
      desc = { mediaType: await this.layerMediaType(m.file), digest: m.digest, size: m.size };
      if (await this.store.hasBlob(desc.digest)) await fsp.rm(m.file, { force: true });
      else {
        await this.store.adoptTempFile(m.file, desc);
        this.newBlobs.add(desc.digest);
      }
    }
    this.adopted.set(key, desc);
    return desc;
  }

  private async layerMediaType(file: string): Promise<string> {
    const fh = await fsp.open(file, 'r');
    try {
      const b = Buffer.alloc(4);
      const { bytesRead } = await fh.read(b, 0, 4, 0);
      const kind = detectCompression(b.subarray(0, bytesRead));
      if (kind === 'zstd') throw new ImageError('zstd layers are not supported');
      return kind === 'gzip' ? MEDIA_TYPE_LAYER_GZIP : MEDIA_TYPE_LAYER_TAR;
    } finally {
      await fh.close();
    }
  }
}

interface DockerManifestEntry { Config: string; RepoTags: string[] | null; Layers: string[] }

function checkDockerManifest(v: unknown): DockerManifestEntry[] {
  if (!Array.isArray(v)) throw new ImageError('archive manifest.json: expected an array');
  return v.map((e: unknown, i) => {
    const o = e as Partial<DockerManifestEntry> | null;
    if (o === null || typeof o !== 'object' || typeof o.Config !== 'string' || !Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string')) {
      throw new ImageError(`archive manifest.json entry ${i}: needs Config and Layers`);
    }
    const tags = Array.isArray(o.RepoTags) ? o.RepoTags.filter((t): t is string => typeof t === 'string') : null;
    return { Config: o.Config, RepoTags: tags, Layers: o.Layers };
  });
}

/** The name an OCI index entry gives an image (see the module comment), or null. */
function entryName(d: Descriptor): string | null {
  for (const key of [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME]) {
    const v = d.annotations?.[key];
    if (v === undefined) continue;
    try {
      return normalizeReference(v);
    } catch {
      // not a reference: try the next annotation
    }
  }
  return null;
}

async function verifyImage(s: LoadSession, manifest: Manifest, config: ImageConfig, what: string): Promise<void> {
  const ids = config.rootfs.diff_ids;
  if (ids.length !== manifest.layers.length) {
    throw new ImageError(`${what}: the config lists ${ids.length} diff_ids for ${manifest.layers.length} layers`);
  }
  for (const [i, l] of manifest.layers.entries()) {
    if (!(await s.store.hasBlob(l.digest))) throw new ImageError(`${what}: layer ${l.digest} is not in the archive`);
    await s.checkDiffId(l, ids[i], `${what} layer ${i}`);
  }
}

async function loadOci(s: LoadSession, tagsByConfig: Map<string, string[]>): Promise<{ ref: string | null; desc: Descriptor; id: string }[]> {
  const idx = checkIndex(parseJson(await s.bytes('index.json'), 'archive index.json'), 'archive index.json');
  const out: { ref: string | null; desc: Descriptor; id: string }[] = [];
  for (const e of idx.manifests) {
    const what = entryName(e) ?? e.digest;
    if (!(await s.store.hasBlob(e.digest))) throw new ImageError(`archive index.json names ${e.digest}, which is not in the archive`);
    const { desc, manifest } = await s.store.platformManifest(e, what);
    if (!(await s.store.hasBlob(manifest.config.digest))) throw new ImageError(`${what}: config ${manifest.config.digest} is not in the archive`);
    const config = checkConfig(await s.store.readJson(manifest.config.digest, `${what} config`), `${what} config`);
    await verifyImage(s, manifest, config, what);
    const plain: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    const tags = tagsByConfig.get(manifest.config.digest);
    const names = tags !== undefined && tags.length > 0 ? tags : [entryName(e)];
    for (const ref of names) out.push({ ref, desc: plain, id: manifest.config.digest });
  }
  return out;
}

async function loadDockerClassic(s: LoadSession, entries: DockerManifestEntry[]): Promise<{ ref: string | null; desc: Descriptor; id: string }[]> {
  const out: { ref: string | null; desc: Descriptor; id: string }[] = [];
  for (const [n, e] of entries.entries()) {
    const what = e.RepoTags?.[0] ?? `image ${n}`;
    const cfgBytes = await s.bytes(e.Config);
    const cfgDigest = sha256Digest(cfgBytes);
    const named = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(e.Config);
    if (named !== null && named[1] !== digestHex(cfgDigest)) throw new DigestMismatchError(`${what} config ${e.Config}`, `sha256:${named[1]}`, cfgDigest);
    const config = checkConfig(parseJson(cfgBytes, `${what} config`), `${what} config`);
    const layers: Descriptor[] = [];
    for (const [i, l] of e.Layers.entries()) layers.push(await s.layer(l, `${what} layer ${i}`));
    const configDesc: Descriptor = { mediaType: MEDIA_TYPE_CONFIG, digest: cfgDigest, size: cfgBytes.length };
    await s.put(configDesc, cfgBytes);
    const manifest: Manifest = { schemaVersion: 2, mediaType: MEDIA_TYPE_MANIFEST, config: configDesc, layers };
    await verifyImage(s, manifest, config, what);
    const mBytes = Buffer.from(JSON.stringify(manifest));
    const desc: Descriptor = { mediaType: MEDIA_TYPE_MANIFEST, digest: sha256Digest(mBytes), size: mBytes.length };
    await s.put(desc, mBytes);
    const names = e.RepoTags !== null && e.RepoTags.length > 0 ? e.RepoTags : [null];
    for (const ref of names) out.push({ ref, desc, id: cfgDigest });
  }
  return out;
}

/** Load an image archive (a file path or a byte stream) into the store; see the module comment. */
export async function load(store: OciStore, source: LayerSource): Promise<LoadedImage[]> {
  const s = new LoadSession(store);
  try {
    await s.read(source);
    const hasIndex = s.members.has('index.json');
    const hasManifest = s.members.has('manifest.json');
    if (!hasIndex && !hasManifest) throw new ImageError('not an image archive (no index.json or manifest.json in it)');
    let items: { ref: string | null; desc: Descriptor; id: string }[];
    const dockerEntries = hasManifest ? checkDockerManifest(parseJson(await s.bytes('manifest.json'), 'archive manifest.json')) : [];
    if (hasIndex) {
      // Docker >= 25: the layout is complete; manifest.json adds Docker's names (RepoTags).
      const tags = new Map<string, string[]>();
      for (const e of dockerEntries) {
        const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(e.Config);
        if (blob !== null && e.RepoTags !== null) tags.set(`sha256:${blob[1]}`, e.RepoTags);
      }
      items = await loadOci(s, tags);
    } else {
      items = await loadDockerClassic(s, dockerEntries);
    }
    const refs = items.map((it) => ({ ...it, ref: it.ref === null ? null : normalizeReference(it.ref) }));
    await store.setRefs(refs);
    const seen = new Set<string>();
    return refs.filter((r) => { const k = `${r.ref}|${r.desc.digest}`; if (seen.has(k)) return false; seen.add(k); return true; })
      .map((r) => ({ ref: r.ref, id: r.id, digest: r.desc.digest }));
  } catch (e) {
    await store.discardBlobs(s.newBlobs).catch(() => undefined);
    throw e;
  } finally {
    for (const t of s.temps) await fsp.rm(t, { force: true });
  }
}

class Counting extends Transform {
  readonly raw = new DigestCounter();
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void { this.raw.update(chunk); cb(null, chunk); }
}

/**
 * `docker import`: a root filesystem tarball (plain or gzip; a path or a
 * stream) becomes a one-layer linux/riscv64 image named `ref`. The tarball
 * is checked entry by entry (names that would leave the root are refused).
 */
export async function importTarball(store: OciStore, source: LayerSource, ref: string, opts: { comment?: string } = {}): Promise<LoadedImage> {
  const name = normalizeReference(ref);
  const tmp = store.tempPath('import');
  let added: string | null = null;
  try {
    // Spool the bytes as given (counting their digest), then read the tar back to check it and get the diff_id.
    const counting = new Counting();
    const src = typeof source === 'string' ? fs.createReadStream(source) : source;
    const fh = await fsp.open(tmp, 'wx', 0o644);
    try {
      for await (const chunk of src) { counting.raw.update(chunk as Uint8Array); await fh.write(chunk as Uint8Array); }
    } finally {
      await fh.close();
    }
    const rawDigest = counting.raw.digest();
    const ex = tarStream.extract();
    const stream = await openUncompressed(tmp);
    const hashing = new Counting();
    stream.on('error', (e) => ex.destroy(e));
    stream.pipe(hashing).pipe(ex);
    let entries = 0;
    try {
      for await (const entry of ex) {
        safeEntryPath(entry.header.name);
        entries++;
        entry.resume();
      }
    } catch (e) {
      if (e instanceof ImageError) throw new ImageError(`import: ${e.message}`);
      throw new ImageError(`import: the tarball is truncated or corrupt: ${(e as Error).message}`);
    }
    if (entries === 0) throw new ImageError('import: the tarball is empty');
    const diffId = hashing.raw.digest();
    const compressed = detectCompression(fs.readFileSync(tmp).subarray(0, 4));
    if (compressed === 'zstd') throw new ImageError('zstd layers are not supported');
    const layer: Descriptor = { mediaType: compressed === 'gzip' ? MEDIA_TYPE_LAYER_GZIP : MEDIA_TYPE_LAYER_TAR, digest: rawDigest, size: counting.raw.size };
    if (!(await store.hasBlob(layer.digest))) {
      await store.adoptTempFile(tmp, layer);
      added = layer.digest;
    }
    const created = new Date().toISOString();
    const config: ImageConfig = {
      created, architecture: TSVM_PLATFORM.architecture, os: TSVM_PLATFORM.os, config: {},
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created, created_by: 'tsvm import', comment: opts.comment ?? 'Imported from tarball' }],
    };
    const desc = await store.addImage(name, { config, layers: [layer] });
    const m = checkManifest(await store.readJson(desc.digest, 'manifest'));
    return { ref: name, id: m.config.digest, digest: desc.digest };
  } catch (e) {
    if (added !== null) await store.discardBlobs([added]).catch(() => undefined);
    throw e;
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}
