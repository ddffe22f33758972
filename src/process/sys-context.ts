/**
 * State and helpers shared by the syscall handlers (sys-*.ts): one SysCtx
 * per guest task (thread), like the kernel's task_struct. Its parts follow
 * Linux's sharing rules: the address space (CLONE_VM), the fd table
 * (CLONE_FILES), the VFS with the working directory (CLONE_FS) and the
 * signal dispositions (CLONE_SIGHAND) are objects that threads share and a
 * forked child copies; the terminal state is one for the whole VM. Also
 * safe copies between guest memory and the host. Handlers are plain
 * functions `(ctx, args) => result` returning a value for a0 (negative
 * errno on failure, or BLOCKED when the task went to sleep, see kernel.ts).
 */
import type { GuestProcess } from './guest-process.js';
import type { AddressSpace } from './address-space.js';
import type { HostOs, HostIdentity, StatInfo } from './host-os.js';
import { namespacePids, procPidFile } from './proc-pids.js';
import { Kernel, type ThreadGroup, type Wait } from './kernel.js';
import { FdTable, OpenFile, type Pipe } from './fd-table.js';
import type { Socket } from './netns.js';
import { Vfs, PATH_MAX, type Resolved } from './vfs.js';
import {
  E, AT_FDCWD, O_ACCMODE, O_RDONLY, O_WRONLY, O_RDWR, O_LARGEFILE, O_CREAT, O_EXCL, O_NOCTTY,
  O_TRUNC, O_CLOEXEC, O_PATH, O_NOFOLLOW, O_DIRECTORY, DT_LNK, DT_CHR, DT_DIR, DT_REG, S_IFMT, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFIFO, S_IFSOCK, makeDev,
  CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_THREAD,
} from './sys-abi.js';
import { SignalState } from './sys-signals.js';
import { ptyOpen, type VmTerminal } from './sys-tty.js';

/** A syscall handler: returns the a0 result (negative errno on failure). */
export type Handler = (c: SysCtx, a: SysArgs) => number;

/** One table entry: number, name, handler. */
export interface SyscallDef { nr: number; name: string; fn: Handler }

/** The six argument registers a0..a5 of one syscall, captured before it runs. */
export class SysArgs {
  readonly lo = new Int32Array(6);
  readonly hi = new Int32Array(6);

  /** Argument i as a signed 64-bit JS number (exact below 2^53). */
  n(i: number): number { return this.hi[i]! * 4294967296 + (this.lo[i]! >>> 0); }
  /** Argument i as an unsigned 64-bit JS number (pointers, sizes). */
  u(i: number): number { return (this.hi[i]! >>> 0) * 4294967296 + (this.lo[i]! >>> 0); }
  /** Argument i truncated to a signed C int (fds, flags, modes). */
  i32(i: number): number { return this.lo[i]! | 0; }
  /** Argument i truncated to a C unsigned int. */
  u32(i: number): number { return this.lo[i]! >>> 0; }
  /** Argument i as an unsigned 64-bit bigint. */
  big(i: number): bigint { return (BigInt(this.hi[i]! >>> 0) << 32n) | BigInt(this.lo[i]! >>> 0); }
}

/**
 * A MAP_SHARED mapping at [addr, addr+len): of file (dev, ino) from `offset`,
 * or shared anonymous memory (ino -1n). Kept coherent with writes to the file
 * (shared-mappings.ts); written back on msync/munmap/exit when `writable`.
 */
export interface SharedMapping {
  addr: number; len: number; offset: number;
  /** Host fd the file is read and written through (several records may share it), or -1. */
  hostFd: number;
  /** The host path hostFd was opened by ('' if none), to re-open it (fork). */
  hostPath: string;
  /** True if the guest's fd was open for writing (hostFd, if any, is then O_RDWR). */
  fileWritable: boolean;
  /** True once the mapping has had PROT_WRITE (mmap or mprotect): it may hold changes to write back. */
  writable: boolean;
  /** Host st_dev and st_ino of the file; ino is -1n for shared anonymous memory. */
  dev: bigint; ino: bigint;
}

