// The SQLite store: the shared contract on real files, plus what only SQLite has — WAL, recorded
// migrations, several processes on one file, and the bounded change table.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { GENESIS_HASH } from '../../../src/store/store.js';
import type { AuditSealer, Change } from '../../../src/store/store.js';
import { runStoreContract } from '../../store/contract.js';

const root = mkdtempSync(join(tmpdir(), 'gatehouse-sqlite-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(root, `db-${++n}`, 'gatehouse.db');

const seal: AuditSealer = (prevHash, row) =>
  createHash('sha256').update(prevHash).update(JSON.stringify(row)).digest('hex');

runStoreContract('sqlite', async () => {
  const path = freshPath();
  const store = new SqliteStore({ path });
  return {
    store,
    reopen: async () => new SqliteStore({ path }),
    cleanup: async () => {
      await store.close();
      rmSync(join(path, '..'), { recursive: true, force: true });
    },
  };
});

const child = fileURLToPath(new URL('./sqlite-child.ts', import.meta.url));

/** Runs sqlite-child.ts in its own Node process; `ready` resolves when it prints "ready". */
function runChild(...args: string[]): Promise<string> & { ready: Promise<void> } {
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  const done = new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) onReady();
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
  });
  return Object.assign(done, { ready });
}

describe('SqliteStore specifics', () => {
  test('creates parent directories, uses WAL, and records its migrations once', async () => {
    const path = freshPath();
    assert.equal(existsSync(join(path, '..')), false);
    const store = new SqliteStore({ path });
    await store.init();
    await store.init();
    assert.equal(store.kind, 'sqlite');
    assert.equal(store.path, path);
    const expected = Array.from({ length: SqliteStore.schemaVersion }, (_, i) => i + 1);
    assert.deepEqual(await store.appliedMigrations(), expected);
    await store.close();

    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      const rows = raw
        .prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
        .all() as {
        version: number;
        name: string;
        applied_at: number;
      }[];
      assert.deepEqual(
        rows.map((r) => r.version),
        expected,
      );
      assert.ok(rows.every((r) => r.name.length > 0 && r.applied_at > 0));
      // Migration 3: the housekeeping round's DELETE ... WHERE expires_at <= ? uses an index.
      const indexes = raw.prepare(`PRAGMA index_list('sessions')`).all() as { name: string }[];
      assert.ok(
        indexes.some((i) => i.name === 'sessions_expires_at'),
        `sessions indexes: ${indexes.map((i) => i.name).join(', ')}`,
      );
      const columns = raw.prepare(`PRAGMA index_info('sessions_expires_at')`).all() as { name: string }[];
      assert.deepEqual(
        columns.map((c) => c.name),
        ['expires_at'],
      );
      const plan = raw.prepare('EXPLAIN QUERY PLAN DELETE FROM sessions WHERE expires_at <= ?').all(1) as {
        detail: string;
      }[];
      assert.ok(
        plan.some((r) => r.detail.includes('sessions_expires_at')),
        `plan: ${plan.map((r) => r.detail).join('; ')}`,
      );
    } finally {
      raw.close();
    }
  });

  test('an older binary runs on a newer schema (a migration it does not know is left alone)', async () => {
    const path = freshPath();
    const first = new SqliteStore({ path });
    await first.init();
    await first.close();
    // What a newer release would have done: an extra table, an extra column, a recorded version.
    const raw = new Database(path);
    raw.exec(`CREATE TABLE future_thing (id TEXT PRIMARY KEY);
      ALTER TABLE sessions ADD COLUMN device TEXT;
      INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from the future', 1)`);
    raw.close();

    const store = new SqliteStore({ path });
    await store.init();
    assert.equal((await store.appliedMigrations()).at(-1), 999);
    await store.upsertSession({
      id: 's',
      subject: 'alice',
      data: {},
      createdAt: 1,
      lastSeenAt: 1,
      expiresAt: 2,
      revokedAt: null,
    });
    assert.equal((await store.getSession('s'))!.subject, 'alice');
    await store.close();
  });

  test(':memory: works for quick use', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    await store.init();
    assert.equal(await store.initMeta('a', '1'), '1');
    await store.close();
  });

  test('a file that is not a database is ERR_STORE_UNAVAILABLE, as is a path under a file', async () => {
    const dir = join(root, 'bad');
    const path = join(dir, 'not-a-db');
    rmSync(dir, { recursive: true, force: true });
    const store0 = new SqliteStore({ path: join(dir, 'x.db') });
    await store0.close();
    writeFileSync(
      path,
      'this is not SQLite, and long enough to have a header that fails the check '.repeat(20),
    );
    assert.throws(
      () => new SqliteStore({ path }),
      (e: unknown) => (e as { code?: string }).code === 'ERR_STORE_UNAVAILABLE',
    );
    assert.throws(
      () => new SqliteStore({ path: join(path, 'under', 'a-file.db') }),
      (e: unknown) => (e as { code?: string }).code === 'ERR_STORE_UNAVAILABLE',
    );
  });

  test('expiry follows the injected clock', async () => {
    let now = 1_000_000;
    const store = new SqliteStore({ path: freshPath(), now: () => now });
    await store.init();
    await store.oidcUpsert('AccessToken', 'a', { accountId: 'alice' }, 1_000_500);
    assert.ok(await store.oidcFind('AccessToken', 'a'));
    now = 1_000_500;
    assert.equal(await store.oidcFind('AccessToken', 'a'), undefined, 'expired at expiresAt exactly');
    assert.equal(await store.oidcPruneExpired(), 1);
    await store.close();
  });

  test('the change table stays bounded: rows older than the retention are pruned', async () => {
    let now = 10_000_000;
    const store = new SqliteStore({ path: freshPath(), now: () => now, changeRetentionMs: 60_000 });
    await store.init();
    await store.publishChange('keys', 'old-1');
    now += 1_000;
    await store.publishChange('keys', 'old-2');
    now += 10 * 60_000;
    await store.publishChange('keys', 'new');
    const rows = await store.readChanges(0);
    assert.deepEqual(
      rows.map((c) => c.ref),
      ['new'],
    );
    assert.equal(rows[0]!.seq, 3, 'sequence numbers are not reused after pruning');
    await store.close();
  });

  test('instances in the same process on the same file hear a publish at once, not at the next poll', async () => {
    const path = freshPath();
    const a = new SqliteStore({ path, pollIntervalMs: 60_000 });
    const b = new SqliteStore({ path, pollIntervalMs: 60_000 });
    await a.init();
    await b.init();
    const got: string[] = [];
    const stop = b.watchChanges((c) => got.push(c.ref ?? ''));
    await a.publishChange('keys', 'k1');
    assert.deepEqual(got, ['k1']);
    stop();
    await a.close();
    await b.close();
  });

  test('two processes initialising a fresh file together both succeed and apply each migration once', async () => {
    const path = freshPath();
    await Promise.all([runChild('init', path), runChild('init', path), runChild('init', path)]);
    const raw = new Database(path, { readonly: true });
    try {
      const rows = raw.prepare('SELECT version FROM schema_migrations').all() as { version: number }[];
      assert.equal(rows.length, SqliteStore.schemaVersion);
    } finally {
      raw.close();
    }
  });

  test('appends from two processes and this one form one gapless chain', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path });
    await store.init();
    const go = join(path, '..', 'go');
    const writers = [runChild('append', path, '100', go), runChild('append', path, '100', go)];
    await Promise.all(writers.map((w) => w.ready));
    let childrenDone = false;
    const children = Promise.all(writers).finally(() => (childrenDone = true));
    writeFileSync(go, '');
    // This process keeps appending for as long as the children run.
    let mine = 0;
    while (!childrenDone) {
      await store.appendAudit(
        [{ ts: Date.now(), type: 'parent.append', id: `p_${mine}`, data: { mine } }],
        seal,
      );
      mine += 1;
      await new Promise((r) => setTimeout(r, 2));
    }
    await children;
    const rows = await store.queryAudit({});
    assert.equal(rows.length, 200 + mine);
    // The writers really did overlap: child records are interleaved with the parent's.
    const firstChild = rows.findIndex((r) => r.type === 'child.append');
    const lastChild = rows.findLastIndex((r) => r.type === 'child.append');
    assert.ok(rows.slice(firstChild, lastChild).some((r) => r.type === 'parent.append'));
    const pids = rows.filter((r) => r.type === 'child.append').map((r) => r.id.split('_')[0]);
    assert.ok(
      pids.some((p, i) => i > 0 && p !== pids[i - 1] && pids.indexOf(p!) < i - 1),
      'children interleave',
    );
    let prev = GENESIS_HASH;
    rows.forEach((r, i) => {
      assert.equal(r.seq, i + 1);
      assert.equal(r.prevHash, prev);
      const { hash, prevHash, ...body } = r;
      assert.equal(hash, seal(prevHash, body));
      prev = hash;
    });
    await store.close();
  });

  test('a change published by another process reaches a watcher here within a second, in order', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path });
    await store.init();
    const got: Change[] = [];
    const stop = store.watchChanges((c) => got.push(c));
    try {
      await runChild('publish', path, '10', 'cli-');
      const done = Date.now();
      while (got.length < 10 && Date.now() - done < 1_000) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(
        got.map((c) => c.ref),
        Array.from({ length: 10 }, (_, i) => `cli-${i}`),
      );
    } finally {
      stop();
      await store.close();
    }
  });
});
