/**
 * Non-blocking reads of a host fd (pipe, socket, terminal) while the main
 * thread runs a VM and never returns to Node's event loop. A pipe or a
 * terminal is read through NodeHostOs.readNonBlocking (a twin opened with
 * O_NONBLOCK, leaving the fd's own mode alone). A socket (what Node's
 * spawn gives a child as a 'pipe') cannot be reopened that way: it is
 * switched to non-blocking mode by wrapping it in a net.Socket that never
 * reads (libuv's uv_pipe_open sets O_NONBLOCK), as Node does for
 * process.stdin. (A worker thread doing blocking reads would keep
 * process.exit from returning while it is blocked.)
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { NodeHostOs } from './node-host-os.js';
import { E } from '../process/sys-abi.js';

/** Reads host fd `fd` without blocking. */
export class FdReader {
  private socket: net.Socket | null = null;

  constructor(private readonly os: NodeHostOs, private readonly fd: number) {}

  /** Copies what has arrived into `buf`: the byte count, 0 at end of file (or an error), or -1 if nothing is there yet. */
  read(buf: Uint8Array): number {
    if (this.socket === null) {
      const r = this.os.readNonBlocking(this.fd, buf);
      if (r === -E.EAGAIN) return -1;
      if (r !== -E.ENOSYS) return Math.max(r, 0);
      this.socket = new net.Socket({ fd: this.fd, readable: false, writable: false });
    }
    try {
      return fs.readSync(this.fd, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'EAGAIN' || code === 'EINTR' ? -1 : 0;
    }
  }

  /** Done reading. */
  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}
