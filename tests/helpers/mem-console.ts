/**
 * An in-process guest console for VMs built with buildVm in a test: it
 * keeps the guest's output as text, sends input, and waits for text to
 * appear. Waits are real timers (a woken wait resolves at once), so several
 * VMs in one process take turns on the event loop.
 */
import type { VmConsole } from '../../src/vmm/services.js';

/** A console whose output is kept in memory. */
export class MemConsole implements VmConsole {
  onInput: (bytes: Uint8Array) => void = () => {};
  onQuit: () => void = () => {};
  tap: (bytes: Uint8Array) => void = () => {};
  /** Everything the guest wrote, decoded. */
  text = '';
  private readonly dec = new TextDecoder();
  private waker: (() => void) | null = null;

  write(bytes: Uint8Array): void { this.tap(bytes); this.text += this.dec.decode(bytes, { stream: true }); }
  start(): void {}
  stop(): void {}
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waker = null; resolve(); }, ms);
      this.waker = () => { clearTimeout(t); this.waker = null; resolve(); };
    });
  }
  yield(): Promise<void> { return new Promise((r) => setImmediate(r)); }
  now(): number { return performance.now(); }
  wake(): void { this.waker?.(); }

  /** Types `line` into the guest. */
  send(line: string): void { this.onInput(new TextEncoder().encode(line)); }

  /** Resolves with the output from `from` once `needle` appears after it; rejects after `ms`. */
  async expect(needle: string | RegExp, ms: number, from = 0): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const tail = this.text.slice(from);
      if (typeof needle === 'string' ? tail.includes(needle) : needle.test(tail)) return tail;
      if (Date.now() > deadline) throw new Error(`console: no ${String(needle)} within ${ms} ms; last output: ${JSON.stringify(this.text.slice(-400))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Runs a shell command and returns its output up to the next `prompt`. */
  async run(cmd: string, prompt: string, ms = 120_000): Promise<string> {
    const from = this.text.length;
    this.send(`${cmd}\n`);
    const out = await this.expect(prompt, ms, from);
    return out.slice(0, out.lastIndexOf(prompt));
  }
}
