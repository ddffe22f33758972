/**
 * Unit tests for image references (Docker's grammar and normalization,
 * without a docker.io default) and digest strings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageError } from '../../src/images/errors.js';
import { DigestMismatchError, sha256Digest, validateDigest } from '../../src/images/oci/digest.js';
import { normalizeReference, parseReference } from '../../src/images/oci/reference.js';

const HEX = 'a'.repeat(64);

test('short names stay local names with the default tag latest', () => {
  assert.equal(normalizeReference('debian'), 'debian:latest');
  assert.equal(normalizeReference('busybox'), 'busybox:latest');
  assert.equal(normalizeReference('debian:trixie'), 'debian:trixie');
  assert.deepEqual(parseReference('library/debian:12'), { domain: null, path: 'library/debian', tag: '12', digest: null });
});

test('a first component with a dot, a colon, or localhost is a registry host', () => {
  assert.deepEqual(parseReference('localhost:5000/team/app:1.0'), { domain: 'localhost:5000', path: 'team/app', tag: '1.0', digest: null });
  assert.deepEqual(parseReference('registry.example.org/app'), { domain: 'registry.example.org', path: 'app', tag: 'latest', digest: null });
  assert.deepEqual(parseReference('localhost/app'), { domain: 'localhost', path: 'app', tag: 'latest', digest: null });
  assert.deepEqual(parseReference('127.0.0.1:5000/x'), { domain: '127.0.0.1:5000', path: 'x', tag: 'latest', digest: null });
  assert.deepEqual(parseReference('[::1]:5000/x:y'), { domain: '[::1]:5000', path: 'x', tag: 'y', digest: null });
  // `team` (no dot, colon or localhost) is a path component, not a host.
  assert.deepEqual(parseReference('team/app'), { domain: null, path: 'team/app', tag: 'latest', digest: null });
  // Docker: a first component with uppercase letters is a host.
  assert.equal(parseReference('MyHost/app').domain, 'MyHost');
});

test('digests: name@digest keeps no default tag; name:tag@digest keeps both', () => {
  assert.equal(normalizeReference(`debian@sha256:${HEX}`), `debian@sha256:${HEX}`);
  assert.equal(normalizeReference(`localhost:5000/a:t@sha256:${HEX}`), `localhost:5000/a:t@sha256:${HEX}`);
});

test('path components: separators . _ __ and runs of -', () => {
  for (const ok of ['a.b', 'a_b', 'a__b', 'a-b', 'a---b', 'a0/b1/c2', 'x/y.z_w']) assert.equal(normalizeReference(ok), `${ok}:latest`);
});

test('bad references are refused with a one-line reason', () => {
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['Debian', /must be lowercase/],
    ['team/App', /must be lowercase/],
    ['a//b', /empty path component/],
    ['a/', /empty path component/],
    ['-a', /bad path component/],
    ['a-', /bad path component/],
    ['a...b', /bad path component/],
    ['a___b', /bad path component/],
    ['a:', /bad tag/],
    ['a:-x', /bad tag/],
    [`a:${'t'.repeat(129)}`, /bad tag/],
    ['a@sha256:abc', /64 lowercase hex/],
    [`a@md5:${'a'.repeat(32)}`, /unsupported digest algorithm "md5"/],
    ['bad_host.com:x/app', /bad registry host/],
    [`${'a'.repeat(256)}`, /longer than 255/],
    ['a b', /bad path component/],
  ];
  for (const [input, re] of bad) {
    assert.throws(() => parseReference(input), (e: unknown) => e instanceof ImageError && re.test(e.message) && !e.message.includes('\n'),
      `expected ${JSON.stringify(input)} to be refused with ${re}`);
  }
});

test('digest strings: sha256 only, 64 lowercase hex', () => {
  assert.equal(validateDigest(`sha256:${HEX}`), `sha256:${HEX}`);
  assert.throws(() => validateDigest(`sha256:${HEX.toUpperCase()}`), /64 lowercase hex/);
  assert.throws(() => validateDigest(`sha512:${'a'.repeat(128)}`), /unsupported digest algorithm "sha512"/);
  assert.throws(() => validateDigest('sha256'), /not a valid digest/);
  assert.throws(() => validateDigest(`sha256:${HEX}x`), /64 lowercase hex/);
  assert.equal(sha256Digest(Buffer.from('')), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  const e = new DigestMismatchError('layer', 'sha256:x', 'sha256:y');
  assert.equal(e.message, 'digest mismatch for layer: expected sha256:x, got sha256:y');
  assert.ok(e instanceof ImageError);
});
