/**
 * A pull-only client for OCI distribution-spec registries (OCI Distribution
 * Specification v1.0, "Pull"): `HOST[:PORT]/NAME[:TAG|@DIGEST]` becomes
 * verified blobs in a BlobSink (the OCI image store) and, last, a ref.
 *
 * - The manifest is asked for with every type this client reads (OCI image
 *   index and manifest, Docker manifest list and schema 2); an index picks
 *   its linux/riscv64 entry. Only that manifest, its config and its layers
 *   are stored, and the ref names the manifest: the index is not stored
 *   (the image resolves to exactly what tsvm runs); its digest is returned.
 * - Every manifest is checked against the digest it was pulled by, the
 *   index entry's digest and size, or the registry's Docker-Content-Digest.
 *   Blobs stream into the sink through a SHA-256 and size check; the
 *   stream fails before its end on a mismatch, so the sink drops it.
 *   Blobs the sink already has are not fetched. setRef comes last.
 * - Plain http for `localhost`, 127.0.0.0/8 and [::1] (as Docker treats
 *   them as insecure registries), or for any host with `insecure`; https
 *   with certificate checks otherwise.
 * - Auth: see registry-auth.ts (Bearer token flow, Basic, auth files).
 */
import * as crypto from 'node:crypto';
import cliProgress from 'cli-progress';
import {
  basicAuthorization, credentialsFromAuthFiles, describeFetchError, fetchBearerToken, parseAuthChallenges,
  type AuthChallenge, type RegistryCredentials,
} from './registry-auth.js';
import { RegistryError } from './registry-error.js';

export { RegistryError, REGISTRY_EXIT_CODE } from './registry-error.js';

/** A content descriptor (OCI image-spec descriptor.md). */
export interface BlobDescriptor {
  digest: string;
  size: number;
  mediaType?: string;
}

/** Where pulled blobs go: the OCI image store implements it (src/images/oci/layout.ts, OciStore). */
export interface BlobSink {
  /** Whether the store already holds this blob. */
  hasBlob(digest: string): Promise<boolean>;
  /** Store a blob; verifies size and sha256, throws on mismatch and then leaves nothing behind. */
  putBlob(desc: BlobDescriptor, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<void>;
  /** Name the image (once all its blobs are present). */
  setRef(ref: string, desc: { mediaType: string; digest: string; size: number }): Promise<void>;
}

/** A parsed `HOST[:PORT]/PATH[:TAG|@DIGEST]`. */
export interface RegistryRef {
  /** HOST[:PORT] as written (IPv6 in brackets). */
  host: string;
  /** Repository path, e.g. "library/busybox". */
  name: string;
  /** Tag ("latest" when neither tag nor digest is given). */
  tag?: string;
  digest?: string;
}

/** Options of pullFromRegistry. */
export interface PullOptions {
  /** Credentials (the CLI's --username/--password); else the auth files are read. */
  username?: string;
  password?: string;
  /** Auth files to read instead of the defaults (registry-auth.ts, authFilePaths). */
  authFiles?: string[];
  /** Use plain http for a host that is not loopback (like Docker's insecure-registries). */
  insecure?: boolean;
  /** Show a progress bar on stderr when it is a TTY (default true). */
  progress?: boolean;
  /** Platform to pick from an index (default linux/riscv64). */
  platform?: { os: string; architecture: string; variant?: string };
  /** Give up on a request that sends nothing for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** fetch to use (tests); default the global one. */
  fetch?: typeof fetch;
}

/** What a pull did. */
export interface PullResult {
  /** The ref given to setRef. */
  ref: string;
  manifestDigest: string;
  configDigest: string;
  /** Number of layers of the image. */
  layers: number;
  /** Bytes downloaded (blobs the sink already had are not counted). */
  bytes: number;
  /** The index the manifest was chosen from, if any (not stored). */
  indexDigest?: string;
}

/** Media types (OCI image-spec media-types.md; Docker Image Manifest V2, Schema 2). */
export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);
const MANIFEST_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
const CONFIG_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociConfig, MEDIA_TYPES.dockerConfig]);
/** Layer types this client stores (image-spec layer.md; zstd is stored, applying it may fail later). */
const LAYER_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
]);
/** The distribution spec's limit a registry must accept for a manifest (spec "Pushing Manifests": 4 MiB). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Largest config JSON read into memory (the same bound as a manifest). */
const MAX_CONFIG_BYTES = MAX_MANIFEST_BYTES;
/** Default idle timeout of a request: no headers or no body bytes for this long fails it. */
const IDLE_TIMEOUT_MS = 60_000;
/** Docker Hub: its name and the host serving its API (Docker's registry/config.go, IndexHostname and DefaultV2Registry). */
const DOCKER_HUB_NAMES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** Repository path component and separators (distribution spec "Pulling manifests", `<name>`). */
const NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** A tag (distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`). */
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** A sha256 digest (image-spec descriptor.md, "Registered algorithms"). */
const SHA256_RE = /^sha256:[a-f0-9]{64}$/;

/**
 * Parse `HOST[:PORT]/PATH[:TAG|@DIGEST]`. The first component is a host
 * when it has a '.' or ':' or is `localhost` (Docker's rule); otherwise
 * this is not a registry reference and the result is null.
 */
export function parseRegistryRef(ref: string): RegistryRef | null {
  const slash = ref.indexOf('/');
  if (slash <= 0) return null;
  const host = ref.slice(0, slash);
  if (!(host.includes('.') || host.includes(':') || host === 'localhost' || host.startsWith('['))) return null;
  if (!/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/.test(host)) throw new RegistryError(`invalid registry host in "${ref}"`);
  let rest = ref.slice(slash + 1);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!SHA256_RE.test(digest)) throw new RegistryError(`invalid digest in "${ref}" (expected sha256: and 64 hex digits)`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new RegistryError(`invalid tag "${tag}" in "${ref}"`);
  }
  if (!NAME_RE.test(rest)) throw new RegistryError(`invalid repository name "${rest}" in "${ref}" (lowercase letters, digits, separators . _ __ - and /)`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  // Docker Hub's official images live under library/ (docker.io/busybox = docker.io/library/busybox).
  if (DOCKER_HUB_NAMES.has(host) && !rest.includes('/')) rest = `library/${rest}`;
  return { host, name: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** The canonical string of a parsed ref: HOST/NAME:TAG, HOST/NAME@DIGEST or both. */
export function formatRegistryRef(r: RegistryRef): string {
  return `${r.host}/${r.name}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** Whether HOST[:PORT] is loopback (localhost, 127.0.0.0/8, ::1), which Docker lets use plain http. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:[0-9]+$/, '');
  return h === 'localhost' || h === '::1' || /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(h);
}

