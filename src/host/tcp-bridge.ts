/**
 * TCP between the two kinds of member of a container network: the frames
 * of the network's switch (net-switch.ts: vm-runtime containers and plain
 * VMs, each a NIC with a kernel TCP/IP stack) and the connection relay of
 * process-runtime containers (network-relay.ts: a unix socket per member,
 * named by its address, carrying one connection each after an 8-byte
 * header and an ACK byte). The bridge sits at the switch's gateway and
 * terminates TCP on the frame side, one small TCP (RFC 9293) per
 * connection, and splices it to a relay socket:
 *
 * - A VM reaching a process member: the gateway answers ARP for the
 *   member's address (proxy ARP, RFC 1027) with the MAC a NIC at that
 *   address would have (Docker's 02:42 and the address's four bytes, so a
 *   VM's ARP cache stays right when a VM and a process container take
 *   turns at one address), and frames to that MAC come to the bridge. The
 *   VM's SYN which dials the member's socket with the
 *   VM's address and port in the header. The member's ACK byte (its
 *   listener has the connection) becomes the SYN-ACK; a closed socket or
 *   no member becomes a RST, so connect() is refused as it would be.
 * - A process member reaching a VM: the bridge listens on the VM's
 *   address in the network's directory, so the member's dial finds it.
 *   The header becomes a SYN from the member's address and port to the
 *   VM; the VM's SYN-ACK becomes the ACK byte, its RST a refusal.
 *
 * The TCP is deliberately plain, for a lossless virtual link that may
 * still drop on a full switch queue: MSS option only (no window scaling,
 * SACK or timestamps: RFC 9293 §3.7.1 lets either side omit them), a
 * 64 KiB receive window shrunk by what the relay socket has not taken,
 * in-order receive (anything else is answered with a duplicate ACK),
 * go-back-N retransmission from one timer with exponential backoff, a
 * one-byte probe into a zero window, half-close both ways, and RST when
 * either side vanishes. Checksums are computed on what is sent; received
 * checksums are not checked (the frames never leave the host). UDP and
 * ICMP do not cross, as between process members.
 */
import fs from 'node:fs';
import net from 'node:net';
import { NET_ACK, NET_HEADER_BYTES, decodeNetHeader, encodeNetHeader, ipText, parseIp } from './network-relay.js';
import { checksum } from './net-gateway.js';

/** What the bridge needs of its network. */
export interface TcpBridgeConfig {
  /** The network's directory of member sockets (network-relay.ts). */
  dir: string;
  /** Whether `ip` (dotted quad) is a process member, reached through its socket. */
  isRelay(ip: string): boolean;
}

/** EtherType IPv4 (IEEE 802), IP protocol TCP (RFC 9293 §3.1). */
const ETH_IPV4 = 0x0800, IP_TCP = 6;
/** TCP header flags (RFC 9293 §3.1). */
const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;
/** Ethernet header, IPv4 header without options, TCP header without options. */
const ETH = 14, IP_HDR = 20, TCP_HDR = 20;
/** The MSS the bridge offers (a 1500-byte MTU less 40 bytes of headers) and assumes when none is offered (RFC 9293 §3.7.1: 536). */
const OUR_MSS = 1460, DEFAULT_MSS = 536;
/** The receive window: the most that fits without window scaling. */
const RCV_WINDOW = 65535;
/** Bytes from a relay socket held for the VM before that socket is paused. */
const SEND_BUFFER = 256 * 1024;
/** Retransmission timeout: first value, ceiling (ms), and the retransmissions before the connection is reset. */
const RTO_MS = 200, RTO_MAX_MS = 5000, MAX_RETRIES = 8;
/** IPv4 TTL of the bridge's packets. */
const TTL = 64;
/** Connections the bridge holds at once; a SYN beyond them gets a RST (a guest's SYN flood cannot exhaust the host). */
const MAX_CONNS = 4096;

