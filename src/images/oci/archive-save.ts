/**
 * Saving images from the store as archives (`docker save`), in three forms:
 *   - `oci`: a tar of an image layout (image-layout.md): `oci-layout`,
 *     `index.json` (one entry per name, annotated with
 *     `org.opencontainers.image.ref.name` = the full reference, as the store
 *     does) and `blobs/sha256/*`;
 *   - `docker` (the default, as Docker >= 25's own `docker save`): the same
 *     layout plus `manifest.json` [{Config, RepoTags, Layers}] pointing into
 *     `blobs/sha256/` and `repositories`, so both OCI tools and every Docker
 *     version load it; index entries also carry `io.containerd.image.name`;
 *   - `docker-classic`: Docker < 25's form (docker's image spec, "Combined
 *     Image JSON + Filesystem Changeset Format"): `<config hex>.json`,
 *     `<layer id>/{VERSION,json,layer.tar}` with uncompressed layers,
 *     `manifest.json` and `repositories`.
 * The images saved are each name's linux/riscv64 manifest. A file is
 * written to a temp file next to it and renamed when complete.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { ImageError } from '../errors.js';
import { digestHex } from './digest.js';
import { openUncompressed } from './layer-apply.js';
import type { OciStore, ResolvedImage } from './layout.js';
import { parseReference, repositoryName } from './reference.js';
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, MEDIA_TYPE_LAYER_TAR, type Descriptor } from './types.js';

/** The archive forms save() writes. */
export const ARCHIVE_FORMATS = ['oci', 'docker', 'docker-classic'] as const;
/** An archive form. */
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number];
/** The default form: Docker >= 25's, readable as an OCI archive and as a docker-archive. */
export const DEFAULT_ARCHIVE_FORMAT: ArchiveFormat = 'docker';
/** Modification time of every archive member (the epoch: archives of the same images are identical). */
const MEMBER_MTIME = new Date(0);
/** docker's image spec v1 "VERSION" file content. */
const LAYER_VERSION = '1.0';

interface Saved { image: ResolvedImage; names: string[] }

type Add = (name: string, data: Buffer | { file: string; size: number }) => Promise<void>;

function tarWriter(pack: tarStream.Pack): Add {
  return (name, data) => new Promise((resolve, reject) => {
    const h = { name, mode: 0o644, mtime: MEMBER_MTIME, type: 'file' as const };
    if (Buffer.isBuffer(data)) {
      pack.entry({ ...h, size: data.length }, data, (e) => (e ? reject(e) : resolve()));
      return;
    }
    const w = pack.entry({ ...h, size: data.size }, (e) => (e ? reject(e) : resolve()));
    const rs = fs.createReadStream(data.file);
    rs.on('error', reject);
    rs.pipe(w as unknown as NodeJS.WritableStream);
  });
}

function dir(pack: tarStream.Pack, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ name, type: 'directory', mode: 0o755, mtime: MEMBER_MTIME }, (e) => (e ? reject(e) : resolve()));
  });
}

async function collect(store: OciStore, refs: string[]): Promise<Saved[]> {
  if (refs.length === 0) throw new ImageError('save: no images given');
  const byDigest = new Map<string, Saved>();
  for (const r of refs) {
    const image = await store.resolve(r);
    let saved = byDigest.get(image.desc.digest);
    if (saved === undefined) byDigest.set(image.desc.digest, saved = { image, names: [] });
    // A name saves under that name; an image ID saves the image untagged (as docker save does).
    if (image.ref !== null && image.ref === tryNormalize(r) && !saved.names.includes(image.ref)) saved.names.push(image.ref);
  }
  return [...byDigest.values()];
}

function tryNormalize(r: string): string | null {
  try {
    const p = parseReference(r);
    return `${repositoryName(p)}${p.tag !== null ? `:${p.tag}` : ''}${p.digest !== null ? `@${p.digest}` : ''}`;
  } catch {
    return null;
  }
}

async function blobEntry(store: OciStore, d: Descriptor): Promise<{ file: string; size: number }> {
  const file = store.blobPath(d.digest);
  return { file, size: (await fsp.stat(file)).size };
}

function repositories(saved: Saved[], idOf: (s: Saved) => string): Buffer {
  const repos: Record<string, Record<string, string>> = {};
  for (const s of saved) {
    for (const n of s.names) {
      const p = parseReference(n);
      if (p.tag === null) continue;
      (repos[repositoryName(p)] ??= {})[p.tag] = idOf(s);
    }
  }
  return Buffer.from(JSON.stringify(repos));
}

