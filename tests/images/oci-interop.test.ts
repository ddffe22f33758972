/**
 * Interop with Debian's skopeo and umoci (issue 15 point 1, "Interop"):
 * they read what tsvm saves (OCI archives, both docker-archive forms, the
 * store's own image layout) and tsvm loads what they write. Runs once in CI;
 * scripts/test-all.sh installs both tools, and a missing tool fails the test.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const TSVM = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const tmpdirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-oci-interop-'));
  tmpdirs.push(d);
  return d;
}
after(() => { for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true }); });

let store = '';

/** Run tsvm with the test's store; returns stdout, throws with stderr on a non-zero exit. */
function tsvm(...args: string[]): string {
  const r = spawnSync(process.execPath, [TSVM, ...args], { env: { ...process.env, TSVM_DATA: store }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsvm ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function tool(name: string, ...args: string[]): string {
  return execFileSync(name, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function requireTool(name: string): void {
  const r = spawnSync(name, ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    assert.fail(`${name} is not installed: apt-get install skopeo umoci (scripts/test-all.sh installs them)`);
  }
}

let configDigest = '';
let manifestDigest = '';

before(() => {
  store = tmp();
  const root = tmp();
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc/motd'), 'made by tsvm\n');
  fs.linkSync(path.join(root, 'etc/motd'), path.join(root, 'etc/motd.link'));
  fs.symlinkSync('etc/motd', path.join(root, 'motd'));
  const tarball = path.join(tmp(), 'rootfs.tar.gz');
  execFileSync('tar', ['-C', root, '-czf', tarball, '.']);
  configDigest = tsvm('import', tarball, 'interop:1').trim();
  tsvm('tag', 'interop:1', 'localhost:5000/team/interop:2');
  manifestDigest = (JSON.parse(fs.readFileSync(path.join(store, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]!.digest;
});

test('skopeo reads the archives tsvm saves (OCI, Docker >= 25 and classic docker-archive)', () => {
  requireTool('skopeo');
  const dir = tmp();
  const def = path.join(dir, 'default.tar');
  tsvm('save', '-o', def, 'interop:1', 'localhost:5000/team/interop:2');
  for (const src of [`oci-archive:${def}:interop:1`, `docker-archive:${def}:interop:1`]) {
    const info = JSON.parse(tool('skopeo', 'inspect', src)) as { Architecture: string; Os: string; Layers: string[]; Digest: string };
    assert.equal(info.Architecture, 'riscv64', src);
    assert.equal(info.Os, 'linux', src);
    assert.equal(info.Layers.length, 1, src);
  }
  const cfg = JSON.parse(tool('skopeo', 'inspect', '--config', `oci-archive:${def}:localhost:5000/team/interop:2`)) as { rootfs: { diff_ids: string[] } };
  assert.equal(cfg.rootfs.diff_ids.length, 1);
  const oci = path.join(dir, 'oci.tar');
  tsvm('save', '--format', 'oci', '-o', oci, 'interop:1');
  const out = path.join(dir, 'copy');
  tool('skopeo', 'copy', `oci-archive:${oci}`, `oci:${out}:copied`);
  const idx = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  assert.equal(idx.manifests[0]!.annotations['org.opencontainers.image.ref.name'], 'copied');
  assert.equal(idx.manifests[0]!.digest, manifestDigest, 'skopeo copies the manifest byte for byte');
  const classic = path.join(dir, 'classic.tar');
  tsvm('save', '--format', 'docker-classic', '-o', classic, 'interop:1');
  const info = JSON.parse(tool('skopeo', 'inspect', '--config', `docker-archive:${classic}`)) as { architecture: string };
  assert.equal(info.architecture, 'riscv64');
});

test('skopeo and umoci address images in the store by their full reference', () => {
  requireTool('skopeo');
  requireTool('umoci');
  const info = JSON.parse(tool('skopeo', 'inspect', `oci:${store}:localhost:5000/team/interop:2`)) as { Digest: string };
  assert.equal(info.Digest, manifestDigest);
  const bundle = path.join(tmp(), 'bundle');
  tool('umoci', 'unpack', '--rootless', '--image', `${store}:interop:1`, bundle);
  assert.equal(fs.readFileSync(path.join(bundle, 'rootfs/etc/motd'), 'utf8'), 'made by tsvm\n');
  assert.equal(fs.readlinkSync(path.join(bundle, 'rootfs/motd')), 'etc/motd');
  assert.equal(fs.statSync(path.join(bundle, 'rootfs/etc/motd.link')).ino, fs.statSync(path.join(bundle, 'rootfs/etc/motd')).ino);
});

test('tsvm loads what skopeo writes: oci-archive and docker-archive', () => {
  requireTool('skopeo');
  const dir = tmp();
  tool('skopeo', 'copy', `oci:${store}:interop:1`, `oci-archive:${path.join(dir, 'o.tar')}:from-skopeo:oci`);
  tool('skopeo', 'copy', `oci:${store}:interop:1`, `docker-archive:${path.join(dir, 'd.tar')}:from-skopeo/docker:1`);
  assert.match(tsvm('load', '-i', path.join(dir, 'o.tar')), /^Loaded image: from-skopeo:oci$/m);
  assert.match(tsvm('load', '-i', path.join(dir, 'd.tar')), /^Loaded image: docker\.io\/from-skopeo\/docker:1$/m);
  const ids = tsvm('images', '--digests').split('\n').filter((l) => l.startsWith('from-skopeo') || l.startsWith('docker.io/from-skopeo'));
  assert.equal(ids.length, 2);
  for (const l of ids) assert.ok(l.includes(configDigest.slice(7, 19)), `same image ID: ${l}`);
});

test('tsvm loads a layout umoci wrote (init, new, insert)', () => {
  requireTool('umoci');
  const dir = tmp();
  const layout = path.join(dir, 'layout');
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(src, 'sub/file'), 'from umoci\n');
  tool('umoci', 'init', '--layout', layout);
  tool('umoci', 'new', '--image', `${layout}:base`);
  tool('umoci', 'insert', '--rootless', '--image', `${layout}:base`, src, '/opt/app');
  const archive = path.join(dir, 'umoci.tar');
  execFileSync('tar', ['-C', layout, '-cf', archive, '.']);
  assert.match(tsvm('load', '-i', archive), /^Loaded image: base:latest$/m);
  const out = tsvm('save', '--format', 'oci', 'base');
  assert.ok(out.length > 0);
  // The inserted file comes back out through umoci from tsvm's own store.
  const bundle = path.join(dir, 'bundle');
  tool('umoci', 'unpack', '--rootless', '--image', `${store}:base:latest`, bundle);
  assert.equal(fs.readFileSync(path.join(bundle, 'rootfs/opt/app/sub/file'), 'utf8'), 'from umoci\n');
});
