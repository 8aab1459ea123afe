// Prometheus metrics: one registry per running Gatehouse (tests run several in one process). Token
// counters follow the audit log (every issued or refused token is audited, so counting at the append
// keeps the two in step); secret and key gauges are read from the store and key ring on each scrape.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditSink } from '../audit/sink.js';
import type { KeyRing } from '../keys/keyring.js';
import type { Store } from '../store/store.js';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'route' | 'method' | 'status'>;
  tokensIssued: Counter<'grant' | 'client'>;
  tokensRefused: Counter<'grant' | 'reason'>;
  secretExpiry: Gauge<'client' | 'secret_id'>;
  keyAge: Gauge<'kid' | 'alg' | 'state'>;
  /** Proxy decisions by route, outcome (allowed, denied, shadow_denied) and reason (rule or error code). */
  proxyDecisions: Counter<'route' | 'outcome' | 'reason'>;
  /** Time from sending a request upstream to its response head, by route. */
  upstreamDuration: Histogram<'route'>;
  /** Bearer-token verification cache lookups, by result (hit, miss). */
  verifyCache: Counter<'result'>;
  /** Upstream assertion cache lookups, by result (hit, miss). */
  assertionCache: Counter<'result'>;
  /** Configuration reloads, by outcome (applied, failed, unchanged). */
  configReloads: Counter<'outcome'>;
  /** Requests refused by a rate limit, by limit (token, login). */
  rateLimited: Counter<'limit'>;
  /** Expired rows the housekeeping rounds removed, by table (src/server/maintenance.ts). */
  storePruned: Counter<'table'>;
}

/** Where the scrape-time gauges read from; without them the gauges stay empty. */
export interface MetricSources {
  store: Pick<Store, 'listSecrets'>;
  keys: Pick<KeyRing, 'all'>;
  now: () => number;
}

export function createMetrics(sources?: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_process_' });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'HTTP request latency by route kind, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    tokensIssued: new Counter({
      name: 'gatehouse_tokens_issued_total',
      help: 'Tokens issued, by grant and client',
      labelNames: ['grant', 'client'],
      registers: [registry],
    }),
    tokensRefused: new Counter({
      name: 'gatehouse_tokens_refused_total',
      help: 'Token requests refused, by grant and reason',
      labelNames: ['grant', 'reason'],
      registers: [registry],
    }),
    secretExpiry: new Gauge({
      name: 'gatehouse_client_secret_expiry_seconds',
      help: 'Seconds until each live client secret with an expiry stops working',
      labelNames: ['client', 'secret_id'],
      registers: [registry],
      // Every worker reads the same store: with server.workers the cluster reports one worker's value.
      aggregator: 'first',
      async collect() {
        if (!sources) return;
        this.reset();
        const now = sources.now();
        for (const s of await sources.store.listSecrets()) {
          if (s.expiresAt === null || s.expiresAt <= now) continue;
          this.set({ client: s.clientId, secret_id: s.id }, (s.expiresAt - now) / 1000);
        }
      },
    }),
    proxyDecisions: new Counter({
      name: 'gatehouse_proxy_decisions_total',
      help: 'Proxy access decisions by route, outcome (allowed, denied, shadow_denied) and reason',
      labelNames: ['route', 'outcome', 'reason'],
      registers: [registry],
    }),
    upstreamDuration: new Histogram({
      name: 'gatehouse_proxy_upstream_duration_seconds',
      help: 'Time until the upstream answered (response head), by route',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    verifyCache: new Counter({
      name: 'gatehouse_proxy_token_cache_total',
      help: 'Bearer-token verification cache lookups by result (hit, miss)',
      labelNames: ['result'],
      registers: [registry],
    }),
    assertionCache: new Counter({
      name: 'gatehouse_proxy_assertion_cache_total',
      help: 'Upstream identity assertion cache lookups by result (hit, miss)',
      labelNames: ['result'],
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'gatehouse_config_reloads_total',
      help: 'Configuration reloads by outcome (applied, failed, unchanged)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'gatehouse_rate_limited_total',
      help: 'Requests refused by a per-address rate limit, by limit (token, login)',
      labelNames: ['limit'],
      registers: [registry],
    }),
    storePruned: new Counter({
      name: 'gatehouse_store_pruned_rows_total',
      help: 'Expired rows removed from the store by housekeeping, by table',
      labelNames: ['table'],
      registers: [registry],
    }),
    keyAge: new Gauge({
      name: 'gatehouse_signing_key_age_seconds',
      help: 'Seconds since each published signing key was created, by kid, algorithm and state',
      labelNames: ['kid', 'alg', 'state'],
      registers: [registry],
      aggregator: 'first',
      collect() {
        if (!sources) return;
        this.reset();
        const now = sources.now();
        for (const k of sources.keys.all())
          this.set({ kid: k.kid, alg: k.alg, state: k.state }, (now - k.record.createdAt) / 1000);
      },
    }),
  };
}

// Reasons become label values only when they are short snake_case words, so a free-text reason cannot
// blow up the number of series; anything else is counted under its OAuth error code.
const REASON = /^[a-z][a-z0-9_]{0,39}$/;

function label(v: unknown, fallback: string): string {
  return typeof v === 'string' && v !== '' ? v.slice(0, 128) : fallback;
}

/**
 * An audit sink that counts `token.issued` and `token.refused` records once they are durable (refusals
 * coalesced under a flood are counted when their summary is written).
 */
export function countingAuditSink(sink: AuditSink, metrics: Metrics): AuditSink {
  return {
    async append(type, data, opts) {
      const out = await sink.append(type, data, opts);
      if (type === 'token.issued') {
        metrics.tokensIssued.inc({
          grant: label(data.grant, 'unknown'),
          client: label(data.client_id, 'unknown'),
        });
      } else if (type === 'token.refused') {
        const reason =
          typeof data.reason === 'string' && REASON.test(data.reason)
            ? data.reason
            : label(data.code, 'unknown');
        // A summary of coalesced refusals (src/audit/flood-guard.ts) stands for `coalesced.count` of them.
        const coalesced = (data.coalesced as { count?: unknown } | undefined)?.count;
        metrics.tokensRefused.inc(
          { grant: label(data.grant, 'unknown'), reason },
          typeof coalesced === 'number' && coalesced > 0 ? coalesced : 1,
        );
      }
      return out;
    },
  };
}
