// Cross-site websocket hijacking: a page on another origin opens a websocket to the proxy, and the
// browser attaches the victim's cookies. The Origin allow-list refuses it before any authentication,
// and a page that opens them by the hundred cannot flood the audit log with the refusals.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { defaultRoutes, rawRequest, startProxyFixture, startReaderFront } from '../helpers/proxy.js';
import type { AuditRow } from '../../src/store/store.js';

function open(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', reject);
  });
}

describe('cross-site websocket hijacking', () => {
  let t: TestGatehouse;
  let token: string;
  let opened = 0;
  const http = createServer();
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', () => opened++);

  before(async () => {
    ({ t, token } = await startReaderFront(
      http,
      (up) => `
  - name: own
    from: /own/
    to: [${up}]
    policy: [ { name: readers, allow: { roles: [reader] } } ]
  - name: listed
    from: /listed/
    to: [${up}]
    allowed_origins: ["https://app.example.com"]
    policy: [ { name: readers, allow: { roles: [reader] } } ]
  - name: wild
    from: /wild/
    to: [${up}]
    allowed_origins: ["https://*.example.com"]
    policy: [ { name: readers, allow: { roles: [reader] } } ]
`,
      ['/own/', '/listed/', '/wild/'],
    ));
  });
  after(async () => {
    await t.close();
    wss.close();
    http.closeAllConnections();
    http.close();
  });

  const ws = () => t.url.replace(/^http/, 'ws');

  test('an attacker origin is refused with 403 even with valid credentials', async () => {
    const before = opened;
    const status = await open(`${ws()}/own/x`, {
      authorization: `Bearer ${token}`,
      origin: 'https://evil.example',
    });
    assert.equal(status, 403);
    assert.equal(opened, before, 'the upstream never saw the upgrade');
  });

  test("the route's own origin is allowed by default", async () => {
    assert.equal(await open(`${ws()}/own/x`, { authorization: `Bearer ${token}`, origin: t.url }), 101);
  });

  test('a look-alike origin (suffix, other scheme, other port) is refused', async () => {
    const u = new URL(t.url);
    for (const origin of [`${t.url}.evil.example`, `https://${u.host}`, `http://${u.hostname}:1`, 'null']) {
      assert.equal(await open(`${ws()}/own/x`, { authorization: `Bearer ${token}`, origin }), 403, origin);
    }
  });

  test('allowed_origins replaces the default: listed origin in, own origin out', async () => {
    assert.equal(
      await open(`${ws()}/listed/x`, { authorization: `Bearer ${token}`, origin: 'https://app.example.com' }),
      101,
    );
    assert.equal(await open(`${ws()}/listed/x`, { authorization: `Bearer ${token}`, origin: t.url }), 403);
  });

  test('a wildcard origin is one label more: deeper subdomains, the apex and look-alikes are refused', async () => {
    const at = (origin: string) => open(`${ws()}/wild/x`, { authorization: `Bearer ${token}`, origin });
    const before = opened;
    for (const origin of [
      'https://a.b.example.com',
      'https://evil.attacker.example.com',
      'https://example.com',
      'https://evil-example.com',
      'https://app.example.com.evil.test',
      'http://app.example.com',
      'https://app.example.com:8443',
    ])
      assert.equal(await at(origin), 403, origin);
    assert.equal(opened, before, 'the upstream never saw a refused upgrade');
    assert.equal(await at('https://app.example.com'), 101);
    assert.equal(await at('https://APP.Example.COM'), 101);
  });

  test('a non-websocket Upgrade (h2c) is refused, not passed through', async () => {
    const { rawGet } = await import('../helpers/proxy.js');
    const port = Number(new URL(t.url).port);
    const r = await rawGet(port, '/own/x', [
      'Connection: Upgrade, HTTP2-Settings',
      'Upgrade: h2c',
      'HTTP2-Settings: AAMAAABkAAQAAP__',
      `Authorization: Bearer ${token}`,
    ]);
    assert.equal(r.status, 400);
  });
});

describe('a cross-site page opening websockets by the hundred', () => {
  test('foreign-Origin refusals past audit.unauthenticated are coalesced into one summary', async () => {
    const f = await startProxyFixture({
      yaml: (up) =>
        `${defaultRoutes(up)}audit:\n  unauthenticated:\n    per_address: { per_minute: 1, burst: 3 }\n    overall: { per_minute: 1000 }\n`,
    });
    try {
      await f.t.gh.audit.flush();
      const before = (await f.t.gh.store.auditHead())?.seq ?? 0;
      const rowsSince = async (): Promise<AuditRow[]> => {
        await f.t.gh.audit.flush();
        return f.t.gh.store.queryAudit({ afterSeq: before, limit: 1000 });
      };
      // What the victim's browser sends for `new WebSocket(...)` on the attacker's page: its cookie for
      // Gatehouse's host, and the attacker's Origin.
      const upgrade = () =>
        rawRequest(
          f.port,
          [
            'GET /app/ws HTTP/1.1',
            `Host: 127.0.0.1:${f.port}`,
            'Upgrade: websocket',
            'Connection: Upgrade',
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
            'Sec-WebSocket-Version: 13',
            'Origin: https://evil.example',
            'Cookie: gatehouse_session=the-victims-cookie',
            '',
            '',
          ].join('\r\n'),
        );
      const n = 12;
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await upgrade();
        assert.equal(r.status, 403, r.head);
        ids.push(String((JSON.parse(r.body) as { audit_id?: string }).audit_id));
      }

      // The budget (burst 3) gets its own records, under the ids shown; the rest share one id.
      let rows = await rowsSince();
      assert.equal(rows.length, 3, JSON.stringify(rows.map((r) => [r.type, r.data])));
      assert.deepEqual(
        rows.map((r) => r.id),
        ids.slice(0, 3),
      );
      for (const row of rows) {
        assert.equal(row.type, 'access.denied');
        assert.equal(row.data.stage, 'origin');
        assert.equal(row.data.reason, 'origin_not_allowed');
        assert.equal(row.data.origin, 'https://evil.example');
        assert.equal(row.data.source_ip, '127.0.0.1');
      }
      const summaryId = ids[3] as string;
      assert.ok(
        ids.slice(3).every((id) => id === summaryId),
        `one summary id: ${ids.join(' ')}`,
      );
      assert.equal(f.t.gh.refusalGuard.pending, n - 3);
      // Every refusal is counted, under what refused it.
      const metrics = await f.t.gh.metrics.registry.metrics();
      assert.match(
        metrics,
        new RegExp(
          `gatehouse_proxy_decisions_total\\{[^}]*outcome="denied",reason="origin_not_allowed"[^}]*\\} ${n}`,
        ),
      );

      // When its window closes, one summary stands for the other nine, with their count.
      await f.t.gh.refusalGuard.flush({ all: true });
      rows = await rowsSince();
      assert.equal(rows.length, 4, 'three own records and one summary for twelve refusals');
      const summary = rows.find((r) => r.id === summaryId);
      assert.equal(summary?.type, 'access.denied');
      assert.equal(summary?.data.stage, 'origin');
      assert.equal(summary?.data.reason, 'origin_not_allowed');
      assert.equal(summary?.data.websocket, true);
      assert.equal((summary?.data.coalesced as { count: number }).count, n - 3);
    } finally {
      await f.close();
    }
  });
});
