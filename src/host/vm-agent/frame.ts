/**
 * The guest agent's wire format (docs/vm-agent.md; the guest side is
 * guest/agent/protocol.h). Every frame, both ways, little-endian:
 *
 *   u16 type | u16 flags (must be 0) | u32 id | u32 length | payload
 *
 * `id` names a process the host started (0: the agent itself). The decoder
 * checks what a guest sends before anything else looks at it: a frame
 * type the host does not expect, nonzero flags, a length above
 * FRAME_MAX_PAYLOAD or a payload of the wrong size for its type is an
 * AgentProtocolError (the client then closes the channel).
 */

/** Bytes in a frame header. */
export const FRAME_HEADER = 12;
/** The largest payload either side sends or accepts (1 MiB). */
export const FRAME_MAX_PAYLOAD = 1 << 20;
/** The protocol version READY carries. */
export const AGENT_VERSION = 1;

/** Frame types (guest/agent/protocol.h): host -> guest below 0x80, guest -> host from 0x81. */
export const FrameType = {
  /** Host: asks for a READY (after reconnecting). */
  HELLO: 0x01,
  /** Host: start a process (payload: a start record). */
  START: 0x02,
  /** Host: stdin bytes; an empty payload closes stdin. */
  STDIN: 0x03,
  /** Host: new terminal size, u16 rows, u16 cols. */
  RESIZE: 0x04,
  /** Host: send u32 signal number. */
  SIGNAL: 0x05,
  /** Host: sync and power off. */
  SHUTDOWN: 0x06,
  /** Host: a spare VM's container (`tsvm.root=... tsvm.hostname=...`, kernel command line syntax); the agent answers READY, or ERROR id 0. */
  CONFIG: 0x07,
  /** Guest: u32 version, u32 ms since boot, hostname. */
  READY: 0x81,
  /** Guest: the process runs, u32 guest pid. */
  STARTED: 0x82,
  /** Guest: stdout bytes (all output with a tty). */
  STDOUT: 0x83,
  /** Guest: stderr bytes. */
  STDERR: 0x84,
  /** Guest: u32 exit status, N or 128+signal. */
  EXIT: 0x85,
  /** Guest: a one-line UTF-8 message (a start that failed; id 0: about the agent). */
  ERROR: 0x86,
} as const;

/** One frame. */
export interface Frame {
  /** A FrameType value. */
  type: number;
  /** The process id (0: the agent). */
  id: number;
  /** The payload (a view into the decoder's input: copy to keep). */
  payload: Uint8Array;
}

/** The guest broke the protocol; the message is one line. */
export class AgentProtocolError extends Error {}

/** Payload sizes the guest's frame types must have: exact, or [min, max]. */
const GUEST_SIZES: ReadonlyMap<number, readonly [number, number]> = new Map([
  [FrameType.READY, [8, 8 + 255]],
  [FrameType.STARTED, [4, 4]],
  [FrameType.STDOUT, [0, FRAME_MAX_PAYLOAD]],
  [FrameType.STDERR, [0, FRAME_MAX_PAYLOAD]],
  [FrameType.EXIT, [4, 4]],
  [FrameType.ERROR, [0, 4096]],
]);

/** Encodes one frame. */
export function encodeFrame(type: number, id: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (payload.length > FRAME_MAX_PAYLOAD) throw new RangeError(`frame payload of ${payload.length} bytes is over ${FRAME_MAX_PAYLOAD}`);
  const f = new Uint8Array(FRAME_HEADER + payload.length);
  const v = new DataView(f.buffer);
  v.setUint16(0, type, true);
  v.setUint32(4, id >>> 0, true);
  v.setUint32(8, payload.length, true);
  f.set(payload, FRAME_HEADER);
  return f;
}

/** A u32 payload. */
export function u32Payload(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

/** Reads a u32 payload. */
export function readU32(p: Uint8Array): number {
  return new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0, true);
}

/** Splits the guest's byte stream into checked frames. */
export class FrameDecoder {
  private buf = new Uint8Array(0);
  private failed: AgentProtocolError | null = null;
  private readonly onFrame: (f: Frame) => void;

  constructor(onFrame: (f: Frame) => void) { this.onFrame = onFrame; }

  /** Adds bytes; calls onFrame per complete frame; throws AgentProtocolError (and keeps failing) on a bad one. */
  push(bytes: Uint8Array): void {
    if (this.failed) throw this.failed;
    let buf = bytes;
    if (this.buf.length > 0) {
      buf = new Uint8Array(this.buf.length + bytes.length);
      buf.set(this.buf); buf.set(bytes, this.buf.length);
    }
    let off = 0;
    while (buf.length - off >= FRAME_HEADER) {
      const v = new DataView(buf.buffer, buf.byteOffset + off, FRAME_HEADER);
      const type = v.getUint16(0, true), flags = v.getUint16(2, true), id = v.getUint32(4, true), len = v.getUint32(8, true);
      const size = GUEST_SIZES.get(type);
      const bad = size === undefined ? `unknown frame type 0x${type.toString(16)}`
        : flags !== 0 ? `frame type 0x${type.toString(16)} with flags 0x${flags.toString(16)}`
          : len < size[0] || len > size[1] ? `frame type 0x${type.toString(16)} with a ${len}-byte payload (expected ${size[0] === size[1] ? size[0] : `${size[0]} to ${size[1]}`})`
            : null;
      if (bad !== null) {
        this.failed = new AgentProtocolError(`agent protocol error: ${bad}`);
        this.buf = new Uint8Array(0);
        throw this.failed;
      }
      if (buf.length - off < FRAME_HEADER + len) break;
      this.onFrame({ type, id, payload: buf.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len) });
      off += FRAME_HEADER + len;
    }
    this.buf = buf.slice(off);
  }

  /** Bytes of an incomplete frame held back. */
  get buffered(): number { return this.buf.length; }
}

