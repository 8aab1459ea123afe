// The federation commands end to end: `gatehouse token --subject-token-file` against a running server
// and a real external issuer, and `gatehouse policy test` with its exit codes (0 allowed, 1 denied, 2 usage).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { generateKekText } from '../../src/keys/seal.js';
import { runCli, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { githubSub, startExternalIssuer, type ExternalIssuer } from '../helpers/external-issuer.js';

const AUD = 'https://gatehouse.test';

describe('federation CLI', () => {
  let gh: ExternalIssuer;
  let t: TestGatehouse;
  let configFile: string;
  let rules: string;

  before(async () => {
    gh = await startExternalIssuer('github');
    rules = `
external_issuers:
  - { name: github, issuer: "${gh.issuer}", audiences: ["${AUD}"] }
trust_rules:
  - name: deploy-prod
    issuer: github
    conditions:
      all:
        - { claim: repository, equals: octo/app }
        - { claim: environment, equals: production }
    grant: { roles: [deployer], audiences: [vault], subject: "gh:{repository}:{environment}" }
`;
    t = await startTestGatehouse({ yaml: rules });
    configFile = join(t.dir, 'gatehouse.yaml');
    writeFileSync(join(t.dir, 'kek'), generateKekText() + '\n');
    writeFileSync(
      configFile,
      `issuer: { url: "http://127.0.0.1:9" }\nkeys: { encryption_key: "\${file:kek}" }\n${rules}`,
    );
  });
  after(async () => {
    await t?.close();
    await gh?.close();
  });

  const prodToken = () =>
    gh.mint({ sub: githubSub('octo/app', { environment: 'production' }), environment: 'production' });

  test('gatehouse token --subject-token-file exchanges as gatehouse-cli and prints the token', async () => {
    const file = join(t.dir, 'subject.jwt');
    writeFileSync(file, (await prodToken()) + '\n');
    const r = await runCli(['token', '--server', t.url, '--audience', 'vault', '--subject-token-file', file]);
    assert.equal(r.code, 0, r.stderr);
    const c = decodeJwt(r.stdout.trim());
    assert.equal(c.sub, 'gh:octo/app:production');
    assert.equal(c.client_id, 'gatehouse-cli');
  });

  test('gatehouse token --subject-token-file: a refused token exits 1 with the reason', async () => {
    const file = join(t.dir, 'staging.jwt');
    writeFileSync(
      file,
      await gh.mint({ sub: githubSub('octo/app', { environment: 'staging' }), environment: 'staging' }),
    );
    const r = await runCli(['token', '--server', t.url, '--audience', 'vault', '--subject-token-file', file]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /closest rule "deploy-prod" failed on claim environment: expected "production", actual "staging"/,
    );
    assert.match(r.stderr, /audit id a_/);
  });

  test('policy test: allowed exits 0, says the signature was not verified, and shows the grant', async () => {
    const file = join(t.dir, 'p.jwt');
    writeFileSync(file, await prodToken());
    const r = await runCli(['policy', 'test', '--config', configFile, '--token', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /signature was NOT verified/);
    assert.match(r.stdout, /allowed by rule "deploy-prod"/);
    assert.match(r.stdout, /sub "gh:octo\/app:production"/);
  });

  test('policy test: denied exits 1 with the closest rule; --claims overrides; --rule narrows', async () => {
    const file = join(t.dir, 'd.jwt');
    writeFileSync(file, await prodToken());
    const r = await runCli([
      'policy',
      'test',
      '--config',
      configFile,
      '--token',
      file,
      '--claims',
      '{"environment":"staging"}',
    ]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /closest rule "deploy-prod" failed on claim environment/);
    const r2 = await runCli([
      'policy',
      'test',
      '--config',
      configFile,
      '--token',
      file,
      '--rule',
      'deploy-prod',
    ]);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  });

  test('policy test: an unknown issuer or a wrong audience is denied (exit 1)', async () => {
    const other = join(t.dir, 'o.jwt');
    writeFileSync(other, await gh.mint({}, { iss: `${gh.issuer}/` }));
    const r = await runCli(['policy', 'test', '--config', configFile, '--token', other]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /is not configured/);
    const aud = join(t.dir, 'a.jwt');
    writeFileSync(aud, await gh.mint({ environment: 'production' }, { aud: 'sts.amazonaws.com' }));
    const r2 = await runCli(['policy', 'test', '--config', configFile, '--token', aud]);
    assert.equal(r2.code, 1);
    assert.match(r2.stdout, /audience "sts.amazonaws.com" does not include/);
  });

  test('policy test: usage errors exit 2 (no token, unknown rule, bad config)', async () => {
    assert.equal((await runCli(['policy', 'test', '--config', configFile])).code, 2);
    const file = join(t.dir, 'u.jwt');
    writeFileSync(file, await prodToken());
    const r = await runCli(['policy', 'test', '--config', configFile, '--token', file, '--rule', 'nope']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no trust rule is named "nope"/);
    const bad = join(t.dir, 'bad.yaml');
    writeFileSync(
      bad,
      `issuer: { url: "http://127.0.0.1:9" }\nkeys: { encryption_key: x }\ntrust_rules:\n  - name: r\n    issuer: nowhere\n    conditions: { claim: a, globb: x }\n    grant: { audiences: [v] }\n`,
    );
    const r3 = await runCli(['policy', 'test', '--config', bad, '--token', file]);
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /bad.yaml:5:\d+ trust_rules\[0\]\.issuer/);
    assert.match(r3.stderr, /trust_rules\[0\]\.conditions/);
  });
});
