// Websockets through the proxy: decided before the upgrade like any request (401/403), Origin-checked,
// piped only after the upstream's real 101, and closed on revocation and at the maximum lifetime.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import WebSocket, { WebSocketServer } from 'ws';
import { startTestGatehouse, requestToken, type TestGatehouse } from '../helpers/gatehouse.js';

interface Upstreams {
  echo: string;
  plain: string;
  forged: string;
  seen: Array<Record<string, string | string[] | undefined>>;
  close(): Promise<void>;
}

async function listen(server: Server | NetServer): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startUpstreams(): Promise<Upstreams> {
  const seen: Upstreams['seen'] = [];
  const echoHttp = createServer();
  const wss = new WebSocketServer({ server: echoHttp });
  wss.on('connection', (ws, req) => {
    seen.push(req.headers);
    ws.on('message', (m) => ws.send(`echo:${m.toString()}`));
  });
  // Answers the upgrade like a plain request: 200, never 101.
  const plainHttp = createServer((_req, res) => res.end('not a websocket'));
  let plainUpgrades = 0;
  // Says 101 but with an Accept not computed from the client's key.
  const forged = createNetServer((sock) => {
    sock.once('data', () => {
      plainUpgrades++;
      sock.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n',
      );
    });
    sock.on('error', () => undefined);
  });
  void plainUpgrades;
  const [echo, plain, forgedUrl] = [await listen(echoHttp), await listen(plainHttp), await listen(forged)];
  return {
    echo,
    plain,
    forged: forgedUrl,
    seen,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      echoHttp.closeAllConnections();
      plainHttp.closeAllConnections();
      await Promise.all(
        [echoHttp, plainHttp, forged].map((s) => new Promise<void>((r) => s.close(() => r()))),
      );
    },
  };
}

function yaml(up: Upstreams): string {
  return `
clients:
  - id: reader
    allowed_audiences: ["**"]
    roles: [reader]
routes:
  - name: ws
    from: /ws/
    to: [${up.echo}]
    policy:
      - name: readers-outside-admin
        allow: { all: [ { roles: [reader] }, { not: { path: ["/ws/admin/**"] } } ] }
  - name: short
    from: /short/
    to: [${up.echo}]
    websocket: { max_lifetime: 1s }
    allowed_origins: ["https://app.example.com"]
    policy:
      - name: readers
        allow: { roles: [reader] }
  - name: plain
    from: /plain/
    to: [${up.plain}]
    policy: [ { name: readers, allow: { roles: [reader] } } ]
  - name: forged
    from: /forged/
    to: [${up.forged}]
    policy: [ { name: readers, allow: { roles: [reader] } } ]
`;
}

/** Opens a websocket; resolves with the open socket or the HTTP status of the refused upgrade. */
function open(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ ws: WebSocket } | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((r) => {
    if (ws.readyState === WebSocket.CLOSED) return r(0);
    ws.once('close', (code) => r(code));
  });
}

