/**
 * The wire format of a container network's relay (Docker's user-defined
 * bridge, for the process runtime): every member's process VM listens on
 * a unix socket in the network's directory, named by its IPv4 address
 * (port-publisher-worker.ts); a TCP connect() from another member to
 * that address opens the socket and sends NET_HEADER_BYTES of header,
 * then the member that has the listener answers one NET_ACK byte, and the
 * rest is the connection's bytes both ways. No packets cross: it is a
 * relay of connections, so UDP stays inside each container.
 */

/** A process VM's place on a container network (`tsvm exec --network-dir/--network-addr`). */
export interface NetworkAttachment {
  /** The network's directory of member sockets. */
  dir: string;
  /** This member's unix socket: `dir`/ADDRESS. */
  socket: string;
  /** This member's IPv4 address (4 bytes). */
  address: Uint8Array;
  /** The network's prefix length (the subnet is `address` masked with it). */
  prefix: number;
}

/** Header bytes: the dialler's IPv4 address (4), its port (2) and the destination port (2), big-endian. */
export const NET_HEADER_BYTES = 8;
/** The byte a member answers once its listener has the connection. */
export const NET_ACK = 0x06;

/** Encodes a header. */
export function encodeNetHeader(fromIp: Uint8Array, fromPort: number, port: number): Uint8Array {
  const b = new Uint8Array(NET_HEADER_BYTES);
  b.set(fromIp.subarray(0, 4), 0);
  b[4] = fromPort >> 8; b[5] = fromPort & 0xff; b[6] = port >> 8; b[7] = port & 0xff;
  return b;
}

/** Decodes a header (the first NET_HEADER_BYTES of `b`). */
export function decodeNetHeader(b: Uint8Array): { fromIp: Uint8Array; fromPort: number; port: number } {
  return { fromIp: Uint8Array.from(b.subarray(0, 4)), fromPort: (b[4]! << 8) | b[5]!, port: (b[6]! << 8) | b[7]! };
}

/** Dotted-quad text of a 4-byte address. */
export function ipText(ip: Uint8Array): string { return Array.from(ip.subarray(0, 4)).join('.'); }

/** Parses a dotted quad (4 bytes), or null. */
export function parseIp(s: string): Uint8Array | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) return null;
  const b = Uint8Array.from(m.slice(1).map(Number));
  return m.slice(1).every((x) => Number(x) <= 255) ? b : null;
}

/** Parses `--network-addr A.B.C.D/PREFIX` with `--network-dir DIR`; the attachment, or a one-line error. */
export function parseAttachment(dir: string, addr: string): NetworkAttachment | string {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(addr);
  const ip = m === null ? null : parseIp(m[1]!);
  const prefix = m === null ? -1 : Number(m[2]);
  if (ip === null || prefix < 8 || prefix > 30) return `--network-addr ${addr}: expected A.B.C.D/PREFIX (prefix 8 to 30)`;
  if (!dir.startsWith('/')) return `--network-dir ${dir}: expected an absolute path`;
  return { dir, socket: `${dir}/${ipText(ip)}`, address: ip, prefix };
}

/** True if `ip` is in the subnet of `a`. */
export function inSubnet(a: NetworkAttachment, ip: Uint8Array): boolean {
  const v = (x: Uint8Array): number => ((x[0]! << 24) | (x[1]! << 16) | (x[2]! << 8) | x[3]!) >>> 0;
  const mask = a.prefix === 0 ? 0 : (~0 << (32 - a.prefix)) >>> 0;
  return ((v(ip) & mask) >>> 0) === ((v(a.address) & mask) >>> 0);
}
