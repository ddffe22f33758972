/**
 * The container engine inside the tsvm host: it keeps the records
 * (store.ts) and runs each started container as a child process of the
 * host, `tsvm exec` over the overlay of the shared unpacked image (lower)
 * and the container's own layer (upper), in its own PID namespace, with its
 * hostname, environment, working directory, user and limits (the process
 * runtime, src/process/sandbox.ts). One child per container is the fault
 * isolation: a crash or a runaway ends only that process. The child's
 * stdout and stderr go to the log and to attached clients, stdin comes
 * from them (attach.ts); with -t it runs on a terminal (tty.ts). A
 * container of `--runtime vm` runs instead in its own microVM on the host
 * (vm-runtime.ts), wired to the same sinks, log and records.
 */
import { parsePublish } from '../publish-spec.js';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OciStore } from '../../images/oci/layout.js';
import { layerFromDirectory, unpackImage } from '../../images/oci/layer-apply.js';
import { normalizeReference } from '../../images/oci/reference.js';
import { ContainerError, ContainerStore, ZERO_TIME, type ContainerConfig, type ContainerRecord } from './store.js';
import { STREAM_STDERR, STREAM_STDOUT, exitFrame, frame } from './frames.js';
import { ContainerTerminals, quietControl, type TtySize } from './tty.js';
import { SpareRuntime, STATUS_FD } from './spare-runtime.js';
import { bindArgs, prepareBinds } from './volumes.js';
import { NetworkManager } from './networks.js';
import { VmRuntime, type GuestProcess, type RuntimeChild, type VmProcess } from './vm-runtime.js';
import type { RunOptions } from '../vm-agent/agent-client.js';
import { TOP_TITLES, controlPath, controlRequest, signalInit, startExec, topRows, userNames, type ExecRun } from './control-client.js';
import type { PsEntry } from '../../process/runtime-control.js';

/** Docker's default PATH (moby oci/defaults.go DefaultPathEnv for Linux). */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The line `tsvm exec` prints when the memory limit kills the container (src/process/sandbox-limits.ts). */
const OOM_LINE = 'tsvm: container killed: out of memory';
/** Exit code recorded for a container that was running when its host died (Docker shows 255 after a daemon crash). */
const EXIT_HOST_DIED = 255;

/** Something attached to a running container's output (an attach client or a `logs -f`). */
export interface OutputSink {
  /** Receives framed output; `null` at the end, with the exit status. */
  write(stream: number, data: Buffer): void;
  end(status: number): void;
}

/** A running container's runtime process. */
interface Running {
  child: RuntimeChild;
  /** Its control socket (signals, exec, ps: control-client.ts); null for the vm runtime (its agent does these). */
  control: string | null;
  sinks: Set<OutputSink>;
  exited: Promise<number>;
  /** Resolves once the exit has been recorded (the record saved, or removed with --rm). */
  settled: Promise<void>;
  /** Resizes its terminal (the vm runtime's agent; the process runtime's goes through ContainerTerminals). */
  resize?: (size: TtySize) => void;
  oom: boolean;
  /** The log file's descriptor (written synchronously, so `logs -f` reads then follows without a gap), or null. */
  log: number | null;
}

/** What `create` takes (the API body of POST /v1/containers, checked). */
export interface CreateRequest {
  image: string;
  name?: string;
  cmd?: string[];
  entrypoint?: string[];
  env: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  tty: boolean;
  openStdin: boolean;
  memory: number;
  cpus: number;
  pidsLimit: number;
  ports: string[];
  volumes: string[];
  runtime: string;
  autoRemove: boolean;
  /** --network: a network's name (networks.ts); absent: the default network. */
  network?: string;
}

const now = (): string => new Date().toISOString();

/** How the host runs `tsvm`: node, its flags, the CLI script. */
export interface TsvmCommand { execPath: string; args: string[] }

/** The container engine (see the module comment). */
export class ContainerEngine {
  private readonly running = new Map<string, Running>();
  private readonly unpacking = new Map<string, Promise<void>>();
  /** The process runtime's warm spare (spare-runtime.ts); TSVM_SPARE_RUNTIME=0 turns pre-starting off. */
  private readonly spare: SpareRuntime;
  /** The terminals of containers created with -t (tty.ts). */
  readonly terminals = new ContainerTerminals();
  /** Running execs with a terminal, by exec id: the container's id and how to resize the exec's terminal. */
  private readonly ttyExecs = new Map<string, { container: string; resize: (size: TtySize) => Promise<void> }>();

