// The dev stack's demo upstream (DESIGN.md "Demo app"): answers every request with JSON saying what it
// received — method, path and query as received, lower-case headers — so anyone can see what the proxy
// forwards.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoApp {
  /** `http://127.0.0.1:PORT` */
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startDemoApp(host = '127.0.0.1'): Promise<DemoApp> {
  const server = createServer((req, res) => {
    const headers: Record<string, string> = {};
    // Node joins repeated headers; lower-case names as the contract says.
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    }
    const reply = () => {
      const body = JSON.stringify({ method: req.method, path: req.url, headers });
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
      });
      res.end(body);
    };
    // Drain any request body before answering, so keep-alive connections stay usable.
    req.resume();
    req.on('end', reply);
    req.on('error', () => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${host}:${addr.port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
