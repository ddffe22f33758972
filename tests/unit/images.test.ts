/**
 * Unit tests for src/images: apt sources, Release/Packages parsing, OpenPGP
 * clearsigned verification, ar, tar and .deb extraction, and the archive
 * client against a fake archive served on 127.0.0.1.
 */

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';
import {
  findHostMirror,
  isDebianArchiveUri,
  parseDeb822Sources,
  parseOneLineSources,
  resolveMirror,
  type AptFs,
} from '../../src/images/apt-sources.js';
import { buildAr, parseAr } from '../../src/images/ar.js';
import { decompress, extractDeb, openDeb } from '../../src/images/deb.js';
import { parseDeb822, parsePackages, parseRelations, parseRelease } from '../../src/images/deb-index.js';
import { DebianArchive, ROOT_STAMP } from '../../src/images/debian-archive.js';
import { ImageError } from '../../src/images/errors.js';
import { crc24, parseKeyring, splitClearsigned, verifyClearsigned } from '../../src/images/openpgp.js';
import { removeAbandonedParts, selectMinbase } from '../../src/images/rootfs-build.js';
import { extractTar, safeEntryPath } from '../../src/images/tar.js';

const tmpdirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-images-'));
  tmpdirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers: OpenPGP

function mpi(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  const bits = (v.length - 1) * 8 + (32 - Math.clz32(v[0] ?? 0));
  const h = Buffer.alloc(2);
  h.writeUInt16BE(bits);
  return Buffer.concat([h, v]);
}

function packet(tag: number, body: Buffer): Buffer {
  const h = Buffer.alloc(6);
  h[0] = 0xc0 | tag;
  h[1] = 255;
  h.writeUInt32BE(body.length, 2);
  return Buffer.concat([h, body]);
}

interface TestKey {
  priv: crypto.KeyObject;
  body: Buffer;
  fp: Buffer;
  algo: 'rsa' | 'ed25519';
}

