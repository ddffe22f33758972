/**
 * HostOs on Node.js: synchronous node:fs calls, node:tty for terminals,
 * node:crypto for randomness and Atomics.wait for sleeping. Node errors
 * (err.code) become negative Linux errnos; nothing here throws for a
 * condition a guest can cause.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as tty from 'node:tty';
import { randomFillSync } from 'node:crypto';
import type {
  HostOs, HostDirent, HostStatfs, HostRusage, HostSysinfo, HostIdentity, HostUname, StatInfo,
} from '../process/host-os.js';
import {
  E, errnoFromCode, O_ACCMODE, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_APPEND,
  O_NONBLOCK, O_DSYNC, O_DIRECT, O_DIRECTORY, O_NOFOLLOW, O_NOATIME, O_SYNC_BIT,
  DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK,
} from '../process/sys-abi.js';

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

/** The Node.js implementation of HostOs. */
export class NodeHostOs implements HostOs {
  private readonly sleepCell = new Int32Array(new SharedArrayBuffer(4));
  private readonly ttyOut = new Map<number, tty.WriteStream>();
  private readonly ttyIn = new Map<number, tty.ReadStream>();
  /** Offset making hrtime (monotonic) into ns since the epoch. */
  private readonly realBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

  open(path: string, flags: number, mode: number): number {
    try { return fs.openSync(path, hostOpenFlags(flags), mode); } catch (e) { return fail(e); }
  }

  close(fd: number): number {
    try { fs.closeSync(fd); return 0; } catch (e) { return fail(e); }
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

  cwd(): string { return process.cwd(); }

  identity(): HostIdentity {
    const p = process;
    return {
      uid: p.getuid?.() ?? 0, gid: p.getgid?.() ?? 0, euid: p.geteuid?.() ?? 0, egid: p.getegid?.() ?? 0,
      groups: p.getgroups?.() ?? [], ppid: p.ppid,
    };
  }

  uname(): HostUname {
    return { nodename: os.hostname(), release: os.release(), version: os.version() };
  }

  sysinfo(): HostSysinfo {
    const l = os.loadavg();
    return { uptimeSec: Math.floor(os.uptime()), loads: [l[0] ?? 0, l[1] ?? 0, l[2] ?? 0], totalRam: os.totalmem(), freeRam: os.freemem() };
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
