/**
 * The tsvm command line: parsing and dispatch only; each command lives in
 * its own module. main.ts calls runProgram in the process that runs the
 * command.
 */
import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { parsePublish, type Publish } from '../host/publish-spec.js';
import { parseAttachment, type NetworkAttachment } from '../host/network-relay.js';
import { parseSize } from './size.js';
import type { SandboxFlags } from './sandbox-flags.js';
// Each subcommand's work, `exec`'s too, is imported when it runs (only the light registrations of the
// container and network verbs load up front): `tsvm exec` starts sooner without the system VM, the
// image store and the archive client. A container `tsvm run IMAGE` never loads this module (main.ts).
import { applyJitEnv, setJitMode, setJitThreshold } from './jit-flags.js';
import { enableWasmBranchHints } from '../host/wasm-features.js';
import { registerImageCommands } from './image-command.js';
import { registerContainerCommands, isContainerExec, DOCKER_EXEC } from './container-command.js';
import { registerNetworkCommands } from './network-command.js';
import { TSVM_VERSION } from './version.js';

/** Builds the command line parser and runs `process.argv` (main.ts calls it; a warm spare loads this module while it waits). */
export async function runProgram(): Promise<void> {
  enableWasmBranchHints();

  const program = new Command();
  program
    .name('tsvm')
    .description('A RISC-V RV64GC virtual machine monitor in TypeScript')
    .version(TSVM_VERSION)
    .enablePositionalOptions()
    .exitOverride();

  program
    .command('exec')
    .description('run a riscv64 Linux program as a host process (the process VM)')
    .argument('<program>', 'riscv64 ELF executable (guest path)')
    .argument('[args...]', 'arguments for the program')
    .option('--root <dir>', 'confine the guest to DIR as its / (like chroot)')
    .option('--trace', 'print an strace-like line for each system call', false)
    .option('--memory <size>', 'guest RAM backing the process (e.g. 1G)', '1G')
    .option('--stats', 'print guest instruction count and MIPS to stderr at exit', false)
    .option('--jit <mode>', 'binary translation: on or off (default on)')
    .option('--jit-threshold <n>', 'runs of a block before it is translated (0: at first run)')
    .option('--lower <dir>', 'container: a read-only root layer (repeat, lowest first)', (v: string, a: string[]) => [...a, v], [] as string[])
    .option('--upper <dir>', 'container: the writable layer of the overlay root')
    .option('--hostname <name>', 'container: its own hostname')
    .option('--pid-ns', 'container: its own PID namespace (the program is pid 1)', false)
    .option('--memory-limit <size>', 'container: cap on all its processes\' RAM (OOM kill, exit 137)')
    .option('--pids-limit <n>', 'container: most processes and threads (fork fails with EAGAIN)')
    .option('--cpus <n>', 'container: host CPU share in cores (below 1 throttles)')
    .option('--workdir <dir>', 'container: the starting directory inside the root (created if missing)')
    .option('--user <uid[:gid]>', 'container: the ids the program runs as')
    .option('--volume <spec>', 'container: bind HOSTDIR:DIR[:ro] (an existing host directory at guest DIR, bypassing the overlay; repeat)', (v: string, a: string[]) => [...a, v], [] as string[])
    .option('--env <k=v>', "the guest's environment, one variable per flag (given: only these)", (v: string, a: string[]) => [...a, v], [] as string[])
    .option('-p, --publish <spec>', 'publish [HOSTADDR:]HOSTPORT:PORT: host connections reach the guest\'s loopback PORT (repeat; HOSTADDR defaults to 127.0.0.1)', (v: string, a: string[]) => [...a, v], [] as string[])
    .option('--network-dir <dir>', "container network: the network's directory of member sockets (with --network-addr; src/host/network-relay.ts)")
    .option('--network-addr <ip/prefix>', "container network: this VM's IPv4 address on it; TCP to the network's other addresses goes to their VMs")
    .option('-t, --tty', 'give the guest its own terminal (a pty: /dev/pts/0 on fds 0-2, job control); stdin feeds it, stdout shows it; a terminal stdin is put in raw mode', false)
    .option('--tty-size <COLSxROWS>', 'with --tty and a stdin that is not a terminal: the initial window size', '80x24')
    .option('--control <path>', 'listen on unix socket PATH (mode 0600) for the container engine: signal, exec, ps (docs/api.md)')
    .option('--status-fd <fd>', 'container host: write the exit status to host fd FD as a line, then end at once (SIGKILL, skipping Node\'s teardown)')
    .option('--tty-control <fd>', 'with --tty: read control messages from host fd FD, one JSON object a line: {"resize":[COLS,ROWS]} (window size) or {"hangup":true} (close the terminal)')
    .passThroughOptions()
    .action(async (prog: string, args: string[], o: {
      root?: string; trace: boolean; memory: string; stats: boolean; jit?: string; jitThreshold?: string; env: string[]; publish: string[];
      networkDir?: string; networkAddr?: string; tty: boolean; ttySize: string; ttyControl?: string; control?: string; statusFd?: string;
    } & SandboxFlags) => {
      const err = (o.jit !== undefined ? setJitMode(o.jit) : null) ??
        (o.jitThreshold !== undefined ? setJitThreshold(o.jitThreshold) : null);
      if (err !== null) {
        process.stderr.write(`tsvm: ${err}\n`);
        process.exitCode = 125;
        return;
      }
      const mem = parseSize(o.memory);
      if (mem === null || mem < 16 * 1024 * 1024 || mem > 3 * 1024 ** 3) {
        process.stderr.write(`tsvm: --memory ${o.memory}: expected a size between 16M and 3G\n`);
        process.exitCode = 125;
        return;
      }
      // The guest has ended: leave at once. Ending by draining the event loop
      // makes Node wait (NodePlatform::DrainTasks) for every queued background
      // task, including V8's TurboFan tier-up of the JIT's wasm units, which run
      // at nice 19 here (main.ts): on a loaded host the process then hung for
      // minutes after the guest's last write (issue 13). process.exit() only
      // lets the tasks that are running finish.
      const [{ execCommand }, { sandboxFromFlags }, { ttyFromFlags }] = await Promise.all([
        import('./exec-command.js'), import('./sandbox-flags.js'), import('./tty-flags.js')]);
      const sandbox = sandboxFromFlags(o);
      if (typeof sandbox === 'string') {
        process.stderr.write(`tsvm: ${sandbox}\n`);
        process.exitCode = 125;
        return;
      }
      if (sandbox !== undefined && o.root !== undefined) {
        process.stderr.write('tsvm: --root cannot be combined with --lower/--upper\n');
        process.exitCode = 125;
        return;
      }
      const tty = ttyFromFlags(o);
      if (typeof tty === 'string') {
        process.stderr.write(`tsvm: ${tty}\n`);
        process.exitCode = 125;
        return;
      }
      const badEnv = o.env.find((kv) => !/^[^=]+=/.test(kv));
      if (badEnv !== undefined) {
        process.stderr.write(`tsvm: --env ${badEnv}: expected NAME=VALUE\n`);
        process.exitCode = 125;
        return;
      }
      const publish: Publish[] = [];
      for (const spec of o.publish) {
        const p = parsePublish(spec);
        if (typeof p === 'string') {
          process.stderr.write(`tsvm: ${p}\n`);
          process.exitCode = 125;
          return;
        }
        publish.push(p);
      }
      let network: NetworkAttachment | undefined;
      if (o.networkDir !== undefined || o.networkAddr !== undefined) {
        const n = o.networkDir !== undefined && o.networkAddr !== undefined ? parseAttachment(o.networkDir, o.networkAddr) : '--network-dir and --network-addr go together';
        if (typeof n === 'string') {
          process.stderr.write(`tsvm: ${n}\n`);
          process.exitCode = 125;
          return;
        }
        network = n;
      }
      // The publisher (a worker thread with node:net) is loaded only when a port is published or the VM is on a network.
      const startPublisher = publish.length === 0 && network === undefined ? undefined
        : ((m) => () => m.PortPublisher.start(publish, network))(await import('../host/port-publisher.js'));
      const statusFd = o.statusFd === undefined ? null : Number(o.statusFd);
      if (statusFd !== null && !(Number.isInteger(statusFd) && statusFd > 2)) {
        process.stderr.write(`tsvm: --status-fd ${o.statusFd}: expected a file descriptor number above 2\n`);
        process.exitCode = 125;
        return;
      }
      const status = execCommand(prog, args, { root: o.root, trace: o.trace, memoryBytes: mem, stats: o.stats, sandbox, startPublisher, tty, ...(o.env.length > 0 ? { env: o.env } : {}), ...(o.control !== undefined ? { control: o.control } : {}) });
      if (statusFd !== null) endWithStatus(statusFd, status);
      process.exit(status);
    });

  program
    .command('fetch')
    .description("download verified Debian riscv64 packages (trixie) through the host's apt mirror")
    .argument('<packages...>', 'package names')
    .option('--root <dir>', 'install the packages and their dependencies into DIR')
    .option('--mirror <url>', 'Debian archive mirror URL (default: from the host apt configuration)')
    .action(async (packages: string[], o: { root?: string; mirror?: string }) => {
      const { fetchCommand } = await import('./fetch-command.js');
      process.exitCode = await fetchCommand({ packages, root: o.root, mirror: o.mirror });
    });

  program
    .command('run')
    .description('run a container (IMAGE first, or docker flags) or boot a system VM (qemu-system-riscv64 options: -M -m -smp -kernel -initrd -append -bios -nographic)')
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument('[qemu-options...]')
    .action(async (args: string[]) => {
      // main.ts has sent a container run (run-kind.ts) to containerRun before loading this module.
      const { runCommand } = await import('./run-command.js');
      process.exitCode = await runCommand(args);
    });

  program
    .command('guest')
    .description("build (on first use) and print the default guest: Debian's riscv64 kernel and a busybox initramfs")
    .option('--mirror <url>', 'Debian archive mirror URL')
    .action(async (o: { mirror?: string }) => {
      const { guestCommand } = await import('./guest-info.js');
      process.exitCode = await guestCommand(o);
    });

  program
    .command('demo')
    .description("fetch Debian's riscv64 busybox-static and run some applets on tsvm")
    .option('--mirror <url>', 'Debian archive mirror URL')
    .action(async (o: { mirror?: string }) => {
      const { demoCommand } = await import('./demo-command.js');
      process.exitCode = await demoCommand(o);
    });

  const host = program.command('host').description('the many-VM host: a daemon that runs VMs on worker threads (docs/api.md)');
  host
    .command('start')
    .description('start the host (in the foreground, or as a daemon with -d)')
    .option('--pool <size>', 'machine-memory pool size (default 2G, at most 4G)')
    .option('--swap <file>', 'host swap file')
    .option('--socket <path>', 'API socket (default: $TSVM_HOST, else $XDG_RUNTIME_DIR/tsvm/host.sock)')
    .option('-d, --detach', 'run in the background; print the socket path once it answers', false)
    .option('--idle-tax <percent>', 'idle memory tax, 0 to 99 (default 75)')
    .option('--sample-period <seconds>', 'activity sampling period (default 10)')
    .option('--default-runtime <runtime>', "containers' runtime when run/create give no --runtime: process or vm (default process)")
    .option('--page-sharing <on|off>', 'content-based page sharing across VMs, host-wide: opt-in (default off; with on, each VM may still opt out with -sharing off)')
    .action(async (o: { pool?: string; swap?: string; socket?: string; detach: boolean; idleTax?: string; samplePeriod?: string; defaultRuntime?: string; pageSharing?: string }) => {
      const { hostStart } = await import('./host-command.js');
      process.exitCode = await hostStart(o);
    });
  host
    .command('stop')
    .description('stop every VM and the host')
    .option('--socket <path>', 'API socket')
    .action(async (o: { socket?: string }) => {
      const { hostStop } = await import('./host-command.js');
      process.exitCode = await hostStop(o);
    });
  host
    .command('stats')
    .description("the host's memory: pool, sharing, swap")
    .option('--socket <path>', 'API socket')
    .option('--json', 'the JSON contract (docs/api.md)', false)
    .action(async (o: { socket?: string; json: boolean }) => {
      const { hostStats } = await import('./host-command.js');
      process.exitCode = await hostStats(o);
    });

  const vmCmd = program.command('vm').description("the host's VMs (like docker's container commands)");
  vmCmd
    .command('run')
    .description("start a VM on the host: --name N [-d] and tsvm run's options; attached to its console unless -d")
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument('[options...]')
    .action(async (args: string[]) => {
      const { vmRun } = await import('./vm-command.js');
      process.exitCode = await vmRun(args);
    });
  vmCmd.command('ls').description('list the VMs').option('--json', 'JSON output', false)
    .action(async (o: { json: boolean }) => {
      const { vmLs } = await import('./vm-command.js');
      process.exitCode = await vmLs(o);
    });
  for (const [action, what] of [['stop', 'power the guest off (hard after 10 s)'], ['kill', 'end the VM at once'],
    ['pause', 'pause the harts'], ['resume', 'resume the harts']] as const) {
    vmCmd.command(action).description(what).argument('<name>')
      .action(async (name: string) => {
        const { vmAction } = await import('./vm-command.js');
        process.exitCode = await vmAction(action, name);
      });
  }
  vmCmd.command('rm').description('remove a VM that has ended').argument('<name>').option('-f, --force', 'kill it first if it runs', false)
    .action(async (name: string, o: { force: boolean }) => {
      const { vmRm } = await import('./vm-command.js');
      process.exitCode = await vmRm(name, o.force);
    });
  vmCmd.command('console').description('attach to the serial console (Ctrl-P Ctrl-Q detaches)').argument('<name>')
    .action(async (name: string) => {
      const { vmConsole } = await import('./vm-command.js');
      process.exitCode = await vmConsole(name);
    });
  vmCmd.command('logs').description('the console output so far (the last 1 MiB)').argument('<name>')
    .action(async (name: string) => {
      const { vmLogs } = await import('./vm-command.js');
      process.exitCode = await vmLogs(name);
    });
  vmCmd.command('stats').description("a VM's state, memory and start-up time").argument('<name>').option('--json', 'the JSON contract', false)
    .action(async (name: string, o: { json: boolean }) => {
      const { vmStats } = await import('./vm-command.js');
      process.exitCode = await vmStats(name, o);
    });
  vmCmd.command('balloon').description("set the balloon target (the guest's logical RAM size; auto: the host's policy sets it)").argument('<name>').argument('<size>')
    .action(async (name: string, size: string) => {
      const { vmBalloon } = await import('./vm-command.js');
      process.exitCode = await vmBalloon(name, size);
    });
  vmCmd.command('qmp').description("send one QMP command object to the VM's monitor").argument('<name>').argument('<json>')
    .action(async (name: string, json: string) => {
      const { vmQmp } = await import('./vm-command.js');
      process.exitCode = await vmQmp(name, json);
    });

  registerImageCommands(program);
  registerContainerCommands(program);
  registerNetworkCommands(program);
  // Docker's `exec CONTAINER CMD` and the process VM's `exec PROGRAM` share the verb (see isContainerExec).
  if (process.argv[2] === 'exec' && await isContainerExec(process.argv.slice(3))) process.argv[2] = DOCKER_EXEC;

  const envError = applyJitEnv(process.env);
  if (envError !== null) {
    process.stderr.write(`tsvm: ${envError}\n`);
    process.exit(125);
  }

  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 125;
    } else {
      throw e;
    }
  }
}

/**
 * `--status-fd`: reports `status` on host fd `fd` and ends the process at
 * once. Node's own exit (its worker threads, V8's background compiles and
 * heap) takes 20-100 ms after the guest has exited, on every container's
 * way out; the container host takes the status from the line, so the
 * process kills itself instead. Everything the guest wrote has already
 * gone out (the VM writes its fds synchronously). If the line cannot be
 * written, the process exits normally with the status.
 */
function endWithStatus(fd: number, status: number): void {
  try { fs.writeSync(fd, `${status}\n`); } catch { return; }
  process.kill(process.pid, 'SIGKILL');
}
