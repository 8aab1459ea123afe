// Child process for sqlite-audit-thread.test.ts: appends on the writer thread without awaiting the
// last append or closing the store; the process must finish the append, then exit by itself.
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { sealAuditRow } from '../../../src/audit/index.js';

const path = process.argv[2];
if (!path) throw new Error('usage: sqlite-audit-thread-child.ts FILE');
const store = new SqliteStore({ path });
await store.init();
const rec = (i: number) => ({
  ts: i,
  type: 'token.issued',
  id: `a_${String(i).padStart(16, '0')}`,
  data: { i },
});
await store.appendAudit([rec(1)], sealAuditRow);
while (!store.auditOnThread) await new Promise((r) => setTimeout(r, 5));
// Nothing else keeps the event loop alive but the append in flight on the thread.
void store.appendAudit([rec(2)], sealAuditRow).then((rows) => {
  process.stdout.write(`appended ${rows[0]?.seq} on thread\n`);
});
