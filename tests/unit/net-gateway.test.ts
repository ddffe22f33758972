/**
 * The container network's gateway (src/host/net-gateway.ts), frame by
 * frame: ARP for .1 gets the gateway's MAC; a member's DHCPDISCOVER gets an
 * OFFER of its address with the mask, the gateway as DNS server and its
 * hostname, and its REQUEST an ACK (a wrong address a NAK); a stranger's
 * MAC gets nothing; a DNS A query for a member's name gets its address, an
 * AAAA query for it no answer, an unknown name NXDOMAIN; the reply
 * headers' IPv4 checksums are right.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetGateway, type GatewayMember } from '../../src/host/net-gateway.js';

const GW_MAC = Uint8Array.from([0x02, 0x42, 0xac, 0x12, 0x00, 0x01]);
const WEB: GatewayMember = { ip: '172.18.0.2', hostname: 'webhost' };
const gw = new NetGateway({
  ip: '172.18.0.1', mac: GW_MAC, prefix: 16,
  byMac: (mac) => mac === '0242ac120002' ? WEB : null,
  byName: (name) => name === 'web' || name === 'webhost' ? WEB : null,
});
const CLIENT_MAC = [0x02, 0x42, 0xac, 0x12, 0x00, 0x02];

/** An Ethernet/IPv4/UDP frame (checksums left 0; the gateway does not check them). */
function udp(dstMac: number[], srcIp: number[], dstIp: number[], sport: number, dport: number, payload: number[]): Uint8Array {
  const f = new Uint8Array(42 + payload.length);
  f.set(dstMac, 0); f.set(CLIENT_MAC, 6); f[12] = 0x08; f[13] = 0x00;
  f[14] = 0x45; f[16] = (28 + payload.length) >> 8; f[17] = (28 + payload.length) & 0xff; f[22] = 64; f[23] = 17;
  f.set(srcIp, 26); f.set(dstIp, 30);
  f[34] = sport >> 8; f[35] = sport & 0xff; f[36] = dport >> 8; f[37] = dport & 0xff;
  f[38] = (8 + payload.length) >> 8; f[39] = (8 + payload.length) & 0xff;
  f.set(payload, 42);
  return f;
}

/** A BOOTREQUEST from `chaddr` with DHCP message type `type` and, if given, a requested address. */
function dhcp(chaddr: number[], type: number, requested?: number[]): Uint8Array {
  const b = new Array<number>(240).fill(0);
  b[0] = 1; b[1] = 1; b[2] = 6; b[4] = 0xde; b[5] = 0xad; b[6] = 0xbe; b[7] = 0xef;
  chaddr.forEach((x, i) => { b[28 + i] = x; });
  b[236] = 0x63; b[237] = 0x82; b[238] = 0x53; b[239] = 0x63;
  b.push(53, 1, type);
  if (requested) b.push(50, 4, ...requested);
  b.push(255);
  return udp([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0, 0, 0, 0], [255, 255, 255, 255], 68, 67, b);
}

/** The DHCP options of a reply frame, by code. */
function options(r: Uint8Array): Map<number, number[]> {
  const m = new Map<number, number[]>();
  for (let i = 42 + 240; i < r.length && r[i] !== 255;) { m.set(r[i]!, Array.from(r.subarray(i + 2, i + 2 + r[i + 1]!))); i += 2 + r[i + 1]!; }
  return m;
}

