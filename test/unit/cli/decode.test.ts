// `gatehouse decode`: offline decoding with times in plain words, and `--verify` against a running
// server — a good token passes, a revoked or expired one is refused with the reason, exit codes hold,
// and the token is never printed back in an error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { isGatehouseError } from '../../../src/lib/errors.js';
import { decodeCompact, describeTimes, relativeTime, verifyAgainstServer } from '../../../src/cli/decode.js';
import { requestToken, runCli, startTestGatehouse, type TestGatehouse } from '../../helpers/gatehouse.js';

const YAML = `
clients:
  - id: ci-deploy
    allowed_audiences: ["**"]
`;

describe('gatehouse decode', () => {
  let t: TestGatehouse;
  let secret: string;
  // The server's clock, shifted to mint tokens that are already expired by the real clock.
  let offsetMs = 0;
  const env = () => ({ GATEHOUSE_CLIENT_ID: 'ci-deploy', GATEHOUSE_CLIENT_SECRET: secret });
  const token = async (): Promise<string> => {
    const r = await requestToken(t.url, { id: 'ci-deploy', secret }, { audience: 'vault' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return String(r.body.access_token);
  };

  before(async () => {
    t = await startTestGatehouse({ yaml: YAML, now: () => Date.now() + offsetMs });
    secret = await t.secretFor('ci-deploy');
  });
  after(async () => t.close());

  test('times in plain words', () => {
    assert.equal(relativeTime(1000 + 420, 1000), 'in 7 min');
    assert.equal(relativeTime(1000 - 180, 1000), '3 min ago');
    const lines = describeTimes({ iat: 1000 - 180, exp: 1000 + 420 }, 1000);
    assert.match(lines.join('\n'), /iat .*\(3 min ago\)/);
    assert.match(lines.join('\n'), /exp .*\(expires in 7 min\)/);
    assert.match(describeTimes({ exp: 1000 - 180 }, 1000).join(''), /expired 3 min ago/);
  });

  test('offline decode from stdin prints header, payload and times', async () => {
    const tok = await token();
    const r = await runCli(['decode', '-'], { input: tok + '\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /"typ": "at\+jwt"/);
    assert.match(r.stdout, /"aud": "vault"/);
    assert.match(r.stdout, /exp .*\(expires in (9|10) min\)/);
    assert.ok(!r.stdout.includes(tok));
  });

  test('--verify passes a good token, every check named', async () => {
    const tok = await token();
    const r = await runCli(['decode', tok, '--verify', '--server', t.url, '--audience', 'vault'], {
      env: env(),
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const check of ['signature', 'type', 'issuer', 'audience', 'expiry', 'not-before', 'revocation'])
      assert.match(r.stdout, new RegExp(`ok +${check} `));
    assert.match(r.stdout, /kid \S+ found in the server's JWKS/);
    assert.match(r.stdout, /verdict: valid/);
  });

  test('--verify refuses a revoked token: exit 1, says inactive', async () => {
    const tok = await token();
    const { jti } = decodeJwt(tok);
    await t.gh.revocations.revoke({ kind: 'jti', value: String(jti), issuer: t.url });
    const r = await runCli(['decode', tok, '--verify', '--server', t.url], { env: env() });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL +revocation +inactive: revoked or expired/);
    assert.match(r.stdout, /verdict: NOT valid \(1 check failed: revocation\)/);
  });

  test('--verify refuses an expired token with how long ago, and a wrong audience', async () => {
    offsetMs = -3_600_000;
    const tok = await token();
    offsetMs = 0;
    const results = await verifyAgainstServer(tok, decodeCompact(tok), {
      server: t.url,
      audience: 'other',
      nowSec: Math.floor(Date.now() / 1000),
      credentials: { id: 'ci-deploy', secret },
    });
    const by = Object.fromEntries(results.map((r) => [r.check, r]));
    assert.equal(by.expiry?.outcome, 'fail');
    assert.match(String(by.expiry?.message), /^expired 50 min ago/);
    assert.equal(by.audience?.outcome, 'fail');
    assert.match(String(by.audience?.message), /aud "vault" does not include other/);
    assert.equal(by.revocation?.outcome, 'fail');
    assert.equal(by.signature?.outcome, 'ok');
  });

  test('without client credentials the revocation check is skipped, and says so', async () => {
    const tok = await token();
    const results = await verifyAgainstServer(tok, decodeCompact(tok), {
      server: t.url,
      nowSec: Math.floor(Date.now() / 1000),
    });
    const rev = results.find((r) => r.check === 'revocation');
    assert.equal(rev?.outcome, 'skip');
    assert.match(String(rev?.message), /not asked: set GATEHOUSE_CLIENT_ID/);
    assert.ok(results.every((r) => r.outcome !== 'fail'));
  });

  test('a token signed by a key the server does not publish fails the signature check', async () => {
    const tok = await token();
    const [h, p, s] = tok.split('.') as [string, string, string];
    const header = { ...(JSON.parse(Buffer.from(h, 'base64url').toString()) as object), kid: 'elsewhere' };
    const forged = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${p}.${s}`;
    const results = await verifyAgainstServer(forged, decodeCompact(forged), {
      server: t.url,
      nowSec: Math.floor(Date.now() / 1000),
    });
    assert.match(String(results[0]?.message), /kid elsewhere is not in the server's JWKS/);
    assert.equal(results[0]?.outcome, 'fail');
  });

  test('an unreachable server is ERR_SERVER_UNREACHABLE (exit 3)', async () => {
    const tok = await token();
    await assert.rejects(
      verifyAgainstServer(tok, decodeCompact(tok), { server: 'http://127.0.0.1:1', nowSec: 0 }),
      (e) => isGatehouseError(e, 'ERR_SERVER_UNREACHABLE') && e.exitCode === 3 && !e.message.includes(tok),
    );
  });

  test('exit codes: not a JWT 1, usage 2; the input is never echoed', async () => {
    const garbage = 'eyJzZWNyZXQiOiJodW50ZXIyIn0.not-really';
    const bad = await runCli(['decode', garbage, '--audience', 'a', '--verify', '--server', t.url]);
    assert.equal(bad.code, 1);
    assert.ok(!bad.stderr.includes(garbage) && !bad.stdout.includes(garbage));
    assert.throws(
      () => decodeCompact(garbage),
      (e) => isGatehouseError(e, 'ERR_TOKEN_MALFORMED') && !e.message.includes(garbage),
    );
    const usage = await runCli(['decode', 'x', '--audience', 'a']);
    assert.equal(usage.code, 2);
  });
});
