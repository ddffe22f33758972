/**
 * The container network's switch (src/host/net-switch.ts) with three ports
 * speaking QEMU's stream framing over its unix socket: a broadcast floods
 * every other port, a frame to a learned MAC goes to its port only, a frame
 * to an unknown MAC floods, a port that leaves is forgotten, and a port
 * that breaks the framing is closed while the others carry on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NetSwitch } from '../../src/host/net-switch.js';
import { FrameDecoder, encodeFrame } from '../../src/host/net-socket.js';

/** One switch port as a VM's netdev sees it: frames out, frames in. */
interface Client { sock: net.Socket; got: Uint8Array[] }

async function connect(p: string): Promise<Client> {
  const sock = net.connect(p);
  const c: Client = { sock, got: [] };
  const dec = new FrameDecoder((f) => c.got.push(Uint8Array.from(f)));
  sock.on('data', (d: Buffer) => dec.push(new Uint8Array(d)));
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  return c;
}

/** An Ethernet frame from MAC ...:0s to MAC ...:0d (0xff: broadcast) with a one-byte payload. */
function frame(d: number, s: number, payload: number): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(d === 0xff ? 0xff : 0, 0, 6);
  if (d !== 0xff) { f[0] = 0x02; f[5] = d; }
  f[6] = 0x02; f[11] = s;
  f[12] = 0x08; f[13] = 0x00;
  f[14] = payload;
  return f;
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));
const payloads = (c: Client): number[] => c.got.map((f) => f[14]!);

test('the switch floods broadcasts and unknown destinations, sends known ones to their port only, forgets ports that leave, closes a port that breaks the framing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-sw-'));
  const sw = await NetSwitch.listen(path.join(dir, 'switch'));
  try {
    assert.equal(fs.statSync(sw.path).mode & 0o777, 0o600, 'the socket is its owner\'s only');
    const [a, b, c] = [await connect(sw.path), await connect(sw.path), await connect(sw.path)];
    await settle();
    assert.equal(sw.portCount, 3);
    a.sock.write(encodeFrame(frame(0xff, 1, 10))); // broadcast from A: B and C; the switch learns A
    await settle();
    assert.deepEqual([payloads(a), payloads(b), payloads(c)], [[], [10], [10]]);
    b.sock.write(encodeFrame(frame(1, 2, 11))); // B to A (known): A only; learns B
    await settle();
    assert.deepEqual([payloads(a), payloads(b), payloads(c)], [[11], [10], [10]]);
    a.sock.write(encodeFrame(frame(2, 1, 12))); // A to B (known): B only
    a.sock.write(encodeFrame(frame(3, 1, 13))); // A to C (not yet learned): flooded to B and C
    await settle();
    assert.deepEqual([payloads(a), payloads(b), payloads(c)], [[11], [10, 12, 13], [10, 13]]);
    b.sock.destroy(); // B leaves: its MAC is forgotten, so a frame to it floods (to C, the one port left besides A)
    await settle();
    a.sock.write(encodeFrame(frame(2, 1, 14)));
    await settle();
    assert.deepEqual(payloads(c), [10, 13, 14]);
    // C sends a length beyond any Ethernet frame: the switch closes C; A still reaches the switch.
    const closed = new Promise<void>((resolve) => c.sock.once('close', () => resolve()));
    c.sock.write(Uint8Array.from([0x7f, 0xff, 0xff, 0xff]));
    await closed;
    await settle();
    assert.equal(sw.portCount, 1);
    assert.ok(!a.sock.destroyed);
    a.sock.destroy();
  } finally {
    await sw.close();
    assert.equal(fs.existsSync(sw.path), false, 'close removes the socket file');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
