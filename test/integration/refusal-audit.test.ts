// Every refusal lands in the audit log exactly once: the token endpoints' (the library's own refusals
// included — malformed requests, unsupported grant types, unknown clients), and the proxy's and
// forward-auth's requests that bring no credentials at all. No record holds a secret the request carried,
// a failed write is never a silent success, and a flood of unauthenticated refusals is coalesced.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { defaultRoutes, rawRequest, startProxyFixture, type ProxyFixture } from '../helpers/proxy.js';
import type { AuditRow } from '../../src/store/store.js';

const JWS = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhdHRhY2tlciJ9.c2lnbmF0dXJlLWJ5dGVz';

/** Records written since `seq`, once the log has written what it was given. */
async function recordsAfter(t: TestGatehouse, seq: number): Promise<AuditRow[]> {
  await t.gh.audit.flush();
  return t.gh.store.queryAudit({ afterSeq: seq, limit: 1000 });
}

async function head(t: TestGatehouse): Promise<number> {
  await t.gh.audit.flush();
  return (await t.gh.store.auditHead())?.seq ?? 0;
}

const basic = (id: string, secret: string) =>
  'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64');

/** The running server's store, as an admin config names it. */
function adminStore(t: TestGatehouse): string {
  const { postgres, sqlite } = t.gh.config.store;
  return JSON.stringify(postgres ? { postgres: { url: postgres.url } } : { sqlite: { path: sqlite?.path } });
}

/** A secret no record may ever contain: unique, so a grep of the export finds only a leak. */
const leakable = () => `s3cr3t-${randomBytes(12).toString('hex')}`;

