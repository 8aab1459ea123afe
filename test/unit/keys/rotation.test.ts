// Signing-key rotation on a real SQLite store with an injected clock: the plan, the scheduler under its
// lease, the two-step reload of the key ring, and rewrapping with a new key-encryption key.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { AuditLog } from '../../../src/audit/index.js';
import { KeyRing, rewrapKeys } from '../../../src/keys/keyring.js';
import {
  planRotation,
  rotateKeys,
  RotationScheduler,
  type RotationPolicy,
} from '../../../src/keys/rotation.js';
import { generateKekText, parseKek, sealedKekId } from '../../../src/keys/seal.js';
import { GatehouseError } from '../../../src/lib/errors.js';

const H = 3_600_000;
const D = 24 * H;
const POLICY: RotationPolicy = {
  algorithm: 'ES256',
  everyMs: 30 * D,
  propagationMs: H,
  maxTokenTtlMs: H,
  clockSkewMs: 60_000,
};

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'));
  dirs.push(dir);
  let t = Date.UTC(2025, 0, 1);
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  const store = new SqliteStore({ path: join(dir, 'gatehouse.db'), now: clock.now });
  await store.init();
  const kek = parseKek(generateKekText());
  const audit = new AuditLog(store, { now: clock.now });
  const ring = new KeyRing(store, { keks: [kek], algorithm: 'ES256', now: clock.now });
  await ring.ensureActiveKey();
  const deps = { store, keks: [kek], audit, now: clock.now, by: 'test' };
  return {
    dir,
    clock,
    store,
    kek,
    audit,
    ring,
    deps,
    async close() {
      await audit.close();
      await store.close();
    },
  };
}

const kinds = (steps: { kind: string }[]) => steps.map((s) => s.kind);

describe('planRotation', () => {
  test('nothing is due for a young key; a next key is created at `every`, promoted after propagation', async () => {
    const s = await setup();
    try {
      assert.deepEqual(planRotation(await s.store.listKeys(), POLICY, s.clock.now()), []);
      s.clock.advance(30 * D);
      assert.deepEqual(kinds(planRotation(await s.store.listKeys(), POLICY, s.clock.now())), ['create']);
      // `every` 0 turns scheduled creation off.
      assert.deepEqual(planRotation(await s.store.listKeys(), { ...POLICY, everyMs: 0 }, s.clock.now()), []);
      await rotateKeys(s.deps, POLICY);
      assert.deepEqual(planRotation(await s.store.listKeys(), POLICY, s.clock.now() + H - 1), []);
      assert.deepEqual(kinds(planRotation(await s.store.listKeys(), POLICY, s.clock.now() + H)), ['promote']);
    } finally {
      await s.close();
    }
  });

  test('two active keys (two first starts at once): the older one is retired', async () => {
    const s = await setup();
    try {
      const other = new KeyRing(s.store, { keks: [s.kek], algorithm: 'ES256', now: s.clock.now });
      // Simulate the race: a second active key inserted directly.
      const { createKeyRecord } = await import('../../../src/keys/keyring.js');
      s.clock.advance(1000);
      const { record } = await createKeyRecord('ES256', s.kek, 'active', s.clock.now());
      await s.store.insertKey(record);
      await other.load();
      assert.equal(other.active().kid, record.kid, 'the newest active key signs');
      const steps = planRotation(await s.store.listKeys(), POLICY, s.clock.now());
      assert.deepEqual(kinds(steps), ['retire']);
      assert.notEqual((steps[0] as { kid: string }).kid, record.kid);
    } finally {
      await s.close();
    }
  });
});

