/**
 * The container stream's framing (attach, exec, logs): Docker's
 * multiplexed stream format (Engine API "Attach to a container": an 8-byte
 * header, byte 0 the stream — 1 stdout, 2 stderr — bytes 4..7 the payload
 * length, big-endian), plus stream 3 from tsvm: the container's exit, a
 * JSON payload {"StatusCode": N}, after which the host closes the stream.
 */

/** Stream numbers of the header's first byte. */
export const STREAM_STDOUT = 1;
/** stderr. */
export const STREAM_STDERR = 2;
/** tsvm: the exit status (JSON {StatusCode}). */
export const STREAM_EXIT = 3;
/** The header's size (Engine API: STREAM_TYPE, 0, 0, 0, SIZE1..SIZE4). */
const HEADER = 8;

/** The upgrade protocol name of the attach and exec streams. */
export const ATTACH_PROTOCOL = 'tsvm-attach';

/** One frame. */
export function frame(stream: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(HEADER + payload.length);
  b[0] = stream;
  b.writeUInt32BE(payload.length, 4);
  b.set(payload, HEADER);
  return b;
}

/** The exit frame for status `code`. */
export function exitFrame(code: number): Buffer {
  return frame(STREAM_EXIT, Buffer.from(JSON.stringify({ StatusCode: code })));
}

/** Splits a byte stream into frames, calling `on(stream, payload)` for each whole one. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly on: (stream: number, payload: Buffer) => void) {}

  /** Feeds bytes. */
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= HEADER) {
      const n = this.buf.readUInt32BE(4);
      if (this.buf.length < HEADER + n) break;
      const stream = this.buf[0]!;
      const payload = this.buf.subarray(HEADER, HEADER + n);
      this.buf = this.buf.subarray(HEADER + n);
      this.on(stream, payload);
    }
  }
}
