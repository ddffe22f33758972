/**
 * Drives a `tsvm run` guest console like `expect`: waits for text, sends
 * lines, collects everything, and reports the exit status.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ESC = String.fromCharCode(0x1b);
/** Removes terminal escape sequences (busybox ash sends ESC[6n before each prompt). */
export function stripAnsi(text: string): string {
  return text.split(ESC).map((part, i) => (i === 0 ? part : part.replace(/^\[[0-9;]*[a-zA-Z]/, ''))).join('');
}

/** A kernel message on the console: the kernel prints it wherever the cursor is, even mid-line. */
const KERNEL_MESSAGE = String.raw`\[\s*\d+\.\d+\] [^\n]*\n`;

/** A regex for `text` echoed by the guest, with kernel messages allowed between any two characters. */
export function echoPattern(text: string): RegExp {
  const esc = (c: string): string => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return new RegExp([...text].map(esc).join(`(?:\r?\n?${KERNEL_MESSAGE})*`));
}

/** Removes kernel messages from console output, whole lines and those printed mid-line. */
export function dropKernelMessages(text: string): string {
  return text.replace(new RegExp(KERNEL_MESSAGE, 'g'), '');
}

/** Path of the built CLI. */
export const TSVM_CLI = path.resolve('dist/src/cli/main.js');

/** A running `tsvm run` with its console on pipes. */
export class ConsoleSession {
  readonly child: ChildProcess;
  output = '';
  stderr = '';
  private cursor = 0;
  readonly exited: Promise<number>;
  private waiters: (() => void)[] = [];

  constructor(args: string[], cmd: string[] = ['node', TSVM_CLI, 'run']) {
    this.child = spawn(cmd[0]!, [...cmd.slice(1), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => { this.output += d.toString('latin1'); this.notify(); });
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); this.notify(); });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, sig) => { this.notify(); resolve(code ?? 128 + (sig ? 9 : 0)); }));
  }

  private notify(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  /** Waits until `text` appears after the last match; returns the output in between. */
  async expect(text: string | RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.output.slice(this.cursor);
      const m = typeof text === 'string' ? (rest.includes(text) ? { index: rest.indexOf(text), len: text.length } : null)
        : (() => { const r = text.exec(rest); return r ? { index: r.index, len: r[0].length } : null; })();
      if (m) { this.cursor += m.index + m.len; return rest.slice(0, m.index); }
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`timed out waiting for ${String(text)}; last output:\n${this.output.slice(-1500)}\nstderr:\n${this.stderr.slice(-800)}`);
      }
      await new Promise<void>((r) => { const t = setTimeout(r, Math.min(1000, Math.max(1, deadline - Date.now()))); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** Sends a line to the guest console. */
  send(line: string): void { this.child.stdin!.write(line + '\n'); }

  /** Sends a command and returns its output (up to the next prompt). */
  async run(cmd: string, prompt: string, timeoutMs = 60000): Promise<string> {
    this.send(cmd);
    // Kernel messages printed on the same console may interleave with the echo and the output.
    await this.expect(echoPattern(cmd), timeoutMs);
    return dropKernelMessages(stripAnsi(await this.expect(prompt, timeoutMs))).trim();
  }

  /** Kills the VM if it is still running. */
  kill(): void { if (this.child.exitCode === null) this.child.kill('SIGKILL'); }
}
