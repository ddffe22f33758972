/**
 * The `vm` container runtime (issue 15 point 3): each container is a
 * microVM on the host's VmManager, named after the container (so it shows
 * in `tsvm vm ls` and gets the host's memory pool, page sharing and
 * ballooning), booting Debian's stock kernel (the default guest's) with the
 * guest agent as PID 1 (src/host/vm-agent, docs/vm-agent.md).
 *
 * The root is the image's unpacked layers (lower) and the container's own
 * layer (upper) over virtio-fs with the overlay backend: the writable layer
 * stays a host directory, so persistence, `commit` and `rm` work as in the
 * process runtime. `--memory` is the VM's RAM, `--cpus` its vCPU count
 * (rounded up), the hostname comes on the kernel command line for the
 * agent, env/workdir/user with each exec. Networking is user networking
 * (passt), `-p` forwarded through it.
 *
 * The container's main process is the agent's first exec (`run`), PID 1 of
 * its own PID namespace inside the guest, as in Docker and Kata: `echo $$`
 * prints 1 and an unhandled SIGTERM is ignored, so `stop` waits for its
 * timeout and SIGKILLs (137). When it exits the agent powers the VM off;
 * the host then removes the ended VM from its list.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { parsePublish } from '../publish-spec.js';
import { parseBind } from '../bind-spec.js';
import type { BindMount } from '../../process/bind-host-os.js';
import { HostApiError, epochMs, type VmManager, type VmRecord } from '../vm-manager.js';
import { AgentClient, type AgentProcess, type RunOptions } from '../vm-agent/agent-client.js';
import { ensureAgentGuest, type AgentGuest } from '../vm-agent/initrd.js';
import { ContainerError, type ContainerRecord } from './store.js';
import type { VmAttachment } from './networks.js';
import { VmSpareKeeper, type SpareVm } from './vm-spare.js';

/** The VM's RAM when the container has no --memory (bytes). */
export const VM_DEFAULT_MEMORY = 256 * 1024 * 1024;
/** Most volumes of a vm container: the virt board's 8 virtio-mmio slots less root, console, network and the host's balloon. */
const VM_MAX_VOLUMES = 4;
/** Slots a container network takes from the volumes: its NIC and the share of /etc/hosts and /etc/hostname. */
const NETWORK_SLOTS = 2;
/** The virtio-fs tag of a networked container's hosts and hostname files (the agent's `tsvm.etc=TAG`). */
const ETC_TAG = 'ctr-etc';
/** Longest `tsvm.mounts=` value: the guest agent reads a kernel argument into 256 bytes (guest/agent/agent.c, kernel_arg). */
const VM_MOUNTS_ARG_MAX = 255;

/** The least --memory the vm runtime takes: Debian's kernel and the agent need about 40 MiB before the container's process. */
export const VM_MIN_MEMORY = 64 * 1024 * 1024;
/** How long a container VM may take from creation to the agent's READY. */
const BOOT_TIMEOUT_MS = 300_000;
/** How long the host waits for the VM to power off after its main process exited, before it ends it. */
const POWEROFF_GRACE_MS = 10_000;
/**
 * Kernel arguments that shorten a container VM's boot: the crypto manager's
 * self-tests of every algorithm (Documentation/admin-guide/kernel-parameters.txt,
 * cryptomgr.notests) took 5 of the 11 s the Debian kernel's initcalls take
 * here (initcall_debug); Kata Containers passes it to its guests too.
 */
const BOOT_ARGS = 'cryptomgr.notests';
/** The virtio-fs tag of the container's root (the agent mounts `tsvm.root=virtiofs:TAG`). */
const ROOT_TAG = 'ctr-root';
/** What the guest kernel prints when its OOM killer kills a process (mm/oom_kill.c, __oom_kill_process). */
const OOM_RE = /Out of memory: Killed process|Memory cgroup out of memory: Killed process/;
/** Exit status of a main process whose VM ended under it (killed: 128 + SIGKILL). */
const EXIT_VM_LOST = 137;
const MiB = 1024 * 1024;
/** A hostname (RFC 1123 labels; at most HOST_NAME_MAX = 64 bytes, Linux limits.h). */
const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$/;
/** The host pool's page size (RISC-V Sv39 base pages, 4 KiB). */
const PAGE_BYTES = 4096;

