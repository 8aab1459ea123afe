// External issuers' tokens at the proxy (issue 6): a GitHub-Actions-shaped token is taken on a route
// that names a trust rule accepting it and granting the route's audience; every refusal explains itself
// (401, error_description, audit id) and a route without `trust_rules` refuses such tokens as before.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProxyFixture, type ProxyFixture } from '../helpers/proxy.js';
import { startExternalIssuer, type ExternalIssuer } from '../helpers/external-issuer.js';
import { parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/problems.js';

describe('routes with trust_rules', () => {
  let gh: ExternalIssuer;
  let f: ProxyFixture;
  before(async () => {
    gh = await startExternalIssuer('github');
    f = await startProxyFixture({
      yaml: (up) => `
external_issuers:
  - { name: github, issuer: "${gh.issuer}", audiences: ["https://gatehouse.test"] }
trust_rules:
  - name: gh-deploy
    issuer: github
    conditions:
      all:
        - { claim: repository, equals: octo/app }
        - { claim: ref, equals: refs/heads/main }
    grant:
      roles: [deployer]
      audiences: ["http://127.0.0.1:*/ci/"]
      subject: "gh:{repository}"
  - name: gh-other-audience
    issuer: github
    conditions:
      all:
        - { claim: repository, equals: octo/elsewhere }
    grant:
      roles: [deployer]
      audiences: ["https://elsewhere.example.com/"]
      subject: "gh:{repository}"
routes:
  - name: ci
    from: /ci/
    to: [${up}]
    trust_rules: [gh-deploy, gh-other-audience]
    policy:
      - name: deployers
        allow: { roles: [deployer] }
  - name: plain
    from: /plain/
    to: [${up}]
    policy:
      - name: deployers
        allow: { roles: [deployer] }
`,
    });
  });
  after(async () => {
    await f.close();
    await gh.close();
  });

  const call = (path: string, token: string) =>
    fetch(`${f.url}${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });

  async function denied(id: string) {
    await f.t.gh.audit.flush();
    const rows = await f.t.gh.store.queryAudit({ type: 'access.denied', limit: 1000 });
    const row = rows.find((r) => r.id === id);
    assert.ok(row, `access.denied ${id}`);
    return row.data;
  }

  test('a GitHub token matching the rule reaches the upstream as the rule subject', async () => {
    const fetchesBefore = gh.jwksFetches();
    const token = await gh.mint({}, { aud: 'https://gatehouse.test' });
    const r = await call('/ci/deploy', token);
    assert.equal(r.status, 200);
    const seen = f.up.seen.at(-1);
    assert.equal(seen?.headers['x-gatehouse-user'], 'gh:octo/app');
    assert.equal(seen?.headers['x-gatehouse-roles'], 'deployer');
    assert.ok(seen?.headers['x-gatehouse-assertion']);
    assert.equal(seen?.headers.authorization, undefined);
    // Cached under the token hash: the second request verifies nothing again.
    assert.equal((await call('/ci/deploy', token)).status, 200);
    assert.ok(gh.jwksFetches() - fetchesBefore <= 1);
  });

  test('a token from a repository no rule accepts: 401 naming the rule and criterion, audited', async () => {
    const token = await gh.mint({ repository: 'octo/evil' }, { aud: 'https://gatehouse.test' });
    const r = await call('/ci/deploy', token);
    assert.equal(r.status, 401);
    const body = (await r.json()) as Record<string, unknown>;
    assert.equal(body.error, 'invalid_token');
    assert.match(String(body.error_description), /gh-deploy/);
    assert.match(String(body.error_description), /repository/);
    const data = await denied(String(body.audit_id));
    assert.equal(data.stage, 'trust_rule');
    assert.equal(data.code, 'ERR_POLICY_DENIED');
    assert.deepEqual(data.trust_rules, ['gh-deploy', 'gh-other-audience']);
    assert.ok(Array.isArray(data.reasons) && data.reasons.length > 0);
  });

  test('a rule that matches but does not grant the route audience is refused (invalid target)', async () => {
    const token = await gh.mint({ repository: 'octo/elsewhere' }, { aud: 'https://gatehouse.test' });
    const r = await call('/ci/deploy', token);
    assert.equal(r.status, 401);
    const body = (await r.json()) as Record<string, unknown>;
    assert.match(String(body.error_description), /gh-other-audience/);
    assert.equal((await denied(String(body.audit_id))).code, 'ERR_INVALID_TARGET');
  });

  test('a token for another audience is refused by the verifier: 401', async () => {
    const token = await gh.mint({}, { aud: 'https://not-gatehouse.test' });
    const r = await call('/ci/deploy', token);
    assert.equal(r.status, 401);
    const body = (await r.json()) as Record<string, unknown>;
    assert.equal((await denied(String(body.audit_id))).code, 'ERR_TOKEN_AUDIENCE_MISMATCH');
  });

  test('an unknown issuer is refused without any key fetch', async () => {
    const other = await startExternalIssuer('github');
    try {
      const token = await other.mint({}, { aud: 'https://gatehouse.test' });
      const r = await call('/ci/deploy', token);
      assert.equal(r.status, 401);
      assert.equal(other.jwksFetches(), 0);
    } finally {
      await other.close();
    }
  });

  test('a route without trust_rules refuses an external token as before', async () => {
    const token = await gh.mint({}, { aud: 'https://gatehouse.test' });
    const r = await call('/plain/x', token);
    assert.equal(r.status, 401);
    const body = (await r.json()) as Record<string, unknown>;
    assert.match(String((await denied(String(body.audit_id))).code), /^ERR_TOKEN_/);
  });
});

test('config: a route naming an unknown trust rule is refused at load with its line', () => {
  const text = `trust_rules:
  - name: known
    issuer: gatehouse
    conditions: { claim: sub, equals: ci }
    grant: { audiences: ["x"], subject: "{sub}" }
routes:
  - name: r
    from: /r/
    to: [http://127.0.0.1:9]
    trust_rules: [knwon]
`;
  assert.throws(
    () =>
      parseConfigText(text, {
        file: 'g.yaml',
        baseDir: '/tmp',
        base: { issuer: { url: 'http://127.0.0.1:1' }, keys: { encryption_key: 'x'.repeat(43) } },
      }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.problems.some(
        (p) => p.path === 'routes[0].trust_rules[0]' && p.line === 10 && /knwon/.test(p.message),
      ),
  );
});
