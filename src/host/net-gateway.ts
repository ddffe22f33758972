/**
 * The gateway address of a container network's switch (net-switch.ts):
 * what Docker's bridge gives a member at .1, without routing anywhere.
 *
 * - ARP (RFC 826): requests for the gateway's address are answered with the
 *   gateway's MAC, so members can send it unicast IP.
 * - DHCP (RFC 2131, options RFC 2132): a member's NIC, known by its MAC,
 *   is offered its address on the network, the subnet mask and the gateway
 *   as DNS server (no router option: the network reaches only its members,
 *   a VM keeps its default route on its user network).
 * - DNS (RFC 1035): A queries for a member's name (its container or VM
 *   name, or its hostname) get its address, as Docker's embedded DNS
 *   answers; other types for a known name get no answer; an unknown name
 *   gets NXDOMAIN.
 *
 * - TCP to a process-runtime member (tcp-bridge.ts): ARP requests for its
 *   address are answered for it (proxy ARP, RFC 1027), and frames to the
 *   MAC given go to the bridge, which splices them to its relay socket.
 *
 * Everything else sent to the gateway is dropped. The handler builds reply
 * frames and never allocates per frame beyond them.
 */
import { ipText } from './network-relay.js';

/** A member of the network as the gateway answers for it. */
export interface GatewayMember { ip: string; hostname: string }

/** What the gateway knows of the network. */
export interface GatewayConfig {
  /** The gateway's address (the subnet's .1) and MAC. */
  ip: string;
  mac: Uint8Array;
  /** The subnet's prefix length. */
  prefix: number;
  /** The member whose NIC has `mac` (12 hex digits), or null. */
  byMac(mac: string): GatewayMember | null;
  /** The member with `name` (lower case), or null. */
  byName(name: string): GatewayMember | null;
  /** The TCP bridge to the network's process members, if any. */
  tcp?: { arpMac(ip: string): Uint8Array | null; takes(frame: Uint8Array): boolean; handle(frame: Uint8Array): boolean };
}

/** EtherType of IPv4 and ARP (IEEE 802 numbers). */
const ETH_IPV4 = 0x0800, ETH_ARP = 0x0806;
/** IP protocol numbers of TCP (RFC 9293) and UDP (RFC 768). */
const IP_TCP = 6, IP_UDP = 17;
/** UDP ports: DHCP server and client (RFC 2131 §4.1), DNS (RFC 1035 §4.2.1). */
const DHCP_SERVER = 67, DHCP_CLIENT = 68, DNS_PORT = 53;
/** BOOTP fixed part before the options (RFC 2131 §2: op ... file), and the magic cookie 99.130.83.99 (RFC 2132 §2). */
const BOOTP_FIXED = 236, MAGIC_COOKIE = 0x63825363;
/** DHCP message types (RFC 2132 §9.6). */
const DHCPDISCOVER = 1, DHCPOFFER = 2, DHCPREQUEST = 3, DHCPACK = 5, DHCPNAK = 6;
/** DHCP options (RFC 2132): subnet mask 1, DNS servers 6, host name 12, requested address 50, lease time 51, message type 53, server id 54, end 255. */
const OPT_MASK = 1, OPT_DNS = 6, OPT_HOSTNAME = 12, OPT_REQUESTED = 50, OPT_LEASE = 51, OPT_TYPE = 53, OPT_SERVER = 54, OPT_END = 255;
/** Lease time offered: a day (the address is the member's while it runs). */
const LEASE_S = 86400;
/** TTL of DNS answers: Docker's embedded DNS gives 600 s; members come and go, so less. */
const DNS_TTL = 10;

const ipBytes = (ip: string): number[] => ip.split('.').map(Number);
const utf8 = new TextEncoder(), fromUtf8 = new TextDecoder();
const hex = (b: Uint8Array, off: number, n: number): string => Array.from(b.subarray(off, off + n), (x) => x.toString(16).padStart(2, '0')).join('');

