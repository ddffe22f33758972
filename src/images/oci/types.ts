/**
 * The OCI image-spec documents tsvm reads and writes: descriptors
 * (descriptor.md), image manifests (manifest.md), image indexes
 * (image-index.md) and image configs (config.md), with their media types
 * (media-types.md) and checked parsers that give one-line errors.
 */
import { ImageError } from '../errors.js';
import { validateDigest } from './digest.js';

/** media-types.md: the OCI image layout file's content. */
export const MEDIA_TYPE_LAYOUT_HEADER = 'application/vnd.oci.layout.header.v1+json';
/** media-types.md: an image index. */
export const MEDIA_TYPE_INDEX = 'application/vnd.oci.image.index.v1+json';
/** media-types.md: an image manifest. */
export const MEDIA_TYPE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** media-types.md: an image config. */
export const MEDIA_TYPE_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** media-types.md: an uncompressed layer tar. */
export const MEDIA_TYPE_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
/** media-types.md: a gzip-compressed layer tar. */
export const MEDIA_TYPE_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** media-types.md: a zstd-compressed layer tar. */
export const MEDIA_TYPE_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
/** Docker image manifest v2 schema 2 (docker's image-manifest-v2-2.md), accepted on read. */
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** Docker manifest list (docker's image-manifest-v2-2.md), accepted on read. */
export const MEDIA_TYPE_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Docker image config (docker's image-manifest-v2-2.md), accepted on read. */
export const MEDIA_TYPE_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** Docker gzip layer (docker's image-manifest-v2-2.md), accepted on read. */
export const MEDIA_TYPE_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** annotations.md: the reference name of a manifest in an image layout's index. */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
/** containerd's (and Docker >= 25's) full image name annotation, read on load. */
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name';
/** annotations.md: the image's creation time. */
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';

/** descriptor.md: a typed, sized, content-addressed reference to a blob. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

/** image-index.md "platform". */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

/** manifest.md: an image manifest. */
export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** image-index.md: an image index (also the layout's index.json). */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** config.md: the part of an image config tsvm uses. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  config?: {
    User?: string; Env?: string[]; Entrypoint?: string[] | null; Cmd?: string[] | null;
    WorkingDir?: string; Labels?: Record<string, string>; ExposedPorts?: Record<string, object>;
    Volumes?: Record<string, object>; StopSignal?: string;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse JSON bytes, with `what` in the error. */
export function parseJson(data: Uint8Array | string, what: string): unknown {
  try {
    return JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  } catch (e) {
    throw new ImageError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Check a descriptor object (descriptor.md "Properties"). */
export function checkDescriptor(v: unknown, what: string): Descriptor {
  if (!isObj(v)) throw new ImageError(`${what}: a descriptor must be an object`);
  if (typeof v.mediaType !== 'string') throw new ImageError(`${what}: descriptor has no mediaType`);
  if (typeof v.digest !== 'string') throw new ImageError(`${what}: descriptor has no digest`);
  validateDigest(v.digest, `${what} digest`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw new ImageError(`${what}: descriptor has a bad size`);
  return v as unknown as Descriptor;
}

/** Check an image manifest (manifest.md "Image Manifest Property Descriptions"). */
export function checkManifest(v: unknown, what = 'manifest'): Manifest {
  if (!isObj(v) || v.schemaVersion !== 2) throw new ImageError(`${what}: not an image manifest (schemaVersion 2)`);
  if (v.mediaType !== undefined && v.mediaType !== MEDIA_TYPE_MANIFEST && v.mediaType !== MEDIA_TYPE_DOCKER_MANIFEST) {
    throw new ImageError(`${what}: unexpected mediaType ${JSON.stringify(v.mediaType)}`);
  }
  checkDescriptor(v.config, `${what} config`);
  if (!Array.isArray(v.layers)) throw new ImageError(`${what}: no layers array`);
  v.layers.forEach((l, i) => checkDescriptor(l, `${what} layer ${i}`));
  return v as unknown as Manifest;
}

/** Check an image index (image-index.md). */
export function checkIndex(v: unknown, what = 'index'): ImageIndex {
  if (!isObj(v) || v.schemaVersion !== 2 || !Array.isArray(v.manifests)) throw new ImageError(`${what}: not an image index (schemaVersion 2, manifests)`);
  v.manifests.forEach((m, i) => checkDescriptor(m, `${what} entry ${i}`));
  return v as unknown as ImageIndex;
}

/** Check an image config (config.md "Properties": architecture, os, rootfs are required). */
export function checkConfig(v: unknown, what = 'image config'): ImageConfig {
  if (!isObj(v)) throw new ImageError(`${what}: not a JSON object`);
  if (typeof v.architecture !== 'string' || typeof v.os !== 'string') throw new ImageError(`${what}: no architecture or os`);
  const rootfs = v.rootfs;
  if (!isObj(rootfs) || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) throw new ImageError(`${what}: no rootfs.diff_ids`);
  rootfs.diff_ids.forEach((d, i) => {
    if (typeof d !== 'string') throw new ImageError(`${what}: diff_id ${i} is not a string`);
    validateDigest(d, `${what} diff_id ${i}`);
  });
  return v as unknown as ImageConfig;
}

/** True for the media types of an image index or a Docker manifest list. */
export function isIndexMediaType(t: string | undefined): boolean {
  return t === MEDIA_TYPE_INDEX || t === MEDIA_TYPE_DOCKER_LIST;
}

/** Canonical JSON bytes: keys sorted, no insignificant whitespace (so equal objects get equal digests). */
export function canonicalJson(v: unknown): Buffer {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort);
    if (isObj(x)) return Object.fromEntries(Object.keys(x).sort().filter((k) => x[k] !== undefined).map((k) => [k, sort(x[k])]));
    return x;
  };
  return Buffer.from(JSON.stringify(sort(v)), 'utf8');
}