  private constructor(readonly store: ContainerStore, private readonly tsvm: TsvmCommand, private readonly imageDir: string,
    /** The container networks (`tsvm network`). */
    readonly networks: NetworkManager,
    /** The vm runtime (null: the host runs no VMs, e.g. in unit tests). */
    readonly vm: VmRuntime | null, private readonly defaultRuntime: string) {
    this.spare = new SpareRuntime(tsvm, runtimeEnv, process.env['TSVM_SPARE_RUNTIME'] !== '0');
  }

  /**
   * Opens the records. Containers recorded as running belong to a host that
   * died: their leftover runtime processes are killed and they become exited.
   */
  static async open(dir: string, imageDir: string, tsvm: TsvmCommand, warn: (line: string) => void, vm: VmRuntime | null = null, defaultRuntime = 'process'): Promise<ContainerEngine> {
    const e = new ContainerEngine(ContainerStore.open(dir, warn), tsvm, imageDir, NetworkManager.open(path.join(dir, 'networks'), warn), vm, defaultRuntime);
    for (const r of e.store.all()) {
      if (r.State.Status !== 'running' && r.State.Status !== 'paused' && r.State.Status !== 'restarting') continue;
      if (r.State.Pid > 0 && isOurs(r.State.Pid, r.UpperDir)) { try { process.kill(r.State.Pid, 'SIGKILL'); } catch { /* gone */ } }
      fs.rmSync(controlPath(r.Id), { force: true }); // its runtime's control socket, left by the kill
      Object.assign(r.State, { Status: 'exited', Running: false, Paused: false, Pid: 0, ExitCode: EXIT_HOST_DIED, FinishedAt: now(), Error: 'the tsvm host stopped while the container ran' });
      await e.store.save(r);
    }
    return e;
  }

  private async images(): Promise<OciStore> { return OciStore.open(this.imageDir); }

  /** Creates a container (not started); 404 for an unknown image, 409 for a name in use. */
  async create(req: CreateRequest): Promise<ContainerRecord> {
    if (req.runtime === '') req.runtime = this.defaultRuntime;
    if (req.runtime !== 'process' && req.runtime !== 'vm') throw new ContainerError(400, `--runtime ${req.runtime}: expected process or vm`);
    if (req.runtime === 'vm') {
      if (this.vm === null) throw new ContainerError(400, '--runtime vm: this host runs no VMs');
      const bad = VmRuntime.check(req.memory, req.hostname);
      if (bad !== null) throw new ContainerError(400, bad);
    }
    const name = this.store.chooseName(req.name);
    const images = await this.images();
    let img;
    try { img = await images.resolve(req.image); } catch (e) {
      throw new ContainerError(404, `no such image: ${req.image} (${(e as Error).message.split('\n')[0]!})`);
    }
    const ic = img.config.config ?? {};
    const entrypoint = req.entrypoint ?? ic.Entrypoint ?? [];
    const cmd = req.cmd !== undefined && req.cmd.length > 0 ? req.cmd : (req.entrypoint !== undefined ? [] : ic.Cmd ?? []);
    const argv = [...entrypoint, ...cmd];
    if (argv.length === 0) throw new ContainerError(400, 'no command specified (the image has no Cmd or Entrypoint)');
    for (const spec of req.ports) {
      const p = parsePublish(spec);
      if (typeof p === 'string') throw new ContainerError(400, p);
    }
    prepareBinds(req.volumes);
    const network = this.networks.check(req.network);
    if (req.runtime === 'vm') {
      const bad = VmRuntime.checkBinds(req.volumes, network !== undefined);
      if (bad !== null) throw new ContainerError(400, bad);
    }
    const id = this.store.newId();
    const env = mergeEnv(ic.Env ?? [], req.env);
    const config: ContainerConfig = {
      Cmd: cmd, Entrypoint: entrypoint, Env: env, WorkingDir: req.workdir ?? ic.WorkingDir ?? '', User: req.user ?? ic.User ?? '',
      Hostname: req.hostname ?? id.slice(0, 12), Tty: req.tty, OpenStdin: req.openStdin, Runtime: req.runtime,
      Memory: req.memory, NanoCpus: Math.round(req.cpus * 1e9), PidsLimit: req.pidsLimit,
      PortBindings: req.ports, Binds: req.volumes, AutoRemove: req.autoRemove,
    };
    if (network !== undefined) config.NetworkMode = network;
    const lower = this.store.rootfsDir(img.configDigest);
    await this.unpack(images, img.configDigest, req.image, lower);
    const dir = this.store.containerDir(id);
    const rec: ContainerRecord = {
      Id: id, Name: '/' + name, Created: now(), ImageName: img.ref ?? req.image, Image: img.configDigest, ImageDigest: img.desc.digest,
      Path: argv[0]!, Args: argv.slice(1), Config: config,
      State: { Status: 'created', Running: false, Paused: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME },
      RestartCount: 0, LowerDir: lower, UpperDir: path.join(dir, 'upper'), LogPath: path.join(dir, 'log.jsonl'),
    };
    if (config.User !== '') resolveUser(config.User, lower); // a bad user fails create, as docker's does at start
    await this.store.add(rec);
    return rec;
  }

