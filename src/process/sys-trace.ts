/**
 * strace-like formatting of one syscall for --trace, e.g.
 * `openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3`.
 * Common calls get named arguments; others print their six arguments in hex.
 */
import type { SysCtx, SysArgs } from './sys-context.js';
import {
  OPEN_FLAG_NAMES, O_ACCMODE, O_CREAT, O_TMPFILE_BIT, AT_FDCWD, errnoName, signalName,
} from './sys-abi.js';

/** How one argument is shown. */
type Kind =
  | 'd' | 'u' | 'x' | 'fd' | 'dirfd' | 'path' | 'oflags' | 'mode' | 'wbuf' | 'rbuf' | 'prot' | 'mflags'
  | 'atflags' | 'sig' | 'clock' | 'whence' | 'ioctl' | 'fcntl' | 'how';

/** Argument kinds of the calls traced by name. */
const SPECS: Record<string, Kind[]> = {
  read: ['fd', 'rbuf', 'u'], write: ['fd', 'wbuf', 'u'], readv: ['fd', 'x', 'u'], writev: ['fd', 'x', 'u'],
  pread64: ['fd', 'rbuf', 'u', 'd'], pwrite64: ['fd', 'wbuf', 'u', 'd'], lseek: ['fd', 'd', 'whence'],
  openat: ['dirfd', 'path', 'oflags', 'mode'], close: ['fd'], dup: ['fd'], dup3: ['fd', 'fd', 'oflags'],
  fcntl: ['fd', 'fcntl', 'x'], ioctl: ['fd', 'ioctl', 'x'], pipe2: ['x', 'oflags'], getdents64: ['fd', 'x', 'u'],
  newfstatat: ['dirfd', 'path', 'x', 'atflags'], fstat: ['fd', 'x'], statx: ['dirfd', 'path', 'atflags', 'x', 'x'],
  readlinkat: ['dirfd', 'path', 'rbuf', 'u'], faccessat: ['dirfd', 'path', 'd'],
  faccessat2: ['dirfd', 'path', 'd', 'atflags'], mkdirat: ['dirfd', 'path', 'mode'],
  unlinkat: ['dirfd', 'path', 'atflags'], renameat: ['dirfd', 'path', 'dirfd', 'path'],
  renameat2: ['dirfd', 'path', 'dirfd', 'path', 'x'], symlinkat: ['path', 'dirfd', 'path'],
  linkat: ['dirfd', 'path', 'dirfd', 'path', 'atflags'], fchmod: ['fd', 'mode'], fchmodat: ['dirfd', 'path', 'mode'],
  fchown: ['fd', 'd', 'd'], fchownat: ['dirfd', 'path', 'd', 'd', 'atflags'], utimensat: ['dirfd', 'path', 'x', 'atflags'],
  truncate: ['path', 'd'], ftruncate: ['fd', 'd'], fsync: ['fd'], fdatasync: ['fd'], statfs: ['path', 'x'],
  fstatfs: ['fd', 'x'], getcwd: ['x', 'u'], chdir: ['path'], fchdir: ['fd'], umask: ['mode'],
  sendfile: ['fd', 'fd', 'x', 'u'], ppoll: ['x', 'u', 'x', 'x', 'u'], brk: ['x'],
  mmap: ['x', 'u', 'prot', 'mflags', 'fd', 'u'], munmap: ['x', 'u'], mprotect: ['x', 'u', 'prot'],
  mremap: ['x', 'u', 'u', 'x', 'x'], madvise: ['x', 'u', 'd'], clock_gettime: ['clock', 'x'],
  clock_getres: ['clock', 'x'], clock_nanosleep: ['clock', 'd', 'x', 'x'], nanosleep: ['x', 'x'],
  getrandom: ['x', 'u', 'x'], exit: ['d'], exit_group: ['d'], kill: ['d', 'sig'], tkill: ['d', 'sig'],
  tgkill: ['d', 'd', 'sig'], rt_sigaction: ['sig', 'x', 'x', 'u'], rt_sigprocmask: ['how', 'x', 'x', 'u'],
  set_tid_address: ['x'], set_robust_list: ['x', 'u'], prlimit64: ['d', 'd', 'x', 'x'], uname: ['x'],
  getpid: [], getppid: [], gettid: [], getuid: [], geteuid: [], getgid: [], getegid: [], sched_yield: [],
  rt_sigreturn: [], close_range: ['fd', 'fd', 'x'], prctl: ['d', 'x', 'x', 'x', 'x'],
  rseq: ['x', 'u', 'x', 'x'], riscv_hwprobe: ['x', 'u', 'u', 'x', 'x'], sigaltstack: ['x', 'x'],
  futex: ['x', 'd', 'd', 'x', 'x', 'd'], sched_getaffinity: ['d', 'u', 'x'], getrlimit: ['d', 'x'],
  setrlimit: ['d', 'x'], sysinfo: ['x'], pselect6: ['d', 'x', 'x', 'x', 'x', 'x'], msync: ['x', 'u', 'x'],
};

