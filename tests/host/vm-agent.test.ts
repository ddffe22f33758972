/**
 * The container microVM's guest agent on a real Debian kernel boot: `tsvm
 * run` (the CLI, a child process) boots the default guest's kernel with
 * the agent initrd (src/host/vm-agent/initrd.ts), the agent channel on a
 * `-chardev socket` behind `-device virtio-console-device,chardev=ID`, and
 * `tsvm.hostname=` on the command line; the host client
 * (src/host/vm-agent/agent-client.ts) then drives it.
 *
 * One boot covers: READY (the time from VM start to it is printed), the
 * hostname, CONFIG frames refused (no root, a root that cannot be mounted, a second one), stdout and stderr kept apart with the exit status, uid/gid,
 * cwd and env, a missing
 * program (127), 256 KiB of binary stdin through cat, SIGKILL (137), a tty process (/dev/pts/N, the initial
 * size, a resize, SIGWINCH, Ctrl-C → 130), processes exec'd while the main one runs,
 * stdin piped through cat, and the VM powering off when the main process
 * exits (the CLI exits 0).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureAgentGuest } from '../../src/host/vm-agent/initrd.js';
import { AgentClient, type AgentProcess } from '../../src/host/vm-agent/agent-client.js';
import { TSVM_CLI } from '../helpers/guest-run.js';

const BOOT_MS = 400_000;

/** Collects a process's output and waits for its exit. */
async function collect(p: AgentProcess): Promise<{ out: string; err: string; status: number }> {
  let out = '', err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const status = await p.exit;
  return { out, err, status };
}

/** All of `p`'s stdout so far, and a wait for a pattern in it. */
interface Watch { text: string; until(re: RegExp): Promise<void> }

/** Collects `p`'s stdout from now on (one listener for the process's life, so nothing is missed). */
function watch(p: AgentProcess): Watch {
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const w: Watch = {
    text: '',
    until: (re) => new Promise((resolve) => { if (re.test(w.text)) resolve(); else waiters.push({ re, resolve }); }),
  };
  p.stdout.on('data', (d: Buffer) => {
    w.text += d.toString();
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.re.test(w.text)) waiters.splice(i, 1)[0]!.resolve();
  });
  return w;
}

