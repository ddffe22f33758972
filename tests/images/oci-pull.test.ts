/**
 * `tsvm pull` from the command line (src/images/oci/pull.ts): busybox built
 * from Debian's busybox-static runs under the process VM, a second pull is
 * "up to date", a tsvm image pushed by skopeo to Debian's docker-registry on
 * loopback comes back by its HOST:PORT name with the same image ID, and a
 * name that can be neither built nor fetched fails with exit 125 and one
 * line, the store unchanged.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDockerRegistry } from '../helpers/docker-registry.js';
import { OciStore } from '../../src/images/oci/layout.js';
import { unpackImage } from '../../src/images/oci/layer-apply.js';

const TSVM = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-oci-pull-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));
const store = path.join(work, 'store');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [TSVM, ...args], { env: { ...process.env, TSVM_DATA: store }, encoding: 'utf8', timeout: 600_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function ok(...args: string[]): string {
  const r = run(args);
  assert.equal(r.status, 0, `tsvm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const indexJson = (): string => fs.readFileSync(path.join(store, 'index.json'), 'utf8');

test('pull busybox builds an image that runs; pulling again is up to date', async () => {
  const out = ok('pull', 'busybox');
  assert.match(out, /^Digest: sha256:[0-9a-f]{64}\nStatus: Downloaded newer image for busybox:latest\nbusybox:latest\n$/);
  const again = ok('pull', 'busybox:latest');
  assert.match(again, /Status: Image is up to date for busybox:latest/);
  assert.match(ok('images'), /^busybox\s+latest\s+[0-9a-f]{12}\s/m);
  const root = path.join(work, 'bb-root');
  await unpackImage(await OciStore.open(store), 'busybox', root);
  const r = spawnSync(process.execPath, [TSVM, 'exec', '--root', root, '/bin/sh', '-c', 'echo hello from $(basename $0); ls /bin/sh'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello from sh\n/bin/sh\n');
  assert.equal(ok('save', '--format', 'oci', '-o', path.join(work, 'bb.tar'), 'busybox'), '');
  assert.ok(fs.statSync(path.join(work, 'bb.tar')).size > 500_000, 'the saved archive holds busybox');
});

test('a name tsvm neither builds nor can fetch exits 125 with one line, the store unchanged', () => {
  const before = indexJson();
  for (const [name, re] of [
    ['ubuntu:latest', /no such image: tsvm builds busybox and debian .*HOST\[:PORT\]\/NAME/],
    ['busybox:1.36', /tsvm builds busybox as busybox:latest only/],
    ['Not_A_Name', /invalid reference format/],
    ['127.0.0.1:1/nothing:here', /127\.0\.0\.1:1/],
  ] as const) {
    const r = run(['pull', name]);
    assert.equal(r.status, 125, `pull ${name}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.equal(indexJson(), before);
});

test('a tsvm image pushed to docker-registry comes back by its registry name', async () => {
  const reg = await startDockerRegistry(work, 'reg', path.join(work, 'reg-storage'));
  try {
    const layout = path.join(work, 'layout');
    execFileSync('skopeo', ['copy', '--quiet', `oci-archive:${path.join(work, 'bb.tar')}:busybox:latest`, `oci:${layout}:bb`]);
    execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:bb`, `docker://${reg.host}/tsvm/busybox:1`]);
    const id = ok('images', '-q', 'busybox').trim();
    const name = `${reg.host}/tsvm/busybox:1`;
    const out = ok('pull', name);
    assert.match(out, new RegExp(`Status: Downloaded newer image for ${name.replace(/[.]/g, '\\.')}\n`));
    assert.equal(ok('images', '-q', `${reg.host}/tsvm/busybox`).trim(), id, 'the same config, so the same image ID');
  } finally {
    await reg.stop();
  }
});
