/**
 * Container records on disk, next to the OCI image store: one directory
 * per container, named by its 64-hex id, holding
 *   config.json   the record (the shape of `docker inspect`'s object)
 *   upper/        its writable layer (OCI whiteouts record deletions)
 *   log.jsonl     its output, one JSON line per chunk: {stream, time, log}
 *                 (Docker's json-file log driver's fields)
 * and `rootfs/<config hex>/`, one unpacked copy of each image, shared by
 * every container of that image (read-only to them: the process runtime
 * writes only the upper). Records are written atomically (temp + rename).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { defaultImageStoreDir } from '../../images/oci/layout.js';
import { randomName } from './names.js';

/** Docker's container states (docker inspect State.Status). */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead';

/** What a container runs and with which limits (docker inspect Config + HostConfig, flattened). */
export interface ContainerConfig {
  Cmd: string[];
  Entrypoint: string[];
  Env: string[];
  WorkingDir: string;
  User: string;
  Hostname: string;
  Tty: boolean;
  OpenStdin: boolean;
  /** Runtime: 'process' (the process VM) or 'vm' (recorded; not yet run). */
  Runtime: string;
  /** --memory, bytes (0: none). */
  Memory: number;
  /** --cpus (0: none). */
  NanoCpus: number;
  /** --pids-limit (0: none). */
  PidsLimit: number;
  /** -p, as given (recorded). */
  PortBindings: string[];
  /** -v, as given (recorded). */
  Binds: string[];
  /** --rm. */
  AutoRemove: boolean;
  /** --network: a network's name (networks.ts); absent or empty: the default network (loopback only). */
  NetworkMode?: string;
}

/** docker inspect State. */
export interface ContainerState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  /** The host pid of the runtime process (0 when not running). */
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
}

/** One container's record. */
export interface ContainerRecord {
  Id: string;
  /** Docker's form: a leading slash. */
  Name: string;
  Created: string;
  /** The image as the user named it. */
  ImageName: string;
  /** The image ID (its config digest). */
  Image: string;
  /** The manifest digest the container was created from. */
  ImageDigest: string;
  Path: string;
  Args: string[];
  Config: ContainerConfig;
  State: ContainerState;
  RestartCount: number;
  /** The unpacked image (shared, read-only). */
  LowerDir: string;
  /** The container's writable layer. */
  UpperDir: string;
  LogPath: string;
}

/** The zero time Docker prints for "never". */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Docker's container name rule (daemon/names: validContainerNamePattern). */
export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Where containers live: $TSVM_CONTAINERS; else with $TSVM_DATA set, its `.containers`; else beside the image store (…/tsvm/containers). */
export function defaultContainerDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['TSVM_CONTAINERS']) return path.resolve(env['TSVM_CONTAINERS']);
  if (env['TSVM_DATA']) return path.join(path.resolve(env['TSVM_DATA']), '.containers');
  return path.join(path.dirname(defaultImageStoreDir(env)), 'containers');
}

/** A container store error a client caused: an HTTP status and one line. */
export class ContainerError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

/** The container records in one directory. */
export class ContainerStore {
  private readonly records = new Map<string, ContainerRecord>();

  private constructor(readonly dir: string) {}

  /** Opens (creating) the store and loads every record; unreadable records are skipped with a warning. */
  static open(dir: string, warn: (line: string) => void = () => {}): ContainerStore {
    const s = new ContainerStore(dir);
    fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true, mode: 0o700 });
    for (const name of fs.readdirSync(dir)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      try {
        const rec = JSON.parse(fs.readFileSync(path.join(dir, name, 'config.json'), 'utf8')) as ContainerRecord;
        if (rec.Id !== name) throw new Error('id mismatch');
        s.records.set(name, rec);
      } catch (e) { warn(`container ${name}: unreadable record skipped (${(e as Error).message})`); }
    }
    return s;
  }

  /** Every record. */
  all(): ContainerRecord[] { return [...this.records.values()]; }

  /** Finds a container by full id, name, or unique id prefix; 404 otherwise. */
  find(ref: string): ContainerRecord {
    const byId = this.records.get(ref);
    if (byId !== undefined) return byId;
    const want = ref.startsWith('/') ? ref : '/' + ref;
    for (const r of this.records.values()) if (r.Name === want) return r;
    if (/^[0-9a-f]{1,63}$/.test(ref)) {
      const hits = this.all().filter((r) => r.Id.startsWith(ref));
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1) throw new ContainerError(400, `multiple containers match id prefix ${ref}`);
    }
    throw new ContainerError(404, `no such container: ${ref}`);
  }

  /** Checks a requested name (or picks a free adjective_noun one); the name without its slash. */
  chooseName(name: string | undefined): string {
    if (name !== undefined) {
      const n = name.replace(/^\//, '');
      if (!NAME_RE.test(n)) throw new ContainerError(400, `invalid container name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed`);
      const clash = this.all().find((r) => r.Name === '/' + n);
      if (clash !== undefined) throw new ContainerError(409, `the container name "/${n}" is already in use by container ${clash.Id.slice(0, 12)}; remove it or give another name`);
      return n;
    }
    for (;;) {
      const n = randomName();
      if (!this.all().some((r) => r.Name === '/' + n)) return n;
    }
  }

  /** A new container id (64 hex, never a prefix-clash of all digits, as Docker's stringid avoids). */
  newId(): string {
    for (;;) {
      const id = crypto.randomBytes(32).toString('hex');
      if (!/^\d+$/.test(id.slice(0, 12)) && !this.records.has(id)) return id;
    }
  }

  /** The directory of container `id`. */
  containerDir(id: string): string { return path.join(this.dir, id); }

  /** The shared unpacked-image directory for image `configDigest`. */
  rootfsDir(configDigest: string): string { return path.join(this.dir, 'rootfs', configDigest.replace(/^sha256:/, '')); }

  /** Creates the directories of a new record and saves it. */
  async add(rec: ContainerRecord): Promise<void> {
    await fsp.mkdir(rec.UpperDir, { recursive: true, mode: 0o755 });
    await fsp.writeFile(rec.LogPath, '', { mode: 0o600, flag: 'a' });
    this.records.set(rec.Id, rec);
    await this.save(rec);
  }

  /** Writes a record atomically (temp file, fsync, rename). */
  async save(rec: ContainerRecord): Promise<void> {
    if (!this.records.has(rec.Id)) return; // removed meanwhile
    const file = path.join(this.containerDir(rec.Id), 'config.json');
    const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(rec, null, 1));
      await fh.sync();
    } finally { await fh.close(); }
    await fsp.rename(tmp, file);
  }

  /** Deletes a record and its layer and log. */
  async remove(id: string): Promise<void> {
    this.records.delete(id);
    await fsp.rm(this.containerDir(id), { recursive: true, force: true });
  }

  /** Whether any container uses image `configDigest`. */
  imageInUse(configDigest: string): boolean { return this.all().some((r) => r.Image === configDigest); }
}
