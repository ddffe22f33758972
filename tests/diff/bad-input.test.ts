/**
 * `tsvm exec` on inputs that cannot run: each must fail with exactly one
 * stderr line starting with `tsvm:`, no stack trace, and the conventional
 * status (127: program or interpreter not found; 126: found but not
 * executable; 125: bad tsvm flags). Guests that die of a signal exit
 * 128 + signal, with one line naming the signal (and for SIGSEGV the pc
 * and the faulting address).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compile, compileText } from '../helpers/toolchain.js';
import { requireQemu, requireTsvm, runQemu, runTsvm, type RunResult } from '../helpers/guest-run.js';

const PT_LOAD = 1;
const PT_INTERP = 3;

let dir = '';
let staticElf = '';
let dynamicElf = '';

function file(name: string, data: Buffer | string, mode = 0o755): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, data);
  fs.chmodSync(p, mode);
  return p;
}

/** Program headers of an ELF64 file: [file offset of the entry, p_type]. */
function phdrs(elf: Buffer): { at: number; type: number }[] {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  const out: { at: number; type: number }[] = [];
  for (let i = 0; i < phnum; i++) out.push({ at: phoff + i * phentsize, type: elf.readUInt32LE(phoff + i * phentsize) });
  return out;
}

/** Asserts the single-line `tsvm:` diagnostic and the exit status. */
function expectFailure(r: RunResult, status: number, what: string): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+/, `${what}: stack trace on stderr:\n${r.stderr}`);
  assert.equal(lines.length, 1, `${what}: expected exactly one stderr line, got ${lines.length}:\n${r.stderr}`);
  assert.match(lines[0] ?? '', /^tsvm: /, `${what}: stderr line must start with "tsvm: ": ${lines[0]}`);
  assert.equal(r.status, status, `${what}: exit status ${r.status}, expected ${status} (stderr: ${lines[0]})`);
  assert.equal(r.stdout.length, 0, `${what}: unexpected stdout`);
}

