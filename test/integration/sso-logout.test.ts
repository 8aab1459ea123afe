// Sessions that the upstream IdP ends: OIDC Back-Channel Logout from the dev IdP ends the matching
// sessions at once (and malformed logout tokens are refused), and a refused upstream refresh at the
// periodic re-check ends the session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, SignJWT } from 'jose';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { startSsoStack } from '../helpers/sso.js';
import type { DevIdp } from '../../src/server/dev-idp.js';
import { startDemoApp, type DemoApp } from '../../src/server/demo-app.js';
import { CookieJar, loginUntilCallback, send } from '../helpers/http-browser.js';

const RECHECK_MS = 1000;
let idp: DevIdp;
let app: DemoApp;
let gh: TestGatehouse;
let clock = Date.now();

before(async () => {
  app = await startDemoApp();
  ({ idp, gh } = await startSsoStack({
    now: () => clock,
    connector: { recheck_interval: '1s' },
    base: {
      // The re-check runs where a session is used: the proxy asking who the person is.
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
});

after(async () => {
  await gh?.close();
  await idp?.close();
  await app?.close();
});

/** A browser signed in as this person. */
async function signIn(username: string): Promise<CookieJar> {
  const jar = new CookieJar();
  const { callback } = await loginUntilCallback(jar, gh.url, { username, password: `${username}-password` });
  const res = await send(jar, callback);
  assert.equal(res.status, 303, res.text);
  return jar;
}

async function whoami(jar: CookieJar): Promise<{ status: number; sub?: string }> {
  const res = await send(jar, `${gh.url}/.gatehouse/whoami`);
  return {
    status: res.status,
    ...(res.status === 200 ? { sub: (JSON.parse(res.text) as { sub: string }).sub } : {}),
  };
}

/** A request through the proxy: 200 from the app when signed in, a redirect to login when not. */
async function useApp(jar: CookieJar): Promise<number> {
  return (await send(jar, `${gh.url}/app/`)).status;
}

async function backchannel(token: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${gh.url}/.gatehouse/backchannel-logout/dev`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });
  return { status: res.status, body: await res.text() };
}

test('a back-channel logout from the IdP ends every session of that person at once, and only theirs', async () => {
  const alice1 = await signIn('alice');
  const alice2 = await signIn('alice');
  const bob = await signIn('bob');
  assert.equal((await whoami(alice1)).sub, 'alice');
  assert.equal((await whoami(alice2)).sub, 'alice');

  const res = await backchannel(await idp.logoutToken({ sub: 'alice' }));
  assert.equal(res.status, 200, res.body);
  assert.equal((await whoami(alice1)).status, 401);
  assert.equal((await whoami(alice2)).status, 401);
  assert.equal((await whoami(bob)).sub, 'bob', 'bob is still signed in');

  const [row] = await gh.gh.store
    .queryAudit({ type: 'session.ended', limit: 1000 })
    .then((rows) => rows.filter((r) => r.data.reason === 'backchannel_logout').slice(-1));
  assert.ok(row);
  assert.equal(row.data.upstream_sub, 'alice');
  assert.equal((row.data.sids as string[]).length, 2);
  // A session the IdP does not know (another upstream sid) is left alone.
  const other = await backchannel(await idp.logoutToken({ sub: 'bob', sid: 'not-a-session-of-bob' }));
  assert.equal(other.status, 200);
  assert.equal((await whoami(bob)).sub, 'bob');
});

test('malformed or forged logout tokens are refused and end nothing', async () => {
  const bob = await signIn('bob');
  const { privateKey } = await generateKeyPair('ES256');
  const now = Math.floor(Date.now() / 1000);
  const forged = await new SignJWT({
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    sub: 'bob',
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'dev-idp-1', typ: 'logout+jwt' })
    .setIssuer(idp.url)
    .setAudience(idp.clientId)
    .setIssuedAt(now)
    .setExpirationTime(now + 120)
    .setJti('forged-1')
    .sign(privateKey);
  const cases: Array<[string, string, RegExp]> = [
    ['signed with another key', forged, /signature/],
    ['for another client (aud)', await idp.logoutToken({ sub: 'bob', aud: 'someone-else' }), /aud/],
    ['without the events claim', await idp.logoutToken({ sub: 'bob' }, { omit: ['events'] }), /event/],
    ['carrying a nonce', await idp.logoutToken({ sub: 'bob' }, { extra: { nonce: 'n-1' } }), /nonce/],
    ['naming neither sub nor sid', await idp.logoutToken({}), /neither sub nor sid/],
  ];
  for (const [what, token, reason] of cases) {
    const res = await backchannel(token);
    assert.equal(res.status, 400, `${what}: ${res.body}`);
    const body = JSON.parse(res.body) as { error: string; error_description: string };
    assert.equal(body.error, 'invalid_request', what);
    const auditId = /audit id ([^)]+)\)/.exec(body.error_description)?.[1];
    assert.ok(auditId, `${what}: the answer names its audit record`);
    const [row] = await gh.gh.store.queryAudit({ id: auditId });
    assert.equal(row?.type, 'logout.refused', what);
    assert.match(String(row?.data.reason), reason, what);
    assert.equal((await whoami(bob)).sub, 'bob', `${what}: bob is still signed in`);
  }
  const missing = await fetch(`${gh.url}/.gatehouse/backchannel-logout/dev`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: '',
  });
  assert.equal(missing.status, 400);
  const unknown = await fetch(`${gh.url}/.gatehouse/backchannel-logout/nope`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: await idp.logoutToken({ sub: 'bob' }) }),
  });
  assert.equal(unknown.status, 404);
});

test('when the IdP refuses the upstream refresh at the re-check, the session ends', async () => {
  const bob = await signIn('bob');
  const bob2 = await signIn('bob');
  // A re-check that the IdP answers yes keeps the session (and its rotated refresh token works later).
  clock += RECHECK_MS + 1;
  assert.equal(await useApp(bob), 200);
  await waitFor(async () => {
    const s = (await gh.gh.store.listSessions('bob')).filter((r) => r.revokedAt === null);
    return s.some((r) => (r.data as { checkedAt: number }).checkedAt === clock);
  }, 'the first re-check succeeds');
  assert.equal(await useApp(bob), 200);

  idp.revokePerson('bob');
  clock += RECHECK_MS + 1;
  // The request that notices the check is due still gets through; the answer arrives in the background.
  assert.equal(await useApp(bob), 200);
  await waitFor(async () => (await whoami(bob)).status === 401, 'the session ends after the refused refresh');
  // The session ends at once; its record is written right after (durably, but not before the revocation).
  const endedRecord = async () =>
    (await gh.gh.store.queryAudit({ type: 'session.ended', limit: 1000 })).find(
      (r) => r.data.reason === 'upstream_refused' && r.data.sub === 'bob',
    );
  await waitFor(async () => (await endedRecord()) !== undefined, 'the end is audited');
  const ended = await endedRecord();
  assert.ok(ended, 'the end is audited');
  assert.equal(ended.data.upstream_error, 'invalid_grant');
  // The other browser's session is re-checked on its own next use and ends too.
  assert.equal(await useApp(bob2), 200);
  await waitFor(async () => (await whoami(bob2)).status === 401, 'the second session ends as well');
  assert.equal(await useApp(bob2), 302, 'the proxy sends the person to sign in again');
});

async function waitFor(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out: ${what}`);
}
