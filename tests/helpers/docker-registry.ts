/**
 * Debian's `docker-registry` (distribution 2.8) for the registry tests: run
 * on a free loopback port with a generated config (filesystem storage in a
 * temp dir; no auth, htpasswd, or token auth), plus the pieces around it:
 * a bearer-token server that signs JWTs the registry accepts (RS256, the
 * signing certificate in the `x5c` header, chained to the
 * `rootcertbundle`; claims per distribution's "Token Authentication
 * Implementation"), a certificate made with the `openssl` command line, a
 * bcrypt htpasswd line from `htpasswd -B`, and an HTTP proxy in front of a
 * registry that can corrupt, replace or redirect responses.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { requireTool } from './toolchain.js';

/** A free TCP port on 127.0.0.1 (bound and released; the usual small race). */
export async function freePort(): Promise<number> {
  const srv = http.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** The auth section of a registry config. */
export type RegistryAuth =
  | { htpasswd: string }
  | { token: { realm: string; service: string; issuer: string; rootcertbundle: string } };

/** A running docker-registry. */
export interface RunningRegistry {
  /** "127.0.0.1:PORT". */
  host: string;
  port: number;
  /** What it printed (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** Start docker-registry on a free port serving `storage`, with optional auth; resolves once /v2/ answers. */
export async function startDockerRegistry(workDir: string, name: string, storage: string, auth?: RegistryAuth): Promise<RunningRegistry> {
  const bin = requireTool('docker-registry', 'docker-registry');
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${crypto.randomBytes(16).toString('hex')}`,
  ];
  if (auth && 'htpasswd' in auth) lines.push('auth:', '  htpasswd:', '    realm: tsvm-test', `    path: ${auth.htpasswd}`);
  if (auth && 'token' in auth) {
    const t = auth.token;
    lines.push('auth:', '  token:', `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.rootcertbundle}`);
  }
  const configPath = path.join(workDir, `${name}.yml`);
  fs.writeFileSync(configPath, lines.join('\n') + '\n');
  const child: ChildProcess = spawn(bin, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${out}`);
    try {
      const r = await fetch(`http://${host}/v2/`);
      await r.body?.cancel();
      break;
    } catch {
      if (i > 200) {
        child.kill('SIGKILL');
        throw new Error(`docker-registry did not answer on ${host}: ${out}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    host, port,
    log: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Push an OCI layout's `tag` to `dest` (docker://HOST/NAME:TAG) with skopeo; `extra` adds options (--all, --format v2s2). */
export function skopeoPush(layoutDir: string, tag: string, dest: string, extra: string[] = []): void {
  const bin = requireTool('skopeo', 'skopeo');
  execFileSync(bin, ['copy', '--quiet', '--dest-tls-verify=false', ...extra, `oci:${layoutDir}:${tag}`, `docker://${dest}`], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A bcrypt htpasswd line for user:password (`htpasswd -Bbn`). */
export function htpasswdLine(user: string, password: string): string {
  const bin = requireTool('htpasswd', 'apache2-utils');
  return execFileSync(bin, ['-Bbn', user, password], { encoding: 'utf8' }).trim();
}

/** A self-signed RSA certificate and key made with `openssl req -x509` in `dir`. */
export function makeSigningCert(dir: string): { keyPem: string; certPem: string; certPath: string } {
  const bin = requireTool('openssl', 'openssl');
  const keyPath = path.join(dir, 'token-key.pem');
  const certPath = path.join(dir, 'token-cert.pem');
  execFileSync(bin, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=tsvm test token issuer'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  return { keyPem: fs.readFileSync(keyPath, 'utf8'), certPem: fs.readFileSync(certPath, 'utf8'), certPath };
}

/** base64url without padding (RFC 7515 §2). */
function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** A running token server. */
export interface TokenServer {
  /** The realm URL (http://127.0.0.1:PORT/token). */
  realm: string;
  /** Requests seen: the scope params and the user ('' when anonymous). */
  requests: { scope: string[]; user: string }[];
  /** The JSON field the token is sent in ("token", or "access_token" as OAuth 2 servers do). */
  tokenField: 'token' | 'access_token';
  stop(): Promise<void>;
}

/**
 * A token server: Basic `users` get every action they ask for; anonymous
 * requests get `pull` on repositories under `publicPrefix` only; a wrong
 * password is 401. Tokens are RS256 JWTs with the certificate in `x5c`.
 */
export async function startTokenServer(o: {
  keyPem: string; certPem: string; issuer: string; service: string; users: Record<string, string>; publicPrefix: string;
}): Promise<TokenServer> {
  const certDer = new crypto.X509Certificate(o.certPem).raw;
  const requests: TokenServer['requests'] = [];
  const server: TokenServer = {
    realm: '',
    requests,
    tokenField: 'token',
    stop: () => new Promise<void>((resolve) => {
      srv.closeAllConnections();
      srv.close(() => resolve());
    }),
  };
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    let user = '';
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const plain = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const colon = plain.indexOf(':');
      const name = plain.slice(0, colon);
      if (colon < 0 || o.users[name] !== plain.slice(colon + 1)) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        requests.push({ scope: scopes, user: `!${name}` });
        return;
      }
      user = name;
    }
    requests.push({ scope: scopes, user });
    const access = scopes.flatMap((s) => {
      const [type, name, actions] = s.split(':');
      if (type !== 'repository' || !name || !actions) return [];
      if (user === '' && !name.startsWith(o.publicPrefix)) return [];
      const allowed = user === '' ? actions.split(',').filter((a) => a === 'pull') : actions.split(',');
      return [{ type, name, actions: allowed }];
    });
    if (user === '' && access.length === 0 && scopes.length > 0) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"authentication required"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: o.issuer, sub: user, aud: o.service, exp: now + 300, nbf: now - 10, iat: now,
      jti: crypto.randomBytes(12).toString('hex'), access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = crypto.sign('sha256', Buffer.from(signingInput), o.keyPem);
    const token = `${signingInput}.${b64url(sig)}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ [server.tokenField]: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  server.realm = `http://127.0.0.1:${port}/token`;
  return server;
}

/** What the proxy does with one request: pass it, corrupt the body (flip a bit), send half of it and stall, replace it, or redirect to the registry. */
export type ProxyAction =
  | { kind: 'pass' }
  | { kind: 'corrupt' }
  | { kind: 'stall' }
  | { kind: 'replace'; status: number; headers: Record<string, string>; body: string }
  | { kind: 'redirect' };

/** A proxy in front of a registry. */
export interface RegistryProxy {
  host: string;
  /** Paths it changed (corrupted, replaced or redirected). */
  touched: string[];
  stop(): Promise<void>;
}

/** An HTTP proxy to `target` (HOST:PORT) that applies `decide(method, path)` to each request. */
export async function startRegistryProxy(target: string, decide: (method: string, path: string) => ProxyAction): Promise<RegistryProxy> {
  const touched: string[] = [];
  const srv = http.createServer((req, res) => {
    const p = req.url ?? '/';
    const action = decide(req.method ?? 'GET', p);
    if (action.kind !== 'pass') touched.push(p);
    if (action.kind === 'replace') {
      res.writeHead(action.status, action.headers).end(action.body);
      return;
    }
    if (action.kind === 'redirect') {
      res.writeHead(307, { location: `http://${target}${p}` }).end();
      return;
    }
    const [h, port] = target.split(':');
    const up = http.request({ host: h, port: Number(port), method: req.method, path: p, headers: { ...req.headers, host: target } }, (ur) => {
      if (action.kind === 'pass') {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
        return;
      }
      const parts: Buffer[] = [];
      ur.on('data', (c: Buffer) => parts.push(c));
      ur.on('end', () => {
        const body = Buffer.concat(parts);
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (action.kind === 'stall') {
          // Half the body, then nothing until the proxy stops.
          res.write(body.subarray(0, body.length >> 1));
          return;
        }
        if (body.length > 0) body[body.length >> 1] = body[body.length >> 1]! ^ 0x01;
        res.end(body);
      });
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(srv.address() as AddressInfo).port}`,
    touched,
    stop: () => new Promise<void>((resolve) => {
      srv.closeAllConnections();
      srv.close(() => resolve());
    }),
  };
}
