// Cross-site websocket hijacking: a page on another origin opens a websocket to the proxy, and the
// browser attaches the victim's cookies. The Origin allow-list refuses it before any authentication.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import type { TestGatehouse } from '../helpers/gatehouse.js';
import { startReaderFront } from '../helpers/proxy.js';

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
