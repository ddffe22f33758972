/**
 * qemu-riscv64's command line and QEMU_* environment variables (QEMU 7.2,
 * linux-user/main.c `arg_table` and `parse_args`), for the drop-in
 * `tsvm-riscv64`. Parsing only: what each option becomes in tsvm is
 * listed in docs/dropin.md. Every problem is a QemuUserUsageError, one
 * line, exit status 1 (QEMU's EXIT_FAILURE).
 */

/** A usage error: one line on stderr, exit status 1. */
export class QemuUserUsageError extends Error {}

/** The binary's name in messages, help and version. */
export const USER_NAME = 'tsvm-riscv64';

/** Debian's qemu-user interpreter prefix when neither -L nor QEMU_LD_PREFIX is given (CONFIG_QEMU_INTERP_PREFIX, `qemu-riscv64 -h`). */
export const DEFAULT_LD_PREFIX = '/etc/qemu-binfmt/riscv64';

/** The guest stack size, fixed in tsvm (process/loader.ts STACK_SIZE), which is also QEMU_STACK_SIZE's default (8 MiB). */
export const FIXED_STACK_SIZE = 8 * 1024 * 1024;

/** The only host page size tsvm's process VM has (-p): 4 KiB pages (privileged spec §12.3, Sv39). */
const PAGE_SIZE = 4096;

/** What the command line asks for. */
export type QemuUserRequest =
  | { kind: 'text'; text: string }
  | { kind: 'run'; run: QemuUserRun };

/** A program run with qemu-riscv64's options applied. */
export interface QemuUserRun {
  /** The program, a host path as given. */
  program: string;
  /** Its arguments. */
  args: string[];
  /** The ELF interpreter prefix. */
  ldPrefix: string;
  /** -0: the guest's argv[0]. */
  argv0?: string;
  /** The guest environment, in QEMU's envlist order. */
  envp: string[];
  /** -r: uname release. */
  unameRelease?: string;
  /** -seed. */
  seed?: number;
  /** -strace or -d strace. */
  strace: boolean;
  /** -D: the log file. */
  logFile?: string;
  /** -singlestep / -one-insn-per-tb: one instruction at a time (tsvm's interpreter, no JIT). */
  oneInsnPerTb: boolean;
}

/** One entry of QEMU's arg_table: option name, environment variable, whether it takes an argument. */
interface ArgInfo { opt: string; env: string | null; hasArg: boolean; argName: string; help: string }

