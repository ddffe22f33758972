/**
 * The value of `tsvm exec --publish` (Docker's `-p`), parsed without
 * loading the publisher itself (port-publisher.ts starts a worker thread;
 * `tsvm exec` without --publish should not pay for loading it).
 */

/** One published port: the host address and port, and the port in the namespace. */
export interface Publish { hostAddr: string; hostPort: number; port: number }

/**
 * Parses Docker's `-p` value: `[HOSTADDR:]HOSTPORT:PORT[/tcp]`; an IPv6
 * host address is written in brackets (`[::1]:8080:80`). The host address
 * defaults to 127.0.0.1. Returns the port or a one-line error.
 */
export function parsePublish(spec: string): Publish | string {
  const bad = `invalid --publish '${spec}': expected [HOSTADDR:]HOSTPORT:PORT`;
  let s = spec;
  if (s.endsWith('/tcp')) s = s.slice(0, -4);
  else if (s.includes('/')) return `invalid --publish '${spec}': only tcp ports can be published`;
  let hostAddr = '127.0.0.1';
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(s);
  if (v6) { hostAddr = v6[1]!; s = v6[2]!; }
  const parts = s.split(':');
  if (parts.length === 3 && !v6) { hostAddr = parts.shift()!; if (hostAddr === '') return bad; }
  if (parts.length !== 2) return bad;
  const num = (x: string): number => (/^[0-9]{1,5}$/.test(x) ? Number(x) : -1);
  const hostPort = num(parts[0]!), port = num(parts[1]!);
  if (hostPort < 1 || hostPort > 65535 || port < 1 || port > 65535) return bad;
  if (!/^[0-9a-zA-Z.:-]+$/.test(hostAddr)) return bad;
  return { hostAddr, hostPort, port };
}
