// Single sign-on across hosts, in real Chromium. One Gatehouse answers as three hosts: its own
// (id.example.test: login, callback, sign-out) and two routes, jira.example.test and grafana.example.test.
// Chromium's host resolver sends *.example.test to the one server, keeping the names in URLs, Host headers
// and cookie scopes. A person signs in from jira, lands back there with a host-only cookie, reaches grafana
// without a second password prompt, and signs out on jira: the one session ends on every host and at the IdP.
// A hand-off URL from someone else's sign-in, opened in this browser, is refused (login CSRF).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumSkip as skip, launchChromium, signIn } from '../helpers/browser.js';
import { parseConfigText } from '../../src/config/load.js';
import { generateKekText } from '../../src/keys/seal.js';
import { startGatehouse, type Gatehouse } from '../../src/server/app.js';
import { createLogger } from '../../src/lib/logger.js';
import { startDevIdp, type DevIdp } from '../../src/server/dev-idp.js';
import { startDemoApp, type DemoApp } from '../../src/server/demo-app.js';
import { tempDir } from '../helpers/gatehouse.js';
import { DEV_ROLES, devConnector, signedInRoute } from '../helpers/sso.js';
import { CookieJar, loginUntilCallback, send } from '../helpers/http-browser.js';

const ID = 'http://id.example.test';
const JIRA = 'http://jira.example.test';
const GRAFANA = 'http://grafana.example.test';
const COOKIE = 'gatehouse_session';
const NONCE = 'gatehouse_handoff';

let dir: string;
let idp: DevIdp;
let app: DemoApp;
let gh: Gatehouse;
let browser: Browser;

before(async () => {
  if (skip) return;
  dir = tempDir();
  // The IdP on its own loopback address, outside the *.example.test mapping.
  idp = await startDevIdp({ host: '127.0.0.2' });
  app = await startDemoApp();
  const route = (name: string, from: string) => signedInRoute(name, from, app.url);
  const { config } = parseConfigText('', {
    file: 'test.yaml',
    baseDir: dir,
    base: {
      // Every public URL names a host; the port the server binds is Chromium's business (the mapping).
      issuer: { url: ID },
      server: { host: '127.0.0.1', port: 0 },
      store: { sqlite: { path: join(dir, 'gatehouse.db') } },
      keys: { encryption_key: generateKekText() },
      log: { level: 'silent' },
      connectors: [devConnector(idp)],
      roles: DEV_ROLES,
      // No sessions.return_hosts: a sign-in may return to the routes' own hosts.
      routes: [route('jira', JIRA), route('grafana', GRAFANA)],
    },
  });
  gh = await startGatehouse(config, { logger: createLogger({ level: 'silent' }) });
  idp.allowRedirect(gh.browserAuth.redirectUri, `${ID}/.gatehouse/signed-out`);
  assert.equal(gh.browserAuth.redirectUri, `${ID}/.gatehouse/callback`);
  browser = await launchChromium({
    hostResolverRules: `MAP *.example.test 127.0.0.1:${new URL(gh.url).port}`,
  });
});

