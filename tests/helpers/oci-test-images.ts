/**
 * Tiny OCI images for the registry tests, written as OCI image layouts
 * (image-spec image-layout.md: `oci-layout`, `index.json`, `blobs/sha256`)
 * that skopeo can push: one gzip layer (a tar made with tar-stream, gzipped
 * with node:zlib), an OCI config and manifest per platform, and optionally
 * an image index over several platforms.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';

/** A descriptor as written into manifests and indexes. */
export interface TestDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

/** One image as written: its manifest descriptor and its blobs by digest. */
export interface TestImage {
  architecture: string;
  manifest: TestDescriptor;
  config: TestDescriptor;
  layers: TestDescriptor[];
  /** Every blob of the image (manifest, config, layers) by digest. */
  blobs: Map<string, Buffer>;
}

/** A tar archive of `files` (path -> contents), directories implied. */
export async function makeTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const dirs = new Set<string>();
  for (const name of Object.keys(files)) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const entry = (h: Partial<tarStream.Header> & { name: string }, body: string): Promise<void> =>
    new Promise((resolve, reject) => pack.entry(h, body, (err) => (err ? reject(err) : resolve())));
  for (const d of [...dirs].sort()) await entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime: new Date(0) }, '');
  for (const [name, body] of Object.entries(files)) await entry({ name, type: 'file', mode: 0o644, mtime: new Date(0) }, body);
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** "sha256:" + hex of `b`. */
export function digestOf(b: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
}

/** Build one image: a gzip layer of `files`, a config for linux/`architecture`, a manifest. */
export async function makeImage(architecture: string, files: Record<string, string>): Promise<TestImage> {
  const tar = await makeTar(files);
  const layer = zlib.gzipSync(tar);
  const config = Buffer.from(JSON.stringify({
    architecture, os: 'linux', created: '2026-01-01T00:00:00Z',
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [digestOf(tar)] },
    history: [{ created: '2026-01-01T00:00:00Z', created_by: 'tsvm registry test' }],
  }));
  const layerDesc = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layer), size: layer.length };
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length };
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: [layerDesc],
  }));
  const manifestDesc = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(manifest), size: manifest.length,
    platform: { os: 'linux', architecture },
  };
  const blobs = new Map<string, Buffer>([[layerDesc.digest, layer], [configDesc.digest, config], [manifestDesc.digest, manifest]]);
  return { architecture, manifest: manifestDesc, config: configDesc, layers: [layerDesc], blobs };
}

/** An OCI image index over `images` (their manifests with platforms). */
export function makeIndex(images: TestImage[]): { desc: TestDescriptor; data: Buffer } {
  const data = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: images.map((i) => i.manifest),
  }));
  return { desc: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: digestOf(data), size: data.length }, data };
}

/**
 * Write an OCI layout at `dir` whose index.json names `top` as `tag`
 * (org.opencontainers.image.ref.name, image-spec annotations.md) with the
 * given blobs.
 */
export function writeLayout(dir: string, tag: string, top: TestDescriptor, blobs: Map<string, Buffer>): void {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const [d, b] of blobs) fs.writeFileSync(path.join(dir, 'blobs', 'sha256', d.slice('sha256:'.length)), b);
  const { platform: _p, ...plain } = top;
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ ...plain, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
}
