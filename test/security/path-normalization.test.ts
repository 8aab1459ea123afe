// Path-normalization bypasses at the proxy: each target below tries to reach /app/admin/ (admins only)
// or to pass a private path off as the public /app/public/. Policy must see the normalized path, and
// the upstream must receive exactly that path, or the request is refused with 400.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProxyFixture, rawGet, type ProxyFixture } from '../helpers/proxy.js';

describe('path normalization', () => {
  let f: ProxyFixture;
  let reader: string;
  before(async () => {
    f = await startProxyFixture();
    reader = await f.token(`${f.url}/app/`, 'reader');
  });
  after(() => f.close());

  const reachedAdmin = () => f.up.seen.some((s) => /admin/i.test(s.url));
  const get = (target: string, token?: string) =>
    rawGet(f.port, target, token ? [`Authorization: Bearer ${token}`] : []);

  for (const target of [
    '/app/%61dmin/x',
    '/app/%61%64%6D%69%6E/x',
    '//app/admin/x',
    '/app//admin/x',
    '/app/./admin/x',
    '/app/public/../admin/x',
    '/app/public/%2e%2e/admin/x',
    '/app/public/%2E%2E/admin/x',
    '/app/x/.%2e/admin/x',
    '/app/admin',
  ]) {
    test(`${target} is decided as /app/admin/… (403 for a reader)`, async () => {
      const r = await get(target, reader);
      assert.equal(r.status, 403, r.body);
      assert.equal(JSON.parse(r.body).error, 'access_denied');
      assert.equal(reachedAdmin(), false);
    });
  }

  for (const target of ['/app/public/../admin/x', '/app/public/%2e%2e/admin/x', '/app/public/./../admin/x']) {
    test(`${target} without a token is not public (401)`, async () => {
      const r = await get(target);
      assert.equal(r.status, 401);
      assert.equal(reachedAdmin(), false);
    });
  }

  for (const [target, why] of [
    ['/app/public/..%2fadmin/x', 'encoded slash'],
    ['/app/public/..%2Fadmin/x', 'encoded slash upper-case'],
    ['/app/public/..%5cadmin/x', 'encoded backslash'],
    ['/app/public\\..\\admin/x', 'raw backslash'],
    ['/app/admin;x', 'path parameter'],
    ['/app/public;/../admin/x', 'path parameter before dots'],
    ['/app/public/%252e%252e/admin/x', 'double encoding'],
    ['/app/public/%25%32%65/x', 'encoded percent then hex'],
    ['/app/public/%00/x', 'encoded NUL'],
    ['/app/public/%0d%0aX-Injected:%201/x', 'encoded CRLF'],
    ['/app/public/%zz/x', 'invalid encoding'],
    ['/app/public/%2', 'truncated encoding'],
    ['http://other-host/app/admin/x', 'absolute-form target naming another host'],
  ]) {
    test(`${target} is refused with 400 (${why})`, async () => {
      const r = await get(target as string, reader);
      assert.equal(r.status, 400, r.body);
      assert.equal(JSON.parse(r.body).error, 'invalid_request');
      assert.equal(reachedAdmin(), false);
    });
  }

  test('absolute-form target naming the same host gets the same check', async () => {
    const r = await get(`http://127.0.0.1:${f.port}/app/admin/x`, reader);
    assert.equal(r.status, 403);
    const ok = await get(`http://127.0.0.1:${f.port}/app/ok`, reader);
    assert.equal(ok.status, 200);
    assert.equal(f.up.seen.at(-1)?.url, '/app/ok');
  });

  test('the upstream receives exactly the normalized path and the original query', async () => {
    const r = await get('/app/./x//y/%7E/z/../%41?q=%2e%2e/admin&b=1', reader);
    assert.equal(r.status, 200, r.body);
    assert.equal(f.up.seen.at(-1)?.url, '/app/x/y/~/A?q=%2e%2e/admin&b=1');
  });

  test('policy matches the path, never the query', async () => {
    const before = f.up.seen.length;
    const r = await get('/app/public/page?next=/app/admin/', undefined);
    assert.equal(r.status, 200);
    assert.equal(f.up.seen.length, before + 1);
    const denied = await get('/app/admin/x?path=/app/public/y', reader);
    assert.equal(denied.status, 403);
  });

  test('reserved characters stay encoded, with upper-case hex', async () => {
    const r = await get('/app/a%3fb%3Bc%c3%a9', reader);
    assert.equal(r.status, 200);
    assert.equal(f.up.seen.at(-1)?.url, '/app/a%3Fb%3Bc%C3%A9');
  });
});
