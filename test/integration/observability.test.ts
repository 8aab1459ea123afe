// Health, readiness, metrics and logs: /readyz follows the store, /metrics counts issued and refused
// tokens and shows secret expiries and key ages, logs are JSON (or pretty) with secrets redacted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/lib/logger.js';
import { requestToken, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const YAML = `
clients:
  - id: ci-deploy
    allowed_audiences: ["vault"]
`;

function sample(metrics: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

function capture(): { stream: Writable; text: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => out };
}

describe('observability', () => {
  let t: TestGatehouse;
  let secret: string;

  before(async () => {
    t = await startTestGatehouse({ yaml: YAML });
    secret = await t.secretFor('ci-deploy', { ttlMs: 3_600_000 });
  });
  after(async () => t.close());

  test('/healthz answers', async () => {
    const res = await fetch(`${t.url}/healthz`);
    assert.equal(res.status, 200);
  });

  test('/metrics counts an issued and a refused token, by grant, client and reason', async () => {
    assert.equal((await requestToken(t.url, { id: 'ci-deploy', secret }, { audience: 'vault' })).status, 200);
    assert.equal((await requestToken(t.url, { id: 'ci-deploy', secret }, { audience: 'nope' })).status, 400);
    assert.equal(
      (await requestToken(t.url, { id: 'ci-deploy', secret: 'wrong' }, { audience: 'vault' })).status,
      401,
    );
    const res = await fetch(`${t.url}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.equal(
      sample(text, 'gatehouse_tokens_issued_total', { grant: 'client_credentials', client: 'ci-deploy' }),
      1,
    );
    assert.equal(
      sample(text, 'gatehouse_tokens_refused_total', {
        grant: 'client_credentials',
        reason: 'invalid_target',
      }),
      1,
    );
    assert.equal(sample(text, 'gatehouse_tokens_refused_total', { reason: 'wrong_secret' }), 1);
    assert.match(text, /gatehouse_http_request_duration_seconds_bucket\{[^}]*route="issuer"/);
  });

  test('/metrics shows seconds until each secret expires and each key’s age, read at scrape time', async () => {
    const text = await (await fetch(`${t.url}/metrics`)).text();
    const left = sample(text, 'gatehouse_client_secret_expiry_seconds', { client: 'ci-deploy' });
    assert.ok(left !== undefined && left > 3500 && left <= 3600, String(left));
    const kid = t.gh.keys.active().kid;
    const age = sample(text, 'gatehouse_signing_key_age_seconds', { kid, state: 'active', alg: 'ES256' });
    assert.ok(age !== undefined && age >= 0 && age < 60, String(age));
  });

  test('logs are JSON with secrets redacted, or one readable line each with --log-format pretty', () => {
    const json = capture();
    const log = createLogger({ format: 'json', destination: json.stream, secrets: ['ghs_supersecretvalue'] });
    log.info(
      { client_secret: 'abc', authorization: 'Basic xyz', note: 'used ghs_supersecretvalue' },
      'hello',
    );
    const rec = JSON.parse(json.text().trim()) as Record<string, unknown>;
    assert.equal(rec.msg, 'hello');
    assert.equal(rec.client_secret, '[redacted]');
    assert.equal(rec.authorization, '[redacted]');
    assert.equal(rec.note, 'used [secret]');

    const pretty = capture();
    const plog = createLogger({ format: 'pretty', destination: pretty.stream });
    plog.warn({ kid: 'k1', secret: 's3cr3t-value' }, 'key rotated');
    const line = pretty.text();
    assert.match(line, /^\d{2}:\d{2}:\d{2}\.\d{3} WARN {2}key rotated kid=k1 secret=\[redacted\]\n$/);
    assert.ok(!line.includes('s3cr3t-value'));
  });

  // Last: these take the parts away under the running server.
  test('/readyz is 200 when ready, reports the store down once it is gone, and is 503 without the revocation set', async () => {
    const ok = await fetch(`${t.url}/readyz`);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { status: string }).status, 'ready');

    await t.gh.store.close();
    // The store is pinged every second; within the configured grace a replica stays in rotation
    // ("degraded"), past it /readyz is 503 (docs/operations.md, "Health and metrics").
    let res: Response | undefined;
    let body: { status: string; problems: string[]; store?: { state: string } } | undefined;
    // Polled to a generous deadline: the once-a-second ping can run late on a loaded machine.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      res = await fetch(`${t.url}/readyz`);
      body = (await res.json()) as typeof body;
      if (res.status === 503 || body?.store?.state === 'down') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(res?.status === 503 || body?.status === 'degraded', JSON.stringify(body));

    t.gh.revocations.stop();
    const down = await fetch(`${t.url}/readyz`);
    assert.equal(down.status, 503);
    const problems = ((await down.json()) as { problems: string[] }).problems;
    assert.ok(problems.includes('revocation set not started'), JSON.stringify(problems));
  });
});
