/**
 * ESX's memory experiments (Waldspurger, OSDI 2002) on tsvm's memory core,
 * with Debian's kernel: `npm run bench -- --only memory`.
 *
 * Sharing: 1, 2, 4 and 8 identical default guests of 256 MiB each on one
 * frame pool, idle at a shell after boot, with the page-sharing scanner
 * running. Reported over time and by number of VMs: the pages the guests
 * touched, the pool frames in use, and the saving — split into pages merged
 * into other non-zero pages (KSM's pages_sharing) and pages merged into the
 * zero frame.
 *
 * The guests run in this process, taking turns on its event loop, with the
 * scanner on the same thread between their slices (the many-VM host runs
 * the same core with one VM per worker thread).
 */
import fs from 'node:fs';
import path from 'node:path';
import { FramePool } from '../src/memory/frame-pool.js';
import { PageSharing } from '../src/memory/page-sharing.js';
import { PooledRam } from '../src/memory/pooled-ram.js';
import { buildVm } from '../src/vmm/vm-builder.js';
import { parseRunArgs } from '../src/vmm/qemu-config.js';
import { nodeVmServices } from '../src/host/node-vm-services.js';
import { ensureDefaultGuest } from '../src/images/default-guest.js';
import { MemConsole } from '../tests/helpers/mem-console.js';

const PROMPT = '~ # ';
const MiB = 1024 * 1024;
/** Pages the scanner visits per round, and the rounds' period: 200k pages/s, a full pass over 8 guests in under 3 s. */
const SCAN_BUDGET = 2000, SCAN_MS = 10;

/** One sample of the pool while the guests run. */
export interface SharingSample { t: number; touched: number; framesUsed: number; pagesSharing: number; pagesZero: number }

/** The sharing experiment for one number of guests. */
export interface SharingRun { vms: number; bootSeconds: number; samples: SharingSample[]; final: SharingSample }

/** Boots `n` default guests of 256 MiB on one pool with the scanner, samples the pool every second until `idleSeconds` after the last prompt. */
async function sharingRun(n: number, idleSeconds: number): Promise<SharingRun> {
  const pool = new FramePool({ frames: (n * 256 * MiB) / 4096 + 4096 });
  const sharing = new PageSharing(pool);
  const rams: PooledRam[] = [];
  const t0 = performance.now();
  const guests = await Promise.all(Array.from({ length: n }, async (_, k) => {
    const console = new MemConsole();
    const built = await buildVm(parseRunArgs(['-m', '256M']), {
      ...nodeVmServices(), console,
      guestMemory: (bytes, base, slots) => {
        const ram = new PooledRam(pool, bytes, base, slots, `vm${k}`);
        sharing.register(ram.p2m, true);
        ram.onRelease = () => sharing.unregister(ram.p2m);
        rams.push(ram);
        return ram;
      },
    });
    return { console, built, done: built.run() };
  }));
  const samples: SharingSample[] = [];
  const sample = (): SharingSample => {
    let touched = 0;
    for (const r of rams) { const s = r.p2m.stats(); touched += s.pages_private + s.pages_shared + s.pages_zero; }
    const st = sharing.stats();
    return { t: (performance.now() - t0) / 1000, touched, framesUsed: pool.framesUsed, pagesSharing: st.pages_sharing, pagesZero: st.pages_zero };
  };
  const scanner = setInterval(() => sharing.scan(SCAN_BUDGET), SCAN_MS);
  const sampler = setInterval(() => samples.push(sample()), 1000);
  try {
    await Promise.all(guests.map((g) => g.console.expect(PROMPT, 20 * 60_000)));
    const bootSeconds = (performance.now() - t0) / 1000;
    for (const g of guests) g.console.send('dmesg -n 1\n');
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const final = sample();
    samples.push(final);
    return { vms: n, bootSeconds, samples, final };
  } finally {
    clearInterval(scanner);
    clearInterval(sampler);
    for (const g of guests) { g.console.send('poweroff -f\n'); }
    await Promise.race([Promise.allSettled(guests.map((g) => g.done)), new Promise((r) => setTimeout(r, 30_000))]);
    for (const g of guests) g.built.vm.stop();
  }
}

/** The memory report. */
export interface MemoryReport { sharing: SharingRun[] }

