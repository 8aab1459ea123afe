// The identity-aware proxy: for a request whose host and normalized path match a route, authenticate
// (bearer token or session cookie), decide with the route's policy, audit, and forward to the upstream
// with sanitized headers and a signed identity. Fails closed: any error before forwarding denies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { Pool } from 'undici';
import { GatehouseError } from '../lib/errors.js';
import type { GatehouseConfig } from '../config/schema.js';
import type { KeyRing } from '../keys/keyring.js';
import type { RevocationSet } from '../revocation/index.js';
import { newAuditId, redactUntrusted, type AuditLog, type FloodGuard } from '../audit/index.js';
import type { PartLogger } from '../audit/logger.js';
import type { BrowserAuth, Identity } from '../session/types.js';
import type { Cidr } from '../policy/cidr.js';
import type { Federation } from '../federation/federation.js';
import { normalizeTarget, isRefusal } from './normalize-path.js';
import { readInboundHeaders, responseHeaders, type InboundHeaders } from './headers.js';
import { RouteTable, splitHost, type CompiledRoute } from './routes.js';
import { bearerChallenge, sendRefusal, wantsHtml, invalidTokenRefusal } from './responses.js';
import { Gate, inCidrs, parseCidrs, requestClientAddress } from './gate.js';
import type { Metrics } from '../server/metrics.js';

export interface ProxyOptions {
  config: GatehouseConfig;
  keys: KeyRing;
  revocations: RevocationSet;
  audit: AuditLog;
  logger: PartLogger;
  now?: () => number;
  browserAuth?: BrowserAuth;
  /** Decision, upstream-latency and cache metrics; none when absent. */
  metrics?: Metrics;
  /** The running federation (swapped on reload): external tokens on routes with `trust_rules`. */
  federation?: () => Federation | undefined;
  /** Bounds the records of requests that proved no identity; none: one record each. */
  refusalGuard?: FloodGuard;
}

/** A request the proxy has claimed: either refused outright (400) or matched to a route. */
export type ProxyTarget =
  | { kind: 'refuse'; reason: string }
  | {
      kind: 'route';
      route: CompiledRoute;
      path: string;
      query: string;
      headers: InboundHeaders;
      host: string;
    };

/** A one-shot abort signal in undici's EventEmitter form: `aborted`, and 'abort' listeners. */
class ClientGone {
  aborted = false;
  #listener: (() => void) | undefined;
  on(_event: 'abort', fn: () => void): this {
    this.#listener = fn;
    return this;
  }
  once(event: 'abort', fn: () => void): this {
    return this.on(event, fn);
  }
  removeListener(_event: 'abort', fn: () => void): this {
    if (this.#listener === fn) this.#listener = undefined;
    return this;
  }
  fire(): void {
    if (this.aborted) return;
    this.aborted = true;
    const fn = this.#listener;
    this.#listener = undefined;
    fn?.();
  }
}

export class Proxy {
  // Swapped whole on reload; a request keeps the CompiledRoute it matched, so it finishes on the old one.
  #routes: RouteTable;
  /** The one decision path, shared with forward-auth and websockets (src/proxy/gate.ts). */
  readonly gate: Gate;
  readonly #metrics: Metrics | undefined;
  browserAuth: BrowserAuth | undefined;
  readonly #audit: AuditLog;
  readonly #logger: PartLogger;
  readonly #trusted: Cidr[];
  readonly #pools = new Map<string, Pool>();
  readonly #next = new Map<string, number>();
  #closed = false;

  constructor(opts: ProxyOptions) {
    this.#audit = opts.audit;
    this.#logger = opts.logger;
    this.browserAuth = opts.browserAuth;
    this.#metrics = opts.metrics;
    this.#routes = new RouteTable(opts.config.routes, opts.config.issuer.url);
    this.gate = new Gate({
      config: opts.config,
      keys: opts.keys,
      revocations: opts.revocations,
      audit: opts.audit,
      logger: opts.logger,
      ...(opts.now ? { now: opts.now } : {}),
      browserAuth: () => this.browserAuth,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
      ...(opts.federation ? { federation: opts.federation } : {}),
      ...(opts.refusalGuard ? { refusalGuard: opts.refusalGuard } : {}),
    });
    this.#trusted = parseCidrs(opts.config.proxy.trusted_proxies, 'proxy.trusted_proxies');
    this.#addPools(this.#routes);
  }

  get routes(): RouteTable {
    return this.#routes;
  }

  /**
   * Swaps in the routes, policies and audit settings of a new configuration (hot reload). Everything is
   * built before anything changes, so a route that does not compile leaves the old table serving.
   */
  reload(config: GatehouseConfig): void {
    const table = new RouteTable(config.routes, config.issuer.url);
    this.#addPools(table);
    this.#routes = table;
    this.gate.reload(config);
  }