test('guest agent: a Debian boot with the agent as PID 1 runs, execs, signals and powers off with its main process', { timeout: 2 * BOOT_MS }, async () => {
  const g = await ensureAgentGuest({ progress: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-agent-'));
  const sock = path.join(dir, 'agent.sock');
  const t0 = Date.now();
  const vm = spawn(process.execPath, [TSVM_CLI, 'run', '-m', '256M', '-kernel', g.kernel, '-initrd', g.initrd,
    '-append', 'console=ttyS0 quiet tsvm.hostname=box1',
    '-chardev', `socket,id=agent,path=${sock},server=on,wait=off`, '-device', 'virtio-console-device,chardev=agent'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let consoleText = '';
  vm.stdout.on('data', (d: Buffer) => { consoleText += d.toString(); });
  vm.stderr.on('data', (d: Buffer) => { consoleText += d.toString(); });
  const vmExit = new Promise<number | null>((resolve) => vm.on('exit', (code) => resolve(code)));
  let client: AgentClient | null = null;
  try {
    client = await AgentClient.connect(sock, BOOT_MS);
    const c = client;
    console.log(`# agent READY ${Date.now() - t0} ms after VM start (guest uptime ${c.ready!.uptimeMs} ms)`);
    assert.equal(c.ready!.version, 1);
    assert.equal(c.ready!.hostname, 'box1');

    // CONFIG (a spare VM's container, docs/vm-agent.md): refused without a root; a root that cannot be mounted is an
    // error for that frame, after which the agent takes no other configuration.
    await assert.rejects(c.configure('tsvm.hostname=other'), /config: tsvm.root= is missing/);
    await assert.rejects(c.configure('tsvm.root=virtiofs:no-such-tag tsvm.hostname=box1'), /config: the container's root could not be mounted/);
    await assert.rejects(c.configure('tsvm.root=virtiofs:no-such-tag'), /config: this agent's container is already set up/);
    assert.equal(c.failure, null, 'a refused CONFIG leaves the channel up');

    // The main process: cat copies stdin, then it says hi and exits 3; the others run while it waits.
    const main = c.run(['sh', '-c', 'cat; echo hi; exit 3']);
    const mainResult = collect(main);
    assert.ok(await main.pid > 1, 'the main process has a guest pid');

    const sep = await collect(c.exec(['sh', '-c', 'echo out; echo err >&2; exit 5']));
    assert.deepEqual(sep, { out: 'out\n', err: 'err\n', status: 5 }, 'stdout and stderr apart, the exit status');
    assert.deepEqual(await collect(c.exec(['hostname'])), { out: 'box1\n', err: '', status: 0 });
    assert.deepEqual(await collect(c.exec(['sh', '-c', 'echo "$(id -u):$(id -g) $(pwd) $FOO"'], { uid: 1000, gid: 100, cwd: '/tmp', env: ['PATH=/bin', 'FOO=bar'] })),
      { out: '1000:100 /tmp bar\n', err: '', status: 0 }, 'uid, gid, cwd and env as asked');
    const missing = await collect(c.exec(['no-such-program']));
    assert.equal(missing.status, 127);
    assert.match(missing.err, /no-such-program/);

    // 256 KiB through cat, more than the pipes and the virtio-console buffers hold: the agent queues stdin, never deadlocks.
    const big = Buffer.alloc(256 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
    const cat = c.exec(['cat']);
    const catOut: Buffer[] = [];
    cat.stdout.on('data', (d: Buffer) => { catOut.push(d); });
    cat.stdin.end(big);
    assert.equal(await cat.exit, 0);
    assert.ok(Buffer.concat(catOut).equals(big), `cat returned the ${big.length} bytes it was given (got ${Buffer.concat(catOut).length})`);

    const sleeper = c.exec(['sleep', '1000']);
    await sleeper.pid;
    sleeper.signal('SIGKILL');
    assert.equal(await sleeper.exit, 137, 'killed by SIGKILL: 128 + 9');

    // A tty process: its pty, the initial size, then a resize while it waits for a line.
    const tty = c.exec(['sh', '-c', 'tty; stty size; read x; stty size'], { tty: true, rows: 30, cols: 100 });
    const seen = watch(tty);
    await seen.until(/30 100\r\n/);
    tty.resize(40, 120);
    tty.stdin.write('\n');
    assert.equal(await tty.exit, 0);
    assert.match(seen.text, /40 120\r\n$/, 'the new size');
    assert.match(seen.text, /^\/dev\/pts\/\d+\r\n30 100\r\n/, 'a real pty, with the initial size');

    // A resize reaches the tty's foreground process group as SIGWINCH (the shell's trap runs between its sleeps).
    const winch = c.exec(['sh', '-c', 'trap "stty size; exit 7" WINCH; echo armed; while :; do sleep 1; done'], { tty: true, rows: 10, cols: 20 });
    const winchSeen = watch(winch);
    await winchSeen.until(/armed\r\n/);
    winch.resize(50, 132);
    assert.equal(await winch.exit, 7, 'the WINCH trap ran');
    assert.match(winchSeen.text, /50 132\r\n/);

    // Ctrl-C on the tty reaches the foreground process (sleep, exec'd by sh -c): 128 + SIGINT.
    const intr = c.exec(['sh', '-c', 'echo go; exec sleep 1000'], { tty: true });
    await watch(intr).until(/go\r\n/);
    intr.stdin.write('\x03');
    assert.equal(await intr.exit, 130);

    main.stdin.end('piped through cat\n');
    assert.deepEqual(await mainResult, { out: 'piped through cat\nhi\n', err: '', status: 3 });
    assert.equal(await vmExit, 0, 'the VM powers off when the main process exits');
    assert.match(consoleText, /reboot: Power down/);
  } catch (e) {
    console.log(`# guest console:\n${consoleText.split('\n').slice(-40).join('\n')}`);
    throw e;
  } finally {
    client?.close();
    if (vm.exitCode === null) vm.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
