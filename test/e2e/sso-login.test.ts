// A person signs in through the development IdP in real Chromium and lands on the page they asked for;
// the session cookie changes at login, and sign-out (a POST with its CSRF token) ends the session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { chromiumSkip as skip, launchChromium, signIn } from '../helpers/browser.js';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { startSsoStack } from '../helpers/sso.js';
import type { DevIdp } from '../../src/server/dev-idp.js';

let idp: DevIdp;
let gh: TestGatehouse;
let browser: Browser;

before(async () => {
  if (skip) return;
  // The IdP on another loopback address, so its cookies and Gatehouse's never share a host.
  ({ idp, gh } = await startSsoStack({ signedOutPage: true }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gh?.close();
  await idp?.close();
});

async function signInAt(page: Page, who: string, rd: string): Promise<void> {
  await page.goto(`${gh.url}/.gatehouse/login?rd=${encodeURIComponent(rd)}`);
  await signIn(page, who, `${who}-password`);
  await page.waitForURL((u) => u.href.startsWith(gh.url) && !u.pathname.startsWith('/.gatehouse/callback'));
}

async function whoami(page: Page): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await page.request.get(`${gh.url}/.gatehouse/whoami`);
  return { status: res.status(), body: (await res.json()) as Record<string, unknown> };
}

test(
  'alice signs in through the dev IdP and lands on the page she asked for, with mapped roles',
  { skip },
  async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await signInAt(page, 'alice', '/.gatehouse/whoami?from=test');
    assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/.gatehouse/whoami?from=test');
    const me = JSON.parse((await page.textContent('body')) ?? '{}') as Record<string, unknown>;
    assert.equal(me.sub, 'alice');
    assert.equal(me.email, 'alice@example.com');
    assert.deepEqual(me.groups, ['admins', 'engineering']);
    assert.deepEqual(me.roles, ['admin', 'engineer']);
    const cookies = await ctx.cookies(gh.url);
    const c = cookies.find((k) => k.name === 'gatehouse_session');
    assert.ok(c, 'session cookie set');
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Lax');
    assert.ok(!c.value.includes(String(me.sid)), 'the cookie carries a sealed id, not the id');
    await ctx.close();
  },
);

test(
  'the session cookie changes at login and the old one stops working; sign-out ends the session',
  { skip },
  async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await signInAt(page, 'bob', '/.gatehouse/whoami');
    const first = (await ctx.cookies(gh.url)).find((k) => k.name === 'gatehouse_session')?.value;
    assert.ok(first);
    // Sign in again (a different person on the same browser): a new session id, the previous one ends.
    await ctx.clearCookies({ domain: '127.0.0.2' });
    await page.goto(`${gh.url}/.gatehouse/login?connector=dev&rd=/.gatehouse/whoami`);
    await page.waitForSelector('input[name=username]');
    await signIn(page, 'alice', 'alice-password');
    await page.waitForURL(`${gh.url}/.gatehouse/whoami`, { timeout: 5000 }).catch(async (e: unknown) => {
      console.log(await page.content());
      throw e;
    });
    const second = (await ctx.cookies(gh.url)).find((k) => k.name === 'gatehouse_session')?.value;
    assert.ok(second && second !== first, 'cookie rotated');
    const old = await fetch(`${gh.url}/.gatehouse/whoami`, {
      headers: { cookie: `gatehouse_session=${first}` },
    });
    assert.equal(old.status, 401, 'the replaced session is over');
    assert.equal((await whoami(page)).body.sub, 'alice');

    // Sign-out without the CSRF token is refused.
    const forged = await page.request.post(`${gh.url}/.gatehouse/logout`, {
      form: { csrf: 'nope' },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
    assert.equal((await whoami(page)).status, 200);
    // The sign-out page's form ends it.
    await page.goto(`${gh.url}/.gatehouse/logout`);
    await page.click('button');
    await page.waitForLoadState('load');
    assert.equal((await whoami(page)).status, 401);
    const reused = await fetch(`${gh.url}/.gatehouse/whoami`, {
      headers: { cookie: `gatehouse_session=${second}` },
    });
    assert.equal(reused.status, 401, 'the cookie is dead server-side, not only deleted');
    await ctx.close();
  },
);
