/**
 * The tsvm CLI as the container tests (tests/host/container*.test.ts) drive
 * it: each test file has a private image store, container directory and
 * host socket in a temporary directory, and runs verbs to their end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { TSVM_CLI } from './guest-run.js';

/** What a CLI run gave. */
export interface Out { status: number; stdout: string; stderr: string }

/** Runs `tsvm ARGS` to its end with `env` (and `input` on stdin). */
export function runTsvm(env: NodeJS.ProcessEnv, args: string[], input = '', timeoutMs = 180_000): Out {
  const r = spawnSync(process.execPath, [TSVM_CLI, ...args], { env, input, encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `tsvm ARGS` with `env`, expecting status 0; its stdout. */
export function okTsvm(env: NodeJS.ProcessEnv, args: string[]): string {
  const r = runTsvm(env, args);
  assert.equal(r.status, 0, `tsvm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Expects one line on stderr matching `re` and exit `code`. */
export function refused(r: Out, code: number, re: RegExp): void {
  assert.equal(r.status, code, `exit status (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0]!, re);
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 250 ms until it holds; throws naming `what` after `ms`. */
export async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}
