// Introspection (RFC 7662) and revocation (RFC 7009) of Gatehouse's JWT access tokens: advertised in
// discovery, consulting the revocation set (also when the CLI writes to the store), revocable only by
// the client the token was issued to, and a revoked client cannot authenticate with its old secret.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { requestToken, runCli, startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const YAML = `
clients:
  - id: ci-deploy
    allowed_audiences: ["**"]
    roles: [deployer]
  - id: other
    allowed_audiences: ["**"]
  - id: rs
    allowed_audiences: ["api"]
  - id: gone
    allowed_audiences: ["**"]
`;

function basic(id: string, secret: string): string {
  return 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');
}

async function post(
  url: string,
  auth: string,
  form: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('introspection and revocation of JWT access tokens', () => {
  let t: TestGatehouse;
  const secrets: Record<string, string> = {};
  let introspectionUrl: string;
  let revocationUrl: string;
  const as = (id: string) => basic(id, secrets[id] ?? '');
  const token = async (id: string, audience = 'api'): Promise<string> => {
    const r = await requestToken(t.url, { id, secret: secrets[id] ?? '' }, { audience });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return String(r.body.access_token);
  };
  const introspect = async (tok: string, caller = 'rs') =>
    (await post(introspectionUrl, as(caller), { token: tok })).body;

  before(async () => {
    t = await startTestGatehouse({ yaml: YAML });
    for (const id of ['ci-deploy', 'other', 'rs', 'gone']) secrets[id] = await t.secretFor(id);
    const d = (await (await fetch(`${t.url}/.well-known/openid-configuration`)).json()) as Record<
      string,
      string
    >;
    introspectionUrl = String(d.introspection_endpoint);
    revocationUrl = String(d.revocation_endpoint);
  });
  after(async () => t.close());

  test('discovery advertises both endpoints under the issuer', () => {
    assert.equal(introspectionUrl, `${t.url}/token/introspection`);
    assert.equal(revocationUrl, `${t.url}/token/revocation`);
  });

  test('a good token is active with its own claims', async () => {
    const tok = await token('ci-deploy');
    const claims = decodeJwt(tok);
    const body = await introspect(tok);
    assert.equal(body.active, true);
    assert.equal(body.iss, t.url);
    assert.equal(body.sub, 'ci-deploy');
    assert.equal(body.aud, 'api');
    assert.equal(body.client_id, 'ci-deploy');
    assert.equal(body.jti, claims.jti);
    assert.equal(body.exp, claims.exp);
    assert.deepEqual(body.roles, ['deployer']);
    assert.equal(body.token_type, 'Bearer');
  });

  test('introspection needs an authenticated client', async () => {
    const tok = await token('ci-deploy');
    const r = await post(introspectionUrl, basic('rs', 'wrong'), { token: tok });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_client');
    const anon = await fetch(introspectionUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tok }),
    });
    assert.notEqual(anon.status, 200);
  });

  test('a tampered, foreign or garbage token is inactive, without saying why', async () => {
    const tok = await token('ci-deploy');
    const [h, p, s] = tok.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: 'admin' })).toString('base64url')}.${s}`;
    assert.deepEqual(await introspect(forged), { active: false });
    assert.deepEqual(await introspect('eyJhbGciOiJub25lIn0.e30.'), { active: false });
    const before = (await t.gh.store.queryAudit({ type: 'token.introspected' })).length;
    assert.ok(before >= 2, 'inactive answers are audited');
  });

  test('a revoked jti is inactive', async () => {
    const tok = await token('ci-deploy');
    const { jti, exp } = decodeJwt(tok);
    await t.gh.revocations.revoke({
      kind: 'jti',
      value: String(jti),
      issuer: t.url,
      expiresAt: Number(exp) * 1000,
    });
    assert.deepEqual(await introspect(tok), { active: false });
  });

  test('a subject revoked with `gatehouse revoke` on the store is inactive on the running server within a second', async () => {
    const tok = await token('other');
    assert.equal((await introspect(tok)).active, true);
    const cli = await runCli(['revoke', 'subject', 'other', '--reason', 'left', '--data-dir', t.dir]);
    assert.equal(cli.code, 0, cli.stderr);
    const deadline = Date.now() + 1000;
    let active = true;
    while (Date.now() < deadline) {
      active = (await introspect(tok)).active === true;
      if (!active) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(active, false);
    // Tokens issued after the revocation are good again.
    await new Promise((r) => setTimeout(r, 1100)); // iat has second resolution
    assert.equal((await introspect(await token('other'))).active, true);
  });

  test('RFC 7009: the owning client revokes its token; another client cannot', async () => {
    const tok = await token('ci-deploy');
    const refused = await post(revocationUrl, as('other'), { token: tok });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'unauthorized_client');
    assert.equal((await introspect(tok)).active, true);

    const ok = await fetch(revocationUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: as('ci-deploy') },
      body: new URLSearchParams({ token: tok, token_type_hint: 'access_token' }),
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(await introspect(tok), { active: false });
    const { jti } = decodeJwt(tok);
    const audited = await t.gh.store.queryAudit({ type: 'token.revoked' });
    assert.ok(audited.some((r) => r.data.jti === jti && r.data.client_id === 'ci-deploy'));
  });

  test('RFC 7009 §2.2: an unknown or garbage token answers 200', async () => {
    const r = await post(revocationUrl, as('ci-deploy'), { token: 'not-a-token-at-all' });
    assert.equal(r.status, 200);
    const j = await post(revocationUrl, as('ci-deploy'), { token: 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA' });
    assert.equal(j.status, 200);
  });

  test('a revoked client is refused at the token endpoint until its secret is rotated', async () => {
    const tok = await token('gone');
    await t.gh.revocations.revoke({ kind: 'client', value: 'gone', reason: 'runner compromised' });
    assert.deepEqual(await introspect(tok), { active: false });
    const r = await requestToken(t.url, { id: 'gone', secret: secrets.gone ?? '' }, { audience: 'api' });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_client');
    assert.match(String(r.body.error_description), /client "gone" was revoked at \d{4}-/);
    await new Promise((r) => setTimeout(r, 5));
    secrets.gone = await t.secretFor('gone');
    await new Promise((r) => setTimeout(r, 1000)); // a new token's iat must be after the revocation
    const again = await token('gone');
    assert.equal((await introspect(again)).active, true);
  });
});
