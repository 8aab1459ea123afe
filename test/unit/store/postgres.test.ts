// The PostgreSQL store: the shared contract on a real server, plus what only several replicas on one
// database need — migrating once when started together, NOTIFY across instances, catch-up after the
// LISTEN connection is cut, one gapless audit chain, and errors that name the server but no password.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import postgres from 'postgres';
import { PostgresStore } from '../../../src/store/postgres/postgres-store.js';
import type { AuditSealer, Change } from '../../../src/store/store.js';
import { GENESIS_HASH } from '../../../src/store/store.js';
import { runStoreContract } from '../../store/contract.js';
import { testDatabase } from '../../helpers/postgres.js';

const seal: AuditSealer = (prevHash, row) =>
  createHash('sha256').update(prevHash).update(JSON.stringify(row)).digest('hex');

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs `fn` with a fresh database and drops it afterwards, closing every store `open` made. */
async function withDatabase(
  url: string,
  drop: () => Promise<void>,
  fn: (open: (o?: Partial<ConstructorParameters<typeof PostgresStore>[0]>) => PostgresStore) => Promise<void>,
): Promise<void> {
  const opened: PostgresStore[] = [];
  try {
    await fn((o = {}) => {
      const s = new PostgresStore({ url, pool: 4, ...o });
      opened.push(s);
      return s;
    });
  } finally {
    for (const s of opened) await s.close();
    await drop();
  }
}

