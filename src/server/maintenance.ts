// Store housekeeping: rows that have reached their end (revocations of tokens that can no longer pass,
// oidc-provider records, browser sessions, single-use subject tokens) are deleted every few minutes, so
// those tables do not grow for ever. One process of many does it per round (a store lease, held only
// while a round runs, and the time of the last round kept in the store's meta).
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';

/** How often each server looks whether a round is due (docs/operations.md#housekeeping). */
export const MAINTENANCE_INTERVAL_MS = 5 * 60_000;
export const MAINTENANCE_LEASE = 'store-maintenance';
/** A round holds the lease only while it runs; a holder that died frees it after this. */
export const MAINTENANCE_LEASE_MS = 60_000;
/** Meta key: epoch ms of the last round any process ran. */
export const MAINTENANCE_LAST_RUN = 'maintenance.last_run';

/** The tables a round prunes, as they are named in metrics and logs. */
export type PrunedTable = 'revocations' | 'oidc' | 'sessions' | 'subject_token_uses';
export type PruneCounts = Record<PrunedTable, number>;

/**
 * Deletes every row whose end is more than `graceMs` before `now`. The grace is the clock skew the
 * servers allow: a server whose clock runs ahead by up to that much never deletes a row another still
 * counts as live. A revocation's end is already its token's `exp` plus the skew
 * (src/revocation/jti-expiry.ts), so it goes only once its token could not pass on any server; subject
 * and client revocations have no end and stay.
 */
export async function pruneExpiredRows(store: Store, now: number, graceMs: number): Promise<PruneCounts> {
  const before = now - graceMs;
  return {
    revocations: await store.pruneRevocations(before),
    oidc: await store.oidcPruneExpired(before),
    sessions: await store.pruneSessions(before),
    subject_token_uses: await store.pruneSubjectTokenUses(before),
  };
}

/** The logger methods maintenance uses; pino's logger satisfies it. */
export interface MaintenanceLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface MaintenanceOptions {
  store: Store;
  now: () => number;
  /** How far past its end a row is kept (`tokens.clock_skew`). */
  graceMs: number;
  /** Default MAINTENANCE_INTERVAL_MS. */
  intervalMs?: number;
  /** This process's lease holder id (random by default). */
  holderId?: string;
  logger?: MaintenanceLogger;
  /** Told how many rows of each table a round removed (metrics). */
  onPruned?: (counts: PruneCounts) => void;
}

/**
 * Every `intervalMs`, takes the `store-maintenance` lease and, unless another process ran a round
 * within the interval, prunes expired rows and records the time. The lease is released after each
 * round, like the key rotation scheduler's (src/keys/rotation.ts).
 */
export class StoreMaintenance {
  readonly #opts: MaintenanceOptions;
  readonly #intervalMs: number;
  readonly #holder: string;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PruneCounts | undefined> | undefined;
  #stopped = false;

  constructor(opts: MaintenanceOptions) {
    this.#intervalMs = opts.intervalMs ?? MAINTENANCE_INTERVAL_MS;
    if (!(this.#intervalMs > 0)) throw new TypeError('intervalMs must be > 0');
    if (!(opts.graceMs >= 0)) throw new TypeError('graceMs must be >= 0');
    this.#opts = opts;
    this.#holder = opts.holderId ?? `maintenance-${randomBytes(6).toString('base64url')}`;
  }

  /** Runs a round at once (a server that was down a while catches up) and then every interval. */
  start(): void {
    if (this.#timer || this.#stopped) return;
    const run = () => void this.tick().catch((err: unknown) => this.#fail(err));
    run();
    this.#timer = setInterval(run, this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
    await this.#opts.store.releaseLease(MAINTENANCE_LEASE, this.#holder).catch(() => undefined);
  }

  /** One round: what it removed, or undefined when another process holds the lease or ran one lately. */
  tick(): Promise<PruneCounts | undefined> {
    this.#running ??= this.#tick().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #tick(): Promise<PruneCounts | undefined> {
    if (this.#stopped) return undefined;
    const { store, now, graceMs, logger } = this.#opts;
    if (!(await store.tryLease(MAINTENANCE_LEASE, this.#holder, MAINTENANCE_LEASE_MS, now())))
      return undefined;
    try {
      const at = now();
      const started = performance.now();
      // Read under the lease, so of several processes whose timers fire together one runs the round.
      const last = Number(await store.getMeta(MAINTENANCE_LAST_RUN));
      // A little early still counts as due, so timers that drift do not skip every other round.
      if (Number.isFinite(last) && last <= at && at - last < this.#intervalMs * 0.9) return undefined;
      const counts = await pruneExpiredRows(store, at, graceMs);
      await store.setMeta(MAINTENANCE_LAST_RUN, String(at));
      this.#opts.onPruned?.(counts);
      logger?.debug(
        { event: 'store.pruned', ...counts, took_ms: Math.round(performance.now() - started) },
        'expired rows removed',
      );
      return counts;
    } finally {
      await store.releaseLease(MAINTENANCE_LEASE, this.#holder).catch(() => undefined);
    }
  }

  #fail(err: unknown): void {
    // The store's own health check reports an outage; a missed round is caught up by the next one.
    this.#opts.logger?.warn(
      { event: 'store.prune_failed', code: (err as { code?: unknown })?.code, err },
      'removing expired rows failed; the next round tries again',
    );
  }
}
