/**
 * A command on a real pseudo-terminal of the host, for tests that drive a
 * CLI as a user at a terminal would: python3's `pty` module (Debian's
 * python3) forks the command on a new pty whose window size is set before
 * the command starts; the test types into the master and reads what the
 * terminal shows. A resize is the TIOCSWINSZ ioctl on the master (the
 * kernel then sends SIGWINCH to the terminal's foreground process group,
 * tty_ioctl(4)), asked for on the bridge's fd 3, where the test may also
 * ask for the terminal's local and output modes (c_lflag and c_oflag,
 * termios(3): tcgetattr on the master gives the pty's settings), answered on the bridge's stderr. The
 * bridge exits with the command's status (128+N for signal N).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';

/** c_lflag bits (Linux asm-generic/termbits.h; termios(3)): canonical mode and echo. */
export const TERMIOS_ICANON = 0o2;
/** Echo input. */
export const TERMIOS_ECHO = 0o10;
/** c_oflag: output processing (ONLCR and the rest act only with it). */
export const TERMIOS_OPOST = 0o1;

/** The bridge: argv[1..2] the size, the rest the command. */
const BRIDGE = String.raw`
import fcntl, json, os, pty, select, struct, sys, termios
cols, rows = int(sys.argv[1]), int(sys.argv[2])
argv = sys.argv[3:]
def winsize(fd, c, r):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', r, c, 0, 0))
pid, fd = pty.fork()
if pid == 0:
    winsize(0, cols, rows)
    os.execvp(argv[0], argv)
ins = [0, 3, fd]
ctl = b''
while True:
    r, _, _ = select.select(ins, [], [])
    if fd in r:
        try:
            d = os.read(fd, 65536)
        except OSError:
            d = b''
        if not d:
            break
        os.write(1, d)
    if 0 in r:
        d = os.read(0, 65536)
        if d:
            os.write(fd, d)
        else:
            ins.remove(0)
    if 3 in r:
        d = os.read(3, 4096)
        if not d:
            ins.remove(3)
        ctl += d
        while b'\n' in ctl:
            line, ctl = ctl.split(b'\n', 1)
            m = json.loads(line)
            if 'resize' in m:
                winsize(fd, m['resize'][0], m['resize'][1])
            else:
                a = termios.tcgetattr(fd)
                os.write(2, b'lflag %d oflag %d\n' % (a[3], a[1]))
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
`;

/** Whether python3 with its pty module is there (Debian's python3); a skip reason if not. */
export function hostPtyMissing(): string | false {
  const r = spawnSync('python3', ['-c', 'import pty, termios, fcntl'], { encoding: 'utf8' });
  return r.status === 0 ? false : 'python3 (Debian package python3) is needed to drive a real pty';
}

/** A command running on a host pty. */
export class HostPty {
  private readonly child: ChildProcess;
  private out = '';
  private err = '';
  private mark = 0;
  private readonly exited: Promise<number>;

