// `gatehouse serve` with `server.workers` for the proxy benchmark: a real child process (the primary and
// its workers) on a fixed port, SQLite with durable audit, a bearer route and a forward-auth route, and a
// token for each minted through its own /token endpoint.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKekText } from '../src/keys/seal.js';
import { freePort } from '../test/helpers/edge-proxies.js';
import { runCli } from '../test/helpers/gatehouse.js';
import { startCli } from '../test/helpers/processes.js';

export interface BenchCluster {
  url: string;
  /** A bearer token whose audience is the route `app` (`/app/`). */
  appToken: string;
  /** A bearer token for the forward-auth route on `fwdPort`. */
  fwdToken: string;
  close(): Promise<void>;
}

export async function startBenchCluster(opts: {
  workers: number;
  upstream: string;
  fwdPort: number;
}): Promise<BenchCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-cluster-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  writeFileSync(join(dir, 'kek'), generateKekText() + '\n', { mode: 0o600 });
  const config = join(dir, 'gatehouse.yaml');
  writeFileSync(
    config,
    `issuer: { url: "${url}" }
server: { host: 127.0.0.1, port: ${port}, workers: ${opts.workers} }
store: { sqlite: { path: "${join(dir, 'gatehouse.db')}" } }
keys: { encryption_key: "\${file:kek}" }
log: { level: warn }
clients:
  - id: bench
    allowed_audiences: ["**"]
    roles: [reader]
routes:
  - name: app
    from: /app/
    to: [${opts.upstream}]
    policy:
      - name: readers
        allow: { all: [ { roles: [reader] }, { not: { path: ["/app/admin/**"] } } ] }
  - name: fronted
    from: http://127.0.0.1:${opts.fwdPort}/
    to: [${opts.upstream}]
    policy:
      - name: readers
        allow: { roles: [reader] }
`,
  );
  const gh = await startCli(['serve', '--config', config], { timeoutMs: 60_000 });
  try {
    const rotated = await runCli([
      'clients',
      'rotate-secret',
      'bench',
      '--overlap',
      '0s',
      '--config',
      config,
    ]);
    const secret = /GATEHOUSE_CLIENT_SECRET=(\S+)/.exec(rotated.stdout)?.[1];
    if (!secret) throw new Error(`rotate-secret failed: ${rotated.stderr}`);
    const token = async (audience: string) => {
      const res = await fetch(`${url}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: 'Basic ' + Buffer.from(`bench:${secret}`).toString('base64'),
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', audience, expires_in: '3600' }),
      });
      const body = (await res.json()) as { access_token?: string };
      if (!body.access_token) throw new Error(`token for ${audience}: ${res.status} ${JSON.stringify(body)}`);
      return body.access_token;
    };
    return {
      url,
      appToken: await token(`${url}/app/`),
      fwdToken: await token(`http://127.0.0.1:${opts.fwdPort}/`),
      async close() {
        await gh.stop('SIGTERM');
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await gh.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
