/**
 * The process VM on the guest-memory interface (src/memory/guest-memory.ts):
 * a process's RAM may be any GuestMemory. Besides GuestRam, the process runs
 * on a `ReversedRam`, whose guest-physical page n lives at host page
 * (pages - 1 - n), so any access that takes a frame address for a host
 * offset (instead of asking `hostPage`, `read`, `write` or `zero`) lands on
 * another frame and is caught; and on a PooledRam on a frame pool, whose
 * untouched pages read the shared zero frame. A real static guest program
 * (tests/programs/procmem/pagecross.c) makes system calls whose buffers and
 * strings straddle page boundaries, maps a file MAP_SHARED, mremaps, forks
 * and execs. Runs under every engine (TSVM_JIT picks the hart's engine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { GuestRam } from '../../src/memory/guest-ram.js';
import { PooledRam } from '../../src/memory/pooled-ram.js';
import { FramePool } from '../../src/memory/frame-pool.js';
import { copyPaged, inRam, GuestMemoryError, MEM_NOT_RAM, type GuestMemory } from '../../src/memory/guest-memory.js';
import { GuestProcess } from '../../src/process/guest-process.js';
import { loadProgram } from '../../src/process/loader.js';
import { LinuxSyscalls } from '../../src/process/syscalls.js';
import { runProcess } from '../../src/process/run-process.js';
import { NodeHostOs } from '../../src/host/node-host-os.js';
import { compile } from '../helpers/toolchain.js';
import { Harness, NR, SCRATCH, tempDir } from './syscall-harness.js';

const PAGE = 4096;

/** A GuestRam whose guest-physical page n is host page (pages - 1 - n): correct only through the interface. */
class ReversedRam extends GuestRam {
  /** hostPage calls made (read, write and zero count theirs through it). */
  hostPageCalls = 0;

  override hostPage(gpa: number, _write: boolean): number {
    const off = gpa - this.base;
    if (!(off >= 0 && off < this.size)) return MEM_NOT_RAM;
    this.hostPageCalls++;
    return this.size - PAGE - (off - (off % PAGE));
  }

  override read(gpa: number, dst: Uint8Array): boolean { return copyPaged(this, gpa, dst, false); }

  override write(gpa: number, src: Uint8Array): boolean { return copyPaged(this, gpa, src, true); }

  override zero(gpa: number, len: number): boolean {
    if (!inRam(this, gpa, len)) return false;
    for (let o = 0; o < len;) {
      const a = gpa + o, take = Math.min(PAGE - (a % PAGE), len - o), host = this.hostPage(a, true) + (a % PAGE);
      this.u8.fill(0, host, host + take);
      this.written(host, take);
      o += take;
    }
    return true;
  }
}

/** A ReversedRam that cannot provide a page for writing once `fail` is set (a pool with nothing left to reclaim). */
class FailingRam extends ReversedRam {
  fail = false;

  override hostPage(gpa: number, write: boolean): number {
    if (this.fail && write) throw new GuestMemoryError(`proc: guest page 0x${gpa.toString(16)}: no frame (test)`);
    return super.hostPage(gpa, write);
  }
}

/** The memories every test runs on: a name and a factory for the process's RAM blocks. */
function memories(): [string, (bytes: number) => GuestMemory][] {
  const pool = new FramePool({ frames: 32768, shared: false });
  return [
    ['GuestRam', (bytes) => new GuestRam(bytes)],
    ['ReversedRam', (bytes) => new ReversedRam(bytes)],
    ['PooledRam', (bytes) => new PooledRam(pool, bytes, 0, 4, 'proc')],
  ];
}

