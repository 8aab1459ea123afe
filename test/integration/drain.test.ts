// SIGTERM drains a real `gatehouse serve`: the listener closes at once (new connections are refused), an
// in-flight request to a slow upstream still completes, and the process exits 0 within the grace.
// In-process: websockets registered for draining are told to go away and cut at the end of the grace.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { generateKekText } from '../../src/keys/seal.js';
import { DrainRegistry, drainServer } from '../../src/server/drain.js';
import { tempDir } from '../helpers/gatehouse.js';
import { startCli } from '../helpers/processes.js';
import { startUpstream } from '../helpers/proxy.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('graceful shutdown', () => {
  test('SIGTERM: in-flight request completes, new connections refused, exit 0 within the grace', async () => {
    const dir = tempDir();
    const up = await startUpstream();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    up.respond = (_req, res) => {
      void released.then(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('slow but complete');
      });
    };
    const port = await freePort();
    const file = join(dir, 'gatehouse.yaml');
    writeFileSync(
      file,
      `
issuer: { url: "http://127.0.0.1:${port}" }
server: { host: 127.0.0.1, port: ${port}, shutdown_grace: 8s }
store: { sqlite: { path: g.db } }
keys: { encryption_key: "${generateKekText()}" }
log: { level: warn }
routes:
  - name: slow
    from: /slow/
    to: [${up.url}]
    public: true
`,
    );
    const cli = await startCli(['serve', '--config', file]);
    try {
      const inflight = get(`http://127.0.0.1:${port}/slow/x`);
      while (up.seen.length === 0) await new Promise((r) => setTimeout(r, 10));
      const t0 = Date.now();
      const exited = cli.stop('SIGTERM');
      // The listener closes promptly; the request keeps waiting on its upstream.
      // Polled to a deadline, not a count of tries: the CLI's signal handler runs when a loaded machine
      // gets to it. The request is held until release(), so a refusal seen here is one while draining.
      let refused = false;
      const deadline = Date.now() + 5000;
      while (!refused && Date.now() < deadline) {
        refused = await connectRefused(port);
        if (!refused) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(refused, 'new connections are refused while draining');
      await new Promise((r) => setTimeout(r, 300));
      release();
      const r = await inflight;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'slow but complete');
      const code = await exited;
      assert.equal(code, 0, cli.stderr());
      assert.ok(Date.now() - t0 < 8000, 'exited within the grace');
    } finally {
      await cli.stop('SIGKILL');
      await up.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('registered upgrade sockets are told to go away, and cut when the grace ends', async () => {
    const registry = new DrainRegistry();
    const server = createServer();
    let told = 0;
    server.on('upgrade', (_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
      // This peer ignores the request to go away, so only the grace can end it.
      registry.register(socket, () => told++);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const client = connect(port, '127.0.0.1');
    await new Promise<void>((r) => client.on('connect', () => r()));
    client.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n`);
    await new Promise<void>((r) => client.once('data', () => r()));
    const clientClosed = new Promise<void>((r) => client.on('close', () => r()));
    client.on('error', () => undefined);
    assert.equal(registry.size, 1);
    const t0 = Date.now();
    const inTime = await drainServer(server, { graceMs: 300, registry });
    assert.equal(inTime, false);
    assert.equal(told, 1);
    assert.ok(Date.now() - t0 >= 290);
    await clientClosed;
    assert.equal(registry.size, 0);
  });

  test('a socket that goes away when told lets the drain finish early', async () => {
    const registry = new DrainRegistry();
    const server = createServer();
    server.on('upgrade', (_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
      registry.register(socket, () => socket.end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.on('end', () => client.end());
    client.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n`);
    await new Promise<void>((r) => client.once('data', () => r()));
    assert.equal(await drainServer(server, { graceMs: 5000, registry }), true);
  });
});
