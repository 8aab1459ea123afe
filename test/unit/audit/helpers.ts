// Shared by the audit tests: a real SQLite store in a temp dir and a real ES256 checkpoint key.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { createCheckpointSigner, createCheckpointVerifier } from '../../../src/audit/index.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';

export async function tempStore(): Promise<{
  store: SqliteStore;
  path: string;
  dir: string;
  cleanup: () => Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-'));
  const path = join(dir, 'gatehouse.db');
  const store = new SqliteStore({ path });
  await store.init();
  return {
    store,
    path,
    dir,
    cleanup: async () => {
      await store.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function checkpointKeys() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-kid', alg: 'ES256', use: 'sig' };
  return {
    signCheckpoint: createCheckpointSigner({ privateKey, kid: 'test-kid', alg: 'ES256' }),
    verifyCheckpoint: createCheckpointVerifier([jwk]),
  };
}

/** A logger that keeps what it is given. */
export function memoryLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) =>
    void lines.push({ level, obj, msg });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}
