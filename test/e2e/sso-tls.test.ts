// Session cookie flags over TLS, in real Chromium: Gatehouse serves https with a certificate this test
// makes, alice signs in through the dev IdP, and the session cookie is `__Host-gatehouse`, Secure,
// HttpOnly, SameSite=Lax, Path=/, without a Domain.
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
import { tempDir } from '../helpers/gatehouse.js';
import { DEV_ROLES, devConnector } from '../helpers/sso.js';
import { selfSignedCert } from '../helpers/tls.js';

let dir: string;
let idp: DevIdp;
let gh: Gatehouse;
let browser: Browser;

before(async () => {
  if (skip) return;
  dir = tempDir();
  idp = await startDevIdp({ host: '127.0.0.2' });
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
    },
  });
  gh = await startGatehouse(config, {
    issuerFromAddress: true,
    tls: { key: readFileSync(cert.key), cert: readFileSync(cert.cert) },
    logger: createLogger({ level: 'silent' }),
  });
  idp.allowRedirect(gh.browserAuth.redirectUri);
  browser = await launchChromium({ ignoreCertificateErrors: true });
});

after(async () => {
  await browser?.close();
  await gh?.close();
  await idp?.close();
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
