/**
 * The qemu-system-riscv64 front-end: turns QEMU's command-line options
 *   [-M virt|spike] [-m 512M] [-smp N] [-kernel K] [-initrd I] [-append "..."]
 *   [-bios PATH|none|default] [-nographic] [-drive ...] [-device ...]
 *   [-netdev ...] [-chardev ...] [-fsdev ...] [-qmp ...] [--jit on|off] [--jit-threshold N]
 * into a VmConfig. Every problem is a one-line UsageError (tsvm exits
 * with status 125 for it).
 */
import { parseQemuOpts, parseSize, OptsError, type QemuOpts } from './qemu-opts.js';
import { parseQmpAddress } from './qmp.js';
import { defaultJitConfig, withJitMode, withJitThreshold, type JitConfig } from '../jit/jit-config.js';
import type { VmConfig } from './vm-config.js';

/** A usage error: one line, exit status 125. */
export class UsageError extends Error {}

/** Smallest and largest -m, 16 MiB to 3 GiB: guest RAM is one wasm memory32 (at most 4 GiB), which also holds the harts' state and TLBs. */
const MIN_MEM = 16 * 1024 * 1024, MAX_MEM = 3 * 1024 ** 3;
/** Most harts -smp accepts (tsvm's limit; QEMU's virt board allows VIRT_MAX_HARTS): all harts share one host thread. */
const MAX_SMP = 8;

/**
 * Parses QEMU-style arguments into a VmConfig; throws UsageError. `jit` is
 * the starting JIT settings (default: a copy of the process default, i.e.
 * TSVM_JIT), which --jit and --jit-threshold change for this VM only.
 */
export function parseRunArgs(argv: string[], jit: JitConfig = defaultJitConfig()): VmConfig {
  const o: VmConfig = {
    machine: 'virt', memBytes: 512 * 1024 * 1024, smp: 1, bios: 'default', mmu: 'sv39',
    dev: { devices: [], drives: [], netdevs: [] }, jit: { ...jit },
  };
  const opts = (text: string, implicit = 'type'): QemuOpts => {
    try { return parseQemuOpts(text, implicit); } catch (e) {
      if (e instanceof OptsError) throw new UsageError(e.message);
      throw e;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`option ${a} needs an argument`);
      return v;
    };
    const jm = /^--?(jit|jit-threshold)(?:=(.*))?$/.exec(a);
    if (jm !== null) {
      const v = jm[2] ?? val();
      const r = jm[1] === 'jit' ? withJitMode(o.jit, v) : withJitThreshold(o.jit, v);
      if (typeof r === 'string') throw new UsageError(r);
      o.jit = r;
      continue;
    }
    switch (a.replace(/^--/, '-')) {
      case '-M': case '-machine': {
        const m = val().split(',')[0]!;
        if (m !== 'virt' && m !== 'spike') throw new UsageError(`unsupported machine type '${m}' (use -M virt or -M spike)`);
        o.machine = m;
        break;
      }
      case '-m': {
        const v = val(), n = parseSize(v.replace(/^size=/, ''), 'M');
        if (n === null || n < MIN_MEM || n > MAX_MEM) throw new UsageError(`invalid -m '${v}': expected a size from 16M to 3G`);
        o.memBytes = n;
        break;
      }
      case '-smp': {
        const v = val(), n = Number(v.replace(/^cpus=/, '').split(',')[0]);
        if (!Number.isInteger(n) || n < 1 || n > MAX_SMP) throw new UsageError(`invalid -smp '${v}': expected 1 to 8 harts`);
        o.smp = n;
        break;
      }
      case '-kernel': o.kernel = val(); break;
      case '-initrd': o.initrd = val(); break;
      case '-append': o.append = val(); break;
      case '-bios': o.bios = val(); break;
      case '-mmu': {
        const v = val();
        if (v !== 'sv39' && v !== 'sv48' && v !== 'sv57') throw new UsageError(`invalid -mmu '${v}': sv39, sv48 or sv57`);
        o.mmu = v;
        break;
      }
      case '-mirror': o.mirror = val(); break;
      case '-sharing': {
        const v = val();
        if (v !== 'on' && v !== 'off') throw new UsageError(`invalid -sharing '${v}': on or off`);
        o.sharing = v === 'on';
        break;
      }
      case '-device': o.dev.devices.push(opts(val())); break;
      case '-drive': o.dev.drives.push(opts(val(), 'file')); break;
      case '-netdev': o.dev.netdevs.push(opts(val())); break;
      case '-chardev': {
        const c = opts(val());
        const id = c.props.get('id');
        if (id === undefined || id === '') throw new UsageError(`-chardev ${c.text}: needs id=ID`);
        if (o.dev.chardevs?.some((x) => x.props.get('id') === id)) throw new UsageError(`-chardev ${c.text}: id '${id}' is already used`);
        (o.dev.chardevs ??= []).push(c);
        break;
      }
      case '-fsdev': (o.dev.fsdevs ??= []).push(opts(val())); break;
      case '-qmp': {
        try { o.qmp = parseQmpAddress(val()); } catch (e) {
          if (e instanceof OptsError) throw new UsageError(e.message);
          throw e;
        }
        break;
      }
      case '-nographic': break; // the console is always on stdio
      case '-no-reboot': break;
      case '-display': case '-serial': case '-monitor': val(); break; // accepted for QEMU compatibility; stdio only
      default: throw new UsageError(`unknown option '${a}'`);
    }
  }
  if (o.machine === 'spike' && o.kernel === undefined) throw new UsageError('-M spike needs -kernel PROGRAM.elf');
  return o;
}