async function writeLayout(store: OciStore, saved: Saved[], add: Add, pack: tarStream.Pack, docker: boolean): Promise<void> {
  await dir(pack, 'blobs/');
  await dir(pack, 'blobs/sha256/');
  const written = new Set<string>();
  const index: Descriptor[] = [];
  const manifestJson: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  for (const s of saved) {
    const { desc, manifest } = s.image;
    for (const d of [manifest.config, ...manifest.layers, desc]) {
      if (written.has(d.digest)) continue;
      written.add(d.digest);
      await add(`blobs/sha256/${digestHex(d.digest)}`, await blobEntry(store, d));
    }
    const plain = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    if (s.names.length === 0) index.push(plain);
    for (const n of s.names) {
      const annotations: Record<string, string> = { [ANNOTATION_REF_NAME]: n };
      if (docker) annotations[ANNOTATION_CONTAINERD_NAME] = n;
      index.push({ ...plain, annotations });
    }
    manifestJson.push({
      Config: `blobs/sha256/${digestHex(manifest.config.digest)}`,
      RepoTags: s.names.length > 0 ? s.names : null,
      Layers: manifest.layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
    });
  }
  await add('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: index })));
  if (docker) {
    await add('manifest.json', Buffer.from(JSON.stringify(manifestJson)));
    await add('repositories', repositories(saved, (s) => digestHex(s.image.desc.digest)));
  }
  await add('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
}

async function writeClassic(store: OciStore, saved: Saved[], add: Add, pack: tarStream.Pack): Promise<void> {
  const manifestJson: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const written = new Set<string>();
  const topIds = new Map<Saved, string>();
  for (const s of saved) {
    const { manifest, config } = s.image;
    const cfgName = `${digestHex(manifest.config.digest)}.json`;
    if (!written.has(cfgName)) {
      written.add(cfgName);
      await add(cfgName, await store.readBlob(manifest.config.digest));
    }
    const layers: string[] = [];
    let parent = '';
    for (const [i, l] of manifest.layers.entries()) {
      // docker's v1 layer IDs come from the chain of diff_ids; any stable 64-hex ID works for loaders.
      const id = crypto.createHash('sha256').update(`${parent}\n${config.rootfs.diff_ids[i] ?? l.digest}`).digest('hex');
      layers.push(`${id}/layer.tar`);
      if (!written.has(id)) {
        written.add(id);
        await dir(pack, `${id}/`);
        await add(`${id}/VERSION`, Buffer.from(LAYER_VERSION));
        const v1: Record<string, unknown> = { id, created: config.created ?? MEMBER_MTIME.toISOString(), os: config.os, architecture: config.architecture };
        if (parent !== '') v1.parent = parent;
        await add(`${id}/json`, Buffer.from(JSON.stringify(v1)));
        if (l.mediaType === MEDIA_TYPE_LAYER_TAR) {
          await add(`${id}/layer.tar`, await blobEntry(store, l));
        } else {
          const tmp = store.tempPath('save');
          try {
            await pipeline(await openUncompressed(store.blobPath(l.digest)), fs.createWriteStream(tmp));
            await add(`${id}/layer.tar`, { file: tmp, size: (await fsp.stat(tmp)).size });
          } finally {
            await fsp.rm(tmp, { force: true });
          }
        }
      }
      parent = id;
    }
    topIds.set(s, parent);
    manifestJson.push({ Config: cfgName, RepoTags: s.names.length > 0 ? s.names : null, Layers: layers });
  }
  await add('manifest.json', Buffer.from(JSON.stringify(manifestJson)));
  await add('repositories', repositories(saved, (s) => topIds.get(s) ?? ''));
}

/** Write an archive of `refs` to `out`: a file path (temp file, then rename) or a stream; see the module comment. */
export async function save(store: OciStore, refs: string[], out: string | Writable, format: ArchiveFormat = DEFAULT_ARCHIVE_FORMAT): Promise<void> {
  if (!ARCHIVE_FORMATS.includes(format)) throw new ImageError(`save: unknown format ${JSON.stringify(format)} (oci, docker or docker-classic)`);
  const saved = await collect(store, refs);
  const tmp = typeof out === 'string' ? path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`) : null;
  const pack = tarStream.pack();
  const add = tarWriter(pack);
  const dest = tmp !== null ? fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644 }) : (out as Writable);
  const writing = (async () => {
    if (format === 'docker-classic') await writeClassic(store, saved, add, pack);
    else await writeLayout(store, saved, add, pack, format === 'docker');
    pack.finalize();
  })().catch((e: unknown) => { pack.destroy(e as Error); throw e; });
  try {
    await Promise.all([pipeline(pack as unknown as AsyncIterable<Buffer>, dest, { end: tmp !== null }), writing]);
    if (tmp !== null) {
      const fh = await fsp.open(tmp, 'r');
      try { await fh.sync(); } finally { await fh.close(); }
      await fsp.rename(tmp, out as string);
    }
  } catch (e) {
    if (tmp !== null) await fsp.rm(tmp, { force: true });
    throw e;
  }
}
