// Two `gatehouse serve` processes on one PostgreSQL database, as behind a load balancer: one first key
// when they start together, tokens of one verify on the other, a revocation made anywhere is enforced
// everywhere within the bound, and the audit log stays one verifiable chain.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { rotateSecret } from '../../src/issuer/client-secrets.js';
import { requestToken, runCli } from '../helpers/gatehouse.js';
import { testDatabase } from '../helpers/postgres.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { generateKekText, parseKek } from '../../src/keys/seal.js';
import {
  eventually,
  postgresSkipReason,
  setupReplicas,
  startReplica,
  type Replica,
  type ReplicaSetup,
} from '../helpers/replicas.js';

const skip = await postgresSkipReason();

async function jwks(r: Replica) {
  return (await (await fetch(`${r.url}/jwks`)).json()) as { keys: Array<{ kid: string }> };
}

/** Introspects on a replica's own port (the path from discovery; the host is the shared issuer's). */
async function introspect(r: Replica, client: { id: string; secret: string }, token: string) {
  const d = (await (await fetch(`${r.url}/.well-known/openid-configuration`)).json()) as {
    introspection_endpoint: string;
  };
  const res = await fetch(`${r.url}${new URL(d.introspection_endpoint).pathname}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${client.id}:${client.secret}`).toString('base64'),
    },
    body: new URLSearchParams({ token }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('replicas on one PostgreSQL', { skip }, () => {
  let s: ReplicaSetup;
  let a: Replica;
  let b: Replica;
  let admin: PostgresStore;
  let secret: string;
  const client = () => ({ id: 'ci', secret });

  before(async () => {
    const setup = await setupReplicas();
    if ('skip' in setup) throw new Error(setup.skip);
    s = setup;
    // Started together on an empty database: both migrate and both want a first key.
    [a, b] = await Promise.all([startReplica(s.writeConfig('a')), startReplica(s.writeConfig('b'))]);
    admin = new PostgresStore({ url: s.databaseUrl, pool: 2 });
    await admin.init();
    secret = (await rotateSecret(admin, 'ci', { overlapMs: 0, now: Date.now() })).secret;
  });
  after(async () => {
    await Promise.all([a?.cli.stop(), b?.cli.stop()]);
    await admin?.close();
    await s?.close();
  });

  test('replicas started together create exactly one active key, and both publish it', async () => {
    const active = (await admin.listKeys()).filter((k) => k.state === 'active');
    assert.equal(active.length, 1);
    const [ja, jb] = await Promise.all([jwks(a), jwks(b)]);
    assert.deepEqual(
      ja.keys.map((k) => k.kid),
      [active[0]!.kid],
    );
    assert.deepEqual(
      jb.keys.map((k) => k.kid),
      [active[0]!.kid],
    );
  });

  test("a token issued by A verifies against B's JWKS and is active on B", async () => {
    const r = await requestToken(a.url, client(), { audience: 'https://api.example.com' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const token = r.body.access_token as string;
    const { payload } = await jwtVerify(token, createLocalJWKSet(await jwks(b)), {
      issuer: s.issuer,
      audience: 'https://api.example.com',
    });
    assert.equal(payload.client_id, 'ci');
    const i = await introspect(b, client(), token);
    assert.equal(i.status, 200);
    assert.equal(i.body.active, true);
  });

  test('revoke on A (the CLI on the shared store) → B refuses within the bound', async () => {
    const r = await requestToken(b.url, client(), { audience: 'vault' });
    assert.equal(r.status, 200);
    const token = r.body.access_token as string;
    const sub = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sub as string;
    assert.equal((await introspect(b, client(), token)).body.active, true);
    // Tokens minted in the same second as the revocation count as before it (iat ≤ revokedAt).
    const started = Date.now();
    const cli = await runCli(['revoke', 'subject', sub, '--reason', 'left', '--config', a.config]);
    assert.equal(cli.code, 0, cli.stderr);
    await eventually(async () => (await introspect(b, client(), token)).body.active === false, {
      timeoutMs: 5000,
      what: 'B to refuse the revoked subject',
    });
    const took = Date.now() - started;
    assert.ok(took < 5000, `took ${took} ms`);
    // A refuses it too (it learns through the same feed).
    assert.equal((await introspect(a, client(), token)).body.active, false);
  });

  test('both replicas issuing at once keep one verifiable audit chain, nothing acknowledged is lost', async () => {
    const jtis: string[] = [];
    await Promise.all(
      [a, b].flatMap((r) =>
        Array.from({ length: 15 }, async () => {
          const res = await requestToken(r.url, client(), { audience: 'x' });
          assert.equal(res.status, 200, JSON.stringify(res.body));
          const token = res.body.access_token as string;
          jtis.push(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string);
        }),
      ),
    );
    const issued = new Set(
      (await admin.queryAudit({ type: 'token.issued', limit: 10_000 })).map((row) => row.data.jti),
    );
    for (const jti of jtis) assert.ok(issued.has(jti), `token.issued for ${jti}`);
    const v = await runCli(['audit', 'verify', '--config', b.config]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test('rotate-secret from two processes at once: both secrets valid, never a half state', async () => {
    const [x, y] = await Promise.all([
      runCli(['clients', 'rotate-secret', 'ci', '--overlap', '1h', '--config', a.config]),
      runCli(['clients', 'rotate-secret', 'ci', '--overlap', '1h', '--config', b.config]),
    ]);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(y.code, 0, y.stderr);
    const secrets = [x, y].map((o) => /GATEHOUSE_CLIENT_SECRET=(\S+)/.exec(o.stdout)![1]!);
    assert.notEqual(secrets[0], secrets[1]);
    for (const sec of secrets) {
      const r = await requestToken(a.url, { id: 'ci', secret: sec }, { audience: 'x' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const r2 = await requestToken(b.url, { id: 'ci', secret: sec }, { audience: 'x' });
      assert.equal(r2.status, 200, JSON.stringify(r2.body));
    }
    const v = await runCli(['audit', 'verify', '--config', a.config]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});

describe('key rotation across replicas', { skip }, () => {
  let s: ReplicaSetup;
  let a: Replica;
  let b: Replica;
  let admin: PostgresStore;
  let secret: string;

  before(async () => {
    const setup = await setupReplicas();
    if ('skip' in setup) throw new Error(setup.skip);
    s = setup;
    const keys = 'rotation: { propagation: 2s, check_interval: 250ms }';
    a = await startReplica(s.writeConfig('a', { keys }));
    b = await startReplica(s.writeConfig('b', { keys }));
    admin = new PostgresStore({ url: s.databaseUrl, pool: 2 });
    await admin.init();
    secret = (await rotateSecret(admin, 'ci', { overlapMs: 0, now: Date.now() })).secret;
  });
  after(async () => {
    await Promise.all([a?.cli.stop(), b?.cli.stop()]);
    await admin?.close();
    await s?.close();
  });

  test('rotate on A → B serves the new key before any token is signed with it', async () => {
    const oldKid = (await admin.listKeys()).find((k) => k.state === 'active')!.kid;
    const cli = await runCli(['keys', 'rotate', '--config', a.config]);
    assert.equal(cli.code, 0, cli.stderr);
    const next = (await admin.listKeys()).find((k) => k.state === 'next');
    assert.ok(next, 'a next key is waiting');
    let bPublishedAt: number | undefined;
    let firstSignedAt: number | undefined;
    const deadline = Date.now() + 15_000;
    while (firstSignedAt === undefined && Date.now() < deadline) {
      for (const r of [a, b]) {
        const res = await requestToken(r.url, { id: 'ci', secret }, { audience: 'x' });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const token = res.body.access_token as string;
        const kid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid as string;
        // Every token, whichever replica signed it, verifies against the other replica's JWKS now.
        for (const other of [a, b]) {
          const set = await jwks(other);
          assert.ok(
            set.keys.some((k) => k.kid === kid),
            `${kid === next.kid ? 'new' : 'old'} key missing from a replica's JWKS`,
          );
        }
        if (kid === next.kid) firstSignedAt ??= Date.now();
      }
      if (bPublishedAt === undefined && (await jwks(b)).keys.some((k) => k.kid === next.kid))
        bPublishedAt = Date.now();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(firstSignedAt !== undefined, 'the new key signed within the test');
    assert.ok(bPublishedAt !== undefined && bPublishedAt < firstSignedAt, 'B published it first');
    // Exactly one key signs afterwards; the old one stays published for the tokens it signed.
    const states = await admin.listKeys();
    assert.equal(states.filter((k) => k.state === 'active').length, 1);
    assert.equal(states.find((k) => k.kid === oldKid)?.state, 'retired');
    assert.ok((await jwks(b)).keys.some((k) => k.kid === oldKid));
  });
});

describe('first signing key of an empty database', { skip }, () => {
  test('four starters at once, three times over: exactly one active key, and all sign with it', async () => {
    for (let round = 0; round < 3; round++) {
      const db = await testDatabase();
      if ('skip' in db) throw new Error(db.skip);
      const kek = parseKek(generateKekText());
      const stores = Array.from({ length: 4 }, () => new PostgresStore({ url: db.url, pool: 2 }));
      try {
        await Promise.all(stores.map((st) => st.init()));
        const rings = stores.map((st) => new KeyRing(st, { keks: [kek], algorithm: 'ES256' }));
        await Promise.all(rings.map((r) => r.ensureActiveKey()));
        const keys = await stores[0]!.listKeys();
        assert.equal(keys.length, 1, `round ${round}: ${keys.length} keys`);
        assert.equal(keys[0]!.state, 'active');
        for (const r of rings) assert.equal(r.active().kid, keys[0]!.kid);
      } finally {
        await Promise.all(stores.map((st) => st.close()));
        await db.drop();
      }
    }
  });
});
