// Workload federation: verifies subject and actor tokens (external issuers through the IssuerRegistry,
// Gatehouse's own access tokens with its key ring and revocation set), evaluates the trust rules and
// works out what the issued token carries. Refusals are ExchangeRefusal; nothing here mints or audits.
import { createHash } from 'node:crypto';
import type { GatehouseConfig } from '../config/schema.js';
import { GatehouseError } from '../lib/errors.js';
import { JwksCache } from '../tokens/jwks-cache.js';
import { IssuerRegistry, type IssuerEntry } from '../tokens/issuer-registry.js';
import {
  DEFAULT_CLOCK_SKEW_SEC,
  peekIssuer,
  verifyJwt,
  type KeySource,
  type JsonObject,
} from '../tokens/verify.js';
import { TYP_ACCESS_TOKEN } from '../tokens/sign.js';
import { matchGlob, type Reason } from '../policy/index.js';
import { lookupClaim } from '../policy/claim-path.js';
import { describeReason } from '../policy/explain.js';
import { ExchangeRefusal } from './refusal.js';
import { OWN_ISSUER_NAME, TrustRules, type TrustEvaluation, type TrustRule } from '../policy/trust-rules.js';

export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
export const SUBJECT_TOKEN_TYPES = [TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_ACCESS_TOKEN] as const;

/** How Gatehouse's own access tokens are checked when they come back as subject or actor tokens. */
export interface OwnTokens {
  issuer: string;
  keys: KeySource;
  /** A reason when the token is revoked, else undefined. */
  revoked(claims: JsonObject): string | undefined;
  clockSkewSec: number;
}

export interface FederationOptions {
  fetch?: typeof fetch;
  now?: () => number;
  own?: OwnTokens;
  /** JWKS refetch cooldown in seconds (default 30); tests shorten it. */
  jwksCooldownSec?: number;
}

export interface VerifiedToken {
  /** The configured issuer name (`gatehouse` for Gatehouse's own tokens). */
  issuerName: string;
  iss: string;
  claims: JsonObject;
  kid: string | undefined;
  /** The token's `exp` (epoch seconds). */
  exp: number;
  /** Epoch ms from which the verifier refuses the token as expired: `exp` plus its issuer's clock skew. */
  acceptedUntil: number;
  /** What may be recorded about the token: never the token itself. */
  fingerprint: { iss: string; sub: unknown; jti: unknown; sha256: string };
}

/** A use of a subject token under a `single_use` rule, as the store records it. */
export interface SubjectTokenUse {
  issuer: string;
  jti: string;
  /** Epoch ms after which the record may go: the token is refused as expired from then on. */
  expiresAt: number;
}

export interface Grant {
  rule: TrustRule;
  sub: string;
  roles: string[];
  audiences: string[];
  claims: Record<string, unknown>;
  act?: Record<string, unknown>;
  /** Lifetime ceiling of the rule, when it sets one. */
  maxTtlMs: number | undefined;
  /** The issued token's `exp` may not be later (epoch seconds): the subject token's `exp`, unless the rule says `outlive_subject`. */
  notAfter: number | undefined;
  /** Under a `single_use` rule: the use to record before issuing (a second one is refused). */
  singleUse: SubjectTokenUse | undefined;
}

/** First 16 hex characters of the token's SHA-256: enough to correlate, useless to replay. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

/** One JwksCache per configured external issuer, built at start; unknown issuers never fetch. */
export function buildIssuerRegistry(config: GatehouseConfig, opts: FederationOptions = {}): IssuerRegistry {
  return new IssuerRegistry(
    config.external_issuers.map((x): IssuerEntry => ({
      name: x.name,
      issuer: x.issuer,
      audience: x.audiences,
      algorithms: x.algorithms,
      clockSkewSec: Math.floor((x.clock_skew ?? config.tokens.clock_skew) / 1000),
      ...(x.max_token_age !== undefined ? { maxAgeSec: Math.floor(x.max_token_age / 1000) } : {}),
      ...(opts.now ? { now: opts.now } : {}),
      keys: new JwksCache({
        issuer: x.issuer,
        ...(x.jwks ? { pinnedJwks: x.jwks } : {}),
        ...(x.jwks_uri ? { jwksUri: x.jwks_uri } : {}),
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
        ...(opts.now ? { now: opts.now } : {}),
        ...(opts.jwksCooldownSec !== undefined ? { cooldownSec: opts.jwksCooldownSec } : {}),
      }),
    })),
  );
}