/** Where a connection is (RFC 9293 §3.3.2, as far as the bridge needs). */
type State = 'dialing' | 'syn-sent' | 'syn-received' | 'established';

/** One spliced connection: a VM's end (address, port, MAC) and a relay socket. */
interface Conn {
  key: string;
  vmMac: Uint8Array; vmIp: Uint8Array; vmPort: number;
  relayIp: Uint8Array; relayPort: number;
  sock: net.Socket;
  state: State;
  /** Send sequence: initial, oldest unacknowledged, next; the VM's window and MSS. */
  iss: number; sndUna: number; sndNxt: number; sndWnd: number; mss: number;
  /** Receive sequence: next expected from the VM. */
  rcvNxt: number;
  /** Bytes from the relay socket not yet acknowledged by the VM (from sndUna), and how many of them are sent. */
  buf: Buffer; off: number;
  /** The relay socket has ended (a FIN is owed after buf), the FIN is sent, it is acknowledged. */
  finOwed: boolean; finSent: boolean; finAcked: boolean;
  /** The VM has sent its FIN. */
  peerFin: boolean;
  /** The window last advertised was short of RCV_WINDOW (a drain sends an update). */
  shortWindow: boolean;
  timer: NodeJS.Timeout | null; rto: number; retries: number;
}

/** A parsed TCP segment in a frame. */
interface Segment {
  srcMac: Uint8Array; srcIp: Uint8Array; dstIp: Uint8Array;
  srcPort: number; dstPort: number; seq: number; ack: number; flags: number; window: number; mss: number;
  data: Uint8Array;
}

/** a - b in sequence space (RFC 9293 §3.4: modulo 2^32). */
const seqDiff = (a: number, b: number): number => (a - b) | 0;

/** The bridge of one network (see the module comment). */
export class TcpBridge {
  private readonly conns = new Map<string, Conn>();
  /** Listeners on VM members' addresses: address → server. */
  private readonly servers = new Map<string, net.Server>();
  private emit: (frame: Uint8Array) => void = () => {};
  private ipId = 0;

  constructor(private readonly cfg: TcpBridgeConfig) {}

  /** Where the bridge's frames go: the switch, which sends each to the port of its destination MAC. */
  attach(emit: (frame: Uint8Array) => void): void { this.emit = emit; }

  /** The MAC the gateway answers ARP with for `ip`: a process member's (dockerMac), else null. */
  arpMac(ip: string): Uint8Array | null {
    const b = this.cfg.isRelay(ip) ? parseIp(ip) : null;
    return b === null ? null : dockerMac(b);
  }

  /** Whether a frame's destination MAC is a process member's (the bridge takes it). */
  takes(frame: Uint8Array): boolean {
    return frame.length >= 6 && frame[0] === 2 && frame[1] === 0x42 && this.cfg.isRelay(ipText(frame.subarray(2, 6)));
  }

  /** Takes a TCP frame sent to a process member's MAC (or the gateway's); false if it is not TCP. */
  handle(frame: Uint8Array): boolean {
    const s = parse(frame);
    if (s === null) return false;
    if (!this.cfg.isRelay(ipText(s.dstIp))) {
      if ((s.flags & RST) === 0) this.resetFor(s);
      return true;
    }
    const c = this.conns.get(key(s.srcIp, s.srcPort, s.dstIp, s.dstPort));
    if (c === undefined) {
      if ((s.flags & (SYN | ACK | RST)) === SYN && this.conns.size < MAX_CONNS) this.passiveOpen(s);
      else if ((s.flags & RST) === 0) this.resetFor(s);
      return true;
    }
    this.segment(c, s);
    return true;
  }

