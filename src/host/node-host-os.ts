/**
 * HostOs on Node.js: synchronous node:fs calls, node:tty for terminals,
 * node:crypto for randomness and Atomics.wait for sleeping. Node errors
 * (err.code) become negative Linux errnos; nothing here throws for a
 * condition a guest can cause.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as tty from 'node:tty';
import * as net from 'node:net';
import { randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import type {
  HostOs, HostDirent, HostStatfs, HostRusage, HostSysinfo, HostIdentity, HostUname, StatInfo,
} from '../process/host-os.js';
import {
  E, errnoFromCode, O_ACCMODE, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_APPEND,
  O_NONBLOCK, O_DSYNC, O_DIRECT, O_DIRECTORY, O_NOFOLLOW, O_NOATIME, O_SYNC_BIT,
  DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK,
} from '../process/sys-abi.js';
import { Vfs } from '../process/vfs.js';

/** The Linux errno (negative) for a caught Node error. */
function fail(e: unknown): number {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return -errnoFromCode(typeof code === 'string' ? code : undefined);
}

function toStat(s: fs.BigIntStats): StatInfo {
  return {
    dev: s.dev, ino: s.ino, mode: Number(s.mode), nlink: Number(s.nlink), uid: Number(s.uid),
    gid: Number(s.gid), rdev: s.rdev, size: s.size, blksize: Number(s.blksize), blocks: s.blocks,
    atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs, birthtimeNs: s.birthtimeNs,
  };
}

/** Linux asm-generic O_* -> this host's fs.constants (access mode, creation and status flags). */
function hostOpenFlags(flags: number): number {
  const c = fs.constants;
  const acc = flags & O_ACCMODE;
  let f = acc === O_WRONLY ? c.O_WRONLY : acc === O_RDWR ? c.O_RDWR : c.O_RDONLY;
  const pairs: Array<[number, number | undefined]> = [
    [O_CREAT, c.O_CREAT], [O_EXCL, c.O_EXCL], [O_NOCTTY, c.O_NOCTTY], [O_TRUNC, c.O_TRUNC],
    [O_APPEND, c.O_APPEND], [O_NONBLOCK, c.O_NONBLOCK], [O_DSYNC, c.O_DSYNC], [O_DIRECT, c.O_DIRECT],
    [O_DIRECTORY, c.O_DIRECTORY], [O_NOFOLLOW, c.O_NOFOLLOW], [O_NOATIME, c.O_NOATIME],
    [O_SYNC_BIT, c.O_SYNC],
  ];
  for (const [lin, host] of pairs) if ((flags & lin) !== 0 && host !== undefined) f |= host;
  return f;
}

function direntType(d: fs.Dirent): number {
  if (d.isFile()) return DT_REG;
  if (d.isDirectory()) return DT_DIR;
  if (d.isSymbolicLink()) return DT_LNK;
  if (d.isFIFO()) return DT_FIFO;
  if (d.isCharacterDevice()) return DT_CHR;
  if (d.isBlockDevice()) return DT_BLK;
  if (d.isSocket()) return DT_SOCK;
  return DT_UNKNOWN;
}

/** Seconds (as Node's utimes wants them) from ns; null keeps `cur`. */
function secs(ns: bigint | null, curNs: bigint): number {
  return Number(ns ?? curNs) / 1e9;
}

/** Delay between retries of a read/write that reported EAGAIN on a blocking guest fd. */
const EAGAIN_RETRY_NS = 5_000_000;

/** The part of node:wasi's import object used to seek the process's stdio fds. */
interface WasiSeek { fd_seek(fd: number, offset: bigint, whence: number, resultPtr: number): number }

/**
 * A minimal WebAssembly module exporting a 1-page memory and an empty
 * `_initialize`, so node:wasi has memory to write fd_seek's result into.
 * (WebAssembly core spec §5.5: type, function, memory, export, code sections.)
 */
