/**
 * Docker's container verbs: `tsvm run` (for an image), `create`, `start`,
 * `stop`, `restart`, `kill`, `attach`, `exec`, `logs`, `ps`, `rm`,
 * `inspect`, `stats`, `top` and `commit`. State lives in the tsvm host
 * (src/host/containers): each verb is a request to its API, and the host is
 * started on first use. Exit codes follow Docker: `run`/`create`/`start -a`
 * give 125 for a tsvm error, 126 when the command cannot be invoked, 127
 * when it is not found, else the command's status (128+N on signal N); the
 * other verbs exit 1 when the host refuses (as the docker CLI does for a
 * daemon error) and 125 for bad flags.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Command, CommanderError } from 'commander';
import { parseSize } from './size.js';
import { parseBind } from '../host/bind-spec.js';
import { humanDuration } from './image-command.js';
import { ApiError, api, ensureHost, openAttach, streamFrames } from '../host/containers/client.js';
import { FrameReader, STREAM_EXIT, STREAM_STDERR } from '../host/containers/frames.js';
import type { ContainerRecord } from '../host/containers/store.js';
import { checkTty, holdTerminal, localWindowSize, sizeQuery, type WindowSize } from './container-tty.js';

/** Exit status for a tsvm error (issue 15 point 2, Docker's 125). */
const EXIT_TSVM = 125;
/** Exit status when the host refuses a verb other than run (the docker CLI's 1). */
const EXIT_REFUSED = 1;
/** The name program.ts gives Docker's `exec` once isContainerExec has told it from the process VM's `tsvm exec`. */
export const DOCKER_EXEC = '__container-exec';

/** Docker's default detach keys (ctrl-p, ctrl-q: 0x10 0x11). */
const DEFAULT_DETACH = 'ctrl-p,ctrl-q';

function fail(e: unknown, code: number): number {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`tsvm: ${msg.split('\n')[0]!}\n`);
  return code;
}

const enc = encodeURIComponent;

/** Docker's --detach-keys: comma-separated ctrl-X or single characters, as bytes. */
export function parseDetachKeys(s: string): Buffer | string {
  const out: number[] = [];
  for (const k of s.split(',')) {
    const m = /^ctrl-([a-z@[\\\]^_])$/i.exec(k);
    if (m !== null) out.push(m[1]!.toUpperCase().charCodeAt(0) & 0x1f);
    else if (k.length === 1) out.push(k.charCodeAt(0));
    else return `--detach-keys ${s}: expected keys such as ctrl-p,ctrl-q`;
  }
  return Buffer.from(out);
}

/** How an attached session ended. */
type Ended = { status: number } | { detached: true };

/** A session with a container's terminal: raw mode for the local one (with stdin), and where resizes go. */
interface TtySession {
  raw: boolean;
  /** Sends a window size to the container. */
  resize: (size: WindowSize) => void;
  /** Whether to send the local size at once (the container already ran; a start gets it in the query). */
  initial: boolean;
}

/** The TtySession of container `id` (its record's Config.Tty), or null without a terminal. */
function ttySession(socket: string, id: string, tty: boolean, raw: boolean, initial: boolean): TtySession | null {
  if (!tty) return null;
  const resize = (s: WindowSize): void => {
    // A resize that races the container's end is of no matter.
    void api(socket, 'POST', `/v1/containers/${enc(id)}/resize?h=${s.rows}&w=${s.cols}`).catch(() => {});
  };
  return { raw, resize, initial };
}

/**
 * Docker's escape proxy: watches input for the detach keys. Bytes that may
 * begin the sequence are held back until the next byte tells; the sequence
 * itself never reaches the container. `push` returns what to forward, or
 * null when the sequence is complete (the bytes before it are forwarded first).
 */
export function detachFilter(keys: Buffer): { push: (b: Buffer, forward: (b: Buffer) => void) => boolean } {
  let matched = 0;
  return {
    push(b, forward) {
      const out: number[] = [];
      for (const byte of b) {
        if (byte === keys[matched]) {
          matched++;
          if (matched === keys.length) { if (out.length > 0) forward(Buffer.from(out)); return true; }
          continue;
        }
        for (let i = 0; i < matched; i++) out.push(keys[i]!);
        matched = byte === keys[0] ? 1 : 0;
        if (matched === 0) out.push(byte);
      }
      if (out.length > 0) forward(Buffer.from(out));
      return false;
    },
  };
}

