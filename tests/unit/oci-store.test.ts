/**
 * Unit tests for the OCI image store (src/images/oci/layout.ts): the layout
 * files, blob verification (a mismatch leaves nothing), names, image
 * indexes, gc, the data directory, and two processes at once: concurrent
 * writers lose nothing, a writer killed mid-way leaves a consistent store,
 * and a dead process's lock is broken.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DigestMismatchError, sha256Digest } from '../../src/images/oci/digest.js';
import { OciStore, defaultImageStoreDir } from '../../src/images/oci/layout.js';
import { ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_MANIFEST, type ImageConfig } from '../../src/images/oci/types.js';
import { addTestImage } from '../helpers/oci-store-child.js';
import { Prng } from '../helpers/prng.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'oci-store-child.js');
const tmpdirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-oci-store-'));
  tmpdirs.push(d);
  return d;
}
after(() => { for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true }); });

function blobs(dir: string): string[] { return fs.readdirSync(path.join(dir, 'blobs', 'sha256')).sort(); }
function temps(dir: string): string[] { return fs.readdirSync(path.join(dir, '.tmp')); }

/** Start the child helper; resolves with it once it printed `line`. */
function child(args: string[], line: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').includes(line)) resolve(c);
    });
    c.on('exit', (code) => reject(new Error(`child ${args.join(' ')} exited ${code} before printing ${line}: ${out}`)));
  });
}
function exited(c: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => { if (c.exitCode !== null || c.signalCode !== null) resolve(c.exitCode); else c.on('exit', (code) => resolve(code)); });
}

test('a new store is an OCI image layout (image-layout.md)', async () => {
  const dir = tmp();
  await OciStore.open(dir);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')), { schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: [] });
  assert.ok(fs.statSync(path.join(dir, 'blobs', 'sha256')).isDirectory());
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
  await assert.rejects(OciStore.open(dir), /unsupported imageLayoutVersion/);
});

test('defaultImageStoreDir: $TSVM_DATA, else $XDG_DATA_HOME/tsvm/images, else ~/.local/share/tsvm/images', () => {
  assert.equal(defaultImageStoreDir({ TSVM_DATA: '/d/x', XDG_DATA_HOME: '/x', HOME: '/h' }), '/d/x');
  assert.equal(defaultImageStoreDir({ XDG_DATA_HOME: '/x', HOME: '/h' }), '/x/tsvm/images');
  assert.equal(defaultImageStoreDir({ HOME: '/h' }), '/h/.local/share/tsvm/images');
  assert.equal(defaultImageStoreDir({ XDG_DATA_HOME: 'relative', HOME: '/h' }), '/h/.local/share/tsvm/images');
});

test('putBlob verifies size and sha256; a mismatch leaves no blob and no temp file', async () => {
  const dir = tmp();
  const store = await OciStore.open(dir);
  const data = Buffer.from('hello, layer');
  const digest = sha256Digest(data);
  await assert.rejects(store.putBlob({ digest, size: data.length, mediaType: MEDIA_TYPE_LAYER_TAR }, Buffer.from('hello, LAYER')),
    (e: unknown) => e instanceof DigestMismatchError && /^digest mismatch for layer: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}$/.test(e.message));
  await assert.rejects(store.putBlob({ digest, size: data.length + 1 }, data), DigestMismatchError);
  await assert.rejects(store.putBlob({ digest, size: 3 }, (async function* () { yield data; })()), DigestMismatchError);
  assert.deepEqual(blobs(dir), []);
  assert.deepEqual(temps(dir), []);
  assert.equal(await store.hasBlob(digest), false);
  await assert.rejects(store.putBlob({ digest: 'sha512:abc', size: 1 }, data), /not a valid digest|unsupported/);
  await store.putBlob({ digest, size: data.length }, (async function* () { yield data.subarray(0, 5); yield data.subarray(5); })());
  assert.equal(await store.hasBlob(digest), true);
  assert.deepEqual(await store.readBlob(digest), data);
  assert.equal(store.blobPath(digest), path.join(dir, 'blobs', 'sha256', digest.slice(7)));
  const d = await store.putJson({ b: 1, a: [2] }, 'application/json');
  assert.equal((await store.readBlob(d.digest)).toString(), '{"a":[2],"b":1}');
});

