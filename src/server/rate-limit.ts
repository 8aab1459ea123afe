// Per-address rate limits on the token endpoint and on browser sign-in: a token bucket per client
// address (src/lib/token-bucket.ts), 429 with Retry-After when empty. Refusals are audited sampled — the
// first per address, then at most one record per address per minute carrying the count since — so a
// flood cannot turn the audit log into its amplifier.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { Counter } from 'prom-client';
import type { GatehouseConfig } from '../config/schema.js';
import type { AuditSink } from '../audit/sink.js';
import type { PartLogger } from '../audit/logger.js';
import { TokenBucketLimiter } from '../lib/token-bucket.js';
import { parseCidr, requestClientAddress, type Cidr } from '../policy/cidr.js';

export type LimitName = 'token' | 'login';

export interface RateLimitOptions {
  config: GatehouseConfig;
  audit: Pick<AuditSink, 'append'>;
  logger: PartLogger;
  /** Counts refusals by limit. */
  refused?: Counter<'limit'>;
  now?: () => number;
}

/** One audit record per address and limit per this long, at most. */
const AUDIT_EVERY_MS = 60_000;

interface AuditState {
  lastAt: number;
  suppressed: number;
}

export class RateLimits {
  readonly #limiters = new Map<LimitName, TokenBucketLimiter>();
  readonly #prefix: string;
  readonly #trusted: Cidr[];
  readonly #audit: Pick<AuditSink, 'append'>;
  readonly #logger: PartLogger;
  readonly #refused: Counter<'limit'> | undefined;
  readonly #now: () => number;
  readonly #audited: LRUCache<string, AuditState>;
  // All addresses together: at most this many ratelimit.exceeded records a minute.
  readonly #auditBudget: TokenBucketLimiter;

  constructor(opts: RateLimitOptions) {
    const { config } = opts;
    this.#now = opts.now ?? Date.now;
    const max = config.rate_limits.max_addresses;
    for (const name of ['token', 'login'] as const) {
      const c = config.rate_limits[name];
      if (c)
        this.#limiters.set(
          name,
          new TokenBucketLimiter({ perMinute: c.per_minute, burst: c.burst, maxKeys: max, now: this.#now }),
        );
    }
    this.#prefix = new URL(config.issuer.url).pathname.replace(/\/+$/, '');
    this.#trusted = config.proxy.trusted_proxies
      .map((t) => parseCidr(t))
      .filter((c): c is Cidr => typeof c !== 'string');
    this.#audit = opts.audit;
    this.#logger = opts.logger;
    this.#refused = opts.refused;
    this.#audited = new LRUCache({ max: 10_000 });
    this.#auditBudget = new TokenBucketLimiter({ perMinute: 600, burst: 60, maxKeys: 1, now: this.#now });
  }

  /** Whether any limit is configured (so the server can skip the check entirely). */
  get enabled(): boolean {
    return this.#limiters.size > 0;
  }

  /** Which limit a request falls under, if any. */
  classify(req: IncomingMessage): LimitName | undefined {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const p = this.#prefix && path.startsWith(this.#prefix + '/') ? path.slice(this.#prefix.length) : path;
    if (p === '/token' && req.method === 'POST') return 'token';
    if (p === '/.gatehouse/login' || p === '/.gatehouse/callback') return 'login';
    return undefined;
  }

  /**
   * The address limits count against: the same one policy's `source_ip`, the audit log and the issuer
   * see (src/policy/cidr.ts). X-Forwarded-For is read only when the peer is a trusted proxy, so a client
   * that connects directly cannot pick the address its requests are counted against.
   */
  clientAddress(req: IncomingMessage): string {
    return requestClientAddress(
      req.socket.remoteAddress ?? '',
      req.headers['x-forwarded-for'],
      this.#trusted,
    );
  }

  /** Takes one request from the address's bucket; when refused, sends the 429 and returns true. */
  refuse(req: IncomingMessage, res: ServerResponse): boolean {
    const name = this.classify(req);
    const limiter = name && this.#limiters.get(name);
    if (!name || !limiter) return false;
    const addr = this.clientAddress(req);
    const r = limiter.take(addr);
    if (r.ok) return false;
    this.#refused?.inc({ limit: name });
    const retryAfter = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
    this.#auditSampled(name, addr, retryAfter);
    // RFC 6585 §4: 429 with Retry-After. The body is an RFC 6749 §5.2-shaped error; its code is
    // `temporarily_unavailable` (registered, and what OAuth clients already treat as "retry later").
    const body = JSON.stringify({
      error: 'temporarily_unavailable',
      error_description: `too many requests from this address; retry after ${retryAfter}s`,
    });
    res.writeHead(429, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'retry-after': String(retryAfter),
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
    return true;
  }

  #auditSampled(limit: LimitName, addr: string, retryAfter: number): void {
    const now = this.#now();
    const key = `${limit} ${addr}`;
    const st = this.#audited.get(key);
    if (st && now - st.lastAt < AUDIT_EVERY_MS) {
      st.suppressed++;
      return;
    }
    if (!this.#auditBudget.take('all').ok) {
      if (st) st.suppressed++;
      return;
    }
    const refusedSinceLast = st ? st.suppressed + 1 : 1;
    this.#audited.set(key, { lastAt: now, suppressed: 0 });
    this.#audit
      .append('ratelimit.exceeded', {
        limit,
        source_ip: addr,
        refused_since_last_record: refusedSinceLast,
        retry_after_s: retryAfter,
      })
      .catch((err: unknown) => this.#logger.error({ err }, 'audit of a rate-limit refusal failed'));
  }
}
