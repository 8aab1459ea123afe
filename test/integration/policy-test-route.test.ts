// `gatehouse policy test --route`: a route's policy evaluated offline, the path normalized as the proxy
// does, every reason printed, and the exit codes of DESIGN.md (0 allowed, 1 denied, 2 usage).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { generateKekText } from '../../src/keys/seal.js';
import { runCli, tempDir } from '../helpers/gatehouse.js';

const CONFIG = `
issuer: { url: "https://id.example.com" }
keys: { encryption_key: "${generateKekText()}" }
routes:
  - name: app
    from: https://app.example.com/
    to: [http://127.0.0.1:9]
    public: ["/public/**"]
    policy:
      - name: admins
        allow: { roles: [admin] }
      - name: engineers-outside-admin
        allow: { all: [ { roles: [engineer] }, { not: { path: ["/admin", "/admin/**"] } } ] }
      - name: office-only-writes
        mode: shadow
        deny: { all: [ { method: [POST] }, { not: { source_ip: ["10.0.0.0/8"] } } ] }
  - name: trial
    from: https://trial.example.com/
    to: [http://127.0.0.1:9]
    mode: shadow
    policy:
      - name: admins
        allow: { roles: [admin] }
`;

describe('gatehouse policy test --route', () => {
  let dir: string;
  let file: string;
  before(() => {
    dir = tempDir();
    file = join(dir, 'gatehouse.yaml');
    writeFileSync(file, CONFIG);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) => runCli(['policy', 'test', '--config', file, ...args]);
  const engineer = JSON.stringify({ sub: 'bob', roles: ['engineer'] });

  test('allowed: exit 0 and the allowing rule', async () => {
    const r = await run('--route', 'app', '--method', 'GET', '--path', '/docs', '--claims', engineer);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /allowed by rule "engineers-outside-admin"/);
  });

  test('denied: exit 1 with the closest rule and every reason', async () => {
    const r = await run('--route', 'app', '--path', '/admin/users', '--claims', engineer);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /denied: no rule matched/);
    assert.match(r.stdout, /rule "admins": did not match/);
    assert.match(r.stdout, /FAIL {2}roles/);
  });

  test('the path is normalized as the proxy does: dot segments and encoded letters cannot dodge a rule', async () => {
    const r = await run('--route', 'app', '--path', '/docs/../%61dmin/x', '--claims', engineer);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /path normalized to \/admin\/x/);
    const enc = await run('--route', 'app', '--path', '/admin%2fx', '--claims', engineer);
    assert.equal(enc.code, 1);
    assert.match(enc.stdout, /refused/);
  });

  test('shadow outcomes are printed; a shadow rule does not change the exit code', async () => {
    const r = await run(
      '--route',
      'app',
      '--method',
      'POST',
      '--path',
      '/docs',
      '--claims',
      engineer,
      '--source-ip',
      '192.0.2.7',
    );
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /shadow deny rule "office-only-writes": would deny/);
    const office = await run(
      '--route',
      'app',
      '--method',
      'POST',
      '--path',
      '/docs',
      '--claims',
      engineer,
      '--source-ip',
      '10.1.2.3',
    );
    assert.match(office.stdout, /shadow deny rule "office-only-writes": did not match/);
  });

  test('a shadow route says the request would pass, and exits with the policy verdict', async () => {
    const r = await run('--route', 'trial', '--path', '/x', '--claims', engineer);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /shadow route: the proxy would let this request through/);
  });

  test('public paths are allowed without a policy', async () => {
    const r = await run('--route', 'app', '--path', '/public/logo.png', '--claims', '{}');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /public/);
  });

  test("a token is decoded (not verified) and its audience must be the route's exactly", async () => {
    const key = new TextEncoder().encode('x'.repeat(32));
    const sign = (aud: string) =>
      new SignJWT({ sub: 'alice', roles: ['admin'], aud }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    const good = join(dir, 'good.jwt');
    writeFileSync(good, await sign('https://app.example.com/'));
    const r = await run('--route', 'app', '--path', '/admin', '--token', good);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /NOT verified/);
    const other = join(dir, 'other.jwt');
    writeFileSync(other, await sign('https://app.example.com/admin/'));
    const bad = await run('--route', 'app', '--path', '/admin', '--token', other);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /does not contain the route's audience/);
  });

  test('usage errors exit 2: an unknown route lists the routes; a path outside the route', async () => {
    const r = await run('--route', 'nope', '--path', '/x', '--claims', engineer);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no route is named "nope"; routes: app, trial/);
    const missing = await run('--route', 'app', '--claims', engineer);
    assert.equal(missing.code, 2);
    const ip = await run('--route', 'app', '--path', '/x', '--claims', engineer, '--source-ip', 'nope');
    assert.equal(ip.code, 2);
  });
});
