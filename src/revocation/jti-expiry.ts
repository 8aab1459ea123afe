// When a revoked jti may be forgotten: once the token it names could no longer pass verification anyway
// (its `exp` plus the clock skew verifiers allow). Every server holds the revocation set in memory, so an
// entry without an end stays there for good; this picks the earliest end that is still safe.

/** Where the end came from, most precise first. */
export type JtiExpiryBasis = 'token.issued' | 'token' | 'lifetime' | 'none';

export interface JtiExpiryInput {
  /** Epoch ms. */
  now: number;
  /** Leeway verifiers give `exp` (`tokens.clock_skew`, or the external issuer's `clock_skew`). */
  clockSkewMs: number;
  /** `exp` (epoch s) of this store's `token.issued` record for the jti: written before the token left. */
  issuedExp?: number;
  /** `exp` (epoch s) of the token itself, when the command was given the token. */
  tokenExp?: number;
  /**
   * The longest a token of the issuer can still pass from now: `tokens.max_ttl` for Gatehouse's own, an
   * external issuer's `max_token_age`. Undefined when nothing bounds it.
   */
  maxLifetimeMs?: number;
}

export interface JtiExpiry {
  /** Epoch ms after which the entry may be forgotten; null keeps it. */
  expiresAt: number | null;
  basis: JtiExpiryBasis;
}

/**
 * The end of a jti revocation. The `token.issued` record is preferred to the token's own `exp`: the audit
 * log is hash-chained, while a token handed to the CLI is decoded without verifying its signature. When
 * neither is known, the token was issued at or before now and lives at most `maxLifetimeMs`.
 */
export function jtiRevocationExpiry(input: JtiExpiryInput): JtiExpiry {
  if (isEpochSeconds(input.issuedExp))
    return { expiresAt: input.issuedExp * 1000 + input.clockSkewMs, basis: 'token.issued' };
  if (isEpochSeconds(input.tokenExp))
    return { expiresAt: input.tokenExp * 1000 + input.clockSkewMs, basis: 'token' };
  if (input.maxLifetimeMs !== undefined)
    return { expiresAt: input.now + input.maxLifetimeMs + input.clockSkewMs, basis: 'lifetime' };
  return { expiresAt: null, basis: 'none' };
}

function isEpochSeconds(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}
