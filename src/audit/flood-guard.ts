// Bounds what refusals of requests that proved no identity can write to the audit log. Each client
// address gets a record per refusal up to a budget (a token bucket), and all addresses together up to
// another; past either, refusals are counted into one summary record per address, type and code, written
// when its window closes under an id chosen when it opened — so every refused client is still shown the
// id of a record that stands for its request.
import { TokenBucketLimiter } from '../lib/token-bucket.js';
import { newAuditId } from './audit-log.js';
import type { PartLogger } from './logger.js';
import type { AuditSink } from './sink.js';

export interface FloodBudget {
  per_minute: number;
  burst?: number | undefined;
}

export interface FloodGuardSettings {
  /** Records one client address may cause, refilled at `per_minute`. */
  per_address: FloodBudget;
  /** Records all addresses together may cause. */
  overall: FloodBudget;
}

export interface FloodGuardOptions {
  sink: Pick<AuditSink, 'append'>;
  settings: FloodGuardSettings;
  logger?: PartLogger;
  now?: () => number;
  /** How long a summary gathers refusals before it is written; default one minute. */
  windowMs?: number;
  /** Summaries open at once; past this, refusals from further addresses share one under `source_ip: "*"`. */
  maxSummaries?: number;
  /** Addresses whose budget is remembered (least recently seen forgotten first). */
  maxAddresses?: number;
}

export interface GuardedAppend {
  /** The record's id: its own, or the summary's that will stand for it. */
  id: string;
  /** False when the refusal went into a summary written later. */
  written: boolean;
}

interface Summary {
  id: string;
  type: string;
  /** The first coalesced refusal's fields: the summary reads like it, with a count. */
  first: Record<string, unknown>;
  count: number;
  from: number;
  to: number;
  due: number;
}

export class FloodGuard {
  readonly #sink: Pick<AuditSink, 'append'>;
  readonly #logger: PartLogger | undefined;
  readonly #now: () => number;
  readonly #windowMs: number;
  readonly #maxSummaries: number;
  readonly #maxAddresses: number;
  #perAddress: TokenBucketLimiter;
  #overall: TokenBucketLimiter;
  readonly #open = new Map<string, Summary>();
  readonly #timer: NodeJS.Timeout;
  #writing: Promise<void> = Promise.resolve();

  constructor(opts: FloodGuardOptions) {
    this.#sink = opts.sink;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#maxSummaries = opts.maxSummaries ?? 1000;
    this.#maxAddresses = opts.maxAddresses ?? 100_000;
    [this.#perAddress, this.#overall] = this.#limiters(opts.settings);
    // Checked a few times a window, so a summary is written at most a quarter window late.
    this.#timer = setInterval(() => void this.flush(), Math.max(250, Math.floor(this.#windowMs / 4)));
    this.#timer.unref();
  }

  #limiters(s: FloodGuardSettings): [TokenBucketLimiter, TokenBucketLimiter] {
    const bucket = (b: FloodBudget, maxKeys: number) =>
      new TokenBucketLimiter({ perMinute: b.per_minute, burst: b.burst, maxKeys, now: this.#now });
    return [bucket(s.per_address, this.#maxAddresses), bucket(s.overall, 1)];
  }

  /** New budgets after a configuration reload; open summaries are kept. */
  configure(settings: FloodGuardSettings): void {
    [this.#perAddress, this.#overall] = this.#limiters(settings);
  }

  /**
   * Records one refusal: its own record (resolving once durable, rejecting like AuditSink.append) while
   * the address and the whole server are within budget, otherwise a count in the open summary for its
   * address, type and `code` (or `reason`). `data` must already be safe to write.
   */
  async append(
    type: string,
    data: Record<string, unknown>,
    address: string,
    opts: { id?: string } = {},
  ): Promise<GuardedAppend> {
    // The overall budget is only spent by a request its address would have let through.
    if (this.#perAddress.take(address).ok && this.#overall.take('all').ok) {
      const r = await this.#sink.append(type, data, opts);
      return { id: r.id, written: true };
    }
    const now = this.#now();
    const code = String(data.code ?? data.reason ?? '');
    let key = `${type}\n${address}\n${code}`;
    let summary = this.#open.get(key);
    if (!summary && this.#open.size >= this.#maxSummaries) {
      key = `${type}\n*\n${code}`;
      summary = this.#open.get(key);
    }
    if (!summary) {
      summary = {
        id: newAuditId(),
        type,
        first: key.includes('\n*\n') ? { ...data, source_ip: '*' } : data,
        count: 0,
        from: now,
        to: now,
        due: now + this.#windowMs,
      };
      this.#open.set(key, summary);
    }
    summary.count++;
    summary.to = now;
    return { id: summary.id, written: false };
  }

  /** Writes the summaries whose window has closed (all of them with `all`, as on shutdown). */
  flush(opts: { all?: boolean } = {}): Promise<void> {
    const now = this.#now();
    const due: Summary[] = [];
    for (const [key, s] of this.#open) {
      if (opts.all || s.due <= now) {
        due.push(s);
        this.#open.delete(key);
      }
    }
    if (due.length === 0) return this.#writing;
    // One flush at a time, in order: a summary never lands before the one it follows.
    this.#writing = this.#writing.then(async () => {
      for (const s of due) {
        try {
          await this.#sink.append(
            s.type,
            { ...s.first, coalesced: { count: s.count, from: s.from, to: s.to } },
            { id: s.id },
          );
        } catch (err) {
          this.#logger?.error(
            { err, event: 'audit.summary_failed', type: s.type, count: s.count },
            'audit summary of coalesced refusals failed',
          );
        }
      }
    });
    return this.#writing;
  }

  /** Refusals counted but not yet written. */
  get pending(): number {
    let n = 0;
    for (const s of this.#open.values()) n += s.count;
    return n;
  }

  /** Writes every open summary and stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush({ all: true });
  }
}