describe('token endpoint refusals: one audit record each', () => {
  let t: TestGatehouse;
  let secret: string;
  let configFile: string;
  const sentSecrets: string[] = [];

  before(async () => {
    t = await startTestGatehouse({
      yaml: 'clients:\n  - id: ci\n    allowed_audiences: ["vault"]\n',
    });
    secret = await t.secretFor('ci');
    sentSecrets.push(secret);
    // An admin config on the same store (SQLite or PostgreSQL), for the CLI, as an operator would have it.
    configFile = join(t.dir, 'admin.yaml');
    writeFileSync(join(t.dir, 'kek'), 'unused-by-admin-commands-but-required-aaaaaaaa\n');
    writeFileSync(
      configFile,
      `issuer: { url: "${t.url}" }\nstore: ${adminStore(t)}\nkeys: { encryption_key: "\${file:kek}" }\n`,
    );
  });
  after(() => t.close());

  const post = (path: string, body: string | URLSearchParams, headers: Record<string, string> = {}) =>
    fetch(`${t.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body,
    });

  /**
   * Sends one request and proves it left exactly one refusal record — token.refused, under the audit
   * id the answer names — and nothing else. Returns the answer and the record.
   */
  async function refusedOnce(send: () => Promise<Response>) {
    const before = await head(t);
    const res = await send();
    const text = await res.text();
    const rows = await recordsAfter(t, before);
    assert.equal(
      rows.length,
      1,
      `exactly one record, got ${JSON.stringify(rows.map((r) => [r.type, r.data]))}`,
    );
    const row = rows[0] as AuditRow;
    assert.equal(row.type, 'token.refused');
    const shown = /[Aa]udit id (?:<code>)?(a_[\w-]{16})/.exec(text)?.[1];
    assert.equal(shown, row.id, `the answer names the record: ${text}`);
    assert.equal(row.data.source_ip, '127.0.0.1');
    return { status: res.status, text, row };
  }

  const json = (text: string) => JSON.parse(text) as { error: string; error_description: string };

  test('missing grant_type (the library refuses it): invalid_request, recorded with the client', async () => {
    const { status, text, row } = await refusedOnce(() =>
      post('/token', new URLSearchParams({ audience: 'vault' }), { authorization: basic('ci', secret) }),
    );
    assert.equal(status, 400);
    assert.equal(json(text).error, 'invalid_request');
    assert.equal(row.data.endpoint, 'token');
    assert.equal(row.data.client_id, 'ci');
    assert.equal(row.data.code, 'invalid_request');
    assert.match(String(row.data.message), /missing required parameter 'grant_type'/);
  });

  test('unsupported grant_type: the asked value is kept as grant_type, never as the grant label', async () => {
    const { status, row } = await refusedOnce(() =>
      post('/token', new URLSearchParams({ grant_type: 'password', username: 'u', password: leakable() }), {
        authorization: basic('ci', secret),
      }),
    );
    assert.equal(status, 400);
    assert.equal(row.data.code, 'unsupported_grant_type');
    assert.equal(row.data.grant_type, 'password');
    assert.equal(row.data.grant, undefined);
  });

  test('invalid scope', async () => {
    const { status, row } = await refusedOnce(() =>
      post(
        '/token',
        new URLSearchParams({ grant_type: 'client_credentials', audience: 'vault', scope: 'a"b' }),
        {
          authorization: basic('ci', secret),
        },
      ),
    );
    assert.equal(status, 400);
    assert.equal(row.data.code, 'invalid_scope');
    assert.equal(row.data.grant, 'client_credentials');
  });

  test('malformed parameters: a repeated grant_type, a JSON body', async () => {
    const dup = await refusedOnce(() =>
      post('/token', 'grant_type=client_credentials&grant_type=client_credentials', {
        authorization: basic('ci', secret),
      }),
    );
    assert.equal(dup.status, 400);
    assert.match(String(dup.row.data.message), /'grant_type' parameter must not be provided twice/);
    const body = await refusedOnce(() =>
      fetch(`${t.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basic('ci', secret) },
        body: JSON.stringify({ grant_type: 'client_credentials' }),
      }),
    );
    assert.equal(body.status, 400);
    assert.equal(body.row.data.code, 'invalid_request');
  });

  test('no client authentication at all: client_id is null', async () => {
    const { status, row } = await refusedOnce(() =>
      post('/token', new URLSearchParams({ grant_type: 'client_credentials', audience: 'vault' })),
    );
    assert.equal(status, 400);
    assert.equal(row.data.client_id, null);
    assert.match(String(row.data.message), /no client authentication mechanism provided/);
  });

  test('two client authentication mechanisms, the secret in both: recorded, the secret nowhere', async () => {
    const s = leakable();
    sentSecrets.push(s);
    const { status, row } = await refusedOnce(() =>
      post('/token', new URLSearchParams({ grant_type: 'client_credentials', client_secret: s }), {
        authorization: basic('ci', s),
      }),
    );
    assert.equal(status, 400);
    assert.equal(row.data.client_id, 'ci');
    assert.ok(!JSON.stringify(row).includes(s));
  });

  test('unknown client (client_secret_post): 401 invalid_client, one record that says so', async () => {
    const s = leakable();
    sentSecrets.push(s);
    const { status, text, row } = await refusedOnce(() =>
      post(
        '/token',
        new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: 'nobody',
          client_secret: s,
          audience: 'vault',
        }),
      ),
    );
    assert.equal(status, 401);
    assert.match(json(text).error_description, /unknown client "nobody"/);
    assert.equal(row.data.client_id, 'nobody');
    assert.equal(row.data.code, 'invalid_client');
    assert.equal(row.data.reason, 'client not found');
  });

  test('wrong secret: the secret check records it, and nothing records it twice', async () => {
    const s = leakable();
    sentSecrets.push(s);
    const { status, row } = await refusedOnce(() =>
      post('/token', new URLSearchParams({ grant_type: 'client_credentials', audience: 'vault' }), {
        authorization: basic('ci', s),
      }),
    );
    assert.equal(status, 401);
    assert.equal(row.data.reason, 'wrong_secret');
    assert.equal(row.data.endpoint, 'token');
  });

  test("a grant handler's own refusal is recorded once, with its explanation", async () => {
    const { status, row } = await refusedOnce(() =>
      post('/token', new URLSearchParams({ grant_type: 'client_credentials', audience: 'elsewhere' }), {
        authorization: basic('ci', secret),
      }),
    );
    assert.equal(status, 400);
    assert.equal(row.data.code, 'invalid_target');
    assert.equal(row.data.actual, 'elsewhere');
  });

  test('asked for as HTML: still token.refused (not authorization.refused), the page names the id', async () => {
    const { status, text, row } = await refusedOnce(() =>
      post('/token', new URLSearchParams({ audience: 'vault' }), {
        authorization: basic('ci', secret),
        accept: 'text/html',
      }),
    );
    assert.equal(status, 400);
    assert.match(text, /<h1>invalid_request<\/h1>/);
    assert.equal(row.data.code, 'invalid_request');
  });

  test('a client id that looks like a token: recorded with a hash in its place, not a 500', async () => {
    const { status, row } = await refusedOnce(() =>
      post('/token', new URLSearchParams({ grant_type: 'client_credentials' }), {
        authorization: basic(JWS, 'x'),
      }),
    );
    assert.equal(status, 401);
    assert.match(String(row.data.client_id), /^\[token sha256:[0-9a-f]{16}\]$/);
    assert.ok(!JSON.stringify(row).includes('eyJ'));
  });

  test('introspection and revocation refusals are recorded with their endpoint', async () => {
    const intro = await refusedOnce(() =>
      post('/token/introspection', new URLSearchParams({}), { authorization: basic('ci', secret) }),
    );
    assert.equal(intro.status, 400);
    assert.equal(intro.row.data.endpoint, 'introspection');
    assert.match(String(intro.row.data.message), /missing required parameter 'token'/);
    const s = leakable();
    sentSecrets.push(s);
    const revoke = await refusedOnce(() =>
      post('/token/revocation', new URLSearchParams({ token: 'abc' }), { authorization: basic('nobody', s) }),
    );
    assert.equal(revoke.status, 401);
    assert.equal(revoke.row.data.endpoint, 'revocation');
    assert.equal(revoke.row.data.code, 'invalid_client');
  });

  test('gatehouse audit show reads a refusal back by the id the client was shown', async () => {
    const { row } = await refusedOnce(() =>
      post('/token', new URLSearchParams({ grant_type: 'refresh_token' }), {
        authorization: basic('ci', secret),
      }),
    );
    const shown = await runCli(['audit', 'show', row.id, '--config', configFile, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const rec = JSON.parse(shown.stdout) as { type: string; data: Record<string, unknown> };
    assert.equal(rec.type, 'token.refused');
    assert.equal(rec.data.endpoint, 'token');
    assert.equal(rec.data.grant, 'refresh_token');
  });

  // Last: it reads every record the tests above caused.
  test('no secret any request carried is in the exported audit log', async () => {
    const exported = await runCli(['audit', 'export', '--format', 'jsonl', '--config', configFile]);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout.trim().split('\n');
    assert.ok(lines.filter((l) => l.includes('"token.refused"')).length >= 14, 'the refusals are exported');
    for (const s of sentSecrets)
      assert.ok(!exported.stdout.includes(s), 'a secret leaked into the audit log');
  });
});

