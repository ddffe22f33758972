/**
 * `tsvm fetch PKG... [--root DIR] [--mirror URL]`: download verified Debian
 * riscv64 packages from the archive. Without --root it prints the path of
 * each cached, verified .deb; with --root it installs the packages and their
 * dependencies into DIR and prints the installed package list.
 */

import * as path from 'node:path';
import { DebianArchive } from '../images/debian-archive.js';
import { ImageError } from '../images/errors.js';

/** Arguments of `tsvm fetch`. */
export interface FetchArgs {
  /** Package names. */
  packages: string[];
  /** Install into this root (with dependencies) instead of printing .deb paths. */
  root?: string;
  /** Archive mirror URL overriding $TSVM_MIRROR and the host apt configuration. */
  mirror?: string;
}

/** Run `tsvm fetch`; returns the process exit code (0 ok, 1 error, 2 usage). */
export async function fetchCommand(args: FetchArgs): Promise<number> {
  if (args.packages.length === 0) {
    process.stderr.write('tsvm fetch: no packages given\n');
    return 2;
  }
  try {
    const archive = new DebianArchive(args.mirror !== undefined ? { mirror: args.mirror } : {});
    if (args.root !== undefined) {
      const root = path.resolve(args.root);
      const pkgs = await archive.installRoot(args.packages, root);
      for (const p of pkgs) process.stdout.write(`${p.name} ${p.version} ${p.architecture}\n`);
      process.stderr.write(`tsvm fetch: installed ${pkgs.length} packages into ${root}\n`);
    } else {
      for (const name of args.packages) process.stdout.write(`${await archive.fetchDeb(name)}\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof ImageError) {
      process.stderr.write(`tsvm fetch: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
