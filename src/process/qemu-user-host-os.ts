/**
 * The HostOs of the drop-in `tsvm-riscv64` (src/cli/qemu-user-args.ts):
 * what qemu-riscv64 changes in the host the guest sees.
 *
 * - The ELF interpreter prefix (`-L`, QEMU_LD_PREFIX), as QEMU 7.2's
 *   util/path.c `path()` applies it: an absolute path whose file exists
 *   under the prefix (access(F_OK), following symlinks) is used there,
 *   any other path as it is. The answer for each path is remembered, as
 *   QEMU's table does. QEMU applies it to open/openat, the stat family,
 *   statfs and readlink, and to the program's interpreter; so does this.
 * - uname(2)'s release string (`-r`, QEMU_UNAME).
 * - A seeded generator for the guest's random bytes (`-seed`,
 *   QEMU_RAND_SEED): getrandom(2) and AT_RANDOM repeat from run to run.
 */
import { DelegatingHostOs } from './delegating-host-os.js';
import type { HostOs, HostStatfs, HostUname, StatInfo } from './host-os.js';

/** What QemuUserHostOs changes; absent fields leave the host's behaviour. */
export interface QemuUserHostOptions {
  /** The interpreter prefix (a host directory). */
  prefix?: string;
  /** uname(2) release. */
  unameRelease?: string;
  /** PRNG seed for random bytes. */
  seed?: number;
}

/** A HostOs with qemu-riscv64's prefix, uname release and random seed. */
export class QemuUserHostOs extends DelegatingHostOs {
  private readonly prefix: string | undefined;
  private readonly release: string | undefined;
  private readonly looked = new Map<string, string>();
  /** xoshiro128** state (Blackman & Vigna), four 32-bit words; null without a seed. */
  private readonly rng: Uint32Array | null;

  /** Wraps `inner`. */
  constructor(inner: HostOs, o: QemuUserHostOptions) {
    super(inner);
    this.prefix = o.prefix === undefined || o.prefix === '' ? undefined : o.prefix.replace(/\/+$/, '');
    this.release = o.unameRelease;
    if (o.seed === undefined) { this.rng = null; return; }
    // splitmix32 spreads the seed over the state, so that no word is zero.
    this.rng = new Uint32Array(4);
    let z = o.seed >>> 0;
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b) >>> 0;
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35) >>> 0;
      this.rng[i] = (t ^ (t >>> 16)) >>> 0;
    }
  }

  /** The host path QEMU's path() gives `p`: under the prefix if it exists there, else `p`. */
  prefixed(p: string): string {
    if (this.prefix === undefined || !p.startsWith('/')) return p;
    const seen = this.looked.get(p);
    if (seen !== undefined) return seen;
    const full = this.prefix + p;
    const hit = typeof this.inner.stat(full) === 'number' ? p : full;
    this.looked.set(p, hit);
    return hit;
  }

  /** open(2) through the prefix. */
  override open(path: string, flags: number, mode: number): number { return this.inner.open(this.prefixed(path), flags, mode); }

  /** stat(2) through the prefix. */
  override stat(path: string): StatInfo | number { return this.inner.stat(this.prefixed(path)); }

  /** lstat(2) through the prefix. */
  override lstat(path: string): StatInfo | number { return this.inner.lstat(this.prefixed(path)); }

  /** statfs(2) through the prefix. */
  override statfs(path: string): HostStatfs | number { return this.inner.statfs(this.prefixed(path)); }

  /** readlink(2) through the prefix. */
  override readlink(path: string): string | number { return this.inner.readlink(this.prefixed(path)); }

  /** uname(2) with the -r release. */
  override uname(): HostUname {
    const u = this.inner.uname();
    return this.release === undefined ? u : { ...u, release: this.release };
  }

  /** Random bytes: the seeded generator's with -seed, else the host's. */
  override randomFill(buf: Uint8Array): void {
    const s = this.rng;
    if (s === null) { this.inner.randomFill(buf); return; }
    let s0 = s[0]!, s1 = s[1]!, s2 = s[2]!, s3 = s[3]!;
    for (let i = 0; i < buf.length; i++) {
      // xoshiro128**: result = rotl(s1 * 5, 7) * 9, then the state update.
      const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
      const t = (s1 << 9) >>> 0;
      s2 = (s2 ^ s0) >>> 0; s3 = (s3 ^ s1) >>> 0; s1 = (s1 ^ s2) >>> 0; s0 = (s0 ^ s3) >>> 0;
      s2 = (s2 ^ t) >>> 0; s3 = rotl(s3, 11);
      buf[i] = r >>> 24;
    }
    s[0] = s0; s[1] = s1; s[2] = s2; s[3] = s3;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