function makeKey(algo: 'rsa' | 'ed25519'): TestKey {
  const time = Buffer.from([0x60, 0, 0, 0]);
  let body: Buffer;
  let priv: crypto.KeyObject;
  if (algo === 'rsa') {
    const kp = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = kp.publicKey.export({ format: 'jwk' });
    body = Buffer.concat([Buffer.from([4]), time, Buffer.from([1]), mpi(Buffer.from(jwk.n ?? '', 'base64url')), mpi(Buffer.from(jwk.e ?? '', 'base64url'))]);
    priv = kp.privateKey;
  } else {
    const kp = crypto.generateKeyPairSync('ed25519');
    const x = Buffer.from(kp.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
    const oid = Buffer.from('2b06010401da470f01', 'hex');
    body = Buffer.concat([Buffer.from([4]), time, Buffer.from([22, oid.length]), oid, mpi(Buffer.concat([Buffer.from([0x40]), x]))]);
    priv = kp.privateKey;
  }
  const fp = crypto.createHash('sha1').update(Buffer.from([0x99, body.length >> 8, body.length & 0xff])).update(body).digest();
  return { priv, body, fp, algo };
}

function signaturePacket(key: TestKey, signedData: Buffer): Buffer {
  const hashed = Buffer.concat([
    Buffer.from([5, 2, 0x66, 0, 0, 0]), // creation time
    Buffer.from([22, 33, 4]),
    key.fp, // issuer fingerprint
  ]);
  const head = Buffer.from([4, 0x01, key.algo === 'rsa' ? 1 : 22, 8, hashed.length >> 8, hashed.length & 0xff]);
  const hashedPart = Buffer.concat([head, hashed]);
  const trailer = Buffer.alloc(6);
  trailer[0] = 4;
  trailer[1] = 0xff;
  trailer.writeUInt32BE(hashedPart.length, 2);
  const all = Buffer.concat([signedData, hashedPart, trailer]);
  const digest = crypto.createHash('sha256').update(all).digest();
  let mpis: Buffer;
  if (key.algo === 'rsa') mpis = mpi(crypto.sign('sha256', all, key.priv));
  else {
    const rs = crypto.sign(null, digest, key.priv);
    mpis = Buffer.concat([mpi(rs.subarray(0, 32)), mpi(rs.subarray(32))]);
  }
  const unhashed = Buffer.concat([Buffer.from([9, 16]), key.fp.subarray(12)]);
  return packet(2, Buffer.concat([hashedPart, Buffer.from([0, unhashed.length]), unhashed, digest.subarray(0, 2), mpis]));
}

function armor(kind: string, data: Buffer): string {
  const b64 = data.toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  const crc = Buffer.alloc(3);
  crc.writeUIntBE(crc24(data), 0, 3);
  return `-----BEGIN PGP ${kind}-----\n\n${b64}\n=${crc.toString('base64')}\n-----END PGP ${kind}-----\n`;
}

function clearsign(text: string, keys: TestKey[]): string {
  const lines = text.split('\n');
  const signed = Buffer.from(lines.map((l) => l.replace(/[ \t]+$/, '')).join('\r\n'));
  const sigs = Buffer.concat(keys.map((k) => signaturePacket(k, signed)));
  const escaped = lines.map((l) => (l.startsWith('-') ? `- ${l}` : l)).join('\n');
  return `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${escaped}\n${armor('SIGNATURE', sigs)}`;
}

function keyring(keys: TestKey[]): Buffer {
  return Buffer.concat(keys.map((k) => packet(6, k.body)));
}

// ---------------------------------------------------------------- apt sources

describe('apt-sources', () => {
  const oneLine = [
    '# comment',
    'deb-src http://src.example/debian bookworm main',
    'deb [arch=amd64 signed-by=/k.gpg] https://other.example/apt stable main',
    'deb http://sec.example/debian-security bookworm-security main',
    'deb [ arch=amd64 ] http://mirror.example/debian/ bookworm main # trailing',
  ].join('\n');
  const deb822 = [
    'Types: deb',
    'URIs: http://sec.example/debian-security',
    'Suites: bookworm-security',
    '',
    '# disabled',
    'Types: deb',
    'URIs: http://off.example/debian',
    'Enabled: no',
    '',
    'Types: deb-src deb',
    'URIs: ftp://ftp.example/debian',
    ' https://m822.example/debian',
    'Suites: trixie',
    'Components: main',
  ].join('\n');

  test('one-line format', () => {
    const s = parseOneLineSources(oneLine);
    assert.deepEqual(
      s.map((x) => x.uri),
      ['https://other.example/apt', 'http://sec.example/debian-security', 'http://mirror.example/debian/'],
    );
    assert.deepEqual(s[2]?.suites, ['bookworm']);
  });

  test('deb822 format with continuation and disabled stanza', () => {
    const s = parseDeb822Sources(deb822);
    assert.deepEqual(
      s.map((x) => x.uri),
      ['http://sec.example/debian-security', 'ftp://ftp.example/debian', 'https://m822.example/debian'],
    );
    assert.deepEqual(s[2]?.suites, ['trixie']);
  });

  test('archive URI filter', () => {
    assert.equal(isDebianArchiveUri('http://a.example/debian'), true);
    assert.equal(isDebianArchiveUri('https://a.example/pub/debian/'), true);
    assert.equal(isDebianArchiveUri('http://a.example/debian-security'), false);
    assert.equal(isDebianArchiveUri('ftp://a.example/debian'), false);
    assert.equal(isDebianArchiveUri('not a url'), false);
  });

  test('host mirror discovery order and overrides', () => {
    const files: Record<string, string> = {
      '/etc/apt/sources.list.d/b.sources': deb822,
      '/etc/apt/sources.list.d/a.list': 'deb http://sec.example/debian-security x main\n',
      '/etc/apt/sources.list.d/c.list.disabled': 'deb http://no.example/debian x main\n',
    };
    const fake: AptFs = {
      readFile: (f) => files[f] ?? null,
      readDir: (d) => (d === '/etc/apt/sources.list.d' ? Object.keys(files).map((f) => path.basename(f)) : []),
    };
    assert.equal(findHostMirror(fake), 'https://m822.example/debian');
    files['/etc/apt/sources.list'] = oneLine;
    assert.equal(findHostMirror(fake), 'http://mirror.example/debian');
    assert.equal(resolveMirror(undefined, {}, fake), 'http://mirror.example/debian');
    assert.equal(resolveMirror(undefined, { TSVM_MIRROR: 'http://env.example/debian/' }, fake), 'http://env.example/debian');
    assert.equal(resolveMirror('https://x.example/debian', { TSVM_MIRROR: 'http://env.example/debian' }, fake), 'https://x.example/debian');
    assert.throws(() => resolveMirror('file:///debian', {}, fake), ImageError);
    const empty: AptFs = { readFile: () => null, readDir: () => [] };
    assert.throws(() => resolveMirror(undefined, {}, empty), /no Debian mirror found/);
  });
});

// ---------------------------------------------------------------- Release / Packages

const RELEASE_TEXT = [
  'Origin: Debian',
  'Suite: stable',
  'Codename: trixie',
  'Acquire-By-Hash: yes',
  'MD5Sum:',
  ' 0123456789abcdef0123456789abcdef 10 main/binary-riscv64/Packages',
  'SHA256:',
  ` ${'a'.repeat(64)}   100 main/binary-riscv64/Packages`,
  ` ${'B'.repeat(64)}    42 main/binary-riscv64/Packages.xz`,
].join('\n');

const PACKAGES_TEXT = `Package: foo
Version: 1.0-1
Architecture: riscv64
Depends: libc6 (>= 2.34), libx1 | liby:any (<< 3) [riscv64], virt
Pre-Depends: base
Provides: foo-virt (= 1.0)
Description: a test
 continued line
 .
 more
Filename: pool/main/f/foo/foo_1.0-1_riscv64.deb
Size: 1234
SHA256: ${'c'.repeat(64)}

Package: bar
Version: 2
Architecture: all
Essential: yes
Priority: required
Filename: pool/main/b/bar/bar_2_all.deb
Size: 1
SHA256: ${'d'.repeat(64)}
`;

describe('deb-index', () => {
  test('parseRelease: plain text', () => {
    const r = parseRelease(RELEASE_TEXT);
    assert.equal(r.fields.get('codename'), 'trixie');
    assert.equal(r.fields.get('acquire-by-hash'), 'yes');
    assert.equal(r.fields.has('md5sum'), false);
    assert.deepEqual(r.files.get('main/binary-riscv64/Packages'), { sha256: 'a'.repeat(64), size: 100 });
    assert.deepEqual(r.files.get('main/binary-riscv64/Packages.xz'), { sha256: 'b'.repeat(64), size: 42 });
  });

  test('parseRelease: clearsigned InRelease snippet', () => {
    const k = makeKey('ed25519');
    const r = parseRelease(clearsign(RELEASE_TEXT, [k]));
    assert.equal(r.files.size, 2);
    assert.equal(r.fields.get('suite'), 'stable');
  });

  test('parseRelease: corrupt inputs', () => {
    assert.throws(() => parseRelease(''), ImageError);
    assert.throws(() => parseRelease('Origin: x\n'), /no SHA256 field/);
    assert.throws(() => parseRelease('SHA256:\n abc 1 x\n'), /malformed SHA256 line/);
    assert.throws(() => parseRelease('-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSHA256:\n'), /missing BEGIN PGP SIGNATURE/);
  });

  test('parsePackages', () => {
    const pkgs = parsePackages(PACKAGES_TEXT);
    assert.equal(pkgs.length, 2);
    const foo = pkgs[0];
    assert.ok(foo);
    assert.equal(foo.name, 'foo');
    assert.equal(foo.size, 1234);
    assert.deepEqual(foo.depends, [['libc6'], ['libx1', 'liby'], ['virt']]);
    assert.deepEqual(foo.preDepends, [['base']]);
    assert.deepEqual(foo.provides, ['foo-virt']);
    assert.equal(pkgs[1]?.architecture, 'all');
    assert.deepEqual(pkgs[1]?.depends, []);
    assert.equal(foo.essential, false);
    assert.equal(foo.priority, undefined);
    assert.equal(pkgs[1]?.essential, true);
    assert.equal(pkgs[1]?.priority, 'required');
  });

  test('selectMinbase: Essential, Priority required, and apt', () => {
    const base = { version: '1', architecture: 'riscv64', filename: 'pool/x.deb', size: 1, sha256: 'e'.repeat(64), depends: [], preDepends: [], provides: [] };
    const index = new Map([
      ['dash', { ...base, name: 'dash', essential: true, priority: 'required' }],
      ['mawk', { ...base, name: 'mawk', essential: false, priority: 'required' }],
      ['init-tools', { ...base, name: 'init-tools', essential: true, priority: 'important' }],
      ['hello', { ...base, name: 'hello', essential: false, priority: 'optional' }],
      ['apt', { ...base, name: 'apt', essential: false, priority: 'important' }],
      ['vim', { ...base, name: 'vim', priority: 'optional' }],
    ]);
    assert.deepEqual(selectMinbase(index), ['apt', 'dash', 'init-tools', 'mawk']);
  });

  test('parseDeb822 keeps continuation lines', () => {
    const [p] = parseDeb822(PACKAGES_TEXT);
    assert.equal(p?.get('description'), 'a test\ncontinued line\n.\nmore');
  });

  test('parsePackages: corrupt inputs', () => {
    assert.throws(() => parsePackages('Package: x\nVersion: 1\n'), /stanza x: missing \w+ field/);
    assert.throws(() => parsePackages(PACKAGES_TEXT.replace('c'.repeat(64), 'zz')), /bad SHA256/);
    assert.throws(() => parsePackages(PACKAGES_TEXT.replace('Size: 1234', 'Size: 12x')), /bad Size/);
    assert.throws(() => parsePackages(PACKAGES_TEXT.replace('pool/main/b/bar', '../etc')), /unsafe Filename/);
    assert.throws(() => parsePackages(' leading continuation\n'), /continuation line without a field/);
    assert.throws(() => parsePackages('garbage line\n'), /expected "Field: value"/);
    assert.throws(() => parseRelations('good, B@D'), /bad package name/);
  });
});

// ---------------------------------------------------------------- OpenPGP

describe('openpgp', () => {
  const text = 'Codename: trixie\n-dash line\ntrailing blanks   \t\nend';
  const rsa = makeKey('rsa');
  const ed = makeKey('ed25519');
  const other = makeKey('ed25519');

  test('clearsigned split: dash-unescape and canonical form', () => {
    const m = splitClearsigned(clearsign(text, [ed]));
    assert.equal(m.text, text);
    assert.deepEqual(m.hashHeaders, ['SHA256']);
    assert.equal(m.signedData.toString(), 'Codename: trixie\r\n-dash line\r\ntrailing blanks\r\nend');
  });

  test('RSA and Ed25519 signatures verify; one good one suffices', () => {
    const keys = parseKeyring(keyring([rsa, ed]));
    assert.deepEqual(keys.map((k) => k.algorithm), ['rsa', 'ed25519']);
    const v = verifyClearsigned(clearsign(text, [rsa, ed]), keys);
    assert.deepEqual(v.signers, [rsa.fp.toString('hex').toUpperCase(), ed.fp.toString('hex').toUpperCase()]);
    const v2 = verifyClearsigned(clearsign(text, [other, ed]), keys);
    assert.deepEqual(v2.signers, [ed.fp.toString('hex').toUpperCase()]);
    assert.equal(v2.checks[0]?.reason, 'issuer key not in keyring');
    // Armored keyrings work too.
    assert.equal(parseKeyring(Buffer.from(armor('PUBLIC KEY BLOCK', keyring([ed])))).length, 1);
  });

  test('tampered text, unknown signer, bad armor are rejected', () => {
    const keys = parseKeyring(keyring([rsa, ed]));
    const signed = clearsign(text, [rsa, ed]);
    assert.throws(() => verifyClearsigned(signed.replace('trixie', 'trixiE'), keys), /no valid signature/);
    assert.throws(() => verifyClearsigned(clearsign(text, [other]), keys), /issuer key not in keyring/);
    // Keep the digest prefix but break the signature bytes themselves.
    const single = clearsign(text, [rsa]);
    const sigs = splitClearsigned(single).signature;
    const broken = Buffer.from(sigs);
    const last = broken.length - 5;
    broken[last] = (broken[last] ?? 0) ^ 0xff;
    const forged = single.slice(0, single.indexOf('-----BEGIN PGP SIGNATURE-----')) + armor('SIGNATURE', broken);
    assert.throws(() => verifyClearsigned(forged, keys), /no valid signature/);
    const badCrc = signed.replace(/\n=(....)\n/, '\n=AAAA\n');
    assert.throws(() => verifyClearsigned(badCrc, keys), /armor checksum mismatch/);
    assert.throws(() => verifyClearsigned('hello', keys), /not a clearsigned message/);
    assert.throws(() => parseKeyring(Buffer.from([0x99, 0x01])), /truncated packet/);
    assert.throws(() => parseKeyring(Buffer.from([0x01])), /bad packet header/);
  });
});

// ---------------------------------------------------------------- ar

describe('ar', () => {
  test('round trip with odd sizes', () => {
    const ar = buildAr([
      { name: 'debian-binary', data: Buffer.from('2.0\n') },
      { name: 'odd', data: Buffer.from('abc') },
      { name: 'empty', data: Buffer.alloc(0) },
    ]);
    const m = parseAr(ar);
    assert.deepEqual(m.map((x) => [x.name, x.data.toString()]), [['debian-binary', '2.0\n'], ['odd', 'abc'], ['empty', '']]);
    assert.equal(m[0]?.mode, 0o100644);
  });

  test('GNU long names and BSD names', () => {
    const table = Buffer.from('a-very-long-member-name.txt/\n\n'); // even length
    const hdr = (name: string, size: number): string =>
      name.padEnd(16) + '0'.padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '644'.padEnd(8) + String(size).padEnd(10) + '`\n';
    const bsdName = 'bsd-long-name.bin';
    const buf = Buffer.concat([
      Buffer.from('!<arch>\n'),
      Buffer.from(hdr('//', table.length)), table,
      Buffer.from(hdr('/0', 2)), Buffer.from('hi'),
      Buffer.from(hdr(`#1/${bsdName.length}`, bsdName.length + 3)), Buffer.from(`${bsdName}xyz`), Buffer.from('\n'),
    ]);
    const m = parseAr(buf);
    assert.deepEqual(m.map((x) => [x.name, x.data.toString()]), [['a-very-long-member-name.txt', 'hi'], [bsdName, 'xyz']]);
  });

  test('corrupt archives give clean errors', () => {
    const good = buildAr([{ name: 'x', data: Buffer.from('hello!') }]);
    assert.throws(() => parseAr(Buffer.from('!<arch')), /bad magic/);
    assert.throws(() => parseAr(Buffer.from('not an archive at all')), /bad magic/);
    assert.throws(() => parseAr(good.subarray(0, 30)), /truncated member header/);
    assert.throws(() => parseAr(good.subarray(0, good.length - 2)), /claims 6 bytes/);
    const badTerm = Buffer.from(good);
    badTerm[8 + 58] = 0x41;
    assert.throws(() => parseAr(badTerm), /bad member header terminator/);
    const badSize = Buffer.from(good);
    badSize.write('12z45     ', 8 + 48, 'latin1');
    assert.throws(() => parseAr(badSize), (e: unknown) => e instanceof ImageError && /bad size/.test(e.message));
  });
});

// ---------------------------------------------------------------- tar

interface TEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo';
  body?: string;
  mode?: number;
  linkname?: string;
}

