/**
 * The agent client (src/host/vm-agent/agent-client.ts) against a scripted
 * fake guest on a unix socket: READY, START's record, stdout/stderr/exit
 * routing and stdin frames; and a malicious guest — a frame for a process
 * the host never started, an unknown type, a bad length — makes the client
 * report a protocol error, fail the pending process and close the socket,
 * without throwing out of the event loop. Also the -chardev socket
 * backend: options checked, output dropped without a client, one client at
 * a time, output held while the client's socket is backed up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentClient, signalNumber } from '../../src/host/vm-agent/agent-client.js';
import {
  AgentProtocolError, FRAME_HEADER, FrameType, decodeStart, encodeFrame, u32Payload, type Frame,
} from '../../src/host/vm-agent/frame.js';
import { SocketChardev, openChardev, CHARDEV_HIGH_WATER } from '../../src/host/chardev-socket.js';
import { parseQemuOpts, OptsError } from '../../src/vmm/qemu-opts.js';
import { parseRunArgs, UsageError } from '../../src/vmm/qemu-config.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Parses host -> guest frames (the fake guest's side; no type checks). */
function hostFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let off = 0;
  while (buf.length - off >= FRAME_HEADER) {
    const len = buf.readUInt32LE(off + 8);
    if (buf.length - off < FRAME_HEADER + len) break;
    frames.push({ type: buf.readUInt16LE(off), id: buf.readUInt32LE(off + 4), payload: buf.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len) });
    off += FRAME_HEADER + len;
  }
  return { frames, rest: buf.subarray(off) };
}

/** A fake guest listening on a fresh socket path; `onFrame` answers host frames. */
async function fakeGuest(onFrame: (f: Frame, s: net.Socket) => void): Promise<{ path: string; server: net.Server; closed: Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-agent-unit-'));
  const p = path.join(dir, 's');
  let closedResolve!: () => void;
  const closed = new Promise<void>((r) => { closedResolve = r; });
  const server = net.createServer((s) => {
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      const r = hostFrames(Buffer.concat([buf, d]));
      buf = r.rest;
      for (const f of r.frames) onFrame(f, s);
    });
    s.on('close', () => closedResolve());
    s.write(encodeFrame(FrameType.READY, 0, Buffer.concat([u32Payload(1), u32Payload(5), enc('fake')])));
  });
  await new Promise<void>((r) => server.listen(p, r));
  return { path: p, server, closed };
}

test('client: READY, START record, output routed by id, stdin frames, exit status', async () => {
  const stdin: string[] = [];
  const g = await fakeGuest((f, s) => {
    if (f.type === FrameType.START) {
      const r = decodeStart(f.payload);
      assert.deepEqual(r.argv, ['sh', '-c', 'x']);
      assert.equal(r.main, false);
      assert.equal(r.cwd, '/work');
      s.write(encodeFrame(FrameType.STARTED, f.id, u32Payload(99)));
      s.write(Buffer.concat([encodeFrame(FrameType.STDOUT, f.id, enc('out')), encodeFrame(FrameType.STDERR, f.id, enc('err'))]));
    } else if (f.type === FrameType.STDIN) {
      stdin.push(Buffer.from(f.payload).toString());
      if (f.payload.length === 0) s.write(encodeFrame(FrameType.EXIT, f.id, u32Payload(3)));
    }
  });
  const c = await AgentClient.connect(g.path, 10_000);
  assert.deepEqual(c.ready, { version: 1, uptimeMs: 5, hostname: 'fake' });
  const p = c.exec(['sh', '-c', 'x'], { cwd: '/work' });
  let out = '', err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  assert.equal(await p.pid, 99);
  p.stdin.end('in');
  assert.equal(await p.exit, 3);
  assert.deepEqual([out, err], ['out', 'err']);
  assert.deepEqual(stdin, ['in', '']);
  c.close();
  g.server.close();
});

