/**
 * The course's sequence with `debian` (issue 15 point 5): pull, images,
 * `run -it --name deb debian /bin/bash` typed into a real pty, bash's job
 * control (sleep &, jobs, fg, Ctrl-Z, bg, Ctrl-C), start, attach, detach,
 * restart, in both runtimes. The first `pull debian` on a machine builds
 * the image from about 80 Debian packages, their maintainer scripts run by
 * the process VM: 475 s on an idle 2-core machine with an empty
 * ~/.cache/tsvm, longer beside the rest of the suite, seconds once the
 * cache holds the built root. It has a file of its own so that the build
 * runs beside the other files, not at the end of container-tty's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTsvm, okTsvm, sleep, type Out } from '../helpers/container-cli.js';
import { TSVM_CLI } from '../helpers/guest-run.js';
import { HostPty, hostPtyMissing, showing, sttySize, typed } from '../helpers/host-pty.js';
import { mirrorConfigured } from '../helpers/mirror.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};
const noPty = hostPtyMissing();

const tsvm = (args: string[], input = ''): Out => runTsvm(env, args, input);

const ok = (...args: string[]): string => okTsvm(env, args);

function state(ref: string): { Status: string; Running: boolean; ExitCode: number } {
  return (JSON.parse(ok('inspect', ref)) as { State: ReturnType<typeof state> }[])[0]!.State;
}

/** `tsvm ARGS` on a new host pty of `cols`x`rows`. */
function onPty(args: string[], cols = 100, rows = 30): HostPty {
  return new HostPty([process.execPath, TSVM_CLI, ...args], env, { cols, rows });
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-container-debian-'));
  env = { ...process.env, TSVM_DATA: path.join(dir, 'images'), TSVM_HOST: path.join(dir, 'host.sock') };
  delete env['TSVM_CONTAINERS'];
});

after(() => {
  tsvm(['host', 'stop']);
  fs.rmSync(dir, { recursive: true, force: true });
});

const noMirror = !mirrorConfigured() && 'no Debian mirror configured';
for (const runtime of ['process', 'vm'] as const) test(`the course's sequence with debian and /bin/bash in the ${runtime} runtime: job control (sleep &, jobs, fg, Ctrl-Z, bg)`, { skip: noPty || noMirror, timeout: 5_400_000 }, async () => {
  const pulled = runTsvm(env, ['pull', 'debian'], '', 3_600_000);
  assert.equal(pulled.status, 0, `pull debian: ${pulled.stderr}`);
  assert.match(ok('images'), /^debian\s+(trixie|latest)\s+/m);
  const PROMPT = /root@[0-9a-f]{12}:\/# /;
  const p = onPty(['run', '-it', '--runtime', runtime, '--name', 'deb', 'debian', '/bin/bash'], 100, 30);
  await showing(p, async () => {
    await p.expect(PROMPT, 'bash\'s prompt');
    assert.match((await typed(p, 'tty', PROMPT)).trim(), /^\/dev\/pts\/\d+$/);
    assert.equal((await typed(p, 'stty size', PROMPT)).trim(), '30 100');
    p.resize(120, 40);
    assert.equal(await sttySize(p, PROMPT, '40 120'), '40 120');
    assert.match(await typed(p, 'sleep 100 &', PROMPT), /\[1\] \d+/);
    assert.match(await typed(p, 'jobs', PROMPT), /\[1\]\+\s+Running\s+sleep 100 &/);
    p.type('fg\r');
    await p.expect(/sleep 100\r*\n/, 'fg');
    await sleep(1000);
    p.type(Buffer.from([0x1a])); // Ctrl-Z: SIGTSTP to the foreground job
    await p.expect(/Stopped\s+sleep 100/, 'the job stopped');
    await p.expect(PROMPT, 'the prompt after Ctrl-Z');
    assert.match(await typed(p, 'bg', PROMPT), /\[1\]\+ sleep 100 &/);
    assert.match(await typed(p, 'jobs', PROMPT), /Running\s+sleep 100 &/);
    p.type('fg\r');
    await sleep(1000);
    p.type(Buffer.from([0x03]));
    await p.expect(PROMPT, 'the prompt after Ctrl-C');
    assert.equal((await typed(p, 'echo $?', PROMPT)).trim(), '130');
    p.type('exit 3\r');
    assert.equal(await p.status(), 3);
  });
  ok('start', 'deb');
  const a = onPty(['attach', 'deb']);
  await showing(a, async () => {
    await a.untilRaw();
    a.type('echo in-$((6*7))\r');
    await a.expect(/in-42/, 'the output');
    a.type(Buffer.from([0x10, 0x11]));
    assert.equal(await a.status(), 0);
  });
  assert.equal(state('deb').Running, true);
  ok('restart', '-t', '1', 'deb');
  const b = onPty(['attach', 'deb']);
  await showing(b, async () => {
    await b.untilRaw();
    b.type('exit\r');
    assert.equal(await b.status(), 0);
  });
  ok('rm', 'deb');
});
