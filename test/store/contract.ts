// The one contract every Store implementation passes (SQLite now, PostgreSQL later): each method's
// behaviour as a caller sees it, including across two instances opened on the same database.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { GENESIS_HASH } from '../../src/store/store.js';
import type {
  AuditRow,
  AuditSealer,
  Change,
  KeyRecord,
  SessionRecord,
  Store,
} from '../../src/store/store.js';

export interface StoreFixture {
  /** A store on a fresh, empty database (the suite calls init() itself). */
  store: Store;
  /** Opens another instance on the same database, as another process would; the suite closes it. */
  reopen: () => Promise<Store>;
  /** Closes what is left open and removes the database. */
  cleanup: () => Promise<void>;
}

/** The audit hash used here; audit owns the real canonical form, the store only chains what it is given. */
const seal: AuditSealer = (prevHash, row) =>
  createHash('sha256').update(prevHash).update(JSON.stringify(row)).digest('hex');

function assertChain(rows: AuditRow[], firstPrev = GENESIS_HASH): void {
  let prev = firstPrev;
  let seq = rows[0]?.seq ?? 1;
  for (const r of rows) {
    assert.equal(r.seq, seq, 'sequence numbers are gapless');
    assert.equal(r.prevHash, prev, `row ${r.seq} links to the previous hash`);
    const { hash, prevHash, ...body } = r;
    assert.equal(hash, seal(prevHash, body), `row ${r.seq} hash recomputes`);
    prev = r.hash;
    seq += 1;
  }
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function key(kid: string, over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    kid,
    alg: 'ES256',
    state: 'next',
    publicJwk: { kty: 'EC', crv: 'P-256', x: 'x-' + kid, y: 'y-' + kid, kid, alg: 'ES256', use: 'sig' },
    sealedPrivate: 'sealed:' + kid,
    createdAt: 1_700_000_000_000,
    activatedAt: null,
    retiredAt: null,
    removeAfter: null,
    ...over,
  };
}

function session(id: string, subject: string, over: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id,
    subject,
    data: { amr: ['pwd'], groups: ['engineering'] },
    createdAt: 1_000,
    lastSeenAt: 1_000,
    expiresAt: Date.now() + 3_600_000,
    revokedAt: null,
    ...over,
  };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as { code?: unknown }).code, code);
    return true;
  });
}

