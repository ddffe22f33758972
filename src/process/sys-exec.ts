/**
 * execve(2) and execveat(2): replace the calling process's image.
 *
 * The new program (and its PT_INTERP dynamic linker) is loaded by the
 * loader into a fresh address space first; only once that succeeded is the
 * old image dropped (the point of no return), so every failure leaves the
 * caller running with an errno as Linux does: ENOENT (no such file, or a
 * missing interpreter), EACCES (not a regular file, or not executable),
 * ENOEXEC (neither ELF nor `#!`, or a broken ELF), ELOOP (too many nested
 * `#!` interpreters), E2BIG (arguments too long). `#!` scripts run their
 * interpreter with argv = [interpreter, optional argument, script path,
 * argv[1..]] (fs/binfmt_script.c).
 *
 * On success: the other threads of the process end, close-on-exec fds are
 * closed, caught signals revert to SIG_DFL (ignored ones stay ignored), the
 * alternate signal stack is dropped, and a vfork parent wakes up.
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import { GuestProcess } from './guest-process.js';
import { AddressSpace } from './address-space.js';
import { loadProgram, type LoaderHost } from './loader.js';
import { ExecError } from './elf.js';
import { E, AT_FDCWD, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, O_RDONLY, S_IFMT, S_IFREG, S_IFLNK } from './sys-abi.js';

/** access(2) mode bit for execute permission. */
const X_OK = 1;
/** Longest single argument or environment string (include/uapi/linux/binfmts.h MAX_ARG_STRLEN). */
const MAX_ARG_STRLEN = 32 * 4096;
/** Most bytes of arguments and environment together (a quarter of the 8 MiB default stack, fs/exec.c). */
const ARG_MAX = 2 * 1024 * 1024;
/** Bytes of a `#!` line the kernel looks at (include/uapi/linux/binfmts.h BINPRM_BUF_SIZE). */
const BINPRM_BUF_SIZE = 256;
/** Nested interpreters allowed (fs/exec.c: bprm->interp_depth > BINPRM_MAX_RECURSION gives ELOOP). */
const MAX_INTERP_DEPTH = 4;
/** Largest executable read into memory. */
const MAX_IMAGE = 1024 * 1024 * 1024;

/** Reads a NULL-terminated array of string pointers (argv or envp); a NULL array is empty. */
function readStrings(c: SysCtx, ptr: number, total: { n: number }): string[] | number {
  const out: string[] = [];
  if (ptr === 0) return out;
  for (let i = 0; ; i++) {
    const p = c.mem.readU64(ptr + 8 * i);
    if (p === null) return -E.EFAULT;
    if (p === 0) return out;
    const s = c.str(p, MAX_ARG_STRLEN);
    if (typeof s === 'number') return s === -E.ENAMETOOLONG ? -E.E2BIG : s;
    total.n += s.length + 1 + 8;
    if (total.n > ARG_MAX) return -E.E2BIG;
    out.push(s);
  }
}

/** Reads a whole host file (at most `size` bytes); -errno if it cannot be read. */
function readHostFile(c: SysCtx, hostPath: string, size: number): Uint8Array | number {
  const fd = c.host.open(hostPath, O_RDONLY, 0);
  if (fd < 0) return fd;
  const data = new Uint8Array(size);
  let done = 0;
  while (done < size) {
    const n = c.host.read(fd, data.subarray(done), done);
    if (n < 0) { c.host.close(fd); return n; }
    if (n === 0) break;
    done += n;
  }
  c.host.close(fd);
  return data.subarray(0, done);
}

/** An executable file: its bytes and canonical guest path. */
interface Executable { data: Uint8Array; guest: string }

/** Resolves and reads a program for execve, with Linux's checks; -errno on failure. */
function readExecutable(c: SysCtx, dirfd: number, path: string, flags: number): Executable | number {
  let hostPath: string, guest: string;
  if (path === '' && (flags & AT_EMPTY_PATH)) {
    const f = c.fds.get(dirfd);
    if (!f) return -E.EBADF;
    if (f.hostPath === '') return -E.EACCES;
    hostPath = f.hostPath; guest = f.guestPath;
  } else {
    const nofollow = (flags & AT_SYMLINK_NOFOLLOW) !== 0;
    const r = c.resolveAt(dirfd, path, !nofollow);
    if (typeof r === 'number') return r;
    if (r.kind !== 'host') return -E.EACCES;
    hostPath = r.host; guest = r.guest;
    if (nofollow) {
      const l = c.host.lstat(hostPath);
      if (typeof l !== 'number' && (l.mode & S_IFMT) === S_IFLNK) return -E.ELOOP;
    }
  }
  const st = c.host.stat(hostPath);
  if (typeof st === 'number') return st;
  if ((st.mode & S_IFMT) !== S_IFREG) return -E.EACCES;
  const acc = c.host.access(hostPath, X_OK);
  if (acc < 0) return acc;
  if (st.size > BigInt(MAX_IMAGE)) return -E.ENOMEM;
  const data = readHostFile(c, hostPath, Number(st.size));
  return typeof data === 'number' ? data : { data, guest };
}

/** The interpreter and optional argument of a `#!` line; null if `data` is not a script, or -ENOEXEC. */
function shebang(data: Uint8Array): { interp: string; arg: string | null } | null | number {
  if (data.length < 2 || data[0] !== 0x23 || data[1] !== 0x21) return null;
  const head = data.subarray(2, Math.min(data.length, BINPRM_BUF_SIZE));
  const nl = head.indexOf(0x0a);
  const line = new TextDecoder().decode(nl >= 0 ? head.subarray(0, nl) : head).replace(/^[ \t]+|[ \t]+$/g, '');
  if (line === '') return -E.ENOEXEC;
  const m = /^([^ \t]+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m) return -E.ENOEXEC;
  if (nl < 0 && data.length > BINPRM_BUF_SIZE && m[2] === undefined) return -E.ENOEXEC; // a truncated interpreter path
  return { interp: m[1]!, arg: m[2] !== undefined && m[2] !== '' ? m[2] : null };
}

