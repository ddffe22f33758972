/**
 * An exclusive lock between processes sharing an image store: a lock file
 * created with O_EXCL that holds the owner's pid. A lock whose pid is no
 * longer alive is stale; it is broken under a second O_EXCL "break" file,
 * and only after re-reading the same dead pid, so two processes breaking it
 * at once can never remove a lock a live process has just taken. A lock
 * file older than the last boot is stale whatever its pid (after a crash
 * and reboot the pid may belong to an unrelated process).
 */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import { ImageError } from '../errors.js';

/** How long to wait for a live holder before giving up. */
const LOCK_TIMEOUT_MS = 60_000;
/** First wait between attempts; doubled up to LOCK_POLL_MAX_MS. */
const LOCK_POLL_MS = 5;
const LOCK_POLL_MAX_MS = 200;
/** A break file older than this is itself stale (its breaker died between two syscalls). */
const BREAK_STALE_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** True if a process with this pid exists (signal 0 probes without signalling). */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(file: string): Promise<number | null> {
  try {
    const s = (await fsp.readFile(file, 'utf8')).trim();
    return /^\d+$/.test(s) ? Number(s) : NaN;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

async function tryCreate(file: string): Promise<boolean> {
  try {
    const fh = await fsp.open(file, 'wx', 0o644);
    try {
      await fh.writeFile(`${process.pid}\n`);
    } finally {
      await fh.close();
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** Remove `file` if it still holds the dead pid `dead`; serialized by `file.break`. */
async function breakStale(file: string, dead: number): Promise<void> {
  const brk = `${file}.break`;
  if (!(await tryCreate(brk))) {
    const st = await fsp.stat(brk).catch(() => null);
    const owner = await readPid(brk);
    if (st !== null && owner !== null && !pidAlive(owner) && Date.now() - st.mtimeMs > BREAK_STALE_MS) await fsp.rm(brk, { force: true });
    return;
  }
  try {
    // Only a breaker (holding brk) removes a dead owner's lock, so the file cannot change between this read and the unlink.
    if (Object.is(await readPid(file), dead)) await fsp.rm(file, { force: true });
  } finally {
    await fsp.rm(brk, { force: true });
  }
}

/** Run `fn` while holding the lock file `file`; waits for a live holder, breaks a dead one's lock. */
export async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let wait = LOCK_POLL_MS;
  while (!(await tryCreate(file))) {
    const owner = await readPid(file);
    if (owner === null) continue; // released meanwhile
    const st = await fsp.stat(file).catch(() => null);
    const beforeBoot = st !== null && st.mtimeMs < Date.now() - os.uptime() * 1000;
    // An unparsable pid is a lock whose owner died between open and write.
    if (Number.isNaN(owner) || !pidAlive(owner) || beforeBoot) {
      if (Number.isNaN(owner) && st !== null && Date.now() - st.mtimeMs < BREAK_STALE_MS) {
        await sleep(wait);
        continue;
      }
      await breakStale(file, owner);
      continue;
    }
    if (Date.now() > deadline) throw new ImageError(`the image store is locked by process ${owner} (${file})`);
    await sleep(wait);
    wait = Math.min(wait * 2, LOCK_POLL_MAX_MS);
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(file, { force: true });
  }
}
