/**
 * Unit tests of mremap moving mappings, MAP_SHARED file mappings kept
 * coherent with writes to the file, and queued real-time signals, driven
 * through LinuxSyscalls.handle() like syscalls.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Harness, tempDir, AT_FDCWD, O_RDONLY, O_RDWR } from './syscall-harness.js';

const PG = 4096;
const EAGAIN = 11, ENOMEM = 12, EACCES = 13, EINVAL = 22;
/** Syscall numbers (include/uapi/asm-generic/unistd.h). */
const SYS = {
  ftruncate: 46, openat: 56, pread64: 67, pwrite64: 68, kill: 129, tgkill: 131, rt_sigaction: 134,
  rt_sigprocmask: 135, rt_sigpending: 136, rt_sigtimedwait: 137, rt_sigqueueinfo: 138, rt_sigreturn: 139,
  munmap: 215, mremap: 216, mmap: 222, mprotect: 226, msync: 227,
} as const;
const PROT_R = 1, PROT_RW = 3, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANON = 0x20, MAP_FIXED_NOREPLACE = 0x100000;
const MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2, MREMAP_DONTUNMAP = 4;
const PID = 4242, SIGRT1 = 35, SI_QUEUE = -1, SI_TKILL = -6;

const anon = (h: Harness, len: number, prot = PROT_RW): number => h.call(SYS.mmap, 0, len, prot, MAP_PRIVATE | MAP_ANON, -1, 0);
const fill = (h: Harness, at: number, len: number, v: number): void => { h.proc.mem.write(at, new Uint8Array(len).fill(v)); };

