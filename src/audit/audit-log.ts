// Appends audit records durably with group commit: appends arriving together share one store
// transaction, and each resolves only once its row is written. Writes signed checkpoints of the head.
import { randomId } from '../lib/random.js';
import { GatehouseError } from '../lib/errors.js';
import type { AuditInput, AuditRow, Store } from '../store/store.js';
import { canonicalJson } from './canonical-json.js';
import { signedCheckpoint, type CheckpointPayload, type CheckpointSigner } from './checkpoint.js';
import type { PartLogger } from './logger.js';
import { sealAuditRow } from './seal.js';
import { assertNoSecrets } from './secret-guard.js';

export interface AuditLogOptions {
  /** How long the first append of a batch waits for others to join it (0: until the end of this event-loop turn). */
  batchMs?: number;
  /** Most records in one transaction. */
  maxBatch?: number;
  /** Write a checkpoint after this many records… */
  checkpointEvery?: number;
  /** …or after this long, whichever comes first (and on close). */
  checkpointIntervalMs?: number;
  /** Signs a checkpoint payload into a compact JWS; without it no checkpoints are written (one-shot CLI). */
  signCheckpoint?: CheckpointSigner;
  logger?: PartLogger;
  now?: () => number;
}

export interface AppendResult {
  id: string;
  seq: number;
}

interface Pending {
  input: AuditInput;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

const TYPE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const ID = /^a_[A-Za-z0-9_-]{16}$/;

/** The id of an audit record, shown to clients on refusals: `a_` and 16 base64url characters. */
export function newAuditId(): string {
  return `a_${randomId(12)}`;
}

export class AuditLog {
  readonly #store: Store;
  readonly #batchMs: number;
  readonly #maxBatch: number;
  readonly #checkpointEvery: number;
  readonly #signCheckpoint: CheckpointSigner | undefined;
  readonly #logger: PartLogger | undefined;
  readonly #now: () => number;
  #queue: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #interval: NodeJS.Timeout | undefined;
  #sinceCheckpoint = 0;
  #lastCheckpointSeq = 0;
  #checkpointing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(store: Store, options: AuditLogOptions = {}) {
    this.#store = store;
    this.#batchMs = options.batchMs ?? 0;
    this.#maxBatch = options.maxBatch ?? 256;
    this.#checkpointEvery = options.checkpointEvery ?? 1000;
    this.#signCheckpoint = options.signCheckpoint;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    if (this.#maxBatch < 1 || this.#checkpointEvery < 1)
      throw new TypeError('maxBatch and checkpointEvery must be ≥ 1');
    const intervalMs = options.checkpointIntervalMs ?? 60_000;
    if (this.#signCheckpoint && intervalMs > 0) {
      this.#interval = setInterval(() => void this.#checkpointHead(), intervalMs);
      this.#interval.unref();
    }
  }

