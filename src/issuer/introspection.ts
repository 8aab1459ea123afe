// Introspection (RFC 7662) and revocation (RFC 7009) of Gatehouse's JWT access tokens. The library
// stores no JWT access tokens and answers `unsupported_token_type` for them, so this step takes over
// after the library has authenticated the caller: strict verification against our own keys, then the
// revocation set. Opaque tokens (if any) stay with the library.
import { createHash } from 'node:crypto';
import { importJWK } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { GatehouseError, isGatehouseError } from '../lib/errors.js';
import type { KeyRing, LoadedKey } from '../keys/keyring.js';
import { TYP_ACCESS_TOKEN } from '../tokens/sign.js';
import { verifyJwt, type JsonObject, type KeyResolver, type VerificationKey } from '../tokens/verify.js';
import type { IssuerContext } from './context.js';
import type { RefusalState } from './refusals.js';

/** Why a token is inactive: audited, never told to the caller (RFC 7662 §2.2). */
export type InactiveReason = 'revoked' | 'not_verified' | 'not_ours' | 'not_allowed';

export type AccessTokenCheck =
  | { active: true; claims: JsonObject }
  | { active: false; reason: InactiveReason; code?: string; claims?: JsonObject };

const keyCache = new WeakMap<LoadedKey, Promise<VerificationKey>>();

/** Resolves a token's `kid` among the key ring's published keys (next, active, retired not yet removed). */
export function keyRingResolver(keys: KeyRing): KeyResolver {
  return async (header) => {
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    const key = kid !== undefined ? keys.find(kid) : undefined;
    if (!key) {
      throw new GatehouseError('ERR_TOKEN_KEY_NOT_FOUND', 'token key is not one of this issuer’s keys', {
        field: 'kid',
        actual: kid ?? null,
      });
    }
    let imported = keyCache.get(key);
    if (!imported) {
      imported = importJWK(key.publicJwk, key.alg) as Promise<VerificationKey>;
      keyCache.set(key, imported);
    }
    return imported;
  };
}

/** A short, non-secret fingerprint of a token for the audit log (the token itself is never recorded). */
export function tokenFingerprint(token: string): string {
  return 'sha256:' + createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 16);
}

/**
 * Checks one of our access tokens: strict verification (our keys only, `typ: at+jwt`, exact issuer,
 * expiry with the configured skew), then the revocation set. Never throws for a bad token.
 */