export function runStoreContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  /** Runs `fn` on a fresh initialised store and always cleans up, also when an assertion fails. */
  async function withStore(fn: (store: Store, fx: StoreFixture) => Promise<void>): Promise<void> {
    const fx = await makeStore();
    const opened: Store[] = [];
    const reopen = async (): Promise<Store> => {
      const s = await fx.reopen();
      opened.push(s);
      await s.init();
      return s;
    };
    try {
      await fx.store.init();
      await fn(fx.store, { ...fx, reopen });
    } finally {
      for (const s of opened) await s.close();
      await fx.cleanup();
    }
  }

  describe(`Store contract: ${name}`, () => {
    describe('lifecycle', () => {
      test('init twice is harmless and keeps data', async () => {
        await withStore(async (store) => {
          await store.setMeta('k', 'v');
          await store.init();
          assert.equal(await store.getMeta('k'), 'v');
        });
      });

      test('a second instance initialising the same database sees the same data', async () => {
        await withStore(async (store, fx) => {
          await store.setMeta('k', 'v');
          const other = await fx.reopen();
          assert.equal(await other.getMeta('k'), 'v');
        });
      });

      test('ping answers while open; close is idempotent; calls after close are ERR_STORE_UNAVAILABLE', async () => {
        await withStore(async (store, fx) => {
          const other = await fx.reopen();
          await other.ping();
          await other.close();
          await other.close();
          await rejectsWith(other.ping(), 'ERR_STORE_UNAVAILABLE');
          await rejectsWith(other.getMeta('k'), 'ERR_STORE_UNAVAILABLE');
          await rejectsWith(other.publishChange('config'), 'ERR_STORE_UNAVAILABLE');
          // The first instance is unaffected.
          await store.ping();
        });
      });
    });

    describe('meta', () => {
      test('get, set, overwrite', async () => {
        await withStore(async (store) => {
          assert.equal(await store.getMeta('issuer.id'), undefined);
          await store.setMeta('issuer.id', 'one');
          assert.equal(await store.getMeta('issuer.id'), 'one');
          await store.setMeta('issuer.id', 'two');
          assert.equal(await store.getMeta('issuer.id'), 'two');
        });
      });

      test('initMeta: the first writer wins, everyone gets its value', async () => {
        await withStore(async (store, fx) => {
          const other = await fx.reopen();
          const results = await Promise.all([
            store.initMeta('cookie.secret.id', 'a'),
            other.initMeta('cookie.secret.id', 'b'),
            store.initMeta('cookie.secret.id', 'c'),
          ]);
          const winner = results[0]!;
          assert.ok(['a', 'b', 'c'].includes(winner));
          assert.deepEqual(results, [winner, winner, winner]);
          assert.equal(await other.getMeta('cookie.secret.id'), winner);
          // setMeta still overwrites; initMeta then keeps the new value.
          await store.setMeta('cookie.secret.id', 'z');
          assert.equal(await store.initMeta('cookie.secret.id', 'y'), 'z');
        });
      });
    });

    describe('signing keys', () => {
      test('insert, list, patch, delete', async () => {
        await withStore(async (store) => {
          assert.deepEqual(await store.listKeys(), []);
          const a = key('kid-a', { state: 'active', activatedAt: 1_700_000_000_001 });
          const b = key('kid-b', { createdAt: 1_700_000_000_500, alg: 'EdDSA' });
          await store.insertKey(a);
          await store.insertKey(b);
          assert.deepEqual(await store.listKeys(), [a, b]);

          await store.updateKey('kid-a', { state: 'retired', retiredAt: 5, removeAfter: 6 });
          await store.updateKey('kid-b', { state: 'active', activatedAt: 7, sealedPrivate: 'resealed' });
          const [a2, b2] = await store.listKeys();
          assert.deepEqual(a2, { ...a, state: 'retired', retiredAt: 5, removeAfter: 6 });
          assert.deepEqual(b2, { ...b, state: 'active', activatedAt: 7, sealedPrivate: 'resealed' });

          // Fields left out of a patch stay as they are; null clears.
          await store.updateKey('kid-a', { removeAfter: null });
          assert.deepEqual((await store.listKeys())[0], { ...a2, removeAfter: null });

          await store.deleteKey('kid-a');
          assert.deepEqual(
            (await store.listKeys()).map((k) => k.kid),
            ['kid-b'],
          );
          await store.deleteKey('kid-a'); // deleting what is gone is not an error
        });
      });

      test('a duplicate kid is ERR_STORE_CONFLICT; patching an unknown kid is ERR_NOT_FOUND', async () => {
        await withStore(async (store) => {
          await store.insertKey(key('dup'));
          await rejectsWith(store.insertKey(key('dup', { state: 'active' })), 'ERR_STORE_CONFLICT');
          assert.equal((await store.listKeys())[0]!.state, 'next');
          await rejectsWith(store.updateKey('nope', { state: 'active' }), 'ERR_NOT_FOUND');
          await rejectsWith(store.updateKey('nope', {}), 'ERR_NOT_FOUND');
        });
      });
    });

    describe('clients and secrets', () => {
      test('clients: upsert, get, list, replace, delete', async () => {
        await withStore(async (store) => {
          const c1 = {
            id: 'jenkins',
            metadata: {
              redirect_uris: ['https://ci/cb'],
              grant_types: ['authorization_code'],
              nested: { a: [1, { b: null }] },
            },
            createdAt: 10,
          };
          const c2 = { id: 'space', metadata: { name: 'Späce ✓' }, createdAt: 20 };
          assert.equal(await store.getClient('jenkins'), undefined);
          await store.upsertClient(c1);
          await store.upsertClient(c2);
          assert.deepEqual(await store.getClient('jenkins'), c1);
          assert.deepEqual(await store.listClients(), [c1, c2]);
          const c1b = { ...c1, metadata: { redirect_uris: ['https://ci2/cb'] } };
          await store.upsertClient(c1b);
          assert.deepEqual(await store.getClient('jenkins'), c1b);
          await store.deleteClient('jenkins');
          assert.equal(await store.getClient('jenkins'), undefined);
          assert.deepEqual(await store.listClients(), [c2]);
        });
      });

      test('secrets: insert, list per client, expire, delete; deleting a client deletes its secrets', async () => {
        await withStore(async (store) => {
          await store.upsertClient({ id: 'c1', metadata: {}, createdAt: 1 });
          const s1 = { id: 's1', clientId: 'c1', hash: 'h1', createdAt: 1, expiresAt: null };
          const s2 = { id: 's2', clientId: 'c1', hash: 'h2', createdAt: 2, expiresAt: 99 };
          const s3 = { id: 's3', clientId: 'config-client', hash: 'h3', createdAt: 3, expiresAt: null };
          for (const s of [s1, s2, s3]) await store.insertSecret(s);
          assert.deepEqual(await store.listSecrets('c1'), [s1, s2]);
          assert.deepEqual(await store.listSecrets(), [s1, s2, s3]);
          assert.deepEqual(await store.listSecrets('nobody'), []);

          await rejectsWith(store.insertSecret({ ...s1, hash: 'other' }), 'ERR_STORE_CONFLICT');

          // Rotation: the old secret gets the end of its overlap.
          await store.expireSecret('s1', 5_000);
          assert.deepEqual((await store.listSecrets('c1'))[0], { ...s1, expiresAt: 5_000 });
          await rejectsWith(store.expireSecret('nope', 1), 'ERR_NOT_FOUND');

          await store.deleteSecret('s2');
          assert.deepEqual(
            (await store.listSecrets('c1')).map((s) => s.id),
            ['s1'],
          );

          await store.deleteClient('c1');
          assert.deepEqual(
            await store.listSecrets('c1'),
            [],
            'a re-created client must not inherit old secrets',
          );
          assert.deepEqual(await store.listSecrets('config-client'), [s3]);
        });
      });
    });

    describe('oidc-provider adapter', () => {
      const later = (): number => Date.now() + 3_600_000;

      test('upsert and find round-trip the payload, per model', async () => {
        await withStore(async (store) => {
          const payload = {
            accountId: 'alice',
            scope: 'openid',
            claims: { nested: [1, 'two', { three: true }] },
          };
          await store.oidcUpsert('AccessToken', 'id1', payload, later());
          await store.oidcUpsert('AuthorizationCode', 'id1', { other: 1 }, null);
          assert.deepEqual(await store.oidcFind('AccessToken', 'id1'), payload);
          assert.deepEqual(await store.oidcFind('AuthorizationCode', 'id1'), { other: 1 });
          assert.equal(await store.oidcFind('RefreshToken', 'id1'), undefined);
          // Upsert replaces.
          await store.oidcUpsert('AccessToken', 'id1', { accountId: 'bob' }, later());
          assert.deepEqual(await store.oidcFind('AccessToken', 'id1'), { accountId: 'bob' });
        });
      });

      test('an expired row is not found, by id, uid or user code', async () => {
        await withStore(async (store) => {
          const past = Date.now() - 1;
          await store.oidcUpsert('Interaction', 'i1', { uid: 'u1' }, past);
          await store.oidcUpsert('DeviceCode', 'd1', { userCode: 'ABCD-EFGH' }, past);
          assert.equal(await store.oidcFind('Interaction', 'i1'), undefined);
          assert.equal(await store.oidcFindByUid('Interaction', 'u1'), undefined);
          assert.equal(await store.oidcFindByUserCode('DeviceCode', 'ABCD-EFGH'), undefined);

          // Long enough that the upsert and the first find are done before it (a loaded database can take
          // a few hundred ms for the two), then waited out by the clock rather than a fixed sleep.
          const expiresAt = Date.now() + 1_500;
          await store.oidcUpsert('Session', 's1', { uid: 'u2' }, expiresAt);
          assert.deepEqual(await store.oidcFind('Session', 's1'), { uid: 'u2' });
          while (Date.now() <= expiresAt + 50) await new Promise((r) => setTimeout(r, 50));
          assert.equal(await store.oidcFind('Session', 's1'), undefined, 'expires while stored');
        });
      });

      test('findByUid and findByUserCode', async () => {
        await withStore(async (store) => {
          await store.oidcUpsert('Session', 's1', { uid: 'uid-1', accountId: 'alice' }, later());
          await store.oidcUpsert('DeviceCode', 'd1', { userCode: 'WXYZ-1234', grantId: 'g' }, later());
          assert.deepEqual(await store.oidcFindByUid('Session', 'uid-1'), {
            uid: 'uid-1',
            accountId: 'alice',
          });
          assert.equal(await store.oidcFindByUid('Session', 'uid-2'), undefined);
          assert.equal(await store.oidcFindByUid('Interaction', 'uid-1'), undefined, 'scoped to the model');
          assert.deepEqual(await store.oidcFindByUserCode('DeviceCode', 'WXYZ-1234'), {
            userCode: 'WXYZ-1234',
            grantId: 'g',
          });
          assert.equal(await store.oidcFindByUserCode('DeviceCode', 'wxyz-1234'), undefined);
        });
      });

      test('consume marks the row consumed; the first consumption wins and survives a re-save', async () => {
        await withStore(async (store) => {
          await store.oidcUpsert('AuthorizationCode', 'c1', { grantId: 'g1' }, later());
          assert.equal((await store.oidcFind('AuthorizationCode', 'c1'))!.consumed, undefined);
          assert.equal(await store.oidcConsume('AuthorizationCode', 'c1', 1_111), true);
          assert.equal((await store.oidcFind('AuthorizationCode', 'c1'))!.consumed, 1_111);
          assert.equal(await store.oidcConsume('AuthorizationCode', 'c1', 2_222), false);
          assert.equal((await store.oidcFind('AuthorizationCode', 'c1'))!.consumed, 1_111);
          await store.oidcUpsert('AuthorizationCode', 'c1', { grantId: 'g1', extra: true }, later());
          assert.deepEqual(await store.oidcFind('AuthorizationCode', 'c1'), {
            grantId: 'g1',
            extra: true,
            consumed: 1_111,
          });
          assert.equal(await store.oidcConsume('AuthorizationCode', 'missing', 1), false); // not an error
        });
      });

      test('of concurrent consumptions of one record exactly one wins (one-time tickets rely on it)', async () => {
        await withStore(async (store) => {
          await store.oidcUpsert('GatehouseTicket', 't1', { sid: 's1' }, later());
          const won = await Promise.all(
            Array.from({ length: 8 }, (_, i) => store.oidcConsume('GatehouseTicket', 't1', 1_000 + i)),
          );
          assert.equal(won.filter(Boolean).length, 1);
        });
      });

      test('destroy removes one row; revokeByGrantId removes every model of that grant', async () => {
        await withStore(async (store) => {
          await store.oidcUpsert('AccessToken', 'a1', { grantId: 'g1' }, later());
          await store.oidcUpsert('RefreshToken', 'r1', { grantId: 'g1' }, later());
          await store.oidcUpsert('AuthorizationCode', 'c1', { grantId: 'g1' }, later());
          await store.oidcUpsert('Grant', 'g1', { accountId: 'alice' }, later());
          await store.oidcUpsert('AccessToken', 'a2', { grantId: 'g2' }, later());

          await store.oidcDestroy('AccessToken', 'a2');
          assert.equal(await store.oidcFind('AccessToken', 'a2'), undefined);
          await store.oidcDestroy('AccessToken', 'a2'); // not an error

          await store.oidcUpsert('AccessToken', 'a3', { grantId: 'g2' }, later());
          await store.oidcRevokeByGrantId('g1');
          assert.equal(await store.oidcFind('AccessToken', 'a1'), undefined);
          assert.equal(await store.oidcFind('RefreshToken', 'r1'), undefined);
          assert.equal(await store.oidcFind('AuthorizationCode', 'c1'), undefined);
          assert.deepEqual(await store.oidcFind('AccessToken', 'a3'), { grantId: 'g2' });
          // The Grant row itself carries no grantId; oidc-provider destroys it by id.
          assert.deepEqual(await store.oidcFind('Grant', 'g1'), { accountId: 'alice' });
        });
      });

      test('prune removes exactly the rows whose expiry is at or before now, of every model', async () => {
        await withStore(async (store, fx) => {
          const t = Date.now() + 3_600_000;
          await store.oidcUpsert('Session', 'gone-1', { uid: 'u1' }, t - 1);
          await store.oidcUpsert('Interaction', 'gone-2', { uid: 'u2' }, t);
          await store.oidcUpsert('Grant', 'kept-1', { accountId: 'alice' }, t + 1);
          await store.oidcUpsert('AuthorizationCode', 'kept-2', { grantId: 'g' }, t + 60_000);
          await store.oidcUpsert('Client', 'kept-3', { client_id: 'c' }, null);
          const other = await fx.reopen();
          assert.equal(await other.oidcPruneExpired(t), 2);
          assert.equal(await store.oidcPruneExpired(t), 0, 'nothing more is due');
          // The rest are still there (and live: the clock has not reached them).
          assert.deepEqual(await store.oidcFind('Grant', 'kept-1'), { accountId: 'alice' });
          assert.deepEqual(await store.oidcFind('AuthorizationCode', 'kept-2'), { grantId: 'g' });
          assert.equal(await store.oidcPruneExpired(t + 1), 1);
          assert.equal(await store.oidcFind('Grant', 'kept-1'), undefined);
          // A row without an expiry is never pruned.
          assert.equal(await store.oidcPruneExpired(Number.MAX_SAFE_INTEGER), 1);
          assert.deepEqual(await store.oidcFind('Client', 'kept-3'), { client_id: 'c' });
        });
      });
    });

    describe('audit', () => {
      const rec = (i: number, type = 'token.issued') => ({
        ts: 1_000 + i,
        type,
        id: `a_${i}`,
        data: { i, sub: 'alice', reasons: [{ rule: 'r1', expected: ['x'], actual: null }] },
      });

      test('append assigns seq and chains from the genesis hash; head follows', async () => {
        await withStore(async (store) => {
          assert.equal(await store.auditHead(), undefined);
          assert.deepEqual(await store.appendAudit([], seal), []);
          const first = await store.appendAudit([rec(1), rec(2)], seal);
          assert.deepEqual(
            first.map((r) => r.seq),
            [1, 2],
          );
          assert.equal(first[0]!.prevHash, GENESIS_HASH);
          assert.match(GENESIS_HASH, /^0{64}$/);
          const second = await store.appendAudit([rec(3)], seal);
          assertChain([...first, ...second]);
          assert.deepEqual(await store.auditHead(), { seq: 3, hash: second[0]!.hash });
          // What was returned is what is stored, data included.
          assert.deepEqual(await store.queryAudit({}), [...first, ...second]);
        });
      });

      test('the sealer sees the row as stored, and a throwing sealer appends nothing', async () => {
        await withStore(async (store) => {
          const seen: unknown[] = [];
          await store.appendAudit([rec(1)], (prev, row) => {
            seen.push(row);
            return seal(prev, row);
          });
          assert.deepEqual(seen, [{ seq: 1, ts: 1_001, type: 'token.issued', id: 'a_1', data: rec(1).data }]);
          await assert.rejects(
            store.appendAudit([rec(2), rec(3)], (prev, row) => {
              if (row.seq === 3) throw new Error('sealer failed');
              return seal(prev, row);
            }),
            /sealer failed/,
          );
          assert.equal((await store.auditHead())!.seq, 1, 'the whole batch or nothing');
        });
      });

      test('concurrent appends from two callers on two instances form one gapless chain', async () => {
        await withStore(async (store, fx) => {
          const other = await fx.reopen();
          const jobs: Promise<AuditRow[]>[] = [];
          for (let i = 0; i < 40; i++) {
            const s = i % 2 === 0 ? store : other;
            jobs.push(s.appendAudit([rec(i * 2, 'a.one'), rec(i * 2 + 1, 'a.two')], seal));
          }
          const results = await Promise.all(jobs);
          for (const batch of results) {
            assert.equal(batch[1]!.seq, batch[0]!.seq + 1, 'a batch is contiguous');
          }
          const all = await other.queryAudit({});
          assert.equal(all.length, 80);
          assertChain(all);
          assert.deepEqual(
            results
              .flat()
              .map((r) => r.seq)
              .sort((a, b) => a - b),
            all.map((r) => r.seq),
          );
        });
      });

      test('query by afterSeq, since, type, id and limit, in seq order', async () => {
        await withStore(async (store) => {
          await store.appendAudit(
            [
              rec(1, 'token.issued'),
              rec(2, 'token.refused'),
              rec(3, 'token.issued'),
              rec(4, 'key.activated'),
            ],
            seal,
          );
          const seqs = (rows: AuditRow[]) => rows.map((r) => r.seq);
          assert.deepEqual(seqs(await store.queryAudit({})), [1, 2, 3, 4]);
          assert.deepEqual(seqs(await store.queryAudit({ afterSeq: 2 })), [3, 4]);
          assert.deepEqual(seqs(await store.queryAudit({ since: 1_003 })), [3, 4]);
          assert.deepEqual(seqs(await store.queryAudit({ type: 'token.issued' })), [1, 3]);
          assert.deepEqual(seqs(await store.queryAudit({ limit: 2 })), [1, 2]);
          assert.deepEqual(
            seqs(await store.queryAudit({ afterSeq: 1, type: 'token.issued', limit: 5 })),
            [3],
          );
          assert.deepEqual(seqs(await store.queryAudit({ type: 'nothing' })), []);
          // By the audit id a client was shown.
          assert.deepEqual(seqs(await store.queryAudit({ id: 'a_3' })), [3]);
          assert.deepEqual(seqs(await store.queryAudit({ id: 'a_none' })), []);
        });
      });

      test('prune deletes before a seq, keeps the head, and the chain continues', async () => {
        await withStore(async (store) => {
          await store.appendAudit(
            [1, 2, 3, 4, 5].map((i) => rec(i)),
            seal,
          );
          assert.equal(await store.pruneAudit(3), 2);
          assert.deepEqual(
            (await store.queryAudit({})).map((r) => r.seq),
            [3, 4, 5],
          );
          assert.equal(await store.pruneAudit(1_000), 2, 'the head row stays');
          const head = await store.auditHead();
          assert.equal(head!.seq, 5);
          const [next] = await store.appendAudit([rec(6)], seal);
          assert.equal(next!.seq, 6);
          assert.equal(next!.prevHash, head!.hash);
        });
      });

      test('checkpoints: insert, list in seq order, duplicate seq is ERR_STORE_CONFLICT', async () => {
        await withStore(async (store) => {
          assert.deepEqual(await store.listCheckpoints(), []);
          const c5 = { seq: 5, hash: 'h5', jws: 'e.y.s5', createdAt: 50 };
          const c2 = { seq: 2, hash: 'h2', jws: 'e.y.s2', createdAt: 20 };
          await store.insertCheckpoint(c5);
          await store.insertCheckpoint(c2);
          assert.deepEqual(await store.listCheckpoints(), [c2, c5]);
          await rejectsWith(store.insertCheckpoint({ ...c5, hash: 'other' }), 'ERR_STORE_CONFLICT');
        });
      });
    });

    describe('revocations', () => {
      test('ids are a monotonic cursor; prune forgets only what has expired', async () => {
        await withStore(async (store, fx) => {
          const base = { issuer: null, reason: null, revokedAt: 100, expiresAt: null };
          const r1 = await store.insertRevocation({
            ...base,
            kind: 'jti',
            value: 'j1',
            issuer: 'https://iss',
            expiresAt: 500,
          });
          const r2 = await store.insertRevocation({
            ...base,
            kind: 'subject',
            value: 'alice',
            reason: 'left',
          });
          const other = await fx.reopen();
          const r3 = await other.insertRevocation({ ...base, kind: 'client', value: 'ci', expiresAt: 2_000 });
          assert.ok(r1.id < r2.id && r2.id < r3.id);
          assert.deepEqual(r1, {
            ...base,
            id: r1.id,
            kind: 'jti',
            value: 'j1',
            issuer: 'https://iss',
            expiresAt: 500,
          });
          assert.deepEqual(await store.listRevocations(), [r1, r2, r3]);
          assert.deepEqual(await store.listRevocations(r1.id), [r2, r3]);
          assert.deepEqual(await store.listRevocations(r3.id), []);

          assert.equal(await store.pruneRevocations(1_000), 1);
          assert.deepEqual(await store.listRevocations(), [r2, r3]);
          // Ids are never reused after a prune: a cursor past r1 still sees what comes next.
          const r4 = await store.insertRevocation({ ...base, kind: 'session', value: 's1' });
          assert.ok(r4.id > r3.id);
        });
      });

      test('prune removes exactly the revocations whose end is at or before now; those without one stay', async () => {
        await withStore(async (store, fx) => {
          const rev = (
            kind: 'jti' | 'subject' | 'client' | 'session',
            value: string,
            expiresAt: number | null,
          ) => store.insertRevocation({ kind, value, issuer: null, reason: null, revokedAt: 100, expiresAt });
          const gone = [await rev('jti', 'j-before', 9_999), await rev('jti', 'j-at', 10_000)];
          const kept = [
            await rev('jti', 'j-after', 10_001),
            await rev('session', 's-after', 20_000),
            await rev('subject', 'alice', null),
            await rev('client', 'ci', null),
            await rev('jti', 'j-no-end', null),
          ];
          assert.equal(gone.length, 2);
          const other = await fx.reopen();
          assert.equal(await other.pruneRevocations(10_000), 2);
          assert.deepEqual(await store.listRevocations(), kept);
          assert.equal(await store.pruneRevocations(10_000), 0);
          assert.equal(await store.pruneRevocations(Number.MAX_SAFE_INTEGER), 2);
          assert.deepEqual(
            (await store.listRevocations()).map((r) => r.value),
            ['alice', 'ci', 'j-no-end'],
          );
        });
      });
    });

    describe('single-use subject tokens', () => {
      const use = (jti: string, expiresAt = 2_000_000, issuer = 'https://token.actions.example') => ({
        issuer,
        jti,
        expiresAt,
      });

      test('the first use is recorded; a second, from any instance, is refused until it expires', async () => {
        await withStore(async (store, fx) => {
          const other = await fx.reopen();
          const t = 1_000_000;
          assert.equal(await store.consumeSubjectToken(use('j1'), t), true);
          assert.equal(
            await store.consumeSubjectToken(use('j1'), t + 1),
            false,
            'a replay was recorded again',
          );
          assert.equal(await other.consumeSubjectToken(use('j1'), t + 2), false, 'another instance took it');
          // Keyed by issuer and jti: the same jti of another issuer, or another jti, is another token.
          assert.equal(
            await other.consumeSubjectToken(use('j1', 2_000_000, 'https://gitlab.example'), t),
            true,
          );
          assert.equal(await other.consumeSubjectToken(use('j2'), t), true);
          // Past expiresAt the token can no longer be accepted, so the record no longer stands in the way.
          assert.equal(await store.consumeSubjectToken(use('j1'), 1_999_999), false);
          assert.equal(await store.consumeSubjectToken(use('j1', 3_000_000), 2_000_000), true);
          assert.equal(await other.consumeSubjectToken(use('j1', 3_000_000), 2_000_001), false);
        });
      });

      test('prune forgets only expired uses', async () => {
        await withStore(async (store) => {
          const t = 1_000_000;
          assert.equal(await store.consumeSubjectToken(use('old', t + 500), t), true);
          assert.equal(await store.consumeSubjectToken(use('new', t + 5_000), t), true);
          assert.equal(await store.pruneSubjectTokenUses(t + 1_000), 1);
          assert.equal(await store.pruneSubjectTokenUses(t + 1_000), 0);
          assert.equal(await store.consumeSubjectToken(use('new', t + 5_000), t + 1_000), false);
        });
      });

      test('recording a use leaves expired ones for the housekeeping prune', async () => {
        await withStore(async (store) => {
          const t = 1_000_000;
          assert.equal(await store.consumeSubjectToken(use('a', t + 500), t), true);
          assert.equal(await store.consumeSubjectToken(use('b', t + 3_600_000 * 2), t + 3_600_000), true);
          assert.equal(await store.pruneSubjectTokenUses(t + 3_600_000), 1, 'only the expired use is pruned');
          assert.equal(await store.consumeSubjectToken(use('b', t + 3_600_000 * 2), t + 3_600_001), false);
        });
      });

      test('concurrent uses of one token: exactly one is recorded', async () => {
        await withStore(async (store, fx) => {
          const other = await fx.reopen();
          const now = Date.now();
          const wins = await Promise.all(
            Array.from({ length: 8 }, (_, i) =>
              (i % 2 ? other : store).consumeSubjectToken(use('race', now + 60_000), now),
            ),
          );
          assert.equal(wins.filter(Boolean).length, 1);
        });
      });
    });

    describe('sessions', () => {
      test('upsert, get, list all or by subject, delete', async () => {
        await withStore(async (store) => {
          const a1 = session('s-a1', 'alice', { createdAt: 1 });
          const a2 = session('s-a2', 'alice', { createdAt: 2 });
          const b1 = session('s-b1', 'bob', { createdAt: 3 });
          for (const s of [a1, a2, b1]) await store.upsertSession(s);
          assert.deepEqual(await store.getSession('s-a1'), a1);
          assert.equal(await store.getSession('nope'), undefined);
          assert.deepEqual(await store.listSessions(), [a1, a2, b1]);
          assert.deepEqual(await store.listSessions('alice'), [a1, a2]);
          const touched = { ...a1, lastSeenAt: 99, data: { amr: ['mfa'] } };
          await store.upsertSession(touched);
          assert.deepEqual(await store.getSession('s-a1'), touched);
          await store.deleteSession('s-a1');
          assert.equal(await store.getSession('s-a1'), undefined);
        });
      });

      test('revoke by id and by subject; a stale upsert does not un-revoke', async () => {
        await withStore(async (store) => {
          const a1 = session('s-a1', 'alice');
          const a2 = session('s-a2', 'alice');
          const b1 = session('s-b1', 'bob');
          for (const s of [a1, a2, b1]) await store.upsertSession(s);

          assert.equal(await store.revokeSessions({ id: 's-b1' }, 500), 1);
          assert.equal((await store.getSession('s-b1'))!.revokedAt, 500);
          assert.equal(await store.revokeSessions({ subject: 'alice' }, 600), 2);
          assert.equal(await store.revokeSessions({ subject: 'alice' }, 700), 0, 'already revoked');
          assert.equal((await store.getSession('s-a2'))!.revokedAt, 600);
          assert.equal(await store.revokeSessions({ id: 'nope' }, 1), 0);

          // The proxy touching a session with a copy read before the revocation.
          await store.upsertSession({ ...a1, lastSeenAt: 9_999 });
          const after = await store.getSession('s-a1');
          assert.equal(after!.revokedAt, 600);
          assert.equal(after!.lastSeenAt, 9_999);

          await assert.rejects(store.revokeSessions({}, 1), TypeError);
          assert.equal((await store.listSessions()).filter((s) => s.revokedAt === null).length, 0);
        });
      });

      test('prune removes exactly the sessions whose expiry is at or before now, revoked or not', async () => {
        await withStore(async (store, fx) => {
          const t = 5_000_000;
          const kept = [
            session('s-live', 'alice', { createdAt: 1, expiresAt: t + 1 }),
            session('s-revoked-live', 'alice', { createdAt: 2, expiresAt: t + 60_000, revokedAt: 10 }),
          ];
          const gone = [
            session('s-before', 'bob', { createdAt: 3, expiresAt: t - 1 }),
            session('s-at', 'bob', { createdAt: 4, expiresAt: t }),
            session('s-revoked-gone', 'bob', { createdAt: 5, expiresAt: t - 60_000, revokedAt: 20 }),
          ];
          for (const s of [...kept, ...gone]) await store.upsertSession(s);
          const other = await fx.reopen();
          assert.equal(await other.pruneSessions(t), 3);
          assert.deepEqual(await store.listSessions(), kept);
          assert.equal(await store.pruneSessions(t), 0);
        });
      });
    });

    describe('leases', () => {
      test('exclusive, renewable by the holder, taken over when expired, released by the holder only', async () => {
        await withStore(async (store, fx) => {
          const other = await fx.reopen();
          const t = 1_000_000;
          assert.equal(await store.tryLease('audit.checkpoint', 'A', 1_000, t), true);
          assert.equal(await other.tryLease('audit.checkpoint', 'B', 1_000, t + 10), false);
          assert.equal(await store.tryLease('other.job', 'B', 1_000, t), true, 'leases are per name');
          // Renewal moves the expiry.
          assert.equal(await store.tryLease('audit.checkpoint', 'A', 1_000, t + 900), true);
          assert.equal(await other.tryLease('audit.checkpoint', 'B', 1_000, t + 1_500), false);
          // Expired: someone else takes it, and the old holder is out.
          assert.equal(await other.tryLease('audit.checkpoint', 'B', 1_000, t + 1_900), true);
          assert.equal(await store.tryLease('audit.checkpoint', 'A', 1_000, t + 1_950), false);
          // Only the holder releases.
          await store.releaseLease('audit.checkpoint', 'A');
          assert.equal(await store.tryLease('audit.checkpoint', 'A', 1_000, t + 2_000), false);
          await other.releaseLease('audit.checkpoint', 'B');
          assert.equal(await store.tryLease('audit.checkpoint', 'A', 1_000, t + 2_000), true);
        });
      });

      test('concurrent takers: exactly one wins', async () => {
        await withStore(async (store, fx) => {
          const other = await fx.reopen();
          const now = Date.now();
          const wins = await Promise.all(
            ['h1', 'h2', 'h3', 'h4'].map((h, i) =>
              (i % 2 ? other : store).tryLease('leader', h, 10_000, now),
            ),
          );
          assert.equal(wins.filter(Boolean).length, 1);
        });
      });
    });

    describe('change feed', () => {
      test('publish then read in order, from a cursor', async () => {
        await withStore(async (store) => {
          const before = await store.readChanges(0);
          await store.publishChange('revocations', '17');
          await store.publishChange('keys');
          await store.publishChange('clients', 'jenkins');
          const all = (await store.readChanges(0)).slice(before.length);
          assert.deepEqual(
            all.map((c) => [c.topic, c.ref]),
            [
              ['revocations', '17'],
              ['keys', null],
              ['clients', 'jenkins'],
            ],
          );
          assert.ok(all[0]!.seq < all[1]!.seq && all[1]!.seq < all[2]!.seq);
          assert.ok(all.every((c) => typeof c.at === 'number' && Math.abs(c.at - Date.now()) < 60_000));
          assert.deepEqual(await store.readChanges(all[0]!.seq), all.slice(1));
        });
      });

      test('a watcher in the same instance hears new changes at once, in order, once each; stop ends it', async () => {
        await withStore(async (store) => {
          await store.publishChange('config', 'before');
          const got: Change[] = [];
          const stop = store.watchChanges((c) => got.push(c));
          await store.publishChange('keys', '1');
          await store.publishChange('keys', '2');
          assert.deepEqual(
            got.map((c) => c.ref),
            ['1', '2'],
            'delivered by the time publish resolves',
          );
          await new Promise((r) => setTimeout(r, 450)); // a few poll ticks: nothing is delivered twice
          assert.equal(got.length, 2);
          stop();
          await store.publishChange('keys', '3');
          await new Promise((r) => setTimeout(r, 300));
          assert.equal(got.length, 2);
        });
      });

      test('a second instance on the same database sees changes within a second, in order, once each', async () => {
        await withStore(async (store, fx) => {
          const other = await fx.reopen();
          const got: Change[] = [];
          const stop = other.watchChanges((c) => got.push(c));
          try {
            const started = Date.now();
            await store.publishChange('revocations', 'r1');
            await waitFor(() => got.length >= 1, 1_000, 'the first change');
            assert.ok(Date.now() - started < 1_000);
            for (let i = 2; i <= 20; i++) await store.publishChange('revocations', `r${i}`);
            await waitFor(() => got.length >= 20, 1_000, 'twenty changes');
            await new Promise((r) => setTimeout(r, 450));
            assert.deepEqual(
              got.map((c) => c.ref),
              Array.from({ length: 20 }, (_, i) => `r${i + 1}`),
            );
            const seqs = got.map((c) => c.seq);
            assert.deepEqual(
              seqs,
              [...seqs].sort((a, b) => a - b),
            );
          } finally {
            stop();
          }
        });
      });

      test('a watcher throwing does not stop the feed for others', async () => {
        await withStore(async (store) => {
          const got: string[] = [];
          const onWarning = (): void => {};
          process.on('warning', onWarning);
          const stopBad = store.watchChanges(() => {
            throw new Error('watcher bug');
          });
          const stopGood = store.watchChanges((c) => got.push(c.ref ?? ''));
          try {
            await store.publishChange('sessions', 'x');
            await store.publishChange('sessions', 'y');
            assert.deepEqual(got, ['x', 'y']);
          } finally {
            stopBad();
            stopGood();
            process.off('warning', onWarning);
          }
        });
      });
    });
  });
}
