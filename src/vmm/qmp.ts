/**
 * The QEMU Machine Protocol (QMP), host-independent: JSON messages over any
 * byte stream (the host side lives in src/host/qmp-server.ts). Follows the
 * QMP specification (QEMU docs/interop/qmp-spec.rst) and the QAPI schema of
 * the commands and events tsvm implements:
 *  - greeting `{"QMP": {"version": ..., "capabilities": []}}`, then
 *    capabilities negotiation: until `qmp_capabilities` succeeds every other
 *    command fails with CommandNotFound and no events are sent;
 *  - commands: qmp_capabilities, query-status, stop, cont, system_powerdown,
 *    system_reset, quit, balloon, query-balloon, query-version,
 *    query-commands, and qom-get/qom-set for the balloon's QOM properties
 *    `guest-stats` and `guest-stats-polling-interval` (QEMU's
 *    docs/interop/virtio-balloon-stats.rst) at /machine/peripheral/ID or ID;
 *  - events: STOP, RESUME, POWERDOWN (sent here), SHUTDOWN (sent by the VMM
 *    through `QmpMonitor.shutdown` when the VM ends), each with a timestamp.
 * Responses echo the request's `id`. Malformed input gets a GenericError
 * reply and the connection stays up; nothing a client sends can throw out
 * of this module.
 *
 * The VM is driven through `VmControl`, which the VMM implements.
 */
import { QEMU_BALLOON_STAT_NAMES, BALLOON_STAT_NAMES, type BalloonStats, type BalloonCounters, type RamUsage } from '../devices/virtio/balloon.js';
import { OptsError, boolProp, parseQemuOpts } from './qemu-opts.js';

/** VM run states tsvm reports (a subset of QAPI RunState, qapi/run-state.json). */
export type RunState = 'running' | 'paused' | 'shutdown';

/** Why the VM shut down (QAPI ShutdownCause, qapi/run-state.json). */
export type ShutdownCause =
  | 'none' | 'host-error' | 'host-qmp-quit' | 'host-qmp-system-reset' | 'host-signal' | 'host-ui'
  | 'guest-shutdown' | 'guest-reset' | 'guest-panic' | 'subsystem-reset' | 'snapshot-load';

/** The balloon as QMP sees it (VirtioBalloon implements it). */
export interface BalloonControl {
  /** Sets the target logical VM size in bytes (QAPI `balloon`). */
  setTarget(bytes: number): void;
  /** The logical VM size in bytes: RAM minus what the guest gave up (QAPI BalloonInfo.actual). */
  actualBytes(): number;
  /** The guest's latest memory statistics, or null. */
  readonly stats: BalloonStats | null;
  /** Host time (ms since the epoch) of those statistics. */
  readonly statsTime: number;
  /** Asks the guest for fresh statistics; false if no request could be made. */
  requestStats(): boolean;
  /** Host-side accounting of guest RAM, once known (with the default memory backend). */
  readonly accounting: { usage(): RamUsage } | null;
  /** The -device id (names the device in QOM paths), or null. */
  readonly id: string | null;
  /** Seconds between statistics requests, 0 for none (QOM guest-stats-polling-interval); the setter throws RangeError. */
  statsPollingInterval: number;
  /** The device's counters. */
  counters(): BalloonCounters;
  /** The page-poison pattern discarded pages read back as (poison_val while PAGE_POISON is negotiated, else 0). */
  readonly fill: number;
}

/**
 * What QMP needs from the VM (the VMM implements it on its Vm). Calls come
 * from the host event loop between run-loop slices; each must take effect
 * before the run loop next executes guest instructions.
 */