  /** Unpacks image `digest` once into `dest` (a temp directory renamed into place). */
  private async unpack(images: OciStore, digest: string, ref: string, dest: string): Promise<void> {
    if (fs.existsSync(dest)) return;
    let p = this.unpacking.get(digest);
    if (p === undefined) {
      p = (async () => {
        const tmp = `${dest}.tmp-${process.pid}`;
        await fsp.rm(tmp, { recursive: true, force: true });
        await fsp.mkdir(tmp, { recursive: true });
        try {
          await unpackImage(images, ref, tmp);
          await fsp.rename(tmp, dest);
        } catch (e) {
          await fsp.rm(tmp, { recursive: true, force: true });
          throw new ContainerError(500, `cannot unpack ${ref}: ${(e as Error).message.split('\n')[0]!}`);
        }
      })();
      this.unpacking.set(digest, p);
      void p.catch(() => {}).finally(() => this.unpacking.delete(digest));
    }
    await p;
  }

  /** `tsvm exec` arguments for running `argv` as container `r`'s init, controlled through socket `control`. */
  private execArgs(r: ContainerRecord, argv: string[], control: string): string[] {
    const c = r.Config;
    const a = [...this.tsvm.args, 'exec', '--lower', r.LowerDir, '--upper', r.UpperDir, '--hostname', c.Hostname, '--pid-ns', '--control', control, '--status-fd', String(STATUS_FD)];
    for (const p of c.PortBindings) a.push('--publish', p);
    a.push(...bindArgs(c.Binds), ...this.networks.runtimeArgs(r, true, this.store.containerDir(r.Id)));
    if (c.WorkingDir !== '') a.push('--workdir', c.WorkingDir);
    if (c.User !== '') { const u = resolveUser(c.User, r.LowerDir); a.push('--user', `${u.uid}:${u.gid}`); }
    if (c.Memory > 0) a.push('--memory-limit', String(c.Memory));
    if (c.PidsLimit > 0) a.push('--pids-limit', String(c.PidsLimit));
    if (c.NanoCpus > 0) a.push('--cpus', String(c.NanoCpus / 1e9));
    if (c.Tty) a.push(...this.terminals.execArgs(r.Id));
    for (const kv of containerEnv(r)) a.push('--env', kv);
    a.push('--', ...argv);
    return a;
  }

