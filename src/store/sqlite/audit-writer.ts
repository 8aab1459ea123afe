// Runs the store's audit appends on a worker thread (audit-worker.ts) with its own connection, so the
// FULL-sync commit of each batch no longer stops the event loop while the disk syncs.
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { AuditInput, AuditRow } from '../store.js';

/** What the worker is started with. */
export interface WorkerStart {
  path: string;
  busyTimeoutMs: number;
}
/** Main thread → worker. */
export type WorkerRequest = { kind: 'append'; n: number; records: AuditInput[] } | { kind: 'close' };
/** What the thread answers per appended row; the rest of the row is what was sent. */
export interface WorkerRow {
  seq: number;
  prevHash: string;
  hash: string;
}
/** Worker → main thread. */
export type WorkerReply =
  | { kind: 'ready' }
  | { kind: 'failed'; error: WorkerError }
  | { kind: 'done'; n: number; rows?: WorkerRow[]; error?: WorkerError };
interface WorkerError {
  message: string;
  sqliteCode?: string;
}

interface Waiting {
  records: AuditInput[];
  resolve: (rows: AuditRow[]) => void;
  reject: (e: unknown) => void;
}

// Built, this module and the worker are .js files and the worker starts from its file. Under tsx (tests,
// benches) both are .ts, and Node 20 does not apply the parent's `--import tsx` loader to a worker's
// entry file, so a two-line bootstrap registers tsx in the thread first, then imports the worker.
const SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(SOURCE ? './audit-worker.ts' : './audit-worker.js', import.meta.url);

function startWorker(start: WorkerStart): Worker {
  if (!SOURCE) return new Worker(WORKER_URL, { workerData: start });
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData: start });
}

export class AuditWriter {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, Waiting>();
  #next = 0;
  #ready = false;
  #dead = false;
  #closing = false;
  readonly #exited: Promise<void>;

  /** Starts the thread; appends go to it once `usable` (until then the store appends itself). */
  constructor(start: WorkerStart) {
    this.#worker = startWorker(start);
    // An idle writer must not keep the process alive; one with appends in flight must (see #track).
    this.#worker.unref();
    this.#worker.on('message', (m: WorkerReply) => this.#onMessage(m));
    this.#worker.on('error', (e) => this.#fail(e));
    this.#exited = new Promise((resolve) =>
      this.#worker.once('exit', () => {
        this.#fail(new Error('the audit writer thread exited'));
        resolve();
      }),
    );
  }

  /**
   * True when appends should go to the thread: it is up, or it already has appends queued (later ones
   * must follow them, not overtake them on the store's own connection).
   */
  get usable(): boolean {
    return !this.#dead && (this.#ready || this.#waiting.size > 0);
  }

  append(records: AuditInput[]): Promise<AuditRow[]> {
    if (this.#dead || this.#closing)
      return Promise.reject(new Error('the audit writer thread is not running'));
    const n = ++this.#next;
    const done = new Promise<AuditRow[]>((resolve, reject) =>
      this.#waiting.set(n, { records, resolve, reject }),
    );
    if (this.#waiting.size === 1) this.#worker.ref();
    // Records with their canonical text cross the thread as text alone: one string is cheaper to copy
    // than the object, and the thread neither serializes nor parses it again.
    const sent = records.map((r) =>
      r.text === undefined ? r : ({ ts: r.ts, type: r.type, id: r.id, text: r.text } as AuditInput),
    );
    this.#worker.postMessage({ kind: 'append', n, records: sent } satisfies WorkerRequest);
    return done;
  }

  /** Lets queued appends finish, then closes the thread's connection and waits for it to exit. */
  async close(): Promise<void> {
    if (!this.#dead && !this.#closing) {
      this.#closing = true;
      this.#worker.ref();
      this.#worker.postMessage({ kind: 'close' } satisfies WorkerRequest);
    }
    await this.#exited;
  }

  #onMessage(m: WorkerReply): void {
    if (m.kind === 'ready') {
      this.#ready = true;
      return;
    }
    if (m.kind === 'failed') {
      this.#fail(toError(m.error));
      return;
    }
    const w = this.#waiting.get(m.n);
    if (!w) return;
    this.#waiting.delete(m.n);
    // Closing keeps the reference until the thread has exited.
    if (this.#waiting.size === 0 && !this.#closing) this.#worker.unref();
    if (m.error) w.reject(toError(m.error));
    else {
      const rows = m.rows ?? [];
      if (rows.length !== w.records.length) {
        w.reject(new Error(`the audit writer thread returned ${rows.length} rows for ${w.records.length}`));
        return;
      }
      w.resolve(
        rows.map((r, i) => {
          const rec = w.records[i] as AuditInput;
          return {
            seq: r.seq,
            ts: rec.ts,
            type: rec.type,
            id: rec.id,
            data: rec.data,
            prevHash: r.prevHash,
            hash: r.hash,
          };
        }),
      );
    }
  }

  /** The thread is gone: whatever it had not answered is refused, and the store appends itself from now on. */
  #fail(cause: unknown): void {
    this.#dead = true;
    for (const w of this.#waiting.values()) {
      // Whether a lost append was committed cannot be known; refusing it is the safe answer.
      w.reject(
        cause instanceof Database.SqliteError
          ? cause
          : new Database.SqliteError('the audit writer thread stopped before answering', 'SQLITE_ERROR'),
      );
    }
    this.#waiting.clear();
  }
}

function toError(e: WorkerError): Error {
  // SQLite's failures keep their code so the store maps them like its own (busy, constraint…).
  return e.sqliteCode ? new Database.SqliteError(e.message, e.sqliteCode) : new Error(e.message);
}
