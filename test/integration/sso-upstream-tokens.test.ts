// The upstream tokens a browser session keeps (sealed in the store) are used, whatever their size: the ID
// token the IdP issued goes back to it as `id_token_hint` at sign-out, and the refresh token reaches the
// IdP at the periodic re-check. The dev IdP here issues refresh tokens of 1,024 characters, the size of
// Keycloak's (JWTs); its ID tokens are several hundred characters long. Both once sealed to more than the
// 512 characters a cookie value may have, and were then never opened.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { startSsoStack } from '../helpers/sso.js';
import type { DevIdp } from '../../src/server/dev-idp.js';
import { startDemoApp, type DemoApp } from '../../src/server/demo-app.js';
import { CookieJar, loginUntilCallback, send } from '../helpers/http-browser.js';

const RECHECK_MS = 1000;
const REFRESH_TOKEN_LENGTH = 1024;
let idp: DevIdp;
let app: DemoApp;
let gh: TestGatehouse;
let clock = Date.now();

/** What the IdP's token endpoint answered and was asked, in order. */
const grants: Array<{
  grantType: string;
  presentedRefresh?: string;
  idToken?: string;
  refreshToken?: string;
}> = [];

before(async () => {
  app = await startDemoApp();
  ({ idp, gh } = await startSsoStack({
    now: () => clock,
    signedOutPage: true,
    idp: { refreshTokenLength: REFRESH_TOKEN_LENGTH },
    connector: { recheck_interval: '1s' },
    base: {
      routes: [
        {
          name: 'app',
          from: '/app/',
          to: [app.url],
          policy: [{ name: 'signed-in', allow: { claim: 'sub', exists: true } }],
        },
      ],
    },
  }));
  idp.provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const body = ctx.body as { id_token?: string; refresh_token?: string };
    const params = ctx.oidc.params as { grant_type?: string; refresh_token?: string };
    grants.push({
      grantType: String(params.grant_type),
      ...(params.refresh_token ? { presentedRefresh: params.refresh_token } : {}),
      ...(body.id_token ? { idToken: body.id_token } : {}),
      ...(body.refresh_token ? { refreshToken: body.refresh_token } : {}),
    });
  });
});

after(async () => {
  await gh?.close();
  await idp?.close();
  await app?.close();
});

/** A browser signed in as this person, and the tokens the IdP issued for that sign-in. */
async function signIn(username: string): Promise<{ jar: CookieJar; idToken: string; refreshToken: string }> {
  const jar = new CookieJar();
  const { callback } = await loginUntilCallback(jar, gh.url, { username, password: `${username}-password` });
  const before = grants.length;
  const res = await send(jar, callback);
  assert.equal(res.status, 303, res.text);
  const issued = grants.slice(before).find((g) => g.grantType === 'authorization_code');
  assert.ok(issued?.idToken && issued.refreshToken, 'the IdP issued an ID token and a refresh token');
  return { jar, idToken: issued.idToken, refreshToken: issued.refreshToken };
}

test('sign-out sends the person to the IdP with the ID token it issued as id_token_hint', async () => {
  const { jar, idToken } = await signIn('alice');
  assert.ok(idToken.length > 400, `a realistic ID token (${idToken.length} characters)`);
  const page = await send(jar, `${gh.url}/.gatehouse/logout`);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
  assert.ok(csrf, page.text);
  const res = await fetch(`${gh.url}/.gatehouse/logout`, {
    method: 'POST',
    headers: { cookie: jar.header(gh.url), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf }),
  });
  assert.equal(res.status, 200, await res.text());
  const refresh = /^0; url=(.+)$/.exec(res.headers.get('refresh') ?? '')?.[1];
  assert.ok(refresh, 'the page moves on to the IdP');
  const upstream = new URL(refresh);
  assert.equal(upstream.origin, idp.url);
  assert.equal(upstream.searchParams.get('id_token_hint'), idToken);
  assert.equal(upstream.searchParams.get('post_logout_redirect_uri'), `${gh.url}/.gatehouse/signed-out`);
  // The IdP takes the hint: it goes on to end its session instead of showing an error.
  const atIdp = await fetch(upstream, { redirect: 'manual' });
  const text = await atIdp.text();
  assert.equal(atIdp.status, 200, text);
  assert.doesNotMatch(text, /Dev IdP error/);
  assert.match(text, /\/session\/end\/confirm/);
});

test('the periodic re-check presents the refresh token the IdP issued (a JWT-sized one) and keeps the session', async () => {
  const { jar, refreshToken } = await signIn('bob');
  assert.equal(refreshToken.length, REFRESH_TOKEN_LENGTH);
  const before = grants.length;
  clock += RECHECK_MS + 1;
  assert.equal((await send(jar, `${gh.url}/app/`)).status, 200);
  await waitFor(
    async () => grants.slice(before).some((g) => g.grantType === 'refresh_token'),
    'a refresh grant',
  );
  const recheck = grants.slice(before).find((g) => g.grantType === 'refresh_token');
  assert.equal(recheck?.presentedRefresh, refreshToken, 'the IdP got the refresh token it issued');
  await waitFor(async () => {
    const s = (await gh.gh.store.listSessions('bob')).filter((r) => r.revokedAt === null);
    return s.some((r) => (r.data as { checkedAt: number }).checkedAt === clock);
  }, 'the session records the re-check');

  // The rotated refresh token (stored sealed, as long) is the one the next re-check presents.
  const next = grants.length;
  clock += RECHECK_MS + 1;
  assert.equal((await send(jar, `${gh.url}/app/`)).status, 200);
  await waitFor(
    async () => grants.slice(next).some((g) => g.grantType === 'refresh_token'),
    'a second refresh grant',
  );
  assert.equal(
    grants.slice(next).find((g) => g.grantType === 'refresh_token')?.presentedRefresh,
    recheck?.refreshToken ?? refreshToken,
  );
  // That re-check has finished (a re-check still in flight would absorb the next one).
  await waitFor(async () => {
    const s = (await gh.gh.store.listSessions('bob')).filter((r) => r.revokedAt === null);
    return s.some((r) => (r.data as { checkedAt: number }).checkedAt === clock);
  }, 'the session records the second re-check');

  // And a "no" from the IdP now ends the session, as the re-check promises.
  idp.revokePerson('bob');
  clock += RECHECK_MS + 1;
  assert.equal((await send(jar, `${gh.url}/app/`)).status, 200);
  await waitFor(async () => {
    const status = (await send(jar, `${gh.url}/.gatehouse/whoami`)).status;
    if (status !== 401) await send(jar, `${gh.url}/app/`);
    return status === 401;
  }, 'the session ends');
});

async function waitFor(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out: ${what}`);
}