/**
 * Pumps an attach/exec stream: output frames to stdout/stderr, stdin (if
 * `stdin`) to the stream, watching for the detach keys; with `tty` the
 * local terminal is held (container-tty.ts) for the session. Resolves with
 * the exit status or the detach.
 */
async function session(socket: string, path: string, stdin: boolean, detach: Buffer | null, tty: TtySession | null = null,
  headers?: (h: IncomingHttpHeaders) => void): Promise<Ended> {
  const sock = await openAttach(socket, path, headers);
  const release = tty === null ? (): void => {} : holdTerminal(tty.raw && stdin, tty.resize);
  if (tty?.initial === true) { const s = localWindowSize(); if (s !== null) tty.resize(s); }
  return new Promise<Ended>((resolve) => {
    let ended: Ended | null = null;
    const reader = new FrameReader((stream, payload) => {
      if (stream === STREAM_EXIT) ended = { status: (JSON.parse(payload.toString('utf8')) as { StatusCode: number }).StatusCode };
      else (stream === STREAM_STDERR ? process.stderr : process.stdout).write(payload);
    });
    const escape = detach === null ? null : detachFilter(detach);
    const forward = (b: Buffer): void => { sock.write(b); };
    const onIn = (b: Buffer): void => {
      if (escape === null) { forward(b); return; }
      if (escape.push(b, forward)) {
        ended = { detached: true };
        sock.destroy();
        finish();
      }
    };
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      release();
      // An open stdin would keep tsvm alive after a detach or the container's end.
      if (stdin) { process.stdin.off('data', onIn); process.stdin.destroy(); }
      resolve(ended ?? { status: EXIT_TSVM });
    };
    sock.on('data', (c: Buffer) => reader.push(c));
    sock.on('close', finish);
    sock.on('error', () => { /* close follows */ });
    if (stdin) {
      process.stdin.on('data', onIn);
      process.stdin.on('end', () => { if (!sock.destroyed) sock.end(); });
      process.stdin.resume();
    }
  });
}

/** A container's record (for its Config.Tty and OpenStdin before attaching). */
async function record(socket: string, ref: string): Promise<ContainerRecord> {
  return (await api(socket, 'GET', `/v1/containers/${enc(ref)}`)) as ContainerRecord;
}

/** The exit status of a finished session (0 and a line on detach). */
function sessionStatus(e: Ended, ref: string): number {
  if ('detached' in e) { process.stderr.write(`read escape sequence (detached from ${ref})\n`); return 0; }
  return e.status;
}

/** Parses one verb's argv with its own commander command; the action's status, or 125 for bad flags. */
async function runVerb(cmd: Command, argv: string[]): Promise<number> {
  let status: number;
  cmd.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `tsvm: ${s.slice(7)}` : s) });
  try {
    await cmd.parseAsync(argv, { from: 'user' });
    status = (cmd as Command & { status?: number }).status ?? 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_TSVM;
    throw e;
  }
  return status;
}

interface RunFlags {
  interactive: boolean; tty: boolean; detach?: boolean; name?: string; rm?: boolean; env: string[]; workdir?: string; user?: string;
  hostname?: string; memory?: string; cpus?: string; pidsLimit?: string; runtime?: string; publish: string[]; volume: string[];
  entrypoint?: string; detachKeys?: string; network?: string;
}

const collect = (v: string, a: string[]): string[] => [...a, v];

function runOptions(c: Command, withRun: boolean): Command {
  c.option('-i, --interactive', 'keep stdin open', false).option('-t, --tty', 'a pseudo-terminal (the process VM\'s)', false)
    .option('--name <name>', 'the container name').option('-e, --env <k=v>', 'an environment variable', collect, [])
    .option('-w, --workdir <dir>', 'the working directory').option('-u, --user <user>', 'user[:group] or uid[:gid]')
    .option('--hostname <name>', 'the hostname (default: the short id)').option('--memory <size>', 'memory limit (OOM kill: 137)')
    .option('--cpus <n>', 'CPU share in cores').option('--pids-limit <n>', 'most processes').option('--runtime <r>', "vm (a microVM) or process (the process VM); default: the host's (process)")
    .option('-p, --publish <spec>', '[HOSTADDR:]HOSTPORT:PORT (recorded)', collect, []).option('-v, --volume <spec>', 'bind HOSTDIR:DIR[:ro] (a missing HOSTDIR is created)', collect, [])
    .option('--entrypoint <cmd>', "override the image's entrypoint").option('--network <name>', 'connect to a network (tsvm network create)').option('--rm', 'remove the container when it exits', false)
    .argument('<image>').argument('[command...]').passThroughOptions().allowExcessArguments(false);
  if (withRun) c.option('-d, --detach', 'run in the background; print the id', false).option('--detach-keys <keys>', 'keys to detach', DEFAULT_DETACH);
  return c;
}