test('syscall copies across a page boundary go through the process RAM\'s GuestMemory', () => {
  const rams: ReversedRam[] = [];
  const h = new Harness({ memory: (bytes) => { const r = new ReversedRam(bytes); rams.push(r); return r; } });
  const ram = rams[0]!;
  assert.equal(h.proc.ram, ram);
  const data = crypto.randomBytes(PAGE + 700);
  const at = SCRATCH + 3 * PAGE - 300;
  const before = ram.hostPageCalls;
  assert.ok(h.proc.mem.write(at, data));
  assert.ok(ram.hostPageCalls > before, 'the copy asked the memory for its pages');
  // The bytes are where the interface puts them, not at the frame address taken as a host offset.
  const gpa = h.proc.mem.physAddr(at, 0);
  const viaMemory = new Uint8Array(300);
  assert.ok(ram.read(gpa, viaMemory));
  assert.deepEqual(viaMemory, new Uint8Array(data.subarray(0, 300)));
  assert.notDeepEqual(ram.u8.slice(gpa, gpa + 300), viaMemory, 'ReversedRam moved the page');
  assert.deepEqual(h.read(at, data.length), new Uint8Array(data));

  // A path split across two pages, file I/O from and into split buffers.
  const dir = tempDir('procmem');
  const name = new TextEncoder().encode(`${dir}/split.dat\0`);
  const pathAt = SCRATCH + 6 * PAGE - 7;
  assert.ok(h.proc.mem.write(pathAt, name));
  assert.equal(h.proc.mem.readCString(pathAt), `${dir}/split.dat`);
  const fd = h.call(NR.openat, -100, pathAt, 0o1102 /* O_CREAT|O_RDWR|O_TRUNC */, 0o644);
  assert.ok(fd >= 0, `openat: ${fd}`);
  assert.equal(h.call(NR.write, fd, at, data.length), data.length);
  assert.deepEqual(fs.readFileSync(`${dir}/split.dat`), data);
  const back = SCRATCH + 9 * PAGE - 5;
  assert.equal(h.call(NR.pread64, fd, back, data.length, 0), data.length);
  assert.deepEqual(h.read(back, data.length), new Uint8Array(data));
  h.call(NR.close, fd);

  // fork's copy through the interface: the child sees the parent's bytes, in another RAM block.
  const root = h.sys.kernel.root.threads[0]!;
  const tid = h.call(220 /* clone */, 17 /* SIGCHLD */, 0, 0, 0, 0);
  assert.ok(tid > 0, `clone: ${tid}`);
  const child = h.sys.kernel.task(tid)!;
  assert.equal(child.proc.ram, rams[1], 'the child has a RAM block of its own');
  assert.deepEqual(child.mem.read(at, data.length), new Uint8Array(data));
  assert.ok(child.mem.write(at, new Uint8Array(10)));
  assert.deepEqual(root.mem.read(at, 10), new Uint8Array(data.subarray(0, 10)), 'the parent keeps its bytes');
});

const EXPECTED = [
  'open split path ok', 'write 3 pages ok', 'pread 3 pages ok', 'getcwd split ok', 'pipe ok', 'pipe write ok',
  'pipe read ok', 'mmap shared ok', 'pwrite into mapping ok', 'munmap shared ok', 'write-back ok', 'mremap ok',
  'fork child ok', 'fork wait ok', 'fork parent copy ok', 'exec argv ok', 'exec envp ok', 'exec wait ok', 'all ok',
].join('\n') + '\n';

/** A host whose stdout is kept (the guest's fd 1) instead of written. */
class CapturingOs extends NodeHostOs {
  readonly out: Buffer[] = [];

  override write(fd: number, buf: Uint8Array, position: number | null): number {
    if (fd !== 1) return super.write(fd, buf, position);
    this.out.push(Buffer.from(buf));
    return buf.length;
  }
}

/** Runs a static guest program in this process on RAM made by `memory`; returns its status and stdout. */
function runGuest(program: string, args: string[], memory: (bytes: number) => GuestMemory,
  afterLoad?: (proc: GuestProcess) => void): { status: number; out: string; log: string[] } {
  const data = fs.readFileSync(program);
  const proc = new GuestProcess({ memoryBytes: 64 << 20, trace: false, memory }, 31337);
  const host = new CapturingOs(), log: string[] = [];
  loadProgram(proc, {
    readFile: (p) => { try { return fs.readFileSync(p); } catch { return null; } },
    randomBytes: (b) => { crypto.randomFillSync(b); }, uid: 0, gid: 0,
  }, program, data, [program, ...args], ['PATH=/usr/bin:/bin']);
  afterLoad?.(proc);
  const sys = new LinuxSyscalls(proc, host, (l) => log.push(l));
  const status = runProcess(proc, sys, (l) => log.push(l));
  return { status, out: Buffer.concat(host.out).toString('utf8'), log };
}

