// A token-bucket limiter keyed by a string (a client address): `burst` requests at once, refilled
// continuously at `perMinute`. In memory and bounded: the least recently seen keys are forgotten first,
// so a flood of addresses costs at most `maxKeys` entries (a forgotten key starts again with a full bucket).
import { LRUCache } from 'lru-cache';

export interface TokenBucketOptions {
  perMinute: number;
  /** Bucket size; default `perMinute`. */
  burst?: number;
  maxKeys?: number;
  now?: () => number;
}

export type Take = { ok: true; remaining: number } | { ok: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBucketLimiter {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #buckets: LRUCache<string, Bucket>;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.perMinute > 0)) throw new TypeError('perMinute must be positive');
    this.#ratePerMs = opts.perMinute / 60_000;
    this.#burst = Math.max(1, opts.burst ?? opts.perMinute);
    this.#now = opts.now ?? Date.now;
    this.#buckets = new LRUCache({ max: opts.maxKeys ?? 100_000 });
  }

  /** Takes one token for `key`; refused with how long until one is available. */
  take(key: string): Take {
    const now = this.#now();
    const b = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    b.tokens = Math.min(this.#burst, b.tokens + Math.max(0, now - b.at) * this.#ratePerMs);
    b.at = now;
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true, remaining: Math.floor(b.tokens) };
    }
    return { ok: false, retryAfterMs: Math.ceil((1 - b.tokens) / this.#ratePerMs) };
  }

  /** Addresses currently remembered (for tests and metrics). */
  get size(): number {
    return this.#buckets.size;
  }
}
