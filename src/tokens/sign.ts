// Signing of Gatehouse's own JWTs (access tokens, assertions, checkpoints) with the key ring's active
// key. One place decides the protected header: alg and kid of the signing key, and the token's typ.
import { randomId } from '../lib/random.js';
import { SignJWT, type JWTPayload } from 'jose';
import type { KeyRing } from '../keys/keyring.js';

export const TYP_ACCESS_TOKEN = 'at+jwt';
export const TYP_ASSERTION = 'gatehouse-assertion+jwt';

/** A fresh token id: 128 random bits, base64url, never starting with `-` (src/lib/random.ts). */
export function newJti(): string {
  return randomId(16);
}

export async function signJwt(
  keys: KeyRing,
  payload: JWTPayload,
  typ: string,
): Promise<{ token: string; kid: string }> {
  const key = keys.active();
  const token = await new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ })
    .sign(key.privateKey);
  return { token, kid: key.kid };
}
