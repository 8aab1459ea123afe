// Attacks on the sign-in callback, driven over plain HTTP against a real Gatehouse and a real dev IdP:
// each login runs for real up to the IdP's redirect back to /.gatehouse/callback, then is tampered with.
// Every refusal is checked by status, message, its audit record, and the absence of a session cookie.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { startSsoStack } from '../helpers/sso.js';
import { startDevIdp, type DevIdp } from '../../src/server/dev-idp.js';
import {
  CookieJar,
  loginUntilCallback,
  send,
  setCookieValue,
  type HttpResponse,
} from '../helpers/http-browser.js';

const ALICE = { username: 'alice', password: 'alice-password' };
const SESSION_COOKIE = 'gatehouse_session';
const LOGIN_COOKIE = 'gatehouse_login';
let idp: DevIdp;
let otherIdp: DevIdp;
let gh: TestGatehouse;

before(async () => {
  // The IdP on another loopback address, so its cookies and Gatehouse's never share a host.
  ({ idp, gh } = await startSsoStack({
    base: {
      roles: { admin: ['admins'] },
      // Every case here fails a sign-in on purpose; the failure limiter has its own test.
      sessions: { max_failures: 1000 },
    },
  }));
  otherIdp = await startDevIdp({ host: '127.0.0.2' });
  otherIdp.allowRedirect(gh.gh.browserAuth.redirectUri);
});

after(async () => {
  await gh?.close();
  await idp?.close();
  await otherIdp?.close();
});

/** A refusal: its status, its message on the page, its `login.refused` audit record, and no session. */
async function assertRefused(
  res: HttpResponse,
  want: { status: number; code: string; message: RegExp; field?: string },
): Promise<Record<string, unknown>> {
  assert.equal(res.status, want.status, res.text);
  assert.match(res.text, new RegExp(want.code));
  assert.match(res.text, want.message);
  assert.equal(setCookieValue(res.setCookies, SESSION_COOKIE), undefined, 'no session cookie is set');
  const auditId = /audit id <code>([^<]+)<\/code>/.exec(res.text)?.[1];
  assert.ok(auditId, 'the page shows the audit id');
  const [row] = await gh.gh.store.queryAudit({ id: auditId });
  assert.ok(row, 'the refusal is in the audit log');
  assert.equal(row.type, 'login.refused');
  assert.equal(row.data.code, want.code);
  assert.equal(row.data.path, '/.gatehouse/callback');
  if (want.field) assert.equal(row.data.field, want.field);
  return row.data;
}

async function signedIn(jar: CookieJar): Promise<boolean> {
  return (await send(jar, `${gh.url}/.gatehouse/whoami`)).status === 200;
}

test('a tampered state is refused', async () => {
  const jar = new CookieJar();
  const { callback } = await loginUntilCallback(jar, gh.url, ALICE);
  const u = new URL(callback);
  u.searchParams.set('state', `${u.searchParams.get('state')}x`);
  const res = await send(jar, u.href);
  await assertRefused(res, {
    status: 400,
    code: 'ERR_LOGIN_STATE_INVALID',
    message: /state does not match/,
    field: 'state',
  });
  assert.equal(await signedIn(jar), false);
});

test('a replayed callback (single-use state, reused code) is refused', async () => {
  const jar = new CookieJar();
  const { callback } = await loginUntilCallback(jar, gh.url, ALICE);
  // The attacker has the callback URL and the browser-binding cookie too.
  const binding = jar.get(gh.url, LOGIN_COOKIE);
  assert.ok(binding);
  const first = await send(jar, callback);
  assert.equal(first.status, 303, first.text);
  assert.equal(first.location, `${gh.url}/.gatehouse/whoami`);
  assert.ok(setCookieValue(first.setCookies, SESSION_COOKIE), 'the first callback signs in');
  const thief = new CookieJar();
  thief.set(gh.url, LOGIN_COOKIE, binding);
  const again = await send(thief, callback);
  await assertRefused(again, {
    status: 400,
    code: 'ERR_LOGIN_STATE_INVALID',
    message: /already used or has expired/,
    field: 'state',
  });
  assert.equal(await signedIn(thief), false);
  // The code itself is single-use at the IdP as well.
  const form = {
    grant_type: 'authorization_code',
    code: new URL(callback).searchParams.get('code') ?? '',
    redirect_uri: gh.gh.browserAuth.redirectUri,
    client_id: idp.clientId,
    client_secret: idp.clientSecret,
    code_verifier: 'x'.repeat(43),
  };
  const redeem = await fetch(`${idp.url}/token`, { method: 'POST', body: new URLSearchParams(form) });
  assert.equal(redeem.status, 400);
  assert.equal(((await redeem.json()) as { error: string }).error, 'invalid_grant');
});