const IOCTL_NAMES: Record<number, string> = {
  0x5401: 'TCGETS', 0x5402: 'TCSETS', 0x5403: 'TCSETSW', 0x5404: 'TCSETSF', 0x540f: 'TIOCGPGRP',
  0x5410: 'TIOCSPGRP', 0x5413: 'TIOCGWINSZ', 0x5414: 'TIOCSWINSZ', 0x541b: 'FIONREAD', 0x5421: 'FIONBIO',
  0x5450: 'FIONCLEX', 0x5451: 'FIOCLEX',
};
const FCNTL_NAMES = ['F_DUPFD', 'F_GETFD', 'F_SETFD', 'F_GETFL', 'F_SETFL', 'F_GETLK', 'F_SETLK', 'F_SETLKW',
  'F_SETOWN', 'F_GETOWN'];
const FCNTL_LINUX: Record<number, string> = { 1030: 'F_DUPFD_CLOEXEC', 1031: 'F_SETPIPE_SZ', 1032: 'F_GETPIPE_SZ', 36: 'F_OFD_GETLK', 37: 'F_OFD_SETLK', 38: 'F_OFD_SETLKW' };
const CLOCK_NAMES = ['CLOCK_REALTIME', 'CLOCK_MONOTONIC', 'CLOCK_PROCESS_CPUTIME_ID', 'CLOCK_THREAD_CPUTIME_ID',
  'CLOCK_MONOTONIC_RAW', 'CLOCK_REALTIME_COARSE', 'CLOCK_MONOTONIC_COARSE', 'CLOCK_BOOTTIME'];
const MAP_FLAG_NAMES: Array<[number, string]> = [[0x10, 'MAP_FIXED'], [0x20, 'MAP_ANONYMOUS'], [0x100, 'MAP_GROWSDOWN'],
  [0x800, 'MAP_DENYWRITE'], [0x1000, 'MAP_EXECUTABLE'], [0x2000, 'MAP_LOCKED'], [0x4000, 'MAP_NORESERVE'],
  [0x8000, 'MAP_POPULATE'], [0x10000, 'MAP_NONBLOCK'], [0x20000, 'MAP_STACK'], [0x40000, 'MAP_HUGETLB'],
  [0x100000, 'MAP_FIXED_NOREPLACE']];
const AT_FLAG_NAMES: Array<[number, string]> = [[0x100, 'AT_SYMLINK_NOFOLLOW'], [0x200, 'AT_REMOVEDIR'],
  [0x400, 'AT_SYMLINK_FOLLOW'], [0x800, 'AT_NO_AUTOMOUNT'], [0x1000, 'AT_EMPTY_PATH']];

/** Joins set flag names with `|`, appending any unnamed remainder in hex. */
function flagList(v: number, names: ReadonlyArray<[number, string]>, base: string[] = []): string {
  const out = [...base];
  let rest = v >>> 0;
  for (const [bit, name] of names) if ((rest & bit) === bit && bit !== 0) { out.push(name); rest &= ~bit >>> 0; }
  if (rest !== 0) out.push('0x' + rest.toString(16));
  return out.length ? out.join('|') : '0';
}

/** A C-style quoted string of at most 32 bytes (strace's default -s 32). */
export function quote(b: Uint8Array, max = 32): string {
  let s = '"';
  for (const ch of b.subarray(0, max)) {
    if (ch === 0x22) s += '\\"';
    else if (ch === 0x5c) s += '\\\\';
    else if (ch === 0x0a) s += '\\n';
    else if (ch === 0x09) s += '\\t';
    else if (ch === 0x0d) s += '\\r';
    else if (ch >= 0x20 && ch < 0x7f) s += String.fromCharCode(ch);
    else s += '\\' + ch.toString(8);
  }
  return s + '"' + (b.length > max ? '...' : '');
}

