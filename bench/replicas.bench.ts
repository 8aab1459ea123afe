// Replicas on PostgreSQL: /token issuance on PostgreSQL next to SQLite in the same run, and how long a
// revocation written through one store takes to reach another replica's in-memory revocation set
// (LISTEN/NOTIFY, then a catch-up read), p50/p99 over N samples. Skipped rows say why.
import { Pool } from 'undici';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { RevocationSet, recordRevocation } from '../src/revocation/index.js';
import { startTestGatehouse } from '../test/helpers/gatehouse.js';
import { testDatabase } from '../test/helpers/postgres.js';
import { basicAuth, bounded, row, tokenRequest, type BenchResult } from './lib.js';
import { BENCH_CLIENT_YAML } from './gatehouse.js';

const GROUP = 'replicas';
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? '16');
const SAMPLES = Number(process.env.BENCH_REVOCATIONS ?? '50');

async function issuance(store: 'sqlite' | 'postgres', vs?: string): Promise<BenchResult> {
  const t = await startTestGatehouse({ yaml: BENCH_CLIENT_YAML, store });
  const secret = await t.secretFor('bench');
  const pool = new Pool(t.url, { connections: CLIENTS, pipelining: 1 });
  try {
    const post = tokenRequest(pool, { authorization: basicAuth('bench', secret) });
    const token = (): Promise<void> => post('grant_type=client_credentials&audience=api');
    return row(
      GROUP,
      `/token on ${store}, ${CLIENTS} clients`,
      'tokens/s',
      await bounded(token, { inFlight: CLIENTS }),
      vs,
    );
  } finally {
    await pool.close();
    await t.close();
  }
}

/** Revoke through store A; time until replica B's RevocationSet refuses the subject. */
async function propagation(url: string): Promise<BenchResult> {
  const a = new PostgresStore({ url, pool: 2 });
  const b = new PostgresStore({ url, pool: 2 });
  await a.init();
  await b.init();
  const set = new RevocationSet(b);
  await set.start();
  try {
    const latencies: number[] = [];
    const start = performance.now();
    for (let i = 0; i < SAMPLES; i++) {
      const sub = `bench-${i}`;
      const t0 = performance.now();
      await recordRevocation(a, { kind: 'subject', value: sub }, Date.now());
      while (!set.check({ sub, iat: 0 })) {
        if (performance.now() - t0 > 10_000) throw new Error('a revocation did not arrive within 10 s');
        await new Promise((r) => setTimeout(r, 1));
      }
      latencies.push(performance.now() - t0);
    }
    const elapsed = (performance.now() - start) / 1000;
    latencies.sort((x, y) => x - y);
    const at = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
    return {
      group: GROUP,
      name: `revocation A → B's set (write + NOTIFY + catch-up), N=${SAMPLES}`,
      unit: 'revocations/s',
      value: SAMPLES / elapsed,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
    };
  } finally {
    set.stop();
    await a.close();
    await b.close();
  }
}

export async function run(): Promise<BenchResult[]> {
  const sqliteName = `/token on sqlite, ${CLIENTS} clients`;
  const results: BenchResult[] = [await issuance('sqlite')];
  const db = await testDatabase();
  if ('skip' in db) {
    process.stderr.write(`replicas: PostgreSQL rows skipped (${db.skip})\n`);
    return results;
  }
  try {
    results.push(await issuance('postgres', sqliteName));
    results.push(await propagation(db.url));
  } finally {
    await db.drop();
  }
  return results;
}
