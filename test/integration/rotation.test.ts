// Signing-key rotation as verifiers see it over HTTP: a new key is in the JWKS before it signs, old
// tokens verify until their key leaves, no token is ever signed with an unpublished key (even under
// load during an immediate swap), the CLI's rotation reaches a running server and takes the rotation
// lease, and KEK rewrap.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import {
  requestToken,
  runCli,
  startTestGatehouse,
  tempDir,
  type TestGatehouse,
} from '../helpers/gatehouse.js';
import { rotateKeys } from '../../src/keys/rotation.js';
import { generateKekText, parseKek } from '../../src/keys/seal.js';
import { GatehouseError } from '../../src/lib/errors.js';

const H = 3_600_000;
const D = 24 * H;
const YAML = `
tokens:
  max_ttl: 1h
  clock_skew: 60s
clients:
  - id: ci
    allowed_audiences: ["**"]
`;

async function jwksKids(url: string): Promise<string[]> {
  const res = await fetch(`${url}/jwks`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { keys: JWK[] }).keys.map((k) => String(k.kid));
}

async function until(what: string, fn: () => Promise<boolean>, ms = 1000): Promise<number> {
  const started = Date.now();
  while (!(await fn())) {
    if (Date.now() - started > ms) assert.fail(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - started;
}

async function token(t: TestGatehouse, secret: string, form: Record<string, string> = {}): Promise<string> {
  const r = await requestToken(t.url, { id: 'ci', secret }, { audience: 'vault', ...form });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return String(r.body.access_token);
}

const kidOf = (jwt: string) => String(decodeProtectedHeader(jwt).kid);

describe('scheduled rotation, seen over HTTP', () => {
  test('next is published before it signs; old tokens verify until removeAfter; then the key leaves', async () => {
    let t0 = Date.now();
    const now = () => t0;
    const t = await startTestGatehouse({ yaml: YAML, now });
    try {
      const secret = await t.secretFor('ci');
      const first = kidOf(await token(t, secret));
      assert.deepEqual(await jwksKids(t.url), [first]);

      t0 += 30 * D;
      assert.deepEqual(
        (await t.gh.rotation.tick()).map((s) => s.kind),
        ['create'],
      );
      let next = '';
      await until('the next key is published', async () => {
        const kids = await jwksKids(t.url);
        next = kids.find((k) => k !== first) ?? '';
        return kids.length === 2;
      });
      // Published, not signing: verifiers fetch it ahead of its first token.
      t0 += H / 2;
      const during = await token(t, secret, { expires_in: '3600' });
      assert.equal(kidOf(during), first);

      t0 += H / 2;
      assert.deepEqual(
        (await t.gh.rotation.tick()).map((s) => s.kind),
        ['promote'],
      );
      await until('the new key signs', async () => kidOf(await token(t, secret)) === next);
      assert.deepEqual((await jwksKids(t.url)).sort(), [first, next].sort());
      // A token from the old key still verifies against the served JWKS.
      const remote = createRemoteJWKSet(new URL(`${t.url}/jwks`));
      await jwtVerify(during, remote, { currentDate: new Date(t0), audience: 'vault' });

      t0 += H + 60_000;
      assert.deepEqual(
        (await t.gh.rotation.tick()).map((s) => s.kind),
        ['remove'],
      );
      await until('the retired key leaves the JWKS', async () => (await jwksKids(t.url)).length === 1);
      assert.deepEqual(await jwksKids(t.url), [next]);
      await assert.rejects(
        jwtVerify(during, createRemoteJWKSet(new URL(`${t.url}/jwks`)), {
          currentDate: new Date(t0 - H),
        }),
        { code: 'ERR_JWKS_NO_MATCHING_KEY' },
      );
    } finally {
      await t.close();
    }
  });
});

describe('concurrent issuance during an immediate swap', () => {
  test('every token is signed by a key in the JWKS fetched right after, and verifies', async () => {
    const t = await startTestGatehouse({ yaml: YAML });
    try {
      const secret = await t.secretFor('ci');
      const gh = t.gh;
      const deps = { store: gh.store, keks: gh.keys.keks, audit: gh.audit, now: Date.now, by: 'test' };
      const policy = {
        algorithm: 'ES256' as const,
        everyMs: 0,
        propagationMs: H,
        maxTokenTtlMs: H,
        clockSkewMs: 60_000,
      };
      const problems: string[] = [];
      const kids = new Set<string>();
      let stop = false;
      let issued = 0;
      const worker = async () => {
        while (!stop) {
          try {
            const jwt = await token(t, secret);
            const jwks = (await (await fetch(`${t.url}/jwks`)).json()) as { keys: JWK[] };
            const kid = kidOf(jwt);
            kids.add(kid);
            issued++;
            if (!jwks.keys.some((k) => k.kid === kid)) problems.push(`kid ${kid} not in the JWKS after`);
            else await jwtVerify(jwt, createLocalJWKSet(jwks), { audience: 'vault' });
          } catch (e) {
            problems.push(String((e as Error)?.stack ?? e));
            return;
          }
        }
      };
      const workers = Array.from({ length: 16 }, worker);
      // Each swap comes once tokens are being signed by the key before it, not after a fixed 60 ms: on a
      // loaded machine a window can pass with no token issued, and then fewer keys sign than swaps made.
      const progress = async (what: string, done: () => boolean) => {
        const deadline = Date.now() + 20_000;
        while (!done() && problems.length === 0) {
          assert.ok(Date.now() < deadline, `timed out waiting for ${what} (${issued} issued)`);
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      for (let i = 0; i < 4; i++) {
        const from = issued;
        await progress(`tokens signed by key ${i + 1}`, () => kids.size >= i + 1 && issued >= from + 4);
        await rotateKeys(deps, policy, { now: true });
      }
      await progress('tokens after the last swap', () => issued > 20 && kids.size >= 5);
      stop = true;
      await Promise.all(workers);
      assert.deepEqual(problems, []);
      assert.ok(issued > 20, `only ${issued} tokens issued`);
      assert.ok(kids.size >= 3, `tokens were signed by ${kids.size} keys; the swap was not exercised`);
    } finally {
      await t.close();
    }
  });
});

describe('gatehouse keys (CLI) against a running server', () => {
  test('keys rotate --now on the data dir is picked up within a second; keys list shows states', async () => {
    const t = await startTestGatehouse({ yaml: YAML });
    try {
      const secret = await t.secretFor('ci');
      writeFileSync(join(t.dir, 'kek'), t.gh.config.keys.encryption_key + '\n');
      const first = kidOf(await token(t, secret));
      const r = await runCli(['keys', 'rotate', '--now', '--data-dir', t.dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /verifiers that cached the JWKS/);
      const list = await runCli(['keys', 'list', '--json', '--data-dir', t.dir]);
      assert.equal(list.code, 0, list.stderr);
      const rows = JSON.parse(list.stdout) as Array<{ kid: string; state: string; remove_after: string }>;
      const active = rows.find((k) => k.state === 'active');
      assert.ok(active && active.kid !== first);
      assert.equal(rows.find((k) => k.kid === first)?.state, 'retired');
      const took = await until(
        'the server signs with the new key',
        async () => kidOf(await token(t, secret)) === active.kid,
      );
      assert.ok(took < 1000);
      assert.ok((await jwksKids(t.url)).includes(first), 'the retired key stays published');

      // Without --now the key waits, published, for the server to promote it.
      const r2 = await runCli(['keys', 'rotate', '--data-dir', t.dir]);
      assert.equal(r2.code, 0, r2.stderr);
      const waiting = /next key (\S+)/.exec(r2.stdout)?.[1];
      assert.ok(waiting);
      await until('the next key is published', async () => (await jwksKids(t.url)).includes(waiting));
      assert.equal(kidOf(await token(t, secret)), active.kid);
    } finally {
      await t.close();
    }
  });
});

describe('gatehouse keys rotate under the key-rotation lease', () => {
  /** Takes the lease as another replica would (the server's scheduler only holds it during a check). */
  async function holdLease(t: TestGatehouse, holder: string): Promise<void> {
    await until('the key-rotation lease is free', () =>
      t.gh.store.tryLease('key-rotation', holder, 60_000, Date.now()),
    );
  }

  test('another holder of the lease: rotate --now waits, then refuses with exit 3 and changes nothing', async () => {
    const t = await startTestGatehouse({ yaml: YAML });
    try {
      writeFileSync(join(t.dir, 'kek'), t.gh.config.keys.encryption_key + '\n');
      await holdLease(t, 'other-replica');
      const before = await t.gh.store.listKeys();
      const started = Date.now();
      const r = await runCli(['keys', 'rotate', '--now', '--data-dir', t.dir]);
      assert.equal(r.code, 3, r.stderr);
      assert.ok(Date.now() - started >= 4_000, 'it waited for the lease before giving up');
      assert.match(r.stderr, /another key rotation is in progress/);
      assert.match(r.stderr, /hint: retry in a few seconds/);
      assert.equal(r.stdout, '');
      assert.deepEqual(
        (await t.gh.store.listKeys()).map((k) => [k.kid, k.state]),
        before.map((k) => [k.kid, k.state]),
        'no key was created or promoted',
      );
      // The lease is still the other holder's: the CLI did not take it over or release it.
      assert.equal(await t.gh.store.tryLease('key-rotation', 'third', 60_000, Date.now()), false);
    } finally {
      await t.close();
    }
  });

  test('a lease released while the CLI waits: it rotates, audited like a scheduled rotation', async () => {
    const t = await startTestGatehouse({ yaml: YAML });
    try {
      writeFileSync(join(t.dir, 'kek'), t.gh.config.keys.encryption_key + '\n');
      const [first] = await t.gh.store.listKeys();
      assert.ok(first);
      await holdLease(t, 'other-replica');
      let waiting!: () => void;
      const saysWaiting = new Promise<void>((r) => (waiting = r));
      const cli = runCli(['keys', 'rotate', '--now', '--data-dir', t.dir], {
        onStderr: (soFar) => {
          if (/another key rotation is in progress; waiting/.test(soFar)) waiting();
        },
      });
      // Released only once the CLI says it waits (its start may take a while on a loaded machine).
      await saysWaiting;
      assert.equal((await t.gh.store.listKeys()).length, 1, 'nothing happens while the lease is held');
      await t.gh.store.releaseLease('key-rotation', 'other-replica');
      const r = await cli;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /another key rotation is in progress; waiting/);
      const active = /activated (\S+)/.exec(r.stdout)?.[1];
      assert.ok(active && active !== first.kid);
      await t.gh.audit.flush();
      const keyEvents = (await t.gh.store.queryAudit({}))
        .filter((a) => a.type.startsWith('key.') && a.data.by === 'cli')
        .map((a) => [a.type, a.data.kid]);
      assert.deepEqual(keyEvents, [
        ['key.created', active],
        ['key.activated', active],
        ['key.retired', first.kid],
      ]);
      // It let the lease go: the server's scheduler (or anyone) can take it again.
      assert.equal(await t.gh.store.tryLease('key-rotation', 'after', 1_000, Date.now()), true);
    } finally {
      await t.close();
    }
  });
});

describe('gatehouse keys rewrap', () => {
  test('after rewrap and dropping the old KEK the server starts and signs; with a wrong KEK it names the KEK', async () => {
    const dir = tempDir();
    const db = join(dir, 'gatehouse.db');
    const oldKek = generateKekText();
    const newKek = generateKekText();
    const base = (kek: string) => ({ store: { sqlite: { path: db } }, keys: { encryption_key: kek } });
    let t = await startTestGatehouse({ yaml: YAML, base: base(oldKek) });
    await t.close();

    writeFileSync(join(dir, 'old-kek'), oldKek + '\n');
    writeFileSync(join(dir, 'new-kek'), newKek + '\n');
    writeFileSync(
      join(dir, 'gatehouse.yaml'),
      `issuer: { url: "http://127.0.0.1:1" }
store: { sqlite: { path: ${JSON.stringify(db)} } }
keys:
  encryption_key: \${file:new-kek}
  previous_encryption_keys: ["\${file:old-kek}"]
`,
    );
    const r = await runCli(['keys', 'rewrap', '--config', join(dir, 'gatehouse.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /re-sealed 1 key/);
    assert.ok(!r.stdout.includes(newKek) && !r.stderr.includes(newKek), 'the KEK is never printed');
    const list = JSON.parse(
      (await runCli(['keys', 'list', '--json', '--config', join(dir, 'gatehouse.yaml')])).stdout,
    ) as Array<{ sealed_with: string }>;
    assert.deepEqual(
      list.map((k) => k.sealed_with),
      [parseKek(newKek).id],
    );

    t = await startTestGatehouse({ yaml: YAML, base: base(newKek) });
    try {
      const secret = await t.secretFor('ci');
      const jwt = await token(t, secret);
      await jwtVerify(jwt, createRemoteJWKSet(new URL(`${t.url}/jwks`)), { audience: 'vault' });
    } finally {
      await t.close();
    }

    await assert.rejects(startTestGatehouse({ yaml: YAML, base: base(oldKek) }), (e: unknown) => {
      assert.ok(e instanceof GatehouseError);
      assert.equal(e.code, 'ERR_KEY_UNSEAL_FAILED');
      assert.ok(e.message.includes(parseKek(newKek).id), e.message);
      assert.ok(!e.message.includes(oldKek) && !e.message.includes(newKek));
      return true;
    });
  });
});
