/**
 * virtio-net throughput: two guests of one VMM (the default guest's kernel
 * and initramfs) joined by `-netdev socket` on 127.0.0.1; one runs
 * `nc -l -p 5000 > /tmp/rx` (tmpfs), the other sends `dd if=/dev/zero
 * bs=64k` into `nc`. Time is measured on the host, from sending the
 * sender's command to the receiver's next prompt; the received file's size
 * must equal what was sent. Both pairs — tsvm<->tsvm and QEMU<->QEMU — use the same guest;
 * QEMU's virtio-net offers checksum and segmentation offloads, tsvm's does
 * not, so the per-packet cost differs as well as the CPU speed.
 */
import net from 'node:net';
import path from 'node:path';
import { ensureDefaultGuest } from '../src/images/default-guest.js';
import { ConsoleSession, stripAnsi } from '../tests/helpers/console-session.js';
import { REPO_ROOT } from '../tests/helpers/toolchain.js';

/** One VMM pair's transfer. */
export interface NetRow {
  name: string;
  /** Bytes sent from one guest to the other. */
  bytes: number;
  seconds: number;
  /** MiB per second. */
  mibps: number;
}

const PROMPT = '~ # ';
const BOOT_MS = 600_000;
const PORT_IN_GUEST = 5000;

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Boots a listening and a connecting guest, sends `mib` MiB from the second to the first, and times it. */
async function measure(name: string, cmd: string[], args: string[], mib: number): Promise<NetRow> {
  const port = await freePort();
  const nic = (mac: string): string[] => ['-device', `virtio-net-device,netdev=n0,mac=${mac}`];
  const a = new ConsoleSession([...args, '-netdev', `socket,id=n0,listen=127.0.0.1:${port}`, ...nic('52:54:00:00:01:01')], cmd);
  let b: ConsoleSession | null = null;
  try {
    await new Promise((r) => setTimeout(r, 1000)); // QEMU's connect= does not retry: let the listener start
    b = new ConsoleSession([...args, '-netdev', `socket,id=n0,connect=127.0.0.1:${port}`, ...nic('52:54:00:00:01:02')], cmd);
    const rx = a, tx = b;
    await Promise.all([rx.expect(PROMPT, BOOT_MS), tx.expect(PROMPT, BOOT_MS)]);
    await rx.run('ip addr add 10.0.3.1/24 dev eth0; ip link set eth0 up', PROMPT);
    await tx.run('ip addr add 10.0.3.2/24 dev eth0; ip link set eth0 up', PROMPT);
    rx.send(`nc -l -p ${PORT_IN_GUEST} > /tmp/rx`);
    await rx.expect('/tmp/rx', 60_000);
    await new Promise((r) => setTimeout(r, 2000));
    process.stderr.write(`bench: virtio-net ${name}: sending ${mib} MiB...\n`);
    const send = `dd if=/dev/zero bs=64k count=${mib * 16} 2>/dev/null | nc 10.0.3.1 ${PORT_IN_GUEST}`;
    const t0 = performance.now();
    tx.send(send);
    await rx.expect(PROMPT, 60 * 60_000);
    const seconds = (performance.now() - t0) / 1000;
    const out = stripAnsi(await rx.run('stat -c %s /tmp/rx', PROMPT));
    const got = Number(/(\d+)\s*$/.exec(out)?.[1] ?? NaN);
    if (got !== mib * 1048576) throw new Error(`virtio-net ${name}: received ${got} bytes, sent ${mib * 1048576}: ${out}`);
    await tx.expect(PROMPT, 60_000);
    for (const s of [rx, tx]) s.send('poweroff -f');
    await Promise.race([Promise.all([rx.exited, tx.exited]), new Promise((r) => setTimeout(r, 20_000))]);
    return { name, bytes: mib * 1048576, seconds, mibps: mib / seconds };
  } finally {
    a.kill(); b?.kill();
  }
}

/** Measures tsvm<->tsvm (`mibTsvm` MiB) and QEMU<->QEMU (`mibQemu` MiB) TCP throughput over -netdev socket. */
export async function benchVirtioNet(mibTsvm = 16, mibQemu = 64): Promise<NetRow[]> {
  const g = await ensureDefaultGuest({ progress: false });
  const common = ['-m', '512M', '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0'];
  const cli = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
  return [
    await measure('qemu-system-riscv64 <-> qemu-system-riscv64', ['qemu-system-riscv64'], ['-M', 'virt', '-nographic', ...common], mibQemu),
    await measure('tsvm <-> tsvm (JIT)', [process.execPath, cli, 'run'], common, mibTsvm),
  ];
}

/** Formats the rows as a Markdown table with tsvm's ratio to QEMU. */
export function netTable(rows: NetRow[]): string {
  const q = rows.find((r) => r.name.startsWith('qemu'));
  const lines = ['| virtio-net TCP (nc over -netdev socket) | MiB | seconds | MiB/s | / QEMU |', '|---|---:|---:|---:|---:|'];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${r.bytes / 1048576} | ${r.seconds.toFixed(1)} | ${r.mibps.toFixed(2)} | ${q ? `${(r.mibps / q.mibps).toFixed(3)}x` : 'n/a'} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(REPO_ROOT, 'dist', 'bench', 'virtio-net.js')) {
  const [t, q] = [Number(process.argv[2] ?? 16), Number(process.argv[3] ?? 64)];
  process.stdout.write(`${netTable(await benchVirtioNet(t, q))}\n`);
}