  /** Spawns a container's runtime process; its output goes to `sinks` (and the log when `log`). */
  private spawnRuntime(r: ContainerRecord, argv: string[], log: number | null): Running {
    const tty = r.Config.Tty;
    const control = controlPath(r.Id);
    // The arguments after `exec`, to a warm spare (or a fresh child started the same way).
    const child = this.spare.take(this.execArgs(r, argv, control).slice(this.tsvm.args.length + 1));
    if (tty) quietControl(child);
    const run: Running = { child, control, sinks: new Set(), exited: Promise.resolve(0), settled: Promise.resolve(), oom: false, log };
    const out = (from: number) => (b: Buffer): void => {
      if (from === STREAM_STDERR && b.includes(OOM_LINE)) run.oom = true;
      const stream = tty ? STREAM_STDOUT : from; // a terminal is one stream (Docker logs it as stdout)
      if (run.log !== null) writeLog(run.log, stream, b);
      for (const s of run.sinks) s.write(stream, b);
    };
    child.stdout!.on('data', out(STREAM_STDOUT));
    child.stderr!.on('data', out(STREAM_STDERR));
    child.stdin!.on('error', () => { /* the container may exit without reading stdin */ });
    run.exited = new Promise((resolve) => {
      let streams = 0;
      let status = -1;
      // The status the runtime reported on its status fd before ending itself (SIGKILL, program.ts endWithStatus), if it did:
      // it wins over the SIGKILL. Its pipe's close counts with the output's, so the line is in before the status is taken.
      let reported: number | null = null;
      let line = '';
      const statusPipe = (child.stdio as unknown as (NodeJS.ReadableStream | null | undefined)[])[STATUS_FD] ?? null;
      statusPipe?.on('data', (b: Buffer) => { line += b.toString('latin1'); const m = /^(\d{1,3})\n/.exec(line); if (m !== null) reported = Number(m[1]); });
      statusPipe?.on('error', () => { /* the child's exit reports it */ });
      const want = statusPipe === null ? 3 : 4;
      const done = (): void => { if (++streams === want) resolve(reported ?? status); };
      statusPipe?.on('close', done);
      child.stdout!.on('close', done);
      child.stderr!.on('close', done);
      child.on('exit', (code, sig) => { status = code ?? 128 + (sig !== null ? os.constants.signals[sig] : 0); done(); });
      child.on('error', (e) => { out(STREAM_STDERR)(Buffer.from(`tsvm: cannot run the runtime: ${e.message}\n`)); status = 125; streams = want - 1; done(); });
    });
    return run;
  }

  /** A vm-runtime process as a Running: its output goes to the sinks (and the log when `log`). */
  private adopt(p: VmProcess, log: number | null): Running {
    const run: Running = { child: p.child, control: null, sinks: new Set(), exited: p.exited, settled: Promise.resolve(), oom: false, log, resize: (s) => p.resize(s.rows, s.cols) };
    const out = (stream: number) => (b: Buffer): void => {
      if (run.log !== null) writeLog(run.log, stream, b);
      for (const s of run.sinks) s.write(stream, b);
    };
    p.stdout.on('data', out(STREAM_STDOUT));
    p.stderr.on('data', out(STREAM_STDERR));
    run.exited = p.exited.then((status) => { run.oom = p.oom() && status === 137; return status; });
    return run;
  }

  /** The agent's options for a process of vm container `r`: env, working directory, user, terminal. */
  private agentOptions(r: ContainerRecord): RunOptions {
    const c = r.Config;
    const u = c.User !== '' ? resolveUser(c.User, r.LowerDir) : { uid: 0, gid: 0 };
    const size = this.terminals.sizeOf(r.Id);
    return { env: containerEnv(r), cwd: c.WorkingDir !== '' ? c.WorkingDir : '/', uid: u.uid, gid: u.gid, tty: c.Tty, ...(c.Tty ? { rows: size.rows, cols: size.cols } : {}) };
  }

  /** The guest's processes of a running vm container (`top`), or null for a process-runtime one. */
  async guestTop(ref: string): Promise<GuestProcess[] | null> {
    const r = this.store.find(ref);
    if (r.Config.Runtime !== 'vm') return null;
    if (!this.running.has(r.Id)) throw new ContainerError(409, `container ${r.Id.slice(0, 12)} is not running`);
    return this.vm!.top(r.Id, { ...this.agentOptions(r), tty: false, uid: 0, gid: 0 });
  }

  /** `stats` of a running vm container (guest CPU, VM memory, processes), or null for a process-runtime one. */
  async guestStats(ref: string, sampleMs: number): Promise<{ CpuPercent: number; MemoryUsage: number; Pids: number } | null> {
    const r = this.store.find(ref);
    if (r.Config.Runtime !== 'vm') return null;
    return this.vm!.stats(r.Id, { ...this.agentOptions(r), tty: false, uid: 0, gid: 0 }, sampleMs);
  }

