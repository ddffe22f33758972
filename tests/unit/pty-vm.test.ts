/**
 * Unit tests of the emulated terminal inside the process VM
 * (src/process/sys-tty.ts with kernel.ts): through the syscall layer with
 * no guest code running, as tests/unit/process-kernel.test.ts does. The
 * slave on fds 0-2, ttyname's view of it, ^C to the foreground group only,
 * VMIN/VTIME, TIOCSWINSZ and SIGWINCH, SIGTTIN for a background reader,
 * stopped and continued children seen by wait4, and the hangup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, callAs, NR, AT_FDCWD, O_RDWR } from './syscall-harness.js';
import { BLOCKED } from '../../src/process/kernel.js';
import { VmTerminal } from '../../src/process/sys-tty.js';
import { applyStops } from '../../src/process/sys-signals.js';
import type { SysCtx } from '../../src/process/sys-context.js';

const SYS = { clone: 220, wait4: 260, setpgid: 154, setsid: 157 } as const;
const TCGETS = 0x5401, TCSETS = 0x5402, TIOCGPGRP = 0x540f, TIOCSPGRP = 0x5410, TIOCGWINSZ = 0x5413, TIOCSWINSZ = 0x5414;
const SIGHUP = 1, SIGINT = 2, SIGCHLD = 17, SIGCONT = 18, SIGTSTP = 20, SIGTTIN = 21, SIGWINCH = 28;
const EIO = 5, ENXIO = 6, WUNTRACED = 2, WCONTINUED = 8;
const pending = (c: SysCtx, sig: number): boolean => (c.sig.pending & (1n << BigInt(sig - 1))) !== 0n;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A VM whose fds 0-2 are an emulated terminal; `shown` collects what the master reads. */
function vm(): { h: Harness; t: VmTerminal; root: SysCtx; shown: () => string } {
  let out = '';
  const t = new VmTerminal((d) => { out += new TextDecoder().decode(d); });
  const h = new Harness({ terminal: t });
  h.sys.kernel.poller = () => {}; // as tsvm exec --tty: input can end any wait
  return { h, t, root: h.sys.current, shown: () => { const s = out; out = ''; return s; } };
}

/** Forks the root task into a child, in its own process group unless `ownGroup` is false. */
function child(h: Harness, root: SysCtx, ownGroup = true): SysCtx {
  const tid = callAs(h, root, SYS.clone, SIGCHLD, 0, 0, 0, 0);
  const c = h.sys.kernel.task(tid)!;
  if (ownGroup) assert.equal(callAs(h, root, SYS.setpgid, tid, tid), 0);
  return c;
}

test('fds 0-2 are the slave: isatty, ttyname (/proc/self/fd/0 -> /dev/pts/0, same inode), /dev/tty only in the session', () => {
  const { h, root } = vm();
  const tio = h.alloc(64);
  for (const fd of [0, 1, 2]) assert.equal(h.call(NR.ioctl, fd, TCGETS, tio), 0, `TCGETS on fd ${fd}`);
  const link = h.alloc(64);
  const n = h.call(NR.readlinkat, AT_FDCWD, h.str('/proc/self/fd/0'), link, 64);
  assert.equal(h.text(link, n), '/dev/pts/0');
  const a = h.alloc(128), b = h.alloc(128);
  assert.equal(h.call(NR.fstat, 0, a), 0);
  assert.equal(h.call(NR.newfstatat, AT_FDCWD, h.str('/dev/pts/0'), b, 0), 0);
  // struct stat (asm-generic/stat.h): st_dev, st_ino, st_mode, st_nlink, st_uid, st_gid, st_rdev in the first 40 bytes.
  assert.deepEqual(h.read(a, 40), h.read(b, 40), 'same dev, ino, mode, owner, rdev');
  assert.equal(new DataView(h.read(a, 128).buffer).getUint32(16, true) & 0o170000, 0o020000, 'a character device');
  const fd = h.call(NR.openat, AT_FDCWD, h.str('/dev/tty'), O_RDWR);
  assert.ok(fd >= 3, `open /dev/tty: ${fd}`);
  assert.equal(h.call(NR.write, fd, h.bytes(enc('hi\n')), 3), 3);
  const devTty = h.str('/dev/tty'); // before the fork: the child has a copy of memory
  const other = child(h, root, false);
  assert.equal(callAs(h, other, SYS.setsid), other.tid);
  assert.equal(callAs(h, other, NR.openat, AT_FDCWD, devTty, O_RDWR), -ENXIO, 'a new session has no terminal');
});

