// A Gatehouse with proxy routes in front of a recording upstream, for the proxy's integration and
// security tests: every request the upstream receives is kept, so a test can prove what got through.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startTestGatehouse, requestToken, type TestGatehouse } from './gatehouse.js';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: string;
}

export interface RecordingUpstream {
  url: string;
  seen: Seen[];
  server: Server;
  /** Answer with this instead of the default JSON echo (e.g. to hang for timeouts). */
  respond?: (req: IncomingMessage, res: ServerResponse, body: string) => void;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<RecordingUpstream> {
  const up: RecordingUpstream = {
    url: '',
    seen: [],
    server: undefined as unknown as Server,
    close: () =>
      new Promise<void>((resolve) => {
        up.server.close(() => resolve());
        up.server.closeAllConnections();
      }),
  };
  up.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      up.seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      });
      if (up.respond) return up.respond(req, res, body);
      const text = JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
      res.end(text);
    });
  });
  await new Promise<void>((r) => up.server.listen(0, '127.0.0.1', () => r()));
  up.url = `http://127.0.0.1:${(up.server.address() as AddressInfo).port}`;
  return up;
}

export interface ProxyFixture {
  t: TestGatehouse;
  up: RecordingUpstream;
  url: string;
  port: number;
  /** A bearer token for `audience` for a client with these roles (clients `reader` and `admin`). */
  token(audience: string, as?: 'reader' | 'admin'): Promise<string>;
  close(): Promise<void>;
}

/** The clients proxy tests sign tokens for: `reader` and `admin`, each holding the role of its name. */
export const PROXY_CLIENTS = `clients:
  - id: reader
    allowed_audiences: ["**"]
    roles: [reader]
  - id: admin
    allowed_audiences: ["**"]
    roles: [admin]
`;

/** The default routes: `/app/` (admin/ for admins, public/ open) on the issuer host, and app.example.com. */
export function defaultRoutes(upstream: string): string {
  return `
${PROXY_CLIENTS}routes:
  - name: app
    from: /app/
    to: [${upstream}]
    public: ["/app/public/**"]
    policy:
      - name: admins
        allow: { roles: [admin] }
      - name: readers-outside-admin
        allow: { all: [ { roles: [reader] }, { not: { path: ["/app/admin", "/app/admin/**"] } } ] }
  - name: host
    from: http://app.example.com/
    to: [${upstream}]
    policy:
      - name: admins-only
        allow: { roles: [admin] }
`;
}

export async function startProxyFixture(
  opts: { yaml?: (upstream: string) => string; now?: () => number } = {},
): Promise<ProxyFixture> {
  const up = await startUpstream();
  const t = await startTestGatehouse({ yaml: (opts.yaml ?? defaultRoutes)(up.url), now: opts.now });
  const secrets = new Map<string, string>();
  const port = Number(new URL(t.url).port);
  return {
    t,
    up,
    url: t.url,
    port,
    async token(audience, as = 'reader') {
      let secret = secrets.get(as);
      if (!secret) {
        secret = await t.secretFor(as);
        secrets.set(as, secret);
      }
      const r = await requestToken(t.url, { id: as, secret }, { audience });
      if (r.status !== 200) throw new Error(`token request failed: ${JSON.stringify(r.body)}`);
      return r.body.access_token as string;
    },
    async close() {
      await t.close();
      await up.close();
    },
  };
}

export interface RawResponse {
  status: number;
  head: string;
  body: string;
  headers: Record<string, string>;
}

/** Sends bytes as they are on a fresh socket and reads the first response (Connection: close). */
export function rawRequest(port: number, text: string, timeoutMs = 3000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    const done = () => {
      clearTimeout(timer);
      const idx = data.indexOf('\r\n\r\n');
      const head = idx === -1 ? data : data.slice(0, idx);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of head.split('\r\n').slice(1)) {
        const c = line.indexOf(':');
        if (c > 0) headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
      }
      resolve({ status, head, body: idx === -1 ? '' : data.slice(idx + 4), headers });
    };
    const timer = setTimeout(() => {
      sock.destroy();
      done();
    }, timeoutMs);
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.on('end', done);
    sock.on('close', () => {
      clearTimeout(timer);
    });
    sock.on('error', (e) => (data ? done() : reject(e)));
    sock.write(text);
  });
}

/** A GET as raw bytes with the given target and extra header lines. */
export function rawGet(
  port: number,
  target: string,
  headerLines: string[] = [],
  host = `127.0.0.1:${port}`,
): Promise<RawResponse> {
  const lines = [`GET ${target} HTTP/1.1`, `Host: ${host}`, ...headerLines, 'Connection: close', '', ''];
  return rawRequest(port, lines.join('\r\n'));
}

/**
 * Listens `server` on 127.0.0.1 port 0 and starts a Gatehouse whose `routes` (the YAML list under `routes:`,
 * given the server's URL) front it, with one client `reader` holding role `reader`; `token` is a bearer
 * token of that client for every one of `paths` (route prefixes on the issuer host, such as `/s/`).
 */
export async function startReaderFront(
  server: Server,
  routes: (upstream: string) => string,
  paths: string[],
): Promise<{ t: TestGatehouse; token: string }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const upstream = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const t = await startTestGatehouse({
    yaml: `
clients:
  - id: reader
    allowed_audiences: ["**"]
    roles: [reader]
routes:
${routes(upstream)}`,
  });
  const secret = await t.secretFor('reader');
  const r = await requestToken(
    t.url,
    { id: 'reader', secret },
    { audience: paths.map((p) => `${t.url}${p}`) },
  );
  return { t, token: r.body.access_token as string };
}