test('names: setRef needs every blob; resolve, tag, list, removeRef and gc', async () => {
  const dir = tmp();
  const store = await OciStore.open(dir);
  const layer = Buffer.alloc(512, 1);
  const ld = { mediaType: MEDIA_TYPE_LAYER_TAR, digest: sha256Digest(layer), size: layer.length };
  const config: ImageConfig = { architecture: 'riscv64', os: 'linux', created: '2026-01-01T00:00:00Z', rootfs: { type: 'layers', diff_ids: [ld.digest] } };
  // The layer is missing: no image is added.
  await assert.rejects(store.addImage('app', { config, layers: [ld] }), /not in the store/);
  const cfg = await store.putJson(config, 'application/vnd.oci.image.config.v1+json');
  const man = await store.putJson({ schemaVersion: 2, mediaType: MEDIA_TYPE_MANIFEST, config: cfg, layers: [ld] }, MEDIA_TYPE_MANIFEST);
  await assert.rejects(store.setRef('app', man), /blob sha256:[0-9a-f]+ is not in the store/);
  assert.deepEqual((await store.readIndex()).manifests, []);
  await store.putBlob(ld, layer);
  await store.setRef('app', man);
  const idx = await store.readIndex();
  assert.equal(idx.manifests.length, 1);
  assert.equal(idx.manifests[0]!.annotations?.[ANNOTATION_REF_NAME], 'app:latest');
  const r = await store.resolve('app');
  assert.equal(r.configDigest, cfg.digest);
  assert.equal(r.manifest.layers[0]!.digest, ld.digest);
  assert.equal((await store.resolve(cfg.digest.slice(7, 19))).configDigest, cfg.digest, 'by image ID prefix');
  await store.tag('app:latest', 'localhost:5000/x/app:v1');
  assert.deepEqual((await store.list()).map((x) => `${x.repository}:${x.tag}`).sort(), ['app:latest', 'localhost:5000/x/app:v1']);
  await assert.rejects(store.resolve('nope'), /^ImageError: No such image: nope$/m);
  await assert.rejects(store.removeRef(cfg.digest.slice(7, 19)), /referenced in multiple repositories/);
  assert.deepEqual(await store.removeRef('app'), ['app:latest']);
  assert.equal((await store.gc()).blobs, 0, 'the other name keeps the blobs');
  assert.deepEqual(await store.removeRef('localhost:5000/x/app:v1'), ['localhost:5000/x/app:v1']);
  const junk = Buffer.from('unreferenced');
  await store.putBlob({ digest: sha256Digest(junk), size: junk.length }, junk);
  const g = await store.gc();
  assert.equal(g.blobs, 4, 'config, manifest, layer and the unreferenced blob');
  assert.deepEqual(blobs(dir), []);
});

test('resolve follows an image index to its linux/riscv64 manifest', async () => {
  const dir = tmp();
  const store = await OciStore.open(dir);
  await addTestImage(store, 'base');
  const rv = await store.resolve('base');
  const other = { mediaType: MEDIA_TYPE_MANIFEST, digest: sha256Digest(Buffer.from('absent')), size: 6, platform: { os: 'linux', architecture: 'amd64' } };
  const index = await store.putJson({
    schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX,
    manifests: [other, { ...rv.desc, platform: { os: 'linux', architecture: 'riscv64' } }],
  }, MEDIA_TYPE_INDEX);
  await store.setRef('multi:1', index);
  const r = await store.resolve('multi:1');
  assert.equal(r.desc.digest, rv.desc.digest);
  assert.equal(r.entry.digest, index.digest);
  const amd = await store.putJson({ schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: [other] }, MEDIA_TYPE_INDEX);
  await assert.rejects(store.setRef('amd:1', amd), /has no linux\/riscv64 image \(it has: linux\/amd64\)/);
  await store.removeRef('base');
  assert.equal((await store.gc()).blobs, 1, 'only the amd64 index that was never named goes: the index keeps its riscv64 manifest and blobs');
  assert.equal((await store.resolve('multi:1')).configDigest, rv.configDigest);
});

test('two processes adding images at once lose none of each other\'s names', async () => {
  const dir = tmp();
  await OciStore.open(dir);
  const n = 15;
  const [a, b] = await Promise.all([child(['setrefs', dir, 'a', String(n)], 'done'), child(['setrefs', dir, 'b', String(n)], 'done')]);
  await Promise.all([exited(a), exited(b)]);
  const store = await OciStore.open(dir);
  const names = (await store.list()).map((r) => r.repository).sort();
  const want = [...Array(n).keys()].flatMap((i) => [`a-${i}`, `b-${i}`]).sort();
  assert.deepEqual(names, want);
  assert.equal(fs.existsSync(path.join(dir, 'index.json.lock')), false);
});

