/**
 * The client's side of a container's terminal (`run -it`, `start -ai`,
 * `attach` to a container created with -t), as the docker CLI does it:
 * with stdin attached, the local terminal goes into raw mode, so every
 * key (Ctrl-C as byte 0x03, Ctrl-Z, Ctrl-D) reaches the container's
 * pseudo-terminal, whose line discipline acts on it; the window size is
 * sent at the start and again on each change (SIGWINCH, Node's 'resize'
 * on stdout); the mode is restored when the session ends, detaches or
 * fails, at exit, and before a terminating signal takes its course. Raw
 * mode clears output processing too, as Docker's does (raw-output.ts).
 */
import { clearOutputProcessing } from '../host/raw-output.js';

/** Signals that end tsvm while it holds the terminal (their default action is to terminate, signal(7)). */
const TERMINATING: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** A window size in character cells. */
export interface WindowSize { cols: number; rows: number }

/**
 * Docker's CheckTty: attaching stdin to a container with a terminal needs a
 * terminal on stdin. The message, or null when it may go on.
 */
export function checkTty(attachStdin: boolean, tty: boolean, stdinIsTty = process.stdin.isTTY === true): string | null {
  return attachStdin && tty && !stdinIsTty ? 'the input device is not a TTY' : null;
}

/** The local window size (stdout's, as the docker CLI takes it), or null when stdout is not a terminal. */
export function localWindowSize(): WindowSize | null {
  const out = process.stdout;
  if (out.isTTY !== true) return null;
  const [cols, rows] = out.getWindowSize();
  return cols > 0 && rows > 0 ? { cols, rows } : null;
}

/** The query parameters that give a container started by an attach its terminal size (empty without one). */
export function sizeQuery(): string {
  const s = localWindowSize();
  return s === null ? '' : `&h=${s.rows}&w=${s.cols}`;
}

/**
 * Holds the local terminal for a session with a container's terminal: raw
 * mode on stdin when `raw` (and stdin is a terminal), and `onResize` on
 * each window change. Returns the function that lets it go (idempotent).
 */
export function holdTerminal(raw: boolean, onResize: (size: WindowSize) => void): () => void {
  const stdin = process.stdin;
  let rawOn = false;
  if (raw && stdin.isTTY === true) { stdin.setRawMode(true); clearOutputProcessing(0); rawOn = true; }
  const resized = (): void => { const s = localWindowSize(); if (s !== null) onResize(s); };
  const following = process.stdout.isTTY === true;
  if (following) process.stdout.on('resize', resized);
  // A signal from elsewhere (kill) would end tsvm without 'exit': let the terminal go, then die of it as before.
  const onSignal = (sig: NodeJS.Signals): void => { release(); process.kill(process.pid, sig); };
  const release = (): void => {
    if (following) process.stdout.off('resize', resized);
    if (rawOn) { rawOn = false; try { stdin.setRawMode(false); } catch { /* stdin already closed */ } }
    process.off('exit', release);
    for (const sig of TERMINATING) process.off(sig, onSignal);
  };
  process.on('exit', release);
  if (rawOn) for (const sig of TERMINATING) process.once(sig, onSignal);
  return release;
}
