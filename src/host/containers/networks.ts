/**
 * Container networks (`tsvm network create NAME`, Docker's user-defined
 * bridge) and the files Docker writes into every container (/etc/hosts,
 * /etc/hostname, /etc/resolv.conf).
 *
 * A network is a record on disk, `networks/NAME.json` beside the container
 * records, with a subnet: the first free /16 of Docker's default pool
 * 172.18.0.0 to 172.31.0.0 (172.17.0.0/16 is Docker's default bridge),
 * gateway .1. A container started on it gets the first free address from
 * .2 and its process VM joins the network's directory of unix sockets
 * (`networks/ID12/`, one per member, named by address; network-relay.ts):
 * TCP to another member's address reaches that container's listener.
 * Names resolve through /etc/hosts, which lists every running member by
 * container name (Docker's embedded DNS answers the same names); it is
 * rewritten whenever a member comes or goes. There is no DNS server and
 * no UDP between containers. A container on the default network has only
 * loopback, and its /etc/hosts only its own names: it cannot resolve the
 * members of any network.
 *
 * The three files live in the container's directory and are bound over
 * the image (`tsvm exec --volume`), so the image and `commit` never hold
 * them, as with Docker.
 *
 * The vm runtime's containers join a network at the link layer instead: a
 * second NIC on the network's switch (net-switch.ts, the unix socket
 * `networks/ID12/switch`), an address from the same subnet that the guest
 * agent sets on it, and /etc/hosts and /etc/hostname from the container's
 * `etc/` directory, a read-only virtiofs share the agent binds over the
 * image's files. Both runtimes' containers resolve each other the same
 * way, and one network holds both: the gateway (net-gateway.ts) answers
 * ARP for the process members' addresses, and its TCP bridge (tcp-bridge.ts)
 * splices the VMs' TCP to their relay sockets and listens on each vm
 * member's address in the network's directory, so a process member's
 * dial becomes TCP to that VM. Only TCP crosses between the runtimes, as
 * only TCP crosses between process members.
 *
 * Plain VMs join too (`tsvm vm run --network NAME`): a NIC on the switch
 * whose MAC names its address. The switch's gateway at .1 (net-gateway.ts)
 * gives that address by DHCP and answers DNS for every member's name, so
 * a guest needs nothing from tsvm; the containers' /etc/hosts list the VMs.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ContainerError, NAME_RE, type ContainerRecord } from './store.js';
import { NetSwitch } from '../net-switch.js';
import { NetGateway, type GatewayMember } from '../net-gateway.js';
import { TcpBridge, dockerMac } from '../tcp-bridge.js';
import { parseIp } from '../network-relay.js';

/** A network's record (the fields of `docker network inspect` that apply). */
export interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  Driver: 'bridge';
  Scope: 'local';
  IPAM: { Config: Array<{ Subnet: string; Gateway: string }> };
}

/** A network with its running members (GET /v1/networks). */
export interface NetworkView extends NetworkRecord {
  Containers: Record<string, { Name: string; IPv4Address: string }>;
}

/** The names of Docker's predefined networks: `--network` with one of them is the default network (loopback only). */
export const PREDEFINED = ['bridge', 'default', 'none'];
/** Docker's default address pool: /16s from 172.17.0.0 to 172.31.0.0 (172.17 is the default bridge's). */
const POOL_FIRST = 18, POOL_LAST = 31;
/** Prefix length of each network's subnet. */
const PREFIX = 16;
/** Member ids of plain VMs (`tsvm vm run --network`): this prefix and the VM's name (container ids are hex). */
const VM_MEMBER = 'vm:';
/** A container's hostname resolves to this loopback address when it has no network address (Debian's convention for the host name). */
const SELF_LOOPBACK = '127.0.1.1';

/** A running member: its address, name and runtime. */
interface Member { id: string; name: string; hostname: string; ip: string; hostsFile: string; runtime: 'process' | 'vm' }

/** Where a vm-runtime container joins its network (VmRuntime.vmArgs). */
export interface VmAttachment {
  /** Its address and the subnet's prefix length, `172.18.0.2/16`. */
  cidr: string;
  /** Its NIC's MAC: Docker's 02:42 and the four bytes of the address. */
  mac: string;
  /** The network switch's unix socket. */
  switchPath: string;
  /** The host directory with its hosts and hostname files (shared read-only into the guest). */
  etcDir: string;
}

/** The networks and their running members. */
export class NetworkManager {
  private readonly nets = new Map<string, NetworkRecord>();
  /** Running members by network id. */
  private readonly members = new Map<string, Map<string, Member>>();
  /** The switches of networks with vm members, by network id. */
  private readonly switches = new Map<string, Promise<NetSwitch>>();
  /** The TCP bridges between a network's switch and its process members, by network id. */
  private readonly bridges = new Map<string, TcpBridge>();

