/**
 * Unit tests for image archives (src/images/oci/archive*.ts): save/load
 * round trips of the OCI archive, Docker >= 25 and classic docker-archive
 * forms; corrupt, truncated and digest-mismatching archives rejected with
 * one line and the store left exactly as it was; `import`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { ImageError } from '../../src/images/errors.js';
import { importTarball, load } from '../../src/images/oci/archive.js';
import { ARCHIVE_FORMATS, save } from '../../src/images/oci/archive-save.js';
import { DigestMismatchError, sha256Digest } from '../../src/images/oci/digest.js';
import { layerFromDirectory, unpackImage } from '../../src/images/oci/layer-apply.js';
import { OciStore } from '../../src/images/oci/layout.js';
import type { ImageConfig } from '../../src/images/oci/types.js';

const tmpdirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-oci-archive-'));
  tmpdirs.push(d);
  return d;
}
after(() => { for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true }); });

interface Member { name: string; type: 'file' | 'directory' | 'symlink'; body: Buffer; linkname?: string }

async function readTar(buf: Buffer): Promise<Member[]> {
  const ex = tarStream.extract();
  ex.end(buf);
  const out: Member[] = [];
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    out.push({ name: e.header.name, type: e.header.type as Member['type'], body: Buffer.concat(chunks), linkname: e.header.linkname });
  }
  return out;
}

async function writeTar(members: Member[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => { for await (const c of pack) chunks.push(c as Buffer); })();
  for (const m of members) {
    await new Promise<void>((resolve, reject) => pack.entry({ name: m.name, type: m.type, linkname: m.linkname }, m.type === 'file' ? m.body : '', (e) => (e ? reject(e) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Every file under the store and its sha256: "exactly as it was". */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = path.join(rel, n);
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) { out[`${r}/`] = ''; walk(r); } else out[r] = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, r))).digest('hex');
    }
  };
  walk('');
  return out;
}

/** A store with `base:1` (one layer) and `app:2` = `localhost:5000/team/app:latest` (base's layer plus one). */
async function sourceStore(): Promise<OciStore> {
  const store = await OciStore.open(tmp());
  const d1 = tmp();
  fs.mkdirSync(path.join(d1, 'etc'));
  fs.writeFileSync(path.join(d1, 'etc/os-release'), 'ID=test\n');
  fs.symlinkSync('etc/os-release', path.join(d1, 'os'));
  const d2 = tmp();
  fs.mkdirSync(path.join(d2, 'app'));
  fs.writeFileSync(path.join(d2, 'app/run'), 'run', { mode: 0o755 });
  fs.writeFileSync(path.join(d2, 'etc.wh'), 'not a whiteout');
  const mtime = new Date('2025-05-05T00:00:00Z');
  const l1 = await layerFromDirectory(d1, { store, mtime });
  const l2 = await layerFromDirectory(d2, { store, mtime });
  const cfg = (ids: string[]): ImageConfig => ({ created: '2025-05-05T00:00:00Z', architecture: 'riscv64', os: 'linux', config: { Cmd: ['/app/run'] }, rootfs: { type: 'layers', diff_ids: ids } });
  await store.addImage('base:1', { config: cfg([l1.diffId]), layers: [l1.desc] });
  const app = await store.addImage('app:2', { config: cfg([l1.diffId, l2.diffId]), layers: [l1.desc, l2.desc] });
  await store.setRef('localhost:5000/team/app', app);
  return store;
}

async function rootfsOf(store: OciStore, ref: string): Promise<string[]> {
  const dest = path.join(tmp(), 'rootfs');
  await unpackImage(store, ref, dest);
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(dest, rel)).sort()) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const st = fs.lstatSync(path.join(dest, r));
      out.push(st.isFile() ? `${r}=${fs.readFileSync(path.join(dest, r), 'utf8')}` : r);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

test('save and load round trips, in every archive form', async () => {
  const src = await sourceStore();
  const want = await rootfsOf(src, 'app:2');
  for (const format of ARCHIVE_FORMATS) {
    const file = path.join(tmp(), `${format}.tar`);
    await save(src, ['app:2', 'localhost:5000/team/app', 'base:1'], file, format);
    const members = (await readTar(fs.readFileSync(file))).map((m) => m.name);
    if (format === 'oci') assert.ok(members.includes('index.json') && members.includes('oci-layout') && !members.includes('manifest.json'), format);
    if (format === 'docker') assert.ok(members.includes('index.json') && members.includes('manifest.json') && members.includes('repositories'), format);
    if (format === 'docker-classic') assert.ok(!members.includes('index.json') && members.includes('manifest.json') && members.some((m) => m.endsWith('/layer.tar')), format);
    const dst = await OciStore.open(tmp());
    const loaded = await load(dst, file);
    assert.deepEqual(loaded.map((l) => l.ref).sort(), ['app:2', 'base:1', 'localhost:5000/team/app:latest'], format);
    for (const ref of ['app:2', 'base:1']) {
      assert.equal((await dst.resolve(ref)).configDigest, (await src.resolve(ref)).configDigest, `${format}: ${ref} keeps its image ID`);
    }
    assert.deepEqual(await rootfsOf(dst, 'localhost:5000/team/app'), want, format);
    // Loading the same archive again changes nothing.
    const before = snapshot(dst.dir);
    await load(dst, file);
    assert.deepEqual(snapshot(dst.dir), before, `${format}: a second load is a no-op`);
  }
});