/** The terminal state: one controlling terminal for the whole VM. */
export interface TtyState {
  /** Terminal settings shared by every tty fd. */
  termios: Uint8Array | null;
  /** Whether the host terminal was put into raw mode for the guest. */
  raw: boolean;
  /** Window size set by TIOCSWINSZ, overriding the host's. */
  winsize: Uint8Array | null;
  /** The VM's emulated terminal (sys-tty.ts), or null: tty fds are the host's. */
  pty: VmTerminal | null;
  /** Every emulated terminal of the VM (/dev/pts/N): `pty` first if any, then the execs' (runtime-control.ts). */
  terminals: VmTerminal[];
}

/** Index of default rlimit values (include/uapi/asm-generic/resource.h order). */
const RLIM_INF = 0xffff_ffff_ffff_ffffn;
const DEFAULT_RLIMITS: Array<[bigint, bigint]> = [
  [RLIM_INF, RLIM_INF], // RLIMIT_CPU
  [RLIM_INF, RLIM_INF], // RLIMIT_FSIZE
  [RLIM_INF, RLIM_INF], // RLIMIT_DATA
  [8n << 20n, RLIM_INF], // RLIMIT_STACK: 8 MiB (include/uapi/linux/resource.h _STK_LIM)
  [0n, RLIM_INF], // RLIMIT_CORE
  [RLIM_INF, RLIM_INF], // RLIMIT_RSS
  [4096n, 4096n], // RLIMIT_NPROC
  [1024n, 4096n], // RLIMIT_NOFILE: INR_OPEN_CUR / INR_OPEN_MAX (include/uapi/linux/fs.h)
  [8n << 20n, 8n << 20n], // RLIMIT_MEMLOCK: MLOCK_LIMIT (include/uapi/linux/resource.h)
  [RLIM_INF, RLIM_INF], // RLIMIT_AS
  [RLIM_INF, RLIM_INF], // RLIMIT_LOCKS
  [4096n, 4096n], // RLIMIT_SIGPENDING
  [819200n, 819200n], // RLIMIT_MSGQUEUE: MQ_BYTES_MAX (include/linux/mqueue.h)
  [0n, 0n], // RLIMIT_NICE
  [0n, 0n], // RLIMIT_RTPRIO
  [RLIM_INF, RLIM_INF], // RLIMIT_RTTIME
];


const UTF8 = new TextDecoder();

/** d_type of an entry of a virtual directory. */
function dirEntryType(dir: string, name: string): number {
  if (dir === 'fd') return DT_LNK;
  if (dir === 'dev') return name === 'stdin' || name === 'stdout' || name === 'stderr' || name === 'fd' ? DT_LNK : DT_CHR;
  if (dir === 'proc') return name === 'self' ? DT_LNK : DT_DIR;
  if (dir === 'pid') return DT_REG; // /proc/<pid> of a container (proc-pids.ts)
  if (dir === 'pts') return DT_CHR;
  return name === 'fd' ? DT_DIR : name === 'maps' ? DT_REG : DT_LNK; // /proc/self
}

/** Syscall-layer state of one guest task. */
export class SysCtx {
  /** The task's hart and address space (execve replaces the image in place). */
  readonly proc: GuestProcess;
  /** The file descriptor table (shared with CLONE_FILES). */
  fds: FdTable;
  /** Path resolution and the working directory (shared with CLONE_FS). */
  vfs: Vfs;
  /** Signal state: per thread, dispositions per process. */
  readonly sig: SignalState;
  readonly id: HostIdentity;
  /** The file creation mask. */
  umask = 0o022;
  /** Resource limits [soft, hard], indexed by RLIMIT_*; shared by a process's threads. */
  readonly rlimits: Array<[bigint, bigint]>;
  /** The thread name (prctl PR_SET_NAME / comm), at most 15 bytes. */
  comm = '';
  /** set_tid_address / set_robust_list values. */
  tidAddress = 0;
  robustHead = 0;
  /** The VM's terminal state. */
  readonly tty: TtyState;
  /** Inode numbers handed to pipes (for fstat and /proc/self/fd): the VM's, kept by its kernel. */
  get pipeIno(): WeakMap<Pipe, number> { return this.kernel.pipeInodes; }
  /** The scheduler, process table and futexes of the VM. */
  readonly kernel: Kernel;
  /** The process (thread group) this task belongs to; set when the kernel registers the task. */
  group!: ThreadGroup;
  /** What the task sleeps on, or null while it can run (kernel.ts). */
  wait: Wait | null = null;
  /** The deadline of the wait the task was resumed from, while it retries its syscall. */
  retryDeadline: bigint | null = null;
  /** Scheduler bookkeeping: order of blocking, next poll of a host wait. */
  blockSeq = 0;
  pollAt = 0n;
  /** The futex word this task waits on (-1: none), its bitset, and whether a wake reached it. */
  futexAddr = -1;
  futexBits = 0;
  futexWoken = false;
  /** True while the scheduler retries the task's syscall as a last resort: the handler must not sleep. */
  lastResort = false;
  /** True once the task has exited and left the scheduler. */
  dead = false;

