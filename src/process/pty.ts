/**
 * An emulated pseudo-terminal: the line discipline of one pty pair, after
 * Linux's n_tty (drivers/tty/n_tty.c) and termios(3).
 *
 * The master side is driven by the runtime: `input` takes the bytes the
 * user typed, `resize` sets the window size, `hangup` closes the master;
 * what the terminal prints (program output and echoes) goes to the
 * `output` hook. The slave side is what the guest reads and writes
 * (sys-tty.ts wires it to file descriptors, job control and ioctls).
 *
 * Input processing (n_tty_receive_char): ISTRIP, IGNCR, ICRNL, INLCR;
 * with ISIG the INTR, QUIT and SUSP characters send SIGINT, SIGQUIT and
 * SIGTSTP to the foreground process group (through the `signal` hook),
 * flushing the queued input unless NOFLSH; with ICANON a line is edited
 * with ERASE, KILL, WERASE (IEXTEN), LNEXT (IEXTEN) and REPRINT (IEXTEN)
 * and becomes readable at NL, EOL, EOL2 or EOF (EOF on an empty line
 * reads as end of file); echo follows ECHO, ECHOE, ECHOK, ECHOKE, ECHONL
 * and ECHOCTL. Without ICANON bytes are readable as they come (VMIN and
 * VTIME are applied by the reader, see `rawReady`). Output processing
 * (OPOST): ONLCR, OCRNL, ONOCR, ONLRET and XTABS, echoes included.
 * IXON's START and STOP characters are swallowed (output is never
 * suspended).
 */

/** struct termios size (include/uapi/asm-generic/termbits.h: 4 flags, c_line, c_cc[NCCS=19]). */
export const TERMIOS_SIZE = 36;
/** Offset of c_cc in struct termios (after four u32 flags and c_line). */
const CC = 17;

/** c_cc indexes (include/uapi/asm-generic/termbits.h). */
export const VINTR = 0, VQUIT = 1, VERASE = 2, VKILL = 3, VEOF = 4, VTIME = 5, VMIN = 6, VSTART = 8, VSTOP = 9,
  VSUSP = 10, VEOL = 11, VREPRINT = 12, VWERASE = 14, VLNEXT = 15, VEOL2 = 16;
/** c_iflag bits (termbits.h). */
export const ISTRIP = 0o40, INLCR = 0o100, IGNCR = 0o200, ICRNL = 0o400, IXON = 0o2000, IUTF8 = 0o40000;
/** c_oflag bits (termbits.h). */
export const OPOST = 0o1, ONLCR = 0o4, OCRNL = 0o10, ONOCR = 0o20, ONLRET = 0o40, TABDLY = 0o14000, XTABS = 0o14000;
/** c_lflag bits (termbits.h). */
export const ISIG = 0o1, ICANON = 0o2, ECHO = 0o10, ECHOE = 0o20, ECHOK = 0o40, ECHONL = 0o100, NOFLSH = 0o200,
  TOSTOP = 0o400, ECHOCTL = 0o1000, ECHOKE = 0o4000, IEXTEN = 0o100000;

/** Signals the line discipline sends (include/uapi/asm-generic/signal.h). */
export const SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGTSTP = 20, SIGWINCH = 28;

/** Most bytes of an edited line (drivers/tty/n_tty.c N_TTY_BUF_SIZE, less one for the newline). */
export const MAX_CANON = 4095;
/** Most bytes queued for reading before further input is dropped (N_TTY_BUF_SIZE). */
const MAX_INPUT = 4096;
/** Input bytes a master should have queued at most: writes beyond wait, as a pty master's would (N_TTY_BUF_SIZE). */
export const INPUT_ROOM = MAX_INPUT;

/** The termios of a new terminal (drivers/tty/tty_io.c tty_std_termios, as a pty slave starts). */
export function defaultTermios(): Uint8Array {
  const b = new Uint8Array(TERMIOS_SIZE), dv = new DataView(b.buffer);
  dv.setUint32(0, ICRNL | IXON, true); // c_iflag (no IUTF8: a new pty slave has none)
  dv.setUint32(4, OPOST | ONLCR, true); // c_oflag
  dv.setUint32(8, 0o17 | 0o60 | 0o200, true); // c_cflag: B38400 | CS8 | CREAD
  dv.setUint32(12, ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN, true); // c_lflag
  // c_cc (include/asm-generic/termios.h INIT_C_CC): ^C ^\ DEL ^U ^D 0 1 0 ^Q ^S ^Z 0 ^R ^O ^W ^V 0
  b.set([3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0], CC);
  return b;
}