/** QEMU 7.2's arg_table, in its order (linux-user/main.c), plus 8.1's name -one-insn-per-tb. */
const ARG_TABLE: readonly ArgInfo[] = [
  { opt: 'h', env: null, hasArg: false, argName: '', help: 'print this help' },
  { opt: 'help', env: null, hasArg: false, argName: '', help: '' },
  { opt: 'g', env: 'QEMU_GDB', hasArg: true, argName: 'port', help: "wait gdb connection to 'port' (not supported: tsvm has no gdbstub)" },
  { opt: 'L', env: 'QEMU_LD_PREFIX', hasArg: true, argName: 'path', help: "set the elf interpreter prefix to 'path'" },
  { opt: 's', env: 'QEMU_STACK_SIZE', hasArg: true, argName: 'size', help: `set the stack size to 'size' bytes (only ${FIXED_STACK_SIZE})` },
  { opt: 'cpu', env: 'QEMU_CPU', hasArg: true, argName: 'model', help: 'select CPU (-cpu help for list)' },
  { opt: 'E', env: 'QEMU_SET_ENV', hasArg: true, argName: 'var=value', help: 'sets targets environment variable (see below)' },
  { opt: 'U', env: 'QEMU_UNSET_ENV', hasArg: true, argName: 'var', help: 'unsets targets environment variable (see below)' },
  { opt: '0', env: 'QEMU_ARGV0', hasArg: true, argName: 'argv0', help: "forces target process argv[0] to be 'argv0'" },
  { opt: 'r', env: 'QEMU_UNAME', hasArg: true, argName: 'uname', help: "set qemu uname release string to 'uname'" },
  { opt: 'B', env: 'QEMU_GUEST_BASE', hasArg: true, argName: 'address', help: "set guest_base address to 'address' (no effect on the guest)" },
  { opt: 'R', env: 'QEMU_RESERVED_VA', hasArg: true, argName: 'size', help: "reserve 'size' bytes for guest virtual address space (not supported)" },
  { opt: 'd', env: 'QEMU_LOG', hasArg: true, argName: 'item[,...]', help: "enable logging of specified items (only strace; '-d help')" },
  { opt: 'dfilter', env: 'QEMU_DFILTER', hasArg: true, argName: 'range[,...]', help: 'filter logging based on address range (not supported)' },
  { opt: 'D', env: 'QEMU_LOG_FILENAME', hasArg: true, argName: 'logfile', help: "write logs to 'logfile' (default stderr)" },
  { opt: 'p', env: 'QEMU_PAGESIZE', hasArg: true, argName: 'pagesize', help: `set the host page size to 'pagesize' (only ${PAGE_SIZE})` },
  { opt: 'singlestep', env: 'QEMU_SINGLESTEP', hasArg: false, argName: '', help: 'run in singlestep mode (tsvm: no JIT)' },
  { opt: 'one-insn-per-tb', env: 'QEMU_ONE_INSN_PER_TB', hasArg: false, argName: '', help: 'run with one guest instruction per translation block (tsvm: no JIT)' },
  { opt: 'strace', env: 'QEMU_STRACE', hasArg: false, argName: '', help: 'log system calls' },
  { opt: 'seed', env: 'QEMU_RAND_SEED', hasArg: true, argName: '', help: 'Seed for pseudo-random number generator' },
  { opt: 'trace', env: 'QEMU_TRACE', hasArg: true, argName: '', help: '[[enable=]<pattern>][,events=<file>][,file=<file>] (not supported)' },
  { opt: 'plugin', env: 'QEMU_PLUGIN', hasArg: true, argName: '', help: '[file=]<file>[,<argname>=<argvalue>] (not supported)' },
  { opt: 'version', env: 'QEMU_VERSION', hasArg: false, argName: '', help: 'display version information and exit' },
];

/** QEMU's -d items (util/log.c qemu_log_items); tsvm has only strace. */
const QEMU_LOG_ITEMS = new Set(['out_asm', 'in_asm', 'op', 'op_opt', 'op_ind', 'int', 'exec', 'cpu', 'fpu', 'mmu', 'pcall',
  'cpu_reset', 'unimp', 'guest_errors', 'page', 'nochain', 'plugin', 'tid', 'strace']);

/** -cpu properties naming extensions tsvm's hart implements (RV64GC, Zba, Zbb, Zbs; unprivileged spec chapters of each). */
const CPU_EXTENSIONS = new Set(['i', 'm', 'a', 'f', 'd', 'c', 'g', 'zicsr', 'zifencei', 'zba', 'zbb', 'zbs', 'mmu', 'pmp']);

/** The help text, in `qemu-riscv64 -h`'s layout. */
export function userHelp(version: string): string {
  const rows = ARG_TABLE.map((a) => `${`-${a.opt} ${a.argName}`.trimEnd().padEnd(21)}${(a.env ?? '').padEnd(18)}${a.help}`.trimEnd());
  return [
    `usage: ${USER_NAME} [options] program [arguments...]`,
    `Linux CPU emulator (tsvm ${version}, riscv64 emulation; qemu-riscv64's command line)`,
    '',
    'Options and associated environment variables:',
    '',
    'Argument             Env-variable      Description',
    ...rows,
    '',
    'Defaults:',
    `QEMU_LD_PREFIX  = ${DEFAULT_LD_PREFIX}`,
    `QEMU_STACK_SIZE = ${FIXED_STACK_SIZE} byte`,
    '',
    'You can use -E and -U options or the QEMU_SET_ENV and',
    'QEMU_UNSET_ENV environment variables to set and unset',
    'environment variables for the target process.',
    'It is possible to provide several variables by separating them',
    'by commas in getsubopt(3) style. Additionally it is possible to',
    'provide the -E and -U options multiple times.',
    'Options marked "not supported" are refused with a one-line error (docs/dropin.md).',
    '',
  ].join('\n');
}