  /**
   * The root task of a new VM (from the host: stdio, identity, limits), or,
   * with `parent`, a task created by clone(2) with `flags` deciding what it
   * shares with the parent and what it copies; with `spawn` too, a process
   * the runtime starts in the VM (runtime-control.ts): `parent`'s VM, root
   * and limits, but its own fds and ids, default signals and umask.
   */
  constructor(proc: GuestProcess, readonly host: HostOs, readonly log: (line: string) => void, parent?: SysCtx, flags = 0,
    spawn?: { fds: FdTable; id: HostIdentity }) {
    this.proc = proc;
    if (parent) {
      this.kernel = parent.kernel;
      this.id = spawn?.id ?? parent.id;
      this.warned = parent.warned;
      this.tty = parent.tty;
      this.rlimits = flags & CLONE_THREAD ? parent.rlimits : parent.rlimits.map(([a, b]) => [a, b]);
      this.fds = spawn?.fds ?? (flags & CLONE_FILES ? parent.fds : parent.fds.clone());
      this.vfs = flags & CLONE_FS ? parent.vfs : this.makeVfs(parent.vfs);
      this.sig = spawn !== undefined ? new SignalState() : parent.sig.forked((flags & CLONE_SIGHAND) !== 0);
      this.umask = spawn !== undefined ? 0o022 : parent.umask;
      this.comm = parent.comm;
      this.exeAbs = parent.exeAbs;
      this.startStack = parent.startStack;
      this.startTicks = host.monotonicNs() / 10_000_000n;
      return;
    }
    this.kernel = new Kernel(host, log);
    this.warned = new Set<number>();
    this.tty = { termios: null, raw: false, winsize: null, pty: proc.opts.terminal ?? null, terminals: [] };
    if (this.tty.pty !== null) this.tty.terminals.push(this.tty.pty);
    this.sig = new SignalState();
    this.id = host.identity();
    this.rlimits = DEFAULT_RLIMITS.map(([a, b]) => [a, b]);
    const lim = host.rlimits();
    if (lim) lim.forEach(([soft, hard], i) => { if (i < this.rlimits.length) this.rlimits[i] = [soft, hard]; });
    this.fds = new FdTable((f) => this.releaseFile(f));
    const nofile = this.rlimits[7]![0]; // RLIMIT_NOFILE
    this.fds.maxFds = Number(nofile > 1048576n ? 1048576n : nofile);
    this.vfs = this.makeVfs();
    this.startStack = proc.hart.st.getX(2);
    this.startTicks = host.monotonicNs() / 10_000_000n;
    const old = host.umask(0o022);
    host.umask(old);
    this.umask = old;
    const base = proc.exePath.split('/').pop() ?? '';
    this.comm = base.slice(0, 15);
    const term = this.tty.pty;
    if (term !== null) {
      // The emulated terminal's slave, one description on fds 0-2 (as a container runtime dups it).
      const f = new OpenFile('pty', O_RDWR, -1, `/dev/pts/${term.index}`);
      f.isTty = true;
      f.terminal = term;
      for (let fd = 0; fd < 3; fd++) this.fds.install(f);
      term.kernel = this.kernel;
    }
    for (let fd = 0; fd < 3 && term === null; fd++) {
      const tty = host.isatty(fd);
      const acc = tty ? O_RDWR : fd === 0 ? O_RDONLY : O_WRONLY;
      const f = new OpenFile('host', acc, fd);
      f.implicitPos = true;
      f.inherited = true;
      const st = host.fstat(fd);
      f.seekable = typeof st !== 'number' && ((st.mode & S_IFMT) === S_IFREG || (st.mode & S_IFMT) === S_IFBLK);
      f.isTty = tty;
      this.fds.install(f);
    }
    this.exePath(); // fix the absolute path now, relative to the starting directory
    this.kernel.addRoot(this);
    if (term !== null) { term.pty.sid = this.group.sid; term.pty.fgPgrp = this.group.pgid; }
  }