function arg(c: SysCtx, a: SysArgs, i: number, k: Kind, result: number): string {
  const hex = (): string => '0x' + a.big(i).toString(16);
  switch (k) {
    case 'd': return String(a.n(i));
    case 'u': return String(a.u(i));
    case 'x': return a.big(i) === 0n ? 'NULL' : hex();
    case 'fd': return String(a.i32(i));
    case 'dirfd': return a.i32(i) === AT_FDCWD ? 'AT_FDCWD' : String(a.i32(i));
    case 'path': {
      if (a.u(i) === 0) return 'NULL';
      const s = c.mem.readCString(a.u(i), 4096);
      return s === null ? hex() : JSON.stringify(s);
    }
    case 'wbuf': {
      const b = c.mem.read(a.u(i), Math.min(a.u(i + 1), 33));
      return b ? quote(b) : hex();
    }
    case 'rbuf': {
      if (result <= 0) return hex();
      const b = c.mem.read(a.u(i), Math.min(result, 33));
      return b ? quote(b) : hex();
    }
    case 'oflags': {
      const v = a.i32(i), acc = v & O_ACCMODE;
      return flagList(v & ~O_ACCMODE, OPEN_FLAG_NAMES, [['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'][acc]!]);
    }
    case 'mode': return '0' + (a.u32(i) & 0o7777).toString(8).padStart(3, '0');
    case 'prot': return a.i32(i) === 0 ? 'PROT_NONE' : flagList(a.i32(i), [[1, 'PROT_READ'], [2, 'PROT_WRITE'], [4, 'PROT_EXEC']]);
    case 'mflags': {
      const v = a.i32(i), t = v & 0xf;
      const type = t === 1 ? 'MAP_SHARED' : t === 2 ? 'MAP_PRIVATE' : t === 3 ? 'MAP_SHARED_VALIDATE' : '0x' + t.toString(16);
      return flagList(v & ~0xf, MAP_FLAG_NAMES, [type]);
    }
    case 'atflags': return flagList(a.i32(i), AT_FLAG_NAMES);
    case 'sig': return a.i32(i) === 0 ? '0' : signalName(a.i32(i));
    case 'clock': return CLOCK_NAMES[a.i32(i)] ?? String(a.i32(i));
    case 'whence': return ['SEEK_SET', 'SEEK_CUR', 'SEEK_END', 'SEEK_DATA', 'SEEK_HOLE'][a.i32(i)] ?? String(a.i32(i));
    case 'ioctl': return IOCTL_NAMES[a.u32(i)] ?? '0x' + a.u32(i).toString(16);
    case 'fcntl': return FCNTL_NAMES[a.i32(i)] ?? FCNTL_LINUX[a.i32(i)] ?? String(a.i32(i));
    case 'how': return ['SIG_BLOCK', 'SIG_UNBLOCK', 'SIG_SETMASK'][a.i32(i)] ?? String(a.i32(i));
  }
}

/** Formats one trace line; `result` is the value returned in a0 (undefined: no return). */
export function formatTrace(c: SysCtx, name: string, a: SysArgs, result: number | undefined): string {
  const spec = SPECS[name];
  let args: string[];
  if (spec) {
    args = spec.map((k, i) => arg(c, a, i, k, result ?? -1));
    // openat shows its mode only when it can create (as strace does).
    if (name === 'openat' && !(a.i32(2) & (O_CREAT | O_TMPFILE_BIT))) args.pop();
  } else {
    args = [0, 1, 2, 3, 4, 5].map((i) => '0x' + a.big(i).toString(16));
  }
  let ret: string;
  if (result === undefined) ret = '?';
  else if (result < 0 && result >= -4095) ret = `-1 ${errnoName(-result)}`;
  else if (name === 'mmap' || name === 'brk' || name === 'mremap') ret = '0x' + result.toString(16);
  else ret = String(result);
  return `${name}(${args.join(', ')}) = ${ret}`;
}
