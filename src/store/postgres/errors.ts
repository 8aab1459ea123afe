// Turns what the `postgres` driver throws into GatehouseErrors: a broken constraint is a conflict, a
// connection or server failure means the store cannot answer. Messages name host:port and SQLSTATE,
// never the password or a value.
import postgres from 'postgres';
import { GatehouseError } from '../../lib/errors.js';

/** Error codes the driver (or Node's socket) gives a connection that failed or went away. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
]);

/**
 * Wraps a driver failure of `op` (a Store method name) in the right GatehouseError; `where` is the
 * server's host:port. Anything else — our own errors, a TypeError for misuse, what a caller's
 * callback threw — passes through as is.
 */
export function toStoreError(op: string, where: string, e: unknown): unknown {
  if (e instanceof postgres.PostgresError) {
    const sqlstate = e.code;
    // Class 23: integrity constraint violation (23505 unique, 23503 foreign key…).
    if (sqlstate.startsWith('23')) {
      return new GatehouseError(
        'ERR_STORE_CONFLICT',
        `store ${op}: a record with the same key already exists (SQLSTATE ${sqlstate})`,
        { sqlstate },
        { cause: e },
      );
    }
    return new GatehouseError(
      'ERR_STORE_UNAVAILABLE',
      `store ${op} failed: PostgreSQL at ${where} answered SQLSTATE ${sqlstate}`,
      { sqlstate, hint: hintFor(sqlstate) },
      { cause: e },
    );
  }
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof Error && typeof code === 'string' && CONNECTION_CODES.has(code)) {
    return new GatehouseError(
      'ERR_STORE_UNAVAILABLE',
      `store ${op}: cannot reach PostgreSQL at ${where} (${code})`,
      { errno: code, hint: 'check that PostgreSQL is running and store.postgres.url points at it' },
      { cause: e },
    );
  }
  return e;
}

export function closedError(op: string): GatehouseError {
  return new GatehouseError('ERR_STORE_UNAVAILABLE', `store ${op}: the store is closed`, {
    hint: 'the store was closed before this call; open a new one',
  });
}

function hintFor(sqlstate: string): string {
  if (sqlstate.startsWith('28')) return 'authentication failed: check the user and password in the URL';
  if (sqlstate === '3D000') return 'the database does not exist: create it first';
  if (sqlstate.startsWith('08') || sqlstate.startsWith('57'))
    return 'the server closed the connection or is shutting down; it is retried on the next call';
  if (sqlstate === '53300') return 'the server has too many connections: lower store.postgres.pool';
  return 'see the PostgreSQL server log for this SQLSTATE';
}

/** `host:port` of a postgres:// URL, for messages: never the user or password. */
export function describeServer(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || decodeURIComponent(u.searchParams.get('host') ?? '') || 'localhost';
    return `${host}:${u.port || '5432'}`;
  } catch {
    return 'an unparsable URL';
  }
}
