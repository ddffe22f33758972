/**
 * Unit tests of the Linux syscall layer, driven through LinuxSyscalls.handle()
 * with registers set as the guest would set them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Harness, NR, tempDir, AT_FDCWD, O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_CLOEXEC, O_DIRECTORY, O_NONBLOCK } from './syscall-harness.js';

const ENOENT = 2, EBADF = 9, EAGAIN = 11, EEXIST = 17, ENOTTY = 25, ENOSYS = 38, ENOTDIR = 20;

test('write and read through a pipe; EOF once the writer closes', () => {
  const h = new Harness();
  const fds = h.alloc(8);
  assert.equal(h.call(NR.pipe2, fds, 0), 0);
  const r = h.i32(fds), w = h.i32(fds + 4);
  assert.deepEqual([r, w], [3, 4]);
  assert.equal(h.call(NR.write, w, h.str('hello'), 5), 5);
  const buf = h.alloc(16);
  assert.equal(h.call(NR.read, r, buf, 16), 5);
  assert.equal(h.text(buf, 5), 'hello');
  assert.equal(h.call(NR.close, w), 0);
  assert.equal(h.call(NR.read, r, buf, 16), 0);
  assert.equal(h.call(NR.close, r), 0);
  assert.equal(h.call(NR.close, r), -EBADF);
});

test('non-blocking empty pipe with a live writer gives EAGAIN', () => {
  const h = new Harness();
  const fds = h.alloc(8);
  assert.equal(h.call(NR.pipe2, fds, O_NONBLOCK | O_CLOEXEC), 0);
  assert.equal(h.call(NR.read, h.i32(fds), h.alloc(4), 4), -EAGAIN);
  assert.equal(h.call(NR.fcntl, h.i32(fds), 1 /* F_GETFD */), 1);
});

test('openat, write, lseek, pread, fstat and getdents64 on host files', () => {
  const dir = tempDir('sys');
  const h = new Harness();
  const file = path.join(dir, 'a.txt');
  const fd = h.call(NR.openat, AT_FDCWD, h.str(file), O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0o644);
  assert.equal(fd, 3);
  assert.equal(h.call(NR.write, fd, h.str('0123456789'), 10), 10);
  assert.equal(h.call(NR.lseek, fd, 2, 0 /* SEEK_SET */), 2);
  const buf = h.alloc(16);
  assert.equal(h.call(NR.read, fd, buf, 3), 3);
  assert.equal(h.text(buf, 3), '234');
  assert.equal(h.call(NR.pread64, fd, buf, 2, 8), 2);
  assert.equal(h.text(buf, 2), '89');
  const st = h.alloc(128);
  assert.equal(h.call(NR.fstat, fd, st), 0);
  assert.equal(h.u64(st + 48), 10); // st_size
  assert.equal(h.i32(st + 16) & 0o170000, 0o100000); // S_IFREG
  assert.equal(fs.readFileSync(file, 'utf8'), '0123456789');
  assert.equal(h.call(NR.close, fd), 0);

  fs.writeFileSync(path.join(dir, 'b'), '');
  const dfd = h.call(NR.openat, AT_FDCWD, h.str(dir), O_RDONLY | O_DIRECTORY);
  assert.ok(dfd >= 3);
  const dbuf = h.alloc(4096);
  const n = h.call(NR.getdents64, dfd, dbuf, 4096);
  assert.ok(n > 0);
  const names: string[] = [];
  const raw = h.read(dbuf, n), dv = new DataView(raw.buffer);
  for (let off = 0; off < n;) {
    const reclen = dv.getUint16(off + 16, true);
    const end = raw.indexOf(0, off + 19);
    names.push(new TextDecoder().decode(raw.subarray(off + 19, end)));
    off += reclen;
  }
  assert.deepEqual(names.sort(), ['.', '..', 'a.txt', 'b']);
  assert.equal(h.call(NR.getdents64, dfd, dbuf, 4096), 0);
  assert.equal(h.call(NR.lseek, dfd, 0, 0), 0);
  assert.equal(h.call(NR.getdents64, dfd, dbuf, 4096), n);
  // Paths relative to a directory fd.
  assert.equal(h.call(NR.newfstatat, dfd, h.str('a.txt'), st, 0), 0);
  assert.equal(h.call(NR.newfstatat, dfd, h.str('missing'), st, 0), -ENOENT);
  assert.equal(h.call(NR.newfstatat, 0, h.str('x'), st, 0) < 0, true);
});