  private constructor(private readonly dir: string) {}

  /** Opens (creating) `dir` and loads every network; unreadable records are skipped with a warning. */
  static open(dir: string, warn: (line: string) => void = () => {}): NetworkManager {
    const m = new NetworkManager(dir);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(dir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as NetworkRecord;
        if (r.Name + '.json' !== f) throw new Error('name mismatch');
        m.nets.set(r.Name, r);
      } catch (e) { warn(`network ${f}: unreadable record skipped (${(e as Error).message})`); }
    }
    return m;
  }

  /** Every network, with its running members. */
  list(): NetworkView[] { return [...this.nets.values()].map((n) => this.view(n)); }

  private view(n: NetworkRecord): NetworkView {
    const Containers: NetworkView['Containers'] = {};
    for (const m of this.members.get(n.Id)?.values() ?? []) Containers[m.id] = { Name: m.name, IPv4Address: `${m.ip}/${PREFIX}` };
    return { ...n, Containers };
  }

  /** Finds a network by name, full id or unique id prefix; 404 otherwise (Docker's words). */
  find(ref: string): NetworkRecord {
    const byName = this.nets.get(ref);
    if (byName !== undefined) return byName;
    if (/^[0-9a-f]{1,64}$/.test(ref)) {
      const hits = [...this.nets.values()].filter((n) => n.Id.startsWith(ref));
      if (hits.length === 1) return hits[0]!;
    }
    throw new ContainerError(404, `network ${ref} not found`);
  }

  /** The view of one network. */
  inspect(ref: string): NetworkView { return this.view(this.find(ref)); }

  /** Creates network `name`; 409 if the name is taken, 400 for a bad name or a full pool. */
  create(name: string): NetworkRecord {
    if (!NAME_RE.test(name)) throw new ContainerError(400, `invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed`);
    if (this.nets.has(name) || PREDEFINED.includes(name)) throw new ContainerError(409, `network with name ${name} already exists`);
    const used = new Set([...this.nets.values()].map((n) => n.IPAM.Config[0]?.Subnet));
    let second = -1;
    for (let b = POOL_FIRST; b <= POOL_LAST; b++) if (!used.has(`172.${b}.0.0/${PREFIX}`)) { second = b; break; }
    if (second < 0) throw new ContainerError(400, 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
    let id: string;
    do id = crypto.randomBytes(32).toString('hex'); while ([...this.nets.values()].some((n) => n.Id.slice(0, 12) === id.slice(0, 12)));
    const rec: NetworkRecord = {
      Name: name, Id: id, Created: new Date().toISOString(), Driver: 'bridge', Scope: 'local',
      IPAM: { Config: [{ Subnet: `172.${second}.0.0/${PREFIX}`, Gateway: `172.${second}.0.1` }] },
    };
    const file = path.join(this.dir, `${name}.json`), tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(rec, null, 1), { mode: 0o600 });
    fs.renameSync(tmp, file);
    this.nets.set(name, rec);
    return rec;
  }

  /** Removes a network; 409 while any container (running or not) is attached to it. */
  remove(ref: string, containers: readonly ContainerRecord[]): string {
    const n = this.find(ref);
    const vms = [...(this.members.get(n.Id)?.values() ?? [])].filter((m) => m.id.startsWith(VM_MEMBER)).map((m) => `VM ${m.name}`);
    const users = [...containers.filter((c) => c.Config.NetworkMode === n.Name).map((c) => c.Name.slice(1)), ...vms];
    if (users.length > 0) throw new ContainerError(409, `error while removing network: network ${n.Name} id ${n.Id.slice(0, 12)} has containers attached: ${users.join(', ')}`);
    fs.rmSync(path.join(this.dir, `${n.Name}.json`), { force: true });
    void this.switches.get(n.Id)?.then((sw) => sw.close()).catch(() => {});
    this.switches.delete(n.Id);
    this.bridges.get(n.Id)?.close();
    this.bridges.delete(n.Id);
    fs.rmSync(this.socketDir(n), { recursive: true, force: true });
    this.nets.delete(n.Name);
    this.members.delete(n.Id);
    return n.Name;
  }

  /** Checks `--network NAME` at create: the network's name (a predefined one: undefined), or 404. */
  check(name: string | undefined): string | undefined {
    if (name === undefined || name === '' || PREDEFINED.includes(name)) return undefined;
    if (name === 'host' || name.startsWith('container:')) throw new ContainerError(400, `--network ${name}: not supported by the process runtime`);
    return this.find(name).Name;
  }

  private socketDir(n: NetworkRecord): string { return path.join(this.dir, n.Id.slice(0, 12)); }

  /**
   * The `tsvm exec` arguments for container `r`: its /etc files (written
   * now) and, for its main process (`main`) on a network, its address
   * (the first free one, kept until `leave`) and the network's sockets.
   */
  runtimeArgs(r: ContainerRecord, main: boolean, containerDir: string): string[] {
    const files = { hosts: path.join(containerDir, 'hosts'), hostname: path.join(containerDir, 'hostname'), resolv: path.join(containerDir, 'resolv.conf') };
    const args: string[] = [];
    const name = r.Config.NetworkMode;
    const n = name !== undefined && name !== '' ? this.nets.get(name) : undefined;
    let me: Member | undefined;
    if (n !== undefined) {
      const ms = this.members.get(n.Id) ?? new Map<string, Member>();
      this.members.set(n.Id, ms);
      me = ms.get(r.Id);
      if (me === undefined && main) {
        me = { id: r.Id, name: r.Name.slice(1), hostname: r.Config.Hostname, ip: freeAddress(n, ms), hostsFile: files.hosts, runtime: 'process' };
        ms.set(r.Id, me);
      }
      if (me !== undefined && main) {
        const dir = this.socketDir(n);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        args.push('--network-dir', dir, '--network-addr', `${me.ip}/${PREFIX}`);
      }
    }
    if (main || !fs.existsSync(files.hosts)) {
      writeAtomic(files.hostname, `${r.Config.Hostname}\n`);
      writeAtomic(files.resolv, '# tsvm: no DNS server in the process runtime; container names resolve through /etc/hosts\n');
      if (n !== undefined) this.rewriteHosts(n); else writeAtomic(files.hosts, hostsText(r.Config.Hostname, SELF_LOOPBACK, []));
    }
    args.push('--volume', `${files.hosts}:/etc/hosts`, '--volume', `${files.hostname}:/etc/hostname`, '--volume', `${files.resolv}:/etc/resolv.conf`);
    return args;
  }

  /**
   * Vm container `r` joins its network (null on the default network): the
   * first free address, hosts and hostname written into `containerDir/etc`,
   * and the network's switch, started with its first vm member.
   */
  async vmAttach(r: ContainerRecord, containerDir: string): Promise<VmAttachment | null> {
    const name = r.Config.NetworkMode;
    const n = name !== undefined && name !== '' ? this.nets.get(name) : undefined;
    if (n === undefined) return null;
    const etcDir = path.join(containerDir, 'etc');
    fs.mkdirSync(etcDir, { recursive: true, mode: 0o755 });
    const me = this.enlist(n, r.Id, r.Name.slice(1), r.Config.Hostname, path.join(etcDir, 'hosts'));
    writeAtomic(path.join(etcDir, 'hostname'), `${r.Config.Hostname}\n`);
    this.rewriteHosts(n);
    try { return { ...(await this.port(n, me)), etcDir }; } catch (e) { this.leaveId(r.Id); throw e; }
  }

  /**
   * Plain VM `name` (`tsvm vm run --network NET`) joins network `ref`: an
   * address its NIC gets from the gateway's DHCP, its name in the members'
   * /etc/hosts and the gateway's DNS; the `tsvm run` options of that NIC.
   * 404 for an unknown network.
   */
  async attachVm(ref: string, name: string): Promise<string[]> {
    const n = this.find(ref);
    const me = this.enlist(n, `${VM_MEMBER}${name}`, name, name, '');
    this.rewriteHosts(n);
    try {
      const p = await this.port(n, me);
      return ['-netdev', `stream,id=tsvm-network,server=off,addr.type=unix,addr.path=${p.switchPath}`, '-device', `virtio-net-device,netdev=tsvm-network,mac=${p.mac}`];
    } catch (e) { this.leaveId(me.id); throw e; }
  }

  /** Plain VM `name` has ended: it leaves its network. */
  leaveVm(name: string): void { this.leaveId(`${VM_MEMBER}${name}`); }

  /** Member `id` of network `n` (a vm container or a VM), with the first free address if it is new. */
  private enlist(n: NetworkRecord, id: string, name: string, hostname: string, hostsFile: string): Member {
    const ms = this.members.get(n.Id) ?? new Map<string, Member>();
    this.members.set(n.Id, ms);
    let me = ms.get(id);
    if (me === undefined) {
      me = { id, name, hostname, ip: freeAddress(n, ms), hostsFile, runtime: 'vm' };
      ms.set(id, me);
    }
    return me;
  }

  /**
   * Member `me`'s port on network `n`'s switch (started with its gateway
   * and TCP bridge on first use), and the bridge's listener for process
   * members' dials to it: its address, MAC and the switch's socket.
   */
  private async port(n: NetworkRecord, me: Member): Promise<{ cidr: string; mac: string; switchPath: string }> {
    let sw = this.switches.get(n.Id);
    const dir = this.socketDir(n);
    if (sw === undefined) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const gw = n.IPAM.Config[0]!.Gateway;
      const find = (pred: (m: Member) => boolean): Member | undefined => [...(this.members.get(n.Id)?.values() ?? [])].find(pred);
      const answer = (m: Member | undefined): GatewayMember | null => m === undefined ? null : { ip: m.ip, hostname: m.hostname };
      const mac = dockerMac(parseIp(gw)!);
      const bridge = new TcpBridge({ dir, isRelay: (ip) => find((m) => m.runtime === 'process' && m.ip === ip) !== undefined });
      this.bridges.set(n.Id, bridge);
      const gateway = new NetGateway({
        ip: gw, mac, prefix: PREFIX,
        // DHCP for the NICs on the switch (a process container has none); DNS for every member.
        byMac: (m) => answer(find((x) => x.runtime === 'vm' && macOf(x.ip).replaceAll(':', '') === m)),
        byName: (name) => answer(find((x) => x.name.toLowerCase() === name || x.hostname.toLowerCase() === name)),
        tcp: bridge,
      });
      sw = NetSwitch.listen(path.join(dir, 'switch'), gateway).then((s) => { bridge.attach((f) => s.inject(f)); return s; });
      this.switches.set(n.Id, sw);
      void sw.catch(() => { this.switches.delete(n.Id); this.bridges.delete(n.Id); });
    }
    let s: NetSwitch;
    try {
      s = await sw;
      await this.bridges.get(n.Id)?.listen(me.ip);
    } catch (e) { throw new ContainerError(500, `network ${n.Name}: cannot start its switch: ${(e as Error).message}`); }
    return { cidr: `${me.ip}/${PREFIX}`, mac: macOf(me.ip), switchPath: s.path };
  }

  /** Stops every network's switch (the host is stopping). */
  async close(): Promise<void> {
    const all = [...this.switches.values()];
    this.switches.clear();
    for (const b of this.bridges.values()) b.close();
    this.bridges.clear();
    await Promise.all(all.map((p) => p.then((sw) => sw.close()).catch(() => {})));
  }

  /** Container `r` has stopped: its address is free again and the others' /etc/hosts drop it. */
  leave(r: ContainerRecord): void { this.leaveId(r.Id); }

  private leaveId(id: string): void {
    for (const [netId, ms] of this.members) {
      const m = ms.get(id);
      if (m === undefined || !ms.delete(id)) continue;
      if (m.runtime === 'vm') this.bridges.get(netId)?.unlisten(m.ip);
      const n = [...this.nets.values()].find((x) => x.Id === netId);
      if (n !== undefined) this.rewriteHosts(n);
    }
  }

  /** Rewrites every running member's /etc/hosts of network `n`. */
  private rewriteHosts(n: NetworkRecord): void {
    const ms = [...(this.members.get(n.Id)?.values() ?? [])];
    for (const m of ms) {
      const others = ms.filter((o) => o !== m).map((o) => ({ ip: o.ip, names: [o.name] }));
      if (m.hostsFile === '') continue; // a plain VM: it asks the gateway's DNS
      const own = m.name === m.hostname ? m.name : `${m.hostname} ${m.name}`;
      try { writeAtomic(m.hostsFile, hostsText(own, m.ip, others)); } catch { /* removed meanwhile */ }
    }
  }
}