describe('RotationScheduler', () => {
  test('full lifecycle: next (published, not signing) → active → retired → removed, audited', async () => {
    const s = await setup();
    try {
      const first = s.ring.active().kid;
      const sched = new RotationScheduler({ ...s.deps, policy: POLICY, checkIntervalMs: 60_000 });
      assert.deepEqual(await sched.tick(), []);

      s.clock.advance(30 * D);
      assert.deepEqual(kinds(await sched.tick()), ['create']);
      await s.ring.load();
      const next = s.ring.all().find((k) => k.state === 'next');
      assert.ok(next);
      assert.ok(
        s.ring.publicJwks().keys.some((k) => k.kid === next.kid),
        'next is published',
      );
      assert.equal(s.ring.active().kid, first, 'next does not sign');
      const provider = s.ring.providerJwks().keys.find((k) => k.kid === next.kid);
      assert.deepEqual(provider?.key_ops, ['verify']);

      s.clock.advance(H - 1);
      assert.deepEqual(await sched.tick(), [], 'not before the propagation window');
      s.clock.advance(1);
      assert.deepEqual(kinds(await sched.tick()), ['promote']);
      await s.ring.load();
      assert.equal(s.ring.active().kid, next.kid);
      const old = (await s.store.listKeys()).find((r) => r.kid === first);
      assert.equal(old?.state, 'retired');
      assert.equal(old?.removeAfter, s.clock.now() + H + 60_000);
      assert.ok(
        s.ring.publicJwks().keys.some((k) => k.kid === first),
        'retired stays published',
      );

      s.clock.advance(H + 60_000);
      assert.deepEqual(kinds(await sched.tick()), ['remove']);
      await s.ring.load();
      assert.ok(!s.ring.publicJwks().keys.some((k) => k.kid === first), 'removed leaves the JWKS');
      const removed = (await s.store.listKeys()).find((r) => r.kid === first);
      assert.equal(removed?.sealedPrivate, 'removed', 'the private part is destroyed');
      assert.ok(removed?.publicJwk, 'the public part stays for checkpoint verification');

      await s.audit.flush();
      const types = (await s.store.queryAudit({})).map((r) => r.type);
      assert.deepEqual(
        types.filter((t) => t.startsWith('key.')),
        ['key.created', 'key.activated', 'key.retired', 'key.removed'],
      );
      await sched.stop();
    } finally {
      await s.close();
    }
  });

  test('only the lease holder rotates, and it holds the lease for one check only', async () => {
    const s = await setup();
    try {
      const policy = { ...POLICY, everyMs: 60_000 };
      const opts = { ...s.deps, policy, checkIntervalMs: 60_000 };
      const a = new RotationScheduler({ ...opts, holderId: 'a' });
      const b = new RotationScheduler({ ...opts, holderId: 'b' });
      assert.deepEqual(await a.tick(), []);
      s.clock.advance(60_000);
      assert.equal(await s.store.tryLease('key-rotation', 'other', 60_000, s.clock.now()), true);
      assert.deepEqual(await a.tick(), [], 'a does not hold the lease, though a step is due');
      assert.deepEqual(await b.tick(), [], 'nor does b');
      await s.store.releaseLease('key-rotation', 'other');
      assert.deepEqual(kinds(await a.tick()), ['create']);
      // Released after the check, so an on-demand rotation (or another replica) can take it.
      assert.equal(await s.store.tryLease('key-rotation', 'c', 60_000, s.clock.now()), true);
      await s.store.releaseLease('key-rotation', 'c');
      assert.deepEqual(await b.tick(), [], 'b plans from the keys a wrote: nothing is due');
      await a.stop();
      await b.stop();
    } finally {
      await s.close();
    }
  });

  test('rotateKeys takes the same lease: while another holds it, it waits, then refuses', async () => {
    const s = await setup();
    try {
      const before = await s.store.listKeys();
      assert.equal(await s.store.tryLease('key-rotation', 'scheduler', 60_000, s.clock.now()), true);
      let waited = 0;
      await assert.rejects(
        rotateKeys(s.deps, POLICY, { now: true, waitMs: 200, onWait: () => waited++ }),
        (e: unknown) => {
          assert.ok(e instanceof GatehouseError);
          assert.equal(e.code, 'ERR_STORE_CONFLICT');
          assert.equal(e.exitCode, 3);
          assert.match(e.message, /another key rotation is in progress/);
          return true;
        },
      );
      assert.equal(waited, 1);
      assert.deepEqual(await s.store.listKeys(), before, 'nothing was written');
      await s.store.releaseLease('key-rotation', 'scheduler');
      const r = await rotateKeys(s.deps, POLICY, { now: true, waitMs: 0 });
      assert.equal(r.promoted, true);
      assert.equal(
        await s.store.tryLease('key-rotation', 'scheduler', 60_000, s.clock.now()),
        true,
        'rotateKeys released the lease',
      );
    } finally {
      await s.close();
    }
  });
});

describe('KeyRing.load', () => {
  test('signs with the old key until the new key set is published (beforeSigning)', async () => {
    const s = await setup();
    try {
      const first = s.ring.active().kid;
      const { next } = await rotateKeys(s.deps, POLICY, { now: true });
      const seen: string[] = [];
      await s.ring.load({
        beforeSigning: async () => {
          // The published view has the new key; signing still uses the old one.
          assert.ok(s.ring.publicJwks().keys.some((k) => k.kid === next.kid));
          seen.push(s.ring.active().kid);
        },
      });
      assert.deepEqual(seen, [first]);
      assert.equal(s.ring.active().kid, next.kid);
    } finally {
      await s.close();
    }
  });

  test('when publishing fails, the old key keeps signing', async () => {
    const s = await setup();
    try {
      const first = s.ring.active().kid;
      await rotateKeys(s.deps, POLICY, { now: true });
      await assert.rejects(
        s.ring.load({
          beforeSigning: async () => {
            throw new Error('provider build failed');
          },
        }),
        /provider build failed/,
      );
      assert.equal(s.ring.active().kid, first);
    } finally {
      await s.close();
    }
  });
});

describe('rewrapKeys', () => {
  test('re-seals every key with the new KEK; the old KEK is then not needed', async () => {
    const s = await setup();
    try {
      await rotateKeys(s.deps, POLICY);
      const newKek = parseKek(generateKekText());
      const r = await rewrapKeys(s.store, [s.kek], newKek);
      assert.equal(r.rewrapped.length, 2);
      assert.deepEqual(r.fromKekIds, [s.kek.id]);
      for (const k of await s.store.listKeys()) assert.equal(sealedKekId(k.sealedPrivate), newKek.id);
      const ring = new KeyRing(s.store, { keks: [newKek], algorithm: 'ES256', now: s.clock.now });
      await ring.load();
      assert.equal(ring.active().kid, s.ring.active().kid);
      // Idempotent.
      assert.equal((await rewrapKeys(s.store, [newKek], newKek)).unchanged.length, 2);
      // The old KEK alone no longer opens them, and the error names the KEK id, not the key.
      const stale = new KeyRing(s.store, { keks: [s.kek], algorithm: 'ES256', now: s.clock.now });
      await assert.rejects(stale.load(), (e: unknown) => {
        assert.ok(e instanceof GatehouseError);
        assert.equal(e.code, 'ERR_KEY_UNSEAL_FAILED');
        assert.match(e.message, new RegExp(newKek.id.replace(/[-]/g, '\\-')));
        return true;
      });
    } finally {
      await s.close();
    }
  });

  test('without the old KEK nothing is written', async () => {
    const s = await setup();
    try {
      const before = await s.store.listKeys();
      const other = parseKek(generateKekText());
      await assert.rejects(rewrapKeys(s.store, [], other), { code: 'ERR_KEY_UNSEAL_FAILED' });
      assert.deepEqual(await s.store.listKeys(), before);
    } finally {
      await s.close();
    }
  });
});