  /** Starts container `ref` (a no-op if it runs); `before` runs once the process exists, ahead of any output. */
  async start(ref: string, before?: (run: { sinks: Set<OutputSink> }) => void): Promise<ContainerRecord> {
    const r = this.store.find(ref);
    if (this.running.has(r.Id)) { if (before) before(this.running.get(r.Id)!); return r; }
    const log = fs.openSync(r.LogPath, 'a', 0o600);
    let run: Running;
    try {
      run = r.Config.Runtime === 'vm' ? this.adopt(await this.startVm(r), log)
        : this.spawnRuntime(r, [r.Path, ...r.Args], log);
    } catch (e) {
      fs.closeSync(log);
      // As Docker's daemon does: a --rm container that could not start is removed.
      if (r.Config.AutoRemove) await this.store.remove(r.Id).catch(() => {});
      throw e instanceof ContainerError ? e : new ContainerError(500, (e as Error).message);
    }
    if (!r.Config.OpenStdin) run.child.stdin?.end(); // docker run without -i: stdin at EOF, in both runtimes
    before?.(run);
    this.running.set(r.Id, run);
    Object.assign(r.State, { Status: 'running', Running: true, Paused: false, OOMKilled: false, Dead: false, Pid: run.child.pid ?? 0, ExitCode: 0, Error: '', StartedAt: now(), FinishedAt: ZERO_TIME });
    await this.store.save(r);
    run.settled = run.exited.then(async (status) => {
      this.running.delete(r.Id);
      this.networks.leave(r);
      Object.assign(r.State, { Status: 'exited', Running: false, Paused: false, Pid: 0, ExitCode: status, OOMKilled: run.oom, FinishedAt: now() });
      fs.closeSync(log);
      if (run.control !== null) fs.rmSync(run.control, { force: true }); // left behind when the runtime was killed
      // A --rm container's record goes at once (its final state is not written first: the client waits for this).
      if (r.Config.AutoRemove) await this.store.remove(r.Id).catch(() => {});
      else await this.store.save(r).catch(() => {});
      for (const s of run.sinks) s.end(status);
      run.sinks.clear();
    });
    return r;
  }

  /** Boots vm container `r` on its network (if any) and starts its command; the network forgets it if the boot fails. */
  private async startVm(r: ContainerRecord): Promise<VmProcess> {
    const net = await this.networks.vmAttach(r, this.store.containerDir(r.Id));
    try { return await this.vm!.start(r, [r.Path, ...r.Args], this.agentOptions(r), net); } catch (e) {
      this.networks.leave(r);
      throw e;
    }
  }

  /** The running process of a container, or null. */
  runningOf(id: string): { sinks: Set<OutputSink>; child: RuntimeChild; exited: Promise<number> } | null {
    return this.running.get(id) ?? null;
  }

  /** Resolves once container `id` has ended, with its status (at once if it does not run). */
  async wait(id: string): Promise<number> {
    const run = this.running.get(id);
    if (run === undefined) return this.store.find(id).State.ExitCode;
    const status = await run.exited;
    // the exit handler saves the record after `exited` (an rm must not race its write)
    await run.settled;
    return status;
  }

  /**
   * Stops a container: SIGTERM to its init (which ignores it without a
   * handler, as a PID namespace's init does), then after `timeoutS` seconds
   * SIGKILL to the runtime process (status 137). A stopped one is left alone.
   */
  async stop(ref: string, timeoutS: number): Promise<ContainerRecord> {
    const r = this.store.find(ref);
    const run = this.running.get(r.Id);
    if (run === undefined) return r;
    if (timeoutS > 0) {
      if (run.control !== null) void signalInit(run.control, 'TERM').catch(() => { /* it is ending anyway */ });
      else run.child.kill('SIGTERM'); // a vm container: through its agent, to the command (PID 1 of its namespace)
    }
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((res) => { timer = setTimeout(() => { run.child.kill('SIGKILL'); res(); }, timeoutS * 1000); });
    await Promise.race([run.exited, killed]);
    clearTimeout(timer);
    await this.wait(r.Id);
    return r;
  }

