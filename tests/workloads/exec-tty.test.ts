/**
 * Workload: `tsvm exec --tty` driven through pipes, as a container daemon
 * will drive it. Debian trixie's busybox-static (riscv64) runs `sh -i` on
 * the emulated terminal: tty names /dev/pts/0, stty size follows
 * --tty-size and a resize message on the --tty-control fd (whose SIGWINCH
 * makes the shell's line editor redraw its prompt), job control
 * works (a background job, fg, ^C kills the foreground job and the shell
 * survives, ^Z stops a job and bg resumes it), and the line discipline
 * edits a line a `read` gets. As a differential oracle the same busybox
 * runs under qemu-riscv64 inside util-linux `script -q -c`, on a real
 * Linux pty: the settings `stty -a` shows and the echo of edited lines
 * must be byte-identical.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { DebianArchive } from '../../src/images/debian-archive.js';
import { REPO_ROOT } from '../helpers/toolchain.js';
import { QEMU_CPU, TSVM_CLI, firstDifference, guestEnv, tsvmEnv, requireQemu, requireTsvm, runHost } from '../helpers/guest-run.js';

const ROOT = path.join(REPO_ROOT, '.cache', 'roots', 'busybox-static');
/** The prompt the shell is given (PS1), unlike any output it prints. */
const PROMPT = 'tty-test$ ';
/** How long to wait for a piece of output before the test fails (generous: CI machines are loaded). */
const WAIT_MS = 90_000;
let busybox = '';

