/**
 * The process runtime's warm spare: one `tsvm exec --await-argv 3` child
 * kept ready by the container engine, which has already paid for Node's
 * start-up and for loading the process VM (src/cli/await-argv.ts). Starting
 * a container takes it and sends it the container's command line; a new
 * spare is started a little later, off the critical path.
 *
 * The spare is started only after the host has started its first container
 * (a host that only runs VMs never pays for it), is replaced if it dies,
 * and is killed when the host stops. Every child shares one stdio layout:
 * stdin, stdout, stderr, fd 3 (a terminal's control pipe, tty.ts), fd 4
 * (the command line) and fd 5 (the exit status, `--status-fd`), so a spare can stand in
 * for a fresh spawn. When no spare is ready, `take` spawns the same way and
 * sends the command line at once: every runtime child starts through this
 * one path.
 */
import { spawn, type ChildProcess, type StdioPipe } from 'node:child_process';

/** How the host runs `tsvm`: node, its flags, the CLI script. */
export interface SpareCommand { execPath: string; args: string[] }

/** The child's fd that receives the command line (after fd 3, the terminal's control pipe: tty.ts TTY_CONTROL_FD). */
export const ARGV_FD = 4;
/** The child's fd on which it reports its exit status (`tsvm exec --status-fd`) before it ends itself. */
export const STATUS_FD = 5;
/** Milliseconds after a spare is taken before the next one starts (the new container runs first). */
const REFILL_DELAY_MS = 500;
/**
 * An unused argument that makes room in /proc/PID/cmdline for the title the
 * spare takes once it knows its command line (`tsvm-runtime ARGS`), so the
 * host can find a runtime's layer there after a restart (Linux's
 * setproctitle semantics: the title may use the whole argument area).
 */
const TITLE_ROOM = '-'.repeat(1024);

/** The stdio of every runtime child: stdin, stdout, stderr, the terminal's control pipe (used with -t), the command-line fd, the status fd. */
const STDIO: StdioPipe[] = Array<StdioPipe>(STATUS_FD + 1).fill('pipe');

/** Keeps one warm `tsvm exec` ready (see the module comment). */
export class SpareRuntime {
  private spare: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Containers started from a spare, and from a fresh spawn (for stats and tests). */
  readonly counts = { warm: 0, cold: 0 };

  constructor(private readonly cmd: SpareCommand, private readonly env: () => NodeJS.ProcessEnv, private readonly enabled: boolean) {}

  /** A child running `tsvm exec ARGS` (`args`: what follows `exec`), warm if a spare is ready. */
  take(args: string[]): ChildProcess {
    let child = this.spare;
    this.spare = null;
    if (child !== null && (child.exitCode !== null || child.signalCode !== null || child.killed)) child = null;
    if (child === null) {
      this.counts.cold++;
      child = this.spawn();
    } else this.counts.warm++;
    const argv = child.stdio[ARGV_FD] as NodeJS.WritableStream & { on(e: 'error', f: () => void): unknown };
    argv.on('error', () => { /* the child died first: its exit reports it */ });
    argv.end(`${JSON.stringify(args)}\n`);
    this.refill(REFILL_DELAY_MS);
    return child;
  }

  /** Stops keeping a spare and kills the one waiting. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.spare?.kill('SIGKILL');
    this.spare = null;
  }

  private spawn(): ChildProcess {
    return spawn(this.cmd.execPath, [...this.cmd.args, 'exec', '--await-argv', String(ARGV_FD), TITLE_ROOM], { stdio: STDIO, env: this.env() });
  }

  /** Starts the next spare after `ms` (once; nothing when disabled or closed). */
  private refill(ms: number): void {
    if (!this.enabled || this.closed || this.timer !== null || this.spare !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed || this.spare !== null) return;
      const s = this.spawn();
      s.on('error', () => { /* reported when taken: a dead spare is replaced by a fresh spawn */ });
      s.once('exit', () => {
        if (this.spare === s) { this.spare = null; this.refill(REFILL_DELAY_MS * 10); }
      });
      // An idle spare must not keep the host's event loop alive.
      s.unref();
      for (const io of s.stdio) (io as { unref?: () => void } | null)?.unref?.();
      this.spare = s;
    }, ms);
    this.timer.unref();
  }
}