export interface VmControl {
  /** The current run state. */
  runState(): RunState;
  /** Stops executing guest instructions (QMP `stop`); devices and timers keep their state. */
  pause(): void;
  /** Resumes execution after `pause` (QMP `cont`), waking the run loop. */
  resume(): void;
  /**
   * Asks the guest to power down (QMP `system_powerdown`). tsvm's virt board
   * has no guest-visible power button (no ACPI, no GPIO keys, and SBI has no
   * host-to-guest request), so the VMM powers the VM off instead (status 0)
   * and reports SHUTDOWN with guest=false.
   */
  powerdown(): void;
  /**
   * Resets the machine (QMP `system_reset`). tsvm cannot reboot a board in
   * place, so this ends the VM like `-no-reboot` does in QEMU: SHUTDOWN with
   * reason host-qmp-system-reset. A VMM that can reset sends RESET instead.
   */
  reset(): void;
  /** Ends the VM (QMP `quit`). */
  quit(): void;
  /** The memory balloon, or null without one. */
  readonly balloon: BalloonControl | null;
  /** Binds the late virtio-fs share `id` (-fsdev late) to the tree -fsdev `options` describe; throws a one-line Error. Null or absent: the VM has none. */
  readonly bindFsdev?: ((id: string, options: string) => void) | null;
}

/** One client connection, as a sequence of complete messages. */
export interface QmpConnection {
  /** Sends one server message (a JSON text; the connection appends the CRLF terminator). */
  send(line: string): void;
  /** Registers the receiver of client messages: one complete JSON text per call (see JsonSplitter). */
  onLine(handler: (line: string) => void): void;
  /** Registers a handler for the connection going away. */
  onClose(handler: () => void): void;
  /** Closes the connection after pending output is flushed. */
  close(): void;
}

/** The server version in the greeting and query-version (QAPI VersionInfo). */
export interface QmpVersion { major: number; minor: number; micro: number; package: string }

/** Default version: tsvm's own (tsvm is not QEMU; clients should not infer QEMU features from it). */
export const TSVM_QMP_VERSION: QmpVersion = { major: 0, minor: 1, micro: 0, package: 'tsvm' };

/** Largest message accepted (bytes of JSON text); larger input is cut and rejected. */
export const QMP_MAX_MESSAGE = 1 << 20;

// ---------------------------------------------------------------------------
// -qmp address

/** Where the QMP server listens. */
export type QmpAddress =
  | { kind: 'unix'; path: string; wait: boolean }
  | { kind: 'tcp'; host: string; port: number; wait: boolean };

/**
 * Parses a -qmp argument: `unix:PATH[,server=on][,wait=off]` or
 * `tcp:[HOST]:PORT[,server=on][,wait=off]` (QEMU's legacy `server` and
 * `nowait` flags are accepted). As in QEMU, `wait` defaults to on: the VM
 * does not start until a client connects. Throws OptsError.
 */
export function parseQmpAddress(text: string): QmpAddress {
  const o = parseQemuOpts(text);
  for (const k of o.props.keys()) {
    if (!['server', 'wait', 'nowait'].includes(k)) throw new OptsError(`-qmp ${text}: unknown option '${k}'`);
  }
  if (!boolProp(o, 'server', false)) throw new OptsError(`-qmp ${text}: only server=on is supported (tsvm does not connect out)`);
  const wait = o.props.has('nowait') ? false : boolProp(o, 'wait', true);
  if (o.type.startsWith('unix:')) {
    const path = o.type.slice(5);
    if (path === '') throw new OptsError(`-qmp ${text}: empty socket path`);
    return { kind: 'unix', path, wait };
  }
  const m = /^tcp:(.*):(\d+)$/.exec(o.type);
  if (m) {
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new OptsError(`-qmp ${text}: port ${m[2]} is not 1-65535`);
    return { kind: 'tcp', host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port, wait };
  }
  throw new OptsError(`-qmp ${text}: expected unix:PATH,server=on,wait=off or tcp:HOST:PORT,server=on,wait=off`);
}

// ---------------------------------------------------------------------------
// Framing

/**
 * Splits a QMP input stream into JSON texts, as QEMU's streaming parser
 * does: a message ends where its outermost object or array closes (so
 * several may share a line and one may span lines); a stray token ends at
 * the next newline. QMP's single-quoted strings (with `\'`) are rewritten
 * to standard JSON. A control character outside \t \r \n ends the message
 * at once (the spec's way to force the parser back into a known state),
 * which then fails to parse and gets an error reply.
 */
