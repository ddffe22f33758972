/**
 * qemu-system-riscv64's command line for the drop-in
 * `tsvm-system-riscv64`: checks the words QEMU's way (vl.c
 * `lookup_opt`: `-opt` or `--opt`, an argument where the option takes one,
 * a bare word is a disk image) and answers -h, -version and `-M help`
 * itself; the options then go unchanged to `tsvm run`'s parser
 * (vmm/qemu-config.ts). Errors read like QEMU's, e.g.
 * `tsvm-system-riscv64: -foo: invalid option`, exit status 1.
 */

/** The binary's name in messages. */
export const SYSTEM_NAME = 'tsvm-system-riscv64';

/** A usage error, one line, exit status 1 (QEMU's). */
export class QemuSystemUsageError extends Error {}

/** `tsvm run`'s options (vmm/qemu-config.ts), with whether each takes an argument. */
const TSVM_RUN_OPTIONS: ReadonlyMap<string, boolean> = new Map([
  ['M', true], ['machine', true], ['m', true], ['smp', true], ['kernel', true], ['initrd', true], ['append', true],
  ['bios', true], ['device', true], ['drive', true], ['netdev', true], ['qmp', true], ['display', true], ['serial', true],
  ['monitor', true], ['nographic', false], ['no-reboot', false],
  // tsvm's own: the MMU offered, the Debian mirror for the default guest, page sharing, the JIT.
  ['mmu', true], ['mirror', true], ['sharing', true], ['jit', true], ['jit-threshold', true],
]);

/** Options of qemu-system-riscv64 (`qemu-system-riscv64 -h`, QEMU 7.2) that tsvm does not implement. */
const QEMU_ONLY_OPTIONS: ReadonlySet<string> = new Set([
  's', 'gdb', 'cpu', 'accel', 'enable-kvm', 'name', 'uuid', 'rtc', 'object', 'chardev', 'global', 'boot', 'hda', 'hdb',
  'hdc', 'hdd', 'cdrom', 'fda', 'fdb', 'snapshot', 'daemonize', 'pidfile', 'no-shutdown', 'd', 'D', 'L', 'icount', 'vga',
  'usb', 'usbdevice', 'fsdev', 'virtfs', 'audiodev', 'nic', 'net', 'incoming', 'loadvm', 'trace', 'plugin', 'semihosting',
  'semihosting-config', 'k', 'full-screen', 'g', 'vnc', 'sandbox', 'msg', 'overcommit', 'action', 'watchdog-action',
  'echr', 'add-fd', 'readconfig', 'nodefaults', 'no-user-config', 'dtb', 'fw_cfg', 'sd', 'mtdblock', 'pflash',
  'blockdev', 'numa', 'mem-path', 'mem-prealloc', 'parallel', 'virtioconsole', 'mon', 'debugcon', 'singlestep',
  'one-insn-per-tb', 'qtest', 'iscsi', 'drive-mirror', 'device-help', 'compat', 'set', 'preconfig', 'runas', 'chroot',
  'no-hpet', 'no-acpi', 'smbios', 'acpitable', 'spice', 'portrait', 'rotate', 'alt-grab', 'ctrl-grab', 'no-quit',
  'no-frame', 'sdl', 'curses', 'localtime',
]);

/** What the command line asks for: text to print (and exit 0), or a VM to run with `tsvm run`'s options. */
export type QemuSystemRequest = { kind: 'text'; text: string } | { kind: 'run'; argv: string[]; startPaused: boolean };

/** The help text, in `qemu-system-riscv64 -h`'s layout, listing what tsvm takes. */
export function systemHelp(version: string): string {
  return [
    `tsvm emulator version ${version} (qemu-system-riscv64's command line)`,
    `usage: ${SYSTEM_NAME} [options]`,
    '',
    'Standard options:',
    '-h or -help     display this help and exit',
    '-version        display version information and exit',
    '-machine [type=]name  virt (default) or spike (\'-machine help\' for list)',
    '-M name         same as -machine',
    '-m [size=]megs  guest RAM, 16M to 3G (default 512M)',
    '-smp [cpus=]n   harts, 1 to 8',
    '-kernel bzImage use \'bzImage\' as kernel image (absent: the default guest, Debian\'s kernel and busybox)',
    '-initrd file    use \'file\' as initial ram disk',
    '-append cmdline use \'cmdline\' as kernel command line',
    '-bios file      firmware: default (built-in SBI), none, or a file',
    '-drive opts     a disk (file=,format=raw|qcow2,if=none|virtio,id=,readonly=,snapshot=)',
    '-device driver[,prop=value]  virtio-blk-device, virtio-net-device, virtio-console-device, virtio-rng-device, virtio-balloon-device',
    '-netdev user,id=str[,hostfwd=...]  user networking',
    '-qmp dev        QMP monitor (unix:PATH,server[,wait=off] or tcp:HOST:PORT,server)',
    '-S              freeze the harts at startup until QMP \'cont\' (needs -qmp)',
    '-nographic, -display none, -serial mon:stdio, -monitor none, -no-reboot: the console is always on stdio',
    '',
    'tsvm options: -mmu sv39|sv48|sv57, -mirror URL, -sharing on|off, --jit on|off, --jit-threshold N',
    'Other QEMU options are refused with a one-line error (docs/dropin.md).',
    '',
  ].join('\n');
}

/** The `-machine help` list, in QEMU's layout. */
const MACHINE_HELP = 'Supported machines are:\nspike                RISC-V Spike board\nvirt                 RISC-V VirtIO board (default)\n';

/** Checks `argv` (after the binary's name) QEMU's way; throws QemuSystemUsageError. */
export function parseQemuSystemArgs(argv: readonly string[], version: string): QemuSystemRequest {
  const pass: string[] = [];
  let startPaused = false, qmp = false;
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '-S' || w === '--S') { startPaused = true; continue; }
    pass.push(w);
    if (!w.startsWith('-') || w === '-') {
      throw new QemuSystemUsageError(`${w}: a disk image without -drive is not supported by tsvm (use -drive file=${w},format=raw,if=virtio)`);
    }
    if (/^--?(jit|jit-threshold)=/.test(w)) continue;
    const name = w.replace(/^--?/, '');
    if (name === 'h' || name === 'help') return { kind: 'text', text: systemHelp(version) };
    if (name === 'version') return { kind: 'text', text: `tsvm emulator version ${version} (${SYSTEM_NAME}, qemu-system-riscv64 7.2 command line)\n` };
    const takesArg = TSVM_RUN_OPTIONS.get(name);
    if (takesArg === undefined) {
      throw new QemuSystemUsageError(QEMU_ONLY_OPTIONS.has(name) ? `${w}: option not supported by tsvm` : `${w}: invalid option`);
    }
    if (!takesArg) continue;
    const v = argv[++i];
    if (v === undefined) throw new QemuSystemUsageError(`${w}: requires an argument`);
    pass.push(v);
    if (name === 'qmp') qmp = true;
    if ((name === 'M' || name === 'machine') && (v === 'help' || v === '?')) return { kind: 'text', text: MACHINE_HELP };
  }
  // -S waits for QMP's `cont`; tsvm has no human monitor on stdio to type `c` in.
  if (startPaused && !qmp) throw new QemuSystemUsageError('-S: needs -qmp (tsvm has no human monitor; send cont over QMP)');
  return { kind: 'run', argv: pass, startPaused };
}
