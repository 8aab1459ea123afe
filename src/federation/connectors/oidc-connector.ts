// One upstream OpenID Provider people sign in with, on openid-client: discovery, authorization code with
// PKCE (S256), state and nonce, and RFC 9207 `iss` checking so one IdP's answer cannot be replayed
// against another (mix-up). Also the refresh re-check, RP-initiated logout and back-channel logout tokens.
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { ConnectorConfig } from '../../config/schema.js';
import { GatehouseError } from '../../lib/errors.js';
import { looksThin, mapClaims, type Person, type RoleTable } from '../role-mapping.js';

/** What one sign-in attempt must remember between the redirect and the callback. */
export interface LoginChecks {
  state: string;
  nonce: string;
  codeVerifier: string;
}

export interface LoginResult {
  person: Person;
  /** The upstream subject and session id (for back-channel logout). */
  upstreamSub: string;
  upstreamSid?: string;
  refreshToken?: string;
  idToken?: string;
}

export type RecheckResult = { ok: true; refreshToken?: string } | { ok: false; reason: string };

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export function newLoginChecks(): LoginChecks {
  return {
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    codeVerifier: oidc.randomPKCECodeVerifier(),
  };
}

export class OidcConnector {
  readonly config: ConnectorConfig;
  readonly #redirectUri: string;
  readonly #roles: RoleTable;
  #discovered: Promise<oidc.Configuration> | undefined;
  #jwks: JWTVerifyGetKey | undefined;

  constructor(config: ConnectorConfig, opts: { redirectUri: string; roles: RoleTable }) {
    this.config = config;
    this.#redirectUri = opts.redirectUri;
    this.#roles = opts.roles;
  }

  get id(): string {
    return this.config.id;
  }

  get displayName(): string {
    return this.config.name ?? this.config.id;
  }

  /** Discovery, once; a failure is forgotten so the next sign-in tries again (the IdP may be back). */
  discover(): Promise<oidc.Configuration> {
    this.#discovered ??= (async () => {
      const c = this.config;
      const insecure = new URL(c.issuer).protocol === 'http:';
      try {
        return await oidc.discovery(
          new URL(c.issuer),
          c.client_id,
          { redirect_uris: [this.#redirectUri], response_types: ['code'] },
          c.client_secret ? oidc.ClientSecretPost(c.client_secret) : oidc.None(),
          { execute: insecure ? [oidc.allowInsecureRequests] : [], timeout: 10 },
        );
      } catch (cause) {
        this.#discovered = undefined;
        throw new GatehouseError(
          'ERR_UPSTREAM_UNAVAILABLE',
          `connector "${c.id}": discovery at ${c.issuer} failed (${(cause as Error).message})`,
          {},
          { cause },
        );
      }
    })();
    return this.#discovered;
  }

