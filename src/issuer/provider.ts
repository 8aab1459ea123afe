// Builds oidc-provider instances, all from this one factory: they share the store adapter and the
// cookie keys, so a new instance (after key rotation or reload) can replace the old one under traffic.
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { IssuerContext } from './context.js';
import { createAdapterClass } from './adapter.js';
import { providerMetadata } from './clients.js';
import { oauthError } from './oauth-error.js';
import { findAccount, PEOPLE_CLAIMS, PEOPLE_SCOPES, withPeopleClients } from './accounts.js';
import { auditAuthorizationError, deviceFlowFeature, peopleConfiguration } from './interactions.js';
import {
  PERSON_TOKEN,
  personTokenDupes,
  personTokenHandler,
  personTokenParams,
} from './grants/person-token.js';
import { jwtAccessTokenEndpoints } from './introspection.js';
import { auditRefusals, REFUSAL_ERROR_EVENTS, REFUSAL_ROUTES } from './refusals.js';
import {
  CLIENT_CREDENTIALS,
  clientCredentialsDupes,
  clientCredentialsHandler,
  clientCredentialsParams,
} from './grants/client-credentials.js';
import {
  CLI_CLIENT_ID,
  TOKEN_EXCHANGE,
  tokenExchangeDupes,
  tokenExchangeHandler,
  tokenExchangeParams,
} from './grants/token-exchange.js';

/**
 * The CLI's public client: no secret (`none`), token exchange only, no redirect URIs. The subject token
 * is the credential, so there is nothing to steal from the client itself.
 */
