// `gatehouse revoke token` gives a revoked jti an end: its token's exp (from the token.issued audit
// record, or the token itself), else now + tokens.max_ttl; and a running server forgets the entry after
// that end. The server's clock is held and moved by the test, so nothing waits for real time; the
// lifetimes are long enough that a slow CLI start on a loaded machine never sees the token expire.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { requestToken, runCli, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const MAX_TTL_MS = 45_000;
const SKEW_MS = 1_000;
const DEV_DEFAULT_SKEW_MS = 60_000;
const YAML = `
tokens:
  default_ttl: 30s
  max_ttl: 45s
  clock_skew: 1s
clients:
  - id: ci
    allowed_audiences: ["**"]
`;

async function until(what: string, fn: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An unsigned JWT: the CLI only decodes the token it is given, for its jti, iss and exp. */
function unsignedJwt(payload: Record<string, unknown>): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'ES256', typ: 'at+jwt' })}.${part(payload)}.c2ln`;
}

describe('gatehouse revoke token: when the entry may be forgotten', () => {
  let t: TestGatehouse;
  let secret: string;
  let config: string;

  // The server's clock: real time, held still while a test looks at one instant, then carried on from
  // there (never backwards).
  let held: number | undefined;
  let offset = 0;
  const clock = () => held ?? Date.now() + offset;
  const hold = (at: number) => (held = at);
  const release = () => {
    if (held !== undefined) offset = Math.max(offset, held - Date.now());
    held = undefined;
  };

  before(async () => {
    t = await startTestGatehouse({ yaml: YAML, now: clock });
    secret = await t.secretFor('ci');
    // The same store and issuer as the running server, as an operator's gatehouse.yaml would say.
    config = join(t.dir, 'gatehouse.yaml');
    writeFileSync(
      config,
      `issuer: { url: ${JSON.stringify(t.url)} }
