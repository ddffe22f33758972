/**
 * The VM as a library object (src/vmm): the lifecycle state machine, QEMU's
 * options as a VmConfig (qemu-config.ts), and VMs built with buildVm from
 * one config in one process sharing nothing (JIT engines, devices, the
 * build's bookkeeping), run to their end with fake host services.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmLifecycle, VmStateError, VM_TRANSITIONS, type VmState } from '../../src/vmm/lifecycle.js';
import { parseRunArgs, UsageError } from '../../src/vmm/qemu-config.js';
import { buildVm, VmSetupError } from '../../src/vmm/vm-builder.js';
import { Vm } from '../../src/vmm/vm.js';
import { Board } from '../../src/machine/board.js';
import { BootError } from '../../src/machine/boot-loader.js';
import { QmpMonitor, type QmpConnection } from '../../src/vmm/qmp.js';
import { OptsError } from '../../src/vmm/qemu-opts.js';
import { HostFileError, type VmServices, type VmConsole, type QmpListener } from '../../src/vmm/services.js';
import { BUILTIN_JIT_CONFIG, defaultJitConfig, setDefaultJitConfig, type JitConfig } from '../../src/jit/jit-config.js';
import { SYSTEM_VM_THRESHOLD } from '../../src/jit/engine.js';
import { NullNetBackend } from '../../src/devices/virtio/net-backend.js';
import type { BlockBackend } from '../../src/devices/virtio/block-backend.js';
import { VirtioBlk } from '../../src/devices/virtio/blk.js';
import { VirtioNet } from '../../src/devices/virtio/net.js';
import { VirtioRng } from '../../src/devices/virtio/rng.js';
import { i, u, s, j } from '../helpers/asm.js';

// ---- lifecycle ----

const STATES: VmState[] = ['created', 'running', 'paused', 'shutdown'];
const ALLOWED = new Set(['created>running', 'created>paused', 'created>shutdown', 'running>paused', 'running>shutdown', 'paused>running', 'paused>shutdown']);

/** A lifecycle walked to `state` along allowed transitions. */
function at(state: VmState): VmLifecycle {
  const l = new VmLifecycle();
  const path: Record<VmState, VmState[]> = { created: [], running: ['running'], paused: ['running', 'paused'], shutdown: ['shutdown'] };
  for (const st of path[state]) l.transition(st);
  assert.equal(l.state, state);
  return l;
}

test('lifecycle: every allowed transition succeeds, every other one throws a VmStateError naming both states', () => {
  assert.equal(new VmLifecycle().state, 'created');
  for (const from of STATES) {
    for (const to of STATES) {
      const l = at(from), ok = ALLOWED.has(`${from}>${to}`);
      assert.equal(l.can(to), ok, `${from} -> ${to}`);
      assert.equal(VM_TRANSITIONS[from].includes(to), ok, `table ${from} -> ${to}`);
      if (ok) {
        l.transition(to);
        assert.equal(l.state, to);
      } else {
        assert.throws(() => l.transition(to, 'do it'), (e: unknown) => {
          assert.ok(e instanceof VmStateError);
          assert.equal(e.from, from);
          assert.equal(e.to, to);
          assert.match(e.message, new RegExp(`^cannot do it: the VM is ${from} `));
          assert.doesNotMatch(e.message, /\n/);
          return true;
        }, `${from} -> ${to}`);
        assert.equal(l.state, from, 'a refused transition changes nothing');
      }
    }
  }
});

// ---- fake host services and a tiny kernel ----

/** A RISC-V Linux Image (boot-image-header.rst) whose code writes FINISHER_FAIL | status << 16 to the virt test device. */
function finisherImage(status: number): Uint8Array {
  const img = new Uint8Array(4096), dv = new DataView(img.buffer);
  dv.setInt32(0, j(0, 64), true); // code0: jump over the header
  dv.setUint32(8, 0x200000, true); // text_offset: 2 MiB
  dv.setUint32(16, img.length, true); // image_size
  img.set([0x52, 0x53, 0x43, 0x05], 56); // magic2 "RSC\x05"
  const code = [
    u(0x37, 5, 0x100), // lui t0, 0x100: t0 = 0x100000, the sifive_test device (VIRT_TEST_BASE)
    u(0x37, 6, (status << 4) | 3), // lui t1: t1 = status << 16 | 0x3000
    i(0x13, 0, 6, 6, 0x333), // addi t1, t1, 0x333: FINISHER_FAIL (0x3333) with the status in bits 31:16
    s(0x23, 2, 5, 6, 0), // sw t1, 0(t0)
    j(0, 0), // j .
  ];
  code.forEach((w, k) => dv.setInt32(64 + 4 * k, w, true));
  return img;
}