  /** The address space the task runs in. */
  get mem(): AddressSpace { return this.proc.mem; }

  /** This task's thread id. */
  get tid(): number { return this.proc.tid; }

  /** Terminal settings shared by every tty fd (one controlling terminal). */
  get termios(): Uint8Array | null { return this.tty.termios; }
  set termios(t: Uint8Array | null) { this.tty.termios = t; }
  /** Whether the host terminal was put into raw mode for the guest. */
  get ttyRaw(): boolean { return this.tty.raw; }
  set ttyRaw(v: boolean) { this.tty.raw = v; }
  /** Window size set by TIOCSWINSZ, overriding the host's. */
  get winsize(): Uint8Array | null { return this.tty.winsize; }
  set winsize(w: Uint8Array | null) { this.tty.winsize = w; }

  /** MAP_SHARED mappings (file and anonymous), in no particular order: kept by the address space. */
  get shared(): SharedMapping[] { return this.proc.mem.shared; }
  set shared(list: SharedMapping[]) { this.proc.mem.shared = list; }

  /** A VFS whose /proc/self describes this task's process; a copy of `from`'s root and cwd if given. */
  makeVfs(from?: Vfs): Vfs {
    return new Vfs(this.host, this.proc.opts.root, {
      pid: () => this.proc.pid,
      exePath: () => this.exePath(),
      maps: () => this.proc.mem.maps(),
      fds: () => this.fds.list(),
      identity: () => ({ uid: this.id.uid, gid: this.id.gid }),
      stat: () => this.procStat(),
      pids: () => namespacePids(this.kernel),
      procFile: (pid, name) => procPidFile(this.kernel, pid, name),
      container: () => this.kernel.sandbox !== null,
      pty: () => this.tty.terminals.filter((t) => !t.closed).map((t) => t.index),
      mounts: () => (this.host.mountTable?.() ?? '') || null,
    }, from);
  }

  /** After execve: the new image's executable path, initial stack and start time; a fresh comm. */
  execed(): void {
    this.exeAbs = null;
    this.startStack = this.proc.hart.st.getX(2);
    this.startTicks = this.host.monotonicNs() / 10_000_000n;
    this.vfs = this.makeVfs(this.vfs);
    this.comm = (this.proc.exePath.split('/').pop() ?? '').slice(0, 15);
    this.exePath();
  }

  /** Closes the host side of a description whose last fd went away. */
  private releaseFile(f: OpenFile): void {
    if (f.hostFd >= 0 && !f.inherited) this.host.close(f.hostFd);
    if (f.pipe) {
      if ((f.flags & O_ACCMODE) === O_RDONLY) f.pipe.readers--; else f.pipe.writers--;
    }
    if (f.socket) this.kernel.net.close(f.socket, (g) => { if (--g.refs === 0) this.releaseFile(g); });
  }

  private exeAbs: string | null = null;
  /** The initial stack pointer (argc, argv, ... as the loader laid them out) and start time in ticks. */
  private startStack: number;
  /** When the image started, in clock ticks of CLOCK_MONOTONIC (proc(5) stat field 22). */
  startTicks: bigint;

  /**
   * /proc/self/stat as qemu-user fakes it (linux-user/syscall.c
   * open_self_stat): pid, (argv[0] basename), ppid, start time and stack
   * start, every other of the 44 fields 0.
   */
  procStat(): string {
    const argv0 = this.mem.readU64(this.startStack + 8);
    const a0 = argv0 === null ? null : this.mem.readCString(argv0, 4096);
    const name = (a0 ?? this.comm).split('/').pop() ?? '';
    const f: string[] = [];
    for (let i = 0; i < 44; i++) {
      if (i === 0) f.push(String(this.proc.pid));
      else if (i === 1) f.push(`(${name.slice(0, 15)})`);
      else if (i === 3) f.push(String(this.kernel.ppid(this)));
      else if (i === 21) f.push(String(this.startTicks));
      else if (i === 27) f.push(String(this.startStack));
      else f.push('0');
    }
    return f.join(' ') + '\n';
  }

