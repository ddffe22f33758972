/**
 * The course's sequence in the vm runtime (issue 15 point 5: "in both
 * runtimes"): `run -it --runtime vm --name hello busybox /bin/sh` typed
 * into a REAL pseudo-terminal of the host (tests/helpers/host-pty.ts), then
 * start, attach with detach keys, restart and attach again. The container's
 * terminal is the guest agent's pty in its microVM (docs/vm-agent.md): the
 * outer terminal is raw, the window size at start and its changes reach
 * the guest, Ctrl-C interrupts the container's foreground job. The
 * process runtime's run of the same sequence, with a second viewer, is in
 * container-tty.test.ts. A failing wait prints what the terminal showed.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTsvm, okTsvm, sleep } from '../helpers/container-cli.js';
import { TSVM_CLI } from '../helpers/guest-run.js';
import { HostPty, clean, hostPtyMissing, showing, sttySize, typed } from '../helpers/host-pty.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};
const noPty = hostPtyMissing();
/** A microVM boots Debian's kernel: up to a few minutes on a loaded 2-core machine. */
const BOOT_MS = 300_000;

const ok = (...args: string[]): string => okTsvm(env, args);

function state(ref: string): { Status: string; Running: boolean; ExitCode: number; StartedAt: string } {
  return (JSON.parse(ok('inspect', ref)) as { State: ReturnType<typeof state> }[])[0]!.State;
}

/** `tsvm ARGS` on a new host pty of `cols`x`rows`. */
function onPty(args: string[], cols = 100, rows = 30): HostPty {
  return new HostPty([process.execPath, TSVM_CLI, ...args], env, { cols, rows }, BOOT_MS);
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-ctr-vm-tty-'));
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: path.join(dir, 'host.sock') };
  delete env['TSVM_CONTAINERS'];
});

after(() => {
  runTsvm(env, ['rm', '-f', 'hello']);
  runTsvm(env, ['host', 'stop']);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the course\'s sequence in the vm runtime, on a real pty', { skip: noPty }, () => {
  const PROMPT = /\/ # /;

  test('pull, images', () => {
    assert.match(ok('pull', 'busybox'), /busybox/);
    assert.match(ok('images'), /^busybox\s+latest\s+/m);
    ok('ps'); // starts the host outside the pty
  });

  test('run -it --runtime vm --name hello busybox /bin/sh: hostname, tty, PID 1, stty size and a resize, Ctrl-C, exit 3', { timeout: 2 * BOOT_MS }, async () => {
    const p = onPty(['run', '-it', '--runtime', 'vm', '--name', 'hello', 'busybox', '/bin/sh'], 100, 30);
    await showing(p, async () => {
      await p.expect(PROMPT, 'the shell\'s prompt');
      await p.untilRaw(); // the CLI put the outer terminal in raw mode
      const id = (JSON.parse(ok('inspect', 'hello')) as { Id: string }[])[0]!.Id;
      assert.equal((await typed(p, 'hostname', PROMPT)).trim(), id.slice(0, 12), 'the hostname is the short id');
      assert.match((await typed(p, 'tty', PROMPT)).trim(), /^\/dev\/pts\/\d+$/, 'stdin is a pseudo-terminal');
      assert.equal((await typed(p, 'echo $$', PROMPT)).trim(), '1', 'the shell is PID 1 of the container');
      assert.equal((await typed(p, 'stty size', PROMPT)).trim(), '30 100', 'the outer terminal\'s size');
      p.resize(132, 43);
      assert.equal(await sttySize(p, PROMPT, '43 132'), '43 132', 'the size after the outer terminal changed');
      p.type('sleep 100\r');
      await p.expect(/sleep 100\r*\n/, 'the echo of sleep 100');
      await sleep(1500);
      const t0 = Date.now();
      p.type(Buffer.from([0x03])); // Ctrl-C: in raw mode a byte for the container's terminal
      await p.expect(PROMPT, 'the prompt after Ctrl-C');
      assert.ok(Date.now() - t0 < 60_000, 'the sleep was interrupted');
      assert.equal((await typed(p, 'echo $?', PROMPT)).trim(), '130', 'sleep died of SIGINT (128+2); the shell survived');
      p.type('exit 3\r');
      assert.equal(await p.status(), 3, 'tsvm run exits with the shell\'s status');
    });
    const s = state('hello');
    assert.equal(s.Status, 'exited');
    assert.equal(s.ExitCode, 3);
  });

  test('start hello (detached), attach in the pty, detach with Ctrl-P Ctrl-Q', { timeout: 2 * BOOT_MS }, async () => {
    assert.equal(ok('start', 'hello'), 'hello\n');
    assert.equal(state('hello').Running, true);
    const p = new HostPty(['sh', '-c', `"${process.execPath}" "${TSVM_CLI}" attach hello; echo "attach-status=$?"; stty`], env, { cols: 90, rows: 25 }, BOOT_MS);
    await showing(p, async () => {
      await p.untilRaw();
      p.type('echo attached-$((6*7))\r');
      await p.expect(/attached-42\r*\n[\s\S]*\/ # /, 'the command\'s output and a prompt');
      p.type(Buffer.from([0x10])); // Ctrl-P, held back by the CLI ...
      await sleep(300);
      p.type(Buffer.from([0x11])); // ... Ctrl-Q: detach
      await p.expect(/read escape sequence/, 'the detach');
      await p.expect(/attach-status=0\r*\n/, 'attach\'s status 0');
      assert.equal(await p.status(), 0);
      const stty = clean(p.shown()).split('attach-status=0\n')[1] ?? '';
      assert.match(stty, /speed \d+ baud/, 'stty ran after tsvm');
      assert.doesNotMatch(stty, /(^|\s)-(icanon|echo)(\s|$)/m, 'the terminal left raw mode');
    });
    assert.equal(state('hello').Running, true, 'detaching leaves it running');
    assert.match(ok('ps'), /Up .*\shello\n/, 'ps lists it');
  });

  test('restart hello, attach again, exit', { timeout: 3 * BOOT_MS }, async () => {
    const before = state('hello').StartedAt;
    assert.equal(ok('restart', '-t', '1', 'hello'), 'hello\n');
    const s = state('hello');
    assert.equal(s.Running, true);
    assert.notEqual(s.StartedAt, before, 'it ran again');
    const p = onPty(['attach', 'hello']);
    await showing(p, async () => {
      await p.untilRaw();
      p.type('echo again\r');
      await p.expect(/again\r*\n[\s\S]*\/ # /, 'the shell after the restart');
      p.type('exit\r');
      assert.equal(await p.status(), 0, 'attach ends with the container, with its status');
    });
    assert.equal(state('hello').Status, 'exited');
    assert.equal(state('hello').ExitCode, 0);
    ok('rm', 'hello');
  });
});
