/**
 * The Node side of `tsvm exec --tty`: drives the master of the VM's
 * emulated terminal (src/process/sys-tty.ts) from tsvm's own fds.
 *
 * tsvm's stdin feeds the master, what the terminal prints goes to tsvm's
 * stdout. At the end of stdin the terminal stays open (like `docker run
 * -t`); as util-linux script(1) does, the EOF character (c_cc[VEOF]) is
 * typed once after the last input, so a shell reading it ends. A
 * control message `{"hangup":true}` closes the master (a hangup: SIGHUP). If stdin is a
 * terminal it is put in raw mode for the run (restored by `close`) and its
 * window size is followed (polled, as the VM's run loop keeps Node's
 * event loop, and so its SIGWINCH handler, from running). Otherwise the
 * size comes from --tty-size and changes arrive on the --tty-control fd as
 * newline-delimited JSON: `{"resize":[COLS,ROWS]}` or `{"hangup":true}`.
 *
 * The kernel calls `poll` (Kernel.poller) every few milliseconds while the
 * guest runs or sleeps; it never blocks.
 */
import { VmTerminal } from '../process/sys-tty.js';
import { INPUT_ROOM, VEOF } from '../process/pty.js';
import type { NodeHostOs } from './node-host-os.js';
import { FdReader } from './fd-reader.js';
import { clearOutputProcessing } from './raw-output.js';

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
 * `{"hangup":true}` gives 'hangup', anything else a message saying what is wrong.
 */
export function parseControl(line: string): { cols: number; rows: number } | 'hangup' | string {
  let v: unknown;
  try { v = JSON.parse(line); } catch { return 'not JSON'; }
  if (typeof v === 'object' && v !== null && 'hangup' in v && (v as { hangup: unknown }).hangup === true) return 'hangup';
  if (typeof v !== 'object' || v === null || !('resize' in v)) return 'expected {"resize":[cols,rows]} or {"hangup":true}';
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
  private eofTyped = false;
  private controlOpen: boolean;
  private control = '';
  private lastSize = 0n;
  private readonly buf = new Uint8Array(INPUT_ROOM);
  private readonly input: FdReader;
  private readonly controlIn: FdReader | null;

  constructor(private readonly os: NodeHostOs, private readonly o: TerminalOptions) {
    this.term = new VmTerminal((d) => { if (d.length > 0) os.write(o.outFd, d, null); });
    this.hostTty = os.isatty(o.inFd);
    this.controlOpen = o.controlFd !== null;
    this.input = new FdReader(os, o.inFd);
    this.controlIn = o.controlFd !== null ? new FdReader(os, o.controlFd) : null;
    const size = this.hostTty ? os.terminalSize(o.inFd) ?? os.terminalSize(o.outFd) : null;
    this.term.pty.cols = size?.cols ?? o.cols;
    this.term.pty.rows = size?.rows ?? o.rows;
    // The guest's pty already turns its LF into CR LF: the host terminal passes bytes through (raw-output.ts).
    if (this.hostTty) { this.raw = os.setRawMode(o.inFd, true); if (this.raw) clearOutputProcessing(o.inFd); }
  }

  /** Takes what the host fds have now: input for the master, resize messages, a host window size change. */
  poll(): void {
    const p = this.term.pty;
    if (this.stdinOpen && this.pending.length === 0) {
      const r = this.input.read(this.buf);
      if (r > 0) this.pending = this.buf.slice(0, r);
      else if (r === 0) this.stdinOpen = false;
    }
    if (this.pending.length > 0) {
      const room = Math.max(0, INPUT_ROOM - p.queued);
      const n = Math.min(room, this.pending.length);
      if (n > 0) { this.term.input(this.pending.subarray(0, n)); this.pending = this.pending.subarray(n); }
    }
    if (!this.stdinOpen && !this.eofTyped && !this.hostTty && this.pending.length === 0) {
      this.eofTyped = true;
      const eof = p.cc(VEOF);
      if (eof !== 0) this.term.input(Uint8Array.of(eof));
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
      const r = this.controlIn!.read(b);
      if (r < 0) return; // nothing now
      if (r === 0) { this.controlOpen = false; return; }
      this.control += new TextDecoder().decode(b.subarray(0, r));
      let nl: number;
      while ((nl = this.control.indexOf('\n')) >= 0) {
        const line = this.control.slice(0, nl).trim();
        this.control = this.control.slice(nl + 1);
        if (line === '') continue;
        const m = parseControl(line);
        if (m === 'hangup') this.term.hangup();
        else if (typeof m === 'string') this.o.log(`tsvm: --tty-control: ${m}: ${line.slice(0, 80)}`);
        else this.term.resize(m.cols, m.rows);
      }
      if (this.control.length > CONTROL_LINE_MAX) { this.o.log('tsvm: --tty-control: line too long, dropped'); this.control = ''; }
    }
  }

  /** The run is over: the host terminal leaves raw mode. */
  close(): void {
    this.input.close();
    this.controlIn?.close();
    if (this.raw) { this.os.setRawMode(this.o.inFd, false); this.raw = false; }
  }
}
