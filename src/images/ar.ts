/**
 * Parser for Unix `ar` archives, the container format of .deb files.
 * Supports the common (System V / GNU) format including the GNU long-name
 * table, and BSD `#1/len` names. Members are returned as views into the
 * input buffer.
 */

import { ImageError } from './errors.js';

/** One member of an ar archive. */
export interface ArMember {
  /** Member name (GNU trailing '/' removed). */
  name: string;
  /** Modification time (seconds since the epoch). */
  mtime: number;
  /** File mode bits. */
  mode: number;
  /** Member contents (a view into the archive buffer). */
  data: Buffer;
}

/** The 8-byte magic at the start of every ar archive. */
export const AR_MAGIC = '!<arch>\n';
const HEADER = 60;

/** Parse a decimal or octal numeric header field; throws ImageError on garbage. */
function num(field: string, radix: number, what: string, off: number): number {
  const s = field.trim();
  if (s === '') return 0;
  const re = radix === 8 ? /^[0-7]+$/ : /^\d+$/;
  if (!re.test(s)) throw new ImageError(`ar: bad ${what} ${JSON.stringify(s)} in member header at offset ${off}`);
  return parseInt(s, radix);
}

/** Parse an ar archive into its members (excluding the GNU symbol and long-name tables). */
export function parseAr(buf: Buffer): ArMember[] {
  if (buf.length < 8 || buf.toString('latin1', 0, 8) !== AR_MAGIC) {
    throw new ImageError('ar: not an ar archive (bad magic)');
  }
  const out: ArMember[] = [];
  let longNames: Buffer | null = null;
  let p = 8;
  while (p < buf.length) {
    if (buf.length - p === 1 && buf[p] === 0x0a) break; // stray final padding byte
    if (p + HEADER > buf.length) throw new ImageError(`ar: truncated member header at offset ${p}`);
    const h = buf.toString('latin1', p, p + HEADER);
    if (h.slice(58, 60) !== '`\n') throw new ImageError(`ar: bad member header terminator at offset ${p}`);
    let name = h.slice(0, 16).trimEnd();
    const mtime = num(h.slice(16, 28), 10, 'mtime', p);
    const mode = num(h.slice(40, 48), 8, 'mode', p);
    const size = num(h.slice(48, 58), 10, 'size', p);
    const start = p + HEADER;
    if (start + size > buf.length) {
      throw new ImageError(`ar: member ${JSON.stringify(name)} at offset ${p} claims ${size} bytes, only ${buf.length - start} left`);
    }
    let data = buf.subarray(start, start + size);
    p = start + size + (size & 1);

    if (name === '/' || name === '/SYM64/' || name === '__.SYMDEF' || name === '__.SYMDEF SORTED') continue;
    if (name === '//') {
      longNames = data;
      continue;
    }
    if (/^#1\/\d+$/.test(name)) {
      const n = Number(name.slice(3));
      if (n > data.length) throw new ImageError(`ar: BSD long name longer than member at offset ${start - HEADER}`);
      name = data.toString('utf8', 0, n).replace(/\0+$/, '');
      data = data.subarray(n);
    } else if (/^\/\d+$/.test(name)) {
      if (longNames === null) throw new ImageError(`ar: long name reference ${name} without a // table`);
      const off = Number(name.slice(1));
      if (off >= longNames.length) throw new ImageError(`ar: long name reference ${name} out of range`);
      let end = longNames.indexOf('/\n', off, 'latin1');
      if (end < 0) end = longNames.length;
      name = longNames.toString('utf8', off, end);
    } else if (name.endsWith('/')) {
      name = name.slice(0, -1);
    }
    if (name === '') throw new ImageError(`ar: empty member name at offset ${start - HEADER}`);
    out.push({ name, mtime, mode, data });
  }
  return out;
}

/** Build an ar archive from members (short names only); used for tests and tooling. */
export function buildAr(members: { name: string; data: Buffer; mode?: number; mtime?: number }[]): Buffer {
  const parts: Buffer[] = [Buffer.from(AR_MAGIC, 'latin1')];
  for (const m of members) {
    if (m.name.length > 15) throw new ImageError(`ar: member name too long for buildAr: ${m.name}`);
    const h =
      `${m.name}/`.padEnd(16) +
      String(m.mtime ?? 0).padEnd(12) +
      '0'.padEnd(6) +
      '0'.padEnd(6) +
      (m.mode ?? 0o100644).toString(8).padEnd(8) +
      String(m.data.length).padEnd(10) +
      '`\n';
    parts.push(Buffer.from(h, 'latin1'), m.data);
    if (m.data.length & 1) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}