export class JsonSplitter {
  private buf = '';
  private depth = 0;
  private quote = '';
  private escape = false;

  /** Feeds input text; returns the messages it completes. */
  push(text: string): string[] {
    const out: string[] = [];
    const emit = (): void => {
      out.push(this.buf);
      this.buf = ''; this.depth = 0; this.quote = ''; this.escape = false;
    };
    for (const c of text) {
      if (this.quote) {
        if (this.escape) {
          this.escape = false;
          this.buf += this.quote === "'" && c === "'" ? "'" : (this.quote === "'" ? '\\' : '') + c;
        } else if (c === '\\') {
          this.escape = true;
          if (this.quote === '"') this.buf += c;
        } else if (c === this.quote) {
          this.buf += '"'; this.quote = '';
        } else if (c < ' ') {
          this.buf += c; emit(); // a raw control character cannot be inside a JSON string (RFC 8259 §7)
        } else {
          this.buf += this.quote === "'" && c === '"' ? '\\"' : c;
        }
      } else if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
        if (this.buf !== '') {
          if (c === '\n' && this.depth === 0) emit(); else this.buf += c;
        }
      } else if (c === '"' || c === "'") {
        this.quote = c; this.buf += '"';
      } else if (c === '{' || c === '[') {
        this.depth++; this.buf += c;
      } else if (c === '}' || c === ']') {
        this.depth--; this.buf += c;
        if (this.depth <= 0) emit();
      } else if (c < ' ' || c === '\ufffd') {
        this.buf += c; emit();
      } else {
        this.buf += c;
      }
      if (this.buf.length > QMP_MAX_MESSAGE) emit();
    }
    return out;
  }
}

// ---------------------------------------------------------------------------
// Protocol

/** A QMP error reply: class (QAPI ErrorClass) and description. */
export class QmpError extends Error {
  readonly errorClass: string;
  constructor(errorClass: 'GenericError' | 'CommandNotFound' | 'DeviceNotActive' | 'DeviceNotFound', desc: string) {
    super(desc);
    this.errorClass = errorClass;
  }
}