  /** /proc/<pid>/cmdline: the argv the image started with, each NUL-terminated. */
  cmdline(): string {
    const argc = this.mem.readU64(this.startStack) ?? 0;
    let out = '';
    for (let i = 0; i < Math.min(argc, 4096); i++) {
      const p = this.mem.readU64(this.startStack + 8 + 8 * i);
      const s = p === null ? null : this.mem.readCString(p, 4096);
      if (s === null) break;
      out += s + '\0';
    }
    return out;
  }

  /** The executable as an absolute, canonical guest path (what /proc/self/exe names). */
  exePath(): string {
    if (this.exeAbs !== null) return this.exeAbs;
    const p = this.proc.exePath;
    let abs = p.startsWith('/') ? p : (this.vfs.cwd === '/' ? '/' : this.vfs.cwd + '/') + p;
    if (this.vfs.root === undefined) {
      const real = this.host.realpath(abs);
      if (typeof real === 'string') abs = real;
    } else {
      const r = this.vfs.resolve('/', abs, true);
      if (typeof r !== 'number') abs = r.guest;
    }
    this.exeAbs = abs;
    return abs;
  }

  // ---- guest memory ----

  /** Reads a NUL-terminated path; -EFAULT or -ENAMETOOLONG on failure. */
  str(addr: number, max = PATH_MAX): string | number {
    if (addr === 0) return -E.EFAULT;
    // Scan page by page: a fault anywhere before the NUL is EFAULT, no NUL within max is ENAMETOOLONG.
    const parts: Uint8Array[] = [];
    for (let done = 0; done < max;) {
      const at = addr + done, n = Math.min(max - done, 4096 - (at % 4096));
      const chunk = this.mem.read(at, n);
      if (!chunk) return -E.EFAULT;
      const z = chunk.indexOf(0);
      if (z >= 0) {
        parts.push(chunk.subarray(0, z));
        const all = new Uint8Array(done + z);
        let off = 0;
        for (const p of parts) { all.set(p, off); off += p.length; }
        return UTF8.decode(all);
      }
      parts.push(chunk);
      done += n;
    }
    return -E.ENAMETOOLONG;
  }

  /** Copies guest memory out; null on fault. */
  read(addr: number, len: number): Uint8Array | null {
    if (len === 0) return new Uint8Array(0);
    return this.mem.read(addr, len);
  }

  /** Copies into guest memory; false on fault. */
  write(addr: number, data: Uint8Array): boolean {
    if (data.length === 0) return true;
    return this.mem.write(addr, data);
  }

  /** Reads a little-endian i64/u64 at addr as bigint; null on fault. */
  readBig(addr: number, signed = false): bigint | null {
    const b = this.read(addr, 8);
    if (!b) return null;
    const dv = new DataView(b.buffer);
    return signed ? dv.getBigInt64(0, true) : dv.getBigUint64(0, true);
  }

  /** Reads a little-endian i32 at addr; null on fault. */
  readI32(addr: number): number | null {
    const b = this.read(addr, 4);
    return b ? new DataView(b.buffer).getInt32(0, true) : null;
  }

  /** Reads a struct timespec as ns; null on fault, -1n if tv_nsec is out of range or tv_sec < 0. */
  readTimespec(addr: number): bigint | null {
    const b = this.read(addr, 16);
    if (!b) return null;
    const dv = new DataView(b.buffer), s = dv.getBigInt64(0, true), ns = dv.getBigInt64(8, true);
    if (s < 0n || ns < 0n || ns >= 1_000_000_000n) return -1n;
    return s * 1_000_000_000n + ns;
  }

  // ---- paths and files ----

  /** The guest directory `path` is relative to for `dirfd`, or -errno. */
  baseDir(dirfd: number, path: string): string | number {
    if (path.startsWith('/') || dirfd === AT_FDCWD) return this.vfs.cwd;
    const f = this.fds.get(dirfd);
    if (!f) return -E.EBADF;
    if (!f.isDir) return -E.ENOTDIR;
    return f.guestPath;
  }

  /** Resolves (dirfd, path) to a host path or virtual node. */
  resolveAt(dirfd: number, path: string, follow: boolean): Resolved | number {
    if (path === '') return -E.ENOENT;
    const base = this.baseDir(dirfd, path);
    if (typeof base === 'number') return base;
    return this.vfs.resolve(base, path, follow);
  }