test('load accepts a gzip-compressed archive and a stream; an image saved by ID loads untagged', async () => {
  const src = await sourceStore();
  const id = (await src.resolve('base:1')).configDigest;
  const file = path.join(tmp(), 'byid.tar');
  await save(src, [id.slice(7, 19)], file, 'oci');
  const dst = await OciStore.open(tmp());
  const loaded = await load(dst, (async function* () { yield zlib.gzipSync(fs.readFileSync(file)); })());
  assert.deepEqual(loaded, [{ ref: null, id, digest: (await src.resolve('base:1')).desc.digest }]);
  const rows = await dst.list();
  assert.deepEqual(rows.map((r) => [r.repository, r.tag]), [['<none>', '<none>']]);
});

async function expectUnchanged(dst: OciStore, archive: Buffer, re: RegExp, cls: abstract new (...a: never[]) => ImageError = ImageError): Promise<void> {
  const before = snapshot(dst.dir);
  await assert.rejects(load(dst, archive), (e: unknown) => e instanceof cls && re.test(e.message) && !e.message.includes('\n'), String(re));
  assert.deepEqual(snapshot(dst.dir), before, `the store is unchanged after ${re}`);
}

test('corrupt, truncated and mismatching archives are refused and leave the store exactly as it was', async () => {
  const src = await sourceStore();
  const dst = await OciStore.open(tmp());
  await load(dst, await (async () => { const f = path.join(tmp(), 'b.tar'); await save(src, ['base:1'], f); return f; })());
  const app = (await src.resolve('app:2'));
  const topLayer = app.manifest.layers[1]!.digest.slice(7);
  for (const format of ARCHIVE_FORMATS) {
    const file = path.join(tmp(), `${format}.tar`);
    await save(src, ['app:2'], file, format);
    const good = fs.readFileSync(file);
    // Truncated anywhere: a clear error, nothing added.
    for (const cut of [0.3, 0.6, 0.95]) await expectUnchanged(dst, good.subarray(0, Math.floor(good.length * cut)), /truncated or corrupt|missing|not in the archive/);
    const members = await readTar(good);
    if (format !== 'docker-classic') {
      // A layer blob whose bytes do not match its name.
      const bad = members.map((m) => (m.name === `blobs/sha256/${topLayer}` ? { ...m, body: Buffer.concat([m.body.subarray(0, -1), Buffer.from([m.body[m.body.length - 1]! ^ 1])]) } : m));
      await expectUnchanged(dst, await writeTar(bad), /digest mismatch for archive file blobs\/sha256\//, DigestMismatchError);
      // A blob the index needs is missing.
      await expectUnchanged(dst, await writeTar(members.filter((m) => m.name !== `blobs/sha256/${topLayer}`)), /not in the archive/);
    } else {
      // A config whose content does not match its <hex>.json name.
      const cfgName = members.find((m) => /^[0-9a-f]{64}\.json$/.test(m.name))!.name;
      const badCfg = members.map((m) => (m.name === cfgName ? { ...m, body: Buffer.from(m.body.toString().replace('riscv64', 'riscv65')) } : m));
      await expectUnchanged(dst, await writeTar(badCfg), /digest mismatch for app:2 config/, DigestMismatchError);
      // A layer that is not the one the config's diff_ids name (its name carries no digest: only diff_id catches it).
      const layerNames = members.filter((m) => m.name.endsWith('/layer.tar')).map((m) => m.name);
      const swapped = await writeTar(members.map((m) => (m.name === layerNames[1] ? { ...m, body: members.find((x) => x.name === layerNames[0])!.body } : m)));
      await expectUnchanged(dst, swapped, /digest mismatch for app:2 layer 1 \(diff_id\)/, DigestMismatchError);
    }
  }
  // A config whose diff_ids do not match its layers (OCI form: blobs all verify, the diff_id does not).
  const cfg = JSON.parse((await src.readBlob(app.configDigest)).toString()) as ImageConfig;
  cfg.rootfs.diff_ids.reverse();
  const cfgBytes = Buffer.from(JSON.stringify(cfg));
  const manifest = { ...app.manifest, config: { ...app.manifest.config, digest: sha256Digest(cfgBytes), size: cfgBytes.length } };
  const mBytes = Buffer.from(JSON.stringify(manifest));
  const file = path.join(tmp(), 'x.tar');
  await save(src, ['app:2'], file, 'oci');
  const ms = (await readTar(fs.readFileSync(file))).filter((m) => m.name !== 'index.json');
  ms.push({ name: `blobs/sha256/${sha256Digest(cfgBytes).slice(7)}`, type: 'file', body: cfgBytes });
  ms.push({ name: `blobs/sha256/${sha256Digest(mBytes).slice(7)}`, type: 'file', body: mBytes });
  ms.push({ name: 'index.json', type: 'file', body: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Digest(mBytes), size: mBytes.length, annotations: { 'org.opencontainers.image.ref.name': 'evil:1' } }] })) });
  await expectUnchanged(dst, await writeTar(ms), /digest mismatch for evil:1 layer 0 \(diff_id\)/, DigestMismatchError);
  // Not an archive at all.
  await expectUnchanged(dst, await writeTar([{ name: 'hello.txt', type: 'file', body: Buffer.from('hi') }]), /not an image archive/);
  await expectUnchanged(dst, Buffer.from('garbage that is not a tarball at all, not even close'.repeat(20)), /truncated or corrupt/);
  await expectUnchanged(dst, await writeTar([{ name: '../x', type: 'file', body: Buffer.from('x') }]), /refusing path/);
  assert.deepEqual((await dst.list()).map((r) => r.repository), ['base']);
});

