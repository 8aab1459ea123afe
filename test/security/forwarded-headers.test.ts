// X-Forwarded-For/Proto/Host and friends from a peer that is not a trusted proxy are replaced, so a
// client cannot pick its own source address (policy's source_ip), the address its requests are rate
// limited by, or what the upstream believes.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startProxyFixture, rawGet, defaultRoutes, type ProxyFixture } from '../helpers/proxy.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const officeOnly = (up: string) =>
  defaultRoutes(up) +
  `
  - name: office
    from: /office/
    to: [${up}]
    policy:
      - name: office-network
        allow: { source_ip: [10.0.0.0/8] }
`;

describe('X-Forwarded-* from an untrusted peer', () => {
  let f: ProxyFixture;
  after(() => f.close());

  test('spoofed X-Forwarded-For does not satisfy source_ip and is replaced upstream', async () => {
    f = await startProxyFixture({ yaml: officeOnly });
    const token = await f.token(`${f.url}/office/`);
    const r = await rawGet(f.port, '/office/x', [
      `Authorization: Bearer ${token}`,
      'X-Forwarded-For: 10.1.2.3',
      'X-Real-IP: 10.1.2.3',
      'Forwarded: for=10.1.2.3',
    ]);
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).missing.criterion, 'source ip');
  });

  test('X-Forwarded-For/Proto/Host and their `_` spellings are replaced with what Gatehouse saw', async () => {
    const token = await f.token(`${f.url}/app/`);
    const r = await rawGet(f.port, '/app/x', [
      `Authorization: Bearer ${token}`,
      'X-Forwarded-For: 10.1.2.3',
      'X-Forwarded-Proto: https',
      'X-Forwarded-Host: evil.example.com',
      'X_Forwarded_For: 10.9.9.9',
      'X-Forwarded-Port: 443',
      'X-Real-IP: 10.1.2.3',
      'Forwarded: for=10.1.2.3;proto=https',
    ]);
    assert.equal(r.status, 200);
    const h = f.up.seen.at(-1)?.headers ?? {};
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${f.port}`);
    assert.equal(h['x_forwarded_for'], undefined);
    assert.equal(h['x-forwarded-port'], undefined);
    assert.equal(h['x-real-ip'], undefined);
    assert.equal(h.forwarded, undefined);
  });
});

describe('X-Forwarded-* from a trusted proxy', () => {
  let f: ProxyFixture;
  after(() => f.close());

  test('are believed: source_ip from X-Forwarded-For, our peer appended', async () => {
    f = await startProxyFixture({
      yaml: (up) => officeOnly(up) + `proxy:\n  trusted_proxies: [127.0.0.0/8]\n`,
    });
    const token = await f.token(`${f.url}/office/`);
    const r = await rawGet(f.port, '/office/x', [
      `Authorization: Bearer ${token}`,
      'X-Forwarded-For: 10.1.2.3',
      'X-Forwarded-Proto: https',
      'X-Forwarded-Host: office.example.com',
    ]);
    assert.equal(r.status, 200, r.body);
    const h = f.up.seen.at(-1)?.headers ?? {};
    assert.equal(h['x-forwarded-for'], '10.1.2.3, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.equal(h['x-forwarded-host'], 'office.example.com');
  });
});

/** A GET of `url` from the local address `from` (any 127.0.0.0/8 address is this machine's own). */
function getFrom(from: string, url: string, xff?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      localAddress: from,
      agent: false,
      headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('rate limits and X-Forwarded-For', () => {
  // 127.0.0.1 is the trusted load balancer, 10.0.0.0/8 an inner tier of trusted proxies (with people
  // behind it); any other 127.x address is a client connecting directly. The clock stands still, so a
  // bucket only refills when a test says.
  let t: TestGatehouse;
  let login: string;
  before(async () => {
    t = await startTestGatehouse({
      now: () => 1_700_000_000_000,
      yaml: `
proxy:
  trusted_proxies: [127.0.0.1/32, 10.0.0.0/8]
rate_limits:
  login: { per_minute: 1, burst: 2 }
`,
    });
    login = `${t.url}/.gatehouse/login`;
  });
  after(() => t.close());

  /** The statuses of `n` sign-in requests from `from`, the i-th with X-Forwarded-For `xff(i)`. */
  async function burst(n: number, from: string, xff?: (i: number) => string): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await getFrom(from, login, xff?.(i)));
    return out;
  }

  test('an untrusted peer cannot dodge its limit with a new X-Forwarded-For on every request', async () => {
    const statuses = await burst(4, '127.0.0.2', (i) => `203.0.113.${i + 1}`);
    assert.notEqual(statuses[0], 429);
    assert.notEqual(statuses[1], 429);
    assert.deepEqual(statuses.slice(2), [429, 429], 'the spoofed addresses got fresh buckets');
    await t.gh.audit.flush();
    const rows = await t.gh.store.queryAudit({ type: 'ratelimit.exceeded', limit: 100 });
    assert.deepEqual(
      rows.map((r) => r.data.source_ip),
      ['127.0.0.2'],
      'the refusal is recorded against the peer, not a spoofed address',
    );
  });

  test('an untrusted peer cannot shift its requests onto another address and lock it out', async () => {
    const victim = '127.0.0.4';
    const statuses = await burst(3, '127.0.0.3', () => victim);
    assert.equal(statuses[2], 429);
    // The victim's own bucket was never touched: it still has its whole burst.
    assert.deepEqual(
      (await burst(2, victim)).map((s) => s === 429),
      [false, false],
    );
  });

  test('through the trusted balancer, hops a client prepends are ignored: the rightmost untrusted one counts', async () => {
    // The balancer appends the address it saw (198.51.100.7) after whatever the client sent.
    const statuses = await burst(3, '127.0.0.1', (i) => `192.0.2.${i + 1}, 198.51.100.7`);
    assert.equal(statuses[2], 429, 'prepended hops bought fresh buckets');
    // Another client behind the same balancer has its own bucket.
    assert.notEqual(await getFrom('127.0.0.1', login, '198.51.100.8'), 429);
  });

  test('clients behind trusted proxies only are told apart, not lumped onto the balancer', async () => {
    // 10.1.1.1 signs in through the inner tier (10.0.0.2) and the balancer: every hop is trusted, so the
    // client is the first hop, as policy's source_ip and the audit log see it.
    const statuses = await burst(3, '127.0.0.1', () => '10.1.1.1, 10.0.0.2');
    assert.equal(statuses[2], 429);
    assert.notEqual(
      await getFrom('127.0.0.1', login, '10.1.1.2, 10.0.0.2'),
      429,
      'one client emptied the bucket of everyone behind the balancer',
    );
    await t.gh.audit.flush();
    const rows = await t.gh.store.queryAudit({ type: 'ratelimit.exceeded', limit: 100 });
    assert.ok(rows.some((r) => r.data.source_ip === '10.1.1.1'));
    assert.ok(!rows.some((r) => r.data.source_ip === '127.0.0.1'));
  });
});