const WASI_SHIM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, // magic, version
  1, 4, 1, 0x60, 0, 0, // type section: () -> ()
  3, 2, 1, 0, // function section: one function of type 0
  5, 3, 1, 0, 1, // memory section: min 1 page
  7, 24, 2, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0, // export "memory"
  11, 0x5f, 0x69, 0x6e, 0x69, 0x74, 0x69, 0x61, 0x6c, 0x69, 0x7a, 0x65, 0, 0, // export "_initialize"
  10, 4, 1, 2, 0, 0x0b, // code section: empty body
]);

/** The Node.js implementation of HostOs. */
export class NodeHostOs implements HostOs {
  private readonly sleepCell = new Int32Array(new SharedArrayBuffer(4));
  private readonly ttyOut = new Map<number, tty.WriteStream>();
  private readonly ttyIn = new Map<number, tty.ReadStream>();
  /** Non-blocking twins of host fds for readNonBlocking (-1: cannot have one). */
  private readonly twins = new Map<number, number>();
  /** node:wasi's fd_seek and its memory, set up on first use (null: unavailable). */
  private wasi: { seek: WasiSeek; mem: WebAssembly.Memory } | null | undefined;
  /** Offset making hrtime (monotonic) into ns since the epoch. */
  private readonly realBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

  open(path: string, flags: number, mode: number): number {
    try { return fs.openSync(path, hostOpenFlags(flags), mode); } catch (e) { return fail(e); }
  }

  close(fd: number): number {
    const twin = this.twins.get(fd);
    if (twin !== undefined) {
      this.twins.delete(fd);
      if (twin >= 0 && twin !== fd) try { fs.closeSync(twin); } catch { /* already gone */ }
    }
    try { fs.closeSync(fd); return 0; } catch (e) { return fail(e); }
  }

  /**
   * Lets readNonBlocking read socket `fd` (what Node's spawn gives a child as
   * a 'pipe'), which has no twin: the socket itself is switched to
   * O_NONBLOCK (as fd-reader.ts does, by a net.Socket that never reads).
   * Only for a socket no other process reads, and a VM that never blocks in
   * it (one with a Kernel.poller: a controlled container, runtime-control.ts).
   */
  readSocketNonBlocking(fd: number): void {
    try { if (!fs.fstatSync(fd).isSocket()) return; } catch { return; }
    new net.Socket({ fd, readable: false, writable: false }).unref();
    this.twins.set(fd, fd);
  }

  /**
   * Reads without blocking through a "twin": the same terminal or pipe
   * opened again via /proc/self/fd/N with O_NONBLOCK. That is a separate
   * open file description, so the O_NONBLOCK never reaches the description
   * the VM shares with its parent (e.g. the user's shell's terminal).
   * Without /proc (or for sockets, which cannot be reopened) the answer is
   * -ENOSYS.
   */
  readNonBlocking(fd: number, buf: Uint8Array): number {
    let twin = this.twins.get(fd);
    if (twin === undefined) {
      const c = fs.constants;
      try { twin = fs.openSync(`/proc/self/fd/${fd}`, c.O_RDONLY | c.O_NONBLOCK | c.O_NOCTTY); } catch { twin = -1; }
      this.twins.set(fd, twin);
    }
    if (twin < 0) return -E.ENOSYS;
    try {
      return fs.readSync(twin, buf, 0, buf.length, null);
    } catch (e) {
      const r = fail(e);
      return r === -E.EINTR ? -E.EAGAIN : r;
    }
  }

  read(fd: number, buf: Uint8Array, position: number | null, nonBlocking = false): number {
    for (;;) {
      try {
        return fs.readSync(fd, buf, 0, buf.length, position);
      } catch (e) {
        const r = fail(e);
        if (r === -E.EINTR) continue;
        if (r === -E.EAGAIN && !nonBlocking) { this.sleepNs(EAGAIN_RETRY_NS); continue; }
        return r;
      }
    }
  }

  write(fd: number, buf: Uint8Array, position: number | null): number {
    for (;;) {
      try {
        return fs.writeSync(fd, buf, 0, buf.length, position);
      } catch (e) {
        const r = fail(e);
        if (r === -E.EINTR) continue;
        if (r === -E.EAGAIN) { this.sleepNs(EAGAIN_RETRY_NS); continue; }
        return r;
      }
    }
  }

