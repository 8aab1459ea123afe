// The SQLite schema as numbered migrations. Only ever append: a new migration adds tables, columns
// or indexes, never drops or renames, so a server on the previous release keeps working mid-upgrade.
import type { Migration } from '../migrations.js';

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    statements: [
      `CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      )`,
      `CREATE TABLE IF NOT EXISTS signing_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        state TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        sealed_private TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        activated_at INTEGER,
        retired_at INTEGER,
        remove_after INTEGER
      )`,
      `CREATE TABLE IF NOT EXISTS clients (
        id TEXT PRIMARY KEY,
        metadata TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      // No foreign key to clients: secrets may belong to clients defined in the config file.
      `CREATE TABLE IF NOT EXISTS client_secrets (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER
      )`,
      `CREATE INDEX IF NOT EXISTS client_secrets_client_id ON client_secrets (client_id)`,
      `CREATE TABLE IF NOT EXISTS oidc (
        model TEXT NOT NULL,
        id TEXT NOT NULL,
        payload TEXT NOT NULL,
        grant_id TEXT,
        uid TEXT,
        user_code TEXT,
        expires_at INTEGER,
        consumed_at INTEGER,
        PRIMARY KEY (model, id)
      )`,
      `CREATE INDEX IF NOT EXISTS oidc_grant_id ON oidc (grant_id)`,
      `CREATE INDEX IF NOT EXISTS oidc_uid ON oidc (model, uid)`,
      `CREATE INDEX IF NOT EXISTS oidc_user_code ON oidc (model, user_code)`,
      `CREATE INDEX IF NOT EXISTS oidc_expires_at ON oidc (expires_at)`,
      // seq is assigned by appendAudit (head + 1), never by SQLite, so a pruned log keeps its numbers.
      `CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        type TEXT NOT NULL,
        id TEXT NOT NULL,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      )`,
      `CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts)`,
      `CREATE INDEX IF NOT EXISTS audit_type ON audit (type, seq)`,
      `CREATE INDEX IF NOT EXISTS audit_id ON audit (id)`,
      `CREATE TABLE IF NOT EXISTS audit_checkpoints (
        seq INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        jws TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      // AUTOINCREMENT: ids are the change feed's cursor and must never be reused after a prune.
      `CREATE TABLE IF NOT EXISTS revocations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        issuer TEXT,
        reason TEXT,
        revoked_at INTEGER NOT NULL,
        expires_at INTEGER
      )`,
      `CREATE INDEX IF NOT EXISTS revocations_expires_at ON revocations (expires_at)`,
      `CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
      )`,
      `CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (subject)`,
      `CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        ref TEXT,
        at INTEGER NOT NULL
      )`,
      `CREATE INDEX IF NOT EXISTS changes_at ON changes (at)`,
    ],
  },
  {
    version: 2,
    name: 'single-use subject tokens',
    statements: [
      // One row per subject token exchanged under a single_use trust rule; the primary key is what
      // makes a second use (from any replica) lose the insert.
      `CREATE TABLE IF NOT EXISTS subject_token_uses (
        issuer TEXT NOT NULL,
        jti TEXT NOT NULL,
        used_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (issuer, jti)
      )`,
      `CREATE INDEX IF NOT EXISTS subject_token_uses_expires_at ON subject_token_uses (expires_at)`,
    ],
  },
  {
    version: 3,
    name: 'index sessions by expiry',
    statements: [
      // The housekeeping round deletes expired sessions every few minutes; without this index each
      // round scans the whole table.
      `CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at)`,
    ],
  },
];
