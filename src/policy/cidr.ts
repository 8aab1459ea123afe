// A small CIDR matcher for `source_ip` (IPv4 and IPv6), so policy needs no network library. IPv4-mapped
// IPv6 addresses (`::ffff:192.0.2.1`, what a dual-stack socket reports) are matched as IPv4.

export interface Cidr {
  text: string;
  v6: boolean;
  /** Network address as a 32- or 128-bit integer. */
  base: bigint;
  bits: number;
}

function parseIPv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = (n << 8n) | BigInt(v);
  }
  return n;
}

function parseIPv6(s: string): bigint | undefined {
  // Zone ids (`fe80::1%eth0`) name a local interface, never part of a policy address.
  if (s.includes('%')) s = s.slice(0, s.indexOf('%'));
  let tail: bigint[] = [];
  const v4 = s.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const n = parseIPv4(v4[2] as string);
    if (n === undefined) return undefined;
    tail = [n >> 16n, n & 0xffffn];
    s = (v4[1] as string).endsWith('::') ? (v4[1] as string) : (v4[1] as string).slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string): bigint[] | undefined => {
    if (h === '') return [];
    const out: bigint[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt('0x' + g));
    }
    return out;
  };
  const head = group(halves[0] as string);
  const rest = halves.length === 2 ? group(halves[1] as string) : [];
  if (!head || !rest) return undefined;
  const given = head.length + rest.length + tail.length;
  let groups: bigint[];
  if (halves.length === 2) {
    if (given > 7) return undefined;
    groups = [...head, ...new Array<bigint>(8 - given).fill(0n), ...rest, ...tail];
  } else {
    if (given !== 8) return undefined;
    groups = [...head, ...tail];
  }
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

const MAPPED_PREFIX = 0xffffn << 32n;

/** Parses an address; IPv4-mapped IPv6 comes back as IPv4. */
export function parseIp(s: string): { v6: boolean; value: bigint } | undefined {
  if (s.length > 64) return undefined;
  if (!s.includes(':')) {
    const v = parseIPv4(s);
    return v === undefined ? undefined : { v6: false, value: v };
  }
  const v = parseIPv6(s);
  if (v === undefined) return undefined;
  if (v >> 32n === MAPPED_PREFIX >> 32n) return { v6: false, value: v & 0xffffffffn };
  return { v6: true, value: v };
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a /32 or /128); a string is the problem. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const ip = parseIp(addr);
  if (!ip) return `"${text}" is not an IPv4 or IPv6 address or CIDR`;
  // A mapped address written in a policy is an IPv4 rule: its prefix counts from the IPv4 part.
  const mapped = !ip.v6 && addr.includes(':');
  const width = ip.v6 ? 128 : 32;
  let bits = width;
  if (slash !== -1) {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return `"${text}" has an invalid prefix length`;
    bits = Number(b) - (mapped ? 96 : 0);
    if (bits < 0 || bits > width) return `"${text}" has a prefix length outside 0–${mapped ? 128 : width}`;
  }
  const hostBits = BigInt(width - bits);
  const base = (ip.value >> hostBits) << hostBits;
  if (base !== ip.value)
    return `"${text}" has bits set after the /${text.slice(slash + 1)} prefix; write the network address`;
  return { text, v6: ip.v6, base, bits };
}

export function matchCidr(cidr: Cidr, ip: { v6: boolean; value: bigint }): boolean {
  if (cidr.v6 !== ip.v6) return false;
  const hostBits = BigInt((cidr.v6 ? 128 : 32) - cidr.bits);
  return (ip.value >> hostBits) << hostBits === cidr.base;
}

/** Whether `address` is in any of `cidrs` (false for an empty list or an address that does not parse). */
export function inCidrs(cidrs: readonly Cidr[], address: string): boolean {
  if (cidrs.length === 0) return false;
  const ip = parseIp(address);
  return ip !== undefined && cidrs.some((c) => matchCidr(c, ip));
}

/**
 * The client address behind a peer: the first address of X-Forwarded-For from the right that is not a
 * trusted proxy. Only meaningful when the peer itself is trusted; a hop that is not an address ends the
 * walk at the peer.
 */
export function clientAddress(peer: string, xff: string | undefined, trusted: readonly Cidr[]): string {
  if (!xff) return peer;
  const hops = xff.split(',').map((s) => s.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    const h = hops[i] as string;
    if (!parseIp(h)) return peer;
    if (!inCidrs(trusted, h)) return h;
  }
  return hops[0] ?? peer;
}

/**
 * The client address of a request, as everything in Gatehouse counts and records it: the peer, or — only
 * when the peer is a trusted proxy — the first X-Forwarded-For hop from the right that is not trusted.
 * X-Forwarded-For from any other peer is ignored, so a client cannot pick the address it is known by.
 */
export function requestClientAddress(
  peer: string,
  xff: string | readonly string[] | undefined,
  trusted: readonly Cidr[],
): string {
  if (!inCidrs(trusted, peer)) return peer;
  return clientAddress(peer, typeof xff === 'string' || xff === undefined ? xff : xff.join(','), trusted);
}
