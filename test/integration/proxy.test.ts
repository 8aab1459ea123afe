// The proxy end to end: every route option, the 401/403/502/504 bodies, and the assertion the upstream
// gets, verified with jose (remote JWKS) and with PyJWT.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { PROXY_CLIENTS, startProxyFixture, rawGet, rawRequest, type ProxyFixture } from '../helpers/proxy.js';

const routes = (up: string) => `
${PROXY_CLIENTS}routes:
  - name: app
    from: /app/
    to: [${up}]
    policy:
      - name: readers
        allow: { roles: [reader, admin] }
  - name: stripped
    from: /strip/
    to: [${up}/base/]
    strip_prefix: true
    public: true
  - name: wild
    from: http://*.example.com/
    to: [${up}]
    preserve_host: true
    audience: wild-api
    policy:
      - { name: anyone, allow: { claim: sub, exists: true } }
  - name: small
    from: /small/
    to: [${up}]
    max_body: 10
    public: true
  - name: slow
    from: /slow/
    to: [${up}]
    timeout: 300ms
    public: true
  - name: down
    from: /down/
    to: [http://127.0.0.1:1]
    public: true
`;

function runPython(code: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('/usr/bin/python3', ['-c', code, ...args]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', () => resolve({ code: -1, out: 'no python' }));
    p.on('close', (c) => resolve({ code: c ?? -1, out }));
  });
}

