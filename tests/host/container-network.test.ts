/**
 * Container networks on the process runtime (`tsvm network create|ls|rm`,
 * `run --network`; src/host/containers/networks.ts, src/host/network-relay.ts,
 * the netns relay in src/process/netns.ts): two containers on one network
 * reach each other by name over TCP, a container on the default network
 * cannot resolve them, /etc/hosts is the runtime's file and not the
 * image's, networks survive a host restart, and the errors (duplicate
 * name, unknown network, rm of a network in use) have Docker's exit codes
 * and one line. busybox is the image; the store and host are private.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTsvm, okTsvm, refused, sleep, until, type Out } from '../helpers/container-cli.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};

const tsvm = (args: string[]): Out => runTsvm(env, args);

const ok = (...args: string[]): string => okTsvm(env, args);

before(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-net-')));
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: path.join(dir, 'host.sock') };
  ok('pull', 'busybox');
});

after(() => {
  tsvm(['host', 'stop']);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('container networks', () => {
  test('network create, ls, duplicate name (exit 1), and the record survives a host restart', () => {
    const id = ok('network', 'create', 'appnet').trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    refused(tsvm(['network', 'create', 'appnet']), 1, /network with name appnet already exists/);
    refused(tsvm(['network', 'create', 'bridge']), 1, /network with name bridge already exists/);
    refused(tsvm(['network', 'create', 'bad/name']), 1, /invalid network name/);
    ok('host', 'stop');
    const ls = ok('network', 'ls');
    assert.match(ls, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\s+SUBNET\n/);
    assert.match(ls, new RegExp(`${id.slice(0, 12)}\\s+appnet\\s+bridge\\s+local\\s+172\\.18\\.0\\.0/16`));
    assert.match(ok('network', 'create', 'other'), /^[0-9a-f]{64}\n$/);
    assert.match(ok('network', 'ls'), /other\s+bridge\s+local\s+172\.19\.0\.0\/16/, 'the next free /16');
    assert.equal(ok('network', 'rm', 'other'), 'other\n');
    refused(tsvm(['network', 'rm', 'other']), 1, /network other not found/);
  });

  test('two containers on one network reach each other by name; one on the default network cannot resolve it', async () => {
    ok('run', '-d', '--name', 'srv', '--network', 'appnet', 'busybox', 'sh', '-c', 'echo listening; echo hello from srv | nc -l -p 8080; echo served; sleep 600');
    await until(() => ok('logs', 'srv').includes('listening'), 'srv to start');
    await sleep(1000);
    const r = tsvm(['run', '--rm', '--name', 'cli', '--network', 'appnet', 'busybox', 'sh', '-c',
      'grep -w srv /etc/hosts; grep -w cli /etc/hosts; nc srv 8080 </dev/null']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^172\.18\.0\.2\tsrv$/, 'the first address of the network');
    assert.match(lines[1]!, /^172\.18\.0\.3\t[0-9a-f]{12} cli$/);
    assert.equal(lines[2], 'hello from srv');
    await until(() => ok('logs', 'srv').includes('served'), 'srv to see the connection end');
    // A container on the default network has only its own names in /etc/hosts: srv does not resolve.
    const alone = tsvm(['run', '--rm', 'busybox', 'sh', '-c', 'grep -c srv /etc/hosts; nc srv 8080 </dev/null; echo status $?']);
    assert.match(alone.stdout, /^0\nstatus 1\n$/, alone.stderr);
    assert.match(alone.stderr, /bad address 'srv'/);
    // The runtime's /etc/hosts is not part of the container's layer, nor of a commit.
    const upper = path.join(dir, 'images', '.containers', JSON.parse(ok('inspect', 'srv'))[0].Id as string, 'upper');
    assert.equal(fs.existsSync(path.join(upper, 'etc', 'hosts')), false);
  });

  test('a connect to a member with no listener is refused; to an address with no member, no route', () => {
    const r = tsvm(['run', '--rm', '--network', 'appnet', 'busybox', 'sh', '-c',
      'nc srv 9999 </dev/null; echo status $?; nc 172.18.0.77 80 </dev/null; echo status $?']);
    assert.equal(r.stdout, 'status 1\nstatus 1\n', r.stderr);
    assert.match(r.stderr, /172\.18\.0\.2\): Connection refused/);
    assert.match(r.stderr, /172\.18\.0\.77\): No route to host/);
  });

  test('bad input: unknown network at run (125), rm of a network in use (1), rm of an unknown one (1)', () => {
    refused(tsvm(['run', '--rm', '--network', 'nosuch', 'busybox', 'true']), 125, /network nosuch not found/);
    refused(tsvm(['network', 'rm', 'appnet']), 1, /network appnet .* has containers attached: srv/);
    refused(tsvm(['network', 'rm', 'nosuch']), 1, /network nosuch not found/);
    assert.match(ok('network', 'ls'), /appnet/, 'the refused rm left the network');
    ok('rm', '-f', 'srv');
    assert.equal(ok('network', 'rm', 'appnet'), 'appnet\n');
    assert.doesNotMatch(ok('network', 'ls'), /appnet/);
  });
});
