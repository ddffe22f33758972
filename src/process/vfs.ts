/**
 * Guest path resolution.
 *
 * Without a root, guest paths are host paths: relative ones are joined to
 * the guest's working directory (tracked here, the host process's own cwd
 * never changes) and the host kernel resolves the rest.
 *
 * With a root (`tsvm exec --root DIR`) the guest sees DIR as `/`. Paths
 * are resolved here component by component: symlinks are read and followed
 * by this code (absolute targets restart at DIR, relative ones continue in
 * the link's directory), `..` stops at DIR, and at most MAX_LINK_HOPS links
 * are followed (then ELOOP). The host path handed to the host therefore
 * never contains a symlink the host could follow out of DIR, except a final
 * component that an operation deliberately does not follow.
 *
 * Some paths are virtual in both modes: /proc/self (and /proc/<pid>) with
 * exe, cwd, maps, fd/ and fd/N; with a root also /dev/null, /dev/zero,
 * /dev/full, /dev/random and /dev/urandom (whether or not DIR has them).
 * /dev/tty goes to the host's terminal, or with an emulated terminal
 * (sys-tty.ts) to it, as does /dev/pts/0.
 */
import type { HostOs, StatInfo } from './host-os.js';
import { E, S_IFMT, S_IFDIR, S_IFLNK, S_IFCHR, S_IFREG, makeDev } from './sys-abi.js';
import { PROC_PID_FILES, type ProcPidFile } from './proc-pids.js';

/** Maximum symlinks followed in one lookup (include/linux/namei.h MAXSYMLINKS). */
export const MAX_LINK_HOPS = 40;
/** Longest path accepted (include/uapi/linux/limits.h PATH_MAX). */
export const PATH_MAX = 4096;

/** Emulated character devices. */
export type DevName = 'null' | 'zero' | 'full' | 'random' | 'urandom';

/** A node that exists only inside the VM. */
export type VirtualNode =
  | { t: 'link'; name: 'exe' | 'cwd' | 'dev'; target: string } // a symlink to a guest path
  | { t: 'fd'; fd: number } // /proc/self/fd/N: a symlink to an open file
  | { t: 'dir'; name: 'self' | 'fd' | 'proc' | 'dev' | 'pid' | 'pts'; entries: string[] }
  | { t: 'file'; name: 'maps' | 'mounts' | ProcPidFile; content: () => Uint8Array }
  | { t: 'dev'; dev: DevName }
  | { t: 'pty'; name: 'tty' | 'pts'; n?: number }; // an emulated terminal: /dev/tty and /dev/pts/N (sys-tty.ts)

/** The outcome of resolving a guest path. */
export type Resolved =
  | { kind: 'host'; host: string; guest: string }
  | { kind: 'virtual'; node: VirtualNode; guest: string };

/** What the VFS needs to know about the process. */
export interface VfsHooks {
  /** The guest's pid (for /proc/<pid>). */
  pid(): number;
  /** The executable's guest path. */
  exePath(): string;
  /** /proc/self/maps text. */
  maps(): string;
  /** /proc/self/stat text (absent: no such file). */
  stat?(): string;
  /** Open guest fds. */
  fds(): number[];
  /** The process's uid/gid, reported as the owner of /proc/self entries. */
  identity?(): { uid: number; gid: number };
  /** In a container's PID namespace, the pids its /proc lists (then /proc is wholly virtual); null outside one. */
  pids?(): number[] | null;
  /** In a container's PID namespace, the text of /proc/<pid>/<name> (proc-pids.ts); null if none. */
  procFile?(pid: number, name: ProcPidFile): string | null;
  /** True in a container: /dev also has the stdin, stdout, stderr and fd links (Docker's /dev). */
  container?(): boolean;
  /** The numbers of the VM's emulated terminals (/dev/pts/N, sys-tty.ts); empty: /dev/tty is the host's. */
  pty?(): number[];
  /** In a container, the text of /proc/self/mounts (and /proc/mounts); null or absent: no such file. */
  mounts?(): string | null;
}

