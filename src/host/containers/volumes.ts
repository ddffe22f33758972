/**
 * A container's bind mounts at `create` (Docker's `-v HOSTDIR:DIR[:ro]`):
 * each spec checked (bind-spec.ts), and a missing host directory created
 * (mode 0755, parents too) as Docker does for `-v`, so that a container
 * can start. A regular file may be bound too (over a file of the image). The runtime gets them as `tsvm exec --volume` (bind-host-os.ts).
 */
import fs from 'node:fs';
import { parseBind } from '../bind-spec.js';
import { ContainerError } from './store.js';

/** Checks `specs` and makes missing host directories; throws a 400 ContainerError with a one-line reason. */
export function prepareBinds(specs: readonly string[]): void {
  for (const spec of specs) {
    const b = parseBind(spec);
    if (typeof b === 'string') throw new ContainerError(400, b);
    let st = fs.statSync(b.source, { throwIfNoEntry: false });
    if (st === undefined) {
      try { fs.mkdirSync(b.source, { recursive: true, mode: 0o755 }); } catch (e) {
        throw new ContainerError(400, `cannot create the host directory ${b.source} for volume '${spec}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      st = fs.statSync(b.source);
    }
    if (!st.isDirectory() && !st.isFile()) throw new ContainerError(400, `volume '${spec}': ${b.source} is neither a directory nor a regular file`);
  }
}

/** The `tsvm exec` arguments that bind `specs`. */
export function bindArgs(specs: readonly string[]): string[] {
  return specs.flatMap((v) => ['--volume', v]);
}