test('a static program\'s page-crossing syscalls, shared mappings, fork and exec on GuestRam, ReversedRam and PooledRam', () => {
  const program = compile({ sources: ['procmem/pagecross.c'], linkage: 'static' });
  for (const [name, memory] of memories()) {
    const dir = tempDir(`pagecross-${name}`);
    const r = runGuest(program, [dir], memory);
    assert.equal(r.out, EXPECTED, `${name}: ${r.log.join('; ')}`);
    assert.equal(r.status, 0, name);
    assert.equal(fs.statSync(`${dir}/split-name.dat`).size, 2 * PAGE + 1000, name);
  }
});

test('a PooledRam process takes a frame only for a page it writes; untouched pages read the zero frame', () => {
  const pool = new FramePool({ frames: 4096, shared: false });
  const rams: PooledRam[] = [];
  const h = new Harness({ memory: (bytes) => { const r = new PooledRam(pool, bytes, 0, 4, 'proc'); rams.push(r); return r; } });
  const ram = rams[0]!;
  const taken = ram.p2m.stats().pages_private;
  assert.deepEqual(h.read(SCRATCH + 5 * PAGE, 16), new Uint8Array(16), 'an untouched page reads as zero');
  assert.equal(ram.p2m.stats().pages_private, taken, 'reading it took no frame');
  assert.ok(h.proc.mem.write(SCRATCH + 2 * PAGE - 8, new Uint8Array(16).fill(7)));
  assert.equal(ram.p2m.stats().pages_private, taken + 2, 'a write across a boundary takes two frames');
  assert.deepEqual(h.read(SCRATCH + 2 * PAGE - 8, 16), new Uint8Array(16).fill(7));
});

test('a page the RAM cannot provide fails a syscall copy with EFAULT and fork with ENOMEM, and kills a running process with SIGKILL, not the host', () => {
  const rams: FailingRam[] = [];
  let failNew = false;
  const h = new Harness({ memory: (bytes) => { const r = new FailingRam(bytes); r.fail = failNew; rams.push(r); return r; } });
  const zero = h.call(NR.openat, -100, h.str('/dev/zero'), 0, 0), buf = h.alloc(64);
  assert.ok(zero >= 0, `openat: ${zero}`);
  rams[0]!.fail = true;
  assert.equal(h.call(NR.read, zero, buf, 64), -14 /* EFAULT */);
  assert.equal(h.proc.mem.write(buf, new Uint8Array(4)), false);
  rams[0]!.fail = false;
  assert.equal(h.call(NR.read, zero, buf, 64), 64);
  failNew = true; // the child's RAM cannot provide pages: fork fails with ENOMEM, the parent goes on
  assert.equal(h.call(220 /* clone */, 17 /* SIGCHLD */, 0, 0, 0, 0), -12 /* ENOMEM */);
  assert.equal(h.sys.kernel.tasks.length, 1);
  assert.equal(h.call(NR.read, zero, buf, 64), 64);

  const program = compile({ sources: ['procmem/pagecross.c'], linkage: 'static' });
  const r = runGuest(program, [tempDir('pagecross-oom')], (bytes) => new FailingRam(bytes), (proc) => { (proc.ram as FailingRam).fail = true; });
  assert.equal(r.status, 128 + 9, r.log.join('; '));
  assert.equal(r.out, '');
  assert.match(r.log.join('\n'), /^tsvm: guest \(pid 31337\) killed: proc: guest page 0x[0-9a-f]+: no frame \(test\)$/m);
});