  /** Reads the path argument at `ptr` and resolves it against `dirfd`. */
  pathAt(dirfd: number, ptr: number, follow: boolean): Resolved | number {
    const p = this.str(ptr);
    if (typeof p === 'number') return p;
    return this.resolveAt(dirfd, p, follow);
  }

  /** stat/lstat of a resolved path. */
  statOf(r: Resolved, follow: boolean): StatInfo | number {
    if (r.kind === 'host') return follow ? this.host.stat(r.host) : this.host.lstat(r.host);
    if (r.node.t === 'fd') {
      const f = this.fds.get(r.node.fd);
      if (!f) return -E.ENOENT;
      if (follow) return this.fstatOf(f);
      const st = this.vfs.virtualStat(r.node);
      st.mode = S_IFLNK | (f.readable ? 0o500 : 0o100) | (f.writable ? 0o200 : 0); // lr-x / l-wx / lrwx
      return st;
    }
    return this.vfs.virtualStat(r.node);
  }

  /** fstat of an open description. */
  fstatOf(f: OpenFile): StatInfo | number {
    if (f.hostFd >= 0) return this.host.fstat(f.hostFd);
    if (f.kind === 'path' || (f.kind === 'dir' && f.hostPath !== '')) {
      return f.noFollow ? this.host.lstat(f.hostPath) : this.host.stat(f.hostPath);
    }
    if (f.kind === 'pipe' && f.pipe) {
      const st = this.vfs.virtualStat({ t: 'file', name: 'maps', content: () => new Uint8Array(0) });
      st.mode = S_IFIFO | 0o600; st.dev = makeDev(0, 0xd); st.ino = BigInt(this.pipeInode(f.pipe));
      st.blksize = 4096; st.size = 0n;
      return st;
    }
    if (f.kind === 'socket' && f.socket) {
      const st = this.vfs.virtualStat({ t: 'file', name: 'maps', content: () => new Uint8Array(0) });
      st.mode = S_IFSOCK | 0o777; st.dev = makeDev(0, 0x8); st.ino = BigInt(this.socketInode(f.socket));
      st.blksize = 4096; st.size = 0n;
      return st;
    }
    if (f.kind === 'null' || f.kind === 'zero' || f.kind === 'full' || f.kind === 'random') {
      return this.vfs.virtualStat({ t: 'dev', dev: f.kind === 'random' ? (f.guestPath.endsWith('urandom') ? 'urandom' : 'random') : f.kind });
    }
    if (f.kind === 'dir') return this.vfs.virtualStat({ t: 'dir', name: 'fd', entries: [] });
    if (f.kind === 'pty') return this.vfs.virtualStat({ t: 'pty', name: f.guestPath === '/dev/tty' ? 'tty' : 'pts', n: f.terminal?.index ?? 0 });
    return this.vfs.virtualStat({ t: 'file', name: 'maps', content: () => new Uint8Array(0) });
  }

  /** A stable inode number for a pipe. */
  pipeInode(p: Pipe): number {
    let n = this.pipeIno.get(p);
    if (n === undefined) { n = this.kernel.nextPipeInode++; this.pipeIno.set(p, n); }
    return n;
  }

  /** A stable inode number for a socket (shared with pipes' numbering). */
  socketInode(s: Socket): number {
    let n = this.kernel.socketInodes.get(s);
    if (n === undefined) { n = this.kernel.nextPipeInode++; this.kernel.socketInodes.set(s, n); }
    return n;
  }

  /** What readlink(/proc/self/fd/N) shows. */
  fdTarget(fd: number): string {
    const f = this.fds.get(fd);
    if (!f) return '';
    if (f.pipe) return `pipe:[${this.pipeInode(f.pipe)}]`;
    if (f.socket) return `socket:[${this.socketInode(f.socket)}]`;
    if (f.guestPath !== '') return f.guestPath;
    if (f.hostFd >= 0) {
      const t = this.host.readlink(`/proc/self/fd/${f.hostFd}`);
      const root = this.vfs.root;
      if (typeof t === 'string') {
        if (root === undefined || /^(pipe|socket|anon_inode):|^\/dev\//.test(t)) return t;
        if (t.startsWith(root + '/')) return t.slice(root.length);
      }
    }
    return f.isTty ? '/dev/tty' : 'anon_inode:[unknown]';
  }

  /**
   * The status flags an open file description keeps: creation flags are
   * dropped (fs/open.c). O_LARGEFILE, which a riscv64 kernel would add, is
   * left out as qemu-user reports it (the x86-64 host's libc value is 0).
   */
  static keptFlags(flags: number): number {
    return flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC | O_LARGEFILE);
  }

