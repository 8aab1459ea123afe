// Row shapes and row-to-record mappings both stores share: the tables and columns are the same in both
// dialects; only how a JSON column arrives differs (SQLite hands back text, PostgreSQL a parsed jsonb value).
import { GatehouseError } from '../lib/errors.js';
import type { ClientRecord, KeyPatch, SessionRecord } from './store.js';

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
