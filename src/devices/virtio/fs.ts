/**
 * virtio-fs, the file system device (virtio 1.2 §5.11): FUSE requests over
 * virtqueues, served in-process from an FsBackend (fs-backend.ts), with no
 * DAX window. Queue 0 is the hiprio queue (FORGET, BATCH_FORGET,
 * INTERRUPT), queue 1 the one request queue (§5.11.2). Each request is a
 * device-readable fuse_in_header and its arguments, then a device-writable
 * fuse_out_header and its reply (§5.11.6); errors travel as -errno in the
 * out header. Requests are served synchronously, in order, on the kick.
 *
 * The device owns the FUSE node ids (a table of paths relative to the
 * share's root, with lookup counts) and the file and directory handles.
 * Requests naming an unknown node id or handle get ESTALE or EBADF; a
 * chain too short for the in header, or with no room for an out header
 * where a reply is due, is malformed and throws VirtqError (the transport
 * then sets DEVICE_NEEDS_RESET). Backend exceptions become EIO.
 */
import type { VirtioDevice, VirtioContext } from './mmio.js';
import { VirtqError, type DescChain, type DmaMemory } from './queue.js';
import type { FsAttr, FsBackend, FsDirent } from './fs-backend.js';
import * as P from './fs-proto.js';

/** Device ID of the file system device (virtio 1.2 §5.11.1). */
export const VIRTIO_ID_FS = 26;
/** Length of the tag in the configuration space (virtio 1.2 §5.11.4: u8 tag[36]). */
export const VIRTIO_FS_TAG_BYTES = 36;
/** Configuration space: tag[36], le32 num_request_queues (§5.11.4). */
const CFG_NUM_REQUEST_QUEUES = 36, CFG_BYTES = 40;
/** Request queues offered (§5.11.2: queues 1..num_request_queues). */
const NUM_REQUEST_QUEUES = 1;
/** Largest READ/WRITE payload (fuse_init_out max_write) and its page count (max_pages). */
export const FS_MAX_WRITE = 1024 * 1024;
const MAX_PAGES = FS_MAX_WRITE / 4096;

/** A node id's path ('/'-rooted, relative to the share; null once the name is deleted) and lookup count. */
interface Node { path: string | null; nlookup: number }
/** An open file: the backend's fd. */
interface FileHandle { fd: number }
/** An open directory: its path and the entries read at OPENDIR, "." and ".." first. */
interface DirHandle { path: string; entries: FsDirent[] }

const utf8 = new TextEncoder(), utf8d = new TextDecoder();

/** Thrown inside a request's handler: answer with -errno. */
class FsError extends Error { constructor(readonly errno: number) { super(`errno ${errno}`); } }

/** A request's argument bytes with bounds-checked field readers (a short field is EINVAL). */
class Args {
  readonly dv: DataView;
  constructor(readonly u8: Uint8Array) { this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength); }
  need(n: number): void { if (this.u8.length < n) throw new FsError(P.EINVAL); }
  u32(off: number): number { this.need(off + 4); return this.dv.getUint32(off, true); }
  /** A u64 as a number; values past 2^53 (no file or id is that large) are EINVAL. */
  u64(off: number): number {
    const hi = this.u32(off + 4);
    if (hi >= 0x200000) throw new FsError(P.EINVAL);
    return hi * 4294967296 + this.dv.getUint32(off, true);
  }
  /** The NUL-terminated name starting at `off`; returns it and the offset after its NUL. */
  name(off: number): [string, number] {
    const end = this.u8.indexOf(0, off);
    if (off > this.u8.length || end < 0) throw new FsError(P.EINVAL);
    const raw = this.u8.subarray(off, end);
    if (raw.length > P.NAME_MAX) throw new FsError(P.ENAMETOOLONG);
    return [utf8d.decode(raw), end + 1];
  }
}

