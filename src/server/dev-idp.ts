// The development upstream IdP: an in-process oidc-provider with a username/password form and the demo
// people of DESIGN.md (alice: admins + engineering, bob: engineering). `gatehouse dev` wires it as a
// connector; tests use it as a real IdP. Never for production: the passwords are printed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import Provider, { type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';

export interface DevPerson {
  username: string;
  password: string;
  email: string;
  name: string;
  groups: string[];
  emailVerified: boolean;
}

export const DEV_PEOPLE: readonly DevPerson[] = [
  {
    username: 'alice',
    password: 'alice-password',
    email: 'alice@example.com',
    name: 'Alice Example',
    groups: ['admins', 'engineering'],
    emailVerified: true,
  },
  {
    username: 'bob',
    password: 'bob-password',
    email: 'bob@example.com',
    name: 'Bob Example',
    groups: ['engineering'],
    emailVerified: true,
  },
];

export interface DevIdpOptions {
  port?: number;
  host?: string;
  clientId?: string;
  clientSecret?: string;
  people?: readonly DevPerson[];
  /** Extra claims per username (tests shape Keycloak-, Entra- or Okta-like tokens with them). */
  extraClaims?: Record<string, Record<string, unknown>>;
  /**
   * Length of the refresh tokens it issues, in characters (default 43, oidc-provider's). Tests give them
   * the size of Keycloak's, which are JWTs of a kilobyte or more.
   */
  refreshTokenLength?: number;
}

export interface DevIdp {
  /** The issuer URL (http://127.0.0.1:PORT). */
  url: string;
  clientId: string;
  clientSecret: string;
  people: readonly DevPerson[];
  provider: Provider;
  /** Lets a relying party's redirect URI (and its post-logout page) in; the RP's URL is known only later. */
  allowRedirect(redirectUri: string, postLogoutRedirectUri?: string): void;
  /**
   * A signed OIDC Back-Channel Logout token, as this IdP would send it; `extra` adds or overrides claims
   * and `omit` drops some (tests build malformed tokens with the IdP's own key).
   */
  logoutToken(
    claims: { sub?: string; sid?: string; aud?: string },
    opts?: { extra?: Record<string, unknown>; omit?: string[] },
  ): Promise<string>;
  /** Takes a person away (left the company): their refresh tokens stop working, sign-in fails. */
  revokePerson(username: string): void;
  close(): Promise<void>;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** oidc-provider's storage in memory, with the one static client whose redirect URIs grow at run time. */
function memoryAdapter(client: () => AdapterPayload) {
  const data = new Map<string, AdapterPayload>();
  return class MemoryAdapter implements Adapter {
    readonly #model: string;
    constructor(model: string) {
      this.#model = model;
    }
    #key(id: string): string {
      return `${this.#model}:${id}`;
    }
    async upsert(id: string, payload: AdapterPayload): Promise<void> {
      data.set(this.#key(id), payload);
    }
    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.#model === 'Client') return id === client().client_id ? client() : undefined;
      return data.get(this.#key(id));
    }
    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return [...data.values()].find((p) => p.userCode === userCode);
    }
    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return [...data.entries()].find(([k, p]) => k.startsWith(`${this.#model}:`) && p.uid === uid)?.[1];
    }
    async consume(id: string): Promise<void> {
      const p = data.get(this.#key(id));
      if (p) p.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      data.delete(this.#key(id));
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [k, p] of data) if (p.grantId === grantId) data.delete(k);
    }
  };
}

