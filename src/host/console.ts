/**
 * The guest console on the host's stdin/stdout, as `qemu-system -nographic`
 * provides it: raw mode on a TTY, `Ctrl-A x` to quit, `Ctrl-A Ctrl-A` to
 * send a literal Ctrl-A; plain pipes work for scripting.
 *
 * Also the VmHost adapter: timed waits that end early when input arrives,
 * so an idle guest sleeps instead of spinning.
 */
import fs from 'node:fs';
import type { VmConsole } from '../vmm/services.js';
import type { CharBackend, Clock } from '../devices/device.js';

/** QEMU's escape character for -nographic consoles: Ctrl-A. */
const ESCAPE = 0x01;

/** The host side of the guest console. */
export class HostConsole implements CharBackend, VmConsole {
  /** Receives guest-bound input bytes. */
  onInput: (bytes: Uint8Array) => void = () => {};
  /** Called on `Ctrl-A x`. */
  onQuit: () => void = () => {};
  /** Called when stdin closes (end of a scripted session). */
  onEof: () => void = () => {};
  private escape = false;
  private rawSet = false;
  private waker: (() => void) | null = null;
  private readonly outFd: number;
  private pendingOut: Uint8Array[] = [];
  private outBytes = 0;
  /** Sees every byte of guest output (e.g. for panic detection). */
  tap: (bytes: Uint8Array) => void = () => {};

  constructor(outFd = 1) { this.outFd = outFd; }

  /** Starts reading stdin (raw mode on a TTY). */
  start(): void {
    const stdin = process.stdin;
    if (stdin.isTTY) { stdin.setRawMode(true); this.rawSet = true; }
    stdin.on('data', (chunk: Buffer) => this.fromHost(new Uint8Array(chunk)));
    stdin.on('end', () => { this.onEof(); this.kick(); });
    stdin.on('error', () => { /* stdin closed under us: nothing more to read */ });
    stdin.resume();
  }

  /** Restores the terminal and stops reading. */
  stop(): void {
    this.flush();
    if (this.rawSet) { try { process.stdin.setRawMode(false); } catch { /* not a TTY anymore */ } }
    process.stdin.pause();
    process.stdin.removeAllListeners('data');
  }

  private fromHost(b: Uint8Array): void {
    const out: number[] = [];
    for (const c of b) {
      if (this.escape) {
        this.escape = false;
        if (c === 0x78 /* x */) { this.onQuit(); this.kick(); return; }
        if (c === ESCAPE) out.push(ESCAPE);
        continue;
      }
      if (c === ESCAPE && this.rawSet) { this.escape = true; continue; }
      out.push(c);
    }
    if (out.length) this.onInput(Uint8Array.from(out));
    this.kick();
  }

  private kick(): void { const w = this.waker; this.waker = null; w?.(); }

  /** VmHost: ends a pending wait (a device event arrived). */
  wake(): void { this.kick(); }

  /** Guest output (CharBackend): buffered, flushed at each wait/yield or when large. */
  write(bytes: Uint8Array): void {
    this.tap(bytes);
    this.pendingOut.push(bytes.slice());
    this.outBytes += bytes.length;
    if (this.outBytes >= 4096) this.flush();
  }

  /** Writes buffered output to stdout. */
  flush(): void {
    if (this.outBytes === 0) return;
    const all = new Uint8Array(this.outBytes);
    let o = 0;
    for (const p of this.pendingOut) { all.set(p, o); o += p.length; }
    this.pendingOut = []; this.outBytes = 0;
    let done = 0;
    while (done < all.length) {
      try { done += fs.writeSync(this.outFd, all, done); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        return; // stdout closed: drop the output, the VM keeps running
      }
    }
  }

  /** VmHost: sleep up to `ms`, waking early on input. */
  wait(ms: number): Promise<void> {
    this.flush();
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waker = null; resolve(); }, ms);
      this.waker = () => { clearTimeout(t); resolve(); };
    });
  }

  /** VmHost: let the event loop deliver input. */
  yield(): Promise<void> {
    this.flush();
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** VmHost: monotonic ms. */
  now(): number { return performance.now(); }
}

/** The host clock for devices. */
export const hostClock: Clock = {
  monotonicNs: () => performance.now() * 1e6,
  realtimeNs: () => Date.now() * 1e6,
};
