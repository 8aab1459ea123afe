// Spoofed identity headers: whatever name, case or `_` spelling the client uses, no inbound identity
// header reaches the upstream; only Gatehouse's own, set from the verified identity, do.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProxyFixture, rawGet, type ProxyFixture } from '../helpers/proxy.js';

const SPOOFS = [
  'X-Gatehouse-User',
  'x-gatehouse-user',
  'X-GATEHOUSE-USER',
  'X_Gatehouse_User',
  'x-gatehouse_user',
  'X-Gatehouse-Email',
  'X-Gatehouse-Groups',
  'X-Gatehouse-Roles',
  'X-Gatehouse-Assertion',
  'X-Gatehouse-Anything-New',
  'X-Forwarded-User',
  'X_Forwarded_User',
  'X-Forwarded-Email',
  'X-Forwarded-Groups',
  'X-Forwarded-Preferred-Username',
  'X-Forwarded-Access-Token',
  'X-Auth-Request-User',
  'X-Auth-Request-Email',
  'x_auth_request_groups',
  'Remote-User',
  'REMOTE_USER',
  'X-Remote-User',
  'X-Original-URL',
  'X-Rewrite-URL',
  'X-Original-URI',
];

describe('spoofed identity headers', () => {
  let f: ProxyFixture;
  let reader: string;
  before(async () => {
    f = await startProxyFixture();
    reader = await f.token(`${f.url}/app/`, 'reader');
  });
  after(() => f.close());

  const spoofLines = SPOOFS.map((h) => `${h}: /app/admin/evil@attacker`);
  const leaked = (raw: string[]) => {
    const names: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const n = (raw[i] as string).toLowerCase();
      if (raw[i + 1]?.includes('evil')) names.push(n);
    }
    return names;
  };

  for (const name of SPOOFS) {
    test(`${name} from an authenticated client is dropped`, async () => {
      const r = await rawGet(f.port, '/app/x', [`Authorization: Bearer ${reader}`, `${name}: evil`]);
      assert.equal(r.status, 200, r.body);
      const seen = f.up.seen.at(-1);
      assert.deepEqual(leaked(seen?.rawHeaders ?? []), []);
      assert.equal(seen?.headers['x-gatehouse-user'], 'reader');
    });
  }

  test('every variant at once on a public path: none reaches the upstream and no identity is added', async () => {
    const r = await rawGet(f.port, '/app/public/x', spoofLines);
    assert.equal(r.status, 200);
    const seen = f.up.seen.at(-1);
    assert.deepEqual(leaked(seen?.rawHeaders ?? []), []);
    assert.equal(seen?.headers['x-gatehouse-user'], undefined);
    assert.equal(seen?.headers['x-gatehouse-assertion'], undefined);
  });

  test("Gatehouse's own headers appear once, from the token", async () => {
    await rawGet(f.port, '/app/x', [`Authorization: Bearer ${reader}`, ...spoofLines]);
    const raw = f.up.seen.at(-1)?.rawHeaders ?? [];
    const users = raw.filter((_, i) => i % 2 === 0 && raw[i]?.toLowerCase() === 'x-gatehouse-user');
    assert.equal(users.length, 1);
    assert.equal(f.up.seen.at(-1)?.headers['x-gatehouse-roles'], 'reader');
  });

  for (const named of [
    'x-gatehouse-user',
    'X-Forwarded-User',
    'x_gatehouse_user',
    'authorization',
    'x-forwarded-for',
    'cookie',
    'host',
  ]) {
    test(`Connection: ${named} is refused`, async () => {
      const before = f.up.seen.length;
      const r = await rawGet(f.port, '/app/x', [
        `Authorization: Bearer ${reader}`,
        `Connection: keep-alive, ${named}`,
      ]);
      assert.equal(r.status, 400, r.body);
      assert.equal(f.up.seen.length, before);
    });
  }

  test('headers a Connection names are dropped, the rest forwarded', async () => {
    const r = await rawGet(f.port, '/app/x', [
      `Authorization: Bearer ${reader}`,
      'Connection: x-debug',
      'X-Debug: 1',
      'X-Keep: 2',
    ]);
    assert.equal(r.status, 200);
    const h = f.up.seen.at(-1)?.headers ?? {};
    assert.equal(h['x-debug'], undefined);
    assert.equal(h['x-keep'], '2');
  });

  test("Gatehouse's cookies never reach the upstream; others do", async () => {
    await rawGet(f.port, '/app/x', [
      `Authorization: Bearer ${reader}`,
      'Cookie: theme=dark; __Host-gatehouse-session=secret1',
      'Cookie: gatehouse_state=secret2; lang=en',
    ]);
    assert.equal(f.up.seen.at(-1)?.headers.cookie, 'theme=dark; lang=en');
  });

  test('the bearer token Gatehouse verified is not forwarded', async () => {
    await rawGet(f.port, '/app/x', [`Authorization: Bearer ${reader}`]);
    assert.equal(f.up.seen.at(-1)?.headers.authorization, undefined);
  });
});
