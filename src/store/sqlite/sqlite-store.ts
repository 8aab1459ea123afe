// The embedded store: one SQLite file in WAL mode that a running server and CLI admin commands share.
// better-sqlite3 is synchronous; every method still returns a promise so callers see one Store contract.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type {
  AuditCheckpoint,
  AuditInput,
  AuditQuery,
  AuditRow,
  AuditSealer,
  Change,
  ChangeTopic,
  ClientRecord,
  KeyPatch,
  KeyRecord,
  OidcPayload,
  RevocationInput,
  RevocationRecord,
  SecretRecord,
  SessionRecord,
  Store,
  SubjectTokenUseInput,
} from '../store.js';
import { GatehouseError } from '../../lib/errors.js';
import { KEY_PATCH_COLUMNS, notFound, stringOrNull, toClient, toSession } from '../rows.js';
import type { JsonColumn, Row, SessionRow } from '../rows.js';
import { checkMigrations, latestVersion, pendingMigrations } from '../migrations.js';
import { SQLITE_MIGRATIONS } from './schema.js';
import { ChangeFeed } from './change-feed.js';
import { closedError, toStoreError } from './errors.js';
import { sealAuditRow } from '../../audit/seal.js';
import { appendAuditRows } from './audit-append.js';
import { AuditWriter } from './audit-writer.js';

export interface SqliteStoreOptions {
  /** Database file; parent directories are created. `:memory:` for a throwaway store. */
  path: string;
  /** How long a write waits for another process's lock before failing (default 5000 ms). */
  busyTimeoutMs?: number;
  /** How often watchers look for changes made by other processes (default 200 ms). */
  pollIntervalMs?: number;
  /** How long change-feed rows are kept (default 5 minutes); the feed is a signal, not a history. */
  changeRetentionMs?: number;
  /** The clock for expiry checks and change timestamps (default Date.now). */
  now?: () => number;
  /**
   * Commit audit appends on a worker thread with its own connection (default true for a file), so
   * their fsync does not block the event loop. Durability is the same either way.
   */
  auditThread?: boolean;
}

/** At most this many change rows are kept, whatever their age. */
const MAX_CHANGE_ROWS = 10_000;
/** Pruning the change table runs at most this often. */
const CHANGE_PRUNE_EVERY_MS = 30_000;

/**
 * Feeds of every open store in this process, by file: a publish tells them all at once instead of
 * leaving instances in the same process to their next poll.
 */
const feedsByPath = new Map<string, Set<ChangeFeed>>();

interface KeyRow {
  kid: string;
  alg: KeyRecord['alg'];
  state: KeyRecord['state'];
  public_jwk: string;
  sealed_private: string;
  created_at: number;
  activated_at: number | null;
  retired_at: number | null;
  remove_after: number | null;
}
interface SecretRow {
  id: string;
  client_id: string;
  hash: string;
  created_at: number;
  expires_at: number | null;
}
interface AuditDbRow {
  seq: number;
  ts: number;
  type: string;
  id: string;
  data: string;
  prev_hash: string;
  hash: string;
}
interface RevocationRow {
  id: number;
  kind: RevocationRecord['kind'];
  value: string;
  issuer: string | null;
  reason: string | null;
  revoked_at: number;
  expires_at: number | null;
}
interface ChangeRow {
  seq: number;
  topic: ChangeTopic;
  ref: string | null;
  at: number;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #path: string;
  readonly #now: () => number;
  readonly #changeRetentionMs: number;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #feed: ChangeFeed;
  readonly #busyTimeoutMs: number;
  #auditThread: boolean;
  #auditWriter: AuditWriter | undefined;
  #closed = false;
  #lastChangePrune = 0;

