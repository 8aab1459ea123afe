// Single-use subject tokens across replicas: two Gatehouses on one PostgreSQL database, as behind a load
// balancer, take the same GitHub-Actions-shaped token at once; the store's atomic insert lets exactly one
// exchange through. Skips, saying why, without PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKekText } from '../../src/keys/seal.js';
import { exchangeToken, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { githubSub, startExternalIssuer, type ExternalIssuer } from '../helpers/external-issuer.js';
import { testDatabase } from '../helpers/postgres.js';
import { postgresSkipReason } from '../helpers/replicas.js';

const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const skip = await postgresSkipReason();

describe('single_use subject tokens on PostgreSQL replicas', { skip }, () => {
  let gh: ExternalIssuer;
  let a: TestGatehouse;
  let b: TestGatehouse;
  let drop: (() => Promise<void>) | undefined;

  before(async () => {
    gh = await startExternalIssuer('github');
    const db = await testDatabase();
    if ('skip' in db) throw new Error(db.skip);
    drop = db.drop;
    const yaml = `
external_issuers:
  - { name: github, issuer: "${gh.issuer}", audiences: ["https://gatehouse.test"] }
trust_rules:
  - name: gh-release-once
    issuer: github
    single_use: true
    conditions: { claim: repository, equals: octo/release }
    grant: { roles: [releaser], audiences: ["vault"], subject: "gh:{repository}" }
`;
    // One database and one key-encryption key: the replicas share keys, audit chain and token uses.
    const base = {
      store: { postgres: { url: db.url, pool: 4 } },
      keys: { encryption_key: generateKekText() },
    };
    a = await startTestGatehouse({ yaml, base });
    b = await startTestGatehouse({ yaml, base });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await drop?.();
    await gh?.close();
  });

  const release = () =>
    gh.mint({
      sub: githubSub('octo/release', { environment: 'release' }),
      repository: 'octo/release',
      environment: 'release',
    });
  const form = (token: string) => ({ subject_token: token, subject_token_type: JWT_TYPE, audience: 'vault' });

  test('two replicas exchanging one token at the same moment: exactly one succeeds', async () => {
    for (let round = 0; round < 5; round++) {
      const token = await release();
      const results = await Promise.all([
        exchangeToken(a.url, form(token)),
        exchangeToken(b.url, form(token)),
        exchangeToken(a.url, form(token)),
        exchangeToken(b.url, form(token)),
      ]);
      const ok = results.filter((r) => r.status === 200);
      assert.equal(ok.length, 1, JSON.stringify(results.map((r) => r.body)));
      for (const r of results.filter((x) => x.status !== 200)) {
        assert.equal(r.status, 400);
        assert.equal(r.body.error, 'invalid_request');
        assert.match(String(r.body.error_description), /already exchanged: trust rule "gh-release-once"/);
      }
    }
  });

  test('a token used on one replica is refused on the other; a new token is taken by either', async () => {
    const token = await release();
    assert.equal((await exchangeToken(a.url, form(token))).status, 200);
    const replay = await exchangeToken(b.url, form(token));
    assert.equal(replay.status, 400);
    assert.match(String(replay.body.error_description), /already exchanged/);
    assert.equal((await exchangeToken(b.url, form(await release()))).status, 200);
  });
});
