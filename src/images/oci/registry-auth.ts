/**
 * Authentication for the registry client (registry.ts): the
 * `WWW-Authenticate` challenges a distribution-spec registry answers 401
 * with (RFC 7235 §4.1), Basic credentials (RFC 7617), and Docker's bearer
 * token flow (distribution's "Token Authentication Specification": GET the
 * challenge's realm with `service` and `scope`, read `token` or
 * `access_token` from the JSON reply, send it as `Authorization: Bearer`).
 *
 * Credentials come from, in order: the caller's username/password (the
 * CLI's `--username/--password`); the file named by `$REGISTRY_AUTH_FILE`
 * (containers-auth.json(5), the same format); `$DOCKER_CONFIG/config.json`
 * or `~/.docker/config.json`. Only `auths` entries are read (`auth` =
 * base64 "user:password", or `username`/`password`); credential helpers
 * (`credsStore`, `credHelpers`) are not run, such a registry is tried
 * anonymously.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RegistryError } from './registry-error.js';

/** A username and password for one registry. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** One parsed `WWW-Authenticate` challenge: its scheme and auth-params. */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parse a `WWW-Authenticate` value (RFC 7235 §4.1: `scheme` then
 * comma-separated `name=value` or `name="quoted"` params). Several
 * challenges in one header are split on a new scheme token.
 */
export function parseAuthChallenges(header: string): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  let cur: AuthChallenge | null = null;
  let i = 0;
  const s = header;
  const skipWs = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
  };
  while (i < s.length) {
    skipWs();
    const m = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)(\s*=\s*)?/.exec(s.slice(i));
    if (!m) break;
    const name = m[1]!;
    i += m[0].length;
    if (m[2] === undefined) {
      // A token without '=' starts a new challenge.
      cur = { scheme: name.toLowerCase(), params: {} };
      out.push(cur);
      continue;
    }
    let value = '';
    if (s[i] === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i];
        i++;
      }
      i++;
    } else {
      const v = /^[^,\s]*/.exec(s.slice(i))![0];
      value = v;
      i += v.length;
    }
    if (cur) cur.params[name.toLowerCase()] = value;
  }
  return out;
}

/** Basic credentials as an `Authorization` header value (RFC 7617 §2). */
export function basicAuthorization(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

/** The auth files consulted, in order (see the module comment). */
export function authFilePaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const files: string[] = [];
  if (env['REGISTRY_AUTH_FILE']) files.push(env['REGISTRY_AUTH_FILE']);
  const dockerDir = env['DOCKER_CONFIG'] || path.join(env['HOME'] || os.homedir(), '.docker');
  files.push(path.join(dockerDir, 'config.json'));
  return files;
}

/** The key of an `auths` entry reduced to HOST[:PORT] ("https://index.docker.io/v1/" -> "index.docker.io"). */
function authKeyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

/**
 * Credentials for `host` (HOST[:PORT]) from the first auth file that has
 * an `auths` entry for it; undefined when none does. A malformed file is
 * a one-line error naming it.
 */
export function credentialsFromAuthFiles(host: string, files: string[] = authFilePaths()): RegistryCredentials | undefined {
  const want = host.toLowerCase();
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new RegistryError(`malformed auth file ${file}: ${(e as Error).message}`);
    }
    const auths = (doc as { auths?: unknown } | null)?.auths;
    if (typeof auths !== 'object' || auths === null) continue;
    for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
      if (authKeyHost(key) !== want || typeof entry !== 'object' || entry === null) continue;
      const e = entry as { auth?: unknown; username?: unknown; password?: unknown };
      if (typeof e.auth === 'string' && e.auth !== '') {
        const plain = Buffer.from(e.auth, 'base64').toString('utf8');
        const colon = plain.indexOf(':');
        if (colon < 0) throw new RegistryError(`malformed auth file ${file}: the "auth" entry for ${key} is not base64 "user:password"`);
        return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
      }
      if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
    }
  }
  return undefined;
}

/** Options for a bearer-token request. */
export interface TokenRequest {
  challenge: AuthChallenge;
  /** Scopes to ask for (e.g. "repository:library/busybox:pull"), added to the challenge's own. */
  scopes: string[];
  credentials?: RegistryCredentials;
  /** Where the token is for, in messages (HOST[:PORT]/NAME). */
  what: string;
  fetchImpl: typeof fetch;
  /** Give up after this long. */
  timeoutMs: number;
}

/**
 * Fetch a bearer token from the challenge's realm (Token Authentication
 * Specification, "Requesting a Token": GET realm?service=&scope=, Basic
 * credentials if any) and return the `Authorization` header value.
 */
export async function fetchBearerToken(req: TokenRequest): Promise<string> {
  const realm = req.challenge.params['realm'];
  if (!realm) throw new RegistryError(`${req.what}: the registry's Bearer challenge has no realm`);
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new RegistryError(`${req.what}: the registry's token realm is not a URL: ${realm}`);
  }
  const service = req.challenge.params['service'];
  if (service) url.searchParams.set('service', service);
  const scopes = new Set<string>();
  const own = req.challenge.params['scope'];
  if (own) for (const s of own.split(' ')) if (s) scopes.add(s);
  for (const s of req.scopes) scopes.add(s);
  for (const s of scopes) url.searchParams.append('scope', s);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (req.credentials) headers['Authorization'] = basicAuthorization(req.credentials);
  let res: Response;
  try {
    res = await req.fetchImpl(url, { headers, redirect: 'follow', signal: AbortSignal.timeout(req.timeoutMs) });
  } catch (e) {
    throw new RegistryError(`${req.what}: cannot reach the token server ${url.origin}: ${describeFetchError(e)}`);
  }
  let body: string;
  try {
    body = await res.text();
  } catch (e) {
    throw new RegistryError(`${req.what}: the token server ${url.origin} broke off: ${describeFetchError(e)}`);
  }
  if (res.status === 401 || res.status === 403) {
    throw new RegistryError(req.credentials
      ? `${req.what}: the token server ${url.origin} rejected the credentials for ${req.credentials.username} (${res.status})`
      : `${req.what}: authentication required (the token server ${url.origin} answered ${res.status}); give --username/--password or an auth file`);
  }
  if (!res.ok) throw new RegistryError(`${req.what}: the token server ${url.origin} answered ${res.status} ${res.statusText}`);
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (e) {
    throw new RegistryError(`${req.what}: malformed JSON from the token server ${url.origin}: ${(e as Error).message}`);
  }
  const d = doc as { token?: unknown; access_token?: unknown } | null;
  const token = typeof d?.token === 'string' && d.token ? d.token : typeof d?.access_token === 'string' ? d.access_token : '';
  if (!token) throw new RegistryError(`${req.what}: the token server ${url.origin} sent no "token" or "access_token"`);
  return `Bearer ${token}`;
}

/** One-line description of a fetch failure, with undici's cause (ECONNREFUSED and the like). */
export function describeFetchError(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  const cause = err?.cause;
  if (cause?.code) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` (${cause.message})` : ''}`;
  if (cause?.message) return cause.message;
  return err?.message ?? String(e);
}
