// A bare Node reverse proxy (node:http + an undici Pool, no auth): the best a Node proxy does without
// identity, the reference Gatehouse is held against in proxy.bench.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import { Pool } from 'undici';

export async function startBareProxy(upstream: string): Promise<{ url: string; close(): Promise<void> }> {
  // As @fastify/http-proxy sets it up: a keep-alive pool (128 connections, no pipelining).
  const pool = new Pool(upstream, { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 });
  const server: Server = createServer((req, res) => {
    const hasBody =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool
      .request({
        path: req.url ?? '/',
        method: (req.method ?? 'GET') as 'GET',
        headers: { 'x-forwarded-for': req.socket.remoteAddress ?? '' },
        body: hasBody ? req : null,
      })
      .then((up) => {
        // Hop-by-hop headers of the upstream are not the client's (keep-alive, connection).
        const h = up.headers as Record<string, string | string[]>;
        delete h.connection;
        delete h['keep-alive'];
        delete h['transfer-encoding'];
        res.writeHead(up.statusCode, h);
        pipeline(up.body, res, () => undefined);
      })
      .catch(() => {
        res.writeHead(502);
        res.end();
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await pool.close();
    },
  };
}