async function makeTar(entries: TEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const h = { name: e.name, type: e.type ?? 'file', mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), linkname: e.linkname };
      pack.entry(h, e.body ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe('tar', () => {
  test('extracts files, modes, dirs, symlinks, hard links', async () => {
    const dest = path.join(tmp(), 'root');
    const tar = await makeTar([
      { name: './', type: 'directory' },
      { name: './usr/', type: 'directory' },
      { name: './usr/bin/', type: 'directory' },
      { name: './usr/bin/tool', body: '#!/bin/sh\n', mode: 0o4755 },
      { name: './usr/bin/alias', type: 'symlink', linkname: 'tool' },
      { name: './usr/bin/hard', type: 'link', linkname: './usr/bin/tool' },
      { name: './etc/conf', body: 'x=1\n' },
      { name: './dev/fifo', type: 'fifo' },
    ]);
    const st = await extractTar(tar, dest);
    assert.deepEqual(st, { files: 2, dirs: 3, symlinks: 1, hardlinks: 1, skipped: 1 });
    assert.equal(fs.readFileSync(path.join(dest, 'usr/bin/tool'), 'utf8'), '#!/bin/sh\n');
    assert.equal(fs.statSync(path.join(dest, 'usr/bin/tool')).mode & 0o7777, 0o755); // setuid dropped
    assert.equal(fs.statSync(path.join(dest, 'etc/conf')).mode & 0o777, 0o644);
    assert.equal(fs.readlinkSync(path.join(dest, 'usr/bin/alias')), 'tool');
    assert.equal(fs.statSync(path.join(dest, 'usr/bin/hard')).ino, fs.statSync(path.join(dest, 'usr/bin/tool')).ino);
    // Re-extracting over the existing tree works (idempotent).
    await extractTar(tar, dest);
  });

  test('preserve keeps owners and setuid, setgid and sticky bits', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
    const dest = path.join(tmp(), 'root');
    const pack = tarStream.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    const ended = new Promise<void>((r) => {
      pack.on('end', () => r());
    });
    pack.entry({ name: 'tmp/', type: 'directory', mode: 0o1777, uid: 0, gid: 0 });
    pack.entry({ name: 'var/mail/', type: 'directory', mode: 0o2775, uid: 0, gid: 8 });
    pack.entry({ name: 'usr/bin/su', mode: 0o4755, uid: 0, gid: 0 }, 'su');
    pack.entry({ name: 'usr/bin/wall', mode: 0o2755, uid: 0, gid: 5 }, 'wall');
    pack.entry({ name: 'usr/bin/link', type: 'symlink', linkname: 'su', uid: 7, gid: 9 });
    pack.finalize();
    await ended;
    const tar = Buffer.concat(chunks);
    await extractTar(tar, dest, { preserve: true });
    const st = (p: string): fs.Stats => fs.lstatSync(path.join(dest, p));
    assert.equal(st('tmp').mode & 0o7777, 0o1777);
    assert.equal(st('var/mail').mode & 0o7777, 0o2775);
    assert.equal(st('var/mail').gid, 8);
    assert.equal(st('usr/bin/su').mode & 0o7777, 0o4755);
    assert.equal(st('usr/bin/wall').mode & 0o7777, 0o2755);
    assert.equal(st('usr/bin/wall').gid, 5);
    assert.deepEqual([st('usr/bin/link').uid, st('usr/bin/link').gid], [7, 9]);
    // Without preserve, the special bits are dropped (the default, as before).
    const plain = path.join(tmp(), 'root');
    await extractTar(tar, plain);
    assert.equal(fs.statSync(path.join(plain, 'usr/bin/su')).mode & 0o7777, 0o755);
  });

  test('refuses absolute and .. paths', async () => {
    assert.throws(() => safeEntryPath('/etc/passwd'), /absolute/);
    assert.throws(() => safeEntryPath('a/../../x'), /"\.\."/);
    assert.deepEqual(safeEntryPath('./a//b/./c'), ['a', 'b', 'c']);
    const base = tmp();
    const dest = path.join(base, 'root');
    await assert.rejects(extractTar(await makeTar([{ name: '../evil', body: 'x' }]), dest), ImageError);
    await assert.rejects(extractTar(await makeTar([{ name: 'ok/../../evil', body: 'x' }]), dest), /refusing/);
    await assert.rejects(extractTar(await makeTar([{ name: 'h', type: 'link', linkname: '../../etc/passwd' }]), dest), /refusing/);
    assert.equal(fs.existsSync(path.join(base, 'evil')), false);
  });

  test('symlinks cannot redirect writes outside the destination', async () => {
    const base = tmp();
    const dest = path.join(base, 'root');
    fs.mkdirSync(path.join(base, 'outside'));
    const tar = await makeTar([
      { name: 'up', type: 'symlink', linkname: '../../../outside' },
      { name: 'abs', type: 'symlink', linkname: path.join(base, 'outside') },
      { name: 'up/a', body: 'A' },
      { name: 'abs/b', body: 'B' },
    ]);
    await extractTar(tar, dest);
    assert.deepEqual(fs.readdirSync(path.join(base, 'outside')), []);
    // Resolved as if dest were "/": "up" -> /outside, "abs" -> <dest><base>/outside.
    assert.equal(fs.readFileSync(path.join(dest, 'outside/a'), 'utf8'), 'A');
    assert.equal(fs.readFileSync(path.join(dest, base, 'outside/b'), 'utf8'), 'B');
  });

  test('corrupt tar gives an ImageError', async () => {
    const tar = await makeTar([{ name: 'f', body: 'x'.repeat(2000) }]);
    await assert.rejects(extractTar(tar.subarray(0, 700), tmp()), ImageError);
    const garbage = Buffer.alloc(1024, 0x41);
    await assert.rejects(extractTar(garbage, tmp()), ImageError);
  });
});

