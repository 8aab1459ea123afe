// The proxy's one decision path: authenticate (a bearer token — Gatehouse's own, or an external issuer's
// through the route's trust rules — or a session), check revocation, evaluate the route's policy, and
// record the outcome (shadow mode, audit of denials and of allows per `audit.allows`, decision metrics).
// The HTTP proxy, forward-auth and websocket upgrades all decide here, with one set of caches.
import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../lib/errors.js';
import type { GatehouseConfig } from '../config/schema.js';
import type { KeyRing } from '../keys/keyring.js';
import type { RevocationSet } from '../revocation/index.js';
import { newAuditId, redactUntrusted, type AuditLog, type FloodGuard } from '../audit/index.js';
import type { PartLogger } from '../audit/logger.js';
import { GATEHOUSE_COOKIE_PREFIXES, type BrowserAuth, type Identity } from '../session/types.js';
import type { Decision, Reason } from '../policy/index.js';
import { clientAddress, inCidrs, parseCidr, requestClientAddress, type Cidr } from '../policy/cidr.js';
import { ExchangeRefusal } from '../federation/refusal.js';
import type { Federation } from '../federation/federation.js';
import type { Metrics } from '../server/metrics.js';
import { splitHost, type CompiledRoute } from './routes.js';
import { BearerVerifier } from './bearer.js';
import { AssertionSigner } from './assertion.js';
import { DecisionRecorder, denialReason } from './decisions.js';
import { missingRequirement, type Refusal } from './responses.js';

export interface GateOptions {
  config: GatehouseConfig;
  keys: KeyRing;
  revocations: RevocationSet;
  audit: AuditLog;
  logger: PartLogger;
  now?: () => number;
  /** Read on every request: sign-in may be attached after the gate is built. */
  browserAuth: () => BrowserAuth | undefined;
  /** Decision and cache metrics; none when absent. */
  metrics?: Metrics;
  /** The running federation (swapped on reload), for external tokens on routes with `trust_rules`. */
  federation?: () => Federation | undefined;
  /** Bounds the records of requests that proved no identity (src/audit/flood-guard.ts); none: one each. */
  refusalGuard?: FloodGuard;
}

/** What the gate needs to know of one request, whatever carried it (a proxied request, an auth subrequest). */
export interface GateRequest {
  /** The request whose cookies identify a browser session. */
  req: IncomingMessage;
  route: CompiledRoute;
  method: string;
  path: string;
  host: string;
  authorization: string | undefined;
  sourceIp: string;
  /** Extra audit fields (`via: 'forward-auth'`). */
  audit?: Record<string, unknown>;
  /**
   * The caller sends this request to sign in when it has no credentials (a browser asking for a page):
   * recorded per `audit.allows`, like an allowed request, rather than always.
   */
  signIn?: boolean;
}

export type GateOutcome =
  | { kind: 'allow'; identity: Identity | undefined; decision: Decision | undefined }
  /** No credentials (token undefined) or refused credentials (token: why). */
  | {
      kind: 'unauthenticated';
      token?: { code: string; description: string };
      /** The record of the refusal (none for a browser sent to sign in). */
      auditId?: string;
      /** For an external token a trust rule refused: the rule and criterion it failed. */
      missing?: Refusal['missing'];
    }
  | { kind: 'deny'; refusal: Refusal; identity?: Identity; decision?: Decision };

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