/** What START asks for. */
export interface StartRecord {
  /** Program and arguments (argv[0] is looked up on the env's PATH). */
  argv: string[];
  /** Environment, `K=V` each. */
  env: string[];
  /** Working directory ('' = the agent's, /). */
  cwd: string;
  /** Numeric user id. */
  uid: number;
  /** Numeric group id. */
  gid: number;
  /** A pty as the controlling terminal (stdout carries all output). */
  tty: boolean;
  /** Initial terminal rows (with tty). */
  rows: number;
  /** Initial terminal columns (with tty). */
  cols: number;
  /** The container's main process: its exit powers the VM off. */
  main: boolean;
  /** With main: the process is PID 1 of a new PID namespace, which later processes join (the container's). */
  pidNs?: boolean;
}

/** START flag bits (guest/agent/protocol.h). */
const START_TTY = 1, START_MAIN = 2, START_PIDNS = 4, START_FIXED = 24;
const NUL = 0;

/** Encodes a START payload: u32 flags, uid, gid, u16 rows, cols, u32 argc, envc, then cwd, argv, env as NUL-terminated strings. */
export function encodeStart(r: StartRecord): Uint8Array {
  if (r.argv.length === 0) throw new RangeError('start: argv is empty');
  const enc = new TextEncoder();
  const strs = [r.cwd, ...r.argv, ...r.env].map((s) => {
    if (s.includes('\0')) throw new RangeError('start: a string contains a NUL byte');
    return enc.encode(s);
  });
  const total = START_FIXED + strs.reduce((n, s) => n + s.length + 1, 0);
  if (total > FRAME_MAX_PAYLOAD) throw new RangeError(`start: the record is ${total} bytes, over ${FRAME_MAX_PAYLOAD}`);
  const b = new Uint8Array(total), v = new DataView(b.buffer);
  v.setUint32(0, (r.tty ? START_TTY : 0) | (r.main ? START_MAIN : 0) | (r.pidNs === true ? START_PIDNS : 0), true);
  v.setUint32(4, r.uid >>> 0, true);
  v.setUint32(8, r.gid >>> 0, true);
  v.setUint16(12, r.rows, true);
  v.setUint16(14, r.cols, true);
  v.setUint32(16, r.argv.length, true);
  v.setUint32(20, r.env.length, true);
  let off = START_FIXED;
  for (const s of strs) { b.set(s, off); off += s.length; b[off++] = NUL; }
  return b;
}

/** Decodes a START payload (what the agent does; used by the tests). */
export function decodeStart(p: Uint8Array): StartRecord {
  if (p.length < START_FIXED) throw new AgentProtocolError('start: short record');
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const flags = v.getUint32(0, true), argc = v.getUint32(16, true), envc = v.getUint32(20, true);
  const dec = new TextDecoder();
  const strs: string[] = [];
  let off = START_FIXED;
  for (let i = 0; i < 1 + argc + envc; i++) {
    const z = p.indexOf(NUL, off);
    if (z < 0) throw new AgentProtocolError('start: strings not NUL-terminated');
    strs.push(dec.decode(p.subarray(off, z)));
    off = z + 1;
  }
  return {
    cwd: strs[0]!, argv: strs.slice(1, 1 + argc), env: strs.slice(1 + argc),
    uid: v.getUint32(4, true), gid: v.getUint32(8, true), rows: v.getUint16(12, true), cols: v.getUint16(14, true),
    tty: (flags & START_TTY) !== 0, main: (flags & START_MAIN) !== 0, ...((flags & START_PIDNS) !== 0 ? { pidNs: true } : {}),
  };
}

/** A RESIZE payload. */
export function encodeResize(rows: number, cols: number): Uint8Array {
  const b = new Uint8Array(4), v = new DataView(b.buffer);
  v.setUint16(0, rows, true); v.setUint16(2, cols, true);
  return b;
}

/** What READY says. */
export interface ReadyInfo {
  /** The agent's protocol version. */
  version: number;
  /** Milliseconds since the guest kernel booted (CLOCK_BOOTTIME). */
  uptimeMs: number;
  /** The guest's hostname. */
  hostname: string;
}

/** Decodes a READY payload (its size is checked by the decoder). */
export function decodeReady(p: Uint8Array): ReadyInfo {
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  return { version: v.getUint32(0, true), uptimeMs: v.getUint32(4, true), hostname: new TextDecoder().decode(p.subarray(8)) };
}
