/**
 * Unit tests of the emulated terminal's line discipline (src/process/pty.ts)
 * on its own: canonical editing, echo, signal characters, CR/NL mapping,
 * output processing and window size changes, checked against what Linux's
 * n_tty does with the default settings of a new pty (termios(3)).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Pty, ICANON, ECHO, ISIG, ICRNL, OPOST, ONLCR, XTABS, VMIN, SIGINT, SIGQUIT, SIGTSTP, SIGWINCH, MAX_CANON,
} from '../../src/process/pty.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A Pty with its output and signals recorded. */
function make(): { p: Pty; out: () => string; sigs: number[] } {
  let shown = '';
  const sigs: number[] = [];
  const p = new Pty({ output: (d) => { shown += dec(d); }, signal: (s) => sigs.push(s), now: () => 0n });
  return { p, out: () => { const s = shown; shown = ''; return s; }, sigs };
}

/** Changes c_lflag (offset 12), c_iflag (0) or c_oflag (4) of a Pty's termios through setTermios. */
function setFlag(p: Pty, offset: number, on: number, off: number): void {
  const t = p.termios.slice(), dv = new DataView(t.buffer);
  dv.setUint32(offset, (dv.getUint32(offset, true) | on) & ~off, true);
  p.setTermios(t);
}

test('canonical mode: ERASE edits the line, the echo rubs out, the line is readable at NL', () => {
  const { p, out } = make();
  p.input(enc('abd\x7fc'));
  assert.equal(p.lineReady(), false, 'no line before the newline');
  assert.equal(out(), 'abd\b \bc');
  p.input(enc('\r')); // ICRNL: CR ends the line as NL
  assert.equal(out(), '\r\n', 'the newline echoes through ONLCR');
  assert.equal(dec(p.read(100)), 'abc\n');
  assert.equal(p.lineReady(), false);
});

test('canonical mode: KILL, WERASE and a read of one line at a time', () => {
  const { p, out } = make();
  p.input(enc('junk\x15foo bar baz\x17\nsecond\n'));
  const shown = out();
  assert.ok(shown.startsWith('junk' + '\b \b'.repeat(4) + 'foo bar baz' + '\b \b'.repeat(3)), JSON.stringify(shown));
  assert.equal(dec(p.read(100)), 'foo bar \n', 'one line per read');
  assert.equal(dec(p.read(3)), 'sec', 'a short read leaves the rest of the line');
  assert.equal(dec(p.read(100)), 'ond\n');
});

test('canonical mode: EOF ends a line without itself, and on an empty line reads as end of file', () => {
  const { p, out } = make();
  p.input(enc('abc\x04'));
  assert.equal(dec(p.read(100)), 'abc');
  p.input(enc('\x04'));
  assert.equal(p.lineReady(), true);
  assert.equal(p.read(100).length, 0, 'a zero-length read: end of file');
  assert.equal(out(), 'abc', 'EOF is not echoed');
});

test('ECHOCTL shows control characters as ^X and erases both columns', () => {
  const { p, out } = make();
  p.input(enc('a\x01\x7f\n'));
  assert.equal(out(), 'a^A\b \b\b \b\r\n');
  assert.equal(dec(p.read(10)), 'a\n');
});

test('ISIG: INTR, QUIT and SUSP signal the foreground group, echo as ^C, flush the line', () => {
  const { p, out, sigs } = make();
  p.input(enc('partial\x03'));
  assert.deepEqual(sigs, [SIGINT]);
  assert.equal(out(), 'partial^C');
  p.input(enc('\n'));
  assert.equal(dec(p.read(10)), '\n', 'the partial line was flushed');
  p.input(enc('\x1c\x1a'));
  assert.deepEqual(sigs, [SIGINT, SIGQUIT, SIGTSTP]);
  setFlag(p, 12, 0, ISIG);
  p.input(enc('\x03\n'));
  assert.deepEqual(sigs, [SIGINT, SIGQUIT, SIGTSTP], 'without ISIG ^C is data');
  assert.deepEqual([...p.read(10)], [3, 10]);
});

test('ICRNL off: CR stays CR and does not end a line', () => {
  const { p } = make();
  setFlag(p, 0, 0, ICRNL);
  p.input(enc('a\rb\n'));
  assert.equal(dec(p.read(10)), 'a\rb\n');
});

test('non-canonical mode: bytes are readable at once; no echo without ECHO; pending line moves over', () => {
  const { p, out } = make();
  p.input(enc('ab'));
  out();
  setFlag(p, 12, 0, ICANON | ECHO);
  assert.equal(p.rawCount, 2, 'the edited line becomes readable');
  p.input(enc('c\x7f'));
  assert.equal(out(), '', 'no echo');
  assert.equal(p.cc(VMIN), 1);
  assert.deepEqual([...p.read(10)], [0x61, 0x62, 0x63, 0x7f], 'ERASE is data without ICANON');
});

test('output processing: ONLCR, XTABS, and nothing without OPOST', () => {
  const { p, out } = make();
  p.write(enc('a\nb'));
  assert.equal(out(), 'a\r\nb');
  setFlag(p, 4, XTABS, 0);
  p.write(enc('\tx\n12\ty'));
  assert.equal(out(), '       x\r\n12      y', 'tabs to the next multiple of 8 from column 1, then 2');
  setFlag(p, 4, 0, OPOST);
  p.write(enc('a\nb'));
  assert.equal(out(), 'a\nb');
  setFlag(p, 4, OPOST, ONLCR);
  p.write(enc('a\nb'));
  assert.equal(out(), 'a\nb');
});

test('a size change sends SIGWINCH; the same size does not', () => {
  const { p, sigs } = make();
  assert.deepEqual([p.cols, p.rows], [80, 24]);
  assert.equal(p.resize(100, 30), true);
  assert.equal(p.resize(100, 30), false);
  assert.deepEqual(sigs, [SIGWINCH]);
  assert.deepEqual([p.cols, p.rows], [100, 30]);
});

test('a canonical line is cut at MAX_CANON bytes; the newline still ends it', () => {
  const { p } = make();
  p.input(new Uint8Array(MAX_CANON + 50).fill(0x78));
  p.input(enc('\n'));
  const l = p.read(10000);
  assert.equal(l.length, MAX_CANON + 1);
  assert.equal(l[l.length - 1], 10);
});

test('after a hangup input is dropped and writes show nothing', () => {
  const { p, out } = make();
  p.hangup();
  p.input(enc('abc\n'));
  p.write(enc('x'));
  assert.equal(out(), '');
  assert.equal(p.lineReady(), false);
});