async function readBody(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function page(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(
    `<!doctype html><meta charset="utf-8"><title>Dev IdP</title><style>body{font:16px system-ui;max-width:30em;margin:3em auto}</style><h1>Development IdP</h1>${body}`,
  );
}

export async function startDevIdp(opts: DevIdpOptions = {}): Promise<DevIdp> {
  const people = opts.people ?? DEV_PEOPLE;
  const clientId = opts.clientId ?? 'gatehouse';
  const clientSecret = opts.clientSecret ?? 'dev-idp-' + randomBytes(18).toString('base64url');
  const redirectUris = new Set<string>();
  const postLogout = new Set<string>();
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'dev-idp-1', alg: 'ES256', use: 'sig' };

  // Listen first: the issuer is the bound address.
  const serve: { handler?: (req: IncomingMessage, res: ServerResponse) => void } = {};
  const server: Server = createServer((req, res) => {
    if (serve.handler) serve.handler(req, res);
    else {
      res.statusCode = 503;
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.address}:${addr.port}`;

  const clientMetadata = (): AdapterPayload => ({
    client_id: clientId,
    client_secret: clientSecret,
    client_name: 'Gatehouse (dev)',
    redirect_uris: [...redirectUris],
    post_logout_redirect_uris: [...postLogout],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'ES256',
  });

  const byName = new Map(people.map((p) => [p.username, p]));
  const revoked = new Set<string>();
  const configuration: Configuration = {
    adapter: memoryAdapter(clientMetadata),
    jwks: { keys: [jwk as never] },
    // Own cookie names: with `gatehouse dev` this IdP and Gatehouse's provider both run on 127.0.0.1, and
    // browsers do not keep cookies apart by port, so the default names (`_session`…) would collide.
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      names: {
        session: '_devidp_session',
        interaction: '_devidp_interaction',
        resume: '_devidp_interaction_resume',
      },
    },
    // Explicit lifetimes (seconds): the library's defaults print a notice at every start.
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      DeviceCode: 600,
      ClientCredentials: 600,
    },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    // Relying parties (Gatehouse) read groups from the ID token, as from most enterprise IdPs.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = `<!doctype html><meta charset="utf-8"><title>Signing out</title>${form}<p>Signing out of the development IdP…</p><button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`;
        },
      },
    },
    pkce: { required: () => true },
    ...(opts.refreshTokenLength
      ? {
          formats: {
            // 6 bits a character (base64url); every other token keeps the library's 256 bits.
            bitsOfOpaqueRandomness: (_ctx, token) =>
              token.kind === 'RefreshToken' ? (opts.refreshTokenLength ?? 43) * 6 : 256,
          },
        }
      : {}),
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: async (_ctx, sub) => {
      const p = byName.get(sub);
      if (!p || revoked.has(sub)) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          email: p.email,
          email_verified: p.emailVerified,
          name: p.name,
          preferred_username: p.username,
          groups: p.groups,
          ...opts.extraClaims?.[sub],
        }),
      };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!doctype html><meta charset="utf-8"><title>Dev IdP error</title><h1>${esc(String(out.error))}</h1><p>${esc(String(out.error_description ?? ''))}</p>`;
    },
  };
  const provider = new Provider(url, configuration);
  const callback = provider.callback() as (req: IncomingMessage, res: ServerResponse) => void;

  async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    const uid = details.uid;
    if (details.prompt.name === 'login') {
      if (req.method === 'POST') {
        const form = await readBody(req);
        const p = byName.get(form.get('username') ?? '');
        if (!p || revoked.has(p.username) || p.password !== form.get('password')) {
          return page(res, 401, `<p>Wrong username or password.</p>${loginForm(uid)}`);
        }
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: p.username } },
          { mergeWithLastSubmission: false },
        );
        return;
      }
      return page(res, 200, loginForm(uid));
    }
    // Consent: the dev IdP grants what Gatehouse asks for.
    const grant = details.grantId
      ? ((await provider.Grant.find(details.grantId)) ??
        new provider.Grant({
          accountId: details.session?.accountId ?? '',
          clientId: String(details.params.client_id),
        }))
      : new provider.Grant({
          accountId: details.session?.accountId ?? '',
          clientId: String(details.params.client_id),
        });
    const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  function loginForm(uid: string): string {
    const hint = people.map((p) => `${esc(p.username)} / ${esc(p.password)}`).join(', ');
    return `<form method="post" action="/interaction/${esc(uid)}"><p><label>Username <input name="username" autocomplete="username" autofocus></label></p><p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p><p><button type="submit">Sign in</button></p></form><p><small>Demo people: ${hint}</small></p>`;
  }

  serve.handler = (req, res) => {
    if ((req.url ?? '').startsWith('/interaction/')) {
      interaction(req, res).catch((err: unknown) => {
        if (!res.headersSent) page(res, 400, `<p>${esc((err as Error).message)}</p>`);
      });
      return;
    }
    callback(req, res);
  };

  return {
    url,
    clientId,
    clientSecret,
    people,
    provider,
    allowRedirect(redirectUri, postLogoutRedirectUri) {
      redirectUris.add(redirectUri);
      if (postLogoutRedirectUri) postLogout.add(postLogoutRedirectUri);
    },
    revokePerson(username) {
      revoked.add(username);
    },
    async logoutToken(claims, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
        ...(claims.sub ? { sub: claims.sub } : {}),
        ...(claims.sid ? { sid: claims.sid } : {}),
        ...o.extra,
      };
      for (const k of o.omit ?? []) delete payload[k];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', kid: 'dev-idp-1', typ: 'logout+jwt' })
        .setIssuer(url)
        .setAudience(claims.aud ?? clientId)
        .setIssuedAt(now)
        .setExpirationTime(now + 120)
        .setJti(randomBytes(12).toString('base64url'))
        .sign(privateKey as CryptoKey);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
