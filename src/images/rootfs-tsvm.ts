/**
 * Runs programs inside a root filesystem on tsvm's process VM, for the image
 * builders: each run is a child `tsvm exec --root DIR PROGRAM ARGS...`
 * (dist/src/cli/main.js), so guest programs (dpkg and the maintainer
 * scripts it starts) never run on the host, and a guest that misbehaves
 * cannot take the builder's process down. The guest's environment is exactly
 * the one given (plus nothing of the host's but TSVM_JIT, tsvm's own setting).
 */

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ImageError } from './errors.js';

/** Result of one guest run. */
export interface GuestRun {
  /** Exit status (Docker convention: 128+N for a signal N). */
  status: number;
  /** Everything the guest wrote to stdout. */
  stdout: string;
  /** Everything the guest (and tsvm) wrote to stderr. */
  stderr: string;
}

/** Options of runInRoot. */
export interface RunInRootOptions {
  /** Guest environment (KEY=VALUE strings' map). */
  env: Record<string, string>;
  /** Called with each complete stdout line as it arrives. */
  onLine?: (line: string) => void;
  /** Host command that starts tsvm; default [node, dist/src/cli/main.js]. */
  tsvm?: string[];
}

/** The default host command for tsvm: this Node.js running the built CLI. */
export function defaultTsvmCommand(): string[] {
  return [process.execPath, fileURLToPath(new URL('../cli/main.js', import.meta.url))];
}

/** Signal numbers for the 128+N status (signal(7), riscv64 = generic). */
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

/** Run `prog args` with `root` as / on tsvm's process VM; resolves with its status and output. */
export function runInRoot(root: string, prog: string, args: string[], opts: RunInRootOptions): Promise<GuestRun> {
  const [cmd, ...pre] = opts.tsvm ?? defaultTsvmCommand();
  if (cmd === undefined) throw new ImageError('empty tsvm command');
  const env: Record<string, string> = { ...opts.env };
  const jit = process.env['TSVM_JIT'];
  if (jit !== undefined) env['TSVM_JIT'] = jit;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...pre, 'exec', '--root', root, prog, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      stdout += s;
      if (opts.onLine === undefined) return;
      pending += s;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        opts.onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    child.stderr.on('data', (s: string) => {
      stderr += s;
    });
    child.on('error', (e) => reject(new ImageError(`cannot start tsvm (${cmd}): ${e.message}`, { cause: e })));
    child.on('close', (code, signal) => {
      if (pending !== '' && opts.onLine) opts.onLine(pending);
      const status = code ?? 128 + (signal !== null ? SIGNALS[signal] ?? 0 : 0);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The last `n` non-empty lines of `text`, joined by "; " (for one-line error messages). */
export function tailLines(text: string, n: number): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').slice(-n).join('; ');
}
