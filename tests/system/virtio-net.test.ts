/**
 * virtio-net end to end, on the default guest (Debian's kernel, busybox):
 *  1. two tsvm guests joined by `-netdev socket` (listen/connect on
 *     127.0.0.1) ping each other and copy a file with nc, checked by md5;
 *  2. a tsvm guest and a qemu-system-riscv64 guest on the same kind of
 *     link ping each other (QEMU connects to tsvm's listening socket);
 *  3. `-netdev user` (passt): the guest gets an address by DHCP, serves a
 *     file with busybox httpd, and the host fetches it through hostfwd.
 * All traffic stays on loopback and unix sockets. Tests 2 and 3 run side
 * by side (one tsvm guest each, like test 1's pair).
 *
 * The tsvm guests boot through Debian's OpenSBI: busybox ping reads the
 * clock through the vDSO (rdtime from U-mode), which Linux only enables
 * (scounteren) from its SBI PMU driver, and tsvm's built-in SBI has no PMU
 * extension yet.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { ConsoleSession, stripAnsi } from '../helpers/console-session.js';
import { ensureDefaultGuest, type DefaultGuest } from '../../src/images/default-guest.js';

const PROMPT = '~ # ';
const BOOT_MS = 300_000;
const OPENSBI = '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin';
/** Debian's busybox looks for /etc/udhcpc/default.script; the default guest has the script here. */
const UDHCPC = 'udhcpc -i eth0 -q -n -t 10 -s /usr/share/udhcpc/default.script';

let seq = 0;
/** Runs `cmd` in the guest shell; returns its output and exit status (markers survive line wrapping of the echo). */
async function sh(s: ConsoleSession, cmd: string, timeoutMs = 60_000): Promise<{ out: string; status: number }> {
  const n = ++seq;
  s.send(`echo "{{${n}""}}"; ${cmd}; echo "<<$?:${n}>>"`);
  await s.expect(`{{${n}}}`, timeoutMs);
  const out = stripAnsi(await s.expect(new RegExp(`<<\\d+:${n}>>`), timeoutMs)).trim();
  const m = new RegExp(`<<(\\d+):${n}>>`).exec(s.output);
  return { out, status: Number(m?.[1] ?? -1) };
}

/** Like sh() but fails the test on a non-zero status. */
async function ok(s: ConsoleSession, cmd: string, timeoutMs = 60_000): Promise<string> {
  const r = await sh(s, cmd, timeoutMs);
  assert.equal(r.status, 0, `guest command failed: ${cmd}\n${r.out}`);
  return r.out;
}

/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function tsvm(g: DefaultGuest, netArgs: string[]): ConsoleSession {
  return new ConsoleSession(['-m', '512M', '-bios', OPENSBI, '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0', ...netArgs]);
}

async function powerOff(...sessions: ConsoleSession[]): Promise<void> {
  for (const s of sessions) s.send('poweroff -f');
  for (const s of sessions) assert.equal(await s.exited, 0, 'poweroff gives exit status 0');
}

async function setIp(s: ConsoleSession, addr: string): Promise<void> {
  await ok(s, `ip addr add ${addr}/24 dev eth0 && ip link set eth0 up`);
}

/** Pings `peer` from `s` (retrying while the link comes up); returns the statistics line. */
async function ping(s: ConsoleSession, peer: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const r = await sh(s, `ping -c 3 -W 5 ${peer}`, 90_000);
    if (r.status === 0 && /3 packets received/.test(r.out)) return r.out;
    if (attempt === 2) assert.fail(`ping ${peer} failed:\n${r.out}`);
  }
}

test('two tsvm guests over -netdev socket: ping and an nc file transfer', { timeout: BOOT_MS + 300_000 }, async () => {
  const g = await ensureDefaultGuest({ progress: false });
  const port = await freePort();
  const a = tsvm(g, ['-netdev', `socket,id=n0,listen=127.0.0.1:${port}`, '-device', 'virtio-net-device,netdev=n0,mac=52:54:00:00:00:0a']);
  const b = tsvm(g, ['-netdev', `socket,id=n0,connect=127.0.0.1:${port}`, '-device', 'virtio-net-device,netdev=n0,mac=52:54:00:00:00:0b']);
  try {
    await Promise.all([a.expect('tsvm-guest: ready', BOOT_MS), b.expect('tsvm-guest: ready', BOOT_MS)]);
    await Promise.all([a.expect(PROMPT, 60_000), b.expect(PROMPT, 60_000)]);
    assert.match(await ok(a, 'cat /sys/class/net/eth0/address'), /52:54:00:00:00:0a/);
    await setIp(a, '10.0.2.1');
    await setIp(b, '10.0.2.2');
    await ping(b, '10.0.2.1');
    await ping(a, '10.0.2.2');
    // ~250 KB from b to a.
    const sum = (await ok(b, 'seq 1 40000 > /tmp/f && md5sum /tmp/f')).split(/\s+/)[0]!;
    assert.match(sum, /^[0-9a-f]{32}$/);
    const receiving = ok(a, 'nc -l -p 5000 > /tmp/f', 120_000);
    await ok(b, 'for i in 1 2 3 4 5; do nc 10.0.2.1 5000 < /tmp/f && break; sleep 2; done', 120_000);
    await receiving;
    assert.equal((await ok(a, 'md5sum /tmp/f')).split(/\s+/)[0], sum, 'the file arrived intact');
    assert.equal(await ok(a, 'wc -c < /tmp/f'), '228894');
    await powerOff(a, b);
  } finally {
    a.kill(); b.kill();
  }
});