type JsonObject = Record<string, unknown>;
type ArgType = 'int' | 'str' | 'any' | 'str-list';
interface Command {
  args: Record<string, { type: ArgType; optional?: boolean }>;
  run(args: JsonObject, m: QmpMonitor): unknown;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The balloon a QOM path names: /machine/peripheral/ID or the partial path ID (qom-get, qom-set). */
function balloonAt(m: QmpMonitor, path: string): BalloonControl {
  const b = m.control.balloon;
  const id = path.startsWith('/machine/peripheral/') ? path.slice('/machine/peripheral/'.length) : path;
  if (!b || b.id === null || id !== b.id) throw new QmpError('DeviceNotFound', `Device '${path}' not found`);
  return b;
}

/** QOM `guest-stats` (QEMU hw/virtio/virtio-balloon.c): QEMU's stat names, -1 for a statistic not reported, last-update in seconds. */
function guestStatsQom(b: BalloonControl): JsonObject {
  const stats: JsonObject = {};
  QEMU_BALLOON_STAT_NAMES.forEach((q, tag) => { stats[q] = b.stats?.[BALLOON_STAT_NAMES[tag]!] ?? -1; });
  return { stats, 'last-update': b.stats ? Math.floor(b.statsTime / 1000) : 0 };
}

function balloonOf(m: QmpMonitor): BalloonControl {
  const b = m.control.balloon;
  if (!b) throw new QmpError('DeviceNotActive', 'No balloon device has been activated');
  return b;
}

/** The commands, with their argument schemas (QAPI: qapi/run-state.json, qapi/misc.json, qapi/machine.json, qapi/control.json). */
const COMMANDS: Record<string, Command> = {
  'qmp_capabilities': { args: { enable: { type: 'str-list', optional: true } }, run: () => ({}) }, // handled by the session
  'query-status': {
    args: {},
    run: (_a, m) => { const s = m.control.runState(); return { running: s === 'running', status: s }; },
  },
  'stop': {
    args: {},
    run: (_a, m) => {
      if (m.control.runState() === 'running') { m.control.pause(); m.event('STOP'); }
      return {};
    },
  },
  'cont': {
    args: {},
    run: (_a, m) => {
      const s = m.control.runState();
      if (s === 'shutdown') throw new QmpError('GenericError', 'The VM has shut down and cannot be resumed');
      if (s === 'paused') { m.control.resume(); m.event('RESUME'); }
      return {};
    },
  },
  'system_powerdown': { args: {}, run: (_a, m) => { m.event('POWERDOWN'); m.control.powerdown(); return {}; } },
  'system_reset': { args: {}, run: (_a, m) => { m.control.reset(); return {}; } },
  'quit': { args: {}, run: (_a, m) => { m.control.quit(); return {}; } },
  'balloon': {
    args: { value: { type: 'int' } },
    run: (a, m) => {
      const b = balloonOf(m), v = a['value'] as number;
      if (v <= 0) throw new QmpError('GenericError', "Parameter 'value' expects a size");
      b.setTarget(v);
      return {};
    },
  },
  'query-balloon': {
    args: {},
    run: (_a, m) => {
      const b = balloonOf(m);
      // BalloonInfo (qapi/machine.json) plus downstream members (qmp-spec "Downstream extension of QMP").
      const r: JsonObject = { actual: b.actualBytes() };
      if (b.stats) { r['__tsvm-guest-stats'] = { ...b.stats }; r['__tsvm-guest-stats-time'] = b.statsTime; }
      const u = b.accounting?.usage();
      if (u) {
        r['__tsvm-host'] = {
          'total-bytes': u.totalBytes, 'released-bytes': u.releasedBytes, 'zeroed-pages': u.zeroedPages,
          'released-total-pages': u.releasedTotalPages, 'reclaimed-total-pages': u.reclaimedTotalPages,
          'reported-total-pages': u.reportedTotalPages,
        };
      }
      r['__tsvm-counters'] = { ...b.counters() };
      r['__tsvm-poison-val'] = b.fill;
      b.requestStats(); // the next query sees fresher statistics
      return r;
    },
  },
  'qom-get': {
    args: { path: { type: 'str' }, property: { type: 'str' } },
    run: (a, m) => {
      const b = balloonAt(m, a['path'] as string), p = a['property'] as string;
      if (p === 'guest-stats') return guestStatsQom(b);
      if (p === 'guest-stats-polling-interval') return b.statsPollingInterval;
      throw new QmpError('GenericError', `Property 'virtio-balloon-device.${p}' not found`);
    },
  },
  'qom-set': {
    args: { path: { type: 'str' }, property: { type: 'str' }, value: { type: 'any' } },
    run: (a, m) => {
      const b = balloonAt(m, a['path'] as string), p = a['property'] as string, v = a['value'];
      if (p === 'guest-stats') throw new QmpError('GenericError', `Property 'virtio-balloon-device.${p}' is not writable`);
      if (p !== 'guest-stats-polling-interval') throw new QmpError('GenericError', `Property 'virtio-balloon-device.${p}' not found`);
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new QmpError('GenericError', "Invalid parameter type for 'value', expected: integer");
      if (v < 0) throw new QmpError('GenericError', 'timer value must be greater than zero');
      try { b.statsPollingInterval = v; } catch (e) {
        throw new QmpError('GenericError', e instanceof Error ? e.message : String(e));
      }
      return {};
    },
  },
  // A downstream command (qmp-spec "Downstream extension of QMP"): gives a late virtio-fs share (-fsdev late,id=ID) its tree.
  '__tsvm-fsdev-bind': {
    args: { id: { type: 'str' }, options: { type: 'str' } },
    run: (a, m) => {
      const bind = m.control.bindFsdev;
      if (!bind) throw new QmpError('DeviceNotFound', `fsdev '${a['id'] as string}' not found: the VM has no late fsdev`);
      try { bind(a['id'] as string, a['options'] as string); } catch (e) {
        throw new QmpError('GenericError', e instanceof Error ? e.message : String(e));
      }
      return {};
    },
  },
  'query-version': { args: {}, run: (_a, m) => m.versionInfo() },
  'query-commands': { args: {}, run: () => Object.keys(COMMANDS).map((name) => ({ name })) },
};

/** Checks `args` against a command's schema; throws QmpError like QEMU's input visitor. */
function checkArgs(cmd: Command, args: JsonObject): void {
  for (const k of Object.keys(args)) {
    if (!Object.hasOwn(cmd.args, k)) throw new QmpError('GenericError', `Parameter '${k}' is unexpected`);
  }
  for (const [k, spec] of Object.entries(cmd.args)) {
    if (!Object.hasOwn(args, k)) {
      if (spec.optional) continue;
      throw new QmpError('GenericError', `Parameter '${k}' is missing`);
    }
    const v = args[k];
    const ok = spec.type === 'int' ? typeof v === 'number' && Number.isSafeInteger(v)
      : spec.type === 'str' ? typeof v === 'string'
        : spec.type === 'any' ? true
          : Array.isArray(v) && v.every((x) => typeof x === 'string');
    const want = { 'int': 'integer', 'str': 'string', 'any': 'any', 'str-list': 'array of strings' }[spec.type];
    if (!ok) throw new QmpError('GenericError', `Invalid parameter type for '${k}', expected: ${want}`);
  }
}

/** Serializes a message as ASCII JSON (the spec: the server sends ASCII; non-ASCII is \u-escaped). */
function toAscii(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One client's protocol state. */
class QmpSession {
  private negotiated = false;
  closed = false;
  private readonly conn: QmpConnection;
  private readonly monitor: QmpMonitor;

  constructor(conn: QmpConnection, monitor: QmpMonitor) {
    this.conn = conn;
    this.monitor = monitor;
  }

  /** Whether events may be delivered (command mode). */
  get commandMode(): boolean { return this.negotiated && !this.closed; }

  send(msg: unknown): void {
    if (this.closed) return;
    try { this.conn.send(toAscii(msg)); } catch { this.closed = true; }
  }

  /** Closes the connection (pending output is flushed by the connection). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { this.conn.close(); } catch { /* already gone */ }
  }

