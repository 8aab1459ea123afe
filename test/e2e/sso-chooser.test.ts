// The sign-in chooser, in real Chromium: with several connectors, Gatehouse's login page offers an email
// field, and the email's domain picks the IdP (connectors[].email_domains). The page's CSP says
// `form-action 'self'`, which in Chromium also covers every redirect after the form is submitted: the
// answer that sends the browser on to the IdP must not be a redirect, or the browser stops there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { chromiumSkip as skip, launchChromium, signIn } from '../helpers/browser.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { DEV_ROLES, devConnector } from '../helpers/sso.js';
import { startDevIdp, type DevIdp } from '../../src/server/dev-idp.js';

let corp: DevIdp;
let partner: DevIdp;
let gh: TestGatehouse;
let browser: Browser;

before(async () => {
  if (skip) return;
  // Each IdP on a loopback address of its own, so no two of the three servers share cookies.
  corp = await startDevIdp({ host: '127.0.0.2' });
  partner = await startDevIdp({ host: '127.0.0.3' });
  gh = await startTestGatehouse({
    base: {
      connectors: [
        devConnector(partner, { id: 'partner', name: 'Partner IdP', email_domains: ['partner.example'] }),
        devConnector(corp, { id: 'corp', name: 'Corporate IdP', email_domains: ['example.com'] }),
      ],
      roles: DEV_ROLES,
    },
  });
  corp.allowRedirect(gh.gh.browserAuth.redirectUri);
  partner.allowRedirect(gh.gh.browserAuth.redirectUri);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gh?.close();
  await corp?.close();
  await partner?.close();
});

test(
  'the chooser form: an email whose domain names a connector reaches that IdP, and signing in there lands on the page',
  { skip },
  async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${gh.url}/.gatehouse/login?rd=${encodeURIComponent('/.gatehouse/whoami?from=chooser')}`);
    // Several connectors and no hint yet: the chooser, with both IdPs and the email field.
    assert.match((await page.textContent('body')) ?? '', /Partner IdP[\s\S]*Corporate IdP/);
    await page.fill('input[name=email]', 'alice@example.com');
    await page.click('button');
    // The corporate IdP's password form, not Gatehouse's page, nor the partner's IdP.
    await page
      .waitForURL((u) => u.href.startsWith(corp.url), { timeout: 5000 })
      .catch((e: unknown) => {
        throw new Error(`still at ${page.url()}: ${String(e)}`);
      });
    await page.waitForSelector('input[name=password]');
    await signIn(page, 'alice', 'alice-password');
    await page.waitForURL(`${gh.url}/.gatehouse/whoami?from=chooser`);
    const me = JSON.parse((await page.textContent('body')) ?? '{}') as Record<string, unknown>;
    assert.equal(me.sub, 'alice');
    assert.equal(me.idp, 'corp');
    await ctx.close();
  },
);

test('the chooser form sends an email of the other domain to the other IdP', { skip }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${gh.url}/.gatehouse/login?rd=%2F.gatehouse%2Fwhoami`);
  await page.fill('input[name=email]', 'someone@partner.example');
  await page.click('button');
  await page
    .waitForURL((u) => u.href.startsWith(partner.url), { timeout: 5000 })
    .catch((e: unknown) => {
      throw new Error(`still at ${page.url()}: ${String(e)}`);
    });
  await page.waitForSelector('input[name=password]');
  await ctx.close();
});

test('an email of no configured domain shows the chooser again, saying so', { skip }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${gh.url}/.gatehouse/login?rd=%2F.gatehouse%2Fwhoami`);
  await page.fill('input[name=email]', 'carol@elsewhere.example');
  await page.click('button');
  await page.waitForSelector('text=No sign-in is set up for carol@elsewhere.example');
  assert.ok(page.url().startsWith(`${gh.url}/.gatehouse/login`));
  await ctx.close();
});
