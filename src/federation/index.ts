// Workload federation's public entry: external issuers, trust rules and the verification of subject
// tokens for RFC 8693 token exchange. `createFederation` wires it to the key ring and revocation set.
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { GatehouseConfig } from '../config/schema.js';
import type { KeyRing } from '../keys/keyring.js';
import type { RevocationSet } from '../revocation/index.js';
import { GatehouseError } from '../lib/errors.js';
import type { JwsHeader, KeySource } from '../tokens/verify.js';
import { Federation, type FederationOptions } from './federation.js';

export { Federation, actClaim, buildIssuerRegistry, describeTokenError, tokenHash } from './federation.js';
export type { Grant, OwnTokens, VerifiedToken, FederationOptions } from './federation.js';
export {
  SUBJECT_TOKEN_TYPES,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_ID_TOKEN,
  TOKEN_TYPE_JWT,
} from './federation.js';
export { TrustRules, OWN_ISSUER_NAME } from '../policy/trust-rules.js';
export type { TrustRule, TrustEvaluation, EvaluateTrustInput } from '../policy/trust-rules.js';
export { ExchangeRefusal } from './refusal.js';
export type { RefusalStage } from './refusal.js';
export { parseSubjectTemplate } from '../policy/subject-template.js';

/** Gatehouse's own published keys (next, active, retired) as a key source, looked up by kid. */
export function keyRingSource(keys: KeyRing): KeySource {
  const cache = new Map<string, KeyObject>();
  return {
    async getKey(header: JwsHeader): Promise<KeyObject> {
      const kid = typeof header.kid === 'string' ? header.kid : undefined;
      const key = kid === undefined ? undefined : keys.publicJwks().keys.find((k) => k.kid === kid);
      if (!kid || !key) {
        throw new GatehouseError('ERR_TOKEN_KEY_NOT_FOUND', `Gatehouse has no key ${kid ?? '(no kid)'}`, {
          field: 'kid',
          actual: kid ?? null,
        });
      }
      let k = cache.get(kid);
      if (!k) cache.set(kid, (k = createPublicKey({ key: key as never, format: 'jwk' })));
      return k;
    },
  };
}

/**
 * The federation of a running server, or undefined when no external issuer and no trust rule is
 * configured (then token exchange answers that it is not configured).
 */
export function createFederation(
  config: GatehouseConfig,
  deps: { keys: KeyRing; revocations: RevocationSet; now: () => number } & Omit<
    FederationOptions,
    'own' | 'now'
  >,
): Federation | undefined {
  if (config.external_issuers.length === 0 && config.trust_rules.length === 0) return undefined;
  const { keys, revocations, now, ...rest } = deps;
  return new Federation(config, {
    ...rest,
    now,
    own: {
      issuer: config.issuer.url,
      keys: keyRingSource(keys),
      clockSkewSec: Math.floor(config.tokens.clock_skew / 1000),
      revoked: (claims) => {
        const r = revocations.check({
          iss: typeof claims.iss === 'string' ? claims.iss : undefined,
          jti: typeof claims.jti === 'string' ? claims.jti : undefined,
          sub: typeof claims.sub === 'string' ? claims.sub : undefined,
          client_id: typeof claims.client_id === 'string' ? claims.client_id : undefined,
          iat: typeof claims.iat === 'number' ? claims.iat : undefined,
        });
        return r ? `${r.kind} ${r.kind === 'jti' ? '' : r.value}`.trim() : undefined;
      },
    },
  });
}
