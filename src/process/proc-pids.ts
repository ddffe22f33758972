/**
 * A container's own /proc (PID namespace, sandbox.ts): the pids of its
 * processes and, for each, the files process listers read
 * (Documentation/filesystems/proc.rst "Process-Specific Subdirectories"):
 * stat, status, cmdline and comm, enough for busybox `ps`. Outside a PID
 * namespace these return null and /proc behaves as before (vfs.ts).
 */
import type { Kernel } from './kernel.js';

/** The per-process files the container's /proc provides. */
export const PROC_PID_FILES = ['cmdline', 'comm', 'stat', 'status'] as const;
/** One of PROC_PID_FILES. */
export type ProcPidFile = (typeof PROC_PID_FILES)[number];

/** The live processes of `k`'s container in pid order, or null outside a PID namespace. */
export function namespacePids(k: Kernel): number[] | null {
  if (k.sandbox?.limits.pidNamespace !== true) return null;
  const out: number[] = [];
  for (const g of k.groups.values()) if (g.waitStatus === null && g.threads.length > 0) out.push(g.tgid);
  return out.sort((a, b) => a - b);
}

/** The text of /proc/`pid`/`name` in `k`'s container, or null (no such process, or no namespace). */
export function procPidFile(k: Kernel, pid: number, name: ProcPidFile): string | null {
  if (k.sandbox?.limits.pidNamespace !== true) return null;
  const g = k.process(pid), t = g?.threads[0];
  if (g === undefined || t === undefined || g.waitStatus !== null) return null;
  // proc(5): state R (running) for the task on the CPU, S (sleeping) for the others.
  const state = t.wait === null ? 'R' : 'S';
  switch (name) {
    case 'stat': return t.procStat().replace(/\) 0 /, `) ${state} `);
    case 'comm': return t.comm + '\n';
    case 'cmdline': return t.cmdline();
    case 'status': {
      const id = t.id;
      return `Name:\t${t.comm}\nState:\t${state === 'R' ? 'R (running)' : 'S (sleeping)'}\nTgid:\t${g.tgid}\nPid:\t${g.tgid}\n` +
        `PPid:\t${k.ppid(t)}\nUid:\t${id.uid}\t${id.euid}\t${id.euid}\t${id.euid}\nGid:\t${id.gid}\t${id.egid}\t${id.egid}\t${id.egid}\n` +
        `Threads:\t${g.threads.length}\n`;
    }
  }
}