test('mremap grows by moving when the next pages are in use, and honours MREMAP_FIXED and MREMAP_DONTUNMAP', () => {
  const h = new Harness();
  const a = anon(h, 2 * PG);
  fill(h, a, 2 * PG, 0x5a);
  assert.equal(h.call(SYS.mmap, a + 2 * PG, PG, PROT_R, MAP_PRIVATE | MAP_ANON | MAP_FIXED_NOREPLACE, -1, 0), a + 2 * PG);
  assert.equal(h.call(SYS.mremap, a, 2 * PG, 8 * PG, 0), -ENOMEM);
  const b = h.call(SYS.mremap, a, 2 * PG, 8 * PG, MREMAP_MAYMOVE);
  assert.ok(b > 0 && b !== a);
  assert.deepEqual(h.read(b, 2 * PG), new Uint8Array(2 * PG).fill(0x5a));
  assert.deepEqual(h.read(b + 2 * PG, 6 * PG), new Uint8Array(6 * PG));
  assert.equal(h.proc.mem.protAt(a), -1);
  assert.equal(h.proc.mem.protAt(a + 2 * PG), PROT_R); // the neighbour is untouched

  // MREMAP_FIXED: shrink and move onto an existing mapping, replacing it.
  const t = anon(h, 4 * PG);
  fill(h, t, 4 * PG, 0x11);
  assert.equal(h.call(SYS.mremap, b, 8 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, t + PG), t + PG);
  assert.deepEqual(h.read(t + PG, 2 * PG), new Uint8Array(2 * PG).fill(0x5a));
  assert.deepEqual(h.read(t, PG), new Uint8Array(PG).fill(0x11));
  assert.equal(h.proc.mem.protAt(b), -1);
  assert.equal(h.call(SYS.mremap, t + PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, t + 2 * PG), -EINVAL); // overlap
  assert.equal(h.call(SYS.mremap, t + PG, 2 * PG, 2 * PG, MREMAP_FIXED, 0x200000), -EINVAL); // FIXED needs MAYMOVE

  // MREMAP_DONTUNMAP: the old range stays mapped and reads as zero.
  assert.equal(h.call(SYS.mremap, t + PG, 2 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), -EINVAL);
  const d = h.call(SYS.mremap, t + PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
  assert.ok(d > 0 && d !== t + PG);
  assert.deepEqual(h.read(d, 2 * PG), new Uint8Array(2 * PG).fill(0x5a));
  assert.deepEqual(h.read(t + PG, 2 * PG), new Uint8Array(2 * PG));
  assert.equal(h.call(SYS.mremap, 0x7000_0000, PG, 2 * PG, MREMAP_MAYMOVE), -14); // EFAULT: not mapped
});

test('MAP_SHARED file mappings see write/pwrite and truncation, and move with mremap', () => {
  const dir = tempDir('shm');
  const file = path.join(dir, 'f.dat');
  fs.writeFileSync(file, Buffer.concat([Buffer.alloc(PG, 'a'), Buffer.alloc(PG, 'b'), Buffer.alloc(PG, 'c')]));
  const h = new Harness();
  const fd = h.call(SYS.openat, AT_FDCWD, h.str(file), O_RDWR, 0);
  assert.ok(fd >= 0);
  const shr = h.call(SYS.mmap, 0, 2 * PG, PROT_RW, MAP_SHARED, fd, 0);
  const ro = h.call(SYS.mmap, 0, PG, PROT_R, MAP_SHARED, fd, PG);
  const priv = h.call(SYS.mmap, 0, PG, PROT_R, MAP_PRIVATE, fd, PG);
  assert.ok(shr > 0 && ro > 0 && priv > 0);
  assert.equal(h.call(SYS.pwrite64, fd, h.str('XYZ'), 3, PG + 4), 3);
  assert.equal(h.text(ro + 4, 3), 'XYZ');
  assert.equal(h.text(shr + PG + 4, 3), 'XYZ');
  assert.equal(h.text(priv + 4, 3), 'bbb'); // a private copy keeps the old bytes
  // A change made through one mapping reaches the file and the other mapping on msync.
  h.proc.mem.write(shr + PG + 8, new TextEncoder().encode('M'));
  assert.equal(h.call(SYS.msync, shr, 2 * PG, 4 /* MS_SYNC */), 0);
  assert.equal(fs.readFileSync(file).subarray(PG + 8, PG + 9).toString(), 'M');
  assert.equal(h.text(ro + 8, 1), 'M');
  // Growing a shared mapping by moving it maps more of the file.
  assert.equal(h.call(SYS.mmap, shr + 2 * PG, PG, PROT_R, MAP_PRIVATE | MAP_ANON | MAP_FIXED_NOREPLACE, -1, 0), shr + 2 * PG);
  const big = h.call(SYS.mremap, shr, 2 * PG, 3 * PG, MREMAP_MAYMOVE);
  assert.ok(big > 0 && big !== shr);
  assert.equal(h.text(big + 2 * PG, 2), 'cc');
  assert.equal(h.call(SYS.pwrite64, fd, h.str('Q'), 1, 2 * PG + 1), 1);
  assert.equal(h.text(big + 2 * PG, 2), 'cQ');
  assert.equal(h.call(SYS.mremap, big, 3 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP), -EINVAL); // not private anonymous
  // Truncation: bytes past the new end read as zero.
  assert.equal(h.call(SYS.ftruncate, fd, PG + 2), 0);
  assert.equal(h.text(big + PG, 2), 'bb');
  assert.deepEqual(h.read(big + PG + 2, 4), new Uint8Array(4));
  assert.deepEqual(h.read(ro + 4, 3), new Uint8Array(3));
  // A shared mapping of a read-only fd cannot be made writable; a private one can.
  const rfd = h.call(SYS.openat, AT_FDCWD, h.str(file), O_RDONLY, 0);
  const rmap = h.call(SYS.mmap, 0, PG, PROT_R, MAP_SHARED, rfd, 0);
  assert.equal(h.call(SYS.mprotect, rmap, PG, PROT_RW), -EACCES);
  assert.equal(h.call(SYS.mprotect, priv, PG, PROT_RW), 0);
  // msync over an unmapped range reports ENOMEM.
  assert.equal(h.call(SYS.munmap, rmap, PG), 0);
  assert.equal(h.call(SYS.msync, rmap, PG, 4), -ENOMEM);
});

/** rt_sigaction(sig, SA_SIGINFO handler at `handler`). */
function sigaction(h: Harness, sig: number, handler: number): void {
  const act = new Uint8Array(24), dv = new DataView(act.buffer);
  dv.setBigUint64(0, BigInt(handler), true);
  dv.setBigUint64(8, 0x4n, true); // SA_SIGINFO
  assert.equal(h.call(SYS.rt_sigaction, sig, h.bytes(act), 0, 8), 0);
}

/** A sigset holding `sig`, in guest memory. */
const sigset = (h: Harness, sig: number): number => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, 1n << BigInt(sig - 1), true);
  return h.bytes(b);
};

/** A siginfo for rt_sigqueueinfo: si_code SI_QUEUE and si_value `value`. */
const queueInfo = (h: Harness, value: number): number => {
  const b = new Uint8Array(128), dv = new DataView(b.buffer);
  dv.setInt32(8, SI_QUEUE, true); dv.setInt32(16, PID, true); dv.setInt32(24, value, true);
  return h.bytes(b);
};

