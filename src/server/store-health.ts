// Whether the store answers, and for how long it has not: a periodic ping plus what the change feed
// reports. Issuance fails fast while the store is down; verification from memory (keys, revocation
// set) keeps serving within the grace, and refuses after it (docs/scaling.md, "Failure modes").
import { GatehouseError } from '../lib/errors.js';
import type { Store } from '../store/store.js';

export interface StoreHealthOptions {
  /** Pinged every `intervalMs`; a failed ping marks the store down, a good one up. */
  store: Pick<Store, 'ping'>;
  /** How long memory (keys, revocation set) may keep serving after the store went away. */
  graceMs: number;
  /** Ping period (default 1000 ms). */
  intervalMs?: number;
  /**
   * Runs after the store answers again and before it is reported up (the revocation set catches up
   * here, so a replica never reports fresh with revocations it has not read).
   */
  onRecover?: () => Promise<void>;
  /** Told of every change of state. */
  onChange?: (state: StoreHealthState) => void;
  /** Wall clock; health is about real time even when tests freeze the token clock. */
  now?: () => number;
}

export interface StoreHealthState {
  healthy: boolean;
  /** Epoch ms when the current state began. */
  since: number;
  /** Why the store is down (a code and message, never a URL with a password). */
  reason?: string;
  withinGrace: boolean;
}

export class StoreHealth {
  readonly #opts: StoreHealthOptions;
  readonly #now: () => number;
  #healthy = true;
  #since: number;
  #reason: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;

  constructor(opts: StoreHealthOptions) {
    if (!(opts.graceMs >= 0)) throw new TypeError('graceMs must be >= 0');
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#since = this.#now();
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  get since(): number {
    return this.#since;
  }

  get reason(): string | undefined {
    return this.#reason;
  }

  /** True while the store is up, or has been down for less than the grace. */
  get withinGrace(): boolean {
    return this.#healthy || this.#now() - this.#since < this.#opts.graceMs;
  }

  state(): StoreHealthState {
    return {
      healthy: this.#healthy,
      since: this.#since,
      ...(this.#reason !== undefined ? { reason: this.#reason } : {}),
      withinGrace: this.withinGrace,
    };
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.check(), this.#opts.intervalMs ?? 1000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One ping now (concurrent callers share it); never throws. */
  check(): Promise<void> {
    this.#checking ??= (async () => {
      try {
        await this.#opts.store.ping();
        if (!this.#healthy) {
          await this.#opts.onRecover?.();
          this.#set(true, undefined);
        }
      } catch (e) {
        this.reportError(e);
      } finally {
        this.#checking = undefined;
      }
    })();
    return this.#checking;
  }

  /** Marks the store down (a failed ping, a change-feed error); the grace counts from the first one. */
  reportError(e: unknown): void {
    if (!this.#healthy) return;
    const code = (e as { code?: unknown } | null)?.code;
    const message = e instanceof Error ? e.message : String(e);
    this.#set(false, typeof code === 'string' ? `${code}: ${message}` : message);
  }

  /** Throws ERR_STORE_UNAVAILABLE once the store has been away longer than the grace. */
  assertWithinGrace(what: string): void {
    if (this.withinGrace) return;
    throw new GatehouseError(
      'ERR_STORE_UNAVAILABLE',
      `${what}: the store has been unreachable since ${new Date(this.#since).toISOString()}, longer than the grace of ${this.#opts.graceMs} ms`,
      { since: this.#since, graceMs: this.#opts.graceMs },
    );
  }

  /** Throws ERR_STORE_UNAVAILABLE while the store is down (work that needs it now: issuance). */
  assertHealthy(what: string): void {
    if (this.#healthy) return;
    throw new GatehouseError(
      'ERR_STORE_UNAVAILABLE',
      `${what}: the store has been unreachable since ${new Date(this.#since).toISOString()}`,
      { since: this.#since },
    );
  }

  #set(healthy: boolean, reason: string | undefined): void {
    this.#healthy = healthy;
    this.#reason = reason;
    this.#since = this.#now();
    this.#opts.onChange?.(this.state());
  }
}
