/**
 * The host API's container routes (docs/api.md "Containers"): JSON
 * requests for the records and the lifecycle, a framed byte stream for
 * logs (frames.ts), and an HTTP upgrade for attach and exec (raw stdin
 * from the client, frames to it, the exit status last).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { ContainerError, type ContainerRecord } from './store.js';
import { socketSink, type ContainerEngine, type CreateRequest, type OutputSink } from './engine.js';
import { ATTACH_PROTOCOL, STREAM_STDERR, STREAM_STDOUT, exitFrame, frame } from './frames.js';
import { DEFAULT_TTY_SIZE, parseWindowSize } from './tty.js';

type Json = Record<string, unknown>;
/** The content type of a framed stream response. */
export const STREAM_CONTENT_TYPE = 'application/vnd.tsvm.stream';
/** Exit status for a tsvm error (issue 15 point 2). */
const EXIT_TSVM_ERROR = 125;
/** The most seconds `stop -t` may wait (a day). */
const MAX_STOP_S = 86_400;

/** How routes read bodies and reply (the host server's helpers). */
export interface RouteIo {
  readBody(req: http.IncomingMessage): Promise<Json>;
  send(res: http.ServerResponse, status: number, body: unknown): void;
}

const bad = (msg: string): never => { throw new ContainerError(400, msg); };
const str = (b: Json, k: string): string | undefined => {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : bad(`'${k}' must be a string`);
};
const strs = (b: Json, k: string): string[] | undefined => {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v as string[] : bad(`'${k}' must be an array of strings`);
};
const num = (b: Json, k: string, max: number): number => {
  const v = b[k];
  if (v === undefined || v === null) return 0;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= max ? v : bad(`'${k}' must be a number from 0 to ${max}`);
};
const bool = (b: Json, k: string): boolean => {
  const v = b[k];
  if (v === undefined) return false;
  return typeof v === 'boolean' ? v : bad(`'${k}' must be true or false`);
};

/** Checks a create body. */
function createRequest(b: Json): CreateRequest {
  const image = str(b, 'image') ?? bad("'image' is required");
  return {
    image, name: str(b, 'name'), cmd: strs(b, 'cmd'), entrypoint: strs(b, 'entrypoint'), env: strs(b, 'env') ?? [],
    workdir: str(b, 'workdir'), user: str(b, 'user'), hostname: str(b, 'hostname'), tty: bool(b, 'tty'), openStdin: bool(b, 'openStdin'),
    memory: num(b, 'memory', Number.MAX_SAFE_INTEGER), cpus: num(b, 'cpus', 1024), pidsLimit: num(b, 'pidsLimit', 1 << 22),
    ports: strs(b, 'ports') ?? [], volumes: strs(b, 'volumes') ?? [], runtime: str(b, 'runtime') ?? '', autoRemove: bool(b, 'autoRemove'),
    network: str(b, 'network'),
  };
}

/** The network routes under /v1/networks (docs/api.md "Networks"); `parts` follows "networks". */
export async function networkRoute(engine: ContainerEngine, io: RouteIo, method: string, parts: string[], url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const nets = engine.networks;
  if (parts.length === 0) {
    if (method === 'GET') { io.send(res, 200, nets.list()); return; }
    if (method !== 'POST') throw new ContainerError(405, `${url.pathname} takes GET or POST, not ${method}`);
    const name = str(await io.readBody(req), 'name') ?? bad("'name' is required");
    const n = nets.create(name);
    io.send(res, 201, { Id: n.Id, Name: n.Name });
    return;
  }
  if (parts.length !== 1) bad(`no route ${method} ${url.pathname}`);
  const ref = parts[0]!;
  if (method === 'DELETE') { io.send(res, 200, { removed: nets.remove(ref, engine.store.all()) }); return; }
  if (method !== 'GET') throw new ContainerError(405, `${url.pathname} takes GET or DELETE, not ${method}`);
  io.send(res, 200, nets.inspect(ref));
}

/** A log entry as the file holds it. */
interface LogEntry { log: string; stream: string; time: string }