test('real-time signals queue every instance with its own siginfo; standard ones coalesce', () => {
  const h = new Harness();
  const st = h.proc.hart.st;
  const stack = h.alloc(65536) + 65536;
  st.setX(2, stack);
  st.setPc(0x1000);
  sigaction(h, SIGRT1, 0x5000);
  sigaction(h, 10, 0x6000);
  const set = sigset(h, SIGRT1);
  assert.equal(h.call(SYS.rt_sigprocmask, 0, set, 0, 8), 0);
  assert.equal(h.call(SYS.rt_sigprocmask, 0, sigset(h, 10), 0, 8), 0);
  for (let i = 0; i < 3; i++) assert.equal(h.call(SYS.tgkill, PID, PID, SIGRT1), 0);
  assert.equal(h.call(SYS.rt_sigqueueinfo, PID, SIGRT1, queueInfo(h, 77)), 0);
  assert.equal(h.call(SYS.rt_sigqueueinfo, PID, SIGRT1, queueInfo(h, 78)), 0);
  assert.equal(h.call(SYS.tgkill, PID, PID, 10), 0);
  assert.equal(h.call(SYS.tgkill, PID, PID, 10), 0);
  const pend = h.alloc(8);
  assert.equal(h.call(SYS.rt_sigpending, pend, 8), 0);
  assert.equal(h.u64(pend), 2 ** 34 + 2 ** 9);
  // rt_sigtimedwait takes the oldest instance.
  const info = h.alloc(128), ts = h.alloc(16);
  assert.equal(h.call(SYS.rt_sigtimedwait, set, info, ts, 8), SIGRT1);
  assert.equal(h.i32(info + 8), SI_TKILL);
  // Unblocking runs the handler once per instance, each with its siginfo.
  h.call(SYS.rt_sigprocmask, 2, h.alloc(8), 0, 8); // a0 is then the first handler's argument
  const seen: Array<[number, number, number]> = [];
  for (let guard = 0; guard < 10 && st.getPc() !== 0x1004 - 4; guard++) {
    const frame = st.getX(2);
    seen.push([h.i32(frame), h.i32(frame + 8), h.i32(frame + 24)]);
    h.call(SYS.rt_sigreturn);
  }
  // Instances run oldest first, one per rt_sigreturn (the handler blocks its signal); SIGUSR1's frame, built first, runs last.
  assert.deepEqual(seen.filter(([s]) => s === SIGRT1).map(([, code, v]) => [code, code === SI_QUEUE ? v : 0]),
    [[SI_TKILL, 0], [SI_TKILL, 0], [SI_QUEUE, 77], [SI_QUEUE, 78]]);
  assert.equal(seen.filter(([s]) => s === 10).length, 1);
  assert.equal(st.getX(2), stack);
});

test('the real-time queue is bounded: -EAGAIN for tgkill and rt_sigqueueinfo, kill is kept without siginfo', () => {
  const h = new Harness();
  sigaction(h, SIGRT1, 0x5000);
  const set = sigset(h, SIGRT1);
  assert.equal(h.call(SYS.rt_sigprocmask, 0, set, 0, 8), 0);
  let n = 0;
  while (n < 5000 && h.call(SYS.tgkill, PID, PID, SIGRT1) === 0) n++;
  assert.equal(n, 1024);
  assert.equal(h.call(SYS.tgkill, PID, PID, SIGRT1), -EAGAIN);
  assert.equal(h.call(SYS.rt_sigqueueinfo, PID, SIGRT1, queueInfo(h, 1)), -EAGAIN);
  assert.equal(h.call(SYS.rt_sigprocmask, 0, sigset(h, SIGRT1 + 1), 0, 8), 0);
  assert.equal(h.call(SYS.kill, PID, SIGRT1 + 1), 0);
  const pend = h.alloc(8);
  assert.equal(h.call(SYS.rt_sigpending, pend, 8), 0);
  assert.equal(h.u64(pend), 2 ** 34 + 2 ** 35);
  // The over-limit kill() has no siginfo left: si_code SI_USER, si_pid 0.
  const info = h.alloc(128), ts = h.alloc(16);
  assert.equal(h.call(SYS.rt_sigtimedwait, sigset(h, SIGRT1 + 1), info, ts, 8), SIGRT1 + 1);
  assert.equal(h.i32(info + 8), 0);
  assert.equal(h.i32(info + 16), 0);
  // Ignoring the signal discards its queue.
  const ign = new Uint8Array(24);
  ign[0] = 1; // SIG_IGN
  assert.equal(h.call(SYS.rt_sigaction, SIGRT1, h.bytes(ign), 0, 8), 0);
  assert.equal(h.call(SYS.rt_sigpending, pend, 8), 0);
  assert.equal(h.u64(pend), 0);
  sigaction(h, SIGRT1, 0x5000);
  assert.equal(h.call(SYS.rt_sigqueueinfo, PID, SIGRT1, queueInfo(h, 5)), 0);
});
