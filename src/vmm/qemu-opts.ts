/**
 * QEMU's option syntax for -device, -drive, -netdev and -qmp, and its
 * sizes (-m 512M):
 * `driver,key=value,key=value` (a leading bare word is the driver or
 * backend type; `,,` escapes a comma inside a value).
 */

/** One parsed option group. */
export interface QemuOpts {
  /** The leading bare word (driver, backend type or address), '' if absent. */
  type: string;
  props: Map<string, string>;
  /** Every value of a repeatable key (REPEATABLE_KEYS), in order; `props` holds the first. */
  repeats: Map<string, string[]>;
  /** The original text, for messages. */
  text: string;
}

/** Keys that may be given more than once: -netdev user's forwarding rules (QEMU's net/slirp.c takes each hostfwd= and guestfwd= in turn). */
const REPEATABLE_KEYS: ReadonlySet<string> = new Set(['hostfwd', 'guestfwd']);

/** A malformed option string. */
export class OptsError extends Error {}

/** Parses `type,key=value,...`; `implicitKey` names the first item when it has no '=' (QEMU's implied key). */
export function parseQemuOpts(text: string, implicitKey = 'type'): QemuOpts {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ',' && text[i + 1] === ',') { cur += ','; i++; continue; }
    if (c === ',') { parts.push(cur); cur = ''; continue; }
    cur += c;
  }
  parts.push(cur);
  const props = new Map<string, string>();
  const repeats = new Map<string, string[]>();
  let type = '';
  parts.forEach((p, i) => {
    const eq = p.indexOf('=');
    if (eq < 0) {
      if (i === 0 && implicitKey === 'type') { type = p; return; }
      if (i === 0) { props.set(implicitKey, p); return; }
      props.set(p, 'on'); // a bare flag
      return;
    }
    const k = p.slice(0, eq), v = p.slice(eq + 1);
    if (k === '') throw new OptsError(`'${text}': empty property name`);
    if (REPEATABLE_KEYS.has(k)) {
      const all = repeats.get(k) ?? [];
      all.push(v);
      repeats.set(k, all);
      if (all.length > 1) return;
    } else if (props.has(k)) throw new OptsError(`'${text}': property '${k}' given twice`);
    props.set(k, v);
  });
  return { type, props, repeats, text };
}

/** Reads an on/off property (QEMU accepts on/off/yes/no/true/false). */
export function boolProp(o: QemuOpts, key: string, dflt: boolean): boolean {
  const v = o.props.get(key);
  if (v === undefined) return dflt;
  if (['on', 'yes', 'true', '1'].includes(v)) return true;
  if (['off', 'no', 'false', '0'].includes(v)) return false;
  throw new OptsError(`'${o.text}': ${key}=${v} is not on/off`);
}

/** Parses sizes like `512M`, `2G`, `65536` (QEMU's -m spelling; a bare number means MiB there, bytes here only with a `B` suffix). */
export function parseSize(text: string, defaultUnit: 'M' | 'B' = 'M'): number | null {
  const m = /^(\d+(?:\.\d+)?)([KMGT]i?B?|B)?$/i.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] ?? defaultUnit).toUpperCase()[0]!;
  const mult = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : unit === 'T' ? 1024 ** 4 : 1;
  const v = Math.floor(n * mult);
  return Number.isFinite(v) && v > 0 ? v : null;
}
