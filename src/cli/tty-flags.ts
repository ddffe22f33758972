/**
 * `tsvm exec --tty [--tty-size COLSxROWS] [--tty-control FD]`: checks the
 * flags and turns them into ExecOptions.tty (src/host/node-terminal.ts).
 */
import fs from 'node:fs';
import { parseTtySize } from '../host/node-terminal.js';

/** The flags as commander gives them. */
export interface TtyFlags { tty: boolean; ttySize: string; ttyControl?: string }

/** ExecOptions.tty from the flags: undefined without --tty, or a one-line error message. */
export function ttyFromFlags(o: TtyFlags): { cols: number; rows: number; controlFd: number | null } | undefined | string {
  if (!o.tty) {
    if (o.ttyControl !== undefined) return '--tty-control needs --tty';
    return undefined;
  }
  const size = parseTtySize(o.ttySize);
  if (size === null) return `--tty-size ${o.ttySize}: expected COLSxROWS, each from 1 to 65535 (e.g. 80x24)`;
  let controlFd: number | null = null;
  if (o.ttyControl !== undefined) {
    if (!/^\d{1,9}$/.test(o.ttyControl)) return `--tty-control ${o.ttyControl}: expected a file descriptor number`;
    controlFd = Number(o.ttyControl);
    if (controlFd <= 2) return `--tty-control ${o.ttyControl}: must not be stdin, stdout or stderr`;
    try { fs.fstatSync(controlFd); } catch { return `--tty-control ${o.ttyControl}: not an open file descriptor`; }
  }
  return { ...size, controlFd };
}
