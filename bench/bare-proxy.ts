// A bare Node reverse proxy (node:http + an undici Pool, no auth): the best a Node proxy does without
// identity, the reference Gatehouse is held against in proxy.bench.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import { Pool } from 'undici';

export async function startBareProxy(upstream: string): Promise<{ url: string; close(): Promise<void> }> {
  const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 });
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
        res.writeHead(up.statusCode, up.headers as Record<string, string>);
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
