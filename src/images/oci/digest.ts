/**
 * Content digests (OCI image-spec descriptor.md "Digests"): the string
 * `algorithm:encoded`. tsvm writes and accepts only `sha256` (descriptor.md
 * "Registered algorithms": the encoded part is 64 lowercase hex digits);
 * anything else is rejected with a one-line error.
 */
import * as crypto from 'node:crypto';
import { ImageError } from '../errors.js';

/** Length of a sha256 digest's encoded part in hex digits (descriptor.md, "SHA-256"). */
const SHA256_HEX_LENGTH = 64;
/** The general digest grammar, descriptor.md "Digests": algorithm ":" encoded. */
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256_RE = /^sha256:[0-9a-f]{64}$/;

/** A blob whose bytes do not match the digest (or size) it was announced with. */
export class DigestMismatchError extends ImageError {
  /** `what` names the blob (a layer, a config, a file in an archive). */
  constructor(what: string, readonly expected: string, readonly got: string) {
    super(`digest mismatch for ${what}: expected ${expected}, got ${got}`);
    this.name = 'DigestMismatchError';
  }
}

/** True if `s` is a well-formed `sha256:<64 hex>` digest. */
export function isSha256Digest(s: string): boolean {
  return SHA256_RE.test(s);
}

/** Validate a digest string; returns it, or throws an ImageError naming `what`. */
export function validateDigest(s: string, what = 'digest'): string {
  if (SHA256_RE.test(s)) return s;
  if (DIGEST_GRAMMAR.test(s)) {
    const alg = s.slice(0, s.indexOf(':'));
    if (alg !== 'sha256') throw new ImageError(`${what} ${JSON.stringify(s)}: unsupported digest algorithm ${JSON.stringify(alg)} (only sha256)`);
    throw new ImageError(`${what} ${JSON.stringify(s)}: a sha256 digest has ${SHA256_HEX_LENGTH} lowercase hex digits`);
  }
  throw new ImageError(`${what} ${JSON.stringify(s)} is not a valid digest (expected sha256:<64 hex digits>)`);
}

/** The hex part of a validated sha256 digest. */
export function digestHex(digest: string): string {
  return validateDigest(digest).slice('sha256:'.length);
}

/** The sha256 digest of some bytes. */
export function sha256Digest(data: Uint8Array): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

/** An incremental sha256 that also counts bytes. */
export class DigestCounter {
  private readonly hash = crypto.createHash('sha256');
  /** Bytes seen so far. */
  size = 0;
  /** Feed a chunk. */
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }
  /** The digest of everything fed (call once). */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}
