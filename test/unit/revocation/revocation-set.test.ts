import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RevocationSet } from '../../../src/revocation/index.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';

const T = Date.UTC(2026, 0, 1, 12); // the frozen "now" of these tests
const sec = (ms: number) => Math.floor(ms / 1000);

async function withStore(fn: (store: SqliteStore, path: string) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-revocation-'));
  const path = join(dir, 'gatehouse.db');
  const store = new SqliteStore({ path });
  await store.init();
  try {
    await fn(store, path);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('RevocationSet', () => {
  test('a revoked subject kills tokens issued before the revocation, not those issued after', async () => {
    await withStore(async (store) => {
      let now = T;
      const set = new RevocationSet(store, { now: () => now });
      await set.start();
      try {
        const rec = await set.revoke({ kind: 'subject', value: 'alice', reason: 'left the org' });
        assert.equal(rec.revokedAt, T);
        assert.equal(set.check({ sub: 'alice', iat: sec(T - 60_000) })?.id, rec.id);
        assert.equal(
          set.check({ sub: 'alice', iat: sec(T) })?.id,
          rec.id,
          'same second counts as before (fail closed)',
        );
        assert.equal(set.check({ sub: 'alice' })?.id, rec.id, 'no iat is treated as issued before');
        now = T + 60_000;
        assert.equal(set.check({ sub: 'alice', iat: sec(T + 30_000) }), undefined);
        assert.equal(set.check({ sub: 'bob', iat: sec(T - 60_000) }), undefined);
      } finally {
        set.stop();
      }
    });
  });

  test('a jti is revoked for its issuer only, or for any issuer when none is given', async () => {
    await withStore(async (store) => {
      const set = new RevocationSet(store, { now: () => T });
      await set.start();
      try {
        await set.revoke({ kind: 'jti', value: 'j1', issuer: 'https://a.example' });
        await set.revoke({ kind: 'jti', value: 'j2' });
        assert.ok(set.check({ iss: 'https://a.example', jti: 'j1', iat: sec(T + 3_600_000) }));
        assert.equal(set.check({ iss: 'https://b.example', jti: 'j1' }), undefined);
        assert.ok(set.check({ iss: 'https://b.example', jti: 'j2' }));
      } finally {
        set.stop();
      }
    });
  });

  test('client and session revocations follow the same before/after rule', async () => {
    await withStore(async (store) => {
      const set = new RevocationSet(store, { now: () => T });
      await set.start();
      try {
        await set.revoke({ kind: 'client', value: 'svc' });
        await set.revoke({ kind: 'session', value: 's1' });
        assert.equal(set.check({ client_id: 'svc', iat: sec(T - 1000) })?.kind, 'client');
        assert.equal(set.check({ client_id: 'svc', iat: sec(T + 5000) }), undefined);
        assert.equal(set.check({ sid: 's1', iat: sec(T - 1000) })?.kind, 'session');
      } finally {
        set.stop();
      }
    });
  });

  test('expired jti entries are forgotten by the sweep, even if never checked again', async () => {
    await withStore(async (store) => {
      let now = T;
      const set = new RevocationSet(store, { now: () => now, sweepIntervalMs: 10 });
      await set.start();
      try {
        await set.revoke({ kind: 'jti', value: 'j1', expiresAt: T + 600_000 });
        await set.revoke({ kind: 'jti', value: 'j2', expiresAt: T + 1_200_000 });
        assert.ok(set.check({ jti: 'j1' }));
        assert.equal(set.size, 2);
        now = T + 600_001;
        // No check() from here on: only the sweep can drop j1, and it must keep j2.
        const size = (): number => set.size;
        const deadline = Date.now() + 5_000;
        while (size() !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        assert.equal(size(), 1);
        assert.ok(set.check({ jti: 'j2' }));
      } finally {
        set.stop();
      }
    });
  });

  test('a jti entry past its end is forgotten when it is checked, before any sweep', async () => {
    await withStore(async (store) => {
      let now = T;
      const set = new RevocationSet(store, { now: () => now, sweepIntervalMs: 3_600_000 });
      await set.start();
      try {
        await set.revoke({ kind: 'jti', value: 'j1', issuer: 'https://a.example', expiresAt: T + 1_000 });
        await set.revoke({ kind: 'jti', value: 'j1', expiresAt: T + 5_000 });
        assert.equal(set.size, 2);
        now = T + 1_000;
        // The issuer's own entry has ended; the any-issuer entry for the same jti still refuses.
        assert.equal(set.check({ iss: 'https://a.example', jti: 'j1' })?.issuer, null);
        assert.equal(set.size, 1, 'the ended entry left memory');
        now = T + 5_000;
        assert.equal(set.check({ iss: 'https://a.example', jti: 'j1' }), undefined);
        assert.equal(set.size, 0);
      } finally {
        set.stop();
      }
    });
  });

  test('loads existing revocations on start, and refuses check() before it', async () => {
    await withStore(async (store) => {
      const first = new RevocationSet(store, { now: () => T });
      await first.revoke({ kind: 'subject', value: 'alice' });
      const set = new RevocationSet(store, { now: () => T + 1000 });
      assert.throws(() => set.check({ sub: 'alice' }), TypeError);
      await set.start();
      try {
        assert.ok(set.check({ sub: 'alice', iat: sec(T - 1000) }));
      } finally {
        set.stop();
      }
    });
  });

  test('a revocation made through a second store on the same file is seen within a second', async () => {
    await withStore(async (store, path) => {
      const set = new RevocationSet(store);
      await set.start();
      const other = new SqliteStore({ path });
      await other.init();
      try {
        const iat = sec(Date.now()) - 10;
        assert.equal(set.check({ sub: 'carol', iat }), undefined);
        const writer = new RevocationSet(other);
        const started = Date.now();
        await writer.revoke({ kind: 'subject', value: 'carol', reason: 'offboarded' });
        while (!set.check({ sub: 'carol', iat })) {
          assert.ok(Date.now() - started < 1000, 'not seen within a second');
          await new Promise((r) => setTimeout(r, 10));
        }
        assert.equal(set.check({ sub: 'carol', iat })?.reason, 'offboarded');
      } finally {
        set.stop();
        await other.close();
      }
    });
  });
});