/** What the line discipline needs from its surroundings. */
export interface PtyHooks {
  /** Bytes the terminal shows: to the master's reader. */
  output(data: Uint8Array): void;
  /** Sends `sig` to the terminal's foreground process group. */
  signal(sig: number): void;
  /** CLOCK_MONOTONIC in ns (for VTIME). */
  now(): bigint;
}

const isCtrl = (b: number): boolean => b < 0x20 || b === 0x7f;
const isWordChar = (b: number): boolean =>
  (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f;

/** One pty pair's line discipline and terminal state. */
export class Pty {
  /** The terminal settings (struct termios, TERMIOS_SIZE bytes). */
  termios = defaultTermios();
  /** Window size: columns and rows (struct winsize ws_col, ws_row). */
  cols = 80;
  rows = 24;
  /** The session this is the controlling terminal of (0: none). */
  sid = 0;
  /** The foreground process group (0: none). */
  fgPgrp = 0;
  /** True once the master has closed: reads see end of file, writes fail. */
  hungUp = false;
  /** CLOCK_MONOTONIC ns when the last input byte was queued (VTIME's inter-byte timer). */
  lastInput = 0n;
  /** Completed canonical lines waiting to be read (an empty one is end of file). */
  private readonly lines: Uint8Array[] = [];
  /** Bytes readable in non-canonical mode. */
  private raw: number[] = [];
  /** The line being edited (canonical mode), and how many columns each byte took when echoed. */
  private edit: number[] = [];
  private widths: number[] = [];
  /** The next input byte is taken literally (after LNEXT). */
  private literal = false;
  /** The output column (for tabs, ONOCR and erasing). */
  private column = 0;

  constructor(private readonly hooks: PtyHooks) {}

  private get dv(): DataView { return new DataView(this.termios.buffer, this.termios.byteOffset, TERMIOS_SIZE); }
  /** c_iflag. */
  get iflag(): number { return this.dv.getUint32(0, true); }
  /** c_oflag. */
  get oflag(): number { return this.dv.getUint32(4, true); }
  /** c_lflag. */
  get lflag(): number { return this.dv.getUint32(12, true); }
  /** Control character `i` (V* index). */
  cc(i: number): number { return this.termios[CC + i]!; }
  /** True in canonical mode. */
  get canonical(): boolean { return (this.lflag & ICANON) !== 0; }

  /** TCSETS*: new settings; switching canonical mode moves pending input as n_tty_set_termios does. */
  setTermios(t: Uint8Array): void {
    const wasCanon = this.canonical;
    this.termios = t.slice(0, TERMIOS_SIZE);
    if (wasCanon && !this.canonical) {
      for (const l of this.lines.splice(0)) this.raw.push(...l);
      this.raw.push(...this.edit);
      this.edit = []; this.widths = [];
    } else if (!wasCanon && this.canonical) {
      this.edit = this.raw.splice(0);
      this.widths = this.edit.map(() => 1);
    }
  }

  // ---- the slave side ----

  /** Bytes a read could take now (FIONREAD): the first line in canonical mode. */
  get available(): number {
    if (this.canonical) return this.lines[0]?.length ?? 0;
    return this.raw.length;
  }

  /** Input bytes held (lines, the line being edited, the raw queue): the master feeds at most INPUT_ROOM minus this. */
  get queued(): number {
    let n = this.raw.length + this.edit.length;
    for (const l of this.lines) n += l.length + 1;
    return n;
  }

  /** Canonical mode: a line (or end of file) is there to read. */
  lineReady(): boolean { return this.lines.length > 0; }

  /** Non-canonical mode: bytes queued. */
  get rawCount(): number { return this.raw.length; }

  /** Takes up to `n` bytes: from the first line (canonical mode, at most one line) or the raw queue. */
  read(n: number): Uint8Array {
    if (this.canonical) {
      const l = this.lines[0];
      if (l === undefined) return new Uint8Array(0);
      if (l.length <= n) { this.lines.shift(); return l; }
      this.lines[0] = l.subarray(n);
      return l.slice(0, n);
    }
    const out = Uint8Array.from(this.raw.slice(0, n));
    this.raw = this.raw.slice(out.length);
    return out;
  }

  /** A write by the guest: output processing, then to the master. */
  write(data: Uint8Array): void {
    if (this.hungUp) return;
    this.hooks.output(this.process(data));
  }

  /** Applies OPOST processing (n_tty do_output_char) to `data`, tracking the column. */
  private process(data: Uint8Array): Uint8Array {
    const o = this.oflag;
    if ((o & OPOST) === 0) {
      for (const b of data) this.track(b);
      return data;
    }
    const out: number[] = [];
    for (const b of data) {
      switch (b) {
        case 0x0a: // \n
          if (o & ONLRET) this.column = 0;
          if (o & ONLCR) { out.push(0x0d, 0x0a); this.column = 0; continue; }
          out.push(b);
          continue;
        case 0x0d: // \r
          if ((o & ONOCR) && this.column === 0) continue;
          if (o & OCRNL) { out.push(0x0a); if (o & ONLRET) this.column = 0; continue; }
          out.push(b); this.column = 0;
          continue;
        case 0x09: { // \t
          const spaces = 8 - (this.column & 7);
          if ((o & TABDLY) === XTABS) { for (let i = 0; i < spaces; i++) out.push(0x20); this.column += spaces; continue; }
          out.push(b); this.column += spaces;
          continue;
        }
        default: out.push(b); this.track(b);
      }
    }
    return Uint8Array.from(out);
  }

  private track(b: number): void {
    if (b === 0x08) { if (this.column > 0) this.column--; } else if (b === 0x0a || b === 0x0d) this.column = 0;
    else if (b === 0x09) this.column += 8 - (this.column & 7);
    else if (!isCtrl(b) && (b & 0xc0) !== 0x80) this.column++;
  }

  // ---- the master side ----

  /** Bytes typed by the user (n_tty_receive_buf). */
  input(data: Uint8Array): void {
    if (this.hungUp) return;
    const echo: number[] = [];
    for (const b of data) this.receive(b, echo);
    if (echo.length > 0) this.hooks.output(this.process(Uint8Array.from(echo)));
    if (data.length > 0) this.lastInput = this.hooks.now();
  }

  /** TIOCSWINSZ or a master-side resize; a change sends SIGWINCH to the foreground group. True if it changed. */
  resize(cols: number, rows: number): boolean {
    if (cols === this.cols && rows === this.rows) return false;
    this.cols = cols; this.rows = rows;
    this.hooks.signal(SIGWINCH);
    return true;
  }

  /** The master closed: end of file for readers (sys-tty.ts sends the SIGHUPs). */
  hangup(): void {
    this.hungUp = true;
  }

  /** Echoes `b` (echo_char: ECHOCTL shows control characters as ^X); returns the columns it took. */
  private echoChar(b: number, echo: number[]): number {
    if ((this.lflag & ECHOCTL) && isCtrl(b) && b !== 0x09 && b !== 0x0a) {
      echo.push(0x5e, b ^ 0o100);
      return 2;
    }
    echo.push(b);
    return b === 0x09 ? 1 : isCtrl(b) ? 0 : (b & 0xc0) === 0x80 ? 0 : 1;
  }

  /** Drops all queued input (a signal character without NOFLSH). */
  private flushInput(): void {
    this.lines.length = 0; this.raw = []; this.edit = []; this.widths = [];
  }

  private receive(byte: number, echo: number[]): void {
    const i = this.iflag, l = this.lflag;
    let b = byte;
    if (i & ISTRIP) b &= 0x7f;
    if (this.literal) {
      this.literal = false;
      this.queue(b, echo);
      return;
    }
    if (b === 0x0d) {
      if (i & IGNCR) return;
      if (i & ICRNL) b = 0x0a;
    } else if (b === 0x0a && (i & INLCR)) b = 0x0d;
    if ((i & IXON) && (b === this.cc(VSTART) || b === this.cc(VSTOP)) && b !== 0) return;
    if (l & ISIG) {
      const sig = b === 0 ? 0 : b === this.cc(VINTR) ? SIGINT : b === this.cc(VQUIT) ? SIGQUIT : b === this.cc(VSUSP) ? SIGTSTP : 0;
      if (sig !== 0) {
        if ((l & NOFLSH) === 0) this.flushInput();
        if (l & ECHO) this.echoChar(b, echo);
        this.hooks.signal(sig);
        return;
      }
    }
    if ((l & ICANON) === 0) {
      if (this.raw.length >= MAX_INPUT) return;
      this.raw.push(b);
      if (l & ECHO) this.echoChar(b, echo);
      return;
    }
    if (b !== 0) {
      if (b === this.cc(VERASE)) { this.erase('erase', echo); return; }
      if (b === this.cc(VKILL)) { this.erase('kill', echo); return; }
      if ((l & IEXTEN) && b === this.cc(VWERASE)) { this.erase('werase', echo); return; }
      if ((l & IEXTEN) && b === this.cc(VLNEXT)) {
        this.literal = true;
        if (l & ECHO) { echo.push(0x5e, 0x08); } // n_tty shows ^ then backspaces over it
        return;
      }
      if ((l & IEXTEN) && b === this.cc(VREPRINT)) {
        if (l & ECHO) { this.echoChar(b, echo); echo.push(0x0a); for (const x of this.edit) this.echoChar(x, echo); }
        return;
      }
      if (b === this.cc(VEOF)) { this.endLine(false); return; }
    }
    if (b === 0x0a || (b !== 0 && (b === this.cc(VEOL) || b === this.cc(VEOL2)))) {
      if ((l & ECHO) || (b === 0x0a && (l & ECHONL))) { if (b === 0x0a) echo.push(0x0a); else this.echoChar(b, echo); }
      this.edit.push(b);
      this.endLine(true);
      return;
    }
    this.queue(b, echo);
  }

  /** Adds an ordinary byte to the line (canonical) or the raw queue, echoing it. */
  private queue(b: number, echo: number[]): void {
    if (!this.canonical) {
      if (this.raw.length < MAX_INPUT) this.raw.push(b);
      if (this.lflag & ECHO) this.echoChar(b, echo);
      return;
    }
    if (this.edit.length >= MAX_CANON) return;
    this.edit.push(b);
    this.widths.push(this.lflag & ECHO ? this.echoChar(b, echo) : 1);
  }

  /** The edited line becomes readable (`keep`: it ended with its terminator, else with EOF). */
  private endLine(_keep: boolean): void {
    this.lines.push(Uint8Array.from(this.edit));
    this.edit = []; this.widths = [];
  }

  /** ERASE, WERASE and KILL (n_tty eraser). */
  private erase(kind: 'erase' | 'werase' | 'kill', echo: number[]): void {
    const l = this.lflag;
    if (this.edit.length === 0) return;
    if (kind === 'kill' && (l & ECHO) === 0) { this.edit = []; this.widths = []; return; }
    if (kind === 'kill' && ((l & ECHOK) === 0 || (l & ECHOKE) === 0 || (l & ECHOE) === 0)) {
      this.edit = []; this.widths = [];
      this.echoChar(this.cc(VKILL), echo);
      if (l & ECHOK) echo.push(0x0a);
      return;
    }
    let seenWord = false;
    while (this.edit.length > 0) {
      const b = this.edit[this.edit.length - 1]!;
      if (kind === 'werase') {
        if (isWordChar(b)) seenWord = true;
        else if (seenWord) break;
      }
      // A UTF-8 character erases together with its continuation bytes (IUTF8).
      let n = 1;
      if (this.iflag & IUTF8) while (n < this.edit.length && (this.edit[this.edit.length - n]! & 0xc0) === 0x80) n++;
      let cols = 0;
      for (let k = 0; k < n; k++) { this.edit.pop(); cols += this.widths.pop() ?? 1; }
      if (l & ECHO) {
        if (l & ECHOE) for (let k = 0; k < cols; k++) echo.push(0x08, 0x20, 0x08);
        else this.echoChar(this.cc(VERASE), echo);
      }
      if (kind === 'erase') break;
    }
  }
}
