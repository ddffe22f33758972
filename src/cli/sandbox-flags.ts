/**
 * `tsvm exec`'s container options (--lower, --upper, --hostname, --pid-ns,
 * --memory-limit, --pids-limit, --cpus, --workdir, --user, --volume) turned into a ContainerSandbox.
 * `--memory` keeps its meaning (the RAM backing each address space); the
 * container's cap, docker's `--memory`, is `--memory-limit`.
 */
import { parseSize } from './size.js';
import { parseBind } from '../host/bind-spec.js';
import type { ContainerSandbox } from '../process/sandbox.js';

/** The flags as commander parses them. */
export interface SandboxFlags {
  lower: string[]; upper?: string; hostname?: string; pidNs: boolean;
  memoryLimit?: string; pidsLimit?: string; cpus?: string;
  workdir?: string; user?: string; volume?: string[];
}

/** The sandbox the flags ask for, undefined for none, or a one-line error. */
export function sandboxFromFlags(o: SandboxFlags): Partial<ContainerSandbox> | undefined | string {
  const any = o.lower.length > 0 || o.upper !== undefined || o.hostname !== undefined || o.pidNs ||
    o.memoryLimit !== undefined || o.pidsLimit !== undefined || o.cpus !== undefined || o.workdir !== undefined || o.user !== undefined ||
    (o.volume?.length ?? 0) > 0;
  if (!any) return undefined;
  const s: Partial<ContainerSandbox> = { rootLayers: o.lower, pidNamespace: o.pidNs };
  if (o.upper !== undefined) s.upper = o.upper;
  else if (o.lower.length > 0) return '--lower needs --upper (the writable layer)';
  if (o.hostname !== undefined) s.hostname = o.hostname;
  if (o.memoryLimit !== undefined) {
    const m = parseSize(o.memoryLimit, 'B');
    if (m === null) return `--memory-limit ${o.memoryLimit}: expected a size such as 64M`;
    s.memoryLimitBytes = m;
  }
  if (o.pidsLimit !== undefined) {
    if (!/^\d+$/.test(o.pidsLimit) || Number(o.pidsLimit) < 1) return `--pids-limit ${o.pidsLimit}: expected a whole number of at least 1`;
    s.pidsLimit = Number(o.pidsLimit);
  }
  if (o.cpus !== undefined) {
    const n = Number(o.cpus);
    if (!/^\d*\.?\d+$/.test(o.cpus) || !(n > 0)) return `--cpus ${o.cpus}: expected a number greater than 0`;
    s.cpus = n;
  }
  if (o.workdir !== undefined) s.workdir = o.workdir;
  if (o.user !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(o.user);
    if (m === null) return `--user ${o.user}: expected UID[:GID] (numbers)`;
    s.user = { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
  }
  if ((o.volume?.length ?? 0) > 0) {
    s.binds = [];
    for (const v of o.volume ?? []) {
      const b = parseBind(v);
      if (typeof b === 'string') return b;
      s.binds.push(b);
    }
  }
  return s;
}
