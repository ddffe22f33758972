/**
 * The container microVM's guest: the default guest's kernel, and an initrd
 * that is the default guest's (busybox, the virtio modules; Debian's kernel
 * has virtio_console and virtiofs built in) with the guest agent as /init.
 *
 * The agent (guest/agent/agent.c) is compiled on first use with Debian's
 * cross compiler (`riscv64-linux-gnu-gcc -static -Os`; scripts/ installs
 * gcc-riscv64-linux-gnu) into <cache>/agent/agent-<hash> (hash of the
 * sources, the flags and the compiler version). The initrd is the default
 * initrd's cpio followed by a second cpio holding /init (the agent) and
 * /etc/tsvm-agent/modules (the modules it loads, dependencies first): the
 * kernel unpacks concatenated archives in order, later entries replacing
 * earlier ones. It is gzip'd into <cache>/guests/agent-<hash>/ (hash of the
 * default initrd and the agent), written to a temp file and renamed into
 * place, so a built one is reused at once.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { CpioWriter } from '../../images/cpio.js';
import { ensureDefaultGuest } from '../../images/default-guest.js';
import { defaultCacheDir } from '../../images/debian-archive.js';

/** The cross compiler and its flags for the agent. */
const CROSS_CC = 'riscv64-linux-gnu-gcc';
const AGENT_CFLAGS = ['-static', '-Os', '-march=rv64gc', '-mabi=lp64d', '-Wall', '-s'];
/** Bump when the initrd's layout changes. */
const AGENT_INITRD_FORMAT = 1;

/** The agent's sources, relative to the repository root. */
const AGENT_SOURCES = ['guest/agent/agent.c', 'guest/agent/protocol.h'];

/** A built container guest. */
export interface AgentGuest {
  /** The kernel Image (the default guest's). */
  kernel: string;
  /** The gzip'd initrd with the agent as /init. */
  initrd: string;
  /** Kernel release. */
  kernelVersion: string;
  /** The static agent binary. */
  agent: string;
}

/** Options of ensureAgentGuest(). */
export interface AgentGuestOptions {
  /** Debian mirror (for a first build of the default guest). */
  mirror?: string;
  /** Cache root; default defaultCacheDir(). */
  cacheDir?: string;
  /** Progress lines on stderr; default true. */
  progress?: boolean;
}

/** The directory holding guest/agent (the repository or package root). */
function sourceRoot(): string {
  for (let d = path.dirname(fileURLToPath(import.meta.url)); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, AGENT_SOURCES[0]!))) return d;
    if (path.dirname(d) === d) throw new Error(`cannot find ${AGENT_SOURCES[0]!} above ${fileURLToPath(import.meta.url)}`);
  }
}

/** Writes `data` to `dest` through a temp file and a rename (readers never see half a file). */
function publishFile(dest: string, data: Uint8Array, mode = 0o644): void {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, dest);
}

/** Compiles the agent (once per source/compiler version); returns its path. */
export function ensureAgentBinary(cacheDir: string = defaultCacheDir(), progress = true): string {
  const root = sourceRoot();
  const h = crypto.createHash('sha256');
  let version: string;
  try {
    version = execFileSync(CROSS_CC, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0] ?? '';
  } catch {
    throw new Error(`${CROSS_CC} not found: the container agent is compiled with it (apt-get install gcc-riscv64-linux-gnu)`);
  }
  h.update(JSON.stringify([AGENT_CFLAGS, version]));
  for (const s of AGENT_SOURCES) h.update(fs.readFileSync(path.join(root, s)));
  const out = path.join(cacheDir, 'agent', `agent-${h.digest('hex').slice(0, 16)}`);
  if (fs.existsSync(out)) return out;
  if (progress) process.stderr.write(`tsvm: container agent: compiling ${AGENT_SOURCES[0]!}\n`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    execFileSync(CROSS_CC, [...AGENT_CFLAGS, '-o', tmp, path.join(root, AGENT_SOURCES[0]!)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0] ?? String(e);
    throw new Error(`compiling the container agent failed: ${err}`, { cause: e });
  }
  fs.renameSync(tmp, out);
  return out;
}

/** Finds or builds the container guest (kernel + agent initrd). */
export async function ensureAgentGuest(opts: AgentGuestOptions = {}): Promise<AgentGuest> {
  const cacheDir = path.resolve(opts.cacheDir ?? defaultCacheDir());
  const progress = opts.progress ?? true;
  const g = await ensureDefaultGuest({
    ...(opts.mirror !== undefined ? { mirror: opts.mirror } : {}), cacheDir, progress,
  });
  const agent = ensureAgentBinary(cacheDir, progress);
  const base = fs.readFileSync(g.initrd), agentBytes = fs.readFileSync(agent);
  const hash = crypto.createHash('sha256').update(String(AGENT_INITRD_FORMAT)).update(base).update(agentBytes).update(g.modules.join('\n'))
    .digest('hex').slice(0, 16);
  const initrd = path.join(cacheDir, 'guests', `agent-${hash}`, 'initrd.cpio.gz');
  if (!fs.existsSync(initrd)) {
    if (progress) process.stderr.write('tsvm: container agent: writing its initrd\n');
    const extra = new CpioWriter();
    extra.file('init', agentBytes, 0o755);
    extra.file('etc/tsvm-agent/modules', new TextEncoder().encode(g.modules.map((m) => `${m}\n`).join('')), 0o644);
    const cpio = Buffer.concat([zlib.gunzipSync(base), extra.finish()]);
    publishFile(initrd, zlib.gzipSync(cpio, { level: 6 }));
  }
  return { kernel: g.kernel, initrd, kernelVersion: g.kernelVersion, agent };
}
