/**
 * The guest's file descriptor table: guest fd numbers -> open file
 * descriptions (shared by dup'd fds, like the kernel's `struct file`), the
 * per-fd close-on-exec bit, and in-process pipes (sockets: netns.ts).
 *
 * Pipes live entirely inside the VM. Their descriptions are shared by
 * every process that inherited them, so reader and writer counts are kept
 * per description. Blocking (an empty pipe with writers, a full pipe with
 * readers) is decided by the I/O syscalls (sys-io.ts): the task sleeps
 * while other tasks run; when it is the only task, nothing could ever
 * change the pipe, so a read returns what is buffered or 0 (end of file),
 * and a write lets the buffer grow past its nominal capacity. An
 * O_NONBLOCK fd gets -EAGAIN in those cases, as on Linux.
 */
import type { VmTerminal } from './sys-tty.js';
import type { HostDirent } from './host-os.js';
import type { Socket } from './netns.js';
import { E, O_ACCMODE, O_RDONLY, O_WRONLY, O_NONBLOCK } from './sys-abi.js';

/** Nominal pipe capacity, as Linux's default (include/linux/pipe_fs_i.h: PIPE_DEF_BUFFERS * PAGE_SIZE). */
export const PIPE_CAPACITY = 65536;

/** A unidirectional in-process pipe: a growable ring buffer plus end counts. */
export class Pipe {
  private buf = new Uint8Array(4096);
  private head = 0;
  private len = 0;
  /** Open read / write descriptions. */
  readers = 0;
  writers = 0;
  /** The size F_GETPIPE_SZ reports and O_NONBLOCK writes respect. */
  capacity = PIPE_CAPACITY;

  /** Bytes waiting to be read. */
  get available(): number { return this.len; }

  /** Removes and returns up to `n` bytes. */
  read(n: number): Uint8Array {
    const k = Math.min(n, this.len), out = new Uint8Array(k), cap = this.buf.length;
    const first = Math.min(k, cap - this.head);
    out.set(this.buf.subarray(this.head, this.head + first), 0);
    if (k > first) out.set(this.buf.subarray(0, k - first), first);
    this.head = (this.head + k) % cap;
    this.len -= k;
    if (this.len === 0) this.head = 0;
    return out;
  }

  /** Appends `data` (growing the ring when needed); returns bytes accepted. */
  write(data: Uint8Array, limit = Infinity): number {
    const k = Math.min(data.length, Math.max(0, limit - this.len));
    if (this.len + k > this.buf.length) {
      let size = this.buf.length;
      while (size < this.len + k) size *= 2;
      const nb = new Uint8Array(size), old = this.read(this.len);
      nb.set(old, 0);
      this.buf = nb; this.head = 0; this.len = old.length;
    }
    const cap = this.buf.length, tail = (this.head + this.len) % cap;
    const first = Math.min(k, cap - tail);
    this.buf.set(data.subarray(0, first), tail);
    if (k > first) this.buf.set(data.subarray(first, k), 0);
    this.len += k;
    return k;
  }
}

/** What an open file description refers to. */
export type FileKind =
  | 'host' // a host file descriptor (regular file, tty, device, host fifo)
  | 'dir' // a directory (host or virtual), read with getdents64
  | 'pipe' // one end of an in-process Pipe
  | 'mem' // a read-only in-memory file (/proc/self/maps)
  | 'null' | 'zero' | 'full' | 'random' // emulated character devices
  | 'socket' // a socket of the VM's network namespace (netns.ts)
  | 'pty' // the slave of the VM's emulated terminal (sys-tty.ts)
  | 'path'; // an O_PATH reference: usable only for fstat, *at and fchdir

/** An open file description: shared by every fd dup'd from the same open. */
export class OpenFile {
  /** Number of guest fds referring to this description. */
  refs = 0;
  /** File offset for seekable kinds (host regular files, dirs as a cookie, mem). */
  pos = 0;
  /**
   * True for inherited host fds (stdio): reads and writes use the host
   * kernel's own offset until the guest seeks, then `pos` takes over.
   */
  implicitPos = false;
  /** True for host fds the VM inherited (stdio): never closed on the host. */
  inherited = false;
  /** Directory snapshot for getdents64, taken at the first read after open/rewind. */
  dirList: HostDirent[] | null = null;
  /** True if positioned I/O works (regular files, block devices, directories). */
  seekable = false;
  /** True if the host fd is a terminal. */
  isTty = false;
  /** For kind 'pty': the emulated terminal whose slave this is (sys-tty.ts). */
  terminal: VmTerminal | null = null;
  /** True if this refers to a directory (usable as a dirfd and by fchdir). */
  isDir = false;
  /** For O_PATH|O_NOFOLLOW descriptions: stat the link itself. */
  noFollow = false;
  /** The socket, for kind 'socket'. */
  socket: Socket | null = null;

