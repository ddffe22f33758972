/**
 * The guest agent's frame codec (src/host/vm-agent/frame.ts): frames and
 * START records round-trip; frames split at every byte boundary decode the
 * same; what a malicious guest can send — unknown types, nonzero flags,
 * lengths above the maximum or wrong for the type, host-only types — is an
 * AgentProtocolError, and the decoder stays failed afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AgentProtocolError, FRAME_HEADER, FRAME_MAX_PAYLOAD, FrameDecoder, FrameType, decodeReady, decodeStart, encodeFrame, encodeStart,
  readU32, u32Payload, type Frame, type StartRecord,
} from '../../src/host/vm-agent/frame.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A frame header with arbitrary fields (what a misbehaving guest could write). */
function rawHeader(type: number, flags: number, id: number, len: number): Uint8Array {
  const b = new Uint8Array(FRAME_HEADER), v = new DataView(b.buffer);
  v.setUint16(0, type, true); v.setUint16(2, flags, true); v.setUint32(4, id, true); v.setUint32(8, len, true);
  return b;
}

function decodeAll(chunks: Uint8Array[]): Frame[] {
  const frames: Frame[] = [];
  const d = new FrameDecoder((f) => frames.push({ ...f, payload: Uint8Array.from(f.payload) }));
  for (const c of chunks) d.push(c);
  return frames;
}

test('frame: header layout is u16 type, u16 flags, u32 id, u32 length, little-endian', () => {
  const f = encodeFrame(FrameType.STDOUT, 0x01020304, enc('hey'));
  assert.deepEqual([...f.subarray(0, FRAME_HEADER)], [0x83, 0, 0, 0, 4, 3, 2, 1, 3, 0, 0, 0]);
  assert.equal(new TextDecoder().decode(f.subarray(FRAME_HEADER)), 'hey');
});

test('frame: a stream of guest frames decodes the same however it is split', () => {
  const stream = Buffer.concat([
    encodeFrame(FrameType.READY, 0, Buffer.concat([u32Payload(1), u32Payload(1234), enc('box')])),
    encodeFrame(FrameType.STARTED, 7, u32Payload(42)),
    encodeFrame(FrameType.STDOUT, 7, enc('hello\n')),
    encodeFrame(FrameType.STDERR, 7, new Uint8Array(0)),
    encodeFrame(FrameType.EXIT, 7, u32Payload(137)),
  ]);
  const whole = decodeAll([stream]);
  assert.deepEqual(whole.map((f) => [f.type, f.id, f.payload.length]), [[0x81, 0, 11], [0x82, 7, 4], [0x83, 7, 6], [0x84, 7, 0], [0x85, 7, 4]]);
  assert.deepEqual(decodeReady(whole[0]!.payload), { version: 1, uptimeMs: 1234, hostname: 'box' });
  assert.equal(readU32(whole[4]!.payload), 137);
  for (let cut = 1; cut < stream.length; cut++) {
    assert.deepEqual(decodeAll([stream.subarray(0, cut), stream.subarray(cut)]), whole, `split at ${cut}`);
  }
  assert.deepEqual(decodeAll([...stream].map((b) => Uint8Array.of(b))), whole, 'byte by byte');
});

test('frame: START records round-trip (argv, env, cwd, ids, tty and size, main, PID namespace)', () => {
  const r: StartRecord = { argv: ['sh', '-c', 'echo "a b"; exit 3'], env: ['PATH=/bin', 'X=ü'], cwd: '/tmp', uid: 1000, gid: 100, tty: true, rows: 30, cols: 100, main: true };
  assert.deepEqual(decodeStart(encodeStart(r)), r);
  const r2: StartRecord = { ...r, env: [], cwd: '', tty: false, main: false };
  assert.deepEqual(decodeStart(encodeStart(r2)), r2);
  const r3: StartRecord = { ...r, pidNs: true };
  assert.deepEqual(decodeStart(encodeStart(r3)), r3, 'the PID-namespace flag');
  assert.equal(new DataView(encodeStart(r3).buffer).getUint32(0, true), 1 | 2 | 4, 'flags: tty, main, PID namespace (protocol.h START_*)');
  assert.throws(() => encodeStart({ ...r, argv: [] }), /argv is empty/);
  assert.throws(() => encodeStart({ ...r, argv: ['a\0b'] }), /NUL/);
  assert.throws(() => decodeStart(encodeStart(r).subarray(0, 30)), AgentProtocolError);
});

test('frame: what a malicious guest sends is a protocol error, and the decoder stays failed', () => {
  const bad: [string, Uint8Array, RegExp][] = [
    ['unknown type', rawHeader(0x99, 0, 1, 0), /unknown frame type 0x99/],
    ['a host-only type', rawHeader(FrameType.START, 0, 1, 0), /unknown frame type 0x2/],
    ['nonzero flags', rawHeader(FrameType.STDOUT, 1, 1, 0), /flags 0x1/],
    ['a length above the maximum', rawHeader(FrameType.STDOUT, 0, 1, FRAME_MAX_PAYLOAD + 1), /payload/],
    ['length 0xffffffff', rawHeader(FrameType.STDERR, 0, 1, 0xffffffff), /payload/],
    ['EXIT with 3 bytes', rawHeader(FrameType.EXIT, 0, 1, 3), /expected 4/],
    ['STARTED with 8 bytes', rawHeader(FrameType.STARTED, 0, 1, 8), /expected 4/],
    ['READY too short', rawHeader(FrameType.READY, 0, 0, 2), /expected 8 to/],
  ];
  for (const [what, bytes, re] of bad) {
    const frames: Frame[] = [];
    const d = new FrameDecoder((f) => frames.push(f));
    d.push(encodeFrame(FrameType.STDOUT, 1, enc('ok')));
    assert.throws(() => d.push(bytes), (e: unknown) => e instanceof AgentProtocolError && re.test(e.message), what);
    assert.throws(() => d.push(encodeFrame(FrameType.STDOUT, 1, enc('more'))), AgentProtocolError, `${what}: stays failed`);
    assert.equal(frames.length, 1, `${what}: only the good frame before it was delivered`);
  }
  // A bad header is refused as soon as it is complete, before its (claimed) payload arrives.
  const d = new FrameDecoder(() => {});
  assert.throws(() => d.push(rawHeader(FrameType.STDOUT, 0, 1, 0x7fffffff)), AgentProtocolError);
  const partial = new FrameDecoder(() => {});
  partial.push(rawHeader(FrameType.STDOUT, 0, 1, 100));
  assert.equal(partial.buffered, FRAME_HEADER, 'an incomplete good frame waits');
});

test('frame: the host refuses to encode a payload over the maximum', () => {
  assert.throws(() => encodeFrame(FrameType.STDIN, 1, new Uint8Array(FRAME_MAX_PAYLOAD + 1)), RangeError);
});
