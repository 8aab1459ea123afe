// Attacks on the cross-host sign-in hand-off. A route on another host (jira.example.test) sends the browser
// to sign in on Gatehouse's host, and gives it a hand-off nonce in a host-only cookie on the way; the
// callback answers with a one-time ticket in a URL on the route's host (/.gatehouse/session?ticket=…),
// bound to that nonce, that sets that host's session cookie. Each case gets a real ticket through the dev
// IdP, then replays, moves, delays, races or forges it, or opens it in another browser (login CSRF: the
// attacker's own ticket signing a victim in as the attacker). Every refusal is checked by status, code,
// message, its audit record, and the absence of a session on the host it was presented to.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { signedInRoute, startSsoStack, visitVia } from '../helpers/sso.js';
import type { DevIdp } from '../../src/server/dev-idp.js';
import { startDemoApp, type DemoApp } from '../../src/server/demo-app.js';
import { bindingOf } from '../../src/session/handoff-binding.js';
import {
  CookieJar,
  loginUntilCallback,
  send,
  setCookieValue,
  type HttpResponse,
} from '../helpers/http-browser.js';

const ALICE = { username: 'alice', password: 'alice-password' };
const BOB = { username: 'bob', password: 'bob-password' };
const SESSION_COOKIE = 'gatehouse_session';
const NONCE_COOKIE = 'gatehouse_handoff';
const JIRA = 'http://jira.example.test';
const GRAFANA = 'http://grafana.example.test';
let idp: DevIdp;
let app: DemoApp;
let gh: TestGatehouse;
let clock = Date.now();

before(async () => {
  app = await startDemoApp();
  const route = (name: string, from: string) => signedInRoute(name, from, app.url);
  ({ idp, gh } = await startSsoStack({
    now: () => clock,
    // No sessions.return_hosts: the routes' own hosts are where a sign-in may return.
    base: { routes: [route('jira', JIRA), route('grafana', GRAFANA)] },
  }));
});

after(async () => {
  await gh?.close();
  await idp?.close();
  await app?.close();
});

const visit = (jar: CookieJar, url: string): Promise<HttpResponse> => visitVia(gh, jar, url);

/** The browser opens `rd` (a page on a route's host) and is sent to sign in: the login URL it gets. */
async function startAt(jar: CookieJar, rd: string): Promise<string> {
  const res = await visit(jar, rd);
  assert.equal(res.status, 302, res.text);
  const login = new URL(res.location ?? '');
  assert.equal(login.origin, gh.url, 'sign-in happens on the Gatehouse host');
  assert.ok(jar.get(rd, NONCE_COOKIE), "the route's host gave the browser a hand-off nonce");
  return login.href;
}

/**
 * `who` (alice unless told) opens `rd` in `jar` (a new browser unless told), signs in, and gets back the
 * unvisited hand-off URL on rd's host.
 */
async function handoffFor(
  rd: string,
  jar = new CookieJar(),
  who = ALICE,
): Promise<{ jar: CookieJar; handoff: string }> {
  const start = await startAt(jar, rd);
  const { callback } = await loginUntilCallback(jar, gh.url, who, { start });
  const res = await send(jar, callback);
  assert.equal(res.status, 303, res.text);
  const handoff = res.location ?? '';
  assert.equal(new URL(rd).origin, new URL(handoff).origin, 'the hand-off is on the route host');
  assert.match(handoff, /\/\.gatehouse\/session\?ticket=[A-Za-z0-9_-]{32}$/);
  return { jar, handoff };
}

/** Who the browser is on `origin` (its /.gatehouse/whoami), or undefined when not signed in there. */
async function whoOn(jar: CookieJar, origin: string): Promise<string | undefined> {
  const res = await visit(jar, `${origin}/.gatehouse/whoami`);
  return res.status === 200 ? (JSON.parse(res.text) as { sub: string }).sub : undefined;
}

/**
 * A refused hand-off: 400 ERR_LOGIN_STATE_INVALID with this message, audited, and no session cookie;
 * returns the audit record.
 */
