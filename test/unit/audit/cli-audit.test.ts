import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { exportJWK, generateKeyPair } from 'jose';
import { AuditLog, createCheckpointSigner } from '../../../src/audit/index.js';
import { RevocationSet } from '../../../src/revocation/index.js';
import { tempStore } from './helpers.js';

const root = new URL('../../../', import.meta.url).pathname;

function gatehouse(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('gatehouse audit and revoke', () => {
  test('audit verify: ok and exit 0 on a clean log, the first broken record and exit 1 after an edit', async () => {
    const t = await tempStore();
    try {
      // A signing key as the store keeps it: verify checks checkpoints against the store's public keys.
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const publicJwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
      await t.store.insertKey({
        kid: 'k1',
        alg: 'ES256',
        state: 'active',
        publicJwk,
        sealedPrivate: 'not-used-here',
        createdAt: Date.now(),
        activatedAt: Date.now(),
        retiredAt: null,
        removeAfter: null,
      });
      const log = new AuditLog(t.store, {
        signCheckpoint: createCheckpointSigner({ privateKey, kid: 'k1', alg: 'ES256' }),
      });
      for (let i = 1; i <= 5; i++) await log.append('token.issued', { jti: `j${i}` });
      await log.close();

      const ok = await gatehouse(['audit', 'verify', '--data-dir', t.dir]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^ok: 5 records, 1 checkpoint, head 5 [0-9a-f]{64}\n$/);

      const tail = await gatehouse(['audit', 'tail', '-n', '2', '--json', '--data-dir', t.dir]);
      assert.equal(tail.code, 0, tail.stderr);
      assert.deepEqual(
        tail.stdout
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { seq: number }).seq),
        [4, 5],
      );

      const db = new Database(t.path);
      db.prepare('UPDATE audit SET data = ? WHERE seq = 3').run('{"jti":"other"}');
      db.close();
      const bad = await gatehouse(['audit', 'verify', '--data-dir', t.dir]);
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /record 3 was edited/);

      const usage = await gatehouse(['audit', 'verify', '--trusted-head', 'nope', '--data-dir', t.dir]);
      assert.equal(usage.code, 2);
    } finally {
      await t.cleanup();
    }
  });

  test('revoke subject: a running set sees it within a second, and it is audited', async () => {
    const t = await tempStore();
    const set = new RevocationSet(t.store);
    await set.start();
    try {
      const iat = Math.floor(Date.now() / 1000) - 5;
      const r = await gatehouse([
        'revoke',
        'subject',
        'alice',
        '--reason',
        'left the org',
        '--data-dir',
        t.dir,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /^revoked subject alice at \d{4}-\d\d-\d\dT[\d:.]+Z: tokens issued until then are refused\n/,
      );
      const started = Date.now();
      while (!set.check({ sub: 'alice', iat })) {
        assert.ok(Date.now() - started < 1000, 'the running set did not see it within a second');
        await new Promise((res) => setTimeout(res, 10));
      }
      const [row] = await t.store.queryAudit({ type: 'subject.revoked' });
      assert.equal(row?.data.sub, 'alice');
      assert.equal(row?.data.reason, 'left the org');
    } finally {
      set.stop();
      await t.cleanup();
    }
  });
});
