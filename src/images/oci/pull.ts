/**
 * `tsvm pull NAME`: how a name becomes an image in the store.
 *
 * - A name with a registry host (`HOST[:PORT]/PATH[:TAG|@DIGEST]`, the
 *   reference grammar's rule, reference.ts) is fetched from that OCI
 *   distribution registry (registry.ts), the linux/riscv64 entry of an index.
 * - `busybox` (`busybox:latest`) is built from Debian's `busybox-static`, and
 *   `debian` (`debian:latest`, `debian:trixie`) from Debian's riscv64
 *   packages as mmdebstrap's minbase makes it (rootfs-build.ts): Docker's
 *   `debian:latest` is the current stable release, trixie, so one build is
 *   named both `debian:trixie` and `debian:latest`.
 * - Any other name fails with one line (the CLI exits 125): tsvm has no
 *   default registry, so `ubuntu:latest` is neither built nor fetched.
 *
 * A built image is one gzip layer (layerFromDirectory) with the builder's
 * Cmd and Env. Its root is kept under the cache directory
 * (`<cache>/rootfs/NAME`); the builder reuses it while the suite's package
 * set is unchanged, and then, if the store already names the image, the
 * pull is "up to date" without making a layer again. Blobs are stored
 * before the name, so a failed pull names nothing (and `gc` collects
 * whatever it stored).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { defaultCacheDir } from '../debian-archive.js';
import { ImageError } from '../errors.js';
import { buildBusyboxRootfs, buildDebianRootfs, type RootfsOptions, type RootfsResult } from '../rootfs-build.js';
import { layerFromDirectory } from './layer-apply.js';
import type { OciStore } from './layout.js';
import { formatReference, parseReference, type ImageReference } from './reference.js';
import { pullFromRegistry, type PullOptions } from './registry.js';
import { TSVM_PLATFORM } from './layout.js';

/** The images tsvm builds from Debian's packages, by repository: the tags each accepts (the first is the build's own). */
export const BUILT_IMAGES: Readonly<Record<string, readonly string[]>> = {
  busybox: ['latest'],
  debian: ['trixie', 'latest'],
};

/** What `pullImage` did. */
export interface PullResult {
  /** The names the image now has. */
  refs: string[];
  /** The manifest's digest. */
  digest: string;
  /** 'registry' or 'built'. */
  source: 'registry' | 'built';
  /** A built image whose packages had not changed since the store got it. */
  upToDate?: boolean;
}

/** Options of pullImage. */
export interface PullImageOptions {
  /** Show progress bars on stderr (only when it is a TTY). */
  progress?: boolean;
  /** Registry options (credentials, insecure, ...). */
  registry?: Omit<PullOptions, 'progress'>;
  /** Builder options (mirror, cache, ...). */
  build?: Omit<RootfsOptions, 'progress'>;
}

/** Pulls or builds `name` into `store`. Throws ImageError (or a subclass) with a one-line message. */
export async function pullImage(store: OciStore, name: string, opts: PullImageOptions = {}): Promise<PullResult> {
  const ref = parseReference(name);
  if (ref.domain !== null) {
    const r = await pullFromRegistry(formatReference(ref), store, { ...opts.registry, progress: opts.progress ?? false });
    return { refs: [r.ref], digest: r.manifestDigest, source: 'registry' };
  }
  const tags = BUILT_IMAGES[ref.path];
  if (tags === undefined) {
    throw new ImageError(`pull ${name}: no such image: tsvm builds ${Object.keys(BUILT_IMAGES).join(' and ')} from Debian's packages; ` +
      'other images come from a registry named in full, HOST[:PORT]/NAME[:TAG]');
  }
  if (ref.digest !== null || ref.tag === null || !tags.includes(ref.tag)) {
    throw new ImageError(`pull ${name}: tsvm builds ${ref.path} as ${tags.map((t) => `${ref.path}:${t}`).join(' or ')} only`);
  }
  return buildImage(store, ref, tags, opts);
}

async function buildImage(store: OciStore, ref: ImageReference, tags: readonly string[], opts: PullImageOptions): Promise<PullResult> {
  const bopts: RootfsOptions = { ...opts.build, progress: opts.progress ?? false };
  const dest = path.join(bopts.cacheDir ?? defaultCacheDir(), 'rootfs', ref.path);
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  const built: RootfsResult = ref.path === 'debian' ? await buildDebianRootfs(dest, bopts) : await buildBusyboxRootfs(dest, bopts);
  const refs = tags.map((t) => `${ref.path}:${t}`);
  if (built.cached) {
    const have = await store.resolve(refs[0]!).catch(() => null);
    if (have !== null) {
      await store.setRefs(refs.slice(1).map((r) => ({ ref: r, desc: have.desc })));
      return { refs, digest: have.desc.digest, source: 'built', upToDate: true };
    }
  }
  const owner = ref.path === 'busybox' ? 0 : undefined; // the busybox root may be built by any user; its files are root's
  const layer = await layerFromDirectory(built.dir, { store, uid: owner, gid: owner });
  const created = new Date().toISOString();
  const packages = built.packages.map((p) => `${p.name}=${p.version}`).join(' ');
  const desc = await store.addImage(refs[0]!, {
    config: {
      created, architecture: TSVM_PLATFORM.architecture, os: TSVM_PLATFORM.os,
      config: { Env: built.config.Env, Cmd: built.config.Cmd },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: `tsvm pull ${ref.path}: ${packages.length > 2000 ? `${built.packages.length} Debian packages` : packages}` }],
    },
    layers: [layer.desc],
  });
  if (refs.length > 1) await store.setRefs(refs.slice(1).map((r) => ({ ref: r, desc })));
  return { refs, digest: desc.digest, source: 'built', upToDate: false };
}
