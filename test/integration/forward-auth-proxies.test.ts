// Forward-auth with a real nginx (auth_request) and a real Caddy (forward_auth), each started with its
// config from examples/, in front of the demo app: what the client gets and what the app sees.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startTestGatehouse, requestToken, type TestGatehouse } from '../helpers/gatehouse.js';
import { startDemoApp, type DemoApp } from '../../src/server/demo-app.js';
import { PROXY_CLIENTS } from '../helpers/proxy.js';
import {
  CADDY,
  NGINX,
  example,
  freePort,
  hasBinary,
  startCaddy,
  startNginx,
  template,
  type EdgeProxy,
} from '../helpers/edge-proxies.js';

const proxies = [
  {
    name: 'nginx',
    bin: NGINX,
    start: (ports: { gatehouse: number; app: number; proxy: number }) =>
      startNginx(template(example('nginx/nginx.conf'), ports), ports.proxy),
  },
  {
    name: 'caddy',
    bin: CADDY,
    start: (ports: { gatehouse: number; app: number; proxy: number }) =>
      startCaddy(template(example('caddy/Caddyfile'), ports), ports.proxy),
  },
];

for (const p of proxies) {
  const skip = hasBinary(p.bin) ? false : `${p.bin} is missing (install the Debian package ${p.name})`;
  describe(`forward-auth behind ${p.name}`, { skip }, () => {
    let t: TestGatehouse;
    let app: DemoApp;
    let edge: EdgeProxy;
    let secrets: Record<string, string>;
    let audience: string;

    before(async () => {
      app = await startDemoApp();
      const proxyPort = await freePort();
      audience = `http://127.0.0.1:${proxyPort}/`;
      t = await startTestGatehouse({
        yaml: `
${PROXY_CLIENTS}routes:
  - name: fronted
    from: ${audience}
    to: [${app.url}]
    public: ["/public/**"]
    policy:
      - name: admins
        allow: { roles: [admin] }
      - name: readers-outside-admin
        allow: { all: [ { roles: [reader] }, { not: { path: ["/admin", "/admin/**"] } } ] }
`,
      });
      secrets = { reader: await t.secretFor('reader'), admin: await t.secretFor('admin') };
      edge = await p.start({
        gatehouse: Number(new URL(t.url).port),
        app: Number(new URL(app.url).port),
        proxy: proxyPort,
      });
    });
    after(async () => {
      await edge?.close();
      await t?.close();
      await app?.close();
    });

    async function token(as: 'reader' | 'admin'): Promise<string> {
      const r = await requestToken(t.url, { id: as, secret: secrets[as] as string }, { audience });
      assert.equal(r.status, 200);
      return r.body.access_token as string;
    }

    const get = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${edge.url}${path}`, {
        headers: { accept: 'application/json', ...headers },
        redirect: 'manual',
      });

    test('no token: 401 with a Bearer challenge', async () => {
      const r = await get('/hello');
      assert.equal(r.status, 401);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    });

    test('a reader token: 200, and the app sees the identity headers, not spoofed ones', async () => {
      const tok = await token('reader');
      const r = await get('/hello?x=1', {
        authorization: `Bearer ${tok}`,
        'x-gatehouse-user': 'mallory',
        'x-gatehouse-email': 'mallory@evil.example',
        'x-gatehouse-roles': 'admin',
      });
      assert.equal(r.status, 200, edge.stderr());
      const seen = (await r.json()) as { path: string; headers: Record<string, string> };
      assert.equal(seen.path, '/hello?x=1');
      assert.equal(seen.headers['x-gatehouse-user'], 'reader');
      assert.equal(seen.headers['x-gatehouse-roles'], 'reader');
      // nginx sends no header for an empty value; Caddy sends it empty.
      assert.ok(!seen.headers['x-gatehouse-email'], 'no spoofed email survives');
      const assertion = decodeJwt(seen.headers['x-gatehouse-assertion'] ?? '');
      assert.equal(assertion.sub, 'reader');
      assert.equal(assertion.aud, audience);
    });

    test('the admin path as a reader: 403', async () => {
      const r = await get('/admin/users', { authorization: `Bearer ${await token('reader')}` });
      assert.equal(r.status, 403);
    });

    test('a normalized bypass of the admin path is still 403', async () => {
      const tok = await token('reader');
      for (const path of ['/public/../admin/users', '/%61dmin/users', '//admin/users']) {
        const r = await get(path, { authorization: `Bearer ${tok}` });
        assert.notEqual(r.status, 200, path);
      }
    });

    test('public paths need no token', async () => {
      const r = await get('/public/logo.png');
      assert.equal(r.status, 200);
    });

    test('an admin token gets the admin path', async () => {
      const r = await get('/admin/users', { authorization: `Bearer ${await token('admin')}` });
      assert.equal(r.status, 200);
    });

    test('a revoked token is refused within a second, cached decision or not', async () => {
      const tok = await token('reader');
      assert.equal((await get('/hello', { authorization: `Bearer ${tok}` })).status, 200);
      await t.gh.revocations.revoke({ kind: 'jti', value: decodeJwt(tok).jti as string, reason: 'test' });
      const started = Date.now();
      let status = 0;
      while (Date.now() - started < 1000) {
        status = (await get('/hello', { authorization: `Bearer ${tok}` })).status;
        if (status === 401) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 401);
    });

    test('a browser without a session is sent to sign in, back to the original URL', async () => {
      const r = await get('/page?a=b', { accept: 'text/html' });
      assert.equal(r.status, 302, await r.text());
      const location = new URL(r.headers.get('location') ?? '');
      assert.equal(location.origin, t.url);
      assert.equal(location.pathname, '/.gatehouse/login');
      assert.equal(location.searchParams.get('rd'), `${audience}page?a=b`);
    });
  });
}
