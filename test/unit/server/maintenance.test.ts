// Store housekeeping on a real SQLite store with an injected clock: what a round removes (every table,
// with the clock-skew grace), and that of several processes one runs a round, under the lease.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { MAINTENANCE_LEASE, StoreMaintenance, pruneExpiredRows } from '../../../src/server/maintenance.js';
import type { Store } from '../../../src/store/store.js';

const SKEW = 60_000;
const MIN = 60_000;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-maintenance-'));
  dirs.push(dir);
  let t = Date.UTC(2025, 0, 1);
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const stores: SqliteStore[] = [];
  const open = async () => {
    const s = new SqliteStore({ path: join(dir, 'gatehouse.db'), now: clock.now });
    await s.init();
    stores.push(s);
    return s;
  };
  const store = await open();
  return {
    clock,
    store,
    open,
    async close() {
      for (const s of stores) await s.close();
    },
  };
}

/** One row due at `end` in every table, named after `tag`. */
async function rowsEnding(store: Store, tag: string, end: number): Promise<void> {
  await store.insertRevocation({
    kind: 'jti',
    value: `jti-${tag}`,
    issuer: 'https://id.example',
    reason: null,
    revokedAt: end - 10 * MIN,
    expiresAt: end,
  });
  await store.oidcUpsert('Interaction', `oidc-${tag}`, { uid: `uid-${tag}` }, end);
  await store.upsertSession({
    id: `session-${tag}`,
    subject: 'alice',
    data: {},
    createdAt: end - 10 * MIN,
    lastSeenAt: end - 10 * MIN,
    expiresAt: end,
    revokedAt: null,
  });
  assert.equal(
    await store.consumeSubjectToken(
      { issuer: 'https://ci.example', jti: `use-${tag}`, expiresAt: end },
      end - MIN,
    ),
    true,
  );
}

async function remaining(store: Store): Promise<string[]> {
  const names = [
    ...(await store.listRevocations()).map((r) => r.value),
    ...(await store.listSessions()).map((s) => s.id),
  ];
  // oidc rows and uses have no list: a prune far in the future counts what is left, so run it last.
  const oidc = await store.oidcPruneExpired(Number.MAX_SAFE_INTEGER);
  const uses = await store.pruneSubjectTokenUses(Number.MAX_SAFE_INTEGER);
  return [...names.sort(), `oidc:${oidc}`, `uses:${uses}`];
}

test('a round removes, in every table, exactly the rows that ended more than the clock skew ago', async () => {
  const { clock, store, close } = await setup();
  try {
    const now = clock.now();
    await rowsEnding(store, 'old', now - SKEW - 1);
    await rowsEnding(store, 'edge', now - SKEW);
    // Ended, but within the skew: a server whose clock is behind this one's may still count it.
    await rowsEnding(store, 'recent', now - SKEW + 1);
    await rowsEnding(store, 'live', now + 10 * MIN);
    await store.insertRevocation({
      kind: 'subject',
      value: 'subject-no-end',
      issuer: null,
      reason: 'left',
      revokedAt: now - 365 * 24 * 60 * MIN,
      expiresAt: null,
    });
    const counts = await pruneExpiredRows(store, now, SKEW);
    assert.deepEqual(counts, { revocations: 2, oidc: 2, sessions: 2, subject_token_uses: 2 });
    assert.deepEqual(await remaining(store), [
      'jti-live',
      'jti-recent',
      'session-live',
      'session-recent',
      'subject-no-end',
      'oidc:2',
      'uses:2',
    ]);
  } finally {
    await close();
  }
});

test('of several processes, one runs a round per interval, under the lease; a held lease skips it', async () => {
  const { clock, store, open, close } = await setup();
  const logged: Record<string, unknown>[] = [];
  const logger = { debug: (o: Record<string, unknown>) => logged.push(o), warn: () => undefined };
  const pruned: unknown[] = [];
  const make = (s: Store) =>
    new StoreMaintenance({
      store: s,
      now: clock.now,
      graceMs: SKEW,
      intervalMs: 5 * MIN,
      logger,
      onPruned: (c) => pruned.push(c),
    });
  const a = make(store);
  const b = make(await open());
  try {
    await rowsEnding(store, 'old', clock.now() - SKEW - 1);
    // Another process is mid-round: this one leaves it alone.
    assert.equal(await store.tryLease(MAINTENANCE_LEASE, 'elsewhere', 60_000, clock.now()), true);
    assert.equal(await a.tick(), undefined);
    assert.equal((await store.listRevocations()).length, 1, 'pruned without the lease');
    await store.releaseLease(MAINTENANCE_LEASE, 'elsewhere');

    const [ra, rb] = await Promise.all([a.tick(), b.tick()]);
    const ran = [ra, rb].filter((r) => r !== undefined);
    assert.deepEqual(ran, [{ revocations: 1, oidc: 1, sessions: 1, subject_token_uses: 1 }]);
    assert.equal(pruned.length, 1);
    assert.deepEqual(logged, [
      {
        event: 'store.pruned',
        revocations: 1,
        oidc: 1,
        sessions: 1,
        subject_token_uses: 1,
        took_ms: logged[0]?.took_ms,
      },
    ]);
    // The round is recorded: within the interval no process runs another.
    await rowsEnding(store, 'next', clock.now() - SKEW - 1);
    clock.advance(MIN);
    assert.equal(await b.tick(), undefined);
    assert.equal(await a.tick(), undefined);
    clock.advance(5 * MIN);
    assert.deepEqual(await b.tick(), { revocations: 1, oidc: 1, sessions: 1, subject_token_uses: 1 });
    // The lease is held only during a round.
    assert.equal(await store.tryLease(MAINTENANCE_LEASE, 'elsewhere', 60_000, clock.now()), true);
    await store.releaseLease(MAINTENANCE_LEASE, 'elsewhere');
  } finally {
    await a.stop();
    await b.stop();
    await close();
  }
});

test('a failed round is logged and the loop goes on', async () => {
  const { clock, store, close } = await setup();
  const warned: Record<string, unknown>[] = [];
  let failing = true;
  const flaky: Store = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'pruneSessions' && failing)
        return () =>
          Promise.reject(Object.assign(new Error('store down'), { code: 'ERR_STORE_UNAVAILABLE' }));
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const m = new StoreMaintenance({
    store: flaky,
    now: clock.now,
    graceMs: SKEW,
    intervalMs: 20,
    logger: { debug: () => undefined, warn: (o) => warned.push(o) },
  });
  try {
    await rowsEnding(store, 'old', clock.now() - SKEW - 1);
    m.start();
    const deadline = Date.now() + 5_000;
    while (warned.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(warned[0]?.event, 'store.prune_failed');
    assert.equal(warned[0]?.code, 'ERR_STORE_UNAVAILABLE');
    failing = false;
    while ((await store.listSessions()).length > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(await store.listSessions(), [], 'a later round removed the session');
  } finally {
    await m.stop();
    await close();
  }
});