/** QEMU's envlist (util/envlist.c): setting puts the entry at the head, replacing an entry of the same name. */
class EnvList {
  /** Head first. */
  readonly entries: string[] = [];

  /** envlist_setenv: `NAME=VALUE` to the head. */
  set(entry: string, what: string): void {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new QemuUserUsageError(`${what} '${entry}': expected var=value`);
    this.remove(entry.slice(0, eq + 1));
    this.entries.unshift(entry);
  }

  /** envlist_unsetenv: drops `name`. */
  unset(name: string, what: string): void {
    if (name === '' || name.includes('=')) throw new QemuUserUsageError(`${what} '${name}': expected a variable name`);
    this.remove(name + '=');
  }

  private remove(prefix: string): void {
    const i = this.entries.findIndex((e) => e.startsWith(prefix));
    if (i >= 0) this.entries.splice(i, 1);
  }
}

/** strtoul(arg, &end, 0) as QEMU reads numbers: decimal, 0x hex or 0 octal; null if nothing was read. */
function strtoul(arg: string): { value: bigint; rest: string } | null {
  const m = /^\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(.*)$/s.exec(arg);
  if (m === null) return null;
  const t = m[1]!;
  const value = /^0[0-7]+$/.test(t) ? BigInt('0o' + t.slice(1)) : BigInt(t);
  return { value, rest: m[2]! };
}

/** The -s size as QEMU's handle_arg_stack_size reads it (a number, then M or k/K). */
function stackSize(arg: string): bigint | null {
  const n = strtoul(arg);
  if (n === null || n.value === 0n) return null;
  const suffix = n.rest.charAt(0);
  return suffix === 'M' ? n.value * 1048576n : suffix === 'k' || suffix === 'K' ? n.value * 1024n : n.value;
}

/** Options tsvm does not support: the one-line reason. */
function notSupported(opt: string, why: string): QemuUserUsageError {
  return new QemuUserUsageError(`-${opt}: not supported by tsvm: ${why}`);
}

/**
 * Parses `argv` (after the binary's name) with `env`, QEMU's way: the
 * QEMU_* variables first, in arg_table order, then the options up to the
 * first word that does not start with '-' (or after `--`), which is the
 * program. `env` also gives the guest's environment (without tsvm's own
 * TSVM_JIT). Throws QemuUserUsageError.
 */