  /** Sends `signal` to a running container; 409 if it does not run. */
  async kill(ref: string, signal: string): Promise<ContainerRecord> {
    const r = this.store.find(ref);
    const sig = parseSignal(signal);
    if (sig === null) throw new ContainerError(400, `invalid signal: ${signal}`);
    const run = this.running.get(r.Id);
    if (run === undefined) throw new ContainerError(409, `cannot kill container ${r.Name.slice(1)}: container ${r.Id.slice(0, 12)} is not running`);
    if (sig === 'SIGKILL') {
      run.child.kill(sig); // the runtime and its namespace end: 137
      await this.wait(r.Id);
    } else {
      if (run.control !== null) await signalInit(run.control, sig.slice(3)); // to the container's init, with init's protection
      else run.child.kill(sig); // a vm container: through its agent
    }
    return r;
  }

  /** Resizes the terminal of a running container created with -t; 409 if it does not run or has none. */
  resize(ref: string, size: TtySize): void {
    const r = this.store.find(ref);
    const run = this.running.get(r.Id);
    if (run === undefined) throw new ContainerError(409, `cannot resize container ${r.Name.slice(1)}: container ${r.Id.slice(0, 12)} is not running`);
    if (!r.Config.Tty) throw new ContainerError(409, `cannot resize container ${r.Name.slice(1)}: it has no terminal (created without -t)`);
    if (run.resize !== undefined) { // the guest agent sets the pty's size; the guest sees SIGWINCH
      run.resize(size);
      this.terminals.setSize(r.Id, size);
      return;
    }
    this.terminals.resize(r.Id, run.child as ChildProcess, size);
  }

  /** Removes a container; a running one only with `force` (then killed first). */
  async remove(ref: string, force: boolean): Promise<string> {
    const r = this.store.find(ref);
    const run = this.running.get(r.Id);
    if (run !== undefined) {
      if (!force) throw new ContainerError(409, `cannot remove container ${r.Name.slice(1)}: container ${r.Id.slice(0, 12)} is running: stop the container before removing it or use -f`);
      r.Config.AutoRemove = false;
      run.child.kill('SIGKILL');
      await this.wait(r.Id);
    }
    this.terminals.forget(r.Id);
    await this.store.remove(r.Id);
    return r.Id;
  }

  /**
   * Runs `argv` in the running container (`exec`): a new process in its VM
   * (its PID namespace, root and limits), with the container's environment,
   * working directory and user; it ends at the latest with the container.
   */
  exec(ref: string, argv: string[], withStdin = false, tty: TtySize | null = null): { run: ExecRun; id: string } {
    const r = this.store.find(ref);
    const main = this.running.get(r.Id);
    if (main === undefined) throw new ContainerError(409, `container ${r.Id.slice(0, 12)} is not running`);
    if (argv.length === 0) throw new ContainerError(400, 'exec needs a command');
    const id = randomBytes(32).toString('hex'); // Docker's exec ids: 64 hex digits
    let run: ExecRun;
    if (r.Config.Runtime === 'vm') {
      // Another process of the agent in the same VM and PID namespace, with a pty of its own for -t; it ends with the VM.
      const vp = this.vm!.exec(r.Id, argv, { ...this.agentOptions(r), tty: tty !== null, ...(tty !== null ? { rows: tty.rows, cols: tty.cols } : {}) });
      const p = this.adopt(vp, null);
      const stdin = p.child.stdin;
      run = { sinks: p.sinks, exited: p.exited, pid: Promise.resolve(null), stdin: { write: (b) => { if (stdin?.writable === true) stdin.write(b); }, end: () => { stdin?.end(); } } };
      if (tty !== null) {
        this.ttyExecs.set(id, {
          container: r.Id,
          resize: async (size) => { vp.resize(size.rows, size.cols); },
        });
      }
    } else {
      const c = r.Config;
      const user = c.User !== '' ? resolveUser(c.User, r.LowerDir) : null;
      run = startExec(main.control!, {
        argv, env: containerEnv(r), workdir: c.WorkingDir !== '' ? c.WorkingDir : '/', stdin: withStdin, ...(user !== null ? { user: `${user.uid}:${user.gid}` } : {}),
        ...(tty !== null ? { tty: true, cols: tty.cols, rows: tty.rows } : {}),
      });
      if (tty !== null) {
        // The process VM's control socket resizes the exec's pty, once the runtime has given it a pid.
        const x = run;
        this.ttyExecs.set(id, {
          container: r.Id,
          resize: async (size) => {
            const pid = await x.pid;
            const control = this.running.get(r.Id)?.control;
            if (pid === null || control == null) throw new ContainerError(409, `exec ${id.slice(0, 12)} is not running`);
            await controlRequest(control, { op: 'resize', pid, cols: size.cols, rows: size.rows }, 409);
          },
        });
      }
    }
    const done = run;
    void done.exited.then((status) => {
      this.ttyExecs.delete(id);
      for (const s of done.sinks) s.end(status);
      done.sinks.clear();
    });
    return { run, id };
  }