/** An in-memory disk. */
class MemDisk implements BlockBackend {
  readonly data = new Uint8Array(1 << 20);
  readonly size = this.data.length;
  readonly readOnly = false;
  closed = false;
  read(o: number, b: Uint8Array): void { b.set(this.data.subarray(o, o + b.length)); }
  write(o: number, d: Uint8Array): void { this.data.set(d, o); }
  flush(): void {}
  discard(): void {}
  writeZeroes(o: number, l: number): void { this.data.fill(0, o, o + l); }
  close(): void { this.closed = true; }
}

/** A console that records output and never has input; waits are short timers. */
class FakeConsole implements VmConsole {
  onInput: (bytes: Uint8Array) => void = () => {};
  onQuit: () => void = () => {};
  tap: (bytes: Uint8Array) => void = () => {};
  out: number[] = [];
  started = 0; stopped = 0;
  write(bytes: Uint8Array): void { this.tap(bytes); this.out.push(...bytes); }
  start(): void { this.started++; }
  stop(): void { this.stopped++; }
  wait(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, Math.min(ms, 5))); }
  yield(): Promise<void> { return new Promise((r) => setImmediate(r)); }
  now(): number { return performance.now(); }
  wake(): void {}
}

/** Fake services: files from a table, disks and netdevs in memory, a QMP listener that records its monitor. */
function fakeServices(files: Record<string, Uint8Array>): VmServices & { console: FakeConsole; disks: MemDisk[]; nets: NullNetBackend[]; monitors: QmpMonitor[] } {
  const disks: MemDisk[] = [], nets: NullNetBackend[] = [], monitors: QmpMonitor[] = [];
  return {
    console: new FakeConsole(), disks, nets, monitors,
    clock: { monotonicNs: () => performance.now() * 1e6, realtimeNs: () => Date.now() * 1e6 },
    readFile: (p) => { const d = files[p]; if (!d) throw new HostFileError(p, 'no such file'); return d; },
    defaultGuest: () => Promise.reject(new Error('no default guest in this test')),
    openDisk: () => { const d = new MemDisk(); disks.push(d); return { backend: d, clusterSize: null }; },
    openNetdev: () => { const n = new NullNetBackend(); nets.push(n); return n; },
    listenQmp: (_a, m): Promise<QmpListener> => {
      monitors.push(m);
      return Promise.resolve({ waitForClient: () => Promise.resolve(), close: () => Promise.resolve() });
    },
  };
}

const FILES = { '/k/Image': finisherImage(7) };
const ARGS = ['-m', '64M', '-kernel', '/k/Image', '-drive', 'file=/d/disk.img,format=raw', '-netdev', 'user,id=n0',
  '-device', 'virtio-net-device,netdev=n0', '-device', 'virtio-rng-device'];

// ---- QEMU options -> VmConfig ----

test('parseRunArgs: defaults, and QEMU options become the typed VmConfig', () => {
  const base: JitConfig = { enabled: true, threshold: null, cacheBytes: 1 << 20 };
  const d = parseRunArgs([], base);
  assert.deepEqual({ ...d, dev: undefined }, {
    machine: 'virt', memBytes: 512 * 1024 * 1024, smp: 1, bios: 'default', mmu: 'sv39', dev: undefined, jit: base,
  });
  assert.notEqual(d.jit, base, 'the config holds its own copy of the JIT settings');
  assert.deepEqual(d.dev, { devices: [], drives: [], netdevs: [] });

  const c = parseRunArgs(['-M', 'spike', '-m', '1G', '-smp', 'cpus=4', '-kernel', 'K', '-initrd', 'I', '-append', 'console=hvc0',
    '-bios', 'none', '-mmu', 'sv48', '-mirror', 'http://m/', '-nographic', '-serial', 'mon:stdio',
    '-qmp', 'unix:/tmp/q.sock,server=on,wait=off', '--jit=off', '--jit-threshold', '0'], base);
  assert.equal(c.machine, 'spike');
  assert.equal(c.memBytes, 1024 ** 3);
  assert.equal(c.smp, 4);
  assert.deepEqual([c.kernel, c.initrd, c.append, c.bios, c.mmu, c.mirror], ['K', 'I', 'console=hvc0', 'none', 'sv48', 'http://m/']);
  assert.deepEqual(c.qmp, { kind: 'unix', path: '/tmp/q.sock', wait: false });
  assert.deepEqual(c.jit, { enabled: false, threshold: 0, cacheBytes: 1 << 20 });
  assert.deepEqual(base, { enabled: true, threshold: null, cacheBytes: 1 << 20 }, '--jit flags change this VM only');

  const v = parseRunArgs(ARGS, base);
  assert.deepEqual(v.dev.drives.map((o) => [o.props.get('file'), o.props.get('format')]), [['/d/disk.img', 'raw']]);
  assert.deepEqual(v.dev.devices.map((o) => o.type), ['virtio-net-device', 'virtio-rng-device']);
  assert.deepEqual(v.dev.netdevs.map((o) => [o.type, o.props.get('id')]), [['user', 'n0']]);
});