const iso = (s: unknown): string =>
  typeof s === 'number' && Number.isFinite(s) ? new Date(s * 1000).toISOString() : String(s);

/** The verifier's refusal in one line for the client: what failed, and the numbers to fix it. */
export function describeTokenError(e: GatehouseError): string {
  const d = e.details;
  switch (e.code) {
    case 'ERR_TOKEN_EXPIRED':
      return `${e.message}: exp ${iso(d.exp)}, server time ${iso(d.serverTime)}`;
    case 'ERR_TOKEN_NOT_YET_VALID':
      return `${e.message}: nbf ${iso(d.nbf)}, server time ${iso(d.serverTime)}`;
    case 'ERR_TOKEN_ISSUED_IN_FUTURE':
    case 'ERR_TOKEN_TOO_OLD':
      return `${e.message}: iat ${iso(d.iat)}, server time ${iso(d.serverTime)}`;
    case 'ERR_TOKEN_ISSUER_UNKNOWN':
      return `${e.message}: iss ${JSON.stringify(d.actual)}; configured: ${(d.expected as string[]).map((s) => JSON.stringify(s)).join(', ') || '(none)'} (compared exactly, trailing slash included)`;
    case 'ERR_TOKEN_AUDIENCE_MISMATCH':
      return `${e.message}: expected one of ${JSON.stringify(d.expected)}, token has ${JSON.stringify(d.actual)}`;
    case 'ERR_TOKEN_ISSUER_MISMATCH':
    case 'ERR_TOKEN_TYPE_MISMATCH':
    case 'ERR_TOKEN_ALG_NOT_ALLOWED':
      return `${e.message}: expected ${JSON.stringify(d.expected)}, actual ${JSON.stringify(d.actual)}`;
    default:
      return e.message;
  }
}

export class Federation {
  readonly registry: IssuerRegistry;
  readonly rules: TrustRules;
  readonly #own: OwnTokens | undefined;
  readonly #now: () => number;
  readonly #names: Map<string, string>;

  constructor(config: GatehouseConfig, opts: FederationOptions = {}) {
    this.registry = buildIssuerRegistry(config, opts);
    this.rules = TrustRules.compile(
      config.trust_rules,
      config.external_issuers.map((x) => x.name),
    );
    this.#own = opts.own;
    this.#now = opts.now ?? Date.now;
    this.#names = new Map(config.external_issuers.map((x) => [x.issuer, x.name]));
  }