  /**
   * Appends one record; resolves when it is durable. `type` is `noun.outcome`; `data` must be plain
   * JSON and hold no secret (TypeError otherwise). Rejects with ERR_AUDIT_WRITE_FAILED when the
   * write fails: no record is dropped silently.
   */
  append(type: string, data: Record<string, unknown>, options: { id?: string } = {}): Promise<AppendResult> {
    if (!TYPE.test(type))
      throw new TypeError(`audit type must be noun.outcome (like token.issued), got ${JSON.stringify(type)}`);
    const id = options.id ?? newAuditId();
    if (!ID.test(id))
      throw new TypeError('audit id must be a_ followed by 16 base64url characters (see newAuditId)');
    if (data === null || typeof data !== 'object' || Array.isArray(data))
      throw new TypeError('audit data must be an object');
    assertNoSecrets(data);
    // What is hashed is exactly what the store gives back: plain JSON, undefined keys gone. The
    // canonical text goes along, so the store need not serialize it again.
    const text = canonicalJson(data);
    const clean = JSON.parse(text) as Record<string, unknown>;
    if (this.#closed) {
      return Promise.reject(
        new GatehouseError('ERR_AUDIT_WRITE_FAILED', 'the audit log is closed', { field: type }),
      );
    }
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ input: { ts: this.#now(), type, id, data: clean, text }, resolve, reject });
      this.#schedule();
    });
  }

  /** Writes what is queued, a last checkpoint of the head, and stops the timers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#interval) clearInterval(this.#interval);
    await this.flush();
    await this.#checkpointHead();
  }

  /** Resolves once everything appended so far has been written (or has failed). */
  async flush(): Promise<void> {
    while (this.#queue.length > 0 || this.#writing) {
      if (this.#writing) await this.#writing;
      else this.#startWrite();
    }
  }

  #schedule(): void {
    if (this.#writing) return; // the write in flight starts the next batch when it ends
    if (this.#queue.length >= this.#maxBatch) {
      this.#startWrite();
    } else if (!this.#timer) {
      // With no wait configured, appends made in the same turn of the event loop still share a write;
      // under load the write in flight gathers the next batch by itself (group commit).
      this.#timer =
        this.#batchMs > 0
          ? setTimeout(() => this.#startWrite(), this.#batchMs)
          : (setImmediate(() => this.#startWrite()) as unknown as NodeJS.Timeout);
    }
  }

  #startWrite(): void {
    if (this.#timer) {
      if (this.#batchMs > 0) clearTimeout(this.#timer);
      else clearImmediate(this.#timer as unknown as NodeJS.Immediate);
      this.#timer = undefined;
    }
    if (this.#writing || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    this.#writing = this.#write(batch).finally(() => {
      this.#writing = undefined;
      // Appends that arrived during the write form the next batch straight away: they have waited already.
      if (this.#queue.length > 0) this.#startWrite();
    });
  }

  async #write(batch: Pending[]): Promise<void> {
    let rows: AuditRow[];
    try {
      rows = await this.#store.appendAudit(
        batch.map((p) => p.input),
        sealAuditRow,
      );
      if (rows.length !== batch.length)
        throw new Error(`store returned ${rows.length} rows for ${batch.length} records`);
    } catch (cause) {
      const code = (cause as { code?: unknown })?.code;
      this.#logger?.error({ event: 'audit.write_failed', records: batch.length, code }, 'audit write failed');
      for (const p of batch) {
        p.reject(
          new GatehouseError(
            'ERR_AUDIT_WRITE_FAILED',
            'the audit record could not be written',
            { field: p.input.type },
            { cause },
          ),
        );
      }
      return;
    }
    batch.forEach((p, i) => p.resolve({ id: p.input.id, seq: (rows[i] as AuditRow).seq }));
    this.#sinceCheckpoint += rows.length;
    const last = rows[rows.length - 1] as AuditRow;
    if (this.#sinceCheckpoint >= this.#checkpointEvery)
      void this.#checkpoint({ seq: last.seq, hash: last.hash });
  }

  async #checkpointHead(): Promise<void> {
    if (!this.#signCheckpoint) return;
    try {
      const head = await this.#store.auditHead();
      if (head) await this.#checkpoint(head);
    } catch (e) {
      this.#logger?.error(
        { event: 'audit.checkpoint_failed', code: (e as { code?: unknown })?.code },
        'audit checkpoint failed',
      );
    }
  }

  /** One checkpoint at a time, in seq order, and none for a head already checkpointed. */
  #checkpoint(head: { seq: number; hash: string }): Promise<void> {
    const signer = this.#signCheckpoint;
    if (!signer) return Promise.resolve();
    // Both taken now, not when the previous signature is done: the checkpoint says when the head was
    // reached, and writes in between must not ask for another one.
    this.#sinceCheckpoint = 0;
    const payload: CheckpointPayload = { seq: head.seq, hash: head.hash, ts: this.#now() };
    this.#checkpointing = this.#checkpointing.then(async () => {
      if (head.seq <= this.#lastCheckpointSeq) return;
      try {
        const cp = await signedCheckpoint(payload, signer);
        await this.#store.insertCheckpoint(cp);
        this.#lastCheckpointSeq = head.seq;
        // Also to the log, so the head can be kept outside the store and truncation caught.
        this.#logger?.info(
          { event: 'audit.checkpoint', seq: cp.seq, hash: cp.hash, ts: cp.createdAt, jws: cp.jws },
          'audit.checkpoint',
        );
      } catch (e) {
        this.#logger?.error(
          { event: 'audit.checkpoint_failed', seq: head.seq, code: (e as { code?: unknown })?.code },
          'audit checkpoint failed',
        );
      }
    });
    return this.#checkpointing;
  }
}