  constructor(
    /** What this description refers to. */
    readonly kind: FileKind,
    /** Access mode and status flags (Linux O_* values, without O_CLOEXEC). */
    public flags: number,
    /** Host fd, or -1. */
    readonly hostFd = -1,
    /** The canonical guest path it was opened by ('' if none, e.g. pipes). */
    readonly guestPath = '',
    /** The host path ('' if none). */
    readonly hostPath = '',
    /** The pipe, for kind 'pipe'. */
    readonly pipe: Pipe | null = null,
    /** Contents, for kind 'mem'. */
    readonly data: Uint8Array | null = null,
  ) {}

  /** True if opened for reading. */
  get readable(): boolean { return (this.flags & O_ACCMODE) !== O_WRONLY && this.kind !== 'path'; }

  /** True if opened for writing. */
  get writable(): boolean { return (this.flags & O_ACCMODE) !== O_RDONLY && this.kind !== 'path'; }

  /** True if O_NONBLOCK is set. */
  get nonBlocking(): boolean { return (this.flags & O_NONBLOCK) !== 0; }
}

interface Slot { file: OpenFile; cloexec: boolean }

/** Default RLIMIT_NOFILE soft limit (Linux INR_OPEN_CUR, include/uapi/linux/fs.h). */
export const DEFAULT_MAX_FDS = 1024;

/** The guest fd table. */
export class FdTable {
  private readonly slots: Array<Slot | undefined> = [];
  /** Highest fd number + 1 that may be allocated (RLIMIT_NOFILE). */
  maxFds = DEFAULT_MAX_FDS;

  /** `release` runs when the last fd of a description closes. */
  constructor(private readonly release: (f: OpenFile) => void) {}

  /** The description behind `fd`, if open. */
  get(fd: number): OpenFile | undefined {
    return fd >= 0 ? this.slots[fd]?.file : undefined;
  }

  /** Installs `file` at the lowest free fd >= minFd; returns it or -EMFILE. */
  install(file: OpenFile, cloexec = false, minFd = 0): number {
    let fd = Math.max(0, minFd);
    while (fd < this.maxFds && this.slots[fd] !== undefined) fd++;
    if (fd >= this.maxFds) return -E.EMFILE;
    file.refs++;
    this.slots[fd] = { file, cloexec };
    return fd;
  }

  /** Installs `file` at exactly `fd`, closing what was there (dup2/dup3); returns fd or -EBADF. */
  installAt(fd: number, file: OpenFile, cloexec: boolean): number {
    if (fd < 0 || fd >= this.maxFds) return -E.EBADF;
    file.refs++;
    const old = this.slots[fd];
    this.slots[fd] = { file, cloexec };
    if (old) this.drop(old.file);
    return fd;
  }

  /** Closes `fd`; 0 or -EBADF. */
  close(fd: number): number {
    const s = fd >= 0 ? this.slots[fd] : undefined;
    if (!s) return -E.EBADF;
    this.slots[fd] = undefined;
    this.drop(s.file);
    return 0;
  }

  /** Drops a reference held outside any table (a file in flight in an SCM_RIGHTS message). */
  unref(f: OpenFile): void { this.drop(f); }

  private drop(f: OpenFile): void {
    if (--f.refs === 0) this.release(f);
  }

  /** The close-on-exec bit of `fd` (undefined if not open). */
  getCloexec(fd: number): boolean | undefined {
    return fd >= 0 ? this.slots[fd]?.cloexec : undefined;
  }

  /** Sets the close-on-exec bit; false if `fd` is not open. */
  setCloexec(fd: number, on: boolean): boolean {
    const s = fd >= 0 ? this.slots[fd] : undefined;
    if (!s) return false;
    s.cloexec = on;
    return true;
  }

  /** A copy of the table (fork): the same descriptions, each one more reference per fd. */
  clone(): FdTable {
    const t = new FdTable(this.release);
    t.maxFds = this.maxFds;
    this.slots.forEach((s, i) => {
      if (!s) return;
      s.file.refs++;
      t.slots[i] = { file: s.file, cloexec: s.cloexec };
    });
    return t;
  }

  /** An empty table with this one's release and fd limit (a process the runtime starts, runtime-control.ts). */
  fresh(): FdTable {
    const t = new FdTable(this.release);
    t.maxFds = this.maxFds;
    return t;
  }

  /** Closes every fd marked close-on-exec (execve). */
  closeOnExec(): void {
    this.slots.forEach((s, i) => { if (s?.cloexec) this.close(i); });
  }

  /** Closes every fd (the last task using the table exits). */
  closeAll(): void {
    this.slots.forEach((s, i) => { if (s) this.close(i); });
  }

  /** The open fd numbers, ascending. */
  list(): number[] {
    const out: number[] = [];
    this.slots.forEach((s, i) => { if (s) out.push(i); });
    return out;
  }
}
