/**
 * The Node side of `tsvm exec --tty`: drives the master of the VM's
 * emulated terminal (src/process/sys-tty.ts) from tsvm's own fds.
 *
 * tsvm's stdin feeds the master (end of file there closes the master: a
 * hangup), what the terminal prints goes to tsvm's stdout. If stdin is a
 * terminal it is put in raw mode for the run (restored by `close`) and its
 * window size is followed (polled, as the VM's run loop keeps Node's
 * event loop, and so its SIGWINCH handler, from running). Otherwise the
 * size comes from --tty-size and changes arrive on the --tty-control fd as
 * newline-delimited JSON: `{"resize":[COLS,ROWS]}`.
 *
 * The kernel calls `poll` (Kernel.poller) every few milliseconds while the
 * guest runs or sleeps; it never blocks.
 */
import { VmTerminal } from '../process/sys-tty.js';
import { INPUT_ROOM } from '../process/pty.js';
import type { NodeHostOs } from './node-host-os.js';
import { E } from '../process/sys-abi.js';

/** How often a host terminal's window size is checked (ns). */
const SIZE_POLL_NS = 100_000_000n;
/** Largest control message line accepted (bytes); a longer one is dropped. */
const CONTROL_LINE_MAX = 4096;
/** Largest window dimension (struct winsize fields are unsigned short). */
const WINSIZE_MAX = 65535;

/** Where `tsvm exec --tty` takes its terminal from. */
export interface TerminalOptions {
  /** Host fd of the user's input (tsvm's stdin). */
  inFd: number;
  /** Host fd the terminal's output goes to (tsvm's stdout). */
  outFd: number;
  /** Host fd of resize messages (--tty-control), or null. */
  controlFd: number | null;
  /** Initial size when `inFd` is not a terminal (--tty-size). */
  cols: number;
  rows: number;
  /** One-line diagnostics. */
  log: (line: string) => void;
}

/**
 * Parses a --tty-size value `COLSxROWS`; null if malformed or out of range.
 */
export function parseTtySize(s: string): { cols: number; rows: number } | null {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(s);
  if (m === null) return null;
  const cols = Number(m[1]), rows = Number(m[2]);
  return cols >= 1 && rows >= 1 && cols <= WINSIZE_MAX && rows <= WINSIZE_MAX ? { cols, rows } : null;
}

/**
 * Parses one --tty-control line: `{"resize":[cols,rows]}` gives the new size,
 * anything else a message saying what is wrong.
 */
export function parseControl(line: string): { cols: number; rows: number } | string {
  let v: unknown;
  try { v = JSON.parse(line); } catch { return 'not JSON'; }
  if (typeof v !== 'object' || v === null || !('resize' in v)) return 'expected {"resize":[cols,rows]}';
  const r = (v as { resize: unknown }).resize;
  if (!Array.isArray(r) || r.length !== 2 || !r.every((x) => Number.isInteger(x) && x >= 1 && x <= WINSIZE_MAX)) {
    return `resize wants two integers from 1 to ${WINSIZE_MAX}`;
  }
  return { cols: r[0] as number, rows: r[1] as number };
}

/** The master of the VM's terminal, fed from host fds. */
export class NodeTerminal {
  /** The VM's terminal (give it to the process VM as ProcessOptions.terminal). */
  readonly term: VmTerminal;
  private readonly hostTty: boolean;
  private raw = false;
  private pending: Uint8Array = new Uint8Array(0);
  private stdinOpen = true;
  private controlOpen: boolean;
  private control = '';
  private lastSize = 0n;
  private readonly buf = new Uint8Array(INPUT_ROOM);

  constructor(private readonly os: NodeHostOs, private readonly o: TerminalOptions) {
    this.term = new VmTerminal((d) => { if (d.length > 0) os.write(o.outFd, d, null); });
    this.hostTty = os.isatty(o.inFd);
    this.controlOpen = o.controlFd !== null;
    const size = this.hostTty ? os.terminalSize(o.inFd) ?? os.terminalSize(o.outFd) : null;
    this.term.pty.cols = size?.cols ?? o.cols;
    this.term.pty.rows = size?.rows ?? o.rows;
    if (this.hostTty) this.raw = os.setRawMode(o.inFd, true);
  }

  /** Takes what the host fds have now: input for the master, resize messages, a host window size change. */
  poll(): void {
    const p = this.term.pty;
    if (this.stdinOpen && this.pending.length === 0) {
      const r = this.os.readNonBlocking(this.o.inFd, this.buf);
      if (r > 0) this.pending = this.buf.slice(0, r);
      else if (r === 0 || (r < 0 && r !== -E.EAGAIN && r !== -E.ENOSYS)) { // end of file, or an error
        this.stdinOpen = false;
        this.term.hangup();
      }
    }
    if (this.pending.length > 0) {
      const room = Math.max(0, INPUT_ROOM - p.queued);
      const n = Math.min(room, this.pending.length);
      if (n > 0) { this.term.input(this.pending.subarray(0, n)); this.pending = this.pending.subarray(n); }
    }
    if (this.controlOpen) this.pollControl();
    if (this.hostTty) {
      const now = this.os.monotonicNs();
      if (now - this.lastSize >= SIZE_POLL_NS) {
        this.lastSize = now;
        const s = this.os.terminalSize(this.o.inFd);
        if (s !== null) this.term.resize(s.cols, s.rows);
      }
    }
  }

  private pollControl(): void {
    const b = new Uint8Array(CONTROL_LINE_MAX);
    for (;;) {
      const r = this.os.readNonBlocking(this.o.controlFd!, b);
      if (r === -E.EAGAIN || r === -E.ENOSYS) return; // nothing now
      if (r <= 0) { this.controlOpen = false; return; }
      this.control += new TextDecoder().decode(b.subarray(0, r));
      let nl: number;
      while ((nl = this.control.indexOf('\n')) >= 0) {
        const line = this.control.slice(0, nl).trim();
        this.control = this.control.slice(nl + 1);
        if (line === '') continue;
        const m = parseControl(line);
        if (typeof m === 'string') this.o.log(`tsvm: --tty-control: ${m}: ${line.slice(0, 80)}`);
        else this.term.resize(m.cols, m.rows);
      }
      if (this.control.length > CONTROL_LINE_MAX) { this.o.log('tsvm: --tty-control: line too long, dropped'); this.control = ''; }
    }
  }

  /** The run is over: the host terminal leaves raw mode. */
  close(): void {
    if (this.raw) { this.os.setRawMode(this.o.inFd, false); this.raw = false; }
  }
}