/** The create body from the flags; a string is a one-line usage error. */
function createBody(image: string, command: string[], o: RunFlags): Record<string, unknown> | string {
  if (o.runtime !== undefined && !['process', 'vm'].includes(o.runtime)) return `--runtime ${o.runtime}: expected process or vm`;
  const b: Record<string, unknown> = { image, env: o.env, tty: o.tty, openStdin: o.interactive, runtime: o.runtime ?? '', autoRemove: o.rm === true, ports: o.publish, volumes: o.volume };
  for (const kv of o.env) if (!/^[^=]+=/.test(kv)) return `-e ${kv}: expected NAME=VALUE`;
  for (const p of o.publish) if (!/^(?:(?:[\d.]+|\[[0-9a-f:]+\]):)?\d{1,5}:\d{1,5}(?:\/(?:tcp|udp))?$/i.test(p)) return `-p ${p}: expected [HOSTADDR:]HOSTPORT:PORT`;
  for (const v of o.volume) { const bad = parseBind(v); if (typeof bad === 'string') return bad; }
  if (command.length > 0) b['cmd'] = command;
  if (o.entrypoint !== undefined) b['entrypoint'] = o.entrypoint === '' ? [] : [o.entrypoint];
  if (o.name !== undefined) b['name'] = o.name;
  if (o.network !== undefined) b['network'] = o.network;
  if (o.workdir !== undefined) { if (!o.workdir.startsWith('/')) return `-w ${o.workdir}: the working directory must be an absolute path`; b['workdir'] = o.workdir; }
  if (o.user !== undefined) b['user'] = o.user;
  if (o.hostname !== undefined) b['hostname'] = o.hostname;
  if (o.memory !== undefined) {
    const m = parseSize(o.memory, 'B');
    if (m === null || m < 6 * 1024 * 1024) return `--memory ${o.memory}: expected a size of at least 6M (Docker's minimum)`;
    b['memory'] = m;
  }
  if (o.cpus !== undefined) {
    if (!/^\d*\.?\d+$/.test(o.cpus) || !(Number(o.cpus) > 0)) return `--cpus ${o.cpus}: expected a number greater than 0`;
    b['cpus'] = Number(o.cpus);
  }
  if (o.pidsLimit !== undefined) {
    if (!/^\d+$/.test(o.pidsLimit) || Number(o.pidsLimit) < 1) return `--pids-limit ${o.pidsLimit}: expected a whole number of at least 1`;
    b['pidsLimit'] = Number(o.pidsLimit);
  }
  return b;
}

/** Creates the container, pulling the image first when the store lacks it (as `docker run` does); its id. */
async function createContainer(socket: string, body: Record<string, unknown>): Promise<string> {
  try {
    return ((await api(socket, 'POST', '/v1/containers', body)) as { Id: string }).Id;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404 && e.message.startsWith('no such image'))) throw e;
  }
  const image = String(body['image']);
  process.stderr.write(`Unable to find image '${image}' locally\n`);
  const { OciStore, defaultImageStoreDir } = await import('../images/oci/layout.js');
  const { pullImage } = await import('../images/oci/pull.js');
  const r = await pullImage(await OciStore.open(defaultImageStoreDir(process.env)), image, { progress: false });
  process.stderr.write(`Digest: ${r.digest}\nStatus: Downloaded newer image for ${r.refs[0]!}\n`);
  return ((await api(socket, 'POST', '/v1/containers', body)) as { Id: string }).Id;
}

