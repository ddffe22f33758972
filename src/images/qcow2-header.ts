/**
 * The qcow2 header (QEMU's docs/interop/qcow2.txt, "Header" and "Header
 * extensions"): parsing and validation. Everything a corrupt or truncated
 * file can get wrong here is reported as one ImageError line at open time.
 * All numbers are big-endian; 64-bit fields are read as two 32-bit halves
 * and must stay below 2^53.
 */
import type { SyncFile } from '../host/file-io.js';
import { ImageError } from './errors.js';

/** "QFI\xfb" (qcow2 spec, header bytes 0-3). */
export const QCOW2_MAGIC = 0x514649fb;
/** Header length of version 2 and the minimum for version 3 (qcow2 spec, "Header"). */
const V2_HEADER_LEN = 72, V3_MIN_HEADER_LEN = 104;
/** cluster_bits range: at least 9 (512 bytes); QEMU's limit is 21 (2 MiB) (qcow2 spec, bytes 20-23). */
export const MIN_CLUSTER_BITS = 9, MAX_CLUSTER_BITS = 21;
/** QEMU's implementation limits: 32 MiB L1 table, 8 MiB refcount table (qcow2 spec, bytes 24-31 and "Host cluster management"). */
const MAX_L1_BYTES = 32 * 1024 * 1024, MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
/** Longest backing file name (qcow2 spec, bytes 16-19). */
const MAX_BACKING_NAME = 1023;
/** Incompatible feature bits (qcow2 spec, bytes 72-79). */
export const INCOMPAT_DIRTY = 1, INCOMPAT_CORRUPT = 2, INCOMPAT_DATA_FILE = 4, INCOMPAT_COMPRESSION = 8, INCOMPAT_EXTL2 = 16;
const KNOWN_INCOMPAT = 0x1f;
/** Header extension types (qcow2 spec, "Header extensions"). */
const EXT_END = 0, EXT_BACKING_FORMAT = 0xe2792aca, EXT_FEATURE_TABLE = 0x6803f857;
/** Feature name table entries are 48 bytes: type, bit, 46-byte name (qcow2 spec, "Feature name table"). */
const FEATURE_ENTRY = 48;

/** The parsed, validated header of a qcow2 image. */
export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  clusterSize: number;
  /** Virtual disk size in bytes. */
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  refcountOrder: number;
  nbSnapshots: number;
  /** Incompatible feature bits 0-31 (higher bits are rejected). */
  incompatible: number;
  /** Auto-clear feature bits (low and high words). */
  autoclearLo: number;
  autoclearHi: number;
  headerLength: number;
  /** Backing file name as stored, if any. */
  backingFile?: string;
  /** Backing file format from the header extension, if present. */
  backingFormat?: string;
}

/** Reads a big-endian u64 that must fit in a double exactly. */
function u64(dv: DataView, off: number, what: string, file: string): number {
  const hi = dv.getUint32(off), lo = dv.getUint32(off + 4);
  if (hi >= 0x200000) throw new ImageError(`${file}: corrupt qcow2 image: ${what} is too large`);
  return hi * 4294967296 + lo;
}

/** True if `head` (at least 4 bytes) starts with the qcow2 magic. */
export function hasQcow2Magic(head: Uint8Array): boolean {
  return head.length >= 4 && new DataView(head.buffer, head.byteOffset, 4).getUint32(0) === QCOW2_MAGIC;
}

/** Names of feature bits from the feature name table extension, keyed "type:bit". */
function featureNames(dv: DataView, off: number, len: number): Map<string, string> {
  const names = new Map<string, string>();
  for (let p = off; p + FEATURE_ENTRY <= off + len; p += FEATURE_ENTRY) {
    let name = '';
    for (let i = 2; i < FEATURE_ENTRY; i++) {
      const c = dv.getUint8(p + i);
      if (c === 0) break;
      name += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?';
    }
    names.set(`${dv.getUint8(p)}:${dv.getUint8(p + 1)}`, name);
  }
  return names;
}

