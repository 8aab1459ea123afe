// The proxy under wrk (Debian): one nginx `return 200` upstream, and in front of it, one at a time:
// nothing (direct), nginx as a plain reverse proxy, a bare Node proxy, fastify + @fastify/http-proxy,
// Gatehouse with bearer JWT + policy + audit, and nginx asking Gatehouse (forward-auth). Ratios are
// against nginx plain proxy and fastify. "Half load" is wrk with 4 connections (no wrk2 here: an
// approximation of a fixed rate well under saturation).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Fastify from 'fastify';
import httpProxy from '@fastify/http-proxy';
import type { AddressInfo } from 'node:net';
import { example, freePort, hasBinary, startNginx, template, NGINX } from '../test/helpers/edge-proxies.js';
import { caseSeconds, type BenchResult } from './lib.js';
import { startBareProxy } from './bare-proxy.js';
import { startBenchGatehouse } from './gatehouse.js';
import { startBenchCluster } from './cluster.js';
import { startSsoStack } from '../test/helpers/sso.js';
import { CookieJar, loginUntilCallback, send, setCookieValue } from '../test/helpers/http-browser.js';

const run$ = promisify(execFile);
const WRK = '/usr/bin/wrk';
const GROUP = 'proxy (wrk)';
const PLAIN = 'nginx plain proxy';
const FASTIFY = 'fastify + @fastify/http-proxy';

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function ms(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

async function wrk(url: string, headers: string[], connections: number): Promise<WrkResult> {
  const seconds = Math.min(5, Math.max(1, Math.round(caseSeconds())));
  const args = ['-t', '2', '-c', String(connections), '-d', `${seconds}s`, '--latency'];
  for (const h of headers) args.push('-H', h);
  const { stdout } = await run$(WRK, [...args, url], { timeout: (seconds + 10) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  const p50 = ms(/\s50%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50, p99, errors };
}

const UPSTREAM_CONF = (port: number) => `
worker_processes 1;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:${port}; location / { return 200 "ok\\n"; } }
}`;

const PLAIN_CONF = (port: number, upstream: number) => `
worker_processes 1;
events { worker_connections 4096; }
http {
  access_log off;
  upstream up { server 127.0.0.1:${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://up; }
  }
}`;

export async function run(): Promise<BenchResult[]> {
  if (!hasBinary(WRK) || !hasBinary(NGINX)) {
    process.stderr.write('proxy.bench: skipped (needs /usr/bin/wrk and /usr/sbin/nginx)\n');
    return [];
  }
  const out: BenchResult[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  const C = 64;
  const add = (name: string, r: WrkResult, vs?: string) => {
    if (r.errors) process.stderr.write(`proxy.bench: ${name}: ${r.errors} errors or non-2xx\n`);
    out.push({
      group: GROUP,
      name,
      value: r.rps,
      unit: 'req/s',
      p50Ms: r.p50,
      p99Ms: r.p99,
      ...(vs ? { vs } : {}),
    });
  };
  try {
    const upPort = await freePort();
    const upstream = await startNginx(UPSTREAM_CONF(upPort), upPort);
    cleanups.push(() => upstream.close());
    const upUrl = `http://127.0.0.1:${upPort}`;
    add('direct (nginx return 200)', await wrk(`${upUrl}/app/x`, [], C), PLAIN);

    const plainPort = await freePort();
    const plain = await startNginx(PLAIN_CONF(plainPort, upPort), plainPort);
    cleanups.push(() => plain.close());
    const plainFull = await wrk(`${plain.url}/app/x`, [], C);
    add(PLAIN, plainFull);

    const bare = await startBareProxy(upUrl);
    cleanups.push(() => bare.close());
    add('bare Node proxy (node:http + undici)', await wrk(`${bare.url}/app/x`, [], C), PLAIN);

    const fastify = Fastify({ logger: false });
    await fastify.register(httpProxy, { upstream: upUrl });
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => fastify.close());
    const fUrl = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
    add(FASTIFY, await wrk(`${fUrl}/app/x`, [], C), PLAIN);

    // Gatehouse: a bearer-token route with a policy, durable audit on SQLite.
    const fwdPort = await freePort();
    const bench = await startBenchGatehouse({
      yaml: `clients:
  - id: bench
    allowed_audiences: ["**"]
    roles: [reader]
routes:
  - name: app
    from: /app/
    to: [${upUrl}]
    policy:
      - name: readers
        allow: { all: [ { roles: [reader] }, { not: { path: ["/app/admin/**"] } } ] }
  - name: fronted
    from: http://127.0.0.1:${fwdPort}/
    to: [${upUrl}]
    policy:
      - name: readers
        allow: { roles: [reader] }
`,
    });
    cleanups.push(() => bench.close());
    const { gh, url } = bench;
    const mint = async (aud: string) =>
      (
        await gh.issuer.context.minter.mint({
          sub: 'bench',
          audiences: [aud],
          ttlMs: 3_600_000,
          clientId: 'bench',
          grant: 'bench',
          claims: { roles: ['reader'] },
        })
      ).token;
    const appToken = await mint(`${url}/app/`);
    const ghFull = await wrk(`${url}/app/x`, [`Authorization: Bearer ${appToken}`], C);
    add('Gatehouse bearer JWT + policy + audit', ghFull, FASTIFY);
    out.push({ ...out[out.length - 1]!, name: 'Gatehouse bearer (vs nginx)', vs: PLAIN });
    // The same route for a person: a real sign-in through the dev IdP, then the session cookie.
    const sso = await startSsoStack({
      base: {
        routes: [
          {
            name: 'app',
            from: '/app/',
            to: [upUrl],
            policy: [{ name: 'engineers', allow: { roles: ['engineer'] } }],
          },
        ],
      },
    });
    cleanups.push(async () => {
      await sso.gh.close();
      await sso.idp.close();
    });
    const jar = new CookieJar();
    const { callback } = await loginUntilCallback(jar, sso.gh.url, {
      username: 'alice',
      password: 'alice-password',
    });
    const signedIn = await send(jar, callback);
    const session = setCookieValue(signedIn.setCookies, 'gatehouse_session');
    if (!session) throw new Error(`sign-in for the session case failed: ${signedIn.status}`);
    add(
      'Gatehouse session cookie + policy + audit',
      await wrk(`${sso.gh.url}/app/x`, [`Cookie: gatehouse_session=${session}`], C),
      FASTIFY,
    );

    const fwd = await startNginx(
      template(example('nginx/nginx.conf'), {
        gatehouse: Number(new URL(url).port),
        app: upPort,
        proxy: fwdPort,
      }),
      fwdPort,
    );
    cleanups.push(() => fwd.close());
    const fwdToken = await mint(`http://127.0.0.1:${fwdPort}/`);
    add(
      'nginx + Gatehouse forward-auth',
      await wrk(`${fwd.url}/x`, [`Authorization: Bearer ${fwdToken}`], C),
      PLAIN,
    );

    // Both cores: `gatehouse serve` with server.workers: 2 (the primary hands connections round-robin).
    const fwd2Port = await freePort();
    const cl = await startBenchCluster({ workers: 2, upstream: upUrl, fwdPort: fwd2Port });
    cleanups.push(() => cl.close());
    add(
      'Gatehouse bearer, 2 workers',
      await wrk(`${cl.url}/app/x`, [`Authorization: Bearer ${cl.appToken}`], C),
      PLAIN,
    );
    const fwd2 = await startNginx(
      template(example('nginx/nginx.conf'), {
        gatehouse: Number(new URL(cl.url).port),
        app: upPort,
        proxy: fwd2Port,
      }),
      fwd2Port,
    );
    cleanups.push(() => fwd2.close());
    add(
      'nginx + Gatehouse forward-auth, 2 workers',
      await wrk(`${fwd2.url}/x`, [`Authorization: Bearer ${cl.fwdToken}`], C),
      PLAIN,
    );

    // p99 added latency at light load (4 connections): Gatehouse's p99 minus nginx plain proxy's.
    const lightPlain = await wrk(`${plain.url}/app/x`, [], 4);
    const lightGh = await wrk(`${url}/app/x`, [`Authorization: Bearer ${appToken}`], 4);
    out.push({
      group: GROUP,
      name: 'p99 added by Gatehouse at light load (ms, wrk -c4 ≈ half load)',
      value: Math.max(0, lightGh.p99 - lightPlain.p99),
      unit: 'ms',
      p50Ms: lightGh.p50 - lightPlain.p50,
      p99Ms: lightGh.p99 - lightPlain.p99,
    });
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
  return out;
}
