// The proxy's one decision path seen from its three doors: forward-auth follows shadow mode,
// `audit.allows` and the decision metrics exactly as a proxied request does; websockets are drained
// with close 1001 on shutdown; which proxy settings reload and which need a restart.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { startTestGatehouse, requestToken, type TestGatehouse } from '../helpers/gatehouse.js';
import { restartOnlyChanges } from '../../src/server/reload.js';

const yaml = (extra = '') => `
${extra}
clients:
  - id: reader
    allowed_audiences: ["**"]
    roles: [reader]
routes:
  - name: trial
    from: http://trial.example.com/
    to: [http://127.0.0.1:9]
    mode: shadow
    policy:
      - name: admins-only
        allow: { roles: [admin] }
  - name: app
    from: http://app.example.com/
    to: [http://127.0.0.1:9]
    policy:
      - name: readers
        allow: { roles: [reader] }
`;

async function tokenFor(t: TestGatehouse, audience: string): Promise<string> {
  const secret = await t.secretFor('reader');
  const r = await requestToken(t.url, { id: 'reader', secret }, { audience });
  return r.body.access_token as string;
}

function nginx(t: TestGatehouse, host: string, uri: string, token: string): Promise<Response> {
  return fetch(`${t.url}/.gatehouse/auth`, {
    headers: {
      accept: 'application/json',
      'x-original-uri': uri,
      'x-original-method': 'GET',
      'x-forwarded-host': host,
      authorization: `Bearer ${token}`,
    },
  });
}

async function audited(t: TestGatehouse, type: string) {
  await t.gh.audit.flush();
  return t.gh.store.queryAudit({ type, limit: 1000 });
}

describe('forward-auth decides through the proxy gate', () => {
  let t: TestGatehouse;
  before(async () => {
    t = await startTestGatehouse({ yaml: yaml() });
  });
  after(() => t.close());

  test('a shadow route lets the request through forward-auth and audits access.shadow_denied', async () => {
    const token = await tokenFor(t, 'http://trial.example.com/');
    const r = await nginx(t, 'trial.example.com', '/page', token);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-gatehouse-user'), 'reader');
    const rows = (await audited(t, 'access.shadow_denied')).filter((x) => x.data.route === 'trial');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.data.via, 'forward-auth');
    assert.equal(rows[0]?.data.shadow, 'route');
    // A cached decision is recorded again on each use, shadow denial included.
    assert.equal((await nginx(t, 'trial.example.com', '/page', token)).status, 200);
    assert.equal(
      (await audited(t, 'access.shadow_denied')).filter((x) => x.data.route === 'trial').length,
      2,
    );
    assert.equal((await audited(t, 'access.denied')).filter((x) => x.data.route === 'trial').length, 0);
  });

  test('decision metrics count forward-auth decisions', async () => {
    const token = await tokenFor(t, 'http://app.example.com/');
    assert.equal((await nginx(t, 'app.example.com', '/x', token)).status, 200);
    assert.equal((await nginx(t, 'app.example.com', '/x', token)).status, 200);
    assert.equal((await nginx(t, 'app.example.com', '/x', 'not.a.token')).status, 401);
    const text = await (await fetch(`${t.url}/metrics`)).text();
    assert.match(text, /gatehouse_proxy_decisions_total\{route="app",outcome="allowed",reason="readers"\} 2/);
    assert.match(
      text,
      /gatehouse_proxy_decisions_total\{route="app",outcome="denied",reason="ERR_TOKEN_[A-Z_]+"\} 1/,
    );
    assert.match(text, /gatehouse_proxy_decisions_total\{route="trial",outcome="shadow_denied"/);
  });
});

test('audit.allows: none applies to forward-auth (denials are still audited)', async () => {
  const t = await startTestGatehouse({ yaml: yaml('audit: { allows: none }') });
  try {
    const token = await tokenFor(t, 'http://app.example.com/');
    assert.equal((await nginx(t, 'app.example.com', '/x', token)).status, 200);
    assert.equal((await nginx(t, 'app.example.com', '/x', token)).status, 200);
    assert.equal((await audited(t, 'access.allowed')).length, 0);
    const other = await tokenFor(t, 'http://elsewhere.example.com/');
    assert.equal((await nginx(t, 'app.example.com', '/x', other)).status, 401);
    assert.equal((await audited(t, 'access.denied')).length, 1);
  } finally {
    await t.close();
  }
});

test("a route's own audit setting overrides audit.allows for that route only", async () => {
  // Everywhere all allows are recorded, except the high-volume route `app`, which records none.
  const t = await startTestGatehouse({
    yaml:
      yaml().replace(
        '  - name: app\n    from: http://app.example.com/\n',
        '  - name: app\n    from: http://app.example.com/\n    audit: { allows: none }\n',
      ) +
      `  - name: admin
    from: http://admin.example.com/
    to: [http://127.0.0.1:9]
    policy:
      - name: readers
        allow: { roles: [reader] }
`,
  });
  try {
    const app = await tokenFor(t, 'http://app.example.com/');
    const admin = await tokenFor(t, 'http://admin.example.com/');
    for (let i = 0; i < 3; i++) {
      assert.equal((await nginx(t, 'app.example.com', '/x', app)).status, 200);
      assert.equal((await nginx(t, 'admin.example.com', '/x', admin)).status, 200);
    }
    const allowed = await audited(t, 'access.allowed');
    assert.deepEqual(
      allowed.map((r) => r.data.route),
      ['admin', 'admin', 'admin'],
    );
    // Denials on the quiet route are still recorded.
    assert.equal((await nginx(t, 'app.example.com', '/x', admin)).status, 401);
    assert.equal((await audited(t, 'access.denied')).length, 1);
  } finally {
    await t.close();
  }
});

test('shutdown sends close 1001 to an open websocket within the grace', async () => {
  const http: Server = createServer();
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const up = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const t = await startTestGatehouse({
    yaml: `
server: { shutdown_grace: 5s }
clients:
  - id: reader
    allowed_audiences: ["**"]
    roles: [reader]
routes:
  - name: ws
    from: /ws/
    to: [${up}]
    policy:
      - name: readers
        allow: { roles: [reader] }
`,
  });
  try {
    const token = await tokenFor(t, `${t.url}/ws/`);
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/ws/chat`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send('hi');
    assert.equal(String(await new Promise((r) => ws.once('message', r))), 'echo:hi');
    assert.equal(t.gh.drain.size, 1);
    let closedAt = 0;
    const closed = new Promise<number>((r) =>
      ws.once('close', (code) => {
        closedAt = Date.now();
        r(code);
      }),
    );
    const started = Date.now();
    await t.gh.close();
    assert.equal(await closed, 1001);
    // Timed to the client's close, not to the end of the whole shutdown (the store and the rest close
    // after the drain, and take their time on a loaded machine).
    const took = closedAt - started;
    assert.ok(took < 4000, `closed after ${took} ms: well within the 5 s grace, not cut at its end`);
  } finally {
    await t.close();
    for (const c of wss.clients) c.terminate();
    wss.close();
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
  }
});

test('reload: forward_auth applies live; proxy.trusted_proxies is reported as needing a restart', async () => {
  const t = await startTestGatehouse({ yaml: yaml() });
  try {
    const running = t.gh.config;
    const next = {
      ...running,
      forward_auth: { ...running.forward_auth, trusted_proxies: ['10.0.0.0/8'] },
      proxy: { ...running.proxy, trusted_proxies: ['10.0.0.0/8'] },
    };
    assert.deepEqual(restartOnlyChanges(running, next), ['proxy.trusted_proxies']);
  } finally {
    await t.close();
  }
});
