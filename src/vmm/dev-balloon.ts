/**
 * `-device virtio-balloon-device[,id=ID][,guest-stats-polling-interval=SECONDS]
 * [,deflate-on-oom=on|off][,free-page-reporting=on|off][,page-poison=on|off]`:
 * the virtio memory balloon, controlled over QMP (`balloon`, `query-balloon`,
 * and `qom-get`/`qom-set` of `guest-stats` and `guest-stats-polling-interval`
 * on /machine/peripheral/ID). The properties are QEMU's, with its defaults:
 *  - guest-stats-polling-interval: ask the guest for memory statistics
 *    every SECONDS (0, the default: only when QMP asks);
 *  - deflate-on-oom (off): the guest may take pages back from the balloon
 *    instead of OOM-killing a process;
 *  - free-page-reporting (off): the guest reports free pages, which the
 *    memory backend may discard;
 *  - page-poison (on): the guest tells the device what its free pages hold.
 * balloon.ts explains each. The VMM should `attach()` the memory backend
 * (the board's RamAccounting) after building the board (otherwise the
 * device makes its own on activation).
 */
import type { BuildContext } from './device-builder.js';
import { OptsError, boolProp, type QemuOpts } from './qemu-opts.js';
import { VirtioBalloon, type BalloonTimer } from '../devices/virtio/balloon.js';

const DEVICE_PROPS = new Set(['id', 'guest-stats-polling-interval', 'deflate-on-oom', 'free-page-reporting', 'page-poison']);
/** Longest accepted polling interval: one day, in seconds. */
const MAX_INTERVAL_S = 86400;

/** One-shot timers on the JavaScript host's event loop (they do not keep the process alive). */
const hostTimer: BalloonTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  (t as { unref?: () => void }).unref?.();
  return () => clearTimeout(t);
};

/** Builds a balloon from its -device options. */
export function buildBalloon(o: QemuOpts, ctx: BuildContext): VirtioBalloon {
  const where = `-device ${o.text}`;
  for (const k of o.props.keys()) {
    if (!DEVICE_PROPS.has(k)) throw new OptsError(`${where}: unknown property '${k}' (known: ${[...DEVICE_PROPS].join(', ')})`);
  }
  if (ctx.opts.devices.filter((d) => d.type === o.type).length > 1) throw new OptsError(`${where}: only one balloon device is supported`);
  const iv = o.props.get('guest-stats-polling-interval');
  let interval = 0;
  if (iv !== undefined) {
    interval = Number(iv);
    if (!/^\d+$/.test(iv) || interval > MAX_INTERVAL_S) throw new OptsError(`${where}: guest-stats-polling-interval=${iv} is not a number of seconds from 0 to ${MAX_INTERVAL_S}`);
  }
  const dev = new VirtioBalloon({
    wake: ctx.wake, enter: ctx.enter, timer: hostTimer, statsPollingInterval: interval, id: o.props.get('id'),
    deflateOnOom: boolProp(o, 'deflate-on-oom', false),
    freePageReporting: boolProp(o, 'free-page-reporting', false),
    pagePoison: boolProp(o, 'page-poison', true),
  });
  ctx.cleanups.push(() => dev.close());
  return dev;
}