/** What the engine holds of a runtime process: ChildProcess has these, and so does a process in a container VM. */
export interface RuntimeChild {
  /** Its stdin (null: none). */
  readonly stdin: Writable | null;
  /** A host pid for `inspect`, or undefined. */
  readonly pid?: number | undefined;
  /** Sends a signal (a name or number). */
  kill(signal?: NodeJS.Signals | number): boolean;
  /** Its command line (the exec's argv follows a `--`). */
  readonly spawnargs: string[];
}

/** A process in a container VM as the engine wires it: its child, output streams and exit. */
export interface VmProcess {
  child: RuntimeChild;
  stdout: Readable;
  stderr: Readable;
  /** Resolves with the exit status: N, or 128 + signal. */
  exited: Promise<number>;
  /** Whether the guest's OOM killer killed a process (main only). */
  oom: () => boolean;
  /** Sets its terminal's size (started with a tty; the guest sees SIGWINCH); 409 once its agent is gone. */
  resize: (rows: number, cols: number) => void;
}

/** One running container VM (its name is its record's: a spare's changes when a container takes it). */
interface Vm { agent: AgentClient; rec: VmRecord; dir: string; oom: boolean }

/** A booted spare VM (vm-spare.ts): its agent is READY, its shares unbound. */
type BootedSpare = Vm & SpareVm;

/** Guest `top`: one line per process (see topScript). */
export interface GuestProcess { uid: string; pid: number; ppid: number; stime: string; time: string; cmd: string; ticks: number }

/** The `vm` runtime (see the module comment). */
export class VmRuntime {
  private guest: Promise<AgentGuest> | null = null;
  private readonly vms = new Map<string, Vm>();
  /** The warm spare VM (vm-spare.ts); TSVM_SPARE_VM=0 in the host's environment turns it off. */
  readonly spares: VmSpareKeeper<BootedSpare>;
  private spareSeq = 0;

  constructor(private readonly manager: VmManager, warn: (line: string) => void = () => {}) {
    this.spares = new VmSpareKeeper(() => this.bootSpare(), process.env['TSVM_SPARE_VM'] !== '0', warn);
  }

  /** Whether container `r` can start on a spare: the spare's shape (default memory, one vCPU, no ports or container network; volumes go on its late shares). */
  static fitsSpare(r: ContainerRecord, net: VmAttachment | null): boolean {
    const c = r.Config;
    return net === null && c.Memory <= 0 && c.NanoCpus <= 1e9 && c.PortBindings.length === 0 && c.Binds.length <= VM_MAX_VOLUMES;
  }

  /** `tsvm run` options of a spare VM: the default container's, with a late root share and no container yet. */
  static spareArgs(g: AgentGuest, sock: string): string[] {
    return [
      '-m', `${VM_DEFAULT_MEMORY / MiB}M`, '-smp', '1', '-kernel', g.kernel, '-initrd', g.initrd, '-append', `console=ttyS0 quiet ${BOOT_ARGS} tsvm.net=dhcp`,
      '-fsdev', 'late,id=root', '-device', `virtio-fs-device,fsdev=root,tag=${ROOT_TAG}`,
      // A late share per volume slot, tagged as vmArgs tags volumes (an unbound one is never mounted).
      ...Array.from({ length: VM_MAX_VOLUMES }, (_, k) => ['-fsdev', `late,id=vol${k}`, '-device', `virtio-fs-device,fsdev=vol${k},tag=vol${k}`]).flat(),
      '-chardev', `socket,id=agent,path=${sock},server=on,wait=off`, '-device', 'virtio-console-device,chardev=agent',
      '-netdev', 'user,id=net0', '-device', 'virtio-net-device,netdev=net0',
    ];
  }

