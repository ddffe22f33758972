/**
 * A second process writing to an image store, for tests/unit/oci-store.test.ts:
 *   setrefs DIR PREFIX N   add N one-layer images named PREFIX-i (each its own blobs), print "done"
 *   slowput DIR            start a putBlob whose data never ends, print "writing" (to be killed)
 *   holdlock DIR           take the store's lock, print "locked", and wait (to be killed)
 *   putonly DIR            store one blob without naming it, print "put", and wait (to be killed)
 *   loop DIR PREFIX        add images forever, printing "added i" after each (to be killed)
 */
import * as path from 'node:path';
import { sha256Digest } from '../../src/images/oci/digest.js';
import { OciStore } from '../../src/images/oci/layout.js';
import { withLock } from '../../src/images/oci/lock.js';
import { MEDIA_TYPE_LAYER_TAR, type ImageConfig } from '../../src/images/oci/types.js';

/** Add a one-layer image whose layer bytes are derived from `name`. */
export async function addTestImage(store: OciStore, name: string): Promise<void> {
  const layer = Buffer.alloc(1024, 0);
  layer.write(name);
  const digest = sha256Digest(layer);
  await store.putBlob({ digest, size: layer.length, mediaType: MEDIA_TYPE_LAYER_TAR }, layer);
  const config: ImageConfig = { architecture: 'riscv64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digest] } };
  await store.addImage(name, { config, layers: [{ mediaType: MEDIA_TYPE_LAYER_TAR, digest, size: layer.length }] });
}

const hang = (): Promise<never> => new Promise(() => { setInterval(() => undefined, 1000); });

async function main(): Promise<void> {
  const [mode, dir, prefix, n] = process.argv.slice(2);
  if (mode === undefined || dir === undefined) return;
  const store = await OciStore.open(dir);
  if (mode === 'setrefs') {
    for (let i = 0; i < Number(n); i++) await addTestImage(store, `${prefix}-${i}`);
    process.stdout.write('done\n');
  } else if (mode === 'loop') {
    for (let i = 0; ; i++) {
      await addTestImage(store, `${prefix}-${i}`);
      process.stdout.write(`added ${i}\n`);
    }
  } else if (mode === 'slowput') {
    const chunk = Buffer.alloc(4096, 7);
    const data = (async function* () {
      yield chunk;
      process.stdout.write('writing\n');
      await hang();
    })();
    await store.putBlob({ digest: sha256Digest(chunk), size: 8192 }, data);
  } else if (mode === 'putonly') {
    const data = Buffer.from('in flight');
    await store.putBlob({ digest: sha256Digest(data), size: data.length }, data);
    process.stdout.write('put\n');
    await hang();
  } else if (mode === 'holdlock') {
    await withLock(path.join(store.dir, 'index.json.lock'), async () => {
      process.stdout.write('locked\n');
      await hang();
    });
  }
}

if (process.argv[1]?.endsWith('oci-store-child.js')) await main();