/** A container's /dev links (Docker's default /dev, as udev makes them on a host). */
const DEV_LINKS: Record<string, string> = {
  stdin: '/proc/self/fd/0', stdout: '/proc/self/fd/1', stderr: '/proc/self/fd/2', fd: '/proc/self/fd',
};

const DEVICES: Record<DevName, [number, number]> = {
  // Device numbers (Documentation/admin-guide/devices.txt, major 1 "Memory devices").
  null: [1, 3], zero: [1, 5], full: [1, 7], random: [1, 8], urandom: [1, 9],
};

/** Splits a path into components, dropping empty ones and ".". */
function parts(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/** Lexically normalises `path` against the absolute guest directory `base`. */
export function lexicalJoin(base: string, path: string): string {
  const stack = path.startsWith('/') ? [] : parts(base);
  for (const c of parts(path)) {
    if (c === '..') stack.pop(); else stack.push(c);
  }
  return '/' + stack.join('/');
}

/** Guest path resolution and working directory. */
export class Vfs {
  /** The host directory the guest sees as `/` (no trailing slash), or undefined. */
  readonly root: string | undefined;
  /** The guest's current directory, as a guest path. */
  cwd: string;

  /** A VFS for `root`; with `from`, a copy of that one's root and working directory (fork). */
  constructor(private readonly host: HostOs, root: string | undefined, private readonly hooks: VfsHooks, from?: Vfs) {
    this.root = from ? from.root : Vfs.canonicalRoot(host, root);
    this.cwd = from ? from.cwd : Vfs.initialCwd(host, root);
  }

  /** The root as the VFS keeps it: a real path without a trailing slash. */
  private static canonicalRoot(host: HostOs, root: string | undefined): string | undefined {
    if (root === undefined) return undefined;
    const r = host.realpath(root);
    return (typeof r === 'string' ? r : root).replace(/\/+$/, '');
  }

  /**
   * The guest's starting directory: the host cwd without a root; with one,
   * the host cwd seen from inside the root when it lies there, else "/".
   */
  static initialCwd(host: HostOs, rootDir: string | undefined): string {
    const root = Vfs.canonicalRoot(host, rootDir);
    if (root === undefined) return host.cwd();
    const hc = host.realpath(host.cwd());
    if (typeof hc === 'string' && (hc === root || hc.startsWith(root + '/') || root === '')) {
      return hc.slice(root.length) || '/';
    }
    return '/';
  }

  /** The host path of a canonical guest path (root mode) or the path itself. */
  hostPath(guest: string): string {
    if (this.root === undefined) return guest;
    return guest === '/' ? (this.root || '/') : this.root + guest;
  }

  /**
   * Resolves `path` relative to the guest directory `base`. `follow`
   * says whether a symlink in the last component is followed. Returns the
   * host path (or virtual node) and the canonical guest path, or -errno.
   */
  resolve(base: string, path: string, follow: boolean): Resolved | number {
    return this.resolveHops(base, path, follow, { n: 0 });
  }

  private resolveHops(base: string, path: string, follow: boolean, hops: { n: number }): Resolved | number {
    if (path === '') return -E.ENOENT;
    if (path.length >= PATH_MAX) return -E.ENAMETOOLONG;
    const lex = lexicalJoin(base, path);
    const v = this.virtual(lex, follow, hops);
    if (v !== null) return v;
    if (this.root === undefined) {
      const host = path.startsWith('/') ? path : (base === '/' ? '/' : base + '/') + path;
      return { kind: 'host', host, guest: lex };
    }
    return this.walk(base, path, follow, hops);
  }

  /** Virtual nodes under /proc/self and (with a root) /dev; null if `lex` is not one. */
  private virtual(lex: string, follow: boolean, hops: { n: number }): Resolved | number | null {
    const mt = this.hooks.mounts?.() ?? null;
    // /proc/mounts is a link to self/mounts (fs/proc/root.c); shown here as the same file.
    if (mt !== null && (lex === '/proc/mounts' || /^\/proc\/(self|thread-self)\/mounts$/.test(lex) || lex === `/proc/${this.hooks.pid()}/mounts`)) {
      return { kind: 'virtual', node: { t: 'file', name: 'mounts', content: () => new TextEncoder().encode(this.hooks.mounts?.() ?? '') }, guest: lex };
    }
    const ns = this.namespaceProc(lex);
    if (ns !== null) return ns;
    const ptys = this.hooks.pty?.() ?? [];
    if (ptys.length > 0 && (lex === '/dev/tty' || lex === '/dev/pts' || lex.startsWith('/dev/pts/'))) {
      if (lex === '/dev/pts') return { kind: 'virtual', node: { t: 'dir', name: 'pts', entries: ptys.map(String) }, guest: lex };
      if (lex === '/dev/tty') return { kind: 'virtual', node: { t: 'pty', name: 'tty' }, guest: lex };
      const n = /^\/dev\/pts\/(\d+)$/.exec(lex);
      if (n === null || !ptys.includes(Number(n[1]))) return -E.ENOENT;
      return { kind: 'virtual', node: { t: 'pty', name: 'pts', n: Number(n[1]) }, guest: lex };
    }
    if (this.root !== undefined || lex === '/dev/tty') {
      if (lex === '/dev/tty') return { kind: 'host', host: '/dev/tty', guest: lex };
      const m = /^\/dev\/(null|zero|full|random|urandom)$/.exec(lex);
      if (m) return { kind: 'virtual', node: { t: 'dev', dev: m[1] as DevName }, guest: lex };
      const dl = /^\/dev\/(stdin|stdout|stderr|fd)(\/.*)?$/.exec(lex);
      if (dl && this.hooks.container?.() === true) {
        const target = DEV_LINKS[dl[1]!]! + (dl[2] ?? '');
        if (!follow && dl[2] === undefined) return { kind: 'virtual', node: { t: 'link', name: 'dev', target }, guest: lex };
        if (++hops.n > MAX_LINK_HOPS) return -E.ELOOP;
        return this.resolveHops('/', target, follow, hops);
      }
      // With a root that lacks /dev or /proc, list the emulated entries there.
      if ((lex === '/dev' || lex === '/proc') && typeof this.host.lstat(this.hostPath(lex)) === 'number') {
        const entries = lex === '/dev' ? ['full', 'null', 'random', 'tty', 'urandom', 'zero'] : [String(this.hooks.pid()), 'self'];
        if (lex === '/dev' && this.hooks.container?.() === true) entries.push(...Object.keys(DEV_LINKS));
        if (lex === '/dev' && ptys.length > 0) entries.push('pts');
        return { kind: 'virtual', node: { t: 'dir', name: lex === '/dev' ? 'dev' : 'proc', entries }, guest: lex };
      }
    }
    const m = /^\/proc\/(self|thread-self|\d+)(\/.*)?$/.exec(lex);
    if (!m || (m[1] !== 'self' && m[1] !== 'thread-self' && Number(m[1]) !== this.hooks.pid())) return null;
    const rest = m[2] ?? '';
    const guest = lex;
    const own = this.procFileNode(this.hooks.pid(), rest.slice(1), guest); // a container's (proc-pids.ts)
    if (own !== null) return own;
    if (rest === '') return { kind: 'virtual', node: { t: 'dir', name: 'self', entries: ['cwd', 'exe', 'fd', 'maps', 'stat', ...(mt !== null ? ['mounts'] : [])] }, guest };
    if (rest === '/exe' || rest === '/cwd') {
      const target = rest === '/exe' ? this.hooks.exePath() : this.cwd;
      if (!follow) return { kind: 'virtual', node: { t: 'link', name: rest === '/exe' ? 'exe' : 'cwd', target }, guest };
      if (++hops.n > MAX_LINK_HOPS) return -E.ELOOP;
      return this.resolveHops('/', target, true, hops);
    }
    if (rest === '/maps') {
      return { kind: 'virtual', node: { t: 'file', name: 'maps', content: () => new TextEncoder().encode(this.hooks.maps()) }, guest };
    }
    const stat = this.hooks.stat;
    if (rest === '/stat' && stat) {
      return { kind: 'virtual', node: { t: 'file', name: 'stat', content: () => new TextEncoder().encode(stat()) }, guest };
    }
    if (rest === '/fd') {
      return { kind: 'virtual', node: { t: 'dir', name: 'fd', entries: this.hooks.fds().map(String) }, guest };
    }
    const fm = /^\/fd\/(\d+)$/.exec(rest);
    if (fm) {
      const fd = Number(fm[1]);
      if (!this.hooks.fds().includes(fd)) return -E.ENOENT;
      return { kind: 'virtual', node: { t: 'fd', fd }, guest };
    }
    // Other /proc/self entries: the host's own under no root, absent under a root.
    return this.root === undefined ? null : -E.ENOENT;
  }

  /**
   * A container's /proc (PID namespace): /proc lists its processes, and
   * /proc/<pid> of another of them has PROC_PID_FILES; null outside a
   * namespace or for the caller's own /proc/<pid> (handled as /proc/self).
   */
  private namespaceProc(lex: string): Resolved | number | null {
    const pids = this.hooks.pids?.() ?? null;
    if (pids === null || !lex.startsWith('/proc')) return null;
    if (lex === '/proc') return { kind: 'virtual', node: { t: 'dir', name: 'proc', entries: [...pids.map(String), 'self'] }, guest: lex };
    const m = /^\/proc\/(\d+)(\/.*)?$/.exec(lex);
    if (m === null) return /^\/proc\/(self|thread-self)(\/.*)?$/.test(lex) ? null : -E.ENOENT;
    const pid = Number(m[1]);
    if (pid === this.hooks.pid()) return null;
    if (!pids.includes(pid)) return -E.ENOENT;
    const rest = m[2] ?? '';
    if (rest === '') return { kind: 'virtual', node: { t: 'dir', name: 'pid', entries: [...PROC_PID_FILES] }, guest: lex };
    return this.procFileNode(pid, rest.slice(1), lex) ?? -E.ENOENT;
  }

  /** /proc/<pid>/<name> as a virtual file, if the hooks supply it. */
  private procFileNode(pid: number, name: string, guest: string): Resolved | null {
    if (!(PROC_PID_FILES as readonly string[]).includes(name) || this.hooks.procFile?.(pid, name as ProcPidFile) == null) return null;
    const f = name as ProcPidFile, read = this.hooks.procFile.bind(this.hooks);
    return { kind: 'virtual', node: { t: 'file', name: f, content: () => new TextEncoder().encode(read(pid, f) ?? '') }, guest };
  }

  /** Component-by-component lookup inside the root. */
  private walk(base: string, path: string, follow: boolean, hops: { n: number }): Resolved | number {
    const root = this.root!;
    const mustDir = /(^|\/)\.?$/.test(path) && path !== '';
    let stack = path.startsWith('/') ? [] : parts(base);
    const queue = parts(path);
    while (queue.length > 0) {
      const c = queue.shift()!;
      if (c === '..') { stack.pop(); continue; }
      if (c.length > 255) return -E.ENAMETOOLONG; // NAME_MAX (include/uapi/linux/limits.h)
      const isLast = queue.length === 0;
      if (isLast && !follow && !mustDir) { stack.push(c); break; }
      const hp = root + '/' + [...stack, c].join('/');
      const st = this.host.lstat(hp);
      if (typeof st === 'number') {
        if (isLast && st === -E.ENOENT) { stack.push(c); break; }
        return st;
      }
      const fmt = st.mode & S_IFMT;
      if (fmt === S_IFLNK) {
        if (++hops.n > MAX_LINK_HOPS) return -E.ELOOP;
        const t = this.host.readlink(hp);
        if (typeof t === 'number') return t;
        if (t === '') return -E.ENOENT;
        if (t.startsWith('/')) {
          // An absolute target may itself be virtual (e.g. a link to /dev/null).
          const lex = lexicalJoin('/', t + (queue.length ? '/' + queue.join('/') : ''));
          const v = this.virtual(lex, follow || queue.length > 0, hops);
          if (v !== null) return v;
          stack = [];
        }
        queue.unshift(...parts(t));
        continue;
      }
      if ((!isLast || mustDir) && fmt !== S_IFDIR) return -E.ENOTDIR;
      stack.push(c);
    }
    const guest = '/' + stack.join('/');
    return { kind: 'host', host: this.hostPath(guest) + (mustDir && guest !== '/' ? '/' : ''), guest };
  }

  /** Sets the working directory from a resolved directory path (checked by the caller). */
  setCwd(r: Resolved): void {
    if (r.kind === 'virtual' || this.root !== undefined) { this.cwd = r.guest; return; }
    const real = this.host.realpath(r.host);
    this.cwd = typeof real === 'string' ? real : r.guest;
  }

  /** Synthesised metadata of a virtual node (fd links report the link itself). */
  virtualStat(node: VirtualNode): StatInfo {
    const now = this.host.realtimeNs();
    const st: StatInfo = {
      dev: makeDev(0, 0x16), ino: 1n, mode: S_IFREG | 0o444, nlink: 1, uid: 0, gid: 0, rdev: 0n, size: 0n,
      blksize: 1024, blocks: 0n, atimeNs: now, mtimeNs: now, ctimeNs: now, birthtimeNs: 0n,
    };
    const id = this.hooks.identity?.();
    if (id) { st.uid = id.uid; st.gid = id.gid; }
    switch (node.t) {
      case 'link': st.mode = S_IFLNK | 0o777; st.size = BigInt(new TextEncoder().encode(node.target).length); st.ino = node.name === 'exe' ? 3n : 4n; break;
      case 'fd': st.mode = S_IFLNK | 0o700; st.size = 64n; st.ino = BigInt(1000 + node.fd); break;
      case 'dir': {
        st.mode = S_IFDIR | (node.name === 'fd' ? 0o500 : 0o555); st.nlink = 2;
        st.ino = BigInt(['self', 'fd', 'proc', 'dev', 'pid', 'pts'].indexOf(node.name) + 10);
        if (node.name === 'dev') st.mode = S_IFDIR | 0o755;
        break;
      }
      case 'file': st.ino = 6n; break;
      case 'dev': {
        const [ma, mi] = DEVICES[node.dev];
        st.mode = S_IFCHR | 0o666; st.rdev = makeDev(ma, mi); st.dev = makeDev(0, 5); st.ino = BigInt(mi);
        st.blksize = 4096; st.uid = 0; st.gid = 0;
        break;
      }
      case 'pty': {
        // /dev/tty is char 5:0 (devtmpfs); /dev/pts/N is char 136:N on devpts (inode N+3), the user's, group tty (5), mode 0620.
        const tty = node.name === 'tty', n = node.n ?? 0;
        st.mode = S_IFCHR | (tty ? 0o666 : 0o620); st.rdev = tty ? makeDev(5, 0) : makeDev(136, n);
        st.dev = tty ? makeDev(0, 5) : makeDev(0, 0x18); st.ino = tty ? 11n : BigInt(n + 3); st.blksize = 1024;
        if (tty) st.uid = 0;
        st.gid = tty ? 0 : 5;
        break;
      }
    }
    return st;
  }
}

/**
 * Resolves a guest path to a host path outside any process (the loader
 * finding the program and its interpreter), following symlinks; null if it
 * does not resolve to a host file.
 */
export function resolveGuestPath(host: HostOs, root: string | undefined, cwd: string, path: string): string | null {
  const vfs = new Vfs(host, root, { pid: () => -1, exePath: () => '', maps: () => '', fds: () => [] });
  vfs.cwd = cwd;
  const r = vfs.resolve(cwd, path, true);
  return typeof r === 'number' || r.kind !== 'host' ? null : r.host;
}
