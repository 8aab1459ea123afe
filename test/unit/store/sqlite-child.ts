// A second process on the same SQLite file, for the multi-process tests in sqlite.test.ts:
// `init PATH`, `append PATH N GO_FILE` (says "ready", waits for GO_FILE to exist, then makes N
// single-record appends) or `publish PATH N PREFIX`.
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import type { AuditSealer } from '../../../src/store/store.js';

const seal: AuditSealer = (prevHash, row) =>
  createHash('sha256').update(prevHash).update(JSON.stringify(row)).digest('hex');

const [mode, path, n = '0', extra = ''] = process.argv.slice(2);
const store = new SqliteStore({ path: path! });
await store.init();
if (mode === 'append') {
  // A start barrier, so the writers really overlap however long each process took to start.
  process.stdout.write('ready\n');
  while (!existsSync(extra)) await sleep(2);
  for (let i = 0; i < Number(n); i++) {
    await store.appendAudit(
      [{ ts: Date.now(), type: 'child.append', id: `${process.pid}_${i}`, data: { i } }],
      seal,
    );
    await sleep(1);
  }
} else if (mode === 'publish') {
  for (let i = 0; i < Number(n); i++) await store.publishChange('revocations', `${extra}${i}`);
}
await store.close();
process.stdout.write('ok\n');