  /** Boots a spare VM to its agent's READY (hidden from `vm ls`). */
  private async bootSpare(): Promise<BootedSpare> {
    const g = await this.agentGuest();
    const vm = await this.bootVm(`spare-${process.pid}-${++this.spareSeq}`, (sock) => VmRuntime.spareArgs(g, sock), true);
    return Object.assign(vm, { gone: vm.rec.gone, end: () => this.end(vm) });
  }

  /**
   * Creates VM `name` from the options `args` gives for its agent socket
   * (`hidden`: left out of `vm ls`) and waits for its agent's READY; a VM
   * that does not come up is ended (500 with the console's last line).
   */
  private async bootVm(name: string, args: (sock: string) => string[], hidden: boolean): Promise<Vm> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-ctr-'));
    const sock = path.join(dir, 'agent.sock');
    let rec: VmRecord;
    try { rec = await this.manager.create(name, args(sock), '/', false, epochMs(), {}, hidden); } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const vm: Vm = { agent: null as unknown as AgentClient, rec, dir, oom: false };
    try {
      vm.agent = await Promise.race([
        AgentClient.connect(sock, BOOT_TIMEOUT_MS),
        rec.gone.then(() => { throw new Error(`the VM ended while booting (${rec.reason ?? 'no reason'})`); }),
      ]);
    } catch (e) {
      await this.end(vm);
      const tail = Buffer.from(rec.log.snapshot()).toString('utf8').trim().split('\n').slice(-1)[0] ?? '';
      throw new ContainerError(500, `the container's VM did not come up: ${(e as Error).message}${tail !== '' ? ` (console: ${tail})` : ''}`);
    }
    return vm;
  }

  /**
   * Makes spare `s` container `r`'s VM, named `name`: binds the root share
   * to the container's layers, renames the VM, and has the agent mount the
   * root and set the hostname and pids limit. Throws when any step fails
   * (the caller ends the spare and boots cold).
   */
  private async adopt(s: BootedSpare, r: ContainerRecord, name: string): Promise<void> {
    const c = r.Config;
    fs.mkdirSync(r.UpperDir, { recursive: true });
    const esc = (v: string): string => v.replace(/,/g, ',,'); // QEMU's option syntax
    const bind = async (id: string, options: string): Promise<void> => {
      const reply = await this.manager.request(s.rec.name, 'qmp', { execute: '__tsvm-fsdev-bind', arguments: { id, options } });
      const qmpError = (reply.result as { error?: { desc?: string } } | undefined)?.error;
      if (!reply.ok || qmpError !== undefined) throw new Error(`binding fsdev ${id}: ${qmpError?.desc ?? reply.error ?? 'no reply'}`);
    };
    await bind('root', `overlay,lower=${esc(r.LowerDir)},upper=${esc(r.UpperDir)}`);
    const bad = VmRuntime.checkBinds(c.Binds);
    if (bad !== null) throw new ContainerError(400, bad);
    const volumes = VmRuntime.volumes(c.Binds);
    for (const [k, b] of volumes.binds.entries()) await bind(`vol${k}`, `local,path=${esc(b.source)}${b.readOnly ? ',readonly=on' : ''}`);
    this.manager.rename(s.rec.name, name);
    s.rec.hidden = false;
    await s.agent.configure(`tsvm.root=virtiofs:${ROOT_TAG} tsvm.hostname=${c.Hostname}${c.PidsLimit > 0 ? ` tsvm.pids=${c.PidsLimit}` : ''}` +
      `${volumes.binds.length > 0 ? ` tsvm.mounts=${volumes.mounts}` : ''}`);
  }

  /** The container guest (kernel + agent initrd), built once per host. */
  private async agentGuest(): Promise<AgentGuest> {
    this.guest ??= ensureAgentGuest({ progress: false });
    try { return await this.guest; } catch (e) {
      this.guest = null;
      throw new ContainerError(500, `the container VM's guest: ${(e as Error).message.split('\n')[0]!}`);
    }
  }

  /** Checks a vm-runtime create request's memory and hostname (it goes on the kernel command line); a one-line message or null. */
  static check(memory: number, hostname: string | undefined): string | null {
    if (memory > 0 && memory < VM_MIN_MEMORY) return `--memory ${memory}: the vm runtime needs at least ${VM_MIN_MEMORY / MiB} MiB (the guest kernel's share)`;
    if (hostname !== undefined && !HOSTNAME_RE.test(hostname)) return `--hostname ${JSON.stringify(hostname)}: invalid hostname (letters, digits, '.' and '-'; at most 64)`;
    return null;
  }

  /**
   * Checks a vm-runtime container's volumes (Docker's -v, already parsed
   * and made by prepareBinds): each must be a host directory (a virtiofs
   * share), its paths free of the kernel command line's separators, and
   * they must fit the board's virtio slots (fewer `onNetwork`, a container
   * network's NIC and files take two); a one-line message or null.
   */
  static checkBinds(specs: readonly string[], onNetwork = false): string | null {
    const max = VM_MAX_VOLUMES - (onNetwork ? NETWORK_SLOTS : 0);
    if (specs.length > max) {
      return `the vm runtime takes at most ${max} volumes${onNetwork ? ' on a container network' : ''} (virtio-mmio slots: the board has 8, the container's root, console, network and balloon take 4${onNetwork ? ', the container network 2 more' : ''})`;
    }
    for (const spec of specs) {
      const b = parseBind(spec);
      if (typeof b === 'string') return b;
      if (!fs.statSync(b.source).isDirectory()) return `volume '${spec}': the vm runtime binds directories only (each volume is a virtiofs share)`;
      if (/[\s,:]/.test(b.source) || /[\s,:]/.test(b.target)) return `volume '${spec}': the vm runtime takes no spaces, commas or colons in volume paths (the guest reads its mounts from the kernel command line)`;
    }
    if (VmRuntime.volumes(specs).mounts.length > VM_MOUNTS_ARG_MAX) return `the volumes' paths are too long for the vm runtime (${VM_MOUNTS_ARG_MAX} characters in all)`;
    return null;
  }

  /** Checked volumes `specs` as VM options (a virtiofs device each, tags vol0, vol1, ...) and the guest agent's `tsvm.mounts` value (TAG:DIR[:ro],...). */
  private static volumes(specs: readonly string[]): { binds: BindMount[]; args: string[]; mounts: string } {
    const binds = specs.map((spec) => parseBind(spec) as BindMount);
    return {
      binds,
      args: binds.flatMap((b, k) => ['-fsdev', `local,id=vol${k},path=${b.source}${b.readOnly ? ',readonly=on' : ''}`, '-device', `virtio-fs-device,fsdev=vol${k},tag=vol${k}`]),
      mounts: binds.map((b, k) => `vol${k}:${b.target}${b.readOnly ? ':ro' : ''}`).join(','),
    };
  }

  /** `tsvm run` options of container `r`'s VM; `net`: its place on a container network. */
  static vmArgs(r: ContainerRecord, g: AgentGuest, sock: string, net: VmAttachment | null = null): string[] {
    const c = r.Config;
    const mem = Math.ceil((c.Memory > 0 ? c.Memory : VM_DEFAULT_MEMORY) / MiB);
    const smp = c.NanoCpus > 0 ? Math.max(1, Math.ceil(c.NanoCpus / 1e9)) : 1;
    const bad = VmRuntime.checkBinds(c.Binds, net !== null);
    if (bad !== null) throw new ContainerError(400, bad);
    const volumes = VmRuntime.volumes(c.Binds);
    const append = `console=ttyS0 quiet ${BOOT_ARGS} tsvm.hostname=${c.Hostname} tsvm.root=virtiofs:${ROOT_TAG} tsvm.net=dhcp` +
      `${c.PidsLimit > 0 ? ` tsvm.pids=${c.PidsLimit}` : ''}${c.Binds.length > 0 ? ` tsvm.mounts=${volumes.mounts}` : ''}` +
      `${net !== null ? ` tsvm.ip=${net.cidr} tsvm.etc=${ETC_TAG}` : ''}`;
    const fwd: string[] = [];
    for (const spec of c.PortBindings) {
      const p = parsePublish(spec);
      if (typeof p === 'string') throw new ContainerError(400, p);
      if (p.hostAddr.includes(':')) throw new ContainerError(400, `-p ${spec}: the vm runtime publishes on IPv4 addresses only so far`);
      fwd.push(`hostfwd=tcp:${p.hostAddr}:${p.hostPort}-:${p.port}`);
    }
    return [
      '-m', `${mem}M`, '-smp', String(smp), '-kernel', g.kernel, '-initrd', g.initrd, '-append', append,
      '-fsdev', `overlay,id=root,lower=${r.LowerDir},upper=${r.UpperDir}`, '-device', `virtio-fs-device,fsdev=root,tag=${ROOT_TAG}`, ...volumes.args,
      '-chardev', `socket,id=agent,path=${sock},server=on,wait=off`, '-device', 'virtio-console-device,chardev=agent',
      '-netdev', ['user', 'id=net0', ...fwd].join(','), '-device', 'virtio-net-device,netdev=net0',
      ...(net === null ? [] : [
        '-netdev', `stream,id=net1,server=off,addr.type=unix,addr.path=${net.switchPath}`, '-device', `virtio-net-device,netdev=net1,mac=${net.mac}`,
        '-fsdev', `local,id=etc,path=${net.etcDir},readonly=on`, '-device', `virtio-fs-device,fsdev=etc,tag=${ETC_TAG}`,
      ]),
    ];
  }

  /** Boots container `r`'s VM, named `name`, to its agent's READY (the cold start: no spare fits or none is ready). */
  private async bootCold(r: ContainerRecord, name: string, net: VmAttachment | null): Promise<Vm> {
    const g = await this.agentGuest();
    fs.mkdirSync(r.UpperDir, { recursive: true });
    try { return await this.bootVm(name, (sock) => VmRuntime.vmArgs(r, g, sock, net), false); } catch (e) {
      if (e instanceof HostApiError) throw new ContainerError(e.status === 409 ? 409 : 500, `cannot start the container's VM: ${e.message}`);
      throw e;
    }
  }

  /**
   * Starts container `r`'s VM (a spare when one fits and is ready, else a
   * fresh boot) and starts `argv` in it as the main process
   * (PID 1 of the container's PID namespace); `opts` are its env, cwd, user;
   * `net` its place on a container network.
   */
  async start(r: ContainerRecord, argv: string[], opts: RunOptions, net: VmAttachment | null = null): Promise<VmProcess> {
    const name = r.Name.slice(1);
    // A VM of this name that has ended (a previous run that was not cleaned up) gives its name back.
    try { if (this.manager.get(name).worker === null) await this.manager.remove(name, false); } catch { /* no such VM */ }
    let vm: Vm | null = null;
    const spare = VmRuntime.fitsSpare(r, net) ? this.spares.take() : (this.spares.cold(), null);
    if (spare !== null) {
      try { await this.adopt(spare, r, name); vm = spare; } catch (e) {
        process.stderr.write(`tsvm host: container ${name}: the spare VM could not take it (${(e as Error).message.split('\n')[0]!}); booting a VM for it\n`);
        await this.end(spare);
      }
    }
    vm ??= await this.bootCold(r, name, net);
    const rec = vm.rec, v = vm;
    const watchOom = (b: Uint8Array): void => { if (OOM_RE.test(Buffer.from(b).toString('latin1'))) v.oom = true; };
    rec.consoles.add(watchOom);
    this.vms.set(r.Id, vm);
    // TSVM_VMRT_TRACE=1 in the host's environment: where a container's start time goes, in the host's log.
    if (process.env['TSVM_VMRT_TRACE'] === '1') process.stderr.write(`tsvm host: container ${name}: VM created ${rec.times ? Math.round(rec.times.firstInsnAt - rec.times.requestedAt) : -1} ms, READY at ${Math.round(epochMs() - (rec.times?.requestedAt ?? 0))} ms (guest uptime ${vm.agent.ready?.uptimeMs ?? -1} ms)\n`);
    const proc = vm.agent.run(argv, { ...opts, pidNs: true });
    const exited = proc.exit.catch(() => EXIT_VM_LOST).then(async (status) => {
      // The agent powers off after the main process's EXIT; give it time, then end the VM.
      const t = setTimeout(() => { void this.manager.kill(rec.name, 'its container exited').catch(() => {}); }, POWEROFF_GRACE_MS);
      await rec.gone;
      clearTimeout(t);
      rec.consoles.delete(watchOom);
      this.vms.delete(r.Id);
      await this.end(v);
      return status;
    });
    return { child: this.child(vm, proc, [name, '--', ...argv], true), stdout: proc.stdout, stderr: proc.stderr, exited, oom: () => vm.oom, resize: resizer(proc, `container ${r.Id.slice(0, 12)}`) };
  }

  /** Runs `argv` as another process in container `id`'s VM (`exec`); with `opts.tty` on a pty of its own. */
  exec(id: string, argv: string[], opts: RunOptions): VmProcess {
    const vm = this.vms.get(id);
    if (vm === undefined) throw new ContainerError(409, `container ${id.slice(0, 12)} is not running`);
    const proc = vm.agent.exec(argv, opts);
    return { child: this.child(vm, proc, [vm.rec.name, '--', ...argv], false), stdout: proc.stdout, stderr: proc.stderr, exited: proc.exit.catch(() => EXIT_VM_LOST), oom: () => false, resize: resizer(proc, `an exec in container ${id.slice(0, 12)}`) };
  }

  /** The guest's processes in container `id` (Docker's top), read from its /proc through an exec. */
  async top(id: string, opts: RunOptions): Promise<GuestProcess[]> {
    const p = this.exec(id, ['sh', '-c', TOP_SCRIPT], opts);
    p.child.stdin?.end();
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString('utf8'); });
    p.stderr.resume();
    const status = await p.exited;
    if (status !== 0) throw new ContainerError(500, `top: reading the guest's /proc failed (status ${status}; the image needs sh)`);
    return parseTop(out);
  }

  /**
   * `stats` of container `id`: the guest's CPU use over `sampleMs` (from
   * its processes' tick counts), its VM's memory as the host holds it
   * (private + shared pages), and its process count.
   */
  async stats(id: string, opts: RunOptions, sampleMs: number): Promise<{ CpuPercent: number; MemoryUsage: number; Pids: number }> {
    const vm = this.vms.get(id);
    if (vm === undefined) return { CpuPercent: 0, MemoryUsage: 0, Pids: 0 };
    const ticks = (ps: GuestProcess[]): number => ps.reduce((n, p) => n + p.ticks, 0);
    const a = await this.top(id, opts);
    await new Promise((r) => setTimeout(r, sampleMs));
    const b = await this.top(id, opts);
    const s = await this.manager.stats(vm.rec.name) as { pages_private?: number; pages_shared?: number };
    const cpu = Math.max(0, ticks(b) - ticks(a)) / USER_HZ / (sampleMs / 1000) * 100;
    return { CpuPercent: Math.round(cpu * 100) / 100, MemoryUsage: ((s.pages_private ?? 0) + (s.pages_shared ?? 0)) * PAGE_BYTES, Pids: b.length };
  }

  /** A RuntimeChild over an agent process: signals go through the agent; a SIGKILL the agent cannot deliver ends the VM. */
  private child(vm: Vm, proc: AgentProcess, spawnargs: string[], main: boolean): RuntimeChild {
    return {
      stdin: proc.stdin,
      pid: process.pid, // the VM runs on a thread of the host process
      spawnargs,
      kill: (signal = 'SIGTERM') => {
        if (vm.agent.failure !== null) {
          if (main && (signal === 'SIGKILL' || signal === 9)) void this.manager.kill(vm.rec.name, 'killed').catch(() => {});
          return false;
        }
        try { proc.signal(signal); } catch { return false; }
        return true;
      },
    };
  }

  /** Closes the agent channel, removes the ended VM from the host's list and the socket directory. */
  private async end(vm: Vm): Promise<void> {
    vm.agent?.close();
    try {
      if (vm.rec.worker !== null) await this.manager.kill(vm.rec.name, 'its container ended');
      await this.manager.remove(vm.rec.name, false);
    } catch { /* removed meanwhile */ }
    fs.rmSync(vm.dir, { recursive: true, force: true });
  }
}