// ---------------------------------------------------------------- .deb

async function makeDeb(files: TEntry[], comp: 'gz' | 'none' = 'gz'): Promise<Buffer> {
  const data = await makeTar(files);
  const control = await makeTar([{ name: './control', body: 'Package: t\n' }]);
  return buildAr([
    { name: 'debian-binary', data: Buffer.from('2.0\n') },
    { name: 'control.tar.gz', data: zlib.gzipSync(control) },
    comp === 'gz' ? { name: 'data.tar.gz', data: zlib.gzipSync(data) } : { name: 'data.tar', data },
  ]);
}

describe('deb', () => {
  test('extracts data.tar.gz and data.tar', async () => {
    for (const comp of ['gz', 'none'] as const) {
      const dest = tmp();
      const deb = await makeDeb([{ name: './usr/bin/hello', body: 'hi', mode: 0o755 }], comp);
      const st = await extractDeb(deb, dest);
      assert.equal(st.files, 1);
      assert.equal(fs.readFileSync(path.join(dest, 'usr/bin/hello'), 'utf8'), 'hi');
    }
  });

  test('malformed .deb files give clean errors', async () => {
    const tarball = zlib.gzipSync(await makeTar([{ name: 'x', body: 'x' }]));
    const v2 = { name: 'debian-binary', data: Buffer.from('2.0\n') };
    assert.throws(() => openDeb(Buffer.from('junk')), /bad magic/);
    assert.throws(() => openDeb(buildAr([{ name: 'control.tar.gz', data: tarball }])), /first member is not debian-binary/);
    assert.throws(() => openDeb(buildAr([{ name: 'debian-binary', data: Buffer.from('3.0\n') }])), /unsupported deb format/);
    assert.throws(() => openDeb(buildAr([v2, { name: 'control.tar.gz', data: tarball }])), /no data\.tar member/);
    const bad = buildAr([v2, { name: 'control.tar.gz', data: tarball }, { name: 'data.tar.gz', data: Buffer.from('not gzip') }]);
    await assert.rejects(extractDeb(bad, tmp()), /corrupt gzip data/);
    await assert.rejects(decompress(Buffer.from('not xz at all'), 'xz'), /not xz data/);
    const zst = zlib as unknown as { zstdDecompressSync?: unknown };
    if (typeof zst.zstdDecompressSync !== 'function') {
      await assert.rejects(decompress(Buffer.alloc(8), 'zst'), /zstd compression is not supported/);
    }
  });
});

