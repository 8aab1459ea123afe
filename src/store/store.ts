// The Store interface: everything Gatehouse keeps, behind one contract that the embedded SQLite store
// and the PostgreSQL store both pass (test/store/contract.ts). Only the composition root imports an
// implementation; every other part depends on this file alone. All times are epoch milliseconds.

/** The previous hash of the first audit record: 64 zeros (the width of a SHA-256 hex digest). */
export const GENESIS_HASH = '0000000000000000000000000000000000000000000000000000000000000000';

/** Signing key states: published before it signs (next), signing (active), published only (retired). */
export type KeyState = 'next' | 'active' | 'retired';

export interface KeyRecord {
  /** RFC 7638 thumbprint of the public key. */
  kid: string;
  alg: 'ES256' | 'RS256' | 'EdDSA';
  state: KeyState;
  /** Public JWK (with kid, alg, use). */
  publicJwk: Record<string, unknown>;
  /** Private JWK sealed with the key-encryption key (see src/keys/seal.ts); never plaintext. */
  sealedPrivate: string;
  createdAt: number;
  activatedAt: number | null;
  retiredAt: number | null;
  /** When a retired key leaves the JWKS (after the longest-lived token it signed has expired). */
  removeAfter: number | null;
}

export type KeyPatch = Partial<
  Pick<KeyRecord, 'state' | 'activatedAt' | 'retiredAt' | 'removeAfter' | 'sealedPrivate'>
>;

/** A client created at run time (`gatehouse clients create`); clients in the config file are not stored. */
export interface ClientRecord {
  id: string;
  /** Client metadata as in the config's `clients[]` entry (JSON). */
  metadata: Record<string, unknown>;
  createdAt: number;
}

/** A client secret, stored only as a hash. */
export interface SecretRecord {
  /** Public, non-secret identifier of this secret (shown in `clients list`). */
  id: string;
  clientId: string;
  /** Hash of the secret (see src/issuer/client-secrets.ts); never the secret. */
  hash: string;
  createdAt: number;
  /** When the secret stops working: its own expiry, or the end of an overlap after rotation. */
  expiresAt: number | null;
}

/** One record of the audit log as stored: sequence number and hash chain assigned by the store. */
export interface AuditRow {
  seq: number;
  /** Epoch ms when the event happened. */
  ts: number;
  /** `noun.outcome`, e.g. `token.issued`, `token.refused`, `key.activated`. */
  type: string;
  /** Stable id shown to clients on refusals (e.g. `a_7Hq…`), so support can find the record. */
  id: string;
  /** Event body: never a token, secret or key. */
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface AuditInput {
  ts: number;
  type: string;
  id: string;
  data: Record<string, unknown>;
  /**
   * The canonical JSON of `data` when the caller has it (AuditLog always does): a store may keep and
   * seal this text as is instead of serializing `data` again.
   */
  text?: string;
}

/**
 * Computes a row's hash from the previous hash and the row (audit owns the canonical form; the store
 * only guarantees the chain is extended atomically, one writer at a time, across processes).
 */
export type AuditSealer = (
  prevHash: string,
  row: Omit<AuditRow, 'hash' | 'prevHash'>,
  /** The canonical JSON of `row.data`, when known (saves serializing it again). */
  dataText?: string,
) => string;

export interface AuditCheckpoint {
  seq: number;
  hash: string;
  /** Compact JWS over { seq, hash, ts } signed by a Gatehouse signing key. */
  jws: string;
  createdAt: number;
}

export interface AuditQuery {
  afterSeq?: number;
  since?: number;
  type?: string;
  /** The record with this audit id (the id shown to clients on refusals). */
  id?: string;
  limit?: number;
}

export type RevocationKind = 'jti' | 'subject' | 'client' | 'session';

export interface RevocationRecord {
  /** Monotonic id: the change feed's cursor for revocations. */
  id: number;
  kind: RevocationKind;
  value: string;
  /** For `jti`: the issuer that minted it (revocation is keyed by issuer and jti). */
  issuer: string | null;
  reason: string | null;
  revokedAt: number;
  /** After this the entry can be forgotten (a revoked jti past its token's expiry). */
  expiresAt: number | null;
}

export type RevocationInput = Omit<RevocationRecord, 'id'>;

/** A subject token exchanged under a `single_use` trust rule: remembered until it can no longer be accepted. */
export interface SubjectTokenUseInput {
  /** The token's `iss`, exactly. */
  issuer: string;
  jti: string;
  /** After this (epoch ms) the token is refused as expired, so the record may be forgotten. */
  expiresAt: number;
}

export interface SessionRecord {
  id: string;
  subject: string;
  data: Record<string, unknown>;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

/** The topics of the change feed. */
export type ChangeTopic = 'revocations' | 'keys' | 'clients' | 'secrets' | 'sessions' | 'config';

export interface Change {
  seq: number;
  topic: ChangeTopic;
  ref: string | null;
  at: number;
}

/** oidc-provider's adapter models (Session, AccessToken, AuthorizationCode, DeviceCode, Grant…). */
export interface OidcPayload {
  [key: string]: unknown;
  grantId?: string;
  uid?: string;
  userCode?: string;
  consumed?: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Applies migrations (idempotent, safe when several processes start together). */
  init(): Promise<void>;
  close(): Promise<void>;
  /** Throws ERR_STORE_UNAVAILABLE when the store cannot answer. */
  ping(): Promise<void>;

  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
  /** Sets the value only when none is set yet; returns the value that is set afterwards. */
  initMeta(key: string, value: string): Promise<string>;