test('an iss from another IdP is refused (RFC 9207 mix-up)', async () => {
  const jar = new CookieJar();
  const { callback } = await loginUntilCallback(jar, gh.url, ALICE);
  const u = new URL(callback);
  assert.equal(u.searchParams.get('iss'), idp.url, 'the dev IdP sends iss (RFC 9207)');
  u.searchParams.set('iss', otherIdp.url);
  const res = await send(jar, u.href);
  const data = await assertRefused(res, {
    status: 400,
    code: 'ERR_LOGIN_STATE_INVALID',
    message: /mix-up/,
    field: 'iss',
  });
  assert.equal(data.expected, idp.url);
  assert.equal(data.actual, otherIdp.url);
  assert.equal(await signedIn(jar), false);
});

test('a callback without the browser-binding cookie (state carried to another browser) is refused', async () => {
  const victim = new CookieJar();
  const { callback } = await loginUntilCallback(victim, gh.url, ALICE);
  const attacker = new CookieJar();
  const res = await send(attacker, callback);
  await assertRefused(res, {
    status: 400,
    code: 'ERR_LOGIN_STATE_INVALID',
    message: /not belong to a sign-in started in this browser/,
    field: 'state',
  });
  assert.equal(await signedIn(attacker), false);
  // A binding cookie from another sign-in of the attacker's own does not fit either.
  await send(attacker, `${gh.url}/.gatehouse/login?rd=/`);
  assert.ok(attacker.get(gh.url, LOGIN_COOKIE));
  const res2 = await send(attacker, callback);
  await assertRefused(res2, {
    status: 400,
    code: 'ERR_LOGIN_STATE_INVALID',
    message: /state does not match/,
  });
});

test('our authorization request always carries PKCE S256 and a nonce; the IdP refuses one without PKCE', async () => {
  const jar = new CookieJar();
  const start = await send(jar, `${gh.url}/.gatehouse/login?rd=/`);
  assert.equal(start.status, 302);
  const auth = new URL(start.location ?? '');
  assert.equal(auth.origin, idp.url);
  assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
  assert.match(auth.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
  assert.match(auth.searchParams.get('nonce') ?? '', /^[A-Za-z0-9_-]{22,}$/);
  assert.match(auth.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{22,}$/);

  for (const strip of [
    (q: URLSearchParams) => {
      q.delete('code_challenge');
      q.delete('code_challenge_method');
    },
    (q: URLSearchParams) => {
      q.set('code_challenge_method', 'plain');
      q.set('code_challenge', 'a'.repeat(43));
    },
  ]) {
    const weak = new URL(auth);
    strip(weak.searchParams);
    const res = await send(new CookieJar(), weak.href);
    const back = new URL(res.location ?? 'http://none/');
    assert.equal(back.href.startsWith(gh.gh.browserAuth.redirectUri), true, res.text);
    assert.equal(back.searchParams.get('error'), 'invalid_request');
    assert.match(back.searchParams.get('error_description') ?? '', /PKCE|code_challenge/);
  }
});

test('an ID token carrying another login’s nonce (a replayed nonce) is refused', async () => {
  // Login B is started and left open: its nonce is what an attacker would replay.
  const jarB = new CookieJar();
  const startB = await send(jarB, `${gh.url}/.gatehouse/login?rd=/`);
  const nonceB = new URL(startB.location ?? '').searchParams.get('nonce');
  assert.ok(nonceB);
  // Login A runs to its callback; the IdP's code for it is made to carry login B's nonce, as an IdP
  // replaying an earlier answer would (the ID token it issues echoes that nonce).
  const jarA = new CookieJar();
  const { callback, authorizationUrl } = await loginUntilCallback(jarA, gh.url, ALICE);
  assert.notEqual(new URL(authorizationUrl).searchParams.get('nonce'), nonceB);
  const code = await idp.provider.AuthorizationCode.find(new URL(callback).searchParams.get('code') ?? '');
  assert.ok(code);
  code.nonce = nonceB;
  await code.save();
  const res = await send(jarA, callback);
  const data = await assertRefused(res, {
    status: 401,
    code: 'ERR_LOGIN_UPSTREAM_REFUSED',
    message: /nonce is not the one this sign-in sent/,
  });
  assert.match(String(data.reason), /nonce/);
  assert.equal(await signedIn(jarA), false);
});

test('a code from another login cannot be swapped into this one (PKCE binds it)', async () => {
  const victim = new CookieJar();
  const { callback: victimCallback } = await loginUntilCallback(victim, gh.url, ALICE);
  const attacker = new CookieJar();
  const { callback: own } = await loginUntilCallback(attacker, gh.url, ALICE);
  const injected = new URL(own);
  injected.searchParams.set('code', new URL(victimCallback).searchParams.get('code') ?? '');
  const res = await send(attacker, injected.href);
  await assertRefused(res, { status: 401, code: 'ERR_LOGIN_UPSTREAM_REFUSED', message: /invalid_grant/ });
  assert.equal(await signedIn(attacker), false);
});
