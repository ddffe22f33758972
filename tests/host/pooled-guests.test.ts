/**
 * Two Debian guests on one frame pool (src/memory/pooled-ram.ts): guest RAM
 * goes through each VM's p2m table, so the TLB fill, the page walker, virtio
 * DMA and the loaders all run on pool frames. Both VMs run in this process,
 * taking turns on the event loop; between their slices the sharing scanner
 * merges identical pages within and across the two guests.
 *
 * Checked: both boot to a shell; the scanner merges (pages_sharing grows,
 * fewer frames in use than pages touched); data written by each guest
 * (identical files in both, then changed differently, so merged pages are
 * copied on write) reads back as that guest wrote it; a guest exits cleanly
 * and its frames return to the pool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramePool } from '../../src/memory/frame-pool.js';
import { PageSharing } from '../../src/memory/page-sharing.js';
import { PooledRam } from '../../src/memory/pooled-ram.js';
import { buildVm } from '../../src/vmm/vm-builder.js';
import { parseRunArgs } from '../../src/vmm/qemu-config.js';
import { nodeVmServices } from '../../src/host/node-vm-services.js';
import { ensureDefaultGuest } from '../../src/images/default-guest.js';
import { MemConsole } from '../helpers/mem-console.js';

const PROMPT = '~ # ';
const BOOT_MS = 300_000;
const MiB = 1024 * 1024;

test('two Debian guests on one pool: both boot, pages merge across them, each reads back only its own data', { timeout: 2 * BOOT_MS }, async (t) => {
  await ensureDefaultGuest({ progress: false });
  const pool = new FramePool({ frames: (640 * MiB) / 4096 });
  const sharing = new PageSharing(pool);
  const rams: PooledRam[] = [];
  const guests = await Promise.all(['a', 'b'].map(async (name) => {
    const console = new MemConsole();
    const built = await buildVm(parseRunArgs(['-m', '256M']), {
      ...nodeVmServices(), console,
      guestMemory: (bytes, base, slots) => {
        const ram = new PooledRam(pool, bytes, base, slots, name);
        sharing.register(ram.p2m, true);
        ram.onRelease = () => sharing.unregister(ram.p2m);
        rams.push(ram);
        return ram;
      },
    });
    return { name, console, built, done: built.run() };
  }));
  // The scanner runs between the VMs' slices, on this thread (a timer turn: no hart is inside guest code).
  const scanner = setInterval(() => sharing.scan(2000), 20);
  try {
    await Promise.all(guests.map((g) => g.console.expect(PROMPT, BOOT_MS)));
    for (const g of guests) await g.console.run('dmesg -n 1', PROMPT);
    // Identical files in both guests (their pages merge), then each changes its own copy differently.
    for (const g of guests) await g.console.run('dd if=/dev/zero bs=1M count=4 2>/dev/null | tr "\\0" "x" > /tmp/f; sync', PROMPT);
    const t0 = Date.now();
    while (sharing.stats().pages_sharing < 1000 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 200));
    const st = sharing.stats();
    assert.ok(st.pages_sharing >= 1000, `pages merged across and within the guests: ${JSON.stringify(st)}`);
    const touched = rams.reduce((n, r) => { const s = r.p2m.stats(); return n + s.pages_private + s.pages_shared + s.pages_zero; }, 0);
    assert.ok(pool.framesUsed < touched, `sharing saves frames: ${pool.framesUsed} frames in use for ${touched} touched pages`);
    t.diagnostic(`after boot: ${touched} pages touched, ${pool.framesUsed} frames in use; sharing ${JSON.stringify(st)}; ` +
      rams.map((r) => `${r.p2m.name} ${JSON.stringify(r.p2m.stats())}`).join('; '));
    for (const [i, g] of guests.entries()) {
      await g.console.run(`printf 'guest-${g.name}-%0${1000 + i}d' 7 | dd of=/tmp/f bs=1 seek=100000 conv=notrunc 2>/dev/null`, PROMPT);
    }
    for (const g of guests) {
      const out = await g.console.run('dd if=/tmp/f bs=1 skip=100000 count=20 2>/dev/null; echo; md5sum /tmp/f | cut -c1-8', PROMPT);
      assert.match(out, new RegExp(`guest-${g.name}-0000`), `${g.name} reads its own write`);
      assert.doesNotMatch(out, new RegExp(`guest-${g.name === 'a' ? 'b' : 'a'}`), `${g.name} never sees the other guest's write`);
    }
    const [ma, mb] = await Promise.all(guests.map((g) => g.console.run('md5sum /tmp/f | cut -c1-8', PROMPT)));
    assert.notEqual(ma!.trim(), mb!.trim(), 'the two files now differ');
    for (const g of guests) g.console.send('poweroff -f\n');
    const results = await Promise.all(guests.map((g) => g.done));
    for (const r of results) assert.equal(r.reason, 'poweroff');
    assert.equal(pool.framesUsed, 0, 'every frame went back to the pool when the VMs ended');
  } finally {
    clearInterval(scanner);
    for (const g of guests) g.built.vm.stop();
  }
});
