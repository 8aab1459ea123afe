// Attacks on the audit log made directly in the SQLite file (edit, insert, delete, truncate, forge a
// checkpoint); `verifyAuditLog` must catch each and name the first broken record.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { AuditLog, pruneAudit, sealAuditRow, verifyAuditLog } from '../../src/audit/index.js';
import { checkpointKeys, tempStore } from '../unit/audit/helpers.js';

const T0 = Date.UTC(2026, 0, 1);

/** A store with 30 records and checkpoints at 10, 20 (every 10) and 30 (on close), one minute apart. */
async function seeded() {
  const t = await tempStore();
  const keys = await checkpointKeys();
  let now = T0;
  const log = new AuditLog(t.store, {
    checkpointEvery: 10,
    maxBatch: 10,
    signCheckpoint: keys.signCheckpoint,
    now: () => now,
  });
  for (let i = 1; i <= 30; i++) {
    now = T0 + i * 6_000;
    await log.append('token.issued', { jti: `jti-${i}`, client_id: 'svc', aud: 'https://app/' });
  }
  await log.close();
  // The attacker's handle on the same file.
  const db = new Database(t.path);
  const verify = (trustedHead?: { seq: number; hash: string }) =>
    verifyAuditLog(t.store, {
      verifyCheckpoint: keys.verifyCheckpoint,
      pageSize: 7,
      ...(trustedHead ? { trustedHead } : {}),
    });
  const row = (seq: number) =>
    db.prepare('SELECT * FROM audit WHERE seq = ?').get(seq) as {
      seq: number;
      ts: number;
      type: string;
      id: string;
      data: string;
      prev_hash: string;
      hash: string;
    };
  return {
    ...t,
    db,
    keys,
    verify,
    row,
    done: async () => {
      db.close();
      await t.cleanup();
    },
  };
}