  /**
   * Verifies a subject or actor token of the given RFC 8693 type. Throws ExchangeRefusal
   * (`invalid_request`, stage `token`; `temporarily_unavailable` when an issuer's keys cannot be had).
   */
  async verify(
    token: string,
    tokenType: string,
    role: 'subject_token' | 'actor_token',
  ): Promise<VerifiedToken> {
    if (!(SUBJECT_TOKEN_TYPES as readonly string[]).includes(tokenType)) {
      throw new ExchangeRefusal(
        'invalid_request',
        'request',
        `${role}_type "${tokenType.slice(0, 100)}" is not supported; use one of ${SUBJECT_TOKEN_TYPES.join(', ')}`,
        { field: `${role}_type`, expected: SUBJECT_TOKEN_TYPES, actual: tokenType.slice(0, 100) },
      );
    }
    const sha256 = tokenHash(token);
    const iss = peekIssuer(token);
    const own = this.#own;
    const fail = (e: unknown): never => {
      if (!(e instanceof GatehouseError)) throw e;
      const fetchFailed = e.code === 'ERR_JWKS_FETCH_FAILED' || e.code === 'ERR_JWKS_INVALID';
      throw new ExchangeRefusal(
        fetchFailed ? 'temporarily_unavailable' : 'invalid_request',
        fetchFailed ? 'unavailable' : 'token',
        `${role} is not valid: ${describeTokenError(e)}${fetchFailed ? ' (the issuer’s keys could not be fetched; try again later)' : ''}`,
        {
          code: e.code,
          ...e.details,
          token: undefined,
          [role === 'subject_token' ? 'subject' : 'actor']: { iss: iss ?? null, sha256 },
        },
      );
    };
    try {
      if (tokenType === TOKEN_TYPE_ACCESS_TOKEN) {
        if (!own || iss !== own.issuer) {
          throw new GatehouseError(
            'ERR_TOKEN_ISSUER_UNKNOWN',
            `${role_type(role)} access_token is only for Gatehouse's own access tokens`,
            {
              field: 'iss',
              expected: own ? [own.issuer] : [],
              actual: iss ?? null,
              hint: `send tokens of external issuers as ${TOKEN_TYPE_JWT}`,
            },
          );
        }
        const v = await verifyJwt(token, {
          issuer: own.issuer,
          keys: own.keys,
          algorithms: ['ES256', 'RS256', 'EdDSA'],
          typ: TYP_ACCESS_TOKEN,
          // Only tokens asked for Gatehouse itself may be exchanged: a token a service received for its
          // own audience must not be turned into a token for another.
          audience: own.issuer,
          clockSkewSec: own.clockSkewSec,
          now: this.#now,
        });
        const revoked = own.revoked(v.claims);
        if (revoked)
          throw new GatehouseError('ERR_TOKEN_REVOKED', `token was revoked (${revoked})`, { field: 'jti' });
        const exp = v.claims.exp as number;
        return {
          issuerName: OWN_ISSUER_NAME,
          iss: own.issuer,
          claims: v.claims,
          kid: v.kid,
          exp,
          acceptedUntil: Math.ceil(exp + own.clockSkewSec) * 1000,
          fingerprint: { iss: own.issuer, sub: v.claims.sub, jti: v.claims.jti, sha256 },
        };
      }
      if (own && iss === own.issuer && !this.registry.get(iss)) {
        throw new GatehouseError('ERR_TOKEN_TYPE_MISMATCH', 'this is a Gatehouse access token', {
          field: `${role}_type`,
          expected: TOKEN_TYPE_ACCESS_TOKEN,
          actual: tokenType,
        });
      }
      const v = await this.registry.verify(token);
      const name = v.entry.name ?? this.#names.get(v.entry.issuer) ?? v.entry.issuer;
      // The strict verifier has checked exp is a finite number.
      const exp = v.claims.exp as number;
      return {
        issuerName: name,
        iss: v.entry.issuer,
        claims: v.claims,
        kid: v.kid,
        exp,
        acceptedUntil: Math.ceil(exp + (v.entry.clockSkewSec ?? DEFAULT_CLOCK_SKEW_SEC)) * 1000,
        fingerprint: { iss: v.entry.issuer, sub: v.claims.sub, jti: v.claims.jti, sha256 },
      };
    } catch (e) {
      return fail(e);
    }
  }