/** The base URL of a registry's API (".../v2/"). */
export function registryBaseUrl(host: string, insecure = false): string {
  const api = DOCKER_HUB_NAMES.has(host) ? DOCKER_HUB_API_HOST : host;
  return `${insecure || isLoopbackHost(host) ? 'http' : 'https'}://${api}/v2/`;
}

/**
 * An abort signal that fires when nothing happened for `ms`: a request
 * arms it, every body chunk re-arms it, and the finished request clears it.
 */
class IdleDeadline {
  private readonly ctl = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ms: number) {
    this.reset();
  }

  /** The signal to give fetch. */
  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  /** Whether it fired. */
  get fired(): boolean {
    return this.ctl.signal.aborted;
  }

  /** Re-arm: something arrived. */
  reset(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.ctl.abort(new Error('idle timeout')), this.ms);
  }

  /** Disarm: the request is over. */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A registry's JSON error body (distribution spec "Error Codes"), as one line. */
function registryErrorText(body: string): string {
  try {
    const doc = JSON.parse(body) as { errors?: { code?: unknown; message?: unknown }[] };
    const e = doc.errors?.[0];
    if (e) return [e.code, e.message].filter((x) => typeof x === 'string' && x).join(': ').toLowerCase();
  } catch {
    // not JSON: fall through
  }
  return '';
}

/** Read a response body up to `limit` bytes (re-arming `deadline` per chunk). */
async function readLimited(res: Response, limit: number, what: string, deadline?: IdleDeadline): Promise<Uint8Array> {
  const len = Number(res.headers.get('content-length') ?? '-1');
  if (len > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw new RegistryError(`${what} is too large (${len} bytes, limit ${limit})`);
  }
  if (!res.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    for await (const chunk of res.body) {
      deadline?.reset();
      n += chunk.length;
      if (n > limit) throw new RegistryError(`${what} is too large (over ${limit} bytes)`);
      parts.push(chunk);
    }
  } catch (e) {
    if (e instanceof RegistryError) throw e;
    throw new RegistryError(deadline?.fired ? `${what}: the registry stopped sending` : `${what}: the download broke off: ${describeFetchError(e)}`);
  }
  return Buffer.concat(parts, n);
}

