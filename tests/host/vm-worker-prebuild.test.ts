/**
 * A VM's worker (src/host/vm-worker.ts) with a VM built ahead of time that
 * the next start does not want: the dropped VM's frames go back to the
 * host's pool. The real worker and the real default Debian guest, started
 * paused (built, no instruction run), so the pool holds exactly what the
 * build loaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { HostMemory } from '../../src/host/host-memory.js';
import { parseRunArgs } from '../../src/vmm/qemu-config.js';
import { ensureDefaultGuest } from '../../src/images/default-guest.js';
import type { FromWorker, ToWorker } from '../../src/host/vm-worker-protocol.js';
import type { VmConfig } from '../../src/vmm/vm-config.js';

const WORKER = path.resolve('dist/src/host/vm-worker.js');

/** Starts a worker, optionally has it build `prebuild` ahead of time, then starts `config` paused; returns the pool's frames in use (pages, control). */
async function framesAfterStart(config: VmConfig, prebuild: VmConfig | null): Promise<[number, number]> {
  const m = new HostMemory(1024 * 1024 * 1024, null);
  const w = new Worker(WORKER);
  try {
    const messages: FromWorker[] = [];
    const next = (type: FromWorker['type']): Promise<FromWorker> => new Promise((resolve, reject) => {
      const seen = messages.find((x) => x.type === type || x.type === 'failed');
      if (seen) { resolve(seen); return; }
      const on = (x: FromWorker): void => { if (x.type === type || x.type === 'failed') { w.off('message', on); resolve(x); } };
      w.on('message', on);
      w.once('error', reject);
    });
    w.on('message', (x: FromWorker) => messages.push(x));
    await next('ready');
    if (prebuild !== null) w.postMessage({ type: 'prebuild', config: prebuild, files: [], pool: m.handles() } satisfies ToWorker);
    w.postMessage({ type: 'start', name: 'b', config, files: [], requestedAt: 0, paused: true, pool: m.handles() } satisfies ToWorker);
    const started = await next('started');
    assert.equal(started.type, 'started', JSON.stringify(started));
    if (started.type === 'started') assert.equal(started.prebuilt, false, 'the prebuilt VM had another configuration');
    const s = m.stats().pool;
    return [s.frames_used, s.frames_control];
  } finally {
    await w.terminate();
    m.close();
  }
}

test('a VM built ahead of time and dropped for another configuration leaves no frames in the pool', { timeout: 300_000 }, async () => {
  const g = await ensureDefaultGuest({ progress: false });
  const cfg = (mem: string): VmConfig => parseRunArgs(['-m', mem, '-kernel', g.kernel, '-initrd', g.initrd]);
  const alone = await framesAfterStart(cfg('256M'), null);
  assert.ok(alone[0] > 1000, `the paused VM holds its kernel and initrd (${alone[0]} frames)`);
  const afterDrop = await framesAfterStart(cfg('256M'), cfg('512M'));
  assert.deepEqual(afterDrop, alone, 'pages and control frames: only the started VM\'s');
});
