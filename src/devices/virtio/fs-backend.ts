/**
 * What the virtio-fs device serves: a directory tree addressed by paths
 * relative to the share's root ('/' is the root, '/a/b' a name in it). The
 * device keeps the FUSE node ids and file handles; a backend only does
 * path and fd operations, synchronously, with Linux vocabulary: open
 * flags are asm-generic O_* values, modes are st_mode bits, and every call
 * that can fail returns a negative Linux errno instead of throwing.
 * Implementations: a host directory or an OCI overlay (src/vmm/fs-host.ts).
 */

/** File attributes (the fields of struct fuse_attr; times in ns since the epoch). */
export interface FsAttr {
  ino: bigint; mode: number; nlink: number; uid: number; gid: number; rdev: bigint;
  size: bigint; blksize: number; blocks: bigint;
  atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint;
}

/** One directory entry: its name, inode and d_type (DT_*). */
export interface FsDirent { name: string; ino: bigint; type: number }

/** Filesystem statistics (struct fuse_kstatfs fields). */
export interface FsStatfs { bsize: bigint; blocks: bigint; bfree: bigint; bavail: bigint; files: bigint; ffree: bigint }

/** A shared directory tree (see the file comment). Errors are negative Linux errnos. */
export interface FsBackend {
  /** True if every change must be refused with EROFS. */
  readonly readOnly: boolean;
  /** lstat(2). */
  lstat(path: string): FsAttr | number;
  /** fstat(2) on an fd from `open`. */
  fstat(fd: number): FsAttr | number;
  /** open(2) with Linux O_* flags (symlinks are never followed); returns an fd. */
  open(path: string, flags: number, mode: number): number;
  /** close(2). */
  close(fd: number): number;
  /** pread(2): bytes read into `buf`. */
  read(fd: number, buf: Uint8Array, position: number): number;
  /** pwrite(2): bytes written. */
  write(fd: number, buf: Uint8Array, position: number): number;
  /** The entries of a directory, without "." and "..". */
  readdir(path: string): FsDirent[] | number;
  /** readlink(2). */
  readlink(path: string): string | number;
  /** mkdir(2). */
  mkdir(path: string, mode: number): number;
  /** unlink(2). */
  unlink(path: string): number;
  /** rmdir(2). */
  rmdir(path: string): number;
  /** rename(2), replacing `to`. */
  rename(from: string, to: string): number;
  /** symlink(2): creates `path` pointing at `target`. */
  symlink(target: string, path: string): number;
  /** link(2). */
  link(existing: string, path: string): number;
  /** chmod(2) (permission bits). */
  chmod(path: string, mode: number): number;
  /** lchown(2); -1 leaves an id unchanged. */
  chown(path: string, uid: number, gid: number): number;
  /** Sets atime/mtime in ns (null: unchanged) without following symlinks. */
  utimes(path: string, atimeNs: bigint | null, mtimeNs: bigint | null): number;
  /** truncate(2). */
  truncate(path: string, len: number): number;
  /** ftruncate(2). */
  ftruncate(fd: number, len: number): number;
  /** fsync(2), or fdatasync(2) when `dataOnly`. */
  fsync(fd: number, dataOnly: boolean): number;
  /** statfs(2) of the share. */
  statfs(path: string): FsStatfs | number;
  /** access(2) with R_OK/W_OK/X_OK bits. */
  access(path: string, mode: number): number;
}