/** "sha256:" + hex SHA-256 of `data`. */
function sha256Digest(data: Uint8Array): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

/** Check a descriptor as found in a manifest: sha256 digest, sane size. */
function checkDescriptor(d: unknown, what: string): BlobDescriptor & { mediaType: string } {
  const x = d as { digest?: unknown; size?: unknown; mediaType?: unknown } | null;
  if (typeof x !== 'object' || x === null || typeof x.digest !== 'string' || typeof x.size !== 'number' || typeof x.mediaType !== 'string') {
    throw new RegistryError(`malformed ${what}: a descriptor needs mediaType, digest and size`);
  }
  if (!SHA256_RE.test(x.digest)) throw new RegistryError(`unsupported digest "${x.digest}" in ${what} (only sha256 is supported)`);
  if (!Number.isSafeInteger(x.size) || x.size < 0) throw new RegistryError(`malformed ${what}: bad size ${String(x.size)}`);
  return { digest: x.digest, size: x.size, mediaType: x.mediaType };
}

/** Parse JSON bytes from the registry, with a one-line error. */
function parseJson(data: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch (e) {
    throw new RegistryError(`malformed JSON in ${what}: ${(e as Error).message}`);
  }
}

/** Human-readable byte count. */
function human(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** One HTTP conversation with a registry, holding its auth state for one repository. */
class RegistrySession {
  private authorization: string | undefined;
  private readonly base: string;
  private readonly what: string;
  private readonly fetchImpl: typeof fetch;
  private readonly credentials: RegistryCredentials | undefined;
  private readonly idleMs: number;

  constructor(private readonly ref: RegistryRef, opts: PullOptions) {
    this.base = registryBaseUrl(ref.host, opts.insecure);
    this.idleMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.what = `${ref.host}/${ref.name}`;
    this.fetchImpl = opts.fetch ?? fetch;
    if (opts.username !== undefined || opts.password !== undefined) {
      this.credentials = { username: opts.username ?? '', password: opts.password ?? '' };
    } else {
      this.credentials = credentialsFromAuthFiles(ref.host, opts.authFiles);
    }
  }

  /** Answer a 401's challenge: fetch a token, or use Basic credentials. */
  private async authenticate(res: Response): Promise<void> {
    const header = res.headers.get('www-authenticate') ?? '';
    const challenges = parseAuthChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      this.authorization = await fetchBearerToken({
        challenge: bearer as AuthChallenge,
        scopes: [`repository:${this.ref.name}:pull`],
        ...(this.credentials ? { credentials: this.credentials } : {}),
        what: this.what,
        fetchImpl: this.fetchImpl,
        timeoutMs: this.idleMs,
      });
    } else if (basic) {
      if (!this.credentials) {
        throw new RegistryError(`${this.what}: authentication required (401, Basic realm "${basic.params['realm'] ?? ''}"); give --username/--password or an auth file`);
      }
      this.authorization = basicAuthorization(this.credentials);
    } else {
      throw new RegistryError(`${this.what}: authentication required (401) with no usable challenge${header ? ` ("${header}")` : ''}`);
    }
  }

  /**
   * A GET under /v2/ with auth: one retry after answering a 401. The
   * returned deadline is armed until the caller has read the body (and
   * must then clear it).
   */
  async get(pathUnderV2: string, accept?: string): Promise<{ res: Response; deadline: IdleDeadline }> {
    const url = this.base + pathUnderV2;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {};
      if (accept) headers['Accept'] = accept;
      if (this.authorization) headers['Authorization'] = this.authorization;
      const deadline = new IdleDeadline(this.idleMs);
      let res: Response;
      try {
        res = await this.fetchImpl(url, { headers, redirect: 'follow', signal: deadline.signal });
      } catch (e) {
        deadline.clear();
        throw new RegistryError(deadline.fired
          ? `registry ${this.ref.host} sent nothing for ${this.idleMs / 1000} s (${url})`
          : `cannot reach registry ${this.ref.host} (${url}): ${describeFetchError(e)}`);
      }
      if (res.status !== 401) return { res, deadline };
      deadline.clear();
      const body = await res.text().catch(() => '');
      if (attempt > 0) {
        const why = registryErrorText(body);
        throw new RegistryError(this.credentials
          ? `${this.what}: access denied for ${this.credentials.username} (401${why ? ` ${why}` : ''})`
          : `${this.what}: authentication required (401${why ? ` ${why}` : ''}); give --username/--password or an auth file`);
      }
      await this.authenticate(res);
    }
  }

  /** GET /v2/ (distribution spec "end-2": version check), answering its challenge up front. */
  async ping(): Promise<void> {
    const { res, deadline } = await this.get('');
    deadline.clear();
    await res.body?.cancel().catch(() => undefined);
    if (!res.ok) throw new RegistryError(`${this.ref.host} is not a distribution-spec registry (GET /v2/ answered ${res.status} ${res.statusText})`);
  }

  /** GET a manifest by tag or digest; returns its bytes, media type and digest (verified against `expect`). */
  async manifest(reference: string, expect?: BlobDescriptor): Promise<{ data: Uint8Array; mediaType: string; digest: string; doc: unknown }> {
    const accept = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerList, MEDIA_TYPES.dockerManifest].join(', ');
    const what = `manifest ${this.what}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    const { res, deadline } = await this.get(`${this.ref.name}/manifests/${reference}`, accept);
    let data: Uint8Array;
    try {
      if (!res.ok) {
        const why = registryErrorText(await res.text().catch(() => ''));
        if (res.status === 404) throw new RegistryError(`${what} not found (${why || 'manifest unknown'})`);
        throw new RegistryError(`${what}: the registry answered ${res.status} ${res.statusText}${why ? ` (${why})` : ''}`);
      }
      data = await readLimited(res, MAX_MANIFEST_BYTES, what, deadline);
    } finally {
      deadline.clear();
    }
    const digest = sha256Digest(data);
    const header = res.headers.get('docker-content-digest') ?? '';
    // Pulled by digest, or through an index entry: that digest; else the registry's header, when it is sha256.
    const want = expect?.digest ?? (reference.startsWith('sha256:') ? reference : SHA256_RE.test(header) ? header : undefined);
    if (want !== undefined && want !== digest) throw new RegistryError(`${what} does not match its digest: expected ${want}, got ${digest}`);
    if (expect !== undefined && expect.size !== data.length) throw new RegistryError(`${what} has ${data.length} bytes, its descriptor says ${expect.size}`);
    const doc = parseJson(data, what);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new RegistryError(`malformed ${what}: not a JSON object`);
    const inDoc = (doc as { mediaType?: unknown }).mediaType;
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    // image-spec manifest.md / image-index.md: mediaType SHOULD be set; else the Content-Type tells, else the shape.
    const mediaType = typeof inDoc === 'string' && inDoc ? inDoc
      : INDEX_TYPES.has(contentType) || MANIFEST_TYPES.has(contentType) ? contentType
        : Array.isArray((doc as { manifests?: unknown }).manifests) ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest;
    return { data, mediaType, digest, doc };
  }

  /** GET a blob (redirects followed); the response, checked to be 200, and its armed deadline. */
  async blob(desc: BlobDescriptor, what: string): Promise<{ res: Response; deadline: IdleDeadline }> {
    const got = await this.get(`${this.ref.name}/blobs/${desc.digest}`);
    const { res, deadline } = got;
    if (!res.ok || !res.body) {
      const why = registryErrorText(await res.text().catch(() => ''));
      deadline.clear();
      throw new RegistryError(`${what} ${desc.digest} of ${this.what}: the registry answered ${res.status} ${res.statusText}${why ? ` (${why})` : ''}`);
    }
    return got;
  }

  /** The message for a body read that stopped: the idle deadline, or the connection. */
  bodyError(e: unknown, deadline: IdleDeadline, what: string): unknown {
    if (e instanceof RegistryError) return e;
    if (deadline.fired) return new RegistryError(`${what}: registry ${this.ref.host} sent nothing for ${this.idleMs / 1000} s`);
    return new RegistryError(`${what}: the download from ${this.ref.host} broke off: ${describeFetchError(e)}`);
  }
}

/** Progress over the bytes to download: a cli-progress bar on a TTY, nothing elsewhere. */
interface Progress {
  add(n: number): void;
  stop(): void;
}

/** Start progress reporting for `total` bytes. */
function startProgress(show: boolean, label: string, total: number): Progress {
  if (!show || process.stderr.isTTY !== true || total === 0) return { add: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: `tsvm: pulling ${label} [{bar}] {percentage}% {done}/{size}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let done = 0;
  bar.start(total, 0, { done: human(0), size: human(total) });
  return {
    add(n: number) {
      done += n;
      bar.update(done, { done: human(done) });
    },
    stop() {
      bar.stop();
    },
  };
}