export function parseQemuUserArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, version: string): QemuUserRequest {
  const envlist = new EnvList();
  for (const [k, v] of Object.entries(env)) if (k !== 'TSVM_JIT' && v !== undefined) envlist.set(`${k}=${v}`, 'environment entry');
  const r: Omit<QemuUserRun, 'program' | 'args' | 'envp'> = { ldPrefix: DEFAULT_LD_PREFIX, strace: false, oneInsnPerTb: false };
  let text: string | null = null;
  const handle = (a: ArgInfo, arg: string): void => {
    switch (a.opt) {
      case 'h': case 'help': text ??= userHelp(version); break;
      case 'version': text ??= `${USER_NAME} version ${version} (tsvm; qemu-riscv64 7.2 command line)\n`; break;
      case 'g': throw notSupported(a.opt, 'tsvm has no gdbstub');
      case 'L': r.ldPrefix = arg; break;
      case 's': {
        const n = stackSize(arg);
        if (n === null) throw new QemuUserUsageError(`-s '${arg}': expected a stack size`);
        if (n !== BigInt(FIXED_STACK_SIZE)) throw notSupported(a.opt, `the guest stack is fixed at ${FIXED_STACK_SIZE} bytes`);
        break;
      }
      case 'cpu': {
        if (arg === 'help' || arg === '?') { text ??= 'Available CPUs:\n  rv64 (RV64GC with Zba, Zbb, Zbs)\n'; break; }
        const [model, ...props] = arg.split(',');
        if (model !== 'rv64' && model !== 'any') throw new QemuUserUsageError(`unable to find CPU model '${model}'`);
        for (const p of props) {
          const [name = '', value = 'on'] = p.split('=');
          const on = value === 'on' || value === 'true';
          if (!on && value !== 'off' && value !== 'false') throw new QemuUserUsageError(`-cpu: property '${name}': expected on or off`);
          if (on && !CPU_EXTENSIONS.has(name.toLowerCase())) throw notSupported(a.opt, `the hart implements RV64GC, Zba, Zbb and Zbs only, not '${name}'`);
          if (!on && CPU_EXTENSIONS.has(name.toLowerCase())) throw notSupported(a.opt, `'${name}' cannot be turned off`);
        }
        break;
      }
      case 'E': for (const e of arg.split(',')) envlist.set(e, '-E'); break;
      case 'U': for (const e of arg.split(',')) envlist.unset(e, '-U'); break;
      case '0': r.argv0 = arg; break;
      case 'r': r.unameRelease = arg; break;
      case 'B': if (strtoul(arg) === null) throw new QemuUserUsageError(`-B '${arg}': expected an address`); break;
      case 'R': throw notSupported(a.opt, "the guest's address space is tsvm's own (src/process/address-space.ts)");
      case 'd': {
        for (const item of arg.split(',')) {
          if (item === 'help') { text ??= 'Log items (comma separated):\nstrace          log every user-mode syscall, its input, and its result\n'; continue; }
          if (item === 'strace') { r.strace = true; continue; }
          if (QEMU_LOG_ITEMS.has(item) || item.startsWith('trace:')) throw notSupported(a.opt, `log item '${item}' (only strace)`);
          throw new QemuUserUsageError(`-d '${item}': unknown log item (-d help lists them)`);
        }
        break;
      }
      case 'dfilter': throw notSupported(a.opt, 'tsvm logs no addresses to filter');
      case 'D': r.logFile = arg; break;
      case 'p': {
        const n = Number(arg);
        if (!Number.isInteger(n) || n <= 0 || (n & (n - 1)) !== 0) throw new QemuUserUsageError('page size must be a power of two');
        if (n !== PAGE_SIZE) throw notSupported(a.opt, `the page size is ${PAGE_SIZE}`);
        break;
      }
      case 'singlestep': case 'one-insn-per-tb': r.oneInsnPerTb = true; break;
      case 'strace': r.strace = true; break;
      case 'seed': {
        const n = strtoul(arg);
        if (n === null || n.rest !== '' || n.value >= 1n << 64n) throw new QemuUserUsageError('Invalid seed number');
        r.seed = Number((n.value ^ (n.value >> 32n)) & 0xffffffffn);
        break;
      }
      case 'trace': throw notSupported(a.opt, 'tsvm has no trace events');
      case 'plugin': throw notSupported(a.opt, 'tsvm has no TCG plugins');
    }
  };
  for (const a of ARG_TABLE) {
    const v = a.env !== null ? env[a.env] : undefined;
    if (v !== undefined) handle(a, v);
  }
  let i = 0;
  while (i < argv.length && text === null) {
    let o = argv[i]!;
    if (!o.startsWith('-')) break;
    i++;
    o = o.slice(1);
    if (o === '-') break;
    if (o.startsWith('-')) o = o.slice(1);
    const a = ARG_TABLE.find((x) => x.opt === o);
    if (a === undefined) throw new QemuUserUsageError(`unknown option '${o}'`);
    let arg = '';
    if (a.hasArg) {
      const v = argv[i++];
      if (v === undefined) throw new QemuUserUsageError(`missing argument for option '${o}'`);
      arg = v;
    }
    handle(a, arg);
  }
  if (text !== null) return { kind: 'text', text };
  const program = argv[i];
  if (program === undefined) throw new QemuUserUsageError('no user program specified');
  return { kind: 'run', run: { ...r, program, args: argv.slice(i + 1), envp: envlist.entries.slice() } };
}
