import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { AuditLog, canonicalJson, newAuditId, verifyAuditLog } from '../../../src/audit/index.js';
import { sealAuditRow } from '../../../src/audit/seal.js';
import { isGatehouseError } from '../../../src/lib/errors.js';
import type { Store } from '../../../src/store/store.js';
import { checkpointKeys, memoryLogger, tempStore } from './helpers.js';

describe('canonicalJson', () => {
  test('sorts keys at every depth and leaves out whitespace and undefined', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [1, 'x', null], c: true }, u: undefined }),
      '{"a":{"c":true,"d":[1,"x",null]},"b":1}',
    );
  });
  test('refuses values that are not JSON', () => {
    assert.throws(() => canonicalJson({ n: NaN }), TypeError);
    assert.throws(() => canonicalJson({ d: new Date(0) }), TypeError);
    assert.throws(() => canonicalJson({ b: 1n }), TypeError);
  });
});

describe('sealAuditRow', () => {
  test('sealing around the canonical text gives the same hash as sealing the data', () => {
    // The fast path (AuditLog hands the store canonical text) must hash exactly as verification does.
    const data = {
      Zebra: 1,
      apple: [1.5, -0, 1e21, 'x', null, true, { b: 2, a: '\u00e9\ud83d\ude00' }],
      'key with "quotes"': 'line\nbreak\u2028',
      nested: { z: { y: { x: [] } }, a: {} },
      lone: '\ud800',
    };
    const text = canonicalJson(data);
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const row = {
      seq: 42,
      ts: 1_795_000_000_123,
      type: 'access.allowed',
      id: 'a_0123456789abcdef',
      data: parsed,
    };
    const prev = 'f'.repeat(64);
    assert.equal(sealAuditRow(prev, row, text), sealAuditRow(prev, row));
    assert.equal(
      canonicalJson(parsed),
      text,
      'the stored text parses back to data with the same canonical form',
    );
    assert.notEqual(sealAuditRow(prev, row, text), sealAuditRow(prev, { ...row, seq: 43 }, text));
  });
});