  /**
   * Node has no lseek, but node:wasi's fd_seek (uvwasi) calls the host's
   * lseek on the stdio fds it wraps, which moves the offset the guest
   * shares with its parent shell (as `(head -n1; cat) < file` needs).
   */
  lseek(fd: number, offset: number, whence: number): number {
    if (fd < 0 || fd > 2) return -E.ENOSYS;
    const w = this.wasiSeek();
    if (!w) return -E.ENOSYS;
    const r = w.seek.fd_seek(fd, BigInt(offset), whence, 0);
    // WASI errno values differ from Linux; only a few can occur here (wasi_snapshot_preview1 "errno").
    if (r === 70) return -E.ESPIPE;
    if (r === 28) return -E.EINVAL;
    if (r !== 0) return -E.ENOSYS;
    return Number(new DataView(w.mem.buffer).getBigUint64(0, true));
  }

  private wasiSeek(): { seek: WasiSeek; mem: WebAssembly.Memory } | null {
    if (this.wasi !== undefined) return this.wasi;
    this.wasi = null;
    const emit = process.emitWarning;
    try {
      process.emitWarning = (): void => {}; // node:wasi is "experimental": keep the guest's stderr clean
      const { WASI } = createRequire(import.meta.url)('node:wasi') as typeof import('node:wasi');
      const wasi = new WASI({ version: 'preview1', returnOnExit: true });
      const inst = new WebAssembly.Instance(new WebAssembly.Module(WASI_SHIM), { wasi_snapshot_preview1: wasi.wasiImport });
      wasi.initialize(inst);
      this.wasi = { seek: wasi.wasiImport as unknown as WasiSeek, mem: inst.exports['memory'] as WebAssembly.Memory };
    } catch {
      this.wasi = null;
    } finally {
      process.emitWarning = emit;
    }
    return this.wasi;
  }

  stat(path: string): StatInfo | number {
    try { return toStat(fs.statSync(path, { bigint: true })); } catch (e) { return fail(e); }
  }

  lstat(path: string): StatInfo | number {
    try { return toStat(fs.lstatSync(path, { bigint: true })); } catch (e) { return fail(e); }
  }

  fstat(fd: number): StatInfo | number {
    try { return toStat(fs.fstatSync(fd, { bigint: true })); } catch (e) { return fail(e); }
  }

  readdir(path: string): HostDirent[] | number {
    let dir: fs.Dir;
    try { dir = fs.opendirSync(path); } catch (e) { return fail(e); }
    const out: HostDirent[] = [];
    try {
      for (let d = dir.readSync(); d !== null; d = dir.readSync()) {
        let ino = 0n;
        try { ino = fs.lstatSync(`${path}/${d.name}`, { bigint: true }).ino; } catch { /* raced away */ }
        out.push({ name: d.name, ino, type: direntType(d) });
      }
    } catch (e) {
      return fail(e);
    } finally {
      try { dir.closeSync(); } catch { /* already closed */ }
    }
    return out;
  }

  readlink(path: string): string | number {
    try { return fs.readlinkSync(path); } catch (e) { return fail(e); }
  }

  realpath(path: string): string | number {
    try { return fs.realpathSync.native(path); } catch (e) { return fail(e); }
  }

  access(path: string, mode: number): number {
    try { fs.accessSync(path, mode); return 0; } catch (e) { return fail(e); }
  }

  mkdir(path: string, mode: number): number {
    try { fs.mkdirSync(path, { mode }); return 0; } catch (e) { return fail(e); }
  }

  unlink(path: string): number {
    try { fs.unlinkSync(path); return 0; } catch (e) { return fail(e); }
  }

  rmdir(path: string): number {
    try { fs.rmdirSync(path); return 0; } catch (e) { return fail(e); }
  }

  rename(from: string, to: string): number {
    try { fs.renameSync(from, to); return 0; } catch (e) { return fail(e); }
  }

  symlink(target: string, path: string): number {
    try { fs.symlinkSync(target, path); return 0; } catch (e) { return fail(e); }
  }

