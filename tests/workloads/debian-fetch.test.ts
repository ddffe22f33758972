/**
 * Workload: fetch busybox-static for trixie/riscv64 from the real Debian
 * archive (mirror from the host apt configuration or $TSVM_MIRROR), check
 * the InRelease -> Packages -> .deb SHA-256 chain, unpack it and check that
 * bin/busybox is a RISC-V ELF. Needs network access to the mirror; results
 * are cached (see defaultCacheDir), so only the first run is slow.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mirrorConfigured } from '../helpers/mirror.js';
import { extractDeb } from '../../src/images/deb.js';
import { DebianArchive, sha256File } from '../../src/images/debian-archive.js';
import { DEBIAN_ARCHIVE_KEYRING } from '../../src/images/openpgp.js';

const EM_RISCV = 243;

test('busybox-static trixie/riscv64: verified fetch and unpack', { skip: !mirrorConfigured() && 'no Debian mirror configured', timeout: 600_000 }, async () => {
  const archive = new DebianArchive();
  const rel = await archive.release();
  if (fs.existsSync(DEBIAN_ARCHIVE_KEYRING)) {
    assert.ok(rel.signers !== null && rel.signers.length >= 1, 'InRelease signed by a Debian archive key');
  }
  assert.equal(rel.release.fields.get('codename'), 'trixie');

  // InRelease -> Packages index
  const idxFile = await archive.indexFile();
  const listed = rel.release.files.get(idxFile.releasePath);
  assert.ok(listed, `${idxFile.releasePath} listed in InRelease`);
  assert.equal(await sha256File(idxFile.path), listed.sha256);
  assert.equal(fs.statSync(idxFile.path).size, listed.size);

  // Packages -> .deb
  const pkg = (await archive.index()).get('busybox-static');
  assert.ok(pkg, 'busybox-static in the index');
  assert.equal(pkg.architecture, 'riscv64');
  const deb = await archive.fetchDeb('busybox-static');
  assert.equal(await sha256File(deb), pkg.sha256);
  assert.equal(fs.statSync(deb).size, pkg.size);

  // Unpack into a merged-/usr root and check the binary.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-busybox-'));
  try {
    fs.mkdirSync(path.join(root, 'usr', 'bin'), { recursive: true });
    fs.symlinkSync('usr/bin', path.join(root, 'bin'));
    const st = await extractDeb(deb, root);
    assert.ok(st.files > 0);
    const elf = fs.readFileSync(path.join(root, 'bin', 'busybox'));
    assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'ELF magic');
    assert.equal(elf[4], 2, 'ELFCLASS64');
    assert.equal(elf[5], 1, 'little-endian');
    assert.equal(elf.readUInt16LE(18), EM_RISCV, 'e_machine is EM_RISCV');
    assert.ok(fs.statSync(path.join(root, 'bin', 'busybox')).mode & 0o100, 'executable');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