  listKeys(): Promise<KeyRecord[]>;
  insertKey(key: KeyRecord): Promise<void>;
  updateKey(kid: string, patch: KeyPatch): Promise<void>;
  deleteKey(kid: string): Promise<void>;

  getClient(id: string): Promise<ClientRecord | undefined>;
  listClients(): Promise<ClientRecord[]>;
  upsertClient(client: ClientRecord): Promise<void>;
  deleteClient(id: string): Promise<void>;

  listSecrets(clientId?: string): Promise<SecretRecord[]>;
  insertSecret(secret: SecretRecord): Promise<void>;
  /** Sets a secret's expiry (e.g. the end of a rotation overlap). */
  expireSecret(id: string, expiresAt: number): Promise<void>;
  deleteSecret(id: string): Promise<void>;

  /** oidc-provider adapter operations, per model name. */
  oidcUpsert(model: string, id: string, payload: OidcPayload, expiresAt: number | null): Promise<void>;
  oidcFind(model: string, id: string): Promise<OidcPayload | undefined>;
  oidcFindByUid(model: string, uid: string): Promise<OidcPayload | undefined>;
  oidcFindByUserCode(model: string, userCode: string): Promise<OidcPayload | undefined>;
  /**
   * Marks a record consumed; the first consumption wins. True when this call consumed it, false when it
   * was already consumed or is missing. Atomic across processes: of concurrent callers exactly one gets
   * true (one-time values such as the sign-in hand-off ticket rely on it).
   */
  oidcConsume(model: string, id: string, at: number): Promise<boolean>;
  oidcDestroy(model: string, id: string): Promise<void>;
  oidcRevokeByGrantId(grantId: string): Promise<void>;
  /**
   * Deletes adapter rows whose expiresAt <= now (rows without an expiry stay); returns how many.
   * Housekeeping only: finds already ignore expired rows.
   */
  oidcPruneExpired(now: number): Promise<number>;

  /** Appends records atomically at the head of the single chain; returns them as stored. */
  appendAudit(records: AuditInput[], seal: AuditSealer): Promise<AuditRow[]>;
  auditHead(): Promise<{ seq: number; hash: string } | undefined>;
  queryAudit(q: AuditQuery): Promise<AuditRow[]>;
  /** Deletes rows with seq < beforeSeq (retention); the chain stays verifiable from a checkpoint. */
  pruneAudit(beforeSeq: number): Promise<number>;
  insertCheckpoint(cp: AuditCheckpoint): Promise<void>;
  listCheckpoints(): Promise<AuditCheckpoint[]>;

  insertRevocation(r: RevocationInput): Promise<RevocationRecord>;
  /** Revocations with id > afterId, oldest first (the change feed's catch-up read). */
  listRevocations(afterId?: number): Promise<RevocationRecord[]>;
  /**
   * Deletes revocations whose expiresAt <= now; those without an expiry (subjects, clients) stay.
   * Returns how many. Callers leave a margin for clocks (src/server/maintenance.ts).
   */
  pruneRevocations(now: number): Promise<number>;

  /**
   * Records the use of a single-use subject token: true when this call is its first use, false when
   * an unexpired record of the same issuer and jti exists. Atomic across processes (one statement:
   * of concurrent callers exactly one gets true). A record past its expiresAt counts as absent (and
   * is taken over); the server's maintenance loop prunes such records.
   */
  consumeSubjectToken(use: SubjectTokenUseInput, now: number): Promise<boolean>;
  /** Deletes subject token uses whose expiresAt <= now; returns how many. */
  pruneSubjectTokenUses(now: number): Promise<number>;

  getSession(id: string): Promise<SessionRecord | undefined>;
  upsertSession(s: SessionRecord): Promise<void>;
  listSessions(subject?: string): Promise<SessionRecord[]>;
  revokeSessions(filter: { id?: string; subject?: string }, at: number): Promise<number>;
  deleteSession(id: string): Promise<void>;
  /** Deletes sessions whose expiresAt <= now (revoked or not); returns how many. */
  pruneSessions(now: number): Promise<number>;

  /** Takes or renews a named lease for `holder` until now+ttlMs; false when another holder has it. */
  tryLease(name: string, holder: string, ttlMs: number, now: number): Promise<boolean>;
  releaseLease(name: string, holder: string): Promise<void>;

  /** Records a change and tells every watcher, in this process and in others. */
  publishChange(topic: ChangeTopic, ref?: string | null): Promise<void>;
  /** Changes with seq > afterSeq, oldest first. */
  readChanges(afterSeq: number): Promise<Change[]>;
  /**
   * Calls `onChange` for every change published from now on, by any process, in order, within a
   * second; after a reconnect it catches up from the last seq seen. Returns a function that stops it.
   */
  watchChanges(onChange: (c: Change) => void): () => void;
}