describe('tsvm exec: bad inputs', { concurrency: 2 }, () => {
  before(() => {
    requireTsvm();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-bad-input-'));
    staticElf = compile({ sources: ['env_args.c'], linkage: 'static' });
    dynamicElf = compile({ sources: ['env_args.c'], linkage: 'dynamic' });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a text file', async () => {
    const p = file('script.txt', 'echo this is not an ELF file\n');
    expectFailure(await runTsvm(p), 126, 'text file');
  });

  test('an empty file', async () => {
    expectFailure(await runTsvm(file('empty', '')), 126, 'empty file');
  });

  test('a truncated ELF (header cut short)', async () => {
    expectFailure(await runTsvm(file('truncated', fs.readFileSync(staticElf).subarray(0, 40))), 126, 'truncated ELF');
  });

  test('an x86-64 ELF (the host /bin/true)', async () => {
    const host = fs.existsSync('/bin/true') ? '/bin/true' : '/usr/bin/true';
    const elf = fs.readFileSync(host);
    assert.equal(elf.readUInt16LE(18), 62, `${host} should be EM_X86_64`);
    expectFailure(await runTsvm(file('x86_64-true', elf)), 126, 'x86-64 ELF');
  });

  test('a 32-bit RISC-V ELF (EI_CLASS patched to ELFCLASS32)', async () => {
    const elf = Buffer.from(fs.readFileSync(staticElf));
    elf[4] = 1;
    expectFailure(await runTsvm(file('rv32', elf)), 126, 'ELFCLASS32');
  });

  test('a big-endian ELF (EI_DATA patched)', async () => {
    const elf = Buffer.from(fs.readFileSync(staticElf));
    elf[5] = 2;
    expectFailure(await runTsvm(file('big-endian', elf)), 126, 'ELFDATA2MSB');
  });

  test('program headers past the end of the file', async () => {
    const elf = fs.readFileSync(staticElf);
    const phoff = Number(elf.readBigUInt64LE(0x20));
    expectFailure(await runTsvm(file('truncated-phdrs', elf.subarray(0, phoff + 20))), 126, 'truncated program headers');
  });

  test('a PT_LOAD whose file range lies past the end of the file', async () => {
    const elf = Buffer.from(fs.readFileSync(staticElf));
    const load = phdrs(elf).find((p) => p.type === PT_LOAD);
    assert.ok(load, 'the test binary has a PT_LOAD');
    elf.writeBigUInt64LE(BigInt(elf.length + 0x100000), load.at + 8); // p_offset
    expectFailure(await runTsvm(file('load-past-eof', elf)), 126, 'PT_LOAD past EOF');
  });

  test('overlapping PT_LOAD segments', async () => {
    const elf = Buffer.from(fs.readFileSync(staticElf));
    const loads = phdrs(elf).filter((p) => p.type === PT_LOAD);
    assert.ok(loads.length >= 2, 'the static test binary has two PT_LOADs');
    const first = loads[0]!, second = loads[1]!;
    const vaddr = elf.readBigUInt64LE(first.at + 16);
    elf.writeBigUInt64LE(vaddr, second.at + 16); // p_vaddr
    elf.writeBigUInt64LE(vaddr, second.at + 24); // p_paddr
    expectFailure(await runTsvm(file('overlap', elf)), 126, 'overlapping PT_LOADs');
  });

  test('a PT_INTERP naming a missing interpreter', async () => {
    const elf = Buffer.from(fs.readFileSync(dynamicElf));
    const interp = phdrs(elf).find((p) => p.type === PT_INTERP);
    assert.ok(interp, 'the dynamic test binary has a PT_INTERP');
    const off = Number(elf.readBigUInt64LE(interp.at + 8));
    const size = Number(elf.readBigUInt64LE(interp.at + 32));
    const name = Buffer.alloc(size);
    name.write('/nonexistent/tsvm-ld.so');
    name.copy(elf, off);
    expectFailure(await runTsvm(file('missing-interp', elf)), 127, 'missing interpreter');
  });

  test('a missing program', async () => {
    expectFailure(await runTsvm(path.join(dir, 'no-such-program')), 127, 'missing program');
  });

  test('a directory as the program', async () => {
    const d = path.join(dir, 'a-directory');
    fs.mkdirSync(d, { recursive: true });
    const r = await runTsvm(d);
    expectFailure(r, r.status === 127 ? 127 : 126, 'directory');
  });

  for (const bad of ['banana', '1K', '0', '15M', '4G', '99T', '']) {
    test(`--memory ${bad}`, async () => {
      expectFailure(await runTsvm(staticElf, { tsvmFlags: ['--memory', bad] }), 125, `--memory ${bad}`);
    });
  }

  for (const flags of [['--jit', 'maybe'], ['--jit=ON'], ['--jit-threshold', '-1'], ['--jit-threshold=1e3'], ['--jit-threshold', '']]) {
    test(`${flags.join(' ')}`, async () => {
      expectFailure(await runTsvm(staticElf, { tsvmFlags: flags }), 125, flags.join(' '));
    });
  }

  test('TSVM_JIT=bogus is a usage error', async () => {
    expectFailure(await runTsvm(staticElf, { env: { TSVM_JIT: 'bogus' } }), 125, 'TSVM_JIT=bogus');
  });

  test('a guest that writes to address 0 dies of SIGSEGV (139)', async () => {
    requireQemu();
    const bin = compileText('\t.globl _start\n_start:\n\tli a0, 0\n\tli a1, 42\n\tsd a1, 0(a0)\n\tli a7, 93\n\tecall\n', 'S', { name: 'segv', linkage: 'bare' });
    const q = await runQemu(bin);
    assert.equal(q.status, 139, 'qemu reference: SIGSEGV');
    const r = await runTsvm(bin);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(r.status, 139, `exit status ${r.status}, stderr: ${r.stderr}`);
    assert.equal(lines.length, 1, `one stderr line expected:\n${r.stderr}`);
    assert.match(lines[0] ?? '', /SIGSEGV/, 'names the signal');
    assert.match(lines[0] ?? '', /\bpc\b/i, 'names the pc');
    assert.match(lines[0] ?? '', /\baddr(ess)?\b\W*(0x)?0+\b/i, 'names the faulting address 0');
    assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+/, 'no stack trace');
  });

  test('an illegal instruction (.word 0) dies of SIGILL (132)', async () => {
    requireQemu();
    const bin = compileText('\t.globl _start\n_start:\n\tnop\n\t.word 0\n\tli a7, 93\n\tecall\n', 'S', { name: 'sigill', linkage: 'bare' });
    const q = await runQemu(bin);
    assert.equal(q.status, 132, 'qemu reference: SIGILL');
    const r = await runTsvm(bin);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(r.status, 132, `exit status ${r.status}, stderr: ${r.stderr}`);
    assert.equal(lines.length, 1, `one stderr line expected:\n${r.stderr}`);
    assert.match(lines[0] ?? '', /SIGILL/, 'names the signal');
    assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+/, 'no stack trace');
  });
});
