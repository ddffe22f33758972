/**
 * Linux kernel module metadata: parse `modules.dep`, `modules.order` and
 * `modules.builtin` (formats as written by kmod's depmod(8) and kbuild, see
 * modules.dep(5)), read a module's `.modinfo` section (NUL-separated
 * `key=value` strings in an ELF relocatable, see include/linux/moduleparam.h
 * MODULE_INFO), and resolve requested module names into a load order with
 * dependencies first. Module names follow the kernel's convention: the file's
 * basename without `.ko[.xz|.zst|.gz]`, with `-` and `_` equivalent
 * (normalised here to `_`). Pure: no node: imports.
 */

import { ImageError } from './errors.js';

/** One line of modules.dep: a module and the modules it needs. */
export interface ModuleDepEntry {
  /** Normalised module name. */
  name: string;
  /** Path relative to the modules directory (e.g. `kernel/drivers/net/virtio_net.ko.xz`). */
  path: string;
  /** Paths of the modules it depends on, as listed (depmod lists them transitively, load-last first). */
  deps: string[];
}

/** A module to load, in resolved order. */
export interface ResolvedModule {
  /** Normalised module name. */
  name: string;
  /** Path relative to the modules directory. */
  path: string;
}

/** Suffixes a module file may carry (kmod accepts these compressions). */
const MODULE_SUFFIXES = ['.ko.xz', '.ko.zst', '.ko.gz', '.ko'] as const;

/** Normalise a module name: `-` and `_` are equivalent in module names (kmod's modname_normalize). */
export function normalizeModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

/** Module name of a path such as `kernel/drivers/char/hw_random/virtio-rng.ko.xz` (-> `virtio_rng`). */
export function moduleName(path: string): string {
  let base = path.slice(path.lastIndexOf('/') + 1);
  for (const s of MODULE_SUFFIXES) {
    if (base.endsWith(s)) {
      base = base.slice(0, -s.length);
      break;
    }
  }
  return normalizeModuleName(base);
}

/** Parse modules.dep text (`path: dep dep ...` per line) into a map keyed by module name. */
export function parseModulesDep(text: string): Map<string, ModuleDepEntry> {
  const out = new Map<string, ModuleDepEntry>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ImageError(`modules.dep line ${i + 1}: expected "path: deps", got ${JSON.stringify(line.slice(0, 80))}`);
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter((d) => d !== '');
    const name = moduleName(path);
    if (!out.has(name)) out.set(name, { name, path, deps }); // like kmod, the first line for a name wins
  }
  return out;
}

/** Parse a list of module paths, one per line (modules.order, modules.builtin) into name -> path. */
export function parseModuleList(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const name = moduleName(line);
    if (!out.has(name)) out.set(name, line);
  }
  return out;
}

/** The names of the modules listed in modules.builtin (compiled into the kernel image). */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(parseModuleList(text).keys());
}

/**
 * Resolve `names` into a load order: every module after all of its
 * dependencies, each once. Names in `builtin` are skipped; names neither in
 * `deps` nor in `builtin` raise one ImageError listing all of them.
 */
export function resolveModuleOrder(names: readonly string[], deps: ReadonlyMap<string, ModuleDepEntry>, builtin: ReadonlySet<string> = new Set()): ResolvedModule[] {
  const wanted: ModuleDepEntry[] = [];
  const unknown: string[] = [];
  for (const raw of names) {
    const name = normalizeModuleName(raw);
    if (builtin.has(name)) continue;
    const e = deps.get(name);
    if (e === undefined) unknown.push(raw);
    else wanted.push(e);
  }
  if (unknown.length > 0) {
    throw new ImageError(`unknown kernel module${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (not in modules.dep nor modules.builtin)`);
  }
  const order: ResolvedModule[] = [];
  const done = new Set<string>();
  const active: string[] = [];
  const visit = (e: ModuleDepEntry): void => {
    if (done.has(e.name)) return;
    if (active.includes(e.name)) throw new ImageError(`module dependency cycle: ${[...active, e.name].join(' -> ')}`);
    active.push(e.name);
    // depmod lists dependencies so that the last one must be loaded first; walk them in
    // reverse so a transitive list keeps its order, and recurse so a partial one still works.
    for (let i = e.deps.length - 1; i >= 0; i--) {
      const p = e.deps[i] as string;
      const n = moduleName(p);
      if (builtin.has(n)) continue;
      visit(deps.get(n) ?? { name: n, path: p, deps: [] });
    }
    active.pop();
    done.add(e.name);
    order.push({ name: e.name, path: e.path });
  };
  for (const e of wanted) visit(e);
  return order;
}

/** Format modules.dep text from entries (`path: deps...` lines, input order kept). */
export function formatModulesDep(entries: readonly { path: string; deps: readonly string[] }[]): string {
  return entries.map((e) => `${e.path}:${e.deps.map((d) => ` ${d}`).join('')}\n`).join('');
}

