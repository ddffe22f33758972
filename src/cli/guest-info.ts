/**
 * `tsvm guest [--mirror URL]`: build (first time) or find the default guest
 * that `tsvm run` boots without -kernel, and print where it is:
 *
 *   kernel  /…/guests/default-<ver>-<hash>/vmlinux-<ver>
 *   initrd  /…/guests/default-<ver>-<hash>/initrd.cpio.gz
 *   version <ver>
 *   modules virtio_mmio virtio_blk …
 *
 * Build progress goes to stderr; the four lines above to stdout.
 */

import { ensureDefaultGuest } from '../images/default-guest.js';
import { ImageError } from '../images/errors.js';

/** Arguments of `tsvm guest`. */
export interface GuestArgs {
  /** Debian archive mirror URL overriding $TSVM_MIRROR and the host apt configuration. */
  mirror?: string;
}

/** Run `tsvm guest`; returns the process exit code (0 ok, 1 error). */
export async function guestCommand(args: GuestArgs): Promise<number> {
  try {
    const g = await ensureDefaultGuest(args.mirror !== undefined ? { mirror: args.mirror } : {});
    process.stdout.write(`kernel  ${g.kernel}\ninitrd  ${g.initrd}\nversion ${g.kernelVersion}\nmodules ${g.modules.join(' ')}\n`);
    return 0;
  } catch (e) {
    if (e instanceof ImageError) {
      process.stderr.write(`tsvm guest: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
