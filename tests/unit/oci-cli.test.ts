/**
 * The image verbs from the command line (src/cli/image-command.ts):
 * `tsvm images`, `tag`, `rmi`, `save`, `load`, `import`, Docker's output
 * formats, and exit status 125 with one line for every tsvm error, the
 * store staying as it was.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { humanDuration, humanSize } from '../../src/cli/image-command.js';

const TSVM = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const tmpdirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-oci-cli-'));
  tmpdirs.push(d);
  return d;
}
after(() => { for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true }); });

function run(store: string, args: string[], input?: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [TSVM, ...args], { env: { ...process.env, TSVM_DATA: store }, input });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}
function ok(store: string, ...args: string[]): string {
  const r = run(store, args);
  assert.equal(r.status, 0, `tsvm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.toString();
}
function err(store: string, args: string[], re: RegExp, input?: Buffer): void {
  const r = run(store, args, input);
  assert.equal(r.status, 125, `tsvm ${args.join(' ')} exits 125 (${r.stderr})`);
  assert.match(r.stderr, re);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}
function listing(dir: string): string {
  return [fs.readFileSync(path.join(dir, 'index.json'), 'utf8'), ...fs.readdirSync(path.join(dir, 'blobs/sha256')).sort()].join('\n');
}

/** A 512-byte-aligned ustar holding one file (enough for `import`). */
function tinyTar(name: string, body: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100); h.write('0000000\0', 108); h.write('0000000\0', 116);
  h.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\x0000', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const data = Buffer.alloc(512);
  data.write(body);
  return Buffer.concat([h, data, Buffer.alloc(1024)]);
}

test('Docker\'s size and time formats', () => {
  assert.equal(humanSize(533), '533B');
  assert.equal(humanSize(10_600), '10.6kB');
  assert.equal(humanSize(77_812_345), '77.8MB');
  assert.equal(humanSize(1_200_000_000), '1.2GB');
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(45_000), '45 seconds');
  assert.equal(humanDuration(90_000), 'About a minute');
  assert.equal(humanDuration(3 * 3600_000), '3 hours');
  assert.equal(humanDuration(3 * 86400_000), '3 days');
  assert.equal(humanDuration(20 * 86400_000), '2 weeks');
  assert.equal(humanDuration(800 * 86400_000), '2 years');
});

test('import, images, tag, save, load and rmi', () => {
  const store = tmp();
  assert.equal(ok(store, 'images'), 'REPOSITORY   TAG   IMAGE ID   CREATED   SIZE\n');
  const tarball = path.join(tmp(), 'root.tar.gz');
  fs.writeFileSync(tarball, zlib.gzipSync(tinyTar('hello.txt', 'hi\n')));
  const id = ok(store, 'import', tarball, 'hello').trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  ok(store, 'tag', 'hello', 'localhost:5000/demo/hello:v1');
  const lines = ok(store, 'images').trimEnd().split('\n');
  assert.match(lines[0]!, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
  assert.equal(lines.length, 3);
  for (const l of lines.slice(1)) assert.match(l, new RegExp(`^(hello\\s+latest|localhost:5000/demo/hello\\s+v1)\\s+${id.slice(7, 19)}\\s+(Less than a second|\\d+ seconds?) ago\\s+\\d+B$`));
  assert.equal(ok(store, 'images', '-q'), `${id.slice(7, 19)}\n`);
  assert.match(ok(store, 'images', '--digests', 'hello'), /^hello\s+latest\s+sha256:[0-9a-f]{64}\s+/m);
  // save to stdout (not a terminal), load from stdin.
  const archive = run(store, ['save', 'hello']).stdout;
  assert.ok(archive.length > 1024);
  const other = tmp();
  const r = run(other, ['load'], archive);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.toString(), 'Loaded image: hello:latest\n');
  assert.equal(ok(other, 'images', '-q'), `${id.slice(7, 19)}\n`);
  // rmi: untag one name; the last name deletes the image and its blobs.
  assert.equal(ok(store, 'rmi', 'localhost:5000/demo/hello:v1'), 'Untagged: localhost:5000/demo/hello:v1\n');
  assert.equal(fs.readdirSync(path.join(store, 'blobs/sha256')).length, 3);
  assert.equal(ok(store, 'rmi', 'hello'), `Untagged: hello:latest\nDeleted: ${id}\n`);
  assert.deepEqual(fs.readdirSync(path.join(store, 'blobs/sha256')), []);
  assert.equal(ok(other, 'rmi', id.slice(7, 19)), `Untagged: hello:latest\nDeleted: ${id}\n`, 'rmi by image ID');
});

test('errors: one line, exit 125, the store unchanged', () => {
  const store = tmp();
  const tarball = path.join(tmp(), 'root.tar');
  fs.writeFileSync(tarball, tinyTar('f', 'x'));
  ok(store, 'import', tarball, 'base');
  const before = listing(store);
  err(store, ['rmi', 'ubuntu:latest'], /^tsvm: No such image: ubuntu:latest$/m);
  err(store, ['tag', 'nope', 'x'], /No such image: nope/);
  err(store, ['tag', 'base', 'Bad/Name'], /invalid reference format "Bad\/Name"/);
  err(store, ['save', '-o', path.join(tmp(), 'x.tar'), 'nope'], /No such image: nope/);
  err(store, ['save', '--format', 'zip', 'base'], /--format zip: expected oci, docker, docker-classic/);
  err(store, ['load', '-i', path.join(tmp(), 'missing.tar')], /ENOENT/);
  err(store, ['load'], /truncated or corrupt/, Buffer.from('this is not a tar file'.repeat(40)));
  err(store, ['import', path.join(tmp(), 'missing.tar'), 'x'], /ENOENT/);
  err(store, ['import', tarball, 'UPPER'], /must be lowercase/);
  err(store, ['images', '--bogus'], /unknown option '--bogus'/);
  err(store, ['rmi'], /missing required argument/);
  assert.equal(listing(store), before);
  // rmi goes on after an unknown image, and still exits 125.
  const r = run(store, ['rmi', 'nope', 'base']);
  assert.equal(r.status, 125);
  assert.match(r.stdout.toString(), /^Untagged: base:latest$/m);
});