describe('AuditLog', () => {
  test('many concurrent appends make one gapless chain, batched, each resolved once durable', async () => {
    const t = await tempStore();
    let transactions = 0;
    // Counts real transactions on the real store (a pass-through, not a stand-in).
    const counted = new Proxy(t.store, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (prop === 'appendAudit')
          return (...args: Parameters<Store['appendAudit']>) => (transactions++, target.appendAudit(...args));
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as Store;
    try {
      const log = new AuditLog(counted, { batchMs: 5 });
      const results = await Promise.all(
        Array.from({ length: 600 }, (_, i) => log.append('token.issued', { jti: `j${i}`, client_id: 'svc' })),
      );
      assert.deepEqual(
        results.map((r) => r.seq).sort((a, b) => a - b),
        Array.from({ length: 600 }, (_, i) => i + 1),
      );
      assert.ok(transactions <= 10, `600 appends took ${transactions} transactions`);
      // Durable: the rows are there on a fresh read the moment the promises resolve.
      const rows = await t.store.queryAudit({});
      assert.equal(rows.length, 600);
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const r of results) assert.equal(byId.get(r.id)?.seq, r.seq);
      const { verifyCheckpoint } = await checkpointKeys();
      const v = await verifyAuditLog(t.store, { verifyCheckpoint });
      assert.equal(v.ok, true);
      assert.equal(v.checked, 600);
      await log.close();
    } finally {
      await t.cleanup();
    }
  });

  test('a failed write rejects every waiting append with ERR_AUDIT_WRITE_FAILED, and later appends work', async () => {
    const t = await tempStore();
    await t.store.close();
    const store = new (t.store.constructor as new (o: { path: string; busyTimeoutMs: number }) => Store)({
      path: t.path,
      busyTimeoutMs: 50,
    });
    await store.init();
    const logger = memoryLogger();
    const log = new AuditLog(store, { batchMs: 1, logger });
    // Another connection holds the write lock, so the store cannot commit.
    const other = new Database(t.path);
    other.exec('BEGIN IMMEDIATE');
    try {
      const settled = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => log.append('token.issued', { jti: `j${i}` })),
      );
      assert.equal(settled.length, 20);
      for (const s of settled) {
        assert.equal(s.status, 'rejected');
        assert.ok(isGatehouseError(s.reason, 'ERR_AUDIT_WRITE_FAILED'), String(s.reason));
      }
      assert.ok(logger.lines.some((l) => l.level === 'error' && l.obj.event === 'audit.write_failed'));
      other.exec('ROLLBACK');
      const ok = await log.append('token.issued', { jti: 'after' });
      assert.equal(ok.seq, 1);
      await log.close();
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await store.close();
      await t.cleanup();
    }
  });

  test('refuses data that looks like a secret (TypeError), before anything is queued', async () => {
    const t = await tempStore();
    try {
      const log = new AuditLog(t.store);
      const jws = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl';
      for (const data of [
        { token: 'x' },
        { client_secret: 'x' },
        { clientSecret: 'x' },
        { nested: { refresh_token: 'x' } },
        { list: [{ password: 'x' }] },
        { private_key: 'x' },
        { subject_token: 'x' },
        { header: `Bearer ${jws}` },
        { key: { kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'c' } },
      ]) {
        assert.throws(() => log.append('token.issued', data), TypeError, JSON.stringify(Object.keys(data)));
      }
      assert.throws(() => log.append('Token Issued', { jti: 'x' }), TypeError);
      assert.throws(() => log.append('token.issued', { jti: 'x' }, { id: 'nope' }), TypeError);
      // What to record instead is fine: the jti and a hash prefix.
      const ok = await log.append('token.issued', { jti: 'j1', token_hash: 'sha256:1a2b3c4d', aud: ['x'] });
      assert.equal(ok.seq, 1);
      await log.close();
      assert.equal((await t.store.queryAudit({})).length, 1);
    } finally {
      await t.cleanup();
    }
  });

  test('keeps a caller-given id and gives a_ ids otherwise', async () => {
    const t = await tempStore();
    try {
      const log = new AuditLog(t.store);
      const id = newAuditId();
      assert.match(id, /^a_[A-Za-z0-9_-]{16}$/);
      assert.equal((await log.append('token.refused', { reason: 'aud' }, { id })).id, id);
      const [row] = await t.store.queryAudit({});
      assert.equal(row?.id, id);
      await log.close();
    } finally {
      await t.cleanup();
    }
  });

  test('writes signed checkpoints every N records and on close, logged as audit.checkpoint, and they verify', async () => {
    const t = await tempStore();
    try {
      const { signCheckpoint, verifyCheckpoint } = await checkpointKeys();
      const logger = memoryLogger();
      const log = new AuditLog(t.store, {
        checkpointEvery: 10,
        maxBatch: 5,
        signCheckpoint,
        logger,
        now: () => 1_700_000_000_000,
      });
      for (let i = 0; i < 25; i++) await log.append('access.allowed', { route: 'demo', i });
      await log.close();
      const cps = await t.store.listCheckpoints();
      assert.deepEqual(
        cps.map((c) => c.seq),
        [10, 20, 25],
      );
      const logged = logger.lines.filter((l) => l.msg === 'audit.checkpoint');
      assert.deepEqual(
        logged.map((l) => l.obj.seq),
        [10, 20, 25],
      );
      const payload = await verifyCheckpoint((cps[2] as { jws: string }).jws);
      assert.deepEqual(payload, { seq: 25, hash: cps[2]?.hash, ts: 1_700_000_000_000 });
      const v = await verifyAuditLog(t.store, { verifyCheckpoint });
      assert.deepEqual(
        { ok: v.ok, checked: v.checked, checkpoints: v.checkpoints, head: v.head?.seq },
        { ok: true, checked: 25, checkpoints: 3, head: 25 },
      );
      await assert.rejects(log.append('token.issued', { jti: 'late' }), (e) =>
        isGatehouseError(e, 'ERR_AUDIT_WRITE_FAILED'),
      );
    } finally {
      await t.cleanup();
    }
  });

  test('writes a checkpoint on the interval when records arrived', async () => {
    const t = await tempStore();
    try {
      const { signCheckpoint } = await checkpointKeys();
      const log = new AuditLog(t.store, { checkpointIntervalMs: 30, signCheckpoint });
      await log.append('key.created', { kid: 'k1' });
      // Wait for the first checkpoint (a 30 ms timer and a signature: late on a loaded machine), then
      // for a few more intervals, which must not write the same head again.
      const deadline = Date.now() + 10_000;
      while ((await t.store.listCheckpoints()).length === 0) {
        assert.ok(Date.now() < deadline, 'no checkpoint written on the interval within 10 s');
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, 120));
      assert.deepEqual(
        (await t.store.listCheckpoints()).map((c) => c.seq),
        [1],
      );
      await log.close();
      assert.equal((await t.store.listCheckpoints()).length, 1, 'no second checkpoint of the same head');
    } finally {
      await t.cleanup();
    }
  });

  test('verify passes on an empty log and on a clean one', async () => {
    const t = await tempStore();
    try {
      const { verifyCheckpoint } = await checkpointKeys();
      assert.deepEqual(await verifyAuditLog(t.store, { verifyCheckpoint }), {
        ok: true,
        checked: 0,
        checkpoints: 0,
      });
    } finally {
      await t.cleanup();
    }
  });
});
