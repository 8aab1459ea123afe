// A running server removes expired rows on its own: a token revoked at the RFC 7009 endpoint is
// forgotten once it could no longer pass (exp plus the clock skew, plus the skew again for clocks that
// disagree), and so are expired oidc-provider records, sessions and single-use records; a subject
// revocation, which has no end, stays. The server's clock is injected and its housekeeping interval
// short, so nothing sleeps long. Runs on SQLite and, when it is there, PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { requestToken, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { postgresSkipReason } from '../helpers/replicas.js';

const SKEW_MS = 1_000;
const YAML = `
tokens:
  default_ttl: 60s
  clock_skew: 1s
clients:
  - id: ci
    allowed_audiences: ["**"]
`;

async function until(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pgSkip = await postgresSkipReason();

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`housekeeping of a running server (${kind})`, { skip: kind === 'postgres' && pgSkip }, () => {
    let t: TestGatehouse;
    let secret: string;
    // The server's clock: real time plus an offset the test moves forward.
    let offset = 0;
    const clock = () => Date.now() + offset;

    before(async () => {
      t = await startTestGatehouse({ yaml: YAML, now: clock, store: kind, maintenanceIntervalMs: 25 });
      secret = await t.secretFor('ci');
    });
    after(async () => t?.close());

    test('expired rows go, in every table; rows still live, and revocations without an end, stay', async () => {
      const { store } = t.gh;
      // A token revoked by its client: the entry ends at its exp plus the clock skew.
      const issued = await requestToken(t.url, { id: 'ci', secret }, { audience: 'api' });
      assert.equal(issued.status, 200, JSON.stringify(issued.body));
      const token = String(issued.body.access_token);
      const { jti, exp } = decodeJwt(token);
      const revoked = await fetch(`${t.url}/token/revocation`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: 'Basic ' + Buffer.from(`ci:${secret}`).toString('base64'),
        },
        body: new URLSearchParams({ token }),
      });
      assert.equal(revoked.status, 200);
      const entry = (await store.listRevocations()).find((r) => r.value === jti);
      assert.equal(entry?.expiresAt, Number(exp) * 1000 + SKEW_MS);
      await t.gh.revocations.revoke({ kind: 'subject', value: 'someone-who-left', reason: 'left' });

      const now = clock();
      const end = now + 30_000; // every short-lived row below ends here
      await store.oidcUpsert('Interaction', 'old-interaction', { uid: 'u-old' }, end);
      await store.oidcUpsert('Grant', 'long-grant', { accountId: 'alice' }, now + 3_600_000);
      for (const [id, expiresAt] of [
        ['old-session', end],
        ['long-session', now + 3_600_000],
      ] as const)
        await store.upsertSession({
          id,
          subject: 'alice',
          data: {},
          createdAt: now,
          lastSeenAt: now,
          expiresAt,
          revokedAt: null,
        });
      assert.equal(
        await store.consumeSubjectToken({ issuer: 'https://ci.example', jti: 'j1', expiresAt: end }, now),
        true,
      );

      // Rounds have been running all along; none of this had ended yet.
      await new Promise((r) => setTimeout(r, 200));
      assert.ok((await store.listRevocations()).some((r) => r.value === jti));
      assert.ok(await store.getSession('old-session'));

      // Past every end by more than the skew: the token cannot pass on any server any more.
      offset += Math.max(Number(exp) * 1000 + SKEW_MS, end) - now + 2 * SKEW_MS + 1;
      await until('the expired rows are removed', async () => {
        const revs = (await store.listRevocations()).map((r) => r.value);
        return !revs.includes(String(jti)) && (await store.getSession('old-session')) === undefined;
      });
      // A round prunes the tables in one go; let it finish before counting what is left.
      await until('the round has finished', async () => {
        const m = await (await fetch(`${t.url}/metrics`)).text();
        return /gatehouse_store_pruned_rows_total\{table="subject_token_uses"\} 1/.test(m);
      });
      assert.deepEqual(
        (await store.listRevocations()).map((r) => r.value),
        ['someone-who-left'],
      );
      assert.deepEqual(
        (await store.listSessions()).map((s) => s.id),
        ['long-session'],
      );
      assert.deepEqual(await store.oidcFind('Grant', 'long-grant'), { accountId: 'alice' });
      // What is left of the short-lived rows: the expired interaction and use are gone for good.
      assert.equal(await store.oidcPruneExpired(clock() + 3_600_000 + 1), 1, 'only the long grant was left');
      assert.equal(await store.pruneSubjectTokenUses(Number.MAX_SAFE_INTEGER), 0);
      // The revoked token's jti is gone from the store; the token itself has expired anyway.
      const introspected = await fetch(`${t.url}/token/introspection`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: 'Basic ' + Buffer.from(`ci:${secret}`).toString('base64'),
        },
        body: new URLSearchParams({ token }),
      });
      assert.deepEqual(await introspected.json(), { active: false });

      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      for (const table of ['revocations', 'oidc', 'sessions', 'subject_token_uses'])
        assert.match(metrics, new RegExp(`gatehouse_store_pruned_rows_total\\{table="${table}"\\} 1\\b`));
    });
  });
}
