/**
 * A process VM's namespace on a container network (src/process/netns.ts
 * with a PortBridge that has an address, reaches and dial; the relay's
 * wire format in src/host/network-relay.ts): two namespaces joined by an
 * in-memory relay. A connect() to the other's address reaches its listener
 * on INADDR_ANY or on its network address, never one bound to loopback
 * only; the bytes go both ways with half-close; an address outside the
 * subnet is unreachable, and UDP does not cross.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetNamespace, Socket, inetAddr, AF_INET, SOCK_STREAM, SOCK_DGRAM, type BridgeEvent, type PortBridge } from '../../src/process/netns.js';
import { E } from '../../src/process/sys-abi.js';
import { decodeNetHeader, encodeNetHeader, inSubnet, parseAttachment, parseIp } from '../../src/host/network-relay.js';

/** Two namespaces and the relay between them: A is 172.18.0.2, B is 172.18.0.3. */
function pair(): { a: NetNamespace; b: NetNamespace } {
  const q = { a: [] as BridgeEvent[], b: [] as BridgeEvent[] };
  const nss: { a?: NetNamespace; b?: NetNamespace } = {};
  let next = 1;
  const link = new Map<number, { side: 'a' | 'b'; other: number }>();
  const mk = (me: 'a' | 'b', ip: number[]): PortBridge => {
    const them = me === 'a' ? 'b' : 'a';
    const deliver = (conn: number, ev: (c: number) => BridgeEvent): void => { const l = link.get(conn); if (l !== undefined) q[l.side].push(ev(l.other)); };
    return {
      address: Uint8Array.from(ip),
      poll: () => q[me].splice(0),
      wait: () => undefined,
      send: (conn, data) => deliver(conn, (c) => ({ t: 'data', conn: c, data: data.slice() })),
      end: (conn) => deliver(conn, (c) => ({ t: 'end', conn: c })),
      close: (conn) => deliver(conn, (c) => ({ t: 'close', conn: c })),
      pause: () => undefined,
      reaches: (dst) => dst[0] === 172 && dst[1] === 18 && dst[3] !== ip[3],
      dial: (dst, port, from) => {
        if (dst[3] !== (them === 'a' ? 2 : 3)) return -E.EHOSTUNREACH;
        const mine = next++, theirs = next++;
        link.set(mine, { side: them, other: theirs });
        link.set(theirs, { side: me, other: mine });
        q[them].push({ t: 'open', conn: theirs, port, from });
        nss[them]!.pump();
        // The other side closed it at once: no listener there.
        const refused = q[me].some((e) => e.t === 'close' && e.conn === mine);
        if (refused) { q[me] = q[me].filter((e) => e.conn !== mine); return -E.ECONNREFUSED; }
        return mine;
      },
    };
  };
  const a = new NetNamespace(), b = new NetNamespace();
  nss.a = a; nss.b = b;
  a.attachBridge(mk('a', [172, 18, 0, 2]));
  b.attachBridge(mk('b', [172, 18, 0, 3]));
  return { a, b };
}

const v4 = (s: string, port: number): ReturnType<typeof inetAddr> => inetAddr(AF_INET, parseIp(s)!, port);

function listener(ns: NetNamespace, ip: string, port: number): Socket {
  const l = new Socket(AF_INET, SOCK_STREAM, 0);
  assert.equal(ns.bindInet(l, v4(ip, port)), 0);
  assert.equal(ns.listen(l, 8), 0);
  return l;
}

test('a connect to the other member reaches its listener; bytes go both ways; the peer address is the dialler', () => {
  const { a, b } = pair();
  const l = listener(b, '0.0.0.0', 8080);
  const c = new Socket(AF_INET, SOCK_STREAM, 0);
  assert.equal(a.connectInet(c, v4('172.18.0.3', 8080)), 0);
  assert.deepEqual([...c.local!.ip], [172, 18, 0, 2], 'the dialler is bound to its network address');
  const acc = l.backlog.shift()!;
  assert.ok(acc !== undefined, 'the listener has the connection');
  assert.deepEqual([...acc.remote!.ip], [172, 18, 0, 2]);
  assert.equal(acc.remote!.port, c.local!.port);
  assert.equal(a.streamWrite(c, new TextEncoder().encode('ping'), [], false), 4);
  a.pump(); b.pump();
  assert.equal(new TextDecoder().decode(acc.take(100, false).data), 'ping');
  assert.equal(b.streamWrite(acc, new TextEncoder().encode('pong'), [], false), 4);
  b.pump(); a.pump();
  assert.equal(new TextDecoder().decode(c.take(100, false).data), 'pong');
  assert.equal(b.shutdown(acc, 1), 0);
  b.pump(); a.pump();
  assert.equal(c.eof, true, 'a half-close reaches the dialler');
});

test('loopback stays private; no listener is ECONNREFUSED; outside the subnet ENETUNREACH; no member EHOSTUNREACH; UDP does not cross', () => {
  const { a, b } = pair();
  listener(b, '127.0.0.1', 9000);
  assert.equal(a.connectInet(new Socket(AF_INET, SOCK_STREAM, 0), v4('172.18.0.3', 9000)), -E.ECONNREFUSED);
  assert.equal(a.connectInet(new Socket(AF_INET, SOCK_STREAM, 0), v4('172.18.0.3', 1234)), -E.ECONNREFUSED);
  listener(b, '172.18.0.3', 9001);
  assert.equal(a.connectInet(new Socket(AF_INET, SOCK_STREAM, 0), v4('172.18.0.3', 9001)), 0, 'a listener on the network address');
  assert.equal(a.connectInet(new Socket(AF_INET, SOCK_STREAM, 0), v4('10.0.0.1', 80)), -E.ENETUNREACH);
  assert.equal(a.connectInet(new Socket(AF_INET, SOCK_STREAM, 0), v4('172.18.0.9', 80)), -E.EHOSTUNREACH);
  assert.equal(a.connectInet(new Socket(AF_INET, SOCK_DGRAM, 0), v4('172.18.0.3', 53)), -E.ENETUNREACH);
  // Its own network address is local: bind works there, not on another member's.
  assert.equal(a.bindInet(new Socket(AF_INET, SOCK_STREAM, 0), v4('172.18.0.2', 7)), 0);
  assert.equal(a.bindInet(new Socket(AF_INET, SOCK_STREAM, 0), v4('172.18.0.3', 7)), -E.EADDRNOTAVAIL);
});

test('the relay header and the attachment flags', () => {
  const h = decodeNetHeader(encodeNetHeader(Uint8Array.of(172, 18, 1, 2), 40000, 8080));
  assert.deepEqual([...h.fromIp], [172, 18, 1, 2]);
  assert.equal(h.fromPort, 40000);
  assert.equal(h.port, 8080);
  const att = parseAttachment('/run/net', '172.18.0.5/16');
  assert.ok(typeof att !== 'string');
  assert.equal(att.socket, '/run/net/172.18.0.5');
  assert.ok(inSubnet(att, parseIp('172.18.255.1')!));
  assert.ok(!inSubnet(att, parseIp('172.19.0.1')!));
  for (const bad of ['172.18.0.5', '172.18.0.5/33', '300.1.1.1/16', 'x/16']) assert.equal(typeof parseAttachment('/d', bad), 'string', bad);
  assert.equal(typeof parseAttachment('rel', '172.18.0.5/16'), 'string');
});
