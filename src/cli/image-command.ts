/**
 * Docker's image verbs on the OCI image store (src/images/oci):
 * `tsvm pull`, `images`, `rmi`, `tag`, `save`, `load`, `import`. Every tsvm error
 * (an unknown image, a bad name, a corrupt or mismatching archive) prints one
 * line and exits 125, the issue's code for a tsvm error (Docker itself exits
 * 1 for "No such image"; 125 is used consistently here). The store modules
 * are imported when a verb runs, so other commands do not load them.
 */
import type { Command } from 'commander';
import type { Readable, Writable } from 'node:stream';

/** Exit status for a tsvm error (issue 15 point 2). */
const EXIT_TSVM_ERROR = 125;

function fail(e: unknown): number {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`tsvm: ${msg.split('\n')[0]}\n`);
  return EXIT_TSVM_ERROR;
}

async function openStore(): Promise<import('../images/oci/layout.js').OciStore> {
  const { OciStore, defaultImageStoreDir } = await import('../images/oci/layout.js');
  return OciStore.open(defaultImageStoreDir(process.env));
}

/** Docker's CLI time format (go-units HumanDuration), e.g. "2 days". */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const min = Math.floor(s / 60);
  if (min === 1) return 'About a minute';
  if (min < 60) return `${min} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/** Docker's CLI size format (go-units HumanSizeWithPrecision, decimal units, 3 digits), e.g. "4.26MB". */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

/** `tsvm images`. */
async function imagesCmd(filter: string | undefined, o: { digests: boolean; quiet: boolean }): Promise<number> {
  try {
    const store = await openStore();
    let rows = await store.list();
    if (filter !== undefined) {
      const { parseReference, repositoryName } = await import('../images/oci/reference.js');
      const p = parseReference(filter);
      const tagGiven = filter.slice(filter.lastIndexOf('/') + 1).includes(':');
      rows = rows.filter((r) => r.repository === repositoryName(p) && (!tagGiven || r.tag === p.tag));
    }
    rows.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? '') || a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag));
    const shortId = (id: string): string => id.slice('sha256:'.length, 'sha256:'.length + 12);
    if (o.quiet) {
      const ids = [...new Set(rows.map((r) => shortId(r.id)))];
      process.stdout.write(ids.map((i) => `${i}\n`).join(''));
      return 0;
    }
    const now = Date.now();
    const head = o.digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
    const body = rows.map((r) => {
      const t = r.created === null ? NaN : Date.parse(r.created);
      const created = Number.isNaN(t) ? 'N/A' : `${humanDuration(Math.max(0, now - t))} ago`;
      const cols = [r.repository, r.tag, shortId(r.id), created, humanSize(r.size)];
      if (o.digests) cols.splice(2, 0, r.digest);
      return cols;
    });
    process.stdout.write(table([head, ...body]));
    return 0;
  } catch (e) {
    return fail(e);
  }
}

/** `tsvm rmi`: untag each image; blobs no image needs any more are deleted. */
async function rmiCmd(images: string[], o: { force: boolean }): Promise<number> {
  let status = 0;
  try {
    const store = await openStore();
    for (const img of images) {
      try {
        const before = await store.resolve(img);
        const removed = await store.removeRef(img, { force: o.force });
        for (const r of removed) if (r !== null) process.stdout.write(`Untagged: ${r}\n`);
        const still = (await store.list()).some((r) => r.id === before.configDigest);
        if (!still) process.stdout.write(`Deleted: ${before.configDigest}\n`);
      } catch (e) {
        status = fail(e);
      }
    }
    await store.gc();
  } catch (e) {
    return fail(e);
  }
  return status;
}

/** `tsvm tag SRC DST`. */
async function tagCmd(src: string, dst: string): Promise<number> {
  try {
    await (await openStore()).tag(src, dst);
    return 0;
  } catch (e) {
    return fail(e);
  }
}

/** `tsvm save`. */
async function saveCmd(images: string[], o: { output?: string; format?: string }): Promise<number> {
  try {
    const { save, ARCHIVE_FORMATS, DEFAULT_ARCHIVE_FORMAT } = await import('../images/oci/archive-save.js');
    const format = o.format ?? DEFAULT_ARCHIVE_FORMAT;
    if (!(ARCHIVE_FORMATS as readonly string[]).includes(format)) {
      return fail(`save: --format ${format}: expected ${ARCHIVE_FORMATS.join(', ')}`);
    }
    if (o.output === undefined && process.stdout.isTTY) return fail('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    const store = await openStore();
    await save(store, images, o.output ?? (process.stdout as Writable), format as (typeof ARCHIVE_FORMATS)[number]);
    return 0;
  } catch (e) {
    return fail(e);
  }
}

/** `tsvm load`. */
async function loadCmd(o: { input?: string; quiet: boolean }): Promise<number> {
  try {
    if (o.input === undefined && process.stdin.isTTY) return fail('requested load from stdin, but stdin is empty');
    const { load } = await import('../images/oci/archive.js');
    const store = await openStore();
    const loaded = await load(store, o.input ?? (process.stdin as Readable));
    if (!o.quiet) {
      for (const l of loaded) process.stdout.write(l.ref !== null ? `Loaded image: ${l.ref}\n` : `Loaded image ID: ${l.id}\n`);
    }
    return 0;
  } catch (e) {
    return fail(e);
  }
}

/** `tsvm import TARBALL NAME`. */
async function importCmd(tarball: string, name: string, o: { message?: string }): Promise<number> {
  try {
    if (tarball === '-' && process.stdin.isTTY) return fail('import: stdin is a terminal; give a tarball');
    const { importTarball } = await import('../images/oci/archive.js');
    const store = await openStore();
    const r = await importTarball(store, tarball === '-' ? (process.stdin as Readable) : tarball, name, { comment: o.message });
    process.stdout.write(`${r.id}\n`);
    return 0;
  } catch (e) {
    return fail(e);
  }
}

/** Register `images`, `rmi`, `tag`, `save`, `load` and `import` on the tsvm program. */
/** `tsvm pull`. */
async function pullCmd(name: string, o: { quiet: boolean; username?: string; password?: string; insecure: boolean; mirror?: string }): Promise<number> {
  try {
    const store = await openStore();
    const { pullImage } = await import('../images/oci/pull.js');
    if (o.password !== undefined && o.username === undefined) throw new Error('--password needs --username');
    const r = await pullImage(store, name, {
      progress: !o.quiet,
      registry: { username: o.username, password: o.password, insecure: o.insecure },
      build: { mirror: o.mirror },
    });
    if (!o.quiet) {
      process.stdout.write(`Digest: ${r.digest}\n`);
      process.stdout.write(`Status: ${r.upToDate === true ? 'Image is up to date' : 'Downloaded newer image'} for ${r.refs[0]}\n`);
    }
    process.stdout.write(`${r.refs[0]}\n`);
    return 0;
  } catch (e) {
    return fail(e);
  }
}

export function registerImageCommands(program: Command): void {
  program.command('pull').description('build debian or busybox from Debian\'s packages, or fetch HOST[:PORT]/NAME[:TAG] from a registry')
    .argument('<name>', 'debian[:trixie|:latest], busybox[:latest], or HOST[:PORT]/NAME[:TAG|@DIGEST]')
    .option('-q, --quiet', 'print only the image name', false)
    .option('--username <user>', 'registry user (else the auth files: $REGISTRY_AUTH_FILE, ~/.docker/config.json)')
    .option('--password <password>', 'registry password')
    .option('--insecure', 'plain http to any registry (it is always used for localhost and 127.0.0.0/8)', false)
    .option('--mirror <url>', 'Debian archive for debian and busybox (default: the host\'s apt configuration)')
    .action(async (name: string, o: { quiet: boolean; username?: string; password?: string; insecure: boolean; mirror?: string }) => { process.exitCode = await pullCmd(name, o); });
  program.command('images').description('list the images in the store (docker images)')
    .argument('[repository]', 'only this repository (REPO or REPO:TAG)')
    .option('--digests', 'show manifest digests', false)
    .option('-q, --quiet', 'only image IDs', false)
    .action(async (repo: string | undefined, o: { digests: boolean; quiet: boolean }) => { process.exitCode = await imagesCmd(repo, o); });
  program.command('rmi').description('remove images (untag; delete blobs no image needs)')
    .argument('<images...>')
    .option('-f, --force', 'remove an image ID even if several names refer to it', false)
    .action(async (images: string[], o: { force: boolean }) => { process.exitCode = await rmiCmd(images, o); });
  program.command('tag').description('give an image another name').argument('<source>').argument('<target>')
    .action(async (src: string, dst: string) => { process.exitCode = await tagCmd(src, dst); });
  program.command('save').description('write images to a tar archive (stdout unless -o)')
    .argument('<images...>')
    .option('-o, --output <file>', 'write to FILE (atomically) instead of stdout')
    .option('--format <format>', 'oci, docker (Docker >= 25: OCI layout plus manifest.json; the default) or docker-classic')
    .action(async (images: string[], o: { output?: string; format?: string }) => { process.exitCode = await saveCmd(images, o); });
  program.command('load').description('load images from a tar archive (OCI or docker-archive; stdin unless -i)')
    .option('-i, --input <file>', 'read from FILE instead of stdin')
    .option('-q, --quiet', 'print nothing', false)
    .action(async (o: { input?: string; quiet: boolean }) => { process.exitCode = await loadCmd(o); });
  program.command('import').description('make a one-layer image from a root filesystem tarball (- for stdin)')
    .argument('<tarball>').argument('<name>')
    .option('-m, --message <text>', 'history comment')
    .action(async (tarball: string, name: string, o: { message?: string }) => { process.exitCode = await importCmd(tarball, name, o); });
}
