/**
 * A FUSE client for tests of the virtio-fs device: it encodes requests
 * (fuse_in_header + arguments, include/uapi/linux/fuse.h) onto the
 * request queue through the fake virtio driver and decodes the replies,
 * so each opcode can be exercised without booting a kernel.
 */
import assert from 'node:assert/strict';
import { FakeDriver } from './virtio-driver.js';
import type { VirtioFs } from '../../src/devices/virtio/fs.js';

/** A decoded reply: -errno (0 for success), the payload and the used length. */
export interface FuseReply { error: number; body: Uint8Array; dv: DataView; used: number }

/** Concatenates byte arrays. */
export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Little-endian u32 fields. */
export function u32(...vs: number[]): Uint8Array {
  const b = new Uint8Array(4 * vs.length), dv = new DataView(b.buffer);
  vs.forEach((v, i) => dv.setUint32(4 * i, v >>> 0, true));
  return b;
}

/** Little-endian u64 fields. */
export function u64(...vs: (number | bigint)[]): Uint8Array {
  const b = new Uint8Array(8 * vs.length), dv = new DataView(b.buffer);
  vs.forEach((v, i) => dv.setBigUint64(8 * i, BigInt(v), true));
  return b;
}

/** A NUL-terminated name. */
export function str(s: string): Uint8Array { return cat(new TextEncoder().encode(s), new Uint8Array(1)); }

/** The fake driver plus FUSE framing. */
export class FuseDriver {
  readonly drv: FakeDriver;
  private unique = 1;
  uid = process.getuid?.() ?? 0;
  gid = process.getgid?.() ?? 0;

  constructor(readonly dev: VirtioFs, ramBytes = 64 * 1024 * 1024) {
    this.drv = new FakeDriver(dev, ramBytes);
    this.drv.init(null, 64);
  }

  /** The raw request bytes of `op` on `nodeid` with `args`. */
  encode(op: number, nodeid: number | bigint, args: Uint8Array, len?: number): Uint8Array {
    const h = new Uint8Array(40), dv = new DataView(h.buffer);
    dv.setUint32(0, len ?? 40 + args.length, true);
    dv.setUint32(4, op, true);
    dv.setBigUint64(8, BigInt(this.unique++), true);
    dv.setBigUint64(16, BigInt(nodeid), true);
    dv.setUint32(24, this.uid, true);
    dv.setUint32(28, this.gid, true);
    dv.setUint32(32, 4242, true); // pid
    return cat(h, args);
  }

  /** Sends one request on queue `q` with `outLen` bytes of reply room; returns the reply. */
  call(op: number, nodeid: number | bigint, args: Uint8Array = new Uint8Array(0), outLen = 8192, q = 1): FuseReply {
    const req = this.encode(op, nodeid, args);
    const { head, writeAddrs } = this.drv.submit(q, [{ data: req }, { writeLen: 16 + outLen }]);
    const used = this.drv.used(q);
    assert.equal(used.length, 1, 'one used element per request');
    assert.equal(used[0]!.id, head);
    const out = this.drv.read(writeAddrs[0]!, used[0]!.len);
    const odv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    assert.ok(used[0]!.len >= 16, 'reply has an out header');
    assert.equal(odv.getUint32(0, true), used[0]!.len, 'out header len matches the used length');
    assert.equal(odv.getBigUint64(8, true), new DataView(req.buffer).getBigUint64(8, true), 'unique echoed');
    const body = out.slice(16);
    return { error: odv.getInt32(4, true), body, dv: new DataView(body.buffer), used: used[0]!.len };
  }

  /** Sends a request that gets no reply (FORGET, BATCH_FORGET) on the hiprio queue; returns the used length. */
  send(op: number, nodeid: number, args: Uint8Array): number {
    this.drv.submit(0, [{ data: this.encode(op, nodeid, args) }]);
    const used = this.drv.used(0);
    assert.equal(used.length, 1);
    return used[0]!.len;
  }

  /** Like call, asserting success. */
  ok(op: number, nodeid: number | bigint, args?: Uint8Array, outLen?: number): FuseReply {
    const r = this.call(op, nodeid, args, outLen);
    assert.equal(r.error, 0, `opcode ${op} failed with ${r.error}`);
    return r;
  }
}
