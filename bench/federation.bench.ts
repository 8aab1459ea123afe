// Federation: token exchanges/s (RFC 8693, GitHub-shaped subject token, JWKS cached after the first
// exchange, trust rules, durable audit) next to plain client-credentials issuance on the same server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { parseConfigText } from '../src/config/load.js';
import { generateKekText } from '../src/keys/seal.js';
import { rotateSecret } from '../src/issuer/client-secrets.js';
import { createLogger } from '../src/lib/logger.js';
import { startGatehouse } from '../src/server/app.js';
import { startExternalIssuer } from '../test/helpers/external-issuer.js';
import { bounded, row, type BenchResult } from './lib.js';

const GROUP = 'federation';
const IN_FLIGHT = Number(process.env.BENCH_CLIENTS ?? '16');

export async function run(): Promise<BenchResult[]> {
  const ext = await startExternalIssuer('github', { defaultAud: 'https://gatehouse.bench' });
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-fed-'));
  const yaml = `
clients:
  - { id: bench, allowed_audiences: ["**"] }
external_issuers:
  - { name: github, issuer: "${ext.issuer}", audiences: ["https://gatehouse.bench"] }
trust_rules:
  - name: main
    issuer: github
    conditions: { all: [ { claim: repository, equals: octo/app }, { claim: ref, glob: "refs/heads/*" } ] }
    grant: { roles: [reader], audiences: [api], subject: "gh:{repository}:{ref}" }
`;
  const { config } = parseConfigText(yaml, {
    file: 'bench.yaml',
    baseDir: dir,
    base: {
      issuer: { url: 'http://127.0.0.1:1' },
      server: { host: '127.0.0.1', port: 0 },
      store: { sqlite: { path: join(dir, 'gatehouse.db') } },
      keys: { encryption_key: generateKekText() },
      log: { level: 'silent' },
    },
  });
  const gh = await startGatehouse(config, {
    issuerFromAddress: true,
    logger: createLogger({ level: 'silent' }),
  });
  const url = gh.config.issuer.url;
  const pool = new Pool(url, { connections: IN_FLIGHT, pipelining: 1 });
  try {
    const { secret } = await rotateSecret(gh.store, 'bench', { overlapMs: 0, now: Date.now() });
    const auth = 'Basic ' + Buffer.from(`bench:${secret}`).toString('base64');
    const post = async (body: string, headers: Record<string, string> = {}): Promise<void> => {
      const res = await pool.request({
        method: 'POST',
        path: '/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`/token answered ${res.statusCode}: ${text.slice(0, 200)}`);
    };
    const ccName = `client_credentials via /token, ${IN_FLIGHT} in flight`;
    const cc = await bounded(
      () => post('grant_type=client_credentials&audience=api', { authorization: auth }),
      {
        inFlight: IN_FLIGHT,
      },
    );
    const subject = await ext.mint();
    const form = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_id: 'gatehouse-cli',
      subject_token: subject,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: 'api',
    }).toString();
    const te = await bounded(() => post(form), { inFlight: IN_FLIGHT });
    return [
      row(GROUP, ccName, 'tokens/s', cc),
      row(GROUP, `token exchange (cached JWKS, trust rules), ${IN_FLIGHT} in flight`, 'tokens/s', te, ccName),
    ];
  } finally {
    await pool.close();
    await gh.close();
    await ext.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
