// Token exchange (RFC 8693) against real external issuers: oidc-provider instances serving discovery and
// JWKS, tokens shaped like GitHub Actions, GitLab, Gitpod and Kubernetes. Each refusal is asserted both
// in the client's error_description and in the audit record named there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import {
  exchangeToken as exchange,
  requestToken,
  startTestGatehouse,
  type TestGatehouse,
} from '../helpers/gatehouse.js';
import { githubSub, startExternalIssuer, type ExternalIssuer } from '../helpers/external-issuer.js';

const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const AUD = 'https://gatehouse.test';

let nowMs = Date.UTC(2025, 5, 2, 10, 0, 0);
const now = (): number => nowMs;

function auditId(description: unknown): string {
  const m = /\(audit id (a_[A-Za-z0-9_-]+)\)/.exec(String(description));
  assert.ok(m, `no audit id in ${String(description)}`);
  return m[1] as string;
}

describe('token exchange against real external issuers', () => {
  let gh: ExternalIssuer;
  let gl: ExternalIssuer;
  let gp: ExternalIssuer;
  let k8s: ExternalIssuer;
  let t: TestGatehouse;

  const refusal = async (id: string): Promise<Record<string, unknown>> => {
    const rows = await t.gh.store.queryAudit({ type: 'token.refused', limit: 10_000 });
    const rec = rows.find((r) => r.id === id);
    assert.ok(rec, `audit record ${id} not found`);
    return rec.data;
  };
  const issued = async (jti: unknown): Promise<Record<string, unknown>> => {
    const rows = await t.gh.store.queryAudit({ type: 'token.issued', limit: 10_000 });
    const rec = rows.find((r) => r.data.jti === jti);
    assert.ok(rec, `no token.issued record for ${String(jti)}`);
    return rec.data;
  };
  /** Verifies an issued token with Gatehouse's published keys, at the test's clock. */
  const verifyIssued = async (token: unknown, audience: string) => {
    const jwks = createRemoteJWKSet(new URL(`${t.url}/jwks`));
    const { payload } = await jwtVerify(String(token), jwks, {
      issuer: t.url,
      audience,
      typ: 'at+jwt',
      currentDate: new Date(nowMs),
    });
    return payload as { exp: number; iat: number; jti: string; sub: string };
  };
  const releaseToken = (claims: Record<string, unknown> = {}, opts = {}) =>
    gh.mint(
      {
        sub: githubSub('octo/release', { environment: 'release' }),
        repository: 'octo/release',
        environment: 'release',
        ...claims,
      },
      opts,
    );

  before(async () => {
    gh = await startExternalIssuer('github', { now });
    gl = await startExternalIssuer('gitlab', { now });
    gp = await startExternalIssuer('gitpod', { now });
    k8s = await startExternalIssuer('kubernetes', { now });
    const yaml = `
tokens: { max_ttl: 1h, clock_skew: 30s }
clients:
  - id: agent
    grant_types: ["urn:ietf:params:oauth:grant-type:token-exchange"]
    allowed_audiences: ["vault", "https://api.example.com/**"]
  - id: minter
    allowed_audiences: ["http://127.0.0.1:**"]
    roles: [deployer]
external_issuers:
  - { name: github, issuer: "${gh.issuer}", audiences: ["${AUD}"] }
  - { name: gitlab, issuer: "${gl.issuer}", audiences: ["${AUD}"], algorithms: [RS256] }
  - { name: gitpod, issuer: "${gp.issuer}", audiences: ["${AUD}"], max_token_age: 10m }
  - { name: k8s, issuer: "${k8s.issuer}", audiences: ["${AUD}"] }
trust_rules:
  - name: gh-deploy-prod
    issuer: github
    conditions:
      all:
        - { claim: repository, equals: octo/app }
        - { claim: environment, equals: production }
        - { claim: job_workflow_ref, glob: "octo/app/.github/workflows/deploy.yml@refs/heads/main" }
    grant:
      roles: [deployer]
      audiences: ["vault", "https://api.example.com/**"]
      max_ttl: 15m
      subject: "gh:{repository}:{environment}"
      claims: { copy: [repository, ref], map: { workflow_ref: job_workflow_ref } }
  - name: gh-main-read
    issuer: github
    conditions: { claim: sub, glob: "repo:octo/*:ref:refs/heads/main" }
    grant: { roles: [reader], audiences: ["vault"], subject: "gh:{repository}:{ref}" }
  - name: gl-protected
    issuer: gitlab
    conditions:
      all:
        - { claim: project_path, glob: "platform/**" }
        - { claim: ref_type, equals: branch }
        - { claim: ref_protected, equals: "true" }
    grant: { roles: [builder], audiences: ["vault"], subject: "gl:{project_path}:{ref}" }
  - name: gitpod-org
    issuer: gitpod
    conditions: { all: [ { claim: org_id, equals: org-1 }, { claim: email, glob: "*@example.com" } ] }
    grant: { roles: [dev], audiences: ["vault"], subject: "gitpod:{workspace_id}", claims: { copy: [email] } }
  - name: gitpod-long-jobs
    issuer: gitpod
    conditions: { claim: org_id, equals: org-long }
    grant: { roles: [dev], audiences: ["vault"], max_ttl: 30m, outlive_subject: true, subject: "gitpod:{workspace_id}" }
  - name: gh-release-once
    issuer: github
    single_use: true
    conditions: { claim: repository, equals: octo/release }
    grant: { roles: [releaser], audiences: ["vault"], max_ttl: 15m, subject: "gh:{repository}" }
  - name: k8s-deployer
    issuer: k8s
    conditions:
      all:
        - { claim: /kubernetes.io/namespace, equals: ci }
        - { claim: /kubernetes.io/serviceaccount/name, in: [deployer, release] }
    grant: { roles: [deployer], audiences: ["vault"], subject: "k8s:{/kubernetes.io/namespace}:{/kubernetes.io/serviceaccount/name}" }
  - name: agent-for-workflow
    issuer: github
    delegation: require
    conditions: { claim: repository, equals: octo/agentic }
    actor_conditions: { claim: sub, glob: "system:serviceaccount:agents:*" }
    grant: { roles: [agent], audiences: ["vault"], subject: "gh:{repository}" }
  - name: gatehouse-downscope
    issuer: gatehouse
    delegation: allow
    conditions: { claim: roles, contains: deployer }
    grant: { roles: [deployer], audiences: ["vault"], subject: "{sub}" }
  - name: k8s-agents-as-actors
    issuer: k8s
    delegation: forbid
    conditions: { claim: /kubernetes.io/namespace, equals: agents }
    grant: { roles: [none], audiences: ["never"] }
`;
    t = await startTestGatehouse({ yaml, now });
  });
  after(async () => {
    await t?.close();
    for (const i of [gh, gl, gp, k8s]) await i?.close();
  });

  test('GitHub: an environment deploy matches its rule; sub, roles, claims and issued_token_type', async () => {
    const token = await gh.mint({
      sub: githubSub('octo/app', { environment: 'production' }),
      environment: 'production',
    });
    const r = await exchange(t.url, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'https://api.example.com/deploy',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.issued_token_type, AT_TYPE);
    assert.equal(r.body.token_type, 'Bearer');
    const c = decodeJwt(String(r.body.access_token));
    assert.equal(c.sub, 'gh:octo/app:production');
    assert.equal(c.iss, t.url);
    assert.equal(c.aud, 'https://api.example.com/deploy');
    assert.deepEqual(c.roles, ['deployer']);
    assert.equal(c.repository, 'octo/app');
    assert.equal(c.workflow_ref, 'octo/app/.github/workflows/deploy.yml@refs/heads/main');
    assert.equal(c.client_id, 'gatehouse-cli');
    assert.equal(c.act, undefined);
  });

  test('GitHub sub trap: adding an environment changes sub, so the sub glob rule no longer matches', async () => {
    const onMain = await gh.mint();
    const ok = await exchange(t.url, {
      subject_token: onMain,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(decodeJwt(String(ok.body.access_token)).sub, 'gh:octo/app:refs/heads/main');

    const withEnv = await gh.mint({
      sub: githubSub('octo/app', { environment: 'staging' }),
      environment: 'staging',
    });
    const r = await exchange(t.url, {
      subject_token: withEnv,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_request');
    assert.match(String(r.body.error_description), /no trust rule accepts this token/);
    const data = await refusal(auditId(r.body.error_description));
    const reasons = data.reasons as { rule: string; passed: boolean; actual: unknown }[];
    assert.ok(
      reasons.some(
        (x) => x.rule === 'gh-main-read' && !x.passed && x.actual === 'repo:octo/app:environment:staging',
      ),
      JSON.stringify(reasons),
    );
  });

  test('GitHub sub trap: a pull request has no ref in sub; the glob does not cross ":"', async () => {
    const pr = await gh.mint({
      sub: githubSub('octo/app', { pullRequest: true }),
      event_name: 'pull_request',
      ref: 'refs/pull/7/merge',
    });
    const r = await exchange(t.url, { subject_token: pr, subject_token_type: JWT_TYPE, audience: 'vault' });
    assert.equal(r.status, 400);
    const data = await refusal(auditId(r.body.error_description));
    assert.equal(data.stage, 'policy');
    // `repo:octo/*` must not swallow `app:ref:...` of another shape.
    const crossing = await gh.mint({ sub: 'repo:octo/app:evil:ref:refs/heads/main' });
    const r2 = await exchange(t.url, {
      subject_token: crossing,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r2.status, 400, 'a * crossed ":"');
  });

  test('GitHub: asking for an audience the matched rule does not grant is invalid_target', async () => {
    const token = await gh.mint();
    const r = await exchange(t.url, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'https://api.example.com/x',
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_target');
    assert.match(String(r.body.error_description), /rule "gh-main-read" matched and allows "vault"/);
    const data = await refusal(auditId(r.body.error_description));
    assert.equal(data.stage, 'target');
  });

  test('GitLab: ref_protected is the string "true"; "false" is refused with expected and actual', async () => {
    const ok = await exchange(t.url, {
      subject_token: await gl.mint(),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(decodeJwt(String(ok.body.access_token)).sub, 'gl:platform/api:main');
    const r = await exchange(t.url, {
      subject_token: await gl.mint({ ref_protected: 'false' }),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    assert.match(
      String(r.body.error_description),
      /closest rule "gl-protected" failed on claim ref_protected: expected "true", actual "false"/,
    );
    const data = await refusal(auditId(r.body.error_description));
    const reasons = data.reasons as { rule: string; passed: boolean; path: string }[];
    assert.ok(
      reasons.some(
        (x) =>
          x.rule === 'gl-protected' && !x.passed && x.path.startsWith('trust_rules[2].conditions.all[2]'),
      ),
      JSON.stringify(reasons),
    );
  });

  test('Gitpod: org and email match; another org is refused', async () => {
    const ok = await exchange(t.url, {
      subject_token: await gp.mint(),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const c = decodeJwt(String(ok.body.access_token));
    assert.equal(c.sub, 'gitpod:ws-abc');
    assert.equal(c.email, 'alice@example.com');
    const r = await exchange(t.url, {
      subject_token: await gp.mint({ org_id: 'org-2' }),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    assert.match(String(r.body.error_description), /claim org_id: expected "org-1", actual "org-2"/);
  });

  test('Kubernetes: nested kubernetes.io claims by JSON Pointer; another namespace is refused', async () => {
    const ok = await exchange(t.url, {
      subject_token: await k8s.mint(),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(decodeJwt(String(ok.body.access_token)).sub, 'k8s:ci:deployer');
    const other = await k8s.mint({
      'kubernetes.io': { namespace: 'default', serviceaccount: { name: 'deployer', uid: 'x' } },
    });
    const r = await exchange(t.url, {
      subject_token: other,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    assert.match(String(r.body.error_description), /\/kubernetes.io\/namespace/);
  });

  test('audience mismatch: the token was minted for another audience', async () => {
    const token = await gh.mint({}, { aud: 'sts.amazonaws.com' });
    const r = await exchange(t.url, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_request');
    const d = String(r.body.error_description);
    assert.match(d, /^subject_token is not valid: token audience/);
    assert.match(d, /https:\/\/gatehouse.test/);
    assert.match(d, /sts.amazonaws.com/);
    const data = await refusal(auditId(d));
    assert.equal(data.stage, 'token');
    assert.equal((data.details as Record<string, unknown>).code, 'ERR_TOKEN_AUDIENCE_MISMATCH');
    assert.ok(!JSON.stringify(data).includes(token), 'the audit record holds the token');
    assert.match(String((data.subject as Record<string, unknown>).sha256), /^[0-9a-f]{16}$/);
  });

  test('issuer mismatch: a trailing slash makes another issuer, and the configured ones are listed', async () => {
    const token = await gh.mint({}, { iss: `${gh.issuer}/` });
    const before = gh.jwksFetches();
    const r = await exchange(t.url, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    const d = String(r.body.error_description);
    assert.match(d, /token issuer is not configured/);
    assert.ok(d.includes(`"${gh.issuer}/"`) && d.includes(`"${gh.issuer}"`), d);
    assert.equal(gh.jwksFetches(), before, 'an unknown issuer caused a fetch');
    const data = await refusal(auditId(d));
    assert.equal((data.details as Record<string, unknown>).code, 'ERR_TOKEN_ISSUER_UNKNOWN');
  });

  test('expired and not-yet-valid tokens: server time, exp/nbf and the leeway are stated', async () => {
    const t0 = Math.floor(nowMs / 1000);
    const expired = await gh.mint({}, { iat: t0 - 900, exp: t0 - 600 });
    const r = await exchange(t.url, {
      subject_token: expired,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    const d = String(r.body.error_description);
    assert.match(d, /token expired 10 min ago \(leeway 30 s\)/);
    assert.ok(
      d.includes(new Date((t0 - 600) * 1000).toISOString()) && d.includes(new Date(nowMs).toISOString()),
      d,
    );
    const data = await refusal(auditId(d));
    assert.equal((data.details as Record<string, unknown>).code, 'ERR_TOKEN_EXPIRED');
    assert.equal((data.details as Record<string, unknown>).leewaySec, 30);

    const early = await gh.mint({}, { nbf: t0 + 600, exp: t0 + 900 });
    const r2 = await exchange(t.url, {
      subject_token: early,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    const d2 = String(r2.body.error_description);
    assert.match(d2, /not valid for another 10 min \(leeway 30 s\)/);
    assert.ok(d2.includes(new Date((t0 + 600) * 1000).toISOString()), d2);
    assert.equal(
      ((await refusal(auditId(d2))).details as Record<string, unknown>).code,
      'ERR_TOKEN_NOT_YET_VALID',
    );
  });

  test('max_token_age: an old Gitpod token is refused', async () => {
    const t0 = Math.floor(nowMs / 1000);
    const r = await exchange(t.url, {
      subject_token: await gp.mint({}, { iat: t0 - 1800, exp: t0 + 600 }),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.match(String(r.body.error_description), /more than the 10 min allowed/);
  });

  test('key rotation: a new kid causes one refetch and is accepted', async () => {
    await exchange(t.url, {
      subject_token: await gh.mint(),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    nowMs += 31_000; // past the refetch cooldown
    await gh.rotateKey();
    const before = gh.jwksFetches();
    const r = await exchange(t.url, {
      subject_token: await gh.mint(),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(gh.jwksFetches(), before + 1);
  });

  test('a flood of unknown kids stays bounded to one refetch per cooldown', async () => {
    nowMs += 31_000;
    const before = gl.jwksFetches();
    const results = await Promise.all(
      Array.from({ length: 30 }, async (_, i) =>
        exchange(t.url, {
          subject_token: await gl.mint({}, { kid: `unknown-${i}` }),
          subject_token_type: JWT_TYPE,
          audience: 'vault',
        }),
      ),
    );
    assert.ok(results.every((r) => r.status === 400));
    assert.ok(gl.jwksFetches() - before <= 1, `fetched ${gl.jwksFetches() - before} times`);
    const d = String(results[0]?.body.error_description);
    assert.match(d, /has no key for kid unknown-/);
  });

  test('the issuer going down: cached keys keep working', async () => {
    await exchange(t.url, {
      subject_token: await gp.mint(),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    gp.setDown(true);
    try {
      nowMs += 10 * 60_000; // past the cache lifetime: a refresh is attempted and fails
      const r = await exchange(t.url, {
        subject_token: await gp.mint(),
        subject_token_type: JWT_TYPE,
        audience: 'vault',
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    } finally {
      gp.setDown(false);
    }
  });

  test('delegation: require without an actor is refused; with an allowed actor, act records the chain', async () => {
    const subj = await gh.mint({
      repository: 'octo/agentic',
      sub: 'repo:octo/agentic:environment:agents',
      environment: 'agents',
    });
    const r = await exchange(t.url, { subject_token: subj, subject_token_type: JWT_TYPE, audience: 'vault' });
    assert.equal(r.status, 400);
    assert.match(String(r.body.error_description), /agent-for-workflow/);
    assert.match(String(r.body.error_description), /delegation/);

    const badActor = await k8s.mint({ sub: 'system:serviceaccount:ci:deployer' });
    const r2 = await exchange(t.url, {
      subject_token: subj,
      subject_token_type: JWT_TYPE,
      actor_token: badActor,
      actor_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r2.status, 400);
    assert.match(String(r2.body.error_description), /actor claim sub/);

    const actor = await k8s.mint({ sub: 'system:serviceaccount:agents:bot' });
    const ok = await exchange(t.url, {
      subject_token: subj,
      subject_token_type: JWT_TYPE,
      actor_token: actor,
      actor_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const c = decodeJwt(String(ok.body.access_token));
    assert.equal(c.sub, 'gh:octo/agentic');
    assert.deepEqual(c.act, { sub: 'system:serviceaccount:agents:bot', iss: k8s.issuer });
  });

  test('delegation: forbid refuses an actor token on an otherwise matching rule', async () => {
    const subj = await gh.mint();
    const actor = await k8s.mint({ sub: 'system:serviceaccount:agents:bot' });
    const r = await exchange(t.url, {
      subject_token: subj,
      subject_token_type: JWT_TYPE,
      actor_token: actor,
      actor_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    assert.match(String(r.body.error_description), /forbids delegation/);
  });

  test("Gatehouse's own access token: exchanged once more, the act chain nests", async () => {
    const first = await exchange(t.url, {
      subject_token: await gh.mint({
        sub: githubSub('octo/app', { environment: 'production' }),
        environment: 'production',
      }),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(first.status, 200);
    const forVault = String(first.body.access_token);
    // A token for another audience is not exchangeable: only tokens asked for Gatehouse itself are.
    const r = await exchange(t.url, {
      subject_token: forVault,
      subject_token_type: AT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    assert.match(String(r.body.error_description), /audience/);
    // As a jwt type, Gatehouse's own token is pointed to the access_token type.
    const r2 = await exchange(t.url, {
      subject_token: forVault,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.match(String(r2.body.error_description), /Gatehouse access token/);
  });

  test('requested_token_type other than access_token or jwt is refused, saying what is supported', async () => {
    const r = await exchange(t.url, {
      subject_token: await gh.mint(),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
      requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
    });
    assert.equal(r.status, 400);
    assert.match(String(r.body.error_description), /JWT access tokens only/);
  });

  test('a service account with the grant may exchange, within its own audiences', async () => {
    const secret = await t.secretFor('agent');
    const token = await gh.mint();
    const ok = await exchange(
      t.url,
      { subject_token: token, subject_token_type: JWT_TYPE, audience: 'vault' },
      { id: 'agent', secret },
    );
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(decodeJwt(String(ok.body.access_token)).client_id, 'agent');
  });

  test('lifetime: a subject token with 60 s left gives a token that expires no later, and the audit says why', async () => {
    const t0 = Math.floor(nowMs / 1000);
    const subjectExp = t0 + 60;
    const subject = await gh.mint(
      { sub: githubSub('octo/app', { environment: 'production' }), environment: 'production' },
      { exp: subjectExp },
    );
    const r = await exchange(t.url, {
      subject_token: subject,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
      expires_in: '900', // within every configured ceiling (rule max_ttl 15m): shortened, not refused
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const c = await verifyIssued(r.body.access_token, 'vault');
    assert.ok(c.exp <= subjectExp, `issued exp ${c.exp} is after the subject token's ${subjectExp}`);
    assert.ok(c.exp >= subjectExp - 1, `issued exp ${c.exp} is needlessly short`);
    assert.equal(r.body.expires_in, c.exp - c.iat);
    const rec = await issued(c.jti);
    assert.equal(rec.capped_by, 'subject_token_exp');
    assert.equal(rec.subject_exp, subjectExp);
    assert.equal(rec.exp, c.exp);

    // The default lifetime (10 min) is capped the same way.
    const byDefault = await exchange(t.url, {
      subject_token: await gh.mint({}, { exp: subjectExp }),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(byDefault.status, 200, JSON.stringify(byDefault.body));
    assert.ok((await verifyIssued(byDefault.body.access_token, 'vault')).exp <= subjectExp);
  });

  test('lifetime: a subject token that outlives the asked lifetime changes nothing', async () => {
    const t0 = Math.floor(nowMs / 1000);
    const longLived = { exp: t0 + 3600 }; // a projected service account token of an hour
    const byDefault = await exchange(t.url, {
      subject_token: await k8s.mint({}, longLived),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(byDefault.status, 200, JSON.stringify(byDefault.body));
    assert.equal(byDefault.body.expires_in, 600);
    const c = await verifyIssued(byDefault.body.access_token, 'vault');
    assert.equal(c.exp - c.iat, 600);
    assert.equal((await issued(c.jti)).capped_by, undefined);

    const asked = await exchange(t.url, {
      subject_token: await k8s.mint({}, longLived),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
      expires_in: '1200',
    });
    assert.equal(asked.status, 200, JSON.stringify(asked.body));
    assert.equal(asked.body.expires_in, 1200);
  });

  test('lifetime: a subject token past its exp but within the clock skew is refused, not exchanged for a dead token', async () => {
    const t0 = Math.floor(nowMs / 1000);
    const r = await exchange(t.url, {
      subject_token: await gh.mint({}, { iat: t0 - 300, exp: t0 - 10 }), // leeway is 30 s
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_request');
    assert.match(String(r.body.error_description), /^subject_token expires at .*get a fresh token/);
    const data = await refusal(auditId(r.body.error_description));
    assert.equal(data.stage, 'token');
  });

  test("lifetime: Gatehouse's own access token caps the token exchanged for it", async () => {
    const secret = await t.secretFor('minter');
    const own = await requestToken(t.url, { id: 'minter', secret }, { audience: t.url, expires_in: '120' });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const ownExp = (await verifyIssued(own.body.access_token, t.url)).exp;
    const r = await exchange(t.url, {
      subject_token: String(own.body.access_token),
      subject_token_type: AT_TYPE,
      audience: 'vault',
      expires_in: '600',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const c = await verifyIssued(r.body.access_token, 'vault');
    assert.equal(c.sub, 'minter');
    assert.ok(c.exp <= ownExp, `issued exp ${c.exp} is after the subject token's ${ownExp}`);
    const rec = await issued(c.jti);
    assert.equal(rec.rule, 'gatehouse-downscope');
    assert.equal(rec.capped_by, 'subject_token_exp');
  });

  test('lifetime: a rule with outlive_subject issues up to its max_ttl whatever the subject token has left', async () => {
    const t0 = Math.floor(nowMs / 1000);
    const r = await exchange(t.url, {
      subject_token: await gp.mint({ org_id: 'org-long' }, { exp: t0 + 60 }),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
      expires_in: '1200',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const c = await verifyIssued(r.body.access_token, 'vault');
    assert.equal(c.exp - c.iat, 1200);
    const rec = await issued(c.jti);
    assert.equal(rec.rule, 'gitpod-long-jobs');
    assert.equal(rec.capped_by, undefined);
  });

  test('single_use: the same token exchanged twice is refused the second time, naming the rule', async () => {
    const token = await releaseToken();
    const first = await exchange(t.url, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(decodeJwt(String(first.body.access_token)).sub, 'gh:octo/release');
    assert.equal((await issued(decodeJwt(String(first.body.access_token)).jti)).single_use, true);

    const replay = await exchange(t.url, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_request');
    const d = String(replay.body.error_description);
    assert.match(
      d,
      /^subject_token was already exchanged: trust rule "gh-release-once" accepts each token once/,
    );
    const data = await refusal(auditId(d));
    assert.equal(data.stage, 'policy');
    assert.equal((data.details as Record<string, unknown>).rule, 'gh-release-once');
    assert.equal((data.details as Record<string, unknown>).reason, 'subject_token_reused');
    assert.equal((data.subject as Record<string, unknown>).jti, decodeJwt(token).jti);
    assert.ok(!JSON.stringify(data).includes(token), 'the audit record holds the token');
  });

  test('single_use: two different tokens of the same job are both exchanged', async () => {
    for (const token of [await releaseToken(), await releaseToken()]) {
      const r = await exchange(t.url, {
        subject_token: token,
        subject_token_type: JWT_TYPE,
        audience: 'vault',
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
  });

  test('single_use: a refusal for another reason does not use the token up', async () => {
    const token = await releaseToken();
    const tooLong = await exchange(t.url, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
      expires_in: '3600', // above the rule's max_ttl of 15m
    });
    assert.equal(tooLong.status, 400);
    assert.match(String(tooLong.body.error_description), /above the ceiling/);
    const ok = await exchange(t.url, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  test('single_use: a token without jti is refused, saying why', async () => {
    const token = await releaseToken({ jti: undefined });
    assert.equal(decodeJwt(token).jti, undefined);
    const r = await exchange(t.url, {
      subject_token: token,
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_request');
    assert.match(String(r.body.error_description), /rule "gh-release-once" .*single_use.* no jti/);
    const data = await refusal(auditId(r.body.error_description));
    assert.equal((data.details as Record<string, unknown>).rule, 'gh-release-once');
    // Rules without single_use take tokens without jti as before.
    const plain = await exchange(t.url, {
      subject_token: await gh.mint({ jti: undefined }),
      subject_token_type: JWT_TYPE,
      audience: 'vault',
    });
    assert.equal(plain.status, 200, JSON.stringify(plain.body));
  });

  test('a malformed subject token is refused without echoing it', async () => {
    const junk = 'eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.';
    const r = await exchange(t.url, { subject_token: junk, subject_token_type: JWT_TYPE, audience: 'vault' });
    assert.equal(r.status, 400);
    assert.ok(!String(r.body.error_description).includes(junk));
  });
});