  async authorizationUrl(
    checks: LoginChecks,
    extra: { loginHint?: string; prompt?: 'login' | 'select_account' } = {},
  ): Promise<URL> {
    const cfg = await this.discover();
    const params: Record<string, string> = {
      redirect_uri: this.#redirectUri,
      scope: this.config.scopes.join(' '),
      response_type: 'code',
      state: checks.state,
      nonce: checks.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (extra.loginHint) params.login_hint = extra.loginHint;
    if (extra.prompt) params.prompt = extra.prompt;
    return oidc.buildAuthorizationUrl(cfg, params);
  }

  /**
   * Redeems the callback: openid-client checks `state`, the RFC 9207 `iss` parameter, PKCE (by the IdP),
   * the ID token (signature, `iss`, `aud`, `exp`, `nonce`). Then the claims are mapped.
   */
  async finish(callbackUrl: URL, checks: LoginChecks): Promise<LoginResult> {
    const cfg = await this.discover();
    const meta = cfg.serverMetadata();
    // RFC 9207: an IdP that announces the `iss` parameter must send it, and any `iss` sent must be this IdP.
    const iss = callbackUrl.searchParams.get('iss');
    if (iss !== null && iss !== meta.issuer) {
      throw new GatehouseError(
        'ERR_LOGIN_STATE_INVALID',
        `the sign-in answer names issuer ${iss}, but this sign-in went to ${meta.issuer} (connector "${this.id}"): refused as a possible mix-up`,
        { field: 'iss', expected: meta.issuer, actual: iss },
      );
    }
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(cfg, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
    } catch (cause) {
      throw upstreamRefusal(this.id, cause);
    }
    const idClaims = tokens.claims();
    if (!idClaims) throw new GatehouseError('ERR_LOGIN_UPSTREAM_REFUSED', 'the IdP returned no ID token');
    let claims: Record<string, unknown> = { ...idClaims };
    const want =
      this.config.userinfo === 'always' ||
      (this.config.userinfo === 'auto' && looksThin(claims, this.config.mapping));
    if (want && meta.userinfo_endpoint) {
      try {
        const info = await oidc.fetchUserInfo(cfg, tokens.access_token, idClaims.sub);
        // The ID token wins for what both say: it is signed.
        claims = { ...info, ...claims };
        for (const k of ['groups', 'email', 'email_verified', 'name']) {
          if (claims[k] === undefined && info[k] !== undefined) claims[k] = info[k];
        }
      } catch (cause) {
        throw upstreamRefusal(this.id, cause);
      }
    }
    const person = mapClaims(claims, this.config.mapping, this.#roles, this.id);
    return {
      person,
      upstreamSub: idClaims.sub,
      ...(typeof idClaims.sid === 'string' ? { upstreamSid: idClaims.sid } : {}),
      ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
      ...(tokens.id_token ? { idToken: tokens.id_token } : {}),
    };
  }

  /** Asks the IdP again whether the person may still sign in (refresh grant). */
  async recheck(refreshToken: string): Promise<RecheckResult> {
    const cfg = await this.discover();
    try {
      const t = await oidc.refreshTokenGrant(cfg, refreshToken);
      return { ok: true, ...(t.refresh_token ? { refreshToken: t.refresh_token } : {}) };
    } catch (e) {
      if (e instanceof oidc.ResponseBodyError) return { ok: false, reason: e.error };
      throw e;
    }
  }

  /** The IdP's RP-initiated logout URL, when it has one and the connector allows it. */
  async endSessionUrl(
    idTokenHint: string | undefined,
    postLogoutRedirectUri: string,
  ): Promise<URL | undefined> {
    if (!this.config.upstream_logout) return undefined;
    const cfg = await this.discover();
    if (!cfg.serverMetadata().end_session_endpoint) return undefined;
    const params: Record<string, string> = { post_logout_redirect_uri: postLogoutRedirectUri };
    if (idTokenHint) params.id_token_hint = idTokenHint;
    else params.client_id = this.config.client_id;
    return oidc.buildEndSessionUrl(cfg, params);
  }

  /** Verifies an OIDC Back-Channel Logout token; returns the upstream subject and/or session it ends. */
  async verifyLogoutToken(token: string): Promise<{ sub?: string; sid?: string }> {
    const cfg = await this.discover();
    const meta = cfg.serverMetadata();
    if (!meta.jwks_uri) throw new GatehouseError('ERR_TOKEN_KEY_NOT_FOUND', 'the IdP has no jwks_uri');
    this.#jwks ??= createRemoteJWKSet(new URL(meta.jwks_uri));
    try {
      const { payload } = await jwtVerify(token, this.#jwks, {
        issuer: meta.issuer,
        audience: this.config.client_id,
        maxTokenAge: '5m',
      });
      const events = payload.events as Record<string, unknown> | undefined;
      if (!events || typeof events !== 'object' || !(BACKCHANNEL_EVENT in events))
        throw new Error('no back-channel logout event');
      if ('nonce' in payload) throw new Error('a logout token carries no nonce');
      const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
      const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
      if (!sub && !sid) throw new Error('neither sub nor sid');
      return { ...(sub ? { sub } : {}), ...(sid ? { sid } : {}) };
    } catch (cause) {
      throw new GatehouseError(
        'ERR_TOKEN_CLAIM_INVALID',
        `connector "${this.id}": the logout token was refused (${(cause as Error).message})`,
        {},
        { cause },
      );
    }
  }
}

function upstreamRefusal(id: string, cause: unknown): GatehouseError {
  if (cause instanceof GatehouseError) return cause;
  const e = cause as {
    error?: string;
    error_description?: string;
    message?: string;
    code?: string;
    cause?: { message?: string; cause?: { claim?: unknown } };
  };
  // openid-client wraps the precise check that failed (`unexpected ID Token "nonce" claim value`) in a
  // generic message; the inner one is what explains the refusal. Neither carries the token.
  const inner = e.code?.startsWith('OAUTH_') && e.cause?.message ? e.cause.message : undefined;
  const claim = e.cause?.cause?.claim;
  const what = e.error
    ? `${e.error}${e.error_description ? `: ${e.error_description}` : ''}`
    : claim === 'nonce'
      ? "the ID token's nonce is not the one this sign-in sent: a replayed or injected answer"
      : (inner ?? e.message);
  const code =
    e.code === 'OAUTH_INVALID_RESPONSE' && /state/i.test(String(e.message))
      ? 'ERR_LOGIN_STATE_INVALID'
      : 'ERR_LOGIN_UPSTREAM_REFUSED';
  return new GatehouseError(code, `connector "${id}": the sign-in was refused (${what})`, {}, { cause });
}