/** `tsvm run [OPTIONS] IMAGE [COMMAND...]` (a container: see run-kind.ts). */
export async function containerRun(argv: string[]): Promise<number> {
  const cmd = runOptions(new Command('run'), true);
  cmd.action(async (image: string, command: string[], o: RunFlags) => {
    const set = (n: number): void => { (cmd as Command & { status?: number }).status = n; };
    const body = createBody(image, command, o);
    if (typeof body === 'string') { set(fail(body, EXIT_TSVM)); return; }
    const keys = parseDetachKeys(o.detachKeys ?? DEFAULT_DETACH);
    if (typeof keys === 'string') { set(fail(keys, EXIT_TSVM)); return; }
    if (o.detach !== true) {
      const noTty = checkTty(o.interactive, o.tty);
      if (noTty !== null) { set(fail(noTty, EXIT_REFUSED)); return; } // the docker CLI's CheckTty, before anything is created
    }
    try {
      const socket = await ensureHost();
      const id = await createContainer(socket, body);
      if (o.detach === true) {
        await api(socket, 'POST', `/v1/containers/${id}/start`);
        process.stdout.write(`${id}\n`);
        set(0);
        return;
      }
      const q = `stdin=${o.interactive ? 1 : 0}&closeStdin=1&start=1${o.tty ? sizeQuery() : ''}`;
      const tty = ttySession(socket, id, o.tty, o.interactive, false);
      set(sessionStatus(await session(socket, `/v1/containers/${id}/attach?${q}`, o.interactive, o.interactive ? keys : null, tty), id.slice(0, 12)));
    } catch (e) { set(fail(e, EXIT_TSVM)); }
  });
  return runVerb(cmd, argv);
}

/** Prints each container's `ref` after a per-container request; 1 if any failed. */
async function each(refs: string[], fn: (socket: string, ref: string) => Promise<void>): Promise<number> {
  let socket: string;
  try { socket = await ensureHost(); } catch (e) { return fail(e, EXIT_TSVM); }
  let status = 0;
  for (const ref of refs) {
    try { await fn(socket, ref); process.stdout.write(`${ref}\n`); } catch (e) { status = fail(e, EXIT_REFUSED); }
  }
  return status;
}

/** Docker's ps STATUS column. */
function statusText(r: ContainerRecord, nowMs: number): string {
  const s = r.State;
  if (s.Status === 'running') return `Up ${humanDuration(nowMs - Date.parse(s.StartedAt))}`;
  if (s.Status === 'created') return 'Created';
  if (s.Status === 'exited') return `Exited (${s.ExitCode}) ${humanDuration(nowMs - Date.parse(s.FinishedAt))} ago`;
  return s.Status[0]!.toUpperCase() + s.Status.slice(1);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

/** `tsvm ps [-a] [-q] [--no-trunc]`. */
async function ps(o: { all: boolean; quiet: boolean; trunc: boolean }): Promise<number> {
  let list: ContainerRecord[];
  try { list = (await api(await ensureHost(), 'GET', `/v1/containers?all=${o.all ? 1 : 0}`)) as ContainerRecord[]; } catch (e) { return fail(e, EXIT_REFUSED); }
  const id = (r: ContainerRecord): string => (o.trunc ? r.Id.slice(0, 12) : r.Id);
  if (o.quiet) { process.stdout.write(list.map((r) => `${id(r)}\n`).join('')); return 0; }
  const nowMs = Date.now();
  const command = (r: ContainerRecord): string => {
    const c = [r.Path, ...r.Args].join(' ');
    return `"${o.trunc && c.length > 20 ? c.slice(0, 19) + '…' : c}"`;
  };
  const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
    ...list.map((r) => [id(r), r.ImageName, command(r), `${humanDuration(nowMs - Date.parse(r.Created))} ago`, statusText(r, nowMs), r.Config.PortBindings.join(', '), r.Name.slice(1)])];
  process.stdout.write(table(rows));
  return 0;
}