test('classic archives whose layers are symlinks to other layers (older docker save) load', async () => {
  const src = await sourceStore();
  const file = path.join(tmp(), 'classic.tar');
  await save(src, ['app:2'], file, 'docker-classic');
  const members = await readTar(fs.readFileSync(file));
  const mj = members.find((m) => m.name === 'manifest.json')!;
  const entries = JSON.parse(mj.body.toString()) as { Layers: string[] }[];
  const first = entries[0]!.Layers[0]!;
  entries[0]!.Layers[0] = 'dup/layer.tar';
  const edited = members.map((m) => (m === mj ? { ...m, body: Buffer.from(JSON.stringify(entries)) } : m));
  edited.push({ name: 'dup/layer.tar', type: 'symlink', body: Buffer.alloc(0), linkname: `../${first}` });
  const dst = await OciStore.open(tmp());
  assert.deepEqual((await load(dst, await writeTar(edited))).map((l) => l.ref), ['app:2']);
  assert.equal((await dst.resolve('app:2')).configDigest, (await src.resolve('app:2')).configDigest);
  // A link out of the archive is refused.
  edited[edited.length - 1] = { name: 'dup/layer.tar', type: 'symlink', body: Buffer.alloc(0), linkname: '../../etc/passwd' };
  await expectUnchanged(dst, await writeTar(edited), /points outside the archive/);
});

test('save: unknown images and bad formats fail before anything is written', async () => {
  const src = await sourceStore();
  const dir = tmp();
  await assert.rejects(save(src, ['base:1', 'nope'], path.join(dir, 'o.tar')), /No such image: nope/);
  await assert.rejects(save(src, ['base:1'], path.join(dir, 'o.tar'), 'tgz' as 'oci'), /unknown format/);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('import: a root filesystem tarball becomes a one-layer linux/riscv64 image', async () => {
  const store = await OciStore.open(tmp());
  const rootfs = path.join(tmp(), 'rootfs.tar.gz');
  const tar = await writeTar([{ name: 'bin/', type: 'directory', body: Buffer.alloc(0) }, { name: 'bin/true', type: 'file', body: Buffer.from('t') }]);
  fs.writeFileSync(rootfs, zlib.gzipSync(tar));
  const r = await importTarball(store, rootfs, 'imported');
  assert.equal(r.ref, 'imported:latest');
  const img = await store.resolve('imported');
  assert.equal(img.config.architecture, 'riscv64');
  assert.equal(img.config.os, 'linux');
  assert.deepEqual(img.config.rootfs.diff_ids, [sha256Digest(tar)]);
  assert.equal(img.manifest.layers.length, 1);
  assert.equal(img.manifest.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const before = snapshot(store.dir);
  const badFile = path.join(tmp(), 'bad.tar');
  fs.writeFileSync(badFile, tar.subarray(0, 600));
  await assert.rejects(importTarball(store, badFile, 'bad'), /import: the tarball is truncated or corrupt/);
  fs.writeFileSync(badFile, await writeTar([{ name: '../../x', type: 'file', body: Buffer.from('x') }]));
  await assert.rejects(importTarball(store, badFile, 'bad'), /import: tar: refusing/);
  await assert.rejects(importTarball(store, rootfs, 'Bad'), /must be lowercase/);
  assert.deepEqual(snapshot(store.dir), before);
});