test('client: a malicious guest gets a protocol error and a closed channel, never a crash', async () => {
  const attacks: [string, (id: number) => Uint8Array, RegExp][] = [
    ['a process the host never started', () => encodeFrame(FrameType.STDOUT, 4242, enc('x')), /process 4242/],
    ['an unknown type', (id) => encodeFrame(0x7f, id), /unknown frame type/],
    ['a huge length', (id) => { const b = encodeFrame(FrameType.STDOUT, id); new DataView(b.buffer).setUint32(8, 0xfffffff0, true); return b; }, /payload/],
    ['an EXIT with a short payload', (id) => { const b = encodeFrame(FrameType.EXIT, id, new Uint8Array(2)); return b; }, /expected 4/],
  ];
  for (const [what, frame, re] of attacks) {
    const g = await fakeGuest((f, s) => { if (f.type === FrameType.START) s.write(frame(f.id)); });
    const c = await AgentClient.connect(g.path, 10_000);
    const p = c.exec(['true']);
    await assert.rejects(p.exit, (e: unknown) => e instanceof AgentProtocolError && re.test(e.message), what);
    assert.ok(c.failure instanceof AgentProtocolError, `${what}: the client reports it`);
    await g.closed; // the client closed the socket
    g.server.close();
  }
});

test('client: signal names map to numbers; unknown names are a clear error', () => {
  assert.equal(signalNumber('SIGKILL'), 9);
  assert.equal(signalNumber('term'), 15);
  assert.equal(signalNumber(2), 2);
  assert.throws(() => signalNumber('SIGNOPE'), /unknown signal 'SIGNOPE'/);
});

test('-chardev: option checks are one-line errors', () => {
  assert.throws(() => parseRunArgs(['-chardev', 'socket,path=/tmp/x']), (e: unknown) => e instanceof UsageError && /needs id=ID/.test(e.message));
  assert.throws(() => parseRunArgs(['-chardev', 'stdio,id=a', '-chardev', 'stdio,id=a']), /already used/);
  assert.deepEqual(parseRunArgs(['-chardev', 'stdio,id=a']).dev.chardevs?.map((c) => c.type), ['stdio']);
  assert.throws(() => openChardev(parseQemuOpts('pty,id=a')), (e: unknown) => e instanceof OptsError && /unsupported chardev backend 'pty'/.test(e.message));
  assert.throws(() => openChardev(parseQemuOpts('socket,id=a,server=on,wait=off')), /needs path=PATH/);
  assert.throws(() => openChardev(parseQemuOpts('socket,id=a,path=/tmp/x,wait=off')), /only server=on/);
  assert.throws(() => openChardev(parseQemuOpts('socket,id=a,path=/tmp/x,server=on')), /only wait=off/);
  assert.throws(() => openChardev(parseQemuOpts('socket,id=a,path=/tmp/x,server=on,wait=off,bogus=1')), /unknown property 'bogus'/);
  assert.throws(() => openChardev(parseQemuOpts('socket,id=a,path=/no/such/dir/s,server=on,wait=off')), /directory \/no\/such\/dir does not exist/);
});

test('-chardev socket: output dropped (and counted) without a client, one client at a time, blocked while backed up', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-chardev-'));
  const p = path.join(dir, 's');
  const cd = new SocketChardev(p, 'test');
  await cd.listening();
  cd.write(enc('lost'));
  assert.equal(cd.droppedNoClient, 4);
  const got: string[] = [];
  cd.onInput((b) => got.push(Buffer.from(b).toString()));
  const a = net.connect(p);
  let aText = '';
  a.on('data', (d: Buffer) => { aText += d.toString(); });
  await new Promise<void>((r) => a.once('connect', () => r()));
  while (!cd.connected) await new Promise((r) => setTimeout(r, 5));
  const b = net.connect(p);
  await new Promise<void>((r) => b.once('close', () => r()));
  assert.ok(cd.connected, 'the second client was refused; the first stays');
  a.write('to guest');
  while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(got.join(''), 'to guest');
  cd.write(enc('to host'));
  while (aText.length < 7) await new Promise((r) => setTimeout(r, 5));
  assert.equal(aText, 'to host');
  // A client that does not read: output is held once the socket has CHARDEV_HIGH_WATER bytes unsent.
  a.pause();
  let drained = 0;
  cd.onDrain(() => { drained++; });
  const chunk = new Uint8Array(64 * 1024);
  for (let i = 0; i < 64 && !cd.blocked(); i++) cd.write(chunk);
  assert.ok(cd.blocked(), `blocked above ${CHARDEV_HIGH_WATER} unsent bytes`);
  a.resume();
  while (drained === 0) await new Promise((r) => setTimeout(r, 5));
  assert.ok(!cd.blocked(), 'unblocked after the drain');
  cd.close();
  assert.ok(!fs.existsSync(p), 'the socket file is removed on close');
  a.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});
