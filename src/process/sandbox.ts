/**
 * The isolation the container runtime on the process VM uses: the typed
 * sandbox configuration, its validation, and the HostOs wrapper that gives
 * the container its own root (an overlay, overlay-host-os.ts), hostname
 * and, with a PID namespace, a parent outside the namespace (getppid of
 * pid 1 is 0, pid_namespaces(7)). The limits themselves are enforced by
 * the kernel and run loop (sandbox-limits.ts).
 */
import { DelegatingHostOs } from './delegating-host-os.js';
import { OverlayHostOs } from './overlay-host-os.js';
import { BindHostOs, checkBindTarget, type BindMount } from './bind-host-os.js';
import { Vfs } from './vfs.js';
import type { HostOs, HostIdentity, HostUname } from './host-os.js';
import { S_IFMT, S_IFDIR, S_IFREG } from './sys-abi.js';

/** What isolates one container running on the process VM. */
export interface ContainerSandbox {
  /** Read-only layer directories, lowest first (never written). */
  rootLayers: string[];
  /** The writable layer directory (OCI whiteouts record deletions there). */
  upper: string;
  /** uname(2) nodename inside the container; absent: the host's. */
  hostname?: string;
  /** The first process is pid 1 of its own PID namespace. */
  pidNamespace: boolean;
  /** Cap on the guest RAM all the container's address spaces back together (bytes). */
  memoryLimitBytes?: number;
  /** Most tasks (processes and threads, zombies included) the container may have. */
  pidsLimit?: number;
  /** Host CPU share: N cores' worth of time (the VM runs on one thread; N >= 1 changes nothing). */
  cpus?: number;
  /** The guest's starting directory inside the root (Docker's WorkingDir; created if missing); absent: "/". */
  workdir?: string;
  /** The user the first process runs as (Docker's --user, numeric); absent: the host's ids. */
  user?: { uid: number; gid: number };
  /** Host directories bound over guest directories (Docker's -v; bind-host-os.ts); they need an overlay root. */
  binds?: BindMount[];
}

/** The limits part of a sandbox, as the kernel keeps it. */
export type SandboxLimits = Pick<ContainerSandbox, 'pidNamespace' | 'memoryLimitBytes' | 'pidsLimit' | 'cpus'>;

/** Longest hostname (include/uapi/linux/utsname.h __NEW_UTS_LEN). */
export const HOST_NAME_MAX = 64;

/** Checks a sandbox against the host: null if usable, else a one-line reason. */
export function checkSandbox(s: Partial<ContainerSandbox>, host: HostOs): string | null {
  const dirs: Array<[string, string]> = [...(s.rootLayers ?? []).map((d): [string, string] => ['lower', d])];
  if (s.upper !== undefined) dirs.push(['upper', s.upper]);
  for (const [what, d] of dirs) {
    const st = host.stat(d);
    if (typeof st === 'number' || (st.mode & S_IFMT) !== S_IFDIR) return `${what} directory ${d}: not a directory`;
  }
  if ((s.rootLayers?.length ?? 0) > 0 && s.upper === undefined) return 'an overlay needs an upper directory';
  if (s.upper !== undefined) {
    for (const d of s.rootLayers ?? []) {
      const a = host.realpath(d), b = host.realpath(s.upper);
      if (typeof a === 'string' && typeof b === 'string' && (a === b || a.startsWith(b + '/') || b.startsWith(a + '/'))) {
        return `upper directory ${s.upper} overlaps lower directory ${d}`;
      }
    }
  }
  if (s.hostname !== undefined && (s.hostname.length === 0 || s.hostname.length > HOST_NAME_MAX || /[\0/\s]/.test(s.hostname))) {
    return `hostname ${JSON.stringify(s.hostname)}: expected 1 to ${HOST_NAME_MAX} characters without spaces or '/'`;
  }
  if (s.memoryLimitBytes !== undefined && !(Number.isSafeInteger(s.memoryLimitBytes) && s.memoryLimitBytes >= 4096)) {
    return 'memory limit: expected at least one page (4096 bytes)';
  }
  if (s.pidsLimit !== undefined && !(Number.isSafeInteger(s.pidsLimit) && s.pidsLimit >= 1)) {
    return 'pids limit: expected a whole number of at least 1';
  }
  if (s.cpus !== undefined && !(Number.isFinite(s.cpus) && s.cpus > 0 && s.cpus <= 1024)) {
    return 'cpus: expected a number greater than 0';
  }
  if (s.workdir !== undefined && (!s.workdir.startsWith('/') || s.workdir.includes('\0'))) {
    return `workdir ${JSON.stringify(s.workdir)}: expected an absolute path`;
  }
  if (s.workdir !== undefined && s.upper === undefined) return 'a working directory needs an overlay root (--upper)';
  return checkBinds(s, host);
}

