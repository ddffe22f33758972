/**
 * Docker's network verbs for the process runtime: `tsvm network create
 * NAME`, `network ls`, `network inspect NAME`, `network rm NAME`. State
 * lives in the tsvm host (src/host/containers/networks.ts), started on
 * first use. As with the docker CLI, a refusal by the host (a duplicate
 * name, an unknown network, one in use) exits 1 with one line; bad flags
 * exit 125.
 */
import type { Command } from 'commander';
import { api, ensureHost } from '../host/containers/client.js';
import type { NetworkView } from '../host/containers/networks.js';

/** Exit status when the host refuses (the docker CLI's 1). */
const EXIT_REFUSED = 1;

function fail(e: unknown): number {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`tsvm: ${msg.split('\n')[0]!}\n`);
  return EXIT_REFUSED;
}

const enc = encodeURIComponent;

/** Registers `tsvm network` and its verbs. */
export function registerNetworkCommands(program: Command): void {
  const net = program.command('network').description('container networks: containers on one reach each other by name (docker network)');
  net.command('create').description('create a network (a /16 from 172.18.0.0 up); prints its id').argument('<name>')
    .option('-d, --driver <driver>', 'the driver (bridge only)', 'bridge')
    .action(async (name: string, o: { driver: string }) => {
      if (o.driver !== 'bridge') { process.stderr.write(`tsvm: --driver ${o.driver}: only bridge networks exist\n`); process.exitCode = 125; return; }
      try { process.stdout.write(`${((await api(await ensureHost(), 'POST', '/v1/networks', { name })) as { Id: string }).Id}\n`); } catch (e) { process.exitCode = fail(e); }
    });
  net.command('ls').alias('list').description('list networks').option('-q, --quiet', 'ids only', false)
    .action(async (o: { quiet: boolean }) => {
      let list: NetworkView[];
      try { list = (await api(await ensureHost(), 'GET', '/v1/networks')) as NetworkView[]; } catch (e) { process.exitCode = fail(e); return; }
      if (o.quiet) { process.stdout.write(list.map((n) => `${n.Id.slice(0, 12)}\n`).join('')); return; }
      const rows = [['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET'], ...list.map((n) => [n.Id.slice(0, 12), n.Name, n.Driver, n.Scope, n.IPAM.Config[0]?.Subnet ?? ''])];
      const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
      process.stdout.write(rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]! + 3))).join('')).join('\n') + '\n');
    });
  net.command('inspect').description("networks' records with their running members, as a JSON array").argument('<networks...>')
    .action(async (refs: string[]) => {
      const out: unknown[] = [];
      try {
        const socket = await ensureHost();
        for (const ref of refs) { try { out.push(await api(socket, 'GET', `/v1/networks/${enc(ref)}`)); } catch (e) { process.exitCode = fail(e); } }
      } catch (e) { process.exitCode = fail(e); }
      process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
    });
  net.command('rm').alias('remove').description('remove networks (refused while a container is attached)').argument('<networks...>')
    .action(async (refs: string[]) => {
      try {
        const socket = await ensureHost();
        for (const ref of refs) {
          try { await api(socket, 'DELETE', `/v1/networks/${enc(ref)}`); process.stdout.write(`${ref}\n`); } catch (e) { process.exitCode = fail(e); }
        }
      } catch (e) { process.exitCode = fail(e); }
    });
}
