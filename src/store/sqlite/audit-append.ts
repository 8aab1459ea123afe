// The audit append transaction, shared by the store's own connection and the audit writer thread, so
// rows are chained the same way whichever connection commits them.
import type Database from 'better-sqlite3';
import { GENESIS_HASH } from '../store.js';
import type { AuditInput, AuditRow, AuditSealer } from '../store.js';

/**
 * Appends `records` after the current head in one IMMEDIATE transaction (the write lock is taken
 * before the head is read, so several connections or processes form one gapless chain). The caller
 * decides the connection's `synchronous` level; audit commits run with FULL.
 */
export function appendAuditRows(
  db: Database.Database,
  prepare: (sql: string) => Database.Statement,
  records: AuditInput[],
  seal: AuditSealer,
): AuditRow[] {
  if (records.length === 0) return [];
  return db
    .transaction(() => {
      const head = prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1').get() as
        { seq: number; hash: string } | undefined;
      let seq = head?.seq ?? 0;
      let prevHash = head?.hash ?? GENESIS_HASH;
      const insert = prepare(
        'INSERT INTO audit (seq, ts, type, id, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      const stored: AuditRow[] = [];
      for (const rec of records) {
        seq += 1;
        // The sealer sees exactly what a reader will get back, so verification recomputes the same hash.
        const text = JSON.stringify(rec.data);
        const data = JSON.parse(text) as Record<string, unknown>;
        const row = { seq, ts: rec.ts, type: rec.type, id: rec.id, data };
        const hash = seal(prevHash, row);
        insert.run(seq, rec.ts, rec.type, rec.id, text, prevHash, hash);
        stored.push({ ...row, prevHash, hash });
        prevHash = hash;
      }
      return stored;
    })
    .immediate();
}