/** The Internet checksum over the IPv4 header of `r` is 0 when the header's checksum is right (RFC 1071). */
function ipChecksumOk(r: Uint8Array): boolean {
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += (r[i]! << 8) | r[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

/** A DNS query for `name` of type `qtype`. */
function dnsQuery(name: string, qtype: number): Uint8Array {
  const q = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of name.split('.')) q.push(l.length, ...Buffer.from(l));
  q.push(0, 0, qtype, 0, 1);
  return udp([...GW_MAC], [172, 18, 0, 2], [172, 18, 0, 1], 40000, 53, q);
}

test('ARP: a request for the gateway\'s address gets its MAC; others none', () => {
  const req = new Uint8Array(42);
  req.fill(0xff, 0, 6); req.set(CLIENT_MAC, 6); req[12] = 0x08; req[13] = 0x06;
  req.set([0, 1, 0x08, 0x00, 6, 4, 0, 1], 14); req.set(CLIENT_MAC, 22); req.set([172, 18, 0, 2], 28); req.set([172, 18, 0, 1], 38);
  assert.ok(gw.wants(req));
  const r = gw.handle(req);
  assert.ok(r !== null);
  assert.deepEqual(Array.from(r.subarray(0, 6)), CLIENT_MAC, 'to the asker');
  assert.equal(r[21], 2, 'an ARP reply');
  assert.deepEqual(Array.from(r.subarray(22, 32)), [...GW_MAC, 172, 18, 0, 1], 'sender: the gateway');
  req[41] = 9; // who has 172.18.0.9: not the gateway's to answer
  assert.equal(gw.handle(req), null);
});

test('DHCP: a member\'s DISCOVER gets an OFFER, its REQUEST an ACK, a wrong address a NAK; a stranger nothing', () => {
  const offer = gw.handle(dhcp(CLIENT_MAC, 1));
  assert.ok(offer !== null);
  assert.ok(ipChecksumOk(offer), 'the IPv4 header checksum');
  assert.equal((offer[36]! << 8) | offer[37]!, 68, 'to the client port');
  assert.deepEqual(Array.from(offer.subarray(42 + 4, 42 + 8)), [0xde, 0xad, 0xbe, 0xef], 'the xid');
  assert.deepEqual(Array.from(offer.subarray(42 + 16, 42 + 20)), [172, 18, 0, 2], 'yiaddr: the member\'s address');
  const o = options(offer);
  assert.deepEqual(o.get(53), [2], 'OFFER');
  assert.deepEqual(o.get(1), [255, 255, 0, 0], 'the /16 mask');
  assert.deepEqual(o.get(6), [172, 18, 0, 1], 'the gateway is the DNS server');
  assert.deepEqual(o.get(54), [172, 18, 0, 1], 'server id');
  assert.equal(Buffer.from(o.get(12) ?? []).toString(), 'webhost', 'its hostname');
  assert.equal(o.has(3), false, 'no router: the network reaches only its members');
  const ack = gw.handle(dhcp(CLIENT_MAC, 3, [172, 18, 0, 2]));
  assert.deepEqual(options(ack!).get(53), [5], 'ACK');
  const nak = gw.handle(dhcp(CLIENT_MAC, 3, [172, 18, 0, 7]));
  assert.deepEqual(options(nak!).get(53), [6], 'NAK for an address that is not its');
  assert.equal(gw.handle(dhcp([2, 0, 0, 0, 0, 9], 1)), null, 'no offer for a NIC that is no member');
});

test('DNS: a member\'s name resolves (A), another type gets no answer, an unknown name NXDOMAIN', () => {
  const a = gw.handle(dnsQuery('WEB', 1));
  assert.ok(a !== null);
  assert.ok(ipChecksumOk(a));
  assert.deepEqual(Array.from(a.subarray(0, 6)), CLIENT_MAC, 'back to the asker');
  assert.equal((a[36]! << 8) | a[37]!, 40000, 'to its port');
  const d = a.subarray(42);
  assert.deepEqual([d[0], d[1]], [0x12, 0x34], 'the query id');
  assert.equal(d[3]! & 0x0f, 0, 'NOERROR');
  assert.equal((d[6]! << 8) | d[7]!, 1, 'one answer');
  assert.deepEqual(Array.from(d.subarray(d.length - 4)), [172, 18, 0, 2], 'its address');
  const aaaa = gw.handle(dnsQuery('webhost', 28))!.subarray(42);
  assert.deepEqual([aaaa[3]! & 0x0f, (aaaa[6]! << 8) | aaaa[7]!], [0, 0], 'AAAA for a member: NOERROR, no answer');
  const nx = gw.handle(dnsQuery('nobody.example', 1))!.subarray(42);
  assert.equal(nx[3]! & 0x0f, 3, 'NXDOMAIN');
  const other = dnsQuery('web', 1);
  other[33] = 9; // to 172.18.0.9, not the gateway
  assert.equal(gw.handle(other), null);
});
