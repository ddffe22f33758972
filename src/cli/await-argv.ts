/**
 * `tsvm exec --await-argv FD [PADDING]`: a warm spare of the process VM.
 * The container engine starts one ahead of time (src/host/containers/
 * spare-runtime.ts); it loads the process VM, the JIT and the command-line
 * parser (program.ts and what it imports), then waits for one line on host
 * fd FD: a JSON array, the rest of a `tsvm exec` command line. It then runs
 * that command as if started with it. Node's start-up and module loading, about a third of a short
 * container's start, happen before the container is asked for, and so does
 * one run of a tiny in-memory guest program (exec-warm-up.ts), which gets
 * V8 to compile the process VM's hot paths.
 *
 * The command line's title becomes `tsvm-runtime ARGS...` (PADDING, a long
 * unused argument, makes room for it in /proc/PID/cmdline), so the host can
 * still tell its runtime processes by their layer after it restarts.
 */
import fs from 'node:fs';

/** The flag that makes `tsvm exec` a spare. */
export const AWAIT_ARGV = '--await-argv';
/** Most bytes of the command line accepted on the fd (more is an error). */
const MAX_LINE = 1 << 20;

/** Reads one newline-terminated line from `fd`, then closes it. */
function readLine(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = fs.createReadStream('', { fd, autoClose: true });
    let text = '';
    s.on('data', (b: Buffer | string) => {
      text += b.toString();
      const nl = text.indexOf('\n');
      if (nl >= 0) { s.destroy(); resolve(text.slice(0, nl)); } else if (text.length > MAX_LINE) { s.destroy(); reject(new Error('command line too long')); }
    });
    s.on('end', () => reject(new Error('the host closed the fd before sending a command line')));
    s.on('error', reject);
  });
}

/** Parses the awaited line: a JSON array of strings. */
export function parseAwaitedArgv(line: string): string[] | string {
  let v: unknown;
  try { v = JSON.parse(line); } catch { return 'not JSON'; }
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) return 'expected a non-empty JSON array of strings';
  return v as string[];
}

/**
 * Preloads the exec path's modules while waiting on `fdArg` for the command
 * line; returns the argv to run (`process.argv` with the received arguments
 * after `exec`), or exits 125 with a one-line error.
 */
export async function awaitArgv(fdArg: string | undefined): Promise<string[]> {
  const fd = Number(fdArg);
  const fail = (msg: string): never => { process.stderr.write(`tsvm: ${AWAIT_ARGV}: ${msg}\n`); process.exit(125); };
  if (fdArg === undefined || !/^\d{1,9}$/.test(fdArg) || fd <= 2) fail('expected a file descriptor number above 2');
  const preload = Promise.all([import('./program.js'), import('./exec-command.js'), import('./sandbox-flags.js'), import('./tty-flags.js'), import('./exec-warm-up.js')]);
  const reading = readLine(fd);
  reading.catch(() => undefined); // awaited below
  let line: string;
  try {
    // The warm-up runs while the line may already be waiting: a container that comes that early waits for it.
    (await preload)[4].warmUpProcessVm();
    line = await reading;
  } catch (e) { return fail((e as Error).message); }
  const args = parseAwaitedArgv(line);
  if (typeof args === 'string') return fail(args);
  process.title = ['tsvm-runtime', ...args].join(' ');
  return [process.argv[0]!, process.argv[1]!, 'exec', ...args];
}
