// `server.workers`: `gatehouse serve` as a cluster of worker processes on one port and one SQLite file.
// What a user would notice: one ready line; tokens issued by either worker form one audit chain; the
// /metrics answer counts every worker; a revocation holds on every connection; a worker that dies is
// replaced while the others serve; SIGTERM drains them all; a taken port stops the start, not a loop.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { generateKekText } from '../../src/keys/seal.js';
import { runCli, tempDir } from '../helpers/gatehouse.js';
import { startCli, type RunningCli } from '../helpers/processes.js';

const ISSUER = 'https://auth.example.test';

/** One request on its own connection, so the cluster's primary hands it to the next worker. */
function fresh(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The primary's worker processes (not tsx's esbuild service, also its child under the test loader). */
function workerPids(primary: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(primary), '-f', 'serve --config'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('server.workers: one port, several processes', () => {
  let dir: string;
  let config: string;
  let upstream: Server;
  let gh: RunningCli;
  let url: string;
  let secret: string;

  function writeConfig(port: number): void {
    writeFileSync(
      config,
      [
        `issuer: { url: "${ISSUER}" }`,
        `server: { host: 127.0.0.1, port: ${port}, workers: 2, shutdown_grace: 2s }`,
        `store: { sqlite: { path: "${join(dir, 'gatehouse.db')}" } }`,
        `keys: { encryption_key: "\${file:kek}" }`,
        `log: { level: info }`,
        `clients:`,
        `  - id: ci`,
        `    allowed_audiences: ["**"]`,
        `    roles: [deployer]`,
        `routes:`,
        `  - name: app`,
        `    from: /app/`,
        `    to: [http://127.0.0.1:${(upstream.address() as AddressInfo).port}]`,
        `    policy: [ { name: deployers, allow: { roles: [deployer] } } ]`,
      ].join('\n'),
    );
  }

  before(async () => {
    dir = tempDir('gatehouse-workers-');
    config = join(dir, 'gatehouse.yaml');
    writeFileSync(join(dir, 'kek'), generateKekText() + '\n', { mode: 0o600 });
    upstream = createServer((_req, res) => res.end('from the app'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    writeConfig(0);
    gh = await startCli(['serve', '--config', config]);
    url = /listening=(\S+)/.exec(gh.lines.at(-1) ?? '')?.[1] ?? '';
    const rotated = await runCli(['clients', 'rotate-secret', 'ci', '--overlap', '0s', '--config', config]);
    assert.equal(rotated.code, 0, rotated.stderr);
    secret = /GATEHOUSE_CLIENT_SECRET=(\S+)/.exec(rotated.stdout)?.[1] ?? '';
  });
  after(async () => {
    await gh?.stop('SIGKILL');
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  const issue = (audience: string) =>
    fresh(`${url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'Basic ' + Buffer.from(`ci:${secret}`).toString('base64'),
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', audience }).toString(),
    });

  test('one ready line for the whole cluster, and both workers serve', () => {
    assert.match(
      gh.lines.at(-1) ?? '',
      /^ready issuer=https:\/\/auth\.example\.test listening=\S+ workers=2$/,
    );
    const listening = gh
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"gatehouse listening"'))
      .map((l) => (JSON.parse(l) as { worker: number }).worker)
      .sort();
    assert.deepEqual(listening, [0, 1]);
    assert.equal(workerPids(gh.child.pid!).length, 2);
  });

  test('tokens from both workers form one audit chain, and /metrics counts all of them', async () => {
    const before = await fresh(`${url}/metrics`);
    const issuedBefore = Number(
      /^gatehouse_tokens_issued_total\{[^}]*client="ci"[^}]*\} (\d+)/m.exec(before.text)?.[1] ?? 0,
    );
    const results = await Promise.all(Array.from({ length: 40 }, () => issue('api://orders')));
    assert.deepEqual(
      results.map((r) => r.status),
      Array(40).fill(200),
    );
    const jtis = new Set(
      results.map((r) => decodeJwt((JSON.parse(r.text) as { access_token: string }).access_token).jti),
    );
    assert.equal(jtis.size, 40);

    // Whichever worker takes the scrape answers for the cluster: the total, not its own share.
    const after = await fresh(`${url}/metrics`);
    const issued = Number(
      /^gatehouse_tokens_issued_total\{[^}]*client="ci"[^}]*\} (\d+)/m.exec(after.text)?.[1] ?? 0,
    );
    assert.equal(
      issued - issuedBefore,
      40,
      after.text
        .split('\n')
        .filter((l) => l.includes('tokens_issued'))
        .join('\n'),
    );

    const verify = await runCli(['audit', 'verify', '--config', config]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const exported = await runCli(['audit', 'export', '--config', config]);
    assert.equal(exported.code, 0, exported.stderr);
    const recorded = exported.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; data: { jti?: string } })
      .filter((r) => r.type === 'token.issued')
      .map((r) => r.data.jti);
    for (const jti of jtis) assert.ok(recorded.includes(jti), `token ${jti} is in the audit log once`);
    assert.equal(recorded.filter((j) => j && jtis.has(j)).length, 40);
  });

  test('a revocation holds on every worker', async () => {
    const res = await issue(`${ISSUER}/app/`);
    const token = (JSON.parse(res.text) as { access_token: string }).access_token;
    // Path routes live under the issuer's host.
    const auth = { authorization: `Bearer ${token}`, host: 'auth.example.test' };
    const allowed = await Promise.all(
      Array.from({ length: 10 }, () => fresh(`${url}/app/x`, { headers: auth })),
    );
    assert.deepEqual(
      allowed.map((r) => r.status),
      Array(10).fill(200),
    );
    const revoked = await runCli(['revoke', 'token', decodeJwt(token).jti!, '--config', config]);
    assert.equal(revoked.code, 0, revoked.stderr);
    // Each worker follows the store's change feed; within a couple of seconds none lets it through.
    await until('every worker refuses the revoked token', async () => {
      const rs = await Promise.all(
        Array.from({ length: 10 }, () => fresh(`${url}/app/x`, { headers: auth })),
      );
      return rs.every((r) => r.status === 401);
    });
  });

  test('a worker that dies is replaced while the other serves', async () => {
    const [victim] = workerPids(gh.child.pid!);
    assert.ok(victim);
    process.kill(victim, 'SIGKILL');
    // Connections handed to it as it died are reset (as with any crash); once the primary has seen the
    // exit, new connections go to the live worker while the replacement starts.
    await until('the primary to see the exit', () => /"event":"worker.restarted"/.test(gh.stderr()));
    const during = await Promise.all(Array.from({ length: 10 }, () => fresh(`${url}/healthz`)));
    assert.deepEqual(
      during.map((r) => r.status),
      Array(10).fill(200),
    );
    await until('a new worker', () => {
      const pids = workerPids(gh.child.pid!);
      return pids.length === 2 && !pids.includes(victim);
    });
    await until('the new worker listening', () => gh.stderr().split('"gatehouse listening"').length - 1 >= 3);
  });

  test('SIGTERM drains every worker and the primary exits 0', async () => {
    const pids = workerPids(gh.child.pid!);
    const code = await gh.stop('SIGTERM');
    assert.equal(code, 0, gh.stderr().slice(-2000));
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'worker is gone');
  });

  test('a taken port stops the start with exit 3, not a restart loop', async () => {
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    try {
      writeConfig((blocker.address() as AddressInfo).port);
      const started = Date.now();
      const run = await runCli(['serve', '--config', config], { timeoutMs: 30_000 });
      assert.equal(run.code, 3, run.stderr.slice(-2000));
      assert.match(run.stderr, /ERR_LISTEN_FAILED|cannot listen/);
      assert.match(run.stderr, /"event":"worker.failed"/);
      assert.ok(Date.now() - started < 25_000);
    } finally {
      blocker.close();
      writeConfig(0);
    }
  });
});
