// Forward-auth with a real nginx (auth_request) and a real Caddy (forward_auth), each started with its
// config from examples/, in front of the demo app: what the client gets and what the app sees, and a
// browser's sign-in from the app's host through Gatehouse's host and the IdP, back to the app's page.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startTestGatehouse, requestToken, tempDir, type TestGatehouse } from '../helpers/gatehouse.js';
import { startDemoApp, type DemoApp } from '../../src/server/demo-app.js';
import { parseConfigText } from '../../src/config/load.js';
import { generateKekText } from '../../src/keys/seal.js';
import { startGatehouse, type Gatehouse } from '../../src/server/app.js';
import { createLogger } from '../../src/lib/logger.js';
import { startDevIdp, type DevIdp } from '../../src/server/dev-idp.js';
import { PROXY_CLIENTS } from '../helpers/proxy.js';
import { DEV_ROLES, devConnector } from '../helpers/sso.js';
import { CookieJar, loginUntilCallback, send, type HttpResponse } from '../helpers/http-browser.js';
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

// Gatehouse's host (id.example.test, which only `connect` resolves) is not the app's (the proxy's
// 127.0.0.1:PORT, as the examples listen), so the sign-in crosses hosts: the app's host must pass
// /.gatehouse/ to Gatehouse with its own Host for the binding nonce and the hand-off to land there.
for (const p of proxies) {
  const skip = hasBinary(p.bin) ? false : `${p.bin} is missing (install the Debian package ${p.name})`;
  describe(`browser sign-in from the app's host behind ${p.name}`, { skip }, () => {
    let dir: string;
    let idp: DevIdp;
    let app: DemoApp;
    let gh: Gatehouse;
    let edge: EdgeProxy;
    let id: string;
    let appOrigin: string;
    let gatehouseAt: string;
    /** The browser signed in by the first test (its app-host session cookie), for the ones after it. */
    let signedIn: CookieJar | undefined;

    before(async () => {
      dir = tempDir();
      idp = await startDevIdp({ host: '127.0.0.2' });
      app = await startDemoApp();
      const [gatehousePort, proxyPort] = [await freePort(), await freePort()];
      id = `http://id.example.test:${gatehousePort}`;
      gatehouseAt = `http://127.0.0.1:${gatehousePort}`;
      appOrigin = `http://127.0.0.1:${proxyPort}`;
      const { config } = parseConfigText('', {
        file: 'test.yaml',
        baseDir: dir,
        base: {
          issuer: { url: id },
          server: { host: '127.0.0.1', port: gatehousePort },
          store: { sqlite: { path: join(dir, 'gatehouse.db') } },
          keys: { encryption_key: generateKekText() },
          log: { level: 'silent' },
          connectors: [devConnector(idp)],
          roles: DEV_ROLES,
          routes: [
            {
              name: 'fronted',
              from: `${appOrigin}/`,
              to: [app.url],
              policy: [{ name: 'engineers', allow: { roles: ['engineer'] } }],
            },
          ],
        },
      });
      gh = await startGatehouse(config, { logger: createLogger({ level: 'silent' }) });
      idp.allowRedirect(gh.browserAuth.redirectUri);
      edge = await p.start({
        gatehouse: gatehousePort,
        app: Number(new URL(app.url).port),
        proxy: proxyPort,
      });
    });
    after(async () => {
      await edge?.close();
      await gh?.close();
      await idp?.close();
      await app?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** One request as a browser makes it; Gatehouse's host name is only known here. */
    const visit = (jar: CookieJar, url: string): Promise<HttpResponse> =>
      send(jar, url, new URL(url).origin === id ? { connect: gatehouseAt } : {});

    test('a browser opens a page on the app, signs in at the IdP and lands back on it, with its identity', async () => {
      const jar = new CookieJar();
      const page = `${appOrigin}/browse/X-1?focus=comments`;
      const visited: string[] = [];
      // To the IdP: Gatehouse's login, on the app's host too (for nginx, whose hint has no binding).
      let res = await visit(jar, page);
      let last = page;
      while (res.location && !res.location.startsWith(idp.url) && visited.length < 6) {
        assert.equal(res.status, 302, `${res.url}: ${res.text}`);
        last = res.location;
        visited.push(last);
        res = await visit(jar, last);
      }
      assert.ok(res.location?.startsWith(idp.url), `sent to the IdP (${visited.join(' → ')}): ${res.text}`);
      assert.ok(
        jar.get(appOrigin, 'gatehouse_handoff'),
        `the hand-off nonce is on the app's host (${visited.join(' → ')})`,
      );
      const { callback } = await loginUntilCallback(
        jar,
        id,
        { username: 'alice', password: 'alice-password' },
        { start: last, connect: gatehouseAt },
      );
      // Back on the app's host: the hand-off reaches Gatehouse through the proxy, with the app's Host.
      const handoff = await visit(jar, callback);
      assert.equal(handoff.status, 303, handoff.text);
      const ticketUrl = handoff.location ?? '';
      assert.ok(ticketUrl.startsWith(`${appOrigin}/.gatehouse/session?ticket=`), ticketUrl);
      const landed = await visit(jar, ticketUrl);
      assert.equal(landed.status, 303, `${landed.text}\n${edge.stderr()}`);
      assert.equal(landed.location, page);
      assert.ok(jar.get(appOrigin, 'gatehouse_session'), "a session cookie on the app's host");
      assert.equal(jar.get(appOrigin, 'gatehouse_handoff'), undefined, 'the nonce is spent');

      const served = await visit(jar, page);
      assert.equal(served.status, 200, served.text);
      const seen = JSON.parse(served.text) as { path: string; headers: Record<string, string> };
      assert.equal(seen.path, '/browse/X-1?focus=comments', 'the upstream served the original URL');
      assert.equal(seen.headers['x-gatehouse-user'], 'alice');
      assert.equal(seen.headers['x-gatehouse-email'], 'alice@example.com');
      assert.match(seen.headers['x-gatehouse-roles'] ?? '', /\bengineer\b/);
      assert.equal(decodeJwt(seen.headers['x-gatehouse-assertion'] ?? '').aud, `${appOrigin}/`);

      // Gatehouse's own pages on the app's host see this host's session.
      const whoami = await visit(jar, `${appOrigin}/.gatehouse/whoami`);
      assert.equal(whoami.status, 200, whoami.text);
      assert.equal((JSON.parse(whoami.text) as { sub: string }).sub, 'alice');

      // The forward-auth endpoint stays the proxy's own: through the app's host, a client could have it
      // judge any request it describes (the proxy is a trusted caller) and read the signed assertion.
      const asked = await fetch(`${appOrigin}/.gatehouse/auth`, {
        headers: {
          cookie: jar.header(appOrigin),
          'x-original-uri': '/browse/X-1',
          'x-original-method': 'GET',
          'x-forwarded-uri': '/browse/X-1',
          'x-forwarded-method': 'GET',
          'x-forwarded-host': new URL(appOrigin).host,
        },
        redirect: 'manual',
      });
      assert.equal(asked.status, 404);
      assert.equal(asked.headers.get('x-gatehouse-assertion'), null);
      signedIn = jar;
    });

    test("the app gets the browser's own cookies, in order, but none of Gatehouse's", async () => {
      assert.ok(signedIn, 'the sign-in above succeeded');
      const session = signedIn.get(appOrigin, 'gatehouse_session') ?? '';
      // The jar as the browser holds it: the session cookie first, the app's own after it.
      signedIn.set(appOrigin, 'app_pref', '1');
      const served = await visit(signedIn, `${appOrigin}/settings`);
      assert.equal(served.status, 200, served.text);
      const seen = JSON.parse(served.text) as { headers: Record<string, string> };
      assert.equal(seen.headers['x-gatehouse-user'], 'alice', 'Gatehouse still saw the session cookie');
      assert.equal(seen.headers.cookie, 'app_pref=1');

      // Gatehouse's cookies first, in the middle and last, of both spellings; and only Gatehouse's.
      const cookieSeen = async (cookie: string): Promise<string | undefined> => {
        const res = await fetch(`${appOrigin}/settings`, {
          headers: { accept: 'text/html', cookie },
          redirect: 'manual',
        });
        assert.equal(res.status, 200, await res.clone().text());
        return (JSON.parse(await res.text()) as { headers: Record<string, string> }).headers.cookie;
      };
      assert.equal(
        await cookieSeen(
          `gatehouse_handoff=stale; theme=dark; gatehouse_session=${session}; app_pref=1; __Host-gatehouse-handoff=x`,
        ),
        'theme=dark; app_pref=1',
      );
      assert.equal(
        await cookieSeen(`theme=dark; mygatehouse_x=1; gatehouse_session=${session}; a=gatehouse_y`),
        'theme=dark; mygatehouse_x=1; a=gatehouse_y',
        'only cookies named gatehouse_* or __Host-gatehouse* are removed',
      );
      // nginx then sends no Cookie header; Caddy an empty one. Either way, nothing of Gatehouse's.
      assert.ok(!(await cookieSeen(`gatehouse_session=${session}`)));
    });
  });
}