describe('token endpoint refusals when the audit log cannot be written', () => {
  test('a refusal that cannot be recorded answers 503, never the silent 400', async () => {
    const t = await startTestGatehouse({ yaml: 'clients:\n  - id: ci\n    allowed_audiences: ["vault"]\n' });
    try {
      const secret = await t.secretFor('ci');
      const store = t.gh.store as { appendAudit: (...a: unknown[]) => Promise<unknown> };
      const real = store.appendAudit.bind(store);
      store.appendAudit = async () => {
        throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      };
      try {
        const res = await fetch(`${t.url}/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: basic('ci', secret),
          },
          body: new URLSearchParams({ grant_type: 'password' }),
        });
        assert.equal(res.status, 503);
        assert.equal(res.headers.get('retry-after'), '5');
        const body = (await res.json()) as { error: string; error_description: string };
        assert.equal(body.error, 'temporarily_unavailable');
        assert.match(body.error_description, /the refusal could not be recorded/);
      } finally {
        store.appendAudit = real;
      }
    } finally {
      await t.close();
    }
  });
});

describe('proxy and forward-auth: a request without credentials is a denial', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({
      yaml: (up) => `${defaultRoutes(up)}forward_auth:\n  trusted_proxies: ["127.0.0.0/8"]\n`,
    });
  });
  after(() => f.close());

  async function deniedRecords(send: () => Promise<{ status: number; body: string }>) {
    const before = await head(f.t);
    const r = await send();
    // A sign-in redirect's record is not waited for: give it its turn.
    await new Promise((res) => setTimeout(res, 50));
    const rows = await recordsAfter(f.t, before);
    return { ...r, rows };
  }

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${f.url}${path}`, { headers, redirect: 'manual' });
    return { status: res.status, body: await res.text() };
  };

  function oneDenial(rows: AuditRow[], body: string): AuditRow {
    assert.equal(rows.length, 1, JSON.stringify(rows.map((r) => [r.type, r.data])));
    const row = rows[0] as AuditRow;
    assert.equal(row.type, 'access.denied');
    assert.equal(row.id, (JSON.parse(body) as { audit_id?: string }).audit_id, 'the 401 names the record');
    assert.equal(row.data.reason, 'no_credentials');
    assert.equal(row.data.stage, 'authentication');
    assert.equal(row.data.source_ip, '127.0.0.1');
    return row;
  }

  test('an API request: 401 with an audit id; access.denied, reason no_credentials', async () => {
    const { status, body, rows } = await deniedRecords(() =>
      get('/app/reports', { accept: 'application/json' }),
    );
    assert.equal(status, 401);
    const row = oneDenial(rows, body);
    assert.equal(row.data.route, 'app');
    assert.equal(row.data.path, '/app/reports');
    assert.equal(row.data.method, 'GET');
  });

  test('a POST that accepts HTML is not sent to sign in, so it is a recorded denial', async () => {
    const { status, body, rows } = await deniedRecords(async () => {
      const res = await fetch(`${f.url}/app/form`, {
        method: 'POST',
        headers: { accept: 'text/html' },
        body: 'x=1',
      });
      return { status: res.status, body: await res.text() };
    });
    assert.equal(status, 401);
    assert.match(body, /Reference: <code>(a_[\w-]{16})<\/code>/);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.data.method, 'POST');
    assert.equal(rows[0]?.id, /Reference: <code>(a_[\w-]{16})<\/code>/.exec(body)?.[1]);
  });

  test('a Gatehouse cookie that no longer names a session is told apart', async () => {
    const { body, rows } = await deniedRecords(() =>
      get('/app/x', { accept: 'application/json', cookie: 'gatehouse_session=forged-or-expired' }),
    );
    assert.equal(oneDenial(rows, body).data.session_cookie, 'not_valid');
  });

  test('a browser sent to sign in is recorded per audit.allows (all): action sign_in, no id shown', async () => {
    const { status, rows } = await deniedRecords(() => get('/app/page', { accept: 'text/html' }));
    assert.equal(status, 302);
    assert.equal(rows.length, 1, JSON.stringify(rows.map((r) => [r.type, r.data])));
    assert.equal(rows[0]?.type, 'access.denied');
    assert.equal(rows[0]?.data.action, 'sign_in');
    assert.equal(rows[0]?.data.reason, 'no_credentials');
  });

  test('forward-auth without credentials: 401 with an audit id, recorded with via forward-auth', async () => {
    const { status, body, rows } = await deniedRecords(() =>
      get('/.gatehouse/auth', {
        accept: 'application/json',
        'x-forwarded-uri': '/reports',
        'x-forwarded-method': 'GET',
        'x-forwarded-host': 'app.example.com',
        'x-forwarded-for': '203.0.113.9',
      }),
    );
    assert.equal(status, 401);
    const row = rows.length === 1 ? (rows[0] as AuditRow) : assert.fail(JSON.stringify(rows));
    assert.equal(row.id, (JSON.parse(body) as { audit_id?: string }).audit_id);
    assert.equal(row.data.reason, 'no_credentials');
    assert.equal(row.data.via, 'forward-auth');
    assert.equal(row.data.route, 'host');
    // The client address the calling proxy saw, not the proxy's.
    assert.equal(row.data.source_ip, '203.0.113.9');
  });

  test('forward-auth, a browser (Caddy style): sent to sign in, recorded as sign_in', async () => {
    const { status, rows } = await deniedRecords(() =>
      get('/.gatehouse/auth', {
        accept: 'text/html',
        'x-forwarded-uri': '/reports',
        'x-forwarded-method': 'GET',
        'x-forwarded-host': 'app.example.com',
      }),
    );
    assert.equal(status, 302);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.data.action, 'sign_in');
    assert.equal(rows[0]?.data.via, 'forward-auth');
  });

  test('a websocket upgrade without credentials: 401 with an audit id, recorded', async () => {
    const { status, body, rows } = await deniedRecords(async () => {
      const key = randomBytes(16).toString('base64');
      const r = await rawRequest(
        f.port,
        [
          'GET /app/ws HTTP/1.1',
          `Host: 127.0.0.1:${f.port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${key}`,
          'Sec-WebSocket-Version: 13',
          '',
          '',
        ].join('\r\n'),
      );
      return { status: r.status, body: r.body };
    });
    assert.equal(status, 401);
    assert.equal(oneDenial(rows, body).data.websocket, true);
  });

  test('a token in the path is recorded as its hash: the denial is not lost, an allowed request not failed', async () => {
    const denied = await deniedRecords(() => get(`/app/verify/${JWS}`, { accept: 'application/json' }));
    assert.equal(denied.status, 401);
    const row = oneDenial(denied.rows, denied.body);
    assert.match(String(row.data.path), /^\/app\/verify\/\[token sha256:[0-9a-f]{16}\]$/);
    assert.ok(!JSON.stringify(row).includes('eyJ'));
    const token = await f.token(`${f.url}/app/`);
    const allowed = await get(`/app/verify/${JWS}`, { authorization: `Bearer ${token}` });
    assert.equal(allowed.status, 200, allowed.body);
  });
});

describe('audit.allows: none leaves sign-in redirects unrecorded, never API denials', () => {
  test('with allows: none', async () => {
    const f = await startProxyFixture({ yaml: (up) => `${defaultRoutes(up)}audit: { allows: none }\n` });
    try {
      const before = await head(f.t);
      const browser = await fetch(`${f.url}/app/page`, {
        headers: { accept: 'text/html' },
        redirect: 'manual',
      });
      assert.equal(browser.status, 302);
      const api = await fetch(`${f.url}/app/page`, { headers: { accept: 'application/json' } });
      assert.equal(api.status, 401);
      await new Promise((r) => setTimeout(r, 50));
      const rows = await recordsAfter(f.t, before);
      assert.deepEqual(
        rows.map((r) => [r.type, r.data.reason, r.data.action ?? null]),
        [['access.denied', 'no_credentials', null]],
      );
    } finally {
      await f.close();
    }
  });
});

describe('a flood of unauthenticated refusals is coalesced', () => {
  test('past the per-address budget: one summary under the id every refused client was shown', async () => {
    const f = await startProxyFixture({
      yaml: (up) =>
        `${defaultRoutes(up)}audit:\n  unauthenticated:\n    per_address: { per_minute: 1, burst: 3 }\n    overall: { per_minute: 1000 }\n`,
    });
    try {
      const before = await head(f.t);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        const res = await fetch(`${f.url}/app/x${i}`, { headers: { accept: 'application/json' } });
        assert.equal(res.status, 401);
        ids.push(String(((await res.json()) as { audit_id?: string }).audit_id));
      }
      // Three own records; the other seven share one id, whose record is written when its window closes.
      let rows = await recordsAfter(f.t, before);
      assert.equal(rows.length, 3);
      assert.deepEqual(
        rows.map((r) => r.id),
        ids.slice(0, 3),
      );
      const summaryId = ids[3] as string;
      assert.ok(ids.slice(3).every((id) => id === summaryId));

      // The token endpoint shares the address's budget: refused clients there are coalesced too, and
      // /metrics counts each of them once the summary is written.
      const refusedBefore = await refusedTotal(f);
      const tokenIds: string[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${f.url}/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: basic('nobody', 'x'),
          },
          body: 'grant_type=client_credentials',
        });
        assert.equal(res.status, 401);
        const d = String(((await res.json()) as { error_description: string }).error_description);
        tokenIds.push(/audit id (a_[\w-]{16})/.exec(d)?.[1] ?? '');
      }
      assert.equal(new Set(tokenIds).size, 1);

      await f.t.gh.refusalGuard.flush({ all: true });
      rows = await recordsAfter(f.t, before);
      const summary = rows.find((r) => r.id === summaryId);
      assert.equal(summary?.type, 'access.denied');
      assert.equal(summary?.data.reason, 'no_credentials');
      assert.equal((summary?.data.coalesced as { count: number }).count, 7);
      const tokenSummary = rows.find((r) => r.id === tokenIds[0]);
      assert.equal(tokenSummary?.type, 'token.refused');
      assert.equal(tokenSummary?.data.code, 'invalid_client');
      assert.equal((tokenSummary?.data.coalesced as { count: number }).count, 4);
      assert.equal((await refusedTotal(f)) - refusedBefore, 4);
      assert.equal(rows.length, 5, 'three own records and two summaries for fourteen refusals');
    } finally {
      await f.close();
    }
  });
});

async function refusedTotal(f: ProxyFixture): Promise<number> {
  const m = await f.t.gh.metrics.registry.getSingleMetric('gatehouse_tokens_refused_total')?.get();
  return (m?.values ?? []).reduce((n, v) => n + v.value, 0);
}
