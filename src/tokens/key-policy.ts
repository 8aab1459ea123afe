// Which algorithms Gatehouse verifies and which keys may verify them: the algorithm is bound to the key
// type (RFC 8725 §3.1), so a token can never choose HMAC over an RSA public key, and weak keys are refused.
import { KeyObject } from 'node:crypto';
import type { CryptoKey } from 'jose';

/**
 * Every JWS algorithm the verifier can be configured to accept. HMAC (`HS*`) is deliberately absent: a
 * shared secret cannot be published in a JWKS, and allowing it next to public keys is how RS256→HS256
 * confusion happens. `none` is never accepted.
 */
export const SUPPORTED_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type Algorithm = (typeof SUPPORTED_ALGORITHMS)[number];

const SUPPORTED = new Set<string>(SUPPORTED_ALGORITHMS);

export function isSupportedAlgorithm(alg: string): alg is Algorithm {
  return SUPPORTED.has(alg);
}

/** Programmer or configuration misuse: an allow-list naming something we never verify. */
export function assertAlgorithmList(algorithms: readonly string[]): void {
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new TypeError('algorithms must be a non-empty list');
  }
  for (const alg of algorithms) {
    if (!isSupportedAlgorithm(alg)) {
      throw new TypeError(
        `algorithm "${alg}" cannot be allowed; supported: ${SUPPORTED_ALGORITHMS.join(', ')} (HMAC and "none" never)`,
      );
    }
  }
}

const MIN_RSA_BITS = 2048;
const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };
const NODE_CURVE: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** The key type an algorithm needs, in words, for error messages. */
export function describeKeyFor(alg: string): string {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return `RSA ≥ ${MIN_RSA_BITS} bits, e = 65537`;
  if (alg in EC_CURVES) return `EC ${EC_CURVES[alg]}`;
  if (alg === 'EdDSA' || alg === 'Ed25519') return 'OKP Ed25519';
  return 'none (algorithm not supported)';
}

/**
 * Returns why `key` cannot verify `alg`, or undefined when it fits. Works on CryptoKey and KeyObject
 * alike by looking at the key's own type and parameters, never at anything the token says.
 */
export function keyMismatch(key: CryptoKey | KeyObject, alg: string): string | undefined {
  let ko: KeyObject;
  try {
    ko = key instanceof KeyObject ? key : KeyObject.from(key);
  } catch {
    return 'key is neither a CryptoKey nor a KeyObject';
  }
  if (ko.type === 'secret') return 'symmetric keys never verify tokens';
  if (ko.type === 'private') return 'a private key was given where a public key belongs';
  const type = ko.asymmetricKeyType;
  const d = ko.asymmetricKeyDetails ?? {};
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    if (type !== 'rsa' && !(type === 'rsa-pss' && alg.startsWith('PS')))
      return `${alg} needs an RSA key, got ${type}`;
    if ((d.modulusLength ?? 0) < MIN_RSA_BITS)
      return `RSA key has ${d.modulusLength} bits, fewer than ${MIN_RSA_BITS}`;
    if (d.publicExponent !== 65537n) return `RSA public exponent is ${d.publicExponent}, not 65537`;
    return undefined;
  }
  const curve = EC_CURVES[alg];
  if (curve !== undefined) {
    if (type !== 'ec') return `${alg} needs an EC key, got ${type}`;
    const got = NODE_CURVE[d.namedCurve ?? ''] ?? d.namedCurve;
    return got === curve ? undefined : `${alg} needs curve ${curve}, key is on ${got}`;
  }
  if (alg === 'EdDSA' || alg === 'Ed25519') {
    return type === 'ed25519' ? undefined : `${alg} needs an Ed25519 key, got ${type}`;
  }
  return `algorithm ${alg} is not supported`;
}

/** Number of significant bits in a base64url big-endian integer. */
function bitLength(b64u: string): number {
  const bytes = Buffer.from(b64u, 'base64url');
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i] ?? 0));
}

/**
 * Returns why a JWK from a published key set must not be trusted, or undefined when it may be. Checked
 * at load, before the key is imported, so a weak key never reaches the verifier.
 */
export function jwkWeakness(jwk: Record<string, unknown>): string | undefined {
  const { kty } = jwk;
  if (typeof kty !== 'string') return 'kty is missing';
  if (kty === 'oct') return 'symmetric (oct) keys are never trusted from a key set';
  if ('d' in jwk || 'p' in jwk || 'k' in jwk) return 'the key set publishes private key material';
  if (jwk.use !== undefined && jwk.use !== 'sig') return `use is "${String(jwk.use)}", not "sig"`;
  if (jwk.key_ops !== undefined) {
    if (!Array.isArray(jwk.key_ops) || !jwk.key_ops.includes('verify'))
      return 'key_ops does not include "verify"';
  }
  if (jwk.alg !== undefined && (typeof jwk.alg !== 'string' || !isSupportedAlgorithm(jwk.alg))) {
    return `alg "${String(jwk.alg)}" is not one Gatehouse verifies`;
  }
  if (kty === 'RSA') {
    if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') return 'RSA key lacks n or e';
    if (jwk.e !== 'AQAB') return 'RSA public exponent is not 65537';
    const bits = bitLength(jwk.n);
    if (bits < MIN_RSA_BITS) return `RSA key has ${bits} bits, fewer than ${MIN_RSA_BITS}`;
    if (typeof jwk.alg === 'string' && !/^(RS|PS)/.test(jwk.alg))
      return `alg ${jwk.alg} does not fit an RSA key`;
    return undefined;
  }
  if (kty === 'EC') {
    const crv = jwk.crv;
    if (crv !== 'P-256' && crv !== 'P-384' && crv !== 'P-521') return `unknown curve "${String(crv)}"`;
    if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return 'EC key lacks x or y';
    if (typeof jwk.alg === 'string' && EC_CURVES[jwk.alg] !== crv)
      return `alg ${jwk.alg} does not fit curve ${crv}`;
    return undefined;
  }
  if (kty === 'OKP') {
    if (jwk.crv !== 'Ed25519') return `unknown curve "${String(jwk.crv)}"`;
    if (typeof jwk.x !== 'string') return 'OKP key lacks x';
    if (typeof jwk.alg === 'string' && jwk.alg !== 'EdDSA' && jwk.alg !== 'Ed25519') {
      return `alg ${jwk.alg} does not fit an Ed25519 key`;
    }
    return undefined;
  }
  return `unknown key type "${kty}"`;
}

/** Whether a (sound) JWK may verify `alg`: its type fits, and its own `alg`, when stated, is exactly `alg`. */
export function jwkFitsAlg(jwk: Record<string, unknown>, alg: string): boolean {
  if (typeof jwk.alg === 'string' && jwk.alg !== alg) {
    // RFC 8037 and RFC 9864 name Ed25519 two ways; a key marked with either verifies both.
    const ed = (a: string): boolean => a === 'EdDSA' || a === 'Ed25519';
    if (!(ed(jwk.alg) && ed(alg))) return false;
  }
  if (jwk.kty === 'RSA') return alg.startsWith('RS') || alg.startsWith('PS');
  if (jwk.kty === 'EC') return EC_CURVES[alg] === jwk.crv;
  if (jwk.kty === 'OKP') return alg === 'EdDSA' || alg === 'Ed25519';
  return false;
}
