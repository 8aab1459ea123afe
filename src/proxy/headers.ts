// Header hygiene between client and upstream: walks `rawHeaders` (Node joins duplicates, hiding them),
// drops what `Connection` names and the hop-by-hop set, strips every inbound identity header whatever
// its spelling, and removes Gatehouse's own cookies. What is left is safe to forward.
import { GATEHOUSE_COOKIE_PREFIXES } from '../session/types.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) and their older cousins: never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Headers an upstream might read as identity; compared after lower-casing and `_` → `-`. */
const IDENTITY_HEADERS = new Set([
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-groups',
  'x-forwarded-preferred-username',
  'x-forwarded-access-token',
  'x-forwarded-uri',
  'x-forwarded-prefix',
  'x-original-url',
  'x-original-uri',
  'x-original-method',
  'x-rewrite-url',
  'remote-user',
  'x-remote-user',
  'x-remote-email',
  'x-remote-groups',
  'x-remote-name',
  'x-user',
  'x-email',
  'x-webauth-user',
  'x-proxy-user',
  'x-authenticated-user',
  'x-ms-client-principal',
  'x-ms-client-principal-name',
  'x-ms-client-principal-id',
  'x-amzn-oidc-identity',
  'x-amzn-oidc-data',
  'x-amzn-oidc-accesstoken',
  'x-goog-authenticated-user-email',
  'x-goog-authenticated-user-id',
  'x-goog-iap-jwt-assertion',
  'cf-access-jwt-assertion',
  'cf-access-authenticated-user-email',
]);
const IDENTITY_PREFIXES = ['x-gatehouse-', 'x-auth-request-', 'x-pomerium-'];

/** Address headers, kept only from trusted proxies (and then re-written by Gatehouse). */
const FORWARDING_HEADERS = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
]);

/** Headers a client's `Connection` may not name: dropping them would change who the request is. */
const PROTECTED = new Set(['host', 'authorization', 'cookie', 'content-length', 'content-type']);

function canonical(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

export function isIdentityHeader(name: string): boolean {
  const n = canonical(name);
  return IDENTITY_HEADERS.has(n) || IDENTITY_PREFIXES.some((p) => n.startsWith(p));
}

function isSecurityHeader(name: string): boolean {
  const n = canonical(name);
  return isIdentityHeader(n) || FORWARDING_HEADERS.has(n) || PROTECTED.has(n);
}

export interface InboundHeaders {
  /** Headers to forward, lower-case names in arrival order (duplicates kept apart). */
  forward: Array<[string, string]>;
  host: string | undefined;
  authorization: string | undefined;
  /** The inbound X-Forwarded-* values (only meaningful when the peer is a trusted proxy). */
  forwardedFor: string | undefined;
  forwardedProto: string | undefined;
  forwardedHost: string | undefined;
  /** The `Cookie` header without Gatehouse's cookies, or undefined when nothing is left. */
  cookie: string | undefined;
}

export interface HeaderRefusal {
  refused: string;
}

function stripGatehouseCookies(value: string): string | undefined {
  const kept = value
    .split(';')
    .map((c) => c.trim())
    .filter((c) => {
      if (c === '') return false;
      const name = c.slice(0, c.indexOf('=') === -1 ? c.length : c.indexOf('=')).trim();
      return !GATEHOUSE_COOKIE_PREFIXES.some((p) => name.startsWith(p));
    });
  return kept.length ? kept.join('; ') : undefined;
}

/** Splits the client's headers into what Gatehouse reads and what it forwards; refuses ambiguity. */
export function readInboundHeaders(rawHeaders: readonly string[]): InboundHeaders | HeaderRefusal {
  const connectionNamed = new Set<string>();
  const seen = new Map<string, number>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    seen.set(name, (seen.get(name) ?? 0) + 1);
    if (name === 'connection') {
      for (const token of (rawHeaders[i + 1] as string).split(',')) {
        const t = token.trim().toLowerCase();
        if (t === '' || t === 'close' || t === 'keep-alive') continue;
        if (isSecurityHeader(t)) return { refused: `Connection names the header "${t}"` };
        connectionNamed.add(t);
      }
    }
  }
  for (const once of ['host', 'authorization', 'content-length', 'transfer-encoding']) {
    if ((seen.get(once) ?? 0) > 1) return { refused: `more than one ${once} header` };
  }
  if (seen.has('content-length') && seen.has('transfer-encoding'))
    return { refused: 'both Content-Length and Transfer-Encoding' };
  const out: InboundHeaders = {
    forward: [],
    host: undefined,
    authorization: undefined,
    forwardedFor: undefined,
    forwardedProto: undefined,
    forwardedHost: undefined,
    cookie: undefined,
  };
  const cookies: string[] = [];
  const forwardedFor: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
    if (connectionNamed.has(name) || HOP_BY_HOP.has(name)) continue;
    if (isIdentityHeader(name)) continue;
    const canon = canonical(name);
    if (FORWARDING_HEADERS.has(canon)) {
      // Only the exact spelling counts; `X_Forwarded_For` is dropped as a spoof.
      if (name === 'x-forwarded-for') forwardedFor.push(value);
      else if (name === 'x-forwarded-proto') out.forwardedProto ??= value.split(',')[0]?.trim();
      else if (name === 'x-forwarded-host') out.forwardedHost ??= value.split(',')[0]?.trim();
      continue;
    }
    if (canon !== name && (PROTECTED.has(canon) || HOP_BY_HOP.has(canon))) continue;
    switch (name) {
      case 'host':
        out.host = value;
        continue;
      case 'authorization':
        out.authorization = value;
        continue;
      case 'cookie':
        cookies.push(value);
        continue;
      default:
        out.forward.push([name, value]);
    }
  }
  if (forwardedFor.length) out.forwardedFor = forwardedFor.join(', ');
  if (cookies.length) out.cookie = stripGatehouseCookies(cookies.join('; '));
  return out;
}

/** Response headers from the upstream, minus hop-by-hop ones and what its `Connection` names. */
export function responseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const named = new Set<string>();
  const conn = headers.connection;
  for (const v of Array.isArray(conn) ? conn : conn ? [conn] : [])
    for (const t of v.split(',')) named.add(t.trim().toLowerCase());
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = v;
  }
  return out;
}
