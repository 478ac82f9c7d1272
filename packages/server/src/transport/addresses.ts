import type { PeerAddress } from './types.js';

/** Hosts that mean "every interface" to a listener but name no machine to a dialer. */
const wildcardHosts: ReadonlySet<string> = new Set(['0.0.0.0', '::', '[::]', '']);

/**
 * The address a peer announced, made dialable from here: a server bound to a wildcard
 * host announces that wildcard, so the host it was actually seen at (the other end of the
 * connection) takes its place, with the announced port.
 */
export function dialableAddress(announced: PeerAddress, seenHost: string | undefined): PeerAddress {
  if (!wildcardHosts.has(announced.host) || seenHost === undefined || seenHost === '') return announced;
  // An IPv4 peer reached through a dual-stack socket shows as ::ffff:a.b.c.d.
  const host = seenHost.startsWith('::ffff:') ? seenHost.slice('::ffff:'.length) : seenHost;
  return { host, port: announced.port };
}

export function formatAddress(address: PeerAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