  link(existing: string, path: string): number {
    try { fs.linkSync(existing, path); return 0; } catch (e) { return fail(e); }
  }

  chmod(path: string, mode: number): number {
    try { fs.chmodSync(path, mode); return 0; } catch (e) { return fail(e); }
  }

  fchmod(fd: number, mode: number): number {
    try { fs.fchmodSync(fd, mode); return 0; } catch (e) { return fail(e); }
  }

  chown(path: string, uid: number, gid: number, noFollow: boolean): number {
    try {
      if (noFollow) fs.lchownSync(path, uid, gid); else fs.chownSync(path, uid, gid);
      return 0;
    } catch (e) { return fail(e); }
  }

  fchown(fd: number, uid: number, gid: number): number {
    try { fs.fchownSync(fd, uid, gid); return 0; } catch (e) { return fail(e); }
  }

  utimes(path: string, atimeNs: bigint | null, mtimeNs: bigint | null, noFollow: boolean): number {
    try {
      const cur = noFollow ? fs.lstatSync(path, { bigint: true }) : fs.statSync(path, { bigint: true });
      const a = secs(atimeNs, cur.atimeNs), m = secs(mtimeNs, cur.mtimeNs);
      if (noFollow) fs.lutimesSync(path, a, m); else fs.utimesSync(path, a, m);
      return 0;
    } catch (e) { return fail(e); }
  }

  futimes(fd: number, atimeNs: bigint | null, mtimeNs: bigint | null): number {
    try {
      const cur = fs.fstatSync(fd, { bigint: true });
      fs.futimesSync(fd, secs(atimeNs, cur.atimeNs), secs(mtimeNs, cur.mtimeNs));
      return 0;
    } catch (e) { return fail(e); }
  }

  truncate(path: string, len: number): number {
    try { fs.truncateSync(path, len); return 0; } catch (e) { return fail(e); }
  }

  ftruncate(fd: number, len: number): number {
    try { fs.ftruncateSync(fd, len); return 0; } catch (e) { return fail(e); }
  }

  fsync(fd: number): number {
    try { fs.fsyncSync(fd); return 0; } catch (e) { return fail(e); }
  }

  fdatasync(fd: number): number {
    try { fs.fdatasyncSync(fd); return 0; } catch (e) { return fail(e); }
  }