/** The container routes under /v1/containers; `parts` follows "containers". */
export async function containerRoute(engine: ContainerEngine, io: RouteIo, method: string, parts: string[], url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const only = (m: string): void => { if (method !== m) throw new ContainerError(405, `${url.pathname} takes ${m}, not ${method}`); };
  const flag = (k: string): boolean => ['1', 'true'].includes(url.searchParams.get(k) ?? '');
  if (parts.length === 0) {
    if (method === 'GET') {
      const all = flag('all');
      io.send(res, 200, engine.store.all().filter((r) => all || r.State.Running).sort((a, b) => b.Created.localeCompare(a.Created)));
      return;
    }
    only('POST');
    const rec = await engine.create(createRequest(await io.readBody(req)));
    io.send(res, 201, { Id: rec.Id, Name: rec.Name });
    return;
  }
  const ref = parts[0]!;
  const action = parts.length === 2 ? parts[1]! : parts.length === 1 ? '' : bad(`no route ${method} ${url.pathname}`);
  switch (action) {
    case '':
      if (method === 'DELETE') { io.send(res, 200, { removed: await engine.remove(ref, flag('force')) }); return; }
      only('GET');
      io.send(res, 200, engine.store.find(ref));
      return;
    case 'start': only('POST'); await io.readBody(req); io.send(res, 200, await engine.start(ref)); return;
    case 'stop': case 'restart': {
      only('POST');
      const b = await io.readBody(req);
      const t = b['t'] === undefined ? 10 : num(b, 't', MAX_STOP_S);
      const r = await engine.stop(ref, t);
      io.send(res, 200, action === 'restart' ? await engine.start(r.Id) : r);
      return;
    }
    case 'kill': {
      only('POST');
      const b = await io.readBody(req);
      io.send(res, 200, await engine.kill(ref, str(b, 'signal') ?? 'KILL'));
      return;
    }
    case 'resize': {
      only('POST');
      await io.readBody(req);
      const size = parseWindowSize(url.searchParams.get('h'), url.searchParams.get('w'));
      engine.resize(ref, size);
      io.send(res, 200, { Height: size.rows, Width: size.cols });
      return;
    }
    case 'exec-resize': {
      only('POST');
      await io.readBody(req);
      const id = url.searchParams.get('id') ?? '';
      if (!/^[0-9a-f]{64}$/.test(id)) throw new ContainerError(400, `id=${id.slice(0, 80)}: expected an exec id (64 hex digits, the exec stream's x-tsvm-exec-id)`);
      const size = parseWindowSize(url.searchParams.get('h'), url.searchParams.get('w'));
      await engine.execResize(ref, id, size);
      io.send(res, 200, { Height: size.rows, Width: size.cols });
      return;
    }
    case 'wait': only('POST'); await io.readBody(req); io.send(res, 200, { StatusCode: await engine.wait(engine.store.find(ref).Id) }); return;
    case 'commit': {
      only('POST');
      const b = await io.readBody(req);
      io.send(res, 201, { Id: await engine.commit(ref, str(b, 'repo') ?? null) });
      return;
    }
    case 'top': {
      only('GET');
      const titles = ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'];
      const guest = await engine.guestTop(ref); // a vm container: the guest's processes
      if (guest !== null) { io.send(res, 200, { Titles: titles, Processes: guest.map((p) => [p.uid, String(p.pid), String(p.ppid), '0', p.stime, '?', p.time, p.cmd]) }); return; }
      io.send(res, 200, await engine.top(ref));
      return;
    }
    case 'stats': { only('GET'); io.send(res, 200, await stats(engine, engine.store.find(ref))); return; }
    case 'logs': { only('GET'); logs(engine, engine.store.find(ref), url, res); return; }
    default: bad(`no route ${method} ${url.pathname}`);
  }
}

