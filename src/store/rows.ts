// Row shapes and row-to-record mappings both stores share: the tables and columns are the same in both
// dialects; only how a JSON column arrives differs (SQLite hands back text, PostgreSQL a parsed jsonb value).
import { GatehouseError } from '../lib/errors.js';
import { GENESIS_HASH } from './store.js';
import type { AuditInput, AuditRow, AuditSealer, ClientRecord, KeyPatch, SessionRecord } from './store.js';

export type Row = Record<string, unknown>;

/** Turns a JSON column as the driver returns it into the document it holds. */
export type JsonColumn = (value: unknown) => Record<string, unknown>;

export interface SessionRow {
  id: string;
  subject: string;
  data: unknown;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  revoked_at: number | null;
}

/** KeyPatch fields and their columns: the only columns updateKey may touch. */
export const KEY_PATCH_COLUMNS = {
  state: 'state',
  activatedAt: 'activated_at',
  retiredAt: 'retired_at',
  removeAfter: 'remove_after',
  sealedPrivate: 'sealed_private',
} as const satisfies Record<keyof KeyPatch, string>;

export function stringOrNull(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

export function notFound(what: string, id: string): GatehouseError {
  return new GatehouseError('ERR_NOT_FOUND', `no ${what} with id "${id}"`, { field: 'id' });
}

export function toClient(r: Row, json: JsonColumn): ClientRecord {
  return { id: r.id as string, metadata: json(r.metadata), createdAt: r.created_at as number };
}

export function toSession(r: SessionRow, json: JsonColumn): SessionRecord {
  return {
    id: r.id,
    subject: r.subject,
    data: json(r.data),
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
  };
}

/**
 * Chains `records` after `head`, the audit sealing loop both stores run while holding their write lock:
 * each row's hash covers the previous row's hash and exactly what a reader will get back, so
 * verification recomputes the same hash. `texts[i]` is the JSON text to store for row i: the caller's
 * canonical text kept as is when given (parsing it gives `data` back), else `data` serialized here.
 */
export function chainAuditRows(
  records: AuditInput[],
  head: { seq: number; hash: string } | undefined,
  seal: AuditSealer,
): { rows: AuditRow[]; texts: string[] } {
  let seq = head?.seq ?? 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  const rows: AuditRow[] = [];
  const texts: string[] = [];
  for (const rec of records) {
    seq += 1;
    const given = rec.text;
    const text = given ?? JSON.stringify(rec.data);
    const data = given === undefined ? (JSON.parse(text) as Record<string, unknown>) : rec.data;
    const row = { seq, ts: rec.ts, type: rec.type, id: rec.id, data };
    const hash = given === undefined ? seal(prevHash, row) : seal(prevHash, row, given);
    rows.push({ ...row, prevHash, hash });
    texts.push(text);
    prevHash = hash;
  }
  return { rows, texts };
}
