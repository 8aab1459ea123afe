// The CLI as people and scripts use it: --help everywhere, `token` exit codes, `clients` managing
// secrets against a running server's store.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { runCli, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

describe('gatehouse CLI', () => {
  let t: TestGatehouse;
  let configFile: string;
  before(async () => {
    t = await startTestGatehouse({
      yaml: 'clients:\n  - id: ci\n    allowed_audiences: ["sts.amazonaws.com"]\n    max_ttl: 5m\n',
    });
    // An admin config pointing at the same store, as an operator would have it.
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    configFile = join(t.dir, 'gatehouse.yaml');
    writeFileSync(join(t.dir, 'kek'), 'unused-by-admin-commands-but-required-aaaaaaaa\n');
    writeFileSync(
      configFile,
      `issuer: { url: "${t.url}" }\nstore: { sqlite: { path: gatehouse.db } }\nkeys: { encryption_key: "\${file:kek}" }\nclients:\n  - id: ci\n    allowed_audiences: ["sts.amazonaws.com"]\n`,
    );
  });
  after(async () => t.close());

  test('--help lists the commands and each command has help with examples', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['serve', 'dev', 'token', 'clients', 'config', 'audit', 'revoke'])
      assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
    for (const c of [['token'], ['dev'], ['serve'], ['clients', 'rotate-secret']]) {
      const h = await runCli([...c, '--help']);
      assert.equal(h.code, 0);
      assert.match(h.stdout, /Examples:/);
    }
  });

  test('token: exit 0 with a token, 1 when refused, 2 without credentials, 3 when the server is down', async () => {
    const secret = await t.secretFor('ci');
    const env = { GATEHOUSE_CLIENT_ID: 'ci', GATEHOUSE_CLIENT_SECRET: secret };
    const ok = await runCli(['token', '--audience', 'sts.amazonaws.com', '--server', t.url, '--ttl', '2m'], {
      env,
    });
    assert.equal(ok.code, 0, ok.stderr);
    const claims = decodeJwt(ok.stdout.trim());
    assert.equal(claims.aud, 'sts.amazonaws.com');
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 120);

    const decoded = await runCli(
      ['token', '--audience', 'sts.amazonaws.com', '--server', t.url, '--decode'],
      { env },
    );
    assert.equal(decoded.code, 0);
    const json = JSON.parse(decoded.stdout) as { header: { typ: string }; payload: { aud: string } };
    assert.equal(json.header.typ, 'at+jwt');
    assert.equal(json.payload.aud, 'sts.amazonaws.com');

    const refused = await runCli(['token', '--audience', 'other', '--server', t.url, '--decode'], { env });
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '', '--decode never swallows an error into output');
    assert.match(refused.stderr, /invalid_target: audience "other" is not allowed for client "ci"/);

    // The audit id the client was shown leads to the full record.
    const auditId = /audit id (a_[\w-]+)/.exec(refused.stderr)?.[1] ?? '';
    const shown = await runCli(['audit', 'show', auditId, '--config', configFile, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const rec = JSON.parse(shown.stdout) as { type: string; data: Record<string, unknown> };
    assert.equal(rec.type, 'token.refused');
    assert.equal(rec.data.actual, 'other');
    assert.deepEqual(rec.data.expected, ['sts.amazonaws.com']);
    const missing = await runCli(['audit', 'show', 'a_AAAAAAAAAAAAAAAA', '--config', configFile]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no audit record with id a_AAAAAAAAAAAAAAAA/);

    const tooLong = await runCli(
      ['token', '--audience', 'sts.amazonaws.com', '--server', t.url, '--ttl', '1h'],
      { env },
    );
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stderr, /above the ceiling of 5m/);

    const none = await runCli(['token', '--audience', 'x', '--server', t.url], {
      env: { GATEHOUSE_CLIENT_ID: '', GATEHOUSE_CLIENT_SECRET: '' },
    });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no credentials/);

    const badTtl = await runCli(['token', '--audience', 'x', '--ttl', 'soon', '--server', t.url], { env });
    assert.equal(badTtl.code, 2);

    const down = await runCli(['token', '--audience', 'x', '--server', 'http://127.0.0.1:9'], { env });
    assert.equal(down.code, 3);
    assert.match(down.stderr, /cannot reach http:\/\/127.0.0.1:9/);
  });

  test('clients: create prints a secret once, list shows expiry, rotate-secret overlaps then ends', async () => {
    const created = await runCli([
      'clients',
      'create',
      'deploy-prod',
      '--audience',
      'sts.amazonaws.com',
      '--role',
      'deployer',
      '--secret-ttl',
      '90d',
      '--config',
      configFile,
    ]);
    assert.equal(created.code, 0, created.stderr);
    const secret = /GATEHOUSE_CLIENT_SECRET=(\S+)/.exec(created.stdout)?.[1] ?? '';
    assert.ok(secret);
    // The running server takes the new client and secret at once.
    const env = { GATEHOUSE_CLIENT_ID: 'deploy-prod', GATEHOUSE_CLIENT_SECRET: secret };
    const tok = await runCli(['token', '--audience', 'sts.amazonaws.com', '--server', t.url], { env });
    assert.equal(tok.code, 0, tok.stderr);
    assert.deepEqual(decodeJwt(tok.stdout.trim()).roles, ['deployer']);

    const dup = await runCli(['clients', 'create', 'deploy-prod', '--audience', 'x', '--config', configFile]);
    assert.equal(dup.code, 2);

    const list = await runCli(['clients', 'list', '--config', configFile, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as {
      id: string;
      source: string;
      secrets: { expires_at: string | null }[];
    }[];
    const row = rows.find((r) => r.id === 'deploy-prod');
    assert.equal(row?.source, 'store');
    assert.ok(row?.secrets[0]?.expires_at, 'the secret has an expiry');
    assert.ok(rows.find((r) => r.id === 'ci' && r.source === 'config'));

    const rotated = await runCli([
      'clients',
      'rotate-secret',
      'deploy-prod',
      '--overlap',
      '0s',
      '--config',
      configFile,
    ]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const newSecret = /GATEHOUSE_CLIENT_SECRET=(\S+)/.exec(rotated.stdout)?.[1] ?? '';
    const old = await runCli(['token', '--audience', 'sts.amazonaws.com', '--server', t.url], { env });
    assert.equal(old.code, 1, 'the old secret stops at once with --overlap 0s');
    assert.match(old.stderr, /expired at/);
    const fresh = await runCli(['token', '--audience', 'sts.amazonaws.com', '--server', t.url], {
      env: { ...env, GATEHOUSE_CLIENT_SECRET: newSecret },
    });
    assert.equal(fresh.code, 0, fresh.stderr);

    const overlap = await runCli([
      'clients',
      'rotate-secret',
      'deploy-prod',
      '--overlap',
      '1h',
      '--config',
      configFile,
    ]);
    assert.match(overlap.stdout, /keeps working until/);
    const stillOk = await runCli(['token', '--audience', 'sts.amazonaws.com', '--server', t.url], {
      env: { ...env, GATEHOUSE_CLIENT_SECRET: newSecret },
    });
    assert.equal(stillOk.code, 0, 'the previous secret works during the overlap');

    const unknown = await runCli(['clients', 'rotate-secret', 'nobody', '--config', configFile]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown client "nobody"/);
  });
});
