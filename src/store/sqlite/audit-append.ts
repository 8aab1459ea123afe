// The audit append transaction, shared by the store's own connection and the audit writer thread, so
// rows are chained the same way whichever connection commits them.
import type Database from 'better-sqlite3';
import { chainAuditRows } from '../rows.js';
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
      const { rows, texts } = chainAuditRows(records, head, seal);
      const insert = prepare(
        'INSERT INTO audit (seq, ts, type, id, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      rows.forEach((r, i) => insert.run(r.seq, r.ts, r.type, r.id, texts[i], r.prevHash, r.hash));
      return rows;
    })
    .immediate();
}