/** `proc`'s resize, as a 409 (named `what`) once the agent is gone. */
function resizer(proc: AgentProcess, what: string): (rows: number, cols: number) => void {
  return (rows, cols) => {
    try { proc.resize(rows, cols); } catch (e) { throw new ContainerError(409, `${what}: its agent is gone (${(e as Error).message})`); }
  };
}

/**
 * The shell loop `top` runs in the guest: the guest's uptime, then per
 * process (except itself) its stat line (proc(5) /proc/PID/stat), its Uid
 * line (/proc/PID/status) and its cmdline with NULs as spaces.
 */
const TOP_SCRIPT = 'cat /proc/uptime; for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$$" ] && continue; ' +
  's=$(cat $d/stat 2>/dev/null) || continue; u=$(grep "^Uid:" $d/status 2>/dev/null); c=$(tr "\\0" " " < $d/cmdline 2>/dev/null); ' +
  'echo "P $s"; echo "U $u"; echo "C $c"; done';

/** USER_HZ on Linux: /proc times are in clock ticks of 1/100 s (proc(5)). */
const USER_HZ = 100;

/** Parses TOP_SCRIPT's output; processes the script forked itself (children of its shell) are left out. */
export function parseTop(text: string): GuestProcess[] {
  const lines = text.split('\n');
  const uptime = Number((lines[0] ?? '').split(' ')[0]);
  const out: GuestProcess[] = [];
  let cur: { pid: number; ppid: number; comm: string; ticks: number; start: number; uid: string; cmd: string } | null = null;
  const push = (): void => {
    if (cur === null) return;
    const secs = Math.floor(cur.ticks / USER_HZ);
    const time = [Math.floor(secs / 3600), Math.floor(secs / 60) % 60, secs % 60].map((n) => String(n).padStart(2, '0')).join(':');
    const up = Math.max(0, uptime - cur.start / USER_HZ);
    out.push({ uid: cur.uid, pid: cur.pid, ppid: cur.ppid, stime: `-${Math.round(up)}s`, time, cmd: cur.cmd !== '' ? cur.cmd : `[${cur.comm}]`, ticks: cur.ticks });
    cur = null;
  };
  for (const l of lines.slice(1)) {
    if (l.startsWith('P ')) {
      push();
      const s = l.slice(2), close = s.lastIndexOf(')');
      const f = s.slice(close + 2).split(' ');
      // stat fields after comm: state, ppid (4), ..., utime (14), stime (15), ..., starttime (22)
      cur = { pid: Number(s.slice(0, s.indexOf(' '))), ppid: Number(f[1]), comm: s.slice(s.indexOf('(') + 1, close), ticks: Number(f[11]) + Number(f[12]), start: Number(f[19]), uid: '?', cmd: '' };
    } else if (l.startsWith('U ') && cur !== null) cur.uid = /Uid:\s+(\d+)/.exec(l)?.[1] ?? '?';
    else if (l.startsWith('C ') && cur !== null) cur.cmd = l.slice(2).trim();
  }
  push();
  // The script's own subshells ($(...)) are children of its shell: not the container's.
  const pids = new Set(out.map((p) => p.pid));
  const scriptShells = out.filter((p) => !pids.has(p.ppid) && p.pid !== 1 && p.ppid !== 0);
  return out.filter((p) => !scriptShells.includes(p));
}