function isElf(d: Uint8Array): boolean {
  return d.length >= 4 && d[0] === 0x7f && d[1] === 0x45 && d[2] === 0x4c && d[3] === 0x46;
}

/** What the loader needs, from the calling task's view of the filesystem. */
function loaderHost(c: SysCtx): LoaderHost {
  return {
    readFile: (p) => {
      const r = c.resolveAt(AT_FDCWD, p, true);
      if (typeof r === 'number' || r.kind !== 'host') return null;
      const st = c.host.stat(r.host);
      if (typeof st === 'number' || (st.mode & S_IFMT) !== S_IFREG || st.size > BigInt(MAX_IMAGE)) return null;
      const d = readHostFile(c, r.host, Number(st.size));
      return typeof d === 'number' ? null : d;
    },
    randomBytes: (b) => { c.host.randomFill(b); },
    uid: c.id.uid,
    gid: c.id.gid,
  };
}

/** execveat(dirfd, path, argv, envp, flags); execve is dirfd = AT_FDCWD, flags = 0. */
function exec(c: SysCtx, dirfd: number, pathPtr: number, argvPtr: number, envpPtr: number, flags: number): number {
  if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) return -E.EINVAL;
  const path = c.str(pathPtr);
  if (typeof path === 'number') return path;
  const total = { n: 0 };
  const argv = readStrings(c, argvPtr, total);
  if (typeof argv === 'number') return argv;
  const envp = readStrings(c, envpPtr, total);
  if (typeof envp === 'number') return envp;
  if (path === '' && !(flags & AT_EMPTY_PATH)) return -E.ENOENT;
  return execStrings(c, dirfd, path, argv, envp, flags);
}

/**
 * Replaces `c`'s image with program `path` run with `argv` and `envp` (the
 * runtime's exec into a container, runtime-control.ts, with AT_FDCWD and no
 * flags); 0, or -errno with `c` unchanged. On success pc is one ecall before
 * the entry point, as after a syscall.
 */
export function execStrings(c: SysCtx, dirfd: number, path: string, argv: string[], envp: string[], flags: number): number {
  let file = readExecutable(c, dirfd, path, flags);
  if (typeof file === 'number') return file;
  let args = argv, name = path;
  for (let depth = 0; ; depth++) {
    const sb = shebang(file.data);
    if (sb === null) break;
    if (typeof sb === 'number') return sb;
    if (depth >= MAX_INTERP_DEPTH) return -E.ELOOP;
    args = [sb.interp, ...(sb.arg !== null ? [sb.arg] : []), name, ...args.slice(1)];
    name = sb.interp;
    file = readExecutable(c, AT_FDCWD, sb.interp, 0);
    if (typeof file === 'number') return file;
  }
  if (!isElf(file.data)) return -E.ENOEXEC;
  let fresh: GuestProcess;
  try {
    const ram = c.kernel.takeRam(c.proc.ram.size, c.proc.opts);
    fresh = new GuestProcess(c.proc.opts, c.proc.pid, { ram, mem: new AddressSpace(ram) }, c.tid);
  } catch (e) {
    if (e instanceof RangeError) return -E.ENOMEM;
    throw e;
  }
  try {
    loadProgram(fresh, loaderHost(c), file.guest, file.data, args, envp);
  } catch (e) {
    if (!(e instanceof ExecError)) throw e;
    fresh.release();
    c.kernel.releaseMemory(fresh.mem);
    return e.exitCode === 127 ? -E.ENOENT : -E.ENOEXEC;
  }
  commit(c, fresh);
  return 0;
}

/** The point of no return: `c` continues as the freshly loaded image. */
function commit(c: SysCtx, fresh: GuestProcess): void {
  const k = c.kernel;
  k.execKillOthers(c);
  k.futexCancel(c);
  const oldShared = k.sharesMemory(c);
  if (c.tidAddress !== 0 && oldShared && c.mem.write(c.tidAddress, new Uint8Array(4))) {
    k.futexWake(c.mem, c.tidAddress, 1, -1); // kernel/fork.c mm_release: a vfork parent's view of the tid
  }
  c.tidAddress = 0;
  c.robustHead = 0;
  const oldMem = c.mem;
  if (!oldShared) k.dropMappings(c);
  c.proc.adopt(fresh);
  k.releaseMemory(oldMem);
  if (k.tasks.some((t) => t !== c && t.fds === c.fds)) c.fds = c.fds.clone();
  c.fds.closeOnExec();
  c.sig.resetForExec();
  c.group.execed = true;
  if (c.group.vforkDone === false) c.group.vforkDone = true;
  c.execed();
  const st = c.proc.hart.st;
  st.setPc(st.getPc() - 4); // the run loop's +4 lands on the entry point
}

/** Program execution syscalls (include/uapi/asm-generic/unistd.h numbers). */
export const execSyscalls: SyscallDef[] = [
  { nr: 221, name: 'execve', fn: (c, a: SysArgs) => exec(c, AT_FDCWD, a.u(0), a.u(1), a.u(2), 0) },
  { nr: 281, name: 'execveat', fn: (c, a: SysArgs) => exec(c, a.i32(0), a.u(1), a.u(2), a.u(3), a.i32(4)) },
];
