// Turns what better-sqlite3 throws into GatehouseErrors: a broken constraint is a conflict, anything
// else means the store cannot answer. Messages name the operation and SQLite's code, never a value.
import Database from 'better-sqlite3';
import { GatehouseError } from '../../lib/errors.js';

/**
 * Wraps a SQLite failure of `op` (a Store method name) in the right GatehouseError. Anything else —
 * our own errors, a TypeError for misuse, whatever a caller's callback threw — passes through as is.
 */
export function toStoreError(op: string, e: unknown): unknown {
  if (e instanceof Database.SqliteError) {
    const sqliteCode = e.code;
    if (sqliteCode.startsWith('SQLITE_CONSTRAINT')) {
      return new GatehouseError(
        'ERR_STORE_CONFLICT',
        `store ${op}: a record with the same key already exists (${sqliteCode})`,
        { sqliteCode },
        { cause: e },
      );
    }
    const hint =
      sqliteCode === 'SQLITE_BUSY' || sqliteCode === 'SQLITE_LOCKED'
        ? 'another process held the database lock longer than the busy timeout'
        : 'check that the data directory exists, is writable and is not on a network file system';
    return new GatehouseError(
      'ERR_STORE_UNAVAILABLE',
      `store ${op} failed: SQLite ${sqliteCode}`,
      { sqliteCode, hint },
      { cause: e },
    );
  }
  // better-sqlite3 throws TypeError "The database connection is not open" after close().
  if (e instanceof TypeError && /connection is not open/i.test(e.message)) return closedError(op);
  return e;
}

export function closedError(op: string): GatehouseError {
  return new GatehouseError('ERR_STORE_UNAVAILABLE', `store ${op}: the store is closed`, {
    hint: 'the store was closed before this call; open a new one',
  });
}
