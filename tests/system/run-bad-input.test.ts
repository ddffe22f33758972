/**
 * `tsvm run` rejects bad input with one clear line on stderr and a
 * non-zero exit status, never a stack trace: missing or corrupt kernels,
 * an initrd larger than RAM, bad -m / -smp values and unknown machines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TSVM_CLI } from '../helpers/console-session.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-run-bad-'));

function tsvmRun(args: string[]): { status: number; stderr: string; stdout: string } {
  const r = spawnSync('node', [TSVM_CLI, 'run', ...args], { encoding: 'utf8', timeout: 60_000, input: '' });
  return { status: r.status ?? -1, stderr: r.stderr, stdout: r.stdout };
}

function expectOneLine(r: { status: number; stderr: string }, status: number, pattern: RegExp): void {
  assert.equal(r.status, status, `exit status (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

test('a missing kernel file', () => {
  expectOneLine(tsvmRun(['-kernel', path.join(dir, 'nope')]), 1, /^tsvm: kernel .*nope: no such file$/);
});

test('a corrupt kernel (random bytes)', () => {
  const f = path.join(dir, 'garbage');
  const b = Buffer.alloc(100_000);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7919 + 13) & 0xff;
  fs.writeFileSync(f, b);
  expectOneLine(tsvmRun(['-kernel', f]), 1, /not a RISC-V kernel/);
});

test('a truncated Image header and an ELF for another architecture', () => {
  const f = path.join(dir, 'trunc');
  const img = Buffer.alloc(8192);
  img.write('RSC\x05', 56, 'latin1');
  img.writeUInt32LE(4096, 16); // image_size smaller than the file
  fs.writeFileSync(f, img);
  expectOneLine(tsvmRun(['-kernel', f]), 1, /corrupt Image header/);
  expectOneLine(tsvmRun(['-kernel', '/bin/true']), 1, /not for RISC-V/);
});

test('an initrd larger than guest RAM', () => {
  const k = path.join(dir, 'k.img');
  const img = Buffer.alloc(8192);
  img.write('RSC\x05', 56, 'latin1');
  img.writeUInt32LE(0x200000, 8);
  fs.writeFileSync(k, img);
  const i = path.join(dir, 'big-initrd');
  fs.writeFileSync(i, Buffer.alloc(40 * 1024 * 1024));
  expectOneLine(tsvmRun(['-m', '32M', '-kernel', k, '-initrd', i]), 1, /initrd .* larger than guest RAM/);
});

test('bad -m, -smp and -M values are usage errors (status 125)', () => {
  for (const m of ['0', 'abc', '100G', '1K']) expectOneLine(tsvmRun(['-m', m]), 125, /invalid -m/);
  for (const n of ['0', '9', 'two', '-1']) expectOneLine(tsvmRun(['-smp', n]), 125, /invalid -smp/);
  expectOneLine(tsvmRun(['-M', 'pc']), 125, /unsupported machine type 'pc'/);
  expectOneLine(tsvmRun(['-frobnicate']), 125, /unknown option/);
  expectOneLine(tsvmRun(['-M', 'spike']), 125, /-M spike needs -kernel/);
});

test('missing firmware for -bios', () => {
  expectOneLine(tsvmRun(['-bios', path.join(dir, 'nofw'), '-kernel', '/bin/true']), 1, /firmware .*nofw: no such file/);
});
