/**
 * The registry client (src/images/oci/registry.ts) against Debian's real
 * `docker-registry` on loopback, with images pushed by Debian's `skopeo`:
 * OCI and Docker schema 2 manifests, the riscv64 entry of a multi-arch
 * index, pulls by digest, skipping blobs the store has, redirects, bearer
 * tokens from a token server whose JWTs the registry verifies, Basic auth
 * with an htpasswd file, and every error: unreachable, unknown manifest,
 * no riscv64 entry, a foreign-architecture image, corrupted blob and
 * manifest bytes (through a proxy that flips a byte), malformed JSON, an
 * unsupported media type, missing or wrong credentials. A failed pull
 * leaves the store without the blob and without a ref.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pullFromRegistry, RegistryError, type PullOptions } from '../../src/images/oci/registry.js';
import { DirBlobSink } from '../helpers/dir-blob-sink.js';
import {
  freePort, htpasswdLine, makeSigningCert, skopeoPush, startDockerRegistry, startRegistryProxy, startTokenServer,
  type ProxyAction, type RunningRegistry,
} from '../helpers/docker-registry.js';
import { makeImage, makeIndex, writeLayout, type TestImage } from '../helpers/oci-test-images.js';

const QUIET: PullOptions = { progress: false, authFiles: [] };

/** Expect `p` to fail with a one-line RegistryError matching `re`. */
async function rejects(p: Promise<unknown>, re: RegExp): Promise<RegistryError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RegistryError, `expected a RegistryError, got ${String(e)}`);
    assert.equal(e.exitCode, 125);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected a failure matching ${re}`);
}

/** Every blob of `img` that a pull must store (manifest, config, layers) is in `sink` with the same bytes. */
function assertHasImage(sink: DirBlobSink, img: TestImage): void {
  for (const d of [img.manifest.digest, img.config.digest, ...img.layers.map((l) => l.digest)]) {
    assert.deepEqual(sink.read(d), img.blobs.get(d), `blob ${d}`);
  }
}

/** Every blob a stored manifest names is present and hashes to its digest. */
function assertManifestComplete(sink: DirBlobSink, manifestDigest: string): { mediaType: string; layers: { digest: string; mediaType: string }[] } {
  const m = JSON.parse(sink.read(manifestDigest).toString('utf8')) as { mediaType: string; config: { digest: string }; layers: { digest: string; mediaType: string }[] };
  for (const d of [manifestDigest, m.config.digest, ...m.layers.map((l) => l.digest)]) {
    assert.equal(`sha256:${crypto.createHash('sha256').update(sink.read(d)).digest('hex')}`, d);
  }
  return m;
}

test('registry pulls against Debian docker-registry on loopback', { timeout: 300_000 }, async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-registry-'));
  const storage = path.join(work, 'storage');
  const stops: (() => Promise<void>)[] = [];
  let sinkSeq = 0;
  const newSink = (): DirBlobSink => new DirBlobSink(path.join(work, `sink-${sinkSeq++}`));
  let open: RunningRegistry | undefined;
  try {
    open = await startDockerRegistry(work, 'open', storage);
    stops.push(open.stop);
    const R = open.host;

    // The images, as OCI layouts pushed by skopeo.
    const rv = await makeImage('riscv64', { 'etc/os-release': 'ID=tsvm-test\n', 'bin/hello': 'riscv64 hello\n' });
    const amd = await makeImage('amd64', { 'etc/os-release': 'ID=tsvm-test\n', 'bin/hello': 'amd64 hello\n' });
    const arm = await makeImage('arm64', { 'bin/hello': 'arm64 hello\n' });
    const single = path.join(work, 'single');
    writeLayout(single, 'v1', rv.manifest, rv.blobs);
    skopeoPush(single, 'v1', `${R}/tsvm/single:v1`);
    skopeoPush(single, 'v1', `${R}/tsvm/docker:v1`, ['--format', 'v2s2']);
    skopeoPush(single, 'v1', `${R}/pub/img:v1`);
    skopeoPush(single, 'v1', `${R}/priv/img:v1`);
    const amdLayout = path.join(work, 'amd');
    writeLayout(amdLayout, 'v1', amd.manifest, amd.blobs);
    skopeoPush(amdLayout, 'v1', `${R}/tsvm/amd64:v1`);
    const index = makeIndex([amd, rv]);
    const multi = path.join(work, 'multi');
    writeLayout(multi, 'latest', index.desc, new Map([...amd.blobs, ...rv.blobs, [index.desc.digest, index.data]]));
    skopeoPush(multi, 'latest', `${R}/tsvm/multi:latest`, ['--all']);
    skopeoPush(multi, 'latest', `${R}/tsvm/multi-docker:latest`, ['--all', '--format', 'v2s2']);
    const noRv = makeIndex([amd, arm]);
    const noRvLayout = path.join(work, 'norv');
    writeLayout(noRvLayout, 'latest', noRv.desc, new Map([...amd.blobs, ...arm.blobs, [noRv.desc.digest, noRv.data]]));
    skopeoPush(noRvLayout, 'latest', `${R}/tsvm/norv:latest`, ['--all']);

    await t.test('an OCI image: every blob verified and stored, the ref set last', async () => {
      const sink = newSink();
      const r = await pullFromRegistry(`${R}/tsvm/single:v1`, sink, QUIET);
      assert.equal(r.ref, `${R}/tsvm/single:v1`);
      assert.equal(r.manifestDigest, rv.manifest.digest);
      assert.equal(r.configDigest, rv.config.digest);
      assert.equal(r.layers, 1);
      assert.equal(r.bytes, rv.config.size + rv.layers[0]!.size);
      assert.equal(r.indexDigest, undefined);
      assertHasImage(sink, rv);
      assert.deepEqual(sink.listBlobs(), [...rv.blobs.keys()].sort());
      assert.deepEqual(sink.refs.get(r.ref), { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: rv.manifest.digest, size: rv.manifest.size });
      assert.equal(sink.puts.at(-1), rv.manifest.digest, 'the manifest is stored after its blobs');
      // A ref without a tag means :latest; with a digest it is pulled by digest.
      const byDigest = await pullFromRegistry(`${R}/tsvm/single@${rv.manifest.digest}`, newSink(), QUIET);
      assert.equal(byDigest.ref, `${R}/tsvm/single@${rv.manifest.digest}`);
      assert.equal(byDigest.manifestDigest, rv.manifest.digest);
    });

    await t.test('a Docker schema 2 image (skopeo --format v2s2)', async () => {
      const sink = newSink();
      const r = await pullFromRegistry(`${R}/tsvm/docker:v1`, sink, QUIET);
      const m = assertManifestComplete(sink, r.manifestDigest);
      assert.equal(m.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
      assert.equal(m.layers[0]!.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
      assert.equal(sink.refs.get(r.ref)?.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
      assert.equal(m.layers.length, 1);
      assert.deepEqual(sink.read(m.layers[0]!.digest), rv.blobs.get(rv.layers[0]!.digest), 'the same layer bytes');
    });

    await t.test('a multi-arch index: the linux/riscv64 entry is chosen, the amd64 one never fetched', async () => {
      const sink = newSink();
      const r = await pullFromRegistry(`${R}/tsvm/multi`, sink, QUIET);
      assert.equal(r.ref, `${R}/tsvm/multi:latest`);
      assert.equal(r.indexDigest, index.desc.digest);
      assert.equal(r.manifestDigest, rv.manifest.digest);
      assertHasImage(sink, rv);
      assert.deepEqual(sink.listBlobs(), [...rv.blobs.keys()].sort(), 'only the riscv64 image is stored');
      assert.equal(sink.refs.get(r.ref)?.digest, rv.manifest.digest, 'the ref resolves to the riscv64 manifest');
      // Pulled by the index's digest, the same manifest.
      const r2 = await pullFromRegistry(`${R}/tsvm/multi@${index.desc.digest}`, sink, QUIET);
      assert.equal(r2.manifestDigest, rv.manifest.digest);

      // A Docker manifest list (skopeo --all --format v2s2) over Docker manifests.
      const ds = newSink();
      const d = await pullFromRegistry(`${R}/tsvm/multi-docker`, ds, QUIET);
      assert.notEqual(d.indexDigest, undefined);
      const dm = assertManifestComplete(ds, d.manifestDigest);
      assert.equal(dm.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
      assert.deepEqual(ds.read(dm.layers[0]!.digest), rv.blobs.get(rv.layers[0]!.digest), 'the riscv64 layer');

      // Another platform on request.
      const a = await pullFromRegistry(`${R}/tsvm/multi:latest`, newSink(), { ...QUIET, platform: { os: 'linux', architecture: 'amd64' } });
      assert.equal(a.manifestDigest, amd.manifest.digest);
    });

    await t.test('blobs the store already has are skipped', async () => {
      const sink = newSink();
      await pullFromRegistry(`${R}/tsvm/single:v1`, sink, QUIET);
      const puts = sink.puts.length;
      const again = await pullFromRegistry(`${R}/tsvm/multi:latest`, sink, QUIET);
      assert.equal(again.bytes, 0);
      assert.equal(sink.puts.length, puts, 'nothing stored twice');
      assert.equal(sink.refs.get(`${R}/tsvm/multi:latest`)?.digest, rv.manifest.digest);
    });

    await t.test('redirected blob downloads are followed', async () => {
      const proxy = await startRegistryProxy(R, (_m, p): ProxyAction => (p.includes('/blobs/') ? { kind: 'redirect' } : { kind: 'pass' }));
      try {
        const sink = newSink();
        const r = await pullFromRegistry(`${proxy.host}/tsvm/single:v1`, sink, QUIET);
        assertHasImage(sink, rv);
        assert.equal(r.ref, `${proxy.host}/tsvm/single:v1`);
        assert.equal(proxy.touched.length, 2, 'config and layer were redirected');
      } finally {
        await proxy.stop();
      }
    });

    await t.test('a progress bar on a terminal only, and not when disabled', async () => {
      const child = fileURLToPath(new URL('../helpers/registry-pull-child.js', import.meta.url));
      const ref = `${R}/tsvm/single:v1`;
      // `script` gives the child a pseudo-terminal (util-linux, Essential in Debian).
      const onTty = (mode: string): string => execFileSync('script', ['-qfec', `${process.execPath} ${child} ${ref} ${newSink().dir} ${mode}`, '/dev/null'], { encoding: 'utf8' });
      const tty = onTty('progress');
      assert.match(tty, new RegExp(`tsvm: pulling ${R.replace(/\./g, '\\.')}/tsvm/single:v1 \\[.*\\] 100% `));
      assert.match(tty, /"manifestDigest":"sha256:/);
      const off = onTty('no-progress');
      assert.doesNotMatch(off, /tsvm: pulling/);
      assert.match(off, /"manifestDigest":"sha256:/);
      // stderr not a terminal: nothing on it.
      const piped = spawnSync(process.execPath, [child, ref, newSink().dir, 'progress'], { encoding: 'utf8' });
      assert.equal(piped.status, 0, piped.stderr);
      assert.equal(piped.stderr, '');
      assert.match(piped.stdout, /"manifestDigest":"sha256:/);
    });

    await t.test('errors: unreachable, unknown, no riscv64, foreign architecture, bad references', async () => {
      const closed = await freePort();
      await rejects(pullFromRegistry(`127.0.0.1:${closed}/tsvm/single:v1`, newSink(), QUIET), /cannot reach registry 127\.0\.0\.1:\d+ .*ECONNREFUSED/);
      const sink = newSink();
      await rejects(pullFromRegistry(`${R}/tsvm/single:nope`, sink, QUIET), /manifest 127\.0\.0\.1:\d+\/tsvm\/single:nope not found \(manifest_unknown/);
      await rejects(pullFromRegistry(`${R}/tsvm/absent:v1`, sink, QUIET), /tsvm\/absent:v1 not found \((?:name|manifest)_unknown/);
      await rejects(pullFromRegistry(`${R}/tsvm/norv:latest`, sink, QUIET), /has no linux\/riscv64 image; its index offers: linux\/amd64, linux\/arm64$/);
      await rejects(pullFromRegistry(`${R}/tsvm/amd64:v1`, sink, QUIET), /is a linux\/amd64 image, not linux\/riscv64/);
      assert.deepEqual(sink.listBlobs(), [], 'nothing stored by failed pulls');
      assert.equal(sink.refs.size, 0);
      await rejects(pullFromRegistry('busybox:latest', sink, QUIET), /not a registry reference/);
      await rejects(pullFromRegistry(`${R}/Tsvm/UPPER:v1`, sink, QUIET), /invalid repository name/);
      await rejects(pullFromRegistry(`${R}/tsvm/single@sha256:abc`, sink, QUIET), /invalid digest/);
    });

    await t.test('errors: corrupted blob and manifest bytes, malformed JSON, unsupported media type', async () => {
      const layerDigest = rv.layers[0]!.digest;
      let mode: 'layer' | 'manifest' | 'json' | 'mediatype' = 'layer';
      const proxy = await startRegistryProxy(R, (_m, p): ProxyAction => {
        if (mode === 'layer' && p.endsWith(`/blobs/${layerDigest}`)) return { kind: 'corrupt' };
        if (mode === 'manifest' && p.includes('/manifests/')) return { kind: 'corrupt' };
        if (mode === 'json' && p.includes('/manifests/')) return { kind: 'replace', status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: '{"schemaVersion": 2, "config": ' };
        if (mode === 'mediatype' && p.includes('/manifests/')) {
          return { kind: 'replace', status: 200, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: '{"schemaVersion": 1, "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws", "fsLayers": []}' };
        }
        return { kind: 'pass' };
      });
      try {
        const ref = `${proxy.host}/tsvm/single:v1`;
        const sink = newSink();
        await rejects(pullFromRegistry(ref, sink, QUIET), new RegExp(`layer of .* ${layerDigest} does not match its digest \\(got sha256:[0-9a-f]{64}\\); discarded`));
        assert.ok(proxy.touched.some((p) => p.endsWith(layerDigest)), 'the proxy corrupted the layer');
        assert.ok(!sink.listBlobs().includes(layerDigest), 'the corrupted layer is not stored');
        assert.deepEqual(sink.leftovers(), []);
        assert.equal(sink.refs.size, 0, 'no ref after a failed pull');
        mode = 'manifest';
        await rejects(pullFromRegistry(ref, sink, QUIET), /manifest .*tsvm\/single:v1 does not match its digest: expected sha256:[0-9a-f]{64}, got sha256:/);
        mode = 'json';
        await rejects(pullFromRegistry(ref, sink, QUIET), /malformed JSON in manifest .*tsvm\/single:v1/);
        mode = 'mediatype';
        await rejects(pullFromRegistry(ref, sink, QUIET), /unsupported manifest media type application\/vnd\.docker\.distribution\.manifest\.v1\+prettyjws/);
        assert.equal(sink.refs.size, 0);
        // The same sink then pulls the good image: a failed pull left nothing in the way.
        mode = 'layer';
        await pullFromRegistry(`${R}/tsvm/single:v1`, sink, QUIET);
        assertHasImage(sink, rv);
      } finally {
        await proxy.stop();
      }
    });

    await t.test('errors: a registry that stops sending in the middle of a layer', async () => {
      const layerDigest = rv.layers[0]!.digest;
      const proxy = await startRegistryProxy(R, (_m, p): ProxyAction => (p.endsWith(`/blobs/${layerDigest}`) ? { kind: 'stall' } : { kind: 'pass' }));
      try {
        const sink = newSink();
        await rejects(pullFromRegistry(`${proxy.host}/tsvm/single:v1`, sink, { ...QUIET, idleTimeoutMs: 500 }), new RegExp(`layer of .* ${layerDigest}: registry .* sent nothing for 0\\.5 s$`));
        assert.ok(!sink.listBlobs().includes(layerDigest));
        assert.deepEqual(sink.leftovers(), []);
        assert.equal(sink.refs.size, 0);
      } finally {
        await proxy.stop();
      }
    });

    await t.test('bearer tokens: the registry verifies the token server\'s JWTs', async () => {
      const cert = makeSigningCert(work);
      const issuer = 'tsvm-test-issuer';
      const service = 'tsvm-test-registry';
      const tokens = await startTokenServer({ keyPem: cert.keyPem, certPem: cert.certPem, issuer, service, users: { alice: 's3cret' }, publicPrefix: 'pub/' });
      stops.push(tokens.stop);
      const reg = await startDockerRegistry(work, 'token', storage, { token: { realm: tokens.realm, service, issuer, rootcertbundle: cert.certPath } });
      stops.push(reg.stop);
      const H = reg.host;
      const noAuth = await fetch(`http://${H}/v2/pub/img/manifests/v1`);
      assert.equal(noAuth.status, 401, 'the registry demands a token');
      assert.match(noAuth.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+",service="tsvm-test-registry",scope="repository:pub\/img:pull"/);

      // Anonymous: a pull token for a public repository.
      const sink = newSink();
      const r = await pullFromRegistry(`${H}/pub/img:v1`, sink, QUIET);
      assertHasImage(sink, rv);
      assert.equal(r.manifestDigest, rv.manifest.digest);
      assert.ok(tokens.requests.some((q) => q.user === '' && q.scope.includes('repository:pub/img:pull')), JSON.stringify(tokens.requests));
      // A private repository needs credentials.
      await rejects(pullFromRegistry(`${H}/priv/img:v1`, newSink(), QUIET), /priv\/img: authentication required \(the token server .* answered 401\)/);
      await rejects(pullFromRegistry(`${H}/priv/img:v1`, newSink(), { ...QUIET, username: 'alice', password: 'wrong' }), /rejected the credentials for alice \(401\)/);
      const s2 = newSink();
      await pullFromRegistry(`${H}/priv/img:v1`, s2, { ...QUIET, username: 'alice', password: 's3cret' });
      assertHasImage(s2, rv);
      assert.ok(tokens.requests.some((q) => q.user === 'alice' && q.scope.includes('repository:priv/img:pull')));
      // Credentials from a docker-style auth file, and a token sent as access_token.
      const authFile = path.join(work, 'auth.json');
      fs.writeFileSync(authFile, JSON.stringify({ auths: { [H]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
      tokens.tokenField = 'access_token';
      const s3 = newSink();
      await pullFromRegistry(`${H}/priv/img:v1`, s3, { progress: false, authFiles: [authFile] });
      assertHasImage(s3, rv);
      // A token that the registry does not accept (signed by another key) is a clear 401.
      const other = makeSigningCert(fs.mkdtempSync(path.join(work, 'other-')));
      const rogue = await startTokenServer({ keyPem: other.keyPem, certPem: other.certPem, issuer, service, users: {}, publicPrefix: 'pub/' });
      stops.push(rogue.stop);
      const reg2 = await startDockerRegistry(work, 'token-rogue', storage, { token: { realm: rogue.realm, service, issuer, rootcertbundle: cert.certPath } });
      stops.push(reg2.stop);
      await rejects(pullFromRegistry(`${reg2.host}/pub/img:v1`, newSink(), QUIET), /pub\/img: authentication required \(401 unauthorized/);
    });

    await t.test('Basic auth (htpasswd)', async () => {
      const htpasswd = path.join(work, 'htpasswd');
      fs.writeFileSync(htpasswd, htpasswdLine('bob', 'hunter2') + '\n');
      const reg = await startDockerRegistry(work, 'basic', storage, { htpasswd });
      stops.push(reg.stop);
      await rejects(pullFromRegistry(`${reg.host}/tsvm/single:v1`, newSink(), QUIET), /authentication required \(401, Basic realm "tsvm-test"\)/);
      await rejects(pullFromRegistry(`${reg.host}/tsvm/single:v1`, newSink(), { ...QUIET, username: 'bob', password: 'nope' }), /access denied for bob \(401/);
      const sink = newSink();
      await pullFromRegistry(`${reg.host}/tsvm/single:v1`, sink, { ...QUIET, username: 'bob', password: 'hunter2' });
      assertHasImage(sink, rv);
    });
  } catch (e) {
    if (open) process.stderr.write(`docker-registry log:\n${open.log()}\n`);
    throw e;
  } finally {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
});