  constructor(options: SqliteStoreOptions) {
    if (typeof options?.path !== 'string' || options.path === '') {
      throw new TypeError('SqliteStore needs a path (a file, or ":memory:")');
    }
    checkMigrations(SQLITE_MIGRATIONS);
    const memory = options.path === ':memory:';
    this.#path = memory ? options.path : resolve(options.path);
    this.#now = options.now ?? Date.now;
    this.#changeRetentionMs = options.changeRetentionMs ?? 5 * 60_000;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.#auditThread = options.auditThread ?? true;
    try {
      if (!memory) mkdirSync(dirname(this.#path), { recursive: true });
      // `timeout` is SQLite's busy_timeout: a write waits this long for another process's lock.
      this.#db = new Database(this.#path, { timeout: this.#busyTimeoutMs });
      // WAL lets readers (the server) and a writer (a CLI command) work at once. Setting it needs a
      // short exclusive lock, which the busy timeout above waits for when processes start together.
      this.#db.pragma('journal_mode = WAL');
      // NORMAL is safe under WAL (no corruption, at worst the last commits lost on power failure);
      // appendAudit raises it to FULL for its own commit because audit records must be durable.
      this.#db.pragma('synchronous = NORMAL');
    } catch (e) {
      const err = toStoreError('open', e);
      throw err instanceof GatehouseError
        ? err
        : new GatehouseError(
            'ERR_STORE_UNAVAILABLE',
            `cannot open the SQLite store at ${this.#path}`,
            { hint: 'check that the data directory can be created and written' },
            { cause: e },
          );
    }
    this.#feed = new ChangeFeed(
      {
        read: (afterSeq) => this.#readChanges(afterSeq),
        lastSeq: () =>
          (this.#stmt('SELECT COALESCE(MAX(seq), 0) AS seq FROM changes').get() as { seq: number }).seq,
      },
      options.pollIntervalMs ?? 200,
    );
    if (!memory) {
      const feeds = feedsByPath.get(this.#path) ?? new Set<ChangeFeed>();
      feeds.add(this.#feed);
      feedsByPath.set(this.#path, feeds);
    }
  }

  /** True once canonical audit appends are committed on the writer thread (diagnostics, tests). */
  get auditOnThread(): boolean {
    return this.#auditWriter?.usable ?? false;
  }

  /** The resolved file path (or `:memory:`). */
  get path(): string {
    return this.#path;
  }

  // ---- lifecycle ---------------------------------------------------------------------------------

  async init(): Promise<void> {
    this.#run('init', () => {
      // IMMEDIATE takes the write lock before reading what is applied, so when two processes start
      // together the second waits, then sees the first one's work and applies nothing twice.
      this.#db
        .transaction(() => {
          this.#db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
          )`);
          const rows = this.#db.prepare('SELECT version FROM schema_migrations').all() as {
            version: number;
          }[];
          const applied = new Set(rows.map((r) => r.version));
          for (const m of pendingMigrations(SQLITE_MIGRATIONS, applied)) {
            try {
              for (const sql of m.statements) this.#db.exec(sql);
            } catch (e) {
              throw new GatehouseError(
                'ERR_STORE_MIGRATION',
                `store migration ${m.version} (${m.name}) failed`,
                { version: m.version },
                { cause: e },
              );
            }
            this.#db
              .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
              .run(m.version, m.name, this.#now());
          }
        })
        .immediate();
    });
  }

  /** Versions recorded in schema_migrations, ascending (may exceed what this binary knows). */
  async appliedMigrations(): Promise<number[]> {
    return this.#run('appliedMigrations', () =>
      (
        this.#stmt('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]
      ).map((r) => r.version),
    );
  }

  /** The newest schema version this binary knows. */
  static get schemaVersion(): number {
    return latestVersion(SQLITE_MIGRATIONS);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#feed.close();
    const feeds = feedsByPath.get(this.#path);
    feeds?.delete(this.#feed);
    if (feeds?.size === 0) feedsByPath.delete(this.#path);
    // Appends already handed to the writer thread are committed (and answered) before it exits.
    await this.#auditWriter?.close();
    this.#statements.clear();
    try {
      this.#db.close();
    } catch (e) {
      throw toStoreError('close', e);
    }
  }

  async ping(): Promise<void> {
    this.#run('ping', () => this.#stmt('SELECT 1').get());
  }

  // ---- meta --------------------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    return this.#run('getMeta', () => {
      const row = this.#stmt('SELECT value FROM meta WHERE key = ?').get(key) as
        { value: string } | undefined;
      return row?.value;
    });
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.#run('setMeta', () => {
      this.#stmt(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ).run(key, value);
    });
  }

  async initMeta(key: string, value: string): Promise<string> {
    return this.#run('initMeta', () =>
      this.#db
        .transaction(() => {
          this.#stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING').run(
            key,
            value,
          );
          return (this.#stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string }).value;
        })
        .immediate(),
    );
  }

  // ---- signing keys ------------------------------------------------------------------------------

  async listKeys(): Promise<KeyRecord[]> {
    return this.#run('listKeys', () =>
      (this.#stmt('SELECT * FROM signing_keys ORDER BY created_at, kid').all() as KeyRow[]).map((r) => ({
        kid: r.kid,
        alg: r.alg,
        state: r.state,
        publicJwk: parseJson(r.public_jwk),
        sealedPrivate: r.sealed_private,
        createdAt: r.created_at,
        activatedAt: r.activated_at,
        retiredAt: r.retired_at,
        removeAfter: r.remove_after,
      })),
    );
  }

  async insertKey(key: KeyRecord): Promise<void> {
    this.#run('insertKey', () => {
      this.#stmt(
        `INSERT INTO signing_keys (kid, alg, state, public_jwk, sealed_private, created_at, activated_at,
           retired_at, remove_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        key.kid,
        key.alg,
        key.state,
        JSON.stringify(key.publicJwk),
        key.sealedPrivate,
        key.createdAt,
        key.activatedAt,
        key.retiredAt,
        key.removeAfter,
      );
    });
  }

  async updateKey(kid: string, patch: KeyPatch): Promise<void> {
    this.#run('updateKey', () => {
      const sets: string[] = [];
      const values: unknown[] = [];
      for (const [field, column] of Object.entries(KEY_PATCH_COLUMNS)) {
        const v = patch[field as keyof KeyPatch];
        if (v === undefined) continue;
        sets.push(`${column} = ?`);
        values.push(v);
      }
      const changed =
        sets.length === 0
          ? this.#stmt('SELECT 1 FROM signing_keys WHERE kid = ?').all(kid).length
          : this.#db.prepare(`UPDATE signing_keys SET ${sets.join(', ')} WHERE kid = ?`).run(...values, kid)
              .changes;
      if (changed === 0) throw notFound('signing key', kid);
    });
  }

  async deleteKey(kid: string): Promise<void> {
    this.#run('deleteKey', () => {
      this.#stmt('DELETE FROM signing_keys WHERE kid = ?').run(kid);
    });
  }

