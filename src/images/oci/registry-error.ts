/** The registry client's error: one line for the user, and the exit code the CLI gives it. */
import { ImageError } from '../errors.js';

/** Docker's exit status for an error of the container tool itself (docker-run(1), "Exit Status"). */
export const REGISTRY_EXIT_CODE = 125;

/** A one-line registry error (unreachable, unknown manifest, auth, digest mismatch, bad JSON, unsupported type). */
export class RegistryError extends ImageError {
  /** The process exit code the CLI uses for it. */
  readonly exitCode = REGISTRY_EXIT_CODE;
  /** Create an error; `message` should be a single line. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryError';
  }
}
