// Shadow mode at the proxy: a route in `mode: shadow`, and a shadow rule in an enforced route, let the
// request through but audit the would-be denial with every reason; decisions show up in /metrics; the
// audit of allows follows `audit.allows`.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PROXY_CLIENTS, startProxyFixture, type ProxyFixture } from '../helpers/proxy.js';

function routes(upstream: string, audit = ''): string {
  return `
${PROXY_CLIENTS}${audit}
routes:
  - name: trial
    from: /trial/
    to: [${upstream}]
    mode: shadow
    policy:
      - name: admins-only
        allow: { roles: [admin] }
  - name: enforced
    from: /enforced/
    to: [${upstream}]
    policy:
      - name: readers
        allow: { roles: [reader, admin] }
      - name: no-admin-path
        mode: shadow
        deny: { path: ["/enforced/admin/**"] }
`;
}

async function auditOf(f: ProxyFixture, type: string) {
  await f.t.gh.audit.flush();
  return f.t.gh.store.queryAudit({ type, limit: 100 });
}

describe('shadow mode', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({ yaml: (u) => routes(u) });
  });
  after(() => f.close());

  test('a shadow route lets a request the policy refuses through, and audits the would-be denial', async () => {
    const token = await f.token(`${f.url}/trial/`, 'reader');
    const r = await fetch(`${f.url}/trial/page`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    assert.equal(f.up.seen.at(-1)?.url, '/trial/page');
    // The upstream still gets a signed identity: shadow mode is not "public".
    assert.ok(f.up.seen.at(-1)?.headers['x-gatehouse-assertion']);
    const rows = await auditOf(f, 'access.shadow_denied');
    const row = rows.find((x) => x.data.route === 'trial');
    assert.ok(row, 'access.shadow_denied recorded');
    assert.equal(row.data.shadow, 'route');
    const decision = row.data.decision as { allowed: boolean; reasons: { rule: string; passed: boolean }[] };
    assert.equal(decision.allowed, false);
    assert.ok(decision.reasons.some((x) => x.rule === 'admins-only' && !x.passed));
    assert.equal((await auditOf(f, 'access.denied')).filter((x) => x.data.route === 'trial').length, 0);
  });

  test('a shadow route still needs authentication', async () => {
    const r = await fetch(`${f.url}/trial/page`);
    assert.equal(r.status, 401);
    const bad = await fetch(`${f.url}/trial/page`, { headers: { authorization: 'Bearer not.a.token' } });
    assert.equal(bad.status, 401);
  });

  test('a shadow deny rule in an enforced route reports, never refuses', async () => {
    const token = await f.token(`${f.url}/enforced/`, 'reader');
    const r = await fetch(`${f.url}/enforced/admin/x`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    const rows = await auditOf(f, 'access.shadow_denied');
    const row = rows.find((x) => x.data.route === 'enforced');
    assert.ok(row);
    assert.equal(row.data.shadow, 'rule');
    assert.deepEqual(row.data.rules, ['no-admin-path']);
    // Outside the shadow rule's paths nothing is reported.
    const before = rows.length;
    assert.equal(
      (await fetch(`${f.url}/enforced/ok`, { headers: { authorization: `Bearer ${token}` } })).status,
      200,
    );
    assert.equal((await auditOf(f, 'access.shadow_denied')).length, before);
  });

  test('/metrics counts decisions by route, outcome and reason, and the caches', async () => {
    const admin = await f.token(`${f.url}/trial/`, 'admin');
    for (let i = 0; i < 2; i++)
      assert.equal(
        (await fetch(`${f.url}/trial/a`, { headers: { authorization: `Bearer ${admin}` } })).status,
        200,
      );
    const text = await (await fetch(`${f.url}/metrics`)).text();
    assert.match(
      text,
      /gatehouse_proxy_decisions_total\{route="trial",outcome="shadow_denied",reason="no_rule_matched"\} 1/,
    );
    assert.match(
      text,
      /gatehouse_proxy_decisions_total\{route="trial",outcome="allowed",reason="admins-only"\} 2/,
    );
    assert.match(
      text,
      /gatehouse_proxy_decisions_total\{route="trial",outcome="denied",reason="unauthenticated"\} 1/,
    );
    assert.match(
      text,
      /gatehouse_proxy_decisions_total\{route="trial",outcome="denied",reason="ERR_TOKEN_[A-Z_]+"\} 1/,
    );
    assert.match(text, /gatehouse_proxy_token_cache_total\{result="hit"\} [1-9]/);
    assert.match(text, /gatehouse_proxy_token_cache_total\{result="miss"\} [1-9]/);
    assert.match(text, /gatehouse_proxy_assertion_cache_total\{result="hit"\} [1-9]/);
    assert.match(text, /gatehouse_proxy_upstream_duration_seconds_count\{route="trial"\} [1-9]/);
  });
});

describe('audit of allows', () => {
  test('allows: none records no allowed request but every denial', async () => {
    const f = await startProxyFixture({ yaml: (u) => routes(u, 'audit: { allows: none }') });
    try {
      const reader = await f.token(`${f.url}/enforced/`, 'reader');
      assert.equal(
        (await fetch(`${f.url}/enforced/x`, { headers: { authorization: `Bearer ${reader}` } })).status,
        200,
      );
      const noRole = await f.token(`${f.url}/enforced/`, 'admin');
      assert.equal(
        (await fetch(`${f.url}/enforced/x`, { headers: { authorization: `Bearer ${noRole}` } })).status,
        200,
      );
      assert.equal((await auditOf(f, 'access.allowed')).length, 0);
      const wrongAud = await f.token(`${f.url}/trial/`, 'reader');
      assert.equal(
        (await fetch(`${f.url}/enforced/x`, { headers: { authorization: `Bearer ${wrongAud}` } })).status,
        401,
      );
      assert.equal((await auditOf(f, 'access.denied')).length, 1);
    } finally {
      await f.close();
    }
  });

  test('allows: sampled records about sample_rate of them, each saying so', async () => {
    const f = await startProxyFixture({
      yaml: (u) => routes(u, 'audit: { allows: sampled, sample_rate: 0.25 }'),
    });
    try {
      const reader = await f.token(`${f.url}/enforced/`, 'reader');
      const n = 200;
      for (let i = 0; i < n; i++)
        await (await fetch(`${f.url}/enforced/x`, { headers: { authorization: `Bearer ${reader}` } })).text();
      const rows = await auditOf(f, 'access.allowed');
      // 0.25 of 200 is 50; the bounds hold with overwhelming probability (binomial, ±6 sd).
      assert.ok(rows.length > 13 && rows.length < 87, `sampled ${rows.length} of ${n}`);
      assert.ok(rows.every((x) => x.data.sample_rate === 0.25));
    } finally {
      await f.close();
    }
  });
});
