/**
 * Starts a tsvm host (`tsvm host start`, in the foreground) on a socket in
 * a fresh temporary directory for a test, and helpers to wait for a VM's
 * console output through the API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TSVM_CLI } from './console-session.js';
import { hostAnswers, hostRequest } from '../../src/host/host-client.js';

/** A host process for one test file. */
export interface TestHost { dir: string; socket: string; child: ChildProcess; stderr: () => string; exited: Promise<number> }

/** Starts a host with `env` added to the environment; resolves once its socket answers. */
export async function startTestHost(env: Record<string, string> = {}, args: string[] = []): Promise<TestHost> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-host-test-'));
  const socket = path.join(dir, 'host.sock');
  const child = spawn(process.execPath, [TSVM_CLI, 'host', 'start', '--socket', socket, '--pool', '1G', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdout!.resume();
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 128)));
  const deadline = Date.now() + 30_000;
  while (!(await hostAnswers(socket))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the host did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { dir, socket, child, stderr: () => err, exited };
}

/** Polls VM `name`'s console log until it contains `text`; returns the log. */
export async function waitForLog(socket: string, name: string, text: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await hostRequest(socket, 'GET', `/v1/vms/${name}/logs`);
    const log = (r.raw).toString('latin1');
    if (log.includes(text)) return log;
    if (Date.now() > deadline) throw new Error(`timed out waiting for '${text}' in ${name}'s log (status ${r.status}); last output:\n${log.slice(-1500)}`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** Polls until `check` returns true. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}
