/**
 * `tsvm exec [--root DIR] [--trace] [--publish [HOSTADDR:]HOSTPORT:PORT] PROGRAM [ARGS...]`: the process VM.
 * Loads a riscv64 Linux ELF and runs it as this host process, like
 * qemu-riscv64 does; the processes and threads it creates run inside this
 * host process too (a cooperative scheduler, see src/process/kernel.ts).
 * tsvm's exit status is the root guest process's. With --tty the guest
 * gets an emulated terminal (src/process/sys-tty.ts) driven from tsvm's
 * stdin and stdout (src/host/node-terminal.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { GuestProcess } from '../process/guest-process.js';
import { loadProgram, type LoaderHost } from '../process/loader.js';
import { ExecError } from '../process/elf.js';
import { runProcess } from '../process/run-process.js';
import { LinuxSyscalls } from '../process/syscalls.js';
import { NodeHostOs } from '../host/node-host-os.js';
import { resolveGuestPath, Vfs } from '../process/vfs.js';
import { checkSandbox, SandboxHostOs, type ContainerSandbox } from '../process/sandbox.js';
import { SandboxEnforcer } from '../process/sandbox-limits.js';
import type { HostOs } from '../process/host-os.js';
import { jitTotals } from '../jit/engine.js';
import { defaultJitConfig } from '../jit/jit-config.js';
import { QemuUserHostOs } from '../process/qemu-user-host-os.js';
import type { PortBridge } from '../process/netns.js';
import { NodeTerminal } from '../host/node-terminal.js';
import { ControlSocket } from '../host/runtime-control.js';
import { RuntimeControl } from '../process/runtime-control.js';

/** Options of `tsvm exec`. */
export interface ExecOptions {
  root?: string;
  trace: boolean;
  memoryBytes: number;
  /** Print instruction count, wall time and MIPS to stderr at exit. */
  stats?: boolean;
  /** Run as a container: overlay root, hostname, PID namespace, limits (src/process/sandbox.ts). */
  sandbox?: Partial<ContainerSandbox>;
  /**
   * qemu-riscv64's ways (the drop-in `tsvm-riscv64`, qemu-user-args.ts):
   * the program is a host path (no PATH search), and absent fields keep
   * `tsvm exec`'s behaviour.
   */
  qemuUser?: QemuUserExec;
  /** The guest's whole environment (`--env K=V`, repeated); absent: the host's. */
  env?: string[];
  /** Starts the published ports (--publish; src/host/port-publisher.ts): the bridge, or a one-line error. */
  startPublisher?: () => (PortBridge & { shutdown(): void }) | string;
  /** Give the guest an emulated terminal (--tty): its initial size, and the fd of resize messages (--tty-control). */
  tty?: { cols: number; rows: number; controlFd: number | null };
  /** The control socket's path (--control; src/host/runtime-control.ts): signals, exec and ps from the container engine. */
  control?: string;
}

/** What `tsvm-riscv64` changes in a run (see docs/dropin.md). */
export interface QemuUserExec {
  /** The ELF interpreter prefix (-L): absolute paths that exist under it are opened there (QemuUserHostOs). */
  ldPrefix?: string;
  /** The guest's argv[0] (-0); absent: the program as given. */
  argv0?: string;
  /** The guest's whole environment, in order. */
  envp: string[];
  /** uname(2)'s release (-r). */
  unameRelease?: string;
  /** Seed for the guest's random bytes (-seed): AT_RANDOM and getrandom become deterministic. */
  seed?: number;
  /** Where -strace's lines go (-D); absent: stderr. */
  log?: (line: string) => void;
  /** Exit status for a program that cannot be loaded (qemu-riscv64's is 1). */
  loadFailureStatus: number;
  /** Prefix of the one-line messages, e.g. `tsvm-riscv64`. */
  name: string;
}

function log(line: string): void {
  fs.writeSync(2, line + '\n');
}

/** Finds the program: a path as given, else a search of the guest's PATH. */
function findProgram(prog: string, exists: (p: string) => boolean, env: NodeJS.ProcessEnv): string | null {
  if (prog.includes('/')) return exists(prog) ? prog : null;
  if (exists(prog)) return './' + prog;
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (dir && exists(path.posix.join(dir, prog))) return path.posix.join(dir, prog);
  }
  return null;
}