function cliClientMetadata(idTokenAlg: string): Record<string, unknown> {
  return {
    client_id: CLI_CLIENT_ID,
    client_name: 'gatehouse CLI',
    grant_types: [TOKEN_EXCHANGE],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'none',
    id_token_signed_response_alg: idTokenAlg,
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const DAY_SEC = 24 * 3600;

/**
 * Lifetimes (seconds) of what the library issues and keeps, from the configuration: set explicitly so
 * that nothing runs on a library default (which also prints a notice at every start).
 */
export function providerTtl(config: IssuerContext['config']): Record<string, number> {
  const sec = (ms: number) => Math.max(1, Math.floor(ms / 1000));
  const token = sec(config.tokens.default_ttl);
  return {
    // Opaque access tokens and ID tokens for downstream apps: as short as every other token.
    AccessToken: token,
    ClientCredentials: token,
    IdToken: token,
    AuthorizationCode: 60,
    DeviceCode: 600,
    // A sign-in at an upstream IdP may take a while (MFA, a password reset).
    Interaction: 3600,
    // The provider's own session for downstream apps never outlives a Gatehouse session.
    Session: sec(config.sessions.absolute_timeout),
    // The CLI's login (refresh token) lasts two weeks, and its grant with it.
    RefreshToken: 14 * DAY_SEC,
    Grant: 14 * DAY_SEC,
  };
}

export async function createProvider(ic: IssuerContext, cookieKeys: string[]): Promise<Provider> {
  const alg = ic.keys.active().alg;
  const configuration: Configuration = {
    adapter: createAdapterClass(ic.store, {
      now: ic.now,
      findClient: async (id) => {
        const c = await ic.clients.get(id);
        return c && c.source === 'store' ? (providerMetadata(c, alg) as never) : undefined;
      },
    }),
    clients: [
      ...ic.clients.configClients().map((c) => providerMetadata(c, alg)),
      cliClientMetadata(alg),
    ] as never,
    clientDefaults: {
      grant_types: [CLIENT_CREDENTIALS],
      response_types: [],
      id_token_signed_response_alg: alg,
      token_endpoint_auth_method: 'client_secret_basic',
    },
    jwks: ic.keys.providerJwks() as never,
    cookies: { keys: cookieKeys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // RFC 7662 / RFC 7009, advertised in discovery. JWT access tokens are answered by
      // jwtAccessTokenEndpoints (src/issuer/introspection.ts); these policies cover the library's own tokens.
      introspection: {
        enabled: true,
        // Any authenticated client (resource servers included) may introspect; a public client only its own.
        allowedPolicy: async (ctx, client, token) =>
          client.clientAuthMethod !== 'none' || token.clientId === ctx.oidc.client?.clientId,
      },
      // RFC 7009 §2.1: only the client the token was issued to may revoke it.
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
    },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!doctype html><meta charset="utf-8"><title>Gatehouse: ${escapeHtml(String(out.error))}</title><h1>${escapeHtml(String(out.error))}</h1><p>${escapeHtml(String(out.error_description ?? ''))}</p>`;
    },
    clockTolerance: Math.floor(ic.config.tokens.clock_skew / 1000),
    ttl: providerTtl(ic.config),
  };
  // People: downstream apps (authorization code + PKCE), the CLI's device login, sign-in interactions
  // through the connectors, and findAccount from the account records (src/issuer/accounts.ts).
  Object.assign(configuration, peopleConfiguration(ic), {
    clients: withPeopleClients(ic, configuration.clients, alg, PERSON_TOKEN),
    findAccount: findAccount(ic),
    scopes: PEOPLE_SCOPES,
    claims: PEOPLE_CLAIMS,
  });
  configuration.features = {
    ...configuration.features,
    deviceFlow: deviceFlowFeature,
    rpInitiatedLogout: { enabled: true },
  };
  const renderBase = configuration.renderError;
  configuration.renderError = async (ctx, out, error) => {
    // A refused authorization (a wrong redirect URI above all) is shown here, never redirected, and
    // audited with the asked and registered redirect URIs for the operator. Token endpoint refusals
    // asked for as HTML are recorded by auditRefusals, as token.refused.
    const auditId = REFUSAL_ROUTES.has(ctx.oidc?.route ?? '')
      ? undefined
      : await auditAuthorizationError(ic, ctx, out);
    await renderBase?.(ctx, out, error);
    if (auditId && typeof ctx.body === 'string')
      ctx.body += `<p>Audit id <code>${escapeHtml(auditId)}</code></p>`;
  };
  const provider = new Provider(ic.config.issuer.url, configuration);
  provider.proxy = true;

  provider.registerGrantType(PERSON_TOKEN, personTokenHandler(ic), personTokenParams, personTokenDupes);

  provider.registerGrantType(
    CLIENT_CREDENTIALS,
    clientCredentialsHandler(ic),
    clientCredentialsParams,
    clientCredentialsDupes,
  );

  provider.registerGrantType(
    TOKEN_EXCHANGE,
    tokenExchangeHandler(ic),
    tokenExchangeParams,
    tokenExchangeDupes,
  );

  // Client secrets are stored hashed, with expiry and rotation overlap, so Gatehouse checks them itself;
  // each failure is told apart for the client (never echoing the secret) and audited.
  const ClientClass = provider.Client as unknown as { prototype: Record<string, unknown> };
  ClientClass.prototype.compareClientSecret = async function compareClientSecret(
    this: { clientId: string },
    actual: string,
  ) {
    const result = await ic.clients.checkSecret(this.clientId, String(actual ?? ''), ic.now());
    if (result.ok) {
      // A client revoked at T authenticates again only with a secret created after T (rotate it).
      const revoked = ic.revocations.check({ client_id: this.clientId, iat: result.secret.createdAt / 1000 });
      if (revoked) {
        const { id } = await ic.audit.append('token.refused', {
          client_id: this.clientId,
          code: 'invalid_client',
          reason: 'client_revoked',
          secret_id: result.secret.id,
          revocation_id: revoked.id,
        });
        throw oauthError(
          'invalid_client',
          `client "${this.clientId}" was revoked at ${new Date(revoked.revokedAt).toISOString()}; a secret created after that works again: gatehouse clients rotate-secret ${this.clientId} (audit id ${id})`,
        );
      }
      // No record of its own (that would cost a durable write per request): the token.issued or
      // refusal record that follows names the secret that authenticated.
      const ctx = Provider.ctx;
      if (ctx) (ctx.state as Record<string, unknown>).gatehouseSecretId = result.secret.id;
      return true;
    }
    const reason =
      result.reason === 'expired_secret'
        ? `the client secret ${result.secret.id} of client "${this.clientId}" expired at ${new Date(result.secret.expiresAt ?? 0).toISOString()}; rotate it with: gatehouse clients rotate-secret ${this.clientId}`
        : result.reason === 'no_secret'
          ? `client "${this.clientId}" has no secret yet; create one with: gatehouse clients rotate-secret ${this.clientId}`
          : `wrong client secret for client "${this.clientId}"`;
    const { id } = await ic.audit.append('token.refused', {
      client_id: this.clientId,
      code: 'invalid_client',
      reason: result.reason,
      ...(result.reason === 'expired_secret'
        ? { secret_id: result.secret.id, expired_at: result.secret.expiresAt }
        : {}),
    });
    throw oauthError('invalid_client', `${reason} (audit id ${id})`);
  };

  // Outermost: store failures answer 503, and every refusal at the token endpoints is recorded once.
  provider.use(
    auditRefusals(
      ic,
      new Set([
        PERSON_TOKEN,
        CLIENT_CREDENTIALS,
        TOKEN_EXCHANGE,
        'authorization_code',
        'refresh_token',
        'urn:ietf:params:oauth:grant-type:device_code',
      ]),
    ),
  );
  provider.use(jwtAccessTokenEndpoints(ic));
  for (const event of REFUSAL_ERROR_EVENTS) {
    (provider as unknown as NodeJS.EventEmitter).on(event, (ctx: KoaContextWithOIDC, err: unknown) => {
      (ctx.state as Record<string, unknown>).gatehouseError = err;
    });
  }

  // Static client metadata is validated lazily by the library: look each one up now so a bad client
  // fails the start, not the first request.
  for (const c of ic.clients.configClients()) await provider.Client.find(c.id);
  for (const c of ic.config.downstream_clients) await provider.Client.find(c.id);
  await provider.Client.find(CLI_CLIENT_ID);
  return provider;
}