test('parseRunArgs: usage errors are one-line UsageErrors', () => {
  const bad: [string[], RegExp][] = [
    [['-M', 'sifive_u'], /unsupported machine type 'sifive_u'/],
    [['-m', '8M'], /invalid -m '8M'/],
    [['-smp', '9'], /invalid -smp '9'/],
    [['-kernel'], /option -kernel needs an argument/],
    [['-mmu', 'sv32'], /invalid -mmu 'sv32'/],
    [['-M', 'spike'], /-M spike needs -kernel/],
    [['--jit=maybe'], /--jit maybe: expected on or off/],
    [['--jit-threshold=-1'], /--jit-threshold -1: expected a whole number/],
    [['-device', 'x,a=1,a=2'], /property 'a' given twice/],
    [['-qmp', 'stdio'], /./],
    [['-frobnicate'], /unknown option '-frobnicate'/],
  ];
  for (const [argv, re] of bad) {
    assert.throws(() => parseRunArgs(argv), (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'), argv.join(' '));
  }
});

test('parseRunArgs starts from a copy of the process default JIT settings (TSVM_JIT)', () => {
  const saved = defaultJitConfig();
  try {
    setDefaultJitConfig({ enabled: false, threshold: 5, cacheBytes: 123 });
    const c = parseRunArgs([]);
    assert.deepEqual(c.jit, { enabled: false, threshold: 5, cacheBytes: 123 });
    setDefaultJitConfig(BUILTIN_JIT_CONFIG);
    assert.deepEqual(c.jit, { enabled: false, threshold: 5, cacheBytes: 123 }, 'a config keeps its settings');
  } finally {
    setDefaultJitConfig(saved);
  }
});

// ---- buildVm ----

test('two VMs built from one config in one process share no JIT engine, device or build state, and both run', async () => {
  const config = parseRunArgs(ARGS, { enabled: true, threshold: 0, cacheBytes: 8 << 20 });
  const sa = fakeServices(FILES), sb = fakeServices(FILES);
  const a = await buildVm(config, sa);
  const b = await buildVm(config, sb); // the same -drive and -netdev option objects: each build claims them anew
  const ba = a.vm.board, bb = b.vm.board;
  assert.notEqual(ba, bb);
  assert.notEqual(ba.ram, bb.ram);
  assert.notEqual(ba.jit, bb.jit);
  assert.notEqual(ba.jit.config, config.jit, 'each VM holds its own copy of the JIT settings');
  assert.deepEqual(ba.jit.config, config.jit);
  assert.equal(ba.jit.defaultThreshold, SYSTEM_VM_THRESHOLD);
  const ja = ba.jit.for(ba.ram), jb = bb.jit.for(bb.ram);
  assert.ok(ja && jb);
  assert.notEqual(ja, jb, 'distinct JIT engines');
  assert.equal(ba.jit.for(ba.ram), ja, 'one engine per VM RAM');
  assert.equal(ja.opts.threshold, 0);
  for (const [x, y] of [[sa, a], [sb, b]] as const) {
    assert.equal(x.disks.length, 1);
    assert.equal(x.nets.length, 1);
    assert.deepEqual(y.vm.board.virtio.map((t) => t.device.constructor), [VirtioBlk, VirtioNet, VirtioRng]);
  }
  ba.virtio.forEach((t, k) => assert.notEqual(t.device, bb.virtio[k]!.device, `device ${k}`));
  assert.equal(a.vm.state, 'created');

  const [ra, rb] = await Promise.all([a.run(), b.run()]);
  assert.deepEqual(ra, { status: 7, reason: 'poweroff' });
  assert.deepEqual(rb, { status: 7, reason: 'poweroff' });
  assert.equal(a.vm.state, 'shutdown');
  assert.equal(b.vm.state, 'shutdown');
  assert.ok(sa.disks[0]!.closed && sb.disks[0]!.closed, 'each run released its own disk');
  assert.ok(sa.console.started === 1 && sa.console.stopped === 1);
});

test('buildVm: errors name the file or option, and what the build opened is released', async () => {
  const sv = fakeServices({});
  await assert.rejects(buildVm(parseRunArgs(['-kernel', '/nope', '-drive', 'file=/d.img']), sv), (e: unknown) => e instanceof BootError && e.message === 'kernel /nope: no such file');
  assert.ok(sv.disks[0]!.closed);
  await assert.rejects(buildVm(parseRunArgs(['-kernel', '/k/Image', '-device', 'virtio-gpu']), fakeServices(FILES)), OptsError);
  const bad = { ...fakeServices(FILES), listenQmp: (): Promise<QmpListener> => Promise.reject(new Error('-qmp: cannot listen on x: EACCES')) };
  await assert.rejects(buildVm(parseRunArgs(['-kernel', '/k/Image', '-drive', 'file=/d.img', '-qmp', 'tcp:127.0.0.1:1,server=on,wait=off']), bad),
    (e: unknown) => e instanceof VmSetupError && e.message === '-qmp: cannot listen on x: EACCES');
  assert.ok(bad.disks[0]!.closed);
});

// ---- QMP drives the lifecycle ----

/** A QMP session on `m` over an in-memory connection, already in command mode. */
function session(m: QmpMonitor): { cmd: (c: string) => Record<string, unknown>; events: string[] } {
  const replies: Record<string, unknown>[] = [], events: string[] = [];
  let handler: (line: string) => void = () => {};
  const conn: QmpConnection = {
    send: (line) => {
      const v = JSON.parse(line) as Record<string, unknown>;
      if ('event' in v) events.push(v['event'] as string); else replies.push(v);
    },
    onLine: (h) => { handler = h; },
    onClose: () => {},
    close: () => {},
  };
  m.attach(conn);
  const cmd = (c: string): Record<string, unknown> => { handler(JSON.stringify({ execute: c })); return replies.pop()!; };
  cmd('qmp_capabilities');
  return { cmd, events };
}

test('QMP stop/cont/quit/query-status read and drive the lifecycle', async () => {
  const sv = fakeServices(FILES);
  const built = await buildVm(parseRunArgs(['-kernel', '/k/Image', '-qmp', 'unix:/tmp/never.sock,server=on,wait=off']), sv);
  const vm = built.vm, { cmd, events } = session(sv.monitors[0]!);
  assert.deepEqual(cmd('query-status')['return'], { running: true, status: 'running' }); // created: reported as running, as QEMU without -S
  cmd('stop');
  assert.equal(vm.state, 'paused');
  assert.deepEqual(cmd('query-status')['return'], { running: false, status: 'paused' });
  cmd('stop'); // already paused: no transition, no error
  assert.equal(vm.state, 'paused');
  cmd('cont');
  assert.equal(vm.state, 'running');
  cmd('quit');
  assert.equal(vm.state, 'shutdown');
  assert.deepEqual(cmd('query-status')['return'], { running: false, status: 'shutdown' });
  assert.match(JSON.stringify(cmd('cont')), /cannot be resumed/);
  assert.deepEqual(events, ['STOP', 'RESUME']);
  assert.throws(() => vm.resume(), VmStateError);
  assert.throws(() => vm.pause(), VmStateError);
  vm.stop(); // ending an ended VM is harmless (Ctrl-A x after quit)
  assert.deepEqual(await built.run(), { status: 0, reason: 'stopped' });
});

test('Vm.run: a VM paused before it started stays paused until resumed; run twice is refused', async () => {
  const sv = fakeServices(FILES);
  const board = new Board({ kind: 'virt', ramBytes: 32 << 20, harts: 1, console: sv.console, clock: sv.clock, jit: { enabled: false, threshold: null, cacheBytes: 0 } });
  assert.equal(board.jit.for(board.ram), null, 'the JIT off for this VM only');
  const vm = new Vm(board, sv.console, true);
  vm.pause();
  const done = vm.run();
  await assert.rejects(vm.run(), /already been run/);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(vm.state, 'paused');
  vm.stop();
  assert.deepEqual(await done, { status: 0, reason: 'stopped' });
});

test('Vm.external: host work while the run loop idles leaves idle for its length (the host may be remapping an idle VM); otherwise it is a plain call', async () => {
  const sv = fakeServices(FILES);
  const board = new Board({ kind: 'virt', ramBytes: 32 << 20, harts: 1, console: sv.console, clock: sv.clock, jit: { enabled: false, threshold: null, cacheBytes: 0 } });
  const vm = new Vm(board, sv.console, true);
  const events: (boolean | string)[] = [];
  vm.idleHook = (idle) => { events.push(idle); };
  assert.equal(vm.external(() => 'before'), 'before');
  assert.equal(events.length, 0, 'not idle yet: no hook call');
  vm.pause(); // a paused VM's loop waits idle
  const done = vm.run();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(events.at(-1), true, 'the loop is idle');
  const n = events.length;
  const got = vm.external(() => { events.push('work'); return 42; });
  assert.equal(got, 42);
  assert.deepEqual(events.slice(n), [false, 'work', true], 'left idle for the work, back to idle after');
  assert.throws(() => vm.external(() => { throw new Error('device fault'); }), /device fault/);
  assert.equal(events.at(-1), true, 'back to idle after a throw too');
  vm.stop();
  await done;
});