/** `logs`: the log's entries (the last `tail`), then with `follow` the live output until the container ends. */
function logs(engine: ContainerEngine, r: ContainerRecord, url: URL, res: http.ServerResponse): void {
  const tailText = url.searchParams.get('tail') ?? 'all';
  if (tailText !== 'all' && !/^\d+$/.test(tailText)) bad(`--tail ${tailText}: expected a number or all`);
  const ts = ['1', 'true'].includes(url.searchParams.get('timestamps') ?? '');
  const follow = ['1', 'true'].includes(url.searchParams.get('follow') ?? '');
  let entries: LogEntry[] = [];
  try {
    entries = fs.readFileSync(r.LogPath, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogEntry);
  } catch { /* no log yet */ }
  if (tailText !== 'all') entries = Number(tailText) === 0 ? [] : entries.slice(-Number(tailText));
  res.writeHead(200, { 'content-type': STREAM_CONTENT_TYPE });
  const put = (stream: number, text: string, time: string): void => { res.write(frame(stream, Buffer.from(ts ? `${time} ${text}` : text))); };
  for (const e of entries) put(e.stream === 'stderr' ? STREAM_STDERR : STREAM_STDOUT, e.log, e.time);
  const run = follow ? engine.runningOf(r.Id) : null;
  if (run === null) { res.end(); return; }
  const sink: OutputSink = {
    write: (stream, data) => {
      const time = new Date().toISOString();
      for (const line of data.toString('utf8').split(/(?<=\n)/)) if (line !== '') put(stream, line, time);
    },
    end: (status) => { res.end(exitFrame(status)); },
  };
  run.sinks.add(sink);
  res.on('close', () => { run.sinks.delete(sink); });
}

/** `stats`: CPU share over a short sample and resident memory of the runtime process; the container's processes. */
async function stats(engine: ContainerEngine, r: ContainerRecord): Promise<Json> {
  const base = { Id: r.Id, Name: r.Name.slice(1), MemoryLimit: r.Config.Memory, Running: r.State.Running };
  if (!r.State.Running) return { ...base, CpuPercent: 0, MemoryUsage: 0, Pids: 0 };
  const sampleMs = 500;
  const guest = await engine.guestStats(r.Id, sampleMs); // a vm container: its guest and its VM
  if (guest !== null) return { ...base, ...guest };
  const procs = engine.pids(r.Id);
  const ticks = (): number => procs.reduce((n, p) => {
    try {
      const s = fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      return n + Number(f[11]) + Number(f[12]);
    } catch { return n; }
  }, 0);
  const t0 = ticks();
  await new Promise((res) => setTimeout(res, sampleMs));
  const cpu = (ticks() - t0) / 100 / (sampleMs / 1000) * 100; // USER_HZ 100 (proc(5))
  let rss = 0;
  for (const p of procs) {
    try { rss += Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024; } catch { /* ended */ }
  }
  // Pids: the container's own processes (its VM's process table), as a pids cgroup counts them.
  const pids = await engine.top(r.Id).then((t) => t.Processes.length, () => 0);
  return { ...base, CpuPercent: Math.round(cpu * 100) / 100, MemoryUsage: rss, Pids: pids };
}

/**
 * The attach and exec streams: `GET /v1/containers/REF/attach` (query
 * stdin=1 to forward input, closeStdin=1 to close the container's stdin
 * when the client half-closes, start=1 to start it too, h and w its
 * terminal's size for that start) and
 * `GET /v1/containers/REF/exec?cmd=JSON` (stdin=1 to forward input,
 * tty=1 for a terminal of its own, h and w its first size; the 101 reply's
 * x-tsvm-exec-id header names it for exec-resize), with `Upgrade: tsvm-attach`.
 * Returns false when the URL is not a container stream.
 */
