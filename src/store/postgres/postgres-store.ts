// The shared store for several replicas: PostgreSQL through `postgres` (porsager). Migrations, the audit
// chain and the change feed are serialised with advisory locks, and the feed reaches other replicas by
// LISTEN/NOTIFY with a catch-up read on every (re)connect and a slow poll as a safety net.
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
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
import { chainAuditRows, KEY_PATCH_COLUMNS, notFound, stringOrNull, toClient, toSession } from '../rows.js';
import type { JsonColumn, Row, SessionRow } from '../rows.js';
import { checkMigrations, latestVersion, pendingMigrations } from '../migrations.js';
import { POSTGRES_MIGRATIONS } from './schema.js';
import { closedError, describeServer, toStoreError } from './errors.js';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`; the password never appears in an error. */
  url: string;
  /** Connections in the pool (default 10); LISTEN uses one more of its own. */
  pool?: number;
  /** The clock for expiry checks and change timestamps (default Date.now). */
  now?: () => number;
  /** Told when the change feed cannot listen or read (it keeps retrying); default: ignored. */
  onNotifyError?: (e: unknown) => void;
  /** How often watchers also poll, whatever NOTIFY says (default 2000 ms). */
  pollIntervalMs?: number;
  /** How long change-feed rows are kept (default 5 minutes); the feed is a signal, not a history. */
  changeRetentionMs?: number;
  /** How long ping() waits for `select 1` (default 2000 ms). */
  pingTimeoutMs?: number;
}

/** The NOTIFY channel of the change feed; the payload is the new seq (or a heartbeat). */
export const CHANGE_CHANNEL = 'gatehouse_changes';

/** First key of every advisory lock Gatehouse takes ("Gate"), so it never collides with others'. */
const LOCK_SPACE = 0x47617465;
const LOCK = { migrations: 1, audit: 2, changes: 3, revocations: 4 } as const;

const MAX_CHANGE_ROWS = 10_000;
const CHANGE_PRUNE_EVERY_MS = 30_000;
const HEARTBEAT_PREFIX = 'hb:';

type Sql = postgres.Sql<{ bigint: number }>;
type Tx = postgres.TransactionSql<{ bigint: number }>;

interface Watcher {
  /** Highest seq delivered; -1 until the starting point is read. */
  cursor: number;
  ready: Promise<void>;
  onChange: (c: Change) => void;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #sql: Sql;
  readonly #where: string;
  readonly #now: () => number;
  readonly #onNotifyError: (e: unknown) => void;
  readonly #pollMs: number;
  readonly #changeRetentionMs: number;
  readonly #pingTimeoutMs: number;
  readonly #watchers = new Set<Watcher>();
  #closed = false;
  #lastChangePrune = 0;
  #timer: NodeJS.Timeout | undefined;
  #listen: Promise<postgres.ListenMeta | undefined> | undefined;
  /** The heartbeat sent on the last tick, cleared when this instance hears it back. */
  #heartbeat: string | undefined;
  #deliverPending: Promise<void> | undefined;
  #deliverRunning: Promise<void> = Promise.resolve();

  constructor(options: PostgresStoreOptions) {
    if (typeof options?.url !== 'string' || options.url === '') {
      throw new TypeError('PostgresStore needs a url (postgres://user@host:port/database)');
    }
    const pool = options.pool ?? 10;
    if (!Number.isInteger(pool) || pool < 1)
      throw new TypeError('PostgresStore pool must be an integer >= 1');
    checkMigrations(POSTGRES_MIGRATIONS);
    this.#where = describeServer(options.url);
    this.#now = options.now ?? Date.now;
    this.#onNotifyError = options.onNotifyError ?? (() => {});
    this.#pollMs = options.pollIntervalMs ?? 2000;
    this.#changeRetentionMs = options.changeRetentionMs ?? 5 * 60_000;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 2000;
    this.#sql = postgres(options.url, {
      max: pool,
      connect_timeout: 5,
      // Connections are opened lazily; an idle pool shrinks back instead of holding slots forever.
      idle_timeout: 60,
      // "relation already exists, skipping" from CREATE … IF NOT EXISTS is not news.
      onnotice: () => {},
      connection: { application_name: 'gatehouse' },
      transform: { undefined: null },
      types: {
        // Epoch milliseconds and ids fit in a double (2^53); the driver's default is a string.
        bigint: {
          to: 20,
          from: [20],
          serialize: (x: number) => String(x),
          parse: (x: string) => Number(x),
        },
      },
    });
  }

  // ---- lifecycle ---------------------------------------------------------------------------------

  async init(): Promise<void> {
    await this.#run('init', () =>
      this.#sql.begin(async (tx) => {
        // Taken before anything else, so replicas starting together queue here and the later ones
        // find the work done; CREATE TABLE IF NOT EXISTS alone races in the system catalogs.
        await tx`SELECT pg_advisory_xact_lock(${LOCK_SPACE}::int, ${LOCK.migrations}::int)`;
        await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
          version INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          applied_at BIGINT NOT NULL
        )`;
        const rows = await tx<{ version: number }[]>`SELECT version FROM schema_migrations`;
        // Versions this binary does not know (a newer replica's) are left alone: they are additive.
        const applied = new Set(rows.map((r) => r.version));
        for (const m of pendingMigrations(POSTGRES_MIGRATIONS, applied)) {
          try {
            for (const statement of m.statements) await tx.unsafe(statement);
          } catch (e) {
            throw new GatehouseError(
              'ERR_STORE_MIGRATION',
              `store migration ${m.version} (${m.name}) failed`,
              { version: m.version },
              { cause: e },
            );
          }
          await tx`INSERT INTO schema_migrations (version, name, applied_at)
                   VALUES (${m.version}, ${m.name}, ${this.#now()})`;
        }
      }),
    );
  }

  /** Versions recorded in schema_migrations, ascending (may exceed what this binary knows). */
  async appliedMigrations(): Promise<number[]> {
    return this.#run('appliedMigrations', async () =>
      (await this.#sql<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`).map(
        (r) => r.version,
      ),
    );
  }

  /** The newest schema version this binary knows. */
  static get schemaVersion(): number {
    return latestVersion(POSTGRES_MIGRATIONS);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimer();
    this.#watchers.clear();
    // end() also ends the LISTEN connection; in-flight queries get a few seconds to finish.
    await this.#sql.end({ timeout: 5 });
  }

  async ping(): Promise<void> {
    await this.#run('ping', async () => {
      const query = this.#sql`SELECT 1`;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          query.cancel();
          reject(
            new GatehouseError(
              'ERR_STORE_UNAVAILABLE',
              `store ping: PostgreSQL at ${this.#where} did not answer within ${this.#pingTimeoutMs} ms`,
              { hint: 'check that PostgreSQL is running and reachable' },
            ),
          );
        }, this.#pingTimeoutMs);
      });
      try {
        await Promise.race([query, timeout]);
      } finally {
        clearTimeout(timer);
        // A cancelled or late query must not surface as an unhandled rejection.
        query.catch(() => {});
      }
    });
  }

  // ---- meta --------------------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    return this.#run('getMeta', async () => {
      const [row] = await this.#sql<{ value: string }[]>`SELECT value FROM meta WHERE key = ${key}`;
      return row?.value;
    });
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.#run(
      'setMeta',
      () => this.#sql`INSERT INTO meta (key, value) VALUES (${key}, ${value})
                      ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    );
  }

  async initMeta(key: string, value: string): Promise<string> {
    return this.#run('initMeta', async () => {
      // A concurrent insert of the same key waits for the first to commit, then does nothing; the
      // select (a fresh snapshot under READ COMMITTED) then sees the winner's value.
      await this.#sql`INSERT INTO meta (key, value) VALUES (${key}, ${value}) ON CONFLICT (key) DO NOTHING`;
      const [row] = await this.#sql<{ value: string }[]>`SELECT value FROM meta WHERE key = ${key}`;
      return row!.value;
    });
  }

  // ---- signing keys ------------------------------------------------------------------------------

  async listKeys(): Promise<KeyRecord[]> {
    return this.#run('listKeys', async () =>
      (await this.#sql<Row[]>`SELECT * FROM signing_keys ORDER BY created_at, kid COLLATE "C"`).map((r) => ({
        kid: r.kid as string,
        alg: r.alg as KeyRecord['alg'],
        state: r.state as KeyRecord['state'],
        publicJwk: r.public_jwk as Record<string, unknown>,
        sealedPrivate: r.sealed_private as string,
        createdAt: r.created_at as number,
        activatedAt: r.activated_at as number | null,
        retiredAt: r.retired_at as number | null,
        removeAfter: r.remove_after as number | null,
      })),
    );
  }

  async insertKey(key: KeyRecord): Promise<void> {
    await this.#run(
      'insertKey',
      () => this.#sql`INSERT INTO signing_keys (kid, alg, state, public_jwk, sealed_private, created_at,
                        activated_at, retired_at, remove_after)
                      VALUES (${key.kid}, ${key.alg}, ${key.state}, ${jsonb(key.publicJwk)}::text::jsonb,
                        ${key.sealedPrivate}, ${key.createdAt}, ${key.activatedAt}, ${key.retiredAt},
                        ${key.removeAfter})`,
    );
  }

  async updateKey(kid: string, patch: KeyPatch): Promise<void> {
    await this.#run('updateKey', async () => {
      const set: Record<string, string | number | null> = {};
      for (const [field, column] of Object.entries(KEY_PATCH_COLUMNS)) {
        const v = patch[field as keyof KeyPatch];
        if (v !== undefined) set[column] = v;
      }
      const columns = Object.keys(set);
      const result =
        columns.length === 0
          ? await this.#sql`SELECT 1 FROM signing_keys WHERE kid = ${kid}`
          : await this.#sql`UPDATE signing_keys SET ${this.#sql(set, columns)} WHERE kid = ${kid}`;
      if (result.count === 0) throw notFound('signing key', kid);
    });
  }

  async deleteKey(kid: string): Promise<void> {
    await this.#run('deleteKey', () => this.#sql`DELETE FROM signing_keys WHERE kid = ${kid}`);
  }

  // ---- clients and secrets -----------------------------------------------------------------------

  async getClient(id: string): Promise<ClientRecord | undefined> {
    return this.#run('getClient', async () => {
      const [r] = await this.#sql<Row[]>`SELECT * FROM clients WHERE id = ${id}`;
      return r && toClient(r, fromJsonb);
    });
  }

  async listClients(): Promise<ClientRecord[]> {
    return this.#run('listClients', async () =>
      (await this.#sql<Row[]>`SELECT * FROM clients ORDER BY created_at, id COLLATE "C"`).map((r) =>
        toClient(r, fromJsonb),
      ),
    );
  }

  async upsertClient(client: ClientRecord): Promise<void> {
    await this.#run(
      'upsertClient',
      () => this.#sql`INSERT INTO clients (id, metadata, created_at)
                      VALUES (${client.id}, ${jsonb(client.metadata)}::text::jsonb, ${client.createdAt})
                      ON CONFLICT (id) DO UPDATE SET metadata = excluded.metadata,
                        created_at = excluded.created_at`,
    );
  }

  async deleteClient(id: string): Promise<void> {
    await this.#run('deleteClient', () =>
      // Its secrets go with it: a client re-created under the same id must not inherit old secrets.
      this.#sql.begin(async (tx) => {
        await tx`DELETE FROM client_secrets WHERE client_id = ${id}`;
        await tx`DELETE FROM clients WHERE id = ${id}`;
      }),
    );
  }

  async listSecrets(clientId?: string): Promise<SecretRecord[]> {
    return this.#run('listSecrets', async () => {
      const rows =
        clientId === undefined
          ? await this.#sql<Row[]>`SELECT * FROM client_secrets ORDER BY created_at, id COLLATE "C"`
          : await this.#sql<Row[]>`SELECT * FROM client_secrets WHERE client_id = ${clientId}
                                   ORDER BY created_at, id COLLATE "C"`;
      return rows.map((r) => ({
        id: r.id as string,
        clientId: r.client_id as string,
        hash: r.hash as string,
        createdAt: r.created_at as number,
        expiresAt: r.expires_at as number | null,
      }));
    });
  }

  async insertSecret(secret: SecretRecord): Promise<void> {
    await this.#run(
      'insertSecret',
      () => this.#sql`INSERT INTO client_secrets (id, client_id, hash, created_at, expires_at)
                      VALUES (${secret.id}, ${secret.clientId}, ${secret.hash}, ${secret.createdAt},
                        ${secret.expiresAt})`,
    );
  }

  async expireSecret(id: string, expiresAt: number): Promise<void> {
    await this.#run('expireSecret', async () => {
      const r = await this.#sql`UPDATE client_secrets SET expires_at = ${expiresAt} WHERE id = ${id}`;
      if (r.count === 0) throw notFound('client secret', id);
    });
  }

  async deleteSecret(id: string): Promise<void> {
    await this.#run('deleteSecret', () => this.#sql`DELETE FROM client_secrets WHERE id = ${id}`);
  }

  // ---- oidc-provider adapter ---------------------------------------------------------------------

  async oidcUpsert(model: string, id: string, payload: OidcPayload, expiresAt: number | null): Promise<void> {
    await this.#run(
      'oidcUpsert',
      // A re-save keeps consumed_at: saving a model again must not make a used code usable again.
      () => this.#sql`INSERT INTO oidc (model, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
                      VALUES (${model}, ${id}, ${jsonb(payload)}::text::jsonb, ${stringOrNull(payload.grantId)},
                        ${stringOrNull(payload.uid)}, ${stringOrNull(payload.userCode)}, ${expiresAt}, NULL)
                      ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload,
                        grant_id = excluded.grant_id, uid = excluded.uid, user_code = excluded.user_code,
                        expires_at = excluded.expires_at`,
    );
  }

  async oidcFind(model: string, id: string): Promise<OidcPayload | undefined> {
    return this.#run('oidcFind', () => this.#oidcOne(model, this.#sql`id = ${id}`));
  }

  async oidcFindByUid(model: string, uid: string): Promise<OidcPayload | undefined> {
    return this.#run('oidcFindByUid', () => this.#oidcOne(model, this.#sql`uid = ${uid}`));
  }

  async oidcFindByUserCode(model: string, userCode: string): Promise<OidcPayload | undefined> {
    return this.#run('oidcFindByUserCode', () => this.#oidcOne(model, this.#sql`user_code = ${userCode}`));
  }

  async oidcConsume(model: string, id: string, at: number): Promise<boolean> {
    // The first consumption wins: replaying a code must keep showing when it was first used. One
    // statement, so of concurrent callers (any replica) exactly one updates the row.
    return this.#run(
      'oidcConsume',
      async () =>
        (
          await this.#sql`UPDATE oidc SET consumed_at = ${at}
                          WHERE model = ${model} AND id = ${id} AND consumed_at IS NULL`
        ).count > 0,
    );
  }

  async oidcDestroy(model: string, id: string): Promise<void> {
    await this.#run('oidcDestroy', () => this.#sql`DELETE FROM oidc WHERE model = ${model} AND id = ${id}`);
  }

  async oidcRevokeByGrantId(grantId: string): Promise<void> {
    await this.#run('oidcRevokeByGrantId', () => this.#sql`DELETE FROM oidc WHERE grant_id = ${grantId}`);
  }

  /** Removes expired adapter rows (housekeeping; expired rows are already invisible to finds). */
  async oidcPruneExpired(now: number = this.#now()): Promise<number> {
    return this.#run(
      'oidcPruneExpired',
      async () =>
        (await this.#sql`DELETE FROM oidc WHERE expires_at IS NOT NULL AND expires_at <= ${now}`).count,
    );
  }

  async #oidcOne(
    model: string,
    match: postgres.PendingQuery<postgres.Row[]>,
  ): Promise<OidcPayload | undefined> {
    // Expired rows are filtered here rather than trusted to a sweeper: expiry holds even if none runs.
    const [r] = await this.#sql<{ payload: OidcPayload; consumed_at: number | null }[]>`
      SELECT payload, consumed_at FROM oidc
      WHERE model = ${model} AND ${match} AND (expires_at IS NULL OR expires_at > ${this.#now()})
      LIMIT 1`;
    if (!r) return undefined;
    const payload = r.payload;
    if (r.consumed_at !== null) payload.consumed = r.consumed_at;
    return payload;
  }

  // ---- audit -------------------------------------------------------------------------------------

  async appendAudit(records: AuditInput[], seal: AuditSealer): Promise<AuditRow[]> {
    if (records.length === 0) return this.#run('appendAudit', async () => []);
    return this.#run('appendAudit', () =>
      this.#sql.begin(async (tx) => {
        // One writer at a time across every replica: the lock is held until commit, so the next
        // writer reads the head this one wrote.
        await tx`SELECT pg_advisory_xact_lock(${LOCK_SPACE}::int, ${LOCK.audit}::int)`;
        const { rows: stored } = chainAuditRows(records, await auditHead(tx), seal);
        // One statement for the batch, after the sealer ran for every row (a throwing sealer inserts
        // nothing). The batch travels as JSON text; json_to_recordset keeps each row's data text as is.
        const batch = stored.map((r) => ({
          seq: r.seq,
          ts: r.ts,
          type: r.type,
          id: r.id,
          data: r.data,
          prev_hash: r.prevHash,
          hash: r.hash,
        }));
        await tx`INSERT INTO audit (seq, ts, type, id, data, prev_hash, hash)
                 SELECT seq, ts, type, id, data, prev_hash, hash
                 FROM json_to_recordset(${JSON.stringify(batch)}::text::json)
                   AS x(seq BIGINT, ts BIGINT, type TEXT, id TEXT, data JSON, prev_hash TEXT, hash TEXT)`;
        return stored;
      }),
    );
  }

  async auditHead(): Promise<{ seq: number; hash: string } | undefined> {
    return this.#run('auditHead', () => auditHead(this.#sql));
  }

  async queryAudit(q: AuditQuery): Promise<AuditRow[]> {
    return this.#run('queryAudit', async () => {
      const sql = this.#sql;
      const conditions = [
        q.afterSeq !== undefined ? sql`seq > ${q.afterSeq}` : undefined,
        q.since !== undefined ? sql`ts >= ${q.since}` : undefined,
        q.type !== undefined ? sql`type = ${q.type}` : undefined,
        q.id !== undefined ? sql`id = ${q.id}` : undefined,
      ].filter((c) => c !== undefined);
      const where = conditions.length
        ? sql`WHERE ${conditions.reduce((acc, c) => sql`${acc} AND ${c}`)}`
        : sql``;
      const limit = q.limit !== undefined ? sql`LIMIT ${q.limit}` : sql``;
      // data::text: the stored text, parsed here, so rows come back exactly as they were sealed.
      const rows = await sql<Row[]>`SELECT seq, ts, type, id, data::text AS data, prev_hash, hash
                                    FROM audit ${where} ORDER BY seq ${limit}`;
      return rows.map((r) => ({
        seq: r.seq as number,
        ts: r.ts as number,
        type: r.type as string,
        id: r.id as string,
        data: JSON.parse(r.data as string) as Record<string, unknown>,
        prevHash: r.prev_hash as string,
        hash: r.hash as string,
      }));
    });
  }

  async pruneAudit(beforeSeq: number): Promise<number> {
    return this.#run('pruneAudit', () =>
      this.#sql.begin(async (tx) => {
        // Under the append lock: the head row is always kept, as it is what the next append chains from.
        await tx`SELECT pg_advisory_xact_lock(${LOCK_SPACE}::int, ${LOCK.audit}::int)`;
        const head = await auditHead(tx);
        if (!head) return 0;
        return (await tx`DELETE FROM audit WHERE seq < ${Math.min(beforeSeq, head.seq)}`).count;
      }),
    );
  }

  async insertCheckpoint(cp: AuditCheckpoint): Promise<void> {
    await this.#run(
      'insertCheckpoint',
      () => this.#sql`INSERT INTO audit_checkpoints (seq, hash, jws, created_at)
                      VALUES (${cp.seq}, ${cp.hash}, ${cp.jws}, ${cp.createdAt})`,
    );
  }

  async listCheckpoints(): Promise<AuditCheckpoint[]> {
    return this.#run('listCheckpoints', async () =>
      (await this.#sql<Row[]>`SELECT * FROM audit_checkpoints ORDER BY seq`).map((r) => ({
        seq: r.seq as number,
        hash: r.hash as string,
        jws: r.jws as string,
        createdAt: r.created_at as number,
      })),
    );
  }

  // ---- revocations -------------------------------------------------------------------------------

  async insertRevocation(r: RevocationInput): Promise<RevocationRecord> {
    return this.#run('insertRevocation', () =>
      this.#sql.begin(async (tx) => {
        // Ids are a cursor: serialising inserts makes commit order follow id order, so a reader never
        // moves past an id whose row is still uncommitted (and would then never see it).
        await tx`SELECT pg_advisory_xact_lock(${LOCK_SPACE}::int, ${LOCK.revocations}::int)`;
        const [row] = await tx<{ id: number }[]>`
          INSERT INTO revocations (kind, value, issuer, reason, revoked_at, expires_at)
          VALUES (${r.kind}, ${r.value}, ${r.issuer}, ${r.reason}, ${r.revokedAt}, ${r.expiresAt})
          RETURNING id`;
        return { id: row!.id, ...r };
      }),
    );
  }

  async listRevocations(afterId = 0): Promise<RevocationRecord[]> {
    return this.#run('listRevocations', async () =>
      (await this.#sql<Row[]>`SELECT * FROM revocations WHERE id > ${afterId} ORDER BY id`).map((r) => ({
        id: r.id as number,
        kind: r.kind as RevocationRecord['kind'],
        value: r.value as string,
        issuer: r.issuer as string | null,
        reason: r.reason as string | null,
        revokedAt: r.revoked_at as number,
        expiresAt: r.expires_at as number | null,
      })),
    );
  }

  async pruneRevocations(now: number): Promise<number> {
    return this.#run(
      'pruneRevocations',
      async () =>
        (await this.#sql`DELETE FROM revocations WHERE expires_at IS NOT NULL AND expires_at <= ${now}`)
          .count,
    );
  }

  // ---- single-use subject tokens -----------------------------------------------------------------

  async consumeSubjectToken(use: SubjectTokenUseInput, now: number): Promise<boolean> {
    return this.#run('consumeSubjectToken', async () => {
      // One statement: a concurrent recorder of the same token waits on the row, then re-checks the
      // WHERE against the winner's row, so exactly one of them records it. A record that has expired
      // (not yet pruned) is taken over, as the token it stood for can no longer be used.
      const r = await this.#sql`INSERT INTO subject_token_uses (issuer, jti, used_at, expires_at)
                                VALUES (${use.issuer}, ${use.jti}, ${now}, ${use.expiresAt})
                                ON CONFLICT (issuer, jti) DO UPDATE SET used_at = excluded.used_at,
                                  expires_at = excluded.expires_at
                                WHERE subject_token_uses.expires_at <= ${now}`;
      return r.count === 1;
    });
  }

  async pruneSubjectTokenUses(now: number): Promise<number> {
    return this.#run(
      'pruneSubjectTokenUses',
      async () => (await this.#sql`DELETE FROM subject_token_uses WHERE expires_at <= ${now}`).count,
    );
  }

  // ---- sessions ----------------------------------------------------------------------------------

  async getSession(id: string): Promise<SessionRecord | undefined> {
    return this.#run('getSession', async () => {
      const [r] = await this.#sql<SessionRow[]>`SELECT * FROM sessions WHERE id = ${id}`;
      return r && toSession(r, fromJsonb);
    });
  }

  async upsertSession(s: SessionRecord): Promise<void> {
    await this.#run(
      'upsertSession',
      // COALESCE keeps a revocation: a request that touches a session with a copy read before the
      // revocation must not bring the session back to life.
      () => this
        .#sql`INSERT INTO sessions (id, subject, data, created_at, last_seen_at, expires_at, revoked_at)
                      VALUES (${s.id}, ${s.subject}, ${jsonb(s.data)}::text::jsonb, ${s.createdAt}, ${s.lastSeenAt},
                        ${s.expiresAt}, ${s.revokedAt})
                      ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, data = excluded.data,
                        created_at = excluded.created_at, last_seen_at = excluded.last_seen_at,
                        expires_at = excluded.expires_at,
                        revoked_at = COALESCE(sessions.revoked_at, excluded.revoked_at)`,
    );
  }

  async listSessions(subject?: string): Promise<SessionRecord[]> {
    return this.#run('listSessions', async () =>
      (subject === undefined
        ? await this.#sql<SessionRow[]>`SELECT * FROM sessions ORDER BY created_at, id COLLATE "C"`
        : await this.#sql<SessionRow[]>`SELECT * FROM sessions WHERE subject = ${subject}
                                 ORDER BY created_at, id COLLATE "C"`
      ).map((r) => toSession(r, fromJsonb)),
    );
  }

  async revokeSessions(filter: { id?: string; subject?: string }, at: number): Promise<number> {
    if (filter.id === undefined && filter.subject === undefined) {
      // Revoking every session is never what an empty filter means.
      throw new TypeError('revokeSessions needs an id or a subject');
    }
    return this.#run('revokeSessions', async () => {
      const sql = this.#sql;
      const byId = filter.id !== undefined ? sql`AND id = ${filter.id}` : sql``;
      const bySubject = filter.subject !== undefined ? sql`AND subject = ${filter.subject}` : sql``;
      return (await sql`UPDATE sessions SET revoked_at = ${at} WHERE revoked_at IS NULL ${byId} ${bySubject}`)
        .count;
    });
  }

  async deleteSession(id: string): Promise<void> {
    await this.#run('deleteSession', () => this.#sql`DELETE FROM sessions WHERE id = ${id}`);
  }

  async pruneSessions(now: number): Promise<number> {
    return this.#run(
      'pruneSessions',
      async () => (await this.#sql`DELETE FROM sessions WHERE expires_at <= ${now}`).count,
    );
  }

  // ---- leases ------------------------------------------------------------------------------------

  async tryLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean> {
    return this.#run('tryLease', async () => {
      // One statement: a concurrent taker waits on the row, then re-checks the WHERE against the
      // winner's row, so exactly one of them gets a free or expired lease.
      const r = await this.#sql`INSERT INTO leases (name, holder, expires_at)
                                VALUES (${name}, ${holder}, ${now + ttlMs})
                                ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                                  expires_at = excluded.expires_at
                                WHERE leases.expires_at <= ${now} OR leases.holder = excluded.holder`;
      return r.count === 1;
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.#run(
      'releaseLease',
      () => this.#sql`DELETE FROM leases WHERE name = ${name} AND holder = ${holder}`,
    );
  }

  // ---- change feed -------------------------------------------------------------------------------

  async publishChange(topic: ChangeTopic, ref: string | null = null): Promise<void> {
    if (this.#closed) throw closedError('publishChange');
    // A watcher started just before must know its starting point first, or it would skip this change.
    await Promise.all([...this.#watchers].map((w) => w.ready));
    await this.#run('publishChange', () =>
      this.#sql.begin(async (tx) => {
        // Serialised so seq order is commit order: a reader past seq n never misses an n-1 committed
        // later. NOTIFY is sent at commit, so a listener never hears of a row it cannot read yet.
        await tx`SELECT pg_advisory_xact_lock(${LOCK_SPACE}::int, ${LOCK.changes}::int)`;
        const at = this.#now();
        const [row] = await tx<{ seq: number }[]>`INSERT INTO changes (topic, ref, at)
                                                  VALUES (${topic}, ${ref}, ${at}) RETURNING seq`;
        await tx`SELECT pg_notify(${CHANGE_CHANNEL}, ${String(row!.seq)})`;
        if (at - this.#lastChangePrune >= CHANGE_PRUNE_EVERY_MS) {
          this.#lastChangePrune = at;
          await tx`DELETE FROM changes
                   WHERE at < ${at - this.#changeRetentionMs} OR seq <= ${row!.seq - MAX_CHANGE_ROWS}`;
        }
      }),
    );
    // Watchers of this instance hear of it before publish resolves; other replicas by NOTIFY.
    if (this.#watchers.size > 0) await this.#deliver();
  }

  async readChanges(afterSeq: number): Promise<Change[]> {
    return this.#run('readChanges', () => this.#readChanges(afterSeq));
  }

  watchChanges(onChange: (c: Change) => void): () => void {
    if (this.#closed) throw closedError('watchChanges');
    const w: Watcher = { cursor: -1, ready: Promise.resolve(), onChange };
    w.ready = this.#lastSeq().then(
      (seq) => {
        w.cursor = seq;
      },
      (e: unknown) => {
        // Without a starting point, start from what is still in the table rather than lose changes.
        w.cursor = 0;
        this.#onNotifyError(e);
      },
    );
    this.#watchers.add(w);
    this.#startListening();
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#tick(), this.#pollMs);
      // Watching must never keep a CLI command (or a test) alive.
      this.#timer.unref();
    }
    return () => {
      this.#watchers.delete(w);
      if (this.#watchers.size === 0) this.#stopTimer();
    };
  }

  async #readChanges(afterSeq: number): Promise<Change[]> {
    if (this.#closed) throw closedError('readChanges');
    return (
      await this.#sql<Change[]>`SELECT seq, topic, ref, at FROM changes WHERE seq > ${afterSeq} ORDER BY seq`
    ).map((r) => ({ seq: r.seq, topic: r.topic, ref: r.ref, at: r.at }));
  }

  async #lastSeq(): Promise<number> {
    const [row] = await this.#sql<
      { seq: number }[]
    >`SELECT COALESCE(MAX(seq), 0)::bigint AS seq FROM changes`;
    return row!.seq;
  }

  /**
   * LISTEN once per instance. The driver reconnects and re-listens by itself and calls onlisten on
   * every (re)connect: that is when a catch-up read finds what was published while it was away.
   */
  #startListening(): void {
    if (this.#listen || this.#closed) return;
    const request = this.#sql
      .listen(
        CHANGE_CHANNEL,
        (payload) => {
          if (payload.startsWith(HEARTBEAT_PREFIX)) {
            if (payload === this.#heartbeat) this.#heartbeat = undefined;
            return;
          }
          void this.#deliver();
        },
        () => void this.#deliver(),
      )
      .catch((e: unknown) => {
        // Not listening (the server is down at start): the next tick tries again.
        if (this.#listen === request) this.#listen = undefined;
        this.#onNotifyError(toStoreError('watchChanges', this.#where, e));
        return undefined;
      });
    this.#listen = request;
  }

  /** The safety net: poll, and check with a heartbeat that LISTEN still hears us. */
  #tick(): void {
    if (this.#closed || this.#watchers.size === 0) return;
    void this.#deliver();
    const listen = this.#listen;
    if (!listen) {
      this.#startListening();
      return;
    }
    if (this.#heartbeat !== undefined) {
      // The last heartbeat never came back: the driver lost the listener (it gives up re-listening
      // when a reconnect fails), so listen afresh.
      this.#heartbeat = undefined;
      this.#listen = undefined;
      void listen.then((meta) => meta?.unlisten()).catch(() => {});
      this.#startListening();
      return;
    }
    const beat = `${HEARTBEAT_PREFIX}${randomUUID()}`;
    this.#heartbeat = beat;
    this.#sql`SELECT pg_notify(${CHANGE_CHANNEL}, ${beat})`.catch(() => {
      // The database is away; nothing to conclude about the listener from this tick.
      if (this.#heartbeat === beat) this.#heartbeat = undefined;
    });
  }

  /**
   * Reads past the watchers' cursors and delivers, one pass at a time; calls made while a pass waits
   * to start share it, so a burst of notifications costs one read.
   */
  #deliver(): Promise<void> {
    if (this.#deliverPending) return this.#deliverPending;
    const pass = this.#deliverRunning.then(() => {
      this.#deliverPending = undefined;
      return this.#deliverOnce();
    });
    this.#deliverPending = pass;
    this.#deliverRunning = pass.catch(() => {});
    return pass;
  }

  async #deliverOnce(): Promise<void> {
    if (this.#closed || this.#watchers.size === 0) return;
    const watchers = [...this.#watchers];
    await Promise.all(watchers.map((w) => w.ready));
    const from = Math.min(...watchers.map((w) => w.cursor));
    let batch: Change[];
    try {
      batch = await this.#readChanges(from);
    } catch (e) {
      // The database is away or the store closed; the next notification or tick reads from the same cursors.
      if (!this.#closed) this.#onNotifyError(toStoreError('watchChanges', this.#where, e));
      return;
    }
    for (const c of batch) {
      for (const w of watchers) {
        // Exactly once, in order: a watcher takes only what is past its own cursor.
        if (c.seq <= w.cursor || !this.#watchers.has(w)) continue;
        w.cursor = c.seq;
        try {
          w.onChange(c);
        } catch (e) {
          // One watcher's bug must not stop the feed for the others, nor reach the publisher.
          process.emitWarning(`change feed watcher threw: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  /** Runs one operation: refuses after close, and turns the driver's errors into ours. */
  async #run<T>(op: string, fn: () => Promise<T> | postgres.PendingQuery<postgres.Row[]>): Promise<T> {
    if (this.#closed) throw closedError(op);
    try {
      return (await fn()) as T;
    } catch (e) {
      if (this.#closed && !(e instanceof GatehouseError)) throw closedError(op);
      throw toStoreError(op, this.#where, e);
    }
  }
}

/** A JSON document as a text parameter, cast with `::text::jsonb` in the statement. */
function jsonb(value: unknown): string {
  // Passed as text, never as a parameter the driver types as json: it would JSON.stringify the
  // string again and store a JSON string instead of the object.
  return JSON.stringify(value);
}

async function auditHead(sql: Sql | Tx): Promise<{ seq: number; hash: string } | undefined> {
  const [row] = await sql<
    { seq: number; hash: string }[]
  >`SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`;
  return row ? { seq: row.seq, hash: row.hash } : undefined;
}

/** jsonb columns arrive parsed. */
const fromJsonb: JsonColumn = (value) => value as Record<string, unknown>;