test('writes go through ONLCR to the master; a canonical read sleeps until a line is typed', () => {
  const { h, t, root, shown } = vm();
  assert.equal(h.call(NR.write, 1, h.bytes(enc('a\nb')), 3), 3);
  assert.equal(shown(), 'a\r\nb');
  const buf = h.alloc(64);
  assert.equal(callAs(h, root, NR.read, 0, buf, 64), BLOCKED);
  t.input(enc('xy'));
  assert.equal(root.wait?.ready?.(), false, 'no line yet');
  t.input(enc('\x7fz\r'));
  assert.equal(root.wait?.ready?.(), true);
  root.wait = null;
  assert.equal(callAs(h, root, NR.read, 0, buf, 64), 3);
  assert.equal(h.text(buf, 3), 'xz\n');
  assert.equal(shown(), 'xy\b \bz\r\n');
});

test('^C sends SIGINT to the foreground process group only', () => {
  const { h, t, root } = vm();
  const job = child(h, root);
  const bg = child(h, root);
  const pg = h.alloc(4);
  h.proc.mem.write(pg, new Uint8Array(new Int32Array([job.tid]).buffer));
  assert.equal(callAs(h, root, NR.ioctl, 0, TIOCSPGRP, pg), 0);
  assert.equal(callAs(h, root, NR.ioctl, 0, TIOCGPGRP, pg), 0);
  assert.equal(h.i32(pg), job.tid);
  t.input(enc('\x03'));
  assert.equal(pending(job, SIGINT), true, 'the foreground job');
  assert.equal(pending(bg, SIGINT), false, 'not a background job');
  assert.equal(pending(root, SIGINT), false, 'not the shell');
});

test('VMIN and VTIME in non-canonical mode', () => {
  const { h, t, root } = vm();
  const tio = h.alloc(64), buf = h.alloc(64);
  assert.equal(h.call(NR.ioctl, 0, TCGETS, tio), 0);
  const raw = h.read(tio, 36), dv = new DataView(raw.buffer);
  dv.setUint32(12, dv.getUint32(12, true) & ~0o12, true); // no ICANON, no ECHO
  const set = (vmin: number, vtime: number): void => {
    raw[17 + 6] = vmin; raw[17 + 5] = vtime; // c_cc[VMIN], c_cc[VTIME]
    h.proc.mem.write(tio, raw);
    assert.equal(callAs(h, root, NR.ioctl, 0, TCSETS, tio), 0);
  };
  set(3, 0);
  assert.equal(callAs(h, root, NR.read, 0, buf, 64), BLOCKED);
  t.input(enc('ab'));
  assert.equal(root.wait?.ready?.(), false, 'two bytes are fewer than VMIN');
  t.input(enc('c'));
  assert.equal(root.wait?.ready?.(), true);
  root.wait = null;
  assert.equal(callAs(h, root, NR.read, 0, buf, 64), 3);
  set(0, 0);
  assert.equal(callAs(h, root, NR.read, 0, buf, 64), 0, 'VMIN 0, VTIME 0: a poll');
  set(0, 5);
  assert.equal(callAs(h, root, NR.read, 0, buf, 64), BLOCKED);
  const w = root.wait!;
  assert.ok(w.deadline !== undefined && w.deadline > h.sys.kernel.host.monotonicNs(), 'a timed read sleeps until its deadline');
  root.wait = null;
  root.retryDeadline = 0n; // the scheduler retries the read with its deadline, here one already passed
  assert.equal(callAs(h, root, NR.read, 0, buf, 64), 0, 'VTIME expired with no input: 0 bytes');
  set(0, 5);
  t.input(enc('q'));
  assert.equal(callAs(h, root, NR.read, 0, buf, 64), 1, 'input within VTIME is returned at once');
});

