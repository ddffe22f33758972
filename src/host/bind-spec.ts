/**
 * The value of Docker's `-v HOSTDIR:DIR[:ro]` (`--volume`), as `tsvm run`,
 * the container engine and `tsvm exec --volume` take it. Only bind mounts
 * of host directories: a source that is not an absolute path is what
 * Docker calls a named volume, and a lone DIR an anonymous one; neither
 * exists here, and both are refused with a one-line reason.
 */
import type { BindMount } from '../process/bind-host-os.js';
import { checkBindTarget } from '../process/bind-host-os.js';

/** Parses `HOSTDIR:DIR[:MODE]` (MODE `ro` or `rw`); the bind, or a one-line error. */
export function parseBind(spec: string): BindMount | string {
  const parts = spec.split(':');
  const head = `invalid volume specification '${spec}'`;
  if (spec.includes('\0')) return `${head}: a NUL byte`;
  if (parts.length === 1) return `${head}: anonymous volumes are not supported; give HOSTDIR:DIR`;
  if (parts.length > 3) return `${head}: expected HOSTDIR:DIR[:ro]`;
  const [source, target, mode] = parts as [string, string, string | undefined];
  if (source === '') return `${head}: empty host directory`;
  if (!source.startsWith('/')) return `${head}: named volumes are not supported (${source}); give an absolute host directory`;
  if (target === '') return `${head}: empty mount point`;
  const bad = checkBindTarget(target);
  if (bad !== null) return `${head}: ${bad}`;
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') return `${head}: invalid mode: ${mode} (expected ro or rw)`;
  return { source, target, readOnly: mode === 'ro' };
}
