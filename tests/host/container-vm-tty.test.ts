/**
 * The course's sequence in the vm runtime (issue 15 point 5: "in both
 * runtimes"): `run -it --runtime vm --name hello busybox /bin/sh` typed
 * into a REAL pseudo-terminal of the host (tests/helpers/host-pty.ts), then
 * start, attach with detach keys, `exec -it` a second shell with a pty of
 * its own (and one left running by a detach), restart and attach again. The container's
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
import { runTsvm, okTsvm } from '../helpers/container-cli.js';
import { TSVM_CLI } from '../helpers/guest-run.js';
import { HostPty, attachThenStty, courseAttachDetach, courseExecDetach, courseExecIt, courseRestartAttach, courseRunIt, hostPtyMissing, showing } from '../helpers/host-pty.js';

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
    await showing(p, () => courseRunIt(p, PROMPT, () => (JSON.parse(ok('inspect', 'hello')) as { Id: string }[])[0]!.Id));
    const s = state('hello');
    assert.equal(s.Status, 'exited');
    assert.equal(s.ExitCode, 3);
  });

  test('start hello (detached), attach in the pty, detach with Ctrl-P Ctrl-Q', { timeout: 2 * BOOT_MS }, async () => {
    assert.equal(ok('start', 'hello'), 'hello\n');
    assert.equal(state('hello').Running, true);
    const p = attachThenStty(TSVM_CLI, 'hello', env, 90, 25, BOOT_MS);
    await showing(p, () => courseAttachDetach(p));
    assert.equal(state('hello').Running, true, 'detaching leaves it running');
    assert.match(ok('ps'), /Up .*\shello\n/, 'ps lists it');
  });

  test('exec -it hello sh: a pty of its own, the window size and a resize, Ctrl-C, ps, exit 4', { timeout: BOOT_MS }, async () => {
    // No boot here: a minute for each step, so that a stuck one shows what the terminal showed.
    const p = new HostPty([process.execPath, TSVM_CLI, 'exec', '-it', 'hello', 'sh'], env, { cols: 100, rows: 30 }, 60_000);
    await showing(p, () => courseExecIt(p, PROMPT, /^\s*1\s+.*\/bin\/sh\s*$/m));
    assert.equal(state('hello').Running, true, 'the container runs on');
  });

  test('exec -it hello sh, detach with Ctrl-P Ctrl-Q: the shell goes on', { timeout: BOOT_MS }, async () => {
    const p = new HostPty([process.execPath, TSVM_CLI, 'exec', '-it', 'hello', 'sh'], env, { cols: 80, rows: 24 }, 60_000);
    const shell = await showing(p, () => courseExecDetach(p, PROMPT, () => ok('exec', 'hello', 'ps', '-o', 'pid,args')));
    ok('exec', 'hello', 'kill', '-9', shell);
  });

  test('restart hello, attach again, exit', { timeout: 3 * BOOT_MS }, async () => {
    await courseRestartAttach(ok, 'hello', () => onPty(['attach', 'hello']));
    ok('rm', 'hello');
  });
});
