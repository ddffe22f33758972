/**
 * `-device virtio-balloon-device[,id=ID][,guest-stats-polling-interval=SECONDS]`:
 * the virtio memory balloon, controlled over QMP (`balloon`, `query-balloon`).
 * With a polling interval the device asks the guest for fresh memory
 * statistics every SECONDS (QEMU's property of the same name); otherwise
 * statistics are refreshed on each `query-balloon`.
 *
 * The VMM should `attach()` the board's RamAccounting to the device after
 * building the board (otherwise the device makes its own on activation).
 */
import type { BuildContext } from './device-builder.js';
import { OptsError, type QemuOpts } from './qemu-opts.js';
import { VirtioBalloon } from '../devices/virtio/balloon.js';

const DEVICE_PROPS = new Set(['id', 'guest-stats-polling-interval', 'deflate-on-oom']);
/** Longest accepted polling interval: one day, in seconds. */
const MAX_INTERVAL_S = 86400;

/** Builds a balloon from its -device options. */
export function buildBalloon(o: QemuOpts, ctx: BuildContext): VirtioBalloon {
  const where = `-device ${o.text}`;
  for (const k of o.props.keys()) {
    if (!DEVICE_PROPS.has(k)) throw new OptsError(`${where}: unknown property '${k}' (known: ${[...DEVICE_PROPS].join(', ')})`);
  }
  const oom = o.props.get('deflate-on-oom');
  if (oom !== undefined && !['off', 'no', 'false'].includes(oom)) {
    throw new OptsError(`${where}: deflate-on-oom=on is not supported (the balloon must lower the guest's MemTotal)`);
  }
  if (ctx.opts.devices.filter((d) => d.type === o.type).length > 1) throw new OptsError(`${where}: only one balloon device is supported`);
  const dev = new VirtioBalloon({ wake: ctx.wake });
  const iv = o.props.get('guest-stats-polling-interval');
  if (iv !== undefined) {
    const s = Number(iv);
    if (!/^\d+$/.test(iv) || s > MAX_INTERVAL_S) throw new OptsError(`${where}: guest-stats-polling-interval=${iv} is not a number of seconds from 0 to ${MAX_INTERVAL_S}`);
    if (s > 0) {
      const t = setInterval(() => { dev.requestStats(); }, s * 1000);
      (t as { unref?: () => void }).unref?.();
      ctx.cleanups.push(() => clearInterval(t));
    }
  }
  return dev;
}
