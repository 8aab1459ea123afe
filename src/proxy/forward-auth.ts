// Forward-auth at /.gatehouse/auth: nginx `auth_request`, Caddy `forward_auth` and Traefik `forwardAuth`
// ask here before passing a request on. The original method, URI and host come from their headers, and
// only from trusted callers; the decision is the proxy's own (normalization, route, credentials,
// revocation, policy), answered as 2xx with identity headers, 401 (or a redirect to sign in) or 403.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { ForwardAuthConfig } from '../config/schema.js';
import type { Identity } from '../session/types.js';
import type { Cidr } from '../policy/cidr.js';
import { normalizeTarget, isRefusal } from './normalize-path.js';
import type { RouteTable, CompiledRoute } from './routes.js';
import { bearerChallenge, sendRefusal, type Refusal, invalidTokenRefusal } from './responses.js';
import type { Gate } from './gate.js';
import { auditBase, inCidrs, parseCidrs, type GateOutcome } from './gate.js';
import type { Decision } from '../policy/index.js';
import type { PartLogger } from '../audit/logger.js';

export interface ForwardAuthOptions {
  /** `forward_auth`; a reload hands the new one to `reload()`. */
  config: ForwardAuthConfig;
  gate: Gate;
  /** The current route table (read per request, so a reload is seen at once). */
  routes: () => RouteTable;
  logger: PartLogger;
  now?: () => number;
}

/** The original request as the calling proxy describes it. */
export interface OriginalRequest {
  method: string;
  uri: string;
  host: string;
  /** Which convention it came in: nginx (X-Original-*) wants 401 for browsers, the others a redirect. */
  style: 'nginx' | 'forwarded';
  /** The client address the calling proxy saw (rightmost X-Forwarded-For), if it said. */
  clientIp: string | undefined;
}

interface CachedDecision {
  identity: Identity;
  decision: Decision;
  /** The compiled route it was decided on: after a reload the route is a new object and the entry is stale. */
  route: CompiledRoute;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const ONCE = new Set([
  'x-original-uri',
  'x-original-method',
  'x-forwarded-uri',
  'x-forwarded-method',
  'x-forwarded-host',
  'x-forwarded-proto',
  'authorization',
  'host',
]);

/** Reads the original request from the calling proxy's headers; a string says why it cannot. */
export function readOriginal(rawHeaders: readonly string[], peer: string): OriginalRequest | string {
  const h = new Map<string, string>();
  const xff: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
    if (name === 'x-forwarded-for') {
      xff.push(value);
      continue;
    }
    // Two values for one of these would let the caller and Gatehouse read different requests.
    if (ONCE.has(name) && h.has(name)) return `more than one ${name} header`;
    h.set(name, value);
  }
  const nginx = h.has('x-original-uri');
  const uri = nginx ? h.get('x-original-uri') : h.get('x-forwarded-uri');
  if (uri === undefined) return 'neither X-Original-URI nor X-Forwarded-Uri is set';
  const method = ((nginx ? h.get('x-original-method') : h.get('x-forwarded-method')) ?? 'GET').trim();
  if (!TOKEN.test(method)) return 'an invalid original method';
  const host = (h.get('x-forwarded-host') ?? h.get('host') ?? '').split(',')[0]?.trim() ?? '';
  if (host === '') return 'no original host (X-Forwarded-Host or Host)';
  const hops = xff
    .join(',')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    method: method.toUpperCase(),
    uri,
    host,
    style: nginx ? 'nginx' : 'forwarded',
    clientIp: hops[hops.length - 1] ?? (peer || undefined),
  };
}

interface FaState {
  config: ForwardAuthConfig;
  trusted: Cidr[];
  cache: LRUCache<string, CachedDecision> | undefined;
}

export class ForwardAuth {
  readonly #o: ForwardAuthOptions;
  // Swapped whole on reload (trusted callers and the decision cache go together).
  #state: FaState;
  readonly #now: () => number;

  constructor(opts: ForwardAuthOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#state = ForwardAuth.#build(opts.config);
  }