  /** Opens a resolved path with Linux open flags; returns the description or -errno. */
  openResolved(r: Resolved, flags: number, mode: number): OpenFile | number {
    const kept = SysCtx.keptFlags(flags), acc = flags & O_ACCMODE;
    if (r.kind === 'virtual') {
      const n = r.node;
      switch (n.t) {
        case 'dev': return new OpenFile(n.dev === 'urandom' ? 'random' : n.dev, kept, -1, r.guest);
        case 'pty': {
          const term = ptyOpen(this, n.name === 'tty' ? null : n.n ?? 0, (flags & O_NOCTTY) !== 0);
          if (typeof term === 'number') return term;
          const f = new OpenFile('pty', kept, -1, r.guest);
          f.isTty = true;
          f.terminal = term;
          return f;
        }
        case 'file': {
          if (acc !== O_RDONLY) return -E.EACCES;
          return new OpenFile('mem', kept, -1, r.guest, '', null, n.content());
        }
        case 'dir': {
          if (acc !== O_RDONLY) return -E.EISDIR;
          const f = new OpenFile('dir', kept, -1, r.guest);
          f.isDir = true;
          f.dirList = [{ name: '.', ino: 2n, type: 4 }, { name: '..', ino: 1n, type: 4 },
            ...n.entries.map((name) => ({ name, ino: 100n, type: dirEntryType(n.name, name) }))];
          return f;
        }
        case 'link': return (flags & O_PATH) ? new OpenFile('path', kept, -1, r.guest) : -E.ELOOP;
        case 'fd': {
          const t = this.fds.get(n.fd);
          if (!t) return -E.ENOENT;
          if (t.pipe) {
            const p = new OpenFile('pipe', (kept & ~O_ACCMODE) | (t.flags & O_ACCMODE), -1, '', '', t.pipe);
            if ((t.flags & O_ACCMODE) === O_RDONLY) t.pipe.readers++; else t.pipe.writers++;
            return p;
          }
          if (t.kind === 'pty') {
            const n = t.terminal?.index ?? 0;
            return this.openResolved({ kind: 'virtual', node: { t: 'pty', name: 'pts', n }, guest: `/dev/pts/${n}` }, flags, mode);
          }
          if (t.hostPath !== '') return this.openResolved({ kind: 'host', host: t.hostPath, guest: t.guestPath }, flags, mode);
          if (t.hostFd >= 0 && this.vfs.root === undefined) {
            return this.openResolved({ kind: 'host', host: `/proc/self/fd/${t.hostFd}`, guest: this.fdTarget(n.fd) }, flags, mode);
          }
          return t;
        }
      }
    }
    if (flags & O_PATH) {
      const st = (flags & O_NOFOLLOW) ? this.host.lstat(r.host) : this.host.stat(r.host);
      if (typeof st === 'number') return st;
      // open(2): O_DIRECTORY on a non-directory fails with ENOTDIR, O_PATH or not.
      if ((flags & O_DIRECTORY) && (st.mode & S_IFMT) !== S_IFDIR) return -E.ENOTDIR;
      const f = new OpenFile('path', O_PATH, -1, r.guest, r.host);
      f.isDir = (st.mode & S_IFMT) === S_IFDIR;
      f.noFollow = (flags & O_NOFOLLOW) !== 0;
      return f;
    }
    const hfd = this.host.open(r.host, flags & ~O_CLOEXEC, mode);
    if (hfd < 0) return hfd;
    const st = this.host.fstat(hfd);
    const fmt = typeof st === 'number' ? 0 : st.mode & S_IFMT;
    const f = new OpenFile(fmt === S_IFDIR ? 'dir' : 'host', kept, hfd, r.guest, r.host);
    f.isDir = fmt === S_IFDIR;
    f.seekable = fmt === S_IFREG || fmt === S_IFBLK || fmt === S_IFDIR;
    f.isTty = fmt !== S_IFREG && fmt !== S_IFDIR && this.host.isatty(hfd);
    return f;
  }

  // ---- diagnostics ----

  private readonly warned: Set<number>;

  /** Logs `line` once per key. */
  warnOnce(key: number, line: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log(line);
  }
}
