/**
 * A child process for the registry test's progress checks: pulls argv[2]
 * into a DirBlobSink at argv[3], with the progress bar unless argv[4] is
 * "no-progress", and prints the result as JSON on stdout.
 */
import { pullFromRegistry } from '../../src/images/oci/registry.js';
import { DirBlobSink } from './dir-blob-sink.js';

const [ref, dir, mode] = process.argv.slice(2);
if (!ref || !dir) throw new Error('usage: registry-pull-child REF SINKDIR [no-progress]');
const r = await pullFromRegistry(ref, new DirBlobSink(dir), { authFiles: [], progress: mode !== 'no-progress' });
process.stdout.write(`${JSON.stringify(r)}\n`);