  // ---- clients and secrets -----------------------------------------------------------------------

  async getClient(id: string): Promise<ClientRecord | undefined> {
    return this.#run('getClient', () => {
      const r = this.#stmt('SELECT * FROM clients WHERE id = ?').get(id) as Row | undefined;
      return r && toClient(r, fromText);
    });
  }

  async listClients(): Promise<ClientRecord[]> {
    return this.#run('listClients', () =>
      (this.#stmt('SELECT * FROM clients ORDER BY created_at, id').all() as Row[]).map((r) =>
        toClient(r, fromText),
      ),
    );
  }

  async upsertClient(client: ClientRecord): Promise<void> {
    this.#run('upsertClient', () => {
      this.#stmt(
        `INSERT INTO clients (id, metadata, created_at) VALUES (?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET metadata = excluded.metadata, created_at = excluded.created_at`,
      ).run(client.id, JSON.stringify(client.metadata), client.createdAt);
    });
  }

  async deleteClient(id: string): Promise<void> {
    this.#run('deleteClient', () => {
      // Its secrets go with it: a client re-created under the same id must not inherit old secrets.
      this.#db.transaction(() => {
        this.#stmt('DELETE FROM client_secrets WHERE client_id = ?').run(id);
        this.#stmt('DELETE FROM clients WHERE id = ?').run(id);
      })();
    });
  }

  async listSecrets(clientId?: string): Promise<SecretRecord[]> {
    return this.#run('listSecrets', () => {
      const rows = (
        clientId === undefined
          ? this.#stmt('SELECT * FROM client_secrets ORDER BY created_at, id').all()
          : this.#stmt('SELECT * FROM client_secrets WHERE client_id = ? ORDER BY created_at, id').all(
              clientId,
            )
      ) as SecretRow[];
      return rows.map((r) => ({
        id: r.id,
        clientId: r.client_id,
        hash: r.hash,
        createdAt: r.created_at,
        expiresAt: r.expires_at,
      }));
    });
  }

  async insertSecret(secret: SecretRecord): Promise<void> {
    this.#run('insertSecret', () => {
      this.#stmt(
        'INSERT INTO client_secrets (id, client_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
      ).run(secret.id, secret.clientId, secret.hash, secret.createdAt, secret.expiresAt);
    });
  }

  async expireSecret(id: string, expiresAt: number): Promise<void> {
    this.#run('expireSecret', () => {
      const r = this.#stmt('UPDATE client_secrets SET expires_at = ? WHERE id = ?').run(expiresAt, id);
      if (r.changes === 0) throw notFound('client secret', id);
    });
  }

  async deleteSecret(id: string): Promise<void> {
    this.#run('deleteSecret', () => {
      this.#stmt('DELETE FROM client_secrets WHERE id = ?').run(id);
    });
  }

  // ---- oidc-provider adapter ---------------------------------------------------------------------

  async oidcUpsert(model: string, id: string, payload: OidcPayload, expiresAt: number | null): Promise<void> {
    this.#run('oidcUpsert', () => {
      // A re-save keeps consumed_at: saving a model again must not make a used code usable again.
      this.#stmt(
        `INSERT INTO oidc (model, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
         ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id,
           uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at`,
      ).run(
        model,
        id,
        JSON.stringify(payload),
        stringOrNull(payload.grantId),
        stringOrNull(payload.uid),
        stringOrNull(payload.userCode),
        expiresAt,
      );
    });
  }

  async oidcFind(model: string, id: string): Promise<OidcPayload | undefined> {
    return this.#run('oidcFind', () =>
      this.#oidcOne('SELECT payload, consumed_at FROM oidc WHERE model = ? AND id = ?', model, id),
    );
  }

  async oidcFindByUid(model: string, uid: string): Promise<OidcPayload | undefined> {
    return this.#run('oidcFindByUid', () =>
      this.#oidcOne('SELECT payload, consumed_at FROM oidc WHERE model = ? AND uid = ?', model, uid),
    );
  }

  async oidcFindByUserCode(model: string, userCode: string): Promise<OidcPayload | undefined> {
    return this.#run('oidcFindByUserCode', () =>
      this.#oidcOne(
        'SELECT payload, consumed_at FROM oidc WHERE model = ? AND user_code = ?',
        model,
        userCode,
      ),
    );
  }

  async oidcConsume(model: string, id: string, at: number): Promise<boolean> {
    return this.#run('oidcConsume', () => {
      // The first consumption wins: replaying a code must keep showing when it was first used.
      const r = this.#stmt(
        'UPDATE oidc SET consumed_at = ? WHERE model = ? AND id = ? AND consumed_at IS NULL',
      ).run(at, model, id);
      return r.changes > 0;
    });
  }

  async oidcDestroy(model: string, id: string): Promise<void> {
    this.#run('oidcDestroy', () => {
      this.#stmt('DELETE FROM oidc WHERE model = ? AND id = ?').run(model, id);
    });
  }

  async oidcRevokeByGrantId(grantId: string): Promise<void> {
    this.#run('oidcRevokeByGrantId', () => {
      this.#stmt('DELETE FROM oidc WHERE grant_id = ?').run(grantId);
    });
  }

  /** Removes expired adapter rows (housekeeping; expired rows are already invisible to finds). */
  async oidcPruneExpired(now: number = this.#now()): Promise<number> {
    return this.#run(
      'oidcPruneExpired',
      () => this.#stmt('DELETE FROM oidc WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now).changes,
    );
  }

  #oidcOne(sql: string, model: string, key: string): OidcPayload | undefined {
    // Expired rows are filtered here rather than trusted to a sweeper: expiry holds even if none runs.
    const r = this.#stmt(`${sql} AND (expires_at IS NULL OR expires_at > ?) LIMIT 1`).get(
      model,
      key,
      this.#now(),
    ) as { payload: string; consumed_at: number | null } | undefined;
    if (!r) return undefined;
    const payload = parseJson(r.payload) as OidcPayload;
    if (r.consumed_at !== null) payload.consumed = r.consumed_at;
    return payload;
  }

  // ---- audit -------------------------------------------------------------------------------------

  async appendAudit(records: AuditInput[], seal: AuditSealer): Promise<AuditRow[]> {
    if (this.#closed) throw closedError('appendAudit');
    if (records.length === 0) return [];
    // Only appends sealed with the canonical `sealAuditRow` can go to the writer thread: a sealer is a
    // function and cannot cross threads, so the thread imports that same function itself. Any other
    // sealer (tests, tools) is run here, on this connection, as before — same transaction, same sync.
    // The thread is used even for a lone append: its round trip costs ~0.1 ms against a 0.3–4 ms
    // fsync, and the store cannot tell "idle" from "busy" (AuditLog sends one batch at a time either way).
    const writer = seal === sealAuditRow ? this.#writer() : undefined;
    if (writer?.usable) {
      try {
        return await writer.append(records);
      } catch (e) {
        throw toStoreError('appendAudit', e);
      }
    }
    return this.#run('appendAudit', () => {
      // Under WAL, NORMAL syncs only at checkpoints; FULL for this commit fsyncs the WAL (and so every
      // earlier commit in it) before the promise resolves, so an acknowledged audit record survives.
      this.#db.pragma('synchronous = FULL');
      try {
        return appendAuditRows(this.#db, (sql) => this.#stmt(sql), records, seal);
      } finally {
        this.#db.pragma('synchronous = NORMAL');
      }
    });
  }

  /**
   * The audit writer thread, started on the first canonical append (so one-shot CLI commands that
   * never append never start it). Until it reports ready, appends run on this connection; a file
   * store only, since a `:memory:` database cannot be shared with another connection.
   */
  #writer(): AuditWriter | undefined {
    if (this.#path === ':memory:' || !this.#auditThread) return undefined;
    try {
      this.#auditWriter ??= new AuditWriter({ path: this.#path, busyTimeoutMs: this.#busyTimeoutMs });
    } catch {
      // No thread can be started here (an unusual loader, a sandbox): appends stay on this connection.
      this.#auditThread = false;
    }
    return this.#auditWriter;
  }

  async auditHead(): Promise<{ seq: number; hash: string } | undefined> {
    return this.#run('auditHead', () => this.#auditHead());
  }

  async queryAudit(q: AuditQuery): Promise<AuditRow[]> {
    return this.#run('queryAudit', () => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (q.afterSeq !== undefined) {
        where.push('seq > ?');
        params.push(q.afterSeq);
      }
      if (q.since !== undefined) {
        where.push('ts >= ?');
        params.push(q.since);
      }
      if (q.type !== undefined) {
        where.push('type = ?');
        params.push(q.type);
      }
      if (q.id !== undefined) {
        where.push('id = ?');
        params.push(q.id);
      }
      let sql = 'SELECT * FROM audit';
      if (where.length) sql += ` WHERE ${where.join(' AND ')}`;
      sql += ' ORDER BY seq';
      if (q.limit !== undefined) {
        sql += ' LIMIT ?';
        params.push(q.limit);
      }
      return (this.#stmt(sql).all(...params) as AuditDbRow[]).map((r) => ({
        seq: r.seq,
        ts: r.ts,
        type: r.type,
        id: r.id,
        data: parseJson(r.data),
        prevHash: r.prev_hash,
        hash: r.hash,
      }));
    });
  }

  async pruneAudit(beforeSeq: number): Promise<number> {
    return this.#run('pruneAudit', () =>
      this.#db
        .transaction(() => {
          // The head row is always kept: it is what the next append chains from.
          const head = this.#auditHead();
          if (!head) return 0;
          return this.#stmt('DELETE FROM audit WHERE seq < ?').run(Math.min(beforeSeq, head.seq)).changes;
        })
        .immediate(),
    );
  }

  async insertCheckpoint(cp: AuditCheckpoint): Promise<void> {
    this.#run('insertCheckpoint', () => {
      this.#stmt('INSERT INTO audit_checkpoints (seq, hash, jws, created_at) VALUES (?, ?, ?, ?)').run(
        cp.seq,
        cp.hash,
        cp.jws,
        cp.createdAt,
      );
    });
  }

  async listCheckpoints(): Promise<AuditCheckpoint[]> {
    return this.#run('listCheckpoints', () =>
      (
        this.#stmt('SELECT * FROM audit_checkpoints ORDER BY seq').all() as {
          seq: number;
          hash: string;
          jws: string;
          created_at: number;
        }[]
      ).map((r) => ({ seq: r.seq, hash: r.hash, jws: r.jws, createdAt: r.created_at })),
    );
  }

  #auditHead(): { seq: number; hash: string } | undefined {
    return this.#stmt('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1').get() as
      { seq: number; hash: string } | undefined;
  }

  // ---- revocations -------------------------------------------------------------------------------

  async insertRevocation(r: RevocationInput): Promise<RevocationRecord> {
    return this.#run('insertRevocation', () => {
      const res = this.#stmt(
        `INSERT INTO revocations (kind, value, issuer, reason, revoked_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ).run(r.kind, r.value, r.issuer, r.reason, r.revokedAt, r.expiresAt);
      return { id: Number(res.lastInsertRowid), ...r };
    });
  }

  async listRevocations(afterId = 0): Promise<RevocationRecord[]> {
    return this.#run('listRevocations', () =>
      (this.#stmt('SELECT * FROM revocations WHERE id > ? ORDER BY id').all(afterId) as RevocationRow[]).map(
        (r) => ({
          id: r.id,
          kind: r.kind,
          value: r.value,
          issuer: r.issuer,
          reason: r.reason,
          revokedAt: r.revoked_at,
          expiresAt: r.expires_at,
        }),
      ),
    );
  }

  async pruneRevocations(now: number): Promise<number> {
    return this.#run(
      'pruneRevocations',
      () =>
        this.#stmt('DELETE FROM revocations WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now)
          .changes,
    );
  }

  // ---- single-use subject tokens -----------------------------------------------------------------

  async consumeSubjectToken(use: SubjectTokenUseInput, now: number): Promise<boolean> {
    return this.#run('consumeSubjectToken', () => {
      // One statement, so two processes recording the same token cannot both insert; a record that
      // has expired (not yet pruned) is taken over, as the token it stood for can no longer be used.
      const r = this.#stmt(
        `INSERT INTO subject_token_uses (issuer, jti, used_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (issuer, jti) DO UPDATE SET used_at = excluded.used_at, expires_at = excluded.expires_at
         WHERE subject_token_uses.expires_at <= ?`,
      ).run(use.issuer, use.jti, now, use.expiresAt, now);
      return r.changes === 1;
    });
  }

  async pruneSubjectTokenUses(now: number): Promise<number> {
    return this.#run(
      'pruneSubjectTokenUses',
      () => this.#stmt('DELETE FROM subject_token_uses WHERE expires_at <= ?').run(now).changes,
    );
  }

  // ---- sessions ----------------------------------------------------------------------------------

  async getSession(id: string): Promise<SessionRecord | undefined> {
    return this.#run('getSession', () => {
      const r = this.#stmt('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
      return r && toSession(r, fromText);
    });
  }

  async upsertSession(s: SessionRecord): Promise<void> {
    this.#run('upsertSession', () => {
      // COALESCE keeps a revocation: a request that touches a session with a copy read before the
      // revocation must not bring the session back to life.
      this.#stmt(
        `INSERT INTO sessions (id, subject, data, created_at, last_seen_at, expires_at, revoked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, data = excluded.data,
           created_at = excluded.created_at, last_seen_at = excluded.last_seen_at,
           expires_at = excluded.expires_at, revoked_at = COALESCE(sessions.revoked_at, excluded.revoked_at)`,
      ).run(s.id, s.subject, JSON.stringify(s.data), s.createdAt, s.lastSeenAt, s.expiresAt, s.revokedAt);
    });
  }

  async listSessions(subject?: string): Promise<SessionRecord[]> {
    return this.#run('listSessions', () =>
      (
        (subject === undefined
          ? this.#stmt('SELECT * FROM sessions ORDER BY created_at, id').all()
          : this.#stmt('SELECT * FROM sessions WHERE subject = ? ORDER BY created_at, id').all(
              subject,
            )) as SessionRow[]
      ).map((r) => toSession(r, fromText)),
    );
  }

  async revokeSessions(filter: { id?: string; subject?: string }, at: number): Promise<number> {
    if (filter.id === undefined && filter.subject === undefined) {
      // Revoking every session is never what an empty filter means.
      throw new TypeError('revokeSessions needs an id or a subject');
    }
    return this.#run('revokeSessions', () => {
      const where: string[] = ['revoked_at IS NULL'];
      const params: unknown[] = [at];
      if (filter.id !== undefined) {
        where.push('id = ?');
        params.push(filter.id);
      }
      if (filter.subject !== undefined) {
        where.push('subject = ?');
        params.push(filter.subject);
      }
      return this.#stmt(`UPDATE sessions SET revoked_at = ? WHERE ${where.join(' AND ')}`).run(...params)
        .changes;
    });
  }

  async deleteSession(id: string): Promise<void> {
    this.#run('deleteSession', () => {
      this.#stmt('DELETE FROM sessions WHERE id = ?').run(id);
    });
  }

  async pruneSessions(now: number): Promise<number> {
    return this.#run(
      'pruneSessions',
      () => this.#stmt('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes,
    );
  }

  // ---- leases ------------------------------------------------------------------------------------

  async tryLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    return this.#run('tryLease', () => {
      // One statement, so taking a free or expired lease and renewing one's own are atomic.
      const r = this.#stmt(
        `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
      ).run(name, holder, now + ttlMs, now);
      return r.changes === 1;
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    this.#run('releaseLease', () => {
      this.#stmt('DELETE FROM leases WHERE name = ? AND holder = ?').run(name, holder);
    });
  }

  // ---- change feed -------------------------------------------------------------------------------

  async publishChange(topic: ChangeTopic, ref: string | null = null): Promise<void> {
    this.#run('publishChange', () => {
      const at = this.#now();
      this.#stmt('INSERT INTO changes (topic, ref, at) VALUES (?, ?, ?)').run(topic, ref, at);
      if (at - this.#lastChangePrune >= CHANGE_PRUNE_EVERY_MS) {
        this.#lastChangePrune = at;
        this.#stmt('DELETE FROM changes WHERE at < ? OR seq <= (SELECT MAX(seq) FROM changes) - ?').run(
          at - this.#changeRetentionMs,
          MAX_CHANGE_ROWS,
        );
      }
    });
    // Watchers in this process hear of it now; other processes find it on their next poll.
    for (const feed of feedsByPath.get(this.#path) ?? [this.#feed]) feed.deliver();
  }

  async readChanges(afterSeq: number): Promise<Change[]> {
    return this.#run('readChanges', () => this.#readChanges(afterSeq));
  }

  watchChanges(onChange: (c: Change) => void): () => void {
    return this.#run('watchChanges', () => this.#feed.watch(onChange));
  }

  #readChanges(afterSeq: number): Change[] {
    if (this.#closed) throw closedError('readChanges');
    return (
      this.#stmt('SELECT seq, topic, ref, at FROM changes WHERE seq > ? ORDER BY seq').all(
        afterSeq,
      ) as ChangeRow[]
    ).map((r) => ({ seq: r.seq, topic: r.topic, ref: r.ref, at: r.at }));
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  /** Runs one operation: refuses after close, and turns SQLite's errors into ours. */
  #run<T>(op: string, fn: () => T): T {
    if (this.#closed) throw closedError(op);
    try {
      return fn();
    } catch (e) {
      throw toStoreError(op, e);
    }
  }

  /** Prepared statements are cached: the same few statements run on every request. */
  #stmt(sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }
}

function parseJson(text: string): Record<string, unknown> {
  return JSON.parse(text) as Record<string, unknown>;
}

/** SQLite keeps JSON columns as text. */
const fromText: JsonColumn = (value) => parseJson(value as string);
