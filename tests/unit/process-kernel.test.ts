/**
 * Unit tests of the process VM's kernel (src/process/kernel.ts) through
 * the syscall layer, with no guest code running: clone makes tasks whose
 * syscalls are issued directly; sleeping calls come back BLOCKED and are
 * retried by the test the way the scheduler would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, callAs, NR } from './syscall-harness.js';
import { BLOCKED } from '../../src/process/kernel.js';
import type { SysCtx } from '../../src/process/sys-context.js';

const ECHILD = 10, ESRCH = 3, EPERM = 1, EAGAIN = 11;
const SYS = { clone: 220, wait4: 260, getppid: 173, gettid: 178, setpgid: 154, getpgid: 155, setsid: 157, futex: 98 } as const;
const SIGCHLD = 17, CLONE_VM = 0x100, CLONE_FS = 0x200, CLONE_FILES = 0x400, CLONE_SIGHAND = 0x800, CLONE_THREAD = 0x10000;

/** Clones the root task; returns the child task. */
function fork(h: Harness, flags = SIGCHLD): SysCtx {
  const root = h.sys.kernel.root.threads[0]!;
  const tid = callAs(h, root, SYS.clone, flags, 0, 0, 0, 0);
  assert.ok(tid > 0, `clone returned ${tid}`);
  const c = h.sys.kernel.task(tid);
  assert.ok(c);
  h.sys.current = root;
  return c;
}

test('fork copies memory, wait4 reaps the exit status, then ECHILD', () => {
  const h = new Harness();
  const root = h.sys.current;
  const cell = h.alloc(8);
  h.proc.mem.write(cell, new Uint8Array([1]));
  const child = fork(h);
  assert.equal(callAs(h, child, SYS.getppid), 4242);
  assert.equal(callAs(h, child, SYS.gettid), child.tid);
  child.mem.write(cell, new Uint8Array([2]));
  assert.equal(h.read(cell, 1)[0], 1, 'the parent keeps its own page');
  const status = h.alloc(4);
  assert.equal(callAs(h, root, SYS.wait4, -1, status, 1 /* WNOHANG */, 0), 0);
  assert.equal(callAs(h, root, SYS.wait4, -1, status, 0, 0), BLOCKED);
  callAs(h, child, NR.exit_group, 3);
  assert.ok(root.wait?.ready?.(), 'the zombie ends the wait');
  root.wait = null;
  assert.equal(callAs(h, root, SYS.wait4, -1, status, 0, 0), child.tid);
  assert.equal(h.i32(status), 3 << 8);
  assert.equal(callAs(h, root, SYS.wait4, -1, status, 0, 0), -ECHILD);
});

test('a pipe read sleeps while another task holds the write end, and sees EOF when it exits', () => {
  const h = new Harness();
  const root = h.sys.current;
  const fds = h.alloc(8);
  assert.equal(h.call(NR.pipe2, fds, 0), 0);
  const r = h.i32(fds), w = h.i32(fds + 4);
  const child = fork(h);
  assert.equal(callAs(h, root, NR.close, w), 0);
  const buf = h.alloc(16);
  assert.equal(callAs(h, root, NR.read, r, buf, 16), BLOCKED);
  assert.equal(root.wait?.ready?.(), false);
  callAs(h, child, NR.exit_group, 0); // closes the child's copy of the write end
  assert.equal(root.wait?.ready?.(), true);
  root.wait = null;
  assert.equal(callAs(h, root, NR.read, r, buf, 16), 0);
});

test('kill and SIGCHLD: a signal to a sleeping child is pending there; the parent gets SIGCHLD', () => {
  const h = new Harness();
  const root = h.sys.current;
  const child = fork(h);
  assert.equal(callAs(h, root, NR.kill, child.tid, 15), 0);
  assert.notEqual(child.sig.pending & (1n << 14n), 0n);
  assert.equal(callAs(h, root, NR.kill, 999999, 0), -ESRCH);
  callAs(h, child, NR.exit_group, 1);
  assert.notEqual(root.sig.pending & (1n << 16n), 0n, 'SIGCHLD pending in the parent');
});

test('process groups and sessions', () => {
  const h = new Harness();
  const root = h.sys.current;
  const child = fork(h);
  assert.equal(callAs(h, child, SYS.getpgid, 0), 4242);
  assert.equal(callAs(h, root, SYS.setpgid, child.tid, 0), 0);
  assert.equal(callAs(h, child, SYS.getpgid, 0), child.tid);
  assert.equal(callAs(h, child, SYS.setsid), -EPERM, 'a group leader cannot start a session');
  const other = fork(h);
  assert.equal(callAs(h, other, SYS.setsid), other.tid);
  assert.equal(callAs(h, root, SYS.setpgid, other.tid, 0), -EPERM, 'not in the caller\'s session');
});

test('futex: a thread waits, another wakes it; the retried wait returns 0', () => {
  const h = new Harness();
  const root = h.sys.current;
  const thread = fork(h, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD);
  assert.equal(thread.proc.pid, 4242);
  assert.equal(thread.mem, root.mem);
  const word = h.alloc(4);
  h.proc.mem.write(word, new Uint8Array([7, 0, 0, 0]));
  assert.equal(callAs(h, thread, SYS.futex, word, 0 /* FUTEX_WAIT */, 8, 0), -EAGAIN, 'value differs');
  assert.equal(callAs(h, thread, SYS.futex, word, 0, 7, 0), BLOCKED);
  assert.equal(callAs(h, root, SYS.futex, word, 1 /* FUTEX_WAKE */, 10), 1);
  assert.equal(thread.wait?.ready?.(), true);
  thread.wait = null;
  assert.equal(callAs(h, thread, SYS.futex, word, 0, 7, 0), 0);
  assert.equal(callAs(h, root, SYS.futex, word, 1, 10), 0, 'nobody waits any more');
});

test('the task limit makes clone fail with EAGAIN', () => {
  const h = new Harness();
  const root = h.sys.current;
  let last = 0;
  for (let i = 0; i < 300; i++) {
    last = callAs(h, root, SYS.clone, CLONE_VM | SIGCHLD, 0, 0, 0, 0);
    if (last < 0) break;
  }
  assert.equal(last, -EAGAIN);
  assert.equal(h.sys.kernel.tasks.length, 256);
});
