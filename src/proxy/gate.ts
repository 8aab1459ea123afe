// The proxy's decision without the forwarding: authenticate (bearer or session), check revocation,
// evaluate the route's policy, audit the outcome. Forward-auth and websocket upgrades use it, since
// neither goes through the request pipeline of proxy.ts but both must decide exactly as it does.
import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../lib/errors.js';
import type { GatehouseConfig } from '../config/schema.js';
import type { KeyRing } from '../keys/keyring.js';
import type { RevocationSet } from '../revocation/index.js';
import { newAuditId, type AuditLog } from '../audit/index.js';
import type { PartLogger } from '../audit/logger.js';
import type { BrowserAuth, Identity } from '../session/types.js';
import type { Decision } from '../policy/index.js';
import { parseCidr, parseIp, matchCidr, type Cidr } from '../policy/cidr.js';
import { splitHost, type CompiledRoute } from './routes.js';
import { BearerVerifier } from './bearer.js';
import { AssertionSigner } from './assertion.js';
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
}

export type GateOutcome =
  | { kind: 'allow'; identity: Identity | undefined; decision: Decision | undefined }
  /** No credentials (token undefined) or refused credentials (token: why). */
  | { kind: 'unauthenticated'; token?: { code: string; description: string }; auditId?: string }
  | { kind: 'deny'; refusal: Refusal; identity: Identity; decision: Decision };

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

