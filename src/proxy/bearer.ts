// Bearer tokens at the proxy: Gatehouse's own access tokens, verified by the strict verifier against the
// key ring, and (on routes with `trust_rules`) external issuers' tokens, verified by the federation and
// accepted through a trust rule. Both are cached under a SHA-256 of the whole token, never past its exp,
// and checked against the revocation set from memory on every request (after the cache).
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { GatehouseError } from '../lib/errors.js';
import type { KeyRing } from '../keys/keyring.js';
import type { RevocationSet } from '../revocation/index.js';
import { peekIssuer, verifyJwt, type JwsHeader, type JsonObject } from '../tokens/verify.js';
import { TYP_ACCESS_TOKEN } from '../tokens/sign.js';
import type { Identity } from '../session/types.js';
import type { RevocationCheckInput } from '../revocation/index.js';
import { TOKEN_TYPE_JWT, type Federation } from '../federation/federation.js';
import { ExchangeRefusal } from '../federation/refusal.js';

export interface BearerVerifierOptions {
  issuer: string;
  keys: KeyRing;
  revocations: RevocationSet;
  clockSkewMs: number;
  cacheSize: number;
  now: () => number;
  /** Told of every verification cache lookup (metrics). */
  onCache?: (hit: boolean) => void;
  /** The running federation (read per verification: reload swaps it), for external issuers' tokens. */
  federation?: () => Federation | undefined;
}

interface Cached {
  identity: Identity;
  /** What the revocation set is asked on every use. */
  query: RevocationCheckInput;
  /** Epoch ms after which the entry is not used (exp, plus the clock skew for Gatehouse's tokens). */
  validUntil: number;
  /** The audience this entry was verified for: a token is verified once per audience. */
  audience: string;
  /** For an external token: the trust rules it was accepted under and the federation that decided. */
  accepts?: string;
  federation?: Federation;
}

const ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;

function stringList(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return typeof v === 'string' ? [v] : [];
}

