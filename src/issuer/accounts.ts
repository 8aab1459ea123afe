// People as the OpenID Provider sees them: `findAccount` backed by the account records sign-in writes
// (the last mapped claims of each person), the scopes and claims released to downstream apps, and the
// provider metadata of the downstream clients declared in config (Jira, Jenkins, Space, Grafana…).
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { DownstreamClientConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import type { IssuerContext } from './context.js';
import { ACCOUNT_MODEL, type AccountRecord } from '../session/browser-auth.js';

export const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
export const REFRESH_TOKEN = 'refresh_token';

/** Scopes Gatehouse knows, and the claims each releases (ID token and userinfo). */
export const PEOPLE_SCOPES = ['openid', 'offline_access', 'email', 'profile', 'groups', 'roles'];
export const PEOPLE_CLAIMS: Record<string, string[]> = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'preferred_username'],
  groups: ['groups'],
  roles: ['roles'],
};

export async function findPerson(store: Store, sub: string): Promise<AccountRecord | undefined> {
  return (await store.oidcFind(ACCOUNT_MODEL, sub)) as AccountRecord | undefined;
}

/** The claims of a person, as released through scopes. */
export function personClaims(rec: AccountRecord): Record<string, unknown> {
  return {
    sub: rec.sub,
    ...(rec.email !== undefined ? { email: rec.email, email_verified: rec.email_verified ?? false } : {}),
    ...(rec.name !== undefined ? { name: rec.name } : {}),
    preferred_username: rec.email ?? rec.sub,
    groups: rec.groups,
    roles: rec.roles,
  };
}

/** oidc-provider's findAccount: people who signed in through a connector; nobody else. */
export function findAccount(ic: IssuerContext): NonNullable<Configuration['findAccount']> {
  return async (_ctx: KoaContextWithOIDC, sub: string) => {
    const rec = await findPerson(ic.store, sub);
    if (!rec) {
      // Service accounts (client credentials) have no account record; they only ever need `sub`.
      return { accountId: sub, claims: async () => ({ sub }) };
    }
    return { accountId: sub, claims: async () => personClaims(rec) as { sub: string } };
  };
}

export function downstreamClient(ic: IssuerContext, id: string): DownstreamClientConfig | undefined {
  return ic.config.downstream_clients.find((c) => c.id === id);
}

/** Provider metadata of one downstream client: exact redirect URIs, code flow, PKCE, scopes it may ask. */
export function downstreamMetadata(c: DownstreamClientConfig, idTokenAlg: string): Record<string, unknown> {
  const grants = ['authorization_code'];
  if (c.scopes.includes('offline_access')) grants.push(REFRESH_TOKEN);
  return {
    client_id: c.id,
    client_name: c.name ?? c.id,
    ...(c.public
      ? { token_endpoint_auth_method: 'none' }
      : // The library wants a value for secret-based auth; the real check is Gatehouse's hashed comparison.
        { client_secret: 'checked-by-gatehouse', token_endpoint_auth_method: 'client_secret_basic' }),
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris,
    grant_types: grants,
    response_types: ['code'],
    scope: c.scopes.join(' '),
    id_token_signed_response_alg: idTokenAlg,
  };
}

/**
 * The static client list with the people's clients added: every downstream client, and the CLI's public
 * client `gatehouse-cli` given the device flow, refresh and person-token grants (created when absent).
 */
export function withPeopleClients(
  ic: IssuerContext,
  clients: unknown,
  idTokenAlg: string,
  personTokenGrant: string,
): Record<string, unknown>[] {
  const list = (Array.isArray(clients) ? clients : []) as Record<string, unknown>[];
  const cliGrants = [DEVICE_CODE, REFRESH_TOKEN, personTokenGrant];
  let sawCli = false;
  const out = list.map((c) => {
    if (c.client_id !== 'gatehouse-cli') return c;
    sawCli = true;
    const grants = new Set([...((c.grant_types as string[] | undefined) ?? []), ...cliGrants]);
    return { ...c, grant_types: [...grants], scope: 'openid offline_access email profile groups roles' };
  });
  if (!sawCli) {
    out.push({
      client_id: 'gatehouse-cli',
      client_name: 'gatehouse CLI',
      grant_types: cliGrants,
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'none',
      id_token_signed_response_alg: idTokenAlg,
      scope: 'openid offline_access email profile groups roles',
    });
  }
  for (const d of ic.config.downstream_clients) out.push(downstreamMetadata(d, idTokenAlg));
  return out;
}
