/**
 * Where the tsvm host listens: `TSVM_HOST` when set, else
 * $XDG_RUNTIME_DIR/tsvm/host.sock, else a per-user directory under the
 * system's temporary directory (created with mode 0700, like the runtime
 * directory the XDG Base Directory spec describes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The environment variable naming the host's socket. */
export const HOST_ENV = 'TSVM_HOST';

/** The socket path a client or a new host uses (`explicit` from --socket wins). */
export function hostSocketPath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit !== undefined && explicit !== '') return path.resolve(explicit);
  const fromEnv = env[HOST_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return path.resolve(fromEnv);
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime !== undefined && runtime !== '' && path.isAbsolute(runtime)) return path.join(runtime, 'tsvm', 'host.sock');
  return path.join(os.tmpdir(), `tsvm-${os.userInfo().uid}`, 'host.sock');
}

/** Creates the socket's directory if needed (mode 0700: only the user reaches the socket). */
export function ensureSocketDir(socket: string): void {
  const dir = path.dirname(socket);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
}