export function containerUpgrade(engine: ContainerEngine, req: http.IncomingMessage, sock: Duplex, head: Buffer): boolean {
  const url = new URL(req.url ?? '/', 'http://host');
  const m = /^\/v1\/containers\/([^/]+)\/(attach|exec)$/.exec(url.pathname);
  if (m === null) return false;
  const reject = (status: number, msg: string): void => {
    const body = JSON.stringify({ error: msg });
    sock.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  };
  if ((req.headers.upgrade ?? '').toLowerCase() !== ATTACH_PROTOCOL) { reject(400, `upgrade to ${ATTACH_PROTOCOL} only`); return true; }
  const flag = (k: string): boolean => ['1', 'true'].includes(url.searchParams.get(k) ?? '');
  void (async () => {
    const sink = socketSink((b) => { if (!sock.destroyed) sock.write(b); }, () => { sock.end(); });
    const upgraded = (extra = ''): void => { sock.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${ATTACH_PROTOCOL}\r\nconnection: Upgrade\r\n${extra}\r\n`); };
    let r: ContainerRecord;
    let run: { sinks: Set<OutputSink>; exited: Promise<number> } | null;
    /** Where the client's input goes: the container's stdin, or the exec's. */
    let input: { write(b: Buffer): void; end(): void };
    const childInput = (child: import('./vm-runtime.js').RuntimeChild): { write(b: Buffer): void; end(): void } => ({
      write: (b) => { if (child.stdin?.writable === true) child.stdin.write(b); },
      end: () => { child.stdin?.end(); },
    });
    try {
      r = engine.store.find(decodeURIComponent(m[1]!));
      if (m[2] === 'exec') {
        let argv: unknown;
        try { argv = JSON.parse(url.searchParams.get('cmd') ?? '[]'); } catch { argv = null; }
        if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new ContainerError(400, "'cmd' must be a JSON array of strings");
        const tty = flag('tty') ? (url.searchParams.has('h') || url.searchParams.has('w') ? parseWindowSize(url.searchParams.get('h'), url.searchParams.get('w')) : DEFAULT_TTY_SIZE) : null;
        const { run: x, id } = engine.exec(r.Id, argv as string[], flag('stdin'), tty);
        run = x;
        input = x.stdin;
        upgraded(`x-tsvm-exec-id: ${id}\r\n`);
        run.sinks.add(sink);
      } else if (flag('start') && !r.State.Running) {
        if (r.Config.Tty && (url.searchParams.has('h') || url.searchParams.has('w'))) {
          engine.terminals.setSize(r.Id, parseWindowSize(url.searchParams.get('h'), url.searchParams.get('w')));
        }
        upgraded();
        try {
          await engine.start(r.Id, (x) => { x.sinks.add(sink); });
        } catch (e) {
          sink.write(STREAM_STDERR, Buffer.from(`tsvm: ${(e as Error).message}\n`));
          sink.end(EXIT_TSVM_ERROR);
          return;
        }
        const main = engine.runningOf(r.Id);
        if (main === null) return; // it ended already; the sink had its exit frame
        run = main;
        input = childInput(main.child);
      } else {
        const main = engine.runningOf(r.Id);
        if (main === null) throw new ContainerError(409, `you cannot attach to a stopped container ${r.Name.slice(1)}: start it first`);
        run = main;
        input = childInput(main.child);
        upgraded();
        run.sinks.add(sink);
      }
    } catch (e) {
      reject(e instanceof ContainerError ? e.status : 500, (e as Error).message);
      return;
    }
    (sock as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true; // the client's end of input must not end our output
    const to = input;
    const withStdin = m[2] === 'exec' ? flag('stdin') : flag('stdin') && r.Config.OpenStdin;
    const toStdin = (b: Buffer): void => { if (withStdin) to.write(b); };
    if (head.length > 0) toStdin(head);
    sock.on('data', toStdin);
    // A terminal's input is not closed when a client goes (Docker closes stdin on the client's EOF only without a tty):
    // a client that detached from a terminal leaves its process running, the container's main one or an exec.
    const closes = m[2] === 'exec' ? !flag('tty') : flag('closeStdin') && !r.Config.Tty;
    sock.on('end', () => { if (withStdin && closes) to.end(); });
    // An exec without input gets EOF at once, as `docker exec` without -i does.
    if (m[2] === 'exec' && !withStdin) to.end();
    const live = run;
    const gone = (): void => { live.sinks.delete(sink); };
    sock.on('close', gone);
    sock.on('error', () => { gone(); sock.destroy(); });
  })();
  return true;
}
