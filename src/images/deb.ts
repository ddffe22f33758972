/**
 * Open Debian binary packages (.deb): an `ar` archive holding
 * `debian-binary` ("2.0\n"), `control.tar.*` and `data.tar.*`. The data
 * tarball is decompressed (xz, gzip, or none; zstd when node:zlib has it)
 * and extracted into a directory.
 */

import * as fsp from 'node:fs/promises';
import * as zlib from 'node:zlib';
import xzDecompress from 'xz-decompress';
import { parseAr, type ArMember } from './ar.js';
import { ImageError } from './errors.js';
import { extractTar, type ExtractOptions, type TarStats } from './tar.js';

/** Compression of a tarball member, from its file-name extension. */
export type Compression = 'xz' | 'gz' | 'zst' | 'none';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** Decompress an xz buffer with the pure-wasm decoder; throws ImageError on corrupt data. */
export async function xzDecompressBuffer(data: Buffer, what = 'xz data'): Promise<Buffer> {
  if (data.length < 6 || !data.subarray(0, 6).equals(XZ_MAGIC)) throw new ImageError(`${what}: not xz data (bad magic)`);
  try {
    const src = new ReadableStream<Uint8Array>({
      start(c): void {
        c.enqueue(data);
        c.close();
      },
    });
    const stream = new xzDecompress.XzReadableStream(src);
    return Buffer.from(await new Response(stream).arrayBuffer());
  } catch (e) {
    const msg = (e as Error).message;
    const code = /error code (\d+)/.exec(msg)?.[1];
    const why = code === '8' ? 'truncated' : code === '7' || code === '5' ? 'corrupt' : `undecodable (${msg})`;
    throw new ImageError(`${what}: xz data is ${why}`, { cause: e });
  }
}

/** Decompress `data` of the given compression; throws ImageError on corruption or zstd without support. */
export async function decompress(data: Buffer, kind: Compression, what = 'data'): Promise<Buffer> {
  switch (kind) {
    case 'none':
      return data;
    case 'xz':
      return xzDecompressBuffer(data, what);
    case 'gz':
      try {
        return zlib.gunzipSync(data);
      } catch (e) {
        throw new ImageError(`${what}: corrupt gzip data: ${(e as Error).message}`, { cause: e });
      }
    case 'zst': {
      const z = zlib as unknown as { zstdDecompressSync?: (b: Buffer) => Buffer };
      if (typeof z.zstdDecompressSync !== 'function') {
        throw new ImageError(`${what}: zstd compression is not supported by this Node.js (${process.version}); need >= 22.15`);
      }
      try {
        return z.zstdDecompressSync(data);
      } catch (e) {
        throw new ImageError(`${what}: corrupt zstd data: ${(e as Error).message}`, { cause: e });
      }
    }
  }
}

/** The compression implied by a member name such as `data.tar.xz`, or null if it isn't `<prefix>.tar[.ext]`. */
export function tarCompression(name: string, prefix: string): Compression | null {
  if (name === `${prefix}.tar`) return 'none';
  const m = new RegExp(`^${prefix}\\.tar\\.(xz|gz|zst)$`).exec(name);
  return m ? (m[1] as Compression) : null;
}

/** The parsed top level of a .deb. */
export interface DebParts {
  /** The control tarball member. */
  control: ArMember;
  /** The data tarball member. */
  data: ArMember;
}

/** Check the .deb container and locate its control and data members; throws ImageError when malformed. */
export function openDeb(deb: Buffer, what = '.deb'): DebParts {
  let members: ArMember[];
  try {
    members = parseAr(deb);
  } catch (e) {
    throw new ImageError(`${what}: ${(e as Error).message}`, { cause: e });
  }
  const first = members[0];
  if (first === undefined || first.name !== 'debian-binary') throw new ImageError(`${what}: first member is not debian-binary`);
  if (!/^2\.\d+\n/.test(first.data.toString('latin1'))) {
    throw new ImageError(`${what}: unsupported deb format version ${JSON.stringify(first.data.toString('latin1').trim())}`);
  }
  const control = members.find((m) => tarCompression(m.name, 'control') !== null);
  const data = members.find((m) => tarCompression(m.name, 'data') !== null);
  if (control === undefined) throw new ImageError(`${what}: no control.tar member`);
  if (data === undefined) throw new ImageError(`${what}: no data.tar member`);
  return { control, data };
}

/** Decompress the data tarball of a .deb and return the tar bytes. */
export async function debDataTar(deb: Buffer, what = '.deb'): Promise<Buffer> {
  const { data } = openDeb(deb, what);
  return decompress(data.data, tarCompression(data.name, 'data') as Compression, `${what} ${data.name}`);
}

/** Extract the data tarball of a .deb (path or bytes) into `destDir`. */
export async function extractDeb(deb: string | Buffer, destDir: string, opts: ExtractOptions = {}): Promise<TarStats> {
  const what = typeof deb === 'string' ? deb : '.deb';
  const bytes = typeof deb === 'string' ? await fsp.readFile(deb) : deb;
  const tar = await debDataTar(bytes, what);
  try {
    return await extractTar(tar, destDir, opts);
  } catch (e) {
    if (e instanceof ImageError) throw new ImageError(`${what}: ${e.message}`, { cause: e });
    throw e;
  }
}