/** A validated component name: not empty, no '/', not "." or "..". */
function checkName(n: string): string {
  if (n === '' || n === '.' || n === '..' || n.includes('/')) throw new FsError(P.EINVAL);
  return n;
}

function childPath(dir: string, name: string): string { return dir === '/' ? '/' + name : dir + '/' + name; }

/** The virtio file system device. */
export class VirtioFs implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_FS;
  readonly name = 'fs';
  readonly numQueues = 1 + NUM_REQUEST_QUEUES;
  readonly featuresLo = 0;
  readonly featuresHi = 0;
  /** Counters (for tests): requests served, and replies that carried an error. */
  requests = 0;
  errors = 0;
  /** The last backend exception's message (turned into EIO). */
  lastError = '';
  private readonly config = new Uint8Array(CFG_BYTES);
  private readonly nodes = new Map<number, Node>();
  private readonly byPath = new Map<string, number>();
  private nextNode = P.FUSE_ROOT_ID + 1;
  private readonly files = new Map<number, FileHandle>();
  private readonly dirs = new Map<number, DirHandle>();
  private nextFh = 1;
  private initialized = false;

  /** A device sharing `backend` under `tag` (what `mount -t virtiofs TAG DIR` names; at most 36 bytes). */
  constructor(readonly backend: FsBackend, readonly tag: string) {
    const t = utf8.encode(tag);
    if (t.length === 0 || t.length > VIRTIO_FS_TAG_BYTES) throw new RangeError(`virtio-fs tag '${tag}' must be 1 to ${VIRTIO_FS_TAG_BYTES} bytes`);
    this.config.set(t);
    new DataView(this.config.buffer).setUint32(CFG_NUM_REQUEST_QUEUES, NUM_REQUEST_QUEUES, true);
    this.resetNodes();
  }

  configRead(offset: number, size: number): number {
    if (offset < 0 || offset + size > CFG_BYTES) return 0;
    const dv = new DataView(this.config.buffer);
    return size === 1 ? dv.getUint8(offset) : size === 2 ? dv.getUint16(offset, true) : dv.getUint32(offset, true) | 0;
  }

  configWrite(): void { /* the configuration space is read-only (§5.11.4) */ }
  activate(ctx: VirtioContext): void { for (let q = 0; q < this.numQueues; q++) this.queueNotify(ctx, q); }
  /** A device reset ends the FUSE session: handles are closed and node ids forgotten. */
  reset(): void { this.closeAll(); this.initialized = false; }

  /** Number of live node ids (the root included) and open handles, for tests. */
  get liveNodes(): number { return this.nodes.size; }
  get openHandles(): number { return this.files.size + this.dirs.size; }

  /** Serves every available request on queue `q`, in order. */
  queueNotify(ctx: VirtioContext, q: number): void {
    const queue = ctx.queues[q];
    if (!queue) return;
    const chain = ctx.chain, mem = ctx.mem;
    while (queue.pop(mem, chain)) queue.push(mem, chain.head, this.serve(mem, chain));
    ctx.notifyUsed(q);
  }

  private resetNodes(): void {
    this.nodes.clear(); this.byPath.clear();
    this.nodes.set(P.FUSE_ROOT_ID, { path: '/', nlookup: 1 });
    this.byPath.set('/', P.FUSE_ROOT_ID);
    this.nextNode = P.FUSE_ROOT_ID + 1;
  }

  private closeAll(): void {
    for (const h of this.files.values()) this.safe(() => this.backend.close(h.fd));
    this.files.clear(); this.dirs.clear();
    this.resetNodes();
  }

  private safe(f: () => unknown): void { try { f(); } catch (e) { this.lastError = e instanceof Error ? e.message : String(e); } }

  /** Handles one chain; returns the bytes written to it. */
  private serve(mem: DmaMemory, chain: DescChain): number {
    if (chain.readBytes < P.IN_HEADER_BYTES) throw new VirtqError(`virtio-fs request of ${chain.readBytes} bytes, shorter than fuse_in_header`);
    const hdr = new Args(chain.read(mem, 0, P.IN_HEADER_BYTES));
    const len = hdr.u32(0), opcode = hdr.u32(4), unique = hdr.u8.subarray(8, 16);
    const nodeLo = hdr.u32(16), nodeHi = hdr.u32(20), uid = hdr.u32(24), gid = hdr.u32(28);
    if (opcode === P.FUSE_FORGET || opcode === P.FUSE_BATCH_FORGET || opcode === P.FUSE_INTERRUPT) {
      // No reply (fuse.h: FORGET and BATCH_FORGET have none; INTERRUPT needs none, requests finish synchronously).
      this.requests++;
      const args = new Args(chain.read(mem, P.IN_HEADER_BYTES, Math.min(len, chain.readBytes) - P.IN_HEADER_BYTES));
      try { if (opcode !== P.FUSE_INTERRUPT) this.forget(opcode, nodeHi * 4294967296 + nodeLo, args); } catch { /* a bad forget is ignored */ }
      return 0;
    }
    if (chain.writeBytes < P.OUT_HEADER_BYTES) throw new VirtqError('virtio-fs request without room for fuse_out_header');
    this.requests++;
    let errno = 0, reply: Uint8Array | null = null;
    try {
      if (len < P.IN_HEADER_BYTES || len > chain.readBytes) throw new FsError(P.EINVAL);
      const args = new Args(chain.read(mem, P.IN_HEADER_BYTES, len - P.IN_HEADER_BYTES));
      const room = chain.writeBytes - P.OUT_HEADER_BYTES;
      if (!this.initialized && opcode !== P.FUSE_INIT) throw new FsError(P.EIO);
      reply = this.dispatch(opcode, nodeHi >= 0x200000 ? -1 : nodeHi * 4294967296 + nodeLo, args, room, uid, gid);
      if (reply.length > room) throw new FsError(P.ERANGE);
    } catch (e) {
      if (e instanceof VirtqError) throw e;
      if (e instanceof FsError) errno = e.errno;
      else { errno = P.EIO; this.lastError = e instanceof Error ? e.message : String(e); }
    }
    if (errno !== 0) { this.errors++; reply = null; }
    const out = new Uint8Array(P.OUT_HEADER_BYTES), dv = new DataView(out.buffer);
    const n = P.OUT_HEADER_BYTES + (reply?.length ?? 0);
    dv.setUint32(0, n, true);
    dv.setInt32(4, -errno, true);
    out.set(unique, 8);
    chain.write(mem, 0, out);
    if (reply !== null && reply.length > 0) chain.write(mem, P.OUT_HEADER_BYTES, reply);
    return n;
  }

  /** A backend answer: the value, or FsError for a negative errno. */
  private ok<T>(r: T | number): T {
    if (typeof r === 'number' && r < 0) throw new FsError(-r);
    return r as T;
  }

  private node(id: number): Node {
    const n = this.nodes.get(id);
    if (!n) throw new FsError(P.ESTALE);
    return n;
  }

  /** The live path of node `id` (ENOENT once deleted). */
  private pathOf(id: number): string {
    const p = this.node(id).path;
    if (p === null) throw new FsError(P.ENOENT);
    return p;
  }

  private file(fh: number): FileHandle {
    const h = this.files.get(fh);
    if (!h) throw new FsError(P.EBADF);
    return h;
  }

  private writable(): void { if (this.backend.readOnly) throw new FsError(P.EROFS); }

  /** Looks `path` up: its attributes and a node id whose lookup count went up by one. */
  private enter(path: string): [number, FsAttr] {
    const a = this.ok(this.backend.lstat(path));
    let id = this.byPath.get(path);
    if (id === undefined) {
      id = this.nextNode++;
      this.nodes.set(id, { path, nlookup: 0 });
      this.byPath.set(path, id);
    }
    this.nodes.get(id)!.nlookup++;
    return [id, a];
  }

  private entryReply(path: string): Uint8Array {
    const [id, a] = this.enter(path);
    const out = new Uint8Array(P.ENTRY_OUT_BYTES);
    P.putEntry(new DataView(out.buffer), 0, id, a);
    return out;
  }

  private attrReply(a: FsAttr): Uint8Array {
    const out = new Uint8Array(P.ATTR_OUT_BYTES), dv = new DataView(out.buffer);
    dv.setUint32(0, P.VALID_SECONDS, true); // attr_valid
    P.putAttr(dv, 16, a);
    return out;
  }

  /** A name was deleted or replaced: its node id keeps working only through open handles. */
  private dropPath(path: string): void {
    const id = this.byPath.get(path);
    if (id === undefined) return;
    this.byPath.delete(path);
    const n = this.nodes.get(id);
    if (n) n.path = null;
  }

  /** A rename moved `from` (and everything under it) to `to`. */
  private movePaths(from: string, to: string): void {
    const prefix = from + '/';
    for (const [id, n] of this.nodes) {
      if (n.path === null || (n.path !== from && !n.path.startsWith(prefix))) continue;
      if (this.byPath.get(n.path) === id) this.byPath.delete(n.path);
      n.path = to + n.path.slice(from.length);
      this.byPath.set(n.path, id);
    }
  }

  /** A created name takes the caller's ids and the exact mode asked for (the host's umask may have cut it). */
  private adopt(path: string, mode: number | null, uid: number, gid: number): void {
    const a = this.ok(this.backend.lstat(path));
    if (mode !== null && (a.mode & 0o7777) !== (mode & 0o7777)) this.backend.chmod(path, mode & 0o7777);
    if (a.uid !== uid || a.gid !== gid) this.backend.chown(path, uid, gid); // best effort: an unprivileged host keeps its own ids
  }

  private forget(opcode: number, id: number, args: Args): void {
    const drop = (nodeid: number, n: number): void => {
      const node = this.nodes.get(nodeid);
      if (!node || nodeid === P.FUSE_ROOT_ID) return;
      node.nlookup -= n;
      if (node.nlookup > 0) return;
      this.nodes.delete(nodeid);
      if (node.path !== null && this.byPath.get(node.path) === nodeid) this.byPath.delete(node.path);
    };
    if (opcode === P.FUSE_FORGET) { drop(id, args.u64(0)); return; }
    const count = args.u32(0); // fuse_batch_forget_in: count, dummy; then fuse_forget_one[count]
    for (let i = 0; i < count; i++) drop(args.u64(8 + 16 * i), args.u64(16 + 16 * i));
  }

  /** Serves one request that has a reply; returns the reply's payload. */
  private dispatch(op: number, id: number, a: Args, room: number, uid: number, gid: number): Uint8Array {
    const b = this.backend, none = new Uint8Array(0);
    switch (op) {
      case P.FUSE_INIT: return this.init(a);
      case P.FUSE_DESTROY: this.closeAll(); this.initialized = false; return none;
      case P.FUSE_LOOKUP: return this.entryReply(childPath(this.pathOf(id), checkName(a.name(0)[0])));
      case P.FUSE_GETATTR: {
        const flags = a.u32(0); // fuse_getattr_in: getattr_flags, dummy, fh
        if (flags & P.FUSE_GETATTR_FH) return this.attrReply(this.ok(b.fstat(this.file(a.u64(8)).fd)));
        return this.attrReply(this.ok(b.lstat(this.pathOf(id))));
      }
      case P.FUSE_SETATTR: return this.setattr(id, a);
      case P.FUSE_READLINK: return utf8.encode(this.ok(b.readlink(this.pathOf(id))));
      case P.FUSE_SYMLINK: {
        this.writable();
        const [name, next] = a.name(0), target = a.name(next)[0], path = childPath(this.pathOf(id), checkName(name));
        this.ok(b.symlink(target, path));
        this.adopt(path, null, uid, gid);
        return this.entryReply(path);
      }
      case P.FUSE_MKNOD: {
        this.writable();
        const mode = a.u32(0), path = childPath(this.pathOf(id), checkName(a.name(16)[0])); // fuse_mknod_in: mode, rdev, umask, padding
        if ((mode & P.S_IFMT) !== P.S_IFREG && (mode & P.S_IFMT) !== 0) throw new FsError(P.EPERM); // devices, fifos, sockets: not on a share
        this.ok(b.close(this.ok(b.open(path, P.O_CREAT | P.O_EXCL | P.O_WRONLY | P.O_NOFOLLOW, mode & 0o7777))));
        this.adopt(path, mode, uid, gid);
        return this.entryReply(path);
      }
      case P.FUSE_MKDIR: {
        this.writable();
        const mode = a.u32(0), path = childPath(this.pathOf(id), checkName(a.name(8)[0])); // fuse_mkdir_in: mode, umask
        this.ok(b.mkdir(path, mode & 0o7777));
        this.adopt(path, mode, uid, gid);
        return this.entryReply(path);
      }
      case P.FUSE_UNLINK: case P.FUSE_RMDIR: {
        this.writable();
        const path = childPath(this.pathOf(id), checkName(a.name(0)[0]));
        this.ok(op === P.FUSE_UNLINK ? b.unlink(path) : b.rmdir(path));
        this.dropPath(path);
        return none;
      }
      case P.FUSE_RENAME: case P.FUSE_RENAME2: {
        this.writable();
        const fixed = op === P.FUSE_RENAME ? 8 : 16; // fuse_rename_in: newdir; fuse_rename2_in: newdir, flags, padding
        const newdir = a.u64(0), flags = op === P.FUSE_RENAME2 ? a.u32(8) : 0;
        const [oldName, next] = a.name(fixed), newName = a.name(next)[0];
        if ((flags & ~P.RENAME_NOREPLACE) !== 0) throw new FsError(P.EINVAL); // RENAME_EXCHANGE / RENAME_WHITEOUT are not offered
        const from = childPath(this.pathOf(id), checkName(oldName)), to = childPath(this.pathOf(newdir), checkName(newName));
        if (from === to) return none;
        if (to.startsWith(from + '/')) throw new FsError(P.EINVAL);
        if ((flags & P.RENAME_NOREPLACE) && typeof b.lstat(to) !== 'number') throw new FsError(P.EEXIST);
        this.ok(b.rename(from, to));
        this.dropPath(to);
        this.movePaths(from, to);
        return none;
      }
      case P.FUSE_LINK: {
        this.writable();
        const existing = this.pathOf(a.u64(0)), path = childPath(this.pathOf(id), checkName(a.name(8)[0])); // fuse_link_in: oldnodeid
        this.ok(b.link(existing, path));
        return this.entryReply(path);
      }
      case P.FUSE_OPEN: {
        const flags = a.u32(0); // fuse_open_in: flags, open_flags
        return this.openReply(this.openFile(this.pathOf(id), flags, 0));
      }
      case P.FUSE_CREATE: {
        this.writable();
        const flags = a.u32(0), mode = a.u32(4), path = childPath(this.pathOf(id), checkName(a.name(16)[0])); // fuse_create_in: flags, mode, umask, open_flags
        const fh = this.openFile(path, flags | P.O_CREAT, mode & 0o7777);
        try { this.adopt(path, mode, uid, gid); } catch { /* the file exists: its ids are cosmetic */ }
        let entry: Uint8Array;
        try { entry = this.entryReply(path); } catch (e) { this.release(fh); throw e; }
        const out = new Uint8Array(P.ENTRY_OUT_BYTES + P.OPEN_OUT_BYTES);
        out.set(entry); out.set(this.openReply(fh), P.ENTRY_OUT_BYTES);
        return out;
      }
      case P.FUSE_READ: {
        const h = this.file(a.u64(0)), off = a.u64(8), size = Math.min(a.u32(16), room, FS_MAX_WRITE); // fuse_read_in: fh, offset, size
        const buf = new Uint8Array(size);
        let got = 0;
        while (got < size) {
          const n = this.ok(b.read(h.fd, buf.subarray(got), off + got));
          if (n === 0) break;
          got += n;
        }
        return buf.subarray(0, got);
      }
      case P.FUSE_WRITE: {
        this.writable();
        const h = this.file(a.u64(0)), off = a.u64(8), size = a.u32(16); // fuse_write_in: fh, offset, size, write_flags, lock_owner, flags, padding
        a.need(40 + size);
        if (size > FS_MAX_WRITE) throw new FsError(P.EINVAL);
        const data = a.u8.subarray(40, 40 + size);
        let put = 0;
        while (put < size) {
          const n = this.ok(b.write(h.fd, data.subarray(put), off + put));
          if (n === 0) break;
          put += n;
        }
        const out = new Uint8Array(P.WRITE_OUT_BYTES);
        new DataView(out.buffer).setUint32(0, put, true);
        return out;
      }
      case P.FUSE_STATFS: {
        const s = this.ok(b.statfs('/')), out = new Uint8Array(P.KSTATFS_BYTES), dv = new DataView(out.buffer);
        // fuse_kstatfs: blocks, bfree, bavail, files, ffree, bsize, namelen, frsize
        [s.blocks, s.bfree, s.bavail, s.files, s.ffree].forEach((v, i) => dv.setBigUint64(8 * i, BigInt.asUintN(64, v), true));
        dv.setUint32(40, Number(s.bsize), true);
        dv.setUint32(44, P.NAME_MAX, true);
        dv.setUint32(48, Number(s.bsize), true);
        return out;
      }
      case P.FUSE_RELEASE: this.release(a.u64(0)); return none; // fuse_release_in: fh, flags, release_flags, lock_owner
      case P.FUSE_RELEASEDIR: { const fh = a.u64(0); if (!this.dirs.delete(fh)) throw new FsError(P.EBADF); return none; }
      case P.FUSE_FSYNC: {
        const h = this.file(a.u64(0)), flags = a.u32(8); // fuse_fsync_in: fh, fsync_flags
        if (!b.readOnly) this.ok(b.fsync(h.fd, (flags & P.FUSE_FSYNC_FDATASYNC) !== 0));
        return none;
      }
      case P.FUSE_FSYNCDIR: if (!this.dirs.has(a.u64(0))) throw new FsError(P.EBADF); return none;
      case P.FUSE_FLUSH: this.file(a.u64(0)); return none; // close(2) of one descriptor: nothing is buffered here
      case P.FUSE_SYNCFS: return none;
      case P.FUSE_OPENDIR: return this.opendir(this.pathOf(id));
      case P.FUSE_READDIR: case P.FUSE_READDIRPLUS: return this.readdir(a, room, op === P.FUSE_READDIRPLUS);
      case P.FUSE_ACCESS: this.ok(b.access(this.pathOf(id), a.u32(0) & 7)); return none; // fuse_access_in: mask
      case P.FUSE_FALLOCATE: {
        this.writable();
        const h = this.file(a.u64(0)), off = a.u64(8), length = a.u64(16), mode = a.u32(24); // fuse_fallocate_in: fh, offset, length, mode
        if (mode !== 0) throw new FsError(P.EOPNOTSUPP); // only plain allocation (no punch, collapse, zero range)
        if (length === 0) throw new FsError(P.EINVAL);
        const size = Number(this.ok(b.fstat(h.fd)).size);
        if (off + length > size) this.ok(b.ftruncate(h.fd, off + length));
        return none;
      }
      case P.FUSE_LSEEK: {
        const h = this.file(a.u64(0)), off = a.u64(8), whence = a.u32(16); // fuse_lseek_in: fh, offset, whence
        if (whence !== P.SEEK_DATA && whence !== P.SEEK_HOLE) throw new FsError(P.EINVAL);
        const size = Number(this.ok(b.fstat(h.fd)).size);
        if (off >= size) throw new FsError(P.ENXIO);
        const out = new Uint8Array(8); // fuse_lseek_out: offset (every file is one data extent and the hole at its end)
        new DataView(out.buffer).setBigUint64(0, BigInt(whence === P.SEEK_DATA ? off : size), true);
        return out;
      }
      case P.FUSE_GETXATTR: case P.FUSE_LISTXATTR: case P.FUSE_SETXATTR: case P.FUSE_REMOVEXATTR:
        throw new FsError(P.ENOSYS); // no extended attributes: the guest stops asking (fuse_getxattr sets no_getxattr)
      default:
        throw new FsError(P.ENOSYS);
    }
  }

  /** FUSE_INIT: fuse_init_in major, minor, max_readahead, flags → fuse_init_out. */
  private init(a: Args): Uint8Array {
    const major = a.u32(0), readahead = a.u32(8), flags = a.u32(12);
    const out = new Uint8Array(P.INIT_OUT_BYTES), dv = new DataView(out.buffer);
    dv.setUint32(0, P.FUSE_KERNEL_VERSION, true);
    if (major < P.FUSE_KERNEL_VERSION) throw new FsError(P.EPROTO);
    if (major > P.FUSE_KERNEL_VERSION) return out.subarray(0, 8); // the driver retries with our major (fuse.h "Version negotiation")
    this.closeAll();
    dv.setUint32(4, P.FUSE_KERNEL_MINOR_VERSION, true);
    dv.setUint32(8, Math.min(readahead, FS_MAX_WRITE), true);
    dv.setUint32(12, flags & P.FUSE_INIT_OFFERED, true);
    dv.setUint16(16, 16, true); // max_background: tsvm's choice (libfuse's default, FUSE_DEFAULT_MAX_BACKGROUND 12 in the kernel)
    dv.setUint16(18, 12, true); // congestion_threshold: three quarters of max_background, as the kernel derives it
    dv.setUint32(20, FS_MAX_WRITE, true); // max_write
    dv.setUint32(24, 1, true); // time_gran: nanoseconds
    dv.setUint16(28, MAX_PAGES, true); // max_pages
    this.initialized = true;
    return out;
  }

  /** Opens `path` for FUSE_OPEN / FUSE_CREATE; returns the new handle. */
  private openFile(path: string, flags: number, mode: number): number {
    const acc = flags & P.O_ACCMODE;
    if (this.backend.readOnly && (acc !== P.O_RDONLY || (flags & (P.O_TRUNC | P.O_CREAT)))) throw new FsError(P.EROFS);
    const keep = P.O_ACCMODE | P.O_CREAT | P.O_EXCL | P.O_TRUNC | P.O_APPEND;
    const fd = this.ok(this.backend.open(path, (flags & keep) | P.O_NOFOLLOW, mode));
    const fh = this.nextFh++;
    this.files.set(fh, { fd });
    return fh;
  }

  private openReply(fh: number): Uint8Array {
    const out = new Uint8Array(P.OPEN_OUT_BYTES); // fuse_open_out: fh, open_flags, backing_id
    new DataView(out.buffer).setUint32(0, fh, true);
    return out;
  }

  private release(fh: number): void {
    const h = this.file(fh);
    this.files.delete(fh);
    this.ok(this.backend.close(h.fd));
  }

  private opendir(path: string): Uint8Array {
    const st = this.ok(this.backend.lstat(path));
    if ((st.mode & P.S_IFMT) !== P.S_IFDIR) throw new FsError(P.ENOTDIR);
    const list = this.ok(this.backend.readdir(path));
    const fh = this.nextFh++;
    this.dirs.set(fh, { path, entries: [{ name: '.', ino: st.ino, type: P.DT_DIR }, { name: '..', ino: 0n, type: P.DT_DIR }, ...list] });
    return this.openReply(fh);
  }

  /** READDIR / READDIRPLUS: entries from the cookie `offset` (an index) that fit in `size` bytes. */
  private readdir(a: Args, room: number, plus: boolean): Uint8Array {
    const fh = a.u64(0), offset = a.u64(8), size = Math.min(a.u32(16), room); // fuse_read_in: fh, offset, size
    const d = this.dirs.get(fh);
    if (!d) throw new FsError(P.EBADF);
    const out = new Uint8Array(size), dv = new DataView(out.buffer);
    let at = 0;
    for (let i = offset; i < d.entries.length; i++) {
      const e = d.entries[i]!, name = utf8.encode(e.name), need = (plus ? P.ENTRY_OUT_BYTES : 0) + P.direntSize(name.length);
      if (at + need > size) break;
      if (plus) {
        if (e.name !== '.' && e.name !== '..') { // the driver skips "." and ".." (fuse_direntplus_link) and counts no lookup for them
          let ent: [number, FsAttr];
          try { ent = this.enter(childPath(d.path, e.name)); } catch { continue; } // gone since OPENDIR
          P.putEntry(dv, at, ent[0], ent[1]);
        }
        at += P.ENTRY_OUT_BYTES;
      }
      P.putDirent(out, dv, at, e.ino, i + 1, e.type, name);
      at += P.direntSize(name.length);
    }
    return out.subarray(0, at);
  }

  /** FUSE_SETATTR: fuse_setattr_in valid, padding, fh, size, lock_owner, atime, mtime, ctime, their nsec, mode, unused, uid, gid. */
  private setattr(id: number, a: Args): Uint8Array {
    const b = this.backend, valid = a.u32(0);
    a.need(88);
    const fh = valid & P.FATTR_FH ? this.file(a.u64(8)) : null;
    const path = this.nodes.get(id)?.path ?? null;
    if (path === null && fh === null) this.pathOf(id); // throws ESTALE or ENOENT
    const changes = P.FATTR_MODE | P.FATTR_UID | P.FATTR_GID | P.FATTR_SIZE | P.FATTR_ATIME | P.FATTR_MTIME;
    if (valid & changes) this.writable();
    const needPath = (): string => { if (path === null) throw new FsError(P.ENOENT); return path; };
    if (valid & P.FATTR_MODE) this.ok(b.chmod(needPath(), a.u32(68) & 0o7777));
    if (valid & (P.FATTR_UID | P.FATTR_GID)) {
      this.ok(b.chown(needPath(), valid & P.FATTR_UID ? a.u32(76) : -1, valid & P.FATTR_GID ? a.u32(80) : -1));
    }
    if (valid & P.FATTR_SIZE) {
      const size = a.u64(16);
      this.ok(fh !== null ? b.ftruncate(fh.fd, size) : b.truncate(needPath(), size));
    }
    if (valid & (P.FATTR_ATIME | P.FATTR_MTIME)) {
      const now = BigInt(Date.now()) * 1_000_000n;
      const time = (bit: number, nowBit: number, secOff: number, nsOff: number): bigint | null =>
        (valid & bit) === 0 ? null : valid & nowBit ? now : a.dv.getBigInt64(secOff, true) * 1_000_000_000n + BigInt(a.u32(nsOff));
      this.ok(b.utimes(needPath(), time(P.FATTR_ATIME, P.FATTR_ATIME_NOW, 32, 56), time(P.FATTR_MTIME, P.FATTR_MTIME_NOW, 40, 60)));
    }
    return this.attrReply(this.ok(fh !== null ? b.fstat(fh.fd) : b.lstat(needPath())));
  }
}