describe('proxy routes', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({ yaml: routes });
    f.up.respond = (req, res) => {
      if (req.url?.startsWith('/slow/')) return setTimeout(() => res.end('late'), 2000).unref();
      res.writeHead(200, {
        'content-type': 'application/json',
        connection: 'x-secret-hop',
        'x-secret-hop': '1',
      });
      res.end(JSON.stringify({ url: req.url }));
    };
  });
  after(() => f.close());

  test('the assertion verifies with jose against the issuer JWKS', async () => {
    const t = await f.token(`${f.url}/app/`);
    const r = await fetch(`${f.url}/app/x`, { headers: { authorization: `Bearer ${t}` } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-secret-hop'), null);
    const assertion = f.up.seen.at(-1)?.headers['x-gatehouse-assertion'] as string;
    const disc = (await (await fetch(`${f.url}/.well-known/openid-configuration`)).json()) as {
      jwks_uri: string;
    };
    const { payload, protectedHeader } = await jwtVerify(
      assertion,
      createRemoteJWKSet(new URL(disc.jwks_uri)),
      {
        issuer: f.url,
        audience: `${f.url}/app/`,
        typ: 'gatehouse-assertion+jwt',
      },
    );
    assert.equal(protectedHeader.typ, 'gatehouse-assertion+jwt');
    assert.equal(payload.sub, 'reader');
    assert.deepEqual(payload.roles, ['reader']);
    assert.ok((payload.exp as number) - (payload.iat as number) <= 60);
  });

  test('the assertion verifies with PyJWT', async (t) => {
    const probe = await runPython('import jwt', []);
    if (probe.code !== 0) return t.skip('python3-jwt is not installed');
    const tok = await f.token(`${f.url}/app/`);
    await fetch(`${f.url}/app/py`, { headers: { authorization: `Bearer ${tok}` } });
    const assertion = f.up.seen.at(-1)?.headers['x-gatehouse-assertion'] as string;
    const jwks = JSON.stringify(await (await fetch(`${f.url}/jwks`)).json());
    const code = `
import sys, json, jwt
token, jwks, iss, aud = sys.argv[1:5]
header = jwt.get_unverified_header(token)
assert header["typ"] == "gatehouse-assertion+jwt", header
key = next(k for k in json.loads(jwks)["keys"] if k["kid"] == header["kid"])
claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["ES256", "RS256", "EdDSA"], audience=aud, issuer=iss)
print(claims["sub"])
`;
    const r = await runPython(code, [assertion, jwks, f.url, `${f.url}/app/`]);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), 'reader');
  });

  test('strip_prefix and an upstream base path', async () => {
    const r = await fetch(`${f.url}/strip/a/b?c=1`);
    assert.equal(r.status, 200);
    assert.equal(f.up.seen.at(-1)?.url, '/base/a/b?c=1');
  });

  test('wildcard host, preserve_host and a configured audience', async () => {
    const t = await f.token('wild-api');
    const r = await rawGet(f.port, '/w', [`Authorization: Bearer ${t}`], 'team.example.com');
    assert.equal(r.status, 200, r.body);
    assert.equal(f.up.seen.at(-1)?.headers.host, 'team.example.com');
    const other = await rawGet(f.port, '/w', [`Authorization: Bearer ${t}`], 'team.example.org');
    assert.notEqual(other.status, 200);
  });

  test('max_body: 413 by Content-Length and by a chunked stream', async () => {
    const host = `127.0.0.1:${f.port}`;
    const before = f.up.seen.length;
    const r = await rawRequest(
      f.port,
      `POST /small/x HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world`,
    );
    assert.equal(r.status, 413);
    assert.equal(f.up.seen.length, before);
    const ok = await fetch(`${f.url}/small/x`, { method: 'POST', body: 'hello' });
    assert.equal(ok.status, 200);
  });

  test('401 for an API client: RFC 6750 challenge and JSON body', async () => {
    const r = await fetch(`${f.url}/app/x`, { headers: { accept: 'application/json' } });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer /);
    assert.equal(((await r.json()) as { error: string }).error, 'unauthorized');
  });

  test('403 names the missing requirement and an audit id holding the full decision', async () => {
    await f.t.gh.store.upsertClient({
      id: 'nobody',
      metadata: {
        id: 'nobody',
        grant_types: ['client_credentials'],
        allowed_audiences: ['**'],
        roles: ['guest'],
        claims: {},
      },
      createdAt: Date.now(),
    });
    await f.t.gh.store.publishChange('clients', 'nobody');
    const secret = await f.t.secretFor('nobody');
    const { requestToken } = await import('../helpers/gatehouse.js');
    const tr = await requestToken(f.url, { id: 'nobody', secret }, { audience: `${f.url}/app/` });
    const guest = tr.body.access_token as string;
    const r = await fetch(`${f.url}/app/x`, { headers: { authorization: `Bearer ${guest}` } });
    assert.equal(r.status, 403);
    const body = (await r.json()) as {
      error: string;
      missing: { rule: string; criterion: string; expected: unknown };
      audit_id: string;
    };
    assert.equal(body.error, 'access_denied');
    assert.deepEqual(body.missing, { rule: 'readers', criterion: 'roles', expected: ['reader', 'admin'] });
    await f.t.gh.audit.flush();
    const rows = await f.t.gh.store.queryAudit({ type: 'access.denied', limit: 100 });
    const row = rows.find((x) => x.id === body.audit_id);
    assert.equal((row?.data.decision as { allowed: boolean }).allowed, false);
    const html = await fetch(`${f.url}/app/x`, {
      headers: { authorization: `Bearer ${guest}`, accept: 'text/html' },
    });
    assert.equal(html.status, 403);
    assert.match(await html.text(), /a_[A-Za-z0-9_-]{16}/);
  });

  test('upstream down: 502 with an audit id', async () => {
    const r = await fetch(`${f.url}/down/x`);
    assert.equal(r.status, 502);
    assert.match(((await r.json()) as { audit_id: string }).audit_id, /^a_/);
  });

  test('upstream slow: 504 with an audit id', async () => {
    const r = await fetch(`${f.url}/slow/x`);
    assert.equal(r.status, 504);
    assert.match(((await r.json()) as { audit_id: string }).audit_id, /^a_/);
  });

  test('allowed requests are audited', async () => {
    await f.t.gh.audit.flush();
    const rows = await f.t.gh.store.queryAudit({ type: 'access.allowed', limit: 100 });
    assert.ok(rows.some((r) => r.data.route === 'app' && r.data.sub === 'reader'));
  });
});