function listHeader(list: readonly string[]): string {
  return list
    .map((v) => (/[,\s%]/.test(v) || !/^[\x21-\x7e]*$/.test(v) ? encodeURIComponent(v) : v))
    .join(',');
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function parseCidrs(list: readonly string[], field: string): Cidr[] {
  return list.map((t) => {
    const c = parseCidr(t);
    if (typeof c === 'string') throw new GatehouseError('ERR_CONFIG_INVALID', c, { field });
    return c;
  });
}

export function inCidrs(cidrs: readonly Cidr[], address: string): boolean {
  const ip = parseIp(address);
  return ip !== undefined && cidrs.some((c) => matchCidr(c, ip));
}

export class Gate {
  readonly bearer: BearerVerifier;
  readonly assertions: AssertionSigner;
  readonly #o: GateOptions;
  readonly #now: () => number;

  constructor(opts: GateOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    const issuer = opts.config.issuer.url;
    this.bearer = new BearerVerifier({
      issuer,
      keys: opts.keys,
      revocations: opts.revocations,
      clockSkewMs: opts.config.tokens.clock_skew,
      cacheSize: opts.config.proxy.token_cache_size,
      now: this.#now,
    });
    this.assertions = new AssertionSigner({
      issuer,
      keys: opts.keys,
      ttlMs: opts.config.proxy.assertion_ttl,
      now: this.#now,
    });
  }

  get browserAuth(): BrowserAuth | undefined {
    return this.#o.browserAuth();
  }

  /** The identity of the request's credentials; throws ERR_TOKEN_* for a refused bearer token. */
  async authenticate(req: IncomingMessage, authorization: string | undefined, route: CompiledRoute) {
    const m = authorization !== undefined ? BEARER.exec(authorization) : null;
    if (m) return this.bearer.verify(m[1] as string, route.audience);
    const auth = this.#o.browserAuth();
    if (!auth) return undefined;
    const identity = await auth.identify(req);
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
      return g.route.policy.evaluate({
        claims: {
          ...identity.claims,
          sub: identity.sub,
          roles: identity.roles,
          groups: identity.groups,
          ...(identity.email !== undefined ? { email: identity.email } : {}),
        },
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

  /** Authenticate, check revocation, decide and audit, as the proxy does for a plain request. */
  async check(g: GateRequest): Promise<GateOutcome> {
    const base = {
      route: g.route.name,
      method: g.method,
      host: g.host,
      path: g.path,
      source_ip: g.sourceIp,
      ...g.audit,
    };
    if (g.route.isPublic(g.path)) return { kind: 'allow', identity: undefined, decision: undefined };
    let identity: Identity | undefined;
    try {
      identity = await this.authenticate(g.req, g.authorization, g.route);
    } catch (e) {
      const auditId = newAuditId();
      if (e instanceof GatehouseError && e.code.startsWith('ERR_TOKEN_')) {
        await this.auditDenied(auditId, {
          ...base,
          stage: 'authentication',
          code: e.code,
          reason: e.message,
        });
        return { kind: 'unauthenticated', token: { code: e.code, description: e.message }, auditId };
      }
      this.#o.logger.error({ err: e, route: g.route.name }, 'authentication failed with an internal error');
      await this.auditDenied(auditId, { ...base, stage: 'authentication', code: 'ERR_INTERNAL' });
      return {
        kind: 'unauthenticated',
        token: { code: 'ERR_INTERNAL', description: 'the request could not be authenticated' },
        auditId,
      };
    }
    if (!identity) return { kind: 'unauthenticated' };
    return this.decideAndAudit(identity, g, base);
  }

  /** Policy and audit for an identity already authenticated (and, from a cache, re-checked for revocation). */
  async decideAndAudit(
    identity: Identity,
    g: Omit<GateRequest, 'req' | 'authorization'>,
    base: Record<string, unknown>,
  ): Promise<GateOutcome> {
    return this.record(identity, this.decide(identity, g), g, base);
  }

  /** Audits a decision and turns it into an outcome (a cached decision is audited again on each use). */
  async record(
    identity: Identity,
    decision: Decision,
    g: Pick<GateRequest, 'route'>,
    base: Record<string, unknown>,
  ): Promise<GateOutcome> {
    const who = this.who(identity);
    if (!decision.allowed) {
      const auditId = newAuditId();
      await this.auditDenied(auditId, { ...base, ...who, stage: 'policy', decision });
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
    this.auditAllowed({ ...base, ...who, rule: decision.rule });
    return { kind: 'allow', identity, decision };
  }

  who(identity: Identity): Record<string, unknown> {
    return {
      sub: identity.sub,
      auth: identity.source,
      ...(identity.jti !== undefined ? { jti: identity.jti } : {}),
      ...(typeof identity.claims.client_id === 'string' ? { client_id: identity.claims.client_id } : {}),
    };
  }

  /** Allowed requests are audited without waiting (as the proxy does); a failure is logged. */
  auditAllowed(data: Record<string, unknown>): void {
    this.#o.audit
      .append('access.allowed', data)
      .catch((err: unknown) => this.#o.logger.error({ err }, 'audit of an allowed request failed'));
  }

  async auditDenied(auditId: string, data: Record<string, unknown>): Promise<void> {
    try {
      await this.#o.audit.append('access.denied', data, { id: auditId });
    } catch (err) {
      this.#o.logger.error({ err, auditId }, 'audit of a denied request failed');
    }
  }

  audit(type: string, data: Record<string, unknown>): void {
    this.#o.audit
      .append(type, data)
      .catch((err: unknown) => this.#o.logger.error({ err, type }, 'audit failed'));
  }

  /** The identity headers an upstream gets (and forward-auth answers with), the assertion included. */
  async identityHeaders(identity: Identity, route: CompiledRoute): Promise<Record<string, string>> {
    const h: Record<string, string> = {
      'x-gatehouse-user': headerSafe(identity.sub),
      'x-gatehouse-groups': listHeader(identity.groups),
      'x-gatehouse-roles': listHeader(identity.roles),
    };
    if (identity.email !== undefined) h['x-gatehouse-email'] = headerSafe(identity.email);
    h['x-gatehouse-assertion'] = await this.assertions.assertionFor(identity, route.audience);
    return h;
  }

  /** The route's public URL for a path (redirect targets never come from request headers). */
  publicUrl(route: CompiledRoute, hostHeader: string, pathAndQuery: string): string {
    const h = splitHost(hostHeader);
    const host = route.host.includes('*') && h ? h.name : route.host;
    return `${route.scheme}//${host}${route.port ? `:${route.port}` : ''}${pathAndQuery}`;
  }

  /** Where a browser signs in, coming back to `returnTo` (what BrowserAuth.startLogin redirects to). */
  loginUrl(returnTo: string): string {
    const issuer = this.#o.config.issuer.url.replace(/\/+$/, '');
    return `${issuer}/.gatehouse/login?rd=${encodeURIComponent(returnTo)}`;
  }
}