/** Checks the binds: each source an existing host directory outside the layers, each target absolute. */
function checkBinds(s: Partial<ContainerSandbox>, host: HostOs): string | null {
  const binds = s.binds ?? [];
  if (binds.length > 0 && s.upper === undefined) return 'a bind mount needs an overlay root (--upper)';
  const layers = [...(s.rootLayers ?? []), ...(s.upper !== undefined ? [s.upper] : [])].map((d) => host.realpath(d)).filter((d) => typeof d === 'string');
  const seen = new Set<string>();
  for (const b of binds) {
    const bad = checkBindTarget(b.target);
    if (bad !== null) return `volume ${b.source}:${b.target}: ${bad}`;
    if (!b.source.startsWith('/')) return `volume ${b.source}:${b.target}: the host directory must be an absolute path`;
    const st = host.stat(b.source);
    if (typeof st === 'number' || ((st.mode & S_IFMT) !== S_IFDIR && (st.mode & S_IFMT) !== S_IFREG)) return `volume ${b.source}:${b.target}: ${b.source} is not a directory`;
    const real = host.realpath(b.source);
    if (typeof real === 'string' && layers.some((l) => real === l || real.startsWith(l + '/') || l.startsWith(real + '/'))) {
      return `volume ${b.source}:${b.target}: the host directory overlaps the container's layers`;
    }
    const t = b.target.replace(/\/+$/, '');
    if (seen.has(t)) return `volume ${b.source}:${b.target}: duplicate mount point ${b.target}`;
    seen.add(t);
  }
  return null;
}

/** The container's view of the host: its own root, hostname and, with a PID namespace, no parent. */
export class SandboxHostOs extends DelegatingHostOs {
  /** The overlay root, if the sandbox has layers. */
  readonly overlay: OverlayHostOs | null;
  /** The bind mounts over the overlay, if any (bind-host-os.ts). */
  readonly bindOs: BindHostOs | null;
  /** The container's hostname (sethostname changes it); undefined: the host's. */
  private hostname: string | undefined;

  /** Wraps `host` for sandbox `s` (checked with checkSandbox first). */
  constructor(host: HostOs, readonly sandbox: Partial<ContainerSandbox>) {
    const overlay = makeOverlay(host, sandbox);
    const bindOs = overlay !== null && (sandbox.binds?.length ?? 0) > 0 ? makeBinds(host, overlay, sandbox.binds ?? []) : null;
    super(bindOs ?? overlay ?? host);
    this.overlay = overlay;
    this.bindOs = bindOs;
    this.hostname = sandbox.hostname;
    // The container's own /tmp: the image's, else a fresh one in the writable layer (mode 1777, as
    // the FHS's /tmp); either way its files land in this container's upper only.
    overlay?.ensureDir('/tmp', 0o1777);
    // Docker creates a missing WorkingDir (mode 0755), each component in turn.
    if (overlay !== null && sandbox.workdir !== undefined) {
      let at = '';
      for (const part of sandbox.workdir.split('/').filter((p) => p !== '')) { at += '/' + part; overlay.ensureDir(at, 0o755); }
    }
  }

  /** The host path backing guest-visible host path `path` (a bound file, or the overlay layer's), or null. */
  backingPath(path: string): string | null {
    const overlay = (p: string): string | null => this.overlay === null ? p : this.overlay.backingPath(p);
    return this.bindOs === null ? overlay(path) : this.bindOs.backingPath(path, overlay);
  }

