/**
 * A virtio-fs share whose tree is chosen after the VM has booted:
 *   -fsdev late,id=ID
 * Until the host binds it (QMP `__tsvm-fsdev-bind`, qmp.ts) every call
 * fails with ENXIO, so a guest that mounts it early gets an error, never
 * a host directory. Binding is once: a share's tree never changes under a
 * mounted file system. The container host boots spare microVMs this way
 * and gives each the container's root when it is taken
 * (src/host/containers/vm-spare.ts).
 */
import type { FsAttr, FsBackend, FsDirent, FsStatfs } from '../devices/virtio/fs-backend.js';
import { E } from '../process/sys-abi.js';

/** A share with no tree until `bind` (see the file comment). */
export class LateFsBackend implements FsBackend {
  private inner: FsBackend | null = null;

  /** `id`: the -fsdev's id, by which the host binds it. */
  constructor(readonly id: string) {}

  /** Whether a tree has been bound. */
  get bound(): boolean { return this.inner !== null; }
  /** Read-only until bound (nothing to write), then the bound tree's. */
  get readOnly(): boolean { return this.inner?.readOnly ?? true; }

  /** Gives the share its tree; throws when it already has one. */
  bind(tree: FsBackend): void {
    if (this.inner !== null) throw new Error(`fsdev '${this.id}' is already bound`);
    this.inner = tree;
  }

  /** The tree, or null: every call before `bind` fails with ENXIO (no such device or address, errno-base.h). */
  private get t(): FsBackend | null { return this.inner; }

  lstat(p: string): FsAttr | number { return this.t?.lstat(p) ?? -E.ENXIO; }
  fstat(fd: number): FsAttr | number { return this.t?.fstat(fd) ?? -E.ENXIO; }
  open(p: string, flags: number, mode: number): number { return this.t?.open(p, flags, mode) ?? -E.ENXIO; }
  close(fd: number): number { return this.t?.close(fd) ?? -E.ENXIO; }
  read(fd: number, buf: Uint8Array, position: number): number { return this.t?.read(fd, buf, position) ?? -E.ENXIO; }
  write(fd: number, buf: Uint8Array, position: number): number { return this.t?.write(fd, buf, position) ?? -E.ENXIO; }
  readdir(p: string): FsDirent[] | number { return this.t?.readdir(p) ?? -E.ENXIO; }
  readlink(p: string): string | number { return this.t?.readlink(p) ?? -E.ENXIO; }
  mkdir(p: string, mode: number): number { return this.t?.mkdir(p, mode) ?? -E.ENXIO; }
  unlink(p: string): number { return this.t?.unlink(p) ?? -E.ENXIO; }
  rmdir(p: string): number { return this.t?.rmdir(p) ?? -E.ENXIO; }
  rename(from: string, to: string): number { return this.t?.rename(from, to) ?? -E.ENXIO; }
  symlink(target: string, p: string): number { return this.t?.symlink(target, p) ?? -E.ENXIO; }
  link(existing: string, p: string): number { return this.t?.link(existing, p) ?? -E.ENXIO; }
  chmod(p: string, mode: number): number { return this.t?.chmod(p, mode) ?? -E.ENXIO; }
  chown(p: string, uid: number, gid: number): number { return this.t?.chown(p, uid, gid) ?? -E.ENXIO; }
  utimes(p: string, a: bigint | null, m: bigint | null): number { return this.t?.utimes(p, a, m) ?? -E.ENXIO; }
  truncate(p: string, len: number): number { return this.t?.truncate(p, len) ?? -E.ENXIO; }
  ftruncate(fd: number, len: number): number { return this.t?.ftruncate(fd, len) ?? -E.ENXIO; }
  fsync(fd: number, dataOnly: boolean): number { return this.t?.fsync(fd, dataOnly) ?? -E.ENXIO; }
  statfs(p: string): FsStatfs | number { return this.t?.statfs(p) ?? -E.ENXIO; }
  access(p: string, mode: number): number { return this.t?.access(p, mode) ?? -E.ENXIO; }
}