/** Parses and validates the header in the first cluster of `file`; throws ImageError. */
export function readQcow2Header(file: SyncFile): Qcow2Header {
  const name = file.path, fileSize = file.size();
  const bad = (msg: string): ImageError => new ImageError(`${name}: corrupt qcow2 image: ${msg}`);
  const unsupported = (msg: string): ImageError => new ImageError(`${name}: unsupported qcow2 image: ${msg}`);
  if (fileSize < V2_HEADER_LEN) throw new ImageError(`${name}: truncated qcow2 image (${fileSize} bytes, header needs ${V2_HEADER_LEN})`);
  const first = new Uint8Array(Math.min(fileSize, 1 << MAX_CLUSTER_BITS));
  file.pread(first, 0);
  const dv = new DataView(first.buffer);
  if (dv.getUint32(0) !== QCOW2_MAGIC) throw new ImageError(`${name}: not a qcow2 image (bad magic)`);
  const version = dv.getUint32(4);
  if (version !== 2 && version !== 3) throw unsupported(`version ${version} (tsvm reads versions 2 and 3)`);
  const clusterBits = dv.getUint32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) throw bad(`cluster_bits ${clusterBits} outside ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS}`);
  const clusterSize = 2 ** clusterBits;
  let headerLength = V2_HEADER_LEN, refcountOrder = 4, incompatible = 0, autoclearLo = 0, autoclearHi = 0, compressionType = 0;
  if (version === 3) {
    if (fileSize < V3_MIN_HEADER_LEN) throw new ImageError(`${name}: truncated qcow2 image (${fileSize} bytes, header needs ${V3_MIN_HEADER_LEN})`);
    headerLength = dv.getUint32(100);
    if (headerLength < V3_MIN_HEADER_LEN || headerLength % 8 !== 0 || headerLength > clusterSize) throw bad(`header_length ${headerLength}`);
    if (headerLength > fileSize) throw new ImageError(`${name}: truncated qcow2 image (header_length ${headerLength} > file size ${fileSize})`);
    const incHi = dv.getUint32(72);
    incompatible = dv.getUint32(76);
    autoclearHi = dv.getUint32(88); autoclearLo = dv.getUint32(92);
    refcountOrder = dv.getUint32(96);
    if (refcountOrder > 6) throw bad(`refcount_order ${refcountOrder} (at most 6)`);
    if (headerLength > 104) compressionType = dv.getUint8(104);
    if (incHi !== 0 || (incompatible & ~KNOWN_INCOMPAT) !== 0) {
      throw unsupported(`unknown incompatible features 0x${incHi.toString(16)}${(incompatible >>> 0).toString(16).padStart(8, '0')}`);
    }
  }
  const size = u64(dv, 24, 'virtual size', name);
  const cryptMethod = dv.getUint32(32);
  const l1Size = dv.getUint32(36);
  const l1TableOffset = u64(dv, 40, 'L1 table offset', name);
  const refcountTableOffset = u64(dv, 48, 'refcount table offset', name);
  const refcountTableClusters = dv.getUint32(56);
  const nbSnapshots = dv.getUint32(60);
  const backingOffset = u64(dv, 8, 'backing file offset', name), backingSize = dv.getUint32(16);

  // Header extensions, directly after the header, within the first cluster.
  let backingFormat: string | undefined, names = new Map<string, string>();
  const extEnd = Math.min(first.length, clusterSize);
  for (let p = headerLength; p + 8 <= extEnd;) {
    const type = dv.getUint32(p), len = dv.getUint32(p + 4);
    if (type === EXT_END) break;
    if (p + 8 + len > extEnd) throw bad(`header extension 0x${type.toString(16)} runs past the first cluster`);
    if (type === EXT_BACKING_FORMAT) backingFormat = new TextDecoder().decode(first.subarray(p + 8, p + 8 + len));
    else if (type === EXT_FEATURE_TABLE) names = featureNames(dv, p + 8, len);
    p += 8 + Math.ceil(len / 8) * 8;
  }
  const feature = (bit: number, dflt: string): string => names.get(`0:${bit}`) ?? dflt;
  if (incompatible & INCOMPAT_DATA_FILE) throw unsupported(`${feature(2, 'external data file')} (incompatible feature bit 2)`);
  if (incompatible & INCOMPAT_EXTL2) throw unsupported(`${feature(4, 'extended L2 entries')} (incompatible feature bit 4)`);
  if ((incompatible & INCOMPAT_COMPRESSION) || compressionType !== 0) {
    throw unsupported(`compression type ${compressionType === 1 ? 'zstd' : compressionType} (only zlib is supported)`);
  }
  if (cryptMethod !== 0) throw unsupported(`encryption (crypt_method ${cryptMethod})`);

  // Tables must be aligned and lie inside the file.
  if (l1TableOffset % clusterSize !== 0) throw bad(`L1 table offset 0x${l1TableOffset.toString(16)} is not cluster-aligned`);
  if (l1Size * 8 > MAX_L1_BYTES) throw bad(`L1 table of ${l1Size} entries is too large`);
  const l2Entries = clusterSize / 8, needL1 = Math.ceil(size / (clusterSize * l2Entries));
  if (l1Size < needL1) throw bad(`L1 table has ${l1Size} entries; a ${size}-byte disk needs ${needL1}`);
  if (l1Size > 0 && l1TableOffset === 0) throw bad('L1 table offset is 0');
  if (l1Size > 0 && l1TableOffset + l1Size * 8 > fileSize) {
    throw new ImageError(`${name}: truncated qcow2 image (L1 table at 0x${l1TableOffset.toString(16)} ends past end of file, ${fileSize} bytes)`);
  }
  if (refcountTableOffset === 0 || refcountTableOffset % clusterSize !== 0) throw bad(`refcount table offset 0x${refcountTableOffset.toString(16)}`);
  if (refcountTableClusters === 0 || refcountTableClusters * clusterSize > MAX_REFTABLE_BYTES) throw bad(`refcount table of ${refcountTableClusters} clusters`);
  if (refcountTableOffset >= fileSize) {
    throw new ImageError(`${name}: truncated qcow2 image (refcount table at 0x${refcountTableOffset.toString(16)} past end of file, ${fileSize} bytes)`);
  }

  let backingFile: string | undefined;
  if (backingOffset !== 0) {
    if (backingSize > MAX_BACKING_NAME) throw bad(`backing file name of ${backingSize} bytes (at most ${MAX_BACKING_NAME})`);
    if (backingOffset + backingSize > first.length) throw bad('backing file name lies outside the first cluster or the file');
    backingFile = new TextDecoder().decode(first.subarray(backingOffset, backingOffset + backingSize));
    if (backingFile === '') backingFile = undefined;
  }
  return {
    version, clusterBits, clusterSize, size, l1Size, l1TableOffset, refcountTableOffset, refcountTableClusters,
    refcountOrder, nbSnapshots, incompatible, autoclearLo, autoclearHi, headerLength,
    ...(backingFile !== undefined ? { backingFile } : {}), ...(backingFormat !== undefined ? { backingFormat } : {}),
  };
}