test('mkdirat, symlinkat, readlinkat, renameat, unlinkat', () => {
  const dir = tempDir('meta');
  const h = new Harness();
  const d = path.join(dir, 'sub');
  assert.equal(h.call(NR.mkdirat, AT_FDCWD, h.str(d), 0o755), 0);
  assert.equal(h.call(NR.mkdirat, AT_FDCWD, h.str(d), 0o755), -EEXIST);
  assert.equal(h.call(NR.symlinkat, h.str('target'), AT_FDCWD, h.str(path.join(d, 'l'))), 0);
  const buf = h.alloc(64);
  assert.equal(h.call(NR.readlinkat, AT_FDCWD, h.str(path.join(d, 'l')), buf, 64), 6);
  assert.equal(h.text(buf, 6), 'target');
  assert.equal(h.call(NR.renameat, AT_FDCWD, h.str(path.join(d, 'l')), AT_FDCWD, h.str(path.join(d, 'm'))), 0);
  assert.equal(h.call(NR.unlinkat, AT_FDCWD, h.str(path.join(d, 'm')), 0), 0);
  assert.equal(h.call(NR.unlinkat, AT_FDCWD, h.str(d), 0x200 /* AT_REMOVEDIR */), 0);
  assert.equal(fs.existsSync(d), false);
});

test('chdir and getcwd track the guest directory', () => {
  const dir = tempDir('cwd');
  const h = new Harness();
  assert.equal(h.call(NR.chdir, h.str(dir)), 0);
  const buf = h.alloc(4096);
  const n = h.call(NR.getcwd, buf, 4096);
  assert.equal(h.text(buf, n - 1), dir);
  fs.writeFileSync(path.join(dir, 'rel'), 'x');
  assert.ok(h.call(NR.openat, AT_FDCWD, h.str('rel'), O_RDONLY) >= 3);
  assert.equal(h.call(NR.chdir, h.str(path.join(dir, 'rel'))), -ENOTDIR);
  assert.equal(h.call(NR.getcwd, buf, 2), -34 /* ERANGE */);
});

test('dup, dup3 and fcntl share the file offset', () => {
  const dir = tempDir('dup');
  fs.writeFileSync(path.join(dir, 'f'), 'abcdef');
  const h = new Harness();
  const fd = h.call(NR.openat, AT_FDCWD, h.str(path.join(dir, 'f')), O_RDONLY);
  const d = h.call(NR.dup, fd);
  assert.equal(d, fd + 1);
  const buf = h.alloc(8);
  assert.equal(h.call(NR.read, fd, buf, 2), 2);
  assert.equal(h.call(NR.read, d, buf, 2), 2);
  assert.equal(h.text(buf, 2), 'cd');
  assert.equal(h.call(NR.dup3, fd, 40, O_CLOEXEC), 40);
  assert.equal(h.call(NR.fcntl, 40, 1 /* F_GETFD */), 1);
  assert.equal(h.call(NR.dup3, fd, fd, 0), -22);
  assert.equal(h.call(NR.fcntl, fd, 1030 /* F_DUPFD_CLOEXEC */, 10), 10);
  assert.equal(h.call(NR.fcntl, fd, 3 /* F_GETFL */), O_RDONLY);
});

test('ioctl terminal requests on a regular file fail with ENOTTY', () => {
  const dir = tempDir('tty');
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const h = new Harness();
  const fd = h.call(NR.openat, AT_FDCWD, h.str(path.join(dir, 'f')), O_RDONLY);
  assert.equal(h.call(NR.ioctl, fd, 0x5401 /* TCGETS */, h.alloc(64)), -ENOTTY);
  assert.equal(h.call(NR.ioctl, fd, 0x5413 /* TIOCGWINSZ */, h.alloc(8)), -ENOTTY);
  const n = h.alloc(4);
  assert.equal(h.call(NR.ioctl, fd, 0x541b /* FIONREAD */, n), 0);
  assert.equal(h.i32(n), 1);
});

