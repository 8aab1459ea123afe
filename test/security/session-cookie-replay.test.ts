// Replaying a session cookie on another host. Every route host gets its own host-only cookie naming the
// same server-side session, and an app behind forward-auth (nginx, Caddy, Traefik) may see the browser's
// whole Cookie header: an upstream, or whoever reads its logs, holds app-a's Gatehouse cookie. Each case
// takes a real cookie from a real sign-in (dev IdP, cross-host hand-off) and presents it where it was not
// set: on another route's host, on Gatehouse's own host, through the proxy and through forward-auth. It
// must identify nobody there (and be audited like any invalid cookie), while still working where it was set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { signedInRoute, startSsoStack, visitVia } from '../helpers/sso.js';
import type { DevIdp } from '../../src/server/dev-idp.js';
import { startDemoApp, type DemoApp } from '../../src/server/demo-app.js';
import { request } from 'node:http';
import { CookieJar, loginUntilCallback, send, type HttpResponse } from '../helpers/http-browser.js';

const ALICE = { username: 'alice', password: 'alice-password' };
const SESSION_COOKIE = 'gatehouse_session';
const APP_A = 'http://app-a.example.test';
const APP_B = 'http://app-b.example.test';
let idp: DevIdp;
let app: DemoApp;
let gh: TestGatehouse;

before(async () => {
  app = await startDemoApp();
  const route = (name: string, from: string) => signedInRoute(name, from, app.url);
  ({ idp, gh } = await startSsoStack({
    base: { routes: [route('app-a', APP_A), route('app-b', APP_B)] },
  }));
});

after(async () => {
  await gh?.close();
  await idp?.close();
  await app?.close();
});

const visit = (jar: CookieJar, url: string): Promise<HttpResponse> => visitVia(gh, jar, url);

/**
 * An API call (no `text/html`, so no sign-in redirect: an unauthenticated one is a 401 that is always
 * audited) to Gatehouse with these headers; `host` is the Host header it carries.
 */
function apiGet(
  host: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string; challenge: string | undefined }> {
  const to = new URL(gh.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: to.hostname,
        port: to.port,
        path,
        headers: { host, accept: 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text, challenge: res.headers['www-authenticate'] }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Alice signs in from `origin`'s page; returns the session cookie value that host got. */
async function signInOn(origin: string): Promise<{ jar: CookieJar; cookie: string }> {
  const jar = new CookieJar();
  const start = await visit(jar, `${origin}/`);
  assert.equal(start.status, 302, start.text);
  const { callback } = await loginUntilCallback(jar, gh.url, ALICE, { start: start.location ?? '' });
  const back = await send(jar, callback);
  assert.equal(back.status, 303, back.text);
  const handoff = await visit(jar, back.location ?? '');
  assert.equal(handoff.status, 303, handoff.text);
  const cookie = jar.get(origin, SESSION_COOKIE);
  assert.ok(cookie, `the hand-off set ${origin}'s session cookie`);
  return { jar, cookie };
}

/** A browser holding only `cookie` as its session cookie on `origin`. */
function jarWith(origin: string, cookie: string): CookieJar {
  const jar = new CookieJar();
  jar.set(origin, SESSION_COOKIE, cookie);
  return jar;
}

async function whoOn(jar: CookieJar, origin: string): Promise<string | undefined> {
  const res = await visit(jar, `${origin}/.gatehouse/whoami`);
  return res.status === 200 ? (JSON.parse(res.text) as { sub: string }).sub : undefined;
}

test("app-a's cookie signs alice in on app-a, where it was set", async () => {
  const { cookie } = await signInOn(APP_A);
  const page = await apiGet('app-a.example.test', '/x', { cookie: `${SESSION_COOKIE}=${cookie}` });
  assert.equal(page.status, 200, page.text);
  assert.equal(
    (JSON.parse(page.text) as { headers: Record<string, string> }).headers['x-gatehouse-user'],
    'alice',
  );
  assert.equal(await whoOn(jarWith(APP_A, cookie), APP_A), 'alice');
});

test("app-a's cookie replayed on app-b identifies nobody, and is audited as an invalid cookie", async () => {
  const { cookie } = await signInOn(APP_A);
  const res = await apiGet('app-b.example.test', '/secret', { cookie: `${SESSION_COOKIE}=${cookie}` });
  assert.equal(res.status, 401, res.text);
  assert.match(res.challenge ?? '', /^Bearer/);
  const browser = await visit(jarWith(APP_B, cookie), `${APP_B}/secret`);
  assert.equal(browser.status, 302, 'a browser bringing it is sent to sign in');
  assert.equal(
    await whoOn(jarWith(APP_B, cookie), APP_B),
    undefined,
    "nor is it anyone on app-b's /.gatehouse/",
  );
  const rows = await gh.gh.store.queryAudit({ type: 'access.denied' });
  const row = rows.find((r) => r.data.route === 'app-b' && r.data.path === '/secret');
  assert.ok(row, 'the refusal is audited');
  assert.equal(row.data.reason, 'no_credentials');
  assert.equal(row.data.session_cookie, 'not_valid');
  // The session itself is untouched: the cookie still works where it was set.
  assert.equal(await whoOn(jarWith(APP_A, cookie), APP_A), 'alice');
});

test("app-a's cookie replayed on Gatehouse's own host identifies nobody", async () => {
  const { cookie } = await signInOn(APP_A);
  assert.equal(await whoOn(jarWith(gh.url, cookie), gh.url), undefined);
});

test("Gatehouse's own cookie replayed on a route's host identifies nobody", async () => {
  const { jar } = await signInOn(APP_A);
  const own = jar.get(gh.url, SESSION_COOKIE);
  assert.ok(own, 'the callback set a cookie on the Gatehouse host');
  assert.equal(await whoOn(jarWith(gh.url, own), gh.url), 'alice');
  const res = await apiGet('app-b.example.test', '/', { cookie: `${SESSION_COOKIE}=${own}` });
  assert.equal(res.status, 401, res.text);
});

test("app-a's cookie replayed through forward-auth for app-b identifies nobody", async () => {
  const { cookie } = await signInOn(APP_A);
  const ask = (origin: string) =>
    apiGet(new URL(gh.url).host, '/.gatehouse/auth', {
      'x-forwarded-host': new URL(origin).host,
      'x-forwarded-uri': '/page',
      'x-forwarded-method': 'GET',
      'x-forwarded-proto': 'http',
      cookie: `${SESSION_COOKIE}=${cookie}`,
    });
  // app-a first, so its allow is in the decision cache when app-b asks with the same cookie.
  const own = await ask(APP_A);
  assert.equal(own.status, 200, own.text);
  const other = await ask(APP_B);
  assert.equal(other.status, 401, other.text);
});
