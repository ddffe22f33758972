/**
 * `-device virtio-console-device[,chardev=stdio|ID][,id=ID]`: a single-port
 * virtio console on the host console (the same stdio the UART uses) or on
 * a `-chardev`. Boot with `-append "console=hvc0"` to get the kernel
 * console and the shell on it; on a socket chardev the port is a private
 * byte channel (the container agent's, docs/vm-agent.md).
 *
 * QEMU spells this as two devices, `-device virtio-serial-device -device
 * virtconsole,chardev=ID` (a multiport serial bus with a console port on
 * it); tsvm has no serial bus, so it offers the console port as one device
 * without VIRTIO_CONSOLE_F_MULTIPORT.
 *
 * `chardev=ID` names a `-chardev stdio,id=ID` (the host console) or a
 * `-chardev socket,id=ID,path=PATH,server=on,wait=off` (a unix socket the
 * host services listen on, `DeviceServices.openChardev`). `chardev=stdio`
 * with no -chardev of that id is the host console, as before.
 *
 * The host console reaches the factory as `BuildContext.console`
 * (a `ConsolePort`), which the VMM provides.
 */
import type { BuildContext } from './device-builder.js';
import { OptsError, type QemuOpts } from './qemu-opts.js';
import { VirtioConsole, type ConsolePort } from '../devices/virtio/console.js';

const DEVICE_PROPS = new Set(['id', 'chardev']);

/** The host console port, or a one-line OptsError. */
function hostConsole(ctx: BuildContext, where: string): ConsolePort {
  const port = ctx.console;
  if (!port) throw new OptsError(`${where}: the host console is not available to devices in this build`);
  return port;
}

/** The port `chardev=ID` names (opening a socket chardev); throws OptsError. */
function chardevPort(id: string, ctx: BuildContext, where: string): ConsolePort {
  const cd = (ctx.opts.chardevs ?? []).find((c) => c.props.get('id') === id);
  if (!cd) {
    if (id === 'stdio') return hostConsole(ctx, where);
    throw new OptsError(`${where}: no -chardev with id '${id}'`);
  }
  const claimed = ctx.claimedChardevs ??= new Set();
  if (claimed.has(id)) throw new OptsError(`${where}: -chardev '${id}' is already used by another device`);
  claimed.add(id);
  if (cd.type === 'stdio') return hostConsole(ctx, where);
  const open = ctx.services.openChardev;
  if (!open) throw new OptsError(`-chardev ${cd.text}: this host offers no chardev backends`);
  const port = open(cd);
  ctx.cleanups.push(() => port.close());
  return port;
}

/** Builds a virtio console connected to the host console or a -chardev. */
export function buildConsole(o: QemuOpts, ctx: BuildContext): VirtioConsole {
  const where = `-device ${o.text}`;
  for (const k of o.props.keys()) {
    if (!DEVICE_PROPS.has(k)) throw new OptsError(`${where}: unknown property '${k}' (known: ${[...DEVICE_PROPS].join(', ')})`);
  }
  const port = chardevPort(o.props.get('chardev') ?? 'stdio', ctx, where);
  const dev = new VirtioConsole(port, {
    size: port.size?.() ?? null, wake: ctx.wake, enter: ctx.enter,
    inputDrained: () => port.pauseInput?.(false),
  });
  ctx.cleanups.push(port.onInput((bytes) => {
    dev.pushInput(bytes);
    // Flow control: a port that can pause stops until the guest has taken everything (no input is dropped).
    if (dev.pendingInput > 0) port.pauseInput?.(true);
  }));
  const offResize = port.onResize?.(() => { const s = port.size?.(); if (s) dev.resize(s.cols, s.rows); });
  if (offResize) ctx.cleanups.push(offResize);
  const offDrain = port.onDrain?.(() => dev.resumeOutput());
  if (offDrain) ctx.cleanups.push(offDrain);
  return dev;
}
