// Issuance: tokens/s through `/token` (client credentials, ES256, durable audit record before each
// token) with N concurrent clients, next to raw jose `SignJWT` on the same key, sequential and in flight;
// and the durable audit append alone, committed on the writer thread and on the event loop.
import { Pool } from 'undici';
import { SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../src/audit/audit-log.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { bounded, row, type BenchResult } from './lib.js';
import { startBenchGatehouse } from './gatehouse.js';

const GROUP = 'issuance';
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? '16');

export async function run(): Promise<BenchResult[]> {
  const b = await startBenchGatehouse();
  const pool = new Pool(b.url, { connections: CLIENTS, pipelining: 1 });
  try {
    const key = b.gh.keys.active();
    const alg = key.alg;
    const results: BenchResult[] = [];

    const rawSign = () =>
      new SignJWT({ sub: 'bench', aud: 'api', client_id: 'bench', jti: randomUUID() })
        .setProtectedHeader({ alg, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(b.url)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(key.privateKey);
    const seqRef = `jose SignJWT ${alg}, sequential`;
    const parRef = `jose SignJWT ${alg}, 16 in flight`;
    results.push(row(GROUP, seqRef, 'tokens/s', await bounded(rawSign, { inFlight: 1 })));
    results.push(row(GROUP, parRef, 'tokens/s', await bounded(rawSign, { inFlight: 16 })));

    // The durable append alone (group commit, FULL sync), 16 in flight, on a store of its own: committed
    // on the writer thread (the default) and on the event loop (as before the thread existed).
    for (const auditThread of [true, false]) {
      const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-audit-'));
      const store = new SqliteStore({ path: join(dir, 'audit.db'), auditThread });
      await store.init();
      const audit = new AuditLog(store);
      try {
        const append = () => audit.append('token.issued', { jti: randomUUID(), sub: 'bench', aud: ['api'] });
        await append();
        while (auditThread && !store.auditOnThread) await new Promise((r) => setTimeout(r, 5));
        const where = auditThread ? 'writer thread' : 'event loop';
        results.push(
          row(
            GROUP,
            `AuditLog.append (durable), 16 in flight, commit on the ${where}`,
            'records/s',
            await bounded(append, { inFlight: 16 }),
          ),
        );
      } finally {
        await audit.close();
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }

    // Signing plus the durable `token.issued` record, without HTTP or the provider.
    const minter = b.gh.issuer.context.minter;
    const mint = () =>
      minter.mint({ sub: 'bench', audiences: ['api'], ttlMs: 600_000, clientId: 'bench', grant: 'bench' });
    results.push(
      row(
        GROUP,
        'TokenMinter.mint (sign + durable audit), 1 in flight',
        'tokens/s',
        await bounded(mint, { inFlight: 1 }),
        seqRef,
      ),
    );
    results.push(
      row(
        GROUP,
        'TokenMinter.mint (sign + durable audit), 16 in flight',
        'tokens/s',
        await bounded(mint, { inFlight: 16 }),
        parRef,
      ),
    );

    const auth = 'Basic ' + Buffer.from(`${b.client.id}:${b.client.secret}`).toString('base64');
    const body = 'grant_type=client_credentials&audience=api';
    const token = async (): Promise<void> => {
      const res = await pool.request({
        method: 'POST',
        path: '/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth },
        body,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`/token answered ${res.statusCode}: ${text.slice(0, 200)}`);
    };
    results.push(
      row(GROUP, 'gatehouse /token, 1 client', 'tokens/s', await bounded(token, { inFlight: 1 }), seqRef),
    );
    results.push(
      row(
        GROUP,
        `gatehouse /token, ${CLIENTS} clients`,
        'tokens/s',
        await bounded(token, { inFlight: CLIENTS }),
        parRef,
      ),
    );
    return results;
  } finally {
    await pool.close();
    await b.close();
  }
}