/** The `.modinfo` strings of a module, parsed. */
export interface ModInfo {
  /** Every key with its values in order (keys such as `alias` repeat). */
  fields: Map<string, string[]>;
  /** The `name=` value (normalised), if present. */
  name: string | undefined;
  /** Modules named by `depends=` (normalised; empty when none). */
  depends: string[];
  /** Modules named as `softdep=pre:` soft dependencies (optional, may be aliases). */
  softPre: string[];
}

/** ELF identification and header offsets (System V gABI, "ELF Header" and "Sections"). */
const ELF = {
  MAGIC: [0x7f, 0x45, 0x4c, 0x46],
  EI_CLASS: 4,
  ELFCLASS64: 2,
  EI_DATA: 5,
  ELFDATA2LSB: 1,
  ELFDATA2MSB: 2,
  E_SHOFF: 0x28,
  E_SHENTSIZE: 0x3a,
  E_SHNUM: 0x3c,
  E_SHSTRNDX: 0x3e,
  SHDR64_SIZE: 64,
  SH_NAME: 0x00,
  SH_OFFSET: 0x18,
  SH_SIZE: 0x20,
  SHT_NOBITS: 8,
  SH_TYPE: 0x04,
} as const;

/** Parse the `.modinfo` section of a 64-bit ELF kernel module (uncompressed); throws ImageError if malformed. */
export function parseModinfo(elf: Uint8Array, what = 'module'): ModInfo {
  if (elf.length < 64 || ELF.MAGIC.some((b, i) => elf[i] !== b)) throw new ImageError(`${what}: not an ELF file`);
  if (elf[ELF.EI_CLASS] !== ELF.ELFCLASS64) throw new ImageError(`${what}: not a 64-bit ELF file`);
  const data = elf[ELF.EI_DATA];
  if (data !== ELF.ELFDATA2LSB && data !== ELF.ELFDATA2MSB) throw new ImageError(`${what}: unknown ELF byte order`);
  const le = data === ELF.ELFDATA2LSB;
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const u64 = (o: number): number => {
    if (o + 8 > elf.length) throw new ImageError(`${what}: truncated ELF file`);
    const v = dv.getBigUint64(o, le);
    if (v > BigInt(elf.length)) throw new ImageError(`${what}: ELF offset out of range`);
    return Number(v);
  };
  const shoff = u64(ELF.E_SHOFF);
  const shentsize = dv.getUint16(ELF.E_SHENTSIZE, le);
  const shnum = dv.getUint16(ELF.E_SHNUM, le);
  const shstrndx = dv.getUint16(ELF.E_SHSTRNDX, le);
  if (shentsize < ELF.SHDR64_SIZE || shoff + shnum * shentsize > elf.length || shstrndx >= shnum) {
    throw new ImageError(`${what}: bad ELF section header table`);
  }
  const section = (i: number): { name: number; type: number; off: number; size: number } => {
    const b = shoff + i * shentsize;
    const off = u64(b + ELF.SH_OFFSET);
    const size = u64(b + ELF.SH_SIZE);
    const type = dv.getUint32(b + ELF.SH_TYPE, le);
    if (type !== ELF.SHT_NOBITS && off + size > elf.length) throw new ImageError(`${what}: ELF section ${i} out of range`);
    return { name: dv.getUint32(b + ELF.SH_NAME, le), type, off, size };
  };
  const strtab = section(shstrndx);
  const cstr = (o: number, limit: number): string => {
    let e = o;
    while (e < limit && elf[e] !== 0) e++;
    return new TextDecoder().decode(elf.subarray(o, e));
  };
  let text: Uint8Array | null = null;
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (strtab.off + s.name >= strtab.off + strtab.size) continue;
    if (cstr(strtab.off + s.name, strtab.off + strtab.size) === '.modinfo') {
      text = elf.subarray(s.off, s.off + s.size);
      break;
    }
  }
  if (text === null) throw new ImageError(`${what}: no .modinfo section (not a kernel module?)`);
  const fields = new Map<string, string[]>();
  for (const s of new TextDecoder().decode(text).split('\0')) {
    const eq = s.indexOf('=');
    if (eq <= 0) continue;
    const k = s.slice(0, eq);
    const list = fields.get(k);
    if (list) list.push(s.slice(eq + 1));
    else fields.set(k, [s.slice(eq + 1)]);
  }
  const name = fields.get('name')?.[0];
  const depends = (fields.get('depends') ?? [])
    .flatMap((v) => v.split(','))
    .map((d) => d.trim())
    .filter((d) => d !== '')
    .map(normalizeModuleName);
  // softdep syntax (modprobe.d(5)): "pre: a b post: c"
  const softPre: string[] = [];
  for (const v of fields.get('softdep') ?? []) {
    let mode = '';
    for (const tok of v.split(/\s+/)) {
      if (tok === 'pre:' || tok === 'post:') mode = tok;
      else if (tok !== '' && mode === 'pre:') softPre.push(tok);
    }
  }
  return { fields, name: name === undefined ? undefined : normalizeModuleName(name), depends, softPre };
}