  private reply(id: unknown, hasId: boolean, body: JsonObject): void {
    this.send(hasId ? { ...body, id } : body);
  }

  /** Handles one client message; never throws. */
  handle(text: string): void {
    let id: unknown, hasId = false;
    try {
      let msg: unknown;
      try { msg = JSON.parse(text); } catch (e) {
        throw new QmpError('GenericError', `JSON parse error, ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!isObject(msg)) throw new QmpError('GenericError', 'QMP input must be a JSON object');
      if (Object.hasOwn(msg, 'id')) { id = msg['id']; hasId = true; }
      for (const k of Object.keys(msg)) {
        if (k === 'exec-oob') throw new QmpError('GenericError', "Out-of-band execution is not supported (capability 'oob' is not offered)");
        if (k !== 'execute' && k !== 'arguments' && k !== 'id') throw new QmpError('GenericError', `QMP input member '${k}' is unexpected`);
      }
      if (!Object.hasOwn(msg, 'execute')) throw new QmpError('GenericError', "QMP input lacks member 'execute'");
      const name = msg['execute'];
      if (typeof name !== 'string') throw new QmpError('GenericError', "QMP input member 'execute' must be a string");
      const args = msg['arguments'] ?? {};
      if (!isObject(args)) throw new QmpError('GenericError', "QMP input member 'arguments' must be an object");
      if (!this.negotiated && name !== 'qmp_capabilities') {
        throw new QmpError('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
      }
      if (this.negotiated && name === 'qmp_capabilities') {
        throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
      }
      const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
      if (!cmd) throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
      checkArgs(cmd, args);
      if (name === 'qmp_capabilities') {
        const bad = ((args['enable'] ?? []) as string[])[0];
        if (bad !== undefined) throw new QmpError('GenericError', `Capability '${bad}' is not available`);
        this.negotiated = true;
      }
      const result = cmd.run(args, this.monitor);
      this.reply(id, hasId, { return: result });
    } catch (e) {
      const err = e instanceof QmpError ? e : new QmpError('GenericError', `internal error: ${e instanceof Error ? e.message : String(e)}`);
      this.reply(id, hasId, { error: { class: err.errorClass, desc: err.message } });
    }
  }
}

/** Options for a monitor. */
export interface QmpMonitorOptions {
  /** Version reported in the greeting and by query-version. */
  version?: QmpVersion;
  /** Host wall-clock time in microseconds since the Unix epoch (event timestamps). */
  nowUs?: () => number;
}

/** The QMP monitor of one VM: any number of client sessions sharing the VM. */
export class QmpMonitor {
  /** The VM being controlled. */
  readonly control: VmControl;
  private readonly sessions = new Set<QmpSession>();
  private readonly version: QmpVersion;
  private readonly nowUs: () => number;

  constructor(control: VmControl, opts: QmpMonitorOptions = {}) {
    this.control = control;
    this.version = opts.version ?? TSVM_QMP_VERSION;
    this.nowUs = opts.nowUs ?? (() => Math.floor((performance.timeOrigin + performance.now()) * 1000));
  }

  /** QAPI VersionInfo. */
  versionInfo(): JsonObject {
    const v = this.version;
    return { qemu: { major: v.major, minor: v.minor, micro: v.micro }, package: v.package };
  }

  /** Starts a session on a new connection: sends the greeting (qmp-spec "Server Greeting"). */
  attach(conn: QmpConnection): void {
    const s = new QmpSession(conn, this);
    this.sessions.add(s);
    conn.onLine((line) => s.handle(line));
    conn.onClose(() => { s.closed = true; this.sessions.delete(s); });
    s.send({ QMP: { version: this.versionInfo(), capabilities: [] } });
  }

  /** Number of connected clients. */
  get clients(): number { return this.sessions.size; }

  /** Sends an event to every client in command mode (qmp-spec "Asynchronous events"). */
  event(name: string, data?: JsonObject): void {
    const us = this.nowUs();
    const msg: JsonObject = { event: name };
    if (data) msg['data'] = data;
    msg['timestamp'] = { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
    for (const s of this.sessions) if (s.commandMode) s.send(msg);
  }

  /** Sends SHUTDOWN (the VMM calls this once when the VM has ended). */
  shutdown(guest: boolean, reason: ShutdownCause): void { this.event('SHUTDOWN', { guest, reason }); }

  /** Closes every client connection (after their pending output). */
  close(): void {
    const all = [...this.sessions];
    this.sessions.clear();
    for (const s of all) s.close();
  }
}

/**
 * The SHUTDOWN data for how a VM run ended: `reason` is Vm.run's result
 * reason; `hostRequest` is the cause the VMM recorded when QMP (or the
 * console's Ctrl-A x, which QEMU treats as `quit`) asked it to stop.
 */
export function shutdownCauseOf(reason: 'poweroff' | 'reset' | 'panic' | 'stopped', hostRequest: ShutdownCause | null): { guest: boolean; reason: ShutdownCause } {
  if (hostRequest !== null) return { guest: false, reason: hostRequest };
  switch (reason) {
    case 'poweroff': return { guest: true, reason: 'guest-shutdown' };
    case 'reset': return { guest: true, reason: 'guest-reset' };
    case 'panic': return { guest: true, reason: 'guest-panic' };
    default: return { guest: false, reason: 'host-qmp-quit' };
  }
}
