// What every benchmark shares: the result row, a loop bounded in time that keeps a fixed number of
// operations in flight and records their latencies, and a /token request that fails on any refusal.
import type { Pool } from 'undici';

/** One measured case. `vs` names the reference row (same group, same run) its ratio is taken against. */
export interface BenchResult {
  group: string;
  name: string;
  /** Operations per second. */
  value: number;
  unit: string;
  p50Ms?: number;
  p99Ms?: number;
  vs?: string;
}

export interface LoopResult {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  count: number;
}

/** Seconds per case: BENCH_SECONDS, default 3. */
export function caseSeconds(): number {
  const s = Number(process.env.BENCH_SECONDS ?? '3');
  return Number.isFinite(s) && s > 0 ? s : 3;
}

/** Runs `op` with `inFlight` concurrent loops for `seconds` (after a short warm-up); fails on any error. */
export async function bounded(
  op: () => Promise<unknown>,
  opts: { inFlight: number; seconds?: number; warmupMs?: number },
): Promise<LoopResult> {
  const seconds = opts.seconds ?? caseSeconds();
  const warmUntil = performance.now() + (opts.warmupMs ?? 300);
  while (performance.now() < warmUntil) await op();
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await op();
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: opts.inFlight }, worker));
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { opsPerSec: latencies.length / elapsed, p50Ms: at(0.5), p99Ms: at(0.99), count: latencies.length };
}

export function row(group: string, name: string, unit: string, r: LoopResult, vs?: string): BenchResult {
  return { group, name, unit, value: r.opsPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms, ...(vs ? { vs } : {}) };
}

/**
 * A POST of `body` (form-encoded) to `/token` through `pool`, with `headers` added; throws unless the
 * answer is 200, so a benchmark never counts refusals as issued tokens.
 */
export function tokenRequest(
  pool: Pool,
  headers: Record<string, string> = {},
): (body: string, extra?: Record<string, string>) => Promise<void> {
  return async (body, extra = {}) => {
    const res = await pool.request({
      method: 'POST',
      path: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers, ...extra },
      body,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`/token answered ${res.statusCode}: ${text.slice(0, 200)}`);
  };
}

/** The `authorization` header of HTTP Basic client authentication. */
export function basicAuth(id: string, secret: string): string {
  return 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');
}