export function headerSafe(v: string): string {
  // Claims come from verified tokens and sessions, but a header value must still be one line of ASCII.
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

export function listHeader(list: readonly string[]): string {
  return list
    .map((v) => (/[,\s%]/.test(v) || !/^[\x21-\x7e]*$/.test(v) ? encodeURIComponent(v) : v))
    .join(',');
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * The fields every proxy decision record starts with. Path and host are the request's choice: a token
 * in them is replaced by its hash (src/audit/secret-guard.ts), so it is not written and the record is
 * not lost.
 */
export function auditBase(
  g: Pick<GateRequest, 'route' | 'method' | 'path' | 'host' | 'sourceIp'>,
  extra?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    route: g.route.name,
    method: g.method,
    host: redactUntrusted(g.host, 256),
    path: redactUntrusted(g.path, 2048),
    source_ip: g.sourceIp,
    ...extra,
  };
}

/** Whether the request carries one of Gatehouse's own cookies (a session that no longer counts). */
function hasGatehouseCookie(req: IncomingMessage): boolean {
  const cookie = req.headers.cookie;
  if (!cookie) return false;
  return cookie.split(';').some((c) => GATEHOUSE_COOKIE_PREFIXES.some((p) => c.trimStart().startsWith(p)));
}

export function parseCidrs(list: readonly string[], field: string): Cidr[] {
  return list.map((t) => {
    const c = parseCidr(t);
    if (typeof c === 'string') throw new GatehouseError('ERR_CONFIG_INVALID', c, { field });
    return c;
  });
}

// Defined in policy/cidr.ts, where the issuer (which may not import the proxy) finds them too.
export { clientAddress, inCidrs, requestClientAddress };

/** The failed requirement of a trust-rule refusal, safe to show: rule, criterion, expected. */
function trustMissing(e: ExchangeRefusal): Refusal['missing'] {
  const rule = str(e.details.rule) ?? str(e.details.closest);
  const failed: Reason | undefined = e.reasons.find(
    (r) => !r.passed && (rule === undefined || r.rule === rule),
  );
  if (!rule && !failed) return undefined;
  return {
    rule: rule ?? failed?.rule ?? '(none)',
    ...(failed?.criterion ? { criterion: failed.criterion, expected: failed.expected } : {}),
  };
}

export class Gate {
  readonly bearer: BearerVerifier;
  readonly assertions: AssertionSigner;
  readonly #o: GateOptions;
  readonly #now: () => number;
  readonly #decisions: DecisionRecorder;
  // The claims a policy sees, built once per identity (a cached bearer identity is the same object).
  readonly #policyClaims = new WeakMap<Identity, Record<string, unknown>>();

  constructor(opts: GateOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    const issuer = opts.config.issuer.url;
    const cacheCounter = (c: Metrics['verifyCache'] | undefined) =>
      c ? (hit: boolean) => c.inc({ result: hit ? 'hit' : 'miss' }) : undefined;
    this.bearer = new BearerVerifier({
      issuer,
      keys: opts.keys,
      revocations: opts.revocations,
      clockSkewMs: opts.config.tokens.clock_skew,
      cacheSize: opts.config.proxy.token_cache_size,
      now: this.#now,
      onCache: cacheCounter(opts.metrics?.verifyCache),
      ...(opts.federation ? { federation: opts.federation } : {}),
    });
    this.assertions = new AssertionSigner({
      issuer,
      keys: opts.keys,
      ttlMs: opts.config.proxy.assertion_ttl,
      now: this.#now,
      onCache: cacheCounter(opts.metrics?.assertionCache),
    });
    this.#decisions = new DecisionRecorder({
      audit: opts.audit,
      logger: opts.logger,
      settings: opts.config.audit,
      ...(opts.metrics ? { decisions: opts.metrics.proxyDecisions } : {}),
    });
  }

  /** New audit settings after a configuration reload (routes are read per request by the callers). */
  reload(config: GatehouseConfig): void {
    this.#decisions.configure(config.audit);
  }

  get browserAuth(): BrowserAuth | undefined {
    return this.#o.browserAuth();
  }

  /** Counts a decision made outside `check` (a browser sent to sign in is not counted). */
  count(route: string, outcome: 'allowed' | 'denied', reason: string): void {
    this.#decisions.count(route, outcome, reason);
  }

  /**
   * The identity of the request's credentials. Throws GatehouseError (ERR_TOKEN_*) for a refused bearer
   * token, and ExchangeRefusal for an external token the route's trust rules do not accept.
   */
  async authenticate(
    req: IncomingMessage,
    authorization: string | undefined,
    route: CompiledRoute,
    host: string,
  ): Promise<Identity | undefined> {
    const m = authorization !== undefined ? BEARER.exec(authorization) : null;
    if (m) return this.bearer.verify(m[1] as string, route.audience, route.config.trust_rules);
    const auth = this.#o.browserAuth();
    if (!auth) return undefined;
    // A session cookie counts only on the host it was set for (one an upstream saw is no good elsewhere).
    const identity = await auth.identify(req, this.publicHost(route, host));
    return identity && !this.isRevoked(identity) ? identity : undefined;
  }

  /** Whether an identity decided earlier has been revoked since (by jti, subject, client or session). */
  isRevoked(identity: Identity): boolean {
    const c = identity.claims;
    return (
      this.#o.revocations.check({
        iss: str(c.iss),
        jti: identity.jti ?? str(c.jti),
        sub: identity.sub,
        client_id: str(c.client_id),
        sid: identity.sessionId ?? str(c.sid),
        iat: typeof c.iat === 'number' ? c.iat : undefined,
      }) !== undefined
    );
  }

  /** The route's policy on an identity; an exception denies. */
  decide(identity: Identity, g: Omit<GateRequest, 'req' | 'authorization'>): Decision {
    try {
      let claims = this.#policyClaims.get(identity);
      if (!claims) {
        claims = {
          ...identity.claims,
          sub: identity.sub,
          roles: identity.roles,
          groups: identity.groups,
          ...(identity.email !== undefined ? { email: identity.email } : {}),
        };
        this.#policyClaims.set(identity, claims);
      }
      return g.route.policy.evaluate({
        claims,
        request: {
          method: g.method,
          path: g.path,
          host: splitHost(g.host)?.name ?? '',
          sourceIp: g.sourceIp,
        },
        now: new Date(this.#now()),
      });
    } catch (e) {
      this.#o.logger.error({ err: e, route: g.route.name }, 'policy evaluation threw; denying');
      return {
        allowed: false,
        effect: 'deny',
        reasons: [],
        message: 'the policy could not be evaluated',
        shadow: [],
      };
    }
  }

  /** Authenticate, check revocation, decide and record: the whole decision for one request. */
  async check(g: GateRequest): Promise<GateOutcome> {
    if (g.route.isPublic(g.path)) return { kind: 'allow', identity: undefined, decision: undefined };
    const base = auditBase(g, g.audit);
    let identity: Identity | undefined;
    try {
      identity = await this.authenticate(g.req, g.authorization, g.route, g.host);
    } catch (e) {
      return this.#refused(e, g.route, base);
    }
    if (!identity) {
      this.#decisions.count(g.route.name, 'denied', 'unauthenticated');
      const auditId = await this.#auditNoCredentials(g, base);
      return { kind: 'unauthenticated', ...(auditId !== undefined ? { auditId } : {}) };
    }
    return this.record(identity, this.decide(identity, g), g, base);
  }

  /**
   * A request with no credentials is a denial: `access.denied` with reason `no_credentials`, durable
   * before the 401 that names its id. A browser sent to sign in is recorded like an allowed request
   * (per `audit.allows`, not waited for): it is as common as one, needs no explanation, and the sign-in
   * that follows is audited in its own right. Both go through the flood guard.
   */
  async #auditNoCredentials(g: GateRequest, base: Record<string, unknown>): Promise<string | undefined> {
    const data: Record<string, unknown> = {
      ...base,
      stage: 'authentication',
      reason: 'no_credentials',
      expected: 'a bearer token (Authorization: Bearer …) or a Gatehouse session',
      // A Gatehouse cookie that identified no live session: expired, signed out or revoked.
      ...(hasGatehouseCookie(g.req) ? { session_cookie: 'not_valid' } : {}),
    };
    if (g.signIn) {
      const sampled = this.#decisions.sample(g.route.config.audit);
      if (sampled) void this.#appendDenial({ ...data, action: 'sign_in', ...sampled }, g.sourceIp);
      return undefined;
    }
    return this.#appendDenial(data, g.sourceIp);
  }

  /** Policy and audit for an identity already authenticated (and, from a cache, re-checked for revocation). */
  async decideAndAudit(
    identity: Identity,
    g: Omit<GateRequest, 'req' | 'authorization'>,
    base: Record<string, unknown>,
  ): Promise<GateOutcome> {
    return this.record(identity, this.decide(identity, g), g, base);
  }

  /**
   * Records a decision and turns it into an outcome: a denial is audited durably before the answer; a
   * request let through (allowed, or refused on a route in shadow mode) goes to the DecisionRecorder.
   */
  async record(
    identity: Identity,
    decision: Decision,
    g: Pick<GateRequest, 'route'>,
    base: Record<string, unknown>,
  ): Promise<GateOutcome> {
    const shadowRoute = g.route.config.mode === 'shadow';
    if (!decision.allowed && !shadowRoute) {
      const auditId = newAuditId();
      await this.auditDenied(auditId, { ...base, ...this.who(identity), stage: 'policy', decision });
      return {
        kind: 'deny',
        identity,
        decision,
        refusal: {
          status: 403,
          error: 'access_denied',
          description: decision.message ?? `no rule of route "${g.route.name}" lets you in`,
          auditId,
          missing: missingRequirement(decision),
        },
      };
    }
    this.#decisions.passed(
      g.route.name,
      shadowRoute,
      decision,
      () => ({ ...base, ...this.who(identity) }),
      g.route.config.audit,
    );
    return { kind: 'allow', identity, decision };
  }

  /** Refused credentials: recorded through the flood guard, since they prove no identity either. */
  async #refused(e: unknown, route: CompiledRoute, base: Record<string, unknown>): Promise<GateOutcome> {
    const address = String(base.source_ip);
    if (e instanceof GatehouseError && e.code.startsWith('ERR_TOKEN_')) {
      const auditId = await this.auditDenied(
        newAuditId(),
        { ...base, stage: 'authentication', code: e.code, reason: redactUntrusted(e.message) },
        address,
      );
      return { kind: 'unauthenticated', token: { code: e.code, description: e.message }, auditId };
    }
    if (e instanceof ExchangeRefusal) {
      // An external token through the route's trust rules: refused as the token exchange explains it.
      const code =
        e.stage === 'token'
          ? (str(e.details.code) ?? 'ERR_TOKEN_MALFORMED')
          : e.stage === 'target'
            ? 'ERR_INVALID_TARGET'
            : e.stage === 'unavailable'
              ? 'ERR_JWKS_FETCH_FAILED'
              : 'ERR_POLICY_DENIED';
      const auditId = await this.auditDenied(
        newAuditId(),
        {
          ...base,
          stage: e.stage === 'token' || e.stage === 'unavailable' ? 'authentication' : 'trust_rule',
          code,
          reason: redactUntrusted(e.message),
          trust_rules: route.config.trust_rules ?? [],
          ...(e.details.issuer !== undefined ? { issuer: e.details.issuer } : {}),
          ...(e.reasons.length ? { reasons: e.reasons } : {}),
        },
        address,
      );
      if (e.stage === 'unavailable')
        return {
          kind: 'deny',
          refusal: { status: 503, error: 'temporarily_unavailable', description: e.message, auditId },
        };
      const missing = e.stage === 'token' ? undefined : trustMissing(e);
      return {
        kind: 'unauthenticated',
        token: { code, description: e.message },
        auditId,
        ...(missing ? { missing } : {}),
      };
    }
    this.#o.logger.error({ err: e, route: route.name }, 'authentication failed with an internal error');
    const auditId = await this.auditDenied(newAuditId(), {
      ...base,
      stage: 'authentication',
      code: 'ERR_INTERNAL',
    });
    return {
      kind: 'deny',
      refusal: {
        status: 403,
        error: 'access_denied',
        description: 'the request could not be authenticated',
        auditId,
      },
    };
  }

  who(identity: Identity): Record<string, unknown> {
    return {
      sub: identity.sub,
      auth: identity.source,
      ...(identity.jti !== undefined ? { jti: identity.jti } : {}),
      ...(typeof identity.claims.client_id === 'string' ? { client_id: identity.claims.client_id } : {}),
    };
  }

  /**
   * Counts and records a denial, durably, under `auditId`; with `address` (a request that proved no
   * identity) through the flood guard. Resolves the id the client is shown: `auditId`, or the id of the
   * summary that will stand for it. A failed write is logged under that id (the request is refused anyway).
   */
  async auditDenied(auditId: string, data: Record<string, unknown>, address?: string): Promise<string> {
    this.#decisions.count(
      String(data.route),
      'denied',
      denialReason(
        data.decision as Decision | undefined,
        // Without an error code or a decision, the plain reason names it (a websocket's refused Origin).
        (data.code ?? (data.decision === undefined ? data.reason : undefined)) as string | undefined,
      ),
    );
    return this.#appendDenial(data, address, auditId);
  }

  async #appendDenial(
    data: Record<string, unknown>,
    address: string | undefined,
    auditId = newAuditId(),
  ): Promise<string> {
    try {
      const guard = address !== undefined ? this.#o.refusalGuard : undefined;
      if (guard) return (await guard.append('access.denied', data, address as string, { id: auditId })).id;
      await this.#o.audit.append('access.denied', data, { id: auditId });
    } catch (err) {
      this.#o.logger.error({ err, auditId }, 'audit of a denied request failed');
    }
    return auditId;
  }

  audit(type: string, data: Record<string, unknown>, id?: string): void {
    try {
      this.#o.audit
        .append(type, data, id !== undefined ? { id } : undefined)
        .catch((err: unknown) => this.#o.logger.error({ err, type }, 'audit failed'));
    } catch (err) {
      // A record the secret guard refuses is a bug, but never a reason to fail the request.
      this.#o.logger.error({ err, type }, 'audit failed');
    }
  }

  /** The identity headers an upstream gets (and forward-auth answers with), the assertion included. */
  async identityHeaders(
    identity: Identity,
    route: CompiledRoute,
    into: Record<string, string | string[]> = {},
  ): Promise<Record<string, string>> {
    const h = into;
    h['x-gatehouse-user'] = headerSafe(identity.sub);
    if (identity.email !== undefined) h['x-gatehouse-email'] = headerSafe(identity.email);
    h['x-gatehouse-groups'] = listHeader(identity.groups);
    h['x-gatehouse-roles'] = listHeader(identity.roles);
    h['x-gatehouse-assertion'] = await this.assertions.assertionFor(identity, route.audience);
    return into as Record<string, string>;
  }

  /** The route's public URL for a path (redirect targets never come from request headers). */
  publicUrl(route: CompiledRoute, hostHeader: string, pathAndQuery: string): string {
    const h = splitHost(hostHeader);
    const host = route.host.includes('*') && h ? h.name : route.host;
    return `${route.scheme}//${host}${route.port ? `:${route.port}` : ''}${pathAndQuery}`;
  }

  /** The route's public host for a request (a URL's `host`), the host its session cookies are bound to. */
  publicHost(route: CompiledRoute, hostHeader: string): string {
    return new URL(this.publicUrl(route, hostHeader, '/')).host;
  }

  /** Where a browser signs in, coming back to `returnTo` (what BrowserAuth.startLogin redirects to). */
  loginUrl(returnTo: string): string {
    const issuer = this.#o.config.issuer.url.replace(/\/+$/, '');
    return `${issuer}/.gatehouse/login?rd=${encodeURIComponent(returnTo)}`;
  }
}
