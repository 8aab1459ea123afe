// Per-address rate limits: the token endpoint answers 429 with Retry-After and an OAuth error body once an
// address's bucket is empty, refills with the (frozen, then advanced) clock, audits refusals sampled,
// and counts them; sign-in has its own limit.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGatehouse, requestToken, type TestGatehouse } from '../helpers/gatehouse.js';

describe('rate limits', () => {
  let t: TestGatehouse;
  let clock = Date.now();
  let secret: string;
  before(async () => {
    t = await startTestGatehouse({
      now: () => clock,
      yaml: `
clients:
  - id: ci
    allowed_audiences: ["**"]
rate_limits:
  token: { per_minute: 60, burst: 3 }
  login: { per_minute: 1, burst: 2 }
`,
    });
    secret = await t.secretFor('ci');
  });
  after(() => t.close());

  test('the token endpoint: burst, then 429 with Retry-After and temporarily_unavailable', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await requestToken(t.url, { id: 'ci', secret }, { audience: 'x' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const res = await fetch(`${t.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'Basic ' + Buffer.from(`ci:${secret}`).toString('base64'),
      },
      body: 'grant_type=client_credentials&audience=x',
    });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { error: string };
    assert.equal(body.error, 'temporarily_unavailable');
    // A second later one token has dripped back in.
    clock += 1000;
    assert.equal((await requestToken(t.url, { id: 'ci', secret }, { audience: 'x' })).status, 200);
    assert.equal((await requestToken(t.url, { id: 'ci', secret }, { audience: 'x' })).status, 429);
  });

  test('refusals are audited sampled: one record per address per minute, with the count', async () => {
    for (let i = 0; i < 5; i++)
      assert.equal((await requestToken(t.url, { id: 'ci', secret }, { audience: 'x' })).status, 429);
    await t.gh.audit.flush();
    const rows = await t.gh.store.queryAudit({ type: 'ratelimit.exceeded', limit: 100 });
    assert.equal(rows.length, 1, 'one record for the first refusal of the minute');
    assert.equal(rows[0]?.data.limit, 'token');
    assert.equal(rows[0]?.data.source_ip, '127.0.0.1');
    clock += 60_000;
    // The bucket is full again after a minute: drain it, then the next refusal is recorded with the count.
    for (let i = 0; i < 3; i++) await requestToken(t.url, { id: 'ci', secret }, { audience: 'x' });
    assert.equal((await requestToken(t.url, { id: 'ci', secret }, { audience: 'x' })).status, 429);
    await t.gh.audit.flush();
    const again = await t.gh.store.queryAudit({ type: 'ratelimit.exceeded', limit: 100 });
    assert.equal(again.length, 2);
    assert.equal(again[1]?.data.refused_since_last_record, 7);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    assert.match(metrics, /gatehouse_rate_limited_total\{limit="token"\} 8/);
  });

  test('sign-in has its own limit; other endpoints are not limited', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await fetch(`${t.url}/.gatehouse/login`, { redirect: 'manual' })).status);
    assert.notEqual(statuses[0], 429);
    assert.notEqual(statuses[1], 429);
    assert.equal(statuses[2], 429);
    for (let i = 0; i < 10; i++)
      assert.equal((await fetch(`${t.url}/.well-known/openid-configuration`)).status, 200);
  });
});