test('TIOCSWINSZ sets the size TIOCGWINSZ reports and sends SIGWINCH to the foreground group', () => {
  const { h, t, root } = vm();
  const mask = h.alloc(8);
  h.proc.mem.write(mask, new Uint8Array(new BigUint64Array([1n << BigInt(SIGWINCH - 1)]).buffer));
  assert.equal(h.call(NR.rt_sigprocmask, 0 /* SIG_BLOCK */, mask, 0, 8), 0); // blocked, SIGWINCH stays pending to be seen
  const ws = h.alloc(8);
  assert.equal(h.call(NR.ioctl, 1, TIOCGWINSZ, ws), 0);
  assert.deepEqual([...new Uint16Array(h.read(ws, 4).buffer)], [24, 80]);
  h.proc.mem.write(ws, new Uint8Array(new Uint16Array([40, 132, 0, 0]).buffer));
  assert.equal(h.call(NR.ioctl, 1, TIOCSWINSZ, ws), 0);
  assert.equal(pending(root, SIGWINCH), true);
  root.sig.pending = 0n;
  t.resize(132, 40);
  assert.equal(pending(root, SIGWINCH), false, 'no change, no signal');
  t.resize(100, 50);
  assert.equal(h.call(NR.ioctl, 0, TIOCGWINSZ, ws), 0);
  assert.deepEqual([...new Uint16Array(h.read(ws, 4).buffer)], [50, 100]);
  assert.equal(pending(root, SIGWINCH), true);
});

test('a background reader gets SIGTTIN (EIO if it ignores it); SIGTSTP stops a child, wait4 sees it stop and continue', () => {
  const { h, root } = vm();
  const bg = child(h, root);
  const buf = h.alloc(64), status = h.alloc(4);
  assert.equal(callAs(h, bg, NR.read, 0, buf, 64), BLOCKED);
  assert.equal(pending(bg, SIGTTIN), true);
  applyStops(bg);
  assert.equal(bg.group.stopped, true, 'SIGTTIN stops the reader');
  assert.equal(pending(root, SIGCHLD), true, 'the parent hears of it');
  assert.equal(callAs(h, root, SYS.wait4, -1, status, WUNTRACED, 0), bg.tid);
  assert.equal(h.i32(status), (SIGTTIN << 8) | 0x7f);
  assert.equal(callAs(h, root, SYS.wait4, -1, status, WUNTRACED | 1, 0), 0, 'reported once');
  assert.equal(callAs(h, root, NR.kill, bg.tid, SIGCONT), 0);
  assert.equal(bg.group.stopped, false);
  assert.equal(callAs(h, root, SYS.wait4, -1, status, WCONTINUED, 0), bg.tid);
  assert.equal(h.i32(status), 0xffff);
  assert.equal(bg.wait?.ready?.(), true, 'continued: the read is tried again');
  bg.wait = null;
  bg.sig.pending = 0n;
  // SIGTTIN ignored: the read fails with EIO.
  const act = h.alloc(32);
  bg.mem.write(act, new Uint8Array([1])); // SIG_IGN, in the child's copy of memory
  assert.equal(callAs(h, bg, NR.rt_sigaction, SIGTTIN, act, 0, 8), 0);
  assert.equal(callAs(h, bg, NR.read, 0, buf, 64), -EIO);
  // SIGTSTP with the default action stops the child.
  assert.equal(callAs(h, root, NR.kill, bg.tid, SIGTSTP), 0);
  applyStops(bg);
  assert.equal(bg.group.stopped, true);
  assert.equal(callAs(h, root, SYS.wait4, bg.tid, status, WUNTRACED, 0), bg.tid);
  assert.equal(h.i32(status), (SIGTSTP << 8) | 0x7f);
});

test('a hangup: SIGHUP to the session leader, reads see end of file, writes fail with EIO', () => {
  const { h, t, root } = vm();
  const buf = h.alloc(16);
  t.hangup();
  assert.equal(pending(root, SIGHUP), true);
  root.sig.pending = 0n;
  assert.equal(callAs(h, root, NR.read, 0, buf, 16), 0);
  assert.equal(callAs(h, root, NR.write, 1, buf, 1), -EIO);
});