async function assertRefused(res: HttpResponse, message: RegExp): Promise<Record<string, unknown>> {
  assert.equal(res.status, 400, res.text);
  assert.match(res.text, /ERR_LOGIN_STATE_INVALID/);
  assert.match(res.text, message);
  assert.equal(setCookieValue(res.setCookies, SESSION_COOKIE), undefined, 'no session cookie is set');
  assert.equal(res.location, undefined, 'no redirect onwards');
  const auditId = /audit id <code>([^<]+)<\/code>/.exec(res.text)?.[1];
  assert.ok(auditId, 'the page shows the audit id');
  const [row] = await gh.gh.store.queryAudit({ id: auditId });
  assert.ok(row, 'the refusal is in the audit log');
  assert.equal(row.type, 'login.refused');
  assert.equal(row.data.code, 'ERR_LOGIN_STATE_INVALID');
  assert.equal(row.data.path, '/.gatehouse/session');
  return row.data;
}

test('baseline: the ticket, used once on its own host, sets a host-only cookie and lands on the page', async () => {
  const jar = new CookieJar();
  const start = await visit(jar, `${JIRA}/browse/X-1?focus=1`);
  assert.equal(start.status, 302);
  const login = new URL(start.location ?? '');
  assert.equal(login.origin, gh.url, 'sign-in happens on the Gatehouse host');
  assert.equal(login.searchParams.get('rd'), `${JIRA}/browse/X-1?focus=1`);
  // The nonce: host-only, HttpOnly, SameSite=Lax, short-lived; only its hash travels in the login URL.
  const set = start.setCookies.find((c) => c.startsWith(`${NONCE_COOKIE}=`));
  assert.ok(set, 'the redirect to sign in sets the hand-off nonce on the route host');
  assert.match(set, /; HttpOnly/);
  assert.match(set, /; SameSite=Lax/);
  assert.match(set, /; Path=\//);
  assert.match(set, /; Max-Age=600/);
  assert.doesNotMatch(set, /;\s*domain=/i);
  const nonce = jar.get(JIRA, NONCE_COOKIE) ?? '';
  assert.equal(login.searchParams.get('binding'), bindingOf(nonce));
  assert.ok(!login.href.includes(nonce), 'the nonce itself never leaves its cookie');

  const { handoff } = await handoffFor(`${JIRA}/browse/X-1?focus=1`, jar);
  const res = await visit(jar, handoff);
  assert.equal(res.status, 303, res.text);
  assert.equal(res.location, `${JIRA}/browse/X-1?focus=1`);
  const raw = res.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  assert.ok(raw, 'the hand-off sets the session cookie');
  assert.doesNotMatch(raw, /;\s*domain=/i, 'host-only: no Domain attribute');
  assert.equal(jar.get(JIRA, NONCE_COOKIE), undefined, 'and clears the nonce it used');
  const page = await visit(jar, `${JIRA}/browse/X-1?focus=1`);
  assert.equal(page.status, 200, page.text);
  assert.equal(
    (JSON.parse(page.text) as { headers: Record<string, string> }).headers['x-gatehouse-user'],
    'alice',
  );
});

test('replaying a used ticket is refused', async () => {
  const { jar, handoff } = await handoffFor(`${JIRA}/`);
  assert.equal((await visit(jar, handoff)).status, 303);
  assert.equal(await whoOn(jar, JIRA), 'alice');
  // The URL leaked (history, a log, a shoulder): whoever replays it gets nothing.
  const attacker = new CookieJar();
  await assertRefused(await visit(attacker, handoff), /already used or has expired/);
  assert.equal(await whoOn(attacker, JIRA), undefined);
});

test('two simultaneous uses of one ticket: exactly one gets a session', async () => {
  const { jar, handoff } = await handoffFor(`${JIRA}/`);
  // Three copies of the browser that signed in (its nonce included), racing with the one ticket.
  const jars = [new CookieJar(), new CookieJar(), new CookieJar()];
  for (const j of jars) j.set(JIRA, NONCE_COOKIE, jar.get(JIRA, NONCE_COOKIE));
  const answers = await Promise.all(jars.map((j) => visit(j, handoff)));
  assert.deepEqual(
    answers.map((a) => a.status).sort(),
    [303, 400, 400],
    'the ticket is consumed atomically: one wins, the others are refused',
  );
  for (const a of answers.filter((x) => x.status !== 303)) await assertRefused(a, /already used/);
  const signedIn = await Promise.all(jars.map((j) => whoOn(j, JIRA)));
  assert.equal(signedIn.filter((s) => s === 'alice').length, 1);
});

test("a ticket presented on another route's host is refused, and is spent", async () => {
  const { jar, handoff } = await handoffFor(`${JIRA}/`);
  const moved = new URL(handoff);
  const attacker = new CookieJar();
  await assertRefused(
    await visit(attacker, `${GRAFANA}${moved.pathname}${moved.search}`),
    /for another host/,
  );
  assert.equal(await whoOn(attacker, GRAFANA), undefined);
  // Refused on the wrong host, it cannot be tried again on the right one, even by its own browser.
  await assertRefused(await visit(jar, handoff), /already used/);
  assert.equal(await whoOn(jar, JIRA), undefined);
});

test('a ticket presented on the Gatehouse host itself is refused', async () => {
  const { handoff } = await handoffFor(`${JIRA}/`);
  const moved = new URL(handoff);
  const attacker = new CookieJar();
  await assertRefused(await visit(attacker, `${gh.url}${moved.pathname}${moved.search}`), /for another host/);
  assert.equal(await whoOn(attacker, gh.url), undefined);
});

test('a ticket older than a minute is refused', async () => {
  const { handoff } = await handoffFor(`${JIRA}/`);
  clock += 61_000;
  try {
    const late = new CookieJar();
    await assertRefused(await visit(late, handoff), /already used or has expired/);
    assert.equal(await whoOn(late, JIRA), undefined);
  } finally {
    clock -= 61_000;
  }
});

test('a guessed, empty or truncated ticket is refused', async () => {
  const { jar: own, handoff } = await handoffFor(`${JIRA}/`);
  const real = new URL(handoff).searchParams.get('ticket') ?? '';
  for (const forged of ['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '', real.slice(0, -1), `${real}A`]) {
    const jar = new CookieJar();
    await assertRefused(
      await visit(jar, `${JIRA}/.gatehouse/session?ticket=${encodeURIComponent(forged)}`),
      /already used or has expired/,
    );
    assert.equal(await whoOn(jar, JIRA), undefined);
  }
  // None of those spent the real one.
  assert.equal((await visit(own, handoff)).status, 303);
  assert.equal(await whoOn(own, JIRA), 'alice');
});

test('a ticket whose session ended before it was used is refused', async () => {
  const { jar, handoff } = await handoffFor(`${JIRA}/`);
  // alice signs out on the Gatehouse host before the hand-off URL is opened.
  const page = await send(jar, `${gh.url}/.gatehouse/logout`);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
  assert.ok(csrf, page.text);
  assert.equal((await send(jar, `${gh.url}/.gatehouse/logout`, { form: { csrf } })).status, 200);
  await assertRefused(await visit(jar, handoff), /session of this hand-off has ended/);
  assert.equal(await whoOn(jar, JIRA), undefined);
});

test("a sign-in returns to a route's host, never to a host that no route or return_hosts names", async () => {
  for (const rd of [
    'http://evil.example.test/',
    'http://jira.example.test.evil.test/',
    'http://example.test/',
    'http://jira.example.test@evil.example.test/',
  ]) {
    const jar = new CookieJar();
    const res = await send(jar, `${gh.url}/.gatehouse/login?rd=${encodeURIComponent(rd)}`);
    assert.equal(res.status, 400, `${rd}: ${res.text}`);
    assert.match(res.text, /ERR_RETURN_URL_REFUSED/);
    assert.equal(res.location, undefined);
  }
});

/** The "start again" link of a refusal page, and where following it goes. */
async function startAgain(jar: CookieJar, res: HttpResponse): Promise<void> {
  const href = /<a href="([^"]+)">Start the sign-in again<\/a>/.exec(res.text)?.[1]?.replace(/&#38;/g, '&');
  assert.ok(href, `the page offers to start the sign-in again: ${res.text}`);
  assert.equal(new URL(href).origin, JIRA, "it starts on the route's host, which binds this browser");
  const next = await visit(jar, href);
  assert.equal(next.status, 302, next.text);
  assert.equal(new URL(next.location ?? '').origin, gh.url);
  assert.ok(new URL(next.location ?? '').searchParams.get('binding'));
  assert.ok(jar.get(JIRA, NONCE_COOKIE));
}