/** The Internet checksum of `b[off, off+len)` plus the partial sum `initial` (a pseudo-header's) (RFC 1071). */
export function checksum(b: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < len; i += 2) sum += (b[off + i]! << 8) | (i + 1 < len ? b[off + i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The gateway (see the module comment). */
export class NetGateway {
  constructor(private readonly cfg: GatewayConfig) {}

  /** Whether a frame with destination MAC at the start of `frame` may be for the gateway (broadcast, its MAC, a process member's). */
  wants(frame: Uint8Array): boolean {
    if (frame[0] === 0xff && frame[1] === 0xff && frame[2] === 0xff && frame[3] === 0xff && frame[4] === 0xff && frame[5] === 0xff) return true;
    let mine = true;
    for (let i = 0; i < 6; i++) if (frame[i] !== this.cfg.mac[i]) mine = false;
    return mine || this.cfg.tcp?.takes(frame) === true;
  }

  /** Handles a frame for the gateway; the reply frame, or null. */
  handle(frame: Uint8Array): Uint8Array | null {
    if (frame.length < 14) return null;
    const type = (frame[12]! << 8) | frame[13]!;
    if (type === ETH_ARP) return this.arp(frame);
    if (type !== ETH_IPV4 || frame.length < 14 + 20 + 8) return null;
    const ihl = (frame[14]! & 0x0f) * 4;
    if (frame[23] === IP_TCP && this.cfg.tcp !== undefined && (frame[0]! & 1) === 0) { this.cfg.tcp.handle(frame); return null; }
    if ((frame[14]! >> 4) !== 4 || ihl < 20 || frame[23] !== IP_UDP) return null;
    const udp = 14 + ihl;
    if (frame.length < udp + 8) return null;
    const dport = (frame[udp + 2]! << 8) | frame[udp + 3]!;
    const ulen = Math.min((frame[udp + 4]! << 8) | frame[udp + 5]!, frame.length - udp);
    const payload = frame.subarray(udp + 8, udp + ulen);
    if (dport === DHCP_SERVER) return this.dhcp(payload);
    if (dport === DNS_PORT && this.forMe(frame)) return this.dns(frame, udp, payload);
    return null;
  }

  private forMe(frame: Uint8Array): boolean {
    const me = ipBytes(this.cfg.ip);
    for (let i = 0; i < 4; i++) if (frame[30 + i] !== me[i]) return false;
    return true;
  }

  /**
   * ARP request for the gateway's address, or a process member's (proxy
   * ARP, with the MAC the bridge gives it): the reply (RFC 826,
   * Ethernet/IPv4: htype 1, ptype 0x0800, hlen 6, plen 4).
   */
  private arp(f: Uint8Array): Uint8Array | null {
    if (f.length < 42 || f[20] !== 0 || f[21] !== 1) return null; // op 1: request
    const target = f.subarray(38, 42); // target protocol address
    const me = ipBytes(this.cfg.ip);
    const mac = me.every((x, i) => target[i] === x) ? this.cfg.mac : this.cfg.tcp?.arpMac(ipText(target)) ?? null;
    if (mac === null) return null;
    const r = new Uint8Array(42);
    r.set(f.subarray(6, 12), 0); r.set(mac, 6); r[12] = 0x08; r[13] = 0x06;
    r.set(f.subarray(14, 20), 14); r[21] = 2; // op 2: reply
    r.set(mac, 22); r.set(target, 28); // sender: the asked address and its MAC
    r.set(f.subarray(22, 32), 32); // target: the asker's MAC and address
    return r;
  }

  private dhcp(p: Uint8Array): Uint8Array | null {
    if (p.length < BOOTP_FIXED + 4 || p[0] !== 1 || p[1] !== 1 || p[2] !== 6) return null; // BOOTREQUEST, Ethernet
    if (((p[236]! << 24) | (p[237]! << 16) | (p[238]! << 8) | p[239]!) >>> 0 !== MAGIC_COOKIE) return null;
    let msg = 0, requested: string | null = null;
    for (let i = BOOTP_FIXED + 4; i < p.length;) {
      const code = p[i]!;
      if (code === OPT_END) break;
      if (code === 0) { i++; continue; }
      const len = p[i + 1] ?? 0;
      if (code === OPT_TYPE && len >= 1) msg = p[i + 2]!;
      if (code === OPT_REQUESTED && len === 4) requested = Array.from(p.subarray(i + 2, i + 6)).join('.');
      i += 2 + len;
    }
    const m = this.cfg.byMac(hex(p, 28, 6));
    if (m === null) return null; // not a member's NIC: no offer
    let reply: number;
    if (msg === DHCPDISCOVER) reply = DHCPOFFER;
    else if (msg === DHCPREQUEST) {
      const ciaddr = Array.from(p.subarray(12, 16)).join('.');
      reply = (requested ?? ciaddr) === m.ip ? DHCPACK : DHCPNAK;
    } else return null;
    const opts: number[] = [OPT_TYPE, 1, reply, OPT_SERVER, 4, ...ipBytes(this.cfg.ip)];
    if (reply !== DHCPNAK) {
      const mask = this.cfg.prefix === 0 ? 0 : (~0 << (32 - this.cfg.prefix)) >>> 0;
      opts.push(OPT_LEASE, 4, LEASE_S >>> 24, (LEASE_S >> 16) & 0xff, (LEASE_S >> 8) & 0xff, LEASE_S & 0xff);
      opts.push(OPT_MASK, 4, mask >>> 24, (mask >> 16) & 0xff, (mask >> 8) & 0xff, mask & 0xff);
      opts.push(OPT_DNS, 4, ...ipBytes(this.cfg.ip));
      const hn = Array.from(utf8.encode(m.hostname.slice(0, 63)));
      if (hn.length > 0) opts.push(OPT_HOSTNAME, hn.length, ...hn);
    }
    opts.push(OPT_END);
    const b = new Uint8Array(BOOTP_FIXED + 4 + opts.length);
    b[0] = 2; b[1] = 1; b[2] = 6; // BOOTREPLY, Ethernet, hlen 6
    b.set(p.subarray(4, 8), 4); // xid
    b.set(p.subarray(10, 12), 10); // flags
    if (reply !== DHCPNAK) b.set(ipBytes(m.ip), 16); // yiaddr
    b.set(ipBytes(this.cfg.ip), 20); // siaddr
    b.set(p.subarray(28, 44), 28); // chaddr
    b[236] = 0x63; b[237] = 0x82; b[238] = 0x53; b[239] = 0x63;
    b.set(opts, 240);
    // To the broadcast address and MAC, which every client accepts before it has its address (RFC 2131 §4.1).
    return this.udpFrame(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), [255, 255, 255, 255], DHCP_SERVER, DHCP_CLIENT, b);
  }

  private dns(f: Uint8Array, udp: number, q: Uint8Array): Uint8Array | null {
    if (q.length < 12 || (q[2]! & 0x80) !== 0) return null; // a response, not a query
    const qd = (q[4]! << 8) | q[5]!;
    if (qd !== 1 || ((q[2]! >> 3) & 0x0f) !== 0) return this.dnsReply(f, udp, q, q.length, 4, []); // one standard query only: NOTIMP
    let i = 12;
    const labels: string[] = [];
    while (i < q.length && q[i] !== 0) {
      const n = q[i]!;
      if (n > 63 || i + 1 + n > q.length) return null;
      labels.push(fromUtf8.decode(q.subarray(i + 1, i + 1 + n)));
      i += 1 + n;
    }
    const end = i + 1 + 4; // the root label, QTYPE, QCLASS
    if (end > q.length) return null;
    const qtype = (q[i + 1]! << 8) | q[i + 2]!;
    const m = this.cfg.byName(labels.join('.').toLowerCase());
    if (m === null) return this.dnsReply(f, udp, q, end, 3, []); // NXDOMAIN
    if (qtype !== 1) return this.dnsReply(f, udp, q, end, 0, []); // the name exists; no record of that type
    // One A record: a pointer to the question's name (0xc00c), type A, class IN, TTL, length 4, the address.
    const rr = [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, (DNS_TTL >> 8) & 0xff, DNS_TTL & 0xff, 0, 4, ...ipBytes(m.ip)];
    return this.dnsReply(f, udp, q, end, 0, rr);
  }

  /** A DNS response to query `q`: its header and question (up to `qEnd`), `rcode`, and `answer` (one record or none). */
  private dnsReply(f: Uint8Array, udp: number, q: Uint8Array, qEnd: number, rcode: number, answer: number[]): Uint8Array {
    const b = new Uint8Array(qEnd + answer.length);
    b.set(q.subarray(0, qEnd), 0);
    b[2] = 0x80 | (q[2]! & 0x79) | 0x04; // QR, the query's opcode and RD, AA
    b[3] = 0x80 | rcode; // RA, RCODE
    b[4] = 0; b[5] = qEnd > 12 ? 1 : 0;
    b[6] = 0; b[7] = answer.length > 0 ? 1 : 0;
    b.fill(0, 8, 12);
    b.set(answer, qEnd);
    const sport = (f[udp]! << 8) | f[udp + 1]!;
    return this.udpFrame(f.subarray(6, 12), Array.from(f.subarray(26, 30)), DNS_PORT, sport, b);
  }

  /** An Ethernet/IPv4/UDP frame from the gateway to `dmac`/`dip`:`dport` (UDP checksum 0: none, RFC 768). */
  private udpFrame(dmac: Uint8Array, dip: number[], sport: number, dport: number, payload: Uint8Array): Uint8Array {
    const r = new Uint8Array(14 + 20 + 8 + payload.length);
    r.set(dmac, 0); r.set(this.cfg.mac, 6); r[12] = 0x08; r[13] = 0x00;
    const ipLen = 20 + 8 + payload.length;
    r[14] = 0x45; r[16] = ipLen >> 8; r[17] = ipLen & 0xff; r[22] = 64; r[23] = IP_UDP; // version 4, IHL 5; TTL 64
    r.set(ipBytes(this.cfg.ip), 26); r.set(dip, 30);
    const c = checksum(r, 14, 20);
    r[24] = c >> 8; r[25] = c & 0xff;
    r[34] = sport >> 8; r[35] = sport & 0xff; r[36] = dport >> 8; r[37] = dport & 0xff;
    r[38] = (8 + payload.length) >> 8; r[39] = (8 + payload.length) & 0xff;
    r.set(payload, 42);
    return r;
  }
}