describe('tsvm with QEMU, and tsvm with passt', { concurrency: true }, () => {
  test('a tsvm guest and a QEMU guest on one -netdev socket link ping each other', { timeout: BOOT_MS + 180_000 }, async () => {
    const g = await ensureDefaultGuest({ progress: false });
    const port = await freePort();
    const t = tsvm(g, ['-netdev', `socket,id=n0,listen=127.0.0.1:${port}`, '-device', 'virtio-net-device,netdev=n0,mac=52:54:00:12:34:57']);
    let q: ConsoleSession | null = null;
    try {
      await t.expect('OpenSBI', 60_000); // tsvm listens before the firmware starts
      q = new ConsoleSession(['-M', 'virt', '-m', '512M', '-nographic', '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0',
        '-netdev', `socket,id=n0,connect=127.0.0.1:${port}`, '-device', 'virtio-net-device,netdev=n0'], ['qemu-system-riscv64']);
      await q.expect(PROMPT, BOOT_MS);
      await t.expect('tsvm-guest: ready', BOOT_MS);
      await t.expect(PROMPT, 60_000);
      await setIp(t, '10.0.2.1');
      await setIp(q, '10.0.2.2');
      await ping(q, '10.0.2.1');
      await ping(t, '10.0.2.2');
      assert.match(await ok(t, 'cat /proc/net/arp'), /10\.0\.2\.2 .*52:54:00:12:34:56/, 'QEMU\'s default MAC seen by tsvm');
      await powerOff(t, q);
    } finally {
      t.kill(); q?.kill();
    }
  });

  test('-netdev user (passt): DHCP in the guest, httpd reached from the host through hostfwd', { timeout: BOOT_MS + 180_000 }, async () => {
    const passt = ['/usr/bin/passt', '/usr/sbin/passt'].find((p) => fs.existsSync(p));
    assert.ok(passt, 'passt missing: apt-get install passt');
    const g = await ensureDefaultGuest({ progress: false });
    const port = await freePort();
    const s = tsvm(g, ['-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:80`, '-device', 'virtio-net-device,netdev=n0']);
    const passtRunning = (): boolean => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').some((l) => l.includes('passt') && l.includes(`127.0.0.1/${port}:80`));
    try {
      await s.expect('tsvm-guest: ready', BOOT_MS);
      await s.expect(PROMPT, 60_000);
      assert.ok(passtRunning(), 'tsvm started passt');
      await ok(s, 'ip link set eth0 up');
      const dhcp = await ok(s, UDHCPC, 120_000);
      assert.match(dhcp, /lease of [\d.]+ obtained/);
      assert.match(await ok(s, 'ip -4 addr show eth0'), /inet \d+\.\d+\.\d+\.\d+\//);
      assert.match(await ok(s, 'ip route'), /^default via /m);
      await ok(s, 'mkdir -p /www && echo tsvm-virtio-net-ok > /www/t.txt && httpd -p 80 -h /www');
      let body = '', status = 0;
      for (let attempt = 0; attempt < 5 && status !== 200; attempt++) {
        try {
          [status, body] = await new Promise<[number, string]>((resolve, reject) => {
            const req = http.get({ host: '127.0.0.1', port, path: '/t.txt', timeout: 30_000 }, (r) => {
              let b = '';
              r.setEncoding('utf8');
              r.on('data', (d: string) => { b += d; });
              r.on('end', () => resolve([r.statusCode ?? 0, b]));
            });
            req.on('timeout', () => req.destroy(new Error('timeout')));
            req.on('error', reject);
          });
        } catch { await new Promise((r) => setTimeout(r, 2000)); }
      }
      assert.equal(status, 200);
      assert.equal(body, 'tsvm-virtio-net-ok\n');
      await powerOff(s);
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(!passtRunning(), 'passt is stopped when tsvm exits');
    } finally {
      s.kill();
    }
  });
});
