// /.gatehouse/auth called directly, as a proxy would: who may call it, how the original request is
// read, and that a cached decision never outlives its credential or a revocation.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startTestGatehouse, requestToken, type TestGatehouse } from '../helpers/gatehouse.js';

const routes = (trusted: string) => `
forward_auth:
  trusted_proxies: [${trusted}]
clients:
  - id: reader
    allowed_audiences: ["**"]
    roles: [reader]
routes:
  - name: app
    from: http://app.example.com/
    to: [http://127.0.0.1:9]
    policy:
      - name: readers-outside-admin
        allow: { all: [ { roles: [reader] }, { not: { path: ["/admin", "/admin/**"] } } ] }
`;

describe('forward-auth endpoint', () => {
  let t: TestGatehouse;
  let token: string;
  before(async () => {
    t = await startTestGatehouse({ yaml: routes('127.0.0.0/8') });
    const secret = await t.secretFor('reader');
    const r = await requestToken(t.url, { id: 'reader', secret }, { audience: 'http://app.example.com/' });
    token = r.body.access_token as string;
  });
  after(() => t.close());

  const auth = (headers: Record<string, string>) =>
    fetch(`${t.url}/.gatehouse/auth`, {
      headers: { accept: 'application/json', ...headers },
      redirect: 'manual',
    });
  const nginx = (uri: string, extra: Record<string, string> = {}) =>
    auth({
      'x-original-uri': uri,
      'x-original-method': 'GET',
      'x-forwarded-host': 'app.example.com',
      ...extra,
    });
  const caddy = (uri: string, extra: Record<string, string> = {}) =>
    auth({
      'x-forwarded-uri': uri,
      'x-forwarded-method': 'GET',
      'x-forwarded-host': 'app.example.com',
      ...extra,
    });

  test('allowed: 200 with the identity headers', async () => {
    const r = await nginx('/reports', { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gatehouse-user'), 'reader');
    assert.equal(r.headers.get('x-gatehouse-roles'), 'reader');
    assert.equal(decodeJwt(r.headers.get('x-gatehouse-assertion') ?? '').aud, 'http://app.example.com/');
  });

  test('the route is matched by the original host and normalized path', async () => {
    assert.equal((await caddy('/x/../admin/', { authorization: `Bearer ${token}` })).status, 403);
    assert.equal((await caddy('/reports', { authorization: `Bearer ${token}` })).status, 200);
    // Same path on a host without a route: no decision to give, so no.
    const other = await auth({
      'x-forwarded-uri': '/reports',
      'x-forwarded-host': 'other.example.com',
      authorization: `Bearer ${token}`,
    });
    assert.equal(other.status, 403);
  });

  test('the original method reaches the policy and the cache key', async () => {
    const r = await caddy('/reports', { authorization: `Bearer ${token}`, 'x-forwarded-method': 'DELETE' });
    assert.equal(r.status, 200);
    const bad = await caddy('/reports', { authorization: `Bearer ${token}`, 'x-forwarded-method': 'GET /x' });
    assert.equal(bad.status, 403);
  });

  test('ambiguous originals are refused: two X-Original-URI, an encoded slash', async () => {
    const r = await fetch(`${t.url}/.gatehouse/auth`, {
      headers: [
        ['x-original-uri', '/reports'],
        ['x-original-uri', '/admin'],
        ['x-forwarded-host', 'app.example.com'],
        ['authorization', `Bearer ${token}`],
      ],
    });
    assert.equal(r.status, 403);
    assert.equal((await nginx('/admin%2Fusers', { authorization: `Bearer ${token}` })).status, 403);
  });

  test('no original URI at all: refused', async () => {
    assert.equal((await auth({ authorization: `Bearer ${token}` })).status, 403);
  });

  test('no credentials: 401; browsers get the sign-in hint (nginx) or the redirect (Caddy, Traefik)', async () => {
    const api = await nginx('/reports');
    assert.equal(api.status, 401);
    assert.equal(api.headers.get('x-gatehouse-login'), null);
    const viaNginx = await nginx('/reports?q=1', { accept: 'text/html' });
    assert.equal(viaNginx.status, 401);
    const hint = new URL(viaNginx.headers.get('x-gatehouse-login') ?? '');
    assert.equal(hint.searchParams.get('rd'), 'http://app.example.com/reports?q=1');
    const viaCaddy = await caddy('/reports?q=1', { accept: 'text/html' });
    assert.equal(viaCaddy.status, 302);
    assert.equal(
      new URL(viaCaddy.headers.get('location') ?? '').searchParams.get('rd'),
      'http://app.example.com/reports?q=1',
    );
  });

  test('a cached allow is re-checked against revocation on every hit', async () => {
    const secret = await t.secretFor('reader');
    const r = await requestToken(t.url, { id: 'reader', secret }, { audience: 'http://app.example.com/' });
    const tok = r.body.access_token as string;
    assert.equal((await nginx('/cached', { authorization: `Bearer ${tok}` })).status, 200);
    assert.equal((await nginx('/cached', { authorization: `Bearer ${tok}` })).status, 200);
    await t.gh.revocations.revoke({ kind: 'jti', value: decodeJwt(tok).jti as string });
    assert.equal((await nginx('/cached', { authorization: `Bearer ${tok}` })).status, 401);
  });
});

describe('forward-auth from an untrusted caller', () => {
  let t: TestGatehouse;
  before(async () => {
    t = await startTestGatehouse({ yaml: routes('10.0.0.0/8') });
  });
  after(() => t.close());

  test('a caller outside forward_auth.trusted_proxies gets 403 whatever it sends', async () => {
    const r = await fetch(`${t.url}/.gatehouse/auth`, {
      headers: {
        'x-original-uri': '/reports',
        'x-forwarded-host': 'app.example.com',
        accept: 'application/json',
      },
    });
    assert.equal(r.status, 403);
    assert.match(((await r.json()) as { error_description: string }).error_description, /trusted_proxies/);
  });
});