after(async () => {
  await browser?.close();
  await gh?.close();
  await idp?.close();
  await app?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every top-level navigation of a page, redirects included, and the Set-Cookie headers it got. */
function recordNavigations(page: Page): { urls: string[]; setCookies: Map<string, string[]> } {
  const seen = { urls: [] as string[], setCookies: new Map<string, string[]>() };
  page.on('request', (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) seen.urls.push(r.url());
  });
  page.on('response', async (r) => {
    const values = (await r.headersArray())
      .filter((h) => h.name.toLowerCase() === 'set-cookie')
      .flatMap((h) => h.value.split('\n'));
    if (values.length) seen.setCookies.set(r.url(), values);
  });
  return seen;
}

/** /.gatehouse/whoami on a host, as the browser sees it: its claims, or undefined when not signed in. */
async function whoamiOn(page: Page, origin: string): Promise<Record<string, unknown> | undefined> {
  const res = await page.goto(`${origin}/.gatehouse/whoami`);
  assert.ok(res);
  return res.status() === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
}

/** The upstream's echo of the request it got (the demo app answers with method, path and headers). */
async function echo(page: Page): Promise<{ path: string; headers: Record<string, string> }> {
  return JSON.parse((await page.textContent('body')) ?? '{}') as {
    path: string;
    headers: Record<string, string>;
  };
}

/** Session cookies by host. */
async function sessionCookies(
  ctx: BrowserContext,
): Promise<Map<string, { domain: string; httpOnly: boolean; sameSite: string; path: string }>> {
  return new Map((await ctx.cookies()).filter((c) => c.name === COOKIE).map((c) => [c.domain, c]));
}

/** alice opens a jira page, signs in at the IdP's password form and lands back on that page. */
async function signInFromJira(ctx: BrowserContext, path = '/browse/X-1?focus=comments') {
  const page = await ctx.newPage();
  const nav = recordNavigations(page);
  await page.goto(`${JIRA}${path}`);
  assert.ok(page.url().startsWith(idp.url), `sent to the IdP (at ${page.url()})`);
  await page.waitForSelector('input[name=password]');
  await signIn(page, 'alice', 'alice-password');
  await page.waitForURL(`${JIRA}${path}`);
  const handoff = nav.urls.find((u) => u.startsWith(`${JIRA}/.gatehouse/session?ticket=`));
  assert.ok(handoff, `the hand-off happened on jira's host (${nav.urls.join(' → ')})`);
  return { page, nav, handoff };
}

test(
  'signing in from a route on jira.example.test goes through the Gatehouse host and lands back on the page, with a host-only cookie on jira',
  { skip },
  async () => {
    const ctx = await browser.newContext();
    const { page, nav, handoff } = await signInFromJira(ctx);
    const body = await echo(page);
    assert.equal(body.path, '/browse/X-1?focus=comments', 'the original URL, query included');
    assert.equal(body.headers['x-gatehouse-user'], 'alice');
    assert.equal(body.headers['x-gatehouse-email'], 'alice@example.com');
    assert.ok(!(body.headers.cookie ?? '').includes(COOKIE), "Gatehouse's cookie is not forwarded upstream");

    // The way there: login and callback on the Gatehouse host, then the one-time hand-off on jira's.
    const hosts = nav.urls.map((u) => new URL(u));
    const at = (origin: string, path: string) =>
      hosts.findIndex((u) => u.origin === origin && u.pathname === path);
    const login = at(ID, '/.gatehouse/login');
    const callback = at(ID, '/.gatehouse/callback');
    const session = at(JIRA, '/.gatehouse/session');
    assert.ok(login >= 0 && callback > login && session > callback, nav.urls.join(' → '));
    assert.equal(hosts[login]?.searchParams.get('rd'), `${JIRA}/browse/X-1?focus=comments`);

    // One cookie per host, each host-only: jira's cannot be read by grafana or any other host.
    const cookies = await sessionCookies(ctx);
    assert.deepEqual([...cookies.keys()].sort(), ['id.example.test', 'jira.example.test']);
    const jira = cookies.get('jira.example.test');
    assert.ok(jira);
    assert.equal(jira.domain, 'jira.example.test', 'host-only (no leading dot, no parent domain)');
    assert.equal(jira.httpOnly, true);
    assert.equal(jira.sameSite, 'Lax');
    assert.equal(jira.path, '/');
    const raw = (nav.setCookies.get(handoff) ?? []).find((c) => c.startsWith(`${COOKIE}=`));
    assert.ok(raw, 'the hand-off set the cookie');
    assert.doesNotMatch(raw, /;\s*domain=/i, 'no Domain attribute');

    // The hand-off was bound to this browser: jira's redirect to sign in set a nonce there, host-only,
    // and the hand-off that used it cleared it.
    const first = `${JIRA}/browse/X-1?focus=comments`;
    const nonce = (nav.setCookies.get(first) ?? []).find((c) => c.startsWith(`${NONCE}=`));
    assert.ok(nonce, `jira's redirect to sign in set ${NONCE}`);
    for (const attr of [/; HttpOnly/, /; SameSite=Lax/, /; Path=\//, /; Max-Age=600/])
      assert.match(nonce, attr);
    assert.doesNotMatch(nonce, /;\s*domain=/i);
    assert.match((nav.setCookies.get(handoff) ?? []).join('\n'), new RegExp(`${NONCE}=; .*Max-Age=0`));
    assert.deepEqual(
      (await ctx.cookies()).filter((c) => c.name === NONCE),
      [],
      'no nonce left in the browser',
    );

    // The same session on both hosts.
    const onJira = await whoamiOn(page, JIRA);
    const onId = await whoamiOn(page, ID);
    assert.equal(onJira?.sub, 'alice');
    assert.equal(onJira?.sid, onId?.sid);
    assert.equal(await whoamiOn(page, GRAFANA), undefined, 'no cookie on grafana yet');
    await ctx.close();
  },
);

test(
  'then grafana.example.test signs in without a second password prompt: the same session, a cookie of its own',
  { skip },
  async () => {
    const ctx = await browser.newContext();
    const { page } = await signInFromJira(ctx);
    const sid = (await whoamiOn(page, JIRA))?.sid;
    assert.ok(sid);

    const nav = recordNavigations(page);
    const toIdp: string[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(idp.url)) toIdp.push(r.url());
    });
    await page.goto(`${GRAFANA}/d/abc?orgId=1`);
    assert.equal(page.url(), `${GRAFANA}/d/abc?orgId=1`);
    const body = await echo(page);
    assert.equal(body.path, '/d/abc?orgId=1');
    assert.equal(body.headers['x-gatehouse-user'], 'alice');
    assert.deepEqual(toIdp, [], 'the IdP was not asked again');
    assert.ok(
      !nav.urls.some((u) => new URL(u).pathname === '/.gatehouse/callback'),
      `no new sign-in: ${nav.urls.join(' → ')}`,
    );
    assert.deepEqual(
      nav.urls.map((u) => `${new URL(u).origin}${new URL(u).pathname}`),
      [`${GRAFANA}/d/abc`, `${ID}/.gatehouse/login`, `${GRAFANA}/.gatehouse/session`, `${GRAFANA}/d/abc`],
    );

    const cookies = await sessionCookies(ctx);
    assert.deepEqual([...cookies.keys()].sort(), [
      'grafana.example.test',
      'id.example.test',
      'jira.example.test',
    ]);
    assert.equal((await whoamiOn(page, GRAFANA))?.sid, sid, 'one session, three host-only cookies');
    await ctx.close();
  },
);

test(
  'a hand-off URL left in the address bar is spent: another browser that opens it is refused and not signed in',
  { skip },
  async () => {
    const ctx = await browser.newContext();
    const { handoff } = await signInFromJira(ctx);
    await ctx.close();

    const other = await browser.newContext();
    const page = await other.newPage();
    const res = await page.goto(handoff);
    assert.equal(res?.status(), 400);
    assert.match((await page.textContent('body')) ?? '', /already used or has expired/);
    assert.match((await page.textContent('body')) ?? '', /ERR_LOGIN_STATE_INVALID/);
    assert.equal((await sessionCookies(other)).size, 0);
    await page.goto(`${JIRA}/`);
    assert.ok(page.url().startsWith(idp.url), 'jira still asks this browser to sign in');
    await other.close();
  },
);

test(
  'signing out on jira.example.test ends the one session on every host, and at the IdP',
  { skip },
  async () => {
    const ctx = await browser.newContext();
    const { page } = await signInFromJira(ctx);
    await page.goto(`${GRAFANA}/`);
    assert.equal(page.url(), `${GRAFANA}/`);

    // jira's sign-out link: the form posts back to jira (its CSP allows no other host).
    await page.goto(`${JIRA}/.gatehouse/logout`);
    assert.match((await page.textContent('body')) ?? '', /Signed in as alice@example\.com/);
    await page.click('button');
    // Gatehouse's session is over; the browser goes on to the IdP to end its session too.
    await page.waitForURL((u) => u.href.startsWith(`${idp.url}/session/end`));
    await page.click('button[type=submit]');
    await page.waitForURL(`${ID}/.gatehouse/signed-out`);

    const cookies = await sessionCookies(ctx);
    assert.equal(cookies.has('jira.example.test'), false, 'the cookie of the host signed out on is cleared');
    // The other hosts' cookies are still in the browser, but name an ended session.
    assert.ok(cookies.has('grafana.example.test') && cookies.has('id.example.test'));
    for (const origin of [JIRA, GRAFANA, ID]) assert.equal(await whoamiOn(page, origin), undefined, origin);

    // grafana sends the browser to sign in again, and the IdP asks for the password.
    await page.goto(`${GRAFANA}/d/abc`);
    assert.ok(page.url().startsWith(idp.url), `at ${page.url()}`);
    await page.waitForSelector('input[name=password]');
    await signIn(page, 'alice', 'alice-password');
    await page.waitForURL(`${GRAFANA}/d/abc`);
    assert.equal((await echo(page)).headers['x-gatehouse-user'], 'alice');
    await ctx.close();
  },
);

test(
  "login CSRF: someone else's fresh hand-off URL, opened in this browser, is refused; this browser is not signed in as them and can start its own sign-in",
  { skip },
  async () => {
    // bob, with any HTTP client, signs in for a jira page and keeps the hand-off URL instead of opening it.
    const connect = gh.url;
    const bob = new CookieJar();
    const start = await send(bob, `${JIRA}/projects/secret`, { connect });
    assert.equal(start.status, 302, start.text);
    const { callback } = await loginUntilCallback(
      bob,
      ID,
      { username: 'bob', password: 'bob-password' },
      { start: start.location ?? '', connect },
    );
    const captured = (await send(bob, callback, { connect })).location ?? '';
    assert.match(captured, new RegExp(`^${JIRA}/\\.gatehouse/session\\?ticket=`));

    // alice's browser opens it within the minute (a link bob sent her).
    const victim = await browser.newContext();
    const page = await victim.newPage();
    const res = await page.goto(captured);
    assert.equal(res?.status(), 400);
    const text = (await page.textContent('body')) ?? '';
    assert.match(text, /not started in this browser/);
    assert.match(text, /ERR_LOGIN_STATE_INVALID/);
    assert.equal((await sessionCookies(victim)).size, 0, 'no session cookie on any host');
    assert.equal(await whoamiOn(await victim.newPage(), JIRA), undefined, 'not signed in to jira as bob');

    // The page offers to start again: alice signs in as herself and lands on the page.
    await page.click('text=Start the sign-in again');
    await page.waitForSelector('input[name=password]');
    assert.ok(page.url().startsWith(idp.url), `at the IdP (${page.url()})`);
    await signIn(page, 'alice', 'alice-password');
    await page.waitForURL(`${JIRA}/projects/secret`);
    assert.equal((await echo(page)).headers['x-gatehouse-user'], 'alice');
    await victim.close();
  },
);

test(
  "a sign-in link on Gatehouse's own host for a jira page works on a first visit: the browser passes through jira to be bound",
  { skip },
  async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const nav = recordNavigations(page);
    await page.goto(`${ID}/.gatehouse/login?rd=${encodeURIComponent(`${JIRA}/browse/X-9`)}`);
    await page.waitForSelector('input[name=password]');
    await signIn(page, 'alice', 'alice-password');
    await page.waitForURL(`${JIRA}/browse/X-9`);
    assert.equal((await echo(page)).headers['x-gatehouse-user'], 'alice');
    const path = nav.urls.map((u) => `${new URL(u).origin}${new URL(u).pathname}`);
    assert.deepEqual(path.slice(0, 3), [
      `${ID}/.gatehouse/login`,
      `${JIRA}/.gatehouse/login`,
      `${ID}/.gatehouse/login`,
    ]);
    await ctx.close();
  },
);
