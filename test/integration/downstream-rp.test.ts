// Gatehouse as the IdP of a third-party app: "Jira" (an openid-client relying party on its own server)
// signs a person in through Gatehouse, which signs them in through the dev IdP, and gets the mapped
// claims in the ID token and userinfo. A wrong redirect URI and a request without PKCE are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { chromiumSkip as skip, launchChromium, signIn } from '../helpers/browser.js';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { startSsoStack } from '../helpers/sso.js';
import type { DevIdp } from '../../src/server/dev-idp.js';

let idp: DevIdp;
let gh: TestGatehouse;
let browser: Browser;
let jira: Server;
let jiraUrl = '';

before(async () => {
  if (skip) return;
  // Jira listens first so its redirect URI is known for the config.
  jira = createServer();
  await new Promise<void>((r) => jira.listen(0, '127.0.0.3', () => r()));
  jiraUrl = `http://127.0.0.3:${(jira.address() as AddressInfo).port}`;
  ({ idp, gh } = await startSsoStack({
    base: { downstream_clients: [{ id: 'jira', name: 'Jira', redirect_uris: [`${jiraUrl}/callback`] }] },
  }));
  const secret = await gh.secretFor('jira');
  const config = await oidc.discovery(new URL(gh.url), 'jira', secret, oidc.ClientSecretBasic(secret), {
    execute: [oidc.allowInsecureRequests],
  });
  const pending = new Map<string, { verifier: string; nonce: string }>();
  jira.on('request', (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', jiraUrl);
      if (url.pathname === '/login') {
        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        const nonce = oidc.randomNonce();
        pending.set(state, { verifier, nonce });
        const to = oidc.buildAuthorizationUrl(config, {
          redirect_uri: `${jiraUrl}/callback`,
          scope: 'openid email profile groups roles',
          state,
          nonce,
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
        });
        res.writeHead(302, { location: to.href }).end();
        return;
      }
      if (url.pathname === '/callback') {
        const state = url.searchParams.get('state') ?? '';
        const p = pending.get(state);
        if (!p) return res.writeHead(400).end('unknown state');
        const tokens = await oidc.authorizationCodeGrant(config, url, {
          pkceCodeVerifier: p.verifier,
          expectedState: state,
          expectedNonce: p.nonce,
          idTokenExpected: true,
        });
        const claims: { sub?: string } = tokens.claims() ?? {};
        const info = await oidc.fetchUserInfo(config, tokens.access_token, String(claims.sub));
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id_token: claims, userinfo: info }));
        return;
      }
      res.writeHead(404).end();
    })().catch((e: unknown) => res.writeHead(500).end(String((e as Error).message)));
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  jira?.close();
  await gh?.close();
  await idp?.close();
});

test('Jira signs alice in through Gatehouse and gets email, name, groups and roles', { skip }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${jiraUrl}/login`);
  await signIn(page, 'alice', 'alice-password');
  await page.waitForURL((u) => u.href.startsWith(`${jiraUrl}/callback`));
  const body = JSON.parse((await page.textContent('body')) ?? '{}') as {
    id_token: Record<string, unknown>;
    userinfo: Record<string, unknown>;
  };
  assert.equal(body.id_token.iss, gh.url);
  assert.equal(body.id_token.aud, 'jira');
  for (const c of [body.id_token, body.userinfo]) {
    assert.equal(c.sub, 'alice');
    assert.equal(c.email, 'alice@example.com');
    assert.equal(c.name, 'Alice Example');
    assert.deepEqual(c.groups, ['admins', 'engineering']);
    assert.deepEqual(c.roles, ['admin', 'engineer']);
  }
  await ctx.close();
});

test(
  'a wrong redirect URI is refused on a page, not redirected, and audited with the asked and registered ones',
  { skip },
  async () => {
    const evil = 'https://evil.example/callback';
    const q = new URLSearchParams({
      client_id: 'jira',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: evil,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const res = await fetch(`${gh.url}/auth?${q}`, { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
    const html = await res.text();
    assert.match(html, /redirect_uri/);
    const rows = await gh.gh.store.queryAudit({ type: 'authorization.refused' });
    const row = rows.at(-1);
    assert.ok(row);
    assert.equal(row.data.redirect_uri, evil);
    assert.deepEqual(row.data.registered, [`${jiraUrl}/callback`]);
    assert.ok(html.includes(row.id), 'the page shows the audit id');
  },
);

test('an authorization request without PKCE is refused', { skip }, async () => {
  const q = new URLSearchParams({
    client_id: 'jira',
    response_type: 'code',
    scope: 'openid',
    redirect_uri: `${jiraUrl}/callback`,
    state: 'x',
  });
  const res = await fetch(`${gh.url}/auth?${q}`, { redirect: 'manual' });
  const loc = new URL(res.headers.get('location') ?? 'http://x/');
  assert.equal(res.status, 303);
  assert.equal(loc.searchParams.get('error'), 'invalid_request');
  assert.match(loc.searchParams.get('error_description') ?? '', /PKCE/);
});