test('a writer killed during putBlob leaves no blob; gc removes its temp file', async () => {
  const dir = tmp();
  const store = await OciStore.open(dir);
  await addTestImage(store, 'keep');
  const before = fs.readFileSync(path.join(dir, 'index.json'), 'utf8');
  const c = await child(['slowput', dir], 'writing');
  assert.equal(temps(dir).length, 1, 'the partial blob is in .tmp');
  c.kill('SIGKILL');
  await exited(c);
  assert.equal(await store.hasBlob(sha256Digest(Buffer.alloc(4096, 7))), false);
  assert.equal(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'), before);
  const g = await store.gc();
  assert.equal(g.tempFiles, 1);
  assert.equal(g.blobs, 0);
  assert.deepEqual(temps(dir), []);
  assert.equal((await store.resolve('keep')).ref, 'keep:latest');
});

test('a writer killed at a random point leaves a consistent store (seeded)', async () => {
  const seed = Number(process.env.OCI_KILL_SEED ?? Date.now() % 1_000_000);
  console.log(`oci-store: OCI_KILL_SEED=${seed}`);
  const rng = new Prng(seed);
  const dir = tmp();
  await OciStore.open(dir);
  const c = await child(['loop', dir, 'img'], 'added 0');
  await new Promise((r) => setTimeout(r, rng.int(300)));
  c.kill('SIGKILL');
  await exited(c);
  // Whatever the child was doing, index.json parses and every image it names is complete.
  const store = await OciStore.open(dir);
  const rows = await store.list();
  assert.ok(rows.length >= 1);
  for (const r of rows) {
    const img = await store.resolve(r.ref!);
    for (const l of img.manifest.layers) assert.equal(await store.hasBlob(l.digest), true);
  }
  const g = await store.gc();
  // Unreferenced leftovers are at most the blobs of the one image being added.
  assert.ok(g.blobs <= 3, `gc removed ${g.blobs} blobs`);
  assert.deepEqual(temps(dir), []);
  // The dead child's lock (if it held it) does not block the next writer.
  await addTestImage(store, 'after');
  assert.equal((await store.list()).length, rows.length + 1);
});

test('the lock of a dead process is broken; a live holder is waited for', async () => {
  const dir = tmp();
  const store = await OciStore.open(dir);
  const c = await child(['holdlock', dir], 'locked');
  assert.equal(fs.readFileSync(path.join(dir, 'index.json.lock'), 'utf8').trim(), String(c.pid));
  let done = false;
  const adding = addTestImage(store, 'waiting').then(() => { done = true; });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(done, false, 'the writer waits while the holder lives');
  c.kill('SIGKILL');
  await exited(c);
  await adding;
  assert.equal((await store.resolve('waiting')).ref, 'waiting:latest');
  assert.equal(fs.existsSync(path.join(dir, 'index.json.lock')), false);
});

test('gc keeps the blobs another instance or a live process stored but has not named yet', async () => {
  const dir = tmp();
  const a = await OciStore.open(dir);
  const b = await OciStore.open(dir);
  const x = Buffer.from('pulled layer');
  const xd = sha256Digest(x);
  await a.putBlob({ digest: xd, size: x.length }, x);
  assert.equal((await b.gc()).blobs, 0, 'pinned by instance a');
  assert.equal(await b.hasBlob(xd), true);
  await a.unpin([xd]);
  assert.equal((await b.gc()).blobs, 1, 'unpinned: gone');
  // Naming an image unpins its blobs: after rmi, gc removes them.
  await addTestImage(a, 'named');
  await b.removeRef('named');
  assert.equal((await b.gc()).blobs, 3);
  // A live process's pins protect; a killed process's do not.
  const c = await child(['putonly', dir], 'put');
  const inFlight = sha256Digest(Buffer.from('in flight'));
  assert.equal((await b.gc()).blobs, 0);
  assert.equal(await b.hasBlob(inFlight), true);
  c.kill('SIGKILL');
  await exited(c);
  const g = await b.gc();
  assert.equal(g.blobs, 1);
  assert.equal(await b.hasBlob(inFlight), false);
  assert.deepEqual(temps(dir), []);
});

test('a lock file older than the last boot is stale even if its pid is alive now', async () => {
  const dir = tmp();
  const store = await OciStore.open(dir);
  const lock = path.join(dir, 'index.json.lock');
  fs.writeFileSync(lock, '1\n'); // pid 1 is alive: only the age says the lock is stale
  fs.utimesSync(lock, new Date(0), new Date(0));
  await addTestImage(store, 'after-reboot');
  assert.equal((await store.resolve('after-reboot')).ref, 'after-reboot:latest');
  assert.equal(fs.existsSync(lock), false);
});