  static #build(config: ForwardAuthConfig): FaState {
    return {
      config,
      trusted: parseCidrs(config.trusted_proxies, 'forward_auth.trusted_proxies'),
      cache:
        config.cache_size > 0 && config.cache_ttl > 0
          ? new LRUCache<string, CachedDecision>({ max: config.cache_size, ttlAutopurge: false })
          : undefined,
    };
  }

  /**
   * New `forward_auth` settings (configuration reload). Everything is parsed before the swap; the
   * decision cache starts empty, so no decision outlives the settings it was made under.
   */
  reload(config: ForwardAuthConfig): void {
    this.#state = ForwardAuth.#build(config);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const gate = this.#o.gate;
    const state = this.#state;
    const peer = req.socket.remoteAddress ?? '';
    if (!inCidrs(state.trusted, peer)) {
      this.#o.logger.warn({ peer }, 'forward-auth call from an untrusted address');
      return sendRefusal(req, res, {
        status: 403,
        error: 'access_denied',
        description: 'this address may not use the forward-auth endpoint (forward_auth.trusted_proxies)',
      });
    }
    const original = readOriginal(req.rawHeaders, peer);
    if (typeof original === 'string') return this.#refuse400(req, res, original);
    const target = normalizeTarget(original.uri);
    if (isRefusal(target)) return this.#refuse400(req, res, target.refused);
    const route = this.#o.routes().match(original.host, target.path);
    if (!route) {
      // No route, no decision: fail closed rather than let an unconfigured path through.
      return sendRefusal(req, res, {
        status: 403,
        error: 'access_denied',
        description: 'no Gatehouse route matches this host and path',
      });
    }
    const g = {
      route,
      method: original.method,
      path: target.path,
      host: original.host,
      sourceIp: original.clientIp ?? peer,
    };
    if (route.isPublic(target.path)) return this.#allow(res, undefined, route);

    const authorization = headerOf(req, 'authorization');
    const credential = authorization ?? headerOf(req, 'cookie');
    const cache = state.cache;
    // The host is in the key: a session cookie is good only on its own host, and one wildcard route
    // answers for many hosts.
    const key =
      cache && credential !== undefined
        ? `${createHash('sha256').update(credential).digest('base64url')}\n${route.name}\n${gate.publicHost(route, original.host)}\n${g.method}\n${g.path}`
        : undefined;
    const hit = key !== undefined ? cache?.get(key) : undefined;
    // A browser asking for a page is sent to sign in (a redirect, or for nginx a 401 its error_page
    // turns into one): recorded per `audit.allows`, like the proxy's own sign-in redirects.
    const browser =
      gate.browserAuth !== undefined &&
      (original.method === 'GET' || original.method === 'HEAD') &&
      /\btext\/html\b/i.test(headerOf(req, 'accept') ?? '');
    let outcome: GateOutcome;
    // Every hit is checked against the revocation set: the cache saves work, never a check.
    if (hit && hit.route === route && !gate.isRevoked(hit.identity)) {
      const base = auditBase(g, { via: 'forward-auth', cached: true });
      outcome = await gate.record(hit.identity, hit.decision, g, base);
    } else {
      if (hit && key !== undefined) cache?.delete(key);
      outcome = await gate.check({
        ...g,
        req,
        authorization,
        audit: { via: 'forward-auth' },
        signIn: browser,
      });
      if (key !== undefined && outcome.kind !== 'unauthenticated' && outcome.identity && outcome.decision)
        this.#remember(state, key, route, outcome.identity, outcome.decision);
    }
    switch (outcome.kind) {
      case 'unauthenticated':
        return this.#unauthenticated(req, res, original, route, target.path + target.query, outcome, browser);
      case 'deny':
        return sendRefusal(req, res, outcome.refusal);
      case 'allow':
        return this.#allow(res, outcome.identity, route);
    }
  }

  #remember(state: FaState, key: string, route: CompiledRoute, identity: Identity, decision: Decision): void {
    let ttl = state.config.cache_ttl;
    // Never past the token's expiry: a cached decision must not outlive the credential it was for.
    if (identity.exp !== undefined) ttl = Math.min(ttl, identity.exp * 1000 - this.#now());
    if (ttl <= 0) return;
    state.cache?.set(key, { identity, decision, route }, { ttl });
  }

  async #allow(res: ServerResponse, identity: Identity | undefined, route: CompiledRoute): Promise<void> {
    let headers: Record<string, string> = {};
    if (identity) {
      try {
        // Always all five: Caddy 2.6's copy_headers turns an absent one into a literal placeholder.
        headers = { 'x-gatehouse-email': '', ...(await this.#o.gate.identityHeaders(identity, route)) };
      } catch (err) {
        // No signed identity, no request: the upstream must never get unsigned identity alone.
        this.#o.logger.error({ err, route: route.name }, 'signing the assertion failed');
        res.writeHead(503, { 'cache-control': 'no-store', 'content-length': '0' });
        res.end();
        return;
      }
    }
    res.writeHead(200, { ...headers, 'cache-control': 'no-store', 'content-length': '0' });
    res.end();
  }

  #unauthenticated(
    req: IncomingMessage,
    res: ServerResponse,
    original: OriginalRequest,
    route: CompiledRoute,
    pathAndQuery: string,
    outcome: Extract<GateOutcome, { kind: 'unauthenticated' }>,
    browser: boolean,
  ): Promise<void> | void {
    const gate = this.#o.gate;
    if (outcome.token)
      return sendRefusal(req, res, invalidTokenRefusal({ ...outcome, token: outcome.token }));
    const returnTo = gate.publicUrl(route, original.host, pathAndQuery);
    const refusal: Refusal = {
      status: 401,
      error: 'unauthorized',
      description: 'this route needs a bearer token (Authorization: Bearer …) or a session',
      ...(outcome.auditId ? { auditId: outcome.auditId } : {}),
      headers: { 'www-authenticate': bearerChallenge() },
    };
    if (browser && original.style === 'forwarded') {
      // Caddy and Traefik pass a non-2xx answer to the client as it is: send the browser to sign in.
      return gate.browserAuth?.startLogin(req, res, returnTo);
    }
    // nginx turns anything but 401/403 into 500: the sign-in URL goes in a header its error_page uses.
    if (browser) refusal.headers = { ...refusal.headers, 'x-gatehouse-login': gate.loginUrl(returnTo) };
    return sendRefusal(req, res, refusal);
  }

  #refuse400(req: IncomingMessage, res: ServerResponse, reason: string): void {
    this.#o.logger.warn({ reason }, 'forward-auth refused a malformed original request');
    // nginx reads anything but 2xx/401/403 as an error; 403 keeps the answer a plain "no".
    sendRefusal(req, res, { status: 403, error: 'invalid_request', description: `refused: ${reason}` });
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join('; ') : v;
}
