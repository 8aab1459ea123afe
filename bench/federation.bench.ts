// Federation: token exchanges/s (RFC 8693, GitHub-shaped subject token, JWKS cached after the first
// exchange, trust rules, durable audit) next to plain client-credentials issuance on the same server.
import { Pool } from 'undici';
import { startExternalIssuer } from '../test/helpers/external-issuer.js';
import { basicAuth, bounded, row, tokenRequest, type BenchResult } from './lib.js';
import { startBenchGatehouse } from './gatehouse.js';

const GROUP = 'federation';
const IN_FLIGHT = Number(process.env.BENCH_CLIENTS ?? '16');

export async function run(): Promise<BenchResult[]> {
  const ext = await startExternalIssuer('github', { defaultAud: 'https://gatehouse.bench' });
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
  const bench = await startBenchGatehouse({ yaml });
  const pool = new Pool(bench.url, { connections: IN_FLIGHT, pipelining: 1 });
  try {
    const auth = basicAuth(bench.client.id, bench.client.secret);
    const post = tokenRequest(pool);
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
    await bench.close();
    await ext.close();
  }
}