  constructor(argv: string[], env: NodeJS.ProcessEnv, size: { cols: number; rows: number }, private readonly waitMs = 120_000) {
    this.child = spawn('python3', ['-c', BRIDGE, String(size.cols), String(size.rows), ...argv], { env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (b: Buffer) => { this.out += b.toString('latin1'); });
    this.child.stderr!.on('data', (b: Buffer) => { this.err += b.toString('latin1'); });
    this.child.stdin!.on('error', () => { /* the bridge ended */ });
    (this.child.stdio[3] as Writable).on('error', () => { /* the bridge ended */ });
    this.exited = new Promise((resolve) => this.child.on('close', (code, sig) => resolve(code ?? 128 + (sig === 'SIGKILL' ? 9 : 15))));
  }

  /** Everything the terminal showed so far (and what the bridge itself said, if anything). */
  shown(): string { return this.out + (this.err === '' ? '' : `\n[bridge: ${this.err}]`); }

  /** The terminal's local and output modes now (termios c_lflag, c_oflag). */
  async modes(): Promise<{ lflag: number; oflag: number }> {
    const seen = this.err.length;
    (this.child.stdio[3] as Writable).write('{"modes":true}\n');
    const t0 = Date.now();
    for (;;) {
      const m = /lflag (\d+) oflag (\d+)\n/.exec(this.err.slice(seen));
      if (m !== null) return { lflag: Number(m[1]), oflag: Number(m[2]) };
      if (Date.now() - t0 > this.waitMs) assert.fail(`the bridge did not answer: ${this.err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /**
   * Waits until the program on the terminal has put it in raw mode as
   * Docker's CLI does (moby/term MakeRaw, cfmakeraw(3)): ICANON and ECHO
   * off, and OPOST off, so the container's own CR LF is not given another CR.
   */
  async untilRaw(): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      const m = await this.modes();
      if ((m.lflag & (TERMIOS_ICANON | TERMIOS_ECHO)) === 0 && (m.oflag & TERMIOS_OPOST) === 0) return;
      if (Date.now() - t0 > this.waitMs) assert.fail(`the terminal never went raw (lflag ${m.lflag.toString(8)}, oflag ${m.oflag.toString(8)}); it showed ${JSON.stringify(this.out.slice(-400))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits until what the terminal shows after the last match matches `re`; the text up to the end of the match. */
  async expect(re: RegExp, what: string): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      const rest = this.out.slice(this.mark);
      const m = re.exec(rest);
      if (m !== null) {
        this.mark += m.index + m[0].length;
        return rest.slice(0, m.index + m[0].length);
      }
      if (Date.now() - t0 > this.waitMs) assert.fail(`waiting for ${what}; the terminal showed, after the last match: ${JSON.stringify(rest.slice(-600))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Types `s` (a string or raw bytes) on the terminal. */
  type(s: string | Buffer): void { this.child.stdin!.write(s); }

  /** Sets the terminal's window size (the child gets SIGWINCH). */
  resize(cols: number, rows: number): void {
    (this.child.stdio[3] as Writable).write(`${JSON.stringify({ resize: [cols, rows] })}\n`);
  }

  /** The command's exit status, waiting up to the wait time (then it is killed). */
  async status(): Promise<number> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), this.waitMs);
    const s = await this.exited;
    clearTimeout(timer);
    return s;
  }

  /** Ends the bridge and its command (cleanup after a failure). */
  kill(): void { this.child.kill('SIGKILL'); }
}

/** ECMA-48 control sequences (CSI): busybox's cursor query, bash's bracketed paste. */
const CSI = new RegExp(`${String.fromCharCode(0x1b)}\\[[?0-9;]*[@-~]`, 'g');

/** A terminal's text without CRs and control sequences. */
export const clean = (s: string): string => s.replace(CSI, '').replace(/\r/g, '');

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Types `cmd` and Enter at a shell on `p`; its output (after the echoed line, up to the next prompt), cleaned. */
export async function typed(p: HostPty, cmd: string, prompt: RegExp): Promise<string> {
  p.type(cmd + '\r');
  await p.expect(new RegExp(`${escapeRe(cmd)}\r*\n`), `the echo of ${JSON.stringify(cmd)}`);
  return clean(await p.expect(prompt, `the prompt after ${JSON.stringify(cmd)}`)).replace(prompt, '');
}

/**
 * Runs `stty size` at the shell until it shows `want` (a resize travels:
 * SIGWINCH, the CLI, the host, the runtime); the last answer. The answer
 * is read without the command's echo, which the shell may redraw when the
 * SIGWINCH lands while the command is being typed.
 */
export async function sttySize(p: HostPty, prompt: RegExp, want: string): Promise<string> {
  let got = '';
  for (let i = 0; i < 40; i++) {
    p.type('stty size\r');
    // (After a redraw the answer may follow the redrawn command line with no newline before it.)
    got = /(\d+ \d+)\r*\n$/.exec(await p.expect(/\d+ \d+\r*\n/, 'the answer of stty size'))?.[1] ?? '';
    await p.expect(prompt, 'the prompt after stty size');
    if (got === want) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return got;
}

/** Runs `fn`; a failure carries everything `p` showed. */
export async function showing<T>(p: HostPty, fn: () => Promise<T>): Promise<T> {
  try { return await fn(); } catch (e) {
    p.kill();
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`${msg}\n--- the terminal showed ---\n${JSON.stringify(p.shown())}`, { cause: e });
  }
}

/**
 * The course's `run -it --name hello IMAGE /bin/sh` at its shell (issue 15
 * point 5), the same in both container runtimes; `p` is a 100x30 terminal:
 * the prompt in raw mode, the hostname is the container's short id `id`,
 * stdin is a pty, the shell is PID 1, the window size and a change of it
 * (132x43), Ctrl-C ends `sleep 100` (status 130) and not the shell, and
 * `exit 3` is tsvm's status.
 */
export async function courseRunIt(p: HostPty, prompt: RegExp, id: () => string): Promise<void> {
  await p.expect(prompt, 'the shell\'s prompt');
  await p.untilRaw(); // the CLI put the outer terminal in raw mode
  assert.equal((await typed(p, 'hostname', prompt)).trim(), id().slice(0, 12), 'the hostname is the short id');
  assert.equal((await typed(p, 'echo $$', prompt)).trim(), '1', 'the shell is PID 1 of the container');
  await terminalSteps(p, prompt);
  p.type('echo one; echo two\r');
  assert.match(await p.expect(prompt, 'the prompt after two echoes'), /one\r\ntwo\r\n/, 'each line ends in one CR LF: the outer terminal adds no CR (OPOST off)');
  p.type('exit 3\r');
  assert.equal(await p.status(), 3, 'tsvm run exits with the shell\'s status');
}

/**
 * What both runs of a shell on a 100x30 terminal check: stdin is a pty,
 * the window size and a change of it (132x43), and Ctrl-C ends `sleep 100`
 * (status 130) and not the shell.
 */
async function terminalSteps(p: HostPty, prompt: RegExp): Promise<void> {
  assert.match((await typed(p, 'tty', prompt)).trim(), /^\/dev\/pts\/\d+$/, 'stdin is a pseudo-terminal');
  assert.equal((await typed(p, 'stty size', prompt)).trim(), '30 100', 'the outer terminal\'s size');
  p.resize(132, 43);
  assert.equal(await sttySize(p, prompt, '43 132'), '43 132', 'the size after the outer terminal changed');
  p.type('sleep 100\r');
  await p.expect(/sleep 100\r*\n/, 'the echo of sleep 100');
  await new Promise((r) => setTimeout(r, 1500));
  const t0 = Date.now();
  p.type(Buffer.from([0x03])); // Ctrl-C: in raw mode a byte for the terminal, SIGINT from its line discipline
  await p.expect(prompt, 'the prompt after Ctrl-C');
  assert.ok(Date.now() - t0 < 60_000, 'the sleep was interrupted');
  assert.equal((await typed(p, 'echo $?', prompt)).trim(), '130', 'sleep died of SIGINT (128+2); the shell survived');
}

/**
 * `exec -it C sh` on `p`, a 100x30 terminal, in either runtime: the
 * prompt in raw mode, stdin is a pty of its own, the window size and a
 * change of it (132x43), Ctrl-C ends `sleep 100` (130) and not the shell,
 * `ps` shows the container's PID 1 (`pid1`) and the shell, and `exit 4`
 * is tsvm's status.
 */
export async function courseExecIt(p: HostPty, prompt: RegExp, pid1: RegExp): Promise<void> {
  await p.expect(prompt, 'the shell\'s prompt');
  await p.untilRaw(); // the CLI holds the outer terminal in raw mode
  await terminalSteps(p, prompt);
  const ps = await typed(p, 'ps', prompt);
  assert.match(ps, pid1, `PID 1 is the container's command:\n${ps}`);
  assert.match(ps, /^\s*\d+\s+.*\ssh\s*$/m, `the shell is there:\n${ps}`);
  p.type('exit 4\r');
  assert.equal(await p.status(), 4, 'tsvm exec exits with the shell\'s status');
}

/** Whether `stty`'s report (settings that differ from sane) shows raw mode (ICANON or ECHO off). */
export const sttyRaw = (s: string): boolean => /(^|\s)-(icanon|echo)(\s|$)/m.test(s);

/** A terminal of `cols`x`rows` running `tsvm attach NAME`, then the status and `stty` of the shell it ran under. */
export function attachThenStty(cli: string, name: string, env: NodeJS.ProcessEnv, cols: number, rows: number, waitMs?: number): HostPty {
  return new HostPty(['sh', '-c', `"${process.execPath}" "${cli}" attach ${name}; echo "attach-status=$?"; stty`], env, { cols, rows }, waitMs);
}

/**
 * The course's attach and detach on `p` (made by attachThenStty): a
 * command's output at the container's busybox shell, `between` (more
 * checks while attached), then Ctrl-P Ctrl-Q: attach ends with status 0
 * and the terminal has left raw mode.
 */
export async function courseAttachDetach(p: HostPty, between: () => Promise<void> = async () => {}): Promise<void> {
  await p.untilRaw(); // attached: nothing shows until the shell prints
  p.type('echo attached-$((6*7))\r');
  await p.expect(/attached-42\r*\n[\s\S]*\/ # /, 'the command\'s output and a prompt');
  await between();
  p.type(Buffer.from([0x10])); // Ctrl-P, held back by the CLI ...
  await new Promise((r) => setTimeout(r, 300));
  p.type(Buffer.from([0x11])); // ... Ctrl-Q: detach
  await p.expect(/read escape sequence/, 'the detach');
  await p.expect(/attach-status=0\r*\n/, 'attach\'s status 0');
  assert.equal(await p.status(), 0);
  const stty = clean(p.shown()).split('attach-status=0\n')[1] ?? '';
  assert.match(stty, /speed \d+ baud/, 'stty ran after tsvm');
  assert.ok(!sttyRaw(stty), `the terminal left raw mode: ${stty}`);
}

/**
 * The course's restart: `restart -t 1 NAME` runs it again (a new
 * StartedAt), `attach` on `p` reaches the shell, and its `exit` ends the
 * container with status 0. `ok` runs the CLI, expecting status 0.
 */
export async function courseRestartAttach(ok: (...args: string[]) => string, name: string, attach: () => HostPty): Promise<void> {
  const state = (): { Running: boolean; Status: string; ExitCode: number; StartedAt: string } =>
    (JSON.parse(ok('inspect', name)) as { State: ReturnType<typeof state> }[])[0]!.State;
  const before = state().StartedAt;
  assert.equal(ok('restart', '-t', '1', name), `${name}\n`);
  const s = state();
  assert.equal(s.Running, true);
  assert.notEqual(s.StartedAt, before, 'it ran again');
  const p = attach();
  await showing(p, async () => {
    await p.untilRaw();
    p.type('echo again\r');
    await p.expect(/again\r*\n[\s\S]*\/ # /, 'the shell after the restart');
    p.type('exit\r');
    assert.equal(await p.status(), 0, 'attach ends with the container, with its status');
  });
  assert.equal(state().Status, 'exited');
  assert.equal(state().ExitCode, 0);
}

/**
 * `exec -it C sh` on `p`, in either runtime: the shell runs `sleep 3` and
 * the client detaches with Ctrl-P Ctrl-Q (status 0). Once the job has
 * ended the shell reads its terminal again: it must still be there, not
 * at EOF (docker exec leaves a detached process running). `ps` lists the
 * container's processes (`ps -o pid,args`); returns the shell's pid.
 */
export async function courseExecDetach(p: HostPty, prompt: RegExp, ps: () => string): Promise<string> {
  await p.expect(prompt, 'the shell\'s prompt');
  await p.untilRaw();
  p.type('sleep 3\r');
  await p.expect(/sleep 3\r*\n/, 'the echo of sleep 3');
  p.type(Buffer.from([0x10, 0x11]));
  await p.expect(/read escape sequence/, 'the detach');
  assert.equal(await p.status(), 0);
  await new Promise((r) => setTimeout(r, 6000));
  const list = ps();
  const shell = /^\s*(\d+)\s+sh\s*$/m.exec(list);
  assert.ok(shell !== null, `the detached exec's shell still runs:\n${list}`);
  return shell[1]!;
}
