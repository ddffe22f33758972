/**
 * `-device virtio-console-device[,chardev=stdio][,id=ID]`: a single-port
 * virtio console on the host console (the same stdio the UART uses). Boot
 * with `-append "console=hvc0"` to get the kernel console and the shell on
 * it.
 *
 * QEMU spells this as two devices, `-device virtio-serial-device -device
 * virtconsole,chardev=ID` (a multiport serial bus with a console port on
 * it); tsvm has no serial bus, so it offers the console port as one device
 * without VIRTIO_CONSOLE_F_MULTIPORT, and `chardev=` accepts only `stdio`
 * (there is no -chardev option).
 *
 * The host console reaches the factory as `BuildContext.console`
 * (a `ConsolePort`), which the VMM provides.
 */
import type { BuildContext } from './device-builder.js';
import { OptsError, type QemuOpts } from './qemu-opts.js';
import { VirtioConsole } from '../devices/virtio/console.js';

const DEVICE_PROPS = new Set(['id', 'chardev']);

/** Builds a virtio console connected to the host console. */
export function buildConsole(o: QemuOpts, ctx: BuildContext): VirtioConsole {
  const where = `-device ${o.text}`;
  for (const k of o.props.keys()) {
    if (!DEVICE_PROPS.has(k)) throw new OptsError(`${where}: unknown property '${k}' (known: ${[...DEVICE_PROPS].join(', ')})`);
  }
  const chardev = o.props.get('chardev') ?? 'stdio';
  if (chardev !== 'stdio') throw new OptsError(`${where}: chardev=${chardev}: only chardev=stdio (the host console) is supported`);
  const port = ctx.console;
  if (!port) throw new OptsError(`${where}: the host console is not available to devices in this build`);
  const dev = new VirtioConsole(port, { size: port.size?.() ?? null, wake: ctx.wake, enter: ctx.enter });
  ctx.cleanups.push(port.onInput((bytes) => { dev.pushInput(bytes); }));
  const offResize = port.onResize?.(() => { const s = port.size?.(); if (s) dev.resize(s.cols, s.rows); });
  if (offResize) ctx.cleanups.push(offResize);
  return dev;
}
