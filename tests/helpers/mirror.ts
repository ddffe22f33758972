/** Whether the tests can reach a Debian archive: a mirror from $TSVM_MIRROR or the host's apt configuration. */
import { resolveMirror } from '../../src/images/apt-sources.js';

/** True when a Debian mirror can be determined (tests that download packages skip otherwise). */
export function mirrorConfigured(): boolean {
  try {
    resolveMirror();
    return true;
  } catch {
    return false;
  }
}
