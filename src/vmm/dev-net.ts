/**
 * `-device virtio-net-device,netdev=ID[,mac=52:54:00:xx:xx:xx][,host_mtu=N]`:
 * a virtio-net device whose frames go to the `-netdev` with that id.
 *
 * The netdev itself (a socket, a unix stream, a user-mode network) is a
 * host resource, opened through the build's host services
 * (`DeviceServices.openNetdev`; on Node, src/host/net-socket.ts).
 */
import type { BuildContext } from './device-builder.js';
import { OptsError, type QemuOpts } from './qemu-opts.js';
import { VirtioNet } from '../devices/virtio/net.js';

/** QEMU's default MAC for the first NIC (qemu_macaddr_default_if_unset): 52:54:00:12:34:56, then + 1 per NIC. */
const DEFAULT_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56] as const;
const DEVICE_PROPS = new Set(['id', 'netdev', 'mac', 'host_mtu']);

/** Parses `aa:bb:cc:dd:ee:ff`; null if malformed. */
export function parseMac(text: string): Uint8Array | null {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(text);
  return m ? Uint8Array.from(m.slice(1), (h) => parseInt(h, 16)) : null;
}

/** The default MAC of the `index`-th NIC (0-based), as QEMU assigns it. */
export function defaultMac(index: number): Uint8Array {
  const mac = Uint8Array.from(DEFAULT_MAC);
  mac[5] = (DEFAULT_MAC[5] + index) & 0xff;
  return mac;
}

/** Builds a virtio-net device from its -device options, on the -netdev it names. */
export function buildNet(o: QemuOpts, ctx: BuildContext): VirtioNet {
  const where = `-device ${o.text}`;
  for (const k of o.props.keys()) {
    if (!DEVICE_PROPS.has(k)) throw new OptsError(`${where}: unknown property '${k}' (known: ${[...DEVICE_PROPS].join(', ')})`);
  }
  const id = o.props.get('netdev');
  if (id === undefined || id === '') throw new OptsError(`${where}: needs netdev=ID naming a -netdev`);
  const used = ctx.claimedNetdevs;
  if (used.has(id)) throw new OptsError(`${where}: -netdev '${id}' is already used by another device`);
  const nd = ctx.netdev(id);
  used.add(id);
  const index = ctx.opts.devices.filter((d) => d.type === o.type).indexOf(o);
  const macText = o.props.get('mac');
  const mac = macText === undefined ? defaultMac(Math.max(0, index)) : parseMac(macText);
  if (!mac) throw new OptsError(`${where}: mac=${macText} is not a MAC address like 52:54:00:12:34:56`);
  if (mac[0]! & 1) throw new OptsError(`${where}: mac=${macText} is a multicast address`);
  let mtu: number | undefined;
  const mtuText = o.props.get('host_mtu');
  if (mtuText !== undefined) {
    mtu = Number(mtuText);
    // 68: the minimum IPv4 MTU (RFC 791); 65535: the config field is 16 bits (virtio 1.2 §5.1.4).
    if (!/^\d+$/.test(mtuText) || mtu < 68 || mtu > 65535) throw new OptsError(`${where}: host_mtu=${mtuText} is not an MTU from 68 to 65535`);
  }
  const backend = ctx.services.openNetdev(nd);
  ctx.cleanups.push(() => backend.close());
  return new VirtioNet({ mac, mtu, backend, wake: ctx.wake, enter: ctx.enter });
}
