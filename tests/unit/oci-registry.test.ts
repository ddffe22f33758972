/**
 * The registry client's pure parts: references, loopback and URL rules,
 * WWW-Authenticate challenges, and credentials from auth files. The pulls
 * themselves are tested against a real docker-registry in
 * tests/host/registry-pull.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatRegistryRef, isLoopbackHost, parseRegistryRef, registryBaseUrl, RegistryError } from '../../src/images/oci/registry.js';
import { authFilePaths, basicAuthorization, credentialsFromAuthFiles, parseAuthChallenges } from '../../src/images/oci/registry-auth.js';

const D = `sha256:${'ab'.repeat(32)}`;

test('parseRegistryRef: HOST[:PORT]/PATH[:TAG|@DIGEST]', () => {
  assert.deepEqual(parseRegistryRef('127.0.0.1:5000/tsvm/busybox'), { host: '127.0.0.1:5000', name: 'tsvm/busybox', tag: 'latest' });
  assert.deepEqual(parseRegistryRef('localhost/a:v1.2_x'), { host: 'localhost', name: 'a', tag: 'v1.2_x' });
  assert.deepEqual(parseRegistryRef(`ghcr.io/o/p/q@${D}`), { host: 'ghcr.io', name: 'o/p/q', digest: D });
  assert.deepEqual(parseRegistryRef(`reg.example:443/a-b/c__d:t@${D}`), { host: 'reg.example:443', name: 'a-b/c__d', tag: 't', digest: D });
  assert.deepEqual(parseRegistryRef('[::1]:5000/x:y'), { host: '[::1]:5000', name: 'x', tag: 'y' });
  assert.deepEqual(parseRegistryRef('docker.io/busybox'), { host: 'docker.io', name: 'library/busybox', tag: 'latest' });
  // Not registry references: no host component.
  assert.equal(parseRegistryRef('busybox'), null);
  assert.equal(parseRegistryRef('debian:trixie'), null);
  assert.equal(parseRegistryRef('library/busybox:1'), null);
  // Malformed ones are one-line RegistryErrors with exit code 125.
  for (const [bad, re] of [
    ['reg.io/UPPER', /invalid repository name/],
    ['reg.io/a//b', /invalid repository name/],
    ['reg.io/a:-bad', /invalid tag/],
    ['reg.io/a@sha256:123', /invalid digest/],
    ['reg.io/a@md5:00', /invalid digest/],
    ['re g.io:5000/a', /invalid registry host/],
  ] as const) {
    assert.throws(() => parseRegistryRef(bad), (e: unknown) => e instanceof RegistryError && e.exitCode === 125 && re.test(e.message), bad);
  }
});

test('formatRegistryRef round-trips', () => {
  for (const r of ['127.0.0.1:5000/tsvm/busybox:latest', `ghcr.io/o/p@${D}`, `h.io/a:t@${D}`]) {
    assert.equal(formatRegistryRef(parseRegistryRef(r)!), r);
  }
});

test('plain http for loopback or with insecure, https elsewhere', () => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.8.9.10:80', '[::1]:5000']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['example.com', '128.0.0.1:5000', '10.0.0.1', 'localhost.example.com', '[::2]:5000']) assert.ok(!isLoopbackHost(h), h);
  assert.equal(registryBaseUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000/v2/');
  assert.equal(registryBaseUrl('reg.example:5000'), 'https://reg.example:5000/v2/');
  assert.equal(registryBaseUrl('reg.example:5000', true), 'http://reg.example:5000/v2/');
  assert.equal(registryBaseUrl('docker.io'), 'https://registry-1.docker.io/v2/');
});

test('parseAuthChallenges: Bearer and Basic, quoted values with commas', () => {
  assert.deepEqual(parseAuthChallenges('Bearer realm="https://auth.io/token",service="reg.io",scope="repository:a/b:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.io/token', service: 'reg.io', scope: 'repository:a/b:pull,push' } },
  ]);
  assert.deepEqual(parseAuthChallenges('Basic realm="tsvm \\"test\\""'), [{ scheme: 'basic', params: { realm: 'tsvm "test"' } }]);
  assert.deepEqual(parseAuthChallenges('Basic realm=r, Bearer realm="x", error=invalid_token'), [
    { scheme: 'basic', params: { realm: 'r' } },
    { scheme: 'bearer', params: { realm: 'x', error: 'invalid_token' } },
  ]);
  assert.deepEqual(parseAuthChallenges(''), []);
  assert.equal(basicAuthorization({ username: 'Aladdin', password: 'open sesame' }), 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=='); // RFC 7617 §2's example
});

test('credentials from auth files: first match wins, both entry forms, errors name the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-auth-'));
  try {
    const a = path.join(dir, 'a.json');
    const b = path.join(dir, 'b.json');
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(a, JSON.stringify({ auths: { 'reg.io:5000': { auth: Buffer.from('u1:p:1').toString('base64') } } }));
    fs.writeFileSync(b, JSON.stringify({
      auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') }, 'reg.io:5000': { auth: Buffer.from('u2:p2').toString('base64') }, 'other.io': { username: 'u3', password: 'p3' } },
    }));
    fs.writeFileSync(bad, '{"auths": ');
    const missing = path.join(dir, 'missing.json');
    assert.deepEqual(credentialsFromAuthFiles('reg.io:5000', [missing, a, b]), { username: 'u1', password: 'p:1' });
    assert.deepEqual(credentialsFromAuthFiles('REG.io:5000', [b, a]), { username: 'u2', password: 'p2' });
    assert.deepEqual(credentialsFromAuthFiles('other.io', [a, b]), { username: 'u3', password: 'p3' });
    assert.deepEqual(credentialsFromAuthFiles('index.docker.io', [b]), { username: 'hub', password: 'pw' });
    assert.equal(credentialsFromAuthFiles('reg.io', [a, b]), undefined, 'the port is part of the key');
    assert.throws(() => credentialsFromAuthFiles('reg.io', [bad]), (e: unknown) => e instanceof RegistryError && e.message.startsWith(`malformed auth file ${bad}:`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(authFilePaths({ REGISTRY_AUTH_FILE: '/r.json', DOCKER_CONFIG: '/d', HOME: '/h' }), ['/r.json', '/d/config.json']);
  assert.deepEqual(authFilePaths({ HOME: '/h' }), ['/h/.docker/config.json']);
});