  /** Evaluates the trust rules for a verified subject (and actor). */
  evaluate(subject: VerifiedToken, actor?: VerifiedToken, only?: string): TrustEvaluation {
    return this.rules.evaluate({
      issuer: subject.issuerName,
      claims: subject.claims,
      ...(actor ? { actorClaims: actor.claims } : {}),
      now: new Date(this.#now()),
      ...(only !== undefined ? { only } : {}),
    });
  }

  /**
   * The whole decision: rules, then the first matched rule that grants every audience asked, then the
   * issued token's subject and claims. Throws ExchangeRefusal (stage `policy` or `target`).
   */
  decide(
    subject: VerifiedToken,
    actor: VerifiedToken | undefined,
    audiences: readonly string[],
  ): Grant & { evaluation: TrustEvaluation } {
    const evaluation = this.evaluate(subject, actor);
    const d = evaluation.decision;
    if (!evaluation.allowed) {
      const why = d.rule
        ? `denied by rule "${d.rule}"${d.message ? `: ${d.message}` : ''}`
        : d.closest
          ? `closest rule "${d.closest.rule}" failed on ${describeReason(d.closest.failed)}${d.message ? `; ${d.message}` : ''}`
          : (d.reasons[0]?.message ?? 'no rule matched');
      // Rules left out because of delegation are named too: "it would match, but not with an actor".
      const byDelegation = d.reasons
        .filter((r) => r.criterion === 'delegation' && r.rule !== d.closest?.rule)
        .slice(0, 3)
        .map((r) => `rule "${r.rule}": ${r.message ?? 'delegation'}`);
      throw new ExchangeRefusal(
        'invalid_request',
        'policy',
        `no trust rule accepts this token (issuer "${subject.issuerName}"): ${why}${byDelegation.length ? `; ${byDelegation.join('; ')}` : ''}`,
        { issuer: subject.issuerName, ...(d.closest ? { closest: d.closest.rule } : {}) },
        d.reasons,
      );
    }
    const rule = evaluation.matched.find((r) =>
      audiences.every((a) => r.audiences.some((p) => matchGlob(p, a))),
    );
    if (!rule) {
      const first = evaluation.matched[0] as TrustRule;
      const bad = audiences.find((a) => !first.audiences.some((p) => matchGlob(p, a))) ?? '';
      throw new ExchangeRefusal(
        'invalid_target',
        'target',
        `audience "${bad}" is not granted: rule "${first.name}" matched and allows ${first.audiences.map((a) => JSON.stringify(a)).join(', ')}`,
        { field: 'audience', expected: first.audiences, actual: bad, rule: first.name },
        d.reasons,
      );
    }
    const rendered = rule.subject.render(subject.claims);
    if (!rendered.ok) {
      const reason: Reason = {
        rule: rule.name,
        criterion: 'grant.subject',
        path: `trust_rules[${rule.index}].grant.subject`,
        passed: false,
        expected: rule.subject.source,
        actual: undefined,
        message: `claim ${rendered.missing} ${rendered.why}`,
      };
      throw new ExchangeRefusal(
        'invalid_request',
        'policy',
        `rule "${rule.name}" matched, but its subject template ${rule.subject.source} needs claim "${rendered.missing}", which ${rendered.why} in the token`,
        { rule: rule.name, field: rendered.missing },
        [...d.reasons, reason],
      );
    }
    let singleUse: SubjectTokenUse | undefined;
    if (rule.singleUse) {
      // Replay protection keys on iss + jti (RFC 7519 §4.1.7): a token without a jti cannot be told apart.
      const jti = subject.claims.jti;
      if (typeof jti !== 'string' || jti === '') {
        throw new ExchangeRefusal(
          'invalid_request',
          'policy',
          `rule "${rule.name}" matched, but it accepts each subject token once (single_use) and this token has no jti to tell it apart; the issuer "${subject.issuerName}" must put a jti in its tokens, or the rule must not be single_use`,
          {
            rule: rule.name,
            field: 'jti',
            expected: 'a non-empty string',
            actual: jti === undefined ? 'missing' : typeof jti,
          },
          d.reasons,
        );
      }
      singleUse = { issuer: subject.iss, jti, expiresAt: subject.acceptedUntil };
    }
    const claims: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const { name, path } of [...rule.copy, ...rule.map]) {
      const found = lookupClaim(subject.claims, path);
      if (found.found) claims[name] = found.value;
    }
    return {
      rule,
      sub: rendered.value,
      roles: [...rule.roles],
      audiences: [...audiences],
      claims: { ...claims },
      ...(actor
        ? { act: actClaim(actor) }
        : isObject(subject.claims.act)
          ? { act: pruneAct(subject.claims.act, 0) } // a delegated token keeps its chain when re-exchanged
          : {}),
      maxTtlMs: rule.maxTtlMs,
      notAfter: rule.outliveSubject ? undefined : Math.floor(subject.exp),
      singleUse,
      evaluation,
    };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function role_type(role: string): string {
  return `${role}_type`;
}

/**
 * RFC 8693 §4.1: `act` names the current actor; an actor that was itself acting for someone keeps that
 * chain nested under it. Only `sub`, `iss` (and `client_id` for Gatehouse tokens) are carried.
 */
export function actClaim(actor: VerifiedToken): Record<string, unknown> {
  const act: Record<string, unknown> = { sub: actor.claims.sub, iss: actor.iss };
  const prior = actor.claims.act;
  if (prior && typeof prior === 'object' && !Array.isArray(prior))
    act.act = pruneAct(prior as Record<string, unknown>, 0);
  return act;
}

function pruneAct(a: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof a.sub === 'string') out.sub = a.sub;
  if (typeof a.iss === 'string') out.iss = a.iss;
  const next = a.act;
  if (depth < 8 && next && typeof next === 'object' && !Array.isArray(next))
    out.act = pruneAct(next as Record<string, unknown>, depth + 1);
  return out;
}
