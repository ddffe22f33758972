/**
 * The engine's side of a container's terminal (Docker's `-t`, Config.Tty)
 * on the process runtime: the main process runs as `tsvm exec --tty
 * --tty-size COLSxROWS --tty-control 3`, so the guest gets the process
 * VM's emulated pseudo-terminal (src/process/pty.ts) as fds 0-2, tsvm's
 * stdin feeds its master and the master's output is tsvm's stdout. The
 * host holds one more pipe to the child, its fd 3, on which a window-size
 * change is one JSON line `{"resize":[COLS,ROWS]}` (src/host/node-terminal.ts).
 * As in Docker, a terminal merges stdout and stderr into one stream, which
 * the log and attached clients get as stdout.
 */
import type { ChildProcess } from 'node:child_process';
import { ContainerError } from './store.js';

/** The child's fd that carries resize messages (the first one after stdin, stdout, stderr). */
export const TTY_CONTROL_FD = 3;
/** Largest window dimension: struct winsize's fields are unsigned short (tty_ioctl(4), TIOCGWINSZ). */
const WINSIZE_MAX = 65535;

/** A terminal's window size in character cells. */
export interface TtySize { cols: number; rows: number }

/** The size of a terminal no client has sized yet: `tsvm exec --tty-size`'s default, the VT100's 80x24. */
export const DEFAULT_TTY_SIZE: TtySize = { cols: 80, rows: 24 };

/**
 * Checks Docker's resize query (`h` rows, `w` columns, Engine API
 * "Resize a container TTY"); a ContainerError 400 for a missing or bad value.
 */
export function parseWindowSize(h: string | null, w: string | null): TtySize {
  const one = (v: string | null, k: string): number => {
    if (v === null || !/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > WINSIZE_MAX) {
      throw new ContainerError(400, `${k}=${v ?? ''}: expected the window's ${k === 'h' ? 'rows' : 'columns'}, a whole number from 1 to ${WINSIZE_MAX}`);
    }
    return Number(v);
  };
  return { rows: one(h, 'h'), cols: one(w, 'w') };
}


/** The sizes and control pipes of the containers' terminals. */
export class ContainerTerminals {
  private readonly sizes = new Map<string, TtySize>();

  /** Sets the size the next start of container `id` gives its terminal (a runtime that resizes itself, the vm runtime's agent, records it here too). */
  setSize(id: string, size: TtySize): void { this.sizes.set(id, size); }

  /** The size the next start of container `id` gives its terminal (the VT100's 80x24 until a client sets one). */
  sizeOf(id: string): TtySize { return this.sizes.get(id) ?? DEFAULT_TTY_SIZE; }

  /** The `tsvm exec` flags that give container `id`'s main process its terminal. */
  execArgs(id: string): string[] {
    const s = this.sizeOf(id);
    return ['--tty', '--tty-size', `${s.cols}x${s.rows}`, '--tty-control', String(TTY_CONTROL_FD)];
  }

  /** Resizes the terminal of container `id`, whose runtime is `child`; false if its control pipe is gone. */
  resize(id: string, child: ChildProcess, size: TtySize): boolean {
    this.sizes.set(id, size);
    const control = child.stdio[TTY_CONTROL_FD];
    if (control === null || control === undefined || !('write' in control) || !control.writable) return false;
    control.write(`${JSON.stringify({ resize: [size.cols, size.rows] })}\n`);
    return true;
  }

  /** Forgets container `id` (it was removed). */
  forget(id: string): void { this.sizes.delete(id); }
}

/** Hooks a runtime child's control pipe so that its closing (the child ended) raises no error. */
export function quietControl(child: ChildProcess): void {
  const control = child.stdio[TTY_CONTROL_FD];
  if (control !== null && control !== undefined) control.on('error', () => { /* the runtime ended */ });
}
