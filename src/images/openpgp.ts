/**
 * Just enough OpenPGP (RFC 4880 / RFC 9580) to check a Debian `InRelease`
 * file: the cleartext signature framework, ASCII armor, packet framing,
 * v4 public keys (RSA and EdDSA/Ed25519) and v4 signatures, verified with
 * node:crypto.
 *
 * Trust model: every primary key and subkey in the given keyring file is
 * trusted as-is (the keyring is a root-owned system file). Key expiry,
 * revocation and subkey-binding signatures are not evaluated.
 */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { ImageError } from './errors.js';

/** The Debian archive keyring installed by the `debian-archive-keyring` package. */
export const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** The parts of a clearsigned message. */
export interface Clearsigned {
  /** Values of the `Hash:` armor headers (e.g. ["SHA256"]). */
  hashHeaders: string[];
  /** The message text, dash-unescaped, lines joined with "\n" (no final newline). */
  text: string;
  /** The bytes the signatures cover: lines with trailing blanks removed, joined by CRLF. */
  signedData: Buffer;
  /** The de-armored signature packets. */
  signature: Buffer;
}

/** A public key or subkey usable for verification. */
export interface PgpPublicKey {
  /** v4 fingerprint, 40 upper-case hex digits. */
  fingerprint: string;
  /** Key ID (last 16 hex digits of the fingerprint). */
  keyId: string;
  /** 'rsa' or 'ed25519'. */
  algorithm: 'rsa' | 'ed25519';
  /** The key for node:crypto. */
  key: crypto.KeyObject;
  /** True for a subkey packet (tag 14). */
  subkey: boolean;
}

/** Outcome of checking one signature packet. */
export interface SignatureCheck {
  /** Issuer fingerprint or key ID as found in the signature (upper-case hex), or '' if absent. */
  issuer: string;
  /** Fingerprint of the key that verified it, when it did. */
  verifiedBy?: string;
  /** Why it did not verify, when it did not. */
  reason?: string;
}

const CRC24_INIT = 0xb704ce;
const CRC24_POLY = 0x1864cfb;

/** CRC-24 of the OpenPGP armor checksum (RFC 4880 §6.1). */
export function crc24(data: Uint8Array): number {
  let crc = CRC24_INIT;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= CRC24_POLY;
    }
  }
  return crc & 0xffffff;
}

/** Decode the base64 body of an armored block given its lines after BEGIN; checks the CRC when present. */
function decodeArmorBody(lines: string[], what: string): Buffer {
  let i = 0;
  // Armor headers ("Key: value") end at the first blank line; a block may have none.
  while (i < lines.length && (lines[i] ?? '').trim() !== '' && /^[^\s:]+: /.test(lines[i] ?? '')) i++;
  if (i < lines.length && (lines[i] ?? '').trim() === '') i++;
  let b64 = '';
  let crc: string | null = null;
  for (; i < lines.length; i++) {
    const l = (lines[i] ?? '').trim();
    if (l.startsWith('-----END PGP ')) break;
    if (l === '') continue;
    if (l.startsWith('=') && l.length === 5) {
      crc = l.slice(1);
      continue;
    }
    if (!/^[A-Za-z0-9+/=]+$/.test(l)) throw new ImageError(`${what}: invalid base64 in armor`);
    b64 += l;
  }
  if (i >= lines.length) throw new ImageError(`${what}: missing armor END line`);
  const data = Buffer.from(b64, 'base64');
  if (crc !== null) {
    const want = Buffer.from(crc, 'base64');
    const got = crc24(data);
    if (want.length !== 3 || want.readUIntBE(0, 3) !== got) {
      throw new ImageError(`${what}: armor checksum mismatch`);
    }
  }
  return data;
}

/** Decode an ASCII-armored block (any type) into its binary packets. */
export function dearmor(text: string, what = 'armor'): Buffer {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const begin = lines.findIndex((l) => /^-----BEGIN PGP [A-Z ,/0-9]+-----\s*$/.test(l));
  if (begin < 0) throw new ImageError(`${what}: no armor BEGIN line`);
  return decodeArmorBody(lines.slice(begin + 1), what);
}

