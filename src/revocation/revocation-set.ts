// The in-memory revocation set: every revoked jti, subject, client and session, loaded from the store
// and kept current through the change feed, so the hot path checks revocation without touching the store.
import type { PartLogger } from '../audit/logger.js';
import type { RevocationKind, RevocationRecord, Store } from '../store/store.js';

export interface RevocationSetOptions {
  now?: () => number;
  logger?: PartLogger;
  /** How often expired entries are dropped from memory. */
  sweepIntervalMs?: number;
  /**
   * Throws when the set may be stale (cut off from the store and its change feed for longer than the
   * grace); `check()` then refuses rather than answer from old data (fail closed).
   */
  freshness?: () => void;
}

/** The claims of a token that revocation looks at; `iat` in seconds, as in the JWT. */
export interface RevocationCheckInput {
  iss?: string;
  jti?: string;
  sub?: string;
  client_id?: string;
  sid?: string;
  iat?: number;
}

export interface RevokeInput {
  kind: RevocationKind;
  value: string;
  /** For `jti`: the issuer that minted it; without one the jti is revoked whichever issuer minted it. */
  issuer?: string;
  reason?: string;
  /** Epoch ms after which the entry may be forgotten (a jti: its token's expiry). */
  expiresAt?: number;
}

const KINDS: readonly RevocationKind[] = ['jti', 'subject', 'client', 'session'];
const ANY_ISSUER = '';

export class RevocationSet {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #logger: PartLogger | undefined;
  readonly #sweepIntervalMs: number;
  readonly #freshness: (() => void) | undefined;
  // jti entries keyed by issuer and jti (DESIGN.md: revocation is keyed by both); the others by value,
  // keeping the latest revocation since it kills the most tokens.
  readonly #jti = new Map<string, RevocationRecord>();
  readonly #byKind = {
    subject: new Map<string, RevocationRecord>(),
    client: new Map<string, RevocationRecord>(),
    session: new Map<string, RevocationRecord>(),
  };
  #lastId = 0;
  #started = false;
  #unwatch: (() => void) | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #catchingUp: Promise<void> | undefined;
  #again = false;

  constructor(store: Store, options: RevocationSetOptions = {}) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    this.#freshness = options.freshness;
  }

  /** Loads every revocation and follows the change feed. */
  async start(): Promise<void> {
    if (this.#started) return;
    // Watch before loading, so a revocation made in between is caught up rather than missed.
    this.#unwatch = this.#store.watchChanges((c) => {
      if (c.topic === 'revocations') void this.catchUp();
    });
    try {
      await this.catchUp();
    } catch (e) {
      this.stop();
      throw e;
    }
    this.#started = true;
    this.#sweeper = setInterval(() => this.#sweep(), this.#sweepIntervalMs);
    this.#sweeper.unref();
  }

  stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#started = false;
  }

  /** Reads revocations newer than the last one seen (one read at a time; a request during it runs after). */
  catchUp(): Promise<void> {
    if (this.#catchingUp) {
      this.#again = true;
      return this.#catchingUp;
    }
    this.#catchingUp = (async () => {
      try {
        do {
          this.#again = false;
          for (const r of await this.#store.listRevocations(this.#lastId)) this.#apply(r);
        } while (this.#again);
      } catch (e) {
        this.#logger?.error(
          { event: 'revocation.catch_up_failed', code: (e as { code?: unknown })?.code },
          'revocation catch-up failed',
        );
        throw e;
      } finally {
        this.#catchingUp = undefined;
      }
    })();
    const running = this.#catchingUp;
    // Callers from the change feed do not await; keep their failure from becoming an unhandled rejection.
    running.catch(() => undefined);
    return running;
  }

  /**
   * The revocation that kills a token with these claims, or undefined. A jti is revoked for its issuer;
   * a subject, client or session revoked at T kills tokens issued at or before T (iat ≤ T), and a
   * token without `iat` is treated as issued before (fail closed).
   */
  check(claims: RevocationCheckInput): RevocationRecord | undefined {
    if (!this.#started) throw new TypeError('RevocationSet.check() before start()');
    this.#freshness?.();
    const now = this.#now();
    if (claims.jti !== undefined) {
      const hit =
        (claims.iss !== undefined ? this.#liveJti(jtiKey(claims.iss, claims.jti), now) : undefined) ??
        this.#liveJti(jtiKey(ANY_ISSUER, claims.jti), now);
      if (hit) return hit;
    }
    const issuedAtMs = typeof claims.iat === 'number' ? claims.iat * 1000 : -Infinity;
    for (const [kind, value] of [
      ['subject', claims.sub],
      ['client', claims.client_id],
      ['session', claims.sid],
    ] as const) {
      if (value === undefined) continue;
      const hit = this.#byKind[kind].get(value);
      if (hit && live(hit, now) && issuedAtMs <= hit.revokedAt) return hit;
    }
    return undefined;
  }

  /** Writes a revocation, tells every replica through the change feed, and applies it here at once. */
  async revoke(input: RevokeInput): Promise<RevocationRecord> {
    const record = await recordRevocation(this.#store, input, this.#now());
    this.#apply(record);
    return record;
  }

  /** True once `start()` has loaded the set (readiness). */
  get started(): boolean {
    return this.#started;
  }

  /** Entries held in memory (for metrics and tests). */
  get size(): number {
    return this.#jti.size + this.#byKind.subject.size + this.#byKind.client.size + this.#byKind.session.size;
  }

  #liveJti(key: string, now: number): RevocationRecord | undefined {
    const hit = this.#jti.get(key);
    if (!hit || live(hit, now)) return hit;
    // Past its end the token cannot pass anyway: forget it now rather than at the next sweep.
    this.#jti.delete(key);
    return undefined;
  }

  #apply(r: RevocationRecord): void {
    if (r.id > this.#lastId) this.#lastId = r.id;
    if (!live(r, this.#now())) return;
    if (r.kind === 'jti') {
      this.#jti.set(jtiKey(r.issuer ?? ANY_ISSUER, r.value), r);
      return;
    }
    const map = this.#byKind[r.kind];
    if (!map) return; // a kind this version does not know: ignore rather than crash the feed
    const had = map.get(r.value);
    if (!had || r.revokedAt >= had.revokedAt) map.set(r.value, r);
  }

  #sweep(): void {
    const now = this.#now();
    for (const map of [this.#jti, this.#byKind.subject, this.#byKind.client, this.#byKind.session]) {
      for (const [key, r] of map) if (!live(r, now)) map.delete(key);
    }
  }
}

/** Validates and writes one revocation, then publishes it on the change feed (used by the set and the CLI). */
export async function recordRevocation(
  store: Store,
  input: RevokeInput,
  now: number,
): Promise<RevocationRecord> {
  if (!KINDS.includes(input.kind)) throw new TypeError(`revocation kind must be one of ${KINDS.join(', ')}`);
  if (typeof input.value !== 'string' || input.value === '')
    throw new TypeError('revocation value must be a non-empty string');
  const record = await store.insertRevocation({
    kind: input.kind,
    value: input.value,
    issuer: input.kind === 'jti' && input.issuer ? input.issuer : null,
    reason: input.reason ?? null,
    revokedAt: now,
    expiresAt: input.expiresAt ?? null,
  });
  await store.publishChange('revocations', String(record.id));
  return record;
}

function jtiKey(issuer: string, jti: string): string {
  return `${issuer}\n${jti}`;
}

function live(r: RevocationRecord, now: number): boolean {
  return r.expiresAt === null || r.expiresAt > now;
}