test("login CSRF: the attacker's own fresh ticket, opened in a browser that started no sign-in, is refused", async () => {
  // bob signs in for jira in his own browser and keeps the hand-off URL instead of opening it.
  const { handoff } = await handoffFor(`${JIRA}/secret-project`, new CookieJar(), BOB);
  // alice's browser opens it (a link in a mail, an <img>, a redirect from bob's page) within the minute.
  const victim = new CookieJar();
  const res = await visit(victim, handoff);
  const audit = await assertRefused(res, /not started in this browser/);
  assert.equal(audit.refusal, 'not_this_browser');
  assert.equal(audit.actual, 'missing');
  assert.equal(audit.field, NONCE_COOKIE);
  assert.equal(audit.ticket_sub, 'bob', 'the record names whose ticket it was');
  assert.equal(audit.host, 'jira.example.test');
  assert.equal(await whoOn(victim, JIRA), undefined, 'the victim is not signed in as bob');
  await startAgain(victim, res);
});

test("login CSRF: the attacker's ticket is refused in a browser in the middle of its own sign-in, which still completes", async () => {
  const victim = new CookieJar();
  const start = await startAt(victim, `${JIRA}/`);
  const { handoff } = await handoffFor(`${JIRA}/`, new CookieJar(), BOB);
  const audit = await assertRefused(await visit(victim, handoff), /not started in this browser/);
  assert.equal(audit.actual, 'another sign-in');
  assert.equal(audit.ticket_sub, 'bob');
  assert.equal(await whoOn(victim, JIRA), undefined);
  // The refusal left the victim's own sign-in alone: it finishes as alice.
  const { callback } = await loginUntilCallback(victim, gh.url, ALICE, { start });
  const back = await send(victim, callback);
  assert.equal(back.status, 303, back.text);
  assert.equal((await visit(victim, back.location ?? '')).status, 303);
  assert.equal(await whoOn(victim, JIRA), 'alice');
});

