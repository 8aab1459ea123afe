// The PostgreSQL schema as numbered migrations. Only ever append: a new migration adds tables, columns
// or indexes, never drops or renames, so a replica on the previous release keeps working mid-upgrade.
import type { Migration } from '../migrations.js';

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
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
        public_jwk JSONB NOT NULL,
        sealed_private TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        activated_at BIGINT,
        retired_at BIGINT,
        remove_after BIGINT
      )`,
      `CREATE TABLE IF NOT EXISTS clients (
        id TEXT PRIMARY KEY,
        metadata JSONB NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      // No foreign key to clients: secrets may belong to clients defined in the config file.
      `CREATE TABLE IF NOT EXISTS client_secrets (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT
      )`,
      `CREATE INDEX IF NOT EXISTS client_secrets_client_id ON client_secrets (client_id)`,
      `CREATE TABLE IF NOT EXISTS oidc (
        model TEXT NOT NULL,
        id TEXT NOT NULL,
        payload JSONB NOT NULL,
        grant_id TEXT,
        uid TEXT,
        user_code TEXT,
        expires_at BIGINT,
        consumed_at BIGINT,
        PRIMARY KEY (model, id)
      )`,
      `CREATE INDEX IF NOT EXISTS oidc_grant_id ON oidc (grant_id)`,
      `CREATE INDEX IF NOT EXISTS oidc_uid ON oidc (model, uid)`,
      `CREATE INDEX IF NOT EXISTS oidc_user_code ON oidc (model, user_code)`,
      `CREATE INDEX IF NOT EXISTS oidc_expires_at ON oidc (expires_at)`,
      // seq is assigned by appendAudit (head + 1) under a lock, never by a sequence, so the chain is
      // gapless and a pruned log keeps its numbers. data is JSON, not JSONB: JSONB reorders keys, and
      // the text a reader gets back must be the text the sealer hashed.
      `CREATE TABLE IF NOT EXISTS audit (
        seq BIGINT PRIMARY KEY,
        ts BIGINT NOT NULL,
        type TEXT NOT NULL,
        id TEXT NOT NULL,
        data JSON NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      )`,
      `CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts)`,
      `CREATE INDEX IF NOT EXISTS audit_type ON audit (type, seq)`,
      `CREATE INDEX IF NOT EXISTS audit_id ON audit (id)`,
      `CREATE TABLE IF NOT EXISTS audit_checkpoints (
        seq BIGINT PRIMARY KEY,
        hash TEXT NOT NULL,
        jws TEXT NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      // A sequence never hands out an id twice, so ids stay a valid cursor after a prune.
      `CREATE TABLE IF NOT EXISTS revocations (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        issuer TEXT,
        reason TEXT,
        revoked_at BIGINT NOT NULL,
        expires_at BIGINT
      )`,
      `CREATE INDEX IF NOT EXISTS revocations_expires_at ON revocations (expires_at)`,
      `CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        data JSONB NOT NULL,
        created_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT
      )`,
      `CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (subject)`,
      `CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at BIGINT NOT NULL
      )`,
      `CREATE TABLE IF NOT EXISTS changes (
        seq BIGSERIAL PRIMARY KEY,
        topic TEXT NOT NULL,
        ref TEXT,
        at BIGINT NOT NULL
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
        used_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
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
      // round scans the whole table. A plain CREATE INDEX (not CONCURRENTLY, which cannot run inside
      // the migration transaction) holds a write lock on sessions while it builds: brief at the sizes
      // sessions reach, and docs/scaling.md says so for rolling upgrades.
      `CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at)`,
    ],
  },
];