const probe = await testDatabase();
if ('skip' in probe) {
  test('PostgresStore', { skip: probe.skip }, () => {});
} else {
  await probe.drop();

  runStoreContract('postgres', async () => {
    const db = await testDatabase();
    if ('skip' in db) throw new Error(db.skip);
    const store = new PostgresStore({ url: db.url, pool: 4 });
    return {
      store,
      reopen: async () => new PostgresStore({ url: db.url, pool: 4 }),
      cleanup: async () => {
        await store.close();
        await db.drop();
      },
    };
  });

  const fresh = async (): Promise<{ url: string; drop: () => Promise<void> }> => {
    const db = await testDatabase();
    if ('skip' in db) throw new Error(db.skip);
    return db;
  };

  describe('PostgresStore specifics', () => {
    test('two replicas starting together on a fresh database migrate once', async () => {
      const { url, drop } = await fresh();
      await withDatabase(url, drop, async (open) => {
        const a = open();
        const b = open();
        await Promise.all([a.init(), b.init(), a.init()]);
        const expected = Array.from({ length: PostgresStore.schemaVersion }, (_, i) => i + 1);
        assert.deepEqual(await a.appliedMigrations(), expected);
        assert.deepEqual(await b.appliedMigrations(), expected);
        assert.equal(a.kind, 'postgres');
        // Migration 3: the housekeeping round's DELETE ... WHERE expires_at <= $1 has an index to use.
        const raw = postgres(url, { max: 1, onnotice: () => {} });
        try {
          const indexes = await raw<{ indexname: string; indexdef: string }[]>`
            SELECT indexname, indexdef FROM pg_indexes
            WHERE schemaname = current_schema() AND tablename = 'sessions'`;
          const expiry = indexes.find((i) => i.indexname === 'sessions_expires_at');
          assert.ok(expiry, `sessions indexes: ${indexes.map((i) => i.indexname).join(', ')}`);
          assert.match(expiry.indexdef, /\(expires_at\)$/);
        } finally {
          await raw.end();
        }
      });
    });

    test('a newer replica’s migration versions are left alone by an older binary (rolling upgrade)', async () => {
      const { url, drop } = await fresh();
      await withDatabase(url, drop, async (open) => {
        const a = open();
        await a.init();
        const raw = postgres(url, { max: 1, onnotice: () => {} });
        try {
          const next = PostgresStore.schemaVersion + 1;
          await raw`CREATE TABLE from_the_future (x int)`;
          await raw`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${next}, 'future', 1)`;
          const older = open();
          await older.init();
          await older.setMeta('still', 'works');
          assert.equal(await a.getMeta('still'), 'works');
          assert.deepEqual((await older.appliedMigrations()).at(-1), next);
        } finally {
          await raw.end();
        }
      });
    });

    test('epoch milliseconds come back as numbers, JSON documents as objects', async () => {
      const { url, drop } = await fresh();
      await withDatabase(url, drop, async (open) => {
        const s = open();
        await s.init();
        const big = 8_000_000_000_000; // past 2^32, well under 2^53
        await s.upsertSession({
          id: 's',
          subject: 'alice',
          data: { text: 'a "quoted" \\ string', n: 1.5, list: [null, true] },
          createdAt: big,
          lastSeenAt: big + 1,
          expiresAt: big + 2,
          revokedAt: null,
        });
        const got = await s.getSession('s');
        assert.equal(typeof got!.createdAt, 'number');
        assert.equal(got!.expiresAt, big + 2);
        assert.deepEqual(got!.data, { text: 'a "quoted" \\ string', n: 1.5, list: [null, true] });
        await s.oidcUpsert('Grant', 'g', { accountId: 'alice', n: 2 }, big);
        assert.deepEqual(await s.oidcFind('Grant', 'g'), { accountId: 'alice', n: 2 });
      });
    });

    test('a change published on instance A reaches a watcher on instance B within a second, by NOTIFY', async () => {
      const { url, drop } = await fresh();
      await withDatabase(url, drop, async (open) => {
        const a = open();
        // B polls only once a minute, so only NOTIFY can deliver in time.
        const b = open({ pollIntervalMs: 60_000 });
        await Promise.all([a.init(), b.init()]);
        const got: Change[] = [];
        const stop = b.watchChanges((c) => got.push(c));
        const raw = postgres(url, { max: 1, onnotice: () => {} });
        try {
          // LISTEN is in place: B's listening connection has run it and is idle. (A fixed wait could end
          // before that on a loaded machine, and the NOTIFY would be missed for a minute-long poll.)
          const deadline = Date.now() + 10_000;
          for (;;) {
            const [row] = await raw<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND query ILIKE 'listen%' AND state = 'idle'`;
            if (row && row.n > 0) break;
            assert.ok(Date.now() < deadline, 'B did not LISTEN within 10 s');
            await new Promise((r) => setTimeout(r, 20));
          }
          const started = Date.now();
          await a.publishChange('revocations', '42');
          await waitFor(() => got.length === 1, 1_000, 'the change on B');
          assert.ok(Date.now() - started < 1_000);
          assert.equal(got[0]!.topic, 'revocations');
          assert.equal(got[0]!.ref, '42');
        } finally {
          stop();
          await raw.end();
        }
      });
    });

    test('after the LISTEN connection is killed, changes published meanwhile arrive once, in order (catch-up)', async () => {
      const { url, drop } = await fresh();
      await withDatabase(url, drop, async (open) => {
        const a = open();
        const b = open({ pollIntervalMs: 60_000 });
        await Promise.all([a.init(), b.init()]);
        const got: Change[] = [];
        const stop = b.watchChanges((c) => got.push(c));
        const raw = postgres(url, { max: 1, onnotice: () => {} });
        try {
          await a.publishChange('keys', 'before');
          await waitFor(() => got.length === 1, 1_000, 'the first change');
          const listeners = async (): Promise<number[]> =>
            (
              await raw<{ pid: number }[]>`SELECT pid FROM pg_stat_activity
                WHERE datname = current_database() AND query ILIKE 'listen%' AND pid <> pg_backend_pid()`
            ).map((r) => r.pid);
          const [old] = await listeners();
          assert.ok(old, 'B has a LISTEN connection');
          await raw`SELECT pg_terminate_backend(${old}::int)`;
          // Published while B's listener is gone or coming back: no NOTIFY reaches it for these.
          for (let i = 1; i <= 5; i++) await a.publishChange('revocations', `during-${i}`);
          await waitFor(() => got.length >= 6, 5_000, 'the changes published during the outage');
          await a.publishChange('revocations', 'after');
          await waitFor(() => got.length >= 7, 2_000, 'a change after the reconnect');
          await new Promise((r) => setTimeout(r, 200));
          assert.deepEqual(
            got.map((c) => c.ref),
            ['before', 'during-1', 'during-2', 'during-3', 'during-4', 'during-5', 'after'],
          );
          const [now] = await listeners();
          assert.ok(now !== undefined && now !== old, 'B listens again on a new connection');
        } finally {
          stop();
          await raw.end();
        }
      });
    });

    test('when the database refuses connections for a while, the feed catches up and LISTEN comes back', async () => {
      const { url, drop } = await fresh();
      const name = new URL(url).pathname.slice(1);
      await withDatabase(url, drop, async (open) => {
        const a = open();
        const b = open({ pollIntervalMs: 300 });
        await Promise.all([a.init(), b.init()]);
        const got: string[] = [];
        const stop = b.watchChanges((c) => got.push(c.ref ?? ''));
        // Another database: this one is about to refuse every new connection, superusers' included.
        const admin = new URL(url);
        admin.pathname = '/postgres';
        const raw = postgres(admin.toString(), { max: 1, onnotice: () => {} });
        const listeners = async (): Promise<number[]> =>
          (
            await raw<{ pid: number }[]>`SELECT pid FROM pg_stat_activity
              WHERE datname = ${name} AND query ILIKE 'listen%'`
          ).map((r) => r.pid);
        try {
          await a.publishChange('keys', 'before');
          await waitFor(() => got.length === 1, 1_000, 'the first change');
          const [old] = await listeners();
          await raw.unsafe(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS false`);
          try {
            // The driver's reconnect fails, and with it its own re-LISTEN.
            await raw`SELECT pg_terminate_backend(${old!}::int)`;
            await new Promise((r) => setTimeout(r, 700));
            await a.publishChange('revocations', 'during');
          } finally {
            await raw.unsafe(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
          }
          await waitFor(() => got.includes('during'), 3_000, 'the change made during the outage');
          const deadline = Date.now() + 4_000;
          while ((await listeners()).length === 0) {
            assert.ok(Date.now() < deadline, 'B listens again after the outage');
            await new Promise((r) => setTimeout(r, 50));
          }
          await a.publishChange('revocations', 'after');
          await waitFor(() => got.includes('after'), 1_000, 'a change after the outage');
          assert.deepEqual(got, ['before', 'during', 'after']);
        } finally {
          stop();
          await raw.end();
        }
      });
    });

    test('audit appends from three instances at once form one gapless chain', async () => {
      const { url, drop } = await fresh();
      await withDatabase(url, drop, async (open) => {
        const stores = [open(), open(), open()];
        await Promise.all(stores.map((s) => s.init()));
        const rec = (i: number) => ({ ts: i, type: 'token.issued', id: `a_${i}`, data: { i, z: 1, a: 2 } });
        await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            stores[i % 3]!.appendAudit([rec(i * 3), rec(i * 3 + 1), rec(i * 3 + 2)], seal),
          ),
        );
        const rows = await stores[1]!.queryAudit({});
        assert.equal(rows.length, 90);
        let prev = GENESIS_HASH;
        rows.forEach((r, i) => {
          assert.equal(r.seq, i + 1);
          assert.equal(r.prevHash, prev);
          const { hash, prevHash, ...body } = r;
          assert.equal(hash, seal(prevHash, body), 'the stored data hashes as sealed (key order kept)');
          prev = r.hash;
        });
      });
    });

    test('an unreachable server is ERR_STORE_UNAVAILABLE naming host:port, never the password', async () => {
      const port = await closedPort();
      const s = new PostgresStore({ url: `postgres://gatehouse:s3cret-pw@127.0.0.1:${port}/gatehouse` });
      try {
        for (const call of [() => s.ping(), () => s.init(), () => s.getMeta('k')]) {
          await assert.rejects(call(), (e: unknown) => {
            const err = e as { code?: string; message: string; details?: unknown };
            assert.equal(err.code, 'ERR_STORE_UNAVAILABLE');
            assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
            assert.doesNotMatch(err.message + JSON.stringify(err.details), /s3cret/);
            return true;
          });
        }
      } finally {
        await s.close();
      }
    });
  });
}

/** A port nothing listens on: bound, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
