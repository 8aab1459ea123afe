// Bearer tokens at the proxy: Gatehouse's own access tokens, verified by the strict verifier against the
// key ring, cached under a SHA-256 of the whole token, and checked against the revocation set from
// memory on every request (after the cache, so a revocation takes effect at once).
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { GatehouseError } from '../lib/errors.js';
import type { KeyRing } from '../keys/keyring.js';
import type { RevocationSet } from '../revocation/index.js';
import { verifyJwt, type JwsHeader, type JsonObject } from '../tokens/verify.js';
import { TYP_ACCESS_TOKEN } from '../tokens/sign.js';
import type { Identity } from '../session/types.js';

export interface BearerVerifierOptions {
  issuer: string;
  keys: KeyRing;
  revocations: RevocationSet;
  clockSkewMs: number;
  cacheSize: number;
  now: () => number;
  /** Told of every verification cache lookup (metrics). */
  onCache?: (hit: boolean) => void;
}

interface Cached {
  claims: JsonObject;
  /** exp in ms (the entry is useless after it). */
  expMs: number;
  /** The audience this entry was verified for: a token is verified once per audience. */
  audience: string;
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
   * The identity of a bearer token for `audience`, or a GatehouseError (ERR_TOKEN_*) saying why not.
   */
  async verify(token: string, audience: string): Promise<Identity> {
    const now = this.#opts.now();
    const hash = createHash('sha256').update(token).digest('base64url');
    let entry = this.#cache?.get(hash);
    if (entry && (entry.audience !== audience || now > entry.expMs + this.#opts.clockSkewMs)) {
      entry = undefined;
    }
    this.#opts.onCache?.(entry !== undefined);
    if (!entry) {
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
        throw new GatehouseError(
          'ERR_TOKEN_CLAIM_INVALID',
          'the token needs a string sub and a numeric exp',
          {
            field: 'exp',
          },
        );
      }
      // Exact audience: a token for `https://app/` must not pass on `https://app/admin/` by prefix.
      const aud = verified.claims.aud;
      if (!(Array.isArray(aud) ? aud.includes(audience) : aud === audience)) {
        throw new GatehouseError('ERR_TOKEN_AUDIENCE_MISMATCH', 'the token is not for this route', {
          field: 'aud',
          expected: audience,
        });
      }
      entry = { claims: verified.claims, expMs: exp * 1000, audience };
      const ttl = Math.max(1, entry.expMs + this.#opts.clockSkewMs - now);
      this.#cache?.set(hash, entry, { ttl });
    }
    const c = entry.claims as Record<string, unknown>;
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    const revoked = this.#opts.revocations.check({
      iss: str(c.iss),
      jti: str(c.jti),
      sub: str(c.sub),
      client_id: str(c.client_id),
      sid: str(c.sid),
      iat: typeof c.iat === 'number' ? c.iat : undefined,
    });
    if (revoked) {
      throw new GatehouseError('ERR_TOKEN_REVOKED', 'the token has been revoked', { field: revoked.kind });
    }
    return identityOfClaims(entry.claims);
  }

  /** Forgets cached keys (after a key rotation reload). */
  resetKeys(): void {
    this.#publicKeys.clear();
  }
}