  /** Listens for process members' dials to VM member `ip` (its NIC has the address's dockerMac). */
  async listen(ip: string): Promise<void> {
    const vmIp = parseIp(ip);
    if (vmIp === null || this.servers.has(ip)) return;
    const mac = dockerMac(vmIp);
    const server = net.createServer({ allowHalfOpen: true }, (sock) => this.dialled(sock, vmIp, mac));
    this.servers.set(ip, server);
    const file = `${this.cfg.dir}/${ip}`;
    fs.rmSync(file, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => { server.off('error', reject); resolve(); });
    });
    server.on('error', () => undefined);
    fs.chmodSync(file, 0o600);
  }

  /** Stops listening for VM member `ip` and resets its connections. */
  unlisten(ip: string): void {
    const server = this.servers.get(ip);
    if (server === undefined) return;
    this.servers.delete(ip);
    server.close();
    fs.rmSync(`${this.cfg.dir}/${ip}`, { force: true });
    for (const c of this.conns.values()) if (ipText(c.vmIp) === ip) this.abort(c, true);
  }

  /** Resets every connection and stops every listener. */
  close(): void {
    for (const ip of [...this.servers.keys()]) this.unlisten(ip);
    for (const c of [...this.conns.values()]) this.abort(c, true);
  }

  /** A SYN from a VM to a process member: dial the member's socket; its ACK byte opens the connection. */
  private passiveOpen(s: Segment): void {
    const sock = net.connect({ path: `${this.cfg.dir}/${ipText(s.dstIp)}`, allowHalfOpen: true });
    const c = this.newConn(sock, s.srcMac, s.srcIp, s.srcPort, s.dstIp, s.dstPort, 'dialing');
    c.rcvNxt = (s.seq + 1) | 0;
    c.sndWnd = s.window;
    c.mss = s.mss;
    let refused = false;
    const refuse = (): void => {
      if (c.state !== 'dialing' || refused) return;
      refused = true;
      this.drop(c);
      sock.destroy();
      this.send(c, RST | ACK, c.sndNxt, new Uint8Array(0));
    };
    sock.on('connect', () => sock.write(encodeNetHeader(s.srcIp, s.srcPort, s.dstPort)));
    sock.on('error', refuse);
    sock.on('end', refuse);
    sock.on('close', refuse);
    const onFirst = (b: Buffer): void => {
      sock.off('data', onFirst);
      if (b[0] !== NET_ACK) { refuse(); return; }
      c.state = 'syn-received';
      this.wire(c);
      if (b.length > 1) c.buf = Buffer.from(b.subarray(1));
      this.sendSyn(c);
    };
    sock.on('data', onFirst);
  }

  /** A process member dialled VM member `vmIp`: its header names its address and ports; SYN to the VM. */
  private dialled(sock: net.Socket, vmIp: Uint8Array, vmMac: Uint8Array): void {
    let got = Buffer.alloc(0);
    sock.on('error', () => undefined);
    const onHeader = (b: Buffer): void => {
      got = Buffer.concat([got, b]);
      if (got.length < NET_HEADER_BYTES) return;
      sock.off('data', onHeader);
      sock.pause();
      const h = decodeNetHeader(got);
      if (this.conns.has(key(vmIp, h.port, h.fromIp, h.fromPort)) || this.conns.size >= MAX_CONNS) { sock.destroy(); return; }
      const c = this.newConn(sock, vmMac, vmIp, h.port, h.fromIp, h.fromPort, 'syn-sent');
      c.buf = Buffer.from(got.subarray(NET_HEADER_BYTES));
      this.wire(c);
      this.sendSyn(c);
    };
    sock.on('data', onHeader);
  }

  private newConn(sock: net.Socket, vmMac: Uint8Array, vmIp: Uint8Array, vmPort: number, relayIp: Uint8Array, relayPort: number, state: State): Conn {
    const iss = (Math.random() * 0x1_0000_0000) | 0; // RFC 9293 §3.4.1: any hard-to-guess start will do here
    const c: Conn = {
      key: key(vmIp, vmPort, relayIp, relayPort), vmMac: Uint8Array.from(vmMac), vmIp: Uint8Array.from(vmIp), vmPort,
      relayIp: Uint8Array.from(relayIp), relayPort, sock, state,
      iss, sndUna: iss, sndNxt: iss, sndWnd: 0, mss: DEFAULT_MSS, rcvNxt: 0,
      buf: Buffer.alloc(0), off: 0, finOwed: false, finSent: false, finAcked: false, peerFin: false, shortWindow: false,
      timer: null, rto: RTO_MS, retries: 0,
    };
    this.conns.set(c.key, c);
    return c;
  }

  /** The relay socket's events once the connection is being set up. */
  private wire(c: Conn): void {
    const sock = c.sock;
    sock.removeAllListeners('end');
    sock.removeAllListeners('close');
    sock.removeAllListeners('error');
    sock.setNoDelay(true);
    sock.on('data', (b: Buffer) => {
      c.buf = c.buf.length === 0 ? Buffer.from(b) : Buffer.concat([c.buf, b]);
      if (c.state === 'established') this.pump(c, false);
      if (c.buf.length - c.off > SEND_BUFFER) sock.pause();
    });
    sock.on('end', () => { c.finOwed = true; if (c.state === 'established') this.pump(c, false); });
    sock.on('drain', () => { if (c.shortWindow && c.state === 'established') this.ack(c); });
    sock.on('error', () => undefined);
    // Both halves closed cleanly (the VM's FIN and the member's end): the last ACK of our FIN still finishes it.
    sock.on('close', (hadError: boolean) => {
      if (this.conns.get(c.key) === c && (hadError || !c.finOwed || !c.peerFin)) this.abort(c, true);
    });
  }

  /** Sends the SYN (active open) or SYN-ACK (passive), with the MSS option, and arms the timer. */
  private sendSyn(c: Conn): void {
    c.sndNxt = (c.iss + 1) | 0;
    this.send(c, c.state === 'syn-sent' ? SYN : SYN | ACK, c.iss, new Uint8Array(0), true);
    this.arm(c);
  }

  /** A segment from the VM for connection `c`. */
  private segment(c: Conn, s: Segment): void {
    if ((s.flags & RST) !== 0) {
      // In a synchronized state only an in-window RST counts (RFC 9293 §3.10.7.4; here: exactly rcvNxt).
      if (c.state === 'syn-sent' ? (s.flags & ACK) !== 0 && s.ack === c.sndNxt : s.seq === c.rcvNxt) this.abort(c, false);
      return;
    }
    if (c.state === 'dialing') return; // a retransmitted SYN while the member is being dialled
    if (c.state === 'syn-sent') {
      if ((s.flags & (SYN | ACK)) !== (SYN | ACK) || s.ack !== c.sndNxt) return;
      c.rcvNxt = (s.seq + 1) | 0;
      c.sndUna = s.ack;
      c.sndWnd = s.window;
      c.mss = s.mss;
      this.established(c);
      c.sock.write(Uint8Array.of(NET_ACK));
      this.ack(c);
      this.pump(c, false);
      return;
    }
    if ((s.flags & SYN) !== 0) {
      if (c.state === 'syn-received' && s.seq === ((c.rcvNxt - 1) | 0)) this.send(c, SYN | ACK, c.iss, new Uint8Array(0), true);
      return;
    }
    if ((s.flags & ACK) === 0) return;
    if (c.state === 'syn-received') {
      if (s.ack !== c.sndNxt) { this.send(c, RST, s.ack, new Uint8Array(0)); return; }
      c.sndUna = s.ack;
      this.established(c);
    }
    this.acked(c, s);
    if (s.seq !== c.rcvNxt) {
      if (s.data.length > 0 || (s.flags & FIN) !== 0) this.ack(c); // out of order or a duplicate: tell the VM where we are
      this.pump(c, false);
      return;
    }
    let answer = false;
    if (s.data.length > 0 && !c.peerFin) {
      c.sock.write(Buffer.from(s.data)); // a copy: the frame's memory is the switch's
      c.rcvNxt = (c.rcvNxt + s.data.length) | 0;
      answer = true;
    }
    if ((s.flags & FIN) !== 0 && !c.peerFin) {
      c.peerFin = true;
      c.rcvNxt = (c.rcvNxt + 1) | 0;
      c.sock.end();
      answer = true;
    }
    if (answer) this.ack(c);
    this.pump(c, false);
    if (c.peerFin && c.finAcked) this.finish(c);
  }

  private established(c: Conn): void {
    c.state = 'established';
    c.retries = 0;
    c.rto = RTO_MS;
    this.disarm(c);
    c.sock.resume();
  }

  /** The VM's acknowledgement and window in `s`. */
  private acked(c: Conn, s: Segment): void {
    const n = seqDiff(s.ack, c.sndUna);
    if (n < 0 || seqDiff(s.ack, c.sndNxt) > 0) return; // old, or for something never sent
    c.sndWnd = s.window;
    if (n === 0) return;
    let data = n;
    if (c.finSent && s.ack === c.sndNxt) { c.finAcked = true; data--; }
    data = Math.min(data, c.buf.length);
    c.buf = c.buf.subarray(data);
    c.off = Math.max(0, c.off - data);
    c.sndUna = s.ack;
    c.retries = 0;
    c.rto = RTO_MS;
    this.disarm(c);
    if (c.sock.isPaused() && c.buf.length - c.off <= SEND_BUFFER && !c.sock.destroyed) c.sock.resume();
  }

  /** Sends what the VM's window allows (one byte into a zero window when `probe`), then the FIN once everything is sent. */
  private pump(c: Conn, probe: boolean): void {
    if (c.state !== 'established') return;
    for (;;) {
      const avail = c.buf.length - c.off;
      let room = c.sndWnd - c.off;
      if (probe && room <= 0 && c.off === 0) room = 1;
      if (avail <= 0 || room <= 0) break;
      const n = Math.min(avail, room, c.mss);
      this.send(c, ACK | PSH, c.sndNxt, c.buf.subarray(c.off, c.off + n));
      c.off += n;
      c.sndNxt = (c.sndNxt + n) | 0;
    }
    if (c.finOwed && !c.finSent && c.off === c.buf.length) {
      this.send(c, FIN | ACK, c.sndNxt, new Uint8Array(0));
      c.finSent = true;
      c.sndNxt = (c.sndNxt + 1) | 0;
    }
    if (c.off > 0 || (c.finSent && !c.finAcked) || (c.buf.length > 0 && c.sndWnd === 0)) this.arm(c);
  }

  /** An ACK carrying the current window (what the relay socket has not yet taken is off it). */
  private ack(c: Conn): void { this.send(c, ACK, c.sndNxt, new Uint8Array(0)); }

  private arm(c: Conn): void {
    if (c.timer !== null) return;
    c.timer = setTimeout(() => { c.timer = null; this.timeout(c); }, c.rto);
    c.timer.unref();
  }

  private disarm(c: Conn): void {
    if (c.timer !== null) { clearTimeout(c.timer); c.timer = null; }
  }

  /**
   * The timer (RFC 6298 §5): resend the earliest unacknowledged segment
   * (or the FIN, or the SYN), or probe a zero window; give up after
   * MAX_RETRIES, except while probing a window the VM keeps shut.
   */
  private timeout(c: Conn): void {
    if (this.conns.get(c.key) !== c) return;
    const probing = c.sndWnd === 0 && c.off <= 1 && c.buf.length > 0;
    if (!probing && ++c.retries > MAX_RETRIES) { this.abort(c, true); return; }
    c.rto = Math.min(c.rto * 2, RTO_MAX_MS);
    if (c.state === 'syn-sent' || c.state === 'syn-received') { this.sendSyn(c); return; }
    if (c.off > 0) this.send(c, ACK | PSH, c.sndUna, c.buf.subarray(0, Math.min(c.off, c.mss)));
    else if (c.finSent && !c.finAcked) this.send(c, FIN | ACK, c.sndUna, new Uint8Array(0));
    else if (probing) this.pump(c, true);
    if (c.off > 0 || (c.finSent && !c.finAcked) || probing) this.arm(c);
  }

  /** Both directions have closed: the connection is done (no TIME-WAIT: a late segment gets a RST). */
  private finish(c: Conn): void {
    this.drop(c);
    if (!c.sock.destroyed) c.sock.end();
  }

  /** Ends `c` at once: a RST to the VM unless it sent one (`tell`), and the relay socket destroyed. */
  private abort(c: Conn, tell: boolean): void {
    if (this.conns.get(c.key) !== c) return;
    this.drop(c);
    if (tell && c.state !== 'dialing') this.send(c, RST | ACK, c.sndNxt, new Uint8Array(0));
    c.sock.destroy();
  }

  private drop(c: Conn): void {
    this.disarm(c);
    if (this.conns.get(c.key) === c) this.conns.delete(c.key);
  }

  /** A RST answering segment `s` that belongs to no connection (RFC 9293 §3.10.7.1). */
  private resetFor(s: Segment): void {
    const hasAck = (s.flags & ACK) !== 0;
    const len = s.data.length + ((s.flags & SYN) !== 0 ? 1 : 0) + ((s.flags & FIN) !== 0 ? 1 : 0);
    this.frame(s.srcMac, s.dstIp, s.dstPort, s.srcIp, s.srcPort, hasAck ? RST : RST | ACK, hasAck ? s.ack : 0,
      hasAck ? 0 : (s.seq + len) | 0, 0, new Uint8Array(0), false);
  }

  /** A segment of `c` from the relay member to the VM. */
  private send(c: Conn, flags: number, seq: number, data: Uint8Array, mssOption = false): void {
    const free = Math.max(0, RCV_WINDOW - c.sock.writableLength);
    c.shortWindow = free < RCV_WINDOW;
    this.frame(c.vmMac, c.relayIp, c.relayPort, c.vmIp, c.vmPort, flags, seq, c.rcvNxt, free, data, mssOption);
  }

  /** Builds and emits one Ethernet/IPv4/TCP frame, from the MAC of its source address (dockerMac). */
  private frame(dmac: Uint8Array, src: Uint8Array, sport: number, dst: Uint8Array, dport: number,
    flags: number, seq: number, ack: number, window: number, data: Uint8Array, mssOption: boolean): void {
    const opt = mssOption ? 4 : 0;
    const tcpLen = TCP_HDR + opt + data.length;
    const f = new Uint8Array(ETH + IP_HDR + tcpLen);
    f.set(dmac, 0); f.set(dockerMac(src), 6); f[12] = ETH_IPV4 >> 8; f[13] = ETH_IPV4 & 0xff;
    const ip = ETH, ipLen = IP_HDR + tcpLen;
    f[ip] = 0x45; f[ip + 2] = ipLen >> 8; f[ip + 3] = ipLen & 0xff; // version 4, IHL 5 (RFC 791 §3.1)
    this.ipId = (this.ipId + 1) & 0xffff;
    f[ip + 4] = this.ipId >> 8; f[ip + 5] = this.ipId & 0xff;
    f[ip + 6] = 0x40; // don't fragment
    f[ip + 8] = TTL; f[ip + 9] = IP_TCP;
    f.set(src.subarray(0, 4), ip + 12); f.set(dst.subarray(0, 4), ip + 16);
    put16(f, ip + 10, checksum(f, ip, IP_HDR, 0));
    const t = ip + IP_HDR;
    put16(f, t, sport); put16(f, t + 2, dport); put32(f, t + 4, seq); put32(f, t + 8, (flags & ACK) !== 0 ? ack : 0);
    f[t + 12] = ((TCP_HDR + opt) / 4) << 4; f[t + 13] = flags;
    put16(f, t + 14, Math.min(window, 0xffff));
    if (mssOption) { f[t + 20] = 2; f[t + 21] = 4; put16(f, t + 22, OUR_MSS); } // kind 2, length 4 (RFC 9293 §3.2)
    f.set(data, t + TCP_HDR + opt);
    // The pseudo-header (RFC 9293 §3.1): source, destination, zero, protocol, TCP length.
    let pseudo = 0;
    for (let i = 0; i < 8; i += 2) pseudo += (f[ip + 12 + i]! << 8) | f[ip + 13 + i]!;
    pseudo += IP_TCP + tcpLen;
    put16(f, t + 16, checksum(f, t, tcpLen, pseudo));
    this.emit(f);
  }
}

