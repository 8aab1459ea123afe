// The person's token for the CLI (`gatehouse token` after `gatehouse login`): the refresh token the device
// flow gave the public client `gatehouse-cli` buys a short-lived, audience-bound access token carrying the
// person's claims (sub, email, name, groups, roles). Subject and session revocations are honoured.
import type { TokenEndpointGrantContext } from 'oidc-provider';
import type { IssuerContext } from '../context.js';
import { oauthError, type OAuthErrorCode } from '../oauth-error.js';
import { findPerson } from '../accounts.js';
import { RequestProblem, requestedAudiences, requestedTtlMs } from './requested.js';

export const PERSON_TOKEN = 'urn:gatehouse:params:oauth:grant-type:person-token';
export const personTokenParams = ['refresh_token', 'audience', 'resource', 'expires_in'];
export const personTokenDupes = ['audience', 'resource'];

export function personTokenHandler(ic: IssuerContext) {
  return async function personToken(ctx: TokenEndpointGrantContext): Promise<void> {
    const clientId = ctx.oidc.client.clientId;
    const params = ctx.oidc.params as Record<string, unknown>;
    const refuse = async (code: OAuthErrorCode, reason: string, extra: Record<string, unknown> = {}) => {
      const { id } = await ic.audit.append('token.refused', {
        client_id: clientId,
        grant: PERSON_TOKEN,
        code,
        reason,
        ...extra,
      });
      return oauthError(code, `${reason} (audit id ${id})`);
    };
    const value = typeof params.refresh_token === 'string' ? params.refresh_token : '';
    if (!value)
      throw await refuse('invalid_request', 'refresh_token is missing; sign in with: gatehouse login');
    const rt = await ctx.oidc.provider.RefreshToken.find(value);
    if (!rt || rt.isExpired || rt.consumed || rt.clientId !== clientId) {
      throw await refuse(
        'invalid_grant',
        'the saved login is not valid any more; sign in again with: gatehouse login',
      );
    }
    const sub = String(rt.accountId);
    const revoked = ic.revocations.check({
      sub,
      ...(rt.sessionUid ? { sid: String(rt.sessionUid) } : {}),
      iat: rt.iat,
    });
    if (revoked) {
      throw await refuse(
        'invalid_grant',
        `the login of ${sub} was revoked; sign in again with: gatehouse login`,
        {
          sub,
          revocation_id: revoked.id,
        },
      );
    }
    const person = await findPerson(ic.store, sub);
    if (!person)
      throw await refuse('invalid_grant', `no account for ${sub}; sign in again with: gatehouse login`);
    try {
      const audiences = requestedAudiences(params);
      const ttlMs = requestedTtlMs(
        params,
        ic.config.tokens.default_ttl,
        ic.config.tokens.max_ttl,
        'a person',
      );
      const claims: Record<string, unknown> = { groups: person.groups };
      if (person.email !== undefined) claims.email = person.email;
      if (person.name !== undefined) claims.name = person.name;
      const minted = await ic.minter.mint({
        sub,
        audiences,
        ttlMs,
        clientId,
        grant: PERSON_TOKEN,
        roles: person.roles,
        claims,
        auditData: { via: 'device login', connector: person.connector },
      });
      ctx.body = {
        access_token: minted.token,
        token_type: 'Bearer',
        expires_in: minted.expiresIn,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      };
    } catch (e) {
      if (!(e instanceof RequestProblem)) throw e;
      throw await refuse(e.oauthError, e.message, { field: e.field, expected: e.expected, actual: e.actual });
    }
  };
}