/** An interactive `tsvm exec --tty` session on pipes, with a control pipe on its fd 3. */
class TtySession {
  private readonly child: ChildProcessWithoutNullStreams;
  private out = '';
  private mark = 0;
  private readonly exited: Promise<number>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [TSVM_CLI, 'exec', '--tty', '--tty-size', '100x30', '--tty-control', '3', busybox, ...args], {
      env: tsvmEnv({ PS1: PROMPT }), stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    }) as unknown as ChildProcessWithoutNullStreams;
    this.child.stdout.on('data', (b: Buffer) => { this.out += b.toString('latin1'); });
    this.child.stderr.on('data', (b: Buffer) => { this.out += b.toString('latin1'); });
    this.exited = new Promise((resolve) => this.child.on('close', (code, sig) => resolve(code ?? 128 + (sig === 'SIGKILL' ? 9 : 0))));
  }

  /** Waits until output after the last match matches `re`; returns the output up to the end of the match. */
  async expect(re: RegExp, what: string): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      const rest = this.out.slice(this.mark);
      const m = re.exec(rest);
      if (m !== null) {
        this.mark += m.index + m[0].length;
        return rest.slice(0, m.index + m[0].length);
      }
      if (Date.now() - t0 > WAIT_MS) assert.fail(`waiting for ${what}: got ${JSON.stringify(rest.slice(-400))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Types `s` on the terminal. */
  type(s: string): void { this.child.stdin.write(s); }

  /** Types a command line and returns its output up to the next prompt. */
  async run(cmd: string): Promise<string> {
    this.type(cmd + '\n');
    return this.expect(new RegExp(PROMPT.replace(/[$]/g, '\\$')), `the prompt after ${cmd}`);
  }

  /** Sends a control message (one JSON line) on the --tty-control fd. */
  control(msg: object): void {
    (this.child.stdio[3] as NodeJS.WritableStream).write(JSON.stringify(msg) + '\n');
  }

  /** The exit status, waiting up to WAIT_MS. */
  async status(): Promise<number> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), WAIT_MS);
    const s = await this.exited;
    clearTimeout(timer);
    return s;
  }
}

/** A pause so a job the shell just started has made itself the foreground group before a signal character is typed. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 500));

/** Runs busybox with `args` on a real Linux pty (script -q -c, qemu-riscv64), typing `input`. */
async function onLinuxPty(args: string, input: string): Promise<string> {
  const cmd = `${requireQemu()} -cpu ${QEMU_CPU} ${busybox} ${args}`;
  const r = await runHost('script', ['-q', '-e', '-c', cmd, '/dev/null'], { stdin: input, env: guestEnv({ PS1: PROMPT }), timeoutMs: WAIT_MS });
  return r.stdout.toString('latin1');
}

/** Runs busybox with `args` under tsvm exec --tty, typing `input`. */
async function onTsvmPty(args: string[], input: string): Promise<string> {
  const r = await runHost(process.execPath, [TSVM_CLI, 'exec', '--tty', busybox, ...args], { stdin: input, env: tsvmEnv({ PS1: PROMPT }), timeoutMs: WAIT_MS });
  return r.stdout.toString('latin1');
}

describe('tsvm exec --tty: busybox sh -i on an emulated terminal', { concurrency: 1 }, () => {
  before(async () => {
    requireTsvm();
    const archive = new DebianArchive({ progress: false });
    await archive.installRoot(['busybox-static'], ROOT);
    busybox = fs.realpathSync(path.join(ROOT, 'usr', 'bin', 'busybox'));
  });

  test('tty, stty size and a resize, job control, line editing, exit status', { timeout: 600_000 }, async () => {
    const s = new TtySession(['sh', '-i']);
    await s.expect(/tty-test\$ /, 'the first prompt');
    assert.match(await s.run('tty'), /\/dev\/pts\/0\r\n/);
    assert.match(await s.run('stty size'), /\r\n30 100\r\n/, '--tty-size 100x30');
    s.control({ resize: [120, 40] });
    await s.expect(/\rtty-test\$ /, 'the line editor redrawing its prompt on SIGWINCH');
    assert.match(await s.run('stty size'), /\r\n40 120\r\n/, 'after {"resize":[120,40]}');

    // A background job, then fg and ^C: the job dies of SIGINT, the shell stays.
    await s.run('sleep 100 &');
    assert.match(await s.run('jobs'), /\[1\]\+ +Running +sleep 100/);
    s.type('fg\n');
    await s.expect(/sleep 100\r\n/, 'fg naming the job');
    await settle();
    s.type('\x03');
    await s.expect(/\^C/, 'the echo of ^C');
    await s.expect(/tty-test\$ /, 'the prompt after ^C');
    assert.match(await s.run('echo rc=$?'), /rc=130/, 'the job died of SIGINT (128 + 2)');
    assert.match(await s.run('jobs; echo alive'), /alive/, 'the shell survived');

    // ^Z stops a foreground job; bg resumes it in the background.
    s.type("sh -c 'echo READY; exec sleep 50'\n");
    await s.expect(/READY\r\n/, 'the job running');
    await settle();
    s.type('\x1a');
    await s.expect(/Stopped/, 'the job stopped by ^Z');
    await s.expect(/tty-test\$ /, 'the prompt after ^Z');
    assert.match(await s.run('jobs'), /\[1\]\+ +Stopped +sh -c/);
    await s.run('bg');
    assert.match(await s.run('jobs'), /\[1\]\+ +Running +sh -c/);
    assert.match(await s.run('kill %1; wait'), /Terminated/);

    // The line discipline edits what `read` gets: ERASE twice, then more text.
    s.type('echo WAITING; read x; echo "[$x]"\n');
    await s.expect(/WAITING\r\n/, 'read about to run (the line editor has restored canonical mode)');
    s.type('abc\x7f\x7fXY\n');
    const edited = await s.expect(/\[aXY\]\r\n/, 'the edited line');
    assert.ok(edited.includes('abc\b \b\b \bXY\r\n'), `the echo rubs out two characters: ${JSON.stringify(edited)}`);
    await s.expect(/tty-test\$ /, 'the prompt after read');
    s.type('exit 3\n');
    assert.equal(await s.status(), 3);
  });

  test('the same settings and echoes as a Linux pty (qemu-riscv64 in script -q -c)', { timeout: 600_000 }, async (t) => {
    if (spawnSync('script', ['--version']).status !== 0) { t.skip('util-linux script is not installed'); return; }
    requireQemu();
    const fields = (s: string): string => s.replace(/\r/g, '').split('\n').filter((l) => l.length > 0 && !/speed|rows|line =/.test(l)).join('\n');
    const linuxStty = fields(await onLinuxPty('stty -a', ''));
    const tsvmStty = fields(await onTsvmPty(['stty', '-a'], ''));
    assert.match(linuxStty, /intr = \^C/, 'the oracle ran');
    assert.equal(tsvmStty, linuxStty, firstDifference(tsvmStty, linuxStty, ['tsvm', 'linux']));
    for (const input of ['abc\x7f\x7fXY\n', 'foo bar\x17baz\x15qux\n', 'one\x01two\x7f\x7f\x7f\x7f!\n']) {
      const args = `sh -c 'read x; echo "[$x]"'`;
      const linux = await onLinuxPty(args, input);
      const tsvm = await onTsvmPty(['sh', '-c', 'read x; echo "[$x]"'], input);
      assert.match(linux, /\[.*\]\r\n/, `the oracle ran for ${JSON.stringify(input)}`);
      assert.equal(tsvm, linux, `echo of ${JSON.stringify(input)}: ${firstDifference(tsvm, linux, ['tsvm', 'linux'])}`);
    }
  });
});