/** The MAC of a NIC at `ip` on a container network: Docker's 02:42 and the four bytes of the address. */
export function dockerMac(ip: Uint8Array): Uint8Array { return Uint8Array.of(0x02, 0x42, ip[0]!, ip[1]!, ip[2]!, ip[3]!); }

/** The connection key: VM address and port, member address and port. */
function key(vmIp: Uint8Array, vmPort: number, relayIp: Uint8Array, relayPort: number): string {
  return `${ipText(vmIp)}:${vmPort}>${ipText(relayIp)}:${relayPort}`;
}

/** The TCP segment in an Ethernet/IPv4 frame, or null (not TCP, a fragment, or malformed). */
function parse(f: Uint8Array): Segment | null {
  if (f.length < ETH + IP_HDR + TCP_HDR || ((f[12]! << 8) | f[13]!) !== ETH_IPV4) return null;
  const ihl = (f[ETH]! & 0x0f) * 4;
  if ((f[ETH]! >> 4) !== 4 || ihl < IP_HDR || f[ETH + 9] !== IP_TCP) return null;
  // A fragment: more fragments (flag 0x20) or a fragment offset (RFC 791 §3.1).
  if ((f[ETH + 6]! & 0x20) !== 0 || (((f[ETH + 6]! & 0x1f) << 8) | f[ETH + 7]!) !== 0) return null;
  const total = Math.min((f[ETH + 2]! << 8) | f[ETH + 3]!, f.length - ETH); // Ethernet may pad the frame
  const t = ETH + ihl;
  if (total < ihl + TCP_HDR) return null;
  const doff = (f[t + 12]! >> 4) * 4;
  if (doff < TCP_HDR || ihl + doff > total) return null;
  const flags = f[t + 13]! & 0x3f;
  let mss = DEFAULT_MSS;
  if ((flags & SYN) !== 0) {
    for (let i = t + TCP_HDR; i < t + doff;) {
      const kind = f[i]!;
      if (kind === 0) break;
      if (kind === 1) { i++; continue; }
      const len = f[i + 1] ?? 0;
      if (len < 2) break;
      if (kind === 2 && len === 4) mss = Math.max(64, Math.min(OUR_MSS, (f[i + 2]! << 8) | f[i + 3]!));
      i += len;
    }
  }
  return {
    srcMac: f.subarray(6, 12), srcIp: f.subarray(ETH + 12, ETH + 16), dstIp: f.subarray(ETH + 16, ETH + 20),
    srcPort: (f[t]! << 8) | f[t + 1]!, dstPort: (f[t + 2]! << 8) | f[t + 3]!,
    seq: get32(f, t + 4), ack: get32(f, t + 8), flags, window: (f[t + 14]! << 8) | f[t + 15]!, mss,
    data: f.subarray(t + doff, ETH + total),
  };
}

function put16(b: Uint8Array, off: number, v: number): void { b[off] = (v >> 8) & 0xff; b[off + 1] = v & 0xff; }
function put32(b: Uint8Array, off: number, v: number): void { put16(b, off, v >>> 16); put16(b, off + 2, v & 0xffff); }
function get32(b: Uint8Array, off: number): number { return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) | 0; }