/** Split a clearsigned message (RFC 4880 §7) into headers, text, signed bytes and signature. */
export function splitClearsigned(input: string | Buffer, what = 'clearsigned message'): Clearsigned {
  const text = typeof input === 'string' ? input : input.toString('latin1');
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  let i = 0;
  while (i < lines.length && (lines[i] ?? '').trim() === '') i++;
  if ((lines[i] ?? '').trimEnd() !== '-----BEGIN PGP SIGNED MESSAGE-----') {
    throw new ImageError(`${what}: not a clearsigned message (no BEGIN PGP SIGNED MESSAGE line)`);
  }
  i++;
  const hashHeaders: string[] = [];
  for (; i < lines.length && (lines[i] ?? '').trim() !== ''; i++) {
    const m = /^Hash:\s*(.+)$/.exec(lines[i] ?? '');
    if (!m) throw new ImageError(`${what}: unexpected armor header ${JSON.stringify(lines[i])}`);
    for (const h of (m[1] ?? '').split(',')) hashHeaders.push(h.trim());
  }
  if (i >= lines.length) throw new ImageError(`${what}: truncated header`);
  i++; // blank line
  const body: string[] = [];
  for (; i < lines.length; i++) {
    const l = lines[i] ?? '';
    if (l.trimEnd() === '-----BEGIN PGP SIGNATURE-----') break;
    if (l.startsWith('- ')) body.push(l.slice(2));
    else if (l.startsWith('-')) {
      throw new ImageError(`${what}: line ${i + 1} is not dash-escaped`);
    } else body.push(l);
  }
  if (i >= lines.length) throw new ImageError(`${what}: missing BEGIN PGP SIGNATURE line`);
  const signature = decodeArmorBody(lines.slice(i + 1), what);
  const canon = body.map((l) => l.replace(/[ \t]+$/, '')).join('\r\n');
  const joined = body.join('\n');
  return {
    hashHeaders,
    text: typeof input === 'string' ? joined : Buffer.from(joined, 'latin1').toString('utf8'),
    signedData: Buffer.from(canon, 'latin1'),
    signature,
  };
}

/** One OpenPGP packet. */
export interface PgpPacket {
  /** Packet tag (2 = signature, 6 = public key, 14 = public subkey, ...). */
  tag: number;
  /** Packet body. */
  body: Buffer;
}

/** Split binary OpenPGP data into packets (old and new framing, partial lengths). */
export function parsePackets(data: Buffer, what = 'OpenPGP data'): PgpPacket[] {
  const out: PgpPacket[] = [];
  let p = 0;
  const need = (n: number): void => {
    if (p + n > data.length) throw new ImageError(`${what}: truncated packet at offset ${p}`);
  };
  while (p < data.length) {
    need(1);
    const hdr = data[p++] ?? 0;
    if ((hdr & 0x80) === 0) throw new ImageError(`${what}: bad packet header byte 0x${hdr.toString(16)}`);
    if (hdr & 0x40) {
      const tag = hdr & 0x3f;
      const chunks: Buffer[] = [];
      for (;;) {
        need(1);
        const o1 = data[p++] ?? 0;
        let len: number;
        let partial = false;
        if (o1 < 192) len = o1;
        else if (o1 < 224) {
          need(1);
          len = ((o1 - 192) << 8) + (data[p++] ?? 0) + 192;
        } else if (o1 === 255) {
          need(4);
          len = data.readUInt32BE(p);
          p += 4;
        } else {
          len = 1 << (o1 & 0x1f);
          partial = true;
        }
        need(len);
        chunks.push(data.subarray(p, p + len));
        p += len;
        if (!partial) break;
      }
      out.push({ tag, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) });
    } else {
      const tag = (hdr >> 2) & 0x0f;
      const lt = hdr & 3;
      let len: number;
      if (lt === 3) len = data.length - p;
      else {
        const n = lt === 0 ? 1 : lt === 1 ? 2 : 4;
        need(n);
        len = data.readUIntBE(p, n);
        p += n;
      }
      need(len);
      out.push({ tag, body: data.subarray(p, p + len) });
      p += len;
    }
  }
  return out;
}

/** Read an MPI at `off`; returns its magnitude bytes and the offset after it. */
function readMpi(b: Buffer, off: number, what: string): [Buffer, number] {
  if (off + 2 > b.length) throw new ImageError(`${what}: truncated MPI`);
  const bits = b.readUInt16BE(off);
  const n = (bits + 7) >> 3;
  if (off + 2 + n > b.length) throw new ImageError(`${what}: truncated MPI`);
  return [b.subarray(off + 2, off + 2 + n), off + 2 + n];
}