/** The identity of verified token claims: roles from `roles`, groups from `groups`. */
export function identityOfClaims(claims: JsonObject): Identity {
  const c = claims as Record<string, unknown>;
  return {
    sub: String(c.sub),
    ...(typeof c.email === 'string' ? { email: c.email } : {}),
    ...(typeof c.name === 'string' ? { name: c.name } : {}),
    groups: stringList(c.groups),
    roles: stringList(c.roles),
    claims: { ...c },
    source: 'bearer',
    ...(typeof c.jti === 'string' ? { jti: c.jti } : {}),
    ...(typeof c.exp === 'number' ? { exp: c.exp } : {}),
    ...(typeof c.sid === 'string' ? { sessionId: c.sid } : {}),
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export class BearerVerifier {
  readonly #opts: BearerVerifierOptions;
  readonly #cache: LRUCache<string, Cached> | undefined;
  readonly #publicKeys = new Map<string, KeyObject>();

  constructor(opts: BearerVerifierOptions) {
    this.#opts = opts;
    this.#cache = opts.cacheSize > 0 ? new LRUCache<string, Cached>({ max: opts.cacheSize }) : undefined;
  }

  /** Only the key ring's own public keys, looked up by kid; never a key the token brings. */
  #getKey = (header: JwsHeader): Promise<KeyObject> => {
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    const loaded = kid === undefined ? undefined : this.#opts.keys.find(kid);
    if (!loaded || kid === undefined) {
      return Promise.reject(
        new GatehouseError('ERR_TOKEN_KEY_NOT_FOUND', 'no Gatehouse key matches the token kid', {
          field: 'kid',
        }),
      );
    }
    let key = this.#publicKeys.get(kid);
    if (!key) {
      key = createPublicKey({ key: loaded.publicJwk as JsonWebKey, format: 'jwk' });
      this.#publicKeys.set(kid, key);
    }
    return Promise.resolve(key);
  };

  /**
   * The identity of a bearer token for `audience`, or a GatehouseError (ERR_TOKEN_*) saying why not. A
   * token of another issuer is taken only when `trustRules` is given (the route's `trust_rules`): then
   * the federation verifies it and one of those rules must accept it and grant `audience`; its refusal
   * is an ExchangeRefusal that explains itself.
   */
  async verify(token: string, audience: string, trustRules?: readonly string[]): Promise<Identity> {
    const now = this.#opts.now();
    const hash = createHash('sha256').update(token).digest('base64url');
    const accepts = trustRules?.length ? trustRules.join('\n') : undefined;
    let entry = this.#cache?.get(hash);
    if (
      entry &&
      (entry.audience !== audience ||
        now > entry.validUntil ||
        (entry.accepts !== undefined &&
          (entry.accepts !== accepts || entry.federation !== this.#opts.federation?.())))
    ) {
      entry = undefined;
    }
    this.#opts.onCache?.(entry !== undefined);
    if (!entry) {
      entry =
        accepts !== undefined && peekIssuer(token) !== this.#opts.issuer
          ? await this.#verifyExternal(token, audience, trustRules as readonly string[], accepts, now)
          : await this.#verifyOwn(token, audience, now);
      const ttl = entry.validUntil - now;
      if (ttl > 0) this.#cache?.set(hash, entry, { ttl });
    }
    const revoked = this.#opts.revocations.check(entry.query);
    if (revoked) {
      throw new GatehouseError('ERR_TOKEN_REVOKED', 'the token has been revoked', { field: revoked.kind });
    }
    return entry.identity;
  }

  async #verifyOwn(token: string, audience: string, _now: number): Promise<Cached> {
    const verified = await verifyJwt(token, {
      issuer: this.#opts.issuer,
      keys: this.#getKey,
      algorithms: ALGORITHMS,
      audience,
      typ: TYP_ACCESS_TOKEN,
      clockSkewSec: Math.round(this.#opts.clockSkewMs / 1000),
      requiredClaims: ['sub', 'exp', 'jti'],
      now: this.#opts.now,
    });
    const exp = verified.claims.exp;
    if (typeof exp !== 'number' || typeof verified.claims.sub !== 'string') {
      throw new GatehouseError('ERR_TOKEN_CLAIM_INVALID', 'the token needs a string sub and a numeric exp', {
        field: 'exp',
      });
    }
    // Exact audience: a token for `https://app/` must not pass on `https://app/admin/` by prefix.
    const aud = verified.claims.aud;
    if (!(Array.isArray(aud) ? aud.includes(audience) : aud === audience)) {
      throw new GatehouseError('ERR_TOKEN_AUDIENCE_MISMATCH', 'the token is not for this route', {
        field: 'aud',
        expected: audience,
      });
    }
    const c = verified.claims as Record<string, unknown>;
    return {
      identity: identityOfClaims(verified.claims),
      query: {
        iss: str(c.iss),
        jti: str(c.jti),
        sub: str(c.sub),
        client_id: str(c.client_id),
        sid: str(c.sid),
        iat: typeof c.iat === 'number' ? c.iat : undefined,
      },
      validUntil: exp * 1000 + this.#opts.clockSkewMs,
      audience,
    };
  }

  /** An external issuer's token: the federation verifies it, and one of the route's rules must grant it. */
  async #verifyExternal(
    token: string,
    audience: string,
    trustRules: readonly string[],
    accepts: string,
    now: number,
  ): Promise<Cached> {
    const federation = this.#opts.federation?.();
    if (!federation) {
      throw new GatehouseError('ERR_TOKEN_ISSUER_UNKNOWN', 'no external issuer is configured', {
        field: 'iss',
      });
    }
    // Unknown issuers are refused by the registry before any key is fetched.
    const verified = await federation.verify(token, TOKEN_TYPE_JWT, 'subject_token');
    const grant = federation.decide(verified, undefined, [audience]);
    if (!trustRules.includes(grant.rule.name)) {
      throw new ExchangeRefusal(
        'invalid_request',
        'policy',
        `trust rule "${grant.rule.name}" accepts this token, but this route takes only ${trustRules.map((r) => `"${r}"`).join(', ')}`,
        { issuer: verified.issuerName, rule: grant.rule.name, expected: [...trustRules] },
        grant.evaluation.decision.reasons,
      );
    }
    const c = verified.claims as Record<string, unknown>;
    const exp = typeof c.exp === 'number' ? c.exp * 1000 : now;
    const jti = str(c.jti);
    const identity: Identity = {
      sub: grant.sub,
      groups: [],
      roles: grant.roles,
      claims: { ...grant.claims, iss: verified.iss, sub: c.sub, trust_rule: grant.rule.name },
      source: 'bearer',
      ...(jti !== undefined ? { jti } : {}),
      ...(typeof c.exp === 'number' ? { exp: c.exp } : {}),
    };
    return {
      identity,
      query: { iss: verified.iss, jti, sub: grant.sub, iat: typeof c.iat === 'number' ? c.iat : undefined },
      // Never past the token's own exp (no skew added for a token Gatehouse did not issue).
      validUntil: exp,
      audience,
      accepts,
      federation,
    };
  }

  /** Forgets cached keys (after a key rotation reload). */
  resetKeys(): void {
    this.#publicKeys.clear();
  }
}