  /** A new window size for the terminal of exec `id` (started with a tty) in container `ref` (Docker's POST /exec/{id}/resize). */
  async execResize(ref: string, id: string, size: TtySize): Promise<void> {
    const r = this.store.find(ref);
    const x = this.ttyExecs.get(id);
    if (x === undefined || x.container !== r.Id) throw new ContainerError(404, `no running exec with a terminal ${JSON.stringify(id.slice(0, 64))} in container ${r.Name.slice(1)}`);
    await x.resize(size);
  }

  /** The host process running a container's VM. */
  pids(ref: string): { pid: number; cmd: string }[] {
    const r = this.store.find(ref);
    const run = this.running.get(r.Id);
    if (run === undefined) throw new ContainerError(409, `container ${r.Id.slice(0, 12)} is not running`);
    return [{ pid: run.child.pid ?? 0, cmd: [r.Path, ...r.Args].join(' ') }];
  }

  /** `top`: the container's processes from its VM's process table, in `ps -ef`'s columns. */
  async top(ref: string): Promise<{ Titles: string[]; Processes: string[][] }> {
    const r = this.store.find(ref);
    const run = this.running.get(r.Id);
    if (run === undefined) throw new ContainerError(409, `container ${r.Id.slice(0, 12)} is not running`);
    if (run.control === null) throw new ContainerError(409, `container ${r.Id.slice(0, 12)} has no process table here (vm runtime: see guestTop)`);
    const reply = await controlRequest(run.control, { op: 'ps' }, 409);
    const procs = Array.isArray(reply['processes']) ? reply['processes'] as PsEntry[] : [];
    return { Titles: TOP_TITLES, Processes: topRows(procs, userNames([r.UpperDir, r.LowerDir]), Date.now()) };
  }

  /** `commit`: the container's layer becomes a new image on top of its image's layers; the new image's ID. */
  async commit(ref: string, repo: string | null): Promise<string> {
    const r = this.store.find(ref);
    const target = repo === null ? null : normalizeOrThrow(repo);
    const images = await this.images();
    let base;
    try { base = await images.resolve(r.Image); } catch {
      throw new ContainerError(409, `the image of container ${r.Id.slice(0, 12)} (${r.ImageName}) is no longer in the store`);
    }
    const layer = await layerFromDirectory(r.UpperDir, { store: images, uid: 0, gid: 0 });
    const cfg = structuredClone(base.config);
    cfg.created = now();
    cfg.config = { ...(cfg.config ?? {}), Cmd: r.Config.Cmd, Entrypoint: r.Config.Entrypoint.length > 0 ? r.Config.Entrypoint : null, Env: r.Config.Env };
    if (r.Config.WorkingDir !== '') cfg.config.WorkingDir = r.Config.WorkingDir;
    cfg.rootfs = { type: 'layers', diff_ids: [...cfg.rootfs.diff_ids, layer.diffId] };
    cfg.history = [...(cfg.history ?? []), { created: cfg.created, created_by: `tsvm commit ${r.Id.slice(0, 12)}` }];
    const desc = await images.addImage(target, { config: cfg, layers: [...base.manifest.layers, layer.desc] });
    return ((await images.readJson(desc.digest, 'the new manifest')) as { config: { digest: string } }).config.digest;
  }

  /** Kills every running container (the host is stopping); they are recorded as exited. */
  async closeAll(): Promise<void> {
    this.spare.close();
    await this.vm?.spares.close();
    const ids = [...this.running.keys()];
    for (const id of ids) this.running.get(id)?.child.kill('SIGKILL');
    await Promise.all(ids.map((id) => this.wait(id).catch(() => 0)));
    await this.networks.close();
  }
}