describe('audit log tampering', () => {
  test('a clean log verifies', async () => {
    const s = await seeded();
    try {
      const v = await s.verify();
      assert.deepEqual(
        { ok: v.ok, checked: v.checked, checkpoints: v.checkpoints, head: v.head?.seq },
        { ok: true, checked: 30, checkpoints: 3, head: 30 },
      );
    } finally {
      await s.done();
    }
  });

  test("editing a row's data is named as a hash mismatch at that row", async () => {
    const s = await seeded();
    try {
      s.db
        .prepare('UPDATE audit SET data = ? WHERE seq = 13')
        .run(JSON.stringify({ jti: 'jti-13', client_id: 'attacker', aud: 'https://app/' }));
      const v = await s.verify();
      assert.equal(v.ok, false);
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 13, reason: 'hash mismatch' },
      );
      assert.equal(v.checked, 12);
    } finally {
      await s.done();
    }
  });

  test('editing a row and re-sealing it (the attacker knows the algorithm) breaks the next link', async () => {
    const s = await seeded();
    try {
      const r = s.row(13);
      const data = { jti: 'jti-13', client_id: 'attacker', aud: 'https://app/' };
      const hash = sealAuditRow(r.prev_hash, { seq: 13, ts: r.ts, type: r.type, id: r.id, data });
      s.db.prepare('UPDATE audit SET data = ?, hash = ? WHERE seq = 13').run(JSON.stringify(data), hash);
      const v = await s.verify();
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 14, reason: 'prev link broken' },
      );
    } finally {
      await s.done();
    }
  });

  test('re-sealing the whole chain after an edit is caught by the signed checkpoint', async () => {
    const s = await seeded();
    try {
      let prev = s.row(12).hash;
      for (let seq = 13; seq <= 30; seq++) {
        const r = s.row(seq);
        const data =
          seq === 13
            ? { jti: 'jti-13', client_id: 'attacker' }
            : (JSON.parse(r.data) as Record<string, unknown>);
        const hash = sealAuditRow(prev, { seq, ts: r.ts, type: r.type, id: r.id, data });
        s.db
          .prepare('UPDATE audit SET data = ?, prev_hash = ?, hash = ? WHERE seq = ?')
          .run(JSON.stringify(data), prev, hash, seq);
        prev = hash;
      }
      const v = await s.verify();
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 20, reason: 'checkpoint mismatch' },
      );
    } finally {
      await s.done();
    }
  });

  test('inserting a row in the middle is named at the inserted seq', async () => {
    const s = await seeded();
    try {
      // Make room at 16 by renumbering the rows after it, then slip a forged row in.
      for (let seq = 30; seq >= 16; seq--)
        s.db.prepare('UPDATE audit SET seq = seq + 1 WHERE seq = ?').run(seq);
      const prev = s.row(15).hash;
      const data = { jti: 'forged', client_id: 'attacker' };
      const hash = sealAuditRow(prev, {
        seq: 16,
        ts: T0 + 95_000,
        type: 'token.issued',
        id: 'a_AAAAAAAAAAAAAAAA',
        data,
      });
      s.db
        .prepare('INSERT INTO audit (seq, ts, type, id, data, prev_hash, hash) VALUES (16, ?, ?, ?, ?, ?, ?)')
        .run(T0 + 95_000, 'token.issued', 'a_AAAAAAAAAAAAAAAA', JSON.stringify(data), prev, hash);
      const v = await s.verify();
      assert.equal(v.ok, false);
      // The forged row itself chains correctly; the row after it no longer does.
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 17, reason: 'prev link broken' },
      );
    } finally {
      await s.done();
    }
  });

  test('inserting a carelessly forged row is named at that row', async () => {
    const s = await seeded();
    try {
      for (let seq = 30; seq >= 16; seq--)
        s.db.prepare('UPDATE audit SET seq = seq + 1 WHERE seq = ?').run(seq);
      s.db
        .prepare('INSERT INTO audit (seq, ts, type, id, data, prev_hash, hash) VALUES (16, ?, ?, ?, ?, ?, ?)')
        .run(T0, 'token.issued', 'a_AAAAAAAAAAAAAAAA', '{}', 'f'.repeat(64), 'e'.repeat(64));
      const v = await s.verify();
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 16, reason: 'prev link broken' },
      );
    } finally {
      await s.done();
    }
  });

  test('deleting a row is named as a sequence gap at the missing seq', async () => {
    const s = await seeded();
    try {
      s.db.prepare('DELETE FROM audit WHERE seq = 7').run();
      const v = await s.verify();
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 7, reason: 'sequence gap' },
      );
    } finally {
      await s.done();
    }
  });

  test('deleting a row and renumbering the rest breaks the link at that seq', async () => {
    const s = await seeded();
    try {
      s.db.prepare('DELETE FROM audit WHERE seq = 7').run();
      for (let seq = 8; seq <= 30; seq++)
        s.db.prepare('UPDATE audit SET seq = seq - 1 WHERE seq = ?').run(seq);
      const v = await s.verify();
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 7, reason: 'prev link broken' },
      );
    } finally {
      await s.done();
    }
  });

  test('deleting the first rows without a checkpoint to start from is caught', async () => {
    const s = await seeded();
    try {
      s.db.prepare('DELETE FROM audit WHERE seq <= 3').run();
      const v = await s.verify();
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 4, reason: 'unanchored start' },
      );
    } finally {
      await s.done();
    }
  });

  test('truncating the tail is caught against the last checkpoint', async () => {
    const s = await seeded();
    try {
      s.db.prepare('DELETE FROM audit WHERE seq > 25').run();
      const v = await s.verify();
      assert.deepEqual(v.firstBad, { seq: 26, reason: 'truncated', expected: 30, actual: 25 });
    } finally {
      await s.done();
    }
  });

  test('truncating the tail and its checkpoints is caught against a head kept elsewhere', async () => {
    const s = await seeded();
    try {
      const head = s.row(30);
      s.db.prepare('DELETE FROM audit WHERE seq > 22').run();
      s.db.prepare('DELETE FROM audit_checkpoints WHERE seq > 20').run();
      assert.equal(
        (await s.verify()).ok,
        true,
        'without a head from elsewhere, cutting after a checkpoint is invisible',
      );
      const v = await s.verify({ seq: 30, hash: head.hash });
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 23, reason: 'truncated' },
      );
      const wrong = await s.verify({ seq: 22, hash: 'a'.repeat(64) });
      assert.deepEqual(
        { seq: wrong.firstBad?.seq, reason: wrong.firstBad?.reason },
        { seq: 22, reason: 'checkpoint mismatch' },
      );
    } finally {
      await s.done();
    }
  });

  test('a forged or altered checkpoint is refused', async () => {
    const s = await seeded();
    try {
      const cp = s.db.prepare('SELECT jws FROM audit_checkpoints WHERE seq = 20').get() as { jws: string };
      const [h, , sig] = cp.jws.split('.');
      const payload = Buffer.from(JSON.stringify({ seq: 20, hash: 'b'.repeat(64), ts: T0 })).toString(
        'base64url',
      );
      s.db
        .prepare('UPDATE audit_checkpoints SET jws = ?, hash = ? WHERE seq = 20')
        .run(`${h}.${payload}.${sig}`, 'b'.repeat(64));
      const v = await s.verify();
      assert.deepEqual(
        { seq: v.firstBad?.seq, reason: v.firstBad?.reason },
        { seq: 20, reason: 'checkpoint signature invalid' },
      );
      // A checkpoint signed by some other key is refused too.
      const other = await checkpointKeys();
      const forged = await other.signCheckpoint({ seq: 40, hash: 'c'.repeat(64), ts: T0 });
      s.db
        .prepare('INSERT INTO audit_checkpoints (seq, hash, jws, created_at) VALUES (40, ?, ?, ?)')
        .run('c'.repeat(64), forged, T0);
      const v2 = await s.verify();
      assert.equal(v2.ok, false);
    } finally {
      await s.done();
    }
  });

  test('prune keeps the chain verifiable from a checkpoint, and tampering after it is still caught', async () => {
    const s = await seeded();
    try {
      // Checkpoint 20 was made at record 20's time (T0 + 120 s); prune everything older.
      const r = await pruneAudit(s.store, new Date(T0 + 150_000));
      assert.deepEqual({ deleted: r.deleted, seq: r.checkpoint?.seq }, { deleted: 19, seq: 20 });
      const v = await s.verify();
      assert.deepEqual(
        { ok: v.ok, checked: v.checked, head: v.head?.seq },
        { ok: true, checked: 11, head: 30 },
      );
      // Appending after a prune still chains.
      const log = new AuditLog(s.store, { signCheckpoint: s.keys.signCheckpoint });
      await log.append('token.revoked', { jti: 'jti-3' });
      await log.close();
      assert.equal((await s.verify()).ok, true);
      // Deleting rows past the checkpoint that anchors the start is caught (deleting the anchoring row
      // alone is what a prune up to it does, and the row after still chains to the signed hash).
      s.db.prepare('DELETE FROM audit WHERE seq IN (20, 21)').run();
      const bad = await s.verify();
      assert.deepEqual(
        { seq: bad.firstBad?.seq, reason: bad.firstBad?.reason },
        { seq: 22, reason: 'unanchored start' },
      );
      // Nothing to prune before the first checkpoint.
      assert.deepEqual(await pruneAudit(s.store, new Date(T0)), { deleted: 0 });
    } finally {
      await s.done();
    }
  });
});
