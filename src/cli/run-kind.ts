/**
 * Tells the two meanings of `tsvm run` apart before anything else loads:
 * main.ts relaunches Node with fewer V8 workers for a system VM only, and
 * program.ts sends a container run to the host's thin client.
 */

/** The run flags Docker has and QEMU does not: these (or an image as the first word) make `tsvm run` a container run. */
const DOCKER_LONG = new Set(['--name', '--rm', '--detach', '--interactive', '--tty', '--env', '--workdir', '--user', '--hostname',
  '--memory', '--cpus', '--pids-limit', '--runtime', '--publish', '--volume', '--entrypoint', '--detach-keys', '--network']);

/**
 * Whether `tsvm run ARGS` runs a container: its first argument is an image
 * name (no leading dash), a Docker long option, or a cluster of Docker's
 * short flags (-d -i -t -e -w -u -p -v, e.g. -it). Nothing, or a QEMU
 * option (-kernel, -M, -m, -append, ...), keeps the system VM.
 */
export function isContainerRun(args: readonly string[]): boolean {
  const a = args[0];
  if (a === undefined) return false;
  if (!a.startsWith('-')) return true;
  const name = a.split('=')[0]!;
  return DOCKER_LONG.has(name) || /^-[ditewupv]+$/.test(name);
}