  #addPools(table: RouteTable): void {
    for (const r of table.routes)
      for (const u of r.upstreams)
        if (!this.#pools.has(u.origin))
          this.#pools.set(u.origin, new Pool(u.origin, { connections: 256, keepAliveTimeout: 30_000 }));
  }

  /** Whether this request is the proxy's, and if so what to do with it. Undefined: not a route. */
  match(req: IncomingMessage): ProxyTarget | undefined {
    if (this.routes.routes.length === 0) return undefined;
    const host = req.headers.host ?? '';
    if (!this.routes.hasHost(host)) return undefined;
    const headers = readInboundHeaders(req.rawHeaders);
    if ('refused' in headers) return { kind: 'refuse', reason: headers.refused };
    const target = normalizeTarget(req.url ?? '/');
    if (isRefusal(target)) return { kind: 'refuse', reason: target.refused };
    // An absolute-form target names its own host: it must be the Host header's, or it is refused.
    if (target.authority !== undefined && target.authority !== host.toLowerCase())
      return { kind: 'refuse', reason: 'the absolute-form target names another host than Host' };
    const route = this.routes.match(host, target.path);
    if (!route) return undefined;
    return { kind: 'route', route, path: target.path, query: target.query, headers, host };
  }

  async handle(req: IncomingMessage, res: ServerResponse, target: ProxyTarget): Promise<void> {
    if (target.kind === 'refuse') {
      this.#logger.warn({ reason: target.reason, method: req.method }, 'proxy refused a malformed request');
      return sendRefusal(req, res, {
        status: 400,
        error: 'invalid_request',
        description: `refused: ${target.reason}`,
      });
    }
    const { route, path, headers } = target;
    const peer = req.socket.remoteAddress ?? '';
    const trusted = inCidrs(this.#trusted, peer);
    const sourceIp = requestClientAddress(peer, headers.forwardedFor, this.#trusted);

    if (route.config.max_body !== undefined) {
      const len = Number(req.headers['content-length'] ?? 0);
      if (len > route.config.max_body) {
        return sendRefusal(req, res, {
          status: 413,
          error: 'request_too_large',
          description: `the request body is larger than this route accepts (${route.config.max_body} bytes)`,
        });
      }
    }

    const method = req.method ?? '';
    // DESIGN.md "Browser or API": only a GET or HEAD asking for HTML is sent to sign in.
    const signIn =
      this.browserAuth !== undefined && (method === 'GET' || method === 'HEAD') && wantsHtml(req);
    const outcome = await this.gate.check({
      req,
      route,
      method,
      path,
      host: target.host,
      authorization: headers.authorization,
      sourceIp,
      signIn,
    });
    switch (outcome.kind) {
      case 'allow':
        return this.#forward(req, res, target, outcome.identity, sourceIp, trusted);
      case 'deny':
        return sendRefusal(req, res, outcome.refusal);
      case 'unauthenticated': {
        if (outcome.token) {
          return sendRefusal(req, res, invalidTokenRefusal({ ...outcome, token: outcome.token }));
        }
        if (signIn && this.browserAuth) {
          return this.browserAuth.startLogin(req, res, this.#publicUrl(route, target));
        }
        return sendRefusal(req, res, {
          status: 401,
          error: 'unauthorized',
          description: 'this route needs a bearer token (Authorization: Bearer …) or a session',
          ...(outcome.auditId ? { auditId: outcome.auditId } : {}),
          headers: { 'www-authenticate': bearerChallenge() },
        });
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#pools.values()].map((p) => p.close().catch(() => p.destroy())));
  }

  #publicUrl(route: CompiledRoute, target: Extract<ProxyTarget, { kind: 'route' }>): string {
    // The host is the route's, or (for a wildcard route) the Host header that matched its pattern.
    const h = splitHost(target.host);
    const host = route.host.includes('*') && h ? h.name : route.host;
    return `${route.scheme}//${host}${route.port ? `:${route.port}` : ''}${target.path}${target.query}`;
  }

  #pickUpstream(route: CompiledRoute): URL {
    const n = this.#next.get(route.name) ?? 0;
    this.#next.set(route.name, n + 1);
    return route.upstreams[n % route.upstreams.length] as URL;
  }

  async #forward(
    req: IncomingMessage,
    res: ServerResponse,
    target: Extract<ProxyTarget, { kind: 'route' }>,
    identity: Identity | undefined,
    sourceIp: string,
    trusted: boolean,
  ): Promise<void> {
    const { route, headers: inbound } = target;
    const upstream = this.#pickUpstream(route);
    const pool = this.#pools.get(upstream.origin) as Pool;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of inbound.forward) {
      const prev = headers[k];
      headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    if (inbound.cookie !== undefined) headers.cookie = inbound.cookie;
    // Authorization is kept only on public paths; a verified bearer token stays with Gatehouse.
    if (!identity && inbound.authorization !== undefined) headers.authorization = inbound.authorization;
    headers.host = route.config.preserve_host ? target.host : upstream.host;
    const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    headers['x-forwarded-for'] =
      trusted && inbound.forwardedFor
        ? `${inbound.forwardedFor}, ${req.socket.remoteAddress ?? ''}`
        : sourceIp;
    headers['x-forwarded-proto'] = (trusted && inbound.forwardedProto) || proto;
    headers['x-forwarded-host'] = (trusted && inbound.forwardedHost) || target.host;
    if (identity) {
      try {
        await this.gate.identityHeaders(identity, route, headers);
      } catch (err) {
        // No signed identity, no request: the upstream must never get unsigned identity alone.
        this.#logger.error({ err, route: route.name }, 'signing the assertion failed');
        return sendRefusal(req, res, {
          status: 503,
          error: 'temporarily_unavailable',
          description: 'could not sign the identity assertion',
        });
      }
    }
    const hasBody =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    let body: NodeJS.ReadableStream | null = null;
    if (hasBody) {
      const max = route.config.max_body;
      if (max === undefined) body = req;
      else {
        let seen = 0;
        const limiter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            seen += chunk.length;
            if (seen > max)
              cb(new GatehouseError('ERR_USAGE', 'request body too large', { field: 'max_body' }));
            else cb(null, chunk);
          },
        });
        body = req.pipe(limiter);
        req.on('error', (e) => limiter.destroy(e));
      }
    }
    // The client going away aborts the upstream request. undici takes any emitter with `aborted` and an
    // 'abort' event as a signal; this one costs a closure, where an AbortController per request (an
    // EventTarget, and a DOMException on abort) showed in the profile.
    const abort = new ClientGone();
    res.once('close', () => {
      if (!res.writableFinished) abort.fire();
    });
    const timeout = route.config.timeout;
    let upstreamRes: Awaited<ReturnType<Pool['request']>>;
    const sentAt = performance.now();
    try {
      upstreamRes = await pool.request({
        path: route.upstreamPath(target.path, upstream) + target.query,
        method: (req.method ?? 'GET') as 'GET',
        headers,
        body: body as never,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: abort as never,
      });
    } catch (err) {
      if (abort.aborted) return;
      const code = (err as { code?: string }).code ?? '';
      const timedOut = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
      const tooLarge =
        err instanceof GatehouseError || (err as { cause?: unknown }).cause instanceof GatehouseError;
      if (tooLarge) {
        return sendRefusal(req, res, {
          status: 413,
          error: 'request_too_large',
          description: `the request body is larger than this route accepts (${route.config.max_body} bytes)`,
        });
      }
      const auditId = newAuditId();
      this.#audit
        .append(
          'upstream.failed',
          {
            route: route.name,
            upstream: upstream.origin,
            method: req.method,
            path: redactUntrusted(target.path, 2048),
            reason: code || 'error',
            timed_out: timedOut,
          },
          { id: auditId },
        )
        .catch((e: unknown) => this.#logger.error({ err: e }, 'audit of an upstream failure failed'));
      this.#logger.warn({ route: route.name, upstream: upstream.origin, code }, 'upstream request failed');
      return sendRefusal(req, res, {
        status: timedOut ? 504 : 502,
        error: timedOut ? 'upstream_timeout' : 'upstream_unavailable',
        description: timedOut
          ? `the service behind route "${route.name}" did not answer in time`
          : `the service behind route "${route.name}" is unavailable`,
        auditId,
      });
    }
    this.#metrics?.upstreamDuration.observe({ route: route.name }, (performance.now() - sentAt) / 1000);
    res.writeHead(upstreamRes.statusCode, responseHeaders(upstreamRes.headers));
    // Piped by hand: stream.pipeline costs an AbortController and a DOMException per request (seen in
    // the profile). Either side failing ends the other; the response's 'close' ends the request.
    const up = upstreamRes.body;
    await new Promise<void>((resolve) => {
      up.once('error', (err) => {
        if (!abort.aborted) this.#logger.warn({ route: route.name, err }, 'upstream response cut short');
        res.destroy();
      });
      res.once('close', () => {
        if (!up.destroyed) up.destroy();
        resolve();
      });
      up.pipe(res);
    });
  }
}