/** Registers the container verbs (not `run`: program.ts sends container runs to containerRun). */
export function registerContainerCommands(program: Command): void {
  const st = (c: Command, n: number): void => { process.exitCode = n; void c; };
  program.command('create').description('create a container from an image (docker create)').helpOption(false).allowUnknownOption(true).allowExcessArguments(true)
    .argument('[args...]').action(async (args: string[]) => {
      const cmd = runOptions(new Command('create'), false);
      cmd.action(async (image: string, command: string[], o: RunFlags) => {
        const set = (n: number): void => { (cmd as Command & { status?: number }).status = n; };
        const body = createBody(image, command, o);
        if (typeof body === 'string') { set(fail(body, EXIT_TSVM)); return; }
        try { process.stdout.write(`${await createContainer(await ensureHost(), body)}\n`); set(0); } catch (e) { set(fail(e, EXIT_TSVM)); }
      });
      process.exitCode = await runVerb(cmd, args);
    });
  program.command('start').description('start containers; -a attaches (docker start)').argument('<containers...>')
    .option('-a, --attach', 'attach to its output; exit with its status', false).option('-i, --interactive', 'attach stdin', false)
    .option('--detach-keys <keys>', 'keys to detach', DEFAULT_DETACH)
    .action(async (refs: string[], o: { attach: boolean; interactive: boolean; detachKeys: string }) => {
      if (!o.attach && !o.interactive) { st(program, await each(refs, async (s, ref) => { await api(s, 'POST', `/v1/containers/${enc(ref)}/start`); })); return; }
      if (refs.length !== 1) { process.exitCode = fail('you cannot start and attach multiple containers at once', EXIT_TSVM); return; }
      const keys = parseDetachKeys(o.detachKeys);
      if (typeof keys === 'string') { process.exitCode = fail(keys, EXIT_TSVM); return; }
      try {
        const socket = await ensureHost();
        const r = await record(socket, refs[0]!);
        const withStdin = o.interactive && r.Config.OpenStdin;
        const q = `stdin=${o.interactive ? 1 : 0}&closeStdin=1&start=1${r.Config.Tty ? sizeQuery() : ''}`;
        const tty = ttySession(socket, r.Id, r.Config.Tty, withStdin, r.State.Running);
        process.exitCode = sessionStatus(await session(socket, `/v1/containers/${r.Id}/attach?${q}`, o.interactive, o.interactive ? keys : null, tty), refs[0]!);
      } catch (e) { process.exitCode = fail(e, e instanceof ApiError && e.status < 500 ? EXIT_REFUSED : EXIT_TSVM); }
    });
  for (const verb of ['stop', 'restart'] as const) {
    program.command(verb).description(verb === 'stop' ? 'stop containers: SIGTERM, then SIGKILL after -t seconds' : 'stop then start containers')
      .argument('<containers...>').option('-t, --time <seconds>', 'seconds to wait before SIGKILL', '10')
      .action(async (refs: string[], o: { time: string }) => {
        if (!/^\d+$/.test(o.time)) { process.exitCode = fail(`-t ${o.time}: expected whole seconds`, EXIT_TSVM); return; }
        process.exitCode = await each(refs, async (s, ref) => { await api(s, 'POST', `/v1/containers/${enc(ref)}/${verb}`, { t: Number(o.time) }); });
      });
  }
  program.command('kill').description('send a signal to running containers (default KILL)').argument('<containers...>')
    .option('-s, --signal <sig>', 'the signal', 'KILL')
    .action(async (refs: string[], o: { signal: string }) => {
      process.exitCode = await each(refs, async (s, ref) => { await api(s, 'POST', `/v1/containers/${enc(ref)}/kill`, { signal: o.signal }); });
    });
  // `tsvm logs ... | head` closes the pipe early: that ends the command quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); });
  program.command('attach').description("attach to a running container's input and output (Ctrl-P Ctrl-Q detaches)").argument('<container>')
    .option('--no-stdin', 'do not attach stdin').option('--detach-keys <keys>', 'keys to detach', DEFAULT_DETACH)
    .action(async (ref: string, o: { stdin: boolean; detachKeys: string }) => {
      const keys = parseDetachKeys(o.detachKeys);
      if (typeof keys === 'string') { process.exitCode = fail(keys, EXIT_TSVM); return; }
      try {
        const socket = await ensureHost();
        const r = await record(socket, ref);
        const noTty = checkTty(o.stdin, r.Config.Tty);
        if (noTty !== null) { process.exitCode = fail(noTty, EXIT_REFUSED); return; }
        const tty = ttySession(socket, r.Id, r.Config.Tty, o.stdin && r.Config.OpenStdin, true);
        process.exitCode = sessionStatus(await session(socket, `/v1/containers/${r.Id}/attach?stdin=${o.stdin ? 1 : 0}`, o.stdin, o.stdin ? keys : null, tty), ref);
      } catch (e) { process.exitCode = fail(e, EXIT_REFUSED); }
    });
  program.command(DOCKER_EXEC, { hidden: true }).description('run a command in a running container').argument('<container>').argument('<command...>')
    .option('-i, --interactive', 'attach stdin', false).option('-t, --tty', 'a pseudo-terminal of its own (the process VM\'s)', false)
    .option('--detach-keys <keys>', 'keys to detach (the process goes on)', DEFAULT_DETACH)
    .passThroughOptions()
    .action(async (ref: string, command: string[], o: { interactive: boolean; tty: boolean; detachKeys: string }) => {
      try {
        const keys = parseDetachKeys(o.detachKeys);
        if (typeof keys === 'string') { process.exitCode = fail(keys, EXIT_TSVM); return; }
        const noTty = checkTty(o.interactive, o.tty);
        if (noTty !== null) { process.exitCode = fail(noTty, EXIT_REFUSED); return; } // the docker CLI's CheckTty
        const socket = await ensureHost();
        const q = `cmd=${enc(JSON.stringify(command))}&stdin=${o.interactive ? 1 : 0}${o.tty ? `&tty=1${sizeQuery()}` : ''}`;
        // The exec's id comes with the stream (x-tsvm-exec-id); window changes go to exec-resize with it.
        let execId = '';
        const tty: TtySession | null = !o.tty ? null : {
          raw: o.interactive, initial: false,
          resize: (s) => { if (execId !== '') void api(socket, 'POST', `/v1/containers/${enc(ref)}/exec-resize?id=${execId}&h=${s.rows}&w=${s.cols}`).catch(() => {}); },
        };
        const seen = (h: IncomingHttpHeaders): void => { const v = h['x-tsvm-exec-id']; if (typeof v === 'string') execId = v; };
        // As docker exec: the detach keys work on a terminal with input, and the process goes on without the client.
        process.exitCode = sessionStatus(await session(socket, `/v1/containers/${enc(ref)}/exec?${q}`, o.interactive, o.interactive && o.tty ? keys : null, tty, seen), ref);
      } catch (e) { process.exitCode = fail(e, e instanceof ApiError && e.status < 500 ? EXIT_REFUSED : EXIT_TSVM); }
    });
  program.command('logs').description("a container's output").argument('<container>')
    .option('-f, --follow', 'follow the output until the container ends', false).option('--tail <n>', 'the last N lines', 'all')
    .option('-t, --timestamps', 'prefix each line with its time', false)
    .action(async (ref: string, o: { follow: boolean; tail: string; timestamps: boolean }) => {
      try {
        await streamFrames(await ensureHost(), `/v1/containers/${enc(ref)}/logs?tail=${enc(o.tail)}&timestamps=${o.timestamps ? 1 : 0}&follow=${o.follow ? 1 : 0}`,
          (stream, payload) => { if (stream !== STREAM_EXIT) (stream === STREAM_STDERR ? process.stderr : process.stdout).write(payload); });
      } catch (e) { process.exitCode = fail(e, EXIT_REFUSED); }
    });
  program.command('ps').description('list containers (running; -a all)').option('-a, --all', 'all containers', false)
    .option('-q, --quiet', 'ids only', false).option('--no-trunc', 'full ids and commands')
    .action(async (o: { all: boolean; quiet: boolean; trunc: boolean }) => { process.exitCode = await ps(o); });
  program.command('rm').description('remove containers (-f: a running one too)').argument('<containers...>').option('-f, --force', 'kill it first', false)
    .action(async (refs: string[], o: { force: boolean }) => {
      process.exitCode = await each(refs, async (s, ref) => { await api(s, 'DELETE', `/v1/containers/${enc(ref)}?force=${o.force ? 1 : 0}`); });
    });
  program.command('inspect').description("containers' records as a JSON array").argument('<containers...>')
    .action(async (refs: string[]) => {
      let socket: string;
      try { socket = await ensureHost(); } catch (e) { process.exitCode = fail(e, EXIT_TSVM); return; }
      const out: unknown[] = [];
      let status = 0;
      for (const ref of refs) { try { out.push(await api(socket, 'GET', `/v1/containers/${enc(ref)}`)); } catch (e) { status = fail(e, EXIT_REFUSED); } }
      process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
      process.exitCode = status;
    });
  program.command('stats').description("containers' CPU, memory and process count").argument('[containers...]')
    .option('--no-stream', 'one sample, then exit').action(async (refs: string[], o: { stream: boolean }) => { process.exitCode = await stats(refs, o.stream); });
  program.command('top').description("a container's processes").argument('<container>')
    .action(async (ref: string) => {
      try {
        const t = (await api(await ensureHost(), 'GET', `/v1/containers/${enc(ref)}/top`)) as { Titles: string[]; Processes: string[][] };
        process.stdout.write(table([t.Titles, ...t.Processes]));
      } catch (e) { process.exitCode = fail(e, EXIT_REFUSED); }
    });
  program.command('commit').description("a new image from a container's changes").argument('<container>').argument('[image]')
    .action(async (ref: string, image: string | undefined) => {
      try {
        const r = (await api(await ensureHost(), 'POST', `/v1/containers/${enc(ref)}/commit`, image === undefined ? {} : { repo: image })) as { Id: string };
        process.stdout.write(`${r.Id}\n`);
      } catch (e) { process.exitCode = fail(e, EXIT_REFUSED); }
    });
}

