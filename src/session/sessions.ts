// Browser sessions, kept server-side in the Store with an in-memory cache in front, so answering "who is
// this cookie" touches no database on the hot path. The revocation set (kinds `session` and `subject`) is
// checked on every lookup, so `gatehouse revoke session|subject` ends a session at once on every replica.
import { randomId } from '../lib/random.js';
import type { RevocationSet } from '../revocation/index.js';
import type { SessionRecord, Store } from '../store/store.js';
import type { Person } from '../federation/role-mapping.js';
import type { Identity } from './types.js';

/** What a session keeps besides its subject (the store's `data`). */
export interface SessionData {
  connector: string;
  email?: string;
  name?: string;
  groups: string[];
  roles: string[];
  upstreamSub: string;
  upstreamSid?: string;
  /** The upstream refresh token and ID token, sealed (they are credentials). */
  sealedRefresh?: string;
  sealedIdToken?: string;
  /** When the IdP last confirmed the person (epoch ms). */
  checkedAt: number;
}

export interface LiveSession {
  record: SessionRecord;
  data: SessionData;
  identity: Identity;
}

export interface SessionManagerOptions {
  idleMs: number;
  absoluteMs: number;
  now: () => number;
  /** How often lastSeenAt is written back to the store (idle timeout across replicas). */
  touchEveryMs?: number;
}

function identityOf(record: SessionRecord, data: SessionData): Identity {
  const claims: Record<string, unknown> = {
    sub: record.subject,
    groups: data.groups,
    roles: data.roles,
    sid: record.id,
    iat: Math.floor(record.createdAt / 1000),
    auth_time: Math.floor(record.createdAt / 1000),
    idp: data.connector,
  };
  if (data.email !== undefined) claims.email = data.email;
  if (data.name !== undefined) claims.name = data.name;
  return {
    sub: record.subject,
    ...(data.email !== undefined ? { email: data.email } : {}),
    ...(data.name !== undefined ? { name: data.name } : {}),
    groups: data.groups,
    roles: data.roles,
    claims,
    sessionId: record.id,
    source: 'session',
  };
}

/**
 * A new session id: 24 random bytes, base64url, never starting with `-` (so `gatehouse revoke session ID`
 * takes it as it is).
 */
export function newSessionId(): string {
  return randomId(24);
}

export class SessionManager {
  readonly #store: Store;
  readonly #revocations: RevocationSet;
  readonly #opts: Required<SessionManagerOptions>;
  readonly #cache = new Map<string, LiveSession & { persistedSeen: number }>();

  constructor(store: Store, revocations: RevocationSet, opts: SessionManagerOptions) {
    this.#store = store;
    this.#revocations = revocations;
    this.#opts = { touchEveryMs: 60_000, ...opts };
  }

  /** A new session (a new id every login: no fixation). */
  async create(
    person: Person,
    data: Omit<SessionData, 'groups' | 'roles' | 'email' | 'name'>,
  ): Promise<LiveSession> {
    const now = this.#opts.now();
    const full: SessionData = {
      ...data,
      groups: person.groups,
      roles: person.roles,
      ...(person.email !== undefined ? { email: person.email } : {}),
      ...(person.name !== undefined ? { name: person.name } : {}),
    };
    const record: SessionRecord = {
      id: newSessionId(),
      subject: person.sub,
      data: full as unknown as Record<string, unknown>,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + this.#opts.absoluteMs,
      revokedAt: null,
    };
    await this.#store.upsertSession(record);
    const live = { record, data: full, identity: identityOf(record, full) };
    this.#cache.set(record.id, { ...live, persistedSeen: now });
    return live;
  }

  /** The live session with this id, or undefined when unknown, revoked, idle too long or expired. */
  async get(id: string): Promise<LiveSession | undefined> {
    let s = this.#cache.get(id);
    if (!s) {
      const record = await this.#store.getSession(id);
      if (!record) return undefined;
      const data = record.data as unknown as SessionData;
      s = { record, data, identity: identityOf(record, data), persistedSeen: record.lastSeenAt };
      this.#cache.set(id, s);
      if (this.#cache.size > 50_000) {
        const oldest = this.#cache.keys().next().value;
        if (oldest !== undefined) this.#cache.delete(oldest);
      }
    }
    const now = this.#opts.now();
    const r = s.record;
    const revoked =
      r.revokedAt !== null ||
      this.#revocations.check({ sid: r.id, sub: r.subject, iat: Math.floor(r.createdAt / 1000) }) !==
        undefined;
    if (revoked || now >= r.expiresAt || now - r.lastSeenAt >= this.#opts.idleMs) {
      this.#cache.delete(id);
      return undefined;
    }
    r.lastSeenAt = now;
    if (now - s.persistedSeen >= this.#opts.touchEveryMs) {
      s.persistedSeen = now;
      void this.#store.upsertSession({ ...r }).catch(() => undefined);
    }
    return s;
  }

  /** Saves changed session data (a rotated upstream refresh token, a recheck time). */
  async update(id: string, patch: Partial<SessionData>): Promise<void> {
    const s = await this.get(id);
    if (!s) return;
    Object.assign(s.data, patch);
    s.record.data = s.data as unknown as Record<string, unknown>;
    await this.#store.upsertSession({ ...s.record });
  }

  /** Ends a session on every replica (revocation set) and marks it in the store. */
  async end(id: string, reason: string): Promise<void> {
    const now = this.#opts.now();
    this.#cache.delete(id);
    await this.#revocations.revoke({
      kind: 'session',
      value: id,
      reason,
      expiresAt: now + this.#opts.absoluteMs,
    });
    await this.#store.revokeSessions({ id }, now);
  }

  /** Sessions of a subject whose upstream session or subject matches (back-channel logout). */
  async findUpstream(connector: string, upstream: { sub?: string; sid?: string }): Promise<SessionRecord[]> {
    const all = await this.#store.listSessions();
    return all.filter((r) => {
      const d = r.data as unknown as SessionData;
      if (r.revokedAt !== null || d.connector !== connector) return false;
      if (upstream.sid && d.upstreamSid !== upstream.sid) return false;
      if (upstream.sub && d.upstreamSub !== upstream.sub) return false;
      return true;
    });
  }
}