test('mmap: anonymous, file-backed private copy, MAP_FIXED_NOREPLACE', () => {
  const dir = tempDir('mmap');
  fs.writeFileSync(path.join(dir, 'f'), 'mapped contents');
  const h = new Harness();
  const anon = h.call(NR.mmap, 0, 8192, 3, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
  assert.ok(anon > 0 && anon % 4096 === 0);
  assert.deepEqual([...h.read(anon, 4)], [0, 0, 0, 0]);
  const fd = h.call(NR.openat, AT_FDCWD, h.str(path.join(dir, 'f')), O_RDONLY);
  const m = h.call(NR.mmap, 0, 4096, 1 /* PROT_READ */, 2 /* MAP_PRIVATE */, fd, 0);
  assert.equal(h.text(m, 15), 'mapped contents');
  assert.equal(h.call(NR.mmap, anon, 4096, 3, 0x100022 /* +MAP_FIXED_NOREPLACE */, -1, 0), -EEXIST);
  assert.equal(h.call(NR.mmap, 0, 0, 3, 0x22, -1, 0), -22);
  assert.equal(h.call(NR.mmap, 0, 4096, 3, 2, 99, 0), -EBADF);
  assert.equal(h.call(NR.munmap, m, 4096), 0);
  assert.equal(h.proc.mem.read(m, 1), null);
});

test('madvise(MADV_DONTNEED) zero-fills anonymous pages, keeps file copies, and reports a hole with ENOMEM', () => {
  const MADV_DONTNEED = 4, MADV_WILLNEED = 3, ENOMEM = 12;
  const dir = tempDir('madvise');
  fs.writeFileSync(path.join(dir, 'f'), 'file bytes');
  const h = new Harness();
  const anon = h.call(NR.mmap, 0, 4 * 4096, 3, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
  assert.ok(h.proc.mem.write(anon, new Uint8Array(4 * 4096).fill(0x5a)));
  assert.equal(h.call(NR.madvise, anon + 4096, 2 * 4096, MADV_DONTNEED), 0);
  assert.deepEqual([...h.read(anon + 4095, 1), ...h.read(anon + 4096, 1), ...h.read(anon + 3 * 4096 - 1, 2)], [0x5a, 0, 0, 0x5a]);
  // A range running past the mapping: the mapped part is discarded, the call says ENOMEM (mm/madvise.c).
  assert.ok(h.proc.mem.write(anon + 3 * 4096, new Uint8Array([7])));
  assert.equal(h.call(NR.madvise, anon + 3 * 4096, 2 ** 36, MADV_DONTNEED), -ENOMEM);
  assert.deepEqual([...h.read(anon + 3 * 4096, 1)], [0]);
  // A private file mapping is a copy of the file here: it keeps its bytes.
  const fd = h.call(NR.openat, AT_FDCWD, h.str(path.join(dir, 'f')), O_RDONLY);
  const m = h.call(NR.mmap, 0, 4096, 1 /* PROT_READ */, 2 /* MAP_PRIVATE */, fd, 0);
  assert.equal(h.call(NR.madvise, m, 4096, MADV_DONTNEED), 0);
  assert.equal(h.text(m, 10), 'file bytes');
  assert.equal(h.call(NR.madvise, anon, 4096, MADV_WILLNEED), 0);
  assert.equal(h.call(NR.madvise, anon + 1, 4096, MADV_DONTNEED), -22);
});

test('brk grows the heap', () => {
  const h = new Harness();
  h.proc.mem.initBrk(0x400000);
  const b0 = h.call(NR.brk, 0);
  assert.equal(b0, 0x400000);
  assert.equal(h.call(NR.brk, b0 + 10000), b0 + 10000);
  assert.ok(h.proc.mem.write(b0 + 9000, new Uint8Array([1])));
});

test('exit_group keeps the low 8 bits of the status', () => {
  const h = new Harness();
  h.call(NR.exit_group, 257);
  assert.equal(h.proc.exitStatus, 1);
});

test('an unsupported syscall returns ENOSYS and warns once; probed ones stay quiet', () => {
  const h = new Harness();
  assert.equal(h.call(450), -ENOSYS);
  assert.equal(h.call(450), -ENOSYS);
  assert.deepEqual(h.log, ['tsvm: unsupported syscall 450 (set_mempolicy_home_node)']);
  assert.equal(h.call(NR.rseq, 0, 32, 0, 0), -ENOSYS);
  assert.equal(h.call(NR.clone3, 0, 0), -ENOSYS);
  assert.equal(h.log.length, 1);
});

test('--trace prints strace-like lines', () => {
  const dir = tempDir('trace');
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const h = new Harness({ trace: true });
  const p = path.join(dir, 'f');
  const fd = h.call(NR.openat, AT_FDCWD, h.str(p), O_RDONLY | O_CLOEXEC);
  h.call(NR.openat, AT_FDCWD, h.str(p + '.new'), O_WRONLY | O_CREAT | O_TRUNC, 0o644);
  h.call(NR.openat, AT_FDCWD, h.str('/nonexistent'), O_RDONLY);
  h.call(NR.write, 1, h.str('hi\n'), 0);
  h.call(NR.exit_group, 3);
  assert.equal(h.log[0], `openat(AT_FDCWD, ${JSON.stringify(p)}, O_RDONLY|O_CLOEXEC) = ${fd}`);
  assert.equal(h.log[1], `openat(AT_FDCWD, ${JSON.stringify(p + '.new')}, O_WRONLY|O_CREAT|O_TRUNC, 0644) = ${fd + 1}`);
  assert.equal(h.log[2], 'openat(AT_FDCWD, "/nonexistent", O_RDONLY) = -1 ENOENT');
  assert.equal(h.log[3], 'write(1, "", 0) = 0');
  assert.equal(h.log[4], 'exit_group(3) = ?');
});

test('uname, getpid, clock_gettime, getrandom, prlimit64', () => {
  const h = new Harness();
  const u = h.alloc(65 * 6);
  assert.equal(h.call(NR.uname, u), 0);
  assert.equal(h.text(u, 5), 'Linux');
  assert.equal(h.text(u + 65 * 4, 7), 'riscv64');
  assert.equal(h.call(NR.getpid), 4242);
  assert.equal(h.call(NR.set_tid_address, 0x1234), 4242);
  const ts = h.alloc(16);
  assert.equal(h.call(NR.clock_gettime, 0, ts), 0);
  assert.ok(h.u64(ts) > 1_600_000_000);
  assert.equal(h.call(NR.clock_gettime, 99, ts), -22);
  assert.equal(h.call(NR.getrandom, h.alloc(32), 32, 0), 32);
  const rl = h.alloc(16);
  assert.equal(h.call(NR.prlimit64, 0, 3 /* RLIMIT_STACK */, 0, rl), 0);
  assert.ok(h.u64(rl) > 0);
  assert.equal(h.call(NR.prlimit64, 0, 99, 0, rl), -22);
});

test('riscv_hwprobe answers IMA_EXT_0 and clears unknown keys', () => {
  const h = new Harness();
  const b = new Uint8Array(48), dv = new DataView(b.buffer);
  dv.setBigInt64(0, 4n, true); // RISCV_HWPROBE_KEY_IMA_EXT_0
  dv.setBigInt64(16, 5n, true); // RISCV_HWPROBE_KEY_CPUPERF_0
  dv.setBigInt64(32, 9999n, true);
  const p = h.bytes(b);
  assert.equal(h.call(NR.riscv_hwprobe, p, 3, 0, 0, 0), 0);
  const out = new DataView(h.read(p, 48).buffer);
  assert.equal(out.getBigUint64(8, true), 0x3bn); // FD | C | ZBA | ZBB | ZBS
  assert.equal(out.getBigUint64(24, true), 0n); // misaligned: unknown
  assert.equal(out.getBigInt64(32, true), -1n);
  assert.equal(h.call(NR.riscv_hwprobe, p, 1, 0, 0, 1), -22);
});

test('signals: fatal default, ignored default, handler delivery and rt_sigreturn', () => {
  const h = new Harness();
  // SIGCHLD's default action is to ignore it.
  assert.equal(h.call(NR.kill, 4242, 17), 0);
  assert.equal(h.proc.exitStatus, null);
  // Install a handler for SIGUSR1 and raise it.
  const act = new Uint8Array(24), dv = new DataView(act.buffer);
  dv.setBigUint64(0, 0x5000n, true); // sa_handler
  dv.setBigUint64(8, 0x4n, true); // SA_SIGINFO
  assert.equal(h.call(NR.rt_sigaction, 10, h.bytes(act), 0, 8), 0);
  const st = h.proc.hart.st;
  const stack = h.alloc(8192) + 8192;
  st.setX(2, stack);
  st.setPc(0x1000);
  st.setX(9, 0x77);
  assert.equal(h.call(NR.tgkill, 4242, 4242, 10), 10); // a0 now holds the signal number
  assert.equal(st.getPc(), 0x5000 - 4); // the run loop adds 4
  assert.equal(st.getX(10), 10);
  const frame = st.getX(2);
  assert.ok(frame < stack && frame % 16 === 0);
  assert.equal(st.getX(11), frame); // &siginfo
  assert.equal(st.getX(12), frame + 128); // &ucontext
  assert.equal(h.i32(frame), 10); // si_signo
  assert.equal(h.i32(frame + 8), -6); // si_code SI_TKILL
  assert.equal(h.u64(frame + 128 + 176), 0x1004); // saved pc: after the ecall
  // The handler runs with SIGUSR1 blocked; a second one stays pending.
  st.setX(9, 0x99);
  assert.equal(h.call(NR.tgkill, 4242, 4242, 10), 0);
  assert.equal(st.getPc(), 0x5000 - 4);
  // Return through the trampoline: the registers come back, and the pending
  // signal is delivered at once on the restored stack, saving the restored state.
  st.setX(2, frame);
  h.call(NR.rt_sigreturn);
  assert.equal(st.getPc(), 0x5000 - 4);
  assert.equal(st.getX(2), frame);
  const mc = frame + 128 + 176;
  assert.equal(h.u64(mc), 0x1004); // pc
  assert.equal(h.u64(mc + 8 * 2), stack); // sp
  assert.equal(h.u64(mc + 8 * 9), 0x77); // s1
  assert.equal(h.u64(mc + 8 * 10), 0); // a0: tgkill's own result
  st.setX(2, frame);
  h.call(NR.rt_sigreturn);
  assert.equal(st.getPc(), 0x1004 - 4);
  assert.equal(st.getX(9), 0x77);
  assert.equal(st.getX(2), stack);
  assert.equal(st.getX(10), 0);
  // Default action for SIGTERM terminates with 128 + 15.
  assert.equal(h.call(NR.kill, 0, 15), 0);
  assert.equal(h.proc.exitStatus, 143);
  assert.match(h.log.at(-1) ?? '', /signal 15 \(SIGTERM\)/);
});

test('blocked signals stay pending until unblocked', () => {
  const h = new Harness();
  const set = new Uint8Array(8);
  set[1] = 1 << 6; // SIGTERM (15): bit 14
  const p = h.bytes(set);
  assert.equal(h.call(NR.rt_sigprocmask, 0 /* SIG_BLOCK */, p, 0, 8), 0);
  assert.equal(h.call(NR.kill, 4242, 15), 0);
  assert.equal(h.proc.exitStatus, null);
  assert.equal(h.call(NR.rt_sigprocmask, 1 /* SIG_UNBLOCK */, p, 0, 8), 0);
  assert.equal(h.proc.exitStatus, 143);
});

test('writev gathers, statx fills size and mask', () => {
  const dir = tempDir('statx');
  const h = new Harness();
  const p = path.join(dir, 'v');
  const fd = h.call(NR.openat, AT_FDCWD, h.str(p), O_CREAT | O_WRONLY, 0o600);
  const iov = new Uint8Array(32), dv = new DataView(iov.buffer);
  dv.setBigUint64(0, BigInt(h.str('ab')), true); dv.setBigUint64(8, 2n, true);
  dv.setBigUint64(16, BigInt(h.str('cde')), true); dv.setBigUint64(24, 3n, true);
  assert.equal(h.call(NR.writev, fd, h.bytes(iov), 2), 5);
  assert.equal(fs.readFileSync(p, 'utf8'), 'abcde');
  const sx = h.alloc(256);
  assert.equal(h.call(NR.statx, AT_FDCWD, h.str(p), 0, 0x7ff, sx), 0);
  assert.equal(h.u64(sx + 40), 5); // stx_size
  assert.equal(h.i32(sx) & 0x7ff, 0x7ff);
  assert.equal(h.call(NR.faccessat, AT_FDCWD, h.str(p), 0), 0);
  assert.equal(h.call(NR.faccessat, AT_FDCWD, h.str(p + 'x'), 0), -ENOENT);
});

test('deliverFault runs a SIGSEGV handler at the faulting pc and sigreturn retries it', () => {
  const h = new Harness();
  const st = h.proc.hart.st;
  assert.equal(h.sys.deliverFault(11, 0xdead), false); // default action: fatal
  const act = new Uint8Array(24);
  new DataView(act.buffer).setBigUint64(0, 0x6000n, true);
  assert.equal(h.call(NR.rt_sigaction, 11, h.bytes(act), 0, 8), 0);
  st.setX(2, h.alloc(8192) + 8192);
  st.setPc(0x2000);
  assert.equal(h.sys.deliverFault(11, 0xdead), true);
  assert.equal(st.getPc(), 0x6000);
  const frame = st.getX(2);
  assert.equal(h.u64(frame + 16), 0xdead); // si_addr
  assert.equal(h.u64(frame + 128 + 176), 0x2000); // saved pc: the faulting instruction
  h.call(NR.rt_sigreturn);
  assert.equal(st.getPc(), 0x2000 - 4); // the run loop's +4 lands on it again
});