test("login CSRF: a binding the attacker writes into the login URL binds the ticket to their nonce, not the victim's", async () => {
  // bob starts at Gatehouse's login by hand with the hash of a nonce of his choosing.
  const chosen = 'A'.repeat(43);
  const bob = new CookieJar();
  const q = new URLSearchParams({ rd: `${JIRA}/`, binding: bindingOf(chosen) });
  const { callback } = await loginUntilCallback(bob, gh.url, BOB, {
    start: `${gh.url}/.gatehouse/login?${q}`,
  });
  const res = await send(bob, callback);
  assert.equal(res.status, 303, res.text);
  const handoff = res.location ?? '';
  // The victim's browser holds its own nonce (it opened jira), which bob cannot read or set.
  const victim = new CookieJar();
  await startAt(victim, `${JIRA}/`);
  await assertRefused(await visit(victim, handoff), /not started in this browser/);
  assert.equal(await whoOn(victim, JIRA), undefined);
});

test("a sign-in link on Gatehouse's host for a route's page goes through that host first, to bind the browser", async () => {
  const jar = new CookieJar();
  const rd = `${JIRA}/browse/X-2`;
  const first = await send(jar, `${gh.url}/.gatehouse/login?rd=${encodeURIComponent(rd)}`);
  assert.equal(first.status, 302, first.text);
  const there = new URL(first.location ?? '');
  assert.equal(`${there.origin}${there.pathname}`, `${JIRA}/.gatehouse/login`);
  assert.equal(there.searchParams.get('rd'), rd);
  const start = await visit(jar, there.href);
  assert.equal(start.status, 302, start.text);
  const login = new URL(start.location ?? '');
  assert.equal(login.origin, gh.url);
  assert.equal(login.searchParams.get('binding'), bindingOf(jar.get(JIRA, NONCE_COOKIE) ?? ''));
  const { callback } = await loginUntilCallback(jar, gh.url, ALICE, { start: login.href });
  const back = await send(jar, callback);
  assert.equal(back.status, 303, back.text);
  const landed = await visit(jar, back.location ?? '');
  assert.equal(landed.status, 303, landed.text);
  assert.equal(landed.location, rd);
  assert.equal(await whoOn(jar, JIRA), 'alice');
});

test("that detour never loops: a route's host that does not pass /.gatehouse/ on is named in a refusal", async () => {
  const rd = `${JIRA}/`;
  const cases = [
    // Came back unbound after the detour (the route's host answered elsewhere, or without its Host).
    `${gh.url}/.gatehouse/login?${new URLSearchParams({ rd, bounced: '1' })}`,
    // nginx's sign-in hint for the detour's own URL.
    `${gh.url}/.gatehouse/login?${new URLSearchParams({ rd: `${JIRA}/.gatehouse/login?rd=${encodeURIComponent(rd)}` })}`,
  ];
  for (const url of cases) {
    const res = await send(new CookieJar(), url);
    assert.equal(res.status, 400, `${url}: ${res.text}`);
    assert.match(res.text, /ERR_LOGIN_STATE_INVALID/);
    assert.match(res.text, /must start on jira\.example\.test/);
    assert.match(res.text, /pass the Host header unchanged/);
    assert.equal(res.location, undefined);
  }
});