/** Docker's MAC for an address on a network: 02:42 and the address's four bytes. */
function macOf(ip: string): string {
  return Array.from(dockerMac(parseIp(ip)!), (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The first address of `n` from .2 up that no member has. */
function freeAddress(n: NetworkRecord, ms: Map<string, Member>): string {
  const [a, b] = n.IPAM.Config[0]!.Subnet.split('.') as [string, string];
  const taken = new Set([...ms.values()].map((m) => m.ip));
  for (let i = 2; i < 65534; i++) {
    const ip = `${a}.${b}.${i >> 8}.${i & 0xff}`;
    if ((i & 0xff) !== 0 && (i & 0xff) !== 255 && !taken.has(ip)) return ip;
  }
  throw new ContainerError(409, `network ${n.Name}: no free address`);
}

/** Docker's /etc/hosts: loopback, the IPv6 names, then the container's own address and names, and the other members. */
function hostsText(hostname: string, ip: string, entries: Array<{ ip: string; names: string[] }>): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', 'fe00::0\tip6-localnet', 'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes', 'ff02::2\tip6-allrouters', `${ip}\t${hostname}`];
  for (const e of entries) lines.push(`${e.ip}\t${e.names.join(' ')}`);
  return lines.join('\n') + '\n';
}

/** Writes `file` through a temp file and a rename (a guest reading it sees the old or the new text, whole). */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, file);
}