// ---------------------------------------------------------------- archive client (fake local archive)

async function captureStderr(fn: () => Promise<void>): Promise<string[]> {
  const orig = process.stderr.write;
  const lines: string[] = [];
  process.stderr.write = ((s: string) => (lines.push(s), true)) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = orig;
  }
  return lines;
}

describe('DebianArchive against a local fake archive', () => {
  const served = new Map<string, Buffer>();
  const hits: string[] = [];
  let server: http.Server;
  let mirror = '';
  let work = '';
  const key = makeKey('ed25519');
  const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

  before(async () => {
    work = tmp();
    fs.writeFileSync(path.join(work, 'keyring.gpg'), keyring([key]));
    const debs: Record<string, { deb: Buffer; fields: string }> = {
      app: { deb: await makeDeb([{ name: './usr/bin/app', body: 'APP', mode: 0o755 }]), fields: 'Depends: libfoo (>= 1) | libbar, virt\nPre-Depends: base' },
      libfoo: { deb: await makeDeb([{ name: './usr/lib/libfoo.so.1', body: 'FOO' }]), fields: 'Depends: base' },
      libbar: { deb: await makeDeb([{ name: './usr/lib/libbar.so.1', body: 'BAR' }]), fields: '' },
      prov: { deb: await makeDeb([{ name: './usr/share/prov', body: 'P' }]), fields: 'Provides: virt' },
      base: { deb: await makeDeb([{ name: './bin/base', body: 'B' }]), fields: '' },
      broken: { deb: await makeDeb([{ name: './x', body: 'x' }]), fields: 'Depends: nowhere' },
    };
    let packages = '';
    for (const [name, { deb, fields }] of Object.entries(debs)) {
      const filename = `pool/main/${name[0]}/${name}/${name}_1_riscv64.deb`;
      served.set(`/debian/${filename}`, deb);
      packages += `Package: ${name}\nVersion: 1\nArchitecture: riscv64\n${fields ? `${fields}\n` : ''}Filename: ${filename}\nSize: ${deb.length}\nSHA256: ${sha(deb)}\n\n`;
    }
    const gz = zlib.gzipSync(Buffer.from(packages));
    const release = `Codename: trixie\nSuite: testing\nSHA256:\n ${sha(gz)} ${gz.length} main/binary-riscv64/Packages.gz\n`;
    served.set('/debian/dists/trixie/InRelease', Buffer.from(clearsign(release, [key])));
    served.set('/debian/dists/trixie/main/binary-riscv64/Packages.gz', gz);
    // A corrupt copy of libbar is served in place of "tampered".
    served.set('/debian/pool/main/t/tampered/tampered_1_riscv64.deb', Buffer.from('tampered bytes'));
    server = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      const body = served.get(req.url ?? '');
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    mirror = `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const archive = (extra: Partial<{ keyring: string | null; refresh: boolean }> = {}): DebianArchive =>
    new DebianArchive({ mirror, cacheDir: path.join(work, 'cache'), progress: false, keyring: path.join(work, 'keyring.gpg'), ...extra });

  test('verified index, fetch, resolve and install', async () => {
    const a = archive();
    const rel = await a.release();
    assert.deepEqual(rel.signers, [key.fp.toString('hex').toUpperCase()]);
    const idx = await a.index();
    assert.equal(idx.size, 6);
    const deb = await a.fetchDeb('libbar');
    assert.equal(sha(fs.readFileSync(deb)), idx.get('libbar')?.sha256);
    const order = (await a.resolveDeps(['app'])).map((p) => p.name);
    assert.deepEqual(order, ['app', 'base', 'libfoo', 'prov']);
    await assert.rejects(a.resolveDeps(['broken']), /unresolvable dependency "nowhere" of broken/);
    await assert.rejects(a.fetchDeb('nope'), /no package "nope"/);

    const root = path.join(work, 'root');
    await a.installRoot(['app'], root);
    assert.equal(fs.readFileSync(path.join(root, 'usr/bin/app'), 'utf8'), 'APP');
    assert.equal(fs.readFileSync(path.join(root, 'usr/bin/base'), 'utf8'), 'B'); // via bin -> usr/bin
    assert.equal(fs.readlinkSync(path.join(root, 'bin')), 'usr/bin');
    assert.ok(fs.existsSync(path.join(root, ROOT_STAMP)));
    const before = hits.length;
    await archive().installRoot(['app'], root); // second run: all from cache, stamp matches
    assert.equal(hits.length, before);
  });

  test('checksum mismatch: one-line error, nothing cached', async () => {
    const a = archive();
    const idx = await a.index();
    const good = idx.get('libbar');
    assert.ok(good);
    const bad = { ...good, name: 'tampered', filename: 'pool/main/t/tampered/tampered_1_riscv64.deb', size: 14 };
    await assert.rejects(a.fetchPackage(bad), (e: unknown) => e instanceof ImageError && /^SHA-256 mismatch for tampered_1_riscv64\.deb: expected [0-9a-f]{64}, got [0-9a-f]{64} \(file removed\)$/.test(e.message));
    const dir = path.join(work, 'cache', 'debian', 'pool', 'main', 't', 'tampered');
    assert.deepEqual(fs.readdirSync(dir), []);
    await assert.rejects(a.fetchPackage({ ...bad, size: 3 }), /server sent more than the expected 3 bytes/);
  });

  test('a cached file that went bad is fetched again', async () => {
    const a = archive();
    const deb = await a.fetchDeb('libfoo');
    fs.writeFileSync(deb, 'garbage');
    const lines = await captureStderr(async () => {
      assert.equal(await a.fetchDeb('libfoo'), deb);
    });
    assert.match(lines.join(''), /is corrupt; fetching it again/);
    assert.notEqual(fs.readFileSync(deb, 'utf8'), 'garbage');
  });

  test('bad InRelease signature is fatal and not cached', async () => {
    const orig = served.get('/debian/dists/trixie/InRelease') as Buffer;
    served.set('/debian/dists/trixie/InRelease', Buffer.from(orig.toString().replace('Suite: testing', 'Suite: testinG')));
    const cache = path.join(work, 'cache2');
    try {
      const a = new DebianArchive({ mirror, cacheDir: cache, progress: false, keyring: path.join(work, 'keyring.gpg') });
      await assert.rejects(a.index(), /no valid signature/);
      const dists = fs.readdirSync(path.join(cache, 'debian', 'dists'));
      const suiteDir = path.join(cache, 'debian', 'dists', dists[0] ?? '', 'trixie');
      assert.deepEqual(fs.readdirSync(suiteDir), []);
    } finally {
      served.set('/debian/dists/trixie/InRelease', orig);
    }
  });

  test('missing keyring: one-line notice, unsigned check skipped', async () => {
    const lines = await captureStderr(async () => {
      const a = new DebianArchive({ mirror, cacheDir: path.join(work, 'cache4'), progress: false, keyring: path.join(work, 'nope.gpg') });
      assert.equal((await a.release()).signers, null);
    });
    assert.deepEqual(lines, [`tsvm: keyring ${path.join(work, 'nope.gpg')} not found; InRelease signature not checked\n`]);
  });

  test('a cached InRelease that no longer verifies is fetched again', async () => {
    await archive().release();
    const cached = fs.readdirSync(path.join(work, 'cache', 'debian', 'dists'));
    const file = path.join(work, 'cache', 'debian', 'dists', cached[0] ?? '', 'trixie', 'InRelease');
    fs.writeFileSync(file, 'garbage');
    const lines = await captureStderr(async () => {
      assert.equal((await archive().release()).signers?.length, 1);
    });
    assert.match(lines.join(''), /cached InRelease rejected \(.*not a clearsigned message.*\); fetching it again/);
    assert.notEqual(fs.readFileSync(file, 'utf8'), 'garbage');
  });

  test('missing or mismatched suite is rejected', async () => {
    const mk = (suite: string): DebianArchive =>
      new DebianArchive({ mirror, suite, cacheDir: path.join(work, 'cache3'), progress: false, keyring: null });
    await assert.rejects(mk('sid').release(), /HTTP 404/);
    served.set('/debian/dists/bookworm/InRelease', served.get('/debian/dists/trixie/InRelease') as Buffer);
    await assert.rejects(mk('bookworm').release(), /it is for trixie, not bookworm/);
  });
});

test('a root build killed before its cleanup leaves a DEST.part-PID tree; the next build removes it, not a running builder\'s', async () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-parts-'));
  try {
    const dest = path.join(d, 'debian');
    // PID_MAX_LIMIT is 4194304 (Linux include/linux/threads.h): no process has pid 999999999.
    for (const n of ['debian.part-999999999-0a1b2c3d', `debian.part-${process.pid}-00ff00ff`, 'busybox.part-999999999-11223344']) fs.mkdirSync(path.join(d, n, 'usr'), { recursive: true });
    await removeAbandonedParts(dest);
    assert.deepEqual(fs.readdirSync(d).sort(), ['busybox.part-999999999-11223344', `debian.part-${process.pid}-00ff00ff`]);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});
