// The client_credentials grant, replacing oidc-provider's built-in one: the built-in handler drops an
// `audience` parameter and refuses non-URI resources (see the oidc-provider notes), while workloads ask
// for audiences like `sts.amazonaws.com`. Every refusal names the field, the asked value and what is
// allowed, and is audited under an id the client is shown.
import type { TokenEndpointGrantContext } from 'oidc-provider';
import type { IssuerContext } from '../context.js';
import { audienceAllowed } from '../clients.js';
import { oauthError } from '../oauth-error.js';
import { RequestProblem, requestedAudiences, requestedTtlMs } from './requested.js';

export const CLIENT_CREDENTIALS = 'client_credentials';
export const clientCredentialsParams = ['audience', 'resource', 'scope', 'expires_in'];
export const clientCredentialsDupes = ['audience', 'resource'];

export function clientCredentialsHandler(ic: IssuerContext) {
  return async function clientCredentials(ctx: TokenEndpointGrantContext): Promise<void> {
    const clientId = ctx.oidc.client.clientId;
    const client = await ic.clients.get(clientId);
    if (!client) throw oauthError('invalid_client', `unknown client "${clientId}"`);
    const params = ctx.oidc.params as Record<string, unknown>;
    try {
      const audiences = requestedAudiences(params);
      for (const aud of audiences) {
        if (!audienceAllowed(client, aud)) {
          throw new RequestProblem(
            'invalid_target',
            `audience "${aud}" is not allowed for client "${clientId}"; allowed: ${client.allowed_audiences.join(', ')}`,
            'audience',
            client.allowed_audiences,
            aud,
          );
        }
      }
      const ceiling = Math.min(client.max_ttl ?? ic.config.tokens.max_ttl, ic.config.tokens.max_ttl);
      const ttlMs = requestedTtlMs(params, ic.config.tokens.default_ttl, ceiling, `client "${clientId}"`);
      const minted = await ic.minter.mint({
        sub: clientId,
        audiences,
        ttlMs,
        clientId,
        grant: CLIENT_CREDENTIALS,
        roles: client.roles,
        scope: typeof params.scope === 'string' ? params.scope : undefined,
        claims: client.claims,
        auditData: { secret_id: (ctx.state as Record<string, unknown>).gatehouseSecretId },
      });
      ctx.body = { access_token: minted.token, token_type: 'Bearer', expires_in: minted.expiresIn };
    } catch (e) {
      if (!(e instanceof RequestProblem)) throw e;
      const { id } = await ic.audit.append('token.refused', {
        client_id: clientId,
        grant: CLIENT_CREDENTIALS,
        code: e.oauthError,
        field: e.field,
        expected: e.expected,
        actual: e.actual,
        message: e.message,
      });
      throw oauthError(e.oauthError, `${e.message} (audit id ${id})`);
    }
  };
}
