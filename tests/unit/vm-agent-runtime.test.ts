/**
 * The vm container runtime's pure parts (src/host/containers/vm-runtime.ts):
 * the VM's `tsvm run` options from a container record (memory, vCPUs, the
 * hostname, the overlay root, the agent channel, user networking with -p),
 * the limits create checks, and the parser of the guest's /proc listing
 * that `top` and `stats` read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmRuntime, VM_DEFAULT_MEMORY, parseTop } from '../../src/host/containers/vm-runtime.js';
import { ZERO_TIME, type ContainerRecord } from '../../src/host/containers/store.js';
import type { AgentGuest } from '../../src/host/vm-agent/initrd.js';

const guest: AgentGuest = { kernel: '/k/vmlinux', initrd: '/k/agent.cpio.gz', kernelVersion: '6.12', agent: '/k/agent' };

function record(over: Partial<ContainerRecord['Config']> = {}): ContainerRecord {
  return {
    Id: 'a'.repeat(64), Name: '/web', Created: ZERO_TIME, ImageName: 'busybox', Image: 'sha256:x', ImageDigest: 'sha256:y', Path: 'sh', Args: [],
    Config: {
      Cmd: ['sh'], Entrypoint: [], Env: [], WorkingDir: '', User: '', Hostname: 'box', Tty: false, OpenStdin: false, Runtime: 'vm',
      Memory: 0, NanoCpus: 0, PidsLimit: 0, PortBindings: [], Binds: [], AutoRemove: false, ...over,
    },
    State: { Status: 'created', Running: false, Paused: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME },
    RestartCount: 0, LowerDir: '/data/rootfs/x', UpperDir: '/data/c/aaa/upper', LogPath: '/data/c/aaa/log.jsonl',
  };
}

/** The value after option `opt` (its first occurrence). */
function opt(args: string[], o: string): string | undefined { const i = args.indexOf(o); return i < 0 ? undefined : args[i + 1]; }

test('vm runtime: the VM options of a container (defaults)', () => {
  const a = VmRuntime.vmArgs(record(), guest, '/run/s/agent.sock');
  assert.equal(opt(a, '-m'), `${VM_DEFAULT_MEMORY / 1048576}M`);
  assert.equal(opt(a, '-smp'), '1');
  assert.equal(opt(a, '-kernel'), guest.kernel);
  assert.equal(opt(a, '-initrd'), guest.initrd);
  assert.match(opt(a, '-append')!, /(^| )tsvm\.hostname=box( |$)/);
  assert.match(opt(a, '-append')!, /tsvm\.root=virtiofs:ctr-root/);
  assert.match(opt(a, '-append')!, /tsvm\.net=dhcp/);
  assert.equal(opt(a, '-fsdev'), 'overlay,id=root,lower=/data/rootfs/x,upper=/data/c/aaa/upper');
  assert.ok(a.includes('virtio-fs-device,fsdev=root,tag=ctr-root'));
  assert.equal(opt(a, '-chardev'), 'socket,id=agent,path=/run/s/agent.sock,server=on,wait=off');
  assert.ok(a.includes('virtio-console-device,chardev=agent'));
  assert.equal(opt(a, '-netdev'), 'user,id=net0');
  assert.ok(a.includes('virtio-net-device,netdev=net0'));
});

test('vm runtime: --memory, --cpus and -p become RAM, vCPUs and passt forwards', () => {
  const a = VmRuntime.vmArgs(record({ Memory: 100 * 1048576 + 1, NanoCpus: 1.5e9, PortBindings: ['8080:80'] }), guest, '/s');
  assert.equal(opt(a, '-m'), '101M', 'rounded up to whole MiB');
  assert.equal(opt(a, '-smp'), '2', 'ceil(1.5)');
  assert.equal(opt(a, '-netdev'), 'user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80');
  const b = VmRuntime.vmArgs(record({ PortBindings: ['0.0.0.0:9000:90/tcp'] }), guest, '/s');
  assert.equal(opt(b, '-netdev'), 'user,id=net0,hostfwd=tcp:0.0.0.0:9000-:90');
  const two = VmRuntime.vmArgs(record({ PortBindings: ['1:2', '127.0.0.2:3:4'] }), guest, '/s');
  assert.equal(opt(two, '-netdev'), 'user,id=net0,hostfwd=tcp:127.0.0.1:1-:2,hostfwd=tcp:127.0.0.2:3-:4', 'two -p: two forwards on the one netdev');
  assert.throws(() => VmRuntime.vmArgs(record({ PortBindings: ['[::1]:8080:80'] }), guest, '/s'), /IPv4/);
});

test('vm runtime: --memory below 64 MiB and a hostname the kernel command line cannot carry are refused at create', () => {
  assert.match(VmRuntime.check(32 * 1048576, undefined) ?? '', /at least 64 MiB/);
  assert.equal(VmRuntime.check(64 * 1048576, undefined), null);
  assert.equal(VmRuntime.check(0, undefined), null, 'no --memory: the default');
  assert.equal(VmRuntime.check(0, 'web-1.example'), null);
  assert.match(VmRuntime.check(0, 'a b tsvm.root=x') ?? '', /invalid hostname/);
  assert.match(VmRuntime.check(0, '-x') ?? '', /invalid hostname/);
  assert.match(VmRuntime.check(0, 'h'.repeat(65)) ?? '', /invalid hostname/);
});

test('vm runtime: top parses the guest /proc listing and leaves out its own subshells', () => {
  // As TOP_SCRIPT prints it: uptime, then P (stat), U (status Uid line), C (cmdline) per process. The script's shell is 7 (skipped by
  // the script itself); 8 is its $(...) subshell, a child of 7; 3 is another exec (parent 0: the agent, outside the namespace).
  const text = [
    '120.50 100.00',
    'P 1 (sleep) S 0 1 1 0 -1 4194560 0 0 0 0 250 50 0 0 20 0 1 0 1000 1000 100',
    'U Uid:\t0\t0\t0\t0',
    'C sleep 1000',
    'P 2 (httpd) S 1 2 2 0 -1 0 0 0 0 0 1 0 0 0 20 0 1 0 1100 1000 100',
    'U Uid:\t33\t33\t33\t33',
    'C httpd -p 80 -h /www',
    'P 3 (my proc) R 0 3 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 2000 1000 100',
    'U Uid:\t1000\t1000\t1000\t1000',
    'C ',
    'P 8 (sh) R 7 8 8 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12000 1000 100',
    'U Uid:\t0\t0\t0\t0',
    'C sh -c cat /proc/uptime',
    '',
  ].join('\n');
  const ps = parseTop(text);
  assert.deepEqual(ps.map((p) => p.pid), [1, 2, 3]);
  assert.deepEqual(ps[0], { uid: '0', pid: 1, ppid: 0, stime: '-111s', time: '00:00:03', cmd: 'sleep 1000', ticks: 300 });
  assert.equal(ps[1]!.uid, '33');
  assert.equal(ps[1]!.ppid, 1);
  assert.equal(ps[2]!.cmd, '[my proc]', 'no cmdline: the name in brackets, as ps shows kernel threads');
  assert.deepEqual(parseTop(''), []);
});