export async function checkAccessToken(ic: IssuerContext, token: string): Promise<AccessTokenCheck> {
  let claims: JsonObject;
  try {
    const algorithms = [...new Set(ic.keys.all().map((k) => k.alg))];
    ({ claims } = await verifyJwt(token, {
      issuer: ic.config.issuer.url,
      keys: keyRingResolver(ic.keys),
      algorithms,
      typ: TYP_ACCESS_TOKEN,
      clockSkewSec: Math.floor(ic.config.tokens.clock_skew / 1000),
      requiredClaims: ['jti', 'sub', 'iat'],
      now: ic.now,
    }));
  } catch (e) {
    if (!isGatehouseError(e)) throw e;
    const reason =
      e.code === 'ERR_TOKEN_ISSUER_MISMATCH' || e.code === 'ERR_TOKEN_KEY_NOT_FOUND'
        ? 'not_ours'
        : 'not_verified';
    return { active: false, reason, code: e.code };
  }
  const hit = ic.revocations.check({
    iss: str(claims.iss),
    jti: str(claims.jti),
    sub: str(claims.sub),
    client_id: str(claims.client_id),
    sid: str(claims.sid),
    iat: typeof claims.iat === 'number' ? claims.iat : undefined,
  });
  if (hit) return { active: false, reason: 'revoked', code: `revoked_${hit.kind}`, claims };
  return { active: true, claims };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The RFC 7662 §2.2 answer for an active token: its own claims, nothing more. */
export function introspectionBody(claims: JsonObject): Record<string, unknown> {
  const body: Record<string, unknown> = { active: true };
  for (const name of [
    'iss',
    'sub',
    'aud',
    'exp',
    'iat',
    'nbf',
    'jti',
    'client_id',
    'scope',
    'roles',
    'sid',
    'act',
  ])
    if (claims[name] !== undefined) body[name] = claims[name];
  body.token_type = 'Bearer';
  return body;
}

interface Caller {
  clientId: string;
  /** Public clients may only introspect their own tokens (as the library does for opaque ones). */
  isPublic: boolean;
}

/** Introspection of a JWT access token for an authenticated caller: `{active: true, …}` or `{active: false}`. */
export async function introspectAccessToken(
  ic: IssuerContext,
  token: string,
  caller: Caller,
): Promise<Record<string, unknown>> {
  const check = await checkAccessToken(ic, token);
  let outcome: AccessTokenCheck = check;
  if (check.active && caller.isPublic && check.claims.client_id !== caller.clientId)
    outcome = { active: false, reason: 'not_allowed', claims: check.claims };
  if (outcome.active) return introspectionBody(outcome.claims);
  await ic.audit.append('token.introspected', {
    active: false,
    reason: outcome.reason,
    ...(outcome.code ? { code: outcome.code } : {}),
    ...(outcome.claims?.jti !== undefined
      ? { jti: outcome.claims.jti }
      : { token_hash: tokenFingerprint(token) }),
    by: caller.clientId,
  });
  return { active: false };
}

export type RevocationOutcome =
  { status: 200 } | { status: 400; error: 'unauthorized_client'; description: string; auditId: string };

/**
 * RFC 7009 revocation of a JWT access token by the client it was issued to (§2.1). A token that does
 * not verify, is already inactive or is not ours answers 200 (§2.2: nothing to do); another client's
 * token is refused, and the token stays valid.
 */
export async function revokeAccessToken(
  ic: IssuerContext,
  token: string,
  caller: Caller,
): Promise<RevocationOutcome> {
  const check = await checkAccessToken(ic, token);
  if (!check.active) return { status: 200 };
  const { claims } = check;
  const jti = String(claims.jti);
  if (claims.client_id !== caller.clientId) {
    const { id } = await ic.audit.append('token.revoke_refused', {
      jti,
      client_id: claims.client_id ?? null,
      by: caller.clientId,
      reason: 'not_issued_to_caller',
    });
    return {
      status: 400,
      error: 'unauthorized_client',
      description: `client "${caller.clientId}" may revoke only tokens issued to it (audit id ${id})`,
      auditId: id,
    };
  }
  const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
  const record = await ic.revocations.revoke({
    kind: 'jti',
    value: jti,
    issuer: ic.config.issuer.url,
    reason: 'revoked by its client (RFC 7009)',
    // Kept until the token could no longer pass anyway (its expiry plus the clock skew).
    ...(exp !== undefined ? { expiresAt: exp * 1000 + ic.config.tokens.clock_skew } : {}),
  });
  await ic.audit.append('token.revoked', {
    jti,
    issuer: ic.config.issuer.url,
    client_id: caller.clientId,
    revocation_id: record.id,
    by: 'revocation_endpoint',
  });
  return { status: 200 };
}

/**
 * Provider middleware: when the library refuses a JWT at its introspection or revocation endpoint
 * (`unsupported_token_type`, which it says only after authenticating the caller), answer for it here.
 */
export function jwtAccessTokenEndpoints(ic: IssuerContext) {
  return async function jwtAccessTokens(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
    await next();
    const route = ctx.oidc?.route;
    if (route !== 'introspection' && route !== 'revocation') return;
    const body = ctx.body as Record<string, unknown> | undefined;
    if (!body || body.error !== 'unsupported_token_type') return;
    const client = ctx.oidc.client;
    const token = (ctx.oidc.params as Record<string, unknown> | undefined)?.token;
    if (!client || typeof token !== 'string') return;
    const caller = { clientId: client.clientId, isPublic: client.clientAuthMethod === 'none' };
    if (route === 'introspection') {
      ctx.status = 200;
      ctx.body = await introspectAccessToken(ic, token, caller);
      return;
    }
    const outcome = await revokeAccessToken(ic, token, caller);
    ctx.status = outcome.status;
    if (outcome.status === 200) {
      ctx.body = '';
      return;
    }
    // Recorded as token.revoke_refused: the refusal step records nothing more for this request.
    (ctx.state as RefusalState).gatehouseRefusalId = outcome.auditId;
    ctx.body = { error: outcome.error, error_description: outcome.description };
  };
}