/** Runs the memory experiments (`quick`: 1 and 2 guests, a short idle). */
export async function benchMemory(quick: boolean): Promise<MemoryReport> {
  await ensureDefaultGuest({ progress: false });
  const sharing: SharingRun[] = [];
  for (const n of quick ? [1, 2] : [1, 2, 4, 8]) {
    process.stderr.write(`bench: memory: sharing with ${n} guest${n > 1 ? 's' : ''}...\n`);
    sharing.push(await sharingRun(n, quick ? 10 : 60));
  }
  return { sharing };
}

const pct = (x: number, of: number): string => (of > 0 ? `${((100 * x) / of).toFixed(1)}%` : 'n/a');
const mib = (pages: number): string => `${((pages * 4096) / MiB).toFixed(0)} MiB`;

/** The sharing table, by number of guests. */
export function memoryTable(r: MemoryReport): string {
  const rows = r.sharing.map((s) => {
    const f = s.final, saved = f.touched - f.framesUsed;
    return `| ${s.vms} | ${s.bootSeconds.toFixed(0)} s | ${mib(f.touched)} | ${mib(f.framesUsed)} | ${mib(saved)} (${pct(saved, f.touched)}) | ${mib(f.pagesSharing)} (${pct(f.pagesSharing, f.touched)}) | ${mib(f.pagesZero)} (${pct(f.pagesZero, f.touched)}) |`;
  });
  return '| guests of 256 MiB | all at the prompt after | pages touched | pool frames in use | saved | of it, merged non-zero pages | of it, zero pages |\n' +
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n' + rows.join('\n') +
    `\n\nIdle ${r.sharing[0] ? (r.sharing[0].final.t - r.sharing[0].bootSeconds).toFixed(0) : '?'} s at the shell after the last prompt; scanner ${SCAN_BUDGET} pages every ${SCAN_MS} ms. ` +
    'Saved = pages touched − frames in use. ESX reports about 67% of VM memory shareable at 10 identical VMs.';
}

/** An SVG line chart of the saving over time, one line per number of guests. */
export function sharingSvg(r: MemoryReport): string {
  const W = 640, H = 320, L = 50, B = 40, T = 20, R = 120;
  const tMax = Math.max(1, ...r.sharing.flatMap((s) => s.samples.map((x) => x.t)));
  const x = (t: number): number => L + ((W - L - R) * t) / tMax;
  const y = (p: number): number => H - B - ((H - B - T) * p) / 100;
  const colors = ['#1b6ca8', '#d1495b', '#edae49', '#00798c', '#6a4c93'];
  const lines = r.sharing.map((s, k) => {
    const pts = s.samples.filter((p) => p.touched > 0).map((p) => `${x(p.t).toFixed(1)},${y((100 * (p.touched - p.framesUsed)) / p.touched).toFixed(1)}`).join(' ');
    const last = s.samples[s.samples.length - 1];
    const ly = last && last.touched > 0 ? y((100 * (last.touched - last.framesUsed)) / last.touched) : y(0);
    return `<polyline fill="none" stroke="${colors[k % colors.length]}" stroke-width="2" points="${pts}"/>` +
      `<text x="${W - R + 6}" y="${ly.toFixed(1)}" font-size="12" fill="${colors[k % colors.length]}">${s.vms} VM${s.vms > 1 ? 's' : ''}</text>`;
  }).join('\n');
  const grid = [0, 25, 50, 75, 100].map((p) => `<line x1="${L}" x2="${W - R}" y1="${y(p)}" y2="${y(p)}" stroke="#ddd"/><text x="${L - 6}" y="${y(p) + 4}" font-size="11" text-anchor="end">${p}%</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">\n` +
    `<rect width="${W}" height="${H}" fill="white"/>${grid}\n` +
    `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/><text x="${(L + W - R) / 2}" y="${H - 8}" font-size="12" text-anchor="middle">seconds since start (${tMax.toFixed(0)} s)</text>\n` +
    `<text x="14" y="${T + (H - B - T) / 2}" font-size="12" transform="rotate(-90 14 ${T + (H - B - T) / 2})" text-anchor="middle">memory saved by sharing</text>\n${lines}\n</svg>\n`;
}

/** Writes the charts under docs/ (memory-sharing.svg). */
export function writeMemoryCharts(r: MemoryReport, docsDir: string): string[] {
  const f = path.join(docsDir, 'memory-sharing.svg');
  fs.writeFileSync(f, sharingSvg(r));
  return [f];
}