const ED25519_OID = Buffer.from('2b06010401da470f01', 'hex');

/** Strip leading zero bytes (for JWK integers). */
function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** Decode one public-key packet body; null for unsupported versions/algorithms. */
function parsePublicKey(body: Buffer, subkey: boolean): PgpPublicKey | null {
  const what = 'public key packet';
  if (body.length < 6 || body[0] !== 4) return null; // only v4 keys
  const algo = body[5];
  const fingerprint = crypto
    .createHash('sha1')
    .update(Buffer.from([0x99, (body.length >> 8) & 0xff, body.length & 0xff]))
    .update(body)
    .digest('hex')
    .toUpperCase();
  const keyId = fingerprint.slice(-16);
  if (algo === 1 || algo === 3) {
    const [n, off] = readMpi(body, 6, what);
    const [e] = readMpi(body, off, what);
    const key = crypto.createPublicKey({
      key: { kty: 'RSA', n: stripZeros(n).toString('base64url'), e: stripZeros(e).toString('base64url') },
      format: 'jwk',
    });
    return { fingerprint, keyId, algorithm: 'rsa', key, subkey };
  }
  if (algo === 22) {
    const oidLen = body[6] ?? 0;
    const oid = body.subarray(7, 7 + oidLen);
    if (!oid.equals(ED25519_OID)) return null;
    const [point] = readMpi(body, 7 + oidLen, what);
    if (point.length !== 33 || point[0] !== 0x40) return null;
    const key = crypto.createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: point.subarray(1).toString('base64url') },
      format: 'jwk',
    });
    return { fingerprint, keyId, algorithm: 'ed25519', key, subkey };
  }
  return null;
}

/** Parse a keyring (binary or armored) into the v4 RSA/Ed25519 primary keys and subkeys it holds. */
export function parseKeyring(data: Buffer, what = 'keyring'): PgpPublicKey[] {
  const head = data.subarray(0, 64).toString('latin1');
  const bin = head.includes('-----BEGIN PGP') ? dearmor(data.toString('latin1'), what) : data;
  const keys: PgpPublicKey[] = [];
  for (const pkt of parsePackets(bin, what)) {
    if (pkt.tag !== 6 && pkt.tag !== 14) continue;
    const k = parsePublicKey(pkt.body, pkt.tag === 14);
    if (k) keys.push(k);
  }
  return keys;
}

/** Load and parse a keyring file; null when the file does not exist. */
export function loadKeyring(file: string = DEBIAN_ARCHIVE_KEYRING): PgpPublicKey[] | null {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ImageError(`cannot read keyring ${file}: ${(e as Error).message}`);
  }
  return parseKeyring(data, file);
}

const HASHES: Record<number, string> = { 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };

/** Check one v4 signature packet over `data` against `keys`. */
export function checkSignature(sig: Buffer, data: Buffer, keys: PgpPublicKey[]): SignatureCheck {
  const fail = (issuer: string, reason: string): SignatureCheck => ({ issuer, reason });
  if (sig.length < 6 || sig[0] !== 4) return fail('', `unsupported signature version ${sig[0] ?? '?'}`);
  const sigType = sig[1] ?? 0;
  const pubAlgo = sig[2] ?? 0;
  const hashAlgo = sig[3] ?? 0;
  const hashedLen = sig.readUInt16BE(4);
  if (6 + hashedLen + 2 > sig.length) return fail('', 'truncated signature packet');
  const hashedPart = sig.subarray(0, 6 + hashedLen);
  const unhashedLen = sig.readUInt16BE(6 + hashedLen);
  let off = 8 + hashedLen + unhashedLen;
  if (off + 2 > sig.length) return fail('', 'truncated signature packet');
  const left16 = sig.readUInt16BE(off);
  off += 2;

  let issuerFp = '';
  let issuerId = '';
  const scan = (sp: Buffer): void => {
    let q = 0;
    while (q < sp.length) {
      const o1 = sp[q++] ?? 0;
      let len: number;
      if (o1 < 192) len = o1;
      else if (o1 < 255) len = ((o1 - 192) << 8) + (sp[q++] ?? 0) + 192;
      else {
        if (q + 4 > sp.length) return;
        len = sp.readUInt32BE(q);
        q += 4;
      }
      if (len < 1 || q + len > sp.length) return;
      const type = (sp[q] ?? 0) & 0x7f;
      const val = sp.subarray(q + 1, q + len);
      if (type === 33 && val[0] === 4) issuerFp = val.subarray(1).toString('hex').toUpperCase();
      if (type === 16) issuerId = val.toString('hex').toUpperCase();
      q += len;
    }
  };
  scan(sig.subarray(6, 6 + hashedLen));
  scan(sig.subarray(8 + hashedLen, 8 + hashedLen + unhashedLen));
  const issuer = issuerFp || issuerId;

  if (sigType !== 0x00 && sigType !== 0x01) return fail(issuer, `signature type 0x${sigType.toString(16)} is not a document signature`);
  const hashName = HASHES[hashAlgo];
  if (hashName === undefined) return fail(issuer, `unsupported hash algorithm ${hashAlgo}`);
  const candidates = keys.filter((k) =>
    issuerFp ? k.fingerprint === issuerFp : issuerId ? k.keyId === issuerId : true,
  );
  if (candidates.length === 0) return fail(issuer, 'issuer key not in keyring');

  const trailer = Buffer.alloc(6);
  trailer[0] = 4;
  trailer[1] = 0xff;
  trailer.writeUInt32BE(hashedPart.length, 2);
  const signed = Buffer.concat([data, hashedPart, trailer]);
  const digest = crypto.createHash(hashName).update(signed).digest();
  if (digest.readUInt16BE(0) !== left16) return fail(issuer, 'digest prefix mismatch');

  try {
    if (pubAlgo === 1 || pubAlgo === 3) {
      const [s] = readMpi(sig, off, 'signature');
      for (const k of candidates) {
        if (k.algorithm !== 'rsa') continue;
        const modBytes = ((k.key.asymmetricKeyDetails?.modulusLength ?? s.length * 8) + 7) >> 3;
        const padded = s.length >= modBytes ? s : Buffer.concat([Buffer.alloc(modBytes - s.length), s]);
        if (crypto.verify(hashName, signed, { key: k.key, padding: crypto.constants.RSA_PKCS1_PADDING }, padded)) {
          return { issuer, verifiedBy: k.fingerprint };
        }
      }
    } else if (pubAlgo === 22) {
      const [r, o2] = readMpi(sig, off, 'signature');
      const [s] = readMpi(sig, o2, 'signature');
      if (r.length > 32 || s.length > 32) return fail(issuer, 'malformed EdDSA signature');
      const rs = Buffer.alloc(64);
      r.copy(rs, 32 - r.length);
      s.copy(rs, 64 - s.length);
      for (const k of candidates) {
        if (k.algorithm !== 'ed25519') continue;
        if (crypto.verify(null, digest, k.key, rs)) return { issuer, verifiedBy: k.fingerprint };
      }
    } else {
      return fail(issuer, `unsupported public-key algorithm ${pubAlgo}`);
    }
  } catch (e) {
    if (e instanceof ImageError) return fail(issuer, e.message);
    return fail(issuer, `verification error: ${(e as Error).message}`);
  }
  return fail(issuer, 'bad signature');
}

/** Result of verifying a clearsigned message. */
export interface ClearsignedVerification {
  /** The parsed message. */
  message: Clearsigned;
  /** Fingerprints of the keys whose signatures verified (at least one). */
  signers: string[];
  /** Per-signature results, in packet order. */
  checks: SignatureCheck[];
}

/** Verify a clearsigned message; throws ImageError unless at least one signature verifies against `keys`. */
export function verifyClearsigned(
  input: string | Buffer,
  keys: PgpPublicKey[],
  what = 'clearsigned message',
): ClearsignedVerification {
  const message = splitClearsigned(input, what);
  const checks: SignatureCheck[] = [];
  for (const pkt of parsePackets(message.signature, what)) {
    if (pkt.tag !== 2) continue;
    checks.push(checkSignature(pkt.body, message.signedData, keys));
  }
  const signers = checks.flatMap((c) => (c.verifiedBy !== undefined ? [c.verifiedBy] : []));
  if (signers.length === 0) {
    const why = checks.map((c) => `${c.issuer || '?'}: ${c.reason ?? '?'}`).join('; ');
    throw new ImageError(`${what}: no valid signature from a trusted key (${why || 'no signatures'})`);
  }
  return { message, signers, checks };
}
