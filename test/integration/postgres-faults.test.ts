// PostgreSQL going away under a running Gatehouse, cut with a TCP forwarder the test controls (the
// machine's server is shared): issuance fails closed at once, memory keeps verifying within the grace,
// /readyz reports the store past it, and everything comes back by itself with nothing acknowledged lost.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { parseConfigText } from '../../src/config/load.js';
import { startGatehouse, type Gatehouse } from '../../src/server/app.js';
import { createLogger } from '../../src/lib/logger.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { rotateSecret } from '../../src/issuer/client-secrets.js';
import { recordRevocation } from '../../src/revocation/index.js';
import { GatehouseError } from '../../src/lib/errors.js';
import { requestToken, runCli } from '../helpers/gatehouse.js';
import {
  CLIENT_YAML,
  eventually,
  hostPort,
  postgresSkipReason,
  setupReplicas,
  startForwarder,
  type ReplicaSetup,
  type TcpForwarder,
} from '../helpers/replicas.js';

const skip = await postgresSkipReason();
const GRACE_MS = 2500;

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

async function readyz(url: string) {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('PostgreSQL outage', { skip }, () => {
  let s: ReplicaSetup;
  let fwd: TcpForwarder;
  let gh: Gatehouse;
  let admin: PostgresStore;
  let secret: string;
  const client = () => ({ id: 'ci', secret });

  before(async () => {
    const setup = await setupReplicas();
    if ('skip' in setup) throw new Error(setup.skip);
    s = setup;
    fwd = await startForwarder(hostPort(s.databaseUrl));
    const { config } = parseConfigText(CLIENT_YAML, {
      file: 'faults.yaml',
      baseDir: s.dir,
      base: {
        issuer: { url: s.issuer },
        server: { host: '127.0.0.1', port: 0 },
        store: { postgres: { url: fwd.urlFor(s.databaseUrl), pool: 4, grace: `${GRACE_MS}ms` } },
        keys: { encryption_key: s.kekText },
        log: { level: 'silent' },
      },
    });
    gh = await startGatehouse(config, { logger: createLogger({ level: 'silent' }) });
    admin = new PostgresStore({ url: s.databaseUrl, pool: 2 });
    await admin.init();
    secret = (await rotateSecret(admin, 'ci', { overlapMs: 0, now: Date.now() })).secret;
  });
  after(async () => {
    await gh?.close();
    await admin?.close();
    await fwd?.close();
    await s?.close();
  });

  test('outage: fail closed for issuance, serve from memory within the grace, refuse after, recover alone', async () => {
    const before = await requestToken(gh.url, client(), { audience: 'vault' });
    assert.equal(before.status, 200, JSON.stringify(before.body));
    const token = before.body.access_token as string;
    assert.equal((await readyz(gh.url)).body.status, 'ready');

    const acknowledged: string[] = [claims(token).jti as string];
    const statuses = new Map<number, number>();
    // Load through the outage: a client issuing all the time.
    let load = true;
    const loader = (async () => {
      while (load) {
        const r = await requestToken(gh.url, client(), { audience: 'x' }).catch(() => undefined);
        if (!r) continue;
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status === 200) acknowledged.push(claims(r.body.access_token as string).jti as string);
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    // Some issuance before the cut (the count of 200s below needs it); waited for, not assumed of 200 ms.
    await eventually(() => (statuses.get(200) ?? 0) >= 3, {
      timeoutMs: 10_000,
      what: 'three tokens issued before the cut',
    });

    fwd.cut();
    const cutAt = Date.now();
    await eventually(() => !gh.storeHealth.healthy, { timeoutMs: 5000, what: 'the store to be seen down' });

    // Issuance needs the database: a clear 503, not a token without its audit record.
    const during = await requestToken(gh.url, client(), { audience: 'vault' });
    assert.equal(during.status, 503);
    assert.equal(during.body.error, 'temporarily_unavailable');
    // Within the grace: the JWKS and the revocation set keep serving from memory; ready but degraded.
    assert.equal((await fetch(`${gh.url}/jwks`)).status, 200);
    if (Date.now() - cutAt < GRACE_MS - 500) {
      assert.equal(gh.revocations.check(claims(token)), undefined);
      const r = await readyz(gh.url);
      assert.equal(r.status, 200);
      assert.equal(r.body.status, 'degraded');
    }

    // Past the grace: /readyz says why, and revocation checks refuse rather than answer from old data.
    await eventually(async () => (await readyz(gh.url)).status === 503, {
      timeoutMs: GRACE_MS + 3000,
      what: '/readyz to report the store',
    });
    const r = await readyz(gh.url);
    assert.match(String((r.body.problems as string[])[0]), /store unreachable since .*grace/);
    assert.equal((r.body.store as Record<string, unknown>).state, 'down');
    assert.throws(
      () => gh.revocations.check(claims(token)),
      (e: unknown) => e instanceof GatehouseError && e.code === 'ERR_STORE_UNAVAILABLE',
    );

    // A revocation written by another replica while this one is cut off (a partition, not a restart).
    await recordRevocation(admin, { kind: 'subject', value: claims(token).sub as string }, Date.now());

    fwd.restore();
    await eventually(async () => (await readyz(gh.url)).body.status === 'ready', {
      timeoutMs: 10_000,
      what: '/readyz to be ready again without a restart',
    });
    // Reported ready only after catching up: the revocation made during the partition is enforced.
    assert.equal(gh.revocations.check(claims(token))?.kind, 'subject');
    const again = await requestToken(gh.url, client(), { audience: 'vault' });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    acknowledged.push(claims(again.body.access_token as string).jti as string);
    // The loader is issuing again too (and its tokens are in the check below).
    const okBefore = statuses.get(200) ?? 0;
    await eventually(() => (statuses.get(200) ?? 0) >= okBefore + 3, {
      timeoutMs: 10_000,
      what: 'the loader to get tokens again after the recovery',
    });
    load = false;
    await loader;

    assert.ok((statuses.get(503) ?? 0) > 0, `statuses ${JSON.stringify([...statuses])}`);
    // Never a bare server error: a store outage is answered 503 temporarily_unavailable from the first request.
    assert.equal(statuses.get(500), undefined, `statuses ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get(200) ?? 0) >= 6, `statuses ${JSON.stringify([...statuses])}`);
    // Nothing acknowledged is lost: every token a client got has its token.issued record.
    const issued = new Set(
      (await admin.queryAudit({ type: 'token.issued', limit: 100_000 })).map((row) => row.data.jti),
    );
    for (const jti of acknowledged) assert.ok(issued.has(jti), `token.issued for ${String(jti)}`);
    const cfg = join(s.dir, 'verify.yaml');
    writeFileSync(
      cfg,
      `issuer: { url: "${s.issuer}" }\nstore: { postgres: { url: "${s.databaseUrl}" } }\nkeys: { encryption_key: "\${file:kek}" }\n`,
    );
    const v = await runCli(['audit', 'verify', '--config', cfg]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});
