// Session cookie flags over TLS, in real Chromium: Gatehouse serves https with a certificate this test
// makes, alice signs in through the dev IdP, and the session cookie is `__Host-gatehouse`, Secure,
// HttpOnly, SameSite=Lax, Path=/, without a Domain. Signing in from a route on another https host
// (jira.example.test, which Chromium's host resolver sends to the same server) binds the hand-off with a
// `__Host-gatehouse-handoff` nonce on that host, under the same rules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { chromiumSkip as skip, launchChromium, signIn } from '../helpers/browser.js';
import { parseConfigText } from '../../src/config/load.js';
import { generateKekText } from '../../src/keys/seal.js';
import { startGatehouse, type Gatehouse } from '../../src/server/app.js';
import { createLogger } from '../../src/lib/logger.js';
import { startDevIdp, type DevIdp } from '../../src/server/dev-idp.js';
import { startDemoApp, type DemoApp } from '../../src/server/demo-app.js';
import { tempDir } from '../helpers/gatehouse.js';
import { DEV_ROLES, devConnector } from '../helpers/sso.js';
import { selfSignedCert } from '../helpers/tls.js';

let dir: string;
let idp: DevIdp;
let app: DemoApp;
let gh: Gatehouse;
const JIRA = 'https://jira.example.test';
let browser: Browser;

before(async () => {
  if (skip) return;
  dir = tempDir();
  idp = await startDevIdp({ host: '127.0.0.2' });
  app = await startDemoApp();
  // The browser is told to accept it.
  const cert = selfSignedCert(dir, '127.0.0.1');
  const { config } = parseConfigText('', {
    file: 'test.yaml',
    baseDir: dir,
    base: {
      issuer: { url: 'https://127.0.0.1:1' },
      server: { host: '127.0.0.1', port: 0 },
      store: { sqlite: { path: join(dir, 'gatehouse.db') } },
      keys: { encryption_key: generateKekText() },
      log: { level: 'silent' },
      connectors: [devConnector(idp)],
      roles: DEV_ROLES,
      routes: [
        {
          name: 'jira',
          from: `${JIRA}/`,
          to: [app.url],
          policy: [{ name: 'signed-in', allow: { claim: 'sub', exists: true } }],
        },
      ],
    },
  });
  gh = await startGatehouse(config, {
    issuerFromAddress: true,
    tls: { key: readFileSync(cert.key), cert: readFileSync(cert.cert) },
    logger: createLogger({ level: 'silent' }),
  });
  idp.allowRedirect(gh.browserAuth.redirectUri);
  browser = await launchChromium({
    ignoreCertificateErrors: true,
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

test(
  'over https the session cookie is __Host-gatehouse: Secure, HttpOnly, SameSite=Lax, Path=/, no Domain',
  { skip },
  async () => {
    assert.match(gh.config.issuer.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    const setCookies: string[] = [];
    page.on('response', (r) => {
      if (r.url().startsWith(gh.url))
        void r.headersArray().then((hs) => {
          for (const h of hs)
            if (h.name.toLowerCase() === 'set-cookie') setCookies.push(...h.value.split('\n'));
        });
    });
    await page.goto(`${gh.url}/.gatehouse/login?rd=${encodeURIComponent('/.gatehouse/whoami')}`);
    await signIn(page, 'alice', 'alice-password');
    await page.waitForURL(`${gh.url}/.gatehouse/whoami`);
    const me = JSON.parse((await page.textContent('body')) ?? '{}') as Record<string, unknown>;
    assert.equal(me.sub, 'alice');
    assert.deepEqual(me.roles, ['admin', 'engineer']);

    const cookies = await ctx.cookies(gh.url);
    const session = cookies.find((c) => c.name === '__Host-gatehouse');
    assert.ok(
      session,
      `the session cookie is __Host-gatehouse (got ${cookies.map((c) => c.name).join(', ')})`,
    );
    assert.equal(session.secure, true);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    assert.equal(session.path, '/');
    assert.equal(session.domain, '127.0.0.1', 'a host-only cookie');
    assert.equal(
      cookies.find((c) => c.name === 'gatehouse_session'),
      undefined,
      'no plain-http cookie over https',
    );

    // The header as sent: every Gatehouse cookie over https follows the __Host- rules.
    const raw = setCookies.find((c) => c.startsWith('__Host-gatehouse='));
    assert.ok(raw, 'the callback set the session cookie');
    const attrs = raw.split(';').map((a) => a.trim().toLowerCase());
    for (const want of ['secure', 'httponly', 'samesite=lax', 'path=/'])
      assert.ok(attrs.includes(want), want);
    assert.ok(!attrs.some((a) => a.startsWith('domain=')), 'no Domain attribute');
    const login = setCookies.find((c) => c.startsWith('__Host-gatehouse-login='));
    assert.ok(login, 'the browser-binding login cookie is a __Host- cookie too');
    assert.match(login, /; Secure/);
    await ctx.close();
  },
);

test(
  "over https the hand-off nonce on a route's host is __Host-gatehouse-handoff: Secure, HttpOnly, SameSite=Lax, Path=/, no Domain, cleared by the hand-off",
  { skip },
  async () => {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    const setCookies = new Map<string, string[]>();
    page.on('response', (r) => {
      void r.headersArray().then((hs) => {
        const v = hs.filter((h) => h.name.toLowerCase() === 'set-cookie').flatMap((h) => h.value.split('\n'));
        if (v.length) setCookies.set(r.url(), v);
      });
    });
    await page.goto(`${JIRA}/wiki/start`);
    // Sent to sign in: the nonce is in the browser, on jira's host only, before the IdP is reached.
    const nonce = (await ctx.cookies(JIRA)).find((c) => c.name === '__Host-gatehouse-handoff');
    assert.ok(nonce, 'the redirect to sign in set __Host-gatehouse-handoff on jira (Chromium took it)');
    assert.equal(nonce.secure, true);
    assert.equal(nonce.httpOnly, true);
    assert.equal(nonce.sameSite, 'Lax');
    assert.equal(nonce.path, '/');
    assert.equal(nonce.domain, 'jira.example.test', 'host-only');
    const raw = (setCookies.get(`${JIRA}/wiki/start`) ?? []).find((c) =>
      c.startsWith('__Host-gatehouse-handoff='),
    );
    assert.ok(raw);
    assert.doesNotMatch(raw, /;\s*domain=/i);

    await page.waitForSelector('input[name=password]');
    await signIn(page, 'alice', 'alice-password');
    await page.waitForURL(`${JIRA}/wiki/start`);
    const body = JSON.parse((await page.textContent('body')) ?? '{}') as { headers: Record<string, string> };
    assert.equal(body.headers['x-gatehouse-user'], 'alice');
    const jira = await ctx.cookies(JIRA);
    assert.ok(jira.some((c) => c.name === '__Host-gatehouse' && c.secure));
    assert.equal(
      jira.find((c) => c.name === '__Host-gatehouse-handoff'),
      undefined,
      'the hand-off used the nonce and cleared it',
    );
    assert.equal(
      jira.find((c) => c.name === 'gatehouse_handoff'),
      undefined,
      'no plain-http nonce over https',
    );
    await ctx.close();
  },
);