/**
 * The body of `res` as chunks that are hashed and counted on the way; the
 * iteration throws (so the sink discards the blob) if it runs over the
 * descriptor's size, or, at the end, if size or digest differ.
 */
async function* verifiedStream(
  session: RegistrySession, res: Response, deadline: IdleDeadline, desc: BlobDescriptor, what: string, progress: Progress,
): AsyncGenerator<Uint8Array> {
  const hash = crypto.createHash('sha256');
  let got = 0;
  const reader = res.body![Symbol.asyncIterator]();
  try {
    while (true) {
      let step: IteratorResult<Uint8Array>;
      try {
        step = await reader.next();
      } catch (e) {
        throw session.bodyError(e, deadline, `${what} ${desc.digest}`);
      }
      if (step.done) break;
      deadline.reset();
      const chunk = step.value;
      got += chunk.length;
      if (got > desc.size) throw new RegistryError(`${what} ${desc.digest} is longer than its ${desc.size} bytes; discarded`);
      hash.update(chunk);
      progress.add(chunk.length);
      yield chunk;
    }
  } finally {
    deadline.clear();
    // Stopped early (a mismatch, or the sink gave up): drop the connection.
    await reader.return?.().catch(() => undefined);
  }
  if (got !== desc.size) throw new RegistryError(`${what} ${desc.digest} is ${got} bytes, not ${desc.size}; discarded`);
  const digest = `sha256:${hash.digest('hex')}`;
  if (digest !== desc.digest) throw new RegistryError(`${what} ${desc.digest} does not match its digest (got ${digest}); discarded`);
}