  /**
   * /proc/self/mounts in the container (proc_pid_mounts(5)): its overlay
   * root, /proc, /dev, then each bind by its host directory, `ro` or `rw`;
   * spaces, tabs, newlines and backslashes escaped in octal as the kernel
   * does (fs/proc_namespace.c mangle).
   */
  override mountTable(): string {
    if (this.overlay === null) return '';
    const esc = (p: string): string => p.replace(/[ \t\n\\]/g, (ch) => '\\' + ch.charCodeAt(0).toString(8).padStart(3, '0'));
    const lines = ['overlay / overlay rw,relatime 0 0', 'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0', 'tmpfs /dev tmpfs rw,nosuid,size=65536k,mode=755 0 0'];
    for (const b of [...(this.bindOs?.mounts ?? [])].reverse()) lines.push(`${esc(b.source)} ${esc(b.target)} none ${b.readOnly ? 'ro' : 'rw'},bind 0 0`);
    return lines.join('\n') + '\n';
  }

  /** The directory the VFS uses as the guest's root, if the sandbox has one. */
  get root(): string | undefined { return this.overlay?.mount; }

  /** uname(2) with the container's hostname. */
  override uname(): HostUname {
    const u = this.inner.uname();
    return this.hostname !== undefined ? { ...u, nodename: this.hostname } : u;
  }

  /** sethostname(2) inside the container: its own UTS name changes, never the host's. */
  override setHostname(name: string): number {
    this.hostname = name;
    return 0;
  }

  /** The host's ids; in a PID namespace the first process's parent is outside it (ppid 0). */
  override identity(): HostIdentity {
    let id = this.inner.identity();
    const u = this.sandbox.user;
    if (u !== undefined) id = { ...id, uid: u.uid, euid: u.uid, gid: u.gid, egid: u.gid, groups: [u.gid] };
    return this.sandbox.pidNamespace === true ? { ...id, ppid: 0 } : id;
  }

  /** In a sandbox the guest starts in its root's "/" (Docker's default working directory). */
  override cwd(): string {
    if (this.overlay === null) return this.inner.cwd();
    const wd = this.sandbox.workdir?.replace(/\/+$/, '') ?? '';
    return this.overlay.mount + wd;
  }
}

/** The overlay for `s`, or null without one. */
function makeOverlay(host: HostOs, s: Partial<ContainerSandbox>): OverlayHostOs | null {
  if (s.upper === undefined) return null;
  const real = (d: string): string => { const r = host.realpath(d); return typeof r === 'string' ? r : d; };
  return new OverlayHostOs(host, (s.rootLayers ?? []).map(real), real(s.upper));
}

/**
 * The binds over `overlay`: each source made canonical, each target
 * resolved inside the container's root (a symlink on the way is followed
 * there, as Docker resolves a mount destination in the rootfs), and each
 * directory mount point (and a file's parents) made in the writable layer
 * when the image lacks it (Docker creates it too), shallowest first so
 * that nested mount points land in the bind above them.
 */
function makeBinds(host: HostOs, overlay: OverlayHostOs, binds: BindMount[]): BindHostOs {
  const real = (d: string): string => { const r = host.realpath(d); return typeof r === 'string' ? r : d; };
  const hooks = { pid: () => -1, exePath: () => '', maps: () => '', fds: (): number[] => [] };
  const placed: BindMount[] = [];
  let os = new BindHostOs(overlay, host, overlay.mount, placed);
  for (const b of [...binds].sort((x, y) => x.target.split('/').length - y.target.split('/').length)) {
    const r = new Vfs(os, overlay.mount, hooks).resolve('/', b.target, true);
    const target = typeof r === 'number' || r.kind !== 'host' ? b.target : r.guest;
    // A file's mount point is not made (the listing of its directory shows it, bind-host-os.ts); its parents are.
    const src = host.stat(b.source), isDir = typeof src !== 'number' && (src.mode & S_IFMT) === S_IFDIR;
    const parts = target.split('/').filter((p) => p !== '');
    if (!isDir) parts.pop();
    let at = '';
    for (const part of parts) {
      at += '/' + part;
      if (typeof os.lstat(overlay.mount + at) === 'number') os.mkdir(overlay.mount + at, 0o755);
    }
    placed.push({ source: real(b.source), target, readOnly: b.readOnly });
    os = new BindHostOs(overlay, host, overlay.mount, placed);
  }
  return os;
}
