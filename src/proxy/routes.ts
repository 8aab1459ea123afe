// The route table: every configured route compiled once at start (host pattern, path prefix, public
// globs, policy, audience), and the lookup from a request's host and normalized path to its route.
import { compilePolicy, compileGlob, compileHostPattern, type CompiledPolicy } from '../policy/index.js';
import type { RouteConfig } from '../config/schema.js';
import type { RuleSpec } from '../policy/index.js';

export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteConfig;
  /** Scheme of the public URL (`https:`), for redirects and X-Forwarded-Proto. */
  readonly scheme: string;
  /**
   * The host pattern, lower-case, without port: `app.example.com`, `*.example.com` (exactly one label
   * more) or `**.example.com` (one or more); src/policy/host-pattern.ts.
   */
  readonly host: string;
  /** Explicit port of the public URL, or undefined for the scheme's default. */
  readonly port: string | undefined;
  /** Path prefix, always ending in `/`. */
  readonly prefix: string;
  readonly audience: string;
  readonly policy: CompiledPolicy;
  readonly upstreams: readonly URL[];
  isPublic(path: string): boolean;
  /** The path the upstream receives for a normalized request path. */
  upstreamPath(path: string, upstream: URL): string;
}

/** Resolves `from` (absolute, or a path on the issuer's origin) into a URL whose path ends in `/`. */
export function resolveFrom(from: string, issuerUrl: string): URL {
  const url = from.startsWith('/') ? new URL(from, new URL(issuerUrl).origin) : new URL(from);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('from must be http(s)');
  if (url.search || url.hash || url.username || url.password)
    throw new TypeError('from must not have a query, fragment or user info');
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

export function compileRoute(route: RouteConfig, issuerUrl: string, index: number): CompiledRoute {
  const from = resolveFrom(route.from, issuerUrl);
  const host = from.hostname.toLowerCase();
  const prefix = from.pathname;
  const policy = compilePolicy(route.policy as RuleSpec[], { path: `routes[${index}].policy` });
  const publicGlobs = route.public === true ? undefined : (route.public ?? []).map((g) => compileGlob(g));
  const isPublic =
    route.public === true ? () => true : (path: string) => publicGlobs?.some((m) => m.test(path)) ?? false;
  const upstreams = route.to.map((t) => new URL(t));
  return {
    name: route.name,
    config: route,
    scheme: from.protocol,
    host,
    port: from.port || undefined,
    prefix,
    audience: route.audience ?? from.href,
    policy,
    upstreams,
    isPublic,
    upstreamPath(path, upstream) {
      let p = path;
      if (route.strip_prefix) {
        p = path.startsWith(prefix) ? path.slice(prefix.length - 1) : '/';
      }
      const base = upstream.pathname.replace(/\/+$/, '');
      return base + p;
    },
  };
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

export class RouteTable {
  readonly routes: readonly CompiledRoute[];
  readonly #hostMatchers: ReadonlyArray<(host: string) => boolean>;

  constructor(routes: readonly RouteConfig[], issuerUrl: string) {
    const compiled = routes.map((r, i) => compileRoute(r, issuerUrl, i));
    // Exact hosts before `*.` hosts before `**.` hosts, then the longest prefix first, so the most
    // specific route wins.
    const rank = (host: string) => (host.startsWith('**.') ? 2 : host.startsWith('*.') ? 1 : 0);
    this.routes = compiled.sort((a, b) => rank(a.host) - rank(b.host) || b.prefix.length - a.prefix.length);
    this.#hostMatchers = this.routes.map((r) => {
      if (!r.host.includes('*')) return (h: string) => h === r.host;
      return compileHostPattern(r.host);
    });
  }

  /** Whether any route answers on this Host header (so malformed paths there are the proxy's to refuse). */
  hasHost(hostHeader: string): boolean {
    const h = splitHost(hostHeader);
    if (!h) return false;
    return this.routes.some((r, i) => this.#portMatches(r, h.port) && this.#hostMatchers[i]?.(h.name));
  }

  /** The route for a Host header and a normalized path, or undefined. */
  match(hostHeader: string, path: string): CompiledRoute | undefined {
    const h = splitHost(hostHeader);
    if (!h) return undefined;
    for (let i = 0; i < this.routes.length; i++) {
      const r = this.routes[i] as CompiledRoute;
      if (!this.#portMatches(r, h.port) || !this.#hostMatchers[i]?.(h.name)) continue;
      if (path.startsWith(r.prefix) || path === r.prefix.slice(0, -1)) return r;
    }
    return undefined;
  }

  #portMatches(r: CompiledRoute, port: string | undefined): boolean {
    if (r.port !== undefined) return port === r.port;
    return port === undefined || port === DEFAULT_PORT[r.scheme];
  }
}

/** Splits a Host header into a lower-case name and port; undefined when it is not a plain authority. */
export function splitHost(hostHeader: string): { name: string; port: string | undefined } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(hostHeader);
  if (!m) return undefined;
  return { name: (m[1] as string).toLowerCase().replace(/\.$/, ''), port: m[2] };
}
