// The SQLite store's audit writer thread: canonical appends commit on their own connection off the
// event loop, chain with appends made here and by other instances, are answered only once committed,
// and close() lets them finish.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { sealAuditRow, verifyAuditLog } from '../../../src/audit/index.js';
import type { AuditInput, AuditSealer } from '../../../src/store/store.js';

const root = mkdtempSync(join(tmpdir(), 'gatehouse-audit-thread-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(root, `db-${++n}.db`);

const rec = (i: number): AuditInput => ({
  ts: 1_000 + i,
  type: 'token.issued',
  id: `a_${String(i).padStart(16, '0')}`,
  data: { i, sub: 'alice', aud: ['api'] },
});
/** The canonical hash behind another function: the store must run it on its own connection. */
const sameHashOtherFunction: AuditSealer = (prev, row) => sealAuditRow(prev, row);
const noCheckpoints = { verifyCheckpoint: () => Promise.reject(new Error('no checkpoints here')) };

async function openWithThread(path: string, options: { busyTimeoutMs?: number } = {}): Promise<SqliteStore> {
  const store = new SqliteStore({ path, ...options });
  await store.init();
  // The first canonical append starts the thread and is committed here while it comes up.
  await store.appendAudit([rec(0)], sealAuditRow);
  const until = Date.now() + 10_000;
  while (!store.auditOnThread) {
    if (Date.now() > until) throw new Error('the audit writer thread did not come up');
    await new Promise((r) => setTimeout(r, 5));
  }
  return store;
}

describe('SqliteStore audit writer thread', () => {
  test('canonical appends go to the thread, and chain with appends made here and by another instance', async () => {
    const path = freshPath();
    const store = await openWithThread(path);
    const other = new SqliteStore({ path, auditThread: false });
    try {
      assert.equal(other.auditOnThread, false);
      const jobs = [];
      for (let i = 1; i <= 30; i++) {
        const s = i % 3 === 0 ? other : store;
        jobs.push(
          s.appendAudit([rec(i * 2), rec(i * 2 + 1)], i % 5 === 0 ? sameHashOtherFunction : sealAuditRow),
        );
      }
      const batches = await Promise.all(jobs);
      for (const b of batches) assert.equal(b[1]!.seq, b[0]!.seq + 1, 'a batch is contiguous');
      const all = await other.queryAudit({});
      assert.equal(all.length, 61);
      // What the thread returned is what is stored.
      assert.deepEqual(
        batches.flat().sort((a, b) => a.seq - b.seq),
        all.slice(1),
      );
      const verdict = await verifyAuditLog(store, noCheckpoints);
      assert.equal(verdict.ok, true, JSON.stringify(verdict.firstBad));
      assert.equal(verdict.checked, 61);
    } finally {
      await other.close();
      await store.close();
    }
  });

  test('an append is answered only after its commit, and the wait for a lock does not block the event loop', async () => {
    const path = freshPath();
    const store = await openWithThread(path, { busyTimeoutMs: 5_000 });
    const raw = new Database(path);
    try {
      // Another connection holds the write lock: the thread's BEGIN IMMEDIATE waits for it.
      raw.exec('BEGIN IMMEDIATE');
      let answered = false;
      const pending = store.appendAudit([rec(1)], sealAuditRow).then((rows) => ((answered = true), rows));
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      await new Promise((r) => setTimeout(r, 150));
      clearInterval(ticker);
      assert.equal(answered, false, 'not answered while the lock is held');
      assert.ok(ticks >= 5, `timers ran while the thread waited (${ticks} ticks)`);
      raw.exec('COMMIT');
      const [row] = await pending;
      assert.equal(row!.seq, 2);
      // Committed: a fresh connection sees it.
      const seen = raw.prepare('SELECT seq, hash FROM audit WHERE seq = 2').get();
      assert.deepEqual(seen, { seq: 2, hash: row!.hash });
    } finally {
      raw.close();
      await store.close();
    }
  });

  test("SQLite's failures on the thread keep their code: a lock held past the busy timeout is ERR_STORE_UNAVAILABLE", async () => {
    const path = freshPath();
    const store = await openWithThread(path, { busyTimeoutMs: 50 });
    const raw = new Database(path);
    try {
      raw.exec('BEGIN IMMEDIATE');
      await assert.rejects(
        store.appendAudit([rec(1)], sealAuditRow),
        (e: { code?: string; details?: unknown }) => {
          assert.equal(e.code, 'ERR_STORE_UNAVAILABLE');
          assert.equal((e.details as { sqliteCode?: string }).sqliteCode, 'SQLITE_BUSY');
          return true;
        },
      );
      raw.exec('ROLLBACK');
      // The thread keeps serving after a failure.
      const [row] = await store.appendAudit([rec(2)], sealAuditRow);
      assert.equal(row!.seq, 2);
      assert.equal(store.auditOnThread, true);
    } finally {
      raw.close();
      await store.close();
    }
  });

  test('close() lets appends already handed to the thread commit; after it, appends are refused', async () => {
    const path = freshPath();
    const store = await openWithThread(path);
    const jobs = Array.from({ length: 20 }, (_, i) => store.appendAudit([rec(i + 1)], sealAuditRow));
    await store.close();
    const rows = await Promise.all(jobs);
    assert.deepEqual(
      rows.map((r) => r[0]!.seq),
      Array.from({ length: 20 }, (_, i) => i + 2),
    );
    await assert.rejects(store.appendAudit([rec(99)], sealAuditRow), { code: 'ERR_STORE_UNAVAILABLE' });
    const raw = new Database(path, { readonly: true });
    try {
      assert.deepEqual(raw.prepare('SELECT COUNT(*) AS n FROM audit').get(), { n: 21 });
    } finally {
      raw.close();
    }
  });

  test('an idle thread does not keep a process alive, and one with an append in flight does', async () => {
    const child = fileURLToPath(new URL('./sqlite-audit-thread-child.ts', import.meta.url));
    const path = freshPath();
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', child, path], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => p.kill(), 15_000);
      p.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(stdout);
        else reject(new Error(`child exited ${code}: ${stderr}`));
      });
    });
    assert.equal(out, 'appended 2 on thread\n');
    const raw = new Database(path, { readonly: true });
    try {
      assert.deepEqual(raw.prepare('SELECT COUNT(*) AS n FROM audit').get(), { n: 2 });
    } finally {
      raw.close();
    }
  });
});
