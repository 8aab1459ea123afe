// Prometheus metrics: one registry per running Gatehouse (tests run several in one process).
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'route' | 'method' | 'status'>;
  tokensIssued: Counter<'grant' | 'client'>;
  tokensRefused: Counter<'grant' | 'reason'>;
}

export function createMetrics(): Metrics {
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
  };
}
