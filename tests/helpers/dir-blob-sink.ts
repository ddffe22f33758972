/**
 * A directory-backed BlobSink for the registry tests: blobs under
 * DIR/blobs/sha256/HEX, written to a temporary file, checked for size and
 * SHA-256 and renamed into place (a mismatch or a failing stream leaves
 * nothing behind, as the OCI store must); refs in DIR/refs.json. It counts
 * its calls so tests can check what a pull skipped.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { BlobDescriptor, BlobSink } from '../../src/images/oci/registry.js';

/** A ref's target as setRef recorded it. */
export interface RefTarget {
  mediaType: string;
  digest: string;
  size: number;
}

/** The directory sink (see the module comment). */
export class DirBlobSink implements BlobSink {
  /** Digests given to putBlob, in order (including failed ones). */
  readonly puts: string[] = [];
  /** Refs set, in order. */
  readonly refs = new Map<string, RefTarget>();
  private tmpSeq = 0;

  /** A sink storing under `dir` (created). */
  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  }

  /** Path of a blob by digest. */
  blobPath(digest: string): string {
    const [alg, hex] = digest.split(':');
    if (alg !== 'sha256' || !hex || !/^[a-f0-9]{64}$/.test(hex)) throw new Error(`bad digest ${digest}`);
    return path.join(this.dir, 'blobs', 'sha256', hex);
  }

  /** Every blob file's digest. */
  listBlobs(): string[] {
    return fs.readdirSync(path.join(this.dir, 'blobs', 'sha256')).filter((f) => !f.startsWith('.')).map((f) => `sha256:${f}`).sort();
  }

  /** Names of leftover temporary files (must be none). */
  leftovers(): string[] {
    return fs.readdirSync(path.join(this.dir, 'blobs', 'sha256')).filter((f) => f.startsWith('.'));
  }

  /** The bytes of a stored blob. */
  read(digest: string): Buffer {
    return fs.readFileSync(this.blobPath(digest));
  }

  /** BlobSink.hasBlob. */
  async hasBlob(digest: string): Promise<boolean> {
    return fs.existsSync(this.blobPath(digest));
  }

  /** BlobSink.putBlob: write to a temp file, verify size and sha256, rename. */
  async putBlob(desc: BlobDescriptor, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    this.puts.push(desc.digest);
    const final = this.blobPath(desc.digest);
    const tmp = path.join(path.dirname(final), `.tmp-${process.pid}-${this.tmpSeq++}`);
    const hash = crypto.createHash('sha256');
    let size = 0;
    const fh = await fsp.open(tmp, 'w');
    try {
      const chunks: AsyncIterable<Uint8Array> | Uint8Array[] = data instanceof Uint8Array ? [data] : data;
      for await (const c of chunks) {
        hash.update(c);
        size += c.length;
        await fh.write(c);
      }
      await fh.close();
      const got = `sha256:${hash.digest('hex')}`;
      if (size !== desc.size || got !== desc.digest) throw new Error(`blob ${desc.digest}: got ${got}, ${size} bytes (want ${desc.size})`);
      await fsp.rename(tmp, final);
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      throw e;
    }
  }

  /** BlobSink.setRef: every blob of the manifest must be present. */
  async setRef(ref: string, desc: RefTarget): Promise<void> {
    if (!(await this.hasBlob(desc.digest))) throw new Error(`setRef ${ref}: manifest ${desc.digest} missing`);
    const m = JSON.parse(this.read(desc.digest).toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [m.config.digest, ...m.layers.map((l) => l.digest)]) {
      if (!(await this.hasBlob(d))) throw new Error(`setRef ${ref}: blob ${d} missing`);
    }
    this.refs.set(ref, desc);
    await fsp.writeFile(path.join(this.dir, 'refs.json'), JSON.stringify(Object.fromEntries(this.refs), null, 1));
  }
}
