// ClientRegistry's caches of store clients and secret lists: served from memory, dropped when the
// change feed says `clients` or `secrets` changed, and a refusal always re-checked against the store.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { ClientRegistry } from '../../../src/issuer/clients.js';
import { generateSecret, hashSecret, rotateSecret } from '../../../src/issuer/client-secrets.js';

const root = mkdtempSync(join(tmpdir(), 'gatehouse-clients-cache-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const NOW = Date.UTC(2026, 0, 1);

async function fixture() {
  const path = join(root, `db-${++n}.db`);
  const store = new SqliteStore({ path, now: () => NOW });
  await store.init();
  const registry = new ClientRegistry([], store);
  // Writes made by "another process": straight into the file, with no change published.
  const raw = new Database(path);
  return {
    store,
    registry,
    raw,
    async close() {
      registry.close();
      raw.close();
      await store.close();
    },
  };
}

describe('ClientRegistry caches', () => {
  test('a store client is parsed once and re-read after a clients change', async () => {
    const f = await fixture();
    try {
      await f.store.upsertClient({
        id: 'svc',
        metadata: { id: 'svc', allowed_audiences: ['a'] },
        createdAt: NOW,
      });
      assert.deepEqual((await f.registry.get('svc'))?.allowed_audiences, ['a']);
      f.raw
        .prepare('UPDATE clients SET metadata = ? WHERE id = ?')
        .run(JSON.stringify({ id: 'svc', allowed_audiences: ['b'] }), 'svc');
      assert.deepEqual((await f.registry.get('svc'))?.allowed_audiences, ['a'], 'served from the cache');
      await f.store.publishChange('clients', 'svc');
      assert.deepEqual((await f.registry.get('svc'))?.allowed_audiences, ['b']);
      // Unknown ids are not cached: one created later is found at once.
      assert.equal(await f.registry.get('later'), undefined);
      await f.store.upsertClient({
        id: 'later',
        metadata: { id: 'later', allowed_audiences: ['c'] },
        createdAt: NOW,
      });
      assert.equal((await f.registry.get('later'))?.id, 'later');
    } finally {
      await f.close();
    }
  });

  test('a secret created elsewhere works at once; one expired elsewhere stops when the change is heard', async () => {
    const f = await fixture();
    try {
      const { secret: first } = await rotateSecret(f.store, 'svc', { overlapMs: 0, now: NOW });
      assert.equal((await f.registry.checkSecret('svc', first, NOW)).ok, true);

      // Another process adds a second secret and expires the first without this one hearing of it yet.
      const second = generateSecret();
      f.raw
        .prepare(
          'INSERT INTO client_secrets (id, client_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run('sec_second', 'svc', hashSecret(second), NOW, null);
      f.raw.prepare("UPDATE client_secrets SET expires_at = ? WHERE id != 'sec_second'").run(NOW);
      // A refusal from the cache is checked again against the store: the new secret works now.
      const checked = await f.registry.checkSecret('svc', second, NOW);
      assert.equal(checked.ok, true);
      // That re-read also refreshed the cache, so the first secret is refused already.
      const old = await f.registry.checkSecret('svc', first, NOW);
      assert.equal(old.ok, false);
      assert.equal(old.ok === false && old.reason, 'expired_secret');
    } finally {
      await f.close();
    }
  });

  test('a cached success lasts only until a secrets change for that client', async () => {
    const f = await fixture();
    try {
      const { secret, record } = await rotateSecret(f.store, 'svc', { overlapMs: 0, now: NOW });
      assert.equal((await f.registry.checkSecret('svc', secret, NOW)).ok, true);
      f.raw.prepare('UPDATE client_secrets SET expires_at = ? WHERE id = ?').run(NOW, record.id);
      // Until the change is heard, the cached list still holds the secret (the change feed's delay).
      assert.equal((await f.registry.checkSecret('svc', secret, NOW)).ok, true);
      await f.store.publishChange('secrets', 'other-client');
      assert.equal((await f.registry.checkSecret('svc', secret, NOW)).ok, true, 'another client changed');
      await f.store.publishChange('secrets', 'svc');
      const after = await f.registry.checkSecret('svc', secret, NOW);
      assert.equal(after.ok === false && after.reason, 'expired_secret');
    } finally {
      await f.close();
    }
  });
});