/** Runs `tsvm exec`; returns the exit status for the host process. */
export function execCommand(prog: string, args: string[], opts: ExecOptions): number {
  if (opts.qemuUser !== undefined) return execQemuUser(prog, args, opts, opts.qemuUser);
  let root = opts.root !== undefined ? path.resolve(opts.root) : undefined;
  if (root !== undefined && !fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    log(`tsvm: --root ${opts.root}: not a directory`);
    return 125;
  }
  const nodeOs = new NodeHostOs();
  let hostOs: HostOs = nodeOs;
  let sandboxed: SandboxHostOs | null = null;
  if (opts.sandbox !== undefined) {
    const bad = checkSandbox(opts.sandbox, nodeOs);
    if (bad !== null) { log(`tsvm: ${bad}`); return 125; }
    sandboxed = new SandboxHostOs(nodeOs, opts.sandbox);
    hostOs = sandboxed;
    root = sandboxed.root ?? root;
  }
  const guestCwd = Vfs.initialCwd(hostOs, root);
  // A guest path's file on the host (under an overlay: in the layer that holds it).
  const toHost = (guestPath: string): string | null => {
    const h = resolveGuestPath(hostOs, root, guestCwd, guestPath);
    return h === null || sandboxed === null ? h : sandboxed.backingPath(h);
  };
  const exists = (p: string): boolean => {
    const h = toHost(p);
    return h !== null && fs.statSync(h, { throwIfNoEntry: false })?.isFile() === true;
  };
  const guestEnv: NodeJS.ProcessEnv = opts.env !== undefined
    ? Object.fromEntries(opts.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
    : process.env;
  const found = findProgram(prog, exists, guestEnv);
  if (found === null) { log(`tsvm: ${prog}: No such file or directory`); return 127; }
  const loaderHost: LoaderHost = {
    readFile: (p) => {
      const h = toHost(p);
      if (h === null) return null;
      try { return fs.readFileSync(h); } catch { return null; }
    },
    randomBytes: (b) => { crypto.randomFillSync(b); },
    uid: opts.sandbox?.user?.uid ?? process.getuid?.() ?? 0,
    gid: opts.sandbox?.user?.gid ?? process.getgid?.() ?? 0,
  };
  const data = loaderHost.readFile(found);
  if (data === null) { log(`tsvm: ${prog}: cannot read`); return 126; }
  const term = opts.tty !== undefined
    ? new NodeTerminal(nodeOs, { inFd: 0, outFd: 1, controlFd: opts.tty.controlFd, cols: opts.tty.cols, rows: opts.tty.rows, log })
    : null;
  try {
    return runExec(prog, args, opts, { hostOs, nodeOs, root, found, data, loaderHost, term });
  } finally {
    term?.close();
  }
}

/** What execCommand has prepared for the run. */
interface Prepared {
  hostOs: HostOs; nodeOs: NodeHostOs; root: string | undefined; found: string; data: Uint8Array; loaderHost: LoaderHost; term: NodeTerminal | null;
}

function runExec(prog: string, args: string[], opts: ExecOptions, p: Prepared): number {
  const { hostOs, root, found, data, loaderHost, term } = p;
  let proc: GuestProcess;
  const enforcer = opts.sandbox !== undefined ? new SandboxEnforcer({ pidNamespace: false, ...opts.sandbox }) : null;
  try {
    // In its own PID namespace the program is pid 1 (pid_namespaces(7)).
    proc = new GuestProcess({
      memoryBytes: opts.memoryBytes, root, trace: opts.trace, ...(enforcer ? { frameBudget: enforcer } : {}), ...(term ? { terminal: term.term } : {}),
    }, opts.sandbox?.pidNamespace === true ? 1 : process.pid);
    // tsvm's own setting TSVM_JIT is not part of the guest's environment.
    const envp = opts.env ?? Object.entries(process.env).filter(([k]) => k !== 'TSVM_JIT').map(([k, v]) => `${k}=${v ?? ''}`);
    loadProgram(proc, loaderHost, found, data, [prog, ...args], envp);
  } catch (e) {
    if (e instanceof ExecError) { log(`tsvm: ${e.message}`); return e.exitCode; }
    if (e instanceof RangeError) { log(`tsvm: ${e.message}`); return 125; }
    throw e;
  }
  let publisher: (PortBridge & { shutdown(): void }) | null = null;
  if (opts.startPublisher !== undefined) {
    const p = opts.startPublisher();
    if (typeof p === 'string') { log(`tsvm: ${p}`); return 125; }
    publisher = p;
  }
  const sys = new LinuxSyscalls(proc, hostOs, log);
  enforcer?.attach(sys.kernel);
  if (publisher !== null) sys.kernel.net.attachBridge(publisher);
  if (term !== null) sys.kernel.poller = () => term.poll();
  let control: { socket: ControlSocket; rc: RuntimeControl } | null = null;
  if (opts.control !== undefined) {
    const socket = ControlSocket.start(opts.control, log);
    if (typeof socket === 'string') { log(`tsvm: ${socket}`); publisher?.shutdown(); return 125; }
    control = { socket, rc: new RuntimeControl(sys.kernel, socket) };
    // With the control's poller the VM never blocks in a read of its stdin: a socket must be polled too.
    if (term === null) p.nodeOs.readSocketNonBlocking(0);
  }
  const t0 = performance.now();
  let status: number;
  try {
    status = runProcess(proc, sys, log);
  } finally {
    if (publisher !== null) { sys.kernel.net.pump(); publisher.shutdown(); }
    // The namespace has died with its init: the execs' last output and statuses, then the socket goes.
    if (control !== null) { control.rc.close(); control.socket.shutdown(); }
  }
  if (opts.stats) {
    const secs = (performance.now() - t0) / 1000, n = sys.kernel.instructions;
    log(`tsvm: stats: instructions=${n} seconds=${secs.toFixed(3)} mips=${(n / secs / 1e6).toFixed(1)}`);
    log(jitStatsLine());
  }
  return status;
}

/**
 * The qemu-riscv64 way to run `prog` (a host path, opened as given): no
 * root, the interpreter prefix, argv[0] and environment as QEMU builds them.
 * Any failure to load is one line on stderr, `Error while loading PROG:
 * REASON` (QEMU's words), and exit status `q.loadFailureStatus`.
 */
function execQemuUser(prog: string, args: string[], opts: ExecOptions, q: QemuUserExec): number {
  const hostOs = new QemuUserHostOs(new NodeHostOs(), { prefix: q.ldPrefix, unameRelease: q.unameRelease, seed: q.seed });
  const fail = (why: string): number => { log(`${q.name}: Error while loading ${prog}: ${why}`); return q.loadFailureStatus; };
  let data: Uint8Array;
  try { data = fs.readFileSync(prog); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' ? 'No such file or directory' : code === 'EACCES' ? 'Permission denied' : code === 'EISDIR' ? 'Is a directory' : String(code));
  }
  const loaderHost: LoaderHost = {
    readFile: (p) => {
      try { return fs.readFileSync(hostOs.prefixed(p)); } catch { return null; }
    },
    randomBytes: (b) => { hostOs.randomFill(b); },
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
  };
  const proc = new GuestProcess({ memoryBytes: opts.memoryBytes, root: undefined, trace: opts.trace }, process.pid);
  try {
    loadProgram(proc, loaderHost, prog, data, [q.argv0 ?? prog, ...args], q.envp);
  } catch (e) {
    if (e instanceof ExecError || e instanceof RangeError) return fail(e.message.startsWith(`${prog}: `) ? e.message.slice(prog.length + 2) : e.message);
    throw e;
  }
  const sys = new LinuxSyscalls(proc, hostOs, q.log ?? log);
  return runProcess(proc, sys, log);
}

/** One line of JIT counters for --stats: units, blocks, wasm bytes, compile time, invalidations, evictions, dispatcher counts, rebuilds. */
function jitStatsLine(): string {
  const t = jitTotals;
  if (!defaultJitConfig().enabled) return 'tsvm: jit: off';
  return `tsvm: jit: units=${t.unitsCompiled} blocks=${t.blocksCompiled} wasm-bytes=${t.bytesCompiled} ` +
    `compile-ms=${t.compileMs.toFixed(1)} invalidations=${t.invalidations} evictions=${t.evictions} ` +
    `dispatches=${t.dispatches} interp-steps=${t.interpSteps} cold-blocks=${t.coldBlocks} rebuilds=${t.rebuilds}`;
}
