// The audit writer thread: its own connection to the store file, committing audit appends with
// synchronous=FULL so the fsync blocks this thread instead of the server's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { AuditInput } from '../store.js';
// The canonical audit hash is imported here rather than sent: a function cannot cross threads, and
// the store only uses this thread for appends sealed with exactly this function (see audit-writer.ts).
import { sealAuditRow } from '../../audit/seal.js';
import { appendAuditRows } from './audit-append.js';
import type { WorkerReply, WorkerRequest, WorkerStart } from './audit-writer.js';

const port = parentPort;
if (!port) throw new Error('audit-worker.ts runs as a worker thread');
const start = workerData as WorkerStart;

const post = (m: WorkerReply): void => port.postMessage(m);

let db: Database.Database;
try {
  db = new Database(start.path, { timeout: start.busyTimeoutMs, fileMustExist: true });
  // Every commit on this connection is an audit append, so FULL stays set: under WAL it fsyncs the
  // WAL before the commit returns, and the main thread acknowledges only after that.
  db.pragma('synchronous = FULL');
} catch (e) {
  post({ kind: 'failed', error: describe(e) });
  process.exit(1);
}
const statements = new Map<string, Database.Statement>();
const prepare = (sql: string): Database.Statement => {
  let s = statements.get(sql);
  if (!s) {
    s = db.prepare(sql);
    statements.set(sql, s);
  }
  return s;
};

port.on('message', (m: WorkerRequest) => {
  if (m.kind === 'close') {
    statements.clear();
    db.close();
    port.close();
    return;
  }
  try {
    post({
      kind: 'done',
      n: m.n,
      rows: appendAuditRows(db, prepare, m.records as AuditInput[], sealAuditRow).map((r) => ({
        seq: r.seq,
        prevHash: r.prevHash,
        hash: r.hash,
      })),
    });
  } catch (e) {
    post({ kind: 'done', n: m.n, error: describe(e) });
  }
});
post({ kind: 'ready' });

function describe(e: unknown): { message: string; sqliteCode?: string } {
  if (e instanceof Database.SqliteError) return { message: e.message, sqliteCode: e.code };
  return { message: e instanceof Error ? e.message : String(e) };
}
