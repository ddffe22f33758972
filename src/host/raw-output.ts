/**
 * Output processing off on a host terminal, as cfmakeraw(3) does and
 * Node's raw mode does not: libuv's UV_TTY_MODE_RAW clears the input and
 * local flags but keeps OPOST and ONLCR (uv_tty_set_mode), so a program
 * behind a pty of its own, whose output already has its line discipline's
 * CR LF, would reach the screen as CR CR LF. Docker's CLI clears OPOST in
 * its raw mode (moby/term MakeRaw). Used where a pty of tsvm's stands
 * between the program and the host terminal: the container CLI's -it and
 * `tsvm exec -t`. Node has no tcsetattr, so `stty -opost` does it on the
 * terminal given as its stdin (POSIX stty operates on standard input).
 * Leaving raw mode with setRawMode(false) restores the settings libuv
 * saved before it first changed them, OPOST included.
 */
import { spawnSync } from 'node:child_process';

/** Clears OPOST on terminal `fd` (already in Node's raw mode); false when stty is missing or fails. */
export function clearOutputProcessing(fd: number): boolean {
  const r = spawnSync('stty', ['-opost'], { stdio: [fd, 'ignore', 'ignore'] });
  return r.status === 0;
}