/** `tsvm stats`: one table (with --no-stream), else a new one every second until interrupted. */
async function stats(refs: string[], stream: boolean): Promise<number> {
  let socket: string;
  try { socket = await ensureHost(); } catch (e) { return fail(e, EXIT_TSVM); }
  const { humanSize } = await import('./image-command.js');
  for (;;) {
    let ids = refs;
    try { if (ids.length === 0) ids = ((await api(socket, 'GET', '/v1/containers')) as ContainerRecord[]).map((r) => r.Id); } catch (e) { return fail(e, EXIT_REFUSED); }
    const rows = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'PIDS']];
    let status = 0;
    const got = await Promise.all(ids.map((ref) => api(socket, 'GET', `/v1/containers/${enc(ref)}/stats`).catch((e: unknown) => { status = fail(e, EXIT_REFUSED); return null; })));
    for (const s of got) {
      if (s === null) continue;
      const x = s as { Id: string; Name: string; CpuPercent: number; MemoryUsage: number; MemoryLimit: number; Pids: number };
      rows.push([x.Id.slice(0, 12), x.Name, `${x.CpuPercent.toFixed(2)}%`, `${humanSize(x.MemoryUsage)} / ${x.MemoryLimit > 0 ? humanSize(x.MemoryLimit) : '-'}`, String(x.Pids)]);
    }
    process.stdout.write(table(rows));
    if (!stream || status !== 0) return status;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Whether `tsvm exec ARGS` is Docker's exec (a command in a container)
 * rather than the process VM: its first word after any -i/-t/-it and
 * --detach-keys has no '/', is no file in the current directory and names
 * a container (by name or id prefix in the records on disk).
 */
export async function isContainerExec(args: string[]): Promise<boolean> {
  // Docker's -i/-t/-it and --detach-keys may come first; `tsvm exec -t PROGRAM` (the process VM's pty) is told apart by what follows.
  let k = 0;
  for (;;) {
    const f = args[k];
    if (f !== undefined && /^-(i|t|it|ti)$|^--detach-keys=/.test(f)) k++;
    else if (f === '--detach-keys') k += 2;
    else break;
  }
  const a = args[k];
  if (a === undefined) return false;
  if (a.startsWith('-') || a.includes('/')) return false;
  const fs = await import('node:fs');
  if (fs.existsSync(a)) return false;
  const { defaultContainerDir } = await import('../host/containers/store.js');
  const dir = defaultContainerDir(process.env);
  let names: string[];
  try { names = fs.readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n)); } catch { return false; }
  if (/^[0-9a-f]{1,64}$/.test(a) && names.some((n) => n.startsWith(a))) return true;
  return names.some((n) => {
    try { return (JSON.parse(fs.readFileSync(`${dir}/${n}/config.json`, 'utf8')) as { Name?: string }).Name === '/' + a; } catch { return false; }
  });
}