/** The environment of the runtime child: the host's, which `tsvm exec` keeps from the guest (it gets --env). */
function runtimeEnv(): NodeJS.ProcessEnv {
  return { ...process.env };
}

/** The environment inside a container: its Env, plus Docker's defaults (PATH, HOSTNAME, HOME). */
function containerEnv(r: ContainerRecord): string[] {
  const env = [...r.Config.Env];
  const has = (k: string): boolean => env.some((kv) => kv.startsWith(k + '='));
  if (!has('PATH')) env.unshift(DEFAULT_PATH);
  if (!has('HOSTNAME')) env.push(`HOSTNAME=${r.Config.Hostname}`);
  if (!has('HOME')) env.push('HOME=/root');
  return env;
}

/** The image's Env with the user's `-e` on top (a name alone takes the variable's value from nowhere: dropped). */
function mergeEnv(image: string[], user: string[]): string[] {
  const m = new Map<string, string>();
  for (const kv of [...image, ...user]) {
    const i = kv.indexOf('=');
    if (i > 0) m.set(kv.slice(0, i), kv);
  }
  return [...m.values()];
}

/** Appends output to the log: one JSON line per line of output (Docker's json-file: {log, stream, time}). */
function writeLog(log: number, stream: number, b: Buffer): void {
  const time = now();
  const s = stream === STREAM_STDERR ? 'stderr' : 'stdout';
  const text = b.toString('utf8');
  let out = '';
  for (const line of text.split(/(?<=\n)/)) if (line !== '') out += JSON.stringify({ log: line, stream: s, time }) + '\n';
  try { fs.writeSync(log, out); } catch { /* a full disk loses log lines, not the container */ }
}

/** Resolves a Docker --user (NAME|UID[:GROUP|GID]) against the image's /etc/passwd and /etc/group. */
export function resolveUser(user: string, rootfs: string): { uid: number; gid: number } {
  const [u, g] = user.split(':', 2) as [string, string | undefined];
  const table = (file: string): string[][] => {
    try { return fs.readFileSync(path.join(rootfs, 'etc', file), 'utf8').split('\n').map((l) => l.split(':')); } catch { return []; }
  };
  let uid: number, gid: number;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    gid = Number(table('passwd').find((p) => p[2] === u)?.[3] ?? u);
  } else {
    const p = table('passwd').find((e) => e[0] === u);
    if (p === undefined) {
      if (u !== 'root') throw new ContainerError(400, `unable to find user ${u}: no matching entries in passwd file`);
      uid = 0; gid = 0;
    } else { uid = Number(p[2]); gid = Number(p[3]); }
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const e = table('group').find((x) => x[0] === g);
      if (e === undefined) throw new ContainerError(400, `unable to find group ${g}: no matching entries in group file`);
      gid = Number(e[2]);
    }
  }
  return { uid, gid };
}

/** A signal name (KILL, SIGKILL) or number, as the host's kill(2) takes it; null if unknown. */
export function parseSignal(s: string): NodeJS.Signals | null {
  const sigs = os.constants.signals as Record<string, number>;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    const name = Object.keys(sigs).find((k) => sigs[k] === n);
    return (name as NodeJS.Signals | undefined) ?? null;
  }
  const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : 'SIG' + s.toUpperCase());
  return name in sigs ? name as NodeJS.Signals : null;
}

function normalizeOrThrow(ref: string): string {
  try { return normalizeReference(ref); } catch (e) { throw new ContainerError(400, (e as Error).message.split('\n')[0]!); }
}

/** Whether host process `pid` is a runtime process of the container whose layer is `upper`. */
function isOurs(pid: number, upper: string): boolean {
  // A runtime started from a spare carries its command line as its title (await-argv.ts): one string, so a substring test.
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(upper); } catch { return false; }
}

/** Exit frames and output frames for a sink that writes to a socket. */
export function socketSink(write: (b: Buffer) => void, end: () => void): OutputSink {
  return { write: (stream, data) => write(frame(stream, data)), end: (status) => { write(exitFrame(status)); end(); } };
}
