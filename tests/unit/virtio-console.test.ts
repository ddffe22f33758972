/**
 * virtio-console (one port, no MULTIPORT) against the fake driver: guest
 * output on the transmit queue reaches the host sink; host input fills the
 * driver's receive buffers (immediately, or once buffers arrive), is
 * bounded while nobody reads, and wakes the run loop; F_SIZE and
 * EMERG_WRITE; a malformed receive ring resets the device; the -device
 * factory on a host console port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeDriver } from '../helpers/virtio-driver.js';
import {
  VirtioConsole, VIRTIO_ID_CONSOLE, VIRTIO_CONSOLE_F_SIZE, VIRTIO_CONSOLE_F_MULTIPORT, VIRTIO_CONSOLE_F_EMERG_WRITE,
  CONSOLE_Q_RX, CONSOLE_Q_TX, CONSOLE_INPUT_MAX, type ConsolePort,
} from '../../src/devices/virtio/console.js';
import { STATUS_DEVICE_NEEDS_RESET, directEntry } from '../../src/devices/virtio/mmio.js';
import { buildConsole } from '../../src/vmm/dev-console.js';
import { parseQemuOpts, OptsError } from '../../src/vmm/qemu-opts.js';
import type { BuildContext } from '../../src/vmm/device-builder.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

class Sink { out = ''; write(b: Uint8Array): void { this.out += dec(b); } }

function setup(size: { cols: number; rows: number } | null = null): { dev: VirtioConsole; drv: FakeDriver; sink: Sink; wakes: { n: number } } {
  const sink = new Sink(), wakes = { n: 0 };
  const dev = new VirtioConsole(sink, { size, wake: () => { wakes.n++; } });
  return { dev, drv: new FakeDriver(dev), sink, wakes };
}

test('console: device ID 3, two queues, no MULTIPORT; EMERG_WRITE always, SIZE only with a known size', () => {
  const { dev, drv } = setup();
  assert.equal(drv.reg(0x008), VIRTIO_ID_CONSOLE);
  assert.equal(dev.numQueues, 2);
  drv.setReg(0x14, 0);
  const f = drv.reg(0x10);
  assert.equal(f & (1 << VIRTIO_CONSOLE_F_MULTIPORT), 0);
  assert.equal(f & (1 << VIRTIO_CONSOLE_F_SIZE), 0);
  assert.ok(f & (1 << VIRTIO_CONSOLE_F_EMERG_WRITE));
  const sized = setup({ cols: 132, rows: 43 });
  sized.drv.setReg(0x14, 0);
  assert.ok(sized.drv.reg(0x10) & (1 << VIRTIO_CONSOLE_F_SIZE));
  assert.equal(sized.drv.reg(0x100) & 0xffff, 132, 'cols (§5.3.4)');
  assert.equal(sized.drv.reg(0x100) >>> 16, 43, 'rows');
  sized.drv.init();
  sized.drv.setReg(0x64, 3);
  sized.dev.resize(100, 30);
  assert.equal(sized.drv.reg(0x100), (30 << 16) | 100);
  assert.ok(sized.drv.reg(0x60) & 2, 'a resize is a configuration change');
});

test('guest output on the transmit queue goes to the host; buffers come back used', () => {
  const { dev, drv, sink } = setup();
  drv.init();
  drv.submit(CONSOLE_Q_TX, [{ data: enc('hello ') }, { data: enc('world\n') }]);
  drv.submit(CONSOLE_Q_TX, [{ data: enc('second') }]);
  assert.equal(sink.out, 'hello world\nsecond');
  assert.deepEqual(drv.used(CONSOLE_Q_TX).map((u) => u.len), [0, 0]);
  assert.equal(dev.bytesOut, 18);
  drv.setReg(0x108, 0x21); // emerg_wr
  assert.equal(sink.out.at(-1), '!');
});

test('host input fills posted receive buffers at once, across buffer boundaries, and wakes the run loop', () => {
  const { dev, drv, wakes } = setup();
  drv.init();
  const a = drv.submit(CONSOLE_Q_RX, [{ writeLen: 4 }]), b = drv.submit(CONSOLE_Q_RX, [{ writeLen: 64 }]);
  drv.setReg(0x64, 3);
  assert.equal(dev.pushInput(enc('ls -l\n')), 6);
  const used = drv.used(CONSOLE_Q_RX);
  assert.deepEqual(used, [{ id: a.head, len: 4 }, { id: b.head, len: 2 }]);
  assert.equal(dec(drv.read(a.writeAddrs[0]!, 4)) + dec(drv.read(b.writeAddrs[0]!, 2)), 'ls -l\n');
  assert.ok(drv.reg(0x60) & 1, 'used-buffer interrupt');
  assert.ok(wakes.n > 0);
  assert.equal(dev.pendingInput, 0);
});

test('input typed before the driver (or before buffers) waits, bounded; it is delivered when buffers arrive', () => {
  const { dev, drv } = setup();
  dev.pushInput(enc('early '));
  drv.init();
  dev.pushInput(enc('typing'));
  assert.equal(dev.pendingInput, 12);
  const r = drv.submit(CONSOLE_Q_RX, [{ writeLen: 100 }]);
  assert.deepEqual(drv.used(CONSOLE_Q_RX), [{ id: r.head, len: 12 }]);
  assert.equal(dec(drv.read(r.writeAddrs[0]!, 12)), 'early typing');
  const big = new Uint8Array(CONSOLE_INPUT_MAX + 10);
  assert.equal(dev.pushInput(big), CONSOLE_INPUT_MAX);
  assert.equal(dev.bytesDropped, 10);
});

test('a receive descriptor outside guest RAM puts the console into DEVICE_NEEDS_RESET', () => {
  const { dev, drv } = setup();
  drv.init();
  drv.writeDesc(CONSOLE_Q_RX, 0, 0x1000, 16, 2, 0); // below RAM
  drv.publish(CONSOLE_Q_RX, 0, false);
  dev.pushInput(enc('x'));
  assert.ok(drv.status & STATUS_DEVICE_NEEDS_RESET);
  assert.match(drv.transport.lastError, /outside guest RAM/);
  assert.ok(drv.canariesIntact());
});

test('-device virtio-console-device[,chardev=stdio] builds on the host console port', () => {
  const listeners: ((b: Uint8Array) => void)[] = [];
  const out: string[] = [];
  const port: ConsolePort = {
    write: (b) => { out.push(dec(b)); },
    onInput: (l) => { listeners.push(l); return () => { listeners.splice(listeners.indexOf(l), 1); }; },
  };
  const ctx = {
    opts: { devices: [], drives: [], netdevs: [] }, cleanups: [] as (() => void)[], wake: () => {}, enter: directEntry, console: port,
    drive: () => { throw new Error('unused'); }, netdev: () => { throw new Error('unused'); },
    services: { openDisk: () => { throw new Error('unused'); }, openNetdev: () => { throw new Error('unused'); } },
    attachedDrives: new Set(), claimedNetdevs: new Set(),
  } satisfies BuildContext & { console: ConsolePort };
  const dev = buildConsole(parseQemuOpts('virtio-console-device,chardev=stdio,id=con0'), ctx);
  assert.equal(listeners.length, 1);
  listeners[0]!(enc('abc'));
  assert.equal(dev.pendingInput, 3);
  for (const c of ctx.cleanups) c();
  assert.equal(listeners.length, 0, 'the cleanup unsubscribes');
  assert.throws(() => buildConsole(parseQemuOpts('virtio-console-device,chardev=serial0'), ctx), OptsError);
  assert.throws(() => buildConsole(parseQemuOpts('virtio-console-device,bogus=1'), ctx), OptsError);
  const noPort = { ...ctx, console: undefined };
  assert.throws(() => buildConsole(parseQemuOpts('virtio-console-device'), noPort), /host console is not available/);
});

test('flow control: a blocked sink leaves transmit buffers queued until resumeOutput(); inputDrained fires when the guest has taken all input', () => {
  let blocked = true, drainedCalls = 0;
  const sink = { out: '', write(b: Uint8Array): void { this.out += dec(b); }, blocked: () => blocked };
  const dev = new VirtioConsole(sink, { inputDrained: () => { drainedCalls++; } });
  const drv = new FakeDriver(dev);
  drv.init();
  drv.submit(CONSOLE_Q_TX, [{ data: enc('held') }]);
  assert.equal(sink.out, '', 'nothing leaves while the sink is blocked');
  assert.deepEqual(drv.used(CONSOLE_Q_TX), [], 'the buffer stays with the device');
  blocked = false;
  dev.resumeOutput();
  assert.equal(sink.out, 'held');
  assert.equal(drv.used(CONSOLE_Q_TX).length, 1);
  dev.pushInput(enc('abcdef'));
  drv.submit(CONSOLE_Q_RX, [{ writeLen: 4 }]);
  assert.equal(drainedCalls, 0, 'two bytes still wait');
  drv.submit(CONSOLE_Q_RX, [{ writeLen: 4 }]);
  assert.equal(drainedCalls, 1);
});

test('-device virtio-console-device,chardev=ID uses the -chardev of that id: stdio is the host console, a socket comes from the services, each has one device', () => {
  const mkPort = (): ConsolePort & { close(): void; closed: number; paused: boolean[]; input: ((b: Uint8Array) => void)[] } => {
    const p = {
      closed: 0, paused: [] as boolean[], input: [] as ((b: Uint8Array) => void)[],
      write: (): void => {}, onInput: (l: (b: Uint8Array) => void): (() => void) => { p.input.push(l); return () => {}; },
      close(): void { p.closed++; }, pauseInput(x: boolean): void { p.paused.push(x); },
    };
    return p;
  };
  const host = mkPort(), sock = mkPort();
  const opened: string[] = [];
  const ctx = {
    opts: { devices: [], drives: [], netdevs: [], chardevs: [parseQemuOpts('stdio,id=con'), parseQemuOpts('socket,id=ag,path=/x,server=on,wait=off')] },
    cleanups: [] as (() => void)[], wake: () => {}, enter: directEntry, console: host,
    drive: () => { throw new Error('unused'); }, netdev: () => { throw new Error('unused'); },
    services: {
      openDisk: () => { throw new Error('unused'); }, openNetdev: () => { throw new Error('unused'); },
      openChardev: (o: { text: string }) => { opened.push(o.text); return sock; },
    },
    attachedDrives: new Set(), claimedNetdevs: new Set(),
  } satisfies BuildContext;
  buildConsole(parseQemuOpts('virtio-console-device,chardev=con'), ctx);
  const dev = buildConsole(parseQemuOpts('virtio-console-device,chardev=ag'), ctx);
  assert.deepEqual(opened, ['socket,id=ag,path=/x,server=on,wait=off']);
  assert.throws(() => buildConsole(parseQemuOpts('virtio-console-device,chardev=ag'), ctx), /already used by another device/);
  assert.throws(() => buildConsole(parseQemuOpts('virtio-console-device,chardev=nope'), ctx), /no -chardev with id 'nope'/);
  // Input flow control: the port pauses while the guest has not taken a chunk, and resumes once it has.
  const drv = new FakeDriver(dev);
  drv.init();
  sock.input[0]!(enc('abcdef'));
  assert.deepEqual(sock.paused, [true]);
  drv.submit(CONSOLE_Q_RX, [{ writeLen: 16 }]);
  assert.deepEqual(sock.paused, [true, false]);
  assert.equal(dev.pendingInput, 0);
  for (const c of ctx.cleanups) c();
  assert.equal(sock.closed, 1, 'the socket chardev is closed with the VM');
  const noServices = { ...ctx, claimedChardevs: new Set<string>(), services: { ...ctx.services, openChardev: undefined } };
  assert.throws(() => buildConsole(parseQemuOpts('virtio-console-device,chardev=ag'), noServices), /offers no chardev backends/);
});