/** Whether an index entry's platform is the wanted one (image-index.md, "platform"). */
function platformMatches(p: unknown, want: { os: string; architecture: string; variant?: string }): boolean {
  const x = p as { os?: unknown; architecture?: unknown; variant?: unknown } | null;
  if (typeof x !== 'object' || x === null) return false;
  if (x.os !== want.os || x.architecture !== want.architecture) return false;
  return want.variant === undefined || x.variant === want.variant;
}

/** "os/arch[/variant]" of an index entry's platform. */
function platformText(p: unknown): string {
  const x = p as { os?: unknown; architecture?: unknown; variant?: unknown } | null;
  if (typeof x !== 'object' || x === null) return 'unknown';
  return [x.os, x.architecture, x.variant].filter((s) => typeof s === 'string' && s).join('/') || 'unknown';
}

/**
 * Pull `ref` (`HOST[:PORT]/NAME[:TAG|@DIGEST]`) from its registry into
 * `sink`: the linux/riscv64 manifest (chosen from an index if the ref
 * names one), its config and layers, each verified; then setRef(ref).
 * Throws RegistryError (exitCode 125) with a one-line message on failure,
 * having given the sink only verified blobs and no ref.
 */
export async function pullFromRegistry(ref: string, sink: BlobSink, opts: PullOptions = {}): Promise<PullResult> {
  const parsed = parseRegistryRef(ref);
  if (!parsed) throw new RegistryError(`"${ref}" is not a registry reference (HOST[:PORT]/NAME[:TAG|@DIGEST])`);
  const want = opts.platform ?? { os: 'linux', architecture: 'riscv64' };
  const wantText = platformText(want);
  const session = new RegistrySession(parsed, opts);
  const canonical = formatRegistryRef(parsed);
  await session.ping();

  let top = await session.manifest(parsed.digest ?? parsed.tag!);
  let indexDigest: string | undefined;
  if (INDEX_TYPES.has(top.mediaType)) {
    indexDigest = top.digest;
    const manifests = (top.doc as { manifests?: unknown }).manifests;
    if (!Array.isArray(manifests)) throw new RegistryError(`malformed index ${canonical}: no "manifests" array`);
    const entry = manifests.find((m: unknown) => platformMatches((m as { platform?: unknown } | null)?.platform, want));
    if (entry === undefined) {
      const have = manifests.map((m: unknown) => platformText((m as { platform?: unknown } | null)?.platform));
      throw new RegistryError(`${canonical} has no ${wantText} image; its index offers: ${have.length ? [...new Set(have)].join(', ') : 'nothing'}`);
    }
    const desc = checkDescriptor(entry, `index ${canonical}`);
    if (!MANIFEST_TYPES.has(desc.mediaType)) throw new RegistryError(`unsupported media type ${desc.mediaType} for the ${wantText} entry of ${canonical}`);
    top = await session.manifest(desc.digest, desc);
  }
  if (!MANIFEST_TYPES.has(top.mediaType)) {
    throw new RegistryError(`unsupported manifest media type ${top.mediaType} for ${canonical} (supported: OCI image index/manifest, Docker manifest list/schema 2)`);
  }
  const manifestDoc = top.doc as { config?: unknown; layers?: unknown };
  const config = checkDescriptor(manifestDoc.config, `manifest of ${canonical} (config)`);
  if (!CONFIG_TYPES.has(config.mediaType)) throw new RegistryError(`${canonical} is not a container image (config media type ${config.mediaType})`);
  if (!Array.isArray(manifestDoc.layers)) throw new RegistryError(`malformed manifest of ${canonical}: no "layers" array`);
  const layers = manifestDoc.layers.map((l: unknown, i: number) => checkDescriptor(l, `manifest of ${canonical} (layer ${i})`));
  for (const l of layers) {
    if (!LAYER_TYPES.has(l.mediaType)) throw new RegistryError(`unsupported layer media type ${l.mediaType} in ${canonical}`);
  }

  // The config first: it is small, and tells whether this image can run here.
  let bytes = 0;
  let configData: Uint8Array | undefined;
  if (!(await sink.hasBlob(config.digest))) {
    const { res, deadline } = await session.blob(config, 'config');
    try {
      configData = await readLimited(res, MAX_CONFIG_BYTES, `config of ${canonical}`, deadline);
    } finally {
      deadline.clear();
    }
    const d = sha256Digest(configData);
    if (d !== config.digest || configData.length !== config.size) {
      throw new RegistryError(`config ${config.digest} of ${canonical} does not match its descriptor (got ${d}, ${configData.length} bytes)`);
    }
    const cfg = parseJson(configData, `config of ${canonical}`) as { os?: unknown; architecture?: unknown } | null;
    if (typeof cfg !== 'object' || cfg === null) throw new RegistryError(`malformed config of ${canonical}: not a JSON object`);
    if (cfg.architecture !== undefined && !platformMatches({ os: cfg.os ?? want.os, architecture: cfg.architecture }, { os: want.os, architecture: want.architecture })) {
      throw new RegistryError(`${canonical} is a ${platformText({ os: cfg.os, architecture: cfg.architecture })} image, not ${wantText}`);
    }
    bytes += configData.length;
  }

  const missing: (BlobDescriptor & { mediaType: string })[] = [];
  const seen = new Set<string>();
  for (const l of layers) {
    if (seen.has(l.digest)) continue;
    seen.add(l.digest);
    if (!(await sink.hasBlob(l.digest))) missing.push(l);
  }
  const progress = startProgress(opts.progress ?? true, canonical, missing.reduce((n, l) => n + l.size, 0));
  try {
    for (const l of missing) {
      const { res, deadline } = await session.blob(l, 'layer');
      const stream = verifiedStream(session, res, deadline, l, `layer of ${canonical}`, progress);
      try {
        await sink.putBlob(l, stream);
      } finally {
        // If the sink failed before reading to the end, end the stream (its finally drops the connection).
        await stream.return(undefined).catch(() => undefined);
        deadline.clear();
        await res.body?.cancel().catch(() => undefined);
      }
      bytes += l.size;
    }
  } finally {
    progress.stop();
  }
  if (configData) await sink.putBlob(config, configData);
  const manifestDesc = { mediaType: top.mediaType, digest: top.digest, size: top.data.length };
  if (!(await sink.hasBlob(top.digest))) await sink.putBlob(manifestDesc, top.data);
  await sink.setRef(canonical, manifestDesc);
  return {
    ref: canonical, manifestDigest: top.digest, configDigest: config.digest, layers: layers.length, bytes,
    ...(indexDigest !== undefined ? { indexDigest } : {}),
  };
}