  statfs(path: string): HostStatfs | number {
    try {
      const s = fs.statfsSync(path, { bigint: true });
      return { type: s.type, bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
    } catch (e) { return fail(e); }
  }

  isatty(fd: number): boolean {
    try { return tty.isatty(fd); } catch { return false; }
  }

  terminalSize(fd: number): { rows: number; cols: number } | null {
    if (!this.isatty(fd)) return null;
    try {
      let ws = this.ttyOut.get(fd);
      if (!ws) { ws = new tty.WriteStream(fd); this.ttyOut.set(fd, ws); }
      const [cols, rows] = ws.getWindowSize();
      return { rows, cols };
    } catch {
      return null;
    }
  }

  setRawMode(fd: number, raw: boolean): boolean {
    if (!this.isatty(fd)) return false;
    try {
      let rs = this.ttyIn.get(fd);
      if (!rs) { rs = new tty.ReadStream(fd); this.ttyIn.set(fd, rs); }
      rs.setRawMode(raw);
      return true;
    } catch {
      return false;
    }
  }

  realtimeNs(): bigint { return this.realBase + process.hrtime.bigint(); }

  monotonicNs(): bigint { return process.hrtime.bigint(); }

  cpuTimeNs(): bigint {
    const u = process.cpuUsage();
    return BigInt(u.user + u.system) * 1000n;
  }

  randomFill(buf: Uint8Array): void {
    for (let off = 0; off < buf.length; off += 65536) randomFillSync(buf.subarray(off, Math.min(buf.length, off + 65536)));
  }

  sleepNs(ns: number): void {
    if (ns <= 0) return;
    Atomics.wait(this.sleepCell, 0, 0, ns / 1e6);
  }

  umask(mask: number): number {
    try { return process.umask(mask); } catch { return 0o022; }
  }

  cwd(): string { return process.cwd(); }

  /** The guest's starting working directory for a given --root (see Vfs.initialCwd). */
  initialGuestCwd(root: string | undefined): string { return Vfs.initialCwd(this, root); }

  identity(): HostIdentity {
    const p = process;
    return {
      uid: p.getuid?.() ?? 0, gid: p.getgid?.() ?? 0, euid: p.geteuid?.() ?? 0, egid: p.getegid?.() ?? 0,
      groups: this.supplementaryGroups(), ppid: p.ppid,
    };
  }

  /**
   * The supplementary groups exactly as getgroups(2) reports them. Node's
   * process.getgroups() always adds the egid, so on Linux the list is read
   * from /proc/self/status instead.
   */
  private supplementaryGroups(): number[] {
    try {
      const m = /^Groups:[ \t]*(.*)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
      if (m) return m[1]!.trim().split(/\s+/).filter((s) => s !== '').map(Number);
    } catch { /* not Linux */ }
    return process.getgroups?.() ?? [];
  }

  rlimits(): Array<[bigint, bigint]> | null {
    let text: string;
    try { text = fs.readFileSync('/proc/self/limits', 'utf8'); } catch { return null; }
    // Rows follow RLIMIT_* order (fs/proc/base.c lnames[]); the name column is 26 characters wide.
    const rows = text.split('\n').slice(1).filter((l) => l.length > 26);
    const val = (v: string): bigint => (v === 'unlimited' ? 0xffff_ffff_ffff_ffffn : BigInt(v));
    const out: Array<[bigint, bigint]> = [];
    for (const row of rows) {
      const m = /^(\S+|unlimited)\s+(\S+)/.exec(row.slice(26));
      if (!m || !/^(\d+|unlimited)$/.test(m[1]!) || !/^(\d+|unlimited)$/.test(m[2]!)) return null;
      out.push([val(m[1]!), val(m[2]!)]);
    }
    return out.length === 16 ? out : null;
  }

  cpuCount(): number { return os.availableParallelism(); }

  uname(): HostUname {
    return { nodename: os.hostname(), release: os.release(), version: os.version() };
  }

  sysinfo(): HostSysinfo {
    const l = os.loadavg();
    const info: HostSysinfo = {
      uptimeSec: Math.floor(os.uptime()), loads: [l[0] ?? 0, l[1] ?? 0, l[2] ?? 0], totalRam: os.totalmem(),
      freeRam: os.freemem(), sharedRam: 0, bufferRam: 0, totalSwap: 0, freeSwap: 0, procs: 1,
    };
    // On Linux, take the exact sysinfo(2) sources: /proc/meminfo (kB) and /proc/loadavg's thread count.
    try {
      const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
      const kb = (name: string): number | null => {
        const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(meminfo);
        return m ? Number(m[1]) * 1024 : null;
      };
      info.totalRam = kb('MemTotal') ?? info.totalRam;
      info.freeRam = kb('MemFree') ?? info.freeRam;
      info.sharedRam = kb('Shmem') ?? 0;
      info.bufferRam = kb('Buffers') ?? 0;
      info.totalSwap = kb('SwapTotal') ?? 0;
      info.freeSwap = kb('SwapFree') ?? 0;
      const m = /^\S+ \S+ \S+ \d+\/(\d+)/.exec(fs.readFileSync('/proc/loadavg', 'utf8'));
      if (m) info.procs = Number(m[1]);
    } catch { /* not Linux: keep the portable values */ }
    return info;
  }

  rusage(): HostRusage {
    const r = process.resourceUsage();
    return {
      utimeUs: r.userCPUTime, stimeUs: r.systemCPUTime, maxRssKb: r.maxRSS, minflt: r.minorPageFault,
      majflt: r.majorPageFault, inblock: r.fsRead, oublock: r.fsWrite, nvcsw: r.voluntaryContextSwitches,
      nivcsw: r.involuntaryContextSwitches,
    };
  }
}
