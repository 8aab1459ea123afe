// `server.workers`: several worker processes share one port (node:cluster; the primary hands each new
// connection to the next worker). Workers are whole Gatehouse instances on the same store, as replicas
// are: SQLite takes a write lock per transaction and the change feed carries revocations between
// processes, PostgreSQL as for replicas. The primary runs no Gatehouse of its own: it starts the
// workers, restarts one that dies, passes SIGHUP on, drains them all on SIGTERM, and answers /metrics
// for all of them (a worker that gets the scrape asks it) so counters are totals.
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../lib/logger.js';

/** The worker count `server.workers` asks for: `auto` is one per CPU. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? Math.max(1, availableParallelism()) : setting;
}

/** What a worker tells the primary once it serves. */
interface ReadyMessage {
  gatehouse: 'ready';
  issuer: string;
  url: string;
}
interface MetricsAsk {
  gatehouse: 'metrics?';
  id: number;
}
interface MetricsCollect {
  gatehouse: 'metrics-collect';
  id: number;
}
interface MetricsPart {
  gatehouse: 'metrics-part';
  id: number;
  json: unknown[];
}
interface MetricsAnswer {
  gatehouse: 'metrics!';
  id: number;
  text: string;
  contentType: string;
}
type Message = ReadyMessage | MetricsAsk | MetricsCollect | MetricsPart | MetricsAnswer;

function isMessage(m: unknown): m is Message {
  return typeof m === 'object' && m !== null && typeof (m as { gatehouse?: unknown }).gatehouse === 'string';
}

/** How long the primary waits for each worker's part of a scrape before answering with what came. */
const SCRAPE_WAIT_MS = 2_000;
/** A worker that dies within this long of its start is failing to start: stop rather than loop. */
const CRASH_LOOP_MS = 5_000;

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** The ready line, once every worker serves. */
  onReady: (info: { issuer: string; url: string; workers: number }) => void;
}

/**
 * Runs the cluster's primary until SIGINT/SIGTERM (then drains the workers) or until the workers cannot
 * start. Resolves with the exit code.
 */
export function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { logger } = opts;
  const startedAt = new Map<Worker, number>();
  const slot = new Map<Worker, number>();
  const ready = new Set<Worker>();
  let announced = false;
  let stopping = false;
  let failed: number | undefined;
  let scrapeId = 0;
  const scrapes = new Map<number, { parts: unknown[][]; want: number; done: () => void }>();

  return new Promise<number>((resolve) => {
    const finish = () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ?? 0);
    };
    const fork = (index: number) => {
      const w = cluster.fork({ GATEHOUSE_WORKER: String(index) });
      startedAt.set(w, Date.now());
      slot.set(w, index);
      w.on('message', (m: unknown) => void onMessage(w, m));
    };
    const stopAll = (signal: NodeJS.Signals) => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    };

    async function onMessage(w: Worker, m: unknown): Promise<void> {
      if (!isMessage(m)) return;
      if (m.gatehouse === 'ready') {
        ready.add(w);
        if (!announced && ready.size === opts.workers) {
          announced = true;
          opts.onReady({ issuer: m.issuer, url: m.url, workers: opts.workers });
        }
      } else if (m.gatehouse === 'metrics?') {
        const answer = await collectMetrics();
        if (w.isConnected()) w.send({ gatehouse: 'metrics!', id: m.id, ...answer } satisfies MetricsAnswer);
      } else if (m.gatehouse === 'metrics-part') {
        const s = scrapes.get(m.id);
        if (s) {
          s.parts.push(m.json);
          if (s.parts.length >= s.want) s.done();
        }
      }
    }

    async function collectMetrics(): Promise<{ text: string; contentType: string }> {
      const id = ++scrapeId;
      const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());
      const parts: unknown[][] = [];
      await new Promise<void>((done) => {
        const timer = setTimeout(done, SCRAPE_WAIT_MS);
        scrapes.set(id, {
          parts,
          want: live.length,
          done: () => {
            clearTimeout(timer);
            done();
          },
        });
        for (const w of live) w.send({ gatehouse: 'metrics-collect', id } satisfies MetricsCollect);
      });
      scrapes.delete(id);
      const merged = AggregatorRegistry.aggregate(parts as never);
      return { text: await merged.metrics(), contentType: merged.contentType };
    }

    cluster.on('exit', (w, code, signal) => {
      const index = slot.get(w) ?? 0;
      const lived = Date.now() - (startedAt.get(w) ?? 0);
      const wasReady = ready.delete(w);
      slot.delete(w);
      startedAt.delete(w);
      if (stopping) return finish();
      // A worker that never served, or died at once, cannot start (a taken port, a bad store): stop.
      if (!wasReady || lived < CRASH_LOOP_MS) {
        logger.error(
          { event: 'worker.failed', worker: index, code, signal },
          'a worker could not start; stopping the others',
        );
        failed = code && code > 0 ? code : 1;
        stopping = true;
        stopAll('SIGTERM');
        return finish();
      }
      logger.error(
        { event: 'worker.restarted', worker: index, code, signal },
        'a worker exited; starting a new one',
      );
      fork(index);
    });

    const stop = () => {
      if (stopping) return;
      stopping = true;
      logger.info({ event: 'server.draining', workers: opts.workers }, 'draining every worker');
      stopAll('SIGTERM');
      finish();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.on('SIGHUP', () => stopAll('SIGHUP'));
    for (let i = 0; i < opts.workers; i++) fork(i);
  });
}

/** In a worker: the index the primary gave it, or undefined outside a cluster. */
export function workerIndex(): number | undefined {
  return cluster.isWorker ? Number(process.env.GATEHOUSE_WORKER ?? cluster.worker?.id ?? 0) : undefined;
}

/**
 * In a worker: tells the primary it serves, answers its scrape requests from `registry`, and returns the
 * /metrics source that asks the primary for the whole cluster's figures.
 */
export function joinCluster(
  registry: Registry,
  info: { issuer: string; url: string },
): () => Promise<{ text: string; contentType: string }> {
  let next = 0;
  const waiting = new Map<number, (a: { text: string; contentType: string }) => void>();
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    if (m.gatehouse === 'metrics-collect') {
      void registry.getMetricsAsJSON().then((json) => {
        if (process.connected)
          process.send?.({ gatehouse: 'metrics-part', id: m.id, json } satisfies MetricsPart);
      });
    } else if (m.gatehouse === 'metrics!') {
      waiting.get(m.id)?.({ text: m.text, contentType: m.contentType });
      waiting.delete(m.id);
    }
  });
  process.send?.({ gatehouse: 'ready', ...info } satisfies ReadyMessage);
  return () =>
    new Promise((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the cluster primary did not answer the scrape'));
      }, SCRAPE_WAIT_MS * 2);
      waiting.set(id, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
      process.send?.({ gatehouse: 'metrics?', id } satisfies MetricsAsk);
    });
}
