// The signed identity sent upstream in X-Gatehouse-Assertion: a short-lived JWT (aud = the route's
// audience, typ gatehouse-assertion+jwt) that the upstream verifies with Gatehouse's JWKS. One per
// identity and route, reused until shortly before it expires.
import { LRUCache } from 'lru-cache';
import type { KeyRing } from '../keys/keyring.js';
import { newJti, signJwt, TYP_ASSERTION } from '../tokens/sign.js';
import type { Identity } from '../session/types.js';

export interface AssertionSignerOptions {
  issuer: string;
  keys: KeyRing;
  ttlMs: number;
  now: () => number;
  cacheSize?: number;
  /** Told of every cache lookup (metrics). */
  onCache?: (hit: boolean) => void;
}

interface Entry {
  token: string;
  /** Epoch ms after which a fresh assertion is signed. */
  refreshAt: number;
  kid: string;
}

export class AssertionSigner {
  readonly #opts: AssertionSignerOptions;
  readonly #cache: LRUCache<string, Entry>;

  constructor(opts: AssertionSignerOptions) {
    this.#opts = opts;
    this.#cache = new LRUCache({ max: opts.cacheSize ?? 10_000 });
  }

  async assertionFor(identity: Identity, audience: string): Promise<string> {
    const now = this.#opts.now();
    const activeKid = this.#opts.keys.active().kid;
    const key = JSON.stringify([
      audience,
      identity.source,
      identity.sub,
      identity.email ?? null,
      identity.name ?? null,
      identity.groups,
      identity.roles,
      identity.sessionId ?? null,
      identity.claims.client_id ?? null,
    ]);
    const hit = this.#cache.get(key);
    // A key rotation retires cached assertions too, so upstreams see the new kid promptly.
    const fresh = hit !== undefined && hit.refreshAt > now && hit.kid === activeKid;
    this.#opts.onCache?.(fresh);
    if (fresh) return hit.token;
    const iat = Math.floor(now / 1000);
    const ttlSec = Math.max(1, Math.round(this.#opts.ttlMs / 1000));
    const clientId = identity.claims.client_id;
    const { token, kid } = await signJwt(
      this.#opts.keys,
      {
        iss: this.#opts.issuer,
        sub: identity.sub,
        aud: audience,
        iat,
        nbf: iat,
        exp: iat + ttlSec,
        jti: newJti(),
        auth: identity.source,
        groups: identity.groups,
        roles: identity.roles,
        ...(identity.email !== undefined ? { email: identity.email } : {}),
        ...(identity.name !== undefined ? { name: identity.name } : {}),
        ...(typeof clientId === 'string' ? { client_id: clientId } : {}),
        ...(identity.sessionId !== undefined && identity.source === 'session'
          ? { sid: identity.sessionId }
          : {}),
      },
      TYP_ASSERTION,
    );
    // Reused for the first half of its life at most, so an upstream never gets one about to expire.
    this.#cache.set(key, { token, kid, refreshAt: now + Math.min(ttlSec * 500, ttlSec * 1000 - 15_000) });
    return token;
  }
}
