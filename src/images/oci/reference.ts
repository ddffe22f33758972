/**
 * Image references with Docker's grammar and normalization
 * (distribution/reference, "grammar"):
 *
 *   reference      := name [ ":" tag ] [ "@" digest ]
 *   name           := [domain "/"] remote-name
 *   domain         := host [":" port-number]
 *   remote-name    := path-component ("/" path-component)*
 *   path-component := alpha-numeric (separator alpha-numeric)*
 *   alpha-numeric  := /[a-z0-9]+/
 *   separator      := /[_.]|__|[-]+/
 *   tag            := /[\w][\w.-]{0,127}/
 *
 * As in Docker, the first component is a registry host when it contains a
 * `.` or a `:`, is `localhost`, or has uppercase letters; the tag defaults
 * to `latest` when neither a tag nor a digest is given. Unlike Docker there
 * is no `docker.io/library/` default: a short name such as `debian` stays a
 * local name (tsvm builds those images itself).
 */
import { ImageError } from '../errors.js';
import { validateDigest } from './digest.js';

/** The tag given to a reference that names neither a tag nor a digest (Docker's default). */
export const DEFAULT_TAG = 'latest';
/** Longest repository name, distribution/reference `NameTotalLengthMax`. */
const NAME_TOTAL_LENGTH_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);

/** A parsed, normalized image reference. */
export interface ImageReference {
  /** The registry host (and port), or null for a local name. */
  domain: string | null;
  /** The repository path (lowercase components separated by `/`). */
  path: string;
  /** The tag; `latest` when neither tag nor digest was given. */
  tag: string | null;
  /** The manifest digest, if the reference pins one. */
  digest: string | null;
}

/** The repository name: `domain/path` or just `path`. */
export function repositoryName(r: ImageReference): string {
  return r.domain === null ? r.path : `${r.domain}/${r.path}`;
}

/** The normalized string form: `name[:tag][@digest]`. */
export function formatReference(r: ImageReference): string {
  return repositoryName(r) + (r.tag !== null ? `:${r.tag}` : '') + (r.digest !== null ? `@${r.digest}` : '');
}

/** Parse and normalize a reference; throws an ImageError with a one-line reason for a bad one. */
export function parseReference(input: string): ImageReference {
  const bad = (why: string): ImageError => new ImageError(`invalid reference format ${JSON.stringify(input)}: ${why}`);
  if (input === '') throw bad('empty');
  let rest = input;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = validateDigest(rest.slice(at + 1));
    } catch (e) {
      throw bad((e as Error).message);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | null = null;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`bad tag ${JSON.stringify(tag)} (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }
  if (rest === '') throw bad('empty name');
  const parts = rest.split('/');
  let domain: string | null = null;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    if (!HOST.test(first)) throw bad(`bad registry host ${JSON.stringify(first)}`);
    domain = first;
    parts.shift();
  }
  for (const p of parts) {
    if (p === '') throw bad('empty path component');
    if (p !== p.toLowerCase() && PATH_COMPONENT.test(p.toLowerCase())) throw bad('repository name must be lowercase');
    if (!PATH_COMPONENT.test(p)) throw bad(`bad path component ${JSON.stringify(p)} (lowercase letters and digits, separated by . _ __ or -)`);
  }
  const ref: ImageReference = { domain, path: parts.join('/'), tag, digest };
  if (repositoryName(ref).length > NAME_TOTAL_LENGTH_MAX) throw bad(`repository name longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  if (ref.tag === null && ref.digest === null) ref.tag = DEFAULT_TAG;
  return ref;
}

/** Parse and return the normalized string of a reference (e.g. `debian` -> `debian:latest`). */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}