store: { sqlite: { path: ${JSON.stringify(join(t.dir, 'gatehouse.db'))} } }
keys: { encryption_key: ${JSON.stringify(t.gh.config.keys.encryption_key)} }
${YAML}`,
    );
  });
  after(async () => t.close());

  async function issue(): Promise<{ token: string; jti: string; exp: number }> {
    const r = await requestToken(t.url, { id: 'ci', secret }, { audience: 'api' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const token = String(r.body.access_token);
    const { jti, exp } = decodeJwt(token);
    return { token, jti: String(jti), exp: Number(exp) };
  }

  async function stored(jti: string) {
    const rows = (await t.gh.store.listRevocations()).filter((r) => r.kind === 'jti' && r.value === jti);
    assert.equal(rows.length, 1);
    return rows[0]!;
  }

  // A jti may start with `-` (base64url): `--` ends the options.
  test('by jti with --config: its exp from the token.issued record; the server forgets it after', async () => {
    const { jti, exp } = await issue();
    // The server's clock stands still from here: a slow CLI start cannot let the entry end unseen.
    hold(clock());
    const sizeBefore = t.gh.revocations.size;
    const r = await runCli(['revoke', 'token', '--config', config, '--', jti]);
    assert.equal(r.code, 0, r.stderr);
    const rec = await stored(jti);
    assert.equal(rec.issuer, t.url);
    assert.equal(rec.expiresAt, exp * 1000 + SKEW_MS);
    assert.match(r.stdout, /kept until \S+Z \(the token's exp, from its token\.issued audit record\)/);
    const [audited] = (await t.gh.store.queryAudit({ type: 'token.revoked' })).filter(
      (a) => a.data.jti === jti,
    );
    assert.equal(audited?.data.forget_after, new Date(exp * 1000 + SKEW_MS).toISOString());
    assert.equal(audited?.data.forget_basis, 'token.issued');

    await until(
      'the running server holds the revocation',
      () => t.gh.revocations.check({ iss: t.url, jti }) !== undefined,
      1_000,
    );
    assert.equal(t.gh.revocations.size, sizeBefore + 1);
    const end = exp * 1000 + SKEW_MS;
    hold(end - 1);
    assert.ok(t.gh.revocations.check({ iss: t.url, jti }), 'held until the token can no longer pass');
    hold(end);
    assert.equal(t.gh.revocations.check({ iss: t.url, jti }), undefined);
    assert.equal(t.gh.revocations.size, sizeBefore, 'the entry left memory');
    release();
  });

  test('by jti with --data-dir: the exp from the token.issued record too (it was kept for ever)', async () => {
    const { jti, exp } = await issue();
    const r = await runCli(['revoke', 'token', '--data-dir', t.dir, '--', jti]);
    assert.equal(r.code, 0, r.stderr);
    const rec = await stored(jti);
    assert.equal(rec.issuer, null, 'a data dir does not know the issuer: any issuer');
    // A data dir runs with the dev defaults, tokens.clock_skew 60s.
    assert.equal(rec.expiresAt, exp * 1000 + DEV_DEFAULT_SKEW_MS);
  });

  test('a jti with no token.issued record: now + tokens.max_ttl + clock_skew', async () => {
    const before = Date.now();
    const r = await runCli(['revoke', 'token', 'no-such-jti', '--config', config]);
    const afterRun = Date.now();
    assert.equal(r.code, 0, r.stderr);
    const rec = await stored('no-such-jti');
    assert.ok(rec.expiresAt !== null);
    assert.ok(
      rec.expiresAt >= before + MAX_TTL_MS + SKEW_MS && rec.expiresAt <= afterRun + MAX_TTL_MS + SKEW_MS,
    );
    assert.match(r.stdout, /no token\.issued record for it: now \+ tokens\.max_ttl \(45s\)/);

    const dev = await runCli(['revoke', 'token', 'no-such-jti-2', '--data-dir', t.dir]);
    assert.equal(dev.code, 0, dev.stderr);
    const devRec = await stored('no-such-jti-2');
    assert.ok(devRec.expiresAt !== null && devRec.expiresAt <= Date.now() + 3_600_000 + DEV_DEFAULT_SKEW_MS);
    assert.match(dev.stdout, /now \+ tokens\.max_ttl \(1h, the dev default\)/);
  });

  test('given the token (--token-file, or as the argument): its jti, iss and exp; it is never printed', async () => {
    const { token, jti, exp } = await issue();
    const file = join(t.dir, 'leaked.jwt');
    writeFileSync(file, token + '\n');
    const r = await runCli(['revoke', 'token', '--token-file', file, '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await stored(jti)).expiresAt, exp * 1000 + SKEW_MS);
    assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token));
    const [audited] = (await t.gh.store.queryAudit({ type: 'token.revoked' })).filter(
      (a) => a.data.jti === jti,
    );
    assert.ok(audited && !JSON.stringify(audited.data).includes(token));

    // A token of an issuer Gatehouse has no record of: the token's own exp.
    const extExp = Math.floor(Date.now() / 1000) + 120;
    const ext = unsignedJwt({ iss: 'https://ci.example', jti: 'ext-1', exp: extExp });
    const r2 = await runCli(['revoke', 'token', ext, '--config', config]);
    assert.equal(r2.code, 0, r2.stderr);
    const rec = await stored('ext-1');
    assert.equal(rec.issuer, 'https://ci.example');
    assert.equal(rec.expiresAt, extExp * 1000 + SKEW_MS);
    assert.match(r2.stdout, /\(the token's exp\)/);
  });

  test('a jti of an issuer that bounds nothing is kept, and says why; mismatches are usage errors', async () => {
    const r = await runCli([
      'revoke',
      'token',
      'ext-2',
      '--issuer',
      'https://ci.example',
      '--config',
      config,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await stored('ext-2')).expiresAt, null);
    assert.match(
      r.stdout,
      /kept with no end: nothing bounds how long tokens of https:\/\/ci\.example live \(set max_token_age/,
    );

    const { token } = await issue();
    const file = join(t.dir, 'other.jwt');
    writeFileSync(file, token);
    const wrongJti = await runCli(['revoke', 'token', 'other-jti', '--token-file', file, '--config', config]);
    assert.equal(wrongJti.code, 2);
    assert.match(wrongJti.stderr, /the token's jti is \S+, not the jti given as the argument/);
    const wrongIss = await runCli([
      'revoke',
      'token',
      '--token-file',
      file,
      '--issuer',
      'https://x.example',
      '--config',
      config,
    ]);
    assert.equal(wrongIss.code, 2);
    assert.match(wrongIss.stderr, /the token's issuer is/);
    const none = await runCli(['revoke', 'token', '--config', config]);
    assert.equal(none.code, 2);
  });

  test('a jti or session id that starts with - is taken after --; without it the error says so', async () => {
    // base64url ids can start with `-` (ids from before 0.1.0, the OpenID Provider's, other issuers').
    const jti = '-a5NPylIe7zf3jV6lTR-3g';
    const bare = await runCli(['revoke', 'token', jti, '--config', config]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /unknown option '-a5NPylIe7zf3jV6lTR-3g'/);
    assert.match(
      bare.stderr,
      /hint: if that is the token's jti, put it last, after '--': gatehouse revoke token \[options\] -- JTI/,
    );
    assert.equal((await t.gh.store.listRevocations()).filter((r) => r.value === jti).length, 0);

    const r = await runCli(['revoke', 'token', '--config', config, '--', jti]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await stored(jti)).issuer, t.url);
    assert.match(r.stdout, /revoked token -a5NPylIe7zf3jV6lTR-3g \(issuer /);

    const sid = '-Qx7pdSessionIdThatStartsWithADash';
    const bareSession = await runCli(['revoke', 'session', sid, '--config', config]);
    assert.equal(bareSession.code, 2);
    assert.match(bareSession.stderr, /hint: if that is the session's id, put it last, after '--'/);
    const session = await runCli(['revoke', 'session', '--config', config, '--', sid]);
    assert.equal(session.code, 0, session.stderr);
    const rows = (await t.gh.store.listRevocations()).filter((x) => x.kind === 'session' && x.value === sid);
    assert.equal(rows.length, 1);

    const help = await runCli(['revoke', 'token', '--help']);
    assert.match(help.stdout, /gatehouse revoke token --config gatehouse\.yaml -- -a5NPylIe7zf3jV6lTR-3g/);
  });
});
