// Attacks on the cross-host sign-in hand-off. A route on another host (jira.example.test) sends the browser
// to sign in on Gatehouse's host; the callback there answers with a one-time ticket in a URL on the
// route's host (/.gatehouse/session?ticket=…) that sets that host's session cookie. Each case gets a real
// ticket through the dev IdP, then replays, moves, delays, races or forges it. Every refusal is checked by
// status, code, message, its audit record, and the absence of a session on the host it was presented to.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { startSsoStack } from '../helpers/sso.js';
import type { DevIdp } from '../../src/server/dev-idp.js';
import { startDemoApp, type DemoApp } from '../../src/server/demo-app.js';
import {
  CookieJar,
  loginUntilCallback,
  send,
  setCookieValue,
  type HttpResponse,
} from '../helpers/http-browser.js';

const ALICE = { username: 'alice', password: 'alice-password' };
const SESSION_COOKIE = 'gatehouse_session';
const JIRA = 'http://jira.example.test';
const GRAFANA = 'http://grafana.example.test';
let idp: DevIdp;
let app: DemoApp;
let gh: TestGatehouse;
let clock = Date.now();

before(async () => {
  app = await startDemoApp();
  const route = (name: string, from: string) => ({
    name,
    from: `${from}/`,
    to: [app.url],
    policy: [{ name: 'signed-in', allow: { claim: 'sub', exists: true } }],
  });
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

/** A request as a browser would send it to `url`; *.example.test reaches the one Gatehouse on 127.0.0.1. */
function visit(jar: CookieJar, url: string): Promise<HttpResponse> {
  return send(jar, url, new URL(url).hostname.endsWith('.example.test') ? { connect: gh.url } : {});
}

/** alice signs in for `rd` (a route host's URL); returns her browser and the unvisited hand-off URL. */
async function handoffFor(rd: string): Promise<{ jar: CookieJar; handoff: string }> {
  const jar = new CookieJar();
  const { callback } = await loginUntilCallback(jar, gh.url, ALICE, { rd });
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

/** A refused hand-off: 400 ERR_LOGIN_STATE_INVALID with this message, audited, and no session cookie. */
async function assertRefused(res: HttpResponse, message: RegExp): Promise<void> {
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
}

test('baseline: the ticket, used once on its own host, sets a host-only cookie and lands on the page', async () => {
  const jar = new CookieJar();
  const start = await visit(jar, `${JIRA}/browse/X-1?focus=1`);
  assert.equal(start.status, 302);
  const login = new URL(start.location ?? '');
  assert.equal(login.origin, gh.url, 'sign-in happens on the Gatehouse host');
  assert.equal(login.searchParams.get('rd'), `${JIRA}/browse/X-1?focus=1`);
  const { handoff } = await handoffFor(`${JIRA}/browse/X-1?focus=1`);
  const res = await visit(jar, handoff);
  assert.equal(res.status, 303, res.text);
  assert.equal(res.location, `${JIRA}/browse/X-1?focus=1`);
  const raw = res.setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  assert.ok(raw, 'the hand-off sets the session cookie');
  assert.doesNotMatch(raw, /;\s*domain=/i, 'host-only: no Domain attribute');
  const page = await visit(jar, `${JIRA}/browse/X-1?focus=1`);
  assert.equal(page.status, 200, page.text);
  assert.equal(
    (JSON.parse(page.text) as { headers: Record<string, string> }).headers['x-gatehouse-user'],
    'alice',
  );
});

test('replaying a used ticket is refused', async () => {
  const { handoff } = await handoffFor(`${JIRA}/`);
  const victim = new CookieJar();
  assert.equal((await visit(victim, handoff)).status, 303);
  assert.equal(await whoOn(victim, JIRA), 'alice');
  // The URL leaked (history, a log, a shoulder): whoever replays it gets nothing.
  const attacker = new CookieJar();
  await assertRefused(await visit(attacker, handoff), /already used or has expired/);
  assert.equal(await whoOn(attacker, JIRA), undefined);
});

test('two simultaneous uses of one ticket: exactly one gets a session', async () => {
  const { handoff } = await handoffFor(`${JIRA}/`);
  const jars = [new CookieJar(), new CookieJar(), new CookieJar()];
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
  const { handoff } = await handoffFor(`${JIRA}/`);
  const moved = new URL(handoff);
  const attacker = new CookieJar();
  await assertRefused(
    await visit(attacker, `${GRAFANA}${moved.pathname}${moved.search}`),
    /for another host/,
  );
  assert.equal(await whoOn(attacker, GRAFANA), undefined);
  // Refused on the wrong host, it cannot be tried again on the right one.
  const victim = new CookieJar();
  await assertRefused(await visit(victim, handoff), /already used/);
  assert.equal(await whoOn(victim, JIRA), undefined);
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
  const { handoff } = await handoffFor(`${JIRA}/`);
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
  const jar = new CookieJar();
  assert.equal((await visit(jar, handoff)).status, 303);
  assert.equal(await whoOn(jar, JIRA), 'alice');
});

test('a ticket whose session ended before it was used is refused', async () => {
  const { jar, handoff } = await handoffFor(`${JIRA}/`);
  // alice signs out on the Gatehouse host before the hand-off URL is opened.
  const page = await send(jar, `${gh.url}/.gatehouse/logout`);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
  assert.ok(csrf, page.text);
  assert.equal((await send(jar, `${gh.url}/.gatehouse/logout`, { form: { csrf } })).status, 200);
  const late = new CookieJar();
  await assertRefused(await visit(late, handoff), /session of this hand-off has ended/);
  assert.equal(await whoOn(late, JIRA), undefined);
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