describe('websockets through the proxy', () => {
  let t: TestGatehouse;
  let up: Upstreams;
  let token: string;
  let wsBase: string;
  const auth = () => ({ authorization: `Bearer ${token}` });

  before(async () => {
    up = await startUpstreams();
    t = await startTestGatehouse({ yaml: yaml(up) });
    wsBase = t.url.replace(/^http/, 'ws');
    token = await newToken(`${t.url}/ws/`);
  });
  after(async () => {
    await t.close();
    await up.close();
  });

  async function newToken(audience: string | string[]): Promise<string> {
    const secret = await t.secretFor('reader');
    const r = await requestToken(t.url, { id: 'reader', secret }, { audience });
    assert.equal(r.status, 200);
    return r.body.access_token as string;
  }

  test('an allowed websocket is piped both ways with identity headers, not spoofed ones', async () => {
    const r = await open(`${wsBase}/ws/chat`, { ...auth(), 'x-gatehouse-user': 'mallory' });
    assert.ok('ws' in r, `refused: ${JSON.stringify(r)}`);
    const reply = new Promise<string>((res) => r.ws.once('message', (m) => res(m.toString())));
    r.ws.send('hello');
    assert.equal(await reply, 'echo:hello');
    const h = up.seen.at(-1) ?? {};
    assert.equal(h['x-gatehouse-user'], 'reader');
    assert.ok(typeof h['x-gatehouse-assertion'] === 'string');
    assert.equal(h.authorization, undefined, 'the bearer token stays with Gatehouse');
    r.ws.close();
    await closed(r.ws);
  });

  test('no credentials: 401 before the upgrade', async () => {
    const r = await open(`${wsBase}/ws/chat`);
    assert.ok('status' in r);
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.body).error, 'unauthorized');
  });

  test('a path the policy refuses: 403 before the upgrade, naming the audit record', async () => {
    const r = await open(`${wsBase}/ws/admin/feed`, auth());
    assert.ok('status' in r);
    assert.equal(r.status, 403);
    assert.match(JSON.parse(r.body).audit_id, /./);
  });

  test('a forged token: 401 invalid_token', async () => {
    const r = await open(`${wsBase}/ws/chat`, { authorization: `Bearer ${token.slice(0, -4)}AAAA` });
    assert.ok('status' in r);
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.body).error, 'invalid_token');
  });

  test('upstream answering 200 instead of 101: 502 and nothing piped', async () => {
    const tok = await newToken(`${t.url}/plain/`);
    const r = await open(`${wsBase}/plain/x`, { authorization: `Bearer ${tok}` });
    assert.ok('status' in r);
    assert.equal(r.status, 502);
    assert.doesNotMatch(r.body, /not a websocket/);
  });

  test('upstream 101 with a wrong Sec-WebSocket-Accept: 502', async () => {
    const tok = await newToken(`${t.url}/forged/`);
    const r = await open(`${wsBase}/forged/x`, { authorization: `Bearer ${tok}` });
    assert.ok('status' in r);
    assert.equal(r.status, 502);
    assert.match(JSON.parse(r.body).error_description, /Sec-WebSocket-Accept/);
  });

  test('revoking the token closes the open websocket within a second', async () => {
    const tok = await newToken(`${t.url}/ws/`);
    const r = await open(`${wsBase}/ws/live`, { authorization: `Bearer ${tok}` });
    assert.ok('ws' in r);
    const started = Date.now();
    const done = closed(r.ws);
    await t.gh.revocations.revoke({ kind: 'jti', value: decodeJwt(tok).jti as string, reason: 'test' });
    await done;
    assert.ok(Date.now() - started < 1000, `closed after ${Date.now() - started} ms`);
    // The audit append is not awaited by the close, but it is queued by then: write what is queued.
    await t.gh.audit.flush();
    const rows = await t.gh.store.queryAudit({ type: 'websocket.closed' });
    assert.ok(
      rows.some((row) => JSON.stringify(row).includes('"revoked"')),
      'websocket.closed audited',
    );
  });

  test('the maximum lifetime closes a websocket', async () => {
    const tok = await newToken(`${t.url}/short/`);
    const r = await open(`${wsBase}/short/x`, {
      authorization: `Bearer ${tok}`,
      origin: 'https://app.example.com',
    });
    assert.ok('ws' in r, JSON.stringify(r));
    const started = Date.now();
    await closed(r.ws);
    const took = Date.now() - started;
    // How late a 1 s timer fires depends on the machine's load, so the client's bound is loose; the
    // audit record proves it was the lifetime that closed it, and not early (the server's own count,
    // from when it armed the timer: the client's open event can come a loaded while after that).
    assert.ok(took < 10_000, `closed after ${took} ms`);
    await t.gh.audit.flush();
    const rows = await t.gh.store.queryAudit({ type: 'websocket.closed' });
    const rec = rows.find((row) => row.data.route === 'short');
    assert.ok(rec, `websocket.closed audited: ${JSON.stringify(rows.map((row) => row.data))}`);
    assert.equal(rec.data.reason, 'max_lifetime');
    assert.ok(Number(rec.data.duration_ms) >= 990, `closed after ${String(rec.data.duration_ms)} ms`);
  });
});
