// Host patterns, matched as TLS certificates match names (RFC 6125 §6.4.3): `app.example.com` is that
// host; in `*.example.com` the `*` is exactly one DNS label, so it matches `app.example.com` but neither
// `a.b.example.com` nor the apex `example.com`; `**.example.com` is one label or more. A wildcard is
// only ever the whole leftmost label. Case-insensitive (RFC 4343), and one trailing dot (the DNS root)
// is ignored. The one definition for route hosts, return hosts, websocket origins and the policy's
// `host` criterion.

/** Tells whether a host name (no port) matches a compiled pattern. */
export type HostMatcher = (host: string) => boolean;

const cache = new Map<string, HostMatcher>();

/** Lower-case, without the one trailing dot a fully qualified name may carry. */
function normalize(host: string): string {
  const h = host.toLowerCase();
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** What is wrong with a host pattern (no port), in a sentence; undefined when it is fine. */
export function hostPatternProblem(pattern: string): string | undefined {
  const p = normalize(pattern);
  if (p === '') return 'a host cannot be empty';
  if (/[\s/:@?#]/.test(p.replace(/^\[[0-9a-f:.]+\]$/, '')))
    return `"${pattern}" is not a host name (no scheme, port, path or spaces here)`;
  if (!p.includes('*')) return undefined;
  const m = /^\*\*?\.(.+)$/.exec(p);
  if (!m || (m[1] as string).includes('*'))
    return `"${pattern}": a wildcard must be the whole leftmost label, as in *.example.com (one label) or **.example.com (one label or more)`;
  if ((m[1] as string).split('.').some((label) => label === '')) return `"${pattern}" has an empty label`;
  return undefined;
}

/**
 * A matcher for a host pattern. Throws TypeError for a pattern `hostPatternProblem` refuses (config
 * checks report those first, with their path).
 */
export function compileHostPattern(pattern: string): HostMatcher {
  let matcher = cache.get(pattern);
  if (matcher) return matcher;
  const problem = hostPatternProblem(pattern);
  if (problem) throw new TypeError(problem);
  const p = normalize(pattern);
  if (p.startsWith('**.')) {
    const suffix = p.slice(2); // `.example.com`
    matcher = (host) => {
      const h = normalize(host);
      if (h.length <= suffix.length || !h.endsWith(suffix)) return false;
      return !h
        .slice(0, -suffix.length)
        .split('.')
        .some((label) => label === '');
    };
  } else if (p.startsWith('*.')) {
    const suffix = p.slice(1);
    matcher = (host) => {
      const h = normalize(host);
      if (h.length <= suffix.length || !h.endsWith(suffix)) return false;
      // Exactly one label before the suffix: not empty, no dot.
      return !h.slice(0, -suffix.length).includes('.');
    };
  } else {
    matcher = (host) => normalize(host) === p;
  }
  if (cache.size > 10_000) cache.clear();
  cache.set(pattern, matcher);
  return matcher;
}

export function matchHostPattern(pattern: string, host: string): boolean {
  return compileHostPattern(pattern)(host);
}

/** Splits `name[:port]` (an IPv6 name in brackets); undefined when the port is not 1–5 digits. */
export function splitHostPattern(text: string): { name: string; port: string | undefined } | undefined {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(text);
  if (!m) return undefined;
  return { name: m[1] as string, port: m[2] };
}

/** What is wrong with a `name[:port]` pattern (`sessions.return_hosts`); undefined when it is fine. */
export function hostPortPatternProblem(text: string): string | undefined {
  const hp = splitHostPattern(text);
  if (!hp) return `"${text}" is not a host with an optional port (app.example.com, *.example.com:8443)`;
  return hostPatternProblem(hp.name);
}

/**
 * A matcher for a `name[:port]` pattern: the name as `compileHostPattern`; without a port any port
 * matches, with one only that port (`port` is the effective port, the scheme's default included).
 */
export function compileHostPortPattern(text: string): (host: string, port: string) => boolean {
  const hp = splitHostPattern(text);
  if (!hp) throw new TypeError(`"${text}" is not a host with an optional port`);
  const name = compileHostPattern(hp.name);
  return (host, port) => (hp.port === undefined || hp.port === port) && name(host);
}

const DEFAULT_PORT: Record<string, string> = { http: '80', https: '443' };
const ORIGIN = /^(https?):\/\/(\[[0-9a-f:.]+\]|[^/:[\]]+)(?::(\d{1,5}))?$/i;

/** What is wrong with an origin pattern (`https://*.example.com`, `http://app.example.com:8080`). */
export function originPatternProblem(text: string): string | undefined {
  const m = ORIGIN.exec(text.replace(/\/+$/, ''));
  if (!m) return `"${text}" is not an origin: scheme, host and optional port, like https://app.example.com`;
  return hostPatternProblem(m[2] as string);
}

/**
 * Whether an `Origin` header value is the origin a pattern names: same scheme, same port (the scheme's
 * default when none is written), and a host that matches the pattern's host as `compileHostPattern`.
 */
export function matchOriginPattern(pattern: string, origin: string): boolean {
  const p = ORIGIN.exec(pattern.replace(/\/+$/, ''));
  const o = ORIGIN.exec(origin);
  if (!p || !o || hostPatternProblem(p[2] as string)) return false;
  const scheme = (p[1] as string).toLowerCase();
  if ((o[1] as string).toLowerCase() !== scheme) return false;
  if ((p[3] ?? DEFAULT_PORT[scheme]) !== (o[3] ?? DEFAULT_PORT[scheme])) return false;
  return compileHostPattern(p[2] as string)(o[2] as string);
}
