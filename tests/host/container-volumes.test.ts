/**
 * Docker's `-v HOSTDIR:DIR[:ro]` on the process runtime (src/host/bind-spec.ts,
 * src/host/containers/volumes.ts, src/process/bind-host-os.ts): files go
 * both ways between the host directory and the container, `:ro` refuses
 * writes with EROFS, symlinks and `..` inside the bind stay in the
 * container, a rename across the mount is EXDEV, `commit` leaves the bound
 * content out, and bad specs are refused at create with exit 125 and one
 * line. busybox is the image; the image store, records and host socket are
 * private to the test.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTsvm, okTsvm, refused, type Out } from '../helpers/container-cli.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};

const tsvm = (args: string[]): Out => runTsvm(env, args);

const ok = (...args: string[]): string => okTsvm(env, args);

before(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-volumes-')));
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: path.join(dir, 'host.sock') };
  ok('pull', 'busybox');
  fs.writeFileSync(path.join(dir, 'secret'), 'host secret\n');
});

after(() => {
  tsvm(['host', 'stop']);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('container volumes', () => {
  test('-v: a host file is read in the container, a file written there lands on the host; a missing HOSTDIR is made', () => {
    const vol = path.join(dir, 'vol'), made = path.join(dir, 'made', 'here');
    fs.mkdirSync(vol);
    fs.writeFileSync(path.join(vol, 'from-host.txt'), 'hello from the host\n');
    const r = tsvm(['run', '--rm', '-v', `${vol}:/data`, '--volume', `${made}:/made`, 'busybox', 'sh', '-c',
      'cat /data/from-host.txt; echo written in the container > /data/from-guest.txt; mkdir /data/d; echo m > /made/f; ls /; grep " /data " /proc/self/mounts']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^hello from the host\n/);
    assert.ok(r.stdout.split('\n').includes('data') && r.stdout.split('\n').includes('made'), `the mount points show in /: ${r.stdout}`);
    assert.match(r.stdout, new RegExp(`\n${vol} /data none rw,bind 0 0\n$`), '/proc/self/mounts lists the bind');
    assert.equal(fs.readFileSync(path.join(vol, 'from-guest.txt'), 'utf8'), 'written in the container\n');
    assert.ok(fs.statSync(path.join(vol, 'd')).isDirectory());
    assert.equal(fs.readFileSync(path.join(made, 'f'), 'utf8'), 'm\n', 'the missing host directory was created, as Docker does');
  });

  test(':ro: reads work, every write fails with "Read-only file system" and the host directory is unchanged', () => {
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro);
    fs.writeFileSync(path.join(ro, 'r.txt'), 'read me\n');
    const r = tsvm(['run', '--rm', '-v', `${ro}:/ro:ro`, 'busybox', 'sh', '-c',
      'cat /ro/r.txt; echo x > /ro/new; echo x >> /ro/r.txt; rm /ro/r.txt; mkdir /ro/d; touch /ro/r.txt; echo end']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'read me\nend\n');
    const errs = r.stderr.trim().split('\n');
    assert.equal(errs.length, 5, r.stderr);
    for (const e of errs) assert.match(e, /Read-only file system/);
    assert.deepEqual(fs.readdirSync(ro), ['r.txt']);
    assert.equal(fs.readFileSync(path.join(ro, 'r.txt'), 'utf8'), 'read me\n');
  });

  test('escapes: a link to / made in the bind, and .., reach the container\'s root, never other host paths', () => {
    const vol = path.join(dir, 'esc');
    fs.mkdirSync(vol);
    const script = [
      'ln -s / /data/x', `ln -s ${dir} /data/h`, 'ln -s ../../../../../../.. /data/up',
      'ls /data/x/ | tr "\\n" " "; echo',
      `cat /data/x${dir}/secret || echo no-x`, 'cat /data/h/secret || echo no-h', `cat /data/up${dir}/secret || echo no-up`,
      `cat /data/../../../..${dir}/secret || echo no-dots`, 'cat /data/up/etc/passwd >/dev/null && echo container-etc',
    ].join('; ');
    const r = tsvm(['run', '--rm', '-v', `${vol}:/data`, 'busybox', 'sh', '-c', script]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /\bbin\b.*\bdata\b.*\betc\b/, 'the link to / lists the container root');
    assert.deepEqual(lines.slice(1), ['no-x', 'no-h', 'no-up', 'no-dots', 'container-etc']);
    assert.doesNotMatch(r.stdout, /host secret/);
    // The links themselves are on the host as the guest made them (a host process following them is the host's business).
    assert.equal(fs.readlinkSync(path.join(vol, 'x')), '/');
  });

  test('rename across the mount boundary is EXDEV (busybox mv then copies); tsvm exec --volume binds too', () => {
    const vol = path.join(dir, 'xdev');
    fs.mkdirSync(vol);
    fs.writeFileSync(path.join(vol, 'f'), 'moving\n');
    const r = tsvm(['run', '--name', 'mover', '-v', `${vol}:/data`, 'busybox', 'sh', '-c', 'mv /data/f /moved && cat /moved']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'moving\n');
    assert.ok(!fs.existsSync(path.join(vol, 'f')));
    // The rename(2) itself, seen with the process VM's --trace over the container's image layer.
    const lower = (JSON.parse(ok('inspect', 'mover')) as Array<{ LowerDir: string }>)[0]!.LowerDir;
    ok('rm', 'mover');
    const upper = path.join(dir, 'upper-xdev');
    fs.mkdirSync(upper);
    fs.writeFileSync(path.join(vol, 'g'), 'g\n');
    const t = tsvm(['exec', '--lower', lower, '--upper', upper, '--volume', `${vol}:/data`, '--trace', '/bin/mv', '/data/g', '/g']);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stderr, /renameat2?\([^)]*"\/data\/g"[^)]*"\/g"[^)]*\) = -1 EXDEV/);
    assert.equal(fs.readFileSync(path.join(upper, 'g'), 'utf8'), 'g\n', 'mv copied into the writable layer');
    refused(tsvm(['exec', '--lower', lower, '--upper', upper, '--volume', `${path.join(dir, 'nope')}:/data`, '/bin/true']), 125, /nope is not a directory/);
  });

  test('commit leaves the bound content out (Docker does)', () => {
    const vol = path.join(dir, 'committed');
    fs.mkdirSync(vol);
    ok('run', '--name', 'baker', '-v', `${vol}:/data`, 'busybox', 'sh', '-c', 'echo bound > /data/in-bind; echo layer > /in-layer');
    ok('commit', 'baker', 'baked:vol');
    ok('rm', 'baker');
    const r = tsvm(['run', '--rm', 'baked:vol', 'sh', '-c', 'cat /in-layer; ls -A /data | wc -l; cat /data/in-bind 2>/dev/null || echo absent']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.replace(/ +/g, ''), 'layer\n0\nabsent\n');
    assert.equal(fs.readFileSync(path.join(vol, 'in-bind'), 'utf8'), 'bound\n', 'the host keeps it');
  });

  test('bad -v specs are refused at create with exit 125 and one line; nothing is created', () => {
    refused(tsvm(['run', '--rm', '-v', 'myvol:/data', 'busybox', 'true']), 125, /named volumes are not supported/);
    refused(tsvm(['run', '--rm', '-v', `${dir}:data`, 'busybox', 'true']), 125, /mount point must be an absolute path/);
    refused(tsvm(['run', '--rm', '-v', `${dir}/vol:/data:rx`, 'busybox', 'true']), 125, /invalid mode: rx/);
    refused(tsvm(['run', '--rm', '-v', '/data', 'busybox', 'true']), 125, /anonymous volumes are not supported/);
    refused(tsvm(['create', '-v', '/dev/null:/data', 'busybox', 'true']), 125, /neither a directory nor a regular file/);
    assert.equal(ok('ps', '-a', '-q'), '', 'no container was left behind');
  });
});
